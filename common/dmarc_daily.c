/*
 * dmarc_daily.c - one UTC day's aggregate reports (dmarc_daily.h): the
 * rows from db_dmarc.c, the XML and mail from dmarc_report.c, and the
 * destination check of RFC 7489 7.1 in DNS.
 *
 * A rua outside the organisational domain of the policy domain is only
 * used when "<policy-domain>._report._dmarc.<rua-domain>" has a TXT
 * record starting with v=DMARC1: otherwise anyone could publish a rua
 * that makes us mail reports to a third party.  A rua= override in that
 * record is not honoured (the published address is used as is).
 */
#include "dmarc_daily.h"

#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#define TXT_ANSWER_MAX 65536

time_t
dmarc_utc_day(time_t t)
{
	return t - ((t % 86400) + 86400) % 86400;
}

int
dmarc_parse_date(const char *s, time_t *out)
{
	struct tm tm;
	const char *end;
	time_t t;
	int mday;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) != 10 || (end = strptime(s, "%Y-%m-%d", &tm)) == NULL ||
	    *end != '\0')
		return -1;
	/* strptime takes 2023-02-29; timegm would quietly make it March 1 */
	mday = tm.tm_mday;
	t = timegm(&tm);
	if (t == (time_t)-1 || tm.tm_mday != mday)
		return -1;
	*out = t;
	return 0;
}

/* "v=DMARC1" at the start of a TXT string (RFC 7489 6.4, WSP allowed). */
static int
starts_dmarc1(const char *s, size_t n)
{
	size_t i = 0;

	if (n < 1 || (s[0] != 'v' && s[0] != 'V'))
		return 0;
	for (i = 1; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	if (i >= n || s[i++] != '=')
		return 0;
	for (; i < n && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	if (n - i < 6 || memcmp(s + i, "DMARC1", 6) != 0)
		return 0;
	i += 6;
	return i == n || s[i] == ';' || s[i] == ' ' || s[i] == '\t';
}

/* 1 when a TXT record of the answer is a DMARC1 record, else 0. */
static int
answer_has_dmarc1(const unsigned char *msg, size_t len)
{
	char txt[4096];
	const unsigned char *rd, *end;
	size_t tl;
	int i, n;
	ns_msg h;
	ns_rr rr;

	if (ns_initparse(msg, (int)len, &h) < 0)
		return 0;
	n = ns_msg_count(h, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return 0;
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;
		/* the character-strings of one record, joined */
		rd = ns_rr_rdata(rr);
		end = rd + ns_rr_rdlen(rr);
		tl = 0;
		while (rd < end && rd + 1 + *rd <= end &&
		    tl + *rd < sizeof(txt)) {
			memcpy(txt + tl, rd + 1, *rd);
			tl += *rd;
			rd += 1 + *rd;
		}
		if (starts_dmarc1(txt, tl))
			return 1;
	}
	return 0;
}

/* RFC 7489 7.1: 1 the destination agreed, 0 it did not, -1 DNS trouble. */
static int
destination_agreed(const char *policy_domain, const char *rua_domain)
{
	char name[NS_MAXDNAME];
	struct __res_state rs;
	unsigned char *ans;
	int len, herr, r;

	if (snprintf_checked(name, sizeof(name), "%s._report._dmarc.%s",
	    policy_domain, rua_domain) < 0)
		return 0;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) < 0)
		return -1;
	if ((ans = malloc(TXT_ANSWER_MAX)) == NULL) {
		res_nclose(&rs);
		return -1;
	}
	len = res_nquery(&rs, name, ns_c_in, ns_t_txt, ans, TXT_ANSWER_MAX);
	herr = rs.res_h_errno;
	res_nclose(&rs);
	if (len < 0)
		r = herr == HOST_NOT_FOUND || herr == NO_DATA ? 0 : -1;
	else
		r = answer_has_dmarc1(ans, (size_t)len);
	free(ans);
	return r;
}

/* 1 when domain is org or under it. */
static int
within(const char *domain, const char *org)
{
	size_t dl = strlen(domain), ol = strlen(org);

	if (ol == 0 || dl < ol || strcasecmp(domain + dl - ol, org) != 0)
		return 0;
	return dl == ol || domain[dl - ol - 1] == '.';
}

/*
 * 1 when the destination domain belongs to the organisation of the
 * policy domain (public suffix list); without the list, when it is the
 * recorded organisational domain or under it.
 */
static int
same_org(const struct dmarc_agg_report *rep, const char *rua_domain)
{
	char a[ADDR_DOMAIN_MAX + 1], b[ADDR_DOMAIN_MAX + 1];

	if (policy_org_domain(rua_domain, a, sizeof(a)) == 0 &&
	    policy_org_domain(rep->domain, b, sizeof(b)) == 0)
		return strcmp(a, b) == 0;
	return within(rua_domain, rep->org_domain[0] ? rep->org_domain :
	    rep->domain);
}

static void
note_add(struct dmarc_out *o, const struct mailaddr *a, const char *why)
{
	size_t n = strlen(o->note);

	/* a note cut short is still a note */
	(void)snprintf_checked(o->note + n, sizeof(o->note) - n,
	    "%s%s@%s: %s", n ? "; " : "", a->local, a->domain, why);
}

