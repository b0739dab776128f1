/* jwt.c - app-server tokens: a JSON Web Token as the MQTT password.
 *
 * An app's own server logs its users in and hands the device a token; the
 * device logs in with username = user id and password = the token.  Keys:
 * an HS256 shared secret (plugin_opt_jwt_secret_file, mode 0600 or the
 * broker refuses to start) and/or an RS256/ES256 public key
 * (plugin_opt_jwt_public_key_file).  libjwt parses and checks public-key
 * signatures; the HS256 MAC is checked here with OpenSSL and a
 * constant-time comparison, over the bytes libjwt parsed (once per login).
 *
 * Algorithm confusion is impossible by construction: the algorithm named in
 * the token's header picks the key (HS256 -> the secret, RS256/ES256 -> the
 * public key, anything else including "none" -> refused), so a public key is
 * never used as an HMAC secret.
 *
 * Claims: sub must equal the username and exp must be in the future
 * (both required); nbf and iat, when present, must not be in the future
 * (60 s leeway for clock skew); aud, when present, must name
 * plugin_opt_jwt_audience ("mqim"); iss must equal plugin_opt_jwt_issuer
 * when that is set.  A verification costs microseconds (HS256) to a tenth
 * of a millisecond (RS256/ES256): no budget is needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <jwt.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "plugin.h"

#define LEEWAY_S 60
#define KEY_MAX  (64 * 1024)

/* Read a whole small file; refuse one others may read when secret. */
static int read_key(const char *path, bool secret, unsigned char **out, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot read key file %s: %s", path, strerror(errno));
		goto fail;
	}
	if (secret && (st.st_mode & 077)) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
				     "mqim: secret file %s is readable by group or others: chmod 600 it", path);
		goto fail;
	}
	if (st.st_size <= 0 || st.st_size > KEY_MAX) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: key file %s is empty or too large", path);
		goto fail;
	}
	unsigned char *buf = mqim__malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	ssize_t n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	if (n != st.st_size) {
		mqim__free(buf);
		return MQIM_EIO;
	}
	size_t l = (size_t)n;
	if (secret) /* a trailing newline from an editor or `echo` is not key */
		while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r'))
			l--;
	buf[l] = '\0';
	*out = buf;
	*len = l;
	return l ? MQIM_OK : MQIM_EINVAL;
fail:
	if (fd >= 0)
		close(fd);
	return MQIM_EIO;
}

int mqim__jwt_init(struct mqim_ctx *ctx)
{
	int rc = MQIM_OK;
	if (ctx->opts.jwt_secret_file)
		rc = read_key(ctx->opts.jwt_secret_file, true, &ctx->jwt_secret, &ctx->jwt_secret_len);
	if (!rc && ctx->opts.jwt_public_key_file)
		rc = read_key(ctx->opts.jwt_public_key_file, false, &ctx->jwt_pubkey, &ctx->jwt_pubkey_len);
	return rc;
}

void mqim__jwt_free(struct mqim_ctx *ctx)
{
	if (ctx->jwt_secret)
		OPENSSL_cleanse(ctx->jwt_secret, ctx->jwt_secret_len);
	mqim__free(ctx->jwt_secret);
	mqim__free(ctx->jwt_pubkey);
	ctx->jwt_secret = ctx->jwt_pubkey = NULL;
}

bool mqim__jwt_applies(const struct mqim_ctx *ctx, const char *password)
{
	if (!ctx->jwt_secret && !ctx->jwt_pubkey)
		return false;
	if (strncmp(password, "eyJ", 3))
		return false;
	const char *dot = strchr(password, '.');
	return dot && strchr(dot + 1, '.') != NULL;
}

