/*
 * queue_dmarc.h - the queue runner's daily DMARC job: yesterday's
 * aggregate reports queued once a day when [policy] dmarc_reports = on,
 * and evaluations older than DMARC_KEEP_DAYS purged.  Private to smtpd/.
 */
#ifndef BUZON_QUEUE_DMARC_H
#define BUZON_QUEUE_DMARC_H

#include <time.h>

#include "../common/config.h"

/*
 * Called by the scheduler on every turn (at least every few minutes):
 * starts the day's job on its own thread when it is due, and reaps it
 * when it has finished.  Never blocks.
 */
void queue_dmarc_tick(const struct config *cfg, time_t now);
/* At stop: reap a finished job; one still running dies with the process. */
void queue_dmarc_stop(void);

#endif
