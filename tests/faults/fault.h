/* fault.h - the fault suite's world: a broker, five libmqim users, counted
 * traffic, and the check that nothing was lost or doubled.
 *
 * Every case of tests/faults/test_faults.c runs in its own process, inside
 * a network and mount namespace of its own (fw_sandbox_enter()): its
 * loopback, its iptables rules and its tmpfs mounts vanish with it, even
 * when it crashes, and its ports never meet a colleague's suite.
 *
 * The world (struct fw) is a broker made by tbroker with five users,
 * alice bob carol dave erin, all members of the group "team"; a libmqim
 * client per user (a peer), each with its own data folder under $TMPDIR
 * that survives closing and reopening the peer (same client id); and
 * streams of messages.  A stream is N messages from one user to another or
 * to the group, with bodies "fw <stream> <seq>", so that every delivery
 * can be counted per recipient and per message.
 *
 * The verdict (fw_tally) counts, over every message that mqim_send()
 * accepted: deliveries expected (one per recipient), deliveries seen by
 * the applications (on_message), duplicates, losses, messages whose sender
 * never reached "delivered", and outbox rows left (receipts included, read
 * from the SQLite files).  fw_report() writes the row of the results table;
 * fw_assert_clean() fails the case on any loss, duplicate, missing receipt
 * or outbox row.
 *
 * Peers may also live in other processes (a client to be SIGKILLed): such
 * a process keeps a journal (fw_journal_open) of what it sent and what its
 * application saw, which the case merges (fw_journal_load) after its death.
 *
 * Thread-safety: callbacks, sender threads and the case thread share the
 * world under w->mu; call the fw_* functions from the case thread only,
 * except fw_send().
 */
#ifndef MQIM_FAULT_H
#define MQIM_FAULT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqim.h"
#include "tbroker.h"

#define FW_NUSERS 5
#define FW_GROUP "team"
#define FW_PW "pw-Flt-5"
#define FW_TO_GROUP (-1)
#define FW_MAX_STREAMS 8

enum { FW_ALICE, FW_BOB, FW_CAROL, FW_DAVE, FW_ERIN };

extern const char *const fw_user[FW_NUSERS];

/* What became of message seq of a stream, on the sending side. */
enum fw_sent_state {
	FW_NOT_SENT = 0,
	FW_ACCEPTED,      /* mqim_send() returned MQIM_OK */
	FW_REFUSED,       /* mqim_send() returned an error */
	FW_MAYBE,         /* a process died inside mqim_send(): either */
};

struct fw_stream {
	int from;                 /* user index */
	int to;                   /* user index or FW_TO_GROUP */
	int n;                    /* messages */
	int qos;                  /* 0: alternate 1 and 2 */
	int next;                 /* next seq the sender thread sends */
	unsigned char *sent;      /* enum fw_sent_state per seq */
	int *err;                 /* mqim_send()'s error per refused seq */
	uint8_t (*id)[16];        /* id per accepted seq */
	uint8_t (*rid)[16];       /* id as first received (for FW_MAYBE seqs) */
	unsigned char *rid_set;
	unsigned char *state;     /* last enum mqim_msg_state reported */
	unsigned short *count[FW_NUSERS];  /* deliveries per recipient and seq */
};

struct fw_peer {
	struct fw *w;
	int user;
	char dir[384];
	mqim_client *c;
	enum mqim_state state;
	int connects;             /* CONNECTED reports, over every open */
	int losses;               /* WAITING reports */
	int failed_connects;      /* WAITING right after CONNECTING: an attempt failed */
	int errors;               /* on_error reports */
	int last_error;
	char last_what[200];
	int probes;               /* "probe ..." messages seen */
	int probes_group;         /* ... of them on the group */
	int presence[FW_NUSERS];  /* last presence reported: -1 none, 0 off, 1 on */
};

struct fw_result {
	int sent;                 /* messages accepted by mqim_send() */
	int refused;              /* mqim_send() errors */
	int expected;             /* deliveries expected (message x recipient) */
	int delivered;            /* deliveries seen at least once */
	int dups;                 /* deliveries seen more than once (extra copies) */
	int lost;                 /* expected deliveries never seen */
	int unexpected;           /* messages seen that were never accepted */
	int no_rcpt;              /* accepted messages not "delivered" at the sender */
	int outbox_left;          /* outbox rows left in every data folder */
	int64_t recover_ms;       /* end of the last fault -> everything settled */
};

struct fw {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct tbroker broker;
	bool has_broker;
	struct mqim_options tmpl;     /* options of the next fw_peer_open() */
	struct fw_peer peers[FW_NUSERS];
	struct fw_stream streams[FW_MAX_STREAMS];
	int nstreams;
	int unexpected;
	int journal_fd;               /* -1, or this process's journal */
	/* id -> (stream, seq) */
	struct fw_slot { uint8_t id[16]; int stream, seq; bool used; } *map;
	unsigned map_cap;
	/* states reported before fw_send() could record the id */
	struct fw_orphan { uint8_t id[16]; int state; bool used; } orphans[64];
	/* sender threads */
	pthread_t threads[FW_MAX_STREAMS];
	int nthreads;
	int duration_ms;
	volatile int stop_traffic;
	int64_t t0, t_fault_end, t_settled;
	uint64_t rng;
	char tmp[256];
};

/* ---- the sandbox and the process -------------------------------------- */

