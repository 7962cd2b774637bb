/*
 * mbox_sync.c - bringing a mailbox's index rows in line with its Maildir,
 * which is the truth.  Files in new/ move to cur/ with ":2," and get the
 * next UIDs in delivery order (the "SEC.M<usec>" prefix of their names);
 * files gone from cur/ become expunged (kept with their modseq for
 * QRESYNC); a file renamed by another program (mutt setting S) has its
 * flags read back under a new modseq.
 *
 * Cost: two stat(2)s when nothing changed.  The new/ and cur/ mtimes seen
 * by the last full scan are stored with the time of that scan; they are
 * trusted only when they are more than MI_SYNC_SECS older than the scan,
 * because two changes within one timestamp tick leave the same mtime.
 *
 * Must never expunge a message because readdir(2) missed it: another
 * program renaming files while we read cur/ can hide one, so cur/ is read
 * again (up to SCAN_TRIES times) while its mtime moves, and nothing is
 * expunged from a scan that never saw cur/ stand still.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "durable.h"
#include "maildir.h"

#define MI_SYNC_SECS 1
#define SCAN_TRIES 3
#define NS 1000000000LL

struct disk_ent {
	char *fname;
	size_t baselen;
};

struct db_ent {
	uint32_t uid;
	unsigned flags;
	char *base, *fname, *keywords;
};

struct sync_ctx {
	struct mbox_index *idx;
	struct mi_box *b;
	struct mbox_sync_result *res;
	struct mi_kwmap kw;
	struct disk_ent *disk;
	size_t ndisk, capdisk;
	struct db_ent *db;
	size_t ndb, capdb;
	struct disk_ent **fresh;	/* on disk, not in the index */
	size_t nfresh;
	uint64_t modseq;		/* 0 until something changes */
	int stable;			/* cur/ stood still during a scan */
	int64_t cur_mtime, new_mtime;
};

static int64_t
mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * NS + st->st_mtim.tv_nsec;
}

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * NS + ts.tv_nsec;
}

