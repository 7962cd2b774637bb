/*
 * queue_dmarc.c - the queue runner's daily DMARC job (queue_dmarc.h).
 *
 * Once per UTC day, a random 5 to 60 minutes after midnight (so that
 * servers do not all report at 00:00), a thread of its own:
 *   - with [policy] dmarc_reports = on, builds the reports of every day
 *     since the last one sent (yesterday, or up to BACKLOG_DAYS after a
 *     downtime) and queues them (the attempt DKIM-signs them when the
 *     reporting domain has a key);
 *   - purges evaluations older than DMARC_KEEP_DAYS (also with reports
 *     off: smtpd records whenever dmarc = on);
 *   - then writes the last day done to state_dir/dmarc-reports.last, so
 *     a restart does not send a day twice.
 * The job blocks on DNS (destination checks) and SQLite, hence a thread:
 * the scheduler only polls a flag.  A job cut short by a stop (which
 * waits STOP_WAIT_MS for it) is redone at the next start; a report
 * queued twice carries the same Report-ID (dmarc_report_id), which
 * receivers use to drop duplicates.
 */
#include "queue_dmarc.h"
#include "../common/buf.h"
#include "../common/db_dmarc.h"
#include "../common/dmarc_daily.h"
#include "../common/log.h"
#include "../store/queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#define STATE_NAME "dmarc-reports.last"
#define DELAY_MIN 300		/* seconds after 00:00 UTC, at least */
#define DELAY_SPREAD 3300	/* plus up to this, at random */
#define BACKLOG_DAYS 7		/* days caught up after a downtime */
#define RETRY_DELAY 3600	/* after a job that could not finish */
#define STOP_WAIT_MS 1000	/* a stop waits this long for the job */

static struct {
	struct config cfg;		/* the job's copy */
	pthread_t th;
	int running;			/* started and not yet joined */
	int finished;			/* set by the thread (atomic) */
	int ok;				/* the job's result (after finished) */
	time_t delay;			/* this process's delay after 00:00 */
	time_t next_check;
	time_t first, last;		/* the days to report, [first, last] */
} job;

static int
state_path(const struct config *cfg, const char *prefix, char *out,
    size_t outsz)
{
	return snprintf_checked(out, outsz, "%s/%s%s", cfg->state_dir, prefix,
	    STATE_NAME);
}

/* The last day done (its UTC midnight), or -1 when never. */
static time_t
state_read(const struct config *cfg)
{
	char path[PATH_MAX], line[32];
	time_t t;
	FILE *f;

	if (state_path(cfg, "", path, sizeof(path)) < 0 ||
	    (f = fopen(path, "re")) == NULL)
		return -1;
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	return dmarc_parse_date(line, &t) == 0 ? t : -1;
}

