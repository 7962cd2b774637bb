/*
 * adm_check.c - mailadm check DOMAIN: ask live DNS, through the system
 * resolver, whether what a hosted domain publishes is what this server
 * needs, and say for each item ok, warn or fail, with the fix for every
 * warn and fail.  --json: an array of {"check","status","detail","fix"}.
 * Exit 0 when nothing fails, 1 otherwise.
 *
 * Items: the MX points to `hostname`; `hostname` resolves to public_ip
 * (public_ip6); their PTR is `hostname` and resolves back (FCrDNS);
 * exactly one SPF record, which libspf2 evaluates to pass for public_ip
 * (it is evaluated, not grepped), ends in -all or ~all and stays within
 * 10 DNS lookups; each active DKIM key is published with our public key;
 * a DMARC record that parses, and its policy; public_ip on no [policy]
 * dnsbl zone.
 *
 * It only reads: DNS, the config, the DKIM rows and key files.  Nothing
 * here may change a record or the database.
 */
#include "adm.h"
#include "../common/db_admin.h"
#include "../common/db_dkim.h"
#include "../common/dkim_sign.h"
#include "../common/policy.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHK_MAX 64			/* items of one run */
#define CHK_NAME_MAX 253
#define DQ_MAX_RR 32			/* records read per answer */
#define DQ_ANSWER_MAX 65536
#define SPF_LIMIT 10			/* RFC 7208 4.6.4 */
#define FIX_PUBLIC_IP "set public_ip in buzon.conf (this server's public " \
	"IPv4 address)"

enum chk_status { CHK_OK, CHK_WARN, CHK_FAIL };
static const char *const status_names[] = { "ok", "warn", "fail" };

struct chk_item {
	char check[32];
	enum chk_status status;
	struct buf detail, fix;
};

/* One DNS answer: the records of the asked type as text. */
enum dq_status { DQ_OK, DQ_NXDOMAIN, DQ_NODATA, DQ_FAIL };
struct dq {
	enum dq_status status;
	size_t n;
	char *rr[DQ_MAX_RR];
	unsigned pref[DQ_MAX_RR];	/* MX */
};

/* An address of ours from the config. */
struct pubip {
	const char *text;		/* as configured, "" unset */
	int family;
	struct sockaddr_storage sa;
	int valid;
};

struct chk {
	struct adm_ctx *ctx;
	const char *domain;
	const char *host;		/* config hostname */
	struct __res_state rs;
	int rs_ok;
	struct pubip ip4, ip6;
	struct chk_item item[CHK_MAX];
	size_t n;
	int err;			/* out of memory, too many items */
	unsigned char *ans;
};

/* ---- items ---- */

static struct chk_item * __attribute__((format(printf, 4, 5)))
item(struct chk *c, const char *check, enum chk_status st,
    const char *fmt, ...)
{
	struct chk_item *it;
	va_list ap;

	if (c->n >= CHK_MAX) {
		c->err = 1;
		return NULL;
	}
	it = &c->item[c->n++];
	memset(it, 0, sizeof(*it));
	buf_init(&it->detail, 16384);
	buf_init(&it->fix, 16384);
	strlcpy_checked(it->check, check, sizeof(it->check));
	it->status = st;
	va_start(ap, fmt);
	c->err |= buf_vprintf(&it->detail, fmt, ap) < 0;
	va_end(ap);
	return it;
}

static void __attribute__((format(printf, 3, 4)))
fix(struct chk *c, struct chk_item *it, const char *fmt, ...)
{
	va_list ap;

	if (it == NULL)
		return;
	va_start(ap, fmt);
	c->err |= buf_vprintf(&it->fix, fmt, ap) < 0;
	va_end(ap);
}

/* ---- DNS through the system resolver ---- */

static void
dq_free(struct dq *q)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		free(q->rr[i]);
	memset(q, 0, sizeof(*q));
}

/* The text of one record of the asked type, malloc'ed, or NULL. */
static char *
rr_text(ns_msg *h, ns_rr *rr, unsigned *pref)
{
	char t[NS_MAXDNAME];
	const unsigned char *p = ns_rr_rdata(*rr), *end = p + ns_rr_rdlen(*rr);
	struct buf b;
	char *s;

	switch (ns_rr_type(*rr)) {
	case ns_t_a:
		if (end - p != 4 || inet_ntop(AF_INET, p, t, sizeof(t)) == NULL)
			return NULL;
		return strdup(t);
	case ns_t_aaaa:
		if (end - p != 16 ||
		    inet_ntop(AF_INET6, p, t, sizeof(t)) == NULL)
			return NULL;
		return strdup(t);
	case ns_t_mx:
		if (end - p < 3)
			return NULL;
		*pref = ns_get16(p);
		p += 2;
		/* FALLTHROUGH */
	case ns_t_ptr:
		if (ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), p, t,
		    sizeof(t)) < 0)
			return NULL;
		addr_lower(t);
		return strdup(t);
	case ns_t_txt:
		/* RFC 7208 3.3: the strings are joined without spaces */
		buf_init(&b, 65536);
		while (p < end) {
			size_t l = *p++;

			if (l > (size_t)(end - p)) {
				buf_free(&b);
				return NULL;
			}
			for (; l > 0; l--, p++)
				if (buf_putc(&b, *p >= 0x20 && *p < 0x7f ?
				    (char)*p : '?') < 0) {
					buf_free(&b);
					return NULL;
				}
		}
		s = strdup(buf_cstr(&b));
		buf_free(&b);
		return s;
	default:
		return NULL;
	}
}

