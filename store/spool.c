/*
 * spool.c - a message body kept in memory up to mem_limit, then in an
 * unlinked temporary file.  See spool.h.
 *
 * Must never leave a named file behind (O_TMPFILE, or mkstemp + unlink at
 * once), never grow memory past mem_limit, and never move a shared file
 * offset: appends use pwrite at s->size and spool_write_to() uses pread,
 * so readers on several threads do not disturb each other.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "durable.h"

#define SPOOL_COPY_CHUNK 32768
#define SPOOL_KEEP_MEM 65536	/* reset keeps at most this much memory */

void
spool_init(struct spool *s, const char *tmpdir, size_t mem_limit)
{
	buf_init(&s->mem, mem_limit);
	s->fd = -1;
	s->size = 0;
	s->nlines = 0;
	s->mem_limit = mem_limit;
	if (tmpdir == NULL || tmpdir[0] == '\0')
		tmpdir = "/tmp";
	/* Too long: leave it empty, the switch to a file then fails. */
	if (strlcpy_checked(s->tmpdir, tmpdir, sizeof(s->tmpdir)) < 0)
		s->tmpdir[0] = '\0';
}

static uint64_t
count_lf(const void *p, size_t n)
{
	const char *c = p, *end = c + n;
	uint64_t lf = 0;

	while (c < end && (c = memchr(c, '\n', (size_t)(end - c))) != NULL) {
		lf++;
		c++;
	}
	return lf;
}

/* pwrite all of p at off; loops on EINTR and short writes. */
static int
pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		if (off > (uint64_t)LLONG_MAX - n) {
			errno = EFBIG;
			return -1;
		}
		w = pwrite(fd, c, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

static int
spool_open_tmpfile(const char *tmpdir)
{
	char path[PATH_MAX];
	int fd, saved;

	if (tmpdir[0] == '\0') {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* Kernel or file system without O_TMPFILE: a named file, unlinked. */
	if (snprintf_checked(path, sizeof(path), "%s/.spool.XXXXXX",
	    tmpdir) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (unlink(path) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* Move the memory part into a new temp file. */
static int
spool_to_file(struct spool *s)
{
	int fd, saved;

	fd = spool_open_tmpfile(s->tmpdir);
	if (fd < 0)
		return -1;
	if (s->mem.len > 0 && pwrite_all(fd, s->mem.data, s->mem.len, 0) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	s->fd = fd;
	buf_free(&s->mem);
	return 0;
}

int
spool_append(struct spool *s, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (s->size > UINT64_MAX - n) {
		errno = EFBIG;
		return -1;
	}
	if (s->fd < 0 && n <= s->mem_limit && s->mem.len <= s->mem_limit - n) {
		if (buf_append(&s->mem, p, n) < 0) {
			errno = ENOMEM;
			return -1;
		}
	} else {
		if (s->fd < 0 && spool_to_file(s) < 0)
			return -1;
		/* On failure size is unchanged: the next append overwrites. */
		if (pwrite_all(s->fd, p, n, s->size) < 0)
			return -1;
	}
	s->size += n;
	s->nlines += count_lf(p, n);
	return 0;
}

int
spool_write_to(const struct spool *s, int fd)
{
	char chunk[SPOOL_COPY_CHUNK];
	uint64_t off = 0;
	ssize_t r;
	size_t want;

	if (s->fd < 0)
		return durable_write_all(fd, s->mem.data, (size_t)s->size);
	while (off < s->size) {
		want = sizeof(chunk);
		if (s->size - off < want)
			want = (size_t)(s->size - off);
		r = pread(s->fd, chunk, want, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (r == 0) {		/* file shorter than size: truncated */
			errno = EIO;
			return -1;
		}
		if (durable_write_all(fd, chunk, (size_t)r) < 0)
			return -1;
		off += (uint64_t)r;
	}
	return 0;
}

void
spool_reset(struct spool *s)
{
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	buf_reset(&s->mem);
	if (s->mem.cap > SPOOL_KEEP_MEM)
		buf_free(&s->mem);
	s->size = 0;
	s->nlines = 0;
}

void
spool_free(struct spool *s)
{
	spool_reset(s);
	buf_free(&s->mem);
}
