/*
 * test_imap_parser.c - the incremental IMAP command parser: every
 * argument type, FETCH sections, sync and non-sync literals split at
 * every byte, limits, tag rules, and resynchronisation after errors
 * (the next command must always parse, and no literal byte may ever be
 * read as a command).
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
#include "imapd/imap_parser.h"

static const struct imap_parser_limits deflim = {
	.max_line = 8192,
	.max_literal = 1000,
	.max_literal_total = 0,
	.max_depth = 8,
	.max_args = 200,
};

static struct imap_parser *
newp(const struct imap_parser_limits *lim)
{
	struct imap_parser *p = imap_parser_new(lim ? lim : &deflim);

	assert_non_null(p);
	return p;
}

/* --- a readable rendering of a parsed command --------------------------- */

static void dump_args(struct buf *b, const struct imap_arg *a, size_t n);

static void
dump_bytes(struct buf *b, const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\' || c == '"')
			buf_printf(b, "\\x%02x", c);
		else
			buf_putc(b, (char)c);
	}
}

static void
dump_arg(struct buf *b, const struct imap_arg *a)
{
	assert_int_equal(a->str[a->len], '\0');
	switch (a->type) {
	case IMAP_ARG_ATOM:
		if (a->flags & IMAP_ARG_F_SECTION) {
			buf_puts(b, "S:");
			dump_bytes(b, a->str, a->len);
			buf_printf(b, "{%zu,%zu}[", a->name_len, a->suffix_len);
			dump_args(b, a->args, a->count);
			buf_putc(b, ']');
		} else {
			buf_puts(b, "A:");
			dump_bytes(b, a->str, a->len);
		}
		break;
	case IMAP_ARG_NUMBER:
		buf_printf(b, "N:%llu", (unsigned long long)a->num);
		break;
	case IMAP_ARG_QUOTED:
		buf_puts(b, "Q:\"");
		dump_bytes(b, a->str, a->len);
		buf_putc(b, '"');
		break;
	case IMAP_ARG_LITERAL:
		buf_puts(b, "L");
		if (a->flags & IMAP_ARG_F_LITERAL8)
			buf_putc(b, '8');
		if (a->flags & IMAP_ARG_F_NONSYNC)
			buf_putc(b, '+');
		if (a->flags & IMAP_ARG_F_NUL)
			buf_putc(b, '0');
		buf_puts(b, ":\"");
		dump_bytes(b, a->str, a->len);
		buf_putc(b, '"');
		break;
	case IMAP_ARG_NIL:
		buf_puts(b, "NIL");
		break;
	case IMAP_ARG_LIST:
		buf_putc(b, '(');
		dump_args(b, a->args, a->count);
		buf_putc(b, ')');
		break;
	}
}

static void
dump_args(struct buf *b, const struct imap_arg *a, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (i > 0)
			buf_putc(b, ' ');
		dump_arg(b, &a[i]);
	}
}

static void
dump_cmd(struct buf *b, const struct imap_command *c)
{
	assert_int_equal(c->tag[c->tag_len], '\0');
	assert_int_equal(c->name[c->name_len], '\0');
	dump_bytes(b, c->tag, c->tag_len);
	buf_putc(b, ' ');
	dump_bytes(b, c->name, c->name_len);
	if (c->count > 0) {
		buf_putc(b, ' ');
		dump_args(b, c->args, c->count);
	}
}

/* --- feeding ---------------------------------------------------------------- */

/*
 * Feed in[0..len) to p, delivering it in pieces that end at cuts[]
 * (ascending), the way a socket would; log every result but NEED_MORE:
 *   "D<dump>;"  "E<tag>:<reason>;"  "B<tag>:<size>;"  "C<size>;"
 * Continuations are answered (nothing to do: the bytes keep coming).
 */
static void
run(struct imap_parser *p, const char *in, size_t len, const size_t *cuts,
    size_t ncuts, struct buf *log)
{
	size_t delivered = 0, used_total = 0, ci = 0, used, tlen;
	enum imap_parse_result r;
	const char *tag;
	int ns;

	delivered = ncuts > 0 ? cuts[0] : len;
	ci = 1;
	for (;;) {
		r = imap_parser_feed(p, in + used_total, delivered - used_total,
		    &used);
		assert_true(used <= delivered - used_total);
		used_total += used;
		switch (r) {
		case IMAP_PARSE_NEED_MORE:
			assert_int_equal(used_total, delivered);
			if (delivered == len)
				return;
			delivered = ci < ncuts ? cuts[ci++] : len;
			break;
		case IMAP_PARSE_DONE:
			buf_putc(log, 'D');
			dump_cmd(log, imap_parser_command(p));
			buf_putc(log, ';');
			break;
		case IMAP_PARSE_ERROR:
		case IMAP_PARSE_LITERAL_TOO_BIG:
			assert_null(imap_parser_command(p));
			tag = imap_parser_tag(p, &tlen);
			buf_putc(log, r == IMAP_PARSE_ERROR ? 'E' : 'B');
			if (tag != NULL)
				dump_bytes(log, tag, tlen);
			else
				buf_putc(log, '*');
			if (r == IMAP_PARSE_ERROR)
				buf_printf(log, ":%s;", imap_parser_error(p));
			else
				buf_printf(log, ":%llu;", (unsigned long long)
				    imap_parser_literal_size(p, &ns));
			break;
		case IMAP_PARSE_NEED_CONTINUATION:
			buf_printf(log, "C%llu;", (unsigned long long)
			    imap_parser_literal_size(p, &ns));
			assert_int_equal(ns, 0);
			break;
		}
	}
}

