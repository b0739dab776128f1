/* compare_report.c - the markdown report of `mqim-bench compare`.
 *
 * One table row per figure (table-driven: label, metric, how the issue's
 * figure is checked), each cell the median over the rounds with min-max,
 * then the ratios of medians C/A and C/B and whether issue 4's figure is
 * met.  Below it: losses, the first-login storm, the dedup benchmark.
 *
 * Thread rules: no global state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compare.h"

enum check { CK_NONE, CK_RATE, CK_CA_MAX, CK_C_MAX, CK_C_MINUS_A };

static const struct row {
	const char *label, *unit;
	enum metric m;
	enum check ck;
	double x, y;                 /* CK_RATE: C/A >= x, C/B >= y (0: none); else the limit */
	const char *figure;
} rows[] = {
	{ "pairs QoS 0", "msg/s", M_Q0, CK_RATE, 0.90, 0, "C/A ≥ 0.90" },
	{ "pairs QoS 1", "msg/s", M_Q1, CK_RATE, 0.95, 1.0, "C/A ≥ 0.95, C/B ≥ 1.0" },
	{ "pairs QoS 2", "msg/s", M_Q2, CK_RATE, 0.90, 0, "C/A ≥ 0.90" },
	{ "group QoS 1", "deliveries/s", M_GROUP, CK_RATE, 0.95, 1.0, "C/A ≥ 0.95, C/B ≥ 1.0" },
	{ "pairs QoS 0, p99 under load", "µs", M_Q0_P99, CK_NONE, 0, 0, "" },
	{ "pairs QoS 1, p99 under load", "µs", M_Q1_P99, CK_NONE, 0, 0, "" },
	{ "pairs QoS 2, p99 under load", "µs", M_Q2_P99, CK_NONE, 0, 0, "" },
	{ "group QoS 1, p99 under load", "µs", M_GROUP_P99, CK_NONE, 0, 0, "" },
	{ "pairs QoS 1: broker CPU per delivery, user", "ns", M_Q1_USER, CK_NONE, 0, 0, "" },
	{ "pairs QoS 1: broker CPU per delivery, system", "ns", M_Q1_SYS, CK_NONE, 0, 0, "" },
	{ "pairs QoS 1: generator CPU / broker CPU", "×", M_Q1_GEN, CK_NONE, 0, 0, "" },
	{ "group: broker CPU per delivery, user", "ns", M_GROUP_USER, CK_NONE, 0, 0, "" },
	{ "group: broker CPU per delivery, system", "ns", M_GROUP_SYS, CK_NONE, 0, 0, "" },
	{ "group: generator CPU / broker CPU", "×", M_GROUP_GEN, CK_NONE, 0, 0, "" },
	{ "latency at rest, p50", "µs", M_LAT_P50, CK_NONE, 0, 0, "" },
	{ "latency at rest, p99", "µs", M_LAT_P99, CK_CA_MAX, 1.10, 0, "C ≤ 1.1 × A" },
	{ "latency at rest, p999", "µs", M_LAT_P999, CK_NONE, 0, 0, "" },
	{ "storm (reconnects): chat p99", "µs", M_STORM_P99, CK_NONE, 0, 0, "" },
	{ "storm (reconnects): p99 / p99 at rest", "×", M_STORM_RATIO, CK_C_MAX, 2.0, 0, "C ≤ 2" },
	{ "storm (reconnects): logins", "logins/s", M_STORM_LOGINS, CK_NONE, 0, 0, "" },
	{ "storm (token logins, C only): chat p99", "µs", M_TSTORM_P99, CK_NONE, 0, 0, "" },
	{ "storm (token logins, C only): chat p99 at rest", "µs", M_TSTORM_BASE, CK_NONE, 0, 0, "" },
	{ "storm (token logins, C only): p99 / p99 at rest", "×", M_TSTORM_RATIO, CK_C_MAX, 2.0, 0,
	  "C ≤ 2" },
	{ "storm (token logins, C only): logins", "logins/s", M_TSTORM_LOGINS, CK_NONE, 0, 0, "" },
	{ "connections: VmRSS growth / sessions, idle → low", "bytes/session", M_CONN_LO, CK_NONE, 0, 0, "" },
	{ "connections: VmRSS growth / sessions, idle → high", "bytes/session", M_CONN_HI, CK_NONE, 0, 0, "" },
	{ "connections: marginal, low → high", "bytes/session", M_CONN_SLOPE, CK_C_MINUS_A, 512, 0,
	  "C − A ≤ 512" },
};

static void fmt_num(char *out, size_t n, double v)
{
	char digits[64];
	if (v != 0 && v < 10 && v > -10) {
		snprintf(out, n, "%.2f", v);
		return;
	}
	snprintf(digits, sizeof(digits), "%.0f", v);
	size_t len = strlen(digits), o = 0;
	bool neg = digits[0] == '-';
	for (size_t i = 0; i < len && o + 2 < n; i++) {
		size_t left = len - i;
		if (i > (neg ? 1u : 0u) && left % 3 == 0)
			out[o++] = ',';
		out[o++] = digits[i];
	}
	out[o] = '\0';
}

