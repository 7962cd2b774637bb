/*
 * queue_attempt.c - one attempt at one queue entry: sign, route each
 * pending recipient (our domains locally, the rest to their MX or the
 * relayhost), record every result durably, bounce what failed for good,
 * and say when to try again.
 *
 * Nothing acknowledged is lost: "sent" is written to the envelope after
 * each transaction; a recipient is marked "bounced" only after its DSN is
 * itself queued; the entry is removed only when nothing is pending.
 */
#include "queue_runner.h"
#include "../common/dkim_sign.h"
#include "../common/db_dkim.h"
#include "../common/log.h"
#include "../common/srs.h"
#include "../store/mbox_index.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "smtp_header.h"

#define RCPTS_PER_TRANSACTION 100	/* RFC 5321 4.5.3.1.8 minimum */

time_t
queue_retry_delay(unsigned attempts, unsigned jitter)
{
	/* about 1m, 5m, 15m, 30m, 1h, then every 2-4h */
	static const time_t steps[] = { 60, 300, 900, 1800, 3600 };
	time_t d;

	if (attempts == 0)
		attempts = 1;
	if (attempts <= sizeof(steps) / sizeof(steps[0]))
		d = steps[attempts - 1];
	else
		d = 7200 + (time_t)(jitter % 7201);
	/* up to 10% later, so that a burst does not retry in lockstep */
	return d + (time_t)(jitter % (unsigned)(d / 10 + 1));
}

static const char *
domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : "";
}

static int
is_local_domain(struct attempt *a, const char *domain)
{
	if (a->w->db == NULL)
		return -1;
	return db_domain_is_local(a->w->db, domain);
}

/*
 * The author domain, when the header has exactly one From: we can read:
 * only then is it ours to sign.
 */
static int
from_domain(const char *msg, size_t len, char *out, size_t outsz)
{
	struct smtp_header_info info;
	struct mailaddr m;
	struct buf scratch;
	size_t hl = mbox_header_len(msg, len);
	int r = -1;

	buf_init(&scratch, hl + 16);
	if (smtp_header_filter(msg, hl, &scratch, &info) == 0 &&
	    info.nfrom == 1 &&
	    smtp_header_from_parse(info.from, info.from_len, &m) ==
	    SMTP_FROM_OK)
		r = strlcpy_checked(out, m.domain, outsz);
	buf_free(&scratch);
	return r;
}

static void
dkim_sign_entry(struct attempt *a)
{
	char domain[256], selector[64], path[PATH_MAX], err[256];
	struct buf key;

	if (a->len == 0 || from_domain(a->msg, a->len, domain,
	    sizeof(domain)) < 0 || is_local_domain(a, domain) != 1)
		return;
	if (db_dkim_signing_key(a->w->db, domain, selector, sizeof(selector),
	    path, sizeof(path)) != 1)
		return;		/* no key: sent unsigned (mailadm dns says so) */
	buf_init(&key, DKIM_KEY_FILE_MAX);
	if (dkim_key_read(path, &key, err, sizeof(err)) < 0)
		log_error("queue: id=%s DKIM key for %s: %s", a->env.id,
		    domain, err);
	else if (dkim_sign_message(key.data, key.len, domain, selector,
	    a->msg, a->len, &a->sig, err, sizeof(err)) < 0) {
		buf_reset(&a->sig);
		log_error("queue: id=%s DKIM signing for %s failed: %s",
		    a->env.id, domain, err);
	}
	dkim_buf_wipe(&key);
}

/*
 * The envelope sender for one recipient: a foreign sender forwarded by
 * one of our aliases becomes an SRS address in the alias's domain, so
 * that the destination's SPF check sees our domain.
 */
static void
mail_from_for(struct attempt *a, struct attempt_rcpt *ar)
{
	const struct queue_rcpt *qr = &a->env.rcpts[ar->idx];
	const char *sender = a->env.sender, *srsdom;

	strlcpy_checked(ar->mail_from, sender, sizeof(ar->mail_from));
	if (sender[0] == '\0' || is_local_domain(a, domain_of(sender)) != 0)
		return;
	srsdom = qr->orcpt[0] != '\0' ? domain_of(qr->orcpt) : "";
	if (srsdom[0] == '\0' || is_local_domain(a, srsdom) != 1)
		srsdom = a->w->r->cfg.hostname;
	if (srs_forward(a->w->r->srs_key, sender, srsdom, a->now,
	    ar->mail_from, sizeof(ar->mail_from)) < 0)
		strlcpy_checked(ar->mail_from, sender, sizeof(ar->mail_from));
}

