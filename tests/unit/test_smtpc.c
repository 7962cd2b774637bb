/*
 * test_smtpc.c - the outbound SMTP client against scripted fake servers.
 *
 * Each case runs a fake server in a thread on 127.0.0.1 (port 0) that
 * plays one script: what it sends, what it expects to read.  The server
 * never calls cmocka (its asserts longjmp); it records the first
 * difference in fake.fail, which the test checks after joining it.
 * Every wait is bounded: the fake's sockets have 5 s timeouts, the
 * client's timeouts are a few seconds, and alarm() stops a hung case.
 * The pure reply and EHLO parsers are tested first, on their own.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "smtpd/smtpc.h"

/* ---- the pure parsers ---- */

/* Feed s one byte at a time: the reply must complete on the last byte. */
static enum smtpc_feed
feed_bytewise(struct smtpc_rparser *p, const char *s, size_t len,
    struct smtpc_reply *r)
{
	enum smtpc_feed f = SMTPC_FEED_MORE;
	size_t i, used;

	for (i = 0; i < len; i++) {
		f = smtpc_reply_feed(p, s + i, 1, &used, r);
		assert_int_equal(used, 1);
		if (f != SMTPC_FEED_MORE)
			break;
	}
	return f;
}

static void
test_reply_parser_basic(void **state)
{
	struct smtpc_rparser p;
	struct smtpc_reply r;
	const char *two = "250-mx.test hello\r\n250-PIPELINING\r\n"
	    "250 SIZE 1000\r\n550 5.1.1 no such user\n";
	const char *lines;
	size_t used, n;

	(void)state;
	smtpc_rparser_init(&p);
	/* two replies in one feed: the first is handed back alone */
	assert_int_equal(smtpc_reply_feed(&p, two, strlen(two), &used, &r),
	    SMTPC_FEED_DONE);
	assert_int_equal(used, strlen(two) - strlen("550 5.1.1 no such user\n"));
	assert_int_equal(r.code, 250);
	assert_string_equal(r.text,
	    "250 mx.test hello / PIPELINING / SIZE 1000");
	assert_string_equal(r.enhanced, "");
	assert_int_equal(r.local, 0);
	lines = smtpc_reply_lines(&p, &n);
	assert_int_equal(n, strlen("mx.test hello\nPIPELINING\nSIZE 1000\n"));
	assert_memory_equal(lines, "mx.test hello\nPIPELINING\nSIZE 1000\n", n);
	/* the rest: a bare LF ends a line too */
	assert_int_equal(smtpc_reply_feed(&p, two + used, strlen(two) - used,
	    &n, &r), SMTPC_FEED_DONE);
	assert_int_equal(r.code, 550);
	assert_string_equal(r.enhanced, "5.1.1");
	assert_string_equal(r.text, "550 5.1.1 no such user");

	/* byte by byte, and a code without text */
	assert_int_equal(feed_bytewise(&p, "221\r\n", 5, &r), SMTPC_FEED_DONE);
	assert_int_equal(r.code, 221);
	assert_string_equal(r.text, "221");
	assert_int_equal(feed_bytewise(&p, "354-a\r\n354 b\r\n", 14, &r),
	    SMTPC_FEED_DONE);
	assert_string_equal(r.text, "354 a / b");
	/* a partial line is kept until its end arrives */
	assert_int_equal(smtpc_reply_feed(&p, "250 o", 5, &used, &r),
	    SMTPC_FEED_MORE);
	assert_int_equal(used, 5);
	assert_int_equal(smtpc_reply_feed(&p, "k\r\n", 3, &used, &r),
	    SMTPC_FEED_DONE);
	assert_string_equal(r.text, "250 ok");
	/* the text is made printable */
	assert_int_equal(feed_bytewise(&p, "250 a\001b\377c\td\r\n", 14, &r),
	    SMTPC_FEED_DONE);
	assert_string_equal(r.text, "250 a?b?c d");
	smtpc_rparser_free(&p);
}

static enum smtpc_feed
feed_one(const char *s, size_t len, struct smtpc_reply *r)
{
	struct smtpc_rparser p;
	struct smtpc_reply again;
	enum smtpc_feed f;
	size_t used;

	smtpc_rparser_init(&p);
	f = smtpc_reply_feed(&p, s, len, &used, r);
	if (f == SMTPC_FEED_ERROR)
		/* sticky */
		assert_int_equal(smtpc_reply_feed(&p, "250 ok\r\n", 8, &used,
		    &again), SMTPC_FEED_ERROR);
	smtpc_rparser_free(&p);
	return f;
}

static void
test_reply_parser_errors(void **state)
{
	struct smtpc_reply r;
	static char big[80000];
	size_t i, n;

	(void)state;
	assert_int_equal(feed_one("hello\r\n", 7, &r), SMTPC_FEED_ERROR);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.local, 1);
	assert_non_null(strstr(r.text, "no reply code"));
	assert_int_equal(feed_one("25\r\n", 4, &r), SMTPC_FEED_ERROR);
	assert_int_equal(feed_one("250x\r\n", 6, &r), SMTPC_FEED_ERROR);
	assert_int_equal(feed_one("150 what\r\n", 10, &r), SMTPC_FEED_ERROR);
	assert_int_equal(feed_one("650 what\r\n", 10, &r), SMTPC_FEED_ERROR);
	assert_int_equal(feed_one("2a0 what\r\n", 10, &r), SMTPC_FEED_ERROR);
	assert_int_equal(feed_one("250-a\r\n251 b\r\n", 14, &r),
	    SMTPC_FEED_ERROR);
	assert_non_null(strstr(r.text, "code changed"));

	/* a line of 2048 octets with its CRLF is fine, one more is not */
	memcpy(big, "250 ", 4);
	memset(big + 4, 'x', 2042);
	memcpy(big + 2046, "\r\n", 2);
	assert_int_equal(feed_one(big, 2048, &r), SMTPC_FEED_DONE);
	assert_int_equal(strlen(r.text), SMTPC_TEXT_MAX - 1);
	assert_string_equal(r.text + SMTPC_TEXT_MAX - 4, "...");
	memset(big + 4, 'x', 2043);
	memcpy(big + 2047, "\r\n", 2);
	assert_int_equal(feed_one(big, 2049, &r), SMTPC_FEED_ERROR);
	assert_non_null(strstr(r.text, "line too long"));

	/* 100 lines are fine, 101 are not */
	for (i = 0, n = 0; i < 101; i++) {
		memcpy(big + n, i == 99 ? "250 x\r\n" : "250-x\r\n", 7);
		n += 7;
	}
	assert_int_equal(feed_one(big, 700, &r), SMTPC_FEED_DONE);
	memcpy(big + 99 * 7, "250-x\r\n", 7);
	memcpy(big + 100 * 7, "250 x\r\n", 7);
	assert_int_equal(feed_one(big, 707, &r), SMTPC_FEED_ERROR);
	assert_non_null(strstr(r.text, "too many lines"));

	/* 64 KiB in all */
	for (i = 0, n = 0; i < 40; i++) {
		memcpy(big + n, "250-", 4);
		memset(big + n + 4, 'y', 1700);
		memcpy(big + n + 1704, "\r\n", 2);
		n += 1706;
	}
	memcpy(big + n, "250 end\r\n", 9);
	assert_int_equal(feed_one(big, n + 9, &r), SMTPC_FEED_ERROR);
	assert_non_null(strstr(r.text, "too long"));
}

