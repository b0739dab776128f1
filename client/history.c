/* history.c - the local conversation history; see history.h. */
#include <stdio.h>
#include <string.h>

#include "history.h"

int mqim__msg_state_merge(int cur, int next)
{
	switch (next) {
	case MQIM_MSG_QUEUED:
		return cur == MQIM_MSG_FAILED || cur == MQIM_MSG_UNKNOWN ? next : cur;
	case MQIM_MSG_SENT:
		return cur == MQIM_MSG_QUEUED || cur == MQIM_MSG_UNKNOWN ? next : cur;
	case MQIM_MSG_DELIVERED:
		return cur == MQIM_MSG_QUEUED || cur == MQIM_MSG_SENT ||
		       cur == MQIM_MSG_FAILED || cur == MQIM_MSG_UNKNOWN ? next : cur;
	case MQIM_MSG_READ:
		return next;
	case MQIM_MSG_FAILED:
		return cur == MQIM_MSG_QUEUED || cur == MQIM_MSG_SENT ? next : cur;
	default:
		return cur;
	}
}

/* The state of a history row as the application sees it: a QUEUED
 * message of ours whose outbox row is SENT is SENT (history.h). */
#define SHOWN_STATE "CASE WHEN h.state=1 AND h.outgoing<>0 AND EXISTS(SELECT 1 FROM outbox o" \
		    " WHERE o.id=h.id AND o.state=2) THEN 2 ELSE h.state END"

/* The values of a new row (bind_new). */
#define INS_COLS 11

int mqim__hist_open(struct mqim__history *h, struct mqim__db *db)
{
	_Static_assert(MQIM_MSG_QUEUED == 1 && MQIM_MSG_SENT == 2, "SHOWN_STATE");
	struct { const char *sql; sqlite3_stmt **st; } stmts[] = {
		{ "INSERT OR IGNORE INTO history(fr, id, peer, is_group, to_, ts, bts, ct, body,"
		  " outgoing, state) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)", &h->ins },
		{ "SELECT state, outgoing, peer, is_group FROM history WHERE fr=?1 AND id=?2", &h->get },
		{ "UPDATE history SET state=?3 WHERE fr=?1 AND id=?2", &h->set },
		{ "SELECT fr, id, to_, is_group, ts, bts, ct, body, outgoing, " SHOWN_STATE
		  " FROM history h WHERE peer=?1 AND is_group=?2 AND (bts<?3 OR (bts=?3 AND id<?4))"
		  " ORDER BY bts DESC, id DESC LIMIT ?5", &h->page },
		{ "SELECT " SHOWN_STATE ", outgoing FROM history h WHERE fr=?1 AND id=?2", &h->shown },
	};
	memset(h, 0, sizeof *h);
	h->db = db;
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		int rc = mqim__db_prepare(db, stmts[i].sql, stmts[i].st);
		if (rc != MQIM_OK) {
			mqim__hist_close(h);
			return rc;
		}
	}
	int rc = mqim__db_prepare_rows(db, "INSERT OR IGNORE INTO history(fr, id, peer, is_group, to_,"
				       " ts, bts, ct, body, outgoing, state) VALUES ", MQIM__DB_ROWS,
				       INS_COLS, "", &h->ins_many);
	if (rc != MQIM_OK)
		mqim__hist_close(h);
	return rc;
}

void mqim__hist_close(struct mqim__history *h)
{
	sqlite3_finalize(h->ins);
	sqlite3_finalize(h->get);
	sqlite3_finalize(h->set);
	sqlite3_finalize(h->page);
	sqlite3_finalize(h->shown);
	sqlite3_finalize(h->ins_many);
	memset(h, 0, sizeof *h);
}

/* Bind m (in conversation peer) as INS_COLS values from parameter at + 1 on. */
static void bind_new(sqlite3_stmt *st, int at, const char *peer, const struct mqim_message *m)
{
	sqlite3_bind_text(st, at + 1, m->from, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, at + 2, m->id, 16, SQLITE_STATIC);
	sqlite3_bind_text(st, at + 3, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, at + 4, m->is_group);
	sqlite3_bind_text(st, at + 5, m->to, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, at + 6, (sqlite3_int64)m->ts);
	sqlite3_bind_int64(st, at + 7, (sqlite3_int64)m->bts);
	if (m->content_type && strcmp(m->content_type, "text/plain") != 0)
		sqlite3_bind_text(st, at + 8, m->content_type, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, at + 8);
	sqlite3_bind_blob(st, at + 9, m->body ? m->body : "", (int)m->body_len, SQLITE_STATIC);
	sqlite3_bind_int(st, at + 10, m->outgoing);
	sqlite3_bind_int(st, at + 11, m->state);
}

