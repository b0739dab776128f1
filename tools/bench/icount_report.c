/* icount_report.c - the report of `mqim-bench icount`, and the plugin's
 * cost per delivery from callgrind_annotate.
 *
 * callgrind_annotate lists "Ir (pct) file:function [object]" lines; the
 * same function may appear under several files (inlined code), so self
 * costs are summed per function name and inclusive costs take the largest
 * entry.  Each figure is the difference between the big and the small run
 * divided by the difference in deliveries, like the totals.
 *
 * Thread rules: no global state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icount.h"

#define MAX_FNS 4096
#define TOP     14

struct fn {
	char name[128];
	char obj[48];
	double self[2], incl[2];     /* small, big */
};

struct fns {
	struct fn *v;
	size_t n;
};

static struct fn *fn_get(struct fns *t, const char *name, const char *obj)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].name, name)) {
			if (!t->v[i].obj[0] && obj[0])
				snprintf(t->v[i].obj, sizeof(t->v[i].obj), "%s", obj);
			return &t->v[i];
		}
	if (t->n == MAX_FNS)
		return NULL;
	struct fn *f = &t->v[t->n++];
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->obj, sizeof(f->obj), "%s", obj);
	return f;
}

/* Split "  1,234 (5.6%)  file:function [object]" into its parts. */
static bool parse_line(char *line, double *ir, char **fn, char **obj, char **file)
{
	char digits[32];
	size_t n = 0;
	char *p = line;
	while (*p == ' ')
		p++;
	for (; (*p >= '0' && *p <= '9') || *p == ','; p++)
		if (*p != ',' && n + 1 < sizeof(digits))
			digits[n++] = *p;
	if (!n || *p != ' ')
		return false;
	digits[n] = '\0';
	*ir = strtod(digits, NULL);
	char *paren = strchr(p, ')');
	p = paren ? paren + 1 : p;
	while (*p == ' ')
		p++;
	p[strcspn(p, "\n")] = '\0';
	char *br = strstr(p, " [");
	*obj = "";
	if (br) {
		*br = '\0';
		char *end = strchr(br + 2, ']');
		if (end)
			*end = '\0';
		char *slash = strrchr(br + 2, '/');
		*obj = slash ? slash + 1 : br + 2;
	}
	char *colon = strrchr(p, ':');
	if (!colon || !strcmp(p, "PROGRAM TOTALS"))
		return false;
	*colon = '\0';
	*file = p;
	*fn = colon + 1;
	return true;
}

static int annotate(struct fns *t, const char *path, bool inclusive, int which)
{
	char cmd[600], line[1024];
	snprintf(cmd, sizeof(cmd), "callgrind_annotate --inclusive=%s --threshold=100 '%s' 2>/dev/null",
		 inclusive ? "yes" : "no", path);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		double ir;
		char *fn, *obj, *file;
		if (!parse_line(line, &ir, &fn, &obj, &file))
			continue;
		struct fn *f = fn_get(t, fn, obj);
		if (!f)
			continue;
		if (inclusive) {
			if (ir > f->incl[which])
				f->incl[which] = ir;
		} else {
			f->self[which] += ir;
		}
	}
	return pclose(p) == 0 ? 0 : -1;
}

static bool is_plugin(const struct fn *f)
{
	return strstr(f->obj, "mqim_plugin") || strstr(f->obj, "msgpack") ||
	       !strncmp(f->name, "mqim", 4);
}

static double per(const struct fn *f, const double *v, double dd)
{
	(void)f;
	return dd > 0 ? (v[1] - v[0]) / dd : 0;
}

static int cmp_self(const void *a, const void *b, void *dd)
{
	const struct fn *x = a, *y = b;
	double u = per(x, x->self, *(double *)dd), w = per(y, y->self, *(double *)dd);
	return u < w ? 1 : u > w ? -1 : 0;
}

