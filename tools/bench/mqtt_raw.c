/* mqtt_raw.c - the MQTT packet codec; see mqtt_raw.h for the contract.
 *
 * Each encoder first sums the sizes of its fields, so it can refuse (return
 * the size needed, write nothing) before touching the buffer, then writes
 * the fixed header and the fields in one pass.  The parser reads only
 * within the declared remaining length and within len.
 */
#include <string.h>

#include "mqtt_raw.h"

#define STR_MAX 65535u

/* ---- building blocks ------------------------------------------------------ */

size_t mqtt_varint_len(uint32_t v)
{
	if (v < 128u)
		return 1;
	if (v < 16384u)
		return 2;
	if (v < 2097152u)
		return 3;
	if (v <= MQTT_MAX_REMAINING)
		return 4;
	return 0;
}

size_t mqtt_put_varint(uint8_t *p, uint32_t v)
{
	size_t n = 0;
	do {
		uint8_t b = (uint8_t)(v & 0x7f);
		v >>= 7;
		p[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v && n < 4);
	return n;
}

size_t mqtt_get_varint(const uint8_t *p, size_t len, uint32_t *v)
{
	uint32_t val = 0;
	for (size_t i = 0; i < 4; i++) {
		if (i >= len)
			return 0;
		val |= (uint32_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = val;
			return i + 1;
		}
	}
	return 0; /* a fifth continuation byte: malformed */
}

size_t mqtt_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

size_t mqtt_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

size_t mqtt_put_str(uint8_t *p, const void *s, size_t len)
{
	mqtt_put_u16(p, (uint16_t)len);
	if (len)
		memcpy(p + 2, s, len);
	return 2 + len;
}

static size_t prop_width(enum mqtt_prop id)
{
	switch (id) {
	case MQTT_PROP_SESSION_EXPIRY:
	case MQTT_PROP_MAXIMUM_PACKET_SIZE:
		return 4;
	case MQTT_PROP_SERVER_KEEP_ALIVE:
	case MQTT_PROP_RECEIVE_MAXIMUM:
	case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
		return 2;
	default:
		return 1;
	}
}

size_t mqtt_put_prop_int(uint8_t *p, enum mqtt_prop id, uint32_t v)
{
	size_t w = prop_width(id);
	p[0] = (uint8_t)id;
	if (w == 4)
		return 1 + mqtt_put_u32(p + 1, v);
	if (w == 2)
		return 1 + mqtt_put_u16(p + 1, (uint16_t)v);
	p[1] = (uint8_t)v;
	return 2;
}

const char *mqtt_type_name(int type)
{
	static const char *const names[] = {
		"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
		"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ",
		"PINGRESP", "DISCONNECT", "AUTH",
	};
	return type >= 0 && type < 16 ? names[type] : "INVALID";
}

/* ---- encoders --------------------------------------------------------------- */

/* Size of a packet with remaining length rl, or 0 when rl is too large. */
static size_t packet_size(size_t rl)
{
	if (rl > MQTT_MAX_REMAINING)
		return 0;
	return 1 + mqtt_varint_len((uint32_t)rl) + rl;
}

static size_t put_header(uint8_t *out, uint8_t first, size_t rl)
{
	out[0] = first;
	return 1 + mqtt_put_varint(out + 1, (uint32_t)rl);
}

/* A properties block: its varint length plus the bytes. */
static size_t props_block_len(size_t props_len)
{
	return mqtt_varint_len((uint32_t)props_len) + props_len;
}

static size_t sopt(const char *s)
{
	return s ? strlen(s) : 0;
}

/* The CONNECT properties this encoder writes itself, into p (may be NULL to
 * just count). */
static size_t connect_props(uint8_t *p, const struct mqtt_connect *c)
{
	uint8_t tmp[16];
	size_t n = 0;
	if (c->session_expiry_s)
		n += mqtt_put_prop_int(tmp + n, MQTT_PROP_SESSION_EXPIRY, c->session_expiry_s);
	if (c->receive_maximum)
		n += mqtt_put_prop_int(tmp + n, MQTT_PROP_RECEIVE_MAXIMUM, c->receive_maximum);
	if (p)
		memcpy(p, tmp, n);
	return n;
}

/* The CONNECT payload: client id, will, username, password. */
static size_t connect_payload(uint8_t *out, const struct mqtt_connect *c)
{
	size_t n = mqtt_put_str(out, c->client_id, sopt(c->client_id));
	if (c->will_topic) {
		if (c->version == 5)
			out[n++] = 0; /* empty will properties */
		n += mqtt_put_str(out + n, c->will_topic, strlen(c->will_topic));
		n += mqtt_put_str(out + n, c->will_payload, c->will_len);
	}
	if (c->username)
		n += mqtt_put_str(out + n, c->username, strlen(c->username));
	if (c->password)
		n += mqtt_put_str(out + n, c->password, strlen(c->password));
	return n;
}

size_t mqtt_enc_connect(uint8_t *out, size_t cap, const struct mqtt_connect *c)
{
	bool v5 = c->version == 5;
	if ((c->version != 4 && !v5) || c->will_qos > 2)
		return 0;
	size_t cid = sopt(c->client_id), user = sopt(c->username), pass = sopt(c->password);
	size_t wt = sopt(c->will_topic);
	if (cid > STR_MAX || user > STR_MAX || pass > STR_MAX || wt > STR_MAX ||
	    c->will_len > STR_MAX)
		return 0;
	size_t own = v5 ? connect_props(NULL, c) : 0;
	size_t plen = own + (v5 ? c->props_len : 0);
	size_t rl = 10 + (v5 ? props_block_len(plen) : 0) + 2 + cid;
	if (c->will_topic)
		rl += (v5 ? 1 : 0) + 2 + wt + 2 + c->will_len; /* empty will properties */
	if (c->username)
		rl += 2 + user;
	if (c->password)
		rl += 2 + pass;
	size_t total = packet_size(rl);
	if (!total || total > cap)
		return total;

	uint8_t flags = c->clean_start ? 0x02 : 0;
	if (c->will_topic)
		flags |= (uint8_t)(0x04 | (c->will_qos << 3) | (c->will_retain ? 0x20 : 0));
	if (c->password)
		flags |= 0x40;
	if (c->username)
		flags |= 0x80;
	size_t n = put_header(out, 0x10, rl);
	n += mqtt_put_str(out + n, "MQTT", 4);
	out[n++] = (uint8_t)c->version;
	out[n++] = flags;
	n += mqtt_put_u16(out + n, c->keepalive_s);
	if (v5) {
		n += mqtt_put_varint(out + n, (uint32_t)plen);
		n += connect_props(out + n, c);
		if (c->props_len)
			memcpy(out + n, c->props, c->props_len);
		n += c->props_len;
	}
	return n + connect_payload(out + n, c);
}

size_t mqtt_enc_publish(uint8_t *out, size_t cap, int version, const struct mqtt_publish *p)
{
	bool v5 = version == 5;
	size_t tl = p->topic_len ? p->topic_len : strlen(p->topic);
	if ((version != 4 && !v5) || p->qos > 2 || tl > STR_MAX ||
	    (p->qos && !p->packet_id))
		return 0;
	size_t rl = 2 + tl + (p->qos ? 2 : 0) + (v5 ? props_block_len(p->props_len) : 0) +
		    p->payload_len;
	size_t total = packet_size(rl);
	if (!total || total > cap)
		return total;

	uint8_t first = (uint8_t)(0x30 | (p->dup ? 0x08 : 0) | (p->qos << 1) | (p->retain ? 1 : 0));
	size_t n = put_header(out, first, rl);
	n += mqtt_put_str(out + n, p->topic, tl);
	if (p->qos)
		n += mqtt_put_u16(out + n, p->packet_id);
	if (v5) {
		n += mqtt_put_varint(out + n, (uint32_t)p->props_len);
		if (p->props_len)
			memcpy(out + n, p->props, p->props_len);
		n += p->props_len;
	}
	if (p->payload_len)
		memcpy(out + n, p->payload, p->payload_len);
	return n + p->payload_len;
}

size_t mqtt_enc_ack(uint8_t *out, size_t cap, int version, enum mqtt_type type,
		    uint16_t packet_id, uint8_t reason)
{
	if (type < MQTT_PUBACK || type > MQTT_PUBCOMP || (version != 4 && version != 5))
		return 0;
	bool with_reason = version == 5 && reason != 0;
	size_t total = with_reason ? 5 : 4;
	if (total > cap)
		return total;
	out[0] = (uint8_t)((type << 4) | (type == MQTT_PUBREL ? 0x02 : 0));
	out[1] = (uint8_t)(total - 2);
	mqtt_put_u16(out + 2, packet_id);
	if (with_reason)
		out[4] = reason;
	return total;
}

static size_t filters_len(const char *const *filters, size_t n, size_t per_filter)
{
	size_t sum = 0;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(filters[i]);
		if (l > STR_MAX)
			return 0;
		sum += 2 + l + per_filter;
	}
	return sum;
}

