/*
 * smtpc.c - one outbound SMTP session (see smtpc.h): connect, greeting,
 * EHLO, STARTTLS, AUTH, transactions, QUIT.
 *
 * Blocking, for the queue runner's delivery threads: every wait is a
 * poll() on the non-blocking socket with a deadline, never an unbounded
 * read or write.  Replies go through the pure parser of smtpc_reply.c,
 * which bounds them.  Two rules this file must never break: AUTH is only
 * sent inside TLS, and nothing read before the TLS handshake is used
 * after it (CVE-2011-0411: a reply injected behind "220 ready").
 */
#include "smtpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#define BODY_CHUNK	32768		/* bytes of the queue file per read */
#define OBUF_SIZE	(3 * BODY_CHUNK + 16)	/* see send_body() */
#define CMD_MAX		(256 * 1024)	/* a pipelined MAIL+RCPTs+DATA batch */
#define ADDR_MAX	1000		/* longer sender/recipient: refused */
#define AUTH_MAX	1024		/* user + password */
#define QUIT_TIMEOUT	5

struct smtpc {
	int fd;
	SSL *ssl;
	int verified;
	int broken;		/* no further command may be sent */
	int need_rset;		/* a transaction may be open on the server */
	struct smtpc_ext ext;
	char helo[256];
	char peer[64];
	unsigned t_connect, t_greeting, t_cmd, t_block, t_end;
	/* why the last I/O failed */
	enum { IOE_NONE, IOE_TIMEOUT, IOE_EOF, IOE_ERR } ioe;
	char ioerr[160];
	struct smtpc_rparser rp;
	char in[4096];		/* read but not yet parsed */
	size_t inpos, inlen;
	struct buf out;		/* commands being written */
	char *ibuf, *obuf;	/* the body: queue file bytes, wire bytes */
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long
deadline_after(unsigned seconds)
{
	return now_ms() + (long long)seconds * 1000;
}

static void
set_ioerr(struct smtpc *c, int kind, const char *what)
{
	c->ioe = kind;
	strlcpy_checked(c->ioerr, what, sizeof(c->ioerr));
}

static void
set_errno(struct smtpc *c, int e)
{
	char tmp[128];

	set_ioerr(c, IOE_ERR, strerror_r(e, tmp, sizeof(tmp)));
}

/* OpenSSL's reason for the last failure, or errno's, or EOF. */
static void
set_tls_err(struct smtpc *c, int sslerr)
{
	unsigned long e = ERR_get_error();
	char tmp[128];

	if (e != 0) {
		ERR_error_string_n(e, tmp, sizeof(tmp));
		set_ioerr(c, IOE_ERR, tmp);
	} else if (sslerr == SSL_ERROR_SYSCALL && errno != 0) {
		set_errno(c, errno);
	} else {
		set_ioerr(c, IOE_EOF, "connection closed");
	}
	ERR_clear_error();
}

/* Wait until fd is ready for events or the deadline passes. */
static int
wait_io(struct smtpc *c, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0) {
			set_ioerr(c, IOE_TIMEOUT, "timeout");
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		/* POLLERR/POLLHUP: the next read or write says what */
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			set_errno(c, errno);
			return -1;
		}
	}
}

/* Refill c->in (which must be used up): 0, or -1 with c->ioe set. */
static int
fill_input(struct smtpc *c, long long deadline)
{
	ssize_t n;
	short ev;
	int e;

	c->inpos = c->inlen = 0;
	for (;;) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			n = SSL_read(c->ssl, c->in, (int)sizeof(c->in));
			if (n > 0) {
				c->inlen = (size_t)n;
				return 0;
			}
			e = SSL_get_error(c->ssl, (int)n);
			if (e == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (e == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else {
				set_tls_err(c, e);
				return -1;
			}
		} else {
			n = recv(c->fd, c->in, sizeof(c->in), 0);
			if (n > 0) {
				c->inlen = (size_t)n;
				return 0;
			}
			if (n == 0) {
				set_ioerr(c, IOE_EOF, "connection closed");
				return -1;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				set_errno(c, errno);
				return -1;
			}
			ev = POLLIN;
		}
		if (wait_io(c, ev, deadline) < 0)
			return -1;
	}
}

static int
send_all(struct smtpc *c, const char *p, size_t len, long long deadline)
{
	ssize_t n;
	short ev;
	int e;

	while (len > 0) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			n = SSL_write(c->ssl, p,
			    len > INT_MAX ? INT_MAX : (int)len);
			if (n > 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			e = SSL_get_error(c->ssl, (int)n);
			if (e == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else if (e == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else {
				set_tls_err(c, e);
				return -1;
			}
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n >= 0) {
				p += n;
				len -= (size_t)n;
				continue;
			}
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				set_errno(c, errno);
				return -1;
			}
			ev = POLLOUT;
		}
		if (wait_io(c, ev, deadline) < 0)
			return -1;
	}
	return 0;
}

