/* users.c - the in-memory tables of users, groups and memberships.
 *
 * The SQLite store is the truth on disk; these tables are what every
 * per-message check reads, so each lookup is one hash probe.  A membership
 * is one struct linked into both its user's and its group's table, so
 * "is alice in g?" and "who is in g?" are both direct.
 *
 * Loading builds complete new tables first and swaps them in only when the
 * whole store was read, so a failed reload changes nothing.
 *
 * Every change moves ctx->epoch on, which empties every session's cache of
 * pointers into these tables (sessions.c) before a freed entry can be read.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

struct mqim_user *mqim__user_find_n(struct mqim_ctx *ctx, const char *name, size_t len)
{
	struct mqim_user *u;
	HASH_FIND(hh, ctx->users, name, len, u);
	return u;
}

struct mqim_user *mqim__user_find(struct mqim_ctx *ctx, const char *name)
{
	return name ? mqim__user_find_n(ctx, name, strlen(name)) : NULL;
}

struct mqim_group *mqim__group_find_n(struct mqim_ctx *ctx, const char *name, size_t len)
{
	struct mqim_group *g;
	HASH_FIND(hh, ctx->groups, name, len, g);
	return g;
}

bool mqim__is_member(const struct mqim_user *u, const char *gid, size_t len)
{
	return mqim__member_group(u, gid, len) != NULL;
}

struct mqim_group *mqim__member_group(const struct mqim_user *u, const char *gid, size_t len)
{
	struct mqim_member *m;
	HASH_FIND(hh, u->groups, gid, len, m);
	return m ? m->group : NULL;
}

/* ---- changes to the live tables ---------------------------------------- */

/* Called before any entry is freed or added: no cached pointer survives. */
static void tables_changed(struct mqim_ctx *ctx)
{
	ctx->epoch++;
	ctx->last_write.payload = NULL;
	ctx->fresh_inbox = NULL;
}

static void member_unlink(struct mqim_member *m)
{
	HASH_DELETE(hh, m->user->groups, m);
	HASH_DELETE(gh, m->group->members, m);
	mqim__free(m);
}

static int user_insert(struct mqim_user **table, uint32_t idx, const char *name,
		       const char *hash, bool admin, bool disabled)
{
	struct mqim_user *u = mqim__calloc(1, sizeof(*u));
	if (!u)
		return MQIM_ENOMEM;
	u->hash = mqim__strdup(hash);
	if (!u->hash) {
		mqim__free(u);
		return MQIM_ENOMEM;
	}
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->name_len = strlen(u->name);
	u->idx = idx;
	u->admin = admin;
	u->disabled = disabled;
	HASH_ADD(hh, *table, name, u->name_len, u);
	return MQIM_OK;
}

int mqim__user_put(struct mqim_ctx *ctx, const char *name, const char *hash, bool admin,
		   bool disabled)
{
	struct mqim_user *u = mqim__user_find(ctx, name);
	tables_changed(ctx);
	if (!u) {
		int rc = user_insert(&ctx->users, ctx->next_user_idx++, name, hash, admin, disabled);
		if (rc == MQIM_OK)
			mqim__user_find(ctx, name)->since_ms = mqim__now_ms();
		return rc;
	}
	if (strcmp(u->hash, hash)) {
		char *h = mqim__strdup(hash);
		if (!h)
			return MQIM_ENOMEM;
		mqim__free(u->hash);
		u->hash = h;
		u->verified_until = 0; /* forget the old password at once */
	}
	u->admin = admin;
	u->disabled = disabled;
	return MQIM_OK;
}

static void user_free(struct mqim_user *u)
{
	struct mqim_member *m, *tmp;
	HASH_ITER(hh, u->groups, m, tmp)
		member_unlink(m);
	mqim__free(u->hash);
	mqim__free(u);
}

void mqim__user_remove(struct mqim_ctx *ctx, const char *name)
{
	struct mqim_user *u = mqim__user_find(ctx, name);
	if (!u)
		return;
	tables_changed(ctx);
	HASH_DELETE(hh, ctx->users, u);
	user_free(u);
}

int mqim__group_put(struct mqim_ctx *ctx, const char *gid)
{
	if (mqim__group_find_n(ctx, gid, strlen(gid)))
		return MQIM_OK;
	struct mqim_group *g = mqim__calloc(1, sizeof(*g));
	if (!g)
		return MQIM_ENOMEM;
	snprintf(g->name, sizeof(g->name), "%s", gid);
	g->name_len = strlen(g->name);
	tables_changed(ctx);
	HASH_ADD(hh, ctx->groups, name, g->name_len, g);
	return MQIM_OK;
}

static void group_free(struct mqim_group *g)
{
	struct mqim_member *m, *tmp;
	HASH_ITER(gh, g->members, m, tmp)
		member_unlink(m);
	mqim__free(g);
}

void mqim__group_remove(struct mqim_ctx *ctx, const char *gid)
{
	struct mqim_group *g = mqim__group_find_n(ctx, gid, strlen(gid));
	if (!g)
		return;
	tables_changed(ctx);
	HASH_DELETE(hh, ctx->groups, g);
	group_free(g);
}

static int member_link(struct mqim_user *u, struct mqim_group *g)
{
	if (mqim__is_member(u, g->name, strlen(g->name)))
		return MQIM_OK;
	struct mqim_member *m = mqim__calloc(1, sizeof(*m));
	if (!m)
		return MQIM_ENOMEM;
	m->user = u;
	m->group = g;
	HASH_ADD_KEYPTR(hh, u->groups, g->name, strlen(g->name), m);
	HASH_ADD_KEYPTR(gh, g->members, u->name, strlen(u->name), m);
	return MQIM_OK;
}

