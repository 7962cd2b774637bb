/*
 * pop3_auth.c - the AUTHORIZATION state: STLS (RFC 2595), USER/PASS
 * (RFC 1939) and AUTH (RFC 5034, with initial response) through
 * common/auth, then the maildrop lock and snapshot on the pool.
 *
 * Passwords are checked on the thread pool; input is paused meanwhile.
 * A failure is answered only after the growing per-network delay of
 * common/authfail; a locked-out network is refused without a check.
 * Nothing here says whether a user exists: a wrong password, an unknown
 * user and a disabled one all get "-ERR [AUTH] Authentication failed".
 */
#include "pop3d.h"
#include "../common/db.h"
#include "../common/log.h"

#include <string.h>

static void pop3_auth_done(struct auth_session *as, enum auth_status st,
    void *arg);

void
pop3_cmd_stls(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	(void)cmd;
	if (s->kind != LISTEN_POP3 || s->c->tls != CONN_TLS_NONE ||
	    s->d->tls == NULL) {
		pop3_err(s, "TLS is already active");
		pop3_session_error(s);
		return;
	}
	pop3_ok(s, "Begin TLS negotiation now");
	/* Nothing the client pipelined before the handshake survives it. */
	s->have_user = 0;
	conn_starttls(s->c, s->d->tls);
}

static void
pop3_on_fail_delay(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pop3_session *s = w->data;

	(void)loop;
	(void)revents;
	s->delayed_fail = 0;
	pop3_err(s, "[AUTH] Authentication failed");
	pop3_resume(s);
}

/* Answer a failure after the per-network delay. */
static void
pop3_auth_failed(struct pop3_session *s)
{
	unsigned ms = authfail_failure(s->d->authfail,
	    (const struct sockaddr *)&s->c->peer);

	if (ms == 0) {
		pop3_err(s, "[AUTH] Authentication failed");
		pop3_resume(s);
		return;
	}
	s->delayed_fail = 1;
	ev_timer_init(&s->delay, pop3_on_fail_delay, ms / 1000.0, 0.);
	s->delay.data = s;
	ev_timer_start(s->d->loop, &s->delay);
}

static void
pop3_auth_log(struct pop3_session *s, const char *result)
{
	char drop[64] = "";

	if (s->drop != NULL)
		snprintf_checked(drop, sizeof(drop), " messages=%zu size=%llu",
		    s->drop->count, (unsigned long long)s->drop->size);
	auth_log_result(s->auth, s->c->sid, s->c->ip, result, drop);
}

/* Act on a status from auth_start/auth_step/auth_login. */
static void
pop3_auth_status(struct pop3_session *s, enum auth_status st)
{
	switch (st) {
	case AUTH_CONTINUE:
		s->mode = POP3_MODE_SASL;
		pop3_line(s, "+ %s", auth_challenge(s->auth));
		return;
	case AUTH_VERIFY:
		pop3_wait(s);
		if (auth_verify_submit(s->auth, s->d->pool, pop3_auth_done,
		    s) < 0) {
			pop3_err(s, "[SYS/TEMP] Internal error");
			auth_session_free(&s->auth);
			pop3_resume(s);
		}
		return;
	case AUTH_CANCEL:
		pop3_err(s, "Authentication cancelled");
		break;
	case AUTH_BAD_INPUT:
		pop3_err(s, "Invalid base64 data");
		break;
	case AUTH_NOMECH:
		pop3_err(s, "Unsupported authentication mechanism");
		break;
	case AUTH_ENCRYPT:
		pop3_err(s, "[AUTH] Plaintext authentication disallowed: use "
		    "STLS first or port 995");
		break;
	case AUTH_TEMPFAIL:
		pop3_err(s, "[SYS/TEMP] Temporary failure, try again later");
		break;
	case AUTH_FAIL:
		pop3_auth_log(s, "failed");
		auth_session_free(&s->auth);
		s->mode = POP3_MODE_WAIT;
		conn_pause(s->c);
		pop3_auth_failed(s);
		return;
	case AUTH_OK:
		break;		/* only from pop3_auth_done */
	}
	auth_session_free(&s->auth);
	s->mode = POP3_MODE_COMMAND;
	pop3_session_error(s);
}

