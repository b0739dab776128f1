/* payload.c - the benchmark's messages: real mqim envelopes whose 200-byte
 * body starts with a timing stamp.
 *
 * One template per sender is encoded with mqim_env_encode() (v 1, a 16-byte
 * id, t "msg", fr, to, ts, a 200-byte bin body and the bts slot libmqim
 * sends, a uint 64 0 the broker stamps in place); per message only the id,
 * ts and the stamp are patched in place.  Every field keeps its encoded
 * size (ts is always a uint 64 since it exceeds 2^32), so the bytes are
 * exactly those mqim_env_encode() would give for the new values: the same
 * workload for all three brokers, and a valid envelope for broker C.
 *
 * Stamp layout (native byte order, the sender and receiver are one
 * process): "MQBN", flow u32, seq u32, CLOCK_MONOTONIC send time u64 ns.
 * The id is the run's nonce (8 bytes), then flow and seq: unique per run,
 * so broker C's de-duplication window never hides a message of a later run.
 *
 * Thread rules: no global state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "envelope.h"
#include "mqim.h"

static const char magic[4] = { 'M', 'Q', 'B', 'N' };
#define STAMP_LEN 20
#define TS_SENTINEL 0xF1E2D3C4B5A69788ULL

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static size_t find(const uint8_t *buf, size_t len, const void *needle, size_t nlen)
{
	const uint8_t *p = memmem(buf, len, needle, nlen);
	return p ? (size_t)(p - buf) : (size_t)-1;
}

int env_tmpl_init(struct env_tmpl *t, const char *from, const char *to, bool group)
{
	uint8_t body[BENCH_BODY_LEN], ts_be[8];
	struct mqim_env env;
	void *out = NULL;
	size_t out_len = 0;

	memset(t, 0, sizeof(*t));
	memset(&env, 0, sizeof(env));
	memset(body, 'x', sizeof(body));
	memcpy(body, magic, sizeof(magic));
	for (size_t i = 0; i < sizeof(env.id); i += 8) {
		uint64_t r = rand64();
		memcpy(env.id + i, &r, 8);
	}
	env.v = MQIM_ENV_VERSION;
	env.t = (struct mqim_str){ "msg", 3 };
	env.fr = (struct mqim_str){ from, strlen(from) };
	env.to = (struct mqim_str){ to, strlen(to) };
	env.ts = TS_SENTINEL;
	env.body = body;
	env.body_len = sizeof(body);
	env.has_body = true;
	env.has_bts = true; /* bts 0: the slot, as libmqim sends it */
	if (mqim_env_encode(&env, &out, &out_len) != MQIM_OK)
		return -1;
	t->buf = out;
	t->len = out_len;
	put_be64(ts_be, TS_SENTINEL);
	t->off_id = find(t->buf, t->len, env.id, sizeof(env.id));
	t->off_ts = find(t->buf, t->len, ts_be, sizeof(ts_be));
	t->off_stamp = find(t->buf, t->len, magic, sizeof(magic));
	snprintf(t->topic, sizeof(t->topic), "%s%s", group ? "im/g/" : "im/u/", to);
	if (t->off_id == (size_t)-1 || t->off_ts == (size_t)-1 || t->off_stamp == (size_t)-1 ||
	    t->off_stamp + STAMP_LEN > t->len) {
		env_tmpl_free(t);
		return -1;
	}
	return 0;
}

void env_tmpl_free(struct env_tmpl *t)
{
	free(t->buf);
	t->buf = NULL;
	t->len = 0;
}

void env_tmpl_fill(struct env_tmpl *t, uint64_t nonce, uint32_t flow, uint32_t seq,
		   uint64_t send_ns)
{
	uint8_t *id = t->buf + t->off_id, *st = t->buf + t->off_stamp;
	memcpy(id, &nonce, 8);
	memcpy(id + 8, &flow, 4);
	memcpy(id + 12, &seq, 4);
	put_be64(t->buf + t->off_ts, wall_ms());
	memcpy(st + 4, &flow, 4);
	memcpy(st + 8, &seq, 4);
	memcpy(st + 12, &send_ns, 8);
}

bool env_stamp_read(const uint8_t *payload, size_t len, uint32_t *flow, uint32_t *seq,
		    uint64_t *send_ns)
{
	const uint8_t *p = memmem(payload, len, magic, sizeof(magic));
	if (!p || (size_t)(payload + len - p) < STAMP_LEN)
		return false;
	memcpy(flow, p + 4, 4);
	memcpy(seq, p + 8, 4);
	memcpy(send_ns, p + 12, 8);
	return true;
}

int env_tmpl_check(const struct env_tmpl *t)
{
	struct mqim_env env;
	return mqim_env_decode(t->buf, t->len, 0, &env, NULL) == MQIM_OK &&
			       env.body_len == BENCH_BODY_LEN
		       ? 0 : -1;
}
