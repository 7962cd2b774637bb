/*
 * smtp_policy.c - where smtpd applies common/policy to mail from outside
 * (smtp listeners, never an authenticated submission): DNSBL before the
 * greeting, SPF when MAIL FROM arrives (decided at RCPT), DKIM and DMARC
 * at the end of DATA, and the Authentication-Results header.
 *
 * Every check that may wait on DNS runs on the thread pool with the
 * session paused, like a delivery; the decisions are made back on the
 * loop and each is logged once with the client's address.
 */
#include "smtpd.h"
#include "../common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define JOB_SESSION(job) ((struct smtp_session *)((char *)(job) - \
	offsetof(struct smtp_session, job)))

int
smtp_policy_applies(const struct smtp_session *s)
{
	const struct config *cfg = &s->d->cfg;

	return s->kind == LISTEN_SMTP && s->user[0] == '\0' &&
	    (cfg->spf || cfg->dkim_verify || cfg->dmarc);
}

static const struct sockaddr *
peer(const struct smtp_session *s)
{
	return (const struct sockaddr *)&s->c->peer;
}

/* Pause the session and run work on the pool; done() resumes it. */
static void
run_job(struct smtp_session *s, void (*work)(struct pool_job *),
    void (*done)(struct pool_job *))
{
	s->job.work = work;
	s->job.done = done;
	s->job_running = 1;
	smtp_enter_state(s, SMTP_ST_BUSY);
	conn_pause(s->c);
	pool_submit(s->d->pool, &s->job);
}

/* After a job: 1 when the session is gone (freed here), else 0. */
static int
job_finished(struct smtp_session *s)
{
	s->job_running = 0;
	if (s->gone) {
		smtp_session_release(s);
		return 1;
	}
	return 0;
}

/* ---- DNSBL, before the greeting ---- */

static void
dnsbl_work(struct pool_job *job)
{
	struct smtp_session *s = JOB_SESSION(job);

	policy_dnsbl_check(s->d->cfg.dnsbl, peer(s), &s->dnsbl);
}

static void
dnsbl_done(struct pool_job *job)
{
	struct smtp_session *s = JOB_SESSION(job);
	struct smtpd *d = s->d;

	if (job_finished(s))
		return;
	if (s->dnsbl.listed) {
		log_info("sid=%s ip=%s listed on %s: %s", s->c->sid, s->c->ip,
		    s->dnsbl.zone, s->dnsbl.reason);
		if (d->cfg.dnsbl_at_greeting) {
			smtp_reply(s, 554, "5.7.1 Service unavailable; client "
			    "[%s] blocked using %s%s%s", s->c->ip,
			    s->dnsbl.zone, s->dnsbl.reason[0] ? "; " : "",
			    s->dnsbl.reason);
			smtp_enter_state(s, SMTP_ST_QUIT);
			conn_close(s->c);
			return;
		}
	}
	smtp_reply(s, 220, "%s ESMTP Buzon", d->cfg.hostname);
	smtp_resume_in(s, SMTP_ST_INIT);
}

/*
 * 1 when the greeting waits for the DNSBL lookup, 0 to greet now (no
 * zones, an allowed network, or a submission listener).
 */
int
smtp_policy_connect(struct smtp_session *s)
{
	const struct config *cfg = &s->d->cfg;

	if (s->kind != LISTEN_SMTP || cfg->dnsbl[0] == '\0' ||
	    (cfg->dnsbl_allow[0] != '\0' &&
	    policy_cidr_match(cfg->dnsbl_allow, peer(s)) == 1))
		return 0;
	run_job(s, dnsbl_work, dnsbl_done);
	return 1;
}

/* ---- SPF, at MAIL FROM ---- */

