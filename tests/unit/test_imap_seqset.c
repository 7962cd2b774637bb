/*
 * test_imap_seqset.c - sequence sets: parsing as written, resolving "*"
 * for message numbers (strict) and UIDs (clipped), normalising, adding,
 * membership, iteration up to 4294967295, and formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "imapd/imap_seqset.h"

static void
fmt_is(const struct imap_seqset *s, const char *want)
{
	struct buf b;

	buf_init(&b, 4096);
	assert_int_equal(imap_seqset_format(s, &b), 0);
	assert_string_equal(buf_cstr(&b), want);
	buf_free(&b);
}

static void
parse_ok(struct imap_seqset *s, const char *text)
{
	const char *why = NULL;

	if (imap_seqset_parse(s, text, strlen(text), 0, &why) != 0)
		fail_msg("refused \"%s\": %s", text, why);
}

static void
test_parse(void **state)
{
	struct imap_seqset s;
	const char *why;
	static const char *const bad[] = {
		"", ",", "1,", ",1", "1,,2", "0", "0:5", "5:0", "01", "1:01",
		"4294967296", "99999999999", "1:", ":1", "1::2", "1:2:3", "a",
		"1 ", " 1", "1, 2", "**", "*:", "-1", "+1", "$", "1:$", "1.5",
	};
	size_t i;

	(void)state;
	imap_seqset_init(&s, 100);
	parse_ok(&s, "1:4,7,9:*");
	assert_int_equal(s.n, 3);
	assert_true(s.has_star);
	assert_int_equal(s.r[2].lo, 9);
	assert_int_equal(s.r[2].hi, IMAP_SEQ_STAR);
	fmt_is(&s, "1:4,7,9:*");

	parse_ok(&s, "*");
	assert_int_equal(s.n, 1);
	fmt_is(&s, "*");
	parse_ok(&s, "4294967295");
	assert_int_equal(s.r[0].lo, 4294967295u);
	assert_false(s.has_star);
	parse_ok(&s, "9,1:3,2,*:4");		/* kept as written */
	fmt_is(&s, "9,1:3,2,*:4");

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (imap_seqset_parse(&s, bad[i], strlen(bad[i]), 0, &why) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
		assert_string_equal(why, "Invalid sequence set");
		assert_int_equal(s.n, 0);
	}
	/* "$" only when asked for */
	assert_int_equal(imap_seqset_parse(&s, "$", 1, 1, &why),
	    IMAP_SEQSET_SAVED);
	assert_int_equal(s.n, 0);
	assert_int_equal(imap_seqset_parse(&s, "$,1", 3, 1, &why), -1);
	/* never reads past len */
	assert_int_equal(imap_seqset_parse(&s, "12,x", 2, 0, &why), 0);
	assert_int_equal(s.r[0].lo, 12);
	imap_seqset_free(&s);
}

static void
test_max_ranges(void **state)
{
	struct imap_seqset s;
	const char *why;

	(void)state;
	imap_seqset_init(&s, 3);
	parse_ok(&s, "1,3,5");
	assert_int_equal(imap_seqset_parse(&s, "1,3,5,7", 7, 0, &why), -1);
	assert_string_equal(why, "Too many ranges in sequence set");
	assert_int_equal(s.n, 0);
	imap_seqset_free(&s);
}

