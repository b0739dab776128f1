/* message.c - accepted publishes: MOSQ_EVT_MESSAGE.
 *
 * Runs after the write check (acl.c) accepted a publish to im/u, im/g or
 * im/p.  It de-duplicates by (sender, id), stamps the broker time `bts` into
 * the envelope, and emits a push notification for recipients with no session.
 *
 * Return contract (Mosquitto 2.0, src/handle_publish.c):
 *   MOSQ_ERR_SUCCESS     the (possibly replaced) payload is delivered
 *   MOSQ_ERR_ACL_DENIED  refused: PUBACK / PUBREC reason 0x87
 *   anything else        disconnects the publisher: never returned here
 *
 * Duplicates.  A duplicate must be acknowledged as a success yet reach
 * nobody.  Rewriting the topic would do it, but whether the broker frees a
 * replaced topic differs between 2.0.11 and 2.0.15, so instead the duplicate
 * gets a fresh payload buffer whose address is remembered ("poisoned"); the
 * read check refuses every delivery of a poisoned buffer.  Only the payload
 * is ever replaced, which every 2.0.x frees the same way.
 *
 * QoS 2.  A retransmitted QoS 2 PUBLISH (same packet id, after a reconnect)
 * fires this event again; the broker then compares the new payload with the
 * one it stored and, when equal, treats it as the same message.  A duplicate
 * is therefore stamped with the bts of its first acceptance, so its bytes
 * are identical: a true retransmission is recognised by the broker (and
 * delivered once, at PUBREL), while a resend under a new packet id is stored
 * as a new message whose poisoned payload reaches nobody.
 *
 * Marked resends.  A duplicate carrying the MQTT 5 user property
 * MQIM_RESEND_PROP ("mqim-resend") is delivered all the same (stamped with
 * its first bts): the sender says its receipt never came, so the first copy
 * may have reached nobody (PUBACK 0x10, a broker restart without
 * persistence, a group member whose session was lost).  It is harmless: a
 * sender can only re-deliver its own ids, which it could do with new ids,
 * and receivers drop duplicates by (fr, id).  Looked up only for duplicates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mqtt_protocol.h>

#include "envelope.h"
#include "plugin.h"
#include "topics.h"

#define POISON_MAX 65536u

uint64_t mqim__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void poison_forget(struct mqim_ctx *ctx, const void *payload)
{
	struct mqim_poison *p;
	HASH_FIND_PTR(ctx->poison, &payload, p);
	if (p) {
		HASH_DEL(ctx->poison, p);
		mqim__free(p);
		ctx->poison_count--;
	}
}

/* Bounded: past POISON_MAX the oldest entries go (their buffers were long
 * delivered or freed; a QoS 2 duplicate still waiting for its PUBREL that
 * long would reach its recipients, whose clients drop it by id). */
static void poison_add(struct mqim_ctx *ctx, const void *payload)
{
	while (ctx->poison_count >= POISON_MAX) {
		struct mqim_poison *old = ctx->poison;
		HASH_DEL(ctx->poison, old);
		mqim__free(old);
		ctx->poison_count--;
	}
	struct mqim_poison *p = mqim__calloc(1, sizeof(*p));
	if (!p)
		return;
	p->payload = payload;
	HASH_ADD_PTR(ctx->poison, payload, p);
	ctx->poison_count++;
}

void mqim__poison_free(struct mqim_ctx *ctx)
{
	struct mqim_poison *p, *tmp;
	HASH_ITER(hh, ctx->poison, p, tmp) {
		HASH_DEL(ctx->poison, p);
		mqim__free(p);
	}
	ctx->poison_count = 0;
}

/* The topic, the publisher and the decoded envelope, from the write check
 * that just ran when it can (the same topic and payload of the same
 * client), else classified, looked up and decoded again (*s NULL then).
 * *env points into the payload; *hash is the de-duplication hash of the
 * publisher and id, their memory prefetched.  MQIM_ENOTFOUND for a topic
 * that is not im/u, im/g or im/p. */
static int message_of(struct mqim_ctx *ctx, const struct mosquitto_evt_message *ed,
		      struct mqim_topic *t, const struct mqim_env **env, struct mqim_user **u,
		      struct mqim_session **s, struct mqim_user **owner, uint32_t *hash)
{
	struct mqim_last_write *lw = &ctx->last_write;
	if (lw->payload == ed->payload && lw->len == ed->payloadlen && lw->client == ed->client &&
	    lw->topic == ed->topic) {
		*t = lw->t;
		*env = &lw->env;
		*u = lw->user;
		*s = lw->session;
		*owner = lw->owner;
		*hash = lw->dedup_hash;
		lw->payload = NULL;
		return MQIM_OK;
	}
	*s = NULL;
	*owner = NULL;
	mqim_topic_classify(ed->topic, t);
	if (t->kind != MQIM_TOPIC_INBOX && t->kind != MQIM_TOPIC_GROUP &&
	    t->kind != MQIM_TOPIC_PRESENCE)
		return MQIM_ENOTFOUND;
	*u = mqim__user_find(ctx, mosquitto_client_username(ed->client));
	if (!*u)
		return MQIM_EINVAL;
	*env = &lw->env;
	lw->payload = NULL;
	int rc = mqim_env_decode(ed->payload, ed->payloadlen, ctx->opts.max_payload, &lw->env, NULL);
	if (rc == MQIM_OK)
		*hash = mqim_dedup_prefetch(ctx->dedup, (*u)->idx, lw->env.id);
	return rc;
}