static void
test_enhanced_codes(void **state)
{
	char e[16];

	(void)state;
	assert_int_equal(smtpc_enhanced_code("5.1.1 no", 8, 550, e), 5);
	assert_string_equal(e, "5.1.1");
	assert_int_equal(smtpc_enhanced_code("4.7.0", 5, 421, e), 5);
	assert_int_equal(smtpc_enhanced_code("2.123.456 ok", 12, 250, e), 9);
	assert_string_equal(e, "2.123.456");
	/* class must match the reply code */
	assert_int_equal(smtpc_enhanced_code("4.1.1 x", 7, 550, e), 0);
	assert_string_equal(e, "");
	assert_int_equal(smtpc_enhanced_code("5.1234.1 x", 10, 550, e), 0);
	assert_int_equal(smtpc_enhanced_code("5.1.1x", 6, 550, e), 0);
	assert_int_equal(smtpc_enhanced_code("5..1 x", 6, 550, e), 0);
	assert_int_equal(smtpc_enhanced_code("3.1.1 x", 7, 354, e), 0);
	assert_int_equal(smtpc_enhanced_code("5.1.", 4, 550, e), 0);
	assert_int_equal(smtpc_enhanced_code("ok", 2, 250, e), 0);
}

static void
ehlo(const char *lines, struct smtpc_ext *x)
{
	smtpc_ehlo_parse(lines, strlen(lines), x);
}

static void
test_ehlo_parse(void **state)
{
	struct smtpc_ext x;

	(void)state;
	ehlo("mx.test greets you\npipelining\nSize 52428800\nSTARTTLS\n"
	    "AUTH LOGIN PLAIN CRAM-MD5\n8BITMIME\nSMTPUTF8\n"
	    "ENHANCEDSTATUSCODES\nCHUNKING\nDSN\nX-UNKNOWN 1\n", &x);
	assert_int_equal(x.flags, SMTPC_EXT_PIPELINING | SMTPC_EXT_SIZE |
	    SMTPC_EXT_STARTTLS | SMTPC_EXT_AUTH | SMTPC_EXT_8BITMIME |
	    SMTPC_EXT_SMTPUTF8 | SMTPC_EXT_ENHANCEDSTATUSCODES |
	    SMTPC_EXT_CHUNKING | SMTPC_EXT_DSN);
	assert_int_equal(x.size, 52428800);
	assert_int_equal(x.auth, SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN);
	/* the first line is the name, even if it looks like a keyword */
	ehlo("PIPELINING\n", &x);
	assert_int_equal(x.flags, 0);
	ehlo("", &x);
	assert_int_equal(x.flags, 0);
	/* old AUTH= form, SIZE without a usable limit */
	ehlo("mx\nAUTH=LOGIN\nSIZE\n", &x);
	assert_int_equal(x.flags, SMTPC_EXT_AUTH | SMTPC_EXT_SIZE);
	assert_int_equal(x.auth, SMTPC_AUTH_LOGIN);
	assert_int_equal(x.size, 0);
	ehlo("mx\nSIZE 12x\nAUTH CRAM-MD5\nPIPELININGX\n", &x);
	assert_int_equal(x.flags, SMTPC_EXT_AUTH | SMTPC_EXT_SIZE);
	assert_int_equal(x.size, 0);
	assert_int_equal(x.auth, 0);
	ehlo("mx\nSIZE 99999999999999999999999\n", &x);
	assert_int_equal(x.size, 0);
}

static size_t
enc(const char *in, int stuff, char *out)
{
	struct smtpc_enc e;
	size_t n;

	smtpc_enc_init(&e, stuff);
	n = smtpc_enc_bytes(&e, in, strlen(in), out);
	n += smtpc_enc_end(&e, out + n);
	out[n] = '\0';
	return n;
}

static void
test_data_encoder(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(enc("", 1, out), 0);
	enc("a\n.b\r\n..\n.", 1, out);
	assert_string_equal(out, "a\r\n..b\r\n...\r\n..\r\n");
	enc("a\n.b\r\n..\n.", 0, out);
	assert_string_equal(out, "a\r\n.b\r\n..\r\n.\r\n");
	/* a bare CR is no line end; a CR at the very end is one */
	enc("x\r.y\r", 1, out);
	assert_string_equal(out, "x\r.y\r\n");
	enc("\r\n\n", 1, out);
	assert_string_equal(out, "\r\n\r\n");
}

/* ---- the fake server ---- */

#define FAKE_IN_MAX (512 * 1024)

struct fake {
	int lfd, fd;
	unsigned short port;
	pthread_t th;
	void (*script)(struct fake *);
	SSL_CTX *sctx;
	SSL *ssl;
	char in[FAKE_IN_MAX];	/* received, not yet consumed */
	size_t inlen;
	char data[FAKE_IN_MAX];	/* the last DATA, terminator included */
	size_t datalen;
	char fail[512];		/* first deviation from the script */
	int done;
	int param;		/* per-case knob */
};

static SSL_CTX *client_ctx;
static SSL_CTX *server_ctx;

