/*
 * mime_section.c - BODY[section] data.  See mime_section.h.
 *
 * Must never read outside the message, return bytes of another part
 * than the one named, or let a client's section text grow memory beyond
 * MIME_SECTION_MAX_FIELDS names of MIME_SECTION_MAX_FIELD_LEN octets.
 * BINARY decodes one part at a time, into memory bounded by twice that
 * part's stored size.
 */
#include "mime_section.h"
#include "mime_decode.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

void
mime_section_init(struct mime_section *s)
{
	memset(s, 0, sizeof(*s));
	buf_init(&s->names, MIME_SECTION_MAX_FIELDS *
	    (MIME_SECTION_MAX_FIELD_LEN + 1));
}

void
mime_section_free(struct mime_section *s)
{
	buf_free(&s->names);
	s->nnames = 0;
}

int
mime_section_add_field(struct mime_section *s, const char *name, size_t len)
{
	if (len == 0 || len > MIME_SECTION_MAX_FIELD_LEN ||
	    memchr(name, '\0', len) != NULL ||
	    s->nnames >= MIME_SECTION_MAX_FIELDS)
		return -1;
	if (buf_append(&s->names, name, len) < 0 ||
	    buf_putc(&s->names, '\0') < 0)
		return -1;
	s->nnames++;
	return 0;
}

/* Case-insensitive keyword at p[*i]; advances on a match. */
static int
keyword(const char *p, size_t len, size_t *i, const char *kw)
{
	size_t n = strlen(kw);

	if (len - *i < n || strncasecmp(p + *i, kw, n) != 0)
		return 0;
	*i += n;
	return 1;
}

static int
parse_fields(struct mime_section *s, const char *p, size_t len, size_t i,
    const char **error_r)
{
	struct buf q;
	size_t st;
	int r = 0;

	if (i >= len || p[i] != ' ' || ++i >= len || p[i] != '(') {
		*error_r = "HEADER.FIELDS needs a list of field names";
		return -1;
	}
	i++;
	buf_init(&q, MIME_SECTION_MAX_FIELD_LEN + 1);
	for (;;) {
		while (i < len && p[i] == ' ')
			i++;
		if (i < len && p[i] == ')') {
			i++;
			break;
		}
		if (i >= len) {
			*error_r = "unterminated field list";
			r = -1;
			break;
		}
		if (p[i] == '"') {
			/* quoted: \" and \\ are the only escapes */
			buf_reset(&q);
			for (i++; i < len && p[i] != '"'; i++) {
				if (p[i] == '\\' && i + 1 < len)
					i++;
				if (buf_putc(&q, p[i]) < 0)
					break;
			}
			if (i >= len || p[i] != '"') {
				*error_r = "bad quoted field name";
				r = -1;
				break;
			}
			i++;
			if (mime_section_add_field(s, q.data, q.len) < 0) {
				*error_r = "bad or too many field names";
				r = -1;
				break;
			}
			continue;
		}
		for (st = i; i < len && (unsigned char)p[i] > 0x20 &&
		    (unsigned char)p[i] < 0x7f && p[i] != '(' && p[i] != ')' &&
		    p[i] != '"' && p[i] != '{' && p[i] != '\\'; i++)
			;
		if (i == st ||
		    mime_section_add_field(s, p + st, i - st) < 0) {
			*error_r = "bad or too many field names";
			r = -1;
			break;
		}
	}
	buf_free(&q);
	if (r == 0 && i != len) {
		*error_r = "junk after the field list";
		r = -1;
	}
	if (r == 0 && s->nnames == 0) {
		*error_r = "empty field list";
		r = -1;
	}
	return r;
}