int mqim__hist_add_many(struct mqim__history *h, const char *const *peers,
			const struct mqim_message *ms, size_t n)
{
	int rc = MQIM_OK;
	for (size_t i = 0; rc == MQIM_OK && i < n;) {
		size_t k = n - i >= MQIM__DB_ROWS ? MQIM__DB_ROWS : 1;
		sqlite3_stmt *st = k > 1 ? h->ins_many : h->ins;
		for (size_t j = 0; j < k; j++)
			bind_new(st, (int)(j * INS_COLS), peers[i + j], &ms[i + j]);
		rc = mqim__db_step_done(st);
		if (rc == MQIM_OK && (size_t)sqlite3_changes(h->db->h) != k)
			rc = MQIM_EEXISTS;
		i += k;
	}
	return rc;
}

int mqim__hist_add(struct mqim__history *h, const char *peer, const struct mqim_message *m)
{
	return mqim__hist_add_many(h, &peer, m, 1);
}

int mqim__hist_get(struct mqim__history *h, const char *fr, const uint8_t id[16],
		   int *state, bool *outgoing, char *peer, bool *is_group)
{
	sqlite3_stmt *st = h->get;
	sqlite3_bind_text(st, 1, fr, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC);
	int s = sqlite3_step(st);
	int rc = s == SQLITE_DONE ? MQIM_ENOTFOUND : mqim__db_err(s);
	if (s == SQLITE_ROW) {
		if (state)
			*state = sqlite3_column_int(st, 0);
		if (outgoing)
			*outgoing = sqlite3_column_int(st, 1) != 0;
		if (peer)
			snprintf(peer, 65, "%s", (const char *)sqlite3_column_text(st, 2));
		if (is_group)
			*is_group = sqlite3_column_int(st, 3) != 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int mqim__hist_state(struct mqim__history *h, const char *fr, const uint8_t id[16],
		     int *state, bool *outgoing)
{
	sqlite3_stmt *st = h->shown;
	sqlite3_bind_text(st, 1, fr, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, id, 16, SQLITE_STATIC);
	int s = sqlite3_step(st);
	int rc = s == SQLITE_DONE ? MQIM_ENOTFOUND : mqim__db_err(s);
	if (s == SQLITE_ROW) {
		*state = sqlite3_column_int(st, 0);
		*outgoing = sqlite3_column_int(st, 1) != 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

int mqim__hist_set_state(struct mqim__history *h, const char *fr, const uint8_t id[16], int state)
{
	sqlite3_bind_text(h->set, 1, fr, -1, SQLITE_STATIC);
	sqlite3_bind_blob(h->set, 2, id, 16, SQLITE_STATIC);
	sqlite3_bind_int(h->set, 3, state);
	return mqim__db_step_done(h->set);
}

int mqim__hist_page(struct mqim__history *h, const char *peer, bool is_group,
		    uint64_t before_bts, const uint8_t *before_id, unsigned limit,
		    mqim_message_cb cb, void *ctx)
{
	static const uint8_t max_id[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	static const uint8_t zero_id[16];
	sqlite3_stmt *st = h->page;
	int count = 0, rc = 0, s;

	if (before_bts == 0 || before_bts > (uint64_t)INT64_MAX) {
		before_bts = (uint64_t)INT64_MAX;
		before_id = max_id;
	} else if (!before_id) {
		before_id = zero_id;  /* strictly before before_bts */
	}
	sqlite3_bind_text(st, 1, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, is_group);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)before_bts);
	sqlite3_bind_blob(st, 4, before_id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, limit);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct mqim_message m;
		memset(&m, 0, sizeof m);
		m.kind = "msg";
		m.from = (const char *)sqlite3_column_text(st, 0);
		const void *id = sqlite3_column_blob(st, 1);
		if (id && sqlite3_column_bytes(st, 1) == 16)
			memcpy(m.id, id, 16);
		m.to = (const char *)sqlite3_column_text(st, 2);
		m.is_group = sqlite3_column_int(st, 3) != 0;
		m.ts = (uint64_t)sqlite3_column_int64(st, 4);
		m.bts = (uint64_t)sqlite3_column_int64(st, 5);
		m.content_type = (const char *)sqlite3_column_text(st, 6);
		if (!m.content_type)
			m.content_type = "text/plain";
		/* column_text gives the bytes NUL-terminated, as promised. */
		m.body = sqlite3_column_text(st, 7);
		m.body_len = (size_t)sqlite3_column_bytes(st, 7);
		if (!m.body)
			m.body = "";
		m.outgoing = sqlite3_column_int(st, 8) != 0;
		m.state = (enum mqim_msg_state)sqlite3_column_int(st, 9);
		if (!m.from)
			m.from = "";
		if (!m.to)
			m.to = "";
		count++;
		rc = cb(ctx, &m);
		if (rc != 0)
			break;
	}
	if (rc == 0 && s != SQLITE_DONE && s != SQLITE_ROW)
		rc = mqim__db_err(s);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc != 0 ? rc : count;
}
