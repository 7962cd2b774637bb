/*
 * fuzz_smtpc_reply.c - libFuzzer target for smtpd/smtpc_reply.h: the
 * SMTP client's reply parser, enhanced status codes and EHLO keywords.
 *
 * The input (after a few bytes that choose the piece sizes) is fed as a
 * server's byte stream, once whole and once in pieces, so every split of
 * a line across reads is tried.  Invariants: a feed never takes more than
 * it was given, and takes everything unless it completes a reply or
 * fails; a reply's code is 200..599, its text printable ASCII and NUL
 * terminated within the array, its enhanced code empty or of the form
 * class.subject.detail matching the code's class; the kept lines never
 * pass SMTPC_REPLY_BYTES_MAX; both feedings give the same replies and
 * the same final result; EHLO parsing sets a limit or mechanisms only
 * with their keyword.
 *
 * The same input is also a message body for the DATA encoder, checked
 * against smtpd's own DATA scanner: the encoded message plus "." CRLF
 * ends exactly at its end (nothing in a body can end the data early or
 * smuggle a command), and decodes back to the body with CRLF as LF and
 * a last LF added; the SIZE count is the decoded size plus one CR per
 * line; encoding in pieces gives the same bytes as in one go.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtp_parse.h"
#include "smtpd/smtpc_reply.h"

#define MAX_REPLIES 256

struct run {
	struct smtpc_reply replies[MAX_REPLIES];
	size_t n;
	int result;		/* last feed result: error or not */
	size_t consumed;
};

static void
check_reply(const struct smtpc_reply *r)
{
	const char *t;
	size_t i, len;

	if (r->code < 200 || r->code > 599 || r->local)
		abort();
	if (memchr(r->text, '\0', sizeof(r->text)) == NULL)
		abort();
	for (t = r->text; *t != '\0'; t++)
		if (*t < 0x20 || *t > 0x7e)
			abort();
	len = strlen(r->enhanced);
	if (len == 0)
		return;
	if (len < 5 || len > 9 || r->enhanced[0] - '0' != r->code / 100 ||
	    r->enhanced[1] != '.')
		abort();
	for (i = 2; i < len; i++)
		if (r->enhanced[i] != '.' &&
		    (r->enhanced[i] < '0' || r->enhanced[i] > '9'))
			abort();
}

static void
check_ehlo(const char *lines, size_t len)
{
	struct smtpc_ext x;

	smtpc_ehlo_parse(lines, len, &x);
	if (x.size != 0 && !(x.flags & SMTPC_EXT_SIZE))
		abort();
	if (x.auth != 0 && !(x.flags & SMTPC_EXT_AUTH))
		abort();
	if (x.auth & ~(unsigned)(SMTPC_AUTH_PLAIN | SMTPC_AUTH_LOGIN))
		abort();
}

static void
run(const char *p, size_t len, const uint8_t *sizes, size_t nsizes,
    struct run *out)
{
	struct smtpc_rparser rp;
	struct smtpc_reply r;
	size_t pos = 0, k = 0, used, want, nl;
	enum smtpc_feed f = SMTPC_FEED_MORE;
	const char *lines;
	char *piece;

	memset(out, 0, sizeof(*out));
	smtpc_rparser_init(&rp);
	while (pos < len && out->n < MAX_REPLIES) {
		want = len - pos;
		if (nsizes > 0 && (size_t)sizes[k % nsizes] % 23 + 1 < want)
			want = (size_t)sizes[k % nsizes] % 23 + 1;
		k++;
		/* exact-size copy: ASan sees any read past the piece */
		if ((piece = malloc(want)) == NULL)
			abort();
		memcpy(piece, p + pos, want);
		f = smtpc_reply_feed(&rp, piece, want, &used, &r);
		free(piece);
		if (used > want || (f == SMTPC_FEED_MORE && used != want))
			abort();
		pos += used;
		if (f == SMTPC_FEED_ERROR) {
			if (r.code != 0 || !r.local || r.text[0] == '\0')
				abort();
			break;
		}
		if (f == SMTPC_FEED_DONE) {
			if (used == 0)
				abort();
			check_reply(&r);
			lines = smtpc_reply_lines(&rp, &nl);
			if (nl > SMTPC_REPLY_BYTES_MAX || lines[nl] != '\0')
				abort();
			check_ehlo(lines, nl);
			out->replies[out->n++] = r;
		}
	}
	out->result = f == SMTPC_FEED_ERROR;
	out->consumed = pos;
	smtpc_rparser_free(&rp);
}

