/*
 * cmd_mailbox.c - CREATE (with CREATE-SPECIAL-USE, RFC 6154), DELETE,
 * RENAME, SUBSCRIBE, UNSUBSCRIBE and STATUS (with SIZE, RFC 8438, and
 * IMAP4rev2's DELETED, RFC 9051 6.3.11).  Names are validated by the
 * index (mbox_name_valid): nothing can leave the user's directory.
 */
#include "imap_commands.h"
#include "../common/log.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* One mailbox name argument, decoded; replies BAD itself on failure. */
static int
mailbox_arg(struct imap_session *s, const struct imap_arg *a, char *out,
    size_t outsz)
{
	const char *name;
	size_t len;

	if (!imap_arg_astring(a, &name, &len) ||
	    imap_mailbox_from_client(s, name, len, out, outsz) < 0) {
		imap_tagged(s, "BAD", "Invalid mailbox name");
		return -1;
	}
	return 0;
}

static const struct {
	const char *attr;
	enum mbox_special special;
} special_uses[] = {
	{ "\\Sent", MBOX_SPECIAL_SENT }, { "\\Drafts", MBOX_SPECIAL_DRAFTS },
	{ "\\Trash", MBOX_SPECIAL_TRASH }, { "\\Junk", MBOX_SPECIAL_JUNK },
	{ "\\Archive", MBOX_SPECIAL_ARCHIVE },
};

