/*
 * conn.c - the connection object under every protocol (see conn.h).
 *
 * Rules kept here so that no protocol has to remember them:
 *  - reading stops while the protocol is paused, while the input buffer
 *    is full, and while too much output is waiting for a slow reader;
 *  - the conn is never freed inside a callback: conn_close() only marks
 *    it, and the write watcher finishes the job on the next loop turn;
 *  - STARTTLS drops any plaintext the client sent after the command.
 */
#include "conn.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/err.h>

#define READ_CHUNK 16384

static void conn_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void conn_on_write(struct ev_loop *loop, ev_io *w, int revents);
static void conn_on_timer(struct ev_loop *loop, ev_timer *w, int revents);

struct conn *
conn_new(struct ev_loop *loop, int fd, const struct sockaddr *peer,
    socklen_t peerlen, size_t in_max, size_t out_max, conn_cb cb, void *arg)
{
	struct conn *c = calloc(1, sizeof(*c));
	socklen_t ll = sizeof(c->local);

	if (c == NULL)
		return NULL;
	c->loop = loop;
	c->fd = fd;
	c->cb = cb;
	c->arg = arg;
	c->timeout = 300;
	buf_init(&c->in, in_max);
	buf_init(&c->out, out_max);
	c->out_high = 256 * 1024;
	if (peer->sa_family == AF_INET && peerlen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)peer;

		inet_ntop(AF_INET, &s->sin_addr, c->ip, sizeof(c->ip));
		c->port = ntohs(s->sin_port);
	} else if (peer->sa_family == AF_INET6 &&
	    peerlen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)peer;

		if (IN6_IS_ADDR_V4MAPPED(&s->sin6_addr))
			inet_ntop(AF_INET, &s->sin6_addr.s6_addr[12], c->ip,
			    sizeof(c->ip));
		else
			inet_ntop(AF_INET6, &s->sin6_addr, c->ip, sizeof(c->ip));
		c->port = ntohs(s->sin6_port);
	} else {
		strlcpy_checked(c->ip, "unknown", sizeof(c->ip));
	}
	getsockname(fd, (struct sockaddr *)&c->local, &ll);
	if (peerlen <= sizeof(c->peer))
		memcpy(&c->peer, peer, peerlen);
	log_new_session_id(c->sid);
	ev_io_init(&c->rw, conn_on_read, fd, EV_READ);
	ev_io_init(&c->ww, conn_on_write, fd, EV_WRITE);
	ev_init(&c->timer, conn_on_timer);
	c->rw.data = c->ww.data = c->timer.data = c;
	return c;
}

void
conn_set_timeout(struct conn *c, double seconds)
{
	c->timeout = seconds;
	c->timer.repeat = seconds;
	if (ev_is_active(&c->timer))
		ev_timer_again(c->loop, &c->timer);
}

static void
conn_emit(struct conn *c, enum conn_event ev)
{
	if (c->closed)
		return;
	c->in_cb++;
	c->cb(c, ev, c->arg);
	c->in_cb--;
}

