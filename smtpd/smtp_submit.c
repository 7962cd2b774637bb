/*
 * smtp_submit.c - what changes when an authenticated user submits mail
 * (port 587/465): the header is held back while DATA arrives, cleaned
 * (no Bcc) and only then spooled; at the end of DATA its From: must name
 * an address the user owns, and a missing Message-ID or Date is added.
 * The Received header names the authenticated user, never the client's
 * address or HELO name (often a private LAN address).
 *
 * Never rewrites the body: only header fields are dropped or added.
 */
#include "smtpd.h"
#include "smtp_header.h"
#include "../common/log.h"

#include <string.h>
#include <sys/random.h>
#include <unistd.h>

int
smtp_listener_submits(const struct smtp_session *s)
{
	return s->kind == LISTEN_SUBMISSION || s->kind == LISTEN_SUBMISSIONS;
}

/*
 * The complete header is in tx->header: spool it without Bcc (mail from
 * outside: as smtp_policy.c filters it).
 */
static int
smtp_submit_header_end(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct buf out;
	int r;

	if (s->user[0] == '\0')
		return smtp_policy_header_end(s);
	tx->header_done = 1;
	buf_init(&out, SMTP_SUBMIT_HEADER_MAX + 1);
	r = smtp_header_filter(tx->header.data ? tx->header.data : "",
	    tx->header.len, &out, &tx->hinfo);
	if (r == 0 && out.len > 0 && spool_append(&tx->body, out.data,
	    out.len) < 0)
		r = -1;
	buf_free(&out);
	if (r < 0)
		tx->spool_error = 1;
	return r;
}

/*
 * The DATA scanner's output for a submission, or for mail from outside
 * when the policy checks it: header bytes up to and
 * including the blank line are collected, the rest goes to the spool.
 * -1 stops the scanner's appending (too big header, spool error).
 */
int
smtp_submit_spool(struct smtp_session *s, const char *p, size_t n)
{
	struct smtp_tx *tx = s->tx;
	int line_start = tx->header.len == 0 ||
	    tx->header.data[tx->header.len - 1] == '\n';
	size_t i, end = 0;

	if (tx->header_done)
		goto body;
	for (i = 0; i < n && end == 0; i++) {
		if (p[i] == '\n') {
			if (line_start)
				end = i + 1;
			line_start = 1;
		} else {
			line_start = 0;
		}
	}
	if (buf_append(&tx->header, p, end ? end : n) < 0) {
		tx->header_too_big = 1;
		return -1;
	}
	if (end == 0)
		return 0;
	if (smtp_submit_header_end(s) < 0)
		return -1;
	p += end;
	n -= end;
body:
	if (n > 0 && spool_append(&tx->body, p, n) < 0) {
		tx->spool_error = 1;
		return -1;
	}
	return 0;
}

static int
smtp_make_message_id(struct smtp_session *s, char *out, size_t outsz)
{
	unsigned char r[16];
	char hex[sizeof(r) * 2 + 1];
	size_t i;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -1;
	for (i = 0; i < sizeof(r); i++)
		snprintf_checked(hex + 2 * i, 3, "%02x", r[i]);
	return snprintf_checked(out, outsz, "<%s.%s@%s>", s->tx->id, hex,
	    s->d->cfg.hostname);
}

/* Refuse the header From: unless it is one address the user owns. */
static int
smtp_submit_check_from(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	struct mailaddr from;
	char shown[ADDR_MAX], allowed[512];
	const char *why = NULL;
	int r;

	if (tx->hinfo.nfrom == 0)
		why = "the header has no From: field";
	else if (tx->hinfo.nfrom > 1)
		why = "more than one From: field";
	else switch (smtp_header_from_parse(tx->hinfo.from,
	    tx->hinfo.from_len, &from)) {
	case SMTP_FROM_OK:
		break;
	case SMTP_FROM_MANY:
		why = "more than one address in From:";
		break;
	default:
		why = "cannot read the address in From:";
		break;
	}
	if (why != NULL) {
		log_info("sid=%s ip=%s id=%s user=%s refused: %s", s->c->sid,
		    s->c->ip, tx->id, s->user, why);
		smtp_reply(s, 553, "5.7.1 Message refused: %s", why);
		return -1;
	}
	addr_format(&from, shown, sizeof(shown));
	r = smtp_sender_owned(s, &from);
	if (r < 0) {
		smtp_reply(s, 451, "4.3.0 Temporary lookup failure, try again "
		    "later");
		return -1;
	}
	if (r == 0) {
		char esc[ADDR_MAX * 2];

		smtp_sender_allowed(s, allowed, sizeof(allowed));
		log_info("sid=%s ip=%s id=%s user=%s refused: header From <%s> "
		    "not owned", s->c->sid, s->c->ip, tx->id, s->user,
		    log_escape(esc, sizeof(esc), shown, strlen(shown)));
		smtp_reply(s, 553, "5.7.1 <%s>: Header From address rejected: "
		    "not owned by user %s; you may send as: %s", shown, s->user,
		    allowed);
		return -1;
	}
	return 0;
}

/*
 * End of DATA of a submission, after the size and syntax checks: 0 to
 * go on with delivery, -1 when a refusal was sent (nothing is stored).
 */
int
smtp_submit_finish(struct smtp_session *s)
{
	struct smtp_tx *tx = s->tx;
	char v[CONFIG_STR_MAX + 64];

	if (tx->header_too_big) {
		log_info("sid=%s ip=%s id=%s refused: header over %u bytes",
		    s->c->sid, s->c->ip, tx->id, SMTP_SUBMIT_HEADER_MAX);
		smtp_reply(s, 552, "5.3.4 Message header exceeds %u bytes",
		    SMTP_SUBMIT_HEADER_MAX);
		return -1;
	}
	/* A message without a blank line is all header. */
	if (!tx->header_done && smtp_submit_header_end(s) < 0) {
		smtp_reply(s, 451, "4.3.0 Error: local storage problem, try "
		    "again later");
		return -1;
	}
	if (smtp_submit_check_from(s) < 0)
		return -1;
	if (!tx->hinfo.has_message_id &&
	    (smtp_make_message_id(s, v, sizeof(v)) < 0 ||
	    buf_printf(&tx->received, "Message-ID: %s\n", v) < 0))
		goto fail;
	if (!tx->hinfo.has_date &&
	    (rfc5322_date(v, sizeof(v), time(NULL)) < 0 ||
	    buf_printf(&tx->received, "Date: %s\n", v) < 0))
		goto fail;
	return 0;
fail:
	log_error("sid=%s ip=%s id=%s cannot add Message-ID/Date", s->c->sid,
	    s->c->ip, tx->id);
	smtp_reply(s, 451, "4.3.0 Internal error, try again later");
	return -1;
}
