/* store.c - the SQLite store of users, groups and memberships; see store.h.
 *
 * Owns: the on-disk schema (version MQIM_STORE_VERSION, application id
 * 'mqim'), the checks an existing file must pass before we trust it, and one
 * prepared statement per operation (stmt_sql[]), prepared at open, reset
 * after every use so that no read snapshot outlives a call, and finalized at
 * close.
 *
 * Mapping of SQLite results: a primary-key clash is MQIM_EEXISTS, a missing
 * row or a foreign key to nothing is MQIM_ENOTFOUND, a full disk is
 * MQIM_ENOSPC, a lock held too long by another process is MQIM_EBUSY, and
 * anything else MQIM_EDB with SQLite's sentence in mqim_store_errmsg().
 *
 * Thread rules: a struct mqim_store belongs to one thread at a time (its
 * prepared statements are shared state); two stores, in two threads or two
 * processes, may use one file at once (WAL).  No global mutable state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mqim.h"
#include "store.h"

#define MQIM_STORE_VERSION 2   /* 2: users.created_ms */
#define MQIM_APP_ID        0x6D71696D            /* "mqim" */
#define BUSY_TIMEOUT_MS    5000

/* The naming rule of docs/protocol.md, repeated in the schema so that a
 * hand edit with the sqlite3 shell cannot store a name we would refuse. */
#define NAME_CHECK(col)                                                     \
	"CHECK (length(" col ") BETWEEN 1 AND 64 AND " col " GLOB '[A-Za-z0-9]*'" \
	" AND " col " NOT GLOB '*[^A-Za-z0-9_.-]*')"

static const char schema_sql[] =
	"CREATE TABLE mqim_schema (version INTEGER NOT NULL);"
	"INSERT INTO mqim_schema (version) VALUES (2);"
	"CREATE TABLE users ("
	"  name TEXT PRIMARY KEY NOT NULL " NAME_CHECK("name") ","
	"  hash TEXT NOT NULL,"
	"  admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),"
	"  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"
	"  created_ms INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE groups ("
	"  name TEXT PRIMARY KEY NOT NULL " NAME_CHECK("name") ");"
	"CREATE TABLE members ("
	"  grp TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,"
	"  user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
	"  PRIMARY KEY (grp, user)) WITHOUT ROWID;"
	"CREATE INDEX members_by_user ON members (user, grp);";

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_USER_ADD, ST_USER_DEL, ST_USER_GET, ST_USER_SET_HASH,
	ST_USER_SET_ADMIN, ST_USER_SET_DISABLED, ST_USERS,
	ST_GROUP_ADD, ST_GROUP_DEL, ST_GROUP_EXISTS, ST_GROUPS,
	ST_MEMBER_ADD, ST_MEMBER_DEL, ST_MEMBERS, ST_USER_GROUPS, ST_MEMBERSHIPS,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN]             = "BEGIN IMMEDIATE",
	[ST_COMMIT]            = "COMMIT",
	[ST_ROLLBACK]          = "ROLLBACK",
	[ST_USER_ADD]          = "INSERT INTO users (name, hash, admin, disabled, created_ms) "
				 "VALUES (?1, ?2, ?3, 0, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))",
	[ST_USER_DEL]          = "DELETE FROM users WHERE name = ?1",
	[ST_USER_GET]          = "SELECT name, hash, admin, disabled, created_ms FROM users WHERE name = ?1",
	[ST_USER_SET_HASH]     = "UPDATE users SET hash = ?2 WHERE name = ?1",
	[ST_USER_SET_ADMIN]    = "UPDATE users SET admin = ?2 WHERE name = ?1",
	[ST_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE name = ?1",
	[ST_USERS]             = "SELECT name, hash, admin, disabled, created_ms FROM users ORDER BY name",
	[ST_GROUP_ADD]         = "INSERT INTO groups (name) VALUES (?1)",
	[ST_GROUP_DEL]         = "DELETE FROM groups WHERE name = ?1",
	[ST_GROUP_EXISTS]      = "SELECT 1 FROM groups WHERE name = ?1",
	[ST_GROUPS]            = "SELECT name FROM groups ORDER BY name",
	[ST_MEMBER_ADD]        = "INSERT INTO members (grp, user) VALUES (?1, ?2)",
	[ST_MEMBER_DEL]        = "DELETE FROM members WHERE grp = ?1 AND user = ?2",
	[ST_MEMBERS]           = "SELECT user FROM members WHERE grp = ?1 ORDER BY user",
	[ST_USER_GROUPS]       = "SELECT grp FROM members WHERE user = ?1 ORDER BY grp",
	[ST_MEMBERSHIPS]       = "SELECT grp, user FROM members ORDER BY grp, user",
};

