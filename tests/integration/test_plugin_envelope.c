/* test_plugin_envelope.c - what the broker does with a publish
 * (docs/protocol.md, Envelope and "What the broker does with a publish"):
 * spoofed fr and mismatched to refused, every malformed envelope refused,
 * bts stamped (and a sender's own replaced), unknown keys forwarded,
 * de-duplication by (fr, id) with every resend acknowledged, a duplicate
 * marked mqim-resend=1 delivered again byte for byte, and refusals
 * logged with client id and user, never with a password.
 *
 * One broker for the file, plugin_opt_max_payload 1024.  Users alice and
 * carol (members of "team") and bob.  Three sessions live for the whole
 * file: alice/env sends, bob/env listens on im/u/bob, carol/env on
 * im/g/team; each test starts with their queues drained.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <msgpack.h>

#include "envelope.h"
#include "tbroker.h"
#include "tclient.h"
#include "topics.h"

#define NOT_AUTHORIZED 0x87
#define MAX_PAYLOAD 1024
#define QUIET_MS 500
#define DEDUP_QUIET_MS 1000

#define ALICE_PW "alice-Env-Pw-4411"
#define BOB_PW   "bob-Env-Pw-2290"
#define CAROL_PW "carol-Env-Pw-7765"

static struct tbroker broker;

/* The listening sessions, shared by the tests of this file. */
struct fixture {
	struct tclient *alice;   /* sender, "alice/env" */
	struct tclient *bob;     /* subscribed to im/u/bob */
	struct tclient *carol;   /* subscribed to im/g/team, also a sender */
};

