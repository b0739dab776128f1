/* test_eavesdrop.c - attack catalogue, eavesdropping: reading what is not
 * one's own, against a real broker with the plugin, over raw MQTT 5.
 *
 *  - every wildcard and $share form on other users' inboxes and on groups
 *    one is not in, in one SUBSCRIBE and one at a time, then traffic on
 *    those topics: nothing reaches the eavesdropper;
 *  - $SYS/# and $SYS/broker/log/# (the broker publishes its log there in
 *    this test) for a non-admin;
 *  - $CONTROL by a non-admin: subscribe to requests, responses and push
 *    notices, publish requests (to become admin) and forged responses;
 *  - a topic alias bound to another user's inbox, and an alias bound with a
 *    legitimate publish then reused with a forged envelope;
 *  - a subscription kept in a persistent session by a member removed from
 *    the group while offline.
 *
 * One broker for the file.  Users: alice, bob, carol (team = {alice, bob,
 * carol}, duo = {alice, bob}), eve (in no group), root (admin), and the
 * bystanders by1 and by2, who chat in the background during every test and
 * are checked at the end of each.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atk.h"
#include "tbroker.h"
#include <cjson/cJSON.h>

#include "tcontrol.h"

#define NO 0x87
#define QUIET_MS 600
#define WAIT_MS 5000

static struct tbroker broker;
static struct atk_pair bystanders;
static size_t test_mark;

static int setup(void **state)
{
	static const char *const team[] = { "alice", "bob", "carol", NULL };
	static const char *const duo[] = { "alice", "bob", NULL };
	static const char *const users[] = { "alice", "bob", "carol", "eve", "by1", "by2" };
	/* the broker's own log is published on $SYS/broker/log/... too */
	if (tbroker_init(&broker, "log_dest topic\nsys_interval 1\n") != 0)
		goto fail;
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		if (tbroker_add_user(&broker, users[i], ATK_PW, false) != 0)
			goto fail;
	if (tbroker_add_user(&broker, "root", ATK_PW, true) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_add_group(&broker, "duo", duo) != 0 || tbroker_start(&broker) != 0)
		goto fail;
	if (atk_pair_open(&bystanders, broker.port, "by1", "by2") != 0 ||
	    atk_pair_start(&bystanders, 20) != 0)
		goto fail;
	return 0;
fail:
	atk_pair_close(&bystanders);
	tbroker_cleanup(&broker);
	return -1;
}

static int teardown(void **state)
{
	atk_pair_close(&bystanders);
	return tbroker_cleanup(&broker) == 0 ? 0 : -1;
}

static int before_each(void **state)
{
	test_mark = atk_pair_mark(&bystanders);
	return 0;
}

/* The bystanders kept chatting through the test, nothing lost. */
static void bystanders_ok(void)
{
	atk_bystanders_ok(&bystanders, test_mark, broker.pid, WAIT_MS);
}

static void login(struct raw *r, const char *user, const char *suffix)
{
	atk_login(r, broker.port, user, suffix);
}

/* Fail if any application message reaches r within quiet_ms. */
static void expect_nothing(struct raw *r, const char *who, int quiet_ms)
{
	struct mqtt_pkt m;
	int rc = raw_next_publish(r, &m, quiet_ms);
	if (rc == 0)
		fail_msg("%s received a message on %.*s", who, (int)m.topic_len, m.topic);
	assert_int_equal(rc, RAW_TIMEOUT);
}

/* Expect one message on topic from fr at r. */
static void expect_from(struct raw *r, const char *topic, const char *fr)
{
	struct mqtt_pkt m;
	struct mqim_env env;
	assert_int_equal(raw_next_publish(r, &m, WAIT_MS), 0);
	assert_int_equal(m.topic_len, strlen(topic));
	assert_memory_equal(m.topic, topic, m.topic_len);
	assert_int_equal(atk_env_decode(m.payload, m.payload_len, &env), 0);
	assert_true(mqim_str_eq(env.fr, fr));
}

/* sender publishes a valid envelope to topic (QoS 1, accepted: 0x00, or
 * 0x10 when nobody subscribes). */
static void send_ok(struct raw *r, const char *topic, const char *fr, const char *to)
{
	void *env = NULL;
	size_t len = atk_env(&env, "msg", fr, to, "secret", NULL, NULL);
	assert_true(len > 0);
	int rc = raw_pub(r, topic, env, len, 1, false, WAIT_MS);
	assert_true(rc == 0 || rc == 0x10);
	free(env);
}