static void
f_fail(struct fake *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
f_fail(struct fake *f, const char *fmt, ...)
{
	va_list ap;

	if (f->fail[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(f->fail, sizeof(f->fail), fmt, ap);
	va_end(ap);
}

/* Read more: > 0 bytes, 0 EOF, -1 nothing within ms. */
static int
f_fill(struct fake *f, int ms)
{
	struct pollfd pfd = { f->fd, POLLIN, 0 };
	ssize_t n;

	if (f->inlen >= sizeof(f->in))
		return -1;
	if ((f->ssl == NULL || SSL_pending(f->ssl) == 0) &&
	    poll(&pfd, 1, ms) <= 0)
		return -1;
	if (f->ssl != NULL)
		n = SSL_read(f->ssl, f->in + f->inlen,
		    (int)(sizeof(f->in) - f->inlen));
	else
		n = recv(f->fd, f->in + f->inlen, sizeof(f->in) - f->inlen,
		    0);
	if (n <= 0)
		return 0;
	f->inlen += (size_t)n;
	return (int)n;
}

static void
f_consume(struct fake *f, size_t n)
{
	memmove(f->in, f->in + n, f->inlen - n);
	f->inlen -= n;
}

static int
f_line(struct fake *f, char *out, size_t outsz)
{
	char *e;
	size_t n;

	while ((e = memmem(f->in, f->inlen, "\r\n", 2)) == NULL) {
		if (f_fill(f, 5000) <= 0) {
			f_fail(f, "expected a command, got %s",
			    f->inlen ? "a partial line" : "nothing");
			return -1;
		}
	}
	n = (size_t)(e - f->in);
	snprintf(out, outsz, "%.*s", (int)n, f->in);
	f_consume(f, n + 2);
	return 0;
}

static int
f_expect(struct fake *f, const char *want)
{
	char line[4096];

	if (f_line(f, line, sizeof(line)) < 0)
		return -1;
	if (strcmp(line, want) != 0) {
		f_fail(f, "expected \"%s\", got \"%s\"", want, line);
		return -1;
	}
	return 0;
}

static void
f_send(struct fake *f, const char *s)
{
	size_t len = strlen(s);

	if (f->ssl != NULL) {
		if (SSL_write(f->ssl, s, (int)len) != (int)len)
			f_fail(f, "TLS write failed");
	} else if (send(f->fd, s, len, MSG_NOSIGNAL) != (ssize_t)len) {
		f_fail(f, "write failed: %s", strerror(errno));
	}
}

/* Read the message up to and including CRLF "." CRLF. */
static int
f_data(struct fake *f)
{
	char *e;
	size_t n;

	while ((e = memmem(f->in, f->inlen, "\r\n.\r\n", 5)) == NULL) {
		if (f_fill(f, 5000) <= 0) {
			f_fail(f, "message not ended by CRLF.CRLF");
			return -1;
		}
	}
	n = (size_t)(e - f->in) + 5;
	memcpy(f->data, f->in, n);
	f->datalen = n;
	f_consume(f, n);
	return 0;
}

/* Nothing more arrives within ms. */
static int
f_quiet(struct fake *f, int ms)
{
	return f->inlen == 0 && f_fill(f, ms) < 0;
}

/* Wait for the client to close (it must, after its timeout). */
static void
f_wait_eof(struct fake *f)
{
	int n;

	while ((n = f_fill(f, 5000)) > 0)
		f->inlen = 0;
	if (n < 0)
		f_fail(f, "client did not close");
}

static void
f_starttls(struct fake *f)
{
	f->inlen = 0;
	f->ssl = SSL_new(server_ctx);
	SSL_set_fd(f->ssl, f->fd);
	if (SSL_accept(f->ssl) != 1) {
		f_fail(f, "TLS handshake failed");
		ERR_clear_error();
	}
}

/* Greeting and EHLO with the given reply. */
static int
f_hello(struct fake *f, const char *ehlo_reply)
{
	f_send(f, "220 mx.test ESMTP\r\n");
	if (f_expect(f, "EHLO client.test") < 0)
		return -1;
	f_send(f, ehlo_reply);
	return 0;
}

static void
f_quit(struct fake *f)
{
	if (f_expect(f, "QUIT") == 0)
		f_send(f, "221 2.0.0 bye\r\n");
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;
	struct pollfd pfd = { f->lfd, POLLIN, 0 };
	struct timeval tv = { 5, 0 };

	if (poll(&pfd, 1, 10000) <= 0 ||
	    (f->fd = accept(f->lfd, NULL, NULL)) < 0) {
		f_fail(f, "no connection");
		return NULL;
	}
	/* a blocking socket whose every wait is bounded */
	setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(f->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	f->script(f);
	if (f->ssl != NULL) {
		SSL_shutdown(f->ssl);
		SSL_free(f->ssl);
		f->ssl = NULL;
	}
	close(f->fd);
	ERR_clear_error();
	f->done = 1;
	return NULL;
}

static struct fake *
fake_start(void (*script)(struct fake *), int param)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	assert_non_null(f);
	f->script = script;
	f->param = param;
	f->fd = -1;
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sin, &len), 0);
	f->port = ntohs(sin.sin_port);
	assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
	return f;
}

/* Join the server and check that it went through its script. */
static void
fake_finish(struct fake *f)
{
	pthread_join(f->th, NULL);
	close(f->lfd);
	if (f->fail[0] != '\0')
		fail_msg("fake server: %s", f->fail);
	assert_true(f->done);
}

static void
fake_free(struct fake *f)
{
	free(f);
}

static struct smtpc_opts
opts_default(void)
{
	struct smtpc_opts o;

	memset(&o, 0, sizeof(o));
	o.helo = "client.test";
	o.sni = "mx.test";
	o.tls = SMTPC_TLS_NONE;
	o.ssl_ctx = client_ctx;
	o.timeout_connect = 5;
	o.timeout_greeting = 5;
	o.timeout_cmd = 5;
	o.timeout_data_block = 5;
	o.timeout_data_end = 5;
	return o;
}

static int
client_open(struct fake *f, const struct smtpc_opts *o, struct smtpc **c,
    struct smtpc_reply *r)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons(f->port);
	return smtpc_open((struct sockaddr *)&sin, sizeof(sin), NULL, 0, o, c,
	    r);
}

/* A queue file holding s. */
static int
msg_fd(const char *s)
{
	int fd = memfd_create("msg", 0);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, strlen(s)), (ssize_t)strlen(s));
	return fd;
}