static enum dq_status
dq_query(struct chk *c, const char *name, ns_type type, struct dq *q)
{
	int i, n, len;
	ns_msg h;
	ns_rr rr;

	memset(q, 0, sizeof(*q));
	q->status = DQ_FAIL;
	if (!c->rs_ok)
		return q->status;
	len = res_nquery(&c->rs, name, ns_c_in, type, c->ans, DQ_ANSWER_MAX);
	if (len < 0) {
		if (c->rs.res_h_errno == HOST_NOT_FOUND)
			q->status = DQ_NXDOMAIN;
		else if (c->rs.res_h_errno == NO_DATA)
			q->status = DQ_NODATA;
		return q->status;
	}
	if (len > DQ_ANSWER_MAX || ns_initparse(c->ans, len, &h) < 0)
		return q->status;
	n = ns_msg_count(h, ns_s_an);
	for (i = 0; i < n && q->n < DQ_MAX_RR; i++) {
		char *s;

		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) != type)
			continue;	/* CNAMEs on the way */
		if ((s = rr_text(&h, &rr, &q->pref[q->n])) == NULL)
			continue;
		q->rr[q->n++] = s;
	}
	q->status = q->n > 0 ? DQ_OK : DQ_NODATA;
	return q->status;
}

/* "a, b, c" of an answer (for details). */
static const char *
dq_list(const struct dq *q, struct buf *b)
{
	size_t i;

	buf_reset(b);
	for (i = 0; i < q->n; i++)
		if (buf_printf(b, "%s%s", i > 0 ? ", " : "", q->rr[i]) < 0)
			break;
	return buf_cstr(b);
}

static const char *
dq_why(const struct dq *q)
{
	switch (q->status) {
	case DQ_NXDOMAIN:
		return "the name does not exist (NXDOMAIN)";
	case DQ_NODATA:
		return "no such record";
	case DQ_FAIL:
		return "the DNS lookup failed (timeout or server failure)";
	case DQ_OK:
		break;
	}
	return "";
}

/* Host names compare without the final dot and case. */
static int
same_host(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	while (la > 0 && a[la - 1] == '.')
		la--;
	while (lb > 0 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

static int
dq_has(const struct dq *q, const char *s)
{
	size_t i;

	for (i = 0; i < q->n; i++)
		if (same_host(q->rr[i], s))
			return 1;
	return 0;
}

/* ---- MX, addresses, reverse DNS ---- */

static void
check_mx(struct chk *c)
{
	struct chk_item *it;
	struct dq q;
	struct buf b;
	size_t i;

	buf_init(&b, 8192);
	dq_query(c, c->domain, ns_t_mx, &q);
	for (i = 0; i < q.n; i++)
		if (strcmp(q.rr[i], "") == 0 || strcmp(q.rr[i], ".") == 0)
			break;
	if (q.status != DQ_OK) {
		it = item(c, "mx", CHK_FAIL, "%s has no MX record: %s",
		    c->domain, dq_why(&q));
		fix(c, it, "publish: %s. IN MX 10 %s.", c->domain, c->host);
	} else if (i < q.n) {
		it = item(c, "mx", CHK_FAIL, "%s has a null MX (RFC 7505): "
		    "it says the domain receives no mail", c->domain);
		fix(c, it, "replace it with: %s. IN MX 10 %s.", c->domain,
		    c->host);
	} else if (!dq_has(&q, c->host)) {
		it = item(c, "mx", CHK_FAIL, "the MX of %s is %s, not %s "
		    "(config hostname)", c->domain, dq_list(&q, &b), c->host);
		fix(c, it, "change the MX to: %s. IN MX 10 %s.", c->domain,
		    c->host);
	} else {
		item(c, "mx", CHK_OK, "mail for %s goes to %s", c->domain,
		    dq_list(&q, &b));
	}
	dq_free(&q);
	buf_free(&b);
}

static int
pubip_parse(const char *text, int family, struct pubip *p)
{
	memset(p, 0, sizeof(*p));
	p->text = text;
	p->family = family;
	if (text[0] == '\0')
		return 0;
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)&p->sa;

		s->sin_family = AF_INET;
		p->valid = inet_pton(AF_INET, text, &s->sin_addr) == 1;
	} else {
		struct sockaddr_in6 *s = (struct sockaddr_in6 *)&p->sa;

		s->sin6_family = AF_INET6;
		p->valid = inet_pton(AF_INET6, text, &s->sin6_addr) == 1;
	}
	return 0;
}

/* Item for an unset or unusable public_ip(6); 1 if one was added. */
static int
pubip_missing(struct chk *c, const struct pubip *p, const char *check,
    enum chk_status st)
{
	const char *key = p->family == AF_INET ? "public_ip" : "public_ip6";
	struct chk_item *it;

