/* test_tls.c - the TLS listener: a real handshake end to end, a server
 * certificate from another CA refused by the client, a plain-TCP client
 * refused on the TLS listener, and mutual TLS (require_certificate).
 * Certificates come from tools/mqim-certs.sh, as `make certs` makes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <MQTTAsync.h>

#include "tbroker.h"
#include "tclient.h"

struct wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;   /* 0 pending, 1 ok, -1 failed */
	int rc;
};

static void on_ok(void *ctx, MQTTAsync_successData5 *d)
{
	struct wait *w = ctx;
	pthread_mutex_lock(&w->mu);
	w->done = 1;
	w->rc = 0;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_fail(void *ctx, MQTTAsync_failureData5 *d)
{
	struct wait *w = ctx;
	pthread_mutex_lock(&w->mu);
	w->done = -1;
	w->rc = d && d->reasonCode ? (int)d->reasonCode : (d ? d->code : -1);
	if (w->rc == 0)
		w->rc = -1;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Connect with MQTT 5 over uri; TLS options when ca is set.  Returns 0 on
 * CONNACK success, non-zero otherwise (handshake refused, timeout, ...). */
static int try_connect(const char *uri, const char *ca, const char *cert, const char *key,
		       const char *user, const char *pass)
{
	MQTTAsync h;
	MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer5;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	struct wait w = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0 };

	assert_int_equal(MQTTAsync_createWithOptions(&h, uri, user, MQTTCLIENT_PERSISTENCE_NONE,
						     NULL, &co), MQTTASYNC_SUCCESS);
	opts.cleanstart = 1;
	opts.username = user;
	opts.password = pass;
	opts.connectTimeout = 5;
	opts.onSuccess5 = on_ok;
	opts.onFailure5 = on_fail;
	opts.context = &w;
	if (ca) {
		ssl.trustStore = ca;
		ssl.keyStore = cert;
		ssl.privateKey = key;
		ssl.enableServerCertAuth = 1;
		ssl.verify = 1; /* host name checked against the certificate */
		opts.ssl = &ssl;
	}
	int rc = MQTTAsync_connect(h, &opts);
	if (rc == MQTTASYNC_SUCCESS) {
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 10;
		pthread_mutex_lock(&w.mu);
		while (!w.done && pthread_cond_timedwait(&w.cv, &w.mu, &dl) == 0)
			;
		rc = w.done == 1 ? 0 : (w.rc ? w.rc : -1);
		pthread_mutex_unlock(&w.mu);
	}
	if (rc == 0)
		MQTTAsync_disconnect(h, NULL);
	usleep(100 * 1000);
	MQTTAsync_destroy(&h);
	return rc;
}

static int free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	getsockname(s, (struct sockaddr *)&a, &l);
	close(s);
	return ntohs(a.sin_port);
}

struct tls_env {
	struct tbroker b;
	int tls_port;
	char certs[400], other[400];
	char ca[500], cert[500], key[500], other_ca[500];
};

