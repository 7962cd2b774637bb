/*
 * db_admin.c - mailadm's writes to the account database (db_admin.h):
 * domains, users and aliases, each validated here before it is stored.
 *
 * Prepared statements only; multi-row changes run in one IMMEDIATE
 * transaction.  Error lines are written for the admin: they name the
 * thing, say what is wrong and give the command that fixes it.  Input
 * echoed in them goes through log_escape() first.  Nothing here touches
 * files: mail stays on disk whatever rows are deleted.
 */
#include "db_admin.h"
#include "db_private.h"
#include "addr.h"
#include "buf.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Where an alias row's domain starts (sources are "x@d" or "@d"). */
#define SQL_DOMAIN_OF(col) "substr(" col ", instr(" col ", '@') + 1)"

/* Printable copy of untrusted input for an error line. */
static const char *
esc(char *dst, size_t dstsz, const char *s)
{
	return log_escape(dst, dstsz, s, strlen(s));
}

/* Run a statement without bindings (BEGIN, COMMIT, ROLLBACK). */
static int
exec_simple(struct db *db, const char *sql)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL, NULL);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

static void
rollback(struct db *db)
{
	if (!sqlite3_get_autocommit(db->h))
		exec_simple(db, "ROLLBACK");
}

static int
bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) == SQLITE_OK ?
	    0 : -1;
}

