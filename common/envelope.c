/* envelope.c - the mqim MessagePack envelope codec; see envelope.h.
 *
 * Owns the three ways a payload meets MessagePack: decoding and validating
 * what a client sent (mqim_env_decode, on the broker's hot path for every
 * message), re-packing it with the broker's bts (mqim_env_stamp) and packing
 * a new one (mqim_env_encode, client side).
 *
 * Hostile bytes go through precheck() before msgpack-c sees them.  msgpack-c
 * allocates a container's elements as soon as it reads the count, so five
 * bytes declaring a map of 2^32-1 entries would make it ask for 200 GiB;
 * precheck() walks the whole buffer without allocating and refuses any count
 * or length that the remaining bytes cannot hold, so msgpack-c only ever
 * parses a complete, well-formed, bounded object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "envelope.h"
#include "mqim.h"
#include "names.h"

/* First zone chunk for decode: a typical envelope (8-12 keys, 48 bytes a
 * key-value pair) fits, so one malloc per message; larger ones grow it. */
#define ZONE_CHUNK 2048

/* ---- structural pre-check ---------------------------------------------- */

static const char R_EMPTY[]    = "the payload is empty";
static const char R_NOTMAP[]   = "the payload is not a MessagePack map";
static const char R_C1[]       = "the payload holds the reserved byte 0xc1";
static const char R_TRUNC[]    = "the payload ends inside a value";
static const char R_BOMB[]     = "a map or array declares more values than the payload can hold";
static const char R_DEEP[]     = "maps and arrays are nested too deep";
static const char R_TRAILING[] = "bytes follow the map";
static const char R_MANY_BTS[] = "the map repeats the key bts";

enum fmt_kind { F_SCALAR = 0, F_ARRAY, F_MAP, F_RESERVED };

/* The formats 0xc0..0xdf: width of the big-endian length or count field
 * that follows the type byte, payload bytes besides the counted ones (an
 * ext's type byte, a number's bytes) and what the value is. */
static const struct fmt {
	uint8_t lenw, fixed, kind;
} formats[32] = {
	{ 0, 0, F_SCALAR },   /* c0 nil */
	{ 0, 0, F_RESERVED }, /* c1 never used */
	{ 0, 0, F_SCALAR },   /* c2 false */
	{ 0, 0, F_SCALAR },   /* c3 true */
	{ 1, 0, F_SCALAR },   /* c4 bin 8 */
	{ 2, 0, F_SCALAR },   /* c5 bin 16 */
	{ 4, 0, F_SCALAR },   /* c6 bin 32 */
	{ 1, 1, F_SCALAR },   /* c7 ext 8 */
	{ 2, 1, F_SCALAR },   /* c8 ext 16 */
	{ 4, 1, F_SCALAR },   /* c9 ext 32 */
	{ 0, 4, F_SCALAR },   /* ca float 32 */
	{ 0, 8, F_SCALAR },   /* cb float 64 */
	{ 0, 1, F_SCALAR },   /* cc uint 8 */
	{ 0, 2, F_SCALAR },   /* cd uint 16 */
	{ 0, 4, F_SCALAR },   /* ce uint 32 */
	{ 0, 8, F_SCALAR },   /* cf uint 64 */
	{ 0, 1, F_SCALAR },   /* d0 int 8 */
	{ 0, 2, F_SCALAR },   /* d1 int 16 */
	{ 0, 4, F_SCALAR },   /* d2 int 32 */
	{ 0, 8, F_SCALAR },   /* d3 int 64 */
	{ 0, 2, F_SCALAR },   /* d4 fixext 1 */
	{ 0, 3, F_SCALAR },   /* d5 fixext 2 */
	{ 0, 5, F_SCALAR },   /* d6 fixext 4 */
	{ 0, 9, F_SCALAR },   /* d7 fixext 8 */
	{ 0, 17, F_SCALAR },  /* d8 fixext 16 */
	{ 1, 0, F_SCALAR },   /* d9 str 8 */
	{ 2, 0, F_SCALAR },   /* da str 16 */
	{ 4, 0, F_SCALAR },   /* db str 32 */
	{ 2, 0, F_ARRAY },    /* dc array 16 */
	{ 4, 0, F_ARRAY },    /* dd array 32 */
	{ 2, 0, F_MAP },      /* de map 16 */
	{ 4, 0, F_MAP },      /* df map 32 */
};

