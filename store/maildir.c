/*
 * maildir.c - Maildir++ delivery, folder creation and unique names.
 * See maildir.h and DESIGN.md "Mail store".
 *
 * Must never let a partial message appear in new/: the message is
 * written and fsynced under tmp/, renamed into new/ without replacing
 * anything, and new/ is fsynced before 0 is returned.  On any failure
 * the tmp file (or the new/ entry, if the last fsync failed) is removed
 * and errno tells why.  Safe to call from several threads at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "maildir.h"
#include "dirsync.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "durable.h"

#define MAILDIR_NAME_TRIES 100	/* EEXIST retries before giving up */

const char *const maildir_default_folders[] = {
	"Sent", "Drafts", "Trash", "Junk", "Archive", NULL
};

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_name[256];
static unsigned long deliver_seq;	/* __atomic only */

static void
host_init(void)
{
	if (gethostname(host_name, sizeof(host_name) - 1) < 0 ||
	    host_name[0] == '\0')
		(void)strlcpy_checked(host_name, "localhost",
		    sizeof(host_name));
	host_name[sizeof(host_name) - 1] = '\0';
}

int
maildir_make_name(char *out, size_t outsz, time_t sec, long usec,
    pid_t pid, unsigned long seq, const char *host, uint64_t size,
    uint64_t vsize)
{
	const char *h, *esc;
	size_t pos, n;

	if (host == NULL || host[0] == '\0')
		host = "localhost";
	if (out == NULL || outsz == 0)
		goto toolong;
	if (snprintf_checked(out, outsz, "%lld.M%ldP%ldQ%lu.",
	    (long long)sec, usec, (long)pid, seq) < 0)
		goto toolong;
	pos = strlen(out);
	for (h = host; *h != '\0'; h++) {
		esc = *h == '/' ? "\\057" : *h == ':' ? "\\072" : NULL;
		n = esc != NULL ? 4 : 1;
		if (outsz - pos <= n)
			goto toolong;
		memcpy(out + pos, esc != NULL ? esc : h, n);
		pos += n;
	}
	out[pos] = '\0';
	if (snprintf_checked(out + pos, outsz - pos,
	    ",S=%" PRIu64 ",W=%" PRIu64, size, vsize) < 0)
		goto toolong;
	return 0;
toolong:
	if (out != NULL && outsz > 0)
		out[0] = '\0';
	errno = ENAMETOOLONG;
	return -1;
}

static int
path_join(char *out, size_t outsz, const char *dir, const char *name)
{
	if (snprintf_checked(out, outsz, "%s/%s", dir, name) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
maildir_ensure(const char *userdir)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char path[PATH_MAX];
	int made_parent = 0;
	size_t i;

	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		if (path_join(path, sizeof(path), userdir, subs[i]) < 0)
			return -1;
		if (mkdir(path, 0700) == 0 || errno == EEXIST)
			continue;
		if (errno != ENOENT || made_parent)
			return -1;
		if (durable_mkdir_p(userdir, 0700) < 0)
			return -1;
		made_parent = 1;
		i--;		/* again, now that the parent exists */
	}
	/* An EEXIST that is not a directory shows up here. */
	for (i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
		struct stat st;

		if (path_join(path, sizeof(path), userdir, subs[i]) < 0 ||
		    stat(path, &st) < 0)
			return -1;
		if (!S_ISDIR(st.st_mode)) {
			errno = ENOTDIR;
			return -1;
		}
	}
	return 0;
}

