/* test_client_link.c - a link that goes silent is detected and recovered.
 *
 * The client talks to the broker through a small loopback TCP proxy run by
 * this test.  "Freezing" the proxy stops forwarding on the connections it
 * has (no FIN, no RST: the bytes just stop, as on a dead mobile link) while
 * new connections are forwarded again.  Detected by the publish-ack
 * timeout (a message in flight) or by the MQTT keepalive (an idle link).
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

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-Ln-42"
#define WAIT_MS 15000
#define MAX_CONNS 32

static struct tbroker broker;

/* ---- the proxy ------------------------------------------------------------ */

struct conn {
	int a, b;          /* client side, broker side; -1 when closed */
	bool frozen;
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
			pfd[n] = (struct pollfd){ c->a, POLLIN, 0 };
			who[n++] = 2 * i;
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
				p->conns[slot] = (struct conn){ fd, up, false };
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
	    tbroker_add_user(&broker, "bob", PW, false) != 0 ||
	    tbroker_start(&broker) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tbroker_cleanup(&broker);
	return 0;
}

static void silent_link(bool with_message)
{
	struct proxy p;
	struct tc a, b;
	struct mqim_options o;
	char da[256], db[256];
	uint8_t id[16];

	proxy_start(&p, broker.port);
	tc_tmpdir(da, sizeof da, "alice");
	tc_tmpdir(db, sizeof db, "bob");
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));

	tc_options(&o, p.port, "alice", PW, da);
	/* Ack timeout test: a keepalive too long to help.  Keepalive test:
	 * a short keepalive, nothing in flight. */
	o.keepalive_s = with_message ? 60 : 2;
	o.ack_timeout_ms = 2000;
	tc_init(&a);
	assert_int_equal(tc_create(&a, &o), MQIM_OK);
	assert_int_equal(mqim_connect(a.c), MQIM_OK);
	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(proxy_accepted(&p), 1);

	tc_sleep(500);   /* the online presence is acknowledged: the link is idle */
	int before = tc_nstates(&a);
	proxy_freeze(&p);
	int64_t t0 = tc_now();
	if (with_message)
		assert_int_equal(mqim_send(a.c, "bob", false, NULL, "through the dead link", 21, 1, id),
				 MQIM_OK);
	assert_true(tc_wait_state_after(&a, MQIM_STATE_WAITING, before, WAIT_MS));
	int64_t detected = tc_now() - t0;
	assert_true(tc_wait_state_after(&a, MQIM_STATE_CONNECTED, before, WAIT_MS));
	assert_true(proxy_accepted(&p) >= 2);
	/* Detected well before a 60 s keepalive would have. */
	assert_true(detected < 8000);
	if (with_message) {
		pthread_mutex_lock(&a.mu);
		int err = a.state_errs[before];   /* the WAITING right after the freeze */
		pthread_mutex_unlock(&a.mu);
		assert_int_equal(err, MQIM_ETIMEOUT);
	} else {
		assert_int_equal(mqim_send(a.c, "bob", false, NULL, "through the dead link", 21, 1, id),
				 MQIM_OK);
	}
	assert_true(tc_wait_msgs(&b, 1, WAIT_MS));
	assert_string_equal(b.msgs[0].body, "through the dead link");
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	tc_sleep(300);
	assert_int_equal(tc_nmsgs(&b), 1);

	tc_close(&a);
	tc_close(&b);
	proxy_stop(&p);
	tc_rmdir(da);
	tc_rmdir(db);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_link_ack_timeout),
		cmocka_unit_test(test_silent_link_keepalive),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