/* One value's header, as head() reads it. */
struct item {
	size_t hdr;      /* bytes of the header */
	uint64_t skip;   /* payload bytes after the header */
	uint64_t kids;   /* values inside; a map's entries count twice */
	bool container;
};

static bool is_map_byte(uint8_t b)
{
	return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/* Reads the header of the value at p[0..avail), avail >= 1.  Returns NULL,
 * or the reason it is refused (0xc1, or a length field cut short). */
static const char *head(const uint8_t *p, size_t avail, struct item *it)
{
	uint8_t b = p[0];
	uint64_t n = 0;

	*it = (struct item){ 1, 0, 0, false };
	if (b <= 0x7f || b >= 0xe0)             /* positive and negative fixint */
		return NULL;
	if (b <= 0x9f) {                        /* fixmap, fixarray */
		it->container = true;
		it->kids = b <= 0x8f ? 2u * (b & 0x0f) : (b & 0x0f);
		return NULL;
	}
	if (b <= 0xbf) {                        /* fixstr */
		it->skip = b & 0x1f;
		return NULL;
	}
	const struct fmt *f = &formats[b - 0xc0];
	if (f->kind == F_RESERVED)
		return R_C1;
	if (avail - 1 < f->lenw)
		return R_TRUNC;
	for (unsigned i = 1; i <= f->lenw; i++)
		n = n << 8 | p[i];
	it->hdr = 1u + f->lenw;
	it->container = f->kind != F_SCALAR;
	if (f->kind == F_SCALAR)
		it->skip = f->fixed + n;
	else
		it->kids = f->kind == F_MAP ? 2 * n : n;
	return NULL;
}

/* Walks the len bytes at p once, iteratively, allocating nothing.  Accepts
 * exactly one well-formed MessagePack map with nothing after it and no
 * container deeper than MQIM_ENV_MAX_DEPTH (the top map is at depth 1, so
 * a value nested in 31 more containers is the deepest allowed; this is also
 * msgpack-c's own limit, MSGPACK_EMBED_STACK_SIZE).  Every value takes at
 * least one byte, so the values still owed by all open containers must fit
 * in the bytes that remain: checked after every value, which stops a bomb
 * at its header.  Returns MQIM_OK or MQIM_EPROTO with e filled. */
/* Where the top map's parts lie, for mqim_env_stamp(): filled by
 * precheck() when asked.  Offsets are into the checked buffer. */
#define MAX_BTS 4
#define FAST_PAIRS 32
struct layout {
	size_t hdr;               /* bytes of the map header */
	uint64_t pairs;           /* entries of the map */
	size_t cut[MAX_BTS][2];   /* each "bts" entry: key start, value end */
	unsigned nbts;            /* entries found */
	uint32_t top[2 * FAST_PAIRS]; /* where the map's keys and values start */
};

/* A "bts" key in any of the four str encodings: a sender must not slip a
 * second bts past the broker in a longer encoding.  Called at every key of
 * the top map, so it rejects on the first byte. */
static bool at_bts_key(const uint8_t *p, size_t avail)
{
	size_t h;
	switch (p[0]) {
	case 0xa3: h = 1; break;
	case 0xd9: h = 2; break;
	case 0xda: h = 3; break;
	case 0xdb: h = 5; break;
	default: return false;
	}
	if (avail < h + 3 || (h > 1 && (p[h - 1] != 3 || (h > 2 && p[h - 2] != 0) ||
				       (h > 3 && (p[1] | p[2]) != 0))))
		return false;
	return p[h] == 'b' && p[h + 1] == 't' && p[h + 2] == 's';
}

static int precheck(const uint8_t *p, size_t len, struct mqim_env_error *e, struct layout *lay)
{
	bool bts_open = false;
	uint64_t owed[MQIM_ENV_MAX_DEPTH]; /* values still due, per open container */
	uint64_t total = 0;                /* sum of owed[0..depth) */
	size_t depth = 0, off = 0;
	struct item it;
	const char *why = NULL;

	if (len == 0)
		why = R_EMPTY;
	else if (!is_map_byte(p[0]))
		why = R_NOTMAP;
	/* Invariant at the top of the loop: total <= len - off, and total >= 1
	 * while depth > 0, so off < len and p[off] is readable. */
	while (!why) {
		/* a top-level key starts when an even number of the map's
		 * values are done: it ends an open bts value, may open one */
		if (lay && depth == 1) {
			uint64_t idx = 2 * lay->pairs - owed[0];
			if (idx < 2 * FAST_PAIRS)
				lay->top[idx] = (uint32_t)off;
		}
		if (lay && depth == 1 && owed[0] % 2 == 0) {
			if (bts_open)
				lay->cut[lay->nbts - 1][1] = off, bts_open = false;
			if (at_bts_key(p + off, len - off)) {
				if (lay->nbts == MAX_BTS)
					why = R_MANY_BTS;
				else
					lay->cut[lay->nbts++][0] = off, bts_open = true;
			}
		}
		if (why)
			break;
		why = head(p + off, len - off, &it);
		if (why)
			break;
		if (lay && depth == 0)
			lay->hdr = it.hdr, lay->pairs = it.kids / 2;
		off += it.hdr;
		if (it.skip > len - off) {
			why = R_TRUNC;
			break;
		}
		off += (size_t)it.skip;
		if (depth > 0) {
			owed[depth - 1]--;
			total--;
		}
		if (it.container) {
			if (depth == MQIM_ENV_MAX_DEPTH) {
				why = R_DEEP;
				break;
			}
			owed[depth++] = it.kids;
			total += it.kids;
		}
		while (depth > 0 && owed[depth - 1] == 0)
			depth--;
		if (total > len - off)
			why = R_BOMB;
		else if (depth == 0)
			break;
	}
	if (!why && off != len)
		why = R_TRAILING;
	if (bts_open)
		lay->cut[lay->nbts - 1][1] = off;
	if (!why)
		return MQIM_OK;
	*e = (struct mqim_env_error){ MQIM_EPROTO, NULL, why };
	return MQIM_EPROTO;
}

/* Runs msgpack-c on a buffer precheck() accepted: on MQIM_OK *root is the
 * map, its strings and bins pointing into buf, its arrays in zone. */
static int unpack_map(const void *buf, size_t len, msgpack_zone *zone,
		      msgpack_object *root, struct mqim_env_error *e)
{
	size_t off = 0;

	switch (msgpack_unpack(buf, len, &off, zone, root)) {
	case MSGPACK_UNPACK_SUCCESS:
		if (root->type == MSGPACK_OBJECT_MAP && off == len)
			return MQIM_OK;
		break;
	case MSGPACK_UNPACK_NOMEM_ERROR:
		*e = (struct mqim_env_error){ MQIM_ENOMEM, NULL, "out of memory" };
		return MQIM_ENOMEM;
	default:
		break;
	}
	/* Not reached for a buffer precheck() accepted. */
	*e = (struct mqim_env_error){ MQIM_EPROTO, NULL, "msgpack-c refused the payload" };
	return MQIM_EPROTO;
}

/* ---- decode: key rules ------------------------------------------------- */

enum env_key { K_V, K_ID, K_T, K_FR, K_TO, K_TS, K_BTS, K_CT, K_BODY, K_REF, K_UNKNOWN };

static const char *const key_names[K_UNKNOWN] = {
	"v", "id", "t", "fr", "to", "ts", "bts", "ct", "body", "ref",
};

/* Bounds-checked: also keeps GCC's -Warray-bounds quiet under sanitizers. */
static const char *key_name(unsigned k)
{
	return k < K_UNKNOWN ? key_names[k] : NULL;
}

#define KEY_BIT(k) (1u << (k))
#define REQUIRED_KEYS (KEY_BIT(K_V) | KEY_BIT(K_ID) | KEY_BIT(K_T) | \
		       KEY_BIT(K_FR) | KEY_BIT(K_TO) | KEY_BIT(K_TS))
