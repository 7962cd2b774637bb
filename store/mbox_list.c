/*
 * mbox_list.c - the mailboxes of one user: listing (with subscriptions,
 * special-use and children), CREATE, DELETE, RENAME, and keeping the
 * mailbox rows in line with the ".Folder" directories other programs
 * create or remove.  SUBSCRIBE, STATUS and \Recent are in mbox_status.c.
 *
 * Must never touch a path built from a name that mbox_name_valid() has
 * not accepted, never delete INBOX, and never give a mailbox a
 * UIDVALIDITY used before (mi_uidvalidity_next()).  A deleted folder is
 * first renamed to "..deleted.*" (a name no mailbox can have) and only
 * removed after the transaction commits.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "durable.h"
#include "maildir.h"
#include "quota.h"

#define DELETED_PREFIX "..deleted."
#define RENAME_MAX 1000		/* mailboxes moved by one RENAME */

static unsigned long delete_seq;	/* __atomic only */

#define BOX_COLS "id, name, uidvalidity, uidnext, highestmodseq," \
	" recent_uid, special, new_mtime, cur_mtime, synced_at"

static int
box_row(struct mbox_index *idx, sqlite3_stmt *st, struct mi_box *b)
{
	const char *name = (const char *)sqlite3_column_text(st, 1);

	memset(b, 0, sizeof(*b));
	b->id = sqlite3_column_int64(st, 0);
	if (name == NULL || strlcpy_checked(b->name, name, sizeof(b->name)) < 0) {
		errno = EIO;
		return mi_fail(idx, "index %s: bad mailbox row", idx->dbpath);
	}
	b->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	b->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
	b->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
	b->recent_uid = (uint32_t)sqlite3_column_int64(st, 5);
	b->special = sqlite3_column_int(st, 6);
	b->new_mtime = sqlite3_column_int64(st, 7);
	b->cur_mtime = sqlite3_column_int64(st, 8);
	b->synced_at = sqlite3_column_int64(st, 9);
	return mi_name_dir(idx, b->name, b->dir, sizeof(b->dir));
}

/* Run a one-row box query with ?1 bound by the caller.  1 / 0 / -1. */
static int
box_step(struct mbox_index *idx, sqlite3_stmt *st, struct mi_box *b)
{
	int rc = sqlite3_step(st), r;

	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		return mi_sqlerr(idx, "mailbox");
	}
	r = box_row(idx, st, b);
	sqlite3_reset(st);
	return r < 0 ? -1 : 1;
}

int
mi_box_load(struct mbox_index *idx, int64_t id, struct mi_box *b)
{
	static const char sql[] = "SELECT " BOX_COLS " FROM mailboxes WHERE id = ?1";
	sqlite3_stmt *st = mi_stmt(idx, sql);

	if (st == NULL || sqlite3_bind_int64(st, 1, id) != SQLITE_OK)
		return mi_sqlerr(idx, "mailbox");
	return box_step(idx, st, b);
}

int
mi_box_find(struct mbox_index *idx, const char *canon_name, struct mi_box *b)
{
	static const char sql[] =
	    "SELECT " BOX_COLS " FROM mailboxes WHERE name = ?1";
	sqlite3_stmt *st = mi_stmt(idx, sql);

	if (st == NULL || sqlite3_bind_text(st, 1, canon_name, -1,
	    SQLITE_STATIC) != SQLITE_OK)
		return mi_sqlerr(idx, "mailbox");
	return box_step(idx, st, b);
}

int
mi_box_save_counters(struct mbox_index *idx, const struct mi_box *b)
{
	static const char sql[] = "UPDATE mailboxes SET uidnext = ?2,"
	    " highestmodseq = ?3, recent_uid = ?4 WHERE id = ?1";
	sqlite3_stmt *st = mi_stmt(idx, sql);
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 1, b->id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, b->uidnext) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)b->highestmodseq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, b->recent_uid) != SQLITE_OK)
		return mi_sqlerr(idx, "mailbox update");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : mi_sqlerr(idx, "mailbox update");
}