static int setup(void **state)
{
	static const char *const team[] = { "alice", "carol", NULL };
	static struct fixture fx;
	if (tbroker_init(&broker, "plugin_opt_max_payload 1024\n") != 0 ||
	    tbroker_add_user(&broker, "alice", ALICE_PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", BOB_PW, false) != 0 ||
	    tbroker_add_user(&broker, "carol", CAROL_PW, false) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_start(&broker) != 0)
		goto fail;
	fx.alice = tclient_login(broker.port, "alice/env", "alice", ALICE_PW);
	fx.bob = tclient_login(broker.port, "bob/env", "bob", BOB_PW);
	fx.carol = tclient_login(broker.port, "carol/env", "carol", CAROL_PW);
	if (!fx.alice || !fx.bob || !fx.carol ||
	    tclient_subscribe(fx.bob, "im/u/bob", 2) != 2 ||
	    tclient_subscribe(fx.carol, "im/g/team", 2) != 2)
		goto fail;
	*state = &fx;
	return 0;
fail:
	tclient_free(fx.alice);
	tclient_free(fx.bob);
	tclient_free(fx.carol);
	tbroker_cleanup(&broker);
	return -1;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	if (fx) {
		tclient_free(fx->alice);
		tclient_free(fx->bob);
		tclient_free(fx->carol);
	}
	return tbroker_cleanup(&broker) == 0 ? 0 : -1;
}

/* Every test starts with empty receive queues. */
static int drain(void **state)
{
	struct fixture *fx = *state;
	tclient_drain(fx->bob, 50);
	tclient_drain(fx->carol, 50);
	tclient_drain(fx->alice, 0);
	return 0;
}

/* ---- a MessagePack builder for valid and broken envelopes ---------------------- */

enum kind { K_UINT, K_INT, K_STR, K_BIN, K_NIL, K_FLOAT, K_ARRAY, K_MAP, K_BOOL };

struct field {
	const char *key;      /* NULL: an integer key (key_int) */
	enum kind kind;
	uint64_t u;           /* K_UINT, K_BOOL */
	int64_t i;            /* K_INT; key_int for a NULL key */
	const char *s;        /* K_STR, K_BIN (n bytes) */
	size_t n;
};

#define MAX_FIELDS 16

struct envb {
	struct field f[MAX_FIELDS];
	size_t count;
	uint8_t id[MQIM_ENV_ID_LEN];
	char big[MAX_PAYLOAD * 2];   /* body bytes for size tests */
};

static struct field *envb_set(struct envb *e, const char *key, enum kind kind)
{
	for (size_t i = 0; i < e->count; i++) {
		if (e->f[i].key && strcmp(e->f[i].key, key) == 0) {
			memset(&e->f[i], 0, sizeof e->f[i]);
			e->f[i].key = key;
			e->f[i].kind = kind;
			return &e->f[i];
		}
	}
	assert_true(e->count < MAX_FIELDS);
	struct field *f = &e->f[e->count++];
	memset(f, 0, sizeof *f);
	f->key = key;
	f->kind = kind;
	return f;
}

static void envb_str(struct envb *e, const char *key, const char *s)
{
	struct field *f = envb_set(e, key, K_STR);
	f->s = s;
	f->n = strlen(s);
}

static void envb_bin(struct envb *e, const char *key, const void *b, size_t n)
{
	struct field *f = envb_set(e, key, K_BIN);
	f->s = b;
	f->n = n;
}

static void envb_uint(struct envb *e, const char *key, uint64_t u)
{
	envb_set(e, key, K_UINT)->u = u;
}

static const struct field *envb_get(const struct envb *e, const char *key)
{
	for (size_t i = 0; i < e->count; i++)
		if (e->f[i].key && strcmp(e->f[i].key, key) == 0)
			return &e->f[i];
	fail_msg("no key %s", key);
	return NULL;
}

static void envb_del(struct envb *e, const char *key)
{
	for (size_t i = 0; i < e->count; i++) {
		if (e->f[i].key && strcmp(e->f[i].key, key) == 0) {
			memmove(&e->f[i], &e->f[i + 1], (e->count - i - 1) * sizeof e->f[0]);
			e->count--;
			return;
		}
	}
}

/* A valid envelope from fr to `to`, with a fresh id. */
static void envb_init(struct envb *e, const char *t, const char *fr, const char *to)
{
	memset(e, 0, sizeof *e);
	assert_int_equal(trandom_id(e->id), 0);
	envb_uint(e, "v", 1);
	envb_bin(e, "id", e->id, MQIM_ENV_ID_LEN);
	envb_str(e, "t", t);
	envb_str(e, "fr", fr);
	envb_str(e, "to", to);
	envb_uint(e, "ts", tnow_ms());
	envb_str(e, "body", "hello");
}

static void pack_value(msgpack_packer *pk, const struct field *f)
{
	switch (f->kind) {
	case K_UINT: msgpack_pack_uint64(pk, f->u); break;
	case K_INT: msgpack_pack_int64(pk, f->i); break;
	case K_STR: msgpack_pack_str_with_body(pk, f->s, f->n); break;
	case K_BIN: msgpack_pack_bin_with_body(pk, f->s, f->n); break;
	case K_NIL: msgpack_pack_nil(pk); break;
	case K_FLOAT: msgpack_pack_double(pk, 1.5); break;
	case K_BOOL: f->u ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
	case K_ARRAY: /* [1, "two"] */
		msgpack_pack_array(pk, 2);
		msgpack_pack_uint64(pk, 1);
		msgpack_pack_str_with_body(pk, "two", 3);
		break;
	case K_MAP: /* {"k": "v"} */
		msgpack_pack_map(pk, 1);
		msgpack_pack_str_with_body(pk, "k", 1);
		msgpack_pack_str_with_body(pk, "v", 1);
		break;
	}
}

/* Pack e into sb (msgpack_sbuffer_init'ed by the caller). */
static void envb_pack(const struct envb *e, msgpack_sbuffer *sb)
{
	msgpack_packer pk;
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, e->count);
	for (size_t i = 0; i < e->count; i++) {
		const struct field *f = &e->f[i];
		if (f->key)
			msgpack_pack_str_with_body(&pk, f->key, strlen(f->key));
		else
			msgpack_pack_int64(&pk, f->i);
		pack_value(&pk, f);
	}
}

/* Publish e as alice to topic; returns the PUBACK / PUBREC code. */
static int send_envb(struct tclient *c, const char *topic, const struct envb *e, int qos)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	envb_pack(e, &sb);
	int rc = tclient_publish(c, topic, sb.data, sb.size, qos, false);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void expect_nothing(struct tclient *c, int quiet_ms, const char *what)
{
	struct tmsg m;
	if (tclient_recv(c, &m, quiet_ms) == 1) {
		tmsg_free(&m);
		fail_msg("%s was delivered", what);
	}
}

/* ---- fr and to --------------------------------------------------------------------- */

