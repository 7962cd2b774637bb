/*
 * mbox_index.c - opening a user's index.db (WAL, busy_timeout, schema
 * version in PRAGMA user_version), rebuilding it from the Maildir when it
 * is missing or corrupt, the statement cache, transactions, UIDVALIDITY
 * allocation and the subscriptions file.  Mailbox operations are in
 * mbox_list.c, Maildir sync in mbox_sync.c, messages in mbox_msg.c and
 * mbox_copy.c, file names and keywords in mbox_flags.c.
 *
 * Must never trust index.db over the Maildir, never paste anything into
 * SQL text (every value is bound), and never reuse a UIDVALIDITY: it is
 * max(now, last + 1), the last one being kept both in the database and in
 * USERDIR/index.uidvalidity so that a rebuilt index continues from it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/log.h"
#include "durable.h"
#include "maildir.h"

#define UIDVALIDITY_FILE "index.uidvalidity"
#define SUBS_FILE_MAX (1 << 20)

static unsigned long file_seq;	/* __atomic only: temp file names */

/*
 * Version 1.  Times are unix seconds except the sync stamps (directory
 * mtimes and the time they were taken, in nanoseconds).  Expunged UIDs
 * are kept with their modseq for QRESYNC.
 */
static const char schema_v1[] =
	"CREATE TABLE meta (\n"
	"  key TEXT NOT NULL PRIMARY KEY,\n"
	"  value INTEGER NOT NULL\n"
	");\n"
	"CREATE TABLE mailboxes (\n"
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
	"  name TEXT NOT NULL UNIQUE,\n"
	"  uidvalidity INTEGER NOT NULL,\n"
	"  uidnext INTEGER NOT NULL DEFAULT 1,\n"
	"  highestmodseq INTEGER NOT NULL DEFAULT 1,\n"
	"  recent_uid INTEGER NOT NULL DEFAULT 1,\n"
	"  special INTEGER NOT NULL DEFAULT 0,\n"
	"  new_mtime INTEGER NOT NULL DEFAULT -1,\n"
	"  cur_mtime INTEGER NOT NULL DEFAULT -1,\n"
	"  synced_at INTEGER NOT NULL DEFAULT 0\n"
	");\n"
	"CREATE TABLE messages (\n"
	"  mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,\n"
	"  uid INTEGER NOT NULL,\n"
	"  base TEXT NOT NULL,\n"
	"  fname TEXT NOT NULL,\n"
	"  flags INTEGER NOT NULL DEFAULT 0,\n"
	"  keywords TEXT NOT NULL DEFAULT '',\n"
	"  modseq INTEGER NOT NULL,\n"
	"  size INTEGER NOT NULL,\n"
	"  fsize INTEGER NOT NULL,\n"
	"  internaldate INTEGER NOT NULL,\n"
	"  envelope TEXT,\n"
	"  bodystructure TEXT,\n"
	"  PRIMARY KEY (mailbox, uid)\n"
	");\n"
	"CREATE UNIQUE INDEX messages_base ON messages(mailbox, base);\n"
	"CREATE INDEX messages_modseq ON messages(mailbox, modseq);\n"
	"CREATE TABLE expunged (\n"
	"  mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,\n"
	"  uid INTEGER NOT NULL,\n"
	"  modseq INTEGER NOT NULL,\n"
	"  PRIMARY KEY (mailbox, uid)\n"
	") WITHOUT ROWID;\n"
	"CREATE INDEX expunged_modseq ON expunged(mailbox, modseq);\n"
	"CREATE TABLE subscriptions (\n"
	"  name TEXT NOT NULL PRIMARY KEY\n"
	") WITHOUT ROWID;\n";

/*
 * Version 2 adds the header cache: each message's top-level header
 * bytes (up to and with the blank line), filled the first time a SEARCH
 * or FETCH needs only the header.  A table of its own keeps the
 * messages rows, which every command reads, small.
 */
