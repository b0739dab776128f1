/* passwd.h - password hashing and verification.
 *
 * New hashes are argon2id (libargon2, the reference implementation), with a
 * fresh random 16-byte salt per call from OpenSSL's RAND_bytes, encoded in
 * the PHC string format "$argon2id$v=19$m=...,t=...,p=...$salt$hash" so the
 * cost travels with each hash.  Verification also accepts the formats a
 * Mosquitto password file holds ($7$ PBKDF2-SHA512 and $6$ salted SHA-512)
 * so that `mqimctl user import` can take them over unchanged.  Comparisons
 * are constant-time.
 *
 * Hashing is slow on purpose (tens of milliseconds with the defaults): never
 * call these per message.  No global state; safe from any thread.
 */
#ifndef MQIM_PASSWD_H
#define MQIM_PASSWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MQIM_HASH_MAX      256   /* room for any encoded hash, with NUL */
#define MQIM_PASSWORD_MAX  1024  /* longer passwords are refused */

struct mqim_passwd_params {
	uint32_t t_cost;       /* argon2 passes */
	uint32_t m_cost_kib;   /* argon2 memory, KiB */
	uint32_t parallelism;  /* argon2 lanes */
};

/* OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
#define MQIM_PASSWD_PARAMS_DEFAULT { 2, 19456, 1 }

/* Hash password into out (an encoded NUL-terminated string, at most
 * MQIM_HASH_MAX bytes with the NUL).  params NULL means the defaults.
 * Returns MQIM_OK, MQIM_EINVAL (empty or over-long password, small out,
 * parameters libargon2 refuses such as m_cost_kib < 8 * parallelism),
 * MQIM_ENOMEM, or MQIM_EIO when the system's random generator fails. */
int mqim_passwd_hash(const struct mqim_passwd_params *params, const char *password,
		     char *out, size_t outlen);

/* Check password against an encoded hash.  Returns MQIM_OK on a match,
 * MQIM_EAUTH on a mismatch (also for a NULL, empty or over-long password),
 * MQIM_EUNSUPPORTED for an unknown or malformed hash, MQIM_ENOMEM.
 * Understood: $argon2id$ and $argon2i$ PHC strings, Mosquitto's
 * "$7$<iterations>$<b64 salt>$<b64 hash>" (PBKDF2-HMAC-SHA512, 64-byte key)
 * and "$6$<b64 salt>$<b64 hash>" (SHA-512 of password then salt). */
int mqim_passwd_verify(const char *encoded, const char *password);

/* True when mqim_passwd_verify() understands this encoded hash: a known
 * format, well formed, and with costs a login can afford (argon2 at most
 * 4 GiB, 1000 passes, 64 lanes; PBKDF2 at most 1,000,000 iterations).
 * Nothing is hashed; cheap enough to validate imported hashes. */
bool mqim_passwd_format_supported(const char *encoded);

#endif
