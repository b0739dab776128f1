/* test_client_link.c - a link that goes silent is detected and recovered;
 * CONNECTED means the inbox is subscribed.
 *
 * The client talks to the broker through a small loopback TCP proxy run by
 * this test.  "Freezing" the proxy stops forwarding on the connections it
 * has (no FIN, no RST: the bytes just stop, as on a dead mobile link) while
 * new connections are forwarded again.  Detected by the publish-ack
 * timeout (a message in flight) or by the MQTT keepalive (an idle link).
 * The proxy can also hold back what a client sends (a slow uplink, or one
 * that dies right after the CONNECT) while the broker's answers flow.
 * And a publish whose write fails (the client's own socket shut for
 * writing under a frozen link) must not poison the next connections.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"
#include "tbroker.h"
#include "tclient.h"
#include "test_client_util.h"

#define PW "pw-Ln-42"
#define WAIT_MS 15000
#define MAX_CONNS 32
#define FRESH_USERS 4
#define UP_DELAY_MS 150

static struct tbroker broker;

/* ---- the proxy ------------------------------------------------------------ */

struct conn {
	int a, b;          /* client side, broker side; -1 when closed */
	bool frozen;
	int up_left;       /* client -> broker reads still forwarded; -1: all */
};

struct proxy {
	int lfd;
	int port;
	int target;
	pthread_t th;
	pthread_mutex_t mu;
	volatile int stop;
	struct conn conns[MAX_CONNS];
	int accepted;
	int up_delay_ms;   /* each client -> broker read waits this long */
	bool mute_next;    /* the next connection forwards only the client's
	                    * first read (its CONNECT) upwards */
};

static int connect_to(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void conn_close(struct conn *c)
{
	if (c->a >= 0)
		close(c->a);
	if (c->b >= 0)
		close(c->b);
	c->a = c->b = -1;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	while (!p->stop) {
		struct pollfd pfd[1 + 2 * MAX_CONNS];
		int who[1 + 2 * MAX_CONNS];
		int n = 0;
		pfd[n].fd = p->lfd;
		pfd[n].events = POLLIN;
		who[n++] = -1;
		pthread_mutex_lock(&p->mu);
		for (int i = 0; i < MAX_CONNS; i++) {
			struct conn *c = &p->conns[i];
			if (c->a < 0 || c->frozen)
				continue;
			if (c->up_left != 0) {
				pfd[n] = (struct pollfd){ c->a, POLLIN, 0 };
				who[n++] = 2 * i;
			}
			pfd[n] = (struct pollfd){ c->b, POLLIN, 0 };
			who[n++] = 2 * i + 1;
		}
		pthread_mutex_unlock(&p->mu);
		if (poll(pfd, (nfds_t)n, 50) <= 0)
			continue;
		pthread_mutex_lock(&p->mu);
		if (pfd[0].revents & POLLIN) {
			int fd = accept(p->lfd, NULL, NULL);
			int up = fd >= 0 ? connect_to(p->target) : -1;
			int slot = -1;
			for (int i = 0; i < MAX_CONNS && slot < 0; i++)
				if (p->conns[i].a < 0)
					slot = i;
			if (fd >= 0 && up >= 0 && slot >= 0) {
				p->conns[slot] = (struct conn){ fd, up, false, p->mute_next ? 1 : -1 };
				p->mute_next = false;
				p->accepted++;
			} else {
				if (fd >= 0)
					close(fd);
				if (up >= 0)
					close(up);
			}
		}
		for (int k = 1; k < n; k++) {
			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct conn *c = &p->conns[who[k] / 2];
			if (c->a < 0 || c->frozen)
				continue;
			int from = who[k] % 2 ? c->b : c->a, to = who[k] % 2 ? c->a : c->b;
			char buf[16384];
			ssize_t got = read(from, buf, sizeof buf);
			if (got > 0 && from == c->a) {
				if (c->up_left > 0)
					c->up_left--;
				if (p->up_delay_ms > 0)
					tc_sleep(p->up_delay_ms);
			}
			if (got <= 0 || write(to, buf, (size_t)got) != got)
				conn_close(c);
		}
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

static void proxy_start(struct proxy *p, int target)
{
	memset(p, 0, sizeof *p);
	for (int i = 0; i < MAX_CONNS; i++)
		p->conns[i].a = p->conns[i].b = -1;
	p->target = target;
	pthread_mutex_init(&p->mu, NULL);
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	int one = 1;
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = 0 };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof sa;
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(p->lfd, 16), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&sa, &len), 0);
	p->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&p->th, NULL, proxy_main, p), 0);
}