static void
test_resolve_seqnums(void **state)
{
	struct imap_seqset s;
	const char *why;

	(void)state;
	imap_seqset_init(&s, 100);
	parse_ok(&s, "2,4:7,9,12:*");		/* RFC 9051 example */
	assert_int_equal(imap_seqset_resolve(&s, 15, 1, &why), 0);
	fmt_is(&s, "2,4:7,9,12:15");
	assert_int_equal(imap_seqset_count(&s), 10);

	parse_ok(&s, "*:4,5:7");		/* RFC 9051 example */
	assert_int_equal(imap_seqset_resolve(&s, 10, 1, &why), 0);
	fmt_is(&s, "4:10");
	assert_false(s.has_star);

	parse_ok(&s, "9,1:3,2,5:4,3:3");
	assert_int_equal(imap_seqset_resolve(&s, 10, 1, &why), 0);
	fmt_is(&s, "1:5,9");

	parse_ok(&s, "1:*");
	assert_int_equal(imap_seqset_resolve(&s, 3, 1, &why), 0);
	fmt_is(&s, "1:3");

	/* beyond the message count: BAD */
	parse_ok(&s, "1,11");
	assert_int_equal(imap_seqset_resolve(&s, 10, 1, &why), -1);
	assert_string_equal(why, "Invalid message sequence number");
	assert_int_equal(s.n, 0);
	parse_ok(&s, "5:*");
	assert_int_equal(imap_seqset_resolve(&s, 3, 1, &why), -1);
	/* "*" in an empty mailbox */
	parse_ok(&s, "*");
	assert_int_equal(imap_seqset_resolve(&s, 0, 1, &why), -1);
	parse_ok(&s, "1:*");
	assert_int_equal(imap_seqset_resolve(&s, 0, 1, &why), -1);
	imap_seqset_free(&s);
}

static void
test_resolve_uids(void **state)
{
	struct imap_seqset s;
	const char *why;

	(void)state;
	imap_seqset_init(&s, 100);
	/* RFC 9051: "559:*" always includes the last message */
	parse_ok(&s, "559:*");
	assert_int_equal(imap_seqset_resolve(&s, 500, 0, &why), 0);
	fmt_is(&s, "500");
	parse_ok(&s, "1:*");
	assert_int_equal(imap_seqset_resolve(&s, 0, 0, &why), 0);
	assert_int_equal(s.n, 0);
	fmt_is(&s, "");
	parse_ok(&s, "600:700,3,1000");
	assert_int_equal(imap_seqset_resolve(&s, 500, 0, &why), 0);
	fmt_is(&s, "3");
	parse_ok(&s, "4294967295:*,1:4294967295");
	assert_int_equal(imap_seqset_resolve(&s, 4294967295u, 0, &why), 0);
	fmt_is(&s, "1:4294967295");
	assert_int_equal(imap_seqset_count(&s), 4294967295ull);
	imap_seqset_free(&s);
}

static void
test_add(void **state)
{
	struct imap_seqset s;

	(void)state;
	imap_seqset_init(&s, 4);
	assert_int_equal(imap_seqset_add(&s, 10, 12), 0);
	assert_int_equal(imap_seqset_add(&s, 1, 1), 0);
	assert_int_equal(imap_seqset_add(&s, 20, 20), 0);
	fmt_is(&s, "1,10:12,20");
	assert_int_equal(imap_seqset_add(&s, 13, 13), 0);	/* adjacent */
	fmt_is(&s, "1,10:13,20");
	assert_int_equal(imap_seqset_add(&s, 2, 9), 0);		/* bridges */
	fmt_is(&s, "1:13,20");
	assert_int_equal(imap_seqset_add(&s, 30, 30), 0);
	assert_int_equal(imap_seqset_add(&s, 40, 40), 0);
	fmt_is(&s, "1:13,20,30,40");
	assert_int_equal(imap_seqset_add(&s, 50, 50), -1);	/* full */
	fmt_is(&s, "1:13,20,30,40");
	assert_int_equal(imap_seqset_add(&s, 35, 35), -1);
	assert_int_equal(imap_seqset_add(&s, 5, 25), 0);	/* swallows */
	fmt_is(&s, "1:25,30,40");
	assert_int_equal(imap_seqset_add(&s, 29, 41), 0);
	fmt_is(&s, "1:25,29:41");
	assert_int_equal(imap_seqset_add(&s, 0, 1), -1);
	assert_int_equal(imap_seqset_add(&s, 5, 4), -1);
	assert_int_equal(imap_seqset_add(&s, 4294967295u, 4294967295u), 0);
	assert_int_equal(imap_seqset_add(&s, 4294967294u, 4294967295u), 0);
	fmt_is(&s, "1:25,29:41,4294967294:4294967295");
	assert_int_equal(imap_seqset_min(&s), 1);
	assert_int_equal(imap_seqset_max(&s), 4294967295u);
	imap_seqset_clear(&s);
	assert_int_equal(imap_seqset_min(&s), 0);
	assert_int_equal(imap_seqset_max(&s), 0);
	imap_seqset_free(&s);
}