static void spoofed_fr_refused(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "carol", "bob");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 2), NOT_AUTHORIZED);
	envb_init(&e, "msg", "carol", "team");
	assert_int_equal(send_envb(fx->alice, "im/g/team", &e, 1), NOT_AUTHORIZED);
	/* QoS 0 has no acknowledgement: the message is dropped */
	envb_init(&e, "msg", "carol", "bob");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 0), 0);
	/* presence of one's own topic, but claiming to be someone else */
	envb_init(&e, "presence", "carol", "alice");
	envb_str(&e, "body", "online");
	assert_int_equal(send_envb(fx->alice, "im/p/alice", &e, 1), NOT_AUTHORIZED);
	expect_nothing(fx->bob, QUIET_MS, "a spoofed message to bob");
	expect_nothing(fx->carol, 0, "a spoofed message to the group");

	const char *line[] = { "mqim: denied", "client=alice/env", "user=alice", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
}

static void mismatched_to_refused(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "carol");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	envb_init(&e, "msg", "alice", "bobby");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	envb_init(&e, "msg", "alice", "bo");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	/* one byte off at each place of a short name (compared in halves) */
	static const char *const near[] = { "Bob", "bOb", "boB" };
	for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
		envb_init(&e, "msg", "alice", near[i]);
		assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	}
	envb_init(&e, "msg", "alice", "bob");
	assert_int_equal(send_envb(fx->alice, "im/g/team", &e, 1), NOT_AUTHORIZED);
	envb_init(&e, "presence", "alice", "bob");
	envb_str(&e, "body", "online");
	assert_int_equal(send_envb(fx->alice, "im/p/alice", &e, 1), NOT_AUTHORIZED);
	expect_nothing(fx->bob, QUIET_MS, "a message with a mismatched 'to'");
	expect_nothing(fx->carol, 0, "a group message with a mismatched 'to'");
}

/* ---- malformed envelopes -------------------------------------------------------------- */

struct bad_case {
	const char *name;
	void (*mutate)(struct envb *e);
};

static void m_no_v(struct envb *e) { envb_del(e, "v"); }
static void m_no_id(struct envb *e) { envb_del(e, "id"); }
static void m_no_t(struct envb *e) { envb_del(e, "t"); }
static void m_no_fr(struct envb *e) { envb_del(e, "fr"); }
static void m_no_to(struct envb *e) { envb_del(e, "to"); }
static void m_no_ts(struct envb *e) { envb_del(e, "ts"); }
static void m_v_str(struct envb *e) { envb_str(e, "v", "1"); }
static void m_v_2(struct envb *e) { envb_uint(e, "v", 2); }
static void m_v_0(struct envb *e) { envb_uint(e, "v", 0); }
static void m_v_nil(struct envb *e) { envb_set(e, "v", K_NIL); }
static void m_v_neg(struct envb *e) { envb_set(e, "v", K_INT)->i = -1; }
static void m_id_str(struct envb *e) { envb_str(e, "id", "0123456789abcdef"); }
static void m_id_15(struct envb *e) { envb_bin(e, "id", e->id, 15); }
static void m_id_17(struct envb *e) { envb_bin(e, "id", "0123456789abcdefg", 17); }
static void m_id_0(struct envb *e) { envb_bin(e, "id", "", 0); }
static void m_id_uint(struct envb *e) { envb_uint(e, "id", 12345); }
static void m_t_uint(struct envb *e) { envb_uint(e, "t", 5); }
static void m_t_bin(struct envb *e) { envb_bin(e, "t", "msg", 3); }
static void m_t_empty(struct envb *e) { envb_str(e, "t", ""); }
static void m_fr_uint(struct envb *e) { envb_uint(e, "fr", 7); }
static void m_fr_bin(struct envb *e) { envb_bin(e, "fr", "alice", 5); }
static void m_fr_nil(struct envb *e) { envb_set(e, "fr", K_NIL); }
static void m_to_uint(struct envb *e) { envb_uint(e, "to", 7); }
static void m_to_bin(struct envb *e) { envb_bin(e, "to", "bob", 3); }
static void m_to_array(struct envb *e) { envb_set(e, "to", K_ARRAY); }
static void m_ts_str(struct envb *e) { envb_str(e, "ts", "1700000000000"); }
static void m_ts_neg(struct envb *e) { envb_set(e, "ts", K_INT)->i = -5; }
static void m_ts_float(struct envb *e) { envb_set(e, "ts", K_FLOAT); }
static void m_ts_nil(struct envb *e) { envb_set(e, "ts", K_NIL); }
static void m_ct_uint(struct envb *e) { envb_uint(e, "ct", 3); }
static void m_body_uint(struct envb *e) { envb_uint(e, "body", 3); }
static void m_body_map(struct envb *e) { envb_set(e, "body", K_MAP); }
static void m_ref_15(struct envb *e) { envb_str(e, "t", "rcpt"); envb_bin(e, "ref", e->id, 15); }
static void m_ref_str(struct envb *e) { envb_str(e, "t", "read"); envb_str(e, "ref", "0123456789abcdef"); }
static void m_rcpt_no_ref(struct envb *e) { envb_str(e, "t", "rcpt"); envb_del(e, "ref"); }
static void m_read_no_ref(struct envb *e) { envb_str(e, "t", "read"); envb_del(e, "ref"); }
static void m_int_key(struct envb *e)
{
	struct field *f = &e->f[e->count++];
	memset(f, 0, sizeof *f);
	f->key = NULL;
	f->i = 7;
	f->kind = K_STR;
	f->s = "x";
	f->n = 1;
}
static void m_dup_fr(struct envb *e)
{
	/* "fr" twice: alice (the login) then carol */
	struct field *f = &e->f[e->count++];
	memset(f, 0, sizeof *f);
	f->key = "fr";
	f->kind = K_STR;
	f->s = "carol";
	f->n = 5;
}
static void m_big(struct envb *e)
{
	memset(e->big, 'x', MAX_PAYLOAD + 100);
	envb_bin(e, "body", e->big, MAX_PAYLOAD + 100);
}

