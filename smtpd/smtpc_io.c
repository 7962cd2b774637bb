/*
 * smtpc_io.c - the transport of the SMTP client (smtpc_private.h): a
 * non-blocking socket, TLS over it after STARTTLS, and reads, writes and
 * the handshake as blocking calls whose every wait is a poll() bounded
 * by a deadline.
 *
 * It must never block without a deadline, never interpret what it
 * moves, and never read ahead of what the dialogue asked for: the input
 * buffer is the dialogue's to discard at STARTTLS.
 */
#include "smtpc_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
smtpc_deadline(unsigned seconds)
{
	return now_ms() + (long long)seconds * 1000;
}

static void
set_ioerr(struct smtpc *c, enum smtpc_ioe kind, const char *what)
{
	c->ioe = kind;
	strlcpy_checked(c->ioerr, what, sizeof(c->ioerr));
}

static void
set_errno(struct smtpc *c, int e)
{
	char tmp[128];

	set_ioerr(c, IOE_ERR, strerror_r(e, tmp, sizeof(tmp)));
}

/* OpenSSL's reason for the last failure, or errno's, or EOF. */
static void
set_tls_err(struct smtpc *c, int sslerr)
{
	unsigned long e = ERR_get_error();
	char tmp[128];

	if (e != 0) {
		ERR_error_string_n(e, tmp, sizeof(tmp));
		set_ioerr(c, IOE_ERR, tmp);
	} else if (sslerr == SSL_ERROR_SYSCALL && errno != 0) {
		set_errno(c, errno);
	} else {
		set_ioerr(c, IOE_EOF, "connection closed");
	}
	ERR_clear_error();
}

/* Wait until fd is ready for events or the deadline passes. */
static int
wait_io(struct smtpc *c, short events, long long deadline)
{
	struct pollfd pfd;
	long long left;
	int n;

	for (;;) {
		left = deadline - now_ms();
		if (left <= 0) {
			set_ioerr(c, IOE_TIMEOUT, "timeout");
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = events;
		pfd.revents = 0;
		n = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		/* POLLERR/POLLHUP: the next read or write says what */
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR) {
			set_errno(c, errno);
			return -1;
		}
	}
}

/*
 * An SSL call returned n <= 0: wait for what it needs (a read may need a
 * write, and the other way round) and return 0 to call it again, or -1.
 */
static int
tls_retry(struct smtpc *c, int n, long long deadline)
{
	int e = SSL_get_error(c->ssl, n);

	if (e == SSL_ERROR_WANT_READ)
		return wait_io(c, POLLIN, deadline);
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_io(c, POLLOUT, deadline);
	set_tls_err(c, e);
	return -1;
}

/*
 * One read into rbuf or one write from wbuf (the other is NULL) of at
 * most len bytes, waiting until the socket allows it: the bytes moved
 * (> 0), or -1.
 */
static ssize_t
io_once(struct smtpc *c, char *rbuf, const char *wbuf, size_t len,
    long long deadline)
{
	short ev = wbuf != NULL ? POLLOUT : POLLIN;
	int chunk = len > INT_MAX ? INT_MAX : (int)len;
	ssize_t n;

	for (;;) {
		if (c->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			n = wbuf != NULL ? SSL_write(c->ssl, wbuf, chunk) :
			    SSL_read(c->ssl, rbuf, chunk);
			if (n > 0)
				return n;
			if (tls_retry(c, (int)n, deadline) < 0)
				return -1;
			continue;
		}
		n = wbuf != NULL ? send(c->fd, wbuf, len, MSG_NOSIGNAL) :
		    recv(c->fd, rbuf, len, 0);
		if (n > 0)
			return n;
		if (n == 0 && wbuf == NULL) {
			set_ioerr(c, IOE_EOF, "connection closed");
			return -1;
		}
		if (n < 0 && errno != EINTR && errno != EAGAIN &&
		    errno != EWOULDBLOCK) {
			set_errno(c, errno);
			return -1;
		}
		if (wait_io(c, ev, deadline) < 0)
			return -1;
	}
}

