/* test_names_topics.c - unit tests for common/names.c and common/topics.c.
 *
 * The Names, Sessions and Topics sections of docs/protocol.md as tables:
 * which user ids, client ids, topic names and subscription filters are
 * accepted, and what they are classified as.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "names.h"
#include "topics.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define N64 "a123456789b123456789c123456789d123456789e123456789f123456789g123"
#define N65 N64 "4"

/* ---- names ------------------------------------------------------------- */

static const struct {
	const char *name;
	bool valid;
} name_cases[] = {
	{ "alice", true }, { "Bob", true }, { "a", true }, { "7", true },
	{ "a.b-c_d", true }, { "Z9", true }, { "alice.", true }, { "a--", true },
	{ N64, true },
	{ N65, false }, { "", false }, { "/", false }, { "a/b", false },
	{ "alice/", false }, { "+", false }, { "a+", false }, { "#", false },
	{ "a#", false }, { "$", false }, { "$SYS", false }, { "%", false },
	{ "a%2F", false }, { " ", false }, { "a b", false }, { " alice", false },
	{ "alice ", false }, { ".alice", false }, { "_alice", false },
	{ "-alice", false }, { "j\xc3\xa9r\xc3\xb4me", false }, { "\xc3\xa9", false },
	{ "a\xff", false }, { "a\tb", false }, { "a\nb", false }, { "a:b", false },
	{ "a@b", false }, { "a*b", false }, { "a\\b", false },
};

static void test_name_valid(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(name_cases); i++) {
		const char *s = name_cases[i].name;
		if (mqim_name_valid(s) != name_cases[i].valid)
			fail_msg("mqim_name_valid(\"%s\") != %d", s, name_cases[i].valid);
		if (mqim_name_valid_n(s, strlen(s)) != name_cases[i].valid)
			fail_msg("mqim_name_valid_n(\"%s\") != %d", s, name_cases[i].valid);
	}
}

static void test_name_valid_edges(void **state)
{
	char longname[300];

	assert_false(mqim_name_valid(NULL));
	assert_false(mqim_name_valid_n(NULL, 3));
	assert_false(mqim_name_valid_n("alice", 0));
	/* only the len bytes count */
	assert_true(mqim_name_valid_n("alice/phone", 5));
	assert_false(mqim_name_valid_n("alice/phone", 6));
	assert_true(mqim_name_valid_n(N65, 64));
	assert_false(mqim_name_valid_n(N65, 65));
	/* an embedded NUL is not a name character */
	assert_false(mqim_name_valid_n("ab\0c", 4));
	/* far over the limit: refused, and not read past 65 characters' need */
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(mqim_name_valid(longname));
}

/* ---- client ids -------------------------------------------------------- */

static const struct {
	const char *client_id;
	const char *user;
	bool allowed;
} clientid_cases[] = {
	{ "alice", "alice", true },
	{ "alice/phone", "alice", true },
	{ "alice/phone-1", "alice", true },
	{ "alice/x", "alice", true },
	{ "alice/phone/2", "alice", true },
	{ "alice/", "alice", false },
	{ "alicex", "alice", false },
	{ "alice-phone", "alice", false },
	{ "alic", "alice", false },
	{ "bob", "alice", false },
	{ "bob/phone", "alice", false },
	{ "ALICE", "alice", false },
	{ "", "alice", false },
	{ "/alice", "alice", false },
	{ "x/alice", "alice", false },
	{ "al", "al", true },
	{ "alice", "al", false },
};

static void test_clientid_allowed(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(clientid_cases); i++) {
		if (mqim_clientid_allowed(clientid_cases[i].client_id, clientid_cases[i].user) !=
		    clientid_cases[i].allowed)
			fail_msg("client id \"%s\" for user \"%s\" should be %s",
				 clientid_cases[i].client_id, clientid_cases[i].user,
				 clientid_cases[i].allowed ? "allowed" : "refused");
	}
	assert_false(mqim_clientid_allowed(NULL, "alice"));
	assert_false(mqim_clientid_allowed("alice", NULL));
}

/* ---- topics and filters ------------------------------------------------ */

struct tcase {
	const char *s;
	enum mqim_topic_kind kind;
	const char *name;   /* expected name, NULL for none */
	bool shared, wildcard;
};

