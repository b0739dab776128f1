/* raw.h - a blocking raw MQTT socket for the attack tests, on top of the
 * packet codec tools/bench/mqtt_raw.h.
 *
 * A struct raw is one TCP connection to (or, for the fake broker, from)
 * 127.0.0.1.  Packets are written as given, byte for byte, so a test can
 * send what no MQTT library would (forged properties, bombs, reused packet
 * ids, trickled bytes); packets are read one at a time with a timeout.
 *
 * Ownership: a packet returned by raw_recv() points into a buffer owned by
 * the struct raw, valid until the next raw_* call on it.  Packets that a
 * waiting helper (raw_wait_ack(), raw_subscribe(), ...) skipped over are kept
 * in order and returned by the next raw_recv(), so nothing is lost.
 *
 * Every wait is bounded by its timeout.  Not thread-safe: one struct raw
 * belongs to one thread at a time (different ones may run in parallel).
 */
#ifndef MQIM_ATTACK_RAW_H
#define MQIM_ATTACK_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_raw.h"

/* Results of the receiving calls (the successful ones are >= 0). */
#define RAW_TIMEOUT   (-1)   /* nothing within the timeout */
#define RAW_CLOSED    (-2)   /* the peer closed the connection (or it broke) */
#define RAW_MALFORMED (-3)   /* bytes that are no MQTT packet, or over RAW_MAX_PACKET */

#define RAW_MAX_PACKET (16u * 1024u * 1024u)

struct raw_held;

struct raw {
	int fd;                 /* -1: closed */
	int version;            /* protocol level used to parse: 5 unless changed */
	uint8_t *in;            /* bytes read and not yet returned */
	size_t in_len, in_cap;
	uint8_t *cur;           /* the packet last returned (owned copy) */
	size_t cur_cap;
	struct raw_held *held;  /* packets skipped by a waiting helper, oldest first */
	uint16_t next_pid;      /* packet ids handed out by raw_pid() */
};

/* Open a TCP connection to 127.0.0.1:port (TCP_NODELAY).  0 or -1. */
int raw_open(struct raw *r, int port);

/* Take over an accepted socket (fake broker side).  Cannot fail. */
void raw_adopt(struct raw *r, int fd);

/* Close the socket (abruptly: no DISCONNECT) and free everything; r can be
 * opened again.  Safe on a closed or zeroed struct raw. */
void raw_close(struct raw *r);

/* Write len bytes; 0 or -1 (peer gone). */
int raw_send(struct raw *r, const void *buf, size_t len);

/* Next packet within timeout_ms: 0 with *p filled (borrowed, see above),
 * or RAW_TIMEOUT / RAW_CLOSED / RAW_MALFORMED. */
int raw_recv(struct raw *r, struct mqtt_pkt *p, int timeout_ms);

/* A fresh non-zero packet id. */
uint16_t raw_pid(struct raw *r);

/* ---- client conveniences (MQTT 5) ----------------------------------------- */

/* Send CONNECT c and wait for the CONNACK: its reason code (0: accepted),
 * or RAW_TIMEOUT / RAW_CLOSED (e.g. closed without a CONNACK).
 * *session_present (may be NULL) gets the CONNACK flag. */
int raw_connect(struct raw *r, const struct mqtt_connect *c, bool *session_present,
		int timeout_ms);

/* raw_open() + a clean MQTT 5 CONNECT with keepalive 60.  Returns the
 * CONNACK reason, RAW_TIMEOUT, RAW_CLOSED, or RAW_CLOSED when the TCP
 * connection itself failed. */
int raw_login(struct raw *r, int port, const char *client_id, const char *user,
	      const char *pass);

/* raw_open() + raw_connect(), again while the broker closes the connection
 * without a CONNACK, as a client does after its backoff (20 ms doubling, for
 * about 3 s in all): the plugin closes a login that needs a password hash
 * while its hashing budget is spent.  Returns the last answer. */
int raw_connect_retry(struct raw *r, int port, const struct mqtt_connect *c,
		      bool *session_present);

/* raw_login() with the same retries. */
int raw_login_retry(struct raw *r, int port, const char *client_id, const char *user,
		    const char *pass);

/* Subscribe to one filter with the options byte (QoS in the low bits) and
 * return the SUBACK code, or a RAW_* error. */
int raw_subscribe(struct raw *r, const char *filter, uint8_t options, int timeout_ms);

/* Subscribe to n filters in one SUBSCRIBE; codes[] gets the SUBACK codes.
 * Returns the number of codes received, or a RAW_* error. */
int raw_subscribe_many(struct raw *r, const char *const *filters, size_t n, uint8_t options,
		       uint8_t *codes, int timeout_ms);

/* Send a PUBLISH (p->packet_id is filled in for QoS 1 and 2 when 0). */
int raw_publish_send(struct raw *r, struct mqtt_publish *p);

/* Publish and wait for its answer: QoS 0 returns 0 once written; QoS 1
 * the PUBACK reason; QoS 2 the PUBREC reason, and when it is a success the
 * PUBREL / PUBCOMP exchange is completed too.  Or a RAW_* error. */
int raw_publish(struct raw *r, struct mqtt_publish *p, int timeout_ms);

/* Shorthand: publish payload to topic (no properties). */
int raw_pub(struct raw *r, const char *topic, const void *payload, size_t len, uint8_t qos,
	    bool retain, int timeout_ms);

/* Wait for the acknowledgement of the given type and packet id; other
 * packets are held for raw_recv().  Returns its reason code or RAW_*. */
int raw_wait_ack(struct raw *r, enum mqtt_type type, uint16_t pid, int timeout_ms);

/* Next application message within timeout_ms: QoS 1 is acknowledged at
 * once, QoS 2 gets its PUBREC, a PUBREL its PUBCOMP, PINGRESPs are skipped.
 * Returns 0 with *p (borrowed) or RAW_*; a DISCONNECT from the peer gives
 * RAW_CLOSED. */
int raw_next_publish(struct raw *r, struct mqtt_pkt *p, int timeout_ms);

/* Send a DISCONNECT (reason 0, no session expiry change) and close. */
void raw_disconnect(struct raw *r);

/* PINGREQ and wait for the PINGRESP: 0, or RAW_* (other packets held). */
int raw_ping(struct raw *r, int timeout_ms);

/* ---- listening (fake broker) ---------------------------------------------- */

/* Listen on 127.0.0.1 at a free port: the socket, with *port set, or -1. */
int raw_listen(int *port);

/* Accept one connection within timeout_ms: the socket or -1. */
int raw_accept(int lfd, int timeout_ms);

/* Milliseconds of a monotonic clock. */
int64_t raw_now_ms(void);

#endif
