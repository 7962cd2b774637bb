/*
 * test_mbox_index.c - store/mbox_*.c: the per-user index against a real
 * Maildir in a temp dir: first open, sync of deliveries, files removed or
 * renamed by hand, STORE and the file names it leaves, CONDSTORE,
 * APPEND, COPY/MOVE, EXPUNGE, rebuild after loss or corruption, UID and
 * UIDVALIDITY never reused, mailbox names, RENAME (INBOX too), STATUS.
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
#include <cmocka.h>
#include <sqlite3.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "store/maildir.h"
#include "store/mbox_index.h"
#include "store_testutil.h"

struct fixture {
	char dir[256];
	char user[512];
	struct mbox_index *idx;
	int64_t inbox;
};

static struct mbox_index *
must_open(const char *user, unsigned flags)
{
	struct mbox_index *idx = NULL;
	char err[512];

	if (mbox_index_open(user, flags, &idx, err, sizeof(err)) < 0)
		fail_msg("mbox_index_open: %s", err);
	return idx;
}

static int64_t
box_id(struct mbox_index *idx, const char *name)
{
	struct mbox_info info;

	assert_int_equal(mbox_find(idx, name, &info), 1);
	return info.id;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf_checked(f->user, sizeof(f->user), "%s/example.org/alice",
	    f->dir);
	f->idx = must_open(f->user, 0);
	f->inbox = box_id(f->idx, "INBOX");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	mbox_index_close(&f->idx);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fixture *f)
{
	mbox_index_close(&f->idx);
	f->idx = must_open(f->user, 0);
	f->inbox = box_id(f->idx, "INBOX");
}

/* Deliver text into dir the way smtpd does; returns the base name. */
static void
deliver(const char *dir, const char *text, char *name, size_t namesz)
{
	uint64_t size;

	assert_int_equal(maildir_deliver(dir, text, strlen(text), NULL, name,
	    namesz, &size), 0);
}

static void
sync_ok(struct fixture *f, int64_t id, struct mbox_sync_result *res)
{
	if (mbox_sync(f->idx, id, res) < 0)
		fail_msg("mbox_sync: %s", mbox_index_error(f->idx));
}

static void
messages(struct fixture *f, int64_t id, struct mbox_msglist *l)
{
	if (mbox_messages(f->idx, id, NULL, 0, 0, l) < 0)
		fail_msg("mbox_messages: %s", mbox_index_error(f->idx));
}

/* The file name (in cur/) of the message with uid, or fail. */
static const char *
fname_of(const struct mbox_msglist *l, uint32_t uid)
{
	size_t i;

	for (i = 0; i < l->count; i++)
		if (l->msgs[i].uid == uid)
			return l->msgs[i].fname;
	fail_msg("uid %" PRIu32 " not in list", uid);
	return NULL;
}

static const char *
info_of(const char *fname)
{
	const char *c = strchr(fname, ':');

	assert_non_null(c);
	return c;
}

static void
deliver_n(struct fixture *f, int n, char names[][256])
{
	char text[64];
	int i;

	for (i = 0; i < n; i++) {
		snprintf_checked(text, sizeof(text), "Subject: %d\n\nbody %d\n",
		    i + 1, i + 1);
		deliver(f->user, text, names[i], 256);
	}
}

static void
test_first_open_creates_folders(void **state)
{
	static const char *const want[] = {
		"INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash",
	};
	static const char *const attr[] = {
		NULL, "\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash",
	};
	struct fixture *f = *state;
	struct mbox_info *list;
	char path[1024];
	size_t n, i;

	assert_int_equal(mbox_index_was_rebuilt(f->idx), 1);
	assert_int_equal(mbox_list(f->idx, &list, &n), 0);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++) {
		assert_string_equal(list[i].name, want[i]);
		if (attr[i] == NULL)
			assert_null(mbox_special_attr(list[i].special));
		else
			assert_string_equal(mbox_special_attr(list[i].special),
			    attr[i]);
		assert_int_equal(list[i].subscribed, 1);
		assert_int_equal(list[i].uidnext, 1);
		assert_true(list[i].uidvalidity > 0);
		if (i > 0) {
			snprintf_checked(path, sizeof(path), "%s/.%s/cur",
			    f->user, want[i]);
			assert_int_equal(access(path, F_OK), 0);
		}
	}
	free(list);
	snprintf_checked(path, sizeof(path), "%s/index.db", f->user);
	assert_int_equal(access(path, F_OK), 0);
	/* A second open finds it all there. */
	reopen(f);
	assert_int_equal(mbox_index_was_rebuilt(f->idx), 0);
	assert_int_equal(mbox_list(f->idx, &list, &n), 0);
	assert_int_equal(n, 6);
	free(list);
}

static void
test_sync_assigns_uids_in_order(void **state)
{
	struct fixture *f = *state;
	struct mbox_sync_result res;
	struct mbox_msglist l;
	char names[3][256], path[1024];
	size_t i;

	deliver_n(f, 3, names);
	sync_ok(f, f->inbox, &res);
	assert_int_equal(res.added, 3);
	assert_int_equal(res.expunged.count, 0);
	mbox_sync_result_free(&res);
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_int_equal(tu_count_entries(path), 0);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 3);
	for (i = 0; i < 3; i++) {
		char want[300];

		assert_int_equal(l.msgs[i].uid, i + 1);
		snprintf_checked(want, sizeof(want), "%s:2,", names[i]);
		assert_string_equal(l.msgs[i].fname, want);
		assert_int_equal(l.msgs[i].flags, 0);
		assert_string_equal(l.msgs[i].keywords, "");
		/* "Subject: N\n\nbody N\n": 19 bytes, 3 LFs. */
		assert_int_equal(l.msgs[i].fsize, 19);
		assert_int_equal(l.msgs[i].size, 22);
		assert_int_equal(mbox_msglist_path(&l, i, path, sizeof(path)), 0);
		assert_int_equal(access(path, R_OK), 0);
	}
	mbox_msglist_free(&l);
	/* Nothing new: nothing happens. */
	sync_ok(f, f->inbox, &res);
	assert_int_equal(res.added, 0);
	mbox_sync_result_free(&res);
}

