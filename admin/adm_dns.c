/*
 * adm_dns.c - mailadm dns DOMAIN: the DNS records a hosted domain needs,
 * as zone-file lines with ';' comments (or --json, an array of
 * {"name","type","value","comment"}).
 *
 * Each kind of record is a builder in builders[]; adding a record is
 * adding a builder.  Everything is built before anything is printed, so
 * an error (an unreadable DKIM key) prints no half list.  In JSON, names
 * and host names carry no final dot and TXT values are unquoted, as DNS
 * providers' forms and APIs take them; the zone lines add both.
 */
#include "adm.h"
#include "../common/db_admin.h"
#include "../common/db_dkim.h"
#include "../common/dkim_sign.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_NAME_MAX 253
#define DNS_MAX_RECORDS 64

/* How a type's data is written in a zone file. */
enum rdata_form {
	RDATA_PLAIN,		/* as is: A, AAAA */
	RDATA_HOST,		/* ends with a host name: gets the final dot */
	RDATA_TXT,		/* quoted character-strings */
};

static const struct rr_type {
	const char *name;
	enum rdata_form form;
} rr_types[] = {
	{ "A", RDATA_PLAIN },
	{ "AAAA", RDATA_PLAIN },
	{ "MX", RDATA_HOST },
	{ "SRV", RDATA_HOST },
	{ "PTR", RDATA_HOST },
	{ "CNAME", RDATA_HOST },
	{ "TXT", RDATA_TXT },
};

#define N_RR_TYPES (sizeof(rr_types) / sizeof(rr_types[0]))

/* One record, or with type NULL a comment alone (nothing to publish). */
struct dns_rr {
	char name[DNS_NAME_MAX + 1];
	const struct rr_type *type;
	struct buf value;
	struct buf comment;	/* lines separated by '\n' */
};

struct dns_set {
	struct dns_rr rr[DNS_MAX_RECORDS];
	size_t n;
};

struct dns_builder {
	const char *what;
	int (*build)(struct adm_ctx *ctx, const char *domain,
	    struct dns_set *set);
};

static const struct rr_type *
rr_type(const char *name)
{
	size_t i;

	for (i = 0; i < N_RR_TYPES; i++)
		if (strcmp(rr_types[i].name, name) == 0)
			return &rr_types[i];
	return NULL;
}

/*
 * Add a record (type NULL: a comment line only) with a formatted
 * comment.  NULL when the set is full or out of memory.
 */
static struct dns_rr * __attribute__((format(printf, 5, 6)))
rr_add(struct dns_set *set, const char *name, const char *type,
    const char *value, const char *comment_fmt, ...)
{
	struct dns_rr *rr;
	va_list ap;
	int r = 0;

	if (set->n >= DNS_MAX_RECORDS)
		return NULL;
	rr = &set->rr[set->n];
	memset(rr, 0, sizeof(*rr));
	buf_init(&rr->value, 8192);
	buf_init(&rr->comment, 4096);
	set->n++;
	if (type != NULL && (rr->type = rr_type(type)) == NULL)
		return NULL;
	if (snprintf_checked(rr->name, sizeof(rr->name), "%s",
	    name != NULL ? name : "") < 0)
		return NULL;
	if (value != NULL)
		r |= buf_puts(&rr->value, value);
	va_start(ap, comment_fmt);
	r |= buf_vprintf(&rr->comment, comment_fmt, ap);
	va_end(ap);
	return r == 0 ? rr : NULL;
}

static void
set_free(struct dns_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++) {
		buf_free(&set->rr[i].value);
		buf_free(&set->rr[i].comment);
	}
	set->n = 0;
}

/* ---- builders ---- */

static int
build_mx(struct adm_ctx *ctx, const char *domain, struct dns_set *set)
{
	char v[DNS_NAME_MAX + 8];

	if (snprintf_checked(v, sizeof(v), "10 %s", ctx->cfg.hostname) < 0)
		return adm_fail("hostname %s is too long", ctx->cfg.hostname);
	if (rr_add(set, domain, "MX", v, "MX: mail for %s is delivered to "
	    "%s (config hostname), which needs an A (and AAAA) record "
	    "pointing to this server", domain, ctx->cfg.hostname) == NULL)
		return adm_fail("out of memory");
	return ADM_OK;
}