	if (p->valid)
		return 0;
	if (p->text[0] == '\0') {
		it = item(c, check, st, "%s is not set in %s: nothing to "
		    "check against", key, c->ctx->cfg.path);
		fix(c, it, p->family == AF_INET ? FIX_PUBLIC_IP :
		    "set public_ip6 in buzon.conf (this server's public IPv6 "
		    "address)");
	} else {
		it = item(c, check, CHK_FAIL, "%s = %s is not an %s address",
		    key, p->text, p->family == AF_INET ? "IPv4" : "IPv6");
		fix(c, it, "correct %s in %s", key, c->ctx->cfg.path);
	}
	return 1;
}

/* hostname's A (AAAA) records contain public_ip (public_ip6). */
static void
check_addr(struct chk *c, const struct pubip *p, struct dq *fwd)
{
	const char *check = p->family == AF_INET ? "a" : "aaaa";
	const char *type = p->family == AF_INET ? "A" : "AAAA";
	struct chk_item *it;
	struct buf b;

	memset(fwd, 0, sizeof(*fwd));
	if (pubip_missing(c, p, check, CHK_FAIL))
		return;
	buf_init(&b, 8192);
	dq_query(c, c->host, p->family == AF_INET ? ns_t_a : ns_t_aaaa, fwd);
	if (fwd->status != DQ_OK) {
		it = item(c, check, CHK_FAIL, "%s has no %s record: %s",
		    c->host, type, dq_why(fwd));
		fix(c, it, "publish: %s. IN %s %s", c->host, type, p->text);
	} else if (!dq_has(fwd, p->text)) {
		it = item(c, check, CHK_FAIL, "%s resolves to %s, not to "
		    "%s = %s", c->host, dq_list(fwd, &b), p->family ==
		    AF_INET ? "public_ip" : "public_ip6", p->text);
		fix(c, it, "change the %s record to: %s. IN %s %s (or "
		    "correct %s in buzon.conf)", type, c->host, type, p->text,
		    p->family == AF_INET ? "public_ip" : "public_ip6");
	} else {
		item(c, check, CHK_OK, "%s resolves to %s", c->host,
		    dq_list(fwd, &b));
	}
	buf_free(&b);
}

/* Forward-confirmed reverse DNS: PTR(ip) = hostname, hostname -> ip. */
static void
check_ptr(struct chk *c, const struct pubip *p, const struct dq *fwd)
{
	const char *check = p->family == AF_INET ? "ptr" : "ptr6";
	char name[CHK_NAME_MAX + 1];
	struct chk_item *it;
	struct dq q;
	struct buf b;

	if (pubip_missing(c, p, check, CHK_FAIL))
		return;
	if (policy_dnsbl_qname((const struct sockaddr *)&p->sa,
	    p->family == AF_INET ? "in-addr.arpa" : "ip6.arpa", name,
	    sizeof(name)) < 0) {
		c->err = 1;
		return;
	}
	buf_init(&b, 8192);
	dq_query(c, name, ns_t_ptr, &q);
	if (q.status != DQ_OK) {
		it = item(c, check, CHK_FAIL, "%s has no PTR record (%s): "
		    "many receivers refuse mail from an address without "
		    "reverse DNS", p->text, dq_why(&q));
		fix(c, it, "ask your hosting provider to set the reverse DNS "
		    "(PTR) of %s to %s", p->text, c->host);
	} else if (!dq_has(&q, c->host)) {
		it = item(c, check, CHK_FAIL, "the PTR of %s is %s, not %s",
		    p->text, dq_list(&q, &b), c->host);
		fix(c, it, "ask your hosting provider to set the reverse DNS "
		    "(PTR) of %s to %s", p->text, c->host);
	} else if (!dq_has(fwd, p->text)) {
		it = item(c, check, CHK_FAIL, "the PTR of %s is %s, but %s "
		    "does not resolve back to %s", p->text, c->host, c->host,
		    p->text);
		fix(c, it, "publish: %s. IN %s %s", c->host,
		    p->family == AF_INET ? "A" : "AAAA", p->text);
	} else {
		item(c, check, CHK_OK, "%s -> %s -> %s (forward-confirmed "
		    "reverse DNS)", p->text, c->host, p->text);
	}
	dq_free(&q);
	buf_free(&b);
}

/* ---- SPF ---- */

static int
is_spf(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (txt[6] == '\0' || txt[6] == ' ');
}

/* The one SPF record of name into *rec (malloc'ed): its count, or -1. */
static int
spf_fetch(struct chk *c, const char *name, char **rec, struct dq *q)
{
	size_t i;
	int n = 0;

	*rec = NULL;
	if (dq_query(c, name, ns_t_txt, q) == DQ_FAIL)
		return -1;
	for (i = 0; i < q->n; i++)
		if (is_spf(q->rr[i])) {
			if (n++ == 0)
				*rec = q->rr[i];
		}
	return n;
}

/*
 * The terms of an SPF record, one at a time: *qual the qualifier ('+'
 * if none), name lower-cased into nm, the value after ':' or '=' (or
 * "") into val; *modifier for name=value.  0, or -1 at the end.
 */
