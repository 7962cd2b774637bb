/*
 * conn.h - one client connection over libev: non-blocking reads into a
 * bounded input buffer, buffered writes, an idle timeout, TLS (implicit
 * or STARTTLS) and optional deflate compression (IMAP COMPRESS) below
 * it, so protocol code never calls OpenSSL or zlib.
 *
 * The protocol gets one callback with typed events.  It may call
 * conn_close() from inside the callback; the conn is freed only after
 * the callback returns (and after CONN_EV_CLOSED was delivered, once).
 */
#ifndef BUZON_CONN_H
#define BUZON_CONN_H

#include <ev.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

#include "buf.h"

enum conn_event {
	CONN_EV_DATA,		/* new bytes in c->in (or conn_resume) */
	CONN_EV_DRAINED,	/* output buffer became empty */
	CONN_EV_TIMEOUT,	/* idle timeout: protocol says goodbye and closes */
	CONN_EV_TLS_READY,	/* TLS handshake finished */
	CONN_EV_CLOSED,		/* gone (peer, error, or conn_close): last event */
};

struct conn;
struct conn_zlib;	/* conn.c: deflate state, only after COMPRESS */
typedef void (*conn_cb)(struct conn *c, enum conn_event ev, void *arg);

enum conn_tls { CONN_TLS_NONE, CONN_TLS_WAIT_DRAIN, CONN_TLS_HANDSHAKE,
    CONN_TLS_ON };

struct conn {
	struct ev_loop *loop;
	int fd;
	ev_io rw, ww;
	ev_timer timer;
	double timeout;

	SSL *ssl;
	SSL_CTX *ssl_ctx;
	enum conn_tls tls;
	int tls_read_wants_write;
	char tls_version[16];
	char tls_cipher[64];
	int tls_bits;

	struct buf in, out;	/* always plaintext, even when compressing */
	size_t out_high;	/* stop reading while output is above this */
	struct conn_zlib *z;	/* NULL unless conn_compress_start() */
	conn_cb cb;
	void *arg;

	int paused;		/* protocol asked to stop reading */
	int eof;		/* peer closed its side */
	int closing;		/* close once out is flushed */
	int closed;		/* CLOSED delivered, free when not in callback */
	int in_cb;
	int line_skipping;	/* discarding the rest of an over-long line */

	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
	struct sockaddr_storage local;
	struct sockaddr_storage peer;	/* for per-network accounting */
	char sid[13];
	void *owner;		/* listener bookkeeping (iplimit) */
	void (*on_free)(struct conn *c);
};

/* Takes ownership of fd (already non-blocking). */
struct conn *conn_new(struct ev_loop *loop, int fd,
    const struct sockaddr *peer, socklen_t peerlen, size_t in_max,
    size_t out_max, conn_cb cb, void *arg);

/*
 * Start reading; with ssl_ctx non-NULL, begin with a TLS handshake.  That
 * handshake may fail at once: c is then freed (after CONN_EV_CLOSED) and
 * must not be used after the call.
 */
void conn_start(struct conn *c, SSL_CTX *implicit_tls);
void conn_set_timeout(struct conn *c, double seconds);

/* Queue output.  -1 when the output buffer is full (caller closes). */
int conn_write(struct conn *c, const void *p, size_t n);
int conn_printf(struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Take one line (without its CRLF or LF) from the input into line.
 * Returns 1 with a line, 0 when more input is needed, -2 when the line
 * is longer than max (the rest of it up to the next LF is then
 * discarded, so the protocol stays in sync), -1 if line cannot hold it.
 * *bare_lf is set when the line ended in LF without CR.
 */
int conn_getline(struct conn *c, size_t max, struct buf *line, int *bare_lf);

void conn_pause(struct conn *c);
void conn_resume(struct conn *c);	/* re-delivers CONN_EV_DATA */

/*
 * STARTTLS: everything still buffered from the client is discarded (no
 * command sent before the handshake may survive it); reading stops until
 * the output (the "220 go ahead") is flushed, then the handshake runs and
 * CONN_EV_TLS_READY follows.
 */
void conn_starttls(struct conn *c, SSL_CTX *ctx);

/*
 * COMPRESS=DEFLATE (RFC 4978): raw deflate both ways from here on.
 * Output already queued (the command's tagged OK) still goes out as it
 * is; everything queued after the call is compressed, and flushed
 * (Z_SYNC_FLUSH) every time the output is written, so nothing waits in
 * zlib.  Input still in c->in was sent after the command and so is
 * compressed: it is inflated like everything read later.  c->in keeps
 * its limit; a corrupt stream is logged and read as end of input.
 * 0, or -1 (already compressing, closing, TLS starting, no memory)
 * with nothing changed.
 */
int conn_compress_start(struct conn *c);
int conn_compressing(const struct conn *c);

/* Flush pending output, then close.  Safe to call more than once. */
void conn_close(struct conn *c);
/* Close at once, dropping pending output. */
void conn_abort(struct conn *c);

/* Bytes waiting to be sent (plaintext and compressed). */
size_t conn_out_pending(const struct conn *c);

#endif