static void
local_reply(struct smtpc_reply *r, int code, const char *enhanced,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
local_reply(struct smtpc_reply *r, int code, const char *enhanced,
    const char *fmt, ...)
{
	char text[SMTPC_TEXT_MAX];
	va_list ap;

	/* formatted apart: r->text may be one of the arguments */
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	memset(r, 0, sizeof(*r));
	r->code = code;
	r->local = 1;
	strlcpy_checked(r->enhanced, enhanced, sizeof(r->enhanced));
	strlcpy_checked(r->text, text, sizeof(r->text));
}

/* The session failed while doing what: r says so, nothing more is sent. */
static void
io_failed(struct smtpc *c, struct smtpc_reply *r, const char *what)
{
	c->broken = 1;
	if (c->ioe == IOE_TIMEOUT)
		local_reply(r, 0, "4.4.2", "conversation with %s timed out "
		    "while %s", c->peer, what);
	else if (c->ioe == IOE_EOF)
		local_reply(r, 0, "4.4.2", "lost connection with %s while %s",
		    c->peer, what);
	else
		local_reply(r, 0, "4.4.2", "error talking to %s while %s: %s",
		    c->peer, what, c->ioerr);
}

/*
 * Read one reply within timeout seconds: 0, or -1 with r telling the
 * failure (I/O or protocol error; the session is then unusable).
 */
static int
read_reply(struct smtpc *c, unsigned timeout, const char *what,
    struct smtpc_reply *r)
{
	long long deadline = deadline_after(timeout);
	enum smtpc_feed f;
	char why[SMTPC_TEXT_MAX];
	size_t used;

	for (;;) {
		if (c->inpos < c->inlen) {
			f = smtpc_reply_feed(&c->rp, c->in + c->inpos,
			    c->inlen - c->inpos, &used, r);
			c->inpos += used;
			if (f == SMTPC_FEED_DONE) {
				/* the server is closing the session */
				if (r->code == 421)
					c->broken = 1;
				return 0;
			}
			if (f == SMTPC_FEED_ERROR) {
				c->broken = 1;
				strlcpy_checked(why, r->text, sizeof(why));
				local_reply(r, 0, "4.5.0", "protocol error from "
				    "%s while reading %s: %s", c->peer, what,
				    why);
				return -1;
			}
		}
		if (fill_input(c, deadline) < 0) {
			char w[128];

			snprintf(w, sizeof(w), "reading %s", what);
			io_failed(c, r, w);
			return -1;
		}
	}
}

/* Write c->out: 0, or -1 with r telling the failure. */
static int
send_out(struct smtpc *c, const char *what, struct smtpc_reply *r)
{
	char w[128];

	if (send_all(c, c->out.data, c->out.len, deadline_after(c->t_cmd))
	    == 0)
		return 0;
	snprintf(w, sizeof(w), "sending %s", what);
	io_failed(c, r, w);
	return -1;
}

/* One command and its reply, lockstep: 0 (r is the reply) or -1. */
static int
command(struct smtpc *c, struct smtpc_reply *r, const char *what,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
command(struct smtpc *c, struct smtpc_reply *r, const char *what,
    const char *fmt, ...)
{
	char w[128];
	va_list ap;
	int rc;

	if (c->broken) {
		/* after a 421 or a failure: the server is gone */
		local_reply(r, 0, "4.4.2", "session with %s already ended "
		    "before %s", c->peer, what);
		return -1;
	}
	buf_reset(&c->out);
	va_start(ap, fmt);
	rc = buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (rc < 0 || buf_puts(&c->out, "\r\n") < 0) {
		local_reply(r, 0, "4.3.0", "%s command too long", what);
		return -1;
	}
	if (send_out(c, what, r) < 0)
		return -1;
	snprintf(w, sizeof(w), "the reply to %s", what);
	return read_reply(c, c->t_cmd, w, r);
}

/* TEMP or PERM after a reply that is not the one wanted. */
static int
refused(const struct smtpc_reply *r)
{
	return r->code / 100 == 5 ? SMTPC_PERM : SMTPC_TEMP;
}

static void
addr_string(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		strlcpy_checked(out, "(unknown address)", outlen);
	}
}

static int
connect_to(struct smtpc *c, const struct sockaddr *dst, socklen_t dstlen,
    const struct sockaddr *src, socklen_t srclen, struct smtpc_reply *r)
{
	char tmp[128], srcs[64];
	socklen_t elen = sizeof(int);
	int err = 0;

	c->fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		local_reply(r, 0, "4.4.1", "connect to %s: socket: %s",
		    c->peer, strerror_r(errno, tmp, sizeof(tmp)));
		return -1;
	}
	if (src != NULL && bind(c->fd, src, srclen) < 0) {
		addr_string(src, srcs, sizeof(srcs));
		local_reply(r, 0, "4.4.1", "connect to %s: bind to %s: %s",
		    c->peer, srcs, strerror_r(errno, tmp, sizeof(tmp)));
		return -1;
	}
	if (connect(c->fd, dst, dstlen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR) {
		err = errno;
	} else if (wait_io(c, POLLOUT, deadline_after(c->t_connect)) < 0) {
		err = c->ioe == IOE_TIMEOUT ? ETIMEDOUT : errno;
	} else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
		err = errno;
	}
	if (err == 0)
		return 0;
	local_reply(r, 0, "4.4.1", "connect to %s: %s", c->peer,
	    strerror_r(err, tmp, sizeof(tmp)));
	return -1;
}

