/* test_client_cli.c - the mqim command against a real broker: send with
 * --wait and its exit codes, listen --json, history, outbox, a wrong
 * password, pack | unpack.  The other side of each conversation is a
 * libmqim client in this process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "tbroker.h"
#include "test_client_util.h"

#define PW "pw-Cli-58"
#define WAIT_MS 15000

static struct tbroker broker;
static char mqim_bin[512];
static char cli_dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(mqim_bin, sizeof mqim_bin, "%s/mqim", tbroker_build_dir());
	tc_tmpdir(cli_dir, sizeof cli_dir, "cli");
	if (tbroker_init(&broker, NULL) != 0 ||
	    tbroker_add_user(&broker, "alice", PW, false) != 0 ||
	    tbroker_add_user(&broker, "bob", PW, false) != 0 ||
	    tbroker_add_user(&broker, "carol", PW, false) != 0 ||
	    tbroker_add_group(&broker, "team", (const char *const[]){ "alice", "bob", "carol", NULL }) != 0 ||
	    tbroker_start(&broker) != 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tbroker_cleanup(&broker);
	tc_rmdir(cli_dir);
	return 0;
}

/* Run `mqim -p PORT -u USER -P PW --data-dir DIR/USER ARGS`, capture stdout
 * into out (if not NULL), return the exit status. */
static int run(const char *user, const char *pass, const char *args, char *out, size_t outlen)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "%s -h 127.0.0.1 -p %d -u %s -P '%s' --data-dir %s/%s --keepalive 5 %s",
		 mqim_bin, broker.port, user, pass, cli_dir, user, args);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t n = 0;
	char buf[4096];
	size_t got;
	while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
		if (out && n + got < outlen) {
			memcpy(out + n, buf, got);
			n += got;
		}
	}
	if (out)
		out[n] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_send_wait_delivered(void **state)
{
	struct tc b;
	char db[256], out[4096];
	char hex[MQIM_ID_HEX_LEN + 1];
	(void)state;
	tc_tmpdir(db, sizeof db, "bob");
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(run("alice", PW, "send --qos 2 --wait delivered --timeout 10 bob 'hi from the cli'",
			     out, sizeof out), 0);
	assert_int_equal(strlen(out), 33);   /* 32 hex digits and a newline */
	assert_true(tc_wait_msgs(&b, 1, WAIT_MS));
	assert_string_equal(b.msgs[0].body, "hi from the cli");
	assert_memory_equal(mqim_id_to_hex(b.msgs[0].id, hex), out, 32);

	/* --wait read with nobody reading: a timeout, exit 4. */
	assert_int_equal(run("alice", PW, "send --wait read --timeout 1 bob 'unread'", out, sizeof out), 4);
	/* The history of the cli user has both. */
	assert_int_equal(run("alice", PW, "history --json bob", out, sizeof out), 0);
	assert_non_null(strstr(out, "\"unread\""));
	*strchr(out, '\n') = '\0';   /* oldest first: the first line */
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "body")->valuestring, "hi from the cli");
	assert_string_equal(cJSON_GetObjectItem(j, "fr")->valuestring, "alice");
	cJSON_Delete(j);
	tc_close(&b);
	tc_rmdir(db);
}

