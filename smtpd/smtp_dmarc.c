/*
 * smtp_dmarc.c - recording each DMARC evaluation of mail from outside
 * (common/db_dmarc.h), the data of the daily aggregate reports.
 *
 * Called on the pool thread that made the evaluation (smtp_policy.c,
 * data_end_work), never on the loop: an INSERT can wait behind another
 * writer's lock (busy_timeout).  The daemon's d->db belongs to the loop
 * thread, so each pool thread opens its own handle at its first
 * evaluation and a thread-specific key closes it when the thread ends.
 *
 * Recorded whenever [policy] dmarc = on, whatever dmarc_reports says:
 * it is one small INSERT without fsync, and it lets `mailadm dmarc
 * report` show what a report would contain before reports are switched
 * on.  The queue runner purges old rows in both cases (queue_dmarc.c).
 * A failure is logged and costs only the row, never the message.
 */
#include "smtpd.h"
#include "../common/db_dmarc.h"
#include "../common/log.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define REOPEN_DELAY 60		/* seconds before retrying a failed open */

static pthread_key_t db_key;
static pthread_once_t db_key_once = PTHREAD_ONCE_INIT;
static int db_key_ok;

static void
close_handle(void *p)
{
	struct db *db = p;

	db_close(&db);
}

static void
make_key(void)
{
	db_key_ok = pthread_key_create(&db_key, close_handle) == 0;
}

/* This thread's handle, opened on first use; NULL when unavailable. */
static struct db *
thread_db(const struct smtp_session *s)
{
	static __thread time_t failed_at;
	struct db *db;
	char err[512];

	pthread_once(&db_key_once, make_key);
	if (!db_key_ok)
		return NULL;
	if ((db = pthread_getspecific(db_key)) != NULL)
		return db;
	if (failed_at != 0 && time(NULL) - failed_at < REOPEN_DELAY)
		return NULL;
	if (db_dmarc_open_recorder(s->d->cfg.database, &db, err,
	    sizeof(err)) < 0) {
		failed_at = time(NULL);
		log_error("sid=%s DMARC evaluations not recorded: %s",
		    s->c->sid, err);
		return NULL;
	}
	if (pthread_setspecific(db_key, db) != 0) {
		db_close(&db);
		return NULL;
	}
	failed_at = 0;
	return db;
}

void
smtp_dmarc_record(struct smtp_session *s)
{
	const struct smtp_tx *tx = s->tx;
	const struct dmarc_outcome *d = &tx->dmarc;
	const char *at;
	struct db *db;
	int disp = DMARC_DISP_NONE;

	if (d->result == DMARC_RES_NONE || (db = thread_db(s)) == NULL)
		return;
	/* what data_end_done will do with it: only a failure is acted on */
	if (d->result == DMARC_RES_FAIL)
		disp = d->disposition;
	at = strrchr(tx->sender, '@');
	if (db_dmarc_record(db, s->c->ip, at != NULL ? at + 1 : "",
	    tx->spf_checked ? &tx->spf : NULL, &tx->dkim, d, disp) < 0)
		log_warn("sid=%s ip=%s id=%s DMARC evaluation of %s not "
		    "recorded (database error)", s->c->sid, s->c->ip, tx->id,
		    d->from_domain);
}