static const struct bad_case bad_cases[] = {
	{ "missing v", m_no_v }, { "missing id", m_no_id }, { "missing t", m_no_t },
	{ "missing fr", m_no_fr }, { "missing to", m_no_to }, { "missing ts", m_no_ts },
	{ "v a str", m_v_str }, { "v = 2", m_v_2 }, { "v = 0", m_v_0 }, { "v nil", m_v_nil },
	{ "v negative", m_v_neg },
	{ "id a str", m_id_str }, { "id 15 bytes", m_id_15 }, { "id 17 bytes", m_id_17 },
	{ "id empty", m_id_0 }, { "id a uint", m_id_uint },
	{ "t a uint", m_t_uint }, { "t a bin", m_t_bin }, { "t empty", m_t_empty },
	{ "fr a uint", m_fr_uint }, { "fr a bin", m_fr_bin }, { "fr nil", m_fr_nil },
	{ "to a uint", m_to_uint }, { "to a bin", m_to_bin }, { "to an array", m_to_array },
	{ "ts a str", m_ts_str }, { "ts negative", m_ts_neg }, { "ts a float", m_ts_float },
	{ "ts nil", m_ts_nil },
	{ "ct a uint", m_ct_uint }, { "body a uint", m_body_uint }, { "body a map", m_body_map },
	{ "ref 15 bytes", m_ref_15 }, { "ref a str", m_ref_str },
	{ "rcpt without ref", m_rcpt_no_ref }, { "read without ref", m_read_no_ref },
	{ "an integer key", m_int_key }, { "fr twice", m_dup_fr },
	{ "larger than max_payload", m_big },
};

/* Wait until needle occurs at least n times in the log; returns the count. */
static int log_count_reaches(const char *needle, int n)
{
	for (int waited = 0; waited < 2000; waited += 20) {
		if (tbroker_log_count(&broker, needle) >= n)
			break;
		struct timespec ts = { 0, 20 * 1000000L };
		nanosleep(&ts, NULL);
	}
	return tbroker_log_count(&broker, needle);
}

static void malformed_fields_refused(void **state)
{
	struct fixture *fx = *state;
	const int logged_before = tbroker_log_count(&broker, "client=alice/env");
	int failures = 0;
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		struct envb e;
		envb_init(&e, "msg", "alice", "bob");
		bad_cases[i].mutate(&e);
		int rc = send_envb(fx->alice, "im/u/bob", &e, 1);
		if (rc != NOT_AUTHORIZED) {
			print_error("envelope with %s: got 0x%x, want 0x87\n", bad_cases[i].name,
				    (unsigned)rc);
			failures++;
		}
	}
	int delivered = tclient_drain(fx->bob, QUIET_MS);
	assert_int_equal(failures, 0);
	assert_int_equal(delivered, 0);
	/* every refusal logged, once */
	const int n = (int)(sizeof bad_cases / sizeof bad_cases[0]);
	assert_int_equal(log_count_reaches("client=alice/env", logged_before + n), logged_before + n);
}

