/* test_forgery.c - attack catalogue, forgery: speaking for someone else,
 * against a real broker with the plugin, over raw MQTT 5.
 *
 *  - a forged sender (fr) on an inbox, a group and a presence topic, at
 *    every QoS;
 *  - a recipient (to) that does not match the topic;
 *  - a sender's own bts (of any type): replaced by the broker's clock;
 *  - MQTT 5 user properties claiming another sender: Mosquitto forwards
 *    them untouched, so they are never trusted; the envelope's fr (checked
 *    by the broker) is, and libmqim reports that one;
 *  - another sender's message id: de-duplication is by (fr, id), so eve
 *    can neither suppress alice's messages by using their ids first nor be
 *    suppressed by them;
 *  - wills to an inbox, a group, another user's presence and $CONTROL (by a
 *    user and by an admin), sent on a lost connection, after a will delay,
 *    and on a session takeover: never delivered, never executed;
 *  - retained messages on inboxes and groups: refused (0x87), nothing kept.
 *
 * One broker for the file.  Users: alice, bob, carol, eve, root (admin),
 * by1 and by2 (the bystanders, chatting in the background); groups team =
 * {alice, bob, carol} and mixed = {eve, bob}.
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
#include "tclient.h"
#include "tcontrol.h"
#include "../integration/test_client_util.h"

#define NO 0x87
#define QUIET_MS 600
#define WAIT_MS 5000

static struct tbroker broker;
static struct atk_pair bystanders;
static size_t test_mark;
/* a libmqim client (paho): static, closed by after_each even when its test
 * fails, and used in the last test only (see atk.h, struct atk_admin) */
static struct tc tc_carol;
static bool carol_open;
static char carol_dir[256];

