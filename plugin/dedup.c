/* dedup.c - the de-duplication window; see dedup.h for the contract.
 *
 * Layout: `ring` holds the entries in arrival order (head = oldest), so both
 * expiry and eviction take from the head.  `index` is a linear-probing table
 * of (ring position + 1, hash) pairs (position 0 = empty) with at least
 * twice as many slots as the ring, so probes stay short; deletions use
 * backward shifting, so no tombstones ever accumulate.  A lookup reads the
 * ring only for a slot whose hash is the key's: one cold cache line per new
 * id (the slot, prefetched), not one more per entry its probe passes.
 */
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"
#include "dedup.h"

/* Also the record of mqim_dedup_dump(), whose last 4 bytes (hash) mean
 * nothing outside this run. */
struct entry {
	uint8_t id[16];
	uint64_t bts;
	uint32_t sender;
	uint32_t hash;          /* index hash, kept to avoid recomputing it */
};
_Static_assert(sizeof(struct entry) == MQIM_DEDUP_REC && offsetof(struct entry, bts) == 16 &&
	       offsetof(struct entry, sender) == 24, "the record of mqim_dedup_dump()");

/* An index slot holds its entry's hash too, so that a probe passes other
 * entries, and a deletion shifts them, without reading the ring: on a
 * 1,000,000-id window each ring entry read is a cache miss of its own. */
struct slot {
	uint32_t at;            /* the entry's ring position + 1; 0: empty */
	uint32_t hash;          /* the entry's index hash */
};

