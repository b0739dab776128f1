/* compare.c - `mqim-bench compare`: A, B and C side by side (make bench).
 *
 * Provisions the users, starts the three brokers, runs the first-login
 * storm once on each (broker C forgets verified passwords only at a
 * restart, so a first login happens once per user and broker), then R
 * interleaved rounds: A, B, C, A, B, C...; in each, every scenario on one
 * broker before the next broker.  Broker C also runs the storm with
 * app-server tokens (HS256, signed with a secret it is given at start)
 * right after its password storm, once per round: A and B have no tokens,
 * so those rows are C's alone.  `connections` uses a fresh broker of each
 * kind (memory must start from a clean heap) in the first few rounds only;
 * the `dedup` micro-benchmark runs once per round.  Prints the table of
 * medians (min-max) and the ratios C/A and C/B with the figures of issue 4,
 * and with --write replaces the "bench" section of docs/performance.md.
 *
 * Thread rules: single-threaded.  The figures live in one struct owned by
 * cmd_compare().
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "compare.h"

/* ---- options ------------------------------------------------------------- */

static void opts_defaults(struct cmp_opts *o, bool quick)
{
	memset(o, 0, sizeof(*o));
	o->rounds = quick ? 1 : 7;
	o->conn_rounds = quick ? 1 : 3;
	o->pairs = 10;
	o->n = quick ? 2000 : 10000;
	o->group_size = 50;
	o->group_n = quick ? 200 : 2000;
	o->window = 20;
	o->rate = 1000;
	o->base_s = quick ? 2 : 4;
	o->storm_s = quick ? 2 : 4;
	o->storm_k = quick ? 200 : 2000;
	o->first_max_s = quick ? 120 : 600;
	o->conn_lo = quick ? 200 : 2000;
	o->conn_hi = quick ? 1000 : 10000;
	o->dedup_ids = 1000000;
	o->client_n = quick ? 1000 : 3000;
	o->client_rounds = quick ? 1 : 3;
	o->build = "build";
	o->quick = quick;
}

static const struct option long_opts[] = {
	{ "rounds", required_argument, NULL, 'r' },
	{ "quick", no_argument, NULL, 'q' },
	{ "write", required_argument, NULL, 'w' },
	{ "build", required_argument, NULL, 'b' },
	{ "n", required_argument, NULL, 'n' },
	{ "pairs", required_argument, NULL, 'p' },
	{ "group-size", required_argument, NULL, 'S' },
	{ "group-n", required_argument, NULL, 'G' },
	{ "storm-k", required_argument, NULL, 'K' },
	{ "conn-rounds", required_argument, NULL, 'C' },
	{ "only", required_argument, NULL, 'o' },
	{ "strict", no_argument, NULL, 's' },
	{ "keep", no_argument, NULL, 'k' },
	{ "verbose", no_argument, NULL, 'v' },
	{ NULL, 0, NULL, 0 },
};

static bool parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v < lo || v > hi)
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_opts(int argc, char **argv, struct cmp_opts *o)
{
	bool quick = false;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--quick") || !strcmp(argv[i], "-q"))
			quick = true;
	opts_defaults(o, quick);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:qw:b:n:p:S:G:K:C:o:skv", long_opts, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'r': ok = parse_uint(optarg, 1, CMP_MAX_ROUNDS, &o->rounds); break;
		case 'q': break;
		case 'w': o->write = optarg; break;
		case 'b': o->build = optarg; break;
		case 'n': ok = parse_uint(optarg, 10, 10000000, &o->n); break;
		case 'p': ok = parse_uint(optarg, 1, BENCH_MAX_PAIRS, &o->pairs); break;
		case 'S': ok = parse_uint(optarg, 1, BENCH_MAX_GROUP, &o->group_size); break;
		case 'G': ok = parse_uint(optarg, 10, 10000000, &o->group_n); break;
		case 'K': ok = parse_uint(optarg, 1, BENCH_MAX_STORM, &o->storm_k); break;
		case 'C': ok = parse_uint(optarg, 0, CMP_MAX_ROUNDS, &o->conn_rounds); break;
		case 'o': o->only = optarg; break;
		case 's': o->strict = true; break;
		case 'k': o->keep = true; break;
		case 'v': set_verbose(true); break;
		default: return -1;
		}
		if (!ok) {
			fail("bad value for option -%c: %s", c, optarg);
			return -1;
		}
	}
	if (optind != argc) {
		fail("unexpected argument: %s", argv[optind]);
		return -1;
	}
	return 0;
}

