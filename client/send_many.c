/* send_many.c - sending at the network's rate from one thread:
 * mqim_send_many() and mqim_send_nowait().
 *
 * mqim_send() waits for its own commit, so a single thread calling it in a
 * loop pays one disk sync per message.  Both calls here keep its promise
 * (nothing reported stored that is not on disk) with one sync for many:
 *   mqim_send_many()    n messages in one unit of work of one call, so one
 *                       commit; the caller waits for it;
 *   mqim_send_nowait()  a call the caller does not wait for
 *                       (mqim__call_nowait): the library thread stores
 *                       the messages queued by the time it runs (up to
 *                       256 per turn, client.c) in one unit of work,
 *                       commits once, and reports each QUEUED (or FAILED)
 *                       through on_message_state.
 * The checks, ids and envelopes are send.c's (mqim__send_prepare), the
 * writes too (mqim__send_store).
 *
 * Thread rules: the public calls run on any thread; the finish of a nowait
 * send runs on the library thread.  The bound on nowait messages not yet
 * stored (c->nowait_n, c->nowait_bytes) is guarded by c->mu; the library
 * thread gives back the room of those it answered in one go, before the
 * reports are made (mqim__nowait_release).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- mqim_send_many ----------------------------------------------------------- */

struct many {
	struct mqim__send_req *q;
	size_t n;
};

/* All or nothing: one unit of work, undone as a whole when any fails. */
static int store_many(mqim_client *c, void *arg)
{
	struct many *m = arg;
	struct mqim__send_req **qs = malloc(m->n * sizeof *qs);
	if (!qs)
		return MQIM_ENOMEM;
	for (size_t i = 0; i < m->n; i++)
		qs[i] = &m->q[i];
	int rc = mqim__send_store_many(c, qs, m->n);
	free(qs);
	return rc;
}

static void free_payloads(struct mqim__send_req *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(q[i].payload);
}

/* Check and encode every message; on error nothing stays allocated. */
static int prepare_many(mqim_client *c, const struct mqim_outgoing *msgs, size_t n,
			struct mqim__send_req *q)
{
	for (size_t i = 0; i < n; i++) {
		const struct mqim_outgoing *o = &msgs[i];
		int rc = o->version == MQIM_OUTGOING_VERSION
			 ? mqim__send_prepare(c, &q[i], o->to, o->is_group, o->content_type,
					      o->body, o->body_len, o->qos)
			 : MQIM_EINVAL;
		if (rc != MQIM_OK) {
			free_payloads(q, i);
			return rc;
		}
	}
	return MQIM_OK;
}

MQIM_EXPORT int mqim_send_many(mqim_client *c, const struct mqim_outgoing *msgs, size_t n,
			       uint8_t (*ids_out)[MQIM_ID_LEN])
{
	if (!c || !msgs || n == 0 || n > MQIM_SEND_MANY_MAX)
		return MQIM_EINVAL;
	struct many m = { calloc(n, sizeof(struct mqim__send_req)), n };
	if (!m.q)
		return MQIM_ENOMEM;
	int rc = prepare_many(c, msgs, n, m.q);
	if (rc == MQIM_OK) {
		rc = mqim__call(c, store_many, &m);
		for (size_t i = 0; rc == MQIM_OK && ids_out && i < n; i++)
			memcpy(ids_out[i], m.q[i].id, MQIM_ID_LEN);
		free_payloads(m.q, n);
	}
	free(m.q);
	return rc;
}

/* ---- mqim_send_nowait ----------------------------------------------------------- */

/* One nowait send: the call, its message, and copies of what the caller
 * lends only for the duration of mqim_send_nowait() (the history stores
 * the body apart from the envelope). */
struct nowait {
	struct mqim__call call;
	struct mqim__send_req q;
	char copy[];                /* to, the content type, the body */
};

/* Reserve room for a message of this many bytes (envelope and body);
 * false: the bound is reached. */
static bool reserve(mqim_client *c, size_t bytes)
{
	pthread_mutex_lock(&c->mu);
	bool ok = c->nowait_n < MQIM_NOWAIT_MAX && c->nowait_bytes + bytes <= MQIM_NOWAIT_MAX_BYTES;
	if (ok) {
		c->nowait_n++;
		c->nowait_bytes += bytes;
	}
	pthread_mutex_unlock(&c->mu);
	return ok;
}

static void unreserve(mqim_client *c, size_t bytes)
{
	pthread_mutex_lock(&c->mu);
	c->nowait_n--;
	c->nowait_bytes -= bytes;
	pthread_mutex_unlock(&c->mu);
}

void mqim__nowait_release(mqim_client *c)
{
	if (c->nowait_done_n == 0)
		return;
	pthread_mutex_lock(&c->mu);
	c->nowait_n -= c->nowait_done_n;
	c->nowait_bytes -= c->nowait_done_bytes;
	pthread_mutex_unlock(&c->mu);
	c->nowait_done_n = 0;
	c->nowait_done_bytes = 0;
}

/* Library thread: the message is stored (rc MQIM_OK, committed) or not.
 * Its room is given back with the others' before its report is made. */
static void nowait_finish(mqim_client *c, struct mqim__call *call)
{
	struct nowait *w = (struct nowait *)call;
	mqim__note_msg_state(c, w->q.id, call->rc == MQIM_OK ? MQIM_MSG_QUEUED : MQIM_MSG_FAILED,
			     call->rc);
	c->nowait_done_n++;
	c->nowait_done_bytes += w->q.plen + w->q.len;
	free(w->q.payload);
	free(w);
}

/* A nowait send taking over q's envelope and owning copies of its
 * strings and body; NULL when out of memory. */
static struct nowait *nowait_new(const struct mqim__send_req *q)
{
	size_t tlen = strlen(q->to) + 1, clen = strlen(q->ct) + 1;
	struct nowait *w = calloc(1, sizeof *w + tlen + clen + q->len);
	if (!w)
		return NULL;
	w->q = *q;
	w->q.to = memcpy(w->copy, q->to, tlen);
	w->q.ct = memcpy(w->copy + tlen, q->ct, clen);
	w->q.body = memcpy(w->copy + tlen + clen, q->body, q->len);
	w->call.fn = mqim__send_store;
	w->call.arg = &w->q;
	w->call.finish = nowait_finish;
	return w;
}

MQIM_EXPORT int mqim_send_nowait(mqim_client *c, const char *to, bool is_group,
				 const char *ct, const void *body, size_t len, int qos,
				 uint8_t id_out[MQIM_ID_LEN])
{
	struct mqim__send_req q;
	int rc = mqim__send_prepare(c, &q, to, is_group, ct, body, len, qos);
	if (rc != MQIM_OK)
		return rc;
	if (!reserve(c, q.plen + q.len)) {
		free(q.payload);
		return MQIM_EBUSY;
	}
	struct nowait *w = nowait_new(&q);
	rc = w ? mqim__call_nowait(c, &w->call) : MQIM_ENOMEM;
	if (rc != MQIM_OK) {
		unreserve(c, q.plen + q.len);
		free(q.payload);
		free(w);
		return rc;
	}
	if (id_out)
		memcpy(id_out, q.id, MQIM_ID_LEN);
	return MQIM_OK;
}
