/*
 * fuzz_pop3_parse.c - libFuzzer target for pop3d/pop3_parse.h: the
 * command splitter, message numbers, and the RETR/TOP body converter.
 *
 * Invariants checked: every pointer the splitter returns lies inside the
 * line; OK only for a known verb and a line without control bytes; a
 * number parses only from 1..10 digits and round-trips.  The converter
 * is fed the input whole and in pieces whose sizes come from the input:
 * both give the same bytes; consumption stops short only when TOP's
 * limit was reached; the output never holds a bare LF, every line that
 * starts with '.' has it doubled, it ends with ".\r\n", and (for RETR)
 * its size without the stuffing dots and the added final line end is
 * the input size plus its bare LFs: what LIST announced.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d/pop3_parse.h"

static void
check_cmd(const char *line, size_t len)
{
	struct pop3_cmd c;
	enum pop3_parse_result r = pop3_parse_command(line, len, &c);
	size_t i;
	uint32_t n;

	if (r != POP3_PARSE_OK) {
		if (c.verb != POP3_UNKNOWN)
			abort();
		return;
	}
	if (c.verb >= POP3_UNKNOWN)
		abort();
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			abort();
	if (c.rest < line || c.rest + c.restlen != line + len)
		abort();
	if (c.nargs > POP3_MAX_ARGS)
		abort();
	for (i = 0; i < c.nargs; i++) {
		if (c.args[i].p < c.rest ||
		    c.args[i].p + c.args[i].len > line + len ||
		    c.args[i].len == 0 || memchr(c.args[i].p, ' ',
		    c.args[i].len) != NULL)
			abort();
		if (pop3_parse_number(c.args[i].p, c.args[i].len, &n) == 0) {
			uint64_t v = 0;
			size_t k;

			if (c.args[i].len > 10)
				abort();
			for (k = 0; k < c.args[i].len; k++) {
				if (c.args[i].p[k] < '0' || c.args[i].p[k] > '9')
					abort();
				v = v * 10 + (uint64_t)(c.args[i].p[k] - '0');
			}
			if (v != n)
				abort();
		}
	}
}

struct conv {
	struct buf out;
	size_t consumed;
	struct pop3_stuff st;
};

static void
convert(const char *p, size_t len, int top, uint64_t lines,
    const uint8_t *sizes, size_t nsizes, struct conv *cv)
{
	size_t pos = 0, k = 0;

	buf_init(&cv->out, 4 * len + 16);
	pop3_stuff_init(&cv->st, top, lines);
	while (pos < len && !cv->st.done) {
		size_t want = len - pos;
		ssize_t got;
		char *piece;

		if (nsizes > 0) {
			size_t c = (size_t)sizes[k++ % nsizes] % 13 + 1;

			if (c < want)
				want = c;
		}
		piece = malloc(want);	/* exact size: ASan sees overreads */
		if (piece == NULL)
			abort();
		memcpy(piece, p + pos, want);
		got = pop3_stuff_feed(&cv->st, piece, want, &cv->out);
		free(piece);
		if (got < 0 || (size_t)got > want)
			abort();
		if ((size_t)got < want && !cv->st.done)
			abort();
		pos += (size_t)got;
	}
	cv->consumed = pos;
	if (cv->st.done && pop3_stuff_feed(&cv->st, "x\n", 2, &cv->out) != 0)
		abort();
	if (pop3_stuff_finish(&cv->st, &cv->out) < 0)
		abort();
}

static void
check_body(const char *p, size_t len, int top, uint64_t lines,
    const uint8_t *sizes, size_t nsizes)
{
	struct conv a, b;
	const char *o;
	size_t i, dots = 0, bare = 0;

	convert(p, len, top, lines, NULL, 0, &a);
	convert(p, len, top, lines, sizes, nsizes, &b);
	if (a.consumed != b.consumed || a.out.len != b.out.len ||
	    memcmp(a.out.data, b.out.data, a.out.len) != 0)
		abort();
	if (!top && a.consumed != len)
		abort();
	o = a.out.data;
	if (a.out.len < 3 || memcmp(o + a.out.len - 3, ".\r\n", 3) != 0)
		abort();
	for (i = 0; i < a.out.len; i++) {
		if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r'))
			abort();
		if (i + 3 < a.out.len && o[i] == '.' &&
		    (i == 0 || o[i - 1] == '\n')) {
			if (o[i + 1] != '.')
				abort();
			dots++;
		}
	}
	if (!top) {
		size_t body = a.out.len - 3 - dots, want;

		for (i = 0; i < len; i++)
			if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
				bare++;
		want = len + bare;
		/* a missing final line end was added */
		if (len > 0 && p[len - 1] != '\n')
			want += p[len - 1] == '\r' ? 1 : 2;
		if (body != want)
			abort();
	}
	buf_free(&a.out);
	buf_free(&b.out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line;
	size_t nsizes;
	int top;
	uint64_t lines;

	line = malloc(size ? size : 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	check_cmd(line, size);
	free(line);

	/* Body: byte 0 picks RETR/TOP, the TOP count and piece sizes. */
	if (size < 1)
		return 0;
	top = data[0] & 1;
	lines = (data[0] >> 1) & 7;
	nsizes = (data[0] >> 4) & 7;
	if (size < 1 + nsizes)
		return 0;
	check_body((const char *)data + 1 + nsizes, size - 1 - nsizes, top,
	    lines, data + 1, nsizes);
	return 0;
}
