/* tclient.c - a synchronous MQTT 5 test client on paho MQTTAsync.
 *
 * See tclient.h.  Paho calls back from its own threads; every callback only
 * records what happened in the struct tclient under its mutex and
 * broadcasts the condition variable, and the test thread waits on it.
 *
 * Results of publish and subscribe are kept per paho token in a small ring,
 * because an acknowledgement may arrive before MQTTAsync_sendMessage()
 * returns the token to us, and a late answer to a call that already timed
 * out must not be taken for the answer to the next call.
 *
 * Paho's own waits and sockets are tuned for the test process by tpaho.c,
 * which tclient_new() switches on (see tpaho.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <MQTTAsync.h>

#include "mqim.h"
#include "tclient.h"
#include "tpaho.h"

#define DEFAULT_TIMEOUT_MS 5000
#define RESULT_RING 64

struct qmsg {
	struct tmsg m;
	struct qmsg *next;
};

/* A publish or subscribe answer.  Paho's token is the packet id, reused
 * once free, and 0 for every QoS 0 publish. */
struct result {
	bool used;
	int token;
	int rc;
};

struct tclient {
	MQTTAsync h;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int timeout_ms;

	/* connect / disconnect (one at a time) */
	bool conn_done;
	int conn_rc;
	bool disc_done;
	bool connected;
	int server_disconnect_rc;   /* reason of a DISCONNECT from the broker, or -1 */

	struct result results[RESULT_RING];
	int next_result;
	int abandoned[RESULT_RING];  /* tokens of calls that timed out; 0: none */

	struct qmsg *head, *tail;
	int pending;
};

/* ---- time ------------------------------------------------------------------ */

