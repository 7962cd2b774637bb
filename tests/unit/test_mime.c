/*
 * test_mime.c - store/mime.c, imap_envelope.c, imap_bodystructure.c,
 * mime_section.c and mime_decode.c.
 *
 * Covers: every message of tests/data/mime/ (run from the repo root),
 * stored with LF and with CRLF line ends, against NAME.expected (SIZE,
 * ENVELOPE, BODY, BODYSTRUCTURE) plus the invariants that hold for any
 * message (each span's CRLF size and LF count match its bytes, BODY[] is
 * the message in CRLF form); BODY[section] data with part paths, MIME,
 * HEADER, TEXT, HEADER.FIELDS[.NOT], partial ranges and section syntax
 * errors; message/global with and without IMAP_BS_GLOBAL; RFC 2047 and
 * RFC 2231 decoding; base64 and quoted-printable; charset conversion;
 * case-insensitive search; and pathological input: 5,000 nested
 * multiparts and messages, 10,000 parts, a 4 MB header line, huge address
 * lists, output buffers that are too small, and random garbage.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "store/imap_bodystructure.h"
#include "store/imap_envelope.h"
#include "store/mime.h"
#include "store/mime_decode.h"
#include "store/mime_section.h"

#define CORPUS "tests/data/mime"

/* ------------------------------------------------------------------ */
/* Helpers.                                                           */

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *p = NULL;
	size_t cap = 0, n = 0, r;

	if (f == NULL)
		fail_msg("cannot open %s (tests run from the repo root)", path);
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			p = realloc(p, cap);
			assert_non_null(p);
		}
		r = fread(p + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return p;
}

/* LF form (CR before LF removed) or CRLF form (bare LF gets a CR). */
static char *
convert_eol(const char *p, size_t len, int crlf, size_t *out_len)
{
	char *o = malloc(2 * len + 1);
	size_t i, n = 0;

	assert_non_null(o);
	for (i = 0; i < len; i++) {
		if (!crlf && p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue;
		if (crlf && p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			o[n++] = '\r';
		o[n++] = p[i];
	}
	*out_len = n;
	return o;
}

static char *
unescape(const char *s, size_t *len)
{
	char *o = malloc(strlen(s) + 1);
	size_t n = 0;

	assert_non_null(o);
	for (; *s != '\0'; s++) {
		if (*s == '\\' && s[1] != '\0') {
			s++;
			o[n++] = *s == 'r' ? '\r' : *s == 'n' ? '\n' : *s;
		} else
			o[n++] = *s;
	}
	o[n] = '\0';
	*len = n;
	return o;
}

/* Print b escaped like .expected files, for a failure message. */
static const char *
escaped(const char *p, size_t n)
{
	static char out[65536];
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < sizeof(out); i++) {
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\\') {
			out[o++] = '\\';
			out[o++] = p[i] == '\r' ? 'r' : p[i] == '\n' ? 'n' : '\\';
		} else
			out[o++] = p[i];
	}
	out[o] = '\0';
	return out;
}

static struct mime_message *
parse_str(const char *s)
{
	struct mime_message *m = mime_parse(s, strlen(s));

	assert_non_null(m);
	return m;
}

static void
check_span(const char *msg, const struct mime_span *s, const char *what)
{
	size_t size, lines;

	mime_crlf_measure(msg, s->off, s->len, &size, &lines);
	if (size != s->size || lines != s->lines)
		fail_msg("%s: span says %zu octets %zu lines, bytes say %zu %zu",
		    what, s->size, s->lines, size, lines);
}

/* Invariants that hold for every part of every message. */
static void
check_tree(const char *msg, size_t len, const struct mime_part *p)
{
	const struct mime_part *c;
	size_t end = p->body.off + p->body.len;

	assert_true(p->hdr.off + p->hdr.len == p->body.off);
	assert_true(end <= len);
	assert_true(p->depth < MIME_MAX_DEPTH);
	check_span(msg, &p->hdr, "header");
	check_span(msg, &p->body, "body");
	if (p->flags & MIME_PART_MULTIPART)
		assert_non_null(p->children);
	if (p->flags & MIME_PART_MESSAGE) {
		assert_int_equal(p->nchildren, 1);
		assert_true(p->children->hdr.off == p->body.off);
		assert_true(p->children->body.off + p->children->body.len == end);
	}
	for (c = p->children; c != NULL; c = c->next) {
		assert_ptr_equal(c->parent, p);
		assert_int_equal(c->depth, p->depth + 1);
		assert_true(c->hdr.off >= p->body.off);
		assert_true(c->body.off + c->body.len <= end);
		check_tree(msg, len, c);
	}
}

static void
structure(const char *msg, size_t len, const struct mime_message *m,
    const char *item, struct buf *out)
{
	buf_reset(out);
	if (strcmp(item, "SIZE") == 0)
		assert_int_equal(buf_printf(out, "%zu", m->size), 0);
	else if (strcmp(item, "ENVELOPE") == 0)
		assert_int_equal(imap_envelope_write(msg + m->root->hdr.off,
		    m->root->hdr.len, out), 0);
	else if (strcmp(item, "BODY") == 0)
		assert_int_equal(imap_bodystructure_write(msg, len, m->root, 0,
		    out), 0);
	else if (strcmp(item, "BODYSTRUCTURE") == 0)
		assert_int_equal(imap_bodystructure_write(msg, len, m->root,
		    IMAP_BS_EXTENDED, out), 0);
	else
		fail_msg("unknown item %s in .expected", item);
}

static int
fetch(const char *msg, const struct mime_message *m, const char *spec,
    size_t origin, size_t count, struct buf *out)
{
	struct mime_section s;
	const char *err;
	int r;

	mime_section_init(&s);
	buf_reset(out);
	if (mime_section_parse(&s, spec, strlen(spec), &err) < 0)
		fail_msg("section %s: %s", spec, err);
	r = mime_section_fetch(msg, m, &s, origin, count, out);
	mime_section_free(&s);
	return r;
}

/* ------------------------------------------------------------------ */
/* Corpus.                                                            */

