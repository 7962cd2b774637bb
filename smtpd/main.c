/*
 * main.c - smtpd: start-up in a fixed order (config, bind as root, drop
 * privileges, then TLS/DB/threads), the event loop, and a clean stop on
 * SIGTERM that never drops a message it acknowledged.
 */
#include "smtpd.h"
#include "../common/log.h"
#include "../common/privdrop.h"
#include "../common/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static void
smtpd_on_stop(struct server *srv)
{
	struct smtpd *d = srv->arg;

	d->stopping = 1;
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

	d.loop = ev_default_loop(EVFLAG_AUTO);
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
