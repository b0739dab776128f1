/* test_faults.c - the fault suite: mqim's promise (nothing lost, nothing
 * shown twice, every sender told) under crashes, freezes, cuts, silent
 * links, loss and delay, killed clients, full disks and corrupt files.
 *
 *   test_faults                      every case (MQIM_FAULTS=full, the default)
 *   MQIM_FAULTS=fast test_faults     the subset `make test` runs, at small sizes
 *   MQIM_FAULTS=name,name test_faults  the named cases
 *   MQIM_FAULTS_SEED=N               repeat a run's random choices
 *   MQIM_FAULTS_TABLE=FILE           also write the results table (markdown)
 *   MQIM_FAULTS_VERBOSE=1            log every connection state change
 *   MQIM_FAULTS_QOS=1 (or 2)         every message at that QoS (default: 1 and 2 in turn)
 *   MQIM_KEEP_TMP=1                  keep the folders of the cases
 *
 * This process is the runner: each case is one cmocka test that starts
 * this binary again as `test_faults --case NAME` in its own process group
 * and temporary folder, waits for it (bounded, then SIGKILL to the group),
 * and collects its row of the results table, printed at the end.  The
 * case process enters its own network and mount namespace first
 * (fw_sandbox_enter), so its loopback, iptables rules and tmpfs mounts die
 * with it, even after a crash.  Cases 6 and 7 start this binary once more
 * as `--child sender|receiver ...`: a libmqim client to SIGKILL.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fault.h"
#include "proxy.h"
#include "tclient.h"

#define CONNECT_MS 30000
#define SETTLE_MS 120000

struct fcase {
	const char *name;
	const char *title;
	void (*fn)(struct fw *w);
	bool fast;           /* in `make test` */
	int timeout_s;       /* for the whole case process */
};

static struct fw W;
static bool small;       /* MQIM_FAULTS_SIZE=small: the `make test` sizes */

/* ---- helpers shared by the cases ------------------------------------------ */

static void world_up(struct fw *w, const char *extra_conf)
{
	assert_int_equal(fw_init(w, true, extra_conf), 0);
	assert_int_equal(tbroker_start(&w->broker), 0);
}

static void peers_up(struct fw *w, int port, unsigned mask)
{
	for (int u = 0; u < FW_NUSERS; u++)
		if (!mask || (mask & (1u << u)))
			assert_int_equal(fw_peer_open(w, u, port, true), MQIM_OK);
	assert_true(fw_wait_connected(w, CONNECT_MS));
	assert_true(fw_warmup(w, CONNECT_MS));
}

/* Wait for the end, count, report; the row is written before any
 * assertion so that a failing case still shows in the table. */
static void settle(struct fw *w, struct fw_result *r, int settle_ms)
{
	fw_traffic_join(w);
	fw_wait_settled(w, settle_ms);
	fw_tally(w, r);
	fw_explain(w, r);
}

static void finish(struct fw *w, struct fw_result *r, int settle_ms, const char *note)
{
	settle(w, r, settle_ms);
	fw_report(w, r, note);
}

/* Sleep until ms after t0. */
static void sleep_until(int64_t t0, int ms)
{
	int64_t left = t0 + ms - fw_now();
	if (left > 0)
		fw_sleep((int)left);
}

static int total_losses(struct fw *w)
{
	int n = 0;
	pthread_mutex_lock(&w->mu);
	for (int u = 0; u < FW_NUSERS; u++)
		n += w->peers[u].losses;
	pthread_mutex_unlock(&w->mu);
	return n;
}

