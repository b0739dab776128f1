/* receive.c - what arrives: checked, de-duplicated, stored, acknowledged,
 * handed over.
 *
 * Every payload is decoded with the codec (envelope.h) and must carry the
 * broker's bts; on an inbox its `to` must be this user, on a group topic the
 * group, on a presence topic `fr` and `to` the topic's user.  Anything else
 * is dropped with an on_error note.  Then, by kind:
 *   rcpt, read   receipts for our own messages: update their state and take
 *                them out of the outbox (for a direct message, only from its
 *                recipient; for a group message, send.c and roster.h say
 *                when)
 *   presence     on_presence
 *   typing       handed over as is (not stored, not de-duplicated)
 *   msg          de-duplicated by (fr, id), stored in the history, a `rcpt`
 *                queued to the sender's inbox (group messages too), handed
 *                over; all in one savepoint, so a crash never keeps one
 *                without the others, and nothing is handed over that was
 *                not stored (what cannot be stored waits: client.c)
 *   other kinds  de-duplicated and handed over, not stored
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "topics.h"

static void copy_name(char out[65], struct mqim_str s)
{
	size_t n = s.len < 64 ? s.len : 64;
	memcpy(out, s.ptr, n);
	out[n] = '\0';
}

static bool topic_name_eq(const struct mqim_topic *t, struct mqim_str s)
{
	return t->name_len == s.len && memcmp(t->name, s.ptr, s.len) == 0;
}

static void receipt(mqim_client *c, const struct mqim_env *env, bool is_read)
{
	char fr[65], peer[65];
	int state;
	bool outgoing, is_group;

	copy_name(fr, env->fr);
	if (mqim__hist_get(&c->hist, c->user, env->ref, &state, &outgoing, peer, &is_group) != MQIM_OK ||
	    !outgoing)
		return;   /* not one of ours (or its history is gone) */
	if (!is_group && strcmp(peer, fr) != 0)
		return;   /* only the recipient acknowledges a direct message */

	int rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = mqim__receipted(c, env->ref, fr, is_group, is_read);
	mqim__work_end(c, rc);
}

/* Store a new msg in the history and queue its receipt. */
static int store_msg(mqim_client *c, const struct mqim_env *env, bool is_group, bool mine)
{
	char fr[65], to[65], ct[256];
	struct mqim_message m;

	copy_name(fr, env->fr);
	copy_name(to, env->to);
	memset(&m, 0, sizeof m);
	memcpy(m.id, env->id, 16);
	m.kind = "msg";
	m.from = fr;
	m.to = to;
	m.is_group = is_group;
	m.ts = env->ts;
	m.bts = env->bts;
	m.content_type = "text/plain";
	if (env->ct.ptr) {
		size_t n = env->ct.len < sizeof ct - 1 ? env->ct.len : sizeof ct - 1;
		memcpy(ct, env->ct.ptr, n);
		ct[n] = '\0';
		m.content_type = ct;
	}
	m.body = env->has_body ? env->body : (const void *)"";
	m.body_len = env->has_body ? env->body_len : 0;
	m.outgoing = mine;
	m.state = mine ? MQIM_MSG_SENT : MQIM_MSG_RECEIVED;
	int rc = mqim__hist_add(&c->hist, is_group ? to : (mine ? to : fr), &m);
	if (rc == MQIM_EEXISTS)
		rc = MQIM_OK;
	/* Our own group message from another device needs no receipt. */
	if (rc == MQIM_OK && !(mine && is_group))
		rc = mqim__queue_receipt(c, "rcpt", fr, env->id);
	return rc;
}

/* Handed over only once stored: when the store fails (a full disk...),
 * mqim__work_end() records it and the library thread keeps the event in
 * memory and applies it again once the data folder can be written
 * (client.c, hold.h); the broker has had its acknowledgement, so this is
 * the only copy until the sender resends. */
static void message(mqim_client *c, const struct mqim_env *env, const struct mqim_topic *t)
{
	bool is_group = t->kind == MQIM_TOPIC_GROUP;
	bool is_msg = mqim_str_eq(env->t, "msg");
	bool mine = mqim_str_eq(env->fr, c->user);
	bool receipt_owed = is_msg && !(mine && is_group);
	char fr[65];

	copy_name(fr, env->fr);
	int rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = mqim__seen_add(&c->seen, env->fr.ptr, env->fr.len, env->id);
	if (rc == 1) {
		/* A duplicate, not shown again.  The sender resent it because no
		 * receipt reached it: the receipt may be what was lost, so queue
		 * another (a fresh id, which the broker cannot take for a copy). */
		mqim__work_end(c, receipt_owed ? mqim__queue_receipt(c, "rcpt", fr, env->id) : MQIM_OK);
		return;
	}
	if (rc == MQIM_OK && is_msg)
		rc = store_msg(c, env, is_group, mine);
	if (mqim__work_end(c, rc) == MQIM_OK)
		mqim__note_message(c, env, is_group);
}

void mqim__receive(mqim_client *c, const char *topic, const void *payload, size_t len)
{
	struct mqim_topic t;
	struct mqim_env env;
	struct mqim_env_error err;
	char why[160];

	enum mqim_topic_kind kind = mqim_topic_classify(topic, &t);
	if (kind != MQIM_TOPIC_INBOX && kind != MQIM_TOPIC_GROUP && kind != MQIM_TOPIC_PRESENCE) {
		mqim__note_error(c, MQIM_EPROTO, "dropped a message on unexpected topic %s", topic);
		return;
	}
	if (mqim_env_decode(payload, len, c->o.max_payload, &env, &err) != MQIM_OK) {
		mqim__note_error(c, err.code ? err.code : MQIM_EPROTO, "dropped a malformed envelope on %s: %s",
				 topic, mqim_env_error_text(&err, why, sizeof why));
		return;
	}
	if (!env.has_bts) {
		mqim__note_error(c, MQIM_EPROTO, "dropped an envelope on %s without bts "
				 "(not stamped by an mqim broker)", topic);
		return;
	}
	bool ok;
	switch (kind) {
	case MQIM_TOPIC_INBOX:
		ok = strcmp(topic, c->inbox) == 0 && mqim_str_eq(env.to, c->user);
		break;
	case MQIM_TOPIC_GROUP:
		ok = topic_name_eq(&t, env.to);
		break;
	default:
		ok = topic_name_eq(&t, env.to) && topic_name_eq(&t, env.fr) &&
		     mqim_str_eq(env.t, "presence");
		break;
	}
	if (!ok) {
		mqim__note_error(c, MQIM_EPROTO, "dropped an envelope on %s whose fr/to do not "
				 "match the topic", topic);
		return;
	}
	if (kind == MQIM_TOPIC_PRESENCE) {
		char user[65];
		copy_name(user, env.fr);
		bool online = env.has_body && env.body_len == 6 && memcmp(env.body, "online", 6) == 0;
		mqim__note_presence(c, user, online, env.bts);
		return;
	}
	if (mqim_str_eq(env.t, "rcpt") || mqim_str_eq(env.t, "read")) {
		if (kind == MQIM_TOPIC_INBOX && env.has_ref)
			receipt(c, &env, mqim_str_eq(env.t, "read"));
		return;
	}
	if (mqim_str_eq(env.t, "typing") || mqim_str_eq(env.t, "presence")) {
		if (mqim_str_eq(env.t, "typing"))
			mqim__note_message(c, &env, kind == MQIM_TOPIC_GROUP);
		return;
	}
	message(c, &env, &t);
}
