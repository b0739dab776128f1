/* test_plugin_topics.c - the topic table of docs/protocol.md (Topics), for
 * an owner, another user, a group member, a non-member and an admin:
 * subscribe and publish answers, deliveries, retained messages, shared
 * subscriptions, multi-device inboxes, and removal from a group biting on a
 * subscription made earlier (offline + SIGHUP, and through $CONTROL).
 *
 * One broker for the file.  Users: alice and carol (members of "team"),
 * bob (member of "other"), dave (member of nothing), erin (member of
 * "other"), root (admin).
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
#include "tcontrol.h"

#define NOT_AUTHORIZED 0x87
#define QUIET_MS 500

static struct tbroker broker;

static const char *pw(const char *user)
{
	if (strcmp(user, "root") == 0)
		return "root-Pw-7";
	if (strcmp(user, "alice") == 0)
		return "alice-Pw-1";
	if (strcmp(user, "bob") == 0)
		return "bob-Pw-2";
	if (strcmp(user, "carol") == 0)
		return "carol-Pw-3";
	if (strcmp(user, "dave") == 0)
		return "dave-Pw-4";
	return "erin-Pw-5";
}

static int setup(void **state)
{
	static const char *const team[] = { "alice", "carol", NULL };
	static const char *const other[] = { "bob", "erin", NULL };
	static const char *const users[] = { "alice", "bob", "carol", "dave", "erin" };
	if (tbroker_init(&broker, NULL) != 0)
		goto fail;
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		if (tbroker_add_user(&broker, users[i], pw(users[i]), false) != 0)
			goto fail;
	if (tbroker_add_user(&broker, "root", pw("root"), true) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_add_group(&broker, "other", other) != 0 ||
	    tbroker_add_group(&broker, "empty", NULL) != 0 ||
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

/* Log in as user with client id "{user}/{suffix}"; fails the test if not. */
static struct tclient *login(const char *user, const char *suffix)
{
	char cid[96];
	snprintf(cid, sizeof cid, "%s/%s", user, suffix);
	struct tclient *c = tclient_login(broker.port, cid, user, pw(user));
	if (!c)
		fail_msg("cannot log in as %s", cid);
	return c;
}

/* ---- subscriptions ------------------------------------------------------------ */

struct sub_case {
	const char *user;
	const char *filter;
	int want;        /* 1: granted QoS 1, else the reason code */
};

#define OK 1
#define NO NOT_AUTHORIZED

