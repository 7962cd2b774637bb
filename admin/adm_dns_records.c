/*
 * adm_dns_records.c - the builders of mailadm dns: one per kind of
 * record, each adding to the job's set what DOMAIN and this server need
 * (adm_dns.c prints the set).  A builder decides whether its records are
 * published in DOMAIN's zone or printed commented out, and its comments
 * say why and where.
 */
#include "adm_dns.h"
#include "../common/db_dkim.h"
#include "../common/dkim_sign.h"
#include "../common/policy.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DNS_SRV_PORTS 4		/* distinct ports of one service */
/* Where the recipe for domains that send no mail is shown (RFC 2606). */
#define NOMAIL_NAME "nomail.example"

static int
build_addr_family(struct dns_job *j, const struct host_addrs *a)
{
	const char *host = j->cfg->hostname, *type;
	struct dns_rr *rr;
	size_t i;

	type = a->family == AF_INET ? "A" : "AAAA";
	if (a->n == 0) {
		if (dns_rr_add(&j->set, NULL, NULL, NULL, "%s: no %s address "
		    "for %s: %s is not set and this machine's interfaces "
		    "have only loopback, link-local or private ones%s\nset "
		    "%s = ADDRESS in %s, the address the world reaches this "
		    "server at, and run mailadm dns again%s", type,
		    a->family == AF_INET ? "IPv4" : "IPv6", host, a->key,
		    a->family == AF_INET ? " (behind NAT?)" : "", a->key,
		    j->cfg->path, a->family == AF_INET6 ? "; without IPv6, "
		    "publish no AAAA record" : "") == NULL)
			return dns_fail_full();
		return ADM_OK;
	}
	for (i = 0; i < a->n; i++) {
		if (j->host_in_zone)
			rr = dns_rr_add(&j->set, host, type, a->text[i],
			    "%s: %s (config hostname, the MX) is at %s (%s)",
			    type, host, a->text[i], dns_addrs_origin(a));
		else
			rr = dns_rr_add(&j->set, host, type, a->text[i],
			    "%s: %s (config hostname, the MX) is at %s (%s)\n"
			    "publish in the zone of %s: it is not inside %s",
			    type, host, a->text[i], dns_addrs_origin(a), host,
			    j->domain);
		if (rr == NULL)
			return dns_fail_full();
		rr->publish = j->host_in_zone;
	}
	return ADM_OK;
}

static int
build_addr(struct dns_job *j)
{
	int r = build_addr_family(j, &j->ip4);

	return r == ADM_OK ? build_addr_family(j, &j->ip6) : r;
}

/* 1 if the listener is reachable only from this machine. */
static int
listen_is_loopback(const struct listen_spec *l)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, l->host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, l->host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return strcasecmp(l->host, "localhost") == 0;
}

/*
 * The distinct ports on which kind listens beyond loopback, in config
 * order.  A listener on 127.0.0.1 (a local webmail's, say) is no service
 * for the Internet, so it is not advertised.
 */
static size_t
public_ports(const struct listen_set *ls, enum listen_kind kind,
    uint16_t *ports)
{
	size_t n = 0, k;
	int i;

	for (i = 0; i < ls->n; i++) {
		if (ls->l[i].kind != kind || listen_is_loopback(&ls->l[i]))
			continue;
		for (k = 0; k < n && ports[k] != ls->l[i].port; k++)
			;
		if (k == n && n < DNS_SRV_PORTS)
			ports[n++] = ls->l[i].port;
	}
	return n;
}

static int
build_mx(struct dns_job *j)
{
	const char *host = j->cfg->hostname;
	char v[DNS_NAME_MAX + 8];
	uint16_t ports[DNS_SRV_PORTS];
	size_t i, n;
	int on25 = 0;

	n = public_ports(&j->cfg->smtpd_listen, LISTEN_SMTP, ports);
	for (i = 0; i < n; i++)
		on25 |= ports[i] == 25;
	if (snprintf_checked(v, sizeof(v), "10 %s", host) < 0)
		return adm_fail("hostname %s is too long", host);
	if (dns_rr_add(&j->set, j->domain, "MX", v, "MX: mail for %s is "
	    "delivered to %s (config hostname), which needs an A (and "
	    "AAAA) record: see above%s", j->domain, host, on25 ? "" :
	    "\nwarning: [smtpd] has no smtp listen line on port 25 beyond "
	    "loopback, and other servers deliver to port 25 only") == NULL)
		return dns_fail_full();
	return ADM_OK;
}

