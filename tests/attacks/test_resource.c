/* test_resource.c - attack catalogue, resource abuse, against a real broker
 * with the plugin, over raw MQTT 5.
 *
 *  - oversized payloads: over plugin_opt_max_payload (0x87), over the
 *    broker's max_packet_size (DISCONNECT 0x95), and a PUBLISH declaring a
 *    huge length;
 *  - MessagePack bombs: nesting 100,000 deep, map / array counts of 2^32 - 1
 *    in a few bytes, str / bin / ext lengths past the end, each in and
 *    around an envelope: refused with 0x87, the broker's memory flat;
 *  - a QoS 2 flood that never sends PUBREL, and packet-id reuse: the
 *    broker keeps serving others, holds what its queue limits allow, and
 *    delivers each released message once;
 *  - one user sending 10,000 messages as fast as it can, with and without
 *    plugin_opt_rate_per_user;
 *  - SIGHUP x100 while a conversation runs: nothing lost, nothing
 *    duplicated, the broker alive.
 *
 * Every test starts its own broker (the options differ) with users alice,
 * bob, eve, by1 and by2, and the bystanders by1 / by2 chatting in the
 * background; each test checks them at its end.
 */
#include <pthread.h>
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
#include "mqim.h"
#include "tbroker.h"
#include "tclient.h"

#define NO 0x87
#define QUIET_MS 600
#define WAIT_MS 5000

struct world {
	bool active;
	struct tbroker b;
	struct atk_pair pair;
	size_t mark;
};

/* One broker and bystander pair at a time.  Static, so that a test that
 * fails half-way leaves no thread pointing into a dead stack frame: the
 * teardown stops whatever still runs. */
static struct world W;

static void start(struct world *e, const char *extra)
{
	static const char *const users[] = { "alice", "bob", "eve", "by1", "by2" };
	memset(e, 0, sizeof *e);
	e->active = true;
	assert_int_equal(tbroker_init(&e->b, extra), 0);
	for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
		assert_int_equal(tbroker_add_user(&e->b, users[i], ATK_PW, false), 0);
	assert_int_equal(tbroker_start(&e->b), 0);
	assert_int_equal(atk_pair_open(&e->pair, e->b.port, "by1", "by2"), 0);
	e->mark = atk_pair_mark(&e->pair);
	assert_int_equal(atk_pair_start(&e->pair, 10), 0);
}

/* The bystanders chatted through it all; stop everything. */
static void finish(struct world *e)
{
	size_t n = 0;
	int64_t end = raw_now_ms() + WAIT_MS;
	unsigned failures = atk_pair_stats(&e->pair, e->mark, &n, NULL, NULL);
	while (n < 5 && raw_now_ms() < end) {
		atk_sleep_ms(50);
		failures = atk_pair_stats(&e->pair, e->mark, &n, NULL, NULL);
	}
	atk_pair_close(&e->pair);
	if (failures)
		fail_msg("bystanders: %u failures, first: %s", failures, e->pair.why);
	if (n < 5)
		fail_msg("bystanders: only %zu round trips during the test", n);
	assert_true(kill(e->b.pid, 0) == 0);
	e->active = false;
	assert_int_equal(tbroker_cleanup(&e->b), 0);
}

static void threads_stop(void);

/* After every test, passed or failed. */
static int world_teardown(void **state)
{
	threads_stop();
	if (W.active) {
		atk_pair_close(&W.pair);
		tbroker_cleanup(&W.b);
		W.active = false;
	}
	return 0;
}

static void login(struct world *e, struct raw *r, const char *user, const char *suffix)
{
	char cid[96];
	snprintf(cid, sizeof cid, "%s/%s", user, suffix);
	int rc = raw_login_retry(r, e->b.port, cid, user, ATK_PW);
	if (rc != 0)
		fail_msg("login of %s answered %d", cid, rc);
}

static void expect_nothing(struct raw *r, const char *who)
{
	struct mqtt_pkt m;
	int rc = raw_next_publish(r, &m, QUIET_MS);
	if (rc == 0)
		fail_msg("%s received a message on %.*s", who, (int)m.topic_len, m.topic);
}

/* An envelope from fr to to whose encoding is exactly size bytes (a str
 * body of the right length), into w.  Fails the test if none fits. */
