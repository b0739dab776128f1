/* envelope.h - encode, decode and validate the mqim MessagePack envelope.
 *
 * The envelope is the payload of every message on im/u/..., im/g/... and
 * im/p/... (docs/protocol.md, Envelope): exactly one MessagePack map with
 * string keys, required keys v, id, t, fr, to, ts, optional bts, ct, body,
 * ref, and any unknown keys, which are kept.  Built on msgpack-c.
 *
 * Hostile input: before msgpack-c sees a buffer, a bounded structural pass
 * checks that every declared map/array count and str/bin/ext length fits in
 * the bytes that remain and that nesting stays within MQIM_ENV_MAX_DEPTH, so
 * a few bytes declaring 2^32 elements are refused without allocating them.
 * Depth counts containers: the envelope map is at depth 1, so a value may
 * sit inside at most 31 more maps or arrays (msgpack-c's own limit too).
 *
 * "uint" below means a non-negative integer in any MessagePack integer
 * format (positive fixint, uint 8-64, or int 8-64 holding a value >= 0:
 * msgpack-c reads them all as one type); negative integers and floats are
 * not uints.
 *
 * Thread rules: no global state; every function is safe from any thread.
 */
#ifndef MQIM_ENVELOPE_H
#define MQIM_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQIM_ENV_VERSION      1
#define MQIM_ENV_ID_LEN       16
#define MQIM_ENV_MAX_DEFAULT  65536
#define MQIM_ENV_MAX_DEPTH    32
/* mqim_env_stamp() never needs more than len + this many bytes. */
#define MQIM_ENV_STAMP_EXTRA  16

/* A string inside a decoded buffer: borrowed, NOT NUL-terminated. */
struct mqim_str {
	const char *ptr;
	size_t len;
};

/* A decoded envelope.  Every pointer points into the buffer that was
 * decoded (borrowed): the view is valid only while that buffer lives.  For
 * encoding, the caller fills the fields with its own memory. */
struct mqim_env {
	uint64_t v;                      /* protocol version, MQIM_ENV_VERSION */
	uint8_t id[MQIM_ENV_ID_LEN];     /* message id (copied) */
	struct mqim_str t;               /* kind: msg, rcpt, read, ... */
	struct mqim_str fr;              /* sender user id */
	struct mqim_str to;              /* recipient user or group id */
	uint64_t ts;                     /* sender clock, ms since the epoch */
	uint64_t bts;                    /* broker clock, valid if has_bts */
	bool has_bts;
	struct mqim_str ct;              /* content type, ptr NULL if absent */
	const uint8_t *body;             /* body bytes, valid if has_body */
	size_t body_len;
	bool has_body;
	bool body_is_str;                /* body was (or is to be) a str, not a bin */
	uint8_t ref[MQIM_ENV_ID_LEN];    /* acknowledged id, valid if has_ref */
	bool has_ref;
	/* Filled by mqim_env_decode() for mqim_env_stamp_decoded(): where the
	 * map header and a "bts" entry lie in the decoded buffer. */
	struct {
		uint32_t hdr, pairs, bts_from, bts_to;
		bool has_bts_entry;
	} at;
};

/* Why a buffer was refused.  key names the offending key (a static string,
 * or NULL when the fault is not about one key); reason is a static sentence
 * fit for a log line.  Neither contains payload bytes. */
struct mqim_env_error {
	int code;           /* MQIM_OK, MQIM_ETOOBIG, MQIM_EPROTO or MQIM_EBADNAME;
			     * MQIM_EINVAL / MQIM_ENOMEM for a bad call / no memory */
	const char *key;
	const char *reason;
};

/* Decode and validate len bytes at buf, refusing more than max_len bytes
 * (0 means MQIM_ENV_MAX_DEFAULT).  On success fills *env (pointers into buf)
 * and returns MQIM_OK.  On failure returns the error code, fills *err if it
 * is not NULL, and leaves *env unspecified.  Checks: exactly one map and no
 * trailing bytes; string keys; no duplicate keys; v == 1; id a 16-byte bin;
 * t a non-empty str; fr and to valid names (names.h); ts a uint; ct a str;
 * body a bin or str; ref a 16-byte bin, required when t is rcpt or read;
 * bts, if present, a uint (has_bts false otherwise: a sender's bts of another
 * type is not an error, the broker replaces it).  Unknown keys may hold any
 * value.  fr and to that are strings but not valid names give MQIM_EBADNAME;
 * every other refusal of the bytes gives MQIM_EPROTO.  env NULL, or buf NULL
 * with len > 0, gives MQIM_EINVAL.  On success *err (if given) has code
 * MQIM_OK and reason NULL.  Allocates only while it runs; keeps nothing. */
