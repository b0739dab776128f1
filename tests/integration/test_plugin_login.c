/* test_plugin_login.c - logins, client ids, session takeover and wills,
 * against a real mosquitto with the plugin (docs/protocol.md, Names and
 * Sessions).
 *
 * One broker serves the whole file (users alice, bob, dave (disabled), a
 * 64-character name, and the group team = {alice, bob}; the login lockout
 * off); the allow_anonymous test starts a second one.  Every test uses its own client
 * ids so that no test depends on another.
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

#define NOT_AUTHORIZED 0x87
#define QUIET_MS 700   /* how long "nothing arrives" is watched */

#define ALICE_PW "alice-Pw-93kq"
#define BOB_PW   "bob-Pw-11zx"
#define DAVE_PW  "dave-Pw-55mn"
#define LONG_PW  "long-Pw-0"
#define LONG_NAME "a123456789b123456789c123456789d123456789e123456789f123456789g123"

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const team[] = { "alice", "bob", NULL };
	/* This file makes many failed logins as alice on purpose; the lockout
	 * after repeated failures (tested on its own) would hide what each
	 * check answers, so it is off here. */
	if (tbroker_init(&broker, "plugin_opt_lockout_failures 0\n") != 0 ||
	    tbroker_add_user(&broker, "alice", ALICE_PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", BOB_PW, false) != 0 ||
	    tbroker_add_user(&broker, "dave", DAVE_PW, false) != 0 ||
	    tbroker_set_disabled(&broker, "dave", true) != 0 ||
	    tbroker_add_user(&broker, LONG_NAME, LONG_PW, false) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_start(&broker) != 0)
		goto fail;
	return 0;
fail:
	tbroker_cleanup(&broker);
	return -1;
}

static int teardown(void **state)
{
	return tbroker_cleanup(&broker) == 0 ? 0 : -1;
}

/* CONNACK code of one login attempt. */
static int try_login(int port, const char *client_id, const char *user, const char *pass)
{
	struct tclient *c = tclient_new(port, client_id);
	assert_non_null(c);
	int rc = tclient_connect(c, user, pass);
	tclient_free(c);
	return rc;
}

static void login_good(void **state)
{
	assert_int_equal(try_login(broker.port, "alice", "alice", ALICE_PW), 0);
	assert_int_equal(try_login(broker.port, "alice/phone", "alice", ALICE_PW), 0);
	assert_int_equal(try_login(broker.port, LONG_NAME, LONG_NAME, LONG_PW), 0);
}

static void login_refused_same_answer(void **state)
{
	/* wrong password, unknown user, disabled user */
	assert_int_equal(try_login(broker.port, "alice/w", "alice", "wrong"), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "alice/w", "alice", ""), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "zoe", "zoe", "whatever"), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "dave", "dave", DAVE_PW), NOT_AUTHORIZED);
	/* a password alone is not enough, nor a username alone */
	assert_int_equal(try_login(broker.port, "alice/np", "alice", NULL), NOT_AUTHORIZED);
	/* the refusals are logged, naming the client, without the password */
	const char *line[] = { "mqim: denied", "client=alice/w", "user=alice", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	const char *dline[] = { "mqim: denied", "client=dave", "user=dave", NULL };
	assert_true(tbroker_log_wait_line(&broker, dline, 2000));
	assert_int_equal(tbroker_log_count(&broker, DAVE_PW), 0);
	assert_int_equal(tbroker_log_count(&broker, "whatever"), 0);
}

static void login_without_username(void **state)
{
	assert_int_equal(try_login(broker.port, "alice", NULL, NULL), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "anon", NULL, NULL), NOT_AUTHORIZED);
}

/* "whatever allow_anonymous says": a broker configured to allow anonymous
 * clients must still refuse a connection without a username. */
static void login_without_username_allow_anonymous(void **state)
{
	struct tbroker b2;
	assert_int_equal(tbroker_init(&b2, "allow_anonymous true\n"), 0);
	assert_int_equal(tbroker_add_user(&b2, "alice", ALICE_PW, false), 0);
	assert_int_equal(tbroker_start(&b2), 0);
	int anon = try_login(b2.port, "anon", NULL, NULL);
	int anon_alice = try_login(b2.port, "alice", NULL, NULL);
	int good = try_login(b2.port, "alice", "alice", ALICE_PW);
	int status = tbroker_cleanup(&b2);
	assert_int_equal(anon, NOT_AUTHORIZED);
	assert_int_equal(anon_alice, NOT_AUTHORIZED);
	assert_int_equal(good, 0);
	assert_int_equal(status, 0);
}

static void login_bad_names(void **state)
{
	static const char *const bad[] = {
		"al/ice", "al+ice", "al#ice", "$alice", "al%ice", "al ice", "_alice", ".alice",
		"-alice", "al\xc3\xa9", "",
		LONG_NAME "x", /* 65 characters */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *cid = bad[i][0] ? bad[i] : "x";
		int rc = try_login(broker.port, cid, bad[i], "pw");
		if (rc != NOT_AUTHORIZED)
			fail_msg("login as \"%s\" answered %d", bad[i], rc);
	}
}

