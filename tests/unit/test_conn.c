/*
 * test_conn.c - the connection object's deflate layer (COMPRESS) over a
 * socketpair and a real libev loop: pipelined input after the command,
 * an input buffer far smaller than what one read inflates to, partial
 * and sync flushes, pause/resume with input held back, the plaintext
 * head of the output, corrupt input, and no zlib state without COMPRESS.
 */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include "common/conn.h"
#include "common/log.h"

/* The protocol side: a line echo with COMPRESS and PAUSE lines. */
struct proto {
	struct conn *c;
	struct buf lines;	/* every line received, LF-terminated */
	int closed;
	int paused;
	int max_data_events;	/* > 0: stop consuming after this many */
	int data_events;
};

/* The client side: the other end of the socketpair. */
struct peer {
	int fd;
	z_stream zo, zi;
	int compressing;	/* after "OK\r\n" was seen */
	struct buf raw;		/* received, before the switch */
	struct buf text;	/* received plaintext (inflated after OK) */
	struct buf pending;	/* to send */
};

static void
on_conn(struct conn *c, enum conn_event ev, void *arg)
{
	struct proto *p = arg;
	struct buf line;
	int bare, r;

	if (ev == CONN_EV_CLOSED) {
		p->closed = 1;
		p->c = NULL;
		return;
	}
	if (ev != CONN_EV_DATA)
		return;
	p->data_events++;
	buf_init(&line, 4096);
	while ((r = conn_getline(c, 1000, &line, &bare)) == 1) {
		buf_append(&p->lines, line.data, line.len);
		buf_putc(&p->lines, '\n');
		if (line.len == 8 && memcmp(line.data, "COMPRESS", 8) == 0) {
			conn_write(c, "OK\r\n", 4);
			assert_int_equal(conn_compress_start(c), 0);
			assert_int_equal(conn_compress_start(c), -1);
		} else if (line.len == 5 && memcmp(line.data, "PAUSE", 5) == 0) {
			p->paused = 1;
			conn_pause(c);
			break;
		} else {
			conn_write(c, line.data, line.len);
			conn_write(c, "\r\n", 2);
		}
	}
	assert_true(r != -2 && r != -1);
	buf_free(&line);
}

static struct ev_loop *loop;

static struct conn *
make_conn(struct proto *p, struct peer *q, size_t in_max)
{
	int sv[2];
	struct sockaddr_in sin = { .sin_family = AF_INET };

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	memset(p, 0, sizeof(*p));
	memset(q, 0, sizeof(*q));
	buf_init(&p->lines, BUF_UNLIMITED);
	q->fd = sv[1];
	buf_init(&q->raw, BUF_UNLIMITED);
	buf_init(&q->text, BUF_UNLIMITED);
	buf_init(&q->pending, BUF_UNLIMITED);
	assert_int_equal(deflateInit2(&q->zo, 6, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY), Z_OK);
	assert_int_equal(inflateInit2(&q->zi, -15), Z_OK);
	p->c = conn_new(loop, sv[0], (struct sockaddr *)&sin, sizeof(sin),
	    in_max, 64 * 1024 * 1024, on_conn, p);
	assert_non_null(p->c);
	conn_start(p->c, NULL);
	return p->c;
}

static void
peer_free(struct peer *q)
{
	deflateEnd(&q->zo);
	inflateEnd(&q->zi);
	buf_free(&q->raw);
	buf_free(&q->text);
	buf_free(&q->pending);
	close(q->fd);
}

/* Queue plaintext to send, compressed from now on, ending in flush. */
static void
peer_queue(struct peer *q, const char *s, size_t n, int flush)
{
	unsigned char out[65536];

	q->zo.next_in = (unsigned char *)(uintptr_t)s;
	q->zo.avail_in = (uInt)n;
	do {
		q->zo.next_out = out;
		q->zo.avail_out = sizeof(out);
		assert_int_not_equal(deflate(&q->zo, flush), Z_STREAM_ERROR);
		buf_append(&q->pending, out, sizeof(out) - q->zo.avail_out);
	} while (q->zo.avail_out == 0);
}

