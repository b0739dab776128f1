/* plugin.h - the mqim broker plugin's one context and its internal API.
 *
 * All plugin state lives in one struct mqim_ctx, created by
 * mosquitto_plugin_init() and handed to every callback as userdata; there is
 * no other mutable global.  Mosquitto 2.0 runs every callback on its single
 * event-loop thread, so nothing here locks, and nothing on a per-message path
 * may block: no disk access, no password hashing, O(1) lookups only.
 *
 * One section per source file below.  Names: mqim__ for functions shared
 * between plugin files, static for the rest.
 */
#ifndef MQIM_PLUGIN_H
#define MQIM_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <stdio.h>

#include "mqim.h"
#include "alloc.h" /* before uthash.h: routes its allocations */
#include <uthash.h>

#include "dedup.h"
#include "envelope.h"
#include "names.h"
#include "passwd.h"
#include "store.h"
#include "topics.h"

struct mosquitto;
struct mosquitto_plugin_id_t;

/* ---- options (plugin.c) ------------------------------------------------ */

struct mqim_opts {
	char *db_path;              /* plugin_opt_db_path (required) */
	uint32_t dedup_window_s;    /* plugin_opt_dedup_window, default 600 */
	uint32_t dedup_max;         /* plugin_opt_dedup_max, default 1,000,000 */
	uint32_t max_payload;       /* plugin_opt_max_payload, default 65536 */
	uint32_t auth_cache_ttl_s;  /* plugin_opt_auth_cache_ttl, default 3600 */
	uint32_t hash_budget_ms;    /* plugin_opt_auth_hash_budget_ms per second, default 300 */
	bool push;                  /* plugin_opt_push, default true */
	struct mqim_passwd_params pw; /* plugin_opt_argon2_memory / _passes / _lanes */
	/* security.md: tokens, sessions, throttling, rate limits */
	char *jwt_secret_file;      /* plugin_opt_jwt_secret_file: HS256 */
	char *jwt_public_key_file;  /* plugin_opt_jwt_public_key_file: RS256 / ES256 */
	char *jwt_audience;         /* plugin_opt_jwt_audience, default "mqim" */
	char *jwt_issuer;           /* plugin_opt_jwt_issuer, default none */
	bool jwt_auto_create;       /* plugin_opt_jwt_auto_create, default false */
	uint32_t max_sessions;      /* plugin_opt_max_sessions_per_user, 0 = unlimited */
	uint32_t lockout_failures;  /* plugin_opt_lockout_failures, default 5 */
	uint32_t lockout_base_s;    /* plugin_opt_lockout_base, default 60 */
	uint32_t lockout_max_s;     /* plugin_opt_lockout_max, default 3600 */
	uint32_t lockout_entries;   /* plugin_opt_lockout_entries, default 100000 */
	bool lockout_by_address;    /* plugin_opt_lockout_by_address, default true */
	uint32_t rate_per_user;     /* plugin_opt_rate_per_user msgs/s, 0 = off */
	uint32_t rate_burst;        /* plugin_opt_rate_burst, default 2 x rate */
};

/* ---- users and groups (users.c) ---------------------------------------- */

struct mqim_group;

/* One membership, kept in both the user's and the group's table. */
struct mqim_member {
	UT_hash_handle hh;          /* in user->groups (key: group name) */
	UT_hash_handle gh;          /* in group->members (key: user name) */
	struct mqim_user *user;
	struct mqim_group *group;
};

struct mqim_user {
	UT_hash_handle hh;          /* ctx->users, key: name */
	char name[MQIM_NAME_MAX + 1];
	size_t name_len;
	char *hash;                 /* encoded password hash, owned */
	uint32_t idx;               /* stable while the broker runs; dedup key */
	bool admin;
	bool disabled;
	uint32_t online;            /* sessions logged in now */
	uint64_t since_ms;          /* when the account was created: messages
	                             * stamped before belong to an earlier account
	                             * of the same name (0: unknown, v1 store) */
	uint8_t verified_mac[32];   /* HMAC of the last verified password */
	time_t verified_until;      /* 0: nothing remembered */
	struct mqim_member *groups; /* by group name (hh) */
	/* message rate limit (message.c): a token bucket in milli-tokens */
	uint64_t rate_tokens;
	uint64_t rate_at_ms;
	uint64_t rate_logged_ms;
	uint32_t rate_refused;      /* refusals since the last log line */
};

