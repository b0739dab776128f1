/* flows.c - the message scenarios: pairs, group and latency (with or
 * without a login storm).
 *
 * A flow is one sender and its receivers: one receiver per conversation in
 * `pairs`, S receivers of one group in `group`.  A sender keeps at most
 * `window` messages that are sent and not yet both acknowledged by the
 * broker and received by every receiver; for QoS 1 and 2 the MQTT in-flight
 * count is also kept under the broker's Receive Maximum.  Unpaced runs send
 * as fast as the window allows; paced runs (latency) send on a fixed
 * schedule whatever the broker does (open loop), so a stalled broker shows
 * as latency instead of silently slowing the generator down.
 *
 * Every message is counted per (receiver, sequence) in a bitmap: a second
 * arrival is a duplicate, a missing one at the end is lost.  Latency is the
 * receive time minus the send time carried in the body, both CLOCK_MONOTONIC
 * of this process.
 *
 * Thread rules: one run, one thread; the run owns every client and buffer.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define STALL_NS       (1000u * 1000000ull)  /* no delivery this long: give up the window */
#define DRAIN_NS       (3000u * 1000000ull)  /* after the last send, wait this long at most */
#define RETRY_MIN_MS   100
#define RETRY_SPAN_MS  400

enum phase { PH_SETUP, PH_SEND, PH_DRAIN, PH_DONE };

struct rx {
	struct mclient cl;
	uint32_t flow, r;
	bool subscribed;
	uint64_t retry_at;
};

struct flow {
	struct mclient tx;
	struct env_tmpl tmpl;
	uint64_t retry_at;
	uint32_t first_rx, nrx;
	uint32_t n;                  /* capacity: messages this flow may send */
	uint32_t sent, acked, refused, completed, abandoned;
	uint16_t *count;             /* per seq: receivers reached */
	uint64_t *bits;              /* nrx x n bits */
	uint64_t next_due, period_ns;
};

struct run {
	const struct flow_cfg *cfg;
	struct bloop loop;
	struct flow *flows;
	struct rx *rxs;
	uint32_t nflows, nrx, subs, ups;
	enum phase phase;
	bool broken;                 /* a client was refused or lost mid-run */
	uint64_t rng, deadline, t_first_send, t_last_delivery, t_last_progress;
	uint64_t t_send_start, t_send_end, storm_t0;
	uint64_t delivered, dup, garbled;
	struct samples lat, lat_base, lat_storm;
	struct storm *storm;
	double cpu0_self, cpu0_user, cpu0_sys;  /* at the start of sending; -1: unknown */
};

/* ---- receiving ------------------------------------------------------------ */

static bool bit_test_set(uint64_t *bits, size_t i)
{
	uint64_t m = 1ull << (i & 63);
	bool was = (bits[i >> 6] & m) != 0;
	bits[i >> 6] |= m;
	return was;
}

static void rx_message(struct mclient *m, const struct mqtt_pkt *p)
{
	struct run *run = m->owner;
	struct rx *rx = &run->rxs[m->idx];
	uint32_t f, seq;
	uint64_t sent;
	if (!env_stamp_read(p->payload, p->payload_len, &f, &seq, &sent) || f != rx->flow ||
	    seq >= run->flows[f].sent) {
		run->garbled++;
		return;
	}
	struct flow *fl = &run->flows[f];
	if (bit_test_set(fl->bits, (size_t)rx->r * fl->n + seq)) {
		run->dup++;
		return;
	}
	uint64_t now = run->loop.now;
	run->delivered++;
	run->t_last_delivery = run->t_last_progress = now;
	if (++fl->count[seq] == fl->nrx)
		fl->completed++;
	uint64_t lat = now > sent ? now - sent : 0;
	samples_add(&run->lat, lat);
	if (run->cfg->storm)
		samples_add(run->storm_t0 && sent >= run->storm_t0 ? &run->lat_storm : &run->lat_base, lat);
}

static void rx_up(struct mclient *m)
{
	struct run *run = m->owner;
	struct flow *fl = &run->flows[run->rxs[m->idx].flow];
	if (!mclient_subscribe(m, fl->tmpl.topic, run->cfg->qos))
		mclient_abort(m);
}

