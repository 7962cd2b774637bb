/*
 * mbox_store.c - the two operations that change message files already
 * in cur/: STORE (flags and keywords: the file is renamed so that its
 * ":2," info part matches, with Dovecot keyword letters; CONDSTORE
 * UNCHANGEDSINCE) and EXPUNGE (\Deleted messages, or a UID set for UID
 * EXPUNGE), each under one new modseq.
 *
 * Must never change a row before the file: a STORE renames first and
 * records the new name second, an EXPUNGE unlinks first.  A file that is
 * not where the index said (renamed or removed by another program) makes
 * us sync and try once more, never crash or guess.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "durable.h"
#include "quota.h"

/* ---- STORE ---- */

/* The keyword list a STORE leaves on a message. */
static int
store_keywords(const struct mbox_store_req *req, const char *old, char *out,
    size_t outsz)
{
	size_t i;

	if (strlcpy_checked(out, req->mode == MBOX_STORE_SET ? "" : old,
	    outsz) < 0)
		return -1;
	for (i = 0; i < req->nkeywords; i++) {
		if (req->mode == MBOX_STORE_REMOVE)
			mi_kwlist_remove(out, req->keywords[i]);
		else if (mi_kwlist_add(out, outsz, req->keywords[i]) < 0)
			return -1;
	}
	return 0;
}

static unsigned
store_flags(const struct mbox_store_req *req, unsigned old)
{
	unsigned f = req->flags & MBOX_F_ALL;

	switch (req->mode) {
	case MBOX_STORE_SET:
		return f;
	case MBOX_STORE_ADD:
		return old | f;
	default:
		return old & ~f;
	}
}

/* Same keyword set, ignoring order and case. */
static int
kw_equal(const char *a, const char *b)
{
	char kw[MBOX_KEYWORD_MAX + 1];
	const char *lists[2] = { a, b }, *p;
	size_t tl;
	int i;

	for (i = 0; i < 2; i++)
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
	return 1;
}

static int
store_update(struct mbox_index *idx, int64_t box, uint32_t uid,
    const char *fname, unsigned flags, const char *kw, uint64_t modseq)
{
	static const char sql[] = "UPDATE messages SET fname = ?3, flags = ?4,"
	    " keywords = ?5, modseq = ?6 WHERE mailbox = ?1 AND uid = ?2";
	sqlite3_stmt *st = mi_stmt(idx, sql);
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 1, box) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, uid) != SQLITE_OK ||
	    sqlite3_bind_text(st, 3, fname, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, (int)flags) != SQLITE_OK ||
	    sqlite3_bind_text(st, 5, kw, -1, SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 6, (sqlite3_int64)modseq) != SQLITE_OK)
		return mi_sqlerr(idx, "store");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : mi_sqlerr(idx, "store");
}

struct store_new {
	unsigned flags;
	uint32_t letters;
	int change;		/* 0 nothing, 1 change, -1 failed test */
	char kw[MI_KWLIST_MAX];
};

static int
store_locked(struct mbox_index *idx, struct mi_box *b,
    const struct mbox_range *set, size_t nset,
    const struct mbox_store_req *req, struct mbox_uids *changed_r,
    struct mbox_uids *failed_r, int retry)
{
	char from[PATH_MAX], to[PATH_MAX], nf[NAME_MAX + 1];
	struct mbox_uids missing = { 0 };
	struct store_new *nw = NULL;
	struct mi_kwmap kw;
	struct mi_row *rows = NULL;
	size_t n = 0, i;
	uint64_t modseq = 0;
	int r = -1;

	if (mi_kwmap_load(b->dir, &kw) < 0)
		return mi_fail(idx, "%s/" MI_KEYWORDS_FILE ": %s", b->dir,
		    strerror(errno));
	if (mi_rows_load(idx, b->id, set, nset, 0, &rows, &n) < 0)
		goto out;
	if (n > 0 && (nw = calloc(n, sizeof(*nw))) == NULL) {
		errno = ENOMEM;
		mi_fail(idx, "out of memory");
		goto out;
	}
	/* Pass 1: the new state, and letters for new keywords. */
	for (i = 0; i < n; i++) {
		if (req->unchangedsince != 0 &&
		    rows[i].modseq > req->unchangedsince) {
			nw[i].change = -1;
			if (mi_uids_push(failed_r, rows[i].uid) < 0)
				goto nomem;
			continue;
		}
		nw[i].flags = store_flags(req, rows[i].flags);
		if (store_keywords(req, rows[i].keywords, nw[i].kw,
		    sizeof(nw[i].kw)) < 0) {
			errno = E2BIG;
			mi_fail(idx, "too many keywords on one message");
			goto out;
		}
		if (nw[i].flags == rows[i].flags &&
		    kw_equal(nw[i].kw, rows[i].keywords))
			continue;
		nw[i].change = 1;
		nw[i].letters = mi_kwmap_from_list(&kw, nw[i].kw);
	}
	/* The letters must be on disk before a file name uses them. */
	if (mi_kwmap_save(b->dir, &kw) < 0) {
		mi_fail(idx, "%s/" MI_KEYWORDS_FILE ": %s", b->dir,
		    strerror(errno));
		goto out;
	}
	/* Pass 2: rename, then record. */
	for (i = 0; i < n; i++) {
		if (nw[i].change != 1)
			continue;
		if (mi_fname_build(rows[i].fname, mi_base_len(rows[i].fname),
		    nw[i].flags, nw[i].letters, nf, sizeof(nf)) < 0 ||
		    mi_cur_path(from, sizeof(from), b->dir, rows[i].fname) < 0 ||
		    mi_cur_path(to, sizeof(to), b->dir, nf) < 0) {
			mi_fail(idx, "store: file name too long");
			goto out;
		}
		if (strcmp(from, to) != 0 && rename(from, to) < 0) {
			if (errno == ENOENT) {
				if (mi_uids_push(&missing, rows[i].uid) < 0)
					goto nomem;
				continue;
			}
			mi_fail(idx, "rename %s: %s", from, strerror(errno));
			goto out;
		}
		if (strcmp(from, to) != 0) {
			mi_observe(idx, from, 0);
			mi_observe(idx, to, 1);
		}
		if (modseq == 0)
			modseq = ++b->highestmodseq;
		if (store_update(idx, b->id, rows[i].uid, nf, nw[i].flags,
		    nw[i].kw, modseq) < 0 ||
		    mi_uids_push(changed_r, rows[i].uid) < 0)
			goto out;
	}
	if (mi_box_save_counters(idx, b) < 0)
		goto out;
	r = 0;
	if (missing.count > 0 && retry) {
		/* Renamed behind our back: read the Maildir, try those again. */
		struct mbox_range *again = calloc(missing.count, sizeof(*again));

		if (again == NULL)
			goto nomem;
		for (i = 0; i < missing.count; i++)
			again[i].lo = again[i].hi = missing.uids[i];
		r = mi_sync_locked(idx, b, NULL);
		if (r == 0)
			r = store_locked(idx, b, again, missing.count, req,
			    changed_r, failed_r, 0);
		free(again);
	}
	goto out;
nomem:
	errno = ENOMEM;
	mi_fail(idx, "out of memory");
out:
	mbox_uids_free(&missing);
	free(nw);
	mi_rows_free(rows, n);
	mi_kwmap_free(&kw);
	return r;
}

