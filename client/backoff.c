/* backoff.c - the reconnect schedule; see backoff.h. */
#include "backoff.h"

unsigned mqim__backoff_base(const struct mqim__backoff *b, unsigned failures)
{
	uint64_t base = b->min_ms ? b->min_ms : 1;
	for (unsigned i = 1; i < failures && base < b->max_ms; i++)
		base *= 2;
	if (base > b->max_ms)
		base = b->max_ms;
	return (unsigned)base;
}

unsigned mqim__backoff_delay(const struct mqim__backoff *b, unsigned failures, uint32_t rnd)
{
	unsigned base = mqim__backoff_base(b, failures);
	if (failures == 0)
		return base ? rnd % base : 0;
	unsigned half = base / 2;
	return half + rnd % (base - half + 1);
}

bool mqim__backoff_gave_up(const struct mqim__backoff *b, unsigned failures)
{
	return b->max_attempts != 0 && failures >= b->max_attempts;
}
