/*
 * imap_session.c - one IMAP connection: accept, greeting, the read loop
 * that feeds the command parser (or reads SASL and IDLE lines), tagged
 * and untagged replies, state changes, and the end of the session.
 * Commands themselves live in cmd_*.c behind imap_commands.c's table.
 */
#include "imapd.h"
#include "../common/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void imap_on_conn(struct conn *c, enum conn_event ev, void *arg);

static const char *state_names[] = { "notauth", "auth", "selected", "logout" };

void
imap_set_state(struct imap_session *s, enum imap_state st)
{
	if (s->state != st && log_debug_enabled() && s->c != NULL)
		log_debug("sid=%s ip=%s state %s -> %s", s->c->sid, s->c->ip,
		    state_names[s->state], state_names[st]);
	s->state = st;
	if (s->c != NULL)
		conn_set_timeout(s->c, st == IMAP_ST_NOTAUTH ?
		    IMAP_PREAUTH_TIMEOUT : (double)s->d->cfg.imapd_autologout);
}

int
imap_session_tls(const struct imap_session *s)
{
	return s->c != NULL && s->c->tls == CONN_TLS_ON;
}

enum imap_cap_state
imap_cap_state(const struct imap_session *s)
{
	if (s->state != IMAP_ST_NOTAUTH)
		return IMAP_CAP_AUTH;
	return imap_session_tls(s) ? IMAP_CAP_PREAUTH_TLS :
	    IMAP_CAP_PLAIN_NO_TLS;
}

static void
imap_vreply(struct imap_session *s, const char *prefix, const char *fmt,
    va_list ap)
{
	struct buf *o;

	if (s->c == NULL || s->c->closing)
		return;
	o = &s->c->out;
	if (buf_puts(o, prefix) < 0 || buf_vprintf(o, fmt, ap) < 0 ||
	    buf_append(o, "\r\n", 2) < 0) {
		/* The client does not read what we send: drop it. */
		conn_abort(s->c);
		return;
	}
	conn_write(s->c, "", 0);
}

void
imap_reply(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_vreply(s, "", fmt, ap);
	va_end(ap);
}

/* A client that only sends garbage (or unknown commands) is let go. */
static void
imap_count_bad(struct imap_session *s)
{
	if (++s->bad_in_row >= IMAP_MAX_BAD && s->state != IMAP_ST_LOGOUT) {
		log_info("sid=%s ip=%s too many bad commands", s->c->sid,
		    s->c->ip);
		imap_logout(s, "Too many invalid commands");
	}
}

void
imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	char prefix[sizeof(s->tag) + 16];
	va_list ap;

	snprintf_checked(prefix, sizeof(prefix), "%s %s ", s->tag, status);
	va_start(ap, fmt);
	imap_vreply(s, prefix, fmt, ap);
	va_end(ap);
	if (strcmp(status, "BAD") == 0)
		imap_count_bad(s);
	else
		s->bad_in_row = 0;
}

void
imap_wait(struct imap_session *s)
{
	s->mode = IMAP_MODE_WAIT;
	conn_pause(s->c);
}

void
imap_resume(struct imap_session *s)
{
	s->mode = IMAP_MODE_COMMAND;
	if (s->c != NULL)
		conn_resume(s->c);
}

void
imap_logout(struct imap_session *s, const char *why)
{
	imap_reply(s, "* BYE %s", why);
	imap_set_state(s, IMAP_ST_LOGOUT);
	conn_close(s->c);
}

static void
imap_session_unlink(struct imap_session *s)
{
	struct imapd *d = s->d;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	d->nsessions--;
}

static void
imap_session_free(struct imap_session *s)
{
	if (s->delayed_fail)
		ev_timer_stop(s->d->loop, &s->delay);
	auth_session_free(&s->auth);
	imap_fetch_abort(s);
	imap_select_close(s);
	imap_index_put(s->d, &s->idx);
	imap_parser_free(s->parser);
	free(s);
}

static void
imap_greet(struct imap_session *s)
{
	imap_reply(s, "* OK [CAPABILITY %s] %s Buzon IMAP ready",
	    imap_capabilities(imap_cap_state(s)), s->d->cfg.hostname);
}

