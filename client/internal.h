/* internal.h - libmqim's client object and the contracts between its files.
 *
 *   client.c   the handle, options, the library thread and its event loop,
 *              synchronous calls into that thread, callbacks to the app
 *   link.c     paho MQTTAsync glue: one paho handle per connection attempt,
 *              connect / lost / reconnect with backoff, subscriptions
 *   send.c     mqim_send, the outbox pump (window, acks, resends), retry,
 *              mark_read, receipts owed, receipts for our own messages
 *   roster.c   group rosters (mqim_set_group_members) and the receipts a
 *              group message waits for
 *   receive.c  checking, de-duplicating, storing and handing over what
 *              arrives; receipts that update our own messages
 *   query.c    the read-only queries served on the caller's thread
 *   hold.c     what arrived but could not be stored yet (a full disk)
 *   send_many.c  mqim_send_many, mqim_send_nowait: one commit for many
 *   obmem.c    the outbox's fresh rows and acknowledgements in memory
 *
 * Threads.  The library thread owns everything below the "library thread
 * only" line: the writing database connection, the paho handle, the
 * in-flight table.  Paho's own threads only translate their callbacks into
 * events on the queue (guarded by mu).  Application threads reach the
 * library thread through mqim__call(), or use the read-only connection
 * under rd_mu.
 */
#ifndef MQIM_CLIENT_INTERNAL_H
#define MQIM_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <MQTTAsync.h>

#include "mqim.h"
#include "backoff.h"
#include "db.h"
#include "envelope.h"
#include "history.h"
#include "hold.h"
#include "obmem.h"
#include "outbox.h"
#include "roster.h"
#include "seen.h"
#include "uuid.h"

/* A request run on the library thread: synchronous (mqim__call: the
 * caller waits for done), or not (mqim__call_nowait: finish is called on
 * the library thread once the work is committed or has failed, with rc
 * set, and owns the call from then on). */
struct mqim__call {
	int (*fn)(mqim_client *c, void *arg);
	void *arg;
	int rc;
	bool done;
	void (*finish)(mqim_client *c, struct mqim__call *call);
};

enum mqim__ev_type {
	MQIM_EV_CALL,
	MQIM_EV_CONNECTED,
	MQIM_EV_CONNECT_FAILED,
	MQIM_EV_LOST,
	MQIM_EV_PUB_DONE,
	MQIM_EV_SUB_DONE,
	MQIM_EV_DISC_DONE,
	MQIM_EV_MSG,
};

/* An event for the library thread.  EV_MSG carries the payload and then
 * the NUL-terminated topic in data[]. */
struct mqim__ev {
	struct mqim__ev *next;
	int type;
	uint64_t epoch;           /* which paho handle it comes from */
	int code;                 /* paho code or MQTT reason code */
	int reason;               /* MQTT reason code for failures */
	int64_t seq;              /* PUB_DONE: outbox seq, < 0 for presence */
	uint8_t id[16];           /* PUB_DONE: the envelope id */
	bool ok;                  /* PUB_DONE: acknowledged; SUB_DONE: granted */
	bool refused;             /* PUB_DONE, SUB_DONE: the broker said no (>= 0x80) */
	bool session_present;
	unsigned recv_max;        /* CONNECTED: Receive Maximum, 65535 if absent */
	struct mqim__call *call;  /* CALL */
	void *ctx;                /* CONNECTED, CONNECT_FAILED: the attempt's context */
	char *topic;              /* MSG, SUB_DONE: into data */
	size_t len;
	unsigned char data[];
};

/* A callback to make once the current batch is committed. */
enum mqim__note_type {
	MQIM_NOTE_STATE,
	MQIM_NOTE_MSG_STATE,
	MQIM_NOTE_MESSAGE,
	MQIM_NOTE_PRESENCE,
	MQIM_NOTE_ERROR,
};

struct mqim__note {
	struct mqim__note *next;
	int type;
	bool undo;                  /* reports work of the open transaction:
	                             * dropped if its commit fails */
	int state;
	int err;
	uint8_t id[16];
	bool online;
	uint64_t bts;
	const char *text;           /* ERROR: what; PRESENCE: user (into buf) */
	struct mqim_message msg;    /* MESSAGE: strings into buf */
	char buf[];
};

/* The context of one connect attempt.  Paho's callback only reads it; the
 * library thread frees it when it handles the answer, or at destroy. */
struct mqim__connctx {
	struct mqim__link *link;    /* whose handle it connects (its client: link->c) */
	uint64_t epoch;
	struct mqim__connctx *next;
};

/* A publish waiting for its acknowledgement. */
struct mqim__slot {
	int64_t seq;                /* outbox seq; < 0: presence */
	int64_t deadline;           /* monotonic ms */
	bool used;
	bool known;                 /* kind, qos and fsm are the row's as published,
	                             * so its acknowledgement needs no lookup */
	int8_t kind, qos;
	struct mqim__ob_fsm fsm;
};

