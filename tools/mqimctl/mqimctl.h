/* mqimctl.h - internal interfaces of mqimctl, the mqim admin tool.
 *
 * One section per file:
 *   commands.c  the command-line command table and request building
 *   help.c      --help texts, built from the table
 *   password.c  where passwords come from (flag, environment, stdin, prompt)
 *   import.c    `user import FILE`: CSV and Mosquitto password files
 *   offline.c   --db FILE: run requests through mqim_admin_exec()
 *   online.c    -h HOST: send requests over $CONTROL/mqim/v1 with paho
 *   token.c     token issue: an HS256 login token, signed locally
 *   output.c    human and --json output, exit status from responses
 *   main.c      option parsing, mode selection, the run
 *
 * A request is a cJSON array of command objects built with
 * mqim_admin_build(); both modes turn it into a cJSON array holding one
 * response object per command, in the same order.  Everything is
 * single-threaded except online.c's callbacks, which touch only that file's
 * state under its mutex.  Passwords live in caller-owned buffers that are
 * wiped (ctl_wipe) before they go out of scope; none is ever printed except
 * a --generate'd one, once, on purpose.
 */
#ifndef MQIMCTL_H
#define MQIMCTL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "admin.h"
#include "passwd.h"

/* Exit statuses (docs/admin.md). */
enum ctl_exit {
	CTL_OK = 0,
	CTL_USAGE = 1,       /* bad command line or unusable input file */
	CTL_REFUSED = 2,     /* the broker or the store refused */
	CTL_UNREACHABLE = 3, /* could not connect, no answer, or no store */
};

/* What a positional parameter of a command is. */
enum ctl_param { CP_NONE, CP_USER, CP_GROUP, CP_ONOFF, CP_FILE };

enum ctl_kind { CK_SIMPLE, CK_INIT, CK_IMPORT, CK_TOKEN };

/* Flags of a command-line command. */
#define CF_PASSWORD     0x01u  /* sets a password: --password-stdin, --generate */
#define CF_ADMIN        0x02u  /* takes --admin */
#define CF_OFFLINE_ONLY 0x04u
#define CF_ONLINE_ONLY  0x08u
#define CF_LOCAL        0x10u  /* needs neither the store nor a broker */

#define CTL_MAX_PARAMS 3

struct ctl_cmd {
	const char *words;                     /* "group member add" */
	enum ctl_param params[CTL_MAX_PARAMS]; /* CP_NONE-terminated */
	const char *wire;                      /* "addGroupMember"; NULL for init */
	enum ctl_kind kind;
	unsigned flags;                        /* CF_* */
	const char *synopsis;                  /* "GID USER" */
	const char *summary;                   /* one line */
	const char *help;                      /* paragraphs, already wrapped */
	const char *example;                   /* example lines */
};

/* The parsed command line; strings are borrowed from argv. */
struct ctl {
	const char *db;
	const char *host;
	int port;                 /* 0: default for the transport */
	const char *user;         /* -u: the admin logging in (online) */
	const char *password;     /* -P */
	const char *cafile, *cert, *key;
	bool insecure;            /* TLS without the host name check */
	int timeout;              /* seconds */
	long ttl;                 /* token issue: seconds, 0 when not given */
	const char *secret_file, *audience, *issuer;  /* token issue */
	bool json, password_stdin, generate, admin;
	bool online;
	const struct ctl_cmd *cmd;
	char **args;              /* the command's parameters */
	int nargs;
};

/* ---- commands.c ---------------------------------------------------------- */

extern const struct ctl_cmd ctl_cmds[];
extern const size_t ctl_ncmds;

/* The command whose words start words[0..n); *used gets how many words it
 * took.  NULL when none matches. */
const struct ctl_cmd *ctl_cmd_find(char **words, int n, int *used);

/* How many parameters cmd takes. */
int ctl_cmd_nparams(const struct ctl_cmd *cmd);

/* Build the request for a CK_SIMPLE command into the array `commands`.
 * password is the new password (NULL when the command sets none); it is
 * copied into the request.  Returns CTL_OK or CTL_USAGE (message printed). */
int ctl_build_simple(const struct ctl *c, const char *password, cJSON *commands);

/* Overwrite the "password" string of one command object (NULL is fine), or
 * of every command in a request, before it is freed. */
void ctl_command_wipe(cJSON *cmd);
void ctl_request_wipe(cJSON *commands);

/* ---- help.c -------------------------------------------------------------- */

void ctl_help_global(void);
/* Help for the commands whose words start with prefix ("user", "user add"). */
void ctl_help_commands(const char *prefix);
/* Print "mqimctl: msg" and the hint to stderr; returns CTL_USAGE. */
int ctl_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same without the hint, for unusable input (a password, a file) when
 * the command line itself was right; returns CTL_USAGE. */
int ctl_input_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- password.c ---------------------------------------------------------- */

#define CTL_PW_BUF (MQIM_PASSWORD_MAX + 2)

/* The admin's login password for online mode: -P, $MQIM_PASSWORD, or a
 * prompt when stdin is a terminal.  Returns CTL_OK or CTL_USAGE. */
int ctl_login_password(const struct ctl *c, char *buf, size_t len);

/* The password a command sets for user: --password-stdin, --generate, (for
 * init: -P, $MQIM_PASSWORD), or a prompt asked twice.  *generated is set
 * when it was made up here.  Returns CTL_OK or CTL_USAGE. */
int ctl_new_password(const struct ctl *c, const char *user, char *buf, size_t len,
		     bool *generated);

void ctl_wipe(void *p, size_t n);

/* ---- import.c ------------------------------------------------------------ */

/* Read path ("-" for stdin) and append one createUser per account to
 * `commands`.  Returns CTL_OK, or CTL_USAGE with the offending line named on
 * stderr (then nothing is to be sent). */
int ctl_import_build(const char *path, cJSON *commands);

/* ---- offline.c ----------------------------------------------------------- */

/* Run the request against the store at c->db; *responses gets a new array.
 * A request of several commands is one transaction, its passwords hashed
 * before it starts.  The request is not changed.  Returns CTL_OK (look at
 * the responses), or CTL_UNREACHABLE / CTL_REFUSED with the reason printed. */
int ctl_offline_run(const struct ctl *c, const cJSON *request, cJSON **responses);

/* `init ADMIN`: create the store at c->db and run the request (the one
 * createUser of the first admin) in it.  Refuses an invalid name before
 * creating anything, and a store that holds users or groups already. */
int ctl_offline_init(const struct ctl *c, const cJSON *request, cJSON **responses);

/* ---- online.c ------------------------------------------------------------ */

/* Send the request to the broker, logged in as c->user with password, and
 * collect one response per command.  Returns CTL_OK, CTL_REFUSED or
 * CTL_UNREACHABLE with the reason printed. */
int ctl_online_run(const struct ctl *c, const char *password, const cJSON *commands,
		   cJSON **responses);

/* ---- token.c ------------------------------------------------------------ */

/* `token issue USER`: print a signed token.  Returns CTL_OK or CTL_USAGE. */
int ctl_token_issue(const struct ctl *c);

/* ---- output.c ------------------------------------------------------------ */

/* Print the outcome of a request and return the exit status: CTL_OK when
 * every response succeeded, CTL_REFUSED otherwise.  generated, when not
 * NULL, is a password made up by --generate for user, shown once. */
int ctl_print(const struct ctl *c, const cJSON *commands, const cJSON *responses,
	      const char *user, const char *generated);

#endif
