/*
 * cmd_fetch.c - FETCH / UID FETCH: FLAGS, UID, INTERNALDATE,
 * RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, BODY[section]<partial>,
 * BODY.PEEK, BINARY[part]<partial>, BINARY.PEEK, BINARY.SIZE (RFC 3516,
 * RFC 9051 6.4.5), RFC822, RFC822.HEADER, RFC822.TEXT, MODSEQ, the ALL /
 * FAST / FULL macros and CHANGEDSINCE (RFC 7162).  ENVELOPE and
 * BODYSTRUCTURE are cached in the index; section data is cut (and
 * BINARY data decoded) from the message file by store/mime_section.  A
 * non-PEEK body fetch sets \Seen (in a read-write mailbox) before the
 * response, which then carries the new FLAGS.  No EXPUNGE is ever sent
 * during FETCH.
 *
 * BINARY of a part we cannot decode fails the whole FETCH (NO
 * [UNKNOWN-CTE]), as does BINARY of a container part; such a FETCH must
 * not have set \Seen, so a BINARY FETCH that would set it is checked
 * first.
 */
#include "imap_commands.h"
#include "../common/log.h"
#include "../store/imap_bodystructure.h"
#include "../store/imap_envelope.h"
#include "../store/mime.h"
#include "../store/mime_section.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int imap_set_to_uids(struct imap_session *s, const struct imap_arg *a,
    int is_uid, struct mbox_range **ranges_r, size_t *n_r);

#define FETCH_MAX_ITEMS 64

enum fetch_kind {
	F_UID, F_FLAGS, F_INTERNALDATE, F_SIZE, F_ENVELOPE, F_BODYSTRUCTURE,
	F_BODY, F_SECTION, F_BINARY, F_BINARY_SIZE, F_MODSEQ,
};

/* fetch_one() results besides 0 (done) and 1 (message gone: skipped) */
#define FETCH_ERR		(-1)	/* out of memory, response too big */
#define FETCH_ERR_NOT_LEAF	(-2)	/* MIME_BINARY_NOT_LEAF */
#define FETCH_ERR_CTE		(-3)	/* MIME_BINARY_UNKNOWN_CTE */

struct fetch_item {
	enum fetch_kind kind;
	int peek;
	struct mime_section sec;
	char label[256];		/* "BODY[HEADER]" as echoed */
	int partial;
	uint64_t origin, count;
};

struct fetch_req {
	struct fetch_item items[FETCH_MAX_ITEMS];
	size_t n;
	int need_file;
	int need_body;			/* more of the file than its header */
	int sets_seen;
	int has_binary;			/* some BINARY or BINARY.SIZE item */
	uint64_t changedsince;
};

/* The items written NAME[section]<partial>, and what each answers as. */
static const struct {
	const char *name;
	enum fetch_kind kind;
	int peek;
	const char *label;
} section_items[] = {
	{ "BODY", F_SECTION, 0, "BODY" },
	{ "BODY.PEEK", F_SECTION, 1, "BODY" },
	{ "BINARY", F_BINARY, 0, "BINARY" },
	{ "BINARY.PEEK", F_BINARY, 1, "BINARY" },
	{ "BINARY.SIZE", F_BINARY_SIZE, 1, "BINARY.SIZE" },
};

static int
add_item(struct fetch_req *r, enum fetch_kind k)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->items[i].kind == k && k != F_SECTION &&
		    k != F_BINARY && k != F_BINARY_SIZE)
			return 0;
	if (r->n >= FETCH_MAX_ITEMS)
		return -1;
	memset(&r->items[r->n], 0, sizeof(r->items[0]));
	r->items[r->n].kind = k;
	mime_section_init(&r->items[r->n].sec);
	if (k == F_ENVELOPE || k == F_BODYSTRUCTURE || k == F_BODY)
		r->need_file = r->need_body = 1;
	return (int)r->n++ >= 0 ? 0 : -1;
}

/*
 * BODY[...] / BODY.PEEK[...] / RFC822(.HEADER/.TEXT), and BINARY[...] /
 * BINARY.PEEK[...] / BINARY.SIZE[...] (kind F_BINARY, F_BINARY_SIZE),
 * whose section is part numbers only (RFC 3516 section-binary) and
 * whose SIZE takes no partial.
 */
