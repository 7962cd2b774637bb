/*
 * server_workers.c - the master that pre-forks a daemon's workers and
 * supervises them (see server.h): stop on SIGTERM/SIGINT, give up when a
 * worker fails at start-up, replace one that crashes later.  The master
 * must never open a database, a thread or an event loop: workers fork
 * from it, at start and after a crash, and would inherit them.
 */
#include "server.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

unsigned
server_workers(unsigned configured)
{
	long n = configured != 0 ? (long)configured :
	    sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	if (n > CONFIG_MAX_WORKERS)
		n = CONFIG_MAX_WORKERS;
	return (unsigned)n;
}

/* A worker as the master sees it. */
struct worker {
	pid_t pid;			/* 0: not running */
	struct timespec started;
	struct timespec restart_at;	/* valid while restart is set */
	int restart;
};

/* A worker that dies this soon after its fork failed to start. */
#define WORKER_START_SECS 2
/* Crash loops cost at most one fork per worker and second. */
#define WORKER_RESTART_SECS 1

static double
ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(a->tv_sec - b->tv_sec) +
	    (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

static void
describe_status(int st, char *out, size_t outlen)
{
	if (WIFEXITED(st))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, outlen, "killed by signal %d (%s)%s", WTERMSIG(st),
		    strsignal(WTERMSIG(st)),
		    WCOREDUMP(st) ? ", core dumped" : "");
	else
		snprintf(out, outlen, "ended with wait status 0x%x", st);
}

/*
 * In the new worker: die with the master, keep socket index of each
 * group and nothing else.  SIGTERM and SIGINT stay blocked until
 * server_start has its handlers, so a stop asked for during start-up
 * waits for them instead of killing the worker.
 */
static void
worker_setup(struct server *s, unsigned index, pid_t master)
{
	unsigned nw = s->nworkers, k;
	sigset_t chld;
	int i;

	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		log_fatal("worker %u: PR_SET_PDEATHSIG: %s", index,
		    strerror(errno));
	/* The master may have died before prctl took effect. */
	if (getppid() != master) {
		log_info("worker %u: master %ld is gone; exiting", index,
		    (long)master);
		exit(0);
	}
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_UNBLOCK, &chld, NULL);
	for (i = 0; i < s->nls; i++) {
		for (k = 0; k < nw; k++)
			if (k != index)
				close(s->wfds[(size_t)i * nw + k]);
		s->ls[i].fd = s->wfds[(size_t)i * nw + index];
	}
	free(s->wfds);
	s->wfds = NULL;
}

/* fork worker index: its pid in the master, 0 in the worker, -1 error. */
static pid_t
worker_spawn(struct server *s, struct worker *w, unsigned index)
{
	pid_t master = getpid(), pid;

	pid = fork();
	if (pid < 0) {
		log_error("worker %u: fork: %s", index, strerror(errno));
		return -1;
	}
	if (pid == 0) {
		worker_setup(s, index, master);
		return 0;
	}
	w[index].pid = pid;
	w[index].restart = 0;
	clock_gettime(CLOCK_MONOTONIC, &w[index].started);
	log_info("worker %u started: pid %ld", index, (long)pid);
	return pid;
}

static void
master_close_listeners(struct server *s)
{
	size_t i, n = (size_t)s->nls * s->nworkers;

	for (i = 0; i < n; i++)
		if (s->wfds[i] >= 0) {
			close(s->wfds[i]);
			s->wfds[i] = -1;
		}
}

/* Stop accepting here, ask every worker to stop, forget restarts. */
static void
master_stop(struct server *s, struct worker *w)
{
	unsigned i;

	master_close_listeners(s);
	for (i = 0; i < s->nworkers; i++) {
		w[i].restart = 0;
		if (w[i].pid > 0 && kill(w[i].pid, SIGTERM) < 0)
			log_error("worker %u (pid %ld): SIGTERM: %s", i,
			    (long)w[i].pid, strerror(errno));
	}
}

/*
 * Collect every ended worker.  While running, a worker that failed
 * within WORKER_START_SECS of its fork stops everything (a bad database
 * or certificate would fail again: no fork loop); a later death is a
 * crash, and the worker is started again.  *stopping and *failed are
 * the master's state.
 */
