/*
 * pop3_commands.c - the POP3 command table: verb -> states in which it
 * is allowed, "needs TLS", argument counts -> handler.  The rules are
 * data in the table and checked in one place, pop3_dispatch(); handlers
 * only do their command's own work.  Also the TRANSACTION commands that
 * answer from the maildrop snapshot (STAT LIST UIDL DELE RSET NOOP),
 * CAPA and QUIT.  RETR/TOP are in pop3_retr.c, login in pop3_auth.c.
 */
#include "pop3d.h"
#include "../common/log.h"

#include <string.h>

enum {
	ST_AUTHORIZATION = 1 << POP3_ST_AUTHORIZATION,
	ST_TRANSACTION = 1 << POP3_ST_TRANSACTION,
	ST_ANY = ST_AUTHORIZATION | ST_TRANSACTION,
};

enum {
	CMD_NEED_TLS = 1 << 0,	/* -ERR [AUTH] on a connection without TLS */
	CMD_RAW_ARG = 1 << 1,	/* the argument is the rest of the line */
	CMD_LONG_LINE = 1 << 2,	/* may exceed POP3_LINE_MAX (AUTH + IR) */
};

struct pop3_command_def {
	unsigned states;
	unsigned flags;
	unsigned min_args, max_args;
	const char *syntax;
	pop3_cmd_fn *handler;
};

static pop3_cmd_fn cmd_capa, cmd_quit, cmd_noop, cmd_stat, cmd_list,
    cmd_uidl, cmd_dele, cmd_rset, cmd_retr, cmd_top;

static const struct pop3_command_def commands[POP3_NVERBS] = {
	[POP3_CAPA] = { ST_ANY, 0, 0, 0, "CAPA", cmd_capa },
	[POP3_QUIT] = { ST_ANY, 0, 0, 0, "QUIT", cmd_quit },
	[POP3_STLS] = { ST_AUTHORIZATION, 0, 0, 0, "STLS", pop3_cmd_stls },
	[POP3_USER] = { ST_AUTHORIZATION, CMD_NEED_TLS | CMD_RAW_ARG, 1, 1,
	    "USER name", pop3_cmd_user },
	[POP3_PASS] = { ST_AUTHORIZATION, CMD_NEED_TLS | CMD_RAW_ARG, 1, 1,
	    "PASS password", pop3_cmd_pass },
	[POP3_AUTH] = { ST_AUTHORIZATION, CMD_NEED_TLS | CMD_LONG_LINE, 0, 2,
	    "AUTH mechanism [initial-response]", pop3_cmd_auth },
	[POP3_STAT] = { ST_TRANSACTION, 0, 0, 0, "STAT", cmd_stat },
	[POP3_LIST] = { ST_TRANSACTION, 0, 0, 1, "LIST [msg]", cmd_list },
	[POP3_UIDL] = { ST_TRANSACTION, 0, 0, 1, "UIDL [msg]", cmd_uidl },
	[POP3_RETR] = { ST_TRANSACTION, 0, 1, 1, "RETR msg", cmd_retr },
	[POP3_TOP] = { ST_TRANSACTION, 0, 2, 2, "TOP msg lines", cmd_top },
	[POP3_DELE] = { ST_TRANSACTION, 0, 1, 1, "DELE msg", cmd_dele },
	[POP3_RSET] = { ST_TRANSACTION, 0, 0, 0, "RSET", cmd_rset },
	[POP3_NOOP] = { ST_TRANSACTION, 0, 0, 0, "NOOP", cmd_noop },
};

void
pop3_dispatch(struct pop3_session *s, const char *line, size_t len)
{
	const struct pop3_command_def *def;
	enum pop3_parse_result r;
	struct pop3_cmd cmd;
	char esc[64];

	if (s->state == POP3_ST_AUTHORIZATION &&
	    ++s->preauth_cmds > POP3_MAX_PREAUTH_CMDS) {
		log_info("sid=%s ip=%s too many commands before login",
		    s->c->sid, s->c->ip);
		pop3_err(s, "Too many commands before login, closing");
		pop3_bye(s);
		return;
	}
	r = pop3_parse_command(line, len, &cmd);
	if (r != POP3_PARSE_OK) {
		if (log_debug_enabled())
			log_debug("sid=%s ip=%s bad command \"%s\"", s->c->sid,
			    s->c->ip, log_escape(esc, sizeof(esc), line,
			    len < 16 ? len : 16));
		pop3_err(s, "%s", r == POP3_PARSE_BAD_CHAR ?
		    "Invalid characters in command" : r == POP3_PARSE_EMPTY ?
		    "Empty command" : "Unknown command");
		pop3_session_error(s);
		return;
	}
	def = &commands[cmd.verb];
	if (len > POP3_LINE_MAX && !(def->flags & CMD_LONG_LINE)) {
		pop3_err(s, "Line too long");
		pop3_session_error(s);
		return;
	}
	if (!(def->states & (1u << s->state))) {
		pop3_err(s, "%s not allowed %s", pop3_verb_name(cmd.verb),
		    s->state == POP3_ST_AUTHORIZATION ? "before login" :
		    "after login");
		pop3_session_error(s);
		return;
	}
	if ((def->flags & CMD_NEED_TLS) && !pop3_session_tls(s)) {
		pop3_err(s, "[AUTH] Plaintext authentication disallowed: "
		    "use STLS first or port 995");
		pop3_session_error(s);
		return;
	}
	if (def->flags & CMD_RAW_ARG) {
		if (cmd.restlen == 0) {
			pop3_err(s, "Syntax: %s", def->syntax);
			pop3_session_error(s);
			return;
		}
	} else if (cmd.too_many_args || cmd.nargs < def->min_args ||
	    cmd.nargs > def->max_args) {
		pop3_err(s, "Syntax: %s", def->syntax);
		pop3_session_error(s);
		return;
	}
	s->bad_in_row = 0;
	def->handler(s, &cmd);
}