/* One-column integer query bound to up to two texts (NULL: unbound). */
static int
query_int(struct db *db, const char *sql, const char *a1, const char *a2,
    sqlite3_int64 *out)
{
	sqlite3_stmt *st = db_prepare(db, sql, a1, a2);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/*
 * A write bound to texts a1..a3 (NULL: leave unbound) and integers i4, i5
 * as ?4 and ?5.  Returns the number of rows changed, or -1 with the
 * SQLite extended code in *code_r.
 */
static int
exec_write(struct db *db, const char *sql, const char *a1, const char *a2,
    const char *a3, sqlite3_int64 i4, sqlite3_int64 i5, int *code_r)
{
	sqlite3_stmt *st = db_prepare(db, sql, NULL, NULL);
	int rc, n;

	*code_r = SQLITE_ERROR;
	if (st == NULL)
		return -1;
	n = sqlite3_bind_parameter_count(st);
	if ((a1 != NULL && bind_text(st, 1, a1) < 0) ||
	    (a2 != NULL && bind_text(st, 2, a2) < 0) ||
	    (a3 != NULL && bind_text(st, 3, a3) < 0) ||
	    (n >= 4 && sqlite3_bind_int64(st, 4, i4) != SQLITE_OK) ||
	    (n >= 5 && sqlite3_bind_int64(st, 5, i5) != SQLITE_OK)) {
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	*code_r = sqlite3_extended_errcode(db->h);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return sqlite3_changes(db->h);
}

int
db_admin_version_at_open(struct db *db)
{
	return db->version_at_open;
}

/* ---- input checks ---- */

int
db_admin_check_domain(const char *domain, char *out, size_t outsz,
    const char **error_r)
{
	char e[128];
	size_t len = strlen(domain);

	if (len == 0 || domain[0] == '[' || !addr_domain_valid(domain, len, 0))
		return db_fail(NULL, error_r, "invalid domain name \"%s\": use "
		    "letters, digits, hyphens and dots, e.g. example.org",
		    esc(e, sizeof(e), domain));
	if (strlcpy_checked(out, domain, outsz) < 0)
		return db_fail(NULL, error_r, "domain name too long");
	addr_lower(out);
	return 0;
}

static int
parse_full_address(const char *address, struct mailaddr *a,
    const char **error_r)
{
	char e[128];
	const char *why = "invalid address";

	if (addr_parse_plain(address, a, &why) < 0)
		return db_fail(NULL, error_r, "invalid address \"%s\": %s",
		    esc(e, sizeof(e), address), why);
	return 0;
}

int
db_admin_check_address(const char *address, char *out, size_t outsz,
    const char **error_r)
{
	struct mailaddr a;

	if (parse_full_address(address, &a, error_r) < 0)
		return -1;
	if (addr_format(&a, out, outsz) < 0)
		return db_fail(NULL, error_r, "address too long");
	return 0;
}

int
db_admin_check_user_address(const char *address, char *out, size_t outsz,
    const char **error_r)
{
	struct mailaddr a;
	char e[128];
	const char *p;

	if (parse_full_address(address, &a, error_r) < 0)
		return -1;
	for (p = a.local; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return db_fail(NULL, error_r, "invalid mailbox name \"%s\": "
			    "the part before @ may only hold letters, digits "
			    "and . _ - (for other names use an alias: mailadm "
			    "alias add)", esc(e, sizeof(e), address));
	}
	if (a.local[0] == '.' || p[-1] == '.')
		return db_fail(NULL, error_r, "invalid mailbox name \"%s\": it may "
		    "not start or end with a dot", esc(e, sizeof(e), address));
	if (addr_format(&a, out, outsz) < 0)
		return db_fail(NULL, error_r, "address too long");
	return 0;
}

int
db_admin_check_alias_source(const char *source, char *out, size_t outsz,
    const char **error_r)
{
	if (source[0] == '@') {
		char dom[ADDR_DOMAIN_MAX + 1];

		if (db_admin_check_domain(source + 1, dom, sizeof(dom),
		    error_r) < 0)
			return -1;
		if (snprintf_checked(out, outsz, "@%s", dom) < 0)
			return db_fail(NULL, error_r, "address too long");
		return 0;
	}
	return db_admin_check_address(source, out, outsz, error_r);
}

int
db_admin_check_alias_target(const char *target, char *out, size_t outsz,
    const char **error_r)
{
	if (target[0] == '@')
		return db_fail(NULL, error_r, "an alias target must be a full "
		    "address such as user@example.org (only a source may be "
		    "@domain)");
	return db_admin_check_address(target, out, outsz, error_r);
}

/* ---- domains ---- */

int
db_admin_domain_hosted(struct db *db, const char *domain,
    const char **error_r)
{
	char e[128];
	int r = db_domain_state(db, domain);

	if (r < 0)
		return db_sql_fail(db, error_r, "looking up the domain");
	if (r == 0) {
		esc(e, sizeof(e), domain);
		return db_fail(db, error_r, "domain %s is not hosted here; add it "
		    "first: mailadm domain add %s", e, e);
	}
	return 0;
}

int
db_admin_domain_add(struct db *db, const char *domain, const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1];
	int code;

	if (db_admin_check_domain(domain, d, sizeof(d), error_r) < 0)
		return -1;
	if (exec_write(db, "INSERT INTO domains (name, active, created_at)"
	    " VALUES (?1, 1, ?4)", d, NULL, NULL, (sqlite3_int64)time(NULL), 0,
	    &code) < 0) {
		if (code == SQLITE_CONSTRAINT_PRIMARYKEY)
			return db_fail(db, error_r, "domain %s already exists", d);
		return db_sql_fail(db, error_r, "adding the domain");
	}
	return 0;
}

int
db_admin_domain_del(struct db *db, const char *domain, int force,
    unsigned *users_r, unsigned *aliases_r, const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1];
	sqlite3_int64 nusers, naliases;
	int code;

	*users_r = *aliases_r = 0;
	if (db_admin_check_domain(domain, d, sizeof(d), error_r) < 0)
		return -1;
	if (exec_simple(db, "BEGIN IMMEDIATE") < 0)
		return db_sql_fail(db, error_r, "starting a transaction");
	if (db_domain_state(db, d) == 0) {
		rollback(db);
		return db_fail(db, error_r, "no such domain %s; see: mailadm "
		    "domain list", d);
	}
	if (query_int(db, "SELECT count(*) FROM users WHERE domain = ?1", d,
	    NULL, &nusers) < 0 ||
	    query_int(db, "SELECT count(*) FROM aliases WHERE "
	    SQL_DOMAIN_OF("source") " = ?1 COLLATE NOCASE", d, NULL,
	    &naliases) < 0) {
		db_sql_fail(db, error_r, "counting the domain's users");
		rollback(db);
		return -1;
	}
	if (!force && (nusers > 0 || naliases > 0)) {
		rollback(db);
		return db_fail(db, error_r, "domain %s still has %lld user(s) and "
		    "%lld alias(es); delete them first, or delete the domain "
		    "with all of them: mailadm domain del %s --force", d,
		    (long long)nusers, (long long)naliases, d);
	}
	if (exec_write(db, "DELETE FROM aliases WHERE " SQL_DOMAIN_OF("source")
	    " = ?1 COLLATE NOCASE", d, NULL, NULL, 0, 0, &code) < 0 ||
	    exec_write(db, "DELETE FROM users WHERE domain = ?1", d, NULL,
	    NULL, 0, 0, &code) < 0 ||
	    exec_write(db, "DELETE FROM dkim_keys WHERE domain = ?1", d, NULL,
	    NULL, 0, 0, &code) < 0 ||
	    exec_write(db, "DELETE FROM domains WHERE name = ?1", d, NULL, NULL,
	    0, 0, &code) < 0 ||
	    exec_simple(db, "COMMIT") < 0) {
		db_sql_fail(db, error_r, "deleting the domain");
		rollback(db);
		return -1;
	}
	*users_r = (unsigned)nusers;
	*aliases_r = (unsigned)naliases;
	return 0;
}