static int
build_spf(struct adm_ctx *ctx, const char *domain, struct dns_set *set)
{
	if (rr_add(set, domain, "TXT", "v=spf1 mx -all", "SPF: only the "
	    "hosts of %s's MX record may send its mail", domain) == NULL)
		return adm_fail("out of memory");
	return ADM_OK;
}

/* The record of one active key, read from its private key file. */
static int
dkim_record(const struct db_dkim_key *k, const char *signer,
    struct dns_set *set)
{
	char err[DKIM_PATH_MAX + 256], name[DNS_NAME_MAX + 1];
	struct buf pem, p, value;
	struct dns_rr *rr;
	int r = ADM_OK;

	buf_init(&pem, DKIM_KEY_FILE_MAX);
	buf_init(&p, 4096);
	buf_init(&value, 4096);
	if (dkim_key_read(k->key_path, &pem, err, sizeof(err)) < 0) {
		r = adm_fail("%s (selector %s; retire it with: mailadm dkim "
		    "retire %s %s)", err, k->selector, k->domain, k->selector);
		goto done;
	}
	if (dkim_txt_record(pem.data, pem.len, &p) < 0 ||
	    dkim_txt_value(buf_cstr(&p), &value) < 0) {
		r = adm_fail("%s is not an RSA private key in PEM (selector %s)",
		    k->key_path, k->selector);
		goto done;
	}
	if (snprintf_checked(name, sizeof(name), "%s._domainkey.%s",
	    k->selector, k->domain) < 0) {
		r = adm_fail("record name of selector %s too long", k->selector);
		goto done;
	}
	if (k->signing)
		rr = rr_add(set, name, "TXT", buf_cstr(&value), "DKIM: key %s, "
		    "signs mail of %s", k->selector, k->domain);
	else
		rr = rr_add(set, name, "TXT", buf_cstr(&value), "DKIM: key %s, "
		    "published ahead of use; %s signs until: mailadm dkim "
		    "retire %s %s", k->selector, signer, k->domain, signer);
	if (rr == NULL)
		r = adm_fail("out of memory");
done:
	dkim_buf_wipe(&pem);
	buf_free(&p);
	buf_free(&value);
	return r;
}

static int
build_dkim(struct adm_ctx *ctx, const char *domain, struct dns_set *set)
{
	struct db_dkim_key *l;
	const char *error, *signer = "";
	size_t i, n, nactive = 0;
	int r = ADM_OK;

	if (db_dkim_key_list(ctx->db, domain, &l, &n, &error) < 0)
		return adm_fail("%s", error);
	for (i = 0; i < n; i++)
		if (l[i].signing)
			signer = l[i].selector;
	for (i = 0; i < n && r == ADM_OK; i++) {
		if (!l[i].active)
			continue;
		nactive++;
		r = dkim_record(&l[i], signer, set);
	}
	if (r == ADM_OK && nactive == 0 && rr_add(set, NULL, NULL, NULL,
	    "DKIM: %s has no key, its mail goes out unsigned; create one "
	    "with: mailadm dkim keygen %s", domain, domain) == NULL)
		r = adm_fail("out of memory");
	free(l);
	return r;
}

static int
build_dmarc(struct adm_ctx *ctx, const char *domain, struct dns_set *set)
{
	char name[DNS_NAME_MAX + 1], v[DNS_NAME_MAX + 128];

	if (snprintf_checked(name, sizeof(name), "_dmarc.%s", domain) < 0 ||
	    snprintf_checked(v, sizeof(v), "v=DMARC1; p=quarantine; adkim=s; "
	    "aspf=s; rua=mailto:postmaster@%s", domain) < 0)
		return adm_fail("domain name %s too long for a DMARC record",
		    domain);
	if (rr_add(set, name, "TXT", v, "DMARC: receivers put mail from %s "
	    "that fails both SPF and DKIM in spam; reports go to "
	    "postmaster@%s\nto start gently, publish p=none for a few weeks "
	    "and read the reports before p=quarantine", domain,
	    domain) == NULL)
		return adm_fail("out of memory");
	return ADM_OK;
}

static const struct dns_builder builders[] = {
	{ "MX", build_mx },
	{ "SPF", build_spf },
	{ "DKIM", build_dkim },
	{ "DMARC", build_dmarc },
};

