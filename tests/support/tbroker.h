/* tbroker.h - start a real mosquitto with the built plugin, for tests.
 *
 * Each broker gets a fresh temporary folder (under $TMPDIR or /tmp) holding
 * its generated mosquitto.conf, its SQLite store, its persistence file and
 * its log, and listens on a free port of 127.0.0.1.  Tests that need users
 * and groups create them with the store API (offline) before start, or with
 * tbroker_sighup() after an offline change while it runs.
 *
 * Set MQIM_BROKER_WRAPPER (e.g. "valgrind --leak-check=full -q") to run the
 * broker under a wrapper.  Set MQIM_KEEP_TMP=1 to keep the folder,
 * MQIM_BROKER_DEBUG=1 to add "log_type debug", and MQIM_BROKER_NO_PLUGIN=1
 * to leave the plugin out (only for debugging this harness).
 *
 * The generated conf holds a loopback listener, allow_anonymous false,
 * persistence (autosave every second), set_tcp_nodelay, a large queue, the
 * log file, "user root" when run as root, the plugin with its store and a
 * cheap argon2 cost, then extra_conf.  A default line is left out when
 * extra_conf sets the same option (e.g. "allow_anonymous true\n"), because
 * Mosquitto refuses most options given twice.
 *
 * At exit every broker not cleaned up is killed and its folder removed, so a
 * failed assertion leaves nothing behind; a broker also dies with a test
 * process that crashed.  When the test binary is built with AddressSanitizer
 * (make SANITIZE=address,...) the broker gets the ASan runtime preloaded, so
 * that a stock mosquitto can load the sanitized plugin.
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
 * most, 60 s under a wrapper).  The conf is written now from b->extra_conf,
 * so a test may change extra_conf between a stop and a start.  If the port
 * was taken meanwhile, another one is picked.  Returns 0 or -1 (with the
 * logs printed to stderr). */
int tbroker_start(struct tbroker *b);

/* SIGTERM and wait (10 s, then SIGKILL).  Returns the exit status. */
int tbroker_stop(struct tbroker *b);

/* Send a signal (SIGKILL, SIGSTOP, SIGCONT, SIGHUP); for SIGKILL also reaps. */
int tbroker_signal(struct tbroker *b, int sig);

/* SIGHUP and wait until the plugin logged its reload. */
int tbroker_sighup(struct tbroker *b);

/* Stop (if running) and remove the folder unless MQIM_KEEP_TMP is set.
 * Returns the broker's exit status (0 if it was not running); a non-zero
 * one is reported on stderr with the logs: under MQIM_BROKER_WRAPPER
 * (valgrind --error-exitcode) it is how a leak shows, so a test's teardown
 * should fail on it. */
int tbroker_cleanup(struct tbroker *b);

/* Offline provisioning through the store API (works while the broker runs;
 * follow with tbroker_sighup() to make a running broker see it). */
int tbroker_add_user(struct tbroker *b, const char *name, const char *password, bool admin);
int tbroker_add_group(struct tbroker *b, const char *gid, const char *const *members);
int tbroker_del_user(struct tbroker *b, const char *name);
int tbroker_set_disabled(struct tbroker *b, const char *name, bool disabled);
int tbroker_del_member(struct tbroker *b, const char *gid, const char *user);

/* True once the broker log contains needle (waits up to timeout_ms). */
bool tbroker_log_wait(struct tbroker *b, const char *needle, int timeout_ms);

/* Number of times needle occurs in the broker log now. */
int tbroker_log_count(struct tbroker *b, const char *needle);

/* True once one line of the log contains every string of the NULL-terminated
 * needles (waits up to timeout_ms). */
bool tbroker_log_wait_line(struct tbroker *b, const char *const needles[], int timeout_ms);

/* Path of the built plugin and of build/ (from MQIM_BUILD_DIR, default
 * "build" relative to the current directory). */
const char *tbroker_build_dir(void);

/* In a forked child about to exec a stock mosquitto: when this process
 * runs with AddressSanitizer (make SANITIZE=address), preload its runtime
 * so the sanitized plugin loads.  No-op otherwise, or under a wrapper. */
void tbroker_preload_sanitizer(void);

#endif
