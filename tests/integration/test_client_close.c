/* test_client_close.c - what mqim_close() leaves in the data folder: the
 * database in mqim.db alone, its write-ahead log checkpointed and removed
 * (docs/reliability.md, finding 8), so that a backup copying only mqim.db
 * misses nothing; also when the client is closed from its own callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-Close-52"
#define WAIT_MS 20000
#define N 5

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const users[] = { "alice", "bob", NULL };
	(void)state;
	return tc_broker_up(&broker, PW, users);
}

static int teardown(void **state)
{
	(void)state;
	tbroker_cleanup(&broker);
	return 0;
}

static bool exists(const char *dir, const char *name)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

/* Copy dir/mqim.db, and nothing beside it, to a fresh folder; then count
 * with `sql` in the copy. */
static int count_in_copy(const char *dir, const char *sql)
{
	char copy[256], cmd[800], path[400];
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = -1;

	tc_tmpdir(copy, sizeof copy, "copy");
	snprintf(cmd, sizeof cmd, "cp '%s/mqim.db' '%s/mqim.db'", dir, copy);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof path, "%s/mqim.db", copy);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	tc_rmdir(copy);
	return n;
}

static int noop_cb(void *ctx, const struct mqim_message *m)
{
	(void)ctx;
	(void)m;
	return 0;
}

static void test_close_leaves_no_wal(void **state)
{
	struct tc a, b;
	char da[256], db[256], text[32];
	uint8_t ids[N][16];
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(db, sizeof db, "bob");
	assert_int_equal(tc_open(&a, broker.port, "alice", PW, da), MQIM_OK);
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "keep %d", i);
		assert_int_equal(mqim_send(a.c, "bob", false, NULL, text, strlen(text), 1, ids[i]),
				 MQIM_OK);
	}
	assert_true(tc_wait_msgs(&b, N, WAIT_MS));
	for (int i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&a, ids[i], MQIM_MSG_DELIVERED, WAIT_MS));
	/* Both connections in use: the read-only one served these. */
	assert_int_equal(mqim_history(a.c, "bob", false, 0, NULL, 100, noop_cb, NULL), N);
	assert_int_equal(mqim_history(b.c, "alice", false, 0, NULL, 100, noop_cb, NULL), N);
	assert_true(exists(da, "mqim.db-wal"));

	tc_close(&a);
	tc_close(&b);
	assert_false(exists(da, "mqim.db-wal"));
	assert_false(exists(da, "mqim.db-shm"));
	assert_false(exists(db, "mqim.db-wal"));
	assert_false(exists(db, "mqim.db-shm"));
	/* mqim.db alone is the whole database. */
	assert_int_equal(count_in_copy(db, "SELECT count(*) FROM history WHERE fr='alice'"), N);
	assert_int_equal(count_in_copy(da, "SELECT count(*) FROM history WHERE state=3"), N);
	assert_int_equal(count_in_copy(da, "SELECT count(*) FROM outbox"), 0);
	tc_rmdir(da);
	tc_rmdir(db);
}

static void close_on_connected(mqim_client *c, enum mqim_state st, int err, void *ud)
{
	(void)err;
	(void)ud;
	if (st == MQIM_STATE_CONNECTED)
		mqim_close(c);   /* takes effect once this callback returns */
}

static void test_close_from_callback(void **state)
{
	struct mqim_options o;
	struct mqim_callbacks cb = MQIM_CALLBACKS_INIT;
	mqim_client *c;
	char dir[256];
	(void)state;

	tc_tmpdir(dir, sizeof dir, "alice");
	tc_options(&o, broker.port, "alice", PW, dir);
	cb.on_state = close_on_connected;
	assert_int_equal(mqim_create(&o, &cb, NULL, &c), MQIM_OK);
	assert_int_equal(mqim_send(c, "bob", false, NULL, "queued", 6, 1, NULL), MQIM_OK);
	assert_int_equal(mqim_connect(c), MQIM_OK);
	/* The client tears itself down on its own thread: wait for the lock. */
	int64_t end = tc_now() + WAIT_MS;
	while ((exists(dir, "mqim.db-wal") || exists(dir, "mqim.db-shm")) && tc_now() < end)
		tc_sleep(50);
	assert_false(exists(dir, "mqim.db-wal"));
	assert_false(exists(dir, "mqim.db-shm"));
	assert_int_equal(count_in_copy(dir, "SELECT count(*) FROM history"), 1);
	tc_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_leaves_no_wal),
		cmocka_unit_test(test_close_from_callback),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