static int
sub_path(char *out, size_t outsz, const char *dir, const char *sub,
    const char *name)
{
	if (snprintf_checked(out, outsz, "%s/%s%s%s", dir, sub,
	    name != NULL ? "/" : "", name != NULL ? name : "") < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Change modseq of this sync (one for all its changes). */
static uint64_t
sync_modseq(struct sync_ctx *c)
{
	if (c->modseq == 0)
		c->modseq = ++c->b->highestmodseq;
	return c->modseq;
}

static void
ctx_free(struct sync_ctx *c)
{
	size_t i;

	for (i = 0; i < c->ndisk; i++)
		free(c->disk[i].fname);
	free(c->disk);
	for (i = 0; i < c->ndb; i++) {
		free(c->db[i].base);
		free(c->db[i].fname);
		free(c->db[i].keywords);
	}
	free(c->db);
	free(c->fresh);
	mi_kwmap_free(&c->kw);
}

static int
disk_push(struct sync_ctx *c, const char *fname)
{
	struct disk_ent *p;
	size_t ncap;

	if (c->ndisk == c->capdisk) {
		ncap = c->capdisk ? c->capdisk * 2 : 64;
		p = reallocarray(c->disk, ncap, sizeof(*p));
		if (p == NULL)
			return -1;
		c->disk = p;
		c->capdisk = ncap;
	}
	if ((c->disk[c->ndisk].fname = strdup(fname)) == NULL)
		return -1;
	c->disk[c->ndisk].baselen = mi_base_len(fname);
	c->ndisk++;
	return 0;
}

static int
cmp_base(const char *a, size_t al, const char *b, size_t bl)
{
	int r = memcmp(a, b, al < bl ? al : bl);

	return r != 0 ? r : al < bl ? -1 : al > bl;
}

static int
cmp_disk(const void *x, const void *y)
{
	const struct disk_ent *a = x, *b = y;
	int r = cmp_base(a->fname, a->baselen, b->fname, b->baselen);

	return r != 0 ? r : strcmp(a->fname, b->fname);
}

static int
cmp_db(const void *x, const void *y)
{
	const struct db_ent *a = x, *b = y;

	return strcmp(a->base, b->base);
}

/*
 * A file whose base another file (prev) already has: give it a new base,
 * unless one of the two is a readdir(2) echo of a rename in progress.
 * 1 renamed, 0 left alone, -1 error.
 */
static int
rename_duplicate(struct sync_ctx *c, const struct disk_ent *prev,
    struct disk_ent *e)
{
	char base[NAME_MAX + 1], nf[NAME_MAX + 1], from[PATH_MAX], to[PATH_MAX];
	const char *info = e->fname + e->baselen;
	uint64_t s = 0, w = 0;
	struct stat a, b;

	if (!c->stable ||
	    sub_path(from, sizeof(from), c->b->dir, "cur", prev->fname) < 0 ||
	    sub_path(to, sizeof(to), c->b->dir, "cur", e->fname) < 0)
		return 0;
	if (stat(from, &a) < 0 || stat(to, &b) < 0)
		return errno == ENOENT ? 0 : -1;
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return 0;
	(void)mi_name_sizes(e->fname, &s, &w);
	if (mi_new_base(base, sizeof(base), s, w) < 0 ||
	    snprintf_checked(nf, sizeof(nf), "%s%s", base, info) < 0 ||
	    sub_path(from, sizeof(from), c->b->dir, "cur", e->fname) < 0 ||
	    sub_path(to, sizeof(to), c->b->dir, "cur", nf) < 0)
		return -1;
	if (durable_rename_noreplace(from, to) < 0)
		return errno == ENOENT ? 0 : -1;	/* 0: it was a readdir echo */
	mi_observe(c->idx, from, 0);
	mi_observe(c->idx, to, 1);
	log_warn("maildir %s: duplicate message base renamed to %s",
	    c->b->dir, nf);
	free(e->fname);
	if ((e->fname = strdup(nf)) == NULL)
		return -1;
	e->baselen = mi_base_len(nf);
	return 1;
}

/* Move everything in new/ to cur/ (with ":2," unless it has info). */
static int
move_new(struct sync_ctx *c)
{
	char dir[PATH_MAX], from[PATH_MAX], to[PATH_MAX], target[NAME_MAX + 1];
	char base[NAME_MAX + 1];
	struct stat a, b;
	struct dirent *de;
	int moved = 0;
	DIR *d;

	if (sub_path(dir, sizeof(dir), c->b->dir, "new", NULL) < 0)
		return -1;
	d = opendir(dir);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		if (snprintf_checked(target, sizeof(target), "%s%s", de->d_name,
		    strchr(de->d_name, ':') != NULL ? "" : ":2,") < 0 ||
		    sub_path(from, sizeof(from), dir, de->d_name, NULL) < 0 ||
		    sub_path(to, sizeof(to), c->b->dir, "cur", target) < 0)
			continue;
		if (durable_rename_noreplace(from, to) == 0) {
			mi_observe(c->idx, from, 0);
			mi_observe(c->idx, to, 1);
			moved++;
			continue;
		}
		if (errno == ENOENT)	/* another reader moved it */
			continue;
		if (errno != EEXIST) {
			log_warn("maildir: cannot move %s to cur/: %s", from,
			    strerror(errno));
			continue;
		}
		/* The same file linked twice, or two files, one name. */
		if (stat(from, &a) == 0 && stat(to, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			if (unlink(from) == 0)
				mi_observe(c->idx, from, 0);
			continue;
		}
		if (mi_new_base(base, sizeof(base), 0, 0) < 0 ||
		    snprintf_checked(target, sizeof(target), "%s:2,", base) < 0 ||
		    sub_path(to, sizeof(to), c->b->dir, "cur", target) < 0)
			continue;
		if (durable_rename_noreplace(from, to) == 0) {
			mi_observe(c->idx, from, 0);
			mi_observe(c->idx, to, 1);
			moved++;
		}
	}
	closedir(d);
	if (moved > 0 && sub_path(dir, sizeof(dir), c->b->dir, "cur",
	    NULL) == 0 && durable_fsync_dir(dir) < 0)
		return -1;
	return 0;
}

static int
scan_cur(struct sync_ctx *c, const char *dir)
{
	struct dirent *de;
	DIR *d;
	size_t i;

	for (i = 0; i < c->ndisk; i++)
		free(c->disk[i].fname);
	c->ndisk = 0;
	d = opendir(dir);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || de->d_type == DT_DIR)
			continue;
		if (disk_push(c, de->d_name) < 0) {
			closedir(d);
			errno = ENOMEM;
			return -1;
		}
	}
	closedir(d);
	return 0;
}