static struct summary summary_of(struct cmp_data *d, enum broker_kind k, enum metric m)
{
	return summarize(d->v[k][m], d->n[k][m]);
}

static void cell(char *out, size_t n, struct summary s)
{
	char a[32], b[32], c[32];
	if (!s.n) {
		snprintf(out, n, "–");
		return;
	}
	fmt_num(a, sizeof(a), s.median);
	if (s.n == 1) {
		snprintf(out, n, "%s", a);
		return;
	}
	fmt_num(b, sizeof(b), s.min);
	fmt_num(c, sizeof(c), s.max);
	snprintf(out, n, "%s (%s–%s)", a, b, c);
}

static const char *verdict(const struct row *r, const struct summary s[BROKER_KINDS], bool *missed)
{
	double a = s[BROKER_A].median, b = s[BROKER_B].median, c = s[BROKER_C].median;
	bool ok = true;
	if (r->ck == CK_NONE || !s[BROKER_C].n)
		return "";
	switch (r->ck) {
	case CK_RATE:
		ok = a > 0 && c / a >= r->x && (r->y == 0 || (b > 0 && c / b >= r->y));
		break;
	case CK_CA_MAX:
		ok = a > 0 && c / a <= r->x;
		break;
	case CK_C_MAX:
		ok = c <= r->x;
		break;
	default:
		ok = c - a <= r->x;
		break;
	}
	if (!ok)
		*missed = true;
	return ok ? "met" : "**missed**";
}

static void ratio(char *out, size_t n, double num, double den)
{
	if (den > 0 && num >= 0)
		snprintf(out, n, "%.2f", num / den);
	else
		snprintf(out, n, "–");
}

static void table(FILE *f, struct cmp_data *d, bool *missed)
{
	fprintf(f, "| scenario | unit | A | B | C | C/A | C/B | issue 4 | |\n");
	fprintf(f, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct summary s[BROKER_KINDS];
		char cells[BROKER_KINDS][128], ca[16], cb[16];
		bool any = false;
		for (int k = 0; k < BROKER_KINDS; k++) {
			s[k] = summary_of(d, (enum broker_kind)k, r->m);
			cell(cells[k], sizeof(cells[k]), s[k]);
			any = any || s[k].n;
		}
		if (!any)
			continue;
		ratio(ca, sizeof(ca), s[BROKER_C].median, s[BROKER_A].median);
		ratio(cb, sizeof(cb), s[BROKER_C].median, s[BROKER_B].median);
		fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r->label, r->unit,
			cells[0], cells[1], cells[2], ca, cb, r->figure, verdict(r, s, missed));
	}
}

static void losses(FILE *f, const struct cmp_data *d)
{
	fprintf(f, "\nLost and duplicated deliveries over every run (a run is incomplete when a "
		   "message is missing or a storm wave did not finish):\n\n");
	fprintf(f, "| broker | runs | lost | duplicated | incomplete runs |\n| --- | --- | --- | --- | --- |\n");
	for (int k = 0; k < BROKER_KINDS; k++)
		fprintf(f, "| %s | %u | %llu | %llu | %u |\n", broker_name((enum broker_kind)k),
			d->runs[k], (unsigned long long)d->lost[k], (unsigned long long)d->dup[k],
			d->incomplete[k]);
}

static void first_logins(FILE *f, const struct cmp_data *d, const struct cmp_opts *o)
{
	if (!d->first[BROKER_A].done && !d->first[BROKER_B].done && !d->first[BROKER_C].done)
		return;
	fprintf(f, "\nFirst logins (once per broker, before the rounds: %u users who never logged "
		   "in to this broker process, one wave, chat at %.0f msg/s meanwhile):\n\n",
		o->storm_k, o->rate);
	fprintf(f, "| broker | logins/s | storm length | closed before CONNACK (busy) | chat p99 at rest "
		   "| chat p50 / p99 / p999 during | p99 ratio |\n");
	fprintf(f, "| --- | --- | --- | --- | --- | --- | --- |\n");
	for (int k = 0; k < BROKER_KINDS; k++) {
		const struct first_login *x = &d->first[k];
		if (!x->done)
			continue;
		fprintf(f, "| %s | %.0f | %.1f s%s | %llu | %.0f µs | %.0f / %.0f / %.0f µs | %.1f |\n",
			broker_name((enum broker_kind)k), x->storm.logins_per_s, x->storm.seconds,
			x->storm.complete ? "" : " (incomplete)",
			(unsigned long long)x->storm.closed_early, x->base_p99_us, x->storm_p50_us,
			x->storm_p99_us, x->storm_p999_us,
			x->base_p99_us > 0 ? x->storm_p99_us / x->base_p99_us : 0);
	}
}