static void
test_sync_expunge_by_hand_and_uids_not_reused(void **state)
{
	struct fixture *f = *state;
	struct mbox_sync_result res;
	struct mbox_uids gone = { 0 };
	struct mbox_msglist l;
	struct mbox_status st;
	char names[3][256], path[1024], more[256];
	uint64_t hms;

	deliver_n(f, 3, names);
	sync_ok(f, f->inbox, NULL);
	assert_int_equal(mbox_status(f->idx, f->inbox, &st), 0);
	hms = st.highestmodseq;
	snprintf_checked(path, sizeof(path), "%s/cur/%s:2,", f->user, names[1]);
	assert_int_equal(unlink(path), 0);
	sync_ok(f, f->inbox, &res);
	assert_int_equal(res.expunged.count, 1);
	assert_int_equal(res.expunged.uids[0], 2);
	assert_int_equal(res.expunged_seqs[0], 2);
	mbox_sync_result_free(&res);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_int_equal(l.msgs[1].uid, 3);
	mbox_msglist_free(&l);
	/* QRESYNC: the expunge is remembered with a newer modseq. */
	assert_int_equal(mbox_expunged_since(f->idx, f->inbox, hms, NULL, 0,
	    &gone), 0);
	assert_int_equal(gone.count, 1);
	assert_int_equal(gone.uids[0], 2);
	mbox_uids_free(&gone);
	/* New mail gets 4, and 5 after a reopen: never an old UID. */
	deliver(f->user, "Subject: 4\n\n", more, sizeof(more));
	sync_ok(f, f->inbox, NULL);
	reopen(f);
	deliver(f->user, "Subject: 5\n\n", more, sizeof(more));
	sync_ok(f, f->inbox, NULL);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[2].uid, 4);
	assert_int_equal(l.msgs[3].uid, 5);
	mbox_msglist_free(&l);
}

static void
test_sync_flag_renamed_by_hand(void **state)
{
	struct fixture *f = *state;
	struct mbox_sync_result res;
	struct mbox_msglist l;
	char names[2][256], from[1024], to[1024];
	uint64_t before;

	deliver_n(f, 2, names);
	sync_ok(f, f->inbox, NULL);
	messages(f, f->inbox, &l);
	before = l.msgs[0].modseq;
	mbox_msglist_free(&l);
	/* What mutt does when a message is read. */
	snprintf_checked(from, sizeof(from), "%s/cur/%s:2,", f->user, names[0]);
	snprintf_checked(to, sizeof(to), "%s/cur/%s:2,S", f->user, names[0]);
	assert_int_equal(rename(from, to), 0);
	sync_ok(f, f->inbox, &res);
	assert_int_equal(res.flag_changes, 1);
	assert_int_equal(res.added, 0);
	assert_int_equal(res.expunged.count, 0);
	mbox_sync_result_free(&res);
	messages(f, f->inbox, &l);
	assert_int_equal(l.msgs[0].flags, MBOX_F_SEEN);
	assert_true(l.msgs[0].modseq > before);
	assert_int_equal(l.msgs[1].flags, 0);
	assert_int_equal(l.msgs[1].modseq, before);
	mbox_msglist_free(&l);
	/* Only the changed one shows up with CHANGEDSINCE. */
	assert_int_equal(mbox_messages(f->idx, f->inbox, NULL, 0, before, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, 1);
	mbox_msglist_free(&l);
}

static void
store(struct fixture *f, uint32_t lo, uint32_t hi, enum mbox_store_mode mode,
    unsigned flags, const char *kw, uint64_t unchangedsince,
    struct mbox_uids *changed, struct mbox_uids *failed)
{
	struct mbox_range r = { lo, hi };
	const char *kws[1] = { kw };
	struct mbox_store_req req = {
		.mode = mode, .flags = flags, .keywords = kws,
		.nkeywords = kw != NULL ? 1 : 0,
		.unchangedsince = unchangedsince,
	};

	if (mbox_store(f->idx, f->inbox, &r, 1, &req, changed, failed) < 0)
		fail_msg("mbox_store: %s", mbox_index_error(f->idx));
}

static void
test_store_renames_files(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids changed = { 0 };
	struct mbox_msglist l;
	char names[2][256], path[1024], *kwfile;

	deliver_n(f, 2, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_SEEN | MBOX_F_FLAGGED, "$Junk", 0,
	    &changed, NULL);
	assert_int_equal(changed.count, 1);
	assert_int_equal(changed.uids[0], 1);
	mbox_uids_free(&changed);
	messages(f, f->inbox, &l);
	assert_string_equal(info_of(fname_of(&l, 1)), ":2,FSa");
	assert_string_equal(l.msgs[0].keywords, "$Junk");
	assert_int_equal(l.msgs[0].flags, MBOX_F_SEEN | MBOX_F_FLAGGED);
	snprintf_checked(path, sizeof(path), "%s/cur/%s:2,FSa", f->user,
	    names[0]);
	assert_int_equal(access(path, F_OK), 0);
	mbox_msglist_free(&l);
	snprintf_checked(path, sizeof(path), "%s/dovecot-keywords", f->user);
	kwfile = tu_slurp(path, NULL);
	assert_non_null(kwfile);
	assert_string_equal(kwfile, "0 $Junk\n");
	free(kwfile);
	/* Remove \Seen, add a second keyword and answer/delete/draft. */
	store(f, 1, 2, MBOX_STORE_REMOVE, MBOX_F_SEEN, NULL, 0, &changed, NULL);
	assert_int_equal(changed.count, 1);	/* 2 had no \Seen */
	mbox_uids_free(&changed);
	store(f, 1, 2, MBOX_STORE_ADD, MBOX_F_ANSWERED | MBOX_F_DELETED |
	    MBOX_F_DRAFT, "work", 0, &changed, NULL);
	assert_int_equal(changed.count, 2);
	mbox_uids_free(&changed);
	messages(f, f->inbox, &l);
	assert_string_equal(info_of(fname_of(&l, 1)), ":2,DFRTab");
	assert_string_equal(info_of(fname_of(&l, 2)), ":2,DRTb");
	assert_string_equal(l.msgs[0].keywords, "$Junk work");
	mbox_msglist_free(&l);
	/* SET replaces everything; keywords compare caselessly. */
	store(f, 1, 1, MBOX_STORE_SET, MBOX_F_SEEN, "WORK", 0, &changed, NULL);
	mbox_uids_free(&changed);
	messages(f, f->inbox, &l);
	assert_string_equal(info_of(fname_of(&l, 1)), ":2,Sb");
	assert_int_equal(l.msgs[0].flags, MBOX_F_SEEN);
	mbox_msglist_free(&l);
	/* The mailbox knows both keywords (FLAGS response). */
	{
		char **kws;
		size_t n;

		assert_int_equal(mbox_keywords(f->idx, f->inbox, &kws, &n), 0);
		assert_int_equal(n, 2);
		assert_string_equal(kws[0], "$Junk");
		assert_string_equal(kws[1], "work");
		mbox_strings_free(kws, n);
	}
	/* Invalid keywords are refused. */
	{
		struct mbox_range r = { 1, 1 };
		const char *bad[1] = { "a b" };
		struct mbox_store_req req = {
			.mode = MBOX_STORE_ADD, .keywords = bad, .nkeywords = 1,
		};

		assert_int_equal(mbox_store(f->idx, f->inbox, &r, 1, &req,
		    NULL, NULL), -1);
		assert_int_equal(errno, EINVAL);
	}
}

static void
test_store_keeps_foreign_flags(void **state)
{
	struct fixture *f = *state;
	struct mbox_msglist l;
	char names[1][256], from[1024], to[1024];

	deliver_n(f, 1, names);
	sync_ok(f, f->inbox, NULL);
	/* 'P' (passed) is not ours: it must survive our renames. */
	snprintf_checked(from, sizeof(from), "%s/cur/%s:2,", f->user, names[0]);
	snprintf_checked(to, sizeof(to), "%s/cur/%s:2,P", f->user, names[0]);
	assert_int_equal(rename(from, to), 0);
	sync_ok(f, f->inbox, NULL);
	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_SEEN | MBOX_F_ANSWERED, NULL, 0,
	    NULL, NULL);
	messages(f, f->inbox, &l);
	assert_string_equal(info_of(l.msgs[0].fname), ":2,PRS");
	mbox_msglist_free(&l);
}

