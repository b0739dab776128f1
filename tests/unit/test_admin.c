/* test_admin.c - unit tests for common/admin.c: the command table, the
 * $CONTROL request parser on bad input of every kind, and every command's
 * success and error responses and effects, against a temporary store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "admin.h"
#include "mqim.h"

static const struct mqim_passwd_params fast = { 1, 64, 1 };

#define MOSQ7 "$7$101$AQIDBAUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr89dDHWD70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw=="

struct fix {
	char dir[64];
	char path[128];
	struct mqim_store *st;
	cJSON *responses;
	struct mqim_admin_effect fx;
	int rc;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[256];

	if (!f)
		return -1;
	strcpy(f->dir, "/tmp/mqim-test-admin-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	if (mqim_store_open(f->path, MQIM_STORE_CREATE, &f->st, err, sizeof(err)) != MQIM_OK)
		return -1;
	f->responses = cJSON_CreateArray();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[160];

	mqim_store_close(f->st);
	cJSON_Delete(f->responses);
	static const char *const sfx[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, sfx[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Run one command given as JSON text; return its response object (owned by
 * f->responses) and leave the return code in f->rc. */
static const cJSON *run(struct fix *f, const char *json)
{
	cJSON *cmd = cJSON_Parse(json);
	int before = cJSON_GetArraySize(f->responses);

	if (!cmd)
		fail_msg("bad test JSON: %s", json);
	f->rc = mqim_admin_exec(f->st, &fast, cmd, f->responses, &f->fx);
	cJSON_Delete(cmd);
	assert_int_equal(cJSON_GetArraySize(f->responses), before + 1);
	return cJSON_GetArrayItem(f->responses, before);
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Expect success; return "data" (may be NULL). */
static const cJSON *ok(struct fix *f, const char *json, const char *command)
{
	const cJSON *r = run(f, json);

	if (f->rc != MQIM_OK)
		fail_msg("%s: %s", json, str(r, "error"));
	assert_string_equal(str(r, "command"), command);
	assert_null(cJSON_GetObjectItem(r, "error"));
	return cJSON_GetObjectItem(r, "data");
}

/* Expect an error with exactly this sentence and code. */
static void err(struct fix *f, const char *json, int code, const char *sentence)
{
	const cJSON *r = run(f, json);

	if (!str(r, "error") || strcmp(str(r, "error"), sentence) != 0)
		fail_msg("%s: got error \"%s\", want \"%s\"", json,
			 str(r, "error") ? str(r, "error") : "(none)", sentence);
	assert_int_equal(f->rc, code);
	assert_null(cJSON_GetObjectItem(r, "data"));
	assert_false(f->fx.changed);
}

static bool bool_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	assert_true(cJSON_IsBool(v));
	return cJSON_IsTrue(v);
}

/* The array o[key] joined with commas. */
static const char *joined(const cJSON *o, const char *key, char *buf, size_t len)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key), *e;

	assert_true(cJSON_IsArray(a));
	buf[0] = '\0';
	cJSON_ArrayForEach(e, a) {
		assert_true(cJSON_IsString(e));
		if (buf[0])
			strncat(buf, ",", len - strlen(buf) - 1);
		strncat(buf, e->valuestring, len - strlen(buf) - 1);
	}
	return buf;
}

static void add_user(struct fix *f, const char *name)
{
	char j[256];

	snprintf(j, sizeof(j), "{\"command\":\"createUser\",\"username\":\"%s\",\"password\":\"pw-%s\"}",
		 name, name);
	ok(f, j, "createUser");
}

/* ---- the table ----------------------------------------------------------- */

static void table(void **state)
{
	static const char *const names[MQIM_CMD__COUNT] = {
		"createUser", "deleteUser", "setUserPassword", "getUser", "listUsers",
		"setAdmin", "disableUser", "enableUser", "createGroup", "deleteGroup",
		"listGroups", "getGroup", "addGroupMember", "removeGroupMember", "kickUser",
	};

	for (int i = 0; i < MQIM_CMD__COUNT; i++) {
		assert_string_equal(mqim_cmd_table[i].name, names[i]);
		assert_int_equal(mqim_cmd_table[i].id, i);
		assert_ptr_equal(mqim_cmd_lookup(names[i]), &mqim_cmd_table[i]);
	}
	assert_null(mqim_cmd_lookup("createuser"));
	assert_null(mqim_cmd_lookup(""));
	assert_null(mqim_cmd_lookup(NULL));
	assert_false(mqim_cmd_lookup("getUser")->mutates);
	assert_true(mqim_cmd_lookup("kickUser")->mutates);
	assert_int_equal(mqim_cmd_lookup("addGroupMember")->args,
			 MQIM_ARG_GROUP | MQIM_ARG_USERNAME);
	assert_int_equal(mqim_cmd_lookup("setAdmin")->args, MQIM_ARG_USERNAME | MQIM_ARG_ADMIN);
}