static int peer_losses(struct fw *w, int u)
{
	pthread_mutex_lock(&w->mu);
	int n = w->peers[u].losses;
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* ---- case 1: the broker killed and restarted ------------------------------- */

static void broker_kills(struct fw *w, bool persistence)
{
	int kills = small ? 1 : 3, n = small ? 120 : 300, ng = small ? 30 : 60;
	int duration = small ? 5000 : 12000;
	struct fw_result r;
	char note[160];

	world_up(w, persistence ? NULL : "persistence false\n");
	peers_up(w, w->broker.port, 0);
	fw_streams_standard(w, n, ng);
	int64_t t0 = fw_now();
	fw_traffic_start(w, duration, 0);
	for (int k = 1; k <= kills; k++) {
		sleep_until(t0, duration * k / (kills + 1));
		int done = fw_traffic_done(w);
		assert_int_equal(tbroker_signal(&w->broker, SIGKILL), 0);
		fw_log("broker SIGKILLed (%d/%d sent)", done, fw_traffic_total(w));
		fw_sleep(fw_rand(w, 300, 1200));
		assert_int_equal(tbroker_start(&w->broker), 0);
		fw_log("broker restarted");
		fw_fault_end(w);
	}
	snprintf(note, sizeof note, "%d kill%s, persistence %s", kills, kills > 1 ? "s" : "",
		 persistence ? "on" : "off");
	finish(w, &r, SETTLE_MS, note);
	assert_true(fw_broker_log_clean(w));
	fw_assert_clean(&r);
}

static void case_kill_persist(struct fw *w)
{
	broker_kills(w, true);
}

static void case_kill_nopersist(struct fw *w)
{
	broker_kills(w, false);
}

/* ---- case 2: the broker frozen --------------------------------------------- */

static int total_failed_connects(struct fw *w)
{
	int n = 0;
	pthread_mutex_lock(&w->mu);
	for (int u = 0; u < FW_NUSERS; u++)
		n += w->peers[u].failed_connects;
	pthread_mutex_unlock(&w->mu);
	return n;
}

static void case_sigstop(struct fw *w)
{
	struct fw_result r;
	char note[200];
	world_up(w, NULL);
	/* Senders notice a frozen broker by their ack timeout, idle clients
	 * by the keepalive; a reconnect meanwhile finds TCP accepted by the
	 * stopped broker's kernel and only a CONNACK timeout ends it. */
	w->tmpl.keepalive_s = 3;
	w->tmpl.ack_timeout_ms = 1000;
	w->tmpl.connect_timeout_ms = 1000;
	peers_up(w, w->broker.port, 0);
	fw_streams_standard(w, 200, 50);
	fw_traffic_start(w, 9000, 0);
	fw_sleep(2500);
	int before = total_losses(w), failed_before = total_failed_connects(w);
	int stop_ms = 2000 * (int)w->tmpl.keepalive_s;
	assert_int_equal(tbroker_signal(&w->broker, SIGSTOP), 0);
	fw_log("broker SIGSTOPped for %d s", stop_ms / 1000);
	fw_sleep(stop_ms);
	int detected = total_losses(w) - before;
	int failed = total_failed_connects(w) - failed_before;
	assert_int_equal(tbroker_signal(&w->broker, SIGCONT), 0);
	fw_fault_end(w);
	fw_log("broker SIGCONTed; meanwhile %d links lost, %d connect attempts timed out", detected,
	       failed);
	snprintf(note, sizeof note, "stopped %d s; meanwhile %d link losses, %d connects without "
		 "CONNACK abandoned", stop_ms / 1000, detected, failed);
	finish(w, &r, SETTLE_MS, note);
	assert_true(detected >= 2);
	assert_true(failed >= 1);
	assert_true(fw_wait_connected(w, CONNECT_MS));
	fw_assert_clean(&r);
}

/* ---- case 3: connections cut at random ------------------------------------- */

static void case_proxy_cut(struct fw *w)
{
	struct fw_result r;
	struct proxy_stats ps;
	char note[200];
	int duration = small ? 6000 : 12000;

	world_up(w, NULL);
	struct proxy *p = proxy_new(w->broker.port, fw_seed());
	assert_non_null(p);
	peers_up(w, proxy_port(p), 0);
	fw_streams_standard(w, small ? 100 : 250, small ? 25 : 60);
	proxy_set_cut(p, 400, 2500);
	fw_log("proxy: every connection cut after 0.4-2.5 s");
	fw_traffic_start(w, duration, 0);
	/* Halfway, the kernel joins in: for 1.5 s every segment to the
	 * broker is answered with a TCP reset. */
	fw_sleep(duration / 2);
	assert_int_equal(fw_sh("iptables -w -I INPUT -i lo -p tcp --dport %d -j REJECT "
			       "--reject-with tcp-reset", w->broker.port), 0);
	fw_sleep(1500);
	assert_int_equal(fw_sh("iptables -w -F INPUT"), 0);
	fw_traffic_join(w);
	/* The cuts go on until everything settled. */
	fw_fault_end(w);
	bool settled = fw_wait_settled(w, SETTLE_MS);
	proxy_pass(p);
	proxy_stats(p, &ps);
	snprintf(note, sizeof note, "%u connections cut by the proxy, 1.5 s of TCP resets (iptables); "
		 "recover = last send -> settled, cuts going on", ps.cut);
	if (!settled)
		fw_wait_settled(w, 20000);
	finish(w, &r, 1000, note);
	proxy_free(p);
	assert_true(ps.cut >= 5);
	fw_assert_clean(&r);
}

/* ---- case 4: the link goes silent ------------------------------------------- */

/* Wait until every open peer lost its link (losses above before[u]) and
 * is connected again; returns the time that took, or -1. */
static int wait_all_recovered(struct fw *w, const int before[FW_NUSERS], int timeout_ms)
{
	int64_t t0 = fw_now(), end = t0 + timeout_ms;
	for (;;) {
		bool all = true;
		pthread_mutex_lock(&w->mu);
		for (int u = 0; u < FW_NUSERS; u++)
			if (w->peers[u].c && (w->peers[u].losses <= before[u] ||
					      w->peers[u].state != MQIM_STATE_CONNECTED))
				all = false;
		pthread_mutex_unlock(&w->mu);
		if (all)
			return (int)(fw_now() - t0);
		if (fw_now() >= end)
			return -1;
		fw_sleep(20);
	}
}

static void case_proxy_silent(struct fw *w)
{
	struct fw_result r;
	struct proxy_stats ps;
	char note[300];
	int took[2], before[FW_NUSERS];

	world_up(w, NULL);
	struct proxy *p = proxy_new(w->broker.port, fw_seed());
	assert_non_null(p);
	peers_up(w, proxy_port(p), 0);
	fw_streams_standard(w, 200, 50);
	int64_t t0 = fw_now();
	fw_traffic_start(w, 12000, 0);
	for (int k = 0; k < 2; k++) {
		sleep_until(t0, 2000 + 5000 * k);
		for (int u = 0; u < FW_NUSERS; u++)
			before[u] = peer_losses(w, u);
		proxy_silence(p);
		fw_fault_end(w);
		fw_log("proxy: every open connection silent (new ones pass)");
		took[k] = wait_all_recovered(w, before, 30000);
		fw_log("every client noticed and reconnected after %.1f s", took[k] / 1000.0);
		assert_true(took[k] >= 0);
	}
	/* Then the link itself dies for a while (iptables DROP both ways):
	 * nothing gets through, old connections or new. */
	int dead_ms = 3000 * (int)w->tmpl.keepalive_s;
	for (int u = 0; u < FW_NUSERS; u++)
		before[u] = peer_losses(w, u);
	assert_int_equal(fw_sh("iptables -w -A INPUT -i lo -p tcp --dport %d -j DROP", w->broker.port), 0);
	assert_int_equal(fw_sh("iptables -w -A INPUT -i lo -p tcp --sport %d -j DROP", w->broker.port), 0);
	fw_sleep(dead_ms);
	assert_int_equal(fw_sh("iptables -w -F INPUT"), 0);
	fw_fault_end(w);
	int back = wait_all_recovered(w, before, 30000);
	fw_log("link dead for %d s; every client noticed and was back %.1f s after", dead_ms / 1000,
	       back / 1000.0);
	assert_true(back >= 0);
	proxy_stats(p, &ps);
	snprintf(note, sizeof note, "2 silences (%u links): all 5 clients back after %.1f s and %.1f s; "
		 "link dropped %d s (iptables): back %.1f s after (keepalive %u s)", ps.silenced,
		 took[0] / 1000.0, took[1] / 1000.0, dead_ms / 1000, back / 1000.0, w->tmpl.keepalive_s);
	finish(w, &r, SETTLE_MS, note);
	proxy_free(p);
	fw_assert_clean(&r);
}

/* ---- case 5: loss, delay, reordering ---------------------------------------- */

static void case_loss_delay(struct fw *w)
{
	struct fw_result r;
	char note[200];

	world_up(w, NULL);
	w->tmpl.keepalive_s = 10;
	w->tmpl.connect_timeout_ms = 8000;
	w->tmpl.ack_timeout_ms = 10000;
	w->tmpl.resend_timeout_ms = 20000;
	struct proxy *p = proxy_new(w->broker.port, fw_seed());
	assert_non_null(p);
	peers_up(w, proxy_port(p), 0);
	fw_streams_standard(w, 100, 25);
	/* Loss on the proxy <-> broker hop, both directions; delay, jitter
	 * and split writes on the client <-> proxy hop. */
	int port = w->broker.port;
	assert_int_equal(fw_sh("iptables -w -A INPUT -i lo -p tcp --dport %d -m statistic "
			       "--mode random --probability 0.1 -j DROP", port), 0);
	assert_int_equal(fw_sh("iptables -w -A INPUT -i lo -p tcp --sport %d -m statistic "
			       "--mode random --probability 0.1 -j DROP", port), 0);
	proxy_set_delay(p, 200, 100, 64);
	fw_log("10%% loss each way, 200 +- 100 ms delay, writes split in 1-64 byte pieces");
	fw_traffic_start(w, 10000, 0);
	fw_traffic_join(w);
	fw_fault_end(w);
	bool settled = fw_wait_settled(w, 150000);
	fw_sh("iptables -w -L INPUT -v -n -x >&2");
	fw_sh("iptables -w -F INPUT");
	proxy_pass(p);
	if (!settled)
		fw_wait_settled(w, 20000);
	snprintf(note, sizeof note, "faults on until settled; recover = last send -> settled; "
		 "%d link losses", total_losses(w));
	finish(w, &r, 1000, note);
	proxy_free(p);
	fw_assert_clean(&r);
}

/* ---- case 6: the sender killed ----------------------------------------------- */

static void case_sender_killed(struct fw *w)
{
	struct fw_result r;
	char journal[400], port[16], note[160];
	int n = 200, ng = 50;

	world_up(w, NULL);
	fw_streams_standard(w, n, ng);
	/* Everyone logs in once, so that alice's session and subscriptions
	 * exist before her child process takes over her data folder. */
	peers_up(w, w->broker.port, 0);
	fw_peer_close(w, FW_ALICE);
	snprintf(journal, sizeof journal, "%s/alice.journal", w->tmp);
	snprintf(port, sizeof port, "%d", w->broker.port);
	const char *args[] = { "--child", "sender", port, w->peers[FW_ALICE].dir, journal, NULL };
	pid_t pid = fw_spawn(args);
	assert_true(pid > 0);
	int64_t end = fw_now() + CONNECT_MS;
	while (fw_journal_count(journal, 'C') < 1 && fw_now() < end)
		fw_sleep(20);
	assert_true(fw_journal_count(journal, 'C') >= 1);
	fw_traffic_start(w, 6000, 1u << FW_BOB);
	/* Kill alice at a random moment once she sent a third to two thirds. */
	int target = fw_rand(w, (n + ng) / 3, 2 * (n + ng) / 3);
	end = fw_now() + 60000;
	while (fw_journal_count(journal, 'S') < target && fw_now() < end)
		fw_sleep(5);
	kill(pid, SIGKILL);
	int status = fw_reap(pid, 10000);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	int recs = fw_journal_load(w, journal);
	int sent = fw_journal_count(journal, 'S');
	int left = fw_outbox_rows(w, FW_ALICE);
	fw_log("alice SIGKILLed after %d accepted sends (%d journal records), %d rows in her outbox",
	       sent, recs, left);
	/* Alice again, same data folder: her outbox goes out, she goes on. */
	fw_sleep(500);
	assert_int_equal(fw_peer_open(w, FW_ALICE, w->broker.port, true), MQIM_OK);
	fw_fault_end(w);
	fw_traffic_start(w, 3000, 1u << FW_ALICE);
	snprintf(note, sizeof note, "killed after %d sends with %d outbox rows; restarted with the same "
		 "data folder", sent, left);
	finish(w, &r, SETTLE_MS, note);
	assert_true(left > 0);
	fw_assert_clean(&r);
}

/* ---- case 7: the receiver killed before its receipts ------------------------- */

static void receiver_streams(struct fw *w, int n, int ng)
{
	fw_stream_add(w, FW_ALICE, FW_BOB, n, 0);
	fw_stream_add(w, FW_ALICE, FW_TO_GROUP, ng, 0);
}

static int delivered_states(struct fw *w, int s)
{
	int n = 0;
	pthread_mutex_lock(&w->mu);
	for (int q = 0; q < w->streams[s].n; q++)
		n += w->streams[s].state[q] == MQIM_MSG_DELIVERED || w->streams[s].state[q] == MQIM_MSG_READ;
	pthread_mutex_unlock(&w->mu);
	return n;
}

static void case_receiver_killed(struct fw *w)
{
	struct fw_result r;
	char journal[400], port[16], note[200];

	world_up(w, NULL);
	receiver_streams(w, 200, 50);
	/* Bob's session and subscriptions exist before his child runs. */
	peers_up(w, w->broker.port, 0);
	fw_peer_close(w, FW_BOB);
	struct proxy *p = proxy_new(w->broker.port, fw_seed());
	assert_non_null(p);
	snprintf(journal, sizeof journal, "%s/bob.journal", w->tmp);
	snprintf(port, sizeof port, "%d", proxy_port(p));
	const char *args[] = { "--child", "receiver", port, w->peers[FW_BOB].dir, journal, NULL };
	pid_t pid = fw_spawn(args);
	assert_true(pid > 0);
	int64_t end = fw_now() + CONNECT_MS;
	while (fw_journal_count(journal, 'C') < 1 && fw_now() < end)
		fw_sleep(20);
	assert_true(fw_journal_count(journal, 'C') >= 1);
	/* Bob hears everything but nothing he says gets out: his receipts
	 * (and acknowledgements) wait in his outbox and socket. */
	proxy_freeze(p, true, false);
	fw_traffic_start(w, 4000, 0);
	end = fw_now() + 30000;
	while (fw_journal_count(journal, 'R') < 15 && fw_now() < end)
		fw_sleep(10);
	fw_sleep(fw_rand(w, 0, 300));
	kill(pid, SIGKILL);
	int status = fw_reap(pid, 10000);
	assert_true(WIFSIGNALED(status));
	/* Whatever he wrote into his socket dies with the link. */
	proxy_silence(p);
	proxy_pass(p);
	int got = fw_journal_count(journal, 'R');
	int acked = delivered_states(w, 0);   /* the group's may come from others */
	fw_journal_load(w, journal);
	fw_log("bob SIGKILLed after his app saw %d messages; %d receipts had reached alice", got, acked);
	fw_sleep(500);
	assert_int_equal(fw_peer_open(w, FW_BOB, w->broker.port, true), MQIM_OK);
	fw_fault_end(w);
	snprintf(note, sizeof note, "killed after %d messages shown, %d receipts out; restarted", got,
		 acked);
	finish(w, &r, SETTLE_MS, note);
	proxy_free(p);
	assert_true(got >= 1);
	assert_int_equal(acked, 0);
	fw_assert_clean(&r);
}

/* ---- case 8: recipients offline for the whole send --------------------------- */

static void case_offline(struct fw *w)
{
	struct fw_result r;
	world_up(w, NULL);
	/* Everybody logs in once (the broker keeps their sessions), then only
	 * alice stays; bob writes while offline (his outbox keeps it). */
	peers_up(w, w->broker.port, 0);
	for (int u = FW_BOB; u < FW_NUSERS; u++)
		fw_peer_close(w, u);
	assert_int_equal(fw_peer_open(w, FW_BOB, w->broker.port, false), MQIM_OK);
	fw_streams_standard(w, small ? 100 : 200, small ? 25 : 50);
	fw_traffic_start(w, 2000, 0);
	fw_traffic_join(w);
	fw_sleep(2000);
	int seen = 0;
	pthread_mutex_lock(&w->mu);
	for (int s = 0; s < w->nstreams; s++)
		for (int q = 0; q < w->streams[s].n; q++)
			for (int u = FW_BOB; u < FW_NUSERS; u++)
				seen += w->streams[s].count[u][q];
	pthread_mutex_unlock(&w->mu);
	assert_int_equal(seen, 0);
	fw_log("everyone back online");
	fw_fault_end(w);
	assert_int_equal(mqim_connect(w->peers[FW_BOB].c), MQIM_OK);
	for (int u = FW_CAROL; u < FW_NUSERS; u++)
		assert_int_equal(fw_peer_open(w, u, w->broker.port, true), MQIM_OK);
	finish(w, &r, SETTLE_MS, "bob, carol, dave, erin offline during the send; bob sent offline");
	fw_assert_clean(&r);
}

/* Case 8 again, for a recipient who never logged in before: the broker
 * has no session to queue for him, so only the sender's resends can
 * bring him the messages once he comes. */
static void case_offline_new(struct fw *w)
{
	struct fw_result r;
	world_up(w, NULL);
	w->tmpl.resend_timeout_ms = 3000;
	peers_up(w, w->broker.port, ~(1u << FW_BOB));
	fw_stream_add(w, FW_ALICE, FW_BOB, 20, 0);
	fw_stream_add(w, FW_ALICE, FW_TO_GROUP, 10, 0);
	fw_traffic_start(w, 1000, 0);
	fw_traffic_join(w);
	fw_sleep(2000);
	fw_log("bob logs in for the first time");
	fw_fault_end(w);
	assert_int_equal(fw_peer_open(w, FW_BOB, w->broker.port, true), MQIM_OK);
	finish(w, &r, SETTLE_MS, "bob had never logged in while alice sent; resend every 3 s");
	fw_assert_clean(&r);
}

/* ---- case 9: a full file system ----------------------------------------------- */

/* Mount a tmpfs of size_kib at dir (this process's mount namespace). */
static void mount_small(const char *dir, int size_kib)
{
	char opts[64];
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(opts, sizeof opts, "size=%dk,mode=0700", size_kib);
	assert_int_equal(mount("tmpfs", dir, "tmpfs", 0, opts), 0);
}

/* Fill the file system of path with a file; returns the bytes written. */
static long fill(const char *path)
{
	static char block[4096];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	long n = 0;
	assert_true(fd >= 0);
	for (;;) {
		ssize_t w = write(fd, block, sizeof block);
		if (w <= 0)
			break;
		n += w;
	}
	for (;;) {   /* the last bytes */
		ssize_t w = write(fd, block, 1);
		if (w <= 0)
			break;
		n += w;
	}
	close(fd);
	return n;
}

static void case_disk_full_sender(struct fw *w)
{
	struct fw_result r;
	char mnt[300], filler[340], note[200];
	int n = 300, refused = 0, other = 0, ok_after_full = 0, q;

	world_up(w, NULL);
	snprintf(mnt, sizeof mnt, "%s/alice-fs", w->tmp);
	mount_small(mnt, 8192);
	snprintf(w->peers[FW_ALICE].dir, sizeof w->peers[FW_ALICE].dir, "%s/alice", mnt);
	int s = fw_stream_add(w, FW_ALICE, FW_BOB, n, 0);
	int sg = fw_stream_add(w, FW_ALICE, FW_TO_GROUP, 40, 0);
	peers_up(w, w->broker.port, 0);
	for (q = 0; q < 20; q++)
		assert_int_equal(fw_send(w, s, q), MQIM_OK);
	for (int k = 0; k < 20; k++)
		assert_int_equal(fw_send(w, sg, k), MQIM_OK);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	long filled = fill(filler);
	fw_log("file system of alice's data folder filled (%ld bytes of filler)", filled);
	/* Send until the disk says no ten times. */
	for (; q < n - 40 && refused < 10; q++) {
		int rc = fw_send(w, s, q);
		if (rc == MQIM_ENOSPC)
			refused++;
		else if (rc == MQIM_OK)
			ok_after_full++;
		else
			other++, fw_log("send %d: %s (not ENOSPC)", q, mqim_errname(rc));
	}
	fw_log("on the full disk: %d sends accepted, %d refused with ENOSPC, %d other errors",
	       ok_after_full, refused, other);
	fw_sleep(3000);   /* the client lives on a full disk for a while */
	assert_int_equal(unlink(filler), 0);
	fw_fault_end(w);
	fw_log("space freed");
	for (; q < n; q++)
		assert_int_equal(fw_send(w, s, q), MQIM_OK);
	for (int k = 20; k < 40; k++)
		assert_int_equal(fw_send(w, sg, k), MQIM_OK);
	pthread_mutex_lock(&w->mu);
	w->streams[s].next = n;
	w->streams[sg].next = 40;
	pthread_mutex_unlock(&w->mu);
	snprintf(note, sizeof note, "%d sends refused with ENOSPC, %d accepted on the full disk",
		 refused, ok_after_full);
	finish(w, &r, SETTLE_MS, note);
	assert_true(refused >= 1);
	assert_int_equal(other, 0);
	assert_int_equal(r.refused, refused);
	fw_assert_clean(&r);
	umount2(mnt, MNT_DETACH);
}

static void case_disk_full_receiver(struct fw *w)
{
	struct fw_result r;
	char mnt[300], filler[340], note[200];

	world_up(w, NULL);
	snprintf(mnt, sizeof mnt, "%s/bob-fs", w->tmp);
	mount_small(mnt, 8192);
	snprintf(w->peers[FW_BOB].dir, sizeof w->peers[FW_BOB].dir, "%s/bob", mnt);
	fw_stream_add(w, FW_ALICE, FW_BOB, 60, 0);
	fw_stream_add(w, FW_CAROL, FW_BOB, 60, 0);
	w->tmpl.resend_timeout_ms = 5000;
	peers_up(w, w->broker.port, 0);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	long filled = fill(filler);
	fw_log("file system of bob's data folder filled (%ld bytes of filler)", filled);
	fw_traffic_start(w, 3000, 0);
	fw_traffic_join(w);
	fw_sleep(4000);
	int errors;
	pthread_mutex_lock(&w->mu);
	errors = w->peers[FW_BOB].errors;
	pthread_mutex_unlock(&w->mu);
	assert_int_equal(unlink(filler), 0);
	fw_fault_end(w);
	fw_log("space freed; bob reported %d errors meanwhile", errors);
	snprintf(note, sizeof note, "receiver's disk full while 120 messages came; %d errors reported",
		 errors);
	finish(w, &r, 60000, note);
	assert_true(errors >= 1);
	fw_assert_clean(&r);
	umount2(mnt, MNT_DETACH);
}

/* ---- case 10: corrupt or truncated SQLite files ------------------------------- */

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	*len = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n)
		*len = (size_t)n;
	fclose(f);
	return buf;
}

