/*
 * test_dmarc_report.c - DMARC aggregate reports: the XML builder
 * (escaping, structure read back by a strict little reader), rua=
 * parsing, report names, the mail (its gzip attachment decoded back to
 * the XML), and the database side: recording, the migration from
 * schema version 1, grouping per day, the purge, the reporting domain.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <openssl/evp.h>
#include <zlib.h>

#include "common/db_admin.h"
#include "common/db_dkim.h"
#include "common/db_dmarc.h"
#include "common/dmarc_daily.h"
#include "common/dmarc_report.h"
#include "store_testutil.h"

/* ---- a strict reader for the XML we write -------------------------- */

struct node {
	char path[256];
	char text[1024];
};

struct doc {
	struct node n[512];
	size_t count;
};

/* Decode one entity at *p (after '&'); the character, or -1. */
static int
entity(const char **p)
{
	static const struct { const char *name; char c; } e[] = {
		{ "amp;", '&' }, { "lt;", '<' }, { "gt;", '>' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	size_t i;

	for (i = 0; i < sizeof(e) / sizeof(e[0]); i++)
		if (strncmp(*p, e[i].name, strlen(e[i].name)) == 0) {
			*p += strlen(e[i].name);
			return e[i].c;
		}
	return -1;
}

/*
 * Elements only (no attributes, comments or CDATA: we write none), each
 * end tag matching its start, text with only the five entities, one
 * root.  Fails the test on anything else.
 */
static void
xml_read(const char *s, struct doc *d)
{
	size_t stack[32], depth = 0, tl;
	const char *p = s;
	char name[64], text[1024];
	int c = 0, roots = 0;

	memset(d, 0, sizeof(*d));
	assert_int_equal(strncmp(p, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "\n", 39), 0);
	p += 39;
	tl = 0;
	while (*p != '\0') {
		if (*p != '<') {
			if (*p == '&') {
				p++;
				c = entity(&p);
				if (c < 0)
					fail_msg("bad entity near \"%.20s\"", p);
			} else if (*p == '>')
				fail_msg("raw '>' in text near \"%.20s\"", p);
			else
				c = (unsigned char)*p++;
			assert_true(tl + 1 < sizeof(text));
			text[tl++] = (char)c;
			if (depth == 0 && !strchr(" \n", c))
				fail_msg("text outside the root element");
			continue;
		}
		p++;
		if (*p == '/') {
			size_t n = strcspn(++p, ">");

			assert_true(depth > 0);
			assert_true(n < sizeof(name));
			memcpy(name, p, n);
			name[n] = '\0';
			p += n + 1;
			{
				struct node *nd = &d->n[stack[--depth]];
				const char *last = strrchr(nd->path, '/');

				assert_string_equal(last + 1, name);
				text[tl] = '\0';
				strlcpy_checked(nd->text, text, sizeof(nd->text));
			}
			tl = 0;
			continue;
		}
		{
			size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
			struct node *nd;

			assert_true(n > 0 && n < sizeof(name) && p[n] == '>');
			memcpy(name, p, n);
			name[n] = '\0';
			p += n + 1;
			assert_true(d->count < sizeof(d->n) / sizeof(d->n[0]));
			assert_true(depth < sizeof(stack) / sizeof(stack[0]));
			nd = &d->n[d->count];
			if (depth == 0) {
				assert_int_equal(roots++, 0);
				snprintf_checked(nd->path, sizeof(nd->path), "/%s",
				    name);
			} else
				snprintf_checked(nd->path, sizeof(nd->path),
				    "%s/%s", d->n[stack[depth - 1]].path, name);
			stack[depth++] = d->count++;
			tl = 0;
		}
	}
	assert_int_equal(depth, 0);
	assert_int_equal(roots, 1);
}

/* The text of the i-th element at path (NULL when there is none). */
static const char *
xml_get(const struct doc *d, const char *path, size_t i)
{
	size_t k;

	for (k = 0; k < d->count; k++)
		if (strcmp(d->n[k].path, path) == 0 && i-- == 0)
			return d->n[k].text;
	return NULL;
}

static size_t
xml_count(const struct doc *d, const char *path)
{
	size_t k, n = 0;

	for (k = 0; k < d->count; k++)
		n += strcmp(d->n[k].path, path) == 0;
	return n;
}

/* ---- pure parts ----------------------------------------------------- */

static void
test_xml_escape(void **state)
{
	struct buf b;

	(void)state;
	buf_init(&b, 4096);
	assert_int_equal(dmarc_xml_escape(&b, "a<b>&\"c'"), 0);
	assert_string_equal(buf_cstr(&b), "a&lt;b&gt;&amp;&quot;c&apos;");
	buf_reset(&b);
	/* controls, a lone continuation byte, an overlong '/', a surrogate */
	assert_int_equal(dmarc_xml_escape(&b, "x\001y\x7f\tz\x80w\xc0\xafv"
	    "\xed\xa0\x80u"), 0);
	assert_string_equal(buf_cstr(&b), "x?y\x7f\tz?w??v???u");
	buf_reset(&b);
	/* valid UTF-8 stays, a truncated sequence at the end does not */
	assert_int_equal(dmarc_xml_escape(&b, "caf\xc3\xa9 \xf0\x9f\x93\xa7"
	    " \xe2\x82"), 0);
	assert_string_equal(buf_cstr(&b), "caf\xc3\xa9 \xf0\x9f\x93\xa7 ??");
	buf_reset(&b);
	assert_int_equal(dmarc_xml_escape(&b, "\xef\xbf\xbe"), 0);
	assert_string_equal(buf_cstr(&b), "???");
	buf_free(&b);
}

static struct dmarc_agg_row
row(const char *ip, unsigned long count, const char *disp, int dkim_al,
    int spf_al, const char *hfrom, const char *dkim)
{
	struct dmarc_agg_row r;

	memset(&r, 0, sizeof(r));
	strlcpy_checked(r.source_ip, ip, sizeof(r.source_ip));
	r.count = count;
	strlcpy_checked(r.disposition, disp, sizeof(r.disposition));
	r.dkim_aligned = dkim_al;
	r.spf_aligned = spf_al;
	strlcpy_checked(r.envelope_from, "bounce.example.org",
	    sizeof(r.envelope_from));
	strlcpy_checked(r.header_from, hfrom, sizeof(r.header_from));
	strlcpy_checked(r.spf_domain, "bounce.example.org",
	    sizeof(r.spf_domain));
	strlcpy_checked(r.spf_scope, "mfrom", sizeof(r.spf_scope));
	strlcpy_checked(r.spf_result, "softfail", sizeof(r.spf_result));
	r.dkim = (char *)(uintptr_t)dkim;
	return r;
}

static void
test_xml_structure(void **state)
{
	struct dmarc_agg_row rows[2];
	struct dmarc_agg_report rep;
	struct dmarc_report_meta m = {
		.org_name = "mx.ours.test", .email = "postmaster@ours.test",
		.report_id = "20240301.x<y>@mx.ours.test",
		.begin = 1709251200, .end = 1709251200 + 86400,
	};
	struct doc *d = malloc(sizeof(*d));
	struct buf b;

	(void)state;
	assert_non_null(d);
	memset(&rep, 0, sizeof(rep));
	strlcpy_checked(rep.domain, "example.org", sizeof(rep.domain));
	strlcpy_checked(rep.p, "quarantine", sizeof(rep.p));
	strlcpy_checked(rep.sp, "reject", sizeof(rep.sp));
	rep.adkim = 's';
	rep.aspf = 'r';
	rep.pct = 50;
	rows[0] = row("192.0.2.1", 7, "none", 1, 0, "example.org",
	    "example.org s1 pass;other.test - fail");
	rows[1] = row("2001:db8::1", 2, "quarantine", 0, 0,
	    "ex<&>ample.org\x01\xff", "");
	strlcpy_checked(rows[1].reason, "sampled_out", sizeof(rows[1].reason));
	strlcpy_checked(rows[1].spf_scope, "helo", sizeof(rows[1].spf_scope));
	rep.rows = rows;
	rep.nrows = 2;
	buf_init(&b, BUF_UNLIMITED);
	assert_int_equal(dmarc_report_xml(&m, &rep, &b), 0);
	xml_read(buf_cstr(&b), d);

	assert_string_equal(xml_get(d, "/feedback/version", 0), "1.0");
	assert_string_equal(xml_get(d, "/feedback/report_metadata/org_name",
	    0), "mx.ours.test");
	assert_string_equal(xml_get(d, "/feedback/report_metadata/email", 0),
	    "postmaster@ours.test");
	assert_string_equal(xml_get(d, "/feedback/report_metadata/report_id",
	    0), "20240301.x<y>@mx.ours.test");
	assert_string_equal(xml_get(d,
	    "/feedback/report_metadata/date_range/begin", 0), "1709251200");
	assert_string_equal(xml_get(d,
	    "/feedback/report_metadata/date_range/end", 0), "1709337599");
	assert_string_equal(xml_get(d, "/feedback/policy_published/domain", 0),
	    "example.org");
	assert_string_equal(xml_get(d, "/feedback/policy_published/adkim", 0),
	    "s");
	assert_string_equal(xml_get(d, "/feedback/policy_published/aspf", 0),
	    "r");
	assert_string_equal(xml_get(d, "/feedback/policy_published/p", 0),
	    "quarantine");
	assert_string_equal(xml_get(d, "/feedback/policy_published/sp", 0),
	    "reject");
	assert_string_equal(xml_get(d, "/feedback/policy_published/pct", 0),
	    "50");

	assert_int_equal(xml_count(d, "/feedback/record"), 2);
	assert_string_equal(xml_get(d, "/feedback/record/row/source_ip", 0),
	    "192.0.2.1");
	assert_string_equal(xml_get(d, "/feedback/record/row/count", 0), "7");
	assert_string_equal(xml_get(d,
	    "/feedback/record/row/policy_evaluated/disposition", 0), "none");
	assert_string_equal(xml_get(d,
	    "/feedback/record/row/policy_evaluated/dkim", 0), "pass");
	assert_string_equal(xml_get(d,
	    "/feedback/record/row/policy_evaluated/spf", 0), "fail");
	/* only the second row has a reason */
	assert_int_equal(xml_count(d,
	    "/feedback/record/row/policy_evaluated/reason/type"), 1);
	assert_string_equal(xml_get(d,
	    "/feedback/record/row/policy_evaluated/reason/type", 0),
	    "sampled_out");
	assert_string_equal(xml_get(d,
	    "/feedback/record/identifiers/header_from", 1),
	    "ex<&>ample.org??");
	assert_string_equal(xml_get(d,
	    "/feedback/record/identifiers/envelope_from", 0),
	    "bounce.example.org");
	/* two signatures in the first record, the second without selector */
	assert_int_equal(xml_count(d, "/feedback/record/auth_results/dkim"),
	    2);
	assert_string_equal(xml_get(d,
	    "/feedback/record/auth_results/dkim/domain", 1), "other.test");
	assert_int_equal(xml_count(d,
	    "/feedback/record/auth_results/dkim/selector"), 1);
	assert_string_equal(xml_get(d,
	    "/feedback/record/auth_results/dkim/result", 1), "fail");
	assert_int_equal(xml_count(d, "/feedback/record/auth_results/spf"),
	    2);
	assert_string_equal(xml_get(d,
	    "/feedback/record/auth_results/spf/scope", 1), "helo");
	assert_string_equal(xml_get(d,
	    "/feedback/record/auth_results/spf/result", 0), "softfail");
	buf_free(&b);
	free(d);
}

static void
test_rua_parse(void **state)
{
	struct dmarc_rua r;

	(void)state;
	dmarc_rua_parse("mailto:dmarc@example.org, mailto:Agg@Reports.Test!10m,"
	    "https://example.org/x,mailto:%64mar%63@z.test?subject=hi , "
	    "mailto:not-an-address,mailto:DMARC@example.org,"
	    "mailto:a@b.test!5k,mailto:c@d.test", &r);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.addr[0].local, "dmarc");
	assert_string_equal(r.addr[0].domain, "example.org");
	assert_true(r.limit[0] == 0);
	assert_string_equal(r.addr[1].local, "Agg");
	assert_string_equal(r.addr[1].domain, "reports.test");
	assert_true(r.limit[1] == 10ULL * 1024 * 1024);
	assert_string_equal(r.addr[2].local, "dmarc");
	assert_string_equal(r.addr[2].domain, "z.test");
	assert_string_equal(r.addr[3].domain, "b.test");
	assert_true(r.limit[3] == 5 * 1024);
	/* https, the bad address and c@d.test (over DMARC_RUA_MAX) */
	assert_int_equal(r.ignored, 3);

	dmarc_rua_parse("", &r);
	assert_int_equal(r.n, 0);
	/* an encoded line break never becomes part of an address */
	dmarc_rua_parse("mailto:a%0d%0aBcc:%20x@y.test@z.test", &r);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.ignored, 1);
}

