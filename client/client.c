/* client.c - the libmqim client handle and its library thread.
 *
 * Owns: option checking and copying, the data folder (created 0700, locked
 * with flock so that one client at a time uses it), the device id, the
 * library thread's event loop, calls from application threads into it
 * (mqim__call, and mqim__call_nowait whose caller does not wait), and the
 * callbacks to the application, which are queued as notes while a batch of
 * events is processed and made only after that batch is committed to disk,
 * one at a time, on the library thread.
 *
 * The loop: take every queued event, process them in one SQLite
 * transaction (each in its own savepoint, or a run of messages and
 * acknowledgements under one, undone and redone one by one if any fails),
 * run the timers, commit, answer the calls that waited for the commit,
 * make the callbacks, then publish what the outbox allows.  So several
 * sends made at once by several threads cost one commit, and nothing is
 * published before the send that queued it was answered MQIM_OK.
 *
 * Two kinds of commit.  Calls (sends, mark_read...) and what arrived must
 * be on disk when they are answered or acknowledged: their commits are
 * synced (options.durability).  Acknowledgements of our publishes and the
 * pump's bookkeeping are cheap to lose, since a lost "sent" only costs a
 * resend that the broker de-duplicates: they gather in a lazy transaction
 * that stays open across turns for at most LAZY_MS and is committed
 * without a sync (db.h, mqim__db_sync), and their callbacks wait for it.
 * The commonest of them do not even touch the database until that commit
 * (obmem.h: acknowledgements written in bulk, publishes not written).
 *
 * Long work does not starve the link: while many messages are stored in
 * one unit (mqim_send_many, a run of mqim_send_nowait calls) or many
 * acknowledgements written, the library thread takes the simple
 * acknowledgements off the queue between statements and publishes what
 * was committed before (mqim__pump_midwork).
 *
 * When the store fails (a full disk).  A commit that fails rolled the
 * batch back: the notes it queued are dropped (connection states excepted,
 * which report memory, not the database), the calls that waited get the
 * error, and the messages and acknowledgements it applied, which the
 * broker already considers delivered to us, are held in memory (hold.h)
 * with any that failed on their own.  While something is held, new ones
 * queue up behind it, in order, and the pump rests; every HOLD_RETRY_MS
 * the held events are applied again, until a commit succeeds.  So nothing
 * is shown or reported before it is stored, and each only once.  The app
 * hears of it through on_error: once when the store starts failing, and
 * when the memory cap dropped events.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "names.h"

/* ---- names of states ---------------------------------------------------- */

MQIM_EXPORT const char *mqim_state_name(enum mqim_state state)
{
	static const char *const names[] = {
		[MQIM_STATE_IDLE] = "idle",
		[MQIM_STATE_CONNECTING] = "connecting",
		[MQIM_STATE_CONNECTED] = "connected",
		[MQIM_STATE_WAITING] = "waiting",
		[MQIM_STATE_GAVE_UP] = "gave up",
		[MQIM_STATE_AUTH_FAILED] = "auth failed",
		[MQIM_STATE_TAKEN_OVER] = "taken over",
		[MQIM_STATE_LOGGED_OUT] = "logged out",
	};
	if ((unsigned)state < sizeof names / sizeof names[0] && names[state])
		return names[state];
	return "unknown";
}

MQIM_EXPORT const char *mqim_msg_state_name(enum mqim_msg_state state)
{
	static const char *const names[] = {
		[MQIM_MSG_UNKNOWN] = "unknown",
		[MQIM_MSG_QUEUED] = "queued",
		[MQIM_MSG_SENT] = "sent",
		[MQIM_MSG_DELIVERED] = "delivered",
		[MQIM_MSG_READ] = "read",
		[MQIM_MSG_FAILED] = "failed",
		[MQIM_MSG_RECEIVED] = "received",
	};
	if ((unsigned)state < sizeof names / sizeof names[0])
		return names[state];
	return "unknown";
}

/* ---- events and notes ----------------------------------------------------- */

struct mqim__ev *mqim__ev_new(int type, size_t extra)
{
	struct mqim__ev *ev = calloc(1, sizeof *ev + extra);
	if (ev)
		ev->type = type;
	return ev;
}

/* Append ev to the queue and wake the library thread; under c->mu.
 * false (ev not taken) once the thread has stopped. */
static bool enqueue_locked(mqim_client *c, struct mqim__ev *ev)
{
	if (c->stopped)
		return false;
	if (c->q_tail)
		c->q_tail->next = ev;
	else
		c->q_head = ev;
	c->q_tail = ev;
	pthread_cond_signal(&c->wake);
	return true;
}

void mqim__post(mqim_client *c, struct mqim__ev *ev)
{
	pthread_mutex_lock(&c->mu);
	bool taken = enqueue_locked(c, ev);
	pthread_mutex_unlock(&c->mu);
	if (!taken)
		free(ev);
}

static void deadline_ts(struct timespec *ts, int64_t mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

struct mqim__ev *mqim__wait_event(mqim_client *c, int type, uint64_t epoch, int64_t seq,
				  int timeout_ms)
{
	int64_t until = mqim__mono_ms() + timeout_ms;
	struct mqim__ev *found = NULL;

	pthread_mutex_lock(&c->mu);
	for (;;) {
		struct mqim__ev *prev = NULL;
		for (struct mqim__ev *e = c->q_head; e; prev = e, e = e->next) {
			if (e->type == type && e->epoch == epoch &&
			    (type != MQIM_EV_PUB_DONE || e->seq == seq)) {
				if (prev)
					prev->next = e->next;
				else
					c->q_head = e->next;
				if (c->q_tail == e)
					c->q_tail = prev;
				e->next = NULL;
				c->q_scanned = NULL;
				found = e;
				break;
			}
		}
		if (found || mqim__mono_ms() >= until)
			break;
		struct timespec ts;
		deadline_ts(&ts, until);
		pthread_cond_timedwait(&c->wake, &c->mu, &ts);
	}
	pthread_mutex_unlock(&c->mu);
	return found;
}

void mqim__pump_midwork(mqim_client *c)
{
	struct mqim__evq acks = { NULL, NULL };
	if (c->in_callback || c->store_retry_at != INT64_MAX || c->st != MQIM_STATE_CONNECTED)
		return;
	pthread_mutex_lock(&c->mu);
	/* Only what came since the last look: the rest of the queue (calls,
	 * what arrived) waits for its turn, in order. */
	struct mqim__ev *prev = c->q_scanned, *e = prev ? prev->next : c->q_head;
	while (e) {
		struct mqim__ev *next = e->next;
		if (e->type == MQIM_EV_PUB_DONE && mqim__ack_simple(c, e)) {
			if (prev)
				prev->next = next;
			else
				c->q_head = next;
			if (c->q_tail == e)
				c->q_tail = prev;
			mqim__evq_push(&acks, e);
		} else {
			prev = e;
		}
		e = next;
	}
	c->q_scanned = prev;
	pthread_mutex_unlock(&c->mu);
	while (acks.head) {
		struct mqim__ev *ev = acks.head;
		acks.head = ev->next;
		mqim__pub_done(c, ev);   /* in memory: nothing to undo or hold */
		free(ev);
	}
	mqim__pump_fresh(c);
}

static void note_push(mqim_client *c, struct mqim__note *n)
{
	n->undo = c->undo_scope && n->type != MQIM_NOTE_STATE;
	if (c->n_tail)
		c->n_tail->next = n;
	else
		c->n_head = n;
	c->n_tail = n;
}

void mqim__set_state(mqim_client *c, enum mqim_state st, int err)
{
	c->st = st;
	pthread_mutex_lock(&c->mu);
	c->state = st;
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->mu);
	mqim__note_state(c, st, err);
}