static void
pop3_auth_done(struct auth_session *as, enum auth_status st, void *arg)
{
	struct pop3_session *s = arg;
	struct pop3_job *job = &s->job;

	(void)as;
	if (st == AUTH_OK) {
		authfail_success(s->d->authfail,
		    (const struct sockaddr *)&s->c->peer);
		strlcpy_checked(s->account, auth_user(s->auth),
		    sizeof(s->account));
		if (s->d->stopping ||
		    db_user_maildir(s->d->cfg.mail_dir, s->account,
		    job->userdir, sizeof(job->userdir)) < 0) {
			if (!s->d->stopping)
				log_error("sid=%s ip=%s user %s has no valid mail "
				    "directory", s->c->sid, s->c->ip, s->account);
			s->account[0] = '\0';
			auth_session_free(&s->auth);
			pop3_err(s, "[SYS/TEMP] Your mailbox cannot be opened "
			    "right now, try again later");
			pop3_resume(s);
			return;
		}
		/* The lock and the INBOX snapshot (pop3_open_done). */
		pop3_job_submit(s, POP3_JOB_OPEN);
		return;
	}
	if (st == AUTH_TEMPFAIL) {
		pop3_auth_log(s, "tempfail");
		auth_session_free(&s->auth);
		pop3_err(s, "[SYS/TEMP] Temporary failure, try again later");
		pop3_resume(s);
		return;
	}
	pop3_auth_status(s, AUTH_FAIL);
}

void
pop3_open_done(struct pop3_session *s)
{
	struct pop3_job *job = &s->job;

	if (job->result == POP3_OPEN_OK && !s->d->stopping) {
		s->drop = job->drop;
		job->drop = NULL;
		pop3_auth_log(s, "ok");
		auth_session_free(&s->auth);
		pop3_set_state(s, POP3_ST_TRANSACTION);
		pop3_ok(s, "Logged in, %zu messages (%llu octets)",
		    s->drop->count, (unsigned long long)s->drop->size);
		pop3_resume(s);
		return;
	}
	pop3_maildrop_free(&job->drop);
	if (s->d->stopping) {
		pop3_err(s, "[SYS/TEMP] Server shutting down");
	} else if (job->result == POP3_OPEN_IN_USE) {
		log_info("sid=%s ip=%s user=%s login refused: maildrop in use",
		    s->c->sid, s->c->ip, s->account);
		pop3_err(s, "[IN-USE] Your mailbox is in use by another POP3 "
		    "session");
	} else {
		log_error("sid=%s ip=%s user=%s cannot open maildrop: %s",
		    s->c->sid, s->c->ip, s->account, job->err);
		pop3_err(s, "[SYS/TEMP] Your mailbox cannot be opened right now, "
		    "try again later");
	}
	auth_session_free(&s->auth);
	s->account[0] = '\0';
	pop3_resume(s);
}

/* Common start: lockout check, a fresh auth session. */
static int
pop3_auth_begin(struct pop3_session *s)
{
	if (authfail_locked(s->d->authfail,
	    (const struct sockaddr *)&s->c->peer) > 0) {
		log_info("sid=%s ip=%s login refused: too many failures",
		    s->c->sid, s->c->ip);
		pop3_err(s, "[SYS/TEMP] Too many failed logins from your "
		    "network, try again later");
		return -1;
	}
	s->auth = auth_session_new(s->d->auth, "pop", pop3_session_tls(s));
	if (s->auth == NULL) {
		pop3_err(s, "[SYS/TEMP] Out of memory");
		return -1;
	}
	return 0;
}

void
pop3_cmd_user(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	size_t n = cmd->restlen;

	/* A name too long to be valid is kept too long: PASS then fails. */
	if (n > sizeof(s->user) - 1)
		n = sizeof(s->user) - 1;
	memcpy(s->user, cmd->rest, n);
	s->user[n] = '\0';
	s->userlen = n;
	s->have_user = 1;
	pop3_ok(s, "Send your password");
}

void
pop3_cmd_pass(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	if (!s->have_user) {
		pop3_err(s, "Send USER first");
		pop3_session_error(s);
		return;
	}
	s->have_user = 0;
	if (pop3_auth_begin(s) < 0)
		return;
	pop3_auth_status(s, auth_login(s->auth, s->user, s->userlen,
	    cmd->rest, cmd->restlen));
}

void
pop3_cmd_auth(struct pop3_session *s, const struct pop3_cmd *cmd)
{
	const char *ir = NULL;
	size_t irlen = 0;

	s->have_user = 0;
	if (cmd->nargs == 0) {
		/* Not in RFC 5034, but Outlook asks: the mechanism list. */
		const char *m = auth_mechanisms(s->d->auth, 1);

		pop3_ok(s, "Mechanisms follow");
		while (*m != '\0') {
			size_t n = strcspn(m, " ");

			if (n > 0)
				pop3_line(s, "%.*s", (int)n, m);
			m += n;
			while (*m == ' ')
				m++;
		}
		pop3_line(s, ".");
		return;
	}
	if (cmd->nargs == 2) {
		ir = cmd->args[1].p;
		irlen = cmd->args[1].len;
	}
	if (pop3_auth_begin(s) < 0)
		return;
	pop3_auth_status(s, auth_start(s->auth, cmd->args[0].p,
	    cmd->args[0].len, ir, irlen));
}

void
pop3_sasl_line(struct pop3_session *s, const char *line, size_t len,
    int too_long)
{
	if (too_long) {
		pop3_auth_status(s, AUTH_BAD_INPUT);
		return;
	}
	pop3_auth_status(s, auth_step(s->auth, line, len));
}
