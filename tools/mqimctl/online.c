/* online.c - mqimctl -h HOST: requests over $CONTROL/mqim/v1 with paho.
 *
 * Owns one MQTT 5 connection (paho MQTTAsync) for one run: log in as the
 * admin with a client id of the form ADMIN/mqimctl-<random> (the contract
 * binds client ids to their user), subscribe to $CONTROL/mqim/v1/response
 * before publishing anything, publish the request at QoS 1 in batches of at
 * most BATCH_MAX commands, and collect the answers.  Every command carries a
 * correlationData of "<run token>-<index>", so answers are matched even when
 * other admins' responses arrive on the same topic; the token is removed
 * again before the responses are handed back.
 *
 * Threads: paho calls back on its own threads.  The callbacks only touch
 * struct online's fields below `mu`, under `mu`, and signal `cv`; the main
 * thread waits on `cv` with a deadline of --timeout seconds per step.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <MQTTAsync.h>
#include <openssl/rand.h>

#include "mqim.h"
#include "mqimctl.h"

#define REQUEST_TOPIC  "$CONTROL/mqim/v1"
#define RESPONSE_TOPIC "$CONTROL/mqim/v1/response"
#define BATCH_MAX      64

struct online {
	const struct ctl *c;
	MQTTAsync client;
	char where[300];           /* "host:port", for messages */
	char token[32];            /* this run's correlationData prefix */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* guarded by mu */
	bool connected, subscribed, closed;
	int failed;                /* 0, or the CTL_* exit status */
	char why[600];
	char tls_error[256];
	cJSON **slots;             /* answers of the current batch */
	int first, count, answered;
};

/* ---- callbacks (paho's threads) ------------------------------------------ */

