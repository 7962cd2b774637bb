/*
 * test_policy_dnsbl.c - the pure parts of common/policy_dnsbl.c: RFC 5782
 * query names (IPv4 octets, IPv6 nibbles, IPv4-mapped clients, PTR
 * names), CIDR allow lists, and the answer cache (expiry, keys, bounded
 * size), including policy_dnsbl_check answering from the cache without
 * any DNS.  The lookups themselves are tested against a real DNS server
 * in tests/integration (test_mailadm_check.py).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "common/policy.h"

struct addr {
	struct sockaddr_storage ss;
};

static const struct sockaddr *
ip(struct addr *a, const char *text)
{
	memset(a, 0, sizeof(*a));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)&a->ss;
}

static void
qname_is(const char *addr, const char *zone, const char *want)
{
	struct addr a;
	char out[300];

	assert_int_equal(policy_dnsbl_qname(ip(&a, addr), zone, out,
	    sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void
test_qname_ipv4(void **state)
{
	qname_is("127.0.0.2", "bl.test", "2.0.0.127.bl.test");
	qname_is("192.0.2.99", "zen.spamhaus.org", "99.2.0.192.zen.spamhaus.org");
	/* a final dot and upper case make the same name */
	qname_is("192.0.2.99", "ZEN.Spamhaus.ORG.", "99.2.0.192.zen.spamhaus.org");
	qname_is("10.1.2.3", "in-addr.arpa", "3.2.1.10.in-addr.arpa");
}

static void
test_qname_ipv6(void **state)
{
	/* RFC 5782 2.4 */
	qname_is("2001:db8:1:2:3:4:567:89ab", "ugly.example",
	    "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2."
	    "ugly.example");
	qname_is("::1", "ip6.arpa",
	    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
	    "ip6.arpa");
}

static void
test_qname_v4mapped(void **state)
{
	/* a client on an IPv6 socket is still an IPv4 client to the lists */
	qname_is("::ffff:192.0.2.99", "bl.test", "99.2.0.192.bl.test");
	qname_is("::ffff:127.0.0.2", "in-addr.arpa", "2.0.0.127.in-addr.arpa");
}

static void
test_qname_errors(void **state)
{
	struct sockaddr_storage ss;
	struct addr a;
	char out[300], small[10], zone[260];

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(policy_dnsbl_qname((struct sockaddr *)&ss, "bl.test",
	    out, sizeof(out)), -1);
	assert_int_equal(policy_dnsbl_qname(NULL, "bl.test", out,
	    sizeof(out)), -1);
	assert_int_equal(policy_dnsbl_qname(ip(&a, "127.0.0.2"), "", out,
	    sizeof(out)), -1);
	assert_int_equal(policy_dnsbl_qname(ip(&a, "127.0.0.2"), ".", out,
	    sizeof(out)), -1);
	assert_int_equal(policy_dnsbl_qname(ip(&a, "127.0.0.2"), "bad zone",
	    out, sizeof(out)), -1);
	assert_int_equal(policy_dnsbl_qname(ip(&a, "127.0.0.2"), "bl.test",
	    small, sizeof(small)), -1);
	/* 72 characters of nibbles + a 200-character zone > 253 */
	memset(zone, 'a', 200);
	zone[200] = '\0';
	assert_int_equal(policy_dnsbl_qname(ip(&a, "2001:db8::1"), zone, out,
	    sizeof(out)), -1);
	assert_int_equal(policy_dnsbl_qname(ip(&a, "127.0.0.2"), zone, out,
	    sizeof(out)), 0);
}

static int
match(const char *cidrs, const char *addr)
{
	struct addr a;

	return policy_cidr_match(cidrs, ip(&a, addr));
}

static void
test_cidr_ipv4(void **state)
{
	assert_int_equal(match("10.0.0.0/8", "10.200.1.2"), 1);
	assert_int_equal(match("10.0.0.0/8", "11.0.0.1"), 0);
	assert_int_equal(match("192.0.2.1", "192.0.2.1"), 1);	/* /32 */
	assert_int_equal(match("192.0.2.1", "192.0.2.2"), 0);
	assert_int_equal(match("192.0.2.0/31", "192.0.2.1"), 1);
	assert_int_equal(match("192.0.2.0/31", "192.0.2.2"), 0);
	assert_int_equal(match("192.0.2.128/25", "192.0.2.127"), 0);
	assert_int_equal(match("192.0.2.128/25", "192.0.2.255"), 1);
	assert_int_equal(match("0.0.0.0/0", "203.0.113.9"), 1);
	/* host bits in the network do not matter */
	assert_int_equal(match("10.9.9.9/8", "10.1.1.1"), 1);
	assert_int_equal(match("172.16.0.0/12", "172.31.255.255"), 1);
	assert_int_equal(match("172.16.0.0/12", "172.32.0.0"), 0);
}