static size_t enc_sub_unsub(uint8_t *out, size_t cap, int version, uint8_t first,
			    uint16_t packet_id, const char *const *filters, size_t n,
			    bool with_options, uint8_t options)
{
	bool v5 = version == 5;
	size_t fl = filters_len(filters, n, with_options ? 1 : 0);
	if ((version != 4 && !v5) || !packet_id || !n || !fl)
		return 0;
	size_t rl = 2 + (v5 ? 1 : 0) + fl;
	size_t total = packet_size(rl);
	if (!total || total > cap)
		return total;
	size_t k = put_header(out, first, rl);
	k += mqtt_put_u16(out + k, packet_id);
	if (v5)
		out[k++] = 0; /* no properties */
	for (size_t i = 0; i < n; i++) {
		k += mqtt_put_str(out + k, filters[i], strlen(filters[i]));
		if (with_options)
			out[k++] = options;
	}
	return k;
}

size_t mqtt_enc_subscribe(uint8_t *out, size_t cap, int version, uint16_t packet_id,
			  const char *const *filters, size_t n, uint8_t options)
{
	return enc_sub_unsub(out, cap, version, 0x82, packet_id, filters, n, true, options);
}

size_t mqtt_enc_unsubscribe(uint8_t *out, size_t cap, int version, uint16_t packet_id,
			    const char *const *filters, size_t n)
{
	return enc_sub_unsub(out, cap, version, 0xA2, packet_id, filters, n, false, 0);
}