/* Maildir++ folder name: '.'-separated, no empty part, nothing unsafe. */
static int
folder_name_valid(const char *name)
{
	size_t i, n = strlen(name);
	unsigned char c;

	if (n == 0 || name[0] == '.' || name[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)name[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return 0;
		if (c == '.' && name[i + 1] == '.')
			return 0;
	}
	return 1;
}

int
maildir_create_folder(const char *userdir, const char *name)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int fd;

	if (name == NULL || !folder_name_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	if (strlen(name) + 1 > NAME_MAX) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (snprintf_checked(dir, sizeof(dir), "%s/.%s", userdir, name) < 0 ||
	    path_join(path, sizeof(path), dir, "maildirfolder") < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (maildir_ensure(userdir) < 0 || maildir_ensure(dir) < 0)
		return -1;
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	if (close(fd) < 0)
		return -1;
	return 0;
}

static uint64_t
count_lf(const char *p, size_t n)
{
	const char *end = p + n;
	uint64_t lf = 0;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		lf++;
		p++;
	}
	return lf;
}

/* A fresh name for this delivery: new time, next sequence number. */
static int
next_name(char *name, size_t namesz, size_t name_outsz, uint64_t size,
    uint64_t vsize)
{
	struct timeval tv;
	unsigned long seq;

	gettimeofday(&tv, NULL);
	seq = __atomic_fetch_add(&deliver_seq, 1, __ATOMIC_RELAXED);
	if (maildir_make_name(name, namesz, tv.tv_sec, (long)tv.tv_usec,
	    getpid(), seq, host_name, size, vsize) < 0)
		return -1;
	if (strlen(name) >= name_outsz) {	/* caller could not see it */
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Write prefix + body to fd, fsync, close (fd is closed either way). */
static int
write_message(int fd, const char *prefix, size_t prefix_len,
    const struct spool *body)
{
	int saved;

	if ((prefix_len > 0 && durable_write_all(fd, prefix, prefix_len) < 0) ||
	    (body != NULL && spool_write_to(body, fd) < 0) ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return close(fd);
}

int
maildir_deliver(const char *dir, const char *prefix, size_t prefix_len,
    const struct spool *body, char *name_out, size_t name_outsz,
    uint64_t *size_out)
{
	char name[NAME_MAX + 1], tmppath[PATH_MAX], newpath[PATH_MAX];
	char newdir[PATH_MAX];
	uint64_t size, vsize, body_size, body_lines;
	size_t outsz = name_out != NULL ? name_outsz : sizeof(name);
	int fd, tries, ensured = 0;

	if (dir == NULL || (prefix == NULL && prefix_len > 0)) {
		errno = EINVAL;
		return -1;
	}
	body_size = body != NULL ? body->size : 0;
	body_lines = body != NULL ? body->nlines : 0;
	if (body_size > UINT64_MAX / 2 - prefix_len) {
		errno = EFBIG;
		return -1;
	}
	size = prefix_len + body_size;
	vsize = size + body_lines + (prefix_len > 0 ?
	    count_lf(prefix, prefix_len) : 0);
	if (path_join(newdir, sizeof(newdir), dir, "new") < 0)
		return -1;
	pthread_once(&host_once, host_init);

	for (tries = 0;; tries++) {
		if (next_name(name, sizeof(name), outsz, size, vsize) < 0 ||
		    snprintf_checked(tmppath, sizeof(tmppath), "%s/tmp/%s",
		    dir, name) < 0) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmppath, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC,
		    0600);
		if (fd >= 0)
			break;
		/*
		 * The Maildir is created on first use only: checking it on
		 * every delivery would cost six syscalls per message.
		 */
		if (errno == ENOENT && !ensured) {
			if (maildir_ensure(dir) < 0)
				return -1;
			ensured = 1;
			continue;
		}
		if (errno != EEXIST || tries >= MAILDIR_NAME_TRIES)
			return -1;
	}
	if (write_message(fd, prefix, prefix_len, body) < 0)
		goto fail_tmp;

	/* Never replace a message already in new/: pick another name. */
	for (tries = 0;; tries++) {
		if (path_join(newpath, sizeof(newpath), newdir, name) < 0)
			goto fail_tmp;
		if (durable_rename_noreplace(tmppath, newpath) == 0)
			break;
		if (errno == ENOENT && !ensured) {	/* new/ removed by hand */
			if (maildir_ensure(dir) < 0)
				goto fail_tmp;
			ensured = 1;
			continue;
		}
		if (errno != EEXIST || tries >= MAILDIR_NAME_TRIES)
			goto fail_tmp;
		if (next_name(name, sizeof(name), outsz, size, vsize) < 0)
			goto fail_tmp;
	}
	if (dirsync_fsync(newdir) < 0) {
		/* Not durable, so not delivered: take it back out of new/. */
		durable_unlink_quiet(newpath);
		return -1;
	}
	if (name_out != NULL)
		(void)strlcpy_checked(name_out, name, name_outsz);
	if (size_out != NULL)
		*size_out = size;
	return 0;

fail_tmp:
	durable_unlink_quiet(tmppath);
	return -1;
}