/* EHLO, or HELO when EHLO is refused for good (and we are not in TLS). */
static int
hello(struct smtpc *c, struct smtpc_reply *r)
{
	const char *lines;
	size_t n;

	memset(&c->ext, 0, sizeof(c->ext));
	if (command(c, r, "EHLO", "EHLO %s", c->helo) < 0)
		return SMTPC_TEMP;
	if (r->code / 100 == 2) {
		lines = smtpc_reply_lines(&c->rp, &n);
		smtpc_ehlo_parse(lines, n, &c->ext);
		return SMTPC_OK;
	}
	if (r->code / 100 != 5 || c->ssl != NULL || c->broken)
		return refused(r);
	if (command(c, r, "HELO", "HELO %s", c->helo) < 0)
		return SMTPC_TEMP;
	return r->code / 100 == 2 ? SMTPC_OK : refused(r);
}

static int
is_ip_literal(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

static int
tls_handshake(struct smtpc *c, const struct smtpc_opts *o,
    struct smtpc_reply *r)
{
	long long deadline = deadline_after(c->t_cmd);
	short ev;
	int n, e;

	c->ssl = SSL_new(o->ssl_ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		set_tls_err(c, SSL_ERROR_SSL);
		goto fail;
	}
	/* SNI is a host name, never an address (RFC 6066 3) */
	if (o->sni != NULL && o->sni[0] != '\0' && !is_ip_literal(o->sni) &&
	    (SSL_set_tlsext_host_name(c->ssl, o->sni) != 1 ||
	    SSL_set1_host(c->ssl, o->sni) != 1)) {
		set_tls_err(c, SSL_ERROR_SSL);
		goto fail;
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		n = SSL_connect(c->ssl);
		if (n == 1)
			break;
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			ev = POLLIN;
		else if (e == SSL_ERROR_WANT_WRITE)
			ev = POLLOUT;
		else {
			set_tls_err(c, e);
			goto fail;
		}
		if (wait_io(c, ev, deadline) < 0)
			goto fail;
	}
	c->verified = SSL_get0_peer_certificate(c->ssl) != NULL &&
	    SSL_get_verify_result(c->ssl) == X509_V_OK;
	return 0;
fail:
	/* no plaintext either: the server is somewhere in its handshake */
	c->broken = 1;
	local_reply(r, 0, "4.7.5", "TLS handshake with %s failed: %s",
	    c->peer, c->ioe == IOE_TIMEOUT ? "timeout" : c->ioerr);
	return -1;
}

static int
starttls(struct smtpc *c, const struct smtpc_opts *o, struct smtpc_reply *r)
{
	int required = o->tls == SMTPC_TLS_REQUIRED;

	if (!(c->ext.flags & SMTPC_EXT_STARTTLS) || o->ssl_ctx == NULL) {
		if (!required)
			return SMTPC_OK;
		local_reply(r, 0, "4.7.4", "TLS is required, but was not "
		    "offered by %s", c->peer);
		return SMTPC_TEMP;
	}
	if (command(c, r, "STARTTLS", "STARTTLS") < 0)
		return SMTPC_TEMP;
	if (r->code != 220) {
		/* still a usable plaintext session when TLS may be skipped */
		if (!required && !c->broken)
			return SMTPC_OK;
		local_reply(r, 0, "4.7.4", "TLS is required, but %s refused "
		    "STARTTLS: %s", c->peer, r->text);
		return SMTPC_TEMP;
	}
	/*
	 * Whatever came with or after the 220 was sent before the handshake
	 * by someone we cannot authenticate: drop it unread.
	 */
	c->inpos = c->inlen = 0;
	smtpc_rparser_reset(&c->rp);
	if (tls_handshake(c, o, r) < 0)
		return SMTPC_TEMP;
	/* RFC 3207 4.2: forget everything learnt in plaintext */
	return hello(c, r);
}

static int
base64(const char *in, size_t inlen, char *out, size_t outsize)
{
	if (outsize < 4 * ((inlen + 2) / 3) + 2 || inlen > INT_MAX / 2)
		return -1;
	if (inlen == 0) {
		/* RFC 4954 4: "=" is an empty response */
		strlcpy_checked(out, "=", outsize);
		return 0;
	}
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in,
	    (int)inlen);
	return 0;
}