/* Read cur/ until its mtime holds still over one read (or give up). */
static int
read_cur(struct sync_ctx *c)
{
	char dir[PATH_MAX];
	struct stat s0, s1;
	int tries;

	if (sub_path(dir, sizeof(dir), c->b->dir, "cur", NULL) < 0)
		return -1;
	c->stable = 0;
	for (tries = 0; tries < SCAN_TRIES; tries++) {
		if (stat(dir, &s0) < 0 || scan_cur(c, dir) < 0 ||
		    stat(dir, &s1) < 0)
			return -1;
		c->cur_mtime = mtime_ns(&s1);
		if (mtime_ns(&s0) == mtime_ns(&s1)) {
			c->stable = 1;
			break;
		}
	}
	if (c->ndisk > 1)
		qsort(c->disk, c->ndisk, sizeof(*c->disk), cmp_disk);
	return 0;
}

static int
load_rows(struct sync_ctx *c)
{
	static const char sql[] = "SELECT uid, base, fname, flags, keywords"
	    " FROM messages WHERE mailbox = ?1";
	sqlite3_stmt *st = mi_stmt(c->idx, sql);
	struct db_ent *p, *e;
	size_t ncap;
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 1, c->b->id) != SQLITE_OK)
		return mi_sqlerr(c->idx, "sync");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *base = (const char *)sqlite3_column_text(st, 1);
		const char *fname = (const char *)sqlite3_column_text(st, 2);
		const char *kw = (const char *)sqlite3_column_text(st, 4);

		if (c->ndb == c->capdb) {
			ncap = c->capdb ? c->capdb * 2 : 64;
			p = reallocarray(c->db, ncap, sizeof(*p));
			if (p == NULL)
				break;
			c->db = p;
			c->capdb = ncap;
		}
		e = &c->db[c->ndb];
		e->uid = (uint32_t)sqlite3_column_int64(st, 0);
		e->flags = (unsigned)sqlite3_column_int(st, 3);
		e->base = strdup(base != NULL ? base : "");
		e->fname = strdup(fname != NULL ? fname : "");
		e->keywords = strdup(kw != NULL ? kw : "");
		c->ndb++;
		if (e->base == NULL || e->fname == NULL || e->keywords == NULL)
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_ROW) {
			errno = ENOMEM;
			return mi_fail(c->idx, "out of memory");
		}
		return mi_sqlerr(c->idx, "sync");
	}
	if (c->ndb > 1)
		qsort(c->db, c->ndb, sizeof(*c->db), cmp_db);
	return 0;
}

/*
 * The keyword list a file name means: its letters' names, plus the
 * keywords the index had that have no letter (past the 26th).
 */
static int
disk_keywords(struct sync_ctx *c, uint32_t letters, const char *old,
    char *out, size_t outsz)
{
	char kw[MBOX_KEYWORD_MAX + 1];
	const char *p = old;
	size_t tl;

	if (mi_kwmap_to_list(&c->kw, letters, out, outsz) < 0)
		return -1;
	while (old != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		tl = strcspn(p, " ");
		if (tl > 0 && tl < sizeof(kw)) {
			memcpy(kw, p, tl);
			kw[tl] = '\0';
			if (mi_kwmap_letter(&c->kw, kw, 0) < 0 &&
			    mi_kwlist_add(out, outsz, kw) < 0)
				return -1;
		}
		p += tl;
	}
	return 0;
}

/* Same keyword set, ignoring order and case. */
static int
kw_same(const char *a, const char *b)
{
	char kw[MBOX_KEYWORD_MAX + 1];
	const char *lists[2] = { a, b }, *p;
	size_t tl;
	int i;

	for (i = 0; i < 2; i++) {
		for (p = lists[i]; *p != '\0'; p += tl) {
			while (*p == ' ')
				p++;
			tl = strcspn(p, " ");
			if (tl == 0 || tl >= sizeof(kw))
				continue;
			memcpy(kw, p, tl);
			kw[tl] = '\0';
			if (!mi_kwlist_has(lists[1 - i], kw))
				return 0;
		}
	}
	return 1;
}