static void
test_names(void **state)
{
	char a[DMARC_REPORT_ID_MAX], b[DMARC_REPORT_ID_MAX], f[256];

	(void)state;
	assert_int_equal(dmarc_report_id("mx.ours.test", "example.org",
	    "mailto:a@example.org", 1709251200, a, sizeof(a)), 0);
	assert_int_equal(dmarc_report_id("mx.ours.test", "example.org",
	    "mailto:a@example.org", 1709251200, b, sizeof(b)), 0);
	assert_string_equal(a, b);
	assert_int_equal(strncmp(a, "20240301.", 9), 0);
	assert_string_equal(a + strlen(a) - 13, "@mx.ours.test");
	assert_int_equal(dmarc_report_id("mx.ours.test", "example.org",
	    "mailto:b@example.org", 1709251200, b, sizeof(b)), 0);
	assert_string_not_equal(a, b);
	assert_int_equal(dmarc_report_filename("mx.ours.test", "example.org",
	    1709251200, 1709251200 + 86400, f, sizeof(f)), 0);
	assert_string_equal(f,
	    "mx.ours.test!example.org!1709251200!1709337599.xml.gz");
	assert_int_equal(dmarc_report_filename("mx.ours.test", "example.org",
	    1709251200, 1709251200 + 86400, f, 20), -1);
}

