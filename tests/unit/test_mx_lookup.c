/*
 * test_mx_lookup.c - the MX answer parser: preference order, load sharing
 * among equal preferences, null MX (RFC 7505), answers without MX, and
 * malformed answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "common/buf.h"
#include "smtpd/mx_lookup.h"

struct msg {
	unsigned char b[1024];
	size_t len;
};

static void
put16(struct msg *m, unsigned v)
{
	m->b[m->len++] = (unsigned char)(v >> 8);
	m->b[m->len++] = (unsigned char)v;
}

static void
put_name(struct msg *m, const char *name)
{
	const char *p = name, *dot;
	size_t l;

	while (*p != '\0') {
		dot = strchr(p, '.');
		l = dot ? (size_t)(dot - p) : strlen(p);
		m->b[m->len++] = (unsigned char)l;
		memcpy(m->b + m->len, p, l);
		m->len += l;
		p += l;
		if (*p == '.')
			p++;
	}
	m->b[m->len++] = 0;
}

static void
start(struct msg *m, unsigned nanswers)
{
	memset(m, 0, sizeof(*m));
	put16(m, 0x1234);	/* id */
	put16(m, 0x8180);	/* response, RD, RA, NOERROR */
	put16(m, 1);
	put16(m, nanswers);
	put16(m, 0);
	put16(m, 0);
	put_name(m, "example.test");
	put16(m, 15);		/* MX */
	put16(m, 1);		/* IN */
}

static void
add_mx(struct msg *m, unsigned pref, const char *host)
{
	size_t rdlen_at;

	m->b[m->len++] = 0xc0;	/* pointer to the question name */
	m->b[m->len++] = 12;
	put16(m, 15);
	put16(m, 1);
	put16(m, 0);
	put16(m, 300);		/* TTL */
	rdlen_at = m->len;
	put16(m, 0);
	put16(m, pref);
	put_name(m, host);
	m->b[rdlen_at] = (unsigned char)((m->len - rdlen_at - 2) >> 8);
	m->b[rdlen_at + 1] = (unsigned char)(m->len - rdlen_at - 2);
}

static void
test_preference_order(void **state)
{
	struct mx_route r;
	struct msg m;

	(void)state;
	start(&m, 3);
	add_mx(&m, 20, "mx2.example.test");
	add_mx(&m, 5, "mx0.example.test");
	add_mx(&m, 10, "mx1.example.test");
	assert_int_equal(mx_parse_answer(m.b, m.len, 1, &r), MX_OK);
	assert_int_equal(r.nhosts, 3);
	assert_string_equal(r.hosts[0].name, "mx0.example.test");
	assert_int_equal(r.hosts[0].pref, 5);
	assert_string_equal(r.hosts[1].name, "mx1.example.test");
	assert_string_equal(r.hosts[2].name, "mx2.example.test");
	assert_int_equal(r.implicit, 0);
}

/* Equal preferences: every order shows up over seeds, and stays grouped. */
static void
test_equal_preference_shuffled(void **state)
{
	struct mx_route r;
	struct msg m;
	unsigned seed;
	int first_a = 0, first_b = 0;

	(void)state;
	start(&m, 3);
	add_mx(&m, 10, "a.example.test");
	add_mx(&m, 10, "b.example.test");
	add_mx(&m, 30, "last.example.test");
	for (seed = 1; seed <= 64; seed++) {
		assert_int_equal(mx_parse_answer(m.b, m.len, seed, &r), MX_OK);
		assert_int_equal(r.nhosts, 3);
		assert_string_equal(r.hosts[2].name, "last.example.test");
		if (strcmp(r.hosts[0].name, "a.example.test") == 0)
			first_a++;
		else
			first_b++;
	}
	assert_true(first_a > 0);
	assert_true(first_b > 0);
}

static void
test_null_mx(void **state)
{
	struct mx_route r;
	struct msg m;

	(void)state;
	start(&m, 1);
	add_mx(&m, 0, "");
	assert_int_equal(mx_parse_answer(m.b, m.len, 1, &r), MX_NULLMX);
	assert_int_equal(r.nhosts, 0);
	/* Not alone (against RFC 7505): still no mail. */
	start(&m, 2);
	add_mx(&m, 0, "");
	add_mx(&m, 10, "mx.example.test");
	assert_int_equal(mx_parse_answer(m.b, m.len, 1, &r), MX_NULLMX);
}

static void
test_no_mx_records(void **state)
{
	struct mx_route r;
	struct msg m;

	(void)state;
	start(&m, 0);
	assert_int_equal(mx_parse_answer(m.b, m.len, 1, &r), MX_NODOMAIN);
}

static void
test_malformed(void **state)
{
	struct mx_route r;
	struct msg m;
	size_t cut;

	(void)state;
	start(&m, 1);
	add_mx(&m, 10, "mx.example.test");
	for (cut = 0; cut < m.len; cut++)
		assert_int_not_equal(mx_parse_answer(m.b, cut, 1, &r), MX_OK);
	/* A compression pointer that loops on itself. */
	start(&m, 1);
	add_mx(&m, 10, "mx.example.test");
	m.b[m.len - 17] = 0xc0;
	m.b[m.len - 16] = (unsigned char)(m.len - 17);
	assert_int_not_equal(mx_parse_answer(m.b, m.len, 1, &r), MX_OK);
}

static void
test_many_hosts_capped(void **state)
{
	struct mx_route r;
	struct msg m;
	char name[32];
	unsigned i;

	(void)state;
	start(&m, 20);
	for (i = 0; i < 20; i++) {
		snprintf_checked(name, sizeof(name), "mx%u.example.test", i);
		add_mx(&m, 20 - i, name);
	}
	assert_int_equal(mx_parse_answer(m.b, m.len, 1, &r), MX_OK);
	assert_int_equal(r.nhosts, MX_HOSTS_MAX);
	for (i = 1; i < r.nhosts; i++)
		assert_true(r.hosts[i - 1].pref <= r.hosts[i].pref);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preference_order),
		cmocka_unit_test(test_equal_preference_shuffled),
		cmocka_unit_test(test_null_mx),
		cmocka_unit_test(test_no_mx_records),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_many_hosts_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
