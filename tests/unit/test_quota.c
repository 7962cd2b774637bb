/*
 * test_quota.c - store/quota.c: usage from file names across folders,
 * the maildirsize file it writes, appended deltas, and every reason to
 * recalculate (missing, other limit, too big, too old, garbage).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>
#include <cmocka.h>

#include "store/maildir.h"
#include "store/quota.h"
#include "store_testutil.h"

#define LIMIT 1000000

struct fixture {
	char dir[256];
	char user[512];
	char msize[600];	/* user/maildirsize */
	uint64_t bytes;		/* what was delivered */
	uint64_t count;
};

static void
deliver(struct fixture *f, const char *folder, const char *text)
{
	char dir[600];
	uint64_t size = 0;
	struct spool s;

	if (folder == NULL)
		snprintf_checked(dir, sizeof(dir), "%s", f->user);
	else
		snprintf_checked(dir, sizeof(dir), "%s/.%s", f->user, folder);
	spool_init(&s, f->dir, 4096);
	assert_int_equal(spool_append(&s, text, strlen(text)), 0);
	assert_int_equal(maildir_deliver(dir, "X-Test: 1\n", 10, &s, NULL, 0,
	    &size), 0);
	spool_free(&s);
	f->bytes += size;
	f->count++;
}

/* Three messages: two in INBOX, one in .Sent. */
static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf_checked(f->user, sizeof(f->user), "%s/alice", f->dir);
	snprintf_checked(f->msize, sizeof(f->msize), "%s/maildirsize",
	    f->user);
	*state = f;
	if (maildir_create_folder(f->user, "Sent") < 0)
		return -1;
	deliver(f, NULL, "Subject: one\n\nfirst\n");
	deliver(f, NULL, "Subject: two\n\nsecond message, longer\n");
	deliver(f, "Sent", "Subject: three\n\n3\n");
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void
expect_file(const char *path, const char *want)
{
	char *p = tu_slurp(path, NULL);

	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
}

static void
expect_usage(struct fixture *f, uint64_t limit, uint64_t bytes,
    uint64_t count)
{
	uint64_t b = 0, c = 0;

	assert_int_equal(quota_usage(f->user, limit, &b, &c), 0);
	assert_int_equal(b, bytes);
	assert_int_equal(c, count);
}

static void
expect_recalculated(struct fixture *f, uint64_t limit)
{
	char want[128];

	snprintf_checked(want, sizeof(want), "%" PRIu64 "S\n%" PRIu64 " %"
	    PRIu64 "\n", limit, f->bytes, f->count);
	expect_file(f->msize, want);
}

static void
test_usage_after_deliveries(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(f->count, 3);
	assert_int_equal(access(f->msize, F_OK), -1);
	expect_usage(f, LIMIT, f->bytes, 3);
	expect_recalculated(f, LIMIT);
	/* No temp file left in tmp/. */
	{
		char tmp[600];

		snprintf_checked(tmp, sizeof(tmp), "%s/tmp", f->user);
		assert_int_equal(tu_count_entries(tmp), 0);
	}
}

static void
test_add_appends_and_is_used(void **state)
{
	struct fixture *f = *state;
	char want[160];

	expect_usage(f, LIMIT, f->bytes, 3);
	assert_int_equal(quota_add(f->user, 500, 1), 0);
	assert_int_equal(quota_add(f->user, -200, -1), 0);
	snprintf_checked(want, sizeof(want), "%dS\n%" PRIu64 " 3\n500 1\n"
	    "-200 -1\n", LIMIT, f->bytes);
	expect_file(f->msize, want);
	/* The deltas are believed (nothing on disk says 300 more bytes). */
	expect_usage(f, LIMIT, f->bytes + 300, 3);
}

static void
test_add_without_file_does_nothing(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(quota_add(f->user, 100, 1), 0);
	assert_int_equal(access(f->msize, F_OK), -1);
	expect_usage(f, LIMIT, f->bytes, 3);
}

static void
test_recalc_after_delete(void **state)
{
	struct fixture *f = *state;

	expect_usage(f, LIMIT, f->bytes, 3);
	assert_int_equal(quota_add(f->user, 12345, 7), 0);
	expect_usage(f, LIMIT, f->bytes + 12345, 10);
	assert_int_equal(unlink(f->msize), 0);
	expect_usage(f, LIMIT, f->bytes, 3);
	expect_recalculated(f, LIMIT);
}

