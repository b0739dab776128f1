/* test_hostile_broker.c - attack catalogue, a hostile broker against
 * libmqim.
 *
 * The broker here is a script in the test: a listening socket on 127.0.0.1
 * speaking raw MQTT 5 (raw.h, mqtt_raw.h).  It answers a libmqim client
 * like a broker would (CONNACK, SUBACK, PUBACK ...) and, once the client is
 * connected, sends what no honest broker sends:
 *  - unexpected PUBREL / PUBCOMP / PUBACK / PUBREC / SUBACK / UNSUBACK, a
 *    second CONNACK;
 *  - PUBLISH at QoS 1 and 2 with packet id 0, and with QoS 3;
 *  - SUBACK with missing reason codes, too many, and a failure code;
 *  - absurd remaining lengths: five length bytes, 256 MiB declared, a length
 *    shorter than the content;
 *  - inbox messages that lie: no bts (not stamped by a broker), a `to` that
 *    is not this user, another user's inbox topic, a receipt for one of our
 *    messages from someone who is not its recipient, a presence whose fr is
 *    not the topic's user, bytes that are no envelope, a MessagePack bomb.
 * In every case libmqim must not crash, must drop the bad message (no
 * on_message; an on_error note), must keep its outbox (the message it sent
 * before the attack is still there, neither delivered nor failed), and
 * must go on working: a good message sent afterwards arrives, and the
 * recipient's real receipt marks the outbox message delivered.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "atk.h"
#include "tclient.h"
#include "../integration/test_client_util.h"

#define WAIT_MS 8000

/* ---- the fake broker ---------------------------------------------------------------- */

enum suback_mode { SUBACK_GRANT, SUBACK_NO_CODES, SUBACK_TWO_CODES, SUBACK_FAIL };

struct pub {
	char topic[96];
	uint8_t *payload;
	size_t len;
	int qos;
};

struct fake {
	int lfd, port;
	struct raw r;               /* the client's connection; fd -1 between them */
	int connects;               /* CONNECTs answered */
	int subscribes;             /* SUBSCRIBEs answered */
	enum suback_mode suback;
	struct pub pubs[256];       /* what the client published, in order */
	size_t npubs;
	uint16_t next_pid;          /* packet ids of what we send */
};

static struct fake F;
static struct tc T;
static bool t_open;
static char t_dir[256];

static void fake_close_conn(struct fake *f)
{
	raw_close(&f->r);
	f->r.fd = -1;
}

static void fake_send(struct fake *f, const void *b, size_t n)
{
	if (f->r.fd >= 0 && raw_send(&f->r, b, n) != 0)
		fake_close_conn(f);
}

static void fake_answer(struct fake *f, const struct mqtt_pkt *p)
{
	uint8_t b[16];
	switch (p->type) {
	case MQTT_CONNECT: {
		static const uint8_t connack[] = { 0x20, 3, 0, 0, 0 };
		fake_send(f, connack, sizeof connack);
		f->connects++;
		break;
	}
	case MQTT_SUBSCRIBE: {
		size_t n = 0;
		b[n++] = 0x90;
		b[n++] = 0; /* length, below */
		n += mqtt_put_u16(b + n, p->packet_id);
		b[n++] = 0; /* no properties */
		if (f->suback == SUBACK_GRANT || f->suback == SUBACK_TWO_CODES)
			b[n++] = 2;
		if (f->suback == SUBACK_TWO_CODES)
			b[n++] = 1;
		if (f->suback == SUBACK_FAIL)
			b[n++] = 0x87;
		b[1] = (uint8_t)(n - 2);
		fake_send(f, b, n);
		f->subscribes++;
		break;
	}
	case MQTT_PUBLISH:
		if (f->npubs < sizeof f->pubs / sizeof f->pubs[0]) {
			struct pub *s = &f->pubs[f->npubs++];
			snprintf(s->topic, sizeof s->topic, "%.*s", (int)p->topic_len, p->topic);
			s->payload = malloc(p->payload_len + 1);
			if (s->payload)
				memcpy(s->payload, p->payload, p->payload_len);
			s->len = p->payload_len;
			s->qos = p->qos;
		}
		if (p->qos == 1)
			fake_send(f, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBACK, p->packet_id, 0));
		if (p->qos == 2)
			fake_send(f, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBREC, p->packet_id, 0));
		break;
	case MQTT_PUBREL:
		fake_send(f, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBCOMP, p->packet_id, 0));
		break;
	case MQTT_PINGREQ:
		b[0] = 0xd0;
		b[1] = 0;
		fake_send(f, b, 2);
		break;
	case MQTT_DISCONNECT:
		fake_close_conn(f);
		break;
	default: /* acknowledgements of what we sent: nothing to do */
		break;
	}
}