static const struct sub_case sub_cases[] = {
	/* inboxes: the owner only, by the exact filter */
	{ "alice", "im/u/alice", OK },
	{ "bob", "im/u/alice", NO },
	{ "root", "im/u/alice", NO },
	{ "root", "im/u/root", OK },
	{ "alice", "im/u/nobody", NO },
	/* groups: members only */
	{ "alice", "im/g/team", OK },
	{ "carol", "im/g/team", OK },
	{ "bob", "im/g/team", NO },
	{ "dave", "im/g/team", NO },
	{ "root", "im/g/team", NO },
	{ "alice", "im/g/other", NO },
	{ "alice", "im/g/empty", NO },
	{ "alice", "im/g/nosuch", NO },
	/* presence: anyone logged in */
	{ "alice", "im/p/alice", OK },
	{ "alice", "im/p/bob", OK },
	{ "dave", "im/p/alice", OK },
	{ "root", "im/p/alice", OK },
	/* control: nobody subscribes to requests, admins to responses */
	{ "alice", "$CONTROL/mqim/v1", NO },
	{ "root", "$CONTROL/mqim/v1", NO },
	{ "alice", "$CONTROL/mqim/v1/response", NO },
	{ "root", "$CONTROL/mqim/v1/response", OK },
	{ "alice", "$CONTROL/#", NO },
	{ "root", "$CONTROL/#", NO },
	{ "alice", "$CONTROL/mqim/v1/#", NO },
	/* $SYS: admins only */
	{ "alice", "$SYS/#", NO },
	{ "alice", "$SYS/broker/uptime", NO },
	{ "root", "$SYS/#", OK },
	/* anything else */
	{ "alice", "foo", NO },
	{ "alice", "foo/bar", NO },
	{ "alice", "im", NO },
	{ "alice", "im/u", NO },
	{ "alice", "im/u/", NO },
	{ "alice", "im/x/alice", NO },
	{ "alice", "im/u/alice/x", NO },
	{ "alice", "/im/u/alice", NO },
	{ "root", "foo", NO },
	/* wildcards never match into im/, not even one's own */
	{ "alice", "im/u/+", NO },
	{ "alice", "im/#", NO },
	{ "alice", "#", NO },
	{ "root", "#", NO },
	{ "root", "im/#", NO },
	{ "alice", "+/u/alice", NO },
	{ "alice", "im/+/alice", NO },
	{ "alice", "im/u/alice/#", NO },
	{ "alice", "im/u/#", NO },
	{ "alice", "im/g/+", NO },
	{ "alice", "im/p/+", NO },
	{ "alice", "im/p/#", NO },
	{ "alice", "+", NO },
	{ "alice", "+/+/+", NO },
	/* shared subscriptions are unwrapped and checked the same way */
	{ "alice", "$share/x/im/u/alice", OK },
	{ "bob", "$share/x/im/u/alice", NO },
	{ "root", "$share/x/im/u/alice", NO },
	{ "alice", "$share/x/im/g/team", OK },
	{ "alice", "$share/x/im/g/other", NO },
	{ "dave", "$share/x/im/g/team", NO },
	{ "alice", "$share/x/im/u/+", NO },
	{ "alice", "$share/x/#", NO },
	{ "alice", "$share/x/im/#", NO },
	{ "alice", "$share/x/$CONTROL/mqim/v1/response", NO },
};

static void subscribe_table(void **state)
{
	static const char *const users[] = { "alice", "bob", "carol", "dave", "root" };
	struct tclient *c[5];
	for (size_t u = 0; u < 5; u++)
		c[u] = login(users[u], "subtable");
	int failures = 0;
	for (size_t i = 0; i < sizeof sub_cases / sizeof sub_cases[0]; i++) {
		const struct sub_case *sc = &sub_cases[i];
		size_t u = 0;
		while (strcmp(users[u], sc->user) != 0)
			u++;
		int rc = tclient_subscribe(c[u], sc->filter, 1);
		if (rc != sc->want) {
			print_error("subscribe %s to \"%s\": got 0x%x, want 0x%x\n", sc->user,
				    sc->filter, (unsigned)rc, (unsigned)sc->want);
			failures++;
		}
	}
	for (size_t u = 0; u < 5; u++)
		tclient_free(c[u]);
	assert_int_equal(failures, 0);
}

/* ---- publishing ----------------------------------------------------------------- */

struct pub_case {
	const char *user;
	const char *topic;
	const char *t;      /* envelope kind; NULL: a JSON control request */
	const char *to;     /* envelope "to" */
	int want;           /* 0 or the reason code */
};

