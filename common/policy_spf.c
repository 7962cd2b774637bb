/*
 * policy_spf.c - SPF (RFC 7208) with libspf2: is the client address
 * allowed to send mail for the MAIL FROM domain, or, for a null sender,
 * for the HELO name (RFC 7208 2.4: postmaster@HELO)?
 *
 * Threads.  One SPF_server_t is made on first use and shared: during a
 * check libspf2 only reads it (its limits, its default explanation), and
 * its resolver layer ("resolv") keeps the res_state per thread (a
 * pthread key; Debian's build has res_ninit).  Everything that changes
 * during a check lives in the SPF_request_t/SPF_response_t of that
 * check and in the thread-local lookup counter below.  No libspf2 cache
 * layer: the system resolver caches, and answers would outlive zone
 * changes that the tests (and admins fixing their DNS) make.
 *
 * What libspf2 gets wrong is done here:
 *   - it passes every loopback client without looking at DNS ("localhost
 *     is always allowed"); we evaluate every address the same way, so a
 *     local client on 127.0.0.x gets the verdict its domain publishes
 *     (whether local clients are checked at all is smtpd's choice);
 *   - it counts the 10 DNS-querying terms (RFC 7208 4.6.4) per record,
 *     so includes each get 10 more; our DNS layer (count_*) fetches the
 *     records itself and counts the terms over the whole check, and the
 *     11th makes the result permerror;
 *   - it mangles exp= texts that contain spaces (1.2.10), and an
 *     explanation is text from the sender's DNS in our reply: exp= is
 *     never looked up, the explanation is ours.
 *
 * This file never logs a decision and never talks to the client.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <spf2/spf.h>
#include <spf2/spf_dns_resolv.h>

#include "policy.h"
#include "addr.h"
#include "buf.h"
#include "log.h"

#define SPF_LOOKUP_LIMIT 10		/* RFC 7208 4.6.4 */
#define SPF_HOSTS_PER_TERM 10		/* MX/PTR names looked up per term */

/*
 * Lookups of one check, for the RFC 7208 4.6.4 limit.  libspf2 makes
 * them in the order of the record:
 *   - each SPF record fetch (count_get_spf) after the first is an
 *     include: or redirect=;
 *   - an MX or PTR query is an mx or ptr term; the A/AAAA queries for
 *     the names in its answer are part of that term;
 *   - any other A/AAAA query is an a or exists term.
 */
struct spf_count {
	int terms;
	int records;
	int owed;		/* A/AAAA lookups due to the last MX/PTR answer */
	int over;		/* the limit was passed */
};

static __thread struct spf_count *spf_counter;

static pthread_once_t spf_once = PTHREAD_ONCE_INIT;
static SPF_server_t *spf_server;

static SPF_dns_rr_t *
count_lookup(SPF_dns_server_t *layer, const char *domain, ns_type type,
    int should_cache)
{
	struct spf_count *c = spf_counter;
	SPF_dns_rr_t *rr;

	/* Records come through count_get_spf: a TXT query here is exp=. */
	if (type == ns_t_txt)
		return SPF_dns_rr_new_init(layer, domain, type, 0, NO_DATA);
	if (c != NULL) {
		switch (type) {
		case ns_t_mx:
		case ns_t_ptr:
			c->terms++;
			c->owed = 0;
			break;
		case ns_t_a:
		case ns_t_aaaa:
			if (c->owed > 0)
				c->owed--;
			else
				c->terms++;
			break;
		default:
			c->owed = 0;
			break;
		}
		if (c->terms > SPF_LOOKUP_LIMIT)
			c->over = 1;
		if (c->over)	/* stop asking: the verdict is permerror */
			return SPF_dns_rr_new_init(layer, domain, type, 0,
			    HOST_NOT_FOUND);
	}
	rr = SPF_dns_lookup(layer->layer_below, domain, type, should_cache);
	if (c != NULL && rr != NULL && (type == ns_t_mx || type == ns_t_ptr))
		c->owed = rr->num_rr < SPF_HOSTS_PER_TERM ? rr->num_rr :
		    SPF_HOSTS_PER_TERM;
	return rr;
}

static int
is_spf_record(const char *txt)
{
	return strncasecmp(txt, "v=spf1", 6) == 0 &&
	    (txt[6] == '\0' || txt[6] == ' ');
}