static void hex16(const uint8_t id[16], char out[33])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[32] = '\0';
}

/* The user whose inbox t names: owner when the write check found it, else
 * looked up; s, when not NULL, is the sender's session, whose cache holds
 * the last one. */
static struct mqim_user *inbox_owner(struct mqim_ctx *ctx, struct mqim_session *s,
				     const struct mqim_topic *t, struct mqim_user *owner)
{
	if (owner)
		return owner;
	struct mqim_user *to = s ? s->peer : NULL;
	if (to && to->name_len == t->name_len && !memcmp(to->name, t->name, t->name_len))
		return to;
	to = mqim__user_find_n(ctx, t->name, t->name_len);
	if (s)
		s->peer = to;
	return to;
}

/* True when a member of g other than from has no session. */
static bool someone_offline(const struct mqim_group *g, const char *from)
{
	struct mqim_member *m, *tmp;
	HASH_ITER(gh, g->members, m, tmp)
		if (!m->user->online && strcmp(m->user->name, from))
			return true;
	return false;
}

static void push_send(const char *buf, int n, size_t cap)
{
	if (n > 0 && (size_t)n < cap)
		mosquitto_broker_publish_copy(NULL, MQIM_PUSH_TOPIC, n, buf, 0, false, NULL);
}

static void push_inbox(const struct mqim_user *to, const char *from, const uint8_t id[16],
		       uint64_t bts)
{
	char buf[1024], hex[33];

	hex16(id, hex);
	push_send(buf, snprintf(buf, sizeof(buf), "{\"to\":\"%s\",\"from\":\"%s\",\"id\":\"%s\",\"bts\":%" PRIu64 "}",
				to->name, from, hex, bts), sizeof(buf));
}

static void push_group(const struct mqim_group *g, const char *from, const uint8_t id[16],
		       uint64_t bts)
{
	char buf[1024], hex[33];
	struct mqim_member *m, *tmp;

	hex16(id, hex);
	int n = snprintf(buf, sizeof(buf), "{\"group\":\"%s\",\"from\":\"%s\",\"id\":\"%s\",\"bts\":%" PRIu64 ",\"to\":[",
			 g->name, from, hex, bts);
	size_t before = (size_t)n;
	HASH_ITER(gh, g->members, m, tmp) {
		if (m->user->online || !strcmp(m->user->name, from))
			continue;
		if ((size_t)n + MQIM_NAME_MAX + 8 >= sizeof(buf))
			break; /* a notice, not a roster: a long tail is cut */
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s\"%s\"",
			      (size_t)n > before ? "," : "", m->user->name);
	}
	if ((size_t)n == before)
		return; /* everyone is online */
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "]}");
	push_send(buf, n, sizeof(buf));
}

/* Push: one small JSON notice per message whose recipients have no session,
 * for a push gateway (an admin account) subscribed to MQIM_PUSH_TOPIC.  No
 * body: the gateway learns who wrote to whom, not what.  s and owner as
 * for inbox_owner(). */
static void push_notify(struct mqim_ctx *ctx, struct mqim_session *s, const struct mqim_topic *t,
			struct mqim_user *owner, const char *from, const uint8_t id[16], uint64_t bts)
{
	if (t->kind == MQIM_TOPIC_INBOX) {
		struct mqim_user *to = inbox_owner(ctx, s, t, owner);
		if (to && !to->online)
			push_inbox(to, from, id, bts);
	} else {
		struct mqim_group *g = mqim__group_find_n(ctx, t->name, t->name_len);
		if (g && someone_offline(g, from))
			push_group(g, from, id, bts);
	}
}

/* Per-user token bucket (plugin_opt_rate_per_user, _burst), in
 * milli-messages.  A refusal is logged once per second per user, with the
 * count refused since the last line, so a flood cannot flood the log. */
static bool rate_ok(struct mqim_ctx *ctx, struct mqim_user *u, const struct mosquitto *client,
		    const char *topic, uint64_t now)
{
	uint64_t rate = ctx->opts.rate_per_user;
	uint64_t cap = (uint64_t)ctx->opts.rate_burst * 1000u;
	if (!rate)
		return true;
	if (!u->rate_at_ms) {
		u->rate_tokens = cap;
	} else if (now > u->rate_at_ms) {
		u->rate_tokens += (now - u->rate_at_ms) * rate;
		if (u->rate_tokens > cap)
			u->rate_tokens = cap;
	}
	u->rate_at_ms = now;
	if (u->rate_tokens >= 1000u) {
		u->rate_tokens -= 1000u;
		return true;
	}
	u->rate_refused++;
	if (now - u->rate_logged_ms >= 1000u) {
		char why[96];
		snprintf(why, sizeof(why), "over the rate limit of %u messages/s (%u refused)",
			 ctx->opts.rate_per_user, u->rate_refused);
		mqim__deny(client, "publish", topic, why);
		u->rate_logged_ms = now;
		u->rate_refused = 0;
	}
	return false;
}

