/*
 * db.c - opening the account database and the read-side lookups the
 * daemons make (db.h).  Recipient resolution is in db_resolve.c, the
 * schema in db_schema.c, admin writes in db_admin.c, password hashing in
 * password.c.
 *
 * Every query is a prepared statement with bound parameters.  Nothing
 * here writes to the database except the migrations run by db_open().
 */
#include "db_private.h"
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DB_BUSY_TIMEOUT_MS 2000

static const char *const stmt_sql[DBS_COUNT] = {
	[DBS_DOMAIN_STATE] = "SELECT active FROM domains WHERE name = ?1",
	[DBS_USER_GET] =
	    "SELECT u.address, u.domain, u.password_hash, u.quota_bytes,"
	    " u.active AND d.active, u.created_at"
	    " FROM users u JOIN domains d ON d.name = u.domain"
	    " WHERE u.address = ?1",
	[DBS_ALIAS_TARGETS] =
	    "SELECT target FROM aliases WHERE source = ?1 ORDER BY target",
};

sqlite3_stmt *
db_stmt(struct db *db, enum db_stmt_id id)
{
	sqlite3_stmt *st = db->stmts[id];

	if (st == NULL) {
		if (sqlite3_prepare_v3(db->h, stmt_sql[id], -1,
		    SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
			return NULL;
		db->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/* One PRAGMA that may return a row; ok if it ran. */
static int
run_pragma(sqlite3 *h, const char *sql, const char *want)
{
	sqlite3_stmt *st;
	int rc, ok = 1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && want != NULL) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		ok = v != NULL && strcasecmp(v, want) == 0;
	}
	sqlite3_finalize(st);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE) && ok ? 0 : -1;
}

/* Create the file 0600 ourselves so SQLite (and its -wal/-shm) inherit it. */
static int
create_db_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);

	if (fd < 0) {
		if (errno == EEXIST)
			return 0;
		snprintf_checked(err, errlen, "cannot create database %s: %s", path,
		    strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

int
db_open(const char *path, int create, struct db **out, char *err,
    size_t errlen)
{
	struct stat st;
	struct db *db;
	int from;

	*out = NULL;
	if (stat(path, &st) < 0) {
		if (errno != ENOENT) {
			snprintf_checked(err, errlen, "database %s: %s", path,
			    strerror(errno));
			return -1;
		}
		if (!create) {
			snprintf_checked(err, errlen, "database %s does not exist; "
			    "create it with: mailadm init", path);
			return -1;
		}
		if (create_db_file(path, err, errlen) < 0)
			return -1;
	} else if (!S_ISREG(st.st_mode)) {
		snprintf_checked(err, errlen, "database %s is not a regular file",
		    path);
		return -1;
	} else if (access(path, R_OK | W_OK) < 0) {
		snprintf_checked(err, errlen, "database %s: %s for uid %ld; it must "
		    "belong to the daemons' user (mailadm init, run as root, "
		    "fixes the owner)", path, strerror(errno), (long)getuid());
		return -1;
	}

	db = calloc(1, sizeof(*db));
	if (db == NULL) {
		snprintf_checked(err, errlen, "out of memory");
		return -1;
	}
	if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW, NULL) != SQLITE_OK) {
		snprintf_checked(err, errlen, "cannot open database %s: %s", path,
		    db->h != NULL ? sqlite3_errmsg(db->h) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db->h, 1);
	sqlite3_busy_timeout(db->h, DB_BUSY_TIMEOUT_MS);
	if (run_pragma(db->h, "PRAGMA foreign_keys = ON", NULL) < 0 ||
	    run_pragma(db->h, "PRAGMA journal_mode = WAL", "wal") < 0) {
		int code = sqlite3_errcode(db->h) & 0xff;

		snprintf_checked(err, errlen, "database %s: %s%s", path,
		    sqlite3_errmsg(db->h), code == SQLITE_READONLY ||
		    code == SQLITE_CANTOPEN || code == SQLITE_PERM ?
		    " (this user must be able to write the file and its"
		    " directory; mailadm init as root fixes the owner)" : "");
		goto fail;
	}
	if (db_schema_migrate(db->h, &from, err, errlen) < 0) {
		char why[256];

		strlcpy_checked(why, err, sizeof(why));
		snprintf_checked(err, errlen, "database %s: %s", path, why);
		goto fail;
	}
	db->version_at_open = from;
	*out = db;
	return 0;
fail:
	sqlite3_close(db->h);
	free(db);
	return -1;
}

void
db_close(struct db **dbp)
{
	struct db *db = *dbp;
	int i;

	if (db == NULL)
		return;
	for (i = 0; i < DBS_COUNT; i++)
		sqlite3_finalize(db->stmts[i]);
	sqlite3_close(db->h);
	free(db);
	*dbp = NULL;
}

int
db_domain_state(struct db *db, const char *domain)
{
	sqlite3_stmt *st = db_stmt(db, DBS_DOMAIN_STATE);
	int rc, r;

	if (st == NULL ||
	    sqlite3_bind_text(st, 1, domain, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = sqlite3_column_int(st, 0) ? 1 : 2;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = -1;
	sqlite3_reset(st);
	return r;
}

int
db_domain_is_local(struct db *db, const char *domain)
{
	int r = db_domain_state(db, domain);

	return r < 0 ? -1 : r == 1;
}

/* Copy a text column into a fixed field; -1 if NULL or it does not fit. */
static int
column_copy(sqlite3_stmt *st, int col, char *dst, size_t dstsz)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	if (v == NULL)
		return -1;
	return strlcpy_checked(dst, v, dstsz);
}

int
db_user_get(struct db *db, const char *address, struct db_user *u)
{
	sqlite3_stmt *st = db_stmt(db, DBS_USER_GET);
	sqlite3_int64 q;
	int rc, r = -1;

	if (st == NULL ||
	    sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = 0;
	} else if (rc == SQLITE_ROW) {
		memset(u, 0, sizeof(*u));
		q = sqlite3_column_int64(st, 3);
		if (column_copy(st, 0, u->address, sizeof(u->address)) == 0 &&
		    column_copy(st, 1, u->domain, sizeof(u->domain)) == 0 &&
		    column_copy(st, 2, u->password_hash,
		    sizeof(u->password_hash)) == 0 && q >= 0) {
			u->quota_bytes = (uint64_t)q;
			u->active = sqlite3_column_int(st, 4) != 0;
			u->created_at = sqlite3_column_int64(st, 5);
			r = 1;
		}
	}
	sqlite3_reset(st);
	return r;
}

/* A path component we are willing to create under mail_dir. */
static int
component_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.')	/* also refuses "." and ".." */
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '/' || c < 0x20 || c == 0x7f)
			return 0;
	}
	return 1;
}

