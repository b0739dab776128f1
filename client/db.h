/* db.h - the client's SQLite file: opening, schema, transactions, errors.
 *
 * One file, {data_dir}/mqim.db (mode 0600, WAL), holds the outbox
 * (outbox.h), the history (history.h), the seen-set (seen.h), the groups to
 * follow and a few settings (the device id).  The library thread owns the
 * one writing connection; a second, read-only connection serves the
 * queries that the application makes from its own threads.
 *
 * Thread rules: a struct mqim__db belongs to one thread at a time.
 */
#ifndef MQIM_CLIENT_DB_H
#define MQIM_CLIENT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#define MQIM_DB_FILE "mqim.db"

/* Statements that take a list of rows (seq IN (...)) take this many
 * parameters for it; the unused ones are NULL. */
#define MQIM__DB_BULK 64
/* Statements that insert many rows at once (VALUES (...), (...)) insert
 * this many: one statement's fixed cost is about that of a row. */
#define MQIM__DB_ROWS 16

struct mqim__db {
	sqlite3 *h;
	sqlite3_stmt *begin, *commit, *rollback;
	sqlite3_stmt *sp, *sp_release, *sp_undo;
	sqlite3_stmt *meta_get, *meta_put;
	sqlite3_stmt *group_add, *group_del, *group_list;
	sqlite3_stmt *sync_normal, *sync_full;   /* NULL unless synchronous=FULL */
	bool in_tx;
	bool lazy;                  /* synchronous=NORMAL for now (mqim__db_sync) */
};

#define MQIM_DB_READONLY 0x1
#define MQIM_DB_NOSYNC   0x2   /* synchronous=NORMAL instead of FULL */

/* Open (creating file and schema unless read-only) {dir}/mqim.db into *db.
 * On failure returns an MQIM_E* code, writes a sentence into errbuf and
 * leaves nothing open. */
int mqim__db_open(struct mqim__db *db, const char *dir, unsigned flags,
		  char *errbuf, size_t errlen);
void mqim__db_close(struct mqim__db *db);

/* Map an SQLite result code to MQIM_OK / MQIM_ENOSPC / MQIM_EIO /
 * MQIM_ECORRUPT / MQIM_EBUSY / MQIM_EDB. */
int mqim__db_err(int sqlite_rc);

/* Prepare sql on db->h into *st; returns an MQIM_E* code. */
int mqim__db_prepare(struct mqim__db *db, const char *sql, sqlite3_stmt **st);
/* Prepare "head" followed by rows times "(?a, ..., ?b)" with cols
 * parameters each (numbered on), and then "tail".  MQIM_E* code. */
int mqim__db_prepare_rows(struct mqim__db *db, const char *head, unsigned rows, unsigned cols,
			  const char *tail, sqlite3_stmt **st);

/* Transactions.  begin is a no-op when one is open (db->in_tx); commit and
 * rollback are no-ops when none is.  commit returns MQIM_ENOSPC on a full
 * disk, and then the transaction has been rolled back. */
int mqim__db_begin(struct mqim__db *db);
int mqim__db_commit(struct mqim__db *db);

/* Whether the next transactions' commits wait for the disk.  A connection
 * opened without MQIM_DB_NOSYNC is synchronous=FULL: every commit syncs
 * the write-ahead log.  mqim__db_sync(db, false) makes it NORMAL until
 * mqim__db_sync(db, true): such commits are not synced; the next durable
 * commit (or checkpoint) syncs them too, since the log is written in
 * order, so a power cut may lose the last lazy transactions but never one
 * before a durable one.  For work that is cheap to lose: state that a
 * resend re-creates.  Only outside a transaction (SQLite refuses to change
 * it inside one): MQIM_EBUSY then.  A no-op with MQIM_DB_NOSYNC. */
int mqim__db_sync(struct mqim__db *db, bool durable);
void mqim__db_rollback(struct mqim__db *db);

/* A savepoint inside the open transaction, for one unit of work: release
 * keeps it, undo rolls it back (and releases it). */
int mqim__db_savepoint(struct mqim__db *db);
int mqim__db_release(struct mqim__db *db);
void mqim__db_undo(struct mqim__db *db);

/* Settings: value copied into out (NUL-terminated); MQIM_ENOTFOUND if unset. */
int mqim__db_meta_get(struct mqim__db *db, const char *key, char *out, size_t outlen);
int mqim__db_meta_put(struct mqim__db *db, const char *key, const char *value);

/* The groups to follow. */
int mqim__db_group_add(struct mqim__db *db, const char *gid);
int mqim__db_group_del(struct mqim__db *db, const char *gid);
int mqim__db_groups(struct mqim__db *db, int (*cb)(void *ctx, const char *gid), void *ctx);

/* Wall clock in ms since the epoch, and a monotonic clock in ms. */
int64_t mqim__now_ms(void);
int64_t mqim__mono_ms(void);

/* Run a statement that returns no rows; resets it.  MQIM_E* code. */
int mqim__db_step_done(sqlite3_stmt *st);

#endif