static void set_failure(struct online *o, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_failure(struct online *o, int status, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&o->mu);
	if (!o->failed) {
		o->failed = status;
		va_start(ap, fmt);
		vsnprintf(o->why, sizeof(o->why), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static void set_flag(struct online *o, bool *flag)
{
	pthread_mutex_lock(&o->mu);
	*flag = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

static int on_tls_error(const char *str, size_t len, void *ctx)
{
	struct online *o = ctx;

	while (len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r' || str[len - 1] == ' '))
		len--;
	pthread_mutex_lock(&o->mu);
	if (!o->tls_error[0])
		snprintf(o->tls_error, sizeof(o->tls_error), "%.*s", (int)len, str);
	pthread_mutex_unlock(&o->mu);
	return 0;
}

static void on_connected(void *ctx, MQTTAsync_successData5 *r)
{
	struct online *o = ctx;

	set_flag(o, &o->connected);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *r)
{
	struct online *o = ctx;
	int code = r ? r->code : MQTTASYNC_FAILURE;

	if (code > 0) {           /* a CONNACK reason code: the broker said no */
		set_failure(o, CTL_REFUSED, "the broker at %s refused the login of %s: %s%s",
			    o->where, o->c->user, MQTTReasonCode_toString(code),
			    code == MQTTREASONCODE_BAD_USER_NAME_OR_PASSWORD ||
			    code == MQTTREASONCODE_NOT_AUTHORIZED
			    ? " (check -u and the password)" : "");
		return;
	}
	pthread_mutex_lock(&o->mu);
	char tls[300] = "";
	if (o->tls_error[0])
		snprintf(tls, sizeof(tls), " (TLS: %s)", o->tls_error);
	pthread_mutex_unlock(&o->mu);
	set_failure(o, CTL_UNREACHABLE, "could not connect to %s: %s%s", o->where,
		    r && r->message ? r->message : MQTTAsync_strerror(code), tls);
}

static void on_subscribed(void *ctx, MQTTAsync_successData5 *r)
{
	struct online *o = ctx;

	set_flag(o, &o->subscribed);
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *r)
{
	struct online *o = ctx;
	int rc = r ? (int)r->reasonCode : 0;

	if (rc >= MQTTREASONCODE_UNSPECIFIED_ERROR)
		set_failure(o, CTL_REFUSED, "the broker refused to let %s read %s (%s): is %s "
			    "an admin?", o->c->user, RESPONSE_TOPIC, MQTTReasonCode_toString(rc),
			    o->c->user);
	else
		set_failure(o, CTL_UNREACHABLE, "could not subscribe to %s on %s",
			    RESPONSE_TOPIC, o->where);
}

static void on_publish_failed(void *ctx, MQTTAsync_failureData5 *r)
{
	struct online *o = ctx;
	int rc = r ? (int)r->reasonCode : 0;

	if (rc >= MQTTREASONCODE_UNSPECIFIED_ERROR)
		set_failure(o, CTL_REFUSED, "the broker refused the request on %s (%s): is %s "
			    "an admin?", REQUEST_TOPIC, MQTTReasonCode_toString(rc), o->c->user);
	else
		set_failure(o, CTL_UNREACHABLE, "could not send the request to %s", o->where);
}

static void on_connection_lost(void *ctx, char *cause)
{
	struct online *o = ctx;

	set_failure(o, CTL_UNREACHABLE, "lost the connection to %s%s%s before the answer "
		    "came", o->where, cause ? ": " : "", cause ? cause : "");
}

static void on_closed(void *ctx, MQTTAsync_successData5 *r)
{
	struct online *o = ctx;

	set_flag(o, &o->closed);
}

static void on_close_failed(void *ctx, MQTTAsync_failureData5 *r)
{
	struct online *o = ctx;

	set_flag(o, &o->closed);
}

/* Keep one response if it answers a command of the current batch; true
 * when it was kept (the slot owns it then). */
static bool take_response(struct online *o, cJSON *resp)
{
	cJSON *corr = cJSON_GetObjectItemCaseSensitive(resp, "correlationData");
	size_t tlen = strlen(o->token);
	char *end;
	long idx;

	if (!o->slots || !cJSON_IsString(corr) ||
	    strncmp(corr->valuestring, o->token, tlen) != 0 || corr->valuestring[tlen] != '-')
		return false;
	errno = 0;
	idx = strtol(corr->valuestring + tlen + 1, &end, 10);
	if (errno || *end || idx < o->first || idx >= o->first + o->count ||
	    o->slots[idx - o->first])
		return false;
	cJSON_DeleteItemFromObjectCaseSensitive(resp, "correlationData");
	o->slots[idx - o->first] = resp;
	o->answered++;
	return true;
}

/* Paho's rule: free the message and topic, return 1 (we never ask for a
 * redelivery).  Anything that is not one of our answers is dropped. */
static int on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *m)
{
	struct online *o = ctx;
	cJSON *root = NULL, *arr, *r, *next;

	if (strcmp(topic, RESPONSE_TOPIC) == 0)
		root = cJSON_ParseWithLength(m->payload, (size_t)m->payloadlen);
	arr = cJSON_GetObjectItemCaseSensitive(root, "responses");
	pthread_mutex_lock(&o->mu);
	for (r = cJSON_IsArray(arr) ? arr->child : NULL; r; r = next) {
		next = r->next;
		if (!cJSON_IsObject(r))
			continue;
		cJSON_DetachItemViaPointer(arr, r);
		if (!take_response(o, r))
			cJSON_Delete(r);
	}
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	cJSON_Delete(root);
	MQTTAsync_freeMessage(&m);
	MQTTAsync_free(topic);
	return 1;
}

/* ---- the main thread ----------------------------------------------------- */

static bool is_connected(struct online *o) { return o->connected; }
static bool is_subscribed(struct online *o) { return o->subscribed; }
static bool is_answered(struct online *o) { return o->answered == o->count; }
static bool is_closed(struct online *o) { return o->closed; }

/* Wait until done(o) or a failure, for at most seconds.  Returns CTL_OK or
 * the failure's status, with the reason printed; on a timeout what says
 * what we were waiting for. */
static int wait_for(struct online *o, bool (*done)(struct online *), int seconds,
		    const char *what)
{
	struct timespec deadline;
	int rc = 0, status;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += seconds;
	pthread_mutex_lock(&o->mu);
	while (!o->failed && !done(o) && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&o->cv, &o->mu, &deadline);
	status = o->failed ? o->failed : done(o) ? CTL_OK : CTL_UNREACHABLE;
	if (status != CTL_OK && what)
		fprintf(stderr, "mqimctl: %s\n", o->failed ? o->why : what);
	pthread_mutex_unlock(&o->mu);
	return status;
}

static int connect_broker(struct online *o, const char *password)
{
	const struct ctl *c = o->c;
	MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	char why[400];
	int rc;

	co.keepAliveInterval = 30;
	co.cleanstart = 1;
	co.username = c->user;
	co.password = password;
	co.connectTimeout = c->timeout;
	co.automaticReconnect = 0;
	co.onSuccess5 = on_connected;
	co.onFailure5 = on_connect_failed;
	co.context = o;
	if (c->cafile) {
		ssl.trustStore = c->cafile;
		ssl.keyStore = c->cert;
		ssl.privateKey = c->key;
		ssl.enableServerCertAuth = 1;
		ssl.verify = !c->insecure;     /* the host name check */
		ssl.ssl_error_cb = on_tls_error;
		ssl.ssl_error_context = o;
		co.ssl = &ssl;
	}
	rc = MQTTAsync_connect(o->client, &co);
	if (rc != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "mqimctl: could not connect to %s: %s\n", o->where,
			MQTTAsync_strerror(rc));
		return CTL_UNREACHABLE;
	}
	snprintf(why, sizeof(why), "no answer from %s within %d s: is a broker listening "
		 "there%s?", o->where, c->timeout, c->cafile ? " with TLS" : "");
	return wait_for(o, is_connected, c->timeout + 1, why);
}

static int subscribe(struct online *o)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	char why[400];

	ro.onSuccess5 = on_subscribed;
	ro.onFailure5 = on_subscribe_failed;
	ro.context = o;
	if (MQTTAsync_subscribe(o->client, RESPONSE_TOPIC, 1, &ro) != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "mqimctl: could not subscribe to %s\n", RESPONSE_TOPIC);
		return CTL_UNREACHABLE;
	}
	snprintf(why, sizeof(why), "%s did not confirm the subscription to %s within %d s",
		 o->where, RESPONSE_TOPIC, o->c->timeout);
	return wait_for(o, is_subscribed, o->c->timeout, why);
}

/* {"commands": [copies of commands[first, first+count), with correlationData]} */
static char *batch_payload(struct online *o, const cJSON *commands, int first, int count)
{
	cJSON *req = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(req, "commands");
	char corr[64], *text = NULL;

	for (int i = first; arr && i < first + count; i++) {
		cJSON *dup = cJSON_Duplicate(cJSON_GetArrayItem(commands, i), true);
		snprintf(corr, sizeof(corr), "%s-%d", o->token, i);
		if (!dup || !cJSON_AddStringToObject(dup, "correlationData", corr) ||
		    !cJSON_AddItemToArray(arr, dup)) {
			cJSON_Delete(dup);
			arr = NULL;
		}
	}
	if (arr)
		text = cJSON_PrintUnformatted(req);
	ctl_request_wipe(arr);
	cJSON_Delete(req);
	return text;
}

static int send_batch(struct online *o, const cJSON *commands, int first, int count)
{
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	char *text = batch_payload(o, commands, first, count);
	char why[400];
	int rc;

	if (!text) {
		fprintf(stderr, "mqimctl: out of memory\n");
		return CTL_REFUSED;
	}
	pthread_mutex_lock(&o->mu);
	o->first = first;
	o->count = count;
	o->answered = 0;
	pthread_mutex_unlock(&o->mu);
	msg.payload = text;
	msg.payloadlen = (int)strlen(text);
	msg.qos = 1;
	ro.onFailure5 = on_publish_failed;
	ro.context = o;
	rc = MQTTAsync_sendMessage(o->client, REQUEST_TOPIC, &msg, &ro);
	ctl_wipe(text, strlen(text));
	cJSON_free(text);
	if (rc != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "mqimctl: could not send the request: %s\n", MQTTAsync_strerror(rc));
		return CTL_UNREACHABLE;
	}
	snprintf(why, sizeof(why), "no answer on %s from %s within %d s: is the mqim plugin "
		 "loaded in that broker?", RESPONSE_TOPIC, o->where, o->c->timeout);
	return wait_for(o, is_answered, o->c->timeout, why);
}

