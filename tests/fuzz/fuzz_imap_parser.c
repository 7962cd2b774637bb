/*
 * fuzz_imap_parser.c - libFuzzer target for imapd/imap_parser.h (and the
 * sequence sets it carries, imapd/imap_seqset.h).
 *
 * Input: byte 0 picks a set of limits (tiny ones reach every limit
 * path), bytes 1-4 seed the piece sizes, the rest is what a client
 * sends.  The stream is parsed twice: once in one piece and once in
 * pseudo-random pieces, the way reads arrive.  Continuations are
 * answered (the bytes simply keep coming) or, for some literal sizes,
 * refused with imap_parser_reset(); after an IDLE or AUTHENTICATE
 * command one plain line is read with imap_parser_feed_line() - all
 * decided by the parsed data, so both runs take the same decisions.
 *
 * Checked: consumed never exceeds what was offered; NEED_MORE consumes
 * everything; both runs give the same sequence of results and the same
 * commands (the parser must not depend on how input is split); every
 * command respects the limits (depth, argument count, text and literal
 * sizes, NUL-terminated strings).  Atoms that parse as sequence sets
 * must resolve, format and parse back to the same set.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd/imap_parser.h"
#include "imapd/imap_seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_parser_limits limsets[] = {
	{ 64, 32, 48, 3, 16 },
	{ 4096, 4096, 0, 20, 1000 },
	{ 1, 0, 0, 1, 1 },
	{ 16, 8, 0, 2, 4 },
	{ 200, 100, 150, 5, 40 },
	{ 8192, 1 << 20, 0, 20, 2000 },
};

struct run {
	struct buf log;
	uint64_t lit_total, text_total;
};

static void
check_seqset(const struct imap_arg *a)
{
	struct imap_seqset s, t;
	struct buf b;
	const char *why;
	size_t i;

	imap_seqset_init(&s, 64);
	imap_seqset_init(&t, 64);
	buf_init(&b, 4096);
	if (imap_seqset_parse(&s, a->str, a->len, 1, &why) == 0) {
		/* as written: format and parse back to the same ranges */
		if (imap_seqset_format(&s, &b) < 0 ||
		    imap_seqset_parse(&t, b.data, b.len, 0, &why) != 0 ||
		    t.n != s.n)
			abort();
		for (i = 0; i < s.n; i++)
			if (s.r[i].lo != t.r[i].lo || s.r[i].hi != t.r[i].hi)
				abort();
		if (imap_seqset_resolve(&s, (uint32_t)a->len * 3, 0, &why) != 0)
			abort();
		for (i = 1; i < s.n; i++)
			if ((uint64_t)s.r[i - 1].hi + 1 >= s.r[i].lo)
				abort();
		buf_reset(&b);
		if (imap_seqset_format(&s, &b) < 0)
			abort();
		if (s.n > 0 && (imap_seqset_parse(&t, b.data, b.len, 0,
		    &why) != 0 || t.n != s.n ||
		    imap_seqset_count(&s) != imap_seqset_count(&t)))
			abort();
	}
	buf_free(&b);
	imap_seqset_free(&t);
	imap_seqset_free(&s);
}

/* The argument readers must agree with the argument they read. */
static void
check_helpers(const struct imap_arg *a)
{
	const char *str;
	size_t len, i;
	uint64_t v, off, cnt;

	if (imap_arg_astring(a, &str, &len)) {
		if (str != a->str || len != a->len ||
		    !imap_arg_list_mailbox(a, &str, &len) ||
		    (a->type == IMAP_ARG_LITERAL && (a->flags & IMAP_ARG_F_NUL)))
			abort();
		if (a->type != IMAP_ARG_QUOTED && a->type != IMAP_ARG_LITERAL)
			for (i = 0; i < len; i++)
				if (strchr("(){%*\\\" ", str[i]) != NULL ||
				    (unsigned char)str[i] < 0x21 ||
				    (unsigned char)str[i] > 0x7e)
					abort();
	}
	if (imap_arg_string(a, &str, &len) != (a->type == IMAP_ARG_QUOTED ||
	    a->type == IMAP_ARG_LITERAL))
		abort();
	if (imap_arg_number(a, &v) && (a->type != IMAP_ARG_NUMBER ||
	    v > (uint64_t)INT64_MAX))
		abort();
	if (imap_arg_is_atom(a, "NIL") != (a->type == IMAP_ARG_NIL))
		abort();
	if ((a->flags & IMAP_ARG_F_SECTION) &&
	    imap_parse_partial(a->str + a->len - a->suffix_len, a->suffix_len,
	    &off, &cnt) == 0 && (cnt == 0 || off > (uint64_t)INT64_MAX ||
	    cnt > (uint64_t)INT64_MAX))
		abort();
}

static void
walk(const struct imap_parser_limits *lim, const struct imap_arg *a,
    size_t n, unsigned depth, size_t *nargs, struct run *r)
{
	size_t i;

	if (n > 0 && depth > lim->max_depth)	/* lists/sections nest */
		abort();
	for (i = 0; i < n; i++, a++) {
		(*nargs)++;
		if (a->str == NULL || a->str[a->len] != '\0')
			abort();
		buf_printf(&r->log, "%d/%x/%zu:", (int)a->type, a->flags,
		    a->len);
		buf_append(&r->log, a->str, a->len);
		if (a->type == IMAP_ARG_LITERAL)
			r->lit_total += a->len;
		else
			r->text_total += a->len;
		if (a->type == IMAP_ARG_LIST) {
			if (a->len != 0 || (a->flags & IMAP_ARG_F_SECTION))
				abort();
		}
		if (a->flags & IMAP_ARG_F_SECTION) {
			if (a->type != IMAP_ARG_ATOM ||
			    a->name_len + a->suffix_len + 2 > a->len ||
			    a->str[a->name_len] != '[')
				abort();
		} else if (a->type != IMAP_ARG_LIST && a->count != 0)
			abort();
		if (a->type == IMAP_ARG_ATOM && !(a->flags & IMAP_ARG_F_SECTION))
			check_seqset(a);
		check_helpers(a);
		buf_putc(&r->log, '(');
		walk(lim, a->args, a->count, depth + 1, nargs, r);
		buf_putc(&r->log, ')');
	}
}