/* Tear down the socket and tell the protocol, once. */
static void
conn_shutdown(struct conn *c)
{
	if (c->closed)
		return;
	ev_io_stop(c->loop, &c->rw);
	ev_io_stop(c->loop, &c->ww);
	ev_timer_stop(c->loop, &c->timer);
	if (c->ssl != NULL) {
		if (c->tls == CONN_TLS_ON)
			SSL_shutdown(c->ssl);	/* best effort, non-blocking */
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	ERR_clear_error();
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	conn_emit(c, CONN_EV_CLOSED);
	c->closed = 1;
}

static void
conn_maybe_free(struct conn *c)
{
	if (!c->closed || c->in_cb > 0)
		return;
	if (c->on_free != NULL)
		c->on_free(c);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/* Decide whether the read watcher should run. */
static void
conn_update_read(struct conn *c)
{
	int want;

	if (c->closed)
		return;
	if (c->tls == CONN_TLS_HANDSHAKE)
		return;		/* handshake manages its own watchers */
	want = !c->paused && !c->eof && !c->closing &&
	    c->tls != CONN_TLS_WAIT_DRAIN && c->in.len < c->in.max &&
	    c->out.len <= c->out_high;
	if (want && !ev_is_active(&c->rw)) {
		ev_io_start(c->loop, &c->rw);
		/* TLS may hold decrypted bytes the fd will not signal. */
		if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
			ev_feed_event(c->loop, &c->rw, EV_READ);
	} else if (!want && ev_is_active(&c->rw)) {
		ev_io_stop(c->loop, &c->rw);
	}
}

static void
conn_tls_record(struct conn *c)
{
	const SSL_CIPHER *ci = SSL_get_current_cipher(c->ssl);

	strlcpy_checked(c->tls_version, SSL_get_version(c->ssl),
	    sizeof(c->tls_version));
	strlcpy_checked(c->tls_cipher, ci ? SSL_CIPHER_get_name(ci) : "?",
	    sizeof(c->tls_cipher));
	c->tls_bits = ci ? SSL_CIPHER_get_bits(ci, NULL) : 0;
}

static void
conn_handshake(struct conn *c)
{
	int r, err;

	ERR_clear_error();
	r = SSL_accept(c->ssl);
	if (r == 1) {
		c->tls = CONN_TLS_ON;
		conn_tls_record(c);
		ev_io_stop(c->loop, &c->ww);
		ev_timer_again(c->loop, &c->timer);
		log_debug("sid=%s ip=%s tls established version=%s cipher=%s",
		    c->sid, c->ip, c->tls_version, c->tls_cipher);
		conn_emit(c, CONN_EV_TLS_READY);
		conn_update_read(c);
		if (c->out.len > 0)
			ev_io_start(c->loop, &c->ww);
		return;
	}
	err = SSL_get_error(c->ssl, r);
	if (err == SSL_ERROR_WANT_READ) {
		ev_io_stop(c->loop, &c->ww);
		ev_io_start(c->loop, &c->rw);
		return;
	}
	if (err == SSL_ERROR_WANT_WRITE) {
		ev_io_start(c->loop, &c->ww);
		return;
	}
	{
		char e[256];
		unsigned long code = ERR_peek_last_error();

		ERR_error_string_n(code, e, sizeof(e));
		log_info("sid=%s ip=%s tls handshake failed: %s", c->sid,
		    c->ip, code ? e : "connection closed");
	}
	conn_shutdown(c);
}

static void
conn_begin_handshake(struct conn *c)
{
	c->ssl = SSL_new(c->ssl_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		log_error("sid=%s ip=%s cannot create TLS session", c->sid, c->ip);
		conn_shutdown(c);
		return;
	}
	c->tls = CONN_TLS_HANDSHAKE;
	ev_io_stop(c->loop, &c->rw);
	conn_handshake(c);
}

void
conn_start(struct conn *c, SSL_CTX *implicit_tls)
{
	ev_timer_set(&c->timer, 0., c->timeout);
	ev_timer_again(c->loop, &c->timer);
	if (implicit_tls != NULL) {
		c->ssl_ctx = implicit_tls;
		c->in_cb++;
		conn_begin_handshake(c);
		c->in_cb--;
		return;
	}
	conn_update_read(c);
}

/*
 * Read what is available into c->in.  Returns 1 if bytes were added,
 * 0 if none, -1 on EOF or error (c->eof set).
 */
static int
conn_fill(struct conn *c)
{
	char tmp[READ_CHUNK];
	int got = 0;

	while (c->in.len < c->in.max) {
		size_t want = c->in.max - c->in.len;
		ssize_t n;

		if (want > sizeof(tmp))
			want = sizeof(tmp);
		if (c->ssl != NULL) {
			int r, err;

			ERR_clear_error();
			r = SSL_read(c->ssl, tmp, (int)want);
			if (r <= 0) {
				err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_READ)
					break;
				if (err == SSL_ERROR_WANT_WRITE) {
					c->tls_read_wants_write = 1;
					ev_io_start(c->loop, &c->ww);
					break;
				}
				c->eof = 1;
				return got ? 1 : -1;
			}
			n = r;
		} else {
			n = read(c->fd, tmp, want);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				c->eof = 1;
				return got ? 1 : -1;
			}
			if (n == 0) {
				c->eof = 1;
				return got ? 1 : -1;
			}
		}
		if (buf_append(&c->in, tmp, (size_t)n) < 0) {
			c->eof = 1;	/* cannot happen: want <= space */
			return -1;
		}
		got = 1;
		if ((size_t)n < want && c->ssl == NULL)
			break;
	}
	return got;
}

static void
conn_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int r = 0;

	(void)loop;
	c->in_cb++;
	if (c->tls == CONN_TLS_HANDSHAKE) {
		conn_handshake(c);
		goto out;
	}
	if (c->closing)
		goto out;
	if (revents & EV_READ)
		r = conn_fill(c);
	if (r > 0)
		ev_timer_again(c->loop, &c->timer);
	if (!c->paused && (c->in.len > 0 || (revents & EV_CUSTOM)))
		conn_emit(c, CONN_EV_DATA);
	/* An idle connection should hold no buffer memory. */
	if (c->in.len == 0)
		buf_shrink(&c->in);
	if (c->eof && !c->paused && !c->closed) {
		/*
		 * Peer done sending: what it sent has been handled; flush
		 * the replies (it may only have shut down its write side).
		 */
		conn_close(c);
		goto out;
	}
	conn_update_read(c);
out:
	c->in_cb--;
	conn_maybe_free(c);
}

/* 1 drained, 0 more to send later, -1 error. */
static int
conn_flush(struct conn *c)
{
	while (c->out.len > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r, err;

			ERR_clear_error();
			r = SSL_write(c->ssl, c->out.data,
			    c->out.len > 1 << 30 ? 1 << 30 : (int)c->out.len);
			if (r <= 0) {
				err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_WRITE ||
				    err == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			n = r;
		} else {
			n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
			if (n < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				return -1;
			}
		}
		buf_consume(&c->out, (size_t)n);
	}
	return 1;
}

