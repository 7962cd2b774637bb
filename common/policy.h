/*
 * policy.h - judging mail from outside (DESIGN.md "Policy"): DNSBL at
 * connect, SPF for the envelope sender, DKIM verification of every
 * signature, DMARC on the header From domain, and the one
 * Authentication-Results header that reports them.
 *
 * Every function that can touch DNS blocks (the libraries' resolvers and
 * their timeouts bound it) and is thread-safe: smtpd calls them on its
 * thread pool, never on the event loop.  The pure parts (header
 * building) take no context.
 */
#ifndef BUZON_POLICY_H
#define BUZON_POLICY_H

#include <stddef.h>
#include <sys/socket.h>

#include "addr.h"
#include "buf.h"
#include "config.h"

#define POLICY_DKIM_MAX_SIGS 8		/* signatures judged per message */
#define POLICY_REASON_MAX 256

/* ---- SPF (RFC 7208), policy_spf.c ---------------------------------- */

enum spf_result {
	SPF_RES_NONE, SPF_RES_NEUTRAL, SPF_RES_PASS, SPF_RES_FAIL,
	SPF_RES_SOFTFAIL, SPF_RES_TEMPERROR, SPF_RES_PERMERROR,
};

struct spf_outcome {
	enum spf_result result;
	char domain[256];		/* the domain checked (MAIL FROM's or HELO's) */
	int helo_identity;		/* 1 when MAIL FROM was <> and HELO was checked */
	char explanation[POLICY_REASON_MAX];	/* for a 550 text / the header comment */
};

/*
 * Check the client address for sender (MAIL FROM address, "" for <>)
 * with helo as the HELO/EHLO name (RFC 7208 2.3: the HELO identity is
 * checked when the sender is <>).  Fills out; 0, or -1 when the check
 * could not even start (out->result is then SPF_RES_TEMPERROR).
 */
int policy_spf_check(const struct sockaddr *client, const char *helo,
    const char *sender, struct spf_outcome *out);
const char *spf_result_name(enum spf_result r);	/* "pass", "fail" ... */

/* ---- DKIM verification (RFC 6376), policy_dkim.c ------------------- */

enum dkim_result {
	DKIM_RES_NONE, DKIM_RES_PASS, DKIM_RES_FAIL, DKIM_RES_NEUTRAL,
	DKIM_RES_TEMPERROR, DKIM_RES_PERMERROR, DKIM_RES_POLICY,
};

struct dkim_sig_outcome {
	enum dkim_result result;
	char domain[256];		/* d= */
	char selector[64];		/* s= */
	char reason[POLICY_REASON_MAX];	/* "body hash mismatch", "no key" ... */
};

struct dkim_outcome {
	struct dkim_sig_outcome sig[POLICY_DKIM_MAX_SIGS];
	size_t nsigs;			/* 0: result "none" */
};

/*
 * Verify every DKIM-Signature of msg (the whole message as received,
 * LF line ends, without our own trace headers), keys from DNS; one
 * outcome per signature, in header order.  Only the first
 * POLICY_DKIM_MAX_SIGS signature fields are looked at; a header of more
 * than 1000 fields is not verified (each signature: "policy").
 * 0, or -1 on an internal failure (out then says temperror).
 */
int policy_dkim_verify(const char *msg, size_t len, struct dkim_outcome *out);
const char *dkim_result_name(enum dkim_result r);
/*
 * For tests only: keys from the file at path (libopendkim's query file,
 * one "SELECTOR._domainkey.DOMAIN v=DKIM1; k=rsa; p=..." per line)
 * instead of DNS; NULL goes back to DNS.  Not safe while another thread
 * verifies: call it before.  0 or -1.
 */
int policy_dkim_set_query_file(const char *path);

/* ---- DMARC (RFC 7489), policy_dmarc.c ------------------------------ */

enum dmarc_result {
	DMARC_RES_NONE,		/* no record: nothing to enforce */
	DMARC_RES_PASS,
	DMARC_RES_FAIL,
	DMARC_RES_TEMPERROR,
	DMARC_RES_PERMERROR,
};

enum dmarc_disposition { DMARC_DISP_NONE, DMARC_DISP_QUARANTINE,
	DMARC_DISP_REJECT };

struct dmarc_outcome {
	enum dmarc_result result;
	enum dmarc_disposition disposition;	/* after pct and sp */
	char from_domain[256];
	char policy[16];		/* the record's p= (or sp=) as published */
	int spf_aligned, dkim_aligned;
	char rua[512];			/* aggregate report address(es), "" none */
	/*
	 * The published policy as RFC 7489 aggregate reports describe it
	 * (<policy_published>; db_dmarc.c, dmarc_report.c).  Filled with
	 * the record's values, defaults applied, whenever a record was found.
	 */
	char record_domain[256];	/* where the record was found: the From
					 * domain or its organisational domain */
	char org_domain[256];		/* organisational domain of from_domain */
	char p[16];			/* p=: none | quarantine | reject */
	char sp[16];			/* sp= (p= when absent) */
	char adkim, aspf;		/* 'r' (default) or 's' */
	int pct;			/* 0..100, 100 when absent */
	int sampled_out;		/* failed, but pct let a lighter
					 * disposition apply (report reason) */
};