static const struct tcase topic_cases[] = {
	/* the table's rows */
	{ "im/u/alice", MQIM_TOPIC_INBOX, "alice", false, false },
	{ "im/g/team-1", MQIM_TOPIC_GROUP, "team-1", false, false },
	{ "im/p/bob", MQIM_TOPIC_PRESENCE, "bob", false, false },
	{ "$CONTROL/mqim/v1", MQIM_TOPIC_CONTROL, NULL, false, false },
	{ "$CONTROL/mqim/v1/response", MQIM_TOPIC_CONTROL_RESP, NULL, false, false },
	{ "$SYS", MQIM_TOPIC_SYS, NULL, false, false },
	{ "$SYS/broker/uptime", MQIM_TOPIC_SYS, NULL, false, false },
	{ "im/u/" N64, MQIM_TOPIC_INBOX, N64, false, false },
	/* anything else */
	{ "im/u/" N65, MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im", MQIM_TOPIC_NONE, NULL, false, false },
	{ "i", MQIM_TOPIC_NONE, NULL, false, false },
	{ "", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/bob/x", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/bob/", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/.bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/b%b", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/b b", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/x/bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/uu/bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im//bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "IM/u/bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "/im/u/bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/g/", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/p/a/b", MQIM_TOPIC_NONE, NULL, false, false },
	{ "chat/room", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$CONTROL/mqim/v1/", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$CONTROL/mqim/v2", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$CONTROL/mqim/v1/responses", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$CONTROL/dynamic-security/v1", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$SYSX", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$sys/broker", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$share/x/im/u/bob", MQIM_TOPIC_NONE, NULL, false, false },
};

static const struct tcase filter_cases[] = {
	/* exact topics are allowed as filters */
	{ "im/u/bob", MQIM_TOPIC_INBOX, "bob", false, false },
	{ "im/g/team", MQIM_TOPIC_GROUP, "team", false, false },
	{ "im/p/alice", MQIM_TOPIC_PRESENCE, "alice", false, false },
	{ "$CONTROL/mqim/v1", MQIM_TOPIC_CONTROL, NULL, false, false },
	{ "$CONTROL/mqim/v1/response", MQIM_TOPIC_CONTROL_RESP, NULL, false, false },
	/* wildcards never reach an im/ topic */
	{ "im/u/+", MQIM_TOPIC_NONE, NULL, false, true },
	{ "im/#", MQIM_TOPIC_NONE, NULL, false, true },
	{ "#", MQIM_TOPIC_NONE, NULL, false, true },
	{ "+", MQIM_TOPIC_NONE, NULL, false, true },
	{ "+/u/bob", MQIM_TOPIC_NONE, NULL, false, true },
	{ "im/+/bob", MQIM_TOPIC_NONE, NULL, false, true },
	{ "im/u/bob/#", MQIM_TOPIC_NONE, NULL, false, true },
	{ "im/g/+", MQIM_TOPIC_NONE, NULL, false, true },
	{ "$CONTROL/#", MQIM_TOPIC_NONE, NULL, false, true },
	{ "$CONTROL/mqim/+", MQIM_TOPIC_NONE, NULL, false, true },
	/* shared subscriptions are unwrapped */
	{ "$share/x/im/u/bob", MQIM_TOPIC_INBOX, "bob", true, false },
	{ "$share/workers/im/g/team", MQIM_TOPIC_GROUP, "team", true, false },
	{ "$share/x/im/u/+", MQIM_TOPIC_NONE, NULL, true, true },
	{ "$share/x/#", MQIM_TOPIC_NONE, NULL, true, true },
	{ "$share//im/u/bob", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$share/x", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$share/x/", MQIM_TOPIC_NONE, NULL, true, false },
	{ "$share/", MQIM_TOPIC_NONE, NULL, false, false },
	{ "$share/x/$share/y/im/u/bob", MQIM_TOPIC_NONE, NULL, true, false },
	{ "$SHARE/x/im/u/bob", MQIM_TOPIC_NONE, NULL, false, false },
	/* $SYS, wildcards allowed (admins only, decided by the caller) */
	{ "$SYS/#", MQIM_TOPIC_SYS, NULL, false, true },
	{ "$SYS/broker/log/#", MQIM_TOPIC_SYS, NULL, false, true },
	{ "$SYS/broker/+/count", MQIM_TOPIC_SYS, NULL, false, true },
	{ "$SYS/broker/uptime", MQIM_TOPIC_SYS, NULL, false, false },
	{ "$SYS", MQIM_TOPIC_SYS, NULL, false, false },
	{ "$SYSX/#", MQIM_TOPIC_NONE, NULL, false, true },
	/* the rest */
	{ "", MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/" N65, MQIM_TOPIC_NONE, NULL, false, false },
	{ "im/u/bob/x", MQIM_TOPIC_NONE, NULL, false, false },
	{ "foo/bar", MQIM_TOPIC_NONE, NULL, false, false },
};

static void check_case(const struct tcase *c, bool filter)
{
	struct mqim_topic t;
	enum mqim_topic_kind k;

	memset(&t, 0xa5, sizeof(t));
	k = filter ? mqim_filter_classify(c->s, &t) : mqim_topic_classify(c->s, &t);
	if (k != c->kind || t.kind != c->kind)
		fail_msg("%s \"%s\": kind %s, want %s", filter ? "filter" : "topic", c->s,
			 mqim_topic_kind_name(k), mqim_topic_kind_name(c->kind));
	if (t.shared != c->shared || t.wildcard != c->wildcard)
		fail_msg("\"%s\": shared %d wildcard %d, want %d %d", c->s, t.shared,
			 t.wildcard, c->shared, c->wildcard);
	if (!c->name) {
		assert_null(t.name);
		assert_int_equal(t.name_len, 0);
		return;
	}
	assert_int_equal(t.name_len, strlen(c->name));
	assert_memory_equal(t.name, c->name, t.name_len);
	/* the name is borrowed from the caller's string */
	assert_true(t.name >= c->s && t.name + t.name_len <= c->s + strlen(c->s));
	/* without an out parameter the kind is the same */
	k = filter ? mqim_filter_classify(c->s, NULL) : mqim_topic_classify(c->s, NULL);
	assert_int_equal(k, c->kind);
}

static void test_topic_classify(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(topic_cases); i++)
		check_case(&topic_cases[i], false);
}

static void test_filter_classify(void **state)
{
	for (size_t i = 0; i < ARRAY_LEN(filter_cases); i++)
		check_case(&filter_cases[i], true);
}

static void test_classify_null(void **state)
{
	struct mqim_topic t;

	assert_int_equal(mqim_topic_classify(NULL, &t), MQIM_TOPIC_NONE);
	assert_int_equal(t.kind, MQIM_TOPIC_NONE);
	assert_null(t.name);
	assert_int_equal(mqim_filter_classify(NULL, &t), MQIM_TOPIC_NONE);
	assert_int_equal(t.kind, MQIM_TOPIC_NONE);
	assert_int_equal(mqim_topic_classify(NULL, NULL), MQIM_TOPIC_NONE);
}

/* The prefixes in topics.h build the topics the classifier accepts. */
static void test_topic_macros(void **state)
{
	assert_int_equal(mqim_topic_classify(MQIM_INBOX_PREFIX "bob", NULL), MQIM_TOPIC_INBOX);
	assert_int_equal(mqim_topic_classify(MQIM_GROUP_PREFIX "g1", NULL), MQIM_TOPIC_GROUP);
	assert_int_equal(mqim_topic_classify(MQIM_PRESENCE_PREFIX "bob", NULL), MQIM_TOPIC_PRESENCE);
	assert_int_equal(mqim_topic_classify(MQIM_CONTROL_TOPIC, NULL), MQIM_TOPIC_CONTROL);
	assert_int_equal(mqim_topic_classify(MQIM_CONTROL_RESP_TOPIC, NULL),
			 MQIM_TOPIC_CONTROL_RESP);
}

static void test_kind_names(void **state)
{
	static const enum mqim_topic_kind kinds[] = {
		MQIM_TOPIC_NONE, MQIM_TOPIC_INBOX, MQIM_TOPIC_GROUP, MQIM_TOPIC_PRESENCE,
		MQIM_TOPIC_CONTROL, MQIM_TOPIC_CONTROL_RESP, MQIM_TOPIC_SYS,
	};

	for (size_t i = 0; i < ARRAY_LEN(kinds); i++) {
		const char *n = mqim_topic_kind_name(kinds[i]);
		assert_non_null(n);
		assert_string_not_equal(n, "?");
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(n, mqim_topic_kind_name(kinds[j]));
	}
	assert_string_equal(mqim_topic_kind_name((enum mqim_topic_kind)99), "?");
	assert_string_equal(mqim_topic_kind_name((enum mqim_topic_kind)-1), "?");
}

int main(void)
{
	static const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_name_valid_edges),
		cmocka_unit_test(test_clientid_allowed),
		cmocka_unit_test(test_topic_classify),
		cmocka_unit_test(test_filter_classify),
		cmocka_unit_test(test_classify_null),
		cmocka_unit_test(test_topic_macros),
		cmocka_unit_test(test_kind_names),
	};
	return cmocka_run_group_tests_name("names and topics", tests, NULL, NULL);
}
