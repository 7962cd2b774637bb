/*
 * db_schema.c - the account database schema (DESIGN.md "Data") and its
 * migrations, versioned by PRAGMA user_version.
 *
 * A later version adds one row to migrations[] (never edits an old one)
 * and bumps DB_SCHEMA_VERSION in db.h.  All pending steps run in one
 * IMMEDIATE transaction, so two processes starting at once cannot both
 * migrate, and a failed step leaves the file as it was.  The SQL here is
 * constant text: nothing from a user or the network is ever pasted in.
 */
#include "db_private.h"
#include "buf.h"

#include <stdio.h>
#include <string.h>

/*
 * Version 1.  Domains are stored lower-case (CHECK); addresses and alias
 * sources/targets compare case-insensitively (COLLATE NOCASE), which is
 * what makes Bob@x and bob@x the same user.  Timestamps are unix seconds.
 */
static const char schema_v1[] =
	"CREATE TABLE domains (\n"
	"  name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE\n"
	"    CHECK (name = lower(name) AND length(name) BETWEEN 1 AND 255),\n"
	"  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),\n"
	"  created_at INTEGER NOT NULL\n"
	");\n"
	"CREATE TABLE users (\n"
	"  address TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,\n"
	"  domain TEXT NOT NULL COLLATE NOCASE REFERENCES domains(name),\n"
	"  password_hash TEXT NOT NULL,\n"
	"  quota_bytes INTEGER NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),\n"
	"  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),\n"
	"  created_at INTEGER NOT NULL\n"
	");\n"
	"CREATE INDEX users_domain ON users(domain);\n"
	"CREATE TABLE aliases (\n"
	"  source TEXT NOT NULL COLLATE NOCASE,\n"
	"  target TEXT NOT NULL COLLATE NOCASE,\n"
	"  PRIMARY KEY (source, target)\n"
	");\n"
	"CREATE INDEX aliases_source ON aliases(source);\n"
	"CREATE INDEX aliases_target ON aliases(target);\n"
	"CREATE TABLE dkim_keys (\n"
	"  domain TEXT NOT NULL COLLATE NOCASE REFERENCES domains(name),\n"
	"  selector TEXT NOT NULL,\n"
	"  private_key_path TEXT NOT NULL,\n"
	"  active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),\n"
	"  PRIMARY KEY (domain, selector)\n"
	");\n";

/*
 * Version 2: one row per DMARC evaluation of mail from outside (smtpd),
 * the raw material of the daily aggregate reports (RFC 7489 7.2,
 * db_dmarc.c).  Rows are purged after DMARC_KEEP_DAYS.  "dkim" holds
 * every signature judged as "DOMAIN SELECTOR RESULT", signatures joined
 * by ';' (fields never contain ' ' or ';': db_dmarc.c replaces them), so
 * rows with the same results group by one column.  Text from outside is
 * stored as it came (bounded); the report builder escapes it.
 */
static const char schema_v2[] =
	"CREATE TABLE dmarc_evaluations (\n"
	"  id INTEGER PRIMARY KEY,\n"
	"  time INTEGER NOT NULL,\n"
	"  source_ip TEXT NOT NULL,\n"
	"  envelope_from TEXT NOT NULL,\n"
	"  header_from TEXT NOT NULL,\n"
	"  spf_domain TEXT NOT NULL,\n"
	"  spf_scope TEXT NOT NULL CHECK (spf_scope IN ('mfrom', 'helo')),\n"
	"  spf_result TEXT NOT NULL,\n"
	"  spf_aligned INTEGER NOT NULL CHECK (spf_aligned IN (0, 1)),\n"
	"  dkim TEXT NOT NULL,\n"
	"  dkim_aligned INTEGER NOT NULL CHECK (dkim_aligned IN (0, 1)),\n"
	"  dmarc_result TEXT NOT NULL,\n"
	"  disposition TEXT NOT NULL\n"
	"    CHECK (disposition IN ('none', 'quarantine', 'reject')),\n"
	"  reason TEXT NOT NULL,\n"
	"  policy_domain TEXT NOT NULL,\n"
	"  org_domain TEXT NOT NULL,\n"
	"  p TEXT NOT NULL,\n"
	"  sp TEXT NOT NULL,\n"
	"  adkim TEXT NOT NULL,\n"
	"  aspf TEXT NOT NULL,\n"
	"  pct INTEGER NOT NULL,\n"
	"  rua TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX dmarc_evaluations_time ON dmarc_evaluations(time);\n";

