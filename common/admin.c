/* admin.c - the $CONTROL/mqim/v1 command table, request parser and
 * executor; see admin.h.
 *
 * Owns: mqim_cmd_table[] (the one list of admin commands), the argument
 * rules each command is checked against (arg_specs[]), one handler per
 * command (handlers[], indexed like the table), and the exact sentences put
 * in "error".  The executor only reads the request tree; everything it
 * builds is appended to the caller's responses array.
 *
 * Passwords: read from the request, hashed, and forgotten; never copied into
 * a response, an effect or an error sentence.  No global mutable state; the
 * thread rules are those of the store passed in.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "mqim.h"

const struct mqim_cmd_def mqim_cmd_table[MQIM_CMD__COUNT] = {
#define U MQIM_ARG_USERNAME
#define P MQIM_ARG_PASSWORD
#define G MQIM_ARG_GROUP
#define A MQIM_ARG_ADMIN
	{ "createUser",        MQIM_CMD_CREATE_USER,         U | P, true },
	{ "deleteUser",        MQIM_CMD_DELETE_USER,         U,     true },
	{ "setUserPassword",   MQIM_CMD_SET_USER_PASSWORD,   U | P, true },
	{ "getUser",           MQIM_CMD_GET_USER,            U,     false },
	{ "listUsers",         MQIM_CMD_LIST_USERS,          0,     false },
	{ "setAdmin",          MQIM_CMD_SET_ADMIN,           U | A, true },
	{ "disableUser",       MQIM_CMD_DISABLE_USER,        U,     true },
	{ "enableUser",        MQIM_CMD_ENABLE_USER,         U,     true },
	{ "createGroup",       MQIM_CMD_CREATE_GROUP,        G,     true },
	{ "deleteGroup",       MQIM_CMD_DELETE_GROUP,        G,     true },
	{ "listGroups",        MQIM_CMD_LIST_GROUPS,         0,     false },
	{ "getGroup",          MQIM_CMD_GET_GROUP,           G,     false },
	{ "addGroupMember",    MQIM_CMD_ADD_GROUP_MEMBER,    G | U, true },
	{ "removeGroupMember", MQIM_CMD_REMOVE_GROUP_MEMBER, G | U, true },
	{ "kickUser",          MQIM_CMD_KICK_USER,           U,     true },
#undef U
#undef P
#undef G
#undef A
};

const struct mqim_cmd_def *mqim_cmd_lookup(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < MQIM_CMD__COUNT; i++)
		if (strcmp(mqim_cmd_table[i].name, name) == 0)
			return &mqim_cmd_table[i];
	return NULL;
}

/* ---- one command's execution state --------------------------------------- */

struct exec {
	struct mqim_store *st;
	const struct mqim_passwd_params *pp;
	const cJSON *cmd;
	cJSON *resp;                  /* the response object being built */
	struct mqim_admin_effect *fx; /* always valid (a local when NULL given) */
	const char *username;         /* borrowed from cmd */
	const char *group;
	const char *password;         /* borrowed; never copied */
	const char *password_hash;    /* "passwordHash", instead of password */
	int admin;                    /* -1 when absent */
	const char *err;              /* the sentence for "error" */
	char errbuf[320];
};

static int fail(struct exec *x, int rc, const char *sentence)
{
	x->err = sentence;
	return rc;
}

/* A sentence for a store error that is not about a missing or duplicate
 * row; those each handler words itself. */
static int store_fail(struct exec *x, int rc)
{
	switch (rc) {
	case MQIM_ENOMEM:
		return fail(x, rc, "out of memory");
	case MQIM_EBUSY:
		return fail(x, rc, "the store is locked by another process: try again");
	case MQIM_ENOSPC:
		return fail(x, rc, "no space left on the device holding the store");
	case MQIM_EBADNAME:
		return fail(x, rc, "invalid name: use 1-64 of [A-Za-z0-9_.-], starting "
			    "with a letter or digit");
	}
	snprintf(x->errbuf, sizeof(x->errbuf), "database error: %s",
		 mqim_store_errmsg(x->st));
	return fail(x, rc, x->errbuf);
}

/* Map the usual outcomes of a store call to sentences. */
static int store_result(struct exec *x, int rc, const char *notfound, const char *exists)
{
	if (rc == MQIM_OK)
		return MQIM_OK;
	if (rc == MQIM_ENOTFOUND && notfound)
		return fail(x, rc, notfound);
	if (rc == MQIM_EEXISTS && exists)
		return fail(x, rc, exists);
	return store_fail(x, rc);
}

/* ---- arguments ----------------------------------------------------------- */

