/* client_bench.c - `mqim-bench client`: libmqim's durable outbox against
 * raw paho MQTTAsync, both sending QoS 1 messages to broker C.
 *
 * Raw paho: one MQTTAsync client (MQTT 5, no paho persistence) publishes N
 * real envelopes (200-byte body) with at most 20 in flight; the rate is N
 * over the time from the first send to the last PUBACK.
 *
 * libmqim: one client (its data folder in the run's temporary folder, at
 * most 20 in flight too) is given N messages with a 200-byte body at QoS 1
 * by one thread, in four ways, each on a fresh client:
 *   mqim_send, FULL     mqim_send() per message, durability FULL (the
 *                       default: a send survives a power cut), which waits
 *                       for its own synced commit;
 *   mqim_send, APP      the same with durability APP (survives a crash of
 *                       the app, no fsync);
 *   mqim_send_many      mqim_send_many() per 256 messages, FULL;
 *   mqim_send_nowait    mqim_send_nowait() per message, FULL (on MQIM_EBUSY
 *                       the thread waits for the next QUEUED report).
 * The rate is N over the time from the first call to the last message
 * reported SENT (acknowledged by the broker); "stored" is the rate at which
 * the messages were durably stored (the calls returned; for nowait, the
 * last QUEUED report).  Each round runs the four (or those --only names),
 * then paho; the figures are medians over the rounds.  "lib CPU" is the
 * CPU time of libmqim's library thread (named "mqim", read from
 * /proc/self/task) per message, from mqim_connect() to the last SENT.
 *
 * The recipient, p0b, has a persistent session subscribed to its inbox at
 * QoS 0 and is offline (make_sink): the broker acknowledges with reason
 * 0x00 and drops the copies at once, for both clients alike.  Nobody
 * receives the messages, so no receipt comes back during the run: the
 * figure is the sending path alone, the one issue 4 asks about.
 *
 * Thread rules: the benchmark's thread sends and waits; paho's and
 * libmqim's callbacks come on their own threads and only touch the
 * counters under the mutex of struct waiter.
 */
#include <dirent.h>
#include <sys/resource.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "bench.h"
#include "mqim.h"

#define WINDOW   20
#define WAIT_S   120

/* Counters shared with the library threads.  The waiting thread is woken
 * only once what it waits for holds (want), so that a callback pays for a
 * wake-up only when it is needed, for paho and libmqim alike. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned done, failed, inflight;
	bool connected, conn_failed;
	uint64_t t_last;
	bool (*want)(const struct waiter *, unsigned);   /* NULL: nobody waits */
	unsigned want_arg;
};

/* Under w->mu, after a change: wake the waiter if its wait is over. */
static void waiter_changed(struct waiter *w)
{
	if (w->want && w->want(w, w->want_arg))
		pthread_cond_broadcast(&w->cv);
}

static void waiter_init(struct waiter *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
}

static void waiter_free(struct waiter *w)
{
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
}

/* Wait until pred(w) holds, at most WAIT_S; returns pred(w). */
static bool waiter_wait(struct waiter *w, bool (*pred)(const struct waiter *, unsigned), unsigned arg)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += WAIT_S;
	pthread_mutex_lock(&w->mu);
	bool ok;
	w->want = pred;
	w->want_arg = arg;
	while (!(ok = pred(w, arg)) && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
		;
	if (!ok)
		ok = pred(w, arg);
	w->want = NULL;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static bool is_connected(const struct waiter *w, unsigned arg)
{
	(void)arg;
	return w->connected || w->conn_failed;
}

static bool all_done(const struct waiter *w, unsigned n)
{
	return w->done + w->failed >= n;
}

static bool window_open(const struct waiter *w, unsigned arg)
{
	(void)arg;
	return w->inflight < WINDOW;
}

static void bump(struct waiter *w, bool ok, bool conn)
{
	pthread_mutex_lock(&w->mu);
	if (conn) {
		w->connected = ok;
		w->conn_failed = !ok;
	} else {
		if (ok)
			w->done++;
		else
			w->failed++;
		if (w->inflight)
			w->inflight--;
		w->t_last = mono_ns();
	}
	waiter_changed(w);
	pthread_mutex_unlock(&w->mu);
}

/* Busy and total jiffies of all CPUs so far (/proc/stat); 0 when unknown. */
static void cpu_jiffies(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	*busy = *total = 0;
	if (!f)
		return;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (int i = 0; i < 8; i++)
			*total += v[i];
		*busy = *total - v[3] - v[4];
	}
	fclose(f);
}

