/* test_store.c - unit tests for common/store.c, the SQLite store.
 *
 * Every test gets a fresh temporary folder (setup/teardown) holding
 * store.db; the folder and everything in it are removed afterwards.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "mqim.h"
#include "store.h"

#define H1 "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4"
#define H2 "$7$101$AQIDBAUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr89dDHWD70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw=="

struct fix {
	char dir[64];
	char path[128];
	char err[512];
	struct mqim_store *st;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mqim-test-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;
	char p[512];

	mqim_store_close(f->st);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct mqim_store *open_new(struct fix *f)
{
	int rc = mqim_store_open(f->path, MQIM_STORE_CREATE, &f->st, f->err, sizeof(f->err));

	if (rc != MQIM_OK)
		fail_msg("open: %s", f->err);
	return f->st;
}

static void reopen(struct fix *f, unsigned flags)
{
	mqim_store_close(f->st);
	f->st = NULL;
	if (mqim_store_open(f->path, flags, &f->st, f->err, sizeof(f->err)) != MQIM_OK)
		fail_msg("reopen: %s", f->err);
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	fclose(fp);
}

/* Collects names given to a walk callback as "a,b,c". */
struct names {
	char buf[512];
	int stop_at;    /* stop with 42 after this many, 0: never */
	int n;
};

static int collect(void *ctx, const char *name)
{
	struct names *ns = ctx;

	if (ns->buf[0])
		strcat(ns->buf, ",");
	strcat(ns->buf, name);
	ns->n++;
	return ns->stop_at && ns->n >= ns->stop_at ? 42 : 0;
}

static int collect_user(void *ctx, const struct mqim_user_rec *u)
{
	char tmp[128];

	snprintf(tmp, sizeof(tmp), "%s%s%s", u->name, u->admin ? "+a" : "", u->disabled ? "+d" : "");
	return collect(ctx, tmp);
}

static int collect_pair(void *ctx, const char *gid, const char *user)
{
	char tmp[160];

	snprintf(tmp, sizeof(tmp), "%s:%s", gid, user);
	return collect(ctx, tmp);
}

/* ---- opening ------------------------------------------------------------- */

static void create_mode_0600(void **state)
{
	struct fix *f = *state;
	struct stat sb;
	mode_t old = umask(0);

	open_new(f);
	umask(old);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* The WAL and shared-memory files SQLite creates follow the main file. */
	assert_int_equal(mqim_store_user_add(f->st, "alice", H1, false), MQIM_OK);
	char wal[160];
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	if (stat(wal, &sb) == 0)
		assert_int_equal(sb.st_mode & 0777, 0600);
}

static void missing_without_create(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = (void *)1;

	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_EIO);
	assert_null(st);
	assert_non_null(strstr(f->err, "no such store"));
	assert_non_null(strstr(f->err, f->path));
	assert_int_equal(access(f->path, F_OK), -1);   /* nothing was created */
}

static void bad_arguments(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st;

	assert_int_equal(mqim_store_open(NULL, 0, &st, f->err, sizeof(f->err)), MQIM_EINVAL);
	assert_int_equal(mqim_store_open("", 0, &st, f->err, sizeof(f->err)), MQIM_EINVAL);
	assert_int_equal(mqim_store_open(f->path, 0, NULL, NULL, 0), MQIM_EINVAL);
	assert_int_equal(mqim_store_open(f->dir, 0, &st, f->err, sizeof(f->err)), MQIM_EIO);
	assert_non_null(strstr(f->err, "not a regular file"));
	mqim_store_close(NULL);
}

