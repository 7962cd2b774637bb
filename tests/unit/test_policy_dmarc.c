/*
 * test_policy_dmarc.c - common/policy_dmarc.c without DNS: records
 * handed to policy_dmarc_eval_record() as if DNS had returned them.
 * p=reject/quarantine/none, sp= for subdomains, strict and relaxed
 * alignment of SPF and DKIM, pct, malformed records (RFC 7489 6.6.3),
 * the report addresses, and the organisational domain from the public
 * suffix list (including the cases libopendmarc 1.4 gets wrong).
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

static struct spf_outcome
spf(enum spf_result r, const char *domain)
{
	struct spf_outcome s;

	memset(&s, 0, sizeof(s));
	s.result = r;
	snprintf_checked(s.domain, sizeof(s.domain), "%s", domain);
	return s;
}

static struct dkim_outcome
dkim1(enum dkim_result r, const char *domain)
{
	struct dkim_outcome d;

	memset(&d, 0, sizeof(d));
	d.nsigs = 1;
	d.sig[0].result = r;
	snprintf_checked(d.sig[0].domain, sizeof(d.sig[0].domain), "%s",
	    domain);
	snprintf_checked(d.sig[0].selector, sizeof(d.sig[0].selector), "s1");
	return d;
}

static const struct dkim_outcome nodkim;	/* nsigs 0 */

/* evaluate record as published at rdom for mail From: from */
static struct dmarc_outcome
eval(const char *record, const char *rdom, const char *from,
    const struct spf_outcome *s, const struct dkim_outcome *d)
{
	struct dmarc_outcome o;

	assert_int_equal(policy_dmarc_eval_record(record, rdom, from, s, d,
	    &o), 0);
	return o;
}

static void
expect(const struct dmarc_outcome *o, enum dmarc_result r,
    enum dmarc_disposition disp, const char *policy)
{
	if (o->result != r)
		fail_msg("result %s, expected %s", dmarc_result_name(o->result),
		    dmarc_result_name(r));
	assert_int_equal(o->disposition, disp);
	assert_string_equal(o->policy, policy);
}

static void
test_policies(void **state)
{
	struct spf_outcome evil = spf(SPF_RES_PASS, "evil.test");
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &evil,
	    &nodkim);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	assert_string_equal(o.from_domain, "example.com");
	assert_false(o.spf_aligned);
	assert_false(o.dkim_aligned);
	o = eval("v=DMARC1; p=quarantine", "example.com", "example.com", &evil,
	    &nodkim);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_QUARANTINE, "quarantine");
	o = eval("v=DMARC1; p=none", "example.com", "example.com", &evil,
	    &nodkim);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_NONE, "none");
	/* no SPF result, no DKIM at all */
	o = eval("v=DMARC1;p=reject", "example.com", "example.com", NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* upper case From domain, case-insensitive tag names */
	o = eval("V = DMARC1 ; P = reject", "example.com", "EXAMPLE.COM", NULL,
	    NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	assert_string_equal(o.from_domain, "example.com");
}

static void
test_pass_via_spf_only(void **state)
{
	struct spf_outcome s = spf(SPF_RES_PASS, "example.com");
	struct dkim_outcome d = dkim1(DKIM_RES_FAIL, "example.com");
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	assert_true(o.spf_aligned);
	assert_false(o.dkim_aligned);
	/* SPF softfail or neutral for the right domain is no pass */
	s = spf(SPF_RES_SOFTFAIL, "example.com");
	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* the HELO identity (MAIL FROM <>) counts as well */
	s = spf(SPF_RES_PASS, "mx.example.com");
	s.helo_identity = 1;
	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
}

static void
test_pass_via_dkim_only(void **state)
{
	struct spf_outcome s = spf(SPF_RES_FAIL, "example.com");
	struct dkim_outcome d = dkim1(DKIM_RES_PASS, "example.com");
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	assert_false(o.spf_aligned);
	assert_true(o.dkim_aligned);
	/* a passing signature of another domain does not help... */
	d = dkim1(DKIM_RES_PASS, "mailer.test");
	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* ...but any aligned passing one among several does */
	d.nsigs = 3;
	d.sig[1].result = DKIM_RES_FAIL;
	snprintf_checked(d.sig[1].domain, sizeof(d.sig[1].domain),
	    "example.com");
	d.sig[2].result = DKIM_RES_PASS;
	snprintf_checked(d.sig[2].domain, sizeof(d.sig[2].domain),
	    "Example.COM");
	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
}

static void
test_fail_both(void **state)
{
	struct spf_outcome s = spf(SPF_RES_PASS, "bounces.other.test");
	struct dkim_outcome d = dkim1(DKIM_RES_FAIL, "example.com");
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=quarantine; rua=mailto:agg@example.com",
	    "example.com", "example.com", &s, &d);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_QUARANTINE, "quarantine");
	assert_string_equal(o.rua, "mailto:agg@example.com");
}

