/*
 * cmd_select.c - SELECT and EXAMINE (with CONDSTORE and QRESYNC
 * parameters, RFC 7162), CLOSE, UNSELECT (RFC 3691), CHECK, IDLE
 * (RFC 2177), EXPUNGE and UID EXPUNGE (UIDPLUS), and the UID prefix
 * (UID FETCH/STORE/COPY/MOVE/EXPUNGE/SEARCH).
 */
#include "imap_commands.h"
#include "imap_seqset.h"
#include "../common/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* cmd_search.c: the SEARCHRES "$" set (RFC 5182) */
int imap_saved_to_uids(struct imap_session *s, struct mbox_range **ranges_r,
    size_t *n_r);

/*
 * The set argument as UID ranges.  is_uid: the set holds UIDs (resolved
 * against UIDNEXT-1); else sequence numbers of this session's view.
 * "$" is the saved search result either way.
 * Replies BAD itself and returns -1 on a bad set.
 */
int
imap_set_to_uids(struct imap_session *s, const struct imap_arg *a,
    int is_uid, struct mbox_range **ranges_r, size_t *n_r)
{
	struct imap_selected *sel = s->sel;
	struct imap_seqset set;
	struct imap_seqset_iter it;
	struct mbox_range *r = NULL;
	size_t n = 0, cap = 0;
	const char *why;
	uint32_t v;

	*ranges_r = NULL;
	*n_r = 0;
	if (a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NUMBER) {
		imap_tagged(s, "BAD", "Invalid sequence set");
		return -1;
	}
	if (a->len == 1 && a->str[0] == '$')
		return imap_saved_to_uids(s, ranges_r, n_r);
	imap_seqset_init(&set, 100000);
	if (imap_seqset_parse(&set, a->str, a->len, 0, &why) < 0 ||
	    imap_seqset_resolve(&set, is_uid ?
	    (sel->count ? sel->uids[sel->count - 1] : 0) :
	    (uint32_t)sel->count, !is_uid, &why) < 0) {
		imap_seqset_free(&set);
		imap_tagged(s, "BAD", "%s", why);
		return -1;
	}
	if (is_uid) {
		r = calloc(set.n ? set.n : 1, sizeof(*r));
		for (n = 0; r != NULL && n < set.n; n++) {
			r[n].lo = set.r[n].lo;
			r[n].hi = set.r[n].hi;
		}
	} else {
		/* sequence numbers -> UIDs, merging runs */
		imap_seqset_iter_init(&it, &set);
		while (imap_seqset_iter_next(&it, &v)) {
			uint32_t uid = s->sel->uids[v - 1];

			if (n > 0 && r[n - 1].hi + 1 == uid) {
				r[n - 1].hi = uid;
				continue;
			}
			if (n == cap) {
				struct mbox_range *nr;

				cap = cap ? cap * 2 : 16;
				nr = realloc(r, cap * sizeof(*r));
				if (nr == NULL)
					break;
				r = nr;
			}
			r[n].lo = r[n].hi = uid;
			n++;
		}
	}
	imap_seqset_free(&set);
	if (r == NULL && n > 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Out of memory");
		return -1;
	}
	*ranges_r = r;
	*n_r = n;
	return 0;
}

