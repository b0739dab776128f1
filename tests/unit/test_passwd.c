/* test_passwd.c - unit tests for common/passwd.c: argon2id hashing and
 * verification, and the foreign formats we verify.
 *
 * Reference vectors: the argon2 ones are the published test vectors of the
 * reference implementation ("password" / "somesalt"); the $7$ and $6$ ones
 * were computed independently with Python's hashlib (pbkdf2_hmac('sha512')
 * and sha512(password + salt)) and with Debian's mosquitto_passwd 2.0.11.
 * argon2 costs are kept tiny so the suite stays fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mqim.h"
#include "passwd.h"

static const struct mqim_passwd_params fast = { 1, 64, 1 };

/* python3: pbkdf2_hmac('sha512', b"s3cret pass", bytes(range(1, 13)), 101, 64) */
static const char pbkdf2_vec[] =
	"$7$101$AQIDBAUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr89dDHW"
	"D70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw==";
/* python3: pbkdf2_hmac('sha512', "pässwörd".encode(), b"\xff" * 12, 1000, 64) */
static const char pbkdf2_vec_utf8[] =
	"$7$1000$////////////////$clQgT1kUme3DfrgyI6ekt34C51P0iY7GhepC/upi+RwsFvYANhqyL"
	"EbN5cbp6UzpKIujS8+2sb6ACTr5L+vDXA==";
/* python3: sha512(b"s3cret pass" + b"mqim-salt-12") */
static const char sha512_vec[] =
	"$6$bXFpbS1zYWx0LTEy$TBIkA1SJuUXyAja6TD+Bq3NGetxmjTzKWd50jAMDFYLvL9yK543g6acRxu"
	"HBn6v9onr/eryiTHWpJI8YqWZiBQ==";
/* mosquitto_passwd -b (default, $7$): alice / "s3cret pass" */
static const char mosq_pbkdf2[] =
	"$7$101$ZHdCjQdW5aR0QiaT$FpmWGDxv6pyaHKW9xt0SAAs8MeW1m6Y+FVvzEhb8jsma+Gq1+wy6T4"
	"6xOlBYo/RgoT32mBSS49WRizicWqEjGQ==";
/* mosquitto_passwd -H sha512 -b: bob / "hunter2" */
static const char mosq_sha512[] =
	"$6$Fgn5espTfkMxO7SX$XvjP/2LFAUnWSKdtO1N4MxvwkATftKMAGCDa/3MX6wGiumMpO/GTHfNuVW"
	"gJVNoN5yP/+8jn2DF6iJBN+6V47A==";
/* argon2 reference test vectors: "password", salt "somesalt", m=256 t=2 p=1 */
static const char argon2i_vec[] =
	"$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8";
static const char argon2i_v10_vec[] =
	"$argon2i$m=256,t=2,p=1$c29tZXNhbHQ$/U3YPXYsSb3q9XxHvc0MLxur+GP960kN9j7emXX8zwY";
static const char argon2id_vec[] =
	"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";

static void hash_and_verify(void **state)
{
	char h[MQIM_HASH_MAX];

	assert_int_equal(mqim_passwd_hash(&fast, "correct horse", h, sizeof(h)), MQIM_OK);
	assert_true(strncmp(h, "$argon2id$v=19$m=64,t=1,p=1$", 28) == 0);
	assert_true(mqim_passwd_format_supported(h));
	assert_int_equal(mqim_passwd_verify(h, "correct horse"), MQIM_OK);
}

static void wrong_password(void **state)
{
	char h[MQIM_HASH_MAX];

	assert_int_equal(mqim_passwd_hash(&fast, "correct horse", h, sizeof(h)), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(h, "correct horsf"), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(h, "correct hors"), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(h, ""), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(h, NULL), MQIM_EAUTH);
}

