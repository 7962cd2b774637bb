/*
 * smtp_auth.c - AUTH (RFC 4954) on the submission listeners: SASL PLAIN
 * and LOGIN through common/auth, the password checked on the thread pool
 * while input is paused.  A failure is answered only after the growing
 * per-network delay of common/authfail, and a locked-out network is
 * refused without a check, exactly as imapd and pop3d do.  Nothing here
 * says whether a user exists.  On an `smtp` (MX) listener AUTH stays
 * refused: the command table lets it through only to say so.
 */
#include "smtpd.h"
#include "../common/log.h"

#include <string.h>

static void smtp_auth_done(struct auth_session *as, enum auth_status st,
    void *arg);

static void
smtp_auth_log(struct smtp_session *s, const char *result)
{
	auth_log_result(s->auth, s->c->sid, s->c->ip, result, "");
}

static void
smtp_on_fail_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtp_session *s = w->data;

	(void)loop;
	(void)revents;
	s->delayed_fail = 0;
	smtp_reply(s, 535, "5.7.8 Error: authentication failed");
	smtp_resume(s);
}

/* Answer a failure after the per-network delay. */
static void
smtp_auth_failed(struct smtp_session *s)
{
	unsigned ms = authfail_failure(s->d->authfail,
	    (const struct sockaddr *)&s->c->peer);

	smtp_enter_state(s, SMTP_ST_BUSY);
	conn_pause(s->c);
	s->errors++;		/* counted, but never closes mid-delay */
	if (ms == 0) {
		smtp_reply(s, 535, "5.7.8 Error: authentication failed");
		smtp_resume(s);
		return;
	}
	s->delayed_fail = 1;
	ev_timer_init(&s->delay, smtp_on_fail_delay, ms / 1000.0, 0.);
	s->delay.data = s;
	ev_timer_start(s->d->loop, &s->delay);
}

/* Act on a status from auth_start/auth_step. */
static void
smtp_auth_status(struct smtp_session *s, enum auth_status st)
{
	switch (st) {
	case AUTH_CONTINUE:
		smtp_enter_state(s, SMTP_ST_AUTH);
		smtp_reply(s, 334, "%s", auth_challenge(s->auth));
		return;
	case AUTH_VERIFY:
		smtp_enter_state(s, SMTP_ST_BUSY);
		conn_pause(s->c);
		if (auth_verify_submit(s->auth, s->d->pool, smtp_auth_done,
		    s) < 0) {
			auth_session_free(&s->auth);
			smtp_reply(s, 454, "4.7.0 Temporary authentication "
			    "failure");
			smtp_resume(s);
		}
		return;
	case AUTH_CANCEL:
		smtp_reply(s, 501, "5.7.0 Authentication aborted");
		break;
	case AUTH_BAD_INPUT:
		smtp_reply(s, 501, "5.5.2 Cannot decode response");
		break;
	case AUTH_NOMECH:
		smtp_reply(s, 504, "5.5.4 Unsupported authentication "
		    "mechanism; use PLAIN or LOGIN");
		break;
	case AUTH_ENCRYPT:
		smtp_reply(s, 530, "5.7.0 Must issue a STARTTLS command first");
		break;
	case AUTH_TEMPFAIL:
		smtp_auth_log(s, "tempfail");
		auth_session_free(&s->auth);
		smtp_reply(s, 454, "4.7.0 Temporary authentication failure");
		smtp_enter_state(s, SMTP_ST_HELO);
		return;
	case AUTH_FAIL:
		smtp_auth_log(s, "failed");
		auth_session_free(&s->auth);
		smtp_auth_failed(s);
		return;
	case AUTH_OK:
		break;		/* only from smtp_auth_done */
	}
	auth_session_free(&s->auth);
	smtp_enter_state(s, SMTP_ST_HELO);
	smtp_session_error(s);
}

