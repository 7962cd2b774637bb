/*
 * cmd_store.c - STORE / UID STORE: +FLAGS, -FLAGS, FLAGS (.SILENT), with
 * UNCHANGEDSINCE (CONDSTORE, RFC 7162 3.1.3).  Keywords are any flag
 * atom not starting with '\'; PERMANENTFLAGS includes \* so clients may
 * create them ($Junk, $NotJunk, $Forwarded, $MDNSent ...).
 */
#include "imap_commands.h"
#include "imap_seqset.h"
#include "../common/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int imap_set_to_uids(struct imap_session *s, const struct imap_arg *a,
    int is_uid, struct mbox_range **ranges_r, size_t *n_r);

static const struct {
	const char *name;
	unsigned bit;
} sysflags[] = {
	{ "\\Seen", MBOX_F_SEEN }, { "\\Answered", MBOX_F_ANSWERED },
	{ "\\Flagged", MBOX_F_FLAGGED }, { "\\Deleted", MBOX_F_DELETED },
	{ "\\Draft", MBOX_F_DRAFT },
};

/*
 * A flag list (or a single flag) into system bits and keyword pointers.
 * 0, or -1 for an invalid flag (\Recent and unknown \flags included).
 */
int
imap_parse_flags(const struct imap_arg *a, unsigned *flags,
    const char **kw, size_t *nkw, size_t maxkw)
{
	const struct imap_arg *items = a;
	size_t n = 1, i, j;

	*flags = 0;
	*nkw = 0;
	if (a->type == IMAP_ARG_LIST) {
		items = a->args;
		n = a->count;
	}
	for (i = 0; i < n; i++) {
		const struct imap_arg *f = &items[i];

		if (f->type != IMAP_ARG_ATOM || f->len == 0 ||
		    f->len > MBOX_KEYWORD_MAX)
			return -1;
		if (f->str[0] == '\\') {
			for (j = 0; j < sizeof(sysflags) / sizeof(sysflags[0]); j++)
				if (strcasecmp(f->str, sysflags[j].name) == 0)
					break;
			if (j == sizeof(sysflags) / sizeof(sysflags[0]))
				return -1;
			*flags |= sysflags[j].bit;
			continue;
		}
		if (strpbrk(f->str, "[]") != NULL || *nkw >= maxkw)
			return -1;
		kw[(*nkw)++] = f->str;
	}
	return 0;
}

