/* plugin.c - the mqim plugin's entry points: options, set-up, tear-down.
 *
 * Mosquitto 2.0 loads build/mqim_plugin.so (`plugin` in mosquitto.conf),
 * asks for the plugin API version (5), calls mosquitto_plugin_init() with
 * the plugin_opt_* options, and mosquitto_plugin_cleanup() at exit.  Init
 * creates the one context, loads the store and registers every callback;
 * cleanup unregisters them all (callbacks left registered leak) and frees.
 * Options are documented in docs/plugin.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <openssl/rand.h>

#include "plugin.h"
#include "topics.h"

/* ---- options ------------------------------------------------------------ */

enum opt_type { OPT_STR, OPT_U32, OPT_BOOL };

static const struct opt_def {
	const char *key;            /* after "plugin_opt_" */
	enum opt_type type;
	size_t offset;              /* in struct mqim_opts */
	uint32_t min, max;
} opt_table[] = {
	{ "db_path",             OPT_STR,  offsetof(struct mqim_opts, db_path), 0, 0 },
	{ "dedup_window",        OPT_U32,  offsetof(struct mqim_opts, dedup_window_s), 1, 7 * 86400 },
	{ "dedup_max",           OPT_U32,  offsetof(struct mqim_opts, dedup_max), 1, 100000000 },
	{ "max_payload",         OPT_U32,  offsetof(struct mqim_opts, max_payload), 64, 268435455 },
	{ "auth_cache_ttl",      OPT_U32,  offsetof(struct mqim_opts, auth_cache_ttl_s), 0, 30 * 86400 },
	{ "auth_hash_budget_ms", OPT_U32,  offsetof(struct mqim_opts, hash_budget_ms), 1, 1000 },
	{ "push",                OPT_BOOL, offsetof(struct mqim_opts, push), 0, 0 },
	{ "argon2_memory",       OPT_U32,  offsetof(struct mqim_opts, pw.m_cost_kib), 8, 4194304 },
	{ "argon2_passes",       OPT_U32,  offsetof(struct mqim_opts, pw.t_cost), 1, 100 },
	{ "argon2_lanes",        OPT_U32,  offsetof(struct mqim_opts, pw.parallelism), 1, 64 },
	{ "jwt_secret_file",     OPT_STR,  offsetof(struct mqim_opts, jwt_secret_file), 0, 0 },
	{ "jwt_public_key_file", OPT_STR,  offsetof(struct mqim_opts, jwt_public_key_file), 0, 0 },
	{ "jwt_audience",        OPT_STR,  offsetof(struct mqim_opts, jwt_audience), 0, 0 },
	{ "jwt_issuer",          OPT_STR,  offsetof(struct mqim_opts, jwt_issuer), 0, 0 },
	{ "jwt_auto_create",     OPT_BOOL, offsetof(struct mqim_opts, jwt_auto_create), 0, 0 },
	{ "max_sessions_per_user", OPT_U32, offsetof(struct mqim_opts, max_sessions), 0, 1000000 },
	{ "lockout_failures",    OPT_U32,  offsetof(struct mqim_opts, lockout_failures), 0, 1000 },
	{ "lockout_base",        OPT_U32,  offsetof(struct mqim_opts, lockout_base_s), 1, 86400 },
	{ "lockout_max",         OPT_U32,  offsetof(struct mqim_opts, lockout_max_s), 1, 30 * 86400 },
	{ "lockout_entries",     OPT_U32,  offsetof(struct mqim_opts, lockout_entries), 1, 10000000 },
	{ "lockout_by_address",  OPT_BOOL, offsetof(struct mqim_opts, lockout_by_address), 0, 0 },
	{ "rate_per_user",       OPT_U32,  offsetof(struct mqim_opts, rate_per_user), 0, 1000000 },
	{ "rate_burst",          OPT_U32,  offsetof(struct mqim_opts, rate_burst), 0, 10000000 },
};

