/* acl.c - the topic table: MOSQ_EVT_ACL_CHECK.
 *
 * Mosquitto asks this callback before a subscription (with the filter), at
 * each delivery to a subscriber (read, with the topic and payload), and for
 * each publish and will (write, with the payload).  Every answer comes from
 * the in-memory tables: one classification of the topic, the client's user
 * and at most one membership lookup.  The user comes from the client's
 * session (sessions.c: one probe by pointer, then its cache), as does the
 * group it last used and the inbox it last wrote to, so a publish to
 * either and a delivery to a group member usually cost a string compare
 * and no hash of a name; a client without a session (a will, sent after
 * its disconnect) is looked up by name.  A delivery on an inbox is not
 * matched against the subscriber's name again: the subscribe check admits
 * no subscription that matches another user's inbox (im/ topics are
 * subscribed to literally, without wildcards), so only the duplicate and
 * account-age checks remain; and the deliveries of the inbox message the
 * message event accepted last (ctx->fresh_inbox, message.c), which follow
 * it at once, need none of them: that event found the owner existing, not
 * disabled, and no older than the message, and marks no duplicate.
 *
 * Return contract (Mosquitto 2.0):
 *   MOSQ_ERR_SUCCESS     allowed
 *   MOSQ_ERR_ACL_DENIED  refused: SUBACK / PUBACK / PUBREC reason 0x87, or a
 *                        delivery silently skipped; a will is not sent
 * This plugin never defers: a topic it does not know is refused, so no
 * later plugin or default can open $CONTROL or im/ by accident.
 */
#include <endian.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "envelope.h"
#include "plugin.h"
#include "topics.h"

/* memcmp(a, b, n) == 0 for the short strings compared here (names of at
 * most 64 bytes), inline: words (or halves of 2 or 4 bytes), the last one
 * overlapping.  Both a and b must hold n readable bytes. */
static inline bool bytes_eq(const void *a, const void *b, size_t n)
{
	const char *x = a, *y = b;
	uint64_t p, q;
	uint32_t p4, q4;
	uint16_t p2, q2;
	if (n < 4) {
		if (n < 2)
			return n == 0 || x[0] == y[0];
		memcpy(&p2, x, 2), memcpy(&q2, y, 2);
		if (p2 != q2)
			return false;
		memcpy(&p2, x + n - 2, 2), memcpy(&q2, y + n - 2, 2);
		return p2 == q2;
	}
	if (n < 8) {
		memcpy(&p4, x, 4), memcpy(&q4, y, 4);
		if (p4 != q4)
			return false;
		memcpy(&p4, x + n - 4, 4), memcpy(&q4, y + n - 4, 4);
		return p4 == q4;
	}
	for (size_t i = 0; i + 8 < n; i += 8) {
		memcpy(&p, x + i, 8), memcpy(&q, y + i, 8);
		if (p != q)
			return false;
	}
	memcpy(&p, x + n - 8, 8), memcpy(&q, y + n - 8, 8);
	return p == q;
}

static bool same_name(const struct mqim_topic *t, const struct mqim_user *u)
{
	return u->name_len == t->name_len && bytes_eq(t->name, u->name, t->name_len);
}

/* Classify topic into *t, from ctx->topic_cache when it holds the same
 * string; *g is then the group a group topic names (NULL if none, or not
 * known).  t->name points into topic. */
static void classify(struct mqim_ctx *ctx, const char *topic, struct mqim_topic *t,
		     struct mqim_group **g)
{
	struct mqim_topic_cache *c = &ctx->topic_cache;
	if (topic != c->ptr || strcmp(topic, c->copy)) {
		mqim_topic_classify(topic, t);
		size_t len = t->name ? (size_t)(t->name - topic) + t->name_len : 0;
		if (len == 0 || len >= sizeof(c->copy) || topic[len]) {
			*g = NULL;
			return;
		}
		memcpy(c->copy, topic, len + 1);
		c->ptr = topic;
		c->t = *t;
		c->name_off = (size_t)(t->name - topic);
		c->epoch = ctx->epoch - 1;
	}
	*t = c->t;
	t->name = topic + c->name_off;
	if (c->epoch != ctx->epoch) {
		c->group = t->kind == MQIM_TOPIC_GROUP ? mqim__group_find_n(ctx, t->name, t->name_len)
						       : NULL;
		c->epoch = ctx->epoch;
	}
	*g = c->group;
}

