/* db.c - the client's SQLite file; see db.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mqim.h"
#include "db.h"

#define SCHEMA_VERSION 1

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta("
	"  key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	/* The outbox: work still to do on the wire.  payload is the encoded
	 * envelope, sent byte for byte on every attempt. */
	"CREATE TABLE IF NOT EXISTS outbox("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  id BLOB NOT NULL UNIQUE,"
	"  kind INTEGER NOT NULL,"
	"  peer TEXT NOT NULL,"
	"  is_group INTEGER NOT NULL,"
	"  qos INTEGER NOT NULL,"
	"  payload BLOB NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  next_at INTEGER NOT NULL DEFAULT 0,"
	"  created INTEGER NOT NULL,"
	"  err INTEGER NOT NULL DEFAULT 0);"
	/* Every message of every conversation, both directions. */
	"CREATE TABLE IF NOT EXISTS history("
	"  fr TEXT NOT NULL, id BLOB NOT NULL,"
	"  peer TEXT NOT NULL, is_group INTEGER NOT NULL,"
	"  to_ TEXT NOT NULL, ts INTEGER NOT NULL, bts INTEGER NOT NULL,"
	"  ct TEXT, body BLOB, outgoing INTEGER NOT NULL, state INTEGER NOT NULL,"
	"  PRIMARY KEY(fr, id));"
	"CREATE INDEX IF NOT EXISTS history_conv ON history(peer, is_group, bts, id);"
	/* The seen-set: insertion order is n, the oldest go first. */
	"CREATE TABLE IF NOT EXISTS seen("
	"  n INTEGER PRIMARY KEY, fr TEXT NOT NULL, id BLOB NOT NULL, UNIQUE(fr, id));"
	"CREATE TABLE IF NOT EXISTS groups(gid TEXT PRIMARY KEY);";

int64_t mqim__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mqim__mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int mqim__db_err(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return MQIM_OK;
	case SQLITE_FULL:
		return MQIM_ENOSPC;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
	case SQLITE_READONLY:
	case SQLITE_PERM:
		return MQIM_EIO;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return MQIM_ECORRUPT;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return MQIM_EBUSY;
	case SQLITE_NOMEM:
		return MQIM_ENOMEM;
	case SQLITE_CONSTRAINT:
		return MQIM_EEXISTS;
	default:
		return MQIM_EDB;
	}
}

int mqim__db_prepare(struct mqim__db *db, const char *sql, sqlite3_stmt **st)
{
	return mqim__db_err(sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL));
}

int mqim__db_prepare_rows(struct mqim__db *db, const char *head, unsigned rows, unsigned cols,
			  const char *tail, sqlite3_stmt **st)
{
	size_t cap = strlen(head) + strlen(tail) + (size_t)rows * cols * 8 + rows * 4 + 1;
	char *sql = malloc(cap);
	if (!sql)
		return MQIM_ENOMEM;
	size_t n = (size_t)snprintf(sql, cap, "%s", head);
	for (unsigned r = 0; r < rows; r++) {
		n += (size_t)snprintf(sql + n, cap - n, "%s", r ? ", (" : "(");
		for (unsigned k = 1; k <= cols; k++)
			n += (size_t)snprintf(sql + n, cap - n, "%s?%u", k > 1 ? ", " : "", r * cols + k);
		n += (size_t)snprintf(sql + n, cap - n, ")");
	}
	snprintf(sql + n, cap - n, "%s", tail);
	int rc = mqim__db_prepare(db, sql, st);
	free(sql);
	return rc;
}

int mqim__db_step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? MQIM_OK : mqim__db_err(rc);
}

int mqim__db_begin(struct mqim__db *db)
{
	if (db->in_tx)
		return MQIM_OK;
	int rc = mqim__db_step_done(db->begin);
	if (rc == MQIM_OK)
		db->in_tx = true;
	return rc;
}

int mqim__db_commit(struct mqim__db *db)
{
	if (!db->in_tx)
		return MQIM_OK;
	int rc = mqim__db_step_done(db->commit);
	if (rc != MQIM_OK) {
		/* A failed COMMIT may leave the transaction open: end it. */
		if (!sqlite3_get_autocommit(db->h))
			mqim__db_step_done(db->rollback);
	}
	db->in_tx = false;
	return rc;
}

int mqim__db_sync(struct mqim__db *db, bool durable)
{
	if (!db->sync_normal || db->lazy == !durable)
		return MQIM_OK;
	if (db->in_tx)
		return MQIM_EBUSY;
	int rc = mqim__db_step_done(durable ? db->sync_full : db->sync_normal);
	if (rc == MQIM_OK)
		db->lazy = !durable;
	return rc;
}

