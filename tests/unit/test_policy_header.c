/*
 * test_policy_header.c - common/policy_header.c: the
 * Authentication-Results header we write (results, properties,
 * folding, nothing from outside able to inject a result or end the
 * header) and the filter that drops forged ones claiming our
 * authserv-id, whatever their spacing, case, comments or folding, and
 * counts From fields.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common/policy.h"

#define ID "mail.example.org"

static struct spf_outcome
spf(enum spf_result r, const char *domain)
{
	struct spf_outcome s;

	memset(&s, 0, sizeof(s));
	s.result = r;
	snprintf_checked(s.domain, sizeof(s.domain), "%s", domain);
	return s;
}

static void
add_sig(struct dkim_outcome *d, enum dkim_result r, const char *dom,
    const char *sel, const char *why)
{
	struct dkim_sig_outcome *s = &d->sig[d->nsigs++];

	s->result = r;
	snprintf_checked(s->domain, sizeof(s->domain), "%s", dom);
	snprintf_checked(s->selector, sizeof(s->selector), "%s", sel);
	snprintf_checked(s->reason, sizeof(s->reason), "%s", why);
}

static struct dmarc_outcome
dmarc(enum dmarc_result r, const char *policy, enum dmarc_disposition d,
    const char *from)
{
	struct dmarc_outcome o;

	memset(&o, 0, sizeof(o));
	o.result = r;
	o.disposition = d;
	snprintf_checked(o.policy, sizeof(o.policy), "%s", policy);
	snprintf_checked(o.from_domain, sizeof(o.from_domain), "%s", from);
	return o;
}

/* The header unfolded (line ends and the tab after them removed). */
static void
unfold(const struct buf *b, char *out, size_t outsz)
{
	size_t i, n = 0;

	for (i = 0; i < b->len && n + 1 < outsz; i++) {
		if (b->data[i] == '\n') {
			if (i + 1 < b->len && b->data[i + 1] == '\t')
				i++;
			out[n++] = ' ';
			continue;
		}
		out[n++] = b->data[i];
	}
	out[n] = '\0';
}

/* Well formed: LF ends, every line but the first starts with a tab. */
static void
assert_folded(const struct buf *b, size_t maxline)
{
	size_t i, line = 0;

	assert_true(b->len > 0);
	assert_int_equal(b->data[b->len - 1], '\n');
	assert_null(memchr(b->data, '\r', b->len));
	assert_null(memchr(b->data, '\0', b->len));
	for (i = 0; i < b->len; i++) {
		if (b->data[i] == '\n') {
			assert_true(line <= maxline);
			line = 0;
			if (i + 1 < b->len)
				assert_int_equal(b->data[i + 1], '\t');
		} else
			line++;
	}
}

/* number of resinfo: the ';' outside comments */
static int
count_results(const char *s)
{
	int n = 0, depth = 0;

	for (; *s; s++) {
		if (*s == '(')
			depth++;
		else if (*s == ')')
			depth--;
		else if (*s == ';' && depth == 0)
			n++;
	}
	return n;
}

static void
test_all_pass(void **state)
{
	struct spf_outcome s = spf(SPF_RES_PASS, "example.com");
	struct dkim_outcome d = { .nsigs = 0 };
	struct dmarc_outcome m = dmarc(DMARC_RES_PASS, "reject",
	    DMARC_DISP_NONE, "example.com");
	char flat[2048];
	struct buf b;

	add_sig(&d, DKIM_RES_PASS, "example.com", "s2024", "");
	buf_init(&b, 65536);
	assert_int_equal(policy_auth_results(ID, &s, "alice@example.com", &d,
	    &m, &b), 0);
	assert_folded(&b, 78);
	assert_string_equal(b.data, "Authentication-Results: " ID ";\n"
	    "\tspf=pass smtp.mailfrom=alice@example.com;\n"
	    "\tdkim=pass header.d=example.com header.s=s2024;\n"
	    "\tdmarc=pass (p=reject dis=none) header.from=example.com\n");
	unfold(&b, flat, sizeof(flat));
	assert_int_equal(count_results(flat), 3);
	buf_free(&b);
}