#define TWO(a, b) ((unsigned)(unsigned char)(a) << 8 | (unsigned char)(b))

/* Which known key the n bytes at p are, by length first. */
static enum env_key key_of(const char *p, uint32_t n)
{
	switch (n) {
	case 1:
		return p[0] == 'v' ? K_V : p[0] == 't' ? K_T : K_UNKNOWN;
	case 2:
		switch (TWO(p[0], p[1])) {
		case TWO('i', 'd'): return K_ID;
		case TWO('f', 'r'): return K_FR;
		case TWO('t', 'o'): return K_TO;
		case TWO('t', 's'): return K_TS;
		case TWO('c', 't'): return K_CT;
		default: return K_UNKNOWN;
		}
	case 3:
		return !memcmp(p, "bts", 3) ? K_BTS : !memcmp(p, "ref", 3) ? K_REF : K_UNKNOWN;
	case 4:
		return !memcmp(p, "body", 4) ? K_BODY : K_UNKNOWN;
	default:
		return K_UNKNOWN;
	}
}

static int refuse(struct mqim_env_error *e, int code, const char *key, const char *reason)
{
	*e = (struct mqim_env_error){ code, key, reason };
	return code;
}

/* msgpack-c reads every non-negative integer, whatever its format (positive
 * fixint, uint 8-64, or int 8-64 holding a value >= 0), as POSITIVE_INTEGER:
 * that is what "uint" means here.  Negative values and floats are not. */