void mqim__note_state(mqim_client *c, enum mqim_state st, int err)
{
	struct mqim__note *n = calloc(1, sizeof *n);
	if (!n)
		return;
	n->type = MQIM_NOTE_STATE;
	n->state = st;
	n->err = err;
	note_push(c, n);
}

void mqim__note_msg_state(mqim_client *c, const uint8_t id[16], int state, int err)
{
	struct mqim__note *n = calloc(1, sizeof *n);
	if (!n)
		return;
	n->type = MQIM_NOTE_MSG_STATE;
	n->state = state;
	n->err = err;
	memcpy(n->id, id, 16);
	note_push(c, n);
}

void mqim__note_error(mqim_client *c, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	size_t len = strlen(text);
	struct mqim__note *n = calloc(1, sizeof *n + len + 1);
	if (!n)
		return;
	n->type = MQIM_NOTE_ERROR;
	n->err = err;
	memcpy(n->buf, text, len + 1);
	n->text = n->buf;
	note_push(c, n);
}

void mqim__note_presence(mqim_client *c, const char *user, bool online, uint64_t bts)
{
	size_t len = strlen(user);
	struct mqim__note *n = calloc(1, sizeof *n + len + 1);
	if (!n)
		return;
	n->type = MQIM_NOTE_PRESENCE;
	n->online = online;
	n->bts = bts;
	memcpy(n->buf, user, len + 1);
	n->text = n->buf;
	note_push(c, n);
}

/* Copy s (len bytes) and a NUL to *p; return the copy. */
static const char *put(char **p, const void *s, size_t len)
{
	char *dst = *p;
	if (len)
		memcpy(dst, s, len);
	dst[len] = '\0';
	*p += len + 1;
	return dst;
}

void mqim__note_message(mqim_client *c, const struct mqim_env *env, bool is_group)
{
	size_t ctlen = env->ct.ptr ? env->ct.len : strlen("text/plain");
	size_t body_len = env->has_body ? env->body_len : 0;
	size_t need = env->t.len + env->fr.len + env->to.len + ctlen + body_len + 5;
	struct mqim__note *n = calloc(1, sizeof *n + need);
	if (!n) {
		mqim__note_error(c, MQIM_ENOMEM, "out of memory: a message was stored but not handed over");
		return;
	}
	char *p = n->buf;
	struct mqim_message *m = &n->msg;
	n->type = MQIM_NOTE_MESSAGE;
	memcpy(m->id, env->id, 16);
	m->kind = put(&p, env->t.ptr, env->t.len);
	m->from = put(&p, env->fr.ptr, env->fr.len);
	m->to = put(&p, env->to.ptr, env->to.len);
	m->content_type = env->ct.ptr ? put(&p, env->ct.ptr, env->ct.len) : put(&p, "text/plain", ctlen);
	m->body = put(&p, env->body, body_len);
	m->body_len = body_len;
	m->is_group = is_group;
	m->ts = env->ts;
	m->bts = env->bts;
	m->outgoing = mqim_str_eq(env->fr, c->user);
	m->state = m->outgoing ? MQIM_MSG_SENT : MQIM_MSG_RECEIVED;
	note_push(c, n);
}

static void fire(mqim_client *c, struct mqim__note *n)
{
	const struct mqim_callbacks *cb = &c->cb;
	switch (n->type) {
	case MQIM_NOTE_STATE:
		if (cb->on_state)
			cb->on_state(c, (enum mqim_state)n->state, n->err, c->ud);
		break;
	case MQIM_NOTE_MSG_STATE:
		if (cb->on_message_state)
			cb->on_message_state(c, n->id, (enum mqim_msg_state)n->state, n->err, c->ud);
		break;
	case MQIM_NOTE_MESSAGE:
		if (cb->on_message)
			cb->on_message(c, &n->msg, c->ud);
		break;
	case MQIM_NOTE_PRESENCE:
		if (cb->on_presence)
			cb->on_presence(c, n->text, n->online, n->bts, c->ud);
		break;
	case MQIM_NOTE_ERROR:
		if (cb->on_error)
			cb->on_error(c, n->err, n->text, c->ud);
		break;
	}
}

static void fire_notes(mqim_client *c)
{
	struct mqim__note *n;
	while ((n = c->n_head) != NULL) {
		/* A report says there is room: a callback may have answered
		 * more (a send from it). */
		mqim__nowait_release(c);
		c->n_head = n->next;
		if (!c->n_head)
			c->n_tail = NULL;
		if (!c->close_in_callback) {
			c->in_callback = true;
			fire(c, n);
			c->in_callback = false;
		}
		free(n);
	}
	mqim__nowait_release(c);   /* also when a report could not be made */
}

/* The transaction begun after note `mark` (NULL: the first note) was
 * rolled back: drop the notes that report its work. */
static void notes_undo(mqim_client *c, struct mqim__note *mark)
{
	struct mqim__note **p = mark ? &mark->next : &c->n_head;
	c->n_tail = mark;
	while (*p) {
		struct mqim__note *n = *p;
		if (n->undo) {
			*p = n->next;
			free(n);
		} else {
			c->n_tail = n;
			p = &n->next;
		}
	}
}

static void drop_notes(mqim_client *c)
{
	struct mqim__note *n;
	while ((n = c->n_head) != NULL) {
		c->n_head = n->next;
		free(n);
	}
	c->n_tail = NULL;
}

