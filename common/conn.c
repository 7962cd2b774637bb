/*
 * conn.c - the connection object under every protocol (see conn.h).
 *
 * Rules kept here so that no protocol has to remember them:
 *  - reading stops while the protocol is paused, while the input buffer
 *    is full, and while too much output is waiting for a slow reader;
 *  - the conn is never freed inside a callback: conn_close() only marks
 *    it, and the write watcher finishes the job on the next loop turn;
 *  - STARTTLS drops any plaintext the client sent after the command;
 *  - with COMPRESS, every write ends in a deflate sync flush (a reply
 *    never waits inside zlib), and compressed input held back while
 *    c->in is full is inflated as soon as there is room, without
 *    waiting for the socket (no read event will come for it).
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
#define ZLIB_CONST
#include <zlib.h>

#define READ_CHUNK 16384

/*
 * Deflate memory is (1 << (wbits + 2)) + (1 << (memlevel + 9)) bytes:
 * 128 KiB here instead of zlib's default 256 KiB.  On IMAP traffic
 * (FETCH lists, base64 bodies) the smaller window costs ~1%; on long
 * plain text ~15%.  Inflate must take the client's window, whatever it
 * is: RFC 4978 raw deflate, 32 KiB.
 */
#define DEFLATE_WBITS 14
#define DEFLATE_MEMLEVEL 7
#define INFLATE_WBITS 15
#define DEFLATE_IN_CHUNK 32768	/* plaintext per deflate() call */
#define ZOUT_MAX (256 * 1024)	/* one chunk's output plus zlib's pending */

struct conn_zlib {
	z_stream os;		/* deflate: c->out -> zout */
	z_stream is;		/* inflate: socket -> c->in */
	struct buf zout;	/* compressed, not yet sent */
	struct buf zin;		/* received, not inflated: c->in was full */
	size_t plain;		/* head of c->out queued before the start */
	int in_more;		/* inflate filled its output: may hold more */
	int in_end;		/* the client ended its stream (BFINAL) */
};

static void conn_on_read(struct ev_loop *loop, ev_io *w, int revents);
static void conn_on_write(struct ev_loop *loop, ev_io *w, int revents);
static void conn_on_timer(struct ev_loop *loop, ev_timer *w, int revents);
static void conn_z_free(struct conn *c);

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
	conn_z_free(c);
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
	conn_z_free(c);
	buf_free(&c->in);
	buf_free(&c->out);
	free(c);
}

/*
 * Compression.  zlib state exists only between conn_compress_start()
 * and the end of the connection.
 */

/* Compressed input waits: in zin, or inside zlib (output was full). */
static int
conn_backlog(const struct conn *c)
{
	return c->z != NULL && (c->z->zin.len > 0 || c->z->in_more);
}

static void
conn_z_free(struct conn *c)
{
	struct conn_zlib *z = c->z;

	if (z == NULL)
		return;
	log_debug("sid=%s ip=%s compression end in=%lu/%lu out=%lu/%lu",
	    c->sid, c->ip, z->is.total_in, z->is.total_out,
	    z->os.total_in, z->os.total_out);
	deflateEnd(&z->os);
	inflateEnd(&z->is);
	buf_free(&z->zin);
	buf_free(&z->zout);
	free(z);
	c->z = NULL;
}

/*
 * Inflate p/n into c->in while c->in has room.  Returns the bytes of p
 * used (the rest must wait for room), or -1 on a corrupt stream.  zlib
 * hands out every byte it can decode at once, so a client's partial or
 * sync flush is answered without waiting for more input.
 */
static ssize_t
conn_inflate_from(struct conn *c, const char *p, size_t n)
{
	struct conn_zlib *z = c->z;
	char tmp[READ_CHUNK];
	size_t used = 0;

	while (c->in.len < c->in.max && (used < n || z->in_more) &&
	    !z->in_end) {
		size_t room = c->in.max - c->in.len, made;
		int zr;

		if (room > sizeof(tmp))
			room = sizeof(tmp);
		z->is.next_in = used < n ? (const Bytef *)p + used : NULL;
		z->is.avail_in = (uInt)(n - used);
		z->is.next_out = (Bytef *)tmp;
		z->is.avail_out = (uInt)room;
		zr = inflate(&z->is, Z_SYNC_FLUSH);
		used = n - z->is.avail_in;
		made = room - z->is.avail_out;
		z->in_more = z->is.avail_out == 0 && zr == Z_OK;
		if (made > 0 && buf_append(&c->in, tmp, made) < 0)
			return -1;	/* cannot happen: made <= room */
		if (zr == Z_STREAM_END)
			z->in_end = 1;	/* nothing may follow (checked by caller) */
		else if (zr == Z_BUF_ERROR)
			break;		/* no progress possible: need input */
		else if (zr != Z_OK)
			return -1;
	}
	return (ssize_t)used;
}

