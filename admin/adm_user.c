/*
 * adm_user.c - mailadm user add|del|passwd|list|quota|disable|enable:
 * the mailboxes of our domains.  A password is never taken from argv;
 * deleting a user never deletes its mail (the path is printed instead).
 */
#include "adm.h"
#include "../common/db_admin.h"
#include "../store/maildir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_BUF 1027	/* 1024 bytes, a CR LF and the NUL */

static int
parse_quota(const char *s, uint64_t *q)
{
	if (config_parse_size(s, strlen(s), q) < 0)
		return adm_fail("invalid quota \"%.32s\": use a size such as "
		    "512M or 2G (0 = no quota)", s);
	return ADM_OK;
}

/* Read, hash and forget a new password. */
static int
new_password_hash(int from_stdin, const char *address, char *hash,
    size_t hashsz)
{
	char pw[PASSWORD_BUF];
	int r;

	if ((r = adm_password_read(from_stdin, address, pw, sizeof(pw))) != ADM_OK)
		return r;
	r = password_hash(pw, hash, hashsz);
	explicit_bzero(pw, sizeof(pw));
	if (r < 0)
		return adm_fail("cannot hash the password (libxcrypt yescrypt): "
		    "%s", strerror(errno));
	return ADM_OK;
}

static int
make_maildir(const char *dir)
{
	size_t i;

	if (maildir_ensure(dir) < 0)
		return adm_fail("cannot create the Maildir %s: %s", dir,
		    strerror(errno));
	for (i = 0; maildir_default_folders[i] != NULL; i++)
		if (maildir_create_folder(dir, maildir_default_folders[i]) < 0)
			return adm_fail("cannot create folder %s in %s: %s",
			    maildir_default_folders[i], dir, strerror(errno));
	return ADM_OK;
}

