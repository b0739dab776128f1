/* tbroker.c - start a real mosquitto with the built plugin, for tests.
 *
 * See tbroker.h.  Each broker is a child process running
 * `[MQIM_BROKER_WRAPPER...] mosquitto -c <dir>/mosquitto.conf`, its stdout
 * and stderr sent to <dir>/stderr.log, its own log to <dir>/mosquitto.log.
 *
 * Global state: the folders of the brokers made by tbroker_init() and not
 * yet cleaned up, with the pid of each one running, so that an atexit
 * handler can kill them and remove their folders when a test aborts (a
 * failed cmocka assertion in a test that never reached tbroker_cleanup()
 * must not leave a process or a folder behind).  That table is the only
 * mutable global, and it is touched from the test thread only.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "mqim.h"
#include "passwd.h"
#include "store.h"
#include "tbroker.h"

#define START_TIMEOUT_MS   10000
#define WRAPPED_TIMEOUT_MS 60000  /* valgrind starts slowly */
#define STOP_TIMEOUT_MS    10000
#define RELOAD_TIMEOUT_MS  10000
#define MAX_BROKERS        64
#define MAX_ARGS           32
#define START_ATTEMPTS     3

/* Hashing cost for test users: tiny, so tests stay fast. */
static const struct mqim_passwd_params test_params = { 1, 64, 1 };

/* ---- the table of live brokers (see the file comment) -------------------- */

struct live {
	char dir[256];   /* "" : a free slot */
	pid_t pid;       /* 0: not running */
};

static struct live live[MAX_BROKERS];
static bool atexit_installed;