static void reopen_persists(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;
	struct names ns = { 0 };

	open_new(f);
	assert_int_equal(mqim_store_user_add(f->st, "alice", H1, true), MQIM_OK);
	assert_int_equal(mqim_store_user_add(f->st, "bob", H2, false), MQIM_OK);
	assert_int_equal(mqim_store_user_set_disabled(f->st, "bob", true), MQIM_OK);
	assert_int_equal(mqim_store_group_add(f->st, "team"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(f->st, "team", "bob"), MQIM_OK);
	reopen(f, 0);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_string_equal(u.hash, H1);
	assert_true(u.admin);
	assert_false(u.disabled);
	assert_int_equal(mqim_store_user_get(f->st, "bob", &u), MQIM_OK);
	assert_string_equal(u.hash, H2);
	assert_true(u.disabled);
	assert_int_equal(mqim_store_memberships(f->st, collect_pair, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "team:bob");
	/* CREATE on an existing store opens it and keeps its content. */
	reopen(f, MQIM_STORE_CREATE);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
}

static void readonly_open(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;

	open_new(f);
	assert_int_equal(mqim_store_user_add(f->st, "alice", H1, false), MQIM_OK);
	reopen(f, MQIM_STORE_READONLY);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_int_equal(mqim_store_user_add(f->st, "bob", H1, false), MQIM_EDB);
	assert_true(strlen(mqim_store_errmsg(f->st)) > 0);
}

static void garbage_file(void **state)
{
	struct fix *f = *state;
	char junk[8192];
	struct mqim_store *st;

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 7 + 3);
	write_file(f->path, junk, sizeof(junk));
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_ECORRUPT);
	assert_non_null(strstr(f->err, f->path));
	assert_non_null(strstr(f->err, "not an SQLite database"));
	/* CREATE must not paper over it either. */
	assert_int_equal(mqim_store_open(f->path, MQIM_STORE_CREATE, &st, f->err,
					 sizeof(f->err)), MQIM_ECORRUPT);
}

static void text_file(void **state)
{
	struct fix *f = *state;
	const char txt[] = "alice:$7$101$AQIDBAUGBwgJCgsM$xyz\n";
	struct mqim_store *st;

	write_file(f->path, txt, sizeof(txt) - 1);
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_ECORRUPT);
	assert_non_null(strstr(f->err, f->path));
}

static void truncated_file(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st;
	struct stat sb;
	char name[32];

	open_new(f);
	assert_int_equal(mqim_store_begin(f->st), MQIM_OK);
	for (int i = 0; i < 400; i++) {
		snprintf(name, sizeof(name), "user%03d", i);
		assert_int_equal(mqim_store_user_add(f->st, name, H2, false), MQIM_OK);
	}
	assert_int_equal(mqim_store_commit(f->st), MQIM_OK);
	mqim_store_close(f->st);
	f->st = NULL;
	assert_int_equal(stat(f->path, &sb), 0);
	assert_true(sb.st_size > 4 * 4096);
	assert_int_equal(truncate(f->path, sb.st_size / 2), 0);
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_ECORRUPT);
	assert_non_null(strstr(f->err, f->path));
	/* Cut inside the 100-byte header: not recognisable as SQLite at all. */
	assert_int_equal(truncate(f->path, 50), 0);
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_ECORRUPT);
}

static void foreign_sqlite_file(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE users (name TEXT, hash TEXT);"
				      "INSERT INTO users VALUES ('a', 'b');", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_ECORRUPT);
	assert_non_null(strstr(f->err, "not an mqim store"));
	assert_non_null(strstr(f->err, f->path));
	assert_int_equal(mqim_store_open(f->path, MQIM_STORE_CREATE, &st, f->err,
					 sizeof(f->err)), MQIM_ECORRUPT);
}

static void empty_file(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st;

	write_file(f->path, "", 0);
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_ECORRUPT);
	assert_non_null(strstr(f->err, "not an mqim store"));
	/* An empty file is a fine place to create a store. */
	open_new(f);
	assert_int_equal(mqim_store_user_add(f->st, "alice", H1, false), MQIM_OK);
}

static void newer_schema(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st;
	sqlite3 *db;

	open_new(f);
	mqim_store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE mqim_schema SET version = 99", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(mqim_store_open(f->path, 0, &st, f->err, sizeof(f->err)), MQIM_EUNSUPPORTED);
	assert_non_null(strstr(f->err, "newer"));
}

/* A version-1 store (no users.created_ms) is upgraded by a writable open;
 * its users get 0 (age unknown), new users the time they were added. */