/* Serve the client for up to ms: accept a new connection when there is
 * none, answer what it sends. */
static void fake_pump(struct fake *f, int ms)
{
	int64_t end = raw_now_ms() + ms;
	while (raw_now_ms() < end) {
		int64_t left = end - raw_now_ms();
		if (f->r.fd < 0) {
			int fd = raw_accept(f->lfd, (int)left);
			if (fd < 0)
				return;
			raw_adopt(&f->r, fd);
			continue;
		}
		struct mqtt_pkt p;
		int rc = raw_recv(&f->r, &p, (int)(left < 20 ? left : 20));
		if (rc == 0)
			fake_answer(f, &p);
		else if (rc == RAW_CLOSED || rc == RAW_MALFORMED)
			fake_close_conn(f);
	}
}

/* Pump until cond() holds (true) or timeout_ms passed (false). */
static bool pump_until(bool (*cond)(void), int timeout_ms)
{
	int64_t end = raw_now_ms() + timeout_ms;
	while (raw_now_ms() < end) {
		if (cond())
			return true;
		fake_pump(&F, 20);
	}
	return cond();
}

static void pump_for(int ms)
{
	fake_pump(&F, ms);
}

/* ---- the client ---------------------------------------------------------------------- */

static int t_state(void)
{
	pthread_mutex_lock(&T.mu);
	int s = T.state;
	pthread_mutex_unlock(&T.mu);
	return s;
}

static int t_errors(void)
{
	pthread_mutex_lock(&T.mu);
	int n = T.nerrors;
	pthread_mutex_unlock(&T.mu);
	return n;
}

static bool connected_and_subscribed(void)
{
	return t_state() == MQIM_STATE_CONNECTED && F.subscribes >= 1 && F.r.fd >= 0;
}

static int setup_each(void **state)
{
	memset(&F, 0, sizeof F);
	F.r.fd = -1;
	F.lfd = raw_listen(&F.port);
	if (F.lfd < 0)
		return -1;
	tc_tmpdir(t_dir, sizeof t_dir, "hostile");
	struct mqim_options o;
	tc_options(&o, F.port, "alice", "alice-pw", t_dir);
	o.host = "127.0.0.1";
	o.resend_timeout_ms = 60000; /* no resends during a test */
	tc_init(&T);
	if (tc_create(&T, &o) != MQIM_OK)
		return -1;
	t_open = true;
	if (mqim_watch_presence(T.c, "bob") != MQIM_OK || mqim_connect(T.c) != MQIM_OK)
		return -1;
	return pump_until(connected_and_subscribed, WAIT_MS) ? 0 : -1;
}

/* Serves F on a thread while the test thread is busy in mqim_close(). */
static pthread_mutex_t closing_mu = PTHREAD_MUTEX_INITIALIZER;
static bool closing;

static void *serve_while_closing(void *arg)
{
	for (;;) {
		pthread_mutex_lock(&closing_mu);
		bool go = closing;
		pthread_mutex_unlock(&closing_mu);
		if (!go)
			break;
		fake_pump(&F, 20);
	}
	return NULL;
}

