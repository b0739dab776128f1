/* logins.c - `mqim-bench logins`: what one login costs the broker thread.
 *
 * Mosquitto runs the plugin's login check on its one event-loop thread, so
 * the CPU time of that check bounds the logins per second of a broker and
 * is how long delivery stalls for each login.  This measures, in this
 * process and with the same libraries and parameters the plugin uses:
 *   password, first login   one argon2id verification at the plugin's
 *                           default cost (19 MiB, 2 passes, 1 lane)
 *   password, reconnect     one HMAC-SHA256 (the remembered verification)
 *   token HS256             HMAC check + libjwt parse of a short token
 *   token RS256             libjwt signature check with a 2048-bit key
 * Each is run for about a second (argon2: at least 20 runs) and reported
 * as microseconds per login (median of 5 batches) and logins per second
 * on one core.  The network, MQTT and Mosquitto's own work per connection
 * are not included: `mqim-bench storm` measures those end to end.
 * Single-threaded; writes nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "bench.h"
#include "mqim.h"
#include "passwd.h"

#define BATCHES 5

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct job {
	const char *name;
	int (*run)(void *ctx);
	void *ctx;
	unsigned min_runs;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median over BATCHES of the time per call, each batch ~0.2 s. */
static double per_call_us(const struct job *j)
{
	double t[BATCHES];
	for (int b = 0; b < BATCHES; b++) {
		unsigned n = 0;
		double t0 = now_s(), t1;
		do {
			if (j->run(j->ctx) != 0) {
				fprintf(stderr, "mqim-bench logins: %s failed\n", j->name);
				exit(EXIT_FAIL);
			}
			n++;
			t1 = now_s();
		} while (t1 - t0 < 0.2 || n < (j->min_runs + BATCHES - 1) / BATCHES);
		t[b] = (t1 - t0) / n * 1e6;
	}
	qsort(t, BATCHES, sizeof(t[0]), cmp_double);
	return t[BATCHES / 2];
}

struct pw { char hash[MQIM_HASH_MAX]; };

static int run_argon2(void *ctx)
{
	return mqim_passwd_verify(((struct pw *)ctx)->hash, "a-user-password") == MQIM_OK ? 0 : -1;
}

static int run_hmac(void *ctx)
{
	unsigned char mac[32];
	unsigned int len = sizeof(mac);
	static const unsigned char pepper[32] = { 1, 2, 3 };
	(void)ctx;
	return HMAC(EVP_sha256(), pepper, sizeof(pepper), (const unsigned char *)"a-user-password",
		    15, mac, &len) ? 0 : -1;
}

struct tok { char *token; const unsigned char *key; int keylen; };

static int run_jwt(void *ctx)
{
	struct tok *t = ctx;
	jwt_t *j = NULL;
	int rc = jwt_decode(&j, t->token, t->key, t->keylen);
	jwt_free(j);
	if (rc == 0 && t->keylen < 200) /* HS256: the plugin also checks the MAC itself */
		rc = run_hmac(NULL);
	return rc;
}

static char *make_token(jwt_alg_t alg, const unsigned char *key, int len)
{
	jwt_t *j = NULL;
	char *s = NULL;
	if (jwt_new(&j) == 0 && jwt_add_grant(j, "sub", "alice") == 0 &&
	    jwt_add_grant_int(j, "exp", (long)time(NULL) + 3600) == 0 &&
	    jwt_set_alg(j, alg, key, len) == 0)
		s = jwt_encode_str(j);
	jwt_free(j);
	return s;
}

/* A 2048-bit RSA key pair as PEM text (private, public). */
static int rsa_pem(char **priv, char **pub)
{
	EVP_PKEY *k = EVP_RSA_gen(2048);
	BIO *a = BIO_new(BIO_s_mem()), *b = BIO_new(BIO_s_mem());
	int rc = -1;
	if (k && a && b && PEM_write_bio_PrivateKey(a, k, NULL, NULL, 0, NULL, NULL) &&
	    PEM_write_bio_PUBKEY(b, k)) {
		char *p;
		long n = BIO_get_mem_data(a, &p);
		*priv = strndup(p, (size_t)n);
		n = BIO_get_mem_data(b, &p);
		*pub = strndup(p, (size_t)n);
		rc = *priv && *pub ? 0 : -1;
	}
	BIO_free(a);
	BIO_free(b);
	EVP_PKEY_free(k);
	return rc;
}

int cmd_logins(int argc, char **argv)
{
	static const char secret[] = "a-shared-secret-between-app-server-and-chat";
	struct pw pw;
	char *priv = NULL, *pub = NULL;
	(void)argc;
	(void)argv;

	if (mqim_passwd_hash(NULL, "a-user-password", pw.hash, sizeof(pw.hash)) != MQIM_OK ||
	    rsa_pem(&priv, &pub) != 0) {
		fprintf(stderr, "mqim-bench logins: cannot prepare the hash or the RSA key\n");
		return EXIT_FAIL;
	}
	struct tok hs = { make_token(JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)),
			  (const unsigned char *)secret, (int)strlen(secret) };
	struct tok rs = { make_token(JWT_ALG_RS256, (const unsigned char *)priv, (int)strlen(priv)),
			  (const unsigned char *)pub, (int)strlen(pub) };
	if (!hs.token || !rs.token) {
		fprintf(stderr, "mqim-bench logins: cannot make the tokens\n");
		return EXIT_FAIL;
	}
	const struct job jobs[] = {
		{ "password, first login (argon2id 19 MiB, t=2)", run_argon2, &pw, 20 },
		{ "password, reconnect (remembered: HMAC-SHA256)", run_hmac, NULL, 1000 },
		{ "token HS256 (MAC check + libjwt parse)", run_jwt, &hs, 1000 },
		{ "token RS256 (libjwt, 2048-bit key)", run_jwt, &rs, 100 },
	};
	printf("| login | broker-thread CPU per login | logins/s on one core |\n");
	printf("| --- | --- | --- |\n");
	for (size_t i = 0; i < sizeof(jobs) / sizeof(jobs[0]); i++) {
		double us = per_call_us(&jobs[i]);
		printf("| %s | %.1f µs | %.0f |\n", jobs[i].name, us, 1e6 / us);
	}
	free(hs.token);
	free(rs.token);
	free(priv);
	free(pub);
	return EXIT_OK;
}