static void env_of_size(struct mpw *w, const char *fr, const char *to, size_t size)
{
	uint8_t id[MQIM_ENV_ID_LEN];
	assert_int_equal(trandom_id(id), 0);
	char *body = malloc(size + 1);
	assert_non_null(body);
	size_t n = size > 100 ? size - 100 : 0;
	for (int tries = 0; tries < 8; tries++) {
		memset(body, 'b', n);
		body[n] = '\0';
		mpw_init(w);
		mpw_env(w, 1, "msg", fr, to, id);
		mpw_str(w, "body");
		mpw_str(w, body);
		if (w->len == size) {
			free(body);
			return;
		}
		size_t have = w->len;
		mpw_free(w);
		if (have < size)
			n += size - have;
		else if (n >= have - size)
			n -= have - size;
		else
			break;
	}
	free(body);
	fail_msg("no envelope of %zu bytes", size);
}

static long rss_kb(struct world *e)
{
	long kb = atk_rss_kb(e->b.pid);
	assert_true(kb > 0);
	return kb;
}

/* ---- oversized payloads ----------------------------------------------------------------- */

static void oversized_payloads(void **state)
{
	struct raw eve, bob;
	struct mpw w;
	struct mqtt_pkt p;
	start(&W, "plugin_opt_max_payload 1024\nmax_packet_size 16384\n");
	login(&W, &bob, "bob", "big");
	assert_int_equal(raw_subscribe(&bob, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	login(&W, &eve, "eve", "big");
	long rss0 = rss_kb(&W);

	env_of_size(&w, "eve", "bob", 1024); /* at the limit: accepted */
	assert_int_equal(raw_pub(&eve, "im/u/bob", w.b, w.len, 1, false, WAIT_MS), 0);
	mpw_free(&w);
	assert_int_equal(raw_next_publish(&bob, &p, WAIT_MS), 0);
	for (size_t size = 1025; size <= 16000; size = size * 2 + 1) {
		env_of_size(&w, "eve", "bob", size);
		for (uint8_t qos = 0; qos <= 2; qos++)
			assert_int_equal(raw_pub(&eve, "im/u/bob", w.b, w.len, qos, false, WAIT_MS),
					 qos ? NO : 0);
		mpw_free(&w);
	}
	expect_nothing(&bob, "bob (oversized envelopes)");
	const char *line[] = { "mqim: denied publish 'im/u/bob'", "client=eve/big", "user=eve",
			       "larger than", NULL };
	assert_true(tbroker_log_wait_line(&W.b, line, 2000));

	/* over max_packet_size: DISCONNECT 0x95 Packet too large, connection closed */
	env_of_size(&w, "eve", "bob", 20000);
	assert_int_equal(raw_pub(&eve, "im/u/bob", w.b, w.len, 1, false, WAIT_MS), RAW_CLOSED);
	mpw_free(&w);
	assert_int_equal(raw_recv(&eve, &p, WAIT_MS), 0);
	assert_int_equal(p.type, MQTT_DISCONNECT);
	assert_int_equal(p.reason, 0x95);
	assert_int_equal(raw_recv(&eve, &p, WAIT_MS), RAW_CLOSED);
	raw_close(&eve);
	assert_true(tbroker_log_wait(&W.b, "Client eve/big disconnected due to oversize packet", 2000));

	/* a PUBLISH declaring 200 MB and sending a few bytes: closed at once,
	 * nothing allocated for it */
	login(&W, &eve, "eve", "huge");
	uint8_t hdr[16] = { 0x32 };
	size_t hl = 1 + mqtt_put_varint(hdr + 1, 200u * 1024 * 1024);
	hl += mqtt_put_str(hdr + hl, "im/u/bob", 8);
	assert_int_equal(raw_send(&eve, hdr, hl), 0);
	int rc = raw_recv(&eve, &p, WAIT_MS);
	if (rc == 0) {
		assert_int_equal(p.type, MQTT_DISCONNECT);
		assert_int_equal(p.reason, 0x95);
		rc = raw_recv(&eve, &p, WAIT_MS);
	}
	assert_int_equal(rc, RAW_CLOSED);
	raw_close(&eve);

	long rss1 = rss_kb(&W);
	print_message("  broker VmRSS %ld -> %ld KiB\n", rss0, rss1);
	assert_true(atk_rss_within(rss0, rss1, 4096));
	raw_disconnect(&bob);
	finish(&W);
}

/* ---- MessagePack bombs ------------------------------------------------------------------ */

struct bomb {
	const char *name;
	void (*make)(struct mpw *w, const uint8_t id[MQIM_ENV_ID_LEN]);
};

static void repeat(struct mpw *w, const void *unit, size_t n, size_t times)
{
	for (size_t i = 0; i < times; i++)
		mpw_raw(w, unit, n);
}

#define DEEP 100000

static void b_deep_array_in_env(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	repeat(w, "\x91", 1, DEEP);
	mpw_byte(w, 0xc0);
}

static void b_deep_array(struct mpw *w, const uint8_t *id)
{
	repeat(w, "\x91", 1, DEEP);
	mpw_byte(w, 0xc0);
}

static void b_deep_map_in_env(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	repeat(w, "\x81\xa1k", 3, 80000); /* {"k": {"k": ...}} */
	mpw_byte(w, 0xc0);
}

static void b_deep_body(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "body");
	repeat(w, "\x91", 1, DEEP);
	mpw_byte(w, 0xc0);
}

static void b_map32(struct mpw *w, const uint8_t *id)
{
	mpw_raw(w, "\xdf\xff\xff\xff\xff", 5);
}

static void b_env_map32(struct mpw *w, const uint8_t *id)
{
	struct mpw inner;
	mpw_init(&inner);
	mpw_env(&inner, 0, "msg", "eve", "bob", id);
	mpw_raw(w, "\xdf\xff\xff\xff\xff", 5);
	mpw_raw(w, inner.b + 1, inner.len - 1); /* the six entries, without their header */
	mpw_free(&inner);
}

static void b_array32(struct mpw *w, const uint8_t *id)
{
	mpw_raw(w, "\xdd\xff\xff\xff\xff\xc0\xc0", 7);
}

static void b_array32_in_env(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	mpw_raw(w, "\xdd\xff\xff\xff\xff", 5);
}

static void b_map32_in_env(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	mpw_raw(w, "\xdf\xff\xff\xff\xff\xa1k\xc0", 8);
}

static void b_map16_short(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	mpw_raw(w, "\xde\xff\xff\xa1k\xc0", 6);
}

static void b_str32_body(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "body");
	mpw_raw(w, "\xdb\xff\xff\xff\xffhello", 10);
}

