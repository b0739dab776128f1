/* store.h - the SQLite store of users and groups.
 *
 * One file holds users (name, password hash, admin, disabled), groups and
 * memberships.  The broker plugin loads it into memory at start and on
 * SIGHUP and writes every $CONTROL change through it; `mqimctl --db` edits
 * it directly.  The file is created mode 0600, in WAL mode, and every
 * statement is prepared once at open.
 *
 * Thread rules: a struct mqim_store belongs to one thread at a time.
 * Strings passed in are borrowed; no reference is kept after a call returns.
 * Records passed to callbacks are valid only until the callback returns.
 * A callback that returns non-zero stops the walk and that value is returned.
 * A callback must not query the same store: on a file whose indexes are
 * damaged in ways `PRAGMA quick_check` (run at open) does not see, a query
 * nested in a walk was seen to restart the walk for ever (the fuzz seed
 * tests/fuzz/corpus/store/nested_walk_loop).  Walk first, then look up.
 * A callback may call other store functions, but must not start the walk it
 * is called from again (each walk owns one prepared statement).  Walks are
 * in name order.
 *
 * Errors from any call: MQIM_EBUSY when another process held the file
 * locked for more than 5 seconds, MQIM_ENOSPC when the disk is full,
 * MQIM_EDB otherwise (mqim_store_errmsg() has SQLite's sentence).
 */
#ifndef MQIM_STORE_H
#define MQIM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "passwd.h"

struct mqim_store;

struct mqim_user_rec {
	char name[MQIM_NAME_MAX + 1];
	char hash[MQIM_HASH_MAX];
	bool admin;
	bool disabled;
	uint64_t created_ms;  /* when the user was added (ms since the epoch);
	                       * 0 for users of a version-1 store */
};

#define MQIM_STORE_CREATE   0x1  /* create the file (0600) and schema if missing */
#define MQIM_STORE_READONLY 0x2

/* Open the store at path.  On success *out must be closed with
 * mqim_store_close().  On failure returns MQIM_EIO (cannot open or create;
 * without MQIM_STORE_CREATE a missing file is "no such store"; a file this
 * user cannot write when READONLY is not asked), MQIM_ECORRUPT (not an
 * SQLite file, damaged per PRAGMA quick_check, or not an mqim schema),
 * MQIM_EUNSUPPORTED (schema written by a newer mqim), MQIM_EBUSY or
 * MQIM_EDB, and writes a sentence naming the file and the cause into errbuf.
 * With MQIM_STORE_CREATE an empty or missing file gets the schema; an SQLite
 * file holding other tables is still refused (MQIM_ECORRUPT). */
int mqim_store_open(const char *path, unsigned flags, struct mqim_store **out,
		    char *errbuf, size_t errlen);
void mqim_store_close(struct mqim_store *st);

/* The last SQLite error message, for logs; valid until the next call. */
const char *mqim_store_errmsg(struct mqim_store *st);

/* Group several changes into one transaction (one fsync).  begin takes the
 * write lock at once (BEGIN IMMEDIATE); transactions do not nest
 * (MQIM_ESTATE).  rollback without an open transaction does nothing. */
int mqim_store_begin(struct mqim_store *st);
int mqim_store_commit(struct mqim_store *st);
void mqim_store_rollback(struct mqim_store *st);

/* Users.  Names must pass mqim_name_valid() (MQIM_EBADNAME otherwise).
 * Errors: MQIM_EEXISTS, MQIM_ENOTFOUND, MQIM_EDB.  A hash must be a
 * non-empty string shorter than MQIM_HASH_MAX (MQIM_EINVAL); the store does
 * not check its format.  Setting a flag to the value it has is a success. */
int mqim_store_user_add(struct mqim_store *st, const char *name, const char *hash, bool admin);
int mqim_store_user_del(struct mqim_store *st, const char *name); /* and its memberships */
int mqim_store_user_get(struct mqim_store *st, const char *name, struct mqim_user_rec *out);
int mqim_store_user_set_hash(struct mqim_store *st, const char *name, const char *hash);
int mqim_store_user_set_admin(struct mqim_store *st, const char *name, bool admin);
int mqim_store_user_set_disabled(struct mqim_store *st, const char *name, bool disabled);
int mqim_store_users(struct mqim_store *st,
		     int (*cb)(void *ctx, const struct mqim_user_rec *u), void *ctx);

/* Groups and members.  member_add: MQIM_EEXISTS when already a member,
 * MQIM_ENOTFOUND when the group or the user does not exist; member_del:
 * MQIM_ENOTFOUND when not a member. */
int mqim_store_group_add(struct mqim_store *st, const char *gid);
int mqim_store_group_del(struct mqim_store *st, const char *gid); /* and its memberships */
int mqim_store_group_exists(struct mqim_store *st, const char *gid); /* MQIM_OK or ENOTFOUND */
int mqim_store_groups(struct mqim_store *st, int (*cb)(void *ctx, const char *gid), void *ctx);
int mqim_store_member_add(struct mqim_store *st, const char *gid, const char *user);
int mqim_store_member_del(struct mqim_store *st, const char *gid, const char *user);
/* Members of one group, by name; MQIM_ENOTFOUND when the group is missing. */
int mqim_store_members(struct mqim_store *st, const char *gid,
		       int (*cb)(void *ctx, const char *user), void *ctx);
/* Groups of one user, by name; MQIM_ENOTFOUND when the user is missing. */
int mqim_store_user_groups(struct mqim_store *st, const char *user,
			   int (*cb)(void *ctx, const char *gid), void *ctx);
/* Every (group, member) pair, for loading. */
int mqim_store_memberships(struct mqim_store *st,
			   int (*cb)(void *ctx, const char *gid, const char *user), void *ctx);

#endif