/* ---- calls into the library thread ---------------------------------------- */

static void store_failed(mqim_client *c, int rc);

/* Commit the open transaction (the acknowledgements waiting in memory
 * first) and tell the outbox's memory how it went (obmem.h).  A failed
 * write of the acknowledgements alone does not fail the commit: their
 * rows stay QUEUED and go again. */
static int commit_tx(mqim_client *c)
{
	mqim__acks_flush(c, true);
	int rc = mqim__db_commit(&c->db);
	mqim__obmem_commit(&c->obmem, rc == MQIM_OK);
	if (rc != MQIM_OK)
		c->next_due_stale = true;   /* rows written may be back as they were */
	return rc;
}

static bool on_library_thread(mqim_client *c)
{
	return pthread_equal(pthread_self(), c->thread);
}

static void call_complete(mqim_client *c, struct mqim__call *call, int rc)
{
	if (call->finish) {
		call->rc = rc;
		call->finish(c, call);
		return;
	}
	pthread_mutex_lock(&c->mu);
	call->rc = rc;
	call->done = true;
	pthread_cond_broadcast(&c->done);
	pthread_mutex_unlock(&c->mu);
}

/* From a callback: no batch is open; run fn and commit now. */
static int call_here(mqim_client *c, int (*fn)(mqim_client *c, void *arg), void *arg)
{
	struct mqim__note *mark = c->n_tail;
	mqim__db_sync(&c->db, true);
	bool scope = c->undo_scope;
	c->undo_scope = true;
	int rc = fn(c, arg);
	c->undo_scope = scope;
	int crc = commit_tx(c);
	if (crc != MQIM_OK) {
		notes_undo(c, mark);
		store_failed(c, crc);
	}
	c->kick = true;
	return rc != MQIM_OK ? rc : crc;
}

int mqim__call(mqim_client *c, int (*fn)(mqim_client *c, void *arg), void *arg)
{
	if (on_library_thread(c))
		return call_here(c, fn, arg);
	struct mqim__call call = { .fn = fn, .arg = arg };
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_CALL, 0);
	if (!ev)
		return MQIM_ENOMEM;
	ev->call = &call;
	pthread_mutex_lock(&c->mu);
	if (!enqueue_locked(c, ev)) {
		pthread_mutex_unlock(&c->mu);
		free(ev);
		return MQIM_ECLOSED;
	}
	while (!call.done)
		pthread_cond_wait(&c->done, &c->mu);
	pthread_mutex_unlock(&c->mu);
	return call.rc;
}

int mqim__call_nowait(mqim_client *c, struct mqim__call *call)
{
	if (on_library_thread(c)) {
		call_complete(c, call, call_here(c, call->fn, call->arg));
		return MQIM_OK;
	}
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_CALL, 0);
	if (!ev)
		return MQIM_ENOMEM;
	ev->call = call;
	pthread_mutex_lock(&c->mu);
	bool taken = enqueue_locked(c, ev);
	pthread_mutex_unlock(&c->mu);
	if (!taken)
		free(ev);
	return taken ? MQIM_OK : MQIM_ECLOSED;
}

int mqim__work_begin(mqim_client *c)
{
	int rc = mqim__db_begin(&c->db);
	if (rc == MQIM_OK && !c->work_shared)
		rc = mqim__db_savepoint(&c->db);
	return rc;
}

void mqim__work_share(mqim_client *c, bool on)
{
	c->work_shared = on;
	c->work_err = MQIM_OK;
}

/* Errors of the store itself, after which trying again later may work. */
static bool storage_error(int rc)
{
	return rc == MQIM_ENOSPC || rc == MQIM_EIO || rc == MQIM_EDB || rc == MQIM_EBUSY ||
	       rc == MQIM_ENOMEM || rc == MQIM_ECORRUPT;
}

int mqim__work_end(mqim_client *c, int rc)
{
	if (c->work_shared) {
		/* Undone, if at all, with the units it shares a savepoint with. */
		if (rc != MQIM_OK && c->work_err == MQIM_OK)
			c->work_err = rc;
		return rc;
	}
	if (rc == MQIM_OK)
		rc = mqim__db_release(&c->db);
	if (rc != MQIM_OK) {
		mqim__db_undo(&c->db);
		mqim__obmem_forget(&c->obmem);   /* its rows may be among them */
		c->next_due_stale = true;
		if (storage_error(rc))
			c->store_err = rc;
	}
	return rc;
}

/* Room for n more calls waiting for the commit. */
static bool pending_reserve(mqim_client *c, size_t n)
{
	if (c->npending + n <= c->cap_pending)
		return true;
	size_t cap = c->cap_pending ? c->cap_pending * 2 : 16;
	while (cap < c->npending + n)
		cap *= 2;
	struct mqim__call **p = realloc(c->pending, cap * sizeof *p);
	if (!p)
		return false;
	c->pending = p;
	c->cap_pending = cap;
	return true;
}

/* Commit the batch and answer the calls that waited for it. */
static int commit_batch(mqim_client *c)
{
	int rc = commit_tx(c);
	for (size_t i = 0; i < c->npending; i++)
		call_complete(c, c->pending[i], rc);
	c->npending = 0;
	return rc;
}

/* ---- when the store fails --------------------------------------------------- */

#define HOLD_RETRY_MS 1000
#define STALE_EPOCH UINT64_MAX   /* of no connection: touches no in-flight slot */

/* The store failed with rc: try again in a while; tell the app once. */
static void store_failed(mqim_client *c, int rc)
{
	if (c->store_retry_at == INT64_MAX)
		mqim__note_error(c, rc, "could not save to the data folder %s: %s; what arrives "
				 "waits in memory (at most %zu messages or receipts) until it can be "
				 "written", c->data_dir, mqim_strerror(rc), c->hold.max_n);
	c->store_retry_at = mqim__mono_ms() + HOLD_RETRY_MS;
}

/* Tell the app what the memory cap dropped since the last time. */
static void report_dropped(mqim_client *c)
{
	size_t n = mqim__hold_take_dropped(&c->hold);
	if (n)
		mqim__note_error(c, MQIM_ENOSPC, "the data folder %s could not be written: %zu "
				 "incoming messages or receipts were dropped (over %zu waiting in "
				 "memory); their senders will send them again", c->data_dir, n,
				 c->hold.max_n);
}

/* Messages and acknowledgements of our messages write to the store;
 * everything else changes only memory. */