int
db_admin_domain_set_active(struct db *db, const char *domain, int active,
    const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1];
	int r, code;

	if (db_admin_check_domain(domain, d, sizeof(d), error_r) < 0)
		return -1;
	r = exec_write(db, "UPDATE domains SET active = ?4 WHERE name = ?1", d,
	    NULL, NULL, active ? 1 : 0, 0, &code);
	if (r < 0)
		return db_sql_fail(db, error_r, "updating the domain");
	if (r == 0)
		return db_fail(db, error_r, "no such domain %s; see: mailadm "
		    "domain list", d);
	return 0;
}

int
db_admin_domain_list(struct db *db, struct db_domain_info **list_r,
    size_t *n_r, const char **error_r)
{
	sqlite3_stmt *st = db_prepare(db,
	    "SELECT d.name, d.active, d.created_at,"
	    " (SELECT count(*) FROM users u WHERE u.domain = d.name),"
	    " (SELECT count(*) FROM aliases a WHERE "
	    SQL_DOMAIN_OF("a.source") " = d.name)"
	    " FROM domains d ORDER BY d.name", NULL, NULL);
	struct db_domain_info *list = NULL;
	size_t n = 0, cap = 0;
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if (st == NULL)
		return db_sql_fail(db, error_r, "listing domains");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_grow((void **)&list, n, &cap, sizeof(*list)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		memset(&list[n], 0, sizeof(list[n]));
		db_column_text(st, 0, list[n].name, sizeof(list[n].name));
		list[n].active = sqlite3_column_int(st, 1) != 0;
		list[n].created_at = sqlite3_column_int64(st, 2);
		list[n].users = (unsigned)sqlite3_column_int64(st, 3);
		list[n].aliases = (unsigned)sqlite3_column_int64(st, 4);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		return db_sql_fail(db, error_r, "listing domains");
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

/* ---- users ---- */

static int
check_hash(struct db *db, const char *hash, const char **error_r)
{
	if (hash == NULL || hash[0] == '\0' || strlen(hash) >= DB_HASH_MAX)
		return db_fail(db, error_r, "internal error: bad password hash");
	return 0;
}

static int
check_quota(struct db *db, uint64_t q, const char **error_r)
{
	if (q > (uint64_t)INT64_MAX)
		return db_fail(db, error_r, "quota too large");
	return 0;
}

static int
no_such_user(struct db *db, const char *a, const char **error_r)
{
	return db_fail(db, error_r, "no such user %s; see: mailadm user list", a);
}

int
db_admin_user_add(struct db *db, const char *address,
    const char *password_hash, uint64_t quota_bytes, const char **error_r)
{
	char a[ADDR_MAX];
	int code;

	if (db_admin_check_user_address(address, a, sizeof(a), error_r) < 0 ||
	    check_hash(db, password_hash, error_r) < 0 ||
	    check_quota(db, quota_bytes, error_r) < 0 ||
	    db_admin_domain_hosted(db, strrchr(a, '@') + 1, error_r) < 0)
		return -1;
	if (exec_write(db, "INSERT INTO users (address, domain, password_hash,"
	    " quota_bytes, active, created_at) VALUES (?1, ?2, ?3, ?4, 1, ?5)",
	    a, strrchr(a, '@') + 1, password_hash, (sqlite3_int64)quota_bytes,
	    (sqlite3_int64)time(NULL), &code) < 0) {
		if (code == SQLITE_CONSTRAINT_PRIMARYKEY)
			return db_fail(db, error_r, "user %s already exists", a);
		if (code == SQLITE_CONSTRAINT_FOREIGNKEY)
			return db_admin_domain_hosted(db, strrchr(a, '@') + 1,
			    error_r) < 0 ? -1 : db_sql_fail(db, error_r,
			    "adding the user");
		return db_sql_fail(db, error_r, "adding the user");
	}
	return 0;
}

/* Normal form of an existing user's address as typed by the admin. */
static int
user_key(struct db *db, const char *address, char *out, size_t outsz,
    const char **error_r)
{
	return db_admin_check_address(address, out, outsz, error_r);
}

int
db_admin_user_del(struct db *db, const char *address, char *stored_r,
    const char **error_r)
{
	char a[ADDR_MAX];
	struct db_user u;
	int r, code;

	if (user_key(db, address, a, sizeof(a), error_r) < 0)
		return -1;
	r = db_user_get(db, a, &u);
	explicit_bzero(u.password_hash, sizeof(u.password_hash));
	if (r < 0)
		return db_sql_fail(db, error_r, "looking up the user");
	if (r == 0)
		return no_such_user(db, a, error_r);
	strlcpy_checked(stored_r, u.address, ADDR_MAX);
	if ((r = exec_write(db, "DELETE FROM users WHERE address = ?1", a, NULL,
	    NULL, 0, 0, &code)) < 0)
		return db_sql_fail(db, error_r, "deleting the user");
	if (r == 0)
		return no_such_user(db, a, error_r);
	return 0;
}

/* UPDATE users SET ... WHERE address = ?1; 0 rows is "no such user". */
static int
user_update(struct db *db, const char *address, const char *sql,
    const char *text3, sqlite3_int64 int4, const char **error_r)
{
	char a[ADDR_MAX];
	int r, code;

	if (user_key(db, address, a, sizeof(a), error_r) < 0)
		return -1;
	if ((r = exec_write(db, sql, a, NULL, text3, int4, 0, &code)) < 0)
		return db_sql_fail(db, error_r, "updating the user");
	if (r == 0)
		return no_such_user(db, a, error_r);
	return 0;
}

int
db_admin_user_set_password(struct db *db, const char *address,
    const char *password_hash, const char **error_r)
{
	if (check_hash(db, password_hash, error_r) < 0)
		return -1;
	return user_update(db, address, "UPDATE users SET password_hash = ?3"
	    " WHERE address = ?1", password_hash, 0, error_r);
}

int
db_admin_user_set_quota(struct db *db, const char *address,
    uint64_t quota_bytes, const char **error_r)
{
	if (check_quota(db, quota_bytes, error_r) < 0)
		return -1;
	return user_update(db, address, "UPDATE users SET quota_bytes = ?4"
	    " WHERE address = ?1", NULL, (sqlite3_int64)quota_bytes, error_r);
}

int
db_admin_user_set_active(struct db *db, const char *address, int active,
    const char **error_r)
{
	return user_update(db, address, "UPDATE users SET active = ?4"
	    " WHERE address = ?1", NULL, active ? 1 : 0, error_r);
}

int
db_admin_user_list(struct db *db, const char *domain,
    struct db_user **list_r, size_t *n_r, const char **error_r)
{
	sqlite3_stmt *st;
	struct db_user *list = NULL;
	size_t n = 0, cap = 0;
	char d[ADDR_DOMAIN_MAX + 1];
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if (domain != NULL &&
	    (db_admin_check_domain(domain, d, sizeof(d), error_r) < 0 ||
	    db_admin_domain_hosted(db, d, error_r) < 0))
		return -1;
	st = db_prepare(db, "SELECT address, domain, quota_bytes, active,"
	    " created_at FROM users WHERE ?1 IS NULL OR domain = ?1"
	    " ORDER BY domain, address", domain != NULL ? d : NULL, NULL);
	if (st == NULL)
		return db_sql_fail(db, error_r, "listing users");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 q = sqlite3_column_int64(st, 2);

		if (db_grow((void **)&list, n, &cap, sizeof(*list)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		memset(&list[n], 0, sizeof(list[n]));
		db_column_text(st, 0, list[n].address, sizeof(list[n].address));
		db_column_text(st, 1, list[n].domain, sizeof(list[n].domain));
		list[n].quota_bytes = q > 0 ? (uint64_t)q : 0;
		list[n].active = sqlite3_column_int(st, 3) != 0;
		list[n].created_at = sqlite3_column_int64(st, 4);
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		return db_sql_fail(db, error_r, "listing users");
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

/* ---- aliases ---- */

int
db_admin_alias_add(struct db *db, const char *source, const char *target,
    const char **error_r)
{
	char s[ADDR_MAX], t[ADDR_MAX];
	struct db_user u;
	int code, r;

	if (db_admin_check_alias_source(source, s, sizeof(s), error_r) < 0 ||
	    db_admin_check_alias_target(target, t, sizeof(t), error_r) < 0 ||
	    db_admin_domain_hosted(db, strrchr(s, '@') + 1, error_r) < 0)
		return -1;
	if (strcasecmp(s, t) == 0) {
		r = db_user_get(db, s, &u);
		explicit_bzero(u.password_hash, sizeof(u.password_hash));
		if (r < 0)
			return db_sql_fail(db, error_r, "looking up the user");
		if (r == 0)
			return db_fail(db, error_r, "alias %s -> %s would loop: an "
			    "address may only point to itself when it is also "
			    "a user (to keep a copy of forwarded mail)", s, t);
	}
	if (exec_write(db, "INSERT INTO aliases (source, target) VALUES (?1, ?2)",
	    s, t, NULL, 0, 0, &code) < 0) {
		if (code == SQLITE_CONSTRAINT_PRIMARYKEY)
			return db_fail(db, error_r, "alias %s -> %s already exists",
			    s, t);
		return db_sql_fail(db, error_r, "adding the alias");
	}
	return 0;
}

int
db_admin_alias_del(struct db *db, const char *source, const char *target,
    unsigned *deleted_r, const char **error_r)
{
	char s[ADDR_MAX], t[ADDR_MAX];
	int code, r;

	*deleted_r = 0;
	if (db_admin_check_alias_source(source, s, sizeof(s), error_r) < 0 ||
	    (target != NULL &&
	    db_admin_check_alias_target(target, t, sizeof(t), error_r) < 0))
		return -1;
	if (target == NULL)
		r = exec_write(db, "DELETE FROM aliases WHERE source = ?1", s,
		    NULL, NULL, 0, 0, &code);
	else
		r = exec_write(db, "DELETE FROM aliases WHERE source = ?1"
		    " AND target = ?2", s, t, NULL, 0, 0, &code);
	if (r < 0)
		return db_sql_fail(db, error_r, "deleting the alias");
	if (r == 0) {
		if (target == NULL)
			return db_fail(db, error_r, "no alias with source %s; see: "
			    "mailadm alias list", s);
		return db_fail(db, error_r, "no alias %s -> %s; see: mailadm alias "
		    "list", s, t);
	}
	*deleted_r = (unsigned)r;
	return 0;
}

int
db_admin_alias_list(struct db *db, const char *domain,
    struct db_alias_info **list_r, size_t *n_r, const char **error_r)
{
	sqlite3_stmt *st;
	struct db_alias_info *list = NULL;
	size_t n = 0, cap = 0;
	char d[ADDR_DOMAIN_MAX + 1];
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if (domain != NULL &&
	    (db_admin_check_domain(domain, d, sizeof(d), error_r) < 0 ||
	    db_admin_domain_hosted(db, d, error_r) < 0))
		return -1;
	st = db_prepare(db, "SELECT a.source, a.target, EXISTS (SELECT 1 FROM"
	    " domains d WHERE d.name = " SQL_DOMAIN_OF("a.target") ")"
	    " FROM aliases a WHERE ?1 IS NULL OR "
	    SQL_DOMAIN_OF("a.source") " = ?1 COLLATE NOCASE"
	    " ORDER BY " SQL_DOMAIN_OF("a.source") ", a.source, a.target",
	    domain != NULL ? d : NULL, NULL);
	if (st == NULL)
		return db_sql_fail(db, error_r, "listing aliases");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_grow((void **)&list, n, &cap, sizeof(*list)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		memset(&list[n], 0, sizeof(list[n]));
		db_column_text(st, 0, list[n].source, sizeof(list[n].source));
		db_column_text(st, 1, list[n].target, sizeof(list[n].target));
		list[n].local_target = sqlite3_column_int(st, 2) != 0;
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		return db_sql_fail(db, error_r, "listing aliases");
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

int
db_admin_alias_count_target(struct db *db, const char *target)
{
	sqlite3_int64 n;

	if (query_int(db, "SELECT count(*) FROM aliases WHERE target = ?1",
	    target, NULL, &n) < 0)
		return -1;
	return n > INT32_MAX ? INT32_MAX : (int)n;
}
