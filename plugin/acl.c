/* acl.c - the topic table: MOSQ_EVT_ACL_CHECK.
 *
 * Mosquitto asks this callback before a subscription (with the filter), at
 * each delivery to a subscriber (read, with the topic and payload), and for
 * each publish and will (write, with the payload).  Every answer comes from
 * the in-memory tables: one classification of the topic, one user lookup,
 * at most one membership lookup.
 *
 * Return contract (Mosquitto 2.0):
 *   MOSQ_ERR_SUCCESS     allowed
 *   MOSQ_ERR_ACL_DENIED  refused: SUBACK / PUBACK / PUBREC reason 0x87, or a
 *                        delivery silently skipped; a will is not sent
 * This plugin never defers: a topic it does not know is refused, so no
 * later plugin or default can open $CONTROL or im/ by accident.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "envelope.h"
#include "plugin.h"
#include "topics.h"

static bool same_name(const struct mqim_topic *t, const char *user)
{
	return strlen(user) == t->name_len && !memcmp(t->name, user, t->name_len);
}

static bool poisoned(struct mqim_ctx *ctx, const void *payload)
{
	struct mqim_poison *p = NULL;
	if (ctx->poison_count)
		HASH_FIND_PTR(ctx->poison, &payload, p);
	return p != NULL;
}

/* Subscription filters, compared literally (wildcards only under $SYS). */
static const char *check_subscribe(struct mqim_user *u, const struct mqim_topic *t)
{
	switch (t->kind) {
	case MQIM_TOPIC_INBOX:
		return same_name(t, u->name) ? NULL : "inbox of another user";
	case MQIM_TOPIC_GROUP:
		return mqim__is_member(u, t->name, t->name_len) ? NULL : "not a member of the group";
	case MQIM_TOPIC_PRESENCE:
		return NULL;
	case MQIM_TOPIC_CONTROL_RESP:
	case MQIM_TOPIC_PUSH:
	case MQIM_TOPIC_SYS:
		return u->admin ? NULL : "admins only";
	case MQIM_TOPIC_CONTROL:
		return "the control topic cannot be subscribed to";
	case MQIM_TOPIC_NONE:
	default:
		return t->wildcard ? "wildcards never match mqim topics" : "not an mqim topic";
	}
}

/* A user deleted and created again must not receive what was queued for
 * the earlier account's persistent session (Mosquitto 2.0 gives a plugin no
 * way to drop a stored session): deliveries stamped before the account was
 * created are refused.  Every payload on im/u and im/g was stamped by
 * mqim_env_stamp*(), which puts "bts" as a uint 64 in the last 13 bytes, so
 * its age is read in O(1), without decoding. */
static bool predates(const struct mqim_user *u, const void *payload, uint32_t len)
{
	const uint8_t *t = (const uint8_t *)payload + len - 13;
	uint64_t bts = 0;
	if (!u->since_ms || len < 13 || memcmp(t, "\xa3" "bts" "\xcf", 5))
		return false;
	for (int i = 5; i < 13; i++)
		bts = bts << 8 | t[i];
	return bts < u->since_ms;
}

/* Deliveries: re-checked each time, so a removal bites at once.  Payload
 * pointers of duplicates are never delivered (message.c). */
static const char *check_read(struct mqim_ctx *ctx, struct mqim_user *u,
			      const struct mqim_topic *t, const void *payload, uint32_t len)
{
	switch (t->kind) {
	case MQIM_TOPIC_INBOX:
		if (!same_name(t, u->name))
			return "inbox of another user";
		return poisoned(ctx, payload) || predates(u, payload, len) ? "" : NULL;
	case MQIM_TOPIC_GROUP:
		if (!mqim__is_member(u, t->name, t->name_len))
			return "not a member of the group";
		return poisoned(ctx, payload) || predates(u, payload, len) ? "" : NULL;
	case MQIM_TOPIC_PRESENCE:
		return NULL;
	case MQIM_TOPIC_CONTROL_RESP:
	case MQIM_TOPIC_PUSH:
	case MQIM_TOPIC_SYS:
		return u->admin ? NULL : "admins only";
	default:
		return "not an mqim topic";
	}
}