static void b_bin32_body(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "body");
	mpw_raw(w, "\xc6\xff\xff\xff\xffhello", 10);
}

static void b_ext32(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	mpw_raw(w, "\xc9\xff\xff\xff\xff\x01hello", 11);
}

static void b_str32_key(struct mpw *w, const uint8_t *id)
{
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_raw(w, "\xdb\x7f\xff\xff\xffk", 6);
	mpw_byte(w, 0xc0);
}

static void b_str32_fr(struct mpw *w, const uint8_t *id)
{
	mpw_map(w, 6);
	mpw_str(w, "v");
	mpw_uint(w, 1);
	mpw_str(w, "id");
	mpw_bin(w, id, MQIM_ENV_ID_LEN);
	mpw_str(w, "fr");
	mpw_raw(w, "\xdb\x00\x10\x00\x00eve", 8);
}

static void b_many_maps(struct mpw *w, const uint8_t *id)
{
	/* an array of 30,000 maps each declaring 65,535 entries */
	mpw_env(w, 1, "msg", "eve", "bob", id);
	mpw_str(w, "x");
	mpw_raw(w, "\xdc\x75\x30", 3);
	repeat(w, "\xde\xff\xff", 3, 30000);
}

static const struct bomb bombs[] = {
	{ "array nested 100,000 deep inside an envelope", b_deep_array_in_env },
	{ "array nested 100,000 deep", b_deep_array },
	{ "map nested 80,000 deep inside an envelope", b_deep_map_in_env },
	{ "body nested 100,000 deep", b_deep_body },
	{ "map32 of 2^32-1 entries in 5 bytes", b_map32 },
	{ "envelope map declaring 2^32-1 entries", b_env_map32 },
	{ "array32 of 2^32-1 elements in 7 bytes", b_array32 },
	{ "array32 of 2^32-1 elements as a value", b_array32_in_env },
	{ "map32 of 2^32-1 entries as a value", b_map32_in_env },
	{ "map16 of 65,535 entries in 3 bytes", b_map16_short },
	{ "str32 body of 4 GiB in 5 bytes", b_str32_body },
	{ "bin32 body of 4 GiB in 5 bytes", b_bin32_body },
	{ "ext32 of 4 GiB in 6 bytes", b_ext32 },
	{ "str32 key of 2 GiB", b_str32_key },
	{ "str32 fr of 1 MiB", b_str32_fr },
	{ "30,000 maps each declaring 65,535 entries", b_many_maps },
};

