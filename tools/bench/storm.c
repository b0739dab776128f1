/* storm.c - K clients logging in at once, in waves, with passwords or
 * with app-server tokens.
 *
 * A wave starts K TCP connects in the same instant, each followed by a
 * CONNECT with a username and a password: BENCH_PASSWORD, or with
 * cfg->jwt_secret an app-server token (plugin/jwt.c) minted for that user
 * at storm_new(), HS256 with that secret, as an app's server would hand
 * one to a device.  A token is verified at every login (the plugin keeps
 * no memory of verified tokens), so every wave of a token storm costs the
 * broker what the first one did.  A client whose connection is
 * closed before its CONNACK (a broker saying "busy") retries after a random
 * 200-1000 ms, as a real client's backoff would; a refused login (CONNACK
 * >= 0x80) is counted and not retried.  When every client of the wave is
 * logged in (or refused), all log out together and the next wave starts at
 * once, until storm_s has passed; the last wave is always completed, within
 * max_s.  (The kernel's accept queue, 100 for Mosquitto's listener, drops
 * most of K simultaneous SYNs; those clients connect after TCP's own SYN
 * retransmission, 1 s later, then 3 s...  The same for every broker.)
 *
 * The storm runs on its own thread with its own epoll loop, at nice 10, so
 * that starting and closing thousands of sockets never delays the chat
 * messages of the latency flow, whose latency is what the storm is
 * measured by.
 *
 * Thread rules: storm_new(), storm_begin(), storm_done(), storm_finish()
 * and storm_free() are called from the run's thread; everything else runs
 * on the storm thread, which owns the clients, its loop and its figures
 * until storm_finish() has joined it.  The two share only the atomic flags.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <jwt.h>

#include "bench.h"

#define BACKOFF_MIN_MS  200
#define BACKOFF_SPAN_MS 800
#define STORM_NICE      10
#define TOKEN_TTL_S     86400

struct storm {
	struct storm_cfg cfg;
	struct bloop loop_store;
	struct bloop *loop;
	int port;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop, done;
	struct mclient *cl;
	char **tokens;               /* per client, with cfg.jwt_secret; else NULL */
	struct theap retry;
	uint64_t rng;
	uint64_t t0, t_end, wave_t0;
	uint32_t resolved;           /* clients of this wave logged in or refused */
	bool wave_active, ending;
	struct storm_result res;
	struct samples login_ns;
};

static void resolve(struct storm *s)
{
	if (++s->resolved < s->cfg.k)
		return;
	/* the wave is complete: everyone logs out together */
	s->ending = true;
	for (uint32_t i = 0; i < s->cfg.k; i++)
		mclient_disconnect(&s->cl[i], -1);
	s->ending = false;
	s->wave_active = false;
	s->res.waves_done++;
}

static void st_up(struct mclient *m)
{
	struct storm *s = m->owner;
	s->res.logins++;
	samples_add(&s->login_ns, s->loop->now - s->wave_t0);
	resolve(s);
}

static void st_refused(struct mclient *m, uint8_t reason)
{
	struct storm *s = m->owner;
	if (!s->res.refused)
		fail("storm: %s refused (CONNACK 0x%02x)", m->client_id, reason);
	s->res.refused++;
	m->tag = 1; /* resolved: on_down must not retry it */
	resolve(s);
}

static void st_down(struct mclient *m, bool was_up)
{
	struct storm *s = m->owner;
	if (was_up || s->ending || !s->wave_active || m->tag)
		return;
	s->res.closed_early++;
	uint64_t delay = BACKOFF_MIN_MS + xs64(&s->rng) % BACKOFF_SPAN_MS;
	theap_push(&s->retry, s->loop->now + delay * 1000000ull, m->idx);
}

static const struct mclient_ops storm_ops = {
	.on_up = st_up, .on_refused = st_refused, .on_down = st_down,
};

/* An app-server token for user: HS256 with secret; sub = user, aud =
 * "mqim" (the plugin's default audience), iat = now, exp a day later (the
 * plugin ends a session at its token's exp; a storm is far shorter).
 * Returns a malloc'd string (free()), or NULL. */
static char *mint_token(const char *user, const char *secret, time_t now)
{
	jwt_t *j = NULL;
	char *t = NULL;
	if (jwt_new(&j) == 0 && jwt_add_grant(j, "sub", user) == 0 &&
	    jwt_add_grant(j, "aud", "mqim") == 0 && jwt_add_grant_int(j, "iat", (long)now) == 0 &&
	    jwt_add_grant_int(j, "exp", (long)now + TOKEN_TTL_S) == 0 &&
	    jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0)
		t = jwt_encode_str(j);
	jwt_free(j);
	return t;
}

static void free_tokens(struct storm *s)
{
	if (!s->tokens)
		return;
	for (uint32_t i = 0; i < s->cfg.k; i++)
		free(s->tokens[i]);
	free(s->tokens);
	s->tokens = NULL;
}