/* CPU seconds used by this process so far (all its threads). */
static double proc_cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds so far by where they went: libmqim's library thread,
 * paho's receive and send threads, the rest of this process, and its
 * children (the broker). */
enum { CPU_LIB, CPU_RCV, CPU_SEND, CPU_REST, CPU_BROKER, CPU_N };

static double task_cpu(const char *stat_path)
{
	char buf[512];
	unsigned long ut, st;
	FILE *f = fopen(stat_path, "r");
	if (!f)
		return 0;
	char *p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void cpu_snap(double out[CPU_N])
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	memset(out, 0, CPU_N * sizeof(double));
	while (d && (e = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(comm, sizeof(comm), f))
				comm[0] = '\0';
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		int k = !strcmp(comm, "mqim\n") ? CPU_LIB : !strcmp(comm, "MQTTAsync_rcv\n") ? CPU_RCV
			: !strcmp(comm, "MQTTAsync_send\n") ? CPU_SEND : CPU_REST;
		out[k] += task_cpu(path);
		/* Children of this thread (the broker). */
		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		if ((f = fopen(path, "r")) != NULL) {
			int pid;
			while (fscanf(f, "%d", &pid) == 1) {
				char sp[64];
				snprintf(sp, sizeof(sp), "/proc/%d/stat", pid);
				out[CPU_BROKER] += task_cpu(sp);
			}
			fclose(f);
		}
	}
	if (d)
		closedir(d);
}

/* "lib 12.0 rcv 5.1 ..." µs per message between two snapshots. */
static void cpu_note(const char *what, const double a[CPU_N], const double b[CPU_N], unsigned n)
{
	note("client: %s: CPU us per message: library thread %.1f, paho rcv %.1f, paho send %.1f, "
	     "rest of the client %.1f, broker %.1f", what, (b[CPU_LIB] - a[CPU_LIB]) * 1e6 / n,
	     (b[CPU_RCV] - a[CPU_RCV]) * 1e6 / n, (b[CPU_SEND] - a[CPU_SEND]) * 1e6 / n,
	     (b[CPU_REST] - a[CPU_REST]) * 1e6 / n, (b[CPU_BROKER] - a[CPU_BROKER]) * 1e6 / n);
}

/* ---- raw paho ----------------------------------------------------------------- */

static void paho_conn_ok(void *ctx, MQTTAsync_successData5 *r) { (void)r; bump(ctx, true, true); }
static void paho_conn_fail(void *ctx, MQTTAsync_failureData5 *r) { (void)r; bump(ctx, false, true); }
static void paho_pub_ok(void *ctx, MQTTAsync_successData5 *r) { (void)r; bump(ctx, true, false); }
static void paho_pub_fail(void *ctx, MQTTAsync_failureData5 *r) { (void)r; bump(ctx, false, false); }

