/* control.c - the admin topic $CONTROL/mqim/v1: MOSQ_EVT_CONTROL.
 *
 * Requests are JSON in the shape of Mosquitto's dynamic-security plugin.
 * Each command runs through mqim_admin_exec() (common/admin.c, shared with
 * `mqimctl --db`), which writes the store; its effect is then applied to the
 * in-memory tables here, so a change bites at once and survives a restart.
 * Kicks (deleteUser, disableUser, setUserPassword, kickUser) are queued for
 * the next tick.  The reply goes to the requesting client only, on
 * $CONTROL/mqim/v1/response.  Every command leaves one audit line, with the
 * names it touched and never a password.
 *
 * This runs on the broker thread and may write to disk and hash passwords:
 * admin traffic is rare; bulk imports belong offline (mqimctl --db + SIGHUP).
 *
 * Return contract: MOSQ_ERR_SUCCESS after answering (errors are reported in
 * the response, not as MQTT errors); MOSQ_ERR_ACL_DENIED for a non-admin
 * (the write check refuses them first; this is the second lock).
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "admin.h"
#include "plugin.h"
#include "topics.h"

static void apply(struct mqim_ctx *ctx, const struct mqim_admin_effect *fx)
{
	struct mqim_user *u = mqim__user_find(ctx, fx->username);

	switch (fx->cmd) {
	case MQIM_CMD_CREATE_USER:
		mqim__user_put(ctx, fx->username, fx->hash, fx->flag, false);
		break;
	case MQIM_CMD_DELETE_USER:
		mqim__kick_later(ctx, fx->username);
		mqim__user_remove(ctx, fx->username);
		break;
	case MQIM_CMD_SET_USER_PASSWORD:
		if (u)
			mqim__user_put(ctx, u->name, fx->hash, u->admin, u->disabled);
		mqim__kick_later(ctx, fx->username);
		break;
	case MQIM_CMD_SET_ADMIN:
		if (u)
			u->admin = fx->flag;
		break;
	case MQIM_CMD_DISABLE_USER:
		if (u)
			u->disabled = true;
		mqim__kick_later(ctx, fx->username);
		break;
	case MQIM_CMD_ENABLE_USER:
		if (u)
			u->disabled = false;
		break;
	case MQIM_CMD_CREATE_GROUP:
		mqim__group_put(ctx, fx->group);
		break;
	case MQIM_CMD_DELETE_GROUP:
		mqim__group_remove(ctx, fx->group);
		break;
	case MQIM_CMD_ADD_GROUP_MEMBER:
		mqim__member_put(ctx, fx->group, fx->username);
		break;
	case MQIM_CMD_REMOVE_GROUP_MEMBER:
		mqim__member_remove(ctx, fx->group, fx->username);
		break;
	case MQIM_CMD_KICK_USER:
		mqim__kick_later(ctx, fx->username);
		break;
	default:
		break;
	}
}

static void audit(const struct mosquitto *client, const cJSON *cmd, int rc)
{
	char id[96], admin[80], target[80] = "", group[80] = "";
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(cmd, "command");
	const cJSON *un = cJSON_GetObjectItemCaseSensitive(cmd, "username");
	const cJSON *gr = cJSON_GetObjectItemCaseSensitive(cmd, "group");
	char name[48];

	mqim__clean(cJSON_IsString(c) ? c->valuestring : "?", name, sizeof(name));
	if (cJSON_IsString(un))
		mqim__clean(un->valuestring, target, sizeof(target));
	if (cJSON_IsString(gr))
		mqim__clean(gr->valuestring, group, sizeof(group));
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			     "mqim: admin client=%s user=%s command=%s%s%s%s%s%s: %s",
			     mqim__clean(mosquitto_client_id(client), id, sizeof(id)),
			     mqim__clean(mosquitto_client_username(client), admin, sizeof(admin)),
			     name, *target ? " username=" : "", target, *group ? " group=" : "", group,
			     cJSON_GetObjectItemCaseSensitive(cmd, "password") ? " password=*****" : "",
			     rc ? mqim_strerror(rc) : "ok");
}

static void respond(const struct mosquitto *client, cJSON *responses)
{
	cJSON *root = cJSON_CreateObject();
	char *text = NULL;

	if (root && cJSON_AddItemToObject(root, "responses", responses)) {
		responses = NULL;
		text = cJSON_PrintUnformatted(root);
	}
	if (text)
		mosquitto_broker_publish_copy(mosquitto_client_id(client), MQIM_CONTROL_RESP_TOPIC,
					      (int)strlen(text), text, 1, false, NULL);
	else
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: out of memory answering an admin request");
	cJSON_free(text);
	cJSON_Delete(root);
	cJSON_Delete(responses);
}

static void error_response(cJSON *responses, const char *msg)
{
	cJSON *r = cJSON_CreateObject();
	if (!r)
		return;
	cJSON_AddStringToObject(r, "command", "unknown");
	cJSON_AddStringToObject(r, "error", msg);
	cJSON_AddItemToArray(responses, r);
}

int mqim__on_control(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_control *ed = event_data;
	struct mqim_ctx *ctx = userdata;
	const struct mqim_user *u = mqim__user_find(ctx, mosquitto_client_username(ed->client));
	cJSON *root = NULL, *responses;
	const cJSON *cmds, *cmd;
	const char *err = NULL;

	if (!u || !u->admin || u->disabled) {
		mqim__deny(ed->client, "publish", ed->topic, "admins only");
		return MOSQ_ERR_ACL_DENIED;
	}
	responses = cJSON_CreateArray();
	if (!responses)
		return MOSQ_ERR_SUCCESS;
	if (mqim_admin_parse(ed->payload, ed->payloadlen, &root, &cmds, &err) != MQIM_OK) {
		mqim__deny(ed->client, "admin request", NULL, err);
		error_response(responses, err);
	} else {
		cJSON_ArrayForEach(cmd, cmds) {
			struct mqim_admin_effect fx;
			memset(&fx, 0, sizeof(fx));
			int rc = mqim_admin_exec(ctx->store, &ctx->opts.pw, cmd, responses, &fx);
			audit(ed->client, cmd, rc);
			if (rc == MQIM_OK && fx.changed)
				apply(ctx, &fx);
			memset(fx.hash, 0, sizeof(fx.hash));
		}
	}
	respond(ed->client, responses);
	cJSON_Delete(root);
	return MOSQ_ERR_SUCCESS;
}