/* The log for the whole input in one piece. */
static char *
log_of(const struct imap_parser_limits *lim, const char *in, size_t len)
{
	struct imap_parser *p = newp(lim);
	struct buf log;
	char *s;

	buf_init(&log, BUF_UNLIMITED);
	run(p, in, len, NULL, 0, &log);
	s = strdup(buf_cstr(&log));
	buf_free(&log);
	imap_parser_free(p);
	return s;
}

/*
 * The same input split in two at every byte, and one byte at a time,
 * must give the same log as in one piece; that log must equal want.
 */
static void
check_splits(const struct imap_parser_limits *lim, const char *in, size_t len,
    const char *want)
{
	struct imap_parser *p;
	struct buf log;
	size_t k, *cuts;
	char *whole = log_of(lim, in, len);

	assert_string_equal(whole, want);
	buf_init(&log, BUF_UNLIMITED);
	for (k = 1; k < len; k++) {
		p = newp(lim);
		buf_reset(&log);
		run(p, in, len, &k, 1, &log);
		if (strcmp(buf_cstr(&log), whole) != 0)
			fail_msg("split at %zu: got %s want %s", k,
			    buf_cstr(&log), whole);
		imap_parser_free(p);
	}
	cuts = malloc(len * sizeof(*cuts));
	assert_non_null(cuts);
	for (k = 0; k < len; k++)
		cuts[k] = k + 1;
	p = newp(lim);
	buf_reset(&log);
	run(p, in, len, cuts, len, &log);
	assert_string_equal(buf_cstr(&log), whole);
	imap_parser_free(p);
	free(cuts);
	buf_free(&log);
	free(whole);
}

#define CHECK(lim, s, want) check_splits(lim, s, sizeof(s) - 1, want)

/* --- tests ------------------------------------------------------------------- */

static void
test_simple(void **state)
{
	struct imap_parser *p = newp(NULL);
	const struct imap_command *c;
	size_t used;

	(void)state;
	assert_int_equal(imap_parser_feed(p, "a1 NOOP\r\nxx", 11, &used),
	    IMAP_PARSE_DONE);
	assert_int_equal(used, 9);
	c = imap_parser_command(p);
	assert_non_null(c);
	assert_string_equal(c->tag, "a1");
	assert_string_equal(c->name, "NOOP");
	assert_int_equal(c->count, 0);
	assert_null(c->args);
	assert_int_equal(imap_parser_feed(p, "", 0, &used),
	    IMAP_PARSE_NEED_MORE);
	assert_null(imap_parser_command(p));
	imap_parser_free(p);

	CHECK(NULL, "a1 NOOP\r\n", "Da1 NOOP;");
	CHECK(NULL, "a1 noop\n", "Da1 noop;");		/* bare LF */
	CHECK(NULL, "\r\n\n\r\na1 NOOP  \r\n", "Da1 NOOP;");	/* empty lines */
	CHECK(NULL, "a1  NOOP\r\n", "Da1 NOOP;");
}

static void
test_arg_types(void **state)
{
	(void)state;
	CHECK(NULL, "t X atom 123 \"quo\\\"ted\\\\\" NIL nil Nil \"\" ~x\r\n",
	    "Dt X A:atom N:123 Q:\"quo\\x22ted\\x5c\" NIL NIL NIL Q:\"\" "
	    "A:~x;");
	CHECK(NULL, "t X (a (b c) () NIL) ( x )\r\n",
	    "Dt X (A:a (A:b A:c) () NIL) (A:x);");
	CHECK(NULL, "t X 9223372036854775807 9223372036854775808 007 0\r\n",
	    "Dt X N:9223372036854775807 A:9223372036854775808 N:7 N:0;");
	CHECK(NULL, "t X \\Seen $Junk 1:* *:4,7 % INBOX.* a]b\r\n",
	    "Dt X A:\\x5cSeen A:$Junk A:1:* A:*:4,7 A:% A:INBOX.* A:a]b;");
	/* UTF-8 in a quoted string (UTF8=ACCEPT); TAB is a TEXT-CHAR */
	CHECK(NULL, "t X \"caf\xc3\xa9\" \"a\tb\"\r\n",
	    "Dt X Q:\"caf\\xc3\\xa9\" Q:\"a\\x09b\";");
}

static void
test_arg_values(void **state)
{
	struct imap_parser *p = newp(NULL);
	const struct imap_command *c;
	static const char in[] = "t X \"a\xc3\xa9\" {3+}\r\na\0b 42 (x)\r\n";
	uint64_t v;
	size_t used, len;
	const char *s;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, sizeof(in) - 1, &used),
	    IMAP_PARSE_DONE);
	assert_int_equal(used, sizeof(in) - 1);
	c = imap_parser_command(p);
	assert_int_equal(c->count, 4);
	assert_int_equal(c->args[0].type, IMAP_ARG_QUOTED);
	assert_true(c->args[0].flags & IMAP_ARG_F_8BIT);
	assert_int_equal(c->args[1].type, IMAP_ARG_LITERAL);
	assert_int_equal(c->args[1].len, 3);
	assert_memory_equal(c->args[1].str, "a\0b", 3);
	assert_true(c->args[1].flags & IMAP_ARG_F_NUL);
	assert_true(c->args[1].flags & IMAP_ARG_F_NONSYNC);
	assert_false(imap_arg_astring(&c->args[1], &s, &len));	/* NUL */
	assert_true(imap_arg_string(&c->args[1], &s, &len));
	assert_true(imap_arg_number(&c->args[2], &v));
	assert_int_equal(v, 42);
	assert_true(imap_arg_astring(&c->args[2], &s, &len));	/* "42" */
	assert_int_equal(len, 2);
	assert_false(imap_arg_number(&c->args[0], &v));
	assert_int_equal(c->args[3].type, IMAP_ARG_LIST);
	assert_int_equal(c->args[3].count, 1);
	assert_true(imap_arg_is_atom(&c->args[3].args[0], "X"));
	assert_false(imap_arg_is_atom(&c->args[3], "X"));
	imap_parser_free(p);
}

