/*
 * adm_dns.c - mailadm dns DOMAIN: every DNS record a hosted domain and
 * this server need, as zone-file lines with ';' comments (or --json, an
 * array of {"name","type","value","comment","publish"}).
 *
 * Each kind of record is a builder of adm_dns_records.c; adding a record
 * is adding a builder.  This file holds the record set, finds this
 * server's addresses, and prints.  Everything is built before anything
 * is printed, so an error (an unreadable DKIM key, a bad public_ip)
 * prints no half list.
 * In JSON, names and host names carry no final dot and TXT values are
 * unquoted, as DNS providers' forms and APIs take them; the zone lines
 * add both.
 *
 * Some records are not for DOMAIN's zone: the A/AAAA of a hostname in
 * another zone, the PTR that only the owner of the address can set, the
 * recipe for domains that send no mail.  They are built like the others
 * with publish = 0 and printed commented out, saying where they go, so
 * that pasting the output publishes exactly the records of DOMAIN.
 */
#include "adm.h"
#include "adm_dns.h"
#include "../common/db_admin.h"
#include "../common/dkim_sign.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static const struct rr_type rr_types[] = {
	{ "A", RDATA_PLAIN },
	{ "AAAA", RDATA_PLAIN },
	{ "MX", RDATA_HOST },
	{ "SRV", RDATA_HOST },
	{ "PTR", RDATA_HOST },
	{ "CNAME", RDATA_HOST },
	{ "TXT", RDATA_TXT },
};

#define N_RR_TYPES (sizeof(rr_types) / sizeof(rr_types[0]))

static const struct rr_type *
rr_type(const char *name)
{
	size_t i;

	for (i = 0; i < N_RR_TYPES; i++)
		if (strcmp(rr_types[i].name, name) == 0)
			return &rr_types[i];
	return NULL;
}

struct dns_rr *
dns_rr_add(struct dns_set *set, const char *name, const char *type,
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
	rr->publish = type != NULL;
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

int
dns_fail_full(void)
{
	return adm_fail("out of memory, or more than %d records",
	    DNS_MAX_RECORDS);
}

/* ---- this server's addresses ---- */

/*
 * Whether a machine's interface address can be `hostname`'s address on
 * the Internet.  Loopback, link-local, private (RFC 1918), CGNAT
 * (RFC 6598), ULA (fc00::/7) and the like are reachable from a LAN or a
 * provider's network at most, and the documentation and benchmarking
 * ranges (RFC 5737, 2544, 3849) from nowhere: publishing one sends mail
 * nowhere.
 */
static int
addr_is_global(const struct sockaddr *sa)
{
	static const struct {
		uint32_t net, mask;
	} local4[] = {
		{ 0x00000000, 0xff000000 },	/* 0/8, "this network" */
		{ 0x0a000000, 0xff000000 },	/* 10/8 */
		{ 0x64400000, 0xffc00000 },	/* 100.64/10, CGNAT */
		{ 0x7f000000, 0xff000000 },	/* 127/8 */
		{ 0xa9fe0000, 0xffff0000 },	/* 169.254/16, link-local */
		{ 0xac100000, 0xfff00000 },	/* 172.16/12 */
		{ 0xc0000000, 0xffffff00 },	/* 192.0.0/24, IETF */
		{ 0xc0000200, 0xffffff00 },	/* 192.0.2/24, doc */
		{ 0xc0a80000, 0xffff0000 },	/* 192.168/16 */
		{ 0xc6120000, 0xfffe0000 },	/* 198.18/15, benchmarking */
		{ 0xc6336400, 0xffffff00 },	/* 198.51.100/24, doc */
		{ 0xcb007100, 0xffffff00 },	/* 203.0.113/24, doc */
		{ 0xe0000000, 0xe0000000 },	/* 224/3, multicast, ... */
	};
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	const struct in6_addr *a6 = &s6.sin6_addr;
	uint32_t a;
	size_t i;

	if (sa->sa_family == AF_INET) {
		memcpy(&s4, sa, sizeof(s4));
		a = ntohl(s4.sin_addr.s_addr);
		for (i = 0; i < sizeof(local4) / sizeof(local4[0]); i++)
			if ((a & local4[i].mask) == local4[i].net)
				return 0;
		return 1;
	}
	if (sa->sa_family != AF_INET6)
		return 0;
	memcpy(&s6, sa, sizeof(s6));
	if (IN6_IS_ADDR_UNSPECIFIED(a6) || IN6_IS_ADDR_LOOPBACK(a6) ||
	    IN6_IS_ADDR_LINKLOCAL(a6) || IN6_IS_ADDR_SITELOCAL(a6) ||
	    IN6_IS_ADDR_MULTICAST(a6) || IN6_IS_ADDR_V4MAPPED(a6) ||
	    (a6->s6_addr[0] & 0xfe) == 0xfc ||
	    memcmp(a6->s6_addr, "\x20\x01\x0d\xb8", 4) == 0)
		return 0;
	return 1;
}

/* Add sa (of a's family) once, in its normal text form; full: ignored. */
static void
addrs_add(struct host_addrs *a, const struct sockaddr *sa)
{
	char t[INET6_ADDRSTRLEN];
	const void *p;
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	size_t i, len;

	if (a->family == AF_INET) {
		memcpy(&s4, sa, sizeof(s4));
		p = &s4.sin_addr;
		len = sizeof(s4);
	} else {
		memcpy(&s6, sa, sizeof(s6));
		p = &s6.sin6_addr;
		len = sizeof(s6);
	}
	if (a->n >= DNS_ADDRS_MAX ||
	    inet_ntop(a->family, p, t, sizeof(t)) == NULL)
		return;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->text[i], t) == 0)
			return;
	strlcpy_checked(a->text[a->n], t, sizeof(a->text[a->n]));
	memset(&a->sa[a->n], 0, sizeof(a->sa[a->n]));
	memcpy(&a->sa[a->n], sa, len);
	a->n++;
}

