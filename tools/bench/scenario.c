/* scenario.c - one scenario on one broker: `mqim-bench pairs|group|latency|
 * storm|connections|dedup [options]`.
 *
 * By default the scenario starts its own broker (--broker A, B or C, with
 * users provisioned in a temporary folder); with --port it runs against a
 * broker already listening on 127.0.0.1 whose users follow provision.c's
 * names and password (and, for `storm --tokens`, its HS256 secret from
 * --jwt-secret-file).  Results are printed as one line of key=value pairs
 * after a readable summary, so scripts can pick them up.
 *
 * Thread rules: single-threaded.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct sc_opts {
	const char *name, *build;
	enum broker_kind kind;
	int port;
	pid_t pid;
	struct flow_cfg flow;
	struct storm_cfg storm;
	unsigned conn_steps[4];
	size_t nconn_steps;
	unsigned dedup_ids;
	bool callgrind;
	bool tokens;                 /* storm: log in with app-server tokens */
	const char *secret_file;     /* with --port: the broker's HS256 secret */
	char *secret;                /* read from secret_file (free()) */
};

static const struct option long_opts[] = {
	{ "broker", required_argument, NULL, 'B' }, { "port", required_argument, NULL, 'P' },
	{ "pid", required_argument, NULL, 'I' },    { "build", required_argument, NULL, 'b' },
	{ "qos", required_argument, NULL, 'Q' },    { "pairs", required_argument, NULL, 'p' },
	{ "n", required_argument, NULL, 'n' },      { "window", required_argument, NULL, 'W' },
	{ "group-size", required_argument, NULL, 'S' }, { "rate", required_argument, NULL, 'R' },
	{ "duration", required_argument, NULL, 'D' }, { "storm-k", required_argument, NULL, 'K' },
	{ "storm-s", required_argument, NULL, 'T' }, { "first", no_argument, NULL, 'F' },
	{ "conns", required_argument, NULL, 'C' },  { "ids", required_argument, NULL, 'i' },
	{ "client-suffix", required_argument, NULL, 'X' },
	{ "tokens", no_argument, NULL, 't' },
	{ "jwt-secret-file", required_argument, NULL, 'J' },
	{ "callgrind", no_argument, NULL, 'G' },
	{ "verbose", no_argument, NULL, 'v' },      { NULL, 0, NULL, 0 },
};

static bool parse_steps(const char *s, struct sc_opts *o)
{
	char buf[128];
	char *save = NULL;
	snprintf(buf, sizeof(buf), "%s", s);
	o->nconn_steps = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		double v;
		if (o->nconn_steps == 4 || !parse_num(t, 1, BENCH_MAX_CONNS, &v) ||
		    (o->nconn_steps && v <= o->conn_steps[o->nconn_steps - 1]))
			return false;
		o->conn_steps[o->nconn_steps++] = (unsigned)v;
	}
	return o->nconn_steps > 0;
}

static void defaults(struct sc_opts *o, const char *name)
{
	memset(o, 0, sizeof(*o));
	o->name = name;
	o->build = "build";
	o->kind = BROKER_C;
	o->flow = (struct flow_cfg){ .pairs = 10, .group_size = 50, .n = 20000, .qos = 1,
				     .window = 20, .timeout_s = 600 };
	o->storm = (struct storm_cfg){ .k = 2000, .base_s = 5, .storm_s = 5, .max_s = 120 };
	o->conn_steps[0] = 2000;
	o->conn_steps[1] = 10000;
	o->nconn_steps = 2;
	o->dedup_ids = 1000000;
	if (!strcmp(name, "group"))
		o->flow.n = 2000;
	if (!strcmp(name, "latency") || !strcmp(name, "storm")) {
		o->flow.rate = 1000;
		o->flow.duration_s = 10;
	}
}