int
smtpc_io_read(struct smtpc *c, long long deadline)
{
	ssize_t n;

	c->inpos = c->inlen = 0;
	if ((n = io_once(c, c->in, NULL, sizeof(c->in), deadline)) < 0)
		return -1;
	c->inlen = (size_t)n;
	return 0;
}

int
smtpc_io_write(struct smtpc *c, const char *p, size_t len, long long deadline)
{
	ssize_t n;

	while (len > 0) {
		if ((n = io_once(c, NULL, p, len, deadline)) < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
smtpc_addr_string(const struct sockaddr *sa, char *out, size_t outlen)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(out, outlen, "%s:%u", host, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(out, outlen, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		strlcpy_checked(out, "(unknown address)", outlen);
	}
}

int
smtpc_io_connect(struct smtpc *c, const struct sockaddr *dst,
    socklen_t dstlen, const struct sockaddr *src, socklen_t srclen,
    unsigned timeout)
{
	char tmp[128], srcs[64];
	socklen_t elen = sizeof(int);
	int err = 0;

	c->fd = socket(dst->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(c->ioerr, sizeof(c->ioerr), "socket: %s",
		    strerror_r(errno, tmp, sizeof(tmp)));
		c->ioe = IOE_ERR;
		return -1;
	}
	if (src != NULL && bind(c->fd, src, srclen) < 0) {
		smtpc_addr_string(src, srcs, sizeof(srcs));
		snprintf(c->ioerr, sizeof(c->ioerr), "bind to %s: %s", srcs,
		    strerror_r(errno, tmp, sizeof(tmp)));
		c->ioe = IOE_ERR;
		return -1;
	}
	if (connect(c->fd, dst, dstlen) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EINTR) {
		err = errno;
	} else if (wait_io(c, POLLOUT, smtpc_deadline(timeout)) < 0) {
		err = c->ioe == IOE_TIMEOUT ? ETIMEDOUT : errno;
	} else if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
		err = errno;
	}
	if (err == 0)
		return 0;
	set_errno(c, err);
	return -1;
}

static int
is_ip_literal(const char *s)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int
smtpc_io_starttls(struct smtpc *c, SSL_CTX *ctx, const char *sni,
    unsigned timeout)
{
	long long deadline = smtpc_deadline(timeout);
	int n;

	c->ssl = SSL_new(ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		set_tls_err(c, SSL_ERROR_SSL);
		return -1;
	}
	/* SNI is a host name, never an address (RFC 6066 3) */
	if (sni != NULL && sni[0] != '\0' && !is_ip_literal(sni) &&
	    (SSL_set_tlsext_host_name(c->ssl, sni) != 1 ||
	    SSL_set1_host(c->ssl, sni) != 1)) {
		set_tls_err(c, SSL_ERROR_SSL);
		return -1;
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((n = SSL_connect(c->ssl)) == 1)
			break;
		if (tls_retry(c, n, deadline) < 0)
			return -1;
	}
	c->verified = SSL_get0_peer_certificate(c->ssl) != NULL &&
	    SSL_get_verify_result(c->ssl) == X509_V_OK;
	return 0;
}

void
smtpc_io_close(struct smtpc *c, int clean)
{
	if (c->ssl != NULL) {
		/* one try at close_notify: never wait for the peer's */
		if (clean)
			(void)SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
		ERR_clear_error();
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
}

const char *
smtpc_peer(const struct smtpc *c)
{
	return c->peer;
}

int
smtpc_tls_active(const struct smtpc *c)
{
	return c->ssl != NULL;
}

const char *
smtpc_tls_version(const struct smtpc *c)
{
	return c->ssl != NULL ? SSL_get_version(c->ssl) : NULL;
}

const char *
smtpc_tls_cipher(const struct smtpc *c)
{
	return c->ssl != NULL ? SSL_get_cipher_name(c->ssl) : NULL;
}

int
smtpc_tls_verified(const struct smtpc *c)
{
	return c->ssl != NULL && c->verified;
}