/* sp= applies to a subdomain judged by its organisation's record only */
static void
test_subdomain_policy(void **state)
{
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=reject; sp=quarantine", "example.com",
	    "news.example.com", NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_QUARANTINE, "quarantine");
	o = eval("v=DMARC1; p=reject; sp=none", "example.com",
	    "news.example.com", NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_NONE, "none");
	/* no sp=: p= for subdomains too */
	o = eval("v=DMARC1; p=reject", "example.com", "news.example.com", NULL,
	    NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* the organisation's own mail: p= */
	o = eval("v=DMARC1; p=reject; sp=none", "example.com", "example.com",
	    NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* a subdomain with its own record: its p= */
	o = eval("v=DMARC1; p=quarantine; sp=none", "news.example.com",
	    "news.example.com", NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_QUARANTINE, "quarantine");
}

static void
test_dkim_alignment_modes(void **state)
{
	struct dkim_outcome sub = dkim1(DKIM_RES_PASS, "mail.example.com");
	struct dkim_outcome parent = dkim1(DKIM_RES_PASS, "example.com");
	struct dkim_outcome sibling = dkim1(DKIM_RES_PASS, "b.example.com");
	struct dmarc_outcome o;

	/* relaxed (default): same organisational domain */
	o = eval("v=DMARC1; p=reject", "example.com", "example.com", NULL,
	    &sub);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	o = eval("v=DMARC1; p=reject; sp=reject", "example.com",
	    "a.example.com", NULL, &sibling);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	/* strict: the very domain */
	o = eval("v=DMARC1; p=reject; adkim=s", "example.com", "example.com",
	    NULL, &sub);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	o = eval("v=DMARC1; p=reject; adkim=s", "example.com",
	    "a.example.com", NULL, &sibling);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	o = eval("v=DMARC1; p=reject; adkim=s", "example.com",
	    "a.example.com", NULL, &parent);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	o = eval("v=DMARC1; p=reject; adkim=s", "example.com", "example.com",
	    NULL, &parent);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	/* adkim=s says nothing about SPF */
	{
		struct spf_outcome s = spf(SPF_RES_PASS, "bounce.example.com");

		o = eval("v=DMARC1; p=reject; adkim=s", "example.com",
		    "example.com", &s, &sub);
		expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
		assert_true(o.spf_aligned);
		assert_false(o.dkim_aligned);
	}
}

static void
test_spf_alignment_modes(void **state)
{
	struct spf_outcome s = spf(SPF_RES_PASS, "bounce.example.com");
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=reject", "example.com", "example.com", &s, NULL);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	o = eval("v=DMARC1; p=reject; aspf=s", "example.com", "example.com", &s,
	    NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	s = spf(SPF_RES_PASS, "example.com");
	o = eval("v=DMARC1; p=reject; aspf=s", "example.com", "example.com", &s,
	    NULL);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
}

/*
 * pct: a failing message outside the sample gets the next policy down
 * (RFC 7489 6.6.4); pct=0 never enforces p= itself.
 */
static void
test_pct(void **state)
{
	struct dmarc_outcome o;
	int i, reject = 0, quarantine = 0;

	for (i = 0; i < 50; i++) {
		o = eval("v=DMARC1; p=reject; pct=0", "example.com",
		    "example.com", NULL, NULL);
		expect(&o, DMARC_RES_FAIL, DMARC_DISP_QUARANTINE, "reject");
		o = eval("v=DMARC1; p=quarantine; pct=0", "example.com",
		    "example.com", NULL, NULL);
		expect(&o, DMARC_RES_FAIL, DMARC_DISP_NONE, "quarantine");
		o = eval("v=DMARC1; p=reject; pct=100", "example.com",
		    "example.com", NULL, NULL);
		expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	}
	/* pct=50: both outcomes turn up in 200 tries */
	for (i = 0; i < 200; i++) {
		o = eval("v=DMARC1; p=reject; pct=50", "example.com",
		    "example.com", NULL, NULL);
		reject += o.disposition == DMARC_DISP_REJECT;
		quarantine += o.disposition == DMARC_DISP_QUARANTINE;
	}
	assert_int_equal(reject + quarantine, 200);
	assert_true(reject > 40 && quarantine > 40);
}

/*
 * RFC 7489 6.6.3: a record that does not start with v=DMARC1 is no
 * record (none); one that does but has no valid p= is ignored unless it
 * names a report address (then p=none); reported as permerror.
 */
static void
test_malformed_records(void **state)
{
	struct dkim_outcome d = dkim1(DKIM_RES_PASS, "example.com");
	struct dmarc_outcome o;

	o = eval("p=reject", "example.com", "example.com", NULL, NULL);
	expect(&o, DMARC_RES_NONE, DMARC_DISP_NONE, "");
	o = eval("p=reject; v=DMARC1", "example.com", "example.com", NULL,
	    NULL);
	expect(&o, DMARC_RES_NONE, DMARC_DISP_NONE, "");
	o = eval("v=DMARC2; p=reject", "example.com", "example.com", NULL,
	    NULL);
	expect(&o, DMARC_RES_NONE, DMARC_DISP_NONE, "");
	o = eval("v=spf1 -all", "example.com", "example.com", NULL, NULL);
	expect(&o, DMARC_RES_NONE, DMARC_DISP_NONE, "");
	o = eval("", "example.com", "example.com", NULL, NULL);
	expect(&o, DMARC_RES_NONE, DMARC_DISP_NONE, "");
	o = eval("v=DMARC1; p=bogus", "example.com", "example.com", NULL,
	    NULL);
	expect(&o, DMARC_RES_PERMERROR, DMARC_DISP_NONE, "");
	o = eval("v=DMARC1", "example.com", "example.com", NULL, NULL);
	expect(&o, DMARC_RES_PERMERROR, DMARC_DISP_NONE, "");
	o = eval("v=DMARC1; p=reject; pct=200", "example.com", "example.com",
	    NULL, NULL);
	expect(&o, DMARC_RES_PERMERROR, DMARC_DISP_NONE, "");
	o = eval("v=DMARC1; p=reject\001", "example.com", "example.com", NULL,
	    NULL);
	expect(&o, DMARC_RES_PERMERROR, DMARC_DISP_NONE, "");
	/* no p= but a report address: as p=none, evaluated */
	o = eval("v=DMARC1; rua=mailto:r@example.com", "example.com",
	    "example.com", NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_NONE, "none");
	assert_string_equal(o.rua, "mailto:r@example.com");
	o = eval("v=DMARC1; rua=mailto:r@example.com", "example.com",
	    "example.com", NULL, &d);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "none");
	/* unknown tags are ignored */
	o = eval("v=DMARC1; p=reject; foo=bar", "example.com", "example.com",
	    NULL, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* a From domain that is no domain */
	o = eval("v=DMARC1; p=reject", "example.com", "exa mple.com", NULL,
	    NULL);
	assert_int_equal(o.result, DMARC_RES_PERMERROR);
	assert_int_equal(o.disposition, DMARC_DISP_NONE);
}

static void
test_rua_list(void **state)
{
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=none; rua=mailto:a@example.com, "
	    "mailto:b@report.test!10m", "example.com", "example.com", NULL,
	    NULL);
	assert_string_equal(o.rua,
	    "mailto:a@example.com,mailto:b@report.test!10m");
	o = eval("v=DMARC1; p=none", "example.com", "example.com", NULL, NULL);
	assert_string_equal(o.rua, "");
}