struct mqim_store {
	sqlite3 *db;
	sqlite3_stmt *stmt[ST__COUNT];
	char errmsg[256];
};

/* ---- helpers ------------------------------------------------------------- */

static void errf(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void errf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

/* Translate an SQLite result (extended codes are on) and keep its text. */
static int map_rc(struct mqim_store *st, int src)
{
	snprintf(st->errmsg, sizeof(st->errmsg), "%s", sqlite3_errmsg(st->db));
	switch (src) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return MQIM_OK;
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE:
		return MQIM_EEXISTS;
	case SQLITE_CONSTRAINT_FOREIGNKEY:
		return MQIM_ENOTFOUND;
	case SQLITE_CONSTRAINT_CHECK:
		return MQIM_EBADNAME;
	case SQLITE_FULL:
		return MQIM_ENOSPC;
	}
	switch (src & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return MQIM_EBUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return MQIM_ECORRUPT;
	case SQLITE_CANTOPEN:
		return MQIM_EIO;
	}
	return MQIM_EDB;
}

static sqlite3_stmt *stmt_get(struct mqim_store *st, enum stmt_id id)
{
	sqlite3_reset(st->stmt[id]);
	sqlite3_clear_bindings(st->stmt[id]);
	return st->stmt[id];
}

static bool bind_text(sqlite3_stmt *s, int idx, const char *v)
{
	return sqlite3_bind_text(s, idx, v, -1, SQLITE_TRANSIENT) == SQLITE_OK;
}

/* Run a statement that returns no rows; reset it; map the result.  When
 * must_change is set, touching no row is MQIM_ENOTFOUND. */
static int run(struct mqim_store *st, sqlite3_stmt *s, bool must_change)
{
	int src = sqlite3_step(s);
	int rc = map_rc(st, src);

	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == MQIM_OK && must_change && sqlite3_changes(st->db) == 0)
		rc = MQIM_ENOTFOUND;
	return rc;
}

/* Copy text column col into dst (cap bytes with the NUL).  False when the
 * value does not fit; dst is then the empty string. */
static bool col_text(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
	const unsigned char *v = sqlite3_column_text(s, col);
	size_t n = v ? (size_t)sqlite3_column_bytes(s, col) : 0;

	if (n >= cap) {
		dst[0] = '\0';
		return false;
	}
	memcpy(dst, v ? (const char *)v : "", n);
	dst[n] = '\0';
	return true;
}

static void user_from_row(sqlite3_stmt *s, struct mqim_user_rec *u)
{
	col_text(s, 0, u->name, sizeof(u->name));
	/* An over-long hash (a hand edit) becomes "", which no login matches. */
	col_text(s, 1, u->hash, sizeof(u->hash));
	u->admin = sqlite3_column_int(s, 2) != 0;
	u->disabled = sqlite3_column_int(s, 3) != 0;
	u->created_ms = (uint64_t)sqlite3_column_int64(s, 4);
}

static bool hash_ok(const char *hash)
{
	return hash && hash[0] && strnlen(hash, MQIM_HASH_MAX) < MQIM_HASH_MAX;
}

/* ---- opening ------------------------------------------------------------- */

/* Make sure path exists before SQLite sees it: created here, mode 0600,
 * under MQIM_STORE_CREATE; otherwise a missing file is an error. */
static int ensure_file(const char *path, unsigned flags, char *errbuf, size_t errlen)
{
	struct stat sb;
	int fd;

	if ((flags & MQIM_STORE_CREATE) && !(flags & MQIM_STORE_READONLY)) {
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0) {
			errf(errbuf, errlen, "cannot create store %s: %s", path, strerror(errno));
			return MQIM_EIO;
		}
		close(fd);
	}
	if (stat(path, &sb) != 0) {
		if (errno == ENOENT)
			errf(errbuf, errlen, "no such store %s: create it with "
			     "`mqimctl --db %s init ADMIN`", path, path);
		else
			errf(errbuf, errlen, "cannot open store %s: %s", path, strerror(errno));
		return MQIM_EIO;
	}
	if (!S_ISREG(sb.st_mode)) {
		errf(errbuf, errlen, "store %s is not a regular file", path);
		return MQIM_EIO;
	}
	if (access(path, (flags & MQIM_STORE_READONLY) ? R_OK : R_OK | W_OK) != 0) {
		errf(errbuf, errlen, "cannot open store %s: %s (check its owner and mode: "
		     "a broker started as root runs as user mosquitto)", path, strerror(errno));
		return MQIM_EIO;
	}
	return MQIM_OK;
}