static int
add_section(struct fetch_req *r, enum fetch_kind kind, const char *text,
    size_t len, int peek, const char *label, const char *suffix,
    size_t suffixlen)
{
	struct fetch_item *it;
	const char *why;

	if (add_item(r, kind) < 0)
		return -1;
	it = &r->items[r->n - 1];
	it->peek = peek;
	if (mime_section_parse(&it->sec, text, len, &why) < 0)
		return -1;
	if (kind != F_SECTION) {
		if (it->sec.text != MIME_SECTION_BODY ||
		    (kind == F_BINARY_SIZE && suffixlen > 0))
			return -1;
		r->has_binary = 1;
	}
	if (suffixlen > 0) {
		if (imap_parse_partial(suffix, suffixlen, &it->origin,
		    &it->count) < 0)
			return -1;
		it->partial = 1;
	}
	if (snprintf_checked(it->label, sizeof(it->label), "%s", label) < 0)
		return -1;
	if (it->partial) {
		char o[32];

		snprintf(o, sizeof(o), "<%llu>", (unsigned long long)it->origin);
		if (strlen(it->label) + strlen(o) >= sizeof(it->label))
			return -1;
		memcpy(it->label + strlen(it->label), o, strlen(o) + 1);
	}
	r->need_file = 1;
	/* BODY[HEADER.FIELDS (...)], what mail clients list with, and the
	 * other top-level header sections need the header only */
	if (kind != F_SECTION || it->sec.nparts > 0 ||
	    (it->sec.text != MIME_SECTION_HEADER &&
	    it->sec.text != MIME_SECTION_HEADER_FIELDS &&
	    it->sec.text != MIME_SECTION_HEADER_FIELDS_NOT))
		r->need_body = 1;
	if (!peek)
		r->sets_seen = 1;
	return 0;
}

/* NAME[section]<partial>: one of section_items[]. */
static int
parse_section_item(struct fetch_req *r, const struct imap_arg *a)
{
	const char *in = a->str + a->name_len + 1;
	size_t inlen = a->len - a->name_len - 2 - a->suffix_len, i;
	char label[256];

	for (i = 0; i < sizeof(section_items) / sizeof(section_items[0]); i++)
		if (strlen(section_items[i].name) == a->name_len &&
		    strncasecmp(section_items[i].name, a->str, a->name_len) == 0)
			break;
	if (i == sizeof(section_items) / sizeof(section_items[0]))
		return -1;
	if (snprintf_checked(label, sizeof(label), "%s[%.*s]",
	    section_items[i].label, (int)inlen, in) < 0)
		return -1;
	return add_section(r, section_items[i].kind, in, inlen,
	    section_items[i].peek, label, a->str + a->len - a->suffix_len,
	    a->suffix_len);
}

static int
parse_item(struct fetch_req *r, const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	if (a->flags & IMAP_ARG_F_SECTION)
		return parse_section_item(r, a);
	if (imap_arg_is_atom(a, "UID"))
		return add_item(r, F_UID);
	if (imap_arg_is_atom(a, "FLAGS"))
		return add_item(r, F_FLAGS);
	if (imap_arg_is_atom(a, "INTERNALDATE"))
		return add_item(r, F_INTERNALDATE);
	if (imap_arg_is_atom(a, "RFC822.SIZE"))
		return add_item(r, F_SIZE);
	if (imap_arg_is_atom(a, "ENVELOPE"))
		return add_item(r, F_ENVELOPE);
	if (imap_arg_is_atom(a, "BODYSTRUCTURE"))
		return add_item(r, F_BODYSTRUCTURE);
	if (imap_arg_is_atom(a, "BODY"))
		return add_item(r, F_BODY);
	if (imap_arg_is_atom(a, "MODSEQ"))
		return add_item(r, F_MODSEQ);
	if (imap_arg_is_atom(a, "RFC822"))
		return add_section(r, F_SECTION, "", 0, 0, "RFC822", NULL, 0);
	if (imap_arg_is_atom(a, "RFC822.HEADER"))
		return add_section(r, F_SECTION, "HEADER", 6, 1,
		    "RFC822.HEADER", NULL, 0);
	if (imap_arg_is_atom(a, "RFC822.TEXT"))
		return add_section(r, F_SECTION, "TEXT", 4, 0, "RFC822.TEXT",
		    NULL, 0);
	return -1;
}

