/*
 * db.h - the account database (SQLite) as seen by the daemons.
 *
 * Schema and migrations live in db_schema.c; the admin-side writes used
 * by mailadm are in db_admin.h.  Every query is a prepared statement
 * with bound parameters.  A struct db is used by one thread only.
 */
#ifndef BUZON_DB_H
#define BUZON_DB_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct db;

#define DB_SCHEMA_VERSION 2
#define DB_HASH_MAX 256
#define RESOLVE_MAX_DEPTH 10	/* alias chain length */
#define RESOLVE_MAX_TARGETS 1000	/* final mailboxes + outside targets */

/*
 * Open (creating the file when create is set), set WAL and busy_timeout,
 * apply pending migrations.  A daemon opens with create = 0 and gets a
 * clear error naming `mailadm init` when the file is missing.
 */
int db_open(const char *path, int create, struct db **out, char *err,
    size_t errlen);
void db_close(struct db **dbp);

/* 1: domain is ours and active; 0: not ours (or inactive); -1: error. */
int db_domain_is_local(struct db *db, const char *domain);

struct db_user {
	char address[ADDR_MAX];		/* as stored */
	char domain[ADDR_DOMAIN_MAX + 1];
	char password_hash[DB_HASH_MAX];
	uint64_t quota_bytes;		/* 0 = no quota */
	int active;			/* user and domain both active */
	int64_t created_at;		/* unix time */
};

/* 1 found, 0 no such user, -1 error.  Local part compared caselessly. */
int db_user_get(struct db *db, const char *address, struct db_user *u);

enum resolve_status {
	RESOLVE_OK,		/* at least one local mailbox or outside target */
	RESOLVE_UNKNOWN,	/* no user, alias or catch-all: 550 5.1.1 */
	RESOLVE_DISABLED,	/* the user or domain is inactive: 550 5.2.1 */
	RESOLVE_LOOP,		/* alias loop or chain too deep, nothing left */
	RESOLVE_TOO_MANY,	/* expansion over RESOLVE_MAX_TARGETS */
	RESOLVE_ERROR,		/* database error: 451 4.3.0 */
};

struct resolve_mailbox {
	char address[ADDR_MAX];		/* the user's address, as stored */
	uint64_t quota_bytes;
};

struct resolve_result {
	struct resolve_mailbox *local;	/* deduplicated, caller frees */
	size_t nlocal;
	char (*external)[ADDR_MAX];	/* redirections, deduplicated */
	size_t nexternal;
};

/*
 * Resolve a recipient (normal form, domain must be ours) to final local
 * mailboxes and outside addresses.  Order of lookup for each address:
 * aliases whose source is the address; else the user; else with a
 * "+tag" subaddress removed, the same two; else the "@domain" catch-all.
 * An alias target equal to a user address that is also the alias source
 * delivers to that user (keep-a-copy forwarding).  Targets in our domains
 * are resolved again (depth <= RESOLVE_MAX_DEPTH, each address expanded
 * once); other targets are outside redirections.
 */
enum resolve_status db_resolve(struct db *db, const struct mailaddr *rcpt,
    struct resolve_result *res);
void resolve_result_free(struct resolve_result *res);

/*
 * The Maildir of a user: MAIL_DIR/DOMAIN/LOCALPART with the local part
 * lower-cased.  Refuses (-1) any component that is empty, ".", "..",
 * starts with '.', or contains '/' or a control byte.
 */
int db_user_maildir(const char *mail_dir, const char *address, char *out,
    size_t outsz);

/* Password check against a crypt(3) string: 1 match, 0 no, -1 error. */
int password_verify(const char *hash, const char *password);
/* New yescrypt ($y$) hash into out.  0 or -1. */
int password_hash(const char *password, char *out, size_t outsz);

#endif
