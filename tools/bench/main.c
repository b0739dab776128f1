/* main.c - mqim-bench: the command line, its help and its exit codes.
 *
 * Dispatches to one command from a table.  The only state main() sets is
 * the verbosity (util.c) and the exit handler that kills any broker a
 * failed run left behind (brokers.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const char usage[] =
"NAME\n"
"    mqim-bench - load generator and benchmark for the mqim broker plugin\n"
"\n"
"SYNOPSIS\n"
"    mqim-bench compare [--rounds R] [--quick] [--write FILE] [--strict] [options]\n"
"    mqim-bench icount [--write FILE] [--build DIR]\n"
"    mqim-bench pairs|group|latency|storm|connections [--broker A|B|C | --port P] [options]\n"
"    mqim-bench dedup [--ids N]\n"
"    mqim-bench client [--n N] [--rounds R]\n"
"    mqim-bench logins\n"
"    mqim-bench soak [--duration S] [--rate R] [--window W] [--dedup-max M] [--write FILE]\n"
"    mqim-bench --help\n"
"\n"
"DESCRIPTION\n"
"    Measures three brokers it starts itself on free ports of 127.0.0.1, with\n"
"    the same workload of real mqim envelopes (200-byte body):\n"
"      A  stock Mosquitto, allow_anonymous true, no plugin\n"
"      B  Mosquitto with mosquitto_dynamic_security.so and one role per user\n"
"      C  Mosquitto with build/mqim_plugin.so and its default options\n"
"    The generator is a raw MQTT 5 client on non-blocking sockets and one\n"
"    epoll loop (one thread), so that it stays far from being the bottleneck.\n"
"    Every run is bounded in messages and in time; nothing leaves loopback.\n"
"\n"
"COMMANDS\n"
"    compare      make bench: provisions users, starts A, B and C, runs the\n"
"                 first-login storm once per broker, then R interleaved rounds\n"
"                 (A B C A B C ...) of every scenario, and on C a storm with\n"
"                 token logins (C's only rows); prints medians (min-max),\n"
"                 ratios C/A and C/B against the figures of issue 4.\n"
"                   --rounds R       rounds (default 7; quick: 1)\n"
"                   --quick          a smoke run of about two minutes\n"
"                   --write FILE     replace the 'bench' section of FILE\n"
"                                    (docs/performance.md)\n"
"                   --strict         exit 3 when a figure is missed\n"
"                   --only LIST      only these scenarios (pairs,q0,q1,q2,group,\n"
"                                    latency,storm,tokens,connections,dedup,\n"
"                                    client; storm includes tokens)\n"
"                   --n N, --pairs P, --group-size S, --group-n N, --storm-k K,\n"
"                   --conn-rounds R  change the workload (see docs/performance.md)\n"
"                   --keep           keep the temporary folder (configs, logs)\n"
"    icount       make bench-icount: broker instructions per delivered message\n"
"                 under valgrind --tool=callgrind (the broker process only), for\n"
"                 pairs QoS 1 and the group, for A, B and C; C/A; and the plugin's\n"
"                 costliest functions from callgrind_annotate.\n"
"    pairs        P conversations (--pairs, 10) x N messages (--n, 20000) at\n"
"                 --qos 0|1|2 (1) with --window W (20) messages in flight each.\n"
"    group        one sender to --group-size S (50) members, --n N (2000), QoS 1.\n"
"    latency      --rate R (1000) messages/s in all for --duration D (10) s.\n"
"    storm        latency at rest for D/2 s, then --storm-k K (2000) clients\n"
"                 logging in with passwords at once, in waves for --storm-s S\n"
"                 (5) s; --first: one wave only (first logins).\n"
"                   --tokens         log the K clients in with app-server\n"
"                                    tokens instead of passwords: HS256, sub =\n"
"                                    the user, aud mqim, exp in a day, one per\n"
"                                    client, signed with broker C's secret\n"
"                                    (a random one given to the broker it\n"
"                                    starts; broker C only)\n"
"                   --jwt-secret-file FILE\n"
"                                    with --port and --tokens: the file the\n"
"                                    broker's plugin_opt_jwt_secret_file\n"
"                                    names\n"
"    connections  --conns LIST (2000,10000) idle persistent sessions; broker\n"
"                 VmRSS per session (needs --pid with --port).\n"
"    dedup        micro-benchmark of plugin/dedup.c with --ids N (1000000).\n"
"    client       libmqim's durable outbox (durability FULL and APP) against\n"
"                 raw paho MQTTAsync, QoS 1, to broker C: --n N (20000)\n"
"                 messages, --rounds R (3).\n"
"    logins       broker-thread CPU per login and logins/s on one core:\n"
"                 argon2id first login, remembered reconnect, JWT HS256, RS256.\n"
"    soak         make soak: broker C under a steady load (--pairs P (10)\n"
"                 conversations, QoS 1, --rate R (3000) messages/s in all)\n"
"                 for --duration S (600) seconds; --window W and --dedup-max M\n"
"                 set the plugin's window (default 600 s, 1000000 ids), which\n"
"                 is full after min(W, M/R) s.  VmRSS sampled every --sample T\n"
"                 (5) s.  Verdict: growth from 15 s after the window is full\n"
"                 to the end within --max-growth PCT (3) %.\n"
"                 --write FILE replaces the 'soak' section of FILE.  Exit 3\n"
"                 when memory grew past the bound; a run that ends before\n"
"                 the window is full prints \"no verdict\" and exits 0.\n"
"\n"
"COMMON OPTIONS\n"
"    --broker A|B|C   start this kind of broker for a scenario (default C)\n"
"    --port P         use a broker already on 127.0.0.1:P (users p0a..., g0...,\n"
"                     s0..., c0... with password " BENCH_PASSWORD ")\n"
"    --build DIR      where mqim_plugin.so is (default build)\n"
"    --callgrind      run the broker under valgrind --tool=callgrind (users get\n"
"                     cheap hashes) and keep its output\n"
"    --client-suffix X  client ids {user}/X instead of {user} (to run two\n"
"                     generators on one broker)\n"
"    -v, --verbose    progress on stderr\n"
"\n"
"EXIT STATUS\n"
"    0  the runs completed (figures printed)\n"
"    1  a broker or a run failed (a message lost, a login refused...)\n"
"    2  bad command line\n"
"    3  compare --strict: a figure of issue 4 was missed; soak: memory grew\n"
"\n"
"FILES\n"
"    Temporary folders under $TMPDIR (or /tmp): mqim-bench-XXXXXX, removed\n"
"    at the end unless --keep.  RLIMIT_NOFILE is raised to what the\n"
"    connections scenario needs, up to the hard limit.\n"
"\n"
"SEE ALSO\n"
"    docs/performance.md, make bench, make bench-icount\n";

static const struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
} commands[] = {
	{ "compare", cmd_compare },
	{ "icount", cmd_icount },
	{ "client", cmd_client },
	{ "logins", cmd_logins },
	{ "soak", cmd_soak },
};

static const char *const scenarios[] = {
	"pairs", "group", "latency", "storm", "connections", "dedup",
};

static void on_signal(int sig)
{
	(void)sig;
	exit(EXIT_FAIL); /* runs brokers_kill_all() */
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	atexit(brokers_kill_all);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(argv[1], scenarios[i]))
			return cmd_scenario(scenarios[i], argc - 1, argv + 1);
	fprintf(stderr, "mqim-bench: unknown command '%s' (see mqim-bench --help)\n", argv[1]);
	return EXIT_USAGE;
}