static const struct pub_case pub_cases[] = {
	/* inbox: anyone logged in, with a valid envelope */
	{ "alice", "im/u/bob", "msg", "bob", 0 },
	{ "dave", "im/u/bob", "msg", "bob", 0 },
	{ "alice", "im/u/alice", "msg", "alice", 0 },
	{ "root", "im/u/bob", "msg", "bob", 0 },
	{ "alice", "im/u/bob", "rcpt-less-kind", "bob", 0 },
	/* groups: members only */
	{ "alice", "im/g/team", "msg", "team", 0 },
	{ "carol", "im/g/team", "msg", "team", 0 },
	{ "bob", "im/g/team", "msg", "team", NO },
	{ "dave", "im/g/team", "msg", "team", NO },
	{ "root", "im/g/team", "msg", "team", NO },
	{ "alice", "im/g/nosuch", "msg", "nosuch", NO },
	/* presence: the user only */
	{ "alice", "im/p/alice", "presence", "alice", 0 },
	{ "alice", "im/p/bob", "presence", "bob", NO },
	{ "root", "im/p/bob", "presence", "bob", NO },
	/* control: admins publish requests, nobody publishes responses */
	{ "alice", "$CONTROL/mqim/v1", NULL, NULL, NO },
	{ "dave", "$CONTROL/mqim/v1", NULL, NULL, NO },
	{ "root", "$CONTROL/mqim/v1", NULL, NULL, 0 },
	{ "alice", "$CONTROL/mqim/v1/response", NULL, NULL, NO },
	{ "root", "$CONTROL/mqim/v1/response", NULL, NULL, NO },
	{ "alice", "$CONTROL/other/v1", NULL, NULL, NO },
	/* $SYS and anything else */
	{ "alice", "$SYS/broker/x", "msg", "x", NO },
	{ "root", "$SYS/broker/x", "msg", "x", NO },
	{ "alice", "foo", "msg", "foo", NO },
	{ "alice", "foo/bar", "msg", "bar", NO },
	{ "alice", "im/u/bob/x", "msg", "bob", NO },
	{ "alice", "im/x/bob", "msg", "bob", NO },
	{ "alice", "im/u", "msg", "bob", NO },
	{ "root", "foo", "msg", "foo", NO },
};

static int publish_case(struct tclient *c, const struct pub_case *pc, int qos)
{
	if (!pc->t) {
		const char *req = "{\"commands\":[{\"command\":\"listGroups\"}]}";
		return tclient_publish(c, pc->topic, req, strlen(req), qos, false);
	}
	const char *body = strcmp(pc->t, "presence") == 0 ? "online" : "hello";
	return tclient_send_env(c, pc->topic, pc->t, pc->user, pc->to, body, qos, NULL);
}

static void publish_table_qos(int qos)
{
	static const char *const users[] = { "alice", "bob", "carol", "dave", "root" };
	struct tclient *c[5];
	char suffix[16];
	snprintf(suffix, sizeof suffix, "pub%d", qos);
	for (size_t u = 0; u < 5; u++)
		c[u] = login(users[u], suffix);
	int failures = 0;
	for (size_t i = 0; i < sizeof pub_cases / sizeof pub_cases[0]; i++) {
		const struct pub_case *pc = &pub_cases[i];
		size_t u = 0;
		while (strcmp(users[u], pc->user) != 0)
			u++;
		int rc = publish_case(c[u], pc, qos);
		if (rc != pc->want) {
			print_error("QoS %d publish by %s to \"%s\": got 0x%x, want 0x%x\n", qos,
				    pc->user, pc->topic, (unsigned)rc, (unsigned)pc->want);
			failures++;
		}
	}
	for (size_t u = 0; u < 5; u++)
		tclient_free(c[u]);
	assert_int_equal(failures, 0);
}

static void publish_table_qos1(void **state)
{
	publish_table_qos(1);
}

static void publish_table_qos2(void **state)
{
	publish_table_qos(2);
}

/* ---- deliveries ------------------------------------------------------------------ */

/* Expect exactly one message on topic at c, from fr (an envelope). */
static void expect_one(struct tclient *c, const char *topic, const char *fr)
{
	struct tmsg m;
	assert_int_equal(tclient_recv(c, &m, 3000), 1);
	assert_string_equal(m.topic, topic);
	struct mqim_env env;
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &env, NULL), 0);
	assert_true(mqim_str_eq(env.fr, fr));
	tmsg_free(&m);
}

static void expect_nothing(struct tclient *c, const char *who)
{
	struct tmsg m;
	if (tclient_recv(c, &m, QUIET_MS) == 1) {
		char topic[128];
		snprintf(topic, sizeof topic, "%s", m.topic);
		tmsg_free(&m);
		fail_msg("%s received a message on %s", who, topic);
	}
}