static void login_client_id_bound(void **state)
{
	/* another user's client id, or one that merely starts like the user */
	assert_int_equal(try_login(broker.port, "alice", "bob", BOB_PW), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "alice/phone", "bob", BOB_PW), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "bob", "alice", ALICE_PW), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "alicex", "alice", ALICE_PW), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "alic", "alice", ALICE_PW), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "Alice", "alice", ALICE_PW), NOT_AUTHORIZED);
	assert_int_equal(try_login(broker.port, "x/alice", "alice", ALICE_PW), NOT_AUTHORIZED);
	/* an empty client id gets an id assigned by the broker: not bound */
	assert_int_equal(try_login(broker.port, "", "alice", ALICE_PW), NOT_AUTHORIZED);
	/* bound ones */
	assert_int_equal(try_login(broker.port, "alice/laptop-2", "alice", ALICE_PW), 0);
	assert_int_equal(try_login(broker.port, "bob", "bob", BOB_PW), 0);
}

static void login_takeover_own_session(void **state)
{
	struct tclient *old = tclient_login(broker.port, "alice/tk", "alice", ALICE_PW);
	assert_non_null(old);
	assert_int_equal(tclient_subscribe(old, "im/u/alice", 1), 1);

	/* bob cannot take alice's session: refused, and alice stays on */
	assert_int_equal(try_login(broker.port, "alice/tk", "bob", BOB_PW), NOT_AUTHORIZED);
	assert_true(tclient_is_connected(old));
	assert_false(tclient_wait_disconnected(old, 300));

	/* alice can: the old connection is dropped, the new one works */
	struct tclient *neu = tclient_login(broker.port, "alice/tk", "alice", ALICE_PW);
	assert_non_null(neu);
	assert_true(tclient_wait_disconnected(old, 3000));
	assert_true(tclient_is_connected(neu));
	assert_int_equal(tclient_subscribe(neu, "im/u/alice", 1), 1);
	tclient_free(neu);
	tclient_free(old);
}

/* Connect wc as user with a will; when the broker accepts the login, fire
 * the will (DISCONNECT 0x04).  Returns the CONNACK code. */
static int connect_and_fire_will(const char *cid, const char *user, const char *pass,
				 const char *topic, const void *payload, size_t len, bool retain)
{
	struct tclient *wc = tclient_new(broker.port, cid);
	assert_non_null(wc);
	struct tclient_will will = { topic, payload, len, 1, retain };
	int rc = tclient_connect_ex(wc, user, pass, true, 0, &will);
	if (rc == 0)
		assert_int_equal(tclient_disconnect_with_will(wc), 0);
	tclient_free(wc);
	return rc;
}

/* Fail if any message reaches c within QUIET_MS; frees c. */
static void expect_no_will(struct tclient *c)
{
	char topics[512] = "";
	struct tmsg m;
	while (tclient_recv(c, &m, QUIET_MS) == 1) {
		struct mqim_env got;
		size_t n = strlen(topics);
		if (mqim_env_decode(m.payload, m.len, 0, &got, NULL) == 0 && got.has_body)
			snprintf(topics + n, sizeof topics - n, " %s (\"%.*s\")", m.topic,
				 (int)got.body_len, (const char *)got.body);
		else
			snprintf(topics + n, sizeof topics - n, " %s", m.topic);
		tmsg_free(&m);
	}
	tclient_free(c);
	if (topics[0])
		fail_msg("wills were delivered on:%s", topics);
}

/* A will to another user's inbox or to a group is refused at login or never
 * delivered, even with a valid envelope. */
static void will_to_other_topics_never_delivered(void **state)
{
	struct tclient *bob = tclient_login(broker.port, "bob/w", "bob", BOB_PW);
	assert_non_null(bob);
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	assert_int_equal(tclient_subscribe(bob, "im/g/team", 1), 1);
	assert_int_equal(tclient_subscribe(bob, "im/p/bob", 1), 1);

	void *env = NULL;
	size_t len = tenv_build(&env, "msg", "alice", "bob", "will to an inbox", NULL);
	assert_true(len > 0);
	int rc = connect_and_fire_will("alice/w1", "alice", ALICE_PW, "im/u/bob", env, len, false);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);
	free(env);

	len = tenv_build(&env, "msg", "alice", "team", "will to a group", NULL);
	assert_true(len > 0);
	rc = connect_and_fire_will("alice/w2", "alice", ALICE_PW, "im/g/team", env, len, false);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);
	free(env);

	/* alice's will naming bob's presence (a presence envelope from alice) */
	len = tenv_build(&env, "presence", "alice", "bob", "offline", NULL);
	assert_true(len > 0);
	rc = connect_and_fire_will("alice/w3", "alice", ALICE_PW, "im/p/bob", env, len, false);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);
	free(env);

	/* and a will on a topic outside the table */
	rc = connect_and_fire_will("alice/w4", "alice", ALICE_PW, "chat/bob", "x", 1, false);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);

	expect_no_will(bob);
}

