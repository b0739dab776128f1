/* envelope.c - the mqim MessagePack envelope codec; see envelope.h.
 *
 * Owns the three ways a payload meets MessagePack: decoding and validating
 * what a client sent (mqim_env_decode, on the broker's hot path for every
 * message), re-packing it with the broker's bts (mqim_env_stamp) and packing
 * a new one (mqim_env_encode, client side).
 *
 * Decoding a map of up to 32 entries (every envelope a client sends) is one
 * walk over the bytes, decode_pass(): the structural checks, the layout
 * that stamping needs and the key rules together, without msgpack-c and
 * without allocating.  Larger maps go through precheck() before msgpack-c
 * sees them: msgpack-c allocates a container's elements as soon as it reads
 * the count, so five bytes declaring a map of 2^32-1 entries would make it
 * ask for 200 GiB; precheck() walks the whole buffer without allocating and
 * refuses any count or length that the remaining bytes cannot hold, so
 * msgpack-c only ever parses a complete, well-formed, bounded object.  Both
 * paths refuse the same bytes for the same reason (fuzz builds check it on
 * every input, MQIM_ENV_CROSSCHECK).
 */
#include <endian.h>
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

/* Where the top map's parts lie, for mqim_env_stamp(): filled by
 * precheck() when asked.  Offsets are into the checked buffer. */
#define MAX_BTS 4
struct layout {
	size_t hdr;               /* bytes of the map header */
	uint64_t pairs;           /* entries of the map */
	size_t cut[MAX_BTS][2];   /* each "bts" entry: key start, value end */
	unsigned nbts;            /* entries found */
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

/* A bts key at off opens a cut; the next top-level key (or the end)
 * closes it.  Returns R_MANY_BTS past MAX_BTS entries. */
static const char *bts_cut(struct layout *lay, bool *open, const uint8_t *p, size_t len,
			   size_t off)
{
	if (*open)
		lay->cut[lay->nbts - 1][1] = off, *open = false;
	if (!at_bts_key(p + off, len - off))
		return NULL;
	if (lay->nbts == MAX_BTS)
		return R_MANY_BTS;
	lay->cut[lay->nbts++][0] = off, *open = true;
	return NULL;
}

/* The state of a structural walk: values still due per open container. */
struct walk {
	uint64_t owed[MQIM_ENV_MAX_DEPTH];
	uint64_t total;                /* sum of owed[0..depth) */
	size_t depth, off;
};

/* One value of the walk: its header and bytes, then the containers it
 * closes.  Every value takes at least one byte, so the values still owed
 * by all open containers must fit in the bytes that remain: checked after
 * every value, which stops a bomb at its header.  Returns NULL or why the
 * bytes are refused.  Invariant before the call: total <= len - off and
 * total >= 1 while depth > 0, so p[off] is readable. */
static const char *walk_step(const uint8_t *p, size_t len, struct walk *w)
{
	struct item it;
	const char *why = head(p + w->off, len - w->off, &it);
	if (why)
		return why;
	w->off += it.hdr;
	if (it.skip > len - w->off)
		return R_TRUNC;
	w->off += (size_t)it.skip;
	if (w->depth > 0) {
		w->owed[w->depth - 1]--;
		w->total--;
	}
	if (it.container) {
		if (w->depth == MQIM_ENV_MAX_DEPTH)
			return R_DEEP;
		w->owed[w->depth++] = it.kids;
		w->total += it.kids;
	}
	while (w->depth > 0 && w->owed[w->depth - 1] == 0)
		w->depth--;
	return w->total > len - w->off ? R_BOMB : NULL;
}

/* Walks the len bytes at p once, iteratively, allocating nothing.  Accepts
 * exactly one well-formed MessagePack map with nothing after it and no
 * container deeper than MQIM_ENV_MAX_DEPTH (the top map is at depth 1, so
 * a value nested in 31 more containers is the deepest allowed; this is also
 * msgpack-c's own limit, MSGPACK_EMBED_STACK_SIZE).  Fills *lay when it is
 * not NULL.  Returns MQIM_OK or MQIM_EPROTO with e filled. */
static int precheck(const uint8_t *p, size_t len, struct mqim_env_error *e, struct layout *lay)
{
	bool bts_open = false;
	struct walk w;
	const char *why = NULL;

	w.total = 0, w.depth = 0, w.off = 0;
	if (len == 0)
		why = R_EMPTY;
	else if (!is_map_byte(p[0]))
		why = R_NOTMAP;
	while (!why) {
		/* a top-level key starts when an even number of the map's
		 * values are done: it ends an open bts value, may open one */
		if (lay && w.depth == 1 && w.owed[0] % 2 == 0)
			why = bts_cut(lay, &bts_open, p, len, w.off);
		if (why)
			break;
		bool top = w.depth == 0;
		why = walk_step(p, len, &w);
		if (lay && top && !why)
			lay->hdr = w.off, lay->pairs = w.depth ? w.owed[0] / 2 : 0;
		if (!why && w.depth == 0)
			break;
	}
	if (!why && w.off != len)
		why = R_TRAILING;
	if (bts_open)
		lay->cut[lay->nbts - 1][1] = w.off;
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

/* t is "rcpt" or "read": ref is then required. */
static bool is_receipt(struct mqim_str t)
{
	return t.len == 4 && (!memcmp(t.ptr, "rcpt", 4) || !memcmp(t.ptr, "read", 4));
}

static int key_cmp(const void *a, const void *b)
{
	const msgpack_object_str *x = *(const msgpack_object_str *const *)a;
	const msgpack_object_str *y = *(const msgpack_object_str *const *)b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return memcmp(x->ptr, y->ptr, x->size);
}

/* The n (>= 2) unknown keys are distinct: sorted in O(n log n), since a
 * pairwise check would let one 64 KiB map cost a billion comparisons.
 * Sorts keys in place. */
static int keys_unique(const msgpack_object_str **keys, uint32_t n, struct mqim_env_error *e)
{
	qsort(keys, n, sizeof(*keys), key_cmp);
	for (uint32_t j = 1; j < n; j++)
		if (!key_cmp(&keys[j - 1], &keys[j]))
			return refuse(e, MQIM_EPROTO, NULL, "duplicate key");
	return MQIM_OK;
}

/* Applies the contract's key rules to the map m decoded by msgpack-c. */
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
	if (!env->has_ref && is_receipt(env->t))
		return refuse(e, MQIM_EPROTO, "ref", "ref is required when t is rcpt or read");
	if (unknown < 2)
		return MQIM_OK;
	const msgpack_object_str **keys = msgpack_zone_malloc(zone, unknown * sizeof(*keys));
	if (!keys)
		return refuse(e, MQIM_ENOMEM, NULL, "out of memory");
	uint32_t j = 0;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object_str *k = &m->ptr[i].key.via.str;
		if (key_of(k->ptr, k->size) == K_UNKNOWN)
			keys[j++] = k;
	}
	return keys_unique(keys, unknown, e);
}