static void delivery_inbox_and_group(void **state)
{
	struct tclient *bob = login("bob", "dlv");
	struct tclient *carol = login("carol", "dlv");
	struct tclient *alice = login("alice", "dlv");
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	assert_int_equal(tclient_subscribe(carol, "im/g/team", 1), 1);

	assert_int_equal(tclient_send_env(alice, "im/u/bob", "msg", "alice", "bob", "hi", 1, NULL), 0);
	expect_one(bob, "im/u/bob", "alice");
	assert_int_equal(tclient_send_env(alice, "im/g/team", "msg", "alice", "team", "hi", 1, NULL), 0);
	expect_one(carol, "im/g/team", "alice");

	/* refused publishes reach nobody */
	assert_int_equal(tclient_send_env(bob, "im/g/team", "msg", "bob", "team", "x", 1, NULL), NO);
	expect_nothing(carol, "carol");
	expect_nothing(bob, "bob");
	tclient_free(alice);
	tclient_free(carol);
	tclient_free(bob);
}

/* Several sessions of one user each get a copy of an inbox message. */
static void delivery_multi_device(void **state)
{
	struct tclient *phone = login("bob", "phone");
	struct tclient *laptop = login("bob", "laptop");
	struct tclient *alice = login("alice", "md");
	assert_int_equal(tclient_subscribe(phone, "im/u/bob", 1), 1);
	assert_int_equal(tclient_subscribe(laptop, "im/u/bob", 1), 1);
	assert_int_equal(tclient_send_env(alice, "im/u/bob", "msg", "alice", "bob", "hi", 1, NULL), 0);
	expect_one(phone, "im/u/bob", "alice");
	expect_one(laptop, "im/u/bob", "alice");
	tclient_free(alice);
	tclient_free(laptop);
	tclient_free(phone);
}

/* A shared subscription to one's own inbox receives. */
static void delivery_shared_own_inbox(void **state)
{
	struct tclient *bob = login("bob", "shared");
	struct tclient *alice = login("alice", "shared");
	assert_int_equal(tclient_subscribe(bob, "$share/grp/im/u/bob", 1), 1);
	assert_int_equal(tclient_send_env(alice, "im/u/bob", "msg", "alice", "bob", "hi", 1, NULL), 0);
	expect_one(bob, "im/u/bob", "alice");
	tclient_free(alice);
	tclient_free(bob);
}

/* $SYS is open to admins: the broker's retained $SYS topics arrive. */
static void sys_for_admins(void **state)
{
	struct tclient *root = login("root", "sys");
	assert_int_equal(tclient_subscribe(root, "$SYS/broker/version", 0), 0);
	struct tmsg m;
	assert_int_equal(tclient_recv(root, &m, 3000), 1);
	assert_string_equal(m.topic, "$SYS/broker/version");
	tmsg_free(&m);
	tclient_free(root);
}

/* ---- retained ---------------------------------------------------------------------- */

static void retained_refused_except_presence(void **state)
{
	struct tclient *alice = login("alice", "ret");
	void *env = NULL;
	size_t len = tenv_build(&env, "msg", "alice", "bob", "retained?", NULL);
	assert_true(len > 0);
	assert_int_equal(tclient_publish(alice, "im/u/bob", env, len, 1, true), NO);
	free(env);
	len = tenv_build(&env, "msg", "alice", "team", "retained?", NULL);
	assert_true(len > 0);
	assert_int_equal(tclient_publish(alice, "im/g/team", env, len, 1, true), NO);
	free(env);

	uint8_t id[MQIM_ENV_ID_LEN];
	len = tenv_build(&env, "presence", "alice", "alice", "online", id);
	assert_true(len > 0);
	assert_int_equal(tclient_publish(alice, "im/p/alice", env, len, 1, true), 0);
	free(env);

	/* nothing retained on the inbox or the group, presence retained */
	struct tclient *bob = login("bob", "ret");
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	expect_nothing(bob, "bob (retained inbox message)");
	struct tclient *carol = login("carol", "ret");
	assert_int_equal(tclient_subscribe(carol, "im/g/team", 1), 1);
	expect_nothing(carol, "carol (retained group message)");
	assert_int_equal(tclient_subscribe(carol, "im/p/alice", 1), 1);
	struct tmsg m;
	assert_int_equal(tclient_recv(carol, &m, 3000), 1);
	assert_string_equal(m.topic, "im/p/alice");
	assert_true(m.retain);
	struct mqim_env got;
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &got, NULL), 0);
	assert_memory_equal(got.id, id, MQIM_ENV_ID_LEN);
	tmsg_free(&m);
	tclient_free(carol);
	tclient_free(bob);
	tclient_free(alice);
}