/* Run a one-row query; *out gets column 0 as an integer.  No row is 0. */
static int query_int(struct mqim_store *st, const char *sql, long long *out)
{
	sqlite3_stmt *s = NULL;
	int src = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);

	*out = 0;
	if (src == SQLITE_OK) {
		src = sqlite3_step(s);
		if (src == SQLITE_ROW)
			*out = sqlite3_column_int64(s, 0);
	}
	int rc = map_rc(st, src);
	sqlite3_finalize(s);
	return rc;
}

/* PRAGMA quick_check: the file must be SQLite and its b-trees sound. */
static int check_integrity(struct mqim_store *st, const char *path, char *errbuf, size_t errlen)
{
	sqlite3_stmt *s = NULL;
	char first[160] = "";
	int src = sqlite3_prepare_v2(st->db, "PRAGMA quick_check(1)", -1, &s, NULL);
	int rc;

	if (src == SQLITE_OK) {
		src = sqlite3_step(s);
		if (src == SQLITE_ROW)
			col_text(s, 0, first, sizeof(first));
	}
	rc = map_rc(st, src);
	sqlite3_finalize(s);
	if ((src & 0xff) == SQLITE_READONLY)
		rc = MQIM_EIO;             /* could not create FILE-shm beside it */
	if (rc == MQIM_ECORRUPT && (src & 0xff) == SQLITE_NOTADB)
		errf(errbuf, errlen, "%s is not an SQLite database, so not an mqim store", path);
	else if (rc == MQIM_ECORRUPT)
		errf(errbuf, errlen, "store %s is damaged (%s): restore it from a backup",
		     path, st->errmsg);
	else if (rc == MQIM_EBUSY)
		errf(errbuf, errlen, "store %s is locked by another process: try again", path);
	else if (rc == MQIM_EIO)
		errf(errbuf, errlen, "cannot open store %s: %s (its folder must be writable "
		     "too, for the -wal and -shm files)", path, st->errmsg);
	else if (rc != MQIM_OK)
		errf(errbuf, errlen, "cannot read store %s: %s", path, st->errmsg);
	else if (strcmp(first, "ok") != 0) {
		errf(errbuf, errlen, "store %s failed its integrity check (%s): restore it "
		     "from a backup", path, first);
		rc = MQIM_ECORRUPT;
	}
	return rc;
}

/* Write the schema into an empty database, inside one transaction. */
static int create_schema(struct mqim_store *st, const char *path, char *errbuf, size_t errlen)
{
	long long ntables = 0;
	int rc = map_rc(st, sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL));

	if (rc != MQIM_OK)
		goto fail;
	/* Another process may have created it between our look and our lock. */
	rc = query_int(st, "SELECT count(*) FROM sqlite_master", &ntables);
	if (rc == MQIM_OK && ntables == 0) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA application_id = %d", MQIM_APP_ID);
		rc = map_rc(st, sqlite3_exec(st->db, pragma, NULL, NULL, NULL));
	}
	if (rc == MQIM_OK && ntables == 0)
		rc = map_rc(st, sqlite3_exec(st->db, schema_sql, NULL, NULL, NULL));
	if (rc == MQIM_OK)
		rc = map_rc(st, sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL));
	if (rc == MQIM_OK)
		return MQIM_OK;
	sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
fail:
	errf(errbuf, errlen, "cannot create the schema of store %s: %s", path, st->errmsg);
	return rc;
}

