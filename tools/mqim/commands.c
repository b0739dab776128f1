/* commands.c - mqim's chat commands: send, listen, chat, history, outbox,
 * retry.  Options come before the positional arguments (so that a TEXT
 * may begin with a dash). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "names.h"

#define DEFAULT_TIMEOUT_MS 30000

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void catch_interrupts(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Reset getopt for a command's own arguments (argv[0] is the command). */
static void getopt_reset(void)
{
	optind = 0;
	opterr = 0;
}

static int bad_option(const char *command, char **argv)
{
	cli_err("%s: unknown or incomplete option %s", command, argv[optind - 1]);
	return cli_usage(command);
}

static void format_time(char *out, size_t len, uint64_t ms, bool with_date)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(out, len, with_date ? "%Y-%m-%d %H:%M:%S" : "%H:%M:%S", &tm);
}

static const char *tick(enum mqim_msg_state st)
{
	switch (st) {
	case MQIM_MSG_QUEUED: return ".";
	case MQIM_MSG_SENT: return "+";
	case MQIM_MSG_DELIVERED: return "++";
	case MQIM_MSG_READ: return "**";
	case MQIM_MSG_FAILED: return "!";
	default: return "";
	}
}

/* One message as a JSON object (no newline). */
static void print_json(FILE *f, const struct mqim_message *m, bool with_state)
{
	char hex[MQIM_ID_HEX_LEN + 1];
	fprintf(f, "{\"id\":\"%s\",\"t\":", mqim_id_to_hex(m->id, hex));
	cli_json_string(f, m->kind, strlen(m->kind));
	fputs(",\"fr\":", f);
	cli_json_string(f, m->from, strlen(m->from));
	fputs(",\"to\":", f);
	cli_json_string(f, m->to, strlen(m->to));
	fprintf(f, ",\"ts\":%llu,\"bts\":%llu,\"body\":", (unsigned long long)m->ts,
		(unsigned long long)m->bts);
	cli_json_string(f, m->body, m->body_len);
	if (strcmp(m->content_type, "text/plain") != 0) {
		fputs(",\"ct\":", f);
		cli_json_string(f, m->content_type, strlen(m->content_type));
	}
	if (m->is_group)
		fputs(",\"group\":true", f);
	if (with_state)
		fprintf(f, ",\"state\":\"%s\"", mqim_msg_state_name(m->state));
	fputc('}', f);
}

static void print_text(FILE *f, const struct mqim_message *m, bool with_date, bool with_state)
{
	char when[32];
	format_time(when, sizeof when, m->bts ? m->bts : m->ts, with_date);
	flockfile(f);
	if (m->is_group)
		fprintf(f, "[%s] #%s %s: ", when, m->to, m->from);
	else
		fprintf(f, "[%s] %s: ", when, m->from);
	fwrite(m->body, 1, m->body_len, f);
	if (with_state && m->outgoing)
		fprintf(f, "  %s %s", tick(m->state), mqim_msg_state_name(m->state));
	fputc('\n', f);
	funlockfile(f);
}

/* ---- send ----------------------------------------------------------------------- */

static int parse_wait(const char *s, enum mqim_msg_state *out)
{
	static const struct { const char *name; enum mqim_msg_state st; } table[] = {
		{ "queued", MQIM_MSG_QUEUED }, { "sent", MQIM_MSG_SENT },
		{ "delivered", MQIM_MSG_DELIVERED }, { "read", MQIM_MSG_READ },
	};
	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
		if (strcmp(s, table[i].name) == 0) {
			*out = table[i].st;
			return 0;
		}
	}
	return -1;
}