/* ---- decode: one pass ---------------------------------------------------- */

/* Maps of up to this many entries are decoded in one pass (every envelope a
 * client sends); larger ones by precheck() and msgpack-c. */
#define PASS_PAIRS 32

/* The big-endian number of n (1, 2, 4 or 8) bytes at p. */
static inline __attribute__((always_inline)) uint64_t be_at(const uint8_t *p, unsigned n)
{
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;
	switch (n) {
	case 1:
		return p[0];
	case 2:
		memcpy(&v16, p, 2);
		return be16toh(v16);
	case 4:
		memcpy(&v32, p, 4);
		return be32toh(v32);
	default:
		memcpy(&v64, p, 8);
		return be64toh(v64);
	}
}

/* The value at p (already walked) as msgpack-c would show it to take():
 * the exact type, and the contents of integers, strings and bins.
 * Containers and other scalars only get their type, since no known key
 * accepts them; nothing else of *o is written. */
static void obj_at(const uint8_t *p, msgpack_object *o)
{
	uint8_t b = p[0];
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
		o->type = MSGPACK_OBJECT_BOOLEAN;
	} else if (b == 0xca || b == 0xcb) {
		o->type = b == 0xca ? MSGPACK_OBJECT_FLOAT32 : MSGPACK_OBJECT_FLOAT64;
	} else if (b == 0xc0) {
		o->type = MSGPACK_OBJECT_NIL;
	} else {
		o->type = MSGPACK_OBJECT_EXT;               /* ext and fixext */
	}
}

