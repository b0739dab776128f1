/* provision.c - the users of brokers B and C, created offline.
 *
 * Users (all with the password BENCH_PASSWORD):
 *   pairs     p{i}a -> p{i}b         (also the latency and storm chat)
 *   group     g0 (sender), g1..gS    all members of group "bench"
 *   storm     s0..s{K-1}
 *   conns     c0..c{N-1}
 *
 * Broker C: an mqim store written with common/store.h in one transaction.
 * Chat and storm users carry an argon2id hash of the plugin's default cost
 * (19 MiB, 2 passes, 1 lane), so that a first login costs what it costs in
 * production; verifying costs the same whatever the salt, so one hash is
 * made and shared by all of them.  The connection users get a cheap hash
 * (8 KiB, 1 pass): their scenario measures memory, and 10,000 default
 * hashes at the plugin's hashing budget would take 15 minutes to log in.
 *
 * Broker B: a dynamic-security JSON file, as mosquitto_ctrl would write it:
 * PBKDF2-SHA512 with Mosquitto's default 101 iterations and a 12-byte salt.
 * Default access denies publishing, receiving and subscribing; each user
 * has its own role (read its inbox im/u/{user}: subscribeLiteral and
 * publishClientReceive; write im/u/#; subscribe to and read presence
 * im/p/+; write its own presence), and group "bench" has a role to read
 * and write im/g/bench.  Dynsec 2.0 has no %u in publishClientReceive, hence
 * one role per user: the equivalent of the mqim topic table.
 *
 * Tokens (provision_jwt): broker C can also be given an HS256 secret for
 * app-server tokens; the storm then logs its users in with tokens signed
 * with it.  Passwords keep working beside it (the plugin tells a token from
 * a password by its shape).
 *
 * Thread rules: none (called before any run).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bench.h"
#include "mqim.h"
#include "passwd.h"
#include "store.h"

#define DYNSEC_ITERATIONS 101
#define DYNSEC_SALT_LEN   12

void name_pair(char *out, size_t n, unsigned pair, bool receiver)
{
	snprintf(out, n, "p%u%c", pair, receiver ? 'b' : 'a');
}

void name_group_member(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "g%u", i);
}

void name_storm(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "s%u", i);
}

void name_conn(char *out, size_t n, unsigned i)
{
	snprintf(out, n, "c%u", i);
}

/* Calls fn for every user: name and whether it is a connection user. */
static int each_user(const struct provision_cfg *cfg,
		     int (*fn)(void *ctx, const char *name, bool conn_user), void *ctx)
{
	char name[72];
	int rc = 0;
	for (unsigned i = 0; rc == 0 && i < cfg->pairs; i++) {
		name_pair(name, sizeof(name), i, false);
		rc = fn(ctx, name, false);
		name_pair(name, sizeof(name), i, true);
		rc = rc ? rc : fn(ctx, name, false);
	}
	for (unsigned i = 0; rc == 0 && i <= cfg->group_size; i++) {
		name_group_member(name, sizeof(name), i);
		rc = fn(ctx, name, false);
	}
	for (unsigned i = 0; rc == 0 && i < cfg->storm_k; i++) {
		name_storm(name, sizeof(name), i);
		rc = fn(ctx, name, false);
	}
	for (unsigned i = 0; rc == 0 && i < cfg->conns; i++) {
		name_conn(name, sizeof(name), i);
		rc = fn(ctx, name, true);
	}
	return rc;
}

/* ---- broker C: the mqim store ---------------------------------------------- */

struct store_ctx {
	struct mqim_store *st;
	const char *hash_chat, *hash_conn;
};

static int store_user(void *ctx, const char *name, bool conn_user)
{
	struct store_ctx *s = ctx;
	int rc = mqim_store_user_add(s->st, name, conn_user ? s->hash_conn : s->hash_chat, false);
	if (rc != MQIM_OK)
		fail("store: add user %s: %s", name, mqim_strerror(rc));
	return rc;
}

