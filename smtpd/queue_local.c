/*
 * queue_local.c - a queued recipient in one of our own domains (a bounce
 * to one of our users, a reversed SRS bounce, mail a redirection sent
 * back to us): delivered straight into the Maildir, no network hop.
 *
 * The address is resolved again now (the account DB may have changed
 * since the mail was queued); outside targets it resolves to become a new
 * queue entry with the same sender.
 */
#include "queue_runner.h"
#include "../common/log.h"
#include "../store/maildir.h"
#include "../store/quota.h"
#include "../store/spool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define LOCAL_SPOOL_MEM (1024 * 1024)

static void
result(struct attempt_rcpt *ar, int res, const char *status,
    const char *diag)
{
	ar->result = res;
	strlcpy_checked(ar->status, status, sizeof(ar->status));
	strlcpy_checked(ar->diag, diag, sizeof(ar->diag));
}

static int
deliver_mailbox(struct attempt *a, const struct resolve_mailbox *mb,
    const struct spool *body, struct attempt_rcpt *ar)
{
	const struct config *cfg = &a->w->r->cfg;
	char dir[CONFIG_STR_MAX + ADDR_MAX];
	uint64_t used = 0, count = 0, size = 0;
	struct buf prefix;
	int r;

	if (db_user_maildir(cfg->mail_dir, mb->address, dir, sizeof(dir)) < 0) {
		result(ar, AR_PENDING, "4.3.0", "user has no valid mail "
		    "directory");
		return -1;
	}
	if (mb->quota_bytes > 0 && quota_usage(dir, mb->quota_bytes, &used,
	    &count) == 0 && used + a->len > mb->quota_bytes) {
		result(ar, AR_BOUNCED, "5.2.2", "552 5.2.2 mailbox full");
		return -1;
	}
	buf_init(&prefix, 2 * ADDR_MAX + 64);
	r = buf_printf(&prefix, "Return-Path: <%s>\nDelivered-To: %s\n",
	    a->env.sender, mb->address);
	if (r == 0)
		r = maildir_deliver(dir, prefix.data, prefix.len, body, NULL, 0,
		    &size);
	buf_free(&prefix);
	if (r < 0) {
		log_error("queue: id=%s delivery to %s failed: %s", a->env.id,
		    mb->address, strerror(errno));
		result(ar, AR_PENDING, "4.3.0", "local delivery failed");
		return -1;
	}
	if (mb->quota_bytes > 0)
		(void)quota_add(dir, (int64_t)size, 1);
	return 0;
}

/* Outside targets of a local address: a new entry, same sender. */
static int
requeue(struct attempt *a, const struct resolve_result *res,
    const char *orcpt, const struct spool *body)
{
	struct queue_rcpt *qr;
	char id[QUEUE_ID_MAX];
	size_t i;
	int r;

	if ((qr = calloc(res->nexternal, sizeof(*qr))) == NULL)
		return -1;
	for (i = 0; i < res->nexternal; i++) {
		strlcpy_checked(qr[i].address, res->external[i],
		    sizeof(qr[i].address));
		strlcpy_checked(qr[i].orcpt, orcpt, sizeof(qr[i].orcpt));
		qr[i].status = QRCPT_PENDING;
	}
	r = queue_write(a->w->r->cfg.queue_dir, a->env.sender, qr,
	    res->nexternal, NULL, 0, body, id, sizeof(id));
	free(qr);
	if (r == 0)
		log_info("queue: id=%s to=<%s> forwarded as %s", a->env.id,
		    orcpt, id);
	return r;
}

void
queue_local(struct attempt *a, struct attempt_rcpt *ar)
{
	const char *rcpt = a->env.rcpts[ar->idx].address;
	struct resolve_result res;
	enum resolve_status st;
	struct mailaddr m;
	struct spool body;
	const char *why;
	size_t i;
	int failed = 0;

	memset(&res, 0, sizeof(res));
	strlcpy_checked(ar->remote_mta, a->w->r->cfg.hostname,
	    sizeof(ar->remote_mta));
	if (addr_parse_plain(rcpt, &m, &why) < 0) {
		result(ar, AR_BOUNCED, "5.1.3", "550 5.1.3 bad recipient "
		    "address syntax");
		return;
	}
	st = db_resolve(a->w->db, &m, &res);
	switch (st) {
	case RESOLVE_OK:
		break;
	case RESOLVE_UNKNOWN:
		result(ar, AR_BOUNCED, "5.1.1", "550 5.1.1 user unknown");
		goto out;
	case RESOLVE_DISABLED:
		result(ar, AR_BOUNCED, "5.2.1", "550 5.2.1 mailbox disabled");
		goto out;
	case RESOLVE_LOOP:
		result(ar, AR_BOUNCED, "5.4.6", "550 5.4.6 alias expansion "
		    "loop");
		goto out;
	case RESOLVE_TOO_MANY:
		result(ar, AR_BOUNCED, "5.7.0", "550 5.7.0 alias expands to "
		    "too many recipients");
		goto out;
	default:
		result(ar, AR_PENDING, "4.3.0", "account lookup failed");
		goto out;
	}
	spool_init(&body, a->w->r->cfg.queue_dir, LOCAL_SPOOL_MEM);
	if (a->len > 0 && spool_append(&body, a->msg, a->len) < 0) {
		spool_free(&body);
		result(ar, AR_PENDING, "4.3.0", "cannot read the message");
		goto out;
	}
	for (i = 0; i < res.nlocal; i++)
		if (deliver_mailbox(a, &res.local[i], &body, ar) < 0)
			failed = 1;
	if (!failed && res.nexternal > 0 &&
	    requeue(a, &res, rcpt, &body) < 0) {
		result(ar, AR_PENDING, "4.3.0", "cannot queue the forwarded "
		    "copy");
		failed = 1;
	}
	spool_free(&body);
	if (!failed)
		result(ar, AR_SENT, "2.0.0", "250 2.0.0 delivered locally");
	log_info("queue: id=%s to=<%s> relay=local status=%s (%s)", a->env.id,
	    rcpt, ar->result == AR_SENT ? "sent" : ar->result == AR_BOUNCED ?
	    "bounced" : "deferred", ar->diag);
	if (ar->result == AR_PENDING)
		strlcpy_checked(a->last_error, ar->diag,
		    sizeof(a->last_error));
out:
	resolve_result_free(&res);
}
