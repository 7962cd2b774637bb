/*
 * cmd_search.c - SEARCH and UID SEARCH (RFC 3501 6.4.4), with ESEARCH
 * result options (RFC 4731 RETURN (MIN MAX ALL COUNT)), SEARCHRES
 * (RFC 5182: RETURN (SAVE) and the "$" it defines, also for the other
 * commands' sets through imap_saved_to_uids()) and CONDSTORE's MODSEQ
 * key and (MODSEQ n) result (RFC 7162 3.1.5).  After ENABLE IMAP4rev2
 * every SEARCH answers ESEARCH (RFC 9051 6.4.4).  The program comes
 * from imap_search.c; this file walks the session's view in sequence
 * order, decides each message on index metadata and reads the file only
 * when a key needs its text.
 *
 * The saved result is a list of UIDs in the selected mailbox's state,
 * so expunges shrink it by themselves and "$" means the same messages
 * to FETCH and to UID FETCH.
 *
 * Must never: send EXPUNGE during SEARCH (RFC 3501 7.4.1), so the
 * numbers it answers stay this session's numbers; nor read a message
 * the program can decide without it.
 */
#include "imap_commands.h"
#include "imap_search.h"
#include "imap_seqset.h"
#include "../common/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct search_hits {
	uint32_t *vals;			/* seq numbers or UIDs, ascending */
	uint64_t *modseqs;
	size_t n, cap;
};

static int
hits_push(struct search_hits *h, uint32_t v, uint64_t modseq)
{
	if (h->n == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		uint32_t *nv = realloc(h->vals, ncap * sizeof(*nv));
		uint64_t *nm;

		if (nv == NULL)
			return -1;
		h->vals = nv;
		nm = realloc(h->modseqs, ncap * sizeof(*nm));
		if (nm == NULL)
			return -1;
		h->modseqs = nm;
		h->cap = ncap;
	}
	h->vals[h->n] = v;
	h->modseqs[h->n] = modseq;
	h->n++;
	return 0;
}

