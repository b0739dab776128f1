/* bench.h - mqim-bench's internal API, one section per source file.
 *
 * mqim-bench is a load generator for three brokers side by side: (A) stock
 * Mosquitto, (B) Mosquitto with its dynamic-security plugin, (C) Mosquitto
 * with the mqim plugin.  The MQTT side is a raw MQTT 5 client (mqtt_raw.h)
 * over non-blocking sockets and one epoll loop on one thread: no library
 * thread, no lock, no copy between threads, one read and one write per
 * socket per loop turn however many packets they carry.  On this 2-core
 * machine the broker takes one core and the generator must do its part on
 * the other with room to spare, which a threaded client library (paho,
 * libmosquitto: a thread and a lock per connection, a malloc per message)
 * would not leave.
 *
 * Everything runs on 127.0.0.1 only, and every loop is bounded by a count
 * and a deadline.
 *
 * Thread rules: single-threaded, except the dedup and client benchmarks,
 * which own their data.  No mutable global state: every run owns its
 * struct, created and freed by the scenario that uses it.
 */
#ifndef MQIM_BENCH_H
#define MQIM_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "mqtt_raw.h"

#define BENCH_HOST      "127.0.0.1"
#define BENCH_PASSWORD  "bench-Pa55word"
#define BENCH_BODY_LEN  200
#define BENCH_GROUP     "bench"
#define BENCH_MAX_PAIRS 1000
#define BENCH_MAX_GROUP 1000
#define BENCH_MAX_STORM 100000
#define BENCH_MAX_CONNS 100000

/* Exit codes of the program. */
enum {
	EXIT_OK = 0,
	EXIT_FAIL = 1,     /* a broker or a run failed */
	EXIT_USAGE = 2,    /* bad command line */
	EXIT_MISSED = 3,   /* compare --strict: a figure of issue 4 was missed */
};

/* ---- util.c: clocks, logging, small helpers -------------------------------- */

uint64_t mono_ns(void);
uint64_t wall_ms(void);
void sleep_ms(unsigned ms);
/* Progress and errors on stderr; verbose lines only with -v. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void set_verbose(bool on);
bool is_verbose(void);
/* A random 64-bit value from getrandom(). */
uint64_t rand64(void);
/* xorshift64* step, for cheap jitter. */
uint64_t xs64(uint64_t *state);
/* Raise RLIMIT_NOFILE to at least want (up to the hard limit); returns
 * the soft limit now in force. */
long raise_nofile(long want);
/* Write-then-rename the len bytes at data into path; 0 or -1. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Whole file into a NUL-terminated malloc'd buffer (free()), or NULL. */
char *slurp(const char *path, size_t *len_out);
/* Recursively remove a folder (best effort). */
void rm_tree(const char *dir);
/* A whole-string number in [lo, hi] into *out (command-line values);
 * false, *out untouched, otherwise. */
bool parse_num(const char *s, double lo, double hi, double *out);

/* A min-heap of (time, index): the clients waiting to retry. */
struct theap {
	struct titem {
		uint64_t t;
		uint32_t idx;
	} *v;
	size_t n, cap;
};
int theap_push(struct theap *h, uint64_t t, uint32_t idx);
/* Pop one item due at now; false when none is. */
bool theap_pop_due(struct theap *h, uint64_t now, uint32_t *idx);
/* Time of the earliest item, UINT64_MAX when empty. */
uint64_t theap_next(const struct theap *h);
void theap_free(struct theap *h);

/* ---- net.c: non-blocking connections and the epoll loop ------------------- */

struct bloop;
struct bconn;

struct bconn_ops {
	void (*on_connected)(struct bconn *c);        /* TCP connect completed */
	void (*on_data)(struct bconn *c);             /* new bytes in c->in */
	void (*on_closed)(struct bconn *c, int err);  /* after the socket closed */
};

struct bconn {
	int fd;                      /* -1 when closed */
	struct bloop *loop;
	const struct bconn_ops *ops;
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	bool connecting, dirty, want_out;
};

