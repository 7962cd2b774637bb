/*
 * fuzz_mime.c - libFuzzer target for the MIME structure parser and what
 * is built on it: ENVELOPE, BODY/BODYSTRUCTURE, BODY[section] data and
 * the decoders.
 *
 * The input is a stored message (not NUL-terminated: every parser must
 * honour len).  Its first byte also picks a split point: the bytes
 * before it are used as a section spec, so the section parser is fuzzed
 * too.  Checks that nothing crashes or hangs and that the invariants
 * hold: spans inside the message and nested in their parents, CRLF sizes
 * that match the bytes, BODY[] of exactly RFC822.SIZE octets, each
 * fetched section as long as mime_section_locate() says.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "store/imap_bodystructure.h"
#include "store/imap_envelope.h"
#include "store/mime.h"
#include "store/mime_decode.h"
#include "store/mime_section.h"

#define OUT_MAX (64u << 20)
#define DECODE_PARTS 64		/* leaves decoded per input, for speed */

static const char *const sections[] = {
	"", "HEADER", "TEXT", "1", "1.MIME", "2", "2.MIME", "1.1", "2.1",
	"2.2.1", "1.HEADER", "2.TEXT", "3.1.MIME",
	"HEADER.FIELDS (From Subject Content-Type)",
	"1.HEADER.FIELDS.NOT (Content-Type X)", "2.HEADER.FIELDS (To)",
};

static void
check_part(const char *msg, size_t len, const struct mime_part *p,
    unsigned int *count)
{
	const struct mime_part *c;
	size_t size, lines, end = p->body.off + p->body.len;

	(*count)++;
	if (p->hdr.off + p->hdr.len != p->body.off || end > len ||
	    p->depth >= MIME_MAX_DEPTH || p->type == NULL || p->subtype == NULL)
		abort();
	mime_crlf_measure(msg, p->hdr.off, p->hdr.len, &size, &lines);
	if (size != p->hdr.size || lines != p->hdr.lines)
		abort();
	mime_crlf_measure(msg, p->body.off, p->body.len, &size, &lines);
	if (size != p->body.size || lines != p->body.lines)
		abort();
	if ((p->flags & MIME_PART_MULTIPART) && p->children == NULL)
		abort();
	if ((p->flags & MIME_PART_MESSAGE) && p->nchildren != 1)
		abort();
	for (c = p->children; c != NULL; c = c->next) {
		if (c->parent != p || c->depth != p->depth + 1 ||
		    c->hdr.off < p->body.off || c->body.off + c->body.len > end)
			abort();
		check_part(msg, len, c, count);
	}
}

static void
fetch_section(const char *msg, const struct mime_message *m,
    const char *spec, size_t n, struct buf *out)
{
	struct mime_section s;
	struct mime_section_data d;
	const char *err;

	mime_section_init(&s);
	if (mime_section_parse(&s, spec, n, &err) == 0) {
		mime_section_locate(msg, m, &s, &d);
		buf_reset(out);
		if (mime_section_fetch(msg, m, &s, 0, SIZE_MAX, out) == 0 &&
		    out->len != d.size)
			abort();
		buf_reset(out);
		if (mime_section_fetch(msg, m, &s, d.size / 3, 7, out) == 0 &&
		    out->len > 7)
			abort();
		if (!d.filtered && d.off + d.len > m->root->body.off +
		    m->root->body.len)
			abort();
	} else if (err == NULL)
		abort();
	mime_section_free(&s);
}

static void
decode_parts(const char *msg, const struct mime_part *p, struct buf *out,
    unsigned int *left)
{
	const struct mime_part *c;
	unsigned int i;

	if (*left == 0)
		return;
	(*left)--;
	if (p->children == NULL) {
		buf_reset(out);
		(void)mime_decode_text(msg, p, out);
		buf_reset(out);
		(void)mime_decode_body(msg, p, out);
		(void)mime_search_utf8(buf_cstr(out), out->len, "Ab\xc3\x89", 4);
	}
	for (i = 0; i < p->nparams; i++) {
		buf_reset(out);
		(void)mime_decode_2231(p->params[i].value,
		    strlen(p->params[i].value), out);
	}
	for (c = p->children; c != NULL; c = c->next)
		decode_parts(msg, c, out, left);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_message *m;
	struct mime_header h;
	struct buf out;
	char *msg;
	size_t i, split, pos = 0;
	unsigned int count = 0, left = DECODE_PARTS;

	msg = malloc(size ? size : 1);	/* exact size: ASan sees overreads */
	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	m = mime_parse(msg, size);
	if (m == NULL) {
		free(msg);
		return 0;
	}
	check_part(msg, size, m->root, &count);
	if (count != m->nparts || m->nparts > MIME_MAX_PARTS ||
	    m->size != m->root->hdr.size + m->root->body.size)
		abort();

	buf_init(&out, OUT_MAX);
	(void)imap_envelope_write(msg, m->root->hdr.len, &out);
	buf_reset(&out);
	(void)imap_bodystructure_write(msg, size, m->root, 0, &out);
	buf_reset(&out);
	(void)imap_bodystructure_write(msg, size, m->root,
	    IMAP_BS_EXTENDED | IMAP_BS_GLOBAL, &out);

	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		fetch_section(msg, m, sections[i], strlen(sections[i]), &out);
	split = size > 0 ? (unsigned char)msg[0] % 64 : 0;
	if (split > 0 && split < size)
		fetch_section(msg, m, msg + 1, split, &out);

	/* decoders on the first header values and on the parts */
	for (i = 0; i < 8 && mime_header_next(msg, m->root->hdr.len, &pos,
	    &h) > 0; i++) {
		buf_reset(&out);
		(void)mime_decode_header(h.value, h.value_len, &out);
		(void)imap_envelope_addresses(h.value, h.value_len, &out);
	}
	decode_parts(msg, m->root, &out, &left);

	buf_free(&out);
	mime_free(m);
	free(msg);
	return 0;
}
