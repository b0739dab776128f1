/* test_client_obmem.c - the outbox's working state in memory
 * (client/obmem.c): fresh rows through commits and undos, the cap, the
 * bound of what the pump reads from the database, acknowledgements. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "obmem.h"

static void add(struct mqim__obmem *m, int64_t seq)
{
	char payload[32];
	struct mqim__ob_row r;
	memset(&r, 0, sizeof r);
	r.seq = seq;
	r.id[15] = (uint8_t)seq;
	r.kind = MQIM_OB_MSG;
	r.peer = "bob";
	r.qos = 1;
	snprintf(payload, sizeof payload, "payload %d", (int)seq);
	r.payload = payload;
	r.len = strlen(payload);
	r.fsm.state = MQIM_MSG_QUEUED;
	mqim__obmem_add(m, &r);
	memset(payload, 0, sizeof payload);   /* no reference kept */
}

static void test_commit_and_pop(void **state)
{
	struct mqim__obmem m;
	(void)state;
	mqim__obmem_init(&m, 1 << 20);
	assert_true(m.below);   /* at start the database may hold anything */
	assert_int_equal(mqim__obmem_bound(&m), INT64_MAX);
	add(&m, 5);
	add(&m, 6);
	/* Tentative rows are not the pump's yet, but bound the database's. */
	assert_null(mqim__obmem_head(&m));
	assert_int_equal(mqim__obmem_bound(&m), 5);
	mqim__obmem_commit(&m, true);
	struct mqim__fresh *f = mqim__obmem_head(&m);
	assert_non_null(f);
	assert_int_equal(f->r.seq, 5);
	assert_string_equal(f->r.peer, "bob");
	assert_memory_equal(f->r.payload, "payload 5", 9);
	assert_int_equal(f->r.fsm.state, MQIM_MSG_QUEUED);
	add(&m, 7);   /* behind the committed ones */
	mqim__obmem_pop(&m);
	assert_int_equal(mqim__obmem_head(&m)->r.seq, 6);
	assert_int_equal(mqim__obmem_bound(&m), 6);
	mqim__obmem_commit(&m, true);
	mqim__obmem_pop(&m);
	assert_int_equal(mqim__obmem_head(&m)->r.seq, 7);
	mqim__obmem_pop(&m);
	assert_null(mqim__obmem_head(&m));
	assert_int_equal(m.bytes, 0);
	mqim__obmem_pop(&m);   /* empty: nothing happens */
	mqim__obmem_free(&m);
}

static void test_rollback_and_undo(void **state)
{
	struct mqim__obmem m;
	uint8_t id[16] = { 1 };
	(void)state;
	mqim__obmem_init(&m, 1 << 20);
	m.below = false;
	add(&m, 1);
	mqim__obmem_commit(&m, true);
	/* A failed commit drops its rows and the acknowledgements. */
	add(&m, 2);
	assert_true(mqim__obmem_ack(&m, 1, id));
	mqim__obmem_commit(&m, false);
	assert_int_equal(m.nacked, 0);
	assert_int_equal(mqim__obmem_head(&m)->r.seq, 1);
	assert_null(mqim__obmem_head(&m)->next);
	assert_true(m.below);   /* the acknowledged rows are QUEUED again */
	m.below = false;
	/* Undone work forgets everything: the database is read again. */
	add(&m, 3);
	assert_true(mqim__obmem_ack(&m, 1, id));
	mqim__obmem_forget(&m);
	assert_null(mqim__obmem_head(&m));
	assert_true(m.below);
	assert_int_equal(mqim__obmem_bound(&m), INT64_MAX);
	assert_int_equal(m.nacked, 1);   /* acknowledgements stay */
	mqim__obmem_commit(&m, true);
	assert_null(mqim__obmem_head(&m));
	mqim__obmem_free(&m);
}

static void test_cap(void **state)
{
	struct mqim__obmem m;
	(void)state;
	mqim__obmem_init(&m, 3 * (sizeof(struct mqim__fresh) + 4 + 9));
	m.below = false;
	for (int i = 1; i <= 5; i++)
		add(&m, i);
	mqim__obmem_commit(&m, true);
	/* The oldest went; the database holds them below the new head. */
	assert_true(m.below);
	assert_int_equal(mqim__obmem_head(&m)->r.seq, 3);
	assert_true(m.bytes <= m.max_bytes);
	mqim__obmem_free(&m);
}

static void test_acks(void **state)
{
	struct mqim__obmem m;
	uint8_t id[16];
	(void)state;
	mqim__obmem_init(&m, 1 << 20);
	for (int i = 0; i < 1000; i++) {
		memset(id, 0, sizeof id);
		id[0] = (uint8_t)i;
		assert_true(mqim__obmem_ack(&m, i, id));
	}
	assert_int_equal(m.nacked, 1000);
	assert_int_equal(m.acked_seq[999], 999);
	assert_int_equal(m.acked_id[999][0], (uint8_t)999);
	mqim__obmem_acks_clear(&m);
	assert_int_equal(m.nacked, 0);
	assert_true(mqim__obmem_ack(&m, 7, id));
	assert_int_equal(m.acked_seq[0], 7);
	mqim__obmem_acks_clear(&m);
	assert_int_equal(m.nacked, 0);
	mqim__obmem_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_and_pop),
		cmocka_unit_test(test_rollback_and_undo),
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_acks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
