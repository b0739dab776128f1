/* mqtt_raw.h - a small MQTT 3.1.1 / 5.0 packet codec, without I/O.
 *
 * Encoders write one complete control packet into a caller's buffer and
 * parse() splits a byte stream into packets.  Nothing here allocates,
 * touches a socket or keeps state between calls, so the same code serves a
 * load generator (tools/bench) and hand-crafted, even malformed, packets in
 * attack tests: every encoder can carry raw property bytes the caller built
 * with the mqtt_put_* helpers.
 *
 * Conventions.
 *  - Encoders are snprintf-like: they return the size of the whole packet;
 *    when it exceeds cap, nothing is written and the caller retries with a
 *    larger buffer.  A return of 0 means the arguments cannot form a packet
 *    (a string over 65,535 bytes, a packet over 268,435,455 bytes, a QoS
 *    over 2, a version other than 4 or 5).
 *  - `version` is the protocol level: 4 (MQTT 3.1.1) or 5 (MQTT 5.0).
 *    Properties are only written for version 5.
 *  - Strings are NUL-terminated on input.  On output (struct mqtt_pkt) every
 *    pointer points into the parsed buffer (borrowed, NOT NUL-terminated),
 *    valid as long as that buffer is.
 *
 * Thread rules: no global state; every function is safe from any thread.
 */
#ifndef MQIM_BENCH_MQTT_RAW_H
#define MQIM_BENCH_MQTT_RAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQTT_MAX_REMAINING 268435455u  /* largest "remaining length" */
#define MQTT_MAX_HEADER    5           /* fixed header: 1 type byte + 4 length bytes */

enum mqtt_type {
	MQTT_CONNECT = 1, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC,
	MQTT_PUBREL, MQTT_PUBCOMP, MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE,
	MQTT_UNSUBACK, MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT, MQTT_AUTH,
};

/* MQTT 5 property identifiers used here (spec 2.2.2.2). */
enum mqtt_prop {
	MQTT_PROP_SESSION_EXPIRY = 0x11,   /* four-byte integer */
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAXIMUM = 0x21,  /* two-byte integer */
	MQTT_PROP_TOPIC_ALIAS_MAXIMUM = 0x22,
	MQTT_PROP_MAXIMUM_QOS = 0x24,      /* byte */
	MQTT_PROP_MAXIMUM_PACKET_SIZE = 0x27,
};

/* Subscription options byte (MQTT 5; for 3.1.1 only the QoS bits count). */
#define MQTT_SUB_QOS(q)         ((uint8_t)((q) & 3))
#define MQTT_SUB_NO_LOCAL       0x04
#define MQTT_SUB_RETAIN_AS_PUB  0x08

struct mqtt_connect {
	int version;                 /* 4 or 5 */
	const char *client_id;       /* may be "" */
	const char *username;        /* NULL: none */
	const char *password;        /* NULL: none */
	uint16_t keepalive_s;
	bool clean_start;
	uint32_t session_expiry_s;   /* v5: 0 leaves the property out */
	uint16_t receive_maximum;    /* v5: 0 leaves the property out */
	const uint8_t *props;        /* v5: extra raw properties, appended */
	size_t props_len;
	const char *will_topic;      /* NULL: no will */
	const void *will_payload;
	size_t will_len;
	uint8_t will_qos;
	bool will_retain;
};

struct mqtt_publish {
	const char *topic;
	size_t topic_len;            /* 0: strlen(topic) */
	const void *payload;
	size_t payload_len;
	uint16_t packet_id;          /* required (non-zero) for QoS 1 and 2 */
	uint8_t qos;
	bool retain;
	bool dup;
	const uint8_t *props;        /* v5: raw properties */
	size_t props_len;
};

/* Properties the parser picks out; raw bytes stay available in the packet. */
struct mqtt_props {
	bool has_session_expiry, has_receive_maximum, has_maximum_qos;
	uint32_t session_expiry_s;
	uint16_t receive_maximum;
	uint8_t maximum_qos;
	const char *reason_string;   /* borrowed, not NUL-terminated; NULL if absent */
	size_t reason_string_len;
};

