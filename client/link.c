/* link.c - the connection: paho MQTTAsync glue, reconnects, subscriptions.
 *
 * One paho handle per client, created at the first connect and destroyed
 * by mqim_close(): paho acknowledges a QoS 1/2 message when it arrives and
 * only then queues it for our callback, so a handle must live on across a
 * loss for what it already acknowledged to reach us after the reconnect.
 * Paho's automatic reconnect and its persistence stay off; our loop
 * reconnects.  Every connection attempt gets a new epoch number: events are
 * tagged with it, and news about an older connection is ignored (except an
 * acknowledgement, which is still true).  Our own in-flight table is
 * cleared on every loss: what was not acknowledged is still QUEUED or SENT
 * in the outbox and the pump publishes it again, so the outbox never
 * depends on paho's in-flight state, which paho drops when the broker lost
 * the session (paho.mqtt.c issues #640, #1210, #429); the broker and the
 * receivers drop the duplicates by (fr, id).
 *
 * Paho's callbacks run on paho's threads: they only turn what happened into
 * an event for the library thread.
 *
 * Reconnect policy: a connection lost after it worked is retried within
 * backoff_min (jittered); a failed attempt backs off (backoff.h) until
 * max_attempts, then GAVE_UP.  A refusal of the credentials or client id
 * (CONNACK 0x84, 0x85, 0x86, 0x87, 0x8A, 0x8C) is final until
 * mqim_reconnect(): AUTH_FAILED, reported once.  So is a session take-over
 * (DISCONNECT 0x8E) or a kick (0x98 Administrative action: the mqim plugin's
 * single-session policy, or the operator): TAKEN_OVER, "logged in
 * elsewhere", so two devices never kick each other in a loop.  A publish with no acknowledgement within
 * ack_timeout_ms means the link is dead: drop it and reconnect at once.
 * A connection that ends within STABLE_MS of its CONNACK counts as a failed
 * attempt, so that flapping backs off too: Mosquitto 2.0 closes a session
 * taken over by the same client id without saying so (no DISCONNECT 0x8E),
 * and two devices sharing a client id must not kick each other in a loop.
 *
 * CONNECTED means "subscribed to the inbox", not "CONNACK received": on a
 * client id's first connection the broker holds no subscription yet, and a
 * message sent to the user between the CONNACK and the SUBACK would reach
 * nobody (lost at QoS 0; at QoS 1 a PUBACK 0x10 and a resend a second
 * later).  So after the CONNACK the state stays CONNECTING, the inbox is
 * subscribed, and only its SUBACK, on every connection, makes the client
 * CONNECTED and starts what publishes (presence "online", the outbox pump:
 * both wait for CONNECTED) and the group and presence-watch subscriptions,
 * which nobody waits for.  The SUBACK has the CONNACK's deadline: without
 * it in time the attempt failed, as without a CONNACK.  A refused inbox
 * (SUBACK >= 0x80; the mqim broker refuses it only to a user disabled or
 * removed meanwhile) is reported by on_error and the client goes CONNECTED
 * all the same, so that nothing hangs on a broker that will never say yes.
 * A close in between waits a moment for the SUBACK (close_subscribing).
 *
 * A poisoned handle is retired.  When the write of a QoS 1/2 PUBLISH fails
 * (the link was cut under it), paho 1.3.12 -- and upstream still, as of
 * 2026-01 -- frees the command's topic and payload although the message it
 * stored in the session points at them (docs/reliability.md, finding 9).
 * Kept, the handle would resend that message at the next CONNACK with the
 * session present, made of whatever the memory holds by then: Mosquitto
 * closes the connection for a malformed packet or a protocol error before
 * the inbox SUBACK, at every reconnect, for ever (finding 10: a client that
 * never got back to CONNECTED), or refuses it and paho frees the memory a
 * second time.  The failure is the publish's onFailure with paho code -1:
 * from then on the handle is never connected again nor destroyed (either
 * would free that memory again), its callbacks do nothing, and the next
 * connection gets a new handle; the old one stays allocated for the life of
 * the process.  What that handle had acknowledged but not handed over is
 * lost with it, and comes back through the senders' marked resends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "topics.h"

#define STABLE_MS 10000
/* Past options.connect_timeout_ms, paho's own connect timeout has fired. */
#define DEADLINE_SLACK_MS 2000
/* How long a close waits for the inbox SUBACK of a connection that has
 * its CONNACK. */
