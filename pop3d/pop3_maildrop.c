/*
 * pop3_maildrop.c - the maildrop of a POP3 session: the lock that keeps
 * a second session of the same user out, INBOX synced and frozen at
 * login (UIDs, sizes, file names from the index), \Seen after a RETR,
 * and the UPDATE state that removes exactly the DELE'd messages.
 *
 * Everything here blocks on disk and runs on the thread pool.  It reads
 * and changes mail only through store/mbox_index.h; it must never claim
 * \Recent (that belongs to IMAP sessions) and never remove a message a
 * session did not DELE.
 */
#include "pop3d.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "../store/maildir.h"

/*
 * The lock: flock() on USERDIR/pop3.lock.  flock belongs to the open
 * file description, so two sessions in one process conflict as well as
 * two processes, and the kernel drops it when the holder dies.
 */
static int
maildrop_lock(const char *userdir, int *fd_r, char *err, size_t errlen)
{
	char path[CONFIG_STR_MAX + ADDR_MAX + 32];
	int fd;

	*fd_r = -1;
	if (snprintf_checked(path, sizeof(path), "%s/%s", userdir,
	    POP3_LOCK_FILE) < 0) {
		snprintf(err, errlen, "%s: path too long", userdir);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EWOULDBLOCK) {
			close(fd);
			return 0;
		}
		snprintf(err, errlen, "flock %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	*fd_r = fd;
	return 1;
}

void
pop3_maildrop_free(struct pop3_maildrop **dropp)
{
	struct pop3_maildrop *drop = *dropp;
	size_t i;

	if (drop == NULL)
		return;
	mbox_index_close(&drop->idx);
	for (i = 0; i < drop->count; i++)
		free(drop->msgs[i].fname);
	free(drop->msgs);
	free(drop->dir);
	if (drop->lock_fd >= 0)
		close(drop->lock_fd);	/* releases the flock */
	free(drop);
	*dropp = NULL;
}

enum pop3_open_result
pop3_maildrop_open(const char *userdir, struct pop3_maildrop **drop_r,
    char *err, size_t errlen)
{
	struct pop3_maildrop *drop;
	struct mbox_msglist list;
	struct mbox_info info;
	size_t i;
	int r;

	*drop_r = NULL;
	if (maildir_ensure(userdir) < 0) {
		snprintf(err, errlen, "%s: %s", userdir, strerror(errno));
		return POP3_OPEN_ERROR;
	}
	drop = calloc(1, sizeof(*drop));
	if (drop == NULL) {
		snprintf(err, errlen, "out of memory");
		return POP3_OPEN_ERROR;
	}
	r = maildrop_lock(userdir, &drop->lock_fd, err, errlen);
	if (r <= 0) {
		free(drop);
		return r == 0 ? POP3_OPEN_IN_USE : POP3_OPEN_ERROR;
	}
	if (mbox_index_open(userdir, 0, &drop->idx, err, errlen) < 0)
		goto fail;
	/* New mail moves from new/ to cur/ and gets its UIDs; \Recent stays
	 * unclaimed for the next IMAP session. */
	if ((r = mbox_find(drop->idx, "INBOX", &info)) <= 0 ||
	    mbox_sync(drop->idx, info.id, NULL) < 0 ||
	    mbox_get(drop->idx, info.id, &info) <= 0 ||
	    mbox_messages(drop->idx, info.id, NULL, 0, 0, &list) < 0) {
		snprintf(err, errlen, "INBOX: %s",
		    mbox_index_error(drop->idx));
		goto fail;
	}
	drop->box = info.id;
	drop->uidvalidity = info.uidvalidity;
	drop->dir = list.dir;
	list.dir = NULL;
	if (list.count > 0 &&
	    (drop->msgs = calloc(list.count, sizeof(*drop->msgs))) == NULL) {
		mbox_msglist_free(&list);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < list.count; i++) {
		drop->msgs[i].uid = list.msgs[i].uid;
		drop->msgs[i].size = list.msgs[i].size;
		drop->msgs[i].seen = (list.msgs[i].flags & MBOX_F_SEEN) != 0;
		drop->msgs[i].fname = list.msgs[i].fname;	/* taken */
		list.msgs[i].fname = NULL;
		drop->size += list.msgs[i].size;
	}
	drop->count = list.count;
	mbox_msglist_free(&list);
	*drop_r = drop;
	return POP3_OPEN_OK;
fail:
	pop3_maildrop_free(&drop);
	return POP3_OPEN_ERROR;
}

void
pop3_maildrop_uidl(const struct pop3_maildrop *drop, size_t i, char out[17])
{
	snprintf(out, 17, "%08x%08x", drop->uidvalidity, drop->msgs[i].uid);
}

int
pop3_maildrop_msg_open(struct pop3_maildrop *drop, size_t i, int *fd_r)
{
	struct pop3_msg *m = &drop->msgs[i];
	char path[PATH_MAX];

	*fd_r = -1;
	if (m->fname != NULL &&
	    snprintf_checked(path, sizeof(path), "%s/cur/%s", drop->dir,
	    m->fname) == 0) {
		*fd_r = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (*fd_r >= 0)
			return 1;
	}
	/* Renamed by another client (flags), or gone: ask the index. */
	return mbox_msg_open(drop->idx, drop->box, m->uid, fd_r);
}

/* Re-read message i's file name after we renamed it. */
static void
maildrop_refresh_name(struct pop3_maildrop *drop, size_t i)
{
	struct mbox_range one = { drop->msgs[i].uid, drop->msgs[i].uid };
	struct mbox_msglist l;

	if (mbox_messages(drop->idx, drop->box, &one, 1, 0, &l) < 0)
		return;
	if (l.count == 1) {
		free(drop->msgs[i].fname);
		drop->msgs[i].fname = l.msgs[0].fname;
		l.msgs[0].fname = NULL;
	}
	mbox_msglist_free(&l);
}

int
pop3_maildrop_seen(struct pop3_maildrop *drop, size_t i, char *err,
    size_t errlen)
{
	struct mbox_range one = { drop->msgs[i].uid, drop->msgs[i].uid };
	struct mbox_store_req req = { .mode = MBOX_STORE_ADD,
	    .flags = MBOX_F_SEEN };
	struct mbox_uids changed = { 0 };
	int r;

	r = mbox_store(drop->idx, drop->box, &one, 1, &req, &changed, NULL);
	if (r < 0)
		snprintf(err, errlen, "store \\Seen uid %u: %s",
		    drop->msgs[i].uid, mbox_index_error(drop->idx));
	else {
		drop->msgs[i].seen = 1;
		if (changed.count > 0)
			maildrop_refresh_name(drop, i);
	}
	mbox_uids_free(&changed);
	return r;
}

/* The DELE'd UIDs as ranges (messages are in ascending UID order). */
static struct mbox_range *
deleted_ranges(const struct pop3_maildrop *drop, size_t *n_r)
{
	struct mbox_range *set;
	size_t i, n = 0;

	*n_r = 0;
	set = calloc(drop->ndeleted > 0 ? drop->ndeleted : 1, sizeof(*set));
	if (set == NULL)
		return NULL;
	for (i = 0; i < drop->count; i++) {
		uint32_t uid = drop->msgs[i].uid;

		if (!drop->msgs[i].deleted)
			continue;
		if (n > 0 && set[n - 1].hi + 1 == uid)
			set[n - 1].hi = uid;
		else {
			set[n].lo = set[n].hi = uid;
			n++;
		}
	}
	*n_r = n;
	return set;
}

int
pop3_maildrop_update(struct pop3_maildrop *drop, size_t *removed_r,
    char *err, size_t errlen)
{
	struct mbox_uids gone = { 0 };
	struct mbox_range *set;
	size_t nset;
	int r;

	*removed_r = 0;
	if (drop->ndeleted == 0)
		return 0;
	if ((set = deleted_ranges(drop, &nset)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/*
	 * Exactly our UIDs, in one transaction: messages another client
	 * marked \Deleted stay (its EXPUNGE, not ours), and an IMAP session
	 * sees EXPUNGE with no \Deleted flag change before it.  A message
	 * already gone is simply not found.
	 */
	r = mbox_expunge_uids(drop->idx, drop->box, set, nset, &gone);
	if (r < 0)
		snprintf(err, errlen, "%s", mbox_index_error(drop->idx));
	else
		*removed_r = gone.count;
	mbox_uids_free(&gone);
	free(set);
	return r;
}
