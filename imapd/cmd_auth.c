/*
 * cmd_auth.c - STARTTLS, LOGIN and AUTHENTICATE (SASL PLAIN/LOGIN with
 * SASL-IR).  Passwords are checked on the thread pool by common/auth;
 * input is paused meanwhile.  A failure is answered only after the
 * growing per-network delay of common/authfail; a locked-out network is
 * refused without a check.  Nothing here says whether a user exists.
 */
#include "imap_commands.h"
#include "../common/log.h"

#include <string.h>

static void imap_auth_done(struct auth_session *as, enum auth_status st,
    void *arg);

void
cmd_starttls(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 0) {
		imap_tagged(s, "BAD", "Syntax: STARTTLS");
		return;
	}
	if (s->c->tls != CONN_TLS_NONE || s->d->tls == NULL) {
		imap_tagged(s, "BAD", "TLS is already active");
		return;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now");
	/* Nothing the client pipelined before the handshake survives it. */
	imap_parser_reset(s->parser);
	conn_starttls(s->c, s->d->tls);
}

static void
imap_on_fail_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct imap_session *s = w->data;

	(void)loop;
	(void)revents;
	s->delayed_fail = 0;
	imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
	imap_resume(s);
}

/* Answer a failure after the per-network delay. */
static void
imap_auth_failed(struct imap_session *s)
{
	unsigned ms = authfail_failure(s->d->authfail,
	    (const struct sockaddr *)&s->c->peer);

	if (ms == 0) {
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication "
		    "failed");
		imap_resume(s);
		return;
	}
	s->delayed_fail = 1;
	ev_timer_init(&s->delay, imap_on_fail_delay, ms / 1000.0, 0.);
	s->delay.data = s;
	ev_timer_start(s->d->loop, &s->delay);
}

static void
imap_auth_log(struct imap_session *s, const char *result)
{
	auth_log_result(s->auth, s->c->sid, s->c->ip, result, "");
}

/* Act on a status from auth_start/auth_step/auth_login. */
static void
imap_auth_status(struct imap_session *s, enum auth_status st)
{
	switch (st) {
	case AUTH_CONTINUE:
		s->mode = IMAP_MODE_AUTHENTICATE;
		imap_reply(s, "+ %s", auth_challenge(s->auth));
		return;
	case AUTH_VERIFY:
		imap_wait(s);
		if (auth_verify_submit(s->auth, s->d->pool, imap_auth_done,
		    s) < 0) {
			imap_tagged(s, "NO", "[UNAVAILABLE] Internal error");
			auth_session_free(&s->auth);
			imap_resume(s);
		}
		return;
	case AUTH_CANCEL:
		imap_tagged(s, "BAD", "Authentication cancelled");
		break;
	case AUTH_BAD_INPUT:
		imap_tagged(s, "BAD", "Invalid base64 data");
		break;
	case AUTH_NOMECH:
		imap_tagged(s, "NO", "Unsupported authentication mechanism");
		break;
	case AUTH_ENCRYPT:
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Authentication needs TLS: "
		    "use STARTTLS or port 993");
		break;
	case AUTH_TEMPFAIL:
		imap_tagged(s, "NO", "[UNAVAILABLE] Temporary failure, try again");
		break;
	case AUTH_FAIL:
		imap_auth_log(s, "failed");
		auth_session_free(&s->auth);
		s->mode = IMAP_MODE_WAIT;
		conn_pause(s->c);
		imap_auth_failed(s);
		return;
	case AUTH_OK:
		break;		/* only from imap_auth_done */
	}
	auth_session_free(&s->auth);
	s->mode = IMAP_MODE_COMMAND;
}

/*
 * The per-user+address limit (RFC 9051 [LIMIT]): counted over the
 * logged-in sessions, so a crowd of logins behind one NAT for different
 * users is limited only by max_connections_per_ip.
 */
static int
imap_user_ip_full(const struct imap_session *s, const char *user)
{
	const struct imap_session *o;
	unsigned n = 0;

	for (o = s->d->sessions; o != NULL; o = o->next) {
		if (o == s || o->c == NULL || o->state == IMAP_ST_NOTAUTH ||
		    strcmp(o->user, user) != 0 || strcmp(o->c->ip, s->c->ip) != 0)
			continue;
		if (++n >= s->d->cfg.imapd_max_user_ip)
			return 1;
	}
	return 0;
}