int cmd_send(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "qos", required_argument, NULL, 'q' },
		{ "wait", required_argument, NULL, 'w' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ct", required_argument, NULL, 'c' },
		{ "group", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	enum mqim_msg_state want = MQIM_MSG_SENT;
	int qos = 1, timeout = DEFAULT_TIMEOUT_MS, ch;
	const char *group = NULL, *ct = NULL, *peer, *text;
	struct session s;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'q':
			if (strlen(optarg) != 1 || optarg[0] < '0' || optarg[0] > '2') {
				cli_err("send: --qos must be 0, 1 or 2");
				return EXIT_USAGE;
			}
			qos = optarg[0] - '0';
			break;
		case 'w':
			if (parse_wait(optarg, &want) != 0) {
				cli_err("send: --wait must be queued, sent, delivered or read");
				return EXIT_USAGE;
			}
			break;
		case 't':
			if ((timeout = cli_parse_seconds(optarg)) < 0) {
				cli_err("send: bad --timeout %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'c': ct = optarg; break;
		case 'g': group = optarg; break;
		case 'H': cli_usage("send"); return EXIT_OK;
		default: return bad_option("send", argv);
		}
	}
	if (argc - optind != (group ? 1 : 2))
		return cli_usage("send");
	peer = group ? group : argv[optind];
	text = argv[argc - 1];
	if (!mqim_name_valid(peer)) {
		cli_err("send: bad %s id '%s': %s", group ? "group" : "user", peer,
			mqim_strerror(MQIM_EBADNAME));
		return EXIT_USAGE;
	}

	char *body = NULL;
	size_t len = strlen(text);
	if (strcmp(text, "-") == 0) {
		if (!(body = cli_read_stdin(&len))) {
			cli_err("send: cannot read standard input");
			return EXIT_ERROR;
		}
		text = body;
	}
	int ex = session_open(&s, cli, want != MQIM_MSG_QUEUED);
	if (ex != EXIT_OK) {
		free(body);
		return ex;
	}
	uint8_t id[16];
	char hex[MQIM_ID_HEX_LEN + 1];
	int rc = mqim_send(s.c, peer, group != NULL, ct, text, len, qos, id);
	free(body);
	if (rc != MQIM_OK) {
		cli_err("send: %s", mqim_strerror(rc));
		session_close(&s);
		return rc == MQIM_ETOOBIG || rc == MQIM_EINVAL ? EXIT_USAGE : EXIT_ERROR;
	}
	pthread_mutex_lock(&s.mu);
	memcpy(s.watch_id, id, 16);
	s.watching = true;
	pthread_mutex_unlock(&s.mu);
	printf("%s\n", mqim_id_to_hex(id, hex));
	fflush(stdout);
	if (want != MQIM_MSG_QUEUED) {
		rc = mqim_connect(s.c);
		ex = rc == MQIM_OK ? session_wait_msg(&s, want, timeout) : EXIT_ERROR;
	}
	session_close(&s);
	return ex;
}

/* ---- listen ----------------------------------------------------------------------- */

struct listen_ctx {
	bool json;
};

static void listen_message(struct session *s, const struct mqim_message *m)
{
	struct listen_ctx *l = s->ctx;
	if (strcmp(m->kind, "typing") == 0)
		return;
	flockfile(stdout);
	if (l->json) {
		print_json(stdout, m, false);
		fputc('\n', stdout);
	} else {
		print_text(stdout, m, false, false);
	}
	fflush(stdout);
	funlockfile(stdout);
}

int cmd_listen(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct listen_ctx l = { false };
	long count = 0;
	int timeout = -1, ch;
	struct session s;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': l.json = true; break;
		case 'n': {
			char *end;
			count = strtol(optarg, &end, 10);
			if (*end || count <= 0) {
				cli_err("listen: bad --count %s", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 't':
			if ((timeout = cli_parse_seconds(optarg)) < 0) {
				cli_err("listen: bad --timeout %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'H': cli_usage("listen"); return EXIT_OK;
		default: return bad_option("listen", argv);
		}
	}
	if (optind != argc)
		return cli_usage("listen");
	int ex = session_open(&s, cli, true);
	if (ex != EXIT_OK)
		return ex;
	s.ctx = &l;
	s.on_message = listen_message;
	s.verbose_errors = true;
	catch_interrupts();
	if (mqim_connect(s.c) != MQIM_OK) {
		session_close(&s);
		return EXIT_ERROR;
	}
	int64_t deadline = timeout >= 0 ? cli_now_ms() + timeout : INT64_MAX;
	ex = EXIT_OK;
	for (;;) {
		pthread_mutex_lock(&s.mu);
		unsigned got = s.count;
		enum mqim_state st = s.state;
		int err = s.state_err;
		pthread_mutex_unlock(&s.mu);
		if (count && got >= (unsigned long)count)
			break;
		if (st == MQIM_STATE_AUTH_FAILED) {
			cli_err("login refused for %s: %s", cli->user, mqim_strerror(err));
			ex = EXIT_AUTH;
			break;
		}
		if (st == MQIM_STATE_TAKEN_OVER || st == MQIM_STATE_GAVE_UP) {
			cli_err("%s", st == MQIM_STATE_TAKEN_OVER ? mqim_strerror(MQIM_ETAKEN) : "gave up connecting");
			ex = EXIT_ERROR;
			break;
		}
		if (interrupted)
			break;
		if (cli_now_ms() >= deadline) {
			if (count)
				ex = EXIT_TIMEOUT;
			break;
		}
		usleep(50000);
	}
	session_close(&s);
	return ex;
}

/* ---- chat -------------------------------------------------------------------------- */

struct chat_ctx {
	const char *peer;
	bool group;
	uint8_t (*mine)[16];    /* ids sent in this chat */
	size_t nmine, capmine;
	pthread_mutex_t mu;
};

static void chat_message(struct session *s, const struct mqim_message *m)
{
	struct chat_ctx *c = s->ctx;
	if (strcmp(m->kind, "msg") != 0)
		return;
	bool here = c->group ? (m->is_group && strcmp(m->to, c->peer) == 0)
			     : (!m->is_group && strcmp(m->from, c->peer) == 0);
	if (!here) {
		printf("  (new message from %s%s%s)\n", m->from, m->is_group ? " in #" : "",
		       m->is_group ? m->to : "");
		fflush(stdout);
		return;
	}
	print_text(stdout, m, false, false);
	fflush(stdout);
	if (!m->outgoing)
		mqim_mark_read(s->c, m->from, m->id);   /* shown: read */
}

static void chat_state(struct session *s, enum mqim_state st, int err)
{
	(void)s;
	if (err != MQIM_OK)
		printf("-- %s (%s) --\n", mqim_state_name(st), mqim_strerror(err));
	else
		printf("-- %s --\n", mqim_state_name(st));
	fflush(stdout);
}

static void chat_msg_state(struct session *s, const uint8_t id[16], enum mqim_msg_state st)
{
	struct chat_ctx *c = s->ctx;
	char hex[MQIM_ID_HEX_LEN + 1];
	bool mine = false;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->nmine && !mine; i++)
		mine = memcmp(c->mine[i], id, 16) == 0;
	pthread_mutex_unlock(&c->mu);
	if (!mine)
		return;
	mqim_id_to_hex(id, hex);
	printf("    %-2s %s (%.8s)\n", tick(st), mqim_msg_state_name(st), hex + 24);
	fflush(stdout);
}

struct page {
	struct mqim_message *m;
	char **bufs;
	size_t n, cap;
};

/* Copy a message and its strings into the page (history gives them borrowed). */
static int page_add(void *ctx, const struct mqim_message *m)
{
	struct page *p = ctx;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct mqim_message *nm = realloc(p->m, cap * sizeof *nm);
		if (!nm)
			return MQIM_ENOMEM;
		p->m = nm;
		char **nb = realloc(p->bufs, cap * sizeof *nb);
		if (!nb)
			return MQIM_ENOMEM;
		p->bufs = nb;
		p->cap = cap;
	}
	size_t lf = strlen(m->from) + 1, lt = strlen(m->to) + 1, lc = strlen(m->content_type) + 1;
	char *buf = malloc(lf + lt + lc + m->body_len + 1);
	if (!buf)
		return MQIM_ENOMEM;
	struct mqim_message *d = &p->m[p->n];
	*d = *m;
	memcpy(buf, m->from, lf);
	memcpy(buf + lf, m->to, lt);
	memcpy(buf + lf + lt, m->content_type, lc);
	memcpy(buf + lf + lt + lc, m->body, m->body_len + 1);
	d->from = buf;
	d->to = buf + lf;
	d->content_type = buf + lf + lt;
	d->body = buf + lf + lt + lc;
	p->bufs[p->n++] = buf;
	return 0;
}

static void page_free(struct page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->bufs[i]);
	free(p->bufs);
	free(p->m);
}

static int conversation_args(const char *command, int argc, char **argv, const char *group,
			     const char **peer)
{
	if (argc - optind != (group ? 0 : 1))
		return cli_usage(command);
	*peer = group ? group : argv[optind];
	if (!mqim_name_valid(*peer)) {
		cli_err("%s: bad %s id '%s': %s", command, group ? "group" : "user", *peer,
			mqim_strerror(MQIM_EBADNAME));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int cmd_chat(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *group = NULL, *peer = NULL;
	struct chat_ctx c;
	struct session s;
	struct page p = { 0 };
	int ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'g': group = optarg; break;
		case 'H': cli_usage("chat"); return EXIT_OK;
		default: return bad_option("chat", argv);
		}
	}
	int ex = conversation_args("chat", argc, argv, group, &peer);
	if (ex != EXIT_OK)
		return ex;
	ex = session_open(&s, cli, true);
	if (ex != EXIT_OK)
		return ex;
	memset(&c, 0, sizeof c);
	c.peer = peer;
	c.group = group != NULL;
	pthread_mutex_init(&c.mu, NULL);
	if (group)
		mqim_join_group(s.c, group);

	printf("== chat with %s%s as %s (/quit to leave) ==\n", group ? "#" : "", peer, cli->user);
	mqim_history(s.c, peer, group != NULL, 0, NULL, 20, page_add, &p);
	for (size_t i = p.n; i-- > 0;)
		print_text(stdout, &p.m[i], true, true);
	page_free(&p);
	fflush(stdout);

	s.ctx = &c;
	s.on_message = chat_message;
	s.on_state = chat_state;
	s.on_msg_state = chat_msg_state;
	catch_interrupts();
	mqim_connect(s.c);

	char *line = NULL;
	size_t cap = 0;
	while (!interrupted) {
		struct pollfd pfd = { STDIN_FILENO, POLLIN, 0 };
		int pr = poll(&pfd, 1, 200);
		if (pr < 0 && errno != EINTR)
			break;
		if (pr <= 0)
			continue;
		ssize_t n = getline(&line, &cap, stdin);
		if (n < 0)
			break;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (strcmp(line, "/quit") == 0)
			break;
		uint8_t id[16];
		pthread_mutex_lock(&c.mu);
		int rc = mqim_send(s.c, peer, group != NULL, NULL, line, (size_t)n, 1, id);
		if (rc == MQIM_OK) {
			if (c.nmine == c.capmine) {
				size_t ncap = c.capmine ? c.capmine * 2 : 32;
				uint8_t (*nm)[16] = realloc(c.mine, ncap * sizeof *nm);
				if (nm) {
					c.mine = nm;
					c.capmine = ncap;
				}
			}
			if (c.nmine < c.capmine)
				memcpy(c.mine[c.nmine++], id, 16);
		}
		pthread_mutex_unlock(&c.mu);
		if (rc != MQIM_OK)
			cli_err("not sent: %s", mqim_strerror(rc));
	}
	free(line);
	session_close(&s);
	pthread_mutex_destroy(&c.mu);
	free(c.mine);
	return EXIT_OK;
}

/* ---- history, outbox --------------------------------------------------------------- */

int cmd_history(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "group", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "limit", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *group = NULL, *peer = NULL;
	bool json = false;
	long limit = 50;
	struct session s;
	struct page p = { 0 };
	int ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'g': group = optarg; break;
		case 'j': json = true; break;
		case 'n': {
			char *end;
			limit = strtol(optarg, &end, 10);
			if (*end || limit <= 0 || limit > 1000000) {
				cli_err("history: bad --limit %s", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'H': cli_usage("history"); return EXIT_OK;
		default: return bad_option("history", argv);
		}
	}
	int ex = conversation_args("history", argc, argv, group, &peer);
	if (ex != EXIT_OK)
		return ex;
	ex = session_open(&s, cli, false);
	if (ex != EXIT_OK)
		return ex;
	int rc = mqim_history(s.c, peer, group != NULL, 0, NULL, (unsigned)limit, page_add, &p);
	if (rc < 0) {
		cli_err("history: %s", mqim_strerror(rc));
		ex = EXIT_ERROR;
	}
	for (size_t i = p.n; i-- > 0;) {
		if (json) {
			print_json(stdout, &p.m[i], true);
			fputc('\n', stdout);
		} else {
			print_text(stdout, &p.m[i], true, true);
		}
	}
	page_free(&p);
	session_close(&s);
	return ex;
}

struct outbox_ctx {
	bool json;
};

static int outbox_line(void *ctx, const struct mqim_outbox_entry *e)
{
	struct outbox_ctx *o = ctx;
	char hex[MQIM_ID_HEX_LEN + 1], when[32];
	mqim_id_to_hex(e->id, hex);
	if (o->json) {
		printf("{\"id\":\"%s\",\"to\":", hex);
		cli_json_string(stdout, e->to, strlen(e->to));
		printf(",\"group\":%s,\"qos\":%d,\"state\":\"%s\",\"attempts\":%u,\"created\":%llu,\"body\":",
		       e->is_group ? "true" : "false", e->qos, mqim_msg_state_name(e->state),
		       e->attempts, (unsigned long long)e->created);
		cli_json_string(stdout, e->body, e->body_len);
		printf("}\n");
	} else {
		format_time(when, sizeof when, e->created, true);
		printf("%s  %s%-12s %-6s qos %d  %u attempt%s  %s  ", hex, e->is_group ? "#" : "", e->to,
		       mqim_msg_state_name(e->state), e->qos, e->attempts, e->attempts == 1 ? "" : "s", when);
		fwrite(e->body, 1, e->body_len > 60 ? 60 : e->body_len, stdout);
		printf("%s\n", e->body_len > 60 ? "..." : "");
	}
	return 0;
}

int cmd_outbox(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct outbox_ctx o = { false };
	struct session s;
	int ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'j': o.json = true; break;
		case 'H': cli_usage("outbox"); return EXIT_OK;
		default: return bad_option("outbox", argv);
		}
	}
	if (optind != argc)
		return cli_usage("outbox");
	int ex = session_open(&s, cli, false);
	if (ex != EXIT_OK)
		return ex;
	int rc = mqim_outbox(s.c, outbox_line, &o);
	if (rc < 0) {
		cli_err("outbox: %s", mqim_strerror(rc));
		ex = EXIT_ERROR;
	}
	session_close(&s);
	return ex;
}

