/* send.c - sending: mqim_send, the outbox pump, acknowledgements, resends,
 * receipts for our own messages, mqim_retry, mqim_mark_read and the
 * receipts this client owes.
 *
 * The pump publishes outbox rows in seq order while fewer than `window`
 * publishes wait for their acknowledgement (window = min(max_inflight, the
 * broker's Receive Maximum)), so the broker is never asked to hold more
 * QoS 1/2 messages in flight than it said it can.  Each publish waits in a
 * slot with a deadline (ack_timeout_ms); a missed deadline means the link
 * is dead (link.c).  What a row does next is decided by mqim__ob_step(),
 * including which publishes are marked resends and what a PUBACK 0x10 "no
 * matching subscribers" changes (outbox.h).  A group message waits for the
 * receipts its roster says (roster.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "names.h"

void mqim__peer_topic(char out[80], const char *peer, bool is_group)
{
	/* Once per publish: no snprintf (a tenth of the pump's time). */
	size_t n = strnlen(peer, 74);
	memcpy(out, is_group ? "im/g/" : "im/u/", 5);
	memcpy(out + 5, peer, n);
	out[5 + n] = '\0';
}

/* ---- in-flight slots --------------------------------------------------------- */

static int slot_find(mqim_client *c, int64_t seq)
{
	for (unsigned i = 0; i < c->nslots; i++)
		if (c->slots[i].used && c->slots[i].seq == seq)
			return (int)i;
	return -1;
}

/* Row r was just published: it waits in a slot with its state as of now. */
static bool slot_add(mqim_client *c, const struct mqim__ob_row *r)
{
	for (unsigned i = 0; i < c->nslots; i++) {
		if (!c->slots[i].used) {
			c->slots[i] = (struct mqim__slot){
				.seq = r->seq, .deadline = mqim__mono_ms() + c->o.ack_timeout_ms,
				.used = true, .known = true, .kind = (int8_t)r->kind,
				.qos = (int8_t)r->qos, .fsm = r->fsm };
			c->inflight_n++;
			return true;
		}
	}
	return false;
}

/* Row r, which may be in flight again (published anew on a newer
 * connection), was changed by act: keep its slot's copy true. */
static void slot_update(mqim_client *c, const struct mqim__ob_row *r, unsigned act)
{
	int i = slot_find(c, r->seq);
	if (i < 0 || !c->slots[i].known)
		return;
	if (act & MQIM_OB_ACT_DELETE)
		c->slots[i].known = false;   /* its answer finds nothing to change */
	else if (act & MQIM_OB_ACT_SAVE)
		c->slots[i].fsm = r->fsm;
}

/* Free the slot of seq into *out (out->used false when there was none). */
static void slot_take(mqim_client *c, int64_t seq, struct mqim__slot *out)
{
	int i = slot_find(c, seq);
	memset(out, 0, sizeof *out);
	if (i >= 0) {
		*out = c->slots[i];
		c->slots[i].used = false;
		c->inflight_n--;
	}
}

void mqim__inflight_clear(mqim_client *c)
{
	memset(c->slots, 0, c->nslots * sizeof *c->slots);
	c->inflight_n = 0;
	c->obmem.below = true;   /* what was in flight goes again */
}

int64_t mqim__inflight_deadline(mqim_client *c)
{
	int64_t t = INT64_MAX;
	if (c->inflight_n == 0)
		return t;
	for (unsigned i = 0; i < c->nslots; i++)
		if (c->slots[i].used && c->slots[i].deadline < t)
			t = c->slots[i].deadline;
	return t;
}

/* ---- message states ----------------------------------------------------------- */

/* Move our message id to state `next` in the history and report it if that
 * changed anything. */