/*
 * Append " ip4:A" or " ip6:A", A in normal form, unless the value names A
 * already or A is one of covered's (the addresses `mx` stands for).
 */
static int
spf_add_ip(struct buf *v, int family, const char *addr,
    const struct host_addrs *covered)
{
	unsigned char bin[sizeof(struct in6_addr)];
	char t[INET6_ADDRSTRLEN], m[INET6_ADDRSTRLEN + 8];
	const char *p, *s = buf_cstr(v);
	size_t i, ml;

	if (addr[0] == '\0' || inet_pton(family, addr, bin) != 1 ||
	    inet_ntop(family, bin, t, sizeof(t)) == NULL ||
	    snprintf_checked(m, sizeof(m), " %s:%s", family == AF_INET ?
	    "ip4" : "ip6", t) < 0)
		return 0;
	for (i = 0; covered != NULL && i < covered->n; i++)
		if (strcmp(covered->text[i], t) == 0)
			return 0;
	ml = strlen(m);
	for (p = strstr(s, m); p != NULL; p = strstr(p + 1, m))
		if (p[ml] == ' ' || p[ml] == '\0')
			return 0;
	return buf_puts(v, m);
}

static int
build_spf(struct dns_job *j)
{
	const struct config *cfg = j->cfg;
	const struct host_addrs *found;
	int explicit = j->ip4.configured || j->ip6.configured;
	struct buf v, c;
	size_t i;
	int r = 0;

	buf_init(&v, 4096);
	buf_init(&c, 4096);
	r |= buf_puts(&v, "v=spf1");
	if (explicit) {
		/* the addresses of the A/AAAA records, which `mx` stands for */
		for (i = 0; i < j->ip4.n; i++)
			r |= spf_add_ip(&v, AF_INET, j->ip4.text[i], NULL);
		for (i = 0; i < j->ip6.n; i++)
			r |= spf_add_ip(&v, AF_INET6, j->ip6.text[i], NULL);
		r |= buf_printf(&c, "SPF: only this server may send mail of "
		    "%s; its addresses are written out because %s set in the "
		    "config, which spares receivers the MX and A lookups `mx` "
		    "costs (SPF allows 10)", j->domain, j->ip4.configured &&
		    j->ip6.configured ? "public_ip and public_ip6 are" :
		    j->ip4.configured ? "public_ip is" : "public_ip6 is");
		found = j->ip4.configured ? &j->ip6 : &j->ip4;
		if (!found->configured && found->n > 0)
			r |= buf_printf(&c, "\nthe %s address(es) were %s",
			    found->family == AF_INET ? "IPv4" : "IPv6",
			    dns_addrs_origin(found));
	} else {
		r |= buf_puts(&v, " mx");
		r |= buf_printf(&c, "SPF: only the hosts of %s's MX record "
		    "may send its mail (set public_ip and public_ip6 to have "
		    "the addresses written out instead)", j->domain);
	}
	/* the queue runner may be told to send from another address */
	r |= spf_add_ip(&v, AF_INET, cfg->outbound_ip, &j->ip4);
	r |= spf_add_ip(&v, AF_INET6, cfg->outbound_ip6, &j->ip6);
	if (cfg->outbound_ip[0] != '\0' || cfg->outbound_ip6[0] != '\0')
		r |= buf_puts(&c, "\noutbound_ip/outbound_ip6, the source "
		    "addresses of outgoing mail, are authorized too");
	if (cfg->relayhost[0] != '\0')
		r |= buf_printf(&c, "\nrelayhost is set: mail leaves through "
		    "%s, so add that provider's mechanism (its include:) "
		    "before -all", cfg->relayhost);
	r |= buf_puts(&v, " -all");
	if (r != 0 || dns_rr_add(&j->set, j->domain, "TXT", buf_cstr(&v),
	    "%s", buf_cstr(&c)) == NULL)
		r = -1;
	buf_free(&v);
	buf_free(&c);
	return r == 0 ? ADM_OK : dns_fail_full();
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
		r = adm_fail("%s is not an RSA private key in PEM (selector "
		    "%s)", k->key_path, k->selector);
		goto done;
	}
	if (snprintf_checked(name, sizeof(name), "%s._domainkey.%s",
	    k->selector, k->domain) < 0) {
		r = adm_fail("record name of selector %s too long",
		    k->selector);
		goto done;
	}
	if (k->signing)
		rr = dns_rr_add(set, name, "TXT", buf_cstr(&value),
		    "DKIM: key %s, signs mail of %s", k->selector, k->domain);
	else
		rr = dns_rr_add(set, name, "TXT", buf_cstr(&value),
		    "DKIM: key %s, published ahead of use; %s signs until: "
		    "mailadm dkim retire %s %s", k->selector, signer,
		    k->domain, signer);
	if (rr == NULL)
		r = dns_fail_full();
