/* client.c - an MQTT 5 client state machine on a bconn.
 *
 * Handles what every benchmark client needs and nothing else: CONNECT and
 * CONNACK (with the broker's Receive Maximum), SUBSCRIBE, PUBLISH at QoS 0,
 * 1 and 2 with both acknowledgement flows in both directions, PINGREQ and
 * DISCONNECT.  Incoming QoS 1 and 2 messages are acknowledged at once, in
 * the same output batch.  The owner hears about everything through
 * mclient_ops; an owner callback may queue packets but must not start a new
 * connection on the same client (that waits for the owner's next pump).
 *
 * Thread rules: a client belongs to the thread of its loop.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define PROTO 5

static struct mclient *of(struct bconn *c)
{
	return (struct mclient *)c; /* conn is the first member */
}

static bool put(struct mclient *m, size_t need, size_t (*enc)(uint8_t *, size_t, const void *),
		const void *arg)
{
	uint8_t *p = bconn_reserve(&m->conn, need);
	if (!p)
		return false;
	size_t n = enc(p, need, arg);
	if (!n || n > need)
		return false;
	bconn_commit(&m->conn, n);
	return true;
}

static size_t enc_connect(uint8_t *out, size_t cap, const void *arg)
{
	const struct mclient *m = arg;
	struct mqtt_connect c = {
		.version = PROTO,
		.client_id = m->client_id,
		.username = m->username[0] ? m->username : NULL,
		.password = m->password,
		.keepalive_s = m->keepalive_s,
		.clean_start = m->clean_start,
		.session_expiry_s = m->session_expiry_s,
	};
	return mqtt_enc_connect(out, cap, &c);
}

static void on_connected(struct bconn *c)
{
	struct mclient *m = of(c);
	size_t need = 32 + strlen(m->client_id) + strlen(m->username) +
		      (m->password ? strlen(m->password) : 0);
	m->st = MC_CONNACK;
	if (!put(m, need, enc_connect, m))
		bconn_close(c, ENOMEM);
}

static void send_ack(struct mclient *m, enum mqtt_type type, uint16_t pid)
{
	uint8_t *p = bconn_reserve(&m->conn, 4);
	if (p)
		bconn_commit(&m->conn, mqtt_enc_ack(p, 4, PROTO, type, pid, 0));
}

static void handle_connack(struct mclient *m, const struct mqtt_pkt *p)
{
	if (p->reason != 0) {
		m->st = MC_CLOSED;
		if (m->ops->on_refused)
			m->ops->on_refused(m, p->reason);
		bconn_close(&m->conn, EACCES);
		return;
	}
	m->st = MC_UP;
	m->t_up = m->conn.loop->now;
	m->server_receive_max = p->props.has_receive_maximum ? p->props.receive_maximum : 65535;
	if (m->ops->on_up)
		m->ops->on_up(m);
}

static void acked(struct mclient *m, uint16_t pid, uint8_t reason)
{
	if (m->inflight)
		m->inflight--;
	if (m->ops->on_acked)
		m->ops->on_acked(m, pid, reason);
}

static void handle_packet(struct mclient *m, const struct mqtt_pkt *p)
{
	switch (p->type) {
	case MQTT_CONNACK:
		handle_connack(m, p);
		break;
	case MQTT_PUBLISH:
		if (m->ops->on_message)
			m->ops->on_message(m, p);
		if (p->qos == 1)
			send_ack(m, MQTT_PUBACK, p->packet_id);
		else if (p->qos == 2)
			send_ack(m, MQTT_PUBREC, p->packet_id);
		break;
	case MQTT_PUBREL:
		send_ack(m, MQTT_PUBCOMP, p->packet_id);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBCOMP:
		acked(m, p->packet_id, p->reason);
		break;
	case MQTT_PUBREC:
		if (p->reason >= 0x80)
			acked(m, p->packet_id, p->reason);
		else
			send_ack(m, MQTT_PUBREL, p->packet_id);
		break;
	case MQTT_SUBACK:
		if (m->ops->on_suback)
			m->ops->on_suback(m, p);
		break;
	case MQTT_DISCONNECT:
		bconn_close(&m->conn, ECONNRESET);
		break;
	default: /* PINGRESP, UNSUBACK, AUTH: nothing to do */
		break;
	}
}

