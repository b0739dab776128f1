/* history.h - the local history of every conversation.
 *
 * The server keeps no history; this store does.  One row per message, both
 * directions, keyed by (fr, id); a conversation is (peer, is_group), where
 * peer is the other user of a direct conversation or the group id.  Rows
 * are ordered by bts (the broker's clock; for one's own direct messages,
 * which never come back from the broker, the sending time) and then id.
 *
 * The state column of our own messages is not written when the broker
 * acknowledges one (the most frequent change, and the costliest to write
 * per message): it stays QUEUED while the message's outbox row says SENT,
 * and what the application is shown (mqim__hist_state, mqim__hist_page) is
 * SENT then.  Every later state (DELIVERED, READ, FAILED, QUEUED again by a
 * retry) is written here, and the merge rules give the same result from
 * QUEUED as from SENT for all of them; mqim__hist_get returns the column as
 * stored.
 *
 * Thread rules: the thread that owns the database connection.  Messages
 * given to callbacks are valid only until the callback returns.
 */
#ifndef MQIM_CLIENT_HISTORY_H
#define MQIM_CLIENT_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqim.h"
#include "db.h"

struct mqim__history {
	struct mqim__db *db;
	sqlite3_stmt *ins, *get, *set, *page, *shown, *ins_many;
};

int mqim__hist_open(struct mqim__history *h, struct mqim__db *db);
void mqim__hist_close(struct mqim__history *h);

/* Store m (its strings NUL-terminated) in conversation peer.  Returns
 * MQIM_OK, or MQIM_EEXISTS when (from, id) is there already (unchanged). */
int mqim__hist_add(struct mqim__history *h, const char *peer, const struct mqim_message *m);
/* The same for ms[0..n) in conversations peers[0..n), MQIM__DB_ROWS per
 * statement (db.h): MQIM_EEXISTS when any was there already, and then
 * the others of its statement may be written: the caller undoes its unit
 * of work. */
int mqim__hist_add_many(struct mqim__history *h, const char *const *peers,
			const struct mqim_message *ms, size_t n);

/* State, conversation and group flag of (fr, id); peer may be NULL, else
 * 65 bytes.  MQIM_ENOTFOUND when absent. */
int mqim__hist_get(struct mqim__history *h, const char *fr, const uint8_t id[16],
		   int *state, bool *outgoing, char *peer, bool *is_group);

/* State of (fr, id) as the application sees it (SENT read from the
 * outbox, above), and whether it is outgoing.  MQIM_ENOTFOUND when
 * absent. */
int mqim__hist_state(struct mqim__history *h, const char *fr, const uint8_t id[16],
		     int *state, bool *outgoing);

int mqim__hist_set_state(struct mqim__history *h, const char *fr, const uint8_t id[16], int state);

/* Newest first, strictly before (before_bts, before_id) (0 / NULL: from the
 * newest), at most limit.  Returns the count given to cb, cb's non-zero
 * value, or a negative MQIM_E* code. */
int mqim__hist_page(struct mqim__history *h, const char *peer, bool is_group,
		    uint64_t before_bts, const uint8_t *before_id, unsigned limit,
		    mqim_message_cb cb, void *ctx);

/* The state an outgoing message moves to when `next` happens to it in state
 * `cur`: states only move forward (QUEUED < SENT < DELIVERED < READ), FAILED
 * only from QUEUED or SENT, back to QUEUED only from FAILED (a retry), and a
 * late receipt lifts FAILED.  Returns cur when next does not apply.  Pure. */
int mqim__msg_state_merge(int cur, int next);

#endif