/* Payloads that are not exactly one MessagePack map. */
static void not_one_map_refused(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	envb_pack(&e, &sb);
	const size_t good_len = sb.size;

	/* a valid envelope followed by one nil, then by a second copy */
	msgpack_sbuffer_write(&sb, "\xc0", 1);
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", sb.data, sb.size, 1, false), NOT_AUTHORIZED);
	sb.size = good_len;
	char *copy = malloc(good_len);
	assert_non_null(copy);
	memcpy(copy, sb.data, good_len);
	msgpack_sbuffer_write(&sb, copy, good_len);
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", sb.data, sb.size, 1, false), NOT_AUTHORIZED);
	/* truncated by one byte */
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", copy, good_len - 1, 1, false), NOT_AUTHORIZED);
	free(copy);
	msgpack_sbuffer_destroy(&sb);

	/* the fields in an array instead of a map */
	msgpack_sbuffer_init(&sb);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_str_with_body(&pk, "alice", 5);
	msgpack_pack_str_with_body(&pk, "bob", 3);
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", sb.data, sb.size, 1, false), NOT_AUTHORIZED);
	msgpack_sbuffer_destroy(&sb);

	/* not MessagePack, a bare string, an empty payload, an unused byte */
	const char *text = "{\"v\":1,\"fr\":\"alice\",\"to\":\"bob\"}";
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", text, strlen(text), 1, false), NOT_AUTHORIZED);
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", "\xa5hello", 6, 1, false), NOT_AUTHORIZED);
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", "", 0, 1, false), NOT_AUTHORIZED);
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", "\xc1", 1, 1, false), NOT_AUTHORIZED);
	/* a map header declaring far more entries than there are bytes */
	assert_int_equal(tclient_publish(fx->alice, "im/u/bob", "\xdf\xff\xff\xff\xff", 5, 1, false),
			 NOT_AUTHORIZED);
	assert_int_equal(tclient_drain(fx->bob, QUIET_MS), 0);
}

/* ---- accepted envelopes ----------------------------------------------------------------- */

/* Receive one message on bob's inbox and decode it; the payload is kept in
 * *m (tmsg_free() it). */
static void recv_env(struct tclient *c, struct tmsg *m, struct mqim_env *env)
{
	assert_int_equal(tclient_recv(c, m, 3000), 1);
	assert_int_equal(mqim_env_decode(m->payload, m->len, 0, env, NULL), 0);
}

static void assert_bts_now(const struct mqim_env *env, uint64_t before)
{
	assert_true(env->has_bts);
	uint64_t after = tnow_ms();
	if (env->bts + 1000 < before || env->bts > after + 1000)
		fail_msg("bts %llu not within [%llu, %llu]", (unsigned long long)env->bts,
			 (unsigned long long)before, (unsigned long long)after);
}

static void valid_delivered_with_bts(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	envb_str(&e, "ct", "text/plain");
	uint64_t ts = envb_get(&e, "ts")->u;
	uint64_t before = tnow_ms();
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);

	struct tmsg m;
	struct mqim_env env;
	recv_env(fx->bob, &m, &env);
	assert_string_equal(m.topic, "im/u/bob");
	assert_int_equal(env.v, 1);
	assert_memory_equal(env.id, e.id, MQIM_ENV_ID_LEN);
	assert_true(mqim_str_eq(env.t, "msg"));
	assert_true(mqim_str_eq(env.fr, "alice"));
	assert_true(mqim_str_eq(env.to, "bob"));
	assert_true(mqim_str_eq(env.ct, "text/plain"));
	assert_int_equal(env.ts, ts);
	assert_true(env.has_body);
	assert_int_equal(env.body_len, 5);
	assert_memory_equal(env.body, "hello", 5);
	assert_bts_now(&env, before);
	tmsg_free(&m);

	/* to a group as well */
	envb_init(&e, "msg", "alice", "team");
	assert_int_equal(send_envb(fx->alice, "im/g/team", &e, 1), 0);
	recv_env(fx->carol, &m, &env);
	assert_memory_equal(env.id, e.id, MQIM_ENV_ID_LEN);
	assert_bts_now(&env, before);
	tmsg_free(&m);

	/* a receipt with its ref */
	envb_init(&e, "rcpt", "alice", "bob");
	envb_del(&e, "body");
	uint8_t ref[MQIM_ENV_ID_LEN];
	assert_int_equal(trandom_id(ref), 0);
	envb_bin(&e, "ref", ref, sizeof ref);
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	recv_env(fx->bob, &m, &env);
	assert_true(env.has_ref);
	assert_memory_equal(env.ref, ref, sizeof ref);
	tmsg_free(&m);
}

