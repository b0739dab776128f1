/* main.c - mqimctl, the mqim admin tool: option parsing, mode selection and
 * the run of one command.
 *
 * Owns struct ctl for the process (filled from argv, then read-only) and the
 * password buffers of the run, which are wiped before exit.  Options may
 * come before or after the command words (GNU getopt permutes).  The exit
 * status is one of enum ctl_exit; see `mqimctl --help`.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqim.h"
#include "mqimctl.h"

enum {
	OPT_DB = 256, OPT_CAFILE, OPT_CERT, OPT_KEY, OPT_TIMEOUT, OPT_JSON,
	OPT_PASSWORD_STDIN, OPT_GENERATE, OPT_ADMIN, OPT_HELP, OPT_VERSION,
	OPT_INSECURE, OPT_TTL, OPT_SECRET_FILE, OPT_AUD, OPT_ISS,
};

static const struct option long_opts[] = {
	{ "db",             required_argument, NULL, OPT_DB },
	{ "host",           required_argument, NULL, 'h' },
	{ "port",           required_argument, NULL, 'p' },
	{ "username",       required_argument, NULL, 'u' },
	{ "password",       required_argument, NULL, 'P' },
	{ "cafile",         required_argument, NULL, OPT_CAFILE },
	{ "cert",           required_argument, NULL, OPT_CERT },
	{ "key",            required_argument, NULL, OPT_KEY },
	{ "timeout",        required_argument, NULL, OPT_TIMEOUT },
	{ "json",           no_argument,       NULL, OPT_JSON },
	{ "password-stdin", no_argument,       NULL, OPT_PASSWORD_STDIN },
	{ "generate",       no_argument,       NULL, OPT_GENERATE },
	{ "admin",          no_argument,       NULL, OPT_ADMIN },
	{ "help",           no_argument,       NULL, OPT_HELP },
	{ "version",        no_argument,       NULL, OPT_VERSION },
	{ "insecure",       no_argument,       NULL, OPT_INSECURE },
	{ "ttl",            required_argument, NULL, OPT_TTL },
	{ "secret-file",    required_argument, NULL, OPT_SECRET_FILE },
	{ "aud",            required_argument, NULL, OPT_AUD },
	{ "iss",            required_argument, NULL, OPT_ISS },
	{ NULL, 0, NULL, 0 },
};

/* A whole decimal number in [lo, hi], or -1. */
static int parse_int(const char *s, int lo, int hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	return (*s && !*end && v >= lo && v <= hi) ? (int)v : -1;
}

/* One option into c; returns CTL_OK or CTL_USAGE. */
static int take_option(struct ctl *c, int opt, const char *arg, bool *help, bool *version)
{
	switch (opt) {
	case OPT_DB:             c->db = arg; break;
	case 'h':                c->host = arg; break;
	case 'u':                c->user = arg; break;
	case 'P':                c->password = arg; break;
	case OPT_CAFILE:         c->cafile = arg; break;
	case OPT_CERT:           c->cert = arg; break;
	case OPT_KEY:            c->key = arg; break;
	case OPT_JSON:           c->json = true; break;
	case OPT_PASSWORD_STDIN: c->password_stdin = true; break;
	case OPT_GENERATE:       c->generate = true; break;
	case OPT_ADMIN:          c->admin = true; break;
	case OPT_HELP:           *help = true; break;
	case OPT_VERSION:        *version = true; break;
	case OPT_INSECURE:       c->insecure = true; break;
	case OPT_SECRET_FILE:    c->secret_file = arg; break;
	case OPT_AUD:            c->audience = arg; break;
	case OPT_ISS:            c->issuer = arg; break;
	case OPT_TTL:
		c->ttl = parse_int(arg, 1, 366 * 24 * 3600);
		if (c->ttl < 0)
			return ctl_usage_error("--ttl takes seconds from 1 to 31622400, not '%s'", arg);
		break;
	case 'p':
		c->port = parse_int(arg, 1, 65535);
		if (c->port < 0)
			return ctl_usage_error("-p takes a port number from 1 to 65535, not '%s'", arg);
		break;
	case OPT_TIMEOUT:
		c->timeout = parse_int(arg, 1, 3600);
		if (c->timeout < 0)
			return ctl_usage_error("--timeout takes seconds from 1 to 3600, not '%s'", arg);
		break;
	default:  /* getopt has said what was wrong */
		return ctl_usage_error("bad option (note: -h is the broker's host; help is --help)");
	}
	return CTL_OK;
}