/* AUTH PLAIN with the initial response (RFC 4954, RFC 4616). */
static int
auth_plain(struct smtpc *c, const char *user, const char *pass,
    struct smtpc_reply *r)
{
	char raw[AUTH_MAX + 2], b64[(AUTH_MAX + 2) / 3 * 4 + 8];
	size_t ul = strlen(user), pl = strlen(pass);
	int rc;

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	rc = base64(raw, ul + pl + 2, b64, sizeof(b64));
	OPENSSL_cleanse(raw, sizeof(raw));
	if (rc == 0)
		rc = command(c, r, "AUTH", "AUTH PLAIN %s", b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	OPENSSL_cleanse(c->out.data, c->out.len);
	if (rc < 0)
		return SMTPC_TEMP;
	if (r->code == 334) {
		/* it wants more than PLAIN has to give: cancel */
		if (command(c, r, "AUTH", "*") < 0)
			return SMTPC_TEMP;
		local_reply(r, 0, "4.7.0", "AUTH PLAIN to %s did not finish",
		    c->peer);
		return SMTPC_TEMP;
	}
	return r->code == 235 ? SMTPC_OK : refused(r);
}

/* AUTH LOGIN: user and password, each after a 334. */
static int
auth_login(struct smtpc *c, const char *user, const char *pass,
    struct smtpc_reply *r)
{
	char b64[AUTH_MAX / 3 * 4 + 8];
	const char *step[2] = { user, pass };
	int i, rc;

	if (command(c, r, "AUTH", "AUTH LOGIN") < 0)
		return SMTPC_TEMP;
	for (i = 0; i < 2; i++) {
		if (r->code != 334)
			return r->code / 100 == 2 ? SMTPC_TEMP : refused(r);
		rc = base64(step[i], strlen(step[i]), b64, sizeof(b64));
		if (rc == 0)
			rc = command(c, r, "AUTH", "%s", b64);
		OPENSSL_cleanse(b64, sizeof(b64));
		OPENSSL_cleanse(c->out.data, c->out.len);
		if (rc < 0)
			return SMTPC_TEMP;
	}
	return r->code == 235 ? SMTPC_OK : refused(r);
}

static int
authenticate(struct smtpc *c, const struct smtpc_opts *o,
    struct smtpc_reply *r)
{
	const char *pass = o->auth_pass != NULL ? o->auth_pass : "";

