/*
 * adm_dns.h - what the two halves of mailadm dns share: the record set
 * and this server's addresses (adm_dns.c, which also prints), and the
 * builders of each kind of record (adm_dns_records.c).  Only those two
 * files include it.
 */
#ifndef BUZON_ADM_DNS_H
#define BUZON_ADM_DNS_H

#include <stddef.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "adm.h"

#define DNS_NAME_MAX 253
#define DNS_MAX_RECORDS 128
#define DNS_ADDRS_MAX 4		/* per family, from the interfaces */

/* How a type's data is written in a zone file. */
enum rdata_form {
	RDATA_PLAIN,		/* as is: A, AAAA */
	RDATA_HOST,		/* ends with a host name: gets a final dot */
	RDATA_TXT,		/* quoted character-strings */
};

struct rr_type {
	const char *name;
	enum rdata_form form;
};

/* One record, or with type NULL a comment alone (nothing to publish). */
struct dns_rr {
	char name[DNS_NAME_MAX + 1];
	const struct rr_type *type;
	int publish;		/* 0: goes elsewhere, printed as comment */
	struct buf value;
	struct buf comment;	/* lines separated by '\n' */
};

struct dns_set {
	struct dns_rr rr[DNS_MAX_RECORDS];
	size_t n;
};

/* The addresses of `hostname` in one family. */
struct host_addrs {
	int family;
	const char *key;	/* "public_ip", "public_ip6" */
	int configured;		/* from the key, else the interfaces */
	size_t n;
	char text[DNS_ADDRS_MAX][INET6_ADDRSTRLEN];
	struct sockaddr_storage sa[DNS_ADDRS_MAX];
};

/* What the builders share. */
struct dns_job {
	struct adm_ctx *ctx;
	const struct config *cfg;
	const char *domain;
	int host_in_zone;	/* hostname is DOMAIN or below it */
	struct host_addrs ip4, ip6;
	struct dns_set set;
};

struct dns_builder {
	const char *what;
	int (*build)(struct dns_job *j);	/* ADM_*, said */
};

/* adm_dns_records.c: in printing order. */
extern const struct dns_builder dns_builders[];
extern const size_t dns_nbuilders;

/* adm_dns.c */
/*
 * Add a record to publish (type NULL: a comment line only; the caller
 * clears publish for one that goes elsewhere) with a formatted comment.
 * NULL when the set is full or out of memory: return dns_fail_full().
 */
struct dns_rr *dns_rr_add(struct dns_set *set, const char *name,
    const char *type, const char *value, const char *comment_fmt, ...)
    __attribute__((format(printf, 5, 6)));
int dns_fail_full(void);			/* ADM_FAIL, said */
/* Where the addresses of a came from, for comments. */
const char *dns_addrs_origin(const struct host_addrs *a);

#endif