/* add() in random order must equal a bitmap. */
static void
test_add_random(void **state)
{
	struct imap_seqset s;
	unsigned char bits[301];
	unsigned seed = 12345;
	uint32_t lo, hi, v;
	int round, i;

	(void)state;
	for (round = 0; round < 200; round++) {
		imap_seqset_init(&s, 1000);
		memset(bits, 0, sizeof(bits));
		for (i = 0; i < 40; i++) {
			seed = seed * 1103515245 + 12345;
			lo = 1 + (seed >> 8) % 300;
			seed = seed * 1103515245 + 12345;
			hi = lo + (seed >> 8) % 6;
			if (hi > 300)
				hi = 300;
			assert_int_equal(imap_seqset_add(&s, lo, hi), 0);
			for (v = lo; v <= hi; v++)
				bits[v] = 1;
		}
		for (v = 1; v <= 300; v++)
			assert_int_equal(imap_seqset_contains(&s, v), bits[v]);
		assert_false(imap_seqset_contains(&s, 0));
		assert_false(imap_seqset_contains(&s, 301));
		for (i = 1; i < (int)s.n; i++)	/* normalised */
			assert_true((uint64_t)s.r[i - 1].hi + 1 < s.r[i].lo);
		imap_seqset_free(&s);
	}
}

static void
test_iterate(void **state)
{
	struct imap_seqset s;
	struct imap_seqset_iter it;
	const char *why;
	uint32_t v, got[16];
	size_t n = 0;

	(void)state;
	imap_seqset_init(&s, 10);
	parse_ok(&s, "7,1:3,5");
	assert_int_equal(imap_seqset_resolve(&s, 100, 0, &why), 0);
	imap_seqset_iter_init(&it, &s);
	while (imap_seqset_iter_next(&it, &v))
		got[n++] = v;
	assert_int_equal(n, 5);
	assert_int_equal(got[0], 1);
	assert_int_equal(got[2], 3);
	assert_int_equal(got[3], 5);
	assert_int_equal(got[4], 7);
	assert_false(imap_seqset_iter_next(&it, &v));

	/* the top of the range does not wrap */
	imap_seqset_clear(&s);
	assert_int_equal(imap_seqset_add(&s, 4294967293u, 4294967295u), 0);
	n = 0;
	imap_seqset_iter_init(&it, &s);
	while (imap_seqset_iter_next(&it, &v) && n < 10)
		got[n++] = v;
	assert_int_equal(n, 3);
	assert_int_equal(got[2], 4294967295u);

	/* empty */
	imap_seqset_clear(&s);
	imap_seqset_iter_init(&it, &s);
	assert_false(imap_seqset_iter_next(&it, &v));
	assert_int_equal(imap_seqset_count(&s), 0);
	imap_seqset_free(&s);
}

static void
test_format_full(void **state)
{
	struct imap_seqset s;
	struct buf b;

	(void)state;
	imap_seqset_init(&s, 10);
	assert_int_equal(imap_seqset_add(&s, 1, 3), 0);
	assert_int_equal(imap_seqset_add(&s, 5, 5), 0);
	buf_init(&b, 4);
	buf_puts(&b, "x");
	assert_int_equal(imap_seqset_format(&s, &b), -1);	/* "x1:3,5" */
	assert_string_equal(buf_cstr(&b), "x");
	buf_free(&b);
	buf_init(&b, 6);
	assert_int_equal(imap_seqset_format(&s, &b), 0);
	assert_string_equal(buf_cstr(&b), "1:3,5");
	buf_free(&b);
	imap_seqset_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_max_ranges),
		cmocka_unit_test(test_resolve_seqnums),
		cmocka_unit_test(test_resolve_uids),
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_add_random),
		cmocka_unit_test(test_iterate),
		cmocka_unit_test(test_format_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