done:
	dkim_buf_wipe(&pem);
	buf_free(&p);
	buf_free(&value);
	return r;
}

static int
build_dkim(struct dns_job *j)
{
	struct db_dkim_key *l;
	const char *error, *signer = "";
	size_t i, n, nactive = 0;
	int r = ADM_OK;

	if (db_dkim_key_list(j->ctx->db, j->domain, &l, &n, &error) < 0)
		return adm_fail("%s", error);
	for (i = 0; i < n; i++)
		if (l[i].signing)
			signer = l[i].selector;
	for (i = 0; i < n && r == ADM_OK; i++) {
		if (!l[i].active)
			continue;
		nactive++;
		r = dkim_record(&l[i], signer, &j->set);
	}
	if (r == ADM_OK && nactive == 0 && dns_rr_add(&j->set, NULL, NULL, NULL,
	    "DKIM: %s has no key, its mail goes out unsigned; create one "
	    "with: mailadm dkim keygen %s", j->domain, j->domain) == NULL)
		r = dns_fail_full();
	free(l);
	return r;
}

static int
build_dmarc(struct dns_job *j)
{
	char name[DNS_NAME_MAX + 1], v[DNS_NAME_MAX + 128];

	if (snprintf_checked(name, sizeof(name), "_dmarc.%s", j->domain) < 0 ||
	    snprintf_checked(v, sizeof(v), "v=DMARC1; p=quarantine; adkim=s; "
	    "aspf=s; rua=mailto:postmaster@%s", j->domain) < 0)
		return adm_fail("domain name %s too long for a DMARC record",
		    j->domain);
	if (dns_rr_add(&j->set, name, "TXT", v, "DMARC: receivers put mail "
	    "from %s that fails both SPF and DKIM in spam; reports go to "
	    "postmaster@%s\nto start gently, publish p=none for a few weeks "
	    "and read the reports before p=quarantine", j->domain,
	    j->domain) == NULL)
		return dns_fail_full();
	return ADM_OK;
}

/* The services of RFC 6186 (with RFC 8314's _submissions). */
static const struct srv_service {
	const char *label;
	enum listen_kind kind;
	const char *what;
} srv_services[] = {
	{ "_submission", LISTEN_SUBMISSION, "mail submission (STARTTLS)" },
	{ "_submissions", LISTEN_SUBMISSIONS, "mail submission (TLS)" },
	{ "_imap", LISTEN_IMAP, "IMAP (STARTTLS)" },
	{ "_imaps", LISTEN_IMAPS, "IMAP (TLS)" },
	{ "_pop3", LISTEN_POP3, "POP3 (STLS)" },
	{ "_pop3s", LISTEN_POP3S, "POP3 (TLS)" },
};

static const struct listen_set *
listen_set_of(const struct config *cfg, enum listen_kind kind)
{
	if (kind == LISTEN_IMAP || kind == LISTEN_IMAPS)
		return &cfg->imapd_listen;
	if (kind == LISTEN_POP3 || kind == LISTEN_POP3S)
		return &cfg->pop3d_listen;
	return &cfg->smtpd_listen;
}

/*
 * One SRV per service: the configured ports, so that clients set
 * themselves up (Thunderbird and others ask these names).  A service with
 * no listener gets the target "." with port 0, which RFC 2782 and
 * RFC 6186 have mean "not provided here": a client stops there rather
 * than guessing ports and hosts that are not ours.
 */