/* Write the day durably: temp file, fsync, rename. */
static int
state_write(const struct config *cfg, time_t day)
{
	char path[PATH_MAX], tmp[PATH_MAX], line[32];
	struct tm tm;
	int fd, len;

	if (gmtime_r(&day, &tm) == NULL ||
	    snprintf_checked(line, sizeof(line), "%04d-%02d-%02d\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) < 0 ||
	    state_path(cfg, "", path, sizeof(path)) < 0 ||
	    state_path(cfg, ".", tmp, sizeof(tmp)) < 0)
		return -1;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		return -1;
	len = (int)strlen(line);
	if (write(fd, line, (size_t)len) != len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Queue the reports of one day.  0, or -1 when one could not be queued. */
static int
send_day(struct db *db, const struct config *cfg, time_t day)
{
	struct queue_rcpt rcpts[DMARC_RUA_MAX];
	char id[QUEUE_ID_MAX], date[16];
	struct dmarc_day d;
	const char *error;
	struct tm tm;
	size_t i, k;
	int r = 0;

	gmtime_r(&day, &tm);
	snprintf_checked(date, sizeof(date), "%04d-%02d-%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	if (dmarc_day_build(db, cfg, day, DMARC_BUILD_MAIL, &d, &error) < 0) {
		log_error("queue: DMARC reports of %s: %s", date, error);
		dmarc_day_free(&d);
		return -1;
	}
	for (i = 0; i < d.n; i++) {
		const struct dmarc_out *o = &d.out[i];

		if (o->note[0] != '\0')
			log_warn("queue: DMARC report of %s for %s: %s", date,
			    o->rep->domain, o->note);
		if (o->mail.len == 0)
			continue;
		memset(rcpts, 0, sizeof(rcpts));
		for (k = 0; k < o->rua.n; k++) {
			addr_format(&o->rua.addr[k], rcpts[k].address,
			    sizeof(rcpts[k].address));
			rcpts[k].status = QRCPT_PENDING;
		}
		if (queue_write(cfg->queue_dir, d.from, rcpts, o->rua.n,
		    o->mail.data, o->mail.len, NULL, id, sizeof(id)) < 0) {
			log_error("queue: DMARC report of %s for %s cannot be "
			    "queued: %s", date, o->rep->domain,
			    strerror(errno));
			r = -1;
			continue;
		}
		log_info("queue: DMARC report of %s for %s (%lu messages) "
		    "queued as %s to %zu address(es), report-id %s", date,
		    o->rep->domain, o->messages, id, o->rua.n, o->report_id);
	}
	dmarc_day_free(&d);
	return r;
}

static void *
job_main(void *arg)
{
	const struct config *cfg = &job.cfg;
	const char *error;
	struct db *db = NULL;
	char err[512];
	time_t day;
	long n;
	int ok = 1;

	(void)arg;
	if (db_open(cfg->database, 0, &db, err, sizeof(err)) < 0) {
		log_error("queue: DMARC reports: %s", err);
		ok = 0;
	} else {
		if (cfg->dmarc_reports)
			for (day = job.first; day <= job.last; day += 86400)
				if (send_day(db, cfg, day) < 0)
					ok = 0;
		n = db_dmarc_purge(db, dmarc_utc_day(time(NULL)) -
		    (time_t)DMARC_KEEP_DAYS * 86400, &error);
		if (n < 0)
			log_error("queue: %s", error);
		else if (n > 0)
			log_info("queue: purged %ld DMARC evaluations older "
			    "than %d days", n, DMARC_KEEP_DAYS);
		db_close(&db);
	}
	if (ok && state_write(cfg, job.last) < 0) {
		log_error("queue: cannot write %s/%s: %s", cfg->state_dir,
		    STATE_NAME, strerror(errno));
		ok = 0;
	}
	job.ok = ok;
	__atomic_store_n(&job.finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

void
queue_dmarc_tick(const struct config *cfg, time_t now)
{
	unsigned char rnd[4];
	time_t today, yesterday, last;

	if (job.running) {
		if (!__atomic_load_n(&job.finished, __ATOMIC_ACQUIRE))
			return;
		pthread_join(job.th, NULL);
		job.running = 0;
		if (!job.ok)
			job.next_check = now + RETRY_DELAY;
	}
	if (now < job.next_check)
		return;
	if (job.delay == 0) {
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			memcpy(rnd, &now, sizeof(rnd));
		job.delay = DELAY_MIN + (time_t)(((unsigned)rnd[0] << 24 |
		    (unsigned)rnd[1] << 16 | (unsigned)rnd[2] << 8 | rnd[3]) %
		    DELAY_SPREAD);
	}
	today = dmarc_utc_day(now);
	yesterday = today - 86400;
	last = state_read(cfg);
	if (last >= yesterday) {		/* done: tomorrow, then */
		job.next_check = today + 86400 + job.delay;
		return;
	}
	if (now < today + job.delay) {
		job.next_check = today + job.delay;
		return;
	}
	job.cfg = *cfg;
	job.last = yesterday;
	job.first = yesterday;
	if (last >= 0) {
		job.first = last + 86400;
		if (job.first < yesterday - (BACKLOG_DAYS - 1) * 86400)
			job.first = yesterday - (BACKLOG_DAYS - 1) * 86400;
	}
	job.finished = 0;
	if (pthread_create(&job.th, NULL, job_main, NULL) != 0) {
		log_error("queue: cannot start the DMARC report job");
		job.next_check = now + RETRY_DELAY;
		return;
	}
	job.running = 1;
}

void
queue_dmarc_stop(void)
{
	int waited;

	if (!job.running)
		return;
	/* Usually a few milliseconds from its end (DNS checks aside). */
	for (waited = 0; waited < STOP_WAIT_MS &&
	    !__atomic_load_n(&job.finished, __ATOMIC_ACQUIRE); waited += 20)
		usleep(20 * 1000);
	if (__atomic_load_n(&job.finished, __ATOMIC_ACQUIRE)) {
		pthread_join(job.th, NULL);
		job.running = 0;
		return;
	}
	log_warn("queue: stopping while the DMARC report job runs; it runs "
	    "again at the next start");
}