static int
parse_fetch(struct fetch_req *r, const struct imap_arg *args, size_t count)
{
	const struct imap_arg *a = &args[1];
	size_t i;

	memset(r, 0, sizeof(*r));
	if (count < 2 || count > 3)
		return -1;
	if (imap_arg_is_atom(a, "ALL") || imap_arg_is_atom(a, "FAST") ||
	    imap_arg_is_atom(a, "FULL")) {
		add_item(r, F_FLAGS);
		add_item(r, F_INTERNALDATE);
		add_item(r, F_SIZE);
		if (!imap_arg_is_atom(a, "FAST"))
			add_item(r, F_ENVELOPE);
		if (imap_arg_is_atom(a, "FULL"))
			add_item(r, F_BODY);
	} else if (a->type == IMAP_ARG_LIST) {
		if (a->count == 0)
			return -1;
		for (i = 0; i < a->count; i++)
			if (parse_item(r, &a->args[i]) < 0)
				return -1;
	} else if (parse_item(r, a) < 0) {
		return -1;
	}
	if (count == 3) {		/* (CHANGEDSINCE n) */
		const struct imap_arg *m = &args[2];

		if (m->type != IMAP_ARG_LIST || m->count != 2 ||
		    !imap_arg_is_atom(&m->args[0], "CHANGEDSINCE") ||
		    !imap_arg_number(&m->args[1], &r->changedsince))
			return -1;
	}
	return 0;
}

static void
fetch_req_free(struct fetch_req *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		mime_section_free(&r->items[i].sec);
}

static int
has_kind(const struct fetch_req *r, enum fetch_kind k)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->items[i].kind == k)
			return 1;
	return 0;
}

static void
append_internaldate(struct buf *out, int64_t t)
{
	static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	time_t tt = (time_t)t;
	struct tm tm;
	long off;

	localtime_r(&tt, &tm);
	off = tm.tm_gmtoff / 60;
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"",
	    tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 60,
	    labs(off) % 60);
}

/* ENVELOPE or BODYSTRUCTURE, from the cache or computed and cached. */
static int
structure_item(struct imap_session *s, const struct mbox_msg *m,
    enum fetch_kind k, const struct buf *msg, struct mime_message **mm,
    struct buf *out)
{
	enum mbox_cache_field f = k == F_ENVELOPE ? MBOX_CACHE_ENVELOPE :
	    MBOX_CACHE_BODYSTRUCTURE;
	size_t start = out->len;
	char *cached = NULL;

	if (k != F_BODY && mbox_cache_get(s->idx, s->sel->id, m->uid, f,
	    &cached) == 1) {
		int r = buf_puts(out, cached);

		free(cached);
		return r;
	}
	if (*mm == NULL && (*mm = mime_parse(msg->data ? msg->data : "",
	    msg->len)) == NULL)
		return -1;
	if (k == F_ENVELOPE) {
		if (imap_envelope_write(msg->data ? msg->data : "",
		    (*mm)->root->hdr.len, out) < 0)
			return -1;
	} else if (imap_bodystructure_write(msg->data ? msg->data : "",
	    msg->len, (*mm)->root, k == F_BODYSTRUCTURE ? IMAP_BS_EXTENDED : 0,
	    out) < 0) {
		return -1;
	}
	if (k != F_BODY)
		(void)mbox_cache_set(s->idx, s->sel->id, m->uid, f,
		    out->data + start, out->len - start);
	return 0;
}

/* BODY[section]<partial>: " BODY[...] {n}" and the data. */
static int
section_item(const struct fetch_item *it, const char *sep,
    const struct buf *msg, const struct mime_message *mm, struct buf *out)
{
	struct buf data;
	int rc;

	buf_init(&data, out->max);
	rc = mime_section_fetch(msg->data ? msg->data : "", mm, &it->sec,
	    it->partial ? (size_t)it->origin : 0,
	    it->partial ? (size_t)it->count : SIZE_MAX, &data);
	if (rc == 0)
		rc = buf_printf(out, "%s%s {%zu}\r\n", sep, it->label,
		    data.len) | buf_append(out, data.data, data.len);
	buf_free(&data);
	return rc < 0 ? FETCH_ERR : 0;
}

/*
 * BINARY[part]<partial> or BINARY.SIZE[part].  The data goes as a
 * literal8 ~{n} only when it holds a NUL (RFC 3516 4.3: a client can
 * then tell NUL-free data without scanning it), else as {n}.
 */
