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
int server_start(struct server *s, struct ev_loop *loop, unsigned max_per_ip);

/* Stop accepting and close listening sockets (on SIGTERM). */
void server_close_listeners(struct server *s);

void server_free(struct server *s);

#endif
