/* test_envelope.c - unit tests for common/envelope.c, the envelope codec.
 *
 * Covers every rule of the Envelope section of docs/protocol.md and every
 * branch of the structural pre-check.  Most decode cases are rows of two
 * tables (key mutations of a valid envelope, and raw byte strings), each
 * registered as its own cmocka test so a failure names the row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "envelope.h"
#include "mqim.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) (s), (sizeof(s) - 1)

/* ---- building envelopes ------------------------------------------------ */

/* Filler for bins and strs given without bytes: bins get PAT (0, 1, 2 ...),
 * strs get 'a's.  Large enough for the 64 KiB size-limit tests. */
#define FILL_MAX 70000
static uint8_t PAT[FILL_MAX];
static char AS[FILL_MAX];

enum vkind { V_UINT = 1, V_STR, V_BIN, V_NIL, V_TRUE, V_FLOAT, V_ARRAY, V_RAW };

struct val {
	enum vkind kind;
	uint64_t u;
	const char *s;   /* STR / BIN / RAW bytes; NULL means filler */
	size_t n;
};

#define U(x)     { V_UINT, (x), NULL, 0 }
#define S(lit)   { V_STR, 0, (lit), sizeof(lit) - 1 }
#define SA(len)  { V_STR, 0, NULL, (len) }
#define B(len)   { V_BIN, 0, NULL, (len) }
#define NIL      { V_NIL, 0, NULL, 0 }
#define TRUEV    { V_TRUE, 0, NULL, 0 }
#define FLT      { V_FLOAT, 0, NULL, 0 }
#define ARR      { V_ARRAY, 0, NULL, 0 }
#define RAW(lit) { V_RAW, 0, (lit), sizeof(lit) - 1 }

enum op { M_END = 0, M_SET, M_DEL, M_ADD, M_RAWKV };

/* A change to the default envelope: SET replaces a key's value (or adds the
 * key), DEL removes it, ADD appends a key even if present, RAWKV appends
 * raw bytes holding both a key and a value. */
struct mut {
	enum op op;
	const char *key;
	struct val v;
};

#define SET(k, v) { M_SET, (k), v }
#define DEL(k)    { M_DEL, (k), { 0, 0, NULL, 0 } }
#define ADD(k, v) { M_ADD, (k), v }
#define RAWKV(l)  { M_RAWKV, NULL, RAW(l) }

#define MAX_KV 64
#define TS_DEFAULT UINT64_C(1700000000000)

struct kv {
	const char *key;  /* NULL: v holds raw key and value bytes */
	struct val v;
};

static const struct kv defaults[] = {
	{ "v", U(1) }, { "id", B(16) }, { "t", S("msg") },
	{ "fr", S("alice") }, { "to", S("bob") }, { "ts", U(TS_DEFAULT) },
};

static void pack_val(msgpack_packer *pk, msgpack_sbuffer *sb, const struct val *v)
{
	switch (v->kind) {
	case V_UINT: msgpack_pack_uint64(pk, v->u); break;
	case V_STR: msgpack_pack_str_with_body(pk, v->s ? v->s : AS, v->n); break;
	case V_BIN: msgpack_pack_bin_with_body(pk, v->s ? v->s : (const char *)PAT, v->n); break;
	case V_NIL: msgpack_pack_nil(pk); break;
	case V_TRUE: msgpack_pack_true(pk); break;
	case V_FLOAT: msgpack_pack_double(pk, 1.5); break;
	case V_ARRAY: msgpack_pack_array(pk, 1); msgpack_pack_uint64(pk, 1); break;
	case V_RAW: msgpack_sbuffer_write(sb, v->s, v->n); break;
	}
}

static int find_kv(const struct kv *kvs, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (kvs[i].key && !strcmp(kvs[i].key, key))
			return (int)i;
	return -1;
}

/* Packs the default envelope changed by muts (up to an M_END or nm) into a
 * fresh sb, which the caller destroys. */
static void build(const struct mut *muts, size_t nm, msgpack_sbuffer *sb)
{
	struct kv kvs[MAX_KV];
	size_t n = ARRAY_LEN(defaults);
	msgpack_packer pk;

	memcpy(kvs, defaults, sizeof(defaults));
	for (size_t i = 0; i < nm && muts[i].op != M_END; i++) {
		const struct mut *m = &muts[i];
		int at = m->key ? find_kv(kvs, n, m->key) : -1;
		assert_true(n < MAX_KV);
		if (m->op == M_DEL) {
			assert_true(at >= 0);
			memmove(&kvs[at], &kvs[at + 1], (n - (size_t)at - 1) * sizeof(kvs[0]));
			n--;
		} else if (m->op == M_SET && at >= 0) {
			kvs[at].v = m->v;
		} else {
			kvs[n++] = (struct kv){ m->key, m->v };
		}
	}
	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < n; i++) {
		if (kvs[i].key)
			msgpack_pack_str_with_body(&pk, kvs[i].key, strlen(kvs[i].key));
		pack_val(&pk, sb, &kvs[i].v);
	}
}

static int decode_sb(const msgpack_sbuffer *sb, size_t max, struct mqim_env *env,
		     struct mqim_env_error *err)
{
	return mqim_env_decode(sb->data, sb->size, max, env, err);
}

static void assert_key(const char *got, const char *want)
{
	if (!want)
		assert_null(got);
	else {
		assert_non_null(got);
		assert_string_equal(got, want);
	}
}

static void assert_str(struct mqim_str s, const char *want)
{
	assert_non_null(s.ptr);
	assert_int_equal(s.len, strlen(want));
	assert_memory_equal(s.ptr, want, s.len);
}

/* Refused with code, err.key == key and a reason containing why. */
static void assert_refused(const void *buf, size_t len, size_t max, int code,
			   const char *key, const char *why)
{
	struct mqim_env env;
	struct mqim_env_error err = { 12345, "junk", "junk" };

	assert_int_equal(mqim_env_decode(buf, len, max, &env, &err), code);
	assert_int_equal(err.code, code);
	assert_key(err.key, key);
	assert_non_null(err.reason);
	if (why && !strstr(err.reason, why))
		fail_msg("reason '%s' lacks '%s'", err.reason, why);
}

/* ---- table 1: changes to a valid envelope ------------------------------ */

struct dcase {
	const char *name;
	struct mut m[3];
	int code;
	const char *key;   /* expected err.key */
	const char *why;   /* expected in err.reason, or NULL */
};

#define OK_(name, ...) { name, { __VA_ARGS__ }, MQIM_OK, NULL, NULL }
#define BAD(name, code, key, why, ...) { name, { __VA_ARGS__ }, code, key, why }
#define PROTO(name, key, why, ...) BAD(name, MQIM_EPROTO, key, why, __VA_ARGS__)
#define BADNAME(name, key, ...) BAD(name, MQIM_EBADNAME, key, "valid", __VA_ARGS__)

