/*
 * policy_dkim.c - verifying the DKIM signatures of mail from outside
 * (RFC 6376) with libopendkim, each signature judged on its own and
 * given the RFC 8601 result the Authentication-Results header reports.
 *
 * One verifying DKIM_LIB, made once (pthread_once) and then only read,
 * is shared by the pool threads; each message gets its own handle, and
 * its allocations are freed together after dkim_free() as dkim_sign.c
 * does (struct dkim_arena).  Keys come from DNS through the resolver
 * glue below, not libopendkim's own: 2.11 shares one res_state between
 * all threads of a DKIM_LIB and reports NXDOMAIN (no key: permerror) as
 * a failed query (temperror).  Everything taken from the message (d=,
 * s=) is copied bounded and never trusted: the header writer sanitizes
 * it.  Nothing here logs or touches the database.
 */
#include "policy.h"
#include "dkim_sign.h"

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/param.h>

#include <dkim.h>

/* Body bytes converted to CRLF and handed over at a time. */
#define CHUNK_SIZE (64 * 1024)
/*
 * A header beyond these is not verified (result "policy"): libopendkim
 * matches every h= entry of every signature against the whole header
 * list, so a header of a hundred thousand fields would cost seconds.
 * Real mail stays far below (a long list message: ~100 fields).
 */
#define MAX_FIELDS 1000
#define MAX_HEADER (1024 * 1024)

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static DKIM_LIB *lib;

/* ---- resolver glue ------------------------------------------------- */

/*
 * libopendkim starts a query, waits for it and cancels (frees) it; our
 * query is synchronous, so start does the work and the handle only
 * carries the answer length to waitreply.  The resolver state is per
 * query: threads never share one.
 */
struct dns_answer {
	size_t len;
};

/* Any non-NULL value: libopendkim then never makes its shared resolver. */
static int dns_service;

static int
dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
    size_t buflen, void **qh)
{
	struct __res_state rs;
	unsigned char q[NS_PACKETSZ];
	struct dns_answer *a;
	HEADER *h = (HEADER *)buf;
	int n, r = -1;

	if (buflen < HFIXEDSZ)
		return DKIM_DNS_ERROR;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0) {
		res_nclose(&rs);
		return DKIM_DNS_ERROR;
	}
	n = res_nmkquery(&rs, ns_o_query, (const char *)query, ns_c_in, type,
	    NULL, 0, NULL, q, sizeof(q));
	if (n > 0)
		r = res_nsend(&rs, q, n, buf, (int)(buflen > 65535 ? 65535 :
		    buflen));
	res_nclose(&rs);
	/* no answer in time, or none at all: a temporary error */
	if (r < HFIXEDSZ)
		return DKIM_DNS_ERROR;
	/*
	 * NXDOMAIN and NOERROR go to libopendkim (no key / the key or no
	 * TXT); SERVFAIL, REFUSED and the like are temporary.
	 */
	if (h->rcode != ns_r_noerror && h->rcode != ns_r_nxdomain)
		return DKIM_DNS_ERROR;
	if ((a = malloc(sizeof(*a))) == NULL)
		return DKIM_DNS_ERROR;
	/* glibc returns the full length of an answer that did not fit */
	a->len = (size_t)r > buflen ? buflen : (size_t)r;
	*qh = a;
	return DKIM_DNS_SUCCESS;
}

static int
dns_waitreply(void *srv, void *qh, struct timeval *to, size_t *bytes,
    int *error, int *dnssec)
{
	struct dns_answer *a = qh;

	if (bytes != NULL)
		*bytes = a->len;
	if (error != NULL)
		*error = 0;
	if (dnssec != NULL)
		*dnssec = DKIM_DNSSEC_UNKNOWN;
	return DKIM_DNS_SUCCESS;
}

static int
dns_cancel(void *srv, void *qh)
{
	free(qh);
	return 0;
}

/* ---- the library --------------------------------------------------- */

static void
lib_create(void)
{
	unsigned int flags = DKIM_LIBFLAGS_BADSIGHANDLES;
	DKIM_LIB *l;

	if ((l = dkim_init(dkim_arena_malloc, dkim_arena_free)) == NULL)
		return;
	/*
	 * BADSIGHANDLES: a signature whose tag list does not even parse
	 * is listed too (as "neutral") instead of being dropped silently.
	 */
	if (dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
	    sizeof(flags)) != DKIM_STAT_OK) {
		dkim_close(l);
		return;
	}
	(void)dkim_dns_set_query_service(l, &dns_service);
	dkim_dns_set_query_start(l, dns_start);
	dkim_dns_set_query_waitreply(l, dns_waitreply);
	dkim_dns_set_query_cancel(l, dns_cancel);
	dkim_dns_set_init(l, NULL);
	dkim_dns_set_close(l, NULL);
	lib = l;
}

