/* test_client_offline.c - nothing is lost when people are away or processes
 * die: a recipient offline (its session persisted) gets everything on its
 * return, once, in order; a sender killed (SIGKILL) with messages in its
 * outbox delivers them, once, on its next start.
 *
 * The killed sender is this very binary started again with --child (a
 * fresh process: forking a process that runs paho threads is not safe).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-Off-77"
#define WAIT_MS 20000

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

/* Every message of t is distinct by id; returns the count. */
static size_t check_unique(struct tc *t)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nmsgs; i++)
		for (size_t j = i + 1; j < t->nmsgs; j++)
			assert_memory_not_equal(t->msgs[i].id, t->msgs[j].id, 16);
	size_t n = t->nmsgs;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static void test_offline_recipient(void **state)
{
	enum { N = 60 };
	struct tc a, b;
	char da[256], db[256], text[32];
	uint8_t ids[N][16];
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(db, sizeof db, "bob");
	/* bob logs in once (the broker now keeps his session), then goes. */
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_close(&b);

	assert_int_equal(tc_open(&a, broker.port, "alice", PW, da), MQIM_OK);
	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));
	/* First half at QoS 1, second half at QoS 2.  (MQTT keeps the order
	 * of one QoS level; a broker releases a QoS 2 message at its PUBREL,
	 * so mixing levels in flight may reorder them.) */
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "while away %d", i);
		assert_int_equal(mqim_send(a.c, "bob", false, NULL, text, strlen(text), i < N / 2 ? 1 : 2,
					   ids[i]), MQIM_OK);
		if (i == N / 2 - 1)
			for (int k = 0; k <= i; k++)
				assert_true(tc_wait_msg_state(&a, ids[k], MQIM_MSG_SENT, WAIT_MS));
	}
	for (int i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&a, ids[i], MQIM_MSG_SENT, WAIT_MS));

	/* bob returns with the same data folder, so the same client id. */
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_msgs(&b, N, WAIT_MS));
	tc_sleep(500);
	assert_int_equal(check_unique(&b), N);
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "while away %d", i);
		assert_string_equal(b.msgs[i].body, text);
		assert_memory_equal(b.msgs[i].id, ids[i], 16);
	}
	assert_true(tc_wait_delivered(&a, N, WAIT_MS));

	/* And once more after a restart of bob: nothing comes twice. */
	tc_close(&b);
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_sleep(700);
	assert_int_equal(tc_nmsgs(&b), 0);
	tc_close(&b);
	tc_close(&a);
	tc_rmdir(da);
	tc_rmdir(db);
}

/* ---- the killed sender ------------------------------------------------------ */

/* Child: as alice with data folder dir, send n messages "kill i" to bob
 * (connected first when online), then SIGKILL itself at once. */
static int child_main(const char *dir, int port, int n, bool online)
{
	struct tc a;
	struct mqim_options o;
	char text[32];
	tc_options(&o, port, "alice", PW, dir);
	tc_init(&a);
	if (tc_create(&a, &o) != MQIM_OK)
		return 10;
	if (online) {
		mqim_connect(a.c);
		if (!tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS))
			return 11;
	}
	for (int i = 0; i < n; i++) {
		snprintf(text, sizeof text, "kill %d", i);
		if (mqim_send(a.c, "bob", false, NULL, text, strlen(text), 1, NULL) != MQIM_OK)
			return 12;
	}
	kill(getpid(), SIGKILL);
	return 13;
}

static void run_child(const char *dir, int n, bool online)
{
	char port[16], count[16];
	snprintf(port, sizeof port, "%d", broker.port);
	snprintf(count, sizeof count, "%d", n);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl("/proc/self/exe", "test_client_offline", "--child", dir, port, count,
		      online ? "online" : "offline", (char *)NULL);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
}

static int count_entry(void *ctx, const struct mqim_outbox_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

static void killed_sender(bool online, int n)
{
	struct tc a, b;
	char da[256], db[256];
	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(db, sizeof db, "bob");
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));

	run_child(da, n, online);

	/* The next start of alice (same data folder) sends what is left. */
	assert_int_equal(tc_open(&a, broker.port, "alice", PW, da), MQIM_OK);
	assert_true(tc_wait_msgs(&b, (size_t)n, WAIT_MS));
	tc_sleep(700);
	assert_int_equal(check_unique(&b), (size_t)n);
	/* Every message arrived; in order, as they went out in order. */
	for (int i = 0; i < n; i++) {
		char text[32];
		snprintf(text, sizeof text, "kill %d", i);
		assert_string_equal(b.msgs[i].body, text);
	}
	/* Alice's outbox empties as the receipts come. */
	int64_t end = tc_now() + WAIT_MS;
	int left;
	do {
		left = 0;
		assert_true(mqim_outbox(a.c, count_entry, &left) >= 0);
		if (left == 0)
			break;
		tc_sleep(50);
	} while (tc_now() < end);
	assert_int_equal(left, 0);
	tc_close(&a);
	tc_close(&b);
	tc_rmdir(da);
	tc_rmdir(db);
}

static void test_killed_sender_offline(void **state)
{
	(void)state;
	killed_sender(false, 20);
}

static void test_killed_sender_online(void **state)
{
	(void)state;
	killed_sender(true, 200);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_recipient),
		cmocka_unit_test(test_killed_sender_offline),
		cmocka_unit_test(test_killed_sender_online),
	};
	if (argc == 6 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2], atoi(argv[3]), atoi(argv[4]), strcmp(argv[5], "online") == 0);
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, setup, teardown);
}
