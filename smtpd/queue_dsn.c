/*
 * queue_dsn.c - the bounce (RFC 3464 DSN) for the recipients an attempt
 * gave up on, queued as a new entry from the null sender to the original
 * sender: it then travels like any other mail (locally when the sender
 * is one of our users), and is never itself bounced.
 */
#include "queue_runner.h"
#include "bounce_dsn.h"
#include "../common/log.h"
#include "../store/spool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int
queue_dsn(struct attempt *a)
{
	const struct config *cfg = &a->w->r->cfg;
	struct dsn_info info;
	struct dsn_rcpt *dr;
	struct queue_rcpt to;
	struct spool body;
	struct buf out;
	char id[QUEUE_ID_MAX], seed[QUEUE_ID_MAX + 16];
	size_t i, n = 0;
	int r = -1;

	if ((dr = calloc(a->nar, sizeof(*dr))) == NULL)
		return -1;
	for (i = 0; i < a->nar; i++) {
		const struct attempt_rcpt *ar = &a->ar[i];
		const struct queue_rcpt *qr = &a->env.rcpts[ar->idx];

		if (ar->result != AR_BOUNCED)
			continue;
		dr[n].address = qr->address;
		dr[n].orcpt = qr->orcpt[0] ? qr->orcpt : NULL;
		dr[n].status = ar->status[0] ? ar->status : "5.0.0";
		dr[n].remote_mta = ar->remote_mta[0] ? ar->remote_mta : NULL;
		dr[n].diagnostic = ar->diag[0] ? ar->diag : NULL;
		n++;
	}
	snprintf_checked(seed, sizeof(seed), "%s.%lx", a->env.id,
	    (unsigned long)random());
	memset(&info, 0, sizeof(info));
	info.reporting_mta = cfg->hostname;
	info.queue_id = a->env.id;
	info.sender = a->env.sender;
	info.arrival = a->env.created;
	info.now = a->now;
	info.msgid_seed = seed;
	buf_init(&out, BUF_UNLIMITED);
	spool_init(&body, cfg->queue_dir, 1024 * 1024);
	memset(&to, 0, sizeof(to));
	strlcpy_checked(to.address, a->env.sender, sizeof(to.address));
	to.status = QRCPT_PENDING;
	if (bounce_dsn_build(&info, dr, n, a->msg, a->len, &out) < 0 ||
	    spool_append(&body, out.data, out.len) < 0 ||
	    queue_write(cfg->queue_dir, "", &to, 1, NULL, 0, &body, id,
	    sizeof(id)) < 0)
		log_error("queue: id=%s cannot queue the bounce to <%s>: %s",
		    a->env.id, a->env.sender, strerror(errno));
	else {
		log_info("queue: id=%s bounce for %zu recipients queued as %s "
		    "to <%s>", a->env.id, n, id, a->env.sender);
		r = 0;
	}
	spool_free(&body);
	buf_free(&out);
	free(dr);
	return r;
}
