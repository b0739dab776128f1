/* test_plugin_control.c - the admin topic $CONTROL/mqim/v1 (docs/protocol.md,
 * Admin control topic): every command, its error cases, correlationData,
 * responses for admins only, changes that bite at once and survive a
 * restart, and no password in a response or in the log.
 *
 * One broker for the file (restarted once by the persistence test).  Users
 * root (admin), alice and bob, group team = {alice}.  Every test logs in its
 * own admin session, so none depends on another's connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tbroker.h"
#include "tclient.h"
#include "tcontrol.h"

#define NOT_AUTHORIZED 0x87

#define ROOT_PW  "root-Ctl-Pw-6610"
#define ALICE_PW "alice-Ctl-Pw-3377"
#define BOB_PW   "bob-Ctl-Pw-9021"

/* Every password a test sends: none may show up in a response or the log. */
static const char *const secrets[] = {
	ROOT_PW, ALICE_PW, BOB_PW, "Newbie-Secret-1", "Carl-Old-Secret-2", "Carl-New-Secret-3",
	"Temp-Secret-4", "Persist-Old-5", "Persist-New-6", "Persist-Two-7", "Admin-Two-8",
	"Never-Used-9", "Kick-Secret-10",
};

static struct tbroker broker;

static int setup(void **state)
{
	static const char *const team[] = { "alice", NULL };
	if (tbroker_init(&broker, NULL) != 0 ||
	    tbroker_add_user(&broker, "root", ROOT_PW, true) != 0 ||
	    tbroker_add_user(&broker, "alice", ALICE_PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", BOB_PW, false) != 0 ||
	    tbroker_add_group(&broker, "team", team) != 0 ||
	    tbroker_start(&broker) != 0)
		goto fail;
	return 0;
fail:
	tbroker_cleanup(&broker);
	return -1;
}

static int teardown(void **state)
{
	return tbroker_cleanup(&broker) == 0 ? 0 : -1;
}

/* ---- helpers ---------------------------------------------------------------------- */

static struct tclient *admin_session(const char *suffix)
{
	char cid[64];
	snprintf(cid, sizeof cid, "root/%s", suffix);
	struct tclient *c = tclient_login(broker.port, cid, "root", ROOT_PW);
	assert_non_null(c);
	assert_int_equal(tcontrol_prepare(c), 1);
	return c;
}

static int login_rc(const char *cid, const char *user, const char *pass)
{
	struct tclient *c = tclient_new(broker.port, cid);
	assert_non_null(c);
	int rc = tclient_connect(c, user, pass);
	tclient_free(c);
	return rc;
}

/* True when some object in the tree has a key that would hold a secret. */
static bool has_secret_key(const cJSON *node)
{
	static const char *const keys[] = { "password", "passwordHash", "hash" };
	for (const cJSON *c = node ? node->child : NULL; c; c = c->next) {
		for (size_t i = 0; c->string && i < sizeof keys / sizeof keys[0]; i++)
			if (strcmp(c->string, keys[i]) == 0)
				return true;
		if (has_secret_key(c))
			return true;
	}
	return false;
}

static void assert_no_secret(const cJSON *resp)
{
	char *text = cJSON_PrintUnformatted(resp);
	assert_non_null(text);
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		if (strstr(text, secrets[i]))
			fail_msg("a password in a response: %s", text);
	if (strstr(text, "$argon2") || has_secret_key(resp))
		fail_msg("a password hash or field in a response: %s", text);
	cJSON_free(text);
}

/* Run a command; returns its response (never NULL: fails the test). */
static cJSON *call(struct tclient *admin, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static cJSON *call(struct tclient *admin, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	assert_true(n > 0);
	cJSON *r = tcontrol_call(admin, text);
	if (!r)
		fail_msg("no response to %s", text);
	free(text);
	assert_no_secret(r);
	return r;
}

/* Expect success: no "error"; the response is checked for its command. */
static void expect_ok(struct tclient *admin, const char *cmd, const char *json)
{
	cJSON *r = call(admin, "%s", json);
	const char *err = tcontrol_error(r);
	if (err)
		fail_msg("%s failed: %s", json, err);
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "command");
	assert_true(cJSON_IsString(c));
	assert_string_equal(c->valuestring, cmd);
	cJSON_Delete(r);
}

/* Expect an error response with a non-empty sentence. */
static void expect_error(struct tclient *admin, const char *json)
{
	cJSON *r = call(admin, "%s", json);
	const char *err = tcontrol_error(r);
	if (!err || !*err)
		fail_msg("%s succeeded, an error was expected", json);
	cJSON_Delete(r);
}

/* The "data" object of a successful query; *resp must be cJSON_Delete()d. */
static const cJSON *query(struct tclient *admin, cJSON **resp, const char *json)
{
	*resp = call(admin, "%s", json);
	if (tcontrol_error(*resp))
		fail_msg("%s failed: %s", json, tcontrol_error(*resp));
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(*resp, "data");
	assert_true(cJSON_IsObject(data));
	return data;
}

static bool array_has(const cJSON *arr, const char *s)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && strcmp(it->valuestring, s) == 0)
			return true;
	return false;
}