static const struct migration {
	int version;		/* user_version after this step */
	const char *sql;
} migrations[] = {
	{ 1, schema_v1 },
	{ 2, schema_v2 },
};

#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

static int
set_sqlite_err(sqlite3 *h, const char *what, char *err, size_t errlen)
{
	snprintf_checked(err, errlen, "%s: %s", what, sqlite3_errmsg(h));
	return -1;
}

/* Run every statement of a constant multi-statement text, prepared one by one. */
static int
run_script(sqlite3 *h, const char *sql, char *err, size_t errlen)
{
	const char *tail = sql;

	while (*tail != '\0') {
		sqlite3_stmt *st = NULL;
		int rc;

		if (sqlite3_prepare_v2(h, tail, -1, &st, &tail) != SQLITE_OK)
			return set_sqlite_err(h, "schema", err, errlen);
		if (st == NULL)		/* only whitespace or comments left */
			break;
		do
			rc = sqlite3_step(st);
		while (rc == SQLITE_ROW);
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			return set_sqlite_err(h, "schema", err, errlen);
	}
	return 0;
}

static int
read_user_version(sqlite3 *h, int *v, char *err, size_t errlen)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return set_sqlite_err(h, "reading schema version", err, errlen);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return set_sqlite_err(h, "reading schema version", err, errlen);
	return 0;
}

static int
write_user_version(sqlite3 *h, int v, char *err, size_t errlen)
{
	char sql[64];

	/* PRAGMA takes no bound parameters; v is our own constant. */
	if (snprintf_checked(sql, sizeof(sql), "PRAGMA user_version = %d", v) < 0) {
		snprintf_checked(err, errlen, "schema version: internal error");
		return -1;
	}
	return run_script(h, sql, err, errlen);
}

int
db_schema_migrate(sqlite3 *h, int *from_r, char *err, size_t errlen)
{
	int v = 0;
	size_t i;

	if (migrations[N_MIGRATIONS - 1].version != DB_SCHEMA_VERSION) {
		snprintf_checked(err, errlen,
		    "internal error: last migration is not DB_SCHEMA_VERSION");
		return -1;
	}
	if (read_user_version(h, &v, err, errlen) < 0)
		return -1;
	*from_r = v;
	if (v == DB_SCHEMA_VERSION)
		return 0;
	if (v > DB_SCHEMA_VERSION) {
		snprintf_checked(err, errlen, "database schema version %d is "
		    "newer than this program understands (%d); install the "
		    "newer buzon", v, DB_SCHEMA_VERSION);
		return -1;
	}
	if (run_script(h, "BEGIN IMMEDIATE", err, errlen) < 0)
		return -1;
	/* Someone may have migrated between our read and our lock. */
	if (read_user_version(h, &v, err, errlen) < 0)
		goto rollback;
	*from_r = v;
	for (i = 0; i < N_MIGRATIONS; i++) {
		if (migrations[i].version <= v)
			continue;
		if (run_script(h, migrations[i].sql, err, errlen) < 0 ||
		    write_user_version(h, migrations[i].version, err, errlen) < 0)
			goto rollback;
	}
	if (run_script(h, "COMMIT", err, errlen) < 0)
		goto rollback;
	return 0;
rollback:
	sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
	return -1;
}
