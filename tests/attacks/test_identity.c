/* test_identity.c - attack catalogue, identity: logging in as what one is
 * not, against a real broker with the plugin, over raw MQTT 5.
 *
 *  - user names with / + # $ % and spaces, format strings, empty, 65 and
 *    1,000 characters, homoglyphs (a Cyrillic "а" in "аlice"), control
 *    characters meant to forge log lines: refused at login and by
 *    $CONTROL createUser (and createGroup / addGroupMember);
 *  - a connection without a username (with and without a password);
 *  - another user's client id (session theft): refused, and the victim,
 *    online with a persistent session, is not kicked and loses nothing;
 *  - control characters in the part of a client id after "{user}/";
 *  - a deleted or disabled user's live session (kicked) and persistent
 *    session (cannot be resumed; what it queued reaches nobody else, not
 *    even a new account that gets the deleted name).
 *
 * One broker for the file, lockout off (the file fails logins on purpose).
 * Users: alice, bob, eve, dora, fred, gina, hank, root (admin), and the
 * bystanders by1 and by2, who chat in the background and are checked at
 * the end of each test.
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
static struct atk_admin root;

static int setup(void **state)
{
	static const char *const users[] = { "alice", "bob", "eve", "dora", "fred", "gina",
					     "hank", "by1", "by2" };
	if (tbroker_init(&broker, "plugin_opt_lockout_failures 0\n") != 0)
		goto fail;
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		if (tbroker_add_user(&broker, users[i], ATK_PW, false) != 0)
			goto fail;
	if (tbroker_add_user(&broker, "root", ATK_PW, true) != 0 || tbroker_start(&broker) != 0)
		goto fail;
	if (atk_admin_open(&root, broker.port, "root") != 0)
		goto fail;
	if (atk_pair_open(&bystanders, broker.port, "by1", "by2") != 0 ||
	    atk_pair_start(&bystanders, 20) != 0)
		goto fail;
	return 0;
fail:
	atk_pair_close(&bystanders);
	atk_admin_close(&root);
	tbroker_cleanup(&broker);
	return -1;
}

static int teardown(void **state)
{
	atk_pair_close(&bystanders);
	atk_admin_close(&root);
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

/* CONNACK of one raw MQTT 5 login (the connection is closed after),
 * retried while the broker closes it without one (its hashing budget). */
static int try_login(const char *client_id, const char *user, const char *pass)
{
	struct raw r;
	int rc = raw_login_retry(&r, broker.port, client_id, user, pass);
	raw_close(&r);
	return rc;
}

/* The same without retries: a connection Mosquitto itself closes. */
static int try_login_once(const char *client_id, const char *user, const char *pass)
{
	struct raw r;
	int rc = raw_login(&r, broker.port, client_id, user, pass);
	raw_close(&r);
	return rc;
}

/* A persistent-session login (clean start off, an hour of expiry). */
static int persistent_login(struct raw *r, const char *client_id, const char *user,
			    const char *pass, bool *present)
{
	struct mqtt_connect c;
	memset(&c, 0, sizeof c);
	c.version = 5;
	c.client_id = client_id;
	c.username = user;
	c.password = pass;
	c.keepalive_s = 60;
	c.clean_start = false;
	c.session_expiry_s = 3600;
	return raw_connect_retry(r, broker.port, &c, present);
}

static void login_ok(struct raw *r, const char *client_id, const char *user)
{
	int rc = raw_login_retry(r, broker.port, client_id, user, ATK_PW);
	if (rc != 0)
		fail_msg("login of %s answered %d", client_id, rc);
}

static void send_ok(struct raw *r, const char *topic, const char *fr, const char *to,
		    uint8_t id[MQIM_ENV_ID_LEN])
{
	void *env = NULL;
	size_t len = atk_env(&env, "msg", fr, to, "hello", NULL, id);
	assert_true(len > 0);
	int rc = raw_pub(r, topic, env, len, 1, false, WAIT_MS);
	free(env);
	if (rc != 0 && rc != 0x10)
		fail_msg("publish to %s answered %d", topic, rc);
}