static bool keep_tmp(void)
{
	const char *keep = getenv("MQIM_KEEP_TMP");
	return keep && strcmp(keep, "1") == 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_dir(const char *dir)
{
	if (!dir[0])
		return;
	if (keep_tmp())
		fprintf(stderr, "tbroker: kept %s\n", dir);
	else
		nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* At exit: kill what still runs, remove what is left. */
static void reap_all(void)
{
	for (int i = 0; i < MAX_BROKERS; i++) {
		if (live[i].pid > 0) {
			kill(live[i].pid, SIGKILL);
			waitpid(live[i].pid, NULL, 0);
		}
		remove_dir(live[i].dir);
		memset(&live[i], 0, sizeof live[i]);
	}
}

static struct live *live_find(const char *dir)
{
	for (int i = 0; dir[0] && i < MAX_BROKERS; i++)
		if (strcmp(live[i].dir, dir) == 0)
			return &live[i];
	return NULL;
}

static void live_add(const char *dir)
{
	if (!atexit_installed) {
		atexit(reap_all);
		atexit_installed = true;
	}
	for (int i = 0; i < MAX_BROKERS; i++) {
		if (!live[i].dir[0]) {
			snprintf(live[i].dir, sizeof live[i].dir, "%s", dir);
			live[i].pid = 0;
			return;
		}
	}
}

static void live_set_pid(const char *dir, pid_t pid)
{
	struct live *l = live_find(dir);
	if (l)
		l->pid = pid;
}

static void live_remove(const char *dir)
{
	struct live *l = live_find(dir);
	if (l)
		memset(l, 0, sizeof *l);
}

/* ---- small helpers ------------------------------------------------------- */

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read a whole file into a NUL-terminated malloc'd buffer (free()), or
 * NULL if it cannot be read. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
		if (cap - len - 1 == 0) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = nb;
			cap *= 2;
		}
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static void dump_file(const char *title, const char *path)
{
	char *text = slurp(path);
	fprintf(stderr, "---- %s (%s)\n%s---- end\n", title, path, text ? text : "(unreadable)\n");
	free(text);
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	socklen_t alen = sizeof a;
	int port = -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &alen) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

const char *tbroker_build_dir(void)
{
	const char *d = getenv("MQIM_BUILD_DIR");
	return d && *d ? d : "build";
}

/* ---- the generated configuration ----------------------------------------- */

/* True when some line of extra starts with the option word `key`. */
static bool extra_sets(const char *extra, const char *key)
{
	size_t klen = strlen(key);
	for (const char *line = extra; line && *line;) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (strncmp(line, key, klen) == 0 &&
		    (line[klen] == ' ' || line[klen] == '\t' || line[klen] == '\n' || line[klen] == '\0'))
			return true;
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return false;
}

/* Write one default line "key value" unless extra_conf sets key itself:
 * Mosquitto refuses most options given twice, so a test overrides a
 * default by naming the option in extra_conf. */
static void conf_default(FILE *f, const struct tbroker *b, const char *key, const char *value)
{
	if (!extra_sets(b->extra_conf, key))
		fprintf(f, "%s %s\n", key, value);
}

static int write_conf(const struct tbroker *b)
{
	char abs_build[PATH_MAX];
	char val[512];
	FILE *f = fopen(b->conf_path, "w");
	if (!f)
		return -1;

	fprintf(f, "# generated by tests/support/tbroker.c\n");
	fprintf(f, "listener %d 127.0.0.1\n", b->port);
	conf_default(f, b, "allow_anonymous", "false");
	conf_default(f, b, "persistence", "true");
	snprintf(val, sizeof val, "%s/", b->dir);
	conf_default(f, b, "persistence_location", val);
	conf_default(f, b, "autosave_interval", "1");
	conf_default(f, b, "set_tcp_nodelay", "true");
	conf_default(f, b, "max_queued_messages", "100000");
	fprintf(f, "log_dest file %s\n", b->log_path);
	const char *dbg = getenv("MQIM_BROKER_DEBUG");
	fprintf(f, "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n");
	if (dbg && strcmp(dbg, "1") == 0)
		fprintf(f, "log_type debug\n");
	if (geteuid() == 0)
		conf_default(f, b, "user", "root");

	const char *np = getenv("MQIM_BROKER_NO_PLUGIN");
	if (!(np && strcmp(np, "1") == 0)) {
		if (!realpath(tbroker_build_dir(), abs_build)) {
			fprintf(stderr, "tbroker: build folder %s: %s\n", tbroker_build_dir(),
				strerror(errno));
			fclose(f);
			return -1;
		}
		fprintf(f, "plugin %s/mqim_plugin.so\n", abs_build);
		fprintf(f, "plugin_opt_db_path %s\n", b->db_path);
		conf_default(f, b, "plugin_opt_argon2_memory", "64");
		conf_default(f, b, "plugin_opt_argon2_passes", "1");
		/* every test client comes from 127.0.0.1, like users behind one
		 * NAT: lockout by address is tested where a test turns it on */
		conf_default(f, b, "plugin_opt_lockout_by_address", "false");
	}
	if (b->extra_conf[0]) {
		size_t n = strlen(b->extra_conf);
		fprintf(f, "%s%s", b->extra_conf, b->extra_conf[n - 1] == '\n' ? "" : "\n");
	}
	return fclose(f) == 0 ? 0 : -1;
}

/* ---- starting and stopping ------------------------------------------------ */

/* The mosquitto binary: the first one on PATH, else Debian's /usr/sbin. */
static const char *mosquitto_path(char *buf, size_t len)
{
	const char *path = getenv("PATH");
	const char *fallback[] = { "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto" };
	while (path && *path) {
		const char *end = strchr(path, ':');
		size_t n = end ? (size_t)(end - path) : strlen(path);
		if (n > 0 && n + sizeof "/mosquitto" < len) {
			snprintf(buf, len, "%.*s/mosquitto", (int)n, path);
			if (access(buf, X_OK) == 0)
				return buf;
		}
		path = end ? end + 1 : NULL;
	}
	for (size_t i = 0; i < sizeof fallback / sizeof fallback[0]; i++)
		if (access(fallback[i], X_OK) == 0)
			return fallback[i];
	return "mosquitto";
}

/* In the child, when this test binary runs with AddressSanitizer (make
 * SANITIZE=address,...), the plugin was built with it too, and a stock
 * mosquitto can only load it with the ASan runtime preloaded: find the
 * runtime this process uses and put it in LD_PRELOAD.  No-op otherwise, or
 * under a wrapper (valgrind and ASan do not mix). */
void tbroker_preload_sanitizer(void)
{
	Dl_info info;
	void *sym = dlsym(RTLD_DEFAULT, "__asan_init");
	const char *wrapper = getenv("MQIM_BROKER_WRAPPER");
	if (!sym || (wrapper && *wrapper) || !dladdr(sym, &info) || !info.dli_fname ||
	    !strstr(info.dli_fname, ".so"))
		return;
	setenv("LD_PRELOAD", info.dli_fname, 1);
}

/* In the child: exec the wrapper words (if any), mosquitto, -c, conf.
 * Never returns. */
static void exec_broker(const struct tbroker *b)
{
	char *argv[MAX_ARGS + 4];
	int argc = 0;
	char mosq[512];
	char *wrapper = getenv("MQIM_BROKER_WRAPPER");
	char *words = wrapper ? strdup(wrapper) : NULL;
	char *save = NULL;

	for (char *w = words ? strtok_r(words, " \t", &save) : NULL; w && argc < MAX_ARGS;
	     w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	argv[argc++] = (char *)mosquitto_path(mosq, sizeof mosq);
	argv[argc++] = "-c";
	argv[argc++] = (char *)b->conf_path;
	argv[argc] = NULL;

	char errpath[340];
	snprintf(errpath, sizeof errpath, "%s/stderr.log", b->dir);
	int fd = open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	int devnull = open("/dev/null", O_RDONLY);
	if (devnull >= 0) {
		dup2(devnull, STDIN_FILENO);
		close(devnull);
	}
	tbroker_preload_sanitizer();
	execvp(argv[0], argv);
	fprintf(stderr, "tbroker: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void print_logs(const struct tbroker *b)
{
	char errpath[340];
	snprintf(errpath, sizeof errpath, "%s/stderr.log", b->dir);
	dump_file("broker stderr", errpath);
	dump_file("broker log", b->log_path);
}

/* Wait until the port accepts a connection.  Returns 0, 1 if the child
 * exited (reaped), -1 on timeout (child still running). */
static int wait_ready(struct tbroker *b, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int delay = 5;
	while (now_ms() < deadline) {
		int status;
		if (waitpid(b->pid, &status, WNOHANG) == b->pid)
			return 1;
		if (port_accepts(b->port))
			return 0;
		sleep_ms(delay);
		if (delay < 50)
			delay *= 2;
	}
	return -1;
}

static bool log_has_bind_error(const struct tbroker *b)
{
	char errpath[340];
	snprintf(errpath, sizeof errpath, "%s/stderr.log", b->dir);
	char *a = slurp(b->log_path), *e = slurp(errpath);
	bool yes = (a && strstr(a, "Address already in use")) || (e && strstr(e, "Address already in use"));
	free(a);
	free(e);
	return yes;
}

/* One attempt to start; returns 0, 1 if the port was taken, -1 otherwise. */
static int start_once(struct tbroker *b)
{
	if (write_conf(b) != 0) {
		fprintf(stderr, "tbroker: cannot write %s\n", b->conf_path);
		return -1;
	}
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* die with the test process, even one that crashed before its
		 * atexit handler could run (the forking thread is the test's) */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		exec_broker(b);
	}
	b->pid = pid;
	live_set_pid(b->dir, pid);

	const char *wrapper = getenv("MQIM_BROKER_WRAPPER");
	int r = wait_ready(b, wrapper && *wrapper ? WRAPPED_TIMEOUT_MS : START_TIMEOUT_MS);
	if (r == 0)
		return 0;
	if (r < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	live_set_pid(b->dir, 0);
	b->pid = 0;
	if (r == 1 && log_has_bind_error(b))
		return 1;
	fprintf(stderr, "tbroker: mosquitto %s on port %d\n",
		r == 1 ? "exited at start" : "did not accept connections in time", b->port);
	print_logs(b);
	return -1;
}

int tbroker_start(struct tbroker *b)
{
	if (b->pid > 0)
		return 0;
	for (int attempt = 0; attempt < START_ATTEMPTS; attempt++) {
		int r = start_once(b);
		if (r <= 0)
			return r;
		/* Another process took the port between the probe and the bind. */
		b->port = free_port();
		if (b->port < 0)
			return -1;
	}
	fprintf(stderr, "tbroker: no free port after %d attempts\n", START_ATTEMPTS);
	return -1;
}

/* Wait for the child up to timeout_ms; returns true when reaped. */
static bool reap(pid_t pid, int timeout_ms, int *status)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid || (r < 0 && errno == ECHILD))
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

int tbroker_stop(struct tbroker *b)
{
	if (b->pid <= 0)
		return -1;
	int status = 0;
	kill(b->pid, SIGCONT); /* a stopped broker cannot handle SIGTERM */
	kill(b->pid, SIGTERM);
	if (!reap(b->pid, STOP_TIMEOUT_MS, &status)) {
		fprintf(stderr, "tbroker: mosquitto %d ignored SIGTERM, killing it\n", (int)b->pid);
		kill(b->pid, SIGKILL);
		waitpid(b->pid, &status, 0);
	}
	live_set_pid(b->dir, 0);
	b->pid = 0;
	return exit_code(status);
}

int tbroker_signal(struct tbroker *b, int sig)
{
	if (b->pid <= 0)
		return -1;
	if (kill(b->pid, sig) != 0)
		return -1;
	if (sig == SIGKILL) {
		waitpid(b->pid, NULL, 0);
		live_set_pid(b->dir, 0);
		b->pid = 0;
	}
	return 0;
}

int tbroker_sighup(struct tbroker *b)
{
	const char *needle = "mqim: reloaded";
	int before = tbroker_log_count(b, needle);
	if (tbroker_signal(b, SIGHUP) != 0)
		return -1;
	long long deadline = now_ms() + RELOAD_TIMEOUT_MS;
	while (now_ms() < deadline) {
		if (tbroker_log_count(b, needle) > before)
			return 0;
		sleep_ms(10);
	}
	fprintf(stderr, "tbroker: no \"%s\" in the log after SIGHUP\n", needle);
	print_logs(b);
	return -1;
}

/* ---- folder and store ------------------------------------------------------ */

int tbroker_init(struct tbroker *b, const char *extra_conf)
{
	memset(b, 0, sizeof *b);
	if (extra_conf) {
		if (strlen(extra_conf) >= sizeof b->extra_conf)
			return -1;
		strcpy(b->extra_conf, extra_conf);
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(b->dir, sizeof b->dir, "%s/mqim-tbroker-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(b->dir)) {
		fprintf(stderr, "tbroker: mkdtemp %s: %s\n", b->dir, strerror(errno));
		b->dir[0] = '\0';
		return -1;
	}
	live_add(b->dir);
	snprintf(b->db_path, sizeof b->db_path, "%s/mqim.db", b->dir);
	snprintf(b->conf_path, sizeof b->conf_path, "%s/mosquitto.conf", b->dir);
	snprintf(b->log_path, sizeof b->log_path, "%s/mosquitto.log", b->dir);
	b->port = free_port();
	if (b->port < 0)
		return -1;

	struct mqim_store *st = NULL;
	char err[256] = "";
	int rc = mqim_store_open(b->db_path, MQIM_STORE_CREATE, &st, err, sizeof err);
	if (rc != MQIM_OK) {
		fprintf(stderr, "tbroker: cannot create the store: %s\n", err);
		return -1;
	}
	mqim_store_close(st);
	return 0;
}

int tbroker_cleanup(struct tbroker *b)
{
	int status = 0;
	if (b->pid > 0)
		status = tbroker_stop(b);
	if (status != 0) {
		fprintf(stderr, "tbroker: mosquitto exited with status %d\n", status);
		print_logs(b);
	}
	remove_dir(b->dir);
	live_remove(b->dir);
	b->dir[0] = '\0';
	return status;
}

/* Open b's store for one offline change; NULL (with a message) on error. */
static struct mqim_store *open_store(struct tbroker *b)
{
	struct mqim_store *st = NULL;
	char err[256] = "";
	if (mqim_store_open(b->db_path, 0, &st, err, sizeof err) != MQIM_OK) {
		fprintf(stderr, "tbroker: cannot open the store: %s\n", err);
		return NULL;
	}
	return st;
}

int tbroker_add_user(struct tbroker *b, const char *name, const char *password, bool admin)
{
	char hash[MQIM_HASH_MAX];
	int rc = mqim_passwd_hash(&test_params, password, hash, sizeof hash);
	if (rc != MQIM_OK)
		return -1;
	struct mqim_store *st = open_store(b);
	if (!st)
		return -1;
	rc = mqim_store_user_add(st, name, hash, admin);
	if (rc != MQIM_OK)
		fprintf(stderr, "tbroker: add user %s: %s\n", name, mqim_strerror(rc));
	mqim_store_close(st);
	return rc == MQIM_OK ? 0 : -1;
}

int tbroker_add_group(struct tbroker *b, const char *gid, const char *const *members)
{
	struct mqim_store *st = open_store(b);
	if (!st)
		return -1;
	int rc = mqim_store_group_add(st, gid);
	for (size_t i = 0; rc == MQIM_OK && members && members[i]; i++)
		rc = mqim_store_member_add(st, gid, members[i]);
	if (rc != MQIM_OK)
		fprintf(stderr, "tbroker: add group %s: %s\n", gid, mqim_strerror(rc));
	mqim_store_close(st);
	return rc == MQIM_OK ? 0 : -1;
}

int tbroker_del_user(struct tbroker *b, const char *name)
{
	struct mqim_store *st = open_store(b);
	if (!st)
		return -1;
	int rc = mqim_store_user_del(st, name);
	mqim_store_close(st);
	return rc == MQIM_OK ? 0 : -1;
}

int tbroker_set_disabled(struct tbroker *b, const char *name, bool disabled)
{
	struct mqim_store *st = open_store(b);
	if (!st)
		return -1;
	int rc = mqim_store_user_set_disabled(st, name, disabled);
	mqim_store_close(st);
	return rc == MQIM_OK ? 0 : -1;
}

int tbroker_del_member(struct tbroker *b, const char *gid, const char *user)
{
	struct mqim_store *st = open_store(b);
	if (!st)
		return -1;
	int rc = mqim_store_member_del(st, gid, user);
	mqim_store_close(st);
	return rc == MQIM_OK ? 0 : -1;
}

/* ---- the log ----------------------------------------------------------------- */

int tbroker_log_count(struct tbroker *b, const char *needle)
{
	char *text = slurp(b->log_path);
	int n = 0;
	size_t nlen = strlen(needle);
	for (const char *p = text; p && nlen && (p = strstr(p, needle)); p += nlen)
		n++;
	free(text);
	return n;
}

bool tbroker_log_wait(struct tbroker *b, const char *needle, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		if (tbroker_log_count(b, needle) > 0)
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}

/* True when one line of text contains every needle. */
static bool some_line_has_all(const char *text, const char *const needles[])
{
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		bool all = true;
		for (size_t i = 0; all && needles[i]; i++) {
			size_t nlen = strlen(needles[i]);
			all = false;
			for (size_t j = 0; !all && j + nlen <= len; j++)
				all = memcmp(line + j, needles[i], nlen) == 0;
		}
		if (all)
			return true;
		line = end ? end + 1 : NULL;
	}
	return false;
}

bool tbroker_log_wait_line(struct tbroker *b, const char *const needles[], int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	for (;;) {
		char *text = slurp(b->log_path);
		bool found = text && some_line_has_all(text, needles);
		free(text);
		if (found)
			return true;
		if (now_ms() >= deadline)
			return false;
		sleep_ms(10);
	}
}
