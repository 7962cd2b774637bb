/*
 * pop3_session.c - one POP3 connection: accept, greeting, the read loop
 * (command lines, or SASL lines during AUTH), replies, state changes,
 * the jobs a session runs on the thread pool, and the end of the
 * session.  Commands live behind pop3_commands.c's table.
 *
 * A dropped connection never applies deletions: only QUIT in the
 * TRANSACTION state enters UPDATE (RFC 1939 section 6).
 */
#include "pop3d.h"
#include "../common/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void pop3_on_conn(struct conn *c, enum conn_event ev, void *arg);
static void pop3_read_commands(struct pop3_session *s);

static const char *state_names[] = { "authorization", "transaction",
    "update" };

void
pop3_set_state(struct pop3_session *s, enum pop3_state st)
{
	if (s->state != st && log_debug_enabled() && s->c != NULL)
		log_debug("sid=%s ip=%s state %s -> %s", s->c->sid, s->c->ip,
		    state_names[s->state], state_names[st]);
	s->state = st;
	if (s->c != NULL)
		conn_set_timeout(s->c, st == POP3_ST_AUTHORIZATION ?
		    POP3_PREAUTH_TIMEOUT : (double)s->d->cfg.pop3d_idle_timeout);
}

int
pop3_session_tls(const struct pop3_session *s)
{
	return s->c != NULL && s->c->tls == CONN_TLS_ON;
}

static void
pop3_vreply(struct pop3_session *s, const char *prefix, const char *fmt,
    va_list ap)
{
	struct buf *o;

	if (s->c == NULL || s->c->closing || s->c->closed)
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
pop3_ok(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, "+OK ", fmt, ap);
	va_end(ap);
}

void
pop3_err(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, "-ERR ", fmt, ap);
	va_end(ap);
}

void
pop3_line(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pop3_vreply(s, "", fmt, ap);
	va_end(ap);
}

void
pop3_session_error(struct pop3_session *s)
{
	if (++s->bad_in_row >= POP3_MAX_BAD && s->c != NULL) {
		log_info("sid=%s ip=%s too many bad commands", s->c->sid,
		    s->c->ip);
		pop3_err(s, "Too many invalid commands, closing");
		conn_close(s->c);
	}
}

void
pop3_wait(struct pop3_session *s)
{
	s->mode = POP3_MODE_WAIT;
	conn_pause(s->c);
}

void
pop3_resume(struct pop3_session *s)
{
	s->mode = POP3_MODE_COMMAND;
	if (s->c == NULL)
		return;
	if (s->d->stopping) {
		/* Shutting down: the answer just given was the last one. */
		conn_close(s->c);
		return;
	}
	/* Pipelined commands already buffered are handed over again. */
	if (s->c->paused)
		conn_resume(s->c);
}

/* Close without UPDATE (timeouts, errors, shutdown). */
void
pop3_bye(struct pop3_session *s)
{
	if (s->c != NULL)
		conn_close(s->c);
}

static void
pop3_session_unlink(struct pop3_session *s)
{
	struct pop3d *d = s->d;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		d->sessions = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	d->nsessions--;
}

static void
pop3_session_free(struct pop3_session *s)
{
	if (s->delayed_fail)
		ev_timer_stop(s->d->loop, &s->delay);
	auth_session_free(&s->auth);
	pop3_stream_abort(s);
	pop3_maildrop_free(&s->job.drop);
	pop3_maildrop_free(&s->drop);	/* unlocks: deletions not applied */
	buf_free(&s->line);
	explicit_bzero(s->user, sizeof(s->user));
	free(s);
}

/* ---- jobs on the pool ---- */

static void
pop3_job_work(struct pool_job *pj)
{
	struct pop3_job *job = (struct pop3_job *)pj;
	struct pop3_maildrop *drop = job->s->drop;

	job->err[0] = '\0';
	switch (job->kind) {
	case POP3_JOB_OPEN:
		job->result = pop3_maildrop_open(job->userdir, &job->drop,
		    job->err, sizeof(job->err));
		break;
	case POP3_JOB_SEEN:
		job->result = pop3_maildrop_seen(drop, job->msg, job->err,
		    sizeof(job->err));
		break;
	case POP3_JOB_UPDATE:
		job->result = pop3_maildrop_update(drop, &job->removed,
		    job->err, sizeof(job->err));
		break;
	}
}

static void
pop3_job_done(struct pool_job *pj)
{
	struct pop3_job *job = (struct pop3_job *)pj;
	struct pop3_session *s = job->s;

	s->job_running = 0;
	if (s->orphaned) {
		/* The client left while we worked: nothing to answer. */
		pop3_session_free(s);
		return;
	}
	switch (job->kind) {
	case POP3_JOB_OPEN:
		pop3_open_done(s);
		break;
	case POP3_JOB_SEEN:
		pop3_seen_done(s);
		break;
	case POP3_JOB_UPDATE:
		pop3_update_done(s);
		break;
	}
}

/*
 * Run a job; input stays paused until its done function answers.  The
 * session's maildrop is used by the pool thread meanwhile and by nothing
 * else (the session reads no command and the conn cannot free it).
 */
