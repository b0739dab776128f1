/* cli.h - the mqim command-line chat client: what its files share.
 *
 *   main.c      global options, help, the command table, the shared client
 *               session (callbacks into one struct, waiting on it)
 *   commands.c  send, listen, chat, history, outbox, retry
 *   pack.c      pack and unpack: JSON envelope <-> MessagePack
 *
 * Exit codes are the MQIM_CLI_EXIT_* values; main.c documents them in the
 * help text.
 */
#ifndef MQIM_CLI_H
#define MQIM_CLI_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mqim.h"

enum {
	EXIT_OK = 0,
	EXIT_ERROR = 1,      /* connection, data folder, or any other error */
	EXIT_USAGE = 2,      /* bad command line */
	EXIT_AUTH = 3,       /* the broker refused the user or password */
	EXIT_TIMEOUT = 4,    /* the awaited state or count was not reached in time */
	EXIT_FAILED = 5,     /* the message failed (refused, or no receipt after every resend) */
};

/* Global options. */
struct cli {
	const char *host;
	int port;
	const char *uri;
	const char *ca_file;
	const char *cert_file;    /* mutual TLS */
	const char *key_file;
	int insecure;
	const char *user;
	char *password;          /* malloc'd */
	const char *data_dir;
	char data_dir_buf[4096];
	const char *client_id;
	unsigned keepalive;
};

/* A client and what its callbacks reported, for the commands to wait on. */
struct session {
	struct cli *cli;
	mqim_client *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum mqim_state state;
	int state_err;
	/* send/retry: the one message watched */
	uint8_t watch_id[16];
	bool watching;
	enum mqim_msg_state watch_state;
	int watch_err;
	/* listen/chat: hooks called on the library thread */
	void (*on_message)(struct session *s, const struct mqim_message *m);
	void (*on_state)(struct session *s, enum mqim_state st, int err);
	void (*on_msg_state)(struct session *s, const uint8_t id[16], enum mqim_msg_state st);
	void *ctx;
	unsigned count;          /* messages handed to on_message */
	bool verbose_errors;
};

/* Open the client of the global options (not connected).  Prints the
 * reason and returns an exit code on failure. */
int session_open(struct session *s, struct cli *cli, bool need_password);
void session_close(struct session *s);
/* Connect and wait until connected (or a final state) within timeout_ms:
 * EXIT_OK, EXIT_AUTH, EXIT_TIMEOUT or EXIT_ERROR (with a message). */
int session_connect(struct session *s, int timeout_ms);
/* Wait for the watched message to reach `want` (or any later state):
 * EXIT_OK, EXIT_FAILED, EXIT_AUTH, EXIT_TIMEOUT. */
int session_wait_msg(struct session *s, enum mqim_msg_state want, int timeout_ms);

/* Milliseconds, monotonic. */
int64_t cli_now_ms(void);
/* Print "mqim: what: reason" to stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parse seconds ("2", "0.5") into ms; -1 when invalid. */
int cli_parse_seconds(const char *s);
/* Read all of stdin into a malloc'd buffer (NUL-terminated); NULL on error. */
char *cli_read_stdin(size_t *len);
/* Print a usage block for one command and return EXIT_USAGE. */
int cli_usage(const char *command);

/* Commands: argc/argv start at the command name. */
int cmd_send(struct cli *cli, int argc, char **argv);
int cmd_listen(struct cli *cli, int argc, char **argv);
int cmd_chat(struct cli *cli, int argc, char **argv);
int cmd_history(struct cli *cli, int argc, char **argv);
int cmd_outbox(struct cli *cli, int argc, char **argv);
int cmd_retry(struct cli *cli, int argc, char **argv);
int cmd_members(struct cli *cli, int argc, char **argv);
int cmd_pack(struct cli *cli, int argc, char **argv);
int cmd_unpack(struct cli *cli, int argc, char **argv);

/* JSON string escaping of len bytes (invalid UTF-8 becomes U+FFFD) to f. */
void cli_json_string(FILE *f, const char *s, size_t len);

#endif