/*
 * SPF_server_get_record() as libspf2 does it, for every record of the
 * check (the domain's, each include: and redirect=), counted.  TXT only
 * (RFC 7208 3.1: type SPF is gone).  Sets the response's result for
 * "none" and "several records"; returns the error libspf2 expects.
 */
static SPF_errcode_t
count_get_spf(SPF_server_t *srv, SPF_request_t *req, SPF_response_t *resp,
    SPF_record_t **recp)
{
	struct spf_count *c = spf_counter;
	const char *domain = req->cur_dom;
	SPF_dns_rr_t *rr;
	SPF_errcode_t err;
	int i, found = 0, idx = 0;

	*recp = NULL;
	if (c != NULL) {
		if (++c->records > 1)
			c->terms++;
		c->owed = 0;
		if (c->terms > SPF_LOOKUP_LIMIT)
			c->over = 1;
		if (c->over)
			return SPF_response_add_error(resp, SPF_E_BIG_DNS,
			    "more than %d DNS lookups", SPF_LOOKUP_LIMIT);
	}
	rr = SPF_dns_lookup(srv->resolver->layer_below, domain, ns_t_txt, 1);
	switch (rr->herrno) {
	case NETDB_SUCCESS:
		break;
	case HOST_NOT_FOUND:
	case NO_DATA:
		SPF_dns_rr_free(rr);
		resp->result = SPF_RESULT_NONE;
		resp->reason = SPF_REASON_FAILURE;
		return SPF_response_add_error(resp, SPF_E_NOT_SPF,
		    "no SPF record for '%s'", domain);
	default:
		SPF_dns_rr_free(rr);
		return SPF_response_add_error(resp, SPF_E_DNS_ERROR,
		    "DNS failure for '%s'", domain);
	}
	for (i = 0; i < rr->num_rr; i++)
		if (rr->rr_type == ns_t_txt && is_spf_record(rr->rr[i]->txt) &&
		    found++ == 0)
			idx = i;
	if (found == 0) {
		SPF_dns_rr_free(rr);
		resp->result = SPF_RESULT_NONE;
		resp->reason = SPF_REASON_FAILURE;
		return SPF_response_add_error(resp, SPF_E_NOT_SPF,
		    "no SPF record for '%s'", domain);
	}
	if (found > 1) {
		SPF_dns_rr_free(rr);
		resp->result = SPF_RESULT_PERMERROR;
		resp->reason = SPF_REASON_FAILURE;
		resp->err = SPF_E_MULTIPLE_RECORDS;
		return SPF_response_add_error(resp, SPF_E_MULTIPLE_RECORDS,
		    "several SPF records for '%s'", domain);
	}
	err = SPF_record_compile(srv, resp, recp, rr->rr[idx]->txt);
	SPF_dns_rr_free(rr);
	if (err != SPF_E_SUCCESS && *recp != NULL) {
		SPF_record_free(*recp);
		*recp = NULL;
	}
	return err;
}

static void
count_free(SPF_dns_server_t *layer)
{
	free(layer);
}

static void
spf_warning(const char *file, int line, const char *msg)
{
	log_debug("libspf2: %s", msg);
}

static void
spf_init(void)
{
	SPF_dns_server_t *resolv, *layer;

	/*
	 * libspf2 prints its debug and info lines on stdout/stderr by
	 * default, some of them unconditionally ("unexpected rr type"):
	 * mailadm --json must print nothing but JSON.
	 */
	SPF_debug_handler = NULL;
	SPF_info_handler = NULL;
	SPF_warning_handler = spf_warning;

	if ((resolv = SPF_dns_resolv_new(NULL, NULL, 0)) == NULL)
		return;
	if ((layer = calloc(1, sizeof(*layer))) == NULL) {
		SPF_dns_free(resolv);
		return;
	}
	layer->destroy = count_free;
	layer->lookup = count_lookup;
	layer->get_spf = count_get_spf;
	layer->layer_below = resolv;
	layer->name = "buzon-count";
	if ((spf_server = SPF_server_new_dns(layer, 0)) == NULL)
		SPF_dns_free(layer);
}

const char *
spf_result_name(enum spf_result r)
{
	switch (r) {
	case SPF_RES_NONE:
		return "none";
	case SPF_RES_NEUTRAL:
		return "neutral";
	case SPF_RES_PASS:
		return "pass";
	case SPF_RES_FAIL:
		return "fail";
	case SPF_RES_SOFTFAIL:
		return "softfail";
	case SPF_RES_TEMPERROR:
		return "temperror";
	case SPF_RES_PERMERROR:
		return "permerror";
	}
	return "permerror";
}