/* Keep the destinations that may receive this report (RFC 7489 7.1). */
static void
check_destinations(struct dmarc_out *o)
{
	const struct dmarc_agg_report *rep = o->rep;
	struct dmarc_rua kept;
	size_t i;
	int r;

	memset(&kept, 0, sizeof(kept));
	for (i = 0; i < o->rua.n; i++) {
		const struct mailaddr *a = &o->rua.addr[i];

		if (!same_org(rep, a->domain)) {
			r = destination_agreed(rep->domain, a->domain);
			if (r == 0) {
				note_add(o, a, "no v=DMARC1 record at "
				    "_report._dmarc (RFC 7489 7.1)");
				continue;
			}
			if (r < 0) {
				note_add(o, a, "DNS lookup of its _report._dmarc"
				    " record failed");
				continue;
			}
		}
		kept.addr[kept.n] = *a;
		kept.limit[kept.n] = o->rua.limit[i];
		kept.n++;
	}
	kept.ignored = o->rua.ignored;
	o->rua = kept;
}

static int
build_mail(const struct dmarc_day *day, const struct config *cfg,
    struct dmarc_out *o, time_t now)
{
	struct dmarc_mail_info mi;
	unsigned char rnd[8];
	char left[64];
	size_t i, k;
	int again;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	snprintf_checked(left, sizeof(left), "dmarc.%lld.%02x%02x%02x%02x"
	    "%02x%02x%02x%02x", (long long)day->begin, rnd[0], rnd[1], rnd[2],
	    rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	memset(&mi, 0, sizeof(mi));
	mi.from = day->from;
	mi.submitter = cfg->hostname;
	mi.domain = o->rep->domain;
	mi.report_id = o->report_id;
	mi.begin = day->begin;
	mi.end = day->end;
	mi.now = now;
	mi.msgid_left = left;
	/* A destination's size limit (!10m) drops it, then build again. */
	do {
		buf_reset(&o->mail);
		if (o->rua.n == 0)
			return 0;
		mi.to = o->rua.addr;
		mi.nto = o->rua.n;
		if (dmarc_report_mail(&mi, o->xml.data, o->xml.len,
		    &o->mail) < 0)
			return -1;
		again = 0;
		for (i = k = 0; i < o->rua.n; i++) {
			if (o->rua.limit[i] != 0 &&
			    o->rua.limit[i] < o->mail.len) {
				note_add(o, &o->rua.addr[i], "report larger "
				    "than its size limit");
				again = 1;
				continue;
			}
			o->rua.addr[k] = o->rua.addr[i];
			o->rua.limit[k] = o->rua.limit[i];
			k++;
		}
		o->rua.n = k;
	} while (again);
	return 0;
}

int
dmarc_day_build(struct db *db, const struct config *cfg, time_t begin,
    int flags, struct dmarc_day *day, const char **error_r)
{
	struct dmarc_report_meta meta;
	char dom[ADDR_DOMAIN_MAX + 1];
	time_t now = time(NULL);
	size_t i, k;

	memset(day, 0, sizeof(*day));
	day->begin = dmarc_utc_day(begin);
	day->end = day->begin + 86400;
	if (db_dmarc_reporting_domain(db, cfg->hostname, dom, sizeof(dom),
	    error_r) < 0)
		return -1;
	if (snprintf_checked(day->from, sizeof(day->from), "postmaster@%s",
	    dom[0] ? dom : cfg->hostname) < 0) {
		*error_r = "the reporting address is too long";
		return -1;
	}
	if (db_dmarc_reports(db, day->begin, day->end, &day->reps, &day->n,
	    error_r) < 0)
		return -1;
	if (day->n > 0 && (day->out = calloc(day->n, sizeof(*day->out))) ==
	    NULL) {
		*error_r = "out of memory";
		return -1;
	}
	for (i = 0; i < day->n; i++) {
		struct dmarc_out *o = &day->out[i];
		const struct dmarc_agg_report *rep = &day->reps[i];

		o->rep = rep;
		buf_init(&o->xml, BUF_UNLIMITED);
		buf_init(&o->mail, BUF_UNLIMITED);
		for (k = 0; k < rep->nrows; k++)
			o->messages += rep->rows[k].count;
		if (dmarc_report_id(cfg->hostname, rep->domain, rep->rua,
		    day->begin, o->report_id, sizeof(o->report_id)) < 0 ||
		    dmarc_report_filename(cfg->hostname, rep->domain,
		    day->begin, day->end, o->filename,
		    sizeof(o->filename)) < 0) {
			*error_r = "the report name is too long";
			return -1;
		}
		meta.org_name = cfg->hostname;
		meta.email = day->from;
		meta.report_id = o->report_id;
		meta.begin = day->begin;
		meta.end = day->end;
		if (dmarc_report_xml(&meta, rep, &o->xml) < 0) {
			*error_r = "out of memory building a report";
			return -1;
		}
		dmarc_rua_parse(rep->rua, &o->rua);
		if (!(flags & DMARC_BUILD_MAIL))
			continue;
		/* it goes into the Subject and the file name */
		if (!addr_domain_valid(rep->domain, strlen(rep->domain), 0)) {
			snprintf_checked(o->note, sizeof(o->note), "the policy "
			    "domain is not a valid domain name");
			o->rua.n = 0;
			continue;
		}
		check_destinations(o);
		if (o->rua.n == 0 && o->note[0] == '\0')
			snprintf_checked(o->note, sizeof(o->note), "no usable "
			    "mailto: address in rua=%s", rep->rua);
		if (build_mail(day, cfg, o, now) < 0) {
			*error_r = "out of memory building a report mail";
			return -1;
		}
	}
	return 0;
}

void
dmarc_day_free(struct dmarc_day *day)
{
	size_t i;

	if (day->out != NULL)
		for (i = 0; i < day->n; i++) {
			buf_free(&day->out[i].xml);
			buf_free(&day->out[i].mail);
		}
	free(day->out);
	db_dmarc_reports_free(day->reps, day->n);
	memset(day, 0, sizeof(*day));
}