static void
test_unchangedsince(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids changed = { 0 }, failed = { 0 };
	struct mbox_msglist l;
	char names[2][256];
	uint64_t m1;

	deliver_n(f, 2, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_FLAGGED, NULL, 0, NULL, NULL);
	messages(f, f->inbox, &l);
	m1 = l.msgs[0].modseq;
	assert_true(m1 > l.msgs[1].modseq);
	mbox_msglist_free(&l);
	/* UNCHANGEDSINCE below message 1's modseq: 1 fails, 2 changes. */
	store(f, 1, 2, MBOX_STORE_ADD, MBOX_F_SEEN, NULL, m1 - 1, &changed,
	    &failed);
	assert_int_equal(failed.count, 1);
	assert_int_equal(failed.uids[0], 1);
	assert_int_equal(changed.count, 1);
	assert_int_equal(changed.uids[0], 2);
	mbox_uids_free(&changed);
	mbox_uids_free(&failed);
	messages(f, f->inbox, &l);
	assert_int_equal(l.msgs[0].flags, MBOX_F_FLAGGED);
	assert_string_equal(info_of(l.msgs[0].fname), ":2,F");
	assert_int_equal(l.msgs[0].modseq, m1);
	assert_int_equal(l.msgs[1].flags, MBOX_F_SEEN);
	mbox_msglist_free(&l);
}

static void
test_append(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Subject: appended\r\n\r\nline\r\n";
	const char *kws[1] = { "$Forwarded" };
	struct mbox_append_req req = {
		.flags = MBOX_F_SEEN | MBOX_F_DRAFT, .keywords = kws,
		.nkeywords = 1, .internaldate = 1600000000,
	};
	struct mbox_msglist l;
	struct stat st;
	char path[1024], *body;
	uint32_t uid = 0, uv = 0;
	size_t len;
	int64_t drafts = box_id(f->idx, "Drafts");

	assert_int_equal(mbox_append(f->idx, drafts, msg, strlen(msg), &req,
	    &uid, &uv), 0);
	assert_int_equal(uid, 1);
	assert_true(uv > 0);
	assert_int_equal(mbox_append(f->idx, drafts, msg, strlen(msg), &req,
	    &uid, NULL), 0);
	assert_int_equal(uid, 2);
	messages(f, drafts, &l);
	assert_int_equal(l.count, 2);
	assert_string_equal(info_of(l.msgs[0].fname), ":2,DSa");
	assert_string_equal(l.msgs[0].keywords, "$Forwarded");
	assert_int_equal(l.msgs[0].internaldate, 1600000000);
	assert_int_equal(l.msgs[0].size, strlen(msg));
	assert_int_equal(l.msgs[0].fsize, strlen(msg) - 3);
	assert_int_equal(mbox_msglist_path(&l, 0, path, sizeof(path)), 0);
	assert_non_null(strstr(path, "/.Drafts/cur/"));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mtime, 1600000000);
	body = tu_slurp(path, &len);
	assert_non_null(body);
	assert_string_equal(body, "Subject: appended\n\nline\n");
	free(body);
	/* The name carries the sizes, as deliveries do. */
	if (strstr(l.msgs[0].fname, ",S=24,W=27:2,") == NULL)
		fail_msg("name %s", l.msgs[0].fname);
	mbox_msglist_free(&l);
	snprintf_checked(path, sizeof(path), "%s/.Drafts/tmp", f->user);
	assert_int_equal(tu_count_entries(path), 0);
	/* A sync afterwards changes nothing. */
	{
		struct mbox_sync_result res;

		sync_ok(f, drafts, &res);
		assert_int_equal(res.added, 0);
		assert_int_equal(res.flag_changes, 0);
		assert_int_equal(res.expunged.count, 0);
		mbox_sync_result_free(&res);
	}
}

static void
test_append_fd_and_quota(void **state)
{
	struct fixture *f = *state;
	struct mbox_append_req req = { 0 };
	char path[1024], big[4096];
	uint32_t uid;
	int fd;

	snprintf_checked(path, sizeof(path), "%s/in.eml", f->dir);
	assert_int_equal(tu_write_file(path, "A: b\r\n\r\nc\r\n", 11), 0);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(mbox_append_fd(f->idx, f->inbox, fd, &req, &uid, NULL),
	    0);
	close(fd);
	assert_int_equal(uid, 1);
	/* 1000 bytes of quota: a 4K message does not fit. */
	mbox_index_set_quota(f->idx, 1000);
	memset(big, 'x', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	errno = 0;
	assert_int_equal(mbox_append(f->idx, f->inbox, big, sizeof(big), &req,
	    &uid, NULL), -1);
	assert_int_equal(errno, EDQUOT);
	snprintf_checked(path, sizeof(path), "%s/tmp", f->user);
	assert_int_equal(tu_count_entries(path), 0);
	assert_int_equal(mbox_append(f->idx, f->inbox, "x\n", 2, &req, &uid,
	    NULL), 0);
	assert_int_equal(uid, 2);
}

static void
test_copy_and_move(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids su = { 0 }, du = { 0 }, gone = { 0 };
	struct mbox_range all = { 1, UINT32_MAX }, two = { 2, 3 };
	struct mbox_msglist l;
	struct stat a, b;
	char names[3][256], pa[1024], pb[1024];
	int64_t archive = box_id(f->idx, "Archive");
	int64_t trash = box_id(f->idx, "Trash");
	uint32_t uv = 0;
	struct mbox_info ai;

	deliver_n(f, 3, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_FLAGGED, "$label1", 0, NULL, NULL);
	/* Give Archive a different first keyword: letters are per folder. */
	{
		struct mbox_append_req req = { 0 };
		const char *k[1] = { "other" };
		uint32_t uid;

		req.keywords = k;
		req.nkeywords = 1;
		assert_int_equal(mbox_append(f->idx, archive, "x\n", 2, &req,
		    &uid, NULL), 0);
	}
	assert_int_equal(mbox_copy(f->idx, f->inbox, &all, 1, archive, &su, &du,
	    &uv), 0);
	assert_int_equal(mbox_get(f->idx, archive, &ai), 1);
	assert_int_equal(uv, ai.uidvalidity);
	assert_int_equal(su.count, 3);
	assert_int_equal(du.count, 3);
	assert_int_equal(su.uids[0], 1);
	assert_int_equal(du.uids[0], 2);
	assert_int_equal(du.uids[2], 4);
	mbox_uids_free(&su);
	mbox_uids_free(&du);
	messages(f, archive, &l);
	assert_int_equal(l.count, 4);
	assert_int_equal(l.msgs[1].flags, MBOX_F_FLAGGED);
	assert_string_equal(l.msgs[1].keywords, "$label1");
	assert_string_equal(info_of(l.msgs[1].fname), ":2,Fb");
	assert_int_equal(mbox_msglist_path(&l, 1, pb, sizeof(pb)), 0);
	mbox_msglist_free(&l);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 3);
	assert_int_equal(mbox_msglist_path(&l, 0, pa, sizeof(pa)), 0);
	mbox_msglist_free(&l);
	/* A hard link: same inode, the original still there. */
	assert_int_equal(stat(pa, &a), 0);
	assert_int_equal(stat(pb, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);

	/* MOVE 2:3 to Trash: gone from INBOX, expunged with a modseq. */
	assert_int_equal(mbox_move(f->idx, f->inbox, &two, 1, trash, &su, &du,
	    NULL), 0);
	assert_int_equal(su.count, 2);
	assert_int_equal(su.uids[0], 2);
	assert_int_equal(su.uids[1], 3);
	assert_int_equal(du.uids[0], 1);
	assert_int_equal(du.uids[1], 2);
	mbox_uids_free(&su);
	mbox_uids_free(&du);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, 1);
	mbox_msglist_free(&l);
	messages(f, trash, &l);
	assert_int_equal(l.count, 2);
	mbox_msglist_free(&l);
	assert_int_equal(mbox_expunged_since(f->idx, f->inbox, 0, NULL, 0,
	    &gone), 0);
	assert_int_equal(gone.count, 2);
	mbox_uids_free(&gone);
	snprintf_checked(pa, sizeof(pa), "%s/cur", f->user);
	assert_int_equal(tu_count_entries(pa), 1);
	/* COPY of UIDs that do not exist copies nothing. */
	assert_int_equal(mbox_copy(f->idx, f->inbox, &two, 1, archive, &su, &du,
	    NULL), 0);
	assert_int_equal(su.count, 0);
	mbox_uids_free(&su);
	mbox_uids_free(&du);
}