static int
spf_term(const char **pp, char *qual, char *nm, size_t nmsz, char *val,
    size_t valsz, int *modifier)
{
	const char *p = *pp, *t;
	size_t l, k;

	p += strspn(p, " ");
	if (*p == '\0')
		return -1;
	t = p;
	l = strcspn(p, " ");
	*pp = p + l;
	*qual = '+';
	if (strchr("+-~?", *t) != NULL) {
		*qual = *t++;
		l--;
	}
	k = strcspn(t, ":=/ ");
	if (k > l)
		k = l;
	snprintf_checked(nm, nmsz, "%.*s", (int)k, t);
	addr_lower(nm);
	*modifier = k < l && t[k] == '=';
	if (k < l && (t[k] == ':' || t[k] == '='))
		snprintf_checked(val, valsz, "%.*s", (int)(l - k - 1), t + k + 1);
	else
		val[0] = '\0';
	return 0;
}

/*
 * Count the DNS-querying terms of rec and of what its include: and
 * redirect= bring in (RFC 7208 4.6.4), stopping once over the limit.
 * *unknown is set for a target that cannot be followed (macros, no
 * record).
 */
static void
spf_count(struct chk *c, const char *rec, int depth, int *count,
    int *unknown)
{
	char nm[32], val[512], redirect[512] = "";
	const char *p = rec + 6;
	int modifier, has_all = 0;
	char qual;

	while (*count <= SPF_LIMIT && spf_term(&p, &qual, nm, sizeof(nm), val,
	    sizeof(val), &modifier) == 0) {
		int follow = 0;

		if (modifier) {
			if (strcmp(nm, "redirect") == 0)
				strlcpy_checked(redirect, val, sizeof(redirect));
			continue;
		}
		if (strcmp(nm, "all") == 0)
			has_all = 1;
		else if (strcmp(nm, "a") == 0 || strcmp(nm, "mx") == 0 ||
		    strcmp(nm, "ptr") == 0 || strcmp(nm, "exists") == 0)
			(*count)++;
		else if (strcmp(nm, "include") == 0) {
			(*count)++;
			follow = 1;
		}
		if (follow) {
			struct dq q;
			char *sub;

			if (depth >= SPF_LIMIT || strchr(val, '%') != NULL ||
			    spf_fetch(c, val, &sub, &q) != 1)
				*unknown = 1;
			else
				spf_count(c, sub, depth + 1, count, unknown);
			dq_free(&q);
		}
	}
	/* RFC 7208 6.1: redirect= is ignored when the record has all */
	if (redirect[0] != '\0' && !has_all && *count <= SPF_LIMIT) {
		struct dq q;
		char *sub;

		(*count)++;
		if (depth >= SPF_LIMIT || strchr(redirect, '%') != NULL ||
		    spf_fetch(c, redirect, &sub, &q) != 1)
			*unknown = 1;
		else
			spf_count(c, sub, depth + 1, count, unknown);
		dq_free(&q);
	}
}

/* How the record ends: its all term, or redirect=. */
static void
check_spf_all(struct chk *c, const char *rec)
{
	char nm[32], val[512], qual, all = 0, redirect[512] = "";
	const char *p = rec + 6;
	struct chk_item *it;
	int modifier;

	while (spf_term(&p, &qual, nm, sizeof(nm), val, sizeof(val),
	    &modifier) == 0) {
		if (!modifier && strcmp(nm, "all") == 0 && all == 0)
			all = qual;
		if (modifier && strcmp(nm, "redirect") == 0)
			strlcpy_checked(redirect, val, sizeof(redirect));
	}
	switch (all) {
	case '-':
	case '~':
		item(c, "spf-all", CHK_OK, "the SPF record ends in %call: "
		    "other senders %s", all, all == '-' ? "fail" :
		    "softfail");
		return;
	case '+':
		it = item(c, "spf-all", CHK_FAIL, "the SPF record ends in "
		    "+all: it authorizes every address on the Internet to "
		    "send as %s", c->domain);
		break;
	case '?':
		it = item(c, "spf-all", CHK_WARN, "the SPF record ends in "
		    "?all: other senders are neutral, as if there were no SPF");
		break;
	default:
		if (redirect[0] != '\0') {
			item(c, "spf-all", CHK_OK, "the SPF record ends in "
			    "redirect=%s, whose record decides", redirect);
			return;
		}
		it = item(c, "spf-all", CHK_WARN, "the SPF record has no all: "
		    "other senders are neutral, as if there were no SPF");
		break;
	}
	fix(c, it, "end the SPF record with -all (or ~all while you test)");
}

