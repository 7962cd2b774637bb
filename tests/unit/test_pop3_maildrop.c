/*
 * test_pop3_maildrop.c - pop3d/pop3_maildrop.c against a real Maildir in
 * a temp dir: the snapshot at login (new/ synced, sizes with CRLF, UIDs
 * in delivery order, \Recent left alone), UIDL values stable across
 * sessions and after flag changes, the IN-USE lock (same process, other
 * process, released when the holder dies), \Seen after RETR, and UPDATE
 * removing exactly the DELE'd messages.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>

#include "pop3d/pop3d.h"
#include "store/maildir.h"
#include "store/mbox_index.h"
#include "store_testutil.h"

struct fixture {
	char dir[256];
	char user[512];
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

/* A delivery as smtpd makes it: LF ends, ,S= and ,W= in the name. */
static void
deliver(const struct fixture *f, int n, const char *text)
{
	char path[1024], name[256];
	size_t len = strlen(text), i, lf = 0;

	for (i = 0; i < len; i++)
		if (text[i] == '\n')
			lf++;
	assert_int_equal(maildir_ensure(f->user), 0);
	assert_int_equal(maildir_make_name(name, sizeof(name), 1700000000 + n,
	    n, 4242, (unsigned long)n, "test.host", len, len + lf), 0);
	snprintf_checked(path, sizeof(path), "%s/new/%s", f->user, name);
	assert_int_equal(tu_write_file(path, text, len), 0);
}

static struct pop3_maildrop *
must_open(const struct fixture *f)
{
	struct pop3_maildrop *drop = NULL;
	char err[512] = "";

	if (pop3_maildrop_open(f->user, &drop, err, sizeof(err)) !=
	    POP3_OPEN_OK)
		fail_msg("pop3_maildrop_open: %s", err);
	return drop;
}

static void
test_snapshot(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *drop;
	struct mbox_index *idx;
	struct mbox_status st;
	struct mbox_info info;
	char err[256], u1[17], u2[17];

	deliver(f, 1, "Subject: one\n\nbody\n");
	deliver(f, 2, "Subject: two\n\n.dot\nmore\n");
	drop = must_open(f);
	assert_int_equal(drop->count, 2);
	assert_int_equal(drop->msgs[0].uid, 1);
	assert_int_equal(drop->msgs[1].uid, 2);
	/* sizes with CRLF line ends, as RETR sends them before stuffing */
	assert_int_equal(drop->msgs[0].size, 19 + 3);
	assert_int_equal(drop->msgs[1].size, 24 + 4);
	assert_int_equal(drop->size, 22 + 28);
	assert_int_equal(drop->ndeleted, 0);
	pop3_maildrop_uidl(drop, 0, u1);
	pop3_maildrop_uidl(drop, 1, u2);
	assert_int_equal(strlen(u1), 16);
	assert_memory_equal(u1 + 8, "00000001", 8);
	assert_memory_equal(u2 + 8, "00000002", 8);
	assert_memory_equal(u1, u2, 8);		/* same UIDVALIDITY */
	/* new/ was emptied into cur/ */
	{
		char nd[600];

		snprintf_checked(nd, sizeof(nd), "%s/new", f->user);
		assert_int_equal(tu_count_entries(nd), 0);
	}
	pop3_maildrop_free(&drop);
	assert_null(drop);

	/* \Recent is still there for IMAP: nobody claimed it. */
	assert_int_equal(mbox_index_open(f->user, 0, &idx, err, sizeof(err)), 0);
	assert_int_equal(mbox_find(idx, "INBOX", &info), 1);
	assert_int_equal(mbox_status(idx, info.id, &st), 0);
	assert_int_equal(st.messages, 2);
	assert_int_equal(st.recent, 2);
	mbox_index_close(&idx);

	/* Mail arriving later gets the next number in the next session. */
	deliver(f, 3, "Subject: three\n\nx\n");
	drop = must_open(f);
	assert_int_equal(drop->count, 3);
	pop3_maildrop_uidl(drop, 0, u2);
	assert_string_equal(u1, u2);	/* stable across sessions */
	pop3_maildrop_uidl(drop, 2, u2);
	assert_memory_equal(u2 + 8, "00000003", 8);
	pop3_maildrop_free(&drop);
}

static void
test_lock(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *a, *b = NULL;
	char err[256];
	int pipefd[2], status;
	pid_t pid;
	char c;

	deliver(f, 1, "Subject: one\n\nbody\n");
	a = must_open(f);
	/* A second session in the same process is refused... */
	assert_int_equal(pop3_maildrop_open(f->user, &b, err, sizeof(err)),
	    POP3_OPEN_IN_USE);
	assert_null(b);
	pop3_maildrop_free(&a);
	/* ...and allowed once the first is gone. */
	b = must_open(f);
	pop3_maildrop_free(&b);

	/* Another process holding it, then killed: the lock goes with it. */
	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct pop3_maildrop *d = NULL;

		close(pipefd[0]);
		if (pop3_maildrop_open(f->user, &d, err, sizeof(err)) !=
		    POP3_OPEN_OK)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pipefd[1]);
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	assert_int_equal(pop3_maildrop_open(f->user, &b, err, sizeof(err)),
	    POP3_OPEN_IN_USE);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	b = must_open(f);
	pop3_maildrop_free(&b);
}