static void rx_suback(struct mclient *m, const struct mqtt_pkt *p)
{
	struct run *run = m->owner;
	struct rx *rx = &run->rxs[m->idx];
	if (p->ncodes != 1 || p->codes[0] >= 0x80) {
		fail("%s: subscription refused (reason 0x%02x)", m->client_id,
		     p->ncodes ? p->codes[0] : 0);
		run->broken = true;
		return;
	}
	if (!rx->subscribed) {
		rx->subscribed = true;
		run->subs++;
	}
}

static void any_refused(struct mclient *m, uint8_t reason)
{
	struct run *run = m->owner;
	fail("%s: login refused (CONNACK 0x%02x)", m->client_id, reason);
	run->broken = true;
}

static uint64_t retry_time(struct run *run)
{
	return run->loop.now + (RETRY_MIN_MS + xs64(&run->rng) % RETRY_SPAN_MS) * 1000000ull;
}

static void rx_down(struct mclient *m, bool was_up)
{
	struct run *run = m->owner;
	struct rx *rx = &run->rxs[m->idx];
	if (rx->subscribed || run->phase != PH_SETUP) {
		if (run->phase != PH_DONE) {
			fail("%s: connection lost during the run", m->client_id);
			run->broken = true;
		}
		return;
	}
	(void)was_up;
	rx->retry_at = retry_time(run); /* e.g. closed by a login budget: retry */
}

static const struct mclient_ops rx_ops = {
	.on_up = rx_up, .on_refused = any_refused, .on_down = rx_down,
	.on_suback = rx_suback, .on_message = rx_message,
};

/* ---- sending -------------------------------------------------------------- */

static void tx_up(struct mclient *m)
{
	struct run *run = m->owner;
	run->ups++;
}

static void tx_acked(struct mclient *m, uint16_t pid, uint8_t reason)
{
	struct run *run = m->owner;
	struct flow *fl = &run->flows[m->idx];
	(void)pid;
	fl->acked++;
	if (reason >= 0x80) {
		if (!fl->refused)
			fail("%s: publish refused by the broker (reason 0x%02x)", m->client_id, reason);
		fl->refused++;
		fl->abandoned++; /* never delivered: frees its window slot */
	}
}

static void tx_down(struct mclient *m, bool was_up)
{
	struct run *run = m->owner;
	struct flow *fl = &run->flows[m->idx];
	if (run->phase == PH_SETUP && !was_up) {
		fl->retry_at = retry_time(run);
		return;
	}
	if (run->phase != PH_DONE) {
		fail("%s: connection lost during the run", m->client_id);
		run->broken = true;
	}
	if (was_up && run->ups)
		run->ups--;
}

static const struct mclient_ops tx_ops = {
	.on_up = tx_up, .on_refused = any_refused, .on_down = tx_down,
	.on_acked = tx_acked,
};

/* Messages of fl sent and neither completed nor given up. */
static uint32_t outstanding(const struct flow *fl)
{
	uint32_t done = fl->completed + fl->abandoned;
	return fl->sent > done ? fl->sent - done : 0;
}

static bool can_send(const struct run *run, const struct flow *fl)
{
	unsigned w = run->cfg->window;
	if (fl->sent >= fl->n || fl->tx.st != MC_UP)
		return false;
	if (outstanding(fl) >= w)
		return false;
	if (run->cfg->qos && fl->tx.inflight >= (w < fl->tx.server_receive_max ? w : fl->tx.server_receive_max))
		return false;
	return true;
}

static void send_one(struct run *run, struct flow *fl, uint32_t f, uint64_t now)
{
	env_tmpl_fill(&fl->tmpl, run->cfg->nonce, f, fl->sent, now);
	if (mclient_publish(&fl->tx, fl->tmpl.topic, fl->tmpl.buf, fl->tmpl.len, run->cfg->qos) < 0) {
		run->broken = true;
		return;
	}
	if (!run->t_first_send)
		run->t_first_send = now;
	fl->sent++;
	if (!run->cfg->qos)
		fl->acked++;
}

/* Send what the windows and the schedule allow; returns ms until the next
 * scheduled send (-1: nothing scheduled). */
