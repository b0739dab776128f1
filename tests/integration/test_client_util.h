/* test_client_util.h - a libmqim client wrapped for integration tests.
 *
 * struct tc records what the library's callbacks report (connection
 * states, received messages, message states, errors) under a mutex, and
 * lets the test thread wait for a condition with a timeout.  Options are
 * tuned for tests: short timeouts and backoff, durability MQIM_DURABLE_APP
 * (no fsync per write: the tests kill processes, not the OS).
 *
 * Header-only (static inline) so that every tests/integration/test_client_*.c
 * can use it without a support object.  One struct tc per client; any
 * thread may call tc_* functions.
 */
#ifndef MQIM_TEST_CLIENT_UTIL_H
#define MQIM_TEST_CLIENT_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mqim.h"
#include "tbroker.h"

#define TC_MAX_STATES 256

struct tc_msg {
	uint8_t id[16];
	char kind[16];
	char from[65];
	char to[65];
	bool is_group;
	uint64_t bts;
	char *body;
	size_t len;
};

struct tc_ms {
	uint8_t id[16];
	int state;
	int err;
};

struct tc {
	mqim_client *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char dir[256];
	enum mqim_state state;
	int states[TC_MAX_STATES];   /* every state reported, in order */
	int state_errs[TC_MAX_STATES];
	int nstates;
	struct tc_msg *msgs;
	size_t nmsgs, cap;
	struct tc_ms *ms;
	size_t nms, mscap;
	int nerrors;
	int last_error;
	char presence_user[65];
	int presence_online;         /* -1 unknown */
	bool mark_read;              /* mark every message read on arrival */
};

static inline int64_t tc_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tc_sleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static inline void tc_on_state(mqim_client *c, enum mqim_state st, int err, void *ud)
{
	struct tc *t = ud;
	(void)c;
	pthread_mutex_lock(&t->mu);
	t->state = st;
	if (t->nstates < TC_MAX_STATES) {
		t->state_errs[t->nstates] = err;
		t->states[t->nstates++] = st;
	}
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (getenv("TC_VERBOSE"))
		fprintf(stderr, "[%s] state %s (%s)\n", t->dir, mqim_state_name(st), mqim_errname(err));
}

static inline void tc_on_message(mqim_client *c, const struct mqim_message *m, void *ud)
{
	struct tc *t = ud;
	pthread_mutex_lock(&t->mu);
	if (t->nmsgs == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 64;
		t->msgs = realloc(t->msgs, t->cap * sizeof *t->msgs);
	}
	struct tc_msg *r = &t->msgs[t->nmsgs++];
	memset(r, 0, sizeof *r);
	memcpy(r->id, m->id, 16);
	snprintf(r->kind, sizeof r->kind, "%s", m->kind);
	snprintf(r->from, sizeof r->from, "%s", m->from);
	snprintf(r->to, sizeof r->to, "%s", m->to);
	r->is_group = m->is_group;
	r->bts = m->bts;
	r->body = malloc(m->body_len + 1);
	memcpy(r->body, m->body, m->body_len + 1);   /* the NUL is promised */
	r->len = m->body_len;
	bool mark = t->mark_read;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	if (mark && strcmp(m->kind, "msg") == 0)
		mqim_mark_read(c, m->from, m->id);   /* from a callback: must not deadlock */
}