int mqim_env_decode(const void *buf, size_t len, size_t max_len,
		    struct mqim_env *env, struct mqim_env_error *err);

/* mqim_env_decode() with flags, 0 or:
 *   MQIM_ENV_NAMES_CHECKED  the caller compares fr and to with names it
 *       knows are valid (the broker: the login and the topic's name), so
 *       the decoder may skip the name rules for them (it skips them on the
 *       envelopes libmqim sends, and checks them on any other form).  An
 *       fr or to that breaks the rules then fails the caller's comparison
 *       instead of giving MQIM_EBADNAME. */
#define MQIM_ENV_NAMES_CHECKED 1u
int mqim_env_decode_ex(const void *buf, size_t len, size_t max_len, unsigned flags,
		       struct mqim_env *env, struct mqim_env_error *err);

/* Encode env as a MessagePack map: v, id, t, fr, to, ts, then ct, body, ref
 * and bts when set (ct is set when ct.ptr is not NULL).  bts goes last and
 * always as a uint 64 (13 bytes with its key), the form the broker stamps:
 * a sender that sets has_bts (any value; libmqim sends 0) lets the broker
 * stamp in place instead of copying the envelope (docs/protocol.md).  On success *out is
 * a malloc'd buffer the caller must free() and *out_len its size; on error
 * nothing is allocated.  This packs what it is given and does not apply the
 * contract's rules (v, names, ref for receipts): mqim_env_decode() is the
 * validator.  Returns MQIM_EINVAL for NULL arguments, a NULL ptr with a
 * non-zero len, or a length over 4 GiB; MQIM_ENOMEM. */
int mqim_env_encode(const struct mqim_env *env, void **out, size_t *out_len);

/* Copy the envelope at buf into out with bts set to the given value: any
 * "bts" entry the sender put in (in any str encoding) is dropped, every
 * other entry is copied byte for byte, and "bts" is appended as a uint 64,
 * so the same input and bts always give the same bytes.  Only the
 * structural pre-check runs (no msgpack-c): call it on an envelope that
 * mqim_env_decode() accepted.  out must hold cap >= len +
 * MQIM_ENV_STAMP_EXTRA bytes; no reference to buf is kept.  Returns MQIM_OK
 * and the size in *out_len, or MQIM_EPROTO / MQIM_EINVAL with out
 * unspecified. */
int mqim_env_stamp(const void *buf, size_t len, uint64_t bts,
		   void *out, size_t cap, size_t *out_len);

/* mqim_env_stamp() for the buffer that mqim_env_decode() just accepted into
 * *env, without walking it again (the broker's hot path: decode in the
 * write check, stamp in the message hook).  buf and len must be exactly
 * what was decoded; the output is the same as mqim_env_stamp()'s. */
int mqim_env_stamp_decoded(const struct mqim_env *env, const void *buf, size_t len,
			   uint64_t bts, void *out, size_t cap, size_t *out_len);

/* mqim_env_stamp() without a copy, for the buffer mqim_env_decode() just
 * accepted into *env, when its stamped form has the same length: a fixmap
 * whose last entry is "bts" as a uint 64 (what mqim_env_encode() writes for
 * has_bts).  Then the value is overwritten, buf holds exactly the bytes
 * mqim_env_stamp() would give, and true is returned; otherwise buf is
 * untouched and false returned (stamp into a copy instead). */
bool mqim_env_stamp_in_place(const struct mqim_env *env, void *buf, size_t len, uint64_t bts);

/* True when s (a decoded str) equals the NUL-terminated c.  An absent str
 * (ptr NULL) equals nothing, not even "". */
bool mqim_str_eq(struct mqim_str s, const char *c);

/* Format "reason" or "reason (key 'k')" into dst (truncated to dstlen,
 * always NUL-terminated when dstlen > 0); returns dst.  A NULL reason is
 * replaced by mqim_strerror(code); a NULL err gives "". */
const char *mqim_env_error_text(const struct mqim_env_error *err, char *dst, size_t dstlen);

#endif