static void msgpack_bombs(void **state)
{
	struct raw eve, bob;
	const int rounds = 10;
	/* max_payload raised so that the size limit does not hide the
	 * structural checks from the 100-300 KB bombs */
	start(&W, "plugin_opt_max_payload 400000\nmax_packet_size 1048576\n");
	login(&W, &bob, "bob", "bomb");
	assert_int_equal(raw_subscribe(&bob, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	login(&W, &eve, "eve", "bomb");
	/* warm the broker's allocator with one large accepted message first */
	struct mpw w;
	env_of_size(&w, "eve", "bob", 300000);
	assert_int_equal(raw_pub(&eve, "im/u/bob", w.b, w.len, 1, false, WAIT_MS), 0);
	mpw_free(&w);
	struct mqtt_pkt p;
	assert_int_equal(raw_next_publish(&bob, &p, WAIT_MS), 0);
	long rss0 = rss_kb(&W);

	int before = tbroker_log_count(&W.b, "mqim: denied publish 'im/u/bob' client=eve/bomb");
	for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
		uint8_t id[MQIM_ENV_ID_LEN];
		assert_int_equal(trandom_id(id), 0);
		mpw_init(&w);
		bombs[i].make(&w, id);
		assert_false(w.failed);
		for (int r = 0; r < rounds; r++) {
			uint8_t qos = (uint8_t)(1 + r % 2);
			int rc = raw_pub(&eve, "im/u/bob", w.b, w.len, qos, false, WAIT_MS);
			if (rc != NO)
				fail_msg("bomb \"%s\" (%zu bytes) at QoS %u answered %d", bombs[i].name,
					 w.len, qos, rc);
		}
		mpw_free(&w);
	}
	long rss1 = rss_kb(&W);
	expect_nothing(&bob, "bob (bombs)");
	int logged = tbroker_log_count(&W.b, "mqim: denied publish 'im/u/bob' client=eve/bomb") -
		     before;
	print_message("  %zu bombs x %d: all refused; broker VmRSS %ld -> %ld KiB\n",
		      sizeof bombs / sizeof bombs[0], rounds, rss0, rss1);
	assert_int_equal(logged, (int)(rounds * (sizeof bombs / sizeof bombs[0])));
	assert_true(atk_rss_within(rss0, rss1, 4096));
	/* the log says why, naming the client */
	const char *deep[] = { "client=eve/bomb", "user=eve", "deep", NULL };
	assert_true(tbroker_log_wait_line(&W.b, deep, 1000));
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	finish(&W);
}

/* ---- QoS 2 without PUBREL ------------------------------------------------------------------ */

/* Send n QoS 2 PUBLISH (packet ids first..first+n-1) of valid envelopes of
 * about size bytes from eve to bob, never PUBREL; codes[i] gets the PUBREC
 * reason (or a RAW_* error). */
static void qos2_burst(struct raw *eve, uint16_t first, size_t n, size_t size, int *codes)
{
	struct mpw w;
	for (size_t i = 0; i < n; i++) {
		env_of_size(&w, "eve", "bob", size);
		struct mqtt_publish p;
		memset(&p, 0, sizeof p);
		p.topic = "im/u/bob";
		p.payload = w.b;
		p.payload_len = w.len;
		p.qos = 2;
		p.packet_id = (uint16_t)(first + i);
		assert_int_equal(raw_publish_send(eve, &p), 0);
		mpw_free(&w);
	}
	for (size_t i = 0; i < n; i++)
		codes[i] = raw_wait_ack(eve, MQTT_PUBREC, (uint16_t)(first + i), WAIT_MS);
}

/* *p: a QoS 2 publish to bob's inbox under packet id pid. */
static void q2_to_bob(struct mqtt_publish *p, uint16_t pid, const void *payload, size_t len)
{
	memset(p, 0, sizeof *p);
	p->topic = "im/u/bob";
	p->qos = 2;
	p->packet_id = pid;
	p->payload = payload;
	p->payload_len = len;
}

/* One QoS 2 PUBLISH of p and its PUBREC (reason 0x00). */
static void q2_publish(struct raw *eve, struct mqtt_publish *p)
{
	assert_int_equal(raw_publish_send(eve, p), 0);
	assert_int_equal(raw_wait_ack(eve, MQTT_PUBREC, p->packet_id, WAIT_MS), 0);
}

/* The PUBREL of packet id pid and its PUBCOMP. */
static void q2_release(struct raw *eve, uint16_t pid)
{
	uint8_t rel[8];
	assert_int_equal(raw_send(eve, rel, mqtt_enc_ack(rel, sizeof rel, 5, MQTT_PUBREL, pid, 0)), 0);
	assert_int_equal(raw_wait_ack(eve, MQTT_PUBCOMP, pid, WAIT_MS), 0);
}

/* The next message to bob is the envelope of this id; *env (pointing into
 * *m) gets it. */
static void next_is(struct raw *bob, const uint8_t id[MQIM_ENV_ID_LEN], struct mqtt_pkt *m,
		    struct mqim_env *env)
{
	assert_int_equal(raw_next_publish(bob, m, WAIT_MS), 0);
	assert_int_equal(atk_env_decode(m->payload, m->payload_len, env), 0);
	assert_memory_equal(env->id, id, MQIM_ENV_ID_LEN);
}

/* The payloads of packet id reuse: two messages under one packet id. */
static void packet_id_reuse(struct raw *eve, struct raw *bob)
{
	uint8_t ida[MQIM_ENV_ID_LEN], idb[MQIM_ENV_ID_LEN];
	void *a = NULL, *b = NULL;
	size_t la = atk_env(&a, "msg", "eve", "bob", "first under packet id 5000", NULL, ida);
	size_t lb = atk_env(&b, "msg", "eve", "bob", "second under packet id 5000", NULL, idb);
	struct mqtt_publish p;
	q2_to_bob(&p, 5000, a, la);
	q2_publish(eve, &p);
	/* before the PUBREL, the same packet id with another payload */
	p.payload = b;
	p.payload_len = lb;
	q2_publish(eve, &p);
	/* and a true retransmission of it (DUP, the same bytes) */
	p.dup = true;
	q2_publish(eve, &p);
	q2_release(eve, 5000);
	/* the second replaced the first, and arrives once */
	struct mqtt_pkt m;
	struct mqim_env env;
	next_is(bob, idb, &m, &env);
	expect_nothing(bob, "bob (packet id reuse)");
	assert_true(tbroker_log_wait(&W.b, "Reused message ID 5000 from eve/q2 detected", 2000));
	free(a);
	free(b);
}

/* A true QoS 2 retransmission (DUP, same packet id, same bytes) of an
 * envelope with a bts slot: the first copy is stamped in the broker's own
 * buffer, the retransmission (a duplicate) into a fresh one with the same
 * bts, so the broker sees the same bytes, keeps the first, logs no packet
 * id reuse, and the message arrives once. */
static void slotted_retransmission(struct raw *eve, struct raw *bob)
{
	struct mqim_env in;
	memset(&in, 0, sizeof in);
	in.v = MQIM_ENV_VERSION;
	memset(in.id, 0x5a, sizeof in.id);
	in.t = (struct mqim_str){ "msg", 3 };
	in.fr = (struct mqim_str){ "eve", 3 };
	in.to = (struct mqim_str){ "bob", 3 };
	in.ts = 1;
	in.has_bts = true; /* the slot */
	void *buf;
	size_t len;
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	struct mqtt_publish p;
	q2_to_bob(&p, 5001, buf, len);
	q2_publish(eve, &p);
	p.dup = true;
	q2_publish(eve, &p);
	q2_release(eve, 5001);
	struct mqtt_pkt m;
	struct mqim_env env;
	next_is(bob, in.id, &m, &env);
	assert_true(env.has_bts && env.bts > 1);
	assert_int_equal(m.payload_len, len);
	expect_nothing(bob, "bob (slotted retransmission)");
	assert_int_equal(tbroker_log_count(&W.b, "Reused message ID 5001"), 0);
	free(buf);
}

static void qos2_flood_without_pubrel(void **state)
{
	enum { SIZE = 8192 };
	const size_t N = atk_full() ? 20000 : 1000;
	struct raw eve, bob;
	int *codes = calloc(N, sizeof *codes);
	assert_non_null(codes);
	/* the bundled mosquitto.conf's limits */
	start(&W, "max_inflight_messages 20\nmax_queued_bytes 0\nmax_packet_size 1048576\n");
	login(&W, &bob, "bob", "q2");
	assert_int_equal(raw_subscribe(&bob, "im/u/bob", MQTT_SUB_QOS(2), WAIT_MS), 2);
	login(&W, &eve, "eve", "q2");
	packet_id_reuse(&eve, &bob);
	slotted_retransmission(&eve, &bob);
	long rss0 = rss_kb(&W);

	qos2_burst(&eve, 1, N, SIZE, codes);
	size_t ok = 0, quota = 0, other = 0;
	for (size_t i = 0; i < N; i++) {
		if (codes[i] == 0)
			ok++;
		else if (codes[i] == 0x97)
			quota++;
		else
			other++;
	}
	long rss1 = rss_kb(&W);
	print_message("  %zu QoS 2 PUBLISH of %d bytes, no PUBREL: %zu PUBREC 0x00, %zu 0x97 quota "
		      "exceeded, %zu other; broker VmRSS %ld -> %ld KiB (+%ld)\n", N, SIZE, ok,
		      quota, other, rss0, rss1, rss1 - rss0);
	/* Mosquitto (Debian's 2.0.11) does not disconnect a client exceeding
	 * its receive maximum (20) with 0x93: past it, it answers 0x97 and
	 * 0x00 in turn and keeps each accepted message in memory until its
	 * PUBREL or the end of the session, whatever max_queued_messages and
	 * max_queued_bytes say (see the next test for the cap that works) */
	assert_int_equal(other, 0);
	assert_int_equal(ok + quota, N);
	assert_true(ok >= 20);
	/* what is held is the payloads accepted, not more */
	assert_true(atk_rss_within(rss0, rss1, (long)(ok * SIZE * 2 / 1024) + 4096));
	expect_nothing(&bob, "bob (unreleased QoS 2)");
	/* the broker still answers eve and everyone else */
	assert_int_equal(raw_ping(&eve, WAIT_MS), 0);

	/* release everything accepted: each arrives once, nothing else */
	uint8_t rel[8];
	for (size_t i = 0; i < N; i++) {
		if (codes[i] != 0)
			continue;
		size_t n = mqtt_enc_ack(rel, sizeof rel, 5, MQTT_PUBREL, (uint16_t)(1 + i), 0);
		assert_int_equal(raw_send(&eve, rel, n), 0);
	}
	size_t got = 0;
	struct mqtt_pkt m;
	while (got < ok + 1 && raw_next_publish(&bob, &m, 1500) == 0)
		got++;
	print_message("  released: bob got %zu of %zu\n", got, ok);
	assert_int_equal(got, ok);
	free(codes);
	raw_disconnect(&eve);
	raw_disconnect(&bob);
	finish(&W);
}

/* The mitigation: a cap on in-flight bytes.  Mosquitto's max_queued_messages
 * and max_queued_bytes do not bound unreleased incoming QoS 2 (seen on
 * Debian's 2.0.11); max_inflight_bytes does: past it every publish is
 * refused with 0x97 and the memory held stays at the cap. */
static void qos2_flood_bounded_by_inflight_bytes(void **state)
{
	enum { N = 1000, SIZE = 8192, CAP = 262144 };
	struct raw eve;
	int *codes = calloc(N, sizeof *codes);
	assert_non_null(codes);
	start(&W, "max_inflight_messages 20\nmax_inflight_bytes 262144\nmax_packet_size 1048576\n");
	login(&W, &eve, "eve", "q2cap");
	long rss0 = rss_kb(&W);
	qos2_burst(&eve, 1, N, SIZE, codes);
	size_t ok = 0, quota = 0;
	for (size_t i = 0; i < N; i++) {
		ok += codes[i] == 0;
		quota += codes[i] == 0x97;
	}
	long rss1 = rss_kb(&W);
	print_message("  max_inflight_bytes %d: %zu accepted, %zu refused 0x97; VmRSS +%ld KiB\n",
		      CAP, ok, quota, rss1 - rss0);
	assert_int_equal(ok + quota, N);
	assert_true(ok <= CAP / SIZE + 2);
	assert_true(atk_rss_within(rss0, rss1, 8192));
	assert_int_equal(raw_ping(&eve, WAIT_MS), 0);
	free(codes);
	raw_disconnect(&eve);
	finish(&W);
}

/* ---- one user flooding ----------------------------------------------------------------------- */

/* A thread that drains bob's connection and counts what arrives. */
struct sink {
	struct raw r;
	bool running;
	pthread_t th;
	pthread_mutex_t mu;
	bool stop;
	size_t got;
};

static struct sink S;

static void *sink_run(void *arg)
{
	struct sink *s = arg;
	for (;;) {
		struct mqtt_pkt m;
		pthread_mutex_lock(&s->mu);
		bool stop = s->stop;
		pthread_mutex_unlock(&s->mu);
		if (stop)
			break;
		int rc = raw_next_publish(&s->r, &m, 100);
		if (rc == 0) {
			pthread_mutex_lock(&s->mu);
			s->got++;
			pthread_mutex_unlock(&s->mu);
		} else if (rc != RAW_TIMEOUT) {
			break;
		}
	}
	return NULL;
}

static size_t sink_count(struct sink *s)
{
	pthread_mutex_lock(&s->mu);
	size_t n = s->got;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* eve sends n QoS 0 messages to bob as fast as the socket takes them.
 * Returns the time taken in ms. */
static int64_t qos0_flood(struct raw *eve, size_t n)
{
	uint8_t *buf = malloc(256 * 64);
	assert_non_null(buf);
	int64_t t0 = raw_now_ms();
	size_t batched = 0, len = 0;
	for (size_t i = 0; i < n; i++) {
		void *env = NULL;
		size_t el = atk_env(&env, "msg", "eve", "bob", "flood", NULL, NULL);
		struct mqtt_publish p;
		memset(&p, 0, sizeof p);
		p.topic = "im/u/bob";
		p.payload = env;
		p.payload_len = el;
		len += mqtt_enc_publish(buf + len, 256, 5, &p);
		free(env);
		if (++batched == 64 || i + 1 == n) {
			assert_int_equal(raw_send(eve, buf, len), 0);
			batched = len = 0;
		}
	}
	free(buf);
	return raw_now_ms() - t0;
}

static void one_user_flood(bool limited)
{
	enum { N = 10000, RATE = 100 };
	struct raw eve;
	start(&W, limited ? "plugin_opt_rate_per_user 100\nplugin_opt_rate_burst 100\n" : NULL);
	memset(&S, 0, sizeof S);
	pthread_mutex_init(&S.mu, NULL);
	login(&W, &S.r, "bob", "sink");
	assert_int_equal(raw_subscribe(&S.r, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(pthread_create(&S.th, NULL, sink_run, &S), 0);
	S.running = true;
	login(&W, &eve, "eve", "flood");
	atk_pair_stop(&W.pair);
	/* the limit applies to the bystanders too: with it on, they chat at
	 * about 30 messages a second each, under the 100/s allowed */
	int64_t base50 = 0, base99 = 0;
	if (!limited) {
		base99 = atk_pair_baseline(&W.pair, 200, &base50);
		assert_true(base99 > 0);
	}
	size_t mark = atk_pair_mark(&W.pair);
	assert_int_equal(atk_pair_start(&W.pair, limited ? 30 : 1), 0);

	int64_t t0 = raw_now_ms();
	int64_t sent_ms = qos0_flood(&eve, N);
	/* the broker has worked through the flood once eve's PING is answered */
	assert_int_equal(raw_ping(&eve, 30000), 0);
	int64_t drained_ms = raw_now_ms() - t0;
	atk_sleep_ms(300);
	size_t rounds;
	int64_t p50, p99;
	unsigned failures = atk_pair_stats(&W.pair, mark, &rounds, &p50, &p99);
	int64_t worst = atk_pair_max(&W.pair, mark);
	size_t got = sink_count(&S);
	print_message("  %s: %d QoS 0 sent in %lld ms, worked through in %lld ms; bob got %zu; "
		      "bystander p50/p99/max %.2f/%.2f/%.2f ms (baseline p50/p99 %.2f/%.2f, %zu "
		      "round trips)\n", limited ? "rate_per_user 100/s" : "no rate limit", N,
		      (long long)sent_ms, (long long)drained_ms, got, (double)p50 / 1000.0,
		      (double)p99 / 1000.0, (double)worst / 1000.0, (double)base50 / 1000.0,
		      (double)base99 / 1000.0, rounds);
	assert_int_equal(failures, 0);
	assert_true(rounds >= 5);
	/* a burst of 10,000 holds the broker's one thread for a while; others
	 * wait at most about that long, once */
	assert_true(worst < 250 * 1000);
	assert_true(drained_ms < 5000);
	if (limited) {
		/* the burst, plus the refill over the time it took, plus slack */
		int64_t secs = (sent_ms + 999) / 1000 + 2;
		assert_true(got >= 100);
		assert_true(got <= (size_t)(100 + RATE * secs));
		const char *line[] = { "mqim: denied publish 'im/u/bob'", "client=eve/flood",
				       "over the rate limit of 100 messages/s", NULL };
		assert_true(tbroker_log_wait_line(&W.b, line, 2000));
		/* one line per second, not one per refusal */
		assert_true(tbroker_log_count(&W.b, "over the rate limit") <= secs + 1);
	} else {
		/* no defence: every message is delivered, and others' latency is
		 * only bounded by the broker's throughput (the flood is worked
		 * through in well under a second here) */
		assert_int_equal(got, N);
	}
	threads_stop();
	raw_disconnect(&eve);
	finish(&W);
}

static void one_user_flood_rate_limited(void **state)
{
	one_user_flood(true);
}

static void one_user_flood_unlimited(void **state)
{
	one_user_flood(false);
}

/* ---- SIGHUP under load ---------------------------------------------------------------------------- */

struct chat {
	struct raw alice, bob;
	bool running;
	pthread_t th;
	pthread_mutex_t mu;
	bool stop;
	uint8_t (*ids)[MQIM_ENV_ID_LEN];
	size_t sent, cap;
	int bad_ack;
};

static struct chat C;

/* alice sends to bob at QoS 1, one after the other, until stopped. */
static void *chat_run(void *arg)
{
	struct chat *c = arg;
	for (;;) {
		pthread_mutex_lock(&c->mu);
		bool stop = c->stop || c->sent == c->cap;
		pthread_mutex_unlock(&c->mu);
		if (stop)
			break;
		uint8_t id[MQIM_ENV_ID_LEN];
		void *env = NULL;
		size_t len = atk_env(&env, "msg", "alice", "bob", "through the reloads", NULL, id);
		int rc = raw_pub(&c->alice, "im/u/bob", env, len, 1, false, WAIT_MS);
		free(env);
		pthread_mutex_lock(&c->mu);
		if (rc == 0) {
			memcpy(c->ids[c->sent++], id, MQIM_ENV_ID_LEN);
		} else {
			c->bad_ack = rc;
			c->stop = true;
		}
		pthread_mutex_unlock(&c->mu);
		atk_sleep_ms(2);
	}
	return NULL;
}

static void chat_stop(void)
{
	if (!C.running)
		return;
	pthread_mutex_lock(&C.mu);
	C.stop = true;
	pthread_mutex_unlock(&C.mu);
	pthread_join(C.th, NULL);
	C.running = false;
}

/* Stop the sink and chat threads and free what they own; safe to call
 * when they never ran. */
static void threads_stop(void)
{
	if (S.running) {
		pthread_mutex_lock(&S.mu);
		S.stop = true;
		pthread_mutex_unlock(&S.mu);
		pthread_join(S.th, NULL);
		S.running = false;
		raw_disconnect(&S.r);
	}
	chat_stop();
	if (C.ids) {
		free(C.ids);
		C.ids = NULL;
		raw_disconnect(&C.alice);
		raw_disconnect(&C.bob);
	}
}

static void sighup_x100_under_load(void **state)
{
	enum { HUPS = 100, CAP = 50000 };
	start(&W, NULL);
	memset(&C, 0, sizeof C);
	pthread_mutex_init(&C.mu, NULL);
	C.cap = CAP;
	C.ids = calloc(CAP, MQIM_ENV_ID_LEN);
	assert_non_null(C.ids);
	login(&W, &C.alice, "alice", "hup");
	login(&W, &C.bob, "bob", "hup");
	assert_int_equal(raw_subscribe(&C.bob, "im/u/bob", MQTT_SUB_QOS(1), WAIT_MS), 1);
	assert_int_equal(pthread_create(&C.th, NULL, chat_run, &C), 0);
	C.running = true;

	for (int i = 0; i < HUPS; i++) {
		if (i == 50) /* an offline change picked up by one of the reloads */
			assert_int_equal(tbroker_add_user(&W.b, "zoe", ATK_PW, false), 0);
		if (tbroker_sighup(&W.b) != 0)
			fail_msg("reload %d was not logged", i);
	}
	chat_stop();
	assert_int_equal(C.bad_ack, 0);

	/* bob got every message once, in order */
	size_t got = 0, dup_or_foreign = 0;
	struct mqtt_pkt m;
	while (got < C.sent && raw_next_publish(&C.bob, &m, WAIT_MS) == 0) {
		struct mqim_env env;
		assert_int_equal(atk_env_decode(m.payload, m.payload_len, &env), 0);
		if (memcmp(env.id, C.ids[got], MQIM_ENV_ID_LEN) == 0)
			got++;
		else
			dup_or_foreign++;
	}
	/* the de-duplication window survived the reloads */
	void *env = NULL;
	size_t len = atk_env(&env, "msg", "alice", "bob", "through the reloads", C.ids[0], NULL);
	assert_int_equal(raw_pub(&C.alice, "im/u/bob", env, len, 1, false, WAIT_MS), 0);
	free(env);
	if (raw_next_publish(&C.bob, &m, QUIET_MS) == 0)
		dup_or_foreign++;
	print_message("  %d SIGHUPs: %zu messages sent, %zu received once, %zu extra\n", HUPS,
		      C.sent, got, dup_or_foreign);
	assert_true(C.sent >= 100);
	assert_int_equal(got, C.sent);
	assert_int_equal(dup_or_foreign, 0);
	assert_int_equal(tbroker_log_count(&W.b, "mqim: reloaded"), HUPS);
	/* the offline change is live, the broker alive */
	struct raw z;
	assert_int_equal(raw_login_retry(&z, W.b.port, "zoe", "zoe", ATK_PW), 0);
	raw_disconnect(&z);
	threads_stop();
	finish(&W);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(oversized_payloads, world_teardown),
		cmocka_unit_test_teardown(msgpack_bombs, world_teardown),
		cmocka_unit_test_teardown(qos2_flood_without_pubrel, world_teardown),
		cmocka_unit_test_teardown(qos2_flood_bounded_by_inflight_bytes, world_teardown),
		cmocka_unit_test_teardown(one_user_flood_rate_limited, world_teardown),
		cmocka_unit_test_teardown(one_user_flood_unlimited, world_teardown),
		cmocka_unit_test_teardown(sighup_x100_under_load, world_teardown),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("attacks: resource abuse", tests, NULL, NULL);
}