int
mi_box_insert(struct mbox_index *idx, const char *canon_name,
    enum mbox_special special, int64_t *id_r)
{
	static const char sql[] = "INSERT INTO mailboxes(name, uidvalidity,"
	    " special) VALUES (?1, ?2, ?3)";
	sqlite3_stmt *st;
	uint32_t uv;
	int rc;

	if (special == MBOX_SPECIAL_NONE)
		special = mi_name_special(canon_name);
	if (mi_uidvalidity_next(idx, &uv) < 0)
		return -1;
	st = mi_stmt(idx, sql);
	if (st == NULL || sqlite3_bind_text(st, 1, canon_name, -1,
	    SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, uv) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, (int)special) != SQLITE_OK)
		return mi_sqlerr(idx, "mailbox insert");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return mi_sqlerr(idx, "mailbox insert");
	if (id_r != NULL)
		*id_r = sqlite3_last_insert_rowid(idx->db);
	return 0;
}

int
mi_subscribe_row(struct mbox_index *idx, const char *canon, int on)
{
	static const char ins[] =
	    "INSERT OR IGNORE INTO subscriptions(name) VALUES (?1)";
	static const char del[] = "DELETE FROM subscriptions WHERE name = ?1";
	sqlite3_stmt *st = mi_stmt(idx, on ? ins : del);
	int rc;

	if (st == NULL || sqlite3_bind_text(st, 1, canon, -1,
	    SQLITE_STATIC) != SQLITE_OK)
		return mi_sqlerr(idx, "subscriptions");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : mi_sqlerr(idx, "subscriptions");
}

int
mi_defaults_create(struct mbox_index *idx, int subscribe)
{
	struct mi_box b;
	size_t i;
	int r;

	r = mi_box_find(idx, "INBOX", &b);
	if (r < 0 || (r == 0 && mi_box_insert(idx, "INBOX",
	    MBOX_SPECIAL_NONE, NULL) < 0))
		return -1;
	if (subscribe && mi_subscribe_row(idx, "INBOX", 1) < 0)
		return -1;
	for (i = 0; maildir_default_folders[i] != NULL; i++) {
		const char *name = maildir_default_folders[i];

		if (maildir_create_folder(idx->userdir, name) < 0)
			return mi_fail(idx, "cannot create folder %s in %s: %s",
			    name, idx->userdir, strerror(errno));
		r = mi_box_find(idx, name, &b);
		if (r < 0 || (r == 0 && mi_box_insert(idx, name,
		    mi_name_special(name), NULL) < 0))
			return -1;
		if (subscribe && mi_subscribe_row(idx, name, 1) < 0)
			return -1;
	}
	if (subscribe)
		mi_subscriptions_save(idx);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The mailbox names the ".Folder" directories of userdir stand for. */
static int
scan_folders(struct mbox_index *idx, char ***names_r, size_t *n_r)
{
	char name[MBOX_NAME_MAX + 1], canon[MBOX_NAME_MAX + 1], path[PATH_MAX];
	char **names = NULL, **p;
	size_t n = 0, cap = 0;
	struct dirent *de;
	struct stat st;
	DIR *d;

	d = opendir(idx->userdir);
	if (d == NULL)
		return mi_fail(idx, "cannot read %s: %s", idx->userdir,
		    strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.' || strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, DELETED_PREFIX,
		    strlen(DELETED_PREFIX)) == 0) {
			/* Left over from an interrupted DELETE. */
			if (snprintf_checked(path, sizeof(path), "%s/%s",
			    idx->userdir, de->d_name) == 0)
				(void)mi_rmtree(path);
			continue;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(st.st_mode))
			continue;
		/* Only names that map back to exactly this directory. */
		if (mi_name_decode(de->d_name + 1, name, sizeof(name)) < 0 ||
		    mi_name_canon(name, canon, sizeof(canon)) < 0 ||
		    strcmp(name, canon) != 0 || strcmp(canon, "INBOX") == 0)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			p = reallocarray(names, cap, sizeof(*names));
			if (p == NULL)
				goto nomem;
			names = p;
		}
		if ((names[n] = strdup(canon)) == NULL)
			goto nomem;
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), cmp_str);
	*names_r = names;
	*n_r = n;
	return 0;
