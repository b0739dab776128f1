/* fuzz_admin.c - libFuzzer target for the $CONTROL/mqim/v1 JSON handler
 * (common/admin.c) over a real store (common/store.c).
 *
 * Each input is a request payload: it goes through mqim_admin_parse(), and
 * every command it yields through mqim_admin_exec(), as the plugin does.
 * The store is one temporary file made in LLVMFuzzerInitialize(), seeded
 * with users alice, bob and admin and a group team holding alice; each
 * input runs inside one transaction that is rolled back afterwards, so
 * every input meets the same store and the file never grows.  New password
 * hashes use argon2 { t=1, m=8 KiB, p=1 }, the smallest cost libargon2
 * takes (m >= 8 * p), so fuzzing stays fast.
 *
 * The target abort()s unless:
 *   - a refused payload leaves *root and *commands NULL with a sentence;
 *   - every command yields exactly one response object, in order;
 *   - "command" is echoed exactly when the request's was a string (there is
 *     none otherwise: tests/unit/test_admin.c pins that), "correlationData"
 *     exactly when it was a string;
 *   - a failure has a non-empty "error" string, no "data", a zeroed effect;
 *     a success has no "error", an effect naming the command and saying
 *     whether it changed anything, and "data" exactly for the queries;
 *   - a new password (createUser / setUserPassword) verifies against the
 *     stored hash, a "passwordHash" is stored as given, and a password
 *     holding the word CANARY (the seeds use it) appears in no response;
 *   - the responses print as JSON that cJSON parses back.
 * Seeds: tests/fuzz/corpus/admin/.  Run with `make fuzz`.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "admin.h"
#include "mqim.h"
#include "passwd.h"
#include "store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                         \
	do {                                                                \
		if (!(cond)) {                                              \
			fprintf(stderr, "fuzz_admin: check failed at line %d: %s\n", \
				__LINE__, #cond);                           \
			abort();                                            \
		}                                                           \
	} while (0)

static const struct mqim_passwd_params tiny = { 1, 8, 1 };

static struct mqim_store *store;
static char dir[64], path[96];

static void remove_store(void)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char p[128];

	mqim_store_close(store);
	store = NULL;
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
		unlink(p);
	}
	rmdir(dir);
}

static void seed_user(const char *name, bool admin)
{
	char hash[MQIM_HASH_MAX];

	CHECK(mqim_passwd_hash(&tiny, "seed-password", hash, sizeof(hash)) == MQIM_OK);
	CHECK(mqim_store_user_add(store, name, hash, admin) == MQIM_OK);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[512];

	snprintf(dir, sizeof(dir), "%s", "/dev/shm/mqim-fuzz-admin-XXXXXX");
	if (!mkdtemp(dir)) {
		snprintf(dir, sizeof(dir), "%s", "/tmp/mqim-fuzz-admin-XXXXXX");
		CHECK(mkdtemp(dir) != NULL);
	}
	snprintf(path, sizeof(path), "%s/store.db", dir);
	if (mqim_store_open(path, MQIM_STORE_CREATE, &store, err, sizeof(err)) != MQIM_OK) {
		fprintf(stderr, "fuzz_admin: %s\n", err);
		abort();
	}
	atexit(remove_store);
	seed_user("admin", true);
	seed_user("alice", false);
	seed_user("bob", false);
	CHECK(mqim_store_group_add(store, "team") == MQIM_OK);
	CHECK(mqim_store_member_add(store, "team", "alice") == MQIM_OK);
	return 0;
}

static const char *str_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool effect_is_zero(const struct mqim_admin_effect *fx)
{
	static const struct mqim_admin_effect zero;

	return memcmp(fx, &zero, sizeof(zero)) == 0;
}

static bool is_query(enum mqim_cmd_id id)
{
	return id == MQIM_CMD_GET_USER || id == MQIM_CMD_LIST_USERS ||
	       id == MQIM_CMD_LIST_GROUPS || id == MQIM_CMD_GET_GROUP;
}

/* A successful createUser / setUserPassword stored what it was given. */
static void check_new_hash(const cJSON *cmd, const struct mqim_admin_effect *fx)
{
	const char *pw = str_of(cmd, "password"), *given = str_of(cmd, "passwordHash");
	struct mqim_user_rec u;

	CHECK(mqim_store_user_get(store, fx->username, &u) == MQIM_OK);
	CHECK(strcmp(u.hash, fx->hash) == 0);
	CHECK((pw != NULL) != (given != NULL));
	if (given)
		CHECK(strcmp(u.hash, given) == 0);
	else
		CHECK(mqim_passwd_verify(u.hash, pw) == MQIM_OK);
	CHECK(mqim_passwd_format_supported(u.hash));
}