/* 1 if uid is in the saved result (sorted ascending). */
static int
is_saved(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = 0, hi = sel->nsaved;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sel->saved[mid] == uid)
			return 1;
		if (sel->saved[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Evaluate over the view in sequence order.  0, or -1 (index error). */
/* Below this many messages to read, one thread is faster. */
#define SEARCH_PAR_MIN 64

/* Threads for a content search: the online CPUs, within bounds. */
static unsigned
search_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > IMAP_SEARCH_THREADS_MAX ?
	    IMAP_SEARCH_THREADS_MAX : (unsigned)n;
}

/*
 * The messages the metadata cannot decide, on the loop thread: headers
 * from the header cache when no key needs more, else the file.
 */
static int
content_serial(struct imap_session *s, const struct search_program *prog,
    const struct mbox_msglist *list, const size_t *cand,
    const struct search_msg *sm, size_t n, signed char *res)
{
	struct mbox_hdr_cursor hc;
	struct buf msg;
	size_t k;
	int r, rc = 0;

	mbox_hdr_cursor_init(&hc, s->idx, s->sel->id, list);
	buf_init(&msg, IMAP_LITERAL_MAX);
	for (k = 0; k < n && rc == 0; k++) {
		if (res[k] == 0 || res[k] == 1)
			continue;	/* decided on a thread */
		r = prog->needs_body ? mbox_msglist_read(s->idx, s->sel->id,
		    list, cand[k], 0, &msg) :
		    mbox_hdr_cursor_get(&hc, cand[k], &msg);
		if (r < 0) {
			rc = -1;
			break;
		}
		res[k] = 0;
		if (r == 0)
			continue;	/* gone meanwhile: nothing to match */
		r = search_eval_content(prog, &sm[k], buf_cstr(&msg), msg.len);
		if (r < 0)
			rc = -1;
		else
			res[k] = (signed char)r;
	}
	buf_free(&msg);
	if (mbox_hdr_cursor_done(&hc) < 0)
		log_warn("sid=%s ip=%s SEARCH: header cache: %s", s->c->sid,
		    s->c->ip, mbox_index_error(s->idx));
	return rc;
}

/*
 * Evaluate over the view in sequence order: metadata first, then the
 * text of the messages it left open (on several threads when that is
 * the bodies of many).  0, or -1 (index error).
 */
static int
run_search(struct imap_session *s, const struct search_program *prog,
    int is_uid, struct search_hits *hits)
{
	const struct imap_selected *sel = s->sel;
	struct mbox_msglist list;
	struct search_msg *sm = NULL;
	size_t *cand = NULL, *vpos = NULL;
	signed char *res = NULL, *meta = NULL;
	size_t i, j = 0, k, n = 0;
	int r, rc = 0;

	memset(&list, 0, sizeof(list));
	if (sel->count == 0)
		return 0;
	if (mbox_messages(s->idx, sel->id, NULL, 0, 0, &list) < 0)
		return -1;
	/* per view position: 1 / 0 decided, -1 needs the text, -3 gone */
	meta = malloc(sel->count);
	if (meta == NULL)
		goto nomem;
	if (prog->needs_content && ((sm = calloc(sel->count, sizeof(*sm))) ==
	    NULL || (cand = calloc(sel->count, sizeof(*cand))) == NULL ||
	    (vpos = calloc(sel->count, sizeof(*vpos))) == NULL ||
	    (res = malloc(sel->count)) == NULL))
		goto nomem;
	for (i = 0; i < sel->count; i++) {
		uint32_t uid = sel->uids[i];
		const struct mbox_msg *m;
		struct search_msg one;

		/* both ascending by UID: walk them together */
		while (j < list.count && list.msgs[j].uid < uid)
			j++;
		if (j == list.count || list.msgs[j].uid != uid) {
			meta[i] = -3;	/* expunged elsewhere: no match */
			continue;
		}
		m = &list.msgs[j];
		memset(&one, 0, sizeof(one));
		one.seq = (uint32_t)(i + 1);
		one.uid = uid;
		one.flags = m->flags;
		one.keywords = m->keywords;
		one.recent = uid >= sel->recent_lo && uid < sel->recent_hi;
		one.saved = prog->uses_saved && is_saved(sel, uid);
		one.size = m->size;
		one.modseq = m->modseq;
		one.internaldate = m->internaldate;
		r = search_eval_meta(prog, &one);
		meta[i] = (signed char)(r < 0 ? -1 : r);
		if (r < 0) {
			if (sm == NULL)	/* a content key the parser missed */
				goto nomem;
			sm[n] = one;
			cand[n] = j;
			vpos[n] = i;
			res[n] = -2;	/* not done yet */
			n++;
		}
	}
	if (n > 0) {
		if (prog->needs_body && n >= SEARCH_PAR_MIN &&
		    search_threads() > 1)
			imap_search_content_par(prog, &list, cand, sm, n, res,
			    search_threads());
		for (k = 0; k < n; k++)
			if (res[k] == -1)
				rc = -1;
		/* what the threads left (files renamed since the listing) */
		if (rc == 0)
			rc = content_serial(s, prog, &list, cand, sm, n, res);
		for (k = 0; k < n; k++)
			meta[vpos[k]] = res[k] == 1 ? 1 : 0;
	}
	for (i = 0, j = 0; i < sel->count && rc == 0; i++) {
		if (meta[i] != 1)
			continue;
		while (list.msgs[j].uid < sel->uids[i])
			j++;
		if (hits_push(hits, is_uid ? sel->uids[i] : (uint32_t)(i + 1),
		    list.msgs[j].modseq) < 0)
			rc = -1;
	}
	goto out;
nomem:
	rc = -1;
out:
	free(meta);
	free(sm);
	free(cand);
	free(vpos);
	free(res);
	mbox_msglist_free(&list);
	return rc;
}

static uint64_t
max_modseq(const struct search_hits *h, size_t from, size_t to)
{
	uint64_t v = 0;
	size_t i;

	for (i = from; i < to; i++)
		if (h->modseqs[i] > v)
			v = h->modseqs[i];
	return v;
}

static int
format_esearch(struct imap_session *s, const struct search_program *prog,
    int is_uid, const struct search_hits *h, struct buf *out)
{
	struct imap_seqset all;
	uint64_t ms;
	size_t i;
	int r = 0;

	r |= buf_puts(out, "* ESEARCH (TAG ");
	r |= imap_put_string(out, s->tag, strlen(s->tag), 0);
	r |= buf_putc(out, ')');
	if (is_uid)
		r |= buf_puts(out, " UID");
	if (h->n > 0 && (prog->ret & SEARCH_RET_MIN))
		r |= buf_printf(out, " MIN %u", h->vals[0]);
	if (h->n > 0 && (prog->ret & SEARCH_RET_MAX))
		r |= buf_printf(out, " MAX %u", h->vals[h->n - 1]);
	if (prog->ret & SEARCH_RET_COUNT)
		r |= buf_printf(out, " COUNT %zu", h->n);
	if (h->n > 0 && (prog->ret & SEARCH_RET_ALL)) {
		imap_seqset_init(&all, h->n + 1);
		for (i = 0; i < h->n && r == 0; i++)
			r |= imap_seqset_add(&all, h->vals[i], h->vals[i]);
		r |= buf_puts(out, " ALL ");
		r |= imap_seqset_format(&all, out);
		imap_seqset_free(&all);
	}
	if (h->n > 0 && prog->has_modseq) {
		/* RFC 4731 3.2: of the messages returned */
		if (prog->ret & (SEARCH_RET_ALL | SEARCH_RET_COUNT))
			ms = max_modseq(h, 0, h->n);
		else {
			ms = 0;
			if (prog->ret & SEARCH_RET_MIN)
				ms = h->modseqs[0];
			if ((prog->ret & SEARCH_RET_MAX) &&
			    h->modseqs[h->n - 1] > ms)
				ms = h->modseqs[h->n - 1];
		}
		r |= buf_printf(out, " MODSEQ %llu", (unsigned long long)ms);
	}
	r |= buf_puts(out, "\r\n");
	return r ? -1 : 0;
}

static int
format_search(const struct search_program *prog,
    const struct search_hits *h, struct buf *out)
{
	size_t i;
	int r = buf_puts(out, "* SEARCH");

	for (i = 0; i < h->n && r == 0; i++)
		r |= buf_printf(out, " %u", h->vals[i]);
	if (h->n > 0 && prog->has_modseq)
		r |= buf_printf(out, " (MODSEQ %llu)",
		    (unsigned long long)max_modseq(h, 0, h->n));
	r |= buf_puts(out, "\r\n");
	return r ? -1 : 0;
}

/* Replace the saved result with uids[0..n) (ascending; taken over). */
static void
saved_replace(struct imap_selected *sel, uint32_t *uids, size_t n)
{
	free(sel->saved);
	sel->saved = uids;
	sel->nsaved = n;
}

/*
 * RETURN (SAVE ...): the hits as UIDs; only the lowest and/or highest
 * when MIN and/or MAX are the only other options (RFC 5182).
 * -1 when memory runs out.
 */
static int
save_hits(struct imap_selected *sel, unsigned ret, int is_uid,
    const struct search_hits *h)
{
	uint32_t *uids = NULL;
	size_t i, n = 0;
	int all = (ret & (SEARCH_RET_ALL | SEARCH_RET_COUNT)) ||
	    !(ret & (SEARCH_RET_MIN | SEARCH_RET_MAX));

	if (h->n > 0 && (uids = calloc(h->n, sizeof(*uids))) == NULL)
		return -1;
	for (i = 0; i < h->n; i++) {
		if (!all && !((i == 0 && (ret & SEARCH_RET_MIN)) ||
		    (i == h->n - 1 && (ret & SEARCH_RET_MAX))))
			continue;
		uids[n++] = is_uid ? h->vals[i] : sel->uids[h->vals[i] - 1];
	}
	saved_replace(sel, uids, n);
	return 0;
}

/*
 * "$" as a set for FETCH, STORE, COPY, MOVE, UID EXPUNGE (called from
 * imap_set_to_uids()): the saved UIDs still in this session's view, as
 * ranges.  An empty result is an empty set, not an error (RFC 5182).
 * 0, or -1 after a tagged NO.
 */
int
imap_saved_to_uids(struct imap_session *s, struct mbox_range **ranges_r,
    size_t *n_r)
{
	const struct imap_selected *sel = s->sel;
	struct mbox_range *r;
	size_t i, n = 0;

	*ranges_r = NULL;
	*n_r = 0;
	if (sel->nsaved == 0)
		return 0;
	if ((r = calloc(sel->nsaved, sizeof(*r))) == NULL) {
		imap_tagged(s, "NO", "[SERVERBUG] Out of memory");
		return -1;
	}
	for (i = 0; i < sel->nsaved; i++) {
		uint32_t uid = sel->saved[i];

		if (imap_seq_of_uid(sel, uid) == 0)
			continue;	/* expunged since */
		if (n > 0 && r[n - 1].hi + 1 == uid)
			r[n - 1].hi = uid;
		else {
			r[n].lo = r[n].hi = uid;
			n++;
		}
	}
	*ranges_r = r;
	*n_r = n;
	return 0;
}

void
imap_search(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid)
{
	struct search_program prog;
	struct search_hits hits;
	struct buf out;
	const char *why;
	int r;

	r = search_parse(&prog, args, count, &why);
	if (r < 0) {
		/* RFC 5182: a SAVE that fails with NO empties "$" */
		if (r != SEARCH_ERR_SYNTAX && (prog.ret & SEARCH_RET_SAVE))
			saved_replace(s->sel, NULL, 0);
		search_program_free(&prog);
		if (r == SEARCH_ERR_CHARSET)
			imap_tagged(s, "NO", "%s", why);
		else if (r == SEARCH_ERR_NOMEM)
			imap_tagged(s, "NO", "[SERVERBUG] Out of memory");
		else
			imap_tagged(s, "BAD", "%s", why);
		return;
	}
	if (prog.has_modseq)
		s->enabled_condstore = 1;	/* RFC 7162 3.1 */
	if (s->enabled_rev2 && !prog.esearch) {
		prog.esearch = 1;
		prog.ret = SEARCH_RET_ALL;
	}
	search_program_resolve(&prog, (uint32_t)s->sel->count,
	    s->sel->count ? s->sel->uids[s->sel->count - 1] : 0);
	memset(&hits, 0, sizeof(hits));
	if (run_search(s, &prog, is_uid, &hits) < 0) {
		log_error("sid=%s ip=%s SEARCH: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		free(hits.vals);
		free(hits.modseqs);
		if (prog.ret & SEARCH_RET_SAVE)
			saved_replace(s->sel, NULL, 0);
		search_program_free(&prog);
		imap_tagged(s, "NO", "[SERVERBUG] SEARCH failed");
		return;
	}
	buf_init(&out, BUF_UNLIMITED);
	r = 0;
	if ((prog.ret & SEARCH_RET_SAVE) &&
	    save_hits(s->sel, prog.ret, is_uid, &hits) < 0) {
		saved_replace(s->sel, NULL, 0);
		r = -1;
	}
	/* RETURN (SAVE) alone answers with the tagged OK only (RFC 5182) */
	if (r == 0 && prog.ret != SEARCH_RET_SAVE)
		r = prog.esearch ? format_esearch(s, &prog, is_uid, &hits,
		    &out) : format_search(&prog, &hits, &out);
	if (r == 0 && out.len > 0 && conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	free(hits.vals);
	free(hits.modseqs);
	search_program_free(&prog);
	if (r < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Out of memory");
		return;
	}
	/* New mail after the results; never EXPUNGE (RFC 3501 7.4.1). */
	if (is_uid)
		imap_update(s, 0);
	imap_tagged(s, "OK", "SEARCH completed");
}

void
cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	imap_search(s, cmd->args, cmd->count, 0);
}
