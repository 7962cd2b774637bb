/*
 * mbox_copy.c - messages entering a mailbox through the index: APPEND
 * (written under tmp/, fsynced, renamed into cur/ with its flags, cur/
 * fsynced), COPY (hard link, or a copy across file systems) and MOVE
 * (rename), each giving the new messages the next UIDs in order for
 * APPENDUID / COPYUID, and keeping the Maildir++ quota file up to date.
 *
 * Must never leave half a message in cur/, never report a UID for a
 * message that is not durably in cur/, and never hold the index's write
 * lock while writing a message body (APPEND writes first, locks second).
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "dirsync.h"
#include "durable.h"
#include "maildir.h"
#include "quota.h"

#define CHUNK 65536

static int
quota_check(struct mbox_index *idx, uint64_t add)
{
	uint64_t bytes, count;

	if (idx->quota_bytes == 0)
		return 0;
	if (quota_usage(idx->userdir, idx->quota_bytes, &bytes, &count) < 0)
		return mi_fail(idx, "quota of %s: %s", idx->userdir,
		    strerror(errno));
	if (bytes > idx->quota_bytes || add > idx->quota_bytes - bytes) {
		errno = EDQUOT;
		return mi_fail(idx, "over quota");
	}
	return 0;
}

/* Copy from to tmp under dst's tmp/, keeping mtime, then into `to`. */
static int
copy_file(const char *from, const char *dstdir, const char *to)
{
	char tmp[PATH_MAX], base[NAME_MAX + 1], chunk[CHUNK];
	struct timespec times[2];
	struct stat st;
	ssize_t r;
	int in, out, saved;

	if (mi_new_base(base, sizeof(base), 0, 0) < 0 ||
	    snprintf_checked(tmp, sizeof(tmp), "%s/tmp/%s", dstdir, base) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -1;
	if (fstat(in, &st) < 0 || (out = open(tmp, O_CREAT | O_EXCL |
	    O_WRONLY | O_CLOEXEC, 0600)) < 0) {
		saved = errno;
		close(in);
		errno = saved;
		return -1;
	}
	for (;;) {
		r = read(in, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || durable_write_all(out, chunk, (size_t)r) < 0)
			break;
	}
	saved = errno;
	close(in);
	times[0] = st.st_atim;
	times[1] = st.st_mtim;
	if (r != 0 || futimens(out, times) < 0 || fsync(out) < 0) {
		saved = r != 0 ? saved : errno;
		close(out);
		durable_unlink_quiet(tmp);
		errno = saved;
		return -1;
	}
	if (close(out) < 0 || durable_rename_noreplace(tmp, to) < 0) {
		durable_unlink_quiet(tmp);
		return -1;
	}
	return 0;
}

/* The new name in dst: a fresh base, the old info, dst's letters. */
static int
dst_name(const struct mi_row *row, uint32_t letters, char *out, size_t outsz,
    char *base, size_t basesz)
{
	char tmp[NAME_MAX + 1];
	const char *info = row->fname + mi_base_len(row->fname);

	if (mi_new_base(base, basesz, row->fsize, row->size) < 0 ||
	    snprintf_checked(tmp, sizeof(tmp), "%s%s", base, info) < 0 ||
	    mi_fname_build(tmp, strlen(base), row->flags, letters, out,
	    outsz) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Cached ENVELOPE/BODYSTRUCTURE travel with the message. */
static int
copy_cache(struct mbox_index *idx, int64_t src, uint32_t suid, int64_t dst,
    uint32_t duid)
{
	static const char sql[] = "UPDATE messages SET"
	    " (envelope, bodystructure) = (SELECT envelope, bodystructure"
	    "  FROM messages WHERE mailbox = ?3 AND uid = ?4)"
	    " WHERE mailbox = ?1 AND uid = ?2";
	sqlite3_stmt *st = mi_stmt(idx, sql);
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 1, dst) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, duid) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, src) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, suid) != SQLITE_OK)
		return mi_sqlerr(idx, "copy");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : mi_sqlerr(idx, "copy");
}

/* Put one message file into dst/cur/nf.  1 done, 0 source gone, -1. */
static int
place_file(struct mbox_index *idx, const char *from, const char *dstdir,
    const char *to, int move)
{
	int r = move ? durable_rename_noreplace(from, to) : link(from, to);

	if (r < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != EXDEV && errno != EPERM && errno != EMLINK)
			return -1;
		if (copy_file(from, dstdir, to) < 0)
			return errno == ENOENT ? 0 : -1;
		if (move)
			(void)unlink(from);
	}
	if (move)
		mi_observe(idx, from, 0);
	mi_observe(idx, to, 1);
	return 1;
}

