/* icount.c - `mqim-bench icount` (make bench-icount): broker instructions
 * per delivered message, counted by valgrind --tool=callgrind.
 *
 * Only the broker process is counted: mosquitto itself runs under
 * valgrind, the generator does not.  Each workload runs twice on a fresh
 * broker, small and big, and the figure is (Ir_big - Ir_small) /
 * (deliveries_big - deliveries_small): start-up, logins, subscriptions and
 * shutdown cancel out, leaving the cost of the messages themselves.  Users
 * get cheap password hashes here (a default argon2id hash takes seconds
 * under valgrind; logins cancel out anyway).
 *
 * For broker C the same difference is taken per function from
 * callgrind_annotate, giving the plugin's cost per delivery: the inclusive
 * cost of its callbacks and the costliest functions of mqim_plugin.so and
 * msgpack-c.
 *
 * Thread rules: single-threaded.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "icount.h"

static const struct workload {
	const char *name;
	bool group;
	unsigned small, big;         /* messages per sender */
} workloads[] = {
	{ "pairs QoS 1 (10 pairs)", false, 1000, 5000 },
	{ "group QoS 1 (1 → 50)", true, 100, 500 },
};
#define NWORK (sizeof(workloads) / sizeof(workloads[0]))

/* Total Ir of a callgrind output ("summary:" or "totals:" line). */
static double total_ir(const char *path)
{
	char *text = slurp(path, NULL);
	double ir = -1;
	for (char *line = text; line && *line;) {
		if (!strncmp(line, "summary:", 8) || !strncmp(line, "totals:", 7)) {
			ir = strtod(strchr(line, ':') + 1, NULL);
			break;
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	free(text);
	return ir;
}

/* One run: fresh broker under callgrind, the workload, then stop. */
static int one_run(const struct bench_env *env, enum broker_kind k, const struct workload *w,
		   unsigned n, struct ic_run *out)
{
	struct broker b;
	struct flow_result r;
	memset(&r, 0, sizeof(r));
	if (broker_start(&b, k, env, true) != 0)
		return -1;
	struct flow_cfg c = { .port = b.port, .pairs = 10, .group_size = 50, .n = n, .qos = 1,
			      .window = 20, .timeout_s = 900, .nonce = rand64(),
			      .group = w->group };
	int rc = flows_run(&c, &r);
	broker_stop(&b);
	if (rc != 0 || !r.complete) {
		fail("icount: %s on %s did not complete", w->name, broker_name(k));
		return -1;
	}
	out->deliveries = (double)r.delivered;
	out->ir = total_ir(b.cg_out);
	snprintf(out->cg_out, sizeof(out->cg_out), "%s", b.cg_out);
	note("icount: %s %s n=%u: %.0f Ir, %.0f deliveries", broker_name(k), w->name, n, out->ir,
	     out->deliveries);
	return out->ir > 0 ? 0 : -1;
}

static int measure(const struct bench_env *env, struct ic_data *d)
{
	for (int k = 0; k < BROKER_KINDS; k++) {
		for (size_t i = 0; i < NWORK; i++) {
			const struct workload *w = &workloads[i];
			struct ic_cell *c = &d->cell[k][i];
			fprintf(stderr, "mqim-bench: callgrind: broker %s, %s\n",
				broker_name((enum broker_kind)k), w->name);
			if (one_run(env, (enum broker_kind)k, w, w->small, &c->small) != 0 ||
			    one_run(env, (enum broker_kind)k, w, w->big, &c->big) != 0)
				return -1;
			c->per_delivery = (c->big.ir - c->small.ir) /
					  (c->big.deliveries - c->small.deliveries);
		}
	}
	return 0;
}

int cmd_icount(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "write", required_argument, NULL, 'w' }, { "build", required_argument, NULL, 'b' },
		{ "keep", no_argument, NULL, 'k' },        { "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	const char *write = NULL, *build = "build";
	bool keep = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "w:b:kv", opts, NULL)) != -1) {
		if (c == 'w') write = optarg;
		else if (c == 'b') build = optarg;
		else if (c == 'k') keep = true;
		else if (c == 'v') set_verbose(true);
		else return EXIT_USAGE;
	}
	struct bench_env env;
	struct provision_cfg pc = { 10, 50, 0, 0, true };
	struct ic_data *d = calloc(1, sizeof(*d));
	if (!d || bench_env_init(&env, build) != 0 || provision(&env, &pc) != 0) {
		free(d);
		return EXIT_FAIL;
	}
	d->started = time(NULL);
	int rc = measure(&env, d);
	d->finished = time(NULL);
	if (rc == 0)
		rc = ic_report(d, workloads[0].name, workloads[1].name, write, argc, argv);
	if (!keep)
		rm_tree(env.work);
	free(d);
	return rc == 0 ? EXIT_OK : EXIT_FAIL;
}
