/* test_mqimctl_cli.c - runs the built mqimctl binary (fork/exec, no shell)
 * in offline mode against a temporary store, and checks exit statuses and
 * output: every command, usage errors (1), refusals (2), an unreachable
 * broker or store (3), --json, --help, import, and that passwords are never
 * printed.
 *
 * The binary is $MQIM_BUILD_DIR/mqimctl; without that variable, the build
 * folder this test binary lives in (BUILD/tests/unit/..), else "build".
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "mqim.h"
#include "passwd.h"
#include "store.h"

#define MOSQ7 "$7$101$AQIDBAUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr89dDHWD70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw=="
#define MOSQ6 "$6$bXFpbS1zYWx0LTEy$TBIkA1SJuUXyAja6TD+Bq3NGetxmjTzKWd50jAMDFYLvL9yK543g6acRxuHBn6v9onr/eryiTHWpJI8YqWZiBQ=="

struct fix {
	char dir[64];
	char db[128];
	char bin[PATH_MAX];
	char out[16384];
	char err[16384];
	const char *in;        /* stdin for the next run; NULL: /dev/null */
	const char *env_pw;    /* MQIM_PASSWORD for the next run; NULL: unset */
};

static void find_binary(char *bin, size_t len)
{
	const char *dir = getenv("MQIM_BUILD_DIR");
	char self[PATH_MAX];
	ssize_t n;

	if (dir) {
		snprintf(bin, len, "%s/mqimctl", dir);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		for (int up = 0; up < 3; up++) {       /* BUILD/tests/unit/test_x */
			char *slash = strrchr(self, '/');
			if (slash)
				*slash = '\0';
		}
		if (strlen(self) + sizeof("/mqimctl") <= len) {
			memcpy(bin, self, strlen(self));
			strcpy(bin + strlen(self), "/mqimctl");
			if (access(bin, X_OK) == 0)
				return;
		}
	}
	snprintf(bin, len, "build/mqimctl");
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mqim-test-cli-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/store.db", f->dir);
	find_binary(f->bin, sizeof(f->bin));
	if (access(f->bin, X_OK) != 0) {
		fprintf(stderr, "%s is not built (set MQIM_BUILD_DIR)\n", f->bin);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	static const char *const names[] = {
		"store.db", "store.db-wal", "store.db-shm", "in", "out", "err", "import.txt",
		"other.db", "junk.db",
	};
	char p[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : 0;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Child side: wire stdin/stdout/stderr to files and exec. */
static void child(struct fix *f, char **argv)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/in", f->dir);
	fd = open(f->in ? p : "/dev/null", O_RDONLY);
	dup2(fd, 0);
	snprintf(p, sizeof(p), "%s/out", f->dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	snprintf(p, sizeof(p), "%s/err", f->dir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	if (f->env_pw)
		setenv("MQIM_PASSWORD", f->env_pw, 1);
	else
		unsetenv("MQIM_PASSWORD");
	execv(f->bin, argv);
	_exit(127);
}

/* Run mqimctl with the NULL-terminated arguments; returns its exit status
 * (-1 when it died of a signal), with its output in f->out / f->err. */
static int ctl(struct fix *f, ...)
{
	char *argv[32];
	char p[256];
	int argc = 0, status;
	va_list ap;
	pid_t pid;

	argv[argc++] = f->bin;
	va_start(ap, f);
	while (argc < 31 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	if (f->in) {
		snprintf(p, sizeof(p), "%s/in", f->dir);
		write_text(p, f->in);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(f, argv);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	snprintf(p, sizeof(p), "%s/out", f->dir);
	slurp(p, f->out, sizeof(f->out));
	snprintf(p, sizeof(p), "%s/err", f->dir);
	slurp(p, f->err, sizeof(f->err));
	f->in = NULL;
	f->env_pw = NULL;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define HAS(buf, s)                                                          \
	do {                                                                 \
		if (!strstr((buf), (s)))                                     \
			fail_msg("expected \"%s\" in:\n%s", (s), (buf));     \
	} while (0)
#define HASNT(buf, s)                                                        \
	do {                                                                 \
		if (strstr((buf), (s)))                                      \
			fail_msg("did not expect \"%s\" in:\n%s", (s), (buf)); \
	} while (0)

/* Expect exit status want; on a mismatch show what the tool said. */
#define EXPECT(f, want, ...)                                                 \
	do {                                                                 \
		int got_ = ctl((f), __VA_ARGS__, (char *)NULL);              \
		if (got_ != (want))                                          \
			fail_msg("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", \
				 got_, (want), (f)->out, (f)->err);          \
	} while (0)

static void init_store(struct fix *f)
{
	f->in = "admin-pw\n";
	EXPECT(f, 0, "--db", f->db, "init", "admin", "--password-stdin");
}

static void add_user(struct fix *f, const char *name, const char *pw)
{
	char line[128];

	snprintf(line, sizeof(line), "%s\n", pw);
	f->in = line;
	EXPECT(f, 0, "--db", f->db, "user", "add", (char *)name, "--password-stdin");
}

/* The stored hash of user verifies password. */
static void check_password(struct fix *f, const char *user, const char *password)
{
	struct mqim_store *st;
	struct mqim_user_rec u;
	char err[256];

	assert_int_equal(mqim_store_open(f->db, MQIM_STORE_READONLY, &st, err, sizeof(err)), MQIM_OK);
	assert_int_equal(mqim_store_user_get(st, user, &u), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(u.hash, password), MQIM_OK);
	mqim_store_close(st);
}

static cJSON *parse_json_out(struct fix *f)
{
	cJSON *j = cJSON_Parse(f->out);

	if (!j)
		fail_msg("stdout is not JSON:\n%s", f->out);
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "responses")));
	return j;
}

/* ---- help ---------------------------------------------------------------- */

static void help(void **state)
{
	struct fix *f = *state;
	static const char *const cmds[][4] = {
		{ "token", "issue" },
		{ "init" }, { "user", "add" }, { "user", "del" }, { "user", "passwd" },
		{ "user", "list" }, { "user", "show" }, { "user", "disable" },
		{ "user", "enable" }, { "user", "admin" }, { "user", "import" },
		{ "group", "add" }, { "group", "del" }, { "group", "list" },
		{ "group", "show" }, { "group", "member", "add" }, { "group", "member", "del" },
		{ "kick" },
	};

	EXPECT(f, 0, "--help");
	HAS(f->out, "SYNOPSIS");
	HAS(f->out, "EXIT STATUS");
	HAS(f->out, "MQIM_PASSWORD");
	HAS(f->out, "kill -HUP");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char words[64] = "";
		for (int k = 0; k < 3 && cmds[i][k]; k++) {
			if (k)
				strcat(words, " ");
			strcat(words, cmds[i][k]);
		}
		HAS(f->out, words);
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *a[6] = { NULL };
		int n = 0;
		for (int k = 0; k < 3 && cmds[i][k]; k++)
			a[n++] = (char *)cmds[i][k];
		a[n] = "--help";
		EXPECT(f, 0, a[0], a[1], a[2], a[3]);
		HAS(f->out, "usage: mqimctl");
		HAS(f->out, "Example:");
	}
	EXPECT(f, 0, "user", "add", "alice", "--help");
	HAS(f->out, "--password-stdin");
	HAS(f->out, "createUser");
	EXPECT(f, 0, "help", "group");
	HAS(f->out, "group member add");
	EXPECT(f, 0, "--version");
	HAS(f->out, "mqimctl ");
	EXPECT(f, 1, "help", "frobnicate");
}

/* ---- usage errors -------------------------------------------------------- */

static void usage_errors(void **state)
{
	struct fix *f = *state;

	init_store(f);
	EXPECT(f, 1, "--db", f->db);
	HAS(f->err, "no command");
	EXPECT(f, 1, "--db", f->db, "frobnicate");
	HAS(f->err, "unknown command 'frobnicate'");
	EXPECT(f, 1, "--db", f->db, "user");
	HAS(f->err, "needs a subcommand");
	EXPECT(f, 1, "--db", f->db, "user", "frob", "x");
	EXPECT(f, 1, "--db", f->db, "user", "add");
	HAS(f->err, "user add needs NAME");
	EXPECT(f, 1, "--db", f->db, "user", "list", "extra");
	EXPECT(f, 1, "--db", f->db, "group", "member", "add", "team");
	EXPECT(f, 1, "user", "list");
	HAS(f->err, "--db FILE");
	EXPECT(f, 1, "--db", f->db, "-u", "admin", "user", "list");
	HAS(f->err, "not both");
	EXPECT(f, 1, "-h", "localhost", "user", "list");
	HAS(f->err, "-u ADMIN");
	EXPECT(f, 1, "-p", "99999", "-u", "a", "user", "list");
	EXPECT(f, 1, "-p", "12x", "-u", "a", "user", "list");
	EXPECT(f, 1, "--timeout", "0", "-u", "a", "user", "list");
	EXPECT(f, 1, "-u", "a", "--cert", "c.pem", "--key", "k.pem", "user", "list");
	HAS(f->err, "--cafile");
	EXPECT(f, 1, "-u", "a", "--cafile", "ca.pem", "--cert", "c.pem", "user", "list");
	EXPECT(f, 1, "--db", f->db, "kick", "alice");
	HAS(f->err, "running broker");
	EXPECT(f, 1, "-u", "admin", "-P", "x", "init", "root");
	HAS(f->err, "offline only");
	EXPECT(f, 1, "--db", f->db, "user", "del", "alice", "--admin");
	EXPECT(f, 1, "--db", f->db, "user", "list", "--password-stdin");
	EXPECT(f, 1, "--db", f->db, "user", "add", "x", "--password-stdin", "--generate");
	EXPECT(f, 1, "--db", f->db, "-P", "pw", "user", "list");
	EXPECT(f, 1, "--db", f->db, "user", "admin", "admin", "maybe");
	HAS(f->err, "on or off");
	EXPECT(f, 1, "--db", f->db, "--bogus", "user", "list");
	EXPECT(f, 1, "-h");
	HAS(f->err, "--help");
	/* No password source and stdin is not a terminal. */
	EXPECT(f, 1, "--db", f->db, "user", "add", "bob");
	HAS(f->err, "--password-stdin");
	f->in = "\n";
	EXPECT(f, 1, "--db", f->db, "user", "add", "bob", "--password-stdin");
	EXPECT(f, 1, "-u", "admin", "user", "list");       /* no login password */
	HAS(f->err, "MQIM_PASSWORD");
	/* Nothing of that changed the store. */
	EXPECT(f, 0, "--db", f->db, "user", "list");
	HASNT(f->out, "bob");
}

/* ---- init ---------------------------------------------------------------- */

static void init(void **state)
{
	struct fix *f = *state;
	struct stat sb;

	init_store(f);
	HAS(f->out, "created store");
	assert_int_equal(stat(f->db, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	check_password(f, "admin", "admin-pw");
	EXPECT(f, 0, "--db", f->db, "user", "show", "admin");
	HAS(f->out, "admin     yes");
	/* A store in use is never re-initialised. */
	f->in = "x\n";
	EXPECT(f, 2, "--db", f->db, "init", "root", "--password-stdin");
	HAS(f->err, "already holds");
	EXPECT(f, 0, "--db", f->db, "user", "list");
	HASNT(f->out, "root");
}

static void init_password_sources(void **state)
{
	struct fix *f = *state;
	char other[160], pw[64];
	char *p, *nl;
	cJSON *j;

	EXPECT(f, 0, "--db", f->db, "init", "admin", "-P", "from-flag");
	check_password(f, "admin", "from-flag");
	HASNT(f->out, "from-flag");
	unlink(f->db);
	f->env_pw = "from-env";
	EXPECT(f, 0, "--db", f->db, "init", "admin");
	check_password(f, "admin", "from-env");
	unlink(f->db);
	EXPECT(f, 0, "--db", f->db, "init", "admin", "--generate");
	p = strstr(f->out, "password of admin: ");
	assert_non_null(p);
	snprintf(pw, sizeof(pw), "%s", p + strlen("password of admin: "));
	nl = strchr(pw, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_int_equal(strlen(pw), 20);
	check_password(f, "admin", pw);
	/* --json carries the generated password in the object. */
	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	EXPECT(f, 0, "--db", other, "init", "root", "--generate", "--json");
	j = parse_json_out(f);
	assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "generatedPassword")));
	cJSON_Delete(j);
}

static void init_refusals(void **state)
{
	struct fix *f = *state;
	char junk[160];

	f->in = "x\n";
	EXPECT(f, 2, "--db", f->db, "init", "bad/name", "--password-stdin");
	HAS(f->err, "invalid username");
	assert_int_equal(access(f->db, F_OK), -1);          /* nothing created */
	snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
	write_text(junk, "this is not a database, but it is long enough to look like one..........");
	f->in = "x\n";
	EXPECT(f, 3, "--db", junk, "init", "admin", "--password-stdin");
	HAS(f->err, "not an SQLite database");
}

/* ---- the store cannot be used -------------------------------------------- */

static void unreachable(void **state)
{
	struct fix *f = *state;
	char junk[160], port[16];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int s;

	EXPECT(f, 3, "--db", f->db, "user", "list");
	HAS(f->err, "no such store");
	HAS(f->err, f->db);
	snprintf(junk, sizeof(junk), "%s/junk.db", f->dir);
	write_text(junk, "garbage garbage garbage garbage garbage garbage garbage garbage garbage");
	EXPECT(f, 3, "--db", junk, "user", "list");
	HAS(f->err, junk);
	/* A port nobody listens on (bound, then released). */
	s = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	snprintf(port, sizeof(port), "%d", ntohs(sa.sin_port));
	close(s);
	EXPECT(f, 3, "-h", "127.0.0.1", "-p", port, "-u", "admin", "-P", "x", "--timeout", "2",
	       "user", "list");
	HAS(f->err, "could not connect");
}

/* ---- users --------------------------------------------------------------- */

static void users(void **state)
{
	struct fix *f = *state;

	init_store(f);
	add_user(f, "alice", "alice-pw");
	HAS(f->out, "created user alice");
	check_password(f, "alice", "alice-pw");
	f->in = "other\n";
	EXPECT(f, 2, "--db", f->db, "user", "add", "alice", "--password-stdin");
	HAS(f->err, "user already exists");
	f->in = "pw\n";
	EXPECT(f, 2, "--db", f->db, "user", "add", "bad/name", "--password-stdin");
	HAS(f->err, "invalid username");
	f->in = "pw\n";
	EXPECT(f, 2, "--db", f->db, "user", "add", "_x", "--password-stdin");
	f->in = "pw\n";
	EXPECT(f, 0, "--db", f->db, "user", "add", "root2", "--password-stdin", "--admin");
	EXPECT(f, 0, "--db", f->db, "user", "show", "root2");
	HAS(f->out, "admin     yes");

	EXPECT(f, 0, "--db", f->db, "user", "show", "alice");
	HAS(f->out, "user      alice");
	HAS(f->out, "admin     no");
	HAS(f->out, "disabled  no");
	EXPECT(f, 2, "--db", f->db, "user", "show", "ghost");
	HAS(f->err, "user not found");

	f->in = "new-pw\n";
	EXPECT(f, 0, "--db", f->db, "user", "passwd", "alice", "--password-stdin");
	HAS(f->out, "changed the password of alice");
	check_password(f, "alice", "new-pw");
	f->in = "x\n";
	EXPECT(f, 2, "--db", f->db, "user", "passwd", "ghost", "--password-stdin");
	HAS(f->err, "user not found");

	EXPECT(f, 0, "--db", f->db, "user", "disable", "alice");
	HAS(f->out, "disabled user alice");
	EXPECT(f, 0, "--db", f->db, "user", "show", "alice");
	HAS(f->out, "disabled  yes");
	EXPECT(f, 0, "--db", f->db, "user", "enable", "alice");
	HAS(f->out, "enabled user alice");
	EXPECT(f, 2, "--db", f->db, "user", "disable", "ghost");
	EXPECT(f, 2, "--db", f->db, "user", "enable", "ghost");

	EXPECT(f, 0, "--db", f->db, "user", "admin", "alice", "on");
	HAS(f->out, "alice is now an admin");
	EXPECT(f, 0, "--db", f->db, "user", "admin", "alice", "off");
	HAS(f->out, "alice is no longer an admin");
	EXPECT(f, 2, "--db", f->db, "user", "admin", "ghost", "on");

	EXPECT(f, 0, "--db", f->db, "user", "list");
	HAS(f->out, "USER");
	HAS(f->out, "alice");
	HAS(f->out, "root2");

	EXPECT(f, 0, "--db", f->db, "user", "del", "alice");
	HAS(f->out, "deleted user alice");
	EXPECT(f, 2, "--db", f->db, "user", "del", "alice");
	HAS(f->err, "user not found");
	EXPECT(f, 2, "--db", f->db, "user", "del", "a b");
	HAS(f->err, "invalid username");
}

static void passwd_generate(void **state)
{
	struct fix *f = *state;
	char pw[64], *p, *nl;

	init_store(f);
	add_user(f, "alice", "alice-pw");
	EXPECT(f, 0, "--db", f->db, "user", "passwd", "alice", "--generate");
	p = strstr(f->out, "password of alice: ");
	assert_non_null(p);
	snprintf(pw, sizeof(pw), "%s", p + strlen("password of alice: "));
	nl = strchr(pw, '\n');
	assert_non_null(nl);
	*nl = '\0';
	check_password(f, "alice", pw);
	/* A refused command shows no generated password. */
	EXPECT(f, 2, "--db", f->db, "user", "passwd", "ghost", "--generate");
	HASNT(f->out, "password of");
}

/* ---- groups -------------------------------------------------------------- */

static void groups(void **state)
{
	struct fix *f = *state;

	init_store(f);
	add_user(f, "alice", "pw");
	add_user(f, "bob", "pw");
	EXPECT(f, 0, "--db", f->db, "group", "list");
	HAS(f->out, "(no groups)");
	EXPECT(f, 0, "--db", f->db, "group", "add", "team");
	HAS(f->out, "created group team");
	EXPECT(f, 2, "--db", f->db, "group", "add", "team");
	HAS(f->err, "group already exists");
	EXPECT(f, 2, "--db", f->db, "group", "add", "a+b");
	HAS(f->err, "invalid group");
	EXPECT(f, 0, "--db", f->db, "group", "list");
	HAS(f->out, "team");
	EXPECT(f, 0, "--db", f->db, "group", "member", "add", "team", "bob");
	HAS(f->out, "added bob to group team");
	EXPECT(f, 0, "--db", f->db, "group", "member", "add", "team", "alice");
	EXPECT(f, 2, "--db", f->db, "group", "member", "add", "team", "alice");
	HAS(f->err, "already a member");
	EXPECT(f, 2, "--db", f->db, "group", "member", "add", "team", "ghost");
	HAS(f->err, "user not found");
	EXPECT(f, 2, "--db", f->db, "group", "member", "add", "nogroup", "alice");
	HAS(f->err, "group not found");
	EXPECT(f, 0, "--db", f->db, "group", "show", "team");
	HAS(f->out, "members  alice, bob");
	EXPECT(f, 0, "--db", f->db, "user", "show", "bob");
	HAS(f->out, "groups    team");
	EXPECT(f, 0, "--db", f->db, "group", "member", "del", "team", "bob");
	HAS(f->out, "removed bob from group team");
	EXPECT(f, 2, "--db", f->db, "group", "member", "del", "team", "bob");
	HAS(f->err, "not a member");
	EXPECT(f, 2, "--db", f->db, "group", "show", "ghost");
	HAS(f->err, "group not found");
	EXPECT(f, 0, "--db", f->db, "group", "del", "team");
	HAS(f->out, "deleted group team");
	EXPECT(f, 2, "--db", f->db, "group", "del", "team");
	EXPECT(f, 0, "--db", f->db, "user", "show", "alice");
	HAS(f->out, "groups    -");
}

/* ---- --json -------------------------------------------------------------- */

static void json_output(void **state)
{
	struct fix *f = *state;
	cJSON *j, *r, *users;

	init_store(f);
	add_user(f, "alice", "pw");
	EXPECT(f, 0, "--db", f->db, "user", "list", "--json");
	j = parse_json_out(f);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "command")->valuestring, "listUsers");
	users = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "data"), "users");
	assert_int_equal(cJSON_GetArraySize(users), 2);
	assert_null(cJSON_GetObjectItem(r, "correlationData"));
	cJSON_Delete(j);

	EXPECT(f, 2, "--db", f->db, "user", "show", "ghost", "--json");
	j = parse_json_out(f);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "error")->valuestring, "user not found");
	cJSON_Delete(j);

	EXPECT(f, 0, "--db", f->db, "group", "add", "g", "--json");
	j = parse_json_out(f);
	cJSON_Delete(j);
	EXPECT(f, 0, "--db", f->db, "group", "show", "g", "--json");
	j = parse_json_out(f);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "data"), "group")->valuestring, "g");
	cJSON_Delete(j);
}

