/*
 * mbox_flags.c - Maildir file names as the index reads and writes them:
 * the ":2,<flags>" info part (D F R S T for the system flags, a..z for
 * Dovecot keyword letters, sorted by ASCII), the ",S=" / ",W=" sizes and
 * the "SEC.M<usec>" delivery time of a base name, IMAP keyword lists,
 * and the per-mailbox "dovecot-keywords" file mapping letters to names
 * ("<index> <name>" lines, 0 = 'a').
 *
 * Must never drop what it does not understand: flags we do not own
 * ('P', anything else) and a ",..." tail after the flags survive a
 * rename.  The keywords file is only ever replaced by rename(2), never
 * written in place, so a reader never sees half of it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/buf.h"
#include "durable.h"

#define KW_FILE_MAX 65536	/* a larger dovecot-keywords is not ours */

static unsigned long kw_tmp_seq;	/* __atomic only */

static const struct {
	char letter;
	unsigned flag;
} sysflags[] = {
	{ 'D', MBOX_F_DRAFT }, { 'F', MBOX_F_FLAGGED },
	{ 'R', MBOX_F_ANSWERED }, { 'S', MBOX_F_SEEN },
	{ 'T', MBOX_F_DELETED },
};
#define N_SYSFLAGS (sizeof(sysflags) / sizeof(sysflags[0]))

size_t
mi_base_len(const char *fname)
{
	const char *colon = strchr(fname, ':');

	return colon != NULL ? (size_t)(colon - fname) : strlen(fname);
}

/* The flag characters of fname's info, or NULL without ":2,". */
static const char *
info_flags(const char *fname)
{
	const char *info = strchr(fname, ':');

	if (info == NULL || info[1] != '2' || info[2] != ',')
		return NULL;
	return info + 3;
}

void
mi_info_parse(const char *fname, unsigned *flags_r, uint32_t *letters_r)
{
	const char *p = info_flags(fname);
	size_t i;

	*flags_r = 0;
	*letters_r = 0;
	if (p == NULL)
		return;
	for (; *p != '\0' && *p != ','; p++) {
		if (*p >= 'a' && *p <= 'z') {
			*letters_r |= 1u << (*p - 'a');
			continue;
		}
		for (i = 0; i < N_SYSFLAGS; i++)
			if (*p == sysflags[i].letter)
				*flags_r |= sysflags[i].flag;
	}
}

int
mi_fname_build(const char *old, size_t baselen, unsigned flags,
    uint32_t letters, char *out, size_t outsz)
{
	unsigned char set[128];
	const char *p = info_flags(old), *tail = "";
	size_t i, pos;
	int c;

	memset(set, 0, sizeof(set));
	for (; p != NULL && *p != '\0' && *p != ','; p++) {
		c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || c == '/' || (c >= 'a' && c <= 'z'))
			continue;
		set[c] = 1;
	}
	if (p != NULL && *p == ',')
		tail = p;
	for (i = 0; i < N_SYSFLAGS; i++)
		set[(unsigned char)sysflags[i].letter] =
		    (flags & sysflags[i].flag) != 0;
	for (i = 0; i < MI_KW_LETTERS; i++)
		if (letters & (1u << i))
			set['a' + i] = 1;
	if (baselen + 3 >= outsz)
		goto toolong;
	memcpy(out, old, baselen);
	memcpy(out + baselen, ":2,", 3);
	pos = baselen + 3;
	for (c = 0x21; c < 0x7f; c++) {
		if (!set[c])
			continue;
		if (pos + 1 >= outsz)
			goto toolong;
		out[pos++] = (char)c;
	}
	out[pos] = '\0';
	if (strlcpy_checked(out + pos, tail, outsz - pos) < 0)
		goto toolong;
	return 0;
toolong:
	errno = ENAMETOOLONG;
	return -1;
}

