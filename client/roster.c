/* roster.c - group rosters and the receipts a group message waits for
 * (see roster.h), and mqim_set_group_members(). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "names.h"

/* group_wait.got: what the member has answered so far. */
enum { GOT_NOTHING = 0, GOT_RCPT = 1, GOT_READ = 2 };

static const char tables_sql[] =
	"CREATE TABLE IF NOT EXISTS roster("
	"  gid TEXT NOT NULL, member TEXT NOT NULL, PRIMARY KEY(gid, member));"
	"CREATE TABLE IF NOT EXISTS group_wait("
	"  id BLOB NOT NULL, member TEXT NOT NULL, got INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY(id, member));";

int mqim__roster_open(struct mqim__roster *ro, struct mqim__db *db)
{
	struct { const char *sql; sqlite3_stmt **st; } stmts[] = {
		{ "DELETE FROM roster WHERE gid=?1", &ro->clear },
		{ "INSERT OR IGNORE INTO roster(gid, member) VALUES(?1, ?2)", &ro->add },
		{ "INSERT OR IGNORE INTO group_wait(id, member, got)"
		  " SELECT ?1, member, 0 FROM roster WHERE gid=?2 AND member<>?3", &ro->expect },
		{ "UPDATE group_wait SET got=max(got, ?3) WHERE id=?1 AND member=?2", &ro->tick },
		{ "SELECT count(*), sum(got=0), max(got) FROM group_wait"
		  " WHERE id=?1", &ro->tally },
		{ "DELETE FROM group_wait WHERE id=?1", &ro->done },
	};
	memset(ro, 0, sizeof *ro);
	ro->db = db;
	int rc = mqim__db_err(sqlite3_exec(db->h, tables_sql, NULL, NULL, NULL));
	for (size_t i = 0; rc == MQIM_OK && i < sizeof stmts / sizeof stmts[0]; i++)
		rc = mqim__db_prepare(db, stmts[i].sql, stmts[i].st);
	if (rc != MQIM_OK)
		mqim__roster_close(ro);
	return rc;
}

void mqim__roster_close(struct mqim__roster *ro)
{
	sqlite3_stmt *all[] = { ro->clear, ro->add, ro->expect, ro->tick, ro->tally, ro->done };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
		sqlite3_finalize(all[i]);
	memset(ro, 0, sizeof *ro);
}

int mqim__roster_set(struct mqim__roster *ro, const char *gid, const char *const *members)
{
	sqlite3_bind_text(ro->clear, 1, gid, -1, SQLITE_STATIC);
	int rc = mqim__db_step_done(ro->clear);
	for (const char *const *m = members; rc == MQIM_OK && m && *m; m++) {
		sqlite3_bind_text(ro->add, 1, gid, -1, SQLITE_STATIC);
		sqlite3_bind_text(ro->add, 2, *m, -1, SQLITE_STATIC);
		rc = mqim__db_step_done(ro->add);
	}
	return rc;
}

int mqim__roster_expect(struct mqim__roster *ro, const uint8_t id[16], const char *gid,
			const char *self, int *n)
{
	sqlite3_bind_blob(ro->expect, 1, id, 16, SQLITE_STATIC);
	sqlite3_bind_text(ro->expect, 2, gid, -1, SQLITE_STATIC);
	sqlite3_bind_text(ro->expect, 3, self, -1, SQLITE_STATIC);
	int rc = mqim__db_step_done(ro->expect);
	if (n)
		*n = rc == MQIM_OK ? sqlite3_changes(ro->db->h) : 0;
	return rc;
}

/* Rows of id: how many, how many still awaited, the best answer. */
static int tally(struct mqim__roster *ro, const uint8_t id[16], int *rows, int *awaited, int *best)
{
	sqlite3_stmt *st = ro->tally;
	sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
	int s = sqlite3_step(st);
	if (s == SQLITE_ROW) {
		*rows = sqlite3_column_int(st, 0);
		*awaited = sqlite3_column_int(st, 1);
		*best = sqlite3_column_int(st, 2);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return s == SQLITE_ROW ? MQIM_OK : mqim__db_err(s);
}

int mqim__roster_receipt(struct mqim__roster *ro, const uint8_t id[16], const char *member,
			 bool is_read, int *state)
{
	int rows = 0, awaited = 0, best = 0;
	*state = 0;
	sqlite3_bind_blob(ro->tick, 1, id, 16, SQLITE_STATIC);
	sqlite3_bind_text(ro->tick, 2, member, -1, SQLITE_STATIC);
	sqlite3_bind_int(ro->tick, 3, is_read ? GOT_READ : GOT_RCPT);
	int rc = mqim__db_step_done(ro->tick);
	if (rc == MQIM_OK)
		rc = tally(ro, id, &rows, &awaited, &best);
	if (rc != MQIM_OK || awaited > 0)
		return rc;
	if (rows == 0) {   /* untracked: this receipt settles it */
		*state = is_read ? MQIM_MSG_READ : MQIM_MSG_DELIVERED;
		return MQIM_OK;
	}
	sqlite3_bind_blob(ro->done, 1, id, 16, SQLITE_STATIC);
	rc = mqim__db_step_done(ro->done);
	if (rc == MQIM_OK)
		*state = best == GOT_READ ? MQIM_MSG_READ : MQIM_MSG_DELIVERED;
	return rc;
}

/* ---- mqim_set_group_members ---------------------------------------------------- */

struct roster_req {
	const char *gid;
	const char *const *members;
};

static int do_set_roster(mqim_client *c, void *arg)
{
	struct roster_req *q = arg;
	int rc = mqim__work_begin(c);
	if (rc == MQIM_OK)
		rc = mqim__roster_set(&c->roster, q->gid, q->members);
	return mqim__work_end(c, rc);
}

MQIM_EXPORT int mqim_set_group_members(mqim_client *c, const char *gid,
				       const char *const *members)
{
	struct roster_req q = { gid, members };
	if (!c)
		return MQIM_EINVAL;
	if (!mqim_name_valid(gid))
		return MQIM_EBADNAME;
	for (const char *const *m = members; m && *m; m++)
		if (!mqim_name_valid(*m))
			return MQIM_EBADNAME;
	return mqim__call(c, do_set_roster, &q);
}