static int teardown_each(void **state)
{
	if (t_open) {
		/* closing publishes "offline" and waits for its PUBACK: serve it */
		pthread_t th;
		closing = true;
		bool threaded = pthread_create(&th, NULL, serve_while_closing, NULL) == 0;
		tc_close(&T);
		pthread_mutex_lock(&closing_mu);
		closing = false;
		pthread_mutex_unlock(&closing_mu);
		if (threaded)
			pthread_join(th, NULL);
		t_open = false;
	}
	tc_rmdir(t_dir);
	fake_close_conn(&F);
	if (F.lfd >= 0)
		close(F.lfd);
	for (size_t i = 0; i < F.npubs; i++)
		free(F.pubs[i].payload);
	memset(&F, 0, sizeof F);
	F.r.fd = -1;
	return 0;
}

/* ---- what the fake broker sends -------------------------------------------------------- */

static uint16_t fake_pid(void)
{
	if (++F.next_pid == 0)
		F.next_pid = 1;
	return F.next_pid;
}

/* A PUBLISH to the client (QoS 1 unless told), with a fresh packet id. */
static void send_pub(const char *topic, const void *payload, size_t len, uint8_t qos)
{
	struct mqtt_publish p;
	uint8_t stack[4096];
	memset(&p, 0, sizeof p);
	p.topic = topic;
	p.payload = payload;
	p.payload_len = len;
	p.qos = qos;
	p.packet_id = qos ? fake_pid() : 0;
	size_t n = mqtt_enc_publish(stack, sizeof stack, 5, &p);
	assert_true(n > 0 && n <= sizeof stack);
	fake_send(&F, stack, n);
}

/* An envelope as a broker would deliver it: stamped with bts. */
static void stamped(struct mpw *w, const char *t, const char *fr, const char *to,
		    const char *body, const uint8_t *ref, uint8_t id_out[MQIM_ENV_ID_LEN])
{
	uint8_t id[MQIM_ENV_ID_LEN];
	assert_int_equal(trandom_id(id), 0);
	if (id_out)
		memcpy(id_out, id, sizeof id);
	mpw_init(w);
	mpw_env(w, 1 + (body ? 1 : 0) + (ref ? 1 : 0), t, fr, to, id);
	mpw_str(w, "bts");
	mpw_uint(w, tnow_ms());
	if (body) {
		mpw_str(w, "body");
		mpw_str(w, body);
	}
	if (ref) {
		mpw_str(w, "ref");
		mpw_bin(w, ref, MQIM_ENV_ID_LEN);
	}
}

/* A good message from bob: it must arrive (the client still works).  Sent
 * again once if the client reconnected meanwhile (the fake broker keeps no
 * session). */
static void good_message_arrives(const char *body)
{
	struct mpw w;
	size_t before = tc_nmsgs(&T);
	int connects = F.connects;
	bool again = false;
	stamped(&w, "msg", "bob", "alice", body, NULL, NULL);
	send_pub("im/u/alice", w.b, w.len, 1);
	int64_t end = raw_now_ms() + WAIT_MS;
	while (tc_nmsgs(&T) <= before && raw_now_ms() < end) {
		pump_for(20);
		if (!again && F.connects != connects && connected_and_subscribed()) {
			send_pub("im/u/alice", w.b, w.len, 1);
			again = true;
		}
	}
	mpw_free(&w);
	if (tc_nmsgs(&T) <= before)
		fail_msg("the good message \"%s\" never arrived (state %s)", body,
			 mqim_state_name((enum mqim_state)t_state()));
	pthread_mutex_lock(&T.mu);
	char last[64];
	snprintf(last, sizeof last, "%s", T.msgs[T.nmsgs - 1].body);
	pthread_mutex_unlock(&T.mu);
	assert_string_equal(last, body);
}

/* ---- the outbox ---------------------------------------------------------------------------- */

static uint8_t sent_id[MQIM_ENV_ID_LEN];

