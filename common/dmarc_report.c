/*
 * dmarc_report.c - the pure half of RFC 7489 aggregate reports
 * (dmarc_report.h): feedback XML, rua= parsing, the report mail.
 *
 * Must never read the network or the database: dmarc_daily.c feeds it.
 * Text from the evaluations (domains, selectors, IP strings) is escaped
 * into the XML, never trusted to be valid UTF-8.
 */
#include "dmarc_report.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <zlib.h>

/* ---- XML ---- */

/* Length of the valid UTF-8 sequence at p allowed in XML 1.0, or 0. */
static size_t
utf8_char(const unsigned char *p)
{
	unsigned cp;
	size_t n, i;

	if (p[0] < 0x80)
		return p[0] >= 0x20 || p[0] == '\t' || p[0] == '\n' ||
		    p[0] == '\r' ? 1 : 0;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else
		return 0;
	for (i = 1; i < n; i++) {	/* stops at the NUL, never past it */
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff)
		return 0;
	return n;
}

int
dmarc_xml_escape(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;
	int r = 0;

	while (*p != '\0' && r == 0) {
		switch (*p) {
		case '&':
			r = buf_puts(out, "&amp;");
			break;
		case '<':
			r = buf_puts(out, "&lt;");
			break;
		case '>':
			r = buf_puts(out, "&gt;");
			break;
		case '"':
			r = buf_puts(out, "&quot;");
			break;
		case '\'':
			r = buf_puts(out, "&apos;");
			break;
		default:
			if ((n = utf8_char(p)) == 0) {
				r = buf_putc(out, '?');
				p++;
				continue;
			}
			r = buf_append(out, p, n);
			p += n;
			continue;
		}
		p++;
	}
	return r;
}

/* A writer whose first failure sticks, so building reads as a document. */
struct xw {
	struct buf *b;
	int depth;
	int err;
};

static void
xw_indent(struct xw *w)
{
	int i;

	for (i = 0; i < w->depth && !w->err; i++)
		w->err = buf_puts(w->b, "  ") < 0;
}

static void
xw_open(struct xw *w, const char *tag)
{
	xw_indent(w);
	if (!w->err)
		w->err = buf_printf(w->b, "<%s>\n", tag) < 0;
	w->depth++;
}

static void
xw_close(struct xw *w, const char *tag)
{
	w->depth--;
	xw_indent(w);
	if (!w->err)
		w->err = buf_printf(w->b, "</%s>\n", tag) < 0;
}

static void
xw_elem(struct xw *w, const char *tag, const char *text)
{
	xw_indent(w);
	if (!w->err)
		w->err = buf_printf(w->b, "<%s>", tag) < 0 ||
		    dmarc_xml_escape(w->b, text) < 0 ||
		    buf_printf(w->b, "</%s>\n", tag) < 0;
}

static void
xw_num(struct xw *w, const char *tag, long long v)
{
	char s[32];

	snprintf_checked(s, sizeof(s), "%lld", v);
	xw_elem(w, tag, s);
}

static const char *
known(const char *v, const char *const *allowed, const char *dflt)
{
	size_t i;

	for (i = 0; allowed[i] != NULL; i++)
		if (strcmp(v, allowed[i]) == 0)
			return v;
	return dflt;
}

static const char *const dispositions[] = { "none", "quarantine", "reject",
    NULL };

/* <dkim> per signature of the "DOMAIN SELECTOR RESULT;..." column. */
static void
xw_dkim(struct xw *w, const char *col)
{
	static const char *const results[] = { "none", "pass", "fail",
	    "policy", "neutral", "temperror", "permerror", NULL };
	char *sig, *p, *next, *dom, *sel, *res, *save;

	if ((sig = strdup(col)) == NULL) {
		w->err = 1;
		return;
	}
	for (p = sig; p != NULL && *p != '\0'; p = next) {
		if ((next = strchr(p, ';')) != NULL)
			*next++ = '\0';
		dom = strtok_r(p, " ", &save);
		sel = strtok_r(NULL, " ", &save);
		res = strtok_r(NULL, " ", &save);
		if (dom == NULL || sel == NULL || res == NULL)
			continue;
		xw_open(w, "dkim");
		xw_elem(w, "domain", strcmp(dom, "-") == 0 ? "" : dom);
		if (strcmp(sel, "-") != 0)
			xw_elem(w, "selector", sel);
		xw_elem(w, "result", known(res, results, "permerror"));
		xw_close(w, "dkim");
	}
	free(sig);
}

