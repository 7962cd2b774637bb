/*
 * test_dkim_sign.c - common/dkim_sign.c: a signature we make verifies
 * with libopendkim (key from a query file) and with python3-dkim (the
 * verifier our integration tests and many receivers resemble), fails on
 * a changed body or an added From, carries the tags we promise; keys,
 * TXT records and zone lines are well formed; signing from several
 * threads at once works.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <cmocka.h>

#include <dkim.h>

#include "common/dkim_sign.h"
#include "store_testutil.h"

#define DOMAIN "a.test"
#define SELECTOR "s1"

static const char MSG[] =
    "From: Alice <alice@a.test>\n"
    "To: bob@b.test\n"
    "Subject: hello\n"
    "  folded subject\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
    "Message-ID: <1@a.test>\n"
    "X-Mailer: not signed\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Hello Bob,\n"
    "\n"
    "a line with trailing space \n"
    ".a dot line\n"
    "\n"
    "\n";

/* One key for the whole file: RSA generation is the slow part. */
static struct {
	char dir[256];
	char keyfile[512];	/* libopendkim query file */
	struct buf pem, p;
} g;

static int
group_setup(void **state)
{
	char err[256];
	struct buf v;
	FILE *f;

	tu_mkdtemp(g.dir, sizeof(g.dir));
	buf_init(&g.pem, DKIM_KEY_FILE_MAX);
	buf_init(&g.p, 4096);
	buf_init(&v, 4096);
	if (dkim_keygen(DKIM_BITS_DEFAULT, &g.pem, err, sizeof(err)) < 0 ||
	    dkim_txt_record(g.pem.data, g.pem.len, &g.p) < 0 ||
	    dkim_txt_value(buf_cstr(&g.p), &v) < 0)
		return -1;
	snprintf_checked(g.keyfile, sizeof(g.keyfile), "%s/keys", g.dir);
	if ((f = fopen(g.keyfile, "w")) == NULL)
		return -1;
	/* "name value" with no line end: libopendkim keeps what follows. */
	fprintf(f, "%s._domainkey.%s %s", SELECTOR, DOMAIN, buf_cstr(&v));
	buf_free(&v);
	return fclose(f) == 0 ? 0 : -1;
}

static int
group_teardown(void **state)
{
	dkim_buf_wipe(&g.pem);
	buf_free(&g.p);
	tu_rmrf(g.dir);
	return 0;
}

/* signature + message, with CRLF line ends as it goes on the wire. */
static void
wire_form(const struct buf *sig, const char *msg, size_t len, struct buf *out)
{
	size_t i;

	buf_reset(out);
	for (i = 0; i < sig->len; i++) {
		if (sig->data[i] == '\n')
			assert_int_equal(buf_putc(out, '\r'), 0);
		assert_int_equal(buf_putc(out, sig->data[i]), 0);
	}
	for (i = 0; i < len; i++) {
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			assert_int_equal(buf_putc(out, '\r'), 0);
		assert_int_equal(buf_putc(out, msg[i]), 0);
	}
}

static void
sign(const char *msg, size_t len, struct buf *sig)
{
	char err[512] = "";
	int r = dkim_sign_message(g.pem.data, g.pem.len, DOMAIN, SELECTOR, msg,
	    len, sig, err, sizeof(err));

	if (r != 0)
		fail_msg("dkim_sign_message failed: %s", err);
}

/* libopendkim's verdict on a wire-form message: DKIM_STAT_OK is a pass. */
static DKIM_STAT
opendkim_verify(const struct buf *wire)
{
	dkim_query_t q = DKIM_QUERY_FILE;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	DKIM_SIGINFO *si;
	DKIM_STAT st;
	DKIM *d;

	assert_non_null(lib);
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT,
	    DKIM_OPTS_QUERYMETHOD, &q, sizeof(q)), DKIM_STAT_OK);
	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO,
	    g.keyfile, strlen(g.keyfile)), DKIM_STAT_OK);
	d = dkim_verify(lib, (const unsigned char *)"test", NULL, &st);
	assert_non_null(d);
	st = dkim_chunk(d, (unsigned char *)wire->data, wire->len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(d, NULL, 0);
	if (st == DKIM_STAT_OK)
		st = dkim_eom(d, NULL);
	si = dkim_getsignature(d);
	if (st == DKIM_STAT_OK && (si == NULL || !DKIM_SIG_CHECK(si)))
		st = DKIM_STAT_BADSIG;
	dkim_free(d);
	dkim_close(lib);
	return st;
}

