/* test_client_history.c - the history store (client/history.c): ordering by
 * (bts, id), paging, states, and the message state merge rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "history.h"

struct fixture {
	char dir[256];
	struct mqim__db db;
	struct mqim__history h;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	char err[256];
	snprintf(f->dir, sizeof f->dir, "/tmp/mqim-ut-hist-XXXXXX");
	if (!mkdtemp(f->dir) ||
	    mqim__db_open(&f->db, f->dir, MQIM_DB_NOSYNC, err, sizeof err) != MQIM_OK ||
	    mqim__hist_open(&f->h, &f->db) != MQIM_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[300];
	mqim__hist_close(&f->h);
	mqim__db_close(&f->db);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void add(struct fixture *f, const char *from, const char *to, const char *peer,
		bool group, uint64_t bts, uint8_t idbyte, const char *body)
{
	struct mqim_message m;
	memset(&m, 0, sizeof m);
	m.id[15] = idbyte;
	m.kind = "msg";
	m.from = from;
	m.to = to;
	m.is_group = group;
	m.ts = bts - 5;
	m.bts = bts;
	m.content_type = "text/plain";
	m.body = body;
	m.body_len = strlen(body);
	m.outgoing = strcmp(from, "me") == 0;
	m.state = m.outgoing ? MQIM_MSG_QUEUED : MQIM_MSG_RECEIVED;
	assert_int_equal(mqim__hist_add(&f->h, peer, &m), MQIM_OK);
}

struct page {
	int n;
	char bodies[16][16];
	uint64_t bts;
	uint8_t id[16];
	bool nul_ok;
};

static int page_cb(void *ctx, const struct mqim_message *m)
{
	struct page *p = ctx;
	snprintf(p->bodies[p->n++], sizeof p->bodies[0], "%s", (const char *)m->body);
	p->bts = m->bts;
	memcpy(p->id, m->id, 16);
	p->nul_ok = ((const char *)m->body)[m->body_len] == '\0';
	return 0;
}

static int state_cb(void *ctx, const struct mqim_message *m)
{
	*(int *)ctx = m->state;
	return 0;
}

static void test_order_and_paging(void **state)
{
	struct fixture *f = *state;
	/* Inserted out of order; two share a bts and sort by id. */
	add(f, "bob", "me", "bob", false, 300, 3, "c");
	add(f, "me", "bob", "bob", false, 100, 1, "a");
	add(f, "bob", "me", "bob", false, 300, 2, "b2");
	add(f, "bob", "me", "bob", false, 500, 5, "e");
	add(f, "carol", "me", "carol", false, 200, 9, "other conversation");
	add(f, "bob", "team", "team", true, 250, 7, "group");

	struct page p = { 0 };
	assert_int_equal(mqim__hist_page(&f->h, "bob", false, 0, NULL, 2, page_cb, &p), 2);
	assert_string_equal(p.bodies[0], "e");
	assert_string_equal(p.bodies[1], "c");
	assert_true(p.nul_ok);
	struct page q = { 0 };
	assert_int_equal(mqim__hist_page(&f->h, "bob", false, p.bts, p.id, 10, page_cb, &q), 2);
	assert_string_equal(q.bodies[0], "b2");
	assert_string_equal(q.bodies[1], "a");
	/* Before a time with no id: strictly before it. */
	struct page r = { 0 };
	assert_int_equal(mqim__hist_page(&f->h, "bob", false, 300, NULL, 10, page_cb, &r), 1);
	assert_string_equal(r.bodies[0], "a");
	/* Group and direct conversations with the same name are apart. */
	struct page g = { 0 };
	assert_int_equal(mqim__hist_page(&f->h, "team", true, 0, NULL, 10, page_cb, &g), 1);
	struct page none = { 0 };
	assert_int_equal(mqim__hist_page(&f->h, "team", false, 0, NULL, 10, page_cb, &none), 0);
}

static void test_duplicates_and_states(void **state)
{
	struct fixture *f = *state;
	struct mqim_message m;
	int st;
	bool out, grp;
	char peer[65];
	uint8_t id[16] = { 0 };

	add(f, "me", "bob", "bob", false, 100, 1, "a");
	memset(&m, 0, sizeof m);
	m.id[15] = 1;
	m.kind = "msg";
	m.from = "me";
	m.to = "bob";
	m.body = "x";
	m.body_len = 1;
	m.content_type = "application/json";
	assert_int_equal(mqim__hist_add(&f->h, "bob", &m), MQIM_EEXISTS);
	id[15] = 1;
	assert_int_equal(mqim__hist_get(&f->h, "me", id, &st, &out, peer, &grp), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_QUEUED);
	assert_true(out);
	assert_false(grp);
	assert_string_equal(peer, "bob");
	assert_int_equal(mqim__hist_set_state(&f->h, "me", id, MQIM_MSG_DELIVERED), MQIM_OK);
	assert_int_equal(mqim__hist_get(&f->h, "me", id, &st, NULL, NULL, NULL), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_DELIVERED);
	assert_int_equal(mqim__hist_get(&f->h, "bob", id, &st, NULL, NULL, NULL), MQIM_ENOTFOUND);
}