static bool sent_published(void)
{
	for (size_t i = 0; i < F.npubs; i++)
		if (strcmp(F.pubs[i].topic, "im/u/bob") == 0)
			return true;
	return false;
}

/* alice sends bob a message before the attack; the fake broker takes it
 * (PUBACK) and gives no receipt: it waits in the outbox as SENT. */
static void send_before_attack(void)
{
	assert_int_equal(mqim_send(T.c, "bob", false, NULL, "before the attack", 17, 1, sent_id),
			 MQIM_OK);
	assert_true(pump_until(sent_published, WAIT_MS));
	pump_for(200);
}

struct ob_find {
	int found;
	enum mqim_msg_state state;
};

static int ob_cb(void *ctx, const struct mqim_outbox_entry *e)
{
	struct ob_find *f = ctx;
	if (memcmp(e->id, sent_id, MQIM_ENV_ID_LEN) == 0) {
		f->found++;
		f->state = e->state;
	}
	return 0;
}

/* The message is still in the outbox, neither delivered nor failed. */
static void outbox_kept(void)
{
	struct ob_find f = { 0, MQIM_MSG_UNKNOWN };
	assert_true(mqim_outbox(T.c, ob_cb, &f) >= 1);
	assert_int_equal(f.found, 1);
	assert_true(f.state == MQIM_MSG_SENT || f.state == MQIM_MSG_QUEUED);
	enum mqim_msg_state st;
	assert_int_equal(mqim_message_state(T.c, sent_id, &st), MQIM_OK);
	assert_true(st == MQIM_MSG_SENT || st == MQIM_MSG_QUEUED);
}

static bool delivered(void)
{
	enum mqim_msg_state st = MQIM_MSG_UNKNOWN;
	mqim_message_state(T.c, sent_id, &st);
	return st == MQIM_MSG_DELIVERED;
}

/* bob's real receipt: the message leaves the outbox, delivered. */
static void real_receipt_delivers(void)
{
	struct mpw w;
	stamped(&w, "rcpt", "bob", "alice", NULL, sent_id, NULL);
	send_pub("im/u/alice", w.b, w.len, 1);
	mpw_free(&w);
	assert_true(pump_until(delivered, WAIT_MS));
	struct ob_find f = { 0, MQIM_MSG_UNKNOWN };
	mqim_outbox(T.c, ob_cb, &f);
	assert_int_equal(f.found, 0);
}

/* ---- the cases ----------------------------------------------------------------------------- */

static void unexpected_acknowledgements(void **state)
{
	uint8_t b[16];
	send_before_attack();
	fake_send(&F, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBREL, 777, 0));
	fake_send(&F, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBCOMP, 778, 0));
	fake_send(&F, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBACK, 779, 0));
	fake_send(&F, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBREC, 780, 0x80));
	fake_send(&F, b, mqtt_enc_ack(b, sizeof b, 5, MQTT_PUBCOMP, 0, 0));
	static const uint8_t suback[] = { 0x90, 4, 0x03, 0x15, 0, 2 };
	static const uint8_t unsuback[] = { 0xb0, 4, 0x03, 0x16, 0, 0 };
	static const uint8_t connack[] = { 0x20, 3, 0, 0, 0 };
	static const uint8_t pingresp[] = { 0xd0, 0 };
	fake_send(&F, suback, sizeof suback);
	fake_send(&F, unsuback, sizeof unsuback);
	fake_send(&F, pingresp, sizeof pingresp);
	fake_send(&F, connack, sizeof connack);
	pump_for(500);
	assert_int_equal(tc_nmsgs(&T), 0);
	outbox_kept();
	good_message_arrives("after unexpected acks");
	outbox_kept();
	real_receipt_delivers();
}

