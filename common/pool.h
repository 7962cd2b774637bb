/*
 * pool.h - a small thread pool for work that blocks by nature (fsync-ed
 * deliveries, DNS inside the policy libraries).  work() runs on a pool
 * thread and must not touch the event loop or any session; done() runs
 * afterwards on the loop thread, in the order jobs finish.
 */
#ifndef BUZON_POOL_H
#define BUZON_POOL_H

#include <ev.h>

struct pool;

struct pool_job {
	void (*work)(struct pool_job *job);	/* pool thread */
	void (*done)(struct pool_job *job);	/* loop thread */
	struct pool_job *next;			/* pool's own use */
};

struct pool *pool_new(struct ev_loop *loop, unsigned nthreads);
void pool_submit(struct pool *p, struct pool_job *job);
/* Jobs submitted whose done() has not run yet. */
unsigned pool_busy(const struct pool *p);
/* Wait for all jobs (running their done()), stop the threads, free. */
void pool_destroy(struct pool **pp);

#endif
