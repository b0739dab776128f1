/* hold.h - what arrived but could not be stored yet, kept in memory.
 *
 * A message or a broker acknowledgement that libmqim takes off the wire has
 * already been acknowledged to the broker: nobody sends it again soon.  When
 * the data folder cannot be written (a full disk: a statement or the batch's
 * COMMIT fails), such an event waits here, in arrival order, and the library
 * thread applies it again once the store works (client.c).  Nothing of it is
 * shown to the application before it is stored.
 *
 * Bounded: at most max_n events and max_bytes of them (MQIM__HOLD_MAX_*
 * unless changed).  Past that the newest are dropped and counted, and the
 * caller reports it: a dropped message was neither shown nor receipted, so
 * its sender sends it again after its resend timeout; a dropped receipt
 * leaves our message SENT, and its resend brings a fresh receipt.  What is
 * held when the client closes is dropped the same way.
 *
 * Thread rules: library thread only.  The queue owns the events it holds
 * (freed with free()); events taken out belong to the caller.
 */
#ifndef MQIM_CLIENT_HOLD_H
#define MQIM_CLIENT_HOLD_H

#include <stdbool.h>
#include <stddef.h>

#define MQIM__HOLD_MAX_EVENTS 10000
#define MQIM__HOLD_MAX_BYTES  (16u << 20)

struct mqim__ev;

/* A list of events linked by their next, oldest first. */
struct mqim__evq {
	struct mqim__ev *head, *tail;
};

/* Append ev (its next is overwritten); free() every event of q and empty
 * it.  These functions can't fail. */
void mqim__evq_push(struct mqim__evq *q, struct mqim__ev *ev);
void mqim__evq_free(struct mqim__evq *q);

struct mqim__hold {
	struct mqim__evq q;
	size_t n, bytes;            /* held now */
	size_t max_n, max_bytes;    /* the caps */
	size_t dropped;             /* dropped since mqim__hold_take_dropped() */
	size_t dropped_total;       /* dropped since mqim__hold_init() */
};

/* An empty queue with the default caps; this function can't fail. */
void mqim__hold_init(struct mqim__hold *h);

/* Append ev (its next is overwritten).  Returns false when a cap is
 * reached: ev was then freed and counted as dropped. */
bool mqim__hold_push(struct mqim__hold *h, struct mqim__ev *ev);

/* Put the list evs (linked by next, oldest first) before what is held,
 * then drop the newest events while a cap is exceeded. */
void mqim__hold_prepend(struct mqim__hold *h, struct mqim__ev *evs);

/* Take every held event out, oldest first (NULL when none). */
struct mqim__ev *mqim__hold_take(struct mqim__hold *h);

/* The same, with the list evs linked after them (evs when none is held). */
struct mqim__ev *mqim__hold_take_before(struct mqim__hold *h, struct mqim__ev *evs);

/* The number of events dropped since the last call; resets it. */
size_t mqim__hold_take_dropped(struct mqim__hold *h);

/* Free every held event (they count as dropped). */
void mqim__hold_clear(struct mqim__hold *h);

#endif
