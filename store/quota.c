/*
 * quota.c - Maildir++ quota: the "maildirsize" file.  See quota.h.
 *
 * The file is a cache of what the file names say; the Maildir is the
 * truth.  Anything odd in the file (wrong limit line, bad or torn line,
 * negative total, too big, too old) means "recalculate", never "fail".
 * Must never take a lock or rewrite maildirsize in place: appends are one
 * write(2) on O_APPEND, recalculation writes a temp file and renames it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "durable.h"

#define QUOTA_FILE	"maildirsize"
#define QUOTA_MAX_SIZE	5120		/* larger: recalculate */
#define QUOTA_MAX_AGE	(15 * 60)	/* older: recalculate */

static unsigned long recalc_seq;	/* __atomic only: temp file names */

/* Parse an optionally negative decimal int64 at *pp, stopping at stop. */
static int
parse_i64(const char **pp, const char *end, char stop, int64_t *v)
{
	const char *p = *pp;
	int neg = 0;
	uint64_t acc = 0, lim;

	if (p < end && *p == '-') {
		neg = 1;
		p++;
	}
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	if (p >= end || *p < '0' || *p > '9')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		if (acc > (lim - (uint64_t)(*p - '0')) / 10)
			return -1;
		acc = acc * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p >= end || *p != stop)
		return -1;
	*v = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	*pp = p + 1;
	return 0;
}

static int
add_i64(int64_t *sum, int64_t v)
{
	if ((v > 0 && *sum > INT64_MAX - v) || (v < 0 && *sum < INT64_MIN - v))
		return -1;
	*sum += v;
	return 0;
}

/*
 * Sum a maildirsize text.  1 valid (totals set), 0 recalculate.
 */
static int
quota_parse(const char *text, size_t len, uint64_t quota_bytes,
    uint64_t *bytes_r, uint64_t *count_r)
{
	char want[32];
	const char *p = text, *end = text + len;
	int64_t b = 0, c = 0, vb, vc;
	size_t wl;

	if (snprintf_checked(want, sizeof(want), "%" PRIu64 "S\n",
	    quota_bytes) < 0)
		return 0;
	wl = strlen(want);
	if (len < wl || memcmp(text, want, wl) != 0)
		return 0;
	p += wl;
	while (p < end) {
		/* A line without its LF is torn or garbage: parse_i64 says so. */
		if (parse_i64(&p, end, ' ', &vb) < 0 ||
		    parse_i64(&p, end, '\n', &vc) < 0 ||
		    add_i64(&b, vb) < 0 || add_i64(&c, vc) < 0)
			return 0;
	}
	if (b < 0 || c < 0)
		return 0;
	*bytes_r = (uint64_t)b;
	*count_r = (uint64_t)c;
	return 1;
}

