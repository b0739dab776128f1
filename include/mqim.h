/* mqim.h - the public API of libmqim, the mqim instant-messaging client.
 *
 * This is the only header that `make install` installs.  Everything in it is
 * prefixed mqim_ / MQIM_.  The error list below is also used by the broker
 * plugin and the tools, so that one code means one thing everywhere.
 *
 * Error convention: functions return 0 (MQIM_OK) on success and a negative
 * MQIM_E* code on failure; mqim_strerror() turns any code into a sentence.
 */
#ifndef MQIM_H
#define MQIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MQIM_VERSION_MAJOR 0
#define MQIM_VERSION_MINOR 1
#define MQIM_VERSION_PATCH 0

#if defined(__GNUC__)
#define MQIM_EXPORT __attribute__((visibility("default")))
#else
#define MQIM_EXPORT
#endif

/* X(name, value, message): the one list of error codes. */
#define MQIM_ERRNO_MAP(X)                                                   \
	X(OK,       0,  "success")                                              \
	X(EINVAL,  -1,  "invalid argument")                                     \
	X(ENOMEM,  -2,  "out of memory")                                        \
	X(ENOTFOUND, -3, "not found")                                           \
	X(EEXISTS, -4,  "already exists")                                       \
	X(EBADNAME, -5, "invalid name: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit") \
	X(EIO,     -6,  "input/output error")                                   \
	X(EDB,     -7,  "database error")                                       \
	X(ECORRUPT, -8, "database file is corrupt or not an mqim database")     \
	X(ETOOBIG, -9,  "payload larger than the configured limit")             \
	X(EPROTO,  -10, "malformed envelope")                                   \
	X(EAUTH,   -11, "bad username or password")                             \
	X(EDENIED, -12, "not authorized")                                       \
	X(ECONN,   -13, "could not connect to the broker")                      \
	X(ETIMEOUT, -14, "timed out")                                           \
	X(ECLOSED, -15, "client is logged out or closed")                       \
	X(ENOSPC,  -16, "no space left on the device holding the data folder")  \
	X(ESTATE,  -17, "operation not valid in the current state")             \
	X(EUNSUPPORTED, -18, "not supported")                                   \
	X(EBUSY,   -19, "busy, try again later")                                \
	X(ETAKEN,  -20, "logged in elsewhere: the session was taken over")

typedef enum mqim_err {
#define MQIM_X_ENUM(name, value, msg) MQIM_##name = value,
	MQIM_ERRNO_MAP(MQIM_X_ENUM)
#undef MQIM_X_ENUM
} mqim_err;

/* A sentence for an error code; never NULL, never to be freed. */
MQIM_EXPORT const char *mqim_strerror(int err);

/* The symbolic name of an error code ("EAUTH"); never NULL. */
MQIM_EXPORT const char *mqim_errname(int err);

#ifdef __cplusplus
}
#endif
#endif /* MQIM_H */
