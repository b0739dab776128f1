/* test_mqimctl.c - the built mqimctl binary in online mode (-h -p -u)
 * against a real broker with the plugin: every command, the three ways the
 * admin's password is given and --password-stdin for the new one, --json,
 * import of CSV and Mosquitto password lines, token issue, exit statuses
 * (0 done, 1 usage, 2 refused, 3 unreachable), an offline change
 * (--db) picked up after SIGHUP, and --cafile against a TLS listener.
 * Each effect is checked through a real login, a subscription or a
 * $CONTROL query of the test's own, not through mqimctl's word for it.
 *
 * One broker for the file, with admin "admin" and a JWT secret; each test
 * uses user and group names of its own.  The TLS test starts a second
 * broker.  mqimctl runs by fork/exec (no shell), killed after RUN_TIMEOUT_S.
 * The binary is $MQIM_BUILD_DIR/mqimctl (default build/mqimctl); the TLS
 * test runs tools/mqim-certs.sh, so run from the top of the tree.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "tbroker.h"
#include "tclient.h"
#include "tcontrol.h"

#define NOT_AUTHORIZED 0x87
#define RUN_TIMEOUT_S  30

#define ADMIN_PW "Admin-Ctl-Pw-4242"
#define JWT_SECRET "mqimctl-test-secret-0123456789abcdef"

/* mosquitto_passwd hashes of "s3cret pass" ($7$ default, $6$ -H sha512). */
#define MOSQ7 "$7$101$AQIDBAUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr89dDHWD70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw=="
#define MOSQ6 "$6$bXFpbS1zYWx0LTEy$TBIkA1SJuUXyAja6TD+Bq3NGetxmjTzKWd50jAMDFYLvL9yK543g6acRxuHBn6v9onr/eryiTHWpJI8YqWZiBQ=="
#define MOSQ_PW "s3cret pass"

struct env {
	struct tbroker b;
	char port[16];
	char bin[PATH_MAX];
	char secret[400];          /* the broker's JWT secret file */
	char out[32768];
	char err[16384];
	const char *in;            /* stdin for the next run; NULL: /dev/null */
	const char *env_pw;        /* MQIM_PASSWORD for the next run; NULL: unset */
	struct tclient *admin;     /* the test's own $CONTROL session */
};

static void find_binary(char *bin, size_t len)
{
	const char *dir = getenv("MQIM_BUILD_DIR");

	snprintf(bin, len, "%s/mqimctl", dir ? dir : "build");
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t n = strlen(text);
	int ok = fd >= 0 && write(fd, text, n) == (ssize_t)n;

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

static void slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : 0;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

static int group_setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char conf[600];

	if (!e)
		return -1;
	find_binary(e->bin, sizeof(e->bin));
	if (access(e->bin, X_OK) != 0) {
		fprintf(stderr, "%s is not built (set MQIM_BUILD_DIR)\n", e->bin);
		free(e);
		return -1;
	}
	if (tbroker_init(&e->b, NULL) != 0)
		goto fail;
	snprintf(e->secret, sizeof(e->secret), "%s/jwt.secret", e->b.dir);
	snprintf(conf, sizeof(conf), "plugin_opt_jwt_secret_file %s\n", e->secret);
	if (strlen(conf) >= sizeof(e->b.extra_conf) ||
	    write_file(e->secret, JWT_SECRET "\n", 0600) != 0)
		goto fail;
	strcpy(e->b.extra_conf, conf);
	if (tbroker_add_user(&e->b, "admin", ADMIN_PW, true) != 0 || tbroker_start(&e->b) != 0)
		goto fail;
	snprintf(e->port, sizeof(e->port), "%d", e->b.port);
	*state = e;
	return 0;
fail:
	tbroker_cleanup(&e->b);
	free(e);
	return -1;
}

static int group_teardown(void **state)
{
	struct env *e = *state;
	int rc = tbroker_cleanup(&e->b);

	free(e);
	return rc == 0 ? 0 : -1;
}

/* Each test gets a $CONTROL session of its own. */
static int setup(void **state)
{
	struct env *e = *state;

	e->admin = tclient_login(e->b.port, "admin/test", "admin", ADMIN_PW);
	if (!e->admin || tcontrol_prepare(e->admin) != 1)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	if (e->admin) {
		tclient_disconnect(e->admin);
		tclient_free(e->admin);
		e->admin = NULL;
	}
	return 0;
}

/* ---- running mqimctl ------------------------------------------------------ */

static void file_in_dir(const struct env *e, const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", e->b.dir, name);
}

