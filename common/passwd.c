/* passwd.c - password hashing and verification; see passwd.h.
 *
 * Owns: the argon2id encoder (libargon2), the readers of the hash formats we
 * can verify (argon2id and argon2i PHC strings, Mosquitto's $7$ PBKDF2-SHA512
 * and $6$ salted SHA-512), and a strict base64 decoder for the latter.
 *
 * Formats are dispatched from one table (hash_formats[]): each entry knows
 * its prefix, how to check an encoded string without a password, and how to
 * verify a password against it.  Verification refuses cost parameters far
 * beyond anything sensible, so that an imported hash cannot make a login
 * allocate gigabytes or spin for minutes on the broker's only thread.
 *
 * No global mutable state; every buffer that held key material is cleansed
 * before it goes out of scope.  Safe from any thread.
 */
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mqim.h"
#include "passwd.h"

#define SALT_LEN      16     /* bytes of salt in new argon2id hashes */
#define ARGON2_HASHLEN 32    /* bytes of tag in new argon2id hashes */
#define SHA512_LEN    64     /* Mosquitto's $6$/$7$ store the full digest */
#define MOSQ_SALT_MAX 64     /* Mosquitto writes 12; accept up to this */

/* Ceilings on what verification will spend on one attempt. */
#define PBKDF2_ITER_MAX  1000000u
#define ARGON2_M_MAX     (4u * 1024u * 1024u)   /* KiB: 4 GiB */
#define ARGON2_T_MAX     1000u
#define ARGON2_P_MAX     64u

/* ---- base64 (RFC 4648 standard alphabet, padding optional) -------------- */

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decode the len characters at in into out (room for cap bytes).  Trailing
 * '=' padding is accepted but not required; anything else outside the
 * alphabet, or bits left over in the last character, is refused.  Returns
 * the decoded length, or -1. */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	size_t n = 0;
	uint32_t acc = 0;
	int bits = 0;

	while (len > 0 && in[len - 1] == '=')
		len--;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (bits > 0 && (acc & ((1u << bits) - 1u)) != 0)
		return -1;
	return (long)n;
}

/* ---- Mosquitto $6$ and $7$ ----------------------------------------------- */

struct mosq_hash {
	unsigned long iterations;            /* 0 for $6$ */
	unsigned char salt[MOSQ_SALT_MAX];
	size_t salt_len;
	unsigned char hash[SHA512_LEN];
};