static void
test_literals(void **state)
{
	(void)state;
	/* synchronizing: one continuation each */
	CHECK(NULL, "A1 LOGIN {5}\r\nalice {6}\r\nsecret\r\n",
	    "C5;C6;DA1 LOGIN L:\"alice\" L:\"secret\";");
	/* LITERAL+: none */
	CHECK(NULL, "A1 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
	    "DA1 LOGIN L+:\"alice\" L+:\"secret\";");
	/* empty literals, a literal holding CRLF, "{" and a command */
	CHECK(NULL, "A1 X {0}\r\n {0+}\r\n {12+}\r\n{3}\r\nA2 NOOP\r\n\r\n",
	    "C0;DA1 X L:\"\" L+:\"\" L+:\"{3}\\x0d\\x0aA2 NOOP\";");
	/* literals inside lists, literal8 */
	CHECK(NULL, "A1 APPEND box (\\Seen) UTF8 (~{4+}\r\n\0\xff\r\n) ~{1}\r\nz\r\n",
	    "C1;DA1 APPEND A:box (A:\\x5cSeen) A:UTF8 "
	    "(L8+0:\"\\x00\\xff\\x0d\\x0a\") L8:\"z\";");
	/* bare LF after the announcement */
	CHECK(NULL, "A1 X {2+}\nab\n", "DA1 X L+:\"ab\";");
	/* a separator must follow a literal */
	CHECK(NULL, "A1 X {2+}\r\nabc\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	/* bad announcements */
	CHECK(NULL, "A1 X {}\r\nA2 NOOP\r\n",
	    "EA1:Invalid literal size;DA2 NOOP;");
	CHECK(NULL, "A1 X {1x}\r\nA2 NOOP\r\n",
	    "EA1:Invalid literal size;DA2 NOOP;");
	CHECK(NULL, "A1 X {1}x\r\nA2 NOOP\r\n",
	    "EA1:Missing CRLF after literal size;DA2 NOOP;");
	CHECK(NULL, "A1 X {99999999999999999999}\r\nA2 NOOP\r\n",
	    "EA1:Literal size out of range;DA2 NOOP;");
	CHECK(NULL, "A1 X a{1}\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in atom;DA2 NOOP;");
}

static void
test_literal_too_big(void **state)
{
	static char in[4096];
	struct imap_parser_limits lim = deflim;
	size_t n;

	(void)state;
	/* {n}: refused at once, the client never sends the bytes */
	CHECK(NULL, "A1 APPEND INBOX {1001}\r\nA2 NOOP\r\n",
	    "BA1:1001;DA2 NOOP;");
	CHECK(NULL, "A1 APPEND INBOX {1000}\r\n",
	    "C1000;");
	/* {n+}: the n bytes are read and dropped, with the rest of the line;
	 * commands hidden inside them are never run */
	n = (size_t)snprintf(in, sizeof(in), "A1 APPEND INBOX {1001+}\r\n");
	memset(in + n, 'x', 1001);
	memcpy(in + n, "A3 LOGOUT\r\n", 11);
	memcpy(in + n + 1001 - 11, "A4 LOGOUT\r\n", 11);
	n += 1001;
	n += (size_t)snprintf(in + n, sizeof(in) - n,
	    " (more) {4+}\r\nA5 X\r\nA2 NOOP\r\n");
	check_splits(NULL, in, n, "BA1:1001;DA2 NOOP;");

	/* the total over all literals of one command */
	lim.max_literal_total = 10;
	CHECK(&lim, "A1 X {6+}\r\nabcdef {5+}\r\nabcde\r\nA2 NOOP\r\n",
	    "BA1:5;DA2 NOOP;");
	CHECK(&lim, "A1 X {6+}\r\nabcdef {4}\r\nabcd\r\n",
	    "C4;DA1 X L+:\"abcdef\" L:\"abcd\";");
	CHECK(&lim, "A1 X {6+}\r\nabcdef {5}\r\nA2 NOOP\r\n",
	    "BA1:5;DA2 NOOP;");
}

static void
test_refuse_continuation(void **state)
{
	struct imap_parser *p = newp(NULL);
	size_t used, tlen;
	int ns;

	(void)state;
	assert_int_equal(imap_parser_feed(p, "A1 APPEND x {500}\r\n", 19,
	    &used), IMAP_PARSE_NEED_CONTINUATION);
	assert_int_equal(used, 19);
	assert_int_equal(imap_parser_literal_size(p, &ns), 500);
	assert_int_equal(ns, 0);
	assert_string_equal(imap_parser_tag(p, &tlen), "A1");
	/* the caller answers "A1 NO [OVERQUOTA]" instead of "+" */
	imap_parser_reset(p);
	assert_int_equal(imap_parser_feed(p, "A2 NOOP\r\n", 9, &used),
	    IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "A2");
	imap_parser_free(p);
}

static void
test_quoted_errors(void **state)
{
	(void)state;
	CHECK(NULL, "A1 LOGIN \"a\0b\" x\r\nA2 NOOP\r\n",
	    "EA1:NUL in quoted string;DA2 NOOP;");
	CHECK(NULL, "A1 LOGIN \"abc\r\nA2 NOOP\r\n",
	    "EA1:Missing '\"';DA2 NOOP;");
	CHECK(NULL, "A1 LOGIN \"abc\nA2 NOOP\r\n",
	    "EA1:Missing '\"';DA2 NOOP;");
	CHECK(NULL, "A1 LOGIN \"a\\b\" x\r\nA2 NOOP\r\n",
	    "EA1:Invalid escape in quoted string;DA2 NOOP;");
	CHECK(NULL, "A1 LOGIN \"a\"\"b\"\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	CHECK(NULL, "A1 LOGIN \"a\"b\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
}

static void
test_atom_errors(void **state)
{
	(void)state;
	CHECK(NULL, "A1 X a\"b\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in atom;DA2 NOOP;");
	CHECK(NULL, "A1 X a(b\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in atom;DA2 NOOP;");
	CHECK(NULL, "A1 X caf\xc3\xa9\r\nA2 NOOP\r\n",
	    "EA1:8-bit data in atom;DA2 NOOP;");
	CHECK(NULL, "A1 X \xc3\r\nA2 NOOP\r\n",
	    "EA1:8-bit data in atom;DA2 NOOP;");
	CHECK(NULL, "A1 X a\tb\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in atom;DA2 NOOP;");
	CHECK(NULL, "A1 X \tb\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in argument;DA2 NOOP;");
	CHECK(NULL, "A1 X a\0b\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in atom;DA2 NOOP;");
	CHECK(NULL, "A1 X (a\r\nA2 NOOP\r\n", "EA1:Missing ')';DA2 NOOP;");
	CHECK(NULL, "A1 X a)\r\nA2 NOOP\r\n", "EA1:Unexpected ')';DA2 NOOP;");
	CHECK(NULL, "A1 X (a)(b)\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	CHECK(NULL, "A1 X a\rb\r\nA2 NOOP\r\n", "EA1:CR without LF;DA2 NOOP;");
	CHECK(NULL, "A1 NOOP\r\r\nA2 NOOP\r\n", "EA1:CR without LF;DA2 NOOP;");
}

static void
test_tags(void **state)
{
	(void)state;
	CHECK(NULL, "+ NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "a+b NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "* NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "a%b NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "a\\b NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "(a NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "\"a\" NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, " A1 NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "\xc3\xa9 NOOP\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "{3}\r\nA2 NOOP\r\n", "E*:Invalid tag;DA2 NOOP;");
	/* a tag followed by a non-sync literal: its bytes are skipped */
	CHECK(NULL, "{9+}\r\nA3 NOOP\r\n\r\nA2 NOOP\r\n",
	    "E*:Invalid tag;DA2 NOOP;");
	CHECK(NULL, "A1\r\nA2 NOOP\r\n", "EA1:Missing command name;DA2 NOOP;");
	CHECK(NULL, "A1 \r\nA2 NOOP\r\n", "EA1:Missing command name;DA2 NOOP;");
	CHECK(NULL, "A1 (NOOP)\r\nA2 NOOP\r\n",
	    "EA1:Invalid command name;DA2 NOOP;");
	CHECK(NULL, "A1 NO\"OP\r\nA2 NOOP\r\n",
	    "EA1:Invalid command name;DA2 NOOP;");
	CHECK(NULL, "a]b[ NOOP\r\n", "Da]b[ NOOP;");
	CHECK(NULL, "~1.x NOOP\r\n", "D~1.x NOOP;");
	CHECK(NULL, "A1 UID fetch 1:* (FLAGS)\r\n",
	    "DA1 UID A:fetch A:1:* (A:FLAGS);");
}

static void
test_sections(void **state)
{
	struct imap_parser *p = newp(NULL);
	const struct imap_command *c;
	const struct imap_arg *a, *f;
	const char *in = "A1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (From To)]<0.100>)\r\n";
	size_t used, len;
	uint64_t off, cnt;
	const char *s;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used),
	    IMAP_PARSE_DONE);
	c = imap_parser_command(p);
	assert_int_equal(c->count, 2);
	a = &c->args[1].args[0];
	assert_int_equal(a->type, IMAP_ARG_ATOM);
	assert_true(a->flags & IMAP_ARG_F_SECTION);
	assert_string_equal(a->str,
	    "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>");
	assert_int_equal(a->name_len, 9);
	assert_int_equal(a->suffix_len, 7);
	assert_int_equal(a->count, 2);
	assert_true(imap_arg_is_atom(&a->args[0], "header.fields"));
	f = &a->args[1];
	assert_int_equal(f->type, IMAP_ARG_LIST);
	assert_int_equal(f->count, 2);
	assert_true(imap_arg_is_atom(&f->args[1], "TO"));
	assert_int_equal(imap_parse_partial(a->str + a->len - a->suffix_len,
	    a->suffix_len, &off, &cnt), 0);
	assert_int_equal(off, 0);
	assert_int_equal(cnt, 100);
	assert_false(imap_arg_is_atom(a, "BODY.PEEK"));
	assert_false(imap_arg_astring(a, &s, &len));	/* has SP, ( ) */
	imap_parser_free(p);

	CHECK(NULL, "A1 FETCH 1 BODY[]\r\n", "DA1 FETCH N:1 S:BODY[]{4,0}[];");
	CHECK(NULL, "A1 FETCH 1 (BODY[] BINARY.PEEK[1.2]<0.2048> "
	    "BINARY.SIZE[3] BODY[1.2.MIME] BODY[TEXT]<5.5>)\r\n",
	    "DA1 FETCH N:1 (S:BODY[]{4,0}[] "
	    "S:BINARY.PEEK[1.2]<0.2048>{11,8}[A:1.2] "
	    "S:BINARY.SIZE[3]{11,0}[N:3] S:BODY[1.2.MIME]{4,0}[A:1.2.MIME] "
	    "S:BODY[TEXT]<5.5>{4,5}[A:TEXT]);");
	CHECK(NULL, "A1 FETCH 1 BODY[HEADER.FIELDS.NOT (\"X-A\" {3+}\r\nX-B)]\r\n",
	    "DA1 FETCH N:1 S:BODY[HEADER.FIELDS.NOT (\\x22X-A\\x22 {3+})]"
	    "{4,0}[A:HEADER.FIELDS.NOT (Q:\"X-A\" L+:\"X-B\")];");
	/* a mailbox name with brackets is still an astring */
	CHECK(NULL, "A1 SELECT foo[bar]\r\n",
	    "DA1 SELECT S:foo[bar]{3,0}[A:bar];");
	CHECK(NULL, "A1 SELECT [x[y]z]w\r\n",
	    "DA1 SELECT S:[x[y]z]w{0,3}[A:x[y];");
	/* errors */
	CHECK(NULL, "A1 FETCH 1 BODY[HEADER\r\nA2 NOOP\r\n",
	    "EA1:Missing ']';DA2 NOOP;");
	CHECK(NULL, "A1 FETCH 1 (BODY[1)\r\nA2 NOOP\r\n",
	    "EA1:Missing ']';DA2 NOOP;");
	CHECK(NULL, "A1 FETCH 1 BODY[1][2]\r\nA2 NOOP\r\n",
	    "EA1:Unexpected '[';DA2 NOOP;");
	CHECK(NULL, "A1 FETCH 1 BODY[1]\"x\"\r\nA2 NOOP\r\n",
	    "EA1:Invalid character in atom;DA2 NOOP;");
	CHECK(NULL, "A1 FETCH 1 BODY[\"x\"\"y\"]\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
}

static void
test_section_astring(void **state)
{
	struct imap_parser *p = newp(NULL);
	const struct imap_command *c;
	const char *in = "A1 SELECT foo[bar]\r\n";
	const char *s;
	size_t used, len;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used),
	    IMAP_PARSE_DONE);
	c = imap_parser_command(p);
	assert_true(imap_arg_astring(&c->args[0], &s, &len));
	assert_int_equal(len, 8);
	assert_memory_equal(s, "foo[bar]", 8);
	imap_parser_free(p);
}

static void
test_helpers(void **state)
{
	struct imap_parser *p = newp(NULL);
	const struct imap_command *c;
	const char *in = "A1 LIST \"\" % INBOX* \\Seen ]x ";
	const char *s;
	size_t used, len;
	uint64_t o, n;

	(void)state;
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used),
	    IMAP_PARSE_NEED_MORE);
	assert_int_equal(imap_parser_feed(p, "nil\r\n", 5, &used),
	    IMAP_PARSE_DONE);
	c = imap_parser_command(p);
	assert_int_equal(c->count, 6);
	assert_true(imap_arg_astring(&c->args[0], &s, &len));
	assert_int_equal(len, 0);
	assert_false(imap_arg_astring(&c->args[1], &s, &len));
	assert_true(imap_arg_list_mailbox(&c->args[1], &s, &len));
	assert_true(imap_arg_list_mailbox(&c->args[2], &s, &len));
	assert_false(imap_arg_astring(&c->args[3], &s, &len));	/* \Seen */
	assert_false(imap_arg_list_mailbox(&c->args[3], &s, &len));
	assert_true(imap_arg_astring(&c->args[4], &s, &len));	/* ]x */
	assert_int_equal(c->args[5].type, IMAP_ARG_NIL);
	assert_true(imap_arg_astring(&c->args[5], &s, &len));	/* "nil" */
	assert_memory_equal(s, "nil", 3);
	assert_true(imap_arg_is_atom(&c->args[5], "NIL"));
	imap_parser_free(p);

	assert_int_equal(imap_parse_partial("<0.1>", 5, &o, &n), 0);
	assert_int_equal(imap_parse_partial("<9223372036854775807.9>", 23,
	    &o, &n), 0);
	assert_int_equal(o, 9223372036854775807ULL);
	assert_int_equal(imap_parse_partial("<9223372036854775808.9>", 23,
	    &o, &n), -1);
	assert_int_equal(imap_parse_partial("<0.0>", 5, &o, &n), -1);
	assert_int_equal(imap_parse_partial("<0>", 3, &o, &n), -1);
	assert_int_equal(imap_parse_partial("<.1>", 4, &o, &n), -1);
	assert_int_equal(imap_parse_partial("<1.>", 4, &o, &n), -1);
	assert_int_equal(imap_parse_partial("<1.2", 4, &o, &n), -1);
	assert_int_equal(imap_parse_partial("<1.2>x", 6, &o, &n), -1);
	assert_int_equal(imap_parse_partial("<1.2.3>", 7, &o, &n), -1);
}