static bool is_store_event(const struct mqim__ev *ev)
{
	return ev->type == MQIM_EV_MSG ||
	       (ev->type == MQIM_EV_PUB_DONE && ev->seq >= 0 && (ev->ok || ev->refused));
}

/* An acknowledgement about to wait in the hold: free its in-flight slot
 * now (as a publish without an answer does), so that the link is not taken
 * for dead, and make it about no slot when it is applied later. */
static void release_slot(mqim_client *c, struct mqim__ev *ev)
{
	if (ev->type != MQIM_EV_PUB_DONE || ev->epoch == STALE_EPOCH)
		return;
	bool ok = ev->ok, refused = ev->refused;
	ev->ok = ev->refused = false;
	mqim__pub_done(c, ev);
	ev->ok = ok;
	ev->refused = refused;
	ev->epoch = STALE_EPOCH;
}

static void apply_one(mqim_client *c, struct mqim__ev *ev)
{
	c->undo_scope = true;
	if (ev->type == MQIM_EV_MSG)
		mqim__receive(c, ev->topic, ev->data, ev->len);
	else
		mqim__pub_done(c, ev);
	c->undo_scope = false;
	if (ev->type == MQIM_EV_PUB_DONE)
		ev->epoch = STALE_EPOCH;   /* its slot is gone: applied again, it is news */
}

/* Apply a store event in the open transaction.  false when the store
 * failed: its work and its notes are undone, and it is to be held. */
static bool apply_event(mqim_client *c, struct mqim__ev *ev)
{
	struct mqim__note *mark = c->n_tail;
	c->store_err = MQIM_OK;
	apply_one(c, ev);
	if (c->store_err == MQIM_OK)
		return true;
	notes_undo(c, mark);
	return false;
}

static int64_t next_wake(mqim_client *c)
{
	int64_t t = c->store_retry_at < c->lazy_until ? c->store_retry_at : c->lazy_until;
	if (c->reconnect_at < t)
		t = c->reconnect_at;
	if (c->connect_deadline < t)
		t = c->connect_deadline;
	int64_t d = mqim__inflight_deadline(c);
	if (d < t)
		t = d;
	if (c->st == MQIM_STATE_CONNECTED && c->next_due != INT64_MAX &&
	    c->inflight_n < c->window && c->store_retry_at == INT64_MAX) {
		int64_t delta = c->next_due - mqim__now_ms();
		int64_t due = mqim__mono_ms() + (delta > 0 ? delta : 0);
		if (due < t)
			t = due;
	}
	/* Never sleep over a minute: the wall clock may have jumped. */
	int64_t cap = mqim__mono_ms() + 60000;
	return t < cap ? t : cap;
}

/* ---- the loop ------------------------------------------------------------- */

/* Append the list *more to *q. */
static void evq_chain(struct mqim__evq *q, struct mqim__evq *more)
{
	if (!more->head)
		return;
	if (q->tail)
		q->tail->next = more->head;
	else
		q->head = more->head;
	q->tail = more->tail;
}

static void run_call(mqim_client *c, struct mqim__call *call)
{
	if (!pending_reserve(c, 1)) {
		call_complete(c, call, MQIM_ENOMEM);
		return;
	}
	c->undo_scope = true;
	int rc = call->fn(c, call->arg);
	c->undo_scope = false;
	if (rc != MQIM_OK)
		call_complete(c, call, rc);
	else
		c->pending[c->npending++] = call;
}

/* Calls and connection events: not held, whatever the store does. */
static void run_event(mqim_client *c, struct mqim__ev *ev)
{
	if (ev->type == MQIM_EV_CALL)
		run_call(c, ev->call);
	else if (ev->type == MQIM_EV_PUB_DONE)
		mqim__pub_done(c, ev);   /* no answer, or presence: only its slot */
	else
		mqim__link_event(c, ev);
	free(ev);
}

/* Calls and what arrived must be on disk when they are answered or
 * acknowledged; the rest of the work (acknowledgements of our publishes,
 * the pump's bookkeeping) may be lost in a power cut, which costs a
 * resend the broker de-duplicates: its commits need not wait for the
 * disk (db.h, mqim__db_sync). */
static bool needs_sync(const struct mqim__ev *evs)
{
	for (const struct mqim__ev *ev = evs; ev; ev = ev->next)
		if (ev->type == MQIM_EV_CALL || ev->type == MQIM_EV_MSG)
			return true;
	return false;
}

/* Process evs in the open transaction, without committing.  Store events
 * applied go to *applied until the commit says whether they stick; those
 * that cannot be applied now (holding, or the store fails) go to the
 * hold, and *failed gets the store's error. */
/* Apply the store events of run under one savepoint (mqim__work_share):
 * a savepoint per event copies every page it touches, the most of what an
 * acknowledgement costs.  true when all went in; else nothing of them
 * stays (notes included) and the caller applies them one by one. */
static bool apply_shared(mqim_client *c, struct mqim__evq *run)
{
	struct mqim__note *mark = c->n_tail;
	int rc = mqim__work_begin(c);
	mqim__work_share(c, true);
	for (struct mqim__ev *ev = run->head; ev && rc == MQIM_OK; ev = ev->next) {
		apply_one(c, ev);
		rc = c->work_err;
	}
	mqim__work_share(c, false);
	if (mqim__work_end(c, rc) == MQIM_OK)
		return true;
	notes_undo(c, mark);
	return false;
}

/* A call to store one message (mqim_send, mqim_send_nowait). */
static bool is_send_call(const struct mqim__ev *ev)
{
	return ev->type == MQIM_EV_CALL && ev->call->fn == mqim__send_store;
}

/* Sends queued back to back (a stream of mqim_send_nowait() calls) are
 * stored as one unit of work (mqim__send_store_many: one savepoint, several
 * rows per statement), as apply_shared() does for what arrives.  true when
 * all went in: their calls wait for the commit; else nothing of them
 * stays (notes included) and the caller runs them one by one. */
static bool run_sends_shared(mqim_client *c, struct mqim__evq *run)
{
	struct mqim__note *mark = c->n_tail;
	size_t n = 0;
	for (struct mqim__ev *ev = run->head; ev; ev = ev->next)
		n++;
	if (!pending_reserve(c, n))
		return false;
	struct mqim__send_req **qs = malloc(n * sizeof *qs);
	if (!qs)
		return false;
	n = 0;
	for (struct mqim__ev *ev = run->head; ev; ev = ev->next)
		qs[n++] = ev->call->arg;
	c->undo_scope = true;
	int rc = mqim__send_store_many(c, qs, n);
	c->undo_scope = false;
	free(qs);
	if (rc != MQIM_OK) {
		notes_undo(c, mark);
		return false;
	}
	while (run->head) {
		struct mqim__ev *ev = run->head;
		run->head = ev->next;
		c->pending[c->npending++] = ev->call;
		free(ev);
	}
	run->tail = NULL;
	return true;
}