static void
run_corpus_file(const char *name)
{
	char path[512], *raw, *exp, *line, *save = NULL, *msg, *want;
	size_t rawlen, explen, len, wantlen;
	struct buf out, all;
	int variant, items;

	snprintf(path, sizeof(path), CORPUS "/%s.eml", name);
	raw = read_file(path, &rawlen);
	snprintf(path, sizeof(path), CORPUS "/%s.expected", name);
	exp = read_file(path, &explen);
	exp = realloc(exp, explen + 1);
	exp[explen] = '\0';
	buf_init(&out, BUF_UNLIMITED);
	buf_init(&all, BUF_UNLIMITED);
	for (variant = 0; variant < 2; variant++) {
		char *copy = strdup(exp);
		struct mime_message *m;

		msg = convert_eol(raw, rawlen, variant, &len);
		m = mime_parse(msg, len);
		assert_non_null(m);
		check_tree(msg, len, m->root);
		items = 0;
		for (line = strtok_r(copy, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (line[0] == '#' || sp == NULL)
				continue;
			*sp = '\0';
			want = unescape(sp + 1, &wantlen);
			structure(msg, len, m, line, &out);
			if (out.len != wantlen || memcmp(out.data, want, wantlen) != 0)
				fail_msg("%s.eml (%s): %s is\n%s\nexpected\n%s", name,
				    variant ? "CRLF" : "LF", line,
				    escaped(out.data, out.len), sp + 1);
			free(want);
			items++;
		}
		assert_int_equal(items, 4);
		/* BODY[] is the message in CRLF form */
		assert_int_equal(fetch(msg, m, "", 0, SIZE_MAX, &all), 0);
		assert_int_equal(all.len, m->size);
		want = convert_eol(raw, rawlen, 1, &wantlen);
		assert_int_equal(wantlen, all.len);
		assert_memory_equal(want, all.data, wantlen);
		free(want);
		mime_free(m);
		free(msg);
		free(copy);
	}
	buf_free(&out);
	buf_free(&all);
	free(raw);
	free(exp);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
test_corpus(void **state)
{
	DIR *d = opendir(CORPUS);
	struct dirent *e;
	char *names[256];
	size_t n = 0, i, l;

	(void)state;
	if (d == NULL)
		fail_msg("cannot open " CORPUS " (tests run from the repo root)");
	while ((e = readdir(d)) != NULL) {
		l = strlen(e->d_name);
		if (l > 4 && strcmp(e->d_name + l - 4, ".eml") == 0 && n < 256)
			names[n++] = strndup(e->d_name, l - 4);
	}
	closedir(d);
	assert_true(n >= 15);
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		run_corpus_file(names[i]);
		free(names[i]);
	}
}

/* ------------------------------------------------------------------ */
/* Sections.                                                          */

static void
expect_section(const char *msg, const struct mime_message *m,
    const char *spec, const char *want)
{
	struct mime_section s;
	struct mime_section_data d;
	struct buf out, stream;
	const char *err;
	size_t o;

	buf_init(&out, BUF_UNLIMITED);
	if (fetch(msg, m, spec, 0, SIZE_MAX, &out) < 0)
		fail_msg("BODY[%s] failed", spec);
	if (out.len != strlen(want) || memcmp(buf_cstr(&out), want, out.len) != 0)
		fail_msg("BODY[%s] is \"%s\", expected \"%s\"", spec,
		    escaped(buf_cstr(&out), out.len), want);
	/* locate() agrees on the size, and streaming gives the same bytes */
	mime_section_init(&s);
	assert_int_equal(mime_section_parse(&s, spec, strlen(spec), &err), 0);
	mime_section_locate(msg, m, &s, &d);
	assert_int_equal(d.size, out.len);
	if (!d.filtered) {
		buf_init(&stream, BUF_UNLIMITED);
		for (o = 0; o < d.size; o += 3)
			assert_int_equal(mime_crlf_append(&stream, msg, d.off,
			    d.len, o, 3), 0);
		assert_int_equal(stream.len, out.len);
		assert_memory_equal(buf_cstr(&stream), buf_cstr(&out), out.len);
		buf_free(&stream);
	}
	mime_section_free(&s);
	buf_free(&out);
}

static void
test_sections_rfc822(void **state)
{
	size_t rawlen, len;
	char *raw = read_file(CORPUS "/rfc822_attach.eml", &rawlen);
	char *msg = convert_eol(raw, rawlen, 0, &len);
	struct mime_message *m = mime_parse(msg, len);

	(void)state;
	assert_non_null(m);
	expect_section(msg, m, "1", "Forwarding the notes below.");
	expect_section(msg, m, "1.MIME", "Content-Type: text/plain\r\n\r\n");
	expect_section(msg, m, "2.MIME", "Content-Type: message/rfc822\r\n"
	    "Content-Disposition: attachment; filename=\"notes.eml\"\r\n\r\n");
	expect_section(msg, m, "2.HEADER.FIELDS (subject FROM)",
	    "From: Ivan <ivan@example.net>\r\nSubject: meeting notes\r\n\r\n");
	expect_section(msg, m, "2.HEADER.FIELDS.NOT (Content-Type From To "
	    "Date Message-ID MIME-Version)",
	    "Subject: meeting notes\r\n\r\n");
	expect_section(msg, m, "2.1", "1. budget\r\n2. hiring");
	expect_section(msg, m, "2.2", "--- a/plan\r\n+++ b/plan\r\n-old\r\n+new");
	expect_section(msg, m, "2.2.MIME", "Content-Type: text/x-diff; "
	    "name=plan.diff\r\nContent-Disposition: attachment\r\n\r\n");
	expect_section(msg, m, "2.TEXT",
	    "--outer-inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
	    "1. budget\r\n2. hiring\r\n--outer-inner\r\nContent-Type: "
	    "text/x-diff; name=plan.diff\r\nContent-Disposition: attachment\r\n"
	    "\r\n--- a/plan\r\n+++ b/plan\r\n-old\r\n+new\r\n--outer-inner--\r\n");
	expect_section(msg, m, "HEADER.FIELDS (Subject)",
	    "Subject: Fwd: meeting notes\r\n\r\n");
	/* HEADER/TEXT after a part that is not message/rfc822: empty */
	expect_section(msg, m, "1.HEADER", "");
	expect_section(msg, m, "1.TEXT", "");
	/* parts that do not exist: empty, as Dovecot does */
	expect_section(msg, m, "3", "");
	expect_section(msg, m, "2.3", "");
	expect_section(msg, m, "1.2", "");
	expect_section(msg, m, "3.MIME", "");
	/* "1" of a leaf is the leaf itself (Dovecot's path rule) */
	expect_section(msg, m, "2.1.1", "1. budget\r\n2. hiring");
	mime_free(m);
	free(msg);
	free(raw);
}

static void
test_sections_simple(void **state)
{
	const char *msg = "Subject: hi\nFrom: a@b\nX-Long: one\n two\n\nbody\n";
	const char *nobl = "Subject: x\nFrom: a@b";
	struct mime_message *m = parse_str(msg), *m2;
	struct buf out;

	(void)state;
	expect_section(msg, m, "", "Subject: hi\r\nFrom: a@b\r\nX-Long: one\r\n"
	    " two\r\n\r\nbody\r\n");
	expect_section(msg, m, "HEADER", "Subject: hi\r\nFrom: a@b\r\n"
	    "X-Long: one\r\n two\r\n\r\n");
	expect_section(msg, m, "TEXT", "body\r\n");
	expect_section(msg, m, "1", "body\r\n");
	expect_section(msg, m, "1.MIME", "Subject: hi\r\nFrom: a@b\r\n"
	    "X-Long: one\r\n two\r\n\r\n");
	expect_section(msg, m, "2", "");
	expect_section(msg, m, "header.fields (x-long \"SUBJECT\")",
	    "Subject: hi\r\nX-Long: one\r\n two\r\n\r\n");
	expect_section(msg, m, "HEADER.FIELDS (Nope)", "\r\n");
	expect_section(msg, m, "HEADER.FIELDS.NOT (x-long)",
	    "Subject: hi\r\nFrom: a@b\r\n\r\n");
	/* partials */
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(fetch(msg, m, "", 0, 7, &out), 0);
	assert_int_equal(out.len, 7);
	assert_memory_equal(out.data, "Subject", 7);
	assert_int_equal(fetch(msg, m, "TEXT", 2, 100, &out), 0);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "dy\r\n", 4);
	assert_int_equal(fetch(msg, m, "TEXT", 5, 1, &out), 0);
	assert_int_equal(out.len, 1);
	assert_memory_equal(out.data, "\n", 1);
	assert_int_equal(fetch(msg, m, "TEXT", 6, 10, &out), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(fetch(msg, m, "TEXT", 1000, 10, &out), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(fetch(msg, m, "TEXT", 0, 0, &out), 0);
	assert_int_equal(out.len, 0);
	assert_int_equal(fetch(msg, m, "HEADER.FIELDS (From)", 3, 4, &out), 0);
	assert_int_equal(out.len, 4);
	assert_memory_equal(out.data, "m: a", 4);
	assert_int_equal(fetch(msg, m, "HEADER.FIELDS (From)", 11, 9, &out), 0);
	assert_int_equal(out.len, 2);
	assert_memory_equal(out.data, "\r\n", 2);
	/* no blank line, no final newline: RFC 3501 adds no blank line */
	m2 = parse_str(nobl);
	expect_section(nobl, m2, "HEADER", "Subject: x\r\nFrom: a@b");
	expect_section(nobl, m2, "HEADER.FIELDS (FROM)", "From: a@b\r\n");
	expect_section(nobl, m2, "TEXT", "");
	mime_free(m2);
	buf_free(&out);
	mime_free(m);
}

static void
test_section_syntax(void **state)
{
	static const char *const bad[] = {
		"0", "1.", "1..2", "01", "1.0", "1.X", "MIME", "HEADER.FIELDS",
		"HEADER.FIELDS ()", "HEADER.FIELDS (a b", "HEADER.FIELDS(a)",
		"HEADER.FIELDS (a) x", "TEXTX", "HEADERS", "1.MIMEX",
		"HEADER.FIELDS (\"a)", "HEADER.FIELDS ({3}", "4294967296",
		"HEADER.FIELDS.NOT", ".1", "1 ", NULL,
	};
	static const char *const good[] = {
		"", "1", "1.2.3", "4294967295", "HEADER", "text", "1.mime",
		"2.HEADER", "3.TEXT", "HEADER.FIELDS (A)", "1.HEADER.FIELDS.NOT (A B)",
		"HEADER.FIELDS ( A  \"B C\" )", NULL,
	};
	struct mime_section s;
	const char *err;
	char deep[1024];
	int i;

	(void)state;
	mime_section_init(&s);
	for (i = 0; bad[i] != NULL; i++) {
		err = NULL;
		if (mime_section_parse(&s, bad[i], strlen(bad[i]), &err) == 0)
			fail_msg("section \"%s\" accepted", bad[i]);
		assert_non_null(err);
	}
	for (i = 0; good[i] != NULL; i++)
		if (mime_section_parse(&s, good[i], strlen(good[i]), &err) < 0)
			fail_msg("section \"%s\" refused: %s", good[i], err);
	assert_int_equal(mime_section_parse(&s, "HEADER.FIELDS ( A  \"B C\" )",
	    26, &err), 0);
	assert_int_equal(s.nnames, 2);
	assert_string_equal(s.names.data + 2, "B C");
	/* not NUL-terminated: the parser must use the length */
	assert_int_equal(mime_section_parse(&s, "1.2.TEXTjunk", 8, &err), 0);
	assert_int_equal(s.nparts, 2);
	assert_int_equal(s.text, MIME_SECTION_TEXT);
	/* at most MIME_MAX_DEPTH numbers */
	for (i = 0; i < MIME_MAX_DEPTH + 1; i++)
		memcpy(deep + 2 * i, ".1", 2);
	assert_int_equal(mime_section_parse(&s, deep + 1,
	    2 * (MIME_MAX_DEPTH + 1) - 1, &err), -1);
	assert_int_equal(mime_section_parse(&s, deep + 1,
	    2 * MIME_MAX_DEPTH - 1, &err), 0);
	assert_int_equal(s.nparts, MIME_MAX_DEPTH);
	mime_section_free(&s);
}

static void
test_message_global(void **state)
{
	const char *msg = "Content-Type: multipart/mixed; boundary=g\n\n--g\n"
	    "Content-Type: message/global\n\nSubject: caf\xc3\xa9\n\nbody\n--g--\n";
	struct mime_message *m = parse_str(msg);
	struct buf out;

	(void)state;
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(imap_bodystructure_write(msg, strlen(msg), m->root, 0,
	    &out), 0);
	assert_string_equal(out.data, "((\"message\" \"global\" NIL NIL NIL "
	    "\"7bit\" 22) \"mixed\")");
	buf_reset(&out);
	assert_int_equal(imap_bodystructure_write(msg, strlen(msg), m->root,
	    IMAP_BS_GLOBAL, &out), 0);
	assert_string_equal(out.data, "((\"message\" \"global\" NIL NIL NIL "
	    "\"7bit\" 22 (NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL NIL NIL NIL NIL NIL) "
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 4 0) 2)"
	    " \"mixed\")");
	expect_section(msg, m, "1.HEADER", "Subject: caf\xc3\xa9\r\n\r\n");
	expect_section(msg, m, "1.1", "body");
	buf_free(&out);
	mime_free(m);
}

