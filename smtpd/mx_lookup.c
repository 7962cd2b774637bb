/*
 * mx_lookup.c - MX resolution for the queue runner with the system
 * resolver (res_nquery: /etc/resolv.conf, its timeouts and TCP fallback).
 *
 * The answer parser is separate and pure so that it can be fuzzed; the
 * resolver state is per call, so delivery threads never share one.
 */
#include "mx_lookup.h"
#include "../common/buf.h"

#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MX_ANSWER_MAX 65536

/* xorshift: only to spread load over equal preferences, not security */
static unsigned
next_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void
sort_hosts(struct mx_route *r, unsigned seed)
{
	struct mx_host tmp;
	size_t i, j, k;

	for (i = 1; i < r->nhosts; i++) {
		tmp = r->hosts[i];
		for (j = i; j > 0 && r->hosts[j - 1].pref > tmp.pref; j--)
			r->hosts[j] = r->hosts[j - 1];
		r->hosts[j] = tmp;
	}
	if (seed == 0)
		seed = 0x9e3779b9u;
	for (i = 0; i < r->nhosts; i = j) {
		for (j = i + 1; j < r->nhosts &&
		    r->hosts[j].pref == r->hosts[i].pref; j++)
			;
		for (k = j - 1; k > i; k--) {	/* Fisher-Yates in [i, j) */
			size_t m = i + next_rand(&seed) % (k - i + 1);

			tmp = r->hosts[k];
			r->hosts[k] = r->hosts[m];
			r->hosts[m] = tmp;
		}
	}
}

enum mx_status
mx_parse_answer(const unsigned char *msg, size_t len, unsigned seed,
    struct mx_route *out)
{
	char name[NS_MAXDNAME];
	const unsigned char *rd;
	int i, n, null_mx = 0, nmx = 0;
	ns_msg h;
	ns_rr rr;

	memset(out, 0, sizeof(*out));
	if (len > MX_ANSWER_MAX || ns_initparse(msg, (int)len, &h) < 0)
		return MX_BAD;
	n = ns_msg_count(h, ns_s_an);
	for (i = 0; i < n; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return MX_BAD;
		if (ns_rr_type(rr) != ns_t_mx || ns_rr_class(rr) != ns_c_in)
			continue;	/* CNAMEs on the way */
		if (ns_rr_rdlen(rr) < 3)
			return MX_BAD;
		rd = ns_rr_rdata(rr);
		if (ns_name_uncompress(ns_msg_base(h), ns_msg_end(h), rd + 2,
		    name, sizeof(name)) < 0)
			return MX_BAD;
		nmx++;
		if (name[0] == '\0' || strcmp(name, ".") == 0) {
			null_mx = 1;
			continue;
		}
		if (out->nhosts == MX_HOSTS_MAX)
			continue;
		if (strlcpy_checked(out->hosts[out->nhosts].name, name,
		    MX_NAME_MAX) < 0)
			return MX_BAD;
		out->hosts[out->nhosts].pref = ns_get16(rd);
		out->nhosts++;
	}
	if (null_mx) {
		/* RFC 7505 3: a null MX must be alone; either way, no mail. */
		out->nhosts = 0;
		return MX_NULLMX;
	}
	if (nmx == 0)
		return MX_NODOMAIN;
	sort_hosts(out, seed);
	return MX_OK;
}

enum mx_status
mx_lookup(const char *domain, struct mx_route *out, char *err, size_t errlen)
{
	struct __res_state rs;
	unsigned char *ans;
	enum mx_status st;
	int len, herr;

	memset(out, 0, sizeof(*out));
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) < 0) {
		snprintf_checked(err, errlen, "cannot initialise the resolver");
		return MX_TEMP;
	}
	if ((ans = malloc(MX_ANSWER_MAX)) == NULL) {
		res_nclose(&rs);
		snprintf_checked(err, errlen, "out of memory");
		return MX_TEMP;
	}
	len = res_nquery(&rs, domain, ns_c_in, ns_t_mx, ans, MX_ANSWER_MAX);
	herr = rs.res_h_errno;
	res_nclose(&rs);
	if (len < 0) {
		free(ans);
		switch (herr) {
		case HOST_NOT_FOUND:
			snprintf_checked(err, errlen, "domain %s does not exist "
			    "(NXDOMAIN)", domain);
			return MX_NODOMAIN;
		case NO_DATA:
			break;		/* no MX: the implicit MX */
		default:
			snprintf_checked(err, errlen, "DNS lookup of MX for %s "
			    "failed: %s", domain, hstrerror(herr));
			return MX_TEMP;
		}
		st = MX_NODOMAIN;
	} else {
		st = mx_parse_answer(ans, (size_t)len,
		    (unsigned)random() | 1u, out);
		free(ans);
	}
	switch (st) {
	case MX_OK:
		return MX_OK;
	case MX_NULLMX:
		snprintf_checked(err, errlen, "domain %s accepts no mail "
		    "(null MX)", domain);
		return MX_NULLMX;
	case MX_NODOMAIN:
		/* RFC 5321 5.1: no MX, so the domain is its own host. */
		if (strlcpy_checked(out->hosts[0].name, domain,
		    MX_NAME_MAX) < 0) {
			snprintf_checked(err, errlen, "domain name too long");
			return MX_NODOMAIN;
		}
		out->nhosts = 1;
		out->implicit = 1;
		return MX_OK;
	default:
		snprintf_checked(err, errlen, "unusable DNS answer for the MX "
		    "of %s", domain);
		return MX_TEMP;
	}
}

enum mx_status
mx_addresses(const char *host, unsigned port, int family,
    struct sockaddr_storage *out, socklen_t *lens, size_t max, size_t *n,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	char portstr[8];
	int r;

	*n = 0;
	memset(&hints, 0, sizeof(hints));
	/* No AI_ADDRCONFIG: it ignores loopback, and mail to 127/8 is real in tests. */
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf_checked(portstr, sizeof(portstr), "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		snprintf_checked(err, errlen, "cannot find the address of %s: "
		    "%s", host, gai_strerror(r));
		return r == EAI_NONAME || r == EAI_NODATA || r == EAI_FAMILY ||
		    r == EAI_ADDRFAMILY ? MX_NODOMAIN : MX_TEMP;
	}
	for (ai = res; ai != NULL && *n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[0]))
			continue;
		memcpy(&out[*n], ai->ai_addr, ai->ai_addrlen);
		lens[*n] = ai->ai_addrlen;
		(*n)++;
	}
	freeaddrinfo(res);
	if (*n == 0) {
		snprintf_checked(err, errlen, "%s has no usable address", host);
		return MX_NODOMAIN;
	}
	return MX_OK;
}
