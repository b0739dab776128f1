/* auth.c - login: MOSQ_EVT_BASIC_AUTH.
 *
 * Order of checks, cheapest first: a username that follows the naming rules,
 * a client id bound to it ("{user}" or "{user}/..."), then the password.
 *
 * Password cost.  Hashes are argon2id, slow by design, and Mosquitto has one
 * thread: every millisecond spent hashing is a millisecond no message moves.
 * Two defences keep a storm of reconnecting clients from stalling delivery:
 *  1. A verified password is remembered per user, as HMAC-SHA256 keyed with a
 *     random per-run pepper, for plugin_opt_auth_cache_ttl seconds.  A
 *     reconnect with the same password then costs one HMAC (microseconds),
 *     not one argon2 run.  The remembered MAC never leaves memory, is useless
 *     without the pepper, and is forgotten when the password changes.
 *  2. Hashing is budgeted: at most plugin_opt_auth_hash_budget_ms of argon2
 *     work per second, in a bucket that holds a third of it: a few logins
 *     at once pass, a storm stalls delivery ~100 ms at a time at most.
 *     Past the budget, a login that would need a hash is
 *     closed without a CONNACK (not refused as a bad password), so clients
 *     retry after their backoff instead of reporting a wrong password.
 *
 * Unknown, disabled and wrong-password logins get the same answer (CONNACK
 * 0x87 from Mosquitto) after the same work: an unknown user is verified
 * against a dummy hash made with the configured cost at start.
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "plugin.h"

/* Return codes of this callback, as Mosquitto 2.0 reads them:
 *   MOSQ_ERR_SUCCESS  login accepted
 *   MOSQ_ERR_AUTH     refused: CONNACK 0x87 Not authorized
 *   MOSQ_ERR_UNKNOWN  busy: the connection is closed without a CONNACK
 */

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int mqim__auth_init(struct mqim_ctx *ctx)
{
	char dummy[33];
	if (RAND_bytes(ctx->pepper, sizeof(ctx->pepper)) != 1 ||
	    RAND_bytes((unsigned char *)dummy, sizeof(dummy) - 1) != 1)
		return MQIM_EIO;
	for (size_t i = 0; i + 1 < sizeof(dummy); i++)
		dummy[i] = (char)('a' + ((unsigned char)dummy[i] % 26));
	dummy[sizeof(dummy) - 1] = '\0';
	int rc = mqim_passwd_hash(&ctx->opts.pw, dummy, ctx->dummy_hash, sizeof(ctx->dummy_hash));
	OPENSSL_cleanse(dummy, sizeof(dummy));
	return rc;
}

static void password_mac(const struct mqim_ctx *ctx, const char *password, uint8_t mac[32])
{
	unsigned int len = 32;
	HMAC(EVP_sha256(), ctx->pepper, sizeof(ctx->pepper), (const unsigned char *)password,
	     strlen(password), mac, &len);
}

/* True when the budget allows a hash now.  The budget is a token bucket of
 * hashing time: it refills at plugin_opt_auth_hash_budget_ms per second and
 * holds at most a third of that, so a few logins at once pass at once while
 * a storm stalls delivery for at most about a third of the budget at a time
 * (100 ms by default), then for one hash in every budget-sized slice. */
static bool hash_budget_left(struct mqim_ctx *ctx)
{
	uint64_t now = mono_us();
	int64_t cap = (int64_t)ctx->opts.hash_budget_ms * 1000 / 3;
	if (!ctx->hash_refill_us) {
		ctx->hash_credit_us = cap;
	} else {
		ctx->hash_credit_us += (int64_t)((now - ctx->hash_refill_us) * ctx->opts.hash_budget_ms / 1000u);
		if (ctx->hash_credit_us > cap)
			ctx->hash_credit_us = cap;
	}
	ctx->hash_refill_us = now;
	return ctx->hash_credit_us > 0;
}

/* The slow path: one argon2 verification, paid from the budget. */
static int verify_slow(struct mqim_ctx *ctx, const char *hash, const char *password)
{
	uint64_t t0 = mono_us();
	int rc = mqim_passwd_verify(hash, password);
	ctx->hash_credit_us -= (int64_t)(mono_us() - t0);
	return rc;
}