struct mqim_group {
	UT_hash_handle hh;          /* ctx->groups, key: name */
	char name[MQIM_NAME_MAX + 1];
	size_t name_len;
	struct mqim_member *members; /* by user name (gh) */
};

struct mqim_ctx;

struct mqim_user *mqim__user_find(struct mqim_ctx *ctx, const char *name);
struct mqim_user *mqim__user_find_n(struct mqim_ctx *ctx, const char *name, size_t len);
struct mqim_group *mqim__group_find_n(struct mqim_ctx *ctx, const char *name, size_t len);
bool mqim__is_member(const struct mqim_user *u, const char *gid, size_t len);
/* The group named gid of which u is a member, or NULL. */
struct mqim_group *mqim__member_group(const struct mqim_user *u, const char *gid, size_t len);

int mqim__user_put(struct mqim_ctx *ctx, const char *name, const char *hash, bool admin,
		   bool disabled);
void mqim__user_remove(struct mqim_ctx *ctx, const char *name);
int mqim__group_put(struct mqim_ctx *ctx, const char *gid);
void mqim__group_remove(struct mqim_ctx *ctx, const char *gid);
int mqim__member_put(struct mqim_ctx *ctx, const char *gid, const char *user);
void mqim__member_remove(struct mqim_ctx *ctx, const char *gid, const char *user);

/* Load users and groups from the store, replacing the tables in memory while
 * keeping what belongs to the running broker (dedup index, online counts,
 * remembered verifications for unchanged hashes).  On error nothing is
 * changed.  Logs "mqim: loaded|reloaded N users and M groups from PATH". */
int mqim__users_load(struct mqim_ctx *ctx, bool reload);
void mqim__users_free(struct mqim_ctx *ctx);

/* ---- sessions (sessions.c) --------------------------------------------- */

/* A logged-in connection.  Besides the login, it caches what the checks of
 * every message would otherwise look up by name: its user, the group it
 * last used and the inbox it last wrote to.  The cache holds pointers into
 * the tables, valid only while ctx->epoch equals the session's epoch (every
 * change of the tables moves ctx->epoch on): mqim__session_user() renews it. */
struct mqim_session {
	UT_hash_handle hh;          /* ctx->sessions, key: client pointer; oldest first */
	UT_hash_handle hh_id;       /* ctx->sessions_by_id, key: client_id */
	const struct mosquitto *client;
	char *client_id;            /* owned copy, for targeted kicks */
	time_t token_exp;           /* 0, or when the login token expires */
	uint64_t epoch;             /* ctx->epoch when the cache was filled */
	struct mqim_user *u;        /* the user named user, or NULL */
	struct mqim_group *group;   /* a group of which u is a member, or NULL */
	struct mqim_user *peer;     /* a user whose inbox this session wrote to, or NULL */
	const char *uname;          /* the client's username pointer once found
	                             * equal to user (acl.c), or NULL */
	char user[MQIM_NAME_MAX + 1];
};

void mqim__session_add(struct mqim_ctx *ctx, const struct mosquitto *client, const char *user,
		       time_t token_exp);
void mqim__session_remove(struct mqim_ctx *ctx, const struct mosquitto *client);
void mqim__sessions_free(struct mqim_ctx *ctx);

/* The session of client, or NULL: O(1), one multiply and a probe or two
 * (inline below: it runs at every check). */
static inline struct mqim_session *mqim__session_find(const struct mqim_ctx *ctx,
						      const struct mosquitto *client);
/* The session's user (NULL if it no longer exists), from its cache; the
 * cache is renewed first when the tables changed since it was filled. */
static inline struct mqim_user *mqim__session_user(struct mqim_ctx *ctx,
						   struct mqim_session *s);

