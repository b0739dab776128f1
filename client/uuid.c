/* uuid.c - UUIDv7 ids and the hex form of message ids; see uuid.h. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "mqim.h"
#include "uuid.h"

void mqim__uuid7_build(uint8_t out[16], uint64_t ms, uint16_t seq, const uint8_t rnd[8])
{
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | ((seq >> 8) & 0x0f));
	out[7] = (uint8_t)(seq & 0xff);
	memcpy(out + 8, rnd, 8);
	out[8] = (uint8_t)(0x80 | (out[8] & 0x3f));
}

void mqim__uuid7_next(struct mqim__uuid_gen *g, uint64_t now_ms, const uint8_t rnd[8],
		      uint8_t out[16])
{
	now_ms &= 0xffffffffffffULL;
	if (now_ms > g->last_ms) {
		g->last_ms = now_ms;
		/* Start low in the counter range so that many ids fit in one ms. */
		g->seq = (uint16_t)(rnd[0] & 0x1ff);
	} else if (g->seq < 0xfff) {
		g->seq++;
	} else {
		/* Counter exhausted (or the clock stepped back long ago and we are
		 * still ahead of it): borrow the next millisecond. */
		g->last_ms++;
		g->seq = 0;
	}
	mqim__uuid7_build(out, g->last_ms, g->seq, rnd);
}

uint64_t mqim__uuid7_ms(const uint8_t id[16])
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = (ms << 8) | id[i];
	return ms;
}

void mqim__random(void *buf, size_t len)
{
	unsigned char *p = buf;
	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* No getrandom: fall back to a weak but non-failing source. */
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uintptr_t)p;
			for (size_t i = 0; i < len; i++) {
				x ^= x << 13; x ^= x >> 7; x ^= x << 17;
				p[i] = (unsigned char)x;
			}
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

MQIM_EXPORT char *mqim_id_to_hex(const uint8_t id[MQIM_ID_LEN], char out[MQIM_ID_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < MQIM_ID_LEN; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[MQIM_ID_HEX_LEN] = '\0';
	return out;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

MQIM_EXPORT int mqim_id_from_hex(const char *text, uint8_t id[MQIM_ID_LEN])
{
	uint8_t tmp[MQIM_ID_LEN];
	int n = 0;
	bool dashed = text && strlen(text) == 36;

	if (!text || !id)
		return MQIM_EINVAL;
	for (size_t i = 0; text[i]; i++) {
		if (text[i] == '-' && dashed && (i == 8 || i == 13 || i == 18 || i == 23))
			continue;
		int v = hexval(text[i]);
		if (v < 0 || n >= 2 * MQIM_ID_LEN)
			return MQIM_EINVAL;
		if (n % 2 == 0)
			tmp[n / 2] = (uint8_t)(v << 4);
		else
			tmp[n / 2] |= (uint8_t)v;
		n++;
	}
	if (n != 2 * MQIM_ID_LEN)
		return MQIM_EINVAL;
	memcpy(id, tmp, sizeof tmp);
	return MQIM_OK;
}
