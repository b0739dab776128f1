/* test_client_link.c - what a subscription's answer is reported as
 * (client/link.c): a refusal by the broker is MQIM_EDENIED with its reason
 * code, a subscription that got no answer because the link failed is a
 * link error, MQIM_ECONN, never a refusal (docs/reliability.md, finding 8).
 *
 * The client is a bare struct (no thread, no paho handle behind c->h): the
 * events are built as link.c's paho callbacks build them, and the notes
 * mqim__link_event() queues for the application are read back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "internal.h"

static void test_outcome(void **state)
{
	(void)state;
	assert_int_equal(mqim__sub_outcome(true, 0), MQIM_OK);
	assert_int_equal(mqim__sub_outcome(true, 2), MQIM_OK);          /* granted QoS 2 */
	assert_int_equal(mqim__sub_outcome(true, 0x87), MQIM_EDENIED);  /* a SUBACK refusing */
	assert_int_equal(mqim__sub_outcome(false, 0x87), MQIM_EDENIED);
	assert_int_equal(mqim__sub_outcome(false, 0x80), MQIM_EDENIED);
	assert_int_equal(mqim__sub_outcome(false, 0), MQIM_ECONN);      /* the link went */
}

/* The one note the event left, or NULL; c keeps it. */
static struct mqim__note *sub_event(mqim_client *c, bool answered, int reason, int code)
{
	const char *topic = "im/g/team";
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_SUB_DONE, strlen(topic) + 1);
	int outcome = mqim__sub_outcome(answered, reason);
	assert_non_null(ev);
	ev->epoch = c->epoch;
	ev->ok = outcome == MQIM_OK;
	ev->refused = outcome == MQIM_EDENIED;
	ev->reason = reason;
	ev->code = code;
	ev->topic = (char *)ev->data;
	strcpy(ev->topic, topic);
	mqim__link_event(c, ev);
	free(ev);
	assert_true(c->n_head == c->n_tail);
	return c->n_head;
}

static void drop(mqim_client *c)
{
	free(c->n_head);
	c->n_head = c->n_tail = NULL;
}

static void test_reported(void **state)
{
	mqim_client *c = calloc(1, sizeof *c);
	struct mqim__note *n;
	(void)state;
	assert_non_null(c);
	c->h = (MQTTAsync)c;   /* a live handle to link.c; never used here */
	c->epoch = 7;

	assert_null(sub_event(c, true, 1, 0));

	n = sub_event(c, false, 0x87, 0);
	assert_non_null(n);
	assert_int_equal(n->type, MQIM_NOTE_ERROR);
	assert_int_equal(n->err, MQIM_EDENIED);
	assert_non_null(strstr(n->text, "reason 0x87"));
	assert_non_null(strstr(n->text, "not a member"));
	drop(c);

	/* The link failed before the SUBACK: paho says -3 (disconnected). */
	n = sub_event(c, false, 0, -3);
	assert_non_null(n);
	assert_int_equal(n->type, MQIM_NOTE_ERROR);
	assert_int_equal(n->err, MQIM_ECONN);
	assert_null(strstr(n->text, "refused"));
	assert_non_null(strstr(n->text, "im/g/team"));
	assert_non_null(strstr(n->text, "next connection"));
	drop(c);

	/* About a connection that is gone: nothing to say. */
	c->epoch = 8;
	struct mqim__ev *ev = mqim__ev_new(MQIM_EV_SUB_DONE, 16);
	ev->epoch = 7;
	ev->topic = (char *)ev->data;
	strcpy(ev->topic, "im/u/bob");
	mqim__link_event(c, ev);
	free(ev);
	assert_null(c->n_head);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_outcome),
		cmocka_unit_test(test_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
