/*
 * cmd_copy.c - COPY and MOVE (RFC 6851), with COPYUID (UIDPLUS,
 * RFC 4315).  MOVE's expunges reach this session as EXPUNGE/VANISHED
 * before the tagged reply, and other sessions at their next update.
 */
#include "imap_commands.h"
#include "imap_seqset.h"
#include "../common/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int imap_set_to_uids(struct imap_session *s, const struct imap_arg *a,
    int is_uid, struct mbox_range **ranges_r, size_t *n_r);

static int
uids_to_set(const struct mbox_uids *u, struct buf *out)
{
	struct imap_seqset set;
	size_t i;
	int r;

	imap_seqset_init(&set, 1000000);
	for (i = 0; i < u->count; i++)
		imap_seqset_add(&set, u->uids[i], u->uids[i]);
	r = imap_seqset_format(&set, out);
	imap_seqset_free(&set);
	return r;
}

/* How many messages of this session's view the UID set names. */
static size_t
view_count(const struct imap_selected *sel, const struct mbox_range *set,
    size_t nset)
{
	size_t i, k, n = 0;

	for (i = 0; i < sel->count; i++)
		for (k = 0; k < nset; k++)
			if (sel->uids[i] >= set[k].lo && sel->uids[i] <= set[k].hi) {
				n++;
				break;
			}
	return n;
}

/* How many of them the index still has (another session may expunge). */
static int
index_count(struct imap_session *s, const struct mbox_range *set,
    size_t nset, size_t *n)
{
	struct mbox_msglist list;

	memset(&list, 0, sizeof(list));
	if (mbox_messages(s->idx, s->sel->id, set, nset, 0, &list) < 0)
		return -1;
	*n = list.count;
	mbox_msglist_free(&list);
	return 0;
}

void
imap_copy(struct imap_session *s, const struct imap_arg *args, size_t count,
    int is_uid, int move)
{
	const char *verb = move ? "MOVE" : "COPY", *mname;
	char name[MBOX_NAME_MAX + 2];
	struct mbox_range *set = NULL;
	struct mbox_uids src, dst;
	struct mbox_info info;
	uint32_t dst_uv = 0;
	size_t nset, mlen, want, have;
	int r;

	if (count != 2 || !imap_arg_astring(&args[1], &mname, &mlen)) {
		imap_tagged(s, "BAD", "Syntax: %s set mailbox", verb);
		return;
	}
	if (move && s->sel->readonly) {
		imap_tagged(s, "NO", "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_mailbox_from_client(s, mname, mlen, name, sizeof(name)) < 0 ||
	    mbox_find(s->idx, name, &info) != 1) {
		imap_tagged(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	if (imap_set_to_uids(s, &args[0], is_uid, &set, &nset) < 0)
		return;
	if (nset == 0) {
		free(set);
		imap_tagged(s, "OK", "%s completed (nothing to do)", verb);
		return;
	}
	/*
	 * RFC 3501 6.4.7: OK means every message was copied.  One that
	 * another session expunged cannot be, so nothing is (RFC 2180
	 * 4.4.1, RFC 5530 EXPUNGEISSUED); the client sees the EXPUNGE at
	 * its next NOOP and can retry with what is left.
	 */
	want = view_count(s->sel, set, nset);
	if (index_count(s, set, nset, &have) == 0 && have < want) {
		free(set);
		imap_tagged(s, "NO", "[EXPUNGEISSUED] Some of the requested "
		    "messages no longer exist");
		return;
	}
	memset(&src, 0, sizeof(src));
	memset(&dst, 0, sizeof(dst));
	r = move ? mbox_move(s->idx, s->sel->id, set, nset, info.id, &src, &dst,
	    &dst_uv) : mbox_copy(s->idx, s->sel->id, set, nset, info.id, &src,
	    &dst, &dst_uv);
	free(set);
	if (r < 0) {
		int over = errno == EDQUOT;

		log_info("sid=%s ip=%s %s to %s failed: %s", s->c->sid, s->c->ip,
		    verb, name, mbox_index_error(s->idx));
		mbox_uids_free(&src);
		mbox_uids_free(&dst);
		imap_tagged(s, "NO", over ? "[OVERQUOTA] Quota exceeded" :
		    "[SERVERBUG] %s failed", verb);
		return;
	}
	if (src.count < want) {
		/* A file vanished under the copy (mutt, POP3): say so. */
		log_info("sid=%s ip=%s %s to %s: %zu of %zu messages gone",
		    s->c->sid, s->c->ip, verb, name, want - src.count, want);
		mbox_uids_free(&src);
		mbox_uids_free(&dst);
		if (move)
			imap_update(s, 1);
		imap_tagged(s, "NO", "[EXPUNGEISSUED] Some of the requested "
		    "messages no longer exist");
		return;
	}
	if (src.count > 0) {
		struct buf code;

		buf_init(&code, 4 * 1024 * 1024);
		buf_printf(&code, "COPYUID %u ", dst_uv);
		uids_to_set(&src, &code);
		buf_putc(&code, ' ');
		uids_to_set(&dst, &code);
		if (move) {
			/* RFC 6851 4.3: COPYUID in an untagged OK before expunges */
			imap_reply(s, "* OK [%s] Moved", buf_cstr(&code));
			imap_update(s, 1);
			imap_tagged(s, "OK", "MOVE completed");
		} else {
			imap_tagged(s, "OK", "[%s] COPY completed",
			    buf_cstr(&code));
		}
		buf_free(&code);
	} else {
		imap_tagged(s, "OK", "%s completed", verb);
	}
	mbox_uids_free(&src);
	mbox_uids_free(&dst);
}
