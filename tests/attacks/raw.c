/* raw.c - a blocking raw MQTT socket for the attack tests; see raw.h.
 *
 * Bytes read from the socket accumulate in r->in until mqtt_parse() finds
 * a whole packet there; that packet is copied into r->cur (so it stays
 * valid while r->in moves on) and returned.  The waiting helpers read from
 * the socket only, and append what they skip to r->held, which raw_recv()
 * serves first.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "raw.h"

struct raw_held {
	struct raw_held *next;
	size_t len;
	uint8_t bytes[];
};

int64_t raw_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void raw_adopt(struct raw *r, int fd)
{
	memset(r, 0, sizeof *r);
	r->fd = fd;
	r->version = 5;
	nodelay(fd);
}

int raw_open(struct raw *r, int port)
{
	struct sockaddr_in a;
	raw_adopt(r, -1);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	raw_adopt(r, fd);
	return 0;
}

void raw_close(struct raw *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	while (r->held) {
		struct raw_held *h = r->held;
		r->held = h->next;
		free(h);
	}
	free(r->in);
	free(r->cur);
	r->in = r->cur = NULL;
	r->in_len = r->in_cap = r->cur_cap = 0;
}

int raw_send(struct raw *r, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (r->fd < 0)
		return -1;
	while (len) {
		ssize_t n = send(r->fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

uint16_t raw_pid(struct raw *r)
{
	if (++r->next_pid == 0)
		r->next_pid = 1;
	return r->next_pid;
}

/* ---- receiving ------------------------------------------------------------- */

/* Make r->cur hold len bytes from src and parse them into *p. */
static int take(struct raw *r, const uint8_t *src, size_t len, struct mqtt_pkt *p)
{
	if (len > r->cur_cap) {
		uint8_t *n = realloc(r->cur, len);
		if (!n)
			return RAW_MALFORMED;
		r->cur = n;
		r->cur_cap = len;
	}
	memcpy(r->cur, src, len);
	return mqtt_parse(r->cur, len, r->version, p) == MQTT_PARSE_OK ? 0 : RAW_MALFORMED;
}

/* Size of the packet at the front of r->in: >0 when complete, 0 when more
 * bytes are needed, RAW_MALFORMED when the header is bad or too large. */
static long frame_size(const struct raw *r)
{
	uint32_t rl = 0;
	if (r->in_len < 2)
		return 0;
	size_t n = mqtt_get_varint(r->in + 1, r->in_len - 1, &rl);
	if (!n) /* four length bytes all saying "more": malformed */
		return r->in_len >= 5 ? RAW_MALFORMED : 0;
	if (rl > RAW_MAX_PACKET)
		return RAW_MALFORMED;
	size_t total = 1 + n + rl;
	return r->in_len >= total ? (long)total : 0;
}

/* Read once (waiting up to ms) into r->in: 1 read, 0 timeout, RAW_CLOSED. */
static int fill(struct raw *r, int ms)
{
	struct pollfd pfd = { r->fd, POLLIN, 0 };
	if (r->fd < 0)
		return RAW_CLOSED;
	int pr = poll(&pfd, 1, ms < 0 ? 0 : ms);
	if (pr < 0)
		return errno == EINTR ? 0 : RAW_CLOSED;
	if (pr == 0)
		return 0;
	if (r->in_cap - r->in_len < 65536) {
		size_t cap = r->in_cap ? r->in_cap * 2 : 131072;
		uint8_t *n = realloc(r->in, cap);
		if (!n)
			return RAW_CLOSED;
		r->in = n;
		r->in_cap = cap;
	}
	ssize_t got = recv(r->fd, r->in + r->in_len, r->in_cap - r->in_len, 0);
	if (got < 0 && errno == EINTR)
		return 0;
	if (got <= 0)
		return RAW_CLOSED;
	r->in_len += (size_t)got;
	return 1;
}

/* The next packet from the socket (not from r->held). */
static int recv_wire(struct raw *r, struct mqtt_pkt *p, int timeout_ms)
{
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		long size = frame_size(r);
		if (size == RAW_MALFORMED)
			return RAW_MALFORMED;
		if (size > 0) {
			int rc = take(r, r->in, (size_t)size, p);
			memmove(r->in, r->in + size, r->in_len - (size_t)size);
			r->in_len -= (size_t)size;
			return rc;
		}
		int64_t left = deadline - raw_now_ms();
		if (left <= 0)
			return RAW_TIMEOUT;
		int rc = fill(r, (int)left);
		if (rc < 0)
			return rc;
	}
}

