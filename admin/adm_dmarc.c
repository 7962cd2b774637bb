/*
 * adm_dmarc.c - mailadm dmarc report [--date YYYY-MM-DD] [--domain D]
 * [--send]: the RFC 7489 aggregate reports of one UTC day (yesterday by
 * default), built from the evaluations smtpd recorded.
 *
 * Without --send each report's XML document is printed, one after the
 * other (each starts with its own "<?xml" line), or with --json a
 * summary; nothing is looked up in DNS.  --send checks each destination
 * (RFC 7489 7.1, in DNS) and queues the mails, as the queue runner does
 * daily with dmarc_reports = on; a day sent twice carries the same
 * Report-ID, so receivers drop the copy.
 */
#include "adm.h"
#include "../common/dmarc_daily.h"
#include "../store/queue.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void
format_date(time_t day, char *out, size_t outsz)
{
	struct tm tm;

	gmtime_r(&day, &tm);
	snprintf_checked(out, outsz, "%04d-%02d-%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday);
}

/* The recipients of o as "a@x, b@y" ("" for none). */
static void
format_rcpts(const struct dmarc_out *o, struct buf *b)
{
	char a[ADDR_MAX];
	size_t i;

	buf_reset(b);
	for (i = 0; i < o->rua.n; i++)
		if (addr_format(&o->rua.addr[i], a, sizeof(a)) == 0)
			buf_printf(b, "%s%s", b->len ? ", " : "", a);
}

static int
queue_one(struct adm_ctx *ctx, const struct dmarc_day *day,
    const struct dmarc_out *o, char *id, size_t idsz)
{
	struct queue_rcpt rcpts[DMARC_RUA_MAX];
	size_t k;

	memset(rcpts, 0, sizeof(rcpts));
	for (k = 0; k < o->rua.n; k++) {
		addr_format(&o->rua.addr[k], rcpts[k].address,
		    sizeof(rcpts[k].address));
		rcpts[k].status = QRCPT_PENDING;
	}
	if (queue_write(ctx->cfg.queue_dir, day->from, rcpts, o->rua.n,
	    o->mail.data, o->mail.len, NULL, id, idsz) < 0)
		return adm_fail("cannot queue the DMARC report for %s in %s: %s",
		    o->rep->domain, ctx->cfg.queue_dir, strerror(errno));
	return ADM_OK;
}

static void
json_report(struct adm_json *j, const struct dmarc_day *day,
    const struct dmarc_out *o, const char *queued)
{
	char a[ADDR_MAX];
	size_t k;

	adm_json_open(j, NULL, '{');
	adm_json_field_str(j, "domain", o->rep->domain);
	adm_json_field_str(j, "rua", o->rep->rua);
	adm_json_field_str(j, "report_id", o->report_id);
	adm_json_field_str(j, "filename", o->filename);
	adm_json_field_str(j, "from", day->from);
	adm_json_field_int(j, "begin", (long long)day->begin);
	adm_json_field_int(j, "end", (long long)day->end - 1);
	adm_json_field_int(j, "messages", (long long)o->messages);
	adm_json_field_int(j, "records", (long long)o->rep->nrows);
	adm_json_open(j, "recipients", '[');
	for (k = 0; k < o->rua.n; k++)
		if (addr_format(&o->rua.addr[k], a, sizeof(a)) == 0)
			adm_json_field_str(j, NULL, a);
	adm_json_close(j);
	if (queued != NULL)
		adm_json_field_str(j, "queued", queued);
	adm_json_field_str(j, "note", o->note);
	adm_json_close(j);
}

int
adm_dmarc_report(struct adm_ctx *ctx, int argc, char **argv)
{
	const char *date = NULL, *domain = NULL, *error;
	int send = 0, n, r = ADM_OK, shown = 0;
	const struct adm_opt opts[] = {
		{ "--date", &date, NULL },
		{ "--domain", &domain, NULL },
		{ "--send", NULL, &send },
		{ NULL, NULL, NULL },
	};
	char id[QUEUE_ID_MAX], day_s[16];
	struct dmarc_day day;
	struct adm_json j;
	struct buf rcpts;
	time_t begin;
	size_t i;

	if ((r = adm_args(ctx, argc, argv, opts, NULL, 0, 0, &n)) != ADM_OK)
		return r;
	if (date == NULL)
		begin = dmarc_utc_day(time(NULL)) - 86400;	/* yesterday */
	else if (dmarc_parse_date(date, &begin) < 0)
		return adm_usage_fail(ctx, "invalid date \"%.32s\": expected "
		    "YYYY-MM-DD (a UTC day)", date);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	format_date(begin, day_s, sizeof(day_s));
	if (dmarc_day_build(ctx->db, &ctx->cfg, begin,
	    send ? DMARC_BUILD_MAIL : 0, &day, &error) < 0) {
		dmarc_day_free(&day);
		return adm_fail("DMARC reports of %s: %s", day_s, error);
	}
	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	buf_init(&rcpts, BUF_UNLIMITED);
	for (i = 0; i < day.n && r == ADM_OK; i++) {
		const struct dmarc_out *o = &day.out[i];
		const char *queued = NULL;

		if (domain != NULL && strcasecmp(domain, o->rep->domain) != 0)
			continue;
		shown++;
		if (send && o->mail.len > 0) {
			if ((r = queue_one(ctx, &day, o, id, sizeof(id))) !=
			    ADM_OK)
				break;
			queued = id;
		}
		if (ctx->json) {
			json_report(&j, &day, o, queued);
			continue;
		}
		if (!send) {
			fwrite(o->xml.data, 1, o->xml.len, stdout);
			continue;
		}
		format_rcpts(o, &rcpts);
		if (queued != NULL)
			printf("queued %s: DMARC report of %s for %s (%lu "
			    "messages, report-id %s) to %s\n", queued, day_s,
			    o->rep->domain, o->messages, o->report_id,
			    buf_cstr(&rcpts));
		else
			printf("not sent: DMARC report of %s for %s\n", day_s,
			    o->rep->domain);
		if (o->note[0] != '\0')
			fprintf(stderr, "mailadm: DMARC report for %s: %s\n",
			    o->rep->domain, o->note);
	}
	buf_free(&rcpts);
	adm_json_close(&j);
	if (r == ADM_OK && ctx->json)
		r = adm_json_print(&j);
	else
		buf_free(&j.b);
	if (r == ADM_OK && shown == 0 && !ctx->json)
		fprintf(stderr, "mailadm: no DMARC reports for %s%s%s (no "
		    "evaluation with a rua= address that day)\n", day_s,
		    domain != NULL ? " and " : "", domain != NULL ? domain : "");
	dmarc_day_free(&day);
	return r;
}