/* The first error libspf2 recorded that says why a record is broken. */
static const char *
record_error(SPF_response_t *resp)
{
	int i, n = SPF_response_messages(resp);

	for (i = 0; i < n; i++) {
		SPF_error_t *e = SPF_response_message(resp, i);

		if (e == NULL || !SPF_error_errorp(e))
			continue;
		switch (SPF_error_code(e)) {
		case SPF_E_SUCCESS:
		case SPF_E_NOT_SPF:
		case SPF_E_DNS_ERROR:
		case SPF_E_NO_MEMORY:
			continue;
		default:
			return SPF_error_message(e) != NULL ?
			    SPF_error_message(e) : SPF_strerror(SPF_error_code(e));
		}
	}
	return NULL;
}

static enum spf_result
map_result(SPF_result_t r)
{
	switch (r) {
	case SPF_RESULT_PASS:
		return SPF_RES_PASS;
	case SPF_RESULT_FAIL:
		return SPF_RES_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return SPF_RES_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:
		return SPF_RES_NEUTRAL;
	case SPF_RESULT_NONE:
		return SPF_RES_NONE;
	case SPF_RESULT_PERMERROR:
		return SPF_RES_PERMERROR;
	case SPF_RESULT_TEMPERROR:
	case SPF_RESULT_INVALID:
		break;
	}
	return SPF_RES_TEMPERROR;
}

/*
 * The checked domain: MAIL FROM's, or HELO's for <>.  RFC 7208 4.3: a
 * name that is not a multi-label domain (an address literal, a bare
 * word) has no SPF: "".
 */
static void
checked_domain(const char *helo, const char *sender, char *d, size_t dsz,
    int *helo_identity)
{
	const char *at, *dom;

	*helo_identity = 0;
	d[0] = '\0';
	if (sender != NULL && sender[0] != '\0') {
		at = strrchr(sender, '@');
		dom = at != NULL ? at + 1 : sender;
	} else {
		*helo_identity = 1;
		dom = helo != NULL ? helo : "";
	}
	if (dom[0] == '[' || strchr(dom, '.') == NULL ||
	    !addr_domain_valid(dom, strlen(dom), 1) ||
	    strlcpy_checked(d, dom, dsz) < 0) {
		d[0] = '\0';
		return;
	}
	while (d[0] != '\0' && d[strlen(d) - 1] == '.')
		d[strlen(d) - 1] = '\0';
	addr_lower(d);
}

/* The explanation of the result: ours, never the domain's exp= text. */
static void
describe(struct spf_outcome *out, const char *ip, const char *why)
{
	const char *d = out->domain;

	switch (out->result) {
	case SPF_RES_PASS:
		snprintf_checked(out->explanation, sizeof(out->explanation),
		    "%s designates %s as permitted sender", d, ip);
		break;
	case SPF_RES_FAIL:
	case SPF_RES_SOFTFAIL:
		snprintf_checked(out->explanation, sizeof(out->explanation),
		    "%s does not designate %s as permitted sender", d, ip);
		break;
	case SPF_RES_NEUTRAL:
		snprintf_checked(out->explanation, sizeof(out->explanation),
		    "%s neither permits nor denies %s", d, ip);
		break;
	case SPF_RES_NONE:
		if (d[0] == '\0')
			snprintf_checked(out->explanation,
			    sizeof(out->explanation), "no domain to check");
		else
			snprintf_checked(out->explanation,
			    sizeof(out->explanation), "%s publishes no SPF "
			    "record", d);
		break;
	case SPF_RES_TEMPERROR:
		snprintf_checked(out->explanation, sizeof(out->explanation),
		    "DNS lookup for the SPF record of %s failed%s%s", d,
		    why != NULL ? ": " : "", why != NULL ? why : "");
		break;
	case SPF_RES_PERMERROR:
		snprintf_checked(out->explanation, sizeof(out->explanation),
		    "the SPF record of %s cannot be evaluated%s%s", d,
		    why != NULL ? ": " : "", why != NULL ? why : "");
		break;
	}
}