/*
 * The configured address, if any.  The config reads public_ip as a plain
 * string (only mailadm uses it), so it is checked here.  ADM_*.
 */
static int
addrs_config(const struct config *cfg, const char *text, struct host_addrs *a)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	void *dst = a->family == AF_INET ? (void *)&s4->sin_addr :
	    (void *)&s6->sin6_addr;

	if (text[0] == '\0')
		return ADM_OK;
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)a->family;
	if (inet_pton(a->family, text, dst) != 1)
		return adm_fail("%s = %s in %s is not an %s address", a->key,
		    text, cfg->path, a->family == AF_INET ? "IPv4" : "IPv6");
	a->configured = 1;
	addrs_add(a, (struct sockaddr *)&ss);
	return ADM_OK;
}

/*
 * The global addresses of the interfaces that are up, for each family
 * not configured.  If the interfaces cannot be listed, none are found,
 * and the output says to set public_ip: the same fix as behind NAT.
 */
static void
addrs_discover(struct host_addrs *ip4, struct host_addrs *ip6)
{
	struct ifaddrs *ifa, *p;
	struct host_addrs *a;

	if ((ip4->configured && ip6->configured) || getifaddrs(&ifa) < 0)
		return;
	for (p = ifa; p != NULL; p = p->ifa_next) {
		if (p->ifa_addr == NULL || (p->ifa_flags & IFF_UP) == 0 ||
		    (p->ifa_flags & IFF_LOOPBACK) != 0)
			continue;
		a = p->ifa_addr->sa_family == AF_INET ? ip4 :
		    p->ifa_addr->sa_family == AF_INET6 ? ip6 : NULL;
		if (a != NULL && !a->configured && addr_is_global(p->ifa_addr))
			addrs_add(a, p->ifa_addr);
	}
	freeifaddrs(ifa);
}

const char *
dns_addrs_origin(const struct host_addrs *a)
{
	if (a->configured)
		return a->family == AF_INET ? "public_ip in the config" :
		    "public_ip6 in the config";
	return a->family == AF_INET ? "found on this machine's interfaces, "
	    "as public_ip is not set: check that the world reaches it there" :
	    "found on this machine's interfaces, as public_ip6 is not set: "
	    "check that the world reaches it there";
}

/* ---- output ---- */

/* "NAME. IN TYPE DATA", data in zone-file form. */
static int
zone_line(const struct dns_rr *rr, struct buf *out)
{
	const char *v = buf_cstr(&rr->value);
	int r = buf_printf(out, "%s. IN %s ", rr->name, rr->type->name);

	switch (rr->type->form) {
	case RDATA_TXT:
		r |= dkim_txt_quote(v, out);
		break;
	case RDATA_HOST:
		/* the root (null MX, SRV "not provided") has its dot */
		r |= buf_puts(out, v);
		if (rr->value.len == 0 || v[rr->value.len - 1] != '.')
			r |= buf_putc(out, '.');
		break;
	case RDATA_PLAIN:
		r |= buf_puts(out, v);
		break;
	}
	return r | buf_putc(out, '\n');
}

