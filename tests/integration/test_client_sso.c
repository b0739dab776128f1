/* test_client_sso.c - single sign-on seen from libmqim: with
 * plugin_opt_max_sessions_per_user 1 the older device is closed by the
 * broker (0x98), reports "logged in elsewhere" (TAKEN_OVER, MQIM_ETAKEN)
 * and does not reconnect by itself, so two devices never kick each other in
 * a loop; the app may take the session back with mqim_reconnect(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-sso-7"
#define WAIT_MS 10000

static void newest_login_wins_without_a_loop(void **state)
{
	struct tbroker b;
	struct tc phone, laptop;
	char dphone[256], dlaptop[256];

	assert_int_equal(tbroker_init(&b, "plugin_opt_max_sessions_per_user 1\n"), 0);
	assert_int_equal(tbroker_add_user(&b, "alice", PW, false), 0);
	assert_int_equal(tbroker_start(&b), 0);

	tc_tmpdir(dphone, sizeof dphone, "alice-phone");
	tc_tmpdir(dlaptop, sizeof dlaptop, "alice-laptop");
	assert_int_equal(tc_open(&phone, b.port, "alice", PW, dphone), MQIM_OK);
	assert_true(tc_wait_state(&phone, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(tc_open(&laptop, b.port, "alice", PW, dlaptop), MQIM_OK);
	assert_true(tc_wait_state(&laptop, MQIM_STATE_CONNECTED, WAIT_MS));

	/* the phone learns why, once, and stays out */
	assert_true(tc_wait_state(&phone, MQIM_STATE_TAKEN_OVER, WAIT_MS));
	pthread_mutex_lock(&phone.mu);
	int err = phone.state_errs[phone.nstates - 1];
	pthread_mutex_unlock(&phone.mu);
	assert_int_equal(err, MQIM_ETAKEN);
	tc_sleep(3000); /* several backoff periods */
	assert_int_equal(mqim_get_state(phone.c), MQIM_STATE_TAKEN_OVER);
	assert_int_equal(tc_state_count(&phone, MQIM_STATE_CONNECTING), 1);
	assert_int_equal(mqim_get_state(laptop.c), MQIM_STATE_CONNECTED);
	assert_int_equal(tc_state_count(&laptop, MQIM_STATE_TAKEN_OVER), 0);

	/* the app takes the session back on the phone: now the laptop is out */
	assert_int_equal(mqim_reconnect(phone.c), MQIM_OK);
	assert_true(tc_wait_state(&laptop, MQIM_STATE_TAKEN_OVER, WAIT_MS));
	assert_true(tc_wait_state(&phone, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_sleep(1500);
	assert_int_equal(mqim_get_state(phone.c), MQIM_STATE_CONNECTED);
	assert_int_equal(mqim_get_state(laptop.c), MQIM_STATE_TAKEN_OVER);

	tc_close(&phone);
	tc_close(&laptop);
	tc_rmdir(dphone);
	tc_rmdir(dlaptop);
	tbroker_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(newest_login_wins_without_a_loop),
	};
	return cmocka_run_group_tests_name("client single sign-on", tests, NULL, NULL);
}