nomem:
	closedir(d);
	mbox_strings_free(names, n);
	errno = ENOMEM;
	return mi_fail(idx, "out of memory");
}

int
mi_list_sync(struct mbox_index *idx)
{
	static const char sel[] = "SELECT id, name FROM mailboxes";
	static const char del[] = "DELETE FROM mailboxes WHERE id = ?1";
	char **names = NULL, *key;
	struct mbox_uids gone = { 0 };
	sqlite3_stmt *st;
	struct mi_box b;
	size_t n = 0, i;
	int rc, r = -1;

	if (scan_folders(idx, &names, &n) < 0)
		return -1;
	if ((r = mi_box_find(idx, "INBOX", &b)) < 0 ||
	    (r == 0 && mi_box_insert(idx, "INBOX", MBOX_SPECIAL_NONE, NULL) < 0))
		goto out;
	r = -1;
	/* Rows whose folder is gone (ids fit 32 bits: one per CREATE). */
	if ((st = mi_stmt(idx, sel)) == NULL)
		goto out;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		key = (char *)sqlite3_column_text(st, 1);
		if (key == NULL || strcmp(key, "INBOX") == 0 ||
		    bsearch(&key, names, n, sizeof(*names), cmp_str) != NULL)
			continue;
		if (mi_uids_push(&gone, (uint32_t)sqlite3_column_int64(st, 0)) < 0)
			break;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		mi_sqlerr(idx, "mailbox list");
		goto out;
	}
	for (i = 0; i < gone.count; i++) {
		if ((st = mi_stmt(idx, del)) == NULL ||
		    sqlite3_bind_int64(st, 1, gone.uids[i]) != SQLITE_OK ||
		    sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			mi_sqlerr(idx, "mailbox delete");
			goto out;
		}
		sqlite3_reset(st);
	}
	/* Folders without a row: made by another program. */
	for (i = 0; i < n; i++) {
		rc = mi_box_find(idx, names[i], &b);
		if (rc < 0 || (rc == 0 && mi_box_insert(idx, names[i],
		    MBOX_SPECIAL_NONE, NULL) < 0))
			goto out;
	}
	r = 0;
out:
	mbox_uids_free(&gone);
	mbox_strings_free(names, n);
	return r;
}

/* ---- public: listing ---- */

#define INFO_SQL "SELECT m.id, m.name, m.uidvalidity, m.uidnext," \
	" m.highestmodseq, m.special, s.name IS NOT NULL," \
	" EXISTS (SELECT 1 FROM mailboxes c WHERE c.name > m.name || '.'" \
	"   AND c.name < m.name || '/')" \
	" FROM mailboxes m LEFT JOIN subscriptions s ON s.name = m.name"

static int
info_row(sqlite3_stmt *st, struct mbox_info *info)
{
	const char *name = (const char *)sqlite3_column_text(st, 1);

	memset(info, 0, sizeof(*info));
	info->id = sqlite3_column_int64(st, 0);
	if (name == NULL ||
	    strlcpy_checked(info->name, name, sizeof(info->name)) < 0)
		return -1;
	info->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
	info->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
	info->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
	info->special = (enum mbox_special)sqlite3_column_int(st, 5);
	info->subscribed = sqlite3_column_int(st, 6);
	info->has_children = sqlite3_column_int(st, 7);
	return 0;
}

int
mbox_list(struct mbox_index *idx, struct mbox_info **list_r, size_t *count_r)
{
	static const char sql[] = INFO_SQL " ORDER BY m.name <> 'INBOX', m.name";
	struct mbox_info *list = NULL, *p;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*list_r = NULL;
	*count_r = 0;
	if (mi_begin(idx, 1) < 0)
		return -1;
	if (mi_list_sync(idx) < 0 || (st = mi_stmt(idx, sql)) == NULL)
		goto fail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			p = reallocarray(list, cap, sizeof(*list));
			if (p == NULL) {
				sqlite3_reset(st);
				errno = ENOMEM;
				goto fail;
			}
			list = p;
		}
		if (info_row(st, &list[n]) == 0)
			n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		mi_sqlerr(idx, "mailbox list");
		goto fail;
	}
	if (mi_commit(idx) < 0)
		goto fail_nortx;
	*list_r = list;
	*count_r = n;
	return 0;