/* The file must carry our application id and a schema version we know. */
static int check_schema(struct mqim_store *st, const char *path, unsigned flags,
			char *errbuf, size_t errlen)
{
	long long ntables = 0, app_id = 0, version = 0;
	int rc = query_int(st, "SELECT count(*) FROM sqlite_master", &ntables);

	if (rc == MQIM_OK && ntables == 0) {
		if ((flags & MQIM_STORE_CREATE) && !(flags & MQIM_STORE_READONLY))
			return create_schema(st, path, errbuf, errlen);
		errf(errbuf, errlen, "%s is an empty database, not an mqim store: create "
		     "one with `mqimctl --db FILE init ADMIN`", path);
		return MQIM_ECORRUPT;
	}
	if (rc == MQIM_OK)
		rc = query_int(st, "PRAGMA application_id", &app_id);
	if (rc == MQIM_OK && app_id == MQIM_APP_ID)
		rc = query_int(st, "SELECT max(version) FROM mqim_schema", &version);
	if (rc != MQIM_OK || app_id != MQIM_APP_ID || version < 1) {
		errf(errbuf, errlen, "%s is an SQLite database but not an mqim store "
		     "(no mqim schema in it): check the path", path);
		return MQIM_ECORRUPT;
	}
	if (version > MQIM_STORE_VERSION) {
		errf(errbuf, errlen, "store %s has schema version %lld, newer than this "
		     "build understands (%d): upgrade mqim", path, version, MQIM_STORE_VERSION);
		return MQIM_EUNSUPPORTED;
	}
	if (version == 1) { /* 1 -> 2: users.created_ms, 0 for users made before */
		if (flags & MQIM_STORE_READONLY) {
			errf(errbuf, errlen, "store %s has schema version 1: open it once for "
			     "writing (the broker or mqimctl) to upgrade it", path);
			return MQIM_EUNSUPPORTED;
		}
		rc = map_rc(st, sqlite3_exec(st->db, "BEGIN IMMEDIATE;"
			    "ALTER TABLE users ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;"
			    "UPDATE mqim_schema SET version = 2; COMMIT;", NULL, NULL, NULL));
		if (rc != MQIM_OK) {
			sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			errf(errbuf, errlen, "cannot upgrade store %s to schema version 2: %s", path,
			     st->errmsg);
			return rc;
		}
	}
	return MQIM_OK;
}

static int configure(struct mqim_store *st, const char *path, unsigned flags,
		     char *errbuf, size_t errlen)
{
	int rc = map_rc(st, sqlite3_exec(st->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL));

	if (rc == MQIM_OK && !(flags & MQIM_STORE_READONLY))
		rc = map_rc(st, sqlite3_exec(st->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL));
	for (int i = 0; rc == MQIM_OK && i < ST__COUNT; i++)
		rc = map_rc(st, sqlite3_prepare_v3(st->db, stmt_sql[i], -1,
						   SQLITE_PREPARE_PERSISTENT, &st->stmt[i], NULL));
	if (rc != MQIM_OK) {
		errf(errbuf, errlen, "cannot use store %s: %s", path, st->errmsg);
		if (rc == MQIM_EDB)
			rc = MQIM_ECORRUPT;   /* our tables are not what we expect */
	}
	return rc;
}

static int open_db(struct mqim_store *st, const char *path, unsigned flags,
		   char *errbuf, size_t errlen)
{
	bool ro = flags & MQIM_STORE_READONLY;
	int src = sqlite3_open_v2(path, &st->db,
				  ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, NULL);

	if (src != SQLITE_OK) {
		errf(errbuf, errlen, "cannot open store %s: %s", path,
		     st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(src));
		return MQIM_EIO;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	/* SQLite quietly falls back to read-only on a write-protected file. */
	if (!ro && sqlite3_db_readonly(st->db, "main") == 1) {
		errf(errbuf, errlen, "store %s is not writable by this user: check its "
		     "owner and mode", path);
		return MQIM_EIO;
	}
	return MQIM_OK;
}

int mqim_store_open(const char *path, unsigned flags, struct mqim_store **out,
		    char *errbuf, size_t errlen)
{
	struct mqim_store *st = NULL;
	int rc;

	errf(errbuf, errlen, "%s", "");
	if (!out)
		return MQIM_EINVAL;
	*out = NULL;
	if (!path || !path[0]) {
		errf(errbuf, errlen, "no store path given");
		return MQIM_EINVAL;
	}
	rc = ensure_file(path, flags, errbuf, errlen);
	if (rc != MQIM_OK)
		goto fail;
	rc = MQIM_ENOMEM;
	st = calloc(1, sizeof(*st));
	if (!st)
		goto fail;
	rc = open_db(st, path, flags, errbuf, errlen);
	if (rc == MQIM_OK)
		rc = check_integrity(st, path, errbuf, errlen);
	if (rc == MQIM_OK)
		rc = check_schema(st, path, flags, errbuf, errlen);
	if (rc == MQIM_OK)
		rc = configure(st, path, flags, errbuf, errlen);
	if (rc != MQIM_OK)
		goto fail;
	*out = st;
	return MQIM_OK;
fail:
	if (rc == MQIM_ENOMEM)
		errf(errbuf, errlen, "out of memory opening store %s", path);
	mqim_store_close(st);
	return rc;
}

void mqim_store_close(struct mqim_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st);
}

