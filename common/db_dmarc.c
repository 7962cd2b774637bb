/*
 * db_dmarc.c - the dmarc_evaluations table (db_dmarc.h): the row smtpd
 * writes per DMARC evaluation, the grouping that becomes aggregate
 * reports, the purge of old rows, and the domain reports come from.
 *
 * The words stored for results are those of RFC 7489 appendix C, spelled
 * out here rather than taken from the policy modules, so that mailadm and
 * the report builder do not depend on the DNS libraries.  Prepared
 * statements only; nothing here touches DNS or files.
 */
#include "db_dmarc.h"
#include "db_private.h"
#include "buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const spf_words[] = {
	[SPF_RES_NONE] = "none", [SPF_RES_NEUTRAL] = "neutral",
	[SPF_RES_PASS] = "pass", [SPF_RES_FAIL] = "fail",
	[SPF_RES_SOFTFAIL] = "softfail", [SPF_RES_TEMPERROR] = "temperror",
	[SPF_RES_PERMERROR] = "permerror",
};

static const char *const dkim_words[] = {
	[DKIM_RES_NONE] = "none", [DKIM_RES_PASS] = "pass",
	[DKIM_RES_FAIL] = "fail", [DKIM_RES_NEUTRAL] = "neutral",
	[DKIM_RES_TEMPERROR] = "temperror", [DKIM_RES_PERMERROR] = "permerror",
	[DKIM_RES_POLICY] = "policy",
};

static const char *const dmarc_words[] = {
	[DMARC_RES_NONE] = "none", [DMARC_RES_PASS] = "pass",
	[DMARC_RES_FAIL] = "fail", [DMARC_RES_TEMPERROR] = "temperror",
	[DMARC_RES_PERMERROR] = "permerror",
};

static const char *const disp_words[] = {
	[DMARC_DISP_NONE] = "none", [DMARC_DISP_QUARANTINE] = "quarantine",
	[DMARC_DISP_REJECT] = "reject",
};

#define WORD(tab, v) ((unsigned)(v) < sizeof(tab) / sizeof(tab[0]) && \
	(tab)[(unsigned)(v)] != NULL ? (tab)[(unsigned)(v)] : (tab)[0])

/* A field of the dkim column: nothing that splits it, never empty. */
static int
dkim_field(struct buf *b, const char *s)
{
	size_t i;

	if (s[0] == '\0')
		return buf_putc(b, '-');
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (buf_putc(b, c <= ' ' || c >= 0x7f || c == ';' ? '?' :
		    (char)c) < 0)
			return -1;
	}
	return 0;
}

int
db_dmarc_dkim_text(const struct dkim_outcome *dkim, char *out, size_t outsz)
{
	struct buf b;
	size_t i, n;
	int r = 0;

	buf_init(&b, outsz > 0 ? outsz - 1 : 0);
	n = dkim != NULL ? dkim->nsigs : 0;
	if (n > POLICY_DKIM_MAX_SIGS)
		n = POLICY_DKIM_MAX_SIGS;
	for (i = 0; i < n && r == 0; i++) {
		const struct dkim_sig_outcome *g = &dkim->sig[i];

		if ((i > 0 && buf_putc(&b, ';') < 0) ||
		    dkim_field(&b, g->domain) < 0 || buf_putc(&b, ' ') < 0 ||
		    dkim_field(&b, g->selector) < 0 ||
		    buf_printf(&b, " %s", WORD(dkim_words, g->result)) < 0)
			r = -1;
	}
	if (r == 0 && strlcpy_checked(out, buf_cstr(&b), outsz) < 0)
		r = -1;
	buf_free(&b);
	return r;
}

/* A domain as stored: lower case, so that rows group whatever the case. */
static void
lower_copy(char *dst, const char *src, size_t dstsz)
{
	strlcpy_checked(dst, src, dstsz);
	addr_lower(dst);
}