static bool get_bool(const cJSON *obj, const char *key)
{
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsBool(b))
		fail_msg("\"%s\" is not a bool", key);
	return cJSON_IsTrue(b);
}

/* getUser's data, checked for its shape. */
static void get_user(struct tclient *admin, const char *name, bool *admin_flag, bool *disabled,
		     cJSON **resp, const cJSON **groups)
{
	char json[160];
	snprintf(json, sizeof json, "{\"command\":\"getUser\",\"username\":\"%s\"}", name);
	const cJSON *d = query(admin, resp, json);
	const cJSON *un = cJSON_GetObjectItemCaseSensitive(d, "username");
	assert_true(cJSON_IsString(un));
	assert_string_equal(un->valuestring, name);
	*admin_flag = get_bool(d, "admin");
	*disabled = get_bool(d, "disabled");
	*groups = cJSON_GetObjectItemCaseSensitive(d, "groups");
	assert_true(cJSON_IsArray(*groups));
}

/* The "users" entry for name in listUsers, or NULL. */
static const cJSON *list_users_find(const cJSON *data, const char *name)
{
	const cJSON *users = cJSON_GetObjectItemCaseSensitive(data, "users");
	assert_true(cJSON_IsArray(users));
	const cJSON *u;
	cJSON_ArrayForEach(u, users) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(u, "username");
		if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
			return u;
	}
	return NULL;
}

static bool group_listed(struct tclient *admin, const char *gid)
{
	cJSON *r;
	const cJSON *d = query(admin, &r, "{\"command\":\"listGroups\"}");
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(d, "groups");
	assert_true(cJSON_IsArray(groups));
	bool yes = array_has(groups, gid);
	cJSON_Delete(r);
	return yes;
}

/* Members of gid per getGroup (checked for its shape). */
static bool group_has_member(struct tclient *admin, const char *gid, const char *user)
{
	char json[160];
	snprintf(json, sizeof json, "{\"command\":\"getGroup\",\"group\":\"%s\"}", gid);
	cJSON *r;
	const cJSON *d = query(admin, &r, json);
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(d, "group");
	assert_true(cJSON_IsString(g));
	assert_string_equal(g->valuestring, gid);
	const cJSON *members = cJSON_GetObjectItemCaseSensitive(d, "members");
	assert_true(cJSON_IsArray(members));
	bool yes = array_has(members, user);
	cJSON_Delete(r);
	return yes;
}

/* ---- users ------------------------------------------------------------------------ */