static const char schema_v2[] =
	"CREATE TABLE headers (\n"
	"  mailbox INTEGER NOT NULL,\n"
	"  uid INTEGER NOT NULL,\n"
	"  data BLOB NOT NULL,\n"
	"  PRIMARY KEY (mailbox, uid),\n"
	"  FOREIGN KEY (mailbox, uid) REFERENCES messages(mailbox, uid)\n"
	"    ON DELETE CASCADE\n"
	");\n";

/* ---- errors, statements, transactions ---- */

void
mbox_index_set_observer(struct mbox_index *idx, mbox_observer_fn *fn,
    void *arg)
{
	idx->obs_fn = fn;
	idx->obs_arg = arg;
}

void
mi_observe(struct mbox_index *idx, const char *path, int came)
{
	if (idx->obs_fn != NULL)
		idx->obs_fn(idx->obs_arg, path, came);
}

int
mi_fail(struct mbox_index *idx, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(idx->err, sizeof(idx->err), fmt, ap);
	va_end(ap);
	errno = saved;
	return -1;
}

int
mi_sqlerr(struct mbox_index *idx, const char *what)
{
	int code = sqlite3_errcode(idx->db) & 0xff;

	if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB)
		idx->corrupt = 1;
	snprintf_checked(idx->err, sizeof(idx->err), "index %s: %s: %s",
	    idx->dbpath, what, sqlite3_errmsg(idx->db));
	errno = code == SQLITE_BUSY || code == SQLITE_LOCKED ? EAGAIN :
	    code == SQLITE_FULL ? ENOSPC : EIO;
	return -1;
}

sqlite3_stmt *
mi_stmt(struct mbox_index *idx, const char *sql)
{
	size_t i, empty = MI_STMT_SLOTS;
	sqlite3_stmt *st;

	for (i = 0; i < MI_STMT_SLOTS; i++) {
		if (idx->stmts[i].sql == sql) {
			st = idx->stmts[i].st;
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			return st;
		}
		if (idx->stmts[i].sql == NULL && empty == MI_STMT_SLOTS)
			empty = i;
	}
	if (sqlite3_prepare_v3(idx->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &st, NULL) != SQLITE_OK) {
		mi_sqlerr(idx, "prepare");
		return NULL;
	}
	if (empty == MI_STMT_SLOTS) {	/* a bug: raise MI_STMT_SLOTS */
		sqlite3_finalize(st);
		errno = ENOMEM;
		mi_fail(idx, "index: statement cache full");
		return NULL;
	}
	idx->stmts[empty].sql = sql;
	idx->stmts[empty].st = st;
	return st;
}

int
mi_exec(struct mbox_index *idx, const char *sql)
{
	sqlite3_stmt *st = mi_stmt(idx, sql);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return mi_sqlerr(idx, sql);
	return 0;
}

int
mi_begin(struct mbox_index *idx, int immediate)
{
	if (idx->in_tx) {
		errno = EINVAL;
		return mi_fail(idx, "index: nested transaction");
	}
	if (mi_exec(idx, immediate ? "BEGIN IMMEDIATE" : "BEGIN") < 0)
		return -1;
	idx->in_tx = 1;
	return 0;
}

int
mi_commit(struct mbox_index *idx)
{
	if (mi_exec(idx, "COMMIT") < 0) {
		mi_rollback(idx);
		return -1;
	}
	idx->in_tx = 0;
	return 0;
}

void
mi_rollback(struct mbox_index *idx)
{
	int saved = errno;

	if (idx->in_tx)
		sqlite3_exec(idx->db, "ROLLBACK", NULL, NULL, NULL);
	idx->in_tx = 0;
	errno = saved;
}

int
mi_uids_push(struct mbox_uids *u, uint32_t uid)
{
	uint32_t *p;
	size_t ncap;

	if (u == NULL)
		return 0;
	if (u->count == u->cap) {
		ncap = u->cap ? u->cap * 2 : 16;
		p = reallocarray(u->uids, ncap, sizeof(*p));
		if (p == NULL)
			return -1;
		u->uids = p;
		u->cap = ncap;
	}
	u->uids[u->count++] = uid;
	return 0;
}

