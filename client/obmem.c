/* obmem.c - the outbox's working state in memory; see obmem.h. */
#include <stdlib.h>
#include <string.h>

#include "mqim.h"
#include "obmem.h"

void mqim__obmem_init(struct mqim__obmem *m, size_t max_bytes)
{
	memset(m, 0, sizeof *m);
	m->max_bytes = max_bytes;
	m->below = true;
}

static void free_list(struct mqim__fresh *f)
{
	while (f) {
		struct mqim__fresh *next = f->next;
		free(f);
		f = next;
	}
}

void mqim__obmem_forget(struct mqim__obmem *m)
{
	free_list(m->head);
	free_list(m->t_head);
	m->head = m->tail = m->t_head = m->t_tail = NULL;
	m->bytes = m->t_bytes = 0;
	m->below = true;
}

void mqim__obmem_free(struct mqim__obmem *m)
{
	mqim__obmem_forget(m);
	free(m->acked_seq);
	free(m->acked_id);
	m->acked_seq = NULL;
	m->acked_id = NULL;
	m->nacked = m->cap_acked = 0;
}

void mqim__obmem_add(struct mqim__obmem *m, const struct mqim__ob_row *r)
{
	size_t plen = strlen(r->peer) + 1;
	size_t bytes = sizeof(struct mqim__fresh) + plen + r->len;
	struct mqim__fresh *f = malloc(bytes);
	if (!f) {
		mqim__obmem_forget(m);
		return;
	}
	f->next = NULL;
	f->r = *r;
	f->r.peer = memcpy(f->data, r->peer, plen);
	f->r.payload = r->len ? memcpy(f->data + plen, r->payload, r->len) : f->data + plen;
	memset(&f->r.fsm, 0, sizeof f->r.fsm);
	f->r.fsm.state = MQIM_MSG_QUEUED;
	f->bytes = bytes;
	if (m->t_tail)
		m->t_tail->next = f;
	else
		m->t_head = f;
	m->t_tail = f;
	m->t_bytes += bytes;
}

void mqim__obmem_commit(struct mqim__obmem *m, bool ok)
{
	if (!ok) {
		free_list(m->t_head);
		m->t_head = m->t_tail = NULL;
		m->t_bytes = 0;
		mqim__obmem_acks_clear(m);
		m->below = true;   /* their rows are QUEUED and in flight no more */
		return;
	}
	if (m->t_head) {
		if (m->tail)
			m->tail->next = m->t_head;
		else
			m->head = m->t_head;
		m->tail = m->t_tail;
		m->bytes += m->t_bytes;
		m->t_head = m->t_tail = NULL;
		m->t_bytes = 0;
	}
	/* Over the cap the oldest go: the database still has them, below the
	 * new head. */
	while (m->bytes > m->max_bytes && m->head) {
		mqim__obmem_pop(m);
		m->below = true;
	}
}

struct mqim__fresh *mqim__obmem_head(struct mqim__obmem *m)
{
	return m->head;
}

void mqim__obmem_pop(struct mqim__obmem *m)
{
	struct mqim__fresh *f = m->head;
	if (!f)
		return;
	m->head = f->next;
	if (!m->head)
		m->tail = NULL;
	m->bytes -= f->bytes;
	free(f);
}

int64_t mqim__obmem_bound(const struct mqim__obmem *m)
{
	if (m->head)
		return m->head->r.seq;
	return m->t_head ? m->t_head->r.seq : INT64_MAX;
}

bool mqim__obmem_ack(struct mqim__obmem *m, int64_t seq, const uint8_t id[16])
{
	if (m->nacked == m->cap_acked) {
		size_t cap = m->cap_acked ? m->cap_acked * 2 : 256;
		int64_t *s = realloc(m->acked_seq, cap * sizeof *s);
		if (!s)
			return false;
		m->acked_seq = s;
		uint8_t (*i)[16] = realloc(m->acked_id, cap * sizeof *i);
		if (!i)
			return false;
		m->acked_id = i;
		m->cap_acked = cap;
	}
	m->acked_seq[m->nacked] = seq;
	memcpy(m->acked_id[m->nacked], id, 16);
	m->nacked++;
	return true;
}

void mqim__obmem_acks_clear(struct mqim__obmem *m)
{
	m->nacked = 0;
}
