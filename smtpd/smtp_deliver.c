/*
 * smtp_deliver.c - the end of DATA: decide, then hand the message to the
 * thread pool, which writes one fsync-ed Maildir copy per final mailbox
 * and one queue entry for outside recipients.  The 250 goes out only
 * from the job's completion, after everything is on disk.
 */
#include "smtpd.h"
#include "../common/log.h"
#include "../store/maildir.h"
#include "../store/queue.h"
#include "../store/quota.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static const char *
smtp_protocol_name(const struct smtp_session *s)
{
	int tls = s->c != NULL && s->c->tls == CONN_TLS_ON;

	/* RFC 3848 / RFC 6531: A for an authenticated client */
	if (s->user[0] != '\0')
		return s->tx != NULL && s->tx->mail.smtputf8 ?
		    "UTF8SMTPSA" : "ESMTPSA";
	if (s->tx != NULL && s->tx->mail.smtputf8)
		return tls ? "UTF8SMTPS" : "UTF8SMTP";
	if (!s->esmtp)
		return "SMTP";
	return tls ? "ESMTPS" : "ESMTP";
}

int
rfc5322_date(char *out, size_t outsz, time_t t)
{
	static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
	    "Sat" };
	static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	long off;

	if (localtime_r(&t, &tm) == NULL)
		return -1;
	off = tm.tm_gmtoff / 60;
	return snprintf_checked(out, outsz, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld",
	    days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
	    labs(off) / 60, labs(off) % 60);
}

/* Our trace header, LF line ends (it is stored, not sent). */
int
smtp_build_received(struct smtp_session *s, struct buf *out)
{
	struct conn *c = s->c;
	struct smtp_tx *tx = s->tx;
	char date[64];
	int r = 0;

	buf_reset(out);
	if (rfc5322_date(date, sizeof(date), time(NULL)) < 0)
		return -1;
	/*
	 * RFC 5321 4.4 wants the client's name and address, but for a
	 * user's own device (a submission) that is a home or LAN address
	 * that tells every recipient where the user is; like Postfix's
	 * local pickup, such a header starts at our host and says who
	 * authenticated.
	 */
	if (s->user[0] != '\0')
		r |= buf_printf(out, "Received: (Authenticated sender: %s)\n",
		    s->user);
	else
		r |= buf_printf(out, "Received: from %s (%s%s%s)\n",
		    s->helo[0] ? s->helo : "unknown",
		    strchr(c->ip, ':') ? "[IPv6:" : "[", c->ip, "]");
	r |= buf_printf(out, "\tby %s (Buzon) with %s id %s\n",
	    s->d->cfg.hostname, smtp_protocol_name(s), tx->id);
	if (c->tls == CONN_TLS_ON)
		r |= buf_printf(out, "\t(using %s with cipher %s (%d bits))\n",
		    c->tls_version, c->tls_cipher, c->tls_bits);
	if (tx->nrcpt == 1)
		r |= buf_printf(out, "\tfor <%s>; %s\n", tx->first_rcpt, date);
	else
		r |= buf_printf(out, "\t; %s\n", date);
	return r ? -1 : 0;
}

static void
smtp_deliver_work(struct pool_job *job)
{
	struct smtp_session *s = (struct smtp_session *)
	    ((char *)job - offsetof(struct smtp_session, job));
	struct smtpd *d = s->d;
	struct smtp_tx *tx = s->tx;
	struct buf prefix;
	size_t i;
	int over = 0;

	buf_init(&prefix, 64 * 1024);
	for (i = 0; i < tx->nmbox; i++) {
		struct smtp_mailbox *m = &tx->mbox[i];
		uint64_t used = 0, count = 0;
		uint64_t size = tx->body.size + tx->received.len + 2 * ADDR_MAX;

		if (m->quota_bytes == 0)
			continue;
		if (quota_usage(m->dir, m->quota_bytes, &used, &count) == 0 &&
		    used + size > m->quota_bytes) {
			m->over_quota = 1;
			over = 1;
		}
	}
	if (over)
		goto out;	/* refuse the whole message: nothing written */

	for (i = 0; i < tx->nmbox; i++) {
		struct smtp_mailbox *m = &tx->mbox[i];
		uint64_t size = 0;

		buf_reset(&prefix);
		if (buf_printf(&prefix, "Return-Path: <%s>\nDelivered-To: %s\n",
		    tx->sender, m->address) < 0 ||
		    buf_append(&prefix, tx->received.data, tx->received.len) < 0 ||
		    maildir_deliver(m->dir, prefix.data, prefix.len, &tx->body,
		    m->file, sizeof(m->file), &size) < 0) {
			m->failed = errno ? errno : EIO;
			continue;
		}
		if (m->quota_bytes > 0)
			(void)quota_add(m->dir, (int64_t)size, 1);
	}
	if (tx->n_ext > 0) {
		struct queue_rcpt *qr = calloc(tx->n_ext, sizeof(*qr));

		if (qr == NULL) {
			tx->queue_failed = ENOMEM;
			goto out;
		}
		for (i = 0; i < tx->n_ext; i++) {
			strlcpy_checked(qr[i].address, tx->ext[i].address,
			    sizeof(qr[i].address));
			strlcpy_checked(qr[i].orcpt, tx->ext[i].orcpt,
			    sizeof(qr[i].orcpt));
			qr[i].status = QRCPT_PENDING;
		}
		if (queue_write(d->cfg.queue_dir, tx->sender, qr, tx->n_ext,
		    tx->received.data, tx->received.len, &tx->body,
		    tx->queue_id, sizeof(tx->queue_id)) < 0)
			tx->queue_failed = errno ? errno : EIO;
		free(qr);
	}
out:
	buf_free(&prefix);
}