#define NO_SLOT ((size_t)-1)

static const struct arg_spec {
	unsigned flag;
	const char *key;
	size_t slot;            /* offset of the const char * in struct exec */
	const char *missing;
	const char *mistyped;
} arg_specs[] = {
	{ MQIM_ARG_USERNAME, "username", offsetof(struct exec, username),
	  "missing username: add \"username\": \"<name>\"",
	  "username must be a string" },
	{ MQIM_ARG_GROUP, "group", offsetof(struct exec, group),
	  "missing group: add \"group\": \"<name>\"",
	  "group must be a string" },
	{ MQIM_ARG_PASSWORD, "password", offsetof(struct exec, password),
	  "missing password: add \"password\": \"<password>\"",
	  "password must be a string" },
	{ MQIM_ARG_ADMIN, "admin", NO_SLOT,
	  "missing admin: add \"admin\": true or false",
	  "admin must be true or false" },
};

static const char bad_username[] =
	"invalid username: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit";
static const char bad_group[] =
	"invalid group: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit";
static const char bad_password[] =
	"invalid password: use 1 to 1024 bytes";
static const char both_passwords[] =
	"give either password or passwordHash, not both";
static const char bad_hash[] =
	"unsupported passwordHash: give an $argon2id$, $argon2i$, $7$ (PBKDF2-SHA512) "
	"or $6$ (salted SHA-512) hash, as mqimctl user import does";

/* Store one argument into x: a string into its slot, or the "admin" bool.
 * Returns MQIM_ENOTFOUND when absent, MQIM_EINVAL when of the wrong type. */
static int arg_value(struct exec *x, const struct arg_spec *a)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(x->cmd, a->key);

	if (!v)
		return MQIM_ENOTFOUND;
	if (a->slot == NO_SLOT) {
		if (!cJSON_IsBool(v))
			return MQIM_EINVAL;
		x->admin = cJSON_IsTrue(v) ? 1 : 0;
		return MQIM_OK;
	}
	if (!cJSON_IsString(v) || !v->valuestring)
		return MQIM_EINVAL;
	*(const char **)((char *)x + a->slot) = v->valuestring;
	return MQIM_OK;
}

/* Where a password is required, "passwordHash" may stand in for it. */
static int password_or_hash(struct exec *x, int rc)
{
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(x->cmd, "passwordHash");

	if (!h)
		return rc;
	if (rc == MQIM_OK)
		return fail(x, MQIM_EINVAL, both_passwords);
	if (!cJSON_IsString(h) || !mqim_passwd_format_supported(h->valuestring))
		return fail(x, MQIM_EINVAL, bad_hash);
	x->password_hash = h->valuestring;
	return MQIM_OK;
}

static int check_values(struct exec *x)
{
	size_t plen;

	if (x->username && !mqim_name_valid(x->username))
		return fail(x, MQIM_EBADNAME, bad_username);
	if (x->group && !mqim_name_valid(x->group))
		return fail(x, MQIM_EBADNAME, bad_group);
	if (x->password) {
		plen = strnlen(x->password, MQIM_PASSWORD_MAX + 1);
		if (plen == 0 || plen > MQIM_PASSWORD_MAX)
			return fail(x, MQIM_EINVAL, bad_password);
	}
	return MQIM_OK;
}

/* createUser also takes an optional "admin". */
static unsigned optional_args(const struct mqim_cmd_def *def)
{
	return def->id == MQIM_CMD_CREATE_USER ? MQIM_ARG_ADMIN : 0;
}

static int take_args(struct exec *x, const struct mqim_cmd_def *def)
{
	for (size_t i = 0; i < sizeof(arg_specs) / sizeof(arg_specs[0]); i++) {
		const struct arg_spec *a = &arg_specs[i];
		bool wanted = def->args & a->flag;
		int rc;

		if (!wanted && !(optional_args(def) & a->flag))
			continue;
		rc = arg_value(x, a);
		if (a->flag == MQIM_ARG_PASSWORD && rc != MQIM_EINVAL)
			rc = password_or_hash(x, rc);
		if (rc == MQIM_ENOTFOUND && wanted)
			return fail(x, MQIM_EINVAL, a->missing);
		if (rc == MQIM_EINVAL && !x->err)
			return fail(x, MQIM_EINVAL, a->mistyped);
		if (rc == MQIM_EINVAL)
			return rc;
	}
	return check_values(x);
}

/* ---- data helpers -------------------------------------------------------- */

static int add_string_cb(void *ctx, const char *name)
{
	cJSON *s = cJSON_CreateString(name);

	if (!s || !cJSON_AddItemToArray(ctx, s)) {
		cJSON_Delete(s);
		return MQIM_ENOMEM;
	}
	return MQIM_OK;
}