static int
print_text(const char *domain, const struct dns_set *set)
{
	const char *prev = "";
	struct buf b;
	size_t i, j;
	int r = 0;

	buf_init(&b, BUF_UNLIMITED);
	r |= buf_printf(&b, "; DNS records for %s, as zone-file lines\n"
	    "; a record commented out goes elsewhere; its comment says "
	    "where\n", domain);
	for (i = 0; i < set->n; i++) {
		const struct dns_rr *rr = &set->rr[i];
		const char *c = buf_cstr(&rr->comment);

		/*
		 * Records of a group (the PTR of each address) share their
		 * comment: said once before the group.  JSON repeats it, as
		 * each object stands alone.
		 */
		if (c[0] != '\0' && strcmp(c, prev) != 0) {
			r |= buf_puts(&b, "; ");
			for (j = 0; c[j] != '\0'; j++)
				r |= c[j] == '\n' ? buf_puts(&b, "\n; ") :
				    buf_putc(&b, c[j]);
			r |= buf_putc(&b, '\n');
		}
		prev = c;
		if (rr->type == NULL)
			continue;
		/* a PTR goes in a provider's form, not in any zone file */
		if (!rr->publish)
			r |= buf_puts(&b, strcmp(rr->type->name, "PTR") == 0 ?
			    "; PTR: " : "; ");
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
	struct adm_json j;
	struct buf c;
	size_t i, k;

	adm_json_init(&j);
	buf_init(&c, BUF_UNLIMITED);
	adm_json_open(&j, NULL, '[');
	for (i = 0; i < set->n; i++) {
		const struct dns_rr *rr = &set->rr[i];

		if (rr->type == NULL)
			continue;
		buf_reset(&c);
		/* one line per record: comment lines joined with "; " */
		for (k = 0; k < rr->comment.len; k++) {
			char ch = rr->comment.data[k];

			j.err |= ch == '\n' ? buf_puts(&c, "; ") :
			    buf_putc(&c, ch);
		}
		adm_json_open(&j, NULL, '{');
		adm_json_field_str(&j, "name", rr->name);
		adm_json_field_str(&j, "type", rr->type->name);
		adm_json_field_str(&j, "value", buf_cstr(&rr->value));
		adm_json_field_str(&j, "comment", buf_cstr(&c));
		adm_json_field_bool(&j, "publish", rr->publish);
		adm_json_close(&j);
	}
	adm_json_close(&j);
	buf_free(&c);
	return adm_json_print(&j);
}

/* 1 if host is domain or a name below it (both in normal form). */
static int
host_in_zone(const char *host, const char *domain)
{
	size_t hl = strlen(host), dl = strlen(domain);

	if (hl == dl)
		return strcasecmp(host, domain) == 0;
	return hl > dl && host[hl - dl - 1] == '.' &&
	    strcasecmp(host + hl - dl, domain) == 0;
}

int
adm_dns(struct adm_ctx *ctx, int argc, char **argv)
{
	struct dns_job *j;
	char d[ADDR_DOMAIN_MAX + 1];
	const char *error;
	size_t i;
	int r;

	if ((r = adm_args_domain(ctx, argc, argv, d, sizeof(d))) != ADM_OK)
		return r;
	if (db_admin_domain_hosted(ctx->db, d, &error) < 0)
		return adm_fail("%s", error);
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return adm_fail("out of memory");
	j->ctx = ctx;
	j->cfg = &ctx->cfg;
	j->domain = d;
	j->host_in_zone = host_in_zone(ctx->cfg.hostname, d);
	j->ip4.family = AF_INET;
	j->ip4.key = "public_ip";
	j->ip6.family = AF_INET6;
	j->ip6.key = "public_ip6";
	r = addrs_config(j->cfg, ctx->cfg.public_ip, &j->ip4);
	if (r == ADM_OK)
		r = addrs_config(j->cfg, ctx->cfg.public_ip6, &j->ip6);
	if (r == ADM_OK)
		addrs_discover(&j->ip4, &j->ip6);
	for (i = 0; i < dns_nbuilders && r == ADM_OK; i++)
		r = dns_builders[i].build(j);
	if (r == ADM_OK)
		r = ctx->json ? print_json(&j->set) : print_text(d, &j->set);
	set_free(&j->set);
	free(j);
	return r;
}
