/* fault.c - the fault suite's world; see fault.h.
 *
 * State: everything lives in the struct fw of the case (one per process),
 * guarded by w->mu; the only globals are the run's seed and start time,
 * set once from the case thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fault.h"

#define MAP_CAP (1u << 16)
#define REFRESH_MS 2000
#define QUIET_MS 1000
#define MAX_ERROR_LOGS 20

const char *const fw_user[FW_NUSERS] = { "alice", "bob", "carol", "dave", "erin" };

static int64_t run_t0;

/* ---- small helpers ------------------------------------------------------- */

int64_t fw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fw_sleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void fw_log(const char *fmt, ...)
{
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (!run_t0)
		run_t0 = fw_now();
	int64_t t = fw_now() - run_t0;
	fprintf(stderr, "[%3d.%03ds] %s\n", (int)(t / 1000), (int)(t % 1000), line);
}

int fw_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	fflush(NULL);
	int st = system(cmd);
	int rc = st == -1 ? -1 : (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	fw_log("$ %s%s", cmd, rc ? " (failed)" : "");
	return rc;
}

uint64_t fw_seed(void)
{
	static uint64_t seed;
	if (!seed) {
		const char *s = getenv("MQIM_FAULTS_SEED");
		seed = s && *s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
		if (!seed)
			seed = 1;
	}
	return seed;
}

int fw_rand(struct fw *w, int lo, int hi)
{
	pthread_mutex_lock(&w->mu);
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	uint64_t r = w->rng * 2685821657736338717ULL;
	pthread_mutex_unlock(&w->mu);
	return hi <= lo ? lo : lo + (int)(r % (uint64_t)(hi - lo + 1));
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void hex16(const uint8_t id[16], char out[33])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 16; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[32] = '\0';
}

static int unhex16(const char *s, uint8_t id[16])
{
	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		id[i] = (uint8_t)v;
	}
	return 0;
}

/* ---- the sandbox ------------------------------------------------------------ */