static void
spf_work(struct pool_job *job)
{
	struct smtp_session *s = JOB_SESSION(job);
	struct smtp_tx *tx = s->tx;

	policy_spf_check(peer(s), s->helo, tx->sender, &tx->spf);
	tx->spf_checked = 1;
	/*
	 * A failing sender whose domain publishes DMARC is judged by DMARC
	 * at the end of DATA (a DKIM pass can still carry it), not here.
	 */
	if (tx->spf.result == SPF_RES_FAIL && s->d->cfg.dmarc)
		tx->spf_dmarc = policy_dmarc_published(tx->spf.domain) == 1;
}

static void
spf_done(struct pool_job *job)
{
	struct smtp_session *s = JOB_SESSION(job);

	if (job_finished(s))
		return;
	smtp_reply(s, 250, "2.1.0 Ok");
	smtp_resume_in(s, SMTP_ST_MAIL);
}

void
smtp_policy_mail(struct smtp_session *s)
{
	run_job(s, spf_work, spf_done);
}

/*
 * RCPT: the DNSBL verdict (when it waits for RCPT; it stands even with
 * spf/dkim/dmarc off) and the SPF verdict.  Nothing applies to a
 * session that was never looked up or checked (submission).  1 when
 * answered (refused), 0 to go on.
 */
int
smtp_policy_rcpt(struct smtp_session *s, const char *shown)
{
	const struct config *cfg = &s->d->cfg;
	struct smtp_tx *tx = s->tx;

	if (s->dnsbl.listed) {
		smtp_reply(s, 554, "5.7.1 <%s>: Service unavailable; client "
		    "[%s] blocked using %s%s%s", shown, s->c->ip, s->dnsbl.zone,
		    s->dnsbl.reason[0] ? "; " : "", s->dnsbl.reason);
		return 1;
	}
	if (!tx->spf_checked)
		return 0;
	if (tx->spf.result == SPF_RES_TEMPERROR) {
		log_info("sid=%s ip=%s RCPT <%s> deferred: SPF temperror for %s",
		    s->c->sid, s->c->ip, shown, tx->spf.domain);
		smtp_reply(s, 451, "4.4.3 <%s>: SPF lookup for %s failed "
		    "temporarily, try again later", shown, tx->spf.domain);
		return 1;
	}
	if (tx->spf.result == SPF_RES_FAIL && cfg->spf_reject_fail &&
	    !tx->spf_dmarc) {
		log_info("sid=%s ip=%s reject RCPT <%s>: SPF fail for %s",
		    s->c->sid, s->c->ip, shown, tx->spf.domain);
		/* RFC 7372 3.2: 5.7.23, SPF validation failed */
		smtp_reply(s, 550, "5.7.23 <%s>: SPF check failed: %s%s%s",
		    shown, tx->spf.domain, tx->spf.explanation[0] ? ": " : "",
		    tx->spf.explanation);
		return 1;
	}
	return 0;
}

/* ---- the header, as DATA arrives ---- */

/*
 * The header of a message from outside is complete in tx->header:
 * spool it without any Authentication-Results claiming to be ours (a
 * forgery: only we write those), and note its From fields.  The
 * original stays in tx->header for DKIM.
 */
int
smtp_policy_header_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct buf out, scratch;
	unsigned nfrom = 0;
	int r;

	tx->header_done = 1;
	buf_init(&out, SMTP_SUBMIT_HEADER_MAX + 1);
	buf_init(&scratch, SMTP_SUBMIT_HEADER_MAX + 1);
	r = policy_header_filter(tx->header.data ? tx->header.data : "",
	    tx->header.len, s->d->cfg.hostname, &out, &nfrom);
	/* hinfo (From:) for DMARC; the Bcc-free copy itself is unused. */
	if (r == 0)
		r = smtp_header_filter(tx->header.data ? tx->header.data : "",
		    tx->header.len, &scratch, &tx->hinfo);
	if (r == 0 && out.len > 0 && spool_append(&tx->body, out.data,
	    out.len) < 0)
		r = -1;
	tx->body_off = out.len;
	buf_free(&out);
	buf_free(&scratch);
	if (r < 0)
		tx->spool_error = 1;
	return r;
}

/* ---- DKIM and DMARC, at the end of DATA ---- */