/* HS256: base64url(HMAC-SHA256(secret, "header.payload")) == signature. */
static bool hs256_ok(const struct mqim_ctx *ctx, const char *token)
{
	const char *dot = strchr(token, '.');
	const char *sig = strrchr(token, '.');
	unsigned char mac[32];
	unsigned int maclen = sizeof(mac);
	char b64[48], expect[48];

	/* exactly header.payload.signature: what is MAC'd is what was parsed */
	if (!dot || !sig || strchr(dot + 1, '.') != sig)
		return false;
	if (!HMAC(EVP_sha256(), ctx->jwt_secret, (int)ctx->jwt_secret_len,
		  (const unsigned char *)token, (size_t)(sig - token), mac, &maclen))
		return false;
	int n = EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
	size_t j = 0;
	for (int i = 0; i < n && b64[i] != '='; i++)
		expect[j++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	sig++;
	return strlen(sig) == j && CRYPTO_memcmp(sig, expect, j) == 0;
}

static bool audience_ok(jwt_t *j, const char *want)
{
	const char *aud = jwt_get_grant(j, "aud");
	if (aud)
		return !strcmp(aud, want);
	char *json = jwt_get_grants_json(j, "aud");
	if (!json)
		return true; /* no audience claim: nothing to check */
	cJSON *arr = cJSON_Parse(json);
	bool ok = false;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
		if (cJSON_IsString(it) && !strcmp(it->valuestring, want))
			ok = true;
	cJSON_Delete(arr);
	free(json);
	return ok;
}

/* A numeric claim: 1 present (value in *v), 0 absent, -1 not a number. */
static int claim_int(jwt_t *j, const char *name, long *v)
{
	errno = 0;
	*v = jwt_get_grant_int(j, name);
	if (errno == ENOENT)
		return 0;
	return errno ? -1 : 1;
}

static const char *check_claims(const struct mqim_ctx *ctx, jwt_t *j, const char *user,
				time_t now, time_t *exp)
{
	long v;
	const char *sub = jwt_get_grant(j, "sub");
	if (!sub || strcmp(sub, user))
		return "token subject (sub) is not the username";
	if (claim_int(j, "exp", &v) != 1)
		return "token has no expiry (exp)";
	if (v <= now)
		return "token expired";
	*exp = (time_t)v;
	int r = claim_int(j, "nbf", &v);
	if (r < 0 || (r > 0 && v > now + LEEWAY_S))
		return "token not yet valid (nbf)";
	r = claim_int(j, "iat", &v);
	if (r < 0 || (r > 0 && v > now + LEEWAY_S))
		return "token issued in the future (iat)";
	if (!audience_ok(j, ctx->opts.jwt_audience))
		return "token audience (aud) is not this service";
	if (ctx->opts.jwt_issuer) {
		const char *iss = jwt_get_grant(j, "iss");
		if (!iss || strcmp(iss, ctx->opts.jwt_issuer))
			return "token issuer (iss) is not the configured one";
	}
	return NULL;
}

int mqim__jwt_verify(struct mqim_ctx *ctx, const char *user, const char *token,
		     time_t now, time_t *exp, const char **reason)
{
	jwt_t *j = NULL;
	int rc = MQIM_EAUTH;

	/* 1. parse without a key, only to learn which key the header asks for */
	if (jwt_decode(&j, token, NULL, 0) != 0) {
		*reason = "malformed token";
		return MQIM_EAUTH;
	}
	/* libjwt leaves jwt_get_alg() at "none" when no key is given */
	const char *alg_name = jwt_get_header(j, "alg");
	jwt_alg_t alg = alg_name ? jwt_str_alg(alg_name) : JWT_ALG_INVAL;

	/* 2. verify with the key that belongs to that algorithm, and only it */
	if (alg == JWT_ALG_HS256 && ctx->jwt_secret) {
		/* the MAC of the bytes parsed above, checked here in constant
		 * time: the claims can be read from that parse (one parse per
		 * login, where letting libjwt check the MAC again took two) */
		if (!hs256_ok(ctx, token)) {
			*reason = "bad token signature";
			goto out;
		}
	} else if ((alg == JWT_ALG_RS256 || alg == JWT_ALG_ES256) && ctx->jwt_pubkey) {
		jwt_free(j);
		j = NULL;
		if (jwt_decode(&j, token, ctx->jwt_pubkey, (int)ctx->jwt_pubkey_len) != 0 ||
		    jwt_get_alg(j) != alg) {
			*reason = "bad token signature";
			goto out;
		}
	} else {
		*reason = "token algorithm not accepted";
		goto out;
	}

	/* 3. the claims */
	*reason = check_claims(ctx, j, user, now, exp);
	if (!*reason)
		rc = MQIM_OK;
out:
	jwt_free(j);
	return rc;
}
