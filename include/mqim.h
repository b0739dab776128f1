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

#include <stdbool.h>
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

/* ======================================================================
 * libmqim: the client.
 *
 * A client is one user on one device.  It keeps a persistent MQTT 5 session
 * (clean start off) under a stable client id, an outbox, a seen-set and the
 * conversation history in an SQLite file in its data folder, and reconnects
 * by itself after any loss it was not asked for.
 *
 * Threads.  Every function below is safe to call from any thread, including
 * from inside a callback, except mqim_close(), which must be the last call on
 * a client (it may be called from a callback: the client is then torn down
 * once that callback returns).  All callbacks of one client come on one
 * library thread, one at a time, never from inside an mqim_* call made by the
 * application on another thread.  A callback should return promptly: while it
 * runs, the client neither sends nor receives, and calls from other threads
 * that need the library thread (send, mark_read, retry, ...) wait for it.
 *
 * Ownership.  Strings and buffers passed in are borrowed: no reference is
 * kept after the call returns.  Data passed to a callback (messages, strings)
 * is borrowed too and valid only until the callback returns: copy what you
 * keep.  When a call that takes a callback fails, the callback is never
 * called.
 *
 * Groups.  The wire contract gives a client no way to list the groups its
 * user belongs to, so the application says which groups to follow, with
 * options.groups or mqim_join_group().  The list is kept in the data folder
 * and subscribed on every connect.
 * ====================================================================== */

#define MQIM_ID_LEN 16          /* message ids: 16 bytes (UUIDv7) */
#define MQIM_ID_HEX_LEN 32      /* as lowercase hex, without dashes */

typedef struct mqim_client mqim_client;

/* Connection states, reported by callbacks.on_state. */
enum mqim_state {
	MQIM_STATE_IDLE = 0,      /* created; mqim_connect() not called yet */
	MQIM_STATE_CONNECTING,    /* a connection attempt is under way, until the
	                           * broker has answered the inbox subscription */
	MQIM_STATE_CONNECTED,     /* connected: subscribed to the inbox; messages
	                           * sent to this user now reach it.  Sending and
	                           * receiving.  Reported once the broker answered
	                           * the inbox SUBSCRIBE, on every connection */
	MQIM_STATE_WAITING,       /* lost; the next attempt comes after a backoff delay */
	MQIM_STATE_GAVE_UP,       /* options.max_attempts failed in a row: waits for mqim_reconnect() */
	MQIM_STATE_AUTH_FAILED,   /* the broker refused the user, password or client id:
	                           * reported once, not retried until mqim_reconnect() */
	MQIM_STATE_TAKEN_OVER,    /* logged in elsewhere: another connection took this
	                           * session (DISCONNECT 0x8E), or the broker closed it
	                           * with 0x98 Administrative action (the mqim plugin's
	                           * single-session policy, or an operator's kick): not
	                           * retried until mqim_reconnect().  (Mosquitto 2.0 does not say
	                           * so: there, connections that end within 10 s of their
	                           * CONNACK count as failed attempts and back off.) */
	MQIM_STATE_LOGGED_OUT,    /* mqim_logout(): final, never reconnects */
};

/* States of a message.  Outgoing: QUEUED -> SENT (the broker acknowledged it)
 * -> DELIVERED (the recipient's receipt arrived) -> READ; FAILED when the
 * broker refused it or the resend budget is spent (a late receipt still moves
 * it to DELIVERED / READ; mqim_retry() puts it back to QUEUED).  Incoming:
 * RECEIVED, then READ after mqim_mark_read(). */
enum mqim_msg_state {
	MQIM_MSG_UNKNOWN = 0,
	MQIM_MSG_QUEUED = 1,
	MQIM_MSG_SENT = 2,
	MQIM_MSG_DELIVERED = 3,
	MQIM_MSG_READ = 4,
	MQIM_MSG_FAILED = 5,
	MQIM_MSG_RECEIVED = 6,
};

/* Names for logs and UIs ("connected", "delivered"); never NULL. */
MQIM_EXPORT const char *mqim_state_name(enum mqim_state state);
MQIM_EXPORT const char *mqim_msg_state_name(enum mqim_msg_state state);

/* A message handed to callbacks.on_message or to a history callback.  Every
 * pointer is borrowed: valid only until the callback returns. */
