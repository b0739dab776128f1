/* offline.c - mqimctl --db FILE: requests run straight against the store.
 *
 * Owns the store connection for one run.  Every command goes through
 * mqim_admin_exec(), the very function the plugin runs for $CONTROL, so
 * both modes validate and answer alike.  A request of several commands
 * (user import) runs in one transaction; its passwords are hashed (in a
 * copy of the request) before the transaction starts, so the write lock a
 * running broker might wait for is held for milliseconds, not for the
 * seconds hashing takes.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mqim.h"
#include "mqimctl.h"

static int open_store(const struct ctl *c, unsigned flags, struct mqim_store **st)
{
	char err[512];

	if (mqim_store_open(c->db, flags, st, err, sizeof(err)) != MQIM_OK) {
		fprintf(stderr, "mqimctl: %s\n", err);
		return CTL_UNREACHABLE;
	}
	return CTL_OK;
}

/* Replace each "password" by the "passwordHash" mqim_admin_exec would
 * compute, wiping the password.  Same defaults as mqim_admin_exec(NULL). */
static int prehash(cJSON *commands)
{
	char hash[MQIM_HASH_MAX];
	cJSON *cmd;

	cJSON_ArrayForEach(cmd, commands) {
		cJSON *pw = cJSON_GetObjectItemCaseSensitive(cmd, "password");
		if (!cJSON_IsString(pw) || cJSON_GetObjectItemCaseSensitive(cmd, "passwordHash"))
			continue;
		if (mqim_passwd_hash(NULL, pw->valuestring, hash, sizeof(hash)) != MQIM_OK)
			continue;                  /* let exec report it */
		ctl_wipe(pw->valuestring, strlen(pw->valuestring));
		cJSON_DeleteItemFromObjectCaseSensitive(cmd, "password");
		if (!cJSON_AddStringToObject(cmd, "passwordHash", hash)) {
			fprintf(stderr, "mqimctl: out of memory\n");
			return CTL_REFUSED;
		}
	}
	return CTL_OK;
}

static int exec_all(struct mqim_store *st, const cJSON *commands, cJSON *responses)
{
	const cJSON *cmd;

	cJSON_ArrayForEach(cmd, commands)
		mqim_admin_exec(st, NULL, cmd, responses, NULL);
	if (cJSON_GetArraySize(responses) != cJSON_GetArraySize(commands)) {
		fprintf(stderr, "mqimctl: out of memory\n");
		return CTL_REFUSED;
	}
	return CTL_OK;
}

int ctl_offline_run(const struct ctl *c, const cJSON *request, cJSON **responses)
{
	struct mqim_store *st = NULL;
	bool batch = cJSON_GetArraySize(request) > 1;
	cJSON *commands = cJSON_Duplicate(request, true);
	int rc = !commands ? CTL_REFUSED : batch ? prehash(commands) : CTL_OK;

	*responses = NULL;
	if (rc == CTL_OK)
		rc = open_store(c, 0, &st);
	if (rc != CTL_OK)
		goto out;
	*responses = cJSON_CreateArray();
	if (!*responses || (batch && mqim_store_begin(st) != MQIM_OK)) {
		fprintf(stderr, "mqimctl: cannot start a transaction on %s: %s\n", c->db,
			mqim_store_errmsg(st));
		rc = CTL_REFUSED;
		goto out;
	}
	rc = exec_all(st, commands, *responses);
	if (batch && rc == CTL_OK && mqim_store_commit(st) != MQIM_OK) {
		fprintf(stderr, "mqimctl: cannot save the changes to %s: %s; nothing was "
			"changed\n", c->db, mqim_store_errmsg(st));
		rc = CTL_REFUSED;
	}
	if (batch && rc != CTL_OK)
		mqim_store_rollback(st);
out:
	if (rc != CTL_OK) {
		cJSON_Delete(*responses);
		*responses = NULL;
	}
	mqim_store_close(st);
	ctl_request_wipe(commands);
	cJSON_Delete(commands);
	return rc;
}

static int stop_at_first(void *ctx, const char *name)
{
	return 1;
}

static int stop_at_first_user(void *ctx, const struct mqim_user_rec *u)
{
	return 1;
}

int ctl_offline_init(const struct ctl *c, const cJSON *request, cJSON **responses)
{
	const cJSON *cmd = cJSON_GetArrayItem(request, 0);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(cmd, "username");
	struct mqim_store *st = NULL;
	int rc;

	*responses = NULL;
	if (!cJSON_IsString(name) || !mqim_name_valid(name->valuestring)) {
		fprintf(stderr, "mqimctl: invalid username '%s': use 1-64 of [A-Za-z0-9_.-], "
			"starting with a letter or digit\n",
			cJSON_IsString(name) ? name->valuestring : "");
		return CTL_REFUSED;
	}
	rc = open_store(c, MQIM_STORE_CREATE, &st);
	if (rc != CTL_OK)
		return rc;
	if (mqim_store_users(st, stop_at_first_user, NULL) != MQIM_OK ||
	    mqim_store_groups(st, stop_at_first, NULL) != MQIM_OK) {
		fprintf(stderr, "mqimctl: %s already holds users or groups: init only sets up a "
			"new store (add more admins with `user add NAME --admin`)\n", c->db);
		rc = CTL_REFUSED;
		goto out;
	}
	*responses = cJSON_CreateArray();
	if (!*responses) {
		fprintf(stderr, "mqimctl: out of memory\n");
		rc = CTL_REFUSED;
		goto out;
	}
	mqim_admin_exec(st, NULL, cmd, *responses, NULL);
out:
	mqim_store_close(st);
	return rc;
}
