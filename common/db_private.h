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
 * Bring the schema up to DB_SCHEMA_VERSION in one transaction.
 * *from_r receives the version found.  0, or -1 with err set.
 */
int db_schema_migrate(sqlite3 *h, int *from_r, char *err, size_t errlen);

#endif