/* ---- retry -------------------------------------------------------------------------- */

int cmd_retry(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	int timeout = DEFAULT_TIMEOUT_MS, ch;
	uint8_t id[16];
	struct session s;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 't':
			if ((timeout = cli_parse_seconds(optarg)) < 0) {
				cli_err("retry: bad --timeout %s", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'H': cli_usage("retry"); return EXIT_OK;
		default: return bad_option("retry", argv);
		}
	}
	if (argc - optind != 1)
		return cli_usage("retry");
	if (mqim_id_from_hex(argv[optind], id) != MQIM_OK) {
		cli_err("retry: '%s' is not a message id (32 hex digits)", argv[optind]);
		return EXIT_USAGE;
	}
	int ex = session_open(&s, cli, true);
	if (ex != EXIT_OK)
		return ex;
	int rc = mqim_retry(s.c, id);
	if (rc == MQIM_ENOTFOUND || rc == MQIM_ESTATE) {
		cli_err("retry: %s", rc == MQIM_ENOTFOUND ? "no such message in the outbox"
							  : "the message has not failed");
		session_close(&s);
		return EXIT_ERROR;
	}
	if (rc != MQIM_OK) {
		cli_err("retry: %s", mqim_strerror(rc));
		session_close(&s);
		return EXIT_ERROR;
	}
	pthread_mutex_lock(&s.mu);
	memcpy(s.watch_id, id, 16);
	s.watching = true;
	pthread_mutex_unlock(&s.mu);
	rc = mqim_connect(s.c);
	ex = rc == MQIM_OK ? session_wait_msg(&s, MQIM_MSG_SENT, timeout) : EXIT_ERROR;
	session_close(&s);
	return ex;
}

/* ---- members ------------------------------------------------------------------------ */

int cmd_members(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	struct session s;
	int ch;

	getopt_reset();
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'H': cli_usage("members"); return EXIT_OK;
		default: return bad_option("members", argv);
		}
	}
	if (argc - optind < 1)
		return cli_usage("members");
	const char *gid = argv[optind];
	/* argv is NULL-terminated: the members follow the group id. */
	const char *const *members = (const char *const *)&argv[optind + 1];
	int ex = session_open(&s, cli, false);
	if (ex != EXIT_OK)
		return ex;
	int rc = mqim_set_group_members(s.c, gid, members);
	if (rc == MQIM_EBADNAME) {
		cli_err("members: a group id or user id is not a valid name: %s", mqim_strerror(rc));
		ex = EXIT_USAGE;
	} else if (rc != MQIM_OK) {
		cli_err("members: %s", mqim_strerror(rc));
		ex = EXIT_ERROR;
	}
	session_close(&s);
	return ex;
}
