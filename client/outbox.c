/* outbox.c - the outbox state machine and its SQLite rows; see outbox.h. */
#include <stdio.h>
#include <string.h>

#include "mqim.h"
#include "outbox.h"

unsigned mqim__ob_step(const struct mqim__ob_cfg *cfg, int kind, int qos,
		       struct mqim__ob_fsm *s, enum mqim__ob_event ev, int64_t now,
		       int *notify_state)
{
	bool live = s->state == MQIM_MSG_QUEUED || s->state == MQIM_MSG_SENT;
	bool receipt = kind != MQIM_OB_MSG;
	int ns = 0;
	unsigned act = 0;

	switch (ev) {
	case MQIM_OB_EV_PUBLISH:
		if (!live)
			return MQIM_OB_ACT_INVALID;
		s->attempts++;
		/* A receipt-driven resend (marked): the next one is due a resend
		 * timeout from now, so a publish in flight is never "due" again
		 * meanwhile.  A QUEUED row's publish is not written: published
		 * or not, it goes again (unmarked) until acknowledged. */
		if (s->state == MQIM_MSG_SENT) {
			s->next_at = now + (int64_t)cfg->resend_timeout_ms;
			act = MQIM_OB_ACT_SAVE | MQIM_OB_ACT_MARK;
		} else if (s->next_at == MQIM_OB_MARK_NEXT) {
			act = MQIM_OB_ACT_MARK;   /* until the broker acknowledges it */
		}
		break;
	case MQIM_OB_EV_ACK:
	case MQIM_OB_EV_ACK_NOSUB: {
		if (!live)
			return MQIM_OB_ACT_INVALID;
		if (receipt)
			return MQIM_OB_ACT_DELETE;
		if (qos == 0) {
			act = MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY;
			ns = MQIM_MSG_SENT;
			break;
		}
		int64_t wait = cfg->resend_timeout_ms;
		if (s->state == MQIM_MSG_QUEUED) {
			/* Its publishes were not written (a row read back from the
			 * database says 0): this one at least happened. */
			if (s->attempts == 0)
				s->attempts = 1;
			act = MQIM_OB_ACT_NOTIFY;
			ns = MQIM_MSG_SENT;
			/* The first answer says nobody got it: resend soon. */
			if (ev == MQIM_OB_EV_ACK_NOSUB && wait > MQIM_OB_NOSUB_RESEND_MS)
				wait = MQIM_OB_NOSUB_RESEND_MS;
		}
		s->state = MQIM_MSG_SENT;
		s->next_at = now + wait;
		act |= MQIM_OB_ACT_SAVE;
		break;
	}
	case MQIM_OB_EV_REFUSED:
		if (!live)
			return MQIM_OB_ACT_INVALID;
		if (receipt)
			return MQIM_OB_ACT_DELETE;
		s->state = MQIM_MSG_FAILED;
		s->err = MQIM_EDENIED;
		act = MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY;
		ns = MQIM_MSG_FAILED;
		break;
	case MQIM_OB_EV_DUE:
		if (s->state != MQIM_MSG_SENT || s->next_at > now)
			return MQIM_OB_ACT_INVALID;
		if (s->attempts > cfg->max_resends) {
			s->state = MQIM_MSG_FAILED;
			s->err = MQIM_ETIMEOUT;
			act = MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY;
			ns = MQIM_MSG_FAILED;
		} else {
			act = MQIM_OB_ACT_PUBLISH;
		}
		break;
	case MQIM_OB_EV_RCPT:
	case MQIM_OB_EV_READ:
		if (receipt)
			return MQIM_OB_ACT_INVALID;
		act = MQIM_OB_ACT_DELETE | MQIM_OB_ACT_NOTIFY;
		ns = ev == MQIM_OB_EV_RCPT ? MQIM_MSG_DELIVERED : MQIM_MSG_READ;
		break;
	case MQIM_OB_EV_RETRY:
		if (s->state != MQIM_MSG_FAILED)
			return MQIM_OB_ACT_INVALID;
		/* FAILED for want of a receipt: the broker had taken it, so
		 * the retry's first publish is a marked resend too. */
		s->next_at = s->err == MQIM_ETIMEOUT ? MQIM_OB_MARK_NEXT : 0;
		s->state = MQIM_MSG_QUEUED;
		s->attempts = 0;
		s->err = 0;
		act = MQIM_OB_ACT_SAVE | MQIM_OB_ACT_NOTIFY;
		ns = MQIM_MSG_QUEUED;
		break;
	default:
		return MQIM_OB_ACT_INVALID;
	}
	if (notify_state)
		*notify_state = ns;
	return act;
}

