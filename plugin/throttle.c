/* throttle.c - login lockout after repeated failures.
 *
 * Failed logins are counted per user name (known or not, so the lockout
 * tells nothing about which names exist) and per source address.  After
 * plugin_opt_lockout_failures failures in a row, that name or address is
 * refused for plugin_opt_lockout_base seconds, doubling with each further
 * failure up to plugin_opt_lockout_max; a successful login resets the name
 * and the address (plugin_opt_lockout_by_address false turns the address
 * count off, for brokers behind a proxy or NAT that all clients share).
 * A locked-out login is refused before any password hash
 * is computed, with the same CONNACK as a wrong password.
 *
 * The table is bounded (plugin_opt_lockout_entries): when full, the entry
 * that failed least recently goes first, so a flood of random names cannot
 * grow the broker's memory.  Entries are kept in least-recently-failed
 * order (moved to the back on each failure).
 */
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

static void make_key(char *key, size_t n, char kind, const char *s)
{
	snprintf(key, n, "%c:%s", kind, s ? s : "");
}

static struct mqim_fail *find(struct mqim_ctx *ctx, const char *key)
{
	struct mqim_fail *f;
	HASH_FIND_STR(ctx->fails, key, f);
	return f;
}

static bool locked(struct mqim_ctx *ctx, char kind, const char *s, time_t now)
{
	char key[sizeof(((struct mqim_fail *)0)->key)];
	make_key(key, sizeof(key), kind, s);
	struct mqim_fail *f = find(ctx, key);
	return f && f->locked_until > now;
}

bool mqim__throttle_locked(struct mqim_ctx *ctx, const char *user, const char *address,
			   time_t now)
{
	if (!ctx->opts.lockout_failures || !ctx->fail_count)
		return false;
	if (!ctx->opts.lockout_by_address)
		address = NULL;
	return locked(ctx, 'u', user, now) || (address && locked(ctx, 'a', address, now));
}

static uint32_t lock_seconds(const struct mqim_opts *o, uint32_t failures)
{
	uint32_t extra = failures - o->lockout_failures; /* 0 for the first lock */
	uint64_t s = o->lockout_base_s;
	while (extra-- && s < o->lockout_max_s)
		s *= 2;
	return s > o->lockout_max_s ? o->lockout_max_s : (uint32_t)s;
}

static void failed(struct mqim_ctx *ctx, char kind, const char *s, time_t now)
{
	char key[sizeof(((struct mqim_fail *)0)->key)];
	make_key(key, sizeof(key), kind, s);
	struct mqim_fail *f = find(ctx, key);
	if (f) {
		HASH_DEL(ctx->fails, f); /* re-added at the back: most recent */
	} else {
		if (ctx->fail_count >= ctx->opts.lockout_entries) {
			struct mqim_fail *oldest = ctx->fails;
			HASH_DEL(ctx->fails, oldest);
			mqim__free(oldest);
			ctx->fail_count--;
		}
		f = mqim__calloc(1, sizeof(*f));
		if (!f)
			return;
		snprintf(f->key, sizeof(f->key), "%s", key);
		ctx->fail_count++;
	}
	f->failures++;
	f->last = now;
	if (f->failures >= ctx->opts.lockout_failures) {
		uint32_t secs = lock_seconds(&ctx->opts, f->failures);
		f->locked_until = now + (time_t)secs;
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				     "mqim: locking out %s %s for %u s after %u failed logins in a row",
				     kind == 'u' ? "user" : "address", key + 2, secs, f->failures);
	}
	HASH_ADD_STR(ctx->fails, key, f);
}

void mqim__throttle_failed(struct mqim_ctx *ctx, const char *user, const char *address,
			   time_t now)
{
	if (!ctx->opts.lockout_failures)
		return;
	if (user && mqim_name_valid(user))
		failed(ctx, 'u', user, now);
	if (address && ctx->opts.lockout_by_address)
		failed(ctx, 'a', address, now);
}

static void reset(struct mqim_ctx *ctx, char kind, const char *s)
{
	char key[sizeof(((struct mqim_fail *)0)->key)];
	make_key(key, sizeof(key), kind, s);
	struct mqim_fail *f = find(ctx, key);
	if (f) {
		HASH_DEL(ctx->fails, f);
		mqim__free(f);
		ctx->fail_count--;
	}
}

void mqim__throttle_reset(struct mqim_ctx *ctx, const char *user, const char *address)
{
	if (!ctx->fail_count)
		return;
	reset(ctx, 'u', user);
	if (address)
		reset(ctx, 'a', address);
}

void mqim__throttle_free(struct mqim_ctx *ctx)
{
	struct mqim_fail *f, *tmp;
	HASH_ITER(hh, ctx->fails, f, tmp) {
		HASH_DEL(ctx->fails, f);
		mqim__free(f);
	}
	ctx->fail_count = 0;
}