/* Walks one key or value of the top map at p[*off], `owed` of whose values
 * are still due, this one included.  The same checks in the same order as
 * precheck()'s walk_step() at that place, with the formats of a chat
 * envelope (fixint, fixstr, bin 8, str 8, numbers) read inline and the rest,
 * containers above all, walked by walk_step() itself. */
static const char *top_value(const uint8_t *p, size_t len, size_t *off, uint64_t owed)
{
	size_t o = *off, room = len - o - 1; /* o < len: see walk_step() */
	uint8_t b = p[o];
	size_t n;

	if (b <= 0x7f || b >= 0xe0) {
		n = 1;
	} else if (b >= 0xa0 && b <= 0xbf) {
		if ((size_t)(b & 0x1f) > room)
			return R_TRUNC;
		n = 1 + (b & 0x1f);
	} else if (b == 0xc4 || b == 0xd9) {
		if (room < 1 || p[o + 1] > room - 1)
			return R_TRUNC;
		n = 2 + (size_t)p[o + 1];
	} else if (b >= 0xcc && b <= 0xd3) {
		n = (size_t)1 << ((b - 0xcc) & 3);
		if (n > room)
			return R_TRUNC;
		n++;
	} else {
		struct walk w;
		w.owed[0] = owed, w.total = owed, w.depth = 1, w.off = o;
		do {
			const char *why = walk_step(p, len, &w);
			if (why)
				return why;
		} while (w.depth > 1);
		*off = w.off;
		return NULL;
	}
	o += n;
	if (owed - 1 > len - o)
		return R_BOMB;
	*off = o;
	return NULL;
}

/* What the one pass knows of the key rules so far. */
struct rules {
	uint32_t seen;                  /* known keys met */
	enum env_key k;                 /* the key whose value comes next */
	uint32_t nunknown;
	const msgpack_object_str *unknown[PASS_PAIRS];
	msgpack_object_str names[PASS_PAIRS];
	struct mqim_env_error e;        /* the first rule broken, code MQIM_OK if none */
};

/* check_map()'s rules for the key k, whose name is the n bytes at name. */
static void key_rule(struct rules *r, enum env_key k, const char *name, uint32_t n)
{
	r->k = k;
	if (k == K_UNKNOWN) {
		msgpack_object_str *s = &r->names[r->nunknown];
		s->ptr = name, s->size = n;
		r->unknown[r->nunknown++] = s;
	} else if (r->seen & KEY_BIT(k)) {
		refuse(&r->e, MQIM_EPROTO, key_name(k), "duplicate key");
	} else {
		r->seen |= KEY_BIT(k);
	}
}

/* check_map()'s rules for the key or value that starts at q, in its order,
 * so the first rule broken is the same one. */
static void rule_at(const uint8_t *q, bool is_key, struct mqim_env *env, struct rules *r)
{
	msgpack_object o;
	obj_at(q, &o);
	if (!is_key) {
		if (r->k != K_UNKNOWN)
			take(r->k, &o, env, &r->e);
	} else if (o.type != MSGPACK_OBJECT_STR) {
		refuse(&r->e, MQIM_EPROTO, NULL, "a key is not a string");
	} else {
		key_rule(r, key_of(o.via.str.ptr, o.via.str.size), o.via.str.ptr, o.via.str.size);
	}
}

/* The value of the known key k at p[0..avail), avail >= 1, when it is
 * whole and has the form a client library sends: stored as take() would
 * store it, and its size returned.  0 for anything else, refusals
 * included, which then take the general path. */