/* ---- the parser ---------------------------------------------------------- */

static void parse_expect(const char *payload, size_t len, const char *sentence_part)
{
	cJSON *root = (void *)1;
	const cJSON *cmds = (void *)1;
	const char *e = NULL;

	assert_int_equal(mqim_admin_parse(payload, len, &root, &cmds, &e), MQIM_EINVAL);
	assert_null(root);
	assert_null(cmds);
	assert_non_null(e);
	if (!strstr(e, sentence_part))
		fail_msg("payload %.*s: error \"%s\" lacks \"%s\"", (int)len,
			 payload ? payload : "", e, sentence_part);
}

#define BAD(s, part) parse_expect(s, sizeof(s) - 1, part)

static void parse_bad(void **state)
{
	parse_expect(NULL, 0, "empty payload");
	BAD("", "empty payload");
	BAD("  \n\t", "empty payload");
	BAD("{", "not valid JSON");
	BAD("{\"commands\": [", "not valid JSON");
	BAD("{\"commands\": [}]}", "not valid JSON");
	BAD("{'commands': []}", "not valid JSON");
	BAD("{\"commands\": [],}", "not valid JSON");
	BAD("\xff\xfe{}", "not valid JSON");
	BAD("nul", "not valid JSON");
	BAD("{\"commands\": []} {}", "data after its JSON value");
	BAD("{\"commands\": []}x", "data after its JSON value");
	BAD("[]", "must be a JSON object");
	BAD("\"commands\"", "must be a JSON object");
	BAD("42", "must be a JSON object");
	BAD("null", "must be a JSON object");
	BAD("{}", "missing \"commands\"");
	BAD("{\"Commands\": []}", "missing \"commands\"");
	BAD("{\"commands\": {}}", "must be an array");
	BAD("{\"commands\": \"listUsers\"}", "must be an array");
	BAD("{\"commands\": null}", "must be an array");
	BAD("{\"commands\": [1]}", "must be a JSON object");
	BAD("{\"commands\": [\"listUsers\"]}", "must be a JSON object");
	BAD("{\"commands\": [null]}", "must be a JSON object");
	BAD("{\"commands\": [[]]}", "must be a JSON object");
	BAD("{\"commands\": [{\"command\": \"listUsers\"}, 7]}", "must be a JSON object");
}

static void parse_deep_nesting(void **state)
{
	size_t n = 5000;
	char *p = malloc(2 * n + 1);

	assert_non_null(p);
	memset(p, '[', n);
	memset(p + n, ']', n);
	p[2 * n] = '\0';
	parse_expect(p, 2 * n, "not valid JSON");
	free(p);
}

static void parse_good(void **state)
{
	static const char req[] = " {\"commands\": [{\"command\": \"listUsers\"}, "
				  "{\"command\": \"x\", \"correlationData\": \"c1\"}]}\n";
	cJSON *root;
	const cJSON *cmds;
	const char *e = "unset";

	assert_int_equal(mqim_admin_parse(req, sizeof(req) - 1, &root, &cmds, &e), MQIM_OK);
	assert_null(e);
	assert_int_equal(cJSON_GetArraySize(cmds), 2);
	cJSON_Delete(root);

	/* Not NUL-terminated: the length is what counts. */
	char buf[64];
	memcpy(buf, "{\"commands\":[]}XXXX", 19);
	assert_int_equal(mqim_admin_parse(buf, 15, &root, &cmds, &e), MQIM_OK);
	assert_int_equal(cJSON_GetArraySize(cmds), 0);
	cJSON_Delete(root);
	/* A trailing NUL, as some clients send, is fine. */
	assert_int_equal(mqim_admin_parse("{\"commands\":[]}", 16, &root, &cmds, &e), MQIM_OK);
	cJSON_Delete(root);
}

/* ---- commands: users ----------------------------------------------------- */

