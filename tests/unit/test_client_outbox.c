/* test_client_outbox.c - the outbox state machine (mqim__ob_step) and its
 * SQLite rows (client/outbox.c), a full disk included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "outbox.h"

static const struct mqim__ob_cfg cfg = { 15000, 3 };

/* ---- the state machine ---------------------------------------------------- */

static struct mqim__ob_fsm queued(void)
{
	struct mqim__ob_fsm s = { MQIM_MSG_QUEUED, 0, 0, 0 };
	return s;
}

static void test_fsm_happy_path(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns = -1;
	(void)state;
	/* A QUEUED row's publish is not written (outbox.h, Resends). */
	unsigned a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 1000, &ns);
	assert_int_equal(a, 0);
	assert_int_equal(s.attempts, 1);
	assert_int_equal(s.state, MQIM_MSG_QUEUED);
	a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK, 1100, &ns);
	assert_int_equal(a, MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_SENT);
	assert_int_equal(s.state, MQIM_MSG_SENT);
	assert_int_equal(s.next_at, 1100 + 15000);
	a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_RCPT, 1200, &ns);
	assert_int_equal(a, MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_DELIVERED);
}

static void test_fsm_resends_then_fails(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns;
	int64_t t = 0;
	(void)state;
	mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_PUBLISH, t, &ns);
	mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_ACK, t, &ns);
	/* Not due yet. */
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_DUE, t + 14999, &ns),
			 MQIM_OB_ACT_INVALID);
	for (int i = 0; i < 3; i++) {
		t = s.next_at;
		assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_DUE, t, &ns),
				 MQIM_OB_ACT_PUBLISH);
		/* A receipt-driven resend goes marked (mqim-resend). */
		assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_PUBLISH, t, &ns),
				 MQIM_OB_ACT_SAVE | MQIM_OB_ACT_MARK);
		/* While the resend is in flight it is not due again. */
		assert_true(s.next_at > t);
		unsigned a = mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_ACK, t + 10, &ns);
		assert_int_equal(a, MQIM_OB_ACT_SAVE);   /* no second "sent" */
		assert_int_equal(s.state, MQIM_MSG_SENT);
	}
	assert_int_equal(s.attempts, 4);
	unsigned a = mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_DUE, s.next_at, &ns);
	assert_int_equal(a, MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_FAILED);
	assert_int_equal(s.err, MQIM_ETIMEOUT);
	/* Failed: no publish, no due; a late receipt still lands; retry resets. */
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_PUBLISH, t, &ns),
			 MQIM_OB_ACT_INVALID);
	struct mqim__ob_fsm f = s;
	a = mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &f, MQIM_OB_EV_READ, t, &ns);
	assert_int_equal(a, MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_READ);
	a = mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_RETRY, t, &ns);
	assert_int_equal(a, MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_QUEUED);
	assert_int_equal(s.state, MQIM_MSG_QUEUED);
	assert_int_equal(s.attempts, 0);
	assert_int_equal(s.err, 0);
	/* Retry only from FAILED. */
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_RETRY, t, &ns),
			 MQIM_OB_ACT_INVALID);
}

/* A QoS 1 message published and acknowledged at 0 under c. */
static struct mqim__ob_fsm acked(const struct mqim__ob_cfg *c)
{
	struct mqim__ob_fsm s = queued();
	int ns;
	mqim__ob_step(c, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 0, &ns);
	mqim__ob_step(c, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK, 0, &ns);
	return s;
}

static void test_fsm_zero_resends(void **state)
{
	struct mqim__ob_cfg none = { 1000, 0 };
	struct mqim__ob_fsm s = acked(&none);
	int ns;
	(void)state;
	assert_int_equal(mqim__ob_step(&none, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_DUE, 1000, &ns),
			 MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_FAILED);
}

static void test_fsm_qos0_and_refusal(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns;
	(void)state;
	mqim__ob_step(&cfg, MQIM_OB_MSG, 0, &s, MQIM_OB_EV_PUBLISH, 0, &ns);
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 0, &s, MQIM_OB_EV_ACK, 0, &ns),
			 MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_SENT);

	s = queued();
	mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 0, &ns);
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_REFUSED, 0, &ns),
			 MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_FAILED);
	assert_int_equal(s.err, MQIM_EDENIED);
}