static void
select_common(struct imap_session *s, const struct imap_command *cmd,
    int readonly)
{
	char name[MBOX_NAME_MAX + 2];
	const char *mname, *why;
	size_t mlen, i;
	struct buf out;
	const struct imap_arg *qresync = NULL;

	if (cmd->count < 1 || cmd->count > 2 ||
	    !imap_arg_astring(&cmd->args[0], &mname, &mlen)) {
		imap_tagged(s, "BAD", "Syntax: %s mailbox [(CONDSTORE)]",
		    readonly ? "EXAMINE" : "SELECT");
		return;
	}
	if (cmd->count == 2) {
		const struct imap_arg *p = &cmd->args[1];

		if (p->type != IMAP_ARG_LIST) {
			imap_tagged(s, "BAD", "Invalid SELECT parameters");
			return;
		}
		for (i = 0; i < p->count; i++) {
			if (imap_arg_is_atom(&p->args[i], "CONDSTORE"))
				s->enabled_condstore = 1;
			else if (imap_arg_is_atom(&p->args[i], "QRESYNC") &&
			    i + 1 < p->count &&
			    p->args[i + 1].type == IMAP_ARG_LIST &&
			    s->enabled_qresync)
				qresync = &p->args[++i];
			else {
				imap_tagged(s, "BAD", "Unknown SELECT parameter");
				return;
			}
		}
	}
	if (s->sel != NULL) {
		imap_select_close(s);
		imap_set_state(s, IMAP_ST_AUTH);
		/* QRESYNC (RFC 7162) and IMAP4rev2 (RFC 9051) */
		if (s->enabled_qresync || s->enabled_rev2)
			imap_reply(s, "* OK [CLOSED] Previous mailbox closed");
	}
	if (imap_mailbox_from_client(s, mname, mlen, name, sizeof(name)) < 0) {
		imap_tagged(s, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	buf_init(&out, 1024 * 1024);
	if (imap_select_open(s, name, readonly, &out, &why) < 0) {
		buf_free(&out);
		imap_tagged(s, "NO", "%s", why);
		return;
	}
	if (qresync != NULL && qresync->count >= 2) {
		uint64_t uv, ms;

		/* (uidvalidity modseq ...): catch the client up */
		if (imap_arg_number(&qresync->args[0], &uv) &&
		    imap_arg_number(&qresync->args[1], &ms) &&
		    uv == s->sel->uidvalidity) {
			struct mbox_uids gone;
			struct mbox_msglist list;
			struct mbox_range all = { 1, UINT32_MAX };
			struct imap_seqset v;

			memset(&gone, 0, sizeof(gone));
			memset(&list, 0, sizeof(list));
			imap_seqset_init(&v, 100000);
			if (mbox_expunged_since(s->idx, s->sel->id, ms, NULL, 0,
			    &gone) == 0 && gone.count > 0) {
				for (i = 0; i < gone.count; i++)
					imap_seqset_add(&v, gone.uids[i], gone.uids[i]);
				buf_puts(&out, "* VANISHED (EARLIER) ");
				imap_seqset_format(&v, &out);
				buf_puts(&out, "\r\n");
			}
			if (mbox_messages(s->idx, s->sel->id, &all, 1, ms,
			    &list) == 0) {
				for (i = 0; i < list.count; i++) {
					const struct mbox_msg *m = &list.msgs[i];

					buf_printf(&out, "* %zu FETCH (UID %u FLAGS ",
					    imap_seq_of_uid(s->sel, m->uid), m->uid);
					imap_append_flags(&out, s->sel, m->uid,
					    m->flags, m->keywords);
					buf_printf(&out, " MODSEQ (%llu))\r\n",
					    (unsigned long long)m->modseq);
				}
			}
			imap_seqset_free(&v);
			mbox_uids_free(&gone);
			mbox_msglist_free(&list);
		}
	}
	if (conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	imap_tagged(s, "OK", "[%s] %s completed",
	    readonly ? "READ-ONLY" : "READ-WRITE", readonly ? "EXAMINE" : "SELECT");
}

void
cmd_select(struct imap_session *s, const struct imap_command *cmd)
{
	select_common(s, cmd, 0);
}

void
cmd_examine(struct imap_session *s, const struct imap_command *cmd)
{
	select_common(s, cmd, 1);
}

static void
deselect(struct imap_session *s)
{
	imap_select_close(s);
	imap_set_state(s, IMAP_ST_AUTH);
}

void
cmd_close(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	/* RFC 3501 6.4.2: expunge silently, unless read-only */
	if (!s->sel->readonly)
		(void)mbox_expunge(s->idx, s->sel->id, NULL, 0, NULL);
	deselect(s);
	imap_tagged(s, "OK", "CLOSE completed");
}

void
cmd_unselect(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	deselect(s);
	imap_tagged(s, "OK", "UNSELECT completed");
}

void
cmd_check(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_update(s, 1);
	imap_tagged(s, "OK", "CHECK completed");
}

void
cmd_idle(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, "BAD", "Syntax: IDLE");
		return;
	}
	imap_update(s, 1);
	imap_reply(s, "+ idling");
	s->mode = IMAP_MODE_IDLE;
	imap_index_release(s);
}

static void
expunge(struct imap_session *s, const struct imap_command *cmd, int is_uid)
{
	struct mbox_range *set = NULL;
	size_t nset = 0;

	if (s->sel->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (is_uid) {
		if (cmd->count != 1) {
			imap_tagged(s, "BAD", "Syntax: UID EXPUNGE set");
			return;
		}
		if (imap_set_to_uids(s, &cmd->args[0], 1, &set, &nset) < 0)
			return;
	} else if (cmd->count != 0) {
		imap_tagged(s, "BAD", "Syntax: EXPUNGE");
		return;
	}
	if ((!is_uid || nset > 0) &&
	    mbox_expunge(s->idx, s->sel->id, set, nset, NULL) < 0) {
		free(set);
		log_error("sid=%s ip=%s EXPUNGE: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		imap_tagged(s, "NO", "[SERVERBUG] Expunge failed");
		return;
	}
	free(set);
	imap_update(s, 1);
	imap_tagged(s, "OK", "EXPUNGE completed");
}

void
cmd_expunge(struct imap_session *s, const struct imap_command *cmd)
{
	expunge(s, cmd, 0);
}

/* cmd_store.c, cmd_fetch.c, cmd_copy.c, cmd_search.c */
void imap_store(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid);
void imap_fetch(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid);
void imap_copy(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid, int move);
void imap_search(struct imap_session *s, const struct imap_arg *args,
    size_t count, int is_uid);

void
cmd_uid(struct imap_session *s, const struct imap_command *cmd)
{
	struct imap_command sub;
	const struct imap_arg *a = cmd->args;

	if (cmd->count < 1 || a[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Syntax: UID command arguments");
		return;
	}
	sub = *cmd;
	sub.args = cmd->args + 1;
	sub.count = cmd->count - 1;
	if (imap_arg_is_atom(&a[0], "FETCH"))
		imap_fetch(s, sub.args, sub.count, 1);
	else if (imap_arg_is_atom(&a[0], "STORE"))
		imap_store(s, sub.args, sub.count, 1);
	else if (imap_arg_is_atom(&a[0], "COPY"))
		imap_copy(s, sub.args, sub.count, 1, 0);
	else if (imap_arg_is_atom(&a[0], "MOVE"))
		imap_copy(s, sub.args, sub.count, 1, 1);
	else if (imap_arg_is_atom(&a[0], "EXPUNGE"))
		expunge(s, &sub, 1);
	else if (imap_arg_is_atom(&a[0], "SEARCH"))
		imap_search(s, sub.args, sub.count, 1);
	else
		imap_tagged(s, "BAD", "Unknown UID command");
}

void
cmd_fetch(struct imap_session *s, const struct imap_command *cmd)
{
	imap_fetch(s, cmd->args, cmd->count, 0);
}

void
cmd_store(struct imap_session *s, const struct imap_command *cmd)
{
	imap_store(s, cmd->args, cmd->count, 0);
}

void
cmd_copy(struct imap_session *s, const struct imap_command *cmd)
{
	imap_copy(s, cmd->args, cmd->count, 0, 0);
}

void
cmd_move(struct imap_session *s, const struct imap_command *cmd)
{
	imap_copy(s, cmd->args, cmd->count, 0, 1);
}