static int paho_connect(MQTTAsync *cl, struct waiter *w, int port)
{
	char uri[64];
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
	if (MQTTAsync_createWithOptions(cl, uri, "p0a/paho", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
	    MQTTASYNC_SUCCESS)
		return -1;
	opts.cleanstart = 1;
	opts.username = "p0a";
	opts.password = BENCH_PASSWORD;
	opts.maxInflight = WINDOW;
	opts.onSuccess5 = paho_conn_ok;
	opts.onFailure5 = paho_conn_fail;
	opts.context = w;
	if (MQTTAsync_connect(*cl, &opts) != MQTTASYNC_SUCCESS || !waiter_wait(w, is_connected, 0) ||
	    !w->connected)
		return -1;
	return 0;
}

static double run_paho(int port, unsigned n)
{
	MQTTAsync cl = NULL;
	struct waiter w;
	struct env_tmpl t;
	double rate = -1;
	waiter_init(&w);
	if (env_tmpl_init(&t, "p0a", "p0b", false) != 0)
		goto out;
	if (paho_connect(&cl, &w, port) != 0) {
		fail("client: paho could not log in");
		goto out;
	}
	unsigned long long b0, j0, b1, j1;
	cpu_jiffies(&b0, &j0);
	double p0 = proc_cpu(), s0[CPU_N], s1[CPU_N];
	cpu_snap(s0);
	uint64_t nonce = rand64(), t0 = mono_ns();
	for (unsigned i = 0; i < n; i++) {
		MQTTAsync_message m = MQTTAsync_message_initializer;
		MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
		if (!waiter_wait(&w, window_open, 0))
			break;
		env_tmpl_fill(&t, nonce, 0, i, mono_ns());
		m.payload = t.buf;
		m.payloadlen = (int)t.len;
		m.qos = 1;
		ro.onSuccess5 = paho_pub_ok;
		ro.onFailure5 = paho_pub_fail;
		ro.context = &w;
		pthread_mutex_lock(&w.mu);
		w.inflight++;
		pthread_mutex_unlock(&w.mu);
		if (MQTTAsync_sendMessage(cl, t.topic, &m, &ro) != MQTTASYNC_SUCCESS)
			bump(&w, false, false);
	}
	bool ok = waiter_wait(&w, all_done, n) && !w.failed;
	cpu_jiffies(&b1, &j1);
	cpu_snap(s1);
	cpu_note("paho", s0, s1, n);
	note("client: paho: this process %.1f us of CPU per message; the machine's CPUs %.0f%% busy",
	     (proc_cpu() - p0) * 1e6 / n, j1 > j0 ? 100.0 * (double)(b1 - b0) / (double)(j1 - j0) : -1.0);
	if (ok)
		rate = n / ((double)(w.t_last - t0) / 1e9);
	else
		fail("client: paho: %u of %u messages acknowledged", w.done, n);
out:
	if (cl) {
		MQTTAsync_disconnect(cl, NULL);
		MQTTAsync_destroy(&cl);
	}
	env_tmpl_free(&t);
	waiter_free(&w);
	return rate;
}

/* ---- the recipient's session ---------------------------------------------------- */

/* Give p0b a persistent session subscribed to its inbox at QoS 0, then
 * leave: the broker then has a matching subscriber for every message (so
 * it acknowledges with reason 0x00 rather than 0x10 "no matching
 * subscribers", which libmqim answers with an early resend) and drops the
 * QoS 0 copies of an offline session at once.  Both clients measured see
 * the same broker work.  0 or -1. */
static int make_sink(int port)
{
	MQTTAsync cl = NULL;
	struct waiter w;
	char uri[64];
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty expiry = { .identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL };
	int rc = -1;

	waiter_init(&w);
	snprintf(uri, sizeof(uri), "tcp://127.0.0.1:%d", port);
	if (MQTTAsync_createWithOptions(&cl, uri, "p0b/sink", MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) !=
	    MQTTASYNC_SUCCESS)
		goto out;
	expiry.value.integer4 = 3600;
	MQTTProperties_add(&props, &expiry);
	opts.cleanstart = 0;
	opts.connectProperties = &props;
	opts.username = "p0b";
	opts.password = BENCH_PASSWORD;
	opts.onSuccess5 = paho_conn_ok;
	opts.onFailure5 = paho_conn_fail;
	opts.context = &w;
	if (MQTTAsync_connect(cl, &opts) != MQTTASYNC_SUCCESS || !waiter_wait(&w, is_connected, 0) ||
	    !w.connected)
		goto out;
	ro.onSuccess5 = paho_pub_ok;   /* counts the SUBACK as one done */
	ro.onFailure5 = paho_pub_fail;
	ro.context = &w;
	if (MQTTAsync_subscribe(cl, "im/u/p0b", 0, &ro) == MQTTASYNC_SUCCESS &&
	    waiter_wait(&w, all_done, 1) && w.done == 1)
		rc = 0;
out:
	if (rc != 0)
		fail("client: the recipient's session (p0b/sink) could not be made");
	if (cl) {
		MQTTAsync_disconnect(cl, NULL);
		MQTTAsync_destroy(&cl);
	}
	MQTTProperties_free(&props);
	waiter_free(&w);
	return rc;
}

/* ---- libmqim ---------------------------------------------------------------- */

enum mq_mode {
	MQ_SEND,      /* mqim_send() per message: waits for its commit */
	MQ_MANY,      /* mqim_send_many() per MANY_BATCH messages */
	MQ_NOWAIT,    /* mqim_send_nowait() per message; QUEUED when stored */
};

#define MANY_BATCH 256

struct mq_run {
	struct waiter w;              /* done: SENT, failed: FAILED */
	unsigned queued;              /* QUEUED reports (nowait) */
	uint64_t t_queued;            /* when the last came */
};

static void mq_state(mqim_client *c, enum mqim_state st, int err, void *ud)
{
	struct mq_run *r = ud;
	(void)c;
	(void)err;
	if (st == MQIM_STATE_CONNECTED)
		bump(&r->w, true, true);
	else if (st == MQIM_STATE_AUTH_FAILED || st == MQIM_STATE_GAVE_UP)
		bump(&r->w, false, true);
}

static void mq_msg_state(mqim_client *c, const uint8_t id[MQIM_ID_LEN], enum mqim_msg_state st,
			 int err, void *ud)
{
	struct mq_run *r = ud;
	(void)c;
	(void)id;
	(void)err;
	if (st == MQIM_MSG_QUEUED) {
		pthread_mutex_lock(&r->w.mu);
		r->queued++;
		r->t_queued = mono_ns();
		waiter_changed(&r->w);
		pthread_mutex_unlock(&r->w.mu);
	} else if (st == MQIM_MSG_SENT) {
		bump(&r->w, true, false);
	} else if (st == MQIM_MSG_FAILED) {
		bump(&r->w, false, false);
	}
}

/* CPU seconds (user + system; *sys: system alone) of this process's
 * threads named "mqim" (libmqim's library thread); -1 when /proc cannot
 * tell. */
static double lib_thread_cpu(double *sys)
{
	DIR *d = opendir("/proc/self/task");
	double sum = -1;
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		bool ours = fgets(buf, sizeof(buf), f) && strcmp(buf, "mqim\n") == 0;
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
		if (!ours || !(f = fopen(path, "r")))
			continue;
		unsigned long ut, st;
		char *p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		/* After "pid (comm)": fields 3..; utime and stime are 14 and 15. */
		if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2) {
			sum = (sum < 0 ? 0 : sum) + (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
			*sys += (double)st / (double)sysconf(_SC_CLK_TCK);
		}
		fclose(f);
	}
	closedir(d);
	return sum;
}

