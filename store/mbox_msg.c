/*
 * mbox_msg.c - the message rows of a mailbox: inserting and expunging
 * rows, listing them, opening a message file, the expunged-UID history
 * for QRESYNC, the cached ENVELOPE / BODYSTRUCTURE text, fresh base names
 * and sizes.  STORE and EXPUNGE are in mbox_store.c.
 *
 * Must never hand out a path it has not built from a row and the
 * mailbox's own directory, and never fail on a file that was renamed or
 * removed behind our back: opening one syncs and tries once more.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "maildir.h"

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_name[256];
static unsigned long base_seq;	/* __atomic only */

static void
host_init(void)
{
	if (gethostname(host_name, sizeof(host_name) - 1) < 0 ||
	    host_name[0] == '\0')
		(void)strlcpy_checked(host_name, "localhost", sizeof(host_name));
	host_name[sizeof(host_name) - 1] = '\0';
}

int
mi_new_base(char *out, size_t outsz, uint64_t size, uint64_t vsize)
{
	struct timeval tv;
	unsigned long seq;

	pthread_once(&host_once, host_init);
	gettimeofday(&tv, NULL);
	/* High sequence numbers: never the same name as maildir_deliver(). */
	seq = __atomic_fetch_add(&base_seq, 1, __ATOMIC_RELAXED) | (1ul << 30);
	return maildir_make_name(out, outsz, tv.tv_sec, (long)tv.tv_usec,
	    getpid(), seq, host_name, size, vsize);
}

int
mi_file_sizes(int fd, uint64_t *fsize_r, uint64_t *vsize_r)
{
	char chunk[65536];
	uint64_t size = 0, bare_lf = 0;
	char prev = '\0';
	ssize_t r;
	off_t off = 0;
	ssize_t i;

	for (;;) {
		r = pread(fd, chunk, sizeof(chunk), off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		for (i = 0; i < r; i++) {
			if (chunk[i] == '\n' && prev != '\r')
				bare_lf++;
			prev = chunk[i];
		}
		size += (uint64_t)r;
		off += r;
	}
	*fsize_r = size;
	*vsize_r = size + bare_lf;
	return 0;
}

int
mi_cur_path(char *out, size_t outsz, const char *dir, const char *fname)
{
	if (snprintf_checked(out, outsz, "%s/cur/%s", dir, fname) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

int
mi_msg_insert(struct mbox_index *idx, struct mi_box *b, const char *base,
    size_t baselen, const char *fname, unsigned flags, const char *keywords,
    uint64_t size, uint64_t fsize, int64_t idate, uint64_t modseq,
    uint32_t *uid_r)
{
	static const char sql[] = "INSERT INTO messages(mailbox, uid, base,"
	    " fname, flags, keywords, modseq, size, fsize, internaldate)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
	sqlite3_stmt *st;
	int rc;

	if (b->uidnext == 0 || b->uidnext == UINT32_MAX) {
		errno = EOVERFLOW;
		return mi_fail(idx, "mailbox %s: out of UIDs", b->name);
	}
	st = mi_stmt(idx, sql);
	if (st == NULL || sqlite3_bind_int64(st, 1, b->id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, b->uidnext) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, base, (int)baselen, SQLITE_STATIC) !=
	    SQLITE_OK ||
	    sqlite3_bind_text(st, 4, fname, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 5, (int)(flags & MBOX_F_ALL)) != SQLITE_OK ||
	    sqlite3_bind_text(st, 6, keywords, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 7, (sqlite3_int64)modseq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 8, (sqlite3_int64)size) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 9, (sqlite3_int64)fsize) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 10, idate) != SQLITE_OK)
		return mi_sqlerr(idx, "message insert");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return mi_sqlerr(idx, "message insert");
	if (uid_r != NULL)
		*uid_r = b->uidnext;
	b->uidnext++;
	return 0;
}

int
mi_msg_expunged(struct mbox_index *idx, int64_t box, uint32_t uid,
    uint64_t modseq)
{
	static const char del[] = "DELETE FROM messages WHERE mailbox = ?1"
	    " AND uid = ?2";
	static const char ins[] = "INSERT OR REPLACE INTO expunged(mailbox,"
	    " uid, modseq) VALUES (?1, ?2, ?3)";
	const char *sqls[2] = { del, ins };
	sqlite3_stmt *st;
	int i, rc;

	for (i = 0; i < 2; i++) {
		st = mi_stmt(idx, sqls[i]);
		if (st == NULL || sqlite3_bind_int64(st, 1, box) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, uid) != SQLITE_OK ||
		    (i == 1 && sqlite3_bind_int64(st, 3,
		    (sqlite3_int64)modseq) != SQLITE_OK))
			return mi_sqlerr(idx, "expunge");
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return mi_sqlerr(idx, "expunge");
	}
	return 0;
}