static void create_user(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;
	const cJSON *r;
	char *text;

	r = run(f, "{\"command\":\"createUser\",\"username\":\"alice\",\"password\":\"s3cret!\"}");
	assert_int_equal(f->rc, MQIM_OK);
	text = cJSON_PrintUnformatted(r);
	assert_string_equal(text, "{\"command\":\"createUser\"}");
	cJSON_free(text);
	assert_true(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_CREATE_USER);
	assert_string_equal(f->fx.username, "alice");
	assert_false(f->fx.flag);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_string_equal(u.hash, f->fx.hash);
	assert_false(u.admin);
	assert_int_equal(mqim_passwd_verify(u.hash, "s3cret!"), MQIM_OK);
	assert_non_null(strstr(u.hash, "m=64,t=1,p=1"));   /* pp was used */

	err(f, "{\"command\":\"createUser\",\"username\":\"alice\",\"password\":\"x\"}",
	    MQIM_EEXISTS, "user already exists");
	ok(f, "{\"command\":\"createUser\",\"username\":\"root\",\"password\":\"x\",\"admin\":true}",
	   "createUser");
	assert_true(f->fx.flag);
	assert_int_equal(mqim_store_user_get(f->st, "root", &u), MQIM_OK);
	assert_true(u.admin);
}

static void create_user_bad_args(void **state)
{
	struct fix *f = *state;
	static const char inv[] =
		"invalid username: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit";

	err(f, "{\"command\":\"createUser\",\"password\":\"x\"}", MQIM_EINVAL,
	    "missing username: add \"username\": \"<name>\"");
	err(f, "{\"command\":\"createUser\",\"username\":\"bob\"}", MQIM_EINVAL,
	    "missing password: add \"password\": \"<password>\"");
	err(f, "{\"command\":\"createUser\",\"username\":7,\"password\":\"x\"}", MQIM_EINVAL,
	    "username must be a string");
	err(f, "{\"command\":\"createUser\",\"username\":\"bob\",\"password\":true}", MQIM_EINVAL,
	    "password must be a string");
	err(f, "{\"command\":\"createUser\",\"username\":\"bob\",\"password\":\"\"}", MQIM_EINVAL,
	    "invalid password: use 1 to 1024 bytes");
	err(f, "{\"command\":\"createUser\",\"username\":\"bob\",\"password\":\"x\",\"admin\":\"yes\"}",
	    MQIM_EINVAL, "admin must be true or false");
	static const char *const bad_names[] = {
		"", "a/b", "im/u/x", "+", "#", "$SYS", "a b", "_x", "-x", ".x", "é",
		"x12345678901234567890123456789012345678901234567890123456789012345",
	};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		char j[256];
		snprintf(j, sizeof(j), "{\"command\":\"createUser\",\"username\":\"%s\","
			 "\"password\":\"x\"}", bad_names[i]);
		err(f, j, MQIM_EBADNAME, inv);
	}
	char big[1200];
	int n = snprintf(big, sizeof(big), "{\"command\":\"createUser\",\"username\":\"bob\",\"password\":\"");
	memset(big + n, 'p', 1025);
	strcpy(big + n + 1025, "\"}");
	err(f, big, MQIM_EINVAL, "invalid password: use 1 to 1024 bytes");
	struct mqim_user_rec u;
	assert_int_equal(mqim_store_user_get(f->st, "bob", &u), MQIM_ENOTFOUND);
}

static void create_user_with_hash(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;

	ok(f, "{\"command\":\"createUser\",\"username\":\"mosq\",\"passwordHash\":\"" MOSQ7 "\"}",
	   "createUser");
	assert_string_equal(f->fx.hash, MOSQ7);
	assert_int_equal(mqim_store_user_get(f->st, "mosq", &u), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(u.hash, "s3cret pass"), MQIM_OK);
	err(f, "{\"command\":\"createUser\",\"username\":\"m2\",\"passwordHash\":\"$1$abc$def\"}",
	    MQIM_EINVAL, "unsupported passwordHash: give an $argon2id$, $argon2i$, $7$ "
	    "(PBKDF2-SHA512) or $6$ (salted SHA-512) hash, as mqimctl user import does");
	err(f, "{\"command\":\"createUser\",\"username\":\"m2\",\"passwordHash\":5}",
	    MQIM_EINVAL, "unsupported passwordHash: give an $argon2id$, $argon2i$, $7$ "
	    "(PBKDF2-SHA512) or $6$ (salted SHA-512) hash, as mqimctl user import does");
	err(f, "{\"command\":\"createUser\",\"username\":\"m2\",\"password\":\"x\","
	    "\"passwordHash\":\"" MOSQ7 "\"}", MQIM_EINVAL,
	    "give either password or passwordHash, not both");
	ok(f, "{\"command\":\"setUserPassword\",\"username\":\"mosq\",\"passwordHash\":\"" MOSQ7 "\"}",
	   "setUserPassword");
}