/* ---- removal from a group --------------------------------------------------------- */

/* sender publishes to im/g/{gid}; witness (a member) receives it, removed
 * (subscribed before its removal) does not. */
static void check_removed(struct tclient *sender, const char *sender_name, struct tclient *witness,
			  struct tclient *removed, const char *gid)
{
	char topic[80];
	snprintf(topic, sizeof topic, "im/g/%s", gid);
	assert_int_equal(tclient_send_env(sender, topic, "msg", sender_name, gid, "after", 1, NULL), 0);
	expect_one(witness, topic, sender_name);
	expect_nothing(removed, "a removed member");
}

static void removal_offline_sighup(void **state)
{
	struct tclient *alice = login("alice", "rm");
	struct tclient *carol = login("carol", "rm");
	assert_int_equal(tclient_subscribe(alice, "im/g/team", 1), 1);
	assert_int_equal(tclient_subscribe(carol, "im/g/team", 1), 1);

	/* before: both receive */
	assert_int_equal(tclient_send_env(alice, "im/g/team", "msg", "alice", "team", "before", 1, NULL), 0);
	expect_one(alice, "im/g/team", "alice");
	expect_one(carol, "im/g/team", "alice");

	assert_int_equal(tbroker_del_member(&broker, "team", "carol"), 0);
	assert_int_equal(tbroker_sighup(&broker), 0);

	check_removed(alice, "alice", alice, carol, "team");
	/* and carol may no longer write to it */
	assert_int_equal(tclient_send_env(carol, "im/g/team", "msg", "carol", "team", "x", 1, NULL), NO);
	expect_nothing(alice, "alice (carol's refused message)");
	tclient_free(carol);
	tclient_free(alice);
}

static void removal_through_control(void **state)
{
	struct tclient *root = login("root", "rm");
	struct tclient *bob = login("bob", "rm");
	struct tclient *erin = login("erin", "rm");
	assert_int_equal(tcontrol_prepare(root), 1);
	assert_int_equal(tclient_subscribe(bob, "im/g/other", 1), 1);
	assert_int_equal(tclient_subscribe(erin, "im/g/other", 1), 1);

	assert_int_equal(tclient_send_env(erin, "im/g/other", "msg", "erin", "other", "before", 1, NULL), 0);
	expect_one(bob, "im/g/other", "erin");
	expect_one(erin, "im/g/other", "erin");

	assert_int_equal(tcontrol_ok(root, "{\"command\":\"removeGroupMember\",\"group\":\"other\","
				      "\"username\":\"bob\"}"), 0);
	check_removed(erin, "erin", erin, bob, "other");
	tclient_free(erin);
	tclient_free(bob);
	tclient_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(subscribe_table),
		cmocka_unit_test(publish_table_qos1),
		cmocka_unit_test(publish_table_qos2),
		cmocka_unit_test(delivery_inbox_and_group),
		cmocka_unit_test(delivery_multi_device),
		cmocka_unit_test(delivery_shared_own_inbox),
		cmocka_unit_test(sys_for_admins),
		cmocka_unit_test(retained_refused_except_presence),
		cmocka_unit_test(removal_offline_sighup),
		cmocka_unit_test(removal_through_control),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