/* Run every batch; the answers land in all[] in command order. */
static int run_batches(struct online *o, const cJSON *commands, cJSON **all, int n)
{
	int rc = CTL_OK;

	for (int first = 0; rc == CTL_OK && first < n; first += BATCH_MAX) {
		int count = n - first < BATCH_MAX ? n - first : BATCH_MAX;
		pthread_mutex_lock(&o->mu);
		o->slots = all + first;
		pthread_mutex_unlock(&o->mu);
		rc = send_batch(o, commands, first, count);
	}
	pthread_mutex_lock(&o->mu);
	o->slots = NULL;
	pthread_mutex_unlock(&o->mu);
	return rc;
}

static void disconnect(struct online *o)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;

	d.timeout = 1000;
	d.onSuccess5 = on_closed;
	d.onFailure5 = on_close_failed;
	d.context = o;
	if (MQTTAsync_isConnected(o->client) &&
	    MQTTAsync_disconnect(o->client, &d) == MQTTASYNC_SUCCESS)
		wait_for(o, is_closed, 2, NULL);
}

static int create_client(struct online *o)
{
	MQTTAsync_createOptions cro = MQTTAsync_createOptions_initializer5;
	const struct ctl *c = o->c;
	unsigned char r[8];
	char uri[320], client_id[MQIM_NAME_MAX + 40];
	bool v6 = strchr(c->host, ':') != NULL;
	int port = c->port ? c->port : c->cafile ? 8883 : 1883;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		fprintf(stderr, "mqimctl: the system's random generator failed\n");
		return CTL_UNREACHABLE;
	}
	snprintf(o->token, sizeof(o->token), "mqimctl-%02x%02x%02x%02x%02x%02x%02x%02x",
		 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
	snprintf(o->where, sizeof(o->where), v6 ? "[%s]:%d" : "%s:%d", c->host, port);
	snprintf(uri, sizeof(uri), "%s://%s", c->cafile ? "mqtts" : "tcp", o->where);
	snprintf(client_id, sizeof(client_id), "%s/%s", c->user, o->token);
	if (MQTTAsync_createWithOptions(&o->client, uri, client_id, MQTTCLIENT_PERSISTENCE_NONE,
					NULL, &cro) != MQTTASYNC_SUCCESS ||
	    MQTTAsync_setCallbacks(o->client, o, on_connection_lost, on_message, NULL)
	    != MQTTASYNC_SUCCESS) {
		fprintf(stderr, "mqimctl: cannot set up an MQTT client for %s\n", uri);
		return CTL_UNREACHABLE;
	}
	return CTL_OK;
}

