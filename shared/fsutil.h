/* fsutil.h - small file-system helpers with crash-safe semantics: a file is
 * written whole to a temporary name, fsynced, then renamed over the target,
 * so a power cut leaves either the old file or the new one, never half. */
#ifndef BS_FSUTIL_H
#define BS_FSUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Writes `len` bytes atomically to `path` with mode `mode`. Returns 0, or -1
 * with errno set; on failure the temporary file is removed. */
int fsutil_write_atomic(const char *path, const void *data, size_t len,
			unsigned mode);

/* A file being written to a temporary name beside `path`; nothing appears
 * at `path` until fsutil_atomic_commit. For files too large to build in
 * memory first. */
struct fsutil_atomic {
	int fd;
	char *tmp;   /* owned */
	char *path;  /* owned */
};

/* Creates the temporary file. Returns 0, or -1 with errno set (then
 * nothing is left to free). */
int fsutil_atomic_open(struct fsutil_atomic *w, const char *path,
		       unsigned mode);
/* Appends len bytes. Returns 0, or -1 with errno set (the caller then
 * calls fsutil_atomic_abort). */
int fsutil_atomic_write(struct fsutil_atomic *w, const void *data,
			size_t len);
/* fsync, rename over the target, fsync its directory; frees w's memory
 * either way. Returns 0, or -1 with errno set and the temporary removed. */
int fsutil_atomic_commit(struct fsutil_atomic *w);
/* Removes the temporary file and frees w's memory. */
void fsutil_atomic_abort(struct fsutil_atomic *w);

/* Reads a whole file of at most `max` bytes into a fresh allocation (free
 * with mem_free). Returns 0, or -1 with errno set (EFBIG when over max). */
int fsutil_read_all(const char *path, size_t max, uint8_t **out /* OUT */,
		    size_t *len /* OUT */);

#endif