static bool apply(struct sc_opts *o, int c, const char *arg)
{
	double v = 0;
	switch (c) {
	case 'B':
		o->kind = !strcmp(arg, "A") ? BROKER_A : !strcmp(arg, "B") ? BROKER_B
			  : !strcmp(arg, "C") ? BROKER_C : BROKER_KINDS;
		return o->kind != BROKER_KINDS;
	case 'P': if (!parse_num(arg, 1, 65535, &v)) return false; o->port = (int)v; return true;
	case 'I': if (!parse_num(arg, 1, 1e9, &v)) return false; o->pid = (pid_t)v; return true;
	case 'b': o->build = arg; return true;
	case 'Q': if (!parse_num(arg, 0, 2, &v)) return false; o->flow.qos = (uint8_t)v; return true;
	case 'p': if (!parse_num(arg, 1, BENCH_MAX_PAIRS, &v)) return false; o->flow.pairs = (unsigned)v; return true;
	case 'n': if (!parse_num(arg, 1, 1e8, &v)) return false; o->flow.n = (unsigned)v; return true;
	case 'W': if (!parse_num(arg, 1, 65535, &v)) return false; o->flow.window = (unsigned)v; return true;
	case 'S': if (!parse_num(arg, 1, BENCH_MAX_GROUP, &v)) return false; o->flow.group_size = (unsigned)v; return true;
	case 'R': return parse_num(arg, 1, 1e7, &o->flow.rate);
	case 'D': return parse_num(arg, 0.1, 86400, &o->flow.duration_s);
	case 'K': if (!parse_num(arg, 1, BENCH_MAX_STORM, &v)) return false; o->storm.k = (unsigned)v; return true;
	case 'T': return parse_num(arg, 0.001, 86400, &o->storm.storm_s);
	case 'F': o->storm.waves = 1; o->storm.storm_s = 0.001; o->storm.max_s = 900; return true;
	case 'C': return parse_steps(arg, o);
	case 'i': if (!parse_num(arg, 1, 1e8, &v)) return false; o->dedup_ids = (unsigned)v; return true;
	case 'X': o->flow.client_suffix = arg; return true;
	case 'G': o->callgrind = true; return true;
	case 't': o->tokens = true; return true;
	case 'J': o->secret_file = arg; return true;
	case 'v': set_verbose(true); return true;
	default: return false;
	}
}

static void print_flow(const struct sc_opts *o, const struct flow_result *r)
{
	printf("%s: %.0f deliveries/s over %.2f s; latency p50 %.0f us, p99 %.0f us, p999 %.0f us, "
	       "max %.0f us; sent %llu, delivered %llu of %llu, lost %llu, duplicated %llu, refused %llu\n",
	       o->name, r->rate, r->seconds, r->p50_us, r->p99_us, r->p999_us, r->max_us,
	       (unsigned long long)r->sent, (unsigned long long)r->delivered,
	       (unsigned long long)r->expected, (unsigned long long)r->lost,
	       (unsigned long long)r->dup, (unsigned long long)r->refused);
	printf("cpu: generator %.2f s, broker %.2f s (over %.2f s)\n", r->gen_cpu_s, r->broker_cpu_s,
	       r->seconds);
	printf("result scenario=%s rate=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f lost=%llu dup=%llu "
	       "complete=%d\n", o->name, r->rate, r->p50_us, r->p99_us, r->p999_us,
	       (unsigned long long)r->lost, (unsigned long long)r->dup, r->complete);
}

static void print_storm(const struct sc_opts *o, const struct flow_result *r,
			const struct storm_result *s)
{
	const char *login = o->storm.jwt_secret ? "token" : "password";
	printf("storm: %llu %s logins in %.2f s (%.0f/s, %llu waves%s), %llu closed before CONNACK, "
	       "%llu refused; login p50 %.0f ms, p99 %.0f ms\n",
	       (unsigned long long)s->logins, login, s->seconds, s->logins_per_s,
	       (unsigned long long)s->waves_done, s->complete ? "" : ", incomplete",
	       (unsigned long long)s->closed_early, (unsigned long long)s->refused,
	       s->login_p50_ms, s->login_p99_ms);
	printf("chat latency at rest p50/p99/p999 %.0f/%.0f/%.0f us (%llu msgs); during the storm "
	       "%.0f/%.0f/%.0f us (%llu msgs)\n", r->base_p50_us, r->base_p99_us, r->base_p999_us,
	       (unsigned long long)r->base_n, r->storm_p50_us, r->storm_p99_us, r->storm_p999_us,
	       (unsigned long long)r->storm_n);
	printf("result scenario=storm login=%s logins_per_s=%.1f base_p99_us=%.1f storm_p99_us=%.1f ratio=%.2f\n",
	       login, s->logins_per_s, r->base_p99_us, r->storm_p99_us,
	       r->base_p99_us > 0 ? r->storm_p99_us / r->base_p99_us : 0);
}

static int run_flows(struct sc_opts *o)
{
	struct flow_result r;
	struct storm_result sr;
	memset(&r, 0, sizeof(r));
	memset(&sr, 0, sizeof(sr));
	o->flow.port = o->port;
	o->flow.broker_pid = o->pid;
	o->flow.nonce = rand64();
	o->flow.group = !strcmp(o->name, "group");
	if (!strcmp(o->name, "storm")) {
		o->storm.base_s = o->flow.duration_s / 2;
		o->flow.storm = &o->storm;
		o->flow.timeout_s = (unsigned)(o->storm.base_s + o->storm.max_s) + 120;
		r.storm = &sr;
	}
	if (flows_run(&o->flow, &r) != 0)
		return EXIT_FAIL;
	print_flow(o, &r);
	if (o->flow.storm)
		print_storm(o, &r, &sr);
	return r.complete ? EXIT_OK : EXIT_FAIL;
}