static inline __attribute__((always_inline)) size_t
fast_value(enum env_key k, const uint8_t *p, size_t avail, struct mqim_env *env, bool names)
{
	uint8_t b = p[0];
	size_t w = 0, n;

	switch (k) {
	case K_V:
		if (b != MQIM_ENV_VERSION)
			return 0;
		env->v = b;
		return 1;
	case K_ID:
	case K_REF:
		if (b != 0xc4 || avail < 2 + MQIM_ENV_ID_LEN || p[1] != MQIM_ENV_ID_LEN)
			return 0;
		memcpy(k == K_ID ? env->id : env->ref, p + 2, MQIM_ENV_ID_LEN);
		env->has_ref |= k == K_REF;
		return 2 + MQIM_ENV_ID_LEN;
	case K_T:
	case K_FR:
	case K_TO:
	case K_CT: {
		n = b & 0x1f;
		if (b < 0xa0 || b > 0xbf || n >= avail)
			return 0;
		struct mqim_str str = { (const char *)p + 1, n };
		if (k == K_T && n == 0)
			return 0;
		if (names && (k == K_FR || k == K_TO) && !mqim_name_valid_n(str.ptr, n))
			return 0;
		*(k == K_T ? &env->t : k == K_FR ? &env->fr : k == K_TO ? &env->to : &env->ct) = str;
		return 1 + n;
	}
	case K_TS:
	case K_BTS: {
		uint64_t v = b;
		if (b == 0xcf) { /* a clock in ms, and the bts slot: uint 64 */
			if (avail <= 8)
				return 0;
			w = 8;
			v = be_at(p + 1, 8);
		} else if (b >= 0xcc && b <= 0xce) {
			w = (size_t)1 << (b - 0xcc);
			if (w >= avail)
				return 0;
			v = be_at(p + 1, (unsigned)w);
		} else if (b > 0x7f) {
			return 0;
		}
		if (k == K_TS)
			env->ts = v;
		else
			env->bts = v, env->has_bts = true;
		return 1 + w;
	}
	case K_BODY:
		if (b >= 0xa0 && b <= 0xbf)
			n = b & 0x1f;
		else if (b >= 0xc4 && b <= 0xc6)
			w = (size_t)1 << (b - 0xc4);
		else if (b >= 0xd9 && b <= 0xdb)
			w = (size_t)1 << (b - 0xd9);
		else
			return 0;
		if (w) {
			if (w >= avail)
				return 0;
			n = (size_t)be_at(p + 1, (unsigned)w);
		}
		if (n >= avail - w)
			return 0;
		env->body = p + 1 + w;
		env->body_len = n;
		env->has_body = true;
		env->body_is_str = b < 0xc4 || b > 0xc6;
		return 1 + w + n;
	default:
		return 0;
	}
}

/* A fixstr key of n (2 to 5) bytes as the little-endian word of its bytes. */
#define KEY2(a, b) ((uint64_t)(a) | (uint64_t)(b) << 8)
#define KEY3(a, b, c) (KEY2(a, b) | (uint64_t)(c) << 16)
#define KEY4(a, b, c, d) (KEY3(a, b, c) | (uint64_t)(d) << 24)
#define KEY5(a, b, c, d, e) (KEY4(a, b, c, d) | (uint64_t)(e) << 32)

/* The entry at p[*off] when its key is the n-byte fixstr `word` and its
 * value a whole value of known key k that fast_value() takes: stored, *off
 * moved past it, 1.  0 when the key is another, or when fewer than 8 bytes
 * are left (one load reads the key; the envelopes this path is for end
 * with a 13-byte bts entry); -1 when the value is not one fast_value()
 * takes.  Inlined with constant k, word and n. */
static inline __attribute__((always_inline)) int
canon_entry(const uint8_t *p, size_t len, size_t *off, enum env_key k, uint64_t word,
	    unsigned n, struct mqim_env *env, bool names)
{
	uint64_t got;
	size_t avail = len - *off;
	if (avail < 8)
		return 0;
	memcpy(&got, p + *off, 8);
	if ((le64toh(got) & ((UINT64_C(1) << (8 * n)) - 1)) != word)
		return 0;
	size_t v = fast_value(k, p + *off + n, avail - n, env, names);
	if (!v)
		return -1;
	*off += n + v;
	return 1;
}

/* The envelopes libmqim and mqim_env_encode() send: a fixmap of the six
 * required keys, then some of ct, body, ref and bts, in that order, every
 * key a fixstr and every value of a form fast_value() takes, at least 8
 * bytes from each key to the end.  Such bytes can break no rule that
 * decode_pass() checks (every value is whole and valid, the keys are
 * distinct), so reading them is all there is to do, in straight-line
 * code, and every field of *env is written here, the layout included (no
 * memset first).  Returns MQIM_OK with *env filled, or 1 for anything
 * else, *env then unspecified. */