size_t mqtt_enc_pingreq(uint8_t *out, size_t cap)
{
	if (cap < 2)
		return 2;
	out[0] = 0xC0;
	out[1] = 0;
	return 2;
}

size_t mqtt_enc_disconnect(uint8_t *out, size_t cap, int version, uint8_t reason,
			   int64_t session_expiry_s)
{
	if (version != 4 && version != 5)
		return 0;
	if (version == 4) {
		if (cap < 2)
			return 2;
		out[0] = 0xE0;
		out[1] = 0;
		return 2;
	}
	bool has_se = session_expiry_s >= 0;
	size_t plen = has_se ? 5 : 0;
	size_t total = 2 + 1 + 1 + plen;
	if (total > cap)
		return total;
	out[0] = 0xE0;
	out[1] = (uint8_t)(total - 2);
	out[2] = reason;
	out[3] = (uint8_t)plen;
	if (has_se)
		mqtt_put_prop_int(out + 4, MQTT_PROP_SESSION_EXPIRY, (uint32_t)session_expiry_s);
	return total;
}

/* ---- parser ------------------------------------------------------------------ */

/* A bounded reader over one packet's body. */
struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static uint8_t rd_u8(struct rd *r)
{
	if (r->left < 1) {
		r->bad = true;
		return 0;
	}
	r->left--;
	return *r->p++;
}

static uint16_t rd_u16(struct rd *r)
{
	uint16_t hi = rd_u8(r);
	return (uint16_t)((hi << 8) | rd_u8(r));
}

static uint32_t rd_u32(struct rd *r)
{
	uint32_t hi = rd_u16(r);
	return (hi << 16) | rd_u16(r);
}