static void
test_dates(void **state)
{
	time_t t;

	(void)state;
	assert_int_equal(dmarc_parse_date("2024-03-01", &t), 0);
	assert_true(t == 1709251200);
	assert_int_equal(dmarc_parse_date("2024-02-29", &t), 0);
	assert_int_equal(dmarc_parse_date("2023-02-29", &t), -1);
	assert_int_equal(dmarc_parse_date("2024-3-01", &t), -1);
	assert_int_equal(dmarc_parse_date("2024-03-01x", &t), -1);
	assert_int_equal(dmarc_parse_date("", &t), -1);
	assert_true(dmarc_utc_day(1709251200 + 3600) == 1709251200);
	assert_true(dmarc_utc_day(1709251200) == 1709251200);
}

/* The body of the MIME part whose header contains marker. */
static char *
part_body(const char *msg, const char *marker)
{
	const char *p = strstr(msg, marker), *start, *end;
	char *out;

	assert_non_null(p);
	start = strstr(p, "\n\n");
	assert_non_null(start);
	start += 2;
	end = strstr(start, "--=_buzon-dmarc-report_=--");
	assert_non_null(end);
	out = strndup(start, (size_t)(end - start));
	assert_non_null(out);
	return out;
}

static void
test_mail(void **state)
{
	static const char xml[] = "<?xml version=\"1.0\"?>\n<feedback/>\n";
	struct mailaddr to[2];
	struct dmarc_mail_info mi;
	unsigned char raw[4096], plain[256];
	char *b64, *p, *q;
	struct buf m;
	size_t rawlen = 0;
	z_stream z;
	int n;

	(void)state;
	memset(to, 0, sizeof(to));
	strlcpy_checked(to[0].local, "dmarc", sizeof(to[0].local));
	strlcpy_checked(to[0].domain, "example.org", sizeof(to[0].domain));
	strlcpy_checked(to[1].local, "agg", sizeof(to[1].local));
	strlcpy_checked(to[1].domain, "reports.test", sizeof(to[1].domain));
	memset(&mi, 0, sizeof(mi));
	mi.from = "postmaster@ours.test";
	mi.to = to;
	mi.nto = 2;
	mi.submitter = "mx.ours.test";
	mi.domain = "example.org";
	mi.report_id = "20240301.0123456789abcdef@mx.ours.test";
	mi.begin = 1709251200;
	mi.end = mi.begin + 86400;
	mi.now = mi.end + 600;
	mi.msgid_left = "dmarc.1.x";
	buf_init(&m, BUF_UNLIMITED);
	assert_int_equal(dmarc_report_mail(&mi, xml, strlen(xml), &m), 0);
	p = (char *)buf_cstr(&m);
	{
		static const char head[] = "From: <postmaster@ours.test>\n"
		    "To: <dmarc@example.org>,\n <agg@reports.test>\n";

		assert_int_equal(strncmp(p, head, strlen(head)), 0);
	}
	assert_non_null(strstr(p, "\nSubject: Report Domain: example.org\n "
	    "Submitter: mx.ours.test\n Report-ID: <20240301.0123456789abcdef@"
	    "mx.ours.test>\n"));
	assert_non_null(strstr(p, "\nDate: Sat, 02 Mar 2024 00:10:00 +0000\n"));
	assert_non_null(strstr(p, "\nMessage-ID: <dmarc.1.x@mx.ours.test>\n"));
	assert_non_null(strstr(p, "filename=\"mx.ours.test!example.org!"
	    "1709251200!1709337599.xml.gz\"\n"));
	assert_null(strchr(p, '\r'));
	/* the attachment: base64 lines of 76, then gzip of the XML */
	b64 = part_body(p, "Content-Type: application/gzip");
	for (q = strtok(b64, "\n"); q != NULL; q = strtok(NULL, "\n")) {
		assert_true(strlen(q) <= 76);
		n = EVP_DecodeBlock(raw + rawlen, (const unsigned char *)q,
		    (int)strlen(q));
		assert_true(n > 0);
		rawlen += (size_t)n;
		if (q[strlen(q) - 1] == '=')
			rawlen -= q[strlen(q) - 2] == '=' ? 2 : 1;
	}
	free(b64);
	assert_true(raw[0] == 0x1f && raw[1] == 0x8b);	/* gzip magic */
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = raw;
	z.avail_in = (uInt)rawlen;
	z.next_out = plain;
	z.avail_out = sizeof(plain);
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	assert_int_equal(sizeof(plain) - z.avail_out, strlen(xml));
	assert_memory_equal(plain, xml, strlen(xml));
	inflateEnd(&z);

	/* a header value with a line break is refused */
	buf_reset(&m);
	mi.domain = "example.org\nBcc: x@y.test";
	assert_int_equal(dmarc_report_mail(&mi, xml, strlen(xml), &m), -1);
	assert_int_equal(m.len, 0);
	buf_free(&m);
}

