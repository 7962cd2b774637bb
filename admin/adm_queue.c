/*
 * adm_queue.c - mailadm queue list|flush|del: what waits in the outbound
 * queue, retry it now, drop one entry.
 *
 * These read and change queue_dir's files directly (as the mail user);
 * the running queue runner notices through inotify.  A flush is the
 * QUEUE_FLUSH_NAME file (see store/queue_dir.c).
 */
#include "adm.h"
#include "../store/queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_names[] = {
	[QRCPT_PENDING] = "pending",
	[QRCPT_SENT] = "sent",
	[QRCPT_BOUNCED] = "bounced",
};

/* 75 -> "1m", 7300 -> "2h", ... (how long ago, or how long until). */
static void
format_span(time_t secs, char *out, size_t outsz)
{
	if (secs < 0)
		secs = 0;
	if (secs < 60)
		snprintf_checked(out, outsz, "%llds", (long long)secs);
	else if (secs < 3600)
		snprintf_checked(out, outsz, "%lldm", (long long)secs / 60);
	else if (secs < 86400)
		snprintf_checked(out, outsz, "%lldh", (long long)secs / 3600);
	else
		snprintf_checked(out, outsz, "%lldd", (long long)secs / 86400);
}

struct entries {
	struct queue_env *env;
	size_t n;
};

/* Every readable entry, oldest first; entries that vanish are skipped. */
static int
load_entries(struct adm_ctx *ctx, struct entries *e)
{
	char **ids;
	size_t n, i;

	e->env = NULL;
	e->n = 0;
	if (queue_scan(ctx->cfg.queue_dir, &ids, &n) < 0)
		return adm_fail("cannot read %s: %s", ctx->cfg.queue_dir,
		    strerror(errno));
	if (n > 0 && (e->env = calloc(n, sizeof(*e->env))) == NULL) {
		queue_scan_free(ids, n);
		return adm_fail("out of memory");
	}
	for (i = 0; i < n; i++) {
		if (queue_env_read(ctx->cfg.queue_dir, ids[i], &e->env[e->n]) < 0) {
			if (errno != ENOENT)
				fprintf(stderr, "mailadm: %s/%s.env: %s\n",
				    ctx->cfg.queue_dir, ids[i], strerror(errno));
			continue;	/* delivered meanwhile, or damaged */
		}
		e->n++;
	}
	queue_scan_free(ids, n);
	return ADM_OK;
}

static void
free_entries(struct entries *e)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		queue_env_free(&e->env[i]);
	free(e->env);
}

static int
print_json(const struct entries *e, time_t now)
{
	struct adm_json j;
	size_t i, k;

	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < e->n; i++) {
		const struct queue_env *v = &e->env[i];

		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "id", v->id);
		adm_json_field_int(&j, "created", (long long)v->created);
		adm_json_field_int(&j, "age", (long long)(now - v->created));
		adm_json_field_str(&j, "sender", v->sender);
		adm_json_open(&j, "recipients", '[');
		for (k = 0; k < v->nrcpts; k++) {
			adm_json_open(&j, NULL, '{');
			adm_json_field_str(&j, "address", v->rcpts[k].address);
			adm_json_field_str(&j, "status",
			    status_names[v->rcpts[k].status]);
			adm_json_field_str(&j, "orcpt", v->rcpts[k].orcpt);
			adm_json_close(&j);
		}
		adm_json_close(&j);
		adm_json_field_int(&j, "attempts", v->attempts);
		adm_json_field_int(&j, "next_try", (long long)v->next_try);
		adm_json_field_str(&j, "last_error", v->last_error);
		adm_json_close(&j);
	}
	adm_json_close(&j);
	return adm_json_print(&j);
}

static int
print_table(const struct entries *e, time_t now)
{
	static const char *const header[] = { "ID", "AGE", "SENDER",
	    "RECIPIENTS", "ATTEMPTS", "NEXT TRY", "LAST ERROR" };
	char age[16], next[32], attempts[16];
	struct adm_table t;
	struct buf rcpts;
	size_t i, j;

	adm_table_init(&t, 7, header);
	buf_init(&rcpts, BUF_UNLIMITED);
	for (i = 0; i < e->n; i++) {
		const struct queue_env *v = &e->env[i];
		const char *row[7];

		buf_reset(&rcpts);
		for (j = 0; j < v->nrcpts; j++) {
			if (j > 0)
				buf_puts(&rcpts, ", ");
			buf_puts(&rcpts, v->rcpts[j].address);
			if (v->rcpts[j].status != QRCPT_PENDING)
				buf_printf(&rcpts, " (%s)",
				    status_names[v->rcpts[j].status]);
		}
		format_span(now - v->created, age, sizeof(age));
		if (v->next_try <= now)
			strlcpy_checked(next, "now", sizeof(next));
		else {
			strlcpy_checked(next, "in ", sizeof(next));
			format_span(v->next_try - now, next + 3,
			    sizeof(next) - 3);
		}
		snprintf_checked(attempts, sizeof(attempts), "%u", v->attempts);
		row[0] = v->id;
		row[1] = age;
		row[2] = v->sender[0] ? v->sender : "<>";
		row[3] = buf_cstr(&rcpts);
		row[4] = attempts;
		row[5] = next;
		row[6] = v->last_error[0] ? v->last_error : "-";
		adm_table_add(&t, row);
	}
	buf_free(&rcpts);
	if (e->n == 0)
		printf("queue is empty\n");
	else
		adm_table_print(&t);
	adm_table_free(&t);
	return ADM_OK;
}

int
adm_queue_list(struct adm_ctx *ctx, int argc, char **argv)
{
	struct entries e;
	char *pos[1];
	int r, np;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 0, 0, &np)) != ADM_OK ||
	    (r = adm_drop_privs(ctx)) != ADM_OK ||
	    (r = load_entries(ctx, &e)) != ADM_OK)
		return r;
	r = ctx->json ? print_json(&e, time(NULL)) :
	    print_table(&e, time(NULL));
	free_entries(&e);
	return r;
}

int
adm_queue_flush(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[1];
	int r, np;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 0, 0, &np)) != ADM_OK ||
	    (r = adm_drop_privs(ctx)) != ADM_OK)
		return r;
	if (queue_request_flush(ctx->cfg.queue_dir) < 0)
		return adm_fail("cannot ask for a flush in %s: %s",
		    ctx->cfg.queue_dir, strerror(errno));
	printf("flush requested: smtpd retries every queued message now\n");
	return ADM_OK;
}

int
adm_queue_del(struct adm_ctx *ctx, int argc, char **argv)
{
	char *pos[1];
	int r, np;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 1, 1, &np)) != ADM_OK)
		return r;
	if (!queue_id_valid(pos[0]))
		return adm_fail("\"%s\" is not a queue id (see mailadm queue "
		    "list)", pos[0]);
	if ((r = adm_drop_privs(ctx)) != ADM_OK)
		return r;
	if (queue_remove(ctx->cfg.queue_dir, pos[0]) < 0) {
		if (errno == ENOENT)
			return adm_fail("no queued message %s (already "
			    "delivered or deleted?)", pos[0]);
		return adm_fail("cannot delete %s: %s", pos[0],
		    strerror(errno));
	}
	printf("deleted %s\n", pos[0]);
	return ADM_OK;
}