static void upgrades_version_1(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;
	struct mqim_store *st;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
		"PRAGMA application_id = 1836149101;"
		"CREATE TABLE mqim_schema (version INTEGER NOT NULL);"
		"INSERT INTO mqim_schema (version) VALUES (1);"
		"CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, hash TEXT NOT NULL,"
		" admin INTEGER NOT NULL DEFAULT 0, disabled INTEGER NOT NULL DEFAULT 0);"
		"CREATE TABLE groups (name TEXT PRIMARY KEY NOT NULL);"
		"CREATE TABLE members (grp TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE,"
		" user TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,"
		" PRIMARY KEY (grp, user)) WITHOUT ROWID;"
		"INSERT INTO users VALUES ('old', '$argon2id$x', 1, 0);", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* read-only cannot upgrade: a clear refusal */
	assert_int_equal(mqim_store_open(f->path, MQIM_STORE_READONLY, &st, f->err, sizeof(f->err)),
			 MQIM_EUNSUPPORTED);
	assert_non_null(strstr(f->err, "version 1"));
	reopen(f, 0);
	assert_int_equal(mqim_store_user_get(f->st, "old", &u), MQIM_OK);
	assert_true(u.admin);
	assert_true(u.created_ms == 0);
	time_t before = time(NULL);
	assert_int_equal(mqim_store_user_add(f->st, "newbie", "$argon2id$y", false), MQIM_OK);
	assert_int_equal(mqim_store_user_get(f->st, "newbie", &u), MQIM_OK);
	assert_true(u.created_ms / 1000 + 2 >= (uint64_t)before && u.created_ms / 1000 <= (uint64_t)time(NULL) + 2);
	reopen(f, MQIM_STORE_READONLY); /* version 2 now */
}

static void schema_refuses_bad_names(void **state)
{
	struct fix *f = *state;
	sqlite3 *db;

	open_new(f);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	/* A hand edit cannot store a name the contract refuses. */
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO users VALUES ('a/b', 'x', 0, 0)",
					  NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(db, "INSERT INTO groups VALUES ('_g')",
					  NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO groups VALUES ('g_1.x-y')",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* ---- users --------------------------------------------------------------- */

static void users_crud(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct mqim_user_rec u;

	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "alice", H2, true), MQIM_EEXISTS);
	assert_int_equal(mqim_store_user_add(st, "Alice", H2, true), MQIM_OK); /* case matters */
	assert_int_equal(mqim_store_user_get(st, "alice", &u), MQIM_OK);
	assert_string_equal(u.name, "alice");
	assert_string_equal(u.hash, H1);
	assert_false(u.admin);
	assert_false(u.disabled);
	assert_int_equal(mqim_store_user_set_hash(st, "alice", H2), MQIM_OK);
	assert_int_equal(mqim_store_user_set_admin(st, "alice", true), MQIM_OK);
	assert_int_equal(mqim_store_user_set_admin(st, "alice", true), MQIM_OK);
	assert_int_equal(mqim_store_user_set_disabled(st, "alice", true), MQIM_OK);
	assert_int_equal(mqim_store_user_get(st, "alice", &u), MQIM_OK);
	assert_string_equal(u.hash, H2);
	assert_true(u.admin);
	assert_true(u.disabled);
	assert_int_equal(mqim_store_user_set_disabled(st, "alice", false), MQIM_OK);
	assert_int_equal(mqim_store_user_set_admin(st, "alice", false), MQIM_OK);
	assert_int_equal(mqim_store_user_get(st, "alice", &u), MQIM_OK);
	assert_false(u.admin);
	assert_false(u.disabled);
	assert_int_equal(mqim_store_user_del(st, "alice"), MQIM_OK);
	assert_int_equal(mqim_store_user_get(st, "alice", &u), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_user_del(st, "alice"), MQIM_ENOTFOUND);
}

static void users_not_found(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct mqim_user_rec u;

	assert_int_equal(mqim_store_user_get(st, "ghost", &u), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_user_set_hash(st, "ghost", H1), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_user_set_admin(st, "ghost", true), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_user_set_disabled(st, "ghost", true), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_user_del(st, "ghost"), MQIM_ENOTFOUND);
}

static void users_bad_input(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct mqim_user_rec u;
	static const char *const bad[] = {
		"", "a/b", "a b", "+", "#", "$x", "_lead", ".lead", "-lead", "é",
		"x12345678901234567890123456789012345678901234567890123456789012345", NULL,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mqim_store_user_add(st, bad[i], H1, false), MQIM_EBADNAME);
		assert_int_equal(mqim_store_user_get(st, bad[i], &u), MQIM_EBADNAME);
		assert_int_equal(mqim_store_user_del(st, bad[i]), MQIM_EBADNAME);
		assert_int_equal(mqim_store_user_set_hash(st, bad[i], H1), MQIM_EBADNAME);
		assert_int_equal(mqim_store_user_set_admin(st, bad[i], true), MQIM_EBADNAME);
		assert_int_equal(mqim_store_user_set_disabled(st, bad[i], true), MQIM_EBADNAME);
		assert_int_equal(mqim_store_group_add(st, bad[i]), MQIM_EBADNAME);
	}
	/* 64 characters is the limit, and allowed. */
	assert_int_equal(mqim_store_user_add(st, "x123456789012345678901234567890123456789012345678901234567890123",
					     H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "bob", "", false), MQIM_EINVAL);
	assert_int_equal(mqim_store_user_add(st, "bob", NULL, false), MQIM_EINVAL);
	assert_int_equal(mqim_store_user_add(st, "bob", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_set_hash(st, "bob", ""), MQIM_EINVAL);
}

