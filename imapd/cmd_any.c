/*
 * cmd_any.c - commands valid in any state or with no mailbox work:
 * CAPABILITY, NOOP, LOGOUT, ID (RFC 2971), ENABLE (RFC 5161; IMAP4rev2
 * per RFC 9051 6.3.1), NAMESPACE (RFC 2342).
 */
#include "imap_commands.h"
#include "../common/log.h"

#include <string.h>
#include <strings.h>

void
cmd_capability(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_reply(s, "* CAPABILITY %s", imap_capabilities(imap_cap_state(s)));
	imap_tagged(s, "OK", "CAPABILITY completed");
}

void
cmd_noop(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_update(s, 1);	/* RFC 3501 6.1.2: the chance for updates */
	imap_tagged(s, "OK", "NOOP completed");
}

void
cmd_logout(struct imap_session *s, const struct imap_command *cmd)
{
	(void)cmd;
	imap_reply(s, "* BYE Logging out");
	imap_tagged(s, "OK", "LOGOUT completed");
	imap_set_state(s, IMAP_ST_LOGOUT);
	conn_close(s->c);
}

/* RFC 2971 3.3: at most 30 pairs, keys <= 30 octets, values <= 1024. */
static int
id_params_valid(const struct imap_arg *a)
{
	size_t i;

	if (a->type == IMAP_ARG_NIL)
		return 1;
	if (a->type != IMAP_ARG_LIST || a->count % 2 != 0 || a->count > 60)
		return 0;
	for (i = 0; i < a->count; i++) {
		const struct imap_arg *e = &a->args[i];
		const char *str;
		size_t len;

		if (e->type == IMAP_ARG_NIL && i % 2 == 1)
			continue;
		if (!imap_arg_string(e, &str, &len) ||
		    len > (i % 2 == 0 ? 30u : 1024u))
			return 0;
	}
	return 1;
}

void
cmd_id(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 1 || !id_params_valid(&cmd->args[0])) {
		imap_tagged(s, "BAD", "Syntax: ID NIL | ID (\"key\" \"value\" ...)");
		return;
	}
	if (cmd->args[0].type == IMAP_ARG_LIST && log_debug_enabled()) {
		char esc[256];
		const struct imap_arg *l = &cmd->args[0];
		size_t i;

		for (i = 0; i + 1 < l->count; i += 2)
			if (l->args[i + 1].type != IMAP_ARG_NIL)
				log_debug("sid=%s ip=%s client id %s=%s",
				    s->c->sid, s->c->ip, l->args[i].str,
				    log_escape(esc, sizeof(esc),
				    l->args[i + 1].str, l->args[i + 1].len));
	}
	imap_reply(s, "* ID (\"name\" \"Buzon\" \"vendor\" \"Buzon\")");
	imap_tagged(s, "OK", "ID completed");
}

void
cmd_enable(struct imap_session *s, const struct imap_command *cmd)
{
	struct buf enabled;
	size_t i;

	if (cmd->count == 0) {
		imap_tagged(s, "BAD", "Syntax: ENABLE capability ...");
		return;
	}
	buf_init(&enabled, 256);
	for (i = 0; i < cmd->count; i++) {
		const struct imap_arg *a = &cmd->args[i];
		int *flag = NULL;
		const char *name = NULL;

		if (a->type != IMAP_ARG_ATOM) {
			buf_free(&enabled);
			imap_tagged(s, "BAD", "ENABLE takes capability names");
			return;
		}
		if (imap_arg_is_atom(a, "CONDSTORE")) {
			flag = &s->enabled_condstore;
			name = "CONDSTORE";
		} else if (imap_arg_is_atom(a, "QRESYNC")) {
			/* RFC 7162 3.2.3: QRESYNC implies CONDSTORE */
			if (!s->enabled_condstore) {
				s->enabled_condstore = 1;
				buf_puts(&enabled, " CONDSTORE");
			}
			flag = &s->enabled_qresync;
			name = "QRESYNC";
		} else if (imap_arg_is_atom(a, "UTF8=ACCEPT")) {
			flag = &s->enabled_utf8;
			name = "UTF8=ACCEPT";
		} else if (imap_arg_is_atom(a, "IMAP4rev2")) {
			/*
			 * RFC 9051 has UTF-8 mailbox names and quoted strings
			 * (the UTF8=ACCEPT part of RFC 6855) built in: names
			 * go as UTF-8 from now on, not modified UTF-7.  Not
			 * listed as enabled: the client did not ask for it.
			 */
			s->enabled_utf8 = 1;
			flag = &s->enabled_rev2;
			name = "IMAP4rev2";
		}
		if (flag != NULL && !*flag) {
			*flag = 1;
			buf_printf(&enabled, " %s", name);
		}
	}
	imap_reply(s, "* ENABLED%s", buf_cstr(&enabled));
	buf_free(&enabled);
	imap_tagged(s, "OK", "ENABLE completed");
}

void
cmd_namespace(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, "BAD", "Syntax: NAMESPACE");
		return;
	}
	/* One personal namespace; "." is the hierarchy separator on disk
	 * (Maildir++) and in IMAP alike. */
	imap_reply(s, "* NAMESPACE ((\"\" \".\")) NIL NIL");
	imap_tagged(s, "OK", "NAMESPACE completed");
}