/*
 * The peer's compressed stream is unusable: say why, drop what is left,
 * and treat it as the end of input (what came before is still handled
 * and answered, then the connection closes).
 */
static void
conn_inflate_failed(struct conn *c, const char *why)
{
	log_info("sid=%s ip=%s compressed input rejected: %s", c->sid, c->ip,
	    why);
	buf_reset(&c->z->zin);
	c->z->in_more = 0;
	c->eof = 1;
}

static const char *
conn_inflate_error(const struct conn *c)
{
	return c->z->is.msg != NULL ? c->z->is.msg : "corrupt deflate data";
}

/* Received bytes in p/n: plaintext into c->in, or through inflate. */
static int
conn_take(struct conn *c, const char *p, size_t n)
{
	struct conn_zlib *z = c->z;
	ssize_t used;

	if (z == NULL)
		return buf_append(&c->in, p, n);
	if (z->in_end) {
		conn_inflate_failed(c, "data after the end of the deflate stream");
		return -1;
	}
	used = conn_inflate_from(c, p, n);
	if (used < 0) {
		conn_inflate_failed(c, conn_inflate_error(c));
		return -1;
	}
	if ((size_t)used < n && z->in_end) {
		conn_inflate_failed(c, "data after the end of the deflate stream");
		return -1;
	}
	if ((size_t)used < n && buf_append(&z->zin, p + used, n - used) < 0) {
		conn_inflate_failed(c, "input backlog full");	/* cannot happen */
		return -1;
	}
	return 0;
}

/* Move held-back compressed input into c->in as far as room allows. */
static int
conn_inflate_backlog(struct conn *c)
{
	struct conn_zlib *z = c->z;
	ssize_t used;

	if (!conn_backlog(c) || c->in.len >= c->in.max)
		return 0;
	used = conn_inflate_from(c, z->zin.data, z->zin.len);
	if (used < 0) {
		conn_inflate_failed(c, conn_inflate_error(c));
		return -1;
	}
	buf_consume(&z->zin, (size_t)used);
	if (z->in_end && z->zin.len > 0) {
		conn_inflate_failed(c, "data after the end of the deflate stream");
		return -1;
	}
	if (z->zin.len == 0)
		buf_shrink(&z->zin);
	return 0;
}

/*
 * Compress the head of c->out (at most DEFLATE_IN_CHUNK) into zout.  The
 * chunk that empties c->out ends in Z_SYNC_FLUSH, so once c->out is
 * empty everything queued is in zout, byte-aligned and decodable.
 */
static int
conn_deflate_chunk(struct conn *c)
{
	struct conn_zlib *z = c->z;
	char tmp[READ_CHUNK];
	size_t chunk = c->out.len > DEFLATE_IN_CHUNK ? DEFLATE_IN_CHUNK :
	    c->out.len;
	int flush = chunk == c->out.len ? Z_SYNC_FLUSH : Z_NO_FLUSH;

	z->os.next_in = (const Bytef *)c->out.data;
	z->os.avail_in = (uInt)chunk;
	do {
		size_t made;

		z->os.next_out = (Bytef *)tmp;
		z->os.avail_out = sizeof(tmp);
		if (deflate(&z->os, flush) == Z_STREAM_ERROR) {
			log_error("sid=%s ip=%s deflate failed", c->sid, c->ip);
			return -1;
		}
		made = sizeof(tmp) - z->os.avail_out;
		if (made > 0 && buf_append(&z->zout, tmp, made) < 0) {
			log_error("sid=%s ip=%s deflate output over %d bytes",
			    c->sid, c->ip, ZOUT_MAX);
			return -1;
		}
	} while (z->os.avail_out == 0);
	/* avail_out left over means zlib took all the input */
	buf_consume(&c->out, chunk - z->os.avail_in);
	return 0;
}

/*
 * May the connection take more input now?  Not while the protocol is
 * paused, after the end, during TLS set-up, with c->in full, or while
 * too much output waits for a client that does not read its replies.
 */