void mqim__msg_update(mqim_client *c, const uint8_t id[16], int next, int err)
{
	int cur;
	bool outgoing;
	if (mqim__hist_get(&c->hist, c->user, id, &cur, &outgoing, NULL, NULL) != MQIM_OK || !outgoing)
		return;
	int ns = mqim__msg_state_merge(cur, next);
	if (ns != cur && mqim__hist_set_state(&c->hist, c->user, id, ns) == MQIM_OK)
		mqim__note_msg_state(c, id, ns, ns == MQIM_MSG_FAILED ? err : MQIM_OK);
}

/* Apply the actions of a step to row r. */
static int apply(mqim_client *c, struct mqim__ob_row *r, unsigned act, int ns)
{
	int rc = MQIM_OK;
	if (act & (MQIM_OB_ACT_DELETE | MQIM_OB_ACT_SAVE))
		c->next_due_stale = true;
	if (act & MQIM_OB_ACT_DELETE)
		rc = mqim__ob_delete(&c->ob, r->seq);
	else if (act & MQIM_OB_ACT_SAVE)
		rc = mqim__ob_save(&c->ob, r);
	if (rc == MQIM_OK && (act & MQIM_OB_ACT_NOTIFY) && r->kind == MQIM_OB_MSG)
		mqim__msg_update(c, r->id, ns, r->fsm.err);
	return rc;
}

/* ---- mqim_send --------------------------------------------------------------- */

/* The outbox row and the history message of send q. */
static void send_rows(mqim_client *c, const struct mqim__send_req *q, struct mqim__ob_row *row,
		      struct mqim_message *m)
{
	memset(row, 0, sizeof *row);
	memcpy(row->id, q->id, 16);
	row->kind = MQIM_OB_MSG;
	row->peer = q->to;
	row->is_group = q->is_group;
	row->qos = q->qos;
	row->payload = q->payload;
	row->len = q->plen;
	row->created = (int64_t)q->ts;

	memset(m, 0, sizeof *m);
	memcpy(m->id, q->id, 16);
	m->kind = "msg";
	m->from = c->user;
	m->to = q->to;
	m->is_group = q->is_group;
	m->ts = m->bts = q->ts;
	m->content_type = q->ct;
	m->body = q->body;
	m->body_len = q->len;
	m->outgoing = true;
	m->state = MQIM_MSG_QUEUED;
}

int mqim__send_store_many(mqim_client *c, struct mqim__send_req *const *qs, size_t n)
{
	struct mqim__ob_row rows[MQIM__DB_ROWS];
	struct mqim_message ms[MQIM__DB_ROWS];
	const char *peers[MQIM__DB_ROWS];

	if (c->st == MQIM_STATE_LOGGED_OUT)
		return MQIM_ECLOSED;
	int rc = mqim__work_begin(c);
	for (size_t i = 0; rc == MQIM_OK && i < n; i += MQIM__DB_ROWS) {
		size_t k = n - i < MQIM__DB_ROWS ? n - i : MQIM__DB_ROWS;
		for (size_t j = 0; j < k; j++) {
			send_rows(c, qs[i + j], &rows[j], &ms[j]);
			peers[j] = qs[i + j]->to;
		}
		rc = mqim__ob_add_many(&c->ob, rows, k);
		if (rc == MQIM_OK)
			rc = mqim__hist_add_many(&c->hist, peers, ms, k);
		/* QoS 0 leaves the outbox when written: no receipt to wait for. */
		for (size_t j = 0; rc == MQIM_OK && j < k; j++)
			if (qs[i + j]->is_group && qs[i + j]->qos > 0)
				rc = mqim__roster_expect(&c->roster, qs[i + j]->id, qs[i + j]->to,
							 c->user, NULL);
		for (size_t j = 0; rc == MQIM_OK && j < k; j++)
			mqim__obmem_add(&c->obmem, &rows[j]);   /* the pump's, once committed */
		if (rc == MQIM_OK && i + k < n)
			mqim__pump_midwork(c);
	}
	return mqim__work_end(c, rc);
}