/* 'u', 'g' or 'p' for a topic "im/x/...", else 0 (nothing is validated). */
static char im_kind(const char *topic)
{
	return topic[0] == 'i' && topic[1] == 'm' && topic[2] == '/' && topic[3] && topic[4] == '/'
	       ? topic[3] : 0;
}

/* The topics a session meets most, known without classifying: its own
 * inbox (every delivery of a chat), the inbox it last wrote to, the group
 * it last used: one strcmp against a name already known to be valid.
 * False for anything else (classify() then).  *owner: an inbox's owner. */
static bool classify_known(const struct mqim_session *s, struct mqim_user *u, const char *topic,
			   struct mqim_topic *t, struct mqim_group **g, struct mqim_user **owner)
{
	char kind = im_kind(topic);
	const char *rest = topic + 5;
	if (kind == 'u') {
		struct mqim_user *to = s->peer && !strcmp(rest, s->peer->name) ? s->peer
				       : !strcmp(rest, u->name) ? u : NULL;
		if (!to)
			return false;
		*t = (struct mqim_topic){ MQIM_TOPIC_INBOX, rest, to->name_len, false, false };
		*g = NULL;
		*owner = to;
		return true;
	}
	if (kind != 'g' || !s->group || strcmp(rest, s->group->name))
		return false;
	*t = (struct mqim_topic){ MQIM_TOPIC_GROUP, rest, s->group->name_len, false, false };
	*g = s->group;
	return true;
}

/* classify(), after classify_known() for a client with a session s (its
 * user u); a write to an inbox other than the last one makes it the last
 * one (s->peer, also the push hook's recipient cache).  *owner gets the
 * owner of an inbox when it was found (NULL otherwise). */
static void classify_for(struct mqim_ctx *ctx, struct mqim_session *s, struct mqim_user *u,
			 bool write, const char *topic, struct mqim_topic *t, struct mqim_group **g,
			 struct mqim_user **owner)
{
	*owner = NULL;
	if (s && u && classify_known(s, u, topic, t, g, owner))
		return;
	classify(ctx, topic, t, g);
	if (s && write && t->kind == MQIM_TOPIC_INBOX)
		*owner = s->peer = mqim__user_find_n(ctx, t->name, t->name_len);
}

/* u is a member of the group t names.  g, when not NULL, is that group;
 * s, when not NULL, u's session: the group it last found is compared
 * first (one pointer compare), and kept. */
static bool member(struct mqim_session *s, struct mqim_user *u, const struct mqim_topic *t,
		   const struct mqim_group *g)
{
	if (s && g && s->group == g)
		return true;
	struct mqim_group *found = mqim__member_group(u, t->name, t->name_len);
	if (found && s)
		s->group = found;
	return found != NULL;
}

static bool poison_found(struct mqim_ctx *ctx, const void *payload)
{
	struct mqim_poison *p = NULL;
	HASH_FIND_PTR(ctx->poison, &payload, p);
	return p != NULL;
}

static inline bool poisoned(struct mqim_ctx *ctx, const void *payload)
{
	return ctx->poison_count && poison_found(ctx, payload);
}