#define CLOSE_SUBACK_MS 1000

/* ---- paho callbacks (paho's threads) ------------------------------------ */

struct pubctx {
	struct mqim__link *l;       /* of the handle it was published on */
	uint64_t epoch;
	int64_t seq;
	int qos;                    /* on the wire */
	uint8_t id[16];
};

static uint64_t link_epoch(struct mqim__link *l)
{
	return __atomic_load_n(&l->epoch, __ATOMIC_ACQUIRE);
}

static bool link_retired(struct mqim__link *l)
{
	return __atomic_load_n(&l->retired, __ATOMIC_ACQUIRE);
}

static bool link_poisoned(struct mqim__link *l)
{
	return __atomic_load_n(&l->poisoned, __ATOMIC_ACQUIRE);
}

/* Every callback's news goes to the library thread through here.  A
 * retired handle's (see the top of the file) reaches nobody: its client
 * may be closed and freed by now; the link itself is never freed, so its
 * flag can always be read. */
static void link_post(struct mqim__link *l, struct mqim__ev *ev)
{
	if (link_retired(l))
		free(ev);
	else
		mqim__post(l->c, ev);
}

struct subctx {
	struct mqim__link *l;       /* of the handle it was sent on */
	uint64_t epoch;
	char topic[80];
};

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *r)
{
	struct mqim__connctx *l = ctx;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_CONNECTED, 0);
	if (!ev)
		return;   /* the connect deadline will catch it */
	ev->epoch = l->epoch;
	ev->ctx = l;
	ev->session_present = r->alt.connect.sessionPresent != 0;
	ev->recv_max = 65535;
	if (MQTTProperties_hasProperty(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM)) {
		int v = MQTTProperties_getNumericValue(&r->properties, MQTTPROPERTY_CODE_RECEIVE_MAXIMUM);
		if (v > 0)
			ev->recv_max = (unsigned)v;
	}
	link_post(l->link, ev);   /* l is not ours to touch past this (a retired link keeps it) */
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct mqim__connctx *l = ctx;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_CONNECT_FAILED, 0);
	if (!ev)
		return;
	ev->epoch = l->epoch;
	ev->ctx = l;
	ev->code = r ? r->code : -1;
	ev->reason = r ? (int)r->reasonCode : 0;
	link_post(l->link, ev);
}

static void on_lost(void *ctx, char *cause)
{
	struct mqim__link *l = ctx;
	(void)cause;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_LOST, 0);
	if (!ev)
		return;
	ev->epoch = link_epoch(l);
	link_post(l, ev);
}

/* The broker sent DISCONNECT: paho calls this and not on_lost. */
static void on_disconnected(void *ctx, MQTTProperties *props, enum MQTTReasonCodes reason)
{
	struct mqim__link *l = ctx;
	(void)props;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_LOST, 0);
	if (!ev)
		return;
	ev->epoch = link_epoch(l);
	ev->reason = (int)reason;
	link_post(l, ev);
}

static int on_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct mqim__link *l = ctx;
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
	size_t plen = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	if (msg->qos > 0 && msg->msgid == 0) {
		/* a protocol error paho lets through (a hostile or broken broker):
		 * such a message can be neither acknowledged nor told apart */
		MQTTAsync_freeMessage(&msg);
		MQTTAsync_free(topic);
		return 1;
	}
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_MSG, plen + tlen + 1);
	if (!ev)
		return 0;   /* paho keeps it and tries again */
	ev->epoch = link_epoch(l);
	if (plen)
		memcpy(ev->data, msg->payload, plen);
	ev->len = plen;
	ev->topic = (char *)ev->data + plen;
	memcpy(ev->topic, topic, tlen);
	ev->topic[tlen] = '\0';
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);
	link_post(l, ev);
	return 1;
}