static int make_store(const char *path, const struct provision_cfg *cfg)
{
	const struct mqim_passwd_params cheap = { 1, 8, 1 };
	char hchat[MQIM_HASH_MAX], hconn[MQIM_HASH_MAX], err[256] = "";
	struct store_ctx s = { NULL, hchat, hconn };
	int rc = mqim_passwd_hash(cfg->cheap ? &cheap : NULL, BENCH_PASSWORD, hchat, sizeof(hchat));
	if (rc == MQIM_OK)
		rc = mqim_passwd_hash(&cheap, BENCH_PASSWORD, hconn, sizeof(hconn));
	if (rc == MQIM_OK)
		rc = mqim_store_open(path, MQIM_STORE_CREATE, &s.st, err, sizeof(err));
	if (rc != MQIM_OK) {
		fail("store %s: %s", path, err[0] ? err : mqim_strerror(rc));
		return -1;
	}
	rc = mqim_store_begin(s.st);
	if (rc == MQIM_OK)
		rc = each_user(cfg, store_user, &s);
	if (rc == MQIM_OK)
		rc = mqim_store_group_add(s.st, BENCH_GROUP);
	for (unsigned i = 0; rc == MQIM_OK && i <= cfg->group_size; i++) {
		char name[72];
		name_group_member(name, sizeof(name), i);
		rc = mqim_store_member_add(s.st, BENCH_GROUP, name);
	}
	if (rc == MQIM_OK)
		rc = mqim_store_commit(s.st);
	else
		mqim_store_rollback(s.st);
	if (rc != MQIM_OK)
		fail("store %s: %s (%s)", path, mqim_strerror(rc), mqim_store_errmsg(s.st));
	mqim_store_close(s.st);
	return rc == MQIM_OK ? 0 : -1;
}

/* ---- broker B: the dynamic-security JSON --------------------------------------- */

struct dynsec_ctx {
	cJSON *clients, *roles;
	char salt_b64[32], hash_b64[128];
};

static void add_acl(cJSON *acls, const char *type, const char *topic)
{
	cJSON *a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "acltype", type);
	cJSON_AddStringToObject(a, "topic", topic);
	cJSON_AddNumberToObject(a, "priority", 0);
	cJSON_AddBoolToObject(a, "allow", true);
	cJSON_AddItemToArray(acls, a);
}

static cJSON *role_ref(const char *rolename)
{
	cJSON *arr = cJSON_CreateArray(), *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "rolename", rolename);
	cJSON_AddItemToArray(arr, r);
	return arr;
}

static int dynsec_user(void *ctx, const char *name, bool conn_user)
{
	struct dynsec_ctx *d = ctx;
	char rolename[96], topic[96];
	(void)conn_user;
	snprintf(rolename, sizeof(rolename), "u-%s", name);

	cJSON *c = cJSON_CreateObject();
	cJSON_AddStringToObject(c, "username", name);
	cJSON_AddItemToObject(c, "roles", role_ref(rolename));
	cJSON_AddStringToObject(c, "password", d->hash_b64);
	cJSON_AddStringToObject(c, "salt", d->salt_b64);
	cJSON_AddNumberToObject(c, "iterations", DYNSEC_ITERATIONS);
	cJSON_AddItemToArray(d->clients, c);

	cJSON *r = cJSON_CreateObject(), *acls = cJSON_CreateArray();
	cJSON_AddStringToObject(r, "rolename", rolename);
	snprintf(topic, sizeof(topic), "im/u/%s", name);
	add_acl(acls, "subscribeLiteral", topic);
	add_acl(acls, "publishClientReceive", topic);
	add_acl(acls, "publishClientSend", "im/u/#");
	add_acl(acls, "subscribePattern", "im/p/+");
	add_acl(acls, "publishClientReceive", "im/p/+");
	snprintf(topic, sizeof(topic), "im/p/%s", name);
	add_acl(acls, "publishClientSend", topic);
	cJSON_AddItemToObject(r, "acls", acls);
	cJSON_AddItemToArray(d->roles, r);
	return 0;
}

static int dynsec_hash(struct dynsec_ctx *d)
{
	unsigned char salt[DYNSEC_SALT_LEN], hash[64];
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(BENCH_PASSWORD, (int)strlen(BENCH_PASSWORD), salt, sizeof(salt),
			      DYNSEC_ITERATIONS, EVP_sha512(), sizeof(hash), hash) != 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)d->salt_b64, salt, sizeof(salt));
	EVP_EncodeBlock((unsigned char *)d->hash_b64, hash, sizeof(hash));
	return 0;
}