/* Queue a user's connections to be closed at the next tick. */
void mqim__kick_later(struct mqim_ctx *ctx, const char *user);
/* Queue a check of the user's session count (plugin_opt_max_sessions_per_user). */
void mqim__limit_later(struct mqim_ctx *ctx, const char *user);
void mqim__kicks_run(struct mqim_ctx *ctx);
/* Close sessions whose login token expired (once a second). */
void mqim__sessions_expire(struct mqim_ctx *ctx, time_t now);

/* ---- tokens (jwt.c) ----------------------------------------------------- */

/* Load the configured keys; MQIM_OK when none is configured. */
int mqim__jwt_init(struct mqim_ctx *ctx);
void mqim__jwt_free(struct mqim_ctx *ctx);
/* True when tokens are configured and password has a JWT's shape. */
bool mqim__jwt_applies(const struct mqim_ctx *ctx, const char *password);
/* Verify token for user: MQIM_OK with *exp set, or an error with *reason. */
int mqim__jwt_verify(struct mqim_ctx *ctx, const char *user, const char *token,
		     time_t now, time_t *exp, const char **reason);

/* ---- login throttling (throttle.c) -------------------------------------- */

struct mqim_fail {
	UT_hash_handle hh;          /* oldest first */
	uint32_t failures;          /* in a row */
	time_t locked_until;
	time_t last;
	char key[64 + 2 + 46];      /* "u:NAME" or "a:ADDRESS" */
};

/* True when the user or the address is locked out now. */
bool mqim__throttle_locked(struct mqim_ctx *ctx, const char *user, const char *address,
			   time_t now);
void mqim__throttle_failed(struct mqim_ctx *ctx, const char *user, const char *address,
			   time_t now);
void mqim__throttle_reset(struct mqim_ctx *ctx, const char *user, const char *address);
void mqim__throttle_free(struct mqim_ctx *ctx);

/* ---- logging (log.c) ---------------------------------------------------- */

/* Log a refusal once: "mqim: denied WHAT client=ID user=USER: REASON".
 * Client-supplied strings are sanitised; no password or payload is logged. */
void mqim__deny(const struct mosquitto *client, const char *what, const char *topic,
		const char *reason);

/* Copy s into dst (size n) replacing bytes outside printable ASCII by '?'. */
const char *mqim__clean(const char *s, char *dst, size_t n);

/* ---- the callbacks (auth.c, acl.c, message.c, control.c, tick.c) ------- */

int mqim__on_basic_auth(int event, void *event_data, void *userdata);
int mqim__on_acl_check(int event, void *event_data, void *userdata);
int mqim__on_message(int event, void *event_data, void *userdata);
int mqim__on_control(int event, void *event_data, void *userdata);
int mqim__on_disconnect(int event, void *event_data, void *userdata);
int mqim__on_reload(int event, void *event_data, void *userdata);
int mqim__on_tick(int event, void *event_data, void *userdata);

int mqim__auth_init(struct mqim_ctx *ctx);

void mqim__poison_free(struct mqim_ctx *ctx);

/* The dedup window across graceful restarts (persist.c). */
void mqim__dedup_save(struct mqim_ctx *ctx);
void mqim__dedup_load(struct mqim_ctx *ctx);

/* Wall clock in milliseconds since the epoch. */
uint64_t mqim__now_ms(void);

/* ---- the context -------------------------------------------------------- */

struct mqim_kick {
	struct mqim_kick *next;
	bool limit_only;            /* only sessions over max_sessions_per_user */
	char user[MQIM_NAME_MAX + 1];
};

/* Payload pointers of duplicates: never delivered (acl.c, message.c). */
struct mqim_poison {
	UT_hash_handle hh;
	const void *payload;
};

/* The last publish that passed the write check, so the message event that
 * follows it (Mosquitto calls both from one handle__publish(), with the
 * same topic and payload pointers) neither classifies the topic nor
 * decodes the envelope a second time.  Cleared when used, and when the
 * session it names ends. */
struct mqim_last_write {
	const void *payload;
	uint32_t len;
	const struct mosquitto *client;
	const char *topic;
	struct mqim_topic t;            /* points into topic */
	struct mqim_user *user;         /* the publisher: tables do not change in between */
	struct mqim_session *session;   /* its session when its cache is usable, or NULL */
	struct mqim_user *owner;        /* an inbox's owner, when the check found it */
	uint32_t dedup_hash;            /* of (user, env.id), its memory prefetched */
	struct mqim_env env;            /* points into payload */
};