/* Child side: stdin, stdout and stderr from and to files, then exec. */
static void child(struct env *e, char **argv)
{
	char p[400];
	int fd;

	file_in_dir(e, "ctl.in", p, sizeof(p));
	fd = open(e->in ? p : "/dev/null", O_RDONLY);
	dup2(fd, 0);
	file_in_dir(e, "ctl.out", p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	file_in_dir(e, "ctl.err", p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	if (e->env_pw)
		setenv("MQIM_PASSWORD", e->env_pw, 1);
	else
		unsetenv("MQIM_PASSWORD");
	execv(e->bin, argv);
	_exit(127);
}

/* Wait for pid at most RUN_TIMEOUT_S; a run that hangs is killed and fails
 * the test.  Returns the wait status. */
static int wait_bounded(pid_t pid)
{
	struct timespec step = { 0, 5 * 1000 * 1000 };
	time_t deadline = time(NULL) + RUN_TIMEOUT_S;
	int status;
	pid_t got;

	while ((got = waitpid(pid, &status, WNOHANG)) == 0 && time(NULL) < deadline)
		nanosleep(&step, NULL);
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("mqimctl did not finish within %d s", RUN_TIMEOUT_S);
	}
	assert_int_equal(got, pid);
	return status;
}

/* Run mqimctl with the NULL-terminated arguments; returns its exit status
 * (-1 when it died of a signal), its output in e->out / e->err.  e->in and
 * e->env_pw apply to this run only. */
static int ctl(struct env *e, ...)
{
	char *argv[40];
	char p[400];
	int argc = 0, status;
	va_list ap;
	pid_t pid;

	argv[argc++] = e->bin;
	va_start(ap, e);
	while (argc < 39 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	if (e->in) {
		file_in_dir(e, "ctl.in", p, sizeof(p));
		assert_int_equal(write_file(p, e->in, 0600), 0);
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(e, argv);
	status = wait_bounded(pid);
	file_in_dir(e, "ctl.out", p, sizeof(p));
	slurp(p, e->out, sizeof(e->out));
	file_in_dir(e, "ctl.err", p, sizeof(p));
	slurp(p, e->err, sizeof(e->err));
	e->in = NULL;
	e->env_pw = NULL;
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
#define EXPECT(e, want, ...)                                                 \
	do {                                                                 \
		int got_ = ctl((e), __VA_ARGS__, (char *)NULL);              \
		if (got_ != (want))                                          \
			fail_msg("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", \
				 got_, (want), (e)->out, (e)->err);          \
	} while (0)

/* The connection options of an online run, password not included. */
#define AT(e) "-h", "127.0.0.1", "-p", (e)->port, "--timeout", "5"
/* ... logged in as the file's admin with -P. */
#define ONLINE(e) AT(e), "-u", "admin", "-P", ADMIN_PW

/* ---- checking effects ----------------------------------------------------- */

/* The CONNACK code of a fresh login (0 = in), the client closed again. */
/* A login's CONNACK code.  A connection closed without one is the broker's
 * "hashing budget spent, retry" (docs/plugin.md): retried after a second,
 * as a client would; it happens when the broker is slow (make valgrind). */
static int login_code(const struct env *e, const char *user, const char *pw)
{
	int rc = TCLIENT_LOST;
	for (int attempt = 0; attempt < 10 && rc == TCLIENT_LOST; attempt++) {
		if (attempt)
			sleep(1);
		struct tclient *c = tclient_new(e->b.port, user);
		assert_non_null(c);
		rc = tclient_connect(c, user, pw);
		if (rc == 0)
			tclient_disconnect(c);
		tclient_free(c);
	}
	return rc;
}

#define CAN_LOGIN(e, u, p)   assert_int_equal(login_code((e), (u), (p)), 0)
#define CANNOT_LOGIN(e, u, p) assert_int_equal(login_code((e), (u), (p)), NOT_AUTHORIZED)

/* getUser through the test's own $CONTROL session; the "data" object of the
 * answer (into *resp, freed by the caller), or NULL when it was refused. */
static const cJSON *get_user(struct env *e, const char *user, cJSON **resp)
{
	*resp = tcontrol_callf(e->admin, "{\"command\":\"getUser\",\"username\":\"%s\"}", user);
	assert_non_null(*resp);
	return cJSON_GetObjectItemCaseSensitive(*resp, "data");
}

static bool user_flag(struct env *e, const char *user, const char *flag)
{
	cJSON *resp;
	const cJSON *d = get_user(e, user, &resp);
	bool v;

	if (!d)
		fail_msg("getUser %s refused: %s", user, tcontrol_error(resp));
	v = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, flag));
	cJSON_Delete(resp);
	return v;
}

static bool user_exists(struct env *e, const char *user)
{
	cJSON *resp;
	bool found = get_user(e, user, &resp) != NULL;

	if (!found)
		assert_string_equal(tcontrol_error(resp), "user not found");
	cJSON_Delete(resp);
	return found;
}

/* Members of group gid as "a,b,c"; "!" plus the error when refused. */
static void group_members(struct env *e, const char *gid, char *buf, size_t len)
{
	cJSON *r = tcontrol_callf(e->admin, "{\"command\":\"getGroup\",\"group\":\"%s\"}", gid);
	const cJSON *m;
	size_t n = 0;

	assert_non_null(r);
	buf[0] = '\0';
	if (tcontrol_error(r)) {
		snprintf(buf, len, "!%s", tcontrol_error(r));
		cJSON_Delete(r);
		return;
	}
	cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItem(r, "data"),
							       "members")) {
		assert_true(cJSON_IsString(m));
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", m->valuestring);
		assert_true(n < len);
	}
	cJSON_Delete(r);
}

