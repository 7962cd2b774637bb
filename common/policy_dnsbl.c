/*
 * policy_dnsbl.c - DNS block lists (RFC 5782) for the client address at
 * connect, the CIDR allow list that exempts networks from them, and a
 * small answer cache.
 *
 * A zone lists an address when ADDRESS-REVERSED.ZONE has an A record in
 * 127.0.0.0/8; its TXT record says why.  The lookups use the system
 * resolver with a resolver state per call (as smtpd/mx_lookup.c does), so
 * pool threads never share one.  A zone that does not answer never
 * blocks mail: it counts as "not listed" and the caller is told.
 *
 * This file must never decide what to answer the client: it only says
 * what the lists say.
 */
#include "policy.h"
#include "buf.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DNSBL_NAME_MAX 253		/* a domain name as text */
#define DNSBL_ANSWER_MAX 4096
/*
 * The lookup sits in front of the greeting: never wait longer than
 * about 3 s x 2 tries per zone, whatever resolv.conf says.
 */
#define DNSBL_RETRANS_MAX 3
#define DNSBL_RETRY_MAX 2
#define DNSBL_TTL_MAX 3600		/* a list may change its mind */
#define DNSBL_NEG_TTL_DEFAULT 60	/* "not listed" without an SOA */
/* A dead zone is asked again after this, not at every connection. */
#define DNSBL_FAIL_TTL 30

#define CACHE_SETS 256
#define CACHE_WAYS 4

/* An address as the lists see it: IPv4-mapped IPv6 is IPv4. */
struct ipaddr {
	int family;			/* AF_INET or AF_INET6 */
	unsigned char b[16];		/* 4 or 16 bytes used */
};

struct cache_entry {
	int used;
	struct ipaddr ip;
	char zone[DNSBL_NAME_MAX + 1];
	long long expires, last_used;
	int listed, timed_out;
	char reason[POLICY_REASON_MAX];
};

