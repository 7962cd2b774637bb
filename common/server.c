/*
 * server.c - listeners (with SO_REUSEPORT groups routed by client
 * network when a daemon runs workers), accept loop and signals shared by
 * the daemons (see server.h; the workers' master is server_workers.c).
 * Never reads from a client: the protocol does.
 */
#include "server.h"
#include "buf.h"
#include "log.h"
#include "privdrop.h"
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
server_args(int argc, char **argv, const char *usage, const char **conf_r,
    int *debug_r)
{
	int ch;

	*conf_r = NULL;
	*debug_r = 0;
	while ((ch = getopt(argc, argv, "c:dh")) != -1) {
		switch (ch) {
		case 'c':
			*conf_r = optarg;
			break;
		case 'd':
			*debug_r = 1;
			break;
		default:
			fprintf(stderr, "usage: %s\n", usage);
			exit(ch == 'h' ? 0 : 2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "usage: %s\n", usage);
		exit(2);
	}
}

enum bind_mode {
	BIND_SINGLE,	/* the one socket of a listen line */
	BIND_GROUP,	/* one of a SO_REUSEPORT group */
	BIND_PROBE,	/* is the address free?  Bound, not listening */
};

static int
bind_one(const struct listen_spec *sp, enum bind_mode mode, int *family_r,
    char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd, on = 1, r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", sp->port);
	r = getaddrinfo(sp->host, port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "listen %s:%u: not a numeric address (%s)",
		    sp->host, sp->port, gai_strerror(r));
		return -1;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(res);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	/* The kernel only groups sockets that asked for it before bind. */
	if (mode == BIND_GROUP &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0) {
		snprintf(err, errlen, "listen %s:%u: SO_REUSEPORT: %s", sp->host,
		    sp->port, strerror(errno));
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 ||
	    (mode != BIND_PROBE && listen(fd, 1024) < 0)) {
		snprintf(err, errlen, "listen %s:%u (%s): %s%s", sp->host,
		    sp->port, listen_kind_name(sp->kind), strerror(errno),
		    errno == EACCES ? " (ports below 1024 need root)" : "");
		close(fd);
		freeaddrinfo(res);
		return -1;
	}
	*family_r = res->ai_family;
	freeaddrinfo(res);
	return fd;
}

/*
 * Make the reuseport group of fd pick socket (hash % n) for a new
 * connection, hash being the client's IPv4 address or the XOR of the two
 * words of its IPv6 /64.  One client network then always reaches one
 * worker: the per-process tables keyed by address (iplimit), by IPv4
 * address or IPv6 /64 (authfail) and by user+address (imapd) see all of
 * its connections.  The kernel's own 4-tuple hash would split them.
 */
static int
attach_route(int fd, int family, unsigned n, char *err, size_t errlen)
{
	/* Loads are relative to the IP header: SKF_NET_OFF + offset. */
	struct sock_filter v4[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 12)),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_filter v6[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 8)),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 12)),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog;

	if (family == AF_INET6) {
		prog.len = sizeof(v6) / sizeof(v6[0]);
		prog.filter = v6;
	} else {
		prog.len = sizeof(v4) / sizeof(v4[0]);
		prog.filter = v4;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog)) < 0) {
		snprintf(err, errlen, "SO_ATTACH_REUSEPORT_CBPF: %s (the kernel "
		    "cannot route clients to workers by network; set workers "
		    "= 1)", strerror(errno));
		return -1;
	}
	return 0;
}

int
server_bind(struct server *s, const struct listen_set *set, char *err,
    size_t errlen)
{
	unsigned nw = s->nworkers > 1 ? s->nworkers : 1, k;
	int i;

	s->ls = calloc((size_t)set->n ? (size_t)set->n : 1, sizeof(*s->ls));
	if (nw > 1)
		s->wfds = calloc((size_t)set->n * nw + 1, sizeof(*s->wfds));
	if (s->ls == NULL || (nw > 1 && s->wfds == NULL)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < set->n; i++) {
		int family = AF_INET;

		/*
		 * SO_REUSEPORT would let the group join the sockets of a
		 * process already on the port (a second imapd, or one not
		 * yet stopped): insist on a free port, as a single socket
		 * does.
		 */
		if (nw > 1) {
			int probe = bind_one(&set->l[i], BIND_PROBE, &family,
			    err, errlen);

			if (probe < 0)
				return -1;
			close(probe);
		}
		for (k = 0; k < nw; k++) {
			int fd = bind_one(&set->l[i], nw > 1 ? BIND_GROUP :
			    BIND_SINGLE, &family, err, errlen);

			if (fd < 0)
				return -1;
			if (nw == 1) {
				s->ls[i].fd = fd;
				break;
			}
			s->wfds[(size_t)i * nw + k] = fd;
		}
		/*
		 * Attached once the whole group listens: a group smaller
		 * than n would see indexes beyond its end, which the
		 * kernel answers with its own hash.  Before this line (a
		 * few microseconds of start-up) that hash decides.
		 */
		if (nw > 1) {
			if (attach_route(s->wfds[(size_t)i * nw], family, nw,
			    err, errlen) < 0) {
				char why[512];

				strlcpy_checked(why, err, sizeof(why));
				snprintf(err, errlen, "listen %s:%u: %s",
				    set->l[i].host, set->l[i].port, why);
				return -1;
			}
			s->ls[i].fd = -1;	/* chosen after the fork */
		}
		s->ls[i].spec = set->l[i];
		s->ls[i].srv = s;
		s->nls++;
	}
	return 0;
}

