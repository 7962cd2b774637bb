/*
 * mbox_headers.c - the header cache: each message's top-level header in
 * index.db, so that SEARCH FROM/SUBJECT/HEADER and FETCH
 * BODY[HEADER.FIELDS (...)] (what every mail client lists a folder
 * with) read one index row instead of opening a file per message.
 *
 * Filled lazily: the first command that needs a message's header reads
 * it from the file and queues it; the queue is written in one
 * transaction.  A cached header is the file's own bytes and a message
 * file never changes (only its name does), so an entry never goes
 * stale; it goes with its messages row (ON DELETE CASCADE).
 *
 * Must never: hold a transaction across calls; cache anything longer
 * than MBOX_HEADER_CACHE_MAX; cache a header for a UID that has no
 * messages row.
 */
#include "mbox_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/buf.h"

size_t
mbox_header_len(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		/* at a line start: LF or CR LF alone ends the header */
		if (p[i] == '\n')
			return i + 1;
		if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
			return i + 2;
		{
			const char *nl = memchr(p + i, '\n', n - i);

			if (nl == NULL)
				return n;
			i = (size_t)(nl - p);	/* the loop steps past it */
		}
	}
	return n;
}

void
mbox_hdr_cursor_init(struct mbox_hdr_cursor *c, struct mbox_index *idx,
    int64_t id, const struct mbox_msglist *l)
{
	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->id = id;
	c->l = l;
	buf_init(&c->chunk, (size_t)MBOX_HDR_CHUNK * MBOX_HEADER_CACHE_MAX);
	buf_init(&c->queue, (size_t)MBOX_HDR_CHUNK * MBOX_HEADER_CACHE_MAX);
	buf_init(&c->file, BUF_UNLIMITED);
}

static int
nomem(struct mbox_hdr_cursor *c)
{
	errno = ENOMEM;
	return mi_fail(c->idx, "out of memory");
}

/* Record row (uid, blob) for list entry k of the chunk.  0 / -1. */
static int
chunk_put(struct mbox_hdr_cursor *c, size_t k, sqlite3_stmt *st, int col)
{
	const void *p = sqlite3_column_blob(st, col);
	int len = sqlite3_column_bytes(st, col);

	if (p == NULL || len <= 0 || len > MBOX_HEADER_CACHE_MAX)
		return 0;
	c->off[k] = c->chunk.len;
	if (buf_append(&c->chunk, p, (size_t)len) < 0)
		return nomem(c);
	c->len[k] = (size_t)len;
	return 0;
}

/*
 * Look up entries [i, i + n) in one read transaction: a walk over their
 * UID range when the entries fill most of it (SEARCH, FETCH of a
 * range), else one lookup each (a sparse set in a big mailbox).
 */
static int
load_chunk(struct mbox_hdr_cursor *c, size_t i)
{
	static const char one[] = "SELECT data FROM headers"
	    " WHERE mailbox = ?1 AND uid = ?2";
	static const char range[] = "SELECT uid, data FROM headers"
	    " WHERE mailbox = ?1 AND uid BETWEEN ?2 AND ?3 ORDER BY uid";
	size_t n = c->l->count - i, k;
	uint32_t lo, hi;
	sqlite3_stmt *st;
	int rc = SQLITE_DONE;

	if (n > MBOX_HDR_CHUNK)
		n = MBOX_HDR_CHUNK;
	if (c->off == NULL && ((c->off = calloc(MBOX_HDR_CHUNK,
	    sizeof(*c->off))) == NULL || (c->len = calloc(MBOX_HDR_CHUNK,
	    sizeof(*c->len))) == NULL))
		return nomem(c);
	buf_reset(&c->chunk);
	c->lo = c->hi = i;
	for (k = 0; k < n; k++)
		c->off[k] = c->len[k] = 0;
	lo = c->l->msgs[i].uid;
	hi = c->l->msgs[i + n - 1].uid;
	if (mi_begin(c->idx, 0) < 0)
		return -1;
	if ((uint64_t)hi - lo + 1 <= 2 * (uint64_t)n) {
		if ((st = mi_stmt(c->idx, range)) == NULL)
			goto fail;
		if (sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, lo) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 3, hi) != SQLITE_OK) {
			mi_sqlerr(c->idx, "header cache");
			goto fail;
		}
		k = 0;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			uint32_t uid = (uint32_t)sqlite3_column_int64(st, 0);

			/* both ascending: walk the list along */
			while (k < n && c->l->msgs[i + k].uid < uid)
				k++;
			if (k == n)
				break;
			if (c->l->msgs[i + k].uid == uid &&
			    chunk_put(c, k, st, 1) < 0) {
				sqlite3_reset(st);
				goto fail;
			}
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
			mi_sqlerr(c->idx, "header cache");
			goto fail;
		}
	} else {
		for (k = 0; k < n; k++) {
			if ((st = mi_stmt(c->idx, one)) == NULL)
				goto fail;
			if (sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK ||
			    sqlite3_bind_int64(st, 2, c->l->msgs[i + k].uid) !=
			    SQLITE_OK) {
				mi_sqlerr(c->idx, "header cache");
				goto fail;
			}
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW && chunk_put(c, k, st, 0) < 0) {
				sqlite3_reset(st);
				goto fail;
			}
			sqlite3_reset(st);
			if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
				mi_sqlerr(c->idx, "header cache");
				goto fail;
			}
		}
	}
	if (mi_commit(c->idx) < 0)
		return -1;
	c->hi = i + n;
	return 0;