/* Exactly the message id arrives at r, once, and nothing after it. */
static void expect_once(struct raw *r, const uint8_t id[MQIM_ENV_ID_LEN], const char *who)
{
	struct mqtt_pkt m;
	struct mqim_env env;
	int rc = raw_next_publish(r, &m, WAIT_MS);
	if (rc != 0)
		fail_msg("%s: the message did not arrive (%d)", who, rc);
	assert_int_equal(atk_env_decode(m.payload, m.payload_len, &env), 0);
	if (memcmp(env.id, id, MQIM_ENV_ID_LEN) != 0)
		fail_msg("%s: another message arrived (a duplicate or a stale one)", who);
	rc = raw_next_publish(r, &m, QUIET_MS);
	if (rc == 0)
		fail_msg("%s: a second message arrived on %.*s", who, (int)m.topic_len, m.topic);
}

/* ---- names ------------------------------------------------------------------------ */

#define NAME64 "a123456789b123456789c123456789d123456789e123456789f123456789g123"
#define FORGED_AUDIT "mqim: admin client=root user=root command=setAdmin username=eve: ok"

static char name1000[1001];

static const char *bad_names[] = {
	"al/ice", "al+ice", "al#ice", "$alice", "al%ice", "alice/", "/alice", "al ice",
	"alice#", "+", "#", "$SYS", "%s%n%x", "%n%n%n%n%n%n%n%n", "%s%s%s%s%s%s%s%s%s%s%s%s",
	"%x%x%x%x%p%p%p%p", "%99999999s", "", NAME64 "x", name1000,
	"\xd0\xb0lice",         /* Cyrillic а (U+0430) then "lice" */
	"alic\xd0\xb5",         /* Cyrillic е (U+0435) */
	"\xef\xbd\x81lice",     /* fullwidth ａ */
	"al\xc2\xadice",        /* a soft hyphen inside */
	"_alice", ".alice", "-alice", "alice\x7f",
	"x\n" FORGED_AUDIT,     /* a forged audit line after a newline */
	"x\r" FORGED_AUDIT,
};
#define NBAD (sizeof bad_names / sizeof bad_names[0])

static void fill_name1000(void)
{
	memset(name1000, 'n', 1000);
	name1000[1000] = '\0';
}

/* No line of the log starts with the forged audit text. */
static void no_forged_line(void)
{
	assert_int_equal(tbroker_log_count(&broker, "\n" FORGED_AUDIT), 0);
	assert_int_equal(tbroker_log_count(&broker, "\r" FORGED_AUDIT), 0);
}

/* True when s holds a control character: Mosquitto itself refuses such a
 * user name or client id as malformed UTF-8 (U+0000-U+001F, U+007F-U+009F)
 * and closes the connection without a CONNACK, before the plugin sees it. */
static bool has_control(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return true;
	return false;
}

/* A refusal: CONNACK 0x87, or for control characters the connection closed
 * by Mosquitto's UTF-8 check. */
static bool refused(const char *s, int rc)
{
	return rc == NO || (has_control(s) && rc == RAW_CLOSED);
}

