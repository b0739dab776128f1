/* test_client_backoff.c - the reconnect schedule (client/backoff.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static void test_doubling_to_cap(void **state)
{
	struct mqim__backoff b = { 1000, 60000, 0 };
	(void)state;
	assert_int_equal(mqim__backoff_base(&b, 1), 1000);
	assert_int_equal(mqim__backoff_base(&b, 2), 2000);
	assert_int_equal(mqim__backoff_base(&b, 3), 4000);
	assert_int_equal(mqim__backoff_base(&b, 6), 32000);
	assert_int_equal(mqim__backoff_base(&b, 7), 60000);
	assert_int_equal(mqim__backoff_base(&b, 100), 60000);
	assert_int_equal(mqim__backoff_base(&b, 4000000000u), 60000);
}

static void test_jitter_bounds(void **state)
{
	struct mqim__backoff b = { 1000, 60000, 0 };
	(void)state;
	for (unsigned n = 1; n < 12; n++) {
		unsigned base = mqim__backoff_base(&b, n);
		unsigned lo = base, hi = 0;
		for (uint32_t r = 0; r < 5000; r++) {
			unsigned d = mqim__backoff_delay(&b, n, r * 2654435761u);
			assert_true(d >= base / 2);
			assert_true(d <= base);
			if (d < lo)
				lo = d;
			if (d > hi)
				hi = d;
		}
		/* The jitter really spreads. */
		assert_true(hi - lo > base / 4);
	}
	/* Right after a loss: within [0, min). */
	for (uint32_t r = 0; r < 1000; r++)
		assert_true(mqim__backoff_delay(&b, 0, r * 2654435761u) < 1000);
}

static void test_attempt_limit(void **state)
{
	struct mqim__backoff unlimited = { 1000, 60000, 0 };
	struct mqim__backoff three = { 1000, 60000, 3 };
	(void)state;
	assert_false(mqim__backoff_gave_up(&unlimited, 1000000));
	assert_false(mqim__backoff_gave_up(&three, 2));
	assert_true(mqim__backoff_gave_up(&three, 3));
	assert_true(mqim__backoff_gave_up(&three, 4));
}

static void test_small_values(void **state)
{
	struct mqim__backoff b = { 1, 1, 0 };
	(void)state;
	assert_int_equal(mqim__backoff_base(&b, 5), 1);
	assert_true(mqim__backoff_delay(&b, 5, 12345) <= 1);
	assert_int_equal(mqim__backoff_delay(&b, 0, 12345), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubling_to_cap),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_attempt_limit),
		cmocka_unit_test(test_small_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