static void
test_limits(void **state)
{
	struct imap_parser_limits lim = deflim;
	char line[200];
	size_t n;

	(void)state;
	lim.max_depth = 3;
	CHECK(&lim, "A1 X (((a)))\r\n", "DA1 X (((A:a)));");
	CHECK(&lim, "A1 X ((((a))))\r\nA2 NOOP\r\n",
	    "EA1:Too deeply nested;DA2 NOOP;");
	CHECK(&lim, "A1 X ((BODY[(a)]))\r\nA2 NOOP\r\n",
	    "EA1:Too deeply nested;DA2 NOOP;");

	lim = deflim;
	lim.max_args = 4;
	CHECK(&lim, "A1 X a (b) c\r\n", "DA1 X A:a (A:b) A:c;");
	CHECK(&lim, "A1 X a (b) c d\r\nA2 NOOP\r\n",
	    "EA1:Too many arguments;DA2 NOOP;");
	CHECK(&lim, "A1 X a (b) c {1}\r\nA2 NOOP\r\n",
	    "EA1:Too many arguments;DA2 NOOP;");
	CHECK(&lim, "A1 X a (b) c {3+}\r\nA3 \r\nA2 NOOP\r\n",
	    "EA1:Too many arguments;DA2 NOOP;");

	lim = deflim;
	lim.max_line = 20;
	CHECK(&lim, "A1 LOGIN {3+}\r\nabc bb\r\n",	/* 20 bytes + literal */
	    "DA1 LOGIN L+:\"abc\" A:bb;");
	CHECK(&lim, "A1 LOGIN {3+}\r\nabc bbb\r\nA2 NOOP\r\n",
	    "EA1:Command line too long;DA2 NOOP;");
	CHECK(&lim, "A1 LOGIN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nA2 NOOP\r\n",
	    "EA1:Command line too long;DA2 NOOP;");
	/* the limit is crossed in the middle of "{5+}": its five bytes are
	 * still skipped, at every possible crossing point */
	for (n = 0; n < 8; n++) {
		int len;

		lim.max_line = 14 + n;
		len = snprintf(line, sizeof(line),
		    "A1 X aaaaaaaa {5+}\r\nA3 X\n\r\nA2 NOOP\r\n");
		check_splits(&lim, line, (size_t)len,
		    "EA1:Command line too long;DA2 NOOP;");
	}
	/* a sync literal at the end: the command ends at its CRLF */
	lim.max_line = 12;
	CHECK(&lim, "A1 X aaaaaaaa {5}\r\nA2 NOOP\r\n",
	    "EA1:Command line too long;DA2 NOOP;");
	/* the tag survives a long line */
	lim.max_line = 9;
	CHECK(&lim, "A1 NOOPNOOP\r\nA2 NOOP\r\n",
	    "EA1:Command line too long;DA2 NOOP;");
	CHECK(&lim, "A123456789 NOOP\r\n\r\nA2 NOOP\r\n",
	    "E*:Command line too long;DA2 NOOP;");
}

