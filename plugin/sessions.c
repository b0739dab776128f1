/* sessions.c - who is online, and the queue of connections to close.
 *
 * A session is added when a login succeeds and removed on the disconnect
 * event; it is keyed by the broker's client pointer, so a disconnect event
 * for a connection that never logged in is simply not found.  Each user
 * keeps a count of its sessions (presence, push).  Kicks are queued here and
 * run from the tick, never inside the callback that asked for them.
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

static void session_drop(struct mqim_ctx *ctx, struct mqim_session *s)
{
	user_online(ctx, s->user, -1);
	HASH_DEL(ctx->sessions, s);
	HASH_DELETE(hh_id, ctx->sessions_by_id, s);
	session_free(s);
}

void mqim__session_add(struct mqim_ctx *ctx, const struct mosquitto *client, const char *user,
		       time_t token_exp)
{
	struct mqim_session *s;
	const char *id = mosquitto_client_id(client);
	HASH_FIND_PTR(ctx->sessions, &client, s);
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
	s = mqim__calloc(1, sizeof(*s));
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
	snprintf(s->user, sizeof(s->user), "%s", user);
	HASH_ADD_PTR(ctx->sessions, client, s);
	HASH_ADD_KEYPTR(hh_id, ctx->sessions_by_id, s->client_id, strlen(s->client_id), s);
	user_online(ctx, user, +1);
	struct mqim_user *u = mqim__user_find(ctx, user);
	if (ctx->opts.max_sessions && u && u->online > ctx->opts.max_sessions)
		mqim__limit_later(ctx, user);
}

void mqim__session_remove(struct mqim_ctx *ctx, const struct mosquitto *client)
{
	struct mqim_session *s;
	HASH_FIND_PTR(ctx->sessions, &client, s);
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
