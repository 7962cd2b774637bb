/*
 * main.c - smtpd: start-up in a fixed order (config, bind as root, drop
 * privileges, then TLS/DB/threads), the event loop, and a clean stop on
 * SIGTERM that never drops a message it acknowledged.
 */
#include "smtpd.h"
#include "queue_runner.h"
#include "../common/log.h"
#include "../common/privdrop.h"
#include "../common/srs.h"
#include "../common/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>

/* SASL is set up only where some listener can use it. */
static int
smtpd_has_submission(const struct listen_set *ls)
{
	int i;

	for (i = 0; i < ls->n; i++)
		if (ls->l[i].kind == LISTEN_SUBMISSION ||
		    ls->l[i].kind == LISTEN_SUBMISSIONS)
			return 1;
	return 0;
}

static void
smtpd_on_accept(struct server *srv, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	smtp_session_accept(srv->arg, l, fd, peer, peerlen);
}

static void
smtpd_on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct smtpd *d = w->data;
	struct smtp_session *s;

	(void)loop;
	(void)revents;
	log_warn("stop: %u sessions still open after 30s, closing them",
	    d->nsessions);
	for (s = d->sessions; s != NULL; s = s->next)
		if (s->c != NULL && s->state != SMTP_ST_BUSY)
			conn_abort(s->c);
}

static void smtpd_runner_start(struct smtpd *d);

static void
smtpd_on_runner_restart(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	smtpd_runner_start(w->data);
}

/* The runner exited: expected at stop, otherwise start another. */
static void
smtpd_on_runner_exit(struct ev_loop *loop, ev_child *w, int revents)
{
	struct smtpd *d = w->data;
	time_t lived = time(NULL) - d->runner_started;

	(void)revents;
	ev_child_stop(loop, w);
	d->runner_pid = 0;
	if (d->stopping)
		return;
	/* Dying at once again and again (a bad relayhost file...): back off. */
	d->runner_backoff = lived < 10 ? (d->runner_backoff < 1 ? 1 :
	    d->runner_backoff * 2) : 1;
	if (d->runner_backoff > 60)
		d->runner_backoff = 60;
	log_warn("queue runner exited (%s %d), starting another in %.0fs",
	    WIFSIGNALED(w->rstatus) ? "signal" : "status",
	    WIFSIGNALED(w->rstatus) ? WTERMSIG(w->rstatus) :
	    WEXITSTATUS(w->rstatus), d->runner_backoff);
	ev_timer_init(&d->runner_restart, smtpd_on_runner_restart,
	    d->runner_backoff, 0.);
	d->runner_restart.data = d;
	ev_timer_start(loop, &d->runner_restart);
}

static void
smtpd_runner_start(struct smtpd *d)
{
	pid_t pid = queue_runner_spawn(&d->cfg, &d->srv);

	if (pid < 0) {
		log_error("cannot start the queue runner: %s", strerror(errno));
		d->runner_backoff = 10;
		ev_timer_init(&d->runner_restart, smtpd_on_runner_restart,
		    d->runner_backoff, 0.);
		d->runner_restart.data = d;
		ev_timer_start(d->loop, &d->runner_restart);
		return;
	}
	d->runner_pid = pid;
	d->runner_started = time(NULL);
	ev_child_init(&d->runner_w, smtpd_on_runner_exit, pid, 0);
	d->runner_w.data = d;
	ev_child_start(d->loop, &d->runner_w);
}

static void
smtpd_on_stop(struct server *srv)
{
	struct smtpd *d = srv->arg;

	d->stopping = 1;
	ev_timer_stop(d->loop, &d->runner_restart);
	if (d->runner_pid > 0)
		kill(d->runner_pid, SIGTERM);	/* ev_child waits for it */
	smtp_session_shutdown_all(d);
	ev_timer_init(&d->stop_timer, smtpd_on_stop_timer, 30., 0.);
	d->stop_timer.data = d;
	ev_timer_start(d->loop, &d->stop_timer);
	ev_unref(d->loop);	/* do not keep the loop alive by itself */
}

int
main(int argc, char **argv)
{
	static struct smtpd d;
	struct authfail_limits afl = AUTHFAIL_LIMITS_DEFAULT;
	const char *conf;
	char err[1024];
	int debug;

	if (argc >= 2 && strcmp(argv[1], QUEUE_RUNNER_ARG) == 0)
		queue_runner_main(argc > 2 && strcmp(argv[2], "-d") == 0);
	server_args(argc, argv, "smtpd [-d] [-c buzon.conf]", &conf, &debug);
	log_init("smtpd", debug);
	if (config_load(&d.cfg, conf, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (d.cfg.smtpd_listen.n == 0)
		log_fatal("%s: no listen lines in [smtpd]", d.cfg.path);

	d.tls = server_prepare(&d.srv, &d.cfg, &d.cfg.smtpd_listen);
	if (db_open(d.cfg.database, 0, &d.db, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (smtpd_has_submission(&d.cfg.smtpd_listen)) {
		/* after the privilege drop: the DB must not get root's -wal */
		d.auth = auth_ctx_new(d.cfg.database, d.cfg.hostname, err,
		    sizeof(err));
		if (d.auth == NULL)
			log_fatal("%s", err);
		d.authfail = authfail_new(&afl, NULL, NULL);
		if (d.authfail == NULL)
			log_fatal("out of memory");
	}
	if (strlcpy_checked(d.spool_dir, d.cfg.queue_dir,
	    sizeof(d.spool_dir)) < 0)
		log_fatal("queue_dir too long");
	if (mkdir(d.cfg.queue_dir, 0700) < 0 && errno != EEXIST)
		log_fatal("%s: cannot create queue_dir: %s (run mailadm init)",
		    d.cfg.queue_dir, strerror(errno));
	if (srs_secret_load(d.cfg.state_dir, 1, d.srs_key, err,
	    sizeof(err)) < 0)
		log_fatal("%s", err);

	d.loop = ev_default_loop(EVFLAG_AUTO);
	/* Before the delivery threads exist: the child starts with none. */
	smtpd_runner_start(&d);
	d.pool = pool_new(d.loop, d.cfg.delivery_threads);
	if (d.pool == NULL)
		log_fatal("cannot start delivery threads");
	d.srv.on_accept = smtpd_on_accept;
	d.srv.on_stop = smtpd_on_stop;
	d.srv.arg = &d;
	if (server_start(&d.srv, d.loop, d.cfg.max_connections_per_ip) < 0)
		log_fatal("cannot start listeners");

	ev_run(d.loop, 0);

	/* Every session is gone and every delivery has completed. */
	if (d.stopping) {
		ev_ref(d.loop);
		ev_timer_stop(d.loop, &d.stop_timer);
	}
	pool_destroy(&d.pool);
	auth_ctx_free(&d.auth);
	authfail_free(&d.authfail);
	db_close(&d.db);
	SSL_CTX_free(d.tls);
	server_free(&d.srv);
	log_info("stopped");
	return 0;
}
