/* test_client_roster.c - group messages with a roster
 * (mqim_set_group_members): a member who has never logged in when the
 * message goes gets it once when she first comes, through the sender's
 * marked resends, and the sender sees DELIVERED only then; the roster is
 * kept in the data folder; without a roster the first receipt settles a
 * message (the old rule); a member who never comes makes it FAILED once
 * the resend budget is spent; bad arguments are refused.
 *
 * One broker: users alice, bob, carol, dave; groups team (alice, bob,
 * carol) and crew (alice, bob, dave).  carol and dave log in for the first
 * time, if ever, in the middle of a test: nothing on the broker queues
 * for them before that.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-Ros-58"
#define WAIT_MS 15000
#define RESEND_MS 1000

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const team[] = { "alice", "bob", "carol", NULL };
	static const char *const crew[] = { "alice", "bob", "dave", NULL };
	(void)state;
	if (tbroker_init(&broker, NULL) != 0 ||
	    tbroker_add_user(&broker, "alice", PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", PW, false) != 0 ||
	    tbroker_add_user(&broker, "carol", PW, false) != 0 ||
	    tbroker_add_user(&broker, "dave", PW, false) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_add_group(&broker, "crew", crew) != 0 ||
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

/* A client of user in dir following group gid, resending after RESEND_MS
 * at most max_resends times; connected (state CONNECTED) when it returns. */
static void member_open(struct tc *t, const char *user, const char *dir, const char *gid,
			unsigned max_resends)
{
	const char *groups[] = { gid, NULL };
	assert_int_equal(tc_open_resend(t, broker.port, user, PW, dir, groups, RESEND_MS,
					max_resends), MQIM_OK);
	assert_true(tc_wait_state(t, MQIM_STATE_CONNECTED, WAIT_MS));
}

/* alice and bob, members of gid, connected; alice's budget max_resends. */
struct duo {
	struct tc a, b;
	char da[256], db[256];
};

static void duo_open(struct duo *d, const char *gid, unsigned max_resends)
{
	tc_tmpdir(d->da, sizeof d->da, "alice");
	tc_tmpdir(d->db, sizeof d->db, "bob");
	member_open(&d->a, "alice", d->da, gid, max_resends);
	member_open(&d->b, "bob", d->db, gid, 100);
}

static void duo_close(struct duo *d)
{
	tc_close(&d->b);
	tc_close(&d->a);
	tc_rmdir(d->da);
	tc_rmdir(d->db);
}

static enum mqim_msg_state state_of(struct tc *t, const uint8_t id[16])
{
	enum mqim_msg_state st = MQIM_MSG_UNKNOWN;
	assert_int_equal(mqim_message_state(t->c, id, &st), MQIM_OK);
	return st;
}

/* Send text to gid once bob is surely subscribed: a first message must
 * reach him.  Returns with bob holding it. */
static void send_seen_by_bob(struct tc *a, struct tc *b, const char *gid, const char *text,
			     uint8_t id[16])
{
	size_t before = tc_nmsgs(b);
	tc_sleep(300);   /* let the subscriptions land */
	assert_int_equal(mqim_send(a->c, gid, true, NULL, text, strlen(text), 1, id), MQIM_OK);
	assert_true(tc_wait_msgs(b, before + 1, WAIT_MS));
	assert_int_equal(tc_copies(b, id), 1);
}

