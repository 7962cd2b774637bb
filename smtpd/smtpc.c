/*
 * smtpc.c - one outbound SMTP session (see smtpc.h): the dialogue over
 * the transport of smtpc_io.c - greeting, EHLO, STARTTLS, AUTH,
 * transactions (pipelined when offered), the body, QUIT.
 *
 * Replies go through the pure parser of smtpc_reply.c, which bounds
 * them.  Rules this file must never break: AUTH is only sent inside TLS;
 * nothing read before the TLS handshake is used after it (CVE-2011-0411:
 * a reply injected behind "220 ready"); an address is written so that
 * nothing in it can end its path early; a recipient counts as delivered
 * only by the reply to the final ".".
 */
#include "smtpc_private.h"
#include "../common/addr.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/x509.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#define BODY_CHUNK	32768		/* bytes of the queue file per read */
#define OBUF_SIZE	(3 * BODY_CHUNK + 16)	/* see send_body() */
#define CMD_MAX		(256 * 1024)	/* a pipelined MAIL+RCPTs+DATA batch */
#define ADDR_TEXT_MAX	1000		/* longer sender/recipient: refused */
#define AUTH_MAX	1024		/* user + password */
#define QUIT_TIMEOUT	5

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
	long long deadline = smtpc_deadline(timeout);
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
		if (smtpc_io_read(c, deadline) < 0) {
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

	if (smtpc_io_write(c, c->out.data, c->out.len,
	    smtpc_deadline(c->t_cmd)) == 0)
		return 0;
	snprintf(w, sizeof(w), "sending %s", what);
	io_failed(c, r, w);
	return -1;
}

/*
 * c->out holds a command (or a pipelined batch): write it and read one
 * reply within timeout.  0 (r is the reply) or -1 (r says why).
 */
static int
exchange(struct smtpc *c, struct smtpc_reply *r, const char *what,
    unsigned timeout)
{
	char w[128];

	if (c->broken) {
		/* after a 421 or a failure: the server is gone */
		local_reply(r, 0, "4.4.2", "session with %s already ended "
		    "before %s", c->peer, what);
		return -1;
	}
	if (send_out(c, what, r) < 0)
		return -1;
	snprintf(w, sizeof(w), "the reply to %s", what);
	return read_reply(c, timeout, w, r);
}

static int
too_long(struct smtpc_reply *r, const char *what)
{
	local_reply(r, 0, "4.3.0", "%s command too long", what);
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
	va_list ap;
	int rc;

	buf_reset(&c->out);
	va_start(ap, fmt);
	rc = buf_vprintf(&c->out, fmt, ap);
	va_end(ap);
	if (rc < 0 || buf_puts(&c->out, "\r\n") < 0)
		return too_long(r, what);
	return exchange(c, r, what, c->t_cmd);
}

/* TEMP or PERM after a reply that is not the one wanted. */
static int
refused(const struct smtpc_reply *r)
{
	return r->code / 100 == 5 ? SMTPC_PERM : SMTPC_TEMP;
}