/* Add an empty array named key to obj; NULL when out of memory. */
static cJSON *add_array(cJSON *obj, const char *key)
{
	return obj ? cJSON_AddArrayToObject(obj, key) : NULL;
}

static cJSON *add_data(struct exec *x)
{
	return cJSON_AddObjectToObject(x->resp, "data");
}

/* The new hash for createUser / setUserPassword, into fx->hash. */
static int make_hash(struct exec *x)
{
	int rc;

	if (x->password_hash) {
		snprintf(x->fx->hash, sizeof(x->fx->hash), "%s", x->password_hash);
		return MQIM_OK;
	}
	rc = mqim_passwd_hash(x->pp, x->password, x->fx->hash, sizeof(x->fx->hash));
	if (rc == MQIM_EINVAL)
		return fail(x, rc, "cannot hash the password with the configured "
			    "argon2 parameters");
	if (rc == MQIM_EIO)
		return fail(x, rc, "the system's random generator failed");
	return rc == MQIM_OK ? rc : store_fail(x, rc);
}

/* ---- handlers, one per command ------------------------------------------- */

static const char user_missing[] = "user not found";
static const char group_missing[] = "group not found";

static int user_must_exist(struct exec *x)
{
	struct mqim_user_rec u;

	return store_result(x, mqim_store_user_get(x->st, x->username, &u), user_missing, NULL);
}

static int do_create_user(struct exec *x)
{
	struct mqim_user_rec u;
	int rc = mqim_store_user_get(x->st, x->username, &u);

	if (rc == MQIM_OK)
		return fail(x, MQIM_EEXISTS, "user already exists");
	if (rc != MQIM_ENOTFOUND)
		return store_fail(x, rc);
	rc = make_hash(x);
	if (rc != MQIM_OK)
		return rc;
	x->fx->flag = x->admin == 1;
	rc = mqim_store_user_add(x->st, x->username, x->fx->hash, x->fx->flag);
	return store_result(x, rc, NULL, "user already exists");
}

static int do_delete_user(struct exec *x)
{
	return store_result(x, mqim_store_user_del(x->st, x->username), user_missing, NULL);
}

static int do_set_password(struct exec *x)
{
	int rc = user_must_exist(x);

	if (rc == MQIM_OK)
		rc = make_hash(x);
	if (rc == MQIM_OK)
		rc = store_result(x, mqim_store_user_set_hash(x->st, x->username, x->fx->hash),
				  user_missing, NULL);
	return rc;
}

static int do_get_user(struct exec *x)
{
	struct mqim_user_rec u;
	cJSON *data, *groups;
	int rc = store_result(x, mqim_store_user_get(x->st, x->username, &u), user_missing, NULL);

	if (rc != MQIM_OK)
		return rc;
	data = add_data(x);
	if (!data || !cJSON_AddStringToObject(data, "username", u.name) ||
	    !cJSON_AddBoolToObject(data, "admin", u.admin) ||
	    !cJSON_AddBoolToObject(data, "disabled", u.disabled) ||
	    !(groups = add_array(data, "groups")))
		return store_fail(x, MQIM_ENOMEM);
	rc = mqim_store_user_groups(x->st, x->username, add_string_cb, groups);
	return store_result(x, rc, user_missing, NULL);
}

static int add_user_cb(void *ctx, const struct mqim_user_rec *u)
{
	cJSON *o = cJSON_CreateObject();

	if (!o || !cJSON_AddStringToObject(o, "username", u->name) ||
	    !cJSON_AddBoolToObject(o, "admin", u->admin) ||
	    !cJSON_AddBoolToObject(o, "disabled", u->disabled) ||
	    !cJSON_AddItemToArray(ctx, o)) {
		cJSON_Delete(o);
		return MQIM_ENOMEM;
	}
	return MQIM_OK;
}

static int do_list_users(struct exec *x)
{
	cJSON *users = add_array(add_data(x), "users");

	if (!users)
		return store_fail(x, MQIM_ENOMEM);
	return store_result(x, mqim_store_users(x->st, add_user_cb, users), NULL, NULL);
}

static int do_set_admin(struct exec *x)
{
	x->fx->flag = x->admin == 1;
	return store_result(x, mqim_store_user_set_admin(x->st, x->username, x->fx->flag),
			    user_missing, NULL);
}

static int do_disable_user(struct exec *x)
{
	x->fx->flag = true;
	return store_result(x, mqim_store_user_set_disabled(x->st, x->username, true),
			    user_missing, NULL);
}