	if (o->auth_user == NULL)
		return SMTPC_OK;
	if (c->ssl == NULL) {
		local_reply(r, 0, "4.7.0", "AUTH to %s needs TLS, which is "
		    "not in use: credentials not sent", c->peer);
		return SMTPC_TEMP;
	}
	if (!(c->ext.flags & SMTPC_EXT_AUTH))
		return SMTPC_OK;
	if (strlen(o->auth_user) + strlen(pass) > AUTH_MAX) {
		local_reply(r, 0, "4.7.0", "AUTH user name and password too "
		    "long");
		return SMTPC_TEMP;
	}
	if (c->ext.auth & SMTPC_AUTH_PLAIN)
		return auth_plain(c, o->auth_user, pass, r);
	if (c->ext.auth & SMTPC_AUTH_LOGIN)
		return auth_login(c, o->auth_user, pass, r);
	local_reply(r, 0, "4.7.0", "%s offers no AUTH mechanism we have "
	    "(PLAIN, LOGIN)", c->peer);
	return SMTPC_TEMP;
}

static unsigned
or_default(unsigned v, unsigned def)
{
	return v != 0 ? v : def;
}

static struct smtpc *
smtpc_new(const struct sockaddr *dst, const struct smtpc_opts *o)
{
	struct smtpc *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->fd = -1;
	c->ibuf = malloc(BODY_CHUNK);
	c->obuf = malloc(OBUF_SIZE);
	if (c->ibuf == NULL || c->obuf == NULL) {
		free(c->ibuf);
		free(c->obuf);
		free(c);
		return NULL;
	}
	smtpc_rparser_init(&c->rp);
	buf_init(&c->out, CMD_MAX);
	addr_string(dst, c->peer, sizeof(c->peer));
	c->t_connect = or_default(o->timeout_connect, 30);
	c->t_greeting = or_default(o->timeout_greeting, 300);
	c->t_cmd = or_default(o->timeout_cmd, 300);
	c->t_block = or_default(o->timeout_data_block, 180);
	c->t_end = or_default(o->timeout_data_end, 600);
	return c;
}

int
smtpc_open(const struct sockaddr *dst, socklen_t dstlen,
    const struct sockaddr *src, socklen_t srclen,
    const struct smtpc_opts *o, struct smtpc **out, struct smtpc_reply *r)
{
	struct smtpc *c;
	int rc;

	*out = NULL;
	memset(r, 0, sizeof(*r));
	if ((c = smtpc_new(dst, o)) == NULL) {
		local_reply(r, 0, "4.3.0", "out of memory");
		return SMTPC_TEMP;
	}
	if (o->helo == NULL || o->helo[0] == '\0' ||
	    strpbrk(o->helo, " \t\r\n") != NULL ||
	    strlcpy_checked(c->helo, o->helo, sizeof(c->helo)) < 0) {
		local_reply(r, 0, "4.3.5", "bad HELO name");
		smtpc_close(&c);
		return SMTPC_TEMP;
	}
	if (connect_to(c, dst, dstlen, src, srclen, r) < 0) {
		c->broken = 1;
		smtpc_close(&c);
		return SMTPC_TEMP;
	}
	if (read_reply(c, c->t_greeting, "the greeting", r) < 0)
		rc = SMTPC_TEMP;
	else if (r->code == 220)
		rc = hello(c, r);
	else
		rc = refused(r);
	if (rc == SMTPC_OK && o->tls != SMTPC_TLS_NONE)
		rc = starttls(c, o, r);
	if (rc == SMTPC_OK)
		rc = authenticate(c, o, r);
	if (rc != SMTPC_OK) {
		smtpc_close(&c);
		return rc;
	}
	*out = c;
	return SMTPC_OK;
}

const char *
smtpc_peer(const struct smtpc *c)
{
	return c->peer;
}

int
smtpc_tls_active(const struct smtpc *c)
{
	return c->ssl != NULL;
}

const char *
smtpc_tls_version(const struct smtpc *c)
{
	return c->ssl != NULL ? SSL_get_version(c->ssl) : NULL;
}

const char *
smtpc_tls_cipher(const struct smtpc *c)
{
	return c->ssl != NULL ? SSL_get_cipher_name(c->ssl) : NULL;
}

int
smtpc_tls_verified(const struct smtpc *c)
{
	return c->ssl != NULL && c->verified;
}

unsigned
smtpc_extensions(const struct smtpc *c)
{
	return c->ext.flags;
}

unsigned long long
smtpc_size_limit(const struct smtpc *c)
{
	return c->ext.flags & SMTPC_EXT_SIZE ? c->ext.size : 0;
}

int
smtpc_usable(const struct smtpc *c)
{
	return !c->broken;
}

/* Read the next piece of the queue file: bytes, or -1 with why set. */
static ssize_t
read_piece(struct smtpc *c, const struct smtpc_msg *m, off_t off,
    char *why, size_t whylen)
{
	size_t want = m->size - off > BODY_CHUNK ? BODY_CHUNK :
	    (size_t)(m->size - off);
	ssize_t n;

	do
		n = pread(m->fd, c->ibuf, want, off);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		char tmp[128];

		strlcpy_checked(why, strerror_r(errno, tmp, sizeof(tmp)),
		    whylen);
	} else if (n == 0)
		strlcpy_checked(why, "file shorter than its size", whylen);
	return n > 0 ? n : -1;
}

/* Octets of the message on the wire for SIZE (RFC 1870: no stuffing). */
static int
wire_size(struct smtpc *c, const struct smtpc_msg *m,
    unsigned long long *size, char *why, size_t whylen)
{
	struct smtpc_enc e;
	unsigned long long total = 0;
	size_t i, n;
	off_t off;
	ssize_t got;

	smtpc_enc_init(&e, 0);
	for (i = 0; i < m->prefix_len; i += n) {
		n = m->prefix_len - i > BODY_CHUNK ? BODY_CHUNK :
		    m->prefix_len - i;
		total += smtpc_enc_bytes(&e, m->prefix + i, n, c->obuf);
	}
	for (off = 0; off < m->size; off += got) {
		if ((got = read_piece(c, m, off, why, whylen)) < 0)
			return -1;
		total += smtpc_enc_bytes(&e, c->ibuf, (size_t)got, c->obuf);
	}
	*size = total + smtpc_enc_end(&e, c->obuf);
	return 0;
}

