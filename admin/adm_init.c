/*
 * adm_init.c - mailadm init: everything a fresh install needs, and
 * nothing more on a second run.
 *
 *   state_dir, mail_dir, queue_dir   mode 0700 (missing parents 0755)
 *   the database                     0600, schema applied / migrated
 *   tls_cert / tls_key               self-signed if both are missing
 *
 * As root with a config "user", that user must exist; the three
 * directories, the database and a generated key are given to it, and the
 * database is opened only after dropping to it.  Every change is printed;
 * when there was none, init says so and exits 0.
 */
#include "adm.h"
#include "../common/db_admin.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

struct init_run {
	struct adm_ctx *ctx;
	int changed;
	char err[CONFIG_STR_MAX + 512];
};

static int
give_to_owner(struct init_run *ir, const char *path)
{
	int changed;

	if (adm_chown(path, &ir->ctx->owner, &changed, ir->err,
	    sizeof(ir->err)) < 0)
		return adm_fail("%s", ir->err);
	if (changed) {
		printf("gave %s to user %s\n", path, ir->ctx->owner.name);
		ir->changed = 1;
	}
	return ADM_OK;
}

enum give { GIVE_NEVER, GIVE_ALWAYS, GIVE_IF_CREATED };

static int
ensure_dir(struct init_run *ir, const char *what, const char *path,
    mode_t mode, enum give give)
{
	int created;

	if (adm_mkdirs(path, mode, &created, ir->err, sizeof(ir->err)) < 0)
		return adm_fail("%s (for %s in %s)", ir->err, what,
		    ir->ctx->cfg.path);
	if (created) {
		printf("created directory %s (%s)\n", path, what);
		ir->changed = 1;
	}
	if (give == GIVE_ALWAYS || (give == GIVE_IF_CREATED && created))
		return give_to_owner(ir, path);
	return ADM_OK;
}

static int
exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

static int
ensure_tls(struct init_run *ir)
{
	const struct config *cfg = &ir->ctx->cfg;
	char dir[CONFIG_STR_MAX];
	int have_cert = exists(cfg->tls_cert), have_key = exists(cfg->tls_key);
	int r;

	if (have_cert && have_key)
		return ADM_OK;
	if (have_cert != have_key)
		return adm_fail("%s exists but %s does not; put the matching "
		    "file back, or remove %s to have init make a new "
		    "self-signed pair", have_cert ? cfg->tls_cert : cfg->tls_key,
		    have_cert ? cfg->tls_key : cfg->tls_cert,
		    have_cert ? cfg->tls_cert : cfg->tls_key);
	if (adm_dirname(cfg->tls_cert, dir, sizeof(dir)) < 0)
		return adm_fail("bad tls_cert path %s", cfg->tls_cert);
	if ((r = ensure_dir(ir, "tls_cert", dir, 0755, GIVE_NEVER)) != ADM_OK)
		return r;
	if (adm_dirname(cfg->tls_key, dir, sizeof(dir)) < 0)
		return adm_fail("bad tls_key path %s", cfg->tls_key);
	if ((r = ensure_dir(ir, "tls_key", dir, 0755, GIVE_NEVER)) != ADM_OK)
		return r;
	if (adm_tls_selfsigned(cfg->hostname, cfg->tls_cert, cfg->tls_key,
	    &ir->ctx->owner, ir->err, sizeof(ir->err)) < 0)
		return adm_fail("%s", ir->err);
	printf("created a self-signed certificate for %s: %s (key %s); "
	    "replace both with a real certificate for production\n",
	    cfg->hostname, cfg->tls_cert, cfg->tls_key);
	ir->changed = 1;
	return ADM_OK;
}

/* The database file (0600, owned by the daemons' user), before opening it. */
static int
ensure_db_file(struct init_run *ir)
{
	const char *path = ir->ctx->cfg.database;
	char dir[CONFIG_STR_MAX], side[CONFIG_STR_MAX + 8];
	static const char *const suffixes[] = { "-wal", "-shm" };
	size_t i;
	int r;

	if (!exists(path)) {
		if (adm_dirname(path, dir, sizeof(dir)) < 0)
			return adm_fail("bad database path %s", path);
		if ((r = ensure_dir(ir, "database", dir, 0700,
		    GIVE_IF_CREATED)) != ADM_OK)
			return r;
		if (adm_write_new_file(path, "", 0, 0600, ir->err,
		    sizeof(ir->err)) < 0)
			return adm_fail("%s", ir->err);
		printf("created database %s\n", path);
		ir->changed = 1;
	}
	if ((r = give_to_owner(ir, path)) != ADM_OK)
		return r;
	for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (snprintf_checked(side, sizeof(side), "%s%s", path,
		    suffixes[i]) == 0 && exists(side) &&
		    (r = give_to_owner(ir, side)) != ADM_OK)
			return r;
	}
	return ADM_OK;
}

int
adm_init(struct adm_ctx *ctx, int argc, char **argv)
{
	struct init_run ir;
	const struct config *cfg = &ctx->cfg;
	char *pos[1];
	int r, npos, from;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 0, 0, &npos)) != ADM_OK)
		return r;
	memset(&ir, 0, sizeof(ir));
	ir.ctx = ctx;
	if ((r = adm_owner_lookup(ctx)) != ADM_OK ||
	    (r = ensure_dir(&ir, "state_dir", cfg->state_dir, 0700,
	    GIVE_ALWAYS)) != ADM_OK ||
	    (r = ensure_dir(&ir, "mail_dir", cfg->mail_dir, 0700,
	    GIVE_ALWAYS)) != ADM_OK ||
	    (r = ensure_dir(&ir, "queue_dir", cfg->queue_dir, 0700,
	    GIVE_ALWAYS)) != ADM_OK ||
	    (r = ensure_tls(&ir)) != ADM_OK ||
	    (r = ensure_db_file(&ir)) != ADM_OK)
		return r;

	/* From here on as the daemons' user. */
	if ((r = adm_open_db(ctx, 1)) != ADM_OK)
		return r;
	from = db_admin_version_at_open(ctx->db);
	if (from == 0) {
		printf("database schema created (version %d)\n",
		    DB_SCHEMA_VERSION);
		ir.changed = 1;
	} else if (from < DB_SCHEMA_VERSION) {
		printf("database schema upgraded from version %d to %d\n",
		    from, DB_SCHEMA_VERSION);
		ir.changed = 1;
	}
	if (!ir.changed)
		printf("everything already exists (directories, database "
		    "schema version %d, TLS certificate); nothing changed\n",
		    DB_SCHEMA_VERSION);
	return ADM_OK;
}