static void pub_done(struct pubctx *p, bool ok, bool refused, int reason)
{
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_PUB_DONE, 0);
	if (ev) {
		ev->epoch = p->epoch;
		ev->seq = p->seq;
		memcpy(ev->id, p->id, 16);
		ev->ok = ok;
		ev->refused = refused;
		ev->reason = reason;
		link_post(p->l, ev);
	}
	free(p);
}

static void on_pub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	/* The reason may be 0x10 "no matching subscribers": send.c resends. */
	pub_done(ctx, true, false, r ? (int)r->reasonCode : 0);
}

static void on_pub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	struct pubctx *p = ctx;
	/* A reason code >= 0x80 on the PUBACK / PUBREC (paho code 0): the
	 * broker refused it.  Anything else (the connection went, the handle
	 * was destroyed) is not an answer about the message; paho leaves the
	 * reason code unset when a pending write fails. */
	bool answered = r && r->code == MQTTASYNC_SUCCESS;
	int reason = answered ? (int)r->reasonCode : 0;
	/* Code -1: the PUBLISH could not be written, and paho freed what its
	 * session still holds of it (see the top of the file). */
	if (r && r->code == MQTTASYNC_FAILURE && p->qos > 0)
		__atomic_store_n(&p->l->poisoned, true, __ATOMIC_RELEASE);
	pub_done(p, false, reason >= 0x80, reason);
}

int mqim__sub_outcome(bool answered, int reason)
{
	if (reason >= 0x80)
		return MQIM_EDENIED;
	return answered ? MQIM_OK : MQIM_ECONN;
}

/* code: paho's failure code (0 for a SUBACK). */
static void sub_done(struct subctx *s, bool answered, int reason, int code)
{
	size_t tlen = strlen(s->topic);
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_SUB_DONE, tlen + 1);
	if (ev) {
		int outcome = mqim__sub_outcome(answered, reason);
		ev->epoch = s->epoch;
		ev->ok = outcome == MQIM_OK;
		ev->refused = outcome == MQIM_EDENIED;
		ev->reason = reason;
		ev->code = code;
		ev->topic = (char *)ev->data;
		memcpy(ev->topic, s->topic, tlen + 1);
		link_post(s->l, ev);
	}
	free(s);
}

static void on_sub_ok(void *ctx, MQTTAsync_successData5 *r)
{
	sub_done(ctx, true, r ? (int)r->reasonCode : 0, 0);
}

/* Paho calls this for a SUBACK that refuses (reason >= 0x80), and also
 * when the subscription never got an answer (the link went first). */
static void on_sub_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	sub_done(ctx, false, r ? (int)r->reasonCode : 0, r ? r->code : -1);
}

static void on_disc_done(void *ctx, MQTTAsync_successData5 *r)
{
	struct mqim__link *l = ctx;
	(void)r;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_DISC_DONE, 0);
	if (ev) {
		ev->epoch = link_epoch(l);
		link_post(l, ev);
	}
}

static void on_disc_fail(void *ctx, MQTTAsync_failureData5 *r)
{
	(void)r;
	on_disc_done(ctx, NULL);
}

/* ---- presence -------------------------------------------------------------- */

int mqim__presence_env(mqim_client *c, bool online, void **out, size_t *len)
{
	struct mqim_env env;
	const char *body = online ? "online" : "offline";
	size_t ulen = strlen(c->user);

	memset(&env, 0, sizeof env);
	env.v = MQIM_ENV_VERSION;
	mqim__new_id(c, env.id);
	env.t = (struct mqim_str){ "presence", 8 };
	env.fr = (struct mqim_str){ c->user, ulen };
	env.to = (struct mqim_str){ c->user, ulen };
	env.ts = (uint64_t)mqim__now_ms();
	env.body = (const uint8_t *)body;
	env.body_len = strlen(body);
	env.has_body = true;
	env.body_is_str = true;
	return mqim_env_encode(&env, out, len);
}

/* ---- starting and ending a connection ------------------------------------- */