struct bloop {
	int epfd;
	uint64_t now;                /* mono_ns() at the start of this turn */
	struct bconn **dirty;        /* connections with bytes to write */
	size_t ndirty, dirty_cap;
	unsigned open;               /* connections open now */
};

int bloop_init(struct bloop *l);
void bloop_free(struct bloop *l);
/* One turn: wait for events up to timeout_ms, dispatch them, then write
 * what the callbacks queued.  Returns the number of events, or -1. */
int bloop_turn(struct bloop *l, int timeout_ms);
/* Write every queued byte now (also done at the end of each turn). */
void bloop_flush(struct bloop *l);

/* Start a TCP connection to 127.0.0.1:port; on_connected follows.  c must
 * stay at its address until closed.  Returns 0, or -1 (errno set; nothing
 * registered, no callback). */
int bconn_open(struct bconn *c, struct bloop *l, const struct bconn_ops *ops, int port);
/* Room for n more output bytes; NULL when out of memory. */
uint8_t *bconn_reserve(struct bconn *c, size_t n);
/* n bytes written at the reserved place are queued. */
void bconn_commit(struct bconn *c, size_t n);
/* Write c's queued bytes now; 0, or -1 after closing it on an error. */
int bconn_flush(struct bconn *c);
/* Drop n bytes from the front of c->in. */
void bconn_consume(struct bconn *c, size_t n);
/* Close now (queued output is dropped); on_closed is called with err. */
void bconn_close(struct bconn *c, int err);
/* Free the buffers of a closed connection. */
void bconn_free(struct bconn *c);

/* ---- client.c: an MQTT client on a bconn ------------------------------------ */

struct mclient;

struct mclient_ops {
	void (*on_up)(struct mclient *m);                       /* CONNACK 0 */
	void (*on_refused)(struct mclient *m, uint8_t reason);  /* CONNACK >= 0x80 */
	void (*on_down)(struct mclient *m, bool was_up);        /* connection gone */
	void (*on_suback)(struct mclient *m, const struct mqtt_pkt *p);
	/* An application message arrived (QoS 2: at its PUBLISH). */
	void (*on_message)(struct mclient *m, const struct mqtt_pkt *p);
	/* A QoS 1/2 publish is done: PUBACK, PUBCOMP, or a refusing PUBREC. */
	void (*on_acked)(struct mclient *m, uint16_t packet_id, uint8_t reason);
};

enum mclient_state { MC_IDLE, MC_TCP, MC_CONNACK, MC_UP, MC_CLOSED };

struct mclient {
	struct bconn conn;           /* first: a bconn pointer is an mclient */
	const struct mclient_ops *ops;
	void *owner;
	uint32_t idx;                /* the owner's index of this client */
	uint32_t tag;                /* the owner's use (flow, receiver...) */
	enum mclient_state st;
	char client_id[96];
	char username[72];
	const char *password;        /* borrowed; outlives the client */
	bool clean_start;
	uint32_t session_expiry_s;
	uint16_t keepalive_s;
	uint16_t next_pid;
	uint16_t inflight;           /* our QoS 1/2 publishes not done yet */
	uint16_t server_receive_max; /* from CONNACK; 65535 if absent */
	uint64_t t_start, t_up;      /* mono ns: connect began, CONNACK 0 came */
};

/* Set up m (not connected).  username and client_id are copied. */
void mclient_init(struct mclient *m, const struct mclient_ops *ops, void *owner,
		  uint32_t idx, const char *username, const char *client_id,
		  const char *password);
/* Connect and log in; on_up / on_refused / on_down follow.  0 or -1. */
int mclient_start(struct mclient *m, struct bloop *l, int port);
/* Queue a SUBSCRIBE of one filter; returns its packet id, 0 on error. */
uint16_t mclient_subscribe(struct mclient *m, const char *filter, uint8_t qos);
/* Queue a PUBLISH; returns its packet id (0 for QoS 0), or -1 on error. */
int mclient_publish(struct mclient *m, const char *topic, const void *payload,
		    size_t len, uint8_t qos);