const char *mqim_store_errmsg(struct mqim_store *st)
{
	return st ? st->errmsg : "no store";
}

/* ---- transactions -------------------------------------------------------- */

int mqim_store_begin(struct mqim_store *st)
{
	if (!sqlite3_get_autocommit(st->db)) {
		snprintf(st->errmsg, sizeof(st->errmsg), "a transaction is already open");
		return MQIM_ESTATE;
	}
	return run(st, stmt_get(st, ST_BEGIN), false);
}

int mqim_store_commit(struct mqim_store *st)
{
	if (sqlite3_get_autocommit(st->db)) {
		snprintf(st->errmsg, sizeof(st->errmsg), "no transaction is open");
		return MQIM_ESTATE;
	}
	return run(st, stmt_get(st, ST_COMMIT), false);
}

void mqim_store_rollback(struct mqim_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		run(st, stmt_get(st, ST_ROLLBACK), false);
}

/* ---- users --------------------------------------------------------------- */

/* Bind a validated name as ?1 of statement id; NULL on a bad name. */
static sqlite3_stmt *with_name(struct mqim_store *st, enum stmt_id id, const char *name)
{
	sqlite3_stmt *s;

	if (!mqim_name_valid(name))
		return NULL;
	s = stmt_get(st, id);
	return bind_text(s, 1, name) ? s : NULL;
}

int mqim_store_user_add(struct mqim_store *st, const char *name, const char *hash, bool admin)
{
	sqlite3_stmt *s = with_name(st, ST_USER_ADD, name);

	if (!s)
		return MQIM_EBADNAME;
	if (!hash_ok(hash))
		return MQIM_EINVAL;
	if (!bind_text(s, 2, hash) || sqlite3_bind_int(s, 3, admin) != SQLITE_OK)
		return map_rc(st, SQLITE_NOMEM);
	return run(st, s, false);
}

int mqim_store_user_del(struct mqim_store *st, const char *name)
{
	sqlite3_stmt *s = with_name(st, ST_USER_DEL, name);

	return s ? run(st, s, true) : MQIM_EBADNAME;
}

int mqim_store_user_get(struct mqim_store *st, const char *name, struct mqim_user_rec *out)
{
	sqlite3_stmt *s = with_name(st, ST_USER_GET, name);
	int src, rc;

	if (!s)
		return MQIM_EBADNAME;
	src = sqlite3_step(s);
	if (src == SQLITE_ROW) {
		user_from_row(s, out);
		rc = MQIM_OK;
	} else {
		rc = src == SQLITE_DONE ? MQIM_ENOTFOUND : map_rc(st, src);
	}
	sqlite3_reset(s);
	return rc;
}

int mqim_store_user_set_hash(struct mqim_store *st, const char *name, const char *hash)
{
	sqlite3_stmt *s = with_name(st, ST_USER_SET_HASH, name);

	if (!s)
		return MQIM_EBADNAME;
	if (!hash_ok(hash))
		return MQIM_EINVAL;
	if (!bind_text(s, 2, hash))
		return map_rc(st, SQLITE_NOMEM);
	return run(st, s, true);
}

static int set_flag(struct mqim_store *st, enum stmt_id id, const char *name, bool v)
{
	sqlite3_stmt *s = with_name(st, id, name);

	if (!s)
		return MQIM_EBADNAME;
	if (sqlite3_bind_int(s, 2, v) != SQLITE_OK)
		return map_rc(st, SQLITE_NOMEM);
	return run(st, s, true);
}

int mqim_store_user_set_admin(struct mqim_store *st, const char *name, bool admin)
{
	return set_flag(st, ST_USER_SET_ADMIN, name, admin);
}

int mqim_store_user_set_disabled(struct mqim_store *st, const char *name, bool disabled)
{
	return set_flag(st, ST_USER_SET_DISABLED, name, disabled);
}

int mqim_store_users(struct mqim_store *st,
		     int (*cb)(void *ctx, const struct mqim_user_rec *u), void *ctx)
{
	sqlite3_stmt *s = stmt_get(st, ST_USERS);
	struct mqim_user_rec u;
	int src = SQLITE_DONE, rc = MQIM_OK;

	while (rc == MQIM_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
		user_from_row(s, &u);
		rc = cb(ctx, &u);
	}
	if (rc == MQIM_OK && src != SQLITE_DONE)
		rc = map_rc(st, src);
	sqlite3_reset(s);
	return rc;
}