/* The context of the paho handle, freed after MQTTAsync_destroy(); a
 * retired handle's is never freed (link.c). */
struct mqim__link {
	mqim_client *c;
	uint64_t epoch;             /* the current connection's (atomic access) */
	bool poisoned;              /* a QoS 1/2 PUBLISH write failed: paho keeps
	                             * freed memory in the session (atomic access) */
	bool retired;               /* let go of: its callbacks do nothing (atomic) */
	struct mqim__connctx *attempts;  /* contexts of connects not yet answered */
	MQTTProperties props;       /* CONNECT properties */
	void *will;                 /* encoded "offline" presence */
	size_t will_len;
	char will_topic[80];
};

struct mqim_client {
	/* Immutable after mqim_create(). */
	struct mqim_options o;      /* strings below are our copies */
	struct mqim_callbacks cb;
	void *ud;
	char *uri, *ca_file, *cert_file, *key_file, *user, *password, *client_id, *data_dir;
	char inbox[80];             /* im/u/{user} */
	struct mqim__backoff bo;
	struct mqim__ob_cfg obcfg;
	int lock_fd;

	pthread_t thread;
	pthread_mutex_t mu;         /* guards the queue and the fields to the line */
	pthread_cond_t wake;        /* the library thread sleeps on it */
	pthread_cond_t done;        /* callers wait on it for their calls */
	struct mqim__ev *q_head, *q_tail;
	struct mqim__ev *q_scanned;  /* mqim__pump_midwork() looked at the queue up
	                             * to it (NULL: from the head) */
	bool stop;                  /* mqim_close() asked */
	bool stopped;               /* the library thread no longer takes calls */
	enum mqim_state state;      /* mirror of st for mqim_get_state() */
	unsigned nowait_n;          /* mqim_send_nowait() messages not yet stored */
	size_t nowait_bytes;        /* ... their envelopes' and bodies' bytes */

	pthread_mutex_t id_mu;      /* guards the fields to the blank line: ids are
	                             * made on the callers' threads, apart from mu,
	                             * which the library thread and paho's take */
	struct mqim__uuid_gen idgen;
	uint8_t rnd[256];           /* random bytes for ids, from getrandom ... */
	unsigned rnd_used;          /* ... of which these are used */

	pthread_mutex_t rd_mu;      /* recursive; guards rdb */
	struct mqim__db rdb;        /* read-only connection for query.c */

	/* ---- library thread only ------------------------------------------ */
	struct mqim__db db;
	struct mqim__outbox ob;
	struct mqim__obmem obmem;   /* the outbox's rows and acks in memory (obmem.h) */
	struct mqim__roster roster;
	struct mqim__history hist;
	struct mqim__seen seen;
	enum mqim_state st;
	MQTTAsync h;                /* NULL when no connection attempt is alive */
	struct mqim__link *link;
	uint64_t epoch;
	unsigned failures;          /* failed attempts in a row (short-lived
	                             * connections count as failures) */
	int64_t connected_at;       /* monotonic ms of the last CONNACK */
	int64_t reconnect_at;       /* monotonic ms, INT64_MAX: none */
	int64_t connect_deadline;   /* monotonic ms of the CONNACK's, then of the
	                             * inbox SUBACK's deadline; INT64_MAX: none */
	bool inbox_wait;            /* the CONNACK came, the inbox SUBACK not yet
	                             * (still CONNECTING; link.c) */
	unsigned window;            /* publishes in flight at most */
	unsigned inflight_n;
	struct mqim__slot *slots;   /* o.max_inflight + 2 of them */
	unsigned nslots;
	int64_t next_due;           /* wall ms of the next resend, INT64_MAX: none */
	bool next_due_stale;        /* an outbox row was written: read it again */
	char **watch;               /* presence watches */
	size_t nwatch;
	struct mqim__note *n_head, *n_tail;
	struct mqim__call **pending;   /* calls answered at the next commit */
	size_t npending, cap_pending;
	struct mqim__hold hold;     /* arrived, not stored yet (hold.h) */
	/* Nowait messages answered, and their bytes, whose room in nowait_n
	 * and nowait_bytes is not given back yet: one lock for many
	 * (mqim__nowait_release). */
	unsigned nowait_done_n;
	size_t nowait_done_bytes;
	int64_t lazy_until;         /* monotonic ms by which the open lazy
	                             * transaction is committed; INT64_MAX: none */
	struct mqim__note *lazy_mark;  /* the last note from before it */
	struct mqim__evq lazy_applied; /* the store events it applied */
	int64_t store_retry_at;     /* monotonic ms of the next try to store what
	                             * is held; INT64_MAX: the store works */
	int store_err;              /* a unit of work failed to store (work_end) */
	bool undo_scope;            /* notes made now report uncommitted work */
	bool work_shared;           /* mqim__work_share() */
	int work_err;               /* the first failure of a shared unit */
	bool in_callback;
	bool kick;                  /* work was queued from a callback: loop again */
	bool close_in_callback;     /* mqim_close() from a callback */
};