void
cmd_create(struct imap_session *s, const struct imap_command *cmd)
{
	char name[MBOX_NAME_MAX + 2];
	enum mbox_special special = MBOX_SPECIAL_NONE;
	struct mbox_info info;
	size_t n;

	if (cmd->count < 1 || cmd->count > 2) {
		imap_tagged(s, "BAD", "Syntax: CREATE mailbox [(USE (attr))]");
		return;
	}
	if (mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	if (cmd->count == 2) {		/* (USE (\Sent)) */
		const struct imap_arg *l = &cmd->args[1];
		size_t i;

		if (l->type != IMAP_ARG_LIST || l->count != 2 ||
		    !imap_arg_is_atom(&l->args[0], "USE") ||
		    l->args[1].type != IMAP_ARG_LIST || l->args[1].count != 1) {
			imap_tagged(s, "BAD", "Syntax: CREATE mailbox (USE (attr))");
			return;
		}
		for (i = 0; i < sizeof(special_uses) / sizeof(special_uses[0]); i++)
			if (imap_arg_is_atom(&l->args[1].args[0],
			    special_uses[i].attr))
				special = special_uses[i].special;
		if (special == MBOX_SPECIAL_NONE) {
			imap_tagged(s, "NO", "[USEATTR] Unsupported special-use "
			    "attribute");
			return;
		}
	}
	/* RFC 3501 6.3.3: a trailing separator only declares intent. */
	n = strlen(name);
	if (n > 1 && name[n - 1] == '.')
		name[n - 1] = '\0';
	if (strcmp(name, "INBOX") == 0 || mbox_find(s->idx, name, &info) == 1) {
		imap_tagged(s, "NO", "[ALREADYEXISTS] Mailbox already exists");
		return;
	}
	if (!mbox_name_valid(name)) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (mbox_create(s->idx, name, special) < 0) {
		log_error("sid=%s ip=%s CREATE failed: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		imap_tagged(s, "NO", "[SERVERBUG] Cannot create mailbox");
		return;
	}
	imap_tagged(s, "OK", "CREATE completed");
}

void
cmd_delete(struct imap_session *s, const struct imap_command *cmd)
{
	char name[MBOX_NAME_MAX + 2];
	struct mbox_info info;

	if (cmd->count != 1) {
		imap_tagged(s, "BAD", "Syntax: DELETE mailbox");
		return;
	}
	if (mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	if (strcmp(name, "INBOX") == 0) {
		imap_tagged(s, "NO", "[CANNOT] INBOX cannot be deleted");
		return;
	}
	if (mbox_find(s->idx, name, &info) != 1) {
		imap_tagged(s, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	/*
	 * RFC 3501 6.3.4: children stay (Maildir++ keeps each folder in its
	 * own directory); the name lives on as a \Noselect level in LIST.
	 */
	if (mbox_delete(s->idx, name) < 0) {
		log_error("sid=%s ip=%s DELETE failed: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		imap_tagged(s, "NO", "[SERVERBUG] Cannot delete mailbox");
		return;
	}
	imap_tagged(s, "OK", "DELETE completed");
}

void
cmd_rename(struct imap_session *s, const struct imap_command *cmd)
{
	char from[MBOX_NAME_MAX + 2], to[MBOX_NAME_MAX + 2];
	struct mbox_info info;

	if (cmd->count != 2) {
		imap_tagged(s, "BAD", "Syntax: RENAME from to");
		return;
	}
	if (mailbox_arg(s, &cmd->args[0], from, sizeof(from)) < 0 ||
	    mailbox_arg(s, &cmd->args[1], to, sizeof(to)) < 0)
		return;
	if (mbox_find(s->idx, from, &info) != 1) {
		imap_tagged(s, "NO", "[NONEXISTENT] No such mailbox");
		return;
	}
	if (strcmp(to, "INBOX") == 0 || mbox_find(s->idx, to, &info) == 1) {
		imap_tagged(s, "NO", "[ALREADYEXISTS] Target mailbox exists");
		return;
	}
	if (!mbox_name_valid(to)) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (mbox_rename(s->idx, from, to) < 0) {
		log_error("sid=%s ip=%s RENAME failed: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		imap_tagged(s, "NO", "[SERVERBUG] Cannot rename mailbox");
		return;
	}
	imap_tagged(s, "OK", "RENAME completed");
}

static void
subscribe(struct imap_session *s, const struct imap_command *cmd, int on)
{
	char name[MBOX_NAME_MAX + 2];

	if (cmd->count != 1) {
		imap_tagged(s, "BAD", "Syntax: %s mailbox",
		    on ? "SUBSCRIBE" : "UNSUBSCRIBE");
		return;
	}
	if (mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	if (!mbox_name_valid(name)) {
		imap_tagged(s, "NO", "[CANNOT] Invalid mailbox name");
		return;
	}
	if (mbox_subscribe(s->idx, name, on) < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot change subscription");
		return;
	}
	imap_tagged(s, "OK", "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

void
cmd_subscribe(struct imap_session *s, const struct imap_command *cmd)
{
	subscribe(s, cmd, 1);
}

void
cmd_unsubscribe(struct imap_session *s, const struct imap_command *cmd)
{
	subscribe(s, cmd, 0);
}

/* Messages with \Deleted (STATUS DELETED): the index keeps no count. */
static int
count_deleted(struct imap_session *s, int64_t id, uint32_t *n_r)
{
	struct mbox_msglist list;
	size_t i;

	*n_r = 0;
	memset(&list, 0, sizeof(list));
	if (mbox_messages(s->idx, id, NULL, 0, 0, &list) < 0)
		return -1;
	for (i = 0; i < list.count; i++)
		if (list.msgs[i].flags & MBOX_F_DELETED)
			(*n_r)++;
	mbox_msglist_free(&list);
	return 0;
}

/*
 * "* STATUS name (ITEM n ...)\r\n" into out.  0, or -1 with *why a
 * tagged reply ("BAD ..." / "NO ...").
 */
int
imap_status_line(struct imap_session *s, const char *name,
    const struct imap_arg *items, struct buf *out, const char **why)
{
	struct mbox_sync_result sr;
	struct mbox_status st;
	struct mbox_info info;
	size_t i;

	if (items->type != IMAP_ARG_LIST || items->count == 0) {
		*why = "BAD Syntax: STATUS mailbox (items)";
		return -1;
	}
	if (mbox_find(s->idx, name, &info) != 1) {
		*why = "NO [NONEXISTENT] No such mailbox";
		return -1;
	}
	memset(&sr, 0, sizeof(sr));
	if (mbox_sync(s->idx, info.id, &sr) < 0 ||
	    mbox_status(s->idx, info.id, &st) < 0) {
		mbox_sync_result_free(&sr);
		*why = "NO [SERVERBUG] Cannot read mailbox status";
		return -1;
	}
	mbox_sync_result_free(&sr);
	buf_puts(out, "* STATUS ");
	imap_append_mailbox(s, out, name);
	buf_puts(out, " (");
	for (i = 0; i < items->count; i++) {
		const struct imap_arg *a = &items->args[i];
		const char *sep = i ? " " : "";

		if (imap_arg_is_atom(a, "MESSAGES"))
			buf_printf(out, "%sMESSAGES %u", sep, st.messages);
		else if (imap_arg_is_atom(a, "UIDNEXT"))
			buf_printf(out, "%sUIDNEXT %u", sep, st.uidnext);
		else if (imap_arg_is_atom(a, "UIDVALIDITY"))
			buf_printf(out, "%sUIDVALIDITY %u", sep, st.uidvalidity);
		else if (imap_arg_is_atom(a, "UNSEEN"))
			buf_printf(out, "%sUNSEEN %u", sep, st.unseen);
		else if (imap_arg_is_atom(a, "RECENT"))
			buf_printf(out, "%sRECENT %u", sep, st.recent);
		else if (imap_arg_is_atom(a, "SIZE"))
			buf_printf(out, "%sSIZE %llu", sep,
			    (unsigned long long)st.size);
		else if (imap_arg_is_atom(a, "HIGHESTMODSEQ"))
			buf_printf(out, "%sHIGHESTMODSEQ %llu", sep,
			    (unsigned long long)st.highestmodseq);
		else if (imap_arg_is_atom(a, "DELETED")) {
			uint32_t n;

			if (count_deleted(s, info.id, &n) < 0) {
				*why = "NO [SERVERBUG] Cannot read mailbox status";
				return -1;
			}
			buf_printf(out, "%sDELETED %u", sep, n);
		} else {
			*why = "BAD Unknown STATUS item";
			return -1;
		}
	}
	buf_puts(out, ")\r\n");
	return 0;
}

void
cmd_status(struct imap_session *s, const struct imap_command *cmd)
{
	char name[MBOX_NAME_MAX + 2];
	const char *why;
	struct buf out;

	if (cmd->count != 2) {
		imap_tagged(s, "BAD", "Syntax: STATUS mailbox (items)");
		return;
	}
	if (mailbox_arg(s, &cmd->args[0], name, sizeof(name)) < 0)
		return;
	buf_init(&out, 4096);
	if (imap_status_line(s, name, &cmd->args[1], &out, &why) < 0) {
		buf_free(&out);
		imap_tagged(s, why[0] == 'B' ? "BAD" : "NO", "%s", why + 3);
		return;
	}
	if (conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	imap_tagged(s, "OK", "STATUS completed");
}
