/* test_security.c - tokens, single sign-on, lockout, rate limits and
 * session ends on credential changes, against a real broker with the plugin
 * (docs/security.md).  Tokens are made here with libjwt and keys with the
 * openssl command, as an app server would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jwt.h>
#include <openssl/evp.h>

#include "tbroker.h"
#include "tclient.h"
#include "tcontrol.h"

#define SECRET "a-shared-secret-between-app-server-and-chat"

struct keys {
	char dir[300];
	char secret[400], rsa[400], rsa_pub[400], ec[400], ec_pub[400];
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	*len = fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static void make_keys(struct keys *k, const struct tbroker *b)
{
	char cmd[4096];
	snprintf(k->secret, sizeof k->secret, "%s/jwt.secret", b->dir);
	snprintf(k->rsa, sizeof k->rsa, "%s/rsa.pem", b->dir);
	snprintf(k->rsa_pub, sizeof k->rsa_pub, "%s/rsa.pub", b->dir);
	snprintf(k->ec, sizeof k->ec, "%s/ec.pem", b->dir);
	snprintf(k->ec_pub, sizeof k->ec_pub, "%s/ec.pub", b->dir);
	write_file(k->secret, SECRET "\n", 0600);
	snprintf(cmd, sizeof cmd,
		 "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s 2>/dev/null && "
		 "openssl pkey -in %s -pubout -out %s && "
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s 2>/dev/null && "
		 "openssl pkey -in %s -pubout -out %s",
		 k->rsa, k->rsa, k->rsa_pub, k->ec, k->ec, k->ec_pub);
	assert_int_equal(system(cmd), 0);
}

/* A token for sub, signed with key (alg), exp = now + ttl; extra claims as
 * JSON (may be NULL).  Returns a malloc'd string. */
static char *token(jwt_alg_t alg, const void *key, size_t keylen, const char *sub, long ttl,
		   const char *extra_json)
{
	jwt_t *j = NULL;
	assert_int_equal(jwt_new(&j), 0);
	if (sub)
		jwt_add_grant(j, "sub", sub);
	if (ttl != 0)
		jwt_add_grant_int(j, "exp", (long)time(NULL) + ttl);
	jwt_add_grant_int(j, "iat", (long)time(NULL));
	if (extra_json)
		assert_int_equal(jwt_add_grants_json(j, extra_json), 0);
	assert_int_equal(jwt_set_alg(j, alg, key, (int)keylen), 0);
	char *t = jwt_encode_str(j);
	jwt_free(j);
	assert_non_null(t);
	return t;
}