/* Smallest range covering the set, for the SQL BETWEEN. */
static void
set_bounds(const struct mbox_range *set, size_t nset, uint32_t *lo,
    uint32_t *hi)
{
	size_t i;

	*lo = 1;
	*hi = UINT32_MAX;
	if (set == NULL)
		return;
	*lo = UINT32_MAX;
	*hi = 0;
	for (i = 0; i < nset; i++) {
		if (set[i].lo < *lo)
			*lo = set[i].lo;
		if (set[i].hi > *hi)
			*hi = set[i].hi;
	}
}

void
mi_rows_free(struct mi_row *rows, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(rows[i].fname);	/* keywords live in the same block */
	free(rows);
}

static int
rows_query(struct mbox_index *idx, sqlite3_stmt *st,
    const struct mbox_range *set, size_t nset, struct mi_row **rows_r,
    size_t *n_r)
{
	struct mi_row *rows = NULL, *p, *r;
	size_t n = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *fname = (const char *)sqlite3_column_text(st, 7);
		const char *kw = (const char *)sqlite3_column_text(st, 2);
		uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);

		if (!mi_in_set(set, nset, uid))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			p = reallocarray(rows, cap, sizeof(*rows));
			if (p == NULL)
				break;
			rows = p;
		}
		r = &rows[n++];
		r->uid = uid;
		r->flags = (unsigned)sqlite3_column_int(st, 1);
		r->modseq = (uint64_t)sqlite3_column_int64(st, 3);
		r->size = (uint64_t)sqlite3_column_int64(st, 4);
		r->fsize = (uint64_t)sqlite3_column_int64(st, 5);
		r->idate = sqlite3_column_int64(st, 6);
		/* one block for both strings: a listing of a big mailbox
		 * after every command is thousands of rows */
		{
			size_t lf = strlen(fname != NULL ? fname : "");
			size_t lk = strlen(kw != NULL ? kw : "");

			r->fname = malloc(lf + lk + 2);
			if (r->fname == NULL) {
				r->keywords = NULL;
				break;
			}
			memcpy(r->fname, fname != NULL ? fname : "", lf + 1);
			r->keywords = r->fname + lf + 1;
			memcpy(r->keywords, kw != NULL ? kw : "", lk + 1);
		}
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		mi_rows_free(rows, n);
		if (rc == SQLITE_ROW) {
			errno = ENOMEM;
			return mi_fail(idx, "out of memory");
		}
		return mi_sqlerr(idx, "messages");
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

#define ROW_COLS "uid, flags, keywords, modseq, size, fsize," \
	" internaldate, fname"

static int
rows_load(struct mbox_index *idx, int64_t box, const struct mbox_range *set,
    size_t nset, int deleted_only, uint64_t changedsince,
    struct mi_row **rows_r, size_t *n_r)
{
	static const char all[] = "SELECT " ROW_COLS " FROM messages"
	    " WHERE mailbox = ?1 AND uid BETWEEN ?2 AND ?3 AND modseq > ?4"
	    " ORDER BY uid";
	static const char del[] = "SELECT " ROW_COLS " FROM messages"
	    " WHERE mailbox = ?1 AND uid BETWEEN ?2 AND ?3 AND modseq > ?4"
	    " AND flags & 8 ORDER BY uid";
	/*
	 * "What changed since" (after every IMAP command): SQLite would walk
	 * every message by uid; the modseq index finds the few changed ones.
	 */
	static const char changed[] = "SELECT " ROW_COLS " FROM messages"
	    " INDEXED BY messages_modseq"
	    " WHERE mailbox = ?1 AND modseq > ?4 AND uid BETWEEN ?2 AND ?3"
	    " ORDER BY uid";
	sqlite3_stmt *st = mi_stmt(idx, deleted_only ? del :
	    changedsince > 0 ? changed : all);
	uint32_t lo, hi;

	*rows_r = NULL;
	*n_r = 0;
	set_bounds(set, nset, &lo, &hi);
	if (lo > hi)
		return 0;
	if (st == NULL || sqlite3_bind_int64(st, 1, box) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, lo) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, hi) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, (sqlite3_int64)changedsince) != SQLITE_OK)
		return mi_sqlerr(idx, "messages");
	return rows_query(idx, st, set, nset, rows_r, n_r);
}

int
mi_rows_load(struct mbox_index *idx, int64_t box,
    const struct mbox_range *set, size_t nset, int deleted_only,
    struct mi_row **rows_r, size_t *n_r)
{
	return rows_load(idx, box, set, nset, deleted_only, 0, rows_r, n_r);
}