struct mqim_message {
	uint8_t id[MQIM_ID_LEN];
	const char *kind;           /* "msg", or another kind: "typing", "file", ... */
	const char *from;           /* sender user id */
	const char *to;             /* recipient user id, or the group id */
	bool is_group;
	uint64_t ts;                /* sender's clock, ms since the epoch */
	uint64_t bts;               /* broker's clock, ms (history: the sort key; for
	                             * one's own direct messages, the sending time) */
	const char *content_type;   /* "text/plain" when the sender gave none */
	const void *body;           /* body bytes, followed by a NUL byte that is
	                             * not counted in body_len; never NULL */
	size_t body_len;
	bool outgoing;              /* sent by this user */
	enum mqim_msg_state state;
};

/* Options of mqim_create().  Start from MQIM_OPTIONS_INIT, which sets every
 * field to its default, then change what you need; fields are used as given.
 * Strings are copied by mqim_create(). */
struct mqim_options {
	int version;                  /* MQIM_OPTIONS_VERSION */
	const char *host;             /* broker host, default "localhost" */
	int port;                     /* default 1883 */
	const char *uri;              /* overrides host and port: "tcp://h:p" or
	                               * "ssl://h:p" (also mqtt:// and mqtts://) */
	const char *ca_file;          /* PEM trust store for ssl://; NULL: the system's.
	                               * With host and port, a CA or a client
	                               * certificate means ssl:// */
	const char *user;             /* required: the user id */
	const char *password;         /* the password or token */
	const char *client_id;        /* NULL: "{user}/{device id}", the device id made
	                               * once and kept in the data folder */
	const char *data_dir;         /* required: folder of the outbox, seen-set and
	                               * history (created 0700 if missing); one client
	                               * at a time may use it (MQIM_EBUSY otherwise) */
	const char *const *groups;    /* NULL-terminated group ids to join, or NULL */
	unsigned keepalive_s;         /* MQTT keepalive, default 60 */
	unsigned session_expiry_s;    /* how long the broker keeps the session and
	                               * queues messages while away, default 7 days */
	unsigned connect_timeout_ms;  /* TCP connect + CONNACK, then again for the
	                               * inbox SUBACK; default 10000 */
	unsigned ack_timeout_ms;      /* PUBACK / PUBCOMP wait; past it the link is
	                               * taken as dead and reconnected at once,
	                               * default 20000 */
	unsigned resend_timeout_ms;   /* no receipt this long after the broker took a
	                               * message: resend it (same id), default 15000 */
	unsigned max_resends;         /* resends before FAILED, default 3 */
	unsigned backoff_min_ms;      /* reconnect delay, doubling: default 1000 */
	unsigned backoff_max_ms;      /* ... up to this, default 60000 */
	unsigned max_attempts;        /* failed attempts in a row before GAVE_UP;
	                               * 0 (the default) retries for ever */
	unsigned max_inflight;        /* QoS 1/2 messages in flight at most, also
	                               * capped by the broker's Receive Maximum;
	                               * default 20 */
	size_t max_payload;           /* largest envelope sent or accepted, default 65536 */
	unsigned seen_max;            /* (fr, id) pairs remembered to drop duplicates,
	                               * default 100000 */
	int durability;               /* MQIM_DURABLE_FULL (default): an acknowledged
	                               * send survives a power cut; MQIM_DURABLE_APP:
	                               * survives a crash of the app, not of the OS
	                               * (faster: no fsync per write) */
	/* version 2 */
	const char *cert_file;        /* PEM client certificate for mutual TLS, or NULL */
	const char *key_file;         /* its PEM private key (may be cert_file itself) */
	int insecure;                 /* 1: skip verifying the server's certificate and
	                               * host name (tests only; verified by default) */
};

#define MQIM_OPTIONS_VERSION 2
#define MQIM_DURABLE_FULL 0
#define MQIM_DURABLE_APP  1

#define MQIM_OPTIONS_INIT { MQIM_OPTIONS_VERSION, "localhost", 1883, NULL, NULL, \
	NULL, NULL, NULL, NULL, NULL, 60, 7u * 24 * 3600, 10000, 20000, 15000, 3, \
	1000, 60000, 0, 20, 65536, 100000, MQIM_DURABLE_FULL, NULL, NULL, 0 }