static int
same_route(const struct attempt_rcpt *x, const struct attempt_rcpt *y,
    const struct queue_env *env, int relay)
{
	if (strcmp(x->mail_from, y->mail_from) != 0)
		return 0;
	return relay || strcasecmp(domain_of(env->rcpts[x->idx].address),
	    domain_of(env->rcpts[y->idx].address)) == 0;
}

/* Save what is confirmed so far ("sent" only; see the top). */
static void
save_progress(struct attempt *a)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < a->nar; i++)
		if (a->ar[i].result == AR_SENT)
			a->env.rcpts[a->ar[i].idx].status = QRCPT_SENT;
	if (snprintf_checked(path, sizeof(path), "%s/%s.msg",
	    a->w->r->cfg.queue_dir, a->env.id) == 0 && access(path, F_OK) < 0)
		return;		/* deleted by mailadm meanwhile */
	if (queue_env_write(a->w->r->cfg.queue_dir, &a->env) < 0)
		log_error("queue: id=%s cannot record results: %s", a->env.id,
		    strerror(errno));
}

static void
deliver_all(struct attempt *a)
{
	int relay = a->w->r->relay_host[0] != '\0';
	size_t *which, i, j, n;
	char *done;
	int local;

	which = calloc(a->nar ? a->nar : 1, sizeof(*which));
	done = calloc(a->nar ? a->nar : 1, 1);
	if (which == NULL || done == NULL) {
		snprintf_checked(a->last_error, sizeof(a->last_error),
		    "out of memory");
		goto out;
	}
	for (i = 0; i < a->nar; i++) {
		const char *rcpt = a->env.rcpts[a->ar[i].idx].address;

		local = is_local_domain(a, domain_of(rcpt));
		if (local < 0) {
			snprintf_checked(a->last_error, sizeof(a->last_error),
			    "account database unavailable");
			done[i] = 1;
		} else if (local == 1) {
			queue_local(a, &a->ar[i]);
			done[i] = 1;
		} else {
			mail_from_for(a, &a->ar[i]);
		}
	}
	for (i = 0; i < a->nar; i++) {
		if (done[i])
			continue;
		n = 0;
		for (j = i; j < a->nar && n < RCPTS_PER_TRANSACTION; j++)
			if (!done[j] && same_route(&a->ar[i], &a->ar[j],
			    &a->env, relay)) {
				which[n++] = j;
				done[j] = 1;
			}
		if (a->w->r->stopping)
			break;
		queue_remote(a, which, n,
		    domain_of(a->env.rcpts[a->ar[i].idx].address));
		/*
		 * Record what was sent before the next transaction; after
		 * the last one the end of the attempt records everything
		 * (or removes the entry) anyway.
		 */
		for (j = i + 1; j < a->nar && done[j]; j++)
			;
		if (j < a->nar)
			save_progress(a);
	}
out:
	free(which);
	free(done);
}

static void
bounce_rcpt(struct attempt_rcpt *ar, const char *status, const char *diag)
{
	ar->result = AR_BOUNCED;
	strlcpy_checked(ar->status, status, sizeof(ar->status));
	if (ar->diag[0] == '\0')
		strlcpy_checked(ar->diag, diag, sizeof(ar->diag));
}

/* Bounces and expiry; returns 1 when nothing is pending any more. */
static int
settle(struct attempt *a)
{
	const struct config *cfg = &a->w->r->cfg;
	int expired = a->now - a->env.created >= (time_t)cfg->queue_lifetime;
	size_t i, nbounced = 0, npending = 0;

	for (i = 0; i < a->nar; i++) {
		struct attempt_rcpt *ar = &a->ar[i];

		/*
		 * RFC 3463 4.4.7: delivery time expired.  A bounce (null
		 * sender) that meets a greylist or a down MX is retried like
		 * any mail; only one refused for good is dropped, below.
		 */
		if (ar->result == AR_PENDING && expired)
			bounce_rcpt(ar, "4.4.7", a->last_error[0] ?
			    a->last_error : "delivery time expired");
		if (ar->result == AR_BOUNCED)
			nbounced++;
		else if (ar->result == AR_PENDING)
			npending++;
	}
	if (nbounced > 0 && a->env.sender[0] == '\0') {
		/* Never a bounce of a bounce: log it and drop it. */
		for (i = 0; i < a->nar; i++)
			if (a->ar[i].result == AR_BOUNCED)
				log_warn("queue: id=%s bounce to <%s> "
				    "undeliverable, dropped: %s", a->env.id,
				    a->env.rcpts[a->ar[i].idx].address,
				    a->ar[i].diag);
	} else if (nbounced > 0 && queue_dsn(a) < 0) {
		/* Keep them pending: the DSN is tried again next time. */
		for (i = 0; i < a->nar; i++)
			if (a->ar[i].result == AR_BOUNCED) {
				a->ar[i].result = AR_PENDING;
				npending++;
			}
		nbounced = 0;
	}
	for (i = 0; i < a->nar; i++)
		if (a->ar[i].result == AR_BOUNCED)
			a->env.rcpts[a->ar[i].idx].status = QRCPT_BOUNCED;
		else if (a->ar[i].result == AR_SENT)
			a->env.rcpts[a->ar[i].idx].status = QRCPT_SENT;
	return npending == 0;
}