static void link_free(struct mqim__link *l)
{
	if (!l)
		return;
	while (l->attempts) {
		struct mqim__connctx *next = l->attempts->next;
		free(l->attempts);
		l->attempts = next;
	}
	MQTTProperties_free(&l->props);
	free(l->will);
	free(l);
}

/* Let go of a poisoned handle for good (see the top of the file): not
 * destroyed, its link not freed, its callbacks silent.  Paho runs them
 * under its own lock, which MQTTAsync_isConnected() takes: one that began
 * before the flag was set has returned when this does. */
static void link_retire(mqim_client *c)
{
	__atomic_store_n(&c->link->retired, true, __ATOMIC_RELEASE);
	(void)MQTTAsync_isConnected(c->h);
}

void mqim__link_destroy(mqim_client *c)
{
	if (!c->h)
		return;
	/* A new epoch first: what the destroy reports about the old handle
	 * (failure callbacks of pending publishes) is then stale. */
	c->epoch++;
	if (link_poisoned(c->link)) {
		link_retire(c);
	} else {
		MQTTAsync_destroy(&c->h);
		link_free(c->link);
	}
	c->h = NULL;
	c->link = NULL;
	c->connect_deadline = INT64_MAX;
	c->inbox_wait = false;
	mqim__inflight_clear(c);
}

/* The connection is gone (or given up): forget what was in flight on it. */
static void link_down(mqim_client *c)
{
	c->epoch++;
	if (c->link)
		__atomic_store_n(&c->link->epoch, c->epoch, __ATOMIC_RELEASE);
	c->connect_deadline = INT64_MAX;
	c->inbox_wait = false;
	mqim__inflight_clear(c);
}

/* Make paho drop a connection it still believes in (no ack came). */
static void link_abort(mqim_client *c)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
	uint64_t epoch = c->epoch;
	if (!c->h || !MQTTAsync_isConnected(c->h))
		return;
	d.struct_version = 1;
	d.timeout = 0;
	d.onSuccess5 = on_disc_done;
	d.onFailure5 = on_disc_fail;
	d.context = c->link;
	if (MQTTAsync_disconnect(c->h, &d) == MQTTASYNC_SUCCESS)
		free(mqim__wait_event(c, MQIM_EV_DISC_DONE, epoch, 0, 1000));
}

static void schedule_retry(mqim_client *c, int err)
{
	uint32_t rnd;
	mqim__random(&rnd, sizeof rnd);
	if (c->failures > 0 && mqim__backoff_gave_up(&c->bo, c->failures)) {
		c->reconnect_at = INT64_MAX;
		mqim__set_state(c, MQIM_STATE_GAVE_UP, err);
		return;
	}
	c->reconnect_at = mqim__mono_ms() + mqim__backoff_delay(&c->bo, c->failures, rnd);
	mqim__set_state(c, MQIM_STATE_WAITING, err);
}

static int link_create(mqim_client *c)
{
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTProperty p;
	struct mqim__link *l = calloc(1, sizeof *l);
	if (!l)
		return MQIM_ENOMEM;
	l->c = c;
	l->props = (MQTTProperties)MQTTProperties_initializer;
	p.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
	p.value.integer4 = c->o.session_expiry_s;
	MQTTProperties_add(&l->props, &p);
	snprintf(l->will_topic, sizeof l->will_topic, "im/p/%s", c->user);
	co.sendWhileDisconnected = 0;
	if (MQTTAsync_createWithOptions(&c->h, c->uri, c->client_id, MQTTCLIENT_PERSISTENCE_NONE,
					NULL, &co) != MQTTASYNC_SUCCESS) {
		c->h = NULL;
		link_free(l);
		return MQIM_EINVAL;
	}
	c->link = l;
	MQTTAsync_setCallbacks(c->h, l, on_lost, on_arrived, NULL);
	MQTTAsync_setDisconnected(c->h, l, on_disconnected);
	return MQIM_OK;
}

