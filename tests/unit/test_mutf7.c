/*
 * test_mutf7.c - modified UTF-7 <-> UTF-8: the RFC 3501 examples, round
 * trips over the whole Unicode range, and every invalid form (which must
 * be refused without touching the output buffer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "store/mutf7.h"

struct pair {
	const char *utf8;
	const char *mutf7;
};

/* Expected values computed independently (Python's base64 + UTF-16). */
static const struct pair pairs[] = {
	{ "", "" },
	{ "INBOX", "INBOX" },
	{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac"
	    "\xe8\xaa\x9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },	/* RFC 3501 */
	{ "R\xc3\xa9pertoire", "R&AOk-pertoire" },
	{ "&", "&-" },
	{ "a&&b", "a&-&-b" },
	{ "\xc3\xa9&", "&AOk-&-" },
	{ "\xc3\xa9&\xc3\xa9", "&AOk-&-&AOk-" },
	{ "\xf0\x9f\x98\x80", "&2D3eAA-" },			/* U+1F600 */
	{ "\x01", "&AAE-" },
	{ "a\x7f" "b", "a&AH8-b" },
	{ "\xc3\x9c" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 \xce\xa9\xce\xbc"
	    "\xce\xad\xce\xb3\xce\xb1", "&ANw-n&AO8-c&APY-d&AOk- &A6kDvAOtA7MDsQ-" },
	{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xf0\x9f\x98\x80x",
	    "&ZeVnLIqe2D3eAA-x" },
	{ "\xc3\xbf\xef\xbf\xbf", "&AP,,,w-" },			/* U+FFFF */
	{ "\xf4\x8f\xbf\xbf", "&2,,f,w-" },			/* U+10FFFF */
	{ " !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~",
	    " !\"#$%'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~" },
};

static void
test_known_pairs(void **state)
{
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 1024);
	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		buf_reset(&b);
		assert_int_equal(utf8_to_mutf7(pairs[i].utf8,
		    strlen(pairs[i].utf8), &b), MUTF7_OK);
		assert_string_equal(buf_cstr(&b), pairs[i].mutf7);
		buf_reset(&b);
		assert_int_equal(mutf7_to_utf8(pairs[i].mutf7,
		    strlen(pairs[i].mutf7), &b), MUTF7_OK);
		assert_string_equal(buf_cstr(&b), pairs[i].utf8);
		assert_true(mutf7_valid(pairs[i].mutf7,
		    strlen(pairs[i].mutf7)));
		assert_true(utf8_valid(pairs[i].utf8, strlen(pairs[i].utf8)));
	}
	/* appends to what is already there */
	buf_reset(&b);
	buf_puts(&b, "x.");
	assert_int_equal(mutf7_to_utf8("&AOk-", 5, &b), MUTF7_OK);
	assert_string_equal(buf_cstr(&b), "x.\xc3\xa9");
	/* never reads past len */
	buf_reset(&b);
	assert_int_equal(mutf7_to_utf8("ab&AOk-", 2, &b), MUTF7_OK);
	assert_string_equal(buf_cstr(&b), "ab");
	buf_free(&b);
}

static void
test_invalid_mutf7(void **state)
{
	static const char *const bad[] = {
		"&",			/* shift at the end */
		"a&",
		"&AOk",			/* unterminated */
		"&AOk-&AOk",
		"&*-",			/* not modified base64 */
		"&AOk/-",		/* "/" is "," in modified base64 */
		"&AOk=-",		/* no padding */
		"&AGE-",		/* 'a' encoded */
		"&ACY-",		/* '&' encoded */
		"&ACA-",		/* ' ' encoded */
		"&AH4-",		/* '~' encoded */
		"&AOk-&AOk-",		/* null shift "-&" */
		"&AOk-&AOk-x",
		"&AOkA-",		/* a spare base64 character */
		"&AOkA6QA-",
		"&AOl-",		/* pad bits not zero */
		"&AOn-",
		"&A-",			/* less than one UTF-16 unit */
		"&AA-",
		"&AAA-",		/* U+0000 */
		"&2D0-",		/* lone high surrogate */
		"&2D3YPQ-",		/* high followed by high */
		"&3gA-",		/* lone low surrogate */
		"&AOneAA-",		/* BMP char followed by a low surrogate */
		"\x80",			/* raw 8-bit */
		"R\xc3\xa9pertoire",
		"a\tb",			/* raw control */
		"a\x7f",
		"a\x01",
		"&-&",
		"&--&",
		"&&-",
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 1024);
	buf_puts(&b, "keep");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (mutf7_to_utf8(bad[i], strlen(bad[i]), &b) != MUTF7_INVALID)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_string_equal(buf_cstr(&b), "keep");
		assert_false(mutf7_valid(bad[i], strlen(bad[i])));
	}
	/* a NUL byte inside the input */
	assert_int_equal(mutf7_to_utf8("a\0b", 3, &b), MUTF7_INVALID);
	assert_string_equal(buf_cstr(&b), "keep");
	buf_free(&b);
}

