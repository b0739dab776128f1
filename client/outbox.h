/* outbox.h - the outbox: what is still to be done on the wire, on disk.
 *
 * Each row is one envelope to publish: a message (kind MSG), or a receipt
 * this client owes (RCPT, READ).  A row is written before the application
 * hears "queued", is published in seq order, and leaves the outbox when its
 * work is done: a receipt when the broker acknowledged it, a QoS 0 message
 * when it was written to the network once, a QoS 1/2 message when its
 * delivery receipt arrives (for a group message with a known roster, the
 * receipts of every member: roster.h).
 *
 * Resends.  A row the broker never acknowledged (QUEUED) goes again on the
 * next connection as a plain retransmission: if the first copy did reach
 * the broker, its de-duplication swallows this one, as the contract says.
 * The publishes of a QUEUED row are not written (no ACT_SAVE): on disk,
 * "stored, never published" and "published, not acknowledged" are the same
 * row, QUEUED with 0 attempts (a file written by an older version may say
 * more), and both go again, unmarked, after a restart.  Its attempts count
 * in memory only; the first acknowledgement writes SENT with at least 1
 * attempt (the acknowledged publish).  That acknowledgement is written in
 * bulk, a little later (obmem.h), and only here: the message's history row
 * stays QUEUED and reads as SENT (history.h).  Lost in a crash, it costs
 * one more unmarked retransmission.  (A retried row's MQIM_OB_MARK_NEXT
 * survives its unwritten publishes, so they stay marked.)
 *
 * A row the broker did acknowledge (SENT) but whose receipt did not come
 * within resend_timeout_ms goes again as a *marked* resend (action MARK:
 * the MQTT 5 user property mqim-resend = 1), which the mqim plugin delivers
 * even inside its de-duplication window, since the first copy may have
 * reached nobody (docs/protocol.md, De-duplication).  A first
 * acknowledgement with reason 0x10 "no matching subscribers" says so
 * outright: the row is SENT all the same, but its marked resend is due
 * after MQIM_OB_NOSUB_RESEND_MS (at most resend_timeout_ms) instead of the
 * full resend timeout, to catch a recipient whose subscription is just
 * coming back (a broker restarted without persistence).  It counts against
 * max_resends like any resend; later 0x10 answers wait the full timeout, so
 * a recipient away for long does not spend the budget in seconds.
 * mqim_retry() of a message FAILED for want of its receipt (ETIMEOUT: the
 * broker had taken it) publishes it marked at once.
 *
 * The rules of a row's life are one pure function, mqim__ob_step(), unit
 * tested on its own; the rest of this file stores its results.
 *
 * Thread rules: the functions that take a struct mqim__outbox run on the
 * thread that owns the database connection.  Rows given to callbacks are
 * valid only until the callback returns.
 */
#ifndef MQIM_CLIENT_OUTBOX_H
#define MQIM_CLIENT_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

enum mqim__ob_kind {
	MQIM_OB_MSG = 0,
	MQIM_OB_RCPT = 1,
	MQIM_OB_READ = 2,
};

/* Row states: the mqim_msg_state values QUEUED (not yet acknowledged by the
 * broker), SENT (acknowledged, waiting for the receipt) and FAILED. */

enum mqim__ob_event {
	MQIM_OB_EV_PUBLISH,   /* handed to the network (an attempt) */
	MQIM_OB_EV_ACK,       /* broker acknowledged (QoS 0: written) */
	MQIM_OB_EV_ACK_NOSUB, /* acknowledged with 0x10: this copy reached nobody */
	MQIM_OB_EV_REFUSED,   /* broker refused it (reason code >= 0x80) */
	MQIM_OB_EV_DUE,       /* a SENT row's resend time came */
	MQIM_OB_EV_RCPT,      /* its delivery receipt arrived */
	MQIM_OB_EV_READ,      /* its read receipt arrived */
	MQIM_OB_EV_RETRY,     /* mqim_retry() */
};

struct mqim__ob_cfg {
	unsigned resend_timeout_ms;
	unsigned max_resends;
};

/* The mutable part of a row. */
struct mqim__ob_fsm {
	int state;          /* enum mqim_msg_state: QUEUED, SENT, FAILED */
	unsigned attempts;  /* publishes so far */
	int64_t next_at;    /* SENT: wall ms when a resend is due; QUEUED:
	                     * MQIM_OB_MARK_NEXT after a retry of a message the
	                     * broker had taken (its publishes go marked), else 0 */
	int err;            /* FAILED: why */
};