static void test_fsm_receipts(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns;
	(void)state;
	/* Receipts owed leave on their PUBACK, or when refused. */
	mqim__ob_step(&cfg, MQIM_OB_RCPT, 1, &s, MQIM_OB_EV_PUBLISH, 0, &ns);
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_RCPT, 1, &s, MQIM_OB_EV_ACK, 0, &ns),
			 MQIM_OB_ACT_DELETE);
	s = queued();
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_READ, 1, &s, MQIM_OB_EV_REFUSED, 0, &ns),
			 MQIM_OB_ACT_DELETE);
	/* A receipt cannot be acknowledged by a receipt. */
	s = queued();
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_RCPT, 1, &s, MQIM_OB_EV_RCPT, 0, &ns),
			 MQIM_OB_ACT_INVALID);
	/* A receipt may come before the broker's ack (QUEUED -> delivered). */
	s = queued();
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_RCPT, 0, &ns),
			 MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY);
}

/* A copy the broker never acknowledged goes again unmarked (its first copy
 * may be at the broker: then the de-duplication must swallow this one). */
static void test_fsm_retransmission_unmarked(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns;
	(void)state;
	for (int i = 0; i < 3; i++)   /* published, the link lost before the PUBACK */
		assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, i, &ns), 0);
	assert_int_equal(s.state, MQIM_MSG_QUEUED);
	assert_int_equal(s.attempts, 3);
	/* Receipts owed are never SENT, so never marked. */
	s = queued();
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_RCPT, 1, &s, MQIM_OB_EV_PUBLISH, 0, &ns), 0);
}

/* A row read back after a restart says attempts 0 whether or not it was
 * published: its acknowledgement counts one publish. */
static void test_fsm_ack_of_unrecorded_publish(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns;
	(void)state;
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK, 500, &ns),
			 MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(s.state, MQIM_MSG_SENT);
	assert_int_equal(s.attempts, 1);
	assert_int_equal(s.next_at, 500 + 15000);
	/* The resend budget is the same as for a row published here. */
	struct mqim__ob_fsm p = acked(&cfg);
	assert_int_equal(p.attempts, s.attempts);
}

/* PUBACK 0x10: the copy reached nobody.  SENT all the same; the first such
 * answer brings the (marked) resend forward to MQIM_OB_NOSUB_RESEND_MS,
 * later ones wait the full resend timeout; the budget counts them all. */
static void test_fsm_no_subscribers(void **state)
{
	struct mqim__ob_fsm s = queued();
	int ns = -1;
	(void)state;
	mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 1000, &ns);
	unsigned a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK_NOSUB, 1100, &ns);
	assert_int_equal(a, MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_SENT);
	assert_int_equal(s.state, MQIM_MSG_SENT);
	assert_int_equal(s.next_at, 1100 + MQIM_OB_NOSUB_RESEND_MS);
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_DUE,
				       1100 + MQIM_OB_NOSUB_RESEND_MS, &ns), MQIM_OB_ACT_PUBLISH);
	int64_t t = 1100 + MQIM_OB_NOSUB_RESEND_MS;
	for (int i = 0; i < 3; i++) {
		a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, t, &ns);
		assert_int_equal(a, MQIM_OB_ACT_SAVE | MQIM_OB_ACT_MARK);
		a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK_NOSUB, t + 5, &ns);
		assert_int_equal(a, MQIM_OB_ACT_SAVE);   /* no second "sent" */
		assert_int_equal(s.next_at, t + 5 + 15000);
		t = s.next_at;
		a = mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_DUE, t, &ns);
		if (i < 2)
			assert_int_equal(a, MQIM_OB_ACT_PUBLISH);
	}
	assert_int_equal(a, MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(ns, MQIM_MSG_FAILED);
	assert_int_equal(s.attempts, 4);

	/* Never later than the resend timeout itself. */
	struct mqim__ob_cfg quick = { 300, 3 };
	s = queued();
	mqim__ob_step(&quick, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_PUBLISH, 0, &ns);
	mqim__ob_step(&quick, MQIM_OB_MSG, 2, &s, MQIM_OB_EV_ACK_NOSUB, 0, &ns);
	assert_int_equal(s.next_at, 300);
	/* QoS 0 messages and receipts owed leave as on any acknowledgement. */
	s = queued();
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 0, &s, MQIM_OB_EV_ACK_NOSUB, 0, &ns),
			 MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY);
	s = queued();
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_RCPT, 1, &s, MQIM_OB_EV_ACK_NOSUB, 0, &ns),
			 MQIM_OB_ACT_DELETE);
	/* Not after FAILED. */
	s.state = MQIM_MSG_FAILED;
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK_NOSUB, 0, &ns),
			 MQIM_OB_ACT_INVALID);
}