int
mi_transfer(struct mbox_index *idx, struct mi_box *src,
    const struct mbox_range *set, size_t nset, struct mi_box *dst, int move,
    struct mbox_uids *src_uids_r, struct mbox_uids *dst_uids_r,
    int64_t *bytes_r, int64_t *count_r)
{
	char from[PATH_MAX], to[PATH_MAX], nf[NAME_MAX + 1], base[NAME_MAX + 1];
	uint64_t dmodseq = 0, smodseq = 0, total = 0;
	uint32_t *letters = NULL, uid;
	struct mi_row *rows;
	struct mi_kwmap kw;
	size_t n, i;
	int64_t count = 0;
	int r = -1, p;

	if (mi_rows_load(idx, src->id, set, nset, 0, &rows, &n) < 0)
		return -1;
	if (mi_kwmap_load(dst->dir, &kw) < 0) {
		mi_rows_free(rows, n);
		return mi_fail(idx, "%s/" MI_KEYWORDS_FILE ": %s", dst->dir,
		    strerror(errno));
	}
	if (n > 0 && (letters = calloc(n, sizeof(*letters))) == NULL) {
		errno = ENOMEM;
		mi_fail(idx, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		letters[i] = mi_kwmap_from_list(&kw, rows[i].keywords);
		total += rows[i].fsize;
	}
	if ((!move && quota_check(idx, total) < 0) ||
	    mi_kwmap_save(dst->dir, &kw) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		if (dst_name(&rows[i], letters[i], nf, sizeof(nf), base,
		    sizeof(base)) < 0 ||
		    mi_cur_path(from, sizeof(from), src->dir, rows[i].fname) < 0 ||
		    mi_cur_path(to, sizeof(to), dst->dir, nf) < 0)
			goto out;
		if ((p = place_file(idx, from, dst->dir, to, move)) < 0) {
			mi_fail(idx, "%s %s: %s", move ? "move" : "copy", from,
			    strerror(errno));
			goto out;
		}
		if (p == 0)
			continue;	/* gone behind our back: skipped */
		if (dmodseq == 0)
			dmodseq = ++dst->highestmodseq;
		if (mi_msg_insert(idx, dst, base, strlen(base), nf,
		    rows[i].flags, rows[i].keywords, rows[i].size,
		    rows[i].fsize, rows[i].idate, dmodseq, &uid) < 0 ||
		    copy_cache(idx, src->id, rows[i].uid, dst->id, uid) < 0)
			goto out;
		if (move) {
			if (smodseq == 0)
				smodseq = src == dst ? dmodseq :
				    ++src->highestmodseq;
			if (mi_msg_expunged(idx, src->id, rows[i].uid,
			    smodseq) < 0)
				goto out;
		}
		if (mi_uids_push(src_uids_r, rows[i].uid) < 0 ||
		    mi_uids_push(dst_uids_r, uid) < 0) {
			errno = ENOMEM;
			goto out;
		}
		count++;
	}
	if (count > 0) {
		if (snprintf_checked(to, sizeof(to), "%s/cur", dst->dir) < 0 ||
		    dirsync_fsync(to) < 0) {
			mi_fail(idx, "fsync %s/cur: %s", dst->dir,
			    strerror(errno));
			goto out;
		}
		if (move && snprintf_checked(from, sizeof(from), "%s/cur",
		    src->dir) == 0)
			(void)durable_fsync_dir(from);
	}
	if (mi_box_save_counters(idx, dst) < 0 ||
	    (src != dst && mi_box_save_counters(idx, src) < 0))
		goto out;
	if (bytes_r != NULL)
		*bytes_r = (int64_t)total;
	if (count_r != NULL)
		*count_r = count;
	r = 0;
out:
	free(letters);
	mi_kwmap_free(&kw);
	mi_rows_free(rows, n);
	return r;
}

static int
copy_or_move(struct mbox_index *idx, int64_t src,
    const struct mbox_range *set, size_t nset, int64_t dst,
    struct mbox_uids *src_uids_r, struct mbox_uids *dst_uids_r,
    uint32_t *dst_uidvalidity_r, int move)
{
	struct mi_box sb, db, *dp = &db;
	int64_t bytes = 0, count = 0;
	int r1, r2;

	if (mi_begin(idx, 1) < 0)
		return -1;
	r1 = mi_box_load(idx, src, &sb);
	r2 = r1 > 0 ? mi_box_load(idx, dst, &db) : 0;
	if (r1 <= 0 || r2 <= 0) {
		if (r1 == 0 || r2 == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		goto fail;
	}
	if (src == dst)
		dp = &sb;
	if (mi_transfer(idx, &sb, set, nset, dp, move, src_uids_r, dst_uids_r,
	    &bytes, &count) < 0)
		goto fail;
	if (mi_commit(idx) < 0)
		return -1;
	if (dst_uidvalidity_r != NULL)
		*dst_uidvalidity_r = dp->uidvalidity;
	if (!move && count > 0)
		(void)quota_add(idx->userdir, bytes, count);
	return 0;
fail:
	mi_rollback(idx);
	return -1;
}

int
mbox_copy(struct mbox_index *idx, int64_t src, const struct mbox_range *set,
    size_t nset, int64_t dst, struct mbox_uids *src_uids_r,
    struct mbox_uids *dst_uids_r, uint32_t *dst_uidvalidity_r)
{
	return copy_or_move(idx, src, set, nset, dst, src_uids_r, dst_uids_r,
	    dst_uidvalidity_r, 0);
}

int
mbox_move(struct mbox_index *idx, int64_t src, const struct mbox_range *set,
    size_t nset, int64_t dst, struct mbox_uids *src_uids_r,
    struct mbox_uids *dst_uids_r, uint32_t *dst_uidvalidity_r)
{
	return copy_or_move(idx, src, set, nset, dst, src_uids_r, dst_uids_r,
	    dst_uidvalidity_r, 1);
}

/* ---- APPEND ---- */

/* CRLF -> LF while writing, counting what was written. */
struct lf_writer {
	int fd;
	int pending_cr;
	uint64_t size, lines;
	size_t used;
	char out[CHUNK];
};

static int
lf_flush(struct lf_writer *w)
{
	if (w->used > 0 && durable_write_all(w->fd, w->out, w->used) < 0)
		return -1;
	w->size += w->used;
	w->used = 0;
	return 0;
}

static int
lf_put(struct lf_writer *w, char c)
{
	if (w->used == sizeof(w->out) && lf_flush(w) < 0)
		return -1;
	w->out[w->used++] = c;
	if (c == '\n')
		w->lines++;
	return 0;
}

static int
lf_write(struct lf_writer *w, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (w->pending_cr) {
			w->pending_cr = 0;
			if (p[i] != '\n' && lf_put(w, '\r') < 0)
				return -1;
		}
		if (p[i] == '\r')
			w->pending_cr = 1;
		else if (lf_put(w, p[i]) < 0)
			return -1;
	}
	return 0;
}

static int
lf_finish(struct lf_writer *w)
{
	if (w->pending_cr && lf_put(w, '\r') < 0)
		return -1;
	w->pending_cr = 0;
	return lf_flush(w);
}

/* Write the message to tmp (fsynced, mtime = date). 0 / -1. */
static int
append_write(struct mbox_index *idx, const char *tmp, const void *data,
    size_t len, int infd, time_t date, uint64_t *fsize_r, uint64_t *vsize_r)
{
	struct lf_writer *w;
	struct timespec times[2];
	char chunk[CHUNK];
	ssize_t r;
	int saved;

	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	w->fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		free(w);
		return mi_fail(idx, "create %s: %s", tmp, strerror(errno));
	}
	if (data != NULL && lf_write(w, data, len) < 0)
		goto fail;
	while (data == NULL) {
		r = read(infd, chunk, sizeof(chunk));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto fail;
		if (r == 0)
			break;
		if (lf_write(w, chunk, (size_t)r) < 0)
			goto fail;
	}
	times[0].tv_sec = times[1].tv_sec = date;
	times[0].tv_nsec = times[1].tv_nsec = 0;
	if (lf_finish(w) < 0 || futimens(w->fd, times) < 0 || fsync(w->fd) < 0)
		goto fail;
	if (close(w->fd) < 0) {
		w->fd = -1;
		goto fail;
	}
	*fsize_r = w->size;
	*vsize_r = w->size + w->lines;
	free(w);
	return 0;
fail:
	saved = errno;
	if (w->fd >= 0)
		close(w->fd);
	free(w);
	durable_unlink_quiet(tmp);
	errno = saved;
	return mi_fail(idx, "write %s: %s", tmp, strerror(errno));
}