/* ---- wildcards and $share --------------------------------------------------- */

/* Filters that name or match bob's inbox, the groups eve is not in, or
 * everything.  Each is refused with 0x87 for eve. */
static const char *const foreign_filters[] = {
	"im/u/bob", "im/u/+", "im/u/#", "im/#", "#", "+/#", "+", "+/+", "+/+/+", "+/+/#",
	"+/u/bob", "+/+/bob", "im/+/bob", "im/+/+", "im/+/#", "im/u/bob/#", "im/u/bob/+",
	"im/u/+/#", "im/g/team", "im/g/+", "im/g/#", "+/g/team", "im/+/team", "im/g/duo",
	"im/p/#", "im/p/+",
	"$share/x/im/u/bob", "$share/x/im/u/+", "$share/x/im/u/#", "$share/x/im/#",
	"$share/x/#", "$share/x/+/u/bob", "$share/x/im/+/bob", "$share/bob/im/u/bob",
	"$share/x/im/g/team", "$share/x/im/g/+", "$share/team/im/g/team", "$share/x/+/+/+",
	"$share/x/$SYS/#", "$share/x/$CONTROL/mqim/v1/response",
};
#define NFOREIGN (sizeof foreign_filters / sizeof foreign_filters[0])

static void wildcards_and_shares_refused(void **state)
{
	struct raw eve, eve2, bob, carol, alice;
	uint8_t codes[NFOREIGN];

	login(&eve, "eve", "wild");
	login(&eve2, "eve", "wild-each");
	login(&alice, "alice", "wild");
	login(&bob, "bob", "wild");
	login(&carol, "carol", "wild");
	assert_int_equal(raw_subscribe(&bob, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(raw_subscribe(&carol, "im/g/team", MQTT_SUB_QOS(1), WAIT_MS), 1);

	/* all at once, in one SUBSCRIBE */
	memset(codes, 0, sizeof codes);
	assert_int_equal(raw_subscribe_many(&eve, foreign_filters, NFOREIGN, MQTT_SUB_QOS(1),
					    codes, WAIT_MS), (int)NFOREIGN);
	int failures = 0;
	for (size_t i = 0; i < NFOREIGN; i++) {
		if (codes[i] != NO) {
			print_error("eve subscribing to \"%s\" got 0x%02x\n", foreign_filters[i],
				    codes[i]);
			failures++;
		}
	}
	/* and one at a time, at QoS 0 and 2 */
	for (size_t i = 0; i < NFOREIGN; i++) {
		int rc = raw_subscribe(&eve2, foreign_filters[i], MQTT_SUB_QOS(i % 2 ? 2 : 0), WAIT_MS);
		if (rc != NO) {
			print_error("eve subscribing alone to \"%s\" got %d\n", foreign_filters[i], rc);
			failures++;
		}
	}
	assert_int_equal(failures, 0);

	/* traffic on every kind of topic: only the rightful readers get it */
	send_ok(&alice, "im/u/bob", "alice", "bob");
	send_ok(&alice, "im/g/team", "alice", "team");
	send_ok(&alice, "im/g/duo", "alice", "duo");
	expect_from(&bob, "im/u/bob", "alice");
	expect_from(&carol, "im/g/team", "alice");
	expect_nothing(&eve, "eve", QUIET_MS);
	expect_nothing(&eve2, "eve", 50);
	expect_nothing(&carol, "carol (not in duo)", 50);

	/* every refusal is in the log, naming eve and the reason */
	const char *wild[] = { "mqim: denied subscribe 'im/#'", "client=eve/wild", "user=eve",
			       "wildcards never match mqim topics", NULL };
	const char *inbox[] = { "mqim: denied subscribe '$share/x/im/u/bob'", "user=eve",
				"inbox of another user", NULL };
	const char *group[] = { "mqim: denied subscribe 'im/g/team'", "user=eve",
				"not a member of the group", NULL };
	assert_true(tbroker_log_wait_line(&broker, wild, 2000));
	assert_true(tbroker_log_wait_line(&broker, inbox, 2000));
	assert_true(tbroker_log_wait_line(&broker, group, 2000));
	assert_true(tbroker_log_count(&broker, "user=eve: ") >= (int)(2 * NFOREIGN));

	raw_disconnect(&eve);
	raw_disconnect(&eve2);
	raw_disconnect(&alice);
	raw_disconnect(&bob);
	raw_disconnect(&carol);
	bystanders_ok();
}

/* Share groups that try to join bob's own shared subscription: bob
 * subscribes $share/g/im/u/bob; eve's $share/g/im/u/bob (same group name)
 * is refused, so bob keeps every message (none is load-balanced to eve). */
static void share_group_of_the_victim(void **state)
{
	struct raw eve, bob, alice;
	login(&eve, "eve", "share");
	login(&bob, "bob", "share");
	login(&alice, "alice", "share");
	assert_int_equal(raw_subscribe(&bob, "$share/g/im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(raw_subscribe(&eve, "$share/g/im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), NO);
	for (int i = 0; i < 6; i++)
		send_ok(&alice, "im/u/bob", "alice", "bob");
	for (int i = 0; i < 6; i++)
		expect_from(&bob, "im/u/bob", "alice");
	expect_nothing(&eve, "eve", QUIET_MS);
	const char *line[] = { "mqim: denied subscribe '$share/g/im/u/bob'", "client=eve/share",
			       "inbox of another user", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	raw_disconnect(&alice);
	bystanders_ok();
}

/* Malformed $share filters (a wildcard or nothing as the share name, no
 * filter): Mosquitto itself refuses them, with a reason code or by closing
 * the connection; either way nothing reaches the eavesdropper. */
static void malformed_shares_refused(void **state)
{
	static const char *const bad[] = {
		"$share/+/im/u/bob", "$share/#/im/u/bob", "$share//im/u/bob", "$share/x",
		"$share/x/", "$share/+/#", "$share/x+/im/u/bob",
	};
	struct raw alice, bob;
	login(&alice, "alice", "badshare");
	login(&bob, "bob", "badshare");
	assert_int_equal(raw_subscribe(&bob, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct raw eve;
		login(&eve, "eve", "badshare");
		int rc = raw_subscribe(&eve, bad[i], MQTT_SUB_QOS(1), WAIT_MS);
		print_message("  \"%s\": %d\n", bad[i], rc);
		if (!(rc >= 0x80 || rc == RAW_CLOSED))
			fail_msg("eve subscribing to \"%s\" got %d", bad[i], rc);
		if (rc != RAW_CLOSED) {
			send_ok(&alice, "im/u/bob", "alice", "bob");
			expect_from(&bob, "im/u/bob", "alice");
			expect_nothing(&eve, "eve (a malformed share)", 200);
		}
		raw_close(&eve);
	}
	raw_disconnect(&alice);
	raw_disconnect(&bob);
	bystanders_ok();
}

/* ---- $SYS ---------------------------------------------------------------------- */

static void sys_refused_to_non_admins(void **state)
{
	static const char *const sys[] = {
		"$SYS/#", "$SYS/broker/log/#", "$SYS/broker/log/N", "$SYS/broker/log/+",
		"$SYS/broker/version", "$SYS/broker/clients/connected", "$SYS/+/+", "$SYS/+/#",
		"$SYS", "$share/x/$SYS/broker/log/#",
	};
	struct raw eve, root;
	struct mqtt_pkt m;
	login(&eve, "eve", "sys");
	for (size_t i = 0; i < sizeof sys / sizeof sys[0]; i++) {
		int rc = raw_subscribe(&eve, sys[i], MQTT_SUB_QOS(0), WAIT_MS);
		if (rc != NO)
			fail_msg("eve subscribing to \"%s\" got %d", sys[i], rc);
	}
	/* the broker publishes its log and $SYS every second: nothing for eve */
	login(&root, "root", "sys");
	assert_int_equal(raw_subscribe(&root, "$SYS/broker/log/#", MQTT_SUB_QOS(0), WAIT_MS), 0);
	assert_int_equal(raw_subscribe(&root, "$SYS/broker/uptime", MQTT_SUB_QOS(0), WAIT_MS), 0);
	/* a line of the log, naming eve: the log is as sensitive as it gets */
	assert_int_equal(raw_subscribe(&eve, "$SYS/broker/log/N", MQTT_SUB_QOS(0), WAIT_MS), NO);
	bool root_got_log = false;
	int64_t end = raw_now_ms() + 3000;
	while (!root_got_log && raw_now_ms() < end)
		if (raw_next_publish(&root, &m, 500) == 0 && m.topic_len > 15 &&
		    memcmp(m.topic, "$SYS/broker/log/", 16) == 0)
			root_got_log = true;
	assert_true(root_got_log);
	expect_nothing(&eve, "eve ($SYS)", 1500);
	/* and eve may not publish there either */
	assert_int_equal(raw_pub(&eve, "$SYS/broker/log/N", "x", 1, 1, false, WAIT_MS), NO);
	const char *line[] = { "mqim: denied subscribe '$SYS/broker/log/#'", "client=eve/sys",
			       "admins only", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	raw_disconnect(&eve);
	raw_disconnect(&root);
	bystanders_ok();
}

/* ---- $CONTROL ---------------------------------------------------------------------- */

static void control_refused_to_non_admins(void **state)
{
	static const char *const filters[] = {
		"$CONTROL/mqim/v1", "$CONTROL/mqim/v1/response", "$CONTROL/mqim/v1/push",
		"$CONTROL/#", "$CONTROL/+/v1/response", "$CONTROL/mqim/#", "$CONTROL/mqim/+/+",
		"$share/x/$CONTROL/mqim/v1/push", "$CONTROL/dynamic-security/v1/response",
	};
	struct raw eve;
	login(&eve, "eve", "ctl");
	for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
		int rc = raw_subscribe(&eve, filters[i], MQTT_SUB_QOS(1), WAIT_MS);
		if (rc != NO)
			fail_msg("eve subscribing to \"%s\" got %d", filters[i], rc);
	}

	/* requests: make herself admin, create an account, read the users */
	static const char *const requests[] = {
		"{\"commands\":[{\"command\":\"setAdmin\",\"username\":\"eve\",\"admin\":true}]}",
		"{\"commands\":[{\"command\":\"createUser\",\"username\":\"evil\",\"password\":\"x\"}]}",
		"{\"commands\":[{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"eve\"}]}",
		"{\"commands\":[{\"command\":\"listUsers\"}]}",
	};
	for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
		size_t len = strlen(requests[i]);
		for (uint8_t qos = 0; qos <= 2; qos++) {
			int rc = raw_pub(&eve, "$CONTROL/mqim/v1", requests[i], len, qos, false, WAIT_MS);
			assert_int_equal(rc, qos ? NO : 0);
		}
	}
	/* forged responses to the admins, and other $CONTROL topics */
	struct atk_admin root;
	assert_int_equal(atk_admin_open(&root, broker.port, "root"), 0);
	const char *fake = "{\"responses\":[{\"command\":\"listUsers\",\"data\":{}}]}";
	assert_int_equal(raw_pub(&eve, "$CONTROL/mqim/v1/response", fake, strlen(fake), 1, false,
				 WAIT_MS), NO);
	assert_int_equal(raw_pub(&eve, "$CONTROL/mqim/v1/push", fake, strlen(fake), 1, false,
				 WAIT_MS), NO);
	assert_int_equal(raw_pub(&eve, "$CONTROL/dynamic-security/v1", requests[0],
				 strlen(requests[0]), 1, false, WAIT_MS), NO);
	expect_nothing(&root.r, "root (a response or notice eve forged)", QUIET_MS);

	/* nothing changed */
	cJSON *r = atk_admin_call(&root, "{\"command\":\"getUser\",\"username\":\"eve\"}");
	assert_non_null(r);
	cJSON *data = cJSON_GetObjectItemCaseSensitive(r, "data");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(data, "admin")));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "groups")), 0);
	cJSON_Delete(r);
	r = atk_admin_call(&root, "{\"command\":\"getUser\",\"username\":\"evil\"}");
	assert_non_null(r);
	assert_non_null(tcontrol_error(r));
	cJSON_Delete(r);
	atk_admin_close(&root);
	assert_int_equal(raw_subscribe(&eve, "im/g/team", MQTT_SUB_QOS(1), WAIT_MS), NO);

	const char *line[] = { "mqim: denied publish '$CONTROL/mqim/v1'", "client=eve/ctl",
			       "user=eve", "admins only", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	const char *resp[] = { "mqim: denied publish '$CONTROL/mqim/v1/response'", "user=eve",
			       "only the broker publishes here", NULL };
	assert_true(tbroker_log_wait_line(&broker, resp, 2000));
	assert_int_equal(tbroker_log_count(&broker, "command=setAdmin"), 0);
	raw_disconnect(&eve);
	bystanders_ok();
}