static int
build_srv(struct dns_job *j)
{
	char name[DNS_NAME_MAX + 1], v[DNS_NAME_MAX + 32];
	uint16_t ports[DNS_SRV_PORTS];
	const struct srv_service *s;
	size_t i, k, n;

	for (i = 0; i < sizeof(srv_services) / sizeof(srv_services[0]); i++) {
		s = &srv_services[i];
		if (snprintf_checked(name, sizeof(name), "%s._tcp.%s",
		    s->label, j->domain) < 0)
			return adm_fail("domain name %s too long for SRV "
			    "records", j->domain);
		n = public_ports(listen_set_of(j->cfg, s->kind), s->kind,
		    ports);
		if (n == 0 && dns_rr_add(&j->set, name, "SRV", "0 0 0 .", "SRV "
		    "(RFC 6186): %s is not provided (no %s listen line beyond "
		    "loopback); the target \".\" tells clients so", s->what,
		    listen_kind_name(s->kind)) == NULL)
			return dns_fail_full();
		for (k = 0; k < n; k++) {
			if (snprintf_checked(v, sizeof(v), "0 1 %u %s",
			    (unsigned)ports[k], j->cfg->hostname) < 0)
				return adm_fail("hostname %s is too long",
				    j->cfg->hostname);
			if (dns_rr_add(&j->set, name, "SRV", v, "SRV (RFC "
			    "6186): mail clients find %s at %s port %u "
			    "(config %s listen line)", s->what,
			    j->cfg->hostname, (unsigned)ports[k],
			    listen_kind_name(s->kind)) == NULL)
				return dns_fail_full();
		}
	}
	return ADM_OK;
}

static int
build_ptr_family(struct dns_job *j, const struct host_addrs *a)
{
	char name[DNS_NAME_MAX + 1];
	struct dns_rr *rr;
	size_t i;

	for (i = 0; i < a->n; i++) {
		if (policy_dnsbl_qname((const struct sockaddr *)&a->sa[i],
		    a->family == AF_INET ? "in-addr.arpa" : "ip6.arpa", name,
		    sizeof(name)) < 0)
			return adm_fail("no reverse name for %s", a->text[i]);
		rr = dns_rr_add(&j->set, name, "PTR", j->cfg->hostname, "PTR "
		    "(reverse DNS) of each address: set by whoever owns the "
		    "address, at your VPS or hosting provider (its panel or "
		    "support), not in the zone of %s\nmany receivers refuse "
		    "mail from an address whose PTR is not %s, or whose PTR "
		    "name does not resolve back to it", j->domain,
		    j->cfg->hostname);
		if (rr == NULL)
			return dns_fail_full();
		rr->publish = 0;
	}
	return ADM_OK;
}

static int
build_ptr(struct dns_job *j)
{
	int r;

	if (j->ip4.n == 0 && j->ip6.n == 0) {
		if (dns_rr_add(&j->set, NULL, NULL, NULL, "PTR (reverse DNS): "
		    "once public_ip is set, this prints the PTR record to ask "
		    "your hosting provider for") == NULL)
			return dns_fail_full();
		return ADM_OK;
	}
	if ((r = build_ptr_family(j, &j->ip4)) != ADM_OK)
		return r;
	return build_ptr_family(j, &j->ip6);
}

/*
 * What a domain that sends no mail publishes, so that nobody can send
 * in its name: shown on a placeholder name, as it is for other domains.
 */
static int
build_nomail(struct dns_job *j)
{
	static const struct {
		const char *name, *type, *value, *comment;
	} recipe[] = {
		{ NOMAIL_NAME, "TXT", "v=spf1 -all",
		    "SPF: no host may send its mail" },
		{ "_dmarc." NOMAIL_NAME, "TXT", "v=DMARC1; p=reject",
		    "DMARC: receivers refuse mail that claims to be from it" },
		{ NOMAIL_NAME, "MX", "0 .", "null MX (RFC 7505), for a parked "
		    "domain that receives no mail either: senders bounce at "
		    "once instead of retrying for days" },
	};
	struct dns_rr *rr;
	size_t i;

	if (dns_rr_add(&j->set, NULL, NULL, NULL, "for each domain of yours "
	    "that sends no mail (not %s): these records, in its own zone, "
	    "with its name for " NOMAIL_NAME, j->domain) == NULL)
		return dns_fail_full();
	for (i = 0; i < sizeof(recipe) / sizeof(recipe[0]); i++) {
		rr = dns_rr_add(&j->set, recipe[i].name, recipe[i].type,
		    recipe[i].value, "%s", recipe[i].comment);
		if (rr == NULL)
			return dns_fail_full();
		rr->publish = 0;
	}
	return ADM_OK;
}

const struct dns_builder dns_builders[] = {
	{ "A/AAAA", build_addr },
	{ "MX", build_mx },
	{ "SPF", build_spf },
	{ "DKIM", build_dkim },
	{ "DMARC", build_dmarc },
	{ "SRV", build_srv },
	{ "PTR", build_ptr },
	{ "no mail", build_nomail },
};

const size_t dns_nbuilders = sizeof(dns_builders) / sizeof(dns_builders[0]);