/* After any error the skip must honour a trailing {n+} and only that. */
static void
test_resync(void **state)
{
	(void)state;
	CHECK(NULL, "A1 X \"a\"b {11+}\r\nA3 LOGOUT\r\n more\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	CHECK(NULL, "A1 X \"a\"b {11+}\r\nA3 LOGOUT\r\n {2+}\r\n\r\n\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	CHECK(NULL, "A1 X ~{4+}\r\n\r\n\r\n)\r\nA2 NOOP\r\n",
	    "EA1:Unexpected ')';DA2 NOOP;");
	/* literal8 announced after the error */
	CHECK(NULL, "A1 X \"a\"b ~{4+}\r\n\r\n\r\n\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	/* sync literal after the error: the client waits, the line is over */
	CHECK(NULL, "A1 X \"a\"b {11}\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	/* not literals: "{5+}x", "{5 +}", "{+}" */
	CHECK(NULL, "A1 X \"a\"b {5+}x\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	CHECK(NULL, "A1 X \"a\"b {5 +}\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	CHECK(NULL, "A1 X \"a\"b {+}\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	/* CR CR LF after the announcement is not a literal */
	CHECK(NULL, "A1 X \"a\"b {5+}\r\r\nA2 NOOP\r\n",
	    "EA1:Missing space after argument;DA2 NOOP;");
	/* error inside the literal announcement itself */
	CHECK(NULL, "A1 X {5+x}\r\nA2 NOOP\r\n",
	    "EA1:Invalid literal size;DA2 NOOP;");
	CHECK(NULL, "A1 X {1+1}\r\nA2 NOOP\r\n",
	    "EA1:Invalid literal size;DA2 NOOP;");
	/* an error after a literal was read normally */
	CHECK(NULL, "A1 X {2+}\r\nab) {3+}\r\nA3\n\r\nA2 NOOP\r\n",
	    "EA1:Unexpected ')';DA2 NOOP;");
	/* an oversized non-sync literal, then more literals on the line */
	CHECK(NULL, "A1 X {2000+}\r\n", "");
	/* many errors in a row */
	CHECK(NULL, "(\r\n)\r\n\"\r\n+\r\nA1\r\nA2 NOOP\r\n",
	    "E*:Invalid tag;E*:Invalid tag;E*:Invalid tag;E*:Invalid tag;"
	    "EA1:Missing command name;DA2 NOOP;");
}

static void
test_append(void **state)
{
	static const char msg[] =
	    "Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
	    "From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
	    "Subject: afternoon meeting\r\n"
	    "To: mooch@owatagu.siam.edu.example\r\n"
	    "Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
	    "\r\n"
	    "Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n";
	char in[1024], want[2048];
	struct buf w;
	int n;

	(void)state;
	n = snprintf(in, sizeof(in), "A003 APPEND saved-messages (\\Seen) "
	    "\"15-Nov-2023 10:00:00 +0100\" {%zu}\r\n%s\r\n",
	    sizeof(msg) - 1, msg);
	buf_init(&w, sizeof(want));
	buf_printf(&w, "C%zu;DA003 APPEND A:saved-messages (A:\\x5cSeen) "
	    "Q:\"15-Nov-2023 10:00:00 +0100\" L:\"", sizeof(msg) - 1);
	dump_bytes(&w, msg, sizeof(msg) - 1);
	buf_puts(&w, "\";");
	check_splits(NULL, in, (size_t)n, buf_cstr(&w));
	buf_free(&w);
}

static void
test_thunderbird(void **state)
{
	static const char in[] =
	    "1 capability\r\n"
	    "2 authenticate PLAIN\r\n"
	    "3 ID (\"name\" \"Thunderbird\" \"version\" \"115.3.1\")\r\n"
	    "4 select \"INBOX\"\r\n"
	    "5 UID fetch 1:* (FLAGS)\r\n"
	    "6 UID fetch 4 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
	    "(From To Cc Bcc Subject Date Message-ID Priority X-Priority "
	    "References Newsgroups In-Reply-To Content-Type Reply-To)])\r\n"
	    "7 list (subscribed) \"\" \"*\" return (special-use)\r\n"
	    "8 select INBOX (CONDSTORE)\r\n"
	    "9 UID fetch 1:* (FLAGS) (CHANGEDSINCE 12345)\r\n"
	    "10 IDLE\r\n"
	    "11 uid store 4 +Flags (\\Seen)\r\n"
	    "12 UID MOVE 4 \"Trash\"\r\n"
	    "13 ENABLE QRESYNC UTF8=ACCEPT\r\n"
	    "14 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n"
	    "15 AUTHENTICATE PLAIN AHRlc3QAcGFzcw==\r\n"
	    "16 STATUS \"&AOk-t&AOk-\" (UIDNEXT MESSAGES UNSEEN RECENT)\r\n"
	    "17 LIST \"\" % RETURN (CHILDREN STATUS (MESSAGES))\r\n"
	    "18 UID SEARCH RETURN (MIN COUNT SAVE) UNDELETED SINCE 1-Feb-1994\r\n"
	    "19 UID EXPUNGE 3:5\r\n"
	    "20 logout\r\n";

	(void)state;
	CHECK(NULL, in,
	    "D1 capability;"
	    "D2 authenticate A:PLAIN;"
	    "D3 ID (Q:\"name\" Q:\"Thunderbird\" Q:\"version\" Q:\"115.3.1\");"
	    "D4 select Q:\"INBOX\";"
	    "D5 UID A:fetch A:1:* (A:FLAGS);"
	    "D6 UID A:fetch N:4 (A:UID A:RFC822.SIZE A:FLAGS "
	    "S:BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date "
	    "Message-ID Priority X-Priority References Newsgroups "
	    "In-Reply-To Content-Type Reply-To)]{9,0}[A:HEADER.FIELDS "
	    "(A:From A:To A:Cc A:Bcc A:Subject A:Date A:Message-ID "
	    "A:Priority A:X-Priority A:References A:Newsgroups "
	    "A:In-Reply-To A:Content-Type A:Reply-To)]);"
	    "D7 list (A:subscribed) Q:\"\" Q:\"*\" A:return (A:special-use);"
	    "D8 select A:INBOX (A:CONDSTORE);"
	    "D9 UID A:fetch A:1:* (A:FLAGS) (A:CHANGEDSINCE N:12345);"
	    "D10 IDLE;"
	    "D11 uid A:store N:4 A:+Flags (A:\\x5cSeen);"
	    "D12 UID A:MOVE N:4 Q:\"Trash\";"
	    "D13 ENABLE A:QRESYNC A:UTF8=ACCEPT;"
	    "D14 SELECT A:INBOX (A:QRESYNC (N:67890007 N:20050715194045000 "
	    "A:41,43:211,214:541));"
	    "D15 AUTHENTICATE A:PLAIN A:AHRlc3QAcGFzcw==;"
	    "D16 STATUS Q:\"&AOk-t&AOk-\" (A:UIDNEXT A:MESSAGES A:UNSEEN "
	    "A:RECENT);"
	    "D17 LIST Q:\"\" A:% A:RETURN (A:CHILDREN A:STATUS (A:MESSAGES));"
	    "D18 UID A:SEARCH A:RETURN (A:MIN A:COUNT A:SAVE) A:UNDELETED "
	    "A:SINCE A:1-Feb-1994;"
	    "D19 UID A:EXPUNGE A:3:5;"
	    "D20 logout;");
}

static void
test_line_mode(void **state)
{
	struct imap_parser_limits lim = deflim;
	struct imap_parser *p;
	const char *line;
	size_t used, len;
	const char *in;

	(void)state;
	lim.max_line = 10;
	p = newp(&lim);
	/* IDLE, then DONE, then a pipelined command */
	in = "A1 IDLE\r\nDONE\r\nA2 NOOP\r\n";
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used),
	    IMAP_PARSE_DONE);
	in += used;
	assert_int_equal(imap_parser_feed_line(p, in, 3, &used, &line, &len),
	    IMAP_PARSE_NEED_MORE);
	assert_int_equal(used, 3);
	in += used;
	assert_int_equal(imap_parser_feed_line(p, in, strlen(in), &used,
	    &line, &len), IMAP_PARSE_DONE);
	assert_int_equal(used, 3);
	assert_int_equal(len, 4);
	assert_string_equal(line, "DONE");
	in += used;
	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used),
	    IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "A2");

	/* too long, NUL, bare CR: the whole line is consumed first */
	in = "0123456789x\r\nab\n";
	assert_int_equal(imap_parser_feed_line(p, in, strlen(in), &used,
	    &line, &len), IMAP_PARSE_ERROR);
	assert_int_equal(used, 13);
	assert_string_equal(imap_parser_error(p), "Line too long");
	in += used;
	assert_int_equal(imap_parser_feed_line(p, in, strlen(in), &used,
	    &line, &len), IMAP_PARSE_DONE);
	assert_string_equal(line, "ab");
	assert_int_equal(imap_parser_feed_line(p, "a\0b\r\n*\r\n", 8, &used,
	    &line, &len), IMAP_PARSE_ERROR);
	assert_int_equal(used, 5);
	assert_int_equal(imap_parser_feed_line(p, "*\r\n", 3, &used,
	    &line, &len), IMAP_PARSE_DONE);
	assert_string_equal(line, "*");
	assert_int_equal(imap_parser_feed_line(p, "a\rb\r\n", 5, &used,
	    &line, &len), IMAP_PARSE_ERROR);
	assert_int_equal(used, 5);
	assert_int_equal(imap_parser_feed_line(p, "\r\n", 2, &used,
	    &line, &len), IMAP_PARSE_DONE);
	assert_int_equal(len, 0);
	assert_string_equal(line, "");
	assert_int_equal(imap_parser_feed_line(p, "0123456789\r\n", 12, &used,
	    &line, &len), IMAP_PARSE_DONE);
	assert_int_equal(len, 10);
	imap_parser_free(p);
}