/* ---- groups and members -------------------------------------------------- */

int mqim_store_group_add(struct mqim_store *st, const char *gid)
{
	sqlite3_stmt *s = with_name(st, ST_GROUP_ADD, gid);

	return s ? run(st, s, false) : MQIM_EBADNAME;
}

int mqim_store_group_del(struct mqim_store *st, const char *gid)
{
	sqlite3_stmt *s = with_name(st, ST_GROUP_DEL, gid);

	return s ? run(st, s, true) : MQIM_EBADNAME;
}

int mqim_store_group_exists(struct mqim_store *st, const char *gid)
{
	sqlite3_stmt *s = with_name(st, ST_GROUP_EXISTS, gid);
	int src;

	if (!s)
		return MQIM_EBADNAME;
	src = sqlite3_step(s);
	sqlite3_reset(s);
	if (src == SQLITE_ROW)
		return MQIM_OK;
	return src == SQLITE_DONE ? MQIM_ENOTFOUND : map_rc(st, src);
}

/* Walk the one-text-column rows of s, calling cb(ctx, text). */
static int walk_names(struct mqim_store *st, sqlite3_stmt *s,
		      int (*cb)(void *ctx, const char *name), void *ctx, int *rows)
{
	char name[MQIM_NAME_MAX + 1];
	int src = SQLITE_DONE, rc = MQIM_OK;

	*rows = 0;
	while (rc == MQIM_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
		(*rows)++;
		if (col_text(s, 0, name, sizeof(name)))
			rc = cb(ctx, name);
	}
	if (rc == MQIM_OK && src != SQLITE_DONE)
		rc = map_rc(st, src);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

int mqim_store_groups(struct mqim_store *st, int (*cb)(void *ctx, const char *gid), void *ctx)
{
	int rows;

	return walk_names(st, stmt_get(st, ST_GROUPS), cb, ctx, &rows);
}

int mqim_store_member_add(struct mqim_store *st, const char *gid, const char *user)
{
	sqlite3_stmt *s = with_name(st, ST_MEMBER_ADD, gid);

	if (!s || !mqim_name_valid(user))
		return MQIM_EBADNAME;
	if (!bind_text(s, 2, user))
		return map_rc(st, SQLITE_NOMEM);
	return run(st, s, false);
}

int mqim_store_member_del(struct mqim_store *st, const char *gid, const char *user)
{
	sqlite3_stmt *s = with_name(st, ST_MEMBER_DEL, gid);

	if (!s || !mqim_name_valid(user))
		return MQIM_EBADNAME;
	if (!bind_text(s, 2, user))
		return map_rc(st, SQLITE_NOMEM);
	return run(st, s, true);
}

int mqim_store_members(struct mqim_store *st, const char *gid,
		       int (*cb)(void *ctx, const char *user), void *ctx)
{
	sqlite3_stmt *s = with_name(st, ST_MEMBERS, gid);
	int rows, rc;

	if (!s)
		return MQIM_EBADNAME;
	rc = walk_names(st, s, cb, ctx, &rows);
	if (rc == MQIM_OK && rows == 0)
		rc = mqim_store_group_exists(st, gid);
	return rc;
}

int mqim_store_user_groups(struct mqim_store *st, const char *user,
			   int (*cb)(void *ctx, const char *gid), void *ctx)
{
	sqlite3_stmt *s = with_name(st, ST_USER_GROUPS, user);
	struct mqim_user_rec u;
	int rows, rc;

	if (!s)
		return MQIM_EBADNAME;
	rc = walk_names(st, s, cb, ctx, &rows);
	if (rc == MQIM_OK && rows == 0)
		rc = mqim_store_user_get(st, user, &u);
	return rc;
}

int mqim_store_memberships(struct mqim_store *st,
			   int (*cb)(void *ctx, const char *gid, const char *user), void *ctx)
{
	sqlite3_stmt *s = stmt_get(st, ST_MEMBERSHIPS);
	char gid[MQIM_NAME_MAX + 1], user[MQIM_NAME_MAX + 1];
	int src = SQLITE_DONE, rc = MQIM_OK;

	while (rc == MQIM_OK && (src = sqlite3_step(s)) == SQLITE_ROW) {
		if (col_text(s, 0, gid, sizeof(gid)) && col_text(s, 1, user, sizeof(user)))
			rc = cb(ctx, gid, user);
	}
	if (rc == MQIM_OK && src != SQLITE_DONE)
		rc = map_rc(st, src);
	sqlite3_reset(s);
	return rc;
}
