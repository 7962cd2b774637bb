/*
 * adm_args.c - the options and positional arguments of one mailadm
 * subcommand, described by a table of struct adm_opt.  Options may come
 * before or after the positionals; "--" ends them.  Anything unexpected
 * is a usage error (exit 2), never silently ignored.
 */
#include "adm.h"
#include "../common/db_admin.h"
#include "../common/log.h"

#include <string.h>

static const struct adm_opt *
find_opt(const struct adm_opt *opts, const char *arg, size_t namelen)
{
	for (; opts != NULL && opts->name != NULL; opts++)
		if (strlen(opts->name) == namelen &&
		    strncmp(opts->name, arg, namelen) == 0)
			return opts;
	return NULL;
}

int
adm_args(const struct adm_ctx *ctx, int argc, char **argv,
    const struct adm_opt *opts, char **pos, int nmin, int nmax, int *npos)
{
	int i, n = 0, only_pos = 0;
	char e[64];

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		const struct adm_opt *o;
		const char *eq;

		if (!only_pos && strcmp(a, "--") == 0) {
			only_pos = 1;
			continue;
		}
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			if (n >= nmax)
				return adm_usage_fail(ctx, "unexpected argument "
				    "\"%s\"", log_escape(e, sizeof(e), a,
				    strlen(a)));
			pos[n++] = argv[i];
			continue;
		}
		eq = strchr(a, '=');
		o = find_opt(opts, a, eq != NULL ? (size_t)(eq - a) : strlen(a));
		if (o == NULL)
			return adm_usage_fail(ctx, "unknown option \"%s\"",
			    log_escape(e, sizeof(e), a, strlen(a)));
		if (o->value == NULL) {
			if (eq != NULL)
				return adm_usage_fail(ctx, "%s takes no value",
				    o->name);
			*o->flag = 1;
		} else if (eq != NULL) {
			*o->value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return adm_usage_fail(ctx, "%s needs a value",
				    o->name);
			*o->value = argv[++i];
		}
	}
	if (n < nmin)
		return adm_usage_fail(ctx, "missing argument");
	*npos = n;
	return ADM_OK;
}

int
adm_args_list(struct adm_ctx *ctx, int argc, char **argv,
    const char **domain_r)
{
	char *pos[1] = { NULL };
	int r, n;

	*domain_r = NULL;
	if ((r = adm_args(ctx, argc, argv, NULL, pos, 0, 1, &n)) != ADM_OK ||
	    (r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	*domain_r = pos[0];
	return ADM_OK;
}

int
adm_args_domain(struct adm_ctx *ctx, int argc, char **argv, char *d,
    size_t dsz)
{
	const char *error;
	char *pos[1];
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_domain(pos[0], d, dsz, &error) < 0)
		return adm_fail("%s", error);
	return adm_open_db(ctx, 0);
}