int
db_user_maildir(const char *mail_dir, const char *address, char *out,
    size_t outsz)
{
	char local[ADDR_LOCAL_MAX + 1], domain[ADDR_DOMAIN_MAX + 1];
	const char *at = strrchr(address, '@');
	size_t ll;

	if (at == NULL || mail_dir[0] == '\0')
		return -1;
	ll = (size_t)(at - address);
	if (!component_ok(address, ll) || !component_ok(at + 1, strlen(at + 1)) ||
	    ll >= sizeof(local) ||
	    strlcpy_checked(domain, at + 1, sizeof(domain)) < 0)
		return -1;
	memcpy(local, address, ll);
	local[ll] = '\0';
	addr_lower(local);
	addr_lower(domain);
	return snprintf_checked(out, outsz, "%s/%s/%s", mail_dir, domain, local);
}

/* ---- shared by the db_*.c files that report to mailadm ---- */

/* Messages of the pure checks, which have no struct db to hold them. */
static __thread char check_errbuf[512];

int
db_fail(struct db *db, const char **error_r, const char *fmt, ...)
{
	char *dst = db != NULL ? db->errbuf : check_errbuf;
	size_t dstsz = db != NULL ? sizeof(db->errbuf) : sizeof(check_errbuf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dst, dstsz, fmt, ap);
	va_end(ap);
	*error_r = dst;
	return -1;
}

int
db_sql_fail(struct db *db, const char **error_r, const char *what)
{
	return db_fail(db, error_r, "database error while %s: %s", what,
	    sqlite3_errmsg(db->h));
}

sqlite3_stmt *
db_prepare(struct db *db, const char *sql, const char *a1, const char *a2)
{
	sqlite3_stmt *st = NULL;

	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return NULL;
	if ((a1 != NULL &&
	    sqlite3_bind_text(st, 1, a1, -1, SQLITE_STATIC) != SQLITE_OK) ||
	    (a2 != NULL &&
	    sqlite3_bind_text(st, 2, a2, -1, SQLITE_STATIC) != SQLITE_OK)) {
		sqlite3_finalize(st);
		return NULL;
	}
	return st;
}

void
db_column_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz)
{
	const char *v = (const char *)sqlite3_column_text(st, col);

	strlcpy_checked(dst, v != NULL ? v : "", dstsz);
}

int
db_grow(void **p, size_t n, size_t *cap, size_t elsize)
{
	void *np;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	np = reallocarray(*p, ncap, elsize);
	if (np == NULL)
		return -1;
	*p = np;
	*cap = ncap;
	return 0;
}