static const struct dcase dcases[] = {
	OK_("minimal envelope", { M_END, NULL, NIL }),
	/* each required key missing */
	PROTO("missing v", "v", "missing", DEL("v")),
	PROTO("missing id", "id", "missing", DEL("id")),
	PROTO("missing t", "t", "missing", DEL("t")),
	PROTO("missing fr", "fr", "missing", DEL("fr")),
	PROTO("missing to", "to", "missing", DEL("to")),
	PROTO("missing ts", "ts", "missing", DEL("ts")),
	/* v */
	PROTO("v = 2", "v", "version", SET("v", U(2))),
	PROTO("v = 0", "v", "version", SET("v", U(0))),
	PROTO("v as str", "v", "unsigned", SET("v", S("1"))),
	PROTO("v as nil", "v", "unsigned", SET("v", NIL)),
	PROTO("v as float", "v", "unsigned", SET("v", FLT)),
	PROTO("v negative fixint", "v", "unsigned", SET("v", RAW("\xff"))),
	OK_("v = 1 as int 8 (non-negative int counts as uint)", SET("v", RAW("\xd0\x01"))),
	OK_("v = 1 as uint 64", SET("v", RAW("\xcf\0\0\0\0\0\0\0\x01"))),
	/* id */
	PROTO("id of 15 bytes", "id", "16", SET("id", B(15))),
	PROTO("id of 17 bytes", "id", "16", SET("id", B(17))),
	PROTO("id of 0 bytes", "id", "16", SET("id", B(0))),
	PROTO("id as 16-char str", "id", "16", SET("id", S("0123456789abcdef"))),
	PROTO("id as uint", "id", "16", SET("id", U(7))),
	/* t */
	PROTO("empty t", "t", "non-empty", SET("t", S(""))),
	PROTO("t as bin", "t", "string", SET("t", B(3))),
	PROTO("t as uint", "t", "string", SET("t", U(1))),
	PROTO("t as nil", "t", "string", SET("t", NIL)),
	OK_("t of a future kind", SET("t", S("sticker"))),
	/* fr, to */
	PROTO("fr as uint", "fr", "string", SET("fr", U(1))),
	PROTO("fr as bin", "fr", "string", SET("fr", B(5))),
	PROTO("to as nil", "to", "string", SET("to", NIL)),
	PROTO("to as array", "to", "string", SET("to", ARR)),
	BADNAME("fr with /", "fr", SET("fr", S("al/ice"))),
	BADNAME("fr empty", "fr", SET("fr", S(""))),
	BADNAME("fr +", "fr", SET("fr", S("+"))),
	BADNAME("fr #", "fr", SET("fr", S("#"))),
	BADNAME("fr $SYS", "fr", SET("fr", S("$SYS"))),
	BADNAME("fr with space", "fr", SET("fr", S("al ice"))),
	BADNAME("fr leading _", "fr", SET("fr", S("_alice"))),
	BADNAME("fr UTF-8", "fr", SET("fr", S("j\xc3\xa9r\xc3\xb4me"))),
	BADNAME("fr 65 chars", "fr", SET("fr", SA(65))),
	OK_("fr 64 chars", SET("fr", SA(64))),
	BADNAME("to with /", "to", SET("to", S("bob/x"))),
	BADNAME("to empty", "to", SET("to", S(""))),
	BADNAME("to %", "to", SET("to", S("b%b"))),
	BADNAME("to 65 chars", "to", SET("to", SA(65))),
	OK_("to group-like id", SET("to", S("team-1.dev_x"))),
	/* ts */
	PROTO("ts negative fixint", "ts", "unsigned", SET("ts", RAW("\xff"))),
	PROTO("ts negative int 64", "ts", "unsigned",
	      SET("ts", RAW("\xd3\xff\xff\xff\xff\xff\xff\xff\x00"))),
	PROTO("ts as float", "ts", "unsigned", SET("ts", FLT)),
	PROTO("ts as str", "ts", "unsigned", SET("ts", S("1700000000000"))),
	PROTO("ts as nil", "ts", "unsigned", SET("ts", NIL)),
	PROTO("ts as bool", "ts", "unsigned", SET("ts", TRUEV)),
	OK_("ts positive fixint", SET("ts", U(5))),
	OK_("ts zero", SET("ts", U(0))),
	OK_("ts max uint 64", SET("ts", U(UINT64_MAX))),
	OK_("ts as non-negative int 8", SET("ts", RAW("\xd0\x05"))),
	/* ct, body */
	PROTO("ct as uint", "ct", "string", ADD("ct", U(1))),
	PROTO("ct as bin", "ct", "string", ADD("ct", B(3))),
	OK_("ct empty str", ADD("ct", S(""))),
	PROTO("body as uint", "body", "bin or a string", ADD("body", U(1))),
	PROTO("body as nil", "body", "bin or a string", ADD("body", NIL)),
	PROTO("body as array", "body", "bin or a string", ADD("body", ARR)),
	OK_("body empty bin", ADD("body", B(0))),
	OK_("body empty str", ADD("body", S(""))),
	/* ref and receipts */
	PROTO("rcpt without ref", "ref", "required", SET("t", S("rcpt"))),
	PROTO("read without ref", "ref", "required", SET("t", S("read"))),
	OK_("rcpt with ref", SET("t", S("rcpt")), ADD("ref", B(16))),
	OK_("read with ref", SET("t", S("read")), ADD("ref", B(16))),
	OK_("msg with ref", ADD("ref", B(16))),
	OK_("RCPT is another kind (case-sensitive)", SET("t", S("RCPT"))),
	PROTO("ref of 15 bytes", "ref", "16", ADD("ref", B(15))),
	PROTO("ref of 17 bytes", "ref", "16", SET("t", S("rcpt")), ADD("ref", B(17))),
	PROTO("ref as str", "ref", "16", ADD("ref", S("0123456789abcdef"))),
	/* bts: a sender's bts of another type is not an error */
	OK_("bts uint", ADD("bts", U(5))),
	OK_("bts str", ADD("bts", S("soon"))),
	OK_("bts nil", ADD("bts", NIL)),
	OK_("bts negative", ADD("bts", RAW("\xe0"))),
	OK_("bts array", ADD("bts", ARR)),
	/* unknown keys: any value, names close to known ones */
	OK_("unknown nil, array, float", ADD("x", NIL), ADD("arr", ARR), ADD("fl", FLT)),
	OK_("unknown map and ext", ADD("m", RAW("\x81\xa1k\x01")), ADD("e", RAW("\xd4\x01\x02"))),
	OK_("unknown names near known ones 1", ADD("x", U(1)), ADD("zz", U(1)), ADD("tss", U(1))),
	OK_("unknown names near known ones 2", ADD("bodY", U(1)), ADD("bodys", U(1)), ADD("", U(1))),
	OK_("unknown names near known ones 3", ADD("vt", U(1)), ADD("rf", U(1)), ADD("i", U(1))),
	/* keys */
	PROTO("duplicate t", "t", "duplicate", ADD("t", S("msg"))),
	PROTO("duplicate v", "v", "duplicate", ADD("v", U(1))),
	PROTO("duplicate bts", "bts", "duplicate", ADD("bts", U(1)), ADD("bts", U(2))),
	PROTO("duplicate unknown key", NULL, "duplicate", ADD("x", U(1)), ADD("x", U(2))),
	PROTO("duplicate empty key", NULL, "duplicate", ADD("", U(1)), ADD("", U(1))),
	OK_("two distinct unknown keys", ADD("x", U(1)), ADD("y", U(1))),
	PROTO("int key", NULL, "not a string", RAWKV("\x01\x02")),
	PROTO("bin key", NULL, "not a string", RAWKV("\xc4\x01x\x01")),
	PROTO("nil key", NULL, "not a string", RAWKV("\xc0\xc0")),
	PROTO("array key", NULL, "not a string", RAWKV("\x91\x01\x01")),
	/* the pre-check, inside a valid envelope */
	PROTO("0xc1 as a value", NULL, "0xc1", RAWKV("\xa1x\xc1")),
	PROTO("0xc1 as a key", NULL, "0xc1", RAWKV("\xc1\x01")),
};

