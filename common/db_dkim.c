/*
 * db_dkim.c - the dkim_keys table (db_dkim.h): the signing key lookup
 * daemons make, and mailadm's writes.
 *
 * "Which key signs" is decided in SQL in one place (SIGNER_ROWID), so the
 * queue runner and `mailadm dkim list` can never disagree.  Prepared
 * statements only.  Nothing here reads or writes key files.
 */
#include "db_dkim.h"
#include "db_admin.h"
#include "db_private.h"
#include "buf.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The rowid of the key that signs for the domain of row k. */
#define SIGNER_ROWID \
	"(SELECT min(s.rowid) FROM dkim_keys s" \
	" WHERE s.domain = k.domain AND s.active = 1)"

/* Columns: domain, selector, path, active, signing. */
#define KEY_COLUMNS \
	"k.domain, k.selector, k.private_key_path, k.active," \
	" k.rowid IS " SIGNER_ROWID

static void
read_key(sqlite3_stmt *st, struct db_dkim_key *k)
{
	memset(k, 0, sizeof(*k));
	db_column_text(st, 0, k->domain, sizeof(k->domain));
	db_column_text(st, 1, k->selector, sizeof(k->selector));
	db_column_text(st, 2, k->key_path, sizeof(k->key_path));
	k->active = sqlite3_column_int(st, 3) != 0;
	k->signing = sqlite3_column_int(st, 4) != 0;
}

int
db_dkim_signer(struct db *db, const char *domain, struct db_dkim_key *k)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT " KEY_COLUMNS
	    " FROM dkim_keys k WHERE k.domain = ?1 AND k.active = 1"
	    " ORDER BY k.rowid LIMIT 1", domain, NULL);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_key(st, k);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

int
db_dkim_signing_key(struct db *db, const char *domain, char *selector,
    size_t selsz, char *path, size_t pathsz)
{
	struct db_dkim_key k;
	int r = db_dkim_signer(db, domain, &k);

	if (r != 1)
		return r;
	if (strlcpy_checked(selector, k.selector, selsz) < 0 ||
	    strlcpy_checked(path, k.key_path, pathsz) < 0)
		return -1;
	return 1;
}

int
db_dkim_check_selector(const char *selector, char *out, size_t outsz,
    const char **error_r)
{
	char e[128];
	size_t i, label = 0, len = strlen(selector);

	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)selector[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > DKIM_LABEL_MAX ||
			    selector[i - 1] == '-')
				break;
			label = 0;
			continue;
		}
		if (label == 0 && c == '-')
			break;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			break;
		label++;
	}
	if (i <= len || len > DKIM_SELECTOR_MAX)
		return db_fail(NULL, error_r, "invalid DKIM selector \"%s\": use "
		    "letters, digits and inner hyphens, dot-separated labels "
		    "of at most %d characters, e.g. s202611",
		    log_escape(e, sizeof(e), selector, len), DKIM_LABEL_MAX);
	if (strlcpy_checked(out, selector, outsz) < 0)
		return db_fail(NULL, error_r, "DKIM selector too long");
	addr_lower(out);
	return 0;
}

/* sql with texts ?1 and ?2 run once: sqlite3_step()'s code, or an error. */
static int
step_once(struct db *db, const char *sql, const char *a1, const char *a2)
{
	sqlite3_stmt *st = db_prepare(db, sql, a1, a2);
	int rc;

	if (st == NULL)
		return SQLITE_ERROR;
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc;
}

/* Domain and selector in normal form, or -1 with *error_r. */
static int
normal_names(const char *domain, const char *selector, char *d, char *s,
    const char **error_r)
{
	if (db_admin_check_domain(domain, d, ADDR_DOMAIN_MAX + 1,
	    error_r) < 0)
		return -1;
	if (selector != NULL && db_dkim_check_selector(selector, s,
	    DKIM_SELECTOR_MAX + 1, error_r) < 0)
		return -1;
	return 0;
}