/* Callbacks; any may be NULL.  All come on the client's library thread, one
 * at a time (see Threads above); user_data is the pointer given to
 * mqim_create(). */
struct mqim_callbacks {
	int version;                  /* MQIM_CALLBACKS_VERSION */
	/* The connection state changed.  err says why when there is a reason
	 * (MQIM_ECONN, MQIM_ETIMEOUT, MQIM_EAUTH, MQIM_EDENIED, MQIM_ETAKEN...),
	 * else MQIM_OK. */
	void (*on_state)(mqim_client *c, enum mqim_state state, int err, void *user_data);
	/* A new message arrived (already stored in the history, its receipt
	 * already queued).  Each (from, id) comes at most once. */
	void (*on_message)(mqim_client *c, const struct mqim_message *m, void *user_data);
	/* An outgoing message changed state.  err is MQIM_OK, or for FAILED:
	 * MQIM_EDENIED (the broker refused it) or MQIM_ETIMEOUT (no receipt
	 * after every resend). */
	void (*on_message_state)(mqim_client *c, const uint8_t id[MQIM_ID_LEN],
				 enum mqim_msg_state state, int err, void *user_data);
	/* A watched contact's presence (mqim_watch_presence()). */
	void (*on_presence)(mqim_client *c, const char *user, bool online,
			    uint64_t bts, void *user_data);
	/* Something went wrong that no call can return: a malformed message was
	 * dropped, a group subscription was refused, the disk is full...  what
	 * is a sentence for a log. */
	void (*on_error)(mqim_client *c, int err, const char *what, void *user_data);
};

#define MQIM_CALLBACKS_VERSION 1
#define MQIM_CALLBACKS_INIT { MQIM_CALLBACKS_VERSION, NULL, NULL, NULL, NULL, NULL }

/* Create a client: check the options, open (or create) the data folder and
 * its database, start the library thread.  Does not connect.  cbs may be
 * NULL; it is copied.  On success *out must be freed with mqim_close().
 * Errors: MQIM_EINVAL (a missing or bad option), MQIM_EBADNAME (user or a
 * group id), MQIM_EBUSY (another client uses the data folder), MQIM_EIO,
 * MQIM_ECORRUPT, MQIM_EDB, MQIM_ENOSPC, MQIM_ENOMEM; on error nothing is
 * left running or allocated. */
MQIM_EXPORT int mqim_create(const struct mqim_options *opts,
			    const struct mqim_callbacks *cbs, void *user_data,
			    mqim_client **out);

/* Start connecting; returns at once, on_state tells the rest.  Messages
 * waiting in the outbox go out, in order, once connected.  MQIM_OK also
 * when already started; MQIM_ECLOSED after mqim_logout(). */
MQIM_EXPORT int mqim_connect(mqim_client *c);

/* Connect now, forgetting the backoff delay and the attempt count: after
 * GAVE_UP, AUTH_FAILED or TAKEN_OVER, or when the network changed.  MQIM_OK
 * when connected or connecting already; MQIM_ECLOSED after mqim_logout(). */
MQIM_EXPORT int mqim_reconnect(mqim_client *c);

/* Log out: publish the retained presence "offline", disconnect, and never
 * reconnect.  The broker keeps the session (messages sent meanwhile wait for
 * the next login, until options.session_expiry_s); the outbox and history
 * stay on disk and remain readable.  Waits up to about four seconds for the
 * broker to confirm (from a callback too); on_state reports LOGGED_OUT.
 * Later mqim_send(), mqim_connect() ... return MQIM_ECLOSED: create a new
 * client to log in again. */
MQIM_EXPORT int mqim_logout(mqim_client *c);

/* Disconnect (presence "offline", the session kept), stop the library
 * thread, close the database, free c.  NULL is allowed.  Messages still in
 * the outbox go out on the next start.  The database is left whole in
 * {data_dir}/mqim.db: its write-ahead log is written back and removed (a
 * copy of that one file is a complete backup).  No callback comes after it returns
 * (called from a callback: once that callback returns). */
MQIM_EXPORT void mqim_close(mqim_client *c);

/* The current connection state; this function can't fail. */
MQIM_EXPORT enum mqim_state mqim_get_state(mqim_client *c);

