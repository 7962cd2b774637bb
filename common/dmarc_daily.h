/*
 * dmarc_daily.h - one UTC day's DMARC aggregate reports, built from the
 * dmarc_evaluations table and ready to print (mailadm dmarc report) or
 * to queue (mailadm dmarc report --send, and smtpd's queue runner once a
 * day when [policy] dmarc_reports = on).
 *
 * Building the mails checks each rua destination outside the policy
 * domain's organisational domain in DNS (RFC 7489 7.1) with the system
 * resolver, so it blocks: never call it on an event loop.  Queueing is
 * the caller's (store/queue.h), so common/ keeps off the spool.
 */
#ifndef BUZON_DMARC_DAILY_H
#define BUZON_DMARC_DAILY_H

#include <stddef.h>
#include <time.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "db_dmarc.h"
#include "dmarc_report.h"

#define DMARC_BUILD_MAIL 1	/* verify destinations, build the mails */

/* One report of the day. */
struct dmarc_out {
	const struct dmarc_agg_report *rep;
	char report_id[DMARC_REPORT_ID_MAX];
	char filename[1024];
	unsigned long messages;		/* evaluations it covers */
	struct buf xml;
	struct dmarc_rua rua;		/* with DMARC_BUILD_MAIL: the
					 * destinations that passed */
	struct buf mail;		/* the message; empty when none did */
	char note[512];			/* what was dropped and why, or "" */
};

struct dmarc_day {
	time_t begin, end;		/* [begin, end), one UTC day */
	char from[ADDR_MAX];		/* the reporting address */
	struct dmarc_agg_report *reps;
	struct dmarc_out *out;		/* one per report */
	size_t n;
};

/*
 * The reports of the UTC day starting at begin, from postmaster@ the
 * domain db_dmarc_reporting_domain() picks (else the hostname).  With
 * DMARC_BUILD_MAIL also the checked destinations and mails.  0, or -1
 * with *error_r.  Free with dmarc_day_free (also after -1).
 */
int dmarc_day_build(struct db *db, const struct config *cfg, time_t begin,
    int flags, struct dmarc_day *day, const char **error_r);
void dmarc_day_free(struct dmarc_day *day);

/* The UTC midnight at or before t. */
time_t dmarc_utc_day(time_t t);
/* "YYYY-MM-DD" -> that day's UTC midnight.  0, or -1 if not a date. */
int dmarc_parse_date(const char *s, time_t *out);

#endif