int mqim__link_start(mqim_client *c)
{
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	struct mqim__link *l;
	struct mqim__connctx *cc;
	int rc;

	c->reconnect_at = INT64_MAX;
	if (c->h && link_poisoned(c->link)) {
		link_abort(c);
		mqim__link_destroy(c);   /* retired: the next lines make a new one */
	}
	if (!c->h && (rc = link_create(c)) != MQIM_OK)
		return rc;
	l = c->link;
	link_abort(c);
	link_down(c);
	cc = calloc(1, sizeof *cc);
	if (!cc)
		return MQIM_ENOMEM;
	cc->link = l;
	cc->epoch = c->epoch;
	cc->next = l->attempts;
	l->attempts = cc;
	/* A fresh will for each connection (its own id and time). */
	free(l->will);
	l->will = NULL;
	rc = mqim__presence_env(c, false, &l->will, &l->will_len);
	if (rc != MQIM_OK)
		return rc;   /* cc is freed with the link */
	will.topicName = l->will_topic;
	will.message = NULL;
	will.payload.data = l->will;
	will.payload.len = (int)l->will_len;
	will.qos = 1;
	will.retained = 1;

	opts.keepAliveInterval = (int)c->o.keepalive_s;
	opts.cleanstart = 0;
	opts.maxInflight = (int)c->o.max_inflight;
	opts.username = c->user;
	opts.password = c->password;
	opts.connectTimeout = (int)((c->o.connect_timeout_ms + 999) / 1000);
	opts.retryInterval = 0;
	opts.automaticReconnect = 0;
	opts.will = &will;
	opts.connectProperties = &l->props;
	opts.onSuccess5 = on_connect_ok;
	opts.onFailure5 = on_connect_fail;
	opts.context = cc;
	if (strncmp(c->uri, "ssl://", 6) == 0) {
		ssl.trustStore = c->ca_file;
		ssl.keyStore = c->cert_file;
		ssl.privateKey = c->key_file ? c->key_file : c->cert_file;
		ssl.enableServerCertAuth = !c->o.insecure;
		ssl.verify = !c->o.insecure;   /* host name against the certificate */
		opts.ssl = &ssl;
	}
	c->connect_deadline = mqim__mono_ms() + c->o.connect_timeout_ms + DEADLINE_SLACK_MS;
	mqim__set_state(c, MQIM_STATE_CONNECTING, MQIM_OK);
	rc = MQTTAsync_connect(c->h, &opts);
	if (rc != MQTTASYNC_SUCCESS) {
		l->attempts = cc->next;   /* still at the head: paho never saw it */
		free(cc);
		link_down(c);
		c->failures++;
		schedule_retry(c, MQIM_ECONN);
	}
	return MQIM_OK;
}

/* A close between the CONNACK and the inbox SUBACK: wait a moment for the
 * SUBACK, so that what waits in the outbox (the receipts of what the
 * session delivered meanwhile) goes now rather than at the next start,
 * and the close is as graceful as from CONNECTED.  The state moves to
 * CONNECTED without telling the app, which is closing or logging out. */
static void close_subscribing(mqim_client *c)
{
	struct mqim__ev *ev = mqim__wait_event(c, MQIM_EV_SUB_DONE, c->epoch, 0, CLOSE_SUBACK_MS);
	bool answered = ev && (ev->ok || ev->refused);
	free(ev);
	if (!answered)
		return;
	c->inbox_wait = false;
	c->connect_deadline = INT64_MAX;
	c->st = MQIM_STATE_CONNECTED;
	if (c->store_retry_at == INT64_MAX)
		mqim__pump(c);   /* the pump rests while the store fails (client.c) */
}

