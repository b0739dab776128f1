/* report.c - the generated sections of docs/performance.md.
 *
 * The page is written by hand except between marker comments
 * "<!-- NAME:begin -->" and "<!-- NAME:end -->", which `make bench`
 * ("bench") and `make bench-icount` ("icount") replace with their latest
 * figures.  The file is rewritten with write-then-rename.
 *
 * Thread rules: no global state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

int doc_replace_section(const char *path, const char *name, const char *body)
{
	char begin[96], end[96];
	size_t len = 0;
	snprintf(begin, sizeof(begin), "<!-- %s:begin -->", name);
	snprintf(end, sizeof(end), "<!-- %s:end -->", name);
	char *old = slurp(path, &len);
	if (!old) {
		old = strdup("# Performance\n");
		len = old ? strlen(old) : 0;
	}
	if (!old)
		return -1;
	char *b = strstr(old, begin), *e = b ? strstr(b, end) : NULL;
	size_t head = b ? (size_t)(b - old) : len;
	const char *tail = e ? e + strlen(end) : "";
	size_t cap = len + strlen(body) + 256;
	char *out = malloc(cap);
	int rc = -1;
	if (out) {
		int n = snprintf(out, cap, "%.*s%s%s\n%s%s%s%s", (int)head, old,
				 b || (head && old[head - 1] == '\n') ? "" : "\n", begin, body,
				 body[0] && body[strlen(body) - 1] != '\n' ? "\n" : "", end,
				 b ? tail : "\n");
		if (n > 0 && (size_t)n < cap)
			rc = write_file_atomic(path, out, (size_t)n, 0644);
	}
	free(out);
	free(old);
	return rc;
}

void machine_line(char *out, size_t n)
{
	char model[256] = "unknown CPU", line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon) {
			snprintf(model, sizeof(model), "%s", colon + 2);
			model[strcspn(model, "\n")] = '\0';
			break;
		}
	}
	if (f)
		fclose(f);
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	long mem_kib = 0;
	f = fopen("/proc/meminfo", "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %ld kB", &mem_kib) == 1)
			break;
	if (f)
		fclose(f);
	snprintf(out, n, "%ld cores (nproc), %s, %.1f GiB RAM", cores, model,
		 (double)mem_kib / 1048576.0);
}

void print_command(FILE *f, const char *make_target, int argc, char **argv)
{
	if (getenv("MAKELEVEL"))
		fprintf(f, "`make %s`, which runs ", make_target);
	fprintf(f, "`mqim-bench");
	for (int i = 0; i < argc; i++)
		fprintf(f, " %s", argv[i]);
	fprintf(f, "`");
}