/* The SUBACK code user gets for filter on a fresh session. */
static int subscribe_code(const struct env *e, const char *user, const char *pw,
			  const char *filter)
{
	char id[80];
	struct tclient *c;
	int rc;

	snprintf(id, sizeof(id), "%s/sub", user);
	c = tclient_login(e->b.port, id, user, pw);
	assert_non_null(c);
	rc = tclient_subscribe(c, filter, 1);
	tclient_disconnect(c);
	tclient_free(c);
	return rc;
}

/* The line after "password of USER: " in e->out, into pw. */
static void generated_password(const struct env *e, const char *user, char *pw, size_t len)
{
	char tag[96], *p, *nl;

	snprintf(tag, sizeof(tag), "password of %s: ", user);
	p = strstr(e->out, tag);
	if (!p)
		fail_msg("no generated password in:\n%s", e->out);
	snprintf(pw, len, "%s", p + strlen(tag));
	nl = strchr(pw, '\n');
	assert_non_null(nl);
	*nl = '\0';
	assert_int_equal(strlen(pw), 20);
}

static cJSON *json_out(const struct env *e)
{
	cJSON *j = cJSON_Parse(e->out);

	if (!j)
		fail_msg("stdout is not JSON:\n%s", e->out);
	assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "responses")));
	return j;
}

/* ---- users ----------------------------------------------------------------- */

static void user_add_passwd_del(void **state)
{
	struct env *e = *state;

	e->in = "Ua-First-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "ua", "--password-stdin");
	HAS(e->out, "created user ua");
	CAN_LOGIN(e, "ua", "Ua-First-Pw");
	CANNOT_LOGIN(e, "ua", "Ua-Wrong-Pw");
	assert_false(user_flag(e, "ua", "admin"));
	assert_false(user_flag(e, "ua", "disabled"));

	e->in = "Ua-Other-Pw\n";
	EXPECT(e, 2, ONLINE(e), "user", "add", "ua", "--password-stdin");
	HAS(e->err, "user already exists");
	CAN_LOGIN(e, "ua", "Ua-First-Pw");                /* unchanged */

	e->in = "Ua-Second-Pw\r\n";                       /* \r\n is dropped */
	EXPECT(e, 0, ONLINE(e), "user", "passwd", "ua", "--password-stdin");
	HAS(e->out, "changed the password of ua");
	CAN_LOGIN(e, "ua", "Ua-Second-Pw");
	CANNOT_LOGIN(e, "ua", "Ua-First-Pw");
	e->in = "x\n";
	EXPECT(e, 2, ONLINE(e), "user", "passwd", "ua-ghost", "--password-stdin");
	HAS(e->err, "user not found");

	EXPECT(e, 0, ONLINE(e), "user", "list");
	HAS(e->out, "USER");
	HAS(e->out, "ua ");
	HAS(e->out, "admin");
	EXPECT(e, 0, ONLINE(e), "user", "show", "ua");
	HAS(e->out, "user      ua");
	HAS(e->out, "admin     no");
	HAS(e->out, "groups    -");
	HASNT(e->out, "argon2");
	EXPECT(e, 2, ONLINE(e), "user", "show", "ua-ghost");
	HAS(e->err, "user not found");

	EXPECT(e, 0, ONLINE(e), "user", "del", "ua");
	HAS(e->out, "deleted user ua");
	assert_false(user_exists(e, "ua"));
	CANNOT_LOGIN(e, "ua", "Ua-Second-Pw");
	EXPECT(e, 2, ONLINE(e), "user", "del", "ua");
	HAS(e->err, "user not found");
}

static void user_bad_names(void **state)
{
	struct env *e = *state;
	static const char *const bad[] = {
		"a/b", "a+b", "#", "$x", "a b", "_lead", "h\xc3\xa9",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", /* 65 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		e->in = "pw\n";
		EXPECT(e, 2, ONLINE(e), "user", "add", (char *)bad[i], "--password-stdin");
		HAS(e->err, "invalid username");
	}
	EXPECT(e, 2, ONLINE(e), "group", "add", "a+b");
	HAS(e->err, "invalid group");
	EXPECT(e, 2, ONLINE(e), "user", "show", "a/b");
	HAS(e->err, "invalid username");
	/* 64 characters is still a name. */
	e->in = "Long-Name-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add",
	       "L234567890123456789012345678901234567890123456789012345678901234",
	       "--password-stdin");
	CAN_LOGIN(e, "L234567890123456789012345678901234567890123456789012345678901234",
		  "Long-Name-Pw");
}

