/*
 * smtp_rcpt.c - what RCPT TO decides: relay or not, who the address
 * resolves to (users, aliases, catch-all, redirections), quota, and the
 * per-transaction set of final mailboxes (each mailbox gets one copy
 * however many recipients lead to it).
 */
#include "smtpd.h"
#include "../common/log.h"
#include "../common/srs.h"
#include "../store/quota.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int
tx_add_mailbox(struct smtp_tx *tx, const char *address, const char *dir,
    uint64_t quota)
{
	size_t i;

	for (i = 0; i < tx->nmbox; i++)
		if (strcasecmp(tx->mbox[i].address, address) == 0)
			return 0;
	if (tx->nmbox == tx->mbox_cap) {
		size_t ncap = tx->mbox_cap ? tx->mbox_cap * 2 : 4;
		struct smtp_mailbox *n = realloc(tx->mbox, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		tx->mbox = n;
		tx->mbox_cap = ncap;
	}
	memset(&tx->mbox[tx->nmbox], 0, sizeof(tx->mbox[0]));
	strlcpy_checked(tx->mbox[tx->nmbox].address, address, ADDR_MAX);
	strlcpy_checked(tx->mbox[tx->nmbox].dir, dir, sizeof(tx->mbox[0].dir));
	tx->mbox[tx->nmbox].quota_bytes = quota;
	tx->nmbox++;
	return 0;
}

static int
tx_add_external(struct smtp_tx *tx, const char *address, const char *orcpt)
{
	size_t i;

	for (i = 0; i < tx->n_ext; i++)
		if (strcasecmp(tx->ext[i].address, address) == 0)
			return 0;
	if (tx->n_ext == tx->ext_cap) {
		size_t ncap = tx->ext_cap ? tx->ext_cap * 2 : 4;
		struct smtp_external *n = realloc(tx->ext, ncap * sizeof(*n));

		if (n == NULL)
			return -1;
		tx->ext = n;
		tx->ext_cap = ncap;
	}
	strlcpy_checked(tx->ext[tx->n_ext].address, address, ADDR_MAX);
	strlcpy_checked(tx->ext[tx->n_ext].orcpt, orcpt, ADDR_MAX);
	tx->n_ext++;
	return 0;
}

/* "<postmaster>" without a domain: the domain of our hostname. */
static void
postmaster_domain(struct smtpd *d, struct mailaddr *a)
{
	const char *h = d->cfg.hostname, *dot = strchr(h, '.');

	if (db_domain_is_local(d->db, h) != 1 && dot != NULL)
		h = dot + 1;
	strlcpy_checked(a->domain, h, sizeof(a->domain));
	addr_lower(a->domain);
}

/*
 * A bounce coming back to an address our queue runner made with SRS:
 * verified with our secret, then relayed to the original sender.  A
 * forged or expired one is refused, so that SRS addresses never make us
 * an open relay.  1 when answered, 0 when a is not an SRS address.
 */
static int
smtp_rcpt_srs(struct smtp_session *s, const struct mailaddr *a,
    const char *shown)
{
	char addr[ADDR_MAX], orig[ADDR_MAX];

	if (addr_format(a, addr, sizeof(addr)) < 0)
		return 0;
	switch (srs_reverse(s->d->srs_key, addr, time(NULL), orig,
	    sizeof(orig))) {
	case SRS_NOT_SRS:
	case SRS_MALFORMED:
		/* only looks like SRS ("srs0-team"): an ordinary address */
		return 0;
	case SRS_OK:
		break;
	default:
		log_info("sid=%s ip=%s reject RCPT <%s>: invalid SRS address",
		    s->c->sid, s->c->ip, shown);
		smtp_reply(s, 550, "5.1.1 <%s>: Recipient address rejected: "
		    "invalid or expired SRS address", shown);
		smtp_session_error(s);
		return 1;
	}
	if (tx_add_external(s->tx, orig, addr) < 0) {
		smtp_reply(s, 451, "4.3.0 Out of memory, try again later");
		return 1;
	}
	log_info("sid=%s ip=%s RCPT <%s>: SRS address of <%s>", s->c->sid,
	    s->c->ip, shown, orig);
	if (s->tx->nrcpt++ == 0)
		strlcpy_checked(s->tx->first_rcpt, shown,
		    sizeof(s->tx->first_rcpt));
	smtp_enter_state(s, SMTP_ST_RCPT);
	smtp_reply(s, 250, "2.1.5 Ok");
	return 1;
}

void
smtp_cmd_rcpt_resolve(struct smtp_session *s, const struct mailaddr *to,
    const char *shown)
{
	struct smtpd *d = s->d;
	struct smtp_tx *tx = s->tx;
	struct resolve_result res;
	enum resolve_status st;
	struct mailaddr a = *to;
	size_t i;
	int r;

	if (a.domain[0] == '\0')
		postmaster_domain(d, &a);
	if (addr_has_routing(&a)) {
		log_info("sid=%s ip=%s reject RCPT <%s>: source routing",
		    s->c->sid, s->c->ip, shown);
		smtp_reply(s, 554, "5.7.1 <%s>: Relay access denied", shown);
		smtp_session_error(s);
		return;
	}
	r = db_domain_is_local(d->db, a.domain);
	if (r < 0) {
		smtp_reply(s, 451, "4.3.0 <%s>: Temporary lookup failure", shown);
		return;
	}
	if (r == 0 && s->user[0] != '\0') {
		/* An authenticated user may send anywhere: via the queue. */
		char out[ADDR_MAX];

		if (addr_format(&a, out, sizeof(out)) < 0 ||
		    tx_add_external(tx, out, shown) < 0) {
			smtp_reply(s, 451, "4.3.0 Out of memory, try again "
			    "later");
			return;
		}
		if (tx->nrcpt++ == 0)
			strlcpy_checked(tx->first_rcpt, shown,
			    sizeof(tx->first_rcpt));
		smtp_enter_state(s, SMTP_ST_RCPT);
		smtp_reply(s, 250, "2.1.5 Ok");
		return;
	}
	if (r == 0) {
		log_info("sid=%s ip=%s reject RCPT <%s>: relay denied",
		    s->c->sid, s->c->ip, shown);
		smtp_reply(s, 554, "5.7.1 <%s>: Relay access denied", shown);
		smtp_session_error(s);
		return;
	}
	switch (smtp_rcpt_srs(s, &a, shown)) {
	case 1:
		return;		/* answered */
	default:
		break;		/* not an SRS address: an ordinary one */
	}
	memset(&res, 0, sizeof(res));
	st = db_resolve(d->db, &a, &res);
	switch (st) {
	case RESOLVE_OK:
		break;
	case RESOLVE_UNKNOWN:
		log_info("sid=%s ip=%s reject RCPT <%s>: user unknown",
		    s->c->sid, s->c->ip, shown);
		smtp_reply(s, 550, "5.1.1 <%s>: Recipient address rejected: "
		    "User unknown", shown);
		smtp_session_error(s);
		goto out;
	case RESOLVE_DISABLED:
		smtp_reply(s, 550, "5.2.1 <%s>: Mailbox disabled", shown);
		goto out;
	case RESOLVE_LOOP:
		log_warn("sid=%s ip=%s RCPT <%s>: alias loop or chain too deep",
		    s->c->sid, s->c->ip, shown);
		smtp_reply(s, 550, "5.4.6 <%s>: Alias expansion loop", shown);
		goto out;
	case RESOLVE_TOO_MANY:
		smtp_reply(s, 550, "5.7.0 <%s>: Alias expands to too many "
		    "recipients", shown);
		goto out;
	case RESOLVE_ERROR:
	default:
		smtp_reply(s, 451, "4.3.0 <%s>: Temporary lookup failure", shown);
		goto out;
	}

	/* Quota first, so a refused recipient leaves the tx untouched. */
	for (i = 0; i < res.nlocal; i++) {
		char dir[sizeof(tx->mbox[0].dir)];
		uint64_t used = 0, count = 0, q = res.local[i].quota_bytes;

		if (q == 0)
			continue;
		if (db_user_maildir(d->cfg.mail_dir, res.local[i].address, dir,
		    sizeof(dir)) < 0 || quota_usage(dir, q, &used, &count) < 0)
			continue;	/* delivery re-checks */
		if (used >= q || (tx->mail.has_size && used + tx->mail.size > q)) {
			log_info("sid=%s ip=%s reject RCPT <%s>: mailbox %s over "
			    "quota (%llu of %llu bytes)", s->c->sid, s->c->ip,
			    shown, res.local[i].address,
			    (unsigned long long)used, (unsigned long long)q);
			smtp_reply(s, 452, "4.2.2 <%s>: Mailbox full", shown);
			goto out;
		}
	}
	for (i = 0; i < res.nlocal; i++) {
		char dir[sizeof(tx->mbox[0].dir)];

		if (db_user_maildir(d->cfg.mail_dir, res.local[i].address, dir,
		    sizeof(dir)) < 0) {
			log_error("sid=%s ip=%s user %s has no valid mail "
			    "directory", s->c->sid, s->c->ip,
			    res.local[i].address);
			smtp_reply(s, 451, "4.3.0 <%s>: Temporary local problem",
			    shown);
			goto out;
		}
		if (tx_add_mailbox(tx, res.local[i].address, dir,
		    res.local[i].quota_bytes) < 0)
			goto nomem;
	}
	for (i = 0; i < res.nexternal; i++)
		if (tx_add_external(tx, res.external[i], shown) < 0)
			goto nomem;
	if (tx->nrcpt++ == 0)
		strlcpy_checked(tx->first_rcpt, shown, sizeof(tx->first_rcpt));
	smtp_enter_state(s, SMTP_ST_RCPT);
	smtp_reply(s, 250, "2.1.5 Ok");
	goto out;
nomem:
	smtp_reply(s, 451, "4.3.0 Out of memory, try again later");
out:
	resolve_result_free(&res);
}