fail:
	mi_rollback(idx);
fail_nortx:
	free(list);
	return -1;
}

static int
info_one(struct mbox_index *idx, const char *sql, const char *name,
    int64_t id, struct mbox_info *info)
{
	sqlite3_stmt *st = mi_stmt(idx, sql);
	int rc, r;

	if (st == NULL || (name != NULL ? sqlite3_bind_text(st, 1, name, -1,
	    SQLITE_STATIC) : sqlite3_bind_int64(st, 1, id)) != SQLITE_OK)
		return mi_sqlerr(idx, "mailbox");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = info_row(st, info) == 0 ? 1 : -1;
	else
		r = rc == SQLITE_DONE ? 0 : mi_sqlerr(idx, "mailbox");
	sqlite3_reset(st);
	return r;
}

int
mbox_find(struct mbox_index *idx, const char *name, struct mbox_info *info_r)
{
	static const char sql[] = INFO_SQL " WHERE m.name = ?1";
	char canon[MBOX_NAME_MAX + 1];

	if (mi_name_canon(name, canon, sizeof(canon)) < 0)
		return 0;
	return info_one(idx, sql, canon, 0, info_r);
}

int
mbox_get(struct mbox_index *idx, int64_t id, struct mbox_info *info_r)
{
	static const char sql[] = INFO_SQL " WHERE m.id = ?1";

	return info_one(idx, sql, NULL, id, info_r);
}

/* ---- public: create / delete / rename ---- */

int
mbox_create(struct mbox_index *idx, const char *name,
    enum mbox_special special)
{
	char canon[MBOX_NAME_MAX + 1], enc[NAME_MAX + 1];
	struct mi_box b;
	int r;

	if (mi_name_canon(name, canon, sizeof(canon)) < 0 ||
	    mi_name_encode(canon, enc, sizeof(enc)) < 0)
		return mi_fail(idx, "invalid mailbox name");
	if (strcmp(canon, "INBOX") == 0) {
		errno = EEXIST;
		return mi_fail(idx, "INBOX always exists");
	}
	if (mi_begin(idx, 1) < 0)
		return -1;
	if (mi_list_sync(idx) < 0 || (r = mi_box_find(idx, canon, &b)) < 0)
		goto fail;
	if (r == 1) {
		errno = EEXIST;
		mi_fail(idx, "mailbox exists");
		goto fail;
	}
	if (maildir_create_folder(idx->userdir, enc) < 0) {
		mi_fail(idx, "cannot create folder .%s in %s: %s", enc,
		    idx->userdir, strerror(errno));
		goto fail;
	}
	if (mi_box_insert(idx, canon, special, NULL) < 0)
		goto fail;
	return mi_commit(idx);
fail:
	mi_rollback(idx);
	return -1;
}