static int
binary_item(const struct fetch_item *it, const char *sep,
    const struct buf *msg, const struct mime_message *mm, struct buf *out)
{
	const char *text = msg->data ? msg->data : "";
	struct buf data;
	size_t size;
	int rc;

	if (it->kind == F_BINARY_SIZE) {
		rc = mime_binary_fetch(text, mm, it->sec.part, it->sec.nparts,
		    0, 0, NULL, &size);
		if (rc == 0)
			rc = buf_printf(out, "%s%s %zu", sep, it->label, size);
	} else {
		buf_init(&data, out->max);
		rc = mime_binary_fetch(text, mm, it->sec.part, it->sec.nparts,
		    it->partial ? (size_t)it->origin : 0,
		    it->partial ? (size_t)it->count : SIZE_MAX, &data, NULL);
		if (rc == 0)
			rc = buf_printf(out, "%s%s %s{%zu}\r\n", sep, it->label,
			    data.len > 0 && memchr(data.data, '\0',
			    data.len) != NULL ? "~" : "", data.len) |
			    buf_append(out, data.data, data.len);
		buf_free(&data);
	}
	if (rc == MIME_BINARY_NOT_LEAF)
		return FETCH_ERR_NOT_LEAF;
	if (rc == MIME_BINARY_UNKNOWN_CTE)
		return FETCH_ERR_CTE;
	return rc < 0 ? FETCH_ERR : 0;
}

/*
 * One message's "* n FETCH (...)" into out: 0, 1 when the message is
 * gone (nothing written), or FETCH_ERR* with a partial response left in
 * out for the caller to cut off.
 */
static int
fetch_one(struct imap_session *s, const struct fetch_req *r, int is_uid,
    size_t seq, const struct mbox_msglist *l, size_t li,
    struct mbox_hdr_cursor *hc, struct buf *msg, struct buf *out)
{
	const struct mbox_msg *m = &l->msgs[li];
	struct mime_message *mm = NULL;
	const char *sep = "";
	size_t i;
	int rc = 0;

	if (r->need_file && (r->need_body ? mbox_msglist_read(s->idx,
	    s->sel->id, l, li, 0, msg) : mbox_hdr_cursor_get(hc, li, msg)) <= 0)
		return 1;		/* gone meanwhile: skip it */
	buf_printf(out, "* %zu FETCH (", seq);
	if (is_uid || has_kind(r, F_UID)) {
		buf_printf(out, "UID %u", m->uid);
		sep = " ";
	}
	for (i = 0; i < r->n && rc == 0; i++) {
		const struct fetch_item *it = &r->items[i];

		switch (it->kind) {
		case F_UID:
			break;
		case F_FLAGS:
			buf_printf(out, "%sFLAGS ", sep);
			rc = imap_append_flags(out, s->sel, m->uid, m->flags,
			    m->keywords);
			break;
		case F_INTERNALDATE:
			buf_printf(out, "%sINTERNALDATE ", sep);
			append_internaldate(out, m->internaldate);
			break;
		case F_SIZE:
			buf_printf(out, "%sRFC822.SIZE %llu", sep,
			    (unsigned long long)m->size);
			break;
		case F_MODSEQ:
			buf_printf(out, "%sMODSEQ (%llu)", sep,
			    (unsigned long long)m->modseq);
			break;
		case F_ENVELOPE:
		case F_BODYSTRUCTURE:
		case F_BODY:
			buf_printf(out, "%s%s ", sep, it->kind == F_ENVELOPE ?
			    "ENVELOPE" : it->kind == F_BODY ? "BODY" :
			    "BODYSTRUCTURE");
			rc = structure_item(s, m, it->kind, msg, &mm, out);
			break;
		case F_SECTION:
		case F_BINARY:
		case F_BINARY_SIZE:
			if (mm == NULL && (mm = mime_parse(msg->data ? msg->data :
			    "", msg->len)) == NULL) {
				rc = FETCH_ERR;
				break;
			}
			rc = it->kind == F_SECTION ?
			    section_item(it, sep, msg, mm, out) :
			    binary_item(it, sep, msg, mm, out);
			break;
		}
		sep = " ";
	}
	/* CONDSTORE: MODSEQ in every FETCH once it is in use (RFC 7162 3.1.4) */
	if (rc == 0 && s->enabled_condstore && !has_kind(r, F_MODSEQ))
		buf_printf(out, " MODSEQ (%llu)", (unsigned long long)m->modseq);
	buf_puts(out, ")\r\n");
	if (mm != NULL)
		mime_free(mm);
	return rc;
}

/*
 * BINARY fails the whole FETCH when a part is a container or cannot be
 * decoded.  A FETCH that sets \Seen checks its BINARY items on every
 * message first, so that a failing one changes no flags.  0 or FETCH_ERR*.
 */
