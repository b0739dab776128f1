/* fuzz_store.c - libFuzzer target for the store loader (common/store.c).
 *
 * Each input is written as a store file (with no -wal, -shm or -journal
 * file beside it, so no state carries over from the input before) and
 * opened with mqim_store_open() without MQIM_STORE_CREATE, as the plugin
 * opens its store at start and on SIGHUP.  When the open succeeds, the
 * target walks users, groups and memberships as the plugin's loader does,
 * looks some of them up one by one (as getUser and getGroup do), then makes
 * a few changes inside a transaction and rolls them back, as a $CONTROL
 * command would, and loads again.
 *
 * Any outcome is fine except a crash, a leak (ASan's leak check), or an
 * answer outside the contract of store.h, which abort()s:
 *   - open: MQIM_OK with a store, or MQIM_EIO / ECORRUPT / EUNSUPPORTED /
 *     EBUSY / EDB / ENOMEM with no store and a sentence naming the file;
 *   - every record handed to a callback is NUL-terminated within its field;
 *   - other calls return an mqim error code, never a raw SQLite one.
 * Seeds: tests/fuzz/corpus/store/ (a store made by mqimctl, and damaged
 * copies).  Run with `make fuzz`.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqim.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "fuzz_store: check failed at line %d: %s\n", \
				__LINE__, #cond);                           \
			abort();                                            \
		}                                                           \
	} while (0)

/* A valid argon2id hash for the write step (its password is irrelevant). */
#define SOME_HASH "$argon2id$v=19$m=8,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" \
		  "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo"

static char dir[64], path[96];

static void remove_files(void)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char p[128];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
}

static void remove_dir(void)
{
	remove_files();
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	snprintf(dir, sizeof(dir), "%s", "/dev/shm/mqim-fuzz-store-XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(dir), "%s", "/tmp/mqim-fuzz-store-XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
	}
	snprintf(path, sizeof(path), "%s/store.db", dir);
	atexit(remove_dir);
	return 0;
}

/* The codes a store call may give back (store.h, Errors). */
static bool known_rc(int rc)
{
	switch (rc) {
	case MQIM_OK: case MQIM_EIO: case MQIM_ECORRUPT: case MQIM_EUNSUPPORTED:
	case MQIM_EBUSY: case MQIM_EDB: case MQIM_ENOMEM: case MQIM_ENOSPC:
	case MQIM_EEXISTS: case MQIM_ENOTFOUND: case MQIM_EBADNAME: case MQIM_EINVAL:
	case MQIM_ESTATE:
		return true;
	}
	return false;
}

#define CALL(expr)                                                          \
	do {                                                                \
		int rc_ = (expr);                                           \
		CHECK(known_rc(rc_));                                       \
	} while (0)

static bool field_ok(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* Names seen by the walks, looked up again after them (at most LOOKUPS). */
#define LOOKUPS 32

struct walk {
	char users[LOOKUPS][MQIM_NAME_MAX + 1];
	char groups[LOOKUPS][MQIM_NAME_MAX + 1];
	int nusers, ngroups, rows;
};

static void keep(char names[][MQIM_NAME_MAX + 1], int *n, const char *name)
{
	if (*n < LOOKUPS)
		memcpy(names[(*n)++], name, MQIM_NAME_MAX + 1);
}

static int on_name(void *ctx, const char *name)
{
	struct walk *w = ctx;

	CHECK(name && field_ok(name, MQIM_NAME_MAX + 1));
	w->rows++;
	return 0;
}

static int on_group(void *ctx, const char *gid)
{
	struct walk *w = ctx;

	CHECK(gid && field_ok(gid, MQIM_NAME_MAX + 1));
	keep(w->groups, &w->ngroups, gid);
	w->rows++;
	return 0;
}

static int on_member(void *ctx, const char *gid, const char *user)
{
	struct walk *w = ctx;

	CHECK(gid && user && field_ok(gid, MQIM_NAME_MAX + 1) &&
	      field_ok(user, MQIM_NAME_MAX + 1));
	w->rows++;
	return 0;
}

static int on_user(void *ctx, const struct mqim_user_rec *u)
{
	struct walk *w = ctx;

	CHECK(field_ok(u->name, sizeof(u->name)) && field_ok(u->hash, sizeof(u->hash)));
	keep(w->users, &w->nusers, u->name);
	w->rows++;
	return 0;
}

/* The plugin's load (three walks, one after the other), then the lookups
 * getUser and getGroup make.  The lookups are not made from inside a walk's
 * callback: on a file whose index keys are out of order (damage PRAGMA
 * quick_check does not look for), a statement that hits the damage while a
 * walk is open makes SQLite re-seek the walk's cursor, and the walk then
 * returns the same rows for ever (seed nested_walk_loop; no caller nests
 * today). */
static void load(struct mqim_store *st)
{
	struct walk *w = calloc(1, sizeof(*w));
	struct mqim_user_rec u;

	CHECK(w != NULL);
	CALL(mqim_store_users(st, on_user, w));
	CALL(mqim_store_groups(st, on_group, w));
	CALL(mqim_store_memberships(st, on_member, w));
	for (int i = 0; i < w->nusers; i++) {
		CALL(mqim_store_user_get(st, w->users[i], &u));
		CALL(mqim_store_user_groups(st, w->users[i], on_name, w));
	}
	for (int i = 0; i < w->ngroups; i++) {
		CALL(mqim_store_group_exists(st, w->groups[i]));
		CALL(mqim_store_members(st, w->groups[i], on_name, w));
	}
	(void)mqim_store_errmsg(st);
	free(w);
}

/* Changes a $CONTROL command makes, rolled back. */
static void change(struct mqim_store *st)
{
	if (mqim_store_begin(st) != MQIM_OK)
		return;
	CALL(mqim_store_user_add(st, "fuzz.user", SOME_HASH, false));
	CALL(mqim_store_group_add(st, "fuzz.group"));
	CALL(mqim_store_member_add(st, "fuzz.group", "fuzz.user"));
	CALL(mqim_store_user_set_admin(st, "fuzz.user", true));
	CALL(mqim_store_user_set_disabled(st, "fuzz.user", true));
	CALL(mqim_store_user_set_hash(st, "fuzz.user", SOME_HASH));
	CALL(mqim_store_member_del(st, "fuzz.group", "fuzz.user"));
	CALL(mqim_store_group_del(st, "fuzz.group"));
	CALL(mqim_store_user_del(st, "fuzz.user"));
	mqim_store_rollback(st);
}

static bool write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t done = 0;

	if (fd < 0)
		return false;
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	close(fd);
	return done == size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqim_store *st = (struct mqim_store *)1;
	char err[512];
	int rc;

	remove_files();
	CHECK(write_input(data, size));
	rc = mqim_store_open(path, 0, &st, err, sizeof(err));
	if (rc != MQIM_OK) {
		CHECK(st == NULL);
		CHECK(rc == MQIM_EIO || rc == MQIM_ECORRUPT || rc == MQIM_EUNSUPPORTED ||
		      rc == MQIM_EBUSY || rc == MQIM_EDB || rc == MQIM_ENOMEM);
		CHECK(err[0] != '\0' && strstr(err, path) != NULL);
		return 0;
	}
	CHECK(st != NULL);
	load(st);
	change(st);
	load(st);
	mqim_store_close(st);
	return 0;
}
