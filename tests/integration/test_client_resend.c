/* test_client_resend.c - marked resends between libmqim clients through
 * the mqim broker (finding 2 of docs/reliability.md): a direct message to a
 * user who has never logged in is acknowledged 0x10 "no matching
 * subscribers" and swallowed as a duplicate if simply resent; the marked
 * resends bring it to her, once, when she first comes, and only then is it
 * DELIVERED.  A message FAILED for want of its receipt and retried with
 * mqim_retry() goes out marked at once, without waiting a resend timeout.
 *
 * One broker: alice writes; bob and carol have never logged in when a test
 * starts (each test uses its own recipient).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-Rsd-73"
#define WAIT_MS 15000

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const users[] = { "alice", "bob", "carol", NULL };
	(void)state;
	return tc_broker_up(&broker, PW, users) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tbroker_cleanup(&broker);
	return 0;
}

/* alice with this resend timeout and budget, connected. */
static void alice_open(struct tc *a, const char *dir, unsigned resend_ms, unsigned max_resends)
{
	assert_int_equal(tc_open_resend(a, broker.port, "alice", PW, dir, NULL, resend_ms,
					max_resends), MQIM_OK);
	assert_true(tc_wait_state(a, MQIM_STATE_CONNECTED, WAIT_MS));
}

static void test_first_login_after_send(void **state)
{
	struct tc a, b;
	char da[256], db[256];
	uint8_t id[16];
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(db, sizeof db, "bob");
	alice_open(&a, da, 2000, 100);
	assert_int_equal(mqim_send(a.c, "bob", false, NULL, "before you came", 15, 1, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_SENT, WAIT_MS));
	tc_sleep(2500);   /* the first (quick) resend and a full one: nobody there */
	enum mqim_msg_state st;
	assert_int_equal(mqim_message_state(a.c, id, &st), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_SENT);

	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_msgs(&b, 1, WAIT_MS));
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	tc_sleep(2500);
	assert_int_equal(tc_copies(&b, id), 1);
	assert_int_equal(tc_nmsgs(&b), 1);
	assert_string_equal(b.msgs[0].body, "before you came");

	tc_close(&b);
	tc_close(&a);
	tc_rmdir(da);
	tc_rmdir(db);
}

static void test_retry_goes_marked(void **state)
{
	struct tc a, c;
	char da[256], dc[256];
	uint8_t id[16];
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(dc, sizeof dc, "carol");
	/* Nobody there: FAILED quickly (one resend of 300 ms). */
	alice_open(&a, da, 300, 1);
	assert_int_equal(mqim_send(a.c, "carol", false, NULL, "retried", 7, 2, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_FAILED, WAIT_MS));
	tc_close(&a);

	/* Back with a resend timeout far past the wait below: only a marked
	 * first publish can reach carol in time (a plain one is a duplicate
	 * inside the broker's window). */
	assert_int_equal(tc_open(&c, broker.port, "carol", PW, dc), MQIM_OK);
	assert_true(tc_wait_state(&c, MQIM_STATE_CONNECTED, WAIT_MS));
	alice_open(&a, da, 120000, 3);
	tc_sleep(300);   /* carol's subscription lands */
	assert_int_equal(mqim_retry(a.c, id), MQIM_OK);
	assert_true(tc_wait_msgs(&c, 1, 8000));
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	assert_int_equal(tc_copies(&c, id), 1);

	tc_close(&c);
	tc_close(&a);
	tc_rmdir(da);
	tc_rmdir(dc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_login_after_send),
		cmocka_unit_test(test_retry_goes_marked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