/* A known message whose file name changed. */
static int
update_known(struct sync_ctx *c, struct db_ent *e, const char *fname)
{
	static const char fn_only[] = "UPDATE messages SET fname = ?3"
	    " WHERE mailbox = ?1 AND uid = ?2";
	static const char full[] = "UPDATE messages SET fname = ?3,"
	    " flags = ?4, keywords = ?5, modseq = ?6"
	    " WHERE mailbox = ?1 AND uid = ?2";
	char kw[MI_KWLIST_MAX];
	sqlite3_stmt *st;
	unsigned flags;
	uint32_t letters;
	int changed, rc;

	mi_info_parse(fname, &flags, &letters);
	if (disk_keywords(c, letters, e->keywords, kw, sizeof(kw)) < 0)
		return mi_fail(c->idx, "sync: keyword list too long");
	changed = flags != e->flags || !kw_same(kw, e->keywords);
	st = mi_stmt(c->idx, changed ? full : fn_only);
	if (st == NULL || sqlite3_bind_int64(st, 1, c->b->id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, e->uid) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, fname, -1, SQLITE_STATIC) != SQLITE_OK)
		return mi_sqlerr(c->idx, "sync");
	if (changed && (sqlite3_bind_int(st, 4, (int)flags) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, kw, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, (sqlite3_int64)sync_modseq(c)) !=
	    SQLITE_OK))
		return mi_sqlerr(c->idx, "sync");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return mi_sqlerr(c->idx, "sync");
	if (changed && c->res != NULL)
		c->res->flag_changes++;
	return 0;
}

static int
fresh_push(struct sync_ctx *c, struct disk_ent *e)
{
	struct disk_ent **p;

	p = reallocarray(c->fresh, c->nfresh + 1, sizeof(*p));
	if (p == NULL)
		return -1;
	c->fresh = p;
	c->fresh[c->nfresh++] = e;
	return 0;
}