int mqim__send_store(mqim_client *c, void *arg)
{
	struct mqim__send_req *q = arg;
	return mqim__send_store_many(c, &q, 1);
}

int mqim__send_prepare(mqim_client *c, struct mqim__send_req *q, const char *to, bool is_group,
		       const char *ct, const void *body, size_t len, int qos)
{
	struct mqim_env env;
	int rc;

	if (!c || !to || qos < 0 || qos > 2 || (!body && len > 0) || len > (size_t)INT32_MAX)
		return MQIM_EINVAL;
	if (ct && (!*ct || strlen(ct) > 255))
		return MQIM_EINVAL;
	if (!mqim_name_valid(to))
		return MQIM_EBADNAME;
	if (len > c->o.max_payload)
		return MQIM_ETOOBIG;

	memset(q, 0, sizeof *q);
	q->to = to;
	q->is_group = is_group;
	q->ct = ct ? ct : "text/plain";
	q->body = body ? body : "";
	q->len = len;
	q->qos = qos;
	q->ts = (uint64_t)mqim__now_ms();
	mqim__new_id(c, q->id);

	memset(&env, 0, sizeof env);
	env.v = MQIM_ENV_VERSION;
	memcpy(env.id, q->id, 16);
	env.t = (struct mqim_str){ "msg", 3 };
	env.fr = (struct mqim_str){ c->user, strlen(c->user) };
	env.to = (struct mqim_str){ to, strlen(to) };
	env.ts = q->ts;
	if (ct)
		env.ct = (struct mqim_str){ ct, strlen(ct) };
	env.body = q->body;
	env.body_len = len;
	env.has_body = true;
	/* Text goes as a MessagePack str, anything else as bin. */
	env.body_is_str = strncmp(q->ct, "text/", 5) == 0;
	env.has_bts = true; /* bts 0: the slot the broker stamps in place */
	rc = mqim_env_encode(&env, &q->payload, &q->plen);
	if (rc != MQIM_OK)
		return rc;
	if (q->plen > c->o.max_payload) {
		free(q->payload);
		q->payload = NULL;
		return MQIM_ETOOBIG;
	}
	return MQIM_OK;
}

MQIM_EXPORT int mqim_send(mqim_client *c, const char *to, bool is_group,
			  const char *ct, const void *body, size_t len, int qos,
			  uint8_t id_out[MQIM_ID_LEN])
{
	struct mqim__send_req q;
	int rc = mqim__send_prepare(c, &q, to, is_group, ct, body, len, qos);
	if (rc != MQIM_OK)
		return rc;
	rc = mqim__call(c, mqim__send_store, &q);
	free(q.payload);
	if (rc == MQIM_OK && id_out)
		memcpy(id_out, q.id, 16);
	return rc;
}

/* ---- receipts owed --------------------------------------------------------------- */

int mqim__queue_receipt(mqim_client *c, const char *t, const char *to, const uint8_t ref[16])
{
	struct mqim_env env;
	struct mqim__ob_row row;
	void *payload = NULL;
	size_t plen = 0;

	memset(&env, 0, sizeof env);
	env.v = MQIM_ENV_VERSION;
	mqim__new_id(c, env.id);
	env.t = (struct mqim_str){ t, strlen(t) };
	env.fr = (struct mqim_str){ c->user, strlen(c->user) };
	env.to = (struct mqim_str){ to, strlen(to) };
	env.ts = (uint64_t)mqim__now_ms();
	memcpy(env.ref, ref, 16);
	env.has_ref = true;
	env.has_bts = true; /* the slot, as for messages */
	int rc = mqim_env_encode(&env, &payload, &plen);
	if (rc != MQIM_OK)
		return rc;
	memset(&row, 0, sizeof row);
	memcpy(row.id, env.id, 16);
	row.kind = strcmp(t, "read") == 0 ? MQIM_OB_READ : MQIM_OB_RCPT;
	row.peer = to;
	row.qos = 1;
	row.payload = payload;
	row.len = plen;
	row.created = (int64_t)env.ts;
	rc = mqim__ob_add(&c->ob, &row);
	if (rc == MQIM_OK)
		mqim__obmem_add(&c->obmem, &row);
	free(payload);
	return rc;
}