/* Enter a new network namespace (its lo brought up) and a private mount
 * namespace.  Call first thing in main, before any thread exists.
 * Returns 0 or -1 (with a message). */
int fw_sandbox_enter(void);

/* The seed of this run: MQIM_FAULTS_SEED, else the time; printed once. */
uint64_t fw_seed(void);

/* A progress line on stderr, prefixed with the seconds since fw_init. */
void fw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Run a shell command (iptables ...); returns its exit status, logged. */
int fw_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sleep ms milliseconds (restarted on EINTR). */
void fw_sleep(int ms);

/* Monotonic milliseconds. */
int64_t fw_now(void);

/* Uniform in [lo, hi] from the world's generator. */
int fw_rand(struct fw *w, int lo, int hi);

/* ---- the world --------------------------------------------------------- */

/* Make the world: data folders under $TMPDIR, option defaults in w->tmpl,
 * and (with_broker) a broker folder with the five users and the group
 * (not started; extra_conf as for tbroker_init()).  Returns 0 or -1. */
int fw_init(struct fw *w, bool with_broker, const char *extra_conf);

/* Close every peer, stop the traffic, clean up the broker (returns its
 * exit status: non-zero when it did not stop cleanly). */
int fw_cleanup(struct fw *w);

/* Add a stream of n messages; qos 0 alternates 1 and 2.  Returns its index. */
int fw_stream_add(struct fw *w, int from, int to, int n, int qos);

/* The usual traffic: n each way between alice and bob, and ng from alice
 * and from bob to the group. */
void fw_streams_standard(struct fw *w, int n, int ng);

/* Create (and connect, if connect) user's peer with w->tmpl on port.
 * Returns 0 or an MQIM_E* code. */
int fw_peer_open(struct fw *w, int user, int port, bool connect);

/* mqim_close() the peer (its data folder stays). */
void fw_peer_close(struct fw *w, int user);

/* After a first login a client is CONNECTED before its subscriptions are
 * in place; a message sent meanwhile reaches nobody.  Send QoS 0 probes
 * (direct and group) among the open peers until each one has heard both,
 * so that the traffic of a case starts on settled subscriptions.  Returns
 * false if that took over timeout_ms. */
bool fw_warmup(struct fw *w, int timeout_ms);

/* Wait until every open peer is connected; false on timeout. */
bool fw_wait_connected(struct fw *w, int timeout_ms);

/* Wait until user's peer is in state st; false on timeout. */
bool fw_wait_state(struct fw *w, int user, enum mqim_state st, int timeout_ms);

/* Send message seq of stream s from its sender's open peer.  Returns what
 * mqim_send() returned (MQIM_ECLOSED when the peer is not open). */
int fw_send(struct fw *w, int s, int seq);

/* A thread per stream sends its remaining messages, spread evenly over
 * about duration_ms (0: as fast as mqim_send() returns).  Only streams
 * whose sender is in user_mask (bit 1 << user; 0: every user) and open in
 * this process. */
void fw_traffic_start(struct fw *w, int duration_ms, unsigned user_mask);

/* Messages attempted so far, over every stream; and the total planned. */
int fw_traffic_done(struct fw *w);
int fw_traffic_total(struct fw *w);

/* Wait until at least n messages were attempted (false on timeout). */
bool fw_traffic_wait(struct fw *w, int n, int timeout_ms);

/* Join the sender threads (they end when their streams are sent). */
void fw_traffic_join(struct fw *w);

/* The last fault ended now: "time to recover" counts from here. */
void fw_fault_end(struct fw *w);

/* Wait until every accepted message reached every recipient, every
 * sender saw it delivered, and every open peer's outbox is empty.
 * False on timeout (the tally then says what is missing). */
bool fw_wait_settled(struct fw *w, int timeout_ms);

/* Count; see the file comment.  A quiet second first catches late
 * duplicates. */
void fw_tally(struct fw *w, struct fw_result *r);

/* Print the tally's details (first losses, duplicates) on stderr. */
void fw_explain(struct fw *w, const struct fw_result *r);

/* Write the row of the results table (to $MQIM_FAULTS_ROW and stderr). */
void fw_report(struct fw *w, const struct fw_result *r, const char *note);

/* cmocka: fail unless r is clean (nothing lost, doubled, unexpected,
 * unacknowledged or left in an outbox). */
void fw_assert_clean(const struct fw_result *r);

/* Outbox rows (receipts included) in user's data folder, read from the
 * SQLite file; -1 when it cannot be read. */
int fw_outbox_rows(struct fw *w, int user);

/* True when no line of the broker's log contains a Mosquitto persistence
 * error or a plugin error; the lines found go to stderr. */
bool fw_broker_log_clean(struct fw *w);

/* ---- journals of other processes ------------------------------------- */

/* In a peer process: record sends and deliveries to path (appended). */
int fw_journal_open(struct fw *w, const char *path);

/* In the case: merge a dead process's journal.  Returns the number of
 * records read, -1 if the file cannot be read. */
int fw_journal_load(struct fw *w, const char *path);

/* Count of "kind" records ('S' sent, 'R' received, 'C' connected) in a
 * journal now. */
int fw_journal_count(const char *path, char kind);

/* Fork and exec this binary with args (NULL-terminated); the child dies
 * with this process.  Returns its pid or -1. */
pid_t fw_spawn(const char *const args[]);

/* Wait for pid, at most timeout_ms (then SIGKILL); returns the wait
 * status. */
int fw_reap(pid_t pid, int timeout_ms);

#endif