static void
test_results_and_properties(void **state)
{
	struct spf_outcome s = spf(SPF_RES_SOFTFAIL, "example.com");
	struct dkim_outcome d = { .nsigs = 0 };
	struct dmarc_outcome m = dmarc(DMARC_RES_FAIL, "quarantine",
	    DMARC_DISP_QUARANTINE, "example.com");
	struct buf b;

	buf_init(&b, 65536);
	/* no signature: dkim=none; an address we cannot print: the domain */
	assert_int_equal(policy_auth_results(ID, &s, "\"odd one\"@example.com",
	    &d, &m, &b), 0);
	assert_non_null(strstr(b.data,
	    "spf=softfail smtp.mailfrom=example.com;"));
	assert_non_null(strstr(b.data, "\tdkim=none;\n"));
	assert_non_null(strstr(b.data, "dmarc=fail (p=quarantine "
	    "dis=quarantine) header.from=example.com"));
	/* two signatures, one result each, the reason in a comment */
	buf_reset(&b);
	add_sig(&d, DKIM_RES_FAIL, "a.example", "s1", "body hash mismatch");
	add_sig(&d, DKIM_RES_PERMERROR, "b.example", "s2", "no key");
	assert_int_equal(policy_auth_results(ID, NULL, NULL, &d, NULL, &b), 0);
	assert_string_equal(b.data, "Authentication-Results: " ID ";\n"
	    "\tdkim=fail (body hash mismatch) header.d=a.example header.s=s1;\n"
	    "\tdkim=permerror (no key) header.d=b.example header.s=s2\n");
	/* HELO identity */
	buf_reset(&b);
	s = spf(SPF_RES_PASS, "mx.example.com");
	s.helo_identity = 1;
	assert_int_equal(policy_auth_results(ID, &s, "", NULL, NULL, &b), 0);
	assert_string_equal(b.data, "Authentication-Results: " ID ";\n"
	    "\tspf=pass smtp.helo=mx.example.com\n");
	/* DMARC without a record: no policy comment */
	buf_reset(&b);
	m = dmarc(DMARC_RES_NONE, "", DMARC_DISP_NONE, "example.com");
	assert_int_equal(policy_auth_results(ID, NULL, NULL, NULL, &m, &b), 0);
	assert_string_equal(b.data, "Authentication-Results: " ID ";\n"
	    "\tdmarc=none header.from=example.com\n");
	/* nothing checked */
	buf_reset(&b);
	assert_int_equal(policy_auth_results(ID, NULL, NULL, NULL, NULL, &b),
	    0);
	assert_string_equal(b.data, "Authentication-Results: " ID "; none\n");
	buf_free(&b);
}

/* Long values wrap between tokens, never inside one. */
static void
test_folding(void **state)
{
	struct dkim_outcome d = { .nsigs = 0 };
	char dom[80], flat[2048];
	struct buf b;

	memset(dom, 'x', 50);
	memcpy(dom + 50, ".example.com", 13);
	add_sig(&d, DKIM_RES_FAIL, dom, "selector2024-long-name",
	    "signature mismatch");
	buf_init(&b, 65536);
	assert_int_equal(policy_auth_results(ID, NULL, NULL, &d, NULL, &b), 0);
	assert_folded(&b, 78);
	unfold(&b, flat, sizeof(flat));
	assert_non_null(strstr(flat, "header.d=xxxxxxxxxx"));
	assert_non_null(strstr(flat, " header.s=selector2024-long-name"));
	/* a token longer than a line still goes whole on its own line */
	buf_reset(&b);
	memset(&d, 0, sizeof(d));
	{
		char big[200];

		memset(big, 'y', 150);
		memcpy(big + 150, ".test", 6);
		add_sig(&d, DKIM_RES_PASS, big, "s", "");
	}
	assert_int_equal(policy_auth_results(ID, NULL, NULL, &d, NULL, &b), 0);
	assert_folded(&b, 200);
	buf_free(&b);
}

/*
 * d=, s=, domains and addresses come from the message: a value that
 * could add a result, end the header or open a comment is left out.
 */