void
pop3_job_submit(struct pop3_session *s, enum pop3_job_kind kind)
{
	s->job.pj.work = pop3_job_work;
	s->job.pj.done = pop3_job_done;
	s->job.s = s;
	s->job.kind = kind;
	s->job_running = 1;
	pop3_wait(s);
	pool_submit(s->d->pool, &s->job.pj);
}

/* ---- the connection ---- */

static void
pop3_greet(struct pop3_session *s)
{
	pop3_ok(s, "Buzon POP3 ready");
}

void
pop3_session_accept(struct pop3d *d, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	struct pop3_session *s;
	struct conn *c;

	c = server_conn_new(&d->srv, fd, peer, peerlen, 16 * 1024,
	    POP3_OUT_MAX,
	    "-ERR [SYS/TEMP] Too many connections from your address\r\n");
	if (c == NULL)
		return;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		conn_abort(c);
		return;
	}
	buf_init(&s->line, POP3_AUTH_LINE_MAX + 1);
	s->stream.fd = -1;
	ev_init(&s->stream.timer, NULL);
	c->cb = pop3_on_conn;
	c->arg = s;
	s->d = d;
	s->c = c;
	s->kind = l->spec.kind;
	s->state = POP3_ST_AUTHORIZATION;
	s->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = s;
	d->sessions = s;
	d->nsessions++;
	if (server_conn_begin(c, l, d->tls, POP3_PREAUTH_TIMEOUT))
		pop3_greet(s);
}

static void
pop3_read_commands(struct pop3_session *s)
{
	struct conn *c = s->c;

	while (s->c != NULL && !c->closing && !c->closed && c->in.len > 0) {
		int bare_lf = 0, r;

		if (s->mode == POP3_MODE_WAIT || s->mode == POP3_MODE_STREAM ||
		    s->state == POP3_ST_UPDATE)
			return;
		r = conn_getline(c, POP3_AUTH_LINE_MAX, &s->line, &bare_lf);
		if (r == 0)
			return;
		if (r == -1) {		/* cannot happen: line holds max */
			conn_abort(c);
			return;
		}
		if (s->mode == POP3_MODE_SASL) {
			pop3_sasl_line(s, s->line.data, r == -2 ? 0 :
			    s->line.len, r == -2);
			continue;
		}
		if (r == -2) {
			pop3_err(s, "Line too long");
			pop3_session_error(s);
			continue;
		}
		pop3_dispatch(s, s->line.data, s->line.len);
	}
}

static void
pop3_on_conn(struct conn *c, enum conn_event ev, void *arg)
{
	struct pop3_session *s = arg;

	switch (ev) {
	case CONN_EV_DATA:
		pop3_read_commands(s);
		break;
	case CONN_EV_TLS_READY:
		if (listen_kind_is_tls(s->kind))
			pop3_greet(s);
		/* After STLS the client asks for CAPA again (RFC 2595). */
		break;
	case CONN_EV_TIMEOUT:
		/* RFC 1939 section 3: no UPDATE and no response. */
		log_info("sid=%s ip=%s autologout in state %s", c->sid, c->ip,
		    state_names[s->state]);
		conn_abort(c);
		break;
	case CONN_EV_DRAINED:
		/* At the end, pop3_resume() hands over pipelined input. */
		if (s->mode == POP3_MODE_STREAM)
			pop3_stream_pump(s);
		break;
	case CONN_EV_CLOSED:
		log_info("sid=%s ip=%s disconnect user=%s state=%s retr=%u "
		    "bytes=%llu", c->sid, c->ip,
		    s->account[0] ? s->account : "-", state_names[s->state],
		    s->nretr, (unsigned long long)s->retr_bytes);
		s->c = NULL;
		pop3_session_unlink(s);
		pop3_stream_abort(s);
		if (s->job_running) {
			/* The pool still works on our maildrop: free later. */
			s->orphaned = 1;
			break;
		}
		/* An in-flight password check is cancelled by auth_session_free. */
		pop3_session_free(s);
		break;
	}
}

/*
 * SIGTERM: idle sessions are closed (POP3 has no unsolicited
 * responses), a session waiting on a password check or a failure delay
 * is told why, a running job or RETR finishes first.  Deletions are
 * never applied on the way out (only a QUIT does that).
 */
void
pop3_session_shutdown_all(struct pop3d *d)
{
	struct pop3_session *s, *next;

	for (s = d->sessions; s != NULL; s = next) {
		next = s->next;
		if (s->c == NULL)
			continue;
		switch (s->mode) {
		case POP3_MODE_COMMAND:
			conn_close(s->c);
			break;
		case POP3_MODE_SASL:
			auth_session_free(&s->auth);
			pop3_err(s, "[SYS/TEMP] Server shutting down");
			conn_close(s->c);
			break;
		case POP3_MODE_WAIT:
			if (s->job_running)
				break;		/* its done function closes */
			if (s->delayed_fail) {
				ev_timer_stop(d->loop, &s->delay);
				s->delayed_fail = 0;
			}
			auth_session_free(&s->auth);
			pop3_err(s, "[SYS/TEMP] Server shutting down");
			conn_close(s->c);
			break;
		case POP3_MODE_STREAM:
			break;		/* closes after the last line */
		}
	}
}