/*
 * DMARC for the header From domain with the SPF and DKIM results.
 * ip is the client address as text (aggregate reports).  Only an SPF
 * or DKIM pass for an aligned domain passes; a record that is not
 * v=DMARC1, or two of them, is no record (none); a DMARC1 record
 * without a usable p= is permerror (not enforced); DNS trouble is
 * temperror.  0, or -1 when the public suffix list or libopendmarc is
 * unavailable (out then says temperror).
 */
int policy_dmarc_eval(const char *from_domain, const char *ip,
    const struct spf_outcome *spf, const struct dkim_outcome *dkim,
    struct dmarc_outcome *out);
/*
 * Whether a domain (its organisational domain per the public suffix
 * list) publishes a DMARC record: 1 yes, 0 no, -1 DNS trouble.  For the
 * SPF-fail-at-RCPT decision.
 */
int policy_dmarc_published(const char *domain);
const char *dmarc_result_name(enum dmarc_result r);
/*
 * What policy_dmarc_eval() does once DNS gave it a record: record as
 * published at record_domain (the From domain, or its organisational
 * domain when the From domain has none: then sp= applies).  For tests
 * (no DNS); 0 or -1.
 */
int policy_dmarc_eval_record(const char *record, const char *record_domain,
    const char *from_domain, const struct spf_outcome *spf,
    const struct dkim_outcome *dkim, struct dmarc_outcome *out);
/*
 * The organisational domain of domain (RFC 7489 3.2: the public suffix
 * list's registrable domain, lower case; a public suffix itself is its
 * own) into out.  0, or -1 for a malformed domain or no suffix list.
 */
int policy_org_domain(const char *domain, char *out, size_t outsz);

/* ---- DNSBL, policy_dnsbl.c ----------------------------------------- */

struct dnsbl_outcome {
	int listed;			/* 1: zone says so */
	char zone[256];			/* the listing zone; when none lists the
					 * client, the first that did not answer */
	char reason[POLICY_REASON_MAX];	/* the zone's TXT, if any */
	int timed_out;			/* zones that did not answer (timeout,
					 * SERVFAIL): counted as not listed */
};

/*
 * Query each zone of the space-separated list for the client address
 * (reversed IPv4 octets / IPv6 nibbles, RFC 5782; an IPv4-mapped IPv6
 * client is queried as IPv4), stopping at the first zone that lists it.
 * A zone that does not answer in time counts as not listed.  Results are
 * cached for their TTL (thread-safe cache; at most an hour; a zone that
 * did not answer is asked again after 30 s).  An A record in
 * 127.255.255.0/24 is a list's error code, not a listing.  0, out->listed
 * says; -1 when client is not an IPv4/IPv6 address.
 */
int policy_dnsbl_check(const char *zones, const struct sockaddr *client,
    struct dnsbl_outcome *out);
/*
 * 1 if the address is in one of the space-separated CIDRs ("10.0.0.0/8",
 * "2001:db8::/32", a bare address is a /32 or /128); an IPv4-mapped IPv6
 * client matches IPv4 networks.  Entries that do not parse are skipped.
 */
int policy_cidr_match(const char *cidrs, const struct sockaddr *client);
/*
 * The pure parts, exported for tests and for mailadm check's PTR names:
 * the RFC 5782 query name of client under zone, "4.3.2.1.ZONE" or 32
 * reversed nibbles for IPv6 (zone "in-addr.arpa" / "ip6.arpa" gives the
 * PTR name).  0, or -1 when the family is unknown or it does not fit.
 */
int policy_dnsbl_qname(const struct sockaddr *client, const char *zone,
    char *out, size_t outsz);
/*
 * The answer cache with an explicit clock in seconds (policy_dnsbl_check
 * uses CLOCK_MONOTONIC).  get: 1 and *out filled when (zone, client) has
 * an entry younger than its TTL, else 0.  put: ttl 0 stores nothing.
 * clear: for tests.
 */
int policy_dnsbl_cache_get(const char *zone, const struct sockaddr *client,
    long long now, struct dnsbl_outcome *out);
void policy_dnsbl_cache_put(const char *zone, const struct sockaddr *client,
    long long now, unsigned ttl, const struct dnsbl_outcome *o);
void policy_dnsbl_cache_clear(void);

/* ---- Authentication-Results (RFC 8601), policy_header.c (pure) ------ */

/*
 * "Authentication-Results: authserv-id; spf=... smtp.mailfrom=...;
 * dkim=... header.d=... header.s=...; dmarc=... (p=...) header.from=..."
 * folded, LF line ends, appended to out (unchanged on error).  Any of
 * spf/dkim/dmarc may be NULL (not checked); mailfrom may be NULL or ""
 * (the SPF domain is shown).  A value from outside (d=, s=, addresses,
 * domains) that is not a plain domain/selector/dot-atom address is left
 * out rather than printed.  0, or -1 (out full, or authserv_id is no
 * host name).
 */
int policy_auth_results(const char *authserv_id,
    const struct spf_outcome *spf, const char *mailfrom,
    const struct dkim_outcome *dkim, const struct dmarc_outcome *dmarc,
    struct buf *out);
/*
 * Copy the header block [hdr, hdr+len) to out without the
 * Authentication-Results fields whose authserv-id is ours (case-
 * insensitive, after any CFWS; also those whose authserv-id cannot be
 * read), continuation lines included.  Counts the From: fields into
 * *nfrom.  An empty line ends the header: it and what follows are
 * copied as they are.  0, or -1 when out is full.
 */
int policy_header_filter(const char *hdr, size_t len,
    const char *authserv_id, struct buf *out, unsigned *nfrom);

#endif