static void
conn_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	int r;

	(void)loop;
	(void)revents;
	c->in_cb++;
	if (c->closed)
		goto out;
	if (c->tls == CONN_TLS_HANDSHAKE) {
		conn_handshake(c);
		goto out;
	}
	if (c->tls_read_wants_write) {
		c->tls_read_wants_write = 0;
		ev_feed_event(c->loop, &c->rw, EV_READ);
	}
	r = conn_flush(c);
	if (r < 0) {
		conn_shutdown(c);
		goto out;
	}
	if (r == 0)
		goto out;
	ev_io_stop(c->loop, &c->ww);
	buf_shrink(&c->out);
	if (c->closing) {
		conn_shutdown(c);
		goto out;
	}
	if (c->tls == CONN_TLS_WAIT_DRAIN) {
		conn_begin_handshake(c);
		goto out;
	}
	conn_emit(c, CONN_EV_DRAINED);
	conn_update_read(c);
out:
	c->in_cb--;
	conn_maybe_free(c);
}

static void
conn_on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct conn *c = w->data;

	(void)loop;
	(void)revents;
	c->in_cb++;
	if (c->closing || c->tls == CONN_TLS_HANDSHAKE) {
		conn_shutdown(c);
	} else {
		conn_emit(c, CONN_EV_TIMEOUT);
		if (!c->closing)
			conn_close(c);
		/* Give the goodbye a little time to drain, then drop. */
		ev_timer_set(&c->timer, 10., 10.);
		ev_timer_again(c->loop, &c->timer);
	}
	c->in_cb--;
	conn_maybe_free(c);
}

int
conn_write(struct conn *c, const void *p, size_t n)
{
	if (c->closed || c->closing)
		return -1;
	if (buf_append(&c->out, p, n) < 0)
		return -1;
	if (c->tls != CONN_TLS_HANDSHAKE && !ev_is_active(&c->ww))
		ev_io_start(c->loop, &c->ww);
	return 0;
}

int
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (c->closed || c->closing)
		return -1;
	va_start(ap, fmt);
	r = buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (r == 0 && c->tls != CONN_TLS_HANDSHAKE && !ev_is_active(&c->ww))
		ev_io_start(c->loop, &c->ww);
	return r;
}

int
conn_getline(struct conn *c, size_t max, struct buf *line, int *bare_lf)
{
	for (;;) {
		const char *d = c->in.data;
		const char *nl = c->in.len ? memchr(d, '\n', c->in.len) : NULL;
		size_t len, linelen;
		int crlf;

		if (c->line_skipping) {
			if (nl == NULL) {
				buf_reset(&c->in);
				return 0;
			}
			buf_consume(&c->in, (size_t)(nl - d) + 1);
			c->line_skipping = 0;
			continue;
		}
		if (nl == NULL) {
			if (c->in.len > max + 1) {
				c->line_skipping = 1;
				buf_reset(&c->in);
				return -2;
			}
			return 0;
		}
		len = (size_t)(nl - d);
		crlf = len > 0 && d[len - 1] == '\r';
		linelen = crlf ? len - 1 : len;
		if (linelen > max) {
			buf_consume(&c->in, len + 1);
			return -2;
		}
		if (buf_set(line, d, linelen) < 0)
			return -1;
		*bare_lf = !crlf;
		buf_consume(&c->in, len + 1);
		return 1;
	}
}

void
conn_pause(struct conn *c)
{
	c->paused = 1;
	ev_timer_stop(c->loop, &c->timer);
	conn_update_read(c);
}

void
conn_resume(struct conn *c)
{
	if (c->closed)
		return;
	c->paused = 0;
	ev_timer_again(c->loop, &c->timer);
	conn_update_read(c);
	/* Pipelined input may already be buffered: hand it over. */
	ev_feed_event(c->loop, &c->rw, EV_CUSTOM);
}

void
conn_starttls(struct conn *c, SSL_CTX *ctx)
{
	buf_reset(&c->in);
	c->line_skipping = 0;
	c->ssl_ctx = ctx;
	c->tls = CONN_TLS_WAIT_DRAIN;
	ev_io_stop(c->loop, &c->rw);
	ev_io_start(c->loop, &c->ww);
}

void
conn_close(struct conn *c)
{
	if (c->closed || c->closing)
		return;
	c->closing = 1;
	ev_io_stop(c->loop, &c->rw);
	ev_io_start(c->loop, &c->ww);
}

void
conn_abort(struct conn *c)
{
	if (c->closed)
		return;
	buf_reset(&c->out);
	c->closing = 1;
	ev_io_stop(c->loop, &c->rw);
	ev_io_start(c->loop, &c->ww);
}

size_t
conn_out_pending(const struct conn *c)
{
	return c->out.len;
}