/* The values of a new row (bind_new). */
#define INS_COLS 8

#define ROW_COLS "seq, id, kind, peer, is_group, qos, payload, state, attempts, next_at, created, err"

int mqim__ob_open(struct mqim__outbox *ob, struct mqim__db *db)
{
	char bulk_sql[128 + 6 * MQIM__DB_BULK];
	/* "+state": by seq only; an index on state would make SQLite scan
	 * every QUEUED row. */
	int n = snprintf(bulk_sql, sizeof bulk_sql, "UPDATE outbox SET state=%d, attempts=1,"
			 " next_at=?1, err=0 WHERE +state=%d AND seq IN (?2", MQIM_MSG_SENT,
			 MQIM_MSG_QUEUED);
	for (int i = 3; i <= MQIM__DB_BULK + 1; i++)
		n += snprintf(bulk_sql + n, sizeof bulk_sql - (size_t)n, ",?%d", i);
	snprintf(bulk_sql + n, sizeof bulk_sql - (size_t)n, ")");

	struct { const char *sql; sqlite3_stmt **st; } stmts[] = {
		{ "INSERT INTO outbox(id, kind, peer, is_group, qos, payload, state, created)"
		  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)", &ob->ins },
		{ "UPDATE outbox SET state=?2, attempts=?3, next_at=?4, err=?5 WHERE seq=?1", &ob->save },
		{ "DELETE FROM outbox WHERE seq=?1", &ob->del },
		{ "SELECT " ROW_COLS " FROM outbox WHERE id=?1", &ob->by_id },
		/* The due rows are two ordered scans merged by mqim__ob_due(),
		 * each stopping at the limit: one query with an OR made SQLite
		 * sort every QUEUED row on each call (2.5 ms with 10,000 queued,
		 * per pump round), and a UNION ALL still copied the rows into
		 * temporary trees.  outbox_queue: db.c. */
		{ "SELECT " ROW_COLS " FROM outbox INDEXED BY outbox_queue WHERE state=1"
		  " AND seq<?2 ORDER BY seq LIMIT ?1", &ob->due },
		/* INDEXED BY: else SQLite scans the whole table in seq order
		 * rather than sort the few rows due (outbox_sent: db.c). */
		{ "SELECT " ROW_COLS " FROM outbox INDEXED BY outbox_sent WHERE state=2"
		  " AND next_at<=?1 ORDER BY seq LIMIT ?2", &ob->due_sent },
		{ "SELECT min(next_at) FROM outbox WHERE state=2", &ob->next_due },
		{ "SELECT " ROW_COLS " FROM outbox WHERE kind=0 ORDER BY seq", &ob->list },
		{ "SELECT count(*) FROM outbox", &ob->count },
		{ "SELECT 1 FROM outbox WHERE seq=?1 AND state=2 AND attempts=1 AND next_at=?2",
		  &ob->moved },
	};
	memset(ob, 0, sizeof *ob);
	ob->db = db;
	int rc = mqim__db_prepare(db, bulk_sql, &ob->sent_bulk);
	if (rc == MQIM_OK)
		rc = mqim__db_prepare_rows(db, "INSERT INTO outbox(id, kind, peer, is_group, qos,"
					   " payload, state, created) VALUES ", MQIM__DB_ROWS,
					   INS_COLS, "", &ob->ins_many);
	if (rc != MQIM_OK) {
		mqim__ob_close(ob);
		return rc;
	}
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		rc = mqim__db_prepare(db, stmts[i].sql, stmts[i].st);
		if (rc != MQIM_OK) {
			mqim__ob_close(ob);
			return rc;
		}
	}
	return MQIM_OK;
}

void mqim__ob_close(struct mqim__outbox *ob)
{
	sqlite3_stmt *all[] = { ob->ins, ob->save, ob->del, ob->by_id, ob->due,
				ob->due_sent, ob->next_due, ob->list, ob->count, ob->sent_bulk,
				ob->moved, ob->ins_many };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	memset(ob, 0, sizeof *ob);
}