static void create_user(void **state)
{
	struct tclient *admin = admin_session("cu");
	assert_int_equal(login_rc("newbie", "newbie", "Newbie-Secret-1"), NOT_AUTHORIZED);
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"newbie\",\"password\":\"Newbie-Secret-1\"}");
	/* at once: the new user logs in, with that password only */
	assert_int_equal(login_rc("newbie", "newbie", "Newbie-Secret-1"), 0);
	assert_int_equal(login_rc("newbie/2", "newbie", "Never-Used-9"), NOT_AUTHORIZED);
	/* a new user is not an admin */
	struct tclient *nb = tclient_login(broker.port, "newbie/ctl", "newbie", "Newbie-Secret-1");
	assert_non_null(nb);
	assert_int_equal(tclient_subscribe(nb, "$CONTROL/mqim/v1/response", 1), NOT_AUTHORIZED);
	tclient_free(nb);

	/* error cases */
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"newbie\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"alice\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"bad/name\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"bad+name\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"$x\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"a123456789b123456789c123456789"
			    "d123456789e123456789f123456789g1234\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"nopass\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":\"numpass\",\"password\":123}");
	expect_error(admin, "{\"command\":\"createUser\",\"username\":17,\"password\":\"Never-Used-9\"}");
	/* none of the failed ones exists */
	cJSON *r = call(admin, "{\"command\":\"getUser\",\"username\":\"nopass\"}");
	assert_non_null(tcontrol_error(r));
	cJSON_Delete(r);
	assert_int_equal(login_rc("numpass", "numpass", "123"), NOT_AUTHORIZED);
	tclient_free(admin);
}

static void get_and_list_users(void **state)
{
	struct tclient *admin = admin_session("gl");
	bool is_admin, disabled;
	cJSON *r;
	const cJSON *groups;
	get_user(admin, "alice", &is_admin, &disabled, &r, &groups);
	assert_false(is_admin);
	assert_false(disabled);
	assert_true(array_has(groups, "team"));
	assert_int_equal(cJSON_GetArraySize(groups), 1);
	cJSON_Delete(r);
	get_user(admin, "root", &is_admin, &disabled, &r, &groups);
	assert_true(is_admin);
	assert_int_equal(cJSON_GetArraySize(groups), 0);
	cJSON_Delete(r);

	const cJSON *d = query(admin, &r, "{\"command\":\"listUsers\"}");
	const cJSON *a = list_users_find(d, "alice");
	const cJSON *root = list_users_find(d, "root");
	assert_non_null(a);
	assert_non_null(root);
	assert_false(get_bool(a, "admin"));
	assert_false(get_bool(a, "disabled"));
	assert_true(get_bool(root, "admin"));
	assert_null(list_users_find(d, "nosuchuser"));
	cJSON_Delete(r);

	expect_error(admin, "{\"command\":\"getUser\",\"username\":\"nosuchuser\"}");
	expect_error(admin, "{\"command\":\"getUser\",\"username\":\"bad/name\"}");
	expect_error(admin, "{\"command\":\"getUser\"}");
	tclient_free(admin);
}

static void set_user_password(void **state)
{
	struct tclient *admin = admin_session("pw");
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"carl\",\"password\":\"Carl-Old-Secret-2\"}");
	/* logged in once with the old password (a broker may remember it) */
	assert_int_equal(login_rc("carl", "carl", "Carl-Old-Secret-2"), 0);
	assert_int_equal(login_rc("carl", "carl", "Carl-Old-Secret-2"), 0);
	expect_ok(admin, "setUserPassword",
		  "{\"command\":\"setUserPassword\",\"username\":\"carl\",\"password\":\"Carl-New-Secret-3\"}");
	assert_int_equal(login_rc("carl", "carl", "Carl-Old-Secret-2"), NOT_AUTHORIZED);
	assert_int_equal(login_rc("carl", "carl", "Carl-New-Secret-3"), 0);

	expect_error(admin, "{\"command\":\"setUserPassword\",\"username\":\"nosuchuser\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"setUserPassword\",\"username\":\"carl\"}");
	expect_error(admin, "{\"command\":\"setUserPassword\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":\"setUserPassword\",\"username\":\"bad/name\",\"password\":\"Never-Used-9\"}");
	/* the failed calls changed nothing */
	assert_int_equal(login_rc("carl", "carl", "Carl-New-Secret-3"), 0);
	tclient_free(admin);
}