static void bad_names_refused_at_login(void **state)
{
	fill_name1000();
	int before = tbroker_log_count(&broker, "username breaks the naming rules");
	int by_plugin = 0;
	for (size_t i = 0; i < NBAD; i++) {
		const char *cid = bad_names[i][0] ? bad_names[i] : "x";
		int (*attempt)(const char *, const char *, const char *) =
			has_control(bad_names[i]) ? try_login_once : try_login;
		int rc = attempt(cid, bad_names[i], ATK_PW);
		if (!refused(bad_names[i], rc))
			fail_msg("login as \"%.40s\" (case %zu) answered %d", bad_names[i], i, rc);
		/* and with a client id that is fine on its own */
		rc = attempt("alice", bad_names[i], ATK_PW);
		if (!refused(bad_names[i], rc))
			fail_msg("login as \"%.40s\" with client id alice answered %d", bad_names[i], rc);
		/* an empty user name reaches the plugin as no user name at all */
		by_plugin += has_control(bad_names[i]) || !bad_names[i][0] ? 0 : 2;
	}
	/* the real alice, with a homoglyph of her name as client id */
	assert_int_equal(try_login("\xd0\xb0lice", "alice", ATK_PW), NO);
	assert_int_equal(try_login("\xd0\xb0lice/phone", "alice", ATK_PW), NO);
	/* every refusal is logged once with its reason, and cleaned */
	const char *line[] = { "mqim: denied login", "user=%s%n%x",
			       "username breaks the naming rules", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	assert_int_equal(tbroker_log_count(&broker, "username breaks the naming rules") - before,
			 by_plugin);
	no_forged_line();
	bystanders_ok();
}

/* One $CONTROL command built with cJSON (so every name is escaped right):
 * the response, or NULL. */
static cJSON *control(const char *command, const char *k1, const char *v1, const char *k2,
		      const char *v2)
{
	cJSON *cmd = cJSON_CreateObject();
	cJSON_AddStringToObject(cmd, "command", command);
	if (k1)
		cJSON_AddStringToObject(cmd, k1, v1);
	if (k2)
		cJSON_AddStringToObject(cmd, k2, v2);
	char *text = cJSON_PrintUnformatted(cmd);
	cJSON_Delete(cmd);
	cJSON *r = text ? atk_admin_call(&root, text) : NULL;
	cJSON_free(text);
	return r;
}

static void bad_names_refused_by_control(void **state)
{
	fill_name1000();
	for (size_t i = 0; i < NBAD; i++) {
		cJSON *r = control("createUser", "username", bad_names[i], "password", "pw-x-1");
		assert_non_null(r);
		const char *err = tcontrol_error(r);
		if (!err || !strstr(err, "invalid username"))
			fail_msg("createUser \"%.40s\" (case %zu): %s", bad_names[i], i,
				 err ? err : "accepted");
		cJSON_Delete(r);
		r = control("createGroup", "group", bad_names[i], NULL, NULL);
		assert_non_null(r);
		if (!tcontrol_error(r))
			fail_msg("createGroup \"%.40s\" was accepted", bad_names[i]);
		cJSON_Delete(r);
	}
	/* none of them exists now: the user list is the one the file made */
	cJSON *r = control("listUsers", NULL, NULL, NULL, NULL);
	assert_non_null(r);
	cJSON *users = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "data"),
							"users");
	assert_int_equal(cJSON_GetArraySize(users), 10);
	cJSON_Delete(r);
	r = control("listGroups", NULL, NULL, NULL, NULL);
	assert_non_null(r);
	cJSON *groups = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "data"),
							 "groups");
	assert_int_equal(cJSON_GetArraySize(groups), 0);
	cJSON_Delete(r);
	/* the homoglyph cannot log in either, having no account */
	assert_int_equal(try_login("\xd0\xb0lice", "\xd0\xb0lice", "pw-x-1"), NO);
	/* the audit lines name the command and are cleaned of control characters */
	const char *line[] = { "mqim: admin client=root/atk-admin user=root command=createUser",
			       "username=%s%n%x", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	no_forged_line();
	bystanders_ok();
}