/* An envelope just under the limit passes (the limit is not off by far). */
static void near_limit_delivered(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	memset(e.big, 'y', 900);
	envb_bin(&e, "body", e.big, 900);
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	envb_pack(&e, &sb);
	assert_true(sb.size > 900 && sb.size + MQIM_ENV_STAMP_EXTRA < MAX_PAYLOAD);
	msgpack_sbuffer_destroy(&sb);
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	struct tmsg m;
	struct mqim_env env;
	recv_env(fx->bob, &m, &env);
	assert_int_equal(env.body_len, 900);
	tmsg_free(&m);
}

static void sender_bts_replaced(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	envb_uint(&e, "bts", 12345);
	uint64_t before = tnow_ms();
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	struct tmsg m;
	struct mqim_env env;
	recv_env(fx->bob, &m, &env);
	assert_bts_now(&env, before);
	tmsg_free(&m);

	/* a bts of the wrong type is replaced as well */
	envb_init(&e, "msg", "alice", "bob");
	envb_str(&e, "bts", "yesterday");
	before = tnow_ms();
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	recv_env(fx->bob, &m, &env);
	assert_bts_now(&env, before);
	tmsg_free(&m);
}

/* An envelope that ends with a bts slot (what libmqim sends: bts last, as
 * a uint 64) is stamped in place: the delivered bytes are the sent ones
 * with only those 8 bytes changed, to the broker's clock; resent, it is
 * still delivered once. */
static void slot_stamped_in_place(void **state)
{
	struct fixture *fx = *state;
	struct mqim_env in;
	memset(&in, 0, sizeof in);
	in.v = MQIM_ENV_VERSION;
	assert_int_equal(trandom_id(in.id), 0);
	in.t = (struct mqim_str){ "msg", 3 };
	in.fr = (struct mqim_str){ "alice", 5 };
	in.to = (struct mqim_str){ "bob", 3 };
	in.ts = tnow_ms();
	in.body = (const uint8_t *)"slot";
	in.body_len = 4;
	in.has_body = true;
	in.has_bts = true; /* bts 0 */
	uint8_t *buf;
	size_t len;
	assert_int_equal(mqim_env_encode(&in, (void **)&buf, &len), 0);
	uint64_t before = tnow_ms();
	for (int i = 0; i < 2; i++)
		assert_int_equal(tclient_publish(fx->alice, "im/u/bob", buf, len, 2, false), 0);

	struct tmsg m;
	struct mqim_env env;
	recv_env(fx->bob, &m, &env);
	assert_int_equal(m.len, len);
	assert_memory_equal(m.payload, buf, len - 8);
	assert_bts_now(&env, before);
	assert_memory_equal(env.body, "slot", 4);
	tmsg_free(&m);
	expect_nothing(fx->bob, DEDUP_QUIET_MS, "a resent copy of a slotted envelope");
	free(buf);
}

/* Look key up in a decoded map; NULL if absent. */
static const msgpack_object *map_get(const msgpack_object *map, const char *key)
{
	size_t klen = strlen(key);
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object_kv *kv = &map->via.map.ptr[i];
		if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen &&
		    memcmp(kv->key.via.str.ptr, key, klen) == 0)
			return &kv->val;
	}
	return NULL;
}

