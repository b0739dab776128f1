/* atk.c - shared helpers of the attack tests; see atk.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <setjmp.h>
#include <signal.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "atk.h"
#include "mqim.h"
#include "passwd.h"
#include "store.h"
#include "topics.h"

#define STEP_MS 5000   /* one leg of a round trip may take this long at most */

bool atk_full(void)
{
	const char *f = getenv("MQIM_ATTACK_FULL");
	return f && strcmp(f, "1") == 0;
}

long atk_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

bool atk_rss_within(long before_kib, long after_kib, long limit_kib)
{
#ifdef __SANITIZE_ADDRESS__
	return true;
#else
	return after_kib - before_kib < limit_kib;
#endif
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int64_t atk_percentile(const int64_t *v, size_t n, double pct)
{
	if (!n)
		return 0;
	int64_t *s = malloc(n * sizeof *s);
	if (!s)
		return 0;
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_i64);
	size_t k = (size_t)(pct / 100.0 * (double)(n - 1) + 0.5);
	int64_t r = s[k < n ? k : n - 1];
	free(s);
	return r;
}

void atk_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void random_id(uint8_t id[MQIM_ENV_ID_LEN])
{
	size_t got = 0;
	while (got < MQIM_ENV_ID_LEN) {
		ssize_t n = getrandom(id + got, MQIM_ENV_ID_LEN - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
}

/* ---- envelopes ------------------------------------------------------------- */

size_t atk_env(void **out, const char *t, const char *fr, const char *to, const char *body,
	       const uint8_t *id, uint8_t id_out[MQIM_ENV_ID_LEN])
{
	struct mqim_env env;
	memset(&env, 0, sizeof env);
	env.v = MQIM_ENV_VERSION;
	if (id)
		memcpy(env.id, id, MQIM_ENV_ID_LEN);
	else
		random_id(env.id);
	env.t = (struct mqim_str){ t, strlen(t) };
	env.fr = (struct mqim_str){ fr, strlen(fr) };
	env.to = (struct mqim_str){ to, strlen(to) };
	env.ts = wall_ms();
	if (body) {
		env.body = (const uint8_t *)body;
		env.body_len = strlen(body);
		env.has_body = true;
		env.body_is_str = true;
	}
	size_t len = 0;
	*out = NULL;
	if (mqim_env_encode(&env, out, &len) != MQIM_OK)
		return 0;
	if (id_out)
		memcpy(id_out, env.id, MQIM_ENV_ID_LEN);
	return len;
}

int atk_env_decode(const void *payload, size_t len, struct mqim_env *env)
{
	return mqim_env_decode(payload, len, 1u << 24, env, NULL);
}

void mpw_init(struct mpw *w)
{
	memset(w, 0, sizeof *w);
}

void mpw_free(struct mpw *w)
{
	free(w->b);
	mpw_init(w);
}

void mpw_raw(struct mpw *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		uint8_t *b = realloc(w->b, cap);
		if (!b) {
			w->failed = true;
			return;
		}
		w->b = b;
		w->cap = cap;
	}
	if (n)
		memcpy(w->b + w->len, p, n);
	w->len += n;
}

void mpw_byte(struct mpw *w, uint8_t b)
{
	mpw_raw(w, &b, 1);
}

static void be(struct mpw *w, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--)
		mpw_byte(w, (uint8_t)(v >> (8 * i)));
}

void mpw_map(struct mpw *w, uint32_t n)
{
	if (n < 16) {
		mpw_byte(w, (uint8_t)(0x80 | n));
	} else if (n < 65536) {
		mpw_byte(w, 0xde);
		be(w, n, 2);
	} else {
		mpw_byte(w, 0xdf);
		be(w, n, 4);
	}
}

void mpw_str(struct mpw *w, const char *s)
{
	size_t n = strlen(s);
	if (n < 32) {
		mpw_byte(w, (uint8_t)(0xa0 | n));
	} else if (n < 256) {
		mpw_byte(w, 0xd9);
		be(w, n, 1);
	} else if (n < 65536) {
		mpw_byte(w, 0xda);
		be(w, n, 2);
	} else {
		mpw_byte(w, 0xdb);
		be(w, n, 4);
	}
	mpw_raw(w, s, n);
}

void mpw_bin(struct mpw *w, const void *p, size_t n)
{
	if (n < 256) {
		mpw_byte(w, 0xc4);
		be(w, n, 1);
	} else if (n < 65536) {
		mpw_byte(w, 0xc5);
		be(w, n, 2);
	} else {
		mpw_byte(w, 0xc6);
		be(w, n, 4);
	}
	mpw_raw(w, p, n);
}