static void set_admin(void **state)
{
	struct tclient *admin = admin_session("sa");
	struct tclient *alice = tclient_login(broker.port, "alice/sa", "alice", ALICE_PW);
	assert_non_null(alice);
	assert_int_equal(tclient_subscribe(alice, "$CONTROL/mqim/v1/response", 1), NOT_AUTHORIZED);

	expect_ok(admin, "setAdmin", "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":true}");
	/* at once, on the session she already has */
	assert_int_equal(tcontrol_prepare(alice), 1);
	cJSON *r = call(alice, "{\"command\":\"listGroups\"}");
	assert_null(tcontrol_error(r));
	cJSON_Delete(r);
	bool is_admin, disabled;
	const cJSON *groups;
	get_user(admin, "alice", &is_admin, &disabled, &r, &groups);
	assert_true(is_admin);
	cJSON_Delete(r);

	expect_ok(admin, "setAdmin", "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":false}");
	assert_int_equal(tclient_subscribe(alice, "$CONTROL/mqim/v1/response", 1), NOT_AUTHORIZED);
	const char *req = "{\"commands\":[{\"command\":\"listGroups\"}]}";
	assert_int_equal(tclient_publish(alice, "$CONTROL/mqim/v1", req, strlen(req), 1, false),
			 NOT_AUTHORIZED);
	get_user(admin, "alice", &is_admin, &disabled, &r, &groups);
	assert_false(is_admin);
	cJSON_Delete(r);

	expect_error(admin, "{\"command\":\"setAdmin\",\"username\":\"alice\"}");
	expect_error(admin, "{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":\"yes\"}");
	expect_error(admin, "{\"command\":\"setAdmin\",\"username\":\"nosuchuser\",\"admin\":true}");
	expect_error(admin, "{\"command\":\"setAdmin\",\"admin\":true}");
	tclient_free(alice);
	tclient_free(admin);
}

static void disable_and_enable_user(void **state)
{
	struct tclient *admin = admin_session("de");
	assert_int_equal(login_rc("bob/de", "bob", BOB_PW), 0);
	expect_ok(admin, "disableUser", "{\"command\":\"disableUser\",\"username\":\"bob\"}");
	assert_int_equal(login_rc("bob/de", "bob", BOB_PW), NOT_AUTHORIZED);
	bool is_admin, disabled;
	cJSON *r;
	const cJSON *groups;
	get_user(admin, "bob", &is_admin, &disabled, &r, &groups);
	assert_true(disabled);
	cJSON_Delete(r);
	r = call(admin, "{\"command\":\"listUsers\"}");
	assert_true(get_bool(list_users_find(cJSON_GetObjectItemCaseSensitive(r, "data"), "bob"),
			     "disabled"));
	cJSON_Delete(r);

	expect_ok(admin, "enableUser", "{\"command\":\"enableUser\",\"username\":\"bob\"}");
	assert_int_equal(login_rc("bob/de", "bob", BOB_PW), 0);
	get_user(admin, "bob", &is_admin, &disabled, &r, &groups);
	assert_false(disabled);
	cJSON_Delete(r);

	expect_error(admin, "{\"command\":\"disableUser\",\"username\":\"nosuchuser\"}");
	expect_error(admin, "{\"command\":\"enableUser\",\"username\":\"nosuchuser\"}");
	expect_error(admin, "{\"command\":\"disableUser\"}");
	expect_error(admin, "{\"command\":\"enableUser\",\"username\":\"bad#name\"}");
	tclient_free(admin);
}

static void delete_user(void **state)
{
	struct tclient *admin = admin_session("du");
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"temp\",\"password\":\"Temp-Secret-4\"}");
	expect_ok(admin, "addGroupMember",
		  "{\"command\":\"addGroupMember\",\"group\":\"team\",\"username\":\"temp\"}");
	assert_true(group_has_member(admin, "team", "temp"));
	assert_int_equal(login_rc("temp", "temp", "Temp-Secret-4"), 0);

	expect_ok(admin, "deleteUser", "{\"command\":\"deleteUser\",\"username\":\"temp\"}");
	assert_int_equal(login_rc("temp", "temp", "Temp-Secret-4"), NOT_AUTHORIZED);
	expect_error(admin, "{\"command\":\"getUser\",\"username\":\"temp\"}");
	assert_false(group_has_member(admin, "team", "temp"));
	cJSON *r = call(admin, "{\"command\":\"listUsers\"}");
	assert_null(list_users_find(cJSON_GetObjectItemCaseSensitive(r, "data"), "temp"));
	cJSON_Delete(r);

	expect_error(admin, "{\"command\":\"deleteUser\",\"username\":\"temp\"}");
	expect_error(admin, "{\"command\":\"deleteUser\",\"username\":\"bad/name\"}");
	expect_error(admin, "{\"command\":\"deleteUser\"}");
	tclient_free(admin);
}