/* ---- the pump ------------------------------------------------------------------- */

/* The pump publishes, in seq order, first what the database holds that
 * memory does not (obmem `below`: after a start, a lost link, a failure)
 * and the SENT rows whose resend is due, then the fresh rows straight
 * from memory: a message's first publish reads nothing and writes
 * nothing (its QUEUED row stays as it is until acknowledged). */

struct due_row {
	struct mqim__ob_row r;
	char peer[65];
	void *payload;
};

struct collect {
	mqim_client *c;
	struct due_row *rows;
	unsigned n, max;
};

static int collect_cb(void *ctx, struct mqim__ob_row *r)
{
	struct collect *col = ctx;
	if (slot_find(col->c, r->seq) >= 0)
		return 0;   /* already in flight */
	if (col->n == col->max)
		return 1;
	struct due_row *d = &col->rows[col->n];
	d->payload = malloc(r->len ? r->len : 1);
	if (!d->payload)
		return 1;
	memcpy(d->payload, r->payload, r->len);
	d->r = *r;
	snprintf(d->peer, sizeof d->peer, "%s", r->peer);
	d->r.peer = d->peer;
	d->r.payload = d->payload;
	col->n++;
	return 0;
}

/* Publish row r (its PUBLISH step taken: act) and give it a slot. */
static int publish_row(mqim_client *c, const struct mqim__ob_row *r, unsigned act)
{
	char topic[80];
	mqim__peer_topic(topic, r->peer, r->is_group);
	int rc = mqim__link_publish(c, topic, r->payload, r->len, r->qos, false, r->seq, r->id,
				    (act & MQIM_OB_ACT_MARK) != 0);
	if (rc == MQIM_OK)
		slot_add(c, r);
	return rc;
}

/* One round from the database: publish up to the free room.  Returns how
 * many went out, or -1 when publishing failed (the link is going). */
static int pump_db(mqim_client *c, int64_t now)
{
	unsigned room = c->window - c->inflight_n;
	struct collect col = { c, calloc(room, sizeof(struct due_row)), 0, room };
	int sent = 0, rc;
	bool all_queued = false;

	if (!col.rows || mqim__acks_flush(c, false) != MQIM_OK) {
		free(col.rows);
		return -1;
	}
	mqim__ob_due(&c->ob, now, mqim__obmem_bound(&c->obmem), room + c->inflight_n, collect_cb,
		     &col, &all_queued);
	rc = col.n ? mqim__work_begin(c) : MQIM_OK;
	for (unsigned i = 0; i < col.n && rc == MQIM_OK && sent >= 0; i++) {
		struct mqim__ob_row *r = &col.rows[i].r;
		int ns = 0;
		unsigned act;

		if (r->fsm.state == MQIM_MSG_SENT) {
			act = mqim__ob_step(&c->obcfg, r->kind, r->qos, &r->fsm, MQIM_OB_EV_DUE, now, &ns);
			if (!(act & MQIM_OB_ACT_PUBLISH)) {
				if (!(act & MQIM_OB_ACT_INVALID))
					rc = apply(c, r, act, ns);
				continue;
			}
		}
		act = mqim__ob_step(&c->obcfg, r->kind, r->qos, &r->fsm, MQIM_OB_EV_PUBLISH, now, &ns);
		if (act & MQIM_OB_ACT_INVALID)
			continue;
		if (publish_row(c, r, act) != MQIM_OK) {
			sent = -1;
			break;
		}
		rc = apply(c, r, act, ns);
		sent++;
	}
	if (col.n)
		rc = mqim__work_end(c, rc);
	/* Every QUEUED row below the fresh ones was seen and is in flight now:
	 * memory holds the rest. */
	if (all_queued && sent >= 0 && rc == MQIM_OK)
		c->obmem.below = false;
	for (unsigned i = 0; i < col.n; i++)
		free(col.rows[i].payload);
	free(col.rows);
	return sent;
}

