/*
 * test_mime_binary.c - BINARY[part]<partial> and BINARY.SIZE
 * (store/mime_section.h mime_binary_check / mime_binary_fetch) and the
 * Content-Transfer-Encoding names (mime_cte_from_name).
 *
 * Covers: base64, quoted-printable, 7bit/8bit/binary and absent
 * encodings (CRLF form, as BODY[n]), a part inside message/rfc822, the
 * whole message (BINARY[]), a single-part message's part 1, containers
 * (multipart, message/rfc822) refused, unknown encodings refused, parts
 * that do not exist (empty), NUL octets, partial ranges at and past the
 * end, count 0, and an output buffer that is too small.  Every message
 * is tried stored with LF and with CRLF line ends: the answers must not
 * depend on it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "store/mime.h"
#include "store/mime_decode.h"
#include "store/mime_section.h"

/*
 * 1       multipart/mixed
 * 1.1     text/plain, quoted-printable
 * 1.2     application/octet-stream, base64 (bytes 00 01 02 ff 0a 0d)
 * 1.3     message/rfc822
 * 1.3.1     its body: text/plain base64 "inner"
 * 1.4     text/plain 8bit, two lines
 * 1.5     application/x-foo, x-uuencode
 * 1.6     text/plain, Content-Transfer-Encoding: BASE64 (upper case)
 */
static const char MULTI[] =
    "From: a@example.test\n"
    "Subject: binary\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=\"XX\"\n"
    "\n"
    "preamble\n"
    "--XX\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "caf=C3=A9 and a soft=\n"
    " break\n"
    "line two=3D\n"
    "--XX\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "AAEC/woN\n"
    "--XX\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: inner\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "aW5uZXI=\n"
    "--XX\n"
    "Content-Type: text/plain; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: 8bit\n"
    "\n"
    "Stra\xdf" "e\n"
    "zwei\n"
    "--XX\n"
    "Content-Type: application/x-foo\n"
    "Content-Transfer-Encoding: x-uuencode\n"
    "\n"
    "begin 644 x\n"
    "--XX\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: BASE64\n"
    "\n"
    "aGk=\n"
    "--XX--\n";

static const char SINGLE[] =
    "Subject: single\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "SGVsbG8sIHdvcmxkIQ==\n";

/* A message in the chosen line-end form; free() it. */
static char *
stored(const char *lf, int crlf, size_t *len)
{
	size_t n = strlen(lf), i, o = 0;
	char *p = malloc(2 * n + 1);

	assert_non_null(p);
	for (i = 0; i < n; i++) {
		if (crlf && lf[i] == '\n')
			p[o++] = '\r';
		p[o++] = lf[i];
	}
	*len = o;
	return p;
}

struct fixture {
	char *msg;
	size_t len;
	struct mime_message *m;
};

static void
load(struct fixture *f, const char *lf, int crlf)
{
	f->msg = stored(lf, crlf, &f->len);
	f->m = mime_parse(f->msg, f->len);
	assert_non_null(f->m);
}

static void
unload(struct fixture *f)
{
	mime_free(f->m);
	free(f->msg);
}

/* Parse "1.3.1" into part numbers. */
static unsigned int
path(const char *s, unsigned int *part)
{
	unsigned int n = 0;

	while (*s != '\0') {
		part[n++] = (unsigned int)strtoul(s, (char **)&s, 10);
		if (*s == '.')
			s++;
	}
	return n;
}

/* BINARY[sec]<origin.count> must give exactly (want, wantlen). */
static void
expect(const struct fixture *f, const char *sec, size_t origin,
    size_t count, const char *want, size_t wantlen)
{
	unsigned int part[16], n = path(sec, part);
	struct buf out;
	size_t size = 12345;
	int r;

	buf_init(&out, BUF_UNLIMITED);
	r = mime_binary_fetch(f->msg, f->m, part, n, origin, count, &out,
	    &size);
	if (r != 0)
		fail_msg("BINARY[%s]<%zu.%zu>: returned %d", sec, origin, count,
		    r);
	if (out.len != wantlen || memcmp(buf_cstr(&out), want, wantlen) != 0)
		fail_msg("BINARY[%s]<%zu.%zu>: got %zu octets \"%.*s\", want "
		    "%zu", sec, origin, count, out.len, (int)out.len,
		    buf_cstr(&out), wantlen);
	buf_free(&out);
}

/* The whole decoded section, and BINARY.SIZE equal to its length. */
static void
expect_all(const struct fixture *f, const char *sec, const char *want,
    size_t wantlen)
{
	unsigned int part[16], n = path(sec, part);
	size_t size = 12345;

	expect(f, sec, 0, SIZE_MAX, want, wantlen);
	assert_int_equal(mime_binary_fetch(f->msg, f->m, part, n, 0, 0, NULL,
	    &size), 0);
	if (size != wantlen)
		fail_msg("BINARY.SIZE[%s] = %zu, want %zu", sec, size, wantlen);
	assert_int_equal(mime_binary_check(f->m, part, n), 0);
}

static void
expect_error(const struct fixture *f, const char *sec, int want)
{
	unsigned int part[16], n = path(sec, part);
	struct buf out;
	size_t size = 12345;

	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(mime_binary_check(f->m, part, n), want);
	assert_int_equal(mime_binary_fetch(f->msg, f->m, part, n, 0, SIZE_MAX,
	    &out, &size), want);
	assert_int_equal(out.len, 0);
	assert_int_equal(size, 0);
	buf_free(&out);
}

#define S(lit) lit, sizeof(lit) - 1

