/*
 * test_dirsync.c - directory fsync group commit: every caller whose
 * rename happened before its call gets 0 only after an fsync that started
 * after that rename; failures are reported, never absorbed.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>
#include <cmocka.h>

#include "store/dirsync.h"

#define THREADS 16
#define PER_THREAD 20

struct worker {
	char dir[256];
	int id;
	int failures;
};

static void *
worker_run(void *arg)
{
	struct worker *w = arg;
	char from[512], to[512];
	int i, fd;

	for (i = 0; i < PER_THREAD; i++) {
		snprintf(from, sizeof(from), "%s/tmp/%d.%d", w->dir, w->id, i);
		snprintf(to, sizeof(to), "%s/new/%d.%d", w->dir, w->id, i);
		fd = open(from, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd < 0 || close(fd) < 0 || rename(from, to) < 0 ||
		    dirsync_fsync(w->dir) < 0)	/* the Maildir itself */
			w->failures++;
	}
	return NULL;
}

static void
test_concurrent_callers_all_succeed(void **state)
{
	char base[] = "/tmp/buzon-dirsync-XXXXXX", path[512];
	struct worker w[THREADS];
	pthread_t t[THREADS];
	int i, n = 0;

	(void)state;
	assert_non_null(mkdtemp(base));
	snprintf(path, sizeof(path), "%s/tmp", base);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/new", base);
	assert_int_equal(mkdir(path, 0700), 0);
	for (i = 0; i < THREADS; i++) {
		snprintf(w[i].dir, sizeof(w[i].dir), "%s", base);
		w[i].id = i;
		w[i].failures = 0;
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	/* every file is in new/ */
	for (i = 0; i < THREADS * PER_THREAD; i++) {
		struct stat st;

		snprintf(path, sizeof(path), "%s/new/%d.%d", base,
		    i / PER_THREAD, i % PER_THREAD);
		if (stat(path, &st) == 0)
			n++;
		unlink(path);
	}
	assert_int_equal(n, THREADS * PER_THREAD);
	snprintf(path, sizeof(path), "%s/new", base);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/tmp", base);
	rmdir(path);
	rmdir(base);
}

static void
test_missing_dir_fails(void **state)
{
	(void)state;
	errno = 0;
	assert_int_equal(dirsync_fsync("/nonexistent/buzon/dirsync"), -1);
	assert_int_equal(errno, ENOENT);
	/* and a good directory right after still works */
	assert_int_equal(dirsync_fsync("/tmp"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_concurrent_callers_all_succeed),
		cmocka_unit_test(test_missing_dir_fails),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
