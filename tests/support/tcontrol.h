/* tcontrol.h - send $CONTROL/mqim/v1 commands from a test and read the answer.
 *
 * An admin client subscribes once with tcontrol_prepare(); each call then
 * publishes {"commands": [cmd]} with a fresh correlationData, and waits for
 * the response carrying it on $CONTROL/mqim/v1/response.  Messages on the
 * admin client that are not that response are taken and dropped, so use a
 * client dedicated to administration.  Not thread-safe.
 */
#ifndef MQIM_TCONTROL_H
#define MQIM_TCONTROL_H

#include <cjson/cJSON.h>

#include "tclient.h"

/* Subscribe admin to the response topic (QoS 1).  Returns the SUBACK code:
 * 1 when granted. */
int tcontrol_prepare(struct tclient *admin);

/* Run one command given as a JSON object text, e.g.
 * "{\"command\":\"getUser\",\"username\":\"alice\"}" (a correlationData is
 * added unless it has one).  Returns the response object for it
 * ({"command":..., "data"|"error":...}), which the caller frees with
 * cJSON_Delete(), or NULL when the publish was refused or no response came
 * within the client's timeout (a message says which on stderr). */
cJSON *tcontrol_call(struct tclient *admin, const char *cmd_json);

/* The same from a printf format. */
cJSON *tcontrol_callf(struct tclient *admin, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Run a command and report only whether it succeeded: 0 when a response
 * came without "error", -1 otherwise. */
int tcontrol_ok(struct tclient *admin, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The "error" sentence of a response, or NULL when it has none. */
const char *tcontrol_error(const cJSON *resp);

/* Send a raw payload (valid JSON or not) to $CONTROL/mqim/v1 and return the
 * whole parsed payload of the first message that arrives on the response
 * topic ({"responses": [...]}; free with cJSON_Delete()), or NULL if none
 * came or it was not JSON.  *rc gets the PUBACK code.  For tests of
 * malformed requests. */
cJSON *tcontrol_raw(struct tclient *admin, const char *payload, int *rc);

#endif