static void
test_cte_names(void **state)
{
	(void)state;
	assert_int_equal(mime_cte_from_name(NULL), MIME_CTE_IDENTITY);
	assert_int_equal(mime_cte_from_name("7bit"), MIME_CTE_IDENTITY);
	assert_int_equal(mime_cte_from_name("8BIT"), MIME_CTE_IDENTITY);
	assert_int_equal(mime_cte_from_name("binary"), MIME_CTE_IDENTITY);
	assert_int_equal(mime_cte_from_name("Base64"), MIME_CTE_BASE64);
	assert_int_equal(mime_cte_from_name("quoted-printable"), MIME_CTE_QP);
	assert_int_equal(mime_cte_from_name("x-uuencode"), MIME_CTE_UNKNOWN);
	assert_int_equal(mime_cte_from_name("base-64"), MIME_CTE_UNKNOWN);
	assert_int_equal(mime_cte_from_name(""), MIME_CTE_UNKNOWN);
}

static void
test_leaves(void **state)
{
	struct fixture f;
	int crlf;

	(void)state;
	for (crlf = 0; crlf < 2; crlf++) {
		load(&f, MULTI, crlf);
		/* QP: soft break joined, hard breaks as CRLF, =3D */
		expect_all(&f, "1", S("caf\xc3\xa9 and a soft break\r\n"
		    "line two="));
		/* base64 to raw bytes: NUL, 0xff, bare LF and CR kept */
		expect_all(&f, "2", S("\x00\x01\x02\xff\x0a\x0d"));
		/* a leaf inside message/rfc822 */
		expect_all(&f, "3.1", S("inner"));
		/* 8bit: as stored, in CRLF form */
		expect_all(&f, "4", S("Stra\xdf" "e\r\nzwei"));
		/* encoding names are case-insensitive */
		expect_all(&f, "6", S("hi"));
		unload(&f);
	}
}

static void
test_whole_message_and_single_part(void **state)
{
	struct fixture f;
	char *crlf_form;
	size_t n;
	int crlf;

	(void)state;
	for (crlf = 0; crlf < 2; crlf++) {
		/* BINARY[]: the message as BODY[] gives it, nothing decoded */
		load(&f, SINGLE, crlf);
		crlf_form = stored(SINGLE, 1, &n);
		expect_all(&f, "", crlf_form, n);
		free(crlf_form);
		/* part 1 of a single-part message is its body, decoded */
		expect_all(&f, "1", S("Hello, world!"));
		unload(&f);
		load(&f, MULTI, crlf);
		crlf_form = stored(MULTI, 1, &n);
		expect_all(&f, "", crlf_form, n);
		free(crlf_form);
		unload(&f);
	}
}

static void
test_refused_and_missing(void **state)
{
	struct fixture f;
	int crlf;

	(void)state;
	for (crlf = 0; crlf < 2; crlf++) {
		load(&f, MULTI, crlf);
		expect_error(&f, "3", MIME_BINARY_NOT_LEAF);	/* message/rfc822 */
		expect_error(&f, "5", MIME_BINARY_UNKNOWN_CTE);
		/* parts that do not exist are empty, as for BODY[n] */
		expect_all(&f, "7", S(""));
		expect_all(&f, "2.2", S(""));	/* a leaf's 1 is itself */
		expect_all(&f, "3.2", S(""));
		unload(&f);
	}
	/* the multipart itself, one level down */
	load(&f, "MIME-Version: 1.0\nContent-Type: multipart/mixed; "
	    "boundary=o\n\n--o\nContent-Type: multipart/alternative; "
	    "boundary=i\n\n--i\n\nx\n--i--\n--o--\n", 0);
	expect_error(&f, "1", MIME_BINARY_NOT_LEAF);
	expect_all(&f, "1.1", S("x"));
	unload(&f);
}

static void
test_partials(void **state)
{
	struct fixture f;

	(void)state;
	load(&f, MULTI, 0);
	/* decoded octets are counted, not encoded ones */
	expect(&f, "2", 0, 1, S("\x00"));
	expect(&f, "2", 2, 3, S("\x02\xff\x0a"));
	expect(&f, "2", 3, 3, S("\xff\x0a\x0d"));	/* exactly to the end */
	expect(&f, "2", 3, 100, S("\xff\x0a\x0d"));	/* clipped */
	expect(&f, "2", 5, 1, S("\x0d"));		/* last octet */
	expect(&f, "2", 6, 1, S(""));		/* origin at the end */
	expect(&f, "2", 600, 1, S(""));		/* origin past it */
	expect(&f, "2", 0, 0, S(""));		/* count 0 */
	/* identity parts go through the CRLF form: "\r\n" counts 2 */
	expect(&f, "4", 6, 2, S("\r\n"));
	expect(&f, "4", 7, 100, S("\nzwei"));
	expect(&f, "1", 3, 2, S("\xc3\xa9"));
	unload(&f);
}

static void
test_small_buffer(void **state)
{
	struct fixture f;
	unsigned int part[1] = { 2 };
	struct buf out;

	(void)state;
	load(&f, MULTI, 0);
	buf_init(&out, 3);
	assert_int_equal(mime_binary_fetch(f.msg, f.m, part, 1, 0, SIZE_MAX,
	    &out, NULL), -1);
	assert_int_equal(out.len, 0);
	assert_int_equal(mime_binary_fetch(f.msg, f.m, part, 1, 1, 3, &out,
	    NULL), 0);
	assert_memory_equal(out.data, "\x01\x02\xff", 3);
	buf_free(&out);
	unload(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cte_names),
		cmocka_unit_test(test_leaves),
		cmocka_unit_test(test_whole_message_and_single_part),
		cmocka_unit_test(test_refused_and_missing),
		cmocka_unit_test(test_partials),
		cmocka_unit_test(test_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
