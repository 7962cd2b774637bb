/*
 * smtp_commands.c - the SMTP command table: verb -> state/TLS rules ->
 * handler.  The rules ("needs HELO", "needs MAIL", "not after TLS",
 * "allowed before TLS", "needs AUTH") are flags in the table and checked
 * in one place, smtp_dispatch(); handlers only do their command's own
 * work.  The last two apply on submission listeners only (port 25 takes
 * mail from anyone, with or without TLS).
 */
#include "smtpd.h"
#include "../common/log.h"

#include <string.h>
#include <strings.h>

enum {
	CMD_NEED_HELO = 1 << 0,		/* 503 before HELO/EHLO */
	CMD_NEED_MAIL = 1 << 1,		/* 503 without MAIL */
	CMD_NEED_RCPT = 1 << 2,		/* 503/554 without an accepted RCPT */
	CMD_NO_TX = 1 << 3,		/* 503 inside a transaction */
	CMD_NO_ARG = 1 << 4,		/* 501 when an argument is given */
	CMD_NEED_ARG = 1 << 5,		/* 501 without an argument */
	CMD_PRE_TLS_ONLY = 1 << 6,	/* 503 once TLS is on */
	CMD_PRE_TLS = 1 << 7,		/* submission: allowed before TLS */
	CMD_NEED_AUTH = 1 << 8,		/* submission: 530 before AUTH */
};

struct smtp_command {
	enum smtp_verb verb;
	unsigned flags;
	const char *syntax;
	void (*handler)(struct smtp_session *s, const struct smtp_cmd *cmd);
};

static void cmd_helo(struct smtp_session *, const struct smtp_cmd *);
static void cmd_ehlo(struct smtp_session *, const struct smtp_cmd *);
static void cmd_mail(struct smtp_session *, const struct smtp_cmd *);
static void cmd_rcpt(struct smtp_session *, const struct smtp_cmd *);
static void cmd_data(struct smtp_session *, const struct smtp_cmd *);
static void cmd_rset(struct smtp_session *, const struct smtp_cmd *);
static void cmd_noop(struct smtp_session *, const struct smtp_cmd *);
static void cmd_quit(struct smtp_session *, const struct smtp_cmd *);
static void cmd_vrfy(struct smtp_session *, const struct smtp_cmd *);
static void cmd_expn(struct smtp_session *, const struct smtp_cmd *);
static void cmd_help(struct smtp_session *, const struct smtp_cmd *);
static void cmd_starttls(struct smtp_session *, const struct smtp_cmd *);
static void cmd_bdat(struct smtp_session *, const struct smtp_cmd *);

static const struct smtp_command commands[SMTP_NVERBS] = {
	[SMTP_HELO] = { SMTP_HELO, CMD_NEED_ARG | CMD_PRE_TLS, "HELO hostname",
	    cmd_helo },
	[SMTP_EHLO] = { SMTP_EHLO, CMD_NEED_ARG | CMD_PRE_TLS, "EHLO hostname",
	    cmd_ehlo },
	[SMTP_MAIL] = { SMTP_MAIL, CMD_NEED_HELO | CMD_NEED_AUTH | CMD_NO_TX |
	    CMD_NEED_ARG, "MAIL FROM:<address>", cmd_mail },
	[SMTP_RCPT] = { SMTP_RCPT, CMD_NEED_HELO | CMD_NEED_MAIL | CMD_NEED_ARG,
	    "RCPT TO:<address>", cmd_rcpt },
	[SMTP_DATA] = { SMTP_DATA, CMD_NEED_HELO | CMD_NEED_MAIL |
	    CMD_NEED_RCPT | CMD_NO_ARG, "DATA", cmd_data },
	[SMTP_BDAT] = { SMTP_BDAT, 0, "BDAT", cmd_bdat },
	[SMTP_RSET] = { SMTP_RSET, CMD_NO_ARG | CMD_PRE_TLS, "RSET", cmd_rset },
	[SMTP_NOOP] = { SMTP_NOOP, CMD_PRE_TLS, "NOOP", cmd_noop },
	[SMTP_QUIT] = { SMTP_QUIT, CMD_NO_ARG | CMD_PRE_TLS, "QUIT", cmd_quit },
	[SMTP_VRFY] = { SMTP_VRFY, CMD_NEED_ARG, "VRFY address", cmd_vrfy },
	[SMTP_EXPN] = { SMTP_EXPN, CMD_NEED_ARG, "EXPN list", cmd_expn },
	[SMTP_HELP] = { SMTP_HELP, 0, "HELP", cmd_help },
	[SMTP_STARTTLS] = { SMTP_STARTTLS, CMD_NO_ARG | CMD_PRE_TLS_ONLY |
	    CMD_NO_TX | CMD_PRE_TLS, "STARTTLS", cmd_starttls },
	/* its rules differ by listener: see smtp_auth.c */
	[SMTP_AUTH] = { SMTP_AUTH, 0, "AUTH mechanism [initial-response]",
	    smtp_cmd_auth },
};

