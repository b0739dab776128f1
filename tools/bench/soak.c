/* soak.c - `mqim-bench soak` (make soak): broker C under a steady, bounded
 * load for a long time; is its memory flat once the de-duplication window
 * is full?
 *
 * Starts broker C (the mqim plugin, users provisioned as for the pairs),
 * by default with the plugin's default window (600 s, at most 1,000,000
 * ids; --window and --dedup-max change them).  The load is the paced pairs
 * flow of the `latency` scenario (--pairs conversations, --rate messages/s
 * in all, QoS 1) for --duration seconds.  A second thread samples the
 * broker's VmRSS every --sample seconds.
 *
 * The window is full when it holds --dedup-max ids or --window seconds of
 * them, whichever comes first: min(window, dedup_max / rate) seconds into
 * the run (333 s at the default 3,000 messages/s).  From then on every new
 * id evicts an old one, and the ring's pages have all been touched.
 *
 * Verdict: the growth of VmRSS from the first sample 15 s after the window
 * is full to the end, against --max-growth percent (default 3) of VmRSS at
 * that sample.  Exit 0 when flat and nothing was lost or
 * duplicated, 1 when the run failed or lost / duplicated a message, 3 when
 * memory grew past the bound.
 *
 * Thread rules: the sampler thread only reads /proc and writes the sample
 * array, which the main thread reads after joining it.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

#define SOAK_MAX_SAMPLES 20000

struct soak_opts {
	const char *build, *write;
	double duration_s, rate, window_s, sample_s, max_growth_pct;
	unsigned pairs, dedup_max;   /* dedup_max 0 and window_s 0: the plugin's */
};

struct sampler {
	pid_t pid;
	double every_s;
	uint64_t t0;                 /* mono ns of the first sample */
	volatile int stop;           /* set by the main thread, read here */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	double t[SOAK_MAX_SAMPLES];  /* seconds since t0 */
	long rss[SOAK_MAX_SAMPLES];  /* KiB */
	size_t n;
};

static void *sampler_main(void *arg)
{
	struct sampler *s = arg;
	pthread_mutex_lock(&s->mu);
	while (!s->stop && s->n < SOAK_MAX_SAMPLES) {
		s->t[s->n] = (double)(mono_ns() - s->t0) / 1e9;
		s->rss[s->n] = broker_rss_kib_pid(s->pid);
		s->n++;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		uint64_t ns = (uint64_t)until.tv_nsec + (uint64_t)(s->every_s * 1e9);
		until.tv_sec += (time_t)(ns / 1000000000u);
		until.tv_nsec = (long)(ns % 1000000000u);
		while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
			;
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void sampler_stop(struct sampler *s, pthread_t th)
{
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(th, NULL);
}

/* The verdict's figures. */
struct soak_figures {
	long rss_idle, rss_fill, rss_end, rss_max_after;
	double t_fill;
	double growth_pct;
	double full_s;               /* when the window is full */
	double expected_dedup_mib;   /* ids when full x 40.4 bytes */
	bool flat;
};

static void figures(const struct soak_opts *o, const struct sampler *s, long rss_idle,
		    struct soak_figures *f)
{
	memset(f, 0, sizeof(*f));
	f->rss_idle = rss_idle;
	double window = o->window_s ? o->window_s : 600, max = o->dedup_max ? o->dedup_max : 1e6;
	f->full_s = window < max / o->rate ? window : max / o->rate;
	f->expected_dedup_mib = f->full_s * o->rate * 40.4 / 1048576.0;
	size_t fill = s->n;
	for (size_t i = 0; i < s->n; i++)
		if (s->t[i] >= f->full_s + 15) {
			fill = i;
			break;
		}
	if (fill >= s->n)
		return;
	f->t_fill = s->t[fill];
	f->rss_fill = s->rss[fill];
	f->rss_end = s->rss[s->n - 1];
	f->rss_max_after = f->rss_fill;
	for (size_t i = fill; i < s->n; i++)
		if (s->rss[i] > f->rss_max_after)
			f->rss_max_after = s->rss[i];
	f->growth_pct = 100.0 * (double)(f->rss_max_after - f->rss_fill) / (double)f->rss_fill;
	f->flat = f->growth_pct <= o->max_growth_pct;
}

static void print_report(FILE *out, const struct soak_opts *o, const struct sampler *s,
			 const struct soak_figures *f, const struct flow_result *r,
			 int argc, char **argv)
{
	char machine[400], date[64];
	time_t now = time(NULL);
	machine_line(machine, sizeof(machine));
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	fprintf(out, "\nRun %s on %s; command: ", date, machine);
	print_command(out, "soak", argc, argv);
	fprintf(out, ".\n\nBroker C, %u conversations at QoS 1, %.0f messages/s in all for %.0f s, "
		"de-duplication window %.0f s / %u ids, full after %.0f s with ~%.1f MiB of ids.  "
		"%llu sent, %llu delivered, %llu lost, %llu duplicated; latency p50 %.0f us, "
		"p99 %.0f us.\n\n",
		o->pairs, o->rate, o->duration_s, o->window_s ? o->window_s : 600,
		o->dedup_max ? o->dedup_max : 1000000u, f->full_s, f->expected_dedup_mib,
		(unsigned long long)r->sent, (unsigned long long)r->delivered,
		(unsigned long long)r->lost, (unsigned long long)r->dup, r->p50_us, r->p99_us);
	fprintf(out, "| time | broker VmRSS |\n| ---: | ---: |\n| idle | %.1f MiB |\n",
		(double)f->rss_idle / 1024.0);
	double next = 0;
	for (size_t i = 0; i < s->n; i++) {
		if (s->t[i] + 1e-9 < next && i + 1 != s->n)
			continue;
		fprintf(out, "| %.0f s | %.1f MiB |\n", s->t[i], (double)s->rss[i] / 1024.0);
		next = s->t[i] + 60;
	}
	if (!f->rss_fill) {
		fprintf(out, "\nThe run ended before the window was full: no verdict.\n");
		return;
	}
	fprintf(out, "\nFrom the window full (%.0f s: %.1f MiB) to the end (%.1f MiB) the "
		"highest sample was %.1f MiB: growth %.2f %% (bound %.1f %%): **%s**.\n",
		f->t_fill, (double)f->rss_fill / 1024.0, (double)f->rss_end / 1024.0,
		(double)f->rss_max_after / 1024.0, f->growth_pct, o->max_growth_pct,
		f->flat ? "flat" : "growing");
}

static const struct option long_opts[] = {
	{ "duration", required_argument, NULL, 'D' }, { "rate", required_argument, NULL, 'R' },
	{ "window", required_argument, NULL, 'w' },   { "sample", required_argument, NULL, 's' },
	{ "dedup-max", required_argument, NULL, 'm' },
	{ "pairs", required_argument, NULL, 'p' },    { "max-growth", required_argument, NULL, 'g' },
	{ "build", required_argument, NULL, 'b' },    { "write", required_argument, NULL, 'W' },
	{ "verbose", no_argument, NULL, 'v' },        { NULL, 0, NULL, 0 },
};

static int parse(int argc, char **argv, struct soak_opts *o)
{
	double v;
	int c;
	*o = (struct soak_opts){ .build = "build", .duration_s = 600, .rate = 3000,
				 .sample_s = 5, .max_growth_pct = 3, .pairs = 10 };
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", long_opts, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'D': ok = parse_num(optarg, 10, 86400, &o->duration_s); break;
		case 'R': ok = parse_num(optarg, 1, 100000, &o->rate); break;
		case 'w': ok = parse_num(optarg, 1, 86400, &o->window_s); break;
		case 's': ok = parse_num(optarg, 0.1, 600, &o->sample_s); break;
		case 'g': ok = parse_num(optarg, 0, 1000, &o->max_growth_pct); break;
		case 'm': ok = parse_num(optarg, 1, 1e8, &v); o->dedup_max = (unsigned)v; break;
		case 'p': ok = parse_num(optarg, 1, BENCH_MAX_PAIRS, &v); o->pairs = (unsigned)v; break;
		case 'b': o->build = optarg; break;
		case 'W': o->write = optarg; break;
		case 'v': set_verbose(true); break;
		default: ok = false; break;
		}
		if (!ok) {
			fail("soak: bad option or value (see mqim-bench --help)");
			return -1;
		}
	}
	if (optind != argc) {
		fail("soak: unexpected argument %s", argv[optind]);
		return -1;
	}
	return 0;
}