static void delete_user(void **state)
{
	struct fix *f = *state;

	add_user(f, "alice");
	ok(f, "{\"command\":\"deleteUser\",\"username\":\"alice\"}", "deleteUser");
	assert_true(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_DELETE_USER);
	assert_string_equal(f->fx.username, "alice");
	err(f, "{\"command\":\"deleteUser\",\"username\":\"alice\"}", MQIM_ENOTFOUND,
	    "user not found");
	err(f, "{\"command\":\"deleteUser\"}", MQIM_EINVAL,
	    "missing username: add \"username\": \"<name>\"");
	err(f, "{\"command\":\"deleteUser\",\"username\":\"a+b\"}", MQIM_EBADNAME,
	    "invalid username: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit");
}

static void set_user_password(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;
	const cJSON *r;
	char *text;

	add_user(f, "alice");
	r = run(f, "{\"command\":\"setUserPassword\",\"username\":\"alice\",\"password\":\"n3w-pw\"}");
	assert_int_equal(f->rc, MQIM_OK);
	text = cJSON_PrintUnformatted(r);
	assert_null(strstr(text, "n3w-pw"));
	cJSON_free(text);
	assert_true(f->fx.changed);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_string_equal(u.hash, f->fx.hash);
	assert_int_equal(mqim_passwd_verify(u.hash, "n3w-pw"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(u.hash, "pw-alice"), MQIM_EAUTH);
	err(f, "{\"command\":\"setUserPassword\",\"username\":\"ghost\",\"password\":\"x\"}",
	    MQIM_ENOTFOUND, "user not found");
	err(f, "{\"command\":\"setUserPassword\",\"username\":\"alice\"}", MQIM_EINVAL,
	    "missing password: add \"password\": \"<password>\"");
}

static void get_user(void **state)
{
	struct fix *f = *state;
	const cJSON *d;
	char buf[128];

	add_user(f, "alice");
	d = ok(f, "{\"command\":\"getUser\",\"username\":\"alice\"}", "getUser");
	assert_string_equal(str(d, "username"), "alice");
	assert_false(bool_of(d, "admin"));
	assert_false(bool_of(d, "disabled"));
	assert_string_equal(joined(d, "groups", buf, sizeof(buf)), "");
	assert_null(cJSON_GetObjectItem(d, "password"));
	assert_null(cJSON_GetObjectItem(d, "hash"));
	assert_false(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_GET_USER);

	ok(f, "{\"command\":\"createGroup\",\"group\":\"zeta\"}", "createGroup");
	ok(f, "{\"command\":\"createGroup\",\"group\":\"alpha\"}", "createGroup");
	ok(f, "{\"command\":\"addGroupMember\",\"group\":\"zeta\",\"username\":\"alice\"}", "addGroupMember");
	ok(f, "{\"command\":\"addGroupMember\",\"group\":\"alpha\",\"username\":\"alice\"}", "addGroupMember");
	ok(f, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":true}", "setAdmin");
	ok(f, "{\"command\":\"disableUser\",\"username\":\"alice\"}", "disableUser");
	d = ok(f, "{\"command\":\"getUser\",\"username\":\"alice\"}", "getUser");
	assert_true(bool_of(d, "admin"));
	assert_true(bool_of(d, "disabled"));
	assert_string_equal(joined(d, "groups", buf, sizeof(buf)), "alpha,zeta");

	err(f, "{\"command\":\"getUser\",\"username\":\"ghost\"}", MQIM_ENOTFOUND, "user not found");
	err(f, "{\"command\":\"getUser\",\"username\":[]}", MQIM_EINVAL, "username must be a string");
}

static void list_users(void **state)
{
	struct fix *f = *state;
	const cJSON *d, *users, *u;
	char *text;

	d = ok(f, "{\"command\":\"listUsers\"}", "listUsers");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(d, "users")), 0);
	add_user(f, "bob");
	add_user(f, "alice");
	ok(f, "{\"command\":\"setAdmin\",\"username\":\"bob\",\"admin\":true}", "setAdmin");
	d = ok(f, "{\"command\":\"listUsers\"}", "listUsers");
	users = cJSON_GetObjectItem(d, "users");
	assert_int_equal(cJSON_GetArraySize(users), 2);
	u = cJSON_GetArrayItem(users, 0);
	assert_string_equal(str(u, "username"), "alice");
	assert_false(bool_of(u, "admin"));
	assert_false(bool_of(u, "disabled"));
	u = cJSON_GetArrayItem(users, 1);
	assert_string_equal(str(u, "username"), "bob");
	assert_true(bool_of(u, "admin"));
	text = cJSON_PrintUnformatted(d);
	assert_null(strstr(text, "argon2"));
	assert_null(strstr(text, "pw-"));
	cJSON_free(text);
	assert_false(f->fx.changed);
}

