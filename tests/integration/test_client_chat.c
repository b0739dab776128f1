/* test_client_chat.c - libmqim against a real broker with the plugin:
 * one-to-one and group chat at QoS 0, 1 and 2 with delivery and read
 * receipts, presence, a foreign raw MQTT client both ways, a wrong password
 * reported once, and a logged-out client that stays logged out.
 *
 * One broker serves the file: users alice, bob, carol, dave, erin; group
 * team = {alice, bob, carol}.  Each test uses its own data folders (and so
 * its own client ids).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "envelope.h"
#include "tbroker.h"
#include "tclient.h"
#include "test_client_util.h"

#define PW "pw-Tc-31"
#define WAIT_MS 10000

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const team[] = { "alice", "bob", "carol", NULL };
	(void)state;
	if (tbroker_init(&broker, NULL) != 0 ||
	    tbroker_add_user(&broker, "alice", PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", PW, false) != 0 ||
	    tbroker_add_user(&broker, "carol", PW, false) != 0 ||
	    tbroker_add_user(&broker, "dave", PW, false) != 0 ||
	    tbroker_add_user(&broker, "erin", PW, false) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
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

struct pair {
	struct tc a, b;
	char da[256], db[256];
};

static void pair_open(struct pair *p, const char *ua, const char *ub)
{
	tc_tmpdir(p->da, sizeof p->da, ua);
	tc_tmpdir(p->db, sizeof p->db, ub);
	assert_int_equal(tc_open(&p->a, broker.port, ua, PW, p->da), MQIM_OK);
	assert_int_equal(tc_open(&p->b, broker.port, ub, PW, p->db), MQIM_OK);
	assert_true(tc_wait_state(&p->a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_state(&p->b, MQIM_STATE_CONNECTED, WAIT_MS));
}

static void pair_close(struct pair *p)
{
	tc_close(&p->a);
	tc_close(&p->b);
	tc_rmdir(p->da);
	tc_rmdir(p->db);
}

/* alice sends n messages to bob at qos; bob gets each once, in order;
 * alice sees them delivered; bob reads them; alice sees them read. */
static void direct(int qos)
{
	enum { N = 20 };
	struct pair p;
	uint8_t ids[N][16];
	char text[64];

	pair_open(&p, "alice", "bob");
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "hello %d at qos %d", i, qos);
		assert_int_equal(mqim_send(p.a.c, "bob", false, NULL, text, strlen(text), qos, ids[i]),
				 MQIM_OK);
	}
	assert_true(tc_wait_msgs(&p.b, N, WAIT_MS));
	tc_sleep(300);
	assert_int_equal(tc_nmsgs(&p.b), N);
	for (int i = 0; i < N; i++) {
		snprintf(text, sizeof text, "hello %d at qos %d", i, qos);
		assert_string_equal(p.b.msgs[i].body, text);
		assert_string_equal(p.b.msgs[i].from, "alice");
		assert_string_equal(p.b.msgs[i].to, "bob");
		assert_false(p.b.msgs[i].is_group);
		assert_memory_equal(p.b.msgs[i].id, ids[i], 16);
		assert_true(p.b.msgs[i].bts > 0);
	}
	for (int i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&p.a, ids[i], MQIM_MSG_DELIVERED, WAIT_MS));

	/* Read receipts. */
	for (int i = 0; i < N; i++)
		assert_int_equal(mqim_mark_read(p.b.c, "alice", ids[i]), MQIM_OK);
	assert_int_equal(mqim_mark_read(p.b.c, "alice", ids[0]), MQIM_OK);   /* again: nothing */
	for (int i = 0; i < N; i++)
		assert_true(tc_wait_msg_state(&p.a, ids[i], MQIM_MSG_READ, WAIT_MS));
	enum mqim_msg_state st;
	assert_int_equal(mqim_message_state(p.a.c, ids[N - 1], &st), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_READ);
	assert_int_equal(mqim_message_state(p.b.c, ids[0], &st), MQIM_ENOTFOUND);

	/* Both sides keep the conversation. */
	assert_int_equal(mqim_history(p.b.c, "alice", false, 0, NULL, 100, NULL, NULL), MQIM_EINVAL);
	pair_close(&p);
}

static void test_direct_qos0(void **state) { (void)state; direct(0); }
static void test_direct_qos1(void **state) { (void)state; direct(1); }
static void test_direct_qos2(void **state) { (void)state; direct(2); }

static int count_cb(void *ctx, const struct mqim_message *m)
{
	int *n = ctx;
	(void)m;
	(*n)++;
	return 0;
}