/* ---- recording ------------------------------------------------------------- */

static void rec(struct cmp_data *d, enum broker_kind k, enum metric m, double v)
{
	if (d->n[k][m] < CMP_MAX_ROUNDS)
		d->v[k][m][d->n[k][m]++] = v;
}

static bool want(const struct cmp_opts *o, const char *scenario)
{
	return !o->only || strstr(o->only, scenario) != NULL;
}

static void count_losses(struct cmp_data *d, enum broker_kind k, const struct flow_result *r)
{
	d->lost[k] += r->lost;
	d->dup[k] += r->dup;
	d->runs[k]++;
	if (!r->complete)
		d->incomplete[k]++;
}

static struct flow_cfg flow_base(const struct cmp_opts *o, const struct broker *b, uint64_t nonce)
{
	struct flow_cfg c = { .port = b->port, .broker_pid = b->pid, .pairs = o->pairs, .group_size = o->group_size,
			      .n = o->n, .qos = 1, .window = o->window, .timeout_s = 300,
			      .nonce = nonce };
	return c;
}

/* Broker CPU per delivery (user, system) and generator/broker CPU. */
static void rec_cpu(struct cmp_data *d, enum broker_kind k, const struct flow_result *r,
		    enum metric user, enum metric sys, enum metric gen)
{
	if (r->broker_cpu_s <= 0 || !r->delivered)
		return;
	rec(d, k, user, r->broker_user_s * 1e9 / (double)r->delivered);
	rec(d, k, sys, r->broker_sys_s * 1e9 / (double)r->delivered);
	rec(d, k, gen, r->gen_cpu_s / r->broker_cpu_s);
}

static int run_pairs(struct cmp_data *d, const struct cmp_opts *o, const struct broker *b, uint8_t qos)
{
	static const enum metric rate_m[] = { M_Q0, M_Q1, M_Q2 };
	static const enum metric p99_m[] = { M_Q0_P99, M_Q1_P99, M_Q2_P99 };
	struct flow_cfg c = flow_base(o, b, rand64());
	struct flow_result r = { 0 };
	c.qos = qos;
	if (flows_run(&c, &r) != 0)
		return -1;
	rec(d, b->kind, rate_m[qos], r.rate);
	rec(d, b->kind, p99_m[qos], r.p99_us);
	if (qos == 1)
		rec_cpu(d, b->kind, &r, M_Q1_USER, M_Q1_SYS, M_Q1_GEN);
	count_losses(d, b->kind, &r);
	note("%s pairs QoS %u: %.0f msg/s, p50 %.0f us, p99 %.0f us, lost %llu, dup %llu",
	     broker_name(b->kind), qos, r.rate, r.p50_us, r.p99_us,
	     (unsigned long long)r.lost, (unsigned long long)r.dup);
	return 0;
}

static int run_group(struct cmp_data *d, const struct cmp_opts *o, const struct broker *b)
{
	struct flow_cfg c = flow_base(o, b, rand64());
	struct flow_result r = { 0 };
	c.group = true;
	c.n = o->group_n;
	if (flows_run(&c, &r) != 0)
		return -1;
	rec(d, b->kind, M_GROUP, r.rate);
	rec(d, b->kind, M_GROUP_P99, r.p99_us);
	rec_cpu(d, b->kind, &r, M_GROUP_USER, M_GROUP_SYS, M_GROUP_GEN);
	count_losses(d, b->kind, &r);
	note("%s group 1->%u: %.0f deliveries/s, p99 %.0f us, lost %llu", broker_name(b->kind),
	     o->group_size, r.rate, r.p99_us, (unsigned long long)r.lost);
	return 0;
}

/* latency at rest, then the reconnect storm, in one run */
static int run_storm(struct cmp_data *d, const struct cmp_opts *o, const struct broker *b,
		     const struct storm_cfg *sc, struct flow_result *r, struct storm_result *sr)
{
	struct flow_cfg c = flow_base(o, b, rand64());
	c.rate = o->rate;
	c.storm = sc;
	c.timeout_s = (unsigned)(sc->base_s + sc->max_s) + 120;
	memset(r, 0, sizeof(*r));
	r->storm = sr;
	if (flows_run(&c, r) != 0)
		return -1;
	count_losses(d, b->kind, r);
	note("%s storm of %u%s: base p99 %.0f us, storm p99 %.0f us, %.0f logins/s in %.1f s (%llu waves)",
	     broker_name(b->kind), sc->k, sc->jwt_secret ? " token logins" : "", r->base_p99_us,
	     r->storm_p99_us, sr->logins_per_s, sr->seconds, (unsigned long long)sr->waves_done);
	return 0;
}

