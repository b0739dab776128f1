/* uuid.h - UUIDv7 message ids and their hex form.
 *
 * A UUIDv7 (RFC 9562) carries a 48-bit Unix time in milliseconds, then the
 * version (7), 12 bits we use as a counter within one millisecond, the
 * variant (10) and 62 random bits.  The generator below never hands out the
 * same id twice and keeps ids strictly increasing even when the clock stands
 * still or steps back.  Pure code: time and randomness are passed in, so the
 * unit tests drive it; the caller serialises access to a generator.
 */
#ifndef MQIM_CLIENT_UUID_H
#define MQIM_CLIENT_UUID_H

#include <stdint.h>

struct mqim__uuid_gen {
	uint64_t last_ms;   /* time part of the last id */
	uint16_t seq;       /* counter part of the last id (12 bits) */
};

/* Build the id for time ms, counter seq (low 12 bits) and 8 random bytes. */
void mqim__uuid7_build(uint8_t out[16], uint64_t ms, uint16_t seq, const uint8_t rnd[8]);

/* Next id from g for the clock reading now_ms; rnd gives the random bits and
 * the counter's start within a new millisecond.  This function can't fail. */
void mqim__uuid7_next(struct mqim__uuid_gen *g, uint64_t now_ms, const uint8_t rnd[8],
		      uint8_t out[16]);

/* The time part of an id, in ms. */
uint64_t mqim__uuid7_ms(const uint8_t id[16]);

/* Fill buf with len bytes from the kernel's random source (getrandom). */
void mqim__random(void *buf, size_t len);

#endif