static int
binary_precheck(struct imap_session *s, const struct fetch_req *r,
    const struct mbox_range *set, size_t nset, struct buf *msg)
{
	struct mbox_msglist list;
	struct mime_message *mm;
	size_t i, k;
	int rc = 0;

	memset(&list, 0, sizeof(list));
	if (mbox_messages(s->idx, s->sel->id, set, nset, 0, &list) < 0)
		return FETCH_ERR;
	for (i = 0; i < list.count && rc == 0; i++) {
		if (imap_seq_of_uid(s->sel, list.msgs[i].uid) == 0 ||
		    mbox_msglist_read(s->idx, s->sel->id, &list, i, 0,
		    msg) <= 0)
			continue;
		mm = mime_parse(msg->data ? msg->data : "", msg->len);
		if (mm == NULL) {
			rc = FETCH_ERR;
			break;
		}
		for (k = 0; k < r->n && rc == 0; k++)
			if (r->items[k].kind == F_BINARY ||
			    r->items[k].kind == F_BINARY_SIZE)
				rc = mime_binary_check(mm, r->items[k].sec.part,
				    r->items[k].sec.nparts);
		mime_free(mm);
	}
	mbox_msglist_free(&list);
	if (rc == MIME_BINARY_NOT_LEAF)
		return FETCH_ERR_NOT_LEAF;
	if (rc == MIME_BINARY_UNKNOWN_CTE)
		return FETCH_ERR_CTE;
	return rc;
}

/*
 * A FETCH in progress.  Its responses are produced a slice at a time:
 * once a megabyte waits for the client, the command stops and goes on
 * when the output has drained, so "FETCH 1:* BODY[]" on a mailbox of
 * any size needs neither the whole answer in memory nor a fast reader.
 * Meanwhile the session reads no new commands (IMAP_MODE_WAIT).
 */
struct fetch_job {
	struct fetch_req req;
	struct mbox_msglist list;
	size_t next;			/* index into list */
	int is_uid;
	int rc;				/* 0 or FETCH_ERR* */
	struct buf msg;			/* the message file being read */
};

#define FETCH_OUT_HIGH (1024 * 1024)

static void fetch_failed(struct imap_session *s, int rc);

static void
fetch_job_free(struct fetch_job *job)
{
	fetch_req_free(&job->req);
	mbox_msglist_free(&job->list);
	buf_free(&job->msg);
	free(job);
}

/*
 * Write the responses for the next messages of the job.  1 when it is
 * finished (job->rc says how), 0 when the output is full for now.  On a
 * failure the failing message's partial response is cut off (the ones
 * before it stand: untagged FETCH data is never wrong to send).
 */
static int
fetch_step(struct imap_session *s, struct fetch_job *job)
{
	struct mbox_hdr_cursor hc;
	struct buf out;
	size_t mark;
	int rc = 0, more = 0;

	/* one slice at a time: nothing of it outlives this loop turn */
	mbox_hdr_cursor_init(&hc, s->idx, s->sel->id, &job->list);
	buf_init(&out, IMAP_LITERAL_MAX);
	while (job->next < job->list.count) {
		const struct mbox_msg *m = &job->list.msgs[job->next];
		size_t seq = imap_seq_of_uid(s->sel, m->uid);

		if (conn_out_pending(s->c) + out.len > FETCH_OUT_HIGH) {
			more = 1;
			break;
		}
		job->next++;
		if (seq == 0)
			continue;	/* not in this session's view yet */
		mark = out.len;
		rc = fetch_one(s, &job->req, job->is_uid, seq, &job->list,
		    job->next - 1, &hc, &job->msg, &out);
		if (rc < 0) {
			out.len = mark;
			if (out.data != NULL)
				out.data[mark] = '\0';
			job->rc = rc;
			break;
		}
		rc = 0;
		if (out.len > FETCH_OUT_HIGH / 4) {
			if (conn_write(s->c, out.data, out.len) < 0)
				break;
			buf_reset(&out);
		}
	}
	if (out.len > 0 && conn_write(s->c, out.data, out.len) < 0) {
		/* cannot happen below the high mark; never leave a gap */
		conn_abort(s->c);
		more = 0;
	}
	buf_free(&out);
	if (mbox_hdr_cursor_done(&hc) < 0)
		log_warn("sid=%s ip=%s FETCH: header cache: %s", s->c->sid,
		    s->c->ip, mbox_index_error(s->idx));
	/* An idle session holds no message buffer between slices. */
	buf_free(&job->msg);
	buf_init(&job->msg, IMAP_LITERAL_MAX);
	return more && job->rc == 0 ? 0 : 1;
}