/* The plugin's share of broker C's cost per delivery in one workload. */
static void breakdown(FILE *out, const struct ic_cell *c, const struct ic_cell *a, const char *work)
{
	struct fns t = { calloc(MAX_FNS, sizeof(struct fn)), 0 };
	double dd = c->big.deliveries - c->small.deliveries;
	if (!t.v || annotate(&t, c->small.cg_out, false, 0) || annotate(&t, c->big.cg_out, false, 1) ||
	    annotate(&t, c->small.cg_out, true, 0) || annotate(&t, c->big.cg_out, true, 1)) {
		fprintf(out, "\n(callgrind_annotate failed for %s)\n", work);
		free(t.v);
		return;
	}
	double plugin_self = 0;
	for (size_t i = 0; i < t.n; i++)
		if (is_plugin(&t.v[i]))
			plugin_self += per(&t.v[i], t.v[i].self, dd);
	fprintf(out, "\n**%s** — broker C: %.0f Ir per delivery, A: %.0f (C − A = %.0f).\n\n", work,
		c->per_delivery, a->per_delivery, c->per_delivery - a->per_delivery);
	fprintf(out, "| plugin callback (inclusive) | Ir per delivery | share of C |\n| --- | --- | --- |\n");
	static const char *const cbs[] = { "mqim__on_acl_check", "mqim__on_message",
					   "mqim__on_basic_auth", "mqim__on_tick" };
	for (size_t k = 0; k < sizeof(cbs) / sizeof(cbs[0]); k++)
		for (size_t i = 0; i < t.n; i++)
			if (!strcmp(t.v[i].name, cbs[k]))
				fprintf(out, "| %s | %.0f | %.1f %% |\n", cbs[k], per(&t.v[i], t.v[i].incl, dd),
					100.0 * per(&t.v[i], t.v[i].incl, dd) / c->per_delivery);
	fprintf(out, "\nSelf cost of the plugin's and msgpack-c's own functions: %.0f Ir per delivery "
		     "(%.1f %% of C; the malloc, memcpy... they call are counted in libc's lines).  "
		     "Costliest functions of broker C per delivery (self):\n\n",
		plugin_self, 100.0 * plugin_self / c->per_delivery);
	qsort_r(t.v, t.n, sizeof(*t.v), cmp_self, &dd);
	fprintf(out, "| function | object | Ir per delivery | share of C |\n| --- | --- | --- | --- |\n");
	for (size_t i = 0; i < t.n && i < TOP; i++)
		fprintf(out, "| %s%s%s%s | %s | %.0f | %.1f %% |\n", is_plugin(&t.v[i]) ? "**" : "",
			t.v[i].name, !strncmp(t.v[i].name, "0x", 2) ? " (internal)" : "",
			is_plugin(&t.v[i]) ? "**" : "", t.v[i].obj[0] ? t.v[i].obj : "?",
			per(&t.v[i], t.v[i].self, dd), 100.0 * per(&t.v[i], t.v[i].self, dd) / c->per_delivery);
	free(t.v);
}

static void totals(FILE *out, const struct ic_data *d, const char *const work[2], bool *missed)
{
	fprintf(out, "| workload | A | B | C | C/A | C/B | issue 4 | |\n");
	fprintf(out, "| --- | --- | --- | --- | --- | --- | --- | --- |\n");
	for (int w = 0; w < 2; w++) {
		double a = d->cell[BROKER_A][w].per_delivery, b = d->cell[BROKER_B][w].per_delivery;
		double c = d->cell[BROKER_C][w].per_delivery;
		bool ok = a > 0 && c / a <= 1.10;
		*missed = *missed || !ok;
		fprintf(out, "| %s | %.0f | %.0f | %.0f | %.3f | %.3f | C/A ≤ 1.10 | %s |\n", work[w], a, b,
			c, a > 0 ? c / a : 0, b > 0 ? c / b : 0, ok ? "met" : "**missed**");
	}
}

int ic_report(const struct ic_data *d, const char *work0, const char *work1, const char *write,
	      int argc, char **argv)
{
	const char *const work[2] = { work0, work1 };
	char machine[512], date[64], *text = NULL;
	size_t len = 0;
	bool missed = false;
	FILE *out = open_memstream(&text, &len);
	if (!out)
		return -1;
	machine_line(machine, sizeof(machine));
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M UTC", gmtime(&d->started));
	fprintf(out, "Measured %s on %s.  Command: ", date, machine);
	print_command(out, "bench-icount", argc, argv);
	fprintf(out, ".  Broker instructions (valgrind --tool=callgrind, Ir of the mosquitto process "
		     "only) per delivered message: (Ir of a big run − Ir of a small run) / (deliveries "
		     "of the big run − of the small run), each on a fresh broker.\n\n");
	totals(out, d, work, &missed);
	for (int w = 0; w < 2; w++)
		breakdown(out, &d->cell[BROKER_C][w], &d->cell[BROKER_A][w], work[w]);
	fclose(out);
	fputs(text, stdout);
	int rc = write ? doc_replace_section(write, "icount", text) : 0;
	if (rc != 0)
		fail("cannot write %s", write);
	free(text);
	return rc;
}