/* Stop forwarding on every connection open now; new ones work. */
static void proxy_freeze(struct proxy *p)
{
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < MAX_CONNS; i++)
		if (p->conns[i].a >= 0)
			p->conns[i].frozen = true;
	pthread_mutex_unlock(&p->mu);
}

static void proxy_set(struct proxy *p, int up_delay_ms, bool mute_next)
{
	pthread_mutex_lock(&p->mu);
	p->up_delay_ms = up_delay_ms;
	p->mute_next = mute_next;
	pthread_mutex_unlock(&p->mu);
}

static int proxy_accepted(struct proxy *p)
{
	pthread_mutex_lock(&p->mu);
	int n = p->accepted;
	pthread_mutex_unlock(&p->mu);
	return n;
}

static void proxy_stop(struct proxy *p)
{
	p->stop = 1;
	pthread_join(p->th, NULL);
	for (int i = 0; i < MAX_CONNS; i++)
		conn_close(&p->conns[i]);
	close(p->lfd);
	pthread_mutex_destroy(&p->mu);
}

/* ---- tests --------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	if (tbroker_init(&broker, NULL) != 0 ||
	    tbroker_add_user(&broker, "alice", PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", PW, false) != 0)
		return -1;
	for (int i = 0; i < FRESH_USERS; i++) {
		char name[16];
		snprintf(name, sizeof name, "fresh%d", i);
		if (tbroker_add_user(&broker, name, PW, false) != 0)
			return -1;
	}
	if (tbroker_start(&broker) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tbroker_cleanup(&broker);
	return 0;
}

/* alice behind a proxy, bob straight to the broker, both CONNECTED. */
struct behind {
	struct proxy p;
	struct tc a, b;
	char da[256], db[256];
};