/* Into cur/ under the lock, then the row. */
static int
append_commit(struct mbox_index *idx, int64_t id, const char *tmp,
    uint64_t fsize, uint64_t vsize, time_t date,
    const struct mbox_append_req *req, uint32_t *uid_r, uint32_t *uv_r)
{
	char base[NAME_MAX + 1], nf[NAME_MAX + 1], to[PATH_MAX];
	struct mi_kwmap kw;
	struct mi_box b;
	char list[MI_KWLIST_MAX] = "";
	uint32_t letters, uid;
	size_t i;
	int r, placed = 0;

	memset(&kw, 0, sizeof(kw));
	if (mi_begin(idx, 1) < 0)
		return -1;
	if ((r = mi_box_load(idx, id, &b)) <= 0) {
		if (r == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		goto fail;
	}
	for (i = 0; i < req->nkeywords; i++)
		if (mi_kwlist_add(list, sizeof(list), req->keywords[i]) < 0) {
			mi_fail(idx, "too many keywords");
			goto fail;
		}
	if (mi_kwmap_load(b.dir, &kw) < 0)
		goto fail_errno;
	letters = mi_kwmap_from_list(&kw, list);
	if (mi_kwmap_save(b.dir, &kw) < 0 ||
	    mi_new_base(base, sizeof(base), fsize, vsize) < 0 ||
	    mi_fname_build(base, strlen(base), req->flags, letters, nf,
	    sizeof(nf)) < 0 || mi_cur_path(to, sizeof(to), b.dir, nf) < 0 ||
	    durable_rename_noreplace(tmp, to) < 0)
		goto fail_errno;
	placed = 1;
	mi_observe(idx, to, 1);
	if (mi_msg_insert(idx, &b, base, strlen(base), nf, req->flags, list,
	    vsize, fsize, (int64_t)date, ++b.highestmodseq, &uid) < 0 ||
	    mi_box_save_counters(idx, &b) < 0)
		goto fail;
	/* cur/ after the rename: only then is the message durable. */
	if (snprintf_checked(to, sizeof(to), "%s/cur", b.dir) < 0 ||
	    dirsync_fsync(to) < 0)
		goto fail_errno;
	if (mi_commit(idx) < 0)
		goto fail_nortx;
	mi_kwmap_free(&kw);
	*uid_r = uid;
	if (uv_r != NULL)
		*uv_r = b.uidvalidity;
	return 0;
fail_errno:
	mi_fail(idx, "append to %s: %s", b.dir, strerror(errno));
fail:
	mi_rollback(idx);
fail_nortx:
	if (placed && mi_cur_path(to, sizeof(to), b.dir, nf) == 0)
		durable_unlink_quiet(to);
	mi_kwmap_free(&kw);
	return -1;
}

static int
append_common(struct mbox_index *idx, int64_t id, const void *data,
    size_t len, int fd, const struct mbox_append_req *req, uint32_t *uid_r,
    uint32_t *uv_r)
{
	char tmp[PATH_MAX], base[NAME_MAX + 1];
	struct mbox_append_req rq = *req;
	uint64_t fsize = 0, vsize = 0;
	time_t date = req->internaldate != 0 ? req->internaldate : time(NULL);
	struct mi_box b;
	size_t i;
	int r;

	rq.flags &= MBOX_F_ALL;
	for (i = 0; i < req->nkeywords; i++)
		if (!mi_keyword_valid(req->keywords[i])) {
			errno = EINVAL;
			return mi_fail(idx, "invalid keyword");
		}
	if ((r = mi_box_load(idx, id, &b)) <= 0) {
		if (r == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		return -1;
	}
	if (maildir_ensure(b.dir) < 0)
		return mi_fail(idx, "maildir %s: %s", b.dir, strerror(errno));
	if (mi_new_base(base, sizeof(base), 0, 0) < 0 ||
	    snprintf_checked(tmp, sizeof(tmp), "%s/tmp/%s", b.dir, base) < 0) {
		errno = ENAMETOOLONG;
		return mi_fail(idx, "append: path too long");
	}
	if (append_write(idx, tmp, data, len, fd, date, &fsize, &vsize) < 0)
		return -1;
	if (quota_check(idx, fsize) < 0 ||
	    append_commit(idx, id, tmp, fsize, vsize, date, &rq, uid_r,
	    uv_r) < 0) {
		durable_unlink_quiet(tmp);
		return -1;
	}
	(void)quota_add(idx->userdir, (int64_t)fsize, 1);
	return 0;
}

int
mbox_append(struct mbox_index *idx, int64_t id, const void *data,
    size_t len, const struct mbox_append_req *req, uint32_t *uid_r,
    uint32_t *uidvalidity_r)
{
	if (data == NULL && len > 0) {
		errno = EINVAL;
		return -1;
	}
	return append_common(idx, id, data != NULL ? data : "", len, -1, req,
	    uid_r, uidvalidity_r);
}

int
mbox_append_fd(struct mbox_index *idx, int64_t id, int fd,
    const struct mbox_append_req *req, uint32_t *uid_r,
    uint32_t *uidvalidity_r)
{
	return append_common(idx, id, NULL, 0, fd, req, uid_r, uidvalidity_r);
}