static void user_disable_enable(void **state)
{
	struct env *e = *state;
	struct tclient *live;

	e->in = "Ud-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "ud", "--password-stdin");
	live = tclient_login(e->b.port, "ud/phone", "ud", "Ud-Pw");
	assert_non_null(live);

	EXPECT(e, 0, ONLINE(e), "user", "disable", "ud");
	HAS(e->out, "disabled user ud");
	assert_true(user_flag(e, "ud", "disabled"));
	CANNOT_LOGIN(e, "ud", "Ud-Pw");
	/* docs/protocol.md: disableUser also closes the user's connections. */
	assert_true(tclient_wait_disconnected(live, 3000));
	tclient_free(live);
	EXPECT(e, 0, ONLINE(e), "user", "show", "ud");
	HAS(e->out, "disabled  yes");

	EXPECT(e, 0, ONLINE(e), "user", "enable", "ud");
	HAS(e->out, "enabled user ud");
	assert_false(user_flag(e, "ud", "disabled"));
	CAN_LOGIN(e, "ud", "Ud-Pw");
	EXPECT(e, 2, ONLINE(e), "user", "disable", "ud-ghost");
	HAS(e->err, "user not found");
	EXPECT(e, 2, ONLINE(e), "user", "enable", "ud-ghost");
}

static void user_admin_on_off(void **state)
{
	struct env *e = *state;

	e->in = "Uad-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "uad", "--password-stdin");
	/* Not an admin: the broker refuses its mqimctl. */
	EXPECT(e, 2, AT(e), "-u", "uad", "-P", "Uad-Pw", "user", "list");
	HAS(e->err, "an admin?");

	EXPECT(e, 0, ONLINE(e), "user", "admin", "uad", "on");
	HAS(e->out, "uad is now an admin");
	assert_true(user_flag(e, "uad", "admin"));
	EXPECT(e, 0, AT(e), "-u", "uad", "-P", "Uad-Pw", "user", "list");
	HAS(e->out, "uad");

	EXPECT(e, 0, ONLINE(e), "user", "admin", "uad", "off");
	HAS(e->out, "uad is no longer an admin");
	assert_false(user_flag(e, "uad", "admin"));
	EXPECT(e, 2, AT(e), "-u", "uad", "-P", "Uad-Pw", "group", "list");

	EXPECT(e, 2, ONLINE(e), "user", "admin", "uad-ghost", "on");
	HAS(e->err, "user not found");
	EXPECT(e, 1, ONLINE(e), "user", "admin", "uad", "maybe");
	assert_false(user_flag(e, "uad", "admin"));
}

static void user_add_admin_generate(void **state)
{
	struct env *e = *state;
	char pw[64];

	EXPECT(e, 0, ONLINE(e), "user", "add", "uops", "--admin", "--generate");
	HAS(e->out, "created user uops");
	generated_password(e, "uops", pw, sizeof(pw));
	assert_true(user_flag(e, "uops", "admin"));
	CAN_LOGIN(e, "uops", pw);
	/* The new admin can drive mqimctl itself. */
	EXPECT(e, 0, AT(e), "-u", "uops", "-P", pw, "user", "show", "uops");
	HAS(e->out, "admin     yes");

	EXPECT(e, 0, ONLINE(e), "user", "passwd", "uops", "--generate");
	{
		char pw2[64];
		generated_password(e, "uops", pw2, sizeof(pw2));
		assert_string_not_equal(pw, pw2);
		CAN_LOGIN(e, "uops", pw2);
		CANNOT_LOGIN(e, "uops", pw);
	}
	/* A refused command shows no password. */
	EXPECT(e, 2, ONLINE(e), "user", "add", "uops", "--generate");
	HASNT(e->out, "password of");
}

/* ---- where the admin's password comes from -------------------------------- */

static void login_password_sources(void **state)
{
	struct env *e = *state;

	EXPECT(e, 0, AT(e), "-u", "admin", "-P", ADMIN_PW, "user", "show", "admin");
	HAS(e->out, "admin     yes");
	EXPECT(e, 0, AT(e), "-u", "admin", "--password", ADMIN_PW, "user", "show", "admin");
	e->env_pw = ADMIN_PW;
	EXPECT(e, 0, AT(e), "-u", "admin", "user", "show", "admin");
	HAS(e->out, "admin     yes");
	/* -P wins over the environment. */
	e->env_pw = "not-the-password";
	EXPECT(e, 0, AT(e), "-u", "admin", "-P", ADMIN_PW, "user", "show", "admin");
	/* Online, --password-stdin is the new user's password, not the login. */
	e->env_pw = ADMIN_PW;
	e->in = "Src-New-Pw\n";
	EXPECT(e, 0, AT(e), "-u", "admin", "user", "add", "usrc", "--password-stdin");
	CAN_LOGIN(e, "usrc", "Src-New-Pw");
	CANNOT_LOGIN(e, "usrc", ADMIN_PW);
	/* No source at all (stdin is not a terminal): a usage error, no run. */
	EXPECT(e, 1, AT(e), "-u", "admin", "user", "list");
	HAS(e->err, "MQIM_PASSWORD");
	e->env_pw = ADMIN_PW;
	EXPECT(e, 1, AT(e), "-u", "admin", "user", "add", "usrc2");   /* no new password */
	assert_false(user_exists(e, "usrc2"));
	e->env_pw = ADMIN_PW;
	e->in = "\n";
	EXPECT(e, 1, AT(e), "-u", "admin", "user", "add", "usrc2", "--password-stdin");
	assert_false(user_exists(e, "usrc2"));
}

/* ---- exit statuses --------------------------------------------------------- */

