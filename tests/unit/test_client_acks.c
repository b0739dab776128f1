/* test_client_acks.c - the acknowledgements that wait in memory
 * (client/obmem.h) and their bulk write before a commit
 * (mqim__acks_flush in client/send.c).
 *
 * The write before a commit feeds the link between its statements
 * (mqim__pump_midwork), which settles the acknowledgements that arrived
 * meanwhile in memory.  Those must be written before the commit too: left
 * for later, they waited for a transaction that nothing might start, their
 * rows QUEUED on disk, neither in flight nor fresh, with `below` false, so
 * that the pump never read them and the application never heard SENT (the
 * tail of an mqim-bench client run, 2 runs in 80, stuck that way).
 *
 * The client is a bare struct (no thread, no paho handle): a database, an
 * outbox, in-flight slots, and acknowledgement events queued as link.c
 * posts them.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

/* Acknowledgements waiting in memory: more than one bulk statement's, so
 * that the write feeds the link once between two statements. */
#define N_WAITING (MQIM__DB_BULK + 1)
/* Publishes in flight whose acknowledgements arrive during that write. */
#define N_ARRIVING 8
#define N_ROWS (N_WAITING + N_ARRIVING)

struct fixture {
	char dir[256];
	mqim_client *c;
	int64_t seq[N_ROWS];
	uint8_t id[N_ROWS][16];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/mqim-ut-acks-XXXXXX");
	mqim_client *c = f->c = calloc(1, sizeof *c);
	if (!c || !mkdtemp(f->dir) ||
	    mqim__db_open(&c->db, f->dir, MQIM_DB_NOSYNC, err, sizeof err) != MQIM_OK ||
	    mqim__ob_open(&c->ob, &c->db) != MQIM_OK)
		return -1;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->wake, NULL);
	mqim__obmem_init(&c->obmem, MQIM__OBMEM_MAX_BYTES);
	c->obmem.below = false;
	c->obcfg.resend_timeout_ms = 60000;
	c->obcfg.max_resends = 3;
	c->st = MQIM_STATE_CONNECTED;   /* c->h NULL: nothing is published */
	c->store_retry_at = INT64_MAX;
	c->next_due = INT64_MAX;
	c->epoch = 3;
	c->window = 20;
	c->nslots = c->window + 2;
	c->slots = calloc(c->nslots, sizeof *c->slots);
	if (!c->slots)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mqim_client *c = f->c;
	char cmd[300];
	while (c->q_head) {
		struct mqim__ev *ev = c->q_head;
		c->q_head = ev->next;
		free(ev);
	}
	while (c->n_head) {
		struct mqim__note *n = c->n_head;
		c->n_head = n->next;
		free(n);
	}
	mqim__obmem_free(&c->obmem);
	free(c->slots);
	mqim__ob_close(&c->ob);
	mqim__db_close(&c->db);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->mu);
	free(c);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

/* N_ROWS messages in the outbox, QUEUED, committed. */
static void add_rows(struct fixture *f)
{
	mqim_client *c = f->c;
	assert_int_equal(mqim__db_begin(&c->db), MQIM_OK);
	for (int i = 0; i < N_ROWS; i++) {
		char payload[32];
		struct mqim__ob_row r;
		memset(&r, 0, sizeof r);
		f->id[i][0] = 0xac;
		f->id[i][14] = (uint8_t)(i >> 8);
		f->id[i][15] = (uint8_t)i;
		memcpy(r.id, f->id[i], 16);
		r.kind = MQIM_OB_MSG;
		r.peer = "bob";
		r.qos = 1;
		snprintf(payload, sizeof payload, "message %d", i);
		r.payload = payload;
		r.len = strlen(payload);
		r.created = 1000 + i;
		assert_int_equal(mqim__ob_add(&c->ob, &r), MQIM_OK);
		f->seq[i] = r.seq;
	}
	assert_int_equal(mqim__db_commit(&c->db), MQIM_OK);
}

/* Row i was published from memory on this connection and waits in a slot;
 * its PUBACK 0x00 is queued, as link.c's paho callback posts it. */