/* Bind row r's INS_COLS values from parameter at + 1 on. */
static void bind_new(sqlite3_stmt *st, int at, const struct mqim__ob_row *r)
{
	sqlite3_bind_blob(st, at + 1, r->id, 16, SQLITE_STATIC);
	sqlite3_bind_int(st, at + 2, r->kind);
	sqlite3_bind_text(st, at + 3, r->peer, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, at + 4, r->is_group);
	sqlite3_bind_int(st, at + 5, r->qos);
	sqlite3_bind_blob(st, at + 6, r->payload, (int)r->len, SQLITE_STATIC);
	sqlite3_bind_int(st, at + 7, MQIM_MSG_QUEUED);
	sqlite3_bind_int64(st, at + 8, r->created);
}

int mqim__ob_add_many(struct mqim__outbox *ob, struct mqim__ob_row *rows, size_t n)
{
	int rc = MQIM_OK;
	for (size_t i = 0; rc == MQIM_OK && i < n;) {
		size_t k = n - i >= MQIM__DB_ROWS ? MQIM__DB_ROWS : 1;
		sqlite3_stmt *st = k > 1 ? ob->ins_many : ob->ins;
		for (size_t j = 0; j < k; j++)
			bind_new(st, (int)(j * INS_COLS), &rows[i + j]);
		rc = mqim__db_step_done(st);
		if (rc != MQIM_OK)
			break;
		/* One writer: a statement's rows get consecutive seqs. */
		int64_t last = sqlite3_last_insert_rowid(ob->db->h);
		for (size_t j = 0; j < k; j++) {
			struct mqim__ob_row *r = &rows[i + j];
			r->seq = last - (int64_t)(k - 1 - j);
			memset(&r->fsm, 0, sizeof r->fsm);
			r->fsm.state = MQIM_MSG_QUEUED;
		}
		i += k;
	}
	return rc;
}

int mqim__ob_add(struct mqim__outbox *ob, struct mqim__ob_row *r)
{
	return mqim__ob_add_many(ob, r, 1);
}

int mqim__ob_save(struct mqim__outbox *ob, const struct mqim__ob_row *r)
{
	sqlite3_stmt *st = ob->save;
	sqlite3_bind_int64(st, 1, r->seq);
	sqlite3_bind_int(st, 2, r->fsm.state);
	sqlite3_bind_int64(st, 3, r->fsm.attempts);
	sqlite3_bind_int64(st, 4, r->fsm.next_at);
	sqlite3_bind_int(st, 5, r->fsm.err);
	return mqim__db_step_done(st);
}

int mqim__ob_sent_bulk(struct mqim__outbox *ob, const int64_t *seq, size_t n, int64_t next_at,
		       size_t *moved)
{
	sqlite3_stmt *st = ob->sent_bulk;
	sqlite3_bind_int64(st, 1, next_at);
	for (size_t i = 0; i < n && i < MQIM__DB_BULK; i++)
		sqlite3_bind_int64(st, (int)i + 2, seq[i]);
	int rc = mqim__db_step_done(st);
	*moved = rc == MQIM_OK ? (size_t)sqlite3_changes(ob->db->h) : 0;
	return rc;
}

bool mqim__ob_moved(struct mqim__outbox *ob, int64_t seq, int64_t next_at)
{
	sqlite3_stmt *st = ob->moved;
	sqlite3_bind_int64(st, 1, seq);
	sqlite3_bind_int64(st, 2, next_at);
	bool yes = sqlite3_step(st) == SQLITE_ROW;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return yes;
}

int mqim__ob_delete(struct mqim__outbox *ob, int64_t seq)
{
	sqlite3_bind_int64(ob->del, 1, seq);
	return mqim__db_step_done(ob->del);
}

static void read_row(sqlite3_stmt *st, struct mqim__ob_row *r)
{
	memset(r, 0, sizeof *r);
	r->seq = sqlite3_column_int64(st, 0);
	const void *id = sqlite3_column_blob(st, 1);
	if (id && sqlite3_column_bytes(st, 1) == 16)
		memcpy(r->id, id, 16);
	r->kind = sqlite3_column_int(st, 2);
	r->peer = (const char *)sqlite3_column_text(st, 3);
	r->is_group = sqlite3_column_int(st, 4) != 0;
	r->qos = sqlite3_column_int(st, 5);
	r->payload = sqlite3_column_blob(st, 6);
	r->len = (size_t)sqlite3_column_bytes(st, 6);
	r->fsm.state = sqlite3_column_int(st, 7);
	r->fsm.attempts = (unsigned)sqlite3_column_int64(st, 8);
	r->fsm.next_at = sqlite3_column_int64(st, 9);
	r->created = sqlite3_column_int64(st, 10);
	r->fsm.err = sqlite3_column_int(st, 11);
	if (!r->peer)
		r->peer = "";
}

