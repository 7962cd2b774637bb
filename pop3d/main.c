/*
 * main.c - pop3d: start-up in a fixed order (config, bind as root, drop
 * privileges, then TLS, authentication, threads), the event loop, and a
 * clean stop on SIGTERM (sessions closed without applying deletions,
 * exit 0).
 */
#include "pop3d.h"
#include "../common/log.h"
#include "../common/privdrop.h"
#include "../common/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define POP3_POOL_THREADS 4	/* password checks, maildrop sync, UPDATE */
#define POP3_STOP_GRACE 10.	/* seconds for running RETRs and jobs */

static void
pop3d_on_accept(struct server *srv, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen)
{
	pop3_session_accept(srv->arg, l, fd, peer, peerlen);
}

static void
pop3d_on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pop3d *d = w->data;
	struct pop3_session *s;

	(void)loop;
	(void)revents;
	log_warn("stop: %u sessions still open after %.0fs, closing them",
	    d->nsessions, POP3_STOP_GRACE);
	for (s = d->sessions; s != NULL; s = s->next)
		if (s->c != NULL)
			conn_abort(s->c);
}

static void
pop3d_on_stop(struct server *srv)
{
	struct pop3d *d = srv->arg;

	d->stopping = 1;
	pop3_session_shutdown_all(d);
	ev_timer_init(&d->stop_timer, pop3d_on_stop_timer, POP3_STOP_GRACE, 0.);
	d->stop_timer.data = d;
	ev_timer_start(d->loop, &d->stop_timer);
	ev_unref(d->loop);
}

int
main(int argc, char **argv)
{
	static struct pop3d d;
	struct authfail_limits afl = AUTHFAIL_LIMITS_DEFAULT;
	const char *conf;
	char err[1024];
	int debug;

	server_args(argc, argv, "pop3d [-d] [-c buzon.conf]", &conf, &debug);
	log_init("pop3d", debug);
	if (config_load(&d.cfg, conf, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (d.cfg.pop3d_listen.n == 0)
		log_fatal("%s: no listen lines in [pop3d]", d.cfg.path);
	if (d.cfg.pop3d_idle_timeout < 1)
		log_fatal("%s: [pop3d] idle_timeout must be at least 1s",
		    d.cfg.path);
	if (d.cfg.pop3d_idle_timeout < 600)
		log_warn("[pop3d] idle_timeout %llus is below the 10 minutes "
		    "RFC 1939 asks for",
		    (unsigned long long)d.cfg.pop3d_idle_timeout);
	d.tls = server_prepare(&d.srv, &d.cfg, &d.cfg.pop3d_listen);
	d.auth = auth_ctx_new(d.cfg.database, d.cfg.hostname, err, sizeof(err));
	if (d.auth == NULL)
		log_fatal("%s", err);
	d.authfail = authfail_new(&afl, NULL, NULL);
	if (d.authfail == NULL)
		log_fatal("out of memory");

	d.loop = ev_default_loop(EVFLAG_AUTO);
	d.pool = pool_new(d.loop, POP3_POOL_THREADS);
	if (d.pool == NULL)
		log_fatal("cannot start worker threads");
	d.srv.on_accept = pop3d_on_accept;
	d.srv.on_stop = pop3d_on_stop;
	d.srv.arg = &d;
	if (server_start(&d.srv, d.loop, d.cfg.max_connections_per_ip) < 0)
		log_fatal("cannot start listeners");

	ev_run(d.loop, 0);

	if (d.stopping) {
		ev_ref(d.loop);
		ev_timer_stop(d.loop, &d.stop_timer);
	}
	pool_destroy(&d.pool);
	auth_ctx_free(&d.auth);
	authfail_free(&d.authfail);
	SSL_CTX_free(d.tls);
	server_free(&d.srv);
	log_info("stopped");
	return 0;
}
