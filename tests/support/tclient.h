/* tclient.h - a synchronous MQTT 5 test client on paho MQTTAsync.
 *
 * Every call blocks until the broker answered (or timeout_ms passed) and
 * returns the MQTT 5 reason code the broker sent, so a test can assert on
 * 0x87 Not authorized and friends.  Received messages are queued and taken
 * with tclient_recv().  Not thread-safe: one test thread per client.
 */
#ifndef MQIM_TCLIENT_H
#define MQIM_TCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define TCLIENT_TIMEOUT (-1)    /* no answer within the timeout */
#define TCLIENT_LOST    (-2)    /* connection lost before an answer */

struct tclient;

struct tclient_will {
	const char *topic;
	const void *payload;
	size_t len;
	int qos;
	bool retain;
};

struct tmsg {
	char *topic;
	void *payload;
	size_t len;
	int qos;
	bool retain;
};

/* A client for the broker on 127.0.0.1:port with this client id (NULL: an
 * empty client id).  Free with tclient_free(). */
struct tclient *tclient_new(int port, const char *client_id);
void tclient_free(struct tclient *c);

/* Change the time every call waits for an answer (default 5000 ms). */
void tclient_set_timeout(struct tclient *c, int timeout_ms);

/* Connect with MQTT 5.  user/pass may be NULL.  Returns the CONNACK reason
 * code (0 success), TCLIENT_TIMEOUT or TCLIENT_LOST. */
int tclient_connect(struct tclient *c, const char *user, const char *pass);
int tclient_connect_ex(struct tclient *c, const char *user, const char *pass,
		       bool clean_start, unsigned session_expiry,
		       const struct tclient_will *will);
int tclient_disconnect(struct tclient *c);
bool tclient_is_connected(struct tclient *c);

/* Disconnect with MQTT 5 reason 0x04 "Disconnect with Will Message": the
 * broker then publishes the will as if the connection had been lost. */
int tclient_disconnect_with_will(struct tclient *c);

/* Wait up to timeout_ms until the connection is gone (kicked, taken over,
 * lost).  Returns true once it is down. */
bool tclient_wait_disconnected(struct tclient *c, int timeout_ms);

/* Reason code of the DISCONNECT the broker sent (e.g. 0x8E Session taken
 * over), or -1 if it sent none since the last successful connect. */
int tclient_server_disconnect_reason(struct tclient *c);

/* tclient_new() + tclient_connect(): a logged-in client, or NULL (with the
 * CONNACK code on stderr) if the login failed. */
struct tclient *tclient_login(int port, const char *client_id, const char *user,
			      const char *pass);

/* Subscribe to one filter.  Returns the SUBACK code: the granted QoS (0..2)
 * or a reason code >= 0x80, or TCLIENT_TIMEOUT / TCLIENT_LOST. */
int tclient_subscribe(struct tclient *c, const char *filter, int qos);

/* Publish and wait for the PUBACK / PUBREC (QoS 0: until sent).  Returns the
 * reason code (0 success, 0x10 no matching subscribers counts as success and
 * is returned as 0), or TCLIENT_TIMEOUT / TCLIENT_LOST. */
int tclient_publish(struct tclient *c, const char *topic, const void *payload,
		    size_t len, int qos, bool retain);

/* tclient_publish() with one MQTT 5 user property name = value on the
 * PUBLISH (name NULL: none).  Both strings are borrowed. */
int tclient_publish_prop(struct tclient *c, const char *topic, const void *payload,
			 size_t len, int qos, bool retain, const char *name, const char *value);

/* Wait up to timeout_ms for the next received message.  Returns 1 and fills
 * *m (free with tmsg_free()) or 0 on timeout. */
int tclient_recv(struct tclient *c, struct tmsg *m, int timeout_ms);
void tmsg_free(struct tmsg *m);

/* Messages received and not yet taken. */
int tclient_pending(struct tclient *c);

/* Take and free messages until none arrives for quiet_ms; returns how many. */
int tclient_drain(struct tclient *c, int quiet_ms);

/* Build an envelope with a random id into a malloc'd buffer (free()).
 * t, fr, to, body as given (body may be NULL).  Returns its length, or 0. */
size_t tenv_build(void **out, const char *t, const char *fr, const char *to,
		  const char *body, uint8_t id_out[MQIM_ENV_ID_LEN]);

/* tenv_build() then tclient_publish() to topic.  Returns the publish result,
 * or TCLIENT_LOST if the envelope could not be built. */
int tclient_send_env(struct tclient *c, const char *topic, const char *t, const char *fr,
		     const char *to, const char *body, int qos,
		     uint8_t id_out[MQIM_ENV_ID_LEN]);

/* The wall clock in milliseconds since the epoch (as in ts and bts). */
uint64_t tnow_ms(void);

/* Fill id with 16 random bytes.  Returns 0 or -1. */
int trandom_id(uint8_t id[MQIM_ENV_ID_LEN]);

#endif