static void run_dcase(void **state)
{
	const struct dcase *c = *state;
	msgpack_sbuffer sb;
	struct mqim_env env;

	build(c->m, ARRAY_LEN(c->m), &sb);
	if (c->code == MQIM_OK)
		assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	else
		assert_refused(sb.data, sb.size, 0, c->code, c->key, c->why);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- table 2: raw payloads, mostly for the pre-check ------------------- */

struct rcase {
	const char *name;
	const char *bytes;
	size_t len;
	const char *key;
	const char *why;
};

#define RC(name, lit, key, why) { name, LIT(lit), key, why }

static const struct rcase rcases[] = {
	RC("empty payload", "", NULL, "empty"),
	RC("an array", "\x91\x01", NULL, "not a MessagePack map"),
	RC("empty array", "\x90", NULL, "not a MessagePack map"),
	RC("an int", "\x01", NULL, "not a MessagePack map"),
	RC("nil", "\xc0", NULL, "not a MessagePack map"),
	RC("a str", "\xa1x", NULL, "not a MessagePack map"),
	RC("0xc1 first", "\xc1", NULL, "not a MessagePack map"),
	RC("empty fixmap: reaches the key rules", "\x80", "v", "missing"),
	RC("empty map 16", "\xde\x00\x00", "v", "missing"),
	RC("empty map 32", "\xdf\x00\x00\x00\x00", "v", "missing"),
	RC("two empty maps", "\x80\x80", NULL, "follow"),
	RC("map then a byte", "\x81\xa1x\x01\x00", NULL, "follow"),
	RC("map 32 of 0xffffffff in 5 bytes", "\xdf\xff\xff\xff\xff", NULL, "declares"),
	RC("map 16 of 0xffff", "\xde\xff\xff", NULL, "declares"),
	RC("fixmap of 15, 2 bytes", "\x8f\xa1x", NULL, "declares"),
	RC("map 16 count cut short", "\xde\x00", NULL, "ends inside"),
	RC("map 32 count cut short", "\xdf\x00\x00\x00", NULL, "ends inside"),
	RC("array 32 of 2^32-1 in a value", "\x81\xa1x\xdd\xff\xff\xff\xff", NULL, "declares"),
	RC("array 16 of 0xffff in a value", "\x81\xa1x\xdc\xff\xff\x01", NULL, "declares"),
	RC("map 16 in a value", "\x81\xa1x\xde\x00\x10\x01", NULL, "declares"),
	RC("nested counts fitting one by one but not together",
	   "\x81\xa1x\x93\x93\x93\x01\x01\x01", NULL, "declares"),
	RC("str 32 past the end", "\x81\xa1x\xdb\xff\xff\xff\xff", NULL, "ends inside"),
	RC("str 32 one byte short", "\x81\xa1x\xdb\x00\x00\x00\x03xy", NULL, "ends inside"),
	RC("bin 32 past the end", "\x81\xa1x\xc6\x00\x00\x01\x00xy", NULL, "ends inside"),
	RC("ext 32 past the end", "\x81\xa1x\xc9\x00\x00\x00\x05\x01xy", NULL, "ends inside"),
	RC("ext 8 without its type byte", "\x81\xa1x\xc7\x00", NULL, "ends inside"),
	RC("str 8 length cut", "\x81\xa1x\xd9", NULL, "ends inside"),
	RC("bin 16 length cut", "\x81\xa1x\xc5\x00", NULL, "ends inside"),
	RC("fixstr key past the end", "\x81\xa5xy", NULL, "ends inside"),
	RC("uint 64 cut", "\x81\xa1x\xcf\x00\x00", NULL, "ends inside"),
	RC("float 64 cut", "\x81\xa1x\xcb\x00", NULL, "ends inside"),
	RC("fixext 16 cut", "\x81\xa1x\xd8\x01\x00", NULL, "ends inside"),
	RC("value missing", "\x81\xa1x", NULL, "declares"),
	RC("0xc1 right after the map", "\x81\xc1\x01", NULL, "0xc1"),
	RC("0xc1 deep inside", "\x81\xa1x\x91\x92\x01\xc1", NULL, "0xc1"),
};

static void run_rcase(void **state)
{
	const struct rcase *c = *state;

	assert_refused(c->bytes, c->len, 0, MQIM_EPROTO, c->key, c->why);
}

/* ---- decoding valid envelopes ------------------------------------------ */

static bool points_into(const void *p, const void *buf, size_t len)
{
	const char *c = p, *b = buf;
	return c >= b && c <= b + len;
}

static void test_decode_minimal_fields(void **state)
{
	msgpack_sbuffer sb;
	struct mqim_env env;
	struct mqim_env_error err = { 1, "x", "x" };

	build(NULL, 0, &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, &err), MQIM_OK);
	assert_int_equal(err.code, MQIM_OK);
	assert_null(err.key);
	assert_null(err.reason);
	assert_int_equal(env.v, 1);
	assert_memory_equal(env.id, PAT, 16);
	assert_str(env.t, "msg");
	assert_str(env.fr, "alice");
	assert_str(env.to, "bob");
	assert_true(env.ts == TS_DEFAULT);
	assert_true(points_into(env.t.ptr, sb.data, sb.size));
	assert_true(points_into(env.fr.ptr, sb.data, sb.size));
	assert_false(env.has_bts);
	assert_null(env.ct.ptr);
	assert_false(env.has_body);
	assert_null(env.body);
	assert_false(env.has_ref);
	/* err may be NULL */
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	msgpack_sbuffer_destroy(&sb);
}

