/*
 * smtpc_private.h - what smtpc.c (the SMTP dialogue) and smtpc_io.c (the
 * transport under it: socket, TLS, waits bounded by deadlines) share.
 * Only smtpc*.c include it; the rest of smtpd sees smtpc.h.
 *
 * The transport never interprets a byte and never builds a reply: it
 * moves bytes or says why it could not (ioe, ioerr), and the dialogue
 * turns that into what the caller sees.
 */
#ifndef BUZON_SMTPC_PRIVATE_H
#define BUZON_SMTPC_PRIVATE_H

#include <stddef.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "smtpc.h"
#include "smtpc_reply.h"

/* Why the last transport call failed. */
enum smtpc_ioe { IOE_NONE, IOE_TIMEOUT, IOE_EOF, IOE_ERR };

struct smtpc {
	/* transport (smtpc_io.c) */
	int fd;
	SSL *ssl;
	int verified;		/* chain (and sni) good */
	enum smtpc_ioe ioe;
	char ioerr[256];	/* "timeout", "connection closed", ... */
	char in[4096];		/* read but not yet parsed */
	size_t inpos, inlen;
	char peer[64];		/* "192.0.2.1:25", for every message */

	/* dialogue (smtpc.c) */
	int broken;		/* no further command may be sent */
	int need_rset;		/* a transaction may be open on the server */
	struct smtpc_ext ext;
	char helo[256];
	unsigned t_connect, t_greeting, t_cmd, t_block, t_end;
	struct smtpc_rparser rp;
	struct buf out;		/* commands being written */
	char *ibuf, *obuf;	/* the body: queue file bytes, wire bytes */
};

/* Milliseconds on the monotonic clock, seconds from now. */
long long smtpc_deadline(unsigned seconds);

/* "192.0.2.1:25" / "[2001:db8::1]:25" / "(unknown address)". */
void smtpc_addr_string(const struct sockaddr *sa, char *out, size_t outlen);

/*
 * A non-blocking socket connected to dst (bound to src when not NULL)
 * within timeout seconds.  0, or -1 with c->ioerr saying which step
 * failed ("bind to 192.0.2.9:0: ...").
 */
int smtpc_io_connect(struct smtpc *c, const struct sockaddr *dst,
    socklen_t dstlen, const struct sockaddr *src, socklen_t srclen,
    unsigned timeout);

/* Refill c->in (which must be used up) before the deadline.  0 or -1. */
int smtpc_io_read(struct smtpc *c, long long deadline);

/* Write all len bytes before the deadline.  0 or -1. */
int smtpc_io_write(struct smtpc *c, const char *p, size_t len,
    long long deadline);

/*
 * The TLS handshake as a client over c->fd, SNI and name check with sni
 * when it is a host name.  From here on every read and write is TLS.
 * 0, or -1 with c->ioerr.
 */
int smtpc_io_starttls(struct smtpc *c, SSL_CTX *ctx, const char *sni,
    unsigned timeout);

/* close_notify when clean (never waiting for the peer's), then close. */
void smtpc_io_close(struct smtpc *c, int clean);

#endif