int
mime_section_parse(struct mime_section *s, const char *p, size_t len,
    const char **error_r)
{
	size_t i = 0;
	unsigned long n;

	*error_r = NULL;
	s->nparts = 0;
	s->text = MIME_SECTION_BODY;
	buf_reset(&s->names);
	s->nnames = 0;
	/* section-part = nz-number *("." nz-number) */
	while (i < len && p[i] >= '0' && p[i] <= '9') {
		if (p[i] == '0') {
			*error_r = "part numbers start at 1";
			return -1;
		}
		for (n = 0; i < len && p[i] >= '0' && p[i] <= '9'; i++) {
			n = n * 10 + (unsigned long)(p[i] - '0');
			if (n > UINT32_MAX) {
				*error_r = "part number too large";
				return -1;
			}
		}
		if (s->nparts >= MIME_MAX_DEPTH) {
			*error_r = "section nested too deeply";
			return -1;
		}
		s->part[s->nparts++] = (unsigned int)n;
		if (i == len)
			return 0;
		if (p[i] != '.') {
			*error_r = "bad section";
			return -1;
		}
		if (++i == len) {
			*error_r = "section ends with a dot";
			return -1;
		}
	}
	if (i == len)
		return 0;	/* BODY[] */
	if (keyword(p, len, &i, "HEADER.FIELDS.NOT")) {
		s->text = MIME_SECTION_HEADER_FIELDS_NOT;
		return parse_fields(s, p, len, i, error_r);
	}
	if (keyword(p, len, &i, "HEADER.FIELDS")) {
		s->text = MIME_SECTION_HEADER_FIELDS;
		return parse_fields(s, p, len, i, error_r);
	}
	if (keyword(p, len, &i, "HEADER"))
		s->text = MIME_SECTION_HEADER;
	else if (keyword(p, len, &i, "TEXT"))
		s->text = MIME_SECTION_TEXT;
	else if (s->nparts > 0 && keyword(p, len, &i, "MIME"))
		s->text = MIME_SECTION_MIME;
	else {
		*error_r = "unknown section";
		return -1;
	}
	if (i != len) {
		*error_r = "junk after the section";
		return -1;
	}
	return 0;
}

const struct mime_part *
mime_section_part(const struct mime_message *m, const unsigned int *part,
    unsigned int nparts)
{
	const struct mime_part *p = m->root, *c;
	unsigned int i, k;

	for (i = 0; i < nparts && p != NULL; i++) {
		if (p->flags & MIME_PART_MULTIPART) {
			for (c = p->children, k = 1; c != NULL && k < part[i]; k++)
				c = c->next;
			p = c;
		} else if (part[i] != 1 ||
		    (i + 1 < nparts && !(p->flags & MIME_PART_MESSAGE)))
			p = NULL;
		if (p != NULL && (p->flags & MIME_PART_MESSAGE) && i + 1 < nparts)
			p = p->children;
	}
	return p;
}

static int
name_listed(const struct mime_section *s, const struct mime_header *h)
{
	const char *n = buf_cstr(&s->names);
	unsigned int i;
	size_t l;

	if (h->name_len == 0)
		return 0;
	for (i = 0; i < s->nnames; i++, n += l + 1) {
		l = strlen(n);
		if (l == h->name_len && strncasecmp(n, h->name, l) == 0)
			return 1;
	}
	return 0;
}

/*
 * The filtered header of [off, off+len), appended to out when it is not
 * NULL; returns its CRLF size either way (-1 when out is full).
 */
static long long
filter_header(const char *msg, const struct mime_section *s, size_t off,
    size_t len, struct buf *out)
{
	const char *h0 = msg + off;
	struct mime_header h;
	size_t pos = 0, size = 0, sz, lines;
	int want = s->text == MIME_SECTION_HEADER_FIELDS;

	while (mime_header_next(h0, len, &pos, &h) > 0) {
		if (name_listed(s, &h) != want)
			continue;
		mime_crlf_measure(msg, (size_t)(h.line - msg), h.line_len, &sz,
		    &lines);
		size += sz;
		if (out != NULL && mime_crlf_append(out, msg,
		    (size_t)(h.line - msg), h.line_len, 0, SIZE_MAX) < 0)
			return -1;
		if (h.line[h.line_len - 1] != '\n') {
			size += 2;
			if (out != NULL && buf_append(out, "\r\n", 2) < 0)
				return -1;
		}
	}
	/* the blank line, when the header has one */
	if (pos < len && (h0[pos] == '\n' || h0[pos] == '\r')) {
		size += 2;
		if (out != NULL && buf_append(out, "\r\n", 2) < 0)
			return -1;
	}
	return (long long)size;
}