/* The line break before a boundary line and who owns it. */
static void
test_boundary_edges(void **state)
{
	/* RFC 2046 delimiter = CRLF dash-boundary: after "--i--" the line
	 * break before "--o--" is the outer delimiter's, not an epilogue
	 * (Dovecot keeps it in the inner multipart: 2 octets more) */
	const char *a = "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
	    "Content-Type: message/rfc822\n\nContent-Type: multipart/mixed; "
	    "boundary=i\n\n--i\n\nx\n--i--\n--o--\n";
	/* a boundary right after a part's blank line takes no line break:
	 * the inner multipart must not end before its last part (found by
	 * the fuzzer) */
	const char *b = "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
	    "Content-Type: multipart/mixed; boundary=i\n\n--i\n"
	    "Content-Type: text/plain\n\n--o--\n";
	/* an encapsulated header cut by a boundary: its last line break
	 * belongs to the boundary (Dovecot counts it in the message part) */
	const char *c = "Content-Type: multipart/mixed; boundary=o\n\n--o\n"
	    "Content-Type: message/rfc822\n\nSubject: x\n--o--\n";
	struct mime_message *m;
	struct buf out;

	(void)state;
	buf_init(&out, BUF_UNLIMITED);
	m = parse_str(a);
	check_tree(a, strlen(a), m->root);
	expect_section(a, m, "1", "Content-Type: multipart/mixed; boundary=i"
	    "\r\n\r\n--i\r\n\r\nx\r\n--i--");
	expect_section(a, m, "1.1", "x");
	assert_int_equal(m->root->children->body.size, 60);
	mime_free(m);

	m = parse_str(b);
	check_tree(b, strlen(b), m->root);
	assert_int_equal(m->root->children->nchildren, 1);
	expect_section(b, m, "1.1.MIME", "Content-Type: text/plain\r\n\r\n");
	expect_section(b, m, "1.1", "");
	expect_section(b, m, "1", "--i\r\nContent-Type: text/plain\r\n\r\n");
	mime_free(m);

	m = parse_str(c);
	check_tree(c, strlen(c), m->root);
	expect_section(c, m, "1", "Subject: x");
	expect_section(c, m, "1.HEADER", "Subject: x");
	expect_section(c, m, "1.HEADER.FIELDS (Subject)", "Subject: x\r\n");
	assert_int_equal(imap_bodystructure_write(c, strlen(c), m->root, 0,
	    &out), 0);
	assert_string_equal(out.data, "((\"message\" \"rfc822\" NIL NIL NIL "
	    "\"7bit\" 10 (NIL \"x\" NIL NIL NIL NIL NIL NIL NIL NIL) (\"text\" "
	    "\"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0) 0) "
	    "\"mixed\")");
	mime_free(m);
	buf_free(&out);
}