static int
flush_body(struct smtpc *c, size_t *olen, struct smtpc_reply *r)
{
	if (send_all(c, c->obuf, *olen, deadline_after(c->t_block)) < 0) {
		io_failed(c, r, "sending the message body");
		return -1;
	}
	*olen = 0;
	return 0;
}

/*
 * Stream prefix + file + "." after the 354.  The buffer holds less than
 * BODY_CHUNK before each piece of at most BODY_CHUNK, which grows it by
 * at most 2 * BODY_CHUNK + 1, then 2 + 3 at the end: OBUF_SIZE.  A queue
 * file that cannot be read ends the session without the ".", so the
 * server never takes a truncated message.
 */
static int
send_body(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *r)
{
	struct smtpc_enc e;
	char why[128];
	size_t i, n, olen = 0;
	off_t off;
	ssize_t got;

	smtpc_enc_init(&e, 1);
	for (i = 0; i < m->prefix_len; i += n) {
		n = m->prefix_len - i > BODY_CHUNK ? BODY_CHUNK :
		    m->prefix_len - i;
		olen += smtpc_enc_bytes(&e, m->prefix + i, n, c->obuf + olen);
		if (olen >= BODY_CHUNK && flush_body(c, &olen, r) < 0)
			return -1;
	}
	for (off = 0; off < m->size; off += got) {
		if ((got = read_piece(c, m, off, why, sizeof(why))) < 0) {
			c->broken = 1;
			local_reply(r, 0, "4.3.0", "cannot read the queued "
			    "message: %s", why);
			return -1;
		}
		olen += smtpc_enc_bytes(&e, c->ibuf, (size_t)got,
		    c->obuf + olen);
		if (olen >= BODY_CHUNK && flush_body(c, &olen, r) < 0)
			return -1;
	}
	olen += smtpc_enc_end(&e, c->obuf + olen);
	memcpy(c->obuf + olen, ".\r\n", 3);
	olen += 3;
	return flush_body(c, &olen, r);
}

/* Sender and recipients go into command lines: no control characters. */
static int
addr_ok(const char *a)
{
	size_t i;

	for (i = 0; a[i] != '\0'; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f || i >= ADDR_MAX)
			return 0;
	return 1;
}

struct tx {
	const struct smtpc_msg *m;
	struct smtpc_reply *mail_r, *rcpt_r, *data_r;
	unsigned long long size;	/* for SIZE=; 0: not sent */
	size_t naccepted;
};

static int
put_mail(struct smtpc *c, const struct tx *t)
{
	int eight = t->m->eightbit || t->m->need_smtputf8;

	if (buf_printf(&c->out, "MAIL FROM:<%s>", t->m->sender) < 0 ||
	    ((c->ext.flags & SMTPC_EXT_SIZE) &&
	    buf_printf(&c->out, " SIZE=%llu", t->size) < 0) ||
	    (eight && (c->ext.flags & SMTPC_EXT_8BITMIME) &&
	    buf_puts(&c->out, " BODY=8BITMIME") < 0) ||
	    (t->m->need_smtputf8 && buf_puts(&c->out, " SMTPUTF8") < 0))
		return -1;
	return buf_puts(&c->out, "\r\n");
}

static int
put_rcpt(struct smtpc *c, const char *rcpt)
{
	return buf_printf(&c->out, "RCPT TO:<%s>\r\n", rcpt);
}

/*
 * The connection failed: every reply still empty gets the reason, so no
 * recipient is left without one.
 */
static int
lost(struct tx *t, const struct smtpc_reply *why)
{
	size_t i;

	if (t->mail_r->code == 0 && t->mail_r->text[0] == '\0')
		*t->mail_r = *why;
	for (i = 0; i < t->m->nrcpts; i++)
		if (t->rcpt_r[i].code == 0 && t->rcpt_r[i].text[0] == '\0')
			t->rcpt_r[i] = *why;
	if (t->data_r->code == 0 && t->data_r->text[0] == '\0')
		*t->data_r = *why;
	return SMTPC_TEMP;
}

