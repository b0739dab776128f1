/* test_client_seen.c - the bounded, persisted seen-set (client/seen.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "seen.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mqim-ut-seen-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[300];
	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void id_of(uint8_t id[16], unsigned i)
{
	memset(id, 0, 16);
	memcpy(id, &i, sizeof i);
}

static void test_dedup_and_persist(void **state)
{
	struct mqim__db db;
	struct mqim__seen s;
	char err[256];
	uint8_t id[16];
	(void)state;
	assert_int_equal(mqim__db_open(&db, dir, MQIM_DB_NOSYNC, err, sizeof err), MQIM_OK);
	assert_int_equal(mqim__seen_open(&s, &db, 1000), MQIM_OK);
	id_of(id, 1);
	assert_int_equal(mqim__seen_add(&s, "alice", 5, id), 0);
	assert_int_equal(mqim__seen_add(&s, "alice", 5, id), 1);
	/* Same id from someone else is another message; fr is compared by
	 * its length, not up to a NUL. */
	assert_int_equal(mqim__seen_add(&s, "bob", 3, id), 0);
	assert_int_equal(mqim__seen_add(&s, "alicex", 5, id), 1);
	mqim__seen_close(&s);
	mqim__db_close(&db);

	/* Survives a restart. */
	assert_int_equal(mqim__db_open(&db, dir, MQIM_DB_NOSYNC, err, sizeof err), MQIM_OK);
	assert_int_equal(mqim__seen_open(&s, &db, 1000), MQIM_OK);
	assert_int_equal(s.n, 2);
	assert_int_equal(mqim__seen_add(&s, "alice", 5, id), 1);
	assert_int_equal(mqim__seen_add(&s, "bob", 3, id), 1);
	mqim__seen_close(&s);
	mqim__db_close(&db);
}

static void test_bounded(void **state)
{
	struct mqim__db db;
	struct mqim__seen s;
	char err[256];
	uint8_t id[16];
	(void)state;
	assert_int_equal(mqim__db_open(&db, dir, MQIM_DB_NOSYNC, err, sizeof err), MQIM_OK);
	assert_int_equal(mqim__seen_open(&s, &db, 100), MQIM_OK);
	mqim__db_begin(&db);
	for (unsigned i = 1000; i < 1500; i++) {
		id_of(id, i);
		assert_int_equal(mqim__seen_add(&s, "carol", 5, id), 0);
		assert_true(mqim__seen_count(&s) <= 100 + 100 / 8);
	}
	mqim__db_commit(&db);
	assert_true(mqim__seen_count(&s) >= 100);
	/* The newest are remembered, the oldest forgotten. */
	id_of(id, 1499);
	assert_int_equal(mqim__seen_add(&s, "carol", 5, id), 1);
	id_of(id, 1400);
	assert_int_equal(mqim__seen_add(&s, "carol", 5, id), 1);
	id_of(id, 1000);
	assert_int_equal(mqim__seen_add(&s, "carol", 5, id), 0);
	mqim__seen_close(&s);
	mqim__db_close(&db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dedup_and_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
