/* dedup.h - the broker's de-duplication window of (sender, message id).
 *
 * A bounded set of recently accepted (sender index, 16-byte id) pairs, each
 * with the broker time (bts) it was stamped with.  Entries leave in arrival
 * order: when older than the window, or when the set is full (the oldest is
 * evicted first).  Lookups and inserts are O(1): an insertion-ordered ring of
 * 32-byte entries plus an open-addressing index of 8-byte slots (ring
 * position, hash) at load factor <= 1/2, so about 48 bytes per remembered
 * id, allocated once.
 *
 * The index hash is keyed with a random per-run seed so that senders cannot
 * choose ids that collide.  Keys compare exactly: no false duplicates.
 * Pure code (no broker header): unit-tested and benchmarked on its own.
 * Not thread-safe: one owner (the broker thread).
 */
#ifndef MQIM_DEDUP_H
#define MQIM_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mqim_dedup;

/* A set for at most max_entries ids (>= 1) kept window_ms milliseconds.
 * seed keys the index hash.  Returns NULL when out of memory. */
struct mqim_dedup *mqim_dedup_new(uint32_t max_entries, uint64_t window_ms,
				  const uint64_t seed[2]);
void mqim_dedup_free(struct mqim_dedup *d);

/* Look (sender, id) up at time now_ms.  If it is in the window, returns true
 * and sets *bts to the time it was first stamped with.  Otherwise inserts it
 * with *bts as its time (evicting the oldest if full) and returns false.
 * Expired entries are dropped first, so the cost stays O(1) amortised. */
bool mqim_dedup_seen(struct mqim_dedup *d, uint32_t sender, const uint8_t id[16],
		     uint64_t now_ms, uint64_t *bts);

/* The same, in two steps: mqim_dedup_prefetch() computes the key's hash
 * and asks the CPU for the memory the lookup (and, the set being full, the
 * eviction) will touch, so that a caller that knows the key early pays no
 * cache miss later; mqim_dedup_seen_h() is mqim_dedup_seen() with that
 * hash (the set may have changed in between). */
uint32_t mqim_dedup_prefetch(const struct mqim_dedup *d, uint32_t sender, const uint8_t id[16]);
bool mqim_dedup_seen_h(struct mqim_dedup *d, uint32_t hash, uint32_t sender,
		       const uint8_t id[16], uint64_t now_ms, uint64_t *bts);

/* Drop entries older than the window at now_ms, at most max_work of them. */
void mqim_dedup_expire(struct mqim_dedup *d, uint64_t now_ms, uint32_t max_work);

/* Every entry, oldest first, as records of MQIM_DEDUP_REC bytes: the
 * 16-byte id, bts (u64), sender (u32), then 4 bytes of no meaning, in host
 * byte order.  cb gets them in at most two runs of n records (its bytes are
 * the set's own memory: one write each saves a million ids), and its
 * non-zero return stops the walk and is returned.  The set must not change
 * during the walk. */
#define MQIM_DEDUP_REC 32
int mqim_dedup_dump(const struct mqim_dedup *d,
		    int (*cb)(void *ctx, const void *recs, size_t n), void *ctx);

/* Entries held now, and bytes allocated in all. */
size_t mqim_dedup_count(const struct mqim_dedup *d);
size_t mqim_dedup_bytes(const struct mqim_dedup *d);

#endif