static void
test_recalc_when_limit_changes(void **state)
{
	struct fixture *f = *state;
	char text[64];

	snprintf_checked(text, sizeof(text), "%dS\n999 9\n", LIMIT);
	assert_int_equal(tu_write_file(f->msize, text, strlen(text)), 0);
	expect_usage(f, LIMIT, 999, 9);		/* same limit: trusted */
	expect_usage(f, 2 * LIMIT, f->bytes, 3);
	expect_recalculated(f, 2 * LIMIT);
}

static void
test_recalc_when_too_big(void **state)
{
	struct fixture *f = *state;
	char text[6000];
	size_t n;

	snprintf_checked(text, sizeof(text), "%dS\n", LIMIT);
	n = strlen(text);
	while (n + 4 < 5200) {
		memcpy(text + n, "1 0\n", 4);
		n += 4;
	}
	assert_int_equal(tu_write_file(f->msize, text, n), 0);
	expect_usage(f, LIMIT, f->bytes, 3);
	expect_recalculated(f, LIMIT);
}

static void
test_recalc_when_old(void **state)
{
	struct fixture *f = *state;
	struct timeval tv[2];
	char text[64];

	snprintf_checked(text, sizeof(text), "%dS\n999 9\n", LIMIT);
	assert_int_equal(tu_write_file(f->msize, text, strlen(text)), 0);
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= 16 * 60;
	tv[1] = tv[0];
	assert_int_equal(utimes(f->msize, tv), 0);
	expect_usage(f, LIMIT, f->bytes, 3);
	expect_recalculated(f, LIMIT);
}

static void
test_recalc_on_garbage(void **state)
{
	static const char *const bad[] = {
		"1000000S\n12 x\n",
		"1000000S\n12 1",		/* torn last line */
		"1000000S\n-5000 -1\n",		/* negative total */
		"1000000S\n1 2 3\n",
		"1000000S\n99999999999999999999 1\n",
		"",
		"1000000S,100C\n1 1\n",
	};
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tu_write_file(f->msize, bad[i],
		    strlen(bad[i])), 0);
		expect_usage(f, LIMIT, f->bytes, 3);
		expect_recalculated(f, LIMIT);
	}
}

static void
test_names_without_size_and_tmp_ignored(void **state)
{
	struct fixture *f = *state;
	char path[700];

	/* No S= in the name: counted by stat (7 bytes). */
	snprintf_checked(path, sizeof(path), "%s/cur/12345.foreign:2,S",
	    f->user);
	assert_int_equal(tu_write_file(path, "abcdefg", 7), 0);
	/* Files in tmp/ are not mail yet. */
	snprintf_checked(path, sizeof(path), "%s/tmp/1.M1P1Q1.h,S=5000",
	    f->user);
	assert_int_equal(tu_write_file(path, "zz", 2), 0);
	/* Flags after ":2," never confuse the size. */
	snprintf_checked(path, sizeof(path), "%s/.Sent/cur/2.M1P1Q1.h,S=40,"
	    "W=42:2,S", f->user);
	assert_int_equal(tu_write_file(path, "q", 1), 0);
	/* Dot files inside cur/ are not messages. */
	snprintf_checked(path, sizeof(path), "%s/cur/.hidden,S=100", f->user);
	assert_int_equal(tu_write_file(path, "q", 1), 0);
	expect_usage(f, LIMIT, f->bytes + 7 + 40, 5);
}

static void
test_empty_user(void **state)
{
	struct fixture *f = *state;
	char nobody[600];
	uint64_t b = 1, c = 1;

	snprintf_checked(nobody, sizeof(nobody), "%s/nobody", f->dir);
	assert_int_equal(quota_usage(nobody, LIMIT, &b, &c), 0);
	assert_int_equal(b, 0);
	assert_int_equal(c, 0);
	assert_int_equal(access(nobody, F_OK), -1);	/* not created */
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_usage_after_deliveries),
		T(test_add_appends_and_is_used),
		T(test_add_without_file_does_nothing),
		T(test_recalc_after_delete),
		T(test_recalc_when_limit_changes),
		T(test_recalc_when_too_big),
		T(test_recalc_when_old),
		T(test_recalc_on_garbage),
		T(test_names_without_size_and_tmp_ignored),
		T(test_empty_user),
	};
#undef T

	return cmocka_run_group_tests_name("quota", tests, NULL, NULL);
}
