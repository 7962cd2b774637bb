/*
 * pop3_retr.c - the multi-line responses that can be large: RETR and
 * TOP stream the message file (LF -> CRLF, byte-stuffed by
 * pop3_stuff_feed) and LIST/UIDL walk the maildrop, a chunk at a time
 * as the client reads (CONN_EV_DRAINED), so a 50 MB message or a
 * 100,000-message maildrop never sits in memory.
 *
 * A RETR sets \Seen (on the pool) just before its terminating ".", so a
 * client that has read the whole message finds the flag set; TOP does
 * not.  Once "+OK" is sent a failure cannot be reported in-band: the
 * connection is cut, so a truncated message never looks complete.
 *
 * Input is paused while a response streams (pipelined commands wait in
 * the buffer, and a client that half-closes after "RETR 1 QUIT" still
 * gets the whole message and its QUIT); the stream's own timer drops a
 * client that stops reading for [pop3d] idle_timeout.
 */
#include "pop3d.h"
#include "../common/log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void
pop3_stream_abort(struct pop3_session *s)
{
	ev_timer_stop(s->d->loop, &s->stream.timer);
	if (s->stream.fd >= 0) {
		close(s->stream.fd);
		s->stream.fd = -1;
	}
}

static void
stream_on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pop3_session *s = w->data;

	(void)loop;
	(void)revents;
	if (s->c == NULL)
		return;
	log_info("sid=%s ip=%s user=%s client stopped reading, closing",
	    s->c->sid, s->c->ip, s->account);
	pop3_stream_abort(s);
	s->mode = POP3_MODE_WAIT;
	conn_abort(s->c);
}

static void
stream_begin(struct pop3_session *s)
{
	s->mode = POP3_MODE_STREAM;
	conn_pause(s->c);
	ev_timer_init(&s->stream.timer, stream_on_timeout,
	    (double)s->d->cfg.pop3d_idle_timeout,
	    (double)s->d->cfg.pop3d_idle_timeout);
	s->stream.timer.data = s;
	ev_timer_again(s->d->loop, &s->stream.timer);
}

/* The terminator is out: back to commands (or away, when stopping). */
static void
stream_end(struct pop3_session *s)
{
	ev_timer_stop(s->d->loop, &s->stream.timer);
	conn_write(s->c, "", 0);
	pop3_resume(s);
}

static void
stream_fail(struct pop3_session *s, const char *what)
{
	log_error("sid=%s ip=%s user=%s %s: %s", s->c->sid, s->c->ip,
	    s->account, what, errno ? strerror(errno) : "output full");
	pop3_stream_abort(s);
	s->mode = POP3_MODE_WAIT;	/* read no further command */
	conn_abort(s->c);
}

void
pop3_stream_start(struct pop3_session *s, size_t msg, int retr,
    uint64_t body_lines)
{
	struct pop3_stream *st = &s->stream;
	int fd, r;

	r = pop3_maildrop_msg_open(s->drop, msg, &fd);
	if (r < 0) {
		log_error("sid=%s ip=%s user=%s open message uid %u: %s",
		    s->c->sid, s->c->ip, s->account, s->drop->msgs[msg].uid,
		    mbox_index_error(s->drop->idx));
		pop3_err(s, "[SYS/TEMP] Cannot read message %zu now, try "
		    "again later", msg + 1);
		return;
	}
	if (r == 0) {
		pop3_err(s, "Message %zu was removed by another client since "
		    "you logged in", msg + 1);
		return;
	}
	st->kind = retr ? POP3_STREAM_RETR : POP3_STREAM_TOP;
	st->fd = fd;
	st->msg = msg;
	pop3_stuff_init(&st->st, !retr, body_lines);
	if (retr)
		pop3_ok(s, "%llu octets",
		    (unsigned long long)s->drop->msgs[msg].size);
	else
		pop3_ok(s, "Top of message follows");
	stream_begin(s);
	pop3_stream_pump(s);
}

void
pop3_listing_start(struct pop3_session *s, int uidl)
{
	s->stream.kind = uidl ? POP3_STREAM_UIDL : POP3_STREAM_LIST;
	s->stream.msg = 0;
	stream_begin(s);
	pop3_stream_pump(s);
}

static void
pump_listing(struct pop3_session *s)
{
	struct pop3_maildrop *drop = s->drop;
	struct pop3_stream *st = &s->stream;
	struct buf *o = &s->c->out;
	char uidl[17];
	int r;

	for (; st->msg < drop->count && o->len < POP3_STREAM_HIGH; st->msg++) {
		const struct pop3_msg *m = &drop->msgs[st->msg];

		if (m->deleted)
			continue;
		if (st->kind == POP3_STREAM_UIDL) {
			pop3_maildrop_uidl(drop, st->msg, uidl);
			r = buf_printf(o, "%zu %s\r\n", st->msg + 1, uidl);
		} else {
			r = buf_printf(o, "%zu %llu\r\n", st->msg + 1,
			    (unsigned long long)m->size);
		}
		if (r < 0) {
			errno = 0;
			stream_fail(s, "listing");
			return;
		}
	}
	if (st->msg == drop->count) {
		if (buf_append(o, ".\r\n", 3) < 0) {
			errno = 0;
			stream_fail(s, "listing");
			return;
		}
		stream_end(s);
		return;
	}
	conn_write(s->c, "", 0);
}

/* The whole message (or TOP's part of it) is in the output buffer. */
static void
message_sent(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	struct pop3_msg *m = &s->drop->msgs[st->msg];

	pop3_stream_abort(s);
	if (st->kind == POP3_STREAM_RETR) {
		s->nretr++;
		s->retr_bytes += m->size;
		if (!m->seen) {
			/* \Seen first, then the "." that ends the response. */
			s->job.msg = st->msg;
			pop3_job_submit(s, POP3_JOB_SEEN);
			return;
		}
	}
	pop3_seen_done(s);
}

void
pop3_seen_done(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;

	if (st->kind == POP3_STREAM_RETR && s->job.kind == POP3_JOB_SEEN &&
	    s->job.result < 0 && s->job.err[0] != '\0') {
		/* The client got its message; the flag waits for next time. */
		log_error("sid=%s ip=%s user=%s %s", s->c->sid, s->c->ip,
		    s->account, s->job.err);
		s->job.err[0] = '\0';
	}
	if (pop3_stuff_finish(&st->st, &s->c->out) < 0) {
		errno = 0;
		stream_fail(s, "end of message");
		return;
	}
	stream_end(s);
}

void
pop3_stream_pump(struct pop3_session *s)
{
	struct pop3_stream *st = &s->stream;
	struct conn *c = s->c;
	char chunk[POP3_STREAM_CHUNK];
	ssize_t n;

	if (c == NULL || c->closing || c->closed || s->mode != POP3_MODE_STREAM)
		return;
	/* Output moving is activity: the clock starts again. */
	ev_timer_again(s->d->loop, &st->timer);
	if (st->kind == POP3_STREAM_LIST || st->kind == POP3_STREAM_UIDL) {
		pump_listing(s);
		return;
	}
	while (c->out.len < POP3_STREAM_HIGH && !st->st.done) {
		n = read(st->fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			stream_fail(s, "read message");
			return;
		}
		if (n == 0) {
			message_sent(s);
			return;
		}
		if (pop3_stuff_feed(&st->st, chunk, (size_t)n, &c->out) < 0) {
			errno = 0;
			stream_fail(s, "message output");
			return;
		}
	}
	if (st->st.done) {
		message_sent(s);
		return;
	}
	conn_write(c, "", 0);
}