static void group(int qos)
{
	struct pair p;
	struct tc carol;
	char dc[256];
	const char *groups[] = { "team", NULL };
	uint8_t id[16];
	struct mqim_options o;

	tc_tmpdir(p.da, sizeof p.da, "alice");
	tc_tmpdir(p.db, sizeof p.db, "bob");
	tc_tmpdir(dc, sizeof dc, "carol");
	tc_options(&o, broker.port, "alice", PW, p.da);
	o.groups = groups;
	tc_init(&p.a);
	assert_int_equal(tc_create(&p.a, &o), MQIM_OK);
	assert_int_equal(mqim_connect(p.a.c), MQIM_OK);
	tc_options(&o, broker.port, "bob", PW, p.db);
	o.groups = groups;
	tc_init(&p.b);
	assert_int_equal(tc_create(&p.b, &o), MQIM_OK);
	assert_int_equal(mqim_connect(p.b.c), MQIM_OK);
	assert_int_equal(tc_open(&carol, broker.port, "carol", PW, dc), MQIM_OK);
	assert_true(tc_wait_state(&carol, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(mqim_join_group(carol.c, "team"), MQIM_OK);   /* joined while connected */
	assert_true(tc_wait_state(&p.a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_true(tc_wait_state(&p.b, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_sleep(300);   /* let the subscriptions land */

	assert_int_equal(mqim_send(p.a.c, "team", true, NULL, "hi team", 7, qos, id), MQIM_OK);
	assert_true(tc_wait_msgs(&p.b, 1, WAIT_MS));
	assert_true(tc_wait_msgs(&carol, 1, WAIT_MS));
	assert_string_equal(p.b.msgs[0].body, "hi team");
	assert_true(p.b.msgs[0].is_group);
	assert_string_equal(p.b.msgs[0].to, "team");
	assert_string_equal(carol.msgs[0].from, "alice");
	/* Receipts go to alice's inbox. */
	assert_true(tc_wait_msg_state(&p.a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	assert_int_equal(mqim_mark_read(carol.c, "alice", id), MQIM_OK);
	assert_true(tc_wait_msg_state(&p.a, id, MQIM_MSG_READ, WAIT_MS));
	/* The sender does not get its own message back. */
	tc_sleep(300);
	assert_int_equal(tc_nmsgs(&p.a), 0);
	/* Everyone has it in the group's history. */
	int n = 0;
	assert_int_equal(mqim_history(p.a.c, "team", true, 0, NULL, 10, count_cb, &n), 1);
	assert_int_equal(mqim_history(carol.c, "team", true, 0, NULL, 10, count_cb, &n), 1);
	assert_int_equal(n, 2);

	tc_close(&carol);
	tc_rmdir(dc);
	pair_close(&p);
}

static void test_group_qos0(void **state) { (void)state; group(0); }
static void test_group_qos1(void **state) { (void)state; group(1); }
static void test_group_qos2(void **state) { (void)state; group(2); }

/* A group the user is not in: the broker refuses the subscription and the
 * send; both come back as errors, nothing hangs. */
static void test_group_not_member(void **state)
{
	struct tc d;
	char dir[256];
	uint8_t id[16];
	(void)state;
	tc_tmpdir(dir, sizeof dir, "dave");
	assert_int_equal(tc_open(&d, broker.port, "dave", PW, dir), MQIM_OK);
	assert_true(tc_wait_state(&d, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(mqim_join_group(d.c, "team"), MQIM_OK);
	assert_int_equal(mqim_send(d.c, "team", true, NULL, "let me in", 9, 1, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&d, id, MQIM_MSG_FAILED, WAIT_MS));
	assert_true(d.nerrors >= 1);
	assert_int_equal(mqim_get_state(d.c), MQIM_STATE_CONNECTED);
	tc_close(&d);
	tc_rmdir(dir);
}

/* History paging: newest first, strictly before the cursor. */
struct collect {
	int n;
	uint64_t last_bts;
	uint8_t last_id[16];
	char bodies[64][32];
};

static int collect_cb(void *ctx, const struct mqim_message *m)
{
	struct collect *c = ctx;
	if (c->n < 64)
		snprintf(c->bodies[c->n], sizeof c->bodies[0], "%s", (const char *)m->body);
	c->n++;
	c->last_bts = m->bts;
	memcpy(c->last_id, m->id, 16);
	return 0;
}

static void test_history_paging(void **state)
{
	struct pair p;
	char text[32];
	uint8_t id[16];
	(void)state;
	pair_open(&p, "alice", "bob");
	for (int i = 0; i < 25; i++) {
		snprintf(text, sizeof text, "m%02d", i);
		assert_int_equal(mqim_send(p.a.c, "bob", false, NULL, text, strlen(text), 1, id), MQIM_OK);
	}
	assert_true(tc_wait_msgs(&p.b, 25, WAIT_MS));
	struct collect c1 = { 0 }, c2 = { 0 }, c3 = { 0 };
	assert_int_equal(mqim_history(p.b.c, "alice", false, 0, NULL, 10, collect_cb, &c1), 10);
	assert_string_equal(c1.bodies[0], "m24");
	assert_string_equal(c1.bodies[9], "m15");
	assert_int_equal(mqim_history(p.b.c, "alice", false, c1.last_bts, c1.last_id, 10,
				      collect_cb, &c2), 10);
	assert_string_equal(c2.bodies[0], "m14");
	assert_int_equal(mqim_history(p.b.c, "alice", false, c2.last_bts, c2.last_id, 10,
				      collect_cb, &c3), 5);
	assert_string_equal(c3.bodies[4], "m00");
	/* The sender's side too. */
	struct collect c4 = { 0 };
	assert_int_equal(mqim_history(p.a.c, "bob", false, 0, NULL, 100, collect_cb, &c4), 25);
	assert_string_equal(c4.bodies[0], "m24");
	pair_close(&p);
}

/* Presence: online when connected, offline (the will, or the close). */
static void test_presence(void **state)
{
	struct tc w, e;
	char dw[256], de[256];
	(void)state;
	tc_tmpdir(dw, sizeof dw, "dave");
	tc_tmpdir(de, sizeof de, "erin");
	assert_int_equal(tc_open(&e, broker.port, "erin", PW, de), MQIM_OK);
	assert_true(tc_wait_state(&e, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(tc_open(&w, broker.port, "dave", PW, dw), MQIM_OK);
	assert_int_equal(mqim_watch_presence(w.c, "erin"), MQIM_OK);
	assert_true(tc_wait_state(&w, MQIM_STATE_CONNECTED, WAIT_MS));
	int64_t end = tc_now() + WAIT_MS;
	while (tc_now() < end) {
		pthread_mutex_lock(&w.mu);
		int on = w.presence_online;
		pthread_mutex_unlock(&w.mu);
		if (on == 1)
			break;
		tc_sleep(20);
	}
	assert_int_equal(w.presence_online, 1);
	assert_string_equal(w.presence_user, "erin");
	tc_close(&e);
	end = tc_now() + WAIT_MS;
	while (tc_now() < end) {
		pthread_mutex_lock(&w.mu);
		int on = w.presence_online;
		pthread_mutex_unlock(&w.mu);
		if (on == 0)
			break;
		tc_sleep(20);
	}
	assert_int_equal(w.presence_online, 0);
	tc_close(&w);
	tc_rmdir(dw);
	tc_rmdir(de);
}

/* A raw MQTT client (no libmqim) talks to a libmqim client both ways. */
static void test_foreign_client(void **state)
{
	struct tc a;
	char da[256];
	uint8_t rid[16], id[16];
	void *buf = NULL;
	struct tmsg m;
	struct mqim_env env;
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	assert_int_equal(tc_open(&a, broker.port, "alice", PW, da), MQIM_OK);
	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));

	struct tclient *raw = tclient_new(broker.port, "erin/raw");
	assert_non_null(raw);
	assert_int_equal(tclient_connect(raw, "erin", PW), 0);
	assert_int_equal(tclient_subscribe(raw, "im/u/erin", 1), 1);

	/* raw -> alice: alice gets it and her library sends a rcpt back. */
	size_t len = tenv_build(&buf, "msg", "erin", "alice", "from a raw client", rid);
	assert_true(len > 0);
	assert_int_equal(tclient_publish(raw, "im/u/alice", buf, len, 1, false), 0);
	free(buf);
	assert_true(tc_wait_msgs(&a, 1, WAIT_MS));
	assert_string_equal(a.msgs[0].body, "from a raw client");
	assert_string_equal(a.msgs[0].from, "erin");
	assert_memory_equal(a.msgs[0].id, rid, 16);
	assert_int_equal(tclient_recv(raw, &m, WAIT_MS), 1);
	assert_string_equal(m.topic, "im/u/erin");
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &env, NULL), MQIM_OK);
	assert_true(mqim_str_eq(env.t, "rcpt"));
	assert_true(mqim_str_eq(env.fr, "alice"));
	assert_true(mqim_str_eq(env.to, "erin"));
	assert_true(env.has_ref);
	assert_memory_equal(env.ref, rid, 16);
	tmsg_free(&m);

	/* alice -> raw: a valid envelope arrives; a rcpt built by hand marks
	 * it delivered. */
	assert_int_equal(mqim_send(a.c, "erin", false, NULL, "to a raw client", 15, 1, id), MQIM_OK);
	assert_int_equal(tclient_recv(raw, &m, WAIT_MS), 1);
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &env, NULL), MQIM_OK);
	assert_true(mqim_str_eq(env.t, "msg"));
	assert_true(mqim_str_eq(env.fr, "alice"));
	assert_true(env.has_bts);
	assert_memory_equal(env.id, id, 16);
	assert_int_equal(env.body_len, 15);
	assert_memory_equal(env.body, "to a raw client", 15);
	tmsg_free(&m);

	struct mqim_env r;
	memset(&r, 0, sizeof r);
	r.v = 1;
	memcpy(r.id, rid, 16);
	r.id[15] ^= 0x5a;
	r.t = (struct mqim_str){ "rcpt", 4 };
	r.fr = (struct mqim_str){ "erin", 4 };
	r.to = (struct mqim_str){ "alice", 5 };
	r.ts = 1;
	memcpy(r.ref, id, 16);
	r.has_ref = true;
	assert_int_equal(mqim_env_encode(&r, &buf, &len), MQIM_OK);
	assert_int_equal(tclient_publish(raw, "im/u/alice", buf, len, 1, false), 0);
	free(buf);
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_DELIVERED, WAIT_MS));

	/* A rcpt from someone who is not the recipient changes nothing. */
	tclient_disconnect(raw);
	tclient_free(raw);
	tc_close(&a);
	tc_rmdir(da);
}

/* A wrong password: AUTH_FAILED, reported once, no retry loop. */
static void test_wrong_password(void **state)
{
	struct tc t;
	char dir[256];
	(void)state;
	tc_tmpdir(dir, sizeof dir, "bob");
	assert_int_equal(tc_open(&t, broker.port, "bob", "not-the-password", dir), MQIM_OK);
	assert_true(tc_wait_state(&t, MQIM_STATE_AUTH_FAILED, WAIT_MS));
	tc_sleep(2500);   /* several backoff periods */
	assert_int_equal(tc_state_count(&t, MQIM_STATE_AUTH_FAILED), 1);
	assert_int_equal(tc_state_count(&t, MQIM_STATE_CONNECTING), 1);
	assert_int_equal(mqim_get_state(t.c), MQIM_STATE_AUTH_FAILED);
	pthread_mutex_lock(&t.mu);
	int err = t.state_errs[t.nstates - 1];
	pthread_mutex_unlock(&t.mu);
	assert_int_equal(err, MQIM_EAUTH);
	/* Sends still queue, durably, for when the password is fixed. */
	uint8_t id[16];
	assert_int_equal(mqim_send(t.c, "alice", false, NULL, "x", 1, 1, id), MQIM_OK);
	enum mqim_msg_state st;
	assert_int_equal(mqim_message_state(t.c, id, &st), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_QUEUED);
	tc_close(&t);
	tc_rmdir(dir);
}

/* Logged out: stays out, even when the broker would take it back. */
static void test_logout_stays_out(void **state)
{
	struct tc t;
	char dir[256];
	(void)state;
	tc_tmpdir(dir, sizeof dir, "carol");
	assert_int_equal(tc_open(&t, broker.port, "carol", PW, dir), MQIM_OK);
	assert_true(tc_wait_state(&t, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(mqim_logout(t.c), MQIM_OK);
	assert_int_equal(mqim_get_state(t.c), MQIM_STATE_LOGGED_OUT);
	tc_sleep(1500);
	assert_int_equal(tc_state_count(&t, MQIM_STATE_CONNECTING), 1);
	assert_int_equal(mqim_get_state(t.c), MQIM_STATE_LOGGED_OUT);
	assert_int_equal(mqim_connect(t.c), MQIM_ECLOSED);
	assert_int_equal(mqim_reconnect(t.c), MQIM_ECLOSED);
	uint8_t id[16];
	assert_int_equal(mqim_send(t.c, "alice", false, NULL, "x", 1, 1, id), MQIM_ECLOSED);
	/* History stays readable. */
	int n = 0;
	assert_true(mqim_history(t.c, "alice", false, 0, NULL, 10, count_cb, &n) >= 0);
	tc_close(&t);
	tc_rmdir(dir);
}

/* Marking read from inside on_message (the library thread) works. */
static void test_read_from_callback(void **state)
{
	struct pair p;
	uint8_t id[16];
	(void)state;
	pair_open(&p, "alice", "bob");
	p.b.mark_read = true;
	assert_int_equal(mqim_send(p.a.c, "bob", false, NULL, "read me", 7, 1, id), MQIM_OK);
	assert_true(tc_wait_msg_state(&p.a, id, MQIM_MSG_READ, WAIT_MS));
	pair_close(&p);
}

/* Nothing listens: after max_attempts the client gives up and waits;
 * mqim_reconnect() starts again. */
static void test_gave_up_and_reconnect(void **state)
{
	struct tc t;
	struct mqim_options o;
	char dir[256];
	(void)state;
	tc_tmpdir(dir, sizeof dir, "alice");
	tc_options(&o, 1, "alice", PW, dir);   /* port 1: connection refused */
	o.max_attempts = 3;
	o.backoff_min_ms = 50;
	o.backoff_max_ms = 100;
	tc_init(&t);
	assert_int_equal(tc_create(&t, &o), MQIM_OK);
	assert_int_equal(mqim_connect(t.c), MQIM_OK);
	assert_true(tc_wait_state(&t, MQIM_STATE_GAVE_UP, WAIT_MS));
	assert_int_equal(tc_state_count(&t, MQIM_STATE_CONNECTING), 3);
	tc_sleep(500);
	assert_int_equal(tc_state_count(&t, MQIM_STATE_CONNECTING), 3);
	int before = tc_nstates(&t);
	assert_int_equal(mqim_reconnect(t.c), MQIM_OK);
	assert_true(tc_wait_state_after(&t, MQIM_STATE_CONNECTING, before, WAIT_MS));
	assert_true(tc_wait_state_after(&t, MQIM_STATE_GAVE_UP, before, WAIT_MS));
	tc_close(&t);
	tc_rmdir(dir);
}

/* The same client id logs in elsewhere.  A broker that says so (DISCONNECT
 * 0x8E) gets TAKEN_OVER and no reconnect; Mosquitto 2.0 just closes the old
 * connection, and then the short-lived connections count as failures and
 * back off: either way, no reconnect storm between the two. */
static void test_taken_over_no_storm(void **state)
{
	struct tc t1, t2;
	struct mqim_options o;
	char d1[256], d2[256];
	(void)state;
	tc_tmpdir(d1, sizeof d1, "bob");
	tc_tmpdir(d2, sizeof d2, "bob");
	tc_options(&o, broker.port, "bob", PW, d1);
	o.client_id = "bob/shared";
	o.backoff_min_ms = 1000;
	o.backoff_max_ms = 60000;
	tc_init(&t1);
	assert_int_equal(tc_create(&t1, &o), MQIM_OK);
	assert_int_equal(mqim_connect(t1.c), MQIM_OK);
	assert_true(tc_wait_state(&t1, MQIM_STATE_CONNECTED, WAIT_MS));
	o.data_dir = d2;
	tc_init(&t2);
	assert_int_equal(tc_create(&t2, &o), MQIM_OK);
	assert_int_equal(mqim_connect(t2.c), MQIM_OK);
	assert_true(tc_wait_state(&t2, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_sleep(6000);
	int n1 = tc_state_count(&t1, MQIM_STATE_CONNECTING);
	int n2 = tc_state_count(&t2, MQIM_STATE_CONNECTING);
	/* Without damping, about 15 each in 6 s; with it, at most 4 or 5. */
	assert_true(n1 <= 5);
	assert_true(n2 <= 5);
	tc_close(&t1);
	tc_close(&t2);
	tc_rmdir(d1);
	tc_rmdir(d2);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_direct_qos0),
		cmocka_unit_test(test_direct_qos1),
		cmocka_unit_test(test_direct_qos2),
		cmocka_unit_test(test_group_qos0),
		cmocka_unit_test(test_group_qos1),
		cmocka_unit_test(test_group_qos2),
		cmocka_unit_test(test_group_not_member),
		cmocka_unit_test(test_history_paging),
		cmocka_unit_test(test_presence),
		cmocka_unit_test(test_foreign_client),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_logout_stays_out),
		cmocka_unit_test(test_read_from_callback),
		cmocka_unit_test(test_gave_up_and_reconnect),
		cmocka_unit_test(test_taken_over_no_storm),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, setup, teardown);
}