int
policy_dkim_set_query_file(const char *path)
{
	dkim_query_t q = path != NULL ? DKIM_QUERY_FILE : DKIM_QUERY_UNKNOWN;
	char info[MAXPATHLEN];

	pthread_once(&lib_once, lib_create);
	if (lib == NULL || strlcpy_checked(info, path != NULL ? path : "",
	    sizeof(info)) < 0)
		return -1;
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &q,
	    sizeof(q)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO, info,
	    strlen(info) + 1) != DKIM_STAT_OK)
		return -1;
	return 0;
}

/* ---- results ------------------------------------------------------- */

const char *
dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_RES_NONE:
		return "none";
	case DKIM_RES_PASS:
		return "pass";
	case DKIM_RES_FAIL:
		return "fail";
	case DKIM_RES_NEUTRAL:
		return "neutral";
	case DKIM_RES_TEMPERROR:
		return "temperror";
	case DKIM_RES_PERMERROR:
		return "permerror";
	case DKIM_RES_POLICY:
		return "policy";
	}
	return "temperror";
}

/*
 * The RFC 8601 result of one signature after dkim_eom().  fail: the
 * signature or the body hash does not match; temperror: the key could
 * not be fetched (DNS timeout, SERVFAIL); permerror: there is no usable
 * key; policy: a key we refuse (too small); neutral: the signature
 * itself is malformed, expired or uses what we do not support.
 */
static enum dkim_result
judge(DKIM_SIGINFO *sig, const char **why)
{
	unsigned int flags = dkim_sig_getflags(sig);
	int err = dkim_sig_geterror(sig);

	switch (err) {
	case DKIM_SIGERROR_OK:
	case DKIM_SIGERROR_UNKNOWN:
	case DKIM_SIGERROR_BADSIG:
		if ((flags & DKIM_SIGFLAG_PROCESSED) == 0 &&
		    err != DKIM_SIGERROR_BADSIG) {
			*why = "not verified";
			return DKIM_RES_TEMPERROR;
		}
		if (dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH) {
			*why = "body hash mismatch";
			return DKIM_RES_FAIL;
		}
		if ((flags & DKIM_SIGFLAG_PASSED) == 0 ||
		    err == DKIM_SIGERROR_BADSIG) {
			*why = "signature mismatch";
			return DKIM_RES_FAIL;
		}
		if (dkim_sig_getbh(sig) != DKIM_SIGBH_MATCH) {
			*why = "body not verified";
			return DKIM_RES_TEMPERROR;
		}
		*why = "";
		return DKIM_RES_PASS;
	case DKIM_SIGERROR_KEYFAIL:
		*why = "key query failed";
		return DKIM_RES_TEMPERROR;
	case DKIM_SIGERROR_NOKEY:
		*why = "no key";
		return DKIM_RES_PERMERROR;
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_SUBDOMAIN:
		*why = dkim_sig_geterrorstr(err);
		return DKIM_RES_PERMERROR;
	case DKIM_SIGERROR_KEYTOOSMALL:
	case DKIM_SIGERROR_MBSFAILED:
		*why = dkim_sig_geterrorstr(err);
		return DKIM_RES_POLICY;
	default:
		*why = dkim_sig_geterrorstr(err);
		return DKIM_RES_NEUTRAL;
	}
}

static void
set_sig(struct dkim_sig_outcome *o, enum dkim_result r, const char *domain,
    const char *selector, const char *why)
{
	/* too long to be real: cut, the header writer sanitizes anyway */
	o->result = r;
	(void)strlcpy_checked(o->domain, domain != NULL ? domain : "",
	    sizeof(o->domain));
	(void)strlcpy_checked(o->selector, selector != NULL ? selector : "",
	    sizeof(o->selector));
	(void)strlcpy_checked(o->reason, why != NULL ? why : "",
	    sizeof(o->reason));
}

static void
set_internal(struct dkim_outcome *out, const char *why)
{
	memset(out, 0, sizeof(*out));
	out->nsigs = 1;
	set_sig(&out->sig[0], DKIM_RES_TEMPERROR, "", "", why);
}

/* ---- the message --------------------------------------------------- */

struct field {
	const char *p;		/* first byte of the field */
	size_t len;		/* up to and without its last line end */
};

