/* test_client_uuid.c - UUIDv7 ids (client/uuid.c), their hex form, and
 * the client's ids (mqim__new_id: random bits drawn from a pool). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "internal.h"
#include "uuid.h"

static const uint8_t rnd[8] = { 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88 };

static void test_layout(void **state)
{
	uint8_t id[16];
	(void)state;
	mqim__uuid7_build(id, 0x0123456789abULL, 0xabc, rnd);
	assert_int_equal(id[0], 0x01);
	assert_int_equal(id[5], 0xab);
	assert_int_equal(id[6], 0x7a);          /* version 7, counter high nibble */
	assert_int_equal(id[7], 0xbc);
	assert_int_equal(id[8] & 0xc0, 0x80);   /* variant 10 */
	assert_int_equal(mqim__uuid7_ms(id), 0x0123456789abULL);
}

static void test_monotonic(void **state)
{
	struct mqim__uuid_gen g = { 0, 0 };
	uint8_t prev[16], id[16];
	(void)state;
	mqim__uuid7_next(&g, 1000, rnd, prev);
	/* Same ms many times, the clock stepping back, then forward again. */
	for (int i = 0; i < 10000; i++) {
		uint64_t now = i < 5000 ? 1000 : (i < 7000 ? 900 : 1000 + (uint64_t)i);
		mqim__uuid7_next(&g, now, rnd, id);
		assert_true(memcmp(prev, id, 16) < 0);
		memcpy(prev, id, 16);
	}
	/* After the clock jumps forward the time part follows it. */
	mqim__uuid7_next(&g, 5000000, rnd, id);
	assert_int_equal(mqim__uuid7_ms(id), 5000000);
}

static void test_hex(void **state)
{
	uint8_t id[16], back[16];
	char hex[MQIM_ID_HEX_LEN + 1];
	(void)state;
	for (int i = 0; i < 16; i++)
		id[i] = (uint8_t)(i * 17);
	assert_string_equal(mqim_id_to_hex(id, hex), "00112233445566778899aabbccddeeff");
	assert_int_equal(mqim_id_from_hex(hex, back), MQIM_OK);
	assert_memory_equal(id, back, 16);
	assert_int_equal(mqim_id_from_hex("00112233-4455-6677-8899-AABBCCDDEEFF", back), MQIM_OK);
	assert_memory_equal(id, back, 16);
	assert_int_equal(mqim_id_from_hex("0011", back), MQIM_EINVAL);
	assert_int_equal(mqim_id_from_hex("00112233445566778899aabbccddeefg", back), MQIM_EINVAL);
	assert_int_equal(mqim_id_from_hex("00112233445566778899aabbccddeeff00", back), MQIM_EINVAL);
	assert_int_equal(mqim_id_from_hex("0011223-34455-6677-8899-aabbccddeeff", back), MQIM_EINVAL);
	assert_int_equal(mqim_id_from_hex(NULL, back), MQIM_EINVAL);
}

static void test_random(void **state)
{
	uint8_t a[32], b[32];
	(void)state;
	mqim__random(a, sizeof a);
	mqim__random(b, sizeof b);
	assert_memory_not_equal(a, b, sizeof a);
}

/* The client's ids across many refills of its pool of random bytes:
 * strictly increasing, and each with random bits of its own (a pool
 * handing out the same bytes twice would repeat a tail). */
static void test_client_ids(void **state)
{
	enum { N = 1000 };
	static uint8_t ids[N][16];
	mqim_client *c = calloc(1, sizeof *c);
	(void)state;
	assert_non_null(c);
	/* As mqim_create() sets them up. */
	pthread_mutex_init(&c->id_mu, NULL);
	c->rnd_used = sizeof c->rnd;
	for (int i = 0; i < N; i++) {
		mqim__new_id(c, ids[i]);
		if (i > 0)
			assert_true(memcmp(ids[i - 1], ids[i], 16) < 0);
	}
	/* Bytes 9..15 are random in every id (8 carries the variant). */
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			assert_memory_not_equal(ids[i] + 9, ids[j] + 9, 7);
	pthread_mutex_destroy(&c->id_mu);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_client_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
