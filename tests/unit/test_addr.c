/*
 * test_addr.c - cmocka tests for common/addr.c, the address parser: SMTP
 * paths (addr_parse_path) and admin-typed addresses (addr_parse_plain).
 *
 * Covers: <> (null path) allowed only with ADDR_ALLOW_EMPTY; the bytes
 * consumed before ESMTP parameters; source routes dropped; quoted local
 * parts unquoted; routing tricks ("user@other"@ours, user@other@ours,
 * user%other@ours, user!other@ours) visible through addr_has_routing;
 * missing < or >; bad domains (empty label, leading or trailing hyphen,
 * 64-octet label, trailing dot); the domain lower-cased and the local part
 * kept as sent; 8-bit bytes refused without ADDR_UTF8 and accepted with
 * it; local parts over 64 octets; input not NUL-terminated; addr_format;
 * addr_domain_valid; addr_parse_plain's stricter rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/addr.h"

/* Parse a C string as a path; returns addr_parse_path's result. */
static int
path(const char *s, int flags, struct mailaddr *a, size_t *consumed)
{
	const char *why = NULL;
	size_t c = 0;
	int r = addr_parse_path(s, strlen(s), flags, a, &c, &why);

	if (r == 0 && consumed != NULL)
		*consumed = c;
	if (r < 0)
		assert_non_null(why);
	return r;
}

static void
path_ok(const char *s, int flags, const char *local, const char *domain)
{
	struct mailaddr a;

	if (path(s, flags, &a, NULL) != 0)
		fail_msg("addr_parse_path(%s) failed, expected %s@%s", s, local,
		    domain);
	assert_string_equal(a.local, local);
	assert_string_equal(a.domain, domain);
}

static void
path_bad(const char *s, int flags)
{
	struct mailaddr a;

	if (path(s, flags, &a, NULL) == 0)
		fail_msg("addr_parse_path(%s) accepted %s@%s, expected an error",
		    s, a.local, a.domain);
}

static void
test_null_path(void **state)
{
	struct mailaddr a;
	size_t c;

	assert_int_equal(path("<>", ADDR_ALLOW_EMPTY, &a, &c), 0);
	assert_int_equal(c, 2);
	assert_string_equal(a.local, "");
	assert_string_equal(a.domain, "");
	path_bad("<>", 0);
	(void)state;
}

static void
test_simple_and_consumed(void **state)
{
	struct mailaddr a;
	size_t c;

	assert_int_equal(path("<bob@example.org> SIZE=1000 BODY=8BITMIME", 0,
	    &a, &c), 0);
	assert_int_equal(c, strlen("<bob@example.org>"));
	assert_string_equal(a.local, "bob");
	assert_string_equal(a.domain, "example.org");
	assert_int_equal(addr_has_routing(&a), 0);
	(void)state;
}

static void
test_source_route(void **state)
{
	struct mailaddr a;

	path_ok("<@a,@b:u@d>", 0, "u", "d");
	path_ok("<@relay.example:user@example.org>", 0, "user", "example.org");
	assert_int_equal(path("<@a,@b:u@d>", 0, &a, NULL), 0);
	assert_int_equal(addr_has_routing(&a), 0);
	path_bad("<@a.org>", 0);		/* a route and no address */
	(void)state;
}

static void
test_quoted_local(void **state)
{
	path_ok("<\"a b\"@x>", 0, "a b", "x");
	path_ok("<\"a\\\"b\"@x>", 0, "a\"b", "x");	/* quoted pair */
	path_bad("<\"a b@x>", 0);			/* unterminated */
	path_bad("<\"a\tb\"@x>", 0);			/* control byte */
	(void)state;
}