static void set_admin(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;

	add_user(f, "alice");
	ok(f, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":true}", "setAdmin");
	assert_true(f->fx.changed);
	assert_true(f->fx.flag);
	assert_int_equal(f->fx.cmd, MQIM_CMD_SET_ADMIN);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_true(u.admin);
	ok(f, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":false}", "setAdmin");
	assert_false(f->fx.flag);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_false(u.admin);
	err(f, "{\"command\":\"setAdmin\",\"username\":\"alice\"}", MQIM_EINVAL,
	    "missing admin: add \"admin\": true or false");
	err(f, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":1}", MQIM_EINVAL,
	    "admin must be true or false");
	err(f, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":\"true\"}", MQIM_EINVAL,
	    "admin must be true or false");
	err(f, "{\"command\":\"setAdmin\",\"username\":\"ghost\",\"admin\":true}", MQIM_ENOTFOUND,
	    "user not found");
}

static void disable_enable(void **state)
{
	struct fix *f = *state;
	struct mqim_user_rec u;

	add_user(f, "alice");
	ok(f, "{\"command\":\"disableUser\",\"username\":\"alice\"}", "disableUser");
	assert_true(f->fx.changed);
	assert_true(f->fx.flag);
	assert_int_equal(f->fx.cmd, MQIM_CMD_DISABLE_USER);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_true(u.disabled);
	ok(f, "{\"command\":\"disableUser\",\"username\":\"alice\"}", "disableUser"); /* idempotent */
	ok(f, "{\"command\":\"enableUser\",\"username\":\"alice\"}", "enableUser");
	assert_false(f->fx.flag);
	assert_int_equal(f->fx.cmd, MQIM_CMD_ENABLE_USER);
	assert_int_equal(mqim_store_user_get(f->st, "alice", &u), MQIM_OK);
	assert_false(u.disabled);
	err(f, "{\"command\":\"disableUser\",\"username\":\"ghost\"}", MQIM_ENOTFOUND, "user not found");
	err(f, "{\"command\":\"enableUser\",\"username\":\"ghost\"}", MQIM_ENOTFOUND, "user not found");
	err(f, "{\"command\":\"enableUser\"}", MQIM_EINVAL,
	    "missing username: add \"username\": \"<name>\"");
}

static void kick_user(void **state)
{
	struct fix *f = *state;

	add_user(f, "alice");
	ok(f, "{\"command\":\"kickUser\",\"username\":\"alice\"}", "kickUser");
	assert_true(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_KICK_USER);
	assert_string_equal(f->fx.username, "alice");
	err(f, "{\"command\":\"kickUser\",\"username\":\"ghost\"}", MQIM_ENOTFOUND, "user not found");
	err(f, "{\"command\":\"kickUser\",\"username\":\"#\"}", MQIM_EBADNAME,
	    "invalid username: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit");
}

/* ---- commands: groups ---------------------------------------------------- */