/* The events from evs for which is(ev) holds, up to the next other event,
 * into *run; returns what follows them. */
static struct mqim__ev *take_run(struct mqim__ev *evs, struct mqim__evq *run,
				 bool (*is)(const struct mqim__ev *ev))
{
	while (evs && is(evs)) {
		struct mqim__ev *ev = evs;
		evs = ev->next;
		mqim__evq_push(run, ev);
	}
	return evs;
}

static void process(mqim_client *c, struct mqim__ev *evs, bool holding, struct mqim__evq *applied,
		    int *failed)
{
	struct mqim__ev *solo_until = NULL;   /* after a shared run that failed */
	while (evs) {
		struct mqim__ev *ev = evs;
		if (evs == solo_until)
			solo_until = NULL;
		if (!solo_until && ev->next && is_send_call(ev) && is_send_call(ev->next)) {
			struct mqim__evq run = { NULL, NULL };
			struct mqim__ev *rest = take_run(evs, &run, is_send_call);
			if (run_sends_shared(c, &run)) {
				evs = rest;
				continue;
			}
			run.tail->next = rest;   /* one by one, below */
			solo_until = rest ? rest : run.tail;
		}
		if (!holding && !solo_until && is_store_event(ev) && ev->next &&
		    is_store_event(ev->next)) {
			struct mqim__evq run = { NULL, NULL };
			struct mqim__ev *rest = take_run(evs, &run, is_store_event);
			if (apply_shared(c, &run)) {
				evq_chain(applied, &run);
				evs = rest;
				continue;
			}
			run.tail->next = rest;   /* one by one, below */
			solo_until = rest ? rest : run.tail;
		}
		evs = ev->next;
		if (!is_store_event(ev)) {
			run_event(c, ev);
		} else if (holding) {
			release_slot(c, ev);
			mqim__hold_push(&c->hold, ev);
		} else if (apply_event(c, ev)) {
			mqim__evq_push(applied, ev);
		} else {
			/* The rest waits behind it, so that order is kept. */
			*failed = c->store_err;
			holding = true;
			mqim__hold_push(&c->hold, ev);
		}
	}
	mqim__link_timers(c, mqim__mono_ms());
}

/* The commit (rc) of work begun after note `mark` is in: keep what it
 * applied, or hold it again.  retry: the batch applied the hold again. */
static void settle(mqim_client *c, int rc, struct mqim__note *mark, struct mqim__evq *applied,
		   int failed, bool retry)
{
	if (rc != MQIM_OK) {
		notes_undo(c, mark);
		mqim__hold_prepend(&c->hold, applied->head);
		applied->head = applied->tail = NULL;
		store_failed(c, rc);
		return;
	}
	mqim__evq_free(applied);
	if (failed != MQIM_OK)
		store_failed(c, failed);
	else if (retry)
		c->store_retry_at = INT64_MAX;   /* all held events are stored */
}

static void pump(mqim_client *c)
{
	c->undo_scope = true;
	mqim__pump(c);
	c->undo_scope = false;
}

/* How long a lazy transaction stays open at most: the longer, the more
 * acknowledgements one bulk write and one commit take (20 ms: about 500
 * at full speed). */
#define LAZY_MS 20

/* Commit the open lazy transaction, if any, and settle what it applied. */
static void lazy_flush(mqim_client *c)
{
	if (c->lazy_until == INT64_MAX)
		return;
	c->lazy_until = INT64_MAX;
	settle(c, commit_batch(c), c->lazy_mark, &c->lazy_applied, MQIM_OK, false);
}

/* A turn with nothing that must be durable: acknowledgements of our
 * publishes, timers, the pump.  Its work joins the lazy transaction,
 * which stays open across turns until LAZY_MS after it began (or until
 * something durable comes): one commit, not synced, for every turn of a
 * busy stream of acknowledgements, and the callbacks wait for it. */
static void lazy_turn(mqim_client *c, struct mqim__ev *evs)
{
	int failed = MQIM_OK;
	if (c->lazy_until == INT64_MAX) {
		mqim__db_sync(&c->db, false);
		c->lazy_mark = c->n_tail;
		c->lazy_until = mqim__mono_ms() + LAZY_MS;
	}
	process(c, evs, false, &c->lazy_applied, &failed);
	if (failed == MQIM_OK)
		pump(c);
	if (failed != MQIM_OK || mqim__mono_ms() >= c->lazy_until)
		lazy_flush(c);
	if (failed != MQIM_OK)
		store_failed(c, failed);
	if (c->lazy_until == INT64_MAX)
		fire_notes(c);
}

/* One turn of the loop: evs (after what is held, when it is time to try
 * again) in one transaction, then the callbacks.  Calls and what arrived
 * are committed, durably, and their callbacks made, before the pump runs,
 * so that nothing is published before the send that queued it was
 * answered; the pump's work then joins a lazy transaction (lazy_turn).
 * The pump rests while the store fails: the rows it publishes could not
 * record the attempt, and their acknowledgements would only join the hold
 * (a publish loop of acknowledged rows still QUEUED). */
static void run_batch(mqim_client *c, struct mqim__ev *evs)
{
	bool retry = c->store_retry_at <= mqim__mono_ms();
	bool holding = c->store_retry_at != INT64_MAX && !retry;
	bool durable = needs_sync(evs);

	if (!durable && !retry && !holding) {
		lazy_turn(c, evs);
		return;
	}
	lazy_flush(c);
	fire_notes(c);
	struct mqim__evq applied = { NULL, NULL };
	struct mqim__note *mark = c->n_tail;
	int failed = MQIM_OK;
	if (retry) {
		evs = mqim__hold_take_before(&c->hold, evs);
		report_dropped(c);
	}
	mqim__db_sync(&c->db, durable);
	process(c, evs, holding, &applied, &failed);
	settle(c, commit_batch(c), mark, &applied, failed, retry);
	fire_notes(c);
	if (c->store_retry_at == INT64_MAX)
		lazy_turn(c, NULL);
}