static void
org(const char *domain, const char *want)
{
	char out[256];

	if (want == NULL) {
		assert_int_equal(policy_org_domain(domain, out, sizeof(out)),
		    -1);
		return;
	}
	assert_int_equal(policy_org_domain(domain, out, sizeof(out)), 0);
	if (strcmp(out, want) != 0)
		fail_msg("organisational domain of %s: got %s, expected %s",
		    domain, out, want);
}

static void
test_org_domain(void **state)
{
	org("example.com", "example.com");
	org("a.b.example.com", "example.com");
	org("mail.example.co.uk", "example.co.uk");
	org("example.co.uk", "example.co.uk");
	org("MAIL.Example.CO.UK.", "example.co.uk");
	org("co.uk", "co.uk");		/* a public suffix is its own */
	org("com", "com");
	/* not in the list: the default rule "*" */
	org("mail.a.test", "a.test");
	org("a.test", "a.test");
	org("x.y.z.invalid", "z.invalid");
	/* wildcard *.ck and its exception !www.ck */
	org("a.b.ck", "a.b.ck");
	org("x.a.b.ck", "a.b.ck");
	org("www.ck", "www.ck");
	org("a.www.ck", "www.ck");
	/* *.kawasaki.jp with !city.kawasaki.jp */
	org("www.city.kawasaki.jp", "city.kawasaki.jp");
	org("a.b.kawasaki.jp", "a.b.kawasaki.jp");
	/* private part of the list */
	org("foo.blogspot.com", "foo.blogspot.com");
	org("", NULL);
	org("a..b.com", NULL);
	org("exa mple.com", NULL);
	org(".", NULL);
}

