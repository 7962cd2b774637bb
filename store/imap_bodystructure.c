/*
 * imap_bodystructure.c - BODY / BODYSTRUCTURE writer.  See the header.
 *
 * Must never write a structure the RFC 3501 grammar rejects (a multipart
 * always has at least one body, which mime.c guarantees), nor recurse
 * deeper than the tree, whose depth mime.c bounds by MIME_MAX_DEPTH.
 */
#include "imap_bodystructure.h"

#include <string.h>

#include "imap_envelope.h"

struct bs {
	const char *msg;
	size_t len;
	unsigned int flags;
	struct buf *out;
};

static int
put(struct bs *b, const char *s)
{
	return buf_puts(b->out, s);
}

static int
str(struct bs *b, const char *s)
{
	return imap_append_string(b->out, s, strlen(s));
}

static int
write_params(struct bs *b, const struct mime_param *v, unsigned int n,
    int add_charset)
{
	unsigned int i;

	if (add_charset && mime_param_get(v, n, "charset") != NULL)
		add_charset = 0;
	if (n == 0 && !add_charset)
		return put(b, "NIL");
	if (put(b, "(") < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if ((i > 0 && put(b, " ") < 0) || str(b, v[i].name) < 0 ||
		    put(b, " ") < 0 || str(b, v[i].value) < 0)
			return -1;
	}
	if (add_charset && put(b, n > 0 ? " \"charset\" \"us-ascii\"" :
	    "\"charset\" \"us-ascii\"") < 0)
		return -1;
	return put(b, ")");
}

/* SP disposition SP language SP location */
static int
write_ext_tail(struct bs *b, const struct mime_part *p)
{
	unsigned int i;

	if (put(b, " ") < 0)
		return -1;
	if (p->disposition == NULL) {
		if (put(b, "NIL") < 0)
			return -1;
	} else if (put(b, "(") < 0 || str(b, p->disposition) < 0 ||
	    put(b, " ") < 0 ||
	    write_params(b, p->disp_params, p->ndisp_params, 0) < 0 ||
	    put(b, ")") < 0)
		return -1;
	if (put(b, " ") < 0)
		return -1;
	if (p->nlanguages == 0) {
		if (put(b, "NIL") < 0)
			return -1;
	} else {
		for (i = 0; i < p->nlanguages; i++)
			if (put(b, i == 0 ? "(" : " ") < 0 ||
			    str(b, p->languages[i]) < 0)
				return -1;
		if (put(b, ")") < 0)
			return -1;
	}
	if (put(b, " ") < 0)
		return -1;
	return imap_append_nstring(b->out, p->location);
}

static int write_part(struct bs *b, const struct mime_part *p);

static int
write_multipart(struct bs *b, const struct mime_part *p)
{
	const struct mime_part *c;

	if (put(b, "(") < 0)
		return -1;
	for (c = p->children; c != NULL; c = c->next)
		if (write_part(b, c) < 0)
			return -1;
	if (put(b, " ") < 0 || str(b, p->subtype) < 0)
		return -1;
	if ((b->flags & IMAP_BS_EXTENDED) &&
	    (put(b, " ") < 0 ||
	    write_params(b, p->params, p->nparams, 0) < 0 ||
	    write_ext_tail(b, p) < 0))
		return -1;
	return put(b, ")");
}

static int
write_part(struct bs *b, const struct mime_part *p)
{
	const struct mime_part *inner = mime_part_message(p);
	int text = (p->flags & MIME_PART_TEXT) != 0;

	if (p->depth >= MIME_MAX_DEPTH)
		return -1;	/* mime.c never builds this */
	if ((p->flags & MIME_PART_MULTIPART) && p->children != NULL)
		return write_multipart(b, p);
	if ((p->flags & MIME_PART_GLOBAL) && !(b->flags & IMAP_BS_GLOBAL))
		inner = NULL;
	if (put(b, "(") < 0 || str(b, p->type) < 0 || put(b, " ") < 0 ||
	    str(b, p->subtype) < 0 || put(b, " ") < 0 ||
	    write_params(b, p->params, p->nparams, text) < 0 ||
	    put(b, " ") < 0 || imap_append_nstring(b->out, p->id) < 0 ||
	    put(b, " ") < 0 ||
	    imap_append_nstring(b->out, p->description) < 0 ||
	    put(b, " ") < 0 ||
	    str(b, p->encoding != NULL ? p->encoding : "7bit") < 0 ||
	    buf_printf(b->out, " %zu", p->body.size) < 0)
		return -1;
	if (inner != NULL) {
		if (put(b, " ") < 0 ||
		    imap_envelope_write(b->msg + inner->hdr.off, inner->hdr.len,
		    b->out) < 0 ||
		    put(b, " ") < 0 || write_part(b, inner) < 0 ||
		    buf_printf(b->out, " %zu", p->body.lines) < 0)
			return -1;
	} else if (text && buf_printf(b->out, " %zu", p->body.lines) < 0)
		return -1;
	if ((b->flags & IMAP_BS_EXTENDED) &&
	    (put(b, " ") < 0 || imap_append_nstring(b->out, p->md5) < 0 ||
	    write_ext_tail(b, p) < 0))
		return -1;
	return put(b, ")");
}

int
imap_bodystructure_write(const char *msg, size_t len,
    const struct mime_part *part, unsigned int flags, struct buf *out)
{
	struct bs b;

	b.msg = msg;
	b.len = len;
	b.flags = flags;
	b.out = out;
	return write_part(&b, part);
}
