/*
 * server.h - what every daemon does around its protocol: parse -c/-d,
 * bind the configured listeners (as root), accept connections without
 * blocking, count them per IP, and turn SIGTERM/SIGINT into "stop
 * accepting, let the daemon finish its sessions".
 *
 * A daemon may also run as a master and N pre-forked workers.  The kernel
 * then sends all connections of one client network to the same worker
 * (SO_REUSEPORT and a BPF program), so the per-process tables keyed by
 * address or network (iplimit, authfail, imapd's per-user+address limit)
 * stay exact without shared memory.  The master binds, drops privileges,
 * forks, restarts crashed workers and never touches a client.
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
	struct listener *ls;	/* one per listen line (this worker's socket) */
	int nls;
	/*
	 * Workers (set by the daemon before server_prepare; 0 or 1: no
	 * master, no fork).  Until the fork, wfds holds nls groups of
	 * nworkers sockets; worker i keeps socket i of each group.
	 */
	unsigned nworkers;
	int *wfds;
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

/*
 * Bind and listen on every spec of set: one socket each, or with
 * s->nworkers > 1 a SO_REUSEPORT group of nworkers sockets each, routed
 * by client network.  0, or -1 with err.
 */
int server_bind(struct server *s, const struct listen_set *set, char *err,
    size_t errlen);

/*
 * How many workers to run for a configured count: 0 means one per online
 * CPU; the result is within 1..CONFIG_MAX_WORKERS.
 */
unsigned server_workers(unsigned configured);

/*
 * The start-up every daemon shares: bind the listeners of set (as root
 * if need be), drop to cfg->user, umask 077, load the TLS certificate.
 * Any failure is fatal (logged, exit 1).
 */
SSL_CTX *server_prepare(struct server *s, const struct config *cfg,
    const struct listen_set *set);

/*
 * After server_prepare, with s->nworkers > 1: fork the workers and
 * supervise them.  Returns only in a worker, with its index and only its
 * own listening sockets left in s; the daemon then opens its databases,
 * threads and event loop (never before: a fork would copy them).  The
 * master exits from here: 0 after SIGTERM/SIGINT if every worker stopped
 * cleanly, 1 if a worker failed at start-up or did not stop cleanly.
 * With nworkers <= 1 it returns 0 at once and nothing changes.
 */
unsigned server_fork_workers(struct server *s);

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