static int decode_canonical(const uint8_t *p, size_t len, struct mqim_env *env, bool names)
{
	size_t off = 1 + 8 + MQIM_ENV_ID_LEN, from;
	unsigned left = p[0] & 0x0f;
	uint64_t head;
	int m;

	/* "v": 1 and "id": bin 8 of 16 are eight constant bytes */
	if (len < off + 1 || p[0] < 0x86 || p[0] > 0x8a)
		return 1;
	memcpy(&head, p + 1, 8);
	if (le64toh(head) != (KEY3(0xa1, 'v', MQIM_ENV_VERSION) |
			      KEY5(0xa2, 'i', 'd', 0xc4, MQIM_ENV_ID_LEN) << 24))
		return 1;
	env->v = MQIM_ENV_VERSION;
	memcpy(env->id, p + 9, MQIM_ENV_ID_LEN);
	if (canon_entry(p, len, &off, K_T, KEY2(0xa1, 't'), 2, env, names) != 1 ||
	    canon_entry(p, len, &off, K_FR, KEY3(0xa2, 'f', 'r'), 3, env, names) != 1 ||
	    canon_entry(p, len, &off, K_TO, KEY3(0xa2, 't', 'o'), 3, env, names) != 1 ||
	    canon_entry(p, len, &off, K_TS, KEY3(0xa2, 't', 's'), 3, env, names) != 1)
		return 1;
	left -= 6;
	env->ct = (struct mqim_str){ NULL, 0 };
	env->body = NULL, env->body_len = 0, env->has_body = false, env->body_is_str = false;
	env->has_ref = false;
	env->bts = 0, env->has_bts = false;
	if (left && (m = canon_entry(p, len, &off, K_CT, KEY3(0xa2, 'c', 't'), 3, env, names))) {
		if (m < 0)
			return 1;
		left--;
	}
	if (left && (m = canon_entry(p, len, &off, K_BODY, KEY5(0xa4, 'b', 'o', 'd', 'y'), 5, env, names))) {
		if (m < 0)
			return 1;
		left--;
	}
	if (left && (m = canon_entry(p, len, &off, K_REF, KEY4(0xa3, 'r', 'e', 'f'), 4, env, names))) {
		if (m < 0)
			return 1;
		left--;
	}
	from = off;
	env->at.hdr = 1, env->at.pairs = p[0] & 0x0f;
	env->at.has_bts_entry = false, env->at.bts_from = 0, env->at.bts_to = 0;
	if (left && (m = canon_entry(p, len, &off, K_BTS, KEY4(0xa3, 'b', 't', 's'), 4, env, names))) {
		if (m < 0)
			return 1;
		env->at.has_bts_entry = true;
		env->at.bts_from = (uint32_t)from, env->at.bts_to = (uint32_t)off;
		left--;
	}
	if (left || off != len || (!env->has_ref && is_receipt(env->t)))
		return 1;
	return MQIM_OK;
}

/* Decodes a map of at most PASS_PAIRS entries in one walk: the structure
 * (precheck()'s checks, whose refusals come first, as there), the layout for
 * stamping and the key rules (check_map()'s, in its order).  No allocation.
 * Returns MQIM_OK, an error with *e filled, or 1 when the map holds more
 * than PASS_PAIRS entries (nothing checked yet). */
static int decode_pass(const uint8_t *p, size_t len, struct mqim_env *env, struct layout *lay,
		       struct mqim_env_error *e)
{
	struct rules r;
	const char *why = NULL;
	bool bts_open = false;
	size_t off = 1;
	uint64_t owed = 0;

