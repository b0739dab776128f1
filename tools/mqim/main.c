/* main.c - mqim, the command-line chat client on libmqim: global options,
 * help, the command table, and the client session the commands share. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"

static const char help_text[] =
"NAME\n"
"    mqim - chat through an mqim broker from the command line\n"
"\n"
"SYNOPSIS\n"
"    mqim [-h HOST] [-p PORT] -u USER [-P PASSWORD | --password-stdin]\n"
"         [--data-dir DIR] COMMAND [ARGS]\n"
"    mqim pack | unpack\n"
"    mqim --help | --version | COMMAND --help\n"
"\n"
"DESCRIPTION\n"
"    mqim logs in as USER (one device: a persistent MQTT 5 session whose\n"
"    client id is USER/ plus a device id kept in the data folder), so that\n"
"    messages sent while it is away wait on the broker.  Every message sent\n"
"    goes through an outbox on disk and is resent until its delivery\n"
"    receipt arrives; every message received is stored in the local\n"
"    history, de-duplicated, and acknowledged to its sender.\n"
"\n"
"GLOBAL OPTIONS\n"
"    -h, --host HOST        broker host (default localhost)\n"
"    -p, --port PORT        broker port (default 1883)\n"
"        --uri URI          broker URI instead of host and port:\n"
"                           tcp://H:P, mqtt://H:P, ssl://H:P, mqtts://H:P\n"
"        --cafile FILE      CA certificates (PEM) to verify the broker with;\n"
"                           implies ssl:// (also spelt --ca-file)\n"
"        --cert FILE        client certificate (PEM), for mutual TLS\n"
"        --key FILE         its private key (PEM)\n"
"        --insecure         do not verify the broker's certificate and host\n"
"                           name (tests only; verified by default)\n"
"    -u, --user USER        user id (required except for pack / unpack)\n"
"    -P, --password PASS    password; or --password-stdin (first line of\n"
"                           standard input), or the MQIM_PASSWORD variable\n"
"        --data-dir DIR     outbox, seen-set and history (default\n"
"                           $XDG_DATA_HOME/mqim/USER, else\n"
"                           ~/.local/share/mqim/USER); one mqim at a time\n"
"        --client-id ID     MQTT client id (default USER/DEVICE-ID)\n"
"        --keepalive S      MQTT keepalive in seconds (default 60)\n"
"        --help             this text\n"
"        --version          the version\n"
"\n"
"COMMANDS\n"
"    send [OPTIONS] PEER TEXT\n"
"    send [OPTIONS] --group GID TEXT\n"
"        Send TEXT (\"-\": standard input) to user PEER or group GID and\n"
"        print the message id (32 hex digits).\n"
"        --qos N            0, 1 (default) or 2\n"
"        --wait STATE       queued, sent (default), delivered or read:\n"
"                           wait for that state (or a later one)\n"
"        --timeout S        give up waiting after S seconds (default 30)\n"
"        --ct TYPE          content type (default text/plain)\n"
"        With --wait queued, mqim does not connect: the message waits in\n"
"        the outbox for the next mqim that does.\n"
"\n"
"    listen [--json] [--count N] [--timeout S]\n"
"        Print each message received (and send its receipt) until N\n"
"        messages came, S seconds passed, or an interrupt.  --json prints\n"
"        one object per line: id (hex), t, fr, to, ts, bts, body, and\n"
"        \"group\": true for group messages.\n"
"\n"
"    chat PEER\n"
"    chat --group GID\n"
"        An interactive chat: the last messages of the conversation, then\n"
"        what arrives (marked read as shown) and what you type (one line,\n"
"        one message).  Ticks: . queued, + sent, ++ delivered, ** read,\n"
"        ! failed.  /quit or end of input leaves.\n"
"\n"
"    history PEER | --group GID [--json] [--limit N]\n"
"        The last N (default 50) messages of a conversation, oldest first,\n"
"        from the local history (no connection).\n"
"\n"
"    outbox [--json]\n"
"        The messages still in the outbox: queued, sent (waiting for a\n"
"        receipt) or failed (no connection).\n"
"\n"
"    retry [--timeout S] ID\n"
"        Put the failed message ID back in the outbox, connect, and wait\n"
"        until the broker has it.\n"
"\n"
"    members GID [USER...]\n"
"        Set the roster of group GID, kept in the data folder (no\n"
"        connection): a group message sent afterwards stays in the outbox,\n"
"        and is resent, until every USER but yourself has receipted it\n"
"        (--wait delivered waits for all of them).  Without USERs the\n"
"        roster is forgotten: the first receipt settles a group message.\n"
"\n"
"    pack [--no-check]\n"
"        Read a JSON envelope on standard input, write it as MessagePack on\n"
"        standard output.  id and ref are 32 hex digits (id and ts default\n"
"        to a fresh UUIDv7 and now, v to 1); {\"$bin\": HEX} gives a bin\n"
"        value.  The result must be a valid envelope unless --no-check.\n"
"        Example: echo '{\"t\":\"msg\",\"fr\":\"alice\",\"to\":\"bob\",\"body\":\"hi\"}' |\n"
"                 mqim pack | mosquitto_pub -u alice -P ... -t im/u/bob -s\n"
"\n"
"    unpack\n"
"        Read MessagePack envelopes on standard input (one newline between\n"
"        them is skipped, as mosquitto_sub prints), write one JSON object\n"
"        per line.  Example: mosquitto_sub -u bob -P ... -t im/u/bob -C 1 |\n"
"        mqim unpack\n"
"\n"
"EXIT STATUS\n"
"    0  success: the state, count or output was reached\n"
"    1  error: connection, data folder, or another failure\n"
"    2  usage: a bad command line\n"
"    3  authentication: the broker refused the user, password or client id\n"
"    4  timeout: the awaited state or count was not reached in time\n"
"    5  failed: the broker refused the message, or no receipt came after\n"
"       every resend\n"
"\n"
"ENVIRONMENT\n"
"    MQIM_PASSWORD    the password when neither -P nor --password-stdin\n"
"    XDG_DATA_HOME    base of the default data folder\n";

static const struct {
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	bool needs_user;
	const char *usage;
} commands[] = {
	{ "send", cmd_send, true,
	  "mqim [GLOBAL] send [--qos N] [--wait queued|sent|delivered|read] [--timeout S]\n"
	  "                   [--ct TYPE] (PEER | --group GID) TEXT" },
	{ "listen", cmd_listen, true, "mqim [GLOBAL] listen [--json] [--count N] [--timeout S]" },
	{ "chat", cmd_chat, true, "mqim [GLOBAL] chat (PEER | --group GID)" },
	{ "history", cmd_history, true,
	  "mqim [GLOBAL] history (PEER | --group GID) [--json] [--limit N]" },
	{ "outbox", cmd_outbox, true, "mqim [GLOBAL] outbox [--json]" },
	{ "retry", cmd_retry, true, "mqim [GLOBAL] retry [--timeout S] ID" },
	{ "members", cmd_members, true, "mqim [GLOBAL] members GID [USER...]" },
	{ "pack", cmd_pack, false, "mqim pack [--no-check] < envelope.json > envelope.msgpack" },
	{ "unpack", cmd_unpack, false, "mqim unpack < envelopes.msgpack" },
};

int cli_usage(const char *command)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(commands[i].name, command) == 0)
			fprintf(stderr, "usage: %s\n(see mqim --help)\n", commands[i].usage);
	return EXIT_USAGE;
}

void cli_err(const char *fmt, ...)
{
	va_list ap;
	fputs("mqim: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int64_t cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_parse_seconds(const char *s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 86400.0 * 365)
		return -1;
	return (int)(v * 1000.0 + 0.5);
}

char *cli_read_stdin(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, stdin);
		n += got;
		if (got == 0)
			break;
		if (n + 1 == cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (!buf || ferror(stdin)) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* ---- the session ------------------------------------------------------------ */