static int parse_options(int argc, char **argv, struct ctl *c, bool *help, bool *version)
{
	int opt, rc = CTL_OK;

	opterr = 1;
	while (rc == CTL_OK && (opt = getopt_long(argc, argv, "h:p:u:P:", long_opts, NULL)) != -1)
		rc = take_option(c, opt, optarg, help, version);
	return rc;
}

/* token issue's own options, and only there. */
static int check_token_options(struct ctl *c)
{
	bool token = c->cmd->kind == CK_TOKEN;

	if (!token && (c->ttl || c->secret_file || c->audience || c->issuer))
		return ctl_usage_error("--ttl, --secret-file, --aud and --iss only apply to "
				       "token issue");
	if (token && !c->secret_file)
		return ctl_usage_error("token issue needs --secret-file FILE, the secret the "
				       "broker's plugin_opt_jwt_secret_file names");
	if (token && !c->ttl)
		c->ttl = 3600;
	return CTL_OK;
}

/* Options that belong to some commands only. */
static int check_command_options(struct ctl *c)
{
	unsigned f = c->cmd->flags;

	if ((c->password_stdin || c->generate) && !(f & CF_PASSWORD))
		return ctl_usage_error("--password-stdin and --generate only apply to commands "
				       "that set a password (init, user add, user passwd)");
	if (c->password_stdin && c->generate)
		return ctl_usage_error("choose --password-stdin or --generate, not both");
	if (c->admin && !(f & CF_ADMIN))
		return ctl_usage_error("--admin only applies to user add");
	return check_token_options(c);
}

/* The TLS options hang together. */
static int check_tls(const struct ctl *c)
{
	if ((c->cert || c->key) && !c->cafile)
		return ctl_usage_error("--cert and --key are for TLS: give --cafile too");
	if (!c->cert != !c->key)
		return ctl_usage_error("--cert and --key go together");
	if (c->insecure && !c->cafile)
		return ctl_usage_error("--insecure only relaxes TLS: give --cafile too");
	return CTL_OK;
}

/* Rules between the mode options, the command and its options. */
static int check_mode(struct ctl *c)
{
	unsigned f = c->cmd->flags;
	int rc = check_command_options(c);

	if (rc != CTL_OK || (f & CF_LOCAL))
		return rc;
	c->online = c->host || c->port || c->user || c->cafile || c->cert || c->key;
	if (c->db && c->online)
		return ctl_usage_error("choose one mode: --db FILE (offline) or -h/-u (online), "
				       "not both");
	if (!c->db && !c->online)
		return ctl_usage_error("say where to work: --db FILE edits a store offline, "
				       "-h HOST -u ADMIN talks to a running broker");
	if (c->online && !c->user)
		return ctl_usage_error("online mode needs -u ADMIN, the admin to log in as");
	if ((f & CF_OFFLINE_ONLY) && c->online)
		return ctl_usage_error("%s works offline only: mqimctl --db FILE %s ...",
				       c->cmd->words, c->cmd->words);
	if ((f & CF_ONLINE_ONLY) && !c->online)
		return ctl_usage_error("%s needs a running broker (offline there are no sessions): "
				       "use -h HOST -u ADMIN", c->cmd->words);
	if (!c->online && c->password && c->cmd->kind != CK_INIT)
		return ctl_usage_error("-P is the admin's login password, for online mode; "
				       "offline, %s needs none", c->cmd->words);
	if (c->online && !c->host)
		c->host = "localhost";
	return check_tls(c);
}

/* True when some command's words start with the words of prefix. */
static bool names_commands(const char *prefix)
{
	size_t len = strlen(prefix);

	for (size_t i = 0; i < ctl_ncmds; i++) {
		const char *w = ctl_cmds[i].words;
		if (strncmp(w, prefix, len) == 0 && (w[len] == '\0' || w[len] == ' '))
			return true;
	}
	return false;
}

/* Find the command in the words and check its parameter count. */
static int resolve(struct ctl *c, char **words, int n)
{
	int used, want;

	if (n == 0)
		return ctl_usage_error("no command given");
	c->cmd = ctl_cmd_find(words, n, &used);
	if (!c->cmd) {
		if (names_commands(words[0]) && n == 1)
			return ctl_usage_error("'%s' needs a subcommand: see mqimctl %s --help",
					       words[0], words[0]);
		if (names_commands(words[0]))
			return ctl_usage_error("unknown command '%s %s': see mqimctl %s --help",
					       words[0], words[1], words[0]);
		return ctl_usage_error("unknown command '%s'", words[0]);
	}
	c->args = words + used;
	c->nargs = n - used;
	want = ctl_cmd_nparams(c->cmd);
	if (c->nargs < want)
		return ctl_usage_error("%s needs %s: mqimctl ... %s %s", c->cmd->words,
				       c->cmd->synopsis, c->cmd->words, c->cmd->synopsis);
	if (c->nargs > want)
		return ctl_usage_error("too many arguments for %s, from '%s' on: mqimctl ... %s%s%s",
				       c->cmd->words, c->args[want], c->cmd->words,
				       want ? " " : "", c->cmd->synopsis);
	return check_mode(c);
}