void
mbox_uids_free(struct mbox_uids *u)
{
	if (u == NULL)
		return;
	free(u->uids);
	memset(u, 0, sizeof(*u));
}

int
mi_in_set(const struct mbox_range *set, size_t nset, uint32_t uid)
{
	size_t i;

	if (set == NULL)
		return 1;
	for (i = 0; i < nset; i++)
		if (uid >= set[i].lo && uid <= set[i].hi)
			return 1;
	return 0;
}

/* ---- small files beside index.db ---- */

/* Replace USERDIR/name with text (temp file + rename). 0 / -1. */
static int
replace_file(struct mbox_index *idx, const char *name, const char *text,
    size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	unsigned long seq = __atomic_fetch_add(&file_seq, 1, __ATOMIC_RELAXED);
	int fd, saved;

	if (snprintf_checked(path, sizeof(path), "%s/%s", idx->userdir,
	    name) < 0 ||
	    snprintf_checked(tmp, sizeof(tmp), "%s/tmp/%s.%ld.%lu",
	    idx->userdir, name, (long)getpid(), seq) < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(tmp, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (durable_write_all(fd, text, len) < 0) {
		saved = errno;
		close(fd);
		durable_unlink_quiet(tmp);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		durable_unlink_quiet(tmp);
		return -1;
	}
	return 0;
}

/* A malloc'd copy of USERDIR/name (at most max bytes), or NULL. */
static char *
read_small_file(struct mbox_index *idx, const char *name, size_t max)
{
	char path[PATH_MAX], *text;
	size_t got = 0;
	ssize_t r;
	int fd;

	if (snprintf_checked(path, sizeof(path), "%s/%s", idx->userdir,
	    name) < 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	text = malloc(max + 1);
	if (text != NULL) {
		while (got < max) {
			r = read(fd, text + got, max - got);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			got += (size_t)r;
		}
		text[got] = '\0';
	}
	close(fd);
	return text;
}

int
mi_uidvalidity_next(struct mbox_index *idx, uint32_t *v_r)
{
	static const char sel[] = "SELECT value FROM meta WHERE key = 'uidvalidity'";
	static const char upd[] = "INSERT INTO meta(key, value) VALUES"
	    " ('uidvalidity', ?1) ON CONFLICT(key) DO UPDATE SET value = ?1";
	sqlite3_stmt *st = mi_stmt(idx, sel);
	int64_t last = 0, now = (int64_t)time(NULL), v;
	char *text, line[32];
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		last = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return mi_sqlerr(idx, "uidvalidity");
	/* The file carries the counter across a rebuild of index.db. */
	text = read_small_file(idx, UIDVALIDITY_FILE, 31);
	if (text != NULL) {
		int64_t f = strtoll(text, NULL, 10);

		if (f > last && f <= UINT32_MAX)
			last = f;
		free(text);
	}
	v = now > last ? now : last + 1;
	if (v <= 0 || v > UINT32_MAX) {
		errno = EOVERFLOW;
		return mi_fail(idx, "index %s: UIDVALIDITY exhausted",
		    idx->dbpath);
	}
	st = mi_stmt(idx, upd);
	if (st == NULL || sqlite3_bind_int64(st, 1, v) != SQLITE_OK)
		return mi_sqlerr(idx, "uidvalidity");
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return mi_sqlerr(idx, "uidvalidity");
	if (snprintf_checked(line, sizeof(line), "%" PRId64 "\n", v) == 0 &&
	    replace_file(idx, UIDVALIDITY_FILE, line, strlen(line)) < 0)
		log_warn("index %s: cannot write " UIDVALIDITY_FILE ": %s",
		    idx->userdir, strerror(errno));
	*v_r = (uint32_t)v;
	return 0;
}

void
mi_subscriptions_save(struct mbox_index *idx)
{
	static const char sel[] = "SELECT name FROM subscriptions ORDER BY name";
	sqlite3_stmt *st = mi_stmt(idx, sel);
	struct buf b;
	int rc;

	if (st == NULL)
		return;
	buf_init(&b, SUBS_FILE_MAX);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);

		if (n != NULL && buf_printf(&b, "%s\n", n) < 0)
			break;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE &&
	    replace_file(idx, MI_SUBSCRIPTIONS_FILE, buf_cstr(&b), b.len) < 0)
		log_warn("index %s: cannot write " MI_SUBSCRIPTIONS_FILE ": %s",
		    idx->userdir, strerror(errno));
	buf_free(&b);
}

/* Rebuild: subscriptions from the file.  1 loaded, 0 no file, -1. */
static int
subscriptions_load(struct mbox_index *idx)
{
	static const char ins[] =
	    "INSERT OR IGNORE INTO subscriptions(name) VALUES (?1)";
	char *text = read_small_file(idx, MI_SUBSCRIPTIONS_FILE, SUBS_FILE_MAX);
	char *line, *nl, canon[MBOX_NAME_MAX + 1];
	sqlite3_stmt *st;

	if (text == NULL)
		return 0;
	for (line = text; *line != '\0'; line = nl) {
		nl = strchr(line, '\n');
		if (nl == NULL)
			break;
		*nl++ = '\0';
		if (mi_name_canon(line, canon, sizeof(canon)) < 0)
			continue;
		st = mi_stmt(idx, ins);
		if (st == NULL || sqlite3_bind_text(st, 1, canon, -1,
		    SQLITE_STATIC) != SQLITE_OK || sqlite3_step(st) != SQLITE_DONE) {
			sqlite3_reset(st);
			free(text);
			return mi_sqlerr(idx, "subscriptions");
		}
		sqlite3_reset(st);
	}
	free(text);
	return 1;
}

/* ---- open ---- */

static int
pragma(struct mbox_index *idx, const char *sql, const char *want)
{
	sqlite3_stmt *st;
	int rc, ok = 1;

	if (sqlite3_prepare_v2(idx->db, sql, -1, &st, NULL) != SQLITE_OK)
		return mi_sqlerr(idx, sql);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && want != NULL) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		ok = v != NULL && strcasecmp(v, want) == 0;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		mi_sqlerr(idx, sql);
		sqlite3_finalize(st);
		return -1;
	}
	sqlite3_finalize(st);
	if (!ok) {
		errno = EIO;
		return mi_fail(idx, "index %s: %s failed", idx->dbpath, sql);
	}
	return 0;
}