static void test_member_first_login_later(void **state)
{
	const char *const team[] = { "alice", "bob", "carol", NULL };
	struct duo d;
	struct tc c;
	char dc[256];
	uint8_t id[16];
	(void)state;

	duo_open(&d, "team", 100);
	tc_tmpdir(dc, sizeof dc, "carol");
	/* The roster is set, then alice restarts: it is kept in her folder. */
	assert_int_equal(mqim_set_group_members(d.a.c, "team", team), MQIM_OK);
	tc_close(&d.a);
	member_open(&d.a, "alice", d.da, "team", 100);

	send_seen_by_bob(&d.a, &d.b, "team", "for all three", id);
	/* bob's receipt is in, carol has never logged in: still SENT, still
	 * in the outbox, resent (marked) every RESEND_MS; bob drops the copies. */
	tc_sleep(3 * RESEND_MS);
	assert_int_equal(state_of(&d.a, id), MQIM_MSG_SENT);
	assert_int_equal(tc_outbox_rows(&d.a), 1);
	pthread_mutex_lock(&d.a.mu);
	assert_int_not_equal(tc_msg_state_locked(&d.a, id), MQIM_MSG_DELIVERED);
	pthread_mutex_unlock(&d.a.mu);
	assert_int_equal(tc_copies(&d.b, id), 1);

	/* carol's first login: a resend reaches her, once; then DELIVERED. */
	member_open(&c, "carol", dc, "team", 100);
	assert_true(tc_wait_msgs(&c, 1, WAIT_MS));
	assert_true(tc_wait_msg_state(&d.a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	assert_int_equal(state_of(&d.a, id), MQIM_MSG_DELIVERED);
	tc_sleep(3 * RESEND_MS);   /* no resend after DELIVERED, no second copy */
	assert_int_equal(tc_copies(&c, id), 1);
	assert_int_equal(tc_copies(&d.b, id), 1);
	assert_int_equal(tc_nmsgs(&c), 1);
	assert_string_equal(c.msgs[0].body, "for all three");
	assert_int_equal(tc_outbox_rows(&d.a), 0);

	/* A read from one member, once all have it: READ. */
	assert_int_equal(mqim_mark_read(c.c, "alice", id), MQIM_OK);
	assert_true(tc_wait_msg_state(&d.a, id, MQIM_MSG_READ, WAIT_MS));

	tc_close(&c);
	tc_rmdir(dc);
	duo_close(&d);
}

/* No roster: the first receipt settles a group message (and dave, who
 * never logged in, will never get it). */
static void test_without_roster_first_receipt(void **state)
{
	const char *const crew[] = { "alice", "bob", "dave", NULL };
	struct duo d;
	uint8_t id[16];
	(void)state;

	duo_open(&d, "crew", 100);
	send_seen_by_bob(&d.a, &d.b, "crew", "first receipt wins", id);
	assert_true(tc_wait_msg_state(&d.a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	assert_int_equal(tc_outbox_rows(&d.a), 0);

	/* A roster, then forgotten again: the same. */
	assert_int_equal(mqim_set_group_members(d.a.c, "crew", crew), MQIM_OK);
	assert_int_equal(mqim_set_group_members(d.a.c, "crew", NULL), MQIM_OK);
	send_seen_by_bob(&d.a, &d.b, "crew", "forgotten roster", id);
	assert_true(tc_wait_msg_state(&d.a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	duo_close(&d);
}

/* A member who never comes: the budget runs out, FAILED (ETIMEOUT) as for
 * any message; the message stays in the outbox for mqim_retry(). */
static void test_budget_spent_failed(void **state)
{
	const char *const crew[] = { "alice", "bob", "dave", NULL };
	struct duo d;
	uint8_t id[16];
	(void)state;

	duo_open(&d, "crew", 2);
	assert_int_equal(mqim_set_group_members(d.a.c, "crew", crew), MQIM_OK);
	send_seen_by_bob(&d.a, &d.b, "crew", "dave never comes", id);
	assert_true(tc_wait_msg_state(&d.a, id, MQIM_MSG_FAILED, WAIT_MS));
	pthread_mutex_lock(&d.a.mu);
	for (size_t i = 0; i < d.a.nms; i++)
		if (memcmp(d.a.ms[i].id, id, 16) == 0)
			assert_int_equal(d.a.ms[i].err, MQIM_ETIMEOUT);
	pthread_mutex_unlock(&d.a.mu);
	assert_int_equal(tc_outbox_rows(&d.a), 1);
	assert_int_equal(tc_copies(&d.b, id), 1);
	duo_close(&d);
}

static void test_bad_arguments(void **state)
{
	const char *const bad[] = { "bob", "not a name", NULL };
	const char *const ok[] = { "bob", NULL };
	struct tc a;
	char da[256];
	(void)state;

	tc_tmpdir(da, sizeof da, "alice");
	tc_init(&a);
	struct mqim_options o;
	tc_options(&o, broker.port, "alice", PW, da);
	assert_int_equal(tc_create(&a, &o), MQIM_OK);   /* not connected: fine */
	assert_int_equal(mqim_set_group_members(NULL, "team", ok), MQIM_EINVAL);
	assert_int_equal(mqim_set_group_members(a.c, "bad/gid", ok), MQIM_EBADNAME);
	assert_int_equal(mqim_set_group_members(a.c, NULL, ok), MQIM_EBADNAME);
	assert_int_equal(mqim_set_group_members(a.c, "team", bad), MQIM_EBADNAME);
	assert_int_equal(mqim_set_group_members(a.c, "team", ok), MQIM_OK);
	tc_close(&a);
	tc_rmdir(da);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_member_first_login_later),
		cmocka_unit_test(test_without_roster_first_receipt),
		cmocka_unit_test(test_budget_spent_failed),
		cmocka_unit_test(test_bad_arguments),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