static mqim_client *mq_connect(struct mq_run *r, int port, const char *dir, int durability)
{
	struct mqim_options o = MQIM_OPTIONS_INIT;
	struct mqim_callbacks cb = MQIM_CALLBACKS_INIT;
	mqim_client *c = NULL;
	o.host = BENCH_HOST;
	o.port = port;
	o.user = "p0a";
	o.password = BENCH_PASSWORD;
	o.client_id = "p0a/libmqim";
	o.data_dir = dir;
	o.durability = durability;
	o.max_inflight = WINDOW;
	o.resend_timeout_ms = 600000; /* no receipt comes back: never resend during the run */
	cb.on_state = mq_state;
	cb.on_message_state = mq_msg_state;
	int rc = mqim_create(&o, &cb, r, &c);
	if (rc != MQIM_OK) {
		fail("client: mqim_create: %s", mqim_strerror(rc));
		return NULL;
	}
	if (mqim_connect(c) != MQIM_OK || !waiter_wait(&r->w, is_connected, 0) || !r->w.connected) {
		fail("client: libmqim could not log in");
		mqim_close(c);
		return NULL;
	}
	return c;
}

/* More than `seen` QUEUED reports came (a nowait send was refused with
 * MQIM_EBUSY: room comes with the next commit); w is a struct mq_run's. */