int fw_sandbox_enter(void)
{
	if (unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
		fprintf(stderr, "fault: unshare(NEWNET|NEWNS): %s (the suite needs root)\n",
			strerror(errno));
		return -1;
	}
	/* Mounts made from now on stay in this namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
		fprintf(stderr, "fault: making / private: %s\n", strerror(errno));
		return -1;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
	int rc = fd < 0 ? -1 : ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	if (fd >= 0)
		close(fd);
	if (rc != 0) {
		fprintf(stderr, "fault: bringing lo up: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- the id map ------------------------------------------------------------------ */

static unsigned map_hash(const uint8_t id[16])
{
	uint64_t h = 0;
	for (int i = 0; i < 16; i++)
		h = (h ^ id[i]) * 1099511628211ULL;
	return (unsigned)(h ^ (h >> 32));
}

/* Under w->mu. */
static void map_put(struct fw *w, const uint8_t id[16], int s, int seq)
{
	unsigned i = map_hash(id) & (w->map_cap - 1);
	for (unsigned k = 0; k < w->map_cap; k++, i = (i + 1) & (w->map_cap - 1)) {
		struct fw_slot *sl = &w->map[i];
		if (!sl->used || memcmp(sl->id, id, 16) == 0) {
			memcpy(sl->id, id, 16);
			sl->stream = s;
			sl->seq = seq;
			sl->used = true;
			return;
		}
	}
	fw_log("fault: the id map is full");
}

/* Under w->mu. */
static struct fw_slot *map_get(struct fw *w, const uint8_t id[16])
{
	unsigned i = map_hash(id) & (w->map_cap - 1);
	for (unsigned k = 0; k < w->map_cap; k++, i = (i + 1) & (w->map_cap - 1)) {
		struct fw_slot *sl = &w->map[i];
		if (!sl->used)
			return NULL;
		if (memcmp(sl->id, id, 16) == 0)
			return sl;
	}
	return NULL;
}

/* ---- journal ------------------------------------------------------------------------ */

static void journal(struct fw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void journal(struct fw *w, const char *fmt, ...)
{
	char line[160];
	if (w->journal_fd < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One write per record: a SIGKILL leaves whole lines (O_APPEND). */
	if (n > 0 && write(w->journal_fd, line, (size_t)n) != n)
		fw_log("fault: journal write failed: %s", strerror(errno));
}

int fw_journal_open(struct fw *w, const char *path)
{
	w->journal_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	return w->journal_fd >= 0 ? 0 : -1;
}

int fw_journal_count(const char *path, char kind)
{
	FILE *f = fopen(path, "r");
	char line[200];
	int n = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		n += line[0] == kind && strchr(line, '\n') != NULL;
	fclose(f);
	return n;
}

/* Recipients of stream st into out; returns how many. */
static int recipients(const struct fw_stream *st, int out[FW_NUSERS])
{
	int n = 0;
	for (int u = 0; u < FW_NUSERS; u++)
		if (st->to == FW_TO_GROUP ? u != st->from : u == st->to)
			out[n++] = u;
	return n;
}

/* Under w->mu: a delivery of (s, seq) to user u with id. */
static void count_delivery(struct fw *w, int s, int seq, int u, const uint8_t id[16])
{
	struct fw_stream *st = &w->streams[s];
	if (st->count[u][seq] < 65535)
		st->count[u][seq]++;
	if (!st->rid_set[seq]) {
		memcpy(st->rid[seq], id, 16);
		st->rid_set[seq] = 1;
		if (st->sent[seq] == FW_MAYBE)
			map_put(w, id, s, seq);
	}
}

int fw_journal_load(struct fw *w, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[200], hex[40];
	int n = 0;
	if (!f)
		return -1;
	pthread_mutex_lock(&w->mu);
	unsigned char *intent[FW_MAX_STREAMS] = { 0 };
	for (int s = 0; s < w->nstreams; s++)
		intent[s] = calloc((size_t)w->streams[s].n, 1);
	while (fgets(line, sizeof line, f)) {
		int s = -1, q = -1, u = -1, rc = 0;
		uint8_t id[16];
		if (!strchr(line, '\n'))
			continue;   /* a torn last line */
		n++;
		switch (line[0]) {
		case 'I':
			if (sscanf(line, "I %d %d", &s, &q) == 2 && s >= 0 && s < w->nstreams &&
			    q >= 0 && q < w->streams[s].n) {
				intent[s][q] = 1;
				if (w->streams[s].next < q + 1)
					w->streams[s].next = q + 1;
			}
			break;
		case 'S':
			if (sscanf(line, "S %d %d %39s", &s, &q, hex) == 3 && s >= 0 && s < w->nstreams &&
			    q >= 0 && q < w->streams[s].n && unhex16(hex, id) == 0) {
				w->streams[s].sent[q] = FW_ACCEPTED;
				memcpy(w->streams[s].id[q], id, 16);
				map_put(w, id, s, q);
			}
			break;
		case 'F':
			if (sscanf(line, "F %d %d %d", &s, &q, &rc) == 3 && s >= 0 && s < w->nstreams &&
			    q >= 0 && q < w->streams[s].n) {
				w->streams[s].sent[q] = FW_REFUSED;
				w->streams[s].err[q] = rc;
			}
			break;
		case 'R':
			if (sscanf(line, "R %d %d %d %39s", &s, &q, &u, hex) == 4 && s >= 0 &&
			    s < w->nstreams && q >= 0 && q < w->streams[s].n && u >= 0 && u < FW_NUSERS &&
			    unhex16(hex, id) == 0)
				count_delivery(w, s, q, u, id);
			break;
		default:
			break;
		}
	}
	fclose(f);
	/* A send begun and never answered: the process died inside it. */
	for (int s = 0; s < w->nstreams; s++) {
		struct fw_stream *st = &w->streams[s];
		for (int q = 0; q < st->n; q++) {
			if (intent[s][q] && st->sent[q] == FW_NOT_SENT) {
				st->sent[q] = FW_MAYBE;
				if (st->rid_set[q])
					map_put(w, st->rid[q], s, q);
			}
		}
		free(intent[s]);
	}
	pthread_mutex_unlock(&w->mu);
	return n;
}

/* ---- callbacks (library threads) ------------------------------------------------------ */

static void on_state(mqim_client *c, enum mqim_state st, int err, void *ud)
{
	struct fw_peer *p = ud;
	struct fw *w = p->w;
	(void)c;
	pthread_mutex_lock(&w->mu);
	if (st == MQIM_STATE_WAITING && p->state == MQIM_STATE_CONNECTING)
		p->failed_connects++;
	p->state = st;
	if (st == MQIM_STATE_CONNECTED)
		p->connects++;
	if (st == MQIM_STATE_WAITING)
		p->losses++;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (st == MQIM_STATE_CONNECTED)
		journal(w, "C %d\n", p->user);
	if (getenv("MQIM_FAULTS_VERBOSE") || (st != MQIM_STATE_CONNECTED && st != MQIM_STATE_WAITING &&
					      st != MQIM_STATE_CONNECTING))
		fw_log("%s: %s%s%s", fw_user[p->user], mqim_state_name(st), err ? " " : "",
		       err ? mqim_errname(err) : "");
}

static void on_message(mqim_client *c, const struct mqim_message *m, void *ud)
{
	struct fw_peer *p = ud;
	struct fw *w = p->w;
	int s = -1, q = -1;
	char hex[33];
	(void)c;
	if (strcmp(m->kind, "msg") != 0)
		return;
	pthread_mutex_lock(&w->mu);
	if (strncmp(m->body, "probe", 5) == 0) {
		p->probes++;
		p->probes_group += m->is_group;
	} else if (sscanf(m->body, "fw %d %d", &s, &q) == 2 && s >= 0 && s < w->nstreams &&
		   q >= 0 && q < w->streams[s].n &&
		   strcmp(m->from, fw_user[w->streams[s].from]) == 0 &&
		   (w->streams[s].to == FW_TO_GROUP ? m->is_group && strcmp(m->to, FW_GROUP) == 0
						    : !m->is_group && p->user == w->streams[s].to)) {
		count_delivery(w, s, q, p->user, m->id);
	} else {
		w->unexpected++;
		s = -1;
		fw_log("%s: unexpected message from %s to %s: %.40s", fw_user[p->user], m->from,
		       m->to, (const char *)m->body);
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (s >= 0) {
		hex16(m->id, hex);
		journal(w, "R %d %d %d %s\n", s, q, p->user, hex);
	}
}

/* Under w->mu. */
static void set_state(struct fw *w, int s, int seq, int st)
{
	unsigned char *cur = &w->streams[s].state[seq];
	/* A late SENT never hides a DELIVERED of another instance. */
	if (!(st == MQIM_MSG_SENT && (*cur == MQIM_MSG_DELIVERED || *cur == MQIM_MSG_READ)))
		*cur = (unsigned char)st;
}

static void on_msg_state(mqim_client *c, const uint8_t id[16], enum mqim_msg_state st, int err,
			 void *ud)
{
	struct fw_peer *p = ud;
	struct fw *w = p->w;
	(void)c;
	(void)err;
	pthread_mutex_lock(&w->mu);
	struct fw_slot *sl = map_get(w, id);
	if (sl) {
		set_state(w, sl->stream, sl->seq, st);
	} else {
		/* mqim_send() has not returned the id yet: keep it for fw_send(). */
		struct fw_orphan *o = NULL;
		for (size_t i = 0; i < sizeof w->orphans / sizeof w->orphans[0] && !o; i++)
			if (!w->orphans[i].used || memcmp(w->orphans[i].id, id, 16) == 0)
				o = &w->orphans[i];
		if (o) {
			memcpy(o->id, id, 16);
			o->state = st;
			o->used = true;
		} else {
			fw_log("fault: too many early message states");
		}
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_presence(mqim_client *c, const char *user, bool online, uint64_t bts, void *ud)
{
	struct fw_peer *p = ud;
	struct fw *w = p->w;
	(void)c;
	(void)bts;
	pthread_mutex_lock(&w->mu);
	for (int u = 0; u < FW_NUSERS; u++)
		if (strcmp(user, fw_user[u]) == 0)
			p->presence[u] = online;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void on_error(mqim_client *c, int err, const char *what, void *ud)
{
	struct fw_peer *p = ud;
	struct fw *w = p->w;
	(void)c;
	pthread_mutex_lock(&w->mu);
	int n = ++p->errors;
	p->last_error = err;
	snprintf(p->last_what, sizeof p->last_what, "%s", what);
	pthread_mutex_unlock(&w->mu);
	if (n <= MAX_ERROR_LOGS)
		fw_log("%s: error %s: %s", fw_user[p->user], mqim_errname(err), what);
}

/* ---- the world ----------------------------------------------------------------------------- */

int fw_init(struct fw *w, bool with_broker, const char *extra_conf)
{
	memset(w, 0, sizeof *w);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->journal_fd = -1;
	w->t0 = fw_now();
	if (!run_t0)
		run_t0 = w->t0;
	w->rng = fw_seed() ^ 0x5851f42d4c957f2dULL;
	w->map_cap = MAP_CAP;
	w->map = calloc(w->map_cap, sizeof *w->map);
	if (!w->map)
		return -1;

	struct mqim_options o = MQIM_OPTIONS_INIT;
	o.keepalive_s = 3;
	o.connect_timeout_ms = 3000;
	o.ack_timeout_ms = 4000;
	o.resend_timeout_ms = 8000;
	o.max_resends = 100;
	o.backoff_min_ms = 200;
	o.backoff_max_ms = 1500;
	o.durability = MQIM_DURABLE_APP;   /* the cases kill processes, not the OS */
	w->tmpl = o;

	const char *base = getenv("TMPDIR");
	snprintf(w->tmp, sizeof w->tmp, "%s/mqim-fw-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(w->tmp)) {
		w->tmp[0] = '\0';
		return -1;
	}
	for (int u = 0; u < FW_NUSERS; u++) {
		struct fw_peer *p = &w->peers[u];
		p->w = w;
		p->user = u;
		for (int k = 0; k < FW_NUSERS; k++)
			p->presence[k] = -1;
		snprintf(p->dir, sizeof p->dir, "%s/%s", w->tmp, fw_user[u]);
	}
	if (!with_broker)
		return 0;
	if (tbroker_init(&w->broker, extra_conf) != 0)
		return -1;
	w->has_broker = true;
	for (int u = 0; u < FW_NUSERS; u++)
		if (tbroker_add_user(&w->broker, fw_user[u], FW_PW, false) != 0)
			return -1;
	const char *members[FW_NUSERS + 1];
	for (int u = 0; u < FW_NUSERS; u++)
		members[u] = fw_user[u];
	members[FW_NUSERS] = NULL;
	return tbroker_add_group(&w->broker, FW_GROUP, members);
}

int fw_cleanup(struct fw *w)
{
	int status = 0;
	w->stop_traffic = 1;
	fw_traffic_join(w);
	for (int u = 0; u < FW_NUSERS; u++)
		fw_peer_close(w, u);
	if (w->has_broker) {
		status = tbroker_cleanup(&w->broker);
		w->has_broker = false;
	}
	if (w->journal_fd >= 0)
		close(w->journal_fd);
	w->journal_fd = -1;
	if (w->tmp[0] && !getenv("MQIM_KEEP_TMP"))
		nftw(w->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	w->tmp[0] = '\0';
	for (int s = 0; s < w->nstreams; s++) {
		struct fw_stream *st = &w->streams[s];
		free(st->sent);
		free(st->err);
		free(st->id);
		free(st->rid);
		free(st->rid_set);
		free(st->state);
		for (int u = 0; u < FW_NUSERS; u++)
			free(st->count[u]);
	}
	w->nstreams = 0;
	free(w->map);
	w->map = NULL;
	return status;
}

int fw_stream_add(struct fw *w, int from, int to, int n, int qos)
{
	if (w->nstreams >= FW_MAX_STREAMS)
		return -1;
	struct fw_stream *st = &w->streams[w->nstreams];
	memset(st, 0, sizeof *st);
	st->from = from;
	st->to = to;
	st->n = n;
	st->qos = qos;
	const char *force = getenv("MQIM_FAULTS_QOS");
	if (force && (strcmp(force, "1") == 0 || strcmp(force, "2") == 0))
		st->qos = atoi(force);
	st->sent = calloc((size_t)n, 1);
	st->err = calloc((size_t)n, sizeof *st->err);
	st->id = calloc((size_t)n, sizeof *st->id);
	st->rid = calloc((size_t)n, sizeof *st->rid);
	st->rid_set = calloc((size_t)n, 1);
	st->state = calloc((size_t)n, 1);
	for (int u = 0; u < FW_NUSERS; u++)
		st->count[u] = calloc((size_t)n, sizeof *st->count[u]);
	return w->nstreams++;
}

void fw_streams_standard(struct fw *w, int n, int ng)
{
	fw_stream_add(w, FW_ALICE, FW_BOB, n, 0);
	fw_stream_add(w, FW_BOB, FW_ALICE, n, 0);
	if (ng > 0) {
		fw_stream_add(w, FW_ALICE, FW_TO_GROUP, ng, 0);
		fw_stream_add(w, FW_BOB, FW_TO_GROUP, ng, 0);
	}
}

int fw_peer_open(struct fw *w, int user, int port, bool connect)
{
	static const char *const groups[] = { FW_GROUP, NULL };
	struct fw_peer *p = &w->peers[user];
	struct mqim_options o = w->tmpl;
	struct mqim_callbacks cb = MQIM_CALLBACKS_INIT;
	mqim_client *c = NULL;

	o.host = "127.0.0.1";
	o.port = port;
	o.user = fw_user[user];
	o.password = FW_PW;
	o.data_dir = p->dir;
	o.groups = groups;
	cb.on_state = on_state;
	cb.on_message = on_message;
	cb.on_message_state = on_msg_state;
	cb.on_error = on_error;
	cb.on_presence = on_presence;
	pthread_mutex_lock(&w->mu);
	p->state = MQIM_STATE_IDLE;
	pthread_mutex_unlock(&w->mu);
	int rc = mqim_create(&o, &cb, p, &c);
	if (rc != MQIM_OK) {
		fw_log("%s: mqim_create: %s", fw_user[user], mqim_strerror(rc));
		return rc;
	}
	pthread_mutex_lock(&w->mu);
	p->c = c;
	pthread_mutex_unlock(&w->mu);
	/* Every user is in the group: a group message is delivered once all
	 * four other members have it (finding 4). */
	const char *members[FW_NUSERS + 1] = { NULL };
	memcpy(members, fw_user, sizeof fw_user);
	rc = mqim_set_group_members(c, FW_GROUP, members);
	if (rc != MQIM_OK) {
		fw_log("%s: mqim_set_group_members: %s", fw_user[user], mqim_strerror(rc));
		return rc;
	}
	return connect ? mqim_connect(c) : MQIM_OK;
}

void fw_peer_close(struct fw *w, int user)
{
	struct fw_peer *p = &w->peers[user];
	pthread_mutex_lock(&w->mu);
	mqim_client *c = p->c;
	p->c = NULL;
	pthread_mutex_unlock(&w->mu);
	if (c)
		mqim_close(c);
}

static bool wait_until(struct fw *w, int64_t deadline)
{
	int64_t now = fw_now();
	if (now >= deadline)
		return false;
	int64_t step = deadline - now < 100 ? deadline - now : 100;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t ns = (int64_t)ts.tv_nsec + step * 1000000LL;
	ts.tv_sec += (time_t)(ns / 1000000000LL);
	ts.tv_nsec = (long)(ns % 1000000000LL);
	pthread_cond_timedwait(&w->cv, &w->mu, &ts);
	return true;
}

bool fw_wait_state(struct fw *w, int user, enum mqim_state st, int timeout_ms)
{
	int64_t deadline = fw_now() + timeout_ms;
	pthread_mutex_lock(&w->mu);
	while (w->peers[user].state != st && wait_until(w, deadline))
		;
	bool ok = w->peers[user].state == st;
	pthread_mutex_unlock(&w->mu);
	return ok;
}

bool fw_wait_connected(struct fw *w, int timeout_ms)
{
	int64_t deadline = fw_now() + timeout_ms;
	bool ok = false;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		ok = true;
		for (int u = 0; u < FW_NUSERS; u++)
			if (w->peers[u].c && w->peers[u].state != MQIM_STATE_CONNECTED)
				ok = false;
		if (ok || !wait_until(w, deadline))
			break;
	}
	pthread_mutex_unlock(&w->mu);
	return ok;
}

static void probe(struct fw_peer *p, const char *to, bool group)
{
	const char *body = group ? "probe group" : "probe direct";
	int rc = mqim_send(p->c, to, group, NULL, body, strlen(body), 0, NULL);
	if (rc != MQIM_OK)
		fw_log("%s: probe: %s", fw_user[p->user], mqim_errname(rc));
}

bool fw_warmup(struct fw *w, int timeout_ms)
{
	int64_t end = fw_now() + timeout_ms;
	int first = -1, second = -1;
	for (int u = 0; u < FW_NUSERS; u++) {
		if (!w->peers[u].c)
			continue;
		if (first < 0)
			first = u;
		else if (second < 0)
			second = u;
	}
	if (second < 0)
		return true;
	for (;;) {
		bool all = true;
		pthread_mutex_lock(&w->mu);
		for (int u = 0; u < FW_NUSERS; u++) {
			struct fw_peer *p = &w->peers[u];
			if (p->c && (p->probes - p->probes_group < 1 || (u != first && p->probes_group < 1)))
				all = false;
		}
		pthread_mutex_unlock(&w->mu);
		if (all)
			return true;
		if (fw_now() >= end) {
			fw_log("warm-up: some subscriptions still not in place");
			return false;
		}
		probe(&w->peers[first], FW_GROUP, true);
		for (int u = 0; u < FW_NUSERS; u++)
			if (u != first && w->peers[u].c)
				probe(&w->peers[first], fw_user[u], false);
		probe(&w->peers[second], fw_user[first], false);
		fw_sleep(250);
	}
}

/* ---- traffic ------------------------------------------------------------------------------------- */

int fw_send(struct fw *w, int s, int seq)
{
	struct fw_stream *st = &w->streams[s];
	char body[48], hex[33];
	uint8_t id[16];

	pthread_mutex_lock(&w->mu);
	mqim_client *c = w->peers[st->from].c;
	pthread_mutex_unlock(&w->mu);
	if (!c)
		return MQIM_ECLOSED;
	int len = snprintf(body, sizeof body, "fw %d %d", s, seq);
	bool group = st->to == FW_TO_GROUP;
	journal(w, "I %d %d\n", s, seq);
	int rc = mqim_send(c, group ? FW_GROUP : fw_user[st->to], group, NULL, body, (size_t)len,
			   st->qos ? st->qos : 1 + seq % 2, id);
	pthread_mutex_lock(&w->mu);
	if (rc == MQIM_OK) {
		st->sent[seq] = FW_ACCEPTED;
		memcpy(st->id[seq], id, 16);
		map_put(w, id, s, seq);
		for (size_t i = 0; i < sizeof w->orphans / sizeof w->orphans[0]; i++) {
			struct fw_orphan *o = &w->orphans[i];
			if (o->used && memcmp(o->id, id, 16) == 0) {
				set_state(w, s, seq, o->state);
				o->used = false;
			}
		}
	} else {
		st->sent[seq] = FW_REFUSED;
		st->err[seq] = rc;
	}
	pthread_mutex_unlock(&w->mu);
	if (rc == MQIM_OK) {
		hex16(id, hex);
		journal(w, "S %d %d %s\n", s, seq, hex);
	} else {
		journal(w, "F %d %d %d\n", s, seq, rc);
	}
	return rc;
}

struct targ {
	struct fw *w;
	int s;
};

static void *traffic_main(void *arg)
{
	struct targ *a = arg;
	struct fw *w = a->w;
	int s = a->s;
	free(a);
	for (;;) {
		pthread_mutex_lock(&w->mu);
		struct fw_stream *st = &w->streams[s];
		int q = w->stop_traffic || st->next >= st->n ? -1 : st->next++;
		int pace = w->duration_ms / (st->n > 0 ? st->n : 1);
		pthread_mutex_unlock(&w->mu);
		if (q < 0)
			break;
		int rc = fw_send(w, s, q);
		if (rc != MQIM_OK)
			fw_log("send %d/%d from %s: %s", s, q, fw_user[st->from], mqim_errname(rc));
		if (pace > 0)
			fw_sleep(pace);
	}
	return NULL;
}

void fw_traffic_start(struct fw *w, int duration_ms, unsigned user_mask)
{
	w->duration_ms = duration_ms;
	w->stop_traffic = 0;
	for (int s = 0; s < w->nstreams && w->nthreads < FW_MAX_STREAMS; s++) {
		int from = w->streams[s].from;
		if (!w->peers[from].c || (user_mask && !(user_mask & (1u << from))))
			continue;   /* not ours to send (or sent by another process) */
		struct targ *a = malloc(sizeof *a);
		a->w = w;
		a->s = s;
		if (pthread_create(&w->threads[w->nthreads], NULL, traffic_main, a) == 0)
			w->nthreads++;
		else
			free(a);
	}
}

int fw_traffic_done(struct fw *w)
{
	int n = 0;
	pthread_mutex_lock(&w->mu);
	for (int s = 0; s < w->nstreams; s++)
		n += w->streams[s].next;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int fw_traffic_total(struct fw *w)
{
	int n = 0;
	for (int s = 0; s < w->nstreams; s++)
		n += w->streams[s].n;
	return n;
}

bool fw_traffic_wait(struct fw *w, int n, int timeout_ms)
{
	int64_t end = fw_now() + timeout_ms;
	while (fw_traffic_done(w) < n && fw_now() < end)
		fw_sleep(10);
	return fw_traffic_done(w) >= n;
}

void fw_traffic_join(struct fw *w)
{
	for (int i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	w->nthreads = 0;
}

void fw_fault_end(struct fw *w)
{
	w->t_fault_end = fw_now();
}

/* ---- settling and counting ------------------------------------------------------------------------- */

int fw_outbox_rows(struct fw *w, int user)
{
	char path[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = -1;
	snprintf(path, sizeof path, "%s/mqim.db", w->peers[user].dir);
	if (access(path, F_OK) != 0)
		return 0;
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_busy_timeout(db, 2000) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static bool delivered_state(int st)
{
	return st == MQIM_MSG_DELIVERED || st == MQIM_MSG_READ;
}

/* Under w->mu: does (s, q) need a receipt, and with which id? */
static const uint8_t *rcpt_id(struct fw_stream *st, int q)
{
	if (st->sent[q] == FW_ACCEPTED)
		return st->id[q];
	if (st->sent[q] == FW_MAYBE && st->rid_set[q])
		return st->rid[q];
	return NULL;
}

/* Ask the senders' clients for the state of messages not yet seen
 * delivered (their receipt may have come to an earlier process). */
static void refresh_states(struct fw *w)
{
	for (int s = 0; s < w->nstreams; s++) {
		struct fw_stream *st = &w->streams[s];
		for (int q = 0; q < st->n; q++) {
			uint8_t id[16];
			pthread_mutex_lock(&w->mu);
			const uint8_t *pid = rcpt_id(st, q);
			bool need = pid && !delivered_state(st->state[q]);
			mqim_client *c = w->peers[st->from].c;
			if (pid)
				memcpy(id, pid, 16);
			pthread_mutex_unlock(&w->mu);
			if (!need || !c)
				continue;
			enum mqim_msg_state ms = MQIM_MSG_UNKNOWN;
			if (mqim_message_state(c, id, &ms) == MQIM_OK && delivered_state(ms)) {
				pthread_mutex_lock(&w->mu);
				st->state[q] = (unsigned char)ms;
				pthread_mutex_unlock(&w->mu);
			}
		}
	}
}

/* Under w->mu: deliveries still missing and receipts still missing. */
static void missing(struct fw *w, int *deliveries, int *receipts)
{
	int rcp[FW_NUSERS];
	*deliveries = *receipts = 0;
	for (int s = 0; s < w->nstreams; s++) {
		struct fw_stream *st = &w->streams[s];
		int nr = recipients(st, rcp);
		for (int q = 0; q < st->n; q++) {
			if (st->sent[q] == FW_ACCEPTED)
				for (int k = 0; k < nr; k++)
					*deliveries += st->count[rcp[k]][q] == 0;
			if (rcpt_id(st, q) && !delivered_state(st->state[q]))
				(*receipts)++;
		}
	}
}

bool fw_wait_settled(struct fw *w, int timeout_ms)
{
	int64_t deadline = fw_now() + timeout_ms, last_refresh = fw_now(), last_log = fw_now();
	/* Nothing moved for three resend periods (and 30 s): it never will. */
	int64_t stall_ms = 3 * (int64_t)w->tmpl.resend_timeout_ms, last_move = fw_now();
	int last_md = -1, last_mr = -1;
	if (stall_ms < 30000)
		stall_ms = 30000;
	for (;;) {
		int md, mr;
		pthread_mutex_lock(&w->mu);
		bool all_sent = true;
		for (int s = 0; s < w->nstreams; s++)
			if (w->peers[w->streams[s].from].c && w->streams[s].next < w->streams[s].n)
				all_sent = false;
		missing(w, &md, &mr);
		pthread_mutex_unlock(&w->mu);
		int64_t now = fw_now();
		if (all_sent && md == 0 && mr > 0 && now - last_refresh >= REFRESH_MS) {
			refresh_states(w);
			last_refresh = now;
			continue;
		}
		if (all_sent && md == 0 && mr == 0) {
			int rows = 0;
			for (int u = 0; u < FW_NUSERS; u++) {
				int r = w->peers[u].c ? fw_outbox_rows(w, u) : 0;
				rows += r < 0 ? 1 : r;
			}
			if (rows == 0) {
				w->t_settled = fw_now();
				return true;
			}
		}
		if (md != last_md || mr != last_mr) {
			last_md = md;
			last_mr = mr;
			last_move = now;
		}
		if (now - last_log >= 10000) {
			fw_log("settling: %d deliveries and %d receipts missing", md, mr);
			last_log = now;
		}
		if (now >= deadline || now - last_move >= stall_ms) {
			fw_log("not settled after %d s%s: %d deliveries and %d receipts missing",
			       (int)((now - deadline + timeout_ms) / 1000),
			       now >= deadline ? "" : " (no progress any more)", md, mr);
			return false;
		}
		fw_sleep(100);
	}
}

/* The senders' databases are the truth about receipts: a callback may
 * have said "delivered" for a change that was never committed.  For every
 * message whose sender is open here, take the state from its database. */
static void db_states(struct fw *w)
{
	int lies = 0;
	char hex[33];
	for (int s = 0; s < w->nstreams; s++) {
		struct fw_stream *st = &w->streams[s];
		for (int q = 0; q < st->n; q++) {
			uint8_t id[16];
			pthread_mutex_lock(&w->mu);
			const uint8_t *pid = rcpt_id(st, q);
			mqim_client *c = w->peers[st->from].c;
			int said = st->state[q];
			if (pid)
				memcpy(id, pid, 16);
			pthread_mutex_unlock(&w->mu);
			if (!pid || !c)
				continue;
			enum mqim_msg_state ms = MQIM_MSG_UNKNOWN;
			if (mqim_message_state(c, id, &ms) != MQIM_OK)
				ms = MQIM_MSG_UNKNOWN;
			if (delivered_state(said) && !delivered_state(ms) && lies++ < 5) {
				hex16(id, hex);
				fw_log("  stream %d seq %d id %s: the callback said %s, the database says %s",
				       s, q, hex, mqim_msg_state_name(said), mqim_msg_state_name(ms));
			}
			pthread_mutex_lock(&w->mu);
			st->state[q] = (unsigned char)ms;
			pthread_mutex_unlock(&w->mu);
		}
	}
	if (lies)
		fw_log("  %d messages reported delivered by a callback are not in the database", lies);
}

void fw_tally(struct fw *w, struct fw_result *r)
{
	int rcp[FW_NUSERS];
	memset(r, 0, sizeof *r);
	fw_sleep(QUIET_MS);   /* late duplicates show now */
	refresh_states(w);
	db_states(w);
	pthread_mutex_lock(&w->mu);
	for (int s = 0; s < w->nstreams; s++) {
		struct fw_stream *st = &w->streams[s];
		int nr = recipients(st, rcp);
		for (int q = 0; q < st->n; q++) {
			bool acc = st->sent[q] == FW_ACCEPTED;
			r->sent += acc;
			r->refused += st->sent[q] == FW_REFUSED;
			if (acc)
				r->expected += nr;
			for (int k = 0; k < nr; k++) {
				int n = st->count[rcp[k]][q];
				if (acc)
					r->delivered += n > 0, r->lost += n == 0;
				if (n > 1)
					r->dups += n - 1;
				if ((st->sent[q] == FW_NOT_SENT || st->sent[q] == FW_REFUSED) && n > 0)
					r->unexpected += n;
			}
			if (rcpt_id(st, q) && !delivered_state(st->state[q]))
				r->no_rcpt++;
		}
	}
	r->unexpected += w->unexpected;
	pthread_mutex_unlock(&w->mu);
	for (int u = 0; u < FW_NUSERS; u++) {
		int n = fw_outbox_rows(w, u);
		r->outbox_left += n < 0 ? 1 : n;
	}
	r->recover_ms = w->t_fault_end && w->t_settled >= w->t_fault_end ? w->t_settled - w->t_fault_end
									 : -1;
}

/* The first outbox rows of user's data folder, on stderr. */
static void dump_outbox(struct fw *w, int user)
{
	char path[400];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	snprintf(path, sizeof path, "%s/mqim.db", w->peers[user].dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT o.seq, o.kind, o.peer, o.state, o.attempts, o.err, "
			       "h.state FROM outbox o LEFT JOIN history h ON h.id = o.id "
			       "ORDER BY o.seq LIMIT 8", -1, &st, NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW)
			fw_log("    row seq=%lld kind=%d to=%s state=%d attempts=%d err=%d history state=%s",
			       (long long)sqlite3_column_int64(st, 0), sqlite3_column_int(st, 1),
			       (const char *)sqlite3_column_text(st, 2), sqlite3_column_int(st, 3),
			       sqlite3_column_int(st, 4), sqlite3_column_int(st, 5),
			       sqlite3_column_type(st, 6) == SQLITE_NULL ? "none"
			       : mqim_msg_state_name(sqlite3_column_int(st, 6)));
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The expected deliveries never seen and the extra copies (pass 0), or the
 * sender states short of "delivered" (pass 1), at most `max` lines. */
static void explain_streams(struct fw *w, int pass, int max)
{
	int rcp[FW_NUSERS], shown = 0;
	char hex[33];
	for (int s = 0; s < w->nstreams && shown < max; s++) {
		struct fw_stream *st = &w->streams[s];
		int nr = recipients(st, rcp);
		for (int q = 0; q < st->n && shown < max; q++) {
			for (int k = 0; pass == 0 && k < nr; k++) {
				int n = st->count[rcp[k]][q];
				if ((st->sent[q] == FW_ACCEPTED && n == 0) || n > 1) {
					fw_log("  stream %d (%s->%s) seq %d: %d copies at %s", s, fw_user[st->from],
					       st->to == FW_TO_GROUP ? FW_GROUP : fw_user[st->to], q, n,
					       fw_user[rcp[k]]);
					shown++;
				}
			}
			const uint8_t *id = rcpt_id(st, q);
			if (pass == 1 && id && !delivered_state(st->state[q])) {
				hex16(id, hex);
				fw_log("  stream %d (%s->%s) seq %d id %s: sender state %s", s,
				       fw_user[st->from], st->to == FW_TO_GROUP ? FW_GROUP : fw_user[st->to],
				       q, hex, mqim_msg_state_name(st->state[q]));
				shown++;
			}
		}
	}
}

/* Every thread's stack, when gdb is there (it is not a dependency of the
 * suite): a client that stopped moving shows where its threads wait. */
static void dump_stacks(void)
{
	if (system("command -v gdb >/dev/null 2>&1") != 0) {
		fw_log("  (no gdb on PATH: no thread stacks)");
		return;
	}
	char cmd[160];
	fflush(NULL);
	snprintf(cmd, sizeof cmd, "gdb -p %d -batch -nx -ex 'thread apply all bt 12' 2>/dev/null"
		 " | grep -E '^(Thread|#)' >&2", (int)getpid());
	if (system(cmd) != 0)
		fw_log("  (gdb could not attach)");
}

void fw_explain(struct fw *w, const struct fw_result *r)
{
	if (!r->lost && !r->dups && !r->no_rcpt && !r->unexpected && !r->outbox_left)
		return;
	pthread_mutex_lock(&w->mu);
	explain_streams(w, 0, 20);
	explain_streams(w, 1, 20);
	for (int u = 0; u < FW_NUSERS; u++) {
		const struct fw_peer *p = &w->peers[u];
		if (p->c)
			fw_log("  %s: %s, %d connects, %d losses, %d failed attempts, %d errors%s%s",
			       fw_user[u], mqim_state_name(p->state), p->connects, p->losses,
			       p->failed_connects, p->errors, p->errors ? ", last: " : "",
			       p->errors ? p->last_what : "");
	}
	pthread_mutex_unlock(&w->mu);
	for (int u = 0; u < FW_NUSERS; u++) {
		int n = fw_outbox_rows(w, u);
		if (n)
			fw_log("  %s: %d outbox rows left", fw_user[u], n);
		if (n > 0)
			dump_outbox(w, u);
	}
	dump_stacks();
}

void fw_report(struct fw *w, const struct fw_result *r, const char *note)
{
	(void)w;
	char rec[32];
	if (r->recover_ms >= 0)
		snprintf(rec, sizeof rec, "%.1f s", (double)r->recover_ms / 1000.0);
	else
		snprintf(rec, sizeof rec, "-");
	fw_log("RESULT sent=%d refused=%d expected=%d delivered=%d dups=%d lost=%d unexpected=%d "
	       "no_rcpt=%d outbox_left=%d recover=%s%s%s", r->sent, r->refused, r->expected,
	       r->delivered, r->dups, r->lost, r->unexpected, r->no_rcpt, r->outbox_left, rec,
	       note ? " -- " : "", note ? note : "");
	const char *path = getenv("MQIM_FAULTS_ROW");
	FILE *f = path && *path ? fopen(path, "a") : NULL;
	if (!f)
		return;
	fprintf(f, "%d %d %d %d %d %d %d %d %d %lld|%s\n", r->sent, r->refused, r->expected,
		r->delivered, r->dups, r->lost, r->unexpected, r->no_rcpt, r->outbox_left,
		(long long)r->recover_ms, note ? note : "");
	fclose(f);
}

void fw_assert_clean(const struct fw_result *r)
{
	assert_int_equal(r->lost, 0);
	assert_int_equal(r->dups, 0);
	assert_int_equal(r->unexpected, 0);
	assert_int_equal(r->no_rcpt, 0);
	assert_int_equal(r->outbox_left, 0);
	assert_int_equal(r->delivered, r->expected);
}

bool fw_broker_log_clean(struct fw *w)
{
	static const char *const bad[] = {
		"Error saving", "Unable to restore", "may be corrupt", "Couldn't open database",
		"Incompatible database", "Unsupported persistent", "mqim: cannot", NULL,
	};
	FILE *f = fopen(w->broker.log_path, "r");
	char line[1024];
	bool clean = true;
	if (!f)
		return false;
	while (fgets(line, sizeof line, f)) {
		for (int i = 0; bad[i]; i++) {
			if (strstr(line, bad[i])) {
				fw_log("broker log: %s", line);
				clean = false;
				break;
			}
		}
	}
	fclose(f);
	return clean;
}

/* ---- processes -------------------------------------------------------------------------------------- */

pid_t fw_spawn(const char *const args[])
{
	const char *argv[16];
	int n = 0;
	argv[n++] = "test_faults";
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(NULL);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		execv("/proc/self/exe", (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int fw_reap(pid_t pid, int timeout_ms)
{
	int status = 0;
	int64_t end = fw_now() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0)
			return -1;
		if (fw_now() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return status;
		}
		fw_sleep(20);
	}
}