static void
test_expunge(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids gone = { 0 };
	struct mbox_range r3 = { 3, 3 };
	struct mbox_msglist l;
	char names[4][256], path[1024];

	deliver_n(f, 4, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 2, 3, MBOX_STORE_ADD, MBOX_F_DELETED, NULL, 0, NULL, NULL);
	/* UID EXPUNGE 3: only 3. */
	assert_int_equal(mbox_expunge(f->idx, f->inbox, &r3, 1, &gone), 0);
	assert_int_equal(gone.count, 1);
	assert_int_equal(gone.uids[0], 3);
	mbox_uids_free(&gone);
	/* EXPUNGE: the remaining \Deleted one. */
	assert_int_equal(mbox_expunge(f->idx, f->inbox, NULL, 0, &gone), 0);
	assert_int_equal(gone.count, 1);
	assert_int_equal(gone.uids[0], 2);
	mbox_uids_free(&gone);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 2);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_int_equal(l.msgs[1].uid, 4);
	mbox_msglist_free(&l);
	snprintf_checked(path, sizeof(path), "%s/cur", f->user);
	assert_int_equal(tu_count_entries(path), 2);
}

/* POP3's UPDATE: exactly the listed UIDs, whatever their flags. */
static void
test_expunge_uids(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids gone = { 0 };
	struct mbox_range set[2] = { { 1, 1 }, { 3, 4 } };
	struct mbox_msglist l;
	char names[4][256], path[1024];
	uint64_t before, after;

	deliver_n(f, 4, names);
	sync_ok(f, f->inbox, NULL);
	/* 2 is \Deleted by someone else: not ours to expunge. */
	store(f, 2, 2, MBOX_STORE_ADD, MBOX_F_DELETED, NULL, 0, NULL, NULL);
	assert_int_equal(mbox_highestmodseq(f->idx, f->inbox, &before), 0);
	assert_int_equal(mbox_expunge_uids(f->idx, f->inbox, set, 2, &gone), 0);
	assert_int_equal(gone.count, 3);
	assert_int_equal(gone.uids[0], 1);
	assert_int_equal(gone.uids[1], 3);
	assert_int_equal(gone.uids[2], 4);
	mbox_uids_free(&gone);
	/* One modseq for the whole expunge, no flag change before it. */
	assert_int_equal(mbox_highestmodseq(f->idx, f->inbox, &after), 0);
	assert_int_equal(after, before + 1);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].uid, 2);
	mbox_msglist_free(&l);
	snprintf_checked(path, sizeof(path), "%s/cur", f->user);
	assert_int_equal(tu_count_entries(path), 1);
}

/* Rebuild: the same flags and keywords, a new UIDVALIDITY. */
static void
check_rebuilt(struct fixture *f, uint32_t old_uv)
{
	struct mbox_msglist l;
	struct mbox_info info;

	assert_int_equal(mbox_index_was_rebuilt(f->idx), 1);
	assert_int_equal(mbox_find(f->idx, "INBOX", &info), 1);
	assert_true(info.uidvalidity > old_uv);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 3);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_int_equal(l.msgs[0].flags, MBOX_F_SEEN | MBOX_F_FLAGGED);
	assert_string_equal(l.msgs[0].keywords, "$Important");
	assert_int_equal(l.msgs[1].flags, MBOX_F_ANSWERED);
	assert_int_equal(l.msgs[2].flags, 0);
	assert_int_equal(l.msgs[2].uid, 3);
	mbox_msglist_free(&l);
	/* Subscriptions came back from the subscriptions file. */
	assert_int_equal(mbox_find(f->idx, "Lists", &info), 1);
	assert_int_equal(info.subscribed, 1);
}

static uint32_t
prepare_for_rebuild(struct fixture *f)
{
	struct mbox_info info;
	char names[3][256];

	deliver_n(f, 3, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_SEEN | MBOX_F_FLAGGED,
	    "$Important", 0, NULL, NULL);
	store(f, 2, 2, MBOX_STORE_ADD, MBOX_F_ANSWERED, NULL, 0, NULL, NULL);
	assert_int_equal(mbox_create(f->idx, "Lists", MBOX_SPECIAL_NONE), 0);
	assert_int_equal(mbox_subscribe(f->idx, "Lists", 1), 0);
	assert_int_equal(mbox_find(f->idx, "INBOX", &info), 1);
	return info.uidvalidity;
}

static void
test_rebuild_when_missing(void **state)
{
	struct fixture *f = *state;
	uint32_t uv = prepare_for_rebuild(f);
	char path[1024];

	mbox_index_close(&f->idx);
	snprintf_checked(path, sizeof(path), "%s/index.db", f->user);
	assert_int_equal(unlink(path), 0);
	f->idx = must_open(f->user, 0);
	f->inbox = box_id(f->idx, "INBOX");
	check_rebuilt(f, uv);
}