static void
test_invalid_utf8(void **state)
{
	static const struct {
		const char *s;
		size_t len;
	} bad[] = {
		{ "\xc0\x80", 2 },		/* overlong NUL */
		{ "\xc1\xbf", 2 },		/* overlong */
		{ "\xe0\x80\xaf", 3 },		/* overlong '/' */
		{ "\xe0\x9f\xbf", 3 },
		{ "\xf0\x8f\xbf\xbf", 4 },	/* overlong U+FFFF */
		{ "\xed\xa0\x80", 3 },		/* U+D800 */
		{ "\xed\xbf\xbf", 3 },		/* U+DFFF */
		{ "\xf4\x90\x80\x80", 4 },	/* U+110000 */
		{ "\xf5\x80\x80\x80", 4 },
		{ "\xff", 1 },
		{ "\x80", 1 },			/* lone continuation */
		{ "a\xc3", 2 },			/* truncated */
		{ "\xe6\x97", 2 },
		{ "\xf0\x9f\x98", 3 },
		{ "\xc3\x28", 2 },		/* bad continuation */
		{ "\xe6\x28\xa5", 3 },
		{ "a\0b", 3 },			/* NUL */
		{ "\xc3\xa9\0", 3 },
	};
	struct buf b;
	size_t i;

	(void)state;
	buf_init(&b, 1024);
	buf_puts(&b, "keep");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (utf8_to_mutf7(bad[i].s, bad[i].len, &b) != MUTF7_INVALID)
			fail_msg("accepted bad UTF-8 #%zu", i);
		assert_string_equal(buf_cstr(&b), "keep");
		assert_false(utf8_valid(bad[i].s, bad[i].len));
	}
	buf_free(&b);
}

static void
test_nospace(void **state)
{
	struct buf b;
	size_t max;
	const char *m = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
	const char *u = "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
	    "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";

	(void)state;
	/* every maximum below the needed size fails cleanly */
	for (max = 0; max < strlen(u); max++) {
		buf_init(&b, max);
		assert_int_equal(mutf7_to_utf8(m, strlen(m), &b),
		    MUTF7_NOSPACE);
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
	buf_init(&b, strlen(u));
	assert_int_equal(mutf7_to_utf8(m, strlen(m), &b), MUTF7_OK);
	buf_free(&b);
	for (max = 0; max < strlen(m); max++) {
		buf_init(&b, max);
		assert_int_equal(utf8_to_mutf7(u, strlen(u), &b),
		    MUTF7_NOSPACE);
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
	buf_init(&b, strlen(m));
	assert_int_equal(utf8_to_mutf7(u, strlen(u), &b), MUTF7_OK);
	buf_free(&b);
}

static size_t
put_utf8(char *s, unsigned long cp)
{
	if (cp < 0x80) {
		s[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		s[0] = (char)(0xc0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		s[0] = (char)(0xe0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	s[0] = (char)(0xf0 | (cp >> 18));
	s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	s[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Every scalar value alone, and runs of 1-3 mixed with ASCII. */
static void
test_round_trips(void **state)
{
	struct buf m, u;
	char s[64];
	unsigned long cp, cp2;
	size_t n, k;
	unsigned long dummy;

	(void)state;
	buf_init(&m, 256);
	buf_init(&u, 256);
	for (cp = 1; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = put_utf8(s, cp);
		assert_int_equal(utf8_decode_char(s, n, &dummy), n);
		assert_int_equal(dummy, cp);
		buf_reset(&m);
		buf_reset(&u);
		assert_int_equal(utf8_to_mutf7(s, n, &m), MUTF7_OK);
		assert_true(mutf7_valid(m.data, m.len));
		assert_int_equal(mutf7_to_utf8(m.data, m.len, &u), MUTF7_OK);
		assert_int_equal(u.len, n);
		assert_memory_equal(u.data, s, n);
		if (cp % 4099 != 0)
			continue;
		/* a mixed string: cp, ASCII, two more, '&' */
		cp2 = (cp * 7 + 0x101) % 0x10ffff + 1;
		if (cp2 >= 0xd800 && cp2 <= 0xdfff)
			cp2 = 0xe000;
		k = put_utf8(s, cp);
		s[k++] = 'a';
		k += put_utf8(s + k, cp2);
		k += put_utf8(s + k, cp);
		s[k++] = '&';
		buf_reset(&m);
		buf_reset(&u);
		assert_int_equal(utf8_to_mutf7(s, k, &m), MUTF7_OK);
		assert_true(mutf7_valid(m.data, m.len));
		assert_int_equal(mutf7_to_utf8(m.data, m.len, &u), MUTF7_OK);
		assert_int_equal(u.len, k);
		assert_memory_equal(u.data, s, k);
	}
	buf_free(&m);
	buf_free(&u);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_pairs),
		cmocka_unit_test(test_invalid_mutf7),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_nospace),
		cmocka_unit_test(test_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