static int
conn_may_take_input(const struct conn *c)
{
	return !c->paused && !c->eof && !c->closing &&
	    c->tls != CONN_TLS_WAIT_DRAIN && c->in.len < c->in.max &&
	    conn_out_pending(c) <= c->out_high;
}

/* Decide whether the read watcher should run. */
static void
conn_update_read(struct conn *c)
{
	int want, backlog;

	if (c->closed)
		return;
	if (c->tls == CONN_TLS_HANDSHAKE)
		return;		/* handshake manages its own watchers */
	want = conn_may_take_input(c);
	/* Inflate what is held back before reading more. */
	backlog = want && conn_backlog(c);
	if (backlog)
		want = 0;
	if (want && !ev_is_active(&c->rw)) {
		ev_io_start(c->loop, &c->rw);
		/* TLS may hold decrypted bytes the fd will not signal. */
		if (c->ssl != NULL && SSL_pending(c->ssl) > 0)
			ev_feed_event(c->loop, &c->rw, EV_READ);
	} else if (!want && ev_is_active(&c->rw)) {
		ev_io_stop(c->loop, &c->rw);
	}
	/* After the stop, which would cancel it: no read event will come
	 * for bytes already received. */
	if (backlog)
		ev_feed_event(c->loop, &c->rw, EV_CUSTOM);
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
		/* A client that sent garbage and left fails right here. */
		conn_maybe_free(c);
		return;
	}
	conn_update_read(c);
}

/*
 * One read from the socket (through TLS when on) into p.  Returns the
 * byte count, 0 when nothing is there now, -1 on EOF or error (c->eof
 * set).
 */
static ssize_t
conn_read_raw(struct conn *c, char *p, size_t want)
{
	for (;;) {
		ssize_t n;

		if (c->ssl != NULL) {
			int r, err;

			ERR_clear_error();
			r = SSL_read(c->ssl, p, (int)want);
			if (r > 0)
				return r;
			err = SSL_get_error(c->ssl, r);
			if (err == SSL_ERROR_WANT_READ)
				return 0;
			if (err == SSL_ERROR_WANT_WRITE) {
				c->tls_read_wants_write = 1;
				ev_io_start(c->loop, &c->ww);
				return 0;
			}
			c->eof = 1;
			return -1;
		}
		n = read(c->fd, p, want);
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		c->eof = 1;
		return -1;
	}
}

/*
 * How many bytes to read now: as many as c->in can hold, or, when
 * compressing, one chunk once no compressed input is held back (so at
 * most one chunk ever waits for room in c->in).
 */
static size_t
conn_read_room(const struct conn *c)
{
	size_t room = c->in.max - c->in.len;

	if (c->in.len >= c->in.max || conn_backlog(c))
		return 0;
	if (c->z != NULL || room > READ_CHUNK)
		return READ_CHUNK;
	return room;
}

/*
 * Read what is available into c->in.  Returns 1 if bytes were read,
 * 0 if none, -1 on EOF or error (c->eof set).
 */
static int
conn_fill(struct conn *c)
{
	char tmp[READ_CHUNK];
	int got = 0;
	size_t want;

	while ((want = conn_read_room(c)) > 0) {
		ssize_t n = conn_read_raw(c, tmp, want);

		if (n == 0)
			break;
		if (n < 0)
			return got ? 1 : -1;
		if (conn_take(c, tmp, (size_t)n) < 0) {
			c->eof = 1;	/* plaintext: cannot happen, want <= room */
			return -1;
		}
		got = 1;
		if ((size_t)n < want && c->ssl == NULL)
			break;
	}
	return got;
}

/*
 * Hand new input to the protocol.  When compressing, the room it makes
 * in c->in lets held-back input in at once: no read event would come
 * for bytes already received, and a command waiting there must not
 * wait for the client to send something else.
 */