/* Run the constant schema text statement by statement. */
static int
run_script(struct mbox_index *idx, const char *sql)
{
	const char *tail = sql;
	sqlite3_stmt *st;
	int rc;

	while (*tail != '\0') {
		if (sqlite3_prepare_v2(idx->db, tail, -1, &st, &tail) != SQLITE_OK)
			return mi_sqlerr(idx, "schema");
		if (st == NULL)
			break;
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW)
			return mi_sqlerr(idx, "schema");
	}
	return 0;
}

static int
user_version(struct mbox_index *idx, int *v)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(idx->db, "PRAGMA user_version", -1, &st,
	    NULL) != SQLITE_OK)
		return mi_sqlerr(idx, "user_version");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	if (rc != SQLITE_ROW)
		mi_sqlerr(idx, "user_version");
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * Create the schema when user_version is 0 and fill it from the Maildir
 * in the same transaction: mailboxes, subscriptions.  *fresh_r = 1 when
 * this call did it.
 */
static int
migrate(struct mbox_index *idx, int *fresh_r)
{
	char sql[64];
	int v = 0, subs;

	*fresh_r = 0;
	if (user_version(idx, &v) < 0)
		return -1;
	if (v == MI_SCHEMA_VERSION)
		return 0;
	if (v > MI_SCHEMA_VERSION) {
		errno = EPROTO;
		return mi_fail(idx, "index %s: schema version %d is newer than"
		    " this program (%d)", idx->dbpath, v, MI_SCHEMA_VERSION);
	}
	if (mi_begin(idx, 1) < 0)
		return -1;
	if (user_version(idx, &v) < 0)
		goto fail;
	if (v == MI_SCHEMA_VERSION) {	/* another process was faster */
		mi_rollback(idx);
		return 0;
	}
	if (v == 1) {			/* add what version 2 added */
		if (run_script(idx, schema_v2) < 0 ||
		    snprintf_checked(sql, sizeof(sql), "PRAGMA user_version ="
		    " %d", MI_SCHEMA_VERSION) < 0 || run_script(idx, sql) < 0)
			goto fail;
		return mi_commit(idx);
	}
	if (v != 0) {
		errno = EPROTO;
		mi_fail(idx, "index %s: unknown schema version %d",
		    idx->dbpath, v);
		goto fail;
	}
	/* PRAGMA takes no parameters; the value is our own constant. */
	if (run_script(idx, schema_v1) < 0 || run_script(idx, schema_v2) < 0 ||
	    snprintf_checked(sql, sizeof(sql), "PRAGMA user_version = %d",
	    MI_SCHEMA_VERSION) < 0 || run_script(idx, sql) < 0)
		goto fail;
	if ((subs = subscriptions_load(idx)) < 0 ||
	    mi_defaults_create(idx, subs == 0) < 0 || mi_list_sync(idx) < 0)
		goto fail;
	if (mi_commit(idx) < 0)
		return -1;
	*fresh_r = 1;
	return 0;
fail:
	mi_rollback(idx);
	return -1;
}

