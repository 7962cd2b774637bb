/*
 * db_private.h - what db.c, db_schema.c, db_resolve.c and db_admin.c share
 * about struct db.  Nothing outside common/db*.c includes this: daemons
 * see only db.h, mailadm only db.h and db_admin.h.
 */
#ifndef BUZON_DB_PRIVATE_H
#define BUZON_DB_PRIVATE_H

#include <stddef.h>
#include <sqlite3.h>

#include "db.h"

/* Statements used on the daemons' hot path, prepared once per handle. */
enum db_stmt_id {
	DBS_DOMAIN_STATE,	/* ?1 domain -> active */
	DBS_USER_GET,		/* ?1 address -> user row joined with domain */
	DBS_ALIAS_TARGETS,	/* ?1 source -> target rows */
	DBS_COUNT
};

struct db {
	sqlite3 *h;
	int version_at_open;		/* user_version before migrations */
	sqlite3_stmt *stmts[DBS_COUNT];
	char errbuf[512];		/* what db_admin's error_r points to */
};

/*
 * The cached statement id, reset and with its bindings cleared, or NULL
 * on error.  The caller must sqlite3_reset() it before anything else
 * uses the same id (no statement is held across a recursive call).
 */
sqlite3_stmt *db_stmt(struct db *db, enum db_stmt_id id);

/* Domain state: 1 ours and active, 2 ours but inactive, 0 not ours, -1 error. */
int db_domain_state(struct db *db, const char *domain);

/*
 * The error convention of the admin functions (db_admin.h): the message
 * goes into db->errbuf (with db NULL, a check that has no handle, into a
 * per-thread buffer), *error_r points at it, and the result is -1.
 */
int db_fail(struct db *db, const char **error_r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "database error while WHAT: " and SQLite's message.  -1. */
int db_sql_fail(struct db *db, const char **error_r, const char *what);

/* sql prepared, texts a1 and a2 bound as ?1 and ?2 (NULL: unbound); NULL. */
sqlite3_stmt *db_prepare(struct db *db, const char *sql, const char *a1,
    const char *a2);

/* A text column copied into a fixed field ("" for NULL, cut to fit). */
void db_column_text(sqlite3_stmt *st, int col, char *dst, size_t dstsz);

/* Room for element n of a growing array of elsize bytes.  0 or -1. */
int db_grow(void **p, size_t n, size_t *cap, size_t elsize);

/*
 * Bring the schema up to DB_SCHEMA_VERSION in one transaction.
 * *from_r receives the version found.  0, or -1 with err set.
 */
int db_schema_migrate(sqlite3 *h, int *from_r, char *err, size_t errlen);

#endif