/* ---- topic aliases ------------------------------------------------------------------ */

/* A PUBLISH with a topic alias property (0x23) and optionally a topic. */
static int alias_pub(struct raw *r, const char *topic, uint16_t alias, const void *payload,
		     size_t len)
{
	uint8_t props[3] = { 0x23, (uint8_t)(alias >> 8), (uint8_t)alias };
	struct mqtt_publish p;
	memset(&p, 0, sizeof p);
	p.topic = topic;
	p.topic_len = strlen(topic);
	if (!p.topic_len)
		p.topic_len = 0, p.topic = "";
	p.payload = payload;
	p.payload_len = len;
	p.qos = 1;
	p.props = props;
	p.props_len = sizeof props;
	return raw_publish(r, &p, WAIT_MS);
}

static void topic_alias_checked_on_resolved_topic(void **state)
{
	struct raw eve, bob, carol;
	void *forged = NULL, *legit = NULL, *legit2 = NULL, *to_team = NULL;
	login(&eve, "eve", "alias");
	login(&bob, "bob", "alias");
	login(&carol, "carol", "alias");
	assert_int_equal(raw_subscribe(&bob, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(raw_subscribe(&carol, "im/g/team", MQTT_SUB_QOS(1), WAIT_MS), 1);
	size_t flen = atk_env(&forged, "msg", "alice", "bob", "from alice, honest", NULL, NULL);
	size_t llen = atk_env(&legit, "msg", "eve", "bob", "hi bob", NULL, NULL);
	size_t l2len = atk_env(&legit2, "msg", "eve", "bob", "hi again", NULL, NULL);
	size_t tlen = atk_env(&to_team, "msg", "eve", "team", "hi team", NULL, NULL);
	assert_true(flen && llen && l2len && tlen);

	/* alias 1 bound to bob's inbox by a refused publish, then used alone */
	assert_int_equal(alias_pub(&eve, "im/u/bob", 1, forged, flen), NO);
	assert_int_equal(alias_pub(&eve, "", 1, forged, flen), NO);
	/* alias 2 bound by a legitimate publish, then reused with a forged fr */
	assert_int_equal(alias_pub(&eve, "im/u/bob", 2, legit, llen), 0);
	expect_from(&bob, "im/u/bob", "eve");
	assert_int_equal(alias_pub(&eve, "", 2, forged, flen), NO);
	/* alias 3 bound to a group eve is not in, to $CONTROL, to $SYS */
	assert_int_equal(alias_pub(&eve, "im/g/team", 3, to_team, tlen), NO);
	assert_int_equal(alias_pub(&eve, "", 3, to_team, tlen), NO);
	const char *req = "{\"commands\":[{\"command\":\"setAdmin\",\"username\":\"eve\",\"admin\":true}]}";
	assert_int_equal(alias_pub(&eve, "$CONTROL/mqim/v1", 4, req, strlen(req)), NO);
	assert_int_equal(alias_pub(&eve, "", 4, req, strlen(req)), NO);
	/* alias 2 rebound from bob's inbox to the group: the new binding is checked */
	assert_int_equal(alias_pub(&eve, "im/g/team", 2, to_team, tlen), NO);
	assert_int_equal(alias_pub(&eve, "", 2, to_team, tlen), NO);
	/* the legitimate use still works, and bob only ever got eve's message */
	assert_int_equal(alias_pub(&eve, "im/u/bob", 5, legit2, l2len), 0);
	assert_int_equal(alias_pub(&eve, "", 5, legit2, l2len), 0); /* a duplicate id: acked, dropped */
	expect_from(&bob, "im/u/bob", "eve");
	expect_nothing(&bob, "bob (a forged message through an alias)", QUIET_MS);
	expect_nothing(&carol, "carol (eve's group message through an alias)", 50);

	/* each refusal names the resolved topic */
	const char *fr[] = { "mqim: denied publish 'im/u/bob'", "client=eve/alias",
			     "envelope 'fr' is not the logged-in user", NULL };
	const char *grp[] = { "mqim: denied publish 'im/g/team'", "client=eve/alias",
			      "not a member of the group", NULL };
	assert_true(tbroker_log_wait_line(&broker, fr, 2000));
	assert_true(tbroker_log_wait_line(&broker, grp, 2000));
	/* an alias over the broker's maximum (10) is a protocol error: eve is
	 * disconnected, nobody else notices */
	assert_int_equal(alias_pub(&eve, "im/u/bob", 500, legit, llen), RAW_CLOSED);
	free(forged);
	free(legit);
	free(legit2);
	free(to_team);
	raw_close(&eve);
	raw_disconnect(&bob);
	raw_disconnect(&carol);
	bystanders_ok();
}

/* ---- persistent sessions ------------------------------------------------------------ */

/* carol's persistent session: clean start off, an hour of session expiry. */
static int carol_session(struct raw *r, bool *present)
{
	struct mqtt_connect c;
	memset(&c, 0, sizeof c);
	c.version = 5;
	c.client_id = "carol/phone";
	c.username = "carol";
	c.password = ATK_PW;
	c.keepalive_s = 60;
	c.clean_start = false;
	c.session_expiry_s = 3600;
	return raw_connect_retry(r, broker.port, &c, present);
}

static void removed_member_keeps_no_subscription(void **state)
{
	struct raw carol, alice, bob;
	bool present = false;
	login(&alice, "alice", "persist");
	login(&bob, "bob", "persist");
	assert_int_equal(raw_subscribe(&bob, "im/g/team", MQTT_SUB_QOS(1), WAIT_MS), 1);

	assert_int_equal(carol_session(&carol, &present), 0);
	assert_int_equal(raw_subscribe(&carol, "im/g/team", MQTT_SUB_QOS(1), WAIT_MS), 1);
	raw_disconnect(&carol);

	/* while she is a member, the session queues for her (the control) */
	send_ok(&alice, "im/g/team", "alice", "team");
	expect_from(&bob, "im/g/team", "alice");
	assert_int_equal(carol_session(&carol, &present), 0);
	assert_true(present);
	expect_from(&carol, "im/g/team", "alice");
	raw_disconnect(&carol);

	/* removed while offline, through $CONTROL */
	struct atk_admin root;
	assert_int_equal(atk_admin_open(&root, broker.port, "root"), 0);
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"removeGroupMember\",\"group\":\"team\","
				       "\"username\":\"carol\"}"), 0);
	for (int i = 0; i < 3; i++) {
		send_ok(&alice, "im/g/team", "alice", "team");
		expect_from(&bob, "im/g/team", "alice");
	}

	/* she comes back to her session: its subscription delivers nothing */
	assert_int_equal(carol_session(&carol, &present), 0);
	assert_true(present);
	expect_nothing(&carol, "carol (removed from team)", QUIET_MS);
	send_ok(&alice, "im/g/team", "alice", "team");
	expect_from(&bob, "im/g/team", "alice");
	expect_nothing(&carol, "carol (removed from team, online)", QUIET_MS);
	/* and she cannot subscribe again; the refusal is logged */
	assert_int_equal(raw_subscribe(&carol, "im/g/team", MQTT_SUB_QOS(1), WAIT_MS), NO);
	const char *line[] = { "mqim: denied subscribe 'im/g/team'", "client=carol/phone",
			       "not a member of the group", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));

	/* put her back, so the file's other tests see the same groups */
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"addGroupMember\",\"group\":\"team\","
				       "\"username\":\"carol\"}"), 0);
	atk_admin_close(&root);
	/* end the session */
	uint8_t b[16];
	size_t n = mqtt_enc_disconnect(b, sizeof b, 5, 0, 0);
	raw_send(&carol, b, n);
	raw_close(&carol);
	raw_disconnect(&alice);
	raw_disconnect(&bob);
	bystanders_ok();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(wildcards_and_shares_refused, before_each),
		cmocka_unit_test_setup(share_group_of_the_victim, before_each),
		cmocka_unit_test_setup(malformed_shares_refused, before_each),
		cmocka_unit_test_setup(sys_refused_to_non_admins, before_each),
		cmocka_unit_test_setup(control_refused_to_non_admins, before_each),
		cmocka_unit_test_setup(topic_alias_checked_on_resolved_topic, before_each),
		cmocka_unit_test_setup(removed_member_keeps_no_subscription, before_each),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("attacks: eavesdropping", tests, setup, teardown);
}