/* After a 354: the body, then the reply to "." */
static int
data_phase(struct smtpc *c, struct tx *t)
{
	struct smtpc_reply why;

	if (send_body(c, t->m, &why) < 0)
		return lost(t, &why);
	if (read_reply(c, c->t_end, "the reply to the end of data",
	    t->data_r) < 0)
		return lost(t, t->data_r);
	c->need_rset = 0;
	return t->data_r->code / 100 == 2 ? SMTPC_OK : refused(t->data_r);
}

/* A 354 nobody wants (no recipient accepted): end it empty, ignore. */
static int
abort_data(struct smtpc *c, struct smtpc_reply *tmp)
{
	buf_reset(&c->out);
	if (buf_puts(&c->out, ".\r\n") < 0 ||
	    send_out(c, "the end of data", tmp) < 0)
		return -1;
	return read_reply(c, c->t_end, "the reply to the end of data", tmp);
}

/* DATA's reply in hand: go on with the body or stop. */
static int
after_data(struct smtpc *c, struct tx *t, struct smtpc_reply *dr)
{
	struct smtpc_reply tmp;

	c->need_rset = 1;
	if (t->naccepted == 0) {
		/* RFC 2920 3.1: a 354 must still be ended */
		if (dr->code == 354 && abort_data(c, &tmp) < 0)
			return lost(t, &tmp);
		return SMTPC_OK;
	}
	if (dr->code != 354) {
		*t->data_r = *dr;
		if (dr->code / 100 == 2)
			c->broken = 1;	/* lost track of the dialogue */
		return refused(dr);
	}
	return data_phase(c, t);
}

static int
tx_lockstep(struct smtpc *c, struct tx *t)
{
	struct smtpc_reply dr;
	size_t i;

	buf_reset(&c->out);
	if (put_mail(c, t) < 0) {
		local_reply(t->mail_r, 0, "4.3.0", "MAIL FROM command too "
		    "long");
		return SMTPC_TEMP;
	}
	if (send_out(c, "MAIL FROM", t->mail_r) < 0 ||
	    read_reply(c, c->t_cmd, "the reply to MAIL FROM", t->mail_r) < 0)
		return lost(t, t->mail_r);
	if (t->mail_r->code / 100 != 2)
		return refused(t->mail_r);
	c->need_rset = 1;
	for (i = 0; i < t->m->nrcpts; i++) {
		if (t->rcpt_r[i].local)
			continue;
		if (command(c, &t->rcpt_r[i], "RCPT TO", "RCPT TO:<%s>",
		    t->m->rcpts[i]) < 0)
			return lost(t, &t->rcpt_r[i]);
		if (t->rcpt_r[i].code / 100 == 2)
			t->naccepted++;
	}
	if (t->naccepted == 0)
		return SMTPC_OK;
	if (command(c, &dr, "DATA", "DATA") < 0)
		return lost(t, &dr);
	return after_data(c, t, &dr);
}

/*
 * RFC 2920: MAIL, every RCPT and DATA in one write, then the replies in
 * order.  The server's replies to a batch are small and bounded by the
 * parser; a server that neither reads nor answers runs into t_cmd.
 */
static int
tx_pipelined(struct smtpc *c, struct tx *t)
{
	struct smtpc_reply dr, tmp;
	size_t i;

	buf_reset(&c->out);
	if (put_mail(c, t) < 0)
		return -1;
	for (i = 0; i < t->m->nrcpts; i++)
		if (!t->rcpt_r[i].local && put_rcpt(c, t->m->rcpts[i]) < 0)
			return -1;
	if (buf_puts(&c->out, "DATA\r\n") < 0)
		return -1;
	if (send_out(c, "MAIL FROM", t->mail_r) < 0 ||
	    read_reply(c, c->t_cmd, "the reply to MAIL FROM", t->mail_r) < 0)
		return lost(t, t->mail_r);
	c->need_rset = 1;
	for (i = 0; i < t->m->nrcpts; i++) {
		if (t->rcpt_r[i].local)
			continue;
		if (read_reply(c, c->t_cmd, "the reply to RCPT TO",
		    &t->rcpt_r[i]) < 0)
			return lost(t, &t->rcpt_r[i]);
		if (t->rcpt_r[i].code / 100 == 2)
			t->naccepted++;
	}
	if (read_reply(c, c->t_cmd, "the reply to DATA", &dr) < 0)
		return lost(t, &dr);
	if (t->mail_r->code / 100 == 2)
		return after_data(c, t, &dr);
	/* MAIL refused: what came after it answers nothing */
	if (dr.code == 354 && abort_data(c, &tmp) < 0)
		return lost(t, &tmp);
	for (i = 0; i < t->m->nrcpts; i++)
		if (!t->rcpt_r[i].local)
			local_reply(&t->rcpt_r[i], 0, "", "not attempted: "
			    "MAIL FROM was refused");
	return refused(t->mail_r);
}

