/*
 * imap_selected.c - the selected mailbox: the session's sequence-number
 * view, SELECT/EXAMINE responses, and the updates (EXISTS, EXPUNGE or
 * VANISHED, FETCH FLAGS) other sessions, deliveries and mutt cause.
 * Updates are only sent where RFC 3501 7.4.1 allows them: expunges never
 * during FETCH, STORE or SEARCH, so another session's expunge cannot
 * renumber this one's view mid-command.  inotify on new/ and cur/ marks
 * the mailbox changed; an IDLEing session is told at once.
 */
#include "imap_commands.h"
#include "imap_seqset.h"
#include "../common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
view_push(struct imap_selected *sel, uint32_t uid)
{
	if (sel->count == sel->cap) {
		size_t ncap = sel->cap ? sel->cap * 2 : 64;
		uint32_t *n = realloc(sel->uids, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		sel->uids = n;
		sel->cap = ncap;
	}
	sel->uids[sel->count++] = uid;
	return 0;
}

size_t
imap_seq_of_uid(const struct imap_selected *sel, uint32_t uid)
{
	size_t lo = 0, hi = sel->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (sel->uids[mid] == uid)
			return mid + 1;
		if (sel->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static const struct {
	unsigned bit;
	const char *name;
} sysflags[] = {
	{ MBOX_F_ANSWERED, "\\Answered" }, { MBOX_F_FLAGGED, "\\Flagged" },
	{ MBOX_F_DELETED, "\\Deleted" }, { MBOX_F_SEEN, "\\Seen" },
	{ MBOX_F_DRAFT, "\\Draft" },
};

int
imap_append_flags(struct buf *b, const struct imap_selected *sel,
    uint32_t uid, unsigned flags, const char *keywords)
{
	const char *sep = "";
	size_t i;
	int r = buf_putc(b, '(');

	for (i = 0; i < sizeof(sysflags) / sizeof(sysflags[0]); i++)
		if (flags & sysflags[i].bit) {
			r |= buf_printf(b, "%s%s", sep, sysflags[i].name);
			sep = " ";
		}
	if (sel != NULL && uid >= sel->recent_lo && uid < sel->recent_hi) {
		r |= buf_printf(b, "%s\\Recent", sep);
		sep = " ";
	}
	if (keywords != NULL && keywords[0] != '\0')
		r |= buf_printf(b, "%s%s", sep, keywords);
	r |= buf_putc(b, ')');
	return r ? -1 : 0;
}

/*
 * foreign == 0: only this process's own changes, which went through the
 * index: no Maildir scan, but an IDLE session still reports them.
 */
static void
on_mailbox_change(struct dirwatch_sub *sub, void *arg, int foreign)
{
	struct imap_session *s = arg;

	(void)sub;
	if (s->sel == NULL)
		return;
	if (foreign)
		s->sel->changed = 1;
	if (s->mode == IMAP_MODE_IDLE && imap_index_reopen(s) == 0) {
		imap_update(s, 1);
		imap_index_release(s);
	}
}

/*
 * An IDLE session may wait for hours: it keeps no SQLite connection
 * (schema, statements and page cache cost ~150 KiB each) while it waits.
 */
void
imap_index_release(struct imap_session *s)
{
	imap_index_put(s->d, &s->idx);
}

int
imap_index_reopen(struct imap_session *s)
{
	if (s->idx != NULL)
		return 0;
	return imap_user_open(s);
}

void
imap_select_close(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;

	if (sel == NULL)
		return;
	dirwatch_remove(&sel->w_new);
	dirwatch_remove(&sel->w_cur);
	free(sel->uids);
	free(sel->saved);
	free(sel);
	s->sel = NULL;
}

static void
watch(struct imap_session *s, struct imap_selected *sel)
{
	char path[sizeof(sel->dir) + 8];

	snprintf_checked(path, sizeof(path), "%s/new", sel->dir);
	sel->w_new = dirwatch_add(s->d->dirwatch, path, on_mailbox_change, s);
	snprintf_checked(path, sizeof(path), "%s/cur", sel->dir);
	sel->w_cur = dirwatch_add(s->d->dirwatch, path, on_mailbox_change, s);
	if (sel->w_new == NULL || sel->w_cur == NULL)
		log_warn("sid=%s ip=%s cannot watch %s: no IDLE push for it",
		    s->c->sid, s->c->ip, sel->dir);
}

int
imap_select_open(struct imap_session *s, const char *name, int readonly,
    struct buf *out, const char **why)
{
	struct imap_selected *sel;
	struct mbox_sync_result sr;
	struct mbox_msglist list;
	struct mbox_status st;
	struct mbox_info info;
	char **kw = NULL;
	size_t nkw = 0, i, first_unseen = 0;

	if (mbox_find(s->idx, name, &info) != 1) {
		*why = "[NONEXISTENT] No such mailbox";
		return -1;
	}
	memset(&sr, 0, sizeof(sr));
	memset(&list, 0, sizeof(list));
	if (mbox_sync(s->idx, info.id, &sr) < 0 ||
	    mbox_messages(s->idx, info.id, NULL, 0, 0, &list) < 0 ||
	    mbox_status(s->idx, info.id, &st) < 0) {
		log_error("sid=%s ip=%s SELECT %s: %s", s->c->sid, s->c->ip,
		    name, mbox_index_error(s->idx));
		mbox_sync_result_free(&sr);
		mbox_msglist_free(&list);
		*why = "[SERVERBUG] Cannot open mailbox";
		return -1;
	}
	mbox_sync_result_free(&sr);
	sel = calloc(1, sizeof(*sel));
	if (sel == NULL) {
		mbox_msglist_free(&list);
		*why = "[SERVERBUG] Out of memory";
		return -1;
	}
	sel->id = info.id;
	strlcpy_checked(sel->name, info.name, sizeof(sel->name));
	strlcpy_checked(sel->dir, list.dir ? list.dir : "", sizeof(sel->dir));
	sel->readonly = readonly;
	sel->uidvalidity = st.uidvalidity;
	sel->uidnext = st.uidnext;
	sel->modseq = st.highestmodseq;
	sel->expunge_modseq = st.highestmodseq;
	for (i = 0; i < list.count; i++) {
		if (view_push(sel, list.msgs[i].uid) < 0) {
			mbox_msglist_free(&list);
			free(sel->uids);
			free(sel);
			*why = "[SERVERBUG] Out of memory";
			return -1;
		}
		if (first_unseen == 0 && !(list.msgs[i].flags & MBOX_F_SEEN))
			first_unseen = i + 1;
	}
	mbox_msglist_free(&list);
	/* IMAP4rev2 has no \Recent: no claim, no flag, no RECENT */
	if (!readonly && !s->enabled_rev2)
		(void)mbox_claim_recent(s->idx, sel->id, &sel->recent_lo,
		    &sel->recent_hi);

	buf_puts(out, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	if (mbox_keywords(s->idx, sel->id, &kw, &nkw) == 0) {
		for (i = 0; i < nkw; i++)
			buf_printf(out, " %s", kw[i]);
		mbox_strings_free(kw, nkw);
	}
	buf_puts(out, ")\r\n");
	buf_printf(out, "* OK [PERMANENTFLAGS (%s)] Flags permitted\r\n",
	    readonly ? "" : "\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*");
	buf_printf(out, "* %zu EXISTS\r\n", sel->count);
	if (!s->enabled_rev2)
		buf_printf(out, "* %u RECENT\r\n", sel->recent_hi >
		    sel->recent_lo ? sel->recent_hi - sel->recent_lo : 0);
	if (first_unseen > 0)
		buf_printf(out, "* OK [UNSEEN %zu] First unseen\r\n", first_unseen);
	buf_printf(out, "* OK [UIDVALIDITY %u] UIDs valid\r\n", sel->uidvalidity);
	buf_printf(out, "* OK [UIDNEXT %u] Predicted next UID\r\n", sel->uidnext);
	buf_printf(out, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
	    (unsigned long long)sel->modseq);
	if (s->enabled_rev2) {
		buf_puts(out, "* LIST () \".\" ");
		imap_append_mailbox(s, out, sel->name);
		buf_puts(out, "\r\n");
	}
	s->sel = sel;
	watch(s, sel);
	imap_set_state(s, IMAP_ST_SELECTED);
	return 0;
}

/* Send "* n EXPUNGE" (or collect VANISHED) for UIDs gone from the view. */
static int
update_expunges(struct imap_session *s, struct imap_selected *sel,
    struct buf *out)
{
	struct mbox_uids gone;
	struct imap_seqset vanished;
	uint64_t highest;
	size_t i;

	/*
	 * Only expunges recorded since the last look: a long-lived mailbox
	 * has a long expunge history, and reading all of it on every NOOP
	 * would make each update O(history).  The mark is taken before the
	 * query, so an expunge committed meanwhile is seen now or next time.
	 */
	if (mbox_highestmodseq(s->idx, sel->id, &highest) < 0)
		return -1;
	memset(&gone, 0, sizeof(gone));
	if (mbox_expunged_since(s->idx, sel->id, sel->expunge_modseq, NULL, 0,
	    &gone) < 0)
		return -1;
	sel->expunge_modseq = highest;
	imap_seqset_init(&vanished, 100000);
	/* Descending, so each sequence number is right when it is sent. */
	for (i = gone.count; i-- > 0;) {
		size_t seq = imap_seq_of_uid(sel, gone.uids[i]);

		if (seq == 0)
			continue;
		memmove(&sel->uids[seq - 1], &sel->uids[seq],
		    (sel->count - seq) * sizeof(sel->uids[0]));
		sel->count--;
		if (s->enabled_qresync)
			imap_seqset_add(&vanished, gone.uids[i], gone.uids[i]);
		else
			buf_printf(out, "* %zu EXPUNGE\r\n", seq);
	}
	if (s->enabled_qresync && vanished.n > 0) {
		buf_puts(out, "* VANISHED ");
		imap_seqset_format(&vanished, out);
		buf_puts(out, "\r\n");
	}
	imap_seqset_free(&vanished);
	mbox_uids_free(&gone);
	return 0;
}

int
imap_update(struct imap_session *s, int allow_expunge)
{
	struct imap_selected *sel = s->sel;
	struct mbox_sync_result sr;
	struct mbox_msglist list;
	struct mbox_range all = { 1, UINT32_MAX };
	struct buf out;
	uint64_t highest;
	size_t i, before;
	int watched;

	if (sel == NULL || s->c == NULL)
		return 0;
	memset(&sr, 0, sizeof(sr));
	memset(&list, 0, sizeof(list));
	/*
	 * A delivery wakes every session IDLEing on the mailbox in the same
	 * loop turn: the first one syncs the Maildir, the others read the
	 * index it just brought up to date.
	 */
	/*
	 * Without news from inotify on new/ and cur/ nothing changed behind
	 * the index (our own changes went through it), so no Maildir scan;
	 * pending inotify events are read first, so a delivery finished
	 * before this command is never missed.
	 */
	watched = sel->w_new != NULL && sel->w_cur != NULL;
	if (watched)
		dirwatch_poll(s->d->dirwatch);
	if (s->sel != sel || s->c == NULL || s->c->closing)
		return 0;	/* a callback above ended the session's view */
	if ((sel->changed || !watched) &&
	    (s->d->synced_idx != s->idx || s->d->synced_mbox != sel->id ||
	    s->d->synced_at != ev_now(s->d->loop))) {
		if (mbox_sync(s->idx, sel->id, &sr) < 0) {
			mbox_sync_result_free(&sr);
			if (errno == ENOENT) {
				/* RFC 2180 3.3: another session deleted it. */
				log_info("sid=%s ip=%s selected mailbox %s was "
				    "deleted", s->c->sid, s->c->ip, sel->name);
				imap_logout(s, "Selected mailbox was deleted");
			}
			return -1;
		}
		mbox_sync_result_free(&sr);
		s->d->synced_idx = s->idx;
		s->d->synced_mbox = sel->id;
		s->d->synced_at = ev_now(s->d->loop);
	}
	sel->changed = 0;
	buf_init(&out, 16 * 1024 * 1024);
	if (allow_expunge)
		update_expunges(s, sel, &out);
	/* New messages and flag changes since what we reported. */
	if (mbox_messages(s->idx, sel->id, &all, 1, sel->modseq, &list) == 0) {
		before = sel->count;
		for (i = 0; i < list.count; i++) {
			const struct mbox_msg *m = &list.msgs[i];

			if (m->uid >= sel->uidnext) {
				if (view_push(sel, m->uid) == 0)
					sel->uidnext = m->uid + 1;
			}
		}
		if (sel->count != before)
			buf_printf(&out, "* %zu EXISTS\r\n", sel->count);
		for (i = 0; i < list.count; i++) {
			const struct mbox_msg *m = &list.msgs[i];
			size_t seq = imap_seq_of_uid(sel, m->uid);

			if (seq == 0 || seq > before)
				continue;	/* new ones need no FETCH */
			buf_printf(&out, "* %zu FETCH (UID %u FLAGS ", seq, m->uid);
			imap_append_flags(&out, sel, m->uid, m->flags, m->keywords);
			if (s->enabled_condstore)
				buf_printf(&out, " MODSEQ (%llu)",
				    (unsigned long long)m->modseq);
			buf_puts(&out, ")\r\n");
		}
	}
	mbox_msglist_free(&list);
	if (mbox_highestmodseq(s->idx, sel->id, &highest) == 0)
		sel->modseq = highest;
	if (out.len > 0 && conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	return 0;
}

void
imap_idle_line(struct imap_session *s, const char *line, size_t len)
{
	s->mode = IMAP_MODE_COMMAND;
	if (imap_index_reopen(s) < 0) {
		imap_logout(s, "Mailbox index unavailable");
		return;
	}
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
		imap_update(s, 1);
		imap_tagged(s, "OK", "IDLE terminated");
		return;
	}
	imap_tagged(s, "BAD", "Expected DONE");
}
