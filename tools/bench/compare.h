/* compare.h - the figures of `mqim-bench compare`, shared by compare.c
 * (which measures them) and compare_report.c (which prints them).
 *
 * Thread rules: plain data, owned by cmd_compare().
 */
#ifndef MQIM_BENCH_COMPARE_H
#define MQIM_BENCH_COMPARE_H

#include <time.h>

#include "bench.h"

#define CMP_MAX_ROUNDS 64

struct cmp_opts {
	unsigned rounds, conn_rounds;
	unsigned pairs, n, group_size, group_n, window;
	unsigned storm_k, conn_lo, conn_hi, dedup_ids, client_n, client_rounds;
	double rate, base_s, storm_s, first_max_s;
	const char *build, *write, *only;
	bool quick, strict, keep;
};

/* One value per round and broker for each of these. */
enum metric {
	M_Q0, M_Q1, M_Q2, M_GROUP,                  /* deliveries/s */
	M_Q0_P99, M_Q1_P99, M_Q2_P99, M_GROUP_P99,  /* latency under load, us */
	M_LAT_P50, M_LAT_P99, M_LAT_P999,           /* latency at rest, us */
	M_STORM_P99, M_STORM_RATIO, M_STORM_LOGINS, /* reconnect storm */
	M_TSTORM_P99, M_TSTORM_BASE, M_TSTORM_RATIO, M_TSTORM_LOGINS, /* token storm, C only */
	M_CONN_LO, M_CONN_HI, M_CONN_SLOPE,         /* broker bytes per session */
	M_Q1_USER, M_Q1_SYS, M_GROUP_USER, M_GROUP_SYS, /* broker CPU ns per delivery */
	M_Q1_GEN, M_GROUP_GEN,                      /* generator CPU / broker CPU */
	M_COUNT
};

/* The first-login storm, once per broker. */
struct first_login {
	struct storm_result storm;
	double base_p99_us, storm_p50_us, storm_p99_us, storm_p999_us;
	bool done;
};

struct cmp_data {
	double v[BROKER_KINDS][M_COUNT][CMP_MAX_ROUNDS];
	size_t n[BROKER_KINDS][M_COUNT];
	uint64_t lost[BROKER_KINDS], dup[BROKER_KINDS];
	unsigned runs[BROKER_KINDS], incomplete[BROKER_KINDS];
	struct first_login first[BROKER_KINDS];
	struct dedup_result dedup[CMP_MAX_ROUNDS];
	size_t ndedup;
	struct client_result client;
	bool client_done;
	time_t started, finished;
};

/* Print the report on stdout and, with o->write, into that file's "bench"
 * section.  Returns 0, EXIT_MISSED (with --strict, when a figure of issue
 * 4 is missed), or -1 when the file could not be written. */
int cmp_report(struct cmp_data *d, const struct cmp_opts *o, int argc, char **argv);

#endif