static struct smtpc_msg
msg_make(const char *const *rcpts, size_t n, const char *prefix,
    const char *body)
{
	struct smtpc_msg m;

	memset(&m, 0, sizeof(m));
	m.sender = "sender@client.test";
	m.rcpts = rcpts;
	m.nrcpts = n;
	m.prefix = prefix;
	m.prefix_len = prefix ? strlen(prefix) : 0;
	m.fd = msg_fd(body);
	m.size = (off_t)strlen(body);
	return m;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- sessions ---- */

static const char *const PREFIX = "DKIM-Signature: v=1;\n\tb=xyz\n";
static const char *const BODY = "Subject: hi\n\n.leading dot\nmiddle\n"
    "..two dots\n.\ncrlf kept\r\nlast line without LF";
static const char *const WIRE = "DKIM-Signature: v=1;\r\n\tb=xyz\r\n"
    "Subject: hi\r\n\r\n..leading dot\r\nmiddle\r\n...two dots\r\n..\r\n"
    "crlf kept\r\nlast line without LF\r\n.\r\n";
/* RFC 1870: CRLFs counted, stuffed dots and the final "." not */
#define WIRE_SIZE (strlen(WIRE) - 3 - 3)

static void
script_pipelined(struct fake *f)
{
	char want[256];

	if (f_hello(f, "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n"
	    "250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n") < 0)
		return;
	/* the whole batch must come before any reply to it */
	while (memmem(f->in, f->inlen, "DATA\r\n", 6) == NULL)
		if (f_fill(f, 3000) <= 0) {
			f_fail(f, "no pipelined batch: got \"%.*s\"",
			    (int)f->inlen, f->in);
			return;
		}
	snprintf(want, sizeof(want), "MAIL FROM:<sender@client.test> "
	    "SIZE=%zu BODY=8BITMIME\r\nRCPT TO:<a@mx.test>\r\n"
	    "RCPT TO:<b@mx.test>\r\nDATA\r\n", WIRE_SIZE);
	if (f->inlen != strlen(want) || memcmp(f->in, want, f->inlen) != 0) {
		f_fail(f, "batch \"%.*s\"", (int)f->inlen, f->in);
		return;
	}
	f->inlen = 0;
	f_send(f, "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
	    "354 go ahead\r\n");
	if (f_data(f) < 0)
		return;
	f_send(f, "250 2.0.0 queued as X\r\n");
	f_quit(f);
}

static void
test_pipelined(void **state)
{
	const char *rcpts[] = { "a@mx.test", "b@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[2], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;
	char peer[32];

	(void)state;
	f = fake_start(script_pipelined, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	assert_int_equal(r.code, 250);
	assert_true(smtpc_extensions(c) & SMTPC_EXT_PIPELINING);
	assert_true(smtpc_extensions(c) & SMTPC_EXT_8BITMIME);
	assert_false(smtpc_extensions(c) & SMTPC_EXT_SMTPUTF8);
	assert_int_equal(smtpc_size_limit(c), 100000);
	assert_false(smtpc_tls_active(c));
	assert_null(smtpc_tls_version(c));
	snprintf(peer, sizeof(peer), "127.0.0.1:%u", f->port);
	assert_string_equal(smtpc_peer(c), peer);
	m = msg_make(rcpts, 2, PREFIX, BODY);
	m.eightbit = 1;
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	assert_int_equal(mail_r.code, 250);
	assert_int_equal(rcpt_r[0].code, 250);
	assert_int_equal(rcpt_r[1].code, 250);
	assert_int_equal(data_r.code, 250);
	assert_string_equal(data_r.enhanced, "2.0.0");
	assert_string_equal(data_r.text, "250 2.0.0 queued as X");
	assert_ptr_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 1),
	    &data_r);
	assert_true(smtpc_usable(c));
	smtpc_close(&c);
	assert_null(c);
	fake_finish(f);
	assert_int_equal(f->datalen, strlen(WIRE));
	assert_memory_equal(f->data, WIRE, f->datalen);
	close(m.fd);
	fake_free(f);
}

/*
 * No PIPELINING: one command per reply.  Three transactions on one
 * session: a recipient mix, then one with every recipient refused (no
 * DATA), then one that needs a RSET first.
 */
static void
script_lockstep(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250 SIZE\r\n") < 0)
		return;
	if (f_expect(f, "MAIL FROM:<sender@client.test> SIZE=8") < 0)
		return;
	if (!f_quiet(f, 300)) {
		f_fail(f, "client sent before the MAIL reply");
		return;
	}
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<b@mx.test>") < 0)
		return;
	f_send(f, "450 4.2.1 try later\r\n");
	if (f_expect(f, "RCPT TO:<c@mx.test>") < 0)
		return;
	f_send(f, "550-5.1.1 no such\r\n550 5.1.1 user\r\n");
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "354 go\r\n");
	if (f_data(f) < 0)
		return;
	if (f->datalen != 11 || memcmp(f->data, "x\r\ny\r\n\r\n.\r\n", 11)) {
		f_fail(f, "data \"%.*s\"", (int)f->datalen, f->data);
		return;
	}
	f_send(f, "250 done\r\n");
	/* second transaction: no RSET needed after a completed one */
	if (f_expect(f, "MAIL FROM:<> SIZE=8") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "550 5.1.1 gone\r\n");
	/* third: the second left a transaction open */
	if (f_expect(f, "RSET") < 0)
		return;
	f_send(f, "250 reset\r\n");
	if (f_expect(f, "MAIL FROM:<sender@client.test> SIZE=8") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "354 go\r\n");
	if (f_data(f) < 0)
		return;
	f_send(f, "554 5.7.1 spam\r\n");
	f_quit(f);
}

static void
test_lockstep_and_reuse(void **state)
{
	const char *rcpts[] = { "a@mx.test", "b@mx.test", "c@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[3], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	f = fake_start(script_lockstep, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	assert_int_equal(smtpc_size_limit(c), 0);
	/* a final CRLF is not doubled; an empty line stays */
	m = msg_make(rcpts, 3, NULL, "x\ny\r\n\n");
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	assert_int_equal(rcpt_r[0].code, 250);
	assert_int_equal(rcpt_r[1].code, 450);
	assert_string_equal(rcpt_r[1].enhanced, "4.2.1");
	assert_int_equal(rcpt_r[2].code, 550);
	assert_string_equal(rcpt_r[2].text, "550 5.1.1 no such / 5.1.1 user");
	assert_int_equal(data_r.code, 250);
	assert_int_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 0)->code,
	    250);
	assert_int_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 1)->code,
	    450);
	assert_int_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 2)->code,
	    550);

	m.sender = "";
	m.nrcpts = 1;
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	assert_int_equal(rcpt_r[0].code, 550);
	assert_int_equal(data_r.code, 0);

	m.sender = "sender@client.test";
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_PERM);
	assert_int_equal(data_r.code, 554);
	assert_ptr_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 0),
	    &data_r);
	assert_true(smtpc_usable(c));
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	fake_free(f);
}

