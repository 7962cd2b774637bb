/*
 * test_spool.c - store/spool.c: memory part, the switch to an unlinked
 * temp file, exact content and LF count, copying out with pread from
 * several threads at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store/spool.h"
#include "store_testutil.h"

struct fixture {
	char dir[256];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
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

/* Copy the spool into a new file under dir and read it back. */
static char *
copy_out(const struct spool *s, const char *dir, size_t *len_r)
{
	char path[512];
	char *p;
	int fd;

	snprintf_checked(path, sizeof(path), "%s/copy.XXXXXX", dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(spool_write_to(s, fd), 0);
	close(fd);
	p = tu_slurp(path, len_r);
	unlink(path);
	assert_non_null(p);
	return p;
}

static void
test_small_stays_in_memory(void **state)
{
	struct fixture *f = *state;
	struct spool s;
	size_t len;
	char *p;

	spool_init(&s, f->dir, 1024);
	assert_int_equal(spool_append(&s, "a\nb\n", 4), 0);
	assert_int_equal(spool_append(&s, "", 0), 0);
	assert_int_equal(spool_append(&s, "c", 1), 0);
	assert_int_equal(s.fd, -1);
	assert_int_equal(s.size, 5);
	assert_int_equal(s.nlines, 2);
	assert_int_equal(s.mem.len, 5);
	assert_memory_equal(s.mem.data, "a\nb\nc", 5);
	p = copy_out(&s, f->dir, &len);
	assert_int_equal(len, 5);
	assert_memory_equal(p, "a\nb\nc", 5);
	free(p);
	spool_free(&s);
}

static void
test_exactly_at_limit_stays_in_memory(void **state)
{
	struct fixture *f = *state;
	struct spool s;

	spool_init(&s, f->dir, 8);
	assert_int_equal(spool_append(&s, "12345678", 8), 0);
	assert_int_equal(s.fd, -1);
	assert_int_equal(spool_append(&s, "9", 1), 0);
	assert_true(s.fd >= 0);
	assert_int_equal(s.size, 9);
	spool_free(&s);
}

static void
test_crossing_limit_moves_to_file(void **state)
{
	struct fixture *f = *state;
	struct spool s;
	int pfd[2];
	char got[64];
	ssize_t r;
	size_t n = 0;

	spool_init(&s, f->dir, 16);
	assert_int_equal(spool_append(&s, "line one\n", 9), 0);
	assert_int_equal(s.fd, -1);
	assert_int_equal(spool_append(&s, "line two\nthree", 14), 0);
	assert_true(s.fd >= 0);
	assert_int_equal(s.mem.len, 0);
	assert_null(s.mem.data);		/* memory given back */
	assert_int_equal(spool_append(&s, "\n", 1), 0);
	assert_int_equal(s.size, 24);
	assert_int_equal(s.nlines, 3);
	/* The temp file has no name: nothing left in tmpdir. */
	assert_int_equal(tu_count_entries(f->dir), 0);

	assert_int_equal(pipe(pfd), 0);
	assert_int_equal(spool_write_to(&s, pfd[1]), 0);
	close(pfd[1]);
	while ((r = read(pfd[0], got + n, sizeof(got) - n)) > 0)
		n += (size_t)r;
	close(pfd[0]);
	assert_int_equal(n, 24);
	assert_memory_equal(got, "line one\nline two\nthree\n", 24);
	spool_free(&s);
}

static void
test_zero_limit_goes_straight_to_file(void **state)
{
	struct fixture *f = *state;
	struct spool s;
	size_t len;
	char *p;

	spool_init(&s, f->dir, 0);
	assert_int_equal(spool_append(&s, "x\n", 2), 0);
	assert_true(s.fd >= 0);
	p = copy_out(&s, f->dir, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(p, "x\n", 2);
	free(p);
	spool_free(&s);
}

/* A large body in odd-sized pieces: byte-exact copy, exact LF count. */
static void
fill_big(struct spool *s, char **ref_r, size_t *reflen_r, uint64_t *lf_r)
{
	size_t cap = 300000, len = 0, chunk, i;
	uint64_t lf = 0;
	char *ref = malloc(cap);

	assert_non_null(ref);
	for (i = 0; len < cap; i++) {
		ref[len] = (i % 61 == 60) ? '\n' : (char)('a' + i % 26);
		if (ref[len] == '\n')
			lf++;
		len++;
	}
	for (i = 0; i < len; i += chunk) {
		chunk = 1 + (i * 7919) % 5000;
		if (chunk > len - i)
			chunk = len - i;
		assert_int_equal(spool_append(s, ref + i, chunk), 0);
	}
	*ref_r = ref;
	*reflen_r = len;
	*lf_r = lf;
}

struct copy_job {
	const struct spool *s;
	char path[512];
	int rc;
};

static void *
copy_thread(void *arg)
{
	struct copy_job *j = arg;
	int fd = open(j->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

	j->rc = fd < 0 ? -1 : spool_write_to(j->s, fd);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void
test_big_body_concurrent_copies(void **state)
{
	struct fixture *f = *state;
	struct copy_job jobs[4];
	pthread_t th[4];
	struct spool s;
	uint64_t lf;
	size_t reflen, len;
	char *ref, *p;
	int i;

	spool_init(&s, f->dir, 4096);
	fill_big(&s, &ref, &reflen, &lf);
	assert_true(s.fd >= 0);
	assert_int_equal(s.size, reflen);
	assert_int_equal(s.nlines, lf);
	for (i = 0; i < 4; i++) {
		jobs[i].s = &s;
		snprintf_checked(jobs[i].path, sizeof(jobs[i].path),
		    "%s/copy%d", f->dir, i);
		assert_int_equal(pthread_create(&th[i], NULL, copy_thread,
		    &jobs[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].rc, 0);
		p = tu_slurp(jobs[i].path, &len);
		assert_non_null(p);
		assert_int_equal(len, reflen);
		assert_memory_equal(p, ref, reflen);
		free(p);
	}
	free(ref);
	spool_free(&s);
}

static void
test_reset_then_reuse(void **state)
{
	struct fixture *f = *state;
	struct spool s;
	size_t len;
	char *p;

	spool_init(&s, f->dir, 8);
	assert_int_equal(spool_append(&s, "0123456789\n", 11), 0);
	assert_true(s.fd >= 0);
	spool_reset(&s);
	assert_int_equal(s.fd, -1);
	assert_int_equal(s.size, 0);
	assert_int_equal(s.nlines, 0);
	assert_int_equal(spool_append(&s, "ab\n", 3), 0);
	assert_int_equal(s.fd, -1);
	p = copy_out(&s, f->dir, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "ab\n", 3);
	free(p);
	spool_free(&s);
}

static void
test_missing_tmpdir_fails_cleanly(void **state)
{
	struct fixture *f = *state;
	char missing[512];
	struct spool s;

	snprintf_checked(missing, sizeof(missing), "%s/nope", f->dir);
	spool_init(&s, missing, 4);
	assert_int_equal(spool_append(&s, "abc", 3), 0);
	errno = 0;
	assert_int_equal(spool_append(&s, "defg", 4), -1);
	assert_int_equal(errno, ENOENT);
	/* The failed append changed nothing. */
	assert_int_equal(s.size, 3);
	assert_int_equal(s.fd, -1);
	assert_memory_equal(s.mem.data, "abc", 3);
	spool_free(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_small_stays_in_memory,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_exactly_at_limit_stays_in_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_crossing_limit_moves_to_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_zero_limit_goes_straight_to_file, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_big_body_concurrent_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_then_reuse,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_missing_tmpdir_fails_cleanly, setup, teardown),
	};

	return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
