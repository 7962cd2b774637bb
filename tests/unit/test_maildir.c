/*
 * test_maildir.c - store/maildir.c: exact file names, delivery that
 * leaves the message in new/ only with the right size fields, folder
 * creation and its refusals, concurrent deliveries.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/maildir.h"
#include "store_testutil.h"

struct fixture {
	char dir[256];
	char user[512];		/* dir/example.org/alice: does not exist yet */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf_checked(f->user, sizeof(f->user), "%s/example.org/alice",
	    f->dir);
	*state = f;
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
test_name_format_exact(void **state)
{
	char out[256];

	assert_int_equal(maildir_make_name(out, sizeof(out), 1700000000,
	    123456, 4242, 7, "mx.example.org", 100, 104), 0);
	assert_string_equal(out,
	    "1700000000.M123456P4242Q7.mx.example.org,S=100,W=104");
	assert_int_equal(maildir_make_name(out, sizeof(out), 1, 0, 1, 0,
	    "a/b:c", 0, 0), 0);
	assert_string_equal(out, "1.M0P1Q0.a\\057b\\072c,S=0,W=0");
}

static void
test_name_too_long(void **state)
{
	const char *want = "1.M2P3Q4.h,S=5,W=6";
	char out[64];

	/* Exactly enough room, then one byte short. */
	assert_int_equal(maildir_make_name(out, strlen(want) + 1, 1, 2, 3, 4,
	    "h", 5, 6), 0);
	assert_string_equal(out, want);
	errno = 0;
	assert_int_equal(maildir_make_name(out, strlen(want), 1, 2, 3, 4,
	    "h", 5, 6), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* Short inside the escaped host. */
	assert_int_equal(maildir_make_name(out, 12, 1, 2, 3, 4, "h/x", 5, 6),
	    -1);
}

/* Pull S= and W= out of a delivered name. */
static void
name_sizes(const char *name, uint64_t *s, uint64_t *w)
{
	const char *p = strstr(name, ",S=");

	assert_non_null(p);
	assert_int_equal(sscanf(p, ",S=%" SCNu64 ",W=%" SCNu64, s, w), 2);
}

static void
check_delivered(const char *dir, const char *name, const char *want,
    size_t wantlen, uint64_t size_out)
{
	char path[1024];
	uint64_t s, w, lf = 0;
	struct stat st;
	size_t len, i;
	char *p;

	snprintf_checked(path, sizeof(path), "%s/new/%s", dir, name);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	p = tu_slurp(path, &len);
	assert_non_null(p);
	assert_int_equal(len, wantlen);
	assert_memory_equal(p, want, wantlen);
	free(p);
	for (i = 0; i < wantlen; i++)
		lf += want[i] == '\n';
	name_sizes(name, &s, &w);
	assert_int_equal(s, (uint64_t)st.st_size);
	assert_int_equal(w, s + lf);
	assert_int_equal(size_out, s);
	/* Nothing left behind in tmp/, nothing put in cur/. */
	snprintf_checked(path, sizeof(path), "%s/tmp", dir);
	assert_int_equal(tu_count_entries(path), 0);
	snprintf_checked(path, sizeof(path), "%s/cur", dir);
	assert_int_equal(tu_count_entries(path), 0);
}

static void
test_deliver_memory_body(void **state)
{
	struct fixture *f = *state;
	const char *prefix = "Return-Path: <bob@example.net>\n";
	const char *body = "Subject: hi\n\nline 1\nline 2\n";
	char name[256], want[256], path[1024];
	uint64_t size = 0;
	struct spool s;

	spool_init(&s, f->dir, 1 << 16);
	assert_int_equal(spool_append(&s, body, strlen(body)), 0);
	assert_int_equal(maildir_deliver(f->user, prefix, strlen(prefix), &s,
	    name, sizeof(name), &size), 0);
	snprintf_checked(want, sizeof(want), "%s%s", prefix, body);
	check_delivered(f->user, name, want, strlen(want), size);
	assert_null(strchr(name, '/'));
	assert_null(strchr(name, ':'));
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_int_equal(tu_count_entries(path), 1);
	spool_free(&s);
}

static void
test_deliver_file_body_no_prefix(void **state)
{
	struct fixture *f = *state;
	char name[256], *want;
	uint64_t size = 0;
	struct spool s;
	size_t i, n = 100000;

	want = malloc(n);
	assert_non_null(want);
	for (i = 0; i < n; i++)
		want[i] = i % 80 == 79 ? '\n' : (char)('A' + i % 26);
	spool_init(&s, f->dir, 1024);
	assert_int_equal(spool_append(&s, want, n), 0);
	assert_true(s.fd >= 0);
	assert_int_equal(maildir_deliver(f->user, NULL, 0, &s, name,
	    sizeof(name), &size), 0);
	check_delivered(f->user, name, want, n, size);
	free(want);
	spool_free(&s);
}

static void
test_two_deliveries_distinct(void **state)
{
	struct fixture *f = *state;
	char a[256], b[256], path[1024];
	struct spool s;

	spool_init(&s, f->dir, 1024);
	assert_int_equal(spool_append(&s, "x\n", 2), 0);
	assert_int_equal(maildir_deliver(f->user, "", 0, &s, a, sizeof(a),
	    NULL), 0);
	assert_int_equal(maildir_deliver(f->user, "", 0, &s, b, sizeof(b),
	    NULL), 0);
	assert_string_not_equal(a, b);
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_int_equal(tu_count_entries(path), 2);
	spool_free(&s);
}

struct deliver_job {
	const char *dir;
	const struct spool *s;
	char names[25][256];
	int rc;
};

static void *
deliver_thread(void *arg)
{
	struct deliver_job *j = arg;
	int i;

	j->rc = 0;
	for (i = 0; i < 25; i++)
		if (maildir_deliver(j->dir, "H: v\n", 5, j->s, j->names[i],
		    sizeof(j->names[i]), NULL) < 0)
			j->rc = -1;
	return NULL;
}

static void
test_concurrent_deliveries_unique(void **state)
{
	struct fixture *f = *state;
	static struct deliver_job jobs[4];
	pthread_t th[4];
	char path[1024];
	struct spool s;
	int i, k, a, b;

	spool_init(&s, f->dir, 1024);
	assert_int_equal(spool_append(&s, "body\n", 5), 0);
	for (i = 0; i < 4; i++) {
		jobs[i].dir = f->user;
		jobs[i].s = &s;
		assert_int_equal(pthread_create(&th[i], NULL, deliver_thread,
		    &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
	}
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_int_equal(tu_count_entries(path), 100);
	for (i = 0; i < 100; i++)
		for (k = i + 1; k < 100; k++) {
			a = i, b = k;
			assert_string_not_equal(jobs[a / 25].names[a % 25],
			    jobs[b / 25].names[b % 25]);
		}
	spool_free(&s);
}

static void
test_deliver_failures_leave_nothing(void **state)
{
	struct fixture *f = *state;
	char name[8], path[1024];
	struct spool s;

	spool_init(&s, f->dir, 1024);
	assert_int_equal(spool_append(&s, "x\n", 2), 0);
	/* name_out too small for the name: refused before anything lands. */
	errno = 0;
	assert_int_equal(maildir_deliver(f->user, "", 0, &s, name,
	    sizeof(name), NULL), -1);
	assert_int_equal(errno, ENAMETOOLONG);
	/* (the Maildir is created on first delivery, so it may not exist) */
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_true(tu_count_entries(path) <= 0);
	snprintf_checked(path, sizeof(path), "%s/tmp", f->user);
	assert_true(tu_count_entries(path) <= 0);
	/* The Maildir's parent is a regular file. */
	snprintf_checked(path, sizeof(path), "%s/plain", f->dir);
	assert_int_equal(tu_write_file(path, "x", 1), 0);
	snprintf_checked(path, sizeof(path), "%s/plain/alice", f->dir);
	errno = 0;
	assert_int_equal(maildir_deliver(path, "", 0, &s, NULL, 0, NULL), -1);
	assert_int_equal(errno, ENOTDIR);
	spool_free(&s);
}

static void
test_ensure_creates_tree(void **state)
{
	struct fixture *f = *state;
	static const char *const subs[] = { "cur", "new", "tmp" };
	char path[1024];
	struct stat st;
	int i;

	assert_int_equal(maildir_ensure(f->user), 0);
	assert_int_equal(maildir_ensure(f->user), 0);	/* idempotent */
	for (i = 0; i < 3; i++) {
		snprintf_checked(path, sizeof(path), "%s/%s", f->user, subs[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
		assert_int_equal(st.st_mode & 0777, 0700);
	}
	assert_int_equal(stat(f->user, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
}

static void
test_create_folder(void **state)
{
	struct fixture *f = *state;
	static const char *const subs[] = { "cur", "new", "tmp" };
	char path[1024];
	struct stat st;
	int i;

	assert_int_equal(maildir_create_folder(f->user, "Lists.buzon"), 0);
	assert_int_equal(maildir_create_folder(f->user, "Lists.buzon"), 0);
	for (i = 0; i < 3; i++) {
		snprintf_checked(path, sizeof(path), "%s/.Lists.buzon/%s",
		    f->user, subs[i]);
		assert_int_equal(stat(path, &st), 0);
		assert_true(S_ISDIR(st.st_mode));
	}
	snprintf_checked(path, sizeof(path), "%s/.Lists.buzon/maildirfolder",
	    f->user);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 0);
	/* The user's own Maildir exists too. */
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_int_equal(stat(path, &st), 0);
}

static void
test_create_folder_refusals(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
		"../x", "a/b", "", ".x", "..", ".", "a..b", "x.", "a\tb",
		"a\nb", "del\x7f",
	};
	char path[1024];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		assert_int_equal(maildir_create_folder(f->user, bad[i]), -1);
		assert_int_equal(errno, EINVAL);
	}
	assert_int_equal(maildir_create_folder(f->user, NULL), -1);
	/* Nothing was created anywhere, not even the user dir. */
	assert_int_equal(tu_count_entries(f->dir), 0);
	snprintf_checked(path, sizeof(path), "%s/x", f->dir);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_default_folders(void **state)
{
	static const char *const want[] = {
		"Sent", "Drafts", "Trash", "Junk", "Archive",
	};
	struct fixture *f = *state;
	char path[1024];
	size_t i;

	for (i = 0; i < 5; i++) {
		assert_non_null(maildir_default_folders[i]);
		assert_string_equal(maildir_default_folders[i], want[i]);
		assert_int_equal(maildir_create_folder(f->user,
		    maildir_default_folders[i]), 0);
		snprintf_checked(path, sizeof(path), "%s/.%s/maildirfolder",
		    f->user, want[i]);
		assert_int_equal(access(path, F_OK), 0);
	}
	assert_null(maildir_default_folders[5]);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_name_format_exact),
		T(test_name_too_long),
		T(test_deliver_memory_body),
		T(test_deliver_file_body_no_prefix),
		T(test_two_deliveries_distinct),
		T(test_concurrent_deliveries_unique),
		T(test_deliver_failures_leave_nothing),
		T(test_ensure_creates_tree),
		T(test_create_folder),
		T(test_create_folder_refusals),
		T(test_default_folders),
	};
#undef T

	return cmocka_run_group_tests_name("maildir", tests, NULL, NULL);
}