static void no_username_refused(void **state)
{
	struct raw r;
	struct mqtt_connect c;
	memset(&c, 0, sizeof c);
	c.version = 5;
	c.keepalive_s = 60;
	c.clean_start = true;
	const char *cids[] = { "alice", "anon", "" };
	for (size_t i = 0; i < 3; i++) {
		c.client_id = cids[i];
		c.username = NULL;
		c.password = NULL;
		assert_int_equal(raw_open(&r, broker.port), 0);
		assert_int_equal(raw_connect(&r, &c, NULL, WAIT_MS), NO);
		raw_close(&r);
		/* MQTT 5 allows a password without a username */
		c.password = ATK_PW;
		assert_int_equal(raw_open(&r, broker.port), 0);
		assert_int_equal(raw_connect(&r, &c, NULL, WAIT_MS), NO);
		raw_close(&r);
	}
	/* MQTT 3.1.1: CONNACK 5, not authorized */
	c.version = 4;
	c.client_id = "anon";
	c.password = NULL;
	assert_int_equal(raw_open(&r, broker.port), 0);
	assert_int_equal(raw_connect(&r, &c, NULL, WAIT_MS), 5);
	raw_close(&r);
	const char *line[] = { "mqim: denied login", "client=anon",
			       "no username (anonymous logins are never allowed)", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	bystanders_ok();
}

/* ---- session theft ------------------------------------------------------------------- */

static void session_theft_refused_victim_untouched(void **state)
{
	struct raw alice, bob;
	bool present = true;
	uint8_t id[MQIM_ENV_ID_LEN];
	assert_int_equal(persistent_login(&alice, "alice", "alice", ATK_PW, &present), 0);
	assert_int_equal(raw_subscribe(&alice, "im/u/alice", MQTT_SUB_QOS(1), WAIT_MS), 1);
	login_ok(&bob, "bob/theft", "bob");
	send_ok(&bob, "im/u/alice", "bob", "alice", id);
	expect_once(&alice, id, "alice before the attempts");

	/* eve, with her own good password, under alice's client ids */
	static const char *const stolen[] = { "alice", "alice/phone", "alice/", "alice/bystander" };
	for (size_t i = 0; i < sizeof stolen / sizeof stolen[0]; i++) {
		assert_int_equal(try_login(stolen[i], "eve", ATK_PW), NO);
		struct raw e;
		bool p = false;
		assert_int_equal(persistent_login(&e, stolen[i], "eve", ATK_PW, &p), NO);
		raw_close(&e);
	}
	/* guessing alice's password under her client id */
	assert_int_equal(try_login("alice", "alice", "not-her-password"), NO);
	/* the same over MQTT 3.1.1 */
	struct raw e;
	struct mqtt_connect c;
	memset(&c, 0, sizeof c);
	c.version = 4;
	c.client_id = "alice";
	c.username = "eve";
	c.password = ATK_PW;
	c.keepalive_s = 60;
	assert_int_equal(raw_open(&e, broker.port), 0);
	assert_int_equal(raw_connect(&e, &c, NULL, WAIT_MS), 5);
	raw_close(&e);

	/* alice was never disconnected and still gets each message once */
	assert_int_equal(raw_ping(&alice, WAIT_MS), 0);
	send_ok(&bob, "im/u/alice", "bob", "alice", id);
	expect_once(&alice, id, "alice after the attempts");

	/* offline with her session kept: the attempts cannot resume it */
	raw_disconnect(&alice);
	for (size_t i = 0; i < 2; i++) {
		bool p = false;
		assert_int_equal(persistent_login(&e, stolen[i], "eve", ATK_PW, &p), NO);
		raw_close(&e);
	}
	send_ok(&bob, "im/u/alice", "bob", "alice", id);
	assert_int_equal(persistent_login(&alice, "alice", "alice", ATK_PW, &present), 0);
	assert_true(present);
	expect_once(&alice, id, "alice back in her session");

	const char *line[] = { "mqim: denied login", "client=alice/phone", "user=eve",
			       "client id must be the username or start with 'username/'", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	/* end alice's session */
	uint8_t b[16];
	raw_send(&alice, b, mqtt_enc_disconnect(b, sizeof b, 5, 0, 0));
	raw_close(&alice);
	raw_disconnect(&bob);
	bystanders_ok();
}

/* The part after "{user}/" is free, and Mosquitto logs every accepted
 * client id verbatim: control characters there must not forge log lines.
 * Mosquitto refuses them as malformed UTF-8 (the connection is closed
 * without a CONNACK); format directives are only text. */
static void client_id_cannot_forge_log_lines(void **state)
{
	static const char *const ids[] = {
		"alice/x\n1732550000: " FORGED_AUDIT,
		"alice/x\r" FORGED_AUDIT,
		"alice/\x1b[2K\r" FORGED_AUDIT,
	};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		assert_int_equal(try_login_once(ids[i], "alice", ATK_PW), RAW_CLOSED);
	assert_int_equal(try_login("alice/%s%n%x%n", "alice", ATK_PW), 0);
	assert_true(tbroker_log_wait(&broker, "as alice/%s%n%x%n (p5", 2000));
	atk_sleep_ms(200);
	assert_int_equal(tbroker_log_count(&broker, "\n1732550000: " FORGED_AUDIT), 0);
	no_forged_line();
	bystanders_ok();
}

/* ---- deleted and disabled users ----------------------------------------------------- */

/* r was kicked: a DISCONNECT 0x98 and/or the connection closed. */
static void expect_kicked(struct raw *r, const char *who)
{
	struct mqtt_pkt m;
	int64_t end = raw_now_ms() + WAIT_MS;
	while (raw_now_ms() < end) {
		int rc = raw_recv(r, &m, 200);
		if (rc == RAW_CLOSED)
			return;
		if (rc == 0 && m.type == MQTT_DISCONNECT) {
			assert_int_equal(m.reason, 0x98);
			return;
		}
	}
	fail_msg("%s was not disconnected", who);
}

static void live_sessions_of_deleted_and_disabled_users_kicked(void **state)
{
	struct raw dora, fred;
	login_ok(&dora, "dora/live", "dora");
	login_ok(&fred, "fred/live", "fred");
	assert_int_equal(raw_subscribe(&dora, "im/u/dora", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(raw_subscribe(&fred, "im/u/fred", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"deleteUser\",\"username\":\"dora\"}"), 0);
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"disableUser\",\"username\":\"fred\"}"), 0);
	expect_kicked(&dora, "dora (deleted)");
	expect_kicked(&fred, "fred (disabled)");
	raw_close(&dora);
	raw_close(&fred);
	assert_int_equal(try_login("dora/live", "dora", ATK_PW), NO);
	assert_int_equal(try_login("fred/live", "fred", ATK_PW), NO);
	assert_true(tbroker_log_wait(&broker, "mqim: disconnecting every session of user=dora", 2000));
	assert_true(tbroker_log_wait(&broker, "mqim: disconnecting every session of user=fred", 2000));
	const char *l1[] = { "mqim: denied login", "client=dora/live", "unknown user", NULL };
	const char *l2[] = { "mqim: denied login", "client=fred/live", "user is disabled", NULL };
	assert_true(tbroker_log_wait_line(&broker, l1, 2000));
	assert_true(tbroker_log_wait_line(&broker, l2, 2000));
	bystanders_ok();
}

/* user has a persistent session subscribed to its inbox, offline, with one
 * message from alice queued (its id in id). */
static void offline_with_one_queued(const char *user, struct raw *alice,
				    uint8_t id[MQIM_ENV_ID_LEN])
{
	struct raw r;
	bool present = true;
	char inbox[80];
	snprintf(inbox, sizeof inbox, "im/u/%s", user);
	assert_int_equal(persistent_login(&r, user, user, ATK_PW, &present), 0);
	assert_int_equal(raw_subscribe(&r, inbox, MQTT_SUB_QOS(1), WAIT_MS), 1);
	raw_disconnect(&r);
	send_ok(alice, inbox, "alice", user, id);
}

static void persistent_session_of_deleted_user(void **state)
{
	struct raw alice, r;
	uint8_t id[MQIM_ENV_ID_LEN], id2[MQIM_ENV_ID_LEN];
	bool present = true;
	login_ok(&alice, "alice/pd", "alice");
	offline_with_one_queued("gina", &alice, id);
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"deleteUser\",\"username\":\"gina\"}"), 0);
	atk_sleep_ms(100);

	/* gina cannot resume; nobody else can take her client id */
	assert_int_equal(persistent_login(&r, "gina", "gina", ATK_PW, &present), NO);
	raw_close(&r);
	assert_int_equal(persistent_login(&r, "gina", "eve", ATK_PW, &present), NO);
	raw_close(&r);
	/* mail sent to the deleted name meanwhile */
	send_ok(&alice, "im/u/gina", "alice", "gina", id2);

	/* the name is given to someone new: the old session's mail is not theirs */
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"createUser\",\"username\":\"gina\","
				       "\"password\":\"new-owner-Pw-1\"}"), 0);
	assert_int_equal(persistent_login(&r, "gina", "gina", "new-owner-Pw-1", &present), 0);
	struct mqtt_pkt m;
	struct mqim_env env;
	if (raw_next_publish(&r, &m, QUIET_MS) == 0) {
		bool old = atk_env_decode(m.payload, m.payload_len, &env) == 0 &&
			   memcmp(env.id, id, MQIM_ENV_ID_LEN) == 0;
		raw_close(&r);
		raw_close(&alice);
		fail_msg("the new owner of the name gina received %s (session present %d)",
			 old ? "the message queued for the deleted account" : "a message",
			 (int)present);
	}
	uint8_t b[16];
	raw_send(&r, b, mqtt_enc_disconnect(b, sizeof b, 5, 0, 0));
	raw_close(&r);
	raw_disconnect(&alice);
	const char *line[] = { "mqim: denied login", "client=gina", "user=eve",
			       "client id must be the username", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	bystanders_ok();
}