static void write_all(const char *path, const unsigned char *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

enum corruption { C_HEADER, C_TRUNCATED, C_MIDDLE, C_ZERO, C_COUNT };
static const char *const corruption_name[] = { "garbage header", "truncated to half",
	"garbage page in the middle", "empty file" };

/* Write orig to path with corruption k. */
static void corrupt(const char *path, const unsigned char *orig, size_t len, enum corruption k)
{
	unsigned char *buf = malloc(len);
	memcpy(buf, orig, len);
	size_t out = len;
	switch (k) {
	case C_HEADER:
		for (size_t i = 0; i < 100 && i < len; i++)
			buf[i] = (unsigned char)(0xA5 ^ i);
		break;
	case C_TRUNCATED:
		out = len / 2;
		break;
	case C_MIDDLE:
		for (size_t i = len / 2 - len / 2 % 4096; i < len && i < len / 2 - len / 2 % 4096 + 4096; i++)
			buf[i] = (unsigned char)(i * 7);
		break;
	default:
		out = 0;
		break;
	}
	write_all(path, buf, out);
	free(buf);
}

static void rm_sidecars(const char *path)
{
	char p[512];
	snprintf(p, sizeof p, "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", path);
	unlink(p);
}

#define RAN_ON (-1000)   /* run_broker_once: still running at the deadline */

/* Run mosquitto with b's conf until it exits (at most timeout_ms, then it
 * is killed and RAN_ON returned); its stdout and stderr go to out.
 * Returns the exit status, or -signal when a signal ended it. */
static int run_broker_once(struct tbroker *b, const char *out, int timeout_ms)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		tbroker_preload_sanitizer();
		execlp("mosquitto", "mosquitto", "-c", b->conf_path, (char *)NULL);
		execl("/usr/sbin/mosquitto", "mosquitto", "-c", b->conf_path, (char *)NULL);
		_exit(127);
	}
	int64_t end = fw_now() + timeout_ms;
	int status = 0;
	for (;;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
		if (fw_now() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return RAN_ON;
		}
		fw_sleep(20);
	}
}

