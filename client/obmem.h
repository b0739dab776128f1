/* obmem.h - the outbox's working state in memory: rows the pump publishes
 * without reading them back, and acknowledgements written in bulk.
 *
 * The outbox on disk (outbox.h) stays the truth; this is what spares the
 * library thread a round of SQLite statements per message:
 *
 * Fresh rows.  A row written to the outbox (a message sent, a receipt
 * owed) is also kept here, with its payload, first as tentative (its
 * transaction is open), then, once that transaction commits, at the tail
 * of the fresh queue, in seq order.  The pump publishes the fresh queue
 * from memory.  `below` says that the outbox may hold QUEUED rows that
 * are neither in flight nor here, all with a seq below the head of the
 * queue (anywhere when the queue is empty): then the pump reads those from
 * the database first (outbox.c, mqim__ob_due with that bound), and clears
 * `below` once that read reached the end.  It is set at start, when the
 * link goes (what was in flight goes again), when a publish got no answer,
 * by mqim_retry(), and whenever this memory lets go of rows: the oldest
 * when max_bytes is passed, every one when work is undone (a unit of work
 * or a commit failed: mqim__obmem_forget, mqim__obmem_commit), or when out
 * of memory.  A row is taken off the queue once it is published, never
 * before.
 *
 * Acknowledgements.  The first acknowledgement of a message's first
 * publish (QUEUED -> SENT, by far the most common step) is not written at
 * once: its seq and id wait here and go to the database in bulk (one
 * UPDATE of the outbox per MQIM__DB_BULK messages, db.h; the history row
 * stays QUEUED, history.h) before the transaction commits, and before
 * anything reads the outbox rows or our messages' states again (send.c,
 * mqim__acks_flush).  So a crash may lose them, like the rest of the lazy
 * transaction they would have joined (client.c): that costs a resend the
 * broker drops as a duplicate.  They wait only for a commit to come: one
 * is taken in during a turn, whose batch or lazy transaction (with its
 * deadline) commits after it, and the write before a commit
 * (mqim__acks_flush(c, true)) also writes those taken in while it fed the
 * link between its statements, so that a commit leaves none here.  One
 * left behind would wait for a transaction nothing may start: its row
 * QUEUED on disk, neither in flight nor fresh, `below` false, never read
 * by the pump nor reported SENT (the tail of a stream, once in about 40
 * runs of mqim-bench client, before that write).
 *
 * The invariant.  Between two turns of the library thread, every outbox
 * row in state QUEUED is at least one of:
 *   - in flight: a slot holds its seq (send.c), and its answer will come
 *     as an event (an acknowledgement, a refusal, or "no answer", which
 *     sets `below`) unless the link goes, which sets `below`;
 *   - fresh or tentative here;
 *   - acknowledged here (acked_seq), with a commit to come;
 *   - below the bound (seq < mqim__obmem_bound()) with `below` set.
 * Fresh and tentative rows are in seq order, all above every row once
 * published from here.  Any step that lets go of a row in none of the
 * other ways (a rollback, the cap, out of memory, a write of
 * acknowledgements that failed, mqim_retry) sets `below`; only a read of
 * the database that reached every QUEUED row below the bound clears it.
 *
 * Thread rules: library thread only.  The structure owns the rows and
 * arrays it holds; rows it returns are borrowed until the next call that
 * changes it.
 */
#ifndef MQIM_CLIENT_OBMEM_H
#define MQIM_CLIENT_OBMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

/* The fresh queue holds at most this many bytes (rows, payloads, peers). */
#define MQIM__OBMEM_MAX_BYTES (8u << 20)

/* One row not yet published. */
struct mqim__fresh {
	struct mqim__fresh *next;
	struct mqim__ob_row r;      /* peer and payload point into data; fsm QUEUED */
	size_t bytes;               /* what it counts against max_bytes */
	char data[];
};

struct mqim__obmem {
	struct mqim__fresh *head, *tail;      /* committed, in seq order */
	struct mqim__fresh *t_head, *t_tail;  /* written by the open transaction */
	size_t bytes, t_bytes, max_bytes;
	bool below;
	int64_t *acked_seq;         /* acknowledgements not yet written */
	uint8_t (*acked_id)[16];
	size_t nacked, cap_acked;
};

/* An empty state with `below` set (the outbox may hold anything); this
 * function can't fail. */
void mqim__obmem_init(struct mqim__obmem *m, size_t max_bytes);
/* Free everything it holds. */
void mqim__obmem_free(struct mqim__obmem *m);

/* Row r (kind, id, peer, qos, payload, seq; fsm QUEUED) was just added to
 * the outbox in the open transaction: keep a copy as tentative.  No
 * reference is kept to r's strings or payload.  Out of memory the row is
 * not kept and everything is forgotten (`below`); this function can't
 * fail. */
void mqim__obmem_add(struct mqim__obmem *m, const struct mqim__ob_row *r);

/* The open transaction was committed (ok) or rolled back: the tentative
 * rows join the fresh queue (the oldest fresh rows go when that passes
 * max_bytes, setting `below`), or are dropped with the acknowledgements
 * not yet written, setting `below` (their rows are QUEUED again). */
void mqim__obmem_commit(struct mqim__obmem *m, bool ok);

/* Some work of the open transaction was undone: forget every fresh and
 * tentative row and set `below`.  The acknowledgements stay. */
void mqim__obmem_forget(struct mqim__obmem *m);

/* The oldest fresh row (NULL when none), and taking it off once published. */
struct mqim__fresh *mqim__obmem_head(struct mqim__obmem *m);
void mqim__obmem_pop(struct mqim__obmem *m);

/* The bound for reading QUEUED rows from the database: the seq of the
 * oldest fresh or tentative row, or INT64_MAX when there is none. */
int64_t mqim__obmem_bound(const struct mqim__obmem *m);

/* Remember the first acknowledgement of row seq (message id).  false when
 * out of memory: the caller writes it now instead. */
bool mqim__obmem_ack(struct mqim__obmem *m, int64_t seq, const uint8_t id[16]);
/* Forget the acknowledgements not yet written (they were written, or
 * their events will be applied again). */
void mqim__obmem_acks_clear(struct mqim__obmem *m);

#endif