static int
cmp_uid(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

/* Expunge the rows whose files are gone, reporting UIDs and positions. */
static int
expunge_missing(struct sync_ctx *c, struct mbox_uids *gone)
{
	struct mbox_sync_result *res = c->res;
	uint32_t *all = NULL, *pos;
	size_t i;

	if (gone->count == 0)
		return 0;
	qsort(gone->uids, gone->count, sizeof(uint32_t), cmp_uid);
	if (res != NULL) {
		all = malloc(c->ndb * sizeof(*all));
		res->expunged_seqs = malloc(gone->count * sizeof(uint32_t));
		if (all == NULL || res->expunged_seqs == NULL) {
			free(all);
			errno = ENOMEM;
			return mi_fail(c->idx, "out of memory");
		}
		for (i = 0; i < c->ndb; i++)
			all[i] = c->db[i].uid;
		qsort(all, c->ndb, sizeof(*all), cmp_uid);
	}
	for (i = 0; i < gone->count; i++) {
		if (mi_msg_expunged(c->idx, c->b->id, gone->uids[i],
		    sync_modseq(c)) < 0) {
			free(all);
			return -1;
		}
		if (res != NULL) {
			pos = bsearch(&gone->uids[i], all, c->ndb, sizeof(*all),
			    cmp_uid);
			res->expunged_seqs[i] = pos != NULL ?
			    (uint32_t)(pos - all) + 1 : 0;
		}
	}
	free(all);
	if (res != NULL) {
		res->expunged = *gone;
		memset(gone, 0, sizeof(*gone));
	}
	return 0;
}

/* Walk the sorted disk and index lists side by side. */
static int
merge(struct sync_ctx *c)
{
	struct mbox_uids gone = { 0 };
	const struct disk_ent *prev = NULL;	/* last entry kept */
	size_t i = 0, j = 0;
	int r, cmp;

	while (i < c->ndisk || j < c->ndb) {
		struct disk_ent *d = i < c->ndisk ? &c->disk[i] : NULL;
		struct db_ent *e = j < c->ndb ? &c->db[j] : NULL;

		if (d != NULL && prev != NULL && cmp_base(d->fname, d->baselen,
		    prev->fname, prev->baselen) == 0) {
			/* Another file with the previous one's base. */
			if ((r = rename_duplicate(c, prev, d)) < 0)
				goto fail;
			if (r == 1 && fresh_push(c, d) < 0)
				goto nomem;
			i++;
			continue;
		}
		cmp = d == NULL ? 1 : e == NULL ? -1 :
		    cmp_base(d->fname, d->baselen, e->base, strlen(e->base));
		if (cmp == 0) {
			if (strcmp(d->fname, e->fname) != 0 &&
			    update_known(c, e, d->fname) < 0)
				goto fail;
			prev = d;
			i++;
			j++;
		} else if (cmp < 0) {
			if (fresh_push(c, d) < 0)
				goto nomem;
			prev = d;
			i++;
		} else {
			if (c->stable && mi_uids_push(&gone, e->uid) < 0)
				goto nomem;
			j++;
		}
	}
	r = expunge_missing(c, &gone);
	mbox_uids_free(&gone);
	return r;
nomem:
	errno = ENOMEM;
	mi_fail(c->idx, "out of memory");
fail:
	mbox_uids_free(&gone);
	return -1;
}

struct fresh_key {
	int64_t sec, usec;
	struct disk_ent *e;
	struct stat st;
	int have_st;
};

static int
cmp_fresh(const void *x, const void *y)
{
	const struct fresh_key *a = x, *b = y;

	if (a->sec != b->sec)
		return a->sec < b->sec ? -1 : 1;
	if (a->usec != b->usec)
		return a->usec < b->usec ? -1 : 1;
	return cmp_disk(a->e, b->e);
}

/* Index one new file: sizes, date, flags, keywords; next UID. */
static int
add_fresh(struct sync_ctx *c, struct fresh_key *k)
{
	char path[PATH_MAX], kw[MI_KWLIST_MAX];
	uint64_t s, w;
	unsigned flags;
	uint32_t letters, uid;
	int fd;

	if (!k->have_st)
		return 0;		/* vanished before we could stat it */
	if (mi_name_sizes(k->e->fname, &s, &w) < 0) {
		if (sub_path(path, sizeof(path), c->b->dir, "cur",
		    k->e->fname) < 0)
			return -1;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			return errno == ENOENT ? 0 : -1;
		if (mi_file_sizes(fd, &s, &w) < 0) {
			close(fd);
			return -1;
		}
		close(fd);
	}
	mi_info_parse(k->e->fname, &flags, &letters);
	if (mi_kwmap_to_list(&c->kw, letters, kw, sizeof(kw)) < 0)
		return -1;
	if (mi_msg_insert(c->idx, c->b, k->e->fname, k->e->baselen,
	    k->e->fname, flags, kw, w, s, (int64_t)k->st.st_mtim.tv_sec,
	    sync_modseq(c), &uid) < 0)
		return -1;
	if (c->res != NULL)
		c->res->added++;
	return 0;
}

static int
add_all_fresh(struct sync_ctx *c)
{
	struct fresh_key *keys;
	char path[PATH_MAX];
	size_t i;
	int r = 0;

	if (c->nfresh == 0)
		return 0;
	keys = calloc(c->nfresh, sizeof(*keys));
	if (keys == NULL) {
		errno = ENOMEM;
		return mi_fail(c->idx, "out of memory");
	}
	for (i = 0; i < c->nfresh; i++) {
		keys[i].e = c->fresh[i];
		if (sub_path(path, sizeof(path), c->b->dir, "cur",
		    keys[i].e->fname) == 0 && stat(path, &keys[i].st) == 0 &&
		    S_ISREG(keys[i].st.st_mode))
			keys[i].have_st = 1;
		if (mi_name_time(keys[i].e->fname, &keys[i].sec,
		    &keys[i].usec) < 0) {
			keys[i].sec = keys[i].st.st_mtim.tv_sec;
			keys[i].usec = keys[i].st.st_mtim.tv_nsec / 1000;
		}
	}
	qsort(keys, c->nfresh, sizeof(*keys), cmp_fresh);
	for (i = 0; i < c->nfresh && r == 0; i++)
		if ((r = add_fresh(c, &keys[i])) < 0 && c->idx->err[0] == '\0')
			mi_fail(c->idx, "sync %s: %s", c->b->dir,
			    strerror(errno));
	free(keys);
	return r;
}

static int
save_stamps(struct sync_ctx *c)
{
	static const char sql[] = "UPDATE mailboxes SET new_mtime = ?2,"
	    " cur_mtime = ?3, synced_at = ?4 WHERE id = ?1";
	sqlite3_stmt *st = mi_stmt(c->idx, sql);
	int rc;

	/* An unstable scan leaves stamps that never match: scan again. */
	if (st == NULL || sqlite3_bind_int64(st, 1, c->b->id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, c->stable ? c->new_mtime : -1) !=
	    SQLITE_OK || sqlite3_bind_int64(st, 3, c->stable ?
	    c->cur_mtime : -1) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, now_ns()) != SQLITE_OK)
		return mi_sqlerr(c->idx, "sync");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : mi_sqlerr(c->idx, "sync");
}

