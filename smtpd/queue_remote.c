/*
 * queue_remote.c - one group of recipients (same domain, or everything
 * for the relayhost; same envelope sender) sent over SMTP: find the hosts,
 * try them in preference order and each of their addresses, and record
 * each recipient's answer.
 *
 * A host that cannot be reached, greets with an error or refuses MAIL
 * temporarily only moves us on to the next one (RFC 5321 5.1); once a
 * transaction has run, its per-recipient answers are final for this
 * attempt.
 */
#include "queue_runner.h"
#include "smtpc.h"
#include "../common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define SMTP_PORT 25
/*
 * Addresses tried for one group in one attempt (Postfix's
 * smtp_mx_address_limit): a domain whose many MX addresses are all
 * black holes must not hold a delivery thread for hours.
 */
#define ADDRESS_LIMIT 5

static int
family_wanted(const struct config *cfg)
{
	switch (cfg->outbound_ip_family) {
	case IP_FAMILY_IPV4:
		return AF_INET;
	case IP_FAMILY_IPV6:
		return AF_INET6;
	default:
		return AF_UNSPEC;
	}
}

/* The configured source address for dst's family; 0 when none. */
static socklen_t
source_for(const struct config *cfg, const struct sockaddr_storage *dst,
    struct sockaddr_storage *src)
{
	memset(src, 0, sizeof(*src));
	if (dst->ss_family == AF_INET && cfg->outbound_ip[0] != '\0') {
		struct sockaddr_in *s4 = (struct sockaddr_in *)src;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, cfg->outbound_ip, &s4->sin_addr) == 1)
			return sizeof(*s4);
	}
	if (dst->ss_family == AF_INET6 && cfg->outbound_ip6[0] != '\0') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)src;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, cfg->outbound_ip6, &s6->sin6_addr) == 1)
			return sizeof(*s6);
	}
	return 0;
}

static void
addr_text(const struct sockaddr_storage *ss, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	}
	snprintf_checked(out, outsz, "[%s]:%u", ip, port);
}

static void
set_all(struct attempt *a, const size_t *which, size_t n, int result,
    const char *status, const char *diag, const char *mta)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct attempt_rcpt *ar = &a->ar[which[i]];

		ar->result = result;
		strlcpy_checked(ar->status, status, sizeof(ar->status));
		strlcpy_checked(ar->diag, diag, sizeof(ar->diag));
		strlcpy_checked(ar->remote_mta, mta, sizeof(ar->remote_mta));
	}
	if (result == AR_PENDING && diag != a->last_error)
		strlcpy_checked(a->last_error, diag, sizeof(a->last_error));
}

/* A status for a reply without an enhanced code (RFC 3463 defaults). */
static void
status_of(const struct smtpc_reply *r, char *out, size_t outsz)
{
	if (r->enhanced[0] != '\0')
		strlcpy_checked(out, r->enhanced, outsz);
	else
		snprintf_checked(out, outsz, "%d.0.0", r->code / 100);
}

static void
log_result(struct attempt *a, const struct attempt_rcpt *ar,
    const char *relay)
{
	static const char *const names[] = { "deferred", "sent", "bounced" };

	log_info("queue: id=%s to=<%s> relay=%s status=%s (%s)", a->env.id,
	    a->env.rcpts[ar->idx].address, relay, names[ar->result],
	    ar->diag);
}

/*
 * One SMTP session: 1 when the transaction ran (every recipient of the
 * group now has its answer), 0 to try the next address or host.
 */
