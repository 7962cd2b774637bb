/*
 * test_authfail.c - cmocka tests for common/authfail.c, the per-network
 * failed-authentication table, driven by a fake clock.
 *
 * Covers: the delay staying 0 after one failure then doubling 1, 2, 4,
 * 8 s and capping at 15 s; a success ending the streak; a quiet window
 * ending it too; the lockout at the 20th failure in 15 minutes, its
 * length and expiry; failures older than the window not counting; a
 * success not clearing the lockout count; IPv6 grouped by /64, IPv4 by
 * address, IPv4-mapped IPv6 as IPv4; non-IP addresses ignored; the table
 * never holding more than its size and evicting the oldest network;
 * nonsensical limits refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/authfail.h"

static uint64_t fake_now;

static uint64_t
fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

/* An address from text (IPv4 or IPv6). */
static const struct sockaddr *
ip(const char *text)
{
	static struct sockaddr_storage ss[4];
	static unsigned next;
	struct sockaddr_storage *s = &ss[next++ % 4];

	memset(s, 0, sizeof(*s));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)s;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)s;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)s;
}

static struct authfail *
new_table(unsigned entries)
{
	struct authfail_limits lim = AUTHFAIL_LIMITS_DEFAULT;
	struct authfail *t;

	lim.entries = entries;
	fake_now = 1000000;
	t = authfail_new(&lim, fake_clock, NULL);
	assert_non_null(t);
	return t;
}

static void
test_delays_grow_and_cap(void **state)
{
	static const unsigned want[] = { 0, 1000, 2000, 4000, 8000, 15000, 15000 };
	struct authfail *t = new_table(64);
	const struct sockaddr *a = ip("192.0.2.1");
	size_t i;

	assert_int_equal(authfail_delay(t, a), 0);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		fake_now += 5;
		assert_int_equal(authfail_failure(t, a), want[i]);
		assert_int_equal(authfail_delay(t, a), want[i]);
	}
	/* A success ends the streak: the next failure is free again. */
	authfail_success(t, a);
	assert_int_equal(authfail_delay(t, a), 0);
	assert_int_equal(authfail_failure(t, a), 0);
	assert_int_equal(authfail_failure(t, a), 1000);
	/* So does a quiet window. */
	fake_now += 901;
	assert_int_equal(authfail_delay(t, a), 0);
	assert_int_equal(authfail_failure(t, a), 0);
	/* Another address is untouched. */
	assert_int_equal(authfail_delay(t, ip("192.0.2.2")), 0);
	authfail_free(&t);
	assert_null(t);
	(void)state;
}

static void
test_lockout_and_expiry(void **state)
{
	struct authfail *t = new_table(64);
	const struct sockaddr *a = ip("198.51.100.7");
	int i;

	for (i = 0; i < 19; i++) {
		fake_now += 40;		/* 19 failures over 12.7 minutes */
		authfail_failure(t, a);
		assert_int_equal(authfail_locked(t, a), 0);
	}
	fake_now += 40;
	authfail_failure(t, a);		/* the 20th within 15 minutes */
	assert_int_equal(authfail_locked(t, a), 900);
	fake_now += 899;
	assert_int_equal(authfail_locked(t, a), 1);
	assert_int_equal(authfail_locked(t, ip("198.51.100.8")), 0);
	/* A success from the network does not lift the lockout. */
	authfail_success(t, a);
	assert_int_equal(authfail_locked(t, a), 1);
	fake_now += 1;
	assert_int_equal(authfail_locked(t, a), 0);
	/* The lockout used those failures up: one more does not relock. */
	authfail_failure(t, a);
	assert_int_equal(authfail_locked(t, a), 0);
	authfail_free(&t);
	(void)state;
}

static void
test_old_failures_expire(void **state)
{
	struct authfail *t = new_table(64);
	const struct sockaddr *a = ip("203.0.113.9");
	int i;

	for (i = 0; i < 19; i++)
		authfail_failure(t, a);
	fake_now += 961;		/* past the window and its last bucket */
	authfail_failure(t, a);
	assert_int_equal(authfail_locked(t, a), 0);
	for (i = 0; i < 18; i++)
		authfail_failure(t, a);
	assert_int_equal(authfail_locked(t, a), 0);
	authfail_failure(t, a);		/* 20 since the pause */
	assert_true(authfail_locked(t, a) > 0);
	authfail_free(&t);
	(void)state;
}