#define N_BUILDERS (sizeof(builders) / sizeof(builders[0]))

/* ---- output ---- */

/* "NAME. IN TYPE DATA", data in zone-file form. */
static int
zone_line(const struct dns_rr *rr, struct buf *out)
{
	int r = buf_printf(out, "%s. IN %s ", rr->name, rr->type->name);

	switch (rr->type->form) {
	case RDATA_TXT:
		r |= dkim_txt_quote(buf_cstr(&rr->value), out);
		break;
	case RDATA_HOST:
		r |= buf_printf(out, "%s.", buf_cstr(&rr->value));
		break;
	case RDATA_PLAIN:
		r |= buf_puts(out, buf_cstr(&rr->value));
		break;
	}
	return r | buf_putc(out, '\n');
}

static int
print_text(const char *domain, const struct dns_set *set)
{
	struct buf b;
	size_t i, j;
	int r = 0;

	buf_init(&b, BUF_UNLIMITED);
	r |= buf_printf(&b, "; DNS records for %s, as zone-file lines\n",
	    domain);
	for (i = 0; i < set->n; i++) {
		const struct dns_rr *rr = &set->rr[i];
		const char *c = buf_cstr(&rr->comment);

		r |= buf_puts(&b, "; ");
		for (j = 0; c[j] != '\0'; j++)
			r |= c[j] == '\n' ? buf_puts(&b, "\n; ") :
			    buf_putc(&b, c[j]);
		r |= buf_putc(&b, '\n');
		if (rr->type != NULL)
			r |= zone_line(rr, &b);
	}
	if (r == 0)
		adm_print_buf(&b);
	buf_free(&b);
	return r == 0 ? ADM_OK : adm_fail("out of memory");
}

static int
print_json(const struct dns_set *set)
{
	struct buf b, c;
	size_t i, j, n = 0;
	int r = 0;

	buf_init(&b, BUF_UNLIMITED);
	buf_init(&c, BUF_UNLIMITED);
	r |= buf_putc(&b, '[');
	for (i = 0; i < set->n; i++) {
		const struct dns_rr *rr = &set->rr[i];

		if (rr->type == NULL)
			continue;
		buf_reset(&c);
		for (j = 0; j < rr->comment.len; j++)
			r |= rr->comment.data[j] == '\n' ? buf_puts(&c, "; ") :
			    buf_putc(&c, rr->comment.data[j]);
		r |= buf_puts(&b, n++ ? ",\n  {\"name\":" : "\n  {\"name\":");
		r |= adm_json_str(&b, rr->name);
		r |= buf_puts(&b, ",\"type\":");
		r |= adm_json_str(&b, rr->type->name);
		r |= buf_puts(&b, ",\"value\":");
		r |= adm_json_str(&b, buf_cstr(&rr->value));
		r |= buf_puts(&b, ",\"comment\":");
		r |= adm_json_str(&b, buf_cstr(&c));
		r |= buf_putc(&b, '}');
	}
	r |= buf_puts(&b, n ? "\n]\n" : "]\n");
	if (r == 0)
		adm_print_buf(&b);
	buf_free(&b);
	buf_free(&c);
	return r == 0 ? ADM_OK : adm_fail("out of memory");
}

int
adm_dns(struct adm_ctx *ctx, int argc, char **argv)
{
	struct dns_set *set;
	char *pos[1], d[ADDR_DOMAIN_MAX + 1];
	const char *error;
	size_t i;
	int r, n;

	if ((r = adm_args(ctx, argc, argv, NULL, pos, 1, 1, &n)) != ADM_OK)
		return r;
	if (db_admin_check_domain(pos[0], d, sizeof(d), &error) < 0)
		return adm_fail("%s", error);
	if ((r = adm_open_db(ctx, 0)) != ADM_OK)
		return r;
	if (db_admin_domain_hosted(ctx->db, d, &error) < 0)
		return adm_fail("%s", error);
	if ((set = calloc(1, sizeof(*set))) == NULL)
		return adm_fail("out of memory");
	for (i = 0; i < N_BUILDERS && r == ADM_OK; i++)
		r = builders[i].build(ctx, d, set);
	if (r == ADM_OK)
		r = ctx->json ? print_json(set) : print_text(d, set);
	set_free(set);
	free(set);
	return r;
}
