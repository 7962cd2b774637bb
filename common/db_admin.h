/*
 * db_admin.h - the account database writes mailadm makes: domains, users,
 * aliases.  Daemons never call these (they only read, through db.h).
 *
 * Every function validates its input itself (so no caller can store an
 * address the daemons would choke on), returns 0 or -1, and on -1 sets
 * *error_r to one line that says what is wrong and how to fix it, fit to
 * print as is.  *error_r points into the struct db (or is a constant) and
 * stays valid until the next call on the same handle.
 */
#ifndef BUZON_DB_ADMIN_H
#define BUZON_DB_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct db_domain_info {
	char name[ADDR_DOMAIN_MAX + 1];
	int active;
	int64_t created_at;
	unsigned users;
	unsigned aliases;	/* rows whose source is in the domain */
};

struct db_alias_info {
	char source[ADDR_MAX];		/* "local@domain" or "@domain" */
	char target[ADDR_MAX];
	int local_target;		/* 1 alias (target ours), 0 redirection */
};

/* The schema version the file had before db_open() migrated it (0: new). */
int db_admin_version_at_open(struct db *db);

/*
 * Input checks, usable before touching the database.  Each writes the
 * normal form ("example.org", "bob@example.org", "@example.org") to out.
 * A user's local part must be made of [a-z0-9._-] (any case), without a
 * leading or trailing dot, because it becomes a directory name.
 * An alias source is a full address or "@domain"; a target a full address.
 * db_admin_check_address accepts any full address (to name an existing
 * user or alias).
 */
int db_admin_check_address(const char *address, char *out, size_t outsz,
    const char **error_r);
int db_admin_check_domain(const char *domain, char *out, size_t outsz,
    const char **error_r);
int db_admin_check_user_address(const char *address, char *out,
    size_t outsz, const char **error_r);
int db_admin_check_alias_source(const char *source, char *out, size_t outsz,
    const char **error_r);
int db_admin_check_alias_target(const char *target, char *out, size_t outsz,
    const char **error_r);

/* 0 if the domain is hosted here (active or not); -1 with a hint if not. */
int db_admin_domain_hosted(struct db *db, const char *domain,
    const char **error_r);

int db_admin_domain_add(struct db *db, const char *domain,
    const char **error_r);
/*
 * Without force, refuses while the domain has users or aliases.  With
 * force, deletes its users', aliases' and DKIM keys' rows in the same
 * transaction (files on disk are never touched).  *users_r and
 * *aliases_r receive the numbers of rows deleted.
 */
int db_admin_domain_del(struct db *db, const char *domain, int force,
    unsigned *users_r, unsigned *aliases_r, const char **error_r);
/* An inactive domain receives nothing (RESOLVE_DISABLED). */
int db_admin_domain_set_active(struct db *db, const char *domain, int active,
    const char **error_r);
/* All domains, sorted by name; caller frees *list_r. */
int db_admin_domain_list(struct db *db, struct db_domain_info **list_r,
    size_t *n_r, const char **error_r);

/* password_hash is a crypt(3) string; quota_bytes 0 = none. */
int db_admin_user_add(struct db *db, const char *address,
    const char *password_hash, uint64_t quota_bytes, const char **error_r);
/* The stored address (as it was added) goes to stored_r (ADDR_MAX). */
int db_admin_user_del(struct db *db, const char *address, char *stored_r,
    const char **error_r);
int db_admin_user_set_password(struct db *db, const char *address,
    const char *password_hash, const char **error_r);
int db_admin_user_set_quota(struct db *db, const char *address,
    uint64_t quota_bytes, const char **error_r);
int db_admin_user_set_active(struct db *db, const char *address, int active,
    const char **error_r);
/*
 * Users of domain (NULL: all), sorted by domain then address.  active is
 * the user's own flag here (not combined with the domain's); the hash is
 * left empty.  Caller frees *list_r.
 */
int db_admin_user_list(struct db *db, const char *domain,
    struct db_user **list_r, size_t *n_r, const char **error_r);

/* source and target as db_admin_check_alias_source/target accept them. */
int db_admin_alias_add(struct db *db, const char *source, const char *target,
    const char **error_r);
/* target NULL: every row of source.  Nothing deleted is an error. */
int db_admin_alias_del(struct db *db, const char *source, const char *target,
    unsigned *deleted_r, const char **error_r);
/* Aliases whose source is in domain (NULL: all), sorted.  Caller frees. */
int db_admin_alias_list(struct db *db, const char *domain,
    struct db_alias_info **list_r, size_t *n_r, const char **error_r);
/* How many alias rows have this target (for warnings).  -1 on error. */
int db_admin_alias_count_target(struct db *db, const char *target);

#endif