static void
close_db(struct mbox_index *idx)
{
	size_t i;

	for (i = 0; i < MI_STMT_SLOTS; i++) {
		sqlite3_finalize(idx->stmts[i].st);
		idx->stmts[i].st = NULL;
		idx->stmts[i].sql = NULL;
	}
	sqlite3_close(idx->db);
	idx->db = NULL;
	idx->in_tx = 0;
}

/* 0 ok, -1 error, -2 the file is not a usable index (rebuild it). */
static int
try_open(struct mbox_index *idx, int check, int *fresh_r)
{
	int fd, code;

	fd = open(idx->dbpath, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return mi_fail(idx, "index %s: %s", idx->dbpath,
		    strerror(errno));
	close(fd);
	idx->corrupt = 0;
	if (sqlite3_open_v2(idx->dbpath, &idx->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		if (idx->db == NULL) {
			errno = ENOMEM;
			return mi_fail(idx, "index: out of memory");
		}
		mi_sqlerr(idx, "open");
		goto fail;
	}
	sqlite3_extended_result_codes(idx->db, 1);
	sqlite3_busy_timeout(idx->db, MI_BUSY_TIMEOUT_MS);
	/*
	 * No lookaside (about 120 KiB per connection by default): pop3d
	 * opens one index per session.  The page cache (up to 1 MiB, filled
	 * only as pages are read) holds a 5,000-message index: with less,
	 * every query after every command went back to pread().  imapd
	 * shares one open index per active user and closes it during IDLE.
	 */
	sqlite3_db_config(idx->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0);
	if (pragma(idx, "PRAGMA cache_size = -1024", NULL) < 0 ||
	    pragma(idx, "PRAGMA journal_mode = WAL", "wal") < 0 ||
	    pragma(idx, "PRAGMA foreign_keys = ON", NULL) < 0 ||
	    pragma(idx, "PRAGMA synchronous = NORMAL", NULL) < 0)
		goto fail;
	if (check && pragma(idx, "PRAGMA quick_check", "ok") < 0) {
		idx->corrupt = 1;
		goto fail;
	}
	if (migrate(idx, fresh_r) < 0)
		goto fail;
	return 0;
fail:
	code = idx->corrupt;
	close_db(idx);
	return code ? -2 : -1;
}

/* Move a bad index.db aside (index.db.corrupt) with its WAL files. */
static int
move_aside(struct mbox_index *idx)
{
	char path[PATH_MAX + 16];

	log_warn("index %s is corrupt (%s): rebuilding it from the Maildir",
	    idx->dbpath, idx->err);
	if (snprintf_checked(path, sizeof(path), "%s.corrupt", idx->dbpath) < 0 ||
	    rename(idx->dbpath, path) < 0)
		return mi_fail(idx, "index %s: cannot move aside: %s",
		    idx->dbpath, strerror(errno));
	snprintf_checked(path, sizeof(path), "%s-wal", idx->dbpath);
	unlink(path);
	snprintf_checked(path, sizeof(path), "%s-shm", idx->dbpath);
	unlink(path);
	return 0;
}

/* After a (re)build: give every mailbox its UIDs now. */
static int
sync_all(struct mbox_index *idx)
{
	struct mbox_info *list;
	size_t n, i;
	int r = 0;

	if (mbox_list(idx, &list, &n) < 0)
		return -1;
	for (i = 0; i < n && r == 0; i++)
		r = mbox_sync(idx, list[i].id, NULL);
	free(list);
	return r;
}

int
mbox_index_open(const char *userdir, unsigned flags,
    struct mbox_index **idx_r, char *err, size_t errlen)
{
	struct mbox_index *idx;
	int r = -1, fresh = 0, attempt;

	*idx_r = NULL;
	idx = calloc(1, sizeof(*idx));
	if (idx == NULL) {
		snprintf_checked(err, errlen, "out of memory");
		return -1;
	}
	if (strlcpy_checked(idx->userdir, userdir, sizeof(idx->userdir)) < 0 ||
	    snprintf_checked(idx->dbpath, sizeof(idx->dbpath), "%s/"
	    MBOX_INDEX_FILE, userdir) < 0) {
		snprintf_checked(err, errlen, "user directory name too long");
		free(idx);
		errno = ENAMETOOLONG;
		return -1;
	}
	if (maildir_ensure(userdir) < 0) {
		snprintf_checked(err, errlen, "cannot create Maildir %s: %s",
		    userdir, strerror(errno));
		free(idx);
		return -1;
	}
	for (attempt = 0; attempt < 2; attempt++) {
		r = try_open(idx, attempt == 0 && (flags & MBOX_OPEN_CHECK) != 0,
		    &fresh);
		if (r == 0 && fresh) {
			idx->rebuilt = 1;
			r = sync_all(idx);
		} else if (r == 0) {
			/* Folders made by other programs, a lost INBOX. */
			r = mi_begin(idx, 1);
			if (r == 0 && (mi_list_sync(idx) < 0 ||
			    mi_commit(idx) < 0)) {
				mi_rollback(idx);
				r = -1;
			}
		}
		/* Corruption found now or while reading: rebuild once. */
		if (r == 0 || attempt > 0 || (r != -2 && !idx->corrupt))
			break;
		if (idx->db != NULL)
			close_db(idx);
		if (move_aside(idx) < 0) {
			r = -1;
			break;
		}
	}
	if (r < 0) {
		snprintf_checked(err, errlen, "%s", idx->err);
		if (idx->db != NULL)
			close_db(idx);
		free(idx);
		return -1;
	}
	*idx_r = idx;
	return 0;
}

void
mbox_index_close(struct mbox_index **idxp)
{
	struct mbox_index *idx = *idxp;

	if (idx == NULL)
		return;
	mi_rollback(idx);
	close_db(idx);
	free(idx);
	*idxp = NULL;
}

int
mbox_index_was_rebuilt(const struct mbox_index *idx)
{
	return idx->rebuilt;
}

void
mbox_index_set_quota(struct mbox_index *idx, uint64_t quota_bytes)
{
	idx->quota_bytes = quota_bytes;
}

const char *
mbox_index_error(const struct mbox_index *idx)
{
	return idx->err;
}

const char *
mbox_index_userdir(const struct mbox_index *idx)
{
	return idx->userdir;
}
