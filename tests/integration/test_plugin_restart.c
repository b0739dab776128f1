/* test_plugin_restart.c - what survives a graceful restart and reloads:
 * the de-duplication window (saved at SIGTERM, loaded at start), users and
 * groups, and delivery under SIGHUP x10 with nothing lost or doubled. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"
#include "mqim.h"
#include "tbroker.h"
#include "tclient.h"

/* Publish a msg envelope from fr to to with this exact id; returns the
 * PUBACK reason code. */
static int send_with_id(struct tclient *c, const char *fr, const char *to, const uint8_t id[16],
			const char *body)
{
	struct mqim_env e;
	void *buf;
	size_t len;
	char topic[80];
	memset(&e, 0, sizeof e);
	e.v = 1;
	memcpy(e.id, id, 16);
	e.t = (struct mqim_str){ "msg", 3 };
	e.fr = (struct mqim_str){ fr, strlen(fr) };
	e.to = (struct mqim_str){ to, strlen(to) };
	e.ts = tnow_ms();
	e.body = (const uint8_t *)body;
	e.body_len = strlen(body);
	e.has_body = e.body_is_str = true;
	assert_int_equal(mqim_env_encode(&e, &buf, &len), MQIM_OK);
	snprintf(topic, sizeof topic, "im/u/%s", to);
	int rc = tclient_publish(c, topic, buf, len, 1, false);
	free(buf);
	return rc;
}

static void setup_broker(struct tbroker *b)
{
	assert_int_equal(tbroker_init(b, NULL), 0);
	assert_int_equal(tbroker_add_user(b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_add_user(b, "bob", "bob-pw", false), 0);
	static const char *const members[] = { "alice", "bob", NULL };
	assert_int_equal(tbroker_add_group(b, "team", members), 0);
	assert_int_equal(tbroker_start(b), 0);
}

/* alice sends bob (subscribed to his inbox) the message id, with both
 * logged in for it; bob then receives `want` messages. */
static void send_once(struct tbroker *b, const uint8_t id[16], const char *body, int want)
{
	struct tclient *bob = tclient_login(b->port, "bob", "bob", "bob-pw");
	struct tclient *alice = tclient_login(b->port, "alice", "alice", "alice-pw");
	assert_non_null(bob);
	assert_non_null(alice);
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	assert_int_equal(send_with_id(alice, "alice", "bob", id, body), 0);
	assert_int_equal(tclient_drain(bob, 300), want);
	tclient_free(alice);
	tclient_free(bob);
}

static void dedup_survives_graceful_restart(void **state)
{
	struct tbroker b;
	uint8_t id[16], id2[16];
	setup_broker(&b);
	trandom_id(id);
	trandom_id(id2);

	send_once(&b, id, "before", 1);

	assert_int_equal(tbroker_stop(&b), 0);
	assert_int_equal(tbroker_start(&b), 0);
	assert_true(tbroker_log_wait(&b, "mqim: loaded 1 de-duplication entries", 2000));

	struct tclient *bob = tclient_login(b.port, "bob", "bob", "bob-pw");
	struct tclient *alice = tclient_login(b.port, "alice", "alice", "alice-pw");
	assert_non_null(bob);
	assert_non_null(alice);
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	/* the resend after the restart is acknowledged and reaches nobody */
	assert_int_equal(send_with_id(alice, "alice", "bob", id, "before"), 0);
	assert_int_equal(send_with_id(alice, "alice", "bob", id2, "after"), 0);
	struct tmsg m;
	struct mqim_env e;
	assert_int_equal(tclient_recv(bob, &m, 2000), 1);
	assert_int_equal(mqim_env_decode(m.payload, m.len, 0, &e, NULL), MQIM_OK);
	assert_memory_equal(e.id, id2, 16);
	tmsg_free(&m);
	assert_int_equal(tclient_drain(bob, 300), 0);
	tclient_free(alice);
	tclient_free(bob);
	tbroker_cleanup(&b);
}

/* The saved window keeps only users that still exist at the next start,
 * and a file of another format is named and ignored, never misread. */
static void dedup_file_users_and_versions(void **state)
{
	struct tbroker b;
	uint8_t id[16], id2[16];
	char path[4200];
	(void)state;
	setup_broker(&b);
	assert_int_equal(tbroker_add_user(&b, "carol", "carol-pw", false), 0);
	assert_int_equal(tbroker_sighup(&b), 0);
	trandom_id(id);
	trandom_id(id2);

	struct tclient *bob = tclient_login(b.port, "bob", "bob", "bob-pw");
	struct tclient *alice = tclient_login(b.port, "alice", "alice", "alice-pw");
	struct tclient *carol = tclient_login(b.port, "carol", "carol", "carol-pw");
	assert_non_null(carol);
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	assert_int_equal(send_with_id(alice, "alice", "bob", id, "from alice"), 0);
	assert_int_equal(send_with_id(carol, "carol", "bob", id2, "from carol"), 0);
	assert_int_equal(tclient_drain(bob, 300), 2);
	tclient_free(alice);
	tclient_free(carol);
	tclient_free(bob);

	/* carol is deleted while the broker is down: only alice's id loads */
	assert_int_equal(tbroker_stop(&b), 0);
	assert_true(tbroker_log_count(&b, "mqim: saved 2 de-duplication entries") >= 1);
	assert_int_equal(tbroker_del_user(&b, "carol"), 0);
	assert_int_equal(tbroker_start(&b), 0);
	assert_true(tbroker_log_wait(&b, "mqim: loaded 1 de-duplication entries", 2000));
	send_once(&b, id, "from alice", 0);

	/* a file of the first format: named in the log, ignored, the broker runs */
	assert_int_equal(tbroker_stop(&b), 0);
	snprintf(path, sizeof path, "%s.dedup", b.db_path);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite("MQIMDD1\n\x05alice0123456789abcdef01234567", 1, 38, f), 38);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(tbroker_start(&b), 0);
	assert_true(tbroker_log_wait(&b, "not a de-duplication file of this version", 2000));
	alice = tclient_login(b.port, "alice", "alice", "alice-pw");
	assert_non_null(alice);
	tclient_free(alice);
	tbroker_cleanup(&b);
}