static void
check_spf_ip(struct chk *c, const struct pubip *p)
{
	const char *check = p->family == AF_INET ? "spf-ip" : "spf-ip6";
	char sender[ADDR_MAX + 16];
	struct spf_outcome o;
	struct chk_item *it;

	if (pubip_missing(c, p, check, CHK_FAIL))
		return;
	snprintf_checked(sender, sizeof(sender), "postmaster@%s", c->domain);
	policy_spf_check((const struct sockaddr *)&p->sa, c->host, sender, &o);
	if (o.result == SPF_RES_PASS) {
		item(c, check, CHK_OK, "SPF of %s for %s: pass", c->domain,
		    p->text);
		return;
	}
	it = item(c, check, CHK_FAIL, "SPF of %s for %s: %s (%s)", c->domain,
	    p->text, spf_result_name(o.result), o.explanation);
	switch (o.result) {
	case SPF_RES_PERMERROR:
		fix(c, it, "correct the SPF record of %s: receivers treat a "
		    "record they cannot evaluate as no SPF, or reject", c->domain);
		break;
	case SPF_RES_TEMPERROR:
		fix(c, it, "make the name servers of %s (and of the domains "
		    "its SPF record names) answer", c->domain);
		break;
	case SPF_RES_NONE:
		fix(c, it, "publish: %s. IN TXT \"v=spf1 mx -all\"", c->domain);
		break;
	default:
		fix(c, it, "add %s:%s (or mx, if %s is the MX) to the SPF "
		    "record of %s, before its all", p->family == AF_INET ?
		    "ip4" : "ip6", p->text, c->host, c->domain);
		break;
	}
}

static void
check_spf(struct chk *c)
{
	struct chk_item *it;
	struct dq q;
	char *rec;
	int n, count = 0, unknown = 0;

	n = spf_fetch(c, c->domain, &rec, &q);
	if (n < 0) {
		it = item(c, "spf", CHK_FAIL, "the TXT records of %s cannot "
		    "be read: %s", c->domain, dq_why(&q));
		fix(c, it, "make the name servers of %s answer", c->domain);
	} else if (n == 0) {
		it = item(c, "spf", CHK_FAIL, "%s has no SPF record: receivers "
		    "cannot tell its mail from forgeries", c->domain);
		fix(c, it, "publish one TXT record: %s. IN TXT "
		    "\"v=spf1 mx -all\" (see mailadm dns %s)", c->domain,
		    c->domain);
	} else if (n > 1) {
		it = item(c, "spf", CHK_FAIL, "%s has %d SPF records: receivers "
		    "answer permerror (RFC 7208 4.5)", c->domain, n);
		fix(c, it, "merge them into one TXT record starting with "
		    "v=spf1 and delete the others");
	} else {
		item(c, "spf", CHK_OK, "one SPF record: %s", rec);
	}
	/* what receivers will conclude, whatever the count said */
	check_spf_ip(c, &c->ip4);
	if (c->ip6.text[0] != '\0')
		check_spf_ip(c, &c->ip6);
	if (n != 1)
		goto done;
	check_spf_all(c, rec);
	spf_count(c, rec, 0, &count, &unknown);
	if (count > SPF_LIMIT) {
		it = item(c, "spf-lookups", CHK_FAIL, "the SPF record needs "
		    "more than %d DNS lookups (include, a, mx, ptr, exists, "
		    "redirect): receivers answer permerror", SPF_LIMIT);
		fix(c, it, "replace a, mx and include terms by ip4:/ip6: "
		    "networks until at most %d lookups remain", SPF_LIMIT);
	} else if (unknown) {
		it = item(c, "spf-lookups", CHK_WARN, "the SPF record needs %d "
		    "DNS lookups or more: a target uses macros or has no "
		    "single SPF record", count);
		fix(c, it, "make every include: and redirect= of the SPF "
		    "record name a domain with exactly one SPF record");
	} else {
		item(c, "spf-lookups", CHK_OK, "the SPF record needs %d DNS "
		    "lookup%s (limit %d)", count, count == 1 ? "" : "s",
		    SPF_LIMIT);
	}
done:
	dq_free(&q);
}

/* ---- DKIM ---- */

/* The p= tag of a DKIM key record, whitespace removed, into out. */
static int
dkim_p(const char *rec, struct buf *out)
{
	const char *p = rec;

	buf_reset(out);
	while (*p != '\0') {
		const char *end = p + strcspn(p, ";");

		p += strspn(p, " \t");
		if (end - p >= 1 && p[0] == 'p') {
			const char *q = p + 1;

			q += strspn(q, " \t");
			if (*q == '=') {
				for (q++; q < end; q++)
					if (!isspace((unsigned char)*q) &&
					    buf_putc(out, *q) < 0)
						return -1;
				return 1;
			}
		}
		p = *end == ';' ? end + 1 : end;
	}
	return 0;
}

