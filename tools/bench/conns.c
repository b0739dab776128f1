/* conns.c - N idle persistent sessions and the broker's memory for them.
 *
 * Each client logs in with a password, clean start and a session expiry of
 * one hour (a persistent session, as libmqim keeps), subscribes to its
 * inbox at QoS 1 and stays idle.  At most MAX_PENDING logins are under way
 * at once (a broker's accept queue is short; a real fleet arrives spread
 * out too), and a client closed before its CONNACK (broker C's hashing
 * budget) retries after a short random delay.  At each step the broker's
 * VmRSS is read after SETTLE_MS of quiet.  At the end every client
 * disconnects with a session expiry of 0, so the broker drops the sessions.
 *
 * Thread rules: one run, one thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define MAX_PENDING 128
#define SETTLE_MS   1500

struct cclient {
	struct mclient cl;
	bool ready;
};

struct conns {
	const struct conns_cfg *cfg;
	struct bloop loop;
	struct cclient *c;
	unsigned total, started, pending, ready;
	struct theap retry;
	uint64_t rng;
	bool broken;
};

static void c_up(struct mclient *m)
{
	char topic[96];
	snprintf(topic, sizeof(topic), "im/u/%s", m->username);
	if (!mclient_subscribe(m, topic, 1))
		mclient_abort(m);
}

static void c_suback(struct mclient *m, const struct mqtt_pkt *p)
{
	struct conns *r = m->owner;
	struct cclient *c = &r->c[m->idx];
	if (p->ncodes != 1 || p->codes[0] >= 0x80) {
		fail("%s: subscription refused", m->client_id);
		r->broken = true;
		return;
	}
	if (!c->ready) {
		c->ready = true;
		r->ready++;
		r->pending--;
	}
}

static void c_refused(struct mclient *m, uint8_t reason)
{
	struct conns *r = m->owner;
	fail("%s: login refused (CONNACK 0x%02x)", m->client_id, reason);
	r->broken = true;
}

static void c_down(struct mclient *m, bool was_up)
{
	struct conns *r = m->owner;
	struct cclient *c = &r->c[m->idx];
	(void)was_up;
	if (c->ready || r->broken)
		return;
	uint64_t delay = 50 + xs64(&r->rng) % 200;
	theap_push(&r->retry, r->loop.now + delay * 1000000ull, m->idx);
}

static const struct mclient_ops conn_ops = {
	.on_up = c_up, .on_refused = c_refused, .on_down = c_down, .on_suback = c_suback,
};

static void start(struct conns *r, unsigned i)
{
	if (mclient_start(&r->c[i].cl, &r->loop, r->cfg->port) != 0)
		theap_push(&r->retry, r->loop.now + 100 * 1000000ull, i);
}

/* Log clients in until `target` are ready or the deadline passes. */
static int grow_to(struct conns *r, unsigned target, uint64_t deadline)
{
	while (r->ready < target && !r->broken) {
		uint64_t now = mono_ns();
		unsigned i;
		while (theap_pop_due(&r->retry, now, &i))
			start(r, i);
		while (r->started < target && r->pending < MAX_PENDING) {
			r->pending++;
			start(r, r->started++);
		}
		if (now > deadline) {
			fail("connections: only %u of %u sessions after the time limit", r->ready, target);
			return -1;
		}
		if (bloop_turn(&r->loop, 20) < 0)
			return -1;
	}
	return r->broken ? -1 : 0;
}

static void settle(struct conns *r)
{
	uint64_t end = mono_ns() + SETTLE_MS * 1000000ull;
	while (mono_ns() < end)
		bloop_turn(&r->loop, 50);
}

static int setup(struct conns *r, const struct conns_cfg *cfg)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->rng = rand64();
	r->total = cfg->steps[cfg->nsteps - 1];
	if (bloop_init(&r->loop) != 0)
		return -1;
	r->c = calloc(r->total, sizeof(*r->c));
	if (!r->c)
		return -1;
	for (unsigned i = 0; i < r->total; i++) {
		char name[72];
		name_conn(name, sizeof(name), i);
		mclient_init(&r->c[i].cl, &conn_ops, r, i, name, name, BENCH_PASSWORD);
		r->c[i].cl.clean_start = true;
		r->c[i].cl.session_expiry_s = 3600;
		r->c[i].cl.keepalive_s = 600;
	}
	return 0;
}

static void teardown(struct conns *r)
{
	r->broken = true; /* no retry from here on */
	for (unsigned i = 0; r->c && i < r->total; i++) {
		mclient_disconnect(&r->c[i].cl, 0);
		mclient_free(&r->c[i].cl);
	}
	free(r->c);
	theap_free(&r->retry);
	bloop_free(&r->loop);
}

int conns_run(const struct conns_cfg *cfg, struct conns_result *res)
{
	struct conns r;
	memset(res, 0, sizeof(*res));
	if (cfg->nsteps < 1 || cfg->nsteps > 4)
		return -1;
	long limit = raise_nofile((long)cfg->steps[cfg->nsteps - 1] + 256);
	if (limit < (long)cfg->steps[cfg->nsteps - 1] + 64) {
		fail("connections: RLIMIT_NOFILE is %ld, too low for %u connections "
		     "(raise the hard limit: ulimit -Hn)", limit, cfg->steps[cfg->nsteps - 1]);
		return -1;
	}
	int rc = setup(&r, cfg);
	uint64_t deadline = mono_ns() + (uint64_t)cfg->timeout_s * 1000000000ull;
	res->rss0_kib = -1;
	if (rc == 0) {
		settle(&r);
		res->rss0_kib = broker_rss_kib_pid(cfg->broker_pid);
	}
	for (size_t k = 0; rc == 0 && k < cfg->nsteps; k++) {
		rc = grow_to(&r, cfg->steps[k], deadline);
		if (rc != 0)
			break;
		settle(&r);
		res->reached[k] = r.ready;
		res->rss_kib[k] = broker_rss_kib_pid(cfg->broker_pid);
		if (res->rss0_kib >= 0 && res->rss_kib[k] >= 0)
			res->bytes_per_conn[k] = (double)(res->rss_kib[k] - res->rss0_kib) * 1024.0 /
						 cfg->steps[k];
		note("connections: %u sessions, VmRSS %ld KiB", r.ready, res->rss_kib[k]);
	}
	res->complete = rc == 0;
	teardown(&r);
	return rc;
}