static bool file_has(const char *path, const char *needle)
{
	size_t len;
	unsigned char *buf = read_all(path, &len);
	bool yes = false;
	if (buf) {
		buf = realloc(buf, len + 1);
		buf[len] = '\0';
		yes = strstr((char *)buf, needle) != NULL;
	}
	free(buf);
	return yes;
}

static void show_logs(struct tbroker *b, const char *out)
{
	fw_sh("cat '%s' '%s' 2>/dev/null | sed 's/^/    | /' >&2", out, b->log_path);
}

/* Start the broker once on its store (orig, len) damaged with k: true
 * when it exits (no signal) with a message naming the file and leaves the
 * file as it was.  Its output goes to out. */
static bool start_damaged(struct fw *w, const unsigned char *orig, size_t len, enum corruption k,
			  const char *out)
{
	size_t blen, alen;
	corrupt(w->broker.db_path, orig, len, k);
	unsigned char *before = read_all(w->broker.db_path, &blen);
	unlink(w->broker.log_path);
	int rc = run_broker_once(&w->broker, out, 8000);
	unsigned char *after = read_all(w->broker.db_path, &alen);
	bool named = file_has(out, w->broker.db_path) || file_has(w->broker.log_path, w->broker.db_path);
	bool same = alen == blen && (blen == 0 || memcmp(before, after, blen) == 0);
	bool ok = rc > 0 && named && same;
	fw_log("broker store, %s: %s%d, message naming the file: %s, file unchanged: %s -> %s",
	       corruption_name[k], rc == RAN_ON ? "RAN ON with it" : rc < 0 ? "CRASHED, signal " :
	       "exit ", rc == RAN_ON ? 0 : rc < 0 ? -rc : rc, named ? "yes" : "no",
	       same ? "yes" : "no", ok ? "refused cleanly" : "NOT refused cleanly");
	if (!ok)
		show_logs(&w->broker, out);
	free(before);
	free(after);
	rm_sidecars(w->broker.db_path);
	return ok;
}