static const uint8_t *rd_bytes(struct rd *r, size_t n)
{
	if (r->left < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

/* A two-byte length and its bytes; *len receives the length. */
static const uint8_t *rd_str(struct rd *r, size_t *len)
{
	*len = rd_u16(r);
	return r->bad ? NULL : rd_bytes(r, *len);
}

static uint32_t rd_varint(struct rd *r)
{
	uint32_t v = 0;
	size_t n = mqtt_get_varint(r->p, r->left, &v);
	if (!n) {
		r->bad = true;
		return 0;
	}
	r->p += n;
	r->left -= n;
	return v;
}

/* One property value: picks out the known ones, skips the rest. */
static void rd_prop(struct rd *r, uint8_t id, struct mqtt_props *pr)
{
	size_t len;
	switch (id) {
	case 0x01: case 0x17: case 0x19: case 0x25: case 0x28: case 0x29: case 0x2A:
		rd_u8(r);
		break;
	case MQTT_PROP_MAXIMUM_QOS:
		pr->maximum_qos = rd_u8(r);
		pr->has_maximum_qos = true;
		break;
	case 0x13: case 0x22: case 0x23:
		rd_u16(r);
		break;
	case MQTT_PROP_RECEIVE_MAXIMUM:
		pr->receive_maximum = rd_u16(r);
		pr->has_receive_maximum = true;
		break;
	case 0x02: case 0x18: case 0x27:
		rd_u32(r);
		break;
	case MQTT_PROP_SESSION_EXPIRY:
		pr->session_expiry_s = rd_u32(r);
		pr->has_session_expiry = true;
		break;
	case 0x0B:
		rd_varint(r);
		break;
	case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1A: case 0x1C:
		rd_str(r, &len);
		break;
	case MQTT_PROP_REASON_STRING:
		pr->reason_string = (const char *)rd_str(r, &pr->reason_string_len);
		break;
	case 0x26: /* user property: a string pair */
		rd_str(r, &len);
		rd_str(r, &len);
		break;
	default:
		r->bad = true;
	}
}

static void rd_props(struct rd *r, struct mqtt_pkt *out)
{
	uint32_t plen = rd_varint(r);
	const uint8_t *p = r->bad ? NULL : rd_bytes(r, plen);
	if (!p)
		return;
	out->raw_props = p;
	out->raw_props_len = plen;
	struct rd pr = { p, plen, false };
	while (pr.left && !pr.bad)
		rd_prop(&pr, rd_u8(&pr), &out->props);
	r->bad |= pr.bad;
}

static void parse_publish(struct rd *r, int version, struct mqtt_pkt *out)
{
	out->qos = (uint8_t)((out->flags >> 1) & 3);
	out->dup = (out->flags & 0x08) != 0;
	out->retain = (out->flags & 0x01) != 0;
	if (out->qos == 3)
		r->bad = true;
	out->topic = (const char *)rd_str(r, &out->topic_len);
	if (out->qos)
		out->packet_id = rd_u16(r);
	if (version == 5)
		rd_props(r, out);
	out->payload = r->p;
	out->payload_len = r->bad ? 0 : r->left;
	r->p += out->payload_len;
	r->left = 0;
}

static void parse_body(struct rd *r, int version, struct mqtt_pkt *out)
{
	bool v5 = version == 5;
	switch (out->type) {
	case MQTT_CONNACK:
		out->session_present = (rd_u8(r) & 1) != 0;
		out->reason = rd_u8(r);
		if (v5 && r->left)
			rd_props(r, out);
		break;
	case MQTT_PUBLISH:
		parse_publish(r, version, out);
		break;
	case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
		out->packet_id = rd_u16(r);
		if (v5 && r->left)
			out->reason = rd_u8(r);
		if (v5 && r->left)
			rd_props(r, out);
		break;
	case MQTT_SUBACK: case MQTT_UNSUBACK:
		out->packet_id = rd_u16(r);
		if (v5)
			rd_props(r, out);
		out->codes = r->p;
		out->ncodes = r->bad ? 0 : r->left;
		rd_bytes(r, out->ncodes);
		break;
	case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE:
		out->packet_id = rd_u16(r);
		rd_bytes(r, r->left);
		break;
	case MQTT_DISCONNECT: case MQTT_AUTH:
		if (v5 && r->left)
			out->reason = rd_u8(r);
		if (v5 && r->left)
			rd_props(r, out);
		break;
	default: /* CONNECT, PINGREQ, PINGRESP: nothing picked out */
		rd_bytes(r, r->left);
		break;
	}
}

int mqtt_parse(const uint8_t *buf, size_t len, int version, struct mqtt_pkt *out)
{
	uint32_t rl = 0;
	size_t vlen = 0;

	for (size_t i = 0;; i++) {
		if (1 + i >= len)
			return MQTT_PARSE_INCOMPLETE;
		rl |= (uint32_t)(buf[1 + i] & 0x7f) << (7 * i);
		if (!(buf[1 + i] & 0x80)) {
			vlen = i + 1;
			break;
		}
		if (i == 3)
			return MQTT_PARSE_MALFORMED;
	}
	size_t total = 1 + vlen + rl;
	if (len < total)
		return MQTT_PARSE_INCOMPLETE;

	memset(out, 0, sizeof(*out));
	out->type = (enum mqtt_type)(buf[0] >> 4);
	out->flags = (uint8_t)(buf[0] & 0x0f);
	out->size = total;
	if (out->type == 0)
		return MQTT_PARSE_MALFORMED;
	struct rd r = { buf + 1 + vlen, rl, false };
	parse_body(&r, version, out);
	return r.bad || r.left ? MQTT_PARSE_MALFORMED : MQTT_PARSE_OK;
}