static void
test_cidr_ipv6(void **state)
{
	assert_int_equal(match("2001:db8::/32", "2001:db8:ffff::1"), 1);
	assert_int_equal(match("2001:db8::/32", "2001:db9::1"), 0);
	assert_int_equal(match("2001:db8::1", "2001:db8::1"), 1);	/* /128 */
	assert_int_equal(match("2001:db8::1", "2001:db8::2"), 0);
	assert_int_equal(match("2001:db8::/33", "2001:db8:8000::1"), 0);
	assert_int_equal(match("2001:db8::/33", "2001:db8:7fff::1"), 1);
	assert_int_equal(match("::/0", "fe80::1"), 1);
	/* families never cross */
	assert_int_equal(match("::/0", "192.0.2.1"), 0);
	assert_int_equal(match("0.0.0.0/0", "2001:db8::1"), 0);
}

static void
test_cidr_v4mapped(void **state)
{
	/* an IPv4-mapped client matches IPv4 networks ... */
	assert_int_equal(match("192.0.2.0/24", "::ffff:192.0.2.7"), 1);
	assert_int_equal(match("192.0.2.0/24", "::ffff:192.0.3.7"), 0);
	/* ... and mapped networks are IPv4 networks */
	assert_int_equal(match("::ffff:192.0.2.0/120", "192.0.2.7"), 1);
	assert_int_equal(match("::ffff:192.0.2.0/120", "::ffff:192.0.2.7"), 1);
	assert_int_equal(match("::ffff:192.0.2.0/120", "192.0.3.7"), 0);
	assert_int_equal(match("::ffff:0:0/96", "203.0.113.1"), 1);
}

static void
test_cidr_lists(void **state)
{
	const char *l = "10.0.0.0/8   192.0.2.0/24,2001:db8::/32\t127.0.0.1";

	assert_int_equal(match(l, "10.1.1.1"), 1);
	assert_int_equal(match(l, "192.0.2.200"), 1);
	assert_int_equal(match(l, "2001:db8::5"), 1);
	assert_int_equal(match(l, "127.0.0.1"), 1);
	assert_int_equal(match(l, "127.0.0.2"), 0);
	assert_int_equal(match("", "10.1.1.1"), 0);
	assert_int_equal(match(NULL, "10.1.1.1"), 0);
	/* entries that do not parse are skipped, the others still work */
	assert_int_equal(match("bogus 10.0.0.0/33 10.0.0.0/ 10.0.0.0/x "
	    "300.1.1.1 10.0.0.0/-1 192.0.2.0/24", "10.1.1.1"), 0);
	assert_int_equal(match("bogus 10.0.0.0/33 192.0.2.0/24", "192.0.2.1"),
	    1);
	assert_int_equal(match("2001:db8::/129 ::1", "::1"), 1);
	assert_int_equal(match("2001:db8::/129", "2001:db8::1"), 0);
}

static void
outcome(struct dnsbl_outcome *o, int listed, int timed_out,
    const char *reason)
{
	memset(o, 0, sizeof(*o));
	o->listed = listed;
	o->timed_out = timed_out;
	snprintf(o->reason, sizeof(o->reason), "%s", reason);
}

static void
test_cache_expiry(void **state)
{
	struct dnsbl_outcome o, got;
	struct addr a;

	policy_dnsbl_cache_clear();
	outcome(&o, 1, 0, "listed for spam");
	policy_dnsbl_cache_put("bl.test", ip(&a, "192.0.2.1"), 1000, 60, &o);
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.1"),
	    1000, &got), 1);
	assert_int_equal(got.listed, 1);
	assert_string_equal(got.reason, "listed for spam");
	assert_string_equal(got.zone, "bl.test");
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.1"),
	    1059, &got), 1);
	/* the TTL is over */
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.1"),
	    1060, &got), 0);
	/* TTL 0: not kept */
	policy_dnsbl_cache_put("bl.test", ip(&a, "192.0.2.2"), 1000, 0, &o);
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.2"),
	    1000, &got), 0);
	/* at most an hour, whatever the zone says */
	policy_dnsbl_cache_put("bl.test", ip(&a, "192.0.2.3"), 1000, 86400, &o);
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.3"),
	    1000 + 3599, &got), 1);
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.3"),
	    1000 + 3600, &got), 0);
}