static void
xw_record(struct xw *w, const struct dmarc_agg_row *r)
{
	static const char *const spf_results[] = { "none", "neutral", "pass",
	    "fail", "softfail", "temperror", "permerror", NULL };
	static const char *const scopes[] = { "mfrom", "helo", NULL };
	static const char *const reasons[] = { "forwarded", "sampled_out",
	    "trusted_forwarder", "mailing_list", "local_policy", "other",
	    NULL };

	xw_open(w, "record");
	xw_open(w, "row");
	xw_elem(w, "source_ip", r->source_ip);
	xw_num(w, "count", (long long)r->count);
	xw_open(w, "policy_evaluated");
	xw_elem(w, "disposition", known(r->disposition, dispositions, "none"));
	xw_elem(w, "dkim", r->dkim_aligned ? "pass" : "fail");
	xw_elem(w, "spf", r->spf_aligned ? "pass" : "fail");
	if (r->reason[0] != '\0') {
		xw_open(w, "reason");
		xw_elem(w, "type", known(r->reason, reasons, "other"));
		xw_close(w, "reason");
	}
	xw_close(w, "policy_evaluated");
	xw_close(w, "row");
	xw_open(w, "identifiers");
	xw_elem(w, "envelope_from", r->envelope_from);
	xw_elem(w, "header_from", r->header_from);
	xw_close(w, "identifiers");
	xw_open(w, "auth_results");
	if (r->dkim != NULL)
		xw_dkim(w, r->dkim);
	xw_open(w, "spf");
	xw_elem(w, "domain", r->spf_domain);
	xw_elem(w, "scope", known(r->spf_scope, scopes, "mfrom"));
	xw_elem(w, "result", known(r->spf_result, spf_results, "none"));
	xw_close(w, "spf");
	xw_close(w, "auth_results");
	xw_close(w, "record");
}

int
dmarc_report_xml(const struct dmarc_report_meta *m,
    const struct dmarc_agg_report *rep, struct buf *out)
{
	struct xw w = { .b = out };
	char a[2] = { 0, 0 };
	size_t i;

	w.err = buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
	    < 0;
	xw_open(&w, "feedback");
	xw_elem(&w, "version", "1.0");
	xw_open(&w, "report_metadata");
	xw_elem(&w, "org_name", m->org_name);
	xw_elem(&w, "email", m->email);
	xw_elem(&w, "report_id", m->report_id);
	xw_open(&w, "date_range");
	xw_num(&w, "begin", (long long)m->begin);
	xw_num(&w, "end", (long long)m->end - 1);
	xw_close(&w, "date_range");
	xw_close(&w, "report_metadata");
	xw_open(&w, "policy_published");
	xw_elem(&w, "domain", rep->domain);
	a[0] = rep->adkim == 's' ? 's' : 'r';
	xw_elem(&w, "adkim", a);
	a[0] = rep->aspf == 's' ? 's' : 'r';
	xw_elem(&w, "aspf", a);
	xw_elem(&w, "p", known(rep->p, dispositions, "none"));
	xw_elem(&w, "sp", known(rep->sp[0] ? rep->sp : rep->p, dispositions,
	    "none"));
	xw_num(&w, "pct", rep->pct >= 0 && rep->pct <= 100 ? rep->pct : 100);
	xw_close(&w, "policy_published");
	for (i = 0; i < rep->nrows; i++)
		xw_record(&w, &rep->rows[i]);
	xw_close(&w, "feedback");
	return w.err ? -1 : 0;
}

/* ---- rua= ---- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "10m" -> bytes; 0 when absent or not a number (no limit then). */
static uint64_t
parse_limit(const char *p, size_t n)
{
	uint64_t v = 0, unit = 1;
	size_t i;

	if (n > 0 && strchr("kKmMgGtT", p[n - 1]) != NULL) {
		switch (tolower((unsigned char)p[n - 1])) {
		case 'k': unit = 1ULL << 10; break;
		case 'm': unit = 1ULL << 20; break;
		case 'g': unit = 1ULL << 30; break;
		default: unit = 1ULL << 40; break;
		}
		n--;
	}
	if (n == 0 || n > 12)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return 0;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return v * unit;
}

