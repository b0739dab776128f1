/* tbroker.h - start a real mosquitto with the built plugin, for tests.
 *
 * Each broker gets a fresh temporary folder (under $TMPDIR or /tmp) holding
 * its generated mosquitto.conf, its SQLite store, its persistence file and
 * its log, and listens on a free port of 127.0.0.1.  Tests that need users
 * and groups create them with the store API (offline) before start, or with
 * tbroker_sighup() after an offline change while it runs.
 *
 * Set MQIM_BROKER_WRAPPER (e.g. "valgrind --leak-check=full -q") to run the
 * broker under a wrapper.  Set MQIM_KEEP_TMP=1 to keep the folder.
 * Not thread-safe: use a struct tbroker from one thread.
 */
#ifndef MQIM_TBROKER_H
#define MQIM_TBROKER_H

#include <stdbool.h>
#include <sys/types.h>

struct tbroker {
	pid_t pid;
	int port;
	char dir[256];          /* the temporary folder */
	char db_path[320];      /* SQLite store: dir/mqim.db */
	char conf_path[320];
	char log_path[320];
	char extra_conf[2048];  /* lines appended to the generated conf */
};

/* Prepare b: make the folder, pick a free port, create an empty store with
 * no users.  extra_conf (may be NULL) is appended to the generated conf,
 * e.g. "plugin_opt_dedup_window 5\n".  Returns 0 or -1. */
int tbroker_init(struct tbroker *b, const char *extra_conf);

/* Start mosquitto and wait until the port accepts connections (10 s at
 * most).  Returns 0 or -1 (with the log printed to stderr). */
int tbroker_start(struct tbroker *b);

/* SIGTERM and wait (10 s, then SIGKILL).  Returns the exit status. */
int tbroker_stop(struct tbroker *b);

/* Send a signal (SIGKILL, SIGSTOP, SIGCONT, SIGHUP); for SIGKILL also reaps. */
int tbroker_signal(struct tbroker *b, int sig);

/* SIGHUP and wait until the plugin logged its reload. */
int tbroker_sighup(struct tbroker *b);

/* Stop (if running) and remove the folder unless MQIM_KEEP_TMP is set. */
void tbroker_cleanup(struct tbroker *b);

/* Offline provisioning through the store API (works while the broker runs;
 * follow with tbroker_sighup() to make a running broker see it). */
int tbroker_add_user(struct tbroker *b, const char *name, const char *password, bool admin);
int tbroker_add_group(struct tbroker *b, const char *gid, const char *const *members);

/* True once the broker log contains needle (waits up to timeout_ms). */
bool tbroker_log_wait(struct tbroker *b, const char *needle, int timeout_ms);

/* Number of times needle occurs in the broker log now. */
int tbroker_log_count(struct tbroker *b, const char *needle);

/* Path of the built plugin and of build/ (from MQIM_BUILD_DIR, default
 * "build" relative to the current directory). */
const char *tbroker_build_dir(void);

#endif