static int setup(void **state)
{
	static const char *const team[] = { "alice", "bob", "carol", NULL };
	static const char *const mixed[] = { "eve", "bob", NULL };
	static const char *const users[] = { "alice", "bob", "carol", "eve", "by1", "by2" };
	if (tbroker_init(&broker, NULL) != 0)
		goto fail;
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		if (tbroker_add_user(&broker, users[i], ATK_PW, false) != 0)
			goto fail;
	if (tbroker_add_user(&broker, "root", ATK_PW, true) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_add_group(&broker, "mixed", mixed) != 0 || tbroker_start(&broker) != 0)
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

static int after_each(void **state)
{
	if (carol_open) {
		tc_close(&tc_carol);
		tc_rmdir(carol_dir);
		carol_open = false;
	}
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

static void subscribe(struct raw *r, const char *filter)
{
	assert_int_equal(raw_subscribe(r, filter, MQTT_SUB_QOS(1), WAIT_MS), 1);
}

static void expect_nothing(struct raw *r, const char *who)
{
	struct mqtt_pkt m;
	int rc = raw_next_publish(r, &m, QUIET_MS);
	if (rc == 0)
		fail_msg("%s received a message on %.*s", who, (int)m.topic_len, m.topic);
}

/* The next message at r: decoded into *env (pointing into r's buffer, valid
 * until the next raw call on r); its packet in *m. */
static void next_env(struct raw *r, struct mqtt_pkt *m, struct mqim_env *env, const char *who)
{
	int rc = raw_next_publish(r, m, WAIT_MS);
	if (rc != 0)
		fail_msg("%s: nothing arrived (%d)", who, rc);
	assert_int_equal(atk_env_decode(m->payload, m->payload_len, env), 0);
}

/* Publish a crafted envelope (a struct mpw) at every QoS; each answer must
 * be want (QoS 0 has none: 0). */
static void pub_all_qos(struct raw *r, const char *topic, const struct mpw *w, int want)
{
	for (uint8_t qos = 0; qos <= 2; qos++) {
		int rc = raw_pub(r, topic, w->b, w->len, qos, false, WAIT_MS);
		if (rc != (qos ? want : 0))
			fail_msg("QoS %u publish to %s answered %d, want %d", qos, topic, rc, want);
	}
}

static void random_id(uint8_t id[MQIM_ENV_ID_LEN])
{
	assert_int_equal(trandom_id(id), 0);
}

/* ---- fr and to ---------------------------------------------------------------------- */

static void forged_sender_refused(void **state)
{
	struct raw eve, bob;
	uint8_t id[MQIM_ENV_ID_LEN];
	login(&eve, "eve", "fr");
	login(&bob, "bob", "fr");
	subscribe(&bob, "im/u/bob");
	subscribe(&bob, "im/g/mixed");
	subscribe(&bob, "im/p/eve");
	static const char *const liars[] = { "alice", "bob", "Eve", "root", "eve.", "evE" };
	for (size_t i = 0; i < sizeof liars / sizeof liars[0]; i++) {
		struct mpw w;
		random_id(id);
		mpw_init(&w);
		mpw_env(&w, 1, "msg", liars[i], "bob", id);
		mpw_str(&w, "body");
		mpw_str(&w, "trust me");
		pub_all_qos(&eve, "im/u/bob", &w, NO);
		mpw_free(&w);
		/* in a group eve belongs to */
		mpw_init(&w);
		mpw_env(&w, 0, "msg", liars[i], "mixed", id);
		pub_all_qos(&eve, "im/g/mixed", &w, NO);
		mpw_free(&w);
		/* a receipt for a message of bob's, in someone else's name */
		mpw_init(&w);
		mpw_env(&w, 1, "rcpt", liars[i], "bob", id);
		mpw_str(&w, "ref");
		mpw_bin(&w, id, sizeof id);
		pub_all_qos(&eve, "im/u/bob", &w, NO);
		mpw_free(&w);
	}
	/* presence in another's name, on eve's own topic */
	struct mpw w;
	random_id(id);
	mpw_init(&w);
	mpw_env(&w, 1, "presence", "alice", "eve", id);
	mpw_str(&w, "body");
	mpw_str(&w, "online");
	pub_all_qos(&eve, "im/p/eve", &w, NO);
	mpw_free(&w);
	expect_nothing(&bob, "bob (forged senders)");
	const char *line[] = { "mqim: denied publish 'im/u/bob'", "client=eve/fr", "user=eve",
			       "envelope 'fr' is not the logged-in user", NULL };
	const char *gline[] = { "mqim: denied publish 'im/g/mixed'", "client=eve/fr",
				"envelope 'fr' is not the logged-in user", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	assert_true(tbroker_log_wait_line(&broker, gline, 2000));
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	bystanders_ok();
}

static void mismatched_recipient_refused(void **state)
{
	struct raw eve, bob, alice;
	uint8_t id[MQIM_ENV_ID_LEN];
	login(&eve, "eve", "to");
	login(&bob, "bob", "to");
	login(&alice, "alice", "to");
	subscribe(&bob, "im/u/bob");
	subscribe(&bob, "im/g/mixed");
	subscribe(&alice, "im/u/alice");
	static const struct { const char *topic, *to; } cases[] = {
		{ "im/u/bob", "alice" }, { "im/u/bob", "BOB" }, { "im/u/bob", "bo" },
		{ "im/u/bob", "bobb" }, { "im/u/bob", "mixed" }, { "im/g/mixed", "bob" },
		{ "im/g/mixed", "team" }, { "im/g/mixed", "Mixed" }, { "im/p/eve", "bob" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct mpw w;
		random_id(id);
		mpw_init(&w);
		mpw_env(&w, 0, strncmp(cases[i].topic, "im/p/", 5) ? "msg" : "presence", "eve",
			cases[i].to, id);
		pub_all_qos(&eve, cases[i].topic, &w, NO);
		mpw_free(&w);
	}
	expect_nothing(&bob, "bob (mismatched to)");
	expect_nothing(&alice, "alice (mismatched to)");
	const char *line[] = { "mqim: denied publish 'im/u/bob'", "client=eve/to",
			       "envelope 'to' does not match the topic", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	raw_disconnect(&alice);
	bystanders_ok();
}

/* ---- bts ------------------------------------------------------------------------------ */

enum bts_kind { BTS_OLD, BTS_FUTURE, BTS_MAX, BTS_STR, BTS_NEG, BTS_NIL, BTS_BIN };

static void put_bts(struct mpw *w, enum bts_kind k)
{
	static const uint8_t neg[] = { 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb };
	mpw_str(w, "bts");
	switch (k) {
	case BTS_OLD: mpw_uint(w, 1); break;
	case BTS_FUTURE: mpw_uint(w, 4102444800000ull); break; /* 2100-01-01 */
	case BTS_MAX: mpw_uint(w, UINT64_MAX); break;
	case BTS_STR: mpw_str(w, "4102444800000"); break;
	case BTS_NEG: mpw_raw(w, neg, sizeof neg); break;
	case BTS_NIL: mpw_byte(w, 0xc0); break;
	case BTS_BIN: mpw_bin(w, "\x01\x02", 2); break;
	}
}

static void client_bts_replaced(void **state)
{
	struct raw eve, bob;
	struct mqtt_pkt m;
	struct mqim_env env;
	login(&eve, "eve", "bts");
	login(&bob, "bob", "bts");
	subscribe(&bob, "im/u/bob");
	subscribe(&bob, "im/g/mixed");
	for (int k = BTS_OLD; k <= BTS_BIN; k++) {
		for (int g = 0; g < 2; g++) {
			uint8_t id[MQIM_ENV_ID_LEN];
			struct mpw w;
			random_id(id);
			mpw_init(&w);
			mpw_env(&w, 2, "msg", "eve", g ? "mixed" : "bob", id);
			put_bts(&w, (enum bts_kind)k);
			mpw_str(&w, "body");
			mpw_str(&w, "when?");
			uint64_t before = tnow_ms();
			assert_int_equal(raw_pub(&eve, g ? "im/g/mixed" : "im/u/bob", w.b, w.len, 1,
						 false, WAIT_MS), 0);
			uint64_t after = tnow_ms();
			mpw_free(&w);
			next_env(&bob, &m, &env, "bob");
			assert_memory_equal(env.id, id, MQIM_ENV_ID_LEN);
			assert_true(mqim_str_eq(env.fr, "eve"));
			if (!env.has_bts || env.bts < before || env.bts > after)
				fail_msg("case %d: bts %llu, want the broker's clock in [%llu, %llu]", k,
					 (unsigned long long)env.bts, (unsigned long long)before,
					 (unsigned long long)after);
		}
	}
	/* two bts keys: refused, not merged */
	uint8_t id[MQIM_ENV_ID_LEN];
	struct mpw w;
	random_id(id);
	mpw_init(&w);
	mpw_env(&w, 2, "msg", "eve", "bob", id);
	put_bts(&w, BTS_OLD);
	put_bts(&w, BTS_FUTURE);
	assert_int_equal(raw_pub(&eve, "im/u/bob", w.b, w.len, 1, false, WAIT_MS), NO);
	mpw_free(&w);
	expect_nothing(&bob, "bob (two bts keys)");
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	bystanders_ok();
}

/* ---- user properties ------------------------------------------------------------------ */

static size_t user_prop(uint8_t *p, const char *k, const char *v)
{
	size_t n = 0;
	p[n++] = 0x26;
	n += mqtt_put_str(p + n, k, strlen(k));
	n += mqtt_put_str(p + n, v, strlen(v));
	return n;
}

static void user_properties_never_trusted(void **state)
{
	struct raw eve, bob;
	uint8_t props[256], id[MQIM_ENV_ID_LEN];
	size_t np = 0;
	login(&eve, "eve", "props");
	login(&bob, "bob", "props");
	subscribe(&bob, "im/u/bob");
	tc_tmpdir(carol_dir, sizeof carol_dir, "carol");
	assert_int_equal(tc_open(&tc_carol, broker.port, "carol", ATK_PW, carol_dir), MQIM_OK);
	carol_open = true;
	assert_true(tc_wait_state(&tc_carol, MQIM_STATE_CONNECTED, WAIT_MS));

	np += user_prop(props + np, "from", "alice");
	np += user_prop(props + np, "fr", "alice");
	np += user_prop(props + np, "sender", "root");
	props[np++] = 0x03; /* content type */
	np += mqtt_put_str(props + np, "application/x-from-alice", 24);
	for (int i = 0; i < 2; i++) {
		const char *to = i ? "carol" : "bob";
		char topic[32];
		snprintf(topic, sizeof topic, "im/u/%s", to);
		/* 0x10: carol's library has not subscribed yet, nobody got it; try
		 * again with a fresh id (the same one would be a duplicate) */
		int rc = 0x10;
		for (int tries = 0; rc == 0x10 && tries < 50; tries++) {
			void *env = NULL;
			if (tries)
				atk_sleep_ms(100);
			size_t len = atk_env(&env, "msg", "eve", to, "signed, alice", NULL, id);
			assert_true(len > 0);
			struct mqtt_publish p;
			memset(&p, 0, sizeof p);
			p.topic = topic;
			p.payload = env;
			p.payload_len = len;
			p.qos = 1;
			p.props = props;
			p.props_len = np;
			rc = raw_publish(&eve, &p, WAIT_MS);
			free(env);
		}
		assert_int_equal(rc, 0);
	}
	/* Mosquitto forwards user properties as they were sent ... */
	struct mqtt_pkt m;
	struct mqim_env env;
	next_env(&bob, &m, &env, "bob");
	uint8_t want[32];
	size_t wl = user_prop(want, "from", "alice");
	assert_non_null(memmem(m.raw_props, m.raw_props_len, want, wl));
	/* ... but the sender is the envelope's fr, which the broker checked */
	assert_true(mqim_str_eq(env.fr, "eve"));
	assert_true(env.has_bts);
	/* and libmqim reports that sender, whatever the properties say */
	assert_true(tc_wait_msgs(&tc_carol, 1, WAIT_MS));
	pthread_mutex_lock(&tc_carol.mu);
	assert_string_equal(tc_carol.msgs[0].from, "eve");
	assert_string_equal(tc_carol.msgs[0].body, "signed, alice");
	pthread_mutex_unlock(&tc_carol.mu);
	after_each(state);
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	bystanders_ok();
}

/* ---- message ids ------------------------------------------------------------------------- */

static void send_with_id(struct raw *r, const char *fr, const uint8_t id[MQIM_ENV_ID_LEN],
			 const char *body)
{
	void *env = NULL;
	size_t len = atk_env(&env, "msg", fr, "bob", body, id, NULL);
	assert_true(len > 0);
	assert_int_equal(raw_pub(r, "im/u/bob", env, len, 1, false, WAIT_MS), 0);
	free(env);
}

static void expect_msg(struct raw *bob, const char *fr, const uint8_t id[MQIM_ENV_ID_LEN],
		       const char *body)
{
	struct mqtt_pkt m;
	struct mqim_env env;
	next_env(bob, &m, &env, "bob");
	if (!mqim_str_eq(env.fr, fr) || memcmp(env.id, id, MQIM_ENV_ID_LEN) != 0 ||
	    env.body_len != strlen(body) || memcmp(env.body, body, env.body_len) != 0)
		fail_msg("bob expected \"%s\" from %s, got \"%.*s\" from %.*s", body, fr,
			 (int)env.body_len, (const char *)env.body, (int)env.fr.len, env.fr.ptr);
}

static void duplicate_ids_from_another_sender(void **state)
{
	struct raw eve, alice, bob;
	uint8_t x[MQIM_ENV_ID_LEN], y[MQIM_ENV_ID_LEN];
	login(&eve, "eve", "ids");
	login(&alice, "alice", "ids");
	login(&bob, "bob", "ids");
	subscribe(&bob, "im/u/bob");
	random_id(x);
	random_id(y);

	/* eve reuses an id alice used: hers is another message, delivered */
	send_with_id(&alice, "alice", x, "alice x");
	expect_msg(&bob, "alice", x, "alice x");
	send_with_id(&eve, "eve", x, "eve x");
	expect_msg(&bob, "eve", x, "eve x");
	/* eve squats an id before alice uses it: alice is still delivered */
	send_with_id(&eve, "eve", y, "eve y");
	expect_msg(&bob, "eve", y, "eve y");
	send_with_id(&alice, "alice", y, "alice y");
	expect_msg(&bob, "alice", y, "alice y");
	/* a true resend (same sender, same id) is acknowledged and dropped */
	send_with_id(&alice, "alice", x, "alice x again");
	send_with_id(&eve, "eve", y, "eve y again");
	expect_nothing(&bob, "bob (resends)");
	raw_disconnect(&eve);
	raw_disconnect(&alice);
	raw_disconnect(&bob);
	bystanders_ok();
}

/* ---- wills ---------------------------------------------------------------------------------- */

/* Connect user as cid with a will (topic, payload; an optional will delay),
 * then drop the TCP connection without a DISCONNECT.  Returns the CONNACK. */
static int will_fired_once(const char *cid, const char *user, const char *topic,
			   const void *payload, size_t len, bool retain, uint32_t delay_s);

/* will_fired_once(), again while the login is closed without a CONNACK (the
 * plugin's hashing budget), as a client would. */
static int will_fired(const char *cid, const char *user, const char *topic, const void *payload,
		      size_t len, bool retain, uint32_t delay_s)
{
	int rc = RAW_CLOSED;
	for (int delay = 20; rc == RAW_CLOSED && delay <= 1280; delay *= 2) {
		rc = will_fired_once(cid, user, topic, payload, len, retain, delay_s);
		if (rc == RAW_CLOSED)
			atk_sleep_ms(delay);
	}
	return rc;
}

static int will_fired_once(const char *cid, const char *user, const char *topic,
			   const void *payload, size_t len, bool retain, uint32_t delay_s)
{
	struct raw r;
	uint8_t pkt[1024];
	size_t n;
	if (raw_open(&r, broker.port) != 0)
		return RAW_CLOSED;
	if (!delay_s) {
		struct mqtt_connect c;
		memset(&c, 0, sizeof c);
		c.version = 5;
		c.client_id = cid;
		c.username = user;
		c.password = ATK_PW;
		c.keepalive_s = 60;
		c.clean_start = true;
		c.will_topic = topic;
		c.will_payload = payload;
		c.will_len = len;
		c.will_qos = 1;
		c.will_retain = retain;
		n = mqtt_enc_connect(pkt, sizeof pkt, &c);
	} else {
		/* mqtt_raw writes no will properties: this CONNECT is made by
		 * hand, with Will Delay Interval (0x18) and a session expiry
		 * longer than the delay (else the will goes at once) */
		uint8_t body[1024];
		size_t b = 0;
		b += mqtt_put_str(body + b, "MQTT", 4);
		body[b++] = 5;
		body[b++] = (uint8_t)(0x02 | 0x04 | (1 << 3) | (retain ? 0x20 : 0) | 0x40 | 0x80);
		b += mqtt_put_u16(body + b, 60);
		body[b++] = 5;
		b += mqtt_put_prop_int(body + b, MQTT_PROP_SESSION_EXPIRY, 30);
		b += mqtt_put_str(body + b, cid, strlen(cid));
		body[b++] = 5;
		body[b++] = 0x18;
		b += mqtt_put_u32(body + b, delay_s);
		b += mqtt_put_str(body + b, topic, strlen(topic));
		b += mqtt_put_str(body + b, payload, len);
		b += mqtt_put_str(body + b, user, strlen(user));
		b += mqtt_put_str(body + b, ATK_PW, strlen(ATK_PW));
		pkt[0] = 0x10;
		n = 1 + mqtt_put_varint(pkt + 1, (uint32_t)b);
		memcpy(pkt + n, body, b);
		n += b;
	}
	int rc = raw_send(&r, pkt, n) == 0 ? 0 : RAW_CLOSED;
	if (rc == 0) {
		struct mqtt_pkt p;
		rc = raw_recv(&r, &p, WAIT_MS);
		if (rc == 0)
			rc = p.type == MQTT_CONNACK ? p.reason : RAW_MALFORMED;
	}
	raw_close(&r); /* abrupt: the will fires */
	return rc;
}

static void wills_never_delivered(void **state)
{
	struct raw bob, carol;
	struct atk_admin root;
	assert_int_equal(atk_admin_open(&root, broker.port, "root"), 0);
	login(&bob, "bob", "wills");
	login(&carol, "carol", "wills");
	subscribe(&bob, "im/u/bob");
	subscribe(&bob, "im/g/mixed");
	subscribe(&bob, "im/p/bob");
	subscribe(&carol, "im/g/team");
	void *inbox = NULL, *group = NULL, *team = NULL, *pres = NULL;
	size_t il = atk_env(&inbox, "msg", "eve", "bob", "will to an inbox", NULL, NULL);
	size_t gl = atk_env(&group, "msg", "eve", "mixed", "will to a group", NULL, NULL);
	size_t tl = atk_env(&team, "msg", "alice", "team", "will to a group", NULL, NULL);
	size_t pl = atk_env(&pres, "presence", "eve", "bob", "offline", NULL, NULL);
	assert_true(il && gl && tl && pl);
	const char *mk_eve = "{\"commands\":[{\"command\":\"createUser\",\"username\":\"willeve\","
			     "\"password\":\"pw-Will-1\"},{\"command\":\"setAdmin\",\"username\":"
			     "\"eve\",\"admin\":true}]}";
	const char *mk_root = "{\"commands\":[{\"command\":\"createUser\",\"username\":"
			      "\"willroot\",\"password\":\"pw-Will-2\"}]}";
	int rc;
#define FIRE(cid, user, topic, p, l, retain, delay)                                           \
	do {                                                                                  \
		rc = will_fired(cid, user, topic, p, l, retain, delay);                       \
		if (rc != 0 && rc != NO)                                                      \
			fail_msg("login with a will on %s answered %d", topic, rc);            \
	} while (0)
	FIRE("eve/w1", "eve", "im/u/bob", inbox, il, false, 0);
	FIRE("eve/w2", "eve", "im/u/bob", inbox, il, true, 0);
	FIRE("eve/w3", "eve", "im/g/mixed", group, gl, false, 0);
	FIRE("alice/w4", "alice", "im/g/team", team, tl, false, 0);
	FIRE("eve/w5", "eve", "im/p/bob", pres, pl, true, 0);
	FIRE("eve/w6", "eve", "$CONTROL/mqim/v1", mk_eve, strlen(mk_eve), false, 0);
	FIRE("root/w7", "root", "$CONTROL/mqim/v1", mk_root, strlen(mk_root), false, 0);
	FIRE("eve/w8", "eve", "im/u/bob", inbox, il, false, 1); /* sent a second later */
	FIRE("root/w9", "root", "$CONTROL/mqim/v1", mk_root, strlen(mk_root), false, 1);
#undef FIRE
	/* a will sent because the session is taken over by its own user */
	struct raw old, neu;
	struct mqtt_connect c;
	memset(&c, 0, sizeof c);
	c.version = 5;
	c.client_id = "eve/w10";
	c.username = "eve";
	c.password = ATK_PW;
	c.keepalive_s = 60;
	c.clean_start = true;
	c.will_topic = "im/u/bob";
	c.will_payload = inbox;
	c.will_len = il;
	c.will_qos = 1;
	rc = raw_connect_retry(&old, broker.port, &c, NULL);
	assert_true(rc == 0 || rc == NO);
	assert_int_equal(raw_login_retry(&neu, broker.port, "eve/w10", "eve", ATK_PW), 0);
	raw_close(&old);
	raw_disconnect(&neu);

	atk_sleep_ms(2500); /* the delayed wills are due after a second */
	expect_nothing(&bob, "bob (wills)");
	expect_nothing(&carol, "carol (a will to her group)");
	/* nothing was executed: no user created, eve no admin, no response */
	struct mqtt_pkt pk;
	if (raw_next_publish(&root.r, &pk, 100) == 0)
		fail_msg("root received a response to a will");
	cJSON *r = atk_admin_call(&root, "{\"command\":\"getUser\",\"username\":\"willeve\"}");
	assert_non_null(r);
	assert_non_null(tcontrol_error(r));
	cJSON_Delete(r);
	r = atk_admin_call(&root, "{\"command\":\"getUser\",\"username\":\"willroot\"}");
	assert_non_null(r);
	assert_non_null(tcontrol_error(r));
	cJSON_Delete(r);
	r = atk_admin_call(&root, "{\"command\":\"getUser\",\"username\":\"eve\"}");
	assert_non_null(r);
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(r, "data"), "admin")));
	cJSON_Delete(r);
	/* each refused will is in the log with its client */
	static const char *const clients[] = { "client=eve/w1", "client=eve/w3", "client=alice/w4",
					       "client=eve/w6", "client=root/w7", "client=eve/w8",
					       "client=root/w9", "client=eve/w10" };
	for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
		const char *line[] = { "mqim: denied publish", clients[i],
				       "a will may only go to the user's own presence topic", NULL };
		if (!tbroker_log_wait_line(&broker, line, 2000))
			fail_msg("no refusal logged for the will of %s", clients[i] + 7);
	}
	const char *pline[] = { "mqim: denied publish 'im/p/bob'", "client=eve/w5",
				"presence of another user", NULL };
	assert_true(tbroker_log_wait_line(&broker, pline, 2000));
	free(inbox);
	free(group);
	free(team);
	free(pres);
	atk_admin_close(&root);
	raw_disconnect(&bob);
	raw_disconnect(&carol);
	bystanders_ok();
}

/* ---- retained ----------------------------------------------------------------------------------- */

static void retained_refused(void **state)
{
	struct raw eve, bob;
	void *env = NULL;
	login(&eve, "eve", "ret");
	size_t len = atk_env(&env, "msg", "eve", "bob", "stay here", NULL, NULL);
	assert_true(len > 0);
	assert_int_equal(raw_pub(&eve, "im/u/bob", env, len, 1, true, WAIT_MS), NO);
	assert_int_equal(raw_pub(&eve, "im/u/bob", env, len, 2, true, WAIT_MS), NO);
	assert_int_equal(raw_pub(&eve, "im/u/bob", env, len, 0, true, WAIT_MS), 0);
	/* an empty retained payload (how a retained message is cleared) */
	assert_int_equal(raw_pub(&eve, "im/u/bob", "", 0, 1, true, WAIT_MS), NO);
	assert_int_equal(raw_pub(&eve, "im/u/eve", "", 0, 1, true, WAIT_MS), NO);
	free(env);
	len = atk_env(&env, "msg", "eve", "mixed", "stay here", NULL, NULL);
	assert_true(len > 0);
	assert_int_equal(raw_pub(&eve, "im/g/mixed", env, len, 1, true, WAIT_MS), NO);
	assert_int_equal(raw_pub(&eve, "im/g/mixed", env, len, 0, true, WAIT_MS), 0);
	assert_int_equal(raw_pub(&eve, "im/g/mixed", "", 0, 1, true, WAIT_MS), NO);
	free(env);
	/* another's presence, retained */
	len = atk_env(&env, "presence", "eve", "bob", "offline", NULL, NULL);
	assert_int_equal(raw_pub(&eve, "im/p/bob", env, len, 1, true, WAIT_MS), NO);
	free(env);

	/* a later subscriber finds nothing retained */
	login(&bob, "bob", "ret");
	subscribe(&bob, "im/u/bob");
	subscribe(&bob, "im/g/mixed");
	expect_nothing(&bob, "bob (retained messages)");
	const char *line[] = { "mqim: denied publish 'im/u/bob'", "client=eve/ret",
			       "retained messages are refused on inboxes and groups", NULL };
	const char *gline[] = { "mqim: denied publish 'im/g/mixed'", "client=eve/ret",
				"retained messages are refused on inboxes and groups", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	assert_true(tbroker_log_wait_line(&broker, gline, 2000));
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	bystanders_ok();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(forged_sender_refused, before_each),
		cmocka_unit_test_setup(mismatched_recipient_refused, before_each),
		cmocka_unit_test_setup(client_bts_replaced, before_each),
		cmocka_unit_test_setup(duplicate_ids_from_another_sender, before_each),
		cmocka_unit_test_setup(wills_never_delivered, before_each),
		cmocka_unit_test_setup(retained_refused, before_each),
		cmocka_unit_test_setup_teardown(user_properties_never_trusted, before_each, after_each),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("attacks: forgery", tests, setup, teardown);
}