static void hold(struct raw *r, const struct mqtt_pkt *p)
{
	struct raw_held *h = malloc(sizeof *h + p->size);
	if (!h)
		return;
	h->next = NULL;
	h->len = p->size;
	memcpy(h->bytes, r->cur, p->size);
	struct raw_held **tail = &r->held;
	while (*tail)
		tail = &(*tail)->next;
	*tail = h;
}

int raw_recv(struct raw *r, struct mqtt_pkt *p, int timeout_ms)
{
	if (r->held) {
		struct raw_held *h = r->held;
		r->held = h->next;
		int rc = take(r, h->bytes, h->len, p);
		free(h);
		return rc;
	}
	return recv_wire(r, p, timeout_ms);
}

int raw_wait_ack(struct raw *r, enum mqtt_type type, uint16_t pid, int timeout_ms)
{
	struct mqtt_pkt p;
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - raw_now_ms();
		int rc = recv_wire(r, &p, left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc;
		if (p.type == type && p.packet_id == pid)
			return p.reason;
		hold(r, &p);
		if (p.type == MQTT_DISCONNECT)
			return RAW_CLOSED;
	}
}

/* ---- client conveniences --------------------------------------------------- */

int raw_connect(struct raw *r, const struct mqtt_connect *c, bool *session_present,
		int timeout_ms)
{
	uint8_t stack[1024];
	uint8_t *buf = stack;
	size_t n = mqtt_enc_connect(stack, sizeof stack, c);
	if (n > sizeof stack) {
		buf = malloc(n);
		if (!buf)
			return RAW_CLOSED;
		mqtt_enc_connect(buf, n, c);
	}
	int rc = n && raw_send(r, buf, n) == 0 ? 0 : RAW_CLOSED;
	if (buf != stack)
		free(buf);
	if (rc)
		return rc;
	r->version = c->version;
	struct mqtt_pkt p;
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - raw_now_ms();
		rc = recv_wire(r, &p, left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc == RAW_MALFORMED ? RAW_CLOSED : rc;
		if (p.type == MQTT_CONNACK) {
			if (session_present)
				*session_present = p.session_present;
			return p.reason;
		}
		if (p.type == MQTT_DISCONNECT)
			return RAW_CLOSED;
	}
}

static void login_connect(struct mqtt_connect *c, const char *client_id, const char *user,
			  const char *pass)
{
	memset(c, 0, sizeof *c);
	c->version = 5;
	c->client_id = client_id ? client_id : "";
	c->username = user;
	c->password = pass;
	c->keepalive_s = 60;
	c->clean_start = true;
}

int raw_login(struct raw *r, int port, const char *client_id, const char *user,
	      const char *pass)
{
	struct mqtt_connect c;
	if (raw_open(r, port) != 0)
		return RAW_CLOSED;
	login_connect(&c, client_id, user, pass);
	return raw_connect(r, &c, NULL, 5000);
}