/* Publish fresh rows from memory up to the free room.  Returns how many
 * went out, or -1 when publishing failed (the row stays at the head). */
static int pump_fresh(mqim_client *c, int64_t now)
{
	if (c->obmem.below)
		return 0;   /* the database first */
	struct mqim__fresh *f;
	int sent = 0, ns;
	while (c->inflight_n < c->window && (f = mqim__obmem_head(&c->obmem)) != NULL) {
		struct mqim__ob_row *r = &f->r;
		struct mqim__ob_fsm before = r->fsm;
		unsigned act = mqim__ob_step(&c->obcfg, r->kind, r->qos, &r->fsm, MQIM_OB_EV_PUBLISH,
					     now, &ns);
		/* A QUEUED row's publish writes nothing (outbox.c). */
		if (publish_row(c, r, act) != MQIM_OK) {
			r->fsm = before;
			return -1;
		}
		mqim__obmem_pop(&c->obmem);
		sent++;
	}
	return sent;
}

void mqim__pump_fresh(mqim_client *c)
{
	if (c->st == MQIM_STATE_CONNECTED && c->h)
		pump_fresh(c, mqim__now_ms());
}

bool mqim__ack_simple(mqim_client *c, const struct mqim__ev *ev)
{
	if (ev->epoch != c->epoch || ev->seq < 0 || !ev->ok || ev->refused || ev->reason != 0)
		return false;
	int i = slot_find(c, ev->seq);
	if (i < 0)
		return false;
	const struct mqim__slot *s = &c->slots[i];
	return s->known && s->kind == MQIM_OB_MSG && s->qos > 0 && s->fsm.state == MQIM_MSG_QUEUED &&
	       s->fsm.attempts == 1 && s->fsm.err == 0;
}

void mqim__pump(mqim_client *c)
{
	if (c->st == MQIM_STATE_CONNECTED && c->h) {
		int64_t now = mqim__now_ms();
		bool due = c->next_due <= now;
		/* Memory says nothing is left to publish: make sure (one read of
		 * the QUEUED rows' index, after writing any acknowledgement that
		 * waits).  A net only: the QUEUED rows once found neither in
		 * flight nor here, in rare runs of mqim-bench client, were
		 * acknowledgements a commit had left in memory, which
		 * mqim__acks_flush() no longer does (obmem.h, the invariant). */
		if (c->inflight_n == 0 && !mqim__obmem_head(&c->obmem) && !c->obmem.t_head)
			c->obmem.below = true;
		while (c->inflight_n < c->window) {
			int sent;
			if (c->obmem.below || due) {
				due = false;
				sent = pump_db(c, now);
				if (sent < 0 || (sent == 0 && c->obmem.below))
					break;
			} else if (pump_fresh(c, now) <= 0) {
				break;
			}
		}
	}
	/* Read again only when a row was written since (apply(); the bulk
	 * acknowledgements lower it themselves): a statement per turn. */
	if (c->next_due_stale) {
		c->next_due = mqim__ob_next_due(&c->ob);
		c->next_due_stale = false;
	}
}