static void
peer_inflate(struct peer *q, const char *p, size_t n)
{
	unsigned char out[65536];
	int zr;

	q->zi.next_in = (unsigned char *)(uintptr_t)p;
	q->zi.avail_in = (uInt)n;
	do {
		q->zi.next_out = out;
		q->zi.avail_out = sizeof(out);
		zr = inflate(&q->zi, Z_SYNC_FLUSH);
		assert_true(zr == Z_OK || zr == Z_BUF_ERROR);
		buf_append(&q->text, out, sizeof(out) - q->zi.avail_out);
	} while (q->zi.avail_out == 0);
}

/* Send some of what is pending, read what came, run one loop turn. */
static void
peer_step(struct peer *q)
{
	char tmp[8192];
	ssize_t n;

	if (q->pending.len > 0) {
		n = write(q->fd, q->pending.data, q->pending.len);
		if (n > 0)
			buf_consume(&q->pending, (size_t)n);
	}
	while ((n = read(q->fd, tmp, sizeof(tmp))) > 0) {
		if (q->compressing) {
			peer_inflate(q, tmp, (size_t)n);
			continue;
		}
		buf_append(&q->raw, tmp, (size_t)n);
		/* "OK\r\n" is the last plaintext; the rest is deflate */
		{
			const char *ok = memmem(q->raw.data, q->raw.len,
			    "OK\r\n", 4);

			if (ok != NULL) {
				size_t head = (size_t)(ok - q->raw.data) + 4;

				buf_append(&q->text, q->raw.data, head);
				q->compressing = 1;
				peer_inflate(q, q->raw.data + head,
				    q->raw.len - head);
				buf_reset(&q->raw);
			}
		}
	}
	ev_run(loop, EVRUN_NOWAIT);
}

/* Step until text holds want bytes (or the conn closed), at most 5 s. */
static void
peer_run_until(struct peer *q, struct proto *p, size_t want)
{
	ev_tstamp end = ev_time() + 5;

	while (q->text.len < want && !p->closed && ev_time() < end) {
		peer_step(q);
		if (q->pending.len == 0)
			usleep(200);
	}
	peer_step(q);	/* what came just before a close */
}

/* Lines "line N xxxxx..." with lengths 1..199, many alike: compresses
 * ~20:1, so one 16 KiB read inflates far past a 512-byte c->in. */
static void
make_lines(struct buf *b, int count)
{
	int i;

	for (i = 0; i < count; i++) {
		int len = (i * 37) % 180;

		buf_printf(b, "line %d ", i);
		while (len-- > 0)
			buf_putc(b, (char)('a' + (i % 3)));
		buf_puts(b, "\r\n");
	}
}

/* "a\r\nb\r\n" -> "a\nb\n" (how struct proto records lines) */
static void
to_lf(const struct buf *in, struct buf *out)
{
	size_t i;

	for (i = 0; i < in->len; i++)
		if (in->data[i] != '\r')
			buf_putc(out, in->data[i]);
}

static void
test_compressed_lines_through_a_small_input_buffer(void **state)
{
	struct proto p;
	struct peer q;
	struct buf lines, want_in, want_out;
	size_t i, step;
	int flushes[] = { Z_SYNC_FLUSH, Z_PARTIAL_FLUSH, Z_NO_FLUSH };

	(void)state;
	make_conn(&p, &q, 512);
	buf_init(&lines, BUF_UNLIMITED);
	buf_init(&want_in, BUF_UNLIMITED);
	buf_init(&want_out, BUF_UNLIMITED);
	make_lines(&lines, 20000);
	/* COMPRESS and compressed lines in one write: pipelined */
	buf_append(&q.pending, "COMPRESS\r\n", 10);
	for (i = 0, step = 0; i < lines.len; i += step) {
		step = 1 + (i * 7919) % 5000;
		if (step > lines.len - i)
			step = lines.len - i;
		/* the last piece always ends in a flush */
		peer_queue(&q, lines.data + i, step, i + step == lines.len ?
		    Z_SYNC_FLUSH : flushes[(i / 13) % 3]);
	}
	buf_puts(&want_out, "OK\r\n");
	buf_append(&want_out, lines.data, lines.len);
	peer_run_until(&q, &p, want_out.len);
	assert_false(p.closed);
	assert_int_equal(q.text.len, want_out.len);
	assert_memory_equal(q.text.data, want_out.data, want_out.len);
	buf_puts(&want_in, "COMPRESS\n");
	to_lf(&lines, &want_in);
	assert_int_equal(p.lines.len, want_in.len);
	assert_memory_equal(p.lines.data, want_in.data, want_in.len);
	assert_true(conn_compressing(p.c));
	assert_true(p.c->in.len < 512);
	assert_int_equal(conn_out_pending(p.c), 0);
	conn_abort(p.c);
	peer_run_until(&q, &p, SIZE_MAX);
	assert_true(p.closed);
	buf_free(&lines);
	buf_free(&want_in);
	buf_free(&want_out);
	buf_free(&p.lines);
	peer_free(&q);
}