static void test_state_merge(void **state)
{
	(void)state;
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_QUEUED, MQIM_MSG_SENT), MQIM_MSG_SENT);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_DELIVERED, MQIM_MSG_SENT), MQIM_MSG_DELIVERED);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_READ, MQIM_MSG_DELIVERED), MQIM_MSG_READ);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_SENT, MQIM_MSG_READ), MQIM_MSG_READ);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_SENT, MQIM_MSG_FAILED), MQIM_MSG_FAILED);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_DELIVERED, MQIM_MSG_FAILED), MQIM_MSG_DELIVERED);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_FAILED, MQIM_MSG_DELIVERED), MQIM_MSG_DELIVERED);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_FAILED, MQIM_MSG_QUEUED), MQIM_MSG_QUEUED);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_SENT, MQIM_MSG_QUEUED), MQIM_MSG_SENT);
	assert_int_equal(mqim__msg_state_merge(MQIM_MSG_FAILED, MQIM_MSG_SENT), MQIM_MSG_FAILED);
}

/* Our message's SENT is its outbox row's: the history row stays QUEUED
 * (history.h), and what the application is shown says SENT. */
static void test_shown_state(void **state)
{
	struct fixture *f = *state;
	uint8_t id[16] = { 0 };
	int st;
	bool out;
	add(f, "me", "bob", "bob", false, 100, 1, "a");
	id[15] = 1;
	assert_int_equal(mqim__hist_state(&f->h, "me", id, &st, &out), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_QUEUED);
	assert_true(out);
	assert_int_equal(sqlite3_exec(f->db.h, "INSERT INTO outbox(id, kind, peer, is_group, qos,"
				      " payload, state, created) VALUES(x'00000000000000000000000000000001',"
				      " 0, 'bob', 0, 1, x'00', 2, 0)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(mqim__hist_state(&f->h, "me", id, &st, &out), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_SENT);
	st = 0;
	assert_int_equal(mqim__hist_page(&f->h, "bob", false, 0, NULL, 10, state_cb, &st), 1);
	assert_int_equal(st, MQIM_MSG_SENT);
	/* The stored column is what the merge rules see. */
	assert_int_equal(mqim__hist_get(&f->h, "me", id, &st, &out, NULL, NULL), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_QUEUED);
	/* Any later state is written and shown as it is. */
	assert_int_equal(mqim__hist_set_state(&f->h, "me", id, MQIM_MSG_DELIVERED), MQIM_OK);
	assert_int_equal(mqim__hist_state(&f->h, "me", id, &st, &out), MQIM_OK);
	assert_int_equal(st, MQIM_MSG_DELIVERED);
	assert_int_equal(mqim__hist_state(&f->h, "me", (uint8_t[16]){ 9 }, &st, &out),
			 MQIM_ENOTFOUND);
}

/* Many at once: each stored; one already there fails the call. */
static void test_add_many(void **state)
{
	struct fixture *f = *state;
	struct mqim_message ms[MQIM__DB_ROWS + 2];
	const char *peers[MQIM__DB_ROWS + 2];
	memset(ms, 0, sizeof ms);
	for (int i = 0; i < MQIM__DB_ROWS + 2; i++) {
		ms[i].id[15] = (uint8_t)(i + 1);
		ms[i].kind = "msg";
		ms[i].from = "me";
		ms[i].to = "bob";
		ms[i].bts = ms[i].ts = (uint64_t)(100 + i);
		ms[i].body = "x";
		ms[i].body_len = 1;
		ms[i].outgoing = true;
		ms[i].state = MQIM_MSG_QUEUED;
		peers[i] = "bob";
	}
	assert_int_equal(mqim__hist_add_many(&f->h, peers, ms, MQIM__DB_ROWS + 2), MQIM_OK);
	struct page p = { 0 };
	assert_int_equal(mqim__hist_page(&f->h, "bob", false, 0, NULL, 16, page_cb, &p), 16);
	assert_int_equal(mqim__hist_add_many(&f->h, peers, ms + 2, MQIM__DB_ROWS), MQIM_EEXISTS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_order_and_paging, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicates_and_states, setup, teardown),
		cmocka_unit_test(test_state_merge),
		cmocka_unit_test_setup_teardown(test_shown_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_many, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