static void groups(void **state)
{
	struct fix *f = *state;
	const cJSON *d;
	char buf[128];

	d = ok(f, "{\"command\":\"listGroups\"}", "listGroups");
	assert_string_equal(joined(d, "groups", buf, sizeof(buf)), "");
	ok(f, "{\"command\":\"createGroup\",\"group\":\"team\"}", "createGroup");
	assert_true(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_CREATE_GROUP);
	assert_string_equal(f->fx.group, "team");
	assert_string_equal(f->fx.username, "");
	err(f, "{\"command\":\"createGroup\",\"group\":\"team\"}", MQIM_EEXISTS, "group already exists");
	ok(f, "{\"command\":\"createGroup\",\"group\":\"ops\"}", "createGroup");
	d = ok(f, "{\"command\":\"listGroups\"}", "listGroups");
	assert_string_equal(joined(d, "groups", buf, sizeof(buf)), "ops,team");
	assert_false(f->fx.changed);
	ok(f, "{\"command\":\"deleteGroup\",\"group\":\"ops\"}", "deleteGroup");
	assert_true(f->fx.changed);
	assert_string_equal(f->fx.group, "ops");
	err(f, "{\"command\":\"deleteGroup\",\"group\":\"ops\"}", MQIM_ENOTFOUND, "group not found");
	err(f, "{\"command\":\"createGroup\"}", MQIM_EINVAL, "missing group: add \"group\": \"<name>\"");
	err(f, "{\"command\":\"createGroup\",\"group\":null}", MQIM_EINVAL, "group must be a string");
	err(f, "{\"command\":\"createGroup\",\"group\":\"a/b\"}", MQIM_EBADNAME,
	    "invalid group: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit");
	err(f, "{\"command\":\"deleteGroup\",\"group\":\"\"}", MQIM_EBADNAME,
	    "invalid group: use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit");
}

static void get_group(void **state)
{
	struct fix *f = *state;
	const cJSON *d;
	char buf[128];

	add_user(f, "bob");
	add_user(f, "alice");
	ok(f, "{\"command\":\"createGroup\",\"group\":\"team\"}", "createGroup");
	d = ok(f, "{\"command\":\"getGroup\",\"group\":\"team\"}", "getGroup");
	assert_string_equal(str(d, "group"), "team");
	assert_string_equal(joined(d, "members", buf, sizeof(buf)), "");
	ok(f, "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"bob\"}", "addGroupMember");
	ok(f, "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"alice\"}", "addGroupMember");
	d = ok(f, "{\"command\":\"getGroup\",\"group\":\"team\"}", "getGroup");
	assert_string_equal(joined(d, "members", buf, sizeof(buf)), "alice,bob");
	assert_false(f->fx.changed);
	err(f, "{\"command\":\"getGroup\",\"group\":\"ghost\"}", MQIM_ENOTFOUND, "group not found");
	err(f, "{\"command\":\"getGroup\",\"username\":\"team\"}", MQIM_EINVAL,
	    "missing group: add \"group\": \"<name>\"");
}

static void members(void **state)
{
	struct fix *f = *state;
	const cJSON *d;
	char buf[128];

	add_user(f, "alice");
	ok(f, "{\"command\":\"createGroup\",\"group\":\"team\"}", "createGroup");
	ok(f, "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"alice\"}", "addGroupMember");
	assert_true(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_ADD_GROUP_MEMBER);
	assert_string_equal(f->fx.group, "team");
	assert_string_equal(f->fx.username, "alice");
	err(f, "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"alice\"}",
	    MQIM_EEXISTS, "user is already a member of the group");
	err(f, "{\"command\":\"addGroupMember\",\"group\":\"ghost\",\"username\":\"alice\"}",
	    MQIM_ENOTFOUND, "group not found");
	err(f, "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"ghost\"}",
	    MQIM_ENOTFOUND, "user not found");
	err(f, "{\"command\":\"addGroupMember\",\"group\":\"team\"}", MQIM_EINVAL,
	    "missing username: add \"username\": \"<name>\"");
	err(f, "{\"command\":\"addGroupMember\",\"username\":\"alice\"}", MQIM_EINVAL,
	    "missing group: add \"group\": \"<name>\"");

	ok(f, "{\"command\":\"removeGroupMember\",\"group\":\"team\",\"username\":\"alice\"}",
	   "removeGroupMember");
	assert_true(f->fx.changed);
	assert_int_equal(f->fx.cmd, MQIM_CMD_REMOVE_GROUP_MEMBER);
	err(f, "{\"command\":\"removeGroupMember\",\"group\":\"team\",\"username\":\"alice\"}",
	    MQIM_ENOTFOUND, "user is not a member of the group");
	err(f, "{\"command\":\"removeGroupMember\",\"group\":\"ghost\",\"username\":\"alice\"}",
	    MQIM_ENOTFOUND, "group not found");
	err(f, "{\"command\":\"removeGroupMember\",\"group\":\"team\",\"username\":\"ghost\"}",
	    MQIM_ENOTFOUND, "user not found");
	d = ok(f, "{\"command\":\"getGroup\",\"group\":\"team\"}", "getGroup");
	assert_string_equal(joined(d, "members", buf, sizeof(buf)), "");

	/* Deleting a user or a group removes the memberships with it. */
	ok(f, "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"alice\"}", "addGroupMember");
	ok(f, "{\"command\":\"deleteUser\",\"username\":\"alice\"}", "deleteUser");
	d = ok(f, "{\"command\":\"getGroup\",\"group\":\"team\"}", "getGroup");
	assert_string_equal(joined(d, "members", buf, sizeof(buf)), "");
}