/* Help for the longest run of leading words that names commands, so that
 * `mqimctl user add alice --help` helps with `user add`. */
static int show_help(char **words, int n)
{
	char prefix[128];

	if (n == 0) {
		ctl_help_global();
		return CTL_OK;
	}
	for (int k = n; k > 0; k--) {
		prefix[0] = '\0';
		for (int i = 0; i < k; i++) {
			if (strlen(prefix) + strlen(words[i]) + 2 > sizeof(prefix))
				break;
			if (i)
				strcat(prefix, " ");
			strcat(prefix, words[i]);
		}
		if (names_commands(prefix)) {
			ctl_help_commands(prefix);
			return CTL_OK;
		}
	}
	return ctl_usage_error("no help for '%s': it is not a command", words[0]);
}

/* Build the request of the resolved command into commands. */
static int build(const struct ctl *c, const char *new_password, cJSON *commands)
{
	cJSON *o;

	switch (c->cmd->kind) {
	case CK_IMPORT:
		return ctl_import_build(c->args[0], commands);
	case CK_INIT:
		o = mqim_admin_build("createUser", c->args[0], NULL, new_password, 1);
		if (!o || !cJSON_AddItemToArray(commands, o)) {
			cJSON_Delete(o);
			return ctl_usage_error("out of memory");
		}
		return CTL_OK;
	case CK_SIMPLE:
	case CK_TOKEN:
		break;
	}
	return ctl_build_simple(c, c->cmd->flags & CF_PASSWORD ? new_password : NULL, commands);
}

static int run(const struct ctl *c)
{
	char login[CTL_PW_BUF] = "", new_pw[CTL_PW_BUF] = "";
	const char *target = c->cmd->flags & CF_PASSWORD ? c->args[0] : NULL;
	cJSON *commands = cJSON_CreateArray(), *responses = NULL;
	bool generated = false;
	int rc = commands ? CTL_OK : ctl_usage_error("out of memory");

	if (rc == CTL_OK && c->online)
		rc = ctl_login_password(c, login, sizeof(login));
	if (rc == CTL_OK && target)
		rc = ctl_new_password(c, target, new_pw, sizeof(new_pw), &generated);
	if (rc == CTL_OK)
		rc = build(c, new_pw, commands);
	if (rc == CTL_OK && c->cmd->kind == CK_INIT)
		rc = ctl_offline_init(c, commands, &responses);
	else if (rc == CTL_OK)
		rc = c->online ? ctl_online_run(c, login, commands, &responses)
			       : ctl_offline_run(c, commands, &responses);
	if (rc == CTL_OK)
		rc = ctl_print(c, commands, responses, target, generated ? new_pw : NULL);
	ctl_wipe(login, sizeof(login));
	ctl_wipe(new_pw, sizeof(new_pw));
	ctl_request_wipe(commands);
	cJSON_Delete(commands);
	cJSON_Delete(responses);
	return rc;
}

int main(int argc, char **argv)
{
	struct ctl c = { .timeout = 10 };
	bool help = false, version = false;
	char **words;
	int n, rc;

	signal(SIGPIPE, SIG_IGN);
	rc = parse_options(argc, argv, &c, &help, &version);
	if (rc != CTL_OK)
		return rc;
	if (version) {
		printf("mqimctl %d.%d.%d\n", MQIM_VERSION_MAJOR, MQIM_VERSION_MINOR,
		       MQIM_VERSION_PATCH);
		return CTL_OK;
	}
	words = argv + optind;
	n = argc - optind;
	if (n > 0 && strcmp(words[0], "help") == 0) {
		help = true;
		words++;
		n--;
	}
	if (help)
		return show_help(words, n);
	rc = resolve(&c, words, n);
	if (rc == CTL_OK && c.cmd->kind == CK_TOKEN)
		return ctl_token_issue(&c);
	return rc == CTL_OK ? run(&c) : rc;
}