/* ------------------------------------------------------------------ */
/* Parser details not in the corpus.                                  */

static void
test_params(void **state)
{
	size_t rawlen, len;
	char *raw = read_file(CORPUS "/rfc2231.eml", &rawlen);
	char *msg = convert_eol(raw, rawlen, 0, &len);
	struct mime_message *m = mime_parse(msg, len);
	const struct mime_part *p;
	const char *v;
	struct buf out;

	(void)state;
	assert_non_null(m);
	p = m->root->children;
	v = mime_param_get(p->params, p->nparams, "name*");
	assert_non_null(v);
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(mime_decode_2231(v, strlen(v), &out), 0);
	assert_string_equal(out.data, "\xe2\x82\xac rates and more.pdf");
	v = mime_param_get(p->disp_params, p->ndisp_params, "filename*");
	buf_reset(&out);
	assert_int_equal(mime_decode_2231(v, strlen(v), &out), 0);
	assert_string_equal(out.data, "\xc2\xa3 r\xc3\xa9sum\xc3\xa9.pdf");
	p = p->next;
	assert_string_equal(mime_param_get(p->params, p->nparams, "title"),
	    "hello world");
	assert_string_equal(mime_param_get(p->disp_params, p->ndisp_params,
	    "filename"), "long name.txt");
	buf_free(&out);
	mime_free(m);
	free(msg);
	free(raw);

	/* comments, odd spacing, junk, upper case, lenient values */
	m = parse_str("Content-Type: (c) Text / HTML (x) ; CharSet = \"UTF-8\" "
	    "(c); name=Some file.pdf; boundary=----=_x; =v; junk; q=\"a\\\"b\"\n\n");
	p = m->root;
	assert_string_equal(p->type, "text");
	assert_string_equal(p->subtype, "html");
	assert_int_equal(p->nparams, 4);
	assert_string_equal(p->params[0].name, "charset");
	assert_string_equal(p->params[0].value, "UTF-8");
	assert_string_equal(p->params[1].value, "Some");
	assert_string_equal(p->params[2].value, "----=_x");
	assert_string_equal(p->params[3].value, "a\"b");
	assert_true(p->flags & MIME_PART_TEXT);
	mime_free(m);

	/* invalid Content-Type: default; second Content-Type ignored */
	m = parse_str("MIME-Version: 1.0\nContent-Type: text\n"
	    "Content-Type: image/png\n\nx");
	assert_string_equal(m->root->type, "text");
	assert_string_equal(m->root->subtype, "plain");
	assert_true(m->root->flags & MIME_PART_DEFAULT_TYPE);
	mime_free(m);

	/* 2231 gaps, duplicates and a missing section 0 */
	m = parse_str("Content-Type: a/b; x*0=A; x*2=C; x*1=B; x*1=Z; y*1=Q; "
	    "z*3=W; z*0=V\n\n");
	p = m->root;
	assert_string_equal(mime_param_get(p->params, p->nparams, "x"), "ABC");
	assert_null(mime_param_get(p->params, p->nparams, "y"));
	assert_string_equal(mime_param_get(p->params, p->nparams, "z"), "V");
	mime_free(m);
}

