/* query.c - read-only queries, served on the caller's thread.
 *
 * They use the client's second, read-only SQLite connection (WAL lets it
 * read while the library thread writes), under a recursive mutex so that a
 * query callback may itself query.  Statements are prepared per call: a
 * nested query then never disturbs the statement of the outer one.
 */
#include <string.h>

#include "internal.h"
#include "names.h"

MQIM_EXPORT int mqim_history(mqim_client *c, const char *peer, bool is_group,
			     uint64_t before_bts, const uint8_t *before_id,
			     unsigned limit, mqim_message_cb cb, void *ctx)
{
	struct mqim__history h;
	int rc;

	if (!c || !cb)
		return MQIM_EINVAL;
	if (!mqim_name_valid(peer))
		return MQIM_EBADNAME;
	pthread_mutex_lock(&c->rd_mu);
	rc = mqim__hist_open(&h, &c->rdb);
	if (rc == MQIM_OK) {
		rc = mqim__hist_page(&h, peer, is_group, before_bts, before_id, limit, cb, ctx);
		mqim__hist_close(&h);
	}
	pthread_mutex_unlock(&c->rd_mu);
	return rc;
}

MQIM_EXPORT int mqim_message_state(mqim_client *c, const uint8_t id[MQIM_ID_LEN],
				   enum mqim_msg_state *out)
{
	struct mqim__history h;
	int state = 0, rc;
	bool outgoing = false;

	if (!c || !id || !out)
		return MQIM_EINVAL;
	pthread_mutex_lock(&c->rd_mu);
	rc = mqim__hist_open(&h, &c->rdb);
	if (rc == MQIM_OK) {
		rc = mqim__hist_state(&h, c->user, id, &state, &outgoing);
		mqim__hist_close(&h);
	}
	pthread_mutex_unlock(&c->rd_mu);
	if (rc == MQIM_OK && !outgoing)
		rc = MQIM_ENOTFOUND;
	if (rc == MQIM_OK)
		*out = (enum mqim_msg_state)state;
	return rc;
}

MQIM_EXPORT int mqim_outbox(mqim_client *c, mqim_outbox_cb cb, void *ctx)
{
	static const char sql[] =
		"SELECT o.id, o.peer, o.is_group, o.qos, o.state, o.attempts, o.created, h.ct, h.body"
		" FROM outbox o LEFT JOIN history h ON h.fr=?1 AND h.id=o.id"
		" WHERE o.kind=0 ORDER BY o.seq";
	sqlite3_stmt *st = NULL;
	int rc, count = 0, s;

	if (!c || !cb)
		return MQIM_EINVAL;
	pthread_mutex_lock(&c->rd_mu);
	rc = mqim__db_err(sqlite3_prepare_v2(c->rdb.h, sql, -1, &st, NULL));
	if (rc != MQIM_OK)
		goto out;
	sqlite3_bind_text(st, 1, c->user, -1, SQLITE_STATIC);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct mqim_outbox_entry e;
		memset(&e, 0, sizeof e);
		const void *id = sqlite3_column_blob(st, 0);
		if (id && sqlite3_column_bytes(st, 0) == 16)
			memcpy(e.id, id, 16);
		e.to = (const char *)sqlite3_column_text(st, 1);
		e.is_group = sqlite3_column_int(st, 2) != 0;
		e.qos = sqlite3_column_int(st, 3);
		e.state = (enum mqim_msg_state)sqlite3_column_int(st, 4);
		e.attempts = (unsigned)sqlite3_column_int(st, 5);
		e.created = (uint64_t)sqlite3_column_int64(st, 6);
		e.content_type = (const char *)sqlite3_column_text(st, 7);
		if (!e.content_type)
			e.content_type = "text/plain";
		e.body = sqlite3_column_text(st, 8);
		e.body_len = (size_t)sqlite3_column_bytes(st, 8);
		if (!e.body)
			e.body = "";
		if (!e.to)
			e.to = "";
		count++;
		rc = cb(ctx, &e);
		if (rc != 0)
			break;
	}
	if (rc == MQIM_OK && s != SQLITE_DONE && s != SQLITE_ROW)
		rc = mqim__db_err(s);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&c->rd_mu);
	return rc != 0 ? rc : count;
}