int raw_connect_retry(struct raw *r, int port, const struct mqtt_connect *c,
		      bool *session_present)
{
	int rc = RAW_CLOSED;
	for (int delay = 20; delay <= 1280; delay *= 2) {
		if (raw_open(r, port) != 0)
			return RAW_CLOSED;
		rc = raw_connect(r, c, session_present, 5000);
		if (rc != RAW_CLOSED)
			return rc;
		raw_close(r);
		struct timespec ts = { 0, (long)delay * 1000000L };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	return rc;
}

int raw_login_retry(struct raw *r, int port, const char *client_id, const char *user,
		    const char *pass)
{
	struct mqtt_connect c;
	login_connect(&c, client_id, user, pass);
	return raw_connect_retry(r, port, &c, NULL);
}

int raw_subscribe_many(struct raw *r, const char *const *filters, size_t n, uint8_t options,
		       uint8_t *codes, int timeout_ms)
{
	uint8_t stack[4096];
	uint16_t pid = raw_pid(r);
	size_t len = mqtt_enc_subscribe(stack, sizeof stack, r->version, pid, filters, n, options);
	if (!len || len > sizeof stack || raw_send(r, stack, len) != 0)
		return RAW_CLOSED;
	struct mqtt_pkt p;
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - raw_now_ms();
		int rc = recv_wire(r, &p, left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc;
		if (p.type == MQTT_SUBACK && p.packet_id == pid) {
			size_t k = p.ncodes < n ? p.ncodes : n;
			memcpy(codes, p.codes, k);
			return (int)p.ncodes;
		}
		hold(r, &p);
		if (p.type == MQTT_DISCONNECT)
			return RAW_CLOSED;
	}
}

int raw_subscribe(struct raw *r, const char *filter, uint8_t options, int timeout_ms)
{
	uint8_t code = 0;
	int n = raw_subscribe_many(r, &filter, 1, options, &code, timeout_ms);
	if (n < 0)
		return n;
	return n == 1 ? code : RAW_MALFORMED;
}

int raw_publish_send(struct raw *r, struct mqtt_publish *p)
{
	uint8_t stack[2048];
	if (p->qos && !p->packet_id)
		p->packet_id = raw_pid(r);
	size_t n = mqtt_enc_publish(stack, sizeof stack, r->version, p);
	if (!n)
		return RAW_CLOSED;
	if (n <= sizeof stack)
		return raw_send(r, stack, n) == 0 ? 0 : RAW_CLOSED;
	uint8_t *buf = malloc(n);
	if (!buf)
		return RAW_CLOSED;
	mqtt_enc_publish(buf, n, r->version, p);
	int rc = raw_send(r, buf, n) == 0 ? 0 : RAW_CLOSED;
	free(buf);
	return rc;
}

int raw_publish(struct raw *r, struct mqtt_publish *p, int timeout_ms)
{
	int rc = raw_publish_send(r, p);
	if (rc || p->qos == 0)
		return rc;
	if (p->qos == 1)
		return raw_wait_ack(r, MQTT_PUBACK, p->packet_id, timeout_ms);
	rc = raw_wait_ack(r, MQTT_PUBREC, p->packet_id, timeout_ms);
	if (rc != 0)
		return rc;
	uint8_t rel[8];
	size_t n = mqtt_enc_ack(rel, sizeof rel, r->version, MQTT_PUBREL, p->packet_id, 0);
	if (raw_send(r, rel, n) != 0)
		return RAW_CLOSED;
	int comp = raw_wait_ack(r, MQTT_PUBCOMP, p->packet_id, timeout_ms);
	return comp < 0 ? comp : 0;
}

int raw_pub(struct raw *r, const char *topic, const void *payload, size_t len, uint8_t qos,
	    bool retain, int timeout_ms)
{
	struct mqtt_publish p;
	memset(&p, 0, sizeof p);
	p.topic = topic;
	p.payload = payload;
	p.payload_len = len;
	p.qos = qos;
	p.retain = retain;
	return raw_publish(r, &p, timeout_ms);
}

static int send_ack(struct raw *r, enum mqtt_type type, uint16_t pid)
{
	uint8_t b[8];
	size_t n = mqtt_enc_ack(b, sizeof b, r->version, type, pid, 0);
	return raw_send(r, b, n) == 0 ? 0 : RAW_CLOSED;
}

int raw_next_publish(struct raw *r, struct mqtt_pkt *p, int timeout_ms)
{
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - raw_now_ms();
		int rc = raw_recv(r, p, left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc;
		switch (p->type) {
		case MQTT_PUBLISH:
			if (p->qos == 1 && send_ack(r, MQTT_PUBACK, p->packet_id))
				return RAW_CLOSED;
			if (p->qos == 2 && send_ack(r, MQTT_PUBREC, p->packet_id))
				return RAW_CLOSED;
			return 0;
		case MQTT_PUBREL:
			if (send_ack(r, MQTT_PUBCOMP, p->packet_id))
				return RAW_CLOSED;
			break;
		case MQTT_DISCONNECT:
			return RAW_CLOSED;
		default:
			break;
		}
	}
}

void raw_disconnect(struct raw *r)
{
	uint8_t b[16];
	size_t n = mqtt_enc_disconnect(b, sizeof b, r->version, 0, -1);
	if (r->fd >= 0 && n)
		raw_send(r, b, n);
	raw_close(r);
}

int raw_ping(struct raw *r, int timeout_ms)
{
	uint8_t b[2];
	mqtt_enc_pingreq(b, sizeof b);
	if (raw_send(r, b, 2) != 0)
		return RAW_CLOSED;
	struct mqtt_pkt p;
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - raw_now_ms();
		int rc = recv_wire(r, &p, left > 0 ? (int)left : 0);
		if (rc < 0)
			return rc;
		if (p.type == MQTT_PINGRESP)
			return 0;
		hold(r, &p);
		if (p.type == MQTT_DISCONNECT)
			return RAW_CLOSED;
	}
}

/* ---- listening --------------------------------------------------------------- */

int raw_listen(int *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

int raw_accept(int lfd, int timeout_ms)
{
	struct pollfd pfd = { lfd, POLLIN, 0 };
	int64_t deadline = raw_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - raw_now_ms();
		if (left < 0)
			return -1;
		int pr = poll(&pfd, 1, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd >= 0 || errno != EINTR)
			return fd;
	}
}