/* Queue a DISCONNECT (session expiry set when >= 0) and close. */
void mclient_disconnect(struct mclient *m, int64_t session_expiry_s);
void mclient_ping(struct mclient *m);
/* Close at once without DISCONNECT (like a lost network). */
void mclient_abort(struct mclient *m);
void mclient_free(struct mclient *m);

/* ---- payload.c: real envelopes with a timing stamp in the body ------------ */

/* A pre-encoded envelope (mqim_env_encode) whose id, ts and body stamp are
 * patched per message: the bytes are exactly what mqim_env_encode gives for
 * those values, without a malloc and a msgpack pass per message. */
struct env_tmpl {
	uint8_t *buf;
	size_t len;
	size_t off_id, off_ts, off_stamp;
	char topic[80];
};

/* Build the template for messages from `from` to user or group `to`.
 * Returns 0 or -1. */
int env_tmpl_init(struct env_tmpl *t, const char *from, const char *to, bool group);
void env_tmpl_free(struct env_tmpl *t);
/* Patch message (flow, seq) of run `nonce`, sent now. */
void env_tmpl_fill(struct env_tmpl *t, uint64_t nonce, uint32_t flow, uint32_t seq,
		   uint64_t send_ns);
/* Read the stamp back from a delivered payload; false if absent. */
bool env_stamp_read(const uint8_t *payload, size_t len, uint32_t *flow, uint32_t *seq,
		    uint64_t *send_ns);
/* Decode one filled template with mqim_env_decode (a self-check). */
int env_tmpl_check(const struct env_tmpl *t);

/* ---- stats.c: samples and summaries ----------------------------------------- */

struct samples {
	uint64_t *v;
	size_t n, cap;
	bool sorted;
};

int samples_add(struct samples *s, uint64_t x);
void samples_free(struct samples *s);
/* Sorts s in place; q in [0, 1]; 0 when empty. */
uint64_t samples_quantile(struct samples *s, double q);

/* Median, min and max of n doubles (sorted in place). */
struct summary {
	double median, min, max;
	size_t n;
};
struct summary summarize(double *v, size_t n);

/* ---- flows.c: pairs, group and latency -------------------------------------- */

struct flow_cfg {
	int port;
	unsigned pairs;              /* pairs: conversations; group: ignored */
	unsigned group_size;         /* group: receivers (members besides the sender) */
	bool group;
	unsigned n;                  /* messages per sender */
	uint8_t qos;
	unsigned window;             /* per sender: sent and not yet done */
	double rate;                 /* total messages/s; 0: as fast as the window allows */
	double duration_s;           /* paced runs: stop sending after this (0: n decides) */
	unsigned timeout_s;          /* the whole run, setup included */
	uint64_t nonce;              /* makes message ids unique per run */
	/* storm while the flows run (latency + storm), or NULL */
	const struct storm_cfg *storm;
	pid_t broker_pid;            /* for its CPU time (0: not measured) */
	const char *client_suffix;   /* client ids "{user}/{suffix}"; NULL: "{user}" */
};

struct flow_result {
	uint64_t sent, acked, refused, delivered, expected, lost, dup, garbled;
	double seconds;              /* first send to last delivery */
	double rate;                 /* deliveries per second */
	double p50_us, p99_us, p999_us, max_us;
	bool complete;               /* every expected delivery arrived */
	/* storm runs: latency of messages sent before / during the storm */
	double base_p50_us, base_p99_us, base_p999_us;
	double storm_p50_us, storm_p99_us, storm_p999_us;
	uint64_t base_n, storm_n;
	struct storm_result *storm;  /* filled when cfg->storm (caller's struct) */
	/* CPU seconds from the first send to the end, of this process and of
	 * the broker (-1 when unknown): is the broker the bottleneck? */
	double gen_cpu_s, broker_cpu_s;
	double broker_user_s, broker_sys_s;  /* the broker's, split */
};