static void shutdown_worker(mqim_client *c)
{
	lazy_flush(c);
	fire_notes(c);
	if (c->st != MQIM_STATE_LOGGED_OUT)
		mqim__link_close(c, true);
	else
		mqim__link_destroy(c);
	commit_batch(c);
	/* What waits in memory is lost; its senders send it again. */
	mqim__hold_clear(&c->hold);

	pthread_mutex_lock(&c->mu);
	c->stopped = true;
	struct mqim__ev *ev = c->q_head;
	c->q_head = c->q_tail = c->q_scanned = NULL;
	pthread_mutex_unlock(&c->mu);
	/* Calls that came with mqim_close() (against the rules): refused. */
	while (ev) {
		struct mqim__ev *next = ev->next;
		if (ev->type == MQIM_EV_CALL)
			call_complete(c, ev->call, MQIM_ECLOSED);
		free(ev);
		ev = next;
	}
	drop_notes(c);
	mqim__nowait_release(c);

	/* The read-only connection first: the writer, closing last, then
	 * checkpoints the write-ahead log into mqim.db and removes it, so that
	 * mqim.db alone holds everything (a backup copying only it misses
	 * nothing). */
	pthread_mutex_lock(&c->rd_mu);
	mqim__db_close(&c->rdb);
	pthread_mutex_unlock(&c->rd_mu);
	mqim__seen_close(&c->seen);
	mqim__hist_close(&c->hist);
	mqim__roster_close(&c->roster);
	mqim__ob_close(&c->ob);
	mqim__db_close(&c->db);
}

static void client_free(mqim_client *c);

/* Calls one turn takes at most (but at mqim_close(): all). */
#define CALLS_PER_TURN 256

/* The events of the next turn, off the queue; under c->mu.  At most
 * CALLS_PER_TURN calls: their commit, and the publishing that waits for
 * it, come sooner, so that a stream of mqim_send_nowait() calls is stored
 * and published by steps rather than all stored first.  The rest stays
 * first in the queue, in order. */
static struct mqim__ev *take_turn(mqim_client *c)
{
	struct mqim__ev *evs = c->q_head, *last = NULL;
	unsigned calls = 0;
	for (struct mqim__ev *e = evs; e; e = e->next) {
		if (e->type == MQIM_EV_CALL && ++calls > CALLS_PER_TURN)
			break;
		last = e;
	}
	if (c->stop || !last || !last->next) {
		c->q_head = c->q_tail = c->q_scanned = NULL;
		return evs;
	}
	c->q_head = last->next;
	c->q_scanned = NULL;
	last->next = NULL;
	return evs;
}

static void *worker_main(void *arg)
{
	mqim_client *c = arg;

	/* So that tools (top -H, perf, mqim-bench client) can tell it apart
	 * from the app's and paho's threads. */
	pthread_setname_np(pthread_self(), "mqim");
	pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->q_head && !c->stop && !c->kick) {
			int64_t wake = next_wake(c);
			if (wake <= mqim__mono_ms())
				break;
			struct timespec ts;
			deadline_ts(&ts, wake);
			pthread_cond_timedwait(&c->wake, &c->mu, &ts);
		}
		struct mqim__ev *evs = take_turn(c);
		bool stop = c->stop;
		c->kick = false;
		pthread_mutex_unlock(&c->mu);

		run_batch(c, evs);
#ifdef MQIM_OBMEM_CHECK
		mqim__obmem_check(c, "turn");
#endif
		if (stop || c->close_in_callback)
			break;
		pthread_mutex_lock(&c->mu);
	}
	shutdown_worker(c);
	if (c->close_in_callback) {
		/* mqim_close() was called from a callback: nobody joins us. */
		pthread_detach(pthread_self());
		client_free(c);
	}
	return NULL;
}

/* ---- creation -------------------------------------------------------------- */

static int mkdirs(const char *path)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
		return MQIM_EINVAL;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return errno == ENOSPC ? MQIM_ENOSPC : MQIM_EIO;
		*p = '/';
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
		return errno == ENOSPC ? MQIM_ENOSPC : MQIM_EIO;
	return MQIM_OK;
}

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int check_options(const struct mqim_options *o)
{
	if (!o || o->version != MQIM_OPTIONS_VERSION)
		return MQIM_EINVAL;
	if (!o->user || !o->data_dir || !*o->data_dir)
		return MQIM_EINVAL;
	if (!mqim_name_valid(o->user))
		return MQIM_EBADNAME;
	if (o->client_id && !mqim_clientid_allowed(o->client_id, o->user))
		return MQIM_EINVAL;
	if (!o->uri && (!o->host || !*o->host || o->port <= 0 || o->port > 65535))
		return MQIM_EINVAL;
	if (o->connect_timeout_ms == 0 || o->ack_timeout_ms == 0 ||
	    o->resend_timeout_ms == 0 || o->backoff_min_ms == 0 ||
	    o->backoff_max_ms < o->backoff_min_ms || o->max_inflight == 0 ||
	    o->max_inflight > 65535 || o->max_payload < 128 || o->seen_max == 0 ||
	    o->keepalive_s > 65535)
		return MQIM_EINVAL;
	if (o->durability != MQIM_DURABLE_FULL && o->durability != MQIM_DURABLE_APP)
		return MQIM_EINVAL;
	for (const char *const *g = o->groups; g && *g; g++)
		if (!mqim_name_valid(*g))
			return MQIM_EBADNAME;
	return MQIM_OK;
}

/* host and port with a CA or client certificate given mean TLS. */
static char *make_uri(const struct mqim_options *o)
{
	char buf[1024];
	const char *scheme = o->ca_file || o->cert_file ? "ssl" : "tcp";
	if (o->uri) {
		if (strncmp(o->uri, "mqtt://", 7) == 0)
			snprintf(buf, sizeof buf, "tcp://%s", o->uri + 7);
		else if (strncmp(o->uri, "mqtts://", 8) == 0)
			snprintf(buf, sizeof buf, "ssl://%s", o->uri + 8);
		else if (strstr(o->uri, "://"))
			snprintf(buf, sizeof buf, "%s", o->uri);
		else
			snprintf(buf, sizeof buf, "tcp://%s", o->uri);
	} else if (strchr(o->host, ':') && o->host[0] != '[') {
		snprintf(buf, sizeof buf, "%s://[%s]:%d", scheme, o->host, o->port);
	} else {
		snprintf(buf, sizeof buf, "%s://%s:%d", scheme, o->host, o->port);
	}
	return strdup(buf);
}

