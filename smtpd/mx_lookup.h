/*
 * mx_lookup.h - where mail for a domain goes (RFC 5321 5.1): its MX hosts
 * in preference order, the domain itself when it has no MX (the implicit
 * MX), nowhere for a null MX (RFC 7505), and the addresses of one host.
 *
 * Blocking (the resolver's own timeouts bound it); called from the queue
 * runner's delivery threads, each with its own resolver state.
 */
#ifndef BUZON_MX_LOOKUP_H
#define BUZON_MX_LOOKUP_H

#include <stddef.h>
#include <sys/socket.h>

#define MX_HOSTS_MAX 16
#define MX_ADDRS_MAX 16
#define MX_NAME_MAX 256

enum mx_status {
	MX_OK,
	MX_TEMP,		/* DNS failure: try again later */
	MX_NODOMAIN,		/* NXDOMAIN, or no MX and no address */
	MX_NULLMX,		/* RFC 7505: the domain accepts no mail */
	MX_BAD,			/* answer we cannot use (e.g. MX to an IP) */
};

struct mx_host {
	char name[MX_NAME_MAX];
	unsigned pref;
};

struct mx_route {
	struct mx_host hosts[MX_HOSTS_MAX];
	size_t nhosts;
	int implicit;		/* no MX: hosts[0] is the domain itself */
};

/*
 * Parse a DNS answer to an MX query (pure, fuzzable): hosts sorted by
 * preference, equal preferences shuffled with the seed (load sharing),
 * at most MX_HOSTS_MAX of them.  MX_OK, MX_NULLMX (a single MX whose
 * exchange is the root), MX_NODOMAIN (no MX records in the answer: the
 * caller falls back to the domain's addresses) or MX_BAD.
 */
enum mx_status mx_parse_answer(const unsigned char *msg, size_t len,
    unsigned seed, struct mx_route *out);

/* The route for a domain; err says why when not MX_OK. */
enum mx_status mx_lookup(const char *domain, struct mx_route *out,
    char *err, size_t errlen);

/*
 * Addresses of host (a name or an IP literal) for port, restricted to
 * family (AF_UNSPEC, AF_INET or AF_INET6).  MX_OK with *n > 0, MX_TEMP,
 * or MX_NODOMAIN (the name has no address of that family).
 */
enum mx_status mx_addresses(const char *host, unsigned port, int family,
    struct sockaddr_storage *out, socklen_t *lens, size_t max, size_t *n,
    char *err, size_t errlen);

#endif