static void
test_sign_verifies_with_opendkim(void **state)
{
	struct buf sig, wire;

	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	sign(MSG, strlen(MSG), &sig);
	wire_form(&sig, MSG, strlen(MSG), &wire);
	assert_int_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	buf_free(&sig);
	buf_free(&wire);
}

/* A queue file that already has CRLF signs the same way. */
static void
test_crlf_input_verifies(void **state)
{
	struct buf crlf, sig, wire;
	size_t i;

	buf_init(&crlf, BUF_UNLIMITED);
	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	for (i = 0; MSG[i] != '\0'; i++) {
		if (MSG[i] == '\n')
			buf_putc(&crlf, '\r');
		buf_putc(&crlf, MSG[i]);
	}
	sign(crlf.data, crlf.len, &sig);
	wire_form(&sig, crlf.data, crlf.len, &wire);
	assert_int_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	buf_free(&crlf);
	buf_free(&sig);
	buf_free(&wire);
}

static void
test_changed_body_fails(void **state)
{
	struct buf sig, wire;
	char *m = strdup(MSG);

	assert_non_null(m);
	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	sign(m, strlen(m), &sig);
	*strstr(m, "Hello Bob") = 'J';
	wire_form(&sig, m, strlen(m), &wire);
	assert_int_not_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	free(m);
	buf_free(&sig);
	buf_free(&wire);
}

/* From is oversigned: a second From added in transit breaks it. */
static void
test_added_from_fails(void **state)
{
	static const char evil[] = "From: Mallory <m@evil.test>\n";
	struct buf sig, wire, m;

	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	buf_init(&m, BUF_UNLIMITED);
	sign(MSG, strlen(MSG), &sig);
	buf_puts(&m, evil);
	buf_puts(&m, MSG);
	wire_form(&sig, m.data, m.len, &wire);
	assert_int_not_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	/* a changed unsigned header does not matter */
	buf_set(&m, MSG, strlen(MSG));
	*strstr(m.data, "not signed") = 'N';
	wire_form(&sig, m.data, m.len, &wire);
	assert_int_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	buf_free(&sig);
	buf_free(&wire);
	buf_free(&m);
}

/* The value of tag name in an unfolded tag list, or NULL. */
static char *
tag(const char *unfolded, const char *name, char *out, size_t outsz)
{
	const char *p = unfolded;
	size_t nl = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		if ((p == unfolded || p[-1] == ' ' || p[-1] == ';') &&
		    p[nl] == '=') {
			const char *v = p + nl + 1, *e = strchr(v, ';');
			size_t n = e != NULL ? (size_t)(e - v) : strlen(v);

			if (n >= outsz)
				return NULL;
			memcpy(out, v, n);
			out[n] = '\0';
			return out;
		}
		p += nl;
	}
	return NULL;
}

static int
count_word(const char *list, const char *w)
{
	char copy[1024], *save, *t;
	int n = 0;

	snprintf_checked(copy, sizeof(copy), "%s", list);
	for (t = strtok_r(copy, ":", &save); t; t = strtok_r(NULL, ":", &save))
		n += strcasecmp(t, w) == 0;
	return n;
}