static void
server_on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct server *s = l->srv;
	int i;

	(void)revents;
	/* Bounded batch so one busy listener cannot starve the loop. */
	for (i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd, on = 1;

		fd = accept4(l->fd, (struct sockaddr *)&ss, &sl,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				int j;

				log_error("accept: %s; pausing accepts for 1s",
				    strerror(errno));
				for (j = 0; j < s->nls; j++)
					ev_io_stop(loop, &s->ls[j].w);
				ev_timer_set(&s->retry, 1., 0.);
				ev_timer_start(loop, &s->retry);
			}
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
		s->on_accept(s, l, fd, (struct sockaddr *)&ss, sl);
	}
}

static void
server_on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct server *s = w->data;
	int j;

	(void)revents;
	if (s->stopping)
		return;
	for (j = 0; j < s->nls; j++)
		ev_io_start(loop, &s->ls[j].w);
}

static void
server_on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct server *s = w->data;

	(void)loop;
	(void)revents;
	if (s->stopping)
		return;
	log_info("signal %d: stopping (no new connections)", w->signum);
	s->stopping = 1;
	server_close_listeners(s);
	ev_ref(s->loop);
	ev_ref(s->loop);
	ev_signal_stop(s->loop, &s->sig_term);
	ev_signal_stop(s->loop, &s->sig_int);
	if (s->on_stop != NULL)
		s->on_stop(s);
}

int
server_conn_begin(struct conn *c, const struct listener *l, SSL_CTX *tls,
    double timeout)
{
	conn_set_timeout(c, timeout);
	log_info("sid=%s ip=%s connect port=%u listener=%s", c->sid, c->ip,
	    l->spec.port, listen_kind_name(l->spec.kind));
	if (listen_kind_is_tls(l->spec.kind)) {
		conn_start(c, tls);	/* greeting after the handshake */
		return 0;
	}
	conn_start(c, NULL);
	return 1;
}

SSL_CTX *
server_prepare(struct server *s, const struct config *cfg,
    const struct listen_set *set)
{
	char err[1024];
	SSL_CTX *tls;

	if (server_bind(s, set, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	if (privdrop(cfg->user, err, sizeof(err)) < 0)
		log_fatal("%s", err);
	umask(077);
	tls = tls_server_ctx(cfg->tls_cert, cfg->tls_key, err, sizeof(err));
	if (tls == NULL)
		log_fatal("%s", err);
	return tls;
}

int
server_start(struct server *s, struct ev_loop *loop, unsigned max_per_ip)
{
	int i;

	s->loop = loop;
	s->ipl = iplimit_new(max_per_ip);
	if (s->ipl == NULL)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	ev_timer_init(&s->retry, server_on_retry, 1., 0.);
	s->retry.data = s;
	for (i = 0; i < s->nls; i++) {
		ev_io_init(&s->ls[i].w, server_on_accept, s->ls[i].fd, EV_READ);
		s->ls[i].w.data = &s->ls[i];
		ev_io_start(loop, &s->ls[i].w);
	}
	ev_signal_init(&s->sig_term, server_on_signal, SIGTERM);
	ev_signal_init(&s->sig_int, server_on_signal, SIGINT);
	s->sig_term.data = s->sig_int.data = s;
	ev_signal_start(loop, &s->sig_term);
	ev_signal_start(loop, &s->sig_int);
	{
		sigset_t stop;

		/* A worker kept them blocked until the handlers above. */
		sigemptyset(&stop);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGINT);
		pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
	}
	/* Signals alone must not keep the loop running after a stop. */
	ev_unref(loop);
	ev_unref(loop);
	for (i = 0; i < s->nls; i++)
		log_info("listening on %s:%u (%s)", s->ls[i].spec.host,
		    s->ls[i].spec.port, listen_kind_name(s->ls[i].spec.kind));
	return 0;
}

/* Until the protocol takes the conn: events go nowhere. */
static void
server_conn_unclaimed(struct conn *c, enum conn_event ev, void *arg)
{
	(void)c;
	(void)ev;
	(void)arg;
}

static void
server_conn_freed(struct conn *c)
{
	struct server *srv = c->owner;

	if (srv != NULL && srv->ipl != NULL)
		iplimit_release(srv->ipl, c->ip);
}

struct conn *
server_conn_new(struct server *s, int fd, const struct sockaddr *peer,
    socklen_t peerlen, size_t in_max, size_t out_max, const char *refusal)
{
	struct conn *c;

	c = conn_new(s->loop, fd, peer, peerlen, in_max, out_max,
	    server_conn_unclaimed, NULL);
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	if (!iplimit_acquire(s->ipl, c->ip)) {
		log_info("sid=%s ip=%s refused: too many connections from this "
		    "address", c->sid, c->ip);
		conn_write(c, refusal, strlen(refusal));
		conn_close(c);
		return NULL;
	}
	c->owner = s;
	c->on_free = server_conn_freed;
	return c;
}

void
server_close_listeners(struct server *s)
{
	int i;

	ev_timer_stop(s->loop, &s->retry);
	for (i = 0; i < s->nls; i++) {
		if (s->ls[i].fd < 0)
			continue;
		ev_io_stop(s->loop, &s->ls[i].w);
		close(s->ls[i].fd);
		s->ls[i].fd = -1;
	}
}

void
server_free(struct server *s)
{
	if (s->loop != NULL && !s->stopping) {
		ev_ref(s->loop);
		ev_ref(s->loop);
		ev_signal_stop(s->loop, &s->sig_term);
		ev_signal_stop(s->loop, &s->sig_int);
	}
	free(s->ls);
	s->ls = NULL;
	free(s->wfds);
	s->wfds = NULL;
	iplimit_free(&s->ipl);
}