static bool uint_of(const msgpack_object *o, uint64_t *v)
{
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*v = o->via.u64;
	return true;
}

static bool id_of(const msgpack_object *o, uint8_t id[MQIM_ENV_ID_LEN])
{
	if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != MQIM_ENV_ID_LEN)
		return false;
	memcpy(id, o->via.bin.ptr, MQIM_ENV_ID_LEN);
	return true;
}

static struct mqim_str str_of(const msgpack_object *o)
{
	return (struct mqim_str){ o->via.str.ptr, o->via.str.size };
}

/* Checks the value o of the known key k and stores it in env. */
static int take(enum env_key k, const msgpack_object *o, struct mqim_env *env,
		struct mqim_env_error *e)
{
	const char *key = key_name(k);
	bool is_str = o->type == MSGPACK_OBJECT_STR;

	switch (k) {
	case K_V:
		if (!uint_of(o, &env->v))
			return refuse(e, MQIM_EPROTO, key, "v must be an unsigned integer");
		if (env->v != MQIM_ENV_VERSION)
			return refuse(e, MQIM_EPROTO, key, "unsupported protocol version");
		return MQIM_OK;
	case K_ID:
		return id_of(o, env->id) ? MQIM_OK
		       : refuse(e, MQIM_EPROTO, key, "id must be a bin of 16 bytes");
	case K_REF:
		env->has_ref = id_of(o, env->ref);
		return env->has_ref ? MQIM_OK
		       : refuse(e, MQIM_EPROTO, key, "ref must be a bin of 16 bytes");
	case K_T:
		if (!is_str || o->via.str.size == 0)
			return refuse(e, MQIM_EPROTO, key, "t must be a non-empty string");
		env->t = str_of(o);
		return MQIM_OK;
	case K_FR:
	case K_TO:
		if (!is_str)
			return refuse(e, MQIM_EPROTO, key, "fr and to must be strings");
		if (!mqim_name_valid_n(o->via.str.ptr, o->via.str.size))
			return refuse(e, MQIM_EBADNAME, key, "not a valid user or group id");
		*(k == K_FR ? &env->fr : &env->to) = str_of(o);
		return MQIM_OK;
	case K_TS:
		return uint_of(o, &env->ts) ? MQIM_OK
		       : refuse(e, MQIM_EPROTO, key, "ts must be an unsigned integer");
	case K_BTS: /* any other type is the sender's noise: stamping replaces it */
		env->has_bts = uint_of(o, &env->bts);
		return MQIM_OK;
	case K_CT:
		if (!is_str)
			return refuse(e, MQIM_EPROTO, key, "ct must be a string");
		env->ct = str_of(o);
		return MQIM_OK;
	case K_BODY:
		if (!is_str && o->type != MSGPACK_OBJECT_BIN)
			return refuse(e, MQIM_EPROTO, key, "body must be a bin or a string");
		env->body = (const uint8_t *)(is_str ? o->via.str.ptr : o->via.bin.ptr);
		env->body_len = is_str ? o->via.str.size : o->via.bin.size;
		env->has_body = true;
		env->body_is_str = is_str;
		return MQIM_OK;
	default:
		return MQIM_OK;
	}
}

static int key_cmp(const void *a, const void *b)
{
	const msgpack_object_str *x = *(const msgpack_object_str *const *)a;
	const msgpack_object_str *y = *(const msgpack_object_str *const *)b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return memcmp(x->ptr, y->ptr, x->size);
}

/* The n (>= 2) unknown keys of m are distinct: sorted in O(n log n), since
 * a pairwise check would let one 64 KiB map cost a billion comparisons. */
static int unknown_keys_unique(const msgpack_object_map *m, uint32_t n, msgpack_zone *zone,
			       struct mqim_env_error *e)
{
	const msgpack_object_str *small[FAST_PAIRS];
	const msgpack_object_str **keys = n <= FAST_PAIRS ? small
					  : zone ? msgpack_zone_malloc(zone, n * sizeof(*keys)) : NULL;
	uint32_t j = 0;

