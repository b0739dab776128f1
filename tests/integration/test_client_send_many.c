/* test_client_send_many.c - the fast send paths, mqim_send_many() and
 * mqim_send_nowait(): order kept, ids returned, stored durably before they
 * are reported stored (before mqim_send_many() returns; before the QUEUED
 * callback of mqim_send_nowait()), all or nothing, the bound on what waits,
 * and every error.
 *
 * "Durably stored" is checked the strongest way a test can without a power
 * cut: the client is closed and created again on the same data folder, and
 * the outbox still lists every message, in order, with its id.
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
#include "tfullvfs.h"

#define PW "pw-Many-63"
#define WAIT_MS 30000

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const users[] = { "alice", "bob", "carol", NULL };
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

/* ---- helpers --------------------------------------------------------------- */

/* alice created (not connected) on dir. */
static void alice_create(struct tc *t, const char *dir)
{
	struct mqim_options o;
	tc_options(&o, broker.port, "alice", PW, dir);
	tc_init(t);
	assert_int_equal(tc_create(t, &o), MQIM_OK);
}

struct listing {
	uint8_t (*ids)[16];
	char (*bodies)[32];
	size_t n, cap;
};

static int list_cb(void *ctx, const struct mqim_outbox_entry *e)
{
	struct listing *l = ctx;
	if (l->n < l->cap) {
		memcpy(l->ids[l->n], e->id, 16);
		snprintf(l->bodies[l->n], 32, "%.*s", (int)e->body_len, (const char *)e->body);
	}
	l->n++;
	return 0;
}

/* The outbox of t lists exactly ids[0..n-1], in that order, with bodies
 * "m0", "m1"... */
static void assert_outbox(struct tc *t, uint8_t ids[][16], size_t n)
{
	struct listing l = { calloc(n + 1, 16), calloc(n + 1, 32), 0, n + 1 };
	char want[32];
	assert_int_equal(mqim_outbox(t->c, list_cb, &l), (int)n);
	assert_int_equal(l.n, n);
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof want, "m%zu", i);
		assert_memory_equal(l.ids[i], ids[i], 16);
		assert_string_equal(l.bodies[i], want);
	}
	free(l.ids);
	free(l.bodies);
}

static void fill(struct mqim_outgoing *m, char (*bodies)[32], size_t from, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		m[i] = (struct mqim_outgoing)MQIM_OUTGOING_INIT;
		snprintf(bodies[i], 32, "m%zu", from + i);
		m[i].to = "bob";
		m[i].body = bodies[i];
		m[i].body_len = strlen(bodies[i]);
	}
}

/* bob online and subscribed: a first message from carol reached him
 * (else what alice publishes before his subscription reaches nobody and
 * comes later, by a resend). */
static void bob_ready(struct tc *b, char *dir, size_t dirlen)
{
	struct tc c;
	char cdir[256];
	tc_tmpdir(dir, dirlen, "bob");
	tc_tmpdir(cdir, sizeof cdir, "carol");
	assert_int_equal(tc_open(b, broker.port, "bob", PW, dir), MQIM_OK);
	assert_int_equal(tc_open(&c, broker.port, "carol", PW, cdir), MQIM_OK);
	assert_true(tc_wait_state(b, MQIM_STATE_CONNECTED, WAIT_MS));
	for (int i = 0; i < 50 && tc_nmsgs(b) == 0; i++) {
		assert_int_equal(mqim_send(c.c, "bob", false, NULL, "ready", 5, 0, NULL), MQIM_OK);
		tc_wait_msgs(b, 1, 200);
	}
	assert_true(tc_nmsgs(b) >= 1);
	tc_close(&c);
	tc_rmdir(cdir);
}

/* bob (ready) then gets m0..m{n-1} from alice with these ids, in order,
 * once each, after carol's. */
static void bob_receives(struct tc *b, char *dir, uint8_t ids[][16], size_t n)
{
	char want[32];
	size_t from = tc_nmsgs(b);
	assert_true(tc_wait_msgs(b, from + n, WAIT_MS));
	tc_sleep(200);
	pthread_mutex_lock(&b->mu);
	assert_int_equal(b->nmsgs, from + n);
	for (size_t i = 0; i < n; i++) {
		snprintf(want, sizeof want, "m%zu", i);
		assert_string_equal(b->msgs[from + i].body, want);
		assert_memory_equal(b->msgs[from + i].id, ids[i], 16);
	}
	pthread_mutex_unlock(&b->mu);
	tc_close(b);
	tc_rmdir(dir);
}