static void publish_with_packet_id_0(void **state)
{
	struct mpw w;
	send_before_attack();
	/* QoS 1 and QoS 2 with packet id 0, and QoS 3: all protocol errors */
	static const char *const bodies[] = { "packet id 0 at QoS 1", "packet id 0 at QoS 2",
					      "QoS 3" };
	for (int k = 0; k < 3; k++) {
		uint8_t pkt[512];
		size_t n = 0;
		stamped(&w, "msg", "bob", "alice", bodies[k], NULL, NULL);
		pkt[n++] = (uint8_t)(0x30 | (k == 0 ? 0x02 : k == 1 ? 0x04 : 0x06));
		size_t rl = 2 + 10 + 2 + 1 + w.len;
		n += mqtt_put_varint(pkt + n, (uint32_t)rl);
		n += mqtt_put_str(pkt + n, "im/u/alice", 10);
		n += mqtt_put_u16(pkt + n, 0);
		pkt[n++] = 0;
		memcpy(pkt + n, w.b, w.len);
		n += w.len;
		mpw_free(&w);
		fake_send(&F, pkt, n);
		pump_for(300);
	}
	pump_for(500);
	/* dropped: never handed to the application */
	char bad[160] = "";
	pthread_mutex_lock(&T.mu);
	for (size_t i = 0; i < T.nmsgs; i++) {
		size_t l = strlen(bad);
		snprintf(bad + l, sizeof bad - l, "%s\"%s\"", l ? ", " : "", T.msgs[i].body);
	}
	pthread_mutex_unlock(&T.mu);
	if (bad[0])
		fail_msg("malformed PUBLISH handed to the application: %s", bad);
	outbox_kept();
	good_message_arrives("after packet id 0");
	outbox_kept();
	real_receipt_delivers();
}

static void suback_with_missing_codes(void **state)
{
	static const enum suback_mode modes[] = { SUBACK_NO_CODES, SUBACK_TWO_CODES, SUBACK_FAIL };
	send_before_attack();
	for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		/* the client subscribes again on its next connection */
		F.suback = modes[i];
		int subs = F.subscribes;
		fake_close_conn(&F);
		int64_t end = raw_now_ms() + WAIT_MS;
		while (F.subscribes < subs + 2 && raw_now_ms() < end)
			pump_for(20);
		assert_true(F.subscribes >= subs + 2);
		pump_for(300);
		outbox_kept();
	}
	/* a refused inbox subscription is reported */
	assert_true(t_errors() >= 1);
	F.suback = SUBACK_GRANT;
	good_message_arrives("after odd SUBACKs");
	outbox_kept();
	real_receipt_delivers();
}

static void absurd_remaining_lengths(void **state)
{
	static const uint8_t five_bytes[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0 };
	static const uint8_t huge[] = { 0x32, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x0a, 'i', 'm' };
	static const uint8_t shorter[] = { 0x30, 0x05, 0x00, 0x64, 'i', 'm', '/' };
	static const uint8_t suback_huge[] = { 0x90, 0xff, 0xff, 0xff, 0x7f, 0x00 };
	static const struct { const char *name; const uint8_t *b; size_t n; } cases[] = {
		{ "five length bytes", five_bytes, sizeof five_bytes },
		{ "256 MiB declared", huge, sizeof huge },
		{ "a topic longer than the packet", shorter, sizeof shorter },
		{ "a SUBACK of 256 MiB", suback_huge, sizeof suback_huge },
	};
	send_before_attack();
	long rss0 = atk_rss_kb(getpid());
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int connects = F.connects;
		fake_send(&F, cases[i].b, cases[i].n);
		/* the client drops the connection (or its keepalive does); the
		 * script closes it after a second in any case, then the client
		 * must come back */
		pump_for(1000);
		fake_close_conn(&F);
		int64_t end = raw_now_ms() + WAIT_MS;
		while (F.connects == connects && raw_now_ms() < end)
			pump_for(20);
		if (F.connects == connects)
			fail_msg("after %s the client did not reconnect", cases[i].name);
		assert_true(pump_until(connected_and_subscribed, WAIT_MS));
		outbox_kept();
	}
	long rss1 = atk_rss_kb(getpid());
	print_message("  test process VmRSS %ld -> %ld KiB\n", rss0, rss1);
	assert_true(atk_rss_within(rss0, rss1, 64 * 1024));
	assert_int_equal(tc_nmsgs(&T), 0);
	good_message_arrives("after absurd lengths");
	outbox_kept();
	real_receipt_delivers();
}

