/* sessions.c - who is online, and the queue of connections to close.
 *
 * A session is added when a login succeeds and removed on the disconnect
 * event; it is keyed by the broker's client pointer, so a disconnect event
 * for a connection that never logged in is simply not found.  Each user
 * keeps a count of its sessions (presence, push).  Kicks are queued here and
 * run from the tick, never inside the callback that asked for them.
 *
 * Every check of every message starts by finding the session of a client
 * pointer, so besides uthash's table (which keeps the login order) the
 * sessions are indexed by an open-addressing table of their own: Fibonacci
 * hashing of the pointer, linear probing, at most half full, deletion by
 * backward shift.  Client pointers come from the broker's allocator, not
 * from clients, so nobody can aim at one slot.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

static void user_online(struct mqim_ctx *ctx, const char *name, int delta)
{
	struct mqim_user *u = mqim__user_find(ctx, name);
	if (!u)
		return;
	if (delta < 0 && u->online == 0)
		return;
	u->online = (uint32_t)((int64_t)u->online + delta);
}

static void session_free(struct mqim_session *s)
{
	mqim__free(s->client_id);
	mqim__free(s);
}

/* ---- the index by client pointer ---------------------------------------- */

static void slot_put(struct mqim_ctx *ctx, struct mqim_session *s)
{
	size_t i = mqim__session_slot(ctx, s->client);
	while (ctx->slots[i])
		i = (i + 1) & ctx->slot_mask;
	ctx->slots[i] = s;
}

/* Room for one more session; on error nothing is changed. */
static int slots_reserve(struct mqim_ctx *ctx)
{
	size_t cap = ctx->slots ? ctx->slot_mask + 1 : 0;
	if ((ctx->session_count + 1) * 2 <= cap)
		return MQIM_OK;
	size_t ncap = cap ? cap * 2 : 64;
	struct mqim_session **old = ctx->slots;
	struct mqim_session **slots = mqim__calloc(ncap, sizeof(*slots));
	if (!slots)
		return MQIM_ENOMEM;
	ctx->slots = slots;
	ctx->slot_mask = ncap - 1;
	ctx->slot_shift = 64u - (unsigned)__builtin_ctzll(ncap);
	for (size_t i = 0; i < cap; i++)
		if (old[i])
			slot_put(ctx, old[i]);
	mqim__free(old);
	return MQIM_OK;
}

static void slot_del(struct mqim_ctx *ctx, const struct mqim_session *s)
{
	size_t i = mqim__session_slot(ctx, s->client);
	while (ctx->slots[i] != s)
		i = (i + 1) & ctx->slot_mask;
	ctx->slots[i] = NULL;
	/* pull back every later entry of the run that may no longer be found */
	for (size_t j = (i + 1) & ctx->slot_mask; ctx->slots[j]; j = (j + 1) & ctx->slot_mask) {
		size_t home = mqim__session_slot(ctx, ctx->slots[j]->client);
		if (((j - home) & ctx->slot_mask) >= ((j - i) & ctx->slot_mask)) {
			ctx->slots[i] = ctx->slots[j];
			ctx->slots[j] = NULL;
			i = j;
		}
	}
}

void mqim__session_renew(struct mqim_ctx *ctx, struct mqim_session *s)
{
	s->u = mqim__user_find(ctx, s->user);
	s->group = NULL;
	s->peer = NULL;
	s->epoch = ctx->epoch;
}

static void session_drop(struct mqim_ctx *ctx, struct mqim_session *s)
{
	user_online(ctx, s->user, -1);
	HASH_DEL(ctx->sessions, s);
	HASH_DELETE(hh_id, ctx->sessions_by_id, s);
	slot_del(ctx, s);
	ctx->session_count--;
	if (ctx->last_write.session == s)
		ctx->last_write.session = NULL, ctx->last_write.payload = NULL;
	session_free(s);
}

void mqim__session_add(struct mqim_ctx *ctx, const struct mosquitto *client, const char *user,
		       time_t token_exp)
{
	struct mqim_session *s = mqim__session_find(ctx, client);
	const char *id = mosquitto_client_id(client);
	if (s) /* the same connection logging in again cannot happen; be safe */
		session_drop(ctx, s);
	/* A login with the client id of a live session takes that session over:
	 * Mosquitto sends the old connection's will next, and it must be judged
	 * as a will (acl.c), so the old session ends here, not at its
	 * disconnect event. */
	if (id) {
		HASH_FIND(hh_id, ctx->sessions_by_id, id, strlen(id), s);
		if (s)
			session_drop(ctx, s);
	}
	s = slots_reserve(ctx) == MQIM_OK ? mqim__calloc(1, sizeof(*s)) : NULL;
	if (s)
		s->client_id = mqim__strdup(id ? id : "");
	if (!s || !s->client_id) {
		/* the session map is what tells a will from a publish: without it
		 * this connection may only update its presence, which is safe */
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: out of memory recording a session of %s", user);
		if (s)
			session_free(s);
		return;
	}
	s->client = client;
	s->token_exp = token_exp;
	s->epoch = ctx->epoch - 1; /* the cache is empty */
	snprintf(s->user, sizeof(s->user), "%s", user);
	HASH_ADD_PTR(ctx->sessions, client, s);
	HASH_ADD_KEYPTR(hh_id, ctx->sessions_by_id, s->client_id, strlen(s->client_id), s);
	slot_put(ctx, s);
	ctx->session_count++;
	user_online(ctx, user, +1);
	struct mqim_user *u = mqim__user_find(ctx, user);
	if (ctx->opts.max_sessions && u && u->online > ctx->opts.max_sessions)
		mqim__limit_later(ctx, user);
}