static int check_password(struct mqim_ctx *ctx, struct mqim_user *u, const char *password,
			  const char **reason)
{
	uint8_t mac[32];
	time_t now = time(NULL);

	password_mac(ctx, password, mac);
	if (u && !u->disabled && u->verified_until > now &&
	    CRYPTO_memcmp(mac, u->verified_mac, sizeof(mac)) == 0)
		return MOSQ_ERR_SUCCESS;

	if (!hash_budget_left(ctx)) {
		*reason = "login storm: password hashing budget spent, closed for a retry";
		return MOSQ_ERR_UNKNOWN;
	}
	int rc = verify_slow(ctx, u ? u->hash : ctx->dummy_hash, password);
	if (!u) {
		*reason = "unknown user";
		return MOSQ_ERR_AUTH;
	}
	if (rc != MQIM_OK) {
		*reason = rc == MQIM_EUNSUPPORTED ? "stored hash has an unsupported format"
						  : "wrong password";
		return MOSQ_ERR_AUTH;
	}
	if (u->disabled) {
		*reason = "user is disabled";
		return MOSQ_ERR_AUTH;
	}
	memcpy(u->verified_mac, mac, sizeof(mac));
	u->verified_until = now + (time_t)ctx->opts.auth_cache_ttl_s;
	return MOSQ_ERR_SUCCESS;
}

/* A token as the password (jwt.c): the user must exist and be enabled,
 * unless plugin_opt_jwt_auto_create creates it (once: a store write). */
static int check_token(struct mqim_ctx *ctx, const char *user, const char *token, time_t now,
		       time_t *exp, const char **reason)
{
	if (mqim__jwt_verify(ctx, user, token, now, exp, reason) != MQIM_OK)
		return MOSQ_ERR_AUTH;
	struct mqim_user *u = mqim__user_find(ctx, user);
	if (!u && ctx->opts.jwt_auto_create) {
		/* "!" is no hash format: such a user can log in with tokens only */
		int rc = mqim_store_user_add(ctx->store, user, "!token-only", false);
		if (rc == MQIM_OK || rc == MQIM_EEXISTS)
			rc = mqim__user_put(ctx, user, "!token-only", false, false);
		if (rc != MQIM_OK) {
			*reason = "could not create the user named by the token";
			return MOSQ_ERR_AUTH;
		}
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: created user=%s from a valid token", user);
		u = mqim__user_find(ctx, user);
	}
	if (!u) {
		*reason = "unknown user";
		return MOSQ_ERR_AUTH;
	}
	if (u->disabled) {
		*reason = "user is disabled";
		return MOSQ_ERR_AUTH;
	}
	return MOSQ_ERR_SUCCESS;
}

int mqim__on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	struct mqim_ctx *ctx = userdata;
	const char *user = ed->username;
	const char *address = mosquitto_client_address(ed->client);
	const char *reason = NULL;
	time_t now = time(NULL), exp = 0;
	int rc = MOSQ_ERR_AUTH;

	if (!user) {
		reason = "no username (anonymous logins are never allowed)";
	} else if (!mqim_name_valid(user)) {
		reason = "username breaks the naming rules";
	} else if (!mqim_clientid_allowed(mosquitto_client_id(ed->client), user)) {
		reason = "client id must be the username or start with 'username/'";
	} else if (!ed->password || !ed->password[0]) {
		reason = "no password";
	} else if (mqim__throttle_locked(ctx, user, address, now)) {
		reason = "locked out after repeated failed logins";
		mqim__deny(ed->client, "login", NULL, reason);
		return MOSQ_ERR_AUTH; /* not counted: a lockout must not extend itself */
	} else if (mqim__jwt_applies(ctx, ed->password)) {
		rc = check_token(ctx, user, ed->password, now, &exp, &reason);
	} else {
		rc = check_password(ctx, mqim__user_find(ctx, user), ed->password, &reason);
	}

	if (rc == MOSQ_ERR_SUCCESS) {
		mqim__throttle_reset(ctx, user, address);
		mqim__session_add(ctx, ed->client, user, exp);
		return MOSQ_ERR_SUCCESS;
	}
	if (rc == MOSQ_ERR_AUTH)
		mqim__throttle_failed(ctx, user, address, now);
	mqim__deny(ed->client, "login", NULL, reason);
	return rc;
}