/* Load box inside a transaction; ENOENT when it is gone. 0 / -1. */
int
mi_box_need(struct mbox_index *idx, int64_t id, struct mi_box *b)
{
	int r = mi_box_load(idx, id, b);

	if (r == 0) {
		errno = ENOENT;
		return mi_fail(idx, "no such mailbox");
	}
	return r < 0 ? -1 : 0;
}

/* ---- listing and opening ---- */

void
mbox_msglist_free(struct mbox_msglist *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < l->count; i++)
		free(l->msgs[i].fname);	/* keywords live in the same block */
	free(l->msgs);
	free(l->dir);
	memset(l, 0, sizeof(*l));
}

int
mbox_msglist_path(const struct mbox_msglist *l, size_t i, char *out,
    size_t outsz)
{
	if (i >= l->count) {
		errno = EINVAL;
		return -1;
	}
	return mi_cur_path(out, outsz, l->dir, l->msgs[i].fname);
}

int
mbox_messages(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset, uint64_t changedsince,
    struct mbox_msglist *out)
{
	struct mi_row *rows;
	struct mi_box b;
	size_t n, i;

	memset(out, 0, sizeof(*out));
	if (mi_begin(idx, 0) < 0)
		return -1;
	if (mi_box_need(idx, id, &b) < 0 ||
	    rows_load(idx, id, set, nset, 0, changedsince, &rows, &n) < 0) {
		mi_rollback(idx);
		return -1;
	}
	if (mi_commit(idx) < 0) {
		mi_rows_free(rows, n);
		return -1;
	}
	out->dir = strdup(b.dir);
	out->msgs = n > 0 ? calloc(n, sizeof(*out->msgs)) : NULL;
	if (out->dir == NULL || (n > 0 && out->msgs == NULL)) {
		mi_rows_free(rows, n);
		mbox_msglist_free(out);
		errno = ENOMEM;
		return mi_fail(idx, "out of memory");
	}
	for (i = 0; i < n; i++) {
		struct mbox_msg *m = &out->msgs[i];

		m->uid = rows[i].uid;
		m->flags = rows[i].flags;
		m->keywords = rows[i].keywords;
		m->modseq = rows[i].modseq;
		m->size = rows[i].size;
		m->fsize = rows[i].fsize;
		m->internaldate = rows[i].idate;
		m->fname = rows[i].fname;
	}
	out->count = n;
	free(rows);		/* the strings now belong to out */
	return 0;
}

/* The current path of one message.  1 / 0 (no such message) / -1. */
static int
msg_path(struct mbox_index *idx, int64_t id, uint32_t uid, char *out,
    size_t outsz)
{
	struct mbox_range one = { uid, uid };
	struct mi_row *rows;
	struct mi_box b;
	size_t n;
	int r;

	if (mi_begin(idx, 0) < 0)
		return -1;
	if (mi_box_need(idx, id, &b) < 0 ||
	    mi_rows_load(idx, id, &one, 1, 0, &rows, &n) < 0) {
		mi_rollback(idx);
		return -1;
	}
	(void)mi_commit(idx);
	r = n == 0 ? 0 : mi_cur_path(out, outsz, b.dir, rows[0].fname) < 0 ?
	    -1 : 1;
	mi_rows_free(rows, n);
	return r;
}

int
mbox_msg_open(struct mbox_index *idx, int64_t id, uint32_t uid, int *fd_r)
{
	char path[PATH_MAX];
	int tries, r;

	*fd_r = -1;
	for (tries = 0; tries < 2; tries++) {
		if ((r = msg_path(idx, id, uid, path, sizeof(path))) <= 0)
			return r;
		*fd_r = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (*fd_r >= 0)
			return 1;
		if (errno != ENOENT)
			return mi_fail(idx, "open %s: %s", path, strerror(errno));
		/* Renamed or removed behind our back: look again. */
		if (tries == 0 && mbox_sync(idx, id, NULL) < 0)
			return -1;
	}
	return 0;
}

int
mbox_msglist_open(struct mbox_index *idx, int64_t id,
    const struct mbox_msglist *l, size_t i, int *fd_r)
{
	char path[PATH_MAX];

	*fd_r = -1;
	if (mbox_msglist_path(l, i, path, sizeof(path)) < 0)
		return mi_fail(idx, "message path: %s", strerror(errno));
	*fd_r = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd_r >= 0)
		return 1;
	if (errno != ENOENT)
		return mi_fail(idx, "open %s: %s", path, strerror(errno));
	return mbox_msg_open(idx, id, l->msgs[i].uid, fd_r);
}

/* The end of a header block in [p, p+n): LF LF, or LF CR LF in a CRLF file. */
static int
has_header_end(const char *p, size_t n)
{
	return memmem(p, n, "\n\n", 2) != NULL ||
	    memmem(p, n, "\n\r\n", 3) != NULL;
}

/* The rest of fd into b, or with header_only at least its header.
 * 0, or -1 with errno (EFBIG: over b's max). */