int
db_dmarc_record_at(struct db *db, time_t when, const char *ip,
    const char *envelope_from_domain, const struct spf_outcome *spf,
    const struct dkim_outcome *dkim, const struct dmarc_outcome *dmarc,
    int disposition_applied)
{
	static const char sql[] = "INSERT INTO dmarc_evaluations (time,"
	    " source_ip, envelope_from, header_from, spf_domain, spf_scope,"
	    " spf_result, spf_aligned, dkim, dkim_aligned, dmarc_result,"
	    " disposition, reason, policy_domain, org_domain, p, sp, adkim,"
	    " aspf, pct, rua) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
	    " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)";
	char envfrom[256], hfrom[256], spfdom[256], pdom[256], org[256];
	char dkimtext[POLICY_DKIM_MAX_SIGS * 400], adkim[2], aspf[2];
	const char *p, *sp;
	sqlite3_stmt *st;
	int pct, rc, i = 1;

	lower_copy(envfrom, envelope_from_domain, sizeof(envfrom));
	lower_copy(hfrom, dmarc->from_domain, sizeof(hfrom));
	lower_copy(spfdom, spf != NULL ? spf->domain : envelope_from_domain,
	    sizeof(spfdom));
	lower_copy(pdom, dmarc->record_domain[0] ? dmarc->record_domain :
	    dmarc->from_domain, sizeof(pdom));
	lower_copy(org, dmarc->org_domain[0] ? dmarc->org_domain : pdom,
	    sizeof(org));
	if (db_dmarc_dkim_text(dkim, dkimtext, sizeof(dkimtext)) < 0)
		return -1;
	/*
	 * An evaluation whose policy fields were not filled in (p empty)
	 * still records what was decided, with RFC 7489's defaults.
	 */
	p = dmarc->p[0] ? dmarc->p : dmarc->policy;
	sp = dmarc->sp[0] ? dmarc->sp : p;
	adkim[0] = dmarc->adkim == 's' ? 's' : 'r';
	aspf[0] = dmarc->aspf == 's' ? 's' : 'r';
	adkim[1] = aspf[1] = '\0';
	pct = dmarc->p[0] ? dmarc->pct : 100;
	if (pct < 0 || pct > 100)
		pct = 100;
	if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
#define TEXT(v) sqlite3_bind_text(st, i++, (v), -1, SQLITE_TRANSIENT)
#define INT(v) sqlite3_bind_int64(st, i++, (sqlite3_int64)(v))
	if (INT(when) || TEXT(ip) || TEXT(envfrom) || TEXT(hfrom) ||
	    TEXT(spfdom) ||
	    TEXT(spf != NULL && spf->helo_identity ? "helo" : "mfrom") ||
	    TEXT(spf != NULL ? WORD(spf_words, spf->result) : "none") ||
	    INT(dmarc->spf_aligned != 0) || TEXT(dkimtext) ||
	    INT(dmarc->dkim_aligned != 0) ||
	    TEXT(WORD(dmarc_words, dmarc->result)) ||
	    TEXT(WORD(disp_words, disposition_applied)) ||
	    TEXT(dmarc->sampled_out ? "sampled_out" : "") || TEXT(pdom) ||
	    TEXT(org) || TEXT(p) || TEXT(sp) || TEXT(adkim) || TEXT(aspf) ||
	    INT(pct) || TEXT(dmarc->rua)) {
		sqlite3_finalize(st);
		return -1;
	}
#undef TEXT
#undef INT
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
db_dmarc_open_recorder(const char *path, struct db **out, char *err,
    size_t errlen)
{
	if (db_open(path, 0, out, err, errlen) < 0)
		return -1;
	if (sqlite3_exec((*out)->h, "PRAGMA synchronous = NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK) {
		snprintf_checked(err, errlen, "database %s: %s", path,
		    sqlite3_errmsg((*out)->h));
		db_close(out);
		return -1;
	}
	return 0;
}

int
db_dmarc_record(struct db *db, const char *ip,
    const char *envelope_from_domain, const struct spf_outcome *spf,
    const struct dkim_outcome *dkim, const struct dmarc_outcome *dmarc,
    int disposition_applied)
{
	return db_dmarc_record_at(db, time(NULL), ip, envelope_from_domain,
	    spf, dkim, dmarc, disposition_applied);
}

/* ---- reports ---- */

void
db_dmarc_reports_free(struct dmarc_agg_report *r, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		for (k = 0; k < r[i].nrows; k++)
			free(r[i].rows[k].dkim);
		free(r[i].rows);
	}
	free(r);
}

/* The newest evaluation's policy for the report (it may change in a day). */
static int
load_policy(struct db *db, struct dmarc_agg_report *rep, time_t begin,
    time_t end)
{
	static const char sql[] = "SELECT p, sp, adkim, aspf, pct, org_domain"
	    " FROM dmarc_evaluations WHERE policy_domain = ?1 AND rua = ?2"
	    " AND time >= ?3 AND time < ?4 AND dmarc_result IN ('pass', 'fail')"
	    " ORDER BY time DESC, id DESC LIMIT 1";
	sqlite3_stmt *st = db_prepare(db, sql, rep->domain, rep->rua);
	char a[4];
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 3, begin) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 4, end) != SQLITE_OK) {
		sqlite3_finalize(st);
		return -1;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		db_column_text(st, 0, rep->p, sizeof(rep->p));
		db_column_text(st, 1, rep->sp, sizeof(rep->sp));
		db_column_text(st, 2, a, sizeof(a));
		rep->adkim = a[0] == 's' ? 's' : 'r';
		db_column_text(st, 3, a, sizeof(a));
		rep->aspf = a[0] == 's' ? 's' : 'r';
		rep->pct = sqlite3_column_int(st, 4);
		db_column_text(st, 5, rep->org_domain, sizeof(rep->org_domain));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

int
db_dmarc_reports(struct db *db, time_t begin, time_t end,
    struct dmarc_agg_report **reports_r, size_t *n_r, const char **error_r)
{
	static const char sql[] = "SELECT policy_domain, rua, source_ip,"
	    " disposition, reason, dkim_aligned, spf_aligned, envelope_from,"
	    " header_from, spf_domain, spf_scope, spf_result, dkim, count(*)"
	    " FROM dmarc_evaluations"
	    " WHERE time >= ?1 AND time < ?2 AND rua <> ''"
	    " AND dmarc_result IN ('pass', 'fail')"
	    " GROUP BY policy_domain, rua, source_ip, disposition, reason,"
	    " dkim_aligned, spf_aligned, envelope_from, header_from,"
	    " spf_domain, spf_scope, spf_result, dkim"
	    " ORDER BY policy_domain, rua, count(*) DESC, source_ip,"
	    " header_from";
	struct dmarc_agg_report *reps = NULL, *rep = NULL;
	struct dmarc_agg_row *row;
	size_t n = 0, cap = 0, rowcap = 0, i;
	sqlite3_stmt *st;
	int rc;

	*reports_r = NULL;
	*n_r = 0;
	if ((st = db_prepare(db, sql, NULL, NULL)) == NULL ||
	    sqlite3_bind_int64(st, 1, begin) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, end) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_sql_fail(db, error_r, "reading DMARC evaluations");
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *dom = (const char *)sqlite3_column_text(st, 0);
		const char *rua = (const char *)sqlite3_column_text(st, 1);

		if (dom == NULL || rua == NULL)
			continue;
		if (rep == NULL || strcmp(rep->domain, dom) != 0 ||
		    strcmp(rep->rua, rua) != 0) {
			if (db_grow((void **)&reps, n, &cap, sizeof(*reps)) < 0)
				goto nomem;
			rep = &reps[n++];
			memset(rep, 0, sizeof(*rep));
			rowcap = 0;
			strlcpy_checked(rep->domain, dom, sizeof(rep->domain));
			strlcpy_checked(rep->rua, rua, sizeof(rep->rua));
		}
		if (db_grow((void **)&rep->rows, rep->nrows, &rowcap,
		    sizeof(*rep->rows)) < 0)
			goto nomem;
		row = &rep->rows[rep->nrows];
		memset(row, 0, sizeof(*row));
		db_column_text(st, 2, row->source_ip, sizeof(row->source_ip));
		db_column_text(st, 3, row->disposition,
		    sizeof(row->disposition));
		db_column_text(st, 4, row->reason, sizeof(row->reason));
		row->dkim_aligned = sqlite3_column_int(st, 5) != 0;
		row->spf_aligned = sqlite3_column_int(st, 6) != 0;
		db_column_text(st, 7, row->envelope_from,
		    sizeof(row->envelope_from));
		db_column_text(st, 8, row->header_from,
		    sizeof(row->header_from));
		db_column_text(st, 9, row->spf_domain, sizeof(row->spf_domain));
		db_column_text(st, 10, row->spf_scope, sizeof(row->spf_scope));
		db_column_text(st, 11, row->spf_result,
		    sizeof(row->spf_result));
		row->dkim = strdup(sqlite3_column_text(st, 12) != NULL ?
		    (const char *)sqlite3_column_text(st, 12) : "");
		if (row->dkim == NULL)
			goto nomem;
		row->count = (unsigned long)sqlite3_column_int64(st, 13);
		rep->nrows++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		db_dmarc_reports_free(reps, n);
		return db_sql_fail(db, error_r, "reading DMARC evaluations");
	}
	for (i = 0; i < n; i++)
		if (load_policy(db, &reps[i], begin, end) < 0) {
			db_dmarc_reports_free(reps, n);
			return db_sql_fail(db, error_r, "reading DMARC policies");
		}
	*reports_r = reps;
	*n_r = n;
	return 0;
nomem:
	sqlite3_finalize(st);
	db_dmarc_reports_free(reps, n);
	return db_fail(db, error_r, "out of memory reading DMARC evaluations");
}