/* ---- import -------------------------------------------------------------- */

static void import_ok(void **state)
{
	struct fix *f = *state;
	char path[160];

	init_store(f);
	snprintf(path, sizeof(path), "%s/import.txt", f->dir);
	write_text(path,
		   "name,password\n"
		   "# a comment, then a blank line\n"
		   "\n"
		   "carol,carol pw\n"
		   "dave,\"da,\"\"ve\"\r\n"
		   "mosq7:" MOSQ7 "\n"
		   "mosq6:" MOSQ6 "\n");
	EXPECT(f, 0, "--db", f->db, "user", "import", path);
	HAS(f->out, "imported 4 users");
	HAS(f->out, "2 with the password hash kept");
	check_password(f, "carol", "carol pw");
	check_password(f, "dave", "da,\"ve");
	check_password(f, "mosq7", "s3cret pass");
	check_password(f, "mosq6", "s3cret pass");
	HASNT(f->out, "carol pw");
	HASNT(f->err, "carol pw");

	/* Again: every account exists now, each refusal is reported. */
	EXPECT(f, 2, "--db", f->db, "user", "import", path);
	HAS(f->err, "user already exists");
	HAS(f->out, "imported 0 of 4 users");
	/* From stdin, with --json. */
	f->in = "erin,e-pw\nfrank,f-pw\n";
	EXPECT(f, 0, "--db", f->db, "user", "import", "-", "--json");
	cJSON_Delete(parse_json_out(f));
	check_password(f, "frank", "f-pw");
}