/* The envelope must be valid, from the login, and to the topic's name. */
static const char *check_envelope(struct mqim_ctx *ctx, const struct mosquitto *client,
				  struct mqim_user *u, const struct mqim_topic *t,
				  const struct mosquitto_evt_acl_check *ed)
{
	struct mqim_env env;
	struct mqim_env_error err;

	if (mqim_env_decode(ed->payload, ed->payloadlen, ctx->opts.max_payload, &env, &err))
		return mqim_env_error_text(&err, ctx->why, sizeof(ctx->why));
	if (!mqim_str_eq(env.fr, u->name))
		return "envelope 'fr' is not the logged-in user";
	if (env.to.len != t->name_len || memcmp(env.to.ptr, t->name, t->name_len))
		return "envelope 'to' does not match the topic";
	if (t->kind == MQIM_TOPIC_PRESENCE && !mqim_str_eq(env.t, "presence"))
		return "only 't: presence' envelopes go to a presence topic";
	ctx->last_write.payload = ed->payload;
	ctx->last_write.len = ed->payloadlen;
	ctx->last_write.client = client;
	ctx->last_write.user = u;
	ctx->last_write.env = env;
	return NULL;
}

/* Mosquitto sends a will after the disconnect event removed the session,
 * so a write from a client without a session is its will. */
static bool is_will(struct mqim_ctx *ctx, const struct mosquitto *client)
{
	struct mqim_session *s;
	HASH_FIND_PTR(ctx->sessions, &client, s);
	return s == NULL;
}

static const char *check_write(struct mqim_ctx *ctx, const struct mosquitto *client,
			       struct mqim_user *u, const struct mqim_topic *t,
			       const struct mosquitto_evt_acl_check *ed)
{
	if (t->kind != MQIM_TOPIC_PRESENCE && is_will(ctx, client))
		return "a will may only go to the user's own presence topic";
	switch (t->kind) {
	case MQIM_TOPIC_INBOX:
		break;
	case MQIM_TOPIC_GROUP:
		if (!mqim__is_member(u, t->name, t->name_len))
			return "not a member of the group";
		break;
	case MQIM_TOPIC_PRESENCE:
		if (!same_name(t, u->name))
			return "presence of another user";
		return check_envelope(ctx, client, u, t, ed);
	case MQIM_TOPIC_CONTROL:
		return u->admin ? NULL : "admins only";
	case MQIM_TOPIC_CONTROL_RESP:
	case MQIM_TOPIC_PUSH:
		return "only the broker publishes here";
	case MQIM_TOPIC_SYS:
		return "only the broker publishes $SYS";
	default:
		return "not an mqim topic";
	}
	if (ed->retain)
		return "retained messages are refused on inboxes and groups";
	return check_envelope(ctx, client, u, t, ed);
}

int mqim__on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct mqim_ctx *ctx = userdata;
	struct mqim_topic t;
	const char *reason, *what;

	if (ed->access == MOSQ_ACL_UNSUBSCRIBE)
		return MOSQ_ERR_SUCCESS;

	struct mqim_user *u = mqim__user_find(ctx, mosquitto_client_username(ed->client));
	const char *nouser = !u ? "unknown user" : u->disabled ? "user is disabled" : NULL;
	if (nouser)
		u = NULL;
	if (ed->access == MOSQ_ACL_SUBSCRIBE) {
		what = "subscribe";
		mqim_filter_classify(ed->topic, &t);
		reason = !u ? nouser : check_subscribe(u, &t);
	} else if (ed->access == MOSQ_ACL_READ) {
		mqim_topic_classify(ed->topic, &t);
		reason = !u ? nouser : check_read(ctx, u, &t, ed->payload, ed->payloadlen);
		/* deliveries are not logged: a refusal here is routine, not an attack */
		return reason ? MOSQ_ERR_ACL_DENIED : MOSQ_ERR_SUCCESS;
	} else {
		what = "publish";
		mqim_topic_classify(ed->topic, &t);
		reason = !u ? nouser : check_write(ctx, ed->client, u, &t, ed);
	}
	if (!reason)
		return MOSQ_ERR_SUCCESS;
	mqim__deny(ed->client, what, ed->topic, reason);
	return MOSQ_ERR_ACL_DENIED;
}
