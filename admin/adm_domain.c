/*
 * adm_domain.c - mailadm domain add|del|list: the domains this server
 * receives mail for.  Deleting a domain never deletes mail on disk.
 */
#include "adm.h"
#include "../common/db_admin.h"

#include <stdio.h>
#include <stdlib.h>

int
adm_domain_add(struct adm_ctx *ctx, int argc, char **argv)
{
	char d[ADDR_DOMAIN_MAX + 1];
	const char *error;
	int r;

	if ((r = adm_args_domain(ctx, argc, argv, d, sizeof(d))) != ADM_OK)
		return r;
	if (db_admin_domain_add(ctx->db, d, &error) < 0)
		return adm_fail("%s", error);
	printf("added domain %s\n", d);
	return ADM_OK;
}

int
adm_domain_del(struct adm_ctx *ctx, int argc, char **argv)
{
	int r, n, force = 0;
	const struct adm_opt opts[] = {
		{ "--force", NULL, &force },
		{ NULL, NULL, NULL },
	};
	char *pos[1], d[ADDR_DOMAIN_MAX + 1];
	const char *error;
	unsigned users, aliases;

	if ((r = adm_args(ctx, argc, argv, opts, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_domain(pos[0], d, sizeof(d), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_domain_del(ctx->db, d, force, &users, &aliases,
	    &error) < 0)
		return adm_fail("%s", error);
	if (users > 0 || aliases > 0)
		printf("deleted domain %s with %u user(s) and %u alias(es); "
		    "their mail stays on disk in %s/%s/\n", d, users, aliases,
		    ctx->cfg.mail_dir, d);
	else
		printf("deleted domain %s\n", d);
	return ADM_OK;
}

static int
print_json(const struct db_domain_info *l, size_t n)
{
	struct adm_json j;
	size_t i;

	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < n; i++) {
		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "name", l[i].name);
		adm_json_field_bool(&j, "active", l[i].active);
		adm_json_field_int(&j, "created_at", (long long)l[i].created_at);
		adm_json_field_int(&j, "users", l[i].users);
		adm_json_field_int(&j, "aliases", l[i].aliases);
		adm_json_close(&j);
	}
	adm_json_close(&j);
	return adm_json_print(&j);
}

int
adm_domain_list(struct adm_ctx *ctx, int argc, char **argv)
{
	static const char *const header[] = { "DOMAIN", "ACTIVE", "USERS",
	    "ALIASES", "CREATED" };
	struct db_domain_info *l;
	struct adm_table t;
	const char *error;
	char *pos[1];
	size_t i, n;
	int r, np;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 0, 0, &np)) != ADM_OK)
		return r;
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_domain_list(ctx->db, &l, &n, &error) < 0)
		return adm_fail("%s", error);
	if (ctx->json) {
		r = print_json(l, n);
		free(l);
		return r;
	}
	adm_table_init(&t, 5, header);
	for (i = 0; i < n; i++) {
		char users[16], aliases[16], created[32];
		const char *row[5] = { l[i].name, l[i].active ? "yes" : "no",
		    users, aliases, created };

		snprintf_checked(users, sizeof(users), "%u", l[i].users);
		snprintf_checked(aliases, sizeof(aliases), "%u", l[i].aliases);
		adm_format_time(l[i].created_at, created, sizeof(created));
		adm_table_add(&t, row);
	}
	adm_table_print(&t);
	adm_table_free(&t);
	free(l);
	return ADM_OK;
}