static int pump_flows(struct run *run, uint64_t now)
{
	int wait = -1;
	for (uint32_t f = 0; f < run->nflows; f++) {
		struct flow *fl = &run->flows[f];
		if (outstanding(fl) >= run->cfg->window && now - run->t_last_progress > STALL_NS) {
			fl->abandoned += outstanding(fl); /* lost: stop waiting for them */
			run->t_last_progress = now;
		}
		while (can_send(run, fl) && (!fl->period_ns || now >= fl->next_due)) {
			send_one(run, fl, f, now);
			fl->next_due += fl->period_ns;
		}
		if (fl->period_ns && fl->sent < fl->n) {
			int ms = now >= fl->next_due ? 0 : (int)((fl->next_due - now) / 1000000u) + 1;
			if (wait < 0 || ms < wait)
				wait = ms;
		}
	}
	return wait;
}

/* ---- set-up and tear-down ---------------------------------------------------- */

static uint32_t capacity(const struct flow_cfg *cfg, uint32_t nflows)
{
	if (cfg->rate <= 0)
		return cfg->n;
	double secs = cfg->duration_s;
	if (cfg->storm)
		secs = cfg->storm->base_s + cfg->storm->max_s + 1;
	double per = ceil(cfg->rate * secs / nflows);
	return per < 1 ? 1 : (uint32_t)per;
}

static void client_id(char *out, size_t n, const char *user, const char *suffix)
{
	if (suffix && *suffix)
		snprintf(out, n, "%s/%s", user, suffix);
	else
		snprintf(out, n, "%s", user);
}

static int flow_init(struct run *run, uint32_t f, const char *from, const char *to,
		     uint32_t first_rx, uint32_t nrx)
{
	const struct flow_cfg *cfg = run->cfg;
	char cid[96];
	struct flow *fl = &run->flows[f];
	fl->first_rx = first_rx;
	fl->nrx = nrx;
	fl->n = capacity(cfg, run->nflows);
	if (env_tmpl_init(&fl->tmpl, from, to, cfg->group) != 0 || env_tmpl_check(&fl->tmpl) != 0)
		return -1;
	fl->count = calloc(fl->n, sizeof(*fl->count));
	fl->bits = calloc(((size_t)nrx * fl->n + 63) / 64, sizeof(uint64_t));
	if (!fl->count || !fl->bits)
		return -1;
	if (cfg->rate > 0)
		fl->period_ns = (uint64_t)(1e9 * run->nflows / cfg->rate);
	client_id(cid, sizeof(cid), from, cfg->client_suffix);
	mclient_init(&fl->tx, &tx_ops, run, f, from, cid, BENCH_PASSWORD);
	for (uint32_t r = 0; r < nrx; r++) {
		struct rx *rx = &run->rxs[first_rx + r];
		char name[72];
		if (cfg->group)
			name_group_member(name, sizeof(name), r + 1);
		else
			snprintf(name, sizeof(name), "%s", to);
		client_id(cid, sizeof(cid), name, cfg->client_suffix);
		mclient_init(&rx->cl, &rx_ops, run, first_rx + r, name, cid, BENCH_PASSWORD);
		rx->flow = f;
		rx->r = r;
	}
	return 0;
}

static int run_init(struct run *run, const struct flow_cfg *cfg)
{
	memset(run, 0, sizeof(*run));
	run->cfg = cfg;
	run->rng = rand64();
	run->nflows = cfg->group ? 1 : cfg->pairs;
	run->nrx = cfg->group ? cfg->group_size : cfg->pairs;
	if (bloop_init(&run->loop) != 0)
		return -1;
	run->flows = calloc(run->nflows, sizeof(*run->flows));
	run->rxs = calloc(run->nrx, sizeof(*run->rxs));
	if (!run->flows || !run->rxs)
		return -1;
	for (uint32_t f = 0; f < run->nflows; f++) {
		char from[72], to[72];
		int rc;
		if (cfg->group) {
			name_group_member(from, sizeof(from), 0);
			rc = flow_init(run, f, from, BENCH_GROUP, 0, cfg->group_size);
		} else {
			name_pair(from, sizeof(from), f, false);
			name_pair(to, sizeof(to), f, true);
			rc = flow_init(run, f, from, to, f, 1);
		}
		if (rc != 0)
			return -1;
	}
	return 0;
}