/*
 * The next header field at *pos: its first line and every continuation
 * line.  0 at the empty line that ends the header (*pos then points
 * after it) or at the end of msg (header without body).
 */
static int
next_field(const char *msg, size_t len, size_t *pos, struct field *f)
{
	size_t i = *pos, end;

	if (i >= len)
		return 0;
	if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len &&
	    msg[i + 1] == '\n')) {
		*pos = i + (msg[i] == '\n' ? 1 : 2);
		return 0;
	}
	f->p = msg + i;
	for (;;) {
		const char *nl = memchr(msg + i, '\n', len - i);

		if (nl == NULL) {
			end = len;
			i = len;
			break;
		}
		end = (size_t)(nl - msg);
		i = end + 1;
		if (i >= len || (msg[i] != ' ' && msg[i] != '\t'))
			break;
	}
	if (end > (size_t)(f->p - msg) && msg[end - 1] == '\r')
		end--;
	f->len = end - (size_t)(f->p - msg);
	*pos = i;
	return 1;
}

static int
is_signature(const struct field *f)
{
	size_t n = sizeof(DKIM_SIGNHEADER) - 1, i;

	if (f->len <= n || strncasecmp(f->p, DKIM_SIGNHEADER, n) != 0)
		return 0;
	for (i = n; i < f->len && (f->p[i] == ' ' || f->p[i] == '\t'); i++)
		;
	return i < f->len && f->p[i] == ':';
}

/* field with every bare LF made CRLF, as it went over the wire */
static int
crlf_field(const struct field *f, struct buf *b)
{
	size_t i;

	buf_reset(b);
	for (i = 0; i < f->len; i++) {
		if (f->p[i] == '\n' && (i == 0 || f->p[i - 1] != '\r') &&
		    buf_putc(b, '\r') < 0)
			return -1;
		if (buf_putc(b, f->p[i]) < 0)
			return -1;
	}
	return 0;
}

/*
 * The value of tag name in a DKIM-Signature field, white space removed,
 * for the signatures of a header too large to verify.
 */
static void
sig_tag(const struct field *f, const char *name, char *out, size_t outsz)
{
	const char *p = memchr(f->p, ':', f->len), *end = f->p + f->len;
	size_t nl = strlen(name), n;

	out[0] = '\0';
	while (p != NULL && p < end) {
		const char *t = p + 1, *semi, *eq;

		semi = memchr(t, ';', (size_t)(end - t));
		if (semi == NULL)
			semi = end;
		while (t < semi && strchr(" \t\r\n", *t) != NULL)
			t++;
		eq = memchr(t, '=', (size_t)(semi - t));
		if (eq != NULL && (size_t)(eq - t) >= nl &&
		    strncmp(t, name, nl) == 0 &&
		    strspn(t + nl, " \t\r\n") == (size_t)(eq - t) - nl) {
			for (n = 0, t = eq + 1; t < semi && n + 1 < outsz; t++)
				if (strchr(" \t\r\n", *t) == NULL)
					out[n++] = *t;
			out[n] = '\0';
			return;
		}
		p = semi;
	}
}

/* Too many fields to verify: each signature (up to the limit) "policy". */
static void
too_large(const char *msg, size_t len, struct dkim_outcome *out)
{
	char d[sizeof(out->sig[0].domain)], s[sizeof(out->sig[0].selector)];
	struct field f;
	size_t pos = 0;

	memset(out, 0, sizeof(*out));
	while (next_field(msg, len, &pos, &f) &&
	    out->nsigs < POLICY_DKIM_MAX_SIGS) {
		if (!is_signature(&f))
			continue;
		sig_tag(&f, "d", d, sizeof(d));
		sig_tag(&f, "s", s, sizeof(s));
		set_sig(&out->sig[out->nsigs++], DKIM_RES_POLICY, d, s,
		    "header too large to verify");
	}
}

/*
 * Hand the header to libopendkim field by field, without the
 * DKIM-Signature fields past the first POLICY_DKIM_MAX_SIGS: those are
 * never parsed, hashed nor looked up.  (A signature among the first
 * that covers a later one then fails; signing other signatures is rare
 * and not worth unbounded work.)  *body is set to the body's offset.
 * 1: fed; 0: the header is too large to verify; -1: libopendkim failed.
 */
