/*
 * mbox_name.c - mailbox names and where they live on disk: validation of
 * a UTF-8 name (DESIGN.md: "Mailbox names can never escape the user's
 * directory"), the canonical spelling of INBOX, the Maildir++ folder
 * ".NAME" with NAME in modified UTF-7 (store/mutf7.h), the default
 * special-use names, and rm -r of a folder we delete.
 *
 * Must never produce a path outside the user directory: every name is
 * checked by mbox_name_valid() before it becomes a path, and every name
 * read back from disk is decoded and checked the same way.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/buf.h"
#include "mutf7.h"

#define RMTREE_DEPTH 4		/* folder / cur / file: deeper is not ours */

static const struct {
	const char *name;
	enum mbox_special special;
	const char *attr;
} specials[] = {
	{ "Sent", MBOX_SPECIAL_SENT, "\\Sent" },
	{ "Drafts", MBOX_SPECIAL_DRAFTS, "\\Drafts" },
	{ "Trash", MBOX_SPECIAL_TRASH, "\\Trash" },
	{ "Junk", MBOX_SPECIAL_JUNK, "\\Junk" },
	{ "Archive", MBOX_SPECIAL_ARCHIVE, "\\Archive" },
};
#define N_SPECIALS (sizeof(specials) / sizeof(specials[0]))

const char *
mbox_special_attr(enum mbox_special s)
{
	size_t i;

	for (i = 0; i < N_SPECIALS; i++)
		if (specials[i].special == s)
			return specials[i].attr;
	return NULL;
}

enum mbox_special
mi_name_special(const char *name)
{
	size_t i;

	for (i = 0; i < N_SPECIALS; i++)
		if (strcmp(specials[i].name, name) == 0)
			return specials[i].special;
	return MBOX_SPECIAL_NONE;
}

int
mbox_name_valid(const char *name)
{
	size_t i, n;

	if (name == NULL)
		return 0;
	n = strlen(name);
	if (n == 0 || n > MBOX_NAME_MAX || name[0] == '.' || name[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c == 0x7f || c == '/' || c == '*' || c == '%')
			return 0;
		if (c == '.' && name[i + 1] == '.')
			return 0;
	}
	return utf8_valid(name, n);
}

int
mi_name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

int
mi_name_canon(const char *name, char *out, size_t outsz)
{
	if (!mbox_name_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	if (strlcpy_checked(out, name, outsz) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (strncasecmp(out, "INBOX", 5) == 0 &&
	    (out[5] == '\0' || out[5] == '.'))
		memcpy(out, "INBOX", 5);
	return 0;
}

int
mi_name_encode(const char *name, char *out, size_t outsz)
{
	struct buf b;
	int r = -1;

	if (!mbox_name_valid(name)) {
		errno = EINVAL;
		return -1;
	}
	/* ".NAME" must fit in one directory entry. */
	buf_init(&b, NAME_MAX - 1);
	if (utf8_to_mutf7(name, strlen(name), &b) != MUTF7_OK)
		errno = ENAMETOOLONG;
	else if (strlcpy_checked(out, buf_cstr(&b), outsz) < 0)
		errno = ENAMETOOLONG;
	else
		r = 0;
	buf_free(&b);
	return r;
}

int
mi_name_decode(const char *dirname, char *out, size_t outsz)
{
	struct buf b;
	int r = -1;

	buf_init(&b, MBOX_NAME_MAX);
	if (mutf7_to_utf8(dirname, strlen(dirname), &b) == MUTF7_OK &&
	    mbox_name_valid(buf_cstr(&b)) &&
	    strlcpy_checked(out, buf_cstr(&b), outsz) == 0)
		r = 0;
	else
		errno = EINVAL;
	buf_free(&b);
	return r;
}

int
mi_name_dir(const struct mbox_index *idx, const char *name, char *out,
    size_t outsz)
{
	char enc[NAME_MAX + 1];

	if (strcmp(name, "INBOX") == 0) {
		if (strlcpy_checked(out, idx->userdir, outsz) < 0)
			goto toolong;
		return 0;
	}
	if (mi_name_encode(name, enc, sizeof(enc)) < 0)
		return -1;
	if (snprintf_checked(out, outsz, "%s/.%s", idx->userdir, enc) < 0)
		goto toolong;
	return 0;
toolong:
	errno = ENAMETOOLONG;
	return -1;
}

static int
rmtree_at(int dfd, const char *name, int depth)
{
	struct dirent *de;
	DIR *d;
	int fd, r = 0, saved;

	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -1;
	if (depth >= RMTREE_DEPTH) {
		errno = ENOTEMPTY;
		return -1;
	}
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (rmtree_at(dirfd(d), de->d_name, depth + 1) < 0)
			r = -1;
	}
	saved = errno;
	closedir(d);
	if (r < 0) {
		errno = saved;
		return -1;
	}
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return -1;
	return 0;
}

int
mi_rmtree(const char *path)
{
	return rmtree_at(AT_FDCWD, path, 0);
}
