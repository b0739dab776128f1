/* hold.c - events kept in memory until they can be stored; see hold.h. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static size_t ev_bytes(const struct mqim__ev *ev)
{
	size_t n = sizeof *ev + ev->len;
	if (ev->topic)
		n += strlen(ev->topic) + 1;
	return n;
}

static bool over(const struct mqim__hold *h, size_t more_n, size_t more_bytes)
{
	return h->n + more_n > h->max_n || h->bytes + more_bytes > h->max_bytes;
}

void mqim__hold_init(struct mqim__hold *h)
{
	memset(h, 0, sizeof *h);
	h->max_n = MQIM__HOLD_MAX_EVENTS;
	h->max_bytes = MQIM__HOLD_MAX_BYTES;
}

void mqim__evq_push(struct mqim__evq *q, struct mqim__ev *ev)
{
	ev->next = NULL;
	if (q->tail)
		q->tail->next = ev;
	else
		q->head = ev;
	q->tail = ev;
}

void mqim__evq_free(struct mqim__evq *q)
{
	while (q->head) {
		struct mqim__ev *next = q->head->next;
		free(q->head);
		q->head = next;
	}
	q->tail = NULL;
}

bool mqim__hold_push(struct mqim__hold *h, struct mqim__ev *ev)
{
	size_t b = ev_bytes(ev);
	if (over(h, 1, b)) {
		free(ev);
		h->dropped++;
		h->dropped_total++;
		return false;
	}
	mqim__evq_push(&h->q, ev);
	h->n++;
	h->bytes += b;
	return true;
}

void mqim__hold_prepend(struct mqim__hold *h, struct mqim__ev *evs)
{
	struct mqim__ev *rest = mqim__hold_take(h);
	struct mqim__ev *ev;

	/* Re-push in order: the caps then keep the oldest. */
	while ((ev = evs) != NULL) {
		evs = ev->next;
		mqim__hold_push(h, ev);
	}
	while ((ev = rest) != NULL) {
		rest = ev->next;
		mqim__hold_push(h, ev);
	}
}

struct mqim__ev *mqim__hold_take(struct mqim__hold *h)
{
	struct mqim__ev *all = h->q.head;
	h->q.head = h->q.tail = NULL;
	h->n = h->bytes = 0;
	return all;
}

struct mqim__ev *mqim__hold_take_before(struct mqim__hold *h, struct mqim__ev *evs)
{
	if (!h->q.head)
		return evs;
	h->q.tail->next = evs;
	return mqim__hold_take(h);
}

size_t mqim__hold_take_dropped(struct mqim__hold *h)
{
	size_t n = h->dropped;
	h->dropped = 0;
	return n;
}

void mqim__hold_clear(struct mqim__hold *h)
{
	struct mqim__ev *ev = mqim__hold_take(h);
	while (ev) {
		struct mqim__ev *next = ev->next;
		free(ev);
		h->dropped++;
		h->dropped_total++;
		ev = next;
	}
}