static int run_latency_storm(struct cmp_data *d, const struct cmp_opts *o, const struct broker *b)
{
	struct storm_cfg sc = { .k = o->storm_k, .base_s = o->base_s, .storm_s = o->storm_s,
				.max_s = o->storm_s + 60 };
	struct flow_result r;
	struct storm_result sr = { 0 };
	if (run_storm(d, o, b, &sc, &r, &sr) != 0)
		return -1;
	rec(d, b->kind, M_LAT_P50, r.base_p50_us);
	rec(d, b->kind, M_LAT_P99, r.base_p99_us);
	rec(d, b->kind, M_LAT_P999, r.base_p999_us);
	rec(d, b->kind, M_STORM_P99, r.storm_p99_us);
	rec(d, b->kind, M_STORM_RATIO, r.base_p99_us > 0 ? r.storm_p99_us / r.base_p99_us : 0);
	rec(d, b->kind, M_STORM_LOGINS, sr.logins_per_s);
	if (!sr.complete)
		d->incomplete[b->kind]++;
	return 0;
}

/* The same storm with token logins, broker C only.  A token is verified
 * at every login, so there is no first-login run for it. */
static int run_token_storm(struct cmp_data *d, const struct cmp_opts *o, const struct broker *b,
			   const struct bench_env *env)
{
	struct storm_cfg sc = { .k = o->storm_k, .base_s = o->base_s, .storm_s = o->storm_s,
				.max_s = o->storm_s + 60, .jwt_secret = env->jwt_secret };
	struct flow_result r;
	struct storm_result sr = { 0 };
	if (run_storm(d, o, b, &sc, &r, &sr) != 0)
		return -1;
	rec(d, b->kind, M_TSTORM_P99, r.storm_p99_us);
	rec(d, b->kind, M_TSTORM_BASE, r.base_p99_us);
	rec(d, b->kind, M_TSTORM_RATIO, r.base_p99_us > 0 ? r.storm_p99_us / r.base_p99_us : 0);
	rec(d, b->kind, M_TSTORM_LOGINS, sr.logins_per_s);
	if (!sr.complete)
		d->incomplete[b->kind]++;
	return 0;
}

static bool want_tokens(const struct cmp_opts *o)
{
	return want(o, "storm") || want(o, "tokens");
}

static int run_first_logins(struct cmp_data *d, const struct cmp_opts *o, const struct broker *b)
{
	struct storm_cfg sc = { .k = o->storm_k, .base_s = o->base_s, .storm_s = 0.001,
				.max_s = o->first_max_s, .waves = 1 };
	struct flow_result r;
	struct first_login *f = &d->first[b->kind];
	if (run_storm(d, o, b, &sc, &r, &f->storm) != 0)
		return -1;
	f->base_p99_us = r.base_p99_us;
	f->storm_p50_us = r.storm_p50_us;
	f->storm_p99_us = r.storm_p99_us;
	f->storm_p999_us = r.storm_p999_us;
	f->done = true;
	return 0;
}

static int run_conns(struct cmp_data *d, const struct cmp_opts *o, const struct bench_env *env,
		     enum broker_kind k)
{
	struct broker b;
	unsigned steps[2] = { o->conn_lo, o->conn_hi };
	struct conns_result r;
	if (broker_start(&b, k, env, false) != 0)
		return -1;
	struct conns_cfg c = { .port = b.port, .broker_pid = b.pid, .steps = steps, .nsteps = 2,
			       .timeout_s = 300 };
	int rc = conns_run(&c, &r);
	broker_stop(&b);
	if (rc != 0)
		return -1;
	double slope = (double)(r.rss_kib[1] - r.rss_kib[0]) * 1024.0 / (steps[1] - steps[0]);
	rec(d, k, M_CONN_LO, r.bytes_per_conn[0]);
	rec(d, k, M_CONN_HI, r.bytes_per_conn[1]);
	rec(d, k, M_CONN_SLOPE, slope);
	note("%s connections: %.0f B/session at %u, %.0f B/session at %u, %.0f B marginal",
	     broker_name(k), r.bytes_per_conn[0], steps[0], r.bytes_per_conn[1], steps[1], slope);
	return 0;
}

