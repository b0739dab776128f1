/* test_client_diskfull.c - libmqim when its data folder cannot be written:
 * nothing is shown or reported before it is stored, nothing is lost that
 * the broker already handed over (within the memory cap), nothing is shown
 * twice, and order is kept.
 *
 * The full disk is an SQLite VFS that fails writes with SQLITE_FULL under
 * one client's data folder (tests/support/tfullvfs.h), so the statements
 * and COMMITs of that client fail exactly as on a full file system, and
 * space comes back at once when the test says so.  (tests/faults case 9
 * does the same with a real tmpfs, as root.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"
#include "tbroker.h"
#include "test_client_util.h"
#include "tfullvfs.h"

#define PW "pw-Full-41"
#define WAIT_MS 20000
#define N 8

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const users[] = { "alice", "bob", NULL };
	(void)state;
	return tfullvfs_install() == 0 && tc_broker_up(&broker, PW, users) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tfullvfs_watch(NULL);
	tbroker_cleanup(&broker);
	return 0;
}

struct pair {
	struct tc a, b;
	char da[256], db[256];
};

/* alice and bob connected, and one message gone from alice to bob and
 * receipted (so bob's subscription is in place); full_dir: the folder to
 * watch (p->da or p->db), known before the clients open it. */
static void pair_open(struct pair *p, bool watch_bob)
{
	uint8_t id[16];
	tc_tmpdir(p->da, sizeof p->da, "alice");
	tc_tmpdir(p->db, sizeof p->db, "bob");
	tfullvfs_watch(watch_bob ? p->db : p->da);
	assert_int_equal(tc_open(&p->a, broker.port, "alice", PW, p->da), MQIM_OK);
	assert_int_equal(tc_open(&p->b, broker.port, "bob", PW, p->db), MQIM_OK);
	assert_true(tc_wait_state(&p->a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_state(&p->b, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(mqim_send(p->a.c, "bob", false, NULL, "warm-up", 7, 1, id), MQIM_OK);
	assert_true(tc_wait_msgs(&p->b, 1, WAIT_MS));
	assert_true(tc_wait_msg_state(&p->a, id, MQIM_MSG_DELIVERED, WAIT_MS));
}

static void pair_close(struct pair *p)
{
	tfullvfs_watch(NULL);
	if (p->a.c)
		tc_close(&p->a);
	if (p->b.c)
		tc_close(&p->b);
	tc_rmdir(p->da);
	tc_rmdir(p->db);
}

/* alice sends m0..m{n-1} to bob and waits until the broker has them. */
static void send_n(struct tc *a, int n, uint8_t ids[][16])
{
	char text[32];
	for (int i = 0; i < n; i++) {
		snprintf(text, sizeof text, "m%d", i);
		assert_int_equal(mqim_send(a->c, "bob", false, NULL, text, strlen(text), 1, ids[i]),
				 MQIM_OK);
	}
	for (int i = 0; i < n; i++)
		assert_true(tc_wait_msg_state(a, ids[i], MQIM_MSG_SENT, WAIT_MS));
}

/* bob's messages from index 1 (after the warm-up) are m0..m{n-1}, once each. */
static void assert_shown_in_order(struct tc *b, int n)
{
	char text[32];
	pthread_mutex_lock(&b->mu);
	assert_int_equal(b->nmsgs, 1 + (size_t)n);
	for (int i = 0; i < n; i++) {
		snprintf(text, sizeof text, "m%d", i);
		assert_string_equal(b->msgs[1 + i].body, text);
	}
	pthread_mutex_unlock(&b->mu);
}

static int count_cb(void *ctx, const struct mqim_message *m)
{
	(void)m;
	(*(int *)ctx)++;
	return 0;
}

/* Messages of the conversation in t's history. */
static int history_count(struct tc *t, const char *peer)
{
	int n = 0;
	assert_true(mqim_history(t->c, peer, false, 0, NULL, 1000, count_cb, &n) >= 0);
	return n;
}

static int outbox_cb(void *ctx, const struct mqim_outbox_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

static int outbox_count(struct tc *t)
{
	int n = 0;
	assert_true(mqim_outbox(t->c, outbox_cb, &n) >= 0);
	return n;
}

static int set_cap(mqim_client *c, void *arg)
{
	c->hold.max_n = *(size_t *)arg;
	return MQIM_OK;
}

static int get_held(mqim_client *c, void *arg)
{
	*(size_t *)arg = c->hold.n + c->hold.dropped_total;
	return MQIM_OK;
}

static int get_holding(mqim_client *c, void *arg)
{
	*(size_t *)arg = c->hold.n;
	return MQIM_OK;
}

/* Wait until t's library thread holds or dropped n events in all. */
static bool wait_held(struct tc *t, size_t n, int timeout_ms)
{
	int64_t end = tc_now() + timeout_ms;
	size_t h = 0;
	while (mqim__call(t->c, get_held, &h) == MQIM_OK && h < n && tc_now() < end)
		tc_sleep(50);
	return h >= n;
}

/* Wait until t's library thread holds nothing. */
static bool wait_unheld(struct tc *t, int timeout_ms)
{
	int64_t end = tc_now() + timeout_ms;
	size_t h = 1;
	while (mqim__call(t->c, get_holding, &h) == MQIM_OK && h > 0 && tc_now() < end)
		tc_sleep(50);
	return h == 0;
}

static int msg_state(struct tc *t, const uint8_t id[16])
{
	pthread_mutex_lock(&t->mu);
	int st = tc_msg_state_locked(t, id);
	pthread_mutex_unlock(&t->mu);
	return st;
}

static int errors(struct tc *t, int *last)
{
	pthread_mutex_lock(&t->mu);
	int n = t->nerrors;
	if (last)
		*last = t->last_error;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* The receiver's disk is full while messages come: none is shown, none is
 * receipted; once there is room, each is stored, receipted and shown once,
 * in order. */
static void test_receiver_full(void **state)
{
	struct pair p;
	uint8_t ids[N][16];
	int last = 0;
	(void)state;

	pair_open(&p, true);
	tfullvfs_set_full(true);
	send_n(&p.a, N, ids);
	assert_true(wait_held(&p.b, N, WAIT_MS));
	tc_sleep(1500);   /* and tried to store them again */
	assert_true(tfullvfs_refused() > 0);
	assert_int_equal(tc_nmsgs(&p.b), 1);
	assert_int_equal(history_count(&p.b, "alice"), 1);
	assert_int_equal(errors(&p.b, &last), 1);   /* once, not per attempt */
	assert_int_equal(last, MQIM_ENOSPC);
	for (int i = 0; i < N; i++)
		assert_int_equal(msg_state(&p.a, ids[i]), MQIM_MSG_SENT);

	tfullvfs_set_full(false);
	assert_true(tc_wait_msgs(&p.b, 1 + N, WAIT_MS));
	for (int i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&p.a, ids[i], MQIM_MSG_DELIVERED, WAIT_MS));
	tc_sleep(300);
	assert_shown_in_order(&p.b, N);
	assert_int_equal(history_count(&p.b, "alice"), 1 + N);
	assert_int_equal(outbox_count(&p.a), 0);
	pair_close(&p);
}

/* The sender's disk is full while the receipts come: no DELIVERED is
 * reported for a change that could not be stored, a send says ENOSPC;
 * once there is room, each message is DELIVERED once and leaves the
 * outbox. */
static void test_sender_full(void **state)
{
	struct pair p;
	uint8_t ids[N][16], id[16];
	enum mqim_msg_state st;
	(void)state;

	pair_open(&p, false);
	tc_close(&p.b);   /* away: the broker keeps the session */
	send_n(&p.a, N, ids);
	tfullvfs_set_full(true);
	assert_int_equal(mqim_send(p.a.c, "bob", false, NULL, "x", 1, 1, id), MQIM_ENOSPC);
	assert_int_equal(tc_open(&p.b, broker.port, "bob", PW, p.db), MQIM_OK);
	assert_true(tc_wait_msgs(&p.b, N, WAIT_MS));   /* a fresh struct tc: no warm-up */
	assert_true(wait_held(&p.a, N, WAIT_MS));   /* the receipts, not stored */
	for (int i = 0; i < N; i++) {
		assert_int_equal(msg_state(&p.a, ids[i]), MQIM_MSG_SENT);
		assert_int_equal(mqim_message_state(p.a.c, ids[i], &st), MQIM_OK);
		assert_int_equal(st, MQIM_MSG_SENT);
	}
	assert_int_equal(outbox_count(&p.a), N);

	tfullvfs_set_full(false);
	for (int i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&p.a, ids[i], MQIM_MSG_DELIVERED, WAIT_MS));
	assert_int_equal(outbox_count(&p.a), 0);
	assert_int_equal(mqim_send(p.a.c, "bob", false, NULL, "after", 5, 1, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&p.a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	pair_close(&p);
}

/* Past the memory cap the newest are dropped and reported, never shown;
 * the held ones are shown once, in order, when there is room.  (The hold
 * may also keep an acknowledgement of bob's own, so it is "at most cap".) */
static void test_hold_cap(void **state)
{
	struct pair p;
	uint8_t ids[N][16];
	size_t cap = 3;
	int last = 0;
	(void)state;

	pair_open(&p, true);
	assert_int_equal(mqim__call(p.b.c, set_cap, &cap), MQIM_OK);
	tfullvfs_set_full(true);
	send_n(&p.a, N, ids);
	assert_true(wait_held(&p.b, N, WAIT_MS));   /* cap held, the rest dropped */
	assert_int_equal(tc_nmsgs(&p.b), 1);
	int before = errors(&p.b, NULL);
	tfullvfs_set_full(false);
	assert_true(wait_unheld(&p.b, WAIT_MS));
	tc_sleep(300);
	/* Alice resends the dropped ones only after resend_timeout_ms (15 s). */
	size_t shown = tc_nmsgs(&p.b) - 1;
	assert_true(shown >= 1 && shown <= cap);
	assert_shown_in_order(&p.b, (int)shown);
	/* The drops were reported (when the hold was tried again). */
	assert_true(errors(&p.b, &last) > 1);
	assert_true(before >= 1);
	assert_int_equal(last, MQIM_ENOSPC);
	for (size_t i = 0; i < shown; i++)
		assert_true(tc_wait_msg_state(&p.a, ids[i], MQIM_MSG_DELIVERED, WAIT_MS));
	pair_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_receiver_full),
		cmocka_unit_test(test_sender_full),
		cmocka_unit_test(test_hold_cap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