static void
test_injection(void **state)
{
	static const char *evil[] = {
		"evil.test; dkim=pass header.d=bank.test",
		"evil.test\nX-Injected: yes",
		"evil.test\r\nX-Injected: yes",
		"evil.test (comment",
		"evil.test)",
		"evil\"test",
		"evil.test\\",
		"evil test",
		"\t",
		"",
	};
	struct spf_outcome s;
	struct dkim_outcome d;
	struct dmarc_outcome m;
	char flat[4096];
	struct buf b;
	size_t i;

	buf_init(&b, 65536);
	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		memset(&d, 0, sizeof(d));
		add_sig(&d, DKIM_RES_FAIL, evil[i], evil[i], "ours");
		s = spf(SPF_RES_FAIL, evil[i]);
		m = dmarc(DMARC_RES_FAIL, evil[i], DMARC_DISP_REJECT, evil[i]);
		buf_reset(&b);
		assert_int_equal(policy_auth_results(ID, &s, evil[i], &d, &m,
		    &b), 0);
		assert_folded(&b, 78);
		unfold(&b, flat, sizeof(flat));
		assert_int_equal(count_results(flat), 3);
		assert_null(strstr(flat, "X-Injected"));
		assert_null(strstr(flat, "bank.test"));
		assert_null(strstr(flat, "header.d="));
		assert_null(strstr(flat, "header.s="));
		assert_null(strstr(flat, "header.from="));
		assert_null(strstr(flat, "smtp.mailfrom="));
		assert_null(strchr(flat, '"'));
		assert_null(strchr(flat, '\\'));
	}
	/*
	 * Reasons are ours or libopendkim's, but even so a comment cannot
	 * be closed, nor the header ended, from inside one.
	 */
	for (i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		memset(&d, 0, sizeof(d));
		add_sig(&d, DKIM_RES_FAIL, "example.com", "s1", evil[i]);
		buf_reset(&b);
		assert_int_equal(policy_auth_results(ID, NULL, NULL, &d, NULL,
		    &b), 0);
		assert_folded(&b, 78);
		unfold(&b, flat, sizeof(flat));
		assert_int_equal(count_results(flat), 1);
		assert_null(strstr(b.data, "\nX-Injected"));
		assert_non_null(strstr(flat, " header.d=example.com"));
		assert_null(strchr(strchr(flat, '(') ? strchr(flat, '(') + 1 :
		    flat, '('));
	}
	/* an authserv-id that is no host name is refused */
	buf_reset(&b);
	assert_int_equal(policy_auth_results("a;b", NULL, NULL, NULL, NULL,
	    &b), -1);
	assert_int_equal(b.len, 0);
	/* out too small: -1 and out unchanged */
	{
		struct buf small;

		buf_init(&small, 20);
		buf_puts(&small, "keep");
		assert_int_equal(policy_auth_results(ID, NULL, NULL, NULL,
		    NULL, &small), -1);
		assert_string_equal(buf_cstr(&small), "keep");
		buf_free(&small);
	}
	buf_free(&b);
}

/* ---- the filter ---- */

static void
filter(const char *in, const char *want, unsigned want_from)
{
	unsigned nfrom = 99;
	struct buf out;

	buf_init(&out, 65536);
	assert_int_equal(policy_header_filter(in, strlen(in), ID, &out,
	    &nfrom), 0);
	if (strcmp(buf_cstr(&out), want) != 0)
		fail_msg("filtered:\n%s\nexpected:\n%s", buf_cstr(&out), want);
	assert_int_equal(nfrom, want_from);
	buf_free(&out);
}