/* mqim_retry() of a message that timed out (the broker had it): its
 * publishes go marked until acknowledged; after a refusal they do not. */
static void test_fsm_retry_marked(void **state)
{
	struct mqim__ob_cfg none = { 1000, 0 };
	struct mqim__ob_fsm s = acked(&none);
	int ns;
	(void)state;
	mqim__ob_step(&none, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_DUE, 1000, &ns);
	assert_int_equal(s.err, MQIM_ETIMEOUT);
	assert_int_equal(mqim__ob_step(&none, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_RETRY, 2000, &ns),
			 MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY);
	assert_int_equal(s.state, MQIM_MSG_QUEUED);
	for (int i = 0; i < 2; i++)   /* a lost PUBACK changes nothing */
		assert_int_equal(mqim__ob_step(&none, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 2000, &ns),
				 MQIM_OB_ACT_MARK);
	mqim__ob_step(&none, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_ACK, 2000, &ns);
	assert_int_equal(s.next_at, 3000);

	s = queued();
	mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 0, &ns);
	mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_REFUSED, 0, &ns);
	mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_RETRY, 0, &ns);
	assert_int_equal(mqim__ob_step(&cfg, MQIM_OB_MSG, 1, &s, MQIM_OB_EV_PUBLISH, 0, &ns), 0);
}

/* ---- the rows ------------------------------------------------------------------ */

struct fixture {
	char dir[256];
	struct mqim__db db;
	struct mqim__outbox ob;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];
	snprintf(f->dir, sizeof f->dir, "/tmp/mqim-ut-outbox-XXXXXX");
	if (!mkdtemp(f->dir) ||
	    mqim__db_open(&f->db, f->dir, MQIM_DB_NOSYNC, err, sizeof err) != MQIM_OK ||
	    mqim__ob_open(&f->ob, &f->db) != MQIM_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];
	mqim__ob_close(&f->ob);
	mqim__db_close(&f->db);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void make_row(struct mqim__ob_row *r, int i, int kind)
{
	static char payload[64];
	memset(r, 0, sizeof *r);
	memset(r->id, 0, 16);
	r->id[0] = (uint8_t)kind;
	r->id[15] = (uint8_t)i;
	r->kind = kind;
	r->peer = "bob";
	r->qos = 1;
	snprintf(payload, sizeof payload, "payload %d", i);
	r->payload = payload;
	r->len = strlen(payload);
	r->created = 1000 + i;
}

struct seen_rows {
	int n;
	int64_t seqs[32];
	char payloads[32][32];
};

static int due_cb(void *ctx, struct mqim__ob_row *r)
{
	struct seen_rows *s = ctx;
	s->seqs[s->n] = r->seq;
	snprintf(s->payloads[s->n], sizeof s->payloads[0], "%.*s", (int)r->len, (const char *)r->payload);
	s->n++;
	return 0;
}