/* The decimal after the last ",X=" of the base name. */
static int
name_field(const char *fname, char key, uint64_t *v_r)
{
	size_t base = mi_base_len(fname);
	const char *p, *s = NULL, *end = fname + base;
	uint64_t v = 0;

	for (p = fname; p + 3 <= end; p++)
		if (p[0] == ',' && p[1] == key && p[2] == '=')
			s = p + 3;
	if (s == NULL || s >= end || *s < '0' || *s > '9')
		return -1;
	for (p = s; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p < end && *p != ',')
		return -1;
	*v_r = v;
	return 0;
}

int
mi_name_sizes(const char *fname, uint64_t *s_r, uint64_t *w_r)
{
	int rs = name_field(fname, 'S', s_r), rw = name_field(fname, 'W', w_r);

	return rs == 0 && rw == 0 ? 0 : -1;
}

int
mi_name_time(const char *fname, int64_t *sec_r, int64_t *usec_r)
{
	const char *p = fname;
	int64_t sec = 0, usec = 0;
	int n = 0;

	for (; *p >= '0' && *p <= '9' && n < 18; p++, n++)
		sec = sec * 10 + (*p - '0');
	if (n == 0)
		return -1;
	if (p[0] == '.' && p[1] == 'M') {
		for (p += 2, n = 0; *p >= '0' && *p <= '9' && n < 9; p++, n++)
			usec = usec * 10 + (*p - '0');
	}
	*sec_r = sec;
	*usec_r = usec;
	return 0;
}

int
mi_keyword_valid(const char *kw)
{
	size_t n = 0;

	for (; kw[n] != '\0'; n++) {
		unsigned char c = (unsigned char)kw[n];

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return 0;
	}
	return n > 0 && n <= MBOX_KEYWORD_MAX;
}

/* Position of kw in list (caseless, whole token), or NULL. */
static char *
kwlist_find(const char *list, const char *kw)
{
	size_t kl = strlen(kw), tl;
	const char *p = list;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		tl = strcspn(p, " ");
		if (tl == kl && tl > 0 && strncasecmp(p, kw, kl) == 0)
			return (char *)p;
		p += tl;
	}
	return NULL;
}

int
mi_kwlist_has(const char *list, const char *kw)
{
	return kwlist_find(list, kw) != NULL;
}