static void
check_dkim_key(struct chk *c, const struct db_dkim_key *k)
{
	char err[DKIM_PATH_MAX + 256] = "", name[CHK_NAME_MAX + 1];
	struct buf pem, ours, line, theirs;
	struct chk_item *it;
	struct dq q;
	size_t i, nmatch = 0, nkeys = 0;

	buf_init(&pem, DKIM_KEY_FILE_MAX);
	buf_init(&ours, 8192);
	buf_init(&line, 16384);
	buf_init(&theirs, 16384);
	memset(&q, 0, sizeof(q));
	if (dkim_key_read(k->key_path, &pem, err, sizeof(err)) < 0 ||
	    dkim_txt_record(pem.data, pem.len, &ours) < 0 ||
	    dkim_zone_line(k->selector, k->domain, buf_cstr(&ours), &line) < 0) {
		it = item(c, "dkim", CHK_FAIL, "key %s of %s cannot be read: "
		    "%s", k->selector, k->domain, err[0] != '\0' ? err :
		    k->key_path);
		fix(c, it, "retire it (mailadm dkim retire %s %s) and make a "
		    "new one (mailadm dkim keygen %s)", k->domain, k->selector,
		    k->domain);
		goto done;
	}
	if (snprintf_checked(name, sizeof(name), "%s._domainkey.%s",
	    k->selector, k->domain) < 0) {
		c->err = 1;
		goto done;
	}
	dq_query(c, name, ns_t_txt, &q);
	for (i = 0; i < q.n; i++) {
		int r = dkim_p(q.rr[i], &theirs);

		if (r < 0) {
			c->err = 1;
			goto done;
		}
		if (r == 0)
			continue;
		nkeys++;
		if (strcmp(buf_cstr(&theirs), buf_cstr(&ours)) == 0)
			nmatch++;
	}
	if (q.status == DQ_FAIL) {
		it = item(c, "dkim", CHK_FAIL, "%s cannot be read: %s", name,
		    dq_why(&q));
		fix(c, it, "make the name servers of %s answer", c->domain);
	} else if (nkeys == 0) {
		it = item(c, "dkim", CHK_FAIL, "no DKIM key is published at "
		    "%s: receivers cannot verify the signatures of key %s",
		    name, k->selector);
		fix(c, it, "publish: %s", buf_cstr(&line));
	} else if (nmatch == 0) {
		it = item(c, "dkim", CHK_FAIL, "the key published at %s is "
		    "not the key %s signs with: signatures will fail", name,
		    k->selector);
		fix(c, it, "replace it with: %s", buf_cstr(&line));
	} else if (nkeys > 1) {
		it = item(c, "dkim", CHK_FAIL, "%s has %zu key records: "
		    "verifiers may take the wrong one", name, nkeys);
		fix(c, it, "keep only: %s", buf_cstr(&line));
	} else {
		item(c, "dkim", CHK_OK, "key %s is published at %s",
		    k->selector, name);
	}
done:
	dq_free(&q);
	dkim_buf_wipe(&pem);
	buf_free(&ours);
	buf_free(&line);
	buf_free(&theirs);
}

static void
check_dkim(struct chk *c)
{
	struct db_dkim_key *l;
	struct chk_item *it;
	const char *error;
	size_t i, n, nactive = 0;

	if (db_dkim_key_list(c->ctx->db, c->domain, &l, &n, &error) < 0) {
		it = item(c, "dkim", CHK_FAIL, "the DKIM keys cannot be read: "
		    "%s", error);
		fix(c, it, "check the database (mailadm dkim list %s)",
		    c->domain);
		return;
	}
	for (i = 0; i < n; i++)
		if (l[i].active) {
			nactive++;
			check_dkim_key(c, &l[i]);
		}
	if (nactive == 0) {
		it = item(c, "dkim", CHK_WARN, "%s has no DKIM key: its mail "
		    "goes out unsigned and fails DMARC where SPF does not "
		    "align", c->domain);
		fix(c, it, "mailadm dkim keygen %s, then publish the record "
		    "mailadm dns %s prints", c->domain, c->domain);
	}
	free(l);
}

/* ---- DMARC ---- */

struct dmarc_rec {
	char p[16], sp[16];
	int pct;
};

static int
dmarc_policy_ok(const char *v)
{
	return strcmp(v, "none") == 0 || strcmp(v, "quarantine") == 0 ||
	    strcmp(v, "reject") == 0;
}

/* Tag names and the values of p, sp, adkim, aspf compare in lower case. */
static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