void mqim__db_rollback(struct mqim__db *db)
{
	if (!db->in_tx)
		return;
	if (!sqlite3_get_autocommit(db->h))
		mqim__db_step_done(db->rollback);
	db->in_tx = false;
}

int mqim__db_savepoint(struct mqim__db *db)
{
	return mqim__db_step_done(db->sp);
}

int mqim__db_release(struct mqim__db *db)
{
	return mqim__db_step_done(db->sp_release);
}

void mqim__db_undo(struct mqim__db *db)
{
	mqim__db_step_done(db->sp_undo);
	mqim__db_step_done(db->sp_release);
}

static int exec(struct mqim__db *db, const char *sql, char *errbuf, size_t errlen)
{
	char *msg = NULL;
	int rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
	}
	return mqim__db_err(rc);
}

static int check_schema(struct mqim__db *db, bool create, char *errbuf, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc = mqim__db_prepare(db, "PRAGMA user_version", &st);
	if (rc != MQIM_OK) {
		snprintf(errbuf, errlen, "%s", sqlite3_errmsg(db->h));
		return rc;
	}
	int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (version == SCHEMA_VERSION)
		return MQIM_OK;
	/* The schema is made only in a file this open created: an existing file
	 * without it (emptied, truncated, someone else's) is an error, never
	 * silently reset into an empty outbox. */
	if (version == 0 && create) {
		char sql[64];
		rc = exec(db, "BEGIN IMMEDIATE", errbuf, errlen);
		if (rc == MQIM_OK)
			rc = exec(db, schema_sql, errbuf, errlen);
		snprintf(sql, sizeof sql, "PRAGMA user_version=%d", SCHEMA_VERSION);
		if (rc == MQIM_OK)
			rc = exec(db, sql, errbuf, errlen);
		if (rc == MQIM_OK)
			rc = exec(db, "COMMIT", errbuf, errlen);
		else
			sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	snprintf(errbuf, errlen, "%s (schema version %d): remove it to start afresh, losing "
		 "its outbox and history", version == 0 ? "the client database is empty or not "
		 "an mqim database" : "not an mqim client database", version);
	return MQIM_ECORRUPT;
}

int mqim__db_open(struct mqim__db *db, const char *dir, unsigned flags,
		  char *errbuf, size_t errlen)
{
	char path[4096];
	bool ro = flags & MQIM_DB_READONLY;
	int rc;

	memset(db, 0, sizeof *db);
	if (snprintf(path, sizeof path, "%s/%s", dir, MQIM_DB_FILE) >= (int)sizeof path) {
		snprintf(errbuf, errlen, "data folder path too long");
		return MQIM_EINVAL;
	}
	bool created = false;
	if (!ro) {
		/* Create the file 0600 ourselves: SQLite would use 0644, and its
		 * -wal and -shm files copy the main file's mode. */
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0)
			created = true;
		else if (errno == EEXIST)
			fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			snprintf(errbuf, errlen, "%s: %s", path, strerror(errno));
			return errno == ENOSPC ? MQIM_ENOSPC : MQIM_EIO;
		}
		close(fd);
	}
	int oflags = (ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
	rc = sqlite3_open_v2(path, &db->h, oflags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(errbuf, errlen, "%s: %s", path, db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		rc = mqim__db_err(rc);
		goto fail;
	}
	sqlite3_busy_timeout(db->h, 5000);
	sqlite3_extended_result_codes(db->h, 1);
	/* An existing file is checked before anything writes to it (WAL mode
	 * writes a header even into an empty file). */
	if (!created && (rc = check_schema(db, false, errbuf, errlen)) != MQIM_OK)
		goto fail;
	if (!ro) {
		rc = exec(db, "PRAGMA journal_mode=WAL", errbuf, errlen);
		/* Savepoints journal the pages they change: in memory, not in
		 * a temporary file (a third of what a send cost). */
		if (rc == MQIM_OK)
			rc = exec(db, "PRAGMA temp_store=MEMORY", errbuf, errlen);
		/* The pages the library thread touches again and again (the
		 * outbox's, its indexes') stay in memory. */
		if (rc == MQIM_OK)
			rc = exec(db, "PRAGMA cache_size=-8192", errbuf, errlen);
		if (rc == MQIM_OK)
			rc = exec(db, flags & MQIM_DB_NOSYNC ? "PRAGMA synchronous=NORMAL"
							     : "PRAGMA synchronous=FULL", errbuf, errlen);
		if (rc != MQIM_OK)
			goto fail;
	}
	if (created && (rc = check_schema(db, true, errbuf, errlen)) != MQIM_OK)
		goto fail;
	/* The outbox's indexes are made on open, so that a file from before
	 * them gets them without a new schema version: the QUEUED rows in
	 * sending order, for the pump, and the SENT rows by resend time
	 * (outbox.c).  Both partial, so that a row's first acknowledgement
	 * (QUEUED -> SENT) moves it between two small indexes, and a new row
	 * enters one; outbox_due, an index of every row on (state, next_at),
	 * is what the SENT one replaced. */
	if (!ro && (rc = exec(db, "CREATE INDEX IF NOT EXISTS outbox_queue ON outbox(seq)"
			      " WHERE state=1;"
			      "CREATE INDEX IF NOT EXISTS outbox_sent ON outbox(next_at) WHERE state=2;"
			      "DROP INDEX IF EXISTS outbox_due", errbuf, errlen)) != MQIM_OK)
		goto fail;

	struct { const char *sql; sqlite3_stmt **st; } stmts[] = {
		{ "BEGIN IMMEDIATE", &db->begin },
		{ "COMMIT", &db->commit },
		{ "ROLLBACK", &db->rollback },
		{ "SAVEPOINT w", &db->sp },
		{ "RELEASE w", &db->sp_release },
		{ "ROLLBACK TO w", &db->sp_undo },
		{ "SELECT value FROM meta WHERE key=?1", &db->meta_get },
		{ "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)", &db->meta_put },
		{ "INSERT OR IGNORE INTO groups(gid) VALUES(?1)", &db->group_add },
		{ "DELETE FROM groups WHERE gid=?1", &db->group_del },
		{ "SELECT gid FROM groups ORDER BY gid", &db->group_list },
	};
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		rc = mqim__db_prepare(db, stmts[i].sql, stmts[i].st);
		if (rc != MQIM_OK) {
			snprintf(errbuf, errlen, "%s", sqlite3_errmsg(db->h));
			goto fail;
		}
	}
	if (!ro && !(flags & MQIM_DB_NOSYNC) &&
	    ((rc = mqim__db_prepare(db, "PRAGMA synchronous=NORMAL", &db->sync_normal)) != MQIM_OK ||
	     (rc = mqim__db_prepare(db, "PRAGMA synchronous=FULL", &db->sync_full)) != MQIM_OK)) {
		snprintf(errbuf, errlen, "%s", sqlite3_errmsg(db->h));
		goto fail;
	}
	return MQIM_OK;
fail:
	mqim__db_close(db);
	return rc;
}