static void
test_signature_header_form(void **state)
{
	struct buf sig;
	char flat[8192], v[2048];
	size_t i, n = 0;

	buf_init(&sig, 65536);
	sign(MSG, strlen(MSG), &sig);
	assert_true(strncmp(sig.data, "DKIM-Signature: ", 16) == 0);
	assert_int_equal(sig.data[sig.len - 1], '\n');
	assert_null(memchr(sig.data, '\r', sig.len));
	/* every line but the first is a continuation starting with a tab */
	for (i = 0; i + 1 < sig.len; i++)
		if (sig.data[i] == '\n')
			assert_int_equal(sig.data[i + 1], '\t');
	/* unfold and drop white space to read the tags */
	for (i = 16; i < sig.len && n + 1 < sizeof(flat); i++)
		if (sig.data[i] != '\n' && sig.data[i] != '\t' &&
		    sig.data[i] != ' ')
			flat[n++] = sig.data[i];
	flat[n] = '\0';
	assert_string_equal(tag(flat, "v", v, sizeof(v)), "1");
	assert_string_equal(tag(flat, "a", v, sizeof(v)), "rsa-sha256");
	assert_string_equal(tag(flat, "c", v, sizeof(v)), "relaxed/relaxed");
	assert_string_equal(tag(flat, "d", v, sizeof(v)), DOMAIN);
	assert_string_equal(tag(flat, "s", v, sizeof(v)), SELECTOR);
	assert_non_null(tag(flat, "bh", v, sizeof(v)));
	assert_non_null(tag(flat, "b", v, sizeof(v)));
	assert_non_null(tag(flat, "h", v, sizeof(v)));
	assert_int_equal(count_word(v, "from"), 2);
	assert_int_equal(count_word(v, "to"), 1);
	assert_int_equal(count_word(v, "subject"), 1);
	assert_int_equal(count_word(v, "date"), 1);
	assert_int_equal(count_word(v, "message-id"), 1);
	assert_int_equal(count_word(v, "mime-version"), 1);
	assert_int_equal(count_word(v, "content-type"), 1);
	assert_int_equal(count_word(v, "x-mailer"), 0);
	assert_int_equal(count_word(v, "cc"), 0);	/* absent: not signed */
	assert_null(tag(flat, "l", v, sizeof(v)));	/* whole body */
	buf_free(&sig);
}

static const char VERIFY_PY[] =
    "import sys, dkim\n"
    "d = sys.argv[1]\n"
    "msg = open(d + '/signed.eml', 'rb').read()\n"
    "txt = open(d + '/txt', 'rb').read()\n"
    "def dnsfunc(name, timeout=5):\n"
    "    if isinstance(name, bytes):\n"
    "        name = name.decode()\n"
    "    if name.rstrip('.') != '" SELECTOR "._domainkey." DOMAIN "':\n"
    "        sys.stderr.write('unexpected query %r\\n' % name)\n"
    "        return None\n"
    "    return txt\n"
    "sys.exit(0 if dkim.verify(msg, dnsfunc=dnsfunc) else 1)\n";

