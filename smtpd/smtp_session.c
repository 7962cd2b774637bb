/*
 * smtp_session.c - one SMTP connection: accept, greeting, the read loop
 * that turns input into command lines or DATA bytes, replies, state
 * changes, and the end of the session.  Commands themselves are in
 * smtp_commands.c; delivery in smtp_deliver.c.
 */
#include "smtpd.h"
#include "../common/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void smtp_on_conn(struct conn *c, enum conn_event ev, void *arg);

static const char *state_names[] = {
	"init", "helo", "mail", "rcpt", "data", "busy", "auth", "quit"
};

void
smtp_enter_state(struct smtp_session *s, enum smtp_state st)
{
	if (s->state != st && log_debug_enabled())
		log_debug("sid=%s ip=%s state %s -> %s", s->c ? s->c->sid : "-",
		    s->c ? s->c->ip : "-", state_names[s->state], state_names[st]);
	s->state = st;
}

void
smtp_resume(struct smtp_session *s)
{
	smtp_resume_in(s, SMTP_ST_HELO);
}

void
smtp_resume_in(struct smtp_session *s, enum smtp_state st)
{
	smtp_enter_state(s, st);
	if (s->d->stopping) {
		smtp_reply(s, 421, "4.3.2 %s Service shutting down",
		    s->d->cfg.hostname);
		smtp_enter_state(s, SMTP_ST_QUIT);
		conn_close(s->c);
		return;
	}
	if (s->c->paused)
		conn_resume(s->c);	/* hands over pipelined input */
}

void
smtp_reply(struct smtp_session *s, int code, const char *fmt, ...)
{
	struct buf *o;
	va_list ap;

	if (s->c == NULL)
		return;
	o = &s->c->out;
	va_start(ap, fmt);
	if (buf_printf(o, "%03d ", code) < 0 || buf_vprintf(o, fmt, ap) < 0 ||
	    buf_append(o, "\r\n", 2) < 0) {
		/* The client is not reading its replies: give up on it. */
		va_end(ap);
		conn_abort(s->c);
		return;
	}
	va_end(ap);
	conn_write(s->c, "", 0);	/* schedule the flush */
}

/* A 5xx/4xx for a client mistake; too many and we hang up. */
void
smtp_session_error(struct smtp_session *s)
{
	if (++s->errors >= SMTP_MAX_ERRORS && s->state != SMTP_ST_QUIT) {
		log_info("sid=%s ip=%s too many errors, disconnecting", s->c->sid,
		    s->c->ip);
		smtp_reply(s, 421, "4.7.0 %s Too many errors, closing connection",
		    s->d->cfg.hostname);
		smtp_enter_state(s, SMTP_ST_QUIT);
		conn_close(s->c);
	}
}

struct smtp_tx *
smtp_tx_new(struct smtp_session *s)
{
	struct smtp_tx *tx = calloc(1, sizeof(*tx));

	if (tx == NULL)
		return NULL;
	log_new_session_id(tx->id);
	tx->id[10] = '\0';
	spool_init(&tx->body, s->d->spool_dir, SMTP_SPOOL_MEM);
	buf_init(&tx->received, 4096);
	buf_init(&tx->header, SMTP_SUBMIT_HEADER_MAX);
	return tx;
}

void
smtp_tx_free(struct smtp_tx **txp)
{
	struct smtp_tx *tx = *txp;

	if (tx == NULL)
		return;
	spool_free(&tx->body);
	buf_free(&tx->received);
	buf_free(&tx->header);
	free(tx->mbox);
	free(tx->ext);
	free(tx);
	*txp = NULL;
}

static void
smtp_session_unlink(struct smtp_session *s)
{
	struct smtpd *d = s->d;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	d->nsessions--;
}

static void
smtp_session_free(struct smtp_session *s)
{
	smtp_auth_session_end(s);
	smtp_tx_free(&s->tx);
	buf_free(&s->line);
	free(s);
}

void
smtp_session_accept(struct smtpd *d, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct smtp_session *s;
	struct conn *c;

	/* Input: a command line, or a burst of DATA / pipelined commands. */
	c = server_conn_new(&d->srv, fd, peer, peerlen, 64 * 1024, 1024 * 1024,
	    "421 4.7.0 Too many connections from your address, try again "
	    "later\r\n");
	if (c == NULL)
		return;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		conn_abort(c);
		return;
	}
	c->cb = smtp_on_conn;
	c->arg = s;
	s->d = d;
	s->c = c;
	s->kind = l->spec.kind;
	s->state = SMTP_ST_INIT;
	buf_init(&s->line, (smtp_listener_submits(s) ? SMTP_AUTH_LINE_MAX :
	    SMTP_LINE_MAX) + 1);
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	d->nsessions++;
	if (server_conn_begin(c, l, d->tls, SMTP_TIMEOUT) &&
	    smtp_policy_connect(s) == 0)
		smtp_reply(s, 220, "%s ESMTP Buzon", d->cfg.hostname);
}