static void
test_rebuild_when_corrupt(void **state)
{
	struct fixture *f = *state;
	uint32_t uv = prepare_for_rebuild(f);
	char path[1024], junk[8192];

	mbox_index_close(&f->idx);
	snprintf_checked(path, sizeof(path), "%s/index.db", f->user);
	memset(junk, 'Z', sizeof(junk));
	assert_int_equal(tu_write_file(path, junk, sizeof(junk)), 0);
	f->idx = must_open(f->user, 0);
	f->inbox = box_id(f->idx, "INBOX");
	check_rebuilt(f, uv);
	snprintf_checked(path, sizeof(path), "%s/index.db.corrupt", f->user);
	assert_int_equal(access(path, F_OK), 0);
}

static void
test_rebuild_on_check(void **state)
{
	struct fixture *f = *state;
	uint32_t uv = prepare_for_rebuild(f);
	char path[1024];
	int fd;

	/* Damage a page in the middle: the header still reads fine. */
	mbox_index_close(&f->idx);
	snprintf_checked(path, sizeof(path), "%s/index.db", f->user);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	{
		char junk[4096];
		struct stat st;
		off_t off;

		memset(junk, 0xa5, sizeof(junk));
		assert_int_equal(fstat(fd, &st), 0);
		for (off = 4096; off < st.st_size; off += 8192)
			assert_int_equal(pwrite(fd, junk, sizeof(junk), off),
			    (ssize_t)sizeof(junk));
	}
	close(fd);
	f->idx = must_open(f->user, MBOX_OPEN_CHECK);
	f->inbox = box_id(f->idx, "INBOX");
	check_rebuilt(f, uv);
}

