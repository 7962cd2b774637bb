/*
 * main.c - imapd: start-up in a fixed order (config, bind as root, drop
 * privileges, TLS, fork the workers; then in each worker authentication,
 * database, threads, inotify), the event loop, and a clean stop on
 * SIGTERM (BYE to every session, exit 0).  With workers > 1 the process
 * that binds stays a master (common/server.c) and never gets past
 * server_fork_workers().
 */
#include "imapd.h"
#include "../common/log.h"
#include "../common/privdrop.h"
#include "../common/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void
imapd_on_accept(struct server *srv, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	imap_session_accept(srv->arg, l, fd, peer, peerlen);
}

static void
imapd_on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct imapd *d = w->data;
	struct imap_session *s;

	(void)loop;
	(void)revents;
	log_warn("stop: %u sessions still open after 10s, closing them",
	    d->nsessions);
	for (s = d->sessions; s != NULL; s = s->next)
		if (s->c != NULL)
			conn_abort(s->c);
}

static void
imapd_on_index_sweep(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	imap_index_sweep(w->data, 0);
}

static void
imapd_on_stop(struct server *srv)
{
	struct imapd *d = srv->arg;

	d->stopping = 1;
	imap_session_shutdown_all(d);
	ev_timer_init(&d->stop_timer, imapd_on_stop_timer, 10., 0.);
	d->stop_timer.data = d;
	ev_timer_start(d->loop, &d->stop_timer);
	ev_unref(d->loop);
}

int
main(int argc, char **argv)
{
	static struct imapd d;
	struct authfail_limits afl = AUTHFAIL_LIMITS_DEFAULT;
	const char *conf;
	char err[1024];
	int debug;

	server_args(argc, argv, "imapd [-d] [-c buzon.conf]", &conf, &debug);
	log_init("imapd", debug);
	if (config_load(&d.cfg, conf, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (d.cfg.imapd_listen.n == 0)
		log_fatal("%s: no listen lines in [imapd]", d.cfg.path);
	if (d.cfg.imapd_autologout < 1)
		log_fatal("%s: [imapd] autologout must be at least 1s",
		    d.cfg.path);
	if (d.cfg.imapd_autologout < 1800)
		log_warn("[imapd] autologout %llus is below the 30 minutes "
		    "RFC 3501 asks for; IDLE clients may be cut off",
		    (unsigned long long)d.cfg.imapd_autologout);
	d.srv.nworkers = server_workers(d.cfg.imapd_workers);
	d.tls = server_prepare(&d.srv, &d.cfg, &d.cfg.imapd_listen);
	/*
	 * Everything from here on (SQLite, threads, inotify, the loop)
	 * belongs to one worker: a fork would copy it half made.
	 */
	server_fork_workers(&d.srv);
	d.auth = auth_ctx_new(d.cfg.database, d.cfg.hostname, err, sizeof(err));
	if (d.auth == NULL)
		log_fatal("%s", err);
	if (db_open(d.cfg.database, 0, &d.db, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	d.authfail = authfail_new(&afl, NULL, NULL);
	if (d.authfail == NULL)
		log_fatal("out of memory");

	d.loop = ev_default_loop(EVFLAG_AUTO);
	d.pool = pool_new(d.loop, 4);
	if (d.pool == NULL)
		log_fatal("cannot start worker threads");
	d.dirwatch = dirwatch_new(d.loop);
	if (d.dirwatch == NULL)
		log_fatal("inotify: %s", strerror(errno));
	ev_timer_init(&d.index_sweep, imapd_on_index_sweep, 5., 5.);
	d.index_sweep.data = &d;
	ev_timer_start(d.loop, &d.index_sweep);
	ev_unref(d.loop);
	d.srv.on_accept = imapd_on_accept;
	d.srv.on_stop = imapd_on_stop;
	d.srv.arg = &d;
	if (server_start(&d.srv, d.loop, d.cfg.max_connections_per_ip) < 0)
		log_fatal("cannot start listeners");

	ev_run(d.loop, 0);

	if (d.stopping) {
		ev_ref(d.loop);
		ev_timer_stop(d.loop, &d.stop_timer);
	}
	ev_ref(d.loop);
	ev_timer_stop(d.loop, &d.index_sweep);
	imap_index_sweep(&d, 1);
	pool_destroy(&d.pool);
	dirwatch_free(&d.dirwatch);
	auth_ctx_free(&d.auth);
	db_close(&d.db);
	authfail_free(&d.authfail);
	SSL_CTX_free(d.tls);
	server_free(&d.srv);
	log_info("stopped");
	return 0;
}