/* The relaxed cases libopendmarc 1.4.2 finds aligned and are not. */
static void
test_relaxed_needs_same_organisation(void **state)
{
	struct spf_outcome s = spf(SPF_RES_PASS, "b.co.uk");
	struct dkim_outcome d = dkim1(DKIM_RES_PASS, "y.test");
	struct dmarc_outcome o;

	o = eval("v=DMARC1; p=reject", "a.co.uk", "a.co.uk", &s, &d);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	o = eval("v=DMARC1; p=reject", "x.test", "x.test", &s, &d);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
	/* and subdomains of the same organisation under co.uk do align */
	s = spf(SPF_RES_PASS, "bounce.example.co.uk");
	o = eval("v=DMARC1; p=reject", "example.co.uk", "mail.example.co.uk",
	    &s, NULL);
	expect(&o, DMARC_RES_PASS, DMARC_DISP_NONE, "reject");
	o = eval("v=DMARC1; p=reject; aspf=s", "example.co.uk",
	    "mail.example.co.uk", &s, NULL);
	expect(&o, DMARC_RES_FAIL, DMARC_DISP_REJECT, "reject");
}

static void
test_result_names(void **state)
{
	assert_string_equal(dmarc_result_name(DMARC_RES_NONE), "none");
	assert_string_equal(dmarc_result_name(DMARC_RES_PASS), "pass");
	assert_string_equal(dmarc_result_name(DMARC_RES_FAIL), "fail");
	assert_string_equal(dmarc_result_name(DMARC_RES_TEMPERROR),
	    "temperror");
	assert_string_equal(dmarc_result_name(DMARC_RES_PERMERROR),
	    "permerror");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policies),
		cmocka_unit_test(test_pass_via_spf_only),
		cmocka_unit_test(test_pass_via_dkim_only),
		cmocka_unit_test(test_fail_both),
		cmocka_unit_test(test_subdomain_policy),
		cmocka_unit_test(test_dkim_alignment_modes),
		cmocka_unit_test(test_spf_alignment_modes),
		cmocka_unit_test(test_pct),
		cmocka_unit_test(test_malformed_records),
		cmocka_unit_test(test_rua_list),
		cmocka_unit_test(test_org_domain),
		cmocka_unit_test(test_relaxed_needs_same_organisation),
		cmocka_unit_test(test_result_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