static void
test_name_validation(void **state)
{
	static const char *const bad[] = {
		"../x", "a/b", ".x", "x.", "a..b", "", "a\tb", "a\nb",
		"a\x7f", "*", "a%", "..", ".", "\xff\xfe",
	};
	struct fixture *f = *state;
	char longname[MBOX_NAME_MAX + 2];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(mbox_name_valid(bad[i]), 0);
		errno = 0;
		assert_int_equal(mbox_create(f->idx, bad[i], MBOX_SPECIAL_NONE),
		    -1);
		assert_int_equal(errno, EINVAL);
	}
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(mbox_create(f->idx, longname, MBOX_SPECIAL_NONE), -1);
	assert_int_equal(mbox_name_valid("a.b.c"), 1);
	assert_int_equal(mbox_name_valid("caf\xc3\xa9"), 1);
	/* INBOX in any case exists already. */
	errno = 0;
	assert_int_equal(mbox_create(f->idx, "inbox", MBOX_SPECIAL_NONE), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(mbox_create(f->idx, "Sent", MBOX_SPECIAL_NONE), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(mbox_delete(f->idx, "Inbox"), -1);
	assert_int_equal(errno, EPERM);
	assert_int_equal(box_id(f->idx, "iNbOx"), f->inbox);
}

static void
test_utf8_name_on_disk(void **state)
{
	struct fixture *f = *state;
	struct mbox_info *list;
	char path[1024];
	size_t n, i;
	int found = 0;

	assert_int_equal(mbox_create(f->idx, "Caf\xc3\xa9.R&D",
	    MBOX_SPECIAL_NONE), 0);
	snprintf_checked(path, sizeof(path), "%s/.Caf&AOk-.R&-D/cur", f->user);
	assert_int_equal(access(path, F_OK), 0);
	mbox_index_close(&f->idx);
	/* A rebuild reads the name back from the directory. */
	snprintf_checked(path, sizeof(path), "%s/index.db", f->user);
	assert_int_equal(unlink(path), 0);
	f->idx = must_open(f->user, 0);
	assert_int_equal(mbox_list(f->idx, &list, &n), 0);
	for (i = 0; i < n; i++)
		found += strcmp(list[i].name, "Caf\xc3\xa9.R&D") == 0;
	free(list);
	assert_int_equal(found, 1);
}

static void
test_rename_inbox(void **state)
{
	struct fixture *f = *state;
	struct mbox_msglist l;
	struct mbox_status st;
	char names[3][256], path[1024];
	int64_t old;

	deliver_n(f, 3, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 2, 2, MBOX_STORE_ADD, MBOX_F_SEEN, "kw", 0, NULL, NULL);
	assert_int_equal(mbox_rename(f->idx, "INBOX", "Old"), 0);
	old = box_id(f->idx, "Old");
	assert_true(old != f->inbox);
	messages(f, old, &l);
	assert_int_equal(l.count, 3);
	assert_int_equal(l.msgs[0].uid, 1);
	assert_int_equal(l.msgs[2].uid, 3);
	assert_int_equal(l.msgs[1].flags, MBOX_F_SEEN);
	assert_string_equal(l.msgs[1].keywords, "kw");
	mbox_msglist_free(&l);
	assert_int_equal(mbox_status(f->idx, f->inbox, &st), 0);
	assert_int_equal(st.messages, 0);
	assert_int_equal(st.uidnext, 4);	/* INBOX's UIDs are not reused */
	snprintf_checked(path, sizeof(path), "%s/cur", f->user);
	assert_int_equal(tu_count_entries(path), 0);
	snprintf_checked(path, sizeof(path), "%s/.Old/cur", f->user);
	assert_int_equal(tu_count_entries(path), 3);
}

static void
test_rename_with_children(void **state)
{
	struct fixture *f = *state;
	struct mbox_info info;
	struct mbox_msglist l;
	char path[1024];
	uint32_t uv, uid;
	struct mbox_append_req req = { 0 };

	assert_int_equal(mbox_create(f->idx, "Work", MBOX_SPECIAL_NONE), 0);
	assert_int_equal(mbox_create(f->idx, "Work.2024", MBOX_SPECIAL_NONE), 0);
	assert_int_equal(mbox_subscribe(f->idx, "Work.2024", 1), 0);
	assert_int_equal(mbox_append(f->idx, box_id(f->idx, "Work.2024"),
	    "x\n", 2, &req, &uid, NULL), 0);
	assert_int_equal(mbox_find(f->idx, "Work", &info), 1);
	assert_int_equal(info.has_children, 1);
	assert_int_equal(mbox_find(f->idx, "Work.2024", &info), 1);
	uv = info.uidvalidity;
	/* Into itself, or onto an existing name: refused. */
	assert_int_equal(mbox_rename(f->idx, "Work", "Work.x"), -1);
	assert_int_equal(mbox_rename(f->idx, "Work", "Sent"), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(mbox_rename(f->idx, "Nope", "Other"), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(mbox_rename(f->idx, "Work", "Job"), 0);
	assert_int_equal(mbox_find(f->idx, "Work", &info), 0);
	assert_int_equal(mbox_find(f->idx, "Work.2024", &info), 0);
	assert_int_equal(mbox_find(f->idx, "Job.2024", &info), 1);
	assert_int_equal(info.uidvalidity, uv);
	assert_int_equal(info.subscribed, 1);
	messages(f, info.id, &l);
	assert_int_equal(l.count, 1);
	assert_int_equal(mbox_msglist_path(&l, 0, path, sizeof(path)), 0);
	assert_int_equal(access(path, F_OK), 0);
	mbox_msglist_free(&l);
	snprintf_checked(path, sizeof(path), "%s/.Job.2024/cur", f->user);
	assert_int_equal(access(path, F_OK), 0);
	snprintf_checked(path, sizeof(path), "%s/.Work", f->user);
	assert_int_equal(access(path, F_OK), -1);
}

static void
test_delete_recreate_new_uidvalidity(void **state)
{
	struct fixture *f = *state;
	struct mbox_info info;
	struct mbox_append_req req = { 0 };
	char path[1024];
	uint32_t uv, uid;

	assert_int_equal(mbox_create(f->idx, "Tmp", MBOX_SPECIAL_NONE), 0);
	assert_int_equal(mbox_find(f->idx, "Tmp", &info), 1);
	uv = info.uidvalidity;
	assert_int_equal(mbox_append(f->idx, info.id, "x\n", 2, &req, &uid,
	    NULL), 0);
	assert_int_equal(mbox_delete(f->idx, "Tmp"), 0);
	snprintf_checked(path, sizeof(path), "%s/.Tmp", f->user);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(mbox_find(f->idx, "Tmp", &info), 0);
	assert_int_equal(mbox_delete(f->idx, "Tmp"), -1);
	assert_int_equal(errno, ENOENT);
	/* Same second, still a different UIDVALIDITY; UIDs from 1 again. */
	assert_int_equal(mbox_create(f->idx, "Tmp", MBOX_SPECIAL_NONE), 0);
	assert_int_equal(mbox_find(f->idx, "Tmp", &info), 1);
	assert_true(info.uidvalidity > uv);
	assert_int_equal(info.uidnext, 1);
	/* And never one seen before, even across a reopen. */
	reopen(f);
	assert_int_equal(mbox_create(f->idx, "Tmp2", MBOX_SPECIAL_NONE), 0);
	uv = info.uidvalidity;
	assert_int_equal(mbox_find(f->idx, "Tmp2", &info), 1);
	assert_true(info.uidvalidity > uv);
}

static void
test_folder_made_by_another_program(void **state)
{
	struct fixture *f = *state;
	struct mbox_info info;
	char path[1024];

	assert_int_equal(maildir_create_folder(f->user, "Mutt"), 0);
	assert_int_equal(mbox_find(f->idx, "Mutt", &info), 0);
	{
		struct mbox_info *list;
		size_t n;

		assert_int_equal(mbox_list(f->idx, &list, &n), 0);
		free(list);
	}
	assert_int_equal(mbox_find(f->idx, "Mutt", &info), 1);
	snprintf_checked(path, sizeof(path), "%s/.Mutt", f->user);
	tu_rmrf(path);
	{
		struct mbox_info *list;
		size_t n;

		assert_int_equal(mbox_list(f->idx, &list, &n), 0);
		free(list);
	}
	assert_int_equal(mbox_find(f->idx, "Mutt", &info), 0);
}

static void
test_status_and_recent(void **state)
{
	struct fixture *f = *state;
	struct mbox_status st;
	char names[3][256];
	uint32_t first, next;

	deliver_n(f, 3, names);
	sync_ok(f, f->inbox, NULL);
	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_SEEN, NULL, 0, NULL, NULL);
	assert_int_equal(mbox_status(f->idx, f->inbox, &st), 0);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.unseen, 2);
	assert_int_equal(st.recent, 3);
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(st.size, 3 * 22);
	assert_true(st.highestmodseq >= 3);
	assert_true(st.uidvalidity > 0);
	/* The first session to claim gets them; nobody else does. */
	assert_int_equal(mbox_claim_recent(f->idx, f->inbox, &first, &next), 0);
	assert_int_equal(first, 1);
	assert_int_equal(next, 4);
	assert_int_equal(mbox_claim_recent(f->idx, f->inbox, &first, &next), 0);
	assert_int_equal(first, next);
	assert_int_equal(mbox_status(f->idx, f->inbox, &st), 0);
	assert_int_equal(st.recent, 0);
}

static void
test_quick_sync_and_open_after_rename(void **state)
{
	struct fixture *f = *state;
	struct mbox_sync_result res;
	struct timeval old[2] = { { 1000000000, 0 }, { 1000000000, 0 } };
	char names[2][256], path[1024], from[1024], to[1024];
	int fd = -1;

	deliver_n(f, 2, names);
	sync_ok(f, f->inbox, NULL);
	/* Directories last changed long ago: the stamps are trusted. */
	snprintf_checked(path, sizeof(path), "%s/cur", f->user);
	assert_int_equal(utimes(path, old), 0);
	snprintf_checked(path, sizeof(path), "%s/new", f->user);
	assert_int_equal(utimes(path, old), 0);
	sync_ok(f, f->inbox, &res);
	assert_int_equal(res.full_scan, 1);
	mbox_sync_result_free(&res);
	sync_ok(f, f->inbox, &res);
	assert_int_equal(res.full_scan, 0);
	mbox_sync_result_free(&res);
	/* Renamed behind our back: opening it still works (one resync). */
	snprintf_checked(from, sizeof(from), "%s/cur/%s:2,", f->user, names[1]);
	snprintf_checked(to, sizeof(to), "%s/cur/%s:2,RS", f->user, names[1]);
	assert_int_equal(rename(from, to), 0);
	assert_int_equal(mbox_msg_open(f->idx, f->inbox, 2, &fd), 1);
	assert_true(fd >= 0);
	close(fd);
	/* Removed: 0, not an error. */
	assert_int_equal(unlink(to), 0);
	assert_int_equal(mbox_msg_open(f->idx, f->inbox, 2, &fd), 0);
	assert_int_equal(mbox_msg_open(f->idx, f->inbox, 99, &fd), 0);
}

static void
test_two_handles(void **state)
{
	struct fixture *f = *state;
	struct mbox_index *other = must_open(f->user, 0);
	struct mbox_msglist l;
	struct mbox_uids gone = { 0 };
	struct mbox_status st;
	char names[2][256];
	uint64_t seen;

	deliver_n(f, 2, names);
	sync_ok(f, f->inbox, NULL);
	assert_int_equal(mbox_status(other, f->inbox, &st), 0);
	assert_int_equal(st.messages, 2);
	seen = st.highestmodseq;
	/* One session stores and expunges; the other catches up by modseq. */
	store(f, 1, 2, MBOX_STORE_ADD, MBOX_F_DELETED, NULL, 0, NULL, NULL);
	{
		struct mbox_range r = { 2, 2 };

		assert_int_equal(mbox_expunge(f->idx, f->inbox, &r, 1, NULL), 0);
	}
	assert_int_equal(mbox_sync(other, f->inbox, NULL), 0);
	assert_int_equal(mbox_messages(other, f->inbox, NULL, 0, seen, &l), 0);
	assert_int_equal(l.count, 1);
	assert_int_equal(l.msgs[0].flags, MBOX_F_DELETED);
	mbox_msglist_free(&l);
	assert_int_equal(mbox_expunged_since(other, f->inbox, seen, NULL, 0,
	    &gone), 0);
	assert_int_equal(gone.count, 1);
	assert_int_equal(gone.uids[0], 2);
	mbox_uids_free(&gone);
	mbox_index_close(&other);
}

static void
test_cache_fields(void **state)
{
	struct fixture *f = *state;
	char names[1][256], *text = NULL;

	deliver_n(f, 1, names);
	sync_ok(f, f->inbox, NULL);
	assert_int_equal(mbox_cache_get(f->idx, f->inbox, 1,
	    MBOX_CACHE_ENVELOPE, &text), 0);
	assert_null(text);
	assert_int_equal(mbox_cache_set(f->idx, f->inbox, 1,
	    MBOX_CACHE_ENVELOPE, "(NIL \"1\")", 9), 1);
	assert_int_equal(mbox_cache_set(f->idx, f->inbox, 1,
	    MBOX_CACHE_BODYSTRUCTURE, "(\"TEXT\")", 8), 1);
	assert_int_equal(mbox_cache_set(f->idx, f->inbox, 7,
	    MBOX_CACHE_BODYSTRUCTURE, "x", 1), 0);
	assert_int_equal(mbox_cache_get(f->idx, f->inbox, 1,
	    MBOX_CACHE_ENVELOPE, &text), 1);
	assert_string_equal(text, "(NIL \"1\")");
	free(text);
	assert_int_equal(mbox_cache_get(f->idx, f->inbox, 1,
	    MBOX_CACHE_BODYSTRUCTURE, &text), 1);
	assert_string_equal(text, "(\"TEXT\")");
	free(text);
}

static void
test_subscriptions(void **state)
{
	struct fixture *f = *state;
	char **names;
	size_t n, i;
	int ghost = 0;

	/* RFC 3501: subscribing to a name that does not exist is fine. */
	assert_int_equal(mbox_subscribe(f->idx, "Ghost", 1), 0);
	assert_int_equal(mbox_subscribe(f->idx, "Junk", 0), 0);
	assert_int_equal(mbox_subscribe(f->idx, "a/b", 1), -1);
	assert_int_equal(mbox_subscriptions(f->idx, &names, &n), 0);
	assert_int_equal(n, 6);
	for (i = 0; i < n; i++) {
		ghost += strcmp(names[i], "Ghost") == 0;
		assert_string_not_equal(names[i], "Junk");
	}
	mbox_strings_free(names, n);
	assert_int_equal(ghost, 1);
}

static void
test_duplicate_base_and_bare_cur_file(void **state)
{
	struct fixture *f = *state;
	struct mbox_msglist l;
	char path[1024];

	/* Two different files with one base, and one without any info. */
	snprintf_checked(path, sizeof(path), "%s/cur/100.M1P1Q1.h:2,", f->user);
	assert_int_equal(tu_write_file(path, "A: 1\n\n", 6), 0);
	snprintf_checked(path, sizeof(path), "%s/cur/100.M1P1Q1.h:2,S", f->user);
	assert_int_equal(tu_write_file(path, "A: 2\n\n", 6), 0);
	snprintf_checked(path, sizeof(path), "%s/cur/50.M1P1Q1.h", f->user);
	assert_int_equal(tu_write_file(path, "A: 3\r\n\r\n", 8), 0);
	sync_ok(f, f->inbox, NULL);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 3);
	/* Delivery order from the names: 50 first. */
	assert_string_equal(l.msgs[0].fname, "50.M1P1Q1.h");
	assert_int_equal(l.msgs[0].size, 8);	/* already CRLF */
	assert_int_equal(l.msgs[0].fsize, 8);
	assert_int_equal(l.msgs[1].size, 8);	/* LF: counted */
	assert_int_equal(l.msgs[1].fsize, 6);
	assert_true(strcmp(l.msgs[1].fname, l.msgs[2].fname) != 0);
	mbox_msglist_free(&l);
	snprintf_checked(path, sizeof(path), "%s/cur", f->user);
	assert_int_equal(tu_count_entries(path), 3);
	/* Stable: a second sync changes nothing. */
	{
		struct mbox_sync_result res;

		sync_ok(f, f->inbox, &res);
		assert_int_equal(res.added + res.flag_changes +
		    res.expunged.count, 0);
		mbox_sync_result_free(&res);
	}
}

