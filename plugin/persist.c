/* persist.c - the de-duplication window across a graceful restart.
 *
 * At cleanup (SIGTERM, or a restart) the window is written to
 * "<db_path>.dedup" and read back at the next start, so a client resending
 * after a broker restart still produces no second copy.  Only what is still
 * inside the window is loaded, and only for users that still exist.  A
 * crash (SIGKILL) loses the window: receivers still drop duplicates by
 * (fr, id) themselves.
 *
 * Format (host byte order: the file never leaves this machine):
 *   "MQIMDD2\n";
 *   u32 user count, then per user: u32 index, u8 name length, name;
 *   u64 record count, then the records of mqim_dedup_dump() (dedup.h),
 *   oldest first, whose sender is one of those indexes (or of a user
 *   deleted since, whose records are skipped at load).
 * The records are the window's own memory, written in one or two calls: a
 * window of a million ids is saved at every graceful stop, and this keeps
 * that to a plain copy.  Written to a temporary file (mode 0600), fsync'd,
 * then renamed over the old one.  Runs at start and exit only, never per
 * message.  A file of another version ("MQIMDD1\n") is ignored, named in
 * the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

static const char magic[8] = { 'M', 'Q', 'I', 'M', 'D', 'D', '2', '\n' };

/* Records are read back this many at a time. */
#define LOAD_RECS 1024
/* More users than this in a file means it is damaged. */
#define LOAD_USERS_MAX (1u << 24)

static int put(FILE *f, const void *p, size_t n)
{
	return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int put_recs(void *f, const void *recs, size_t n)
{
	return fwrite(recs, MQIM_DEDUP_REC, n, f) == n ? 0 : -1;
}

static int write_entries(struct mqim_ctx *ctx, FILE *f)
{
	uint32_t nusers = HASH_COUNT(ctx->users);
	uint64_t nrec = mqim_dedup_count(ctx->dedup);
	struct mqim_user *u, *tmp;

	if (put(f, magic, sizeof(magic)) || put(f, &nusers, sizeof(nusers)))
		return -1;
	HASH_ITER(hh, ctx->users, u, tmp) {
		uint8_t len = (uint8_t)u->name_len;
		if (put(f, &u->idx, sizeof(u->idx)) || put(f, &len, 1) || put(f, u->name, len))
			return -1;
	}
	if (put(f, &nrec, sizeof(nrec)))
		return -1;
	return mqim_dedup_dump(ctx->dedup, put_recs, f);
}

void mqim__dedup_save(struct mqim_ctx *ctx)
{
	char path[4096], tmp[4120];

	if (!ctx->dedup || !mqim_dedup_count(ctx->dedup))
		return;
	snprintf(path, sizeof(path), "%s.dedup", ctx->opts.db_path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		goto fail;
	}
	int rc = write_entries(ctx, f);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -1;
	if (fclose(f) != 0 || rc != 0 || rename(tmp, path) != 0)
		goto fail;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: saved %zu de-duplication entries to %s",
			     mqim_dedup_count(ctx->dedup), path);
	return;
fail:
	mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot save the de-duplication window to %s: %s",
			     path, strerror(errno));
	unlink(tmp);
}

/* A user of the file: its index there, and who has that name now. */
struct known {
	uint32_t idx;
	struct mqim_user *user;
};

static int known_cmp(const void *a, const void *b)
{
	uint32_t x = ((const struct known *)a)->idx, y = ((const struct known *)b)->idx;
	return x < y ? -1 : x > y;
}

/* The users of the file, sorted by index, those that still exist only
 * (*n of them); NULL with *n 0 when there are none.  -1 when the file is
 * cut or damaged here, or out of memory. */
static int read_users(struct mqim_ctx *ctx, FILE *f, struct known **out, uint32_t *n)
{
	char name[MQIM_NAME_MAX + 1];
	uint32_t count, idx;
	uint8_t len;

	*out = NULL, *n = 0;
	if (fread(&count, sizeof(count), 1, f) != 1 || count > LOAD_USERS_MAX)
		return -1;
	struct known *k = count ? mqim__calloc(count, sizeof(*k)) : NULL;
	if (count && !k)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (fread(&idx, sizeof(idx), 1, f) != 1 || fread(&len, 1, 1, f) != 1 || len == 0 ||
		    len > MQIM_NAME_MAX || fread(name, 1, len, f) != len) {
			mqim__free(k);
			return -1;
		}
		name[len] = '\0';
		struct mqim_user *u = mqim__user_find(ctx, name);
		if (u)
			k[(*n)++] = (struct known){ idx, u };
	}
	qsort(k, *n, sizeof(*k), known_cmp);
	*out = k;
	return 0;
}

static struct mqim_user *known_user(const struct known *k, uint32_t n, uint32_t idx)
{
	struct known key = { idx, NULL };
	const struct known *hit = n ? bsearch(&key, k, n, sizeof(*k), known_cmp) : NULL;
	return hit ? hit->user : NULL;
}

/* The records of the file into the window: those of users that still
 * exist and still inside the window.  0, or -1 when the file ends early. */
static int read_records(struct mqim_ctx *ctx, FILE *f, const struct known *k, uint32_t nk,
			unsigned long *read, unsigned long *loaded)
{
	_Static_assert(MQIM_DEDUP_REC == 32, "the record layout read below");
	uint8_t buf[LOAD_RECS * MQIM_DEDUP_REC];
	uint64_t nrec, now = mqim__now_ms(), window = (uint64_t)ctx->opts.dedup_window_s * 1000u;

	if (fread(&nrec, sizeof(nrec), 1, f) != 1)
		return -1;
	while (nrec) {
		size_t want = nrec < LOAD_RECS ? (size_t)nrec : LOAD_RECS;
		size_t got = fread(buf, MQIM_DEDUP_REC, want, f);
		for (size_t i = 0; i < got; i++) {
			const uint8_t *r = buf + i * MQIM_DEDUP_REC;
			uint64_t bts;
			uint32_t sender;
			memcpy(&bts, r + 16, sizeof(bts));
			memcpy(&sender, r + 24, sizeof(sender));
			struct mqim_user *u = known_user(k, nk, sender);
			if (!u || bts > now || now - bts > window)
				continue;
			mqim_dedup_seen(ctx->dedup, u->idx, r, now, &bts);
			(*loaded)++;
		}
		*read += got;
		if (got < want)
			return -1;
		nrec -= got;
	}
	return 0;
}

void mqim__dedup_load(struct mqim_ctx *ctx)
{
	char path[4096], head[sizeof(magic)];
	unsigned long loaded = 0, read = 0;
	struct known *k = NULL;
	uint32_t nk = 0;

	snprintf(path, sizeof(path), "%s.dedup", ctx->opts.db_path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return; /* first start, or the last stop was not graceful */
	if (fread(head, sizeof(head), 1, f) != 1 || memcmp(head, magic, sizeof(magic))) {
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: ignoring %s: not a de-duplication file "
				     "of this version (receivers still drop duplicates)", path);
		fclose(f);
		unlink(path);
		return;
	}
	int rc = read_users(ctx, f, &k, &nk);
	if (rc == 0)
		rc = read_records(ctx, f, k, nk, &read, &loaded);
	mqim__free(k);
	fclose(f);
	unlink(path); /* used once: a later crash must not resurrect it */
	if (rc < 0)
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: %s is damaged or truncated after %lu "
				     "entries: the rest of the de-duplication window is lost (receivers "
				     "still drop duplicates)", path, read);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: loaded %lu de-duplication entries from %s", loaded, path);
}
