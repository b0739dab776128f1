/* pack.c - `mqim pack` and `mqim unpack`: a JSON envelope to MessagePack
 * and back, for debugging with mosquitto_pub / mosquitto_sub.
 *
 * JSON cannot say "bin", so: the keys id and ref are 32 hex digits (bin 16
 * in MessagePack); any other bin is written {"$bin": "HEX"} and read back
 * the same way, except a body that is valid UTF-8, which unpack shows as a
 * plain string (pack then sends it as a str, which the contract allows).
 * Integers >= 0 become uint, others int, fractions float64.  Unknown keys
 * go through unchanged.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <msgpack.h>

#include "cli.h"
#include "envelope.h"

/* ---- pack ------------------------------------------------------------------------- */

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Decode hex into a malloc'd buffer; NULL when not hex. */
static unsigned char *from_hex(const char *s, size_t *len)
{
	size_t n = strlen(s);
	if (n % 2)
		return NULL;
	unsigned char *out = malloc(n / 2 + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(out);
			return NULL;
		}
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	*len = n / 2;
	return out;
}

static int pack_value(msgpack_packer *pk, const cJSON *v, const char *key);

static int pack_bin_hex(msgpack_packer *pk, const char *hex, const char *key)
{
	size_t len;
	unsigned char *b = from_hex(hex, &len);
	if (!b) {
		cli_err("pack: %s: not hex", key ? key : "$bin");
		return -1;
	}
	msgpack_pack_bin(pk, len);
	msgpack_pack_bin_body(pk, b, len);
	free(b);
	return 0;
}

static int pack_value(msgpack_packer *pk, const cJSON *v, const char *key)
{
	if (cJSON_IsString(v)) {
		if (key && (strcmp(key, "id") == 0 || strcmp(key, "ref") == 0)) {
			uint8_t id[16];
			if (mqim_id_from_hex(v->valuestring, id) != MQIM_OK) {
				cli_err("pack: %s must be 32 hex digits", key);
				return -1;
			}
			msgpack_pack_bin(pk, 16);
			msgpack_pack_bin_body(pk, id, 16);
			return 0;
		}
		size_t len = strlen(v->valuestring);
		msgpack_pack_str(pk, len);
		msgpack_pack_str_body(pk, v->valuestring, len);
	} else if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d == (double)(int64_t)d && d >= 0)
			msgpack_pack_uint64(pk, (uint64_t)d);
		else if (d == (double)(int64_t)d)
			msgpack_pack_int64(pk, (int64_t)d);
		else
			msgpack_pack_double(pk, d);
	} else if (cJSON_IsBool(v)) {
		if (cJSON_IsTrue(v))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
	} else if (cJSON_IsNull(v)) {
		msgpack_pack_nil(pk);
	} else if (cJSON_IsArray(v)) {
		msgpack_pack_array(pk, (size_t)cJSON_GetArraySize(v));
		for (const cJSON *e = v->child; e; e = e->next)
			if (pack_value(pk, e, NULL) != 0)
				return -1;
	} else if (cJSON_IsObject(v)) {
		const cJSON *bin = cJSON_GetObjectItemCaseSensitive(v, "$bin");
		if (bin && cJSON_IsString(bin) && cJSON_GetArraySize(v) == 1)
			return pack_bin_hex(pk, bin->valuestring, key);
		msgpack_pack_map(pk, (size_t)cJSON_GetArraySize(v));
		for (const cJSON *e = v->child; e; e = e->next) {
			size_t len = strlen(e->string);
			msgpack_pack_str(pk, len);
			msgpack_pack_str_body(pk, e->string, len);
			if (pack_value(pk, e, NULL) != 0)
				return -1;
		}
	} else {
		cli_err("pack: unsupported JSON value");
		return -1;
	}
	return 0;
}

static void pack_key(msgpack_packer *pk, const char *key)
{
	size_t len = strlen(key);
	msgpack_pack_str(pk, len);
	msgpack_pack_str_body(pk, key, len);
}

int cmd_pack(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-check", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	bool check = true;
	int ch;
	(void)cli;

	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (ch) {
		case 'n': check = false; break;
		case 'H': cli_usage("pack"); return EXIT_OK;
		default: return cli_usage("pack");
		}
	}
	if (optind != argc)
		return cli_usage("pack");

	size_t len;
	char *text = cli_read_stdin(&len);
	if (!text) {
		cli_err("pack: cannot read standard input");
		return EXIT_ERROR;
	}
	cJSON *root = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(root)) {
		cli_err("pack: standard input is not one JSON object");
		cJSON_Delete(root);
		return EXIT_ERROR;
	}

	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	bool has_v = cJSON_GetObjectItemCaseSensitive(root, "v") != NULL;
	bool has_id = cJSON_GetObjectItemCaseSensitive(root, "id") != NULL;
	bool has_ts = cJSON_GetObjectItemCaseSensitive(root, "ts") != NULL;
	msgpack_pack_map(&pk, (size_t)cJSON_GetArraySize(root) + !has_v + !has_id + !has_ts);
	if (!has_v) {
		pack_key(&pk, "v");
		msgpack_pack_uint64(&pk, MQIM_ENV_VERSION);
	}
	if (!has_id) {
		/* A fresh UUIDv7: time first, then randomness. */
		uint8_t id[16], rnd[10];
		struct timespec ts;
		FILE *ur = fopen("/dev/urandom", "rb");
		if (!ur || fread(rnd, 1, sizeof rnd, ur) != sizeof rnd)
			memset(rnd, 0x5a, sizeof rnd);
		if (ur)
			fclose(ur);
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		for (int i = 0; i < 6; i++)
			id[i] = (uint8_t)(ms >> (40 - 8 * i));
		memcpy(id + 6, rnd, 10);
		id[6] = (uint8_t)(0x70 | (id[6] & 0x0f));
		id[8] = (uint8_t)(0x80 | (id[8] & 0x3f));
		pack_key(&pk, "id");
		msgpack_pack_bin(&pk, 16);
		msgpack_pack_bin_body(&pk, id, 16);
	}
	if (!has_ts) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		pack_key(&pk, "ts");
		msgpack_pack_uint64(&pk, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
	}
	int ex = EXIT_OK;
	for (const cJSON *e = root->child; e && ex == EXIT_OK; e = e->next) {
		pack_key(&pk, e->string);
		if (pack_value(&pk, e, e->string) != 0)
			ex = EXIT_ERROR;
	}
	cJSON_Delete(root);
	if (ex == EXIT_OK && check) {
		struct mqim_env env;
		struct mqim_env_error err;
		char why[200];
		if (mqim_env_decode(sb.data, sb.size, 0, &env, &err) != MQIM_OK) {
			cli_err("pack: not a valid envelope: %s (use --no-check to write it anyway)",
				mqim_env_error_text(&err, why, sizeof why));
			ex = EXIT_ERROR;
		}
	}
	if (ex == EXIT_OK && fwrite(sb.data, 1, sb.size, stdout) != sb.size)
		ex = EXIT_ERROR;
	msgpack_sbuffer_destroy(&sb);
	return ex;
}