static struct timespec deadline_after(int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

/* Wait on c->cv until the deadline; returns false once it has passed.
 * Called with c->mu held. */
static bool wait_until(struct tclient *c, const struct timespec *dl)
{
	return pthread_cond_timedwait(&c->cv, &c->mu, dl) != ETIMEDOUT;
}

/* ---- paho callbacks ---------------------------------------------------------- */

static void on_lost(void *ctx, char *cause)
{
	struct tclient *c = ctx;
	pthread_mutex_lock(&c->mu);
	c->connected = false;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes rc)
{
	struct tclient *c = ctx;
	pthread_mutex_lock(&c->mu);
	c->connected = false;
	c->server_disconnect_rc = (int)rc;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct tclient *c = ctx;
	struct qmsg *q = calloc(1, sizeof *q);
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	if (q) {
		q->m.topic = strndup(topic, tlen);
		q->m.len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
		q->m.payload = malloc(q->m.len + 1);
		if (q->m.payload) {
			memcpy(q->m.payload, msg->payload, q->m.len);
			((char *)q->m.payload)[q->m.len] = '\0';
		}
		q->m.qos = msg->qos;
		q->m.retain = msg->retained != 0;
	}
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);
	if (!q || !q->m.topic || !q->m.payload) {
		if (q)
			tmsg_free(&q->m);
		free(q);
		return 1;
	}
	pthread_mutex_lock(&c->mu);
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	c->pending++;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return 1;
}

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *d)
{
	struct tclient *c = ctx;
	pthread_mutex_lock(&c->mu);
	c->conn_done = true;
	c->conn_rc = 0;
	c->connected = true;
	c->server_disconnect_rc = -1;
	/* a new session: answers and tokens of the last one mean nothing now */
	memset(c->results, 0, sizeof c->results);
	memset(c->abandoned, 0, sizeof c->abandoned);
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Paho reports a refused CONNACK with its reason in code (reasonCode stays
 * 0); a negative code is its own error: the connection failed. */
static void on_connect_fail(void *ctx, MQTTAsync_failureData5 *d)
{
	struct tclient *c = ctx;
	pthread_mutex_lock(&c->mu);
	c->conn_done = true;
	if (d && d->code > 0)
		c->conn_rc = d->code;
	else if (d && d->reasonCode >= 0x80)
		c->conn_rc = (int)d->reasonCode;
	else
		c->conn_rc = TCLIENT_LOST;
	c->connected = false;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_disconnect_done(void *ctx, MQTTAsync_successData5 *d)
{
	struct tclient *c = ctx;
	pthread_mutex_lock(&c->mu);
	c->disc_done = true;
	c->connected = false;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData5 *d)
{
	on_disconnect_done(ctx, NULL);
}

/* Keep the answer for token, unless its call already timed out: then the
 * answer is dropped, so that it cannot be taken for the answer to a later
 * call that reuses the token. */
static void record(struct tclient *c, int token, int rc)
{
	pthread_mutex_lock(&c->mu);
	for (int i = 0; token != 0 && i < RESULT_RING; i++) {
		if (c->abandoned[i] == token) {
			c->abandoned[i] = 0;
			pthread_mutex_unlock(&c->mu);
			return;
		}
	}
	struct result *r = &c->results[c->next_result];
	c->next_result = (c->next_result + 1) % RESULT_RING;
	r->used = true;
	r->token = token;
	r->rc = rc;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* Publish: 0x10 No matching subscribers is a success, returned as 0. */
static void on_pub_ok(void *ctx, MQTTAsync_successData5 *d)
{
	int rc = (int)d->reasonCode;
	record(ctx, d->token, rc == 0x10 ? 0 : rc);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData5 *d)
{
	record(ctx, d->token, (int)d->reasonCode);
}

/* Publish and subscribe failures: a reason code from the broker, or a
 * paho error (no acknowledgement will come: the connection is gone). */
static void on_op_fail(void *ctx, MQTTAsync_failureData5 *d)
{
	int rc = d->reasonCode >= 0x80 ? (int)d->reasonCode : TCLIENT_LOST;
	record(ctx, d->token, rc);
}

/* ---- life cycle ------------------------------------------------------------------ */

/* The default wait: ten times longer when the broker runs under a wrapper
 * (make valgrind), where a login or a reload takes seconds. */
static int default_timeout_ms(void)
{
	const char *w = getenv("MQIM_BROKER_WRAPPER");
	return w && *w ? 10 * DEFAULT_TIMEOUT_MS : DEFAULT_TIMEOUT_MS;
}

struct tclient *tclient_new(int port, const char *client_id)
{
	struct tclient *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->timeout_ms = default_timeout_ms();
	c->server_disconnect_rc = -1;
	tpaho_tune();

	char uri[64];
	snprintf(uri, sizeof uri, "tcp://127.0.0.1:%d", port);
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	co.MQTTVersion = MQTTVERSION_5;
	if (MQTTAsync_createWithOptions(&c->h, uri, client_id ? client_id : "",
					MQTTCLIENT_PERSISTENCE_NONE, NULL, &co) != MQTTASYNC_SUCCESS) {
		pthread_cond_destroy(&c->cv);
		pthread_mutex_destroy(&c->mu);
		free(c);
		return NULL;
	}
	MQTTAsync_setCallbacks(c->h, c, on_lost, on_message, NULL);
	MQTTAsync_setDisconnected(c->h, c, on_disconnected);
	return c;
}

void tclient_free(struct tclient *c)
{
	if (!c)
		return;
	if (tclient_is_connected(c))
		tclient_disconnect(c);
	MQTTAsync_destroy(&c->h);
	struct qmsg *q = c->head;
	while (q) {
		struct qmsg *next = q->next;
		tmsg_free(&q->m);
		free(q);
		q = next;
	}
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c);
}

void tclient_set_timeout(struct tclient *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : default_timeout_ms();
}

/* ---- connect ------------------------------------------------------------------------- */

int tclient_connect(struct tclient *c, const char *user, const char *pass)
{
	return tclient_connect_ex(c, user, pass, true, 0, NULL);
}

int tclient_connect_ex(struct tclient *c, const char *user, const char *pass,
		       bool clean_start, unsigned session_expiry,
		       const struct tclient_will *will)
{
	MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions w = MQTTAsync_willOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty p;

	o.keepAliveInterval = 60;
	o.cleanstart = clean_start ? 1 : 0;
	o.username = user;
	o.password = pass;
	o.connectTimeout = (c->timeout_ms + 999) / 1000;
	o.automaticReconnect = 0;
	o.onSuccess5 = on_connect_ok;
	o.onFailure5 = on_connect_fail;
	o.context = c;
	if (session_expiry > 0) {
		p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
		p.value.integer4 = session_expiry;
		MQTTProperties_add(&props, &p);
		o.connectProperties = &props;
	}
	if (will) {
		w.topicName = will->topic;
		w.message = NULL;
		w.payload.data = will->payload;
		w.payload.len = (int)will->len;
		w.qos = will->qos;
		w.retained = will->retain ? 1 : 0;
		o.will = &w;
	}

	pthread_mutex_lock(&c->mu);
	c->conn_done = false;
	c->conn_rc = TCLIENT_TIMEOUT;
	pthread_mutex_unlock(&c->mu);

	int rc = MQTTAsync_connect(c->h, &o);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS)
		return TCLIENT_LOST;

	struct timespec dl = deadline_after(c->timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (!c->conn_done && wait_until(c, &dl))
		;
	rc = c->conn_done ? c->conn_rc : TCLIENT_TIMEOUT;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

static int disconnect_with(struct tclient *c, enum MQTTReasonCodes reason)
{
	MQTTAsync_disconnectOptions o = MQTTAsync_disconnectOptions_initializer5;
	o.timeout = 0;
	o.reasonCode = reason;
	o.onSuccess5 = on_disconnect_done;
	o.onFailure5 = on_disconnect_fail;
	o.context = c;

	pthread_mutex_lock(&c->mu);
	c->disc_done = false;
	pthread_mutex_unlock(&c->mu);
	if (MQTTAsync_disconnect(c->h, &o) != MQTTASYNC_SUCCESS) {
		pthread_mutex_lock(&c->mu);
		c->connected = false;
		pthread_mutex_unlock(&c->mu);
		return TCLIENT_LOST;
	}
	struct timespec dl = deadline_after(c->timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (!c->disc_done && wait_until(c, &dl))
		;
	int rc = c->disc_done ? 0 : TCLIENT_TIMEOUT;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int tclient_disconnect(struct tclient *c)
{
	return disconnect_with(c, MQTTREASONCODE_NORMAL_DISCONNECTION);
}

int tclient_disconnect_with_will(struct tclient *c)
{
	return disconnect_with(c, MQTTREASONCODE_DISCONNECT_WITH_WILL_MESSAGE);
}

bool tclient_is_connected(struct tclient *c)
{
	pthread_mutex_lock(&c->mu);
	bool up = c->connected;
	pthread_mutex_unlock(&c->mu);
	return up && MQTTAsync_isConnected(c->h);
}

bool tclient_wait_disconnected(struct tclient *c, int timeout_ms)
{
	struct timespec dl = deadline_after(timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (c->connected && wait_until(c, &dl))
		;
	bool down = !c->connected;
	pthread_mutex_unlock(&c->mu);
	return down;
}

int tclient_server_disconnect_reason(struct tclient *c)
{
	pthread_mutex_lock(&c->mu);
	int rc = c->server_disconnect_rc;
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* ---- publish / subscribe -------------------------------------------------------------- */

/* Remember that nobody waits for token any more.  Called with c->mu held. */
static void abandon(struct tclient *c, int token)
{
	for (int i = 0; token != 0 && i < RESULT_RING; i++) {
		if (c->abandoned[i] == 0) {
			c->abandoned[i] = token;
			return;
		}
	}
}

/* Wait for the result recorded for token; TCLIENT_LOST if the connection
 * goes away first, TCLIENT_TIMEOUT if nothing comes. */
static int wait_result(struct tclient *c, int token)
{
	struct timespec dl = deadline_after(c->timeout_ms);
	int rc = TCLIENT_TIMEOUT;
	pthread_mutex_lock(&c->mu);
	for (;;) {
		bool found = false;
		for (int i = 0; i < RESULT_RING && !found; i++) {
			if (c->results[i].used && c->results[i].token == token) {
				rc = c->results[i].rc;
				c->results[i].used = false;
				found = true;
			}
		}
		if (found)
			break;
		if (!c->connected) {
			rc = TCLIENT_LOST;
			abandon(c, token);
			break;
		}
		if (!wait_until(c, &dl)) {
			abandon(c, token);
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

int tclient_subscribe(struct tclient *c, const char *filter, int qos)
{
	MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
	o.onSuccess5 = on_sub_ok;
	o.onFailure5 = on_op_fail;
	o.context = c;
	if (MQTTAsync_subscribe(c->h, filter, qos, &o) != MQTTASYNC_SUCCESS)
		return TCLIENT_LOST;
	return wait_result(c, o.token);
}

int tclient_publish(struct tclient *c, const char *topic, const void *payload,
		    size_t len, int qos, bool retain)
{
	return tclient_publish_prop(c, topic, payload, len, qos, retain, NULL, NULL);
}

int tclient_publish_prop(struct tclient *c, const char *topic, const void *payload,
			 size_t len, int qos, bool retain, const char *name, const char *value)
{
	MQTTAsync_responseOptions o = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	m.qos = qos;
	m.retained = retain ? 1 : 0;
	if (name) {
		MQTTProperty p;
		p.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
		p.value.data.data = (char *)name;
		p.value.data.len = (int)strlen(name);
		p.value.value.data = (char *)value;
		p.value.value.len = (int)strlen(value);
		if (MQTTProperties_add(&props, &p) != 0)
			return TCLIENT_LOST;
		m.properties = props;
	}
	o.onSuccess5 = on_pub_ok;
	o.onFailure5 = on_op_fail;
	o.context = c;
	int rc = MQTTAsync_sendMessage(c->h, topic, &m, &o);
	MQTTProperties_free(&props);   /* paho copied them */
	if (rc != MQTTASYNC_SUCCESS)
		return TCLIENT_LOST;
	return wait_result(c, o.token);
}

/* ---- receive ------------------------------------------------------------------------------ */

int tclient_recv(struct tclient *c, struct tmsg *m, int timeout_ms)
{
	struct timespec dl = deadline_after(timeout_ms);
	pthread_mutex_lock(&c->mu);
	while (!c->head && wait_until(c, &dl))
		;
	struct qmsg *q = c->head;
	if (q) {
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		c->pending--;
	}
	pthread_mutex_unlock(&c->mu);
	if (!q)
		return 0;
	*m = q->m;
	free(q);
	return 1;
}

void tmsg_free(struct tmsg *m)
{
	free(m->topic);
	free(m->payload);
	m->topic = NULL;
	m->payload = NULL;
	m->len = 0;
}

int tclient_pending(struct tclient *c)
{
	pthread_mutex_lock(&c->mu);
	int n = c->pending;
	pthread_mutex_unlock(&c->mu);
	return n;
}

int tclient_drain(struct tclient *c, int quiet_ms)
{
	int n = 0;
	struct tmsg m;
	while (tclient_recv(c, &m, quiet_ms) == 1) {
		tmsg_free(&m);
		n++;
	}
	return n;
}

/* ---- envelopes ------------------------------------------------------------------------------ */

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tnow_ms(void)
{
	return wall_ms();
}

int trandom_id(uint8_t id[MQIM_ENV_ID_LEN])
{
	size_t got = 0;
	while (got < MQIM_ENV_ID_LEN) {
		ssize_t n = getrandom(id + got, MQIM_ENV_ID_LEN - got, 0);
		if (n < 0 && errno != EINTR)
			return -1;
		if (n > 0)
			got += (size_t)n;
	}
	return 0;
}

size_t tenv_build(void **out, const char *t, const char *fr, const char *to,
		  const char *body, uint8_t id_out[MQIM_ENV_ID_LEN])
{
	struct mqim_env env;
	memset(&env, 0, sizeof env);
	env.v = MQIM_ENV_VERSION;
	if (trandom_id(env.id) != 0)
		return 0;
	env.t.ptr = t;
	env.t.len = strlen(t);
	env.fr.ptr = fr;
	env.fr.len = strlen(fr);
	env.to.ptr = to;
	env.to.len = strlen(to);
	env.ts = wall_ms();
	if (body) {
		env.body = (const uint8_t *)body;
		env.body_len = strlen(body);
		env.has_body = true;
		env.body_is_str = true;
	}
	void *buf = NULL;
	size_t len = 0;
	if (mqim_env_encode(&env, &buf, &len) != MQIM_OK)
		return 0;
	if (id_out)
		memcpy(id_out, env.id, MQIM_ENV_ID_LEN);
	*out = buf;
	return len;
}

/* ---- conveniences ------------------------------------------------------------------------------ */

struct tclient *tclient_login(int port, const char *client_id, const char *user,
			      const char *pass)
{
	struct tclient *c = tclient_new(port, client_id);
	if (!c)
		return NULL;
	int rc = tclient_connect(c, user, pass);
	if (rc != 0) {
		fprintf(stderr, "tclient: login of %s as %s answered %d (0x%x)\n",
			user ? user : "(none)", client_id ? client_id : "(empty)", rc, (unsigned)rc);
		tclient_free(c);
		return NULL;
	}
	return c;
}

int tclient_send_env(struct tclient *c, const char *topic, const char *t, const char *fr,
		     const char *to, const char *body, int qos,
		     uint8_t id_out[MQIM_ENV_ID_LEN])
{
	void *buf = NULL;
	size_t len = tenv_build(&buf, t, fr, to, body, id_out);
	if (len == 0)
		return TCLIENT_LOST;
	int rc = tclient_publish(c, topic, buf, len, qos, false);
	free(buf);
	return rc;
}