/* A session taken over sends its will before its connection is closed
 * (Mosquitto's handle_connect): that path must not deliver a will to
 * another user's inbox either. */
static void will_by_takeover_never_delivered(void **state)
{
	struct tclient *bob = tclient_login(broker.port, "bob/wt", "bob", BOB_PW);
	assert_non_null(bob);
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);

	void *env = NULL;
	size_t len = tenv_build(&env, "msg", "alice", "bob", "will by takeover", NULL);
	assert_true(len > 0);
	struct tclient *old = tclient_new(broker.port, "alice/w5");
	assert_non_null(old);
	struct tclient_will will = { "im/u/bob", env, len, 1, false };
	int rc = tclient_connect_ex(old, "alice", ALICE_PW, true, 0, &will);
	free(env);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);
	if (rc == 0) {
		struct tclient *neu = tclient_login(broker.port, "alice/w5", "alice", ALICE_PW);
		assert_non_null(neu);
		assert_true(tclient_wait_disconnected(old, 3000));
		tclient_free(neu);
	}
	tclient_free(old);
	expect_no_will(bob);
}

/* A will to the own presence topic with a valid presence envelope is
 * delivered, retained (presence is the one retained kind). */
static void will_to_own_presence_delivered(void **state)
{
	struct tclient *bob = tclient_login(broker.port, "bob/p", "bob", BOB_PW);
	assert_non_null(bob);
	assert_int_equal(tclient_subscribe(bob, "im/p/alice", 1), 1);
	tclient_drain(bob, 100); /* a presence retained by an earlier test */

	void *env = NULL;
	uint8_t id[MQIM_ENV_ID_LEN];
	size_t len = tenv_build(&env, "presence", "alice", "alice", "offline", id);
	assert_true(len > 0);
	int rc = connect_and_fire_will("alice/pw", "alice", ALICE_PW, "im/p/alice", env, len, true);
	free(env);
	assert_int_equal(rc, 0);

	struct tmsg m;
	assert_int_equal(tclient_recv(bob, &m, 3000), 1);
	assert_string_equal(m.topic, "im/p/alice");
	struct mqim_env got;
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &got, NULL), 0);
	assert_memory_equal(got.id, id, MQIM_ENV_ID_LEN);
	assert_true(mqim_str_eq(got.t, "presence"));
	assert_true(mqim_str_eq(got.fr, "alice"));
	tmsg_free(&m);
	tclient_free(bob);

	/* retained: a later subscriber gets it */
	struct tclient *late = tclient_login(broker.port, "bob/late", "bob", BOB_PW);
	assert_non_null(late);
	assert_int_equal(tclient_subscribe(late, "im/p/alice", 1), 1);
	assert_int_equal(tclient_recv(late, &m, 2000), 1);
	assert_true(m.retain);
	tmsg_free(&m);
	tclient_free(late);
}

/* A will on the own presence topic whose envelope lies (fr is someone
 * else) or is not an envelope at all is refused or never delivered. */
static void will_to_own_presence_bad_envelope(void **state)
{
	struct tclient *bob = tclient_login(broker.port, "bob/q", "bob", BOB_PW);
	assert_non_null(bob);
	assert_int_equal(tclient_subscribe(bob, "im/p/alice", 1), 1);
	tclient_drain(bob, 100);

	void *env = NULL;
	size_t len = tenv_build(&env, "presence", "bob", "alice", "offline", NULL);
	assert_true(len > 0);
	int rc = connect_and_fire_will("alice/q1", "alice", ALICE_PW, "im/p/alice", env, len, false);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);
	free(env);
	rc = connect_and_fire_will("alice/q2", "alice", ALICE_PW, "im/p/alice", "offline", 7, false);
	assert_true(rc == 0 || rc == NOT_AUTHORIZED);

	struct tmsg m;
	if (tclient_recv(bob, &m, QUIET_MS) == 1) {
		tmsg_free(&m);
		fail_msg("a will with a bad envelope was delivered");
	}
	tclient_free(bob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(login_good),
		cmocka_unit_test(login_refused_same_answer),
		cmocka_unit_test(login_without_username),
		cmocka_unit_test(login_without_username_allow_anonymous),
		cmocka_unit_test(login_bad_names),
		cmocka_unit_test(login_client_id_bound),
		cmocka_unit_test(login_takeover_own_session),
		cmocka_unit_test(will_to_other_topics_never_delivered),
		cmocka_unit_test(will_by_takeover_never_delivered),
		cmocka_unit_test(will_to_own_presence_delivered),
		cmocka_unit_test(will_to_own_presence_bad_envelope),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