/* The message as received: the original header, then the body. */
static char *
message_as_received(struct smtp_tx *tx, size_t *len_r)
{
	size_t blen = (size_t)(tx->body.size - tx->body_off);
	const char *body = NULL;
	void *map = MAP_FAILED;
	char *msg;

	*len_r = 0;
	if (tx->body.fd < 0)
		body = tx->body.mem.data ? tx->body.mem.data + tx->body_off : "";
	else if (tx->body.size > 0) {
		map = mmap(NULL, (size_t)tx->body.size, PROT_READ, MAP_PRIVATE,
		    tx->body.fd, 0);
		if (map == MAP_FAILED)
			return NULL;
		body = (const char *)map + tx->body_off;
	}
	msg = malloc(tx->header.len + blen + 1);
	if (msg != NULL) {
		if (tx->header.len > 0)
			memcpy(msg, tx->header.data, tx->header.len);
		if (blen > 0)
			memcpy(msg + tx->header.len, body, blen);
		*len_r = tx->header.len + blen;
	}
	if (map != MAP_FAILED)
		munmap(map, (size_t)tx->body.size);
	return msg;
}

static void
data_end_work(struct pool_job *job)
{
	struct smtp_session *s = JOB_SESSION(job);
	const struct config *cfg = &s->d->cfg;
	struct smtp_tx *tx = s->tx;
	struct mailaddr from;
	char *msg;
	size_t len;

	if (cfg->dkim_verify || cfg->dmarc) {
		if ((msg = message_as_received(tx, &len)) != NULL) {
			policy_dkim_verify(msg, len, &tx->dkim);
			free(msg);
		} else {
			tx->dkim.nsigs = 1;
			tx->dkim.sig[0].result = DKIM_RES_TEMPERROR;
			strlcpy_checked(tx->dkim.sig[0].reason, "cannot read "
			    "the message", sizeof(tx->dkim.sig[0].reason));
		}
	}
	if (!cfg->dmarc)
		return;
	if (tx->hinfo.nfrom != 1 || smtp_header_from_parse(tx->hinfo.from,
	    tx->hinfo.from_len, &from) != SMTP_FROM_OK) {
		tx->policy_reject = 1;	/* DMARC cannot judge it */
		return;
	}
	policy_dmarc_eval(from.domain, s->c->ip, tx->spf_checked ? &tx->spf :
	    NULL, &tx->dkim, &tx->dmarc);
	/* Aggregate-report data, here on the pool thread (smtp_dmarc.c). */
	smtp_dmarc_record(s);
}

/* The Received-SPF header (RFC 7208 9.1), LF line ends. */
static int
received_spf(struct smtp_session *s, struct buf *out)
{
	const struct smtp_tx *tx = s->tx;

	return buf_printf(out, "Received-SPF: %s (%s: %s %s) client-ip=%s; "
	    "envelope-from=<%s>; helo=%s;\n", spf_result_name(tx->spf.result),
	    s->d->cfg.hostname, tx->spf.helo_identity ? "HELO name" :
	    "domain of", tx->spf.domain, s->c->ip, tx->sender,
	    s->helo[0] ? s->helo : "unknown");
}

/* Our headers go first: Authentication-Results, Received-SPF, Received. */
static int
add_headers(struct smtp_session *s)
{
	const struct config *cfg = &s->d->cfg;
	struct smtp_tx *tx = s->tx;
	struct buf h;
	int r;

	buf_init(&h, 64 * 1024);
	r = policy_auth_results(cfg->hostname,
	    tx->spf_checked ? &tx->spf : NULL, tx->sender,
	    cfg->dkim_verify || cfg->dmarc ? &tx->dkim : NULL,
	    cfg->dmarc && !tx->policy_reject ? &tx->dmarc : NULL, &h);
	if (r == 0 && tx->spf_checked)
		r = received_spf(s, &h);
	if (r == 0)
		r = buf_append(&h, tx->received.data, tx->received.len);
	if (r == 0)
		r = buf_set(&tx->received, h.data, h.len);
	buf_free(&h);
	return r;
}