static void
test_pause_holds_compressed_input_until_resume(void **state)
{
	struct proto p;
	struct peer q;
	struct buf lines;
	size_t seen;
	int i;

	(void)state;
	make_conn(&p, &q, 256);
	buf_init(&lines, BUF_UNLIMITED);
	make_lines(&lines, 3000);
	buf_append(&q.pending, "COMPRESS\r\n", 10);
	peer_queue(&q, "PAUSE\r\n", 7, Z_NO_FLUSH);
	peer_queue(&q, lines.data, lines.len, Z_SYNC_FLUSH);
	for (i = 0; i < 200; i++)
		peer_step(&q);
	assert_true(p.paused);
	seen = p.lines.len;
	assert_int_equal(seen, strlen("COMPRESS\nPAUSE\n"));
	for (i = 0; i < 200; i++)
		peer_step(&q);
	assert_int_equal(p.lines.len, seen);	/* nothing while paused */
	/* nothing more is sent: resume alone must bring the rest */
	conn_resume(p.c);
	peer_run_until(&q, &p, 4 + lines.len);
	assert_int_equal(q.text.len, 4 + lines.len);
	assert_memory_equal(q.text.data + 4, lines.data, lines.len);
	conn_abort(p.c);
	peer_run_until(&q, &p, SIZE_MAX);
	buf_free(&lines);
	buf_free(&p.lines);
	peer_free(&q);
}

static void
test_corrupt_input_closes_after_what_came_before(void **state)
{
	struct proto p;
	struct peer q;
	static const char junk[] = "\xff\xff\xff\xff";

	(void)state;
	make_conn(&p, &q, 4096);
	buf_append(&q.pending, "COMPRESS\r\n", 10);
	peer_queue(&q, "hello\r\n", 7, Z_SYNC_FLUSH);
	buf_append(&q.pending, junk, 4);
	peer_run_until(&q, &p, SIZE_MAX);
	assert_true(p.closed);
	assert_string_equal(buf_cstr(&p.lines), "COMPRESS\nhello\n");
	/* the reply to "hello" was flushed before the close */
	assert_int_equal(q.text.len, strlen("OK\r\nhello\r\n"));
	assert_memory_equal(q.text.data, "OK\r\nhello\r\n", q.text.len);
	buf_free(&p.lines);
	peer_free(&q);
}

static void
test_plaintext_connection_has_no_zlib_state(void **state)
{
	struct proto p;
	struct peer q;
	struct buf lines, want;
	ev_tstamp end = ev_time() + 5;

	(void)state;
	make_conn(&p, &q, 512);
	buf_init(&lines, BUF_UNLIMITED);
	buf_init(&want, BUF_UNLIMITED);
	make_lines(&lines, 2000);
	buf_append(&q.pending, lines.data, lines.len);
	/* q.compressing stays 0: no "OK" line in this traffic */
	while (q.raw.len < lines.len && !p.closed && ev_time() < end)
		peer_step(&q);
	assert_null(p.c->z);
	assert_false(conn_compressing(p.c));
	assert_int_equal(q.raw.len, lines.len);
	assert_memory_equal(q.raw.data, lines.data, lines.len);
	to_lf(&lines, &want);
	assert_int_equal(p.lines.len, want.len);
	conn_abort(p.c);
	peer_run_until(&q, &p, SIZE_MAX);
	buf_free(&lines);
	buf_free(&want);
	buf_free(&p.lines);
	peer_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compressed_lines_through_a_small_input_buffer),
		cmocka_unit_test(test_pause_holds_compressed_input_until_resume),
		cmocka_unit_test(test_corrupt_input_closes_after_what_came_before),
		cmocka_unit_test(test_plaintext_connection_has_no_zlib_state),
	};
	int r;

	log_init("test_conn", 0);
	loop = ev_loop_new(EVFLAG_AUTO);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	ev_loop_destroy(loop);
	return r;
}