int
mbox_store(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset,
    const struct mbox_store_req *req, struct mbox_uids *changed_r,
    struct mbox_uids *failed_r)
{
	struct mi_box b;
	size_t i;

	for (i = 0; i < req->nkeywords; i++)
		if (!mi_keyword_valid(req->keywords[i])) {
			errno = EINVAL;
			return mi_fail(idx, "invalid keyword");
		}
	if (mi_begin(idx, 1) < 0)
		return -1;
	if (mi_box_need(idx, id, &b) < 0 ||
	    store_locked(idx, &b, set, nset, req, changed_r, failed_r, 1) < 0) {
		mi_rollback(idx);
		return -1;
	}
	return mi_commit(idx);
}

/* ---- EXPUNGE ---- */

static int
expunge_locked(struct mbox_index *idx, struct mi_box *b,
    const struct mbox_range *set, size_t nset, int deleted_only,
    struct mbox_uids *out, int64_t *bytes, int64_t *count, int retry)
{
	struct mbox_uids missing = { 0 };
	struct mbox_range *again;
	struct mi_row *rows;
	char path[PATH_MAX];
	uint64_t modseq = 0;
	size_t n, i;
	int r = -1;

	if (mi_rows_load(idx, b->id, set, nset, deleted_only, &rows, &n) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (mi_cur_path(path, sizeof(path), b->dir, rows[i].fname) < 0)
			goto out;
		if (unlink(path) < 0) {
			if (errno == ENOENT) {
				if (mi_uids_push(&missing, rows[i].uid) < 0)
					goto out;
				continue;
			}
			mi_fail(idx, "unlink %s: %s", path, strerror(errno));
			goto out;
		}
		mi_observe(idx, path, 0);
		if (modseq == 0)
			modseq = ++b->highestmodseq;
		if (mi_msg_expunged(idx, b->id, rows[i].uid, modseq) < 0 ||
		    mi_uids_push(out, rows[i].uid) < 0)
			goto out;
		*bytes += (int64_t)rows[i].fsize;
		*count += 1;
	}
	if (mi_box_save_counters(idx, b) < 0)
		goto out;
	r = 0;
	if (missing.count > 0 && retry) {
		/* Renamed (maybe undeleted) behind our back: look again. */
		again = calloc(missing.count, sizeof(*again));
		if (again == NULL) {
			r = -1;
			goto out;
		}
		for (i = 0; i < missing.count; i++)
			again[i].lo = again[i].hi = missing.uids[i];
		r = mi_sync_locked(idx, b, NULL);
		if (r == 0)
			r = expunge_locked(idx, b, again, missing.count,
			    deleted_only, out, bytes, count, 0);
		free(again);
	}
out:
	mbox_uids_free(&missing);
	mi_rows_free(rows, n);
	return r;
}

static int
cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static int
expunge(struct mbox_index *idx, int64_t id, const struct mbox_range *set,
    size_t nset, int deleted_only, struct mbox_uids *expunged_r)
{
	int64_t bytes = 0, count = 0;
	struct mi_box b;
	char dir[PATH_MAX];

	if (mi_begin(idx, 1) < 0)
		return -1;
	if (mi_box_need(idx, id, &b) < 0 || expunge_locked(idx, &b, set, nset,
	    deleted_only, expunged_r, &bytes, &count, 1) < 0) {
		mi_rollback(idx);
		return -1;
	}
	if (count > 0 && snprintf_checked(dir, sizeof(dir), "%s/cur",
	    b.dir) == 0)
		(void)durable_fsync_dir(dir);
	if (mi_commit(idx) < 0)
		return -1;
	if (expunged_r != NULL && expunged_r->count > 1)
		qsort(expunged_r->uids, expunged_r->count, sizeof(uint32_t),
		    cmp_u32);
	if (count > 0)
		(void)quota_add(idx->userdir, -bytes, -count);
	return 0;
}

int
mbox_expunge(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset, struct mbox_uids *expunged_r)
{
	return expunge(idx, id, set, nset, 1, expunged_r);
}

int
mbox_expunge_uids(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset, struct mbox_uids *expunged_r)
{
	return expunge(idx, id, set, nset, 0, expunged_r);
}