/* Refusals decided here, before anything is sent. */
static int
tx_check(struct smtpc *c, struct tx *t)
{
	const struct smtpc_msg *m = t->m;
	char why[128];
	size_t i;

	if (!addr_ok(m->sender)) {
		local_reply(t->mail_r, 501, "5.1.7", "invalid sender address");
		return SMTPC_PERM;
	}
	if (m->need_smtputf8 && !(c->ext.flags & SMTPC_EXT_SMTPUTF8)) {
		local_reply(t->mail_r, 553, "5.6.7", "SMTPUTF8 is required, "
		    "but was not offered by %s", c->peer);
		return SMTPC_PERM;
	}
	if (c->ext.flags & SMTPC_EXT_SIZE) {
		if (wire_size(c, m, &t->size, why, sizeof(why)) < 0) {
			local_reply(t->mail_r, 0, "4.3.0", "cannot read the "
			    "queued message: %s", why);
			return lost(t, t->mail_r);
		}
		if (c->ext.size > 0 && t->size > c->ext.size) {
			local_reply(t->mail_r, 552, "5.3.4", "message size "
			    "%llu exceeds the size limit %llu of %s",
			    t->size, c->ext.size, c->peer);
			return SMTPC_PERM;
		}
	}
	for (i = 0; i < m->nrcpts; i++)
		if (!addr_ok(m->rcpts[i]))
			local_reply(&t->rcpt_r[i], 501, "5.1.3",
			    "invalid recipient address");
	return SMTPC_OK;
}

int
smtpc_send(struct smtpc *c, const struct smtpc_msg *m,
    struct smtpc_reply *mail_r, struct smtpc_reply *rcpt_r,
    struct smtpc_reply *data_r)
{
	struct tx t = { m, mail_r, rcpt_r, data_r, 0, 0 };
	struct smtpc_reply why;
	size_t i;
	int rc;

	memset(mail_r, 0, sizeof(*mail_r));
	memset(data_r, 0, sizeof(*data_r));
	for (i = 0; i < m->nrcpts; i++)
		memset(&rcpt_r[i], 0, sizeof(rcpt_r[i]));
	if (c->broken) {
		local_reply(&why, 0, "4.4.2", "the session with %s can no "
		    "longer be used", c->peer);
		return lost(&t, &why);
	}
	if ((rc = tx_check(c, &t)) != SMTPC_OK)
		return rc;
	if (c->need_rset) {
		if (command(c, &why, "RSET", "RSET") < 0)
			return lost(&t, &why);
		if (why.code / 100 != 2) {
			/* not a verdict on this message: code 0 */
			c->broken = 1;
			local_reply(&why, 0, "4.4.2", "%s refused RSET: %s",
			    c->peer, why.text);
			return lost(&t, &why);
		}
		c->need_rset = 0;
	}
	if (c->ext.flags & SMTPC_EXT_PIPELINING) {
		rc = tx_pipelined(c, &t);
		if (rc >= 0)
			return rc;
		/* a batch too big for one write: one command at a time */
	}
	return tx_lockstep(c, &t);
}

const struct smtpc_reply *
smtpc_rcpt_result(const struct smtpc_reply *mail_r,
    const struct smtpc_reply *rcpt_r, const struct smtpc_reply *data_r,
    size_t i)
{
	const struct smtpc_reply *r = &rcpt_r[i];

	if (r->code >= 300)
		return r;		/* refused, whatever became of the rest */
	if (r->code >= 200)
		return data_r;		/* accepted: the data decides */
	if (mail_r->code >= 300)
		return mail_r;		/* never got as far as RCPT */
	return r;			/* no answer: why is in its text */
}

void
smtpc_close(struct smtpc **cp)
{
	struct smtpc *c = *cp;
	struct smtpc_reply r;

	if (c == NULL)
		return;
	*cp = NULL;
	if (c->fd >= 0 && !c->broken) {
		unsigned t = c->t_cmd < QUIT_TIMEOUT ? c->t_cmd : QUIT_TIMEOUT;

		c->t_cmd = t;
		(void)command(c, &r, "QUIT", "QUIT");
	}
	if (c->ssl != NULL) {
		/* one try at close_notify: never wait for the peer's */
		if (!c->broken)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	if (c->fd >= 0)
		close(c->fd);
	smtpc_rparser_free(&c->rp);
	buf_free(&c->out);
	free(c->ibuf);
	free(c->obuf);
	free(c);
}