static void
script_rcpt_mix(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250 PIPELINING\r\n") < 0)
		return;
	while (memmem(f->in, f->inlen, "DATA\r\n", 6) == NULL)
		if (f_fill(f, 3000) <= 0) {
			f_fail(f, "no pipelined batch");
			return;
		}
	f->inlen = 0;
	f_send(f, "250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n"
	    "550 5.1.1 unknown\r\n354 go\r\n");
	if (f_data(f) < 0)
		return;
	f_send(f, "250 ok\r\n");
	f_quit(f);
}

static void
test_pipelined_rcpt_mix(void **state)
{
	const char *rcpts[] = { "a@mx.test", "b@mx.test", "c@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[3], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	f = fake_start(script_rcpt_mix, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 3, NULL, "body\n");
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	assert_int_equal(rcpt_r[0].code, 250);
	assert_int_equal(rcpt_r[1].code, 452);
	assert_int_equal(rcpt_r[2].code, 550);
	assert_int_equal(data_r.code, 250);
	smtpc_close(&c);
	fake_finish(f);
	assert_memory_equal(f->data, "body\r\n.\r\n", 9);
	close(m.fd);
	fake_free(f);
}

/* MAIL refused: param 0 lockstep 452, 1 pipelined 550. */
static void
script_mail_refused(struct fake *f)
{
	if (f->param == 0) {
		if (f_hello(f, "250 mx.test\r\n") < 0 ||
		    f_expect(f, "MAIL FROM:<sender@client.test>") < 0)
			return;
		f_send(f, "452 4.3.1 full\r\n");
	} else {
		if (f_hello(f, "250-mx.test\r\n250 PIPELINING\r\n") < 0)
			return;
		while (memmem(f->in, f->inlen, "DATA\r\n", 6) == NULL)
			if (f_fill(f, 3000) <= 0) {
				f_fail(f, "no pipelined batch");
				return;
			}
		f->inlen = 0;
		f_send(f, "550 5.7.1 go away\r\n503 5.5.1 need MAIL\r\n"
		    "503 5.5.1 need MAIL\r\n554 5.5.1 no recipients\r\n");
	}
	f_quit(f);
}

static void
test_mail_refused(void **state)
{
	const char *rcpts[] = { "a@mx.test", "b@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[2], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;
	int pipelined;

	(void)state;
	for (pipelined = 0; pipelined < 2; pipelined++) {
		f = fake_start(script_mail_refused, pipelined);
		assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
		m = msg_make(rcpts, 2, NULL, "body\n");
		assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
		    pipelined ? SMTPC_PERM : SMTPC_TEMP);
		assert_int_equal(mail_r.code, pipelined ? 550 : 452);
		/* the 503s answer nothing: the MAIL reply decides */
		assert_int_equal(rcpt_r[0].code, 0);
		assert_int_equal(rcpt_r[1].code, 0);
		assert_int_equal(data_r.code, 0);
		assert_ptr_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 1),
		    &mail_r);
		smtpc_close(&c);
		fake_finish(f);
		close(m.fd);
		fake_free(f);
	}
}

/* param: the greeting's code */
static void
script_greeting(struct fake *f)
{
	char g[64];

	snprintf(g, sizeof(g), "%d-%d.3.2 mx.test busy\r\n%d not now\r\n",
	    f->param, f->param / 100, f->param);
	f_send(f, g);
	if (f->param == 554)
		f_quit(f);	/* RFC 5321 3.1: the client should QUIT */
	else
		f_wait_eof(f);
}

static void
test_greeting_refused(void **state)
{
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r;
	struct smtpc *c = (void *)1;
	struct fake *f;

	(void)state;
	f = fake_start(script_greeting, 421);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
	assert_null(c);
	assert_int_equal(r.code, 421);
	assert_string_equal(r.enhanced, "4.3.2");
	assert_string_equal(r.text, "421 4.3.2 mx.test busy / not now");
	fake_finish(f);
	fake_free(f);

	f = fake_start(script_greeting, 554);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_PERM);
	assert_int_equal(r.code, 554);
	fake_finish(f);
	fake_free(f);
}

/* Malformed replies: param 0 non-digit, 1 code change, 2 long line. */
static void
script_malformed(struct fake *f)
{
	static char longline[3100];

	if (f->param == 0) {
		f_send(f, "hello there\r\n");
	} else if (f->param == 1) {
		f_send(f, "220 mx.test\r\n");
		if (f_expect(f, "EHLO client.test") < 0)
			return;
		f_send(f, "250-mx.test\r\n251 PIPELINING\r\n");
	} else {
		memset(longline, 'x', sizeof(longline) - 3);
		memcpy(longline, "220 ", 4);
		memcpy(longline + sizeof(longline) - 3, "\r\n", 3);
		f_send(f, longline);
	}
	f_wait_eof(f);
}

static void
test_malformed_replies(void **state)
{
	static const char *const why[] = { "no reply code", "code changed",
	    "line too long" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r;
	struct smtpc *c;
	struct fake *f;
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		f = fake_start(script_malformed, i);
		assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
		assert_int_equal(r.code, 0);
		assert_int_equal(r.local, 1);
		assert_non_null(strstr(r.text, "protocol error from 127.0.0.1:"));
		assert_non_null(strstr(r.text, why[i]));
		fake_finish(f);
		fake_free(f);
	}
}

static void
script_close_mid_data(struct fake *f)
{
	if (f_hello(f, "250 mx.test\r\n") < 0 ||
	    f_expect(f, "MAIL FROM:<sender@client.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "354 go\r\n");
	f_fill(f, 2000);
	/* gone, with most of the message unread */
}

static void
test_close_mid_data(void **state)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;
	char *big;
	size_t i;

	(void)state;
	big = malloc(4 * 1024 * 1024 + 1);
	assert_non_null(big);
	for (i = 0; i < 4 * 1024 * 1024; i++)
		big[i] = i % 64 == 63 ? '\n' : 'a' + i % 26;
	big[i] = '\0';
	f = fake_start(script_close_mid_data, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 1, NULL, big);
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_TEMP);
	assert_int_equal(rcpt_r[0].code, 250);
	assert_int_equal(data_r.code, 0);
	assert_true(data_r.local);
	assert_non_null(strstr(data_r.text, "127.0.0.1"));
	assert_int_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 0)->code,
	    0);
	assert_false(smtpc_usable(c));
	/* a second transaction fails at once, without I/O */
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_TEMP);
	assert_int_equal(rcpt_r[0].code, 0);
	assert_non_null(strstr(rcpt_r[0].text, "can no longer be used"));
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	free(big);
	fake_free(f);
}