static void
test_success_keeps_lockout_count(void **state)
{
	struct authfail *t = new_table(64);
	const struct sockaddr *a = ip("203.0.113.10");
	int i;

	/* One good account must not buy more guesses at others. */
	for (i = 0; i < 20; i++) {
		assert_int_equal(authfail_failure(t, a), 0);
		authfail_success(t, a);
	}
	assert_int_equal(authfail_locked(t, a), 900);
	authfail_free(&t);
	(void)state;
}

static void
test_ipv6_by_64(void **state)
{
	struct authfail *t = new_table(64);

	authfail_failure(t, ip("2001:db8:1:2::1"));
	assert_int_equal(authfail_failure(t, ip("2001:db8:1:2:ffff:eeee:dddd:9")),
	    1000);
	assert_int_equal(authfail_delay(t, ip("2001:db8:1:2::abcd")), 1000);
	assert_int_equal(authfail_delay(t, ip("2001:db8:1:3::1")), 0);
	assert_int_equal(authfail_count(t), 1);
	/* IPv4 by full address; IPv4-mapped IPv6 is the same client. */
	authfail_failure(t, ip("192.0.2.10"));
	assert_int_equal(authfail_failure(t, ip("::ffff:192.0.2.10")), 1000);
	assert_int_equal(authfail_delay(t, ip("192.0.2.11")), 0);
	assert_int_equal(authfail_count(t), 2);
	authfail_free(&t);
	(void)state;
}

static void
test_non_ip_ignored(void **state)
{
	struct authfail *t = new_table(64);
	struct sockaddr_un un;
	int i;

	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	for (i = 0; i < 30; i++)
		assert_int_equal(authfail_failure(t, (struct sockaddr *)&un), 0);
	assert_int_equal(authfail_locked(t, (struct sockaddr *)&un), 0);
	assert_int_equal(authfail_locked(t, NULL), 0);
	assert_int_equal(authfail_count(t), 0);
	authfail_free(&t);
	(void)state;
}

static void
test_eviction_bound(void **state)
{
	struct authfail *t = new_table(8);
	char text[32];
	int i;

	for (i = 0; i < 100; i++) {
		snprintf(text, sizeof(text), "10.0.%d.%d", i / 256, i % 256);
		authfail_failure(t, ip(text));
		authfail_failure(t, ip(text));
		fake_now++;
		assert_true(authfail_count(t) <= 8);
	}
	assert_int_equal(authfail_count(t), 8);
	/* The 8 newest are remembered, the older ones were evicted. */
	assert_int_equal(authfail_delay(t, ip("10.0.0.99")), 1000);
	assert_int_equal(authfail_delay(t, ip("10.0.0.92")), 1000);
	assert_int_equal(authfail_delay(t, ip("10.0.0.91")), 0);
	assert_int_equal(authfail_delay(t, ip("10.0.0.0")), 0);
	/* A failure refreshes a network: 92 survives the next newcomer. */
	authfail_failure(t, ip("10.0.0.92"));
	authfail_failure(t, ip("10.0.1.0"));
	assert_int_equal(authfail_delay(t, ip("10.0.0.92")), 2000);
	assert_int_equal(authfail_delay(t, ip("10.0.0.93")), 0);
	authfail_free(&t);
	(void)state;
}

static void
test_bad_limits(void **state)
{
	struct authfail_limits lim = AUTHFAIL_LIMITS_DEFAULT;
	struct authfail *t;

	lim.entries = 0;
	assert_null(authfail_new(&lim, fake_clock, NULL));
	lim.entries = 16;
	lim.delay_first_ms = 20000;
	assert_null(authfail_new(&lim, fake_clock, NULL));
	lim.delay_first_ms = 1000;
	lim.lockout_time = 0;
	assert_null(authfail_new(&lim, fake_clock, NULL));
	/* Defaults and the real clock. */
	t = authfail_new(NULL, NULL, NULL);
	assert_non_null(t);
	assert_int_equal(authfail_failure(t, ip("192.0.2.99")), 0);
	authfail_free(&t);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delays_grow_and_cap),
		cmocka_unit_test(test_lockout_and_expiry),
		cmocka_unit_test(test_old_failures_expire),
		cmocka_unit_test(test_success_keeps_lockout_count),
		cmocka_unit_test(test_ipv6_by_64),
		cmocka_unit_test(test_non_ip_ignored),
		cmocka_unit_test(test_eviction_bound),
		cmocka_unit_test(test_bad_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