static void in_flight_then_acked(struct fixture *f, int i)
{
	mqim_client *c = f->c;
	unsigned s = c->inflight_n;
	assert_true(s < c->nslots);
	c->slots[s] = (struct mqim__slot){ .seq = f->seq[i], .deadline = INT64_MAX, .used = true,
					   .known = true, .kind = MQIM_OB_MSG, .qos = 1,
					   .fsm = { MQIM_MSG_QUEUED, 1, 0, 0 } };
	c->inflight_n++;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_PUB_DONE, 0);
	assert_non_null(ev);
	ev->epoch = c->epoch;
	ev->seq = f->seq[i];
	memcpy(ev->id, f->id[i], 16);
	ev->ok = true;
	if (c->q_tail)
		c->q_tail->next = ev;
	else
		c->q_head = ev;
	c->q_tail = ev;
}

static int64_t count_state(mqim_client *c, int state)
{
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_prepare_v2(c->db.h, "SELECT count(*) FROM outbox WHERE state=?1",
					    -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, state);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

static size_t sent_notes(mqim_client *c)
{
	size_t n = 0;
	for (const struct mqim__note *note = c->n_head; note; note = note->next)
		if (note->type == MQIM_NOTE_MSG_STATE && note->state == MQIM_MSG_SENT)
			n++;
	return n;
}

/* N_WAITING acknowledgements waiting in memory, N_ARRIVING rows in flight
 * whose PUBACKs are queued. */
static void waiting_and_arriving(struct fixture *f)
{
	mqim_client *c = f->c;
	add_rows(f);
	for (int i = 0; i < N_WAITING; i++)
		assert_true(mqim__obmem_ack(&c->obmem, f->seq[i], f->id[i]));
	for (int i = N_WAITING; i < N_ROWS; i++)
		in_flight_then_acked(f, i);
}

/* The write before a commit (commit_tx: mqim__acks_flush(c, true), then
 * COMMIT) leaves no acknowledgement in memory, those that the link fed
 * between its statements included: every row is SENT in what is
 * committed, and every message reported SENT. */
static void test_flush_before_commit_writes_what_came_meanwhile(void **state)
{
	struct fixture *f = *state;
	mqim_client *c = f->c;

	waiting_and_arriving(f);
	assert_true(mqim__ack_simple(c, c->q_head));

	/* A lazy transaction open, as the library thread commits it. */
	assert_int_equal(mqim__db_begin(&c->db), MQIM_OK);
	assert_int_equal(mqim__acks_flush(c, true), MQIM_OK);
	/* The link was fed: the acknowledgements that arrived are settled. */
	assert_null(c->q_head);
	assert_int_equal(c->inflight_n, 0);
	/* ... and written, not left for a transaction nothing may start. */
	assert_int_equal(c->obmem.nacked, 0);
	assert_int_equal(mqim__db_commit(&c->db), MQIM_OK);
	mqim__obmem_commit(&c->obmem, true);

	assert_int_equal(count_state(c, MQIM_MSG_QUEUED), 0);
	assert_int_equal(count_state(c, MQIM_MSG_SENT), N_ROWS);
	assert_int_equal(sent_notes(c), N_ROWS);
	assert_false(c->obmem.below);
	assert_true(c->next_due != INT64_MAX);
}

/* Without feeding the link the write is what it was: the waiting
 * acknowledgements only, the queue untouched. */
static void test_flush_without_pump(void **state)
{
	struct fixture *f = *state;
	mqim_client *c = f->c;

	waiting_and_arriving(f);

	assert_int_equal(mqim__db_begin(&c->db), MQIM_OK);
	assert_int_equal(mqim__acks_flush(c, false), MQIM_OK);
	assert_int_equal(mqim__db_commit(&c->db), MQIM_OK);
	assert_int_equal(c->obmem.nacked, 0);
	assert_non_null(c->q_head);
	assert_int_equal(c->inflight_n, N_ARRIVING);
	assert_int_equal(count_state(c, MQIM_MSG_SENT), N_WAITING);
	assert_int_equal(count_state(c, MQIM_MSG_QUEUED), N_ARRIVING);
	assert_int_equal(sent_notes(c), N_WAITING);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flush_before_commit_writes_what_came_meanwhile,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_without_pump, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