void mqim__link_close(mqim_client *c, bool publish_offline)
{
	if (c->h && c->inbox_wait)
		close_subscribing(c);
	if (c->h && c->st == MQIM_STATE_CONNECTED) {
		uint64_t epoch = c->epoch;
		if (publish_offline) {
			void *env = NULL;
			size_t len = 0;
			char topic[80];
			snprintf(topic, sizeof topic, "im/p/%s", c->user);
			if (mqim__presence_env(c, false, &env, &len) == MQIM_OK &&
			    mqim__link_publish(c, topic, env, len, 1, true, -2, NULL, false) == MQIM_OK)
				free(mqim__wait_event(c, MQIM_EV_PUB_DONE, epoch, -2, 2000));
			free(env);
		}
		MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
		d.struct_version = 1;
		d.timeout = 0;
		d.onSuccess5 = on_disc_done;
		d.onFailure5 = on_disc_fail;
		d.context = c->link;
		if (MQTTAsync_disconnect(c->h, &d) == MQTTASYNC_SUCCESS)
			free(mqim__wait_event(c, MQIM_EV_DISC_DONE, epoch, 0, 2000));
	}
	mqim__link_destroy(c);
}

/* ---- subscriptions --------------------------------------------------------- */

int mqim__link_subscribe(mqim_client *c, const char *topic, bool no_local)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct subctx *s;
	if (!c->h)
		return MQIM_ECONN;
	s = calloc(1, sizeof *s);
	if (!s)
		return MQIM_ENOMEM;
	s->l = c->link;
	s->epoch = c->epoch;
	snprintf(s->topic, sizeof s->topic, "%s", topic);
	ro.onSuccess5 = on_sub_ok;
	ro.onFailure5 = on_sub_fail;
	ro.context = s;
	ro.subscribeOptions.noLocal = no_local ? 1 : 0;
	if (MQTTAsync_subscribe(c->h, topic, 2, &ro) != MQTTASYNC_SUCCESS) {
		free(s);
		return MQIM_ECONN;
	}
	return MQIM_OK;
}

int mqim__link_unsubscribe(mqim_client *c, const char *topic)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	if (!c->h)
		return MQIM_ECONN;
	return MQTTAsync_unsubscribe(c->h, topic, &ro) == MQTTASYNC_SUCCESS ? MQIM_OK : MQIM_ECONN;
}

static int sub_group(void *ctx, const char *gid)
{
	char topic[80];
	mqim__peer_topic(topic, gid, true);
	/* No-local: our own group messages do not come back to this session
	 * (other devices of the same user still get them). */
	mqim__link_subscribe(ctx, topic, true);
	return 0;
}

/* The groups and presence watches, asked once the inbox is subscribed
 * (so that one joined or watched before that is asked too); their answers
 * are not waited for. */
static void subscribe_rest(mqim_client *c)
{
	char topic[80];
	mqim__db_groups(&c->db, sub_group, c);
	for (size_t i = 0; i < c->nwatch; i++) {
		snprintf(topic, sizeof topic, "im/p/%s", c->watch[i]);
		mqim__link_subscribe(c, topic, false);
	}
}

/* ---- publishing ------------------------------------------------------------- */

/* The user property of a marked resend into *props (MQTTProperties_free). */
static int resend_props(MQTTProperties *props)
{
	MQTTProperty up;
	up.identifier = MQTTPROPERTY_CODE_USER_PROPERTY;
	up.value.data.data = (char *)MQIM_RESEND_PROP;
	up.value.data.len = (int)strlen(MQIM_RESEND_PROP);
	up.value.value.data = (char *)"1";
	up.value.value.len = 1;
	return MQTTProperties_add(props, &up) == 0 ? MQIM_OK : MQIM_ENOMEM;
}