static int
feed_header(DKIM *d, const char *msg, size_t len, size_t *body)
{
	struct field f;
	struct buf b;
	size_t pos = 0, nfields = 0, nsigs = 0;
	DKIM_STAT st;
	int r = 1;

	buf_init(&b, MAX_HEADER);
	while (next_field(msg, len, &pos, &f)) {
		if (++nfields > MAX_FIELDS || pos > MAX_HEADER) {
			r = 0;
			break;
		}
		if (is_signature(&f) && ++nsigs > POLICY_DKIM_MAX_SIGS)
			continue;
		if (crlf_field(&f, &b) < 0) {
			r = 0;
			break;
		}
		if (b.len == 0)
			continue;
		st = dkim_header(d, (unsigned char *)b.data, b.len);
		/* a malformed field (or signature) is left out, not fatal */
		if (st != DKIM_STAT_OK && st != DKIM_STAT_SYNTAX) {
			r = -1;
			break;
		}
	}
	buf_free(&b);
	*body = pos;
	return r;
}

/* The body as CRLF lines, CHUNK_SIZE bytes at a time. */
static DKIM_STAT
feed_body(DKIM *d, const char *p, size_t len)
{
	unsigned char *chunk;
	size_t i, n = 0;
	DKIM_STAT st = DKIM_STAT_OK;

	if (len == 0)
		return DKIM_STAT_OK;
	if ((chunk = malloc(CHUNK_SIZE)) == NULL)
		return DKIM_STAT_NORESOURCE;
	for (i = 0; i < len && st == DKIM_STAT_OK; i++) {
		if (n + 2 > CHUNK_SIZE) {
			st = dkim_body(d, chunk, n);
			n = 0;
		}
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			chunk[n++] = '\r';
		chunk[n++] = (unsigned char)p[i];
	}
	if (st == DKIM_STAT_OK && n > 0)
		st = dkim_body(d, chunk, n);
	free(chunk);
	return st;
}

/* Every signature libopendkim listed, judged, into out. */
static void
collect(DKIM *d, struct dkim_outcome *out)
{
	DKIM_SIGINFO **sigs = NULL;
	const char *why;
	enum dkim_result r;
	int i, n = 0;

	if (dkim_getsiglist(d, &sigs, &n) != DKIM_STAT_OK || sigs == NULL)
		n = 0;
	for (i = 0; i < n && out->nsigs < POLICY_DKIM_MAX_SIGS; i++) {
		if (dkim_sig_getflags(sigs[i]) & DKIM_SIGFLAG_IGNORE)
			continue;
		r = judge(sigs[i], &why);
		set_sig(&out->sig[out->nsigs++], r,
		    (const char *)dkim_sig_getdomain(sigs[i]),
		    (const char *)dkim_sig_getselector(sigs[i]), why);
	}
}

int
policy_dkim_verify(const char *msg, size_t len, struct dkim_outcome *out)
{
	struct dkim_arena arena = { NULL, 0, 0 };
	DKIM *d = NULL;
	DKIM_STAT st;
	size_t body = 0;
	int r = -1, fed;

	memset(out, 0, sizeof(*out));
	pthread_once(&lib_once, lib_create);
	if (lib == NULL) {
		set_internal(out, "DKIM library unavailable");
		return -1;
	}
	d = dkim_verify(lib, (const unsigned char *)"buzon", &arena, &st);
	if (d == NULL) {
		set_internal(out, "out of memory");
		goto done;
	}
	if ((fed = feed_header(d, msg, len, &body)) <= 0) {
		if (fed == 0) {
			too_large(msg, len, out);
			r = 0;
		} else
			set_internal(out, "header not accepted");
		goto done;
	}
	st = dkim_eoh(d);
	if (st == DKIM_STAT_NOSIG) {
		r = 0;			/* unsigned: nsigs 0, "none" */
		goto done;
	}
	if (st == DKIM_STAT_OK) {
		st = feed_body(d, msg + body, len - body);
		if (st == DKIM_STAT_OK)
			st = dkim_eom(d, NULL);
	}
	if (st == DKIM_STAT_NORESOURCE || st == DKIM_STAT_INTERNAL) {
		set_internal(out, "verification failed");
		goto done;
	}
	/*
	 * Anything else (a bad signature, a missing key, a header
	 * libopendkim refuses) is in the per-signature errors.
	 */
	collect(d, out);
	if (out->nsigs == 0 && st != DKIM_STAT_OK) {
		/* signed, but nothing could even be listed */
		out->nsigs = 1;
		set_sig(&out->sig[0], DKIM_RES_PERMERROR, "", "",
		    dkim_getresultstr(st));
	}
	r = 0;
done:
	if (d != NULL)
		dkim_free(d);
	dkim_arena_release(&arena);
	return r;
}