void mqim__session_remove(struct mqim_ctx *ctx, const struct mosquitto *client)
{
	struct mqim_session *s = mqim__session_find(ctx, client);
	if (s)
		session_drop(ctx, s);
}

void mqim__sessions_free(struct mqim_ctx *ctx)
{
	struct mqim_session *s, *tmp;
	HASH_ITER(hh, ctx->sessions, s, tmp) {
		HASH_DEL(ctx->sessions, s);
		HASH_DELETE(hh_id, ctx->sessions_by_id, s);
		session_free(s);
	}
	mqim__free(ctx->slots);
	ctx->slots = NULL;
	ctx->slot_mask = 0;
	ctx->session_count = 0;
	ctx->last_write.session = NULL, ctx->last_write.payload = NULL;
	while (ctx->kicks) {
		struct mqim_kick *k = ctx->kicks;
		ctx->kicks = k->next;
		mqim__free(k);
	}
}

static void queue_kick(struct mqim_ctx *ctx, const char *user, bool limit_only)
{
	struct mqim_kick *k = mqim__calloc(1, sizeof(*k));
	if (!k) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: out of memory queueing a kick of %s", user);
		return;
	}
	snprintf(k->user, sizeof(k->user), "%s", user);
	k->limit_only = limit_only;
	k->next = ctx->kicks;
	ctx->kicks = k;
}

void mqim__kick_later(struct mqim_ctx *ctx, const char *user)
{
	queue_kick(ctx, user, false);
}

void mqim__limit_later(struct mqim_ctx *ctx, const char *user)
{
	queue_kick(ctx, user, true);
}

/* Close the oldest sessions of user beyond max_sessions_per_user.  The
 * session table is in login order, so the first ones found are the oldest.
 * Mosquitto 2.0 can only say 0x98 (administrative action) to a kicked
 * MQTT 5 client; libmqim takes it as "logged in elsewhere" and does not
 * reconnect by itself, so two devices never kick each other in a loop. */
static void enforce_limit(struct mqim_ctx *ctx, const char *user)
{
	struct mqim_user *u = mqim__user_find(ctx, user);
	struct mqim_session *s, *tmp;
	if (!u || !ctx->opts.max_sessions || u->online <= ctx->opts.max_sessions)
		return;
	uint32_t excess = u->online - ctx->opts.max_sessions;
	HASH_ITER(hh, ctx->sessions, s, tmp) {
		if (!excess)
			break;
		if (strcmp(s->user, user))
			continue;
		excess--;
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				     "mqim: disconnecting client=%s user=%s: logged in elsewhere (max %u sessions)",
				     s->client_id, user, ctx->opts.max_sessions);
		/* the disconnect event removes s: do not touch it afterwards */
		mosquitto_kick_client_by_clientid(s->client_id, false);
	}
}

void mqim__kicks_run(struct mqim_ctx *ctx)
{
	while (ctx->kicks) {
		struct mqim_kick *k = ctx->kicks;
		ctx->kicks = k->next;
		if (k->limit_only) {
			enforce_limit(ctx, k->user);
		} else {
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: disconnecting every session of user=%s",
					     k->user);
			mosquitto_kick_client_by_username(k->user, false);
		}
		mqim__free(k);
	}
}

void mqim__sessions_expire(struct mqim_ctx *ctx, time_t now)
{
	struct mqim_session *s, *tmp;
	if (now == ctx->last_expiry_check)
		return;
	ctx->last_expiry_check = now;
	HASH_ITER(hh, ctx->sessions, s, tmp) {
		if (s->token_exp && s->token_exp <= now) {
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
					     "mqim: disconnecting client=%s user=%s: login token expired",
					     s->client_id, s->user);
			s->token_exp = 0;
			mosquitto_kick_client_by_clientid(s->client_id, false);
		}
	}
}

int mqim__on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	mqim__session_remove(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}