static int do_enable_user(struct exec *x)
{
	x->fx->flag = false;
	return store_result(x, mqim_store_user_set_disabled(x->st, x->username, false),
			    user_missing, NULL);
}

static int do_create_group(struct exec *x)
{
	return store_result(x, mqim_store_group_add(x->st, x->group), NULL,
			    "group already exists");
}

static int do_delete_group(struct exec *x)
{
	return store_result(x, mqim_store_group_del(x->st, x->group), group_missing, NULL);
}

static int do_list_groups(struct exec *x)
{
	cJSON *groups = add_array(add_data(x), "groups");

	if (!groups)
		return store_fail(x, MQIM_ENOMEM);
	return store_result(x, mqim_store_groups(x->st, add_string_cb, groups), NULL, NULL);
}

static int do_get_group(struct exec *x)
{
	cJSON *data, *members;
	int rc = store_result(x, mqim_store_group_exists(x->st, x->group), group_missing, NULL);

	if (rc != MQIM_OK)
		return rc;
	data = add_data(x);
	if (!data || !cJSON_AddStringToObject(data, "group", x->group) ||
	    !(members = add_array(data, "members")))
		return store_fail(x, MQIM_ENOMEM);
	rc = mqim_store_members(x->st, x->group, add_string_cb, members);
	return store_result(x, rc, group_missing, NULL);
}

static int do_add_member(struct exec *x)
{
	int rc = store_result(x, mqim_store_group_exists(x->st, x->group), group_missing, NULL);

	if (rc == MQIM_OK)
		rc = user_must_exist(x);
	if (rc == MQIM_OK)
		rc = store_result(x, mqim_store_member_add(x->st, x->group, x->username),
				  "group or user not found",
				  "user is already a member of the group");
	return rc;
}

static int do_remove_member(struct exec *x)
{
	int rc = store_result(x, mqim_store_group_exists(x->st, x->group), group_missing, NULL);

	if (rc == MQIM_OK)
		rc = user_must_exist(x);
	if (rc == MQIM_OK)
		rc = store_result(x, mqim_store_member_del(x->st, x->group, x->username),
				  "user is not a member of the group", NULL);
	return rc;
}

/* The broker does the kick; here we only check there is someone to kick. */
static int do_kick_user(struct exec *x)
{
	return user_must_exist(x);
}

static int (*const handlers[MQIM_CMD__COUNT])(struct exec *x) = {
	[MQIM_CMD_CREATE_USER]         = do_create_user,
	[MQIM_CMD_DELETE_USER]         = do_delete_user,
	[MQIM_CMD_SET_USER_PASSWORD]   = do_set_password,
	[MQIM_CMD_GET_USER]            = do_get_user,
	[MQIM_CMD_LIST_USERS]          = do_list_users,
	[MQIM_CMD_SET_ADMIN]           = do_set_admin,
	[MQIM_CMD_DISABLE_USER]        = do_disable_user,
	[MQIM_CMD_ENABLE_USER]         = do_enable_user,
	[MQIM_CMD_CREATE_GROUP]        = do_create_group,
	[MQIM_CMD_DELETE_GROUP]        = do_delete_group,
	[MQIM_CMD_LIST_GROUPS]         = do_list_groups,
	[MQIM_CMD_GET_GROUP]           = do_get_group,
	[MQIM_CMD_ADD_GROUP_MEMBER]    = do_add_member,
	[MQIM_CMD_REMOVE_GROUP_MEMBER] = do_remove_member,
	[MQIM_CMD_KICK_USER]           = do_kick_user,
};

/* ---- exec ---------------------------------------------------------------- */

/* Start the response: "command" and "correlationData" as given. */
static cJSON *response_start(const cJSON *cmd, const char **name)
{
	const cJSON *c = cJSON_IsObject(cmd) ? cJSON_GetObjectItemCaseSensitive(cmd, "command") : NULL;
	const cJSON *corr = cJSON_IsObject(cmd) ?
		cJSON_GetObjectItemCaseSensitive(cmd, "correlationData") : NULL;
	cJSON *resp = cJSON_CreateObject();

	*name = cJSON_IsString(c) ? c->valuestring : NULL;
	if (!resp)
		return NULL;
	if ((*name && !cJSON_AddStringToObject(resp, "command", *name)) ||
	    (cJSON_IsString(corr) &&
	     !cJSON_AddStringToObject(resp, "correlationData", corr->valuestring))) {
		cJSON_Delete(resp);
		return NULL;
	}
	return resp;
}