static void
test_cache_keys(void **state)
{
	struct dnsbl_outcome o, got;
	struct addr a;

	policy_dnsbl_cache_clear();
	outcome(&o, 0, 1, "");
	policy_dnsbl_cache_put("Bl.Test.", ip(&a, "192.0.2.1"), 10, 60, &o);
	/* the zone compares normalised, the client as the lists see it */
	assert_int_equal(policy_dnsbl_cache_get("bl.test",
	    ip(&a, "::ffff:192.0.2.1"), 10, &got), 1);
	assert_int_equal(got.listed, 0);
	assert_int_equal(got.timed_out, 1);
	assert_int_equal(policy_dnsbl_cache_get("other.test",
	    ip(&a, "192.0.2.1"), 10, &got), 0);
	assert_int_equal(policy_dnsbl_cache_get("bl.test",
	    ip(&a, "192.0.2.11"), 10, &got), 0);
	assert_int_equal(policy_dnsbl_cache_get("bl.test",
	    ip(&a, "2001:db8::1"), 10, &got), 0);
	/* a new answer replaces the old one */
	outcome(&o, 1, 0, "now listed");
	policy_dnsbl_cache_put("bl.test", ip(&a, "192.0.2.1"), 20, 60, &o);
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.1"),
	    20, &got), 1);
	assert_int_equal(got.listed, 1);
	assert_int_equal(got.timed_out, 0);
	assert_string_equal(got.reason, "now listed");
	policy_dnsbl_cache_clear();
	assert_int_equal(policy_dnsbl_cache_get("bl.test", ip(&a, "192.0.2.1"),
	    20, &got), 0);
}

static void
test_cache_bounded(void **state)
{
	struct dnsbl_outcome o, got;
	struct addr a;
	char text[64];
	unsigned i, kept = 0;

	policy_dnsbl_cache_clear();
	outcome(&o, 1, 0, "x");
	for (i = 0; i < 20000; i++) {
		snprintf(text, sizeof(text), "10.%u.%u.%u", i >> 16,
		    (i >> 8) & 255, i & 255);
		policy_dnsbl_cache_put("bl.test", ip(&a, text), 100 + i, 3600,
		    &o);
	}
	for (i = 0; i < 20000; i++) {
		snprintf(text, sizeof(text), "10.%u.%u.%u", i >> 16,
		    (i >> 8) & 255, i & 255);
		kept += policy_dnsbl_cache_get("bl.test", ip(&a, text),
		    100 + 20000, &got);
	}
	/* a fixed table: most are gone, some are kept */
	assert_true(kept > 0);
	assert_true(kept <= 4096);
	/* the last one put is always there (least recently used goes) */
	assert_int_equal(policy_dnsbl_cache_get("bl.test",
	    ip(&a, "10.0.78.31"), 100 + 20000, &got), 1);
	policy_dnsbl_cache_clear();
}

static long long
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

/* policy_dnsbl_check answers from the cache: no DNS in a unit test. */
static void
test_check_from_cache(void **state)
{
	struct dnsbl_outcome o, out;
	struct addr a;

	policy_dnsbl_cache_clear();
	outcome(&o, 0, 1, "");
	policy_dnsbl_cache_put("slow.test", ip(&a, "192.0.2.5"), mono_now(),
	    600, &o);
	outcome(&o, 0, 0, "");
	policy_dnsbl_cache_put("clean.test", ip(&a, "192.0.2.5"), mono_now(),
	    600, &o);
	outcome(&o, 1, 0, "192.0.2.5 sends spam");
	policy_dnsbl_cache_put("bl.test", ip(&a, "192.0.2.5"), mono_now(), 600,
	    &o);

	assert_int_equal(policy_dnsbl_check("slow.test clean.test bl.test "
	    "never.asked.test", ip(&a, "::ffff:192.0.2.5"), &out), 0);
	assert_int_equal(out.listed, 1);
	assert_string_equal(out.zone, "bl.test");
	assert_string_equal(out.reason, "192.0.2.5 sends spam");
	assert_int_equal(out.timed_out, 1);

	/* nothing lists it: zone names the one that did not answer */
	assert_int_equal(policy_dnsbl_check("clean.test, slow.test",
	    ip(&a, "192.0.2.5"), &out), 0);
	assert_int_equal(out.listed, 0);
	assert_int_equal(out.timed_out, 1);
	assert_string_equal(out.zone, "slow.test");

	/* no zones, or only names that are not zones: nothing to ask */
	assert_int_equal(policy_dnsbl_check("", ip(&a, "192.0.2.5"), &out), 0);
	assert_int_equal(out.listed, 0);
	assert_int_equal(out.timed_out, 0);
	assert_int_equal(policy_dnsbl_check(NULL, ip(&a, "192.0.2.5"), &out),
	    0);
	assert_int_equal(policy_dnsbl_check(" ,\t", ip(&a, "192.0.2.5"), &out),
	    0);
	assert_int_equal(out.listed, 0);
	assert_int_equal(policy_dnsbl_check("bl.test", NULL, &out), -1);
	policy_dnsbl_cache_clear();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_qname_ipv4),
		cmocka_unit_test(test_qname_ipv6),
		cmocka_unit_test(test_qname_v4mapped),
		cmocka_unit_test(test_qname_errors),
		cmocka_unit_test(test_cidr_ipv4),
		cmocka_unit_test(test_cidr_ipv6),
		cmocka_unit_test(test_cidr_v4mapped),
		cmocka_unit_test(test_cidr_lists),
		cmocka_unit_test(test_cache_expiry),
		cmocka_unit_test(test_cache_keys),
		cmocka_unit_test(test_cache_bounded),
		cmocka_unit_test(test_check_from_cache),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
