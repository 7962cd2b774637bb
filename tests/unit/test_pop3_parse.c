/*
 * test_pop3_parse.c - pop3d/pop3_parse.c: command lines (verbs in any
 * case, arguments, PASS's raw rest of line, control bytes), message
 * numbers, and the RETR/TOP converter: LF -> CRLF, CRLF kept, dots
 * doubled at line starts, TOP cut after N body lines, any split of the
 * input across feeds giving the same bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pop3d/pop3_parse.h"

#define P(s) pop3_parse_command(s, sizeof(s) - 1, &c)

static void
test_verbs(void **state)
{
	struct pop3_cmd c;

	(void)state;
	assert_int_equal(P("CAPA"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_CAPA);
	assert_int_equal(c.nargs, 0);
	assert_int_equal(c.restlen, 0);
	assert_int_equal(P("quit"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_QUIT);
	assert_int_equal(P("Top 1 10"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_TOP);
	assert_int_equal(c.nargs, 2);
	assert_int_equal(c.args[0].len, 1);
	assert_memory_equal(c.args[0].p, "1", 1);
	assert_int_equal(c.args[1].len, 2);
	assert_memory_equal(c.args[1].p, "10", 2);
	assert_int_equal(P("uidl"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_UIDL);
	assert_int_equal(P("STLS"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_STLS);
	assert_string_equal(pop3_verb_name(POP3_RETR), "RETR");
	assert_string_equal(pop3_verb_name(POP3_UNKNOWN), "?");
}

static void
test_unknown_and_bad(void **state)
{
	struct pop3_cmd c;

	(void)state;
	assert_int_equal(P("APOP x y"), POP3_PARSE_UNKNOWN);
	assert_int_equal(c.verb, POP3_UNKNOWN);
	assert_int_equal(P("RETRX 1"), POP3_PARSE_UNKNOWN);
	assert_int_equal(P("RET 1"), POP3_PARSE_UNKNOWN);
	assert_int_equal(P("XTND XMIT"), POP3_PARSE_UNKNOWN);
	assert_int_equal(P(""), POP3_PARSE_EMPTY);
	assert_int_equal(P("   "), POP3_PARSE_EMPTY);
	assert_int_equal(P("LIST\0001"), POP3_PARSE_BAD_CHAR);
	assert_int_equal(c.verb, POP3_UNKNOWN);
	assert_int_equal(P("LIST\t1"), POP3_PARSE_BAD_CHAR);
	assert_int_equal(P("PASS a\x7f"), POP3_PARSE_BAD_CHAR);
	assert_int_equal(P("PASS a\r"), POP3_PARSE_BAD_CHAR);
}

static void
test_arguments(void **state)
{
	struct pop3_cmd c;

	(void)state;
	/* PASS keeps everything after one space, spaces included. */
	assert_int_equal(P("PASS  two  spaces "), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_PASS);
	assert_int_equal(c.restlen, 13);
	assert_memory_equal(c.rest, " two  spaces ", 13);
	assert_int_equal(c.nargs, 2);
	assert_int_equal(c.too_many_args, 0);
	/* UTF-8 is allowed in arguments. */
	assert_int_equal(P("PASS p\xc3\xa4ss"), POP3_PARSE_OK);
	assert_int_equal(c.restlen, 5);
	/* Runs of spaces separate words; trailing spaces are no word. */
	assert_int_equal(P("LIST   3  "), POP3_PARSE_OK);
	assert_int_equal(c.nargs, 1);
	assert_int_equal(c.args[0].len, 1);
	assert_memory_equal(c.args[0].p, "3", 1);
	assert_int_equal(P("  NOOP"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_NOOP);
	assert_int_equal(P("TOP 1 2 3"), POP3_PARSE_OK);
	assert_int_equal(c.nargs, 2);
	assert_int_equal(c.too_many_args, 1);
	assert_int_equal(P("AUTH PLAIN AGFsaWNlAHB3"), POP3_PARSE_OK);
	assert_int_equal(c.verb, POP3_AUTH);
	assert_int_equal(c.nargs, 2);
	assert_int_equal(c.args[1].len, 12);
}