/* Go on with the FETCH in progress (after the output drained). */
void
imap_fetch_continue(struct imap_session *s)
{
	struct fetch_job *job = s->fetch;
	int rc, is_uid;

	if (job == NULL || s->c == NULL || s->c->closing)
		return;
	if (fetch_step(s, job) == 0) {
		s->mode = IMAP_MODE_WAIT;	/* no new commands meanwhile */
		return;
	}
	rc = job->rc;
	is_uid = job->is_uid;
	s->fetch = NULL;
	fetch_job_free(job);
	/* New mail is announced after the FETCH responses, not among them. */
	imap_update(s, is_uid);
	if (rc < 0)
		fetch_failed(s, rc);
	else
		imap_tagged(s, "OK", "FETCH completed");
	if (s->mode == IMAP_MODE_WAIT)
		imap_resume(s);
}

void
imap_fetch_abort(struct imap_session *s)
{
	if (s->fetch != NULL)
		fetch_job_free(s->fetch);
	s->fetch = NULL;
}

/*
 * The implicit \Seen of a non-PEEK body fetch; the FETCH responses then
 * carry FLAGS.  As for STORE: when nothing else was waiting to be
 * reported, the change is ours and answered here, so the mark moves past
 * it and the update after the FETCH does not repeat it.
 */
static void
set_seen(struct imap_session *s, struct fetch_req *r,
    const struct mbox_range *set, size_t nset)
{
	struct mbox_store_req sr = { .mode = MBOX_STORE_ADD,
	    .flags = MBOX_F_SEEN };
	uint64_t highest;
	int caught_up;

	caught_up = mbox_highestmodseq(s->idx, s->sel->id, &highest) == 0 &&
	    highest == s->sel->modseq;
	(void)mbox_store(s->idx, s->sel->id, set, nset, &sr, NULL, NULL);
	if (caught_up && mbox_highestmodseq(s->idx, s->sel->id, &highest) == 0)
		s->sel->modseq = highest;
	if (!has_kind(r, F_FLAGS))
		add_item(r, F_FLAGS);
}

static void
fetch_failed(struct imap_session *s, int rc)
{
	if (rc == FETCH_ERR_CTE)
		imap_tagged(s, "NO", "[UNKNOWN-CTE] Cannot decode the "
		    "Content-Transfer-Encoding of that part");
	else if (rc == FETCH_ERR_NOT_LEAF)
		imap_tagged(s, "NO", "BINARY is only for leaf body parts, not "
		    "multipart or message parts (RFC 9051 6.4.5)");
	else
		imap_tagged(s, "NO", "[SERVERBUG] FETCH failed");
}

void
imap_fetch(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid)
{
	struct fetch_job *job = calloc(1, sizeof(*job));
	struct mbox_range *set = NULL;
	size_t nset;
	int rc = 0;

	if (job == NULL) {
		imap_tagged(s, "NO", "[SERVERBUG] Out of memory");
		return;
	}
	buf_init(&job->msg, IMAP_LITERAL_MAX);
	job->is_uid = is_uid;
	if (parse_fetch(&job->req, args, count) < 0) {
		fetch_job_free(job);
		imap_tagged(s, "BAD", "Invalid FETCH items");
		return;
	}
	if (job->req.changedsince)
		s->enabled_condstore = 1;
	if (imap_set_to_uids(s, &args[0], is_uid, &set, &nset) < 0) {
		fetch_job_free(job);
		return;
	}
	if (nset > 0 && job->req.sets_seen && !s->sel->readonly) {
		if (job->req.has_binary)
			rc = binary_precheck(s, &job->req, set, nset, &job->msg);
		if (rc == 0)
			set_seen(s, &job->req, set, nset);
	}
	if (rc == 0 && nset > 0 && mbox_messages(s->idx, s->sel->id, set,
	    nset, job->req.changedsince, &job->list) < 0) {
		log_error("sid=%s ip=%s FETCH: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		rc = FETCH_ERR;
	}
	free(set);
	job->rc = rc;
	if (rc < 0)
		job->next = job->list.count;	/* nothing to send */
	s->fetch = job;
	imap_fetch_continue(s);
}
