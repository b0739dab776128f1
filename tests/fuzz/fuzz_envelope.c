/* fuzz_envelope.c - libFuzzer target for common/envelope.c.
 *
 * Feeds arbitrary bytes to mqim_env_decode().  When they are accepted, the
 * properties the broker relies on must hold, or the target abort()s:
 *   - (built with MQIM_ENV_CROSSCHECK) the fast decode path and msgpack-c's
 *     unpacker agree on the result of every input, error or fields;
 *   - mqim_env_stamp() succeeds within len + MQIM_ENV_STAMP_EXTRA bytes,
 *     gives the same bytes twice, and its output decodes to the same fields
 *     with bts set to the stamped value;
 *   - mqim_env_encode() of the decoded fields decodes to the same fields.
 * Seeds: tests/fuzz/corpus/envelope/.  Run with `make fuzz`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "mqim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static bool str_same(struct mqim_str a, struct mqim_str b)
{
	return (a.ptr == NULL) == (b.ptr == NULL) && a.len == b.len &&
	       (a.len == 0 || !memcmp(a.ptr, b.ptr, a.len));
}

/* Same fields, bts aside. */
static bool env_same(const struct mqim_env *a, const struct mqim_env *b)
{
	return a->v == b->v && !memcmp(a->id, b->id, MQIM_ENV_ID_LEN) &&
	       str_same(a->t, b->t) && str_same(a->fr, b->fr) && str_same(a->to, b->to) &&
	       a->ts == b->ts && str_same(a->ct, b->ct) && a->has_body == b->has_body &&
	       a->body_is_str == b->body_is_str && a->body_len == b->body_len &&
	       (a->body_len == 0 || !memcmp(a->body, b->body, a->body_len)) &&
	       a->has_ref == b->has_ref &&
	       (!a->has_ref || !memcmp(a->ref, b->ref, MQIM_ENV_ID_LEN));
}

static void check_stamp(const uint8_t *data, size_t size, const struct mqim_env *env)
{
	const uint64_t bts = UINT64_C(0x0123456789abcdef) ^ size;
	size_t cap = size + MQIM_ENV_STAMP_EXTRA, len = 0, len2 = 0;
	uint8_t *out = malloc(cap), *out2 = malloc(cap);
	struct mqim_env st;

	CHECK(out && out2);
	CHECK(mqim_env_stamp(data, size, bts, out, cap, &len) == MQIM_OK);
	CHECK(len <= cap);
	CHECK(mqim_env_stamp(data, size, bts, out2, cap, &len2) == MQIM_OK);
	CHECK(len == len2 && !memcmp(out, out2, len));
	/* the broker's path, from the layout decode kept, gives the same bytes */
	memset(out2, 0, cap);
	CHECK(mqim_env_stamp_decoded(env, data, size, bts, out2, cap, &len2) == MQIM_OK);
	CHECK(len == len2 && !memcmp(out, out2, len));
	CHECK(mqim_env_decode(out, len, cap, &st, NULL) == MQIM_OK);
	CHECK(env_same(env, &st));
	CHECK(st.has_bts && st.bts == bts);
	free(out);
	free(out2);
}

static void check_encode(const struct mqim_env *env)
{
	void *buf = NULL;
	size_t len = 0;
	struct mqim_env back;

	CHECK(mqim_env_encode(env, &buf, &len) == MQIM_OK);
	CHECK(mqim_env_decode(buf, len, SIZE_MAX, &back, NULL) == MQIM_OK);
	CHECK(env_same(env, &back));
	CHECK(back.has_bts == env->has_bts && (!env->has_bts || back.bts == env->bts));
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqim_env env;
	struct mqim_env_error err;
	char text[160];

	if (mqim_env_decode(data, size, 0, &env, &err) != MQIM_OK) {
		CHECK(err.code != MQIM_OK && err.reason != NULL);
		mqim_env_error_text(&err, text, sizeof(text));
		return 0;
	}
	check_stamp(data, size, &env);
	check_encode(&env);
	return 0;
}