void mqim__db_close(struct mqim__db *db)
{
	if (!db->h)
		return;
	mqim__db_rollback(db);
	sqlite3_stmt *all[] = { db->begin, db->commit, db->rollback, db->sp, db->sp_release,
				db->sp_undo, db->meta_get,
				db->meta_put, db->group_add, db->group_del, db->group_list,
				db->sync_normal, db->sync_full };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	sqlite3_close(db->h);
	memset(db, 0, sizeof *db);
}

int mqim__db_meta_get(struct mqim__db *db, const char *key, char *out, size_t outlen)
{
	sqlite3_stmt *st = db->meta_get;
	int rc;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(out, outlen, "%s", v ? v : "");
		rc = MQIM_OK;
	} else {
		rc = s == SQLITE_DONE ? MQIM_ENOTFOUND : mqim__db_err(s);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int mqim__db_meta_put(struct mqim__db *db, const char *key, const char *value)
{
	sqlite3_bind_text(db->meta_put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(db->meta_put, 2, value, -1, SQLITE_STATIC);
	return mqim__db_step_done(db->meta_put);
}

int mqim__db_group_add(struct mqim__db *db, const char *gid)
{
	sqlite3_bind_text(db->group_add, 1, gid, -1, SQLITE_STATIC);
	return mqim__db_step_done(db->group_add);
}

int mqim__db_group_del(struct mqim__db *db, const char *gid)
{
	sqlite3_bind_text(db->group_del, 1, gid, -1, SQLITE_STATIC);
	return mqim__db_step_done(db->group_del);
}

int mqim__db_groups(struct mqim__db *db, int (*cb)(void *ctx, const char *gid), void *ctx)
{
	sqlite3_stmt *st = db->group_list;
	int rc = MQIM_OK, s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		rc = cb(ctx, (const char *)sqlite3_column_text(st, 0));
		if (rc != 0)
			break;
	}
	if (rc == MQIM_OK && s != SQLITE_DONE && s != SQLITE_ROW)
		rc = mqim__db_err(s);
	sqlite3_reset(st);
	return rc;
}