static void
test_headers(void **state)
{
	const char *h = "A: 1\nB :  two\n  folded\r\nno colon\n: x\nC:\n\nbody";
	struct mime_header f;
	struct buf out;
	size_t pos = 0;

	(void)state;
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(mime_header_next(h, strlen(h), &pos, &f), 1);
	assert_true(mime_header_is(&f, "a"));
	assert_int_equal(f.value_len, 1);
	assert_int_equal(mime_header_next(h, strlen(h), &pos, &f), 1);
	assert_true(mime_header_is(&f, "B"));
	assert_int_equal(mime_header_unfold(f.value, f.value_len, &out), 0);
	assert_string_equal(out.data, "two  folded");
	assert_int_equal(f.line_len, strlen("B :  two\n  folded\r\n"));
	assert_int_equal(mime_header_next(h, strlen(h), &pos, &f), 1);
	assert_int_equal(f.name_len, 0);
	assert_int_equal(mime_header_next(h, strlen(h), &pos, &f), 1);
	assert_int_equal(f.name_len, 0);
	assert_int_equal(mime_header_next(h, strlen(h), &pos, &f), 1);
	assert_true(mime_header_is(&f, "C"));
	assert_int_equal(f.value_len, 0);
	assert_int_equal(mime_header_next(h, strlen(h), &pos, &f), 0);
	assert_int_equal(h[pos], '\n');
	buf_free(&out);
}

static void
test_envelope_details(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "a@b", "((NIL NIL \"a\" \"b\"))" },
		{ "", "NIL" },
		{ " , ,", "NIL" },
		{ "foo", "((NIL NIL \"foo\" \"MISSING_DOMAIN\"))" },
		{ "A B C", "((\"A B C\" NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
		{ "<>", "((NIL NIL \"MISSING_MAILBOX\" \"MISSING_DOMAIN\"))" },
		{ "\"\" <g@h>", "((NIL NIL \"g\" \"h\"))" },
		{ "a@b (x) (y)", "((\"y\" NIL \"a\" \"b\"))" },
		{ "a@b ()", "((NIL NIL \"a\" \"b\"))" },
		{ "Bob \"the\" Builder <i@j>", "((\"Bob the Builder\" NIL \"i\" \"j\"))" },
		{ "John  Q.  Public <jq@x>", "((\"John Q. Public\" NIL \"jq\" \"x\"))" },
		{ "a@b; c@d", "((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\"))" },
		{ "g:;", "((NIL NIL \"g\" NIL)(NIL NIL NIL NIL))" },
		{ "g: a@b", "((NIL NIL \"g\" NIL)(NIL NIL \"a\" \"b\")(NIL NIL NIL NIL))" },
		{ "\"x y\"@d.e", "((NIL NIL \"x y\" \"d.e\"))" },
		{ "a . b @ c . d", "((NIL NIL \"a.b\" \"c.d\"))" },
		{ "<@x,@y:u@h>", "((NIL NIL \"u\" \"h\"))" },
		{ "x@[IPv6:::1]", "((NIL NIL \"x\" \"[IPv6:::1]\"))" },
		{ "ab\\c <x@y>, d@e", "((NIL NIL \"ab\" \"MISSING_DOMAIN\")(NIL NIL \"d\" \"e\"))" },
		{ "\"unterminated <x@y>", "((NIL NIL \"unterminated <x@y>\" \"MISSING_DOMAIN\"))" },
		{ "(only a comment)", "NIL" },
		{ "caf\xc3\xa9 <c@d>", "(({5}\r\ncaf\xc3\xa9 NIL \"c\" \"d\"))" },
		{ "\"a\\\\b\" <x@y>", "(({3}\r\na\\b NIL \"x\" \"y\"))" },
	};
	struct buf out;
	size_t i;

	(void)state;
	buf_init(&out, BUF_UNLIMITED);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		assert_int_equal(imap_envelope_addresses(cases[i].in,
		    strlen(cases[i].in), &out), 0);
		if (strcmp(buf_cstr(&out), cases[i].want) != 0)
			fail_msg("addresses \"%s\" gave %s, expected %s",
			    cases[i].in, escaped(out.data, out.len), cases[i].want);
	}
	/* last Subject/Message-ID wins, address fields add up, subject is
	 * shown "for humans", Sender/Reply-To empty → From, NUL → U+FFFD */
	buf_reset(&out);
	{
		const char *h = "Subject: one\nFrom: a@b\nSubject:  two \t\n"
		    "  three \nFrom: c@d\nSender:\nMessage-ID: <x>\n"
		    "Message-ID: <y>  \nDate: \tMon\n\nbody\nSubject: no\n";

		assert_int_equal(imap_envelope_write(h, strlen(h), &out), 0);
		assert_string_equal(out.data, "(\"Mon\" \"two three\" ((NIL NIL \"a\" "
		    "\"b\")(NIL NIL \"c\" \"d\")) ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" "
		    "\"d\")) ((NIL NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) NIL NIL NIL "
		    "NIL \"<y>  \")");
	}
	buf_reset(&out);
	assert_int_equal(imap_envelope_write("Subject: a\0b\n", 13, &out), 0);
	assert_string_equal(out.data, "(NIL {5}\r\na\xef\xbf\xbd" "b NIL NIL NIL "
	    "NIL NIL NIL NIL NIL)");
	buf_reset(&out);
	assert_int_equal(imap_append_string(&out, "", 0), 0);
	assert_int_equal(imap_append_nstring(&out, NULL), 0);
	assert_int_equal(imap_append_string(&out, "a\"", 2), 0);
	assert_string_equal(out.data, "\"\"NIL{2}\r\na\"");
	buf_free(&out);
}

/* ------------------------------------------------------------------ */
/* Decoding.                                                          */

static void
expect_2047(const char *in, const char *want)
{
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(mime_decode_header(in, strlen(in), &out), 0);
	if (strcmp(buf_cstr(&out), want) != 0)
		fail_msg("2047 \"%s\" gave \"%s\", expected \"%s\"", in,
		    buf_cstr(&out), want);
	buf_free(&out);
}