/* 1 when the stored stamps prove nothing changed since the last scan. */
static int
stamps_unchanged(struct mi_box *b, int64_t *new_r, int64_t *cur_r)
{
	char path[PATH_MAX];
	struct stat sn, sc;
	int64_t limit = b->synced_at - MI_SYNC_SECS * NS;

	if (sub_path(path, sizeof(path), b->dir, "new", NULL) < 0 ||
	    stat(path, &sn) < 0 ||
	    sub_path(path, sizeof(path), b->dir, "cur", NULL) < 0 ||
	    stat(path, &sc) < 0)
		return 0;
	*new_r = mtime_ns(&sn);
	*cur_r = mtime_ns(&sc);
	return *new_r == b->new_mtime && *cur_r == b->cur_mtime &&
	    *new_r < limit && *cur_r < limit;
}

int
mi_sync_locked(struct mbox_index *idx, struct mi_box *b,
    struct mbox_sync_result *res)
{
	struct sync_ctx c;
	char path[PATH_MAX];
	struct stat st;
	int r = -1;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.idx = idx;
	c.b = b;
	c.res = res;
	if (stamps_unchanged(b, &c.new_mtime, &c.cur_mtime))
		return 0;
	if (res != NULL)
		res->full_scan = 1;
	if (stat(b->dir, &st) < 0 && errno == ENOENT &&
	    strcmp(b->name, "INBOX") != 0) {
		errno = ENOENT;
		return mi_fail(idx, "mailbox %s: folder is gone", b->dir);
	}
	if (maildir_ensure(b->dir) < 0)
		return mi_fail(idx, "maildir %s: %s", b->dir, strerror(errno));
	if (mi_kwmap_load(b->dir, &c.kw) < 0) {
		mi_fail(idx, "maildir %s: " MI_KEYWORDS_FILE ": %s", b->dir,
		    strerror(errno));
		goto out;
	}
	if (move_new(&c) < 0) {
		mi_fail(idx, "maildir %s: new/: %s", b->dir, strerror(errno));
		goto out;
	}
	if (sub_path(path, sizeof(path), b->dir, "new", NULL) < 0 ||
	    stat(path, &st) < 0) {
		mi_fail(idx, "maildir %s: new/: %s", b->dir, strerror(errno));
		goto out;
	}
	c.new_mtime = mtime_ns(&st);
	if (read_cur(&c) < 0) {
		mi_fail(idx, "maildir %s: cur/: %s", b->dir, strerror(errno));
		goto out;
	}
	idx->err[0] = '\0';
	if (load_rows(&c) < 0 || merge(&c) < 0 || add_all_fresh(&c) < 0)
		goto out;
	if (mi_kwmap_save(b->dir, &c.kw) < 0)
		log_warn("maildir %s: cannot write " MI_KEYWORDS_FILE ": %s",
		    b->dir, strerror(errno));
	if (mi_box_save_counters(idx, b) < 0 || save_stamps(&c) < 0)
		goto out;
	r = 0;
out:
	ctx_free(&c);
	return r;
}

void
mbox_sync_result_free(struct mbox_sync_result *res)
{
	if (res == NULL)
		return;
	mbox_uids_free(&res->expunged);
	free(res->expunged_seqs);
	memset(res, 0, sizeof(*res));
}

int
mbox_sync(struct mbox_index *idx, int64_t id, struct mbox_sync_result *res)
{
	struct mi_box b;
	int64_t n, c;
	int r;

	if (res != NULL)
		memset(res, 0, sizeof(*res));
	/* The cheap check, without taking the write lock. */
	if ((r = mi_box_load(idx, id, &b)) < 0)
		return -1;
	if (r == 1 && stamps_unchanged(&b, &n, &c))
		return 0;
	if (mi_begin(idx, 1) < 0)
		return -1;
	if ((r = mi_box_load(idx, id, &b)) <= 0) {
		if (r == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		goto fail;
	}
	if (mi_sync_locked(idx, &b, res) < 0)
		goto fail;
	if (mi_commit(idx) < 0)
		goto fail_res;
	return 0;
fail:
	mi_rollback(idx);
fail_res:
	mbox_sync_result_free(res);
	return -1;
}