static void
to_junk(struct smtp_tx *tx)
{
	size_t i;
	size_t n;

	for (i = 0; i < tx->nmbox; i++) {
		n = strlen(tx->mbox[i].dir);
		if (n + sizeof("/.Junk") <= sizeof(tx->mbox[i].dir))
			memcpy(tx->mbox[i].dir + n, "/.Junk", sizeof("/.Junk"));
	}
}

static void
log_verdict(struct smtp_session *s, const char *action)
{
	const struct smtp_tx *tx = s->tx;
	struct buf dkim;
	size_t i;

	buf_init(&dkim, 1024);
	for (i = 0; i < tx->dkim.nsigs; i++)
		buf_printf(&dkim, "%s%s(d=%s)", i ? "," : "",
		    dkim_result_name(tx->dkim.sig[i].result),
		    tx->dkim.sig[i].domain);
	log_info("sid=%s ip=%s id=%s policy from=<%s> helo=%s spf=%s dkim=%s "
	    "dmarc=%s header.from=%s p=%s action=%s", s->c->sid, s->c->ip,
	    tx->id, tx->sender, s->helo,
	    tx->spf_checked ? spf_result_name(tx->spf.result) : "off",
	    dkim.len ? buf_cstr(&dkim) : "none",
	    dmarc_result_name(tx->dmarc.result),
	    tx->dmarc.from_domain[0] ? tx->dmarc.from_domain : "-",
	    tx->dmarc.policy[0] ? tx->dmarc.policy : "-", action);
	buf_free(&dkim);
}

static void
data_end_done(struct pool_job *job)
{
	struct smtp_session *s = JOB_SESSION(job);
	struct smtp_tx *tx;

	if (job_finished(s))
		return;
	tx = s->tx;
	if (tx->policy_reject) {
		log_verdict(s, "reject (From)");
		smtp_reply(s, 550, "5.7.1 Message refused: it must have "
		    "exactly one From: header field with one address");
		goto refused;
	}
	if (tx->dmarc.result == DMARC_RES_FAIL &&
	    tx->dmarc.disposition == DMARC_DISP_REJECT) {
		log_verdict(s, "reject (DMARC)");
		smtp_reply(s, 550, "5.7.1 Message refused: DMARC policy of %s "
		    "(unauthenticated mail from that domain is rejected)",
		    tx->dmarc.from_domain);
		goto refused;
	}
	if (tx->dmarc.result == DMARC_RES_FAIL &&
	    tx->dmarc.disposition == DMARC_DISP_QUARANTINE) {
		tx->quarantine = 1;
		to_junk(tx);
	}
	log_verdict(s, tx->quarantine ? "junk" : "deliver");
	if (add_headers(s) < 0) {
		log_error("sid=%s ip=%s id=%s cannot add the policy headers",
		    s->c->sid, s->c->ip, tx->id);
		smtp_reply(s, 451, "4.3.0 Internal error, try again later");
		goto refused;
	}
	smtp_deliver_start(s);
	return;
refused:
	smtp_tx_done(s);
	smtp_resume(s);
}

void
smtp_policy_data_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;

	if (tx->header_too_big) {
		log_info("sid=%s ip=%s id=%s refused: header over %u bytes",
		    s->c->sid, s->c->ip, tx->id, SMTP_SUBMIT_HEADER_MAX);
		smtp_reply(s, 552, "5.3.4 Message header exceeds %u bytes",
		    SMTP_SUBMIT_HEADER_MAX);
		smtp_tx_done(s);
		return;
	}
	/* A message without a blank line is all header. */
	if (!tx->header_done && smtp_policy_header_end(s) < 0) {
		smtp_reply(s, 451, "4.3.0 Error: local storage problem, try "
		    "again later");
		smtp_tx_done(s);
		return;
	}
	run_job(s, data_end_work, data_end_done);
}