/* The last im/ topic classified (acl.c).  The write check of a publish and
 * every delivery of it that follows are given the same topic string, so
 * one entry saves a classification per delivery.  A string is recognised
 * by its address and then its bytes (an address may be reused). */
#define MQIM_TOPIC_CACHE (5 + MQIM_NAME_MAX + 1)
struct mqim_topic_cache {
	const char *ptr;                /* the string classified, or NULL */
	char copy[MQIM_TOPIC_CACHE];    /* its bytes */
	struct mqim_topic t;            /* t.name is unused: see name_off */
	size_t name_off;                /* where the name starts in the string */
	struct mqim_group *group;       /* the group a group topic names, or NULL */
	uint64_t epoch;                 /* ctx->epoch when group was looked up */
};

struct mqim_ctx {
	struct mosquitto_plugin_id_t *pid;
	struct mqim_opts opts;
	struct mqim_store *store;       /* open for the plugin's lifetime */

	struct mqim_user *users;        /* by name */
	struct mqim_group *groups;      /* by name */
	uint32_t next_user_idx;
	uint64_t epoch;                 /* moves on at every change of users, groups
	                                 * or memberships: see struct mqim_session */

	struct mqim_session *sessions;  /* by client pointer, in login order */
	struct mqim_session *sessions_by_id; /* the same, by client id */
	struct mqim_session **slots;    /* the same, by client pointer: open
	                                 * addressing, at most half full */
	size_t slot_mask;               /* slots - 1, a power of two minus one */
	unsigned slot_shift;            /* 64 - log2(slots) */
	size_t session_count;
	struct mqim_kick *kicks;        /* to run at the next tick */

	struct mqim_dedup *dedup;
	struct mqim_poison *poison;     /* in insertion order */
	unsigned poison_count;
	struct mqim_last_write last_write;
	/* The payload of the inbox message the message event accepted last,
	 * whose owner then existed and was not disabled (message.c); its
	 * deliveries, which follow at once, need no other check (acl.c).  NULL
	 * from the next write check on. */
	const void *fresh_inbox;
	struct mqim_topic_cache topic_cache;
	char why[160];                  /* text of the last envelope refusal */

	/* auth.c */
	uint8_t pepper[32];             /* random per run: keys the verification cache */
	char dummy_hash[MQIM_HASH_MAX]; /* verified for unknown users: same timing */
	int64_t hash_credit_us;         /* hashing time the budget still allows */
	uint64_t hash_refill_us;        /* when the credit was last refilled */
	struct mqim_fail *fails;        /* failed logins by user and address */
	unsigned fail_count;
	time_t last_expiry_check;       /* tick: token expiry, once a second */

	/* jwt.c */
	unsigned char *jwt_secret;
	size_t jwt_secret_len;
	unsigned char *jwt_pubkey;
	size_t jwt_pubkey_len;
};

/* ---- the per-check session lookups (sessions.c keeps the index) -------- */

static inline size_t mqim__session_slot(const struct mqim_ctx *ctx,
					const struct mosquitto *client)
{
	return (size_t)(((uint64_t)(uintptr_t)client * UINT64_C(0x9e3779b97f4a7c15)) >>
			ctx->slot_shift);
}

static inline struct mqim_session *mqim__session_find(const struct mqim_ctx *ctx,
						      const struct mosquitto *client)
{
	if (!ctx->session_count)
		return NULL;
	for (size_t i = mqim__session_slot(ctx, client);; i = (i + 1) & ctx->slot_mask) {
		struct mqim_session *s = ctx->slots[i];
		if (!s || s->client == client)
			return s;
	}
}

void mqim__session_renew(struct mqim_ctx *ctx, struct mqim_session *s);

static inline struct mqim_user *mqim__session_user(struct mqim_ctx *ctx,
						   struct mqim_session *s)
{
	if (s->epoch != ctx->epoch)
		mqim__session_renew(ctx, s);
	return s->u;
}

#endif