static void
test_bad_limits(void **state)
{
	struct imap_parser_limits lim = deflim;

	(void)state;
	lim.max_line = 0;
	assert_null(imap_parser_new(&lim));
	lim = deflim;
	lim.max_depth = 0;
	assert_null(imap_parser_new(&lim));
	lim = deflim;
	lim.max_args = 0;
	assert_null(imap_parser_new(&lim));
	imap_parser_free(NULL);
}

/* Many commands through one parser, pipelined and reused. */
static void
test_reuse(void **state)
{
	struct imap_parser *p = newp(NULL);
	char big[1200];
	size_t used, i;
	int n;

	(void)state;
	for (i = 0; i < 50; i++) {
		n = snprintf(big, sizeof(big), "T%zu X {900+}\r\n", i);
		memset(big + n, 'a' + (int)(i % 26), 900);
		memcpy(big + n + 900, " (x y)\r\n", 8);
		assert_int_equal(imap_parser_feed(p, big, (size_t)n + 908,
		    &used), IMAP_PARSE_DONE);
		assert_int_equal(used, (size_t)n + 908);
		assert_int_equal(imap_parser_command(p)->args[0].len, 900);
		assert_int_equal(imap_parser_command(p)->args[0].str[899],
		    'a' + (int)(i % 26));
		assert_int_equal(imap_parser_command(p)->args[1].count, 2);
	}
	imap_parser_free(p);
}