/* Feed buffered input to the DATA scanner. */
static int
smtp_spool_out(void *arg, const char *p, size_t n)
{
	struct smtp_session *s = arg;
	struct smtp_tx *tx = s->tx;

	if (tx->body.size + n > s->d->cfg.max_message_size) {
		tx->overflow = 1;
		return -1;
	}
	if (s->user[0] != '\0' || smtp_policy_applies(s))
		return smtp_submit_spool(s, p, n);
	if (spool_append(&tx->body, p, n) < 0) {
		tx->spool_error = 1;
		return -1;
	}
	return 0;
}

static void
smtp_read_data(struct smtp_session *s)
{
	struct conn *c = s->c;
	struct smtp_tx *tx = s->tx;
	int overflow = tx->overflow || tx->spool_error;
	size_t used;

	used = smtp_data_feed(&tx->sc, c->in.data, c->in.len, smtp_spool_out,
	    s, &overflow);
	buf_consume(&c->in, used);
	if (tx->sc.done)
		smtp_data_finished(s);
}

static void
smtp_read_lines(struct smtp_session *s)
{
	struct conn *c = s->c;

	while (!c->closing && !c->closed) {
		int bare_lf = 0, r;

		if (s->state == SMTP_ST_DATA) {
			smtp_read_data(s);
			if (s->state == SMTP_ST_DATA)
				return;		/* need more data */
			continue;
		}
		if (s->state == SMTP_ST_BUSY || s->state == SMTP_ST_QUIT ||
		    c->tls == CONN_TLS_WAIT_DRAIN)
			return;
		r = conn_getline(c, smtp_listener_submits(s) ?
		    SMTP_AUTH_LINE_MAX : SMTP_LINE_MAX, &s->line, &bare_lf);
		if (r == 0)
			return;
		if (r < 0) {
			if (s->state == SMTP_ST_AUTH) {	/* ends the exchange */
				auth_session_free(&s->auth);
				smtp_enter_state(s, SMTP_ST_HELO);
			}
			smtp_reply(s, 500, "5.5.2 Line too long");
			smtp_session_error(s);
			continue;
		}
		if (s->state == SMTP_ST_AUTH) {
			smtp_auth_line(s, s->line.data ? s->line.data : "",
			    s->line.len);
			continue;
		}
		smtp_dispatch(s, s->line.data ? s->line.data : "", s->line.len);
	}
}

static void
smtp_on_conn(struct conn *c, enum conn_event ev, void *arg)
{
	struct smtp_session *s = arg;

	switch (ev) {
	case CONN_EV_DATA:
		smtp_read_lines(s);
		break;
	case CONN_EV_TLS_READY:
		if (s->state == SMTP_ST_INIT && listen_kind_is_tls(s->kind)) {
			smtp_reply(s, 220, "%s ESMTP Buzon", s->d->cfg.hostname);
		} else {
			/* RFC 3207 4.2: forget everything from before TLS. */
			smtp_tx_free(&s->tx);
			s->helo[0] = '\0';
			s->esmtp = 0;
			smtp_enter_state(s, SMTP_ST_INIT);
		}
		break;
	case CONN_EV_TIMEOUT:
		log_info("sid=%s ip=%s timeout in state %s", c->sid, c->ip,
		    state_names[s->state]);
		smtp_reply(s, 421, "4.4.2 %s Timeout, closing connection",
		    s->d->cfg.hostname);
		smtp_enter_state(s, SMTP_ST_QUIT);
		conn_close(c);
		break;
	case CONN_EV_DRAINED:
		break;
	case CONN_EV_CLOSED:
		log_info("sid=%s ip=%s disconnect transactions=%u errors=%u",
		    c->sid, c->ip, s->ntx, s->errors);
		s->c = NULL;
		smtp_session_unlink(s);
		if (s->job_running)
			s->gone = 1;	/* the job's done() frees it */
		else
			smtp_session_free(s);
		break;
	}
}

/* Called by the delivery job's done() when the conn went away. */
void
smtp_session_release(struct smtp_session *s)
{
	smtp_session_free(s);
}

/*
 * SIGTERM: idle sessions get 421 now; a session in DATA is cut (its
 * message was never acknowledged, so nothing is lost); a session that is
 * delivering (or checking a password) finishes and then says 421; one
 * waiting to answer a failed AUTH gets 421 at once.
 */
void
smtp_session_shutdown_all(struct smtpd *d)
{
	struct smtp_session *s, *next;

	for (s = d->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->c == NULL)
			continue;
		if (s->state == SMTP_ST_BUSY && s->delayed_fail)
			smtp_auth_session_end(s);	/* no 535 after all */
		else if (s->state == SMTP_ST_BUSY)
			continue;	/* delivery or password check ends */
		smtp_reply(s, 421, "4.3.2 %s Service shutting down",
		    d->cfg.hostname);
		smtp_enter_state(s, SMTP_ST_QUIT);
		conn_close(s->c);
	}
}