static void
test_routing_tricks(void **state)
{
	struct mailaddr a;

	assert_int_equal(path("<\"user@other\"@ours>", 0, &a, NULL), 0);
	assert_string_equal(a.local, "user@other");
	assert_string_equal(a.domain, "ours");
	assert_true(addr_has_routing(&a));

	assert_int_equal(path("<user@other@ours>", 0, &a, NULL), 0);
	assert_string_equal(a.local, "user@other");
	assert_string_equal(a.domain, "ours");
	assert_true(addr_has_routing(&a));

	assert_int_equal(path("<user%other@ours>", 0, &a, NULL), 0);
	assert_string_equal(a.local, "user%other");
	assert_true(addr_has_routing(&a));

	assert_int_equal(path("<user!other@ours>", 0, &a, NULL), 0);
	assert_true(addr_has_routing(&a));
	(void)state;
}

static void
test_missing_brackets(void **state)
{
	path_bad("bob@example.org", 0);
	path_bad("<bob@example.org", 0);
	path_bad("bob@example.org>", 0);
	path_bad("", 0);
	path_bad("<", 0);
	path_bad("<bob>", 0);		/* no domain */
	path_bad("<@example.org>", 0);
	(void)state;
}

static void
test_bad_domains(void **state)
{
	char label64[64 + 1], buf[128], dom[80];

	path_bad("<u@a..b>", 0);
	path_bad("<u@-a.com>", 0);
	path_bad("<u@a-.com>", 0);
	path_bad("<u@.a.com>", 0);
	path_bad("<u@a.com.>", 0);
	path_bad("<u@a_b.com>", 0);
	path_bad("<u@>", 0);
	memset(label64, 'a', 64);
	label64[64] = '\0';
	snprintf(buf, sizeof(buf), "<u@%s.com>", label64);
	path_bad(buf, 0);
	snprintf(buf, sizeof(buf), "<u@%.63s.com>", label64);	/* 63: fine */
	snprintf(dom, sizeof(dom), "%.63s.com", label64);
	path_ok(buf, 0, "u", dom);
	(void)state;
}

static void
test_domain_lower_local_kept(void **state)
{
	path_ok("<Bob.Smith@Example.ORG>", 0, "Bob.Smith", "example.org");
	(void)state;
}

static void
test_8bit(void **state)
{
	path_bad("<j\xc3\xb6rg@example.org>", 0);
	path_bad("<jorg@b\xc3\xbc" "cher.example>", 0);
	path_ok("<j\xc3\xb6rg@example.org>", ADDR_UTF8, "j\xc3\xb6rg",
	    "example.org");
	path_ok("<jorg@b\xc3\xbc" "cher.example>", ADDR_UTF8, "jorg",
	    "b\xc3\xbc" "cher.example");
	assert_int_equal(addr_is_8bit("j\xc3\xb6rg"), 1);
	assert_int_equal(addr_is_8bit("jorg"), 0);
	(void)state;
}

static void
test_local_length(void **state)
{
	char local[80], buf[128];

	memset(local, 'x', 64);
	local[64] = '\0';
	snprintf(buf, sizeof(buf), "<%s@example.org>", local);
	path_ok(buf, 0, local, "example.org");
	memset(local, 'x', 65);
	local[65] = '\0';
	snprintf(buf, sizeof(buf), "<%s@example.org>", local);
	path_bad(buf, 0);
	snprintf(buf, sizeof(buf), "<\"%s\"@example.org>", local);
	path_bad(buf, 0);
	(void)state;
}

static void
test_not_nul_terminated(void **state)
{
	/* The parser must stop at len, not at a NUL. */
	const char text[] = "<bob@example.org>XXXX";
	struct mailaddr a;
	const char *why;
	size_t c;

	assert_int_equal(addr_parse_path(text, 17, 0, &a, &c, &why), 0);
	assert_int_equal(c, 17);
	assert_int_equal(addr_parse_path(text, 16, 0, &a, &c, &why), -1);
	(void)state;
}

static void
test_local_dots(void **state)
{
	path_ok("<a.b.c@x>", 0, "a.b.c", "x");
	path_bad("<.a@x>", 0);
	path_bad("<a.@x>", 0);
	path_bad("<a..b@x>", 0);
	(void)state;
}