static void
test_numbers(void **state)
{
	uint32_t n;

	(void)state;
	assert_int_equal(pop3_parse_number("1", 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pop3_parse_number("0", 1, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_parse_number("007", 3, &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(pop3_parse_number("4294967295", 10, &n), 0);
	assert_int_equal(n, UINT32_MAX);
	assert_int_equal(pop3_parse_number("4294967296", 10, &n), -1);
	assert_int_equal(pop3_parse_number("99999999999", 11, &n), -1);
	assert_int_equal(pop3_parse_number("", 0, &n), -1);
	assert_int_equal(pop3_parse_number("-1", 2, &n), -1);
	assert_int_equal(pop3_parse_number("+1", 2, &n), -1);
	assert_int_equal(pop3_parse_number("1a", 2, &n), -1);
	assert_int_equal(pop3_parse_number(" 1", 2, &n), -1);
}

/* Convert in one go; returns a malloc'd NUL-terminated copy. */
static char *
convert(const char *in, size_t len, int top, uint64_t lines, size_t *consumed)
{
	struct pop3_stuff st;
	struct buf out;
	ssize_t r;
	char *res;

	buf_init(&out, BUF_UNLIMITED);
	pop3_stuff_init(&st, top, lines);
	r = pop3_stuff_feed(&st, in, len, &out);
	assert_true(r >= 0);
	if (consumed != NULL)
		*consumed = (size_t)r;
	assert_int_equal(pop3_stuff_finish(&st, &out), 0);
	res = strdup(buf_cstr(&out));
	buf_free(&out);
	return res;
}

/* The same, one byte per feed. */
static char *
convert_bytewise(const char *in, size_t len, int top, uint64_t lines)
{
	struct pop3_stuff st;
	struct buf out;
	size_t i;
	char *res;

	buf_init(&out, BUF_UNLIMITED);
	pop3_stuff_init(&st, top, lines);
	for (i = 0; i < len && !st.done; i++)
		assert_true(pop3_stuff_feed(&st, in + i, 1, &out) >= 0);
	assert_int_equal(pop3_stuff_finish(&st, &out), 0);
	res = strdup(buf_cstr(&out));
	buf_free(&out);
	return res;
}

static void
check(const char *in, int top, uint64_t lines, const char *want)
{
	char *a = convert(in, strlen(in), top, lines, NULL);
	char *b = convert_bytewise(in, strlen(in), top, lines);

	assert_string_equal(a, want);
	assert_string_equal(b, want);
	free(a);
	free(b);
}

static void
test_retr_conversion(void **state)
{
	(void)state;
	check("Subject: x\n\nbody\n", 0, 0, "Subject: x\r\n\r\nbody\r\n.\r\n");
	/* dots at line starts are doubled, elsewhere not */
	check("S: x\n\n.\n..two\na.b\n.\n", 0, 0,
	    "S: x\r\n\r\n..\r\n...two\r\na.b\r\n..\r\n.\r\n");
	check(".first line\n", 0, 0, "..first line\r\n.\r\n");
	/* CRLF already in the file is kept, never doubled */
	check("A: b\r\n\r\nx\r\ny\n", 0, 0, "A: b\r\n\r\nx\r\ny\r\n.\r\n");
	/* a missing final line end is added before the terminator */
	check("A: b\n\nno newline", 0, 0, "A: b\r\n\r\nno newline\r\n.\r\n");
	check("A: b\n\ncr at end\r", 0, 0, "A: b\r\n\r\ncr at end\r\n.\r\n");
	check("", 0, 0, ".\r\n");
	/* a lone CR inside a line stays as it is */
	check("a\rb\n", 0, 0, "a\rb\r\n.\r\n");
}

static void
test_crlf_size_matches_index(void **state)
{
	const char *msg = "H: 1\n\n.x\nplain\r\nlast\n";
	struct pop3_stuff st;
	struct buf out;
	size_t i, lf = 0, dots = 0, len = strlen(msg);

	(void)state;
	/* The index's RFC822.SIZE: bytes + bare LFs. */
	for (i = 0; i < len; i++)
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			lf++;
	buf_init(&out, BUF_UNLIMITED);
	pop3_stuff_init(&st, 0, 0);
	assert_int_equal(pop3_stuff_feed(&st, msg, len, &out), (ssize_t)len);
	for (i = 0; i < out.len; i++)
		if (out.data[i] == '.' && (i == 0 || out.data[i - 1] == '\n'))
			dots++;
	assert_int_equal(out.len - dots, len + lf);
	assert_int_equal(st.in_bytes, len);
	buf_free(&out);
}

static void
test_top(void **state)
{
	const char *m = "From: a\nSubject: b\n\nl1\n.l2\nl3\n";
	size_t consumed;
	char *r;

	(void)state;
	check(m, 1, 0, "From: a\r\nSubject: b\r\n\r\n.\r\n");
	check(m, 1, 1, "From: a\r\nSubject: b\r\n\r\nl1\r\n.\r\n");
	check(m, 1, 2, "From: a\r\nSubject: b\r\n\r\nl1\r\n..l2\r\n.\r\n");
	check(m, 1, 3, "From: a\r\nSubject: b\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
	check(m, 1, 100, "From: a\r\nSubject: b\r\n\r\nl1\r\n..l2\r\nl3\r\n.\r\n");
	/* CRLF storage: the blank line is "\r\n" */
	check("A: 1\r\n\r\nx\r\ny\r\n", 1, 1, "A: 1\r\n\r\nx\r\n.\r\n");
	/* no body at all: the whole header */
	check("A: 1\nB: 2\n", 1, 0, "A: 1\r\nB: 2\r\n.\r\n");
	/* the input after the limit is not consumed */
	r = convert(m, strlen(m), 1, 1, &consumed);
	assert_int_equal(consumed, strlen("From: a\nSubject: b\n\nl1\n"));
	free(r);
}

static void
test_output_full(void **state)
{
	struct pop3_stuff st;
	struct buf out;

	(void)state;
	buf_init(&out, 8);
	pop3_stuff_init(&st, 0, 0);
	assert_int_equal(pop3_stuff_feed(&st, "0123456789\n", 11, &out), -1);
	buf_free(&out);
	buf_init(&out, 4);
	pop3_stuff_init(&st, 0, 0);
	assert_int_equal(pop3_stuff_feed(&st, "ab\n", 3, &out), 3);
	assert_int_equal(pop3_stuff_finish(&st, &out), -1);
	buf_free(&out);
}

/* Random messages split at random points: same output as in one go. */
static void
test_random_splits(void **state)
{
	static const char alphabet[] = ".\n\r a.\n";
	char msg[512];
	int round;

	(void)state;
	srand(1234);
	for (round = 0; round < 2000; round++) {
		size_t len = (size_t)(rand() % (int)sizeof(msg)), i, pos;
		int top = rand() % 2;
		uint64_t lines = (uint64_t)(rand() % 5);
		struct pop3_stuff st;
		struct buf out;
		char *whole;

		for (i = 0; i < len; i++)
			msg[i] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		whole = convert(msg, len, top, lines, NULL);
		buf_init(&out, BUF_UNLIMITED);
		pop3_stuff_init(&st, top, lines);
		for (pos = 0; pos < len && !st.done;) {
			size_t n = (size_t)(rand() % 7) + 1;
			ssize_t r;

			if (n > len - pos)
				n = len - pos;
			r = pop3_stuff_feed(&st, msg + pos, n, &out);
			assert_true(r >= 0 && (size_t)r <= n);
			if ((size_t)r < n)
				assert_true(st.done);
			pos += (size_t)r;
		}
		assert_int_equal(pop3_stuff_finish(&st, &out), 0);
		assert_string_equal(buf_cstr(&out), whole);
		/* never a bare LF, never a line starting with a lone dot
		 * except the terminator */
		for (i = 0; i < out.len; i++) {
			if (out.data[i] == '\n')
				assert_true(i > 0 && out.data[i - 1] == '\r');
		}
		assert_true(out.len >= 3 &&
		    memcmp(out.data + out.len - 3, ".\r\n", 3) == 0);
		for (i = 0; i + 3 < out.len; i++) {
			if ((i == 0 || out.data[i - 1] == '\n') &&
			    out.data[i] == '.')
				assert_int_equal(out.data[i + 1], '.');
		}
		buf_free(&out);
		free(whole);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_unknown_and_bad),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_retr_conversion),
		cmocka_unit_test(test_crlf_size_matches_index),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_output_full),
		cmocka_unit_test(test_random_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