static int load_client_id(mqim_client *c)
{
	char dev[64];
	char buf[256];
	int rc;

	if (c->o.client_id) {
		c->client_id = strdup(c->o.client_id);
		return c->client_id ? MQIM_OK : MQIM_ENOMEM;
	}
	rc = mqim__db_meta_get(&c->db, "device_id", dev, sizeof dev);
	if (rc == MQIM_ENOTFOUND) {
		uint8_t rnd[8];
		mqim__random(rnd, sizeof rnd);
		for (int i = 0; i < 8; i++)
			snprintf(dev + 2 * i, 3, "%02x", rnd[i]);
		rc = mqim__db_meta_put(&c->db, "device_id", dev);
	}
	if (rc != MQIM_OK)
		return rc;
	snprintf(buf, sizeof buf, "%s/%s", c->user, dev);
	c->client_id = strdup(buf);
	return c->client_id ? MQIM_OK : MQIM_ENOMEM;
}

static int lock_dir(mqim_client *c)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/lock", c->data_dir);
	c->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lock_fd < 0)
		return errno == ENOSPC ? MQIM_ENOSPC : MQIM_EIO;
	if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? MQIM_EBUSY : MQIM_EIO;
	return MQIM_OK;
}

static void client_free(mqim_client *c)
{
	pthread_mutex_lock(&c->rd_mu);
	mqim__db_close(&c->rdb);
	pthread_mutex_unlock(&c->rd_mu);
	if (c->lock_fd >= 0)
		close(c->lock_fd);
	for (size_t i = 0; i < c->nwatch; i++)
		free(c->watch[i]);
	free(c->watch);
	free(c->pending);
	free(c->slots);
	mqim__obmem_free(&c->obmem);
	free(c->uri);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->user);
	if (c->password) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	free(c->client_id);
	free(c->data_dir);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->id_mu);
	pthread_mutex_destroy(&c->rd_mu);
	pthread_cond_destroy(&c->wake);
	pthread_cond_destroy(&c->done);
	free(c);
}

static int init_sync(mqim_client *c)
{
	pthread_condattr_t ca;
	pthread_mutexattr_t ma;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca);
	pthread_cond_init(&c->done, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->id_mu, NULL);
	c->rnd_used = sizeof c->rnd;   /* none yet */
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&c->rd_mu, &ma);
	pthread_mutexattr_destroy(&ma);
	return MQIM_OK;
}

static int open_stores(mqim_client *c, const char *const *groups)
{
	char err[512];
	unsigned flags = c->o.durability == MQIM_DURABLE_APP ? MQIM_DB_NOSYNC : 0;
	int rc = mqim__db_open(&c->db, c->data_dir, flags, err, sizeof err);
	if (rc != MQIM_OK)
		return rc;
	rc = mqim__ob_open(&c->ob, &c->db);
	if (rc == MQIM_OK)
		rc = mqim__roster_open(&c->roster, &c->db);
	if (rc == MQIM_OK)
		rc = mqim__hist_open(&c->hist, &c->db);
	if (rc == MQIM_OK)
		rc = mqim__seen_open(&c->seen, &c->db, c->o.seen_max);
	if (rc == MQIM_OK)
		rc = load_client_id(c);
	for (const char *const *g = groups; rc == MQIM_OK && g && *g; g++)
		rc = mqim__db_group_add(&c->db, *g);
	if (rc == MQIM_OK)
		rc = mqim__db_open(&c->rdb, c->data_dir, MQIM_DB_READONLY, err, sizeof err);
	return rc;
}

static void close_stores(mqim_client *c)
{
	mqim__seen_close(&c->seen);
	mqim__hist_close(&c->hist);
	mqim__roster_close(&c->roster);
	mqim__ob_close(&c->ob);
	mqim__db_close(&c->db);
}

MQIM_EXPORT int mqim_create(const struct mqim_options *opts, const struct mqim_callbacks *cbs,
			    void *user_data, mqim_client **out)
{
	struct mqim_options cur;
	int rc;
	if (!out || !opts || opts->version < 1 || opts->version > MQIM_OPTIONS_VERSION)
		return MQIM_EINVAL;
	*out = NULL;
	/* An app built against version 1 passes a shorter struct: copy what it
	 * has, the fields added since stay zero (their defaults). */
	memset(&cur, 0, sizeof(cur));
	memcpy(&cur, opts, opts->version == 1 ? offsetof(struct mqim_options, cert_file) : sizeof(cur));
	cur.version = MQIM_OPTIONS_VERSION;
	opts = &cur;
	rc = check_options(opts);
	if (rc != MQIM_OK)
		return rc;
	if (cbs && cbs->version != MQIM_CALLBACKS_VERSION)
		return MQIM_EINVAL;

	mqim_client *c = calloc(1, sizeof *c);
	if (!c)
		return MQIM_ENOMEM;
	c->lock_fd = -1;
	c->o = *opts;
	c->o.groups = NULL;
	if (cbs)
		c->cb = *cbs;
	c->ud = user_data;
	init_sync(c);
	c->uri = make_uri(opts);
	c->ca_file = dupstr(opts->ca_file);
	c->cert_file = dupstr(opts->cert_file);
	c->key_file = dupstr(opts->key_file);
	c->user = strdup(opts->user);
	c->password = dupstr(opts->password);
	c->data_dir = strdup(opts->data_dir);
	c->nslots = opts->max_inflight + 2;
	c->slots = calloc(c->nslots, sizeof *c->slots);
	if (!c->uri || !c->user || !c->data_dir || !c->slots ||
	    (opts->ca_file && !c->ca_file) || (opts->password && !c->password) ||
	    (opts->cert_file && !c->cert_file) || (opts->key_file && !c->key_file)) {
		rc = MQIM_ENOMEM;
		goto fail;
	}
	/* Strings in c->o point to the caller's memory: never used past here. */
	c->o.host = c->o.uri = c->o.ca_file = c->o.user = c->o.password = NULL;
	c->o.cert_file = c->o.key_file = NULL;
	c->o.data_dir = NULL;
	snprintf(c->inbox, sizeof c->inbox, "%s%s", "im/u/", c->user);
	c->bo = (struct mqim__backoff){ opts->backoff_min_ms, opts->backoff_max_ms, opts->max_attempts };
	c->obcfg = (struct mqim__ob_cfg){ opts->resend_timeout_ms, opts->max_resends };
	c->st = c->state = MQIM_STATE_IDLE;
	c->reconnect_at = c->connect_deadline = INT64_MAX;
	c->store_retry_at = c->lazy_until = INT64_MAX;
	mqim__hold_init(&c->hold);
	mqim__obmem_init(&c->obmem, MQIM__OBMEM_MAX_BYTES);
	c->next_due = INT64_MAX;
	c->window = opts->max_inflight;

	rc = mkdirs(c->data_dir);
	if (rc == MQIM_OK)
		rc = lock_dir(c);
	if (rc == MQIM_OK)
		rc = open_stores(c, opts->groups);
	if (rc == MQIM_OK) {
		c->o.client_id = NULL;
		c->next_due = mqim__ob_next_due(&c->ob);
		c->next_due_stale = false;
		if (pthread_create(&c->thread, NULL, worker_main, c) != 0)
			rc = MQIM_ENOMEM;
	}
	if (rc != MQIM_OK) {
		close_stores(c);
		goto fail;
	}
	*out = c;
	return MQIM_OK;
fail:
	client_free(c);
	return rc;
}