/* The load, with the sampler running beside it. */
static int run_load(const struct soak_opts *o, const struct broker *b, struct sampler *s,
		    struct flow_result *r)
{
	struct flow_cfg cfg = { .port = b->port, .pairs = o->pairs, .qos = 1, .window = 20,
				.rate = o->rate, .duration_s = o->duration_s,
				.timeout_s = (unsigned)o->duration_s + 180, .nonce = rand64(),
				.broker_pid = b->pid };
	cfg.n = (unsigned)(o->rate * o->duration_s / o->pairs) + 1000;
	pthread_t th;
	s->pid = b->pid;
	s->every_s = o->sample_s;
	s->t0 = mono_ns();
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&th, NULL, sampler_main, s) != 0) {
		fail("soak: cannot start the sampler thread");
		return -1;
	}
	int rc = flows_run(&cfg, r);
	sampler_stop(s, th);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	return rc;
}

int cmd_soak(int argc, char **argv)
{
	struct soak_opts o;
	struct bench_env env;
	struct broker b;
	struct flow_result r;
	struct soak_figures f;
	char extra[160] = "";
	if (parse(argc, argv, &o) != 0)
		return EXIT_USAGE;
	memset(&env, 0, sizeof(env));
	struct sampler *s = calloc(1, sizeof(*s));
	struct provision_cfg pc = { .pairs = o.pairs };
	memset(&b, 0, sizeof(b));
	memset(&r, 0, sizeof(r));
	int rc = EXIT_FAIL;
	if (!s || bench_env_init(&env, o.build) != 0 || provision(&env, &pc) != 0)
		goto out;
	if (o.window_s)
		snprintf(extra, sizeof(extra), "plugin_opt_dedup_window %u\n", (unsigned)o.window_s);
	if (o.dedup_max)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
			 "plugin_opt_dedup_max %u\n", o.dedup_max);
	env.c_conf_extra = extra;
	if (broker_start(&b, BROKER_C, &env, false) != 0)
		goto out;
	long idle = broker_rss_kib(&b);
	note("soak: %.0f msgs/s for %.0f s, broker pid %d", o.rate, o.duration_s, (int)b.pid);
	if (run_load(&o, &b, s, &r) != 0)
		goto out;
	figures(&o, s, idle, &f);
	print_report(stdout, &o, s, &f, &r, argc, argv);
	if (o.write) {
		char *body = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&body, &len);
		if (m) {
			print_report(m, &o, s, &f, &r, argc, argv);
			fclose(m);
			if (doc_replace_section(o.write, "soak", body) != 0)
				fail("soak: could not write %s", o.write);
		}
		free(body);
	}
	/* a run too short to fill the window has no verdict, not a bad one */
	rc = (r.lost || r.dup || !r.complete) ? EXIT_FAIL
	     : f.flat || !f.rss_fill ? EXIT_OK : EXIT_MISSED;
out:
	if (b.pid)
		broker_stop(&b);
	if (env.work[0])
		rm_tree(env.work);
	free(s);
	return rc;
}
