/* client_bench.c - `mqim-bench client`: libmqim's durable outbox against
 * raw paho MQTTAsync at QoS 1.  (Written last, against include/mqim.h.)
 *
 * Thread rules: see below.
 */
#include <stdio.h>

#include "bench.h"

int cmd_client(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fail("client: not available yet");
	return EXIT_FAIL;
}
