/*
 * db_dkim.h - the dkim_keys table: which key signs a domain's mail
 * (daemons) and the rows mailadm adds, lists and retires.
 *
 * Every active key of a domain is published (mailadm dns prints each);
 * the oldest active one (lowest rowid) signs.  Rotation is: add a key
 * (published, the old one keeps signing), wait until its record is in
 * DNS, retire the old key (active = 0: it neither signs nor is printed;
 * its file stays).  Rows are never deleted except with their domain.
 *
 * Admin functions follow db_admin.h: they validate their input, return
 * 0 or -1 and set *error_r to one line fit to print.
 */
#ifndef BUZON_DB_DKIM_H
#define BUZON_DB_DKIM_H

#include <stddef.h>

#include "db.h"

/* Labels of [a-z0-9-], 1..63 each, dot-separated. */
#define DKIM_SELECTOR_MAX 127
#define DKIM_LABEL_MAX 63
#define DKIM_PATH_MAX 1280

struct db_dkim_key {
	char domain[ADDR_DOMAIN_MAX + 1];
	char selector[DKIM_SELECTOR_MAX + 1];
	char key_path[DKIM_PATH_MAX];
	int active;
	int signing;		/* the domain's oldest active key */
};

/*
 * Daemon side: the key that signs mail of domain (normal form).
 * 1 found (k filled, signing = 1), 0 the domain has no active key,
 * -1 database error.
 */
int db_dkim_signer(struct db *db, const char *domain, struct db_dkim_key *k);
/* The same into fixed arrays: 1, 0, or -1 (also when one does not fit). */
int db_dkim_signing_key(struct db *db, const char *domain, char *selector,
    size_t selsz, char *path, size_t pathsz);

/*
 * Selector syntax check.  Upper case is folded: the normal form goes to
 * out.  0, or -1 with *error_r.
 */
int db_dkim_check_selector(const char *selector, char *out, size_t outsz,
    const char **error_r);

/* 1 the domain has a row with this selector (active or not), 0 no, -1. */
int db_dkim_key_exists(struct db *db, const char *domain,
    const char *selector, const char **error_r);

/* A new active key; the domain must be hosted and the selector new. */
int db_dkim_key_add(struct db *db, const char *domain, const char *selector,
    const char *key_path, const char **error_r);

/*
 * Keys of domain (NULL: all), retired ones included, sorted by domain
 * then age (oldest first).  Caller frees *list_r.
 */
int db_dkim_key_list(struct db *db, const char *domain,
    struct db_dkim_key **list_r, size_t *n_r, const char **error_r);

/* active = 0.  A key that is unknown or already retired is an error. */
int db_dkim_key_retire(struct db *db, const char *domain,
    const char *selector, const char **error_r);

#endif