/* 1 valid, 0 recalculate, -1 error reading it. */
static int
quota_read(const char *userdir, uint64_t quota_bytes, uint64_t *bytes_r,
    uint64_t *count_r)
{
	char path[PATH_MAX], text[QUOTA_MAX_SIZE + 1];
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd, saved;

	if (snprintf_checked(path, sizeof(path), "%s/" QUOTA_FILE,
	    userdir) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_size > QUOTA_MAX_SIZE ||
	    time(NULL) - st.st_mtime > QUOTA_MAX_AGE) {
		close(fd);
		return 0;
	}
	/* Read one byte more than allowed, to see appends since fstat. */
	while (got < sizeof(text)) {
		r = read(fd, text + got, sizeof(text) - got);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got > QUOTA_MAX_SIZE)
		return 0;
	return quota_parse(text, got, quota_bytes, bytes_r, count_r);
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* S=<size> from a Maildir file name, or -1 when it has none. */
static int
name_size(const char *name, uint64_t *size)
{
	const char *colon, *s = NULL, *p;
	size_t base;
	uint64_t v = 0;

	colon = strchr(name, ':');
	base = colon != NULL ? (size_t)(colon - name) : strlen(name);
	/* The last ",S=" of the base name: an odd host cannot fake it. */
	for (p = name; p + 3 <= name + base; p++)
		if (p[0] == ',' && p[1] == 'S' && p[2] == '=')
			s = p + 3;
	if (s == NULL || s >= name + base || *s < '0' || *s > '9')
		return -1;
	for (p = s; p < name + base && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p < name + base && *p != ',')
		return -1;
	*size = v;
	return 0;
}

/* Add up the messages in dir (a cur/ or new/).  A missing dir is empty. */
static int
scan_dir(const char *dir, uint64_t *bytes, uint64_t *count)
{
	struct dirent *de;
	struct stat st;
	uint64_t sz;
	DIR *d;
	int saved;

	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		if (name_size(de->d_name, &sz) < 0) {
			if (fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0) {
				if (errno != ENOENT)	/* moved meanwhile */
					goto fail;
				errno = 0;
				continue;
			}
			if (!S_ISREG(st.st_mode))
				continue;
			sz = (uint64_t)st.st_size;
		}
		*bytes += sz;
		*count += 1;
		errno = 0;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

static int
scan_maildir(const char *dir, uint64_t *bytes, uint64_t *count)
{
	char path[PATH_MAX];

	if (snprintf_checked(path, sizeof(path), "%s/cur", dir) < 0)
		goto toolong;
	if (scan_dir(path, bytes, count) < 0)
		return -1;
	if (snprintf_checked(path, sizeof(path), "%s/new", dir) < 0)
		goto toolong;
	return scan_dir(path, bytes, count);
toolong:
	errno = ENAMETOOLONG;
	return -1;
}

/* INBOX plus every ".Folder" directory of userdir. */
static int
scan_user(const char *userdir, uint64_t *bytes, uint64_t *count)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int saved;

	if (scan_maildir(userdir, bytes, count) < 0)
		return -1;
	d = opendir(userdir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR) {
			if (de->d_type != DT_UNKNOWN ||
			    fstatat(dirfd(d), de->d_name, &st,
			    AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode)) {
				errno = 0;
				continue;
			}
		}
		if (snprintf_checked(path, sizeof(path), "%s/%s", userdir,
		    de->d_name) < 0) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		if (scan_maildir(path, bytes, count) < 0)
			goto fail;
		errno = 0;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	return 0;
fail:
	saved = errno;
	closedir(d);
	errno = saved;
	return -1;
}

/* Replace maildirsize with the limit line and one total line. */
static int
quota_write(const char *userdir, uint64_t quota_bytes, uint64_t bytes,
    uint64_t count)
{
	char tmp[PATH_MAX], path[PATH_MAX], text[96];
	unsigned long seq;
	int fd, saved;

	seq = __atomic_fetch_add(&recalc_seq, 1, __ATOMIC_RELAXED);
	if (snprintf_checked(path, sizeof(path), "%s/" QUOTA_FILE,
	    userdir) < 0 ||
	    snprintf_checked(tmp, sizeof(tmp), "%s/tmp/" QUOTA_FILE ".%ld.%lu",
	    userdir, (long)getpid(), seq) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (snprintf_checked(text, sizeof(text),
	    "%" PRIu64 "S\n%" PRIu64 " %" PRIu64 "\n",
	    quota_bytes, bytes, count) < 0) {
		errno = EOVERFLOW;
		return -1;
	}
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (durable_write_all(fd, text, strlen(text)) < 0) {
		saved = errno;
		close(fd);
		durable_unlink_quiet(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		durable_unlink_quiet(tmp);
		return -1;
	}
	return 0;
}

static int
quota_recalc(const char *userdir, uint64_t quota_bytes, uint64_t *bytes_r,
    uint64_t *count_r)
{
	uint64_t bytes = 0, count = 0;

	if (scan_user(userdir, &bytes, &count) < 0)
		return -1;
	if (bytes > INT64_MAX || count > INT64_MAX) {
		errno = EOVERFLOW;
		return -1;
	}
	/* The totals are right even if the cache cannot be written. */
	if (quota_write(userdir, quota_bytes, bytes, count) < 0 &&
	    errno != ENOENT)
		log_warn("quota: cannot rewrite %s/" QUOTA_FILE ": %s",
		    userdir, strerror(errno));
	*bytes_r = bytes;
	*count_r = count;
	return 0;
}

int
quota_usage(const char *userdir, uint64_t quota_bytes, uint64_t *bytes_r,
    uint64_t *count_r)
{
	uint64_t bytes = 0, count = 0;
	int r;

	if (userdir == NULL || bytes_r == NULL || count_r == NULL) {
		errno = EINVAL;
		return -1;
	}
	r = quota_read(userdir, quota_bytes, &bytes, &count);
	if (r < 0)
		return -1;
	if (r == 0)
		return quota_recalc(userdir, quota_bytes, bytes_r, count_r);
	*bytes_r = bytes;
	*count_r = count;
	return 0;
}

int
quota_add(const char *userdir, int64_t bytes, int64_t count)
{
	char path[PATH_MAX], line[48];
	ssize_t w;
	size_t n;
	int fd, saved;

	if (userdir == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (snprintf_checked(path, sizeof(path), "%s/" QUOTA_FILE,
	    userdir) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (snprintf_checked(line, sizeof(line), "%" PRId64 " %" PRId64 "\n",
	    bytes, count) < 0) {
		errno = EOVERFLOW;
		return -1;
	}
	/*
	 * No file: nothing to do, the next quota_usage() recalculates from
	 * the file names, which already include this change.  Creating it
	 * here would race with that recalculation.
	 */
	fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	n = strlen(line);
	do {
		w = write(fd, line, n);	/* one write: appends never interleave */
	} while (w < 0 && errno == EINTR);
	if (w < 0 || (size_t)w != n) {
		saved = w < 0 ? errno : EIO;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}
