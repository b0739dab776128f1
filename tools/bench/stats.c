/* stats.c - latency samples, quantiles and the median of rounds.
 *
 * Samples are kept whole (8 bytes each) and sorted once at the end: exact
 * quantiles, no histogram error, and at most a few million per run.
 * Quantiles use the nearest-rank method: the smallest sample with at least
 * q of all samples at or below it.
 *
 * Thread rules: no global state.
 */
#include <math.h>
#include <stdlib.h>

#include "bench.h"

int samples_add(struct samples *s, uint64_t x)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 4096;
		uint64_t *nv = realloc(s->v, ncap * sizeof(*nv));
		if (!nv)
			return -1;
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = x;
	s->sorted = false;
	return 0;
}

void samples_free(struct samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

uint64_t samples_quantile(struct samples *s, double q)
{
	if (!s->n)
		return 0;
	if (!s->sorted)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
	s->sorted = true;
	size_t rank = (size_t)ceil(q * (double)s->n);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct summary summarize(double *v, size_t n)
{
	struct summary s = { 0, 0, 0, n };
	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}