static void
test_decode_2047(void **state)
{
	(void)state;
	expect_2047("plain", "plain");
	expect_2047("=?UTF-8?B?w4ljcml0dXJl?= =?UTF-8?Q?_=E2=82=AC_?= and "
	    "=?ISO-8859-1?Q?caf=E9?= =?bogus?Q?x?=",
	    "\xc3\x89" "criture \xe2\x82\xac  and caf\xc3\xa9 =?bogus?Q?x?=");
	/* a character split across two words */
	expect_2047("=?UTF-8?Q?=C3?= \t =?UTF-8?Q?=A9?=", "\xc3\xa9");
	expect_2047("=?utf-8?b?w6k=?==?utf-8?b?w6k=?=", "\xc3\xa9\xc3\xa9");
	/* adjacent words in different charsets: blank still dropped */
	expect_2047("=?ISO-8859-1?Q?=E9?= =?UTF-8?Q?=C3=A9?=", "\xc3\xa9\xc3\xa9");
	expect_2047("=?UTF-8?Q?a?= b =?UTF-8?Q?c?=", "a b c");
	expect_2047("x =?UTF-8*en?Q?lang?= y", "x lang y");
	expect_2047("=?windows-1252?Q?=80?=", "\xe2\x82\xac");
	expect_2047("=?iso-8859-1?q?=80?=", "\xe2\x82\xac");
	expect_2047("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=",
	    "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf");
	/* broken words stay as they are */
	expect_2047("=?UTF-8?Q?unterminated", "=?UTF-8?Q?unterminated");
	expect_2047("=?UTF-8?X?abc?=", "=?UTF-8?X?abc?=");
	expect_2047("=?UTF-8?Q?has space?=", "=?UTF-8?Q?has space?=");
	expect_2047("=??Q?x?=", "=??Q?x?=");
	expect_2047("=?", "=?");
	expect_2047("a=b", "a=b");
	/* invalid UTF-8 becomes U+FFFD, in words and outside */
	expect_2047("caf\xe9", "caf\xef\xbf\xbd");
	expect_2047("=?UTF-8?Q?=FF?=", "\xef\xbf\xbd");
}

static void
test_decode_cte(void **state)
{
	struct buf out;

	(void)state;
	buf_init(&out, BUF_UNLIMITED);
#define B64(in, want) do { buf_reset(&out); \
	assert_int_equal(mime_decode_base64(in, strlen(in), &out), 0); \
	assert_int_equal(out.len, sizeof(want) - 1); \
	assert_memory_equal(buf_cstr(&out), want, sizeof(want) - 1); } while (0)
#define QP(in, want) do { buf_reset(&out); \
	assert_int_equal(mime_decode_qp(in, strlen(in), &out), 0); \
	if (out.len != sizeof(want) - 1 || \
	    memcmp(buf_cstr(&out), want, out.len) != 0) \
		fail_msg("QP \"%s\" gave \"%s\"", in, escaped(out.data, out.len)); \
	} while (0)
	B64("SGVsbG8gV29ybGQ=", "Hello World");
	B64("SGVs\nbG8g\r\nV29y bGQ=\n", "Hello World");
	B64("SGk=SGk=", "HiHi");
	B64("SGk", "Hi");
	B64("S", "");
	B64("", "");
	B64("!!SGk*", "Hi");
	B64("AAEC", "\x00\x01\x02");
	QP("caf=C3=A9", "caf\xc3\xa9");
	QP("caf=c3=a9", "caf\xc3\xa9");
	QP("abc=\ndef", "abcdef");
	QP("abc=  \r\ndef", "abcdef");
	QP("a  \nb\t\n", "a\r\nb\r\n");
	QP("a\r\nb", "a\r\nb");
	QP("=ZZ=4", "=ZZ=4");
	QP("x=3", "x=3");
	QP("=3D=", "=");
	QP("", "");
	buf_free(&out);
}

static void
test_decode_parts(void **state)
{
	size_t rawlen, len;
	char *raw, *msg;
	struct mime_message *m;
	struct buf out;

	(void)state;
	buf_init(&out, BUF_UNLIMITED);
	raw = read_file(CORPUS "/mixed_attachment.eml", &rawlen);
	msg = convert_eol(raw, rawlen, 0, &len);
	m = mime_parse(msg, len);
	assert_non_null(m);
	assert_int_equal(mime_decode_body(msg, m->root->children->next, &out), 0);
	assert_memory_equal(out.data, "%PDF-1.4\n", 9);
	buf_reset(&out);
	assert_int_equal(mime_decode_text(msg, m->root->children->next, &out), 0);
	assert_int_equal(out.len, 0);	/* not text */
	assert_int_equal(mime_decode_text(msg, m->root->children, &out), 0);
	assert_string_equal(out.data, "Here is the report.");
	mime_free(m);
	free(msg);
	free(raw);

	raw = read_file(CORPUS "/alternative.eml", &rawlen);
	msg = convert_eol(raw, rawlen, 0, &len);
	m = mime_parse(msg, len);
	buf_reset(&out);
	assert_int_equal(mime_decode_text(msg, m->root->children, &out), 0);
	assert_string_equal(out.data,
	    "Deals of the week: 20% off caf\xc3\xa9 machines.\r\n");
	buf_reset(&out);
	assert_int_equal(mime_decode_text(msg, m->root->children->next, &out), 0);
	assert_non_null(strstr(out.data, "</html>"));
	mime_free(m);
	free(msg);
	free(raw);

	raw = read_file(CORPUS "/encoded_words.eml", &rawlen);
	msg = convert_eol(raw, rawlen, 0, &len);
	m = mime_parse(msg, len);
	buf_reset(&out);
	assert_int_equal(mime_decode_text(msg, m->root, &out), 0);
	assert_string_equal(out.data, "Caf\xc3\xa9 cr\xc3\xa8me.\r\n");
	mime_free(m);
	free(msg);
	free(raw);

	/* charsets */
	buf_reset(&out);
	assert_int_equal(mime_charset_to_utf8("ISO-8859-1", "\xe9\x80", 2,
	    &out), 0);
	assert_string_equal(out.data, "\xc3\xa9\xe2\x82\xac");
	buf_reset(&out);
	assert_int_equal(mime_charset_to_utf8("x-no-such-charset", "a", 1,
	    &out), -1);
	assert_int_equal(out.len, 0);
	assert_int_equal(mime_charset_to_utf8("us-ascii", "a\xff", 2, &out), 0);
	assert_string_equal(out.data, "a\xef\xbf\xbd");
	buf_reset(&out);
	assert_int_equal(mime_charset_to_utf8("koi8-r", "\xf0\xd2\xc9", 3,
	    &out), 0);
	assert_string_equal(out.data, "\xd0\x9f\xd1\x80\xd0\xb8");
	buf_reset(&out);
	assert_int_equal(mime_charset_to_utf8("utf-16le", "a\0b", 3, &out), 0);
	assert_string_equal(out.data, "a\xef\xbf\xbd");
	/* 2231 without quotes, unknown charset, bad escapes */
	buf_reset(&out);
	assert_int_equal(mime_decode_2231("a%20b%zz%4", 10, &out), 0);
	assert_string_equal(out.data, "a b%zz%4");
	buf_reset(&out);
	assert_int_equal(mime_decode_2231("x-nope'en'%C3%A9", 16, &out), 0);
	assert_string_equal(out.data, "\xc3\xa9");
	buf_reset(&out);
	assert_int_equal(mime_decode_2231("''abc", 5, &out), 0);
	assert_string_equal(out.data, "abc");
	buf_free(&out);
}