/* A CANARY password never comes back, unless the request itself put it in
 * a field that is echoed (command name, correlationData, user or group
 * name) or it could be part of a name. */
static void check_no_password(const cJSON *cmd, const cJSON *resp)
{
	static const char *const echoed[] = { "command", "correlationData", "username", "group" };
	const char *pw = str_of(cmd, "password");
	char *text;

	if (!pw || !strstr(pw, "CANARY"))
		return;
	/* a password made only of name characters may legitimately show up
	 * inside a user or group name, even one made earlier in the request
	 * (listUsers): only a password no name can contain is a clean probe */
	if (strspn(pw, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == strlen(pw))
		return;
	for (size_t i = 0; i < sizeof(echoed) / sizeof(echoed[0]); i++) {
		const char *f = str_of(cmd, echoed[i]);
		if (f && strstr(f, pw))
			return;
	}
	text = cJSON_PrintUnformatted(resp);
	CHECK(text != NULL);
	CHECK(strstr(text, pw) == NULL);
	cJSON_free(text);
}

static void check_response(const cJSON *cmd, const cJSON *resp, int rc,
			   const struct mqim_admin_effect *fx)
{
	const char *name = str_of(cmd, "command"), *corr = str_of(cmd, "correlationData");
	const char *echoed = str_of(resp, "command"), *err = str_of(resp, "error");
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(resp, "data");
	const struct mqim_cmd_def *def = mqim_cmd_lookup(name);

	CHECK(cJSON_IsObject(resp));
	CHECK((name == NULL) == (cJSON_GetObjectItemCaseSensitive(resp, "command") == NULL));
	CHECK(!name || (echoed && strcmp(name, echoed) == 0));
	CHECK((corr == NULL) == (cJSON_GetObjectItemCaseSensitive(resp, "correlationData") == NULL));
	CHECK(!corr || strcmp(corr, str_of(resp, "correlationData")) == 0);
	if (rc != MQIM_OK) {
		CHECK(rc != MQIM_ENOMEM);
		CHECK(err && err[0]);
		CHECK(data == NULL);
		CHECK(effect_is_zero(fx));
		check_no_password(cmd, resp);
		return;
	}
	CHECK(cJSON_GetObjectItemCaseSensitive(resp, "error") == NULL);
	CHECK(def != NULL && fx->cmd == def->id && fx->changed == def->mutates);
	CHECK(is_query(def->id) ? cJSON_IsObject(data) : data == NULL);
	CHECK(strlen(fx->username) <= MQIM_NAME_MAX && strlen(fx->group) <= MQIM_NAME_MAX);
	CHECK(!(def->args & MQIM_ARG_USERNAME) || mqim_name_valid(fx->username));
	CHECK(!(def->args & MQIM_ARG_GROUP) || mqim_name_valid(fx->group));
	if (def->id == MQIM_CMD_CREATE_USER || def->id == MQIM_CMD_SET_USER_PASSWORD)
		check_new_hash(cmd, fx);
	else
		CHECK(fx->hash[0] == '\0');
	check_no_password(cmd, resp);
}

/* The whole answer prints as JSON that parses back to as many responses. */
static void check_printable(const cJSON *responses)
{
	cJSON *root = cJSON_CreateObject(), *back;
	char *text;

	CHECK(root && cJSON_AddItemReferenceToObject(root, "responses", (cJSON *)responses));
	text = cJSON_PrintUnformatted(root);
	CHECK(text != NULL);
	back = cJSON_Parse(text);
	CHECK(back != NULL);
	CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(back, "responses")) ==
	      cJSON_GetArraySize(responses));
	cJSON_Delete(back);
	cJSON_free(text);
	cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *root = NULL, *responses, *last = NULL;
	const cJSON *commands = NULL, *cmd;
	const char *err = NULL;
	int n = 0;

	if (mqim_admin_parse(data, size, &root, &commands, &err) != MQIM_OK) {
		CHECK(root == NULL && commands == NULL && err && err[0]);
		return 0;
	}
	CHECK(root && cJSON_IsArray(commands) && err == NULL);
	responses = cJSON_CreateArray();
	CHECK(responses != NULL);
	CHECK(mqim_store_begin(store) == MQIM_OK);
	cJSON_ArrayForEach(cmd, commands) {
		struct mqim_admin_effect fx;
		int rc;

		memset(&fx, 0xa5, sizeof(fx));    /* exec must set every byte */
		rc = mqim_admin_exec(store, &tiny, cmd, responses, &fx);
		last = last ? last->next : responses->child;
		CHECK(last != NULL && last->next == NULL);
		n++;
		check_response(cmd, last, rc, &fx);
	}
	mqim_store_rollback(store);
	CHECK(cJSON_GetArraySize(responses) == n);
	check_printable(responses);
	cJSON_Delete(responses);
	cJSON_Delete(root);
	return 0;
}
