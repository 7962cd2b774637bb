/*
 * test_imap_response.c - IMAP string encoding in responses, and the
 * capability lists of each state (what must and must not be offered).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "imapd/imap_response.h"

#define check_encoded(in, len, utf8, want) \
	check_encoded_n(in, len, utf8, want, sizeof(want) - 1)

static void
check_encoded_n(const char *in, size_t len, int utf8, const char *want,
    size_t wantlen)
{
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(imap_put_string(&b, in, len, utf8), 0);
	assert_int_equal(b.len, wantlen);
	assert_memory_equal(b.data, want, b.len);
	buf_free(&b);
}

static void
test_strings(void **state)
{
	(void)state;
	check_encoded("hello", 5, 0, "\"hello\"");
	check_encoded("", 0, 0, "\"\"");
	check_encoded("a\"b\\c", 5, 0, "\"a\\\"b\\\\c\"");
	check_encoded("two\r\nlines", 10, 0, "{10}\r\ntwo\r\nlines");
	check_encoded("nul\0x", 5, 0, "{5}\r\nnul\0x");
	check_encoded("caf\xc3\xa9", 5, 0, "{5}\r\ncaf\xc3\xa9");
	check_encoded("caf\xc3\xa9", 5, 1, "\"caf\xc3\xa9\"");
}

static void
test_astring_and_nstring(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(imap_put_astring(&b, "INBOX", 5, 0), 0);
	assert_int_equal(buf_putc(&b, ' '), 0);
	assert_int_equal(imap_put_astring(&b, "Sent Items", 10, 0), 0);
	assert_int_equal(buf_putc(&b, ' '), 0);
	assert_int_equal(imap_put_astring(&b, "NIL", 3, 0), 0);
	assert_int_equal(buf_putc(&b, ' '), 0);
	assert_int_equal(imap_put_nstring(&b, NULL, 0, 0), 0);
	assert_string_equal(buf_cstr(&b), "INBOX \"Sent Items\" \"NIL\" NIL");
	buf_free(&b);
}

static void
test_buffer_full(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4);
	assert_int_equal(imap_put_string(&b, "toolong", 7, 0), -1);
	buf_free(&b);
}

static int
has_cap(const char *list, const char *cap)
{
	size_t n = strlen(cap);
	const char *p = list;

	while ((p = strstr(p, cap)) != NULL) {
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
			return 1;
		p += n;
	}
	return 0;
}

static void
test_capabilities(void **state)
{
	const char *pre = imap_capabilities(IMAP_CAP_PLAIN_NO_TLS);
	const char *tls = imap_capabilities(IMAP_CAP_PREAUTH_TLS);
	const char *auth = imap_capabilities(IMAP_CAP_AUTH);

	(void)state;
	/* RFC 3501 6.2.1/7.2.1: no way to send a password in clear text */
	assert_true(has_cap(pre, "STARTTLS"));
	assert_true(has_cap(pre, "LOGINDISABLED"));
	assert_false(has_cap(pre, "AUTH=PLAIN"));
	assert_false(has_cap(pre, "AUTH=LOGIN"));
	assert_false(has_cap(tls, "STARTTLS"));
	assert_false(has_cap(tls, "LOGINDISABLED"));
	assert_true(has_cap(tls, "AUTH=PLAIN"));
	assert_true(has_cap(tls, "SASL-IR"));
	assert_true(has_cap(auth, "IMAP4rev1"));
	assert_true(has_cap(auth, "APPENDLIMIT=67108864"));
	assert_true(has_cap(auth, "IDLE"));
	assert_true(has_cap(auth, "QRESYNC"));
	assert_false(has_cap(auth, "AUTH=PLAIN"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_astring_and_nstring),
		cmocka_unit_test(test_buffer_full),
		cmocka_unit_test(test_capabilities),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
