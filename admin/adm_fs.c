/*
 * adm_fs.c - the file-system steps of mailadm init: mkdir -p with a mode
 * for the last component, exclusive creation of a new file (never
 * overwriting one), and chown to the daemons' user.  Each reports
 * whether it changed anything, so that a second init can say so.
 */
#include "adm.h"
#include "../store/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
adm_dirname(const char *path, char *out, size_t outsz)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (slash == NULL)
		return strlcpy_checked(out, ".", outsz);
	while (slash > path && slash[-1] == '/')
		slash--;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= outsz)
		return -1;
	memcpy(out, path, n);
	out[n] = '\0';
	return 0;
}

int
adm_mkdirs(const char *path, mode_t leaf_mode, int *created_r, char *err,
    size_t errlen)
{
	char p[CONFIG_STR_MAX];
	size_t len, i;
	int r;

	*created_r = 0;
	if (path[0] == '\0' || strlcpy_checked(p, path, sizeof(p)) < 0) {
		snprintf_checked(err, errlen, "bad directory name \"%s\"", path);
		return -1;
	}
	len = strlen(p);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	for (i = 1; i < len; i++) {
		if (p[i] != '/' || p[i - 1] == '/')
			continue;
		p[i] = '\0';
		r = durable_mkdir_one(p, 0755);
		p[i] = '/';
		if (r < 0) {
			snprintf_checked(err, errlen, "cannot create directory "
			    "%.*s: %s", (int)i, p, strerror(errno));
			return -1;
		}
	}
	r = durable_mkdir_one(p, leaf_mode);
	if (r < 0) {
		snprintf_checked(err, errlen, "cannot create directory %s: %s", p,
		    strerror(errno));
		return -1;
	}
	if (r == 1) {
		if (chmod(p, leaf_mode) < 0) {	/* the umask may have cut it */
			snprintf_checked(err, errlen, "chmod %s: %s", p,
			    strerror(errno));
			return -1;
		}
		*created_r = 1;
	}
	return 0;
}

int
adm_write_new_file(const char *path, const void *data, size_t len,
    mode_t mode, char *err, size_t errlen)
{
	const char *p = data;
	size_t off = 0;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd < 0) {
		snprintf_checked(err, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fchmod(fd, mode) < 0)
		goto fail;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	return 0;
fail:
	snprintf_checked(err, errlen, "cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(path);
	return -1;
}

int
adm_chown(const char *path, const struct adm_owner *o, int *changed_r,
    char *err, size_t errlen)
{
	struct stat st;

	*changed_r = 0;
	if (!o->set)
		return 0;
	if (lstat(path, &st) < 0) {
		snprintf_checked(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (st.st_uid == o->uid && st.st_gid == o->gid)
		return 0;
	if (lchown(path, o->uid, o->gid) < 0) {
		snprintf_checked(err, errlen, "cannot give %s to user %s: %s", path,
		    o->name, strerror(errno));
		return -1;
	}
	*changed_r = 1;
	return 0;
}