static void sighup_x10_under_load(void **state)
{
	enum { N = 200 };
	struct tbroker b;
	uint8_t first[16], id[16];
	setup_broker(&b);
	struct tclient *bob = tclient_login(b.port, "bob", "bob", "bob-pw");
	struct tclient *alice = tclient_login(b.port, "alice", "alice", "alice-pw");
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	assert_int_equal(tclient_subscribe(bob, "im/g/team", 1), 1);

	int hups = 0;
	for (int i = 0; i < N; i++) {
		trandom_id(id);
		if (i == 0)
			memcpy(first, id, 16);
		assert_int_equal(send_with_id(alice, "alice", "bob", id, "load"), 0);
		if (i % (N / 10) == N / 20) {
			assert_int_equal(tbroker_signal(&b, SIGHUP), 0);
			hups++;
		}
	}
	assert_int_equal(hups, 10);
	/* every message once, none lost while the tables were swapped */
	assert_int_equal(tclient_drain(bob, 2000), N);
	/* the window survived the reloads */
	assert_int_equal(send_with_id(alice, "alice", "bob", first, "load"), 0);
	assert_int_equal(tclient_drain(bob, 300), 0);
	/* users and memberships survived them too */
	assert_true(tbroker_log_count(&b, "mqim: reloaded 2 users and 1 groups") >= 1);
	assert_int_equal(tclient_send_env(alice, "im/g/team", "msg", "alice", "team", "g", 1, NULL), 0);
	assert_int_equal(tclient_drain(bob, 300), 1);
	tclient_free(alice);
	tclient_free(bob);
	tbroker_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dedup_survives_graceful_restart),
		cmocka_unit_test(dedup_file_users_and_versions),
		cmocka_unit_test(sighup_x10_under_load),
	};
	return cmocka_run_group_tests_name("plugin restart", tests, NULL, NULL);
}
