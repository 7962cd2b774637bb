/*
 * bench/imap_mix.d/imap_load.c - IMAP load generator for bench/imap_mix.
 *
 * One thread per client, blocking sockets, optional implicit TLS.  Each
 * client works on its own account (user-format with its number) so the
 * figures measure the server, not lock contention between clients.
 *
 *   --mode mix       steady sessions running a mail-client mix (below);
 *                    every --restart operations a client logs out and
 *                    runs a full new session (connect, LOGIN, SELECT,
 *                    FETCH 1:* FLAGS)
 *   --mode sessions  full sessions back to back: connect (+TLS),
 *                    LOGIN, SELECT INBOX, LOGOUT
 *   --mode fetch     one session per client, then FETCH n BODY.PEEK[] of
 *                    random messages
 *   --fill           writes --count messages (2-50 KB, log-uniform) into
 *                    the cur/ of every --out Maildir (same bytes in each)
 *
 * The mix (weights out of 100): FETCH n BODY[] 42, UID FETCH of a
 * 50-UID range of header fields 15, STORE n +FLAGS 15, SEARCH 12 (UNSEEN 5,
 * FROM 3, SUBJECT 3, BODY 1), APPEND of a new 2-50 KB message 6,
 * STORE +FLAGS.SILENT (\Deleted) + EXPUNGE of one message 6 (so the
 * mailbox stays near its size), FETCH 1:* (FLAGS) 4.
 *
 * Every run is bounded by --seconds and by --max-ops per client; every
 * socket has a 30 s receive timeout.  Output: one JSON object on stdout
 * with, per command type, count / errors / mean / p50 / p99 latency (µs),
 * and the client's own CPU time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum ctype {
	C_CONNECT, C_LOGIN, C_SELECT, C_FETCH_FLAGS, C_UID_FETCH_HDR,
	C_FETCH_BODY, C_STORE, C_APPEND, C_SEARCH_UNSEEN, C_SEARCH_FROM,
	C_SEARCH_SUBJECT, C_SEARCH_BODY, C_EXPUNGE, C_LOGOUT, C_NTYPES
};

static const char *ctype_name[C_NTYPES] = {
	"CONNECT", "LOGIN", "SELECT", "FETCH 1:* FLAGS", "UID FETCH headers",
	"FETCH BODY[]", "STORE", "APPEND", "SEARCH UNSEEN", "SEARCH FROM",
	"SEARCH SUBJECT", "SEARCH BODY", "EXPUNGE", "LOGOUT",
};

/* Latency histogram: exact below 64 µs, then 32 sub-buckets per power of
 * two (about 3% resolution). */
#define NB 1024

static int
bucket(uint64_t us)
{
	int e;

	if (us < 64)
		return (int)us;
	e = 63 - __builtin_clzll(us);
	if (e > 35)
		return NB - 1;
	return 64 + (e - 6) * 32 + (int)((us >> (e - 5)) & 31);
}

static uint64_t
bucket_value(int b)
{
	int e;

	if (b < 64)
		return (uint64_t)b;
	e = (b - 64) / 32 + 6;
	return ((uint64_t)1 << e) + ((uint64_t)((b - 64) % 32) << (e - 5));
}

struct stats {
	uint64_t count[C_NTYPES], errors[C_NTYPES], sum_us[C_NTYPES];
	uint32_t hist[C_NTYPES][NB];
	uint64_t sessions, bytes_in, bytes_out, fatal;
};

/* ---- options ---- */
static const char *opt_host = "127.0.0.1";
static int opt_port = 143, opt_tls, opt_clients = 1, opt_first = 1;
static double opt_seconds = 20;
static long opt_max_ops = 1000000;
static int opt_restart = 100;
static const char *opt_user_fmt = "u%d@bench.test";
static const char *opt_password = "benchpassword";
static const char *opt_mode = "mix";
static unsigned opt_seed = 1;

static volatile int stop_now;
static SSL_CTX *ssl_ctx;