/* ---- any state ---- */

static void
cmd_capa(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	int authz = s->state == POP3_ST_AUTHORIZATION;
	int tls = pop3_session_tls(s);

	(void)cmd;
	pop3_ok(s, "Capability list follows");
	pop3_line(s, "TOP");
	if (authz && tls)
		pop3_line(s, "USER");
	pop3_line(s, "UIDL");
	if (authz && !tls && s->kind == LISTEN_POP3 &&
	    s->c->tls == CONN_TLS_NONE)
		pop3_line(s, "STLS");
	if (authz && tls)
		pop3_line(s, "SASL %s", auth_mechanisms(s->d->auth, 1));
	pop3_line(s, "RESP-CODES");
	pop3_line(s, "AUTH-RESP-CODE");
	pop3_line(s, "PIPELINING");
	pop3_line(s, "IMPLEMENTATION Buzon");
	pop3_line(s, ".");
}

static void
cmd_quit(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	if (s->state == POP3_ST_AUTHORIZATION) {
		pop3_ok(s, "Bye");
		pop3_bye(s);
		return;
	}
	pop3_set_state(s, POP3_ST_UPDATE);
	if (s->drop->ndeleted == 0) {
		pop3_ok(s, "Bye (%zu messages left)", s->drop->count);
		pop3_bye(s);
		return;
	}
	pop3_job_submit(s, POP3_JOB_UPDATE);
}

void
pop3_update_done(struct pop3_session *s)
{
	struct pop3_maildrop *drop = s->drop;
	struct pop3_job *job = &s->job;

	if (job->result < 0) {
		log_error("sid=%s ip=%s user=%s update failed: %s", s->c->sid,
		    s->c->ip, s->account, job->err);
		pop3_err(s, "[SYS/TEMP] Some deleted messages not removed");
	} else {
		log_info("sid=%s ip=%s user=%s update deleted=%zu removed=%zu",
		    s->c->sid, s->c->ip, s->account, drop->ndeleted,
		    job->removed);
		pop3_ok(s, "Bye (%zu messages left)",
		    drop->count - drop->ndeleted);
	}
	s->mode = POP3_MODE_COMMAND;
	pop3_bye(s);
}

/* ---- TRANSACTION ---- */

/*
 * The message an argument names: 1-based, not deleted.  Answers -ERR
 * and returns -1 otherwise.
 */
static int
msg_arg(struct pop3_session *s, const struct pop3_arg *a, size_t *i_r)
{
	uint32_t n;

	if (pop3_parse_number(a->p, a->len, &n) < 0) {
		pop3_err(s, "Invalid message number");
		pop3_session_error(s);
		return -1;
	}
	if (n == 0 || n > s->drop->count) {
		pop3_err(s, "No such message");
		pop3_session_error(s);
		return -1;
	}
	if (s->drop->msgs[n - 1].deleted) {
		pop3_err(s, "Message %u already deleted", n);
		pop3_session_error(s);
		return -1;
	}
	*i_r = n - 1;
	return 0;
}

static void
cmd_noop(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	pop3_line(s, "+OK");
}

static void
cmd_stat(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	pop3_ok(s, "%zu %llu", s->drop->count - s->drop->ndeleted,
	    (unsigned long long)s->drop->size);
}

static void
cmd_list(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	size_t i;

	if (cmd->nargs == 1) {
		if (msg_arg(s, &cmd->args[0], &i) == 0)
			pop3_ok(s, "%zu %llu", i + 1,
			    (unsigned long long)s->drop->msgs[i].size);
		return;
	}
	pop3_ok(s, "%zu messages (%llu octets)",
	    s->drop->count - s->drop->ndeleted,
	    (unsigned long long)s->drop->size);
	pop3_listing_start(s, 0);
}

static void
cmd_uidl(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	char uidl[17];
	size_t i;

	if (cmd->nargs == 1) {
		if (msg_arg(s, &cmd->args[0], &i) == 0) {
			pop3_maildrop_uidl(s->drop, i, uidl);
			pop3_ok(s, "%zu %s", i + 1, uidl);
		}
		return;
	}
	pop3_ok(s, "Unique-ID listing follows");
	pop3_listing_start(s, 1);
}

static void
cmd_dele(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_maildrop *drop = s->drop;
	size_t i;

	if (msg_arg(s, &cmd->args[0], &i) < 0)
		return;
	drop->msgs[i].deleted = 1;
	drop->ndeleted++;
	drop->size -= drop->msgs[i].size;
	pop3_ok(s, "Message %zu deleted", i + 1);
}

static void
cmd_rset(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	struct pop3_maildrop *drop = s->drop;
	size_t i;

	(void)cmd;
	for (i = 0; i < drop->count; i++) {
		if (drop->msgs[i].deleted) {
			drop->msgs[i].deleted = 0;
			drop->size += drop->msgs[i].size;
		}
	}
	drop->ndeleted = 0;
	pop3_ok(s, "%zu messages (%llu octets)", drop->count,
	    (unsigned long long)drop->size);
}

static void
cmd_retr(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	size_t i;

	if (msg_arg(s, &cmd->args[0], &i) == 0)
		pop3_stream_start(s, i, 1, 0);
}

static void
cmd_top(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	uint32_t lines;
	size_t i;

	if (msg_arg(s, &cmd->args[0], &i) < 0)
		return;
	if (pop3_parse_number(cmd->args[1].p, cmd->args[1].len, &lines) < 0) {
		pop3_err(s, "Invalid number of lines");
		pop3_session_error(s);
		return;
	}
	pop3_stream_start(s, i, 0, lines);
}