/* A child that syncs over and over with its own index handle. */
static void
child_syncer(const char *user, int rounds)
{
	struct mbox_index *idx = NULL;
	struct mbox_info info;
	char err[256];
	int i;

	if (mbox_index_open(user, 0, &idx, err, sizeof(err)) < 0 ||
	    mbox_find(idx, "INBOX", &info) != 1)
		_exit(2);
	for (i = 0; i < rounds; i++)
		if (mbox_sync(idx, info.id, NULL) < 0)
			_exit(3);
	mbox_index_close(&idx);
	_exit(0);
}

/* A child playing mutt: flips the S flag of files in cur/ by rename. */
static void
child_renamer(const char *user, int rounds)
{
	char dir[1024], from[2048], to[2048];
	struct dirent *de;
	DIR *d;
	int i;

	snprintf_checked(dir, sizeof(dir), "%s/cur", user);
	for (i = 0; i < rounds; i++) {
		if ((d = opendir(dir)) == NULL)
			_exit(2);
		while ((de = readdir(d)) != NULL) {
			size_t n = strlen(de->d_name);

			if (de->d_name[0] == '.' || n < 3)
				continue;
			snprintf_checked(from, sizeof(from), "%s/%s", dir,
			    de->d_name);
			if (de->d_name[n - 1] == 'S')
				snprintf_checked(to, sizeof(to), "%s/%.*s", dir,
				    (int)(n - 1), de->d_name);
			else
				snprintf_checked(to, sizeof(to), "%s/%sS", dir,
				    de->d_name);
			(void)rename(from, to);
		}
		closedir(d);
	}
	_exit(0);
}

static void
test_concurrent_sync_and_renames(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids gone = { 0 };
	struct mbox_msglist l;
	char name[256], first[1][256];
	pid_t kids[3];
	int i, status;

	deliver_n(f, 1, first);
	sync_ok(f, f->inbox, NULL);
	for (i = 0; i < 3; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0) {
			if (i < 2)
				child_syncer(f->user, 200);
			child_renamer(f->user, 300);
		}
	}
	for (i = 0; i < 40; i++) {
		deliver(f->user, "Subject: c\n\nx\n", name, sizeof(name));
		sync_ok(f, f->inbox, NULL);
	}
	for (i = 0; i < 3; i++) {
		assert_int_equal(waitpid(kids[i], &status, 0), kids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	sync_ok(f, f->inbox, NULL);
	/* Every message once, UIDs 1..41, nothing wrongly expunged. */
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 41);
	for (i = 0; i < 41; i++)
		assert_int_equal(l.msgs[i].uid, (uint32_t)i + 1);
	mbox_msglist_free(&l);
	assert_int_equal(mbox_expunged_since(f->idx, f->inbox, 0, NULL, 0,
	    &gone), 0);
	assert_int_equal(gone.count, 0);
	mbox_uids_free(&gone);
}