/* Run one flow scenario against the broker at cfg->port.  Returns 0 when
 * the run finished (even with losses: see res), -1 when it could not run. */
int flows_run(const struct flow_cfg *cfg, struct flow_result *res);

/* ---- storm.c: many clients logging in at once -------------------------------- */

struct storm_cfg {
	unsigned k;                  /* clients per wave */
	double base_s;               /* latency without the storm first */
	double storm_s;              /* then waves for at least this long */
	double max_s;                /* hard limit for the storm phase */
	unsigned waves;              /* 0: as many as fit in storm_s */
	const char *prefix;          /* user names: prefix + 4-digit index */
	/* NULL: log in with BENCH_PASSWORD; else with an app-server token per
	 * client, HS256 with this secret (broker C's plugin_opt_jwt_secret_file);
	 * read only by storm_new() */
	const char *jwt_secret;
};

struct storm_result {
	uint64_t logins, attempts, closed_early, refused, waves_done;
	double seconds;              /* the storm phase */
	double logins_per_s;
	double login_p50_ms, login_p99_ms; /* TCP connect to CONNACK */
	bool complete;               /* every wave of k logins completed */
};

struct storm;
/* Prepare the K clients (not connected; with cfg->jwt_secret, mint their
 * tokens).  NULL when out of memory or a token cannot be made. */
struct storm *storm_new(const struct storm_cfg *cfg, int port);
/* Start the storm on its own thread; 0 or -1. */
int storm_begin(struct storm *s);
/* True once the storm has ended by itself (time, waves, max_s). */
bool storm_done(struct storm *s);
/* Stop the storm (everyone logs out) and join its thread; res (may be
 * NULL) gets the figures.  Later calls only report. */
void storm_finish(struct storm *s, struct storm_result *res);
void storm_free(struct storm *s);

/* ---- conns.c: idle persistent sessions ---------------------------------------- */

struct conns_cfg {
	int port;
	pid_t broker_pid;            /* for VmRSS */
	const unsigned *steps;       /* connection counts to measure at, ascending */
	size_t nsteps;
	const char *prefix;          /* user names: prefix + 5-digit index */
	unsigned timeout_s;
};

struct conns_result {
	long rss0_kib;
	long rss_kib[4];             /* per step */
	double bytes_per_conn[4];
	unsigned reached[4];
	bool complete;
};

int conns_run(const struct conns_cfg *cfg, struct conns_result *res);

/* ---- brokers.c: the three brokers under test ----------------------------------- */

enum broker_kind { BROKER_A, BROKER_B, BROKER_C, BROKER_KINDS };

struct bench_env {
	char work[256];              /* a temporary folder of this run */
	char build[512];             /* absolute build/ (the plugin) */
	char store_path[320];        /* provisioned store of broker C */
	char dynsec_path[320];       /* provisioned dynsec JSON of broker B */
	bool keep;                   /* keep the folder (--keep) */
	const char *c_conf_extra;    /* more lines for broker C's conf, or NULL */
	char jwt_secret[72];         /* broker C's HS256 secret (provision_jwt), or "" */
	char jwt_conf[400];          /* the conf line that gives it to broker C */
};

struct broker {
	enum broker_kind kind;
	pid_t pid;
	int port;
	char dir[320];
	char log[400];
	char cg_out[400];            /* callgrind output, when under valgrind */
	bool callgrind;
};

/* Zero env and set env->build to the absolute path of build (which must
 * hold mqim_plugin.so); 0 or -1 with a message. */
int bench_env_init(struct bench_env *env, const char *build);
/* "A", "B", "C" and a one-line description. */
const char *broker_name(enum broker_kind k);
const char *broker_desc(enum broker_kind k);
/* Start a fresh broker of kind k (its own folder, store copy, free port) and
 * wait until it accepts connections.  0 or -1 (with its log on stderr). */