static void test_rows_order_and_due(void **state)
{
	struct fixture *f = *state;
	struct mqim__ob_row r;
	for (int i = 0; i < 5; i++) {
		make_row(&r, i, MQIM_OB_MSG);
		assert_int_equal(mqim__ob_add(&f->ob, &r), MQIM_OK);
		assert_int_equal(r.fsm.state, MQIM_MSG_QUEUED);
	}
	make_row(&r, 0, MQIM_OB_MSG);
	assert_int_equal(mqim__ob_add(&f->ob, &r), MQIM_EEXISTS);   /* same id */
	make_row(&r, 9, MQIM_OB_RCPT);
	assert_int_equal(mqim__ob_add(&f->ob, &r), MQIM_OK);
	assert_int_equal(mqim__ob_count(&f->ob), 6);

	struct seen_rows s = { 0 };
	bool all = false;
	assert_int_equal(mqim__ob_due(&f->ob, 0, INT64_MAX, 100, due_cb, &s, &all), MQIM_OK);
	assert_int_equal(s.n, 6);
	assert_true(all);
	for (int i = 1; i < s.n; i++)
		assert_true(s.seqs[i] > s.seqs[i - 1]);
	assert_string_equal(s.payloads[0], "payload 0");
	/* The limit. */
	struct seen_rows s2 = { 0 };
	mqim__ob_due(&f->ob, 0, INT64_MAX, 2, due_cb, &s2, &all);
	assert_int_equal(s2.n, 2);
	assert_false(all);
	/* The bound: QUEUED rows below a seq only. */
	struct seen_rows sb = { 0 };
	mqim__ob_due(&f->ob, 0, s.seqs[3], 100, due_cb, &sb, &all);
	assert_int_equal(sb.n, 3);
	assert_true(all);

	/* Row 0 acked: SENT, due at 16000 only. */
	char peer[65];
	make_row(&r, 0, MQIM_OB_MSG);
	uint8_t id0[16];
	memcpy(id0, r.id, 16);
	assert_int_equal(mqim__ob_find(&f->ob, id0, &r, peer), MQIM_OK);
	assert_string_equal(peer, "bob");
	int ns;
	mqim__ob_step(&cfg, r.kind, r.qos, &r.fsm, MQIM_OB_EV_PUBLISH, 1000, &ns);
	mqim__ob_step(&cfg, r.kind, r.qos, &r.fsm, MQIM_OB_EV_ACK, 1000, &ns);
	assert_int_equal(mqim__ob_save(&f->ob, &r), MQIM_OK);
	assert_int_equal(mqim__ob_next_due(&f->ob), 16000);
	struct seen_rows s3 = { 0 };
	mqim__ob_due(&f->ob, 15999, INT64_MAX, 100, due_cb, &s3, NULL);
	assert_int_equal(s3.n, 5);
	struct seen_rows s4 = { 0 };
	mqim__ob_due(&f->ob, 16000, INT64_MAX, 100, due_cb, &s4, NULL);
	assert_int_equal(s4.n, 6);
	/* SENT rows due are not bound by the seq of the fresh rows. */
	struct seen_rows s4b = { 0 };
	mqim__ob_due(&f->ob, 16000, 0, 100, due_cb, &s4b, &all);
	assert_int_equal(s4b.n, 1);
	assert_true(all);

	/* Listing shows messages only, receipts owed are not listed. */
	struct seen_rows s5 = { 0 };
	mqim__ob_list(&f->ob, due_cb, &s5);
	assert_int_equal(s5.n, 5);

	/* Persisted: the saved fsm comes back. */
	assert_int_equal(mqim__ob_find(&f->ob, id0, &r, peer), MQIM_OK);
	assert_int_equal(r.fsm.state, MQIM_MSG_SENT);
	assert_int_equal(r.fsm.attempts, 1);
	assert_int_equal(mqim__ob_delete(&f->ob, r.seq), MQIM_OK);
	assert_int_equal(mqim__ob_find(&f->ob, id0, &r, peer), MQIM_ENOTFOUND);
	assert_int_equal(mqim__ob_next_due(&f->ob), INT64_MAX);
}

/* The first acknowledgements, written in bulk: QUEUED rows only. */
static void test_rows_sent_bulk(void **state)
{
	struct fixture *f = *state;
	struct mqim__ob_row r;
	int64_t seqs[MQIM__DB_BULK];
	uint8_t ids[3][16];
	char peer[65];
	for (int i = 0; i < 3; i++) {
		make_row(&r, i, MQIM_OB_MSG);
		assert_int_equal(mqim__ob_add(&f->ob, &r), MQIM_OK);
		seqs[i] = r.seq;
		memcpy(ids[i], r.id, 16);
	}
	/* Row 2 failed meanwhile: left alone. */
	assert_int_equal(mqim__ob_find(&f->ob, ids[2], &r, peer), MQIM_OK);
	r.fsm.state = MQIM_MSG_FAILED;
	r.fsm.err = MQIM_EDENIED;
	assert_int_equal(mqim__ob_save(&f->ob, &r), MQIM_OK);
	seqs[3] = 9999;   /* gone: nothing happens */
	size_t moved = 0;
	assert_int_equal(mqim__ob_sent_bulk(&f->ob, seqs, 4, 7000, &moved), MQIM_OK);
	assert_int_equal(moved, 2);
	assert_true(mqim__ob_moved(&f->ob, seqs[0], 7000));
	assert_true(mqim__ob_moved(&f->ob, seqs[1], 7000));
	assert_false(mqim__ob_moved(&f->ob, seqs[2], 7000));
	assert_false(mqim__ob_moved(&f->ob, seqs[3], 7000));
	/* Again: nothing moves. */
	assert_int_equal(mqim__ob_sent_bulk(&f->ob, seqs, 2, 8000, &moved), MQIM_OK);
	assert_int_equal(moved, 0);
	assert_false(mqim__ob_moved(&f->ob, seqs[0], 8000));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mqim__ob_find(&f->ob, ids[i], &r, peer), MQIM_OK);
		assert_int_equal(r.fsm.state, MQIM_MSG_SENT);
		assert_int_equal(r.fsm.attempts, 1);
		assert_int_equal(r.fsm.next_at, 7000);
	}
	assert_int_equal(mqim__ob_find(&f->ob, ids[2], &r, peer), MQIM_OK);
	assert_int_equal(r.fsm.state, MQIM_MSG_FAILED);
	assert_int_equal(mqim__ob_next_due(&f->ob), 7000);
	/* SENT rows are not QUEUED any more: the pump does not read them back. */
	struct seen_rows s = { 0 };
	mqim__ob_due(&f->ob, 0, INT64_MAX, 100, due_cb, &s, NULL);
	assert_int_equal(s.n, 0);
}