static void users_walk(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct names ns = { 0 };

	assert_int_equal(mqim_store_users(st, collect_user, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "");
	assert_int_equal(mqim_store_user_add(st, "carol", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "alice", H1, true), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "bob", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_set_disabled(st, "bob", true), MQIM_OK);
	assert_int_equal(mqim_store_users(st, collect_user, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "alice+a,bob+d,carol");
	/* A callback's non-zero return stops the walk and is returned. */
	memset(&ns, 0, sizeof(ns));
	ns.stop_at = 2;
	assert_int_equal(mqim_store_users(st, collect_user, &ns), 42);
	assert_string_equal(ns.buf, "alice+a,bob+d");
	/* ... and the statement is reusable afterwards. */
	memset(&ns, 0, sizeof(ns));
	assert_int_equal(mqim_store_users(st, collect_user, &ns), MQIM_OK);
	assert_int_equal(ns.n, 3);
}

/* ---- groups and members -------------------------------------------------- */

static void groups_crud(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct names ns = { 0 };

	assert_int_equal(mqim_store_group_exists(st, "team"), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_group_add(st, "team"), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "team"), MQIM_EEXISTS);
	assert_int_equal(mqim_store_group_add(st, "ops"), MQIM_OK);
	assert_int_equal(mqim_store_group_exists(st, "team"), MQIM_OK);
	assert_int_equal(mqim_store_group_exists(st, "a/b"), MQIM_EBADNAME);
	assert_int_equal(mqim_store_groups(st, collect, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "ops,team");
	assert_int_equal(mqim_store_group_del(st, "team"), MQIM_OK);
	assert_int_equal(mqim_store_group_del(st, "team"), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_group_del(st, "a b"), MQIM_EBADNAME);
	assert_int_equal(mqim_store_group_exists(st, "team"), MQIM_ENOTFOUND);
	/* A user and a group may share a name: separate namespaces. */
	assert_int_equal(mqim_store_user_add(st, "ops", H1, false), MQIM_OK);
}

static void members(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct names ns = { 0 };

	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "bob", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "team"), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "ops"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "team", "bob"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "team", "alice"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "ops", "bob"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "team", "bob"), MQIM_EEXISTS);
	assert_int_equal(mqim_store_member_add(st, "nogroup", "bob"), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_member_add(st, "team", "nouser"), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_member_add(st, "team", "a/b"), MQIM_EBADNAME);
	assert_int_equal(mqim_store_member_add(st, "#", "bob"), MQIM_EBADNAME);

	assert_int_equal(mqim_store_members(st, "team", collect, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "alice,bob");
	memset(&ns, 0, sizeof(ns));
	assert_int_equal(mqim_store_user_groups(st, "bob", collect, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "ops,team");
	memset(&ns, 0, sizeof(ns));
	assert_int_equal(mqim_store_memberships(st, collect_pair, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "ops:bob,team:alice,team:bob");

	assert_int_equal(mqim_store_member_del(st, "team", "alice"), MQIM_OK);
	assert_int_equal(mqim_store_member_del(st, "team", "alice"), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_member_del(st, "team", "_x"), MQIM_EBADNAME);
	memset(&ns, 0, sizeof(ns));
	assert_int_equal(mqim_store_user_groups(st, "alice", collect, &ns), MQIM_OK);
	assert_int_equal(ns.n, 0);
}

static void members_of_missing(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct names ns = { 0 };

	assert_int_equal(mqim_store_group_add(st, "empty"), MQIM_OK);
	assert_int_equal(mqim_store_members(st, "empty", collect, &ns), MQIM_OK);
	assert_int_equal(mqim_store_members(st, "ghost", collect, &ns), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_members(st, "a b", collect, &ns), MQIM_EBADNAME);
	assert_int_equal(mqim_store_user_groups(st, "ghost", collect, &ns), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_user_groups(st, "", collect, &ns), MQIM_EBADNAME);
	assert_int_equal(ns.n, 0);
}

static void cascades(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct names ns = { 0 };

	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "bob", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "g1"), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "g2"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "g1", "alice"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "g1", "bob"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "g2", "alice"), MQIM_OK);
	assert_int_equal(mqim_store_user_del(st, "alice"), MQIM_OK);
	assert_int_equal(mqim_store_memberships(st, collect_pair, &ns), MQIM_OK);
	assert_string_equal(ns.buf, "g1:bob");
	assert_int_equal(mqim_store_group_del(st, "g1"), MQIM_OK);
	memset(&ns, 0, sizeof(ns));
	assert_int_equal(mqim_store_memberships(st, collect_pair, &ns), MQIM_OK);
	assert_int_equal(ns.n, 0);
	/* Re-creating the user does not bring memberships back. */
	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_groups(st, "alice", collect, &ns), MQIM_OK);
	assert_int_equal(ns.n, 0);
}