/* A big command, then small ones: the big buffers are given back. */
static void
test_shrink(void **state)
{
	struct imap_parser_limits lim = deflim;
	struct imap_parser *p;
	struct buf in;
	size_t used, i;

	(void)state;
	lim.max_literal = 300000;
	lim.max_args = 1000;
	lim.max_line = 1 << 16;
	p = newp(&lim);
	buf_init(&in, BUF_UNLIMITED);
	buf_puts(&in, "A1 X BODY[");
	for (i = 0; i < 600; i++)
		buf_printf(&in, "%zu ", i);
	buf_puts(&in, "] {200000+}\r\n");
	for (i = 0; i < 200000; i++)
		buf_putc(&in, (char)('a' + i % 26));
	buf_puts(&in, "\r\nA2 NOOP\r\n");
	assert_int_equal(imap_parser_feed(p, in.data, in.len, &used),
	    IMAP_PARSE_DONE);
	assert_int_equal(imap_parser_command(p)->count, 2);
	assert_int_equal(imap_parser_command(p)->args[0].count, 600);
	assert_int_equal(imap_parser_command(p)->args[0].args[599].num, 599);
	assert_int_equal(imap_parser_command(p)->args[1].len, 200000);
	assert_int_equal(imap_parser_feed(p, in.data + used, in.len - used,
	    &used), IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "A2");
	buf_free(&in);
	imap_parser_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_arg_types),
		cmocka_unit_test(test_arg_values),
		cmocka_unit_test(test_literals),
		cmocka_unit_test(test_literal_too_big),
		cmocka_unit_test(test_refuse_continuation),
		cmocka_unit_test(test_quoted_errors),
		cmocka_unit_test(test_atom_errors),
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_section_astring),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_resync),
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_thunderbird),
		cmocka_unit_test(test_line_mode),
		cmocka_unit_test(test_bad_limits),
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_shrink),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
