/*
 * imap_search_par.c - a content SEARCH (BODY, TEXT) over many messages
 * spread over threads.  Decoding every text part of a mailbox is the one
 * command that takes tens of milliseconds; with one client the other
 * cores would sit idle meanwhile.
 *
 * The threads only read files by the names the listing gave and run the
 * pure evaluator (search_eval_content: no session, index or loop state).
 * A file not found under its name is left to the caller, on the loop
 * thread, which may sync the index to find it.
 *
 * Must never: touch the index, the session or the loop from a thread;
 * hold more than one message per thread.
 */
#include "imapd.h"
#include "imap_search.h"
#include "../common/buf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct par_part {
	const struct search_program *prog;
	const struct mbox_msglist *list;
	const size_t *cand;
	const struct search_msg *sm;
	signed char *res;
	size_t first, n, step;		/* cand[first], cand[first+step], ... */
};

static void *
par_run(void *arg)
{
	struct par_part *p = arg;
	struct buf msg;
	size_t k;

	buf_init(&msg, IMAP_LITERAL_MAX);
	for (k = p->first; k < p->n; k += p->step) {
		int r = mbox_msglist_read_file(p->list, p->cand[k], &msg);

		/* 0: renamed since the listing, for the caller (-2) */
		p->res[k] = (signed char)(r < 0 ? -1 : r == 0 ? -2 :
		    search_eval_content(p->prog, &p->sm[k], buf_cstr(&msg),
		    msg.len));
	}
	buf_free(&msg);
	return NULL;
}

void
imap_search_content_par(const struct search_program *prog,
    const struct mbox_msglist *list, const size_t *cand,
    const struct search_msg *sm, size_t n, signed char *res,
    unsigned nthreads)
{
	struct par_part parts[IMAP_SEARCH_THREADS_MAX];
	pthread_t th[IMAP_SEARCH_THREADS_MAX];
	int started[IMAP_SEARCH_THREADS_MAX];
	unsigned t;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > IMAP_SEARCH_THREADS_MAX)
		nthreads = IMAP_SEARCH_THREADS_MAX;
	/* interleaved, so that big messages in a row do not load one
	 * thread; part 0 runs on the calling thread */
	for (t = 0; t < nthreads; t++) {
		parts[t].prog = prog;
		parts[t].list = list;
		parts[t].cand = cand;
		parts[t].sm = sm;
		parts[t].res = res;
		parts[t].first = t;
		parts[t].n = n;
		parts[t].step = nthreads;
		started[t] = t > 0 &&
		    pthread_create(&th[t], NULL, par_run, &parts[t]) == 0;
	}
	(void)par_run(&parts[0]);
	for (t = 1; t < nthreads; t++) {
		if (started[t])
			pthread_join(th[t], NULL);
		else
			(void)par_run(&parts[t]);	/* no thread: here */
	}
}