static void import_refused(void **state)
{
	struct fix *f = *state;
	static const char *const bad[] = {
		"ok,pw\nbad name,pw\n",                     /* invalid name, line 2 */
		"ok,pw\nnopw,\n",                           /* empty password */
		"ok,pw\nbcrypt:$2b$10$abcdefghijklmnopqrstuv\n", /* unverifiable hash */
		"ok,pw\nplain:secret\n",                    /* unhashed */
		"ok,pw\njustaname\n",                       /* no separator */
		"ok,pw\nq,\"unbalanced\n",                  /* bad quote */
		"# nothing\n",                              /* no accounts */
	};
	char path[160];

	init_store(f);
	snprintf(path, sizeof(path), "%s/import.txt", f->dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_text(path, bad[i]);
		EXPECT(f, 1, "--db", f->db, "user", "import", path);
		if (i < 6)
			HAS(f->err, ":2:");
		HASNT(f->err, "secret");
	}
	EXPECT(f, 1, "--db", f->db, "user", "import", "/nonexistent/file");
	HAS(f->err, "cannot read");
	/* Nothing was imported by any of them. */
	EXPECT(f, 0, "--db", f->db, "user", "list");
	HASNT(f->out, "ok");
}

/* ---- token issue ---------------------------------------------------------- */