int mqim__member_put(struct mqim_ctx *ctx, const char *gid, const char *user)
{
	struct mqim_user *u = mqim__user_find(ctx, user);
	struct mqim_group *g = mqim__group_find_n(ctx, gid, strlen(gid));
	if (!u || !g)
		return MQIM_ENOTFOUND;
	tables_changed(ctx);
	return member_link(u, g);
}

void mqim__member_remove(struct mqim_ctx *ctx, const char *gid, const char *user)
{
	struct mqim_user *u = mqim__user_find(ctx, user);
	struct mqim_member *m;
	if (!u)
		return;
	HASH_FIND(hh, u->groups, gid, strlen(gid), m);
	tables_changed(ctx);
	if (m)
		member_unlink(m);
}

/* ---- loading ------------------------------------------------------------ */

struct load {
	struct mqim_ctx *ctx;
	struct mqim_user *users;
	struct mqim_group *groups;
	unsigned nusers, ngroups;
	int rc;
};

static int load_user(void *arg, const struct mqim_user_rec *r)
{
	struct load *l = arg;
	struct mqim_user *old = mqim__user_find(l->ctx, r->name);
	uint32_t idx = old ? old->idx : l->ctx->next_user_idx++;
	l->rc = user_insert(&l->users, idx, r->name, r->hash, r->admin, r->disabled);
	if (l->rc)
		return l->rc;
	{ /* the account's age, from the store: see predates() in acl.c */
		struct mqim_user *nu;
		HASH_FIND(hh, l->users, r->name, strlen(r->name), nu);
		nu->since_ms = r->created_ms;
	}
	if (old) { /* keep what the running broker knows about this user */
		struct mqim_user *u;
		HASH_FIND(hh, l->users, r->name, strlen(r->name), u);
		u->online = old->online;
		if (!strcmp(old->hash, r->hash)) {
			memcpy(u->verified_mac, old->verified_mac, sizeof(u->verified_mac));
			u->verified_until = old->verified_until;
		} else if (old->online) {
			mqim__kick_later(l->ctx, r->name); /* password changed offline */
		}
		if (r->disabled && !old->disabled && old->online)
			mqim__kick_later(l->ctx, r->name);
	}
	l->nusers++;
	return 0;
}

static int load_group(void *arg, const char *gid)
{
	struct load *l = arg;
	struct mqim_group *g = mqim__calloc(1, sizeof(*g));
	if (!g)
		return l->rc = MQIM_ENOMEM;
	snprintf(g->name, sizeof(g->name), "%s", gid);
	g->name_len = strlen(g->name);
	HASH_ADD(hh, l->groups, name, g->name_len, g);
	l->ngroups++;
	return 0;
}

static int load_member(void *arg, const char *gid, const char *user)
{
	struct load *l = arg;
	struct mqim_user *u;
	struct mqim_group *g;
	HASH_FIND(hh, l->users, user, strlen(user), u);
	HASH_FIND(hh, l->groups, gid, strlen(gid), g);
	if (!u || !g)
		return 0; /* the schema's foreign keys make this unreachable */
	return l->rc = member_link(u, g);
}

static void tables_free(struct mqim_user **users, struct mqim_group **groups)
{
	struct mqim_user *u, *ut;
	struct mqim_group *g, *gt;
	HASH_ITER(hh, *groups, g, gt) {
		HASH_DELETE(hh, *groups, g);
		group_free(g);
	}
	HASH_ITER(hh, *users, u, ut) {
		HASH_DELETE(hh, *users, u);
		user_free(u);
	}
}

/* Users deleted from the store while online lose their sessions. */
static void kick_removed(struct mqim_ctx *ctx, struct mqim_user *next)
{
	struct mqim_user *u, *tmp, *found;
	HASH_ITER(hh, ctx->users, u, tmp) {
		HASH_FIND(hh, next, u->name, strlen(u->name), found);
		if (!found && u->online)
			mqim__kick_later(ctx, u->name);
	}
}

int mqim__users_load(struct mqim_ctx *ctx, bool reload)
{
	struct load l = { ctx, NULL, NULL, 0, 0, MQIM_OK };
	int rc = mqim_store_users(ctx->store, load_user, &l);
	if (!rc)
		rc = mqim_store_groups(ctx->store, load_group, &l);
	if (!rc)
		rc = mqim_store_memberships(ctx->store, load_member, &l);
	if (rc || l.rc) {
		rc = rc ? rc : l.rc;
		mosquitto_log_printf(MOSQ_LOG_ERR,
				     "mqim: cannot %s users and groups from %s: %s (%s)%s",
				     reload ? "reload" : "load", ctx->opts.db_path, mqim_strerror(rc),
				     mqim_store_errmsg(ctx->store),
				     reload ? "; keeping the tables loaded before" : "");
		tables_free(&l.users, &l.groups);
		return rc;
	}
	kick_removed(ctx, l.users);
	tables_changed(ctx);
	tables_free(&ctx->users, &ctx->groups);
	ctx->users = l.users;
	ctx->groups = l.groups;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: %s %u users and %u groups from %s",
			     reload ? "reloaded" : "loaded", l.nusers, l.ngroups, ctx->opts.db_path);
	return MQIM_OK;
}

void mqim__users_free(struct mqim_ctx *ctx)
{
	tables_changed(ctx);
	tables_free(&ctx->users, &ctx->groups);
}