long
db_dmarc_purge(struct db *db, time_t before, const char **error_r)
{
	sqlite3_stmt *st = db_prepare(db,
	    "DELETE FROM dmarc_evaluations WHERE time < ?1", NULL, NULL);
	int rc;

	if (st == NULL || sqlite3_bind_int64(st, 1, before) != SQLITE_OK) {
		sqlite3_finalize(st);
		return db_sql_fail(db, error_r, "purging DMARC evaluations");
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_sql_fail(db, error_r, "purging DMARC evaluations");
	return (long)sqlite3_changes(db->h);
}

/* 1 when hostname is domain or one of its subdomains. */
static int
host_in(const char *hostname, const char *domain)
{
	size_t hl = strlen(hostname), dl = strlen(domain);

	if (hl < dl || strcasecmp(hostname + hl - dl, domain) != 0)
		return 0;
	return hl == dl || hostname[hl - dl - 1] == '.';
}

int
db_dmarc_reporting_domain(struct db *db, const char *hostname, char *out,
    size_t outsz, const char **error_r)
{
	static const char sql[] = "SELECT d.name, EXISTS (SELECT 1 FROM"
	    " dkim_keys k WHERE k.domain = d.name AND k.active = 1)"
	    " FROM domains d WHERE d.active = 1 ORDER BY d.name";
	sqlite3_stmt *st = db_prepare(db, sql, NULL, NULL);
	int rc, best = -1, score;
	char name[ADDR_DOMAIN_MAX + 1];

	out[0] = '\0';
	if (st == NULL)
		return db_sql_fail(db, error_r, "listing domains");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		db_column_text(st, 0, name, sizeof(name));
		score = (sqlite3_column_int(st, 1) ? 2 : 0) +
		    host_in(hostname, name);
		if (score > best) {	/* ties: the first by name stays */
			best = score;
			strlcpy_checked(out, name, outsz);
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_sql_fail(db, error_r, "listing domains");
	return 0;
}