static bool queued_past(const struct waiter *w, unsigned seen)
{
	return ((const struct mq_run *)w)->queued > seen;
}

/* Hand n messages to c in the way of mode; returns how many it took. */
static unsigned mq_send_all(mqim_client *c, struct mq_run *r, enum mq_mode mode, unsigned n,
			    const uint8_t *body, size_t len)
{
	struct mqim_outgoing batch[MANY_BATCH];
	unsigned sent = 0;
	int rc = MQIM_OK;

	for (unsigned i = 0; i < MANY_BATCH; i++) {
		batch[i] = (struct mqim_outgoing)MQIM_OUTGOING_INIT;
		batch[i].to = "p0b";
		batch[i].body = body;
		batch[i].body_len = len;
	}
	while (sent < n && rc == MQIM_OK) {
		unsigned k = 1;
		if (mode == MQ_SEND) {
			rc = mqim_send(c, "p0b", false, NULL, body, len, 1, NULL);
		} else if (mode == MQ_MANY) {
			k = n - sent < MANY_BATCH ? n - sent : MANY_BATCH;
			rc = mqim_send_many(c, batch, k, NULL);
		} else {
			pthread_mutex_lock(&r->w.mu);
			unsigned seen = r->queued;
			pthread_mutex_unlock(&r->w.mu);
			rc = mqim_send_nowait(c, "p0b", false, NULL, body, len, 1, NULL);
			if (rc == MQIM_EBUSY) {
				waiter_wait(&r->w, queued_past, seen);
				rc = MQIM_OK;
				continue;
			}
		}
		if (rc == MQIM_OK)
			sent += k;
	}
	if (rc != MQIM_OK)
		fail("client: libmqim: a send failed: %s", mqim_strerror(rc));
	return sent;
}

static bool all_queued(const struct waiter *w, unsigned n)
{
	const struct mq_run *r = (const struct mq_run *)w;
	return r->queued >= n || w->failed;
}

/* mqim_outbox() callback: count the entries by state (ctx: unsigned[8]). */
static int count_state(void *ctx, const struct mqim_outbox_entry *e)
{
	unsigned *n = ctx;
	if ((unsigned)e->state < 8)
		n[e->state]++;
	return 0;
}

/* Returns the rate; *stored_rate gets the rate at which the messages were
 * durably stored (the send calls returned; nowait: QUEUED reported),
 * *cpu_us the library thread's CPU µs per message (-1: unknown). */