static struct cache_entry cache[CACHE_SETS][CACHE_WAYS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int
ipaddr_from(const struct sockaddr *sa, struct ipaddr *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		ip->family = AF_INET;
		memcpy(ip->b, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			ip->family = AF_INET;
			memcpy(ip->b, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			ip->family = AF_INET6;
			memcpy(ip->b, s6->sin6_addr.s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

/* A zone as we key and query it: lower case, no final dot.  0 / -1. */
static int
zone_norm(const char *z, size_t len, char *out, size_t outsz)
{
	size_t i;

	while (len > 0 && z[len - 1] == '.')
		len--;
	if (len == 0 || len >= outsz || len > DNSBL_NAME_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)z[i];

		if (!isalnum(c) && c != '-' && c != '.' && c != '_')
			return -1;
		out[i] = (char)tolower(c);
	}
	out[len] = '\0';
	return 0;
}

static int
qname_ip(const struct ipaddr *ip, const char *zone, char *out, size_t outsz)
{
	static const char hex[] = "0123456789abcdef";
	char rev[72];
	size_t n = 0;
	int i;

	if (ip->family == AF_INET) {
		if (snprintf_checked(rev, sizeof(rev), "%u.%u.%u.%u", ip->b[3],
		    ip->b[2], ip->b[1], ip->b[0]) < 0)
			return -1;
	} else if (ip->family == AF_INET6) {
		for (i = 15; i >= 0; i--) {
			rev[n++] = hex[ip->b[i] & 15];
			rev[n++] = '.';
			rev[n++] = hex[ip->b[i] >> 4];
			rev[n++] = i > 0 ? '.' : '\0';
		}
	} else {
		return -1;
	}
	if (snprintf_checked(out, outsz, "%s.%s", rev, zone) < 0 ||
	    strlen(out) > DNSBL_NAME_MAX)
		return -1;
	return 0;
}

int
policy_dnsbl_qname(const struct sockaddr *client, const char *zone,
    char *out, size_t outsz)
{
	char z[DNSBL_NAME_MAX + 1];
	struct ipaddr ip;

	if (ipaddr_from(client, &ip) < 0 ||
	    zone_norm(zone, strlen(zone), z, sizeof(z)) < 0)
		return -1;
	return qname_ip(&ip, z, out, outsz);
}

/* ---- cache ---- */

static unsigned
cache_set(const char *zone, const struct ipaddr *ip)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i, n = ip->family == AF_INET ? 4 : 16;

	for (; *zone != '\0'; zone++)
		h = (h ^ (unsigned char)*zone) * 16777619u;
	h = (h ^ (unsigned)ip->family) * 16777619u;
	for (i = 0; i < n; i++)
		h = (h ^ ip->b[i]) * 16777619u;
	return h % CACHE_SETS;
}

static int
cache_match(const struct cache_entry *e, const char *zone,
    const struct ipaddr *ip)
{
	return e->used && e->ip.family == ip->family &&
	    memcmp(e->ip.b, ip->b, sizeof(ip->b)) == 0 &&
	    strcmp(e->zone, zone) == 0;
}

/* zone is already normalised. */
static int
cache_get(const char *zone, const struct ipaddr *ip, long long now,
    struct dnsbl_outcome *out)
{
	struct cache_entry *set = cache[cache_set(zone, ip)];
	int i, found = 0;

	pthread_mutex_lock(&cache_lock);
	for (i = 0; i < CACHE_WAYS; i++) {
		struct cache_entry *e = &set[i];

		if (!cache_match(e, zone, ip) || e->expires <= now)
			continue;
		e->last_used = now;
		memset(out, 0, sizeof(*out));
		out->listed = e->listed;
		out->timed_out = e->timed_out;
		strlcpy_checked(out->zone, zone, sizeof(out->zone));
		strlcpy_checked(out->reason, e->reason, sizeof(out->reason));
		found = 1;
		break;
	}
	pthread_mutex_unlock(&cache_lock);
	return found;
}

static void
cache_put(const char *zone, const struct ipaddr *ip, long long now,
    unsigned ttl, const struct dnsbl_outcome *o)
{
	struct cache_entry *set, *e = NULL;
	int i;

	if (ttl == 0)
		return;
	if (ttl > DNSBL_TTL_MAX)
		ttl = DNSBL_TTL_MAX;
	set = cache[cache_set(zone, ip)];
	pthread_mutex_lock(&cache_lock);
	/* the same key, else a free or stale way, else the least used */
	for (i = 0; i < CACHE_WAYS && e == NULL; i++)
		if (cache_match(&set[i], zone, ip))
			e = &set[i];
	for (i = 0; i < CACHE_WAYS && e == NULL; i++)
		if (!set[i].used || set[i].expires <= now)
			e = &set[i];
	if (e == NULL) {
		e = &set[0];
		for (i = 1; i < CACHE_WAYS; i++)
			if (set[i].last_used < e->last_used)
				e = &set[i];
	}
	memset(e, 0, sizeof(*e));
	e->used = 1;
	e->ip = *ip;
	strlcpy_checked(e->zone, zone, sizeof(e->zone));
	e->expires = now + (long long)ttl;
	e->last_used = now;
	e->listed = o->listed;
	e->timed_out = o->timed_out;
	strlcpy_checked(e->reason, o->reason, sizeof(e->reason));
	pthread_mutex_unlock(&cache_lock);
}

int
policy_dnsbl_cache_get(const char *zone, const struct sockaddr *client,
    long long now, struct dnsbl_outcome *out)
{
	char z[DNSBL_NAME_MAX + 1];
	struct ipaddr ip;

	if (ipaddr_from(client, &ip) < 0 ||
	    zone_norm(zone, strlen(zone), z, sizeof(z)) < 0)
		return 0;
	return cache_get(z, &ip, now, out);
}

void
policy_dnsbl_cache_put(const char *zone, const struct sockaddr *client,
    long long now, unsigned ttl, const struct dnsbl_outcome *o)
{
	char z[DNSBL_NAME_MAX + 1];
	struct ipaddr ip;

	if (ipaddr_from(client, &ip) < 0 ||
	    zone_norm(zone, strlen(zone), z, sizeof(z)) < 0)
		return;
	cache_put(z, &ip, now, ttl, o);
}

void
policy_dnsbl_cache_clear(void)
{
	pthread_mutex_lock(&cache_lock);
	memset(cache, 0, sizeof(cache));
	pthread_mutex_unlock(&cache_lock);
}

/* ---- lookups ---- */

/* A TTL clock that does not jump with the wall clock. */
static long long
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec;
}

/*
 * One query through rs.  0 with *h over the answer (whatever its rcode),
 * or -1 when no answer came (timeout, network error, garbage).
 */
static int
dns_ask(res_state rs, const char *name, ns_type type, unsigned char *ans,
    int anssz, ns_msg *h)
{
	unsigned char q[NS_PACKETSZ];
	int qlen, len;

	qlen = res_nmkquery(rs, ns_o_query, name, ns_c_in, type, NULL, 0,
	    NULL, q, sizeof(q));
	if (qlen < 0)
		return -1;
	len = res_nsend(rs, q, qlen, ans, anssz);
	if (len < 0 || len > anssz || ns_initparse(ans, len, h) < 0)
		return -1;
	return 0;
}

/* RFC 2308: the SOA's TTL, at most its minimum field. */
static unsigned
negative_ttl(ns_msg *h)
{
	int i, n = ns_msg_count(*h, ns_s_ns);
	ns_rr rr;

	for (i = 0; i < n; i++) {
		unsigned ttl, min;

		if (ns_parserr(h, ns_s_ns, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) != ns_t_soa || ns_rr_rdlen(rr) < 20)
			continue;
		ttl = ns_rr_ttl(rr);
		min = ns_get32(ns_rr_rdata(rr) + ns_rr_rdlen(rr) - 4);
		return ttl < min ? ttl : min;
	}
	return DNSBL_NEG_TTL_DEFAULT;
}

/* The first TXT record of the answer, printable ASCII only, into reason. */
static void
txt_reason(ns_msg *h, char *reason, size_t rsz)
{
	int i, n = ns_msg_count(*h, ns_s_an);
	size_t k = 0;
	ns_rr rr;

	reason[0] = '\0';
	for (i = 0; i < n; i++) {
		const unsigned char *p, *end;

		if (ns_parserr(h, ns_s_an, i, &rr) < 0)
			return;
		if (ns_rr_type(rr) != ns_t_txt)
			continue;
		p = ns_rr_rdata(rr);
		end = p + ns_rr_rdlen(rr);
		while (p < end && k + 1 < rsz) {
			size_t l = *p++;

			if (l > (size_t)(end - p))
				l = (size_t)(end - p);
			for (; l > 0 && k + 1 < rsz; l--, p++)
				reason[k++] = *p >= 0x20 && *p < 0x7f ?
				    (char)*p : '?';
			p += l;
		}
		reason[k] = '\0';
		return;
	}
}

/*
 * Ask zone about ip.  Fills o (listed, timed_out, reason) and returns
 * the TTL to cache it for.
 */
static unsigned
dnsbl_lookup(res_state rs, const char *zone, const struct ipaddr *ip,
    struct dnsbl_outcome *o)
{
	unsigned char *ans;
	char name[DNSBL_NAME_MAX + 1];
	unsigned ttl = 0;
	int i, n, rcode, have_ttl = 0;
	ns_msg h;
	ns_rr rr;

	memset(o, 0, sizeof(*o));
	strlcpy_checked(o->zone, zone, sizeof(o->zone));
	if (qname_ip(ip, zone, name, sizeof(name)) < 0)
		return 0;		/* too long to ask: not listed */
	if ((ans = malloc(DNSBL_ANSWER_MAX)) == NULL) {
		o->timed_out = 1;
		return 0;
	}
	if (dns_ask(rs, name, ns_t_a, ans, DNSBL_ANSWER_MAX, &h) < 0) {
		o->timed_out = 1;
		ttl = DNSBL_FAIL_TTL;
		goto done;
	}
	rcode = ns_msg_getflag(h, ns_f_rcode);
	if (rcode == ns_r_nxdomain) {
		ttl = negative_ttl(&h);
		goto done;
	}
	if (rcode != ns_r_noerror) {
		o->timed_out = 1;	/* SERVFAIL, REFUSED: no verdict */
		ttl = DNSBL_FAIL_TTL;
		goto done;
	}
	n = ns_msg_count(h, ns_s_an);
	for (i = 0; i < n; i++) {
		const unsigned char *a;

		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			break;
		if (ns_rr_type(rr) != ns_t_a || ns_rr_rdlen(rr) != 4)
			continue;
		a = ns_rr_rdata(rr);
		/*
		 * RFC 5782 2.1: listed is 127.0.0.0/8.  127.255.255.0/24 are
		 * the lists' error codes (Spamhaus: "query refused, use
		 * your own resolver"): no verdict, not a listing.
		 */
		if (a[0] != 127 || (a[1] == 255 && a[2] == 255))
			continue;
		o->listed = 1;
		if (!have_ttl || ns_rr_ttl(rr) < ttl)
			ttl = ns_rr_ttl(rr);
		have_ttl = 1;
	}
	if (!o->listed) {
		ttl = n > 0 ? DNSBL_NEG_TTL_DEFAULT : negative_ttl(&h);
		goto done;
	}
	if (dns_ask(rs, name, ns_t_txt, ans, DNSBL_ANSWER_MAX, &h) == 0 &&
	    ns_msg_getflag(h, ns_f_rcode) == ns_r_noerror)
		txt_reason(&h, o->reason, sizeof(o->reason));
done:
	free(ans);
	return ttl;
}

int
policy_dnsbl_check(const char *zones, const struct sockaddr *client,
    struct dnsbl_outcome *out)
{
	struct __res_state rs;
	struct ipaddr ip;
	const char *p = zones != NULL ? zones : "";
	int rs_ready = 0;

	memset(out, 0, sizeof(*out));
	if (ipaddr_from(client, &ip) < 0)
		return -1;
	while (*p != '\0') {
		struct dnsbl_outcome o;
		char z[DNSBL_NAME_MAX + 1];
		size_t len;
		long long now;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (len == 0)
			break;
		if (zone_norm(p, len, z, sizeof(z)) < 0) {
			p += len;
			continue;	/* not a zone name: cannot list */
		}
		p += len;
		now = now_sec();
		if (!cache_get(z, &ip, now, &o)) {
			unsigned ttl;

			if (!rs_ready) {
				memset(&rs, 0, sizeof(rs));
				if (res_ninit(&rs) < 0) {
					out->timed_out++;
					if (out->zone[0] == '\0')
						strlcpy_checked(out->zone, z,
						    sizeof(out->zone));
					continue;
				}
				if (rs.retrans > DNSBL_RETRANS_MAX)
					rs.retrans = DNSBL_RETRANS_MAX;
				if (rs.retry > DNSBL_RETRY_MAX)
					rs.retry = DNSBL_RETRY_MAX;
				rs_ready = 1;
			}
			ttl = dnsbl_lookup(&rs, z, &ip, &o);
			cache_put(z, &ip, now, ttl, &o);
		}
		if (o.timed_out) {
			out->timed_out++;
			if (out->zone[0] == '\0')
				strlcpy_checked(out->zone, z, sizeof(out->zone));
		}
		if (o.listed) {
			out->listed = 1;
			strlcpy_checked(out->zone, z, sizeof(out->zone));
			strlcpy_checked(out->reason, o.reason,
			    sizeof(out->reason));
			break;
		}
	}
	if (rs_ready)
		res_nclose(&rs);
	return 0;
}

/* ---- CIDR lists ---- */

/* "addr[/bits]" of n bytes.  0, or -1 when it is not one. */
static int
cidr_parse(const char *s, size_t n, struct ipaddr *net, unsigned *bits)
{
	char a[INET6_ADDRSTRLEN + 8];
	const char *slash;
	unsigned max, v = 0;
	size_t alen;

	if (n == 0 || n >= sizeof(a))
		return -1;
	memcpy(a, s, n);
	a[n] = '\0';
	slash = strchr(a, '/');
	alen = slash != NULL ? (size_t)(slash - a) : n;
	a[alen] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, a, net->b) == 1) {
		net->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, a, net->b) == 1) {
		net->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	if (slash == NULL) {
		*bits = max;
	} else {
		const char *d = slash + 1;

		if (*d == '\0' || strlen(d) > 3)
			return -1;
		for (; *d != '\0'; d++) {
			if (*d < '0' || *d > '9')
				return -1;
			v = v * 10 + (unsigned)(*d - '0');
		}
		if (v > max)
			return -1;
		*bits = v;
	}
	/* ::ffff:a.b.c.d/96+n is the IPv4 network a.b.c.d/n */
	if (net->family == AF_INET6 && *bits >= 96 &&
	    IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(void *)net->b)) {
		memmove(net->b, net->b + 12, 4);
		memset(net->b + 4, 0, 12);
		net->family = AF_INET;
		*bits -= 96;
	}
	return 0;
}

static int
prefix_equal(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ b[full]) & (0xff00u >> rest) & 0xff) == 0;
}

int
policy_cidr_match(const char *cidrs, const struct sockaddr *client)
{
	struct ipaddr ip, net;
	const char *p = cidrs != NULL ? cidrs : "";
	unsigned bits;

	if (ipaddr_from(client, &ip) < 0)
		return 0;
	while (*p != '\0') {
		size_t len;

		p += strspn(p, " \t,");
		len = strcspn(p, " \t,");
		if (len == 0)
			break;
		if (cidr_parse(p, len, &net, &bits) == 0 &&
		    net.family == ip.family && prefix_equal(ip.b, net.b, bits))
			return 1;
		p += len;
	}
	return 0;
}