static void
test_search(void **state)
{
	static const struct {
		const char *hay, *needle;
		int want;
	} cases[] = {
		{ "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\x96LN", "k\xc3\xb6ln", 1 },
		{ "CAF\xc3\x89", "caf\xc3\xa9", 1 },
		{ "\xce\x91\xce\x98\xce\x97\xce\x9d\xce\x91", "\xce\xb1\xce\xb8\xce\xb7", 1 },
		{ "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
		  "\xd0\x9f\xd0\xa0\xd0\x98", 1 },
		{ "\xc5\x81\xc3\xb3" "d\xc5\xba", "\xc5\x82\xc3\x93" "D\xc5\xb9", 1 },
		{ "HELLO world", "lo wo", 1 },
		{ "abc", "abd", 0 },
		{ "abc", "", 1 },
		{ "", "a", 0 },
		{ "ab", "abc", 0 },
		{ "stra\xc3\x9f" "e", "STRASSE", 0 },	/* no ß/ss folding */
		{ "\xff\xfe", "\xff", 1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (mime_search_utf8(cases[i].hay, strlen(cases[i].hay),
		    cases[i].needle, strlen(cases[i].needle)) != cases[i].want)
			fail_msg("search \"%s\" in \"%s\": expected %d",
			    cases[i].needle, cases[i].hay, cases[i].want);
}

/* Every byte value at every alignment: only A-Z change among ASCII and
 * bytes that are not UTF-8 lead bytes of folded letters stay as they are
 * (the fold works eight bytes at a time). */
static void
test_fold_every_byte(void **state)
{
	unsigned char in[264];
	struct buf out;
	size_t off, i;

	(void)state;
	for (i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i & 0xff);
	for (off = 0; off < 9; off++) {
		buf_init(&out, BUF_UNLIMITED);
		assert_int_equal(mime_fold_utf8((const char *)in + off,
		    sizeof(in) - off, &out), 0);
		assert_int_equal(out.len, sizeof(in) - off);
		for (i = 0; i < out.len; i++) {
			unsigned char x = in[off + i];
			unsigned char y = (unsigned char)out.data[i];

			if (x >= 0xc2 && x <= 0xdf)
				continue;	/* a lead byte (here invalid) */
			assert_int_equal(y, x >= 'A' && x <= 'Z' ? x + 32 : x);
		}
		buf_free(&out);
	}
}

/* ------------------------------------------------------------------ */
/* Pathological input.                                                */

static void
check_all(const char *msg, size_t len, struct mime_message *m)
{
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	check_tree(msg, len, m->root);
	assert_int_equal(imap_bodystructure_write(msg, len, m->root,
	    IMAP_BS_EXTENDED | IMAP_BS_GLOBAL, &out), 0);
	buf_reset(&out);
	assert_int_equal(imap_envelope_write(msg, m->root->hdr.len, &out), 0);
	assert_int_equal(fetch(msg, m, "", 0, SIZE_MAX, &out), 0);
	assert_int_equal(out.len, m->size);
	buf_free(&out);
}

static void
test_deep_nesting(void **state)
{
	struct buf b, tail;
	struct mime_message *m;
	const struct mime_part *p;
	unsigned int i, depth;

	(void)state;
	/* 5,000 nested multiparts, each closing properly */
	buf_init(&b, BUF_UNLIMITED);
	buf_init(&tail, BUF_UNLIMITED);
	for (i = 0; i < 5000; i++) {
		assert_int_equal(buf_printf(&b, "Content-Type: multipart/mixed; "
		    "boundary=\"x%ux\"\n\n--x%ux\n", i, i), 0);
	}
	assert_int_equal(buf_puts(&b, "Content-Type: text/plain\n\nleaf\n"), 0);
	for (i = 5000; i-- > 0;)
		assert_int_equal(buf_printf(&b, "--x%ux--\n", i), 0);
	m = mime_parse(b.data, b.len);
	assert_non_null(m);
	assert_true(m->flags & MIME_MSG_DEPTH_LIMIT);
	for (p = m->root, depth = 0; p->children != NULL; p = p->children)
		depth++;
	assert_int_equal(depth, MIME_MAX_DEPTH - 1);
	assert_true(p->flags & MIME_PART_OPAQUE);
	assert_string_equal(p->type, "application");
	check_all(b.data, b.len, m);
	mime_free(m);

	/* 5,000 nested message/rfc822 */
	buf_reset(&b);
	for (i = 0; i < 5000; i++)
		assert_int_equal(buf_printf(&b, "Subject: %u\nContent-Type: "
		    "message/rfc822\n\n", i), 0);
	assert_int_equal(buf_puts(&b, "Subject: leaf\n\nbody\n"), 0);
	m = mime_parse(b.data, b.len);
	assert_non_null(m);
	assert_true(m->flags & MIME_MSG_DEPTH_LIMIT);
	check_all(b.data, b.len, m);
	mime_free(m);

	/* the same boundary at every level, never closed */
	buf_reset(&b);
	for (i = 0; i < 3000; i++)
		assert_int_equal(buf_puts(&b, "Content-Type: multipart/mixed; "
		    "boundary=x\n\n--x\n"), 0);
	m = mime_parse(b.data, b.len);
	assert_non_null(m);
	check_all(b.data, b.len, m);
	mime_free(m);
	buf_free(&b);
	buf_free(&tail);
}

static void
test_many_parts(void **state)
{
	struct buf b;
	struct mime_message *m;
	struct buf out;
	unsigned int i;

	(void)state;
	buf_init(&b, BUF_UNLIMITED);
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(buf_puts(&b, "Content-Type: multipart/mixed; "
	    "boundary=p\n\n"), 0);
	for (i = 0; i < 10000; i++)
		assert_int_equal(buf_printf(&b, "--p\n\npart %u\n", i), 0);
	assert_int_equal(buf_puts(&b, "--p--\n"), 0);
	m = mime_parse(b.data, b.len);
	assert_non_null(m);
	/* root + 9,999 parts; the rest stays in the last part's body */
	assert_int_equal(m->nparts, MIME_MAX_PARTS);
	assert_true(m->flags & MIME_MSG_PARTS_LIMIT);
	assert_int_equal(m->root->nchildren, MIME_MAX_PARTS - 1);
	check_all(b.data, b.len, m);
	assert_int_equal(fetch(b.data, m, "9999", 0, SIZE_MAX, &out), 0);
	assert_memory_equal(out.data, "part 9998\r\n--p\r\n\r\npart 9999", 27);
	mime_free(m);

	/* just under the limit: every part is there */
	buf_reset(&b);
	assert_int_equal(buf_puts(&b, "Content-Type: multipart/mixed; "
	    "boundary=p\n\n"), 0);
	for (i = 0; i < MIME_MAX_PARTS - 1; i++)
		assert_int_equal(buf_printf(&b, "--p\n\npart %u\n", i), 0);
	assert_int_equal(buf_puts(&b, "--p--\n"), 0);
	m = mime_parse(b.data, b.len);
	assert_non_null(m);
	assert_int_equal(m->flags, 0);
	assert_int_equal(m->root->nchildren, MIME_MAX_PARTS - 1);
	assert_int_equal(fetch(b.data, m, "9999", 0, SIZE_MAX, &out), 0);
	assert_string_equal(out.data, "part 9998");
	mime_free(m);
	buf_free(&out);
	buf_free(&b);
}

static void
test_huge_header(void **state)
{
	size_t n = 4 << 20, i;
	char *msg = malloc(n + 64);
	struct mime_message *m;
	struct buf out;

	(void)state;
	assert_non_null(msg);
	memcpy(msg, "Subject: ", 9);
	memset(msg + 9, 'x', n);
	memcpy(msg + 9 + n, "\nContent-Type: text/plain\n\nbody", 31);
	m = mime_parse(msg, 9 + n + 31);
	assert_non_null(m);
	assert_int_equal(m->root->body.len, 4);
	check_all(msg, 9 + n + 31, m);
	buf_init(&out, 1024);	/* too small: fails cleanly */
	assert_int_equal(imap_envelope_write(msg, m->root->hdr.len, &out), -1);
	buf_free(&out);
	mime_free(m);

	/* a Content-Type with 100,000 parameters and an address list with
	 * 100,000 addresses */
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(buf_puts(&out, "Content-Type: multipart/mixed"), 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(buf_printf(&out, "; p%zu*%zu=v", i % 7, i), 0);
	assert_int_equal(buf_puts(&out, "; boundary=z\nTo: "), 0);
	for (i = 0; i < 100000; i++)
		assert_int_equal(buf_puts(&out, "a@b,"), 0);
	assert_int_equal(buf_puts(&out, "\n\n--z\n\nx\n--z--\n"), 0);
	m = mime_parse(out.data, out.len);
	assert_non_null(m);
	assert_true(m->root->nparams <= MIME_MAX_PARAMS);
	/* the boundary came after the 64 kept parameters */
	assert_string_equal(m->root->type, "text");
	{
		struct buf env;
		const char *q;
		size_t count = 0;

		buf_init(&env, BUF_UNLIMITED);
		assert_int_equal(imap_envelope_write(out.data, m->root->hdr.len,
		    &env), 0);
		for (q = env.data; (q = strstr(q, "\"a\" \"b\"")) != NULL; q++)
			count++;
		assert_int_equal(count, IMAP_ENVELOPE_MAX_ADDRS);
		buf_free(&env);
	}
	mime_free(m);
	buf_free(&out);
	free(msg);
}

static void
test_small_buffers(void **state)
{
	size_t rawlen, len, max;
	char *raw = read_file(CORPUS "/rfc822_attach.eml", &rawlen);
	char *msg = convert_eol(raw, rawlen, 0, &len);
	struct mime_message *m = mime_parse(msg, len);
	struct buf out;
	int ok = 0;

	(void)state;
	assert_non_null(m);
	/* every limit either fits or fails with -1, never overruns */
	for (max = 0; max < 1200; max += 7) {
		buf_init(&out, max);
		if (imap_bodystructure_write(msg, len, m->root, IMAP_BS_EXTENDED,
		    &out) == 0)
			ok++;
		assert_true(out.len <= max);
		buf_free(&out);
		buf_init(&out, max);
		(void)fetch(msg, m, "2.HEADER.FIELDS (From)", 0, SIZE_MAX, &out);
		assert_true(out.len <= max);
		buf_free(&out);
	}
	assert_true(ok > 0);
	mime_free(m);
	free(msg);
	free(raw);
}

/* Deterministic garbage built from MIME-ish pieces. */
static void
test_random(void **state)
{
	static const char *const pieces[] = {
		"Content-Type: multipart/mixed; boundary=a\n",
		"Content-Type: multipart/digest; boundary=\"a-b\"\n",
		"Content-Type: message/rfc822\n", "Content-Type: text/plain\n",
		"Content-Type: message/global\n", "MIME-Version: 1.0\n",
		"--a\n", "--a--\n", "--a-b\n", "--a-b--\n", "\n", "\r\n", "x\n",
		"From: a@b, g: c@d;\n", "Subject: =?utf-8?q?x?=\n", " folded\n",
		"Content-Disposition: attachment; filename*0*=a; filename*1=b\n",
		"\0", "\r", "-", "=?", "(", "\"", "<", ":", ";",
	};
	uint32_t seed = 12345;
	struct buf msg;
	int round, k, n;

	(void)state;
	buf_init(&msg, BUF_UNLIMITED);
	for (round = 0; round < 3000; round++) {
		struct mime_message *m;

		buf_reset(&msg);
		seed = seed * 1103515245 + 12345;
		n = (int)(seed >> 16) % 40;
		for (k = 0; k < n; k++) {
			const char *pc;

			seed = seed * 1103515245 + 12345;
			pc = pieces[(seed >> 16) % (sizeof(pieces) / sizeof(*pieces))];
			assert_int_equal(buf_append(&msg, pc, pc[0] ? strlen(pc) : 1), 0);
		}
		m = mime_parse(msg.data != NULL ? msg.data : "", msg.len);
		assert_non_null(m);
		check_all(msg.data != NULL ? msg.data : "", msg.len, m);
		mime_free(m);
	}
	buf_free(&msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_sections_rfc822),
		cmocka_unit_test(test_sections_simple),
		cmocka_unit_test(test_section_syntax),
		cmocka_unit_test(test_message_global),
		cmocka_unit_test(test_boundary_edges),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_envelope_details),
		cmocka_unit_test(test_decode_2047),
		cmocka_unit_test(test_decode_cte),
		cmocka_unit_test(test_decode_parts),
		cmocka_unit_test(test_search),
		cmocka_unit_test(test_fold_every_byte),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_huge_header),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
