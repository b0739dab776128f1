/* client_bench.c - `mqim-bench client`: libmqim's durable outbox against
 * raw paho MQTTAsync, both sending QoS 1 messages to broker C.
 *
 * Raw paho: one MQTTAsync client (MQTT 5, no paho persistence) publishes N
 * real envelopes (200-byte body) with at most 20 in flight; the rate is N
 * over the time from the first send to the last PUBACK.
 *
 * libmqim: one client (its data folder in the run's temporary folder)
 * calls mqim_send() N times with a 200-byte body at QoS 1; each call
 * writes the message to the SQLite outbox before it returns, then the
 * library thread publishes it.  The rate is N over the time from the first
 * mqim_send() to the last message reported SENT (acknowledged by the
 * broker).  Measured with durability FULL (the default: a send survives a
 * power cut) and APP (survives a crash of the app).  Nobody receives the
 * messages, so no receipt comes back during the run: the figure is the
 * sending path alone, the one issue 4 asks about.
 *
 * Thread rules: the benchmark's thread sends and waits; paho's and
 * libmqim's callbacks come on their own threads and only touch the
 * counters under the mutex of struct waiter.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>

#include "bench.h"
#include "mqim.h"

#define WINDOW   20
#define WAIT_S   120

/* Counters shared with the library threads. */
struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned done, failed, inflight;
	bool connected, conn_failed;
	uint64_t t_last;
};

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
	while (!(ok = pred(w, arg)) && pthread_cond_timedwait(&w->cv, &w->mu, &until) == 0)
		;
	if (!ok)
		ok = pred(w, arg);
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
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
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
	if (waiter_wait(&w, all_done, n) && !w.failed)
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

/* ---- libmqim ---------------------------------------------------------------- */

static void mq_state(mqim_client *c, enum mqim_state st, int err, void *ud)
{
	(void)c;
	(void)err;
	if (st == MQIM_STATE_CONNECTED)
		bump(ud, true, true);
	else if (st == MQIM_STATE_AUTH_FAILED || st == MQIM_STATE_GAVE_UP)
		bump(ud, false, true);
}

static void mq_msg_state(mqim_client *c, const uint8_t id[MQIM_ID_LEN], enum mqim_msg_state st,
			 int err, void *ud)
{
	(void)c;
	(void)id;
	(void)err;
	if (st == MQIM_MSG_SENT)
		bump(ud, true, false);
	else if (st == MQIM_MSG_FAILED)
		bump(ud, false, false);
}

static mqim_client *mq_connect(struct waiter *w, int port, const char *dir, int durability)
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
	int rc = mqim_create(&o, &cb, w, &c);
	if (rc != MQIM_OK) {
		fail("client: mqim_create: %s", mqim_strerror(rc));
		return NULL;
	}
	if (mqim_connect(c) != MQIM_OK || !waiter_wait(w, is_connected, 0) || !w->connected) {
		fail("client: libmqim could not log in");
		mqim_close(c);
		return NULL;
	}
	return c;
}

/* Returns the rate; *enqueue_rate gets the rate of mqim_send() calls. */
static double run_mqim(int port, unsigned n, const char *dir, int durability, double *enqueue_rate)
{
	struct waiter w;
	uint8_t body[BENCH_BODY_LEN];
	double rate = -1;
	memset(body, 'x', sizeof(body));
	waiter_init(&w);
	mqim_client *c = mq_connect(&w, port, dir, durability);
	if (!c) {
		waiter_free(&w);
		return -1;
	}
	uint64_t t0 = mono_ns();
	unsigned sent = 0;
	for (; sent < n; sent++)
		if (mqim_send(c, "p0b", false, NULL, body, sizeof(body), 1, NULL) != MQIM_OK)
			break;
	*enqueue_rate = sent / ((double)(mono_ns() - t0) / 1e9);
	if (sent == n && waiter_wait(&w, all_done, n) && !w.failed)
		rate = n / ((double)(w.t_last - t0) / 1e9);
	else
		fail("client: libmqim: %u sent, %u of %u acknowledged", sent, w.done, n);
	mqim_close(c);
	waiter_free(&w);
	return rate;
}

/* ---- the command ------------------------------------------------------------ */

int client_bench(int port, const char *work, unsigned n, unsigned rounds,
		 struct client_result *res)
{
	double v[5][16];
	char dir[400];
	if (rounds < 1 || rounds > 16)
		return -1;
	for (unsigned r = 0; r < rounds; r++) {
		snprintf(dir, sizeof(dir), "%s/client-full-%u", work, r);
		v[1][r] = run_mqim(port, n, dir, MQIM_DURABLE_FULL, &v[3][r]);
		snprintf(dir, sizeof(dir), "%s/client-app-%u", work, r);
		v[2][r] = run_mqim(port, n, dir, MQIM_DURABLE_APP, &v[4][r]);
		v[0][r] = run_paho(port, n);
		if (v[0][r] < 0 || v[1][r] < 0 || v[2][r] < 0)
			return -1;
		note("client round %u: paho %.0f/s, libmqim FULL %.0f/s, APP %.0f/s", r + 1, v[0][r],
		     v[1][r], v[2][r]);
	}
	struct summary s[5];
	for (int i = 0; i < 5; i++)
		s[i] = summarize(v[i], rounds);
	res->n = n;
	res->rounds = rounds;
	res->paho = s[0];
	res->full = s[1];
	res->app = s[2];
	res->enqueue_full = s[3].median;
	res->enqueue_app = s[4].median;
	return 0;
}

static void print_client(const struct client_result *r)
{
	printf("client: %u QoS 1 messages to broker C, medians of %u rounds:\n", r->n, r->rounds);
	printf("  raw paho MQTTAsync          %8.0f msg/s (%.0f-%.0f)\n", r->paho.median, r->paho.min,
	       r->paho.max);
	printf("  libmqim, durability FULL    %8.0f msg/s (%.0f-%.0f)  %.2f x paho  "
	       "(mqim_send alone: %.0f/s)\n", r->full.median, r->full.min, r->full.max,
	       r->full.median / r->paho.median, r->enqueue_full);
	printf("  libmqim, durability APP     %8.0f msg/s (%.0f-%.0f)  %.2f x paho  "
	       "(mqim_send alone: %.0f/s)\n", r->app.median, r->app.min, r->app.max,
	       r->app.median / r->paho.median, r->enqueue_app);
	printf("result scenario=client paho=%.1f full=%.1f app=%.1f ratio_full=%.3f ratio_app=%.3f\n",
	       r->paho.median, r->full.median, r->app.median, r->full.median / r->paho.median,
	       r->app.median / r->paho.median);
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
