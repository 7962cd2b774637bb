/*
 * pool.c - thread pool with completion on the libev loop (ev_async).
 * The only shared state is two job lists under one mutex.
 */
#include "pool.h"
#include "log.h"

#include <pthread.h>
#include <stdlib.h>

struct pool {
	struct ev_loop *loop;
	ev_async async;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pool_job *todo_head, *todo_tail;
	struct pool_job *done_head, *done_tail;
	unsigned busy;		/* loop thread only */
	int stopping;
	unsigned nthreads;
	pthread_t *threads;
};

static void
list_push(struct pool_job **head, struct pool_job **tail, struct pool_job *j)
{
	j->next = NULL;
	if (*tail != NULL)
		(*tail)->next = j;
	else
		*head = j;
	*tail = j;
}

static void *
pool_thread(void *arg)
{
	struct pool *p = arg;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct pool_job *j;

		while (p->todo_head == NULL && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->todo_head == NULL)
			break;
		j = p->todo_head;
		p->todo_head = j->next;
		if (p->todo_head == NULL)
			p->todo_tail = NULL;
		pthread_mutex_unlock(&p->mu);

		j->work(j);

		pthread_mutex_lock(&p->mu);
		list_push(&p->done_head, &p->done_tail, j);
		ev_async_send(p->loop, &p->async);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static void
pool_run_done(struct pool *p)
{
	struct pool_job *list, *next;

	pthread_mutex_lock(&p->mu);
	list = p->done_head;
	p->done_head = p->done_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	for (; list != NULL; list = next) {
		next = list->next;
		if (--p->busy == 0)
			ev_unref(p->loop);
		list->done(list);
	}
}

static void
pool_on_async(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)loop;
	(void)revents;
	pool_run_done(w->data);
}

struct pool *
pool_new(struct ev_loop *loop, unsigned nthreads)
{
	struct pool *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	unsigned i;

	if (p == NULL)
		return NULL;
	p->loop = loop;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	ev_async_init(&p->async, pool_on_async);
	p->async.data = p;
	ev_async_start(loop, &p->async);
	ev_unref(loop);		/* the pool alone does not keep the loop alive */
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (p->threads == NULL)
		log_fatal("out of memory");
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&p->threads[i], &attr, pool_thread, p) != 0)
			log_fatal("cannot start pool thread");
		p->nthreads++;
	}
	pthread_attr_destroy(&attr);
	return p;
}

void
pool_submit(struct pool *p, struct pool_job *job)
{
	/* Pending work keeps the loop alive (the async watcher is unref'd). */
	if (p->busy++ == 0)
		ev_ref(p->loop);
	pthread_mutex_lock(&p->mu);
	list_push(&p->todo_head, &p->todo_tail, job);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

unsigned
pool_busy(const struct pool *p)
{
	return p->busy;
}

void
pool_destroy(struct pool **pp)
{
	struct pool *p = *pp;
	unsigned i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pool_run_done(p);
	ev_ref(p->loop);
	ev_async_stop(p->loop, &p->async);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p->threads);
	free(p);
	*pp = NULL;
}