static void test_listen_json(void **state)
{
	struct tc a;
	char da[256], out[4096];
	uint8_t id[16];
	char hex[MQIM_ID_HEX_LEN + 1];
	(void)state;
	tc_tmpdir(da, sizeof da, "alice");
	assert_int_equal(tc_open(&a, broker.port, "alice", PW, da), MQIM_OK);
	assert_true(tc_wait_state(&a, MQIM_STATE_CONNECTED, WAIT_MS));
	/* bob's cli session exists from an earlier run or is made now; the
	 * messages wait on the broker for it either way. */
	assert_int_equal(run("bob", PW, "listen --timeout 1", NULL, 0), 0);
	assert_int_equal(mqim_send(a.c, "bob", false, NULL, "one \"quoted\"", 12, 1, id), MQIM_OK);
	assert_int_equal(mqim_send(a.c, "bob", false, NULL, "two", 3, 1, NULL), MQIM_OK);
	assert_int_equal(run("bob", PW, "listen --json --count 2 --timeout 10", out, sizeof out), 0);
	char *nl = strchr(out, '\n');
	assert_non_null(nl);
	*nl = '\0';
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, mqim_id_to_hex(id, hex));
	assert_string_equal(cJSON_GetObjectItem(j, "t")->valuestring, "msg");
	assert_string_equal(cJSON_GetObjectItem(j, "fr")->valuestring, "alice");
	assert_string_equal(cJSON_GetObjectItem(j, "to")->valuestring, "bob");
	assert_string_equal(cJSON_GetObjectItem(j, "body")->valuestring, "one \"quoted\"");
	assert_true(cJSON_GetObjectItem(j, "ts")->valuedouble > 0);
	assert_true(cJSON_GetObjectItem(j, "bts")->valuedouble > 0);
	cJSON_Delete(j);
	/* The receipts went out. */
	assert_true(tc_wait_msg_state(&a, id, MQIM_MSG_DELIVERED, WAIT_MS));
	/* --count not reached in time: exit 4. */
	assert_int_equal(run("bob", PW, "listen --count 1 --timeout 1", NULL, 0), 4);
	tc_close(&a);
	tc_rmdir(da);
}

static void test_outbox_and_queued(void **state)
{
	char out[2048];
	(void)state;
	/* Queued without connecting: listed in the outbox. */
	assert_int_equal(run("alice", PW, "send --wait queued bob 'later'", out, sizeof out), 0);
	assert_int_equal(run("alice", PW, "outbox --json", out, sizeof out), 0);
	assert_non_null(strstr(out, "\"state\":\"queued\""));
	assert_non_null(strstr(out, "\"body\":\"later\""));
	/* The next run that connects sends it. */
	assert_int_equal(run("alice", PW, "listen --timeout 1", NULL, 0), 0);
	assert_int_equal(run("alice", PW, "outbox --json", out, sizeof out), 0);
	assert_null(strstr(out, "\"state\":\"queued\""));
	/* retry of something that has not failed */
	assert_int_equal(run("alice", PW, "retry 00112233445566778899aabbccddeeff", NULL, 0), 1);
	assert_int_equal(run("alice", PW, "retry nothex", NULL, 0), 2);
}

static void test_wrong_password_and_usage(void **state)
{
	(void)state;
	assert_int_equal(run("bob", "wrong", "send --timeout 5 alice 'x'", NULL, 0), 3);
	assert_int_equal(run("bob", PW, "send", NULL, 0), 2);
	assert_int_equal(run("bob", PW, "send --qos 3 alice x", NULL, 0), 2);
	assert_int_equal(run("bob", PW, "send 'not/a/user' x", NULL, 0), 2);
	assert_int_equal(run("bob", PW, "frobnicate", NULL, 0), 2);
}

/* chat, fed by a pipe: a typed line goes out, what arrives is shown. */
static void test_chat(void **state)
{
	struct tc b;
	char db[256], out[4096];
	(void)state;
	tc_tmpdir(db, sizeof db, "bob");
	assert_int_equal(tc_open(&b, broker.port, "bob", PW, db), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	/* alice's cli session exists (the broker keeps messages for it)... */
	assert_int_equal(run("alice", PW, "listen --timeout 1", NULL, 0), 0);
	/* ...so what bob says meanwhile waits for her next start. */
	assert_int_equal(mqim_send(b.c, "alice", false, NULL, "are you there?", 14, 1, NULL), MQIM_OK);
	tc_sleep(300);
	char args[256];
	snprintf(args, sizeof args, "chat bob < <(sleep 1; echo 'typed in chat'; sleep 1.5; echo /quit)");
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "bash -c \"%s -h 127.0.0.1 -p %d -u alice -P '%s' --data-dir %s/alice %s\"",
		 mqim_bin, broker.port, PW, cli_dir, args);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	if (!strstr(out, "are you there?"))
		fprintf(stderr, "chat printed:\n%s\n", out);
	assert_non_null(strstr(out, "are you there?"));
	assert_non_null(strstr(out, "-- connected --"));
	assert_true(tc_wait_msgs(&b, 1, WAIT_MS));
	assert_string_equal(b.msgs[0].body, "typed in chat");
	tc_close(&b);
	tc_rmdir(db);
}