	if (!keys)
		return refuse(e, MQIM_ENOMEM, NULL, "out of memory");
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object_str *k = &m->ptr[i].key.via.str;
		if (key_of(k->ptr, k->size) == K_UNKNOWN)
			keys[j++] = k;
	}
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (j = 1; j < n; j++)
		if (!key_cmp(&keys[j - 1], &keys[j]))
			return refuse(e, MQIM_EPROTO, NULL, "duplicate key");
	return MQIM_OK;
}

/* Applies the contract's key rules to the decoded map m. */
static int check_map(const msgpack_object_map *m, msgpack_zone *zone, struct mqim_env *env,
		     struct mqim_env_error *e)
{
	uint32_t seen = 0, unknown = 0;
	int rc;

	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object_kv *kv = &m->ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR)
			return refuse(e, MQIM_EPROTO, NULL, "a key is not a string");
		enum env_key k = key_of(kv->key.via.str.ptr, kv->key.via.str.size);
		if (k == K_UNKNOWN) {
			unknown++;
			continue;
		}
		if (seen & KEY_BIT(k))
			return refuse(e, MQIM_EPROTO, key_name(k), "duplicate key");
		seen |= KEY_BIT(k);
		rc = take(k, &kv->val, env, e);
		if (rc != MQIM_OK)
			return rc;
	}
	if ((seen & REQUIRED_KEYS) != REQUIRED_KEYS)
		return refuse(e, MQIM_EPROTO, key_name((unsigned)__builtin_ctz(REQUIRED_KEYS & ~seen)),
			      "missing required key");
	if (!env->has_ref && (mqim_str_eq(env->t, "rcpt") || mqim_str_eq(env->t, "read")))
		return refuse(e, MQIM_EPROTO, "ref", "ref is required when t is rcpt or read");
	return unknown >= 2 ? unknown_keys_unique(m, unknown, zone, e) : MQIM_OK;
}

/* ---- decode: the fast path ---------------------------------------------- */

