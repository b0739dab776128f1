/* tfullvfs.h - a full disk on demand, for tests: an SQLite VFS that fails
 * writes with SQLITE_FULL.
 *
 * tfullvfs_install() registers, as the process's default VFS, a thin
 * wrapper around the one that was the default: every file whose path
 * starts with a watched prefix fails xWrite with SQLITE_FULL while the
 * prefix is "full", as a file system with no room left would (the write-
 * ahead log included, so a COMMIT fails and is rolled back).  Reads, locks
 * and shared memory pass through.  Nothing is written to the real disk in
 * the meantime, so "freeing space" is just clearing the flag.
 *
 * Install it before the connections to watch are opened (mqim_create()).
 * Thread rules: install once, from one thread; tfullvfs_watch() and
 * tfullvfs_set_full() may be called from any thread at any time (the flag
 * is atomic); one prefix is watched at a time.
 */
#ifndef MQIM_TFULLVFS_H
#define MQIM_TFULLVFS_H

#include <stdbool.h>

/* Make the wrapper the default VFS (idempotent).  0, or -1 on error. */
int tfullvfs_install(void);

/* Watch files under prefix (copied; NULL: none); not full to begin with. */
void tfullvfs_watch(const char *prefix);

/* Fail (true) or pass (false) writes to the watched files from now on. */
void tfullvfs_set_full(bool full);

/* Writes refused since the last tfullvfs_watch(). */
unsigned tfullvfs_refused(void);

#endif