/* ---- groups ------------------------------------------------------------------------- */

static void groups_and_members(void **state)
{
	struct tclient *admin = admin_session("gr");
	struct tclient *alice = tclient_login(broker.port, "alice/gr", "alice", ALICE_PW);
	assert_non_null(alice);

	assert_false(group_listed(admin, "crew"));
	expect_ok(admin, "createGroup", "{\"command\":\"createGroup\",\"group\":\"crew\"}");
	assert_true(group_listed(admin, "crew"));
	assert_false(group_has_member(admin, "crew", "alice"));
	expect_error(admin, "{\"command\":\"createGroup\",\"group\":\"crew\"}");
	expect_error(admin, "{\"command\":\"createGroup\",\"group\":\"bad/group\"}");
	expect_error(admin, "{\"command\":\"createGroup\",\"group\":\"\"}");
	expect_error(admin, "{\"command\":\"createGroup\"}");

	/* membership bites at once on alice's live session */
	assert_int_equal(tclient_subscribe(alice, "im/g/crew", 1), NOT_AUTHORIZED);
	expect_ok(admin, "addGroupMember",
		  "{\"command\":\"addGroupMember\",\"group\":\"crew\",\"username\":\"alice\"}");
	assert_true(group_has_member(admin, "crew", "alice"));
	assert_int_equal(tclient_subscribe(alice, "im/g/crew", 1), 1);
	bool is_admin, disabled;
	cJSON *r;
	const cJSON *groups;
	get_user(admin, "alice", &is_admin, &disabled, &r, &groups);
	assert_true(array_has(groups, "crew"));
	cJSON_Delete(r);

	expect_error(admin, "{\"command\":\"addGroupMember\",\"group\":\"crew\",\"username\":\"alice\"}");
	expect_error(admin, "{\"command\":\"addGroupMember\",\"group\":\"crew\",\"username\":\"nosuchuser\"}");
	expect_error(admin, "{\"command\":\"addGroupMember\",\"group\":\"nosuchgroup\",\"username\":\"alice\"}");
	expect_error(admin, "{\"command\":\"addGroupMember\",\"group\":\"crew\"}");
	expect_error(admin, "{\"command\":\"addGroupMember\",\"username\":\"alice\"}");

	expect_ok(admin, "removeGroupMember",
		  "{\"command\":\"removeGroupMember\",\"group\":\"crew\",\"username\":\"alice\"}");
	assert_false(group_has_member(admin, "crew", "alice"));
	assert_int_equal(tclient_subscribe(alice, "im/g/crew", 1), NOT_AUTHORIZED);
	expect_error(admin, "{\"command\":\"removeGroupMember\",\"group\":\"nosuchgroup\",\"username\":\"alice\"}");
	expect_error(admin, "{\"command\":\"removeGroupMember\",\"group\":\"crew\",\"username\":\"nosuchuser\"}");
	expect_error(admin, "{\"command\":\"removeGroupMember\",\"group\":\"crew\"}");

	expect_ok(admin, "deleteGroup", "{\"command\":\"deleteGroup\",\"group\":\"crew\"}");
	assert_false(group_listed(admin, "crew"));
	expect_error(admin, "{\"command\":\"getGroup\",\"group\":\"crew\"}");
	expect_error(admin, "{\"command\":\"deleteGroup\",\"group\":\"crew\"}");
	expect_error(admin, "{\"command\":\"deleteGroup\"}");
	expect_error(admin, "{\"command\":\"getGroup\",\"group\":\"bad/group\"}");

	/* a deleted group's topic is closed to its former members */
	expect_ok(admin, "createGroup", "{\"command\":\"createGroup\",\"group\":\"brief\"}");
	expect_ok(admin, "addGroupMember",
		  "{\"command\":\"addGroupMember\",\"group\":\"brief\",\"username\":\"alice\"}");
	assert_int_equal(tclient_subscribe(alice, "im/g/brief", 1), 1);
	expect_ok(admin, "deleteGroup", "{\"command\":\"deleteGroup\",\"group\":\"brief\"}");
	assert_int_equal(tclient_subscribe(alice, "im/g/brief", 1), NOT_AUTHORIZED);
	tclient_free(alice);
	tclient_free(admin);
}