static void opts_defaults(struct mqim_opts *o)
{
	const struct mqim_passwd_params pw = MQIM_PASSWD_PARAMS_DEFAULT;
	memset(o, 0, sizeof(*o));
	o->dedup_window_s = 600;
	o->dedup_max = 1000000;
	o->max_payload = 65536;
	o->auth_cache_ttl_s = 3600;
	o->hash_budget_ms = 300;
	o->push = true;
	o->pw = pw;
	o->lockout_failures = 5;
	o->lockout_base_s = 60;
	o->lockout_max_s = 3600;
	o->lockout_entries = 100000;
	o->lockout_by_address = true;
}

static int opt_set(struct mqim_opts *o, const struct opt_def *d, const char *value)
{
	char *field = (char *)o + d->offset;
	char *end;

	switch (d->type) {
	case OPT_STR: {
		char *s = mosquitto_strdup(value);
		if (!s)
			return MQIM_ENOMEM;
		mosquitto_free(*(char **)field);
		*(char **)field = s;
		return MQIM_OK;
	}
	case OPT_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "1"))
			*(bool *)field = true;
		else if (!strcmp(value, "false") || !strcmp(value, "0"))
			*(bool *)field = false;
		else
			return MQIM_EINVAL;
		return MQIM_OK;
	case OPT_U32: {
		errno = 0;
		unsigned long long v = strtoull(value, &end, 10);
		if (errno || end == value || *end || v < d->min || v > d->max)
			return MQIM_EINVAL;
		*(uint32_t *)field = (uint32_t)v;
		return MQIM_OK;
	}
	}
	return MQIM_EINVAL;
}

static int opts_parse(struct mqim_opts *o, struct mosquitto_opt *opts, int count)
{
	opts_defaults(o);
	for (int i = 0; i < count; i++) {
		const struct opt_def *d = NULL;
		for (size_t k = 0; k < sizeof(opt_table) / sizeof(opt_table[0]); k++)
			if (!strcmp(opts[i].key, opt_table[k].key))
				d = &opt_table[k];
		if (!d) {
			mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: unknown option plugin_opt_%s (see docs/plugin.md)",
					     opts[i].key);
			return MQIM_EINVAL;
		}
		if (opt_set(o, d, opts[i].value ? opts[i].value : "")) {
			if (d->type == OPT_U32)
				mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: plugin_opt_%s must be a number from %u to %u",
						     d->key, d->min, d->max);
			else
				mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: bad value for plugin_opt_%s", d->key);
			return MQIM_EINVAL;
		}
	}
	if (!o->rate_burst)
		o->rate_burst = 2 * o->rate_per_user;
	if (!o->jwt_audience && !(o->jwt_audience = mosquitto_strdup("mqim")))
		return MQIM_ENOMEM;
	if (!o->db_path || !*o->db_path) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: plugin_opt_db_path is required: the SQLite store of users and groups");
		return MQIM_EINVAL;
	}
	return MQIM_OK;
}

/* ---- registration ------------------------------------------------------- */

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
	const char *event_data;
} callbacks[] = {
	{ MOSQ_EVT_BASIC_AUTH, mqim__on_basic_auth, NULL },
	{ MOSQ_EVT_ACL_CHECK,  mqim__on_acl_check,  NULL },
	{ MOSQ_EVT_MESSAGE,    mqim__on_message,    NULL },
	{ MOSQ_EVT_CONTROL,    mqim__on_control,    MQIM_CONTROL_TOPIC },
	{ MOSQ_EVT_DISCONNECT, mqim__on_disconnect, NULL },
	{ MOSQ_EVT_RELOAD,     mqim__on_reload,     NULL },
	{ MOSQ_EVT_TICK,       mqim__on_tick,       NULL },
};
#define NCALLBACKS (sizeof(callbacks) / sizeof(callbacks[0]))

static void unregister_all(struct mqim_ctx *ctx)
{
	for (size_t i = 0; i < NCALLBACKS; i++)
		mosquitto_callback_unregister(ctx->pid, callbacks[i].event, callbacks[i].cb,
					      callbacks[i].event_data);
}