fail:
	mi_rollback(c->idx);
	return -1;
}

/* Write the queue in one transaction; entries whose message went are
 * skipped.  The queue is emptied either way. */
static int
flush_queue(struct mbox_hdr_cursor *c)
{
	static const char sql[] = "INSERT OR IGNORE INTO headers(mailbox,"
	    " uid, data) SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM"
	    " messages WHERE mailbox = ?1 AND uid = ?2)";
	sqlite3_stmt *st;
	size_t k;
	int rc, r = 0;

	if (c->nq == 0)
		return 0;
	if (mi_begin(c->idx, 1) < 0) {
		r = -1;
		goto out;
	}
	for (k = 0; k < c->nq && r == 0; k++) {
		if ((st = mi_stmt(c->idx, sql)) == NULL ||
		    sqlite3_bind_int64(st, 1, c->id) != SQLITE_OK ||
		    sqlite3_bind_int64(st, 2, c->quid[k]) != SQLITE_OK ||
		    sqlite3_bind_blob(st, 3, c->queue.data + c->qoff[k],
		    (int)c->qlen[k], SQLITE_STATIC) != SQLITE_OK) {
			r = st == NULL ? -1 : mi_sqlerr(c->idx, "header cache");
			break;
		}
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			r = mi_sqlerr(c->idx, "header cache");
	}
	if (r == 0)
		r = mi_commit(c->idx);
	else
		mi_rollback(c->idx);
out:
	c->nq = 0;
	buf_reset(&c->queue);
	return r;
}

static int
enqueue(struct mbox_hdr_cursor *c, uint32_t uid, const char *p, size_t n)
{
	if (n == 0 || n > MBOX_HEADER_CACHE_MAX)
		return 0;
	if (c->quid == NULL && ((c->quid = calloc(MBOX_HDR_CHUNK,
	    sizeof(*c->quid))) == NULL || (c->qoff = calloc(MBOX_HDR_CHUNK,
	    sizeof(*c->qoff))) == NULL || (c->qlen = calloc(MBOX_HDR_CHUNK,
	    sizeof(*c->qlen))) == NULL))
		return nomem(c);
	c->quid[c->nq] = uid;
	c->qoff[c->nq] = c->queue.len;
	c->qlen[c->nq] = n;
	if (buf_append(&c->queue, p, n) < 0)
		return nomem(c);
	if (++c->nq == MBOX_HDR_CHUNK)
		return flush_queue(c);
	return 0;
}

int
mbox_hdr_cursor_get(struct mbox_hdr_cursor *c, size_t i, struct buf *out)
{
	size_t hlen;
	int r;

	buf_reset(out);
	if (i >= c->l->count) {
		errno = EINVAL;
		return mi_fail(c->idx, "header cursor: no entry %zu", i);
	}
	if ((i < c->lo || i >= c->hi) && load_chunk(c, i) < 0)
		return -1;
	if (c->len[i - c->lo] > 0) {
		if (buf_append(out, c->chunk.data + c->off[i - c->lo],
		    c->len[i - c->lo]) < 0)
			return nomem(c);
		return 1;
	}
	if ((r = mbox_msglist_read(c->idx, c->id, c->l, i, 1, &c->file)) <= 0)
		return r;
	hlen = mbox_header_len(c->file.data, c->file.len);
	if (buf_append(out, c->file.data, hlen) < 0)
		return nomem(c);
	/* a failed cache write costs speed only: the answer stands */
	(void)enqueue(c, c->l->msgs[i].uid, c->file.data, hlen);
	return 1;
}

int
mbox_hdr_cursor_done(struct mbox_hdr_cursor *c)
{
	int r = flush_queue(c);

	free(c->off);
	free(c->len);
	free(c->quid);
	free(c->qoff);
	free(c->qlen);
	buf_free(&c->chunk);
	buf_free(&c->queue);
	buf_free(&c->file);
	memset(c, 0, sizeof(*c));
	return r;
}
