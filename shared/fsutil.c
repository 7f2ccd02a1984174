/* fsutil.c - atomic file writes and bounded whole-file reads (see fsutil.h). */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

static int write_full(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* fsync the directory holding `path` so the rename itself is durable. */
static int sync_parent(const char *path)
{
	char *copy = mem_strdup(path);
	int fd, rc = -1;

	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	if (fd >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	mem_free(copy);
	return rc;
}

int fsutil_atomic_open(struct fsutil_atomic *w, const char *path,
		       unsigned mode)
{
	size_t tlen = strlen(path) + 32;

	w->fd = -1;
	w->path = mem_strdup(path);
	w->tmp = mem_alloc(tlen);
	if (!w->path || !w->tmp) {
		fsutil_atomic_abort(w);
		errno = ENOMEM;
		return -1;
	}
	snprintf(w->tmp, tlen, "%s.tmp%ld", path, (long)getpid());
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (w->fd < 0) {
		int saved = errno;

		mem_free(w->path);
		mem_free(w->tmp);
		w->path = w->tmp = NULL;
		errno = saved;
		return -1;
	}
	return 0;
}

int fsutil_atomic_write(struct fsutil_atomic *w, const void *data,
			size_t len)
{
	return write_full(w->fd, data, len);
}

void fsutil_atomic_abort(struct fsutil_atomic *w)
{
	int saved = errno;

	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	if (w->tmp)
		unlink(w->tmp);
	mem_free(w->tmp);
	mem_free(w->path);
	w->tmp = w->path = NULL;
	errno = saved;
}

int fsutil_atomic_commit(struct fsutil_atomic *w)
{
	int rc = -1, fd = w->fd;

	w->fd = -1;
	if (fsync(fd)) {
		close(fd);
		goto cleanup;
	}
	if (close(fd) || rename(w->tmp, w->path))
		goto cleanup;
	mem_free(w->tmp);
	w->tmp = NULL;
	rc = sync_parent(w->path);
cleanup:
	fsutil_atomic_abort(w);
	return rc;
}

int fsutil_write_atomic(const char *path, const void *data, size_t len,
			unsigned mode)
{
	struct fsutil_atomic w;

	if (fsutil_atomic_open(&w, path, mode))
		return -1;
	if (fsutil_atomic_write(&w, data, len)) {
		fsutil_atomic_abort(&w);
		return -1;
	}
	return fsutil_atomic_commit(&w);
}

int fsutil_read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *data = NULL;
	size_t have = 0;
	int rc = -1, saved;

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -1;
	if (fstat(fd, &st))
		goto cleanup;
	if ((uint64_t)st.st_size > max) {
		errno = EFBIG;
		goto cleanup;
	}
	data = mem_alloc((size_t)st.st_size + 1);
	if (!data) {
		errno = ENOMEM;
		goto cleanup;
	}
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, data + have, (size_t)st.st_size - have);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto cleanup;
		if (n == 0)
			break;
		have += (size_t)n;
	}
	data[have] = '\0'; /* convenient for text files; not counted in len */
	*out = data;
	*len = have;
	data = NULL;
	rc = 0;
cleanup:
	saved = errno;
	mem_free(data);
	close(fd);
	errno = saved;
	return rc;
}