void
imap_store(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid)
{
	struct mbox_store_req req;
	struct mbox_range *set = NULL;
	struct mbox_uids changed, failed;
	const char *kw[MBOX_MSG_KEYWORDS_MAX];
	const struct imap_arg *item;
	size_t nset, nkw, i = 1;
	uint64_t highest;
	int silent = 0, caught_up;
	struct buf out;

	memset(&req, 0, sizeof(req));
	if (count < 3) {
		imap_tagged(s, "BAD", "Syntax: STORE set [(UNCHANGEDSINCE n)] "
		    "+FLAGS (flags)");
		return;
	}
	if (s->sel->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (args[1].type == IMAP_ARG_LIST) {	/* (UNCHANGEDSINCE n) */
		if (args[1].count != 2 ||
		    !imap_arg_is_atom(&args[1].args[0], "UNCHANGEDSINCE") ||
		    !imap_arg_number(&args[1].args[1], &req.unchangedsince)) {
			imap_tagged(s, "BAD", "Invalid STORE modifier");
			return;
		}
		s->enabled_condstore = 1;
		i = 2;
	}
	if (count != i + 2 || args[i].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Syntax: STORE set +FLAGS (flags)");
		return;
	}
	item = &args[i];
	{
		const char *p = item->str;
		size_t len = item->len;

		if (len > 0 && (*p == '+' || *p == '-')) {
			req.mode = *p == '+' ? MBOX_STORE_ADD : MBOX_STORE_REMOVE;
			p++;
			len--;
		} else {
			req.mode = MBOX_STORE_SET;
		}
		if (len == 12 && strncasecmp(p, "FLAGS.SILENT", 12) == 0)
			silent = 1;
		else if (!(len == 5 && strncasecmp(p, "FLAGS", 5) == 0)) {
			imap_tagged(s, "BAD", "Unknown STORE item");
			return;
		}
	}
	if (imap_parse_flags(&args[i + 1], &req.flags, kw, &nkw,
	    MBOX_MSG_KEYWORDS_MAX) < 0) {
		imap_tagged(s, "BAD", "Invalid flag");
		return;
	}
	req.keywords = kw;
	req.nkeywords = nkw;
	if (imap_set_to_uids(s, &args[0], is_uid, &set, &nset) < 0)
		return;
	memset(&changed, 0, sizeof(changed));
	memset(&failed, 0, sizeof(failed));
	/*
	 * When nothing is waiting to be reported, every change after this
	 * point is ours and is answered below (or silenced on request):
	 * moving the mark past it keeps the next NOOP from repeating it.
	 */
	caught_up = mbox_highestmodseq(s->idx, s->sel->id, &highest) == 0 &&
	    highest == s->sel->modseq;
	if (nset > 0 && mbox_store(s->idx, s->sel->id, set, nset, &req,
	    &changed, &failed) < 0) {
		free(set);
		log_error("sid=%s ip=%s STORE: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		imap_tagged(s, "NO", "[SERVERBUG] STORE failed");
		return;
	}
	if (caught_up && mbox_highestmodseq(s->idx, s->sel->id, &highest) == 0)
		s->sel->modseq = highest;
	buf_init(&out, 16 * 1024 * 1024);
	if (!silent || s->enabled_condstore) {
		struct mbox_msglist list;

		memset(&list, 0, sizeof(list));
		if (mbox_messages(s->idx, s->sel->id, set, nset, 0, &list) == 0) {
			for (i = 0; i < list.count; i++) {
				const struct mbox_msg *m = &list.msgs[i];
				size_t seq = imap_seq_of_uid(s->sel, m->uid), k;
				int was_changed = 0;

				for (k = 0; k < changed.count; k++)
					if (changed.uids[k] == m->uid)
						was_changed = 1;
				if (seq == 0 || (silent && !was_changed))
					continue;
				buf_printf(&out, "* %zu FETCH (", seq);
				if (is_uid)
					buf_printf(&out, "UID %u ", m->uid);
				if (!silent) {
					buf_puts(&out, "FLAGS ");
					imap_append_flags(&out, s->sel, m->uid,
					    m->flags, m->keywords);
				}
				if (s->enabled_condstore)
					buf_printf(&out, "%sMODSEQ (%llu)",
					    silent ? "" : " ",
					    (unsigned long long)m->modseq);
				buf_puts(&out, ")\r\n");
			}
		}
		mbox_msglist_free(&list);
	}
	if (out.len > 0 && conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	free(set);
	mbox_uids_free(&changed);
	if (failed.count > 0) {
		struct imap_seqset mod;
		struct buf b;

		imap_seqset_init(&mod, 100000);
		for (i = 0; i < failed.count; i++) {
			uint32_t v = is_uid ? failed.uids[i] :
			    (uint32_t)imap_seq_of_uid(s->sel, failed.uids[i]);

			if (v != 0)
				imap_seqset_add(&mod, v, v);
		}
		buf_init(&b, 1024 * 1024);
		imap_seqset_format(&mod, &b);
		imap_tagged(s, "OK", "[MODIFIED %s] Conditional STORE failed "
		    "for some messages", buf_cstr(&b));
		buf_free(&b);
		imap_seqset_free(&mod);
		mbox_uids_free(&failed);
		return;
	}
	mbox_uids_free(&failed);
	if (is_uid)
		imap_update(s, 1);
	imap_tagged(s, "OK", "STORE completed");
}
