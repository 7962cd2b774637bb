/*
 * cmd_fetch.c - FETCH / UID FETCH: FLAGS, UID, INTERNALDATE,
 * RFC822.SIZE, ENVELOPE, BODYSTRUCTURE, BODY, BODY[section]<partial>,
 * BODY.PEEK, RFC822, RFC822.HEADER, RFC822.TEXT, MODSEQ, the ALL / FAST
 * / FULL macros and CHANGEDSINCE (RFC 7162).  ENVELOPE and
 * BODYSTRUCTURE are cached in the index; section data is cut from the
 * message file by store/mime_section.  A non-PEEK body fetch sets \Seen
 * (in a read-write mailbox) before the response, which then carries the
 * new FLAGS.  No EXPUNGE is ever sent during FETCH.
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
	F_BODY, F_SECTION, F_MODSEQ,
};

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
	int sets_seen;
	uint64_t changedsince;
};

static int
add_item(struct fetch_req *r, enum fetch_kind k)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (r->items[i].kind == k && k != F_SECTION)
			return 0;
	if (r->n >= FETCH_MAX_ITEMS)
		return -1;
	memset(&r->items[r->n], 0, sizeof(r->items[0]));
	r->items[r->n].kind = k;
	mime_section_init(&r->items[r->n].sec);
	if (k == F_ENVELOPE || k == F_BODYSTRUCTURE || k == F_BODY)
		r->need_file = 1;
	return (int)r->n++ >= 0 ? 0 : -1;
}

/* BODY[...] / BODY.PEEK[...] / RFC822(.HEADER/.TEXT) */
static int
add_section(struct fetch_req *r, const char *text, size_t len, int peek,
    const char *label, const char *suffix, size_t suffixlen)
{
	struct fetch_item *it;
	const char *why;

	if (add_item(r, F_SECTION) < 0)
		return -1;
	it = &r->items[r->n - 1];
	it->peek = peek;
	if (mime_section_parse(&it->sec, text, len, &why) < 0)
		return -1;
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
	if (!peek)
		r->sets_seen = 1;
	return 0;
}

static int
parse_item(struct fetch_req *r, const struct imap_arg *a)
{
	if (a->type != IMAP_ARG_ATOM)
		return -1;
	if (a->flags & IMAP_ARG_F_SECTION) {
		const char *name = a->str, *in = a->str + a->name_len + 1;
		size_t inlen = a->len - a->name_len - 2 - a->suffix_len;
		char label[256];
		int peek;

		if (a->name_len == 4 && strncasecmp(name, "BODY", 4) == 0)
			peek = 0;
		else if (a->name_len == 9 && strncasecmp(name, "BODY.PEEK", 9) == 0)
			peek = 1;
		else
			return -1;
		if (snprintf_checked(label, sizeof(label), "BODY[%.*s]",
		    (int)inlen, in) < 0)
			return -1;
		return add_section(r, in, inlen, peek, label,
		    a->str + a->len - a->suffix_len, a->suffix_len);
	}
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
		return add_section(r, "", 0, 0, "RFC822", NULL, 0);
	if (imap_arg_is_atom(a, "RFC822.HEADER"))
		return add_section(r, "HEADER", 6, 1, "RFC822.HEADER", NULL, 0);
	if (imap_arg_is_atom(a, "RFC822.TEXT"))
		return add_section(r, "TEXT", 4, 0, "RFC822.TEXT", NULL, 0);
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

/* The whole stored message into b (bounded by its recorded size). */
static int
read_message(struct imap_session *s, const struct mbox_msg *m, struct buf *b)
{
	char chunk[65536];
	ssize_t n;
	int fd, r;

	buf_reset(b);
	r = mbox_msg_open(s->idx, s->sel->id, m->uid, &fd);
	if (r <= 0)
		return -1;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0)
		if (buf_append(b, chunk, (size_t)n) < 0) {
			close(fd);
			return -1;
		}
	close(fd);
	return n < 0 ? -1 : 0;
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

static int
fetch_one(struct imap_session *s, const struct fetch_req *r, int is_uid,
    size_t seq, const struct mbox_msg *m, struct buf *msg, struct buf *out)
{
	struct mime_message *mm = NULL;
	const char *sep = "";
	size_t i;
	int rc = 0;

	if (r->need_file && read_message(s, m, msg) < 0)
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
		case F_SECTION: {
			struct buf data;

			if (mm == NULL && (mm = mime_parse(msg->data ? msg->data :
			    "", msg->len)) == NULL) {
				rc = -1;
				break;
			}
			buf_init(&data, out->max);
			rc = mime_section_fetch(msg->data ? msg->data : "", mm,
			    &it->sec, it->partial ? (size_t)it->origin : 0,
			    it->partial ? (size_t)it->count : SIZE_MAX, &data);
			if (rc == 0)
				rc = buf_printf(out, "%s%s {%zu}\r\n", sep,
				    it->label, data.len) |
				    buf_append(out, data.data, data.len);
			buf_free(&data);
			break;
		}
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

void
imap_fetch(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid)
{
	static struct fetch_req req;	/* large; one FETCH at a time */
	struct mbox_range *set = NULL;
	struct mbox_msglist list;
	struct buf out, msg;
	size_t nset, i;

	if (parse_fetch(&req, args, count) < 0) {
		fetch_req_free(&req);
		imap_tagged(s, "BAD", "Invalid FETCH items");
		return;
	}
	if (req.changedsince)
		s->enabled_condstore = 1;
	if (imap_set_to_uids(s, &args[0], is_uid, &set, &nset) < 0) {
		fetch_req_free(&req);
		return;
	}
	memset(&list, 0, sizeof(list));
	if (nset > 0 && req.sets_seen && !s->sel->readonly) {
		struct mbox_store_req sr = { .mode = MBOX_STORE_ADD,
		    .flags = MBOX_F_SEEN };

		(void)mbox_store(s->idx, s->sel->id, set, nset, &sr, NULL, NULL);
		if (!has_kind(&req, F_FLAGS))
			add_item(&req, F_FLAGS);
	}
	if (nset > 0 && mbox_messages(s->idx, s->sel->id, set, nset,
	    req.changedsince, &list) < 0) {
		free(set);
		fetch_req_free(&req);
		log_error("sid=%s ip=%s FETCH: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		imap_tagged(s, "NO", "[SERVERBUG] FETCH failed");
		return;
	}
	free(set);
	buf_init(&out, IMAP_LITERAL_MAX);
	buf_init(&msg, IMAP_LITERAL_MAX);
	for (i = 0; i < list.count; i++) {
		size_t seq = imap_seq_of_uid(s->sel, list.msgs[i].uid);

		if (seq == 0)
			continue;	/* not in this session's view yet */
		if (fetch_one(s, &req, is_uid, seq, &list.msgs[i], &msg,
		    &out) < 0)
			break;
		if (out.len > 1024 * 1024) {
			if (conn_write(s->c, out.data, out.len) < 0) {
				conn_abort(s->c);
				break;
			}
			buf_reset(&out);
		}
	}
	if (out.len > 0 && conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	buf_free(&msg);
	mbox_msglist_free(&list);
	fetch_req_free(&req);
	/* New mail is announced after the FETCH responses, not among them. */
	imap_update(s, is_uid);
	imap_tagged(s, "OK", "FETCH completed");
}