/* ---- the database --------------------------------------------------- */

struct fixture {
	char dir[256];
	char path[512];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf_checked(f->path, sizeof(f->path), "%s/buzon.db", f->dir);
	if (db_open(f->path, 1, &f->db, err, sizeof(err)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	db_close(&f->db);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

#define DAY 1709251200		/* 2024-03-01 00:00:00 UTC */

static void
outcome(struct dmarc_outcome *d, const char *from, const char *rua,
    enum dmarc_result res, const char *p)
{
	memset(d, 0, sizeof(*d));
	d->result = res;
	strlcpy_checked(d->from_domain, from, sizeof(d->from_domain));
	strlcpy_checked(d->record_domain, "example.org",
	    sizeof(d->record_domain));
	strlcpy_checked(d->org_domain, "example.org", sizeof(d->org_domain));
	strlcpy_checked(d->policy, p, sizeof(d->policy));
	strlcpy_checked(d->p, p, sizeof(d->p));
	d->adkim = 'r';
	d->aspf = 's';
	d->pct = 100;
	strlcpy_checked(d->rua, rua, sizeof(d->rua));
}

static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void
test_record_and_group(void **state)
{
	struct fixture *f = *state;
	struct dmarc_agg_report *reps;
	struct spf_outcome spf;
	struct dkim_outcome dkim;
	struct dmarc_outcome d;
	const char *error;
	size_t n, i;

	memset(&spf, 0, sizeof(spf));
	spf.result = SPF_RES_PASS;
	strlcpy_checked(spf.domain, "Example.ORG", sizeof(spf.domain));
	memset(&dkim, 0, sizeof(dkim));
	dkim.nsigs = 2;
	dkim.sig[0].result = DKIM_RES_PASS;
	strlcpy_checked(dkim.sig[0].domain, "example.org",
	    sizeof(dkim.sig[0].domain));
	strlcpy_checked(dkim.sig[0].selector, "s1",
	    sizeof(dkim.sig[0].selector));
	dkim.sig[1].result = DKIM_RES_FAIL;
	strlcpy_checked(dkim.sig[1].domain, "evil;x y",
	    sizeof(dkim.sig[1].domain));

	outcome(&d, "example.org", "mailto:dmarc@example.org",
	    DMARC_RES_PASS, "reject");
	d.spf_aligned = d.dkim_aligned = 1;
	/* three identical passes from one address, one from another */
	for (i = 0; i < 3; i++)
		assert_int_equal(db_dmarc_record_at(f->db, DAY + 100 + (time_t)i,
		    "192.0.2.1", "example.org", &spf, &dkim, &d,
		    DMARC_DISP_NONE), 0);
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 200, "192.0.2.2",
	    "example.org", &spf, &dkim, &d, DMARC_DISP_NONE), 0);
	/* a failure, sampled out, without SPF, later that day: its policy
	 * (p=quarantine, pct=20) is the one the report shows */
	outcome(&d, "sub.example.org", "mailto:dmarc@example.org",
	    DMARC_RES_FAIL, "quarantine");
	d.pct = 20;
	d.sampled_out = 1;
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 86399, "192.0.2.9",
	    "", NULL, NULL, &d, DMARC_DISP_NONE), 0);
	/* outside the day, without rua, a temperror: not in the reports */
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 86400, "192.0.2.9",
	    "", NULL, NULL, &d, DMARC_DISP_NONE), 0);
	assert_int_equal(db_dmarc_record_at(f->db, DAY - 1, "192.0.2.9",
	    "", NULL, NULL, &d, DMARC_DISP_NONE), 0);
	outcome(&d, "norua.test", "", DMARC_RES_FAIL, "none");
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 5, "192.0.2.9",
	    "", NULL, NULL, &d, DMARC_DISP_NONE), 0);
	outcome(&d, "example.org", "mailto:dmarc@example.org",
	    DMARC_RES_TEMPERROR, "none");
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 5, "192.0.2.9",
	    "", NULL, NULL, &d, DMARC_DISP_NONE), 0);
	/* a second rua for the same domain: a report of its own */
	outcome(&d, "example.org", "mailto:other@example.org",
	    DMARC_RES_FAIL, "reject");
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 7, "192.0.2.7",
	    "example.org", &spf, NULL, &d, DMARC_DISP_REJECT), 0);

	assert_int_equal(db_dmarc_reports(f->db, DAY, DAY + 86400, &reps, &n,
	    &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(reps[0].domain, "example.org");
	assert_string_equal(reps[0].rua, "mailto:dmarc@example.org");
	assert_string_equal(reps[0].p, "quarantine");
	assert_int_equal(reps[0].pct, 20);
	assert_int_equal(reps[0].aspf, 's');
	assert_int_equal(reps[0].nrows, 3);
	/* largest group first */
	assert_string_equal(reps[0].rows[0].source_ip, "192.0.2.1");
	assert_int_equal(reps[0].rows[0].count, 3);
	assert_string_equal(reps[0].rows[0].spf_domain, "example.org");
	assert_string_equal(reps[0].rows[0].spf_result, "pass");
	assert_string_equal(reps[0].rows[0].dkim,
	    "example.org s1 pass;evil?x?y - fail");
	assert_int_equal(reps[0].rows[0].dkim_aligned, 1);
	assert_string_equal(reps[0].rows[1].source_ip, "192.0.2.2");
	assert_string_equal(reps[0].rows[2].source_ip, "192.0.2.9");
	assert_string_equal(reps[0].rows[2].header_from, "sub.example.org");
	assert_string_equal(reps[0].rows[2].reason, "sampled_out");
	assert_string_equal(reps[0].rows[2].spf_result, "none");
	assert_string_equal(reps[0].rows[2].spf_scope, "mfrom");
	assert_string_equal(reps[0].rows[2].dkim, "");
	assert_string_equal(reps[1].rua, "mailto:other@example.org");
	assert_int_equal(reps[1].nrows, 1);
	assert_string_equal(reps[1].rows[0].disposition, "reject");
	db_dmarc_reports_free(reps, n);

	/* the purge removes what is older than the limit only */
	assert_int_equal(db_dmarc_purge(f->db, DAY, &error), 1);
	assert_int_equal(db_dmarc_purge(f->db, DAY, &error), 0);
	assert_int_equal(sql_int(f->path,
	    "SELECT count(*) FROM dmarc_evaluations"), 9);
}

static void
test_migration_from_v1(void **state)
{
	struct fixture *f = *state;
	char path[600], err[512];
	struct db *db;
	sqlite3 *h;

	/* a version-1 database: what the last migration step adds removed */
	db_close(&f->db);
	snprintf_checked(path, sizeof(path), "%s/old.db", f->dir);
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TABLE domains (name TEXT "
	    "PRIMARY KEY, active INTEGER, created_at INTEGER);"
	    "INSERT INTO domains VALUES ('old.test', 1, 0);"
	    "PRAGMA user_version = 1;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(db_open(path, 0, &db, err, sizeof(err)), 0);
	assert_int_equal(db_admin_version_at_open(db), 1);
	db_close(&db);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), 2);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master "
	    "WHERE name IN ('dmarc_evaluations', 'dmarc_evaluations_time')"),
	    2);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM domains"), 1);
	/* a daemon's recorder handle writes it */
	assert_int_equal(db_dmarc_open_recorder(path, &db, err, sizeof(err)),
	    0);
	{
		struct dmarc_outcome d;

		outcome(&d, "example.org", "", DMARC_RES_PASS, "none");
		assert_int_equal(db_dmarc_record(db, "192.0.2.1", "", NULL,
		    NULL, &d, DMARC_DISP_NONE), 0);
	}
	db_close(&db);
	assert_int_equal(sql_int(path,
	    "SELECT count(*) FROM dmarc_evaluations"), 1);
	assert_int_equal(db_open(f->path, 0, &f->db, err, sizeof(err)), 0);
}