static int
try_address(struct attempt *a, const size_t *which, size_t n,
    const char *host, const struct sockaddr_storage *dst, socklen_t dstlen)
{
	struct runner *r = a->w->r;
	struct smtpc_opts o;
	struct smtpc_msg m;
	struct smtpc_reply rep, mail_r, data_r, *rcpt_r = NULL;
	struct sockaddr_storage src;
	socklen_t srclen = source_for(&r->cfg, dst, &src);
	const char **rcpts = NULL;
	struct smtpc *c = NULL;
	char relay[MX_NAME_MAX + 64], where[64];
	size_t i;
	int ret = 0, st, utf8 = 0, data_sent = 0;

	addr_text(dst, where, sizeof(where));
	snprintf_checked(relay, sizeof(relay), "%s%s", host, where);
	memset(&o, 0, sizeof(o));
	o.helo = r->cfg.hostname;
	o.sni = host;
	o.ssl_ctx = r->ssl;
	o.tls = SMTPC_TLS_OPPORTUNISTIC;
	if (r->relay_host[0] != '\0' && r->cfg.relayhost_user[0] != '\0') {
		/*
		 * A password only ever goes over TLS, and (unless the admin
		 * said otherwise) only to a server whose certificate proves
		 * it is the relayhost: else anyone on the path collects it.
		 */
		o.tls = SMTPC_TLS_REQUIRED;
		o.tls_verify = r->cfg.relayhost_tls_verify;
		o.auth_user = r->cfg.relayhost_user;
		o.auth_pass = r->relay_pass;
	}
	st = smtpc_open((const struct sockaddr *)dst, dstlen,
	    srclen ? (const struct sockaddr *)&src : NULL, srclen, &o, &c, &rep);
	if (st != SMTPC_OK && o.tls == SMTPC_TLS_OPPORTUNISTIC &&
	    strcmp(rep.enhanced, "4.7.5") == 0) {
		/* RFC 7435: a failed handshake is no reason to send nothing */
		log_info("queue: id=%s relay=%s %s; trying again without TLS",
		    a->env.id, relay, rep.text);
		o.tls = SMTPC_TLS_NONE;
		st = smtpc_open((const struct sockaddr *)dst, dstlen,
		    srclen ? (const struct sockaddr *)&src : NULL, srclen, &o,
		    &c, &rep);
	}
	if (st != SMTPC_OK) {
		snprintf_checked(a->last_error, sizeof(a->last_error),
		    "%s: %s", relay, rep.text);
		return 0;
	}
	rcpts = calloc(n, sizeof(*rcpts));
	rcpt_r = calloc(n, sizeof(*rcpt_r));
	if (rcpts == NULL || rcpt_r == NULL) {
		snprintf_checked(a->last_error, sizeof(a->last_error),
		    "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *addr = a->env.rcpts[a->ar[which[i]].idx].address;

		rcpts[i] = addr;
		for (; *addr != '\0'; addr++)
			utf8 |= (*addr & 0x80) != 0;
	}
	for (i = 0; a->ar[which[0]].mail_from[i] != '\0'; i++)
		utf8 |= (a->ar[which[0]].mail_from[i] & 0x80) != 0;
	memset(&m, 0, sizeof(m));
	m.sender = a->ar[which[0]].mail_from;
	m.rcpts = rcpts;
	m.nrcpts = n;
	m.prefix = a->sig.data;
	m.prefix_len = a->sig.len;
	m.fd = a->fd;
	m.size = (off_t)a->len;
	m.need_smtputf8 = utf8;
	m.eightbit = a->eightbit;
	memset(&mail_r, 0, sizeof(mail_r));
	memset(&data_r, 0, sizeof(data_r));
	st = smtpc_send(c, &m, &mail_r, rcpt_r, &data_r);
	for (i = 0; i < n && !data_sent; i++)
		data_sent = mail_r.code / 100 == 2 && rcpt_r[i].code / 100 == 2;
	if (st == SMTPC_TEMP && !data_sent) {
		/* Nothing can have been delivered: the next host may do. */
		const struct smtpc_reply *rr = mail_r.text[0] ? &mail_r :
		    data_r.text[0] ? &data_r : &rep;

		snprintf_checked(a->last_error, sizeof(a->last_error),
		    "%s: %s", relay, rr->text[0] ? rr->text : "connection lost");
		goto out;
	}
	/*
	 * The transaction ran, or broke after the data went out (then the
	 * server may have it, and another host now would likely send it
	 * twice): each recipient's answer stands for this attempt.
	 */
	for (i = 0; i < n; i++) {
		struct attempt_rcpt *ar = &a->ar[which[i]];
		const struct smtpc_reply *rr = smtpc_rcpt_result(&mail_r,
		    rcpt_r, &data_r, i);

		strlcpy_checked(ar->remote_mta, host, sizeof(ar->remote_mta));
		strlcpy_checked(ar->diag, rr->text, sizeof(ar->diag));
		status_of(rr, ar->status, sizeof(ar->status));
		if (rr->code / 100 == 2)
			ar->result = AR_SENT;
		else if (rr->code / 100 == 5)
			ar->result = AR_BOUNCED;
		else {
			ar->result = AR_PENDING;
			snprintf_checked(a->last_error, sizeof(a->last_error),
			    "%s: %s", relay, rr->text[0] ? rr->text :
			    "no answer");
		}
		log_result(a, ar, relay);
	}
	ret = 1;
out:
	smtpc_close(&c);
	free(rcpts);
	free(rcpt_r);
	return ret;
}

static int
try_host(struct attempt *a, const size_t *which, size_t n, const char *host,
    unsigned port, unsigned *budget)
{
	struct sockaddr_storage addrs[MX_ADDRS_MAX];
	socklen_t lens[MX_ADDRS_MAX];
	char err[512];
	size_t naddr, i;

	if (mx_addresses(host, port, family_wanted(&a->w->r->cfg), addrs,
	    lens, MX_ADDRS_MAX, &naddr, err, sizeof(err)) != MX_OK) {
		strlcpy_checked(a->last_error, err, sizeof(a->last_error));
		return 0;
	}
	for (i = 0; i < naddr && *budget > 0; i++) {
		if (a->w->r->stopping)
			return 1;
		(*budget)--;
		if (try_address(a, which, n, host, &addrs[i], lens[i]))
			return 1;
	}
	return 0;
}

void
queue_remote(struct attempt *a, const size_t *which, size_t n,
    const char *domain)
{
	struct runner *r = a->w->r;
	struct mx_route route;
	char err[512], diag[600];
	unsigned budget = ADDRESS_LIMIT;
	size_t i;

	if (n == 0)
		return;
	if (r->relay_host[0] != '\0') {
		if (!try_host(a, which, n, r->relay_host, r->relay_port,
		    &budget))
			set_all(a, which, n, AR_PENDING, "4.4.1",
			    a->last_error, r->relay_host);
		return;
	}
	switch (mx_lookup(domain, &route, err, sizeof(err))) {
	case MX_OK:
		break;
	case MX_NULLMX:
		/* RFC 7505 4.2 */
		snprintf_checked(diag, sizeof(diag), "556 5.1.10 %s", err);
		set_all(a, which, n, AR_BOUNCED, "5.1.10", diag, "");
		for (i = 0; i < n; i++)
			log_result(a, &a->ar[which[i]], "none");
		return;
	case MX_NODOMAIN:
		snprintf_checked(diag, sizeof(diag), "550 5.1.2 %s", err);
		set_all(a, which, n, AR_BOUNCED, "5.1.2", diag, "");
		for (i = 0; i < n; i++)
			log_result(a, &a->ar[which[i]], "none");
		return;
	default:
		set_all(a, which, n, AR_PENDING, "4.4.3", err, "");
		return;
	}
	for (i = 0; i < route.nhosts && budget > 0; i++) {
		if (r->stopping)
			return;
		if (try_host(a, which, n, route.hosts[i].name, SMTP_PORT,
		    &budget))
			return;
	}
	set_all(a, which, n, AR_PENDING, "4.4.1", a->last_error[0] ?
	    a->last_error : "no MX host answered", "");
	for (i = 0; i < n; i++)
		log_result(a, &a->ar[which[i]], "none");
}