/* ---- sessions ------------------------------------------------------------------------------ */

static void kick_user(void **state)
{
	struct tclient *admin = admin_session("kk");
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"kicked\",\"password\":\"Kick-Secret-10\"}");
	struct tclient *k1 = tclient_login(broker.port, "kicked/1", "kicked", "Kick-Secret-10");
	struct tclient *k2 = tclient_login(broker.port, "kicked/2", "kicked", "Kick-Secret-10");
	struct tclient *bob = tclient_login(broker.port, "bob/kk", "bob", BOB_PW);
	assert_non_null(k1);
	assert_non_null(k2);
	assert_non_null(bob);

	expect_ok(admin, "kickUser", "{\"command\":\"kickUser\",\"username\":\"kicked\"}");
	assert_true(tclient_wait_disconnected(k1, 3000));
	assert_true(tclient_wait_disconnected(k2, 3000));
	/* nobody else */
	assert_true(tclient_is_connected(bob));
	assert_true(tclient_is_connected(admin));
	/* a kick is not a ban */
	assert_int_equal(login_rc("kicked/3", "kicked", "Kick-Secret-10"), 0);

	expect_error(admin, "{\"command\":\"kickUser\",\"username\":\"bad/name\"}");
	expect_error(admin, "{\"command\":\"kickUser\"}");
	tclient_free(bob);
	tclient_free(k2);
	tclient_free(k1);
	tclient_free(admin);
}

/* ---- the protocol of the topic ---------------------------------------------------------------- */

static void bad_requests_answered(void **state)
{
	struct tclient *admin = admin_session("bad");
	static const char *const payloads[] = {
		"this is not json",
		"{\"commands\": [",
		"",
		"[]",
		"{}",
		"{\"commands\": 5}",
		"{\"commands\": [5]}",
		"{\"commands\": [\"listUsers\"]}",
		"{\"commands\":[{\"command\":\"listUsers\"}]} trailing",
	};
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		int rc;
		cJSON *root = tcontrol_raw(admin, payloads[i], &rc);
		assert_int_equal(rc, 0);
		if (!root)
			fail_msg("no response to payload \"%s\"", payloads[i]);
		const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "responses");
		assert_true(cJSON_IsArray(arr));
		const cJSON *first = cJSON_GetArrayItem(arr, 0);
		if (!tcontrol_error(first))
			fail_msg("no error for payload \"%s\"", payloads[i]);
		cJSON_Delete(root);
	}
	expect_error(admin, "{\"command\":\"noSuchCommand\",\"username\":\"alice\"}");
	expect_error(admin, "{\"command\":\"createuser\",\"username\":\"x1\",\"password\":\"Never-Used-9\"}");
	expect_error(admin, "{\"command\":42}");
	expect_error(admin, "{\"username\":\"alice\"}");
	/* the broker is still there and answering */
	assert_true(tclient_is_connected(admin));
	expect_ok(admin, "listUsers", "{\"command\":\"listUsers\"}");
	tclient_free(admin);
}