int
adm_user_add(struct adm_ctx *ctx, int argc, char **argv)
{
	int r, n, from_stdin = 0;
	const char *quota_s = NULL, *error;
	const struct adm_opt opts[] = {
		{ "--password-stdin", NULL, &from_stdin },
		{ "--quota", &quota_s, NULL },
		{ NULL, NULL, NULL },
	};
	char *pos[1], a[ADDR_MAX], dir[CONFIG_STR_MAX + ADDR_MAX];
	char hash[DB_HASH_MAX], qs[32];
	struct db_user u;
	uint64_t quota = 0;

	if ((r = adm_args(ctx, argc, argv, opts, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_user_address(pos[0], a, sizeof(a), &error) < 0)
		return adm_fail("%s", error);
	if (quota_s != NULL && (r = parse_quota(quota_s, &quota)) != ADM_OK)
		return r;
	if (db_user_maildir(ctx->cfg.mail_dir, a, dir, sizeof(dir)) < 0)
		return adm_fail("no usable Maildir path for %s under %s", a,
		    ctx->cfg.mail_dir);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_domain_hosted(ctx->db, strrchr(a, '@') + 1, &error) < 0)
		return adm_fail("%s", error);
	r = db_user_get(ctx->db, a, &u);
	if (r != 0)
		return adm_fail(r > 0 ? "user %s already exists" :
		    "database error looking up %s", a);
	if ((r = new_password_hash(from_stdin, a, hash, sizeof(hash))) != ADM_OK)
		return r;
	if ((r = make_maildir(dir)) != ADM_OK)
		return r;
	if (db_admin_user_add(ctx->db, a, hash, quota, &error) < 0)
		return adm_fail("%s", error);
	adm_format_size(quota, qs, sizeof(qs));
	printf("added user %s (Maildir %s, quota %s)\n", a, dir, qs);
	return ADM_OK;
}

int
adm_user_del(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[1], stored[ADDR_MAX], dir[CONFIG_STR_MAX + ADDR_MAX];
	const char *error;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_address(pos[0], stored, sizeof(stored), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_user_del(ctx->db, pos[0], stored, &error) < 0)
		return adm_fail("%s", error);
	if (db_user_maildir(ctx->cfg.mail_dir, stored, dir, sizeof(dir)) == 0)
		printf("deleted user %s; its mail stays on disk in %s "
		    "(remove it yourself when it is no longer needed)\n",
		    stored, dir);
	else
		printf("deleted user %s\n", stored);
	n = db_admin_alias_count_target(ctx->db, stored);
	if (n > 0)
		printf("note: %d alias(es) still point to %s; see: mailadm "
		    "alias list\n", n, stored);
	return ADM_OK;
}

int
adm_user_passwd(struct adm_ctx *ctx, int argc, char **argv)
{
	int r, n, from_stdin = 0;
	const struct adm_opt opts[] = {
		{ "--password-stdin", NULL, &from_stdin },
		{ NULL, NULL, NULL },
	};
	char *pos[1], hash[DB_HASH_MAX], a[ADDR_MAX];
	const char *error;
	struct db_user u;

	if ((r = adm_args(ctx, argc, argv, opts, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_address(pos[0], a, sizeof(a), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	r = db_user_get(ctx->db, a, &u);
	explicit_bzero(u.password_hash, sizeof(u.password_hash));
	if (r < 0)
		return adm_fail("database error looking up %s", a);
	if (r == 0)
		return adm_fail("no such user %s; see: mailadm user list", a);
	if ((r = new_password_hash(from_stdin, u.address, hash,
	    sizeof(hash))) != ADM_OK)
		return r;
	if (db_admin_user_set_password(ctx->db, u.address, hash, &error) < 0)
		return adm_fail("%s", error);
	printf("changed the password of %s\n", u.address);
	return ADM_OK;
}

static int
print_json(const struct db_user *l, size_t n)
{
	struct adm_json j;
	size_t i;

	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < n; i++) {
		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "address", l[i].address);
		adm_json_field_str(&j, "domain", l[i].domain);
		adm_json_field_int(&j, "quota_bytes",
		    (long long)l[i].quota_bytes);
		adm_json_field_bool(&j, "active", l[i].active);
		adm_json_field_int(&j, "created_at", (long long)l[i].created_at);
		adm_json_close(&j);
	}
	adm_json_close(&j);
	return adm_json_print(&j);
}

int
adm_user_list(struct adm_ctx *ctx, int argc, char **argv)
{
	static const char *const header[] = { "ADDRESS", "QUOTA", "ACTIVE",
	    "CREATED" };
	struct db_user *l;
	struct adm_table t;
	const char *domain, *error;
	size_t i, n;
	int r;

	if ((r = adm_args_list(ctx, argc, argv, &domain)) != ADM_OK)
		return r;
	if (db_admin_user_list(ctx->db, domain, &l, &n, &error) < 0)
		return adm_fail("%s", error);
	if (ctx->json) {
		r = print_json(l, n);
		free(l);
		return r;
	}
	adm_table_init(&t, 4, header);
	for (i = 0; i < n; i++) {
		char quota[32], created[32];
		const char *row[4] = { l[i].address, quota,
		    l[i].active ? "yes" : "no", created };

		adm_format_size(l[i].quota_bytes, quota, sizeof(quota));
		adm_format_time(l[i].created_at, created, sizeof(created));
		adm_table_add(&t, row);
	}
	adm_table_print(&t);
	adm_table_free(&t);
	free(l);
	return ADM_OK;
}

int
adm_user_quota(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[2], qs[32], a[ADDR_MAX];
	const char *error;
	uint64_t quota;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 2, 2, &n)) != ADM_OK)
		return r;
	if (db_admin_check_address(pos[0], a, sizeof(a), &error) < 0)
		return adm_fail("%s", error);
	if ((r = parse_quota(pos[1], &quota)) != ADM_OK)
		return r;
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_user_set_quota(ctx->db, a, quota, &error) < 0)
		return adm_fail("%s", error);
	adm_format_size(quota, qs, sizeof(qs));
	printf("quota of %s is now %s\n", a, qs);
	return ADM_OK;
}

static int
set_active(struct adm_ctx *ctx, int argc, char **argv, int active)
{
	char *pos[1], a[ADDR_MAX];
	const char *error;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_address(pos[0], a, sizeof(a), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_user_set_active(ctx->db, a, active, &error) < 0)
		return adm_fail("%s", error);
	printf("%s user %s\n", active ? "enabled" : "disabled", a);
	return ADM_OK;
}

int
adm_user_disable(struct adm_ctx *ctx, int argc, char **argv)
{
	return set_active(ctx, argc, argv, 0);
}

int
adm_user_enable(struct adm_ctx *ctx, int argc, char **argv)
{
	return set_active(ctx, argc, argv, 1);
}