/* SIZE 100 and a larger message; then SMTPUTF8 needed, not offered. */
static void
script_size(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250 SIZE 100\r\n") < 0)
		return;
	f_quit(f);
}

static void
test_size_and_smtputf8_refused_locally(void **state)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;
	char body[200];

	(void)state;
	memset(body, 'z', sizeof(body) - 1);
	body[sizeof(body) - 1] = '\0';
	f = fake_start(script_size, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 1, NULL, body);
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_PERM);
	assert_int_equal(mail_r.code, 552);
	assert_string_equal(mail_r.enhanced, "5.3.4");
	assert_true(mail_r.local);
	assert_int_equal(rcpt_r[0].code, 0);
	assert_ptr_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 0),
	    &mail_r);
	close(m.fd);

	m = msg_make(rcpts, 1, NULL, "small\n");
	m.need_smtputf8 = 1;
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_PERM);
	assert_int_equal(mail_r.code, 553);
	assert_string_equal(mail_r.enhanced, "5.6.7");
	/* and an address that would smuggle a command */
	m.need_smtputf8 = 0;
	m.sender = "a@b>\r\nRCPT TO:<x@y";
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_PERM);
	assert_int_equal(mail_r.code, 501);
	assert_true(smtpc_usable(c));
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	fake_free(f);
}

/* EHLO refused for good: HELO, no extensions, plain MAIL. */
static void
script_helo(struct fake *f)
{
	if (f_hello(f, "502 5.5.1 what is EHLO\r\n") < 0 ||
	    f_expect(f, "HELO client.test") < 0)
		return;
	f_send(f, "250 mx.test\r\n");
	if (f_expect(f, "MAIL FROM:<sender@client.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "354 go\r\n");
	if (f_data(f) < 0)
		return;
	f_send(f, "250 ok\r\n");
	f_quit(f);
}

static void
test_helo_fallback(void **state)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	f = fake_start(script_helo, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	assert_int_equal(smtpc_extensions(c), 0);
	m = msg_make(rcpts, 1, NULL, "8bit \xc3\xa9\n");
	m.eightbit = 1;		/* no 8BITMIME: sent as it is, no BODY= */
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	fake_free(f);
}

/*
 * Pipelined, no recipient accepted, yet DATA got 354: the client ends it
 * with a lone "." (RFC 2920 3.1) and sends RSET before the next MAIL.
 */
static void
script_no_rcpt_354(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250 PIPELINING\r\n") < 0)
		return;
	while (memmem(f->in, f->inlen, "DATA\r\n", 6) == NULL)
		if (f_fill(f, 3000) <= 0) {
			f_fail(f, "no pipelined batch");
			return;
		}
	f->inlen = 0;
	f_send(f, "250 ok\r\n550 5.1.1 no\r\n354 go anyway\r\n");
	if (f_expect(f, ".") < 0)
		return;
	f_send(f, "554 5.5.1 no valid recipients\r\n");
	if (f_expect(f, "RSET") < 0)
		return;
	f_send(f, "250 ok\r\n");
	while (memmem(f->in, f->inlen, "DATA\r\n", 6) == NULL)
		if (f_fill(f, 3000) <= 0) {
			f_fail(f, "no second batch");
			return;
		}
	f->inlen = 0;
	f_send(f, "250 ok\r\n250 ok\r\n451 4.3.0 local trouble\r\n");
	f_quit(f);
}

static void
test_pipelined_no_rcpt_accepted(void **state)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	f = fake_start(script_no_rcpt_354, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 1, NULL, "x\n");
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	assert_int_equal(rcpt_r[0].code, 550);
	assert_int_equal(data_r.code, 0);
	/* DATA refused with 451: a temporary failure of the message */
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_TEMP);
	assert_int_equal(rcpt_r[0].code, 250);
	assert_int_equal(data_r.code, 451);
	assert_ptr_equal(smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 0),
	    &data_r);
	assert_true(smtpc_usable(c));
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	fake_free(f);
}

/*
 * Addresses whose local part is no Dot-string (kept unquoted in the
 * queue) go out quoted: a space or '>' must not end the path early and
 * turn the rest into ESMTP parameters.
 */
static void
script_quoted(struct fake *f)
{
	static const char *const want[] = {
		"RCPT TO:<\"x> NOTIFY=NEVER\"@mx.test>",
		"RCPT TO:<\"a\\\"b\\\\c\"@mx.test>",
		"RCPT TO:<first.last+tag@mx.test>",
	};
	size_t i;

	if (f_hello(f, "250 mx.test\r\n") < 0 ||
	    f_expect(f, "MAIL FROM:<\"john smith\"@client.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	for (i = 0; i < 3; i++) {
		if (f_expect(f, want[i]) < 0)
			return;
		f_send(f, "250 ok\r\n");
	}
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "354 go\r\n");
	if (f_data(f) < 0)
		return;
	f_send(f, "250 2.0.0 ok\r\n");
	f_quit(f);
}

static void
test_quoted_local_parts(void **state)
{
	const char *rcpts[] = { "x> NOTIFY=NEVER@mx.test",
	    "a\"b\\c@mx.test", "first.last+tag@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[3], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	f = fake_start(script_quoted, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 3, NULL, "x\n");
	m.sender = "john smith@client.test";
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_OK);
	assert_int_equal(data_r.code, 250);
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	fake_free(f);
}

/*
 * DATA answered 250 (not 354): the body never went out, so the 250 must
 * not make any recipient count as delivered.
 */