/* The client id in use and the user id; owned by c, valid until mqim_close(). */
MQIM_EXPORT const char *mqim_client_id(mqim_client *c);
MQIM_EXPORT const char *mqim_user(mqim_client *c);

/* Send a message (kind "msg") to the user `to`, or to the group `to` when
 * is_group.  ct is the content type (NULL: "text/plain"); body may be NULL
 * when len is 0.  qos 0, 1 or 2.  The new id (UUIDv7) is written to id_out
 * (may be NULL) and the call returns at once, connected or not.
 *
 * Every message is written to the outbox before this returns MQIM_OK, and
 * with QoS 1 and 2 durably so (see options.durability): a crash loses
 * nothing, and the next start sends it.  It goes out in order once
 * connected, and stays in the outbox until its receipt arrives: QoS 1 and 2
 * messages are resent with the same id after options.resend_timeout_ms, at
 * most options.max_resends times, then FAILED (kept for mqim_retry()).  QoS 0
 * messages are published once, never resent.  on_message_state reports each
 * change.  Errors: MQIM_EINVAL, MQIM_EBADNAME, MQIM_ETOOBIG (the envelope is
 * over options.max_payload), MQIM_ENOSPC (disk full: nothing was queued),
 * MQIM_EDB, MQIM_EIO, MQIM_ECLOSED (logged out). */
MQIM_EXPORT int mqim_send(mqim_client *c, const char *to, bool is_group,
			  const char *ct, const void *body, size_t len, int qos,
			  uint8_t id_out[MQIM_ID_LEN]);

/* Sending fast.  mqim_send() waits for its own write to the outbox, and
 * with MQIM_DURABLE_FULL for the disk to confirm it (an fsync, about a
 * millisecond): one thread calling it in a loop sends a few thousand
 * messages a second.  Sends made at the same moment from several threads
 * share one write.  A single thread that has many messages to send either
 * hands them over together, mqim_send_many(), or does not wait for the
 * disk, mqim_send_nowait(); both keep the promise that a message reported
 * stored is on disk (options.durability), and the sending order. */

/* One message of mqim_send_many(): the arguments of mqim_send().  Start
 * from MQIM_OUTGOING_INIT (QoS 1, text/plain), then set the fields. */
struct mqim_outgoing {
	int version;                /* MQIM_OUTGOING_VERSION */
	const char *to;             /* the recipient user, or the group */
	bool is_group;
	const char *content_type;   /* NULL: "text/plain" */
	const void *body;           /* may be NULL when body_len is 0 */
	size_t body_len;
	int qos;                    /* 0, 1 or 2 */
};

#define MQIM_OUTGOING_VERSION 1
#define MQIM_OUTGOING_INIT { MQIM_OUTGOING_VERSION, NULL, false, NULL, NULL, 0, 1 }
#define MQIM_SEND_MANY_MAX 1024   /* messages per mqim_send_many() call */

/* Send n messages (1 to MQIM_SEND_MANY_MAX) with one write to the outbox:
 * each is checked and given an id as by mqim_send(), then all are stored
 * in one transaction, in array order, durably (options.durability) before
 * this returns MQIM_OK, at the cost of one disk sync for the lot.  They go
 * out in that order, after anything sent before, and each then lives as a
 * message sent by mqim_send() does (states, resends, mqim_retry()).
 * ids_out (may be NULL) receives the ids: ids_out[i] is msgs[i]'s.
 *
 * All or nothing: on error none of the messages was queued and ids_out
 * is left as it was.  msgs and everything it points to are borrowed;
 * nothing is kept after the call (the encoded messages are held in memory
 * during it: up to n times options.max_payload).
 *
 * Errors: those of mqim_send() (the first invalid message decides:
 * MQIM_EINVAL, MQIM_EBADNAME, MQIM_ETOOBIG; the store: MQIM_ENOSPC,
 * MQIM_EIO, MQIM_EDB; MQIM_ECLOSED), and MQIM_EINVAL for n == 0,
 * n > MQIM_SEND_MANY_MAX, msgs NULL or an element whose version is not
 * MQIM_OUTGOING_VERSION. */
MQIM_EXPORT int mqim_send_many(mqim_client *c, const struct mqim_outgoing *msgs, size_t n,
			       uint8_t (*ids_out)[MQIM_ID_LEN]);

