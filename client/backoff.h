/* backoff.h - the reconnect schedule: exponential backoff with jitter.
 *
 * After a loss the first attempt comes within backoff_min (full jitter, so
 * a broker restart is not met by every device in the same millisecond);
 * the n-th failed attempt in a row waits base = min(max, min * 2^(n-1)),
 * jittered into [base/2, base] ("equal jitter": the doubling stays visible).
 * Pure functions: the random number is passed in.
 */
#ifndef MQIM_CLIENT_BACKOFF_H
#define MQIM_CLIENT_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

struct mqim__backoff {
	unsigned min_ms;        /* first step, > 0 */
	unsigned max_ms;        /* cap, >= min_ms */
	unsigned max_attempts;  /* failed attempts in a row before giving up; 0: never */
};

/* Delay before the next attempt after `failures` failed attempts in a row
 * (0: right after losing a working connection).  rnd is any random value. */
unsigned mqim__backoff_delay(const struct mqim__backoff *b, unsigned failures, uint32_t rnd);

/* The un-jittered base delay for `failures` >= 1 (min_ms for 0). */
unsigned mqim__backoff_base(const struct mqim__backoff *b, unsigned failures);

/* True when `failures` failed attempts in a row exhaust the budget. */
bool mqim__backoff_gave_up(const struct mqim__backoff *b, unsigned failures);

#endif