static char *b64url(const char *s)
{
	unsigned char out[512];
	int n = EVP_EncodeBlock(out, (const unsigned char *)s, (int)strlen(s));
	char *r = calloc(1, (size_t)n + 1);
	int j = 0;
	for (int i = 0; i < n && out[i] != '='; i++)
		r[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : (char)out[i];
	return r;
}

static int connect_as(const struct tbroker *b, const char *cid, const char *user, const char *pass)
{
	struct tclient *c = tclient_new(b->port, cid);
	int rc = tclient_connect(c, user, pass);
	tclient_free(c);
	return rc;
}

enum keyconf { HS_ONLY = 1, RSA_ONLY = 2 };

static void start_with(struct tbroker *b, struct keys *k, int which, const char *more)
{
	assert_int_equal(tbroker_init(b, NULL), 0);
	make_keys(k, b);
	snprintf(b->extra_conf, sizeof b->extra_conf, "plugin_opt_%s %s\n%s",
		 which == HS_ONLY ? "jwt_secret_file" : "jwt_public_key_file",
		 which == HS_ONLY ? k->secret : k->rsa_pub, more ? more : "");
	assert_int_equal(tbroker_add_user(b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_add_user(b, "bob", "bob-pw", false), 0);
	assert_int_equal(tbroker_add_user(b, "admin", "admin-pw", true), 0);
	assert_int_equal(tbroker_start(b), 0);
}

static void jwt_hs256(void **state)
{
	struct tbroker b;
	struct keys k;
	/* many refusals in a row for alice: keep the lockout out of this test */
	start_with(&b, &k, HS_ONLY, "plugin_opt_lockout_failures 0\n");
	const char *s = SECRET;
	size_t sl = strlen(s);

	char *good = token(JWT_ALG_HS256, s, sl, "alice", 300, NULL);
	assert_int_equal(connect_as(&b, "alice/t", "alice", good), 0);
	/* passwords still work beside tokens */
	assert_int_equal(connect_as(&b, "alice/p", "alice", "alice-pw"), 0);

	struct { const char *what; char *tok; } bad[] = {
		{ "expired", token(JWT_ALG_HS256, s, sl, "alice", -10, NULL) },
		{ "no exp", token(JWT_ALG_HS256, s, sl, "alice", 0, NULL) },
		{ "not yet valid", token(JWT_ALG_HS256, s, sl, "alice", 300, "{\"nbf\": 4102444800}") },
		{ "wrong audience", token(JWT_ALG_HS256, s, sl, "alice", 300, "{\"aud\": \"other\"}") },
		{ "wrong secret", token(JWT_ALG_HS256, "another-secret", 14, "alice", 300, NULL) },
		{ "sub mismatch", token(JWT_ALG_HS256, s, sl, "bob", 300, NULL) },
		{ "no sub", token(JWT_ALG_HS256, s, sl, NULL, 300, NULL) },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = connect_as(&b, "alice/t", "alice", bad[i].tok);
		if (rc != 0x87)
			fail_msg("%s token: CONNACK %d, want 0x87", bad[i].what, rc);
		free(bad[i].tok);
	}
	/* the signed bytes must be exactly what is parsed: a valid token with
	 * its payload swapped for bob's, or with a fourth part, is refused */
	char *bobs = token(JWT_ALG_HS256, s, sl, "bob", 300, NULL);
	char swapped[2048], four[2048];
	const char *gd = strchr(good, '.'), *bd = strchr(bobs, '.');
	snprintf(swapped, sizeof swapped, "%.*s%.*s%s", (int)(gd - good), good,
		 (int)(strrchr(bobs, '.') - bd), bd, strrchr(good, '.'));
	snprintf(four, sizeof four, "%s.%s", good, strrchr(good, '.') + 1);
	assert_int_equal(connect_as(&b, "bob/t", "bob", swapped), 0x87);
	assert_int_equal(connect_as(&b, "alice/t", "alice", four), 0x87);
	free(bobs);
	/* audience given as the right one, in an array */
	char *aud = token(JWT_ALG_HS256, s, sl, "alice", 300, "{\"aud\": [\"x\", \"mqim\"]}");
	assert_int_equal(connect_as(&b, "alice/t", "alice", aud), 0);

	/* alg none: header {"alg":"none"}, empty signature */
	char payload[256];
	snprintf(payload, sizeof payload, "{\"sub\":\"alice\",\"exp\":%ld}", (long)time(NULL) + 300);
	char *h = b64url("{\"alg\":\"none\",\"typ\":\"JWT\"}"), *p = b64url(payload);
	char none[1024];
	snprintf(none, sizeof none, "%s.%s.", h, p);
	assert_int_equal(connect_as(&b, "alice/t", "alice", none), 0x87);
	assert_true(tbroker_log_wait(&b, "token algorithm not accepted", 2000));
	assert_true(tbroker_log_wait(&b, "token expired", 100));
	assert_true(tbroker_log_wait(&b, "bad token signature", 100));
	/* a token is never written to the log */
	assert_int_equal(tbroker_log_count(&b, good), 0);
	free(h); free(p); free(good); free(aud);
	tbroker_cleanup(&b);
}

static void jwt_public_keys_and_confusion(void **state)
{
	struct tbroker b;
	struct keys k;
	start_with(&b, &k, RSA_ONLY, NULL);
	size_t rl, rpl, el;
	char *rsa = slurp(k.rsa, &rl), *rsa_pub = slurp(k.rsa_pub, &rpl), *ec = slurp(k.ec, &el);

	char *rs = token(JWT_ALG_RS256, rsa, rl, "alice", 300, NULL);
	assert_int_equal(connect_as(&b, "alice/r", "alice", rs), 0);
	/* HS/RS confusion: an HS256 token whose secret is the public key */
	char *confused = token(JWT_ALG_HS256, rsa_pub, rpl, "alice", 300, NULL);
	assert_int_equal(connect_as(&b, "alice/r", "alice", confused), 0x87);
	/* ES256 made with a key that is not the configured one */
	char *es = token(JWT_ALG_ES256, ec, el, "alice", 300, NULL);
	assert_int_equal(connect_as(&b, "alice/r", "alice", es), 0x87);
	free(rs); free(confused); free(es);
	tbroker_cleanup(&b);

	/* ES256 with its own public key configured */
	start_with(&b, &k, RSA_ONLY, NULL);
	free(ec);
	ec = slurp(k.ec, &el);
	tbroker_stop(&b);
	snprintf(b.extra_conf, sizeof b.extra_conf, "plugin_opt_jwt_public_key_file %s\n", k.ec_pub);
	assert_int_equal(tbroker_start(&b), 0);
	es = token(JWT_ALG_ES256, ec, el, "alice", 300, NULL);
	assert_int_equal(connect_as(&b, "alice/e", "alice", es), 0);
	free(es); free(rsa); free(rsa_pub); free(ec);
	tbroker_cleanup(&b);
}

static void jwt_secret_file_must_be_private(void **state)
{
	struct tbroker b;
	struct keys k;
	assert_int_equal(tbroker_init(&b, NULL), 0);
	make_keys(&k, &b);
	chmod(k.secret, 0644);
	snprintf(b.extra_conf, sizeof b.extra_conf, "plugin_opt_jwt_secret_file %s\n", k.secret);
	assert_int_not_equal(tbroker_start(&b), 0);
	assert_true(tbroker_log_wait(&b, "readable by group or others", 100));
	tbroker_cleanup(&b);
}

static void jwt_expiry_disconnects_and_auto_create(void **state)
{
	struct tbroker b;
	struct keys k;
	start_with(&b, &k, HS_ONLY, "plugin_opt_jwt_auto_create true\n");
	char *t = token(JWT_ALG_HS256, SECRET, strlen(SECRET), "alice", 2, NULL);
	struct tclient *c = tclient_new(b.port, "alice/x");
	assert_int_equal(tclient_connect(c, "alice", t), 0);
	assert_true(tclient_is_connected(c));
	assert_true(tclient_wait_disconnected(c, 5000));
	assert_true(tbroker_log_wait(&b, "login token expired", 1000));
	tclient_free(c);
	free(t);
	/* an unknown user with a good token is created */
	t = token(JWT_ALG_HS256, SECRET, strlen(SECRET), "carol", 300, NULL);
	assert_int_equal(connect_as(&b, "carol", "carol", t), 0);
	assert_true(tbroker_log_wait(&b, "created user=carol", 1000));
	/* ... and can log in with tokens only, never with a password */
	assert_int_equal(connect_as(&b, "carol", "carol", "!token-only"), 0x87);
	free(t);
	tbroker_cleanup(&b);
}

static void single_session_kicks_oldest(void **state)
{
	struct tbroker b;
	assert_int_equal(tbroker_init(&b, "plugin_opt_max_sessions_per_user 1\n"), 0);
	assert_int_equal(tbroker_add_user(&b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_start(&b), 0);
	struct tclient *phone = tclient_login(b.port, "alice/phone", "alice", "alice-pw");
	assert_non_null(phone);
	struct tclient *laptop = tclient_login(b.port, "alice/laptop", "alice", "alice-pw");
	assert_non_null(laptop);
	assert_true(tclient_wait_disconnected(phone, 3000));
	/* Mosquitto 2.0 kicks with 0x98 Administrative action */
	assert_int_equal(tclient_server_disconnect_reason(phone), 0x98);
	assert_true(tclient_is_connected(laptop));
	assert_true(tbroker_log_wait(&b, "logged in elsewhere", 1000));
	tclient_free(phone);
	tclient_free(laptop);
	tbroker_cleanup(&b);
}

static void lockout_and_its_expiry(void **state)
{
	struct tbroker b;
	assert_int_equal(tbroker_init(&b, "plugin_opt_lockout_base 2\nplugin_opt_lockout_max 4\n"), 0);
	assert_int_equal(tbroker_add_user(&b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_add_user(&b, "bob", "bob-pw", false), 0);
	assert_int_equal(tbroker_start(&b), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(connect_as(&b, "alice", "alice", "wrong"), 0x87);
	/* locked: the right password is refused the same way, without hashing */
	assert_int_equal(connect_as(&b, "alice", "alice", "alice-pw"), 0x87);
	assert_true(tbroker_log_wait(&b, "locked out after repeated failed logins", 1000));
	/* other users are not affected (address lockout is off here) */
	assert_int_equal(connect_as(&b, "bob", "bob", "bob-pw"), 0);
	sleep(3);
	assert_int_equal(connect_as(&b, "alice", "alice", "alice-pw"), 0);
	/* the success reset the count: one failure does not lock again */
	assert_int_equal(connect_as(&b, "alice", "alice", "wrong"), 0x87);
	assert_int_equal(connect_as(&b, "alice", "alice", "alice-pw"), 0);
	tbroker_cleanup(&b);

	/* by address: failures for many names from one address */
	assert_int_equal(tbroker_init(&b, "plugin_opt_lockout_by_address true\n"), 0);
	assert_int_equal(tbroker_add_user(&b, "bob", "bob-pw", false), 0);
	assert_int_equal(tbroker_start(&b), 0);
	char name[16];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof name, "nobody%d", i);
		assert_int_equal(connect_as(&b, name, name, "x"), 0x87);
	}
	assert_int_equal(connect_as(&b, "bob", "bob", "bob-pw"), 0x87);
	assert_true(tbroker_log_wait(&b, "locking out address 127.0.0.1", 1000));
	tbroker_cleanup(&b);
}

static void rate_limit_per_user(void **state)
{
	struct tbroker b;
	assert_int_equal(tbroker_init(&b, "plugin_opt_rate_per_user 5\nplugin_opt_rate_burst 5\n"), 0);
	assert_int_equal(tbroker_add_user(&b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_add_user(&b, "bob", "bob-pw", false), 0);
	assert_int_equal(tbroker_start(&b), 0);
	struct tclient *a = tclient_login(b.port, "alice", "alice", "alice-pw");
	struct tclient *bob = tclient_login(b.port, "bob", "bob", "bob-pw");
	assert_int_equal(tclient_subscribe(bob, "im/u/bob", 1), 1);
	int ok = 0, refused = 0;
	for (int i = 0; i < 30; i++) {
		int rc = tclient_send_env(a, "im/u/bob", "msg", "alice", "bob", "hi", 1, NULL);
		if (rc == 0)
			ok++;
		else if (rc == 0x87)
			refused++;
	}
	/* 30 sends in well under a second: the burst of 5 and maybe a refill */
	assert_in_range(ok, 5, 10);
	assert_int_equal(ok + refused, 30);
	assert_int_equal(tclient_drain(bob, 500), ok);
	/* logged once per second, not once per refusal */
	assert_in_range(tbroker_log_count(&b, "over the rate limit"), 1, 3);
	sleep(1);
	assert_int_equal(tclient_send_env(a, "im/u/bob", "msg", "alice", "bob", "again", 1, NULL), 0);
	tclient_free(a);
	tclient_free(bob);
	tbroker_cleanup(&b);
}

static void credential_changes_end_sessions(void **state)
{
	struct tbroker b;
	assert_int_equal(tbroker_init(&b, NULL), 0);
	assert_int_equal(tbroker_add_user(&b, "alice", "alice-pw", false), 0);
	assert_int_equal(tbroker_add_user(&b, "admin", "admin-pw", true), 0);
	assert_int_equal(tbroker_start(&b), 0);
	struct tclient *adm = tclient_login(b.port, "admin", "admin", "admin-pw");
	assert_int_equal(tcontrol_prepare(adm), 1);

	struct tclient *a = tclient_login(b.port, "alice/1", "alice", "alice-pw");
	assert_int_equal(tcontrol_ok(adm, "{\"command\":\"setUserPassword\",\"username\":\"alice\",\"password\":\"new-pw\"}"), 0);
	assert_true(tclient_wait_disconnected(a, 3000));
	tclient_free(a);
	assert_int_equal(connect_as(&b, "alice/1", "alice", "alice-pw"), 0x87);

	a = tclient_login(b.port, "alice/2", "alice", "new-pw");
	assert_non_null(a);
	assert_int_equal(tcontrol_ok(adm, "{\"command\":\"disableUser\",\"username\":\"alice\"}"), 0);
	assert_true(tclient_wait_disconnected(a, 3000));
	tclient_free(a);
	assert_int_equal(tcontrol_ok(adm, "{\"command\":\"enableUser\",\"username\":\"alice\"}"), 0);

	a = tclient_login(b.port, "alice/3", "alice", "new-pw");
	assert_non_null(a);
	assert_int_equal(tcontrol_ok(adm, "{\"command\":\"deleteUser\",\"username\":\"alice\"}"), 0);
	assert_true(tclient_wait_disconnected(a, 3000));
	tclient_free(a);
	assert_int_equal(connect_as(&b, "alice/3", "alice", "new-pw"), 0x87);
	tclient_free(adm);
	tbroker_cleanup(&b);
}

static void store_file_is_private(void **state)
{
	struct tbroker b;
	struct stat st;
	assert_int_equal(tbroker_init(&b, NULL), 0);
	unlink(b.db_path); /* let the plugin create it */
	assert_int_equal(tbroker_start(&b), 0);
	assert_int_equal(stat(b.db_path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	tbroker_cleanup(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(jwt_hs256),
		cmocka_unit_test(jwt_public_keys_and_confusion),
		cmocka_unit_test(jwt_secret_file_must_be_private),
		cmocka_unit_test(jwt_expiry_disconnects_and_auto_create),
		cmocka_unit_test(single_session_kicks_oldest),
		cmocka_unit_test(lockout_and_its_expiry),
		cmocka_unit_test(rate_limit_per_user),
		cmocka_unit_test(credential_changes_end_sessions),
		cmocka_unit_test(store_file_is_private),
	};
	return cmocka_run_group_tests_name("security", tests, NULL, NULL);
}