static void walk_stops(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct names ns = { .stop_at = 1 };

	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "bob", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "g1"), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "g2"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "g1", "alice"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "g1", "bob"), MQIM_OK);
	assert_int_equal(mqim_store_member_add(st, "g2", "alice"), MQIM_OK);
	assert_int_equal(mqim_store_groups(st, collect, &ns), 42);
	ns.n = 0;
	assert_int_equal(mqim_store_members(st, "g1", collect, &ns), 42);
	ns.n = 0;
	assert_int_equal(mqim_store_user_groups(st, "alice", collect, &ns), 42);
	ns.n = 0;
	assert_int_equal(mqim_store_memberships(st, collect_pair, &ns), 42);
	assert_string_equal(ns.buf, "g1,alice,g1,g1:alice");
	/* Nothing is left holding a read snapshot: a write commits at once. */
	assert_int_equal(mqim_store_begin(st), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "g3"), MQIM_OK);
	assert_int_equal(mqim_store_commit(st), MQIM_OK);
}

/* ---- transactions -------------------------------------------------------- */

static void transactions(void **state)
{
	struct fix *f = *state;
	struct mqim_store *st = open_new(f);
	struct mqim_user_rec u;

	assert_int_equal(mqim_store_commit(st), MQIM_ESTATE);
	mqim_store_rollback(st);                         /* harmless */
	assert_int_equal(mqim_store_begin(st), MQIM_OK);
	assert_int_equal(mqim_store_begin(st), MQIM_ESTATE);
	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_group_add(st, "g"), MQIM_OK);
	mqim_store_rollback(st);
	assert_int_equal(mqim_store_user_get(st, "alice", &u), MQIM_ENOTFOUND);
	assert_int_equal(mqim_store_group_exists(st, "g"), MQIM_ENOTFOUND);

	assert_int_equal(mqim_store_begin(st), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_user_add(st, "alice", H1, false), MQIM_EEXISTS);
	assert_int_equal(mqim_store_user_add(st, "bob", H1, false), MQIM_OK);
	assert_int_equal(mqim_store_commit(st), MQIM_OK);
	reopen(f, 0);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_int_equal(mqim_store_user_get(f->st, "bob", &u), MQIM_OK);
}

static void two_connections(void **state)
{
	struct fix *f = *state;
	struct mqim_store *other;
	struct mqim_user_rec u;

	open_new(f);
	assert_int_equal(mqim_store_open(f->path, 0, &other, f->err, sizeof(f->err)), MQIM_OK);
	assert_int_equal(mqim_store_user_add(other, "alice", H1, false), MQIM_OK);
	/* WAL: a second process's committed write is visible at the next read. */
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	mqim_store_close(other);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(create_mode_0600),
		T(missing_without_create),
		T(bad_arguments),
		T(reopen_persists),
		T(readonly_open),
		T(garbage_file),
		T(text_file),
		T(truncated_file),
		T(foreign_sqlite_file),
		T(empty_file),
		T(newer_schema),
		T(upgrades_version_1),
		T(schema_refuses_bad_names),
		T(users_crud),
		T(users_not_found),
		T(users_bad_input),
		T(users_walk),
		T(groups_crud),
		T(members),
		T(members_of_missing),
		T(cascades),
		T(walk_stops),
		T(transactions),
		T(two_connections),
	};
#undef T

	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