static inline void tc_on_msg_state(mqim_client *c, const uint8_t id[16], enum mqim_msg_state st,
				   int err, void *ud)
{
	struct tc *t = ud;
	(void)c;
	pthread_mutex_lock(&t->mu);
	size_t i;
	for (i = 0; i < t->nms; i++)
		if (memcmp(t->ms[i].id, id, 16) == 0)
			break;
	if (i == t->nms) {
		if (t->nms == t->mscap) {
			t->mscap = t->mscap ? t->mscap * 2 : 64;
			t->ms = realloc(t->ms, t->mscap * sizeof *t->ms);
		}
		memcpy(t->ms[t->nms++].id, id, 16);
	}
	t->ms[i].state = st;
	t->ms[i].err = err;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static inline void tc_on_presence(mqim_client *c, const char *user, bool online, uint64_t bts,
				  void *ud)
{
	struct tc *t = ud;
	(void)c;
	(void)bts;
	pthread_mutex_lock(&t->mu);
	snprintf(t->presence_user, sizeof t->presence_user, "%s", user);
	t->presence_online = online;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

static inline void tc_on_error(mqim_client *c, int err, const char *what, void *ud)
{
	struct tc *t = ud;
	(void)c;
	pthread_mutex_lock(&t->mu);
	t->nerrors++;
	t->last_error = err;
	pthread_mutex_unlock(&t->mu);
	if (getenv("TC_VERBOSE"))
		fprintf(stderr, "[%s] error %s: %s\n", t->dir, mqim_errname(err), what);
}

/* Prepare and start broker b with these users (NULL-terminated), each
 * with password pw and no group; 0 or -1. */
static inline int tc_broker_up(struct tbroker *b, const char *pw, const char *const *users)
{
	if (tbroker_init(b, NULL) != 0)
		return -1;
	for (const char *const *u = users; *u; u++)
		if (tbroker_add_user(b, *u, pw, false) != 0)
			return -1;
	return tbroker_start(b);
}

/* Options for tests: short timeouts, fast backoff. */
static inline void tc_options(struct mqim_options *o, int port, const char *user,
			      const char *pass, const char *dir)
{
	struct mqim_options d = MQIM_OPTIONS_INIT;
	*o = d;
	o->host = "127.0.0.1";
	o->port = port;
	o->user = user;
	o->password = pass;
	o->data_dir = dir;
	o->keepalive_s = 5;
	o->connect_timeout_ms = 3000;
	o->ack_timeout_ms = 3000;
	o->resend_timeout_ms = 15000;
	o->backoff_min_ms = 200;
	o->backoff_max_ms = 1000;
	o->durability = MQIM_DURABLE_APP;
}

/* A fresh data folder under $TMPDIR (or /tmp) into dir. */
static inline void tc_tmpdir(char *dir, size_t len, const char *tag)
{
	const char *base = getenv("TMPDIR");
	snprintf(dir, len, "%s/mqim-tc-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(dir))
		dir[0] = '\0';
}

static inline void tc_init(struct tc *t)
{
	memset(t, 0, sizeof *t);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, NULL);
	t->presence_online = -1;
}

/* Create (not connect) a client with options o; dir is copied into t. */
static inline int tc_create(struct tc *t, const struct mqim_options *o)
{
	struct mqim_callbacks cb = MQIM_CALLBACKS_INIT;
	cb.on_state = tc_on_state;
	cb.on_message = tc_on_message;
	cb.on_message_state = tc_on_msg_state;
	cb.on_presence = tc_on_presence;
	cb.on_error = tc_on_error;
	snprintf(t->dir, sizeof t->dir, "%s", o->data_dir);
	return mqim_create(o, &cb, t, &t->c);
}

/* Create and connect with the test options; 0 or an MQIM_E* code. */
static inline int tc_open(struct tc *t, int port, const char *user, const char *pass,
			  const char *dir)
{
	struct mqim_options o;
	tc_options(&o, port, user, pass, dir);
	tc_init(t);
	int rc = tc_create(t, &o);
	return rc ? rc : mqim_connect(t->c);
}

/* tc_open() following groups (NULL-terminated, or NULL) with this resend
 * policy; 0 or an MQIM_E* code. */
static inline int tc_open_resend(struct tc *t, int port, const char *user, const char *pass,
				 const char *dir, const char *const *groups, unsigned resend_ms,
				 unsigned max_resends)
{
	struct mqim_options o;
	tc_options(&o, port, user, pass, dir);
	o.groups = groups;
	o.resend_timeout_ms = resend_ms;
	o.max_resends = max_resends;
	tc_init(t);
	int rc = tc_create(t, &o);
	return rc ? rc : mqim_connect(t->c);
}

static inline void tc_close(struct tc *t)
{
	mqim_close(t->c);
	t->c = NULL;
	for (size_t i = 0; i < t->nmsgs; i++)
		free(t->msgs[i].body);
	free(t->msgs);
	free(t->ms);
	t->msgs = NULL;
	t->ms = NULL;
	t->nmsgs = t->cap = t->nms = t->mscap = 0;
	pthread_mutex_destroy(&t->mu);
	pthread_cond_destroy(&t->cv);
}

static inline void tc_rmdir(const char *dir)
{
	char cmd[600];
	if (!dir[0] || getenv("MQIM_KEEP_TMP"))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

/* Wait on t's condition variable until deadline; false on timeout. */
static inline bool tc_wait_locked(struct tc *t, int64_t deadline)
{
	int64_t now = tc_now();
	if (now >= deadline)
		return false;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + (deadline - now) * 1000000LL;
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	pthread_cond_timedwait(&t->cv, &t->mu, &ts);
	return true;
}

static inline bool tc_wait_state(struct tc *t, enum mqim_state st, int timeout_ms)
{
	int64_t deadline = tc_now() + timeout_ms;
	pthread_mutex_lock(&t->mu);
	while (t->state != st && tc_wait_locked(t, deadline))
		;
	bool ok = t->state == st;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

static inline bool tc_wait_msgs(struct tc *t, size_t n, int timeout_ms)
{
	int64_t deadline = tc_now() + timeout_ms;
	pthread_mutex_lock(&t->mu);
	while (t->nmsgs < n && tc_wait_locked(t, deadline))
		;
	bool ok = t->nmsgs >= n;
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* Number of states reported so far. */
static inline int tc_nstates(struct tc *t)
{
	pthread_mutex_lock(&t->mu);
	int n = t->nstates;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* Wait until state st is reported at index >= from (a state that may have
 * come and gone already). */
static inline bool tc_wait_state_after(struct tc *t, enum mqim_state st, int from, int timeout_ms)
{
	int64_t deadline = tc_now() + timeout_ms;
	bool ok = false;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		for (int i = from; i < t->nstates && !ok; i++)
			ok = t->states[i] == (int)st;
		if (ok || !tc_wait_locked(t, deadline))
			break;
	}
	pthread_mutex_unlock(&t->mu);
	return ok;
}

static inline size_t tc_nmsgs(struct tc *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->nmsgs;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static inline int tc_state_count(struct tc *t, enum mqim_state st)
{
	int n = 0;
	pthread_mutex_lock(&t->mu);
	for (int i = 0; i < t->nstates; i++)
		n += t->states[i] == (int)st;
	pthread_mutex_unlock(&t->mu);
	return n;
}

/* The last reported state of message id, 0 if none. */
static inline int tc_msg_state_locked(struct tc *t, const uint8_t id[16])
{
	for (size_t i = 0; i < t->nms; i++)
		if (memcmp(t->ms[i].id, id, 16) == 0)
			return t->ms[i].state;
	return 0;
}

/* Wait until message id reached state st (or READ, which is past it, when
 * st is DELIVERED). */
static inline bool tc_wait_msg_state(struct tc *t, const uint8_t id[16], int st, int timeout_ms)
{
	int64_t deadline = tc_now() + timeout_ms;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		int cur = tc_msg_state_locked(t, id);
		if (cur == st || (st == MQIM_MSG_DELIVERED && cur == MQIM_MSG_READ) ||
		    (st == MQIM_MSG_SENT && (cur == MQIM_MSG_DELIVERED || cur == MQIM_MSG_READ)))
			break;
		if (!tc_wait_locked(t, deadline))
			break;
	}
	int cur = tc_msg_state_locked(t, id);
	pthread_mutex_unlock(&t->mu);
	return cur == st || (st == MQIM_MSG_DELIVERED && cur == MQIM_MSG_READ) ||
	       (st == MQIM_MSG_SENT && (cur == MQIM_MSG_DELIVERED || cur == MQIM_MSG_READ));
}

/* How many times t was handed the message id. */
static inline int tc_copies(struct tc *t, const uint8_t id[16])
{
	int n = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nmsgs; i++)
		n += memcmp(t->msgs[i].id, id, 16) == 0;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static inline int tc_count_entry(void *ctx, const struct mqim_outbox_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

/* Messages in t's outbox now, or an MQIM_E* code. */
static inline int tc_outbox_rows(struct tc *t)
{
	int n = 0;
	int rc = mqim_outbox(t->c, tc_count_entry, &n);
	return rc < 0 ? rc : n;
}

/* Count of messages whose last state is at least DELIVERED. */
static inline size_t tc_delivered_count(struct tc *t)
{
	size_t n = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->nms; i++)
		n += t->ms[i].state == MQIM_MSG_DELIVERED || t->ms[i].state == MQIM_MSG_READ;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static inline bool tc_wait_delivered(struct tc *t, size_t n, int timeout_ms)
{
	int64_t end = tc_now() + timeout_ms;
	while (tc_delivered_count(t) < n && tc_now() < end)
		tc_sleep(20);
	return tc_delivered_count(t) >= n;
}

#endif