int mqim__acks_flush(mqim_client *c, bool pump_between)
{
	struct mqim__obmem *m = &c->obmem;
	size_t n = m->nacked;
	if (n == 0)
		return MQIM_OK;
	int64_t next_at = mqim__now_ms() + (int64_t)c->obcfg.resend_timeout_ms;
	int rc = mqim__work_begin(c);
	/* The ids of the messages that moved to SENT are kept at the front of
	 * acked_id; their history rows stay QUEUED, which reads as SENT
	 * (history.h).  A row in flight changed by another path has its slot
	 * changed too (pub_done, mqim__receipted), so all of them move unless
	 * something unforeseen happened: then each is looked at.  Between
	 * the statements for the first n the link may be fed: what it brings
	 * joins the arrays after them and is written too (the loop runs to
	 * the arrays' end, feeding no more), so that none is left for after
	 * the commit that follows (commit_tx): an acknowledgement that
	 * outlives its transaction waits for the next one, which nothing may
	 * start (obmem.h). */
	size_t moved = 0;
	for (size_t i = 0; rc == MQIM_OK && i < m->nacked; i += MQIM__DB_BULK) {
		size_t k = m->nacked - i < MQIM__DB_BULK ? m->nacked - i : MQIM__DB_BULK, changed = 0;
		rc = mqim__ob_sent_bulk(&c->ob, m->acked_seq + i, k, next_at, &changed);
		for (size_t j = i; rc == MQIM_OK && j < i + k; j++)
			if (changed == k || mqim__ob_moved(&c->ob, m->acked_seq[j], next_at))
				memmove(m->acked_id[moved++], m->acked_id[j], 16);
		if (rc == MQIM_OK && pump_between && i + k < n)
			mqim__pump_midwork(c);
	}
	rc = mqim__work_end(c, rc);
	if (rc == MQIM_OK) {
		bool scope = c->undo_scope;
		c->undo_scope = true;   /* reports work of the open transaction */
		for (size_t j = 0; j < moved; j++)
			mqim__note_msg_state(c, m->acked_id[j], MQIM_MSG_SENT, MQIM_OK);
		c->undo_scope = scope;
		if (next_at < c->next_due)
			c->next_due = next_at;
	} else {
		m->below = true;   /* their rows stay QUEUED: the pump reads them back */
	}
	mqim__obmem_acks_clear(m);
	return rc;
}

/* The common acknowledgement, of a message's first publish, waits in
 * memory for mqim__acks_flush(). */
static bool ack_later(mqim_client *c, const struct mqim__ob_row *r, enum mqim__ob_event oe,
		      unsigned act)
{
	return oe == MQIM_OB_EV_ACK && r->kind == MQIM_OB_MSG &&
	       act == (MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY) && r->fsm.state == MQIM_MSG_SENT &&
	       r->fsm.attempts == 1 && r->fsm.err == 0 &&
	       mqim__obmem_ack(&c->obmem, r->seq, r->id);
}

void mqim__pub_done(mqim_client *c, struct mqim__ev *ev)
{
	struct mqim__ob_row r;
	struct mqim__slot slot;
	char peer[65];
	int ns = 0;

	/* An answer about an older connection is still an answer (the broker
	 * has the message, or refused it); only its slot is gone already. */
	memset(&slot, 0, sizeof slot);
	if (ev->epoch == c->epoch)
		slot_take(c, ev->seq, &slot);
	if (ev->seq < 0)
		return;   /* presence */
	if (!ev->ok && !ev->refused) {
		c->obmem.below = true;   /* no answer: the row stays and goes again */
		return;
	}
	if (slot.used && slot.known && ev->ok) {
		/* What the row was when published: nothing but its receipt
		 * (deleting it) changes a row in flight. */
		memset(&r, 0, sizeof r);
		r.seq = slot.seq;
		memcpy(r.id, ev->id, 16);
		r.kind = slot.kind;
		r.qos = slot.qos;
		r.peer = "";
		r.fsm = slot.fsm;
	} else if (mqim__acks_flush(c, false) != MQIM_OK || mqim__ob_find(&c->ob, ev->id, &r, peer) != MQIM_OK) {
		return;   /* its receipt came first (or the store fails: it goes again) */
	}
	enum mqim__ob_event oe = !ev->ok ? MQIM_OB_EV_REFUSED
			       : ev->reason == MQIM_PUBACK_NO_SUBSCRIBERS ? MQIM_OB_EV_ACK_NOSUB
			       : MQIM_OB_EV_ACK;
	unsigned act = mqim__ob_step(&c->obcfg, r.kind, r.qos, &r.fsm, oe, mqim__now_ms(), &ns);
	if (act & MQIM_OB_ACT_INVALID)
		return;
	if (ack_later(c, &r, oe, act))
		return;
	slot_update(c, &r, act);
	if (ev->refused) {
		char hex[MQIM_ID_HEX_LEN + 1];
		mqim__note_error(c, MQIM_EDENIED, "the broker refused %s %s to %s (reason 0x%02x)",
				 r.kind == MQIM_OB_MSG ? "message" : "receipt",
				 mqim_id_to_hex(r.id, hex), r.peer, ev->reason);
	}
	int rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = apply(c, &r, act, ns);
	mqim__work_end(c, rc);
}