/* A loopback port nobody listens on: bound, then released. */
static int unused_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	close(s);
	return ntohs(sa.sin_port);
}

static void exit_statuses(void **state)
{
	struct env *e = *state;
	char dead[16];

	/* 1: usage errors, before anything is sent. */
	EXPECT(e, 1, ONLINE(e), "user", "add");
	EXPECT(e, 1, ONLINE(e), "frobnicate");
	EXPECT(e, 1, ONLINE(e), "init", "root");
	HAS(e->err, "offline only");
	EXPECT(e, 1, AT(e), "-P", ADMIN_PW, "user", "list");     /* no -u */
	/* 2: refused by the broker. */
	e->in = "x\n";
	EXPECT(e, 2, ONLINE(e), "user", "add", "admin", "--password-stdin");
	HAS(e->err, "user already exists");
	EXPECT(e, 2, ONLINE(e), "group", "show", "nogroup");
	HAS(e->err, "group not found");
	/* docs/admin.md: a refused login is 2, with the reason. */
	EXPECT(e, 2, AT(e), "-u", "admin", "-P", "Wrong-Admin-Pw", "user", "list");
	HAS(e->err, "refused the login of admin");
	HASNT(e->err, "Wrong-Admin-Pw");
	EXPECT(e, 2, AT(e), "-u", "nobody", "-P", "x", "user", "list");
	/* 3: nobody listening (a port bound and released a moment ago). */
	snprintf(dead, sizeof(dead), "%d", unused_port());
	EXPECT(e, 3, "-h", "127.0.0.1", "-p", dead, "--timeout", "3", "-u", "admin",
	       "-P", ADMIN_PW, "user", "list");
	HAS(e->err, "could not connect");
	/* A login after all those refusals still works (no lockout left). */
	EXPECT(e, 0, ONLINE(e), "user", "show", "admin");
}

/* ---- groups ---------------------------------------------------------------- */

static void groups(void **state)
{
	struct env *e = *state;
	char members[256];

	e->in = "Ga-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "ga", "--password-stdin");
	e->in = "Gb-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "gb", "--password-stdin");

	EXPECT(e, 0, ONLINE(e), "group", "add", "gteam");
	HAS(e->out, "created group gteam");
	group_members(e, "gteam", members, sizeof(members));
	assert_string_equal(members, "");
	EXPECT(e, 2, ONLINE(e), "group", "add", "gteam");
	HAS(e->err, "group already exists");
	EXPECT(e, 0, ONLINE(e), "group", "list");
	HAS(e->out, "gteam\n");

	assert_int_equal(subscribe_code(e, "ga", "Ga-Pw", "im/g/gteam"), NOT_AUTHORIZED);
	EXPECT(e, 0, ONLINE(e), "group", "member", "add", "gteam", "ga");
	HAS(e->out, "added ga to group gteam");
	EXPECT(e, 0, ONLINE(e), "group", "member", "add", "gteam", "gb");
	group_members(e, "gteam", members, sizeof(members));
	assert_string_equal(members, "ga,gb");
	assert_int_equal(subscribe_code(e, "ga", "Ga-Pw", "im/g/gteam"), 1);
	EXPECT(e, 2, ONLINE(e), "group", "member", "add", "gteam", "ga");
	HAS(e->err, "already a member");
	EXPECT(e, 2, ONLINE(e), "group", "member", "add", "gteam", "g-ghost");
	HAS(e->err, "user not found");
	EXPECT(e, 2, ONLINE(e), "group", "member", "add", "g-nogroup", "ga");
	HAS(e->err, "group not found");

	EXPECT(e, 0, ONLINE(e), "group", "show", "gteam");
	HAS(e->out, "group    gteam");
	HAS(e->out, "members  ga, gb");
	EXPECT(e, 0, ONLINE(e), "user", "show", "ga");
	HAS(e->out, "groups    gteam");

	EXPECT(e, 0, ONLINE(e), "group", "member", "del", "gteam", "ga");
	HAS(e->out, "removed ga from group gteam");
	group_members(e, "gteam", members, sizeof(members));
	assert_string_equal(members, "gb");
	assert_int_equal(subscribe_code(e, "ga", "Ga-Pw", "im/g/gteam"), NOT_AUTHORIZED);
	EXPECT(e, 2, ONLINE(e), "group", "member", "del", "gteam", "ga");
	HAS(e->err, "not a member");

	EXPECT(e, 0, ONLINE(e), "group", "del", "gteam");
	HAS(e->out, "deleted group gteam");
	group_members(e, "gteam", members, sizeof(members));
	assert_string_equal(members, "!group not found");
	assert_int_equal(subscribe_code(e, "gb", "Gb-Pw", "im/g/gteam"), NOT_AUTHORIZED);
	EXPECT(e, 2, ONLINE(e), "group", "del", "gteam");
	HAS(e->err, "group not found");
	EXPECT(e, 2, ONLINE(e), "group", "show", "gteam");
}

/* ---- kick ------------------------------------------------------------------ */