/* Decode the payload (middle part) of a JWT into buf. */
static void jwt_payload(const char *token, char *buf, size_t len)
{
	const char *p = strchr(token, '.'), *end;
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	assert_non_null(p);
	end = strchr(++p, '.');
	assert_non_null(end);
	for (; p < end && n + 1 < len; p++) {
		const char *al = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *q = strchr(al, *p);
		assert_non_null(q);
		acc = (acc << 6) | (uint32_t)(q - al);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[n++] = (char)(acc >> bits);
		}
	}
	buf[n] = '\0';
}

static void token_issue(void **state)
{
	struct fix *f = *state;
	char secret[160], payload[512];
	cJSON *j, *claims;
	long iat;

	snprintf(secret, sizeof(secret), "%s/junk.db", f->dir);   /* removed at teardown */
	write_text(secret, "0123456789abcdef0123456789abcdef\n");
	chmod(secret, 0600);
	EXPECT(f, 0, "token", "issue", "alice", "--secret-file", secret, "--ttl", "600");
	assert_int_equal(strspn(f->out, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					"0123456789-_."), strlen(f->out) - 1);
	jwt_payload(f->out, payload, sizeof(payload));
	claims = cJSON_Parse(payload);
	assert_non_null(claims);
	assert_string_equal(cJSON_GetObjectItem(claims, "sub")->valuestring, "alice");
	assert_string_equal(cJSON_GetObjectItem(claims, "aud")->valuestring, "mqim");
	iat = (long)cJSON_GetObjectItem(claims, "iat")->valuedouble;
	assert_int_equal((long)cJSON_GetObjectItem(claims, "exp")->valuedouble, iat + 600);
	assert_null(cJSON_GetObjectItem(claims, "iss"));
	cJSON_Delete(claims);

	EXPECT(f, 0, "token", "issue", "bob", "--secret-file", secret, "--iss", "me",
	       "--aud", "chat", "--json");
	j = cJSON_Parse(f->out);
	assert_non_null(j);
	jwt_payload(cJSON_GetObjectItem(j, "token")->valuestring, payload, sizeof(payload));
	cJSON_Delete(j);
	claims = cJSON_Parse(payload);
	assert_string_equal(cJSON_GetObjectItem(claims, "iss")->valuestring, "me");
	assert_string_equal(cJSON_GetObjectItem(claims, "aud")->valuestring, "chat");
	cJSON_Delete(claims);

	EXPECT(f, 1, "token", "issue", "alice");                      /* no secret */
	HAS(f->err, "--secret-file");
	EXPECT(f, 1, "token", "issue", "a/b", "--secret-file", secret);
	HAS(f->err, "invalid username");
	EXPECT(f, 1, "--db", f->db, "user", "list", "--ttl", "5");
	chmod(secret, 0644);
	EXPECT(f, 1, "token", "issue", "alice", "--secret-file", secret);
	HAS(f->err, "chmod 600");
	EXPECT(f, 1, "token", "issue", "alice", "--secret-file", "/nonexistent");
	EXPECT(f, 1, "-u", "admin", "-P", "x", "--insecure", "user", "list");
	HAS(f->err, "--cafile");
}

