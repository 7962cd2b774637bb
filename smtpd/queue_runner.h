/*
 * queue_runner.h - the outbound queue runner: a child process of smtpd
 * that delivers what waits in queue_dir (DESIGN.md "Queue").
 *
 * Its own process so that nothing a remote server sends can take the
 * listeners down, and so that smtpd's event loop never waits on DNS or a
 * slow MX.  Inside, a scheduler thread watches queue_dir (inotify) and
 * hands due entries to delivery threads, each running one blocking,
 * timeout-bounded SMTP session at a time.  Private to smtpd/.
 */
#ifndef BUZON_QUEUE_RUNNER_H
#define BUZON_QUEUE_RUNNER_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/ssl.h>

#include "../common/config.h"
#include "../common/db.h"
#include "../store/queue.h"
#include "mx_lookup.h"

struct server;

/* What every delivery thread reads; set up before the threads start. */
struct runner {
	struct config cfg;
	SSL_CTX *ssl;			/* client TLS */
	unsigned char srs_key[32];
	char relay_host[256];		/* "" = MX routing */
	unsigned relay_port;
	char relay_pass[256];		/* relayhost_password(_file) */
	volatile sig_atomic_t stopping;
};

/* One delivery thread's own resources. */
struct runner_worker {
	struct runner *r;
	struct db *db;
	unsigned seed;
};

enum attempt_result {
	ATTEMPT_DONE,		/* every recipient sent or bounced: removed */
	ATTEMPT_RETRY,		/* some wait: *next_try_r says when */
	ATTEMPT_GONE,		/* not there any more (mailadm queue del) */
};

/* One recipient during an attempt. */
struct attempt_rcpt {
	size_t idx;			/* in env.rcpts */
	enum { AR_PENDING, AR_SENT, AR_BOUNCED } result;
	char status[16];		/* RFC 3463 code of a bounce */
	char diag[600];			/* the remote reply, or why */
	char remote_mta[MX_NAME_MAX];
	char mail_from[ADDR_MAX];	/* envelope sender used (SRS) */
};

/* One attempt at one queue entry (queue_attempt.c). */
struct attempt {
	struct runner_worker *w;
	struct queue_env env;
	int fd;				/* ID.msg */
	const char *msg;		/* mapped, LF line ends */
	size_t len;
	struct buf sig;			/* DKIM-Signature header or empty */
	struct attempt_rcpt *ar;	/* the recipients pending at start */
	size_t nar;
	time_t now;
	int eightbit;
	char last_error[512];
};

/*
 * main.c side: start the runner, a new image of this program run as
 * "smtpd --queue-runner [-d]" (never a bare fork of smtpd) that reads
 * cfg from descriptor 3.  Its pid, or -1.
 */
pid_t queue_runner_spawn(const struct config *cfg, struct server *srv);
/* "smtpd --queue-runner [-d]": the runner itself.  Never returns. */
#define QUEUE_RUNNER_ARG "--queue-runner"
void queue_runner_main(int debug) __attribute__((noreturn));

/* queue_attempt.c */
enum attempt_result queue_attempt(struct runner_worker *w, const char *id,
    time_t *next_try_r);
/* The delay before attempt number n+1 (n >= 1 attempts made). */
time_t queue_retry_delay(unsigned attempts, unsigned jitter);

/* queue_remote.c: send the listed recipients (indexes into a->ar). */
void queue_remote(struct attempt *a, const size_t *which, size_t n,
    const char *domain);

/* queue_local.c: deliver one recipient in our own domains. */
void queue_local(struct attempt *a, struct attempt_rcpt *ar);

/* queue_dsn.c: queue the bounce for a->ar's bounced recipients. 0 / -1. */
int queue_dsn(struct attempt *a);

#endif