static void unknown_keys_forwarded(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	envb_str(&e, "x-app", "chat 1.2");
	envb_uint(&e, "n", 42);
	envb_set(&e, "meta", K_ARRAY);
	envb_set(&e, "opts", K_MAP);
	envb_set(&e, "flag", K_BOOL)->u = 1;
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);

	struct tmsg m;
	assert_int_equal(tclient_recv(fx->bob, &m, 3000), 1);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	size_t off = 0;
	assert_int_equal(msgpack_unpack_next(&up, m.payload, m.len, &off), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, m.len);
	const msgpack_object *map = &up.data;
	assert_int_equal(map->type, MSGPACK_OBJECT_MAP);

	const msgpack_object *o = map_get(map, "x-app");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_STR);
	assert_int_equal(o->via.str.size, 8);
	assert_memory_equal(o->via.str.ptr, "chat 1.2", 8);
	o = map_get(map, "n");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_int_equal(o->via.u64, 42);
	o = map_get(map, "meta");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
	assert_int_equal(o->via.array.size, 2);
	assert_int_equal(o->via.array.ptr[1].type, MSGPACK_OBJECT_STR);
	o = map_get(map, "opts");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
	assert_int_equal(o->via.map.size, 1);
	o = map_get(map, "flag");
	assert_non_null(o);
	assert_int_equal(o->type, MSGPACK_OBJECT_BOOLEAN);
	assert_true(o->via.boolean);
	/* exactly one bts, the broker's */
	int bts = 0;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &map->via.map.ptr[i].key;
		bts += k->type == MSGPACK_OBJECT_STR && k->via.str.size == 3 &&
		       memcmp(k->via.str.ptr, "bts", 3) == 0;
	}
	assert_int_equal(bts, 1);
	msgpack_unpacked_destroy(&up);
	tmsg_free(&m);
}

/* ---- de-duplication ------------------------------------------------------------------------ */

static void resend_delivered_once(int qos, struct fixture *fx)
{
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, qos), 0);

	struct tmsg m;
	struct mqim_env env;
	recv_env(fx->bob, &m, &env);
	assert_memory_equal(env.id, e.id, MQIM_ENV_ID_LEN);
	tmsg_free(&m);
	expect_nothing(fx->bob, DEDUP_QUIET_MS, "a resent copy");
}

static void dedup_qos1(void **state)
{
	resend_delivered_once(1, *state);
}

static void dedup_qos2(void **state)
{
	resend_delivered_once(2, *state);
}

/* The resends need not be byte-identical: the key is (fr, id). */
static void dedup_by_fr_and_id(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	envb_uint(&e, "ts", tnow_ms() + 5);
	envb_str(&e, "body", "retry with a later ts");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	assert_int_equal(tclient_drain(fx->bob, DEDUP_QUIET_MS), 1);

	/* the same id from another sender is another message */
	struct envb c = e;
	envb_str(&c, "fr", "carol");
	envb_bin(&c, "id", e.id, MQIM_ENV_ID_LEN);
	struct tclient *carol = tclient_login(broker.port, "carol/dd", "carol", CAROL_PW);
	assert_non_null(carol);
	assert_int_equal(send_envb(carol, "im/u/bob", &c, 1), 0);
	tclient_free(carol);
	struct tmsg m;
	struct mqim_env env;
	recv_env(fx->bob, &m, &env);
	assert_true(mqim_str_eq(env.fr, "carol"));
	assert_memory_equal(env.id, e.id, MQIM_ENV_ID_LEN);
	tmsg_free(&m);

	/* a group message resent is delivered once to the group too */
	envb_init(&e, "msg", "alice", "team");
	for (int i = 0; i < 3; i++)
		assert_int_equal(send_envb(fx->alice, "im/g/team", &e, 1), 0);
	assert_int_equal(tclient_drain(fx->carol, DEDUP_QUIET_MS), 1);
}

/* ---- marked resends (docs/protocol.md, De-duplication) ----------------------------------- */