/* One broker's share of a round. */
static int run_round(struct cmp_data *d, const struct cmp_opts *o, const struct bench_env *env,
		     const struct broker *b, unsigned round)
{
	int rc = 0;
	for (uint8_t q = 0; q <= 2 && rc == 0; q++) {
		char name[16];
		snprintf(name, sizeof(name), "q%u", q);
		if (want(o, "pairs") || want(o, name))
			rc = run_pairs(d, o, b, q);
	}
	if (rc == 0 && want(o, "group"))
		rc = run_group(d, o, b);
	if (rc == 0 && (want(o, "storm") || want(o, "latency")))
		rc = run_latency_storm(d, o, b);
	if (rc == 0 && b->kind == BROKER_C && want_tokens(o))
		rc = run_token_storm(d, o, b, env);
	if (rc == 0 && round < o->conn_rounds && want(o, "connections"))
		rc = run_conns(d, o, env, b->kind);
	return rc;
}

static int run_dedup(struct cmp_data *d, const struct cmp_opts *o)
{
	struct dedup_result r;
	if (dedup_bench(o->dedup_ids, &r) != 0)
		return -1;
	if (d->ndedup < CMP_MAX_ROUNDS)
		d->dedup[d->ndedup++] = r;
	return 0;
}

/* ---- the command ------------------------------------------------------------ */

static int start_all(struct broker *b, const struct bench_env *env)
{
	for (int k = 0; k < BROKER_KINDS; k++)
		if (broker_start(&b[k], (enum broker_kind)k, env, false) != 0)
			return -1;
	return 0;
}

static int run_all(struct cmp_data *d, const struct cmp_opts *o, const struct bench_env *env)
{
	struct broker b[BROKER_KINDS];
	memset(b, 0, sizeof(b));
	int rc = start_all(b, env);
	for (int k = 0; rc == 0 && k < BROKER_KINDS && want(o, "storm"); k++) {
		fprintf(stderr, "mqim-bench: first logins of %u users on broker %s...\n", o->storm_k,
			broker_name((enum broker_kind)k));
		rc = run_first_logins(d, o, &b[k]);
	}
	for (unsigned r = 0; rc == 0 && r < o->rounds; r++) {
		fprintf(stderr, "mqim-bench: round %u of %u\n", r + 1, o->rounds);
		for (int k = 0; rc == 0 && k < BROKER_KINDS; k++)
			rc = run_round(d, o, env, &b[k], r);
		if (rc == 0 && want(o, "dedup"))
			rc = run_dedup(d, o);
	}
	if (rc == 0 && want(o, "client")) {
		fprintf(stderr, "mqim-bench: libmqim against raw paho on broker C...\n");
		rc = client_bench(b[BROKER_C].port, env->work, o->client_n, o->client_rounds, &d->client);
		d->client_done = rc == 0;
	}
	for (int k = 0; k < BROKER_KINDS; k++)
		broker_stop(&b[k]);
	return rc;
}

int cmd_compare(int argc, char **argv)
{
	struct cmp_opts o;
	struct bench_env env;
	if (parse_opts(argc, argv, &o) != 0)
		return EXIT_USAGE;
	if (bench_env_init(&env, o.build) != 0)
		return EXIT_FAIL;
	raise_nofile((long)(o.conn_hi > o.storm_k ? o.conn_hi : o.storm_k) + 1024);
	struct provision_cfg pc = { o.pairs, o.group_size, o.storm_k, o.conn_hi, false };
	struct cmp_data *d = calloc(1, sizeof(*d));
	if (!d || provision(&env, &pc) != 0 || (want_tokens(&o) && provision_jwt(&env) != 0)) {
		free(d);
		return EXIT_FAIL;
	}
	d->started = time(NULL);
	int rc = run_all(d, &o, &env);
	d->finished = time(NULL);
	if (rc == 0)
		rc = cmp_report(d, &o, argc, argv);
	if (!o.keep)
		rm_tree(env.work);
	else
		fprintf(stderr, "mqim-bench: kept %s\n", env.work);
	free(d);
	return rc < 0 ? EXIT_FAIL : rc;
}