/* ---- control calls ---------------------------------------------------------- */

static int do_connect(mqim_client *c, void *arg)
{
	bool force = arg != NULL;
	switch (c->st) {
	case MQIM_STATE_LOGGED_OUT:
		return MQIM_ECLOSED;
	case MQIM_STATE_CONNECTED:
	case MQIM_STATE_CONNECTING:
		return MQIM_OK;
	case MQIM_STATE_IDLE:
		break;
	default:
		if (!force)
			return MQIM_OK;
		break;
	}
	c->failures = 0;
	c->reconnect_at = INT64_MAX;
	return mqim__link_start(c);
}

MQIM_EXPORT int mqim_connect(mqim_client *c)
{
	if (!c)
		return MQIM_EINVAL;
	return mqim__call(c, do_connect, NULL);
}

MQIM_EXPORT int mqim_reconnect(mqim_client *c)
{
	if (!c)
		return MQIM_EINVAL;
	return mqim__call(c, do_connect, c);
}

static int do_logout(mqim_client *c, void *arg)
{
	(void)arg;
	if (c->st == MQIM_STATE_LOGGED_OUT)
		return MQIM_OK;
	mqim__link_close(c, true);
	c->reconnect_at = c->connect_deadline = INT64_MAX;
	mqim__set_state(c, MQIM_STATE_LOGGED_OUT, MQIM_OK);
	return MQIM_OK;
}

MQIM_EXPORT int mqim_logout(mqim_client *c)
{
	if (!c)
		return MQIM_EINVAL;
	return mqim__call(c, do_logout, NULL);
}

MQIM_EXPORT void mqim_close(mqim_client *c)
{
	if (!c)
		return;
	if (on_library_thread(c)) {
		c->close_in_callback = true;
		return;
	}
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	client_free(c);
}

MQIM_EXPORT enum mqim_state mqim_get_state(mqim_client *c)
{
	if (!c)
		return MQIM_STATE_IDLE;
	pthread_mutex_lock(&c->mu);
	enum mqim_state st = c->state;
	pthread_mutex_unlock(&c->mu);
	return st;
}

MQIM_EXPORT const char *mqim_client_id(mqim_client *c)
{
	return c ? c->client_id : NULL;
}

MQIM_EXPORT const char *mqim_user(mqim_client *c)
{
	return c ? c->user : NULL;
}

void mqim__new_id(mqim_client *c, uint8_t id[16])
{
	/* The random bits come from the kernel 32 ids at a time, not in a
	 * getrandom() call per id: a system call per message sent.  Under
	 * id_mu, not mu: the sending thread does not contend with the
	 * library thread and paho's for it. */
	pthread_mutex_lock(&c->id_mu);
	if (c->rnd_used + 8 > sizeof c->rnd) {
		mqim__random(c->rnd, sizeof c->rnd);
		c->rnd_used = 0;
	}
	mqim__uuid7_next(&c->idgen, (uint64_t)mqim__now_ms(), c->rnd + c->rnd_used, id);
	c->rnd_used += 8;
	pthread_mutex_unlock(&c->id_mu);
}

/* ---- groups and presence watches ------------------------------------------- */

struct name_arg {
	const char *name;
	bool add;
};

static int do_group(mqim_client *c, void *arg)
{
	struct name_arg *a = arg;
	char topic[80];
	int rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = a->add ? mqim__db_group_add(&c->db, a->name) : mqim__db_group_del(&c->db, a->name);
	rc = mqim__work_end(c, rc);
	if (rc != MQIM_OK || c->st != MQIM_STATE_CONNECTED)
		return rc;
	mqim__peer_topic(topic, a->name, true);
	if (a->add)
		mqim__link_subscribe(c, topic, true);
	else
		mqim__link_unsubscribe(c, topic);
	return MQIM_OK;
}

/* The four calls below differ only in the name, the direction and the job
 * run on the library thread. */
static int name_call(mqim_client *c, const char *name, bool add,
		     int (*job)(mqim_client *, void *))
{
	struct name_arg a = { name, add };
	if (!c)
		return MQIM_EINVAL;
	if (!mqim_name_valid(name))
		return MQIM_EBADNAME;
	return mqim__call(c, job, &a);
}

MQIM_EXPORT int mqim_join_group(mqim_client *c, const char *gid)
{
	return name_call(c, gid, true, do_group);
}

MQIM_EXPORT int mqim_leave_group(mqim_client *c, const char *gid)
{
	return name_call(c, gid, false, do_group);
}

static int do_watch(mqim_client *c, void *arg)
{
	struct name_arg *a = arg;
	char topic[80];
	size_t i;

	for (i = 0; i < c->nwatch; i++)
		if (strcmp(c->watch[i], a->name) == 0)
			break;
	snprintf(topic, sizeof topic, "im/p/%s", a->name);
	if (a->add) {
		if (i < c->nwatch)
			return MQIM_OK;
		char **w = realloc(c->watch, (c->nwatch + 1) * sizeof *w);
		if (!w)
			return MQIM_ENOMEM;
		c->watch = w;
		if (!(w[c->nwatch] = strdup(a->name)))
			return MQIM_ENOMEM;
		c->nwatch++;
		if (c->st == MQIM_STATE_CONNECTED)
			mqim__link_subscribe(c, topic, false);
	} else {
		if (i == c->nwatch)
			return MQIM_ENOTFOUND;
		free(c->watch[i]);
		c->watch[i] = c->watch[--c->nwatch];
		if (c->st == MQIM_STATE_CONNECTED)
			mqim__link_unsubscribe(c, topic);
	}
	return MQIM_OK;
}

MQIM_EXPORT int mqim_watch_presence(mqim_client *c, const char *user)
{
	return name_call(c, user, true, do_watch);
}

MQIM_EXPORT int mqim_unwatch_presence(mqim_client *c, const char *user)
{
	return name_call(c, user, false, do_watch);
}
