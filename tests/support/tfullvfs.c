/* tfullvfs.c - an SQLite VFS with a full disk on demand; see tfullvfs.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "tfullvfs.h"

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wrap_vfs;
static char watched[512];
static int full;               /* atomic */
static unsigned refused;       /* atomic */

/* Our file: the real VFS's file follows it in the same allocation. */
struct wfile {
	sqlite3_file base;
	sqlite3_file *real;
	bool watched;
};

#define REAL(f) (((struct wfile *)(f))->real)

static int w_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}

static int w_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	return REAL(f)->pMethods->xRead(REAL(f), buf, n, off);
}

static int w_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	if (((struct wfile *)f)->watched && __atomic_load_n(&full, __ATOMIC_ACQUIRE)) {
		__atomic_add_fetch(&refused, 1, __ATOMIC_RELAXED);
		return SQLITE_FULL;
	}
	return REAL(f)->pMethods->xWrite(REAL(f), buf, n, off);
}

static int w_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int w_sync(sqlite3_file *f, int flags)
{
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int w_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int w_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}

static int w_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}

static int w_reserved(sqlite3_file *f, int *out)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int w_fcntl(sqlite3_file *f, int op, void *arg)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int w_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int w_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int w_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int w_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}

static void w_shm_barrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int w_shm_unmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static int w_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **pp)
{
	return REAL(f)->pMethods->xFetch(REAL(f), off, n, pp);
}

static int w_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return REAL(f)->pMethods->xUnfetch(REAL(f), off, p);
}

static const sqlite3_io_methods wrap_io = {
	3, w_close, w_read, w_write, w_truncate, w_sync, w_size, w_lock, w_unlock,
	w_reserved, w_fcntl, w_sector, w_devchar, w_shm_map, w_shm_lock, w_shm_barrier,
	w_shm_unmap, w_fetch, w_unfetch,
};

static int w_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out_flags)
{
	struct wfile *w = (struct wfile *)f;
	(void)vfs;
	w->real = (sqlite3_file *)(w + 1);
	w->watched = name && watched[0] && strncmp(name, watched, strlen(watched)) == 0;
	int rc = real_vfs->xOpen(real_vfs, name, w->real, flags, out_flags);
	/* SQLite calls xClose only when pMethods is set. */
	w->base.pMethods = w->real->pMethods ? &wrap_io : NULL;
	return rc;
}

int tfullvfs_install(void)
{
	if (real_vfs)
		return 0;
	sqlite3_vfs *def = sqlite3_vfs_find(NULL);
	if (!def)
		return -1;
	wrap_vfs = *def;
	wrap_vfs.zName = "tfullvfs";
	wrap_vfs.szOsFile = (int)sizeof(struct wfile) + def->szOsFile;
	wrap_vfs.xOpen = w_open;
	wrap_vfs.pNext = NULL;
	real_vfs = def;
	if (sqlite3_vfs_register(&wrap_vfs, 1) != SQLITE_OK) {
		real_vfs = NULL;
		return -1;
	}
	return 0;
}

void tfullvfs_watch(const char *prefix)
{
	__atomic_store_n(&full, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&refused, 0, __ATOMIC_RELAXED);
	snprintf(watched, sizeof watched, "%s", prefix ? prefix : "");
}

void tfullvfs_set_full(bool on)
{
	__atomic_store_n(&full, on ? 1 : 0, __ATOMIC_RELEASE);
}

unsigned tfullvfs_refused(void)
{
	return __atomic_load_n(&refused, __ATOMIC_RELAXED);
}