/* Subscription filters, compared literally (wildcards only under $SYS). */
static const char *check_subscribe(struct mqim_user *u, const struct mqim_topic *t)
{
	switch (t->kind) {
	case MQIM_TOPIC_INBOX:
		return same_name(t, u) ? NULL : "inbox of another user";
	case MQIM_TOPIC_GROUP:
		return member(NULL, u, t, NULL) ? NULL : "not a member of the group";
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
	uint64_t bts;
	if (!u->since_ms || len < 13 || !bytes_eq(t, "\xa3" "bts" "\xcf", 5))
		return false;
	memcpy(&bts, t + 5, sizeof(bts));
	return be64toh(bts) < u->since_ms;
}

/* A delivery to u of a message that passed the write check: not a
 * duplicate's (poisoned) payload, not queued for an earlier account. */
static bool deliverable(struct mqim_ctx *ctx, const struct mqim_user *u, const void *payload,
			uint32_t len)
{
	return !poisoned(ctx, payload) && !predates(u, payload, len);
}

/* The deliveries allowed before any other check (then only deliverable()
 * remains): an inbox, which reaches only its owner (check_subscribe()
 * admits no other subscription that matches it: no wildcard matches im/),
 * and the group the subscriber's session s last used, of which it is a
 * member while that cache holds (renewed when the tables change). */
static bool known_read(const struct mqim_session *s, const char *topic)
{
	char kind = im_kind(topic);
	return kind == 'u' || (kind == 'g' && s && s->group && !strcmp(topic + 5, s->group->name));
}

/* Deliveries: re-checked each time, so a removal bites at once.  Payload
 * pointers of duplicates are never delivered (message.c). */
static const char *check_read(struct mqim_ctx *ctx, struct mqim_session *s, struct mqim_user *u,
			      const struct mqim_topic *t, const struct mqim_group *g,
			      const void *payload, uint32_t len)
{
	switch (t->kind) {
	case MQIM_TOPIC_INBOX:
		if (!same_name(t, u))
			return "inbox of another user";
		return deliverable(ctx, u, payload, len) ? NULL : "";
	case MQIM_TOPIC_GROUP:
		if (!member(s, u, t, g))
			return "not a member of the group";
		return deliverable(ctx, u, payload, len) ? NULL : "";
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

/* The envelope must be valid, from the login, and to the topic's name.
 * Kept in ctx->last_write for the message event that follows. */
static const char *check_envelope(struct mqim_ctx *ctx, struct mqim_session *s,
				  struct mqim_user *u, const struct mqim_topic *t,
				  struct mqim_user *owner, const struct mosquitto_evt_acl_check *ed)
{
	struct mqim_last_write *lw = &ctx->last_write;
	struct mqim_env_error err;

	lw->payload = NULL;
	/* fr and to are compared below with the login and the topic's name,
	 * both valid names: the decoder need not check the name rules */
	if (mqim_env_decode_ex(ed->payload, ed->payloadlen, ctx->opts.max_payload,
			       MQIM_ENV_NAMES_CHECKED, &lw->env, &err))
		return mqim_env_error_text(&err, ctx->why, sizeof(ctx->why));
	if (lw->env.fr.len != u->name_len || !bytes_eq(lw->env.fr.ptr, u->name, u->name_len))
		return "envelope 'fr' is not the logged-in user";
	if (lw->env.to.len != t->name_len || !bytes_eq(lw->env.to.ptr, t->name, t->name_len))
		return "envelope 'to' does not match the topic";
	if (t->kind == MQIM_TOPIC_PRESENCE && !mqim_str_eq(lw->env.t, "presence"))
		return "only 't: presence' envelopes go to a presence topic";
	lw->payload = ed->payload;
	lw->len = ed->payloadlen;
	lw->client = ed->client;
	lw->topic = ed->topic;
	lw->t = *t;
	lw->user = u;
	lw->session = s;
	lw->owner = owner;
	/* the message event looks the id up next: its memory is on its way */
	lw->dedup_hash = mqim_dedup_prefetch(ctx->dedup, u->idx, lw->env.id);
	return NULL;
}

/* Mosquitto sends a will after the disconnect event removed the session,
 * so a write from a client without a session (has_session false) is its
 * will.  s is the client's session when its cache may be used. */
static const char *check_write(struct mqim_ctx *ctx, bool has_session, struct mqim_session *s,
			       struct mqim_user *u, const struct mqim_topic *t,
			       const struct mqim_group *g, struct mqim_user *owner,
			       const struct mosquitto_evt_acl_check *ed)
{
	if (t->kind != MQIM_TOPIC_PRESENCE && !has_session)
		return "a will may only go to the user's own presence topic";
	switch (t->kind) {
	case MQIM_TOPIC_INBOX:
		break;
	case MQIM_TOPIC_GROUP:
		if (!member(s, u, t, g))
			return "not a member of the group";
		break;
	case MQIM_TOPIC_PRESENCE:
		if (!same_name(t, u))
			return "presence of another user";
		return check_envelope(ctx, s, u, t, NULL, ed);
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
	return check_envelope(ctx, s, u, t, owner, ed);
}

/* The client's user, from its session when it has one whose login is the
 * client's username (*s is then that session, else NULL), else by name.
 * *has_session tells whether the client pointer has a session at all. */
static struct mqim_user *client_user(struct mqim_ctx *ctx, const struct mosquitto *client,
				     struct mqim_session **s, bool *has_session)
{
	const char *name = mosquitto_client_username(client);
	*s = mqim__session_find(ctx, client);
	*has_session = *s != NULL;
	/* A connection's username string lives as long as the connection (only
	 * extended re-authentication could replace it, and this plugin offers
	 * none), so once equal, the same pointer is the same name. */
	if (*s && name && (name == (*s)->uname || !strcmp(name, (*s)->user))) {
		(*s)->uname = name;
		return mqim__session_user(ctx, *s);
	}
	*s = NULL;
	return mqim__user_find(ctx, name);
}

/* Every check but the deliveries of the inbox message just accepted. */
static __attribute__((noinline)) int acl_check(struct mosquitto_evt_acl_check *ed,
					       struct mqim_ctx *ctx)
{
	struct mqim_topic t;
	struct mqim_group *g;
	struct mqim_user *owner;
	const char *reason, *what;

	if (ed->access == MOSQ_ACL_UNSUBSCRIBE)
		return MOSQ_ERR_SUCCESS;

	struct mqim_session *s;
	bool has_session;
	struct mqim_user *u = client_user(ctx, ed->client, &s, &has_session);
	const char *nouser = !u ? "unknown user" : u->disabled ? "user is disabled" : NULL;
	if (nouser)
		u = NULL;
	if (ed->access == MOSQ_ACL_SUBSCRIBE) {
		what = "subscribe";
		mqim_filter_classify(ed->topic, &t);
		reason = !u ? nouser : check_subscribe(u, &t);
	} else if (ed->access == MOSQ_ACL_READ) {
		if (u && known_read(s, ed->topic))
			return deliverable(ctx, u, ed->payload, ed->payloadlen) ? MOSQ_ERR_SUCCESS
									: MOSQ_ERR_ACL_DENIED;
		classify_for(ctx, s, u, false, ed->topic, &t, &g, &owner);
		reason = !u ? nouser : check_read(ctx, s, u, &t, g, ed->payload, ed->payloadlen);
		/* deliveries are not logged: a refusal here is routine, not an attack */
		return reason ? MOSQ_ERR_ACL_DENIED : MOSQ_ERR_SUCCESS;
	} else {
		what = "publish";
		ctx->fresh_inbox = NULL;
		classify_for(ctx, s, u, true, ed->topic, &t, &g, &owner);
		reason = !u ? nouser : check_write(ctx, has_session, s, u, &t, g, owner, ed);
	}
	if (!reason)
		return MOSQ_ERR_SUCCESS;
	mqim__deny(ed->client, what, ed->topic, reason);
	return MOSQ_ERR_ACL_DENIED;
}

int mqim__on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ed = event_data;
	struct mqim_ctx *ctx = userdata;
	(void)event;

	/* a delivery of the inbox message just accepted (message.c): only its
	 * owner can be subscribed, who was checked then */
	if (ed->access == MOSQ_ACL_READ && ed->payload == ctx->fresh_inbox && ed->payload &&
	    im_kind(ed->topic) == 'u')
		return MOSQ_ERR_SUCCESS;
	return acl_check(ed, ctx);
}
