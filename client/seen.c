/* seen.c - the bounded, persisted seen-set; see seen.h. */
#include <string.h>

#include "mqim.h"
#include "seen.h"

int mqim__seen_open(struct mqim__seen *s, struct mqim__db *db, unsigned max)
{
	struct { const char *sql; sqlite3_stmt **st; } stmts[] = {
		{ "SELECT 1 FROM seen WHERE fr=?1 AND id=?2", &s->check },
		{ "INSERT INTO seen(fr, id) VALUES(?1, ?2)", &s->ins },
		{ "DELETE FROM seen WHERE n IN (SELECT n FROM seen ORDER BY n LIMIT ?1)", &s->trim },
		{ "SELECT count(*) FROM seen", &s->count },
	};
	memset(s, 0, sizeof *s);
	s->db = db;
	s->max = max ? max : 1;
	for (size_t i = 0; i < sizeof stmts / sizeof stmts[0]; i++) {
		int rc = mqim__db_prepare(db, stmts[i].sql, stmts[i].st);
		if (rc != MQIM_OK) {
			mqim__seen_close(s);
			return rc;
		}
	}
	s->n = 0;
	if (sqlite3_step(s->count) == SQLITE_ROW)
		s->n = sqlite3_column_int64(s->count, 0);
	sqlite3_reset(s->count);
	return MQIM_OK;
}

void mqim__seen_close(struct mqim__seen *s)
{
	sqlite3_finalize(s->check);
	sqlite3_finalize(s->ins);
	sqlite3_finalize(s->trim);
	sqlite3_finalize(s->count);
	memset(s, 0, sizeof *s);
}

int mqim__seen_add(struct mqim__seen *s, const char *fr, size_t frlen, const uint8_t id[16])
{
	sqlite3_bind_text(s->check, 1, fr, (int)frlen, SQLITE_STATIC);
	sqlite3_bind_blob(s->check, 2, id, 16, SQLITE_STATIC);
	int st = sqlite3_step(s->check);
	sqlite3_reset(s->check);
	sqlite3_clear_bindings(s->check);
	if (st == SQLITE_ROW)
		return 1;
	if (st != SQLITE_DONE)
		return mqim__db_err(st);

	sqlite3_bind_text(s->ins, 1, fr, (int)frlen, SQLITE_STATIC);
	sqlite3_bind_blob(s->ins, 2, id, 16, SQLITE_STATIC);
	int rc = mqim__db_step_done(s->ins);
	if (rc != MQIM_OK)
		return rc;
	s->n++;
	if (s->n > (int64_t)s->max + s->max / 8) {
		sqlite3_bind_int64(s->trim, 1, s->n - s->max);
		rc = mqim__db_step_done(s->trim);
		if (rc != MQIM_OK)
			return rc;
		s->n = s->max;
	}
	return 0;
}

int64_t mqim__seen_count(struct mqim__seen *s)
{
	int64_t v = -1;
	if (sqlite3_step(s->count) == SQLITE_ROW)
		v = sqlite3_column_int64(s->count, 0);
	sqlite3_reset(s->count);
	return v;
}
