/* names.h - the naming rules of the wire contract (docs/protocol.md, Names).
 *
 * User and group ids are 1 to 64 characters of [A-Za-z0-9_.-], the first a
 * letter or digit.  A client id is the user id or begins with "{user}/".
 * Pure functions: no allocation, no state, safe from any thread.
 */
#ifndef MQIM_NAMES_H
#define MQIM_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#define MQIM_NAME_MAX 64

/* True when the len bytes at s form a valid user or group id. */
bool mqim_name_valid_n(const char *s, size_t len);

/* True when the NUL-terminated s is a valid user or group id; NULL is not. */
bool mqim_name_valid(const char *s);

/* True when client_id is "{user}" or starts with "{user}/" followed by at
 * least one character (docs/protocol.md, Sessions). */
bool mqim_clientid_allowed(const char *client_id, const char *user);

#endif