static void
smtp_deliver_done(struct pool_job *job)
{
	struct smtp_session *s = (struct smtp_session *)
	    ((char *)job - offsetof(struct smtp_session, job));
	struct smtp_tx *tx = s->tx;
	const char *sid = s->c ? s->c->sid : "-", *ip = s->c ? s->c->ip : "-";
	size_t i, failed = 0;
	const char *over = NULL;

	s->job_running = 0;
	for (i = 0; i < tx->nmbox; i++) {
		if (tx->mbox[i].over_quota && over == NULL)
			over = tx->mbox[i].address;
		if (tx->mbox[i].failed) {
			log_error("sid=%s ip=%s id=%s delivery to %s failed: %s",
			    sid, ip, tx->id, tx->mbox[i].address,
			    strerror(tx->mbox[i].failed));
			failed++;
		}
	}
	if (tx->queue_failed)
		log_error("sid=%s ip=%s id=%s cannot queue for %zu outside "
		    "recipients: %s", sid, ip, tx->id, tx->n_ext,
		    strerror(tx->queue_failed));
	if (over != NULL) {
		log_info("sid=%s ip=%s id=%s refused: %s over quota", sid, ip,
		    tx->id, over);
		smtp_reply(s, 552, "5.2.2 <%s>: Mailbox full, message refused",
		    over);
	} else if (failed > 0 || tx->queue_failed) {
		smtp_reply(s, 451, "4.3.0 Error: could not store the message, "
		    "try again later");
	} else {
		log_info("sid=%s ip=%s id=%s accepted from=<%s> size=%llu "
		    "mailboxes=%zu queued=%zu%s%s", sid, ip, tx->id, tx->sender,
		    (unsigned long long)tx->body.size, tx->nmbox, tx->n_ext,
		    tx->queue_id[0] ? " queue_id=" : "", tx->queue_id);
		smtp_reply(s, 250, "2.0.0 Ok: queued as %s", tx->id);
		s->ntx++;
	}
	smtp_tx_free(&s->tx);
	if (s->gone) {
		smtp_session_release(s);
		return;
	}
	smtp_resume(s);
}

void
smtp_tx_done(struct smtp_session *s)
{
	smtp_tx_free(&s->tx);
	smtp_enter_state(s, SMTP_ST_HELO);
	conn_set_timeout(s->c, SMTP_TIMEOUT);
}

void
smtp_data_finished(struct smtp_session *s)
{
	struct smtpd *d = s->d;
	struct smtp_tx *tx = s->tx;

	conn_set_timeout(s->c, SMTP_TIMEOUT);
	if (tx->sc.bare_newline) {
		log_info("sid=%s ip=%s id=%s refused: bare CR or LF in data",
		    s->c->sid, s->c->ip, tx->id);
		smtp_reply(s, 550, "5.6.0 Message refused: bare CR or LF in "
		    "message data (lines must end with CRLF)");
		smtp_tx_done(s);
		return;
	}
	if (tx->overflow || tx->sc.size > d->cfg.max_message_size) {
		log_info("sid=%s ip=%s id=%s refused: %llu bytes over the limit",
		    s->c->sid, s->c->ip, tx->id,
		    (unsigned long long)tx->sc.size);
		smtp_reply(s, 552, "5.3.4 Message size exceeds fixed maximum "
		    "message size (%llu bytes)",
		    (unsigned long long)d->cfg.max_message_size);
		smtp_tx_done(s);
		return;
	}
	if (tx->spool_error) {
		log_error("sid=%s ip=%s id=%s cannot spool message data",
		    s->c->sid, s->c->ip, tx->id);
		smtp_reply(s, 451, "4.3.0 Error: local storage problem, try "
		    "again later");
		smtp_tx_done(s);
		return;
	}
	if (s->user[0] != '\0' && smtp_submit_finish(s) < 0) {
		smtp_tx_done(s);
		return;
	}
	if (smtp_policy_applies(s)) {
		smtp_policy_data_end(s);	/* then smtp_deliver_start() */
		return;
	}
	smtp_deliver_start(s);
}

/* Write the message (its checks done) on the pool; 250 from the job. */
void
smtp_deliver_start(struct smtp_session *s)
{
	struct smtpd *d = s->d;

	s->job.work = smtp_deliver_work;
	s->job.done = smtp_deliver_done;
	s->job_running = 1;
	smtp_enter_state(s, SMTP_ST_BUSY);
	conn_pause(s->c);
	pool_submit(d->pool, &s->job);
}