static void test_decode_full_fields(void **state)
{
	static const uint8_t ref[16] = "0123456789abcdef";
	const struct mut m[] = {
		SET("t", S("rcpt")), ADD("bts", U(42)), ADD("ct", S("text/plain")),
		ADD("body", S("hello")), { M_ADD, "ref", { V_BIN, 0, (const char *)ref, 16 } },
		ADD("extra", ARR),
	};
	msgpack_sbuffer sb;
	struct mqim_env env;

	build(m, ARRAY_LEN(m), &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	assert_str(env.t, "rcpt");
	assert_true(env.has_bts);
	assert_int_equal(env.bts, 42);
	assert_str(env.ct, "text/plain");
	assert_true(env.has_body);
	assert_true(env.body_is_str);
	assert_int_equal(env.body_len, 5);
	assert_memory_equal(env.body, "hello", 5);
	assert_true(points_into(env.body, sb.data, sb.size));
	assert_true(env.has_ref);
	assert_memory_equal(env.ref, ref, 16);
	msgpack_sbuffer_destroy(&sb);

	/* a bin body, and a sender's bts that is not a uint */
	const struct mut m2[] = { ADD("body", B(300)), ADD("bts", S("x")) };
	build(m2, ARRAY_LEN(m2), &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	assert_true(env.has_body);
	assert_false(env.body_is_str);
	assert_int_equal(env.body_len, 300);
	assert_memory_equal(env.body, PAT, 300);
	assert_false(env.has_bts);
	msgpack_sbuffer_destroy(&sb);
}

static void test_decode_key_order_free(void **state)
{
	/* the same envelope, keys in reverse order, non-minimal formats */
	static const char buf[] =
		"\x86"
		"\xa2ts\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x00"
		"\xa2to\xd9\x03" "bob"
		"\xa2" "fr\xdb\x00\x00\x00\x05" "alice"
		"\xa1t\xa3msg"
		"\xa2id\xc6\x00\x00\x00\x10" "0123456789ABCDEF"
		"\xa1v\xcd\x00\x01";
	struct mqim_env env;

	assert_int_equal(mqim_env_decode(buf, sizeof(buf) - 1, 0, &env, NULL), MQIM_OK);
	assert_true(env.ts == TS_DEFAULT);
	assert_str(env.to, "bob");
	assert_str(env.fr, "alice");
	assert_memory_equal(env.id, "0123456789ABCDEF", 16);
}

static void test_decode_bad_arguments(void **state)
{
	struct mqim_env env;
	struct mqim_env_error err;
	msgpack_sbuffer sb;

	build(NULL, 0, &sb);
	assert_int_equal(mqim_env_decode(sb.data, sb.size, 0, NULL, &err), MQIM_EINVAL);
	assert_int_equal(err.code, MQIM_EINVAL);
	assert_int_equal(mqim_env_decode(NULL, 5, 0, &env, &err), MQIM_EINVAL);
	assert_int_equal(mqim_env_decode(NULL, 0, 0, &env, &err), MQIM_EPROTO);
	msgpack_sbuffer_destroy(&sb);
}

/* Many unknown keys take the sorted duplicate check. */
static void test_decode_many_unknown_keys(void **state)
{
	char names[40][8];
	struct mut m[41];
	msgpack_sbuffer sb;
	struct mqim_env env;

	for (int i = 0; i < 40; i++) {
		snprintf(names[i], sizeof(names[i]), "k%d", (i * 17) % 40);
		m[i] = (struct mut){ M_ADD, names[i], U((uint64_t)i) };
	}
	build(m, 40, &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	msgpack_sbuffer_destroy(&sb);

	m[40] = (struct mut){ M_ADD, names[23], NIL };   /* one duplicate */
	build(m, 41, &sb);
	assert_refused(sb.data, sb.size, 0, MQIM_EPROTO, NULL, "duplicate");
	msgpack_sbuffer_destroy(&sb);

	/* same length, same prefix, distinct: not duplicates */
	const struct mut m2[] = { ADD("xxxxa", U(1)), ADD("xxxxb", U(1)), ADD("xxxxc", U(1)) };
	build(m2, ARRAY_LEN(m2), &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	msgpack_sbuffer_destroy(&sb);
}

/* A valid envelope cut at every length is refused. */
static void test_decode_truncated_everywhere(void **state)
{
	const struct mut m[] = { ADD("ct", S("text/plain")), ADD("body", B(40)), ADD("x", ARR) };
	msgpack_sbuffer sb;
	struct mqim_env env;

	build(m, ARRAY_LEN(m), &sb);
	for (size_t len = 0; len < sb.size; len++)
		assert_refused(sb.data, len, 0, MQIM_EPROTO, NULL, NULL);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	msgpack_sbuffer_destroy(&sb);
}

/* Builds an envelope of exactly want bytes by sizing a bin body. */
static void build_sized(size_t want, msgpack_sbuffer *sb)
{
	struct mut m[] = { ADD("body", B(1000)) };

	build(m, 1, sb);
	assert_true(sb->size <= want);
	m[0].v.n += want - sb->size;
	msgpack_sbuffer_destroy(sb);
	build(m, 1, sb);
	assert_int_equal(sb->size, want);
}

static void test_decode_size_limit(void **state)
{
	msgpack_sbuffer sb;
	struct mqim_env env;

	/* the default limit, 64 KiB: exactly is fine, one more is not */
	build_sized(MQIM_ENV_MAX_DEFAULT, &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	msgpack_sbuffer_destroy(&sb);
	build_sized(MQIM_ENV_MAX_DEFAULT + 1, &sb);
	assert_refused(sb.data, sb.size, 0, MQIM_ETOOBIG, NULL, "limit");
	/* an explicit limit above the default */
	assert_int_equal(decode_sb(&sb, MQIM_ENV_MAX_DEFAULT + 1, &env, NULL), MQIM_OK);
	msgpack_sbuffer_destroy(&sb);

	/* a small explicit limit */
	build(NULL, 0, &sb);
	assert_int_equal(decode_sb(&sb, sb.size, &env, NULL), MQIM_OK);
	assert_refused(sb.data, sb.size, sb.size - 1, MQIM_ETOOBIG, NULL, NULL);
	msgpack_sbuffer_destroy(&sb);
	/* the limit is checked before anything else */
	assert_refused("\xc1\xc1\xc1", 3, 2, MQIM_ETOOBIG, NULL, NULL);
}

/* Fills out with a value nested in `levels` containers: arrays, or maps
 * with key "k"; the innermost holds 1, or nothing when empty_inner. */
static size_t nest(uint8_t *out, int levels, bool maps, bool empty_inner)
{
	size_t n = 0;

	for (int i = 0; i < levels; i++) {
		bool inner = i == levels - 1;
		if (maps) {
			out[n++] = inner && empty_inner ? 0x80 : 0x81;
			if (!(inner && empty_inner)) {
				out[n++] = 0xa1;
				out[n++] = 'k';
			}
		} else {
			out[n++] = inner && empty_inner ? 0x90 : 0x91;
		}
	}
	if (!empty_inner)
		out[n++] = 0x01;
	return n;
}

/* The envelope map is depth 1; the value of key "deep" nested in `levels`
 * containers puts the innermost at depth 1 + levels. */
static int decode_nested(int levels, bool maps, bool empty_inner)
{
	uint8_t raw[200];
	struct mut m = { M_ADD, "deep", { V_RAW, 0, (const char *)raw, 0 } };
	msgpack_sbuffer sb;
	struct mqim_env env;
	struct mqim_env_error err;
	int rc;

	m.v.n = nest(raw, levels, maps, empty_inner);
	build(&m, 1, &sb);
	rc = decode_sb(&sb, 0, &env, &err);
	if (rc != MQIM_OK)
		assert_non_null(strstr(err.reason, "deep"));
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static void test_decode_depth_limit(void **state)
{
	int fit = MQIM_ENV_MAX_DEPTH - 1;   /* 31: total depth 32 */

	for (int maps = 0; maps <= 1; maps++) {
		for (int empty = 0; empty <= 1; empty++) {
			assert_int_equal(decode_nested(fit, maps, empty), MQIM_OK);
			assert_int_equal(decode_nested(fit + 1, maps, empty), MQIM_EPROTO);
			assert_int_equal(decode_nested(fit + 20, maps, empty), MQIM_EPROTO);
		}
	}
}

/* Every MessagePack format, minimal or not, as unknown keys' values. */
static const struct mut zoo[] = {
	ADD("nil", RAW("\xc0")), ADD("f", RAW("\xc2")), ADD("tr", RAW("\xc3")),
	ADD("pfix", RAW("\x7f")), ADD("nfix", RAW("\xe0")),
	ADD("u8", RAW("\xcc\xff")), ADD("u16", RAW("\xcd\xff\xff")),
	ADD("u32", RAW("\xce\xff\xff\xff\xff")), ADD("u64", RAW("\xcf\xff\xff\xff\xff\xff\xff\xff\xff")),
	ADD("i8", RAW("\xd0\x80")), ADD("i16", RAW("\xd1\x80\x00")),
	ADD("i32", RAW("\xd2\x80\x00\x00\x00")), ADD("i64", RAW("\xd3\x80\0\0\0\0\0\0\0")),
	ADD("i8pos", RAW("\xd0\x05")),
	ADD("f32", RAW("\xca\x3f\xc0\x00\x00")), ADD("f64", RAW("\xcb\x3f\xf8\0\0\0\0\0\0")),
	ADD("fs", RAW("\xa3xyz")), ADD("s8", RAW("\xd9\x03xyz")), ADD("s16", RAW("\xda\x00\x03xyz")),
	ADD("s32", RAW("\xdb\x00\x00\x00\x03xyz")),
	ADD("b8", RAW("\xc4\x02xy")), ADD("b16", RAW("\xc5\x00\x02xy")),
	ADD("b32", RAW("\xc6\x00\x00\x00\x02xy")),
	ADD("fx1", RAW("\xd4\x01z")), ADD("fx2", RAW("\xd5\x01zz")), ADD("fx4", RAW("\xd6\x01zzzz")),
	ADD("fx8", RAW("\xd7\x01zzzzzzzz")), ADD("fx16", RAW("\xd8\x01zzzzzzzzzzzzzzzz")),
	ADD("e8", RAW("\xc7\x03\x01xyz")), ADD("e16", RAW("\xc8\x00\x03\x01xyz")),
	ADD("e32", RAW("\xc9\x00\x00\x00\x03\x01xyz")), ADD("ets", RAW("\xd6\xff\x00\x00\x00\x01")),
	ADD("fa", RAW("\x92\x01\x02")), ADD("a16", RAW("\xdc\x00\x02\x01\x02")),
	ADD("a32", RAW("\xdd\x00\x00\x00\x02\x01\x02")),
	ADD("fm", RAW("\x81\xa1k\x01")), ADD("m16", RAW("\xde\x00\x01\xa1k\x01")),
	ADD("m32", RAW("\xdf\x00\x00\x00\x01\xa1k\x01")),
	ADD("ea", RAW("\x90")), ADD("em", RAW("\x80")), ADD("es", RAW("\xa0")), ADD("eb", RAW("\xc4\x00")),
	ADD("mixed", RAW("\x82\x01\x92\xc0\x80\xa1k\x91\xc3")),
};

static void test_decode_every_format(void **state)
{
	msgpack_sbuffer sb;
	struct mqim_env env;

	build(zoo, ARRAY_LEN(zoo), &sb);
	assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
	for (size_t len = 0; len < sb.size; len++)
		assert_refused(sb.data, len, 0, MQIM_EPROTO, NULL, NULL);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- encode ------------------------------------------------------------ */

static struct mqim_env sample_env(void)
{
	struct mqim_env e;

	memset(&e, 0, sizeof(e));
	e.v = MQIM_ENV_VERSION;
	memcpy(e.id, PAT, 16);
	e.t = (struct mqim_str){ LIT("msg") };
	e.fr = (struct mqim_str){ LIT("alice") };
	e.to = (struct mqim_str){ LIT("bob") };
	e.ts = TS_DEFAULT;
	return e;
}

static void assert_env_equal(const struct mqim_env *a, const struct mqim_env *b)
{
	assert_true(a->v == b->v);
	assert_memory_equal(a->id, b->id, 16);
	assert_int_equal(a->t.len, b->t.len);
	assert_memory_equal(a->t.ptr, b->t.ptr, a->t.len);
	assert_int_equal(a->fr.len, b->fr.len);
	assert_memory_equal(a->fr.ptr, b->fr.ptr, a->fr.len);
	assert_int_equal(a->to.len, b->to.len);
	assert_memory_equal(a->to.ptr, b->to.ptr, a->to.len);
	assert_true(a->ts == b->ts);
	assert_int_equal(a->ct.ptr != NULL, b->ct.ptr != NULL);
	assert_int_equal(a->ct.len, b->ct.len);
	if (a->ct.len)
		assert_memory_equal(a->ct.ptr, b->ct.ptr, a->ct.len);
	assert_int_equal(a->has_body, b->has_body);
	assert_int_equal(a->body_is_str, b->body_is_str);
	assert_int_equal(a->body_len, b->body_len);
	if (a->body_len)
		assert_memory_equal(a->body, b->body, a->body_len);
	assert_int_equal(a->has_ref, b->has_ref);
	if (a->has_ref)
		assert_memory_equal(a->ref, b->ref, 16);
}

static void test_encode_round_trip_minimal(void **state)
{
	struct mqim_env in = sample_env(), out;
	void *buf = NULL;
	size_t len = 0;

	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_int_equal(mqim_env_decode(buf, len, 0, &out, NULL), MQIM_OK);
	assert_env_equal(&in, &out);
	assert_false(out.has_bts);
	free(buf);
}

static void test_encode_round_trip_full(void **state)
{
	struct mqim_env in = sample_env(), out;
	void *buf = NULL;
	size_t len = 0;

	in.t = (struct mqim_str){ LIT("read") };
	in.has_bts = true;
	in.bts = UINT64_MAX;
	in.ct = (struct mqim_str){ LIT("application/json") };
	in.body = (const uint8_t *)"{\"a\":1}";
	in.body_len = 7;
	in.has_body = true;
	in.body_is_str = true;
	in.has_ref = true;
	memcpy(in.ref, PAT + 100, 16);
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_int_equal(mqim_env_decode(buf, len, 0, &out, NULL), MQIM_OK);
	assert_env_equal(&in, &out);
	assert_true(out.has_bts);
	assert_true(out.bts == UINT64_MAX);
	free(buf);

	/* bin body, empty ct, empty body with a NULL pointer */
	in.body_is_str = false;
	in.body = PAT;
	in.body_len = 70000;
	in.ct = (struct mqim_str){ "", 0 };
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_int_equal(mqim_env_decode(buf, len, len, &out, NULL), MQIM_OK);
	assert_env_equal(&in, &out);
	free(buf);
	in.body = NULL;
	in.body_len = 0;
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_int_equal(mqim_env_decode(buf, len, 0, &out, NULL), MQIM_OK);
	assert_true(out.has_body);
	assert_int_equal(out.body_len, 0);
	free(buf);
}

/* The same entries as buf (a fixmap of at most 15 fixstr keys), in reverse
 * order: bytes decode_canonical() never takes, so the general pass decodes
 * them.  Returns the length written to out. */
static size_t reversed(const uint8_t *buf, size_t len, uint8_t *out)
{
	size_t start[16], n = buf[0] & 0x0f, off = 1, o = 1;
	msgpack_zone zone;
	msgpack_object obj;

	assert_true(buf[0] >= 0x80 && buf[0] <= 0x8f);
	msgpack_zone_init(&zone, 1024);
	for (size_t i = 0; i < n; i++) {
		start[i] = off;
		for (int kv = 0; kv < 2; kv++) {
			msgpack_unpack_return rc = msgpack_unpack((const char *)buf, len, &off, &zone, &obj);
			assert_true(rc == MSGPACK_UNPACK_EXTRA_BYTES || rc == MSGPACK_UNPACK_SUCCESS);
		}
	}
	msgpack_zone_destroy(&zone);
	out[0] = buf[0];
	for (size_t i = n; i-- > 0;) {
		size_t end = i + 1 < n ? start[i + 1] : len;
		memcpy(out + o, buf + start[i], end - start[i]);
		o += end - start[i];
	}
	return o;
}

/* The envelopes mqim_env_encode() makes take decode_canonical(), a faster
 * reader of that one layout.  For such an envelope and for every change of
 * one of its bytes that is still accepted, the same entries in reverse
 * order (which only the general pass reads) must decode to the same fields.
 * (The fuzz target checks refusals too, against msgpack-c.) */
static void test_decode_canonical_matches_general(void **state)
{
	struct mqim_env in = sample_env(), a, b;
	uint8_t *buf, rev[512];
	size_t len, accepted = 0;

	in.t = (struct mqim_str){ LIT("rcpt") };
	in.has_bts = true;
	in.bts = 1234567;
	in.ct = (struct mqim_str){ LIT("text/plain") };
	in.body = PAT;
	in.body_len = 40;
	in.has_body = true;
	in.has_ref = true;
	memcpy(in.ref, PAT + 100, 16);
	assert_int_equal(mqim_env_encode(&in, (void **)&buf, &len), MQIM_OK);
	assert_true(len <= sizeof(rev));
	for (size_t i = 0; i <= len; i++) {
		for (unsigned delta = 0; delta < 256; delta += i < len ? 1 : 256) {
			if (i < len)
				buf[i] = (uint8_t)(buf[i] + delta);
			if (mqim_env_decode(buf, len, 0, &a, NULL) == MQIM_OK) {
				accepted++;
				assert_int_equal(mqim_env_decode(rev, reversed(buf, len, rev), 0, &b, NULL),
						 MQIM_OK);
				assert_env_equal(&a, &b);
				assert_int_equal(a.has_bts, b.has_bts);
				assert_true(a.bts == b.bts);
			}
			if (i < len)
				buf[i] = (uint8_t)(buf[i] - delta);
		}
	}
	assert_true(accepted > len); /* ids, body and ts bytes may change freely */
	free(buf);
}

static void test_encode_key_order(void **state)
{
	static const char *const order[] = { "v", "id", "t", "fr", "to", "ts", "ct", "body", "ref", "bts" };
	struct mqim_env in = sample_env();
	msgpack_zone zone;
	msgpack_object root;
	void *buf;
	size_t len, off = 0;

	in.has_bts = true;
	in.ct = (struct mqim_str){ LIT("text/plain") };
	in.has_body = true;
	in.body = (const uint8_t *)"x";
	in.body_len = 1;
	in.has_ref = true;
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_true(msgpack_zone_init(&zone, 1024));
	assert_int_equal(msgpack_unpack(buf, len, &off, &zone, &root), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, len);
	assert_int_equal(root.type, MSGPACK_OBJECT_MAP);
	assert_int_equal(root.via.map.size, ARRAY_LEN(order));
	for (size_t i = 0; i < ARRAY_LEN(order); i++) {
		const msgpack_object_str *k = &root.via.map.ptr[i].key.via.str;
		assert_int_equal(k->size, strlen(order[i]));
		assert_memory_equal(k->ptr, order[i], k->size);
	}
	msgpack_zone_destroy(&zone);
	free(buf);
}

static void test_encode_does_not_validate(void **state)
{
	struct mqim_env in = sample_env(), out;
	struct mqim_env_error err;
	void *buf;
	size_t len;

	/* encode packs what it is given; decode is the validator */
	in.to = (struct mqim_str){ LIT("no/such") };
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_int_equal(mqim_env_decode(buf, len, 0, &out, &err), MQIM_EBADNAME);
	assert_string_equal(err.key, "to");
	free(buf);
	in = sample_env();
	in.t = (struct mqim_str){ NULL, 0 };
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_OK);
	assert_int_equal(mqim_env_decode(buf, len, 0, &out, &err), MQIM_EPROTO);
	assert_string_equal(err.key, "t");
	free(buf);
}

static void test_encode_bad_arguments(void **state)
{
	struct mqim_env in = sample_env();
	void *buf = (void *)1;
	size_t len = 0;

	assert_int_equal(mqim_env_encode(NULL, &buf, &len), MQIM_EINVAL);
	assert_int_equal(mqim_env_encode(&in, NULL, &len), MQIM_EINVAL);
	assert_int_equal(mqim_env_encode(&in, &buf, NULL), MQIM_EINVAL);
	in.fr = (struct mqim_str){ NULL, 3 };
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_EINVAL);
	in = sample_env();
	in.ct = (struct mqim_str){ "x", (size_t)UINT32_MAX + 1 };
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_EINVAL);
	in = sample_env();
	in.has_body = true;
	in.body_len = 4;
	assert_int_equal(mqim_env_encode(&in, &buf, &len), MQIM_EINVAL);
	assert_ptr_equal(buf, (void *)1);   /* untouched on error */
}

/* ---- stamp ------------------------------------------------------------- */

/* Stamps sb with bts into a buffer of exactly len + MQIM_ENV_STAMP_EXTRA;
 * returns the malloc'd output. */
static uint8_t *stamp_sb(const msgpack_sbuffer *sb, uint64_t bts, size_t *out_len)
{
	size_t cap = sb->size + MQIM_ENV_STAMP_EXTRA;
	uint8_t *out = malloc(cap);

	assert_non_null(out);
	assert_int_equal(mqim_env_stamp(sb->data, sb->size, bts, out, cap, out_len), MQIM_OK);
	assert_true(*out_len <= cap);
	return out;
}

static bool is_key(const msgpack_object *k, const char *name)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
	       !memcmp(k->via.str.ptr, name, k->via.str.size);
}

/* The stamped map holds the original's key-value pairs but bts, in order
 * and equal as objects, then "bts": bts last. */
static void assert_stamped(const void *orig, size_t olen, const void *st, size_t slen, uint64_t bts)
{
	msgpack_zone zone;
	msgpack_object a, b;
	size_t off = 0, j = 0;

	assert_true(msgpack_zone_init(&zone, 4096));
	assert_int_equal(msgpack_unpack(orig, olen, &off, &zone, &a), MSGPACK_UNPACK_SUCCESS);
	off = 0;
	assert_int_equal(msgpack_unpack(st, slen, &off, &zone, &b), MSGPACK_UNPACK_SUCCESS);
	assert_int_equal(off, slen);
	for (uint32_t i = 0; i < a.via.map.size; i++) {
		if (is_key(&a.via.map.ptr[i].key, "bts"))
			continue;
		assert_true(j < b.via.map.size);
		assert_true(msgpack_object_equal(a.via.map.ptr[i].key, b.via.map.ptr[j].key));
		assert_true(msgpack_object_equal(a.via.map.ptr[i].val, b.via.map.ptr[j].val));
		j++;
	}
	assert_int_equal(b.via.map.size, j + 1);
	assert_true(is_key(&b.via.map.ptr[j].key, "bts"));
	assert_int_equal(b.via.map.ptr[j].val.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
	assert_true(b.via.map.ptr[j].val.via.u64 == bts);
	msgpack_zone_destroy(&zone);
}

static void test_stamp_keeps_unknown_keys(void **state)
{
	msgpack_sbuffer sb;
	struct mqim_env a, b;
	uint8_t *out;
	size_t len;

	build(zoo, ARRAY_LEN(zoo), &sb);
	out = stamp_sb(&sb, 1234, &len);
	assert_stamped(sb.data, sb.size, out, len, 1234);
	/* spliced, not re-encoded: the entries follow the new header byte for
	 * byte, non-minimal formats included */
	size_t hin = (uint8_t)sb.data[0] == 0xde ? 3 : 1, hout = out[0] == 0xde ? 3 : 1;
	assert_int_equal(len, sb.size - hin + hout + 13);
	assert_memory_equal(out + hout, sb.data + hin, sb.size - hin);
	assert_int_equal(decode_sb(&sb, 0, &a, NULL), MQIM_OK);
	assert_int_equal(mqim_env_decode(out, len, 0, &b, NULL), MQIM_OK);
	assert_env_equal(&a, &b);
	assert_true(b.has_bts && b.bts == 1234);
	free(out);
	msgpack_sbuffer_destroy(&sb);
}

static void test_stamp_replaces_bts(void **state)
{
	static const struct mut cases[][2] = {
		{ ADD("bts", U(5)) }, { ADD("bts", S("later")) }, { ADD("bts", ARR) },
		{ ADD("bts", NIL) }, { ADD("bts", RAW("\xe0")) }, { ADD("bts", FLT) },
		{ ADD("bts", U(1)), ADD("bts", S("two")) },   /* stamp drops both */
		{ { M_END, NULL, NIL } },                     /* no bts at all */
	};

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		msgpack_sbuffer sb;
		struct mqim_env env;
		size_t len;
		uint8_t *out;

		build(cases[i], 2, &sb);
		out = stamp_sb(&sb, TS_DEFAULT + i, &len);
		assert_stamped(sb.data, sb.size, out, len, TS_DEFAULT + i);
		assert_int_equal(mqim_env_decode(out, len, 0, &env, NULL), MQIM_OK);
		assert_true(env.has_bts);
		assert_true(env.bts == TS_DEFAULT + i);
		free(out);
		msgpack_sbuffer_destroy(&sb);
	}
}

static void test_stamp_deterministic(void **state)
{
	msgpack_sbuffer sb;
	uint8_t *a, *b;
	size_t alen, blen;

	build(zoo, ARRAY_LEN(zoo), &sb);
	a = stamp_sb(&sb, 99, &alen);
	b = stamp_sb(&sb, 99, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(b);
	/* stamping the stamped output again with the same bts is a fixed point */
	msgpack_sbuffer_destroy(&sb);
	sb.data = (char *)a;
	sb.size = alen;
	b = stamp_sb(&sb, 99, &blen);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
}

/* The largest growth: a fixmap of 15 becomes a map 16, plus a uint 64 bts. */
static void test_stamp_worst_growth(void **state)
{
	const struct mut m[] = {
		ADD("a", U(1)), ADD("b", U(1)), ADD("c", U(1)), ADD("d", U(1)),
		ADD("e", U(1)), ADD("f", U(1)), ADD("g", U(1)), ADD("h", U(1)), ADD("i", U(1)),
	};
	msgpack_sbuffer sb;
	uint8_t *out;
	size_t len;

	build(m, ARRAY_LEN(m), &sb);
	assert_int_equal((uint8_t)sb.data[0], 0x8f);
	out = stamp_sb(&sb, UINT64_MAX, &len);
	assert_int_equal(len, sb.size + 15);
	assert_int_equal(out[0], 0xde);
	assert_stamped(sb.data, sb.size, out, len, UINT64_MAX);
	free(out);
	msgpack_sbuffer_destroy(&sb);
}

/* An envelope encoded with has_bts (the slot libmqim sends) is stamped in
 * place into exactly the bytes mqim_env_stamp() gives; every other form is
 * left untouched for a copy. */
static void test_stamp_in_place(void **state)
{
	struct mqim_env in = sample_env(), env;
	uint8_t *buf, copy[512];
	size_t len, clen;

	in.has_body = true;
	in.body = (const uint8_t *)"hello";
	in.body_len = 5;
	in.has_bts = true; /* bts 0: the slot */
	assert_int_equal(mqim_env_encode(&in, (void **)&buf, &len), MQIM_OK);
	assert_memory_equal(buf + len - 13, "\xa3" "bts" "\xcf\0\0\0\0\0\0\0\0", 13);
	assert_int_equal(mqim_env_decode(buf, len, 0, &env, NULL), MQIM_OK);
	assert_int_equal(mqim_env_stamp(buf, len, 1732550000123u, copy, sizeof(copy), &clen), MQIM_OK);
	assert_true(mqim_env_stamp_in_place(&env, buf, len, 1732550000123u));
	assert_int_equal(clen, len);
	assert_memory_equal(buf, copy, len);
	assert_int_equal(mqim_env_decode(buf, len, 0, &env, NULL), MQIM_OK);
	assert_true(env.has_bts && env.bts == 1732550000123u);
	free(buf);

	/* no bts, a short bts, bts not last, a map 16: a copy is needed */
	static const struct mut cases[][2] = {
		{ { M_END, NULL, NIL } },
		{ ADD("bts", U(5)) },
		{ ADD("bts", U(UINT64_MAX)), ADD("zz", U(1)) },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		msgpack_sbuffer sb;
		build(cases[i], 2, &sb);
		memcpy(copy, sb.data, sb.size);
		assert_int_equal(decode_sb(&sb, 0, &env, NULL), MQIM_OK);
		assert_false(mqim_env_stamp_in_place(&env, sb.data, sb.size, 77));
		assert_memory_equal(copy, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	uint8_t wide[] = "\xde\x00\x07\xa1v\x01\xa2id\xc4\x10" "0123456789abcdef"
			 "\xa1t\xa3msg\xa2" "fr\xa1" "a\xa2to\xa1" "b\xa2ts\x05"
			 "\xa3" "bts\xcf\0\0\0\0\0\0\0\0";
	assert_int_equal(mqim_env_decode(wide, sizeof(wide) - 1, 0, &env, NULL), MQIM_OK);
	assert_false(mqim_env_stamp_in_place(&env, wide, sizeof(wide) - 1, 77));
	assert_false(mqim_env_stamp_in_place(NULL, wide, sizeof(wide) - 1, 77));
}

static void test_stamp_refusals(void **state)
{
	msgpack_sbuffer sb;
	uint8_t out[512];
	size_t len = 7;

	build(NULL, 0, &sb);
	assert_int_equal(mqim_env_stamp(sb.data, sb.size, 1, out, sb.size + MQIM_ENV_STAMP_EXTRA - 1,
					&len), MQIM_EINVAL);
	assert_int_equal(mqim_env_stamp(NULL, sb.size, 1, out, sizeof(out), &len), MQIM_EINVAL);
	assert_int_equal(mqim_env_stamp(sb.data, sb.size, 1, NULL, sizeof(out), &len), MQIM_EINVAL);
	assert_int_equal(mqim_env_stamp(sb.data, sb.size, 1, out, sizeof(out), NULL), MQIM_EINVAL);
	assert_int_equal(mqim_env_stamp(sb.data, SIZE_MAX - 3, 1, out, SIZE_MAX, &len), MQIM_EINVAL);
	assert_int_equal(len, 7);
	/* raw bytes get the pre-check: bombs, truncation, trailing bytes */
	for (size_t l = 0; l < sb.size; l++)
		assert_int_equal(mqim_env_stamp(sb.data, l, 1, out, sizeof(out), &len), MQIM_EPROTO);
	for (size_t i = 0; i < ARRAY_LEN(rcases); i++) {
		if (rcases[i].key)   /* the empty maps pass the pre-check */
			continue;
		assert_int_equal(mqim_env_stamp(rcases[i].bytes, rcases[i].len, 1, out,
						sizeof(out), &len), MQIM_EPROTO);
	}
	/* stamp does not apply the key rules: an empty map gets its bts */
	assert_int_equal(mqim_env_stamp("\x80", 1, 5, out, sizeof(out), &len), MQIM_OK);
	assert_int_equal(len, 14);
	assert_memory_equal(out, "\x81\xa3" "bts\xcf\0\0\0\0\0\0\0\x05", 14);
	/* a bts in a longer str encoding is found and dropped too */
	assert_int_equal(mqim_env_stamp("\x81\xd9\x03" "bts\x01", 7, 5, out, sizeof(out), &len), MQIM_OK);
	assert_int_equal(len, 14);
	assert_memory_equal(out, "\x81\xa3" "bts\xcf\0\0\0\0\0\0\0\x05", 14);
	msgpack_sbuffer_destroy(&sb);
}

/* ---- helpers ----------------------------------------------------------- */

static void test_str_eq(void **state)
{
	struct mqim_str s = { "rcptx", 4 };

	assert_true(mqim_str_eq(s, "rcpt"));
	assert_false(mqim_str_eq(s, "rcp"));
	assert_false(mqim_str_eq(s, "rcptx"));
	assert_false(mqim_str_eq(s, "read"));
	assert_false(mqim_str_eq(s, NULL));
	assert_true(mqim_str_eq((struct mqim_str){ "x", 0 }, ""));
	assert_false(mqim_str_eq((struct mqim_str){ NULL, 0 }, ""));
}

static void test_error_text(void **state)
{
	struct mqim_env_error e = { MQIM_EPROTO, "ts", "ts must be an unsigned integer" };
	char buf[64];

	assert_string_equal(mqim_env_error_text(&e, buf, sizeof(buf)),
			    "ts must be an unsigned integer (key 'ts')");
	e.key = NULL;
	assert_string_equal(mqim_env_error_text(&e, buf, sizeof(buf)),
			    "ts must be an unsigned integer");
	e.reason = NULL;
	assert_string_equal(mqim_env_error_text(&e, buf, sizeof(buf)),
			    mqim_strerror(MQIM_EPROTO));
	e.reason = "a long reason";
	assert_string_equal(mqim_env_error_text(&e, buf, 7), "a long");
	assert_string_equal(mqim_env_error_text(NULL, buf, sizeof(buf)), "");
	buf[0] = 'z';
	assert_ptr_equal(mqim_env_error_text(&e, buf, 0), buf);
	assert_int_equal(buf[0], 'z');
	assert_null(mqim_env_error_text(&e, NULL, 10));
}

/* ---- main -------------------------------------------------------------- */

static const struct CMUnitTest fixed_tests[] = {
	cmocka_unit_test(test_decode_minimal_fields),
	cmocka_unit_test(test_decode_full_fields),
	cmocka_unit_test(test_decode_key_order_free),
	cmocka_unit_test(test_decode_bad_arguments),
	cmocka_unit_test(test_decode_many_unknown_keys),
	cmocka_unit_test(test_decode_truncated_everywhere),
	cmocka_unit_test(test_decode_size_limit),
	cmocka_unit_test(test_decode_depth_limit),
	cmocka_unit_test(test_decode_every_format),
	cmocka_unit_test(test_encode_round_trip_minimal),
	cmocka_unit_test(test_encode_round_trip_full),
	cmocka_unit_test(test_encode_key_order),
	cmocka_unit_test(test_decode_canonical_matches_general),
	cmocka_unit_test(test_encode_does_not_validate),
	cmocka_unit_test(test_encode_bad_arguments),
	cmocka_unit_test(test_stamp_keeps_unknown_keys),
	cmocka_unit_test(test_stamp_replaces_bts),
	cmocka_unit_test(test_stamp_deterministic),
	cmocka_unit_test(test_stamp_worst_growth),
	cmocka_unit_test(test_stamp_in_place),
	cmocka_unit_test(test_stamp_refusals),
	cmocka_unit_test(test_str_eq),
	cmocka_unit_test(test_error_text),
};

int main(void)
{
	static char names[ARRAY_LEN(dcases) + ARRAY_LEN(rcases)][128];
	struct CMUnitTest all[ARRAY_LEN(fixed_tests) + ARRAY_LEN(dcases) + ARRAY_LEN(rcases)];
	size_t n = 0, k = 0;

	for (size_t i = 0; i < FILL_MAX; i++) {
		PAT[i] = (uint8_t)(i * 7 + 3);
		AS[i] = 'a';
	}
	for (size_t i = 0; i < ARRAY_LEN(dcases); i++, k++) {
		snprintf(names[k], sizeof(names[k]), "decode: %s", dcases[i].name);
		all[n++] = (struct CMUnitTest){ names[k], run_dcase, NULL, NULL,
						(void *)&dcases[i] };
	}
	for (size_t i = 0; i < ARRAY_LEN(rcases); i++, k++) {
		snprintf(names[k], sizeof(names[k]), "raw: %s", rcases[i].name);
		all[n++] = (struct CMUnitTest){ names[k], run_rcase, NULL, NULL,
						(void *)&rcases[i] };
	}
	for (size_t i = 0; i < ARRAY_LEN(fixed_tests); i++)
		all[n++] = fixed_tests[i];
	return cmocka_run_group_tests_name("envelope", all, NULL, NULL);
}
