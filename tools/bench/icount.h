/* icount.h - the figures of `mqim-bench icount`, shared by icount.c (which
 * measures them) and icount_report.c (which prints them).
 *
 * Thread rules: plain data, owned by cmd_icount().
 */
#ifndef MQIM_BENCH_ICOUNT_H
#define MQIM_BENCH_ICOUNT_H

#include <time.h>

#include "bench.h"

struct ic_run {
	double ir, deliveries;
	char cg_out[400];            /* the callgrind output (kept until the end) */
};

struct ic_cell {
	struct ic_run small, big;
	double per_delivery;         /* (big - small) Ir / deliveries */
};

struct ic_data {
	struct ic_cell cell[BROKER_KINDS][2];
	time_t started, finished;
};

/* Print the table and the plugin's breakdown; with write, replace the
 * "icount" section of that file.  0 or -1. */
int ic_report(const struct ic_data *d, const char *work0, const char *work1, const char *write,
	      int argc, char **argv);

#endif