static void
test_reporting_domain(void **state)
{
	struct fixture *f = *state;
	const char *error;
	char dom[256];

	assert_int_equal(db_dmarc_reporting_domain(f->db, "mx.ours.test", dom,
	    sizeof(dom), &error), 0);
	assert_string_equal(dom, "");
	assert_int_equal(db_admin_domain_add(f->db, "aaa.test", &error), 0);
	assert_int_equal(db_admin_domain_add(f->db, "ours.test", &error), 0);
	assert_int_equal(db_dmarc_reporting_domain(f->db, "mx.ours.test", dom,
	    sizeof(dom), &error), 0);
	assert_string_equal(dom, "ours.test");		/* hostname's domain */
	assert_int_equal(db_dkim_key_add(f->db, "aaa.test", "s1",
	    "/nonexistent", &error), 0);
	assert_int_equal(db_dmarc_reporting_domain(f->db, "mx.ours.test", dom,
	    sizeof(dom), &error), 0);
	assert_string_equal(dom, "aaa.test");		/* signs its mail */
	assert_int_equal(db_dkim_key_add(f->db, "ours.test", "s1",
	    "/nonexistent", &error), 0);
	assert_int_equal(db_dmarc_reporting_domain(f->db, "mx.ours.test", dom,
	    sizeof(dom), &error), 0);
	assert_string_equal(dom, "ours.test");		/* both */
}

