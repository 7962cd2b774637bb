/*
 * server.h - what every daemon does around its protocol: parse -c/-d,
 * bind the configured listeners (as root), accept connections without
 * blocking, count them per IP, and turn SIGTERM/SIGINT into "stop
 * accepting, let the daemon finish its sessions".
 */
#ifndef BUZON_SERVER_H
#define BUZON_SERVER_H

#include <ev.h>
#include <sys/socket.h>

#include "config.h"
#include "conn.h"
#include "iplimit.h"

struct server;

struct listener {
	ev_io w;
	int fd;
	struct listen_spec spec;
	struct server *srv;
};

struct server {
	struct ev_loop *loop;
	struct listener *ls;
	int nls;
	struct iplimit *ipl;
	ev_signal sig_term, sig_int;
	ev_timer retry;		/* accept paused after EMFILE */
	int stopping;
	/* set by the daemon */
	void (*on_accept)(struct server *s, struct listener *l, int fd,
	    const struct sockaddr *peer, socklen_t peerlen);
	void (*on_stop)(struct server *s);
	void *arg;
};

/* Parse "-c FILE -d".  Exits 2 on a usage error. */
void server_args(int argc, char **argv, const char *usage,
    const char **conf_r, int *debug_r);

/* Bind and listen on every spec of set.  0, or -1 with err. */
int server_bind(struct server *s, const struct listen_set *set, char *err,
    size_t errlen);

/* Start accepting and watching signals; iplimit from cfg. */
/*
 * The start-up every daemon shares: bind the listeners of set (as root
 * if need be), drop to cfg->user, umask 077, load the TLS certificate.
 * Any failure is fatal (logged, exit 1).
 */
SSL_CTX *server_prepare(struct server *s, const struct config *cfg,
    const struct listen_set *set);

/* Start accepting (and log each listener); -1 on failure. */
int server_start(struct server *s, struct ev_loop *loop, unsigned max_per_ip);

/*
 * A conn for an accepted fd, counted against the per-IP limit and
 * released from it when freed.  Over the limit: refusal (a full protocol
 * line, CRLF included) is sent, the connection closed, NULL returned.
 * The caller sets c->cb and c->arg before the first event.
 */
struct conn *server_conn_new(struct server *s, int fd,
    const struct sockaddr *peer, socklen_t peerlen, size_t in_max,
    size_t out_max, const char *refusal);

/*
 * The session around c is set up: log the connection, arm the timeout
 * and start reading.  On a TLS listener the handshake begins (and c may
 * already be gone when this returns: 0); otherwise 1, and the caller
 * sends its greeting now.
 */
int server_conn_begin(struct conn *c, const struct listener *l,
    SSL_CTX *tls, double timeout);

/* Stop accepting and close listening sockets (on SIGTERM). */
void server_close_listeners(struct server *s);

void server_free(struct server *s);

#endif