static void correlation_and_batches(void **state)
{
	struct tclient *admin = admin_session("corr");
	cJSON *r = call(admin, "{\"command\":\"listGroups\",\"correlationData\":\"corr-xyz-1\"}");
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "correlationData");
	assert_true(cJSON_IsString(c));
	assert_string_equal(c->valuestring, "corr-xyz-1");
	cJSON_Delete(r);

	/* several commands in one request: one response each, in order, each
	 * with its own correlationData (an error does not stop the batch) */
	const char *batch = "{\"commands\":["
		"{\"command\":\"createGroup\",\"group\":\"batch1\",\"correlationData\":\"b-1\"},"
		"{\"command\":\"getUser\",\"username\":\"nosuchuser\",\"correlationData\":\"b-2\"},"
		"{\"command\":\"getGroup\",\"group\":\"batch1\",\"correlationData\":\"b-3\"},"
		"{\"command\":\"listGroups\"}]}";
	int rc;
	cJSON *root = tcontrol_raw(admin, batch, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(root);
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "responses");
	assert_int_equal(cJSON_GetArraySize(arr), 4);
	static const char *const cmds[] = { "createGroup", "getUser", "getGroup", "listGroups" };
	static const char *const corr[] = { "b-1", "b-2", "b-3", NULL };
	for (int i = 0; i < 4; i++) {
		const cJSON *it = cJSON_GetArrayItem(arr, i);
		assert_string_equal(cJSON_GetObjectItemCaseSensitive(it, "command")->valuestring, cmds[i]);
		const cJSON *cd = cJSON_GetObjectItemCaseSensitive(it, "correlationData");
		if (corr[i])
			assert_string_equal(cd->valuestring, corr[i]);
		else
			assert_null(cd);
		if (i == 1)
			assert_non_null(tcontrol_error(it));
		else
			assert_null(tcontrol_error(it));
	}
	cJSON_Delete(root);
	tclient_free(admin);
}

/* Requests from non-admins are refused; responses go to admins only. */
static void non_admins_shut_out(void **state)
{
	struct tclient *alice = tclient_login(broker.port, "alice/na", "alice", ALICE_PW);
	assert_non_null(alice);
	assert_int_equal(tclient_subscribe(alice, "$CONTROL/mqim/v1/response", 1), NOT_AUTHORIZED);
	assert_int_equal(tclient_subscribe(alice, "$CONTROL/mqim/v1", 1), NOT_AUTHORIZED);
	assert_int_equal(tclient_subscribe(alice, "$CONTROL/#", 1), NOT_AUTHORIZED);
	const char *req = "{\"commands\":[{\"command\":\"setAdmin\",\"username\":\"alice\",\"admin\":true}]}";
	assert_int_equal(tclient_publish(alice, "$CONTROL/mqim/v1", req, strlen(req), 1, false),
			 NOT_AUTHORIZED);
	assert_int_equal(tclient_publish(alice, "$CONTROL/mqim/v1", req, strlen(req), 2, false),
			 NOT_AUTHORIZED);
	assert_int_equal(tclient_publish(alice, "$CONTROL/mqim/v1", req, strlen(req), 0, false), 0);

	/* nothing happened, and nobody but admins hears the responses */
	struct tclient *admin = admin_session("na");
	bool is_admin, disabled;
	cJSON *r;
	const cJSON *groups;
	get_user(admin, "alice", &is_admin, &disabled, &r, &groups);
	assert_false(is_admin);
	cJSON_Delete(r);
	assert_int_equal(tclient_drain(alice, 300), 0);
	const char *line[] = { "mqim: denied", "client=alice/na", "user=alice", "$CONTROL", NULL };
	assert_true(tbroker_log_wait_line(&broker, line, 2000));
	tclient_free(admin);
	tclient_free(alice);
}

/* ---- persistence -------------------------------------------------------------------------------- */