/* ---- envelope of a response ---------------------------------------------- */

static void correlation_data(void **state)
{
	struct fix *f = *state;
	const cJSON *r;

	r = run(f, "{\"command\":\"listUsers\",\"correlationData\":\"abc-1\"}");
	assert_string_equal(str(r, "correlationData"), "abc-1");
	r = run(f, "{\"command\":\"getUser\",\"username\":\"ghost\",\"correlationData\":\"abc-2\"}");
	assert_string_equal(str(r, "correlationData"), "abc-2");
	assert_string_equal(str(r, "error"), "user not found");
	r = run(f, "{\"command\":\"nope\",\"correlationData\":\"abc-3\"}");
	assert_string_equal(str(r, "correlationData"), "abc-3");
	/* Only a string is echoed. */
	r = run(f, "{\"command\":\"listUsers\",\"correlationData\":42}");
	assert_null(cJSON_GetObjectItem(r, "correlationData"));
	r = run(f, "{\"command\":\"listUsers\",\"correlationData\":{\"a\":1}}");
	assert_null(cJSON_GetObjectItem(r, "correlationData"));
	r = run(f, "{\"command\":\"listUsers\"}");
	assert_null(cJSON_GetObjectItem(r, "correlationData"));
}

static void unknown_and_malformed(void **state)
{
	struct fix *f = *state;
	const cJSON *r;

	err(f, "{\"command\":\"dropTables\"}", MQIM_EUNSUPPORTED, "unknown command");
	err(f, "{\"command\":\"createuser\",\"username\":\"a\",\"password\":\"b\"}",
	    MQIM_EUNSUPPORTED, "unknown command");
	r = run(f, "{\"command\":\"dropTables\"}");
	assert_string_equal(str(r, "command"), "dropTables");
	r = run(f, "{\"username\":\"alice\"}");
	assert_int_equal(f->rc, MQIM_EINVAL);
	assert_string_equal(str(r, "error"), "missing command: add \"command\": \"<name>\"");
	assert_null(cJSON_GetObjectItem(r, "command"));
	r = run(f, "{\"command\":7}");
	assert_int_equal(f->rc, MQIM_EINVAL);
	assert_null(cJSON_GetObjectItem(r, "command"));
	r = run(f, "[1,2]");
	assert_int_equal(f->rc, MQIM_EINVAL);
	assert_non_null(strstr(str(r, "error"), "must be a JSON object"));
	r = run(f, "\"listUsers\"");
	assert_int_equal(f->rc, MQIM_EINVAL);
}

static void never_a_password(void **state)
{
	struct fix *f = *state;
	char *text;

	add_user(f, "alice");
	run(f, "{\"command\":\"createUser\",\"username\":\"alice\",\"password\":\"Sekr1t-A\"}");
	run(f, "{\"command\":\"createUser\",\"username\":\"b/c\",\"password\":\"Sekr1t-B\"}");
	run(f, "{\"command\":\"setUserPassword\",\"username\":\"ghost\",\"password\":\"Sekr1t-C\"}");
	run(f, "{\"command\":\"createUser\",\"username\":\"d\",\"password\":\"Sekr1t-D\",\"admin\":3}");
	run(f, "{\"command\":\"getUser\",\"username\":\"alice\",\"password\":\"Sekr1t-E\"}");
	text = cJSON_PrintUnformatted(f->responses);
	assert_null(strstr(text, "Sekr1t"));
	assert_null(strstr(text, "pw-alice"));
	assert_null(strstr(text, "$argon2"));
	cJSON_free(text);
}

