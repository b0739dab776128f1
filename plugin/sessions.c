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

void mqim__session_add(struct mqim_ctx *ctx, const struct mosquitto *client, const char *user)
{
	struct mqim_session *s;
	HASH_FIND_PTR(ctx->sessions, &client, s);
	if (s) { /* the same connection logging in again cannot happen; be safe */
		user_online(ctx, s->user, -1);
	} else {
		s = mqim__calloc(1, sizeof(*s));
		if (!s)
			return; /* presence is advisory: a lost entry only skews counts */
		s->client = client;
		HASH_ADD_PTR(ctx->sessions, client, s);
	}
	snprintf(s->user, sizeof(s->user), "%s", user);
	user_online(ctx, user, +1);
}

void mqim__session_remove(struct mqim_ctx *ctx, const struct mosquitto *client)
{
	struct mqim_session *s;
	HASH_FIND_PTR(ctx->sessions, &client, s);
	if (!s)
		return;
	user_online(ctx, s->user, -1);
	HASH_DEL(ctx->sessions, s);
	mqim__free(s);
}

void mqim__sessions_free(struct mqim_ctx *ctx)
{
	struct mqim_session *s, *tmp;
	HASH_ITER(hh, ctx->sessions, s, tmp) {
		HASH_DEL(ctx->sessions, s);
		mqim__free(s);
	}
	while (ctx->kicks) {
		struct mqim_kick *k = ctx->kicks;
		ctx->kicks = k->next;
		mqim__free(k);
	}
}

void mqim__kick_later(struct mqim_ctx *ctx, const char *user)
{
	struct mqim_kick *k = mqim__calloc(1, sizeof(*k));
	if (!k) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: out of memory queueing a kick of %s", user);
		return;
	}
	snprintf(k->user, sizeof(k->user), "%s", user);
	k->next = ctx->kicks;
	ctx->kicks = k;
}

void mqim__kicks_run(struct mqim_ctx *ctx)
{
	while (ctx->kicks) {
		struct mqim_kick *k = ctx->kicks;
		ctx->kicks = k->next;
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: disconnecting every session of user=%s",
				     k->user);
		mosquitto_kick_client_by_username(k->user, false);
		mqim__free(k);
	}
}

int mqim__on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *ed = event_data;
	mqim__session_remove(userdata, ed->client);
	return MOSQ_ERR_SUCCESS;
}
