/* dedup_bench.c - the `dedup` micro-benchmark of plugin/dedup.c.
 *
 * Links the plugin's own object (built without MQIM_UNIT_TEST, so its
 * memory comes from mosquitto_calloc/mosquitto_free): the shims below route
 * those to libc, as the broker does.  Measures, with the window full of
 * `ids` remembered ids (1,000,000 by default, the plugin's default
 * dedup_max): bytes allocated per id (mqim_dedup_bytes / count) and the
 * resident growth per id (VmRSS of this process, which counts only pages
 * really touched), inserts/s while filling, lookups/s of ids present (in a
 * random order, so the cache does not flatter it) and of new ids (each then
 * inserted with the oldest evicted).  Lookups/s in a window of half the size are given
 * beside the full figure: close rates are what O(1) looks like.
 *
 * The benchmark runs in a forked child, whose heap holds nothing else.
 *
 * Thread rules: single-threaded; no global state besides the shims.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mosquitto_broker.h>

#include "bench.h"
#include "dedup.h"

/* ---- what the broker gives a plugin, from libc ---------------------------- */

void *mosquitto_calloc(size_t nmemb, size_t size)
{
	return calloc(nmemb, size);
}

void *mosquitto_malloc(size_t size)
{
	return malloc(size);
}

void mosquitto_free(void *mem)
{
	free(mem);
}

/* ---- the benchmark ------------------------------------------------------------ */

#define WINDOW_MS (600u * 1000u)
#define SENDERS   1000u

static void make_id(uint8_t id[16], uint64_t *rng)
{
	uint64_t a = xs64(rng), b = xs64(rng);
	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
}

/* Lookups/s of ids present, in random order. */
static double hit_rate(struct mqim_dedup *d, const uint8_t (*ids)[16], unsigned n,
		       unsigned lookups, uint64_t *rng, unsigned *misses)
{
	uint64_t t0 = mono_ns();
	for (unsigned j = 0; j < lookups; j++) {
		unsigned i = (unsigned)(xs64(rng) % n);
		uint64_t bts = 0;
		if (!mqim_dedup_seen(d, i % SENDERS, ids[i], 1000, &bts))
			(*misses)++;
	}
	return lookups / ((double)(mono_ns() - t0) / 1e9);
}

static double fill(struct mqim_dedup *d, const uint8_t (*ids)[16], unsigned n)
{
	uint64_t t0 = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		uint64_t bts = 1000;
		mqim_dedup_seen(d, i % SENDERS, ids[i], 1000, &bts);
	}
	return n / ((double)(mono_ns() - t0) / 1e9);
}

/* Lookups/s of new ids: each is inserted, evicting the oldest. */
static double new_id_rate(struct mqim_dedup *d, unsigned lookups, uint64_t *rng, unsigned *misses)
{
	uint8_t fresh[16];
	uint64_t t0 = mono_ns();
	for (unsigned j = 0; j < lookups; j++) {
		uint64_t bts = 1000;
		make_id(fresh, rng);
		if (mqim_dedup_seen(d, j % SENDERS, fresh, 1000, &bts))
			(*misses)++; /* a random 128-bit id is never a duplicate */
	}
	return lookups / ((double)(mono_ns() - t0) / 1e9);
}

/* The full window, measured first, in a fresh heap, so that VmRSS grows
 * by what it really touches. */
static int full_window(const uint8_t (*ids)[16], unsigned n, unsigned lookups,
		       const uint64_t seed[2], uint64_t *rng, unsigned *misses,
		       struct dedup_result *res)
{
	long rss0 = broker_rss_kib_pid(getpid());
	struct mqim_dedup *d = mqim_dedup_new(n, WINDOW_MS, seed);
	if (!d)
		return -1;
	res->inserts_per_s = fill(d, ids, n);
	long rss1 = broker_rss_kib_pid(getpid());
	res->bytes_per_id = (double)mqim_dedup_bytes(d) / (double)mqim_dedup_count(d);
	res->rss_bytes_per_id = (double)(rss1 - rss0) * 1024.0 / n;
	res->hits_per_s = hit_rate(d, ids, n, lookups, rng, misses);
	res->misses_per_s = new_id_rate(d, lookups, rng, misses);
	mqim_dedup_free(d);
	return 0;
}

static int dedup_bench_here(unsigned n, struct dedup_result *res)
{
	uint64_t seed[2] = { rand64(), rand64() }, rng = rand64();
	unsigned lookups = n < 1000000 ? 1000000 : n, misses = 0, half = n / 2 ? n / 2 : 1;
	uint8_t (*ids)[16] = malloc((size_t)n * 16);
	if (!ids)
		return -1;
	for (unsigned i = 0; i < n; i++)
		make_id(ids[i], &rng);
	memset(res, 0, sizeof(*res));
	int rc = full_window((const uint8_t (*)[16])ids, n, lookups, seed, &rng, &misses, res);

	/* O(1): the same lookups in a window of half the size */
	struct mqim_dedup *d = rc == 0 ? mqim_dedup_new(half, WINDOW_MS, seed) : NULL;
	if (!d)
		rc = -1;
	if (d) {
		fill(d, (const uint8_t (*)[16])ids, half);
		res->hits_per_s_small = hit_rate(d, (const uint8_t (*)[16])ids, half, lookups, &rng, &misses);
		mqim_dedup_free(d);
	}
	free(ids);
	if (misses)
		fail("dedup: %u lookups gave the wrong answer", misses);
	return rc == 0 && !misses ? 0 : -1;
}

/* In a child process: a fresh heap, so that VmRSS shows the window's own
 * pages (a long-lived parent reuses memory it freed before). */
int dedup_bench(unsigned n, struct dedup_result *res)
{
	int fds[2], status = 0;
	if (pipe(fds) != 0)
		return dedup_bench_here(n, res);
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return dedup_bench_here(n, res);
	}
	if (pid == 0) {
		close(fds[0]);
		int rc = dedup_bench_here(n, res);
		bool ok = rc == 0 && write(fds[1], res, sizeof(*res)) == (ssize_t)sizeof(*res);
		_exit(ok ? 0 : 1);
	}
	close(fds[1]);
	ssize_t got = read(fds[0], res, sizeof(*res));
	close(fds[0]);
	waitpid(pid, &status, 0);
	return got == (ssize_t)sizeof(*res) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}