/* ---- receipts for our own messages ------------------------------------------------ */

int mqim__receipted(mqim_client *c, const uint8_t id[16], const char *from, bool is_group,
		    bool is_read)
{
	struct mqim__ob_row r;
	char peer[65];
	int next = is_read ? MQIM_MSG_READ : MQIM_MSG_DELIVERED;
	int rc = MQIM_OK;

	rc = mqim__acks_flush(c, false);   /* SENT before DELIVERED */
	if (rc == MQIM_OK && is_group)
		rc = mqim__roster_receipt(&c->roster, id, from, is_read, &next);
	if (rc != MQIM_OK || next == 0)
		return rc;   /* a member has still to answer */
	if (mqim__ob_find(&c->ob, id, &r, peer) == MQIM_OK && r.kind == MQIM_OB_MSG) {
		rc = mqim__ob_delete(&c->ob, r.seq);
		c->next_due_stale = true;
		slot_update(c, &r, MQIM_OB_ACT_DELETE);
	}
	if (rc == MQIM_OK)
		mqim__msg_update(c, id, next, MQIM_OK);
	return rc;
}

/* ---- mqim_retry, mqim_mark_read -------------------------------------------------- */

static int do_retry(mqim_client *c, void *arg)
{
	const uint8_t *id = arg;
	struct mqim__ob_row r;
	char peer[65];
	int ns = 0;

	int rc = mqim__acks_flush(c, false);
	if (rc == MQIM_OK)
		rc = mqim__ob_find(&c->ob, id, &r, peer);
	if (rc != MQIM_OK)
		return rc;
	if (r.kind != MQIM_OB_MSG)
		return MQIM_ENOTFOUND;
	unsigned act = mqim__ob_step(&c->obcfg, r.kind, r.qos, &r.fsm, MQIM_OB_EV_RETRY,
				     mqim__now_ms(), &ns);
	if (act & MQIM_OB_ACT_INVALID)
		return MQIM_ESTATE;
	rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = apply(c, &r, act, ns);
	rc = mqim__work_end(c, rc);
	if (rc == MQIM_OK)
		c->obmem.below = true;   /* QUEUED again: the pump reads it back */
	return rc;
}

MQIM_EXPORT int mqim_retry(mqim_client *c, const uint8_t id[MQIM_ID_LEN])
{
	uint8_t copy[16];
	if (!c || !id)
		return MQIM_EINVAL;
	memcpy(copy, id, 16);
	return mqim__call(c, do_retry, copy);
}

struct read_req {
	const char *from;
	uint8_t id[16];
};

static int do_mark_read(mqim_client *c, void *arg)
{
	struct read_req *q = arg;
	int state;
	bool outgoing;

	if (c->st == MQIM_STATE_LOGGED_OUT)
		return MQIM_ECLOSED;
	int rc = mqim__hist_get(&c->hist, q->from, q->id, &state, &outgoing, NULL, NULL);
	if (rc != MQIM_OK)
		return rc;
	if (outgoing)
		return MQIM_ENOTFOUND;
	if (state == MQIM_MSG_READ)
		return MQIM_OK;
	rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = mqim__hist_set_state(&c->hist, q->from, q->id, MQIM_MSG_READ);
	if (rc == MQIM_OK)
		rc = mqim__queue_receipt(c, "read", q->from, q->id);
	return mqim__work_end(c, rc);
}