static void case_corrupt_broker(struct fw *w)
{
	struct fw_result r;
	char out[400], note[300], path[400];
	size_t len;
	int refused = 0, bad = 0;

	world_up(w, NULL);
	/* A store with some content (users, the group), closed cleanly. */
	assert_int_equal(tbroker_stop(&w->broker), 0);
	rm_sidecars(w->broker.db_path);
	unsigned char *orig = read_all(w->broker.db_path, &len);
	assert_non_null(orig);
	assert_true(len >= 8192);
	snprintf(out, sizeof out, "%s/once.log", w->tmp);
	for (int k = 0; k < C_COUNT; k++) {
		bool ok = start_damaged(w, orig, len, (enum corruption)k, out);
		refused += ok;
		bad += !ok;
	}
	/* The store back: the broker starts and everyone logs in. */
	write_all(w->broker.db_path, orig, len);
	free(orig);
	assert_int_equal(tbroker_start(&w->broker), 0);
	peers_up(w, w->broker.port, 0);
	int s = fw_stream_add(w, FW_ALICE, FW_BOB, 20, 1);
	for (int q = 0; q < 20; q++)
		assert_int_equal(fw_send(w, s, q), MQIM_OK);
	w->streams[s].next = 20;
	assert_true(fw_wait_settled(w, SETTLE_MS));
	for (int u = 0; u < FW_NUSERS; u++)
		fw_peer_close(w, u);

	/* Files that are not ours to refuse: the de-duplication window and
	 * Mosquitto's own persistence, truncated.  No crash, and say what. */
	assert_int_equal(tbroker_stop(&w->broker), 0);
	snprintf(path, sizeof path, "%s.dedup", w->broker.db_path);
	unsigned char *dd = read_all(path, &len);
	assert_non_null(dd);
	write_all(path, dd, len / 2 + 3);
	free(dd);
	unlink(w->broker.log_path);
	int rc_dd = run_broker_once(&w->broker, out, 3000);
	bool dd_said = file_has(w->broker.log_path, ".dedup is damaged or truncated");
	fw_log("truncated .dedup: %s; the log %s it", rc_dd == RAN_ON ? "broker ran" : "broker exited",
	       dd_said ? "mentions" : "does not mention");
	show_logs(&w->broker, out);
	snprintf(path, sizeof path, "%s/mosquitto.db", w->broker.dir);
	unsigned char *pdb = read_all(path, &len);
	int rc_p = 0;
	if (pdb && len > 0) {
		write_all(path, pdb, len / 2);
		unlink(w->broker.log_path);
		rc_p = run_broker_once(&w->broker, out, 3000);
		fw_log("truncated mosquitto.db: %s", rc_p == RAN_ON ? "broker ran" : "broker exited");
		show_logs(&w->broker, out);
	}
	free(pdb);
	snprintf(note, sizeof note, "%d/%d corrupt stores refused at start, named, left unchanged; "
		 "truncated .dedup: %s; truncated mosquitto.db: %s", refused, C_COUNT,
		 rc_dd == RAN_ON ? "starts" : "exits", rc_p == RAN_ON ? "starts" : "exits");
	memset(&r, 0, sizeof r);
	r.recover_ms = -1;
	fw_report(w, &r, note);
	assert_true(rc_dd == RAN_ON || rc_dd > 0);   /* no crash */
	assert_true(dd_said);                        /* and says so */
	assert_true(rc_p == RAN_ON || rc_p >= 0);
	assert_int_equal(bad, 0);
}

static int count_outbox(void *ctx, const struct mqim_outbox_entry *e)
{
	(void)e;
	(*(int *)ctx)++;
	return 0;
}

/* Fold path's -wal into the file and remove it. */
static void checkpoint(const char *path)
{
	sqlite3 *db = NULL;
	char wal[420];
	struct stat sb;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	snprintf(wal, sizeof wal, "%s-wal", path);
	assert_true(stat(wal, &sb) != 0 || sb.st_size == 0);
}

static void case_corrupt_client(struct fw *w)
{
	struct fw_result r;
	char path[400], note[200];
	size_t len, len2;
	int clear = 0, kept = 0, bad = 0;
	enum { QUEUED = 30 };

	world_up(w, NULL);
	int s = fw_stream_add(w, FW_ALICE, FW_BOB, QUEUED, 1);
	/* Alice writes offline: her outbox holds the messages. */
	assert_int_equal(fw_peer_open(w, FW_ALICE, w->broker.port, false), MQIM_OK);
	for (int q = 0; q < QUEUED; q++)
		assert_int_equal(fw_send(w, s, q), MQIM_OK);
	w->streams[s].next = QUEUED;
	fw_peer_close(w, FW_ALICE);
	/* Everything into the main file (mqim_close leaves a -wal behind). */
	snprintf(path, sizeof path, "%s/mqim.db", w->peers[FW_ALICE].dir);
	checkpoint(path);
	int listed0 = 0;
	assert_int_equal(fw_peer_open(w, FW_ALICE, w->broker.port, false), MQIM_OK);
	assert_true(mqim_outbox(w->peers[FW_ALICE].c, count_outbox, &listed0) >= 0);
	fw_peer_close(w, FW_ALICE);
	assert_int_equal(listed0, QUEUED);
	checkpoint(path);
	rm_sidecars(path);
	unsigned char *orig = read_all(path, &len);
	fw_log("alice's database: %zu bytes, %d messages in the outbox", len, listed0);
	assert_non_null(orig);
	for (int k = 0; k < C_COUNT; k++) {
		corrupt(path, orig, len, (enum corruption)k);
		unsigned char *before = read_all(path, &len2);
		size_t blen = len2;
		int rc = fw_peer_open(w, FW_ALICE, w->broker.port, false);
		int listed = -1, lrc = 0;
		if (rc == MQIM_OK) {
			listed = 0;
			lrc = mqim_outbox(w->peers[FW_ALICE].c, count_outbox, &listed);
			fw_peer_close(w, FW_ALICE);
		}
		rm_sidecars(path);
		unsigned char *after = read_all(path, &len2);
		bool same = len2 == blen && (blen == 0 || memcmp(before, after, blen) == 0);
		fw_log("client outbox, %s: mqim_create %s, outbox listing %d (%s), file unchanged: %s",
		       corruption_name[k], mqim_errname(rc), listed, lrc < 0 ? mqim_errname(lrc) : "ok",
		       same ? "yes" : "no");
		/* Refused with ECORRUPT and left alone, or opened with every
		 * queued message still listed, or a listing that says why not;
		 * anything else is a silent reset. */
		bool ok = rc == MQIM_OK ? (lrc < 0 || listed == QUEUED) : (rc == MQIM_ECORRUPT && same);
		if (!ok)
			fw_log("  -> NOT a clear error: %s", rc == MQIM_OK ? "the queued messages are gone, "
			       "no error" : "refused with another error or the file was changed");
		bad += !ok;
		kept += rc == MQIM_OK && lrc >= 0 && listed == QUEUED;
		clear += rc == MQIM_ECORRUPT || lrc == MQIM_ECORRUPT;
		free(before);
		free(after);
	}
	/* The file back: the queued messages go out, once (to recipients
	 * already logged in: see case 8's offline_new). */
	write_all(path, orig, len);
	free(orig);
	peers_up(w, w->broker.port, ~(1u << FW_ALICE));
	peers_up(w, w->broker.port, 1u << FW_ALICE);
	fw_fault_end(w);
	snprintf(note, sizeof note, "%d/%d corrupt outboxes gave ECORRUPT, %d opened intact, %d "
		 "silently reset; then the file restored", clear, C_COUNT, kept, bad);
	finish(w, &r, SETTLE_MS, note);
	assert_int_equal(bad, 0);
	fw_assert_clean(&r);
}