#define MQIM_NOWAIT_MAX        10000       /* messages waiting to be stored */
#define MQIM_NOWAIT_MAX_BYTES  (16u << 20) /* ... and their bytes (envelope and body) */

/* Send a message without waiting for the disk.  The arguments, the checks
 * and the id are those of mqim_send(); the message is handed to the
 * library thread, which stores it together with whatever else is queued at
 * that moment (one write and one disk sync for all of them) and then
 * reports it through callbacks.on_message_state, once:
 *   QUEUED   it is in the outbox, durably (options.durability): from here
 *            on it lives as a message sent by mqim_send() does, and
 *            SENT, DELIVERED ... follow;
 *   FAILED   it could not be stored, err says why (MQIM_ENOSPC, MQIM_EIO,
 *            MQIM_EDB, MQIM_ECLOSED): it is not in the outbox nor in the
 *            history (mqim_message_state() says MQIM_ENOTFOUND and
 *            mqim_retry() cannot resend it): send it again.
 * MQIM_OK from this call promises nothing about the disk: until QUEUED is
 * reported, a crash may lose the message.  Messages are stored and sent
 * in the order of the calls (and of mqim_send() calls made from the same
 * thread).  At most MQIM_NOWAIT_MAX messages, MQIM_NOWAIT_MAX_BYTES of
 * envelopes and bodies, wait to be stored at a time: past that this returns
 * MQIM_EBUSY and queues nothing; wait for a QUEUED or FAILED report, or
 * call mqim_send(), which waits.  From a callback the message is stored
 * before this returns (QUEUED or FAILED comes after the callback).
 *
 * Errors: MQIM_EINVAL, MQIM_EBADNAME, MQIM_ETOOBIG (the checks of
 * mqim_send(): then id_out is not written), MQIM_EBUSY, MQIM_ENOMEM,
 * MQIM_ECLOSED (the client is closing).  On error no callback comes for
 * the message. */
MQIM_EXPORT int mqim_send_nowait(mqim_client *c, const char *to, bool is_group,
				 const char *ct, const void *body, size_t len, int qos,
				 uint8_t id_out[MQIM_ID_LEN]);

/* Mark the received message (from, id) read: its state becomes READ and a
 * `read` receipt goes to its sender (queued in the outbox, like a message).
 * Marking it again does nothing.  Errors: MQIM_ENOTFOUND (not in the
 * history), MQIM_EBADNAME, MQIM_ENOSPC, MQIM_EDB, MQIM_ECLOSED. */
MQIM_EXPORT int mqim_mark_read(mqim_client *c, const char *from,
			       const uint8_t id[MQIM_ID_LEN]);

/* The state of the outgoing message id into *out.  MQIM_ENOTFOUND when this
 * client never sent it (or its history was deleted). */
MQIM_EXPORT int mqim_message_state(mqim_client *c, const uint8_t id[MQIM_ID_LEN],
				   enum mqim_msg_state *out);

/* Put a FAILED message back in the outbox as QUEUED, with a fresh resend
 * budget and the same id.  MQIM_ENOTFOUND when it is not in the outbox,
 * MQIM_ESTATE when it is there but not FAILED. */
MQIM_EXPORT int mqim_retry(mqim_client *c, const uint8_t id[MQIM_ID_LEN]);

/* Called once per message; return non-zero to stop (that value is then
 * returned by the walk).  m is borrowed: valid until the callback returns. */
typedef int (*mqim_message_cb)(void *ctx, const struct mqim_message *m);

/* Page through the history of one conversation (peer: the other user, or
 * the group when is_group), newest first: up to limit messages strictly
 * older than (before_bts, before_id) in (bts, id) order.  Start with
 * before_bts = 0 (meaning "now and later") and before_id NULL; continue with
 * the bts and id of the last message seen.  cb runs on the calling thread
 * before this returns.  Returns the number of messages given to cb (>= 0),
 * a callback's non-zero value, or an error. */
MQIM_EXPORT int mqim_history(mqim_client *c, const char *peer, bool is_group,
			     uint64_t before_bts, const uint8_t *before_id,
			     unsigned limit, mqim_message_cb cb, void *ctx);

