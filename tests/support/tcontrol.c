/* tcontrol.c - $CONTROL/mqim/v1 requests from tests; see tcontrol.h.
 *
 * Global state: a counter that makes each correlationData unique within the
 * test process (touched from the test thread only).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topics.h"
#include "tcontrol.h"

#define RESPONSE_WAIT_MS 5000

static unsigned correlation_counter;

int tcontrol_prepare(struct tclient *admin)
{
	return tclient_subscribe(admin, MQIM_CONTROL_RESP_TOPIC, 1);
}

const char *tcontrol_error(const cJSON *resp)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
	return cJSON_IsString(e) ? e->valuestring : NULL;
}

/* Take the object whose correlationData is corr out of a response payload;
 * NULL if it is not there. */
static cJSON *take_response(cJSON *root, const char *corr)
{
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "responses");
	int n = cJSON_GetArraySize(arr);
	for (int i = 0; i < n; i++) {
		cJSON *r = cJSON_GetArrayItem(arr, i);
		cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "correlationData");
		if (cJSON_IsString(c) && strcmp(c->valuestring, corr) == 0)
			return cJSON_DetachItemFromArray(arr, i);
	}
	return NULL;
}

/* Wait for the response carrying corr; messages that are not it are
 * dropped. */
static cJSON *await_response(struct tclient *admin, const char *corr)
{
	struct tmsg m;
	while (tclient_recv(admin, &m, RESPONSE_WAIT_MS) == 1) {
		cJSON *found = NULL;
		if (strcmp(m.topic, MQIM_CONTROL_RESP_TOPIC) == 0) {
			cJSON *root = cJSON_ParseWithLength(m.payload, m.len);
			found = take_response(root, corr);
			cJSON_Delete(root);
		}
		tmsg_free(&m);
		if (found)
			return found;
	}
	fprintf(stderr, "tcontrol: no response with correlationData %s\n", corr);
	return NULL;
}

static int publish_request(struct tclient *admin, cJSON *cmd)
{
	cJSON *req = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(req, "commands");
	cJSON_AddItemToArray(arr, cmd);
	char *text = cJSON_PrintUnformatted(req);
	int rc = text ? tclient_publish(admin, MQIM_CONTROL_TOPIC, text, strlen(text), 1, false)
		      : TCLIENT_LOST;
	free(text);
	cJSON_Delete(req);
	return rc;
}

cJSON *tcontrol_call(struct tclient *admin, const char *cmd_json)
{
	cJSON *cmd = cJSON_Parse(cmd_json);
	if (!cJSON_IsObject(cmd)) {
		fprintf(stderr, "tcontrol: not a JSON object: %s\n", cmd_json);
		cJSON_Delete(cmd);
		return NULL;
	}
	char corr[64];
	cJSON *have = cJSON_GetObjectItemCaseSensitive(cmd, "correlationData");
	if (cJSON_IsString(have)) {
		snprintf(corr, sizeof corr, "%s", have->valuestring);
	} else {
		snprintf(corr, sizeof corr, "tc-%u", ++correlation_counter);
		cJSON_AddStringToObject(cmd, "correlationData", corr);
	}
	int rc = publish_request(admin, cmd);
	if (rc != 0) {
		fprintf(stderr, "tcontrol: publish of %s answered %d\n", cmd_json, rc);
		return NULL;
	}
	return await_response(admin, corr);
}

__attribute__((format(printf, 2, 0)))
static cJSON *vcallf(struct tclient *admin, const char *fmt, va_list ap)
{
	char *text = NULL;
	if (vasprintf(&text, fmt, ap) < 0)
		return NULL;
	cJSON *r = tcontrol_call(admin, text);
	free(text);
	return r;
}

cJSON *tcontrol_callf(struct tclient *admin, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cJSON *r = vcallf(admin, fmt, ap);
	va_end(ap);
	return r;
}

int tcontrol_ok(struct tclient *admin, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cJSON *r = vcallf(admin, fmt, ap);
	va_end(ap);
	int ok = r && !tcontrol_error(r) ? 0 : -1;
	if (r && ok != 0)
		fprintf(stderr, "tcontrol: error: %s\n", tcontrol_error(r));
	cJSON_Delete(r);
	return ok;
}

cJSON *tcontrol_raw(struct tclient *admin, const char *payload, int *rc)
{
	*rc = tclient_publish(admin, MQIM_CONTROL_TOPIC, payload, strlen(payload), 1, false);
	struct tmsg m;
	while (tclient_recv(admin, &m, RESPONSE_WAIT_MS) == 1) {
		cJSON *root = NULL;
		if (strcmp(m.topic, MQIM_CONTROL_RESP_TOPIC) == 0)
			root = cJSON_ParseWithLength(m.payload, m.len);
		bool is_resp = strcmp(m.topic, MQIM_CONTROL_RESP_TOPIC) == 0;
		tmsg_free(&m);
		if (is_resp)
			return root;
	}
	return NULL;
}