static cJSON *group_json(const struct provision_cfg *cfg, cJSON *roles)
{
	cJSON *groups = cJSON_CreateArray(), *g = cJSON_CreateObject();
	cJSON *members = cJSON_CreateArray(), *r = cJSON_CreateObject(), *acls = cJSON_CreateArray();
	cJSON_AddStringToObject(g, "groupname", BENCH_GROUP);
	cJSON_AddItemToObject(g, "roles", role_ref("g-" BENCH_GROUP));
	for (unsigned i = 0; i <= cfg->group_size; i++) {
		char name[72];
		cJSON *m = cJSON_CreateObject();
		name_group_member(name, sizeof(name), i);
		cJSON_AddStringToObject(m, "username", name);
		cJSON_AddItemToArray(members, m);
	}
	cJSON_AddItemToObject(g, "clients", members);
	cJSON_AddItemToArray(groups, g);
	cJSON_AddStringToObject(r, "rolename", "g-" BENCH_GROUP);
	add_acl(acls, "subscribeLiteral", "im/g/" BENCH_GROUP);
	add_acl(acls, "publishClientSend", "im/g/" BENCH_GROUP);
	add_acl(acls, "publishClientReceive", "im/g/" BENCH_GROUP);
	cJSON_AddItemToObject(r, "acls", acls);
	cJSON_AddItemToArray(roles, r);
	return groups;
}

static int make_dynsec(const char *path, const struct provision_cfg *cfg)
{
	struct dynsec_ctx d;
	memset(&d, 0, sizeof(d));
	if (dynsec_hash(&d) != 0)
		return -1;
	cJSON *root = cJSON_CreateObject(), *def = cJSON_CreateObject();
	cJSON_AddBoolToObject(def, "publishClientSend", false);
	cJSON_AddBoolToObject(def, "publishClientReceive", false);
	cJSON_AddBoolToObject(def, "subscribe", false);
	cJSON_AddBoolToObject(def, "unsubscribe", true);
	cJSON_AddItemToObject(root, "defaultACLAccess", def);
	d.clients = cJSON_AddArrayToObject(root, "clients");
	d.roles = cJSON_CreateArray();
	each_user(cfg, dynsec_user, &d);
	cJSON_AddItemToObject(root, "groups", group_json(cfg, d.roles));
	cJSON_AddItemToObject(root, "roles", d.roles);
	char *text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	int rc = text ? write_file_atomic(path, text, strlen(text), 0600) : -1;
	free(text);
	if (rc != 0)
		fail("cannot write %s: %s", path, strerror(errno));
	return rc;
}

int provision_jwt(struct bench_env *env)
{
	unsigned char raw[32];
	char path[300];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(env->jwt_secret + 2 * i, 3, "%02x", raw[i]);
	snprintf(path, sizeof(path), "%s/jwt.secret", env->work);
	if (write_file_atomic(path, env->jwt_secret, strlen(env->jwt_secret), 0600) != 0) {
		fail("cannot write %s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(env->jwt_conf, sizeof(env->jwt_conf), "plugin_opt_jwt_secret_file %s\n", path);
	env->c_conf_extra = env->jwt_conf;
	return 0;
}

int provision(struct bench_env *env, const struct provision_cfg *cfg)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(env->work, sizeof(env->work), "%s/mqim-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(env->work)) {
		fail("mkdtemp %s: %s", env->work, strerror(errno));
		return -1;
	}
	snprintf(env->store_path, sizeof(env->store_path), "%s/mqim.db", env->work);
	snprintf(env->dynsec_path, sizeof(env->dynsec_path), "%s/dynsec.json", env->work);
	uint64_t t0 = mono_ns();
	if (make_store(env->store_path, cfg) != 0 || make_dynsec(env->dynsec_path, cfg) != 0)
		return -1;
	note("provisioned %u pairs, a group of %u, %u storm and %u connection users in %.1f s (%s)",
	     cfg->pairs, cfg->group_size, cfg->storm_k, cfg->conns,
	     (double)(mono_ns() - t0) / 1e9, env->work);
	return 0;
}