void
smtp_dispatch(struct smtp_session *s, const char *line, size_t len)
{
	const struct smtp_command *def;
	struct smtp_cmd cmd;

	if (smtp_parse_command(line, len, &cmd) < 0) {
		char esc[64];

		log_debug("sid=%s ip=%s unknown command \"%s\"", s->c->sid,
		    s->c->ip, log_escape(esc, sizeof(esc), line, len));
		smtp_reply(s, 500, "5.5.2 Error: command not recognized");
		smtp_session_error(s);
		return;
	}
	def = &commands[cmd.verb];
	/*
	 * Postfix's answer on a submission port with
	 * smtpd_tls_security_level=encrypt, for AUTH as for MAIL: clients
	 * (Thunderbird, Outlook) know it, and it names the fix.  RFC 4954's
	 * 538 5.7.11 is meant for one mechanism that needs encryption, not
	 * for a port where nothing but STARTTLS is allowed in plaintext.
	 */
	if (smtp_listener_submits(s) && s->c->tls != CONN_TLS_ON &&
	    !(def->flags & CMD_PRE_TLS)) {
		smtp_reply(s, 530, "5.7.0 Must issue a STARTTLS command first");
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_ARG) && cmd.arglen == 0) {
		smtp_reply(s, 501, "5.5.4 Syntax: %s", def->syntax);
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NO_ARG) && cmd.arglen != 0) {
		smtp_reply(s, 501, "5.5.4 Syntax: %s", def->syntax);
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_HELO) && s->state == SMTP_ST_INIT) {
		smtp_reply(s, 503, "5.5.1 Error: send HELO/EHLO first");
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_AUTH) && smtp_listener_submits(s) &&
	    s->user[0] == '\0') {
		smtp_reply(s, 530, "5.7.0 Authentication required");
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NO_TX) &&
	    (s->state == SMTP_ST_MAIL || s->state == SMTP_ST_RCPT)) {
		smtp_reply(s, 503, "5.5.1 Error: nested MAIL command");
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_MAIL) && s->state != SMTP_ST_MAIL &&
	    s->state != SMTP_ST_RCPT) {
		smtp_reply(s, 503, "5.5.1 Error: need MAIL command");
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_RCPT) && s->state != SMTP_ST_RCPT) {
		smtp_reply(s, 503, "5.5.1 Error: need RCPT command");
		smtp_session_error(s);
		return;
	}
	if ((def->flags & CMD_PRE_TLS_ONLY) && s->c->tls != CONN_TLS_NONE) {
		smtp_reply(s, 503, "5.5.1 Error: TLS already active");
		smtp_session_error(s);
		return;
	}
	def->handler(s, &cmd);
}

/* Keep the HELO argument for Received:, as printable ASCII only. */
static void
smtp_set_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	size_t i, n = cmd->arglen < sizeof(s->helo) - 1 ? cmd->arglen :
	    sizeof(s->helo) - 1;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)cmd->arg[i];

		s->helo[i] = (ch > 0x20 && ch < 0x7f && ch != '(' && ch != ')')
		    ? (char)ch : '_';
	}
	s->helo[n] = '\0';
	smtp_tx_free(&s->tx);
	smtp_enter_state(s, SMTP_ST_HELO);
}

static void
cmd_helo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	smtp_set_helo(s, cmd);
	s->esmtp = 0;
	smtp_reply(s, 250, "%s", s->d->cfg.hostname);
}

static void
cmd_ehlo(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtpd *d = s->d;
	const char *ext[12];
	char size[32];
	int n = 0, i;

	smtp_set_helo(s, cmd);
	s->esmtp = 1;
	ext[n++] = "PIPELINING";
	snprintf_checked(size, sizeof(size), "SIZE %llu",
	    (unsigned long long)d->cfg.max_message_size);
	ext[n++] = size;
	ext[n++] = "8BITMIME";
	ext[n++] = "SMTPUTF8";
	ext[n++] = "ENHANCEDSTATUSCODES";
	if (s->c->tls == CONN_TLS_NONE && d->tls != NULL)
		ext[n++] = "STARTTLS";
	/* DESIGN.md: AUTH only over TLS, so not even offered before it. */
	if (smtp_listener_submits(s) && s->c->tls == CONN_TLS_ON &&
	    d->auth != NULL)
		ext[n++] = "AUTH " AUTH_MECHANISMS;
	if (buf_printf(&s->c->out, "250-%s\r\n", d->cfg.hostname) < 0)
		goto full;
	for (i = 0; i < n - 1; i++)
		if (buf_printf(&s->c->out, "250-%s\r\n", ext[i]) < 0)
			goto full;
	smtp_reply(s, 250, "%s", ext[n - 1]);
	return;
full:
	conn_abort(s->c);
}

/*
 * An authenticated user sends only as itself (DESIGN.md, Security
 * rules); the null sender is for bounces, which users do not write.
 * 0 to go on, -1 when refused (answered).
 */