struct mqim_dedup {
	struct entry *ring;
	uint32_t cap, head, count;
	struct slot *index;     /* in index_mem, 2 MiB-aligned when that large */
	void *index_mem;
	size_t index_bytes;     /* allocated for index_mem */
	uint32_t mask;          /* index slots - 1 */
	uint64_t window_ms;
	uint64_t seed[2];
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static uint32_t key_hash(const struct mqim_dedup *d, uint32_t sender, const uint8_t id[16])
{
	uint64_t lo, hi;
	memcpy(&lo, id, 8);
	memcpy(&hi, id + 8, 8);
	uint64_t h = mix64(lo ^ d->seed[0]);
	/* the sender needs no mixing of its own: a client chooses its ids but
	 * not its index, and without the seed cannot aim at another's */
	h = mix64(h ^ hi ^ d->seed[1]) ^ (uint64_t)sender * 0x9e3779b97f4a7c15ULL;
	return (uint32_t)h;
}

#define HUGE_PAGE ((size_t)2 << 20)

/* The index: zeroed, and when it is a whole number of huge pages (every
 * size from 2 MiB up, slots being a power of two), aligned to them,
 * backed by them where the kernel agrees (madvise: a hint) and made
 * resident now.  Each lookup lands on a random slot (and an eviction on
 * another): with 4 KiB pages nearly every one would also miss the TLB
 * (perf: the lookup's share of the broker's CPU fell from 2.4 to 1.0-1.3 %
 * with this and the prefetch).  Resident at start, a few huge pages,
 * rather than 2 MiB at a time under the first messages (random slots soon
 * touch every page anyway): the broker's memory stays flat.  The ring is
 * walked in order and keeps small pages: it grows 4 KiB at a time. */
static bool index_alloc(struct mqim_dedup *d, uint32_t slots)
{
	size_t n = (size_t)slots * sizeof(*d->index), pad = n >= HUGE_PAGE ? HUGE_PAGE : 0;
	d->index_mem = mqim__calloc(1, n + pad);
	if (!d->index_mem)
		return false;
	d->index_bytes = n + pad;
	d->index = d->index_mem;
	if (pad) {
		uintptr_t a = ((uintptr_t)d->index_mem + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
		d->index = (struct slot *)a;
		(void)madvise(d->index, n, MADV_HUGEPAGE);
		memset(d->index, 0, n);
	}
	return true;
}

struct mqim_dedup *mqim_dedup_new(uint32_t max_entries, uint64_t window_ms,
				  const uint64_t seed[2])
{
	if (max_entries == 0 || max_entries > (1u << 30))
		return NULL;
	struct mqim_dedup *d = mqim__calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	uint32_t slots = 16;
	while (slots < 2 * max_entries)
		slots <<= 1;
	d->ring = mqim__calloc(max_entries, sizeof(*d->ring));
	if (!d->ring || !index_alloc(d, slots)) {
		mqim_dedup_free(d);
		return NULL;
	}
	d->cap = max_entries;
	d->mask = slots - 1;
	d->window_ms = window_ms;
	d->seed[0] = seed[0];
	d->seed[1] = seed[1];
	return d;
}

void mqim_dedup_free(struct mqim_dedup *d)
{
	if (!d)
		return;
	mqim__free(d->ring);
	mqim__free(d->index_mem);
	mqim__free(d);
}

/* True when k lies cyclically in (i, j]. */
static bool between(uint32_t i, uint32_t k, uint32_t j)
{
	return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

/* Empty index slot pos and shift later members of its cluster back. */
static void index_delete(struct mqim_dedup *d, uint32_t pos)
{
	uint32_t i = pos, j = pos;
	for (;;) {
		j = (j + 1) & d->mask;
		struct slot s = d->index[j];
		if (s.at == 0)
			break;
		uint32_t k = s.hash & d->mask;
		if (between(i, k, j))
			continue;       /* j's entry may stay where it is */
		d->index[i] = s;
		i = j;
	}
	d->index[i].at = 0;
}

static void evict_oldest(struct mqim_dedup *d)
{
	const struct entry *e = &d->ring[d->head];
	uint32_t pos = e->hash & d->mask;
	while (d->index[pos].at != d->head + 1)
		pos = (pos + 1) & d->mask;
	index_delete(d, pos);
	d->head = d->head + 1 == d->cap ? 0 : d->head + 1;
	d->count--;
}

void mqim_dedup_expire(struct mqim_dedup *d, uint64_t now_ms, uint32_t max_work)
{
	while (d->count && max_work--) {
		uint64_t bts = d->ring[d->head].bts;
		if (now_ms < bts || now_ms - bts <= d->window_ms)
			break;
		evict_oldest(d);
	}
}

uint32_t mqim_dedup_prefetch(const struct mqim_dedup *d, uint32_t sender, const uint8_t id[16])
{
	uint32_t h = key_hash(d, sender, id);
	__builtin_prefetch(&d->index[h & d->mask]);
	if (d->count == d->cap) /* the oldest goes: its slot and the new tail */
		__builtin_prefetch(&d->index[d->ring[d->head].hash & d->mask]);
	return h;
}

bool mqim_dedup_seen(struct mqim_dedup *d, uint32_t sender, const uint8_t id[16],
		     uint64_t now_ms, uint64_t *bts)
{
	return mqim_dedup_seen_h(d, key_hash(d, sender, id), sender, id, now_ms, bts);
}

bool mqim_dedup_seen_h(struct mqim_dedup *d, uint32_t h, uint32_t sender, const uint8_t id[16],
		       uint64_t now_ms, uint64_t *bts)
{
	mqim_dedup_expire(d, now_ms, 8);

	uint32_t pos = h & d->mask;
	for (uint32_t at; (at = d->index[pos].at) != 0; pos = (pos + 1) & d->mask) {
		if (d->index[pos].hash != h)
			continue;
		const struct entry *e = &d->ring[at - 1];
		if (e->sender == sender && !memcmp(e->id, id, 16)) {
			*bts = e->bts;
			return true;
		}
	}

	if (d->count == d->cap) {
		evict_oldest(d);
		/* the eviction may have shifted our cluster: find a free slot again */
		pos = h & d->mask;
		while (d->index[pos].at)
			pos = (pos + 1) & d->mask;
	}
	uint32_t slot = d->head + d->count;
	if (slot >= d->cap)
		slot -= d->cap;
	struct entry *e = &d->ring[slot];
	memcpy(e->id, id, 16);
	e->bts = *bts;
	e->sender = sender;
	e->hash = h;
	d->index[pos].at = slot + 1;
	d->index[pos].hash = h;
	d->count++;
	return false;
}

int mqim_dedup_dump(const struct mqim_dedup *d,
		    int (*cb)(void *ctx, const void *recs, size_t n), void *ctx)
{
	uint32_t first = d->cap - d->head < d->count ? d->cap - d->head : d->count;
	int rc = first ? cb(ctx, d->ring + d->head, first) : 0;
	if (!rc && d->count > first)
		rc = cb(ctx, d->ring, d->count - first);
	return rc;
}

size_t mqim_dedup_count(const struct mqim_dedup *d)
{
	return d->count;
}

size_t mqim_dedup_bytes(const struct mqim_dedup *d)
{
	return sizeof(*d) + (size_t)d->cap * sizeof(*d->ring) + d->index_bytes;
}