/* An entry of the outbox listing; borrowed like a message. */
struct mqim_outbox_entry {
	uint8_t id[MQIM_ID_LEN];
	const char *to;
	bool is_group;
	int qos;
	enum mqim_msg_state state;  /* QUEUED, SENT (awaiting its receipt) or FAILED */
	unsigned attempts;          /* times published so far */
	uint64_t created;           /* ms since the epoch */
	const char *content_type;
	const void *body;           /* NUL-terminated like mqim_message.body */
	size_t body_len;
};

typedef int (*mqim_outbox_cb)(void *ctx, const struct mqim_outbox_entry *e);

/* List the messages in the outbox (receipts in transit are not listed), in
 * sending order; cb runs on the calling thread.  Returns the count, a
 * callback's non-zero value, or an error. */
MQIM_EXPORT int mqim_outbox(mqim_client *c, mqim_outbox_cb cb, void *ctx);

/* Follow a group: subscribe now (if connected) and on every connect.  Kept
 * in the data folder.  A refusal by the broker (not a member) comes as
 * on_error(MQIM_EDENIED).  Leave: unsubscribe and forget. */
MQIM_EXPORT int mqim_join_group(mqim_client *c, const char *gid);
MQIM_EXPORT int mqim_leave_group(mqim_client *c, const char *gid);

/* Tell the client who the members of group gid are, so that its group
 * messages count as delivered only once every member has them.
 *
 * members is a NULL-terminated list of user ids; it replaces gid's
 * previous roster.  It may name this client's own user (who is never
 * waited for) and repeat a name.  NULL or an empty list forgets the
 * roster.  The roster is kept in the data folder, across restarts, until
 * replaced or forgotten; it does not join the group (mqim_join_group()) and
 * leaving the group does not forget it.  The list and its strings are
 * borrowed: nothing is kept after the call.
 *
 * What it changes.  The wire contract gives a client no way to list a
 * group's members, and every member's client sends its own receipt.
 * Without a roster, a group message leaves the outbox and becomes
 * DELIVERED (or READ) at the first receipt from anyone, so a member whose
 * copy was lost (her session lost with a broker restart, or not created
 * yet because she never logged in) never gets it.  With a roster, a group
 * message sent at QoS 1 or 2 waits for a receipt from every member named
 * at the moment of mqim_send() except the sender: it stays SENT in the
 * outbox and is resent to the group (marked, so the broker delivers it
 * again; members who have it drop the copy and receipt it again) every
 * options.resend_timeout_ms, within options.max_resends.  on_message_state
 * reports DELIVERED once all of them have answered, or READ when at least
 * one of the answers was a `read`; a later `read` from anyone moves a
 * DELIVERED message to READ.  If the budget runs out first, the message is
 * FAILED (MQIM_ETIMEOUT) as usual; the receipts already in are kept, so
 * late ones can still complete it, and mqim_retry() resends it to the
 * group.  Receipts from users not named are ignored for such a message.
 * Changing the roster affects messages sent afterwards only: a member
 * added later is not waited for, and one removed later still is (the
 * message may then end FAILED).  A roster that names nobody but the
 * sender counts as no roster.  QoS 0 messages never wait for receipts.
 *
 * Errors: MQIM_EINVAL (c is NULL), MQIM_EBADNAME (gid or a member is not
 * a valid name: then nothing changed), MQIM_ENOSPC, MQIM_EIO, MQIM_EDB,
 * MQIM_ECLOSED (mqim_close() is under way). */
MQIM_EXPORT int mqim_set_group_members(mqim_client *c, const char *gid,
				       const char *const *members);

/* Watch a contact's retained presence: on_presence reports the current
 * value at once (if the contact ever connected) and every change.  Kept
 * for the life of c (not in the data folder). */
MQIM_EXPORT int mqim_watch_presence(mqim_client *c, const char *user);
MQIM_EXPORT int mqim_unwatch_presence(mqim_client *c, const char *user);

/* Message ids as text: 32 lowercase hex digits plus a NUL into out (33
 * bytes); returns out.  Parsing accepts that form and the dashed UUID form;
 * returns MQIM_OK or MQIM_EINVAL. */
MQIM_EXPORT char *mqim_id_to_hex(const uint8_t id[MQIM_ID_LEN], char out[MQIM_ID_HEX_LEN + 1]);
MQIM_EXPORT int mqim_id_from_hex(const char *text, uint8_t id[MQIM_ID_LEN]);

#ifdef __cplusplus
}
#endif
#endif /* MQIM_H */
