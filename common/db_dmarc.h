/*
 * db_dmarc.h - the dmarc_evaluations table: smtpd records each DMARC
 * evaluation of mail from outside; the daily aggregate reports (RFC 7489
 * 7.2, dmarc_report.h) are built from it and old rows are purged.
 *
 * Recording happens on smtpd's thread pool, one INSERT per message from
 * a domain that publishes DMARC, never on the event loop.  Queries are
 * prepared statements with bound parameters only.
 */
#ifndef BUZON_DB_DMARC_H
#define BUZON_DB_DMARC_H

#include <stddef.h>
#include <time.h>

#include "db.h"
#include "policy.h"

#define DMARC_KEEP_DAYS 30	/* rows older than this are purged */

/*
 * Record one evaluation (dmarc->result must not be NONE) made now.
 * ip is the client address as text, envelope_from_domain the domain of
 * MAIL FROM ("" for <>), spf NULL when SPF was not checked,
 * disposition_applied the enum dmarc_disposition actually applied.
 * 0 or -1.
 */
int db_dmarc_record(struct db *db, const char *ip,
    const char *envelope_from_domain, const struct spf_outcome *spf,
    const struct dkim_outcome *dkim, const struct dmarc_outcome *dmarc,
    int disposition_applied);
/*
 * A handle for recording from a daemon's pool thread: db_open() without
 * create, then synchronous = NORMAL.  In WAL mode a commit then costs no
 * fsync (the WAL is synced at checkpoints): a delivery already pays for
 * its own, and a power cut only loses the last evaluations, which thins
 * a report but never mail.  0, or -1 with err.
 */
int db_dmarc_open_recorder(const char *path, struct db **out, char *err,
    size_t errlen);
/* The same at a given time (tests, imports). */
int db_dmarc_record_at(struct db *db, time_t when, const char *ip,
    const char *envelope_from_domain, const struct spf_outcome *spf,
    const struct dkim_outcome *dkim, const struct dmarc_outcome *dmarc,
    int disposition_applied);

/*
 * The "dkim" column of one evaluation: "DOMAIN SELECTOR RESULT" per
 * signature joined by ';', "" without signatures.  Bytes that would
 * break the format (space, ';', controls, non-ASCII) become '?', an
 * empty field "-".  Pure.  0, or -1 when out is too small.
 */
int db_dmarc_dkim_text(const struct dkim_outcome *dkim, char *out,
    size_t outsz);

/* One <record> of an aggregate report: evaluations that agree. */
struct dmarc_agg_row {
	char source_ip[64];
	unsigned long count;
	char disposition[16];		/* none | quarantine | reject */
	int dkim_aligned, spf_aligned;	/* policy_evaluated: pass or fail */
	char reason[16];		/* "" or "sampled_out" */
	char envelope_from[256];
	char header_from[256];
	char spf_domain[256];
	char spf_scope[8];		/* mfrom | helo */
	char spf_result[16];
	char *dkim;			/* the "dkim" column (heap) */
};

/* One report: a policy domain and its rua, with the rows of the day. */
struct dmarc_agg_report {
	char domain[256];		/* where the record was found */
	char org_domain[256];
	char rua[512];			/* as published */
	char p[16], sp[16];		/* the latest evaluation's policy */
	char adkim, aspf;
	int pct;
	struct dmarc_agg_row *rows;
	size_t nrows;
};

/*
 * The reports for [begin, end): evaluations with a pass or fail result
 * and a rua, grouped per (policy domain, rua), each report's rows grouped
 * by source IP, disposition, results and identifiers, largest first.
 * Sorted by domain.  0, or -1 with *error_r.  Free with
 * db_dmarc_reports_free.
 */
int db_dmarc_reports(struct db *db, time_t begin, time_t end,
    struct dmarc_agg_report **reports_r, size_t *n_r, const char **error_r);
void db_dmarc_reports_free(struct dmarc_agg_report *r, size_t n);

/* Delete the evaluations made before `before`.  The count, or -1. */
long db_dmarc_purge(struct db *db, time_t before, const char **error_r);

/*
 * The domain the reports come from (postmaster@DOMAIN): among our active
 * domains, one with an active DKIM key first (so that the reports are
 * signed), then the one hostname is in (hostname itself or a parent),
 * then the first by name; "" when we host none.  0, or -1 with *error_r.
 */
int db_dmarc_reporting_domain(struct db *db, const char *hostname,
    char *out, size_t outsz, const char **error_r);

#endif