int
mbox_delete(struct mbox_index *idx, const char *name)
{
	static const char sum[] = "SELECT count(*), total(fsize) FROM messages"
	    " WHERE mailbox = ?1";
	static const char del[] = "DELETE FROM mailboxes WHERE id = ?1";
	char canon[MBOX_NAME_MAX + 1], trash[PATH_MAX];
	int64_t count = 0, bytes = 0;
	unsigned long seq;
	sqlite3_stmt *st;
	struct mi_box b;
	int r, moved = 0;

	if (mi_name_canon(name, canon, sizeof(canon)) < 0)
		return mi_fail(idx, "invalid mailbox name");
	if (strcmp(canon, "INBOX") == 0) {
		errno = EPERM;
		return mi_fail(idx, "INBOX cannot be deleted");
	}
	if (mi_begin(idx, 1) < 0)
		return -1;
	if ((r = mi_box_find(idx, canon, &b)) <= 0) {
		if (r == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		goto fail;
	}
	st = mi_stmt(idx, sum);
	if (st == NULL || sqlite3_bind_int64(st, 1, b.id) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		mi_sqlerr(idx, "mailbox delete");
		goto fail;
	}
	count = sqlite3_column_int64(st, 0);
	bytes = (int64_t)sqlite3_column_double(st, 1);
	sqlite3_reset(st);
	seq = __atomic_fetch_add(&delete_seq, 1, __ATOMIC_RELAXED);
	if (snprintf_checked(trash, sizeof(trash), "%s/" DELETED_PREFIX
	    "%lld.%ld.%lu", idx->userdir, (long long)b.id, (long)getpid(),
	    seq) < 0) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	if (rename(b.dir, trash) == 0)
		moved = 1;
	else if (errno != ENOENT) {
		mi_fail(idx, "cannot delete %s: %s", b.dir, strerror(errno));
		goto fail;
	}
	st = mi_stmt(idx, del);
	if (st == NULL || sqlite3_bind_int64(st, 1, b.id) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_DONE) {
		sqlite3_reset(st);
		mi_sqlerr(idx, "mailbox delete");
		goto fail;
	}
	sqlite3_reset(st);
	if (mi_commit(idx) < 0) {
		if (moved)
			(void)rename(trash, b.dir);
		return -1;
	}
	if (moved && mi_rmtree(trash) < 0)
		log_warn("cannot remove %s: %s", trash, strerror(errno));
	if (count > 0)
		(void)quota_add(idx->userdir, -bytes, -count);
	return 0;
fail:
	if (moved)
		(void)rename(trash, b.dir);
	mi_rollback(idx);
	return -1;
}

/* RENAME INBOX: its messages move to a new mailbox `to`. */
static int
rename_inbox(struct mbox_index *idx, struct mi_box *inbox, const char *to)
{
	char enc[NAME_MAX + 1];
	struct mi_box dst;
	int64_t id;

	if (mi_name_encode(to, enc, sizeof(enc)) < 0 ||
	    maildir_create_folder(idx->userdir, enc) < 0)
		return mi_fail(idx, "cannot create folder for %s: %s", to,
		    strerror(errno));
	if (mi_box_insert(idx, to, MBOX_SPECIAL_NONE, &id) < 0 ||
	    mi_box_load(idx, id, &dst) <= 0 ||
	    mi_sync_locked(idx, inbox, NULL) < 0)
		return -1;
	return mi_transfer(idx, inbox, NULL, 0, &dst, 1, NULL, NULL, NULL,
	    NULL);
}

struct moved {
	int64_t id;
	char from[PATH_MAX], to[PATH_MAX];
};

static int
rename_tree(struct mbox_index *idx, const char *from, const char *to)
{
	static const char sel[] = "SELECT id, name FROM mailboxes WHERE"
	    " name = ?1 OR (name > ?1 || '.' AND name < ?1 || '/')";
	static const char upd[] = "UPDATE mailboxes SET name = ?2 WHERE id = ?1";
	static const char sub[] = "UPDATE OR REPLACE subscriptions SET name = ?2"
	    " WHERE name = ?1";
	char newname[MBOX_NAME_MAX + 2], (*oldnames)[MBOX_NAME_MAX + 1] = NULL;
	struct moved *mv = NULL;
	size_t n = 0, done = 0, i, fl = strlen(from);
	sqlite3_stmt *st;
	struct mi_box tb;
	int rc, r = -1;

	mv = calloc(RENAME_MAX, sizeof(*mv));
	oldnames = calloc(RENAME_MAX, sizeof(*oldnames));
	if (mv == NULL || oldnames == NULL)
		goto out;
	if ((st = mi_stmt(idx, sel)) == NULL ||
	    sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC) != SQLITE_OK) {
		mi_sqlerr(idx, "rename");
		goto out;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < RENAME_MAX) {
		mv[n].id = sqlite3_column_int64(st, 0);
		if (strlcpy_checked(oldnames[n], (const char *)
		    sqlite3_column_text(st, 1), sizeof(oldnames[n])) == 0)
			n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		errno = rc == SQLITE_ROW ? E2BIG : EIO;
		mi_fail(idx, "rename: too many mailboxes or index error");
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (snprintf_checked(newname, sizeof(newname), "%s%s", to,
		    oldnames[i] + fl) < 0 || !mbox_name_valid(newname)) {
			errno = EINVAL;
			mi_fail(idx, "new mailbox name too long or invalid");
			goto undo;
		}
		if ((rc = mi_box_find(idx, newname, &tb)) != 0) {
			if (rc > 0) {
				errno = EEXIST;
				mi_fail(idx, "mailbox %s exists", newname);
			}
			goto undo;
		}
		if (mi_name_dir(idx, oldnames[i], mv[i].from,
		    sizeof(mv[i].from)) < 0 ||
		    mi_name_dir(idx, newname, mv[i].to, sizeof(mv[i].to)) < 0)
			goto undo;
		if (durable_rename_noreplace(mv[i].from, mv[i].to) < 0 &&
		    errno != ENOENT) {
			mi_fail(idx, "rename %s: %s", mv[i].from,
			    strerror(errno));
			goto undo;
		}
		done = i + 1;
		if ((st = mi_stmt(idx, upd)) == NULL ||
		    sqlite3_bind_int64(st, 1, mv[i].id) != SQLITE_OK ||
		    sqlite3_bind_text(st, 2, newname, -1, SQLITE_STATIC) !=
		    SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			mi_sqlerr(idx, "rename");
			goto undo;
		}
		sqlite3_reset(st);
		if ((st = mi_stmt(idx, sub)) == NULL ||
		    sqlite3_bind_text(st, 1, oldnames[i], -1, SQLITE_STATIC) !=
		    SQLITE_OK || sqlite3_bind_text(st, 2, newname, -1,
		    SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			mi_sqlerr(idx, "rename");
			goto undo;
		}
		sqlite3_reset(st);
	}
	if (mi_commit(idx) == 0) {
		r = 0;
		goto out;
	}
undo:
	while (done > 0) {
		done--;
		(void)rename(mv[done].to, mv[done].from);
	}
out:
	free(mv);
	free(oldnames);
	return r;
}

int
mbox_rename(struct mbox_index *idx, const char *from, const char *to)
{
	char cf[MBOX_NAME_MAX + 1], ct[MBOX_NAME_MAX + 1];
	struct mi_box fb, tb;
	size_t fl;
	int r;

	if (mi_name_canon(from, cf, sizeof(cf)) < 0 ||
	    mi_name_canon(to, ct, sizeof(ct)) < 0)
		return mi_fail(idx, "invalid mailbox name");
	fl = strlen(cf);
	if (strcmp(ct, "INBOX") == 0 || strcmp(cf, ct) == 0) {
		errno = EEXIST;
		return mi_fail(idx, "target mailbox exists");
	}
	if (strncmp(ct, cf, fl) == 0 && ct[fl] == '.') {
		errno = EINVAL;
		return mi_fail(idx, "cannot rename a mailbox into itself");
	}
	if (mi_begin(idx, 1) < 0)
		return -1;
	if (mi_list_sync(idx) < 0 || (r = mi_box_find(idx, cf, &fb)) < 0)
		goto fail;
	if (r == 0) {
		errno = ENOENT;
		mi_fail(idx, "no such mailbox");
		goto fail;
	}
	if ((r = mi_box_find(idx, ct, &tb)) != 0) {
		if (r > 0) {
			errno = EEXIST;
			mi_fail(idx, "target mailbox exists");
		}
		goto fail;
	}
	if (strcmp(cf, "INBOX") == 0) {
		if (rename_inbox(idx, &fb, ct) < 0)
			goto fail;
		return mi_commit(idx);
	}
	if (rename_tree(idx, cf, ct) < 0)
		goto fail;
	mi_subscriptions_save(idx);
	return 0;
fail:
	mi_rollback(idx);
	return -1;
}