/* ---- client.c ------------------------------------------------------------ */

/* Run fn(c, arg) on the library thread (directly when already on it) and
 * return its result, or the commit's error.  MQIM_ECLOSED when the thread
 * has stopped. */
int mqim__call(mqim_client *c, int (*fn)(mqim_client *c, void *arg), void *arg);
/* Queue call (fn, arg, finish set) for the library thread and return at
 * once: MQIM_OK, after which call->finish will run exactly once (also at
 * mqim_close(), with MQIM_ECLOSED), or MQIM_ECLOSED / MQIM_ENOMEM, after
 * which it never runs and the call is still the caller's.  From the
 * library thread itself the work is done and finished before it returns. */
int mqim__call_nowait(mqim_client *c, struct mqim__call *call);

/* Open the batch transaction (if needed) and a savepoint for one unit of
 * work; leave it keeping (rc == MQIM_OK) or undoing it.  Returns rc.  A
 * storage error (MQIM_ENOSPC, MQIM_EIO...) is also recorded in
 * c->store_err: the event being applied is then held (hold.h), its notes
 * dropped, and applied again later, so a unit of work must change nothing
 * outside the database that applying it again would change twice. */
int mqim__work_begin(mqim_client *c);
int mqim__work_end(mqim_client *c, int rc);
/* From mqim__work_share(c, true) to (c, false), units of work share the
 * savepoint of the work around them instead of opening their own: no page
 * is copied per unit, but a unit that fails is not undone alone
 * (mqim__work_end only records the first failure in c->work_err); the
 * caller undoes them all.  Between a mqim__work_begin() of its own and the
 * matching mqim__work_end(). */
void mqim__work_share(mqim_client *c, bool on);