/* Many rows at once (MQIM__DB_ROWS per statement, the rest one by one):
 * in order, each with its seq. */
static void test_rows_add_many(void **state)
{
	struct fixture *f = *state;
	struct mqim__ob_row rows[MQIM__DB_ROWS + 3], r;
	char peer[65];
	make_row(&r, 99, MQIM_OB_RCPT);
	assert_int_equal(mqim__ob_add(&f->ob, &r), MQIM_OK);
	for (int i = 0; i < MQIM__DB_ROWS + 3; i++) {
		make_row(&rows[i], i, MQIM_OB_MSG);
		rows[i].id[14] = 1;
	}
	assert_int_equal(mqim__ob_add_many(&f->ob, rows, MQIM__DB_ROWS + 3), MQIM_OK);
	for (int i = 0; i < MQIM__DB_ROWS + 3; i++) {
		assert_int_equal(rows[i].seq, r.seq + 1 + i);
		assert_int_equal(rows[i].fsm.state, MQIM_MSG_QUEUED);
		struct mqim__ob_row back;
		assert_int_equal(mqim__ob_find(&f->ob, rows[i].id, &back, peer), MQIM_OK);
		assert_int_equal(back.seq, rows[i].seq);
	}
	/* An id already there fails the statement. */
	assert_int_equal(mqim__ob_add_many(&f->ob, rows, MQIM__DB_ROWS), MQIM_EEXISTS);
}

/* A full disk: the insert fails with MQIM_ENOSPC and nothing is kept. */
static void test_full_disk(void **state)
{
	struct fixture *f = *state;
	struct mqim__ob_row r;
	char big[4096];
	int rc = MQIM_OK, i;
	memset(big, 'x', sizeof big);
	sqlite3_exec(f->db.h, "PRAGMA max_page_count=64", NULL, NULL, NULL);
	for (i = 0; i < 1000 && rc == MQIM_OK; i++) {
		make_row(&r, i, MQIM_OB_MSG);
		r.id[14] = (uint8_t)(i >> 8);
		r.payload = big;
		r.len = sizeof big;
		assert_int_equal(mqim__db_begin(&f->db), MQIM_OK);
		rc = mqim__ob_add(&f->ob, &r);
		if (rc == MQIM_OK)
			rc = mqim__db_commit(&f->db);
		else
			mqim__db_rollback(&f->db);
	}
	assert_int_equal(rc, MQIM_ENOSPC);
	assert_int_equal(mqim__ob_count(&f->ob), i - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fsm_happy_path),
		cmocka_unit_test(test_fsm_resends_then_fails),
		cmocka_unit_test(test_fsm_zero_resends),
		cmocka_unit_test(test_fsm_qos0_and_refusal),
		cmocka_unit_test(test_fsm_receipts),
		cmocka_unit_test(test_fsm_retransmission_unmarked),
		cmocka_unit_test(test_fsm_ack_of_unrecorded_publish),
		cmocka_unit_test(test_fsm_no_subscribers),
		cmocka_unit_test(test_fsm_retry_marked),
		cmocka_unit_test_setup_teardown(test_rows_order_and_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_sent_bulk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rows_add_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