int mqim__link_publish(mqim_client *c, const char *topic, const void *payload, size_t len,
		       int qos, bool retain, int64_t seq, const uint8_t id[16], bool marked)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message m = MQTTAsync_message_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	struct pubctx *p;

	if (!c->h || c->st != MQIM_STATE_CONNECTED)
		return MQIM_ECONN;
	p = calloc(1, sizeof *p);
	if (!p)
		return MQIM_ENOMEM;
	p->l = c->link;
	p->epoch = c->epoch;
	p->seq = seq;
	if (id)
		memcpy(p->id, id, 16);
	ro.onSuccess5 = on_pub_ok;
	ro.onFailure5 = on_pub_fail;
	ro.context = p;
	m.payload = (void *)payload;
	m.payloadlen = (int)len;
	/* QoS 2 asks for exactly-once delivery to the application, which the
	 * library gives end to end (outbox until the receipt, the broker's
	 * de-duplication, the receiver's seen-set).  On the wire it goes as
	 * QoS 1: paho.mqtt.c loses a QoS 2 exchange cut between PUBREC and
	 * PUBREL by a reconnect, and the resend under a new packet id is then
	 * (rightly) dropped by the broker as a duplicate while the first copy
	 * is never released (fault suite, tests/faults: sender_killed and
	 * kill_persist at QoS 2). */
	m.qos = qos > 1 ? 1 : qos;
	p->qos = m.qos;
	m.retained = retain;
	if (marked && resend_props(&props) != MQIM_OK) {
		free(p);
		return MQIM_ENOMEM;
	}
	m.properties = props;
	int rc = MQTTAsync_sendMessage(c->h, topic, &m, &ro);
	MQTTProperties_free(&props);   /* paho keeps its own copy */
	if (rc != MQTTASYNC_SUCCESS) {
		free(p);
		return MQIM_ECONN;
	}
	return MQIM_OK;
}

/* ---- events and timers ------------------------------------------------------- */

static bool auth_refusal(int code)
{
	switch (code) {
	case 0x84: case 0x85: case 0x86: case 0x87: case 0x8A: case 0x8C:
		return true;
	default:
		return false;
	}
}

/* This attempt failed before it was CONNECTED (no CONNACK or no inbox
 * SUBACK in time, the inbox could not be subscribed): drop it and back
 * off. */
static void attempt_failed(mqim_client *c, int err)
{
	link_abort(c);
	link_down(c);
	c->failures++;
	schedule_retry(c, err);
}

/* The CONNACK came: subscribe the inbox and stay CONNECTING until its
 * SUBACK, within a fresh connect deadline. */
static void connack(mqim_client *c, struct mqim__ev *ev)
{
	c->connected_at = mqim__mono_ms();
	c->window = c->o.max_inflight < ev->recv_max ? c->o.max_inflight : ev->recv_max;
	if (c->window == 0)
		c->window = 1;
	int rc = mqim__link_subscribe(c, c->inbox, false);
	if (rc != MQIM_OK) {
		attempt_failed(c, rc);
		return;
	}
	c->inbox_wait = true;
	c->connect_deadline = c->connected_at + c->o.connect_timeout_ms + DEADLINE_SLACK_MS;
}

/* The broker answered the inbox SUBSCRIBE: what is sent to this user now
 * reaches this session.  Report CONNECTED, then start publishing (the
 * pump runs after this batch of events). */
static void inbox_subscribed(mqim_client *c)
{
	void *env = NULL;
	size_t len = 0;
	char topic[80];

	c->inbox_wait = false;
	c->connect_deadline = INT64_MAX;
	mqim__set_state(c, MQIM_STATE_CONNECTED, MQIM_OK);
	subscribe_rest(c);
	snprintf(topic, sizeof topic, "im/p/%s", c->user);
	if (mqim__presence_env(c, true, &env, &len) == MQIM_OK) {
		/* In flight like any publish (slot -1), so that it counts
		 * against the broker's Receive Maximum. */
		for (unsigned i = 0; i < c->nslots; i++) {
			if (!c->slots[i].used) {
				if (mqim__link_publish(c, topic, env, len, 1, true, -1, NULL, false) == MQIM_OK) {
					c->slots[i] = (struct mqim__slot){ .seq = -1,
						.deadline = mqim__mono_ms() + c->o.ack_timeout_ms,
						.used = true };
					c->inflight_n++;
				}
				break;
			}
		}
	}
	free(env);
}

/* A connection ended: a long one starts the backoff afresh, a short one
 * is one more failure in a row. */
static void lost_count(mqim_client *c)
{
	if (mqim__mono_ms() - c->connected_at >= STABLE_MS)
		c->failures = 0;
	else
		c->failures++;
}