MQIM_EXPORT int mqim_mark_read(mqim_client *c, const char *from, const uint8_t id[MQIM_ID_LEN])
{
	struct read_req q;
	if (!c || !id)
		return MQIM_EINVAL;
	if (!mqim_name_valid(from))
		return MQIM_EBADNAME;
	q.from = from;
	memcpy(q.id, id, 16);
	return mqim__call(c, do_mark_read, &q);
}

#ifdef MQIM_OBMEM_CHECK
/* Debug only (make CFLAGS=-DMQIM_OBMEM_CHECK): after each turn, the
 * invariants of obmem.h, checked against the database; complaints go to
 * stderr.  Reads every QUEUED row: slow with a long outbox. */
static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

void mqim__obmem_check(mqim_client *c, const char *where)
{
	struct mqim__obmem *m = &c->obmem;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(c->db.h, "SELECT seq FROM outbox WHERE state=1 ORDER BY seq", -1,
			       &st, NULL) != SQLITE_OK)
		return;
	int64_t *acks = m->nacked ? malloc(m->nacked * sizeof *acks) : NULL;
	if (m->nacked && !acks) {
		sqlite3_finalize(st);
		return;
	}
	if (m->nacked) {
		memcpy(acks, m->acked_seq, m->nacked * sizeof *acks);
		qsort(acks, m->nacked, sizeof *acks, cmp64);
	}
	int64_t bound = mqim__obmem_bound(m);
	const struct mqim__fresh *h = m->head, *t = m->t_head;
	size_t ai = 0, bad = 0, total = 0;
	int64_t first_bad = -1, last_bad = -1;
	while (sqlite3_step(st) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(st, 0);
		total++;
		while (h && h->r.seq < seq)
			h = h->next;
		while (t && t->r.seq < seq)
			t = t->next;
		while (ai < m->nacked && acks[ai] < seq)
			ai++;
		if ((h && h->r.seq == seq) || (t && t->r.seq == seq) ||
		    (ai < m->nacked && acks[ai] == seq) || slot_find(c, seq) >= 0 ||
		    (m->below && seq < bound))
			continue;
		if (bad++ == 0)
			first_bad = seq;
		last_bad = seq;
	}
	sqlite3_finalize(st);
	free(acks);
	/* Memory in seq order. */
	int64_t prev = INT64_MIN;
	bool order = true;
	for (const struct mqim__fresh *f = m->head; f; f = f->next) {
		if (f->r.seq <= prev)
			order = false;
		prev = f->r.seq;
	}
	for (const struct mqim__fresh *f = m->t_head; f; f = f->next) {
		if (f->r.seq <= prev)
			order = false;
		prev = f->r.seq;
	}
	/* Acknowledgements wait in memory only for a commit to come: the
	 * lazy transaction's (its deadline wakes the library thread). */
	if (m->nacked && c->lazy_until == INT64_MAX)
		fprintf(stderr, "OBMEM CHECK %s: %zu acknowledgements in memory and no commit to come\n",
			where, m->nacked);
	if (bad || !order)
		fprintf(stderr, "OBMEM CHECK %s: %zu of %zu QUEUED rows lost (%lld..%lld), bound %lld, "
			"below %d, head %lld, t_head %lld, inflight %u, nacked %zu, order %d\n",
			where, bad, total, (long long)first_bad, (long long)last_bad, (long long)bound,
			m->below, m->head ? (long long)m->head->r.seq : -1LL,
			m->t_head ? (long long)m->t_head->r.seq : -1LL, c->inflight_n, m->nacked, order);
}
#endif