int mqim__ob_find(struct mqim__outbox *ob, const uint8_t id[16], struct mqim__ob_row *r,
		  char peer[65])
{
	sqlite3_stmt *st = ob->by_id;
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_TRANSIENT);
	int s = sqlite3_step(st);
	int rc = s == SQLITE_DONE ? MQIM_ENOTFOUND : mqim__db_err(s);
	if (s == SQLITE_ROW) {
		read_row(st, r);
		snprintf(peer, 65, "%s", r->peer);
		r->peer = peer;
		r->payload = NULL;
		r->len = 0;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static int walk(sqlite3_stmt *st, int (*cb)(void *ctx, struct mqim__ob_row *r), void *ctx)
{
	struct mqim__ob_row r;
	int rc = MQIM_OK, s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &r);
		rc = cb(ctx, &r);
		if (rc != 0)
			break;
	}
	if (rc == MQIM_OK && s != SQLITE_DONE && s != SQLITE_ROW)
		rc = mqim__db_err(s);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

static void finish(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* The rows of a and b (each in seq order) in seq order, at most limit;
 * *a_done (may be NULL) tells whether every row of a was given to cb. */
static int walk_merged(sqlite3_stmt *a, sqlite3_stmt *b, unsigned limit,
		       int (*cb)(void *ctx, struct mqim__ob_row *r), void *ctx, bool *a_done)
{
	struct mqim__ob_row r;
	int sa = sqlite3_step(a), sb = sqlite3_step(b), rc = MQIM_OK;
	unsigned from_a_n = 0;
	for (unsigned n = 0; n < limit && (sa == SQLITE_ROW || sb == SQLITE_ROW); n++) {
		bool from_a = sa == SQLITE_ROW &&
			      (sb != SQLITE_ROW || sqlite3_column_int64(a, 0) < sqlite3_column_int64(b, 0));
		read_row(from_a ? a : b, &r);
		rc = cb(ctx, &r);
		if (rc != 0)
			break;
		if (from_a) {
			from_a_n++;
			sa = sqlite3_step(a);
		}
		else
			sb = sqlite3_step(b);
	}
	if (rc == MQIM_OK && sa != SQLITE_DONE && sa != SQLITE_ROW)
		rc = mqim__db_err(sa);
	if (rc == MQIM_OK && sb != SQLITE_DONE && sb != SQLITE_ROW)
		rc = mqim__db_err(sb);
	/* a's own LIMIT (limit) ends it with SQLITE_DONE too. */
	if (a_done)
		*a_done = rc == MQIM_OK && sa == SQLITE_DONE && from_a_n < limit;
	finish(a);
	finish(b);
	return rc;
}

int mqim__ob_due(struct mqim__outbox *ob, int64_t now, int64_t below, unsigned limit,
		 int (*cb)(void *ctx, struct mqim__ob_row *r), void *ctx, bool *queued_done)
{
	sqlite3_bind_int64(ob->due, 1, limit);
	sqlite3_bind_int64(ob->due, 2, below);
	sqlite3_bind_int64(ob->due_sent, 1, now);
	sqlite3_bind_int64(ob->due_sent, 2, limit);
	return walk_merged(ob->due, ob->due_sent, limit, cb, ctx, queued_done);
}

int64_t mqim__ob_next_due(struct mqim__outbox *ob)
{
	int64_t v = INT64_MAX;
	if (sqlite3_step(ob->next_due) == SQLITE_ROW &&
	    sqlite3_column_type(ob->next_due, 0) != SQLITE_NULL)
		v = sqlite3_column_int64(ob->next_due, 0);
	sqlite3_reset(ob->next_due);
	return v;
}

int mqim__ob_list(struct mqim__outbox *ob, int (*cb)(void *ctx, struct mqim__ob_row *r), void *ctx)
{
	return walk(ob->list, cb, ctx);
}

int64_t mqim__ob_count(struct mqim__outbox *ob)
{
	int64_t v = -1;
	if (sqlite3_step(ob->count) == SQLITE_ROW)
		v = sqlite3_column_int64(ob->count, 0);
	sqlite3_reset(ob->count);
	return v;
}