static void behind_open(struct behind *f, int keepalive_s, unsigned ack_timeout_ms)
{
	struct mqim_options o;
	proxy_start(&f->p, broker.port);
	tc_tmpdir(f->da, sizeof f->da, "alice");
	tc_tmpdir(f->db, sizeof f->db, "bob");
	assert_int_equal(tc_open(&f->b, broker.port, "bob", PW, f->db), MQIM_OK);
	assert_true(tc_wait_state(&f->b, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_options(&o, f->p.port, "alice", PW, f->da);
	o.keepalive_s = keepalive_s;
	o.ack_timeout_ms = ack_timeout_ms;
	tc_init(&f->a);
	assert_int_equal(tc_create(&f->a, &o), MQIM_OK);
	assert_int_equal(mqim_connect(f->a.c), MQIM_OK);
	assert_true(tc_wait_state(&f->a, MQIM_STATE_CONNECTED, WAIT_MS));
}

static void behind_close(struct behind *f)
{
	tc_close(&f->a);
	tc_close(&f->b);
	proxy_stop(&f->p);
	tc_rmdir(f->da);
	tc_rmdir(f->db);
}

static void silent_link(bool with_message)
{
	struct behind f;
	uint8_t id[16];

	/* Ack timeout test: a keepalive too long to help.  Keepalive test:
	 * a short keepalive, nothing in flight. */
	behind_open(&f, with_message ? 60 : 2, 2000);
	assert_int_equal(proxy_accepted(&f.p), 1);

	tc_sleep(500);   /* the online presence is acknowledged: the link is idle */
	int before = tc_nstates(&f.a);
	proxy_freeze(&f.p);
	int64_t t0 = tc_now();
	if (with_message)
		assert_int_equal(mqim_send(f.a.c, "bob", false, NULL, "through the dead link", 21, 1, id),
				 MQIM_OK);
	assert_true(tc_wait_state_after(&f.a, MQIM_STATE_WAITING, before, WAIT_MS));
	int64_t detected = tc_now() - t0;
	assert_true(tc_wait_state_after(&f.a, MQIM_STATE_CONNECTED, before, WAIT_MS));
	assert_true(proxy_accepted(&f.p) >= 2);
	/* Detected well before a 60 s keepalive would have. */
	assert_true(detected < 8000);
	if (with_message) {
		pthread_mutex_lock(&f.a.mu);
		int err = f.a.state_errs[before];   /* the WAITING right after the freeze */
		pthread_mutex_unlock(&f.a.mu);
		assert_int_equal(err, MQIM_ETIMEOUT);
	} else {
		assert_int_equal(mqim_send(f.a.c, "bob", false, NULL, "through the dead link", 21, 1, id),
				 MQIM_OK);
	}
	assert_true(tc_wait_msgs(&f.b, 1, WAIT_MS));
	assert_string_equal(f.b.msgs[0].body, "through the dead link");
	assert_true(tc_wait_msg_state(&f.a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	tc_sleep(300);
	assert_int_equal(tc_nmsgs(&f.b), 1);

	behind_close(&f);
}

static void test_silent_link_ack_timeout(void **state)
{
	(void)state;
	silent_link(true);
}

static void test_silent_link_keepalive(void **state)
{
	(void)state;
	silent_link(false);
}

/* A user's first connection (fresh data folder: a new client id, so no
 * session on the broker) over an uplink slow enough that the inbox
 * SUBSCRIBE reaches the broker well after the CONNACK came back.  The
 * moment the client reports CONNECTED, another client publishes a QoS 0
 * envelope to its inbox: it must arrive, since CONNECTED promises that
 * messages sent to this user now reach it (a CONNECTED at the CONNACK
 * would have the broker drop it, with no subscriber).  Fresh users, a
 * few times. */
static void test_connected_means_subscribed(void **state)
{
	struct proxy p;
	(void)state;

	proxy_start(&p, broker.port);
	proxy_set(&p, UP_DELAY_MS, false);
	struct tclient *raw = tclient_login(broker.port, "alice/raw", "alice", PW);
	assert_non_null(raw);
	for (int i = 0; i < FRESH_USERS; i++) {
		struct tc t;
		char user[16], dir[256], text[32];
		uint8_t id[16];

		snprintf(user, sizeof user, "fresh%d", i);
		snprintf(text, sizeof text, "the instant %d", i);
		tc_tmpdir(dir, sizeof dir, user);
		assert_int_equal(tc_open(&t, p.port, user, PW, dir), MQIM_OK);
		assert_true(tc_wait_state(&t, MQIM_STATE_CONNECTED, WAIT_MS));
		char topic[80];
		snprintf(topic, sizeof topic, "im/u/%s", user);
		assert_int_equal(tclient_send_env(raw, topic, "msg", "alice", user, text, 0, id), 0);
		assert_true(tc_wait_msgs(&t, 1, 3000));
		assert_memory_equal(t.msgs[0].id, id, 16);
		assert_string_equal(t.msgs[0].body, text);
		/* Nothing but CONNECTING then CONNECTED. */
		assert_int_equal(tc_nstates(&t), 2);
		assert_int_equal(tc_state_count(&t, MQIM_STATE_CONNECTING), 1);
		tc_close(&t);
		tc_rmdir(dir);
	}
	tclient_disconnect(raw);
	tclient_free(raw);
	proxy_stop(&p);
}

/* The CONNACK comes but the inbox SUBSCRIBE never reaches the broker (the
 * uplink dies right after the CONNECT): no CONNECTED on that connection;
 * past the connect timeout the attempt fails (WAITING, MQIM_ETIMEOUT) and
 * the next connection subscribes and is CONNECTED. */
static void test_no_suback_in_time(void **state)
{
	struct proxy p;
	struct tc t;
	struct mqim_options o;
	char dir[256];
	(void)state;

	proxy_start(&p, broker.port);
	proxy_set(&p, 0, true);
	tc_tmpdir(dir, sizeof dir, "bob");
	tc_options(&o, p.port, "bob", PW, dir);
	o.connect_timeout_ms = 1000;
	tc_init(&t);
	assert_int_equal(tc_create(&t, &o), MQIM_OK);
	int64_t t0 = tc_now();
	assert_int_equal(mqim_connect(t.c), MQIM_OK);
	assert_true(tc_wait_state(&t, MQIM_STATE_WAITING, WAIT_MS));
	int64_t waited = tc_now() - t0;
	assert_true(waited >= 1000 && waited < 8000);
	assert_true(tc_wait_state(&t, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(proxy_accepted(&p), 2);
	int st[4], err1;
	pthread_mutex_lock(&t.mu);
	int n = t.nstates;
	memcpy(st, t.states, sizeof st);
	err1 = t.state_errs[1];
	pthread_mutex_unlock(&t.mu);
	assert_int_equal(n, 4);
	assert_int_equal(st[0], MQIM_STATE_CONNECTING);
	assert_int_equal(st[1], MQIM_STATE_WAITING);
	assert_int_equal(err1, MQIM_ETIMEOUT);
	assert_int_equal(st[2], MQIM_STATE_CONNECTING);
	assert_int_equal(st[3], MQIM_STATE_CONNECTED);

	/* The second connection's inbox works. */
	struct tclient *raw = tclient_login(broker.port, "alice/raw", "alice", PW);
	uint8_t id[16];
	assert_non_null(raw);
	assert_int_equal(tclient_send_env(raw, "im/u/bob", "msg", "alice", "bob", "late", 0, id), 0);
	assert_true(tc_wait_msgs(&t, 1, 3000));
	assert_memory_equal(t.msgs[0].id, id, 16);
	tclient_disconnect(raw);
	tclient_free(raw);
	tc_close(&t);
	proxy_stop(&p);
	tc_rmdir(dir);
}

/* Closed between the CONNACK and the inbox SUBACK, right after the session
 * delivered what waited in it: the close waits for the SUBACK and sends
 * the receipt before it leaves, rather than at the next start. */
static void test_close_before_suback(void **state)
{
	struct proxy p;
	struct tc t;
	char dir[256];
	uint8_t id[16];
	struct tmsg m;
	struct mqim_env env;
	(void)state;

	proxy_start(&p, broker.port);
	tc_tmpdir(dir, sizeof dir, "bob");
	assert_int_equal(tc_open(&t, p.port, "bob", PW, dir), MQIM_OK);
	assert_true(tc_wait_state(&t, MQIM_STATE_CONNECTED, WAIT_MS));
	tc_close(&t);   /* the session and its inbox subscription stay */

	struct tclient *raw = tclient_login(broker.port, "alice/raw", "alice", PW);
	assert_non_null(raw);
	assert_int_equal(tclient_subscribe(raw, "im/u/alice", 1), 1);
	assert_int_equal(tclient_send_env(raw, "im/u/bob", "msg", "alice", "bob", "waited", 1, id), 0);

	proxy_set(&p, UP_DELAY_MS, false);
	assert_int_equal(tc_open(&t, p.port, "bob", PW, dir), MQIM_OK);
	assert_true(tc_wait_msgs(&t, 1, WAIT_MS));
	assert_memory_equal(t.msgs[0].id, id, 16);
	pthread_mutex_lock(&t.mu);
	enum mqim_state st = t.state;
	pthread_mutex_unlock(&t.mu);
	tc_close(&t);
	assert_int_equal(st, MQIM_STATE_CONNECTING);   /* the SUBSCRIBE is on its way */

	assert_int_equal(tclient_recv(raw, &m, 3000), 1);
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &env, NULL), MQIM_OK);
	assert_true(mqim_str_eq(env.t, "rcpt"));
	assert_memory_equal(env.ref, id, 16);
	tmsg_free(&m);
	tclient_disconnect(raw);
	tclient_free(raw);
	proxy_stop(&p);
	tc_rmdir(dir);
}

/* The descriptor, in this process, of paho's end of the one connection
 * the proxy forwards (its local port is the peer port of the proxy's
 * accepted socket), or -1. */
static int paho_fd(struct proxy *p)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof sa;
	int rc = -1, live = 0;
	pthread_mutex_lock(&p->mu);
	for (int i = 0; i < MAX_CONNS; i++) {
		if (p->conns[i].a >= 0 && !p->conns[i].frozen) {
			live++;
			rc = getpeername(p->conns[i].a, (struct sockaddr *)&sa, &len);
		}
	}
	pthread_mutex_unlock(&p->mu);
	if (live != 1)
		return -1;
	if (rc != 0)
		return -1;
	int port = ntohs(sa.sin_port);
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_in me, peer;
		socklen_t l1 = sizeof me, l2 = sizeof peer;
		if (getsockname(fd, (struct sockaddr *)&me, &l1) == 0 && me.sin_family == AF_INET &&
		    ntohs(me.sin_port) == port && getpeername(fd, (struct sockaddr *)&peer, &l2) == 0 &&
		    ntohs(peer.sin_port) == p->port)
			return fd;
	}
	return -1;
}

/* The write of a QoS 1 PUBLISH fails (the link went under it, here: the
 * proxy frozen and the client's socket shut for writing, so that only the
 * write can tell).  Paho 1.3.12 then frees the topic and payload that its
 * session still holds, and a handle kept for the next connection resent
 * them at its CONNACK, garbage: the broker refused it, or closed the
 * connection for a malformed packet before the inbox SUBACK, at every
 * reconnect (the client never CONNECTED again; finding 10 of
 * docs/reliability.md).  libmqim must connect again on a fresh handle: no
 * garbage reaches the broker, and the message arrives once.  Three times,
 * since what the garbage is depends on the heap. */
static void test_publish_write_fails(void **state)
{
	struct behind f;
	uint8_t id[3][16];
	(void)state;

	behind_open(&f, 60, 30000);   /* neither keepalive nor ack timeout notices the cut */
	int denied = tbroker_log_count(&broker, "mqim: denied");
	int dropped = tbroker_log_count(&broker, "disconnected due to");

	for (int k = 0; k < 3; k++) {
		char text[32];
		snprintf(text, sizeof text, "into a dead socket %d", k);
		tc_sleep(300);   /* the online presence is acknowledged */
		int fd = paho_fd(&f.p);
		assert_true(fd >= 0);
		int before = tc_nstates(&f.a);
		proxy_freeze(&f.p);
		assert_int_equal(shutdown(fd, SHUT_WR), 0);
		int64_t t0 = tc_now();
		assert_int_equal(mqim_send(f.a.c, "bob", false, NULL, text, strlen(text), 1, id[k]),
				 MQIM_OK);
		/* Only the failed write ends this link so soon. */
		assert_true(tc_wait_state_after(&f.a, MQIM_STATE_WAITING, before, WAIT_MS));
		assert_true(tc_now() - t0 < 5000);
		assert_true(tc_wait_state_after(&f.a, MQIM_STATE_CONNECTED, before, WAIT_MS));
		assert_true(tc_wait_msgs(&f.b, (size_t)k + 1, WAIT_MS));
		assert_string_equal(f.b.msgs[k].body, text);
		assert_true(tc_wait_msg_state(&f.a, id[k], MQIM_MSG_DELIVERED, WAIT_MS));
	}
	tc_sleep(300);
	assert_int_equal(tc_nmsgs(&f.b), 3);
	assert_int_equal(tbroker_log_count(&broker, "mqim: denied"), denied);
	assert_int_equal(tbroker_log_count(&broker, "disconnected due to"), dropped);

	behind_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_link_ack_timeout),
		cmocka_unit_test(test_silent_link_keepalive),
		cmocka_unit_test(test_connected_means_subscribed),
		cmocka_unit_test(test_no_suback_in_time),
		cmocka_unit_test(test_close_before_suback),
		cmocka_unit_test(test_publish_write_fails),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