static void
write_file(const char *dir, const char *name, const void *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf_checked(path, sizeof(path), "%s/%s", dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Exit code of python3-dkim verifying the wire-form message. */
static int
python_verify(const struct buf *wire)
{
	char cmd[1024];
	struct buf v;
	int st;

	buf_init(&v, 4096);
	assert_int_equal(dkim_txt_value(buf_cstr(&g.p), &v), 0);
	write_file(g.dir, "txt", v.data, v.len);
	write_file(g.dir, "signed.eml", wire->data, wire->len);
	write_file(g.dir, "verify.py", VERIFY_PY, strlen(VERIFY_PY));
	buf_free(&v);
	snprintf_checked(cmd, sizeof(cmd), "/usr/bin/python3 %s/verify.py %s",
	    g.dir, g.dir);
	st = system(cmd);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
test_python_dkim_verifies(void **state)
{
	struct buf sig, wire;
	char *m = strdup(MSG);

	assert_non_null(m);
	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	sign(m, strlen(m), &sig);
	wire_form(&sig, m, strlen(m), &wire);
	assert_int_equal(python_verify(&wire), 0);
	*strstr(m, "Hello Bob") = 'J';
	wire_form(&sig, m, strlen(m), &wire);
	assert_int_equal(python_verify(&wire), 1);
	free(m);
	buf_free(&sig);
	buf_free(&wire);
}

/* Header only, no empty line, no body: still a message we can sign. */
static void
test_no_body(void **state)
{
	static const char m[] = "From: a@a.test\nSubject: x\n";
	struct buf sig, wire;

	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	sign(m, strlen(m), &sig);
	wire_form(&sig, m, strlen(m), &wire);
	assert_int_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	buf_free(&sig);
	buf_free(&wire);
}

/* A body larger than the chunk libopendkim is fed with. */
static void
test_large_body(void **state)
{
	struct buf m, sig, wire;
	int i;

	buf_init(&m, BUF_UNLIMITED);
	buf_init(&sig, 65536);
	buf_init(&wire, BUF_UNLIMITED);
	buf_puts(&m, "From: a@a.test\nSubject: big\n\n");
	for (i = 0; i < 20000; i++)
		buf_printf(&m, "line %d of a long body\n", i);
	sign(m.data, m.len, &sig);
	wire_form(&sig, m.data, m.len, &wire);
	assert_int_equal(opendkim_verify(&wire), DKIM_STAT_OK);
	buf_free(&m);
	buf_free(&sig);
	buf_free(&wire);
}

static void
test_bad_key(void **state)
{
	static const char junk[] = "-----BEGIN PRIVATE KEY-----\nnope\n"
	    "-----END PRIVATE KEY-----\n";
	struct buf sig, p;
	char err[256] = "";

	buf_init(&sig, 65536);
	buf_init(&p, 4096);
	assert_int_equal(dkim_sign_message(junk, strlen(junk), DOMAIN,
	    SELECTOR, MSG, strlen(MSG), &sig, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(dkim_txt_record(junk, strlen(junk), &p), -1);
	buf_free(&sig);
	buf_free(&p);
}

#define NTHREADS 8

static void *
sign_thread(void *arg)
{
	struct buf *wire = arg, sig;
	char err[256];
	intptr_t r;

	buf_init(&sig, 65536);
	r = dkim_sign_message(g.pem.data, g.pem.len, DOMAIN, SELECTOR, MSG,
	    strlen(MSG), &sig, err, sizeof(err));
	if (r == 0)
		wire_form(&sig, MSG, strlen(MSG), wire);
	buf_free(&sig);
	return (void *)r;
}

static void
test_threads(void **state)
{
	pthread_t t[NTHREADS];
	struct buf wire[NTHREADS];
	void *r;
	int i;

	for (i = 0; i < NTHREADS; i++) {
		buf_init(&wire[i], BUF_UNLIMITED);
		assert_int_equal(pthread_create(&t[i], NULL, sign_thread,
		    &wire[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
		assert_int_equal(opendkim_verify(&wire[i]), DKIM_STAT_OK);
		buf_free(&wire[i]);
	}
}

static void
test_keygen_bits(void **state)
{
	struct buf pem, p;
	char err[256];

	buf_init(&pem, DKIM_KEY_FILE_MAX);
	buf_init(&p, 4096);
	assert_int_equal(dkim_keygen(DKIM_BITS_MIN - 1, &pem, err,
	    sizeof(err)), -1);
	assert_int_equal(dkim_keygen(DKIM_BITS_MAX + 1, &pem, err,
	    sizeof(err)), -1);
	assert_int_equal(dkim_keygen(1024, &pem, err, sizeof(err)), 0);
	assert_non_null(strstr(pem.data, "-----BEGIN PRIVATE KEY-----"));
	assert_int_equal(dkim_txt_record(pem.data, pem.len, &p), 0);
	/* SubjectPublicKeyInfo of RSA-1024: 162 bytes, 216 in base64 */
	assert_int_equal(p.len, 216);
	assert_true(strncmp(p.data, "MIGfMA0GCSqGSIb3DQEBAQUAA4GN", 28) == 0);
	dkim_buf_wipe(&pem);
	buf_free(&p);
}

/* The quoted strings of a TXT rdata, concatenated; asserts each <= 255. */
static void
unquote(const char *s, struct buf *out)
{
	buf_reset(out);
	while (*s != '\0') {
		size_t n = 0;

		assert_int_equal(*s, '"');
		for (s++; *s != '"'; s++, n++) {
			assert_true(*s != '\0');
			if (*s == '\\')
				s++;
			buf_putc(out, *s);
		}
		assert_true(n <= DKIM_TXT_CHUNK);
		s++;
		if (*s == ' ')
			s++;
	}
}

static void
test_zone_line(void **state)
{
	static const char prefix[] = SELECTOR "._domainkey." DOMAIN ". IN TXT ";
	struct buf line, v, data;

	buf_init(&line, 8192);
	buf_init(&v, 8192);
	buf_init(&data, 8192);
	assert_int_equal(dkim_zone_line(SELECTOR, DOMAIN, buf_cstr(&g.p),
	    &line), 0);
	assert_int_equal(dkim_txt_value(buf_cstr(&g.p), &v), 0);
	assert_true(strncmp(v.data, "v=DKIM1; k=rsa; p=MII", 21) == 0);
	assert_true(v.len > 255);		/* 2048 bits: two strings */
	assert_null(strchr(line.data, '\n'));
	assert_true(strncmp(line.data, prefix, strlen(prefix)) == 0);
	unquote(line.data + strlen(prefix), &data);
	assert_string_equal(data.data, v.data);
	/* the first string is full */
	assert_int_equal(line.data[strlen(prefix) + 1 + 255], '"');
	assert_int_equal(dkim_zone_line(SELECTOR, DOMAIN, "not base64!",
	    &line), -1);
	buf_free(&line);
	buf_free(&v);
	buf_free(&data);
}

static void
test_txt_quote(void **state)
{
	char s[600];
	struct buf q, data;

	buf_init(&q, 8192);
	buf_init(&data, 8192);
	memset(s, 'x', 255);
	s[255] = '\0';
	assert_int_equal(dkim_txt_quote(s, &q), 0);
	assert_int_equal(q.len, 257);		/* one string */
	memset(s, 'x', 511);
	s[511] = '\0';
	buf_reset(&q);
	assert_int_equal(dkim_txt_quote(s, &q), 0);
	assert_int_equal(q.len, 511 + 3 * 2 + 2);	/* three strings */
	unquote(q.data, &data);
	assert_string_equal(data.data, s);
	buf_reset(&q);
	assert_int_equal(dkim_txt_quote("a \"b\" \\c", &q), 0);
	assert_string_equal(q.data, "\"a \\\"b\\\" \\\\c\"");
	unquote(q.data, &data);
	assert_string_equal(data.data, "a \"b\" \\c");
	buf_reset(&q);
	assert_int_equal(dkim_txt_quote("", &q), 0);
	assert_string_equal(q.data, "\"\"");
	buf_set(&q, "keep", 4);
	assert_int_equal(dkim_txt_quote("bad\nline", &q), -1);
	assert_string_equal(buf_cstr(&q), "keep");
	buf_free(&q);
	buf_free(&data);
}

static void
test_key_read(void **state)
{
	char path[512], err[256];
	struct buf pem;

	buf_init(&pem, DKIM_KEY_FILE_MAX);
	write_file(g.dir, "k.pem", g.pem.data, g.pem.len);
	snprintf_checked(path, sizeof(path), "%s/k.pem", g.dir);
	assert_int_equal(dkim_key_read(path, &pem, err, sizeof(err)), 0);
	assert_int_equal(pem.len, g.pem.len);
	assert_memory_equal(pem.data, g.pem.data, pem.len);
	snprintf_checked(path, sizeof(path), "%s/missing.pem", g.dir);
	assert_int_equal(dkim_key_read(path, &pem, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing.pem"));
	assert_int_equal(dkim_key_read(g.dir, &pem, err, sizeof(err)), -1);
	dkim_buf_wipe(&pem);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verifies_with_opendkim),
		cmocka_unit_test(test_crlf_input_verifies),
		cmocka_unit_test(test_changed_body_fails),
		cmocka_unit_test(test_added_from_fails),
		cmocka_unit_test(test_signature_header_form),
		cmocka_unit_test(test_python_dkim_verifies),
		cmocka_unit_test(test_no_body),
		cmocka_unit_test(test_large_body),
		cmocka_unit_test(test_bad_key),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_keygen_bits),
		cmocka_unit_test(test_zone_line),
		cmocka_unit_test(test_txt_quote),
		cmocka_unit_test(test_key_read),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
