/*
 * smtpc.h - the SMTP client of the outbound queue runner (RFC 5321):
 * one blocking session on one delivery thread.  Connect, greeting, EHLO,
 * STARTTLS, AUTH, then any number of MAIL/RCPT/DATA transactions, QUIT.
 *
 * Blocking calls on a non-blocking socket: every wait is a poll() bounded
 * by one of the timeouts in smtpc_opts, so a silent or slow server costs
 * at most that long.  What a server sends is bounded by the reply parser
 * (smtpc_reply.h).  No global state: sessions on different threads share
 * only the SSL_CTX.  The process must ignore SIGPIPE (server.c does): a
 * write to a closed TLS connection would otherwise kill it.
 */
#ifndef BUZON_SMTPC_H
#define BUZON_SMTPC_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <openssl/ssl.h>

#include "smtpc_reply.h"

/* Results of smtpc_open() and smtpc_send(). */
#define SMTPC_OK	0
#define SMTPC_TEMP	1	/* try again later (or the next host) */
#define SMTPC_PERM	2	/* refused for good */

/* smtpc_opts.tls; a zeroed smtpc_opts means opportunistic */
#define SMTPC_TLS_OPPORTUNISTIC	0	/* STARTTLS when offered, else plaintext */
#define SMTPC_TLS_REQUIRED	1	/* no STARTTLS or a failed handshake: SMTPC_TEMP */
#define SMTPC_TLS_NONE		2	/* never STARTTLS (a retry after a failed handshake) */

struct smtpc_opts {
	const char *helo;	/* EHLO name: our hostname */
	const char *sni;	/* TLS SNI and name to verify (the MX); may be NULL */
	int tls;		/* SMTPC_TLS_* */
	SSL_CTX *ssl_ctx;	/* from smtpc_tls_ctx(); NULL: no STARTTLS */
	/*
	 * Non-NULL: AUTH PLAIN, or LOGIN when PLAIN is not offered, after
	 * STARTTLS.  Never sent without TLS: no TLS is then SMTPC_TEMP.
	 * A server that offers no AUTH at all gets the mail without it.
	 */
	const char *auth_user, *auth_pass;
	/*
	 * Refuse (SMTPC_TEMP, 4.7.5) a certificate that does not verify
	 * against the system CAs and sni, before anything else is sent:
	 * for a smarthost that gets our password.
	 */
	int tls_verify;
	/* seconds; 0 takes the default in brackets */
	unsigned timeout_connect;	/* [30] */
	unsigned timeout_greeting;	/* [300] */
	unsigned timeout_cmd;		/* [300] each command's reply, TLS handshake */
	unsigned timeout_data_block;	/* [180] each block of the body written */
	unsigned timeout_data_end;	/* [600] the reply to the final "." */
};

struct smtpc;

/*
 * The client TLS context: TLS 1.2 or later, the system CA store loaded.
 * Peers are verified (chain and, with sni, the name) but the result is
 * only recorded (smtpc_tls_verified): opportunistic TLS must not fail on
 * a self-signed certificate.  One per process, shared by all threads.
 */
SSL_CTX *smtpc_tls_ctx(char *err, size_t errlen);

/*
 * Connect to dst (from src when not NULL), read the greeting, EHLO (HELO
 * when EHLO gets 5xx), STARTTLS per o->tls and EHLO again, AUTH per o.
 * SMTPC_OK with *out set; else *out is NULL and r says why:
 *   SMTPC_TEMP: connection failure or timeout, 4xx, protocol error, TLS
 *     required but not offered (enhanced 4.7.4) or a failed handshake
 *     (4.7.5): try the next host;
 *   SMTPC_PERM: a 5xx to the greeting, HELO (EHLO after STARTTLS) or AUTH.
 * When nothing usable came from the server r->code is 0 and r->text says
 * what happened ("connect to 127.0.0.3:25: Connection refused").  o is
 * copied: it need not outlive the call.
 */
int smtpc_open(const struct sockaddr *dst, socklen_t dstlen,
    const struct sockaddr *src, socklen_t srclen,
    const struct smtpc_opts *o, struct smtpc **out, struct smtpc_reply *r);

/* The server as "192.0.2.1:25" / "[2001:db8::1]:25", for logs. */
const char *smtpc_peer(const struct smtpc *c);
int smtpc_tls_active(const struct smtpc *c);
const char *smtpc_tls_version(const struct smtpc *c);	/* NULL without TLS */
const char *smtpc_tls_cipher(const struct smtpc *c);	/* NULL without TLS */
int smtpc_tls_verified(const struct smtpc *c);	/* chain (and sni) good */
unsigned smtpc_extensions(const struct smtpc *c);	/* SMTPC_EXT_* */
unsigned long long smtpc_size_limit(const struct smtpc *c);	/* 0: none */
/* 0 once the session cannot carry another transaction (error, 421). */
int smtpc_usable(const struct smtpc *c);

struct smtpc_msg {
	const char *sender;		/* "" = null sender <> */
	const char *const *rcpts;
	size_t nrcpts;
	const char *prefix;		/* header lines sent first, LF line ends */
	size_t prefix_len;
	int fd;				/* the message, LF line ends, from offset 0 */
	off_t size;			/* bytes of fd to send */
	int need_smtputf8;		/* SMTPUTF8 on MAIL; server must offer it */
	int eightbit;			/* BODY=8BITMIME when offered */
};

/*
 * One transaction: MAIL, RCPT for each recipient, DATA, the body (LF to
 * CRLF, dot-stuffed, a last CRLF added when missing), ".".  Commands are
 * pipelined (RFC 2920) when the server offers PIPELINING.
 *
 * Replies: mail_r to MAIL; rcpt_r[i] to recipient i; data_r to DATA when
 * it was refused, else to the final "." (code 0 when DATA was never sent
 * because no recipient was accepted).  A reply with code 0 got no answer
 * (connection lost, timeout, or never sent): its text says why.
 *
 * Returns SMTPC_OK when the transaction ran to its end: the message is
 * accepted for every recipient with a 2xx rcpt_r (possibly none).
 * SMTPC_TEMP / SMTPC_PERM when MAIL, DATA or the final "." was refused
 * (by class of the reply), locally refused before sending (552 5.3.4 when
 * the message exceeds the server's SIZE, 553 5.6.7 when SMTPUTF8 is
 * needed but not offered, 501 for an address with control characters;
 * these in mail_r), or SMTPC_TEMP when the connection failed: then
 * nothing is delivered.  smtpc_rcpt_result() sums this up per recipient.
 * The session can carry another transaction afterwards while
 * smtpc_usable() (a RSET is sent first when needed).
 */
int smtpc_send(struct smtpc *c, const struct smtpc_msg *m,
    struct smtpc_reply *mail_r, struct smtpc_reply *rcpt_r,
    struct smtpc_reply *data_r);

/*
 * The reply that decides recipient i after smtpc_send(): its code's
 * class says delivered (2), bounce (5) or retry (anything else, code 0
 * included).
 */
const struct smtpc_reply *smtpc_rcpt_result(const struct smtpc_reply *mail_r,
    const struct smtpc_reply *rcpt_r, const struct smtpc_reply *data_r,
    size_t i);

/* QUIT (waiting briefly for its reply), TLS shutdown, close, free; NULLs *c. */
void smtpc_close(struct smtpc **c);

#endif