static void run_free(struct run *run)
{
	run->phase = PH_DONE;
	for (uint32_t i = 0; run->rxs && i < run->nrx; i++)
		mclient_free(&run->rxs[i].cl);
	for (uint32_t f = 0; run->flows && f < run->nflows; f++) {
		struct flow *fl = &run->flows[f];
		mclient_free(&fl->tx);
		env_tmpl_free(&fl->tmpl);
		free(fl->count);
		free(fl->bits);
	}
	free(run->flows);
	free(run->rxs);
	samples_free(&run->lat);
	samples_free(&run->lat_base);
	samples_free(&run->lat_storm);
	if (run->storm)
		storm_free(run->storm);
	bloop_free(&run->loop);
}

/* Start (or restart after a refusal by a busy broker) every client that is
 * due; true once everyone is logged in and subscribed. */
static bool pump_setup(struct run *run, uint64_t now)
{
	int port = run->cfg->port;
	for (uint32_t i = 0; i < run->nrx; i++) {
		struct rx *rx = &run->rxs[i];
		if ((rx->cl.st == MC_IDLE || (rx->cl.st == MC_CLOSED && rx->retry_at <= now)) &&
		    mclient_start(&rx->cl, &run->loop, port) != 0)
			rx->retry_at = retry_time(run);
	}
	for (uint32_t f = 0; f < run->nflows; f++) {
		struct flow *fl = &run->flows[f];
		if ((fl->tx.st == MC_IDLE || (fl->tx.st == MC_CLOSED && fl->retry_at <= now)) &&
		    mclient_start(&fl->tx, &run->loop, port) != 0)
			fl->retry_at = retry_time(run);
	}
	return run->subs == run->nrx && run->ups == run->nflows;
}

static void start_sending(struct run *run, uint64_t now)
{
	run->phase = PH_SEND;
	run->t_send_start = run->t_last_progress = now;
	run->cpu0_self = self_cpu_s();
	run->cpu0_user = -1;
	if (run->cfg->broker_pid)
		proc_cpu_split(run->cfg->broker_pid, &run->cpu0_user, &run->cpu0_sys);
	for (uint32_t f = 0; f < run->nflows; f++) /* spread paced senders evenly */
		run->flows[f].next_due = now + run->flows[f].period_ns * f / run->nflows;
}

static bool all_sent(const struct run *run)
{
	for (uint32_t f = 0; f < run->nflows; f++)
		if (run->flows[f].sent < run->flows[f].n)
			return false;
	return true;
}

static bool all_done(const struct run *run)
{
	for (uint32_t f = 0; f < run->nflows; f++) {
		const struct flow *fl = &run->flows[f];
		if (outstanding(fl) || fl->acked < fl->sent)
			return false;
	}
	return true;
}

/* ---- the loop ------------------------------------------------------------------- */

static void end_sending(struct run *run, uint64_t now)
{
	run->phase = PH_DRAIN;
	run->t_send_end = now;
	if (run->storm && run->storm_t0)
		storm_finish(run->storm, NULL); /* everyone logs out now */
}

/* The storm phase, when there is one: returns ms until it needs a turn. */
static int pump_storm(struct run *run, uint64_t now)
{
	const struct storm_cfg *sc = run->cfg->storm;
	if (!run->storm_t0) {
		uint64_t begin = run->t_send_start + (uint64_t)(sc->base_s * 1e9);
		if (now < begin)
			return (int)((begin - now) / 1000000u) + 1;
		run->storm_t0 = now;
		if (storm_begin(run->storm) != 0) {
			fail("storm: cannot start its thread");
			run->broken = true;
		}
	}
	if (storm_done(run->storm))
		end_sending(run, now);
	return 20;
}