static void
test_day_build(void **state)
{
	struct fixture *f = *state;
	struct dmarc_outcome d;
	struct dmarc_day day;
	struct config cfg;
	struct doc *doc = malloc(sizeof(*doc));
	const char *error;

	assert_non_null(doc);
	config_defaults(&cfg);
	strlcpy_checked(cfg.hostname, "mx.ours.test", sizeof(cfg.hostname));
	assert_int_equal(db_admin_domain_add(f->db, "ours.test", &error), 0);
	/* the destination is in the policy domain: no DNS check needed */
	outcome(&d, "example.org", "mailto:dmarc@example.org!1k,"
	    "mailto:big@example.org!50m,ftp://x", DMARC_RES_PASS, "none");
	assert_int_equal(db_dmarc_record_at(f->db, DAY + 10, "192.0.2.1",
	    "example.org", NULL, NULL, &d, DMARC_DISP_NONE), 0);

	assert_int_equal(dmarc_day_build(f->db, &cfg, DAY + 500, 0, &day,
	    &error), 0);
	assert_true(day.begin == DAY && day.end == DAY + 86400);
	assert_string_equal(day.from, "postmaster@ours.test");
	assert_int_equal(day.n, 1);
	assert_int_equal(day.out[0].messages, 1);
	assert_int_equal(day.out[0].mail.len, 0);	/* not asked for */
	xml_read(buf_cstr(&day.out[0].xml), doc);
	assert_string_equal(xml_get(doc, "/feedback/report_metadata/email",
	    0), "postmaster@ours.test");
	assert_string_equal(xml_get(doc,
	    "/feedback/report_metadata/report_id", 0), day.out[0].report_id);
	dmarc_day_free(&day);

	assert_int_equal(dmarc_day_build(f->db, &cfg, DAY, DMARC_BUILD_MAIL,
	    &day, &error), 0);
	assert_int_equal(day.n, 1);
	/* the 1k destination is dropped for size, the other one kept */
	assert_int_equal(day.out[0].rua.n, 1);
	assert_string_equal(day.out[0].rua.addr[0].local, "big");
	assert_non_null(strstr(day.out[0].note, "dmarc@example.org: report "
	    "larger than its size limit"));
	assert_true(day.out[0].mail.len > 1024);
	assert_non_null(strstr(buf_cstr(&day.out[0].mail),
	    "\nTo: <big@example.org>\n"));
	dmarc_day_free(&day);

	/* another day: nothing */
	assert_int_equal(dmarc_day_build(f->db, &cfg, DAY + 86400, 0, &day,
	    &error), 0);
	assert_int_equal(day.n, 0);
	dmarc_day_free(&day);
	free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_escape),
		cmocka_unit_test(test_xml_structure),
		cmocka_unit_test(test_rua_parse),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_mail),
		cmocka_unit_test_setup_teardown(test_record_and_group, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_v1, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reporting_domain, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_day_build, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