static int
is_name(const struct imap_command *c, const char *w)
{
	return c->name_len == strlen(w) && strncasecmp(c->name, w, c->name_len) == 0;
}

/*
 * Parse in[0..len) delivering it in pieces (sizes from seed; one piece
 * when seed is 0), logging every result into r->log.
 */
static void
parse_stream(const struct imap_parser_limits *lim, const char *in, size_t len,
    uint32_t seed, struct run *r)
{
	struct imap_parser *p = imap_parser_new(lim);
	size_t delivered, done = 0, used, nargs, llen, tlen;
	enum imap_parse_result res;
	const struct imap_command *c;
	const char *line, *tag;
	int line_mode = 0, ns;
	uint64_t sz;

	if (p == NULL)
		abort();
	delivered = seed == 0 ? len : 0;
	for (;;) {
		if (line_mode) {
			res = imap_parser_feed_line(p, in + done,
			    delivered - done, &used, &line, &llen);
			if (used > delivered - done)
				abort();
			done += used;
			if (res == IMAP_PARSE_DONE) {
				if (strlen(line) != llen ||
				    llen > lim->max_line)
					abort();
				buf_printf(&r->log, "L%zu:", llen);
				buf_append(&r->log, line, llen);
				line_mode = 0;
				continue;
			}
			if (res == IMAP_PARSE_ERROR) {
				buf_printf(&r->log, "LE%s;",
				    imap_parser_error(p));
				line_mode = 0;
				continue;
			}
		} else {
			res = imap_parser_feed(p, in + done, delivered - done,
			    &used);
			if (used > delivered - done)
				abort();
			done += used;
		}
		switch (res) {
		case IMAP_PARSE_NEED_MORE:
			if (done != delivered)
				abort();
			if (delivered == len) {
				imap_parser_free(p);
				return;
			}
			seed = seed * 1103515245u + 12345u;
			delivered += 1 + (seed >> 16) % 64;
			if (delivered > len)
				delivered = len;
			break;
		case IMAP_PARSE_DONE:
			c = imap_parser_command(p);
			if (c == NULL || c->tag_len == 0 ||
			    c->tag[c->tag_len] != '\0' ||
			    c->name[c->name_len] != '\0')
				abort();
			buf_putc(&r->log, 'D');
			buf_append(&r->log, c->tag, c->tag_len);
			buf_putc(&r->log, ' ');
			buf_append(&r->log, c->name, c->name_len);
			nargs = 0;
			r->lit_total = r->text_total = 0;
			walk(lim, c->args, c->count, 0, &nargs, r);
			if (nargs > lim->max_args ||
			    r->lit_total > (lim->max_literal_total ?
			    lim->max_literal_total : lim->max_literal) ||
			    r->text_total > 2 * lim->max_line)
				abort();
			buf_putc(&r->log, ';');
			if (is_name(c, "IDLE") || is_name(c, "AUTHENTICATE"))
				line_mode = 1;
			break;
		case IMAP_PARSE_ERROR:
		case IMAP_PARSE_LITERAL_TOO_BIG:
			if (imap_parser_command(p) != NULL ||
			    imap_parser_error(p) == NULL)
				abort();
			tag = imap_parser_tag(p, &tlen);
			buf_printf(&r->log, "%c%s:", res == IMAP_PARSE_ERROR ?
			    'E' : 'B', imap_parser_error(p));
			if (tag != NULL)
				buf_append(&r->log, tag, tlen);
			buf_putc(&r->log, ';');
			break;
		case IMAP_PARSE_NEED_CONTINUATION:
			sz = imap_parser_literal_size(p, &ns);
			if (ns || sz > lim->max_literal)
				abort();
			buf_printf(&r->log, "C%llu;", (unsigned long long)sz);
			if (sz % 7 == 3) {
				/* refused: "TAG NO ..." and no "+" */
				if (imap_parser_tag(p, &tlen) == NULL)
					abort();
				imap_parser_reset(p);
			}
			break;
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct imap_parser_limits *lim;
	struct run whole, split;
	uint32_t seed;

	if (size < 5)
		return 0;
	lim = &limsets[data[0] % (sizeof(limsets) / sizeof(limsets[0]))];
	seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
	    (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
	seed |= 1;
	data += 5;
	size -= 5;

	buf_init(&whole.log, BUF_UNLIMITED);
	buf_init(&split.log, BUF_UNLIMITED);
	parse_stream(lim, (const char *)data, size, 0, &whole);
	parse_stream(lim, (const char *)data, size, seed, &split);
	if (whole.log.len != split.log.len ||
	    (whole.log.len > 0 &&
	    memcmp(whole.log.data, split.log.data, whole.log.len) != 0))
		abort();
	buf_free(&whole.log);
	buf_free(&split.log);
	return 0;
}