static void on_data(struct bconn *c)
{
	struct mclient *m = of(c);
	size_t off = 0;
	struct mqtt_pkt p;
	while (c->fd >= 0 && off < c->in_len) {
		int rc = mqtt_parse(c->in + off, c->in_len - off, PROTO, &p);
		if (rc == MQTT_PARSE_INCOMPLETE)
			break;
		if (rc != MQTT_PARSE_OK) {
			fail("%s: malformed packet from the broker", m->client_id);
			bconn_close(c, EPROTO);
			return;
		}
		handle_packet(m, &p);
		off += p.size;
	}
	if (c->fd >= 0)
		bconn_consume(c, off);
}

static void on_closed(struct bconn *c, int err)
{
	struct mclient *m = of(c);
	bool was_up = m->st == MC_UP;
	(void)err;
	m->st = MC_CLOSED;
	m->inflight = 0;
	if (m->ops->on_down)
		m->ops->on_down(m, was_up);
}

static const struct bconn_ops ops = { on_connected, on_data, on_closed };

void mclient_init(struct mclient *m, const struct mclient_ops *mops, void *owner,
		  uint32_t idx, const char *username, const char *client_id,
		  const char *password)
{
	memset(m, 0, sizeof(*m));
	m->conn.fd = -1;
	m->ops = mops;
	m->owner = owner;
	m->idx = idx;
	m->st = MC_IDLE;
	snprintf(m->username, sizeof(m->username), "%s", username ? username : "");
	snprintf(m->client_id, sizeof(m->client_id), "%s", client_id);
	m->password = password;
	m->clean_start = true;
	m->keepalive_s = 300;
	m->next_pid = 1;
}

int mclient_start(struct mclient *m, struct bloop *l, int port)
{
	m->inflight = 0;
	m->t_start = l->now;
	m->t_up = 0;
	if (bconn_open(&m->conn, l, &ops, port) != 0) {
		m->st = MC_CLOSED;
		return -1;
	}
	m->st = MC_TCP;
	return 0;
}

static uint16_t next_pid(struct mclient *m)
{
	uint16_t pid = m->next_pid++;
	if (m->next_pid == 0)
		m->next_pid = 1;
	return pid;
}

uint16_t mclient_subscribe(struct mclient *m, const char *filter, uint8_t qos)
{
	uint16_t pid = next_pid(m);
	size_t need = 16 + strlen(filter);
	uint8_t *p = bconn_reserve(&m->conn, need);
	if (!p)
		return 0;
	size_t n = mqtt_enc_subscribe(p, need, PROTO, pid, &filter, 1, MQTT_SUB_QOS(qos));
	if (!n || n > need)
		return 0;
	bconn_commit(&m->conn, n);
	return pid;
}

int mclient_publish(struct mclient *m, const char *topic, const void *payload, size_t len,
		    uint8_t qos)
{
	struct mqtt_publish pub = { .topic = topic, .payload = payload, .payload_len = len,
				    .qos = qos };
	if (qos)
		pub.packet_id = next_pid(m);
	size_t need = 16 + strlen(topic) + len;
	uint8_t *p = bconn_reserve(&m->conn, need);
	if (!p)
		return -1;
	size_t n = mqtt_enc_publish(p, need, PROTO, &pub);
	if (!n || n > need)
		return -1;
	bconn_commit(&m->conn, n);
	if (qos)
		m->inflight++;
	return pub.packet_id;
}

void mclient_ping(struct mclient *m)
{
	uint8_t *p = bconn_reserve(&m->conn, 2);
	if (p)
		bconn_commit(&m->conn, mqtt_enc_pingreq(p, 2));
}

void mclient_disconnect(struct mclient *m, int64_t session_expiry_s)
{
	if (m->conn.fd < 0)
		return;
	if (m->st == MC_UP) {
		uint8_t *p = bconn_reserve(&m->conn, 16);
		if (p)
			bconn_commit(&m->conn, mqtt_enc_disconnect(p, 16, PROTO, 0, session_expiry_s));
		bconn_flush(&m->conn);
	}
	bconn_close(&m->conn, 0);
}

void mclient_abort(struct mclient *m)
{
	bconn_close(&m->conn, ECONNABORTED);
}

void mclient_free(struct mclient *m)
{
	if (m->conn.fd >= 0) {
		const struct mclient_ops *saved = m->ops;
		static const struct mclient_ops none;
		m->ops = &none; /* no callback from a client being freed */
		bconn_close(&m->conn, 0);
		m->ops = saved;
	}
	bconn_free(&m->conn);
}
