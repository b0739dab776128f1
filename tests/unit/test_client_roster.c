/* test_client_roster.c - group rosters and the receipts a group message
 * waits for (client/roster.c): who is awaited, what each receipt changes,
 * when a message is done, the first-receipt rule without a roster, and that
 * all of it survives closing the database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "roster.h"

struct fixture {
	char dir[256];
	struct mqim__db db;
	struct mqim__roster ro;
};

static int open_all(struct fixture *f)
{
	char err[256];
	if (mqim__db_open(&f->db, f->dir, MQIM_DB_NOSYNC, err, sizeof err) != MQIM_OK)
		return -1;
	return mqim__roster_open(&f->ro, &f->db) == MQIM_OK ? 0 : -1;
}

static void close_all(struct fixture *f)
{
	mqim__roster_close(&f->ro);
	mqim__db_close(&f->db);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/mqim-ut-roster-XXXXXX");
	if (!mkdtemp(f->dir) || open_all(f) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];
	close_all(f);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void make_id(uint8_t id[16], int n)
{
	memset(id, 0, 16);
	id[15] = (uint8_t)n;
}

/* The state a receipt leads to. */
static int receipt(struct fixture *f, int n, const char *member, bool is_read)
{
	uint8_t id[16];
	int st = -1;
	make_id(id, n);
	assert_int_equal(mqim__roster_receipt(&f->ro, id, member, is_read, &st), MQIM_OK);
	return st;
}

static int expect(struct fixture *f, int n, const char *gid, const char *self)
{
	uint8_t id[16];
	int count = -1;
	make_id(id, n);
	assert_int_equal(mqim__roster_expect(&f->ro, id, gid, self, &count), MQIM_OK);
	return count;
}

/* Every member but the sender is awaited; strangers and repeats change
 * nothing; the last one settles it, DELIVERED or READ. */
static void test_waits_for_every_member(void **state)
{
	struct fixture *f = *state;
	const char *const team[] = { "alice", "bob", "carol", "dave", "bob", NULL };
	assert_int_equal(mqim__roster_set(&f->ro, "team", team), MQIM_OK);
	assert_int_equal(expect(f, 1, "team", "alice"), 3);
	assert_int_equal(receipt(f, 1, "bob", false), 0);
	assert_int_equal(receipt(f, 1, "bob", false), 0);      /* again */
	assert_int_equal(receipt(f, 1, "mallory", false), 0);  /* not in the roster */
	assert_int_equal(receipt(f, 1, "alice", false), 0);    /* the sender's own device */
	assert_int_equal(receipt(f, 1, "carol", false), 0);
	assert_int_equal(receipt(f, 1, "dave", false), MQIM_MSG_DELIVERED);
	/* Done: its rows are gone, a later receipt is the old rule's. */
	assert_int_equal(receipt(f, 1, "carol", true), MQIM_MSG_READ);
	assert_int_equal(receipt(f, 1, "bob", false), MQIM_MSG_DELIVERED);

	/* A read counts as delivered, and is remembered. */
	assert_int_equal(expect(f, 2, "team", "alice"), 3);
	assert_int_equal(receipt(f, 2, "bob", true), 0);
	assert_int_equal(receipt(f, 2, "bob", false), 0);      /* never downgraded */
	assert_int_equal(receipt(f, 2, "carol", false), 0);
	assert_int_equal(receipt(f, 2, "dave", false), MQIM_MSG_READ);
}

/* No roster, or one naming only the sender: the first receipt settles it. */
static void test_without_roster_first_receipt(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(expect(f, 3, "team", "alice"), 0);
	assert_int_equal(receipt(f, 3, "bob", false), MQIM_MSG_DELIVERED);
	assert_int_equal(expect(f, 4, "team", "alice"), 0);
	assert_int_equal(receipt(f, 4, "bob", true), MQIM_MSG_READ);

	const char *const alone[] = { "alice", NULL };
	assert_int_equal(mqim__roster_set(&f->ro, "solo", alone), MQIM_OK);
	assert_int_equal(expect(f, 5, "solo", "alice"), 0);
	assert_int_equal(receipt(f, 5, "bob", false), MQIM_MSG_DELIVERED);
}

/* Replacing or forgetting a roster changes later messages only; rosters
 * of different groups are apart. */
static void test_roster_changes(void **state)
{
	struct fixture *f = *state;
	const char *const v1[] = { "bob", "carol", NULL };
	const char *const v2[] = { "dave", NULL };
	const char *const other[] = { "erin", "frank", NULL };
	assert_int_equal(mqim__roster_set(&f->ro, "team", v1), MQIM_OK);
	assert_int_equal(mqim__roster_set(&f->ro, "ops", other), MQIM_OK);
	assert_int_equal(expect(f, 6, "team", "alice"), 2);
	assert_int_equal(mqim__roster_set(&f->ro, "team", v2), MQIM_OK);
	assert_int_equal(expect(f, 7, "team", "alice"), 1);
	assert_int_equal(expect(f, 8, "ops", "alice"), 2);
	/* Message 6 still waits for bob and carol, not dave. */
	assert_int_equal(receipt(f, 6, "dave", false), 0);
	assert_int_equal(receipt(f, 6, "bob", false), 0);
	assert_int_equal(receipt(f, 6, "carol", false), MQIM_MSG_DELIVERED);
	assert_int_equal(receipt(f, 7, "dave", false), MQIM_MSG_DELIVERED);
	/* Forgotten (NULL or empty): back to the first receipt. */
	assert_int_equal(mqim__roster_set(&f->ro, "team", NULL), MQIM_OK);
	assert_int_equal(expect(f, 9, "team", "alice"), 0);
	const char *const empty[] = { NULL };
	assert_int_equal(mqim__roster_set(&f->ro, "ops", empty), MQIM_OK);
	assert_int_equal(expect(f, 10, "ops", "alice"), 0);
	/* Message 8 waits all the same. */
	assert_int_equal(receipt(f, 8, "erin", false), 0);
	assert_int_equal(receipt(f, 8, "frank", false), MQIM_MSG_DELIVERED);
}

/* Rosters and receipts already in are on disk: a restart keeps them. */
static void test_survives_reopen(void **state)
{
	struct fixture *f = *state;
	const char *const team[] = { "bob", "carol", NULL };
	assert_int_equal(mqim__roster_set(&f->ro, "team", team), MQIM_OK);
	assert_int_equal(expect(f, 11, "team", "alice"), 2);
	assert_int_equal(receipt(f, 11, "bob", false), 0);
	close_all(f);
	assert_int_equal(open_all(f), 0);
	assert_int_equal(expect(f, 12, "team", "alice"), 2);
	assert_int_equal(receipt(f, 11, "bob", false), 0);
	assert_int_equal(receipt(f, 11, "carol", false), MQIM_MSG_DELIVERED);
}

/* A receipt undone with its transaction is not counted. */
static void test_rolled_back_receipt(void **state)
{
	struct fixture *f = *state;
	const char *const team[] = { "bob", "carol", NULL };
	assert_int_equal(mqim__roster_set(&f->ro, "team", team), MQIM_OK);
	assert_int_equal(expect(f, 13, "team", "alice"), 2);
	assert_int_equal(mqim__db_begin(&f->db), MQIM_OK);
	assert_int_equal(receipt(f, 13, "bob", false), 0);
	mqim__db_rollback(&f->db);
	assert_int_equal(receipt(f, 13, "carol", false), 0);
	assert_int_equal(receipt(f, 13, "bob", false), MQIM_MSG_DELIVERED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_waits_for_every_member, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_roster_first_receipt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roster_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rolled_back_receipt, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