int
mi_kwlist_add(char *list, size_t listsz, const char *kw)
{
	size_t len = strlen(list), n = 0;
	const char *p;

	if (kwlist_find(list, kw) != NULL)
		return 0;
	for (p = list; *p != '\0'; p++)
		n += *p == ' ';
	if (len > 0 && n + 1 >= MBOX_MSG_KEYWORDS_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (snprintf_checked(list + len, listsz - len, "%s%s",
	    len > 0 ? " " : "", kw) < 0) {
		list[len] = '\0';
		errno = E2BIG;
		return -1;
	}
	return 0;
}

void
mi_kwlist_remove(char *list, const char *kw)
{
	char *p = kwlist_find(list, kw), *end;

	if (p == NULL)
		return;
	end = p + strlen(kw);
	while (*end == ' ')
		end++;
	if (*end == '\0' && p > list)
		p--;		/* last token: drop the space before it */
	memmove(p, end, strlen(end) + 1);
}

void
mi_kwmap_free(struct mi_kwmap *m)
{
	size_t i;

	for (i = 0; i < MI_KW_LETTERS; i++) {
		free(m->names[i]);
		m->names[i] = NULL;
	}
	m->dirty = 0;
}

static int
kw_path(const char *dir, char *out, size_t outsz)
{
	if (snprintf_checked(out, outsz, "%s/" MI_KEYWORDS_FILE, dir) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* One "N name" line; bad lines are skipped like Dovecot does. */
static int
kw_line(struct mi_kwmap *m, char *line)
{
	char *sp = strchr(line, ' '), *end;
	long n;

	if (sp == NULL)
		return 0;
	*sp = '\0';
	errno = 0;
	n = strtol(line, &end, 10);
	if (errno != 0 || end == line || *end != '\0' || n < 0 ||
	    n >= MI_KW_LETTERS || !mi_keyword_valid(sp + 1) ||
	    m->names[n] != NULL)
		return 0;
	m->names[n] = strdup(sp + 1);
	return m->names[n] == NULL ? -1 : 0;
}

int
mi_kwmap_load(const char *dir, struct mi_kwmap *m)
{
	char path[PATH_MAX], *text, *line, *nl;
	size_t got = 0;
	ssize_t r;
	int fd;

	memset(m, 0, sizeof(*m));
	if (kw_path(dir, path, sizeof(path)) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	text = malloc(KW_FILE_MAX + 1);
	if (text == NULL) {
		close(fd);
		return -1;
	}
	while (got < KW_FILE_MAX) {
		r = read(fd, text + got, KW_FILE_MAX - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	text[got] = '\0';
	for (line = text; *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;		/* a torn last line is not trusted */
		*nl++ = '\0';
		if (kw_line(m, line) < 0) {
			free(text);
			mi_kwmap_free(m);
			return -1;
		}
	}
	free(text);
	return 0;
}

int
mi_kwmap_letter(struct mi_kwmap *m, const char *kw, int create)
{
	int i, free_slot = -1;

	for (i = 0; i < MI_KW_LETTERS; i++) {
		if (m->names[i] == NULL) {
			if (free_slot < 0)
				free_slot = i;
		} else if (strcasecmp(m->names[i], kw) == 0) {
			return i;
		}
	}
	if (!create || free_slot < 0)
		return -1;
	m->names[free_slot] = strdup(kw);
	if (m->names[free_slot] == NULL)
		return -1;
	m->dirty = 1;
	return free_slot;
}

int
mi_kwmap_save(const char *dir, struct mi_kwmap *m)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	struct buf b;
	unsigned long seq;
	int fd, i, saved;

	if (!m->dirty)
		return 0;
	seq = __atomic_fetch_add(&kw_tmp_seq, 1, __ATOMIC_RELAXED);
	if (kw_path(dir, path, sizeof(path)) < 0 ||
	    snprintf_checked(tmp, sizeof(tmp), "%s/tmp/" MI_KEYWORDS_FILE
	    ".%ld.%lu", dir, (long)getpid(), seq) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	buf_init(&b, KW_FILE_MAX);
	for (i = 0; i < MI_KW_LETTERS; i++)
		if (m->names[i] != NULL &&
		    buf_printf(&b, "%d %s\n", i, m->names[i]) < 0) {
			buf_free(&b);
			errno = EFBIG;
			return -1;
		}
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0) {
		buf_free(&b);
		return -1;
	}
	if (durable_write_all(fd, b.data != NULL ? b.data : "", b.len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		durable_unlink_quiet(tmp);
		buf_free(&b);
		errno = saved;
		return -1;
	}
	buf_free(&b);
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		durable_unlink_quiet(tmp);
		return -1;
	}
	m->dirty = 0;
	return 0;
}

int
mi_kwmap_to_list(struct mi_kwmap *m, uint32_t letters, char *list,
    size_t listsz)
{
	char unknown[32];
	int i;

	list[0] = '\0';
	for (i = 0; i < MI_KW_LETTERS; i++) {
		if (!(letters & (1u << i)))
			continue;
		if (m->names[i] == NULL) {
			/* The name is lost: make one up, as Dovecot does. */
			snprintf_checked(unknown, sizeof(unknown),
			    "unknown-%d", i);
			if (mi_kwmap_letter(m, unknown, 0) >= 0)
				continue;
			m->names[i] = strdup(unknown);
			if (m->names[i] == NULL)
				return -1;
			m->dirty = 1;
		}
		if (mi_kwlist_add(list, listsz, m->names[i]) < 0)
			return -1;
	}
	return 0;
}

uint32_t
mi_kwmap_from_list(struct mi_kwmap *m, const char *list)
{
	char kw[MBOX_KEYWORD_MAX + 1];
	const char *p = list;
	uint32_t letters = 0;
	size_t tl;
	int l;

	while (*p != '\0') {
		while (*p == ' ')
			p++;
		tl = strcspn(p, " ");
		if (tl > 0 && tl < sizeof(kw)) {
			memcpy(kw, p, tl);
			kw[tl] = '\0';
			l = mi_kwmap_letter(m, kw, 1);
			if (l >= 0)
				letters |= 1u << l;
		}
		p += tl;
	}
	return letters;
}
