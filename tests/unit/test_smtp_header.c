/*
 * test_smtp_header.c - the header work of a submission: the Bcc filter
 * and the strict From: reader that decides which address the recipient's
 * client will show as the author.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtpd/smtp_header.h"

static void
test_filter_drops_bcc(void **state)
{
	const char *in = "From: a@b.c\nBcc: x@y.z,\n  w@y.z\nTo: t@u.v\n"
	    "resent-bcc: q@r.s\nSubject: Bcc: in a subject\n\nBcc: body\n";
	const char *want = "From: a@b.c\nTo: t@u.v\n"
	    "Subject: Bcc: in a subject\n\n";
	struct smtp_header_info info;
	struct buf out;
	size_t hlen = strstr(in, "\n\n") - in + 2;

	(void)state;
	buf_init(&out, 4096);
	assert_int_equal(smtp_header_filter(in, hlen, &out, &info), 0);
	assert_string_equal(buf_cstr(&out), want);
	assert_int_equal(info.removed, 2);
	assert_int_equal(info.nfrom, 1);
	assert_int_equal(info.from_len, 5);
	assert_memory_equal(info.from, "a@b.c", 5);
	assert_false(info.has_message_id);
	assert_false(info.has_date);
	buf_free(&out);
}

static void
test_filter_flags_and_no_blank_line(void **state)
{
	const char *in = "message-id: <1@x>\nDATE: now\nFrom: a@b.c\n"
	    "From: d@e.f\nBcc: z@z.z";
	struct smtp_header_info info;
	struct buf out;

	(void)state;
	buf_init(&out, 4096);
	assert_int_equal(smtp_header_filter(in, strlen(in), &out, &info), 0);
	assert_true(info.has_message_id);
	assert_true(info.has_date);
	assert_int_equal(info.nfrom, 2);
	assert_memory_equal(info.from, "a@b.c", 5);	/* the first */
	assert_string_equal(buf_cstr(&out),
	    "message-id: <1@x>\nDATE: now\nFrom: a@b.c\nFrom: d@e.f\n");
	buf_free(&out);

	/* a full output buffer is an error, not a silent cut */
	buf_init(&out, 10);
	assert_int_equal(smtp_header_filter(in, strlen(in), &out, &info), -1);
	buf_free(&out);
}

static enum smtp_from_status
from(const char *v, char *addr, size_t addrsz)
{
	struct mailaddr a;
	enum smtp_from_status st = smtp_header_from_parse(v, strlen(v), &a);

	addr[0] = '\0';
	if (st == SMTP_FROM_OK)
		addr_format(&a, addr, addrsz);
	return st;
}

static void
test_from_accepted_forms(void **state)
{
	static const struct {
		const char *in, *want;
	} ok[] = {
		{ "alice@example.test", "alice@example.test" },
		{ "Alice <alice@Example.TEST>", "alice@example.test" },
		{ "\"Smith, Alice\" <alice@example.test>", "alice@example.test" },
		{ "\"bob@example.test\" <alice@example.test>",
		    "alice@example.test" },
		{ "alice@example.test (Alice (the) Author)",
		    "alice@example.test" },
		{ "(c) Alice (x) < (y) alice (z) @ (w) example.test (v) > (u)",
		    "alice@example.test" },
		{ "\"a b\"@example.test", "a b@example.test" },
		{ "=?utf-8?q?Al=C3=AFce?= <alice+tag@example.test>",
		    "alice+tag@example.test" },
		{ "Mr. A. Smith <a.smith@example.test>",
		    "a.smith@example.test" },
		{ "Alice\n <alice@example.test>", "alice@example.test" },
		{ "alice@example.test ,", "alice@example.test" },
		{ "José <josé@example.test>", "josé@example.test" },
	};
	char addr[ADDR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(from(ok[i].in, addr, sizeof(addr)),
		    SMTP_FROM_OK);
		assert_string_equal(addr, ok[i].want);
	}
}

static void
test_from_refused_forms(void **state)
{
	static const struct {
		const char *in;
		enum smtp_from_status st;
	} bad[] = {
		{ "", SMTP_FROM_NONE },
		{ "  (only a comment) ", SMTP_FROM_NONE },
		{ "a@example.test, b@example.test", SMTP_FROM_MANY },
		{ "A <a@example.test>, B <b@example.test>", SMTP_FROM_MANY },
		{ "Friends: a@example.test;", SMTP_FROM_GROUP },
		{ "Friends:;", SMTP_FROM_GROUP },
		{ "alice@example.test <bob@example.test>", SMTP_FROM_SYNTAX },
		{ "Alice <alice@example.test> bob@example.test",
		    SMTP_FROM_SYNTAX },
		{ "<@relay.test:alice@example.test>", SMTP_FROM_SYNTAX },
		{ "<>", SMTP_FROM_SYNTAX },
		{ "alice@[127.0.0.1]", SMTP_FROM_SYNTAX },
		{ "Alice <alice@example.test", SMTP_FROM_SYNTAX },
		{ "Alice Smith", SMTP_FROM_SYNTAX },
		{ "alice", SMTP_FROM_SYNTAX },
		{ "\"unterminated <alice@example.test>", SMTP_FROM_SYNTAX },
		{ "alice@example..test", SMTP_FROM_SYNTAX },
		{ "alice@-example.test", SMTP_FROM_SYNTAX },
		{ "\"a\x01b\"@example.test", SMTP_FROM_SYNTAX },
		{ "a@example.test; b@example.test", SMTP_FROM_SYNTAX },
	};
	char addr[ADDR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (from(bad[i].in, addr, sizeof(addr)) != bad[i].st)
			fail_msg("From: %s: got %d, want %d", bad[i].in,
			    (int)from(bad[i].in, addr, sizeof(addr)),
			    (int)bad[i].st);
		assert_string_equal(addr, "");
	}
}

static void
test_from_limits(void **state)
{
	char v[400], addr[ADDR_MAX];

	(void)state;
	/* a 65-octet local part does not fit an address */
	memset(v, 'a', 65);
	memcpy(v + 65, "@example.test", sizeof("@example.test"));
	assert_int_equal(from(v, addr, sizeof(addr)), SMTP_FROM_SYNTAX);
	memset(v, 'a', 64);
	memcpy(v + 64, "@example.test", sizeof("@example.test"));
	assert_int_equal(from(v, addr, sizeof(addr)), SMTP_FROM_OK);
	/* no NUL termination is needed: only len bytes are read */
	assert_int_equal(smtp_header_from_parse("a@b.cX", 5,
	    &(struct mailaddr){ { 0 }, { 0 } }), SMTP_FROM_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_filter_drops_bcc),
		cmocka_unit_test(test_filter_flags_and_no_blank_line),
		cmocka_unit_test(test_from_accepted_forms),
		cmocka_unit_test(test_from_refused_forms),
		cmocka_unit_test(test_from_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