static void kick(void **state)
{
	struct env *e = *state;
	struct tclient *phone, *laptop;

	e->in = "Uk-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "uk", "--password-stdin");
	phone = tclient_login(e->b.port, "uk/phone", "uk", "Uk-Pw");
	laptop = tclient_login(e->b.port, "uk/laptop", "uk", "Uk-Pw");
	assert_non_null(phone);
	assert_non_null(laptop);

	EXPECT(e, 0, ONLINE(e), "kick", "uk");
	HAS(e->out, "kicked uk");
	assert_true(tclient_wait_disconnected(phone, 3000));
	assert_true(tclient_wait_disconnected(laptop, 3000));
	tclient_free(phone);
	tclient_free(laptop);
	/* The account is unchanged: uk may come back. */
	CAN_LOGIN(e, "uk", "Uk-Pw");
	EXPECT(e, 2, ONLINE(e), "kick", "uk-ghost");
	HAS(e->err, "user not found");
}

/* ---- import ---------------------------------------------------------------- */

static void import(void **state)
{
	struct env *e = *state;
	char path[400];

	file_in_dir(e, "import.csv", path, sizeof(path));
	assert_int_equal(write_file(path,
				    "name,password\n"
				    "# comment\n"
				    "\n"
				    "icsv,Icsv Pw 1\n"
				    "iquote,\"a,b \"\"q\"\"\"\r\n"
				    "imosq7:" MOSQ7 "\n"
				    "imosq6:" MOSQ6 "\n", 0600), 0);
	EXPECT(e, 0, ONLINE(e), "user", "import", path);
	HAS(e->out, "imported 4 users (2 with the password hash kept as it was)");
	HASNT(e->out, "Icsv Pw 1");
	HASNT(e->err, "Icsv Pw 1");
	CAN_LOGIN(e, "icsv", "Icsv Pw 1");
	CAN_LOGIN(e, "iquote", "a,b \"q\"");
	/* The Mosquitto users keep their passwords. */
	CAN_LOGIN(e, "imosq7", MOSQ_PW);
	CAN_LOGIN(e, "imosq6", MOSQ_PW);
	CANNOT_LOGIN(e, "imosq7", "s3cret");
	assert_false(user_flag(e, "imosq7", "admin"));

	/* Again: every account exists; each refusal reported, status 2. */
	EXPECT(e, 2, ONLINE(e), "user", "import", path);
	HAS(e->err, "user already exists");
	HAS(e->out, "imported 0 of 4 users");

	/* A mix of new and existing accounts, from stdin, --json. */
	e->in = "icsv,other\nistdin:" MOSQ7 "\n";
	EXPECT(e, 2, ONLINE(e), "user", "import", "-", "--json");
	{
		cJSON *j = json_out(e), *r = cJSON_GetObjectItem(j, "responses");
		assert_int_equal(cJSON_GetArraySize(r), 2);
		assert_string_equal(tcontrol_error(cJSON_GetArrayItem(r, 0)), "user already exists");
		assert_null(tcontrol_error(cJSON_GetArrayItem(r, 1)));
		cJSON_Delete(j);
	}
	CAN_LOGIN(e, "istdin", MOSQ_PW);
	CAN_LOGIN(e, "icsv", "Icsv Pw 1");

	/* An unverifiable hash stops the whole file before anything is sent. */
	assert_int_equal(write_file(path, "inew,pw\nibcrypt:$2b$10$abcdefghijklmnopqrstuv\n",
				    0600), 0);
	EXPECT(e, 1, ONLINE(e), "user", "import", path);
	HAS(e->err, ":2:");
	assert_false(user_exists(e, "inew"));
}

/* Over 64 accounts go in several requests (docs/admin.md). */
static void import_batches(void **state)
{
	struct env *e = *state;
	char path[400], line[160], *text = calloc(1, 10000);
	cJSON *r;

	assert_non_null(text);
	for (int i = 0; i < 70; i++) {
		snprintf(line, sizeof(line), "ib%02d:%s\n", i, MOSQ6);
		strcat(text, line);
	}
	file_in_dir(e, "batch.txt", path, sizeof(path));
	assert_int_equal(write_file(path, text, 0600), 0);
	free(text);
	EXPECT(e, 0, ONLINE(e), "user", "import", path);
	HAS(e->out, "imported 70 users");
	assert_true(user_exists(e, "ib00"));
	assert_true(user_exists(e, "ib63"));
	assert_true(user_exists(e, "ib64"));
	assert_true(user_exists(e, "ib69"));
	CAN_LOGIN(e, "ib69", MOSQ_PW);
	r = tcontrol_call(e->admin, "{\"command\":\"listUsers\"}");
	assert_non_null(r);
	{
		int n = 0;
		const cJSON *u;
		cJSON_ArrayForEach(u, cJSON_GetObjectItem(cJSON_GetObjectItem(r, "data"), "users"))
			n += strncmp(cJSON_GetObjectItem(u, "username")->valuestring, "ib", 2) == 0;
		assert_int_equal(n, 70);
	}
	cJSON_Delete(r);
}

/* ---- --json ---------------------------------------------------------------- */