static int run_conns_sc(struct sc_opts *o)
{
	struct conns_result r;
	struct conns_cfg c = { .port = o->port, .broker_pid = o->pid, .steps = o->conn_steps,
			       .nsteps = o->nconn_steps, .timeout_s = 600 };
	if (!o->pid)
		fail("connections: no broker pid (--pid): memory cannot be read");
	raise_nofile((long)o->conn_steps[o->nconn_steps - 1] + 1024);
	int rc = conns_run(&c, &r);
	printf("connections: VmRSS %ld KiB idle", r.rss0_kib);
	for (size_t k = 0; k < o->nconn_steps; k++)
		printf("; %u sessions: %ld KiB, %.0f bytes/session", r.reached[k], r.rss_kib[k],
		       r.bytes_per_conn[k]);
	printf("\n");
	return rc == 0 ? EXIT_OK : EXIT_FAIL;
}

static int run_dedup_sc(const struct sc_opts *o)
{
	struct dedup_result r;
	if (dedup_bench(o->dedup_ids, &r) != 0)
		return EXIT_FAIL;
	printf("dedup: %u ids: %.1f bytes/id allocated, %.1f bytes/id resident; inserts %.2f M/s, "
	       "lookups %.2f M/s vs %.2f M/s with half the ids, new ids %.2f M/s\n", o->dedup_ids,
	       r.bytes_per_id, r.rss_bytes_per_id, r.inserts_per_s / 1e6, r.hits_per_s / 1e6,
	       r.hits_per_s_small / 1e6, r.misses_per_s / 1e6);
	return EXIT_OK;
}

/* --port with --tokens: the secret the broker was given, as the plugin
 * reads it (trailing newlines are not key).  0 or -1. */
static int read_secret(struct sc_opts *o)
{
	size_t len = 0;
	if (!o->secret_file) {
		fail("storm --tokens --port: the broker's secret is needed (--jwt-secret-file)");
		return -1;
	}
	if (!(o->secret = slurp(o->secret_file, &len))) {
		fail("cannot read %s", o->secret_file);
		return -1;
	}
	while (len && (o->secret[len - 1] == '\n' || o->secret[len - 1] == '\r'))
		o->secret[--len] = '\0';
	o->storm.jwt_secret = o->secret;
	return len ? 0 : -1;
}

/* Start our own broker with users provisioned for this scenario (and,
 * for a token storm, broker C's HS256 secret). */
static int own_broker(struct sc_opts *o, struct bench_env *env, struct broker *b)
{
	bool conns = !strcmp(o->name, "connections");
	struct provision_cfg pc = { o->flow.pairs, o->flow.group_size,
				    !strcmp(o->name, "storm") ? o->storm.k : 0,
				    conns ? o->conn_steps[o->nconn_steps - 1] : 0, o->callgrind };
	if (bench_env_init(env, o->build) != 0 || provision(env, &pc) != 0 ||
	    (o->tokens && provision_jwt(env) != 0))
		return -1;
	if (o->tokens)
		o->storm.jwt_secret = env->jwt_secret;
	raise_nofile((long)(pc.conns > pc.storm_k ? pc.conns : pc.storm_k) + 1024);
	if (broker_start(b, o->kind, env, o->callgrind) != 0)
		return -1;
	o->port = b->port;
	o->pid = b->pid;
	return 0;
}

int cmd_scenario(const char *name, int argc, char **argv)
{
	struct sc_opts o;
	struct bench_env env;
	struct broker b;
	int c, rc;
	defaults(&o, name);
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		if (!apply(&o, c, optarg)) {
			fail("%s: bad option or value (see mqim-bench --help)", name);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		fail("%s: unexpected argument %s", name, argv[optind]);
		return EXIT_USAGE;
	}
	if (o.tokens && (strcmp(name, "storm") || o.kind != BROKER_C)) {
		fail("%s: --tokens is for the storm on broker C (A and B have no tokens)", name);
		return EXIT_USAGE;
	}
	if (!strcmp(name, "dedup"))
		return run_dedup_sc(&o);
	memset(&env, 0, sizeof(env));
	memset(&b, 0, sizeof(b));
	if ((o.port && o.tokens && read_secret(&o) != 0) ||
	    (!o.port && own_broker(&o, &env, &b) != 0)) {
		rc = EXIT_FAIL;
		goto out;
	}
	rc = !strcmp(name, "connections") ? run_conns_sc(&o) : run_flows(&o);
out:
	if (b.pid)
		broker_stop(&b);
	if (o.callgrind && b.cg_out[0])
		printf("callgrind output (kept): %s\n", b.cg_out);
	else if (env.work[0])
		rm_tree(env.work);
	free(o.secret);
	return rc;
}