/* Parse a decimal in [1, max] that runs up to the next '$'; advances *p. */
static bool parse_count(const char **p, unsigned long max, unsigned long *out)
{
	const char *s = *p;
	unsigned long v = 0;

	if (*s < '1' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	if (*s != '$')
		return false;
	*out = v;
	*p = s + 1;
	return true;
}

/* "$7$<iterations>$<salt>$<hash>" (pbkdf2 true) or "$6$<salt>$<hash>". */
static bool mosq_parse(const char *enc, bool pbkdf2, struct mosq_hash *h)
{
	const char *p = enc + 3;
	const char *dollar;
	long n;

	h->iterations = 0;
	if (pbkdf2 && !parse_count(&p, PBKDF2_ITER_MAX, &h->iterations))
		return false;
	dollar = strchr(p, '$');
	if (!dollar)
		return false;
	n = b64_decode(p, (size_t)(dollar - p), h->salt, sizeof(h->salt));
	if (n < 1)
		return false;
	h->salt_len = (size_t)n;
	p = dollar + 1;
	if (strchr(p, '$'))
		return false;
	n = b64_decode(p, strlen(p), h->hash, sizeof(h->hash));
	return n == SHA512_LEN;
}

static int mosq_verify(const char *enc, const char *password, bool pbkdf2)
{
	struct mosq_hash h;
	unsigned char got[SHA512_LEN];
	size_t plen = strlen(password);
	int rc = MQIM_EUNSUPPORTED;

	if (!mosq_parse(enc, pbkdf2, &h))
		goto out;
	rc = MQIM_ENOMEM;
	if (pbkdf2) {
		if (PKCS5_PBKDF2_HMAC(password, (int)plen, h.salt, (int)h.salt_len,
				      (int)h.iterations, EVP_sha512(), SHA512_LEN, got) != 1)
			goto out;
	} else {
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned int glen = 0;
		int ok = md && EVP_DigestInit_ex(md, EVP_sha512(), NULL) == 1 &&
			 EVP_DigestUpdate(md, password, plen) == 1 &&
			 EVP_DigestUpdate(md, h.salt, h.salt_len) == 1 &&
			 EVP_DigestFinal_ex(md, got, &glen) == 1 && glen == SHA512_LEN;
		EVP_MD_CTX_free(md);
		if (!ok)
			goto out;
	}
	rc = CRYPTO_memcmp(got, h.hash, SHA512_LEN) == 0 ? MQIM_OK : MQIM_EAUTH;
out:
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(&h, sizeof(h));
	return rc;
}

static bool pbkdf2_check(const char *enc)
{
	struct mosq_hash h;
	bool ok = mosq_parse(enc, true, &h);
	OPENSSL_cleanse(&h, sizeof(h));
	return ok;
}

static bool sha512_check(const char *enc)
{
	struct mosq_hash h;
	bool ok = mosq_parse(enc, false, &h);
	OPENSSL_cleanse(&h, sizeof(h));
	return ok;
}

static int pbkdf2_verify(const char *enc, const char *password)
{
	return mosq_verify(enc, password, true);
}

static int sha512_verify(const char *enc, const char *password)
{
	return mosq_verify(enc, password, false);
}

/* ---- argon2 PHC strings -------------------------------------------------- */

/* Parse "key=<decimal>" at *p, with key one character; advances *p. */
static bool parse_param(const char **p, char key, unsigned long max, unsigned long *out)
{
	const char *s = *p;
	unsigned long v = 0;

	if (s[0] != key || s[1] != '=' || s[2] < '0' || s[2] > '9')
		return false;
	for (s += 2; *s >= '0' && *s <= '9'; s++) {
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	*p = s;
	return true;
}

/* Check the part after "$argon2i$" / "$argon2id$":
 * [v=16|19$]m=M,t=T,p=P$<salt b64>$<hash b64>, with costs under the caps. */
static bool argon2_params_ok(const char *p)
{
	unsigned long v, m, t, par;
	unsigned char buf[MQIM_HASH_MAX];
	const char *dollar;
	long n;

	if (p[0] == 'v') {
		if (!parse_param(&p, 'v', 255, &v) || (v != 16 && v != 19) || *p++ != '$')
			return false;
	}
	if (!parse_param(&p, 'm', ARGON2_M_MAX, &m) || *p++ != ',' ||
	    !parse_param(&p, 't', ARGON2_T_MAX, &t) || *p++ != ',' ||
	    !parse_param(&p, 'p', ARGON2_P_MAX, &par) || *p++ != '$')
		return false;
	if (t < 1 || par < 1 || m < 8 * par)
		return false;
	dollar = strchr(p, '$');
	if (!dollar)
		return false;
	n = b64_decode(p, (size_t)(dollar - p), buf, sizeof(buf));
	if (n < 8)
		return false;
	p = dollar + 1;
	n = b64_decode(p, strlen(p), buf, sizeof(buf));
	return n >= 4;
}

static bool argon2id_check(const char *enc)
{
	return argon2_params_ok(enc + strlen("$argon2id$"));
}

static bool argon2i_check(const char *enc)
{
	return argon2_params_ok(enc + strlen("$argon2i$"));
}

static int argon2_result(int arc)
{
	switch (arc) {
	case ARGON2_OK:
		return MQIM_OK;
	case ARGON2_VERIFY_MISMATCH:
		return MQIM_EAUTH;
	case ARGON2_MEMORY_ALLOCATION_ERROR:
		return MQIM_ENOMEM;
	default:
		return MQIM_EUNSUPPORTED;
	}
}

static int argon2id_check_pw(const char *enc, const char *password)
{
	return argon2_result(argon2id_verify(enc, password, strlen(password)));
}

static int argon2i_check_pw(const char *enc, const char *password)
{
	return argon2_result(argon2_verify(enc, password, strlen(password), Argon2_i));
}

/* ---- the format table ---------------------------------------------------- */

static const struct hash_format {
	const char *prefix;
	bool (*check)(const char *enc);
	int (*verify)(const char *enc, const char *password);
} hash_formats[] = {
	{ "$argon2id$", argon2id_check, argon2id_check_pw },
	{ "$argon2i$",  argon2i_check,  argon2i_check_pw },
	{ "$7$",        pbkdf2_check,   pbkdf2_verify },
	{ "$6$",        sha512_check,   sha512_verify },
};

/* The format of enc when its structure and costs are acceptable, else NULL. */
static const struct hash_format *format_of(const char *enc)
{
	if (!enc || strnlen(enc, MQIM_HASH_MAX) >= MQIM_HASH_MAX)
		return NULL;
	for (size_t i = 0; i < sizeof(hash_formats) / sizeof(hash_formats[0]); i++) {
		const struct hash_format *f = &hash_formats[i];
		if (strncmp(enc, f->prefix, strlen(f->prefix)) == 0)
			return f->check(enc) ? f : NULL;
	}
	return NULL;
}

bool mqim_passwd_format_supported(const char *encoded)
{
	return format_of(encoded) != NULL;
}

int mqim_passwd_verify(const char *encoded, const char *password)
{
	const struct hash_format *f = format_of(encoded);
	size_t plen;

	if (!f)
		return MQIM_EUNSUPPORTED;
	if (!password)
		return MQIM_EAUTH;
	plen = strnlen(password, MQIM_PASSWORD_MAX + 1);
	if (plen == 0 || plen > MQIM_PASSWORD_MAX)
		return MQIM_EAUTH;
	return f->verify(encoded, password);
}

int mqim_passwd_hash(const struct mqim_passwd_params *params, const char *password,
		     char *out, size_t outlen)
{
	static const struct mqim_passwd_params defaults = MQIM_PASSWD_PARAMS_DEFAULT;
	const struct mqim_passwd_params *pp = params ? params : &defaults;
	unsigned char salt[SALT_LEN];
	size_t plen;
	int arc;

	if (!password || !out)
		return MQIM_EINVAL;
	plen = strnlen(password, MQIM_PASSWORD_MAX + 1);
	if (plen == 0 || plen > MQIM_PASSWORD_MAX)
		return MQIM_EINVAL;
	if (outlen > MQIM_HASH_MAX)
		outlen = MQIM_HASH_MAX;
	if (argon2_encodedlen(pp->t_cost, pp->m_cost_kib, pp->parallelism, SALT_LEN,
			      ARGON2_HASHLEN, Argon2_id) > outlen)
		return MQIM_EINVAL;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return MQIM_EIO;
	arc = argon2id_hash_encoded(pp->t_cost, pp->m_cost_kib, pp->parallelism,
				    password, plen, salt, sizeof(salt), ARGON2_HASHLEN,
				    out, outlen);
	if (arc == ARGON2_MEMORY_ALLOCATION_ERROR)
		return MQIM_ENOMEM;
	return arc == ARGON2_OK ? MQIM_OK : MQIM_EINVAL;
}
