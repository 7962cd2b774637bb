/*
 * test_dirwatch.c - inotify subscriptions: shared watches, one callback
 * per burst, unsubscribing from inside a callback, directory removal.
 */
#include <ev.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/dirwatch.h"

struct counter {
	int calls;
	int foreign;			/* calls with foreign set */
	struct dirwatch_sub *self;
	int remove_self;
	struct ev_loop *loop;
};

static void
on_change(struct dirwatch_sub *sub, void *arg, int foreign)
{
	struct counter *c = arg;

	(void)sub;
	c->calls++;
	c->foreign += foreign != 0;
	if (c->remove_self)
		dirwatch_remove(&c->self);
	ev_break(c->loop, EVBREAK_ALL);
}

static void
on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

/* Run the loop until a callback breaks it, or 2 s pass. */
static void
run(struct ev_loop *loop)
{
	ev_timer t;

	ev_timer_init(&t, on_timeout, 2., 0.);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

static void
touch(const char *dir, const char *name)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
}

static void
test_shared_watch_and_burst(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char dir[] = "/tmp/buzon-dirwatch-XXXXXX", p[512];
	struct counter a = { 0 }, b = { 0 };
	struct dirwatch *dw;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dw = dirwatch_new(loop);
	assert_non_null(dw);
	a.loop = b.loop = loop;
	a.self = dirwatch_add(dw, dir, on_change, &a);
	b.self = dirwatch_add(dw, dir, on_change, &b);
	assert_non_null(a.self);
	assert_non_null(b.self);
	assert_int_equal(dirwatch_nwatches(dw), 1);

	for (i = 0; i < 20; i++) {	/* a burst: one callback each */
		snprintf(p, sizeof(p), "f%d", i);
		touch(dir, p);
	}
	run(loop);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);

	/* a unsubscribes itself from its callback; b keeps the watch */
	a.remove_self = 1;
	touch(dir, "g");
	run(loop);
	assert_int_equal(a.calls, 2);
	assert_null(a.self);
	assert_int_equal(dirwatch_nwatches(dw), 1);
	touch(dir, "h");
	run(loop);
	assert_int_equal(a.calls, 2);
	assert_int_equal(b.calls, 3);

	dirwatch_remove(&b.self);
	assert_int_equal(dirwatch_nwatches(dw), 0);
	for (i = 0; i < 20; i++) {
		snprintf(p, sizeof(p), "%s/f%d", dir, i);
		unlink(p);
	}
	snprintf(p, sizeof(p), "%s/g", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/h", dir);
	unlink(p);
	rmdir(dir);
	dirwatch_free(&dw);
	assert_null(dw);
	ev_loop_destroy(loop);
}

static void
test_missing_dir(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct dirwatch *dw = dirwatch_new(loop);
	struct counter a = { 0 };

	(void)state;
	assert_non_null(dw);
	assert_null(dirwatch_add(dw, "/nonexistent/buzon", on_change, &a));
	assert_int_equal(dirwatch_nwatches(dw), 0);
	dirwatch_free(&dw);
	ev_loop_destroy(loop);
}

static void
test_dir_removed(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char dir[] = "/tmp/buzon-dirwatch-XXXXXX";
	struct counter a = { 0 };
	struct dirwatch *dw;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dw = dirwatch_new(loop);
	a.loop = loop;
	a.self = dirwatch_add(dw, dir, on_change, &a);
	assert_non_null(a.self);
	assert_int_equal(rmdir(dir), 0);
	run(loop);
	assert_true(a.calls >= 1);	/* told, so it can resync */
	dirwatch_remove(&a.self);
	assert_int_equal(dirwatch_nwatches(dw), 0);
	dirwatch_free(&dw);
	ev_loop_destroy(loop);
}

/* Announced changes are told as our own; anything else as foreign. */
static void
test_expected_changes(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	char dir[] = "/tmp/buzon-dirwatch-XXXXXX", a_[512], b_[512], n[600];
	struct counter a = { 0 };
	struct dirwatch *dw;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	dw = dirwatch_new(loop);
	a.loop = loop;
	a.self = dirwatch_add(dw, dir, on_change, &a);
	assert_non_null(a.self);
	snprintf(a_, sizeof(a_), "%s/a", dir);
	snprintf(b_, sizeof(b_), "%s/b", dir);

	/* a rename both ways announced: one call, not foreign */
	touch(dir, "a");
	run(loop);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.foreign, 1);		/* the create was not announced */
	assert_int_equal(rename(a_, b_), 0);
	dirwatch_expect(dw, a_, 0);
	dirwatch_expect(dw, b_, 1);
	run(loop);
	assert_int_equal(a.calls, 2);
	assert_int_equal(a.foreign, 1);

	/* announced unlink plus somebody else's create: foreign */
	assert_int_equal(unlink(b_), 0);
	dirwatch_expect(dw, b_, 0);
	touch(dir, "c");
	run(loop);
	assert_int_equal(a.calls, 3);
	assert_int_equal(a.foreign, 2);

	/* an announcement of the wrong kind does not hide a change */
	snprintf(n, sizeof(n), "%s/c", dir);
	dirwatch_expect(dw, n, 1);
	assert_int_equal(unlink(n), 0);
	run(loop);
	assert_int_equal(a.calls, 4);
	assert_int_equal(a.foreign, 3);

	/* many at once (the table grows), all announced: made elsewhere
	 * and renamed in, as Maildir writers do */
	{
		char other[] = "/tmp/buzon-dirwatch-XXXXXX", o[600];

		assert_non_null(mkdtemp(other));
		for (i = 0; i < 3000; i++) {
			snprintf(o, sizeof(o), "%s/m%d", other, i);
			close(open(o, O_CREAT | O_WRONLY, 0600));
			snprintf(n, sizeof(n), "%s/m%d", dir, i);
			assert_int_equal(rename(o, n), 0);
			dirwatch_expect(dw, n, 1);
		}
		run(loop);
		dirwatch_poll(dw);
		assert_true(a.calls >= 5);
		assert_int_equal(a.foreign, 3);
		rmdir(other);
	}
	for (i = 0; i < 3000; i++) {
		snprintf(n, sizeof(n), "%s/m%d", dir, i);
		unlink(n);
	}
	dirwatch_remove(&a.self);
	dirwatch_free(&dw);
	rmdir(dir);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_watch_and_burst),
		cmocka_unit_test(test_missing_dir),
		cmocka_unit_test(test_dir_removed),
		cmocka_unit_test(test_expected_changes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
