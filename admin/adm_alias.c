/*
 * adm_alias.c - mailadm alias add|del|list: aliases (target in one of our
 * domains), redirections (any other target, forwarded out) and catch-alls
 * (source "@domain", used only when no user or alias matches).
 */
#include "adm.h"
#include "../common/db_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* After adding source -> x: warn when a user source stopped getting mail. */
static void
note_user_source(struct adm_ctx *ctx, const char *source)
{
	struct resolve_result res;
	struct mailaddr m;
	struct db_user u;
	const char *why;
	size_t i;
	int r, kept = 0;

	if (source[0] == '@' || addr_parse_plain(source, &m, &why) < 0)
		return;
	r = db_user_get(ctx->db, source, &u);
	explicit_bzero(u.password_hash, sizeof(u.password_hash));
	if (r != 1)
		return;
	if (db_resolve(ctx->db, &m, &res) == RESOLVE_OK) {
		for (i = 0; i < res.nlocal; i++)
			if (strcasecmp(res.local[i].address, u.address) == 0)
				kept = 1;
		resolve_result_free(&res);
	}
	if (!kept)
		printf("note: %s is also a user, and its mail now goes to the "
		    "alias targets only; to keep a copy in its own mailbox: "
		    "mailadm alias add %s %s\n", source, source, source);
}

int
adm_alias_add(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[2], s[ADDR_MAX], t[ADDR_MAX];
	const char *error, *kind;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 2, 2, &n)) != ADM_OK)
		return r;
	if (db_admin_check_alias_source(pos[0], s, sizeof(s), &error) < 0 ||
	    db_admin_check_alias_target(pos[1], t, sizeof(t), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_alias_add(ctx->db, s, t, &error) < 0)
		return adm_fail("%s", error);
	if (strcasecmp(s, t) == 0)
		kind = "copy kept in the mailbox";
	else if (db_admin_domain_hosted(ctx->db, strrchr(t, '@') + 1,
	    &error) == 0)
		kind = "alias";
	else
		kind = "redirection, forwarded out";
	printf("added %s%s -> %s (%s)\n", s[0] == '@' ? "catch-all " : "",
	    s, t, kind);
	note_user_source(ctx, s);
	return ADM_OK;
}

int
adm_alias_del(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[2] = { NULL, NULL }, s[ADDR_MAX];
	const char *error;
	unsigned deleted;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 1, 2, &n)) != ADM_OK)
		return r;
	if (db_admin_check_alias_source(pos[0], s, sizeof(s), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_alias_del(ctx->db, s, pos[1], &deleted, &error) < 0)
		return adm_fail("%s", error);
	printf("deleted %u alias row(s) of %s\n", deleted, s);
	return ADM_OK;
}

static const char *
kind_name(const struct db_alias_info *a)
{
	return a->local_target ? "alias" : "redirect";
}

static int
print_json(const struct db_alias_info *l, size_t n)
{
	struct adm_json j;
	size_t i;

	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < n; i++) {
		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "source", l[i].source);
		adm_json_field_str(&j, "target", l[i].target);
		adm_json_field_str(&j, "kind", kind_name(&l[i]));
		adm_json_close(&j);
	}
	adm_json_close(&j);
	return adm_json_print(&j);
}

int
adm_alias_list(struct adm_ctx *ctx, int argc, char **argv)
{
	static const char *const header[] = { "SOURCE", "TARGET", "KIND" };
	struct db_alias_info *l;
	struct adm_table t;
	const char *domain, *error;
	size_t i, n;
	int r;

	if ((r = adm_args_list(ctx, argc, argv, &domain)) != ADM_OK)
		return r;
	if (db_admin_alias_list(ctx->db, domain, &l, &n, &error) < 0)
		return adm_fail("%s", error);
	if (ctx->json) {
		r = print_json(l, n);
		free(l);
		return r;
	}
	adm_table_init(&t, 3, header);
	for (i = 0; i < n; i++) {
		const char *row[3] = { l[i].source, l[i].target,
		    kind_name(&l[i]) };

		adm_table_add(&t, row);
	}
	adm_table_print(&t);
	adm_table_free(&t);
	free(l);
	return ADM_OK;
}