	if (len == 0) {
		why = R_EMPTY;
	} else if (p[0] >= 0x80 && p[0] <= 0x8f) {
		owed = 2u * (p[0] & 0x0f);
	} else if (p[0] == 0xde || p[0] == 0xdf) {
		unsigned w = p[0] == 0xde ? 2 : 4;
		if (len - 1 < w)
			why = R_TRUNC;
		else
			owed = 2 * be_at(p + 1, w), off += w;
	} else {
		why = R_NOTMAP;
	}
	if (!why && owed > 2 * PASS_PAIRS)
		return 1;
	lay->hdr = off, lay->pairs = owed / 2, lay->nbts = 0;
	r.seen = 0, r.k = K_UNKNOWN, r.nunknown = 0, r.e.code = MQIM_OK;
	if (!why && owed > len - off)
		why = R_BOMB;
	while (!why && owed) {
		/* a key: a whole fixstr inline (bts_cut() and top_value()'s
		 * checks, in their order), anything else the general way */
		size_t start = off;
		uint8_t b = p[off];
		if (b >= 0xa0 && b <= 0xbf && (size_t)(b & 0x1f) < len - off) {
			uint32_t n = b & 0x1f;
			enum env_key k = key_of((const char *)p + off + 1, n);
			if (bts_open)
				lay->cut[lay->nbts - 1][1] = off, bts_open = false;
			if (k == K_BTS && lay->nbts == MAX_BTS) {
				why = R_MANY_BTS;
				break;
			}
			if (k == K_BTS)
				lay->cut[lay->nbts++][0] = off, bts_open = true;
			off += 1 + n;
			if (--owed > len - off) {
				why = R_BOMB;
				break;
			}
			if (r.e.code == MQIM_OK)
				key_rule(&r, k, (const char *)p + start + 1, n);
		} else {
			why = bts_cut(lay, &bts_open, p, len, off);
			if (!why)
				why = top_value(p, len, &off, owed--);
			if (why)
				break;
			if (r.e.code == MQIM_OK)
				rule_at(p + start, true, env, &r);
		}
		/* its value: owed is odd, so p[off] is readable */
		start = off;
		size_t n = r.e.code == MQIM_OK && r.k != K_UNKNOWN
			   ? fast_value(r.k, p + off, len - off, env, true) : 0;
		if (n) {
			off += n;
			if (--owed > len - off)
				why = R_BOMB;
		} else {
			why = top_value(p, len, &off, owed--);
			if (!why && r.e.code == MQIM_OK)
				rule_at(p + start, false, env, &r);
		}
	}
	if (!why && off != len)
		why = R_TRAILING;
	if (bts_open)
		lay->cut[lay->nbts - 1][1] = off;
	if (why)
		return refuse(e, MQIM_EPROTO, NULL, why);
	if (r.e.code != MQIM_OK) {
		*e = r.e;
		return e->code;
	}
	if ((r.seen & REQUIRED_KEYS) != REQUIRED_KEYS)
		return refuse(e, MQIM_EPROTO, key_name((unsigned)__builtin_ctz(REQUIRED_KEYS & ~r.seen)),
			      "missing required key");
	if (!env->has_ref && is_receipt(env->t))
		return refuse(e, MQIM_EPROTO, "ref", "ref is required when t is rcpt or read");
	return r.nunknown >= 2 ? keys_unique(r.unknown, r.nunknown, e) : MQIM_OK;
}

/* The reference path: precheck(), then msgpack-c's unpacker, for maps of
 * more than PASS_PAIRS entries (and to cross-check decode_pass()). */
static int decode_msgpack(const void *buf, size_t len, struct mqim_env *env, struct layout *lay,
			  struct mqim_env_error *e)
{
	msgpack_zone zone;
	msgpack_object root;