/* RFC 7489 6.3/6.4 tags.  0, or -1 with *why. */
static int
dmarc_parse(const char *rec, struct dmarc_rec *d, char *why, size_t whysz)
{
	const char *p = rec;
	int first = 1;

	memset(d, 0, sizeof(*d));
	d->pct = 100;
	while (*p != '\0') {
		char tag[32], val[512];
		size_t l = strcspn(p, ";"), k, vs, ve;

		k = strspn(p, " \t");
		if (k == l) {		/* empty, e.g. after the last ';' */
			p += l + (p[l] == ';');
			continue;
		}
		vs = k + strcspn(p + k, "=");
		if (vs >= l) {
			snprintf_checked(why, whysz, "\"%.*s\" is not tag=value",
			    (int)(l - k), p + k);
			return -1;
		}
		ve = vs;
		while (ve > k && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
			ve--;
		snprintf_checked(tag, sizeof(tag), "%.*s", (int)(ve - k), p + k);
		vs++;
		vs += strspn(p + vs, " \t");
		ve = l;
		while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
			ve--;
		snprintf_checked(val, sizeof(val), "%.*s", (int)(ve - vs),
		    p + vs);
		lower(tag);
		if (!first && strcmp(tag, "rua") != 0 && strcmp(tag, "ruf") != 0)
			lower(val);
		if (first) {
			if (strcmp(tag, "v") != 0 || strcmp(val, "DMARC1") != 0) {
				snprintf_checked(why, whysz, "it must start "
				    "with v=DMARC1");
				return -1;
			}
			first = 0;
		} else if (strcmp(tag, "p") == 0 || strcmp(tag, "sp") == 0) {
			if (!dmarc_policy_ok(val)) {
				snprintf_checked(why, whysz, "%s=%s is not none, "
				    "quarantine or reject", tag, val);
				return -1;
			}
			strlcpy_checked(tag[0] == 'p' ? d->p : d->sp, val,
			    sizeof(d->p));
		} else if (strcmp(tag, "adkim") == 0 ||
		    strcmp(tag, "aspf") == 0) {
			if (strcmp(val, "r") != 0 && strcmp(val, "s") != 0) {
				snprintf_checked(why, whysz, "%s=%s is not r or s",
				    tag, val);
				return -1;
			}
		} else if (strcmp(tag, "pct") == 0) {
			char *end;
			long v = strtol(val, &end, 10);

			if (val[0] == '\0' || *end != '\0' || v < 0 || v > 100) {
				snprintf_checked(why, whysz, "pct=%s is not a "
				    "number from 0 to 100", val);
				return -1;
			}
			d->pct = (int)v;
		} else if (strcmp(tag, "rua") == 0 || strcmp(tag, "ruf") == 0) {
			if (strncasecmp(val, "mailto:", 7) != 0) {
				snprintf_checked(why, whysz, "%s=%s is not a "
				    "mailto: address", tag, val);
				return -1;
			}
		}
		p += l + (p[l] == ';');
	}
	if (d->p[0] == '\0') {
		snprintf_checked(why, whysz, "it has no p= policy");
		return -1;
	}
	return 0;
}

static void
check_dmarc(struct chk *c)
{
	char name[CHK_NAME_MAX + 1], why[600];
	struct dmarc_rec d;
	struct chk_item *it;
	struct dq q;
	const char *rec = NULL;
	size_t i, n = 0;

	if (snprintf_checked(name, sizeof(name), "_dmarc.%s", c->domain) < 0) {
		c->err = 1;
		return;
	}
	dq_query(c, name, ns_t_txt, &q);
	for (i = 0; i < q.n; i++)
		if (strncasecmp(q.rr[i], "v=DMARC", 7) == 0 && n++ == 0)
			rec = q.rr[i];
	if (q.status == DQ_FAIL) {
		it = item(c, "dmarc", CHK_FAIL, "%s cannot be read: %s", name,
		    dq_why(&q));
		fix(c, it, "make the name servers of %s answer", c->domain);
	} else if (n == 0) {
		it = item(c, "dmarc", CHK_FAIL, "%s has no DMARC record at %s: "
		    "large receivers distrust such mail", c->domain, name);
		fix(c, it, "publish: %s. IN TXT \"v=DMARC1; p=quarantine; "
		    "adkim=s; aspf=s; rua=mailto:postmaster@%s\" (or p=none "
		    "for a few weeks first)", name, c->domain);
	} else if (n > 1) {
		it = item(c, "dmarc", CHK_FAIL, "%s has %zu DMARC records: "
		    "receivers ignore them all (RFC 7489 6.6.3)", name, n);
		fix(c, it, "keep one of them");
	} else if (dmarc_parse(rec, &d, why, sizeof(why)) < 0) {
		it = item(c, "dmarc", CHK_FAIL, "the DMARC record \"%s\" does "
		    "not parse: %s", rec, why);
		fix(c, it, "replace it with: %s. IN TXT \"v=DMARC1; "
		    "p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@%s\"",
		    name, c->domain);
	} else if (strcmp(d.p, "none") == 0) {
		it = item(c, "dmarc", CHK_WARN, "DMARC policy p=none: "
		    "receivers only report, forgeries of %s are delivered",
		    c->domain);
		fix(c, it, "once the aggregate reports show only your own "
		    "servers, change it to p=quarantine (then p=reject)");
	} else if (d.pct < 100) {
		it = item(c, "dmarc", CHK_WARN, "DMARC policy p=%s applies "
		    "to %d%% of failing mail only", d.p, d.pct);
		fix(c, it, "remove pct= (or set pct=100) once the reports "
		    "look right");
	} else {
		item(c, "dmarc", CHK_OK, "DMARC policy p=%s%s%s", d.p,
		    d.sp[0] != '\0' ? ", sp=" : "", d.sp);
	}
	dq_free(&q);
}

/* ---- DNSBL ---- */

static void
check_dnsbl_ip(struct chk *c, const struct pubip *p)
{
	const char *z = c->ctx->cfg.dnsbl;
	struct chk_item *it;

	if (pubip_missing(c, p, "dnsbl", CHK_WARN))
		return;
	while (*z != '\0') {
		char zone[CHK_NAME_MAX + 1];
		struct dnsbl_outcome o;
		size_t len;

		z += strspn(z, " \t,");
		len = strcspn(z, " \t,");
		if (len == 0)
			break;
		if (snprintf_checked(zone, sizeof(zone), "%.*s", (int)len,
		    z) < 0) {
			z += len;
			continue;
		}
		z += len;
		if (policy_dnsbl_check(zone, (const struct sockaddr *)&p->sa,
		    &o) < 0)
			continue;
		if (o.listed) {
			it = item(c, "dnsbl", CHK_FAIL, "%s is listed on %s%s%s",
			    p->text, zone, o.reason[0] != '\0' ? ": " : "",
			    o.reason);
			fix(c, it, "find out why on the site of %s (the reason "
			    "above), fix the cause (an open relay, a "
			    "compromised account), then ask for delisting",
			    zone);
		} else if (o.timed_out) {
			it = item(c, "dnsbl", CHK_WARN, "%s did not answer for "
			    "%s", zone, p->text);
			fix(c, it, "check the zone name in [policy] dnsbl; some "
			    "lists refuse queries from public resolvers");
		} else {
			item(c, "dnsbl", CHK_OK, "%s is not listed on %s",
			    p->text, zone);
		}
	}
}

static void
check_dnsbl(struct chk *c)
{
	if (strspn(c->ctx->cfg.dnsbl, " \t,") == strlen(c->ctx->cfg.dnsbl)) {
		item(c, "dnsbl", CHK_OK, "no DNSBL zones configured ([policy] "
		    "dnsbl)");
		return;
	}
	check_dnsbl_ip(c, &c->ip4);
	if (c->ip6.text[0] != '\0')
		check_dnsbl_ip(c, &c->ip6);
}

/* ---- output ---- */

static int
print_text(struct chk *c, size_t nfail, size_t nwarn)
{
	struct buf b;
	size_t i;
	int r = 0;

	buf_init(&b, BUF_UNLIMITED);
	for (i = 0; i < c->n; i++) {
		const struct chk_item *it = &c->item[i];

		r |= buf_printf(&b, "%-4s  %-11s  %s", status_names[it->status],
		    it->check, buf_cstr(&it->detail));
		if (it->status != CHK_OK)
			r |= buf_printf(&b, ". Fix: %s", buf_cstr(&it->fix));
		r |= buf_putc(&b, '\n');
	}
	r |= buf_printf(&b, "%s: %zu ok, %zu warn, %zu fail\n", c->domain,
	    c->n - nfail - nwarn, nwarn, nfail);
	if (r == 0)
		adm_print_buf(&b);
	buf_free(&b);
	return r == 0 ? ADM_OK : adm_fail("out of memory");
}

static int
print_json(struct chk *c)
{
	struct adm_json j;
	size_t i;

	adm_json_init(&j);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < c->n; i++) {
		const struct chk_item *it = &c->item[i];

		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "check", it->check);
		adm_json_field_str(&j, "status", status_names[it->status]);
		adm_json_field_str(&j, "detail", buf_cstr(&it->detail));
		adm_json_field_str(&j, "fix", buf_cstr(&it->fix));
		adm_json_close(&j);
	}
	adm_json_close(&j);
	return adm_json_print(&j);
}