int broker_start(struct broker *b, enum broker_kind k, const struct bench_env *env,
		 bool callgrind);
/* SIGTERM, wait (SIGKILL after a while); 0 on a clean exit. */
int broker_stop(struct broker *b);
/* VmRSS of the broker (or of any process) in KiB, or -1. */
long broker_rss_kib(const struct broker *b);
long broker_rss_kib_pid(pid_t pid);
/* CPU time (user + system) of a process in seconds, or -1. */
double proc_cpu_s(pid_t pid);
/* The same, split: 0 or -1. */
int proc_cpu_split(pid_t pid, double *user_s, double *sys_s);
/* CPU time of this process in seconds. */
double self_cpu_s(void);
/* Kill every broker still running (at exit); they are tracked here. */
void brokers_kill_all(void);

/* ---- provision.c: users for broker B and C --------------------------------------- */

struct provision_cfg {
	unsigned pairs, group_size, storm_k, conns;
	/* Chat and storm users get broker C's default argon2id cost unless
	 * cheap (callgrind runs, where a default hash takes seconds). */
	bool cheap;
};

/* Create env->work with the C store and the B dynsec file for these
 * users; 0 or -1. */
int provision(struct bench_env *env, const struct provision_cfg *cfg);
/* Give broker C an HS256 secret for app-server tokens: a random secret
 * written to env->work/jwt.secret (mode 0600, which the plugin requires),
 * kept in env->jwt_secret, its plugin_opt_jwt_secret_file line in
 * env->jwt_conf, and env->c_conf_extra pointed at that line (any earlier
 * extra lines are replaced).  Call after provision(); 0 or -1. */
int provision_jwt(struct bench_env *env);
/* Names used everywhere. */
void name_pair(char *out, size_t n, unsigned pair, bool receiver);
void name_group_member(char *out, size_t n, unsigned i); /* 0 = the sender */
void name_storm(char *out, size_t n, unsigned i);
void name_conn(char *out, size_t n, unsigned i);

/* ---- compare.c, icount.c, dedup_bench.c, client_bench.c: the commands --------- */

int cmd_compare(int argc, char **argv);
int cmd_icount(int argc, char **argv);
int cmd_dedup(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_logins(int argc, char **argv);
int cmd_scenario(const char *name, int argc, char **argv);
int cmd_soak(int argc, char **argv);

struct dedup_result {
	double bytes_per_id, rss_bytes_per_id;
	double inserts_per_s, hits_per_s, misses_per_s;
	double hits_per_s_small;     /* the same lookups, window of half the size */
};
int dedup_bench(unsigned ids, struct dedup_result *res);

struct client_result {
	unsigned n, rounds;
	struct summary paho, full, app;  /* messages/s; full, app: mqim_send() */
	struct summary many, nowait;     /* mqim_send_many(), mqim_send_nowait(), FULL */
	double enqueue_full, enqueue_app;  /* mqim_send() calls/s (medians) */
	double stored_many, stored_nowait; /* messages durably stored /s (medians) */
};
/* libmqim against raw paho on broker C at port (users p0a, p0b); data
 * folders go under work.  0 or -1. */
int client_bench(int port, const char *work, unsigned n, unsigned rounds,
		 struct client_result *res);

/* ---- report.c: the markdown sections of docs/performance.md -------------------- */

/* Replace the text between "<!-- NAME:begin -->" and "<!-- NAME:end -->"
 * in the file at path with body (the markers are added at the end of the
 * file when missing).  0 or -1. */
int doc_replace_section(const char *path, const char *name, const char *body);
/* "`make TARGET`, which runs `mqim-bench ARGS`" (the first part only
 * when run by make) into f; argv[0] is the subcommand. */
void print_command(FILE *f, const char *make_target, int argc, char **argv);
/* "N cores, CPU model" of this machine into out. */
void machine_line(char *out, size_t n);

#endif