static void
conn_deliver(struct conn *c, int revents)
{
	if (c->paused || !(c->in.len > 0 || (revents & EV_CUSTOM)))
		return;
	conn_emit(c, CONN_EV_DATA);
	while (!c->closed && conn_backlog(c) && conn_may_take_input(c)) {
		size_t before = c->in.len;

		/* On a corrupt stream what was decoded before it still goes
		 * up; c->eof then ends the loop. */
		conn_inflate_backlog(c);
		if (c->in.len == before)
			break;
		conn_emit(c, CONN_EV_DATA);
	}
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
	if (conn_may_take_input(c))
		conn_inflate_backlog(c);	/* on failure c->eof is set */
	if (revents & EV_READ)
		r = conn_fill(c);
	if (r > 0)
		ev_timer_again(c->loop, &c->timer);
	conn_deliver(c, revents);
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

/*
 * Send the first *n bytes of b, consuming them as they go.  1 all sent,
 * 0 more to send later, -1 error.  A retry after "later" passes the
 * same bytes again, as SSL_write wants.
 */
static int
conn_send(struct conn *c, struct buf *b, size_t *n)
{
	while (*n > 0) {
		ssize_t sent;

		if (c->ssl != NULL) {
			int r, err;

			ERR_clear_error();
			r = SSL_write(c->ssl, b->data,
			    *n > 1 << 30 ? 1 << 30 : (int)*n);
			if (r <= 0) {
				err = SSL_get_error(c->ssl, r);
				if (err == SSL_ERROR_WANT_WRITE ||
				    err == SSL_ERROR_WANT_READ)
					return 0;
				return -1;
			}
			sent = r;
		} else {
			sent = send(c->fd, b->data, *n, MSG_NOSIGNAL);
			if (sent < 0) {
				if (errno == EINTR)
					continue;
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return 0;
				return -1;
			}
		}
		buf_consume(b, (size_t)sent);
		*n -= (size_t)sent;
	}
	return 1;
}

/*
 * Compressed output: first what was queued before COMPRESS, as it is;
 * then c->out through deflate, one chunk at a time, each sent before
 * the next is made (zout stays one chunk's size).
 */
static int
conn_flush_compressed(struct conn *c)
{
	struct conn_zlib *z = c->z;
	int r;

	if (z->plain > 0 && (r = conn_send(c, &c->out, &z->plain)) <= 0)
		return r;
	for (;;) {
		size_t n = z->zout.len;

		if (n > 0 && (r = conn_send(c, &z->zout, &n)) <= 0)
			return r;
		if (c->out.len == 0)
			return 1;
		if (conn_deflate_chunk(c) < 0)
			return -1;
	}
}

/* 1 drained, 0 more to send later, -1 error. */
static int
conn_flush(struct conn *c)
{
	size_t n = c->out.len;

	if (c->z != NULL)
		return conn_flush_compressed(c);
	return conn_send(c, &c->out, &n);
}

static void
conn_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct conn *c = w->data;
	size_t before;
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
	before = conn_out_pending(c);
	r = conn_flush(c);
	if (r < 0) {
		conn_shutdown(c);
		goto out;
	}
	/*
	 * A client reading a long answer is active even if it sends
	 * nothing: without this, a big download would hit the idle timeout.
	 */
	if (conn_out_pending(c) < before && !c->paused)
		ev_timer_again(c->loop, &c->timer);
	if (r == 0)
		goto out;
	ev_io_stop(c->loop, &c->ww);
	buf_shrink(&c->out);
	if (c->z != NULL)
		buf_shrink(&c->z->zout);
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
	if (c->z != NULL) {
		buf_reset(&c->z->zout);
		c->z->plain = 0;
	}
	c->closing = 1;
	ev_io_stop(c->loop, &c->rw);
	ev_io_start(c->loop, &c->ww);
}

size_t
conn_out_pending(const struct conn *c)
{
	return c->out.len + (c->z != NULL ? c->z->zout.len : 0);
}

int
conn_compressing(const struct conn *c)
{
	return c->z != NULL;
}

int
conn_compress_start(struct conn *c)
{
	struct conn_zlib *z;

	if (c->z != NULL || c->closed || c->closing ||
	    c->tls == CONN_TLS_WAIT_DRAIN || c->tls == CONN_TLS_HANDSHAKE)
		return -1;
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		return -1;
	if (deflateInit2(&z->os, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
	    -DEFLATE_WBITS, DEFLATE_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(z);
		return -1;
	}
	if (inflateInit2(&z->is, -INFLATE_WBITS) != Z_OK) {
		deflateEnd(&z->os);
		free(z);
		return -1;
	}
	/* zin holds at most what c->in held, or one read */
	buf_init(&z->zin, c->in.max > READ_CHUNK ? c->in.max : READ_CHUNK);
	buf_init(&z->zout, ZOUT_MAX);
	if (buf_append(&z->zin, c->in.data, c->in.len) < 0) {
		c->z = z;
		conn_z_free(c);
		return -1;
	}
	/* The client compressed everything after the command. */
	buf_reset(&c->in);
	z->plain = c->out.len;
	c->z = z;
	conn_update_read(c);	/* inflates what was pipelined, if any */
	return 0;
}