static int
read_fd(int fd, int header_only, struct buf *b)
{
	char chunk[65536];
	/* most headers fit in 4 KiB; a body is most of a mailbox's bytes */
	size_t want = header_only ? 4096 : sizeof(chunk);
	ssize_t n;

	while ((n = read(fd, chunk, want)) > 0) {
		size_t from = b->len > 2 ? b->len - 2 : 0;

		if (buf_append(b, chunk, (size_t)n) < 0) {
			errno = EFBIG;
			return -1;
		}
		if (header_only && has_header_end(b->data + from,
		    b->len - from))
			break;
		want = sizeof(chunk);
	}
	return n < 0 ? -1 : 0;
}

int
mbox_msglist_read(struct mbox_index *idx, int64_t id,
    const struct mbox_msglist *l, size_t i, int header_only, struct buf *b)
{
	int fd, r;

	buf_reset(b);
	if ((r = mbox_msglist_open(idx, id, l, i, &fd)) <= 0)
		return r;
	if (read_fd(fd, header_only, b) < 0)
		r = mi_fail(idx, "read message %u: %s", l->msgs[i].uid,
		    errno == EFBIG ? "too large" : strerror(errno));
	close(fd);
	return r;
}

int
mbox_msglist_read_file(const struct mbox_msglist *l, size_t i, struct buf *b)
{
	char path[PATH_MAX];
	int fd, r = 1;

	buf_reset(b);
	if (mbox_msglist_path(l, i, path, sizeof(path)) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? 0 : -1;
	if (read_fd(fd, 0, b) < 0)
		r = -1;
	close(fd);
	return r;
}

int
mbox_expunged_since(struct mbox_index *idx, int64_t id, uint64_t modseq,
    const struct mbox_range *set, size_t nset, struct mbox_uids *out)
{
	static const char sql[] = "SELECT uid FROM expunged WHERE mailbox = ?1"
	    " AND modseq > ?2 ORDER BY uid";
	sqlite3_stmt *st = mi_stmt(idx, sql);
	uint32_t uid;
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, (sqlite3_int64)modseq) != SQLITE_OK)
		return mi_sqlerr(idx, "expunged");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uid = (uint32_t)sqlite3_column_int64(st, 0);
		if (mi_in_set(set, nset, uid) && mi_uids_push(out, uid) < 0)
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		if (rc == SQLITE_ROW) {
			errno = ENOMEM;
			return mi_fail(idx, "out of memory");
		}
		return mi_sqlerr(idx, "expunged");
	}
	return 0;
}

/* ---- cached FETCH items ---- */

int
mbox_cache_get(struct mbox_index *idx, int64_t id, uint32_t uid,
    enum mbox_cache_field field, char **text_r)
{
	static const char env[] = "SELECT envelope FROM messages"
	    " WHERE mailbox = ?1 AND uid = ?2";
	static const char bs[] = "SELECT bodystructure FROM messages"
	    " WHERE mailbox = ?1 AND uid = ?2";
	sqlite3_stmt *st = mi_stmt(idx, field == MBOX_CACHE_ENVELOPE ? env : bs);
	const char *v;
	int rc, r = 0;

	*text_r = NULL;
	if (st == NULL || sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, uid) != SQLITE_OK)
		return mi_sqlerr(idx, "cache");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		v = (const char *)sqlite3_column_text(st, 0);
		if (v != NULL) {
			*text_r = strdup(v);
			r = *text_r != NULL ? 1 : -1;
		}
	} else if (rc != SQLITE_DONE) {
		r = mi_sqlerr(idx, "cache");
	}
	sqlite3_reset(st);
	if (r < 0 && rc == SQLITE_ROW) {
		errno = ENOMEM;
		mi_fail(idx, "out of memory");
	}
	return r;
}

int
mbox_cache_set(struct mbox_index *idx, int64_t id, uint32_t uid,
    enum mbox_cache_field field, const char *text, size_t len)
{
	static const char env[] = "UPDATE messages SET envelope = ?3"
	    " WHERE mailbox = ?1 AND uid = ?2";
	static const char bs[] = "UPDATE messages SET bodystructure = ?3"
	    " WHERE mailbox = ?1 AND uid = ?2";
	sqlite3_stmt *st;
	int rc;

	if (len > (size_t)INT32_MAX) {
		errno = EFBIG;
		return mi_fail(idx, "cache text too long");
	}
	st = mi_stmt(idx, field == MBOX_CACHE_ENVELOPE ? env : bs);
	if (st == NULL || sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, uid) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, text, (int)len, SQLITE_STATIC) != SQLITE_OK)
		return mi_sqlerr(idx, "cache");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return mi_sqlerr(idx, "cache");
	return sqlite3_changes(idx->db) > 0 ? 1 : 0;
}
