/* atk.h - what the attack tests share: envelopes and hand-made MessagePack,
 * a bystander pair that keeps chatting while an attack runs, latency
 * percentiles and the broker's memory.
 *
 * The bystander pair is two raw MQTT 5 clients (raw.h) playing ping-pong
 * through their inboxes at QoS 1: A sends to B, B answers A, and the time
 * from A's send to A's receipt of the answer is one round trip.  Each
 * message carries a fresh id that the receiver checks, so a lost, foreign or
 * duplicated message is counted.  The pair can run synchronously (a
 * baseline) or on its own thread while the test thread attacks; the test
 * thread reads the counters with atk_pair_stats() and does the asserting.
 *
 * Thread rules: a pair's counters are guarded by its mutex; everything else
 * belongs to the calling thread.
 */
#ifndef MQIM_ATTACK_ATK_H
#define MQIM_ATTACK_ATK_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "envelope.h"
#include "raw.h"

#define ATK_PW "pw-Atk-7"   /* the password of every user the tests create */

/* True when MQIM_ATTACK_FULL=1: heavy cases run at full size. */
bool atk_full(void);

/* Resident memory of a process in KiB (VmRSS), or -1. */
long atk_rss_kb(pid_t pid);

/* True when resident memory grew by less than limit_kib between two
 * readings.  Under AddressSanitizer (make SANITIZE=address: the test and
 * the broker's plugin use its allocator, whose quarantine keeps freed
 * memory resident) memory says nothing, and this is always true. */
bool atk_rss_within(long before_kib, long after_kib, long limit_kib);

/* The pct-th percentile (0..100) of n values (a sorted copy is made); 0
 * when n is 0. */
int64_t atk_percentile(const int64_t *v, size_t n, double pct);

/* Sleep ms milliseconds. */
void atk_sleep_ms(int ms);

/* ---- envelopes ------------------------------------------------------------- */

/* A valid envelope into a malloc'd *out (free()): kind t, fr, to, body
 * (may be NULL), id (NULL: a random one), its id copied to id_out (may be
 * NULL).  Returns the length, 0 on error. */
size_t atk_env(void **out, const char *t, const char *fr, const char *to, const char *body,
	       const uint8_t *id, uint8_t id_out[MQIM_ENV_ID_LEN]);

/* Decode payload as an envelope: 0 with *env (pointing into payload), or an
 * MQIM_E* code. */
int atk_env_decode(const void *payload, size_t len, struct mqim_env *env);

/* A hand-made MessagePack writer, for envelopes no codec would produce. */
struct mpw {
	uint8_t *b;
	size_t len, cap;
	bool failed;        /* out of memory: every later call does nothing */
};

void mpw_init(struct mpw *w);
void mpw_free(struct mpw *w);
void mpw_raw(struct mpw *w, const void *p, size_t n);
void mpw_byte(struct mpw *w, uint8_t b);
void mpw_map(struct mpw *w, uint32_t n);     /* the shortest map header */
void mpw_str(struct mpw *w, const char *s);
void mpw_bin(struct mpw *w, const void *p, size_t n);
void mpw_uint(struct mpw *w, uint64_t v);

/* Start an envelope map of 6 + extra entries and write the six required
 * ones (v 1, id, t, fr, to, ts now); the caller adds the extra entries. */
void mpw_env(struct mpw *w, unsigned extra, const char *t, const char *fr, const char *to,
	     const uint8_t id[MQIM_ENV_ID_LEN]);

/* ---- $CONTROL over a raw connection ------------------------------------------------ */

/* An admin session for $CONTROL/mqim/v1 requests, on a raw socket: the
 * attack tests open thousands of raw sockets, and paho (tclient) must not
 * run in the same process meanwhile (its threads keep polling the
 * descriptors of a destroyed client, which new sockets then reuse). */
struct atk_admin {
	struct raw r;
	unsigned corr;              /* correlationData counter */
	bool opened;
};

/* Log in as user (an admin) with client id "{user}/atk-admin" and
 * subscribe to the response topic.  0 or -1. */
int atk_admin_open(struct atk_admin *a, int port, const char *user);

/* Run one command (a JSON object text, e.g. {"command":"getUser",...}):
 * its response object ({"command":..., "data"|"error":...}, to free with
 * cJSON_Delete()), or NULL when the request was refused or no answer came
 * within 5 s. */
struct cJSON *atk_admin_call(struct atk_admin *a, const char *cmd_json);

/* The same from a printf format; 0 when the response has no "error". */
int atk_admin_ok(struct atk_admin *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Disconnect; does nothing on one that is not open (or zeroed). */
void atk_admin_close(struct atk_admin *a);

/* Create users offline in the store at db_path, hashed with the production
 * argon2 cost (mqim_passwd_hash(NULL, ...)), as tbroker_add_user() does
 * with a tiny one.  0 or -1. */
int atk_add_user_default_cost(const char *db_path, const char *name, const char *password,
			      bool disabled);

/* ---- the bystander pair -------------------------------------------------------- */

struct atk_pair {
	int port;
	char a[65], b[65];          /* user names, password ATK_PW */
	struct raw ra, rb;
	pthread_t thread;
	bool running;
	int interval_ms;            /* pause between round trips on the thread */
	pthread_mutex_t mu;         /* guards what follows */
	bool stop;
	int64_t *rtt_us;            /* every round trip, in order */
	size_t n, cap;
	unsigned failures;          /* round trips lost, refused or garbled */
	char why[200];              /* the first failure */
};

/* Log a and b in (client ids "{a}/bystander", "{b}/bystander"), subscribe
 * them to their inboxes.  0, or -1 with a message on stderr. */
int atk_pair_open(struct atk_pair *p, int port, const char *a, const char *b);

/* One round trip on the calling thread; its time in *rtt_us.  0 or -1. */
int atk_pair_round(struct atk_pair *p, int64_t *rtt_us);

/* Run n round trips on the calling thread and return their p99 (µs), or
 * -1 if one failed; the round trips are recorded like the thread's. */
int64_t atk_pair_baseline(struct atk_pair *p, size_t n, int64_t *p50_us);

/* Start / stop the background thread (round trips every interval_ms). */
int atk_pair_start(struct atk_pair *p, int interval_ms);
void atk_pair_stop(struct atk_pair *p);

/* Round trips recorded so far (a mark for atk_pair_stats()). */
size_t atk_pair_mark(struct atk_pair *p);

/* Round trips since mark: their count, and p50 / p99 in µs (may be NULL).
 * Returns the failures counted so far. */
unsigned atk_pair_stats(struct atk_pair *p, size_t mark, size_t *count, int64_t *p50_us,
			int64_t *p99_us);

/* Fail the test unless the bystander pair p made at least 3 round trips
 * since mark without a failure (waiting up to wait_ms for them), and the
 * broker process broker_pid is still alive. */
void atk_bystanders_ok(struct atk_pair *p, size_t mark, pid_t broker_pid, int wait_ms);

/* Log user in over raw MQTT 5 on port as "{user}/{suffix}" with ATK_PW,
 * retrying like a real client; fails the test if refused. */
void atk_login(struct raw *r, int port, const char *user, const char *suffix);

/* The slowest round trip since mark, in µs (0 when none). */
int64_t atk_pair_max(struct atk_pair *p, size_t mark);

/* Stop and close (disconnect both).  Safe on a pair that failed to open,
 * or a zeroed one that was never opened; a second call does nothing. */
void atk_pair_close(struct atk_pair *p);

#endif