	memset(lay, 0, sizeof(*lay));
	if (precheck(buf, len, e, lay) != MQIM_OK)
		return e->code;
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
/* Fuzz builds: the one pass and the reference path must agree on every
 * input, refusals included. */
static void crosscheck(const void *buf, size_t len, const struct mqim_env *fast,
		       const struct mqim_env_error *fe)
{
	struct mqim_env ref;
	struct mqim_env_error re = { MQIM_OK, NULL, NULL };
	struct layout lay;
	memset(&ref, 0, sizeof(ref));
	decode_msgpack(buf, len, &ref, &lay, &re);
	if (re.code == MQIM_OK)
		keep_layout(&lay, &ref);
	/* Where an empty body or content type points is meaningless (msgpack-c
	 * points a 0-byte bin16 at its length field, the one pass past it),
	 * but whether ct is there at all (ptr NULL or not) is not. */
	if (re.code == MQIM_OK && ref.body_len == 0 && fast->body_len == 0)
		ref.body = fast->body;
	if (re.code == MQIM_OK && ref.ct.len == 0 && fast->ct.len == 0 &&
	    !ref.ct.ptr == !fast->ct.ptr)
		ref.ct.ptr = fast->ct.ptr;
	if (re.code != fe->code || re.key != fe->key || re.reason != fe->reason ||
	    (re.code == MQIM_OK && memcmp(&ref, fast, sizeof(ref)) != 0))
		abort();
}
#endif

int mqim_env_decode(const void *buf, size_t len, size_t max_len,
		    struct mqim_env *env, struct mqim_env_error *err)
{
	return mqim_env_decode_ex(buf, len, max_len, 0, env, err);
}

int mqim_env_decode_ex(const void *buf, size_t len, size_t max_len, unsigned flags,
		       struct mqim_env *env, struct mqim_env_error *err)
{
	struct mqim_env_error e = { MQIM_OK, NULL, NULL };
	struct layout lay;
	size_t limit = max_len ? max_len : MQIM_ENV_MAX_DEFAULT;

	/* the envelopes clients send: no other pass */
	if (env && buf && len && len <= limit) {
#ifdef MQIM_ENV_CROSSCHECK
		memset(env, 0, sizeof(*env)); /* crosscheck() compares every byte */
#endif
		if (decode_canonical(buf, len, env, !(flags & MQIM_ENV_NAMES_CHECKED)) == MQIM_OK) {
#ifdef MQIM_ENV_CROSSCHECK
			if (!(flags & MQIM_ENV_NAMES_CHECKED))
				crosscheck(buf, len, env, &e);
#endif
			if (err)
				*err = e;
			return MQIM_OK;
		}
	}
	if (!env || (!buf && len)) {
		refuse(&e, MQIM_EINVAL, NULL, "invalid argument");
		goto out;
	}
	memset(env, 0, sizeof(*env));
	if (len > limit) {
		refuse(&e, MQIM_ETOOBIG, NULL, "the envelope is larger than the configured limit");
		goto out;
	}
	int rc = decode_pass(buf, len, env, &lay, &e);
	if (rc == 1)
		decode_msgpack(buf, len, env, &lay, &e);
	if (e.code == MQIM_OK)
		keep_layout(&lay, env);
#ifdef MQIM_ENV_CROSSCHECK
	if (rc != 1 && !(flags & MQIM_ENV_NAMES_CHECKED))
		crosscheck(buf, len, env, &e);
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
 * Unknown keys are therefore forwarded byte for byte.  The layout comes
 * from the decode (mqim_env_stamp_decoded) or from precheck()
 * (mqim_env_stamp): no second parse, where unpacking and re-packing with
 * msgpack-c took ten times as many instructions on the broker's hot path.  The header grows by at most 2 (fixmap to map 16, or
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
	uint64_t be = htobe64(bts);
	memcpy(o, "\xa3" "bts" "\xcf", 5);
	memcpy(o + 5, &be, sizeof(be));
	o += 5 + sizeof(be);
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
	if (env->has_bts) {
		/* always 9 bytes: the form the broker stamps, so it can stamp in place */
		uint8_t u64[9] = { 0xcf };
		uint64_t be = htobe64(env->bts);
		memcpy(u64 + 1, &be, sizeof(be));
		rc |= PACK_KEY(&pk, "bts") | fixbuf_write(fb, (const char *)u64, sizeof(u64));
	}
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

bool mqim_env_stamp_in_place(const struct mqim_env *env, void *buf, size_t len, uint64_t bts)
{
	uint8_t *p = buf;
	if (!env || !buf || env->at.hdr != 1 || !env->at.has_bts_entry || env->at.bts_to != len ||
	    env->at.bts_to - env->at.bts_from != 13 || memcmp(p + env->at.bts_from, "\xa3" "bts" "\xcf", 5))
		return false;
	uint64_t be = htobe64(bts);
	memcpy(p + env->at.bts_from + 5, &be, sizeof(be));
	return true;
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