static void json_output(void **state)
{
	struct env *e = *state;
	cJSON *j, *r, *d;
	const cJSON *u;
	bool seen_admin = false, seen_uj = false;

	e->in = "Uj-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "uj", "--password-stdin", "--json");
	j = json_out(e);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "command")->valuestring, "createUser");
	assert_null(cJSON_GetObjectItem(r, "error"));
	assert_null(cJSON_GetObjectItem(r, "correlationData"));    /* its tags are removed */
	HASNT(e->out, "Uj-Pw");
	cJSON_Delete(j);

	EXPECT(e, 0, ONLINE(e), "user", "list", "--json");
	assert_true(strchr(e->out, '\n') == e->out + strlen(e->out) - 1);   /* one line */
	j = json_out(e);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "responses")), 1);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "command")->valuestring, "listUsers");
	cJSON_ArrayForEach(u, cJSON_GetObjectItem(cJSON_GetObjectItem(r, "data"), "users")) {
		const char *name = cJSON_GetObjectItem(u, "username")->valuestring;
		if (strcmp(name, "admin") == 0) {
			seen_admin = true;
			assert_true(cJSON_IsTrue(cJSON_GetObjectItem(u, "admin")));
		}
		if (strcmp(name, "uj") == 0) {
			seen_uj = true;
			assert_true(cJSON_IsFalse(cJSON_GetObjectItem(u, "admin")));
			assert_true(cJSON_IsFalse(cJSON_GetObjectItem(u, "disabled")));
		}
		assert_null(cJSON_GetObjectItem(u, "hash"));
	}
	assert_true(seen_admin && seen_uj);
	cJSON_Delete(j);

	EXPECT(e, 0, ONLINE(e), "user", "show", "uj", "--json");
	j = json_out(e);
	d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0), "data");
	assert_string_equal(cJSON_GetObjectItem(d, "username")->valuestring, "uj");
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(d, "groups")));
	cJSON_Delete(j);

	/* A refusal: still one JSON object, the error in it, status 2. */
	EXPECT(e, 2, ONLINE(e), "user", "show", "uj-ghost", "--json");
	j = json_out(e);
	r = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0);
	assert_string_equal(cJSON_GetObjectItem(r, "error")->valuestring, "user not found");
	cJSON_Delete(j);

	EXPECT(e, 0, ONLINE(e), "group", "add", "gjson", "--json");
	cJSON_Delete(json_out(e));
	EXPECT(e, 0, ONLINE(e), "group", "member", "add", "gjson", "uj", "--json");
	cJSON_Delete(json_out(e));
	EXPECT(e, 0, ONLINE(e), "group", "show", "gjson", "--json");
	j = json_out(e);
	d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0), "data");
	assert_string_equal(cJSON_GetObjectItem(d, "group")->valuestring, "gjson");
	assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(d, "members"), 0)->valuestring,
			    "uj");
	cJSON_Delete(j);
	EXPECT(e, 0, ONLINE(e), "group", "list", "--json");
	j = json_out(e);
	d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0), "data");
	assert_true(cJSON_IsArray(cJSON_GetObjectItem(d, "groups")));
	cJSON_Delete(j);

	/* Usage errors and connection failures are text, not JSON. */
	EXPECT(e, 2, AT(e), "-u", "admin", "-P", "Wrong-Json-Pw", "user", "list", "--json");
	assert_string_equal(e->out, "");
}

/* ---- offline change, then SIGHUP -------------------------------------------- */

static void offline_then_sighup(void **state)
{
	struct env *e = *state;

	e->in = "Off-Pw\n";
	EXPECT(e, 0, "--db", e->b.db_path, "user", "add", "uoff", "--password-stdin");
	EXPECT(e, 0, "--db", e->b.db_path, "group", "add", "goff");
	EXPECT(e, 0, "--db", e->b.db_path, "group", "member", "add", "goff", "uoff");
	/* The running broker keeps what it had until it reloads. */
	CANNOT_LOGIN(e, "uoff", "Off-Pw");
	assert_int_equal(tbroker_sighup(&e->b), 0);
	CAN_LOGIN(e, "uoff", "Off-Pw");
	assert_int_equal(subscribe_code(e, "uoff", "Off-Pw", "im/g/goff"), 1);
	/* Online sees it too. */
	EXPECT(e, 0, ONLINE(e), "user", "show", "uoff");
	HAS(e->out, "groups    goff");

	/* And the other way round: offline disable, reload, refused. */
	EXPECT(e, 0, "--db", e->b.db_path, "user", "disable", "uoff");
	CAN_LOGIN(e, "uoff", "Off-Pw");
	assert_int_equal(tbroker_sighup(&e->b), 0);
	CANNOT_LOGIN(e, "uoff", "Off-Pw");
}

/* ---- token issue ---------------------------------------------------------- */