void
mime_section_locate(const char *msg, const struct mime_message *m,
    const struct mime_section *s, struct mime_section_data *d)
{
	const struct mime_part *p;
	const struct mime_span *a = NULL, *b = NULL;

	memset(d, 0, sizeof(*d));
	p = mime_section_part(m, s->part, s->nparts);
	if (p != NULL && s->nparts > 0 && s->text != MIME_SECTION_BODY &&
	    s->text != MIME_SECTION_MIME)
		p = mime_part_message(p);	/* n.HEADER, n.TEXT: message only */
	if (p == NULL)
		return;
	switch (s->text) {
	case MIME_SECTION_BODY:
		if (s->nparts == 0)
			a = &p->hdr;
		b = &p->body;
		break;
	case MIME_SECTION_MIME:
	case MIME_SECTION_HEADER:
	case MIME_SECTION_HEADER_FIELDS:
	case MIME_SECTION_HEADER_FIELDS_NOT:
		a = &p->hdr;
		break;
	case MIME_SECTION_TEXT:
		b = &p->body;
		break;
	}
	d->off = a != NULL ? a->off : b->off;
	d->len = (a != NULL ? a->len : 0) + (b != NULL ? b->len : 0);
	d->size = (a != NULL ? a->size : 0) + (b != NULL ? b->size : 0);
	if (s->text == MIME_SECTION_HEADER_FIELDS ||
	    s->text == MIME_SECTION_HEADER_FIELDS_NOT) {
		d->filtered = 1;
		d->size = (size_t)filter_header(msg, s, d->off, d->len, NULL);
	}
}

int
mime_section_fetch(const char *msg, const struct mime_message *m,
    const struct mime_section *s, size_t origin, size_t count,
    struct buf *out)
{
	struct mime_section_data d;
	struct buf tmp;
	size_t n;
	int r;

	mime_section_locate(msg, m, s, &d);
	if (origin >= d.size || count == 0)
		return 0;
	if (!d.filtered)
		return mime_crlf_append(out, msg, d.off, d.len, origin, count);
	buf_init(&tmp, out->max);
	r = filter_header(msg, s, d.off, d.len, &tmp) < 0 ? -1 : 0;
	if (r == 0) {
		n = tmp.len - origin;
		r = buf_append(out, tmp.data + origin, n < count ? n : count);
	}
	buf_free(&tmp);
	return r;
}

int
mime_binary_check(const struct mime_message *m, const unsigned int *part,
    unsigned int nparts)
{
	const struct mime_part *p;

	if (nparts == 0)
		return 0;		/* the whole message, as stored */
	p = mime_section_part(m, part, nparts);
	if (p == NULL)
		return 0;		/* no such part: empty, as BODY[n] */
	/* RFC 2045 6.4: a container has no encoding of its own to remove */
	if (p->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE))
		return MIME_BINARY_NOT_LEAF;
	if (mime_cte_from_name(p->encoding) == MIME_CTE_UNKNOWN)
		return MIME_BINARY_UNKNOWN_CTE;
	return 0;
}

/* Append data[origin, origin+count) clipped to len; out may be NULL. */
static int
append_slice(struct buf *out, const char *data, size_t len, size_t origin,
    size_t count)
{
	size_t n;

	if (out == NULL || origin >= len || count == 0)
		return 0;
	n = len - origin;
	return buf_append(out, data + origin, n < count ? n : count);
}

int
mime_binary_fetch(const char *msg, const struct mime_message *m,
    const unsigned int *part, unsigned int nparts, size_t origin,
    size_t count, struct buf *out, size_t *size_r)
{
	const struct mime_part *p = m->root;
	size_t off, len, size, dummy;
	struct buf tmp;
	int r;

	if (size_r == NULL)
		size_r = &dummy;
	*size_r = 0;
	if ((r = mime_binary_check(m, part, nparts)) != 0)
		return r;
	if (nparts > 0 && (p = mime_section_part(m, part, nparts)) == NULL)
		return 0;
	if (nparts == 0 ||
	    mime_cte_from_name(p->encoding) == MIME_CTE_IDENTITY) {
		/* nothing to decode: the CRLF form, streamed as BODY[] is */
		off = nparts == 0 ? p->hdr.off : p->body.off;
		len = nparts == 0 ? p->hdr.len + p->body.len : p->body.len;
		size = nparts == 0 ? p->hdr.size + p->body.size : p->body.size;
		*size_r = size;
		if (out == NULL || origin >= size || count == 0)
			return 0;
		return mime_crlf_append(out, msg, off, len, origin, count);
	}
	/* QP turns a bare LF into CRLF: at most twice the stored bytes */
	buf_init(&tmp, 2 * p->body.len + 16);
	r = mime_decode_body(msg, p, &tmp);
	if (r == 0) {
		*size_r = tmp.len;
		r = append_slice(out, buf_cstr(&tmp), tmp.len, origin, count);
	}
	buf_free(&tmp);
	return r;
}
