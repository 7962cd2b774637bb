/*
 * store_testutil.h - small helpers shared by the store/ unit tests:
 * temp directories, reading a file back, counting directory entries.
 * Test code only; never linked into a daemon.  Static functions, so each
 * test binary gets its own copy.
 */
#ifndef BUZON_STORE_TESTUTIL_H
#define BUZON_STORE_TESTUTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"

#define TU_FN static __attribute__((unused))

TU_FN int
tu_rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

/* Make a fresh directory under $TMPDIR or /tmp; aborts on failure. */
TU_FN void
tu_mkdtemp(char *out, size_t outsz)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || base[0] == '\0')
		base = "/tmp";
	if (snprintf_checked(out, outsz, "%s/buzon-test.XXXXXX", base) < 0 ||
	    mkdtemp(out) == NULL)
		abort();
}

TU_FN void
tu_rmrf(const char *path)
{
	nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Read a whole file into a malloc'd NUL-terminated block; NULL on error. */
TU_FN char *
tu_slurp(const char *path, size_t *len_r)
{
	struct stat st;
	size_t got = 0;
	ssize_t r;
	char *p;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || (p = malloc((size_t)st.st_size + 1)) == NULL) {
		close(fd);
		return NULL;
	}
	while (got < (size_t)st.st_size &&
	    (r = read(fd, p + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)r;
	close(fd);
	p[got] = '\0';
	if (len_r != NULL)
		*len_r = got;
	return p;
}

/* Number of entries in dir besides "." and ".."; -1 if it cannot be read. */
TU_FN int
tu_count_entries(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

/* Write data to path (create or truncate); 0 or -1. */
TU_FN int
tu_write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
	ssize_t w;

	if (fd < 0)
		return -1;
	w = write(fd, data, len);
	close(fd);
	return w == (ssize_t)len ? 0 : -1;
}

#endif
