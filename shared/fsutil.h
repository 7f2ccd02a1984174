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

/* Reads a whole file of at most `max` bytes into a fresh allocation (free
 * with mem_free). Returns 0, or -1 with errno set (EFBIG when over max). */
int fsutil_read_all(const char *path, size_t max, uint8_t **out /* OUT */,
		    size_t *len /* OUT */);

#endif