void
imap_session_accept(struct imapd *d, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct imap_parser_limits lim = {
		.max_line = IMAP_LINE_MAX,
		.max_literal = IMAP_LITERAL_MAX,
		.max_literal_total = IMAP_LITERAL_MAX,
		.max_depth = IMAP_MAX_DEPTH,
		.max_args = IMAP_MAX_ARGS,
	};
	struct imap_session *s;
	struct conn *c;

	c = server_conn_new(&d->srv, fd, peer, peerlen, 64 * 1024,
	    IMAP_LITERAL_MAX + 1024 * 1024,
	    "* BYE [UNAVAILABLE] Too many connections from your address\r\n");
	if (c == NULL)
		return;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->parser = imap_parser_new(&lim)) == NULL) {
		free(s);
		conn_abort(c);
		return;
	}
	c->cb = imap_on_conn;
	c->arg = s;
	s->d = d;
	s->c = c;
	s->kind = l->spec.kind;
	s->state = IMAP_ST_NOTAUTH;
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	d->nsessions++;
	if (server_conn_begin(c, l, d->tls, IMAP_PREAUTH_TIMEOUT))
		imap_greet(s);
}

static void
imap_bad_input(struct imap_session *s, const char *tag, const char *why)
{
	if (tag != NULL)
		imap_reply(s, "%s BAD %s", tag, why);
	else
		imap_reply(s, "* BAD %s", why);
	imap_count_bad(s);
}

static void
imap_read_commands(struct imap_session *s)
{
	struct conn *c = s->c;

	while (!c->closing && !c->closed && c->in.len > 0) {
		enum imap_parse_result r;
		const char *line, *tag;
		size_t used = 0, len, taglen;

		switch (s->mode) {
		case IMAP_MODE_WAIT:
			return;
		case IMAP_MODE_AUTHENTICATE:
		case IMAP_MODE_IDLE:
			r = imap_parser_feed_line(s->parser, c->in.data,
			    c->in.len, &used, &line, &len);
			buf_consume(&c->in, used);
			if (r == IMAP_PARSE_NEED_MORE)
				return;
			if (r != IMAP_PARSE_DONE) {
				line = "";
				len = 0;
				if (s->mode == IMAP_MODE_IDLE) {
					imap_bad_input(s, NULL,
					    imap_parser_error(s->parser));
					continue;
				}
				/* a garbled SASL line ends the exchange */
				line = "*";
				len = 1;
			}
			if (s->mode == IMAP_MODE_AUTHENTICATE)
				imap_authenticate_line(s, line, len);
			else
				imap_idle_line(s, line, len);
			continue;
		case IMAP_MODE_COMMAND:
			break;
		}
		r = imap_parser_feed(s->parser, c->in.data, c->in.len, &used);
		buf_consume(&c->in, used);
		switch (r) {
		case IMAP_PARSE_DONE: {
			const struct imap_command *cmd =
			    imap_parser_command(s->parser);

			if (cmd->tag_len >= sizeof(s->tag)) {
				imap_bad_input(s, NULL, "Tag too long");
				break;
			}
			strlcpy_checked(s->tag, cmd->tag, sizeof(s->tag));
			imap_dispatch(s, cmd);
			break;
		}
		case IMAP_PARSE_ERROR:
			tag = imap_parser_tag(s->parser, &taglen);
			imap_bad_input(s, tag, imap_parser_error(s->parser));
			break;
		case IMAP_PARSE_LITERAL_TOO_BIG:
			tag = imap_parser_tag(s->parser, &taglen);
			if (tag != NULL)
				imap_reply(s, "%s NO [TOOBIG] Literal larger than "
				    "%llu bytes", tag,
				    (unsigned long long)IMAP_LITERAL_MAX);
			else
				imap_bad_input(s, NULL, "Literal too big");
			break;
		case IMAP_PARSE_NEED_CONTINUATION:
			imap_reply(s, "+ Ready for literal data");
			break;
		case IMAP_PARSE_NEED_MORE:
			return;
		}
	}
}

static void
imap_on_conn(struct conn *c, enum conn_event ev, void *arg)
{
	struct imap_session *s = arg;

	switch (ev) {
	case CONN_EV_DATA:
		imap_read_commands(s);
		break;
	case CONN_EV_TLS_READY:
		if (listen_kind_is_tls(s->kind))
			imap_greet(s);
		/* After STARTTLS the client asks for CAPABILITY again. */
		break;
	case CONN_EV_TIMEOUT:
		log_info("sid=%s ip=%s autologout in state %s", c->sid, c->ip,
		    state_names[s->state]);
		imap_logout(s, "Autologout; idle for too long");
		break;
	case CONN_EV_DRAINED:
		imap_fetch_continue(s);
		break;
	case CONN_EV_CLOSED:
		log_info("sid=%s ip=%s disconnect user=%s", c->sid, c->ip,
		    s->user[0] ? s->user : "-");
		s->c = NULL;
		imap_session_unlink(s);
		/* An in-flight password check is cancelled by auth_session_free. */
		imap_session_free(s);
		break;
	}
}

void
imap_session_shutdown_all(struct imapd *d)
{
	struct imap_session *s, *next;

	for (s = d->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->c == NULL)
			continue;
		imap_logout(s, "Server shutting down");
	}
}
