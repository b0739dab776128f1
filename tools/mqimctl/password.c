/* password.c - where mqimctl's passwords come from.
 *
 * Owns: reading a password from -P, $MQIM_PASSWORD, the first line of stdin
 * (--password-stdin) or a terminal prompt with echo off, and making one up
 * (--generate).  Passwords go into caller-owned buffers of CTL_PW_BUF bytes;
 * every temporary copy here is wiped.  Nothing here prints a password.
 *
 * The prompt turns terminal echo off with termios and restores it before
 * returning, also when interrupted by Ctrl-C (the one piece of static state:
 * the signal number seen, as a handler needs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "mqimctl.h"

#define GENERATED_LEN 20   /* of 62 symbols: about 119 bits */

static volatile sig_atomic_t prompt_signal;

void ctl_wipe(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

/* Copy src into buf, refusing empty and over-long passwords. */
static int take(const char *src, const char *what, char *buf, size_t len)
{
	size_t n = strnlen(src, MQIM_PASSWORD_MAX + 1);

	if (n == 0)
		return ctl_input_error("%s is empty", what);
	if (n > MQIM_PASSWORD_MAX || n >= len)
		return ctl_input_error("%s is longer than %d bytes", what, MQIM_PASSWORD_MAX);
	memcpy(buf, src, n + 1);
	return CTL_OK;
}

/* Read one line from fp into buf without its line end.  Returns the length,
 * -1 at end of input, -2 when the line is too long. */
static long read_line(FILE *fp, char *buf, size_t len)
{
	size_t n;

	if (!fgets(buf, (int)len, fp))
		return -1;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (!feof(fp))
		return -2;
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return (long)n;
}

static int from_stdin(char *buf, size_t len)
{
	long n = read_line(stdin, buf, len);

	if (n == -2 || n > MQIM_PASSWORD_MAX) {
		ctl_wipe(buf, len);
		return ctl_input_error("the password on stdin is longer than %d bytes",
				       MQIM_PASSWORD_MAX);
	}
	if (n <= 0)
		return ctl_input_error("--password-stdin: no password on the first line of stdin");
	return CTL_OK;
}

static void on_signal(int sig)
{
	prompt_signal = sig;
}

/* Ask on the terminal (stdin) with echo off; the question goes to stderr. */
static int prompt(const char *question, char *buf, size_t len)
{
	struct termios saved, quiet;
	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term;
	long n;
	int rc = CTL_OK;

	if (tcgetattr(STDIN_FILENO, &saved) != 0)
		return ctl_input_error("cannot read the terminal settings: %s", strerror(errno));
	quiet = saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	prompt_signal = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	fputs(question, stderr);
	fflush(stderr);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	n = read_line(stdin, buf, len);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (prompt_signal) {
		fputc('\n', stderr);
		ctl_wipe(buf, len);
		raise(prompt_signal);
		rc = CTL_USAGE;
	} else if (n == -2 || n > MQIM_PASSWORD_MAX) {
		rc = ctl_input_error("the password is longer than %d bytes", MQIM_PASSWORD_MAX);
	} else if (n <= 0) {
		rc = ctl_input_error("no password given");
	}
	if (rc != CTL_OK)
		ctl_wipe(buf, len);
	return rc;
}

int ctl_login_password(const struct ctl *c, char *buf, size_t len)
{
	const char *env = getenv("MQIM_PASSWORD");
	char question[160];

	if (c->password)
		return take(c->password, "the -P password", buf, len);
	if (env)
		return take(env, "$MQIM_PASSWORD", buf, len);
	if (!isatty(STDIN_FILENO))
		return ctl_input_error("no password for %s: give -P, set MQIM_PASSWORD, or run "
				       "from a terminal to be asked", c->user);
	snprintf(question, sizeof(question), "Password for %s: ", c->user);
	return prompt(question, buf, len);
}

/* Twenty symbols of [A-Za-z0-9], unbiased (bytes >= 248 are redrawn). */
static int generate(char *buf, size_t len)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[64];
	size_t n = 0;

	if (len <= GENERATED_LEN)
		return ctl_input_error("internal error: password buffer too small");
	while (n < GENERATED_LEN) {
		if (RAND_bytes(r, sizeof(r)) != 1)
			return ctl_input_error("the system's random generator failed");
		for (size_t i = 0; i < sizeof(r) && n < GENERATED_LEN; i++)
			if (r[i] < 248)
				buf[n++] = alphabet[r[i] % 62];
	}
	buf[n] = '\0';
	ctl_wipe(r, sizeof(r));
	return CTL_OK;
}

static int prompt_twice(const char *user, char *buf, size_t len)
{
	char again[CTL_PW_BUF];
	char question[160];
	int rc;

	snprintf(question, sizeof(question), "New password for %s: ", user);
	rc = prompt(question, buf, len);
	if (rc != CTL_OK)
		return rc;
	rc = prompt("Retype it: ", again, sizeof(again));
	if (rc == CTL_OK && strcmp(buf, again) != 0)
		rc = ctl_input_error("the two passwords differ; nothing was changed");
	ctl_wipe(again, sizeof(again));
	if (rc != CTL_OK)
		ctl_wipe(buf, len);
	return rc;
}

int ctl_new_password(const struct ctl *c, const char *user, char *buf, size_t len,
		     bool *generated)
{
	const char *env = c->cmd->kind == CK_INIT ? getenv("MQIM_PASSWORD") : NULL;

	*generated = false;
	if (c->password_stdin)
		return from_stdin(buf, len);
	if (c->generate) {
		*generated = true;
		return generate(buf, len);
	}
	if (c->cmd->kind == CK_INIT && c->password)
		return take(c->password, "the -P password", buf, len);
	if (env)
		return take(env, "$MQIM_PASSWORD", buf, len);
	if (!isatty(STDIN_FILENO))
		return ctl_input_error("no password for %s: use --password-stdin or --generate, "
				       "or run from a terminal to be asked", user);
	return prompt_twice(user, buf, len);
}