/* ---- passwords stay secret ----------------------------------------------- */

static void never_prints_passwords(void **state)
{
	struct fix *f = *state;

	f->in = "Sup3r-Secret-1\n";
	EXPECT(f, 0, "--db", f->db, "init", "admin", "--password-stdin", "--json");
	HASNT(f->out, "Sup3r");
	HASNT(f->err, "Sup3r");
	f->in = "Sup3r-Secret-2\n";
	EXPECT(f, 0, "--db", f->db, "user", "add", "alice", "--password-stdin", "--json");
	HASNT(f->out, "Sup3r");
	f->in = "Sup3r-Secret-3\n";
	EXPECT(f, 2, "--db", f->db, "user", "add", "alice", "--password-stdin", "--json");
	HASNT(f->out, "Sup3r");
	HASNT(f->err, "Sup3r");
	EXPECT(f, 0, "--db", f->db, "user", "show", "alice", "--json");
	HASNT(f->out, "argon2");
	EXPECT(f, 0, "--db", f->db, "user", "list", "--json");
	HASNT(f->out, "argon2");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(help),
		T(usage_errors),
		T(init),
		T(init_password_sources),
		T(init_refusals),
		T(unreachable),
		T(users),
		T(passwd_generate),
		T(groups),
		T(json_output),
		T(import_ok),
		T(import_refused),
		T(token_issue),
		T(never_prints_passwords),
	};
#undef T

	return cmocka_run_group_tests_name("mqimctl_cli", tests, NULL, NULL);
}