static void
master_reap(struct server *s, struct worker *w, int *stopping, int *failed)
{
	struct timespec now;
	char how[96];
	pid_t pid;
	int st;

	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		unsigned i;
		int ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		double age;

		for (i = 0; i < s->nworkers; i++)
			if (w[i].pid == pid)
				break;
		if (i == s->nworkers)
			continue;
		w[i].pid = 0;
		describe_status(st, how, sizeof(how));
		if (*stopping) {
			if (!ok) {
				log_error("worker %u (pid %ld) %s while stopping",
				    i, (long)pid, how);
				*failed = 1;
			}
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		age = ts_diff(&now, &w[i].started);
		if (!ok && age < WORKER_START_SECS) {
			log_error("worker %u (pid %ld) %s %.1fs after it was "
			    "started: start-up failed, stopping", i, (long)pid,
			    how, age);
			*failed = 1;
			*stopping = 1;
			master_stop(s, w);
			continue;
		}
		if (ok)
			log_warn("worker %u (pid %ld) exited on its own; "
			    "starting another", i, (long)pid);
		else
			log_error("worker %u (pid %ld) %s; starting another", i,
			    (long)pid, how);
		w[i].restart = 1;
		w[i].restart_at = w[i].started;
		w[i].restart_at.tv_sec += WORKER_RESTART_SECS;
	}
}

/*
 * The master's life after the first fork: wait for signals, restart
 * crashed workers, stop.  Returns only in a worker forked as a
 * replacement (its index); the master exits from here.
 */
static unsigned
master_run(struct server *s, struct worker *w, const sigset_t *sigs)
{
	int stopping = 0, failed = 0;

	for (;;) {
		struct timespec now, until;
		unsigned i, running = 0, due = s->nworkers;
		siginfo_t si;
		int sig;

		for (i = 0; i < s->nworkers; i++) {
			if (w[i].pid > 0)
				running++;
			if (w[i].restart && (due == s->nworkers ||
			    ts_diff(&w[i].restart_at, &w[due].restart_at) < 0))
				due = i;
		}
		if (stopping && running == 0) {
			log_info("stopped");
			exit(failed ? 1 : 0);
		}
		if (due == s->nworkers) {
			sig = sigwaitinfo(sigs, &si);
		} else {
			double left;

			clock_gettime(CLOCK_MONOTONIC, &now);
			left = ts_diff(&w[due].restart_at, &now);
			if (left <= 0) {
				pid_t pid = worker_spawn(s, w, due);

				if (pid == 0) {
					free(w);
					return due;
				}
				if (pid < 0) {
					w[due].restart_at = now;
					w[due].restart_at.tv_sec +=
					    WORKER_RESTART_SECS;
				}
				continue;
			}
			until.tv_sec = (time_t)left;
			until.tv_nsec = (long)((left - (double)until.tv_sec) *
			    1e9);
			sig = sigtimedwait(sigs, &si, &until);
		}
		if (sig < 0)
			continue;	/* a restart is due, or EINTR */
		if (sig == SIGCHLD) {
			master_reap(s, w, &stopping, &failed);
		} else if (!stopping) {
			log_info("signal %d: stopping %u workers", sig,
			    running);
			stopping = 1;
			master_stop(s, w);
		}
	}
}

unsigned
server_fork_workers(struct server *s)
{
	struct worker *w;
	sigset_t sigs;
	unsigned i;

	if (s->nworkers <= 1)
		return 0;
	/*
	 * Blocked before the first fork, so that neither a child's death
	 * nor a stop can come between a fork and the wait for it.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &sigs, NULL) < 0)
		log_fatal("sigprocmask: %s", strerror(errno));
	w = calloc(s->nworkers, sizeof(*w));
	if (w == NULL)
		log_fatal("out of memory");
	for (i = 0; i < s->nworkers; i++) {
		pid_t pid = worker_spawn(s, w, i);

		if (pid == 0) {
			free(w);
			return i;
		}
		if (pid < 0) {
			/* The workers already forked follow by PDEATHSIG. */
			log_fatal("cannot start %u workers", s->nworkers);
		}
	}
	return master_run(s, w, &sigs);
}