/* ---- case 11: 5,000 messages for an offline recipient ------------------------- */

static int count_state(struct fw *w, int s, int st)
{
	int n = 0;
	pthread_mutex_lock(&w->mu);
	for (int q = 0; q < w->streams[s].n; q++)
		n += w->streams[s].state[q] == st;
	pthread_mutex_unlock(&w->mu);
	return n;
}

static void case_queue_5000(struct fw *w)
{
	struct fw_result r;
	enum { N = 5000 };

	world_up(w, "max_queued_messages 10000\n");
	w->tmpl.resend_timeout_ms = 90000;
	peers_up(w, w->broker.port, (1u << FW_ALICE) | (1u << FW_BOB));
	fw_peer_close(w, FW_BOB);
	int s = fw_stream_add(w, FW_ALICE, FW_BOB, N, 0);
	fw_traffic_start(w, 0, 0);
	fw_traffic_join(w);
	int64_t end = fw_now() + 90000;
	while (count_state(w, s, MQIM_MSG_SENT) < N && fw_now() < end)
		fw_sleep(100);
	fw_log("%d of %d messages taken by the broker while bob is away", count_state(w, s, MQIM_MSG_SENT), N);
	assert_int_equal(count_state(w, s, MQIM_MSG_SENT), N);
	fw_fault_end(w);
	assert_int_equal(fw_peer_open(w, FW_BOB, w->broker.port, true), MQIM_OK);
	finish(w, &r, SETTLE_MS, "max_queued_messages 10000; bob back after the send");
	fw_assert_clean(&r);
}

static void case_queue_default(struct fw *w)
{
	struct fw_result r;
	char note[240];
	enum { N = 5000 };

	/* Mosquitto's defaults: 1,000 queued messages per offline client. */
	world_up(w, "max_queued_messages 1000\n");
	w->tmpl.resend_timeout_ms = 3000;
	w->tmpl.max_resends = 1;
	peers_up(w, w->broker.port, (1u << FW_ALICE) | (1u << FW_BOB));
	fw_peer_close(w, FW_BOB);
	int s = fw_stream_add(w, FW_ALICE, FW_BOB, N, 0);
	fw_traffic_start(w, 0, 0);
	fw_traffic_join(w);
	/* Let every message use its resend budget while bob is away. */
	int64_t end = fw_now() + 90000;
	while (count_state(w, s, MQIM_MSG_FAILED) < N && fw_now() < end)
		fw_sleep(200);
	int failed_away = count_state(w, s, MQIM_MSG_FAILED);
	fw_log("%d of %d messages FAILED while bob was away", failed_away, N);
	fw_fault_end(w);
	assert_int_equal(fw_peer_open(w, FW_BOB, w->broker.port, true), MQIM_OK);
	fw_wait_settled(w, 10000);
	/* mqim_retry() on ten of the lost ones, bob online now. */
	int retried = 0, before = 0;
	pthread_mutex_lock(&w->mu);
	for (int q = 0; q < N; q++)
		before += w->streams[s].count[FW_BOB][q] > 0;
	pthread_mutex_unlock(&w->mu);
	for (int q = N - 1; q >= 0 && retried < 10; q--) {
		uint8_t id[16];
		pthread_mutex_lock(&w->mu);
		bool lost = w->streams[s].count[FW_BOB][q] == 0;
		memcpy(id, w->streams[s].id[q], 16);
		pthread_mutex_unlock(&w->mu);
		if (lost && mqim_retry(w->peers[FW_ALICE].c, id) == MQIM_OK)
			retried++;
	}
	fw_sleep(5000);
	fw_tally(w, &r);
	int failed = count_state(w, s, MQIM_MSG_FAILED);
	snprintf(note, sizeof note, "Mosquitto's default queue: %d delivered, %d lost and reported "
		 "FAILED to the sender (documented limit); %d retried with bob online: %d arrived",
		 r.delivered, failed, retried, r.delivered - before);
	fw_report(w, &r, note);
	/* Not everything arrives; what does arrive arrives once, and nothing
	 * is lost silently: the sender holds every missing one as FAILED.
	 * mqim_retry() brings one back: its publish is a marked resend, which
	 * the broker delivers inside its de-duplication window (finding 2). */
	assert_int_equal(r.dups, 0);
	assert_int_equal(r.unexpected, 0);
	assert_true(r.lost <= failed + retried);
	assert_true(r.delivered >= 1000);
	assert_int_equal(retried, 10);
	assert_int_equal(r.delivered - before, retried);
}

/* ---- case 12: a network switch --------------------------------------------------- */

static void case_takeover(struct fw *w)
{
	struct fw_result r;
	struct proxy_stats ps;
	char note[200];

	world_up(w, NULL);
	struct proxy *p = proxy_new(w->broker.port, fw_seed());
	assert_non_null(p);
	fw_streams_standard(w, 150, 40);
	peers_up(w, w->broker.port, ~(1u << FW_BOB));
	/* Bob's keepalive is long: the broker keeps the old link for 45 s. */
	w->tmpl.keepalive_s = 30;
	w->tmpl.ack_timeout_ms = 3000;
	assert_int_equal(fw_peer_open(w, FW_BOB, proxy_port(p), true), MQIM_OK);
	assert_true(fw_wait_connected(w, CONNECT_MS));
	assert_true(fw_warmup(w, CONNECT_MS));
	assert_int_equal(mqim_watch_presence(w->peers[FW_ALICE].c, "bob"), MQIM_OK);
	int64_t t0 = fw_now();
	fw_traffic_start(w, 8000, 0);
	sleep_until(t0, 3000);
	/* The switch: new connections to the proxy's port now go straight to
	 * the broker (NAT), the old one goes silent without closing. */
	assert_int_equal(fw_sh("iptables -w -t nat -A OUTPUT -p tcp -d 127.0.0.1 --dport %d "
			       "-j REDIRECT --to-ports %d", proxy_port(p), w->broker.port), 0);
	int before = peer_losses(w, FW_BOB);
	proxy_silence(p);
	fw_fault_end(w);
	fw_log("bob's network switched: old link half-open, new links direct");
	settle(w, &r, SETTLE_MS);
	int takeovers = tbroker_log_count(&w->broker, "already connected, closing old connection");
	proxy_stats(p, &ps);
	int presence;
	pthread_mutex_lock(&w->mu);
	presence = w->peers[FW_ALICE].presence[FW_BOB];
	pthread_mutex_unlock(&w->mu);
	int detected = peer_losses(w, FW_BOB) - before;
	snprintf(note, sizeof note, "bob's old link silent, %d reconnect(s) via the new one, %d "
		 "session take-over(s) at the broker; bob's presence at the end: %s", detected, takeovers,
		 presence == 1 ? "online" : "not online");
	fw_report(w, &r, note);
	fw_sh("iptables -w -t nat -F OUTPUT");
	proxy_free(p);
	assert_true(detected >= 1);
	assert_int_equal(ps.accepted, 1);   /* the new link did not use the proxy */
	assert_true(takeovers >= 1);        /* ... and found the old one still there */
	assert_int_equal(presence, 1);
	fw_assert_clean(&r);
}

/* ---- case 13: graceful restart and reloads under load ----------------------------- */

/* True when raw receives a message whose payload holds id within ms. */
static bool raw_sees(struct tclient *raw, const uint8_t id[16], int ms)
{
	int64_t end = fw_now() + ms;
	struct tmsg m;
	while (fw_now() < end) {
		if (tclient_recv(raw, &m, 100) != 1)
			continue;
		bool hit = m.len >= 16 && memmem(m.payload, m.len, id, 16) != NULL;
		tmsg_free(&m);
		if (hit)
			return true;
	}
	return false;
}