static void
script_data_250(struct fake *f)
{
	if (f_hello(f, "250 mx.test\r\n") < 0 ||
	    f_expect(f, "MAIL FROM:<sender@client.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "250 2.0.0 thanks\r\n");
	f_wait_eof(f);
}

static void
test_data_answered_250(void **state)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	const struct smtpc_reply *res;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	f = fake_start(script_data_250, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 1, NULL, "x\n");
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_TEMP);
	assert_int_equal(rcpt_r[0].code, 250);
	assert_int_equal(data_r.code, 0);
	assert_true(data_r.local);
	assert_non_null(strstr(data_r.text, "DATA answered \"250 2.0.0"));
	res = smtpc_rcpt_result(&mail_r, rcpt_r, &data_r, 0);
	assert_int_not_equal(res->code / 100, 2);
	assert_false(smtpc_usable(c));
	smtpc_close(&c);
	fake_finish(f);
	close(m.fd);
	fake_free(f);
}

/* STARTTLS offered but refused with 454. */
static void
script_starttls_refused(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250 STARTTLS\r\n") < 0 ||
	    f_expect(f, "STARTTLS") < 0)
		return;
	f_send(f, "454 4.7.0 TLS not available\r\n");
	f_quit(f);
}

static void
test_starttls_refused(void **state)
{
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	/* opportunistic: carry on in plaintext */
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	f = fake_start(script_starttls_refused, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	assert_false(smtpc_tls_active(c));
	smtpc_close(&c);
	fake_finish(f);
	fake_free(f);
	/* required: try elsewhere */
	o.tls = SMTPC_TLS_REQUIRED;
	f = fake_start(script_starttls_refused, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
	assert_string_equal(r.enhanced, "4.7.4");
	assert_non_null(strstr(r.text, "454 4.7.0 TLS not available"));
	fake_finish(f);
	fake_free(f);
}

/* ---- TLS ---- */

/* A throw-away self-signed certificate for the fake server. */
static SSL_CTX *
make_server_ctx(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n;
	SSL_CTX *ctx;

	assert_non_null(k);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"mx.test", -1, -1, 0);
	X509_set_issuer_name(x, n);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

/*
 * STARTTLS; param bit 0: inject "250 injected" behind the 220; bit 1:
 * AUTH PLAIN offered and expected; bit 2: only LOGIN; bit 3: refuse
 * AUTH with 535.
 */
static void
script_starttls(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250-STARTTLS\r\n250 SIZE 999\r\n") < 0 ||
	    f_expect(f, "STARTTLS") < 0)
		return;
	f_send(f, f->param & 1 ? "220 ready\r\n250 injected\r\n" :
	    "220 ready\r\n");
	f_starttls(f);
	if (f->fail[0] != '\0' || f_expect(f, "EHLO client.test") < 0)
		return;
	if (f->param & 2) {
		f_send(f, "250-mx.test\r\n250-AUTH LOGIN PLAIN\r\n"
		    "250 SIZE 777\r\n");
		/* base64("\0user\0secret") */
		if (f_expect(f, "AUTH PLAIN AHVzZXIAc2VjcmV0") < 0)
			return;
		if (f->param & 8) {
			f_send(f, "535 5.7.8 bad credentials\r\n");
			f_quit(f);
			return;
		}
		f_send(f, "235 2.7.0 ok\r\n");
	} else if (f->param & 4) {
		f_send(f, "250-mx.test\r\n250-AUTH LOGIN\r\n250 SIZE 777\r\n");
		if (f_expect(f, "AUTH LOGIN") < 0)
			return;
		f_send(f, "334 VXNlcm5hbWU6\r\n");
		if (f_expect(f, "dXNlcg==") < 0)
			return;
		f_send(f, "334 UGFzc3dvcmQ6\r\n");
		if (f_expect(f, "c2VjcmV0") < 0)
			return;
		f_send(f, "235 2.7.0 ok\r\n");
	} else {
		f_send(f, "250-mx.test\r\n250 SIZE 777\r\n");
	}
	if (f_expect(f, "MAIL FROM:<sender@client.test> SIZE=7") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
		return;
	f_send(f, "250 ok\r\n");
	if (f_expect(f, "DATA") < 0)
		return;
	f_send(f, "354 go\r\n");
	if (f_data(f) < 0)
		return;
	f_send(f, "250 ok\r\n");
	f_quit(f);
}

static void
tls_session(int param, const char *user, int want_rc, int want_code)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;

	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.auth_user = user;
	o.auth_pass = "secret";
	f = fake_start(script_starttls, param);
	assert_int_equal(client_open(f, &o, &c, &r), want_rc);
	assert_int_equal(r.code, want_code);
	if (want_rc == SMTPC_OK) {
		assert_true(smtpc_tls_active(c));
		assert_non_null(smtpc_tls_version(c));
		assert_true(strcmp(smtpc_tls_version(c), "TLSv1.2") == 0 ||
		    strcmp(smtpc_tls_version(c), "TLSv1.3") == 0);
		assert_non_null(smtpc_tls_cipher(c));
		assert_false(smtpc_tls_verified(c));	/* self-signed */
		/* the EHLO after TLS counts, never the injected line */
		assert_int_equal(smtpc_size_limit(c), 777);
		assert_false(smtpc_extensions(c) & SMTPC_EXT_STARTTLS);
		m = msg_make(rcpts, 1, NULL, "hello\n");
		assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
		    SMTPC_OK);
		assert_int_equal(data_r.code, 250);
		close(m.fd);
		smtpc_close(&c);
	} else {
		assert_null(c);
	}
	fake_finish(f);
	fake_free(f);
}

static void
test_starttls(void **state)
{
	(void)state;
	tls_session(0, NULL, SMTPC_OK, 250);
}

static void
test_starttls_injection(void **state)
{
	(void)state;
	tls_session(1, NULL, SMTPC_OK, 250);
}

static void
test_auth_plain(void **state)
{
	(void)state;
	tls_session(2, "user", SMTPC_OK, 235);
}

static void
test_auth_login(void **state)
{
	(void)state;
	tls_session(4, "user", SMTPC_OK, 235);
}

static void
test_auth_refused(void **state)
{
	(void)state;
	tls_session(2 | 8, "user", SMTPC_PERM, 535);
}

/* No STARTTLS offered; AUTH offered in plaintext must not be used. */
static void
script_no_starttls(struct fake *f)
{
	if (f_hello(f, "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n") < 0)
		return;
	f_quit(f);
}