static void
test_filter_forged(void **state)
{
	static const char keep[] =
	    "From: a@example.com\n"
	    "Authentication-Results: mx.other.test; spf=pass\n"
	    "Subject: hi\n";

	filter("Authentication-Results: " ID "; dkim=pass\n"
	    "From: a@example.com\n\nbody\n",
	    "From: a@example.com\n\nbody\n", 1);
	/* spacing, case of the name and of the id */
	filter("authentication-results:" ID ";spf=pass\n"
	    "AUTHENTICATION-RESULTS :   MAIL.Example.ORG ; dkim=pass\n"
	    "Authentication-Results:\tmail.example.org\n"
	    "Subject: x\n",
	    "Subject: x\n", 0);
	/* comments and folding before the id */
	filter("Authentication-Results: (forged (nested \\) paren)) " ID
	    "; dkim=pass\n"
	    "Authentication-Results:\n \t(x)\n\t" ID " 1; spf=pass\n"
	    "Subject: x\n",
	    "Subject: x\n", 0);
	/* a quoted authserv-id */
	filter("Authentication-Results: \"" ID "\"; dmarc=pass\n",
	    "", 0);
	/* somebody else's, or ours only as a prefix or inside a property */
	filter(keep, keep, 1);
	filter("Authentication-Results: " ID ".evil.test; dkim=pass\n"
	    "Authentication-Results: x." ID "; dkim=pass\n"
	    "Authentication-Results: mx.test; spf=pass smtp.helo=" ID "\n",
	    "Authentication-Results: " ID ".evil.test; dkim=pass\n"
	    "Authentication-Results: x." ID "; dkim=pass\n"
	    "Authentication-Results: mx.test; spf=pass smtp.helo=" ID "\n", 0);
	/* garbage glued to our id is still our id */
	filter("Authentication-Results: " ID "/x; dkim=pass\n", "", 0);
	/* unreadable (an unterminated comment or quote): dropped */
	filter("Authentication-Results: (" ID "; dkim=pass\n"
	    "Authentication-Results: \"" ID "; dkim=pass\n"
	    "Authentication-Results:\n"
	    "X: y\n", "X: y\n", 0);
	/* a similar name is another field */
	filter("Authentication-Results-X: " ID "; dkim=pass\n",
	    "Authentication-Results-X: " ID "; dkim=pass\n", 0);
}

/* Continuation lines go with their field, kept or dropped. */
static void
test_filter_continuations(void **state)
{
	filter("Received: from a\n\tby b\n"
	    "Authentication-Results: " ID ";\n"
	    "\tspf=pass smtp.mailfrom=x.test;\n"
	    " dkim=pass header.d=x.test\n"
	    "Subject: s\n"
	    "  continued\n"
	    "\n"
	    "Authentication-Results: " ID "; in the body\n",
	    "Received: from a\n\tby b\n"
	    "Subject: s\n"
	    "  continued\n"
	    "\n"
	    "Authentication-Results: " ID "; in the body\n", 0);
	/* CRLF line ends */
	filter("Authentication-Results: " ID ";\r\n\tdkim=pass\r\n"
	    "From: a@b.test\r\n\r\nbody\r\n",
	    "From: a@b.test\r\n\r\nbody\r\n", 1);
	/* the last field without a line end */
	filter("From: a@b.test\nAuthentication-Results: " ID "; spf=pass",
	    "From: a@b.test\n", 1);
}

static void
test_filter_from_count(void **state)
{
	filter("From: a@b.test\nTo: c@d.test\nFrom: e@f.test\n\n",
	    "From: a@b.test\nTo: c@d.test\nFrom: e@f.test\n\n", 2);
	filter("from : a@b.test\nFROM:b@c.test\n\tcontinued\nFromage: no\n"
	    "Resent-From: x@y.test\n",
	    "from : a@b.test\nFROM:b@c.test\n\tcontinued\nFromage: no\n"
	    "Resent-From: x@y.test\n", 2);
	/* a From in the body is not counted */
	filter("To: c@d.test\n\nFrom: a@b.test\n",
	    "To: c@d.test\n\nFrom: a@b.test\n", 0);
	filter("", "", 0);
}

static void
test_filter_full(void **state)
{
	static const char in[] = "Authentication-Results: " ID "; x\n"
	    "Subject: a fairly long subject line\n";
	unsigned nfrom;
	struct buf out;

	buf_init(&out, 10);
	assert_int_equal(policy_header_filter(in, strlen(in), ID, &out,
	    &nfrom), -1);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_pass),
		cmocka_unit_test(test_results_and_properties),
		cmocka_unit_test(test_folding),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_filter_forged),
		cmocka_unit_test(test_filter_continuations),
		cmocka_unit_test(test_filter_from_count),
		cmocka_unit_test(test_filter_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