static struct tclient *raw_login(struct fw *w, const char *cid, const char *user, const char *sub)
{
	struct tclient *c = tclient_login(w->broker.port, cid, user, FW_PW);
	assert_non_null(c);
	if (sub)
		assert_true(tclient_subscribe(c, sub, 1) >= 0 && tclient_subscribe(c, sub, 1) <= 2);
	return c;
}

/* Publish the envelope probe (len bytes, its id) as carol to erin's inbox,
 * both raw clients; true when erin's raw subscriber got it within ms. */
static bool probe_erin(struct fw *w, const void *probe, size_t len, const uint8_t id[16], int ms)
{
	struct tclient *carol = raw_login(w, "carol/raw", "carol", NULL);
	struct tclient *erin = raw_login(w, "erin/raw", "erin", "im/u/erin");
	assert_int_equal(tclient_publish(carol, "im/u/erin", probe, len, 1, false), 0);
	bool seen = raw_sees(erin, id, ms);
	tclient_free(carol);
	tclient_free(erin);
	return seen;
}

static void case_graceful(struct fw *w)
{
	struct fw_result r;
	char note[200];
	uint8_t id[16], id2[16];
	void *probe = NULL, *probe2 = NULL;

	world_up(w, NULL);
	peers_up(w, w->broker.port, 0);
	fw_streams_standard(w, 200, 50);
	int64_t t0 = fw_now();
	fw_traffic_start(w, 12000, 0);

	/* Ten reloads under load: nobody is disconnected. */
	sleep_until(t0, 1000);
	int before = total_losses(w);
	for (int k = 0; k < 10; k++) {
		assert_int_equal(tbroker_sighup(&w->broker), 0);
		fw_sleep(300);
	}
	int hup_losses = total_losses(w) - before;
	fw_log("10 SIGHUPs done; %d link losses meanwhile", hup_losses);

	/* A message seen by a raw subscriber of erin's inbox, a graceful
	 * restart in the middle of the traffic, then the same message again
	 * is acknowledged and delivered to nobody; a new one goes through. */
	size_t plen = tenv_build(&probe, "msg", "carol", "erin", "probe before", id);
	size_t plen2 = tenv_build(&probe2, "msg", "carol", "erin", "probe after", id2);
	assert_true(plen > 0 && plen2 > 0);
	assert_true(probe_erin(w, probe, plen, id, 5000));
	sleep_until(t0, 6000);
	assert_int_equal(tbroker_stop(&w->broker), 0);
	fw_log("broker stopped with SIGTERM");
	assert_int_equal(tbroker_start(&w->broker), 0);
	fw_fault_end(w);
	fw_log("broker started again");
	assert_true(tbroker_log_wait(&w->broker, "mqim: loaded", 10000));
	bool dup_seen = probe_erin(w, probe, plen, id, 2000);
	bool new_seen = probe_erin(w, probe2, plen2, id2, 5000);
	free(probe);
	free(probe2);
	fw_log("after the restart: duplicate delivered: %s, new message delivered: %s",
	       dup_seen ? "YES" : "no", new_seen ? "yes" : "NO");

	snprintf(note, sizeof note, "10 SIGHUPs (%d link losses), 1 SIGTERM restart; dedup window "
		 "kept: %s", hup_losses, dup_seen ? "no" : "yes");
	finish(w, &r, SETTLE_MS, note);
	assert_int_equal(hup_losses, 0);
	assert_false(dup_seen);
	assert_true(new_seen);
	assert_true(fw_broker_log_clean(w));
	fw_assert_clean(&r);
}

/* ---- the table of cases ---------------------------------------------------------------- */

static const struct fcase cases[] = {
	{ "kill_persist", "1 broker SIGKILL x3 mid-stream, persistence on", case_kill_persist, true, 300 },
	{ "kill_nopersist", "1 broker SIGKILL x3 mid-stream, persistence off", case_kill_nopersist, true, 300 },
	{ "sigstop", "2 broker SIGSTOP for 2x keepalive, SIGCONT", case_sigstop, false, 240 },
	{ "proxy_cut", "3 proxy cuts every connection at random, TCP resets", case_proxy_cut, true, 300 },
	{ "proxy_silent", "4 proxy goes silent twice (dead NAT mapping), then the link drops", case_proxy_silent, false, 240 },
	{ "loss_delay", "5 10% loss each way + 200+-100 ms delay, split writes", case_loss_delay, false, 300 },
	{ "sender_killed", "6 sending client SIGKILLed mid-send, restarted", case_sender_killed, true, 240 },
	{ "receiver_killed", "7 receiving client SIGKILLed before its receipts", case_receiver_killed, false, 240 },
	{ "offline", "8 recipients offline for the whole send", case_offline, true, 240 },
	{ "offline_new", "8 recipient who never logged in before, offline for the send", case_offline_new, true, 180 },
	{ "disk_full_sender", "9 sender's data folder on a full file system", case_disk_full_sender, true, 240 },
	{ "disk_full_receiver", "9 receiver's data folder on a full file system", case_disk_full_receiver, true, 180 },
	{ "corrupt_broker", "10 corrupt / truncated broker store", case_corrupt_broker, true, 180 },
	{ "corrupt_client", "10 corrupt / truncated client outbox", case_corrupt_client, true, 180 },
	{ "queue_5000", "11 5,000 to an offline recipient (max_queued_messages 10000)", case_queue_5000, false, 300 },
	{ "queue_default", "11 5,000 to an offline recipient, Mosquitto's default queue (1,000)", case_queue_default, false, 240 },
	{ "takeover", "12 same client id from a new link, old one half-open", case_takeover, false, 240 },
	{ "graceful", "13 SIGHUP x10 and SIGTERM restart under load", case_graceful, false, 240 },
};
#define NCASES (sizeof cases / sizeof cases[0])

static const struct fcase *find_case(const char *name)
{
	for (size_t i = 0; i < NCASES; i++)
		if (strcmp(cases[i].name, name) == 0)
			return &cases[i];
	return NULL;
}

/* ---- the case process --------------------------------------------------------------- */

static void case_entry(void **state)
{
	const struct fcase *fc = *state;
	fc->fn(&W);
}

static int case_teardown(void **state)
{
	(void)state;
	fw_cleanup(&W);
	return 0;
}

static int run_case_process(const char *name)
{
	const struct fcase *fc = find_case(name);
	if (!fc) {
		fprintf(stderr, "test_faults: no case %s\n", name);
		return 2;
	}
	if (fw_sandbox_enter() != 0)
		return 2;
	const char *size = getenv("MQIM_FAULTS_SIZE");
	small = size && strcmp(size, "small") == 0;
	fw_log("case %s: %s (seed %llu%s)", fc->name, fc->title, (unsigned long long)fw_seed(),
	       small ? ", small" : "");
	/* The runner counts the tests; this process reports in subunit form
	 * so that its own summary is not counted twice. */
	cmocka_set_message_output(CM_OUTPUT_SUBUNIT);
	struct CMUnitTest t[] = {
		cmocka_unit_test_prestate_setup_teardown(case_entry, NULL, case_teardown, (void *)fc),
	};
	t[0].name = fc->name;
	return cmocka_run_group_tests_name(fc->name, t, NULL, NULL);
}

/* ---- child roles (cases 6 and 7) ------------------------------------------------------ */

