/* help.c - mqimctl's --help texts and usage errors.
 *
 * Owns the global manual page and the per-command help, both generated from
 * ctl_cmds[] (commands.c) so a new command documents itself.  Writes to
 * stdout for asked-for help and to stderr for usage errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mqim.h"
#include "mqimctl.h"

static const char manual_head[] =
"NAME\n"
"    mqimctl - provision the users and groups of an mqim broker\n"
"\n"
"SYNOPSIS\n"
"    mqimctl --db FILE [--json] COMMAND [ARGS] [OPTIONS]\n"
"    mqimctl [-h HOST] [-p PORT] -u ADMIN [-P PASSWORD] [--cafile FILE\n"
"            [--cert FILE --key FILE]] [--timeout SECONDS] [--json]\n"
"            COMMAND [ARGS] [OPTIONS]\n"
"    mqimctl token issue USER --secret-file FILE [--ttl SECONDS]\n"
"    mqimctl COMMAND --help\n"
"    mqimctl --help | --version\n"
"\n"
"DESCRIPTION\n"
"    mqimctl creates, changes and shows the users and groups that the mqim\n"
"    Mosquitto plugin lets log in and chat.  It works in one of two modes, which\n"
"    offer the same commands:\n"
"\n"
"    Offline, with --db FILE, it edits the SQLite store directly.  No broker is\n"
"    needed; a running broker sees the change after it reloads, for example\n"
"    with `kill -HUP $(pidof mosquitto)` or `systemctl reload mosquitto`.  Run\n"
"    it as a user that may write FILE (its folder too: SQLite keeps FILE-wal\n"
"    and FILE-shm beside it).\n"
"\n"
"    Online, with -h/-u, it logs in to the broker as admin ADMIN and sends the\n"
"    commands as JSON to $CONTROL/mqim/v1, reading the answers on\n"
"    $CONTROL/mqim/v1/response (MQTT 5).  Changes apply at once and are saved\n"
"    by the broker.\n"
"\n"
"COMMANDS\n";

static const char manual_tail[] =
"\n"
"    NAME, USER, GID and ADMIN are 1 to 64 characters of [A-Za-z0-9_.-], the\n"
"    first a letter or digit; case matters.\n"
"\n"
"MODE OPTIONS\n"
"    --db FILE           offline: edit the store FILE\n"
"    -h, --host HOST     online: the broker's host name or address (default\n"
"                        localhost; -h is not help, use --help)\n"
"    -p, --port PORT     the broker's port (default 1883, 8883 with --cafile)\n"
"    -u, --username ADMIN\n"
"                        the admin user to log in as (online; required)\n"
"    -P, --password PASSWORD\n"
"                        ADMIN's password; for init, the new admin's password.\n"
"                        Other local users can see it in the process list:\n"
"                        prefer $MQIM_PASSWORD or the prompt\n"
"    --cafile FILE       use TLS (mqtts://) and trust the CA certificates in\n"
"                        FILE; the broker's name must match its certificate\n"
"    --cert FILE, --key FILE\n"
"                        a client certificate and its key, for brokers that\n"
"                        require one (both, and only with --cafile)\n"
"    --insecure          with --cafile: do not check that the broker's name\n"
"                        matches its certificate (the chain is still checked);\n"
"                        for tests only\n"
"    --timeout SECONDS   how long to wait for the broker at each step\n"
"                        (default 10)\n"
"\n"
"COMMAND OPTIONS\n"
"    --json              print the answers as one JSON object on one line,\n"
"                        {\"responses\": [...]}, the shape the broker publishes\n"
"                        on $CONTROL/mqim/v1/response, instead of text (both\n"
"                        modes); init --generate adds \"generatedPassword\"\n"
"    --password-stdin    for commands that set a password: read it from the\n"
"                        first line of stdin\n"
"    --generate          for commands that set a password: make up a strong one\n"
"                        and print it once\n"
"    --admin             for user add: make the new user an admin\n"
"    --secret-file FILE, --ttl SECONDS, --aud AUDIENCE, --iss ISSUER\n"
"                        for token issue: see mqimctl token issue --help\n"
"    --help              help for the whole tool, or for COMMAND\n"
"    --version           print the version\n"
"\n"
"ENVIRONMENT\n"
"    MQIM_PASSWORD       online: ADMIN's password when -P is not given.\n"
"                        init: the new admin's password.\n"
"\n"
"    Without a password from these, mqimctl asks on the terminal with echo\n"
"    off; when stdin is not a terminal it stops with a usage error instead.\n"
"\n"
"EXIT STATUS\n"
"    0   success\n"
"    1   usage error: bad command line, missing password, unusable import\n"
"        file; nothing was changed\n"
"    2   the broker or the store refused (user already exists, invalid name,\n"
"        not an admin, bad login, ...): the reason is on stderr.  For a\n"
"        request of many commands, the others may have succeeded\n"
"    3   could not connect to the broker, no answer in time, or the store file\n"
"        could not be opened (missing, not an mqim store, damaged)\n"
"\n"
"EXAMPLES\n"
"    mqimctl --db /var/lib/mqim/mqim.db init admin --generate\n"
"    mqimctl --db /var/lib/mqim/mqim.db user add alice\n"
"    export MQIM_PASSWORD=...   # admin's password\n"
"    mqimctl -h chat.example.org -u admin group add team\n"
"    mqimctl -h chat.example.org -u admin group member add team alice\n"
"    mqimctl -h chat.example.org -p 8883 --cafile ca.pem -u admin user list --json\n"
"    mqimctl --db mqim.db user import /etc/mosquitto/passwd\n"
"\n"
"SEE ALSO\n"
"    mqimctl COMMAND --help; docs/admin.md (operator's guide), docs/protocol.md\n"
"    (the $CONTROL/mqim/v1 commands); mosquitto(8), mosquitto_ctrl(1).\n";

/* "[--db FILE | -h HOST -u ADMIN]" and the options a command takes. */
static void print_usage_line(FILE *out, const struct ctl_cmd *cmd)
{
	const char *where = cmd->flags & CF_LOCAL ? ""
			  : cmd->flags & CF_OFFLINE_ONLY ? "--db FILE"
			  : cmd->flags & CF_ONLINE_ONLY ? "[-h HOST] -u ADMIN"
			  : "(--db FILE | [-h HOST] -u ADMIN)";

	fprintf(out, "usage: mqimctl %s%s%s%s%s%s%s%s [--json]\n", where, where[0] ? " " : "",
		cmd->words,
		cmd->synopsis[0] ? " " : "", cmd->synopsis,
		cmd->flags & CF_ADMIN ? " [--admin]" : "",
		cmd->flags & CF_PASSWORD ? " [--password-stdin | --generate]" : "",
		cmd->kind == CK_INIT ? " [-P PASSWORD]"
		: cmd->kind == CK_TOKEN ? " --secret-file FILE [--ttl SECONDS] [--aud AUD] [--iss ISS]"
		: "");
}

