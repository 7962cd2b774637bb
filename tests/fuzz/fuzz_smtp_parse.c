/*
 * fuzz_smtp_parse.c - libFuzzer target for smtpd/smtp_parse.h: the
 * command splitter, the MAIL/RCPT argument parsers and the DATA scanner.
 *
 * The DATA scanner is fed the input in pieces whose sizes come from the
 * input itself (so every split of CRLF "." CRLF across reads is tried)
 * into a bounded sink that starts refusing after a limit.  Invariants
 * checked: consumed never exceeds what was fed; once done the scanner
 * consumes nothing more; output never contains CR; for a clean message
 * (no bare CR/LF, sink never full) the sizes it reports match what it
 * appended; the same input fed in one piece and in many pieces gives the
 * same result.  After a bare newline the scanner may stop appending (the
 * message will be refused anyway), so output is not compared then.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_parse.h"

#define SINK_MAX 4096

struct sink {
	char data[SINK_MAX];
	size_t len;
	int refused;
};

static int
sink_out(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	if (n > SINK_MAX - s->len) {
		s->refused = 1;
		return -1;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return 0;
}

struct scan_result {
	struct smtp_data_scanner sc;
	size_t consumed;
	int overflow;
	struct sink out;
};

/* Feed data in chunks; chunk sizes taken cyclically from sizes[]. */
static void
scan(const char *p, size_t len, const uint8_t *sizes, size_t nsizes,
    struct scan_result *r)
{
	size_t pos = 0, k = 0;

	memset(r, 0, sizeof(*r));
	smtp_data_init(&r->sc);
	while (pos < len) {
		size_t want = len - pos, got;
		char *piece;

		if (nsizes > 0) {
			size_t c = (size_t)sizes[k++ % nsizes] % 17 + 1;

			if (c < want)
				want = c;
		}
		/* exact-size heap copy: ASan catches reads past the piece */
		piece = malloc(want);
		if (piece == NULL)
			abort();
		memcpy(piece, p + pos, want);
		got = smtp_data_feed(&r->sc, piece, want, sink_out, &r->out,
		    &r->overflow);
		free(piece);
		if (got > want)
			abort();
		pos += got;
		if (got < want) {
			if (!r->sc.done)
				abort();	/* short consume only at the end */
			break;
		}
		if (r->sc.done)
			break;
	}
	r->consumed = pos;
	if (r->sc.done) {
		/* nothing is consumed after the end */
		char extra[4] = { '.', '\r', '\n', 'x' };

		if (smtp_data_feed(&r->sc, extra, sizeof(extra), sink_out,
		    &r->out, &r->overflow) != 0)
			abort();
	}
	if (memchr(r->out.data, '\r', r->out.len) != NULL)
		abort();
	if (!r->out.refused && !r->overflow && !r->sc.bare_newline) {
		size_t i, lf = 0;

		if (r->sc.size != r->out.len)
			abort();
		for (i = 0; i < r->out.len; i++)
			if (r->out.data[i] == '\n')
				lf++;
		if (r->sc.nlines != lf)
			abort();
	}
	if (r->out.refused && !r->overflow)
		abort();	/* a refused append must be reported */
}

static void
fuzz_data(const uint8_t *data, size_t size)
{
	static struct scan_result whole, pieces;
	size_t nsizes = size > 0 ? data[0] % 8 : 0;
	const uint8_t *sizes = data + (size > 0 ? 1 : 0);
	const char *body;
	size_t blen;

	if (size < 1 + nsizes)
		return;
	body = (const char *)data + 1 + nsizes;
	blen = size - 1 - nsizes;
	scan(body, blen, NULL, 0, &whole);
	if (nsizes == 0)
		return;
	scan(body, blen, sizes, nsizes, &pieces);
	if (whole.consumed != pieces.consumed ||
	    whole.sc.done != pieces.sc.done ||
	    whole.sc.bare_newline != pieces.sc.bare_newline ||
	    whole.sc.size != pieces.sc.size ||
	    whole.sc.nlines != pieces.sc.nlines)
		abort();
	/* for a clean message and a sink that never refused, the bytes too */
	if (!whole.overflow && !pieces.overflow && !whole.sc.bare_newline &&
	    (whole.out.len != pieces.out.len ||
	    memcmp(whole.out.data, pieces.out.data, whole.out.len) != 0))
		abort();
	/* the end of data is only ever CRLF "." CRLF (or "." CRLF at start) */
	if (whole.sc.done) {
		const char *e = body + whole.consumed;

		if (whole.consumed < 3 || memcmp(e - 3, ".\r\n", 3) != 0)
			abort();
		if (whole.consumed > 3 && memcmp(e - 5, "\r\n.\r\n", 5) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_cmd cmd;
	struct smtp_mail_args mail;
	struct smtp_rcpt_args rcpt;
	int code;
	const char *why;
	char *line;

	line = malloc(size ? size : 1);
	if (line == NULL)
		return 0;
	memcpy(line, data, size);
	memset(&cmd, 0, sizeof(cmd));
	cmd.verb = SMTP_HELO;	/* must be overwritten on failure */

	if (smtp_parse_command(line, size, &cmd) == 0) {
		if (cmd.verb >= SMTP_UNKNOWN)
			abort();
		if (cmd.arg != NULL &&
		    (cmd.arg < line || cmd.arg + cmd.arglen > line + size))
			abort();
	} else if (memchr(line, '\0', size) == NULL &&
	    cmd.verb != SMTP_UNKNOWN) {
		abort();
	}

	code = 0;
	why = NULL;
	memset(&mail, 0, sizeof(mail));
	if (smtp_parse_mail(line, size, &mail, &code, &why) == 0) {
		if (memchr(mail.from.local, '\0', sizeof(mail.from.local)) == NULL ||
		    memchr(mail.from.domain, '\0', sizeof(mail.from.domain)) == NULL)
			abort();
	} else if (code < 400 || code > 599 || why == NULL) {
		abort();
	}

	code = 0;
	why = NULL;
	memset(&rcpt, 0, sizeof(rcpt));
	if (smtp_parse_rcpt(line, size, size > 0 && (data[0] & 1), &rcpt,
	    &code, &why) == 0) {
		if (memchr(rcpt.to.local, '\0', sizeof(rcpt.to.local)) == NULL ||
		    memchr(rcpt.to.domain, '\0', sizeof(rcpt.to.domain)) == NULL)
			abort();
	} else if (code < 400 || code > 599 || why == NULL) {
		abort();
	}

	free(line);
	fuzz_data(data, size);
	return 0;
}