int
db_dkim_key_exists(struct db *db, const char *domain, const char *selector,
    const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1], s[DKIM_SELECTOR_MAX + 1];
	int rc;

	if (normal_names(domain, selector, d, s, error_r) < 0)
		return -1;
	rc = step_once(db, "SELECT 1 FROM dkim_keys WHERE domain = ?1"
	    " AND selector = ?2", d, s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_sql_fail(db, error_r, "looking up the DKIM key");
	return rc == SQLITE_ROW;
}

int
db_dkim_key_add(struct db *db, const char *domain, const char *selector,
    const char *key_path, const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1], s[DKIM_SELECTOR_MAX + 1];
	sqlite3_stmt *st;
	int rc, code;

	if (normal_names(domain, selector, d, s, error_r) < 0 ||
	    db_admin_domain_hosted(db, d, error_r) < 0)
		return -1;
	if (key_path[0] != '/' || strlen(key_path) >= DKIM_PATH_MAX)
		return db_fail(db, error_r, "DKIM key path %s must be absolute and "
		    "shorter than %d bytes", key_path, DKIM_PATH_MAX);
	st = db_prepare(db, "INSERT INTO dkim_keys (domain, selector,"
	    " private_key_path, active) VALUES (?1, ?2, ?3, 1)", d, s);
	if (st == NULL || sqlite3_bind_text(st, 3, key_path, -1,
	    SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_sql_fail(db, error_r, "adding the DKIM key");
	}
	rc = sqlite3_step(st);
	code = sqlite3_extended_errcode(db->h);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (code == SQLITE_CONSTRAINT_PRIMARYKEY)
		return db_fail(db, error_r, "domain %s already has a DKIM key with "
		    "selector %s; choose another: --selector NAME", d, s);
	return db_sql_fail(db, error_r, "adding the DKIM key");
}

int
db_dkim_key_list(struct db *db, const char *domain,
    struct db_dkim_key **list_r, size_t *n_r, const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1];
	struct db_dkim_key *list = NULL;
	size_t n = 0, cap = 0;
	sqlite3_stmt *st;
	int rc;

	*list_r = NULL;
	*n_r = 0;
	if (domain != NULL && (normal_names(domain, NULL, d, NULL,
	    error_r) < 0 || db_admin_domain_hosted(db, d, error_r) < 0))
		return -1;
	st = db_prepare(db, "SELECT " KEY_COLUMNS " FROM dkim_keys k"
	    " WHERE ?1 IS NULL OR k.domain = ?1 ORDER BY k.domain, k.rowid",
	    domain != NULL ? d : NULL, NULL);
	if (st == NULL)
		return db_sql_fail(db, error_r, "listing DKIM keys");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (db_grow((void **)&list, n, &cap, sizeof(*list)) < 0) {
			rc = SQLITE_NOMEM;
			break;
		}
		read_key(st, &list[n++]);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(list);
		return db_sql_fail(db, error_r, "listing DKIM keys");
	}
	*list_r = list;
	*n_r = n;
	return 0;
}

int
db_dkim_key_retire(struct db *db, const char *domain, const char *selector,
    const char **error_r)
{
	char d[ADDR_DOMAIN_MAX + 1], s[DKIM_SELECTOR_MAX + 1];
	int r;

	if (normal_names(domain, selector, d, s, error_r) < 0 ||
	    db_admin_domain_hosted(db, d, error_r) < 0)
		return -1;
	if (step_once(db, "UPDATE dkim_keys SET active = 0 WHERE domain = ?1"
	    " AND selector = ?2 AND active = 1", d, s) != SQLITE_DONE)
		return db_sql_fail(db, error_r, "retiring the DKIM key");
	if (sqlite3_changes(db->h) == 1)
		return 0;
	if ((r = db_dkim_key_exists(db, d, s, error_r)) < 0)
		return -1;
	if (r == 1)
		return db_fail(db, error_r, "the DKIM key %s of %s is already "
		    "retired", s, d);
	return db_fail(db, error_r, "domain %s has no DKIM key with selector %s; "
	    "see: mailadm dkim list %s", d, s, d);
}