/* The answer to a connect came: its context can go. */
static void attempt_done(mqim_client *c, struct mqim__connctx *cc)
{
	if (!c->link || !cc)
		return;
	for (struct mqim__connctx **p = &c->link->attempts; *p; p = &(*p)->next) {
		if (*p == cc) {
			*p = cc->next;
			free(cc);
			return;
		}
	}
}

/* A refused subscription is the broker's answer; one without an answer
 * failed with the link, and is made again on the next connection. */
static void sub_answered(mqim_client *c, const struct mqim__ev *ev)
{
	if (ev->refused)
		mqim__note_error(c, MQIM_EDENIED, "the broker refused the subscription to %s "
				 "(reason 0x%02x)%s", ev->topic, ev->reason,
				 strncmp(ev->topic, "im/g/", 5) == 0 ? ": not a member of the group?" : "");
	else if (!ev->ok)
		mqim__note_error(c, MQIM_ECONN, "the subscription to %s got no answer (paho code "
				 "%d): the link failed; it is made again on the next connection",
				 ev->topic, ev->code);
}

void mqim__link_event(mqim_client *c, struct mqim__ev *ev)
{
	if (ev->type == MQIM_EV_CONNECTED || ev->type == MQIM_EV_CONNECT_FAILED)
		attempt_done(c, ev->ctx);
	if (ev->epoch != c->epoch || !c->h)
		return;   /* about a connection that is gone */
	switch (ev->type) {
	case MQIM_EV_CONNECTED:
		if (c->st == MQIM_STATE_CONNECTING)
			connack(c, ev);
		break;
	case MQIM_EV_CONNECT_FAILED:
		if (c->st != MQIM_STATE_CONNECTING)
			break;
		link_down(c);
		if (auth_refusal(ev->code) || auth_refusal(ev->reason)) {
			int code = auth_refusal(ev->code) ? ev->code : ev->reason;
			c->reconnect_at = INT64_MAX;
			mqim__set_state(c, MQIM_STATE_AUTH_FAILED,
					code == 0x86 || code == 0x87 ? MQIM_EAUTH : MQIM_EDENIED);
			break;
		}
		c->failures++;
		schedule_retry(c, MQIM_ECONN);
		break;
	case MQIM_EV_LOST:
		if (c->st != MQIM_STATE_CONNECTED && c->st != MQIM_STATE_CONNECTING)
			break;
		link_down(c);
		if (ev->reason == 0x8E || ev->reason == 0x98) {
			c->reconnect_at = INT64_MAX;
			mqim__set_state(c, MQIM_STATE_TAKEN_OVER, MQIM_ETAKEN);
			break;
		}
		lost_count(c);
		schedule_retry(c, MQIM_ECONN);
		break;
	case MQIM_EV_SUB_DONE:
		sub_answered(c, ev);
		if (!c->inbox_wait || strcmp(ev->topic, c->inbox) != 0)
			break;
		if (ev->ok || ev->refused)
			inbox_subscribed(c);
		else
			attempt_failed(c, MQIM_ECONN);
		break;
	default:
		break;
	}
}

void mqim__link_dead(mqim_client *c, int err)
{
	link_abort(c);
	link_down(c);
	lost_count(c);
	if (c->failures > 0) {
		schedule_retry(c, err);
		return;
	}
	mqim__set_state(c, MQIM_STATE_WAITING, err);
	if (mqim__link_start(c) != MQIM_OK) {
		c->failures++;
		schedule_retry(c, MQIM_ECONN);
	}
}

void mqim__link_timers(mqim_client *c, int64_t mono)
{
	if (c->st == MQIM_STATE_WAITING && mono >= c->reconnect_at) {
		if (mqim__link_start(c) != MQIM_OK) {
			c->failures++;
			schedule_retry(c, MQIM_ECONN);
		}
		return;
	}
	if (c->st == MQIM_STATE_CONNECTING && mono >= c->connect_deadline) {
		attempt_failed(c, MQIM_ETIMEOUT);   /* no CONNACK, or no inbox SUBACK */
		return;
	}
	if (c->st == MQIM_STATE_CONNECTED && mqim__inflight_deadline(c) <= mono)
		mqim__link_dead(c, MQIM_ETIMEOUT);
}