struct sink {
	char *p;
	size_t len, cap;
};

static int
sink_out(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	if (n > s->cap - s->len)
		abort();
	memcpy(s->p + s->len, p, n);
	s->len += n;
	return 0;
}

/* Encode body whole (stuffed and not) and in pieces; decode; compare. */
static void
fuzz_encoder(const char *body, size_t len, const uint8_t *sizes,
    size_t nsizes)
{
	struct smtpc_enc e;
	struct smtp_data_scanner sc;
	struct sink dec;
	char *wire, *wire2, *count, *want;
	size_t wlen, w2 = 0, clen, pos, k = 0, n, i, wantlen = 0;
	int overflow = 0, bare_cr = 0;

	wire = malloc(2 * len + 8);
	wire2 = malloc(2 * len + 8);
	count = malloc(2 * len + 8);
	want = malloc(len + 2);
	dec.p = malloc(len + 2);
	dec.len = 0;
	dec.cap = len + 2;
	if (!wire || !wire2 || !count || !want || !dec.p)
		abort();

	smtpc_enc_init(&e, 1);
	wlen = smtpc_enc_bytes(&e, body, len, wire);
	wlen += smtpc_enc_end(&e, wire + wlen);
	if (wlen > 2 * len + 2)
		abort();
	memcpy(wire + wlen, ".\r\n", 3);

	smtpc_enc_init(&e, 1);
	for (pos = 0; pos < len; pos += n) {
		n = len - pos;
		if (nsizes > 0 && (size_t)sizes[k++ % nsizes] % 13 + 1 < n)
			n = (size_t)sizes[(k - 1) % nsizes] % 13 + 1;
		w2 += smtpc_enc_bytes(&e, body + pos, n, wire2 + w2);
	}
	w2 += smtpc_enc_end(&e, wire2 + w2);
	if (w2 != wlen || memcmp(wire, wire2, wlen) != 0)
		abort();

	smtpc_enc_init(&e, 0);
	clen = smtpc_enc_bytes(&e, body, len, count);
	clen += smtpc_enc_end(&e, count + clen);

	/* what the receiving side must get back */
	for (i = 0; i < len; i++) {
		if (body[i] == '\r' && i + 1 < len && body[i + 1] == '\n')
			continue;
		if (body[i] == '\r')
			bare_cr = 1;
		want[wantlen++] = body[i];
	}
	if (wantlen > 0 && want[wantlen - 1] != '\n')
		want[wantlen++] = '\n';

	smtp_data_init(&sc);
	n = smtp_data_feed(&sc, wire, wlen + 3, sink_out, &dec, &overflow);
	/* the one and only end of data is ours */
	if (n != wlen + 3 || !sc.done)
		abort();
	if (!bare_cr) {
		if (sc.bare_newline || dec.len != wantlen ||
		    memcmp(dec.p, want, wantlen) != 0)
			abort();
		if (clen != sc.size + sc.nlines)
			abort();
	}
	free(wire);
	free(wire2);
	free(count);
	free(want);
	free(dec.p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, pieces;
	size_t nsizes = size > 0 ? data[0] % 8 : 0, i;
	const char *body;
	size_t blen;
	char e[16];

	if (size < 1 + nsizes)
		return 0;
	body = (const char *)data + 1 + nsizes;
	blen = size - 1 - nsizes;

	smtpc_enhanced_code(body, blen, 200 + (blen % 4) * 100, e);
	if (memchr(e, '\0', sizeof(e)) == NULL || strlen(e) > 9)
		abort();
	check_ehlo(body, blen);
	fuzz_encoder(body, blen, data + 1, nsizes);

	run(body, blen, NULL, 0, &whole);
	run(body, blen, data + 1, nsizes, &pieces);
	if (whole.n != pieces.n || whole.result != pieces.result)
		abort();
	/* the same bytes parse to the same replies however they arrive */
	if (whole.n < MAX_REPLIES && whole.consumed != pieces.consumed)
		abort();
	for (i = 0; i < whole.n; i++)
		if (whole.replies[i].code != pieces.replies[i].code ||
		    strcmp(whole.replies[i].text, pieces.replies[i].text) != 0 ||
		    strcmp(whole.replies[i].enhanced,
		    pieces.replies[i].enhanced) != 0)
			abort();
	return 0;
}