static void batch_in_transaction(void **state)
{
	struct fix *f = *state;
	static const char req[] =
		"{\"commands\":["
		"{\"command\":\"createGroup\",\"group\":\"g\",\"correlationData\":\"1\"},"
		"{\"command\":\"createUser\",\"username\":\"u\",\"password\":\"p\",\"correlationData\":\"2\"},"
		"{\"command\":\"createGroup\",\"group\":\"g\",\"correlationData\":\"3\"},"
		"{\"command\":\"addGroupMember\",\"group\":\"g\",\"username\":\"u\",\"correlationData\":\"4\"}]}";
	cJSON *root;
	const cJSON *cmds, *c;
	const char *e;
	int fails = 0, i = 0;

	assert_int_equal(mqim_admin_parse(req, sizeof(req) - 1, &root, &cmds, &e), MQIM_OK);
	assert_int_equal(mqim_store_begin(f->st), MQIM_OK);
	cJSON_ArrayForEach(c, cmds)
		fails += mqim_admin_exec(f->st, &fast, c, f->responses, NULL) != MQIM_OK;
	assert_int_equal(mqim_store_commit(f->st), MQIM_OK);
	cJSON_Delete(root);
	assert_int_equal(fails, 1);
	cJSON_ArrayForEach(c, f->responses) {
		char want[16];
		snprintf(want, sizeof(want), "%d", ++i);
		assert_string_equal(str(c, "correlationData"), want);
		assert_true((i == 3) == (cJSON_GetObjectItem(c, "error") != NULL));
	}
	assert_int_equal(mqim_store_group_exists(f->st, "g"), MQIM_OK);
}

/* ---- build --------------------------------------------------------------- */

static void build(void **state)
{
	cJSON *o;
	char *text;

	o = mqim_admin_build("createUser", "alice", NULL, "pw", -1);
	text = cJSON_PrintUnformatted(o);
	assert_string_equal(text, "{\"command\":\"createUser\",\"username\":\"alice\",\"password\":\"pw\"}");
	cJSON_free(text);
	cJSON_Delete(o);
	o = mqim_admin_build("setAdmin", "alice", NULL, NULL, 0);
	text = cJSON_PrintUnformatted(o);
	assert_string_equal(text, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":false}");
	cJSON_free(text);
	cJSON_Delete(o);
	o = mqim_admin_build("addGroupMember", "bob", "team", NULL, -1);
	text = cJSON_PrintUnformatted(o);
	assert_string_equal(text, "{\"command\":\"addGroupMember\",\"username\":\"bob\",\"group\":\"team\"}");
	cJSON_free(text);
	cJSON_Delete(o);
	o = mqim_admin_build("listUsers", NULL, NULL, NULL, -1);
	text = cJSON_PrintUnformatted(o);
	assert_string_equal(text, "{\"command\":\"listUsers\"}");
	cJSON_free(text);
	cJSON_Delete(o);
	assert_null(mqim_admin_build("nope", "a", NULL, NULL, -1));
	assert_null(mqim_admin_build(NULL, NULL, NULL, NULL, -1));
	for (int i = 0; i < MQIM_CMD__COUNT; i++) {
		o = mqim_admin_build(mqim_cmd_table[i].name, NULL, NULL, NULL, -1);
		assert_non_null(o);
		cJSON_Delete(o);
	}
}

/* A built command executes: build and exec agree on argument names. */
static void build_then_exec(void **state)
{
	struct fix *f = *state;
	cJSON *o;

	o = mqim_admin_build("createUser", "carol", NULL, "pw", 1);
	assert_int_equal(mqim_admin_exec(f->st, &fast, o, f->responses, &f->fx), MQIM_OK);
	assert_true(f->fx.flag);
	cJSON_Delete(o);
	o = mqim_admin_build("createGroup", NULL, "g", NULL, -1);
	assert_int_equal(mqim_admin_exec(f->st, &fast, o, f->responses, NULL), MQIM_OK);
	cJSON_Delete(o);
	o = mqim_admin_build("addGroupMember", "carol", "g", NULL, -1);
	assert_int_equal(mqim_admin_exec(f->st, &fast, o, f->responses, NULL), MQIM_OK);
	cJSON_Delete(o);
	o = mqim_admin_build("setAdmin", "carol", NULL, NULL, 0);
	assert_int_equal(mqim_admin_exec(f->st, &fast, o, f->responses, NULL), MQIM_OK);
	cJSON_Delete(o);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(table),
		cmocka_unit_test(parse_bad),
		cmocka_unit_test(parse_deep_nesting),
		cmocka_unit_test(parse_good),
		T(create_user),
		T(create_user_bad_args),
		T(create_user_with_hash),
		T(delete_user),
		T(set_user_password),
		T(get_user),
		T(list_users),
		T(set_admin),
		T(disable_enable),
		T(kick_user),
		T(groups),
		T(get_group),
		T(members),
		T(correlation_data),
		T(unknown_and_malformed),
		T(never_a_password),
		T(batch_in_transaction),
		cmocka_unit_test(build),
		T(build_then_exec),
	};
#undef T

	return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