/* Queue callbacks to the application (fired after the batch commits). */
void mqim__note_state(mqim_client *c, enum mqim_state st, int err);
void mqim__note_msg_state(mqim_client *c, const uint8_t id[16], int state, int err);
void mqim__note_error(mqim_client *c, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void mqim__note_presence(mqim_client *c, const char *user, bool online, uint64_t bts);
void mqim__note_message(mqim_client *c, const struct mqim_env *env, bool is_group);

/* Move to a connection state and tell the application. */
void mqim__set_state(mqim_client *c, enum mqim_state st, int err);

/* Post an event from any thread (paho's included); takes ownership. */
void mqim__post(mqim_client *c, struct mqim__ev *ev);
struct mqim__ev *mqim__ev_new(int type, size_t extra);

/* In the middle of long work (storing many messages in one unit): take
 * the simple acknowledgements (mqim__ack_simple) off the queue, settle
 * them and publish fresh rows into the room they free, so that the link
 * does not idle while this thread writes.  What it publishes was committed
 * before the work began.  Not while the store fails or from a callback. */
void mqim__pump_midwork(mqim_client *c);

/* Wait (library thread) up to timeout_ms for an event of this type and
 * epoch (and for PUB_DONE, this seq), taking it off the queue; NULL on
 * timeout.  Other events stay queued. */
struct mqim__ev *mqim__wait_event(mqim_client *c, int type, uint64_t epoch, int64_t seq,
				  int timeout_ms);

/* A fresh UUIDv7; any thread. */
void mqim__new_id(mqim_client *c, uint8_t id[16]);

/* ---- link.c -------------------------------------------------------------- */

int mqim__link_start(mqim_client *c);
void mqim__link_destroy(mqim_client *c);
/* Leave gracefully: presence "offline" (when publish_offline), DISCONNECT
 * keeping the session, destroy. */
void mqim__link_close(mqim_client *c, bool publish_offline);
void mqim__link_event(mqim_client *c, struct mqim__ev *ev);
void mqim__link_timers(mqim_client *c, int64_t mono);
/* The link is dead (no ack in time): drop it and connect again now. */
void mqim__link_dead(mqim_client *c, int err);
int mqim__link_subscribe(mqim_client *c, const char *topic, bool no_local);
/* What paho's answer to a subscription means: MQIM_OK (granted),
 * MQIM_EDENIED (refused: SUBACK reason >= 0x80) or MQIM_ECONN (answered =
 * false with no reason: the link failed before the SUBACK).  Pure. */
int mqim__sub_outcome(bool answered, int reason);
int mqim__link_unsubscribe(mqim_client *c, const char *topic);
/* Publish payload on the current handle; ctx seq / id come back in an
 * EV_PUB_DONE.  marked: a receipt-driven resend, sent with the user
 * property MQIM_RESEND_PROP = "1" (topics.h).  MQIM_ECONN when not
 * connected. */
int mqim__link_publish(mqim_client *c, const char *topic, const void *payload, size_t len,
		       int qos, bool retain, int64_t seq, const uint8_t id[16], bool marked);
/* Encode the presence envelope for this client into a malloc'd buffer. */
int mqim__presence_env(mqim_client *c, bool online, void **out, size_t *len);

/* ---- send.c -------------------------------------------------------------- */

/* One message to send: the caller's strings (borrowed), its id and its
 * encoded envelope. */
struct mqim__send_req {
	const char *to;
	bool is_group;
	const char *ct;
	const void *body;
	size_t len;
	int qos;
	uint8_t id[16];
	uint64_t ts;
	void *payload;              /* malloc'd: free() it */
	size_t plen;
};

/* Check the arguments of a send as mqim_send() does (c included), give
 * the message a fresh id and encode its envelope into *q.  On error nothing is
 * allocated; on success q->payload must be freed with free().  Any
 * thread. */
int mqim__send_prepare(mqim_client *c, struct mqim__send_req *q, const char *to, bool is_group,
		       const char *ct, const void *body, size_t len, int qos);
/* Write the message arg (a struct mqim__send_req) to the outbox and the
 * history in one unit of work; the job of mqim__call(). */
int mqim__send_store(mqim_client *c, void *arg);
/* The same for qs[0..n) in one unit of work, in that order, several rows
 * per statement, publishing between them (mqim__pump_midwork). */
int mqim__send_store_many(mqim_client *c, struct mqim__send_req *const *qs, size_t n);
/* Give back the room of the nowait messages answered since the last call
 * (c->nowait_done_n), so that a thread told MQIM_EBUSY finds it once the
 * report of one of them comes: before the callbacks are made.  Library
 * thread (send_many.c). */
void mqim__nowait_release(mqim_client *c);

void mqim__pump(mqim_client *c);
#ifdef MQIM_OBMEM_CHECK
/* Debug builds only: complain on stderr where obmem.h's invariant fails. */
void mqim__obmem_check(mqim_client *c, const char *where);
#endif
/* Publish fresh rows (obmem.h) into the free room; no database work. */
void mqim__pump_fresh(mqim_client *c);
/* Whether ev is an acknowledgement that mqim__pub_done() settles in
 * memory alone: the first PUBACK 0x00 of a message's first publish on
 * this connection, as almost all are. */
bool mqim__ack_simple(mqim_client *c, const struct mqim__ev *ev);
void mqim__pub_done(mqim_client *c, struct mqim__ev *ev);
/* Write the acknowledgements that wait in memory (obmem.h) in one unit
 * of work, and report those messages SENT.  Before a commit and before
 * anything reads our outbox rows or messages' states.  On error the unit
 * is undone and they are lost from the database, not from the broker:
 * their rows stay QUEUED and go again (obmem `below`).  pump_between:
 * feed the link between its statements (mqim__pump_midwork), then write
 * the acknowledgements that this took in as well: it returns with none
 * waiting in memory, so that the commit it precedes leaves none behind. */
int mqim__acks_flush(mqim_client *c, bool pump_between);
/* Forget every publish in flight (the link is gone). */
void mqim__inflight_clear(mqim_client *c);
/* Earliest in-flight deadline (monotonic ms) or INT64_MAX. */
int64_t mqim__inflight_deadline(mqim_client *c);
/* Queue a receipt (t "rcpt" or "read") for message ref of user `to`. */
int mqim__queue_receipt(mqim_client *c, const char *t, const char *to, const uint8_t ref[16]);
/* Move our message id to state next (history.h merge rules) and report a
 * change. */
void mqim__msg_update(mqim_client *c, const uint8_t id[16], int next, int err);
/* Topic of a peer: im/u/{peer} or im/g/{peer}. */
void mqim__peer_topic(char out[80], const char *peer, bool is_group);
/* PUBACK reason 0x10 "no matching subscribers" (EV_PUB_DONE.reason). */
#define MQIM_PUBACK_NO_SUBSCRIBERS 0x10
/* A receipt (is_read: `read`) from user `from` for our message id, known
 * to be ours and (for a direct message) from its recipient: settle it in
 * the outbox and report its new state, once every awaited member of a
 * group answered (roster.h).  Inside a unit of work; MQIM_E* code. */
int mqim__receipted(mqim_client *c, const uint8_t id[16], const char *from, bool is_group,
		    bool is_read);

/* ---- receive.c ----------------------------------------------------------- */

void mqim__receive(mqim_client *c, const char *topic, const void *payload, size_t len);

#endif