static unsigned
flags_of(const struct fixture *f, uint32_t uid, int *found)
{
	struct mbox_index *idx;
	struct mbox_msglist l;
	struct mbox_info info;
	struct mbox_range one = { uid, uid };
	char err[256];
	unsigned fl = 0;

	assert_int_equal(mbox_index_open(f->user, 0, &idx, err, sizeof(err)), 0);
	assert_int_equal(mbox_find(idx, "INBOX", &info), 1);
	assert_int_equal(mbox_sync(idx, info.id, NULL), 0);
	assert_int_equal(mbox_messages(idx, info.id, &one, 1, 0, &l), 0);
	*found = (int)l.count;
	if (l.count == 1)
		fl = l.msgs[0].flags;
	mbox_msglist_free(&l);
	mbox_index_close(&idx);
	return fl;
}

static void
test_seen(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *drop;
	char err[256], u[17], u2[17];
	int found, fd;

	deliver(f, 1, "Subject: one\n\nbody\n");
	drop = must_open(f);
	assert_int_equal(drop->msgs[0].seen, 0);
	pop3_maildrop_uidl(drop, 0, u);
	assert_int_equal(pop3_maildrop_seen(drop, 0, err, sizeof(err)), 0);
	assert_int_equal(drop->msgs[0].seen, 1);
	assert_true(strstr(drop->msgs[0].fname, ":2,S") != NULL);
	/* the file can still be opened under its new name */
	assert_int_equal(pop3_maildrop_msg_open(drop, 0, &fd), 1);
	close(fd);
	pop3_maildrop_free(&drop);
	assert_true((flags_of(f, 1, &found) & MBOX_F_SEEN) != 0);
	assert_int_equal(found, 1);
	/* the flag change did not change the UIDL */
	drop = must_open(f);
	assert_int_equal(drop->msgs[0].seen, 1);
	pop3_maildrop_uidl(drop, 0, u2);
	assert_string_equal(u, u2);
	pop3_maildrop_free(&drop);
}

static void
test_update_removes_exactly_deleted(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *drop;
	struct mbox_index *idx;
	struct mbox_info info;
	struct mbox_range r2 = { 2, 2 };
	struct mbox_store_req del = { .mode = MBOX_STORE_ADD,
	    .flags = MBOX_F_DELETED };
	char err[256], cur[600];
	size_t removed;
	int found, i;

	for (i = 1; i <= 5; i++)
		deliver(f, i, "Subject: m\n\nbody\n");
	drop = must_open(f);
	assert_int_equal(drop->count, 5);
	/* Another client marks message 2 \Deleted but does not expunge. */
	assert_int_equal(mbox_index_open(f->user, 0, &idx, err, sizeof(err)), 0);
	assert_int_equal(mbox_find(idx, "INBOX", &info), 1);
	assert_int_equal(mbox_store(idx, info.id, &r2, 1, &del, NULL, NULL), 0);
	mbox_index_close(&idx);
	/* DELE 1, 3, 4 */
	drop->msgs[0].deleted = drop->msgs[2].deleted =
	    drop->msgs[3].deleted = 1;
	drop->ndeleted = 3;
	assert_int_equal(pop3_maildrop_update(drop, &removed, err,
	    sizeof(err)), 0);
	assert_int_equal(removed, 3);
	pop3_maildrop_free(&drop);
	snprintf_checked(cur, sizeof(cur), "%s/cur", f->user);
	assert_int_equal(tu_count_entries(cur), 2);
	flags_of(f, 1, &found);
	assert_int_equal(found, 0);
	assert_true((flags_of(f, 2, &found) & MBOX_F_DELETED) != 0);
	assert_int_equal(found, 1);
	flags_of(f, 5, &found);
	assert_int_equal(found, 1);
	/* UIDs are never reused: the next delivery gets 6. */
	deliver(f, 6, "Subject: new\n\nx\n");
	drop = must_open(f);
	assert_int_equal(drop->count, 3);
	assert_int_equal(drop->msgs[0].uid, 2);
	assert_int_equal(drop->msgs[1].uid, 5);
	assert_int_equal(drop->msgs[2].uid, 6);
	/* nothing DELE'd: UPDATE does nothing */
	assert_int_equal(pop3_maildrop_update(drop, &removed, err,
	    sizeof(err)), 0);
	assert_int_equal(removed, 0);
	pop3_maildrop_free(&drop);
	assert_int_equal(tu_count_entries(cur), 3);
}

static void
test_message_gone(void **state)
{
	struct fixture *f = *state;
	struct pop3_maildrop *drop;
	char path[1024];
	size_t removed;
	char err[256];
	int fd;

	deliver(f, 1, "Subject: one\n\nbody\n");
	deliver(f, 2, "Subject: two\n\nbody\n");
	drop = must_open(f);
	/* mutt deletes message 1 behind our back */
	snprintf_checked(path, sizeof(path), "%s/cur/%s", drop->dir,
	    drop->msgs[0].fname);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(pop3_maildrop_msg_open(drop, 0, &fd), 0);
	assert_int_equal(pop3_maildrop_msg_open(drop, 1, &fd), 1);
	close(fd);
	/* DELE of the vanished one and QUIT: no error, nothing else goes */
	drop->msgs[0].deleted = 1;
	drop->ndeleted = 1;
	assert_int_equal(pop3_maildrop_update(drop, &removed, err,
	    sizeof(err)), 0);
	pop3_maildrop_free(&drop);
	drop = must_open(f);
	assert_int_equal(drop->count, 1);
	assert_int_equal(drop->msgs[0].uid, 2);
	pop3_maildrop_free(&drop);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_snapshot),
		T(test_lock),
		T(test_seen),
		T(test_update_removes_exactly_deleted),
		T(test_message_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