/* alice's outbox holds ids[0..n-1] in order, and still does when she is
 * closed and created again on dir (so they are on disk); then, connected,
 * she delivers them to bob in that order. */
static void restart_and_deliver(struct tc *a, const char *dir, uint8_t ids[][16], size_t n)
{
	struct tc b;
	char bdir[256];
	assert_outbox(a, ids, n);
	tc_close(a);
	alice_create(a, dir);
	assert_outbox(a, ids, n);
	bob_ready(&b, bdir, sizeof bdir);
	assert_int_equal(mqim_connect(a->c), MQIM_OK);
	bob_receives(&b, bdir, ids, n);
}

static int64_t count_state(struct tc *t, int st)
{
	int64_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nms; i++)
		n += t->ms[i].state == st;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static bool wait_count_state(struct tc *t, int st, int64_t n, int timeout_ms)
{
	int64_t end = tc_now() + timeout_ms;
	while (count_state(t, st) < n && tc_now() < end)
		tc_sleep(10);
	return count_state(t, st) >= n;
}

/* ---- mqim_send_many --------------------------------------------------------- */

/* 300 messages in two calls: the ids come back in array order, the outbox
 * holds them in that order as soon as the call returns, also after a
 * restart, and bob gets them in that order. */
static void test_many_order_ids_durable(void **state)
{
	enum { N = 300, FIRST = MQIM_SEND_MANY_MAX < 256 ? MQIM_SEND_MANY_MAX : 256 };
	struct tc a;
	char dir[256];
	struct mqim_outgoing m[N];
	char bodies[N][32];
	uint8_t ids[N][16];
	(void)state;

	tc_tmpdir(dir, sizeof dir, "alice");
	alice_create(&a, dir);
	fill(m, bodies, 0, N);
	assert_int_equal(mqim_send_many(a.c, m, FIRST, ids), MQIM_OK);
	assert_int_equal(mqim_send_many(a.c, m + FIRST, N - FIRST, ids + FIRST), MQIM_OK);
	for (size_t i = 1; i < N; i++)   /* distinct, increasing UUIDv7s */
		assert_true(memcmp(ids[i - 1], ids[i], 16) < 0);
	enum mqim_msg_state st;
	assert_int_equal(mqim_message_state(a.c, ids[N - 1], &st), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_QUEUED);
	restart_and_deliver(&a, dir, ids, N);
	for (size_t i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&a, ids[i], MQIM_MSG_DELIVERED, WAIT_MS));
	tc_close(&a);
	tc_rmdir(dir);
}