/* With cfg.jwt_secret, one token per client; 0 or -1 (none kept). */
static int make_tokens(struct storm *s)
{
	time_t now = time(NULL);
	if (!s->cfg.jwt_secret)
		return 0;
	s->tokens = calloc(s->cfg.k, sizeof(*s->tokens));
	if (!s->tokens)
		return -1;
	for (uint32_t i = 0; i < s->cfg.k; i++) {
		char name[72];
		name_storm(name, sizeof(name), i);
		if (!(s->tokens[i] = mint_token(name, s->cfg.jwt_secret, now))) {
			fail("storm: cannot make a token for %s", name);
			free_tokens(s);
			return -1;
		}
	}
	return 0;
}

struct storm *storm_new(const struct storm_cfg *cfg, int port)
{
	struct storm *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->loop = &s->loop_store;
	s->port = port;
	s->rng = rand64();
	atomic_init(&s->stop, false);
	atomic_init(&s->done, false);
	s->cl = calloc(cfg->k, sizeof(*s->cl));
	if (!s->cl || make_tokens(s) != 0 || bloop_init(s->loop) != 0) {
		free_tokens(s);
		free(s->cl);
		free(s);
		return NULL;
	}
	for (uint32_t i = 0; i < cfg->k; i++) {
		char name[72];
		name_storm(name, sizeof(name), i);
		mclient_init(&s->cl[i], &storm_ops, s, i, name, name,
			     s->tokens ? s->tokens[i] : BENCH_PASSWORD);
	}
	return s;
}

static void start_client(struct storm *s, uint32_t i)
{
	struct mclient *m = &s->cl[i];
	s->res.attempts++;
	if (mclient_start(m, s->loop, s->port) != 0) {
		s->res.closed_early++;
		theap_push(&s->retry, s->loop->now + BACKOFF_MIN_MS * 1000000ull, i);
	}
}

static void start_wave(struct storm *s, uint64_t now)
{
	s->wave_active = true;
	s->resolved = 0;
	s->wave_t0 = now;
	s->retry.n = 0;
	for (uint32_t i = 0; i < s->cfg.k; i++) {
		s->cl[i].tag = 0;
		start_client(s, i);
	}
}

static bool time_left(const struct storm *s, uint64_t now)
{
	if (s->cfg.waves)
		return s->res.waves_done < s->cfg.waves;
	return now - s->t0 < (uint64_t)(s->cfg.storm_s * 1e9);
}

/* Start waves and retries that are due; returns ms until the next. */
static int pump(struct storm *s, uint64_t now)
{
	uint32_t i;
	if (!s->wave_active && time_left(s, now))
		start_wave(s, now);
	while (s->wave_active && theap_pop_due(&s->retry, now, &i))
		if (s->cl[i].st == MC_CLOSED && !s->cl[i].tag)
			start_client(s, i);
	uint64_t next = theap_next(&s->retry);
	if (next == UINT64_MAX)
		return 50;
	return next <= now ? 0 : (int)((next - now) / 1000000u) + 1;
}

static void wrap_up(struct storm *s)
{
	s->t_end = mono_ns();
	s->res.complete = !s->wave_active && s->res.refused == 0;
	s->ending = true;
	for (uint32_t i = 0; i < s->cfg.k; i++)
		mclient_disconnect(&s->cl[i], -1);
	s->ending = false;
	s->res.seconds = (double)(s->t_end - s->t0) / 1e9;
	s->res.logins_per_s = s->res.seconds > 0 ? (double)s->res.logins / s->res.seconds : 0;
	s->res.login_p50_ms = (double)samples_quantile(&s->login_ns, 0.5) / 1e6;
	s->res.login_p99_ms = (double)samples_quantile(&s->login_ns, 0.99) / 1e6;
}

static void *storm_main(void *arg)
{
	struct storm *s = arg;
	uint64_t max_ns = (uint64_t)(s->cfg.max_s * 1e9);
	/* below the chat thread and the broker: on two cores, the storm's own
	 * socket work must not be what delays a chat message */
	setpriority(PRIO_PROCESS, (id_t)gettid(), STORM_NICE);
	s->loop->now = s->t0 = mono_ns();
	start_wave(s, s->t0);
	while (!atomic_load(&s->stop)) {
		uint64_t now = mono_ns();
		if ((!s->wave_active && !time_left(s, now)) || now - s->t0 > max_ns)
			break;
		if (bloop_turn(s->loop, pump(s, now)) < 0)
			break;
	}
	wrap_up(s);
	atomic_store(&s->done, true);
	return NULL;
}

int storm_begin(struct storm *s)
{
	if (pthread_create(&s->thread, NULL, storm_main, s) != 0)
		return -1;
	s->thread_started = true;
	return 0;
}

bool storm_done(struct storm *s)
{
	return atomic_load(&s->done);
}

void storm_finish(struct storm *s, struct storm_result *res)
{
	if (s->thread_started) {
		atomic_store(&s->stop, true);
		pthread_join(s->thread, NULL);
		s->thread_started = false;
	}
	if (res)
		*res = s->res;
}

void storm_free(struct storm *s)
{
	if (!s)
		return;
	storm_finish(s, NULL);
	for (uint32_t i = 0; i < s->cfg.k; i++)
		mclient_free(&s->cl[i]);
	free(s->cl);
	free_tokens(s);
	theap_free(&s->retry);
	samples_free(&s->login_ns);
	bloop_free(s->loop);
	free(s);
}