static void
test_tls_required_or_auth_without_tls(void **state)
{
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r;
	struct smtpc *c;
	struct fake *f;

	(void)state;
	o.tls = SMTPC_TLS_REQUIRED;
	f = fake_start(script_no_starttls, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
	assert_int_equal(r.code, 0);
	assert_string_equal(r.enhanced, "4.7.4");
	assert_non_null(strstr(r.text, "TLS is required"));
	fake_finish(f);
	fake_free(f);

	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	o.auth_user = "user";
	o.auth_pass = "secret";
	f = fake_start(script_no_starttls, 0);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.text, "credentials not sent"));
	fake_finish(f);
	fake_free(f);
}

/* ---- timeouts ---- */

/* param 0: silent after accept; 1: silent after the data; 2: no handshake */
static void
script_silent(struct fake *f)
{
	if (f->param == 1) {
		if (f_hello(f, "250 mx.test\r\n") < 0 ||
		    f_expect(f, "MAIL FROM:<sender@client.test>") < 0)
			return;
		f_send(f, "250 ok\r\n");
		if (f_expect(f, "RCPT TO:<a@mx.test>") < 0)
			return;
		f_send(f, "250 ok\r\n");
		if (f_expect(f, "DATA") < 0)
			return;
		f_send(f, "354 go\r\n");
		if (f_data(f) < 0)
			return;
	} else if (f->param == 2) {
		if (f_hello(f, "250-mx.test\r\n250 STARTTLS\r\n") < 0 ||
		    f_expect(f, "STARTTLS") < 0)
			return;
		f_send(f, "220 go\r\n");
	}
	f_wait_eof(f);
}

static void
test_timeouts(void **state)
{
	const char *rcpts[] = { "a@mx.test" };
	struct smtpc_opts o = opts_default();
	struct smtpc_reply r, mail_r, rcpt_r[1], data_r;
	struct smtpc_msg m;
	struct smtpc *c;
	struct fake *f;
	double t0, dt;

	(void)state;
	o.timeout_greeting = 1;
	o.timeout_data_end = 1;
	o.timeout_cmd = 1;
	f = fake_start(script_silent, 0);
	t0 = now_s();
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
	dt = now_s() - t0;
	assert_true(dt >= 0.9 && dt < 3);
	assert_int_equal(r.code, 0);
	assert_non_null(strstr(r.text, "timed out while reading the greeting"));
	fake_finish(f);
	fake_free(f);

	f = fake_start(script_silent, 1);
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_OK);
	m = msg_make(rcpts, 1, NULL, "hello\n");
	t0 = now_s();
	assert_int_equal(smtpc_send(c, &m, &mail_r, rcpt_r, &data_r),
	    SMTPC_TEMP);
	dt = now_s() - t0;
	assert_true(dt >= 0.9 && dt < 3);
	assert_int_equal(data_r.code, 0);
	assert_non_null(strstr(data_r.text, "timed out"));
	t0 = now_s();
	smtpc_close(&c);
	assert_true(now_s() - t0 < 0.5);	/* no QUIT on a dead session */
	fake_finish(f);
	close(m.fd);
	fake_free(f);

	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	f = fake_start(script_silent, 2);
	t0 = now_s();
	assert_int_equal(client_open(f, &o, &c, &r), SMTPC_TEMP);
	dt = now_s() - t0;
	assert_true(dt >= 0.9 && dt < 3);
	assert_string_equal(r.enhanced, "4.7.5");
	assert_non_null(strstr(r.text, "TLS handshake"));
	fake_finish(f);
	fake_free(f);
}

static void
test_connect_refused(void **state)
{
	struct smtpc_opts o = opts_default();
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct smtpc_reply r;
	struct smtpc *c;
	char want[64];
	int s;

	(void)state;
	/* a port nobody listens on: bound, then closed */
	s = socket(AF_INET, SOCK_STREAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &len), 0);
	close(s);
	assert_int_equal(smtpc_open((struct sockaddr *)&sin, sizeof(sin), NULL,
	    0, &o, &c, &r), SMTPC_TEMP);
	assert_null(c);
	assert_int_equal(r.code, 0);
	snprintf(want, sizeof(want), "connect to 127.0.0.1:%u: Connection "
	    "refused", ntohs(sin.sin_port));
	assert_string_equal(r.text, want);
	assert_string_equal(r.enhanced, "4.4.1");
}

static int
bound(void **state)
{
	(void)state;
	alarm(60);	/* a hung case fails instead of hanging the suite */
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_parser_basic),
		cmocka_unit_test(test_reply_parser_errors),
		cmocka_unit_test(test_enhanced_codes),
		cmocka_unit_test(test_ehlo_parse),
		cmocka_unit_test(test_data_encoder),
		cmocka_unit_test_setup(test_pipelined, bound),
		cmocka_unit_test_setup(test_lockstep_and_reuse, bound),
		cmocka_unit_test_setup(test_pipelined_rcpt_mix, bound),
		cmocka_unit_test_setup(test_mail_refused, bound),
		cmocka_unit_test_setup(test_greeting_refused, bound),
		cmocka_unit_test_setup(test_malformed_replies, bound),
		cmocka_unit_test_setup(test_close_mid_data, bound),
		cmocka_unit_test_setup(test_size_and_smtputf8_refused_locally,
		    bound),
		cmocka_unit_test_setup(test_helo_fallback, bound),
		cmocka_unit_test_setup(test_pipelined_no_rcpt_accepted, bound),
		cmocka_unit_test_setup(test_quoted_local_parts, bound),
		cmocka_unit_test_setup(test_data_answered_250, bound),
		cmocka_unit_test_setup(test_starttls_refused, bound),
		cmocka_unit_test_setup(test_starttls, bound),
		cmocka_unit_test_setup(test_starttls_injection, bound),
		cmocka_unit_test_setup(test_auth_plain, bound),
		cmocka_unit_test_setup(test_auth_login, bound),
		cmocka_unit_test_setup(test_auth_refused, bound),
		cmocka_unit_test_setup(test_tls_required_or_auth_without_tls,
		    bound),
		cmocka_unit_test_setup(test_timeouts, bound),
		cmocka_unit_test_setup(test_connect_refused, bound),
	};
	char err[256];
	int rc;

	/* as the daemons do: a write to a closed TLS peer must not kill us */
	signal(SIGPIPE, SIG_IGN);
	client_ctx = smtpc_tls_ctx(err, sizeof(err));
	if (client_ctx == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	server_ctx = make_server_ctx();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	SSL_CTX_free(client_ctx);
	SSL_CTX_free(server_ctx);
	return rc;
}