static double run_mqim(int port, unsigned n, const char *dir, int durability, enum mq_mode mode,
		       double *stored_rate, double *cpu_us)
{
	struct mq_run r;
	uint8_t body[BENCH_BODY_LEN];
	double rate = -1;
	memset(body, 'x', sizeof(body));
	memset(&r, 0, sizeof(r));
	waiter_init(&r.w);
	mqim_client *c = mq_connect(&r, port, dir, durability);
	if (!c) {
		waiter_free(&r.w);
		return -1;
	}
	unsigned long long b0, j0, b1, j1;
	cpu_jiffies(&b0, &j0);
	double p0 = proc_cpu(), s0[CPU_N], s1[CPU_N];
	cpu_snap(s0);
	uint64_t t0 = mono_ns();
	unsigned sent = mq_send_all(c, &r, mode, n, body, sizeof(body));
	uint64_t t_stored = mono_ns();
	pthread_mutex_lock(&r.w.mu);
	unsigned sent_by_stored = r.w.done;   /* SENT when the last send call returned */
	pthread_mutex_unlock(&r.w.mu);
	if (mode == MQ_NOWAIT && sent == n && waiter_wait(&r.w, all_queued, n))
		t_stored = r.t_queued;
	*stored_rate = sent / ((double)(t_stored - t0) / 1e9);
	bool ok = sent == n && waiter_wait(&r.w, all_done, n) && !r.w.failed;
	cpu_jiffies(&b1, &j1);
	cpu_snap(s1);
	cpu_note(mode == MQ_MANY ? "send_many" : mode == MQ_NOWAIT ? "send_nowait" : "send", s0, s1, n);
	double sys = 0, cpu = lib_thread_cpu(&sys);
	*cpu_us = cpu < 0 ? -1 : cpu * 1e6 / n;
	note("client: %s: library thread %.0f us per message, %.0f of it in the kernel; "
	     "%u SENT after %.0f ms, when the last call returned; all after %.0f ms; "
	     "this process %.1f us of CPU per message; the machine's CPUs %.0f%% busy",
	     mode == MQ_MANY ? "send_many" : mode == MQ_NOWAIT ? "send_nowait" : "send",
	     *cpu_us, sys * 1e6 / n, sent_by_stored, (double)(t_stored - t0) / 1e6,
	     (double)(r.w.t_last - t0) / 1e6, (proc_cpu() - p0) * 1e6 / n,
	     j1 > j0 ? 100.0 * (double)(b1 - b0) / (double)(j1 - j0) : -1.0);
	if (ok) {
		rate = n / ((double)(r.w.t_last - t0) / 1e9);
	} else {
		unsigned by_state[8] = { 0 };
		mqim_outbox(c, count_state, by_state);
		fail("client: libmqim: %u sent, %u of %u acknowledged, %u failed (client %s; in the "
		     "outbox: %u queued, %u sent, %u failed)", sent, r.w.done, n, r.w.failed,
		     mqim_state_name(mqim_get_state(c)), by_state[MQIM_MSG_QUEUED],
		     by_state[MQIM_MSG_SENT], by_state[MQIM_MSG_FAILED]);
	}
	mqim_close(c);
	waiter_free(&r.w);
	return rate;
}

/* ---- the command ------------------------------------------------------------ */

/* The libmqim variants of a round, in the order they run. */
static const struct {
	const char *name;
	int durability;
	enum mq_mode mode;
} variants[] = {
	{ "full", MQIM_DURABLE_FULL, MQ_SEND },
	{ "app", MQIM_DURABLE_APP, MQ_SEND },
	{ "many", MQIM_DURABLE_FULL, MQ_MANY },
	{ "nowait", MQIM_DURABLE_FULL, MQ_NOWAIT },
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

/* Set by `mqim-bench client` only (compare.c runs all four): which
 * variants run (bit i: variants[i]), and the medians of the library
 * thread's CPU per message, for print_client. */
static unsigned only_mask = (1u << NVARIANTS) - 1;
static double cpu_median[NVARIANTS];

int client_bench(int port, const char *work, unsigned n, unsigned rounds,
		 struct client_result *res)
{
	double paho[16], rate[NVARIANTS][16], stored[NVARIANTS][16], cpu[NVARIANTS][16];
	char dir[400];
	if (rounds < 1 || rounds > 16 || make_sink(port) != 0)
		return -1;
	memset(rate, 0, sizeof(rate));
	memset(stored, 0, sizeof(stored));
	memset(cpu, 0, sizeof(cpu));
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t i = 0; i < NVARIANTS; i++) {
			if (!(only_mask & (1u << i)))
				continue;
			snprintf(dir, sizeof(dir), "%s/client-%s-%u", work, variants[i].name, r);
			rate[i][r] = run_mqim(port, n, dir, variants[i].durability, variants[i].mode,
					      &stored[i][r], &cpu[i][r]);
			if (rate[i][r] < 0)
				return -1;
		}
		paho[r] = run_paho(port, n);
		if (paho[r] < 0)
			return -1;
		note("client round %u: paho %.0f/s, libmqim send FULL %.0f/s, APP %.0f/s, "
		     "send_many FULL %.0f/s, send_nowait FULL %.0f/s; library thread "
		     "%.1f/%.1f/%.1f/%.1f us per message", r + 1, paho[r], rate[0][r],
		     rate[1][r], rate[2][r], rate[3][r], cpu[0][r], cpu[1][r], cpu[2][r], cpu[3][r]);
	}
	struct summary *to[NVARIANTS] = { &res->full, &res->app, &res->many, &res->nowait };
	double *stored_to[NVARIANTS] = { &res->enqueue_full, &res->enqueue_app, &res->stored_many,
					 &res->stored_nowait };
	res->n = n;
	res->rounds = rounds;
	res->paho = summarize(paho, rounds);
	for (size_t i = 0; i < NVARIANTS; i++) {
		*to[i] = summarize(rate[i], rounds);
		*stored_to[i] = summarize(stored[i], rounds).median;
		cpu_median[i] = summarize(cpu[i], rounds).median;
	}
	return 0;
}

