/* test_client_restart.c - the broker stops and starts again (persistence
 * on) in the middle of a conversation of 1,000 messages each way: nothing
 * is lost, nothing reaches an application twice, and both clients
 * reconnect by themselves.
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

#define PW "pw-Rs-19"
#define N 1000
#define WAIT_MS 150000 /* correctness, not speed: generous on a loaded machine */

static struct tbroker broker;

static int setup(void **state)
{
	(void)state;
	if (tbroker_init(&broker, NULL) != 0 ||
	    tbroker_add_user(&broker, "alice", PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", PW, false) != 0 ||
	    tbroker_start(&broker) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tbroker_cleanup(&broker);
	return 0;
}

struct sender {
	struct tc *t;
	const char *to;
	int sent;
	int rc;
	pthread_mutex_t mu;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	char text[48];
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "%s #%d", s->to, i);
		int rc = mqim_send(s->t->c, s->to, false, NULL, text, strlen(text), 1 + i % 2, NULL);
		if (rc != MQIM_OK) {
			s->rc = rc;
			break;
		}
		pthread_mutex_lock(&s->mu);
		s->sent = i + 1;
		pthread_mutex_unlock(&s->mu);
		if (i % 50 == 0)
			tc_sleep(20);   /* a conversation, not one burst */
	}
	return NULL;
}

static int sent_so_far(struct sender *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->sent;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* n messages, each "to #i" exactly once. */
static void check_all(struct tc *t, const char *to)
{
	static char seen[N];
	memset(seen, 0, sizeof seen);
	pthread_mutex_lock(&t->mu);
	assert_int_equal(t->nmsgs, N);
	for (size_t i = 0; i < t->nmsgs; i++) {
		char prefix[16];
		int k = -1;
		snprintf(prefix, sizeof prefix, "%s #", to);
		assert_int_equal(strncmp(t->msgs[i].body, prefix, strlen(prefix)), 0);
		k = atoi(t->msgs[i].body + strlen(prefix));
		assert_true(k >= 0 && k < N);
		assert_int_equal(seen[k], 0);
		seen[k] = 1;
	}
	pthread_mutex_unlock(&t->mu);
}

static void test_restart_mid_conversation(void **state)
{
	struct tc a, b;
	struct mqim_options o;
	char da[256], db[256];
	pthread_t ta, tb;
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(db, sizeof db, "bob");
	tc_options(&o, broker.port, "alice", PW, da);
	o.resend_timeout_ms = 8000;
	o.max_resends = 10;
	tc_init(&a);
	assert_int_equal(tc_create(&a, &o), MQIM_OK);
	tc_options(&o, broker.port, "bob", PW, db);
	o.resend_timeout_ms = 8000;
	o.max_resends = 10;
	tc_init(&b);
	assert_int_equal(tc_create(&b, &o), MQIM_OK);
	assert_int_equal(mqim_connect(a.c), MQIM_OK);
	assert_int_equal(mqim_connect(b.c), MQIM_OK);
	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));

	struct sender sa = { &a, "bob", 0, 0, PTHREAD_MUTEX_INITIALIZER };
	struct sender sb = { &b, "alice", 0, 0, PTHREAD_MUTEX_INITIALIZER };
	assert_int_equal(pthread_create(&ta, NULL, send_all, &sa), 0);
	assert_int_equal(pthread_create(&tb, NULL, send_all, &sb), 0);

	/* Mid-conversation: stop the broker (it saves its state), wait, start it. */
	int64_t end = tc_now() + WAIT_MS;
	while ((sent_so_far(&sa) < N / 3 || sent_so_far(&sb) < N / 3) && tc_now() < end)
		tc_sleep(5);
	assert_int_equal(tbroker_stop(&broker), 0);
	assert_true(tc_wait_state(&a, MQIM_STATE_WAITING, 10000));
	tc_sleep(1500);
	assert_int_equal(tbroker_start(&broker), 0);

	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	assert_int_equal(sa.rc, MQIM_OK);
	assert_int_equal(sb.rc, MQIM_OK);

	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_msgs(&a, N, WAIT_MS));
	assert_true(tc_wait_msgs(&b, N, WAIT_MS));
	assert_true(tc_wait_delivered(&a, N, WAIT_MS));
	assert_true(tc_wait_delivered(&b, N, WAIT_MS));
	tc_sleep(1000);   /* late duplicates would show now */
	check_all(&a, "alice");
	check_all(&b, "bob");
	assert_true(tc_state_count(&a, MQIM_STATE_CONNECTED) >= 2);
	tc_close(&a);
	tc_close(&b);
	tc_rmdir(da);
	tc_rmdir(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_mid_conversation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