static void print_command_help(const struct ctl_cmd *cmd)
{
	print_usage_line(stdout, cmd);
	printf("\n%s", cmd->help);
	if (cmd->wire)
		printf("\nOnline this sends the $CONTROL/mqim/v1 command \"%s\".\n", cmd->wire);
	else if (cmd->kind == CK_IMPORT)
		printf("\nOnline this sends \"createUser\" commands (with \"passwordHash\" for\n"
		       "Mosquitto hashes) to $CONTROL/mqim/v1.\n");
	printf("\nExample:\n  %s\n", cmd->example);
	printf("\nSee mqimctl --help for the mode options (--db, -h, -u, ...) and exit status.\n");
}

void ctl_help_global(void)
{
	fputs(manual_head, stdout);
	for (size_t i = 0; i < ctl_ncmds; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", ctl_cmds[i].words, ctl_cmds[i].synopsis);
		printf("    %-28s%s\n", left, ctl_cmds[i].summary);
	}
	fputs(manual_tail, stdout);
}

void ctl_help_commands(const char *prefix)
{
	size_t plen = strlen(prefix);
	const struct ctl_cmd *only = NULL;
	int n = 0;

	for (size_t i = 0; i < ctl_ncmds; i++) {
		const char *w = ctl_cmds[i].words;
		if (strncmp(w, prefix, plen) == 0 && (w[plen] == '\0' || w[plen] == ' ')) {
			only = &ctl_cmds[i];
			n++;
		}
	}
	if (n == 1) {
		print_command_help(only);
		return;
	}
	printf("Commands starting with \"%s\":\n", prefix);
	for (size_t i = 0; i < ctl_ncmds; i++) {
		const char *w = ctl_cmds[i].words;
		if (strncmp(w, prefix, plen) == 0 && (w[plen] == '\0' || w[plen] == ' '))
			printf("  mqimctl ... %s%s%s\n      %s\n", w,
			       ctl_cmds[i].synopsis[0] ? " " : "", ctl_cmds[i].synopsis,
			       ctl_cmds[i].summary);
	}
	printf("\nRun mqimctl COMMAND --help for one of them, mqimctl --help for all.\n");
}

int ctl_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mqimctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'mqimctl --help' or 'mqimctl COMMAND --help'.\n", stderr);
	return CTL_USAGE;
}

int ctl_input_error(const char *fmt, ...)
{
	va_list ap;

	fputs("mqimctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_USAGE;
}