static cJSON *collect(cJSON **all, int n)
{
	cJSON *arr = cJSON_CreateArray();

	for (int i = 0; arr && i < n; i++) {
		if (!cJSON_AddItemToArray(arr, all[i])) {
			cJSON_Delete(arr);
			arr = NULL;
			break;
		}
		all[i] = NULL;
	}
	return arr;
}

int ctl_online_run(const struct ctl *c, const char *password, const cJSON *commands,
		   cJSON **responses)
{
	struct online o = { .c = c };
	int n = cJSON_GetArraySize(commands);
	cJSON **all = calloc((size_t)(n ? n : 1), sizeof(*all));
	int rc = all ? CTL_OK : CTL_REFUSED;

	*responses = NULL;
	pthread_mutex_init(&o.mu, NULL);
	pthread_cond_init(&o.cv, NULL);
	if (rc == CTL_OK)
		rc = create_client(&o);
	if (rc == CTL_OK)
		rc = connect_broker(&o, password);
	if (rc == CTL_OK)
		rc = subscribe(&o);
	if (rc == CTL_OK)
		rc = run_batches(&o, commands, all, n);
	if (o.client) {
		disconnect(&o);
		MQTTAsync_destroy(&o.client);
	}
	if (rc == CTL_OK) {
		*responses = collect(all, n);
		if (!*responses)
			rc = CTL_REFUSED;
	}
	for (int i = 0; all && i < n; i++)
		cJSON_Delete(all[i]);
	free(all);
	pthread_cond_destroy(&o.cv);
	pthread_mutex_destroy(&o.mu);
	return rc;
}
