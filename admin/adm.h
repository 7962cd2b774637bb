/*
 * adm.h - what mailadm's files share: the run context, the command table
 * entry, exit codes, and the helpers of adm_*.c.  Only admin/ includes it.
 *
 * Exit codes (DESIGN.md): 0 success, 1 user error (one line on stderr
 * saying what is wrong and how to fix it), 2 usage error.
 */
#ifndef BUZON_ADM_H
#define BUZON_ADM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../common/buf.h"
#include "../common/config.h"
#include "../common/db.h"

#define ADM_OK 0
#define ADM_FAIL 1
#define ADM_USAGE 2

struct adm_ctx;

struct adm_command {
	const char *name;	/* "user" */
	const char *sub;	/* "add"; NULL for a command without one */
	int (*run)(struct adm_ctx *ctx, int argc, char **argv);
	const char *args;	/* argument synopsis for the usage text */
};

/* Who owns the files and runs the daemons (config "user"). */
struct adm_owner {
	int set;		/* running as root and "user" is not empty */
	uid_t uid;
	gid_t gid;
	char name[64];
};

struct adm_ctx {
	struct config cfg;
	const struct adm_command *cmd;
	int json;
	struct db *db;		/* NULL until adm_open_db() */
	struct adm_owner owner;
	int owner_looked_up;
};

