/* roster.h - group rosters, and the receipts a group message waits for.
 *
 * The wire contract gives a client no way to list a group's members, so
 * the application names them (mqim_set_group_members()); a roster is kept
 * in the data folder (table roster) until it is replaced or forgotten.
 *
 * A group message sent at QoS 1 or 2 while its group's roster is known
 * waits for a receipt from every member at send time except the sender:
 * mqim__roster_expect() writes those members beside the message (table
 * group_wait, in the send's own transaction) and mqim__roster_receipt()
 * ticks one off per receipt, durably, in the receipt's transaction.  The
 * message is done when every one has answered; its rows then go.  Until
 * then it stays in the outbox and is resent (marked) to the group within
 * the resend budget; members who already answered drop the copy as a
 * duplicate and receipt it again, which changes nothing here.  Without a
 * roster (or with one naming nobody but the sender) nothing is written,
 * and the first receipt from anyone settles the message, as before rosters
 * existed.  Later changes to a roster do not touch messages already sent.
 *
 * A read receipt counts as that member's delivery receipt too, and is
 * remembered: a message done with at least one `read` among its answers
 * is reported READ rather than DELIVERED.  After that the rows are gone,
 * so a later `read` from anyone moves a DELIVERED message to READ (the
 * rule for untracked messages).
 *
 * The tables are created on open when missing, so a data folder made by
 * an earlier version gets them without a schema change.
 *
 * Thread rules: the thread that owns the writing database connection.
 */
#ifndef MQIM_CLIENT_ROSTER_H
#define MQIM_CLIENT_ROSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

struct mqim__roster {
	struct mqim__db *db;
	sqlite3_stmt *clear, *add, *expect, *tick, *tally, *done;
};

/* Create the tables if needed and prepare the statements.  MQIM_E* code;
 * on error nothing is left prepared. */
int mqim__roster_open(struct mqim__roster *ro, struct mqim__db *db);
/* Safe on a zeroed or closed struct. */
void mqim__roster_close(struct mqim__roster *ro);

/* Replace gid's roster with members (NULL-terminated, names already
 * checked; duplicates are fine).  NULL or an empty list forgets it.  Run
 * it inside a transaction: on error the caller rolls back. */
int mqim__roster_set(struct mqim__roster *ro, const char *gid, const char *const *members);

/* Message id to group gid is being queued by user self: record every
 * member of gid's roster but self as an awaited receipt.  *n (may be NULL)
 * gets how many (0: no roster, the first-receipt rule applies). */
int mqim__roster_expect(struct mqim__roster *ro, const uint8_t id[16], const char *gid,
			const char *self, int *n);

/* A receipt (is_read: a `read`) from member for our group message id.
 * *state gets what the message became: 0 while some member has still to
 * answer (member may be a stranger to the roster: then nothing changes),
 * else MQIM_MSG_DELIVERED or MQIM_MSG_READ (the message is done, its rows
 * are deleted; an untracked message is done at once, READ for a `read`). */
int mqim__roster_receipt(struct mqim__roster *ro, const uint8_t id[16], const char *member,
			 bool is_read, int *state);

#endif