static int min_wait(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

/* One step of the state machine, then one loop turn. */
static int step(struct run *run)
{
	uint64_t now = mono_ns();
	int wait = 50;
	if (run->phase == PH_SETUP) {
		if (!pump_setup(run, now))
			return bloop_turn(&run->loop, 20);
		start_sending(run, now);
	}
	if (run->phase == PH_SEND) {
		if (run->storm)
			wait = min_wait(wait, pump_storm(run, now));
		if (run->phase == PH_SEND) {
			wait = min_wait(wait, pump_flows(run, now));
			if (!run->storm && all_sent(run))
				end_sending(run, now);
		}
	}
	if (run->phase == PH_DRAIN) {
		uint64_t last = run->t_last_progress > run->t_send_end ? run->t_last_progress
								       : run->t_send_end;
		if (all_done(run) || now - last > DRAIN_NS)
			run->phase = PH_DONE;
	}
	return bloop_turn(&run->loop, run->phase == PH_DONE ? 0 : wait);
}

static double us(uint64_t ns)
{
	return (double)ns / 1000.0;
}

static void fill_result(struct run *run, struct flow_result *res)
{
	struct storm_result *sr = res->storm;
	memset(res, 0, sizeof(*res));
	res->storm = sr;
	for (uint32_t f = 0; f < run->nflows; f++) {
		const struct flow *fl = &run->flows[f];
		res->sent += fl->sent;
		res->acked += fl->acked;
		res->refused += fl->refused;
		res->expected += (uint64_t)(fl->sent - fl->refused) * fl->nrx;
	}
	res->delivered = run->delivered;
	res->lost = res->expected > run->delivered ? res->expected - run->delivered : 0;
	res->dup = run->dup;
	res->garbled = run->garbled;
	if (run->t_last_delivery > run->t_first_send)
		res->seconds = (double)(run->t_last_delivery - run->t_first_send) / 1e9;
	res->rate = res->seconds > 0 ? (double)run->delivered / res->seconds : 0;
	res->p50_us = us(samples_quantile(&run->lat, 0.50));
	res->p99_us = us(samples_quantile(&run->lat, 0.99));
	res->p999_us = us(samples_quantile(&run->lat, 0.999));
	res->max_us = us(samples_quantile(&run->lat, 1.0));
	res->base_p50_us = us(samples_quantile(&run->lat_base, 0.50));
	res->base_p99_us = us(samples_quantile(&run->lat_base, 0.99));
	res->base_p999_us = us(samples_quantile(&run->lat_base, 0.999));
	res->storm_p50_us = us(samples_quantile(&run->lat_storm, 0.50));
	res->storm_p99_us = us(samples_quantile(&run->lat_storm, 0.99));
	res->storm_p999_us = us(samples_quantile(&run->lat_storm, 0.999));
	res->base_n = run->lat_base.n;
	res->storm_n = run->lat_storm.n;
	res->complete = !run->broken && res->lost == 0 && res->refused == 0 && res->sent > 0;
	res->gen_cpu_s = self_cpu_s() - run->cpu0_self;
	double u, s;
	res->broker_cpu_s = res->broker_user_s = res->broker_sys_s = -1;
	if (run->cpu0_user >= 0 && proc_cpu_split(run->cfg->broker_pid, &u, &s) == 0) {
		res->broker_user_s = u - run->cpu0_user;
		res->broker_sys_s = s - run->cpu0_sys;
		res->broker_cpu_s = res->broker_user_s + res->broker_sys_s;
	}
}

int flows_run(const struct flow_cfg *cfg, struct flow_result *res)
{
	struct run *run = calloc(1, sizeof(*run));
	int rc = -1;
	if (!run)
		return -1;
	if (run_init(run, cfg) != 0) {
		fail("cannot prepare the run (out of memory, or an envelope failed its check)");
		goto out;
	}
	if (cfg->storm && !(run->storm = storm_new(cfg->storm, cfg->port)))
		goto out;
	run->deadline = mono_ns() + (uint64_t)cfg->timeout_s * 1000000000ull;
	while (run->phase != PH_DONE && !run->broken) {
		if (step(run) < 0) {
			fail("epoll: %s", strerror(errno));
			goto out;
		}
		if (run->loop.now > run->deadline) {
			fail("run timed out after %u s (%s)", cfg->timeout_s,
			     run->phase == PH_SETUP ? "logging in" : "messages missing");
			break;
		}
	}
	if (run->storm && run->storm_t0 && res->storm)
		storm_finish(run->storm, res->storm);
	fill_result(run, res);
	rc = run->phase == PH_SETUP ? -1 : 0;
out:
	run_free(run);
	free(run);
	return rc;
}