static void
smtp_auth_done(struct auth_session *as, enum auth_status st, void *arg)
{
	struct smtp_session *s = arg;

	(void)as;
	if (st == AUTH_OK) {
		strlcpy_checked(s->user, auth_user(s->auth), sizeof(s->user));
		smtp_auth_log(s, "ok");
		authfail_success(s->d->authfail,
		    (const struct sockaddr *)&s->c->peer);
		auth_session_free(&s->auth);
		smtp_reply(s, 235, "2.7.0 Authentication successful");
		smtp_resume(s);
		return;
	}
	if (st == AUTH_TEMPFAIL) {
		smtp_auth_log(s, "tempfail");
		auth_session_free(&s->auth);
		smtp_reply(s, 454, "4.7.0 Temporary authentication failure");
		smtp_resume(s);
		return;
	}
	smtp_auth_log(s, "failed");
	auth_session_free(&s->auth);
	smtp_auth_failed(s);
}

void
smtp_cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd)
{
	const char *sp, *ir = NULL;
	size_t mlen, irlen = 0;

	if (!smtp_listener_submits(s) || s->d->auth == NULL) {
		/*
		 * An `smtp` (MX) listener takes mail for our domains from
		 * anyone and never authenticates.  Same answer as Postfix's
		 * smtpd without smtpd_sasl_auth_enable.
		 */
		smtp_reply(s, 503, "5.5.1 Error: authentication not enabled on "
		    "this port; submit mail on port 587 or 465");
		smtp_session_error(s);
		return;
	}
	if (s->state == SMTP_ST_INIT) {
		smtp_reply(s, 503, "5.5.1 Error: send HELO/EHLO first");
		smtp_session_error(s);
		return;
	}
	if (s->state != SMTP_ST_HELO) {
		smtp_reply(s, 503, "5.5.1 Error: MAIL transaction in progress");
		smtp_session_error(s);
		return;
	}
	if (cmd->arglen == 0) {
		smtp_reply(s, 501, "5.5.4 Syntax: AUTH mechanism "
		    "[initial-response]");
		smtp_session_error(s);
		return;
	}
	if (s->user[0] != '\0') {
		smtp_reply(s, 503, "5.5.1 Error: already authenticated");
		smtp_session_error(s);
		return;
	}
	if (authfail_locked(s->d->authfail,
	    (const struct sockaddr *)&s->c->peer) > 0) {
		log_info("sid=%s ip=%s login refused: too many failures",
		    s->c->sid, s->c->ip);
		smtp_reply(s, 454, "4.7.0 Too many failed authentications from "
		    "your network, try again later");
		smtp_session_error(s);
		return;
	}
	sp = memchr(cmd->arg, ' ', cmd->arglen);
	mlen = sp ? (size_t)(sp - cmd->arg) : cmd->arglen;
	if (sp != NULL) {
		ir = sp;
		while (ir < cmd->arg + cmd->arglen && *ir == ' ')
			ir++;
		irlen = (size_t)(cmd->arg + cmd->arglen - ir);
		if (irlen == 0 || memchr(ir, ' ', irlen) != NULL) {
			smtp_reply(s, 501, "5.5.4 Syntax: AUTH mechanism "
			    "[initial-response]");
			smtp_session_error(s);
			return;
		}
	}
	s->auth = auth_session_new(s->d->auth, "smtp", s->c->tls == CONN_TLS_ON);
	if (s->auth == NULL) {
		smtp_reply(s, 454, "4.7.0 Temporary authentication failure");
		return;
	}
	smtp_auth_status(s, auth_start(s->auth, cmd->arg, mlen, ir, irlen));
}

void
smtp_auth_line(struct smtp_session *s, const char *line, size_t len)
{
	smtp_auth_status(s, auth_step(s->auth, line, len));
}

/* The session goes away: no answer, no check left running. */
void
smtp_auth_session_end(struct smtp_session *s)
{
	if (s->delayed_fail) {
		ev_timer_stop(s->d->loop, &s->delay);
		s->delayed_fail = 0;
	}
	auth_session_free(&s->auth);
}