void mpw_uint(struct mpw *w, uint64_t v)
{
	if (v < 128) {
		mpw_byte(w, (uint8_t)v);
	} else if (v < 256) {
		mpw_byte(w, 0xcc);
		be(w, v, 1);
	} else if (v < 65536) {
		mpw_byte(w, 0xcd);
		be(w, v, 2);
	} else if (v <= 0xffffffffu) {
		mpw_byte(w, 0xce);
		be(w, v, 4);
	} else {
		mpw_byte(w, 0xcf);
		be(w, v, 8);
	}
}

void mpw_env(struct mpw *w, unsigned extra, const char *t, const char *fr, const char *to,
	     const uint8_t id[MQIM_ENV_ID_LEN])
{
	mpw_map(w, 6 + extra);
	mpw_str(w, "v");
	mpw_uint(w, 1);
	mpw_str(w, "id");
	mpw_bin(w, id, MQIM_ENV_ID_LEN);
	mpw_str(w, "t");
	mpw_str(w, t);
	mpw_str(w, "fr");
	mpw_str(w, fr);
	mpw_str(w, "to");
	mpw_str(w, to);
	mpw_str(w, "ts");
	mpw_uint(w, wall_ms());
}

/* ---- $CONTROL over a raw connection ------------------------------------------------ */

int atk_admin_open(struct atk_admin *a, int port, const char *user)
{
	char cid[96];
	memset(a, 0, sizeof *a);
	snprintf(cid, sizeof cid, "%s/atk-admin", user);
	int rc = raw_login_retry(&a->r, port, cid, user, ATK_PW);
	if (rc == 0)
		rc = raw_subscribe(&a->r, MQIM_CONTROL_RESP_TOPIC, MQTT_SUB_QOS(1), STEP_MS) == 1 ? 0 : -1;
	if (rc != 0) {
		fprintf(stderr, "atk: admin %s: login or subscription failed (%d)\n", user, rc);
		raw_close(&a->r);
		return -1;
	}
	a->opened = true;
	return 0;
}

/* The response carrying corr in a response payload, detached; or NULL. */
static cJSON *take_response(const void *payload, size_t len, const char *corr)
{
	cJSON *root = cJSON_ParseWithLength(payload, len);
	cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "responses");
	cJSON *found = NULL;
	for (int i = 0; !found && i < cJSON_GetArraySize(arr); i++) {
		cJSON *c = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(arr, i),
							    "correlationData");
		if (cJSON_IsString(c) && strcmp(c->valuestring, corr) == 0)
			found = cJSON_DetachItemFromArray(arr, i);
	}
	cJSON_Delete(root);
	return found;
}

cJSON *atk_admin_call(struct atk_admin *a, const char *cmd_json)
{
	char corr[32];
	cJSON *cmd = cJSON_Parse(cmd_json);
	if (!cmd)
		return NULL;
	snprintf(corr, sizeof corr, "atk-%u", ++a->corr);
	cJSON_DeleteItemFromObjectCaseSensitive(cmd, "correlationData");
	cJSON_AddStringToObject(cmd, "correlationData", corr);
	cJSON *req = cJSON_CreateObject();
	cJSON *cmds = cJSON_AddArrayToObject(req, "commands");
	cJSON_AddItemToArray(cmds, cmd);
	char *text = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (!text)
		return NULL;
	int rc = raw_pub(&a->r, MQIM_CONTROL_TOPIC, text, strlen(text), 1, false, STEP_MS);
	cJSON_free(text);
	if (rc != 0 && rc != 0x10) {
		fprintf(stderr, "atk: $CONTROL request refused: %d\n", rc);
		return NULL;
	}
	int64_t deadline = raw_now_ms() + STEP_MS;
	for (;;) {
		struct mqtt_pkt m;
		int64_t left = deadline - raw_now_ms();
		if (raw_next_publish(&a->r, &m, left > 0 ? (int)left : 0) != 0)
			break;
		if (m.topic_len == strlen(MQIM_CONTROL_RESP_TOPIC) &&
		    memcmp(m.topic, MQIM_CONTROL_RESP_TOPIC, m.topic_len) == 0) {
			cJSON *r = take_response(m.payload, m.payload_len, corr);
			if (r)
				return r;
		}
	}
	fprintf(stderr, "atk: no $CONTROL response with correlationData %s\n", corr);
	return NULL;
}