static int
map_message(struct attempt *a)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;
	void *p;

	if (snprintf_checked(path, sizeof(path), "%s/%s.msg",
	    a->w->r->cfg.queue_dir, a->env.id) < 0) {
		errno = ENAMETOOLONG;	/* never ENOENT: that removes it */
		return -1;
	}
	if ((a->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    fstat(a->fd, &st) < 0)
		return -1;
	a->len = (size_t)st.st_size;
	if (a->len == 0)
		return 0;
	p = mmap(NULL, a->len, PROT_READ, MAP_PRIVATE, a->fd, 0);
	if (p == MAP_FAILED)
		return -1;
	a->msg = p;
	for (i = 0; i < a->len && !a->eightbit; i++)
		a->eightbit = ((unsigned char)a->msg[i] & 0x80) != 0;
	return 0;
}

enum attempt_result
queue_attempt(struct runner_worker *w, const char *id, time_t *next_try_r)
{
	const struct config *cfg = &w->r->cfg;
	struct attempt a;
	enum attempt_result res;
	size_t i;

	memset(&a, 0, sizeof(a));
	a.w = w;
	a.fd = -1;
	a.now = time(NULL);
	buf_init(&a.sig, 64 * 1024);
	if (queue_env_read(cfg->queue_dir, id, &a.env) < 0) {
		if (errno == ENOENT)
			return ATTEMPT_GONE;
		log_error("queue: id=%s envelope unreadable: %s (left for the "
		    "admin: mailadm queue del %s)", id, strerror(errno), id);
		*next_try_r = a.now + 3600;
		return ATTEMPT_RETRY;
	}
	if (map_message(&a) < 0) {
		res = errno == ENOENT ? ATTEMPT_GONE : ATTEMPT_RETRY;
		if (res == ATTEMPT_RETRY)
			log_error("queue: id=%s message unreadable: %s", id,
			    strerror(errno));
		else if (queue_remove(cfg->queue_dir, id) == 0)
			/*
			 * mailadm queue del ran between save_progress()'s
			 * check and its rename: the .env came back alone.
			 */
			log_info("queue: id=%s envelope without message "
			    "removed", id);
		*next_try_r = a.now + 3600;
		goto out;
	}
	a.ar = calloc(a.env.nrcpts, sizeof(*a.ar));
	if (a.ar == NULL) {
		*next_try_r = a.now + 60;
		res = ATTEMPT_RETRY;
		goto out;
	}
	for (i = 0; i < a.env.nrcpts; i++)
		if (a.env.rcpts[i].status == QRCPT_PENDING)
			a.ar[a.nar++].idx = i;

	dkim_sign_entry(&a);
	deliver_all(&a);
	if (w->r->stopping) {
		/* Cut short: not an attempt; only what was sent counts. */
		save_progress(&a);
		*next_try_r = a.now;
		res = ATTEMPT_RETRY;
		goto out;
	}
	a.env.attempts++;
	if (a.last_error[0] != '\0')
		strlcpy_checked(a.env.last_error, a.last_error,
		    sizeof(a.env.last_error));
	if (settle(&a)) {
		if (queue_remove(cfg->queue_dir, id) < 0 && errno != ENOENT)
			log_error("queue: id=%s cannot remove: %s", id,
			    strerror(errno));
		res = ATTEMPT_DONE;
		goto out;
	}
	a.env.next_try = a.now + queue_retry_delay(a.env.attempts,
	    (unsigned)random());
	save_progress(&a);
	*next_try_r = a.env.next_try;
	res = ATTEMPT_RETRY;
out:
	if (a.msg != NULL)
		munmap((void *)a.msg, a.len);
	if (a.fd >= 0)
		close(a.fd);
	buf_free(&a.sig);
	free(a.ar);
	queue_env_free(&a.env);
	return res;
}