/* The same, when the name is given again offline (the store, as mqimctl
 * --db does) and the broker restarted: the old session and its queue are
 * persisted across the restart. */
static void persistent_session_of_deleted_user_across_restart(void **state)
{
	struct tbroker b2;
	struct raw alice, r;
	struct atk_admin adm;
	uint8_t id[MQIM_ENV_ID_LEN];
	bool present = true;
	struct mqtt_connect c;
	assert_int_equal(tbroker_init(&b2, NULL), 0);
	assert_int_equal(tbroker_add_user(&b2, "alice", ATK_PW, false), 0);
	assert_int_equal(tbroker_add_user(&b2, "ivy", ATK_PW, false), 0);
	assert_int_equal(tbroker_add_user(&b2, "root", ATK_PW, true), 0);
	assert_int_equal(tbroker_start(&b2), 0);
	memset(&c, 0, sizeof c);
	c.version = 5;
	c.client_id = "ivy";
	c.username = "ivy";
	c.password = ATK_PW;
	c.keepalive_s = 60;
	c.clean_start = false;
	c.session_expiry_s = 3600;
	assert_int_equal(raw_connect_retry(&r, b2.port, &c, &present), 0);
	assert_int_equal(raw_subscribe(&r, "im/u/ivy", MQTT_SUB_QOS(1), WAIT_MS), 1);
	raw_disconnect(&r);
	assert_int_equal(raw_login_retry(&alice, b2.port, "alice/restart", "alice", ATK_PW), 0);
	send_ok(&alice, "im/u/ivy", "alice", "ivy", id);
	raw_disconnect(&alice);
	assert_int_equal(atk_admin_open(&adm, b2.port, "root"), 0);
	assert_int_equal(atk_admin_ok(&adm, "{\"command\":\"deleteUser\",\"username\":\"ivy\"}"), 0);
	atk_admin_close(&adm);
	atk_sleep_ms(1500); /* persistence is saved every second */
	assert_int_equal(tbroker_stop(&b2), 0);
	/* the name is given to someone new, offline */
	assert_int_equal(tbroker_add_user(&b2, "ivy", "new-owner-Pw-2", false), 0);
	assert_int_equal(tbroker_start(&b2), 0);
	c.password = "new-owner-Pw-2";
	assert_int_equal(raw_connect_retry(&r, b2.port, &c, &present), 0);
	struct mqtt_pkt m;
	struct mqim_env env;
	int got = raw_next_publish(&r, &m, QUIET_MS);
	bool old = got == 0 && atk_env_decode(m.payload, m.payload_len, &env) == 0 &&
		   memcmp(env.id, id, MQIM_ENV_ID_LEN) == 0;
	uint8_t b[16];
	raw_send(&r, b, mqtt_enc_disconnect(b, sizeof b, 5, 0, 0));
	raw_close(&r);
	assert_int_equal(tbroker_cleanup(&b2), 0);
	if (got == 0)
		fail_msg("the new owner of the name ivy received %s (session present %d)",
			 old ? "the message queued for the deleted account" : "a message",
			 (int)present);
	bystanders_ok();
}