/* One parsed control packet. */
struct mqtt_pkt {
	enum mqtt_type type;
	uint8_t flags;               /* low nibble of the first byte */
	uint8_t qos;                 /* PUBLISH */
	bool dup, retain;            /* PUBLISH */
	bool session_present;        /* CONNACK */
	uint16_t packet_id;          /* PUBLISH (QoS > 0), acks, SUBACK, UNSUBACK */
	uint8_t reason;              /* CONNACK, PUBACK..PUBCOMP, DISCONNECT, AUTH:
	                              * 0 when the packet leaves it out */
	const char *topic;           /* PUBLISH */
	size_t topic_len;
	const uint8_t *payload;      /* PUBLISH application message */
	size_t payload_len;
	const uint8_t *codes;        /* SUBACK / UNSUBACK reason codes */
	size_t ncodes;
	const uint8_t *raw_props;    /* v5 property bytes (without their length) */
	size_t raw_props_len;
	struct mqtt_props props;
	size_t size;                 /* bytes of the whole packet */
};

enum mqtt_parse_rc {
	MQTT_PARSE_OK = 0,
	MQTT_PARSE_INCOMPLETE = 1,   /* need more bytes; nothing consumed */
	MQTT_PARSE_MALFORMED = -1,   /* the stream cannot be resynchronised */
};

/* Parse the first packet of the len bytes at buf, as sent by a broker or a
 * client of protocol `version`.  On MQTT_PARSE_OK, *out describes it and
 * out->size is the number of bytes it took.  Packets of any type are
 * accepted and their known fields filled; unknown properties are skipped.
 * Never reads past buf + len. */
int mqtt_parse(const uint8_t *buf, size_t len, int version, struct mqtt_pkt *out);

/* Name of a packet type, for messages ("PUBACK"); never NULL. */
const char *mqtt_type_name(int type);

/* ---- encoders (see the conventions above) --------------------------------- */

size_t mqtt_enc_connect(uint8_t *out, size_t cap, const struct mqtt_connect *c);
size_t mqtt_enc_publish(uint8_t *out, size_t cap, int version, const struct mqtt_publish *p);

/* PUBACK, PUBREC, PUBREL or PUBCOMP.  With version 5 and reason 0 the
 * short two-byte form is written, as brokers do. */
size_t mqtt_enc_ack(uint8_t *out, size_t cap, int version, enum mqtt_type type,
		    uint16_t packet_id, uint8_t reason);

/* SUBSCRIBE for n filters, each with the same options byte. */
size_t mqtt_enc_subscribe(uint8_t *out, size_t cap, int version, uint16_t packet_id,
			  const char *const *filters, size_t n, uint8_t options);
size_t mqtt_enc_unsubscribe(uint8_t *out, size_t cap, int version, uint16_t packet_id,
			    const char *const *filters, size_t n);
size_t mqtt_enc_pingreq(uint8_t *out, size_t cap);

/* DISCONNECT.  Version 5: reason code, and a session expiry property when
 * session_expiry_s >= 0 (a client may lower it to 0 to end its session). */
size_t mqtt_enc_disconnect(uint8_t *out, size_t cap, int version, uint8_t reason,
			   int64_t session_expiry_s);

/* ---- building blocks for hand-made packets ------------------------------- */

/* Bytes a variable byte integer takes (1-4), or 0 over MQTT_MAX_REMAINING. */
size_t mqtt_varint_len(uint32_t v);
/* Write v as a variable byte integer at p; returns the bytes written. */
size_t mqtt_put_varint(uint8_t *p, uint32_t v);
/* Read a variable byte integer; returns bytes used, 0 if incomplete or bad. */
size_t mqtt_get_varint(const uint8_t *p, size_t len, uint32_t *v);
size_t mqtt_put_u16(uint8_t *p, uint16_t v);
size_t mqtt_put_u32(uint8_t *p, uint32_t v);
/* A two-byte length and the bytes. */
size_t mqtt_put_str(uint8_t *p, const void *s, size_t len);
/* One property: id then a value of the width its id calls for (1, 2 or 4
 * bytes: pass the number in v), for the integer properties above. */
size_t mqtt_put_prop_int(uint8_t *p, enum mqtt_prop id, uint32_t v);

#endif
