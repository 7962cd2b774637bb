/*
 * adm_privs.c - who mailadm acts as.  Run as root with a non-empty config
 * "user", mailadm drops to that user (the daemons' user) before it opens
 * the database, so that what SQLite creates (-wal, -shm) and the Maildirs
 * it makes belong to the daemons.  The drop itself is common/privdrop.c,
 * the same fixed script every daemon runs.  Not root, or "user" empty:
 * nothing changes.
 */
#include "adm.h"
#include "../common/db.h"
#include "../common/privdrop.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

int
adm_owner_lookup(struct adm_ctx *ctx)
{
	struct adm_owner *o = &ctx->owner;
	struct passwd *pw;

	if (ctx->owner_looked_up)
		return ADM_OK;
	memset(o, 0, sizeof(*o));
	if (geteuid() != 0 || ctx->cfg.user[0] == '\0') {
		ctx->owner_looked_up = 1;
		return ADM_OK;
	}
	errno = 0;
	pw = getpwnam(ctx->cfg.user);
	if (pw == NULL)
		return adm_fail("user %s (config \"user\" in %s) does not exist; "
		    "create it with: useradd --system --home-dir %s --shell "
		    "/usr/sbin/nologin %s", ctx->cfg.user, ctx->cfg.path,
		    ctx->cfg.state_dir, ctx->cfg.user);
	if (pw->pw_uid == 0)
		return adm_fail("config \"user\" in %s is %s, which is root; "
		    "use an unprivileged user such as vmail", ctx->cfg.path,
		    ctx->cfg.user);
	o->set = 1;
	o->uid = pw->pw_uid;
	o->gid = pw->pw_gid;
	strlcpy_checked(o->name, ctx->cfg.user, sizeof(o->name));
	ctx->owner_looked_up = 1;
	return ADM_OK;
}

static int
adm_drop(const struct adm_owner *o)
{
	char err[512];

	if (!o->set)
		return ADM_OK;
	if (privdrop(o->name, err, sizeof(err)) < 0)
		return adm_fail("%s", err);
	return ADM_OK;
}

int
adm_drop_privs(struct adm_ctx *ctx)
{
	int r;

	if ((r = adm_owner_lookup(ctx)) != ADM_OK ||
	    (r = adm_drop(&ctx->owner)) != ADM_OK)
		return r;
	ctx->owner.set = 0;	/* dropped: nothing left to drop */
	return ADM_OK;
}

int
adm_open_db(struct adm_ctx *ctx, int create)
{
	char err[CONFIG_STR_MAX + 512];
	int r;

	if (ctx->db != NULL)
		return ADM_OK;
	if ((r = adm_drop_privs(ctx)) != ADM_OK)
		return r;
	if (db_open(ctx->cfg.database, create, &ctx->db, err, sizeof(err)) < 0)
		return adm_fail("%s", err);
	return ADM_OK;
}