/* ---- unpack ----------------------------------------------------------------------- */

static bool valid_utf8(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	for (size_t i = 0; i < n;) {
		size_t len = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 ? 2 : (s[i] & 0xf0) == 0xe0 ? 3
			     : (s[i] & 0xf8) == 0xf0 ? 4 : 0;
		if (len == 0 || i + len > n || (len == 2 && s[i] < 0xc2))
			return false;
		for (size_t k = 1; k < len; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
		i += len;
	}
	return true;
}

static char *to_hex(const char *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char *out = malloc(2 * n + 1);
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[(unsigned char)p[i] >> 4];
		out[2 * i + 1] = digits[(unsigned char)p[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}

static cJSON *str_json(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	cJSON *j = cJSON_CreateString(s);
	free(s);
	return j;
}

static cJSON *to_json(const msgpack_object *o, const char *key)
{
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return cJSON_CreateNull();
	case MSGPACK_OBJECT_BOOLEAN:
		return cJSON_CreateBool(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		return cJSON_CreateNumber((double)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return cJSON_CreateNumber((double)o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return cJSON_CreateNumber(o->via.f64);
	case MSGPACK_OBJECT_STR:
		return str_json(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN: {
		bool idkey = key && (strcmp(key, "id") == 0 || strcmp(key, "ref") == 0);
		if (!idkey && key && strcmp(key, "body") == 0 && valid_utf8(o->via.bin.ptr, o->via.bin.size))
			return str_json(o->via.bin.ptr, o->via.bin.size);
		char *hex = to_hex(o->via.bin.ptr, o->via.bin.size);
		cJSON *j = NULL;
		if (hex && idkey && o->via.bin.size == 16) {
			j = cJSON_CreateString(hex);
		} else if (hex) {
			j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "$bin", hex);
		}
		free(hex);
		return j;
	}
	case MSGPACK_OBJECT_ARRAY: {
		cJSON *a = cJSON_CreateArray();
		for (uint32_t i = 0; a && i < o->via.array.size; i++)
			cJSON_AddItemToArray(a, to_json(&o->via.array.ptr[i], NULL));
		return a;
	}
	case MSGPACK_OBJECT_MAP: {
		cJSON *m = cJSON_CreateObject();
		for (uint32_t i = 0; m && i < o->via.map.size; i++) {
			const msgpack_object_kv *kv = &o->via.map.ptr[i];
			char k[256];
			if (kv->key.type == MSGPACK_OBJECT_STR)
				snprintf(k, sizeof k, "%.*s", (int)kv->key.via.str.size, kv->key.via.str.ptr);
			else
				snprintf(k, sizeof k, "?%u", i);
			cJSON_AddItemToObject(m, k, to_json(&kv->val, k));
		}
		return m;
	}
	default: {
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "$ext", "unsupported");
		return x;
	}
	}
}

int cmd_unpack(struct cli *cli, int argc, char **argv)
{
	(void)cli;
	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--help") != 0))
		return cli_usage("unpack");
	if (argc == 2) {
		cli_usage("unpack");
		return EXIT_OK;
	}
	size_t len, off = 0;
	char *buf = cli_read_stdin(&len);
	if (!buf) {
		cli_err("unpack: cannot read standard input");
		return EXIT_ERROR;
	}
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	int ex = EXIT_OK, count = 0;
	while (off < len) {
		size_t before = off;
		msgpack_unpack_return r = msgpack_unpack_next(&u, buf, len, &off);
		if (r != MSGPACK_UNPACK_SUCCESS) {
			cli_err("unpack: not MessagePack at byte %zu", before);
			ex = EXIT_ERROR;
			break;
		}
		cJSON *j = to_json(&u.data, NULL);
		char *out = j ? cJSON_PrintUnformatted(j) : NULL;
		if (out)
			printf("%s\n", out);
		free(out);
		cJSON_Delete(j);
		count++;
		if (off < len && buf[off] == '\n')
			off++;   /* mosquitto_sub's newline between payloads */
	}
	msgpack_unpacked_destroy(&u);
	free(buf);
	if (ex == EXIT_OK && count == 0) {
		cli_err("unpack: nothing on standard input");
		ex = EXIT_ERROR;
	}
	return ex;
}