static void test_pack_unpack(void **state)
{
	char cmd[2048], out[1024];
	(void)state;
	snprintf(cmd, sizeof cmd,
		 "echo '{\"t\":\"msg\",\"fr\":\"alice\",\"to\":\"bob\",\"id\":\"00112233445566778899aabbccddeeff\","
		 "\"ts\":7,\"body\":\"hé\",\"extra\":[1,2]}' | %s pack | %s unpack", mqim_bin, mqim_bin);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	assert_int_equal(pclose(f), 0);
	cJSON *j = cJSON_Parse(out);
	assert_non_null(j);
	assert_int_equal((int)cJSON_GetObjectItem(j, "v")->valuedouble, 1);
	assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "00112233445566778899aabbccddeeff");
	assert_string_equal(cJSON_GetObjectItem(j, "body")->valuestring, "hé");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "extra")), 2);
	cJSON_Delete(j);
	/* An invalid envelope is refused. */
	snprintf(cmd, sizeof cmd, "echo '{\"t\":\"msg\",\"fr\":\"a/b\",\"to\":\"bob\"}' | %s pack >/dev/null 2>&1",
		 mqim_bin);
	assert_int_not_equal(system(cmd), 0);
}

/* members: with a roster of bob and carol, a group message is delivered
 * only once both have receipted; carol has never logged in, so --wait
 * delivered times out (exit 4) although bob answered.  Without a roster
 * bob's receipt settles it. */
static void test_members_roster(void **state)
{
	static const char *const team[] = { "team", NULL };
	struct tc b;
	char db[256];
	(void)state;
	tc_tmpdir(db, sizeof db, "bob-team");
	assert_int_equal(tc_open_resend(&b, broker.port, "bob", PW, db, team, 15000, 3), MQIM_OK);
	assert_true(tc_wait_state(&b, MQIM_STATE_CONNECTED, WAIT_MS));
	assert_int_equal(run("alice", PW, "members team alice bob carol", NULL, 0), 0);
	assert_int_equal(run("alice", PW, "send --group team --wait delivered --timeout 3 'to all'",
			     NULL, 0), 4);
	assert_true(tc_wait_msgs(&b, 1, WAIT_MS));
	assert_int_equal(run("alice", PW, "members team", NULL, 0), 0);
	assert_int_equal(run("alice", PW, "send --group team --wait delivered --timeout 10 'to bob'",
			     NULL, 0), 0);
	assert_true(tc_wait_msgs(&b, 2, WAIT_MS));
	/* bad names: a usage error, nothing changed */
	assert_int_equal(run("alice", PW, "members 'te/am' bob", NULL, 0), 2);
	assert_int_equal(run("alice", PW, "members team 'b+b'", NULL, 0), 2);
	assert_int_equal(run("alice", PW, "members", NULL, 0), 2);
	tc_close(&b);
	tc_rmdir(db);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_send_wait_delivered),
		cmocka_unit_test(test_listen_json),
		cmocka_unit_test(test_outbox_and_queued),
		cmocka_unit_test(test_wrong_password_and_usage),
		cmocka_unit_test(test_chat),
		cmocka_unit_test(test_pack_unpack),
		cmocka_unit_test(test_members_roster),
	};
	if (argc > 1)
		cmocka_set_test_filter(argv[1]);
	return cmocka_run_group_tests(tests, setup, teardown);
}