static void inbox_messages_that_lie(void **state)
{
	struct mpw w;
	uint8_t id[MQIM_ENV_ID_LEN];
	send_before_attack();
	int errors = t_errors();

	/* no bts: not stamped by an mqim broker */
	assert_int_equal(trandom_id(id), 0);
	mpw_init(&w);
	mpw_env(&w, 1, "msg", "bob", "alice", id);
	mpw_str(&w, "body");
	mpw_str(&w, "no bts");
	send_pub("im/u/alice", w.b, w.len, 1);
	mpw_free(&w);
	/* to someone else, on our inbox */
	stamped(&w, "msg", "bob", "carol", "for carol", NULL, NULL);
	send_pub("im/u/alice", w.b, w.len, 1);
	mpw_free(&w);
	/* another user's inbox topic */
	stamped(&w, "msg", "bob", "carol", "carol's inbox", NULL, NULL);
	send_pub("im/u/carol", w.b, w.len, 1);
	mpw_free(&w);
	/* a topic outside the contract */
	stamped(&w, "msg", "bob", "alice", "elsewhere", NULL, NULL);
	send_pub("chat/alice", w.b, w.len, 1);
	mpw_free(&w);
	/* receipts for our message from someone who is not its recipient */
	stamped(&w, "rcpt", "mallory", "alice", NULL, sent_id, NULL);
	send_pub("im/u/alice", w.b, w.len, 1);
	mpw_free(&w);
	stamped(&w, "read", "mallory", "alice", NULL, sent_id, NULL);
	send_pub("im/u/alice", w.b, w.len, 1);
	mpw_free(&w);
	/* a receipt without bts from the right sender */
	assert_int_equal(trandom_id(id), 0);
	mpw_init(&w);
	mpw_env(&w, 1, "rcpt", "bob", "alice", id);
	mpw_str(&w, "ref");
	mpw_bin(&w, sent_id, MQIM_ENV_ID_LEN);
	send_pub("im/u/alice", w.b, w.len, 1);
	mpw_free(&w);
	/* bob's presence claimed by mallory */
	stamped(&w, "presence", "mallory", "bob", "online", NULL, NULL);
	send_pub("im/p/bob", w.b, w.len, 1);
	mpw_free(&w);
	/* no envelope at all, and a bomb, at QoS 0, 1 and 2 */
	for (uint8_t q = 0; q <= 2; q++) {
		send_pub("im/u/alice", "hello, not msgpack", 18, q);
		send_pub("im/u/alice", "\xdf\xff\xff\xff\xff", 5, q);
		send_pub("im/u/alice", "\x81\xa2id\xdb\xff\xff\xff\xff", 9, q);
	}
	pump_for(1000);

	assert_int_equal(tc_nmsgs(&T), 0);
	pthread_mutex_lock(&T.mu);
	int presence = T.presence_online;
	pthread_mutex_unlock(&T.mu);
	assert_int_equal(presence, -1);
	int dropped = t_errors() - errors;
	print_message("  %d lying messages reported through on_error\n", dropped);
	assert_true(dropped >= 14);
	outbox_kept();
	assert_int_equal(mqim_get_state(T.c), MQIM_STATE_CONNECTED);
	good_message_arrives("after the lies");
	outbox_kept();
	real_receipt_delivers();
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(unexpected_acknowledgements, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(publish_with_packet_id_0, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(suback_with_missing_codes, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(absurd_remaining_lengths, setup_each, teardown_each),
		cmocka_unit_test_setup_teardown(inbox_messages_that_lie, setup_each, teardown_each),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests_name("attacks: a hostile broker against libmqim", tests, NULL,
					   NULL);
}