int atk_admin_ok(struct atk_admin *a, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	cJSON *r = atk_admin_call(a, buf);
	bool ok = r && !cJSON_GetObjectItemCaseSensitive(r, "error");
	cJSON_Delete(r);
	return ok ? 0 : -1;
}

void atk_admin_close(struct atk_admin *a)
{
	if (!a->opened)
		return;
	a->opened = false;
	raw_disconnect(&a->r);
}

int atk_add_user_default_cost(const char *db_path, const char *name, const char *password,
			      bool disabled)
{
	char hash[MQIM_HASH_MAX], err[256] = "";
	struct mqim_store *st = NULL;
	if (mqim_passwd_hash(NULL, password, hash, sizeof hash) != MQIM_OK ||
	    mqim_store_open(db_path, 0, &st, err, sizeof err) != MQIM_OK) {
		fprintf(stderr, "atk: cannot add %s: %s\n", name, err);
		return -1;
	}
	int rc = mqim_store_user_add(st, name, hash, false);
	if (rc == MQIM_OK && disabled)
		rc = mqim_store_user_set_disabled(st, name, true);
	mqim_store_close(st);
	return rc == MQIM_OK ? 0 : -1;
}

/* ---- the bystander pair -------------------------------------------------------- */

static void pair_fail(struct atk_pair *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void pair_fail(struct atk_pair *p, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&p->mu);
	if (!p->failures++) {
		va_start(ap, fmt);
		vsnprintf(p->why, sizeof p->why, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&p->mu);
}

static int login_sub(struct raw *r, int port, const char *user)
{
	char cid[96], inbox[80];
	snprintf(cid, sizeof cid, "%s/bystander", user);
	snprintf(inbox, sizeof inbox, "im/u/%s", user);
	int rc = raw_login_retry(r, port, cid, user, ATK_PW);
	if (rc != 0) {
		fprintf(stderr, "atk: bystander %s cannot log in: %d\n", user, rc);
		return -1;
	}
	rc = raw_subscribe(r, inbox, MQTT_SUB_QOS(1), STEP_MS);
	if (rc != 1) {
		fprintf(stderr, "atk: bystander %s cannot subscribe: %d\n", user, rc);
		return -1;
	}
	return 0;
}

int atk_pair_open(struct atk_pair *p, int port, const char *a, const char *b)
{
	memset(p, 0, sizeof *p);
	p->ra.fd = p->rb.fd = -1;
	pthread_mutex_init(&p->mu, NULL);
	p->port = port;
	snprintf(p->a, sizeof p->a, "%s", a);
	snprintf(p->b, sizeof p->b, "%s", b);
	if (login_sub(&p->ra, port, a) || login_sub(&p->rb, port, b))
		return -1;
	return 0;
}

/* from sends a fresh message to to's inbox; 0 with its id, or -1. */
static int leg_send(struct atk_pair *p, struct raw *from, const char *fr, const char *to,
		    uint8_t id[MQIM_ENV_ID_LEN])
{
	void *env = NULL;
	char topic[80];
	size_t len = atk_env(&env, "msg", fr, to, "bystander", NULL, id);
	snprintf(topic, sizeof topic, "im/u/%s", to);
	int rc = len ? raw_pub(from, topic, env, len, 1, false, STEP_MS) : RAW_CLOSED;
	free(env);
	if (rc != 0) {
		pair_fail(p, "%s -> %s: publish answered %d", fr, to, rc);
		return -1;
	}
	return 0;
}

/* Wait at r for the message id; anything else is counted as a failure. */
static int leg_recv(struct atk_pair *p, struct raw *r, const char *who,
		    const uint8_t id[MQIM_ENV_ID_LEN])
{
	int64_t deadline = raw_now_ms() + STEP_MS;
	for (;;) {
		struct mqtt_pkt m;
		struct mqim_env env;
		int64_t left = deadline - raw_now_ms();
		int rc = raw_next_publish(r, &m, left > 0 ? (int)left : 0);
		if (rc < 0) {
			pair_fail(p, "%s: nothing arrived (%d)", who, rc);
			return -1;
		}
		if (atk_env_decode(m.payload, m.payload_len, &env) == 0 &&
		    memcmp(env.id, id, MQIM_ENV_ID_LEN) == 0)
			return 0;
		pair_fail(p, "%s: an unexpected message (lost, foreign or duplicated)", who);
	}
}

int atk_pair_round(struct atk_pair *p, int64_t *rtt_us)
{
	uint8_t id1[MQIM_ENV_ID_LEN], id2[MQIM_ENV_ID_LEN];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (leg_send(p, &p->ra, p->a, p->b, id1) || leg_recv(p, &p->rb, p->b, id1) ||
	    leg_send(p, &p->rb, p->b, p->a, id2) || leg_recv(p, &p->ra, p->a, id2))
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	pthread_mutex_lock(&p->mu);
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 1024;
		int64_t *n = realloc(p->rtt_us, cap * sizeof *n);
		if (n) {
			p->rtt_us = n;
			p->cap = cap;
		}
	}
	if (p->n < p->cap)
		p->rtt_us[p->n++] = us;
	pthread_mutex_unlock(&p->mu);
	if (rtt_us)
		*rtt_us = us;
	return 0;
}

