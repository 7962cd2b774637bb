/*
 * main.c - mailadm: global options, the command table, dispatch.
 *
 *   mailadm [-c FILE] [--json] COMMAND [SUBCOMMAND] ARGS...
 *
 * A command is a row of commands[] and a handler in adm_<family>.c;
 * dispatch never chains string compares.  The config comes from -c, else
 * $BUZON_CONF, else /etc/buzon/buzon.conf.  Handlers parse their own
 * options, open the database (dropping privileges first) and return the
 * exit code: 0 ok, 1 user error, 2 usage error.
 */
#include "adm.h"
#include "../common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct adm_command commands[] = {
	{ "init", NULL, adm_init, "" },
	{ "domain", "add", adm_domain_add, "DOMAIN" },
	{ "domain", "del", adm_domain_del, "DOMAIN [--force]" },
	{ "domain", "list", adm_domain_list, "" },
	{ "user", "add", adm_user_add,
	    "ADDRESS [--password-stdin] [--quota SIZE]" },
	{ "user", "del", adm_user_del, "ADDRESS" },
	{ "user", "passwd", adm_user_passwd, "ADDRESS [--password-stdin]" },
	{ "user", "list", adm_user_list, "[DOMAIN]" },
	{ "user", "quota", adm_user_quota, "ADDRESS SIZE   (0 = no quota)" },
	{ "user", "disable", adm_user_disable, "ADDRESS" },
	{ "user", "enable", adm_user_enable, "ADDRESS" },
	{ "alias", "add", adm_alias_add, "SOURCE TARGET   (SOURCE @domain = catch-all)" },
	{ "alias", "del", adm_alias_del, "SOURCE [TARGET]" },
	{ "alias", "list", adm_alias_list, "[DOMAIN]" },
	{ "dkim", "keygen", adm_dkim_keygen,
	    "DOMAIN [--selector S] [--bits 2048]" },
	{ "dkim", "list", adm_dkim_list, "[DOMAIN]" },
	{ "dkim", "retire", adm_dkim_retire, "DOMAIN SELECTOR" },
	{ "dns", NULL, adm_dns, "DOMAIN" },
	{ "check", NULL, adm_check, "DOMAIN" },
	{ "queue", "list", adm_queue_list, "" },
	{ "queue", "flush", adm_queue_flush, "" },
	{ "queue", "del", adm_queue_del, "ID" },
	{ "dmarc", "report", adm_dmarc_report,
	    "[--date YYYY-MM-DD] [--domain DOMAIN] [--send]" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
print_command(FILE *f, const struct adm_command *c)
{
	fprintf(f, "  mailadm %s%s%s%s%s\n", c->name, c->sub ? " " : "",
	    c->sub ? c->sub : "", c->args[0] ? " " : "", c->args);
}

void
adm_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mailadm [-c FILE] [--json] COMMAND ...\n"
	    "  -c FILE   config file (default $BUZON_CONF, else "
	    CONFIG_PATH_DEFAULT ")\n"
	    "  --json    list commands print JSON\n"
	    "commands:\n");
	for (i = 0; i < NCOMMANDS; i++)
		print_command(f, &commands[i]);
}

int
adm_fail(const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, 4096);
	buf_puts(&b, "mailadm: ");
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_putc(&b, '\n');
	fflush(stdout);
	fputs(buf_cstr(&b), stderr);
	buf_free(&b);
	return ADM_FAIL;
}

int
adm_usage_fail(const struct adm_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("mailadm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (ctx != NULL && ctx->cmd != NULL) {
		fputs("usage:\n", stderr);
		print_command(stderr, ctx->cmd);
	} else {
		adm_usage(stderr);
	}
	return ADM_USAGE;
}

/* Usage error naming every subcommand of a command. */
static int
usage_subcommands(const char *name, const char *what, const char *sub)
{
	size_t i;

	fprintf(stderr, "mailadm: %s%s%s%s\nusage:\n", what,
	    sub ? " \"" : "", sub ? sub : "", sub ? "\"" : "");
	for (i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			print_command(stderr, &commands[i]);
	return ADM_USAGE;
}

/* Find the table row for argv[0] (and argv[1]); sets *used to 1 or 2. */
static int
find_command(int argc, char **argv, const struct adm_command **out,
    int *used)
{
	int known_name = 0;
	size_t i;

	for (i = 0; i < NCOMMANDS; i++) {
		const struct adm_command *c = &commands[i];

		if (strcmp(c->name, argv[0]) != 0)
			continue;
		known_name = 1;
		if (c->sub == NULL) {
			*out = c;
			*used = 1;
			return ADM_OK;
		}
		if (argc >= 2 && strcmp(c->sub, argv[1]) == 0) {
			*out = c;
			*used = 2;
			return ADM_OK;
		}
	}
	if (!known_name) {
		char e[64];

		fprintf(stderr, "mailadm: unknown command \"%s\"\n",
		    log_escape(e, sizeof(e), argv[0], strlen(argv[0])));
		adm_usage(stderr);
		return ADM_USAGE;
	}
	if (argc < 2)
		return usage_subcommands(argv[0], "missing subcommand", NULL);
	{
		char e[64];

		return usage_subcommands(argv[0], "unknown subcommand",
		    log_escape(e, sizeof(e), argv[1], strlen(argv[1])));
	}
}

/* The file config_load() reads for this -c value. */
static const char *
config_path(const char *conf)
{
	if (conf == NULL)
		conf = getenv("BUZON_CONF");
	if (conf == NULL || *conf == '\0')
		conf = CONFIG_PATH_DEFAULT;
	return conf;
}

int
main(int argc, char **argv)
{
	struct adm_ctx *ctx;
	const char *conf = NULL;
	char err[CONFIG_STR_MAX + 256];
	int i, n, used = 0, r;

	log_init("mailadm", 0);
	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL)
		return adm_fail("out of memory");

	/* Global options, before the command. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0) {
			if (++i >= argc) {
				free(ctx);
				return adm_usage_fail(NULL, "-c needs a FILE");
			}
			conf = argv[i];
		} else if (strcmp(argv[i], "--json") == 0) {
			ctx->json = 1;
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			adm_usage(stdout);
			free(ctx);
			return ADM_OK;
		} else {
			char e[64];

			free(ctx);
			return adm_usage_fail(NULL, "unknown option \"%s\"",
			    log_escape(e, sizeof(e), argv[i], strlen(argv[i])));
		}
	}
	if (i >= argc) {
		free(ctx);
		return adm_usage_fail(NULL, "missing command");
	}
	argv += i;
	argc -= i;

	/* --json is also accepted after the command (not after "--"). */
	for (i = n = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			ctx->json = 1;
		else
			argv[n++] = argv[i];
	}
	argc = n;
	if (argc == 0) {
		free(ctx);
		return adm_usage_fail(NULL, "missing command");
	}

	if ((r = find_command(argc, argv, &ctx->cmd, &used)) != ADM_OK) {
		free(ctx);
		return r;
	}
	if (config_load(&ctx->cfg, conf, err, sizeof(err)) < 0) {
		int missing = access(config_path(conf), F_OK) < 0;

		free(ctx);
		return adm_fail("%s%s", err, missing ? " (choose the file with "
		    "-c FILE or BUZON_CONF=FILE)" : "");
	}
	r = ctx->cmd->run(ctx, argc - used, argv + used);
	db_close(&ctx->db);
	explicit_bzero(ctx->cfg.relayhost_password,
	    sizeof(ctx->cfg.relayhost_password));
	free(ctx);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "mailadm: cannot write the output\n");
		return r == ADM_OK ? ADM_FAIL : r;
	}
	return r;
}