static void salts_differ(void **state)
{
	char a[MQIM_HASH_MAX], b[MQIM_HASH_MAX];

	assert_int_equal(mqim_passwd_hash(&fast, "same", a, sizeof(a)), MQIM_OK);
	assert_int_equal(mqim_passwd_hash(&fast, "same", b, sizeof(b)), MQIM_OK);
	assert_string_not_equal(a, b);
	assert_int_equal(mqim_passwd_verify(a, "same"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(b, "same"), MQIM_OK);
}

static void default_params(void **state)
{
	char h[MQIM_HASH_MAX];

	assert_int_equal(mqim_passwd_hash(NULL, "pw", h, sizeof(h)), MQIM_OK);
	assert_true(strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0);
	assert_int_equal(mqim_passwd_verify(h, "pw"), MQIM_OK);
}

static void hash_refusals(void **state)
{
	char h[MQIM_HASH_MAX];
	char big[MQIM_PASSWORD_MAX + 2];
	const struct mqim_passwd_params bad = { 1, 4, 1 };   /* m below 8 KiB */

	assert_int_equal(mqim_passwd_hash(&fast, "", h, sizeof(h)), MQIM_EINVAL);
	assert_int_equal(mqim_passwd_hash(&fast, NULL, h, sizeof(h)), MQIM_EINVAL);
	assert_int_equal(mqim_passwd_hash(&fast, "pw", NULL, 0), MQIM_EINVAL);
	assert_int_equal(mqim_passwd_hash(&fast, "pw", h, 20), MQIM_EINVAL);
	assert_int_equal(mqim_passwd_hash(&bad, "pw", h, sizeof(h)), MQIM_EINVAL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(mqim_passwd_hash(&fast, big, h, sizeof(h)), MQIM_EINVAL);
	big[MQIM_PASSWORD_MAX] = '\0';                       /* exactly the limit */
	assert_int_equal(mqim_passwd_hash(&fast, big, h, sizeof(h)), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(h, big), MQIM_OK);
}

static void utf8_password(void **state)
{
	char h[MQIM_HASH_MAX];

	assert_int_equal(mqim_passwd_hash(&fast, "pässwörd ✓", h, sizeof(h)), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(h, "pässwörd ✓"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(h, "passwörd ✓"), MQIM_EAUTH);
}

static void pbkdf2_vectors(void **state)
{
	assert_true(mqim_passwd_format_supported(pbkdf2_vec));
	assert_int_equal(mqim_passwd_verify(pbkdf2_vec, "s3cret pass"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(pbkdf2_vec, "s3cret pasS"), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(pbkdf2_vec_utf8, "pässwörd"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(pbkdf2_vec_utf8, "passwörd"), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(mosq_pbkdf2, "s3cret pass"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(mosq_pbkdf2, "s3cret"), MQIM_EAUTH);
}

static void sha512_vectors(void **state)
{
	assert_true(mqim_passwd_format_supported(sha512_vec));
	assert_int_equal(mqim_passwd_verify(sha512_vec, "s3cret pass"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(sha512_vec, "s3cret pas"), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(mosq_sha512, "hunter2"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(mosq_sha512, "hunter3"), MQIM_EAUTH);
}

static void argon2_vectors(void **state)
{
	assert_int_equal(mqim_passwd_verify(argon2i_vec, "password"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(argon2i_vec, "passwore"), MQIM_EAUTH);
	assert_int_equal(mqim_passwd_verify(argon2i_v10_vec, "password"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(argon2id_vec, "password"), MQIM_OK);
	assert_int_equal(mqim_passwd_verify(argon2id_vec, "Password"), MQIM_EAUTH);
}

static void unknown_formats(void **state)
{
	static const char *const bad[] = {
		"", "plain", "$1$abc$def", "$5$rounds=5000$salt$hash",
		"$2b$10$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
		"$argon2d$v=19$m=256,t=2,p=1$c29tZXNhbHQ$iekCn0Y3spW+sCcFanM2xBT63UP2sghkUoHLIUpWRS8",
		"$7$", "$7$101$", "$7$0$AQIDBAUGBwgJCgsM$AAAA", "$7$x$AQIDBAUGBwgJCgsM$AAAA",
		"$7$101$AQIDBAUGBwgJCgsM",                       /* no hash */
		"$7$101$AQIDBAUGBwgJCgsM$c2hvcnQ=",              /* hash not 64 bytes */
		"$7$101$AQID*AUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr89dDHW"
		"D70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw==",            /* bad base64 */
		"$7$99999999$AQIDBAUGBwgJCgsM$STSCmE+fzbvU6dsOSP/YYMWBLb6TpCPpOg2l6B/cibzXpYwr8"
		"9dDHWD70LZ6MP80Yb+qgVcLdO6pKMCAw7FYKw==",       /* absurd iteration count */
		"$6$$TBIkA1SJuUXyAja6TD+Bq3NGetxmjTzKWd50jAMDFYLvL9yK543g6acRxuHBn6v9onr/eryiT"
		"HWpJI8YqWZiBQ==",                               /* empty salt */
		"$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ",      /* no hash */
		"$argon2id$v=18$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$m=99999999,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
		"$argon2id$v=19$t=2,m=256,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mqim_passwd_format_supported(bad[i]))
			fail_msg("format accepted: %s", bad[i]);
		assert_int_equal(mqim_passwd_verify(bad[i], "password"), MQIM_EUNSUPPORTED);
	}
	assert_false(mqim_passwd_format_supported(NULL));
	assert_int_equal(mqim_passwd_verify(NULL, "password"), MQIM_EUNSUPPORTED);
}

static void mosquitto_padding_optional(void **state)
{
	/* The same $7$ hash without its '=' padding still verifies. */
	char h[sizeof(pbkdf2_vec)];

	strcpy(h, pbkdf2_vec);
	h[strlen(h) - 2] = '\0';
	assert_true(mqim_passwd_format_supported(h));
	assert_int_equal(mqim_passwd_verify(h, "s3cret pass"), MQIM_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hash_and_verify),
		cmocka_unit_test(wrong_password),
		cmocka_unit_test(salts_differ),
		cmocka_unit_test(default_params),
		cmocka_unit_test(hash_refusals),
		cmocka_unit_test(utf8_password),
		cmocka_unit_test(pbkdf2_vectors),
		cmocka_unit_test(sha512_vectors),
		cmocka_unit_test(argon2_vectors),
		cmocka_unit_test(unknown_formats),
		cmocka_unit_test(mosquitto_padding_optional),
	};

	return cmocka_run_group_tests_name("passwd", tests, NULL, NULL);
}