/* True when props hold the user property MQIM_RESEND_PROP = "1". */
static bool marked_resend(const mosquitto_property *props)
{
	bool skip = false, found = false;
	char *name = NULL, *value = NULL;
	while (!found && (props = mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY,
								   &name, &value, skip))) {
		found = !strcmp(name, MQIM_RESEND_PROP) && !strcmp(value, "1");
		mosquitto_free(name);
		mosquitto_free(value);
		name = value = NULL;
		skip = true;
	}
	return found;
}

/* Stamping.  When the sender left a "bts" slot (a uint 64 last, as libmqim
 * does) the broker's own buffer is stamped where it lies: no copy, no
 * allocation, and the broker keeps its payload.  Otherwise, and always for
 * a duplicate (whose buffer must be a fresh, poisoned one), the stamped
 * envelope is a new buffer that replaces the payload (the broker frees the
 * old one).  Both give the same bytes.  NULL on failure, logged. */
static void *stamp_in_place(const struct mqim_env *env, struct mosquitto_evt_message *ed,
			    uint64_t bts)
{
	return mqim_env_stamp_in_place(env, ed->payload, ed->payloadlen, bts) ? ed->payload : NULL;
}

static void *stamp_copy(const struct mqim_env *env, struct mosquitto_evt_message *ed, uint64_t bts)
{
	size_t cap = (size_t)ed->payloadlen + MQIM_ENV_STAMP_EXTRA, len;
	uint8_t *out = mqim__malloc(cap + 1);
	if (!out)
		return NULL; /* out of memory: refused, the sender retries */
	if (mqim_env_stamp_decoded(env, ed->payload, ed->payloadlen, bts, out, cap, &len) != MQIM_OK) {
		mqim__free(out);
		mqim__deny(ed->client, "publish", ed->topic, "envelope could not be stamped");
		return NULL;
	}
	out[len] = 0; /* the broker keeps payloads NUL-terminated */
	ed->payload = out;
	ed->payloadlen = (uint32_t)len;
	return out;
}

int mqim__on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *ed = event_data;
	struct mqim_ctx *ctx = userdata;
	struct mqim_topic t;
	const struct mqim_env *env;
	struct mqim_user *u = NULL, *owner;
	struct mqim_session *s;
	uint32_t hash = 0;

	ctx->fresh_inbox = NULL;
	int rc = message_of(ctx, ed, &t, &env, &u, &s, &owner, &hash);
	if (rc == MQIM_ENOTFOUND)
		return MOSQ_ERR_SUCCESS; /* the write check let nothing else through */
	if (rc != MQIM_OK) {
		mqim__deny(ed->client, "publish", ed->topic, "envelope no longer valid");
		return MOSQ_ERR_ACL_DENIED;
	}

	uint64_t bts = mqim__now_ms();
	if (!rate_ok(ctx, u, ed->client, ed->topic, bts))
		return MOSQ_ERR_ACL_DENIED;
	bool dup = t.kind != MQIM_TOPIC_PRESENCE &&
		   mqim_dedup_seen_h(ctx->dedup, hash, u->idx, env->id, bts, &bts);
	if (dup && marked_resend(ed->properties)) {
		dup = false;
		mosquitto_log_printf(MOSQ_LOG_DEBUG, "mqim: marked resend from user=%s delivered again",
				     u->name);
	}

	void *out = dup ? NULL : stamp_in_place(env, ed, bts);
	if (!out && !(out = stamp_copy(env, ed, bts)))
		return MOSQ_ERR_ACL_DENIED;
	if (ctx->poison_count)
		poison_forget(ctx, out); /* a fresh buffer at a recycled address */
	if (dup) {
		poison_add(ctx, out);
		mosquitto_log_printf(MOSQ_LOG_DEBUG, "mqim: duplicate from user=%s acknowledged, not delivered",
				     u->name);
		return MOSQ_ERR_SUCCESS;
	}
	/* its deliveries follow at once: only the owner can be subscribed to
	 * an inbox (acl.c), and it exists, may receive, and the message does
	 * not predate its account (a marked resend keeps its first bts) */
	if (t.kind == MQIM_TOPIC_INBOX && owner && !owner->disabled && bts >= owner->since_ms)
		ctx->fresh_inbox = out;
	if (ctx->opts.push && t.kind != MQIM_TOPIC_PRESENCE)
		push_notify(ctx, s, &t, owner, u->name, env->id, bts);
	return MOSQ_ERR_SUCCESS;
}