static int
smtp_cmd_mail_owned(struct smtp_session *s, const struct mailaddr *from)
{
	char shown[ADDR_MAX], allowed[512], esc[ADDR_MAX * 2];
	int r;

	addr_format(from, shown, sizeof(shown));
	r = smtp_sender_owned(s, from);
	if (r < 0) {
		smtp_reply(s, 451, "4.3.0 <%s>: Temporary lookup failure",
		    shown);
		return -1;
	}
	if (r == 1)
		return 0;
	smtp_sender_allowed(s, allowed, sizeof(allowed));
	log_info("sid=%s ip=%s user=%s reject MAIL FROM <%s>: not owned",
	    s->c->sid, s->c->ip, s->user,
	    log_escape(esc, sizeof(esc), shown, strlen(shown)));
	smtp_reply(s, 553, "5.7.1 <%s>: Sender address rejected: not owned by "
	    "user %s; you may send as: %s", shown, s->user, allowed);
	smtp_session_error(s);
	return -1;
}

static void
cmd_mail(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtpd *d = s->d;
	struct smtp_mail_args args;
	const char *why;
	int code;

	if (d->stopping) {
		smtp_reply(s, 421, "4.3.2 %s Service shutting down",
		    d->cfg.hostname);
		smtp_enter_state(s, SMTP_ST_QUIT);
		conn_close(s->c);
		return;
	}
	if (smtp_parse_mail(cmd->arg, cmd->arglen, &args, &code, &why) < 0) {
		smtp_reply(s, code, "%s", why);
		smtp_session_error(s);
		return;
	}
	if (s->user[0] != '\0' && smtp_cmd_mail_owned(s, &args.from) < 0)
		return;
	if (args.has_size && args.size > d->cfg.max_message_size) {
		smtp_reply(s, 552, "5.3.4 Message size exceeds fixed maximum "
		    "message size (%llu bytes)",
		    (unsigned long long)d->cfg.max_message_size);
		return;
	}
	s->tx = smtp_tx_new(s);
	if (s->tx == NULL) {
		smtp_reply(s, 451, "4.3.0 Out of memory, try again later");
		return;
	}
	s->tx->mail = args;
	addr_format(&args.from, s->tx->sender, sizeof(s->tx->sender));
	smtp_enter_state(s, SMTP_ST_MAIL);
	if (smtp_policy_applies(s) && s->d->cfg.spf) {
		smtp_policy_mail(s);	/* answers when SPF is known */
		return;
	}
	smtp_reply(s, 250, "2.1.0 Ok");
}

static void
cmd_rcpt(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_rcpt_args args;
	char shown[ADDR_MAX];
	const char *why;
	int code;

	if (smtp_parse_rcpt(cmd->arg, cmd->arglen, s->tx->mail.smtputf8,
	    &args, &code, &why) < 0) {
		smtp_reply(s, code, "%s", why);
		smtp_session_error(s);
		return;
	}
	if (s->tx->nrcpt >= s->d->cfg.max_recipients) {
		smtp_reply(s, 452, "4.5.3 Error: too many recipients");
		return;
	}
	addr_format(&args.to, shown, sizeof(shown));
	if (smtp_policy_rcpt(s, shown))
		return;
	smtp_cmd_rcpt_resolve(s, &args.to, shown);
}

static void
cmd_data(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	struct smtp_tx *tx = s->tx;

	(void)cmd;
	if (smtp_build_received(s, &tx->received) < 0) {
		smtp_reply(s, 451, "4.3.0 Internal error, try again later");
		return;
	}
	smtp_data_init(&tx->sc);
	smtp_enter_state(s, SMTP_ST_DATA);
	conn_set_timeout(s->c, SMTP_DATA_TIMEOUT);
	smtp_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
}

static void
cmd_rset(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_tx_free(&s->tx);
	if (s->state != SMTP_ST_INIT)
		smtp_enter_state(s, SMTP_ST_HELO);
	smtp_reply(s, 250, "2.0.0 Ok");
}

static void
cmd_noop(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 250, "2.0.0 Ok");
}

static void
cmd_quit(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 221, "2.0.0 Bye");
	smtp_enter_state(s, SMTP_ST_QUIT);
	conn_close(s->c);
}

static void
cmd_vrfy(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	/* RFC 5321 3.5.3: do not confirm or deny addresses to strangers. */
	smtp_reply(s, 252, "2.0.0 Cannot VRFY user, but will accept message "
	    "and attempt delivery");
}

static void
cmd_expn(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 502, "5.5.1 EXPN is not available");
}

static void
cmd_help(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP "
	    "QUIT VRFY STARTTLS");
}

static void
cmd_starttls(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	if (s->d->tls == NULL) {
		smtp_reply(s, 454, "4.7.0 TLS not available");
		return;
	}
	smtp_reply(s, 220, "2.0.0 Ready to start TLS");
	conn_starttls(s->c, s->d->tls);
}

/* CHUNKING is not in our EHLO reply, so a client must use DATA. */
static void
cmd_bdat(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	(void)cmd;
	smtp_reply(s, 503, "5.5.1 Error: BDAT without CHUNKING in the EHLO "
	    "reply; use DATA");
	smtp_session_error(s);
}