/* What the caller must do after a step (bit flags). */
#define MQIM_OB_ACT_SAVE    0x01  /* write the new fsm to the row */
#define MQIM_OB_ACT_DELETE  0x02  /* remove the row */
#define MQIM_OB_ACT_PUBLISH 0x04  /* publish the payload again now */
#define MQIM_OB_ACT_NOTIFY  0x08  /* report the message's new state */
#define MQIM_OB_ACT_INVALID 0x10  /* the event makes no sense in this state: ignored */
#define MQIM_OB_ACT_MARK    0x20  /* (with a PUBLISH step) a receipt-driven resend:
                                   * publish it marked mqim-resend = 1 */

/* The resend after a first acknowledgement 0x10 is due this soon. */
#define MQIM_OB_NOSUB_RESEND_MS 1000
/* fsm.next_at of a QUEUED row whose publishes go marked. */
#define MQIM_OB_MARK_NEXT (-1)

/* Apply ev at wall time now to a row of this kind and qos.  *s is updated;
 * *notify_state (may be NULL) receives the state to report when NOTIFY is
 * set: for RCPT / READ events, DELIVERED / READ, which are not row states
 * (the row is deleted).  This function can't fail. */
unsigned mqim__ob_step(const struct mqim__ob_cfg *cfg, int kind, int qos,
		       struct mqim__ob_fsm *s, enum mqim__ob_event ev, int64_t now,
		       int *notify_state);

/* One row. */
struct mqim__ob_row {
	int64_t seq;
	uint8_t id[16];
	int kind;
	const char *peer;       /* recipient user or group */
	bool is_group;
	int qos;
	const void *payload;
	size_t len;
	int64_t created;
	struct mqim__ob_fsm fsm;
};

struct mqim__outbox {
	struct mqim__db *db;
	sqlite3_stmt *ins, *save, *del, *by_id, *due, *due_sent, *next_due, *list, *count;
	sqlite3_stmt *sent_bulk, *moved, *ins_many;
};

int mqim__ob_open(struct mqim__outbox *ob, struct mqim__db *db);
void mqim__ob_close(struct mqim__outbox *ob);

/* Append a row in state QUEUED; sets r->seq.  MQIM_EEXISTS when the id is
 * there already. */
int mqim__ob_add(struct mqim__outbox *ob, struct mqim__ob_row *r);
/* The same for rows[0..n), in that order, MQIM__DB_ROWS per statement (db.h);
 * on error some may be written: the caller undoes its unit of work. */
int mqim__ob_add_many(struct mqim__outbox *ob, struct mqim__ob_row *rows, size_t n);

/* Write back r->fsm for row r->seq, or delete it. */
int mqim__ob_save(struct mqim__outbox *ob, const struct mqim__ob_row *r);
int mqim__ob_delete(struct mqim__outbox *ob, int64_t seq);

/* Find the row with this id; fills *r without its payload (r->payload
 * NULL), its peer copied into peer.  MQIM_ENOTFOUND when none. */
int mqim__ob_find(struct mqim__outbox *ob, const uint8_t id[16], struct mqim__ob_row *r,
		  char peer[65]);

/* Rows to publish now, in seq order: QUEUED ones with a seq below `below`
 * and SENT ones whose next_at <= now; at most limit.  cb may return
 * non-zero to stop.  *queued_done (may be NULL) tells whether every such
 * QUEUED row was given to cb. */
int mqim__ob_due(struct mqim__outbox *ob, int64_t now, int64_t below, unsigned limit,
		 int (*cb)(void *ctx, struct mqim__ob_row *r), void *ctx, bool *queued_done);

/* The first acknowledgement of n (at most MQIM__DB_BULK) QUEUED rows whose
 * publishes were not written: state SENT, attempts 1, next_at.  Rows no
 * longer QUEUED (or gone) are left alone; *moved gets how many moved. */
int mqim__ob_sent_bulk(struct mqim__outbox *ob, const int64_t *seq, size_t n, int64_t next_at,
		       size_t *moved);
/* Whether row seq is as mqim__ob_sent_bulk(..., next_at) leaves it: which
 * rows moved, when not all did.  false on error. */
bool mqim__ob_moved(struct mqim__outbox *ob, int64_t seq, int64_t next_at);

/* Earliest next_at of the SENT rows, or INT64_MAX when none. */
int64_t mqim__ob_next_due(struct mqim__outbox *ob);

/* Every row of kind MSG, in seq order. */
int mqim__ob_list(struct mqim__outbox *ob, int (*cb)(void *ctx, struct mqim__ob_row *r), void *ctx);

/* Number of rows (all kinds). */
int64_t mqim__ob_count(struct mqim__outbox *ob);

#endif