/* One URI [p, p+n) of the list. */
static void
rua_one(const char *p, size_t n, struct dmarc_rua *out)
{
	char addr[ADDR_MAX];
	const char *bang, *why;
	struct mailaddr a;
	uint64_t limit = 0;
	size_t i, len = 0;
	int hi, lo;

	if (n < 7 || strncasecmp(p, "mailto:", 7) != 0)
		goto ignore;
	p += 7;
	n -= 7;
	/* '!' is the size delimiter: one inside the URI must be %21. */
	if ((bang = memchr(p, '!', n)) != NULL) {
		limit = parse_limit(bang + 1, (size_t)(p + n - bang - 1));
		n = (size_t)(bang - p);
	}
	for (i = 0; i < n && p[i] != '?'; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 &&
		    (lo = hexval(p[i + 2])) >= 0) {
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c <= ' ' || c >= 0x7f || len + 1 >= sizeof(addr))
			goto ignore;
		addr[len++] = (char)c;
	}
	addr[len] = '\0';
	if (addr_parse_plain(addr, &a, &why) < 0)
		goto ignore;
	for (i = 0; i < out->n; i++)
		if (strcmp(out->addr[i].domain, a.domain) == 0 &&
		    strcasecmp(out->addr[i].local, a.local) == 0)
			return;		/* listed twice */
	if (out->n == DMARC_RUA_MAX)
		goto ignore;
	out->addr[out->n] = a;
	out->limit[out->n] = limit;
	out->n++;
	return;
ignore:
	out->ignored++;
}

void
dmarc_rua_parse(const char *rua, struct dmarc_rua *out)
{
	const char *p = rua, *e;
	size_t n;

	memset(out, 0, sizeof(*out));
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		e = strchr(p, ',');
		n = e != NULL ? (size_t)(e - p) : strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > 0)
			rua_one(p, n, out);
		if (e == NULL)
			break;
		p = e + 1;
	}
}

/* ---- names ---- */

static uint64_t
fnv1a(uint64_t h, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

int
dmarc_report_id(const char *hostname, const char *domain, const char *rua,
    time_t begin, char *out, size_t outsz)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	struct tm tm;

	h = fnv1a(h, domain, strlen(domain) + 1);
	h = fnv1a(h, rua, strlen(rua));
	if (gmtime_r(&begin, &tm) == NULL)
		return -1;
	return snprintf_checked(out, outsz, "%04d%02d%02d.%016llx@%s",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    (unsigned long long)h, hostname);
}

int
dmarc_report_filename(const char *submitter, const char *domain,
    time_t begin, time_t end, char *out, size_t outsz)
{
	return snprintf_checked(out, outsz, "%s!%s!%lld!%lld.xml.gz",
	    submitter, domain, (long long)begin, (long long)end - 1);
}

/* ---- the mail ---- */

int
dmarc_gzip(const void *in, size_t len, struct buf *out)
{
	z_stream z;
	size_t room;
	char *tmp;
	int rc;

	if (len > (uInt)-1)
		return -1;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip wrapper rather than zlib's */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	/* deflateBound counts the wrapper of this stream; one pass */
	room = deflateBound(&z, (uLong)len) + 32;
	if ((tmp = malloc(room)) == NULL) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)tmp;
	z.avail_out = (uInt)room;
	rc = deflate(&z, Z_FINISH);
	deflateEnd(&z);
	if (rc != Z_STREAM_END || buf_append(out, tmp, room - z.avail_out) < 0)
		rc = -1;
	else
		rc = 0;
	free(tmp);
	return rc;
}