static uint64_t be_at(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The value at p (already accepted by precheck()) as msgpack-c would show
 * it to check_map(): the exact type, and the contents of integers, strings
 * and bins.  Containers and other scalars only need their type, since no
 * known key accepts them and unknown keys are not looked into. */
static void obj_at(const uint8_t *p, msgpack_object *o)
{
	uint8_t b = p[0];
	memset(o, 0, sizeof(*o));
	if (b <= 0x7f) {
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER, o->via.u64 = b;
	} else if (b >= 0xe0) {
		o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER, o->via.i64 = (int8_t)b;
	} else if (b >= 0xa0 && b <= 0xbf) {
		o->type = MSGPACK_OBJECT_STR;
		o->via.str.ptr = (const char *)p + 1, o->via.str.size = b & 0x1f;
	} else if (b <= 0x8f || b == 0xde || b == 0xdf) {
		o->type = MSGPACK_OBJECT_MAP;
	} else if (b <= 0x9f || b == 0xdc || b == 0xdd) {
		o->type = MSGPACK_OBJECT_ARRAY;
	} else if (b >= 0xc4 && b <= 0xc6) {          /* bin 8/16/32 */
		unsigned w = 1u << (b - 0xc4);
		o->type = MSGPACK_OBJECT_BIN;
		o->via.bin.ptr = (const char *)p + 1 + w, o->via.bin.size = (uint32_t)be_at(p + 1, w);
	} else if (b >= 0xd9 && b <= 0xdb) {          /* str 8/16/32 */
		unsigned w = 1u << (b - 0xd9);
		o->type = MSGPACK_OBJECT_STR;
		o->via.str.ptr = (const char *)p + 1 + w, o->via.str.size = (uint32_t)be_at(p + 1, w);
	} else if (b >= 0xcc && b <= 0xcf) {          /* uint 8..64 */
		o->type = MSGPACK_OBJECT_POSITIVE_INTEGER, o->via.u64 = be_at(p + 1, 1u << (b - 0xcc));
	} else if (b >= 0xd0 && b <= 0xd3) {          /* int 8..64: msgpack-c shows >= 0 as positive */
		unsigned w = 1u << (b - 0xd0);
		uint64_t u = be_at(p + 1, w);
		int64_t v = w == 8 ? (int64_t)u : (int64_t)(u << (64 - 8 * w)) >> (64 - 8 * w);
		if (v >= 0)
			o->type = MSGPACK_OBJECT_POSITIVE_INTEGER, o->via.u64 = (uint64_t)v;
		else
			o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER, o->via.i64 = v;
	} else if (b == 0xc2 || b == 0xc3) {
		o->type = MSGPACK_OBJECT_BOOLEAN, o->via.boolean = b == 0xc3;
	} else if (b == 0xca || b == 0xcb) {
		o->type = b == 0xca ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64;
	} else if (b == 0xc0) {
		o->type = MSGPACK_OBJECT_NIL;
	} else {
		o->type = MSGPACK_OBJECT_EXT;               /* ext and fixext */
	}
}

/* The map of up to FAST_PAIRS entries, read off the offsets precheck()
 * recorded, without msgpack-c's unpacker (no zone, no allocation): the same
 * check_map() then applies the same rules.  On the broker this path takes
 * about a third of the instructions of msgpack_unpack() and its zone. */
static int decode_fast(const uint8_t *p, const struct layout *lay, struct mqim_env *env,
		       struct mqim_env_error *e)
{
	msgpack_object_kv kv[FAST_PAIRS];
	msgpack_object_map m = { (uint32_t)lay->pairs, kv };

	for (uint32_t i = 0; i < m.size; i++) {
		obj_at(p + lay->top[2 * i], &kv[i].key);
		obj_at(p + lay->top[2 * i + 1], &kv[i].val);
	}
	return check_map(&m, NULL, env, e);
}

/* The reference path: msgpack-c's unpacker, for maps of more entries. */
static int decode_msgpack(const void *buf, size_t len, struct mqim_env *env,
			  struct mqim_env_error *e)
{
	msgpack_zone zone;
	msgpack_object root;

	if (!msgpack_zone_init(&zone, ZONE_CHUNK))
		return refuse(e, MQIM_ENOMEM, NULL, "out of memory");
	if (unpack_map(buf, len, &zone, &root, e) == MQIM_OK)
		check_map(&root.via.map, &zone, env, e);
	msgpack_zone_destroy(&zone);
	return e->code;
}

static void keep_layout(const struct layout *lay, struct mqim_env *env)
{
	env->at.hdr = (uint32_t)lay->hdr;
	env->at.pairs = (uint32_t)lay->pairs;
	env->at.has_bts_entry = lay->nbts == 1;
	env->at.bts_from = lay->nbts == 1 ? (uint32_t)lay->cut[0][0] : 0;
	env->at.bts_to = lay->nbts == 1 ? (uint32_t)lay->cut[0][1] : 0;
}

#ifdef MQIM_ENV_CROSSCHECK
/* Fuzz builds: both paths must agree on every input. */
static void crosscheck(const void *buf, size_t len, const struct layout *lay,
		       const struct mqim_env *fast, const struct mqim_env_error *fe)
{
	struct mqim_env ref;
	struct mqim_env_error re = { MQIM_OK, NULL, NULL };
	memset(&ref, 0, sizeof(ref));
	decode_msgpack(buf, len, &ref, &re);
	if (re.code == MQIM_OK)
		keep_layout(lay, &ref);
	if (re.code != fe->code || re.key != fe->key || re.reason != fe->reason ||
	    (re.code == MQIM_OK && memcmp(&ref, fast, sizeof(ref)) != 0))
		abort();
}
#endif

int mqim_env_decode(const void *buf, size_t len, size_t max_len,
		    struct mqim_env *env, struct mqim_env_error *err)
{
	struct mqim_env_error e = { MQIM_OK, NULL, NULL };
	struct layout lay;

	if (!env || (!buf && len)) {
		refuse(&e, MQIM_EINVAL, NULL, "invalid argument");
		goto out;
	}
	memset(env, 0, sizeof(*env));
	if (len > (max_len ? max_len : MQIM_ENV_MAX_DEFAULT)) {
		refuse(&e, MQIM_ETOOBIG, NULL, "the envelope is larger than the configured limit");
		goto out;
	}
	lay.hdr = 0, lay.pairs = 0, lay.nbts = 0; /* top[] is written before it is read */
	if (precheck(buf, len, &e, &lay) != MQIM_OK)
		goto out;
	if (lay.pairs <= FAST_PAIRS)
		decode_fast(buf, &lay, env, &e);
	else
		decode_msgpack(buf, len, env, &e);
	if (e.code == MQIM_OK)
		keep_layout(&lay, env);
#ifdef MQIM_ENV_CROSSCHECK
	if (lay.pairs <= FAST_PAIRS)
		crosscheck(buf, len, &lay, env, &e);
#endif
out:
	if (err)
		*err = e;
	return e.code;
}

/* ---- packing ----------------------------------------------------------- */

/* A msgpack_packer_write target of fixed capacity: a write that would pass
 * cap is refused (-1), nothing past cap is ever touched.  With dst NULL it
 * only counts, which sizes an output before it is allocated. */
struct fixbuf {
	char *dst;
	size_t cap;
	size_t used;
};

static int fixbuf_write(void *data, const char *buf, size_t len)
{
	struct fixbuf *fb = data;

	if (len > fb->cap - fb->used)
		return -1;
	if (fb->dst && len)
		memcpy(fb->dst + fb->used, buf, len);
	fb->used += len;
	return 0;
}

#define PACK_KEY(pk, k) msgpack_pack_str_with_body((pk), (k), sizeof(k) - 1)

static uint8_t *put_be(uint8_t *o, uint64_t v, unsigned bytes)
{
	for (unsigned i = bytes; i-- > 0;)
		*o++ = (uint8_t)(v >> (8 * i));
	return o;
}

/* The stamped copy is spliced, not re-encoded: a new map header, every
 * byte of the sender's entries except a "bts" entry, then "bts" as a
 * uint 64 (always 9 bytes, so the same input and bts give the same bytes).
 * Unknown keys are therefore forwarded byte for byte.  precheck() is the
 * only parse: a few hundred instructions for a chat message, where
 * unpacking and re-packing with msgpack-c took ten times as many on the
 * broker's hot path.  The header grows by at most 2 (fixmap to map 16, or
 * map 16 to map 32) and "bts" takes 13: MQIM_ENV_STAMP_EXTRA covers both. */
/* Write the stamped copy: header for `pairs` entries, the bytes from hdr to
 * len without the ncut ranges in cut (in order), then "bts": uint 64. */
static size_t splice(const uint8_t *in, size_t len, size_t hdr, uint64_t pairs,
		     const size_t (*cut)[2], unsigned ncut, uint64_t bts, uint8_t *out)
{
	uint8_t *o = out;
	if (pairs < 16)
		*o++ = (uint8_t)(0x80 | pairs);
	else if (pairs <= UINT16_MAX)
		*o++ = 0xde, o = put_be(o, pairs, 2);
	else
		*o++ = 0xdf, o = put_be(o, pairs, 4);
	size_t from = hdr;
	for (unsigned i = 0; i <= ncut; i++) {
		size_t upto = i < ncut ? cut[i][0] : len;
		memcpy(o, in + from, upto - from);
		o += upto - from;
		if (i < ncut)
			from = cut[i][1];
	}
	memcpy(o, "\xa3" "bts" "\xcf", 5);
	o = put_be(o + 5, bts, 8);
	return (size_t)(o - out);
}

static bool stamp_args_ok(const void *buf, size_t len, const void *out, size_t cap,
			  const size_t *out_len)
{
	return buf && out && out_len && len <= SIZE_MAX - MQIM_ENV_STAMP_EXTRA &&
	       cap >= len + MQIM_ENV_STAMP_EXTRA;
}

int mqim_env_stamp(const void *buf, size_t len, uint64_t bts,
		   void *out, size_t cap, size_t *out_len)
{
	struct mqim_env_error e = { MQIM_OK, NULL, NULL };
	struct layout lay;

	if (!stamp_args_ok(buf, len, out, cap, out_len))
		return MQIM_EINVAL;
	memset(&lay, 0, sizeof(lay));
	int rc = precheck(buf, len, &e, &lay);
	if (rc != MQIM_OK)
		return rc;
	if (lay.pairs - lay.nbts + 1 > UINT32_MAX)
		return MQIM_EINVAL;
	*out_len = splice(buf, len, lay.hdr, lay.pairs - lay.nbts + 1, (const size_t (*)[2])lay.cut,
			  lay.nbts, bts, out);
	return MQIM_OK;
}

int mqim_env_stamp_decoded(const struct mqim_env *env, const void *buf, size_t len,
			   uint64_t bts, void *out, size_t cap, size_t *out_len)
{
	size_t cut[1][2] = { { env ? env->at.bts_from : 0, env ? env->at.bts_to : 0 } };

	if (!env || !stamp_args_ok(buf, len, out, cap, out_len) || env->at.hdr == 0 ||
	    env->at.hdr > len || env->at.bts_to > len || env->at.bts_from > env->at.bts_to)
		return MQIM_EINVAL;
	unsigned ncut = env->at.has_bts_entry ? 1 : 0;
	*out_len = splice(buf, len, env->at.hdr, (uint64_t)env->at.pairs - ncut + 1,
			  (const size_t (*)[2])cut, ncut, bts, out);
	return MQIM_OK;
}

static bool str_ok(struct mqim_str s)
{
	return (s.ptr || s.len == 0) && s.len <= UINT32_MAX;
}

static int pack_str_kv(msgpack_packer *pk, const char *key, size_t klen, struct mqim_str s)
{
	return msgpack_pack_str_with_body(pk, key, klen) |
	       msgpack_pack_str_with_body(pk, s.ptr ? s.ptr : "", s.len);
}

/* Packs env in the documented key order.  Non-zero if fb is full. */
static int pack_env(const struct mqim_env *env, struct fixbuf *fb)
{
	msgpack_packer pk;
	int rc = 0;

	msgpack_packer_init(&pk, fb, fixbuf_write);
	rc |= msgpack_pack_map(&pk, 6u + env->has_bts + (env->ct.ptr != NULL) +
				    env->has_body + env->has_ref);
	rc |= PACK_KEY(&pk, "v") | msgpack_pack_uint64(&pk, env->v);
	rc |= PACK_KEY(&pk, "id") | msgpack_pack_bin_with_body(&pk, env->id, MQIM_ENV_ID_LEN);
	rc |= pack_str_kv(&pk, "t", 1, env->t);
	rc |= pack_str_kv(&pk, "fr", 2, env->fr);
	rc |= pack_str_kv(&pk, "to", 2, env->to);
	rc |= PACK_KEY(&pk, "ts") | msgpack_pack_uint64(&pk, env->ts);
	if (env->has_bts)
		rc |= PACK_KEY(&pk, "bts") | msgpack_pack_uint64(&pk, env->bts);
	if (env->ct.ptr)
		rc |= pack_str_kv(&pk, "ct", 2, env->ct);
	if (env->has_body) {
		rc |= PACK_KEY(&pk, "body");
		if (env->body_is_str)
			rc |= msgpack_pack_str_with_body(&pk, env->body, env->body_len);
		else
			rc |= msgpack_pack_bin_with_body(&pk, env->body, env->body_len);
	}
	if (env->has_ref)
		rc |= PACK_KEY(&pk, "ref") | msgpack_pack_bin_with_body(&pk, env->ref, MQIM_ENV_ID_LEN);
	return rc;
}

int mqim_env_encode(const struct mqim_env *env, void **out, size_t *out_len)
{
	struct fixbuf fb = { NULL, SIZE_MAX, 0 };
	char *buf = NULL;
	int rc = MQIM_EINVAL;

	if (!env || !out || !out_len || !str_ok(env->t) || !str_ok(env->fr) ||
	    !str_ok(env->to) || !str_ok(env->ct) ||
	    (env->has_body && ((!env->body && env->body_len) || env->body_len > UINT32_MAX)))
		goto out;
	/* Two passes, count then write, so the output is one exact malloc. */
	if (pack_env(env, &fb) != 0)
		goto out;
	rc = MQIM_ENOMEM;
	buf = malloc(fb.used ? fb.used : 1);
	if (!buf)
		goto out;
	fb = (struct fixbuf){ buf, fb.used, 0 };
	rc = pack_env(env, &fb) ? MQIM_EINVAL : MQIM_OK;
	if (rc == MQIM_OK) {
		*out = buf;
		*out_len = fb.used;
		buf = NULL;
	}
out:
	free(buf);
	return rc;
}

/* ---- small helpers ----------------------------------------------------- */

bool mqim_str_eq(struct mqim_str s, const char *c)
{
	if (!s.ptr || !c)
		return false;
	return strlen(c) == s.len && !memcmp(s.ptr, c, s.len);
}

const char *mqim_env_error_text(const struct mqim_env_error *err, char *dst, size_t dstlen)
{
	const char *reason;

	if (!dst || dstlen == 0)
		return dst;
	if (!err) {
		dst[0] = '\0';
		return dst;
	}
	reason = err->reason ? err->reason : mqim_strerror(err->code);
	if (err->key)
		snprintf(dst, dstlen, "%s (key '%s')", reason, err->key);
	else
		snprintf(dst, dstlen, "%s", reason);
	return dst;
}
