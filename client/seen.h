/* seen.h - the seen-set: which (fr, id) pairs this client has received.
 *
 * Receivers drop duplicates by (fr, id) (docs/protocol.md, Receipts).  The
 * set lives in the database, so it survives restarts, and is bounded: past
 * max + max/8 entries the oldest are forgotten down to max (in one
 * statement, so the cost is spread).  A pair older than the window that
 * comes back is taken as new; the history's own (fr, id) key still keeps it
 * from being stored twice.
 *
 * Thread rules: the thread that owns the database connection.
 */
#ifndef MQIM_CLIENT_SEEN_H
#define MQIM_CLIENT_SEEN_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct mqim__seen {
	struct mqim__db *db;
	sqlite3_stmt *check, *ins, *trim, *count;
	unsigned max;
	int64_t n;          /* entries now */
};

int mqim__seen_open(struct mqim__seen *s, struct mqim__db *db, unsigned max);
void mqim__seen_close(struct mqim__seen *s);

/* Record (fr, id).  Returns 0 when it is new (and now recorded), 1 when it
 * was seen before, or a negative MQIM_E* code. */
int mqim__seen_add(struct mqim__seen *s, const char *fr, size_t frlen, const uint8_t id[16]);

/* Entries now. */
int64_t mqim__seen_count(struct mqim__seen *s);

#endif
