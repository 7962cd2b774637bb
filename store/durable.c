/*
 * durable.c - write-all, mkdir -p, no-replace rename and directory fsync
 * for store/.  See durable.h.  Must never log, never swallow an error and
 * never change errno on the success path of a caller's cleanup
 * (durable_unlink_quiet).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/buf.h"

int
durable_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	ssize_t w;

	while (n > 0) {
		w = write(fd, c, n);
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
	}
	return 0;
}

int
durable_mkdir_one(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 1;
	if (errno != EEXIST)
		return -1;
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int
durable_mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t i, len;

	if (path == NULL || path[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	if (strlcpy_checked(tmp, path, sizeof(tmp)) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	len = strlen(tmp);
	while (len > 1 && tmp[len - 1] == '/')
		tmp[--len] = '\0';
	for (i = 1; i < len; i++) {
		if (tmp[i] != '/' || tmp[i - 1] == '/')
			continue;
		tmp[i] = '\0';
		if (durable_mkdir_one(tmp, mode) < 0)
			return -1;
		tmp[i] = '/';
	}
	return durable_mkdir_one(tmp, mode) < 0 ? -1 : 0;
}

int
durable_fsync_dir(const char *path)
{
	int fd, r, saved;

	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r < 0 ? -1 : 0;
}

int
durable_rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* No RENAME_NOREPLACE here: link() refuses an existing target. */
	if (link(from, to) == 0) {
		unlink(from);
		return 0;
	}
	if (errno == EEXIST)
		return -1;
	return rename(from, to);
}

void
durable_unlink_quiet(const char *path)
{
	int saved = errno;

	unlink(path);
	errno = saved;
}