static int run_child(int argc, char **argv)
{
	struct fw w;
	if (argc < 6)
		return 2;
	const char *role = argv[2], *dir = argv[4], *journal = argv[5];
	int port = atoi(argv[3]);
	bool sender = strcmp(role, "sender") == 0;
	int user = sender ? FW_ALICE : FW_BOB;

	if (fw_init(&w, false, NULL) != 0)
		return 3;
	if (sender) {
		fw_streams_standard(&w, 200, 50);
	} else {
		receiver_streams(&w, 200, 50);
		/* Keep the link whose replies never get out: a long ack
		 * timeout and keepalive, so that it stays up until the kill. */
		w.tmpl.ack_timeout_ms = 120000;
		w.tmpl.keepalive_s = 120;
	}
	snprintf(w.peers[user].dir, sizeof w.peers[user].dir, "%s", dir);
	if (fw_journal_open(&w, journal) != 0 || fw_peer_open(&w, user, port, true) != MQIM_OK)
		return 4;
	if (!fw_wait_state(&w, user, MQIM_STATE_CONNECTED, CONNECT_MS))
		return 5;
	if (sender)
		fw_traffic_start(&w, 6000, 1u << FW_ALICE);
	for (;;)
		fw_sleep(1000);   /* until the SIGKILL */
}

/* ---- the runner --------------------------------------------------------------------------- */

struct row {
	const struct fcase *fc;
	bool ran, passed;
	char status[64];
	int sent, refused, expected, delivered, dups, lost, unexpected, no_rcpt, outbox;
	long long recover_ms;
	char note[300];
};

static struct row rows[NCASES];
static size_t nrows;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void read_row(struct row *rw, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[512];
	if (!f)
		return;
	/* The last row a case wrote is its verdict. */
	while (fgets(line, sizeof line, f)) {
		char *bar = strchr(line, '|');
		if (!bar)
			continue;
		*bar = '\0';
		char *nl = strchr(bar + 1, '\n');
		if (nl)
			*nl = '\0';
		if (sscanf(line, "%d %d %d %d %d %d %d %d %d %lld", &rw->sent, &rw->refused,
			   &rw->expected, &rw->delivered, &rw->dups, &rw->lost, &rw->unexpected,
			   &rw->no_rcpt, &rw->outbox, &rw->recover_ms) == 10) {
			rw->ran = true;
			snprintf(rw->note, sizeof rw->note, "%s", bar + 1);
		}
	}
	fclose(f);
}

static void run_one(void **state)
{
	const struct fcase *fc = *state;
	struct row *rw = &rows[nrows++];
	char dir[300], rowpath[340];
	const char *base = getenv("TMPDIR");

	memset(rw, 0, sizeof *rw);
	rw->fc = fc;
	snprintf(dir, sizeof dir, "%s/mqim-faults-%s-XXXXXX", base && *base ? base : "/tmp", fc->name);
	assert_non_null(mkdtemp(dir));
	snprintf(rowpath, sizeof rowpath, "%s/row", dir);
	fflush(NULL);
	int64_t t0 = fw_now();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setpgid(0, 0);
		setenv("TMPDIR", dir, 1);
		setenv("MQIM_FAULTS_ROW", rowpath, 1);
		execl("/proc/self/exe", "test_faults", "--case", fc->name, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	int status = 0;
	bool timed_out = false;
	for (;;) {
		pid_t got = waitpid(pid, &status, WNOHANG);
		if (got == pid)
			break;
		if (fw_now() - t0 > (int64_t)fc->timeout_s * 1000) {
			timed_out = true;
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		fw_sleep(50);
	}
	kill(-pid, SIGKILL);   /* anything of the case's group still there */
	read_row(rw, rowpath);
	if (timed_out)
		snprintf(rw->status, sizeof rw->status, "TIMEOUT (%d s)", fc->timeout_s);
	else if (WIFSIGNALED(status))
		snprintf(rw->status, sizeof rw->status, "CRASH (signal %d)", WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		snprintf(rw->status, sizeof rw->status, "FAIL");
	else
		snprintf(rw->status, sizeof rw->status, "pass");
	rw->passed = !timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
	fprintf(stderr, "--- case %s: %s (%.0f s)\n", fc->name, rw->status, (double)(fw_now() - t0) / 1000.0);
	if (!getenv("MQIM_KEEP_TMP"))
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	if (!rw->passed)
		fail_msg("case %s: %s", fc->name, rw->status);
}

static void fmt_recover(const struct row *rw, char *out, size_t len)
{
	if (rw->ran && rw->recover_ms >= 0)
		snprintf(out, len, "%.1f s", (double)rw->recover_ms / 1000.0);
	else
		snprintf(out, len, "-");
}

static void print_table(FILE *f, bool markdown)
{
	char rec[32];
	if (markdown) {
		fprintf(f, "| case | sent | deliveries expected | delivered | duplicates | lost | "
			"no receipt | outbox left | time to recover | result | notes |\n");
		fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
	} else {
		fprintf(f, "\n%-62s %6s %6s %6s %5s %5s %5s %5s %9s  %s\n", "case", "sent", "expect",
			"deliv", "dups", "lost", "norcp", "outbx", "recover", "result");
	}
	for (size_t i = 0; i < nrows; i++) {
		const struct row *rw = &rows[i];
		fmt_recover(rw, rec, sizeof rec);
		if (markdown && rw->ran)
			fprintf(f, "| %s | %d | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n",
				rw->fc->title, rw->sent, rw->expected, rw->delivered, rw->dups, rw->lost,
				rw->no_rcpt, rw->outbox, rec, rw->status, rw->note);
		else if (markdown)
			fprintf(f, "| %s | - | - | - | - | - | - | - | - | %s | no result |\n", rw->fc->title,
				rw->status);
		else if (rw->ran)
			fprintf(f, "%-62.62s %6d %6d %6d %5d %5d %5d %5d %9s  %s\n", rw->fc->title, rw->sent,
				rw->expected, rw->delivered, rw->dups, rw->lost, rw->no_rcpt, rw->outbox, rec,
				rw->status);
		else
			fprintf(f, "%-62.62s %6s %6s %6s %5s %5s %5s %5s %9s  %s\n", rw->fc->title, "-", "-",
				"-", "-", "-", "-", "-", "-", rw->status);
	}
	if (!markdown) {
		for (size_t i = 0; i < nrows; i++)
			if (rows[i].ran && rows[i].note[0])
				fprintf(f, "  %-18s %s\n", rows[i].fc->name, rows[i].note);
	}
}

static bool selected(const struct fcase *fc, const char *sel)
{
	if (!sel || !*sel || strcmp(sel, "full") == 0)
		return true;
	if (strcmp(sel, "fast") == 0)
		return fc->fast;
	size_t n = strlen(fc->name);
	for (const char *p = sel; (p = strstr(p, fc->name)); p += n)
		if ((p == sel || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "--case") == 0)
		return run_case_process(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "--child") == 0)
		return run_child(argc, argv);

	const char *sel = argc >= 2 ? argv[1] : getenv("MQIM_FAULTS");
	if (sel && strcmp(sel, "fast") == 0)
		setenv("MQIM_FAULTS_SIZE", "small", 1);
	struct CMUnitTest tests[NCASES];
	size_t n = 0;
	for (size_t i = 0; i < NCASES; i++) {
		if (!selected(&cases[i], sel))
			continue;
		tests[n] = (struct CMUnitTest)cmocka_unit_test_prestate(run_one, (void *)&cases[i]);
		tests[n].name = cases[i].name;
		n++;
	}
	if (n == 0) {
		fprintf(stderr, "test_faults: no case matches \"%s\"\n", sel);
		return 2;
	}
	fprintf(stderr, "fault suite: %zu case%s, seed %llu (MQIM_FAULTS_SEED to repeat)\n", n,
		n > 1 ? "s" : "", (unsigned long long)fw_seed());
	char seed[32];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)fw_seed());
	setenv("MQIM_FAULTS_SEED", seed, 0);
	int rc = _cmocka_run_group_tests("faults", tests, n, NULL, NULL);
	print_table(stdout, false);
	const char *table = getenv("MQIM_FAULTS_TABLE");
	if (table && *table) {
		FILE *f = fopen(table, "w");
		if (f) {
			print_table(f, true);
			fclose(f);
		}
	}
	return rc;
}