static void
test_header_len(void **state)
{
	(void)state;
	assert_int_equal(mbox_header_len("A: b\n\nbody", 11), 6);
	assert_int_equal(mbox_header_len("A: b\r\n\r\nbody", 14), 8);
	assert_int_equal(mbox_header_len("A: b\n c\n\n", 9), 9);
	assert_int_equal(mbox_header_len("\nbody", 5), 1);
	assert_int_equal(mbox_header_len("A: b", 4), 4);
	assert_int_equal(mbox_header_len("A: b\n", 5), 5);
	assert_int_equal(mbox_header_len("", 0), 0);
}

static int64_t
sql_count(const char *user, const char *sql)
{
	char path[1024];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;

	snprintf_checked(path, sizeof(path), "%s/index.db", user);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static void
cursor_all(struct fixture *f, struct mbox_msglist *l, struct buf *out,
    size_t n)
{
	struct mbox_hdr_cursor c;
	size_t i;

	mbox_hdr_cursor_init(&c, f->idx, f->inbox, l);
	for (i = 0; i < n; i++) {
		buf_init(&out[i], 1 << 20);
		assert_int_equal(mbox_hdr_cursor_get(&c, i, &out[i]), 1);
	}
	assert_int_equal(mbox_hdr_cursor_done(&c), 0);
}

/* Read from the file once, then from index.db; gone with the message. */
static void
test_header_cache(void **state)
{
	struct fixture *f = *state;
	struct mbox_uids gone = { 0 };
	struct mbox_msglist l;
	struct buf h[3];
	char names[2][256], path[2048];
	size_t i;

	deliver_n(f, 2, names);
	deliver(f->user, "Subject: no body", names[1], sizeof(names[1]));
	sync_ok(f, f->inbox, NULL);
	messages(f, f->inbox, &l);
	assert_int_equal(l.count, 3);
	assert_int_equal(sql_count(f->user, "SELECT count(*) FROM headers"), 0);
	cursor_all(f, &l, h, 3);
	assert_string_equal(buf_cstr(&h[0]), "Subject: 1\n\n");
	assert_string_equal(buf_cstr(&h[1]), "Subject: 2\n\n");
	assert_string_equal(buf_cstr(&h[2]), "Subject: no body");
	for (i = 0; i < 3; i++)
		buf_free(&h[i]);
	assert_int_equal(sql_count(f->user, "SELECT count(*) FROM headers"), 3);

	/* a file changed in place (never done to a Maildir file) shows
	 * that the second reading comes from the cache */
	assert_int_equal(mbox_msglist_path(&l, 0, path, sizeof(path)), 0);
	tu_write_file(path, "Subject: changed\n\nx\n", 21);
	cursor_all(f, &l, h, 2);
	assert_string_equal(buf_cstr(&h[0]), "Subject: 1\n\n");
	assert_string_equal(buf_cstr(&h[1]), "Subject: 2\n\n");
	for (i = 0; i < 2; i++)
		buf_free(&h[i]);
	mbox_msglist_free(&l);

	store(f, 1, 1, MBOX_STORE_ADD, MBOX_F_DELETED, NULL, 0, NULL, NULL);
	assert_int_equal(mbox_expunge(f->idx, f->inbox, NULL, 0, &gone), 0);
	assert_int_equal(gone.count, 1);
	mbox_uids_free(&gone);
	assert_int_equal(sql_count(f->user, "SELECT count(*) FROM headers"), 2);
	assert_int_equal(sql_count(f->user,
	    "SELECT count(*) FROM headers WHERE uid = 1"), 0);
}

/* A sparse set of UIDs (looked up one by one) and a dense one (one walk
 * over the range) give the same cached headers. */
static void
test_header_cache_sparse(void **state)
{
	struct fixture *f = *state;
	struct mbox_msglist l, sub;
	struct mbox_msg two[2];
	struct buf h[10];
	char names[10][256], path[2048];
	size_t i;

	deliver_n(f, 10, names);
	sync_ok(f, f->inbox, NULL);
	messages(f, f->inbox, &l);
	cursor_all(f, &l, h, 10);
	for (i = 0; i < 10; i++)
		buf_free(&h[i]);
	for (i = 0; i < 10; i++) {
		assert_int_equal(mbox_msglist_path(&l, i, path, sizeof(path)), 0);
		tu_write_file(path, "Subject: changed\n\nx\n", 21);
	}
	two[0] = l.msgs[0];
	two[1] = l.msgs[9];
	sub.dir = l.dir;
	sub.msgs = two;
	sub.count = 2;
	cursor_all(f, &sub, h, 2);
	assert_string_equal(buf_cstr(&h[0]), "Subject: 1\n\n");
	assert_string_equal(buf_cstr(&h[1]), "Subject: 10\n\n");
	buf_free(&h[0]);
	buf_free(&h[1]);
	cursor_all(f, &l, h, 10);
	assert_string_equal(buf_cstr(&h[4]), "Subject: 5\n\n");
	for (i = 0; i < 10; i++)
		buf_free(&h[i]);
	mbox_msglist_free(&l);
}

/* An index.db of schema version 1 gets the header cache on open. */
static void
test_migrate_v1(void **state)
{
	struct fixture *f = *state;
	char path[1024];
	sqlite3 *db;

	mbox_index_close(&f->idx);
	snprintf_checked(path, sizeof(path), "%s/index.db", f->user);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE headers;"
	    " PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	reopen(f);
	assert_int_equal(sql_count(f->user, "PRAGMA user_version"), 2);
	assert_int_equal(sql_count(f->user, "SELECT count(*) FROM headers"), 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_first_open_creates_folders),
		T(test_sync_assigns_uids_in_order),
		T(test_sync_expunge_by_hand_and_uids_not_reused),
		T(test_sync_flag_renamed_by_hand),
		T(test_store_renames_files),
		T(test_store_keeps_foreign_flags),
		T(test_unchangedsince),
		T(test_append),
		T(test_append_fd_and_quota),
		T(test_copy_and_move),
		T(test_expunge),
		T(test_expunge_uids),
		T(test_rebuild_when_missing),
		T(test_rebuild_when_corrupt),
		T(test_rebuild_on_check),
		T(test_name_validation),
		T(test_utf8_name_on_disk),
		T(test_rename_inbox),
		T(test_rename_with_children),
		T(test_delete_recreate_new_uidvalidity),
		T(test_folder_made_by_another_program),
		T(test_status_and_recent),
		T(test_quick_sync_and_open_after_rename),
		T(test_two_handles),
		T(test_cache_fields),
		T(test_subscriptions),
		T(test_duplicate_base_and_bare_cur_file),
		T(test_concurrent_sync_and_renames),
		T(test_header_len),
		T(test_header_cache),
		T(test_header_cache_sparse),
		T(test_migrate_v1),
	};
#undef T

	return cmocka_run_group_tests_name("mbox_index", tests, NULL, NULL);
}