/* Every error queues nothing and leaves ids_out as it was. */
static void test_many_errors(void **state)
{
	struct tc a;
	char dir[256];
	struct mqim_outgoing m[4];
	char bodies[4][32];
	uint8_t ids[4][16], zero[4][16];
	(void)state;

	tc_tmpdir(dir, sizeof dir, "alice");
	tfullvfs_watch(dir);
	alice_create(&a, dir);
	memset(ids, 0, sizeof ids);
	memset(zero, 0, sizeof zero);
	fill(m, bodies, 0, 4);
	assert_int_equal(mqim_send_many(NULL, m, 4, ids), MQIM_EINVAL);
	assert_int_equal(mqim_send_many(a.c, NULL, 4, ids), MQIM_EINVAL);
	assert_int_equal(mqim_send_many(a.c, m, 0, ids), MQIM_EINVAL);
	assert_int_equal(mqim_send_many(a.c, m, MQIM_SEND_MANY_MAX + 1, ids), MQIM_EINVAL);

	/* One bad message in the middle: the first bad one decides. */
	m[2].to = "not a name";
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_EBADNAME);
	m[2].to = "bob";
	m[1].version = MQIM_OUTGOING_VERSION + 1;
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_EINVAL);
	m[1].version = MQIM_OUTGOING_VERSION;
	m[3].qos = 3;
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_EINVAL);
	m[3].qos = 1;
	m[0].body = NULL;   /* with a length: invalid */
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_EINVAL);
	m[0].body = bodies[0];
	size_t big_len = 70000;   /* over options.max_payload (65536) */
	char *big = calloc(1, big_len);
	m[2].body = big;
	m[2].body_len = big_len;
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_ETOOBIG);
	m[2].body = bodies[2];
	m[2].body_len = strlen(bodies[2]);
	free(big);
	assert_memory_equal(ids, zero, sizeof ids);

	/* A full disk: nothing queued, all of them. */
	tfullvfs_set_full(true);
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_ENOSPC);
	tfullvfs_set_full(false);
	assert_memory_equal(ids, zero, sizeof ids);
	struct listing l = { calloc(1, 16), calloc(1, 32), 0, 1 };
	assert_int_equal(mqim_outbox(a.c, list_cb, &l), 0);
	free(l.ids);
	free(l.bodies);

	/* Logged out: closed for sending. */
	assert_int_equal(mqim_logout(a.c), MQIM_OK);
	assert_int_equal(mqim_send_many(a.c, m, 4, ids), MQIM_ECLOSED);
	tc_close(&a);
	tfullvfs_watch(NULL);
	tc_rmdir(dir);
}

/* ---- mqim_send_nowait ----------------------------------------------------- */

/* 200 nowait sends: the ids come back at once, QUEUED is reported for each,
 * in sending order, once stored (the outbox then lists them, also after a
 * restart), and bob gets them in order. */
static void test_nowait_order_queued(void **state)
{
	enum { N = 200 };
	struct tc a;
	char dir[256], text[32];
	uint8_t ids[N][16];
	(void)state;

	tc_tmpdir(dir, sizeof dir, "alice");
	alice_create(&a, dir);
	for (size_t i = 0; i < N; i++) {
		snprintf(text, sizeof text, "m%zu", i);
		assert_int_equal(mqim_send_nowait(a.c, "bob", false, NULL, text, strlen(text), 1, ids[i]),
				 MQIM_OK);
	}
	assert_true(wait_count_state(&a, MQIM_MSG_QUEUED, N, WAIT_MS));
	/* QUEUED came in sending order (tc keeps the first report's order). */
	pthread_mutex_lock(&a.mu);
	assert_int_equal(a.nms, N);
	for (size_t i = 0; i < N; i++)
		assert_memory_equal(a.ms[i].id, ids[i], 16);
	pthread_mutex_unlock(&a.mu);
	restart_and_deliver(&a, dir, ids, N);
	tc_close(&a);
	tc_rmdir(dir);
}

/* Errors of the checks come back from the call (no callback); a message
 * that cannot be stored is reported FAILED with the store's error and is
 * not in the outbox; after a logout, FAILED with MQIM_ECLOSED. */
static void test_nowait_errors(void **state)
{
	struct tc a;
	char dir[256];
	uint8_t id[16], bad[16];
	enum mqim_msg_state st;
	(void)state;

	tc_tmpdir(dir, sizeof dir, "alice");
	tfullvfs_watch(dir);
	alice_create(&a, dir);
	memset(bad, 0xAB, sizeof bad);
	memcpy(id, bad, 16);
	assert_int_equal(mqim_send_nowait(NULL, "bob", false, NULL, "x", 1, 1, id), MQIM_EINVAL);
	assert_int_equal(mqim_send_nowait(a.c, "no way", false, NULL, "x", 1, 1, id), MQIM_EBADNAME);
	assert_int_equal(mqim_send_nowait(a.c, "bob", false, NULL, "x", 1, 5, id), MQIM_EINVAL);
	assert_int_equal(mqim_send_nowait(a.c, "bob", false, "", "x", 1, 1, id), MQIM_EINVAL);
	assert_memory_equal(id, bad, 16);

	tfullvfs_set_full(true);
	assert_int_equal(mqim_send_nowait(a.c, "bob", false, NULL, "lost", 4, 1, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_FAILED, WAIT_MS));
	tfullvfs_set_full(false);
	pthread_mutex_lock(&a.mu);
	assert_int_equal(a.ms[a.nms - 1].err, MQIM_ENOSPC);
	pthread_mutex_unlock(&a.mu);
	assert_int_equal(mqim_message_state(a.c, id, &st), MQIM_ENOTFOUND);
	assert_int_equal(mqim_retry(a.c, id), MQIM_ENOTFOUND);

	assert_int_equal(mqim_logout(a.c), MQIM_OK);
	assert_int_equal(mqim_send_nowait(a.c, "bob", false, NULL, "late", 4, 1, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_FAILED, WAIT_MS));
	pthread_mutex_lock(&a.mu);
	assert_int_equal(a.ms[a.nms - 1].err, MQIM_ECLOSED);
	pthread_mutex_unlock(&a.mu);
	tc_close(&a);
	tfullvfs_watch(NULL);
	tc_rmdir(dir);
}