int
adm_check(struct adm_ctx *ctx, int argc, char **argv)
{
	struct chk *c;
	struct dq fwd4, fwd6;
	char d[ADDR_DOMAIN_MAX + 1];
	const char *error;
	size_t i, nfail = 0, nwarn = 0;
	int r;

	if ((r = adm_args_domain(ctx, argc, argv, d, sizeof(d))) != ADM_OK)
		return r;
	if (db_admin_domain_hosted(ctx->db, d, &error) < 0)
		return adm_fail("%s", error);
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->ans = malloc(DQ_ANSWER_MAX)) == NULL) {
		free(c);
		return adm_fail("out of memory");
	}
	c->ctx = ctx;
	c->domain = d;
	c->host = ctx->cfg.hostname;
	c->rs_ok = res_ninit(&c->rs) == 0;
	pubip_parse(ctx->cfg.public_ip, AF_INET, &c->ip4);
	pubip_parse(ctx->cfg.public_ip6, AF_INET6, &c->ip6);

	check_mx(c);
	check_addr(c, &c->ip4, &fwd4);
	memset(&fwd6, 0, sizeof(fwd6));
	if (c->ip6.text[0] != '\0')
		check_addr(c, &c->ip6, &fwd6);
	check_ptr(c, &c->ip4, &fwd4);
	if (c->ip6.text[0] != '\0')
		check_ptr(c, &c->ip6, &fwd6);
	dq_free(&fwd4);
	dq_free(&fwd6);
	check_spf(c);
	check_dkim(c);
	check_dmarc(c);
	check_dnsbl(c);

	for (i = 0; i < c->n; i++) {
		nfail += c->item[i].status == CHK_FAIL;
		nwarn += c->item[i].status == CHK_WARN;
	}
	if (c->err)
		r = adm_fail("out of memory");
	else
		r = ctx->json ? print_json(c) : print_text(c, nfail, nwarn);
	if (r == ADM_OK && nfail > 0)
		r = adm_fail("check %s: %zu of %zu items failed; the fix is on "
		    "each line", d, nfail, c->n);
	for (i = 0; i < c->n; i++) {
		buf_free(&c->item[i].detail);
		buf_free(&c->item[i].fix);
	}
	if (c->rs_ok)
		res_nclose(&c->rs);
	free(c->ans);
	free(c);
	return r;
}