static void persistent_session_of_disabled_user(void **state)
{
	struct raw alice, r;
	uint8_t id[MQIM_ENV_ID_LEN], id2[MQIM_ENV_ID_LEN];
	bool present = true;
	login_ok(&alice, "alice/pz", "alice");
	offline_with_one_queued("hank", &alice, id);
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"disableUser\",\"username\":\"hank\"}"), 0);

	assert_int_equal(persistent_login(&r, "hank", "hank", ATK_PW, &present), NO);
	raw_close(&r);
	assert_int_equal(persistent_login(&r, "hank", "eve", ATK_PW, &present), NO);
	raw_close(&r);
	assert_int_equal(persistent_login(&r, "hank/other", "hank", ATK_PW, &present), NO);
	raw_close(&r);
	send_ok(&alice, "im/u/hank", "alice", "hank", id2);

	/* enabled again: hank's own session gives him what was queued for him
	 * before, once */
	assert_int_equal(atk_admin_ok(&root, "{\"command\":\"enableUser\",\"username\":\"hank\"}"), 0);
	assert_int_equal(persistent_login(&r, "hank", "hank", ATK_PW, &present), 0);
	assert_true(present);
	expect_once(&r, id, "hank re-enabled");
	uint8_t b[16];
	raw_send(&r, b, mqtt_enc_disconnect(b, sizeof b, 5, 0, 0));
	raw_close(&r);
	raw_disconnect(&alice);
	const char *line[] = { "mqim: denied login", "client=hank", "user=hank",
			       "user is disabled", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	bystanders_ok();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(bad_names_refused_at_login, before_each),
		cmocka_unit_test_setup(bad_names_refused_by_control, before_each),
		cmocka_unit_test_setup(no_username_refused, before_each),
		cmocka_unit_test_setup(session_theft_refused_victim_untouched, before_each),
		cmocka_unit_test_setup(client_id_cannot_forge_log_lines, before_each),
		cmocka_unit_test_setup(live_sessions_of_deleted_and_disabled_users_kicked, before_each),
		cmocka_unit_test_setup(persistent_session_of_deleted_user, before_each),
		cmocka_unit_test_setup(persistent_session_of_deleted_user_across_restart, before_each),
		cmocka_unit_test_setup(persistent_session_of_disabled_user, before_each),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("attacks: identity", tests, setup, teardown);
}