/* ---- random numbers and message text ---- */
static uint64_t
rnd(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static unsigned
rndn(uint64_t *s, unsigned n)
{
	return n ? (unsigned)(rnd(s) % n) : 0;
}

static const char *words[] = {
	"the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as",
	"was", "with", "be", "by", "on", "not", "he", "this", "are", "or",
	"his", "from", "at", "which", "but", "have", "an", "had", "they", "you",
	"were", "their", "one", "all", "we", "can", "her", "has", "there",
	"been", "if", "more", "when", "will", "would", "who", "so", "no",
	"meeting", "report", "project", "budget", "review", "schedule",
	"invoice", "contract", "customer", "release", "server", "update",
	"quarter", "figures", "deadline", "proposal", "agenda", "minutes",
	"draft", "attached", "please", "thanks", "regards", "tomorrow",
	"monday", "friday", "office", "team", "question", "answer", "issue",
	"ticket", "support", "order", "shipment", "delivery", "payment",
	"account", "password", "travel", "hotel", "flight", "conference",
	"lunch", "dinner", "weekend", "holiday", "family", "photos", "garden",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

/* Rare words: each message body has one with probability 1/8, so a
 * SEARCH BODY for one of them matches about 1 message in 64. */
static const char *rare[] = {
	"zanzibar", "quokka", "marzipan", "obsidian", "tamarind", "xylophone",
	"gondola", "periwinkle",
};
#define NRARE 8

static const char *first_names[] = {
	"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
	"ivan", "judy", "mallory", "niaj", "olivia", "peggy", "rupert",
	"sybil", "trent", "victor", "walter", "yolanda",
};
static const char *last_names[] = {
	"martin", "garcia", "mueller", "rossi", "dubois", "smith", "tanaka",
	"novak", "silva", "jensen",
};
static const char *domains[] = {
	"example.org", "example.com", "example.net", "mail.test",
};

struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sb_need(struct sbuf *b, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
}

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	sb_need(b, n);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	sb_need(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Target size: log-uniform between 2 and 50 KB (median about 10 KB). */
static size_t
pick_size(uint64_t *s)
{
	double u = (double)(rnd(s) >> 11) / (double)(1ULL << 53);

	return (size_t)(2048.0 * exp(u * log(50.0 / 2.0)));
}

/*
 * One message with LF line ends: plain text, or (one in four) a text part
 * plus a base64 attachment, about `size` bytes.  `seq` makes the
 * Message-ID unique.
 */
static void
gen_message(uint64_t *s, struct sbuf *b, size_t size, uint64_t seq, time_t date)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *fn = first_names[rndn(s, 20)], *ln = last_names[rndn(s, 10)];
	const char *dom = domains[rndn(s, 4)];
	int multipart = rndn(s, 4) == 0;
	char datebuf[64];
	struct tm tm;
	size_t body_target, col;
	int i, nsubj;

	b->len = 0;
	gmtime_r(&date, &tm);
	strftime(datebuf, sizeof(datebuf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	sb_printf(b, "Return-Path: <%s.%s@%s>\n", fn, ln, dom);
	sb_printf(b, "Received: from mx.%s (mx.%s [192.0.2.%u])\n\tby mail.bench.test "
	    "with ESMTPS id %016" PRIx64 "\n\tfor <user@bench.test>; %s\n",
	    dom, dom, rndn(s, 250) + 1, rnd(s), datebuf);
	sb_printf(b, "From: %c%s %c%s <%s.%s@%s>\n", fn[0] - 32, fn + 1,
	    ln[0] - 32, ln + 1, fn, ln, dom);
	sb_printf(b, "To: User <user@bench.test>\n");
	sb_printf(b, "Subject:");
	nsubj = 3 + (int)rndn(s, 5);
	for (i = 0; i < nsubj; i++)
		sb_printf(b, " %s", words[49 + rndn(s, NWORDS - 49)]);
	sb_printf(b, "\nDate: %s\n", datebuf);
	sb_printf(b, "Message-ID: <%" PRIu64 ".%016" PRIx64 "@%s>\n", seq, rnd(s), dom);
	sb_printf(b, "MIME-Version: 1.0\n");
	if (multipart) {
		sb_printf(b, "Content-Type: multipart/mixed; boundary=\"b%016" PRIx64 "\"\n\n"
		    "This is a multi-part message in MIME format.\n\n--b%016" PRIx64 "\n"
		    "Content-Type: text/plain; charset=utf-8\n\n", seq, seq);
	} else {
		sb_printf(b, "Content-Type: text/plain; charset=utf-8\n"
		    "Content-Transfer-Encoding: 8bit\n\n");
	}
	body_target = size > b->len + 64 ? size - b->len - 64 : 64;
	if (multipart)
		body_target = body_target / 4 + 32;
	col = 0;
	{
		size_t start = b->len;
		int rare_at = rndn(s, 8) == 0 ? (int)rndn(s, 50) : -1, nw = 0;

		while (b->len - start < body_target) {
			const char *w = nw++ == rare_at ? rare[rndn(s, NRARE)] :
			    words[rndn(s, NWORDS)];
			size_t wl = strlen(w);

			if (col + wl + 1 > 72) {
				sb_add(b, "\n", 1);
				col = 0;
			} else if (col > 0) {
				sb_add(b, " ", 1);
				col++;
			}
			sb_add(b, w, wl);
			col += wl;
		}
		sb_add(b, "\n", 1);
	}
	if (multipart) {
		size_t att = size > b->len + 200 ? size - b->len - 200 : 256;

		sb_printf(b, "\n--b%016" PRIx64 "\nContent-Type: application/pdf; "
		    "name=\"doc%u.pdf\"\nContent-Transfer-Encoding: base64\n"
		    "Content-Disposition: attachment; filename=\"doc%u.pdf\"\n\n",
		    seq, (unsigned)(seq % 1000), (unsigned)(seq % 1000));
		for (; att > 0; ) {
			char line[78];
			size_t n = att > 77 ? 76 : att;

			for (size_t k = 0; k < n; k++)
				line[k] = b64[rndn(s, 64)];
			line[n] = '\n';
			sb_add(b, line, n + 1);
			att = att > n + 1 ? att - n - 1 : 0;
		}
		sb_printf(b, "\n--b%016" PRIx64 "--\n", seq);
	}
}

/* ---- connections ---- */
struct conn {
	int fd;
	uint32_t src;			/* source address to bind (host order), 0: any */
	SSL *ssl;
	char *buf;
	size_t cap, start, end;
	unsigned tagn;
	struct stats *st;
};

#define RBUF (1 << 20)

static int
conn_write(struct conn *c, const char *p, size_t n)
{
	c->st->bytes_out += n;
	while (n > 0) {
		ssize_t w;

		if (c->ssl != NULL) {
			int r = SSL_write(c->ssl, p, (int)n);

			if (r <= 0)
				return -1;
			w = r;
		} else {
			w = write(c->fd, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads more bytes; keeps [start, end). */
static int
conn_fill(struct conn *c)
{
	ssize_t r;

	if (c->start > 0 && c->start == c->end)
		c->start = c->end = 0;
	if (c->end == c->cap) {
		if (c->start == 0)
			return -1;	/* a line longer than the buffer */
		memmove(c->buf, c->buf + c->start, c->end - c->start);
		c->end -= c->start;
		c->start = 0;
	}
	if (c->ssl != NULL) {
		int n = SSL_read(c->ssl, c->buf + c->end, (int)(c->cap - c->end));

		if (n <= 0)
			return -1;
		r = n;
	} else {
		do
			r = read(c->fd, c->buf + c->end, c->cap - c->end);
		while (r < 0 && errno == EINTR);
		if (r <= 0)
			return -1;
	}
	c->end += (size_t)r;
	c->st->bytes_in += (uint64_t)r;
	return 0;
}

/* One CRLF-terminated line (without CRLF), valid until the next read. */
static int
conn_line(struct conn *c, char **line, size_t *len)
{
	size_t scan = c->start;

	for (;;) {
		char *nl = memchr(c->buf + scan, '\n', c->end - scan);

		if (nl != NULL) {
			size_t l = (size_t)(nl - (c->buf + c->start));

			*line = c->buf + c->start;
			*len = l > 0 && (*line)[l - 1] == '\r' ? l - 1 : l;
			c->start += l + 1;
			return 0;
		}
		scan = c->end - c->start;
		if (conn_fill(c) < 0)
			return -1;
		scan += c->start;
	}
}

static int
conn_skip(struct conn *c, uint64_t n)
{
	while (n > 0) {
		size_t have = c->end - c->start;

		if (have == 0) {
			if (conn_fill(c) < 0)
				return -1;
			continue;
		}
		if (have > n)
			have = (size_t)n;
		c->start += have;
		n -= have;
	}
	return 0;
}

static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->start = c->end = 0;
}

static int
conn_open(struct conn *c)
{
	struct sockaddr_in sa;
	struct timeval tv = { 30, 0 };
	int one = 1;
	char *line;
	size_t len;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)opt_port);
	inet_pton(AF_INET, opt_host, &sa.sin_addr);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (c->src != 0) {
		struct sockaddr_in me;

		memset(&me, 0, sizeof(me));
		me.sin_family = AF_INET;
		me.sin_addr.s_addr = htonl(c->src);
		if (bind(c->fd, (struct sockaddr *)&me, sizeof(me)) < 0)
			goto fail;
	}
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	if (opt_tls) {
		c->ssl = SSL_new(ssl_ctx);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
		    SSL_connect(c->ssl) != 1)
			goto fail;
	}
	if (conn_line(c, &line, &len) < 0 || len < 4 ||
	    strncmp(line, "* OK", 4) != 0)
		goto fail;
	return 0;
fail:
	conn_close(c);
	return -1;
}

/* ---- one client ---- */
struct client {
	int id;
	pthread_t th;
	struct conn c;
	struct stats st;
	uint64_t rng;
	unsigned exists, uidnext;
	int logged_in;
	struct sbuf cmd, msg;
	uint64_t search_hits;
	char user[256];
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void
record(struct client *cl, enum ctype t, uint64_t t0, int ok)
{
	uint64_t d = now_us() - t0;

	cl->st.count[t]++;
	cl->st.sum_us[t] += d;
	cl->st.hist[t][bucket(d)]++;
	if (!ok)
		cl->st.errors[t]++;
}

static int
parse_uint(const char *p, const char *end, unsigned *out)
{
	unsigned v = 0;
	int n = 0;

	while (p < end && *p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned)(*p++ - '0');
		n++;
	}
	*out = v;
	return n;
}

static const char *
memfind(const char *h, size_t hl, const char *n)
{
	return memmem(h, hl, n, strlen(n));
}

/*
 * Reads up to the tagged reply of `tag`.  Keeps EXISTS / EXPUNGE /
 * UIDNEXT, skips literals.  Returns 1 for OK, 0 for NO/BAD, -1 when the
 * connection is lost.
 */
static int
read_reply(struct client *cl, const char *tag)
{
	size_t tl = strlen(tag);
	int cont = 0;

	for (;;) {
		char *line;
		size_t len;

		if (conn_line(&cl->c, &line, &len) < 0)
			return -1;
		if (!cont && len > tl && memcmp(line, tag, tl) == 0 && line[tl] == ' ')
			return len >= tl + 3 && memcmp(line + tl + 1, "OK", 2) == 0;
		if (!cont && len > 2 && line[0] == '*' && line[1] == ' ') {
			unsigned n;
			int d = parse_uint(line + 2, line + len, &n);
			const char *u;

			if (d > 0 && len >= 2 + (size_t)d + 7 &&
			    memcmp(line + 2 + d, " EXISTS", 7) == 0)
				cl->exists = n;
			else if (d > 0 && len >= 2 + (size_t)d + 8 &&
			    memcmp(line + 2 + d, " EXPUNGE", 8) == 0 && cl->exists > 0)
				cl->exists--;
			else if ((u = memfind(line, len, "[UIDNEXT ")) != NULL)
				parse_uint(u + 9, line + len, &cl->uidnext);
			else if (len > 8 && memcmp(line, "* SEARCH", 8) == 0) {
				for (size_t k = 8; k < len; k++)
					cl->search_hits += line[k] == ' ';
			}
		}
		/* A literal at the end of the line: skip it, the rest of the
		 * response follows as a continuation line. */
		cont = 0;
		if (len > 2 && line[len - 1] == '}') {
			const char *o = line + len - 2;
			uint64_t n = 0, mul = 1;

			while (o > line && *o >= '0' && *o <= '9') {
				n += (uint64_t)(*o - '0') * mul;
				mul *= 10;
				o--;
			}
			if (*o == '{') {
				if (conn_skip(&cl->c, n) < 0)
					return -1;
				cont = 1;
			}
		}
	}
}

/* Sends cl->cmd (which starts with the tag) and waits for the reply. */
static int
run(struct client *cl, enum ctype t, const char *tag)
{
	uint64_t t0 = now_us();
	int r;

	if (conn_write(&cl->c, cl->cmd.p, cl->cmd.len) < 0) {
		r = -1;
	} else {
		r = read_reply(cl, tag);
	}
	record(cl, t, t0, r == 1);
	return r;
}

#define CMD(cl, tag, ...) do { \
	snprintf(tag, sizeof(tag), "a%u", ++(cl)->c.tagn); \
	(cl)->cmd.len = 0; \
	sb_printf(&(cl)->cmd, "%s ", tag); \
	sb_printf(&(cl)->cmd, __VA_ARGS__); \
} while (0)

static void
drop(struct client *cl)
{
	conn_close(&cl->c);
	cl->logged_in = 0;
}

static int
session_open(struct client *cl, int fetch_flags)
{
	char tag[16];
	uint64_t t0 = now_us();
	int r;

	/* Each client is a user on a machine of its own: on loopback, an
	 * address of its own in 127/8 (servers that keep state per client
	 * address, as Buzón's workers do, see what real clients give them). */
	if (strncmp(opt_host, "127.", 4) == 0)
		cl->c.src = 0x7f000000u | (uint32_t)(cl->id + 2);
	r = conn_open(&cl->c);
	record(cl, C_CONNECT, t0, r == 0);
	if (r < 0)
		return -1;
	CMD(cl, tag, "LOGIN \"%s\" \"%s\"\r\n", cl->user, opt_password);
	if (run(cl, C_LOGIN, tag) != 1)
		goto fail;
	cl->exists = cl->uidnext = 0;
	CMD(cl, tag, "SELECT INBOX\r\n");
	if (run(cl, C_SELECT, tag) != 1)
		goto fail;
	if (fetch_flags) {
		CMD(cl, tag, "FETCH 1:* (FLAGS)\r\n");
		if (run(cl, C_FETCH_FLAGS, tag) < 0)
			goto fail;
	}
	cl->logged_in = 1;
	cl->st.sessions++;
	return 0;
fail:
	drop(cl);
	return -1;
}

static int
session_close(struct client *cl)
{
	char tag[16];
	int r;

	CMD(cl, tag, "LOGOUT\r\n");
	r = run(cl, C_LOGOUT, tag);
	drop(cl);
	return r;
}

static int
op_mix(struct client *cl)
{
	char tag[16];
	unsigned w = rndn(&cl->rng, 100), n = cl->exists;
	static const char *flags[] = { "\\Seen", "\\Flagged", "\\Answered", "$Label1" };

	if (n == 0)
		w = 60;	/* APPEND */
	if (w < 30) {
		CMD(cl, tag, "FETCH %u BODY[]\r\n", 1 + rndn(&cl->rng, n));
		return run(cl, C_FETCH_BODY, tag);
	}
	if (w < 45) {
		unsigned hi = cl->uidnext > 50 ? cl->uidnext - 50 : 1;
		unsigned lo = 1 + rndn(&cl->rng, hi);

		CMD(cl, tag, "UID FETCH %u:%u (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS "
		    "(FROM TO CC SUBJECT DATE MESSAGE-ID CONTENT-TYPE)])\r\n", lo, lo + 49);
		return run(cl, C_UID_FETCH_HDR, tag);
	}
	if (w < 60) {
		CMD(cl, tag, "STORE %u %cFLAGS (%s)\r\n", 1 + rndn(&cl->rng, n),
		    rndn(&cl->rng, 3) == 0 ? '-' : '+', flags[rndn(&cl->rng, 4)]);
		return run(cl, C_STORE, tag);
	}
	if (w < 66) {
		size_t size = pick_size(&cl->rng);

		gen_message(&cl->rng, &cl->msg, size,
		    ((uint64_t)cl->id << 40) | (cl->rng & 0xffffffffffULL), time(NULL));
		snprintf(tag, sizeof(tag), "a%u", ++cl->c.tagn);
		cl->cmd.len = 0;
		/* LITERAL+ (both servers announce it): no round trip. */
		sb_printf(&cl->cmd, "%s APPEND INBOX () {%zu+}\r\n", tag, cl->msg.len);
		sb_add(&cl->cmd, cl->msg.p, cl->msg.len);
		sb_add(&cl->cmd, "\r\n", 2);
		return run(cl, C_APPEND, tag);
	}
	if (w < 78) {
		unsigned k = w - 66;

		if (k < 5) {
			CMD(cl, tag, "SEARCH UNSEEN\r\n");
			return run(cl, C_SEARCH_UNSEEN, tag);
		}
		if (k < 8) {
			CMD(cl, tag, "SEARCH FROM \"%s\"\r\n", last_names[rndn(&cl->rng, 10)]);
			return run(cl, C_SEARCH_FROM, tag);
		}
		if (k < 11) {
			CMD(cl, tag, "SEARCH SUBJECT \"%s\"\r\n",
			    words[49 + rndn(&cl->rng, NWORDS - 49)]);
			return run(cl, C_SEARCH_SUBJECT, tag);
		}
		CMD(cl, tag, "SEARCH BODY \"%s\"\r\n", rare[rndn(&cl->rng, NRARE)]);
		return run(cl, C_SEARCH_BODY, tag);
	}
	if (w < 84) {
		int r;

		CMD(cl, tag, "STORE %u +FLAGS.SILENT (\\Deleted)\r\n", 1 + rndn(&cl->rng, n));
		r = run(cl, C_STORE, tag);
		if (r < 0)
			return r;
		CMD(cl, tag, "EXPUNGE\r\n");
		return run(cl, C_EXPUNGE, tag);
	}
	if (w < 88) {
		CMD(cl, tag, "FETCH 1:* (FLAGS)\r\n");
		return run(cl, C_FETCH_FLAGS, tag);
	}
	/* the remaining 12: more reading, the most common thing clients do */
	CMD(cl, tag, "FETCH %u BODY[]\r\n", 1 + rndn(&cl->rng, n));
	return run(cl, C_FETCH_BODY, tag);
}

static void *
client_main(void *arg)
{
	struct client *cl = arg;
	uint64_t deadline = now_us() + (uint64_t)(opt_seconds * 1e6);
	long ops = 0;
	int failures = 0;

	cl->c.fd = -1;
	cl->c.cap = RBUF;
	cl->c.buf = malloc(RBUF);
	cl->c.st = &cl->st;
	if (cl->c.buf == NULL)
		abort();
	while (!stop_now && ops < opt_max_ops && now_us() < deadline) {
		int r = 0;

		if (strcmp(opt_mode, "sessions") == 0) {
			r = session_open(cl, 0);
			if (r == 0)
				r = session_close(cl) == 1 ? 0 : -1;
			ops++;
		} else {
			if (!cl->logged_in)
				r = session_open(cl, strcmp(opt_mode, "mix") == 0);
			if (r == 0 && strcmp(opt_mode, "fetch") == 0) {
				char tag[16];

				CMD(cl, tag, "FETCH %u BODY.PEEK[]\r\n",
				    1 + rndn(&cl->rng, cl->exists ? cl->exists : 1));
				r = run(cl, C_FETCH_BODY, tag) < 0 ? -1 : 0;
				ops++;
			} else if (r == 0) {
				r = op_mix(cl) < 0 ? -1 : 0;
				ops++;
				if (r == 0 && opt_restart > 0 &&
				    rndn(&cl->rng, (unsigned)opt_restart) == 0)
					session_close(cl);
			}
			if (r < 0)
				drop(cl);
		}
		if (r < 0) {
			cl->st.fatal++;
			if (++failures > 20)
				break;
			usleep(10000);
		}
	}
	if (cl->logged_in)
		session_close(cl);
	free(cl->c.buf);
	return NULL;
}

/* ---- fill ---- */
static int
fill(char **outs, int nout, int count)
{
	uint64_t rng = opt_seed * 0x100000001b3ULL + 7;
	struct sbuf m = { 0 };
	time_t base = 1700000000;
	int i, k;

	for (i = 0; i < count; i++) {
		size_t size = pick_size(&rng), lines = 0;
		char name[256], tmp[4096], path[4096];
		const char *fl;
		unsigned f = rndn(&rng, 10);

		gen_message(&rng, &m, size, ((uint64_t)opt_seed << 32) | (unsigned)i,
		    base + (time_t)i * 600);
		for (size_t j = 0; j < m.len; j++)
			lines += m.p[j] == '\n';
		/* 70% seen, some flagged/answered, 30% unseen */
		fl = f < 5 ? "S" : f < 6 ? "FS" : f < 7 ? "RS" : "";
		snprintf(name, sizeof(name), "%ld.M%06dP%d.bench,S=%zu,W=%zu:2,%s",
		    (long)(base + i * 600), i % 1000000, (int)opt_seed, m.len,
		    m.len + lines, fl);
		for (k = 0; k < nout; k++) {
			FILE *f2;

			snprintf(tmp, sizeof(tmp), "%s/tmp/%s", outs[k], name);
			snprintf(path, sizeof(path), "%s/cur/%s", outs[k], name);
			f2 = fopen(tmp, "w");
			if (f2 == NULL || fwrite(m.p, 1, m.len, f2) != m.len ||
			    fclose(f2) != 0 || rename(tmp, path) != 0) {
				fprintf(stderr, "imap_load: writing %s: %s\n", path,
				    strerror(errno));
				return 1;
			}
		}
	}
	free(m.p);
	return 0;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: imap_load --port P [--host 127.0.0.1] [--tls] [--clients N]\n"
	    "         [--first 1] [--user-fmt u%%d@bench.test] [--password PW]\n"
	    "         [--mode mix|sessions|fetch] [--seconds S] [--max-ops N]\n"
	    "         [--restart N] [--seed N]\n"
	    "       imap_load --fill --count N --seed N --out MAILDIR [--out ...]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, 0, 'h' }, { "port", 1, 0, 'p' }, { "tls", 0, 0, 't' },
		{ "clients", 1, 0, 'n' }, { "first", 1, 0, 'f' },
		{ "user-fmt", 1, 0, 'u' }, { "password", 1, 0, 'w' },
		{ "mode", 1, 0, 'm' }, { "seconds", 1, 0, 's' },
		{ "max-ops", 1, 0, 'x' }, { "restart", 1, 0, 'r' },
		{ "seed", 1, 0, 'S' }, { "fill", 0, 0, 'F' }, { "count", 1, 0, 'c' },
		{ "out", 1, 0, 'o' }, { 0, 0, 0, 0 },
	};
	char *outs[16];
	int nout = 0, do_fill = 0, count = 1000, o, i, t, b;
	struct client *cls;
	struct stats tot;
	uint64_t t0, t1;
	double cpu0, cpu1, el;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'h': opt_host = optarg; break;
		case 'p': opt_port = atoi(optarg); break;
		case 't': opt_tls = 1; break;
		case 'n': opt_clients = atoi(optarg); break;
		case 'f': opt_first = atoi(optarg); break;
		case 'u': opt_user_fmt = optarg; break;
		case 'w': opt_password = optarg; break;
		case 'm': opt_mode = optarg; break;
		case 's': opt_seconds = atof(optarg); break;
		case 'x': opt_max_ops = atol(optarg); break;
		case 'r': opt_restart = atoi(optarg); break;
		case 'S': opt_seed = (unsigned)atoi(optarg); break;
		case 'F': do_fill = 1; break;
		case 'c': count = atoi(optarg); break;
		case 'o':
			if (nout < 16)
				outs[nout++] = optarg;
			break;
		default: usage();
		}
	}
	if (do_fill)
		return nout > 0 ? fill(outs, nout, count) : (usage(), 2);
	if (opt_clients < 1 || opt_clients > 10000 || opt_seconds <= 0 ||
	    opt_seconds > 3600 || (strcmp(opt_mode, "mix") != 0 &&
	    strcmp(opt_mode, "sessions") != 0 && strcmp(opt_mode, "fetch") != 0))
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (opt_tls) {
		ssl_ctx = SSL_CTX_new(TLS_client_method());
		if (ssl_ctx == NULL)
			return 1;
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
		/* Full handshakes every time, like a new client. */
		SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_OFF);
	}
	cls = calloc((size_t)opt_clients, sizeof(*cls));
	if (cls == NULL)
		return 1;
	cpu0 = cpu_seconds();
	t0 = now_us();
	for (i = 0; i < opt_clients; i++) {
		cls[i].id = opt_first + i;
		cls[i].rng = ((uint64_t)opt_seed << 32) ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL;
		snprintf(cls[i].user, sizeof(cls[i].user), opt_user_fmt, opt_first + i);
		if (pthread_create(&cls[i].th, NULL, client_main, &cls[i]) != 0) {
			fprintf(stderr, "imap_load: pthread_create failed\n");
			stop_now = 1;
			opt_clients = i;
			break;
		}
	}
	for (i = 0; i < opt_clients; i++)
		pthread_join(cls[i].th, NULL);
	t1 = now_us();
	cpu1 = cpu_seconds();
	el = (double)(t1 - t0) / 1e6;

	memset(&tot, 0, sizeof(tot));
	for (i = 0; i < opt_clients; i++) {
		for (t = 0; t < C_NTYPES; t++) {
			tot.count[t] += cls[i].st.count[t];
			tot.errors[t] += cls[i].st.errors[t];
			tot.sum_us[t] += cls[i].st.sum_us[t];
			for (b = 0; b < NB; b++)
				tot.hist[t][b] += cls[i].st.hist[t][b];
		}
		tot.sessions += cls[i].st.sessions;
		tot.bytes_in += cls[i].st.bytes_in;
		tot.bytes_out += cls[i].st.bytes_out;
		tot.fatal += cls[i].st.fatal;
	}
	printf("{\"mode\": \"%s\", \"clients\": %d, \"tls\": %d, \"seconds\": %.3f, "
	    "\"client_cpu\": %.3f, \"sessions\": %" PRIu64 ", \"bytes_in\": %" PRIu64
	    ", \"bytes_out\": %" PRIu64 ", \"connection_failures\": %" PRIu64
	    ", \"types\": {", opt_mode, opt_clients, opt_tls, el, cpu1 - cpu0,
	    tot.sessions, tot.bytes_in, tot.bytes_out, tot.fatal);
	for (t = 0, o = 0; t < C_NTYPES; t++) {
		uint64_t n = tot.count[t], acc = 0, p50 = 0, p99 = 0;

		if (n == 0)
			continue;
		for (b = 0; b < NB; b++) {
			acc += tot.hist[t][b];
			if (p50 == 0 && acc * 2 >= n)
				p50 = bucket_value(b) + 1;
			if (p99 == 0 && acc * 100 >= n * 99) {
				p99 = bucket_value(b) + 1;
				break;
			}
		}
		printf("%s\"%s\": {\"count\": %" PRIu64 ", \"errors\": %" PRIu64
		    ", \"mean_us\": %.0f, \"p50_us\": %" PRIu64 ", \"p99_us\": %" PRIu64 "}",
		    o++ ? ", " : "", ctype_name[t], n, tot.errors[t],
		    (double)tot.sum_us[t] / (double)n, p50, p99);
	}
	printf("}}\n");
	return 0;
}