static void tls_start(struct tls_env *e, bool require_cert)
{
	char cmd[1200];
	assert_int_equal(tbroker_init(&e->b, NULL), 0);
	snprintf(e->certs, sizeof e->certs, "%s/certs", e->b.dir);
	snprintf(e->other, sizeof e->other, "%s/other", e->b.dir);
	snprintf(cmd, sizeof cmd, "sh tools/mqim-certs.sh %s >/dev/null && sh tools/mqim-certs.sh %s >/dev/null",
		 e->certs, e->other);
	assert_int_equal(system(cmd), 0);
	snprintf(e->ca, sizeof e->ca, "%s/ca.crt", e->certs);
	snprintf(e->cert, sizeof e->cert, "%s/client.crt", e->certs);
	snprintf(e->key, sizeof e->key, "%s/client.key", e->certs);
	snprintf(e->other_ca, sizeof e->other_ca, "%s/ca.crt", e->other);
	e->tls_port = free_port();
	snprintf(e->b.extra_conf, sizeof e->b.extra_conf,
		 "listener %d 127.0.0.1\ncafile %s\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
		 "require_certificate %s\n",
		 e->tls_port, e->ca, e->certs, e->certs, require_cert ? "true" : "false");
	assert_int_equal(tbroker_add_user(&e->b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_start(&e->b), 0);
}

static void tls_handshake_and_refusals(void **state)
{
	struct tls_env e;
	char uri[128], host_uri[128], plain[128];
	tls_start(&e, false);
	snprintf(uri, sizeof uri, "ssl://127.0.0.1:%d", e.tls_port);
	snprintf(host_uri, sizeof host_uri, "ssl://localhost:%d", e.tls_port);
	snprintf(plain, sizeof plain, "tcp://127.0.0.1:%d", e.tls_port);

	/* a real handshake, host name verified, then the plugin's login */
	assert_int_equal(try_connect(host_uri, e.ca, NULL, NULL, "alice", "alice-pw"), 0);
	assert_int_equal(try_connect(uri, e.ca, NULL, NULL, "alice", "alice-pw"), 0);
	/* the plugin still guards the TLS listener */
	assert_int_not_equal(try_connect(uri, e.ca, NULL, NULL, "alice", "wrong"), 0);
	/* a server certificate from another CA is refused by the client */
	assert_int_not_equal(try_connect(uri, e.other_ca, NULL, NULL, "alice", "alice-pw"), 0);
	/* a plain-TCP client is refused on the TLS listener */
	assert_int_not_equal(try_connect(plain, NULL, NULL, NULL, "alice", "alice-pw"), 0);
	tbroker_cleanup(&e.b);
}

static void mutual_tls(void **state)
{
	struct tls_env e;
	char uri[128];
	tls_start(&e, true);
	snprintf(uri, sizeof uri, "ssl://localhost:%d", e.tls_port);
	assert_int_not_equal(try_connect(uri, e.ca, NULL, NULL, "alice", "alice-pw"), 0);
	assert_int_equal(try_connect(uri, e.ca, e.cert, e.key, "alice", "alice-pw"), 0);
	tbroker_cleanup(&e.b);
}

/* Run `mqim [tls options] send --wait sent alice hi` against the TLS
 * listener; returns its exit status. */
static int mqim_send(const struct tls_env *e, const char *tls_opts)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
		 "timeout 30 %s/mqim -h localhost -p %d %s -u alice -P alice-pw --data-dir %s/mqim-data "
		 "send --wait sent --timeout 4 alice hi >/dev/null 2>&1",
		 tbroker_build_dir(), e->tls_port, tls_opts, e->b.dir);
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* libmqim over TLS, through the mqim tool: verified by default, refused
 * with a foreign CA, accepted with it only under an explicit --insecure,
 * and mutual TLS with --cert / --key. */
static void libmqim_over_tls(void **state)
{
	struct tls_env e;
	char opts[1600];
	tls_start(&e, false);
	snprintf(opts, sizeof opts, "--cafile %s", e.ca);
	assert_int_equal(mqim_send(&e, opts), 0);
	snprintf(opts, sizeof opts, "--cafile %s", e.other_ca);
	assert_int_not_equal(mqim_send(&e, opts), 0);
	snprintf(opts, sizeof opts, "--cafile %s --insecure", e.other_ca);
	assert_int_equal(mqim_send(&e, opts), 0);
	tbroker_cleanup(&e.b);

	tls_start(&e, true);
	snprintf(opts, sizeof opts, "--cafile %s", e.ca);
	assert_int_not_equal(mqim_send(&e, opts), 0);
	snprintf(opts, sizeof opts, "--cafile %s --cert %s --key %s", e.ca, e.cert, e.key);
	assert_int_equal(mqim_send(&e, opts), 0);
	tbroker_cleanup(&e.b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tls_handshake_and_refusals),
		cmocka_unit_test(mutual_tls),
		cmocka_unit_test(libmqim_over_tls),
	};
	return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