static void print_variant(const char *what, const struct summary *s, double paho, double stored,
			  const char *stored_what, double cpu_us)
{
	if (s->median <= 0) {
		printf("  %-28s    (not run)\n", what);
		return;
	}
	printf("  %-28s%8.0f msg/s (%.0f-%.0f)  %.2f x paho  (%s: %.0f/s; lib CPU %.1f us/msg)\n",
	       what, s->median, s->min, s->max, s->median / paho, stored_what, stored, cpu_us);
}

static void print_client(const struct client_result *r)
{
	double p = r->paho.median;
	printf("client: %u QoS 1 messages to broker C, medians of %u rounds:\n", r->n, r->rounds);
	printf("  %-28s%8.0f msg/s (%.0f-%.0f)\n", "raw paho MQTTAsync", p, r->paho.min, r->paho.max);
	print_variant("mqim_send, FULL", &r->full, p, r->enqueue_full, "mqim_send alone", cpu_median[0]);
	print_variant("mqim_send, APP", &r->app, p, r->enqueue_app, "mqim_send alone", cpu_median[1]);
	print_variant("mqim_send_many(256), FULL", &r->many, p, r->stored_many, "stored", cpu_median[2]);
	print_variant("mqim_send_nowait, FULL", &r->nowait, p, r->stored_nowait, "stored (QUEUED)",
		      cpu_median[3]);
	printf("result scenario=client paho=%.1f full=%.1f app=%.1f many=%.1f nowait=%.1f "
	       "ratio_full=%.3f ratio_app=%.3f ratio_many=%.3f ratio_nowait=%.3f\n", p,
	       r->full.median, r->app.median, r->many.median, r->nowait.median, r->full.median / p,
	       r->app.median / p, r->many.median / p, r->nowait.median / p);
}

/* "many,nowait" into a mask of variants; 0 when a name is unknown. */
static unsigned parse_only(const char *list)
{
	unsigned mask = 0;
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", list);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < NVARIANTS && strcmp(t, variants[i].name) != 0; i++)
			;
		if (i == NVARIANTS)
			return 0;
		mask |= 1u << i;
	}
	return mask;
}

int cmd_client(int argc, char **argv)
{
	unsigned n = 20000, rounds = 3;
	const char *build = "build";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--n") && i + 1 < argc)
			n = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--build") && i + 1 < argc)
			build = argv[++i];
		else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			if (!(only_mask = parse_only(argv[++i]))) {
				fail("client: --only takes full,app,many,nowait (comma-separated)");
				return EXIT_USAGE;
			}
		}
		else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose"))
			set_verbose(true);
		else {
			fail("client: bad argument %s", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (n < 1 || n > 10000000 || rounds < 1 || rounds > 16) {
		fail("client: --n 1..10000000, --rounds 1..16");
		return EXIT_USAGE;
	}
	struct bench_env env;
	struct broker b;
	struct provision_cfg pc = { 1, 1, 0, 0, false };
	if (bench_env_init(&env, build) != 0 || provision(&env, &pc) != 0 ||
	    broker_start(&b, BROKER_C, &env, false) != 0)
		return EXIT_FAIL;
	struct client_result r;
	int rc = client_bench(b.port, env.work, n, rounds, &r);
	broker_stop(&b);
	rm_tree(env.work);
	if (rc != 0)
		return EXIT_FAIL;
	print_client(&r);
	return EXIT_OK;
}