/* The bound: while the library thread is busy (in a callback), at most
 * MQIM_NOWAIT_MAX messages wait to be stored; the next is MQIM_EBUSY and
 * queues nothing; once the thread is back, every accepted one is QUEUED. */
struct blocker {
	struct tc t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool blocked, release;
};

static void block_on_first(mqim_client *c, const uint8_t id[16], enum mqim_msg_state st, int err,
			   void *ud)
{
	struct blocker *b = ud;
	tc_on_msg_state(c, id, st, err, &b->t);
	pthread_mutex_lock(&b->mu);
	if (!b->blocked) {
		b->blocked = true;
		pthread_cond_broadcast(&b->cv);
		while (!b->release)
			pthread_cond_wait(&b->cv, &b->mu);
	}
	pthread_mutex_unlock(&b->mu);
}

static void test_nowait_bound(void **state)
{
	struct blocker b;
	struct mqim_options o;
	struct mqim_callbacks cb = MQIM_CALLBACKS_INIT;
	char dir[256];
	uint8_t id[16];
	(void)state;

	memset(&b, 0, sizeof b);
	pthread_mutex_init(&b.mu, NULL);
	pthread_cond_init(&b.cv, NULL);
	tc_init(&b.t);
	tc_tmpdir(dir, sizeof dir, "alice");
	tc_options(&o, broker.port, "alice", PW, dir);
	cb.on_message_state = block_on_first;
	snprintf(b.t.dir, sizeof b.t.dir, "%s", dir);
	assert_int_equal(mqim_create(&o, &cb, &b, &b.t.c), MQIM_OK);

	assert_int_equal(mqim_send_nowait(b.t.c, "bob", false, NULL, "first", 5, 1, id), MQIM_OK);
	pthread_mutex_lock(&b.mu);
	while (!b.blocked)
		pthread_cond_wait(&b.cv, &b.mu);
	pthread_mutex_unlock(&b.mu);
	/* The library thread is in the callback of the first: the rest waits. */
	for (int i = 0; i < MQIM_NOWAIT_MAX; i++)
		assert_int_equal(mqim_send_nowait(b.t.c, "bob", false, NULL, "x", 1, 1, NULL), MQIM_OK);
	assert_int_equal(mqim_send_nowait(b.t.c, "bob", false, NULL, "x", 1, 1, id), MQIM_EBUSY);
	pthread_mutex_lock(&b.mu);
	b.release = true;
	pthread_cond_broadcast(&b.cv);
	pthread_mutex_unlock(&b.mu);
	assert_true(wait_count_state(&b.t, MQIM_MSG_QUEUED, 1 + MQIM_NOWAIT_MAX, WAIT_MS));
	/* And there is room again. */
	assert_int_equal(mqim_send_nowait(b.t.c, "bob", false, NULL, "x", 1, 1, NULL), MQIM_OK);
	assert_true(wait_count_state(&b.t, MQIM_MSG_QUEUED, 2 + MQIM_NOWAIT_MAX, WAIT_MS));
	tc_close(&b.t);
	pthread_mutex_destroy(&b.mu);
	pthread_cond_destroy(&b.cv);
	tc_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_order_ids_durable),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_nowait_order_queued),
		cmocka_unit_test(test_nowait_errors),
		cmocka_unit_test(test_nowait_bound),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