static void token_issue(void **state)
{
	struct env *e = *state;
	char token[1024], other[400];
	size_t n;

	e->in = "Ut-Pw\n";
	EXPECT(e, 0, ONLINE(e), "user", "add", "ut", "--password-stdin");
	EXPECT(e, 0, "token", "issue", "ut", "--secret-file", e->secret, "--ttl", "600");
	n = strlen(e->out);
	assert_true(n < sizeof(token));
	memcpy(token, e->out, n + 1);
	assert_true(n > 20 && token[n - 1] == '\n');
	token[n - 1] = '\0';
	CAN_LOGIN(e, "ut", token);
	CANNOT_LOGIN(e, "admin", token);               /* a token is for its user only */

	/* Signed with another secret: refused. */
	file_in_dir(e, "other.secret", other, sizeof(other));
	assert_int_equal(write_file(other, "some-other-secret-0123456789abcdef\n", 0600), 0);
	EXPECT(e, 0, "token", "issue", "ut", "--secret-file", other, "--json");
	{
		cJSON *j = cJSON_Parse(e->out);
		const cJSON *t = cJSON_GetObjectItem(j, "token");
		assert_true(cJSON_IsString(t));
		CANNOT_LOGIN(e, "ut", t->valuestring);
		cJSON_Delete(j);
	}
	/* A token for a user that does not exist lets nobody in. */
	EXPECT(e, 0, "token", "issue", "ut-ghost", "--secret-file", e->secret);
	n = strlen(e->out);
	assert_true(n > 1);
	e->out[n - 1] = '\0';
	CANNOT_LOGIN(e, "ut-ghost", e->out);
	EXPECT(e, 1, "token", "issue", "ut");
}

/* ---- TLS ------------------------------------------------------------------- */

static void tls_cafile(void **state)
{
	struct env *e = *state;
	struct tbroker tb;
	char certs[400], other[400], ca[440], other_ca[440], cmd[1000], port[16];
	int tls_port;

	assert_int_equal(tbroker_init(&tb, NULL), 0);
	snprintf(certs, sizeof(certs), "%s/certs", tb.dir);
	snprintf(other, sizeof(other), "%s/other", tb.dir);
	snprintf(cmd, sizeof(cmd), "sh tools/mqim-certs.sh %s >/dev/null && "
		 "sh tools/mqim-certs.sh %s >/dev/null", certs, other);
	if (system(cmd) != 0) {
		tbroker_cleanup(&tb);
		fail_msg("tools/mqim-certs.sh failed: run the test from the top of the tree");
	}
	snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
	snprintf(other_ca, sizeof(other_ca), "%s/ca.crt", other);
	/* The TLS listener is the broker's only one, on its own free port. */
	tls_port = tb.port;
	snprintf(tb.extra_conf, sizeof(tb.extra_conf),
		 "cafile %s\ncertfile %s/server.crt\nkeyfile %s/server.key\n", ca, certs, certs);
	assert_int_equal(tbroker_add_user(&tb, "tadmin", "Tls-Admin-Pw", true), 0);
	{
		/* tbroker writes "listener PORT 127.0.0.1" first: the TLS options
		 * that follow apply to it. */
		int rc = tbroker_start(&tb);
		if (rc != 0) {
			tbroker_cleanup(&tb);
			fail_msg("the TLS broker did not start");
		}
	}
	snprintf(port, sizeof(port), "%d", tls_port);

	e->in = "Tls-User-Pw\n";
	EXPECT(e, 0, "-h", "localhost", "-p", port, "--cafile", ca, "--timeout", "5",
	       "-u", "tadmin", "-P", "Tls-Admin-Pw", "user", "add", "utls", "--password-stdin");
	HAS(e->out, "created user utls");
	EXPECT(e, 0, "-h", "127.0.0.1", "-p", port, "--cafile", ca, "--timeout", "5",
	       "-u", "tadmin", "-P", "Tls-Admin-Pw", "user", "show", "utls", "--json");
	{
		cJSON *j = json_out(e);
		const cJSON *d = cJSON_GetObjectItem(
			cJSON_GetArrayItem(cJSON_GetObjectItem(j, "responses"), 0), "data");
		assert_string_equal(cJSON_GetObjectItem(d, "username")->valuestring, "utls");
		cJSON_Delete(j);
	}
	/* A CA that did not sign the server's certificate: no connection. */
	EXPECT(e, 3, "-h", "localhost", "-p", port, "--cafile", other_ca, "--timeout", "5",
	       "-u", "tadmin", "-P", "Tls-Admin-Pw", "user", "list");
	HAS(e->err, "could not connect");
	HASNT(e->out, "utls");
	/* Plain MQTT on the TLS port: no answer that counts. */
	EXPECT(e, 3, "-h", "127.0.0.1", "-p", port, "--timeout", "3",
	       "-u", "tadmin", "-P", "Tls-Admin-Pw", "user", "list");
	assert_int_equal(tbroker_cleanup(&tb), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(user_add_passwd_del),
		T(user_bad_names),
		T(user_disable_enable),
		T(user_admin_on_off),
		T(user_add_admin_generate),
		T(login_password_sources),
		T(exit_statuses),
		T(groups),
		T(kick),
		T(import),
		T(import_batches),
		T(json_output),
		T(offline_then_sighup),
		T(token_issue),
		T(tls_cafile),
	};
#undef T

	return cmocka_run_group_tests_name("mqimctl_online", tests, group_setup, group_teardown);
}