/* base64 in lines of 76 characters (RFC 2045 6.8), LF ends. */
static int
base64_lines(const unsigned char *p, size_t n, struct buf *out)
{
	unsigned char line[80];
	size_t chunk;

	while (n > 0) {
		chunk = n < 57 ? n : 57;
		EVP_EncodeBlock(line, p, (int)chunk);
		if (buf_puts(out, (const char *)line) < 0 ||
		    buf_putc(out, '\n') < 0)
			return -1;
		p += chunk;
		n -= chunk;
	}
	return 0;
}

/* 7-bit, printable: safe to put in a header as is. */
static int
header_safe(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static void
format_date(time_t t, char *out, size_t outsz)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu",
	    "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf_checked(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday % 7], tm.tm_mday, months[tm.tm_mon % 12],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
format_day(time_t t, char *out, size_t outsz)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf_checked(out, outsz, "%04d-%02d-%02d %02d:%02d:%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
}

#define BOUNDARY "=_buzon-dmarc-report_="

int
dmarc_report_mail(const struct dmarc_mail_info *mi, const char *xml,
    size_t xmllen, struct buf *out)
{
	char addr[ADDR_MAX], fname[1024], date[64], from[32], to[32];
	struct buf gz;
	size_t i, start = out->len, subj;
	int r;

	if (mi->nto == 0 || !header_safe(mi->from) ||
	    !header_safe(mi->submitter) || !header_safe(mi->domain) ||
	    !header_safe(mi->report_id) || !header_safe(mi->msgid_left) ||
	    dmarc_report_filename(mi->submitter, mi->domain, mi->begin,
	    mi->end, fname, sizeof(fname)) < 0)
		return -1;
	format_date(mi->now, date, sizeof(date));
	r = buf_printf(out, "From: <%s>\nTo: ", mi->from);
	for (i = 0; i < mi->nto && r == 0; i++) {
		if (addr_format(&mi->to[i], addr, sizeof(addr)) < 0 ||
		    !header_safe(addr))
			r = -1;
		else
			r = buf_printf(out, "%s<%s>", i ? ",\n " : "", addr);
	}
	/* RFC 7489 7.2.1.1: the subject, folded where it would be long */
	subj = out->len;
	if (r == 0)
		r = buf_printf(out, "\nSubject: Report Domain: %s Submitter: %s "
		    "Report-ID: <%s>\n", mi->domain, mi->submitter,
		    mi->report_id);
	if (r == 0 && out->len - subj > 79) {
		out->len = subj;
		r = buf_printf(out, "\nSubject: Report Domain: %s\n Submitter: "
		    "%s\n Report-ID: <%s>\n", mi->domain, mi->submitter,
		    mi->report_id);
	}
	if (r == 0)
		r = buf_printf(out, "Date: %s\nMessage-ID: <%s@%s>\n"
		    "MIME-Version: 1.0\nContent-Type: multipart/mixed;\n"
		    " boundary=\"" BOUNDARY "\"\nAuto-Submitted: auto-generated\n"
		    "\nThis is a multi-part message in MIME format.\n\n"
		    "--" BOUNDARY "\nContent-Type: text/plain; charset=us-ascii\n"
		    "Content-Transfer-Encoding: 7bit\n\n", date, mi->msgid_left,
		    mi->submitter);
	format_day(mi->begin, from, sizeof(from));
	format_day(mi->end - 1, to, sizeof(to));
	if (r == 0)
		r = buf_printf(out, "This is an aggregate DMARC report "
		    "(RFC 7489) from %s\nfor %s, covering %s to %s UTC.\n"
		    "Report-ID: %s\n\n--" BOUNDARY "\n"
		    "Content-Type: application/gzip;\n name=\"%s\"\n"
		    "Content-Transfer-Encoding: base64\n"
		    "Content-Disposition: attachment;\n filename=\"%s\"\n\n",
		    mi->submitter, mi->domain, from, to, mi->report_id, fname,
		    fname);
	buf_init(&gz, BUF_UNLIMITED);
	if (r == 0)
		r = dmarc_gzip(xml, xmllen, &gz);
	if (r == 0)
		r = base64_lines((const unsigned char *)gz.data, gz.len, out);
	buf_free(&gz);
	if (r == 0)
		r = buf_puts(out, "--" BOUNDARY "--\n");
	if (r < 0)
		out->len = start;
	if (out->data != NULL)
		out->data[out->len] = '\0';
	return r;
}