static int
connect_to(struct smtpc *c, const struct sockaddr *dst, socklen_t dstlen,
    const struct sockaddr *src, socklen_t srclen, struct smtpc_reply *r)
{
	if (smtpc_io_connect(c, dst, dstlen, src, srclen, c->t_connect) == 0)
		return 0;
	local_reply(r, 0, "4.4.1", "connect to %s: %s", c->peer, c->ioerr);
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
tls_handshake(struct smtpc *c, const struct smtpc_opts *o,
    struct smtpc_reply *r)
{
	if (smtpc_io_starttls(c, o->ssl_ctx, o->sni, c->t_cmd) == 0)
		return 0;
	/* no plaintext either: the server is somewhere in its handshake */
	c->broken = 1;
	local_reply(r, 0, "4.7.5", "TLS handshake with %s failed: %s",
	    c->peer, c->ioerr);
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
	if (o->tls_verify && !c->verified) {
		c->broken = 1;
		local_reply(r, 0, "4.7.5", "TLS certificate of %s does not "
		    "verify: %s", c->peer, X509_verify_cert_error_string(
		    SSL_get_verify_result(c->ssl)));
		return SMTPC_TEMP;
	}
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

/*
 * One line of credentials: prefix, then raw in base64, sent and answered
 * lockstep.  The encoded copy and the command buffer are wiped whatever
 * happens.  0 (r is the reply) or -1.
 */
static int
send_secret(struct smtpc *c, struct smtpc_reply *r, const char *prefix,
    const char *raw, size_t rawlen)
{
	char b64[(AUTH_MAX + 2) / 3 * 4 + 8];
	int rc;

	rc = base64(raw, rawlen, b64, sizeof(b64));
	if (rc == 0)
		rc = command(c, r, "AUTH", "%s%s", prefix, b64);
	OPENSSL_cleanse(b64, sizeof(b64));
	OPENSSL_cleanse(c->out.data, c->out.len);
	return rc;
}

/* AUTH PLAIN with the initial response (RFC 4954, RFC 4616). */
static int
auth_plain(struct smtpc *c, const char *user, const char *pass,
    struct smtpc_reply *r)
{
	char raw[AUTH_MAX + 2];
	size_t ul = strlen(user), pl = strlen(pass);
	int rc;

	raw[0] = '\0';
	memcpy(raw + 1, user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, pass, pl);
	rc = send_secret(c, r, "AUTH PLAIN ", raw, ul + pl + 2);
	OPENSSL_cleanse(raw, sizeof(raw));
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
	const char *step[2] = { user, pass };
	int i;

	if (command(c, r, "AUTH", "AUTH LOGIN") < 0)
		return SMTPC_TEMP;
	for (i = 0; i < 2; i++) {
		if (r->code != 334)
			return r->code / 100 == 2 ? SMTPC_TEMP : refused(r);
		if (send_secret(c, r, "", step[i], strlen(step[i])) < 0)
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
	smtpc_addr_string(dst, c->peer, sizeof(c->peer));
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

/*
 * The message as it goes out: the prefix, then the queue file, each a
 * piece of at most BODY_CHUNK at a time through one encoder.
 */
struct body_walk {
	struct smtpc_enc e;
	size_t pos;		/* in the prefix */
	off_t off;		/* in the file */
	size_t olen;		/* encoded bytes waiting in c->obuf */
};

static void
body_walk_init(struct body_walk *w, int stuff)
{
	memset(w, 0, sizeof(*w));
	smtpc_enc_init(&w->e, stuff);
}

/*
 * Encode the next piece after the olen bytes in c->obuf (which grow by
 * at most 2 * BODY_CHUNK + 1): 1, 0 at the end, -1 with why when the
 * queue file cannot be read.
 */
static int
body_next(struct smtpc *c, const struct smtpc_msg *m, struct body_walk *w,
    char *why, size_t whylen)
{
	size_t n;
	ssize_t got;

	if (w->pos < m->prefix_len) {
		n = m->prefix_len - w->pos > BODY_CHUNK ? BODY_CHUNK :
		    m->prefix_len - w->pos;
		w->olen += smtpc_enc_bytes(&w->e, m->prefix + w->pos, n,
		    c->obuf + w->olen);
		w->pos += n;
		return 1;
	}
	if (w->off >= m->size)
		return 0;
	if ((got = read_piece(c, m, w->off, why, whylen)) < 0)
		return -1;
	w->olen += smtpc_enc_bytes(&w->e, c->ibuf, (size_t)got,
	    c->obuf + w->olen);
	w->off += got;
	return 1;
}

/* Octets of the message on the wire for SIZE (RFC 1870: no stuffing). */
static int
wire_size(struct smtpc *c, const struct smtpc_msg *m,
    unsigned long long *size, char *why, size_t whylen)
{
	struct body_walk w;
	unsigned long long total = 0;
	int r;

	body_walk_init(&w, 0);
	while ((r = body_next(c, m, &w, why, whylen)) > 0) {
		total += w.olen;
		w.olen = 0;
	}
	if (r < 0)
		return -1;
	*size = total + smtpc_enc_end(&w.e, c->obuf);
	return 0;
}

static int
flush_body(struct smtpc *c, size_t *olen, struct smtpc_reply *r)
{
	if (smtpc_io_write(c, c->obuf, *olen, smtpc_deadline(c->t_block)) < 0) {
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
	struct body_walk w;
	char why[128];
	int more;

	body_walk_init(&w, 1);
	while ((more = body_next(c, m, &w, why, sizeof(why))) > 0)
		if (w.olen >= BODY_CHUNK && flush_body(c, &w.olen, r) < 0)
			return -1;
	if (more < 0) {
		c->broken = 1;
		local_reply(r, 0, "4.3.0", "cannot read the queued message: %s",
		    why);
		return -1;
	}
	w.olen += smtpc_enc_end(&w.e, c->obuf + w.olen);
	memcpy(c->obuf + w.olen, ".\r\n", 3);
	w.olen += 3;
	return flush_body(c, &w.olen, r);
}

/* Sender and recipients go into command lines: no control characters. */
static int
addr_ok(const char *a)
{
	size_t i;

	for (i = 0; a[i] != '\0'; i++)
		if ((unsigned char)a[i] < 0x20 || a[i] == 0x7f || i >= ADDR_TEXT_MAX)
			return 0;
	return 1;
}

struct tx {
	const struct smtpc_msg *m;
	struct smtpc_reply *mail_r, *rcpt_r, *data_r;
	unsigned long long size;	/* for SIZE=; 0: not sent */
	size_t naccepted;
};

/*
 * <local@domain> for MAIL and RCPT (RFC 5321 4.1.2).  Addresses are kept
 * with the local part unquoted (addr.h), so one that is not a Dot-string
 * goes back into quotes, '"' and '\\' escaped: written bare, a space or
 * '>' in it would end the path and the rest would read as parameters.
 */
static int
put_path(struct buf *b, const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t i, llen = at != NULL ? (size_t)(at - addr) : strlen(addr);
	int r = 0;

	if (addr[0] == '\0' || addr_is_dot_string(addr, llen, 1))
		return buf_printf(b, "<%s>", addr);
	r |= buf_puts(b, "<\"");
	for (i = 0; i < llen; i++) {
		if (addr[i] == '"' || addr[i] == '\\')
			r |= buf_putc(b, '\\');
		r |= buf_putc(b, addr[i]);
	}
	r |= buf_printf(b, "\"%s>", at != NULL ? at : "");
	return r;
}

static int
put_mail(struct smtpc *c, const struct tx *t)
{
	int eight = t->m->eightbit || t->m->need_smtputf8;

	if (buf_puts(&c->out, "MAIL FROM:") < 0 ||
	    put_path(&c->out, t->m->sender) < 0 ||
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
	if (buf_puts(&c->out, "RCPT TO:") < 0 || put_path(&c->out, rcpt) < 0)
		return -1;
	return buf_puts(&c->out, "\r\n");
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
	if (buf_puts(&c->out, ".\r\n") < 0)
		return too_long(tmp, "the end of data");
	return exchange(c, tmp, "the end of data", c->t_end);
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
	if (dr->code / 100 == 4 || dr->code / 100 == 5) {
		*t->data_r = *dr;
		return refused(dr);
	}
	if (dr->code != 354) {
		/*
		 * No answer DATA may have: the body never went out, so no
		 * recipient may count as delivered by it (code 0).
		 */
		c->broken = 1;		/* lost track of the dialogue */
		local_reply(t->data_r, 0, "4.5.0", "protocol error from %s: "
		    "DATA answered \"%s\"", c->peer, dr->text);
		return SMTPC_TEMP;
	}
	return data_phase(c, t);
}

/*
 * The replies to the RCPTs: each sent and answered in turn, or when
 * pipelined only read (the batch is out).  SMTPC_OK, or SMTPC_TEMP
 * when the session broke (lost() has filled in the rest).
 */
static int
rcpt_replies(struct smtpc *c, struct tx *t, int pipelined)
{
	struct smtpc_reply *r;
	size_t i;
	int rc;

	for (i = 0; i < t->m->nrcpts; i++) {
		r = &t->rcpt_r[i];
		if (r->local)
			continue;
		if (pipelined) {
			rc = read_reply(c, c->t_cmd, "the reply to RCPT TO", r);
		} else {
			buf_reset(&c->out);
			rc = put_rcpt(c, t->m->rcpts[i]) < 0 ?
			    too_long(r, "RCPT TO") :
			    exchange(c, r, "RCPT TO", c->t_cmd);
		}
		if (rc < 0)
			return lost(t, r);
		if (r->code / 100 == 2)
			t->naccepted++;
	}
	return SMTPC_OK;
}

static int
tx_lockstep(struct smtpc *c, struct tx *t)
{
	struct smtpc_reply dr;
	int rc;

	buf_reset(&c->out);
	if (put_mail(c, t) < 0) {
		too_long(t->mail_r, "MAIL FROM");
		return SMTPC_TEMP;
	}
	if (exchange(c, t->mail_r, "MAIL FROM", c->t_cmd) < 0)
		return lost(t, t->mail_r);
	if (t->mail_r->code / 100 != 2)
		return refused(t->mail_r);
	c->need_rset = 1;
	if ((rc = rcpt_replies(c, t, 0)) != SMTPC_OK)
		return rc;
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
 * -1 when the batch does not fit in one write (nothing sent).
 */
static int
tx_pipelined(struct smtpc *c, struct tx *t)
{
	struct smtpc_reply dr, tmp;
	size_t i;
	int rc;

	buf_reset(&c->out);
	if (put_mail(c, t) < 0)
		return -1;
	for (i = 0; i < t->m->nrcpts; i++)
		if (!t->rcpt_r[i].local && put_rcpt(c, t->m->rcpts[i]) < 0)
			return -1;
	if (buf_puts(&c->out, "DATA\r\n") < 0)
		return -1;
	if (exchange(c, t->mail_r, "MAIL FROM", c->t_cmd) < 0)
		return lost(t, t->mail_r);
	c->need_rset = 1;
	if ((rc = rcpt_replies(c, t, 1)) != SMTPC_OK)
		return rc;
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
	smtpc_io_close(c, !c->broken);
	smtpc_rparser_free(&c->rp);
	buf_free(&c->out);
	free(c->ibuf);
	free(c->obuf);
	free(c);
}