static int register_all(struct mqim_ctx *ctx)
{
	for (size_t i = 0; i < NCALLBACKS; i++) {
		int rc = mosquitto_callback_register(ctx->pid, callbacks[i].event, callbacks[i].cb,
						     callbacks[i].event_data, ctx);
		if (rc != MOSQ_ERR_SUCCESS) {
			mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot register callback for event %d: %s",
					     callbacks[i].event, mosquitto_strerror(rc));
			return rc;
		}
	}
	return MOSQ_ERR_SUCCESS;
}

static void ctx_free(struct mqim_ctx *ctx)
{
	if (!ctx)
		return;
	mqim__sessions_free(ctx);
	mqim__users_free(ctx);
	mqim__poison_free(ctx);
	mqim__throttle_free(ctx);
	mqim__jwt_free(ctx);
	mqim_dedup_free(ctx->dedup);
	mqim_store_close(ctx->store);
	for (size_t i = 0; i < sizeof(opt_table) / sizeof(opt_table[0]); i++)
		if (opt_table[i].type == OPT_STR)
			mosquitto_free(*(char **)((char *)&ctx->opts + opt_table[i].offset));
	mosquitto_free(ctx);
}

static int ctx_open(struct mqim_ctx *ctx)
{
	char err[512];
	uint64_t seed[2];

	/* A missing store is created; an existing one is never re-created, so an
	 * emptied or truncated file stops the broker instead of silently
	 * starting with no users. */
	struct stat st;
	unsigned flags = stat(ctx->opts.db_path, &st) == 0 ? 0 : MQIM_STORE_CREATE;
	int rc = mqim_store_open(ctx->opts.db_path, flags, &ctx->store, err, sizeof(err));
	if (rc) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: %s", err);
		return rc;
	}
	if ((rc = mqim__users_load(ctx, false)))
		return rc;
	if (!ctx->users)
		mosquitto_log_printf(MOSQ_LOG_WARNING,
				     "mqim: no users in %s: create an admin with 'mqimctl --db %s init ADMIN'",
				     ctx->opts.db_path, ctx->opts.db_path);
	if ((rc = mqim__jwt_init(ctx)))
		return rc;
	if ((rc = mqim__auth_init(ctx))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot prepare password hashing: %s",
				     mqim_strerror(rc));
		return rc;
	}
	if (RAND_bytes((unsigned char *)seed, sizeof(seed)) != 1)
		return MQIM_EIO;
	ctx->dedup = mqim_dedup_new(ctx->opts.dedup_max, (uint64_t)ctx->opts.dedup_window_s * 1000u, seed);
	if (!ctx->dedup) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: out of memory for a de-duplication window of %u ids",
				     ctx->opts.dedup_max);
		return MQIM_ENOMEM;
	}
	mqim__dedup_load(ctx);
	return MQIM_OK;
}

/* ---- entry points -------------------------------------------------------- */

MQIM_EXPORT int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == 5)
			return 5;
	return -1;
}

MQIM_EXPORT int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
				      struct mosquitto_opt *opts, int opt_count)
{
	struct mqim_ctx *ctx = mosquitto_calloc(1, sizeof(*ctx));
	if (!ctx)
		return MOSQ_ERR_NOMEM;
	ctx->pid = identifier;
	if (opts_parse(&ctx->opts, opts, opt_count) || ctx_open(ctx) || register_all(ctx)) {
		unregister_all(ctx);
		ctx_free(ctx);
		mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: plugin not started, see the lines above");
		return MOSQ_ERR_UNKNOWN;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			     "mqim: ready (dedup window %us / %u ids, %zu bytes; max payload %u)",
			     ctx->opts.dedup_window_s, ctx->opts.dedup_max,
			     mqim_dedup_bytes(ctx->dedup), ctx->opts.max_payload);
	*userdata = ctx;
	return MOSQ_ERR_SUCCESS;
}

MQIM_EXPORT int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count)
{
	struct mqim_ctx *ctx = userdata;
	if (!ctx)
		return MOSQ_ERR_SUCCESS;
	unregister_all(ctx);
	mqim__dedup_save(ctx);
	ctx_free(ctx);
	return MOSQ_ERR_SUCCESS;
}