static void changes_survive_restart(void **state)
{
	struct tclient *admin = admin_session("p1");
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"keeper\",\"password\":\"Persist-Old-5\"}");
	expect_ok(admin, "setUserPassword",
		  "{\"command\":\"setUserPassword\",\"username\":\"keeper\",\"password\":\"Persist-New-6\"}");
	expect_ok(admin, "setAdmin", "{\"command\":\"setAdmin\",\"username\":\"keeper\",\"admin\":true}");
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"sleeper\",\"password\":\"Persist-Two-7\"}");
	expect_ok(admin, "disableUser", "{\"command\":\"disableUser\",\"username\":\"sleeper\"}");
	expect_ok(admin, "createUser",
		  "{\"command\":\"createUser\",\"username\":\"gone\",\"password\":\"Admin-Two-8\"}");
	expect_ok(admin, "deleteUser", "{\"command\":\"deleteUser\",\"username\":\"gone\"}");
	expect_ok(admin, "createGroup", "{\"command\":\"createGroup\",\"group\":\"vault\"}");
	expect_ok(admin, "addGroupMember",
		  "{\"command\":\"addGroupMember\",\"group\":\"vault\",\"username\":\"keeper\"}");
	expect_ok(admin, "createGroup", "{\"command\":\"createGroup\",\"group\":\"dropped\"}");
	expect_ok(admin, "deleteGroup", "{\"command\":\"deleteGroup\",\"group\":\"dropped\"}");
	expect_ok(admin, "removeGroupMember",
		  "{\"command\":\"removeGroupMember\",\"group\":\"team\",\"username\":\"alice\"}");
	tclient_free(admin);

	assert_int_equal(tbroker_stop(&broker), 0);
	assert_int_equal(tbroker_start(&broker), 0);

	/* keeper is an admin now: use it as the admin session */
	struct tclient *keeper = tclient_login(broker.port, "keeper/p", "keeper", "Persist-New-6");
	assert_non_null(keeper);
	assert_int_equal(tcontrol_prepare(keeper), 1);
	bool is_admin, disabled;
	cJSON *r;
	const cJSON *groups;
	get_user(keeper, "keeper", &is_admin, &disabled, &r, &groups);
	assert_true(is_admin);
	assert_false(disabled);
	assert_true(array_has(groups, "vault"));
	cJSON_Delete(r);
	get_user(keeper, "sleeper", &is_admin, &disabled, &r, &groups);
	assert_true(disabled);
	assert_false(is_admin);
	cJSON_Delete(r);
	get_user(keeper, "alice", &is_admin, &disabled, &r, &groups);
	assert_false(array_has(groups, "team"));
	cJSON_Delete(r);
	expect_error(keeper, "{\"command\":\"getUser\",\"username\":\"gone\"}");
	assert_true(group_listed(keeper, "vault"));
	assert_false(group_listed(keeper, "dropped"));
	assert_true(group_has_member(keeper, "vault", "keeper"));
	assert_int_equal(tclient_subscribe(keeper, "im/g/vault", 1), 1);

	/* and the broker acts on it */
	assert_int_equal(login_rc("keeper/2", "keeper", "Persist-Old-5"), NOT_AUTHORIZED);
	assert_int_equal(login_rc("sleeper", "sleeper", "Persist-Two-7"), NOT_AUTHORIZED);
	assert_int_equal(login_rc("gone", "gone", "Admin-Two-8"), NOT_AUTHORIZED);
	struct tclient *alice = tclient_login(broker.port, "alice/p", "alice", ALICE_PW);
	assert_non_null(alice);
	assert_int_equal(tclient_subscribe(alice, "im/g/team", 1), NOT_AUTHORIZED);
	tclient_free(alice);
	tclient_free(keeper);
}

/* Last: nothing that went through this broker left a password in its log. */
static void no_password_in_log(void **state)
{
	assert_true(tbroker_log_count(&broker, "mqim:") > 0);
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		if (tbroker_log_count(&broker, secrets[i]) != 0)
			fail_msg("password %s is in the broker log", secrets[i]);
	assert_int_equal(tbroker_log_count(&broker, "$argon2"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_user),
		cmocka_unit_test(get_and_list_users),
		cmocka_unit_test(set_user_password),
		cmocka_unit_test(set_admin),
		cmocka_unit_test(disable_and_enable_user),
		cmocka_unit_test(delete_user),
		cmocka_unit_test(groups_and_members),
		cmocka_unit_test(kick_user),
		cmocka_unit_test(bad_requests_answered),
		cmocka_unit_test(correlation_and_batches),
		cmocka_unit_test(non_admins_shut_out),
		cmocka_unit_test(changes_survive_restart),
		cmocka_unit_test(no_password_in_log),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