/* main.c */
void adm_usage(FILE *f);
/* "mailadm: MESSAGE" on stderr; returns ADM_FAIL. */
int adm_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The message, then the command's usage line; returns ADM_USAGE. */
int adm_usage_fail(const struct adm_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* adm_args.c: options of one subcommand. */
struct adm_opt {
	const char *name;	/* "--quota" */
	const char **value;	/* takes a value ("--quota 2G", "--quota=2G") */
	int *flag;		/* or is a flag set to 1 */
};
/*
 * Split argv into options (opts, NULL-name terminated) and between nmin
 * and nmax positionals (stored in pos).  ADM_OK, or ADM_USAGE after
 * printing what is wrong.
 */
int adm_args(const struct adm_ctx *ctx, int argc, char **argv,
    const struct adm_opt *opts, char **pos, int nmin, int nmax, int *npos);
/*
 * The usual starts of a command, arguments then the database open: a
 * list ("mailadm dkim list [DOMAIN]": *domain_r NULL without one, checked
 * by the list itself), or one domain ("mailadm dns DOMAIN": its normal
 * form into d, ADDR_DOMAIN_MAX + 1 bytes).  ADM_*.
 */
int adm_args_list(struct adm_ctx *ctx, int argc, char **argv,
    const char **domain_r);
int adm_args_domain(struct adm_ctx *ctx, int argc, char **argv, char *d,
    size_t dsz);

/* adm_privs.c */
int adm_owner_lookup(struct adm_ctx *ctx);	/* ADM_OK / ADM_FAIL */
/* Drop to the owner (when set), then open the DB.  ADM_OK / ADM_FAIL. */
int adm_open_db(struct adm_ctx *ctx, int create);
/* Drop to the owner (when set) without opening the DB: queue files. */
int adm_drop_privs(struct adm_ctx *ctx);

/* adm_fs.c */
/* mkdir -p: missing parents 0755, path itself leaf_mode.  0 / -1 err. */
int adm_mkdirs(const char *path, mode_t leaf_mode, int *created_r,
    char *err, size_t errlen);
/* The directory part of path ("." if none). */
int adm_dirname(const char *path, char *out, size_t outsz);
/* Create path (must not exist) with mode, write data, fsync.  0 / -1 err. */
int adm_write_new_file(const char *path, const void *data, size_t len,
    mode_t mode, char *err, size_t errlen);
/* chown path to the owner if set and different.  0 / -1 err. */
int adm_chown(const char *path, const struct adm_owner *o, int *changed_r,
    char *err, size_t errlen);

/* adm_tls.c: self-signed EC P-256 certificate, 10 years. */
int adm_tls_selfsigned(const char *hostname, const char *cert_path,
    const char *key_path, const struct adm_owner *o, char *err,
    size_t errlen);

/* adm_password.c: a new password from stdin or prompted twice.  ADM_*. */
int adm_password_read(int from_stdin, const char *address, char *out,
    size_t outsz);

/* adm_output.c */
struct adm_table {
	size_t ncols, nrows;	/* rows include the header */
	char **cells;		/* row-major */
	size_t cap;
};
void adm_table_init(struct adm_table *t, size_t ncols,
    const char *const *header);
int adm_table_add(struct adm_table *t, const char *const *cells);
void adm_table_print(const struct adm_table *t);
void adm_table_free(struct adm_table *t);
/* A JSON string literal of s, escaped.  0 / -1. */
int adm_json_str(struct buf *b, const char *s);
void adm_print_buf(const struct buf *b);

/*
 * --json output built whole before anything is printed: a list is an
 * array of objects, one per line (`[\n  {...},\n  {...}\n]`), nested
 * values inline.  adm_json_open(j, key, '[' or '{') starts a value (key
 * NULL inside an array or at the top), adm_json_close ends the innermost;
 * the field functions add "key":value to the open object.  Errors stick
 * until adm_json_print, which prints everything or nothing.
 */
#define ADM_JSON_DEPTH 4
struct adm_json {
	struct buf b;
	int err;
	unsigned depth;
	char close[ADM_JSON_DEPTH];	/* ']' or '}' of each open value */
	size_t count[ADM_JSON_DEPTH];	/* items in each open value */
};
void adm_json_init(struct adm_json *j);
void adm_json_open(struct adm_json *j, const char *key, char kind);
void adm_json_close(struct adm_json *j);
void adm_json_field_str(struct adm_json *j, const char *key, const char *v);
void adm_json_field_bool(struct adm_json *j, const char *key, int v);
void adm_json_field_int(struct adm_json *j, const char *key, long long v);
/* Print it with a final LF and free it.  ADM_OK, or ADM_FAIL (said). */
int adm_json_print(struct adm_json *j);
/* 2147483648 -> "2G", 0 -> "none". */
void adm_format_size(uint64_t bytes, char *out, size_t outsz);
/* Unix time -> "2024-11-23 08:41" (local time). */
void adm_format_time(int64_t t, char *out, size_t outsz);

/* Command handlers (one file per family). */
int adm_init(struct adm_ctx *ctx, int argc, char **argv);
int adm_domain_add(struct adm_ctx *ctx, int argc, char **argv);
int adm_domain_del(struct adm_ctx *ctx, int argc, char **argv);
int adm_domain_list(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_add(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_del(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_passwd(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_list(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_quota(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_disable(struct adm_ctx *ctx, int argc, char **argv);
int adm_user_enable(struct adm_ctx *ctx, int argc, char **argv);
int adm_alias_add(struct adm_ctx *ctx, int argc, char **argv);
int adm_alias_del(struct adm_ctx *ctx, int argc, char **argv);
int adm_alias_list(struct adm_ctx *ctx, int argc, char **argv);
int adm_dkim_keygen(struct adm_ctx *ctx, int argc, char **argv);
int adm_dkim_list(struct adm_ctx *ctx, int argc, char **argv);
int adm_dkim_retire(struct adm_ctx *ctx, int argc, char **argv);
int adm_dns(struct adm_ctx *ctx, int argc, char **argv);
int adm_check(struct adm_ctx *ctx, int argc, char **argv);
int adm_queue_list(struct adm_ctx *ctx, int argc, char **argv);
int adm_queue_flush(struct adm_ctx *ctx, int argc, char **argv);
int adm_queue_del(struct adm_ctx *ctx, int argc, char **argv);
int adm_dmarc_report(struct adm_ctx *ctx, int argc, char **argv);

#endif