static void dedup(FILE *f, struct cmp_data *d, const struct cmp_opts *o, bool *missed)
{
	double v[6][CMP_MAX_ROUNDS];
	if (!d->ndedup)
		return;
	for (size_t i = 0; i < d->ndedup; i++) {
		v[0][i] = d->dedup[i].bytes_per_id;
		v[1][i] = d->dedup[i].rss_bytes_per_id;
		v[2][i] = d->dedup[i].inserts_per_s;
		v[3][i] = d->dedup[i].hits_per_s;
		v[4][i] = d->dedup[i].hits_per_s_small;
		v[5][i] = d->dedup[i].misses_per_s;
	}
	struct summary s[6];
	for (int j = 0; j < 6; j++)
		s[j] = summarize(v[j], d->ndedup);
	bool ok = s[0].median <= 64 && s[1].median <= 64;
	*missed = *missed || !ok;
	fprintf(f, "\nDe-duplication window (plugin/dedup.c alone, %u ids remembered, medians of %zu runs):"
		   " %.1f bytes allocated per id, %.1f bytes resident per id (issue 4: ≤ 64, %s); "
		   "inserts %.1f M/s; lookups of remembered ids %.1f M/s with the window full and "
		   "%.1f M/s in a window of half the size (O(1)); new ids (lookup, insert, evict the oldest) %.1f M/s.\n",
		o->dedup_ids, d->ndedup, s[0].median, s[1].median, ok ? "met" : "**missed**",
		s[2].median / 1e6, s[3].median / 1e6, s[4].median / 1e6, s[5].median / 1e6);
}

static void client(FILE *f, const struct cmp_data *d, bool *missed)
{
	const struct client_result *c = &d->client;
	if (!d->client_done)
		return;
	double p = c->paho.median;
	double best = (c->many.median > c->nowait.median ? c->many.median : c->nowait.median) / p;
	*missed = *missed || best < 0.8;
	fprintf(f, "\nlibmqim against raw paho MQTTAsync (`mqim-bench client`: %u QoS 1 messages to "
		   "broker C from one thread, 20 in flight, medians of %u runs, from the first send to "
		   "the last broker acknowledgement): paho %.0f msg/s; libmqim, durability FULL, "
		   "mqim_send_many() of 256 %.0f msg/s = %.2f × paho, mqim_send_nowait() %.0f msg/s = "
		   "%.2f × paho (issue 4: ≥ 0.8, %s); one mqim_send() per message %.0f msg/s = %.2f × "
		   "paho (durability APP: %.0f msg/s = %.2f).  Stored durably: %.0f/s (send_many), "
		   "%.0f/s (send_nowait), %.0f/s (mqim_send, FULL).\n",
		c->n, c->rounds, p, c->many.median, c->many.median / p, c->nowait.median,
		c->nowait.median / p, best >= 0.8 ? "met" : "**missed**", c->full.median,
		c->full.median / p, c->app.median, c->app.median / p, c->stored_many,
		c->stored_nowait, c->enqueue_full);
}

static void header(FILE *f, const struct cmp_data *d, const struct cmp_opts *o, int argc, char **argv)
{
	char machine[512], date[64];
	machine_line(machine, sizeof(machine));
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&d->started));
	fprintf(f, "Measured %s on %s, in %.1f minutes.\n\nCommand: ", date, machine,
		difftime(d->finished, d->started) / 60.0);
	print_command(f, "bench", argc, argv);
	fprintf(f, "%s.\n\n", o->quick ? " (quick smoke run: too short for conclusions)" : "");
	fprintf(f, "%u interleaved rounds (A, B, C, A, B, C, ...); each cell is the median and, in "
		   "brackets, the min–max over the rounds; ratios are ratios of medians.  pairs: %u "
		   "conversations × %u messages, window %u; group: 1 sender → %u members × %u messages, "
		   "QoS 1, window %u; latency at rest: %.0f msg/s in all, QoS 1, %.0f s; storm: %u "
		   "clients logging in at once, in waves for %.0f s, while the latency flow runs; "
		   "storm (token logins): the same on C alone, right after its password storm, each "
		   "client logging in with an HS256 app-server token (A and B have no tokens); "
		   "connections: %u and %u idle persistent sessions on a fresh broker (%u rounds).\n\n",
		o->rounds, o->pairs, o->n, o->window, o->group_size, o->group_n, o->window, o->rate,
		o->base_s, o->storm_k, o->storm_s, o->conn_lo, o->conn_hi, o->conn_rounds);
}

int cmp_report(struct cmp_data *d, const struct cmp_opts *o, int argc, char **argv)
{
	char *text = NULL;
	size_t len = 0;
	bool missed = false;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return -1;
	header(f, d, o, argc, argv);
	table(f, d, &missed);
	losses(f, d);
	first_logins(f, d, o);
	dedup(f, d, o, &missed);
	client(f, d, &missed);
	fclose(f);
	fputs(text, stdout);
	int rc = 0;
	if (o->write && doc_replace_section(o->write, "bench", text) != 0) {
		fail("cannot write %s", o->write);
		rc = -1;
	}
	free(text);
	if (rc == 0 && o->strict && missed)
		rc = EXIT_MISSED;
	return rc;
}
