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
	size_t nset, mlen;
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
