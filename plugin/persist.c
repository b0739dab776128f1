/* persist.c - the de-duplication window across a graceful restart.
 *
 * At cleanup (SIGTERM, or a restart) the window is written to
 * "<db_path>.dedup", oldest entry first, and read back at the next start, so
 * a client resending after a broker restart still produces no second copy.
 * Only what is still inside the window is loaded, and only for users that
 * still exist.  A crash (SIGKILL) loses the window: receivers still drop
 * duplicates by (fr, id) themselves.
 *
 * Format (host byte order: the file never leaves this machine):
 *   "MQIMDD1\n", then per entry: u8 name length, name, 16-byte id, u64 bts.
 * Written to a temporary file (mode 0600), fsync'd, then renamed over the
 * old one.  Runs at start and exit only, never per message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "plugin.h"

static const char magic[8] = { 'M', 'Q', 'I', 'M', 'D', 'D', '1', '\n' };

/* Entries are assembled in buf and written SAVE_BUF bytes at a time: a
 * window of a million ids is saved at every graceful stop, and one stdio
 * call per entry cost more than the rest of the save. */
#define SAVE_BUF 65536
#define ENTRY_MAX (1 + MQIM_NAME_MAX + 16 + 8)

struct save {
	FILE *f;
	const struct mqim_user **by_idx; /* user index -> user */
	uint32_t nidx;
	unsigned long saved;
	size_t used;
	uint8_t *buf;                    /* SAVE_BUF bytes */
};

static int save_flush(struct save *s)
{
	size_t n = s->used;
	s->used = 0;
	return fwrite(s->buf, 1, n, s->f) == n ? 0 : -1;
}

static int save_one(void *arg, uint32_t sender, const uint8_t id[16], uint64_t bts)
{
	struct save *s = arg;
	if (sender >= s->nidx || !s->by_idx[sender])
		return 0; /* the user was deleted: its entries go */
	if (s->used > SAVE_BUF - ENTRY_MAX && save_flush(s))
		return -1;
	const struct mqim_user *u = s->by_idx[sender];
	uint8_t *o = s->buf + s->used;
	*o++ = (uint8_t)u->name_len;
	/* the whole name array, a fixed size the compiler copies inline; the
	 * bytes past the name are overwritten next (ENTRY_MAX leaves room) */
	memcpy(o, u->name, sizeof(u->name));
	o += u->name_len;
	memcpy(o, id, 16);
	memcpy(o + 16, &bts, sizeof(bts));
	s->used = (size_t)(o + 16 + sizeof(bts) - s->buf);
	s->saved++;
	return 0;
}

static int write_entries(struct mqim_ctx *ctx, FILE *f, unsigned long *saved)
{
	struct save s = { f, NULL, ctx->next_user_idx, 0, 0, NULL };
	struct mqim_user *u, *tmp;
	int rc = -1;

	s.by_idx = mqim__calloc(s.nidx ? s.nidx : 1, sizeof(*s.by_idx));
	s.buf = mqim__malloc(SAVE_BUF);
	if (!s.by_idx || !s.buf)
		goto out;
	HASH_ITER(hh, ctx->users, u, tmp)
		if (u->idx < s.nidx)
			s.by_idx[u->idx] = u;
	if (fwrite(magic, sizeof(magic), 1, f) == 1 &&
	    mqim_dedup_foreach(ctx->dedup, save_one, &s) == 0 && save_flush(&s) == 0)
		rc = 0;
	*saved = s.saved;
out:
	mqim__free(s.buf);
	mqim__free(s.by_idx);
	return rc;
}

void mqim__dedup_save(struct mqim_ctx *ctx)
{
	char path[4096], tmp[4120];
	unsigned long saved = 0;

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
	int rc = write_entries(ctx, f, &saved);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -1;
	if (fclose(f) != 0 || rc != 0 || rename(tmp, path) != 0)
		goto fail;
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: saved %lu de-duplication entries to %s", saved, path);
	return;
fail:
	mosquitto_log_printf(MOSQ_LOG_ERR, "mqim: cannot save the de-duplication window to %s: %s",
			     path, strerror(errno));
	unlink(tmp);
}

/* One entry of the file into name, id, bts: 1, 0 at a clean end of file, -1
 * when the file is cut or damaged here. */
static int read_entry(FILE *f, char name[MQIM_NAME_MAX + 1], uint8_t id[16], uint64_t *bts)
{
	uint8_t len;
	if (fread(&len, 1, 1, f) != 1)
		return feof(f) ? 0 : -1;
	if (len == 0 || len > MQIM_NAME_MAX || fread(name, 1, len, f) != len ||
	    fread(id, 1, 16, f) != 16 || fread(bts, sizeof(*bts), 1, f) != 1)
		return -1;
	name[len] = '\0';
	return 1;
}

void mqim__dedup_load(struct mqim_ctx *ctx)
{
	char path[4096], name[MQIM_NAME_MAX + 1], head[sizeof(magic)];
	uint8_t id[16];
	uint64_t bts, now = mqim__now_ms(), window = (uint64_t)ctx->opts.dedup_window_s * 1000u;
	unsigned long loaded = 0, read = 0;
	int rc;

	snprintf(path, sizeof(path), "%s.dedup", ctx->opts.db_path);
	FILE *f = fopen(path, "rb");
	if (!f)
		return; /* first start, or the last stop was not graceful */
	if (fread(head, sizeof(head), 1, f) != 1 || memcmp(head, magic, sizeof(magic))) {
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: ignoring %s: not a de-duplication file", path);
		fclose(f);
		return;
	}
	while ((rc = read_entry(f, name, id, &bts)) == 1) {
		read++;
		struct mqim_user *u = mqim__user_find(ctx, name);
		if (!u || bts > now || now - bts > window)
			continue;
		uint64_t b = bts;
		mqim_dedup_seen(ctx->dedup, u->idx, id, now, &b);
		loaded++;
	}
	fclose(f);
	unlink(path); /* used once: a later crash must not resurrect it */
	if (rc < 0)
		mosquitto_log_printf(MOSQ_LOG_WARNING, "mqim: %s is damaged or truncated after %lu "
				     "entries: the rest of the de-duplication window is lost (receivers "
				     "still drop duplicates)", path, read);
	mosquitto_log_printf(MOSQ_LOG_NOTICE, "mqim: loaded %lu de-duplication entries from %s", loaded, path);
}