/* Publish e with the MQTT 5 user property MQIM_RESEND_PROP = value. */
static int send_marked(struct tclient *c, const char *topic, const struct envb *e, int qos,
		       const char *name, const char *value)
{
	msgpack_sbuffer sb;
	msgpack_sbuffer_init(&sb);
	envb_pack(e, &sb);
	int rc = tclient_publish_prop(c, topic, sb.data, sb.size, qos, false, name, value);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* A duplicate marked mqim-resend=1 reaches the recipient again, byte for
 * byte as the first copy (the bts of the first acceptance); unmarked it
 * reaches nobody.  To an inbox at QoS 1 and to a group at QoS 2. */
static void marked_resend_once(struct tclient *from, const char *topic, struct tclient *to,
			       const char *rcpt, int qos)
{
	struct envb e;
	struct tmsg first, again;
	envb_init(&e, "msg", "alice", rcpt);
	assert_int_equal(send_envb(from, topic, &e, qos), 0);
	assert_int_equal(tclient_recv(to, &first, 3000), 1);
	assert_int_equal(send_envb(from, topic, &e, qos), 0);
	/* DEDUP_QUIET_MS passes here: a copy stamped anew would show. */
	expect_nothing(to, DEDUP_QUIET_MS, "an unmarked duplicate");
	assert_int_equal(send_marked(from, topic, &e, qos, MQIM_RESEND_PROP, "1"), 0);
	assert_int_equal(tclient_recv(to, &again, 3000), 1);
	assert_string_equal(again.topic, topic);
	assert_int_equal(again.len, first.len);
	assert_memory_equal(again.payload, first.payload, first.len);
	expect_nothing(to, QUIET_MS, "a second copy of the marked resend");
	tmsg_free(&first);
	tmsg_free(&again);
}

static void marked_resend_delivered_again(void **state)
{
	struct fixture *fx = *state;
	marked_resend_once(fx->alice, "im/u/bob", fx->bob, "bob", 1);
	marked_resend_once(fx->alice, "im/g/team", fx->carol, "team", 2);
}

/* Only the value "1" of that exact name marks a resend. */
static void marked_resend_other_values_dropped(void **state)
{
	static const struct { const char *name, *value; } marks[] = {
		{ MQIM_RESEND_PROP, "0" }, { MQIM_RESEND_PROP, "" }, { MQIM_RESEND_PROP, "true" },
		{ MQIM_RESEND_PROP, "11" }, { MQIM_RESEND_PROP, " 1" }, { "MQIM-RESEND", "1" },
		{ "mqim-resend-", "1" }, { "x-other", "1" },
	};
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), 0);
	assert_int_equal(tclient_drain(fx->bob, QUIET_MS), 1);
	for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
		assert_int_equal(send_marked(fx->alice, "im/u/bob", &e, 1, marks[i].name,
					     marks[i].value), 0);
	expect_nothing(fx->bob, DEDUP_QUIET_MS, "a duplicate without mqim-resend=1");
}

/* The mark on a message never seen before changes nothing: one copy. */
static void marked_first_copy_delivered_once(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "bob");
	assert_int_equal(send_marked(fx->alice, "im/u/bob", &e, 1, MQIM_RESEND_PROP, "1"), 0);
	assert_int_equal(tclient_drain(fx->bob, DEDUP_QUIET_MS), 1);
}

/* ---- the log ---------------------------------------------------------------------------------- */

static void refusals_logged_without_secrets(void **state)
{
	struct fixture *fx = *state;
	struct envb e;
	envb_init(&e, "msg", "alice", "carol");
	envb_str(&e, "body", "secret-body-8812");
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	envb_init(&e, "msg", "alice", "bob");
	envb_str(&e, "body", "secret-body-8812");
	m_no_ts(&e);
	assert_int_equal(send_envb(fx->alice, "im/u/bob", &e, 1), NOT_AUTHORIZED);
	const char *line[] = { "mqim: denied", "client=alice/env", "user=alice", "im/u/bob", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	assert_int_equal(tbroker_log_count(&broker, ALICE_PW), 0);
	assert_int_equal(tbroker_log_count(&broker, BOB_PW), 0);
	assert_int_equal(tbroker_log_count(&broker, CAROL_PW), 0);
	/* nor a payload: the body of the refused messages */
	assert_int_equal(tbroker_log_count(&broker, "secret-body-8812"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(spoofed_fr_refused, drain),
		cmocka_unit_test_setup(mismatched_to_refused, drain),
		cmocka_unit_test_setup(malformed_fields_refused, drain),
		cmocka_unit_test_setup(not_one_map_refused, drain),
		cmocka_unit_test_setup(valid_delivered_with_bts, drain),
		cmocka_unit_test_setup(near_limit_delivered, drain),
		cmocka_unit_test_setup(sender_bts_replaced, drain),
		cmocka_unit_test_setup(slot_stamped_in_place, drain),
		cmocka_unit_test_setup(unknown_keys_forwarded, drain),
		cmocka_unit_test_setup(dedup_qos1, drain),
		cmocka_unit_test_setup(dedup_qos2, drain),
		cmocka_unit_test_setup(dedup_by_fr_and_id, drain),
		cmocka_unit_test_setup(marked_resend_delivered_again, drain),
		cmocka_unit_test_setup(marked_resend_other_values_dropped, drain),
		cmocka_unit_test_setup(marked_first_copy_delivered_once, drain),
		cmocka_unit_test_setup(refusals_logged_without_secrets, drain),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