static void
imap_auth_done(struct auth_session *as, enum auth_status st, void *arg)
{
	struct imap_session *s = arg;

	(void)as;
	if (st == AUTH_OK) {
		if (imap_user_ip_full(s, auth_user(s->auth))) {
			log_info("sid=%s ip=%s user=%s login refused: more than "
			    "%u sessions from this address", s->c->sid, s->c->ip,
			    auth_user(s->auth), s->d->cfg.imapd_max_user_ip);
			auth_session_free(&s->auth);
			imap_tagged(s, "NO", "[LIMIT] Too many connections for "
			    "this user from your address");
			imap_resume(s);
			return;
		}
		strlcpy_checked(s->user, auth_user(s->auth), sizeof(s->user));
		if (imap_user_open(s) < 0) {
			s->user[0] = '\0';
			auth_session_free(&s->auth);
			imap_tagged(s, "NO", "[UNAVAILABLE] Your mailbox cannot "
			    "be opened right now, try again later");
			imap_resume(s);
			return;
		}
		imap_auth_log(s, "ok");
		authfail_success(s->d->authfail,
		    (const struct sockaddr *)&s->c->peer);
		auth_session_free(&s->auth);
		imap_set_state(s, IMAP_ST_AUTH);
		imap_tagged(s, "OK", "[CAPABILITY %s] Logged in",
		    imap_capabilities(IMAP_CAP_AUTH));
		imap_resume(s);
		return;
	}
	if (st == AUTH_TEMPFAIL) {
		imap_auth_log(s, "tempfail");
		auth_session_free(&s->auth);
		imap_tagged(s, "NO", "[UNAVAILABLE] Temporary failure, try again");
		imap_resume(s);
		return;
	}
	imap_auth_status(s, AUTH_FAIL);
}

/* Common start: TLS and lockout checks, a fresh auth session. */
static int
imap_auth_begin(struct imap_session *s)
{
	if (!imap_session_tls(s)) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Plaintext authentication "
		    "disallowed: use STARTTLS or port 993");
		return -1;
	}
	if (authfail_locked(s->d->authfail,
	    (const struct sockaddr *)&s->c->peer) > 0) {
		log_info("sid=%s ip=%s login refused: too many failures",
		    s->c->sid, s->c->ip);
		imap_tagged(s, "NO", "[UNAVAILABLE] Too many failed logins from "
		    "your network, try again later");
		return -1;
	}
	s->auth = auth_session_new(s->d->auth, "imap", 1);
	if (s->auth == NULL) {
		imap_tagged(s, "NO", "[UNAVAILABLE] Out of memory");
		return -1;
	}
	return 0;
}

void
cmd_login(struct imap_session *s, const struct imap_command *cmd)
{
	const char *user, *pass;
	size_t ulen, plen;

	if (cmd->count != 2 || !imap_arg_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_astring(&cmd->args[1], &pass, &plen)) {
		imap_tagged(s, "BAD", "Syntax: LOGIN user password");
		return;
	}
	if (imap_auth_begin(s) < 0)
		return;
	imap_auth_status(s, auth_login(s->auth, user, ulen, pass, plen));
}

void
cmd_authenticate(struct imap_session *s, const struct imap_command *cmd)
{
	const char *mech, *ir = NULL;
	size_t mlen, irlen = 0;

	if (cmd->count < 1 || cmd->count > 2 ||
	    cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_tagged(s, "BAD", "Syntax: AUTHENTICATE mechanism "
		    "[initial-response]");
		return;
	}
	mech = cmd->args[0].str;
	mlen = cmd->args[0].len;
	if (cmd->count == 2) {		/* SASL-IR, RFC 4959 */
		if (cmd->args[1].type != IMAP_ARG_ATOM) {
			imap_tagged(s, "BAD", "Initial response must be base64 "
			    "or =");
			return;
		}
		ir = cmd->args[1].str;
		irlen = cmd->args[1].len;
	}
	if (imap_auth_begin(s) < 0)
		return;
	imap_auth_status(s, auth_start(s->auth, mech, mlen, ir, irlen));
}

void
imap_authenticate_line(struct imap_session *s, const char *line, size_t len)
{
	imap_auth_status(s, auth_step(s->auth, line, len));
}