static void
test_domain_valid(void **state)
{
	assert_int_equal(addr_domain_valid("example.org", 11, 0), 1);
	assert_int_equal(addr_domain_valid("a", 1, 0), 1);
	assert_int_equal(addr_domain_valid("[192.0.2.1]", 11, 0), 1);
	assert_int_equal(addr_domain_valid("", 0, 0), 0);
	assert_int_equal(addr_domain_valid("a..b", 4, 0), 0);
	assert_int_equal(addr_domain_valid("-a.com", 6, 0), 0);
	/* only len bytes count */
	assert_int_equal(addr_domain_valid("ab..", 2, 0), 1);
	(void)state;
}

static void
test_format(void **state)
{
	struct mailaddr a = { "bob", "example.org" }, n = { "", "" };
	char out[64];

	assert_int_equal(addr_format(&a, out, sizeof(out)), 0);
	assert_string_equal(out, "bob@example.org");
	assert_int_equal(addr_format(&a, out, 8), -1);
	assert_int_equal(addr_format(&n, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	(void)state;
}

static void
test_parse_plain(void **state)
{
	struct mailaddr a;
	const char *why;

	assert_int_equal(addr_parse_plain("Bob@Example.ORG", &a, &why), 0);
	assert_string_equal(a.local, "Bob");
	assert_string_equal(a.domain, "example.org");
	assert_int_equal(addr_parse_plain("a.b+tag@x.org", &a, &why), 0);
	assert_string_equal(a.local, "a.b+tag");

	assert_int_equal(addr_parse_plain("bob", &a, &why), -1);
	assert_int_equal(addr_parse_plain("@x.org", &a, &why), -1);
	assert_int_equal(addr_parse_plain("bob@", &a, &why), -1);
	assert_int_equal(addr_parse_plain("<bob@x.org>", &a, &why), -1);
	assert_int_equal(addr_parse_plain("\"a b\"@x.org", &a, &why), -1);
	assert_int_equal(addr_parse_plain("a@b@x.org", &a, &why), -1);
	assert_int_equal(addr_parse_plain("a b@x.org", &a, &why), -1);
	assert_int_equal(addr_parse_plain(".a@x.org", &a, &why), -1);
	assert_int_equal(addr_parse_plain("a..b@x.org", &a, &why), -1);
	assert_int_equal(addr_parse_plain("bob@a..b", &a, &why), -1);
	assert_int_equal(addr_parse_plain("bob@[192.0.2.1]", &a, &why), -1);
	assert_int_equal(addr_parse_plain("j\xc3\xb6rg@x.org", &a, &why), -1);
	(void)state;
}

/* Inputs that once slipped through the parser (review findings). */
static void
test_review_regressions(void **state)
{
	struct mailaddr a;

	(void)state;
	assert_int_equal(path("<\"\"@x.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<user@ot her@ours.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<user@ot\x01her@ours.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<user@\xc3\xa9@ours.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<a@@b.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<a@[]]>", 0, &a, NULL), -1);
	assert_int_equal(path("<a@[\\]>", 0, &a, NULL), -1);
	assert_int_equal(path("<a@[]>", 0, &a, NULL), -1);
	assert_int_equal(path("<@:u@d.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<@a..b:u@d.org>", 0, &a, NULL), -1);
	assert_int_equal(path("<a@[192.0.2.1]>", 0, &a, NULL), 0);
	assert_int_equal(path("<a@[IPv6:2001:db8::1]>", 0, &a, NULL), 0);
	assert_int_equal(path("<a@[2001:db8::1]>", 0, &a, NULL), -1);
	assert_int_equal(path("<@a.org,@b.org:u@d.org>", 0, &a, NULL), 0);
	assert_string_equal(a.domain, "d.org");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_null_path),
		cmocka_unit_test(test_simple_and_consumed),
		cmocka_unit_test(test_source_route),
		cmocka_unit_test(test_quoted_local),
		cmocka_unit_test(test_routing_tricks),
		cmocka_unit_test(test_missing_brackets),
		cmocka_unit_test(test_bad_domains),
		cmocka_unit_test(test_domain_lower_local_kept),
		cmocka_unit_test(test_8bit),
		cmocka_unit_test(test_local_length),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_local_dots),
		cmocka_unit_test(test_domain_valid),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_parse_plain),
		cmocka_unit_test(test_review_regressions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