int
policy_spf_check(const struct sockaddr *client, const char *helo,
    const char *sender, struct spf_outcome *out)
{
	SPF_request_t *req = NULL;
	SPF_response_t *resp = NULL;
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;
	struct spf_count count;
	char ip[INET6_ADDRSTRLEN];
	const char *why = NULL;
	struct in_addr a4;
	int family, rc = 0;

	memset(out, 0, sizeof(*out));
	out->result = SPF_RES_TEMPERROR;
	checked_domain(helo, sender, out->domain, sizeof(out->domain),
	    &out->helo_identity);

	if (client == NULL)
		return -1;
	if (client->sa_family == AF_INET) {
		a4 = ((const struct sockaddr_in *)client)->sin_addr;
		family = AF_INET;
	} else if (client->sa_family == AF_INET6) {
		const struct in6_addr *a6 =
		    &((const struct sockaddr_in6 *)client)->sin6_addr;

		/* RFC 7208 5.6: an IPv4-mapped client is an IPv4 client */
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			memcpy(&a4, a6->s6_addr + 12, 4);
			family = AF_INET;
		} else {
			family = AF_INET6;
		}
	} else {
		return -1;
	}
	if (family == AF_INET)
		inet_ntop(AF_INET, &a4, ip, sizeof(ip));
	else
		inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)client)->sin6_addr, ip,
		    sizeof(ip));

	if (out->domain[0] == '\0') {
		out->result = SPF_RES_NONE;
		describe(out, ip, NULL);
		return 0;
	}

	pthread_once(&spf_once, spf_init);
	if (spf_server == NULL ||
	    (req = SPF_request_new(spf_server)) == NULL) {
		describe(out, ip, "cannot start libspf2");
		return -1;
	}
	if (family == AF_INET)
		err = SPF_request_set_ipv4(req, a4);
	else
		err = SPF_request_set_ipv6(req,
		    ((const struct sockaddr_in6 *)client)->sin6_addr);
	/* the HELO name also feeds the %{h} macro of a MAIL FROM check */
	if (err == SPF_E_SUCCESS && helo != NULL && helo[0] != '\0')
		err = SPF_request_set_helo_dom(req, out->helo_identity ?
		    out->domain : helo);
	if (err == SPF_E_SUCCESS)
		err = SPF_request_set_env_from(req, out->helo_identity ?
		    "" : sender);
	if (err != SPF_E_SUCCESS || req->env_from_dp == NULL ||
	    (resp = SPF_response_new(req)) == NULL) {
		describe(out, ip, "cannot start libspf2");
		rc = -1;
		goto done;
	}

	/*
	 * SPF_request_query_mailfrom() without its loopback free ride:
	 * fetch the record, then interpret it.
	 */
	memset(&count, 0, sizeof(count));
	spf_counter = &count;
	req->cur_dom = req->env_from_dp;
	err = SPF_server_get_record(spf_server, req, resp, &rec);
	if (err == SPF_E_SUCCESS && rec != NULL) {
		resp->spf_record_exp = rec;
		SPF_record_interpret(rec, req, resp, 0);
		SPF_record_free(rec);
		rec = NULL;
		out->result = map_result(SPF_response_result(resp));
		if (out->result == SPF_RES_PERMERROR)
			why = SPF_strerror(SPF_response_errcode(resp));
		else if (out->result == SPF_RES_TEMPERROR)
			why = "a DNS lookup did not answer";
	} else {
		if (rec != NULL)
			SPF_record_free(rec);
		rec = NULL;
		if (SPF_response_result(resp) == SPF_RESULT_PERMERROR) {
			/* several records (RFC 7208 4.5) */
			out->result = SPF_RES_PERMERROR;
			why = "more than one SPF record";
		} else if (err == SPF_E_DNS_ERROR) {
			out->result = SPF_RES_TEMPERROR;
			why = "the domain's name servers did not answer";
		} else if (err == SPF_E_NOT_SPF) {
			out->result = SPF_RES_NONE;
		} else {
			out->result = SPF_RES_PERMERROR;	/* syntax */
			if ((why = record_error(resp)) == NULL)
				why = SPF_strerror(err);
		}
	}
	spf_counter = NULL;
	if (count.over) {
		out->result = SPF_RES_PERMERROR;
		why = "more than 10 DNS lookups";
	}
	describe(out, ip, why);
done:
	spf_counter = NULL;
	if (resp != NULL)
		SPF_response_free(resp);
	SPF_request_free(req);
	return rc;
}