static void s_on_state(mqim_client *c, enum mqim_state st, int err, void *ud)
{
	struct session *s = ud;
	(void)c;
	pthread_mutex_lock(&s->mu);
	s->state = st;
	s->state_err = err;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->on_state)
		s->on_state(s, st, err);
}

static void s_on_message(mqim_client *c, const struct mqim_message *m, void *ud)
{
	struct session *s = ud;
	(void)c;
	if (s->on_message)
		s->on_message(s, m);
	pthread_mutex_lock(&s->mu);
	s->count++;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static void s_on_msg_state(mqim_client *c, const uint8_t id[16], enum mqim_msg_state st,
			   int err, void *ud)
{
	struct session *s = ud;
	(void)c;
	pthread_mutex_lock(&s->mu);
	if (s->watching && memcmp(id, s->watch_id, 16) == 0) {
		s->watch_state = st;
		s->watch_err = err;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (s->on_msg_state)
		s->on_msg_state(s, id, st);
}

static void s_on_error(mqim_client *c, int err, const char *what, void *ud)
{
	struct session *s = ud;
	(void)c;
	if (s->verbose_errors || err == MQIM_ENOSPC || err == MQIM_EDENIED)
		cli_err("%s", what);
}

int session_open(struct session *s, struct cli *cli, bool need_password)
{
	struct mqim_options o = MQIM_OPTIONS_INIT;
	struct mqim_callbacks cb = MQIM_CALLBACKS_INIT;

	memset(s, 0, sizeof *s);
	s->cli = cli;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (need_password && !cli->password) {
		cli_err("no password: give -P, --password-stdin or MQIM_PASSWORD");
		return EXIT_USAGE;
	}
	o.host = cli->host;
	o.port = cli->port;
	o.uri = cli->uri;
	o.ca_file = cli->ca_file;
	o.cert_file = cli->cert_file;
	o.key_file = cli->key_file;
	o.insecure = cli->insecure;
	o.user = cli->user;
	o.password = cli->password;
	o.client_id = cli->client_id;
	o.data_dir = cli->data_dir;
	if (cli->keepalive)
		o.keepalive_s = cli->keepalive;
	cb.on_state = s_on_state;
	cb.on_message = s_on_message;
	cb.on_message_state = s_on_msg_state;
	cb.on_error = s_on_error;
	int rc = mqim_create(&o, &cb, s, &s->c);
	if (rc == MQIM_EBUSY) {
		cli_err("the data folder %s is in use by another mqim (a listen or chat?)", cli->data_dir);
		return EXIT_ERROR;
	}
	if (rc != MQIM_OK) {
		cli_err("cannot open the client (data folder %s): %s", cli->data_dir, mqim_strerror(rc));
		return rc == MQIM_EINVAL || rc == MQIM_EBADNAME ? EXIT_USAGE : EXIT_ERROR;
	}
	return EXIT_OK;
}

void session_close(struct session *s)
{
	mqim_close(s->c);
	s->c = NULL;
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
}

static bool wait_until(struct session *s, int64_t deadline)
{
	int64_t left = deadline - cli_now_ms();
	if (left <= 0)
		return false;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = ts.tv_nsec + (left < 200 ? left : 200) * 1000000LL;
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	return true;
}

static int final_state_exit(struct session *s)
{
	switch (s->state) {
	case MQIM_STATE_AUTH_FAILED:
		cli_err("login refused for %s: %s", s->cli->user, mqim_strerror(s->state_err));
		return EXIT_AUTH;
	case MQIM_STATE_TAKEN_OVER:
		cli_err("%s", mqim_strerror(MQIM_ETAKEN));
		return EXIT_ERROR;
	case MQIM_STATE_GAVE_UP:
		cli_err("gave up connecting");
		return EXIT_ERROR;
	default:
		return -1;
	}
}

int session_connect(struct session *s, int timeout_ms)
{
	int64_t deadline = cli_now_ms() + timeout_ms;
	int rc = mqim_connect(s->c);
	if (rc != MQIM_OK) {
		cli_err("cannot connect: %s", mqim_strerror(rc));
		return EXIT_ERROR;
	}
	pthread_mutex_lock(&s->mu);
	int ex = -1;
	for (;;) {
		if (s->state == MQIM_STATE_CONNECTED) {
			ex = EXIT_OK;
			break;
		}
		if ((ex = final_state_exit(s)) >= 0)
			break;
		if (!wait_until(s, deadline)) {
			cli_err("could not connect to the broker within %d s", timeout_ms / 1000);
			ex = EXIT_TIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return ex;
}

static bool reached(enum mqim_msg_state cur, enum mqim_msg_state want)
{
	static const int rank[] = {
		[MQIM_MSG_UNKNOWN] = 0, [MQIM_MSG_QUEUED] = 1, [MQIM_MSG_SENT] = 2,
		[MQIM_MSG_DELIVERED] = 3, [MQIM_MSG_READ] = 4, [MQIM_MSG_FAILED] = -1,
		[MQIM_MSG_RECEIVED] = 0,
	};
	if ((unsigned)cur > MQIM_MSG_RECEIVED || (unsigned)want > MQIM_MSG_RECEIVED)
		return false;
	return rank[cur] >= rank[want] && rank[cur] > 0;
}

int session_wait_msg(struct session *s, enum mqim_msg_state want, int timeout_ms)
{
	int64_t deadline = cli_now_ms() + timeout_ms;
	enum mqim_msg_state st;
	int ex = -1;

	/* The state may have moved before we started watching. */
	if (mqim_message_state(s->c, s->watch_id, &st) == MQIM_OK) {
		pthread_mutex_lock(&s->mu);
		if (s->watch_state == MQIM_MSG_UNKNOWN)
			s->watch_state = st;
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (reached(s->watch_state, want)) {
			ex = EXIT_OK;
			break;
		}
		if (s->watch_state == MQIM_MSG_FAILED) {
			cli_err("the message failed: %s", mqim_strerror(s->watch_err));
			ex = EXIT_FAILED;
			break;
		}
		if ((ex = final_state_exit(s)) >= 0)
			break;
		if (!wait_until(s, deadline)) {
			cli_err("the message is %s, not %s, after %.1f s%s",
				mqim_msg_state_name(s->watch_state), mqim_msg_state_name(want),
				timeout_ms / 1000.0,
				reached(s->watch_state, MQIM_MSG_DELIVERED) ? ""
				: " (it stays in the outbox and goes with the next mqim that connects)");
			ex = EXIT_TIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&s->mu);
	return ex;
}

/* ---- JSON strings -------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	if (s[0] < 0x80)
		return 1;
	size_t len = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
	if (len == 0 || len > n || (len == 2 && s[0] < 0xc2))
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

void cli_json_string(FILE *f, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	fputc('"', f);
	for (size_t i = 0; i < len;) {
		unsigned char ch = s[i];
		if (ch == '"' || ch == '\\') {
			fputc('\\', f);
			fputc(ch, f);
			i++;
		} else if (ch < 0x20) {
			switch (ch) {
			case '\n': fputs("\\n", f); break;
			case '\r': fputs("\\r", f); break;
			case '\t': fputs("\\t", f); break;
			default: fprintf(f, "\\u%04x", ch); break;
			}
			i++;
		} else {
			size_t n = utf8_len(s + i, len - i);
			if (n == 0) {
				fputs("\\ufffd", f);
				i++;
			} else {
				fwrite(s + i, 1, n, f);
				i += n;
			}
		}
	}
	fputc('"', f);
}

/* ---- main ------------------------------------------------------------------------ */

static char *read_password_line(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);
	if (n < 0) {
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int default_data_dir(struct cli *cli)
{
	const char *xdg = getenv("XDG_DATA_HOME");
	const char *home = getenv("HOME");
	if (xdg && *xdg)
		snprintf(cli->data_dir_buf, sizeof cli->data_dir_buf, "%s/mqim/%s", xdg, cli->user);
	else if (home && *home)
		snprintf(cli->data_dir_buf, sizeof cli->data_dir_buf, "%s/.local/share/mqim/%s",
			 home, cli->user);
	else
		return -1;
	cli->data_dir = cli->data_dir_buf;
	return 0;
}

enum { OPT_URI = 256, OPT_CA, OPT_CERT, OPT_KEY, OPT_INSECURE, OPT_PWSTDIN, OPT_DATADIR, OPT_CLIENTID, OPT_KEEPALIVE,
       OPT_HELP, OPT_VERSION };

static int run(struct cli *cli_out, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "uri", required_argument, NULL, OPT_URI },
		{ "ca-file", required_argument, NULL, OPT_CA },
		{ "cafile", required_argument, NULL, OPT_CA },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "key", required_argument, NULL, OPT_KEY },
		{ "insecure", no_argument, NULL, OPT_INSECURE },
		{ "password-stdin", no_argument, NULL, OPT_PWSTDIN },
		{ "data-dir", required_argument, NULL, OPT_DATADIR },
		{ "client-id", required_argument, NULL, OPT_CLIENTID },
		{ "keepalive", required_argument, NULL, OPT_KEEPALIVE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	struct cli cli;
	bool pw_stdin = false;
	int ch, rc = EXIT_USAGE;

	memset(&cli, 0, sizeof cli);
	cli.host = "localhost";
	cli.port = 1883;
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+h:p:u:P:", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': cli.host = optarg; break;
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v <= 0 || v > 65535) {
				cli_err("bad port: %s", optarg);
				rc = EXIT_USAGE;
				goto out;
			}
			cli.port = (int)v;
			break;
		}
		case 'u': cli.user = optarg; break;
		case 'P':
			free(cli.password);
			cli.password = strdup(optarg);
			break;
		case OPT_URI: cli.uri = optarg; break;
		case OPT_CA: cli.ca_file = optarg; break;
		case OPT_CERT: cli.cert_file = optarg; break;
		case OPT_KEY: cli.key_file = optarg; break;
		case OPT_INSECURE: cli.insecure = 1; break;
		case OPT_PWSTDIN: pw_stdin = true; break;
		case OPT_DATADIR: cli.data_dir = optarg; break;
		case OPT_CLIENTID: cli.client_id = optarg; break;
		case OPT_KEEPALIVE: {
			int ms = cli_parse_seconds(optarg);
			if (ms < 1000 || ms > 65535000) {
				cli_err("bad keepalive: %s", optarg);
				rc = EXIT_USAGE;
				goto out;
			}
			cli.keepalive = (unsigned)(ms / 1000);
			break;
		}
		case OPT_HELP:
			fputs(help_text, stdout);
			rc = EXIT_OK;
			goto out;
		case OPT_VERSION:
			printf("mqim %d.%d.%d\n", MQIM_VERSION_MAJOR, MQIM_VERSION_MINOR, MQIM_VERSION_PATCH);
			rc = EXIT_OK;
			goto out;
		default:
			cli_err("unknown or incomplete option %s (see mqim --help)", argv[optind - 1]);
			rc = EXIT_USAGE;
			goto out;
		}
	}
	if (optind >= argc) {
		fputs("usage: mqim [-h HOST] [-p PORT] -u USER [-P PASSWORD | --password-stdin]\n"
		      "            [--data-dir DIR] COMMAND [ARGS]\n"
		      "commands: send, listen, chat, history, outbox, retry, members, pack, unpack\n"
		      "(see mqim --help)\n", stderr);
		rc = EXIT_USAGE;
		goto out;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (strcmp(commands[i].name, name) != 0)
			continue;
		if (commands[i].needs_user) {
			if (!cli.user) {
				cli_err("%s needs -u USER", name);
				rc = EXIT_USAGE;
				goto out;
			}
			if (!mqim_name_valid(cli.user)) {
				cli_err("bad user id '%s': %s", cli.user, mqim_strerror(MQIM_EBADNAME));
				rc = EXIT_USAGE;
				goto out;
			}
			if (pw_stdin) {
				free(cli.password);
				if (!(cli.password = read_password_line())) {
					cli_err("--password-stdin: no line on standard input");
					rc = EXIT_USAGE;
					goto out;
				}
			} else if (!cli.password && getenv("MQIM_PASSWORD")) {
				cli.password = strdup(getenv("MQIM_PASSWORD"));
			}
			if (!cli.data_dir && default_data_dir(&cli) != 0) {
				cli_err("no data folder: give --data-dir (HOME is not set)");
				rc = EXIT_USAGE;
				goto out;
			}
		}
		optind++;
		rc = commands[i].fn(&cli, argc - optind + 1, argv + optind - 1);
		goto out;
	}
	cli_err("unknown command '%s' (see mqim --help)", name);
	rc = EXIT_USAGE;
out:
	*cli_out = cli;
	return rc;
}

int main(int argc, char **argv)
{
	struct cli cli;
	memset(&cli, 0, sizeof cli);
	int rc = run(&cli, argc, argv);
	if (cli.password) {
		memset(cli.password, 0, strlen(cli.password));
		free(cli.password);
	}
	return rc;
}
