/* admin.h - the $CONTROL/mqim/v1 command table and its executor.
 *
 * The table is the one list of admin commands (docs/protocol.md, Admin
 * control topic): the broker plugin dispatches from it and mqimctl builds
 * requests from it, so the two cannot drift apart.  mqim_admin_exec() runs
 * one command against the SQLite store and writes its JSON response; the
 * plugin then applies the returned effect to its in-memory tables, and
 * `mqimctl --db` uses the very same function offline.
 *
 * Arguments beyond the contract's (docs/protocol.md decides these):
 *  - createUser takes an optional "admin" (bool, default false);
 *  - wherever "password" is required, "passwordHash" may stand in for it:
 *    an encoded hash mqim_passwd_format_supported() accepts ($argon2id$,
 *    $argon2i$, Mosquitto's $7$ and $6$), stored as given.  mqimctl's
 *    `user import` uses it to carry Mosquitto password files over.
 * Giving both is an error.  Unknown extra keys are ignored.
 *
 * JSON is cJSON.  Ownership: cJSON objects passed in stay the caller's.
 * Passwords are never copied into a response, an effect or a log line.
 * Thread rules: as for the store passed in.
 */
#ifndef MQIM_ADMIN_H
#define MQIM_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "names.h"
#include "passwd.h"
#include "store.h"

enum mqim_cmd_id {
	MQIM_CMD_CREATE_USER,
	MQIM_CMD_DELETE_USER,
	MQIM_CMD_SET_USER_PASSWORD,
	MQIM_CMD_GET_USER,
	MQIM_CMD_LIST_USERS,
	MQIM_CMD_SET_ADMIN,
	MQIM_CMD_DISABLE_USER,
	MQIM_CMD_ENABLE_USER,
	MQIM_CMD_CREATE_GROUP,
	MQIM_CMD_DELETE_GROUP,
	MQIM_CMD_LIST_GROUPS,
	MQIM_CMD_GET_GROUP,
	MQIM_CMD_ADD_GROUP_MEMBER,
	MQIM_CMD_REMOVE_GROUP_MEMBER,
	MQIM_CMD_KICK_USER,
	MQIM_CMD__COUNT
};

/* Arguments a command requires (bit set). */
#define MQIM_ARG_USERNAME 0x01u  /* "username": valid name */
#define MQIM_ARG_PASSWORD 0x02u  /* "password": non-empty string */
#define MQIM_ARG_GROUP    0x04u  /* "group": valid name */
#define MQIM_ARG_ADMIN    0x08u  /* "admin": bool */

struct mqim_cmd_def {
	const char *name;        /* wire name, e.g. "createUser" */
	enum mqim_cmd_id id;
	unsigned args;           /* MQIM_ARG_* */
	bool mutates;            /* changes the store (or sessions) */
};

/* The table, MQIM_CMD__COUNT entries in enum order. */
extern const struct mqim_cmd_def mqim_cmd_table[MQIM_CMD__COUNT];

/* Find a command by wire name; NULL if unknown. */
const struct mqim_cmd_def *mqim_cmd_lookup(const char *name);

/* What a successful command changed, for a live broker to apply in memory.
 * For setUserPassword/createUser, hash holds the new encoded hash.  flag is
 * the new admin bit for setAdmin/createUser, and true for disableUser, false
 * for enableUser.  changed is the command's `mutates` (true for kickUser: the
 * broker must act).  username/group are "" when the command has none. */
struct mqim_admin_effect {
	enum mqim_cmd_id cmd;
	bool changed;                       /* false for read-only commands */
	char username[MQIM_NAME_MAX + 1];
	char group[MQIM_NAME_MAX + 1];
	char hash[MQIM_HASH_MAX];
	bool flag;                          /* admin for setAdmin/createUser */
};

/* Parse a request payload {"commands": [...]}.  On success *root is a cJSON
 * tree the caller frees with cJSON_Delete() and *commands points into it.
 * On failure returns MQIM_EINVAL with *err a static sentence. */
int mqim_admin_parse(const void *payload, size_t len, cJSON **root,
		     const cJSON **commands, const char **err);

/* Run one command object against st and append its response object to the
 * array `responses`: {"command": name[, "correlationData": ...]} plus
 * "error": "<sentence>" on failure or "data": {...} for queries.  pp sets
 * the cost of new password hashes (NULL: defaults).  fx (may be NULL) is
 * filled on success and zeroed on failure.  Returns MQIM_OK or the error
 * that was reported (MQIM_ENOMEM alone may leave `responses` unchanged).
 *
 * "command" is echoed when it is a string, "correlationData" when it is a
 * string.  Data shapes:
 *   getUser    {"username", "admin", "disabled", "groups": [...]}
 *   listUsers  {"users": [{"username", "admin", "disabled"}, ...]}
 *   listGroups {"groups": [...]}
 *   getGroup   {"group", "members": [...]}
 * Errors are sentences such as "user already exists", "user not found",
 * "group not found", "unknown command", "invalid username: use 1-64 of
 * [A-Za-z0-9_.-], starting with a letter or digit", "missing group: add
 * \"group\": \"<name>\"".  Codes: MQIM_EINVAL (arguments), MQIM_EBADNAME,
 * MQIM_EUNSUPPORTED (unknown command), MQIM_EEXISTS, MQIM_ENOTFOUND, or a
 * store error.  Slow for createUser/setUserPassword: they hash. */
int mqim_admin_exec(struct mqim_store *st, const struct mqim_passwd_params *pp,
		    const cJSON *cmd, cJSON *responses, struct mqim_admin_effect *fx);

/* Build one command object for name with the given arguments (NULL for an
 * unused one); used by mqimctl.  Returns a new cJSON object the caller owns
 * (cJSON_Delete), or NULL if name is unknown or out of memory.  The password,
 * when given, is copied into the object: delete it as soon as it is sent. */
cJSON *mqim_admin_build(const char *name, const char *username, const char *group,
			const char *password, int admin /* -1: unused */);

#endif