/* Validate and run; returns the outcome with x->err set on failure. */
static int dispatch(struct exec *x, const char *name)
{
	const struct mqim_cmd_def *def;
	int rc;

	if (!cJSON_IsObject(x->cmd))
		return fail(x, MQIM_EINVAL, "a command must be a JSON object such as "
			    "{\"command\": \"listUsers\"}");
	if (!name)
		return fail(x, MQIM_EINVAL, "missing command: add \"command\": \"<name>\"");
	def = mqim_cmd_lookup(name);
	if (!def)
		return fail(x, MQIM_EUNSUPPORTED, "unknown command");
	x->fx->cmd = def->id;
	rc = take_args(x, def);
	if (rc == MQIM_OK)
		rc = handlers[def->id](x);
	if (rc == MQIM_OK) {
		x->fx->changed = def->mutates;
		snprintf(x->fx->username, sizeof(x->fx->username), "%s",
			 x->username ? x->username : "");
		snprintf(x->fx->group, sizeof(x->fx->group), "%s", x->group ? x->group : "");
	}
	return rc;
}

int mqim_admin_exec(struct mqim_store *st, const struct mqim_passwd_params *pp,
		    const cJSON *cmd, cJSON *responses, struct mqim_admin_effect *fx)
{
	struct mqim_admin_effect local;
	struct exec x = { .st = st, .pp = pp, .cmd = cmd, .admin = -1 };
	const char *name;
	int rc;

	x.fx = fx ? fx : &local;
	memset(x.fx, 0, sizeof(*x.fx));
	x.resp = response_start(cmd, &name);
	if (!x.resp)
		return MQIM_ENOMEM;
	rc = dispatch(&x, name);
	if (rc != MQIM_OK) {
		cJSON_DeleteItemFromObjectCaseSensitive(x.resp, "data");
		memset(x.fx, 0, sizeof(*x.fx));
		if (!cJSON_AddStringToObject(x.resp, "error", x.err ? x.err : mqim_strerror(rc)))
			rc = MQIM_ENOMEM;
	}
	if (!cJSON_AddItemToArray(responses, x.resp)) {
		cJSON_Delete(x.resp);
		return MQIM_ENOMEM;
	}
	return rc;
}

/* ---- parse and build ----------------------------------------------------- */

static bool only_blank(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0')
			return false;
	return true;
}

static const char *check_request(const cJSON *root, const cJSON **commands)
{
	const cJSON *c;

	if (!cJSON_IsObject(root))
		return "payload must be a JSON object: {\"commands\": [...]}";
	*commands = cJSON_GetObjectItemCaseSensitive(root, "commands");
	if (!*commands)
		return "missing \"commands\": the payload must be {\"commands\": [...]}";
	if (!cJSON_IsArray(*commands))
		return "\"commands\" must be an array of command objects";
	cJSON_ArrayForEach(c, *commands)
		if (!cJSON_IsObject(c))
			return "every element of \"commands\" must be a JSON object such as "
			       "{\"command\": \"listUsers\"}";
	return NULL;
}

int mqim_admin_parse(const void *payload, size_t len, cJSON **root,
		     const cJSON **commands, const char **err)
{
	const char *end = NULL;
	const char *msg;
	cJSON *tree;

	*root = NULL;
	*commands = NULL;
	if (!payload || len == 0 || only_blank(payload, (const char *)payload + len)) {
		*err = "empty payload: send {\"commands\": [...]}";
		return MQIM_EINVAL;
	}
	tree = cJSON_ParseWithLengthOpts(payload, len, &end, false);
	if (!tree) {
		*err = "payload is not valid JSON";
		return MQIM_EINVAL;
	}
	msg = only_blank(end, (const char *)payload + len) ? check_request(tree, commands)
		: "payload has data after its JSON value: send one {\"commands\": [...]} object";
	if (msg) {
		cJSON_Delete(tree);
		*commands = NULL;
		*err = msg;
		return MQIM_EINVAL;
	}
	*root = tree;
	*err = NULL;
	return MQIM_OK;
}

cJSON *mqim_admin_build(const char *name, const char *username, const char *group,
			const char *password, int admin)
{
	const struct mqim_cmd_def *def = mqim_cmd_lookup(name);
	cJSON *o = def ? cJSON_CreateObject() : NULL;

	if (!o)
		return NULL;
	if (!cJSON_AddStringToObject(o, "command", def->name) ||
	    (username && !cJSON_AddStringToObject(o, "username", username)) ||
	    (group && !cJSON_AddStringToObject(o, "group", group)) ||
	    (password && !cJSON_AddStringToObject(o, "password", password)) ||
	    (admin >= 0 && !cJSON_AddBoolToObject(o, "admin", admin != 0))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}