int64_t atk_pair_baseline(struct atk_pair *p, size_t n, int64_t *p50_us)
{
	size_t mark = atk_pair_mark(p);
	for (size_t i = 0; i < n; i++)
		if (atk_pair_round(p, NULL) != 0)
			return -1;
	int64_t p99;
	atk_pair_stats(p, mark, NULL, p50_us, &p99);
	return p99;
}

static void *pair_thread(void *arg)
{
	struct atk_pair *p = arg;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		atk_pair_round(p, NULL);
		if (p->interval_ms)
			atk_sleep_ms(p->interval_ms);
	}
	return NULL;
}

int atk_pair_start(struct atk_pair *p, int interval_ms)
{
	if (p->running)
		return 0;
	p->interval_ms = interval_ms;
	p->stop = false;
	if (pthread_create(&p->thread, NULL, pair_thread, p) != 0)
		return -1;
	p->running = true;
	return 0;
}

void atk_pair_stop(struct atk_pair *p)
{
	if (!p->running)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_mutex_unlock(&p->mu);
	pthread_join(p->thread, NULL);
	p->running = false;
}

size_t atk_pair_mark(struct atk_pair *p)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n;
	pthread_mutex_unlock(&p->mu);
	return n;
}

unsigned atk_pair_stats(struct atk_pair *p, size_t mark, size_t *count, int64_t *p50_us,
			int64_t *p99_us)
{
	pthread_mutex_lock(&p->mu);
	size_t n = p->n > mark ? p->n - mark : 0;
	if (count)
		*count = n;
	if (p50_us)
		*p50_us = atk_percentile(p->rtt_us + mark, n, 50);
	if (p99_us)
		*p99_us = atk_percentile(p->rtt_us + mark, n, 99);
	unsigned f = p->failures;
	pthread_mutex_unlock(&p->mu);
	return f;
}

int64_t atk_pair_max(struct atk_pair *p, size_t mark)
{
	pthread_mutex_lock(&p->mu);
	int64_t m = 0;
	for (size_t i = mark; i < p->n; i++)
		if (p->rtt_us[i] > m)
			m = p->rtt_us[i];
	pthread_mutex_unlock(&p->mu);
	return m;
}

void atk_pair_close(struct atk_pair *p)
{
	if (!p->port)
		return; /* never opened */
	p->port = 0;
	atk_pair_stop(p);
	if (p->ra.fd >= 0)
		raw_disconnect(&p->ra);
	if (p->rb.fd >= 0)
		raw_disconnect(&p->rb);
	raw_close(&p->ra);
	raw_close(&p->rb);
	free(p->rtt_us);
	p->rtt_us = NULL;
	p->n = p->cap = 0;
}

void atk_bystanders_ok(struct atk_pair *p, size_t mark, pid_t broker_pid, int wait_ms)
{
	size_t n = 0;
	int64_t end = raw_now_ms() + wait_ms;
	unsigned failures = atk_pair_stats(p, mark, &n, NULL, NULL);
	while (n < 3 && raw_now_ms() < end) {
		atk_sleep_ms(50);
		failures = atk_pair_stats(p, mark, &n, NULL, NULL);
	}
	if (failures)
		fail_msg("bystanders: %u failures, first: %s", failures, p->why);
	if (n < 3)
		fail_msg("bystanders: only %zu round trips during the test", n);
	assert_true(kill(broker_pid, 0) == 0);
}

void atk_login(struct raw *r, int port, const char *user, const char *suffix)
{
	char cid[96];
	snprintf(cid, sizeof cid, "%s/%s", user, suffix);
	int rc = raw_login_retry(r, port, cid, user, ATK_PW);
	if (rc != 0)
		fail_msg("login of %s answered %d", cid, rc);
}
