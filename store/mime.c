/*
 * mime.c - MIME structure parser.  See mime.h for the model and the
 * rules for broken input.
 *
 * Must never read outside [p, p+len), recurse, allocate per byte, or
 * spend more than O(len * MIME_MAX_DEPTH) on any input: one pass over
 * the lines, an explicit stack of open boundaries, and line/CRLF counts
 * carried along so no range is ever rescanned.
 */
#include "mime.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------ */
/* Arena: every part and string of one message, freed at once.        */

#define ARENA_CHUNK 16384

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	alignas(max_align_t) unsigned char data[];
};

struct mime_arena {
	struct arena_chunk *head;
};

static void *
arena_alloc(struct mime_arena *a, size_t n)
{
	struct arena_chunk *c = a->head;
	size_t cap;

	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	if (c == NULL || c->cap - c->used < n) {
		cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (c == NULL)
			return NULL;
		c->used = 0;
		c->cap = cap;
		if (a->head != NULL && n > ARENA_CHUNK) {
			/* keep filling the current chunk after a big one */
			c->next = a->head->next;
			a->head->next = c;
		} else {
			c->next = a->head;
			a->head = c;
		}
	}
	c->used += n;
	return c->data + c->used - n;
}

static void *
arena_zalloc(struct mime_arena *a, size_t n)
{
	void *p = arena_alloc(a, n);

	if (p != NULL)
		memset(p, 0, n);
	return p;
}

/* Copy n bytes as a C string; NUL becomes U+FFFD; optional lower-case. */
static char *
arena_str(struct mime_arena *a, const char *s, size_t n, int lower)
{
	size_t i, nul = 0, o = 0;
	char *d;

	for (i = 0; i < n; i++)
		nul += s[i] == '\0';
	if (n > SIZE_MAX / 4)
		return NULL;
	d = arena_alloc(a, n + 2 * nul + 1);
	if (d == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0') {
			memcpy(d + o, "\xef\xbf\xbd", 3);
			o += 3;
			continue;
		}
		if (lower && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c + 32);
		d[o++] = (char)c;
	}
	d[o] = '\0';
	return d;
}

/* ------------------------------------------------------------------ */
/* Header fields, CRLF form, lexical helpers.                         */

static size_t
line_end(const char *p, size_t len, size_t pos)
{
	const char *nl = memchr(p + pos, '\n', len - pos);

	return nl != NULL ? (size_t)(nl - p) + 1 : len;
}

static int
is_blank_line(const char *p, size_t len, size_t pos)
{
	return pos < len && (p[pos] == '\n' ||
	    (p[pos] == '\r' && pos + 1 < len && p[pos + 1] == '\n'));
}

int
mime_header_next(const char *p, size_t len, size_t *pos,
    struct mime_header *h)
{
	size_t s = *pos, first, e, i, v, ve;

	if (s >= len || is_blank_line(p, len, s))
		return 0;
	first = e = line_end(p, len, s);
	while (e < len && (p[e] == ' ' || p[e] == '\t'))
		e = line_end(p, len, e);
	memset(h, 0, sizeof(*h));
	h->line = p + s;
	h->line_len = e - s;
	ve = e;
	if (ve > s && p[ve - 1] == '\n') {
		ve--;
		if (ve > s && p[ve - 1] == '\r')
			ve--;
	}
	for (i = s; i < first && p[i] != ':'; i++)
		;
	if (i < first && i < ve) {
		size_t n = i;

		while (n > s && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		h->name = p + s;
		h->name_len = n - s;
		v = i + 1;
		while (v < ve && (p[v] == ' ' || p[v] == '\t'))
			v++;
	} else {
		h->name = p + s;
		h->name_len = 0;
		v = s;
	}
	h->value = p + v;
	h->value_len = ve - v;
	*pos = e;
	return 1;
}

int
mime_header_is(const struct mime_header *h, const char *name)
{
	size_t n = strlen(name);

	return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

int
mime_header_unfold(const char *v, size_t n, struct buf *out)
{
	size_t i, run = 0;

	for (i = 0; i <= n; i++) {
		if (i < n && v[i] != '\r' && v[i] != '\n' && v[i] != '\0')
			continue;
		if (buf_append(out, v + run, i - run) < 0)
			return -1;
		if (i < n && v[i] == '\0' && buf_append(out, "\xef\xbf\xbd", 3) < 0)
			return -1;
		run = i + 1;
	}
	return 0;
}

void
mime_crlf_measure(const char *msg, size_t off, size_t len, size_t *size,
    size_t *lines)
{
	const char *q = msg + off, *end = msg + off + len, *nl;
	size_t bare = 0, lf = 0;

	while (q < end && (nl = memchr(q, '\n', (size_t)(end - q))) != NULL) {
		lf++;
		if (nl == msg || nl[-1] != '\r')
			bare++;
		q = nl + 1;
	}
	*size = len + bare;
	*lines = lf;
}

/* Append n octets of output, honouring the skip/max window. */
static int
emit(struct buf *out, const char *s, size_t n, size_t *skip, size_t *max)
{
	if (*skip >= n) {
		*skip -= n;
		return 0;
	}
	s += *skip;
	n -= *skip;
	*skip = 0;
	if (n > *max)
		n = *max;
	*max -= n;
	return buf_append(out, s, n);
}

int
mime_crlf_append(struct buf *out, const char *msg, size_t off, size_t len,
    size_t skip, size_t max)
{
	const char *q = msg + off, *end = msg + off + len, *nl;

	while (q < end && max > 0) {
		nl = memchr(q, '\n', (size_t)(end - q));
		if (nl == NULL)
			return emit(out, q, (size_t)(end - q), &skip, &max);
		if (nl != msg && nl[-1] == '\r') {
			if (emit(out, q, (size_t)(nl - q) + 1, &skip, &max) < 0)
				return -1;
		} else if (emit(out, q, (size_t)(nl - q), &skip, &max) < 0 ||
		    emit(out, "\r\n", 2, &skip, &max) < 0)
			return -1;
		q = nl + 1;
	}
	return 0;
}

void
mime_lex_cfws(const char *p, size_t len, size_t *pos, struct buf *comment,
    int *had_comment)
{
	size_t i = *pos;
	unsigned int depth;

	while (i < len) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n') {
			i++;
			continue;
		}
		if (p[i] != '(')
			break;
		if (comment != NULL)
			buf_reset(comment);
		if (had_comment != NULL)
			*had_comment = 1;
		depth = 1;
		for (i++; i < len; i++) {
			char c = p[i];

			if (c == '\\' && i + 1 < len)
				c = p[++i];
			else if (c == '(')
				depth++;
			else if (c == ')' && --depth == 0) {
				i++;
				break;
			}
			if (comment != NULL)
				(void)buf_putc(comment, c);
		}
	}
	*pos = i;
}

int
mime_lex_quoted(const char *p, size_t len, size_t *pos, struct buf *out)
{
	size_t i = *pos + 1, run = i;
	int r = 0;

	for (; i < len; i++) {
		if (p[i] == '"') {
			*pos = i + 1;
			if (out != NULL && buf_append(out, p + run, i - run) < 0)
				r = -1;
			return r;
		}
		if (p[i] == '\\' && i + 1 < len) {
			if (out != NULL && buf_append(out, p + run, i - run) < 0)
				r = -1;
			run = ++i;
		}
	}
	*pos = len;
	if (out != NULL)
		(void)buf_append(out, p + run, len - run);
	return -1;
}

/* ------------------------------------------------------------------ */
/* Content-* field values.                                            */

static int
is_tspecial(unsigned char c)
{
	return c != '\0' && strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static int
is_token(unsigned char c)
{
	return c > 0x20 && c != 0x7f && !is_tspecial(c);
}

static size_t
lex_token(const char *p, size_t len, size_t i)
{
	while (i < len && is_token((unsigned char)p[i]))
		i++;
	return i;
}

/* Skip to the next ';' outside quoted strings and comments. */
static size_t
skip_to_semicolon(const char *p, size_t len, size_t i)
{
	while (i < len && p[i] != ';') {
		if (p[i] == '"') {
			(void)mime_lex_quoted(p, len, &i, NULL);
		} else if (p[i] == '(') {
			mime_lex_cfws(p, len, &i, NULL, NULL);
		} else
			i++;
	}
	return i;
}

struct raw_param {
	const char *name;	/* lower-cased, arena */
	const char *value;	/* arena */
	int section;		/* RFC 2231: -1 none/single */
	int ext;		/* value is charset'lang'%XX */
	size_t base_len;	/* name up to the '*' (0: regular) */
};

struct pctx {
	const char *p;
	size_t len;
	struct mime_message *m;
	struct mime_arena *a;
	int nomem;
	struct buf tmp, val, name;
};

static const char *
pstr(struct pctx *c, const char *s, size_t n, int lower)
{
	const char *r = arena_str(c->a, s, n, lower);

	if (r == NULL)
		c->nomem = 1;
	return r;
}

/* Classify an RFC 2231 name: base*  base*N  base*N*. */
static void
classify_2231(struct raw_param *r)
{
	const char *star = strchr(r->name, '*');
	const char *q;
	int n = 0, digits = 0;

	r->section = -1;
	r->ext = 0;
	r->base_len = 0;
	if (star == NULL || star == r->name)
		return;
	if (star[1] == '\0') {
		r->ext = 1;
		r->base_len = (size_t)(star - r->name);
		return;
	}
	for (q = star + 1; *q >= '0' && *q <= '9'; q++) {
		if (++digits > 4)
			return;
		n = n * 10 + (*q - '0');
	}
	if (digits == 0 || (digits > 1 && star[1] == '0'))
		return;
	if (*q == '*' && q[1] == '\0')
		r->ext = 1;
	else if (*q != '\0')
		return;
	r->section = n;
	r->base_len = (size_t)(star - r->name);
}

static int
is_attr_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !is_tspecial(c) && c != '*' &&
	    c != '\'' && c != '%';
}

/*
 * Join RFC 2231 sections into out[] after the regular parameters:
 * regular ones first in order, then each extended or continued name in
 * the order it first appeared (Dovecot does the same split).
 */
static unsigned int
join_2231(struct pctx *c, struct raw_param *raw, unsigned int nraw,
    struct mime_param *out)
{
	unsigned int i, j, n = 0, k, idx[MIME_MAX_PARAMS], nidx, next;
	int seen[MIME_MAX_PARAMS] = { 0 };
	static const char hex[] = "0123456789ABCDEF";

	for (i = 0; i < nraw; i++) {
		classify_2231(&raw[i]);
		if (raw[i].base_len == 0) {
			out[n].name = raw[i].name;
			out[n++].value = raw[i].value;
			seen[i] = 1;
		}
	}
	for (i = 0; i < nraw; i++) {
		if (seen[i])
			continue;
		nidx = 0;
		for (j = i; j < nraw; j++) {
			if (seen[j] || raw[j].base_len != raw[i].base_len ||
			    memcmp(raw[j].name, raw[i].name, raw[i].base_len) != 0)
				continue;
			seen[j] = 1;
			/* a single name* stands alone; sections join */
			if ((raw[i].section < 0) != (raw[j].section < 0))
				continue;
			/* insertion sort by section: at most 64 entries */
			for (k = nidx; k > 0 &&
			    raw[idx[k - 1]].section > raw[j].section; k--)
				idx[k] = idx[k - 1];
			idx[k] = j;
			nidx++;
			if (raw[i].section < 0)
				break;
		}
		buf_reset(&c->val);
		next = 0;
		for (k = 0; k < nidx; k++) {
			const struct raw_param *r = &raw[idx[k]];
			const unsigned char *v = (const unsigned char *)r->value;

			if (r->section >= 0 && (unsigned int)r->section != next) {
				if ((unsigned int)r->section < next)
					continue;	/* duplicate section */
				break;			/* gap */
			}
			next++;
			if (r->ext || !raw[idx[0]].ext) {
				(void)buf_puts(&c->val, r->value);
				continue;
			}
			/* plain section of an extended value: keep decodable */
			for (; *v != '\0'; v++) {
				if (is_attr_char(*v))
					(void)buf_putc(&c->val, (char)*v);
				else {
					(void)buf_putc(&c->val, '%');
					(void)buf_putc(&c->val, hex[*v >> 4]);
					(void)buf_putc(&c->val, hex[*v & 15]);
				}
			}
		}
		if (next == 0 && raw[i].section >= 0)
			continue;	/* no section 0 */
		buf_reset(&c->name);
		(void)buf_append(&c->name, raw[i].name, raw[i].base_len);
		if (raw[idx[0]].ext)
			(void)buf_putc(&c->name, '*');
		out[n].name = pstr(c, buf_cstr(&c->name), c->name.len, 0);
		out[n++].value = pstr(c, buf_cstr(&c->val), c->val.len, 0);
	}
	return n;
}

/* Parse ";" name "=" value ... from v[i..n) into an arena array. */
static void
parse_params(struct pctx *c, const char *v, size_t n, size_t i,
    struct mime_param **out, unsigned int *nout)
{
	struct raw_param raw[MIME_MAX_PARAMS];
	struct mime_param tmp[MIME_MAX_PARAMS];
	unsigned int nraw = 0, k;
	size_t ns, ne, vs;
	struct buf q;

	buf_init(&q, BUF_UNLIMITED);
	*out = NULL;
	*nout = 0;
	while (i < n && nraw < MIME_MAX_PARAMS) {
		mime_lex_cfws(v, n, &i, NULL, NULL);
		if (i >= n)
			break;
		if (v[i] != ';') {
			i = skip_to_semicolon(v, n, i);
			continue;
		}
		i++;
		mime_lex_cfws(v, n, &i, NULL, NULL);
		ns = i;
		ne = i = lex_token(v, n, i);
		mime_lex_cfws(v, n, &i, NULL, NULL);
		if (ne == ns || i >= n || v[i] != '=')
			continue;
		i++;
		mime_lex_cfws(v, n, &i, NULL, NULL);
		buf_reset(&q);
		if (i < n && v[i] == '"') {
			(void)mime_lex_quoted(v, n, &i, &q);
			raw[nraw].value = pstr(c, buf_cstr(&q), q.len, 0);
		} else {
			/* lenient: anything up to ; blank " ( or a control */
			for (vs = i; i < n && (unsigned char)v[i] > 0x20 &&
			    v[i] != 0x7f && v[i] != ';' && v[i] != '"' &&
			    v[i] != '('; i++)
				;
			if (i == vs)
				continue;
			raw[nraw].value = pstr(c, v + vs, i - vs, 0);
		}
		raw[nraw].name = pstr(c, v + ns, ne - ns, 1);
		if (raw[nraw].name == NULL || raw[nraw].value == NULL)
			break;
		nraw++;
	}
	buf_free(&q);
	if (nraw == 0)
		return;
	k = join_2231(c, raw, nraw, tmp);
	if (k == 0)
		return;
	*out = arena_alloc(c->a, k * sizeof(**out));
	if (*out == NULL) {
		c->nomem = 1;
		return;
	}
	memcpy(*out, tmp, k * sizeof(**out));
	*nout = k;
}

/* type "/" subtype params; 0, or -1 when invalid. */
static int
parse_content_type(struct pctx *c, struct mime_part *part, const char *v,
    size_t n)
{
	size_t i = 0, ts, te, ss, se;

	mime_lex_cfws(v, n, &i, NULL, NULL);
	ts = i;
	te = i = lex_token(v, n, i);
	mime_lex_cfws(v, n, &i, NULL, NULL);
	if (te == ts || i >= n || v[i] != '/')
		return -1;
	i++;
	mime_lex_cfws(v, n, &i, NULL, NULL);
	ss = i;
	se = i = lex_token(v, n, i);
	if (se == ss)
		return -1;
	part->type = pstr(c, v + ts, te - ts, 1);
	part->subtype = pstr(c, v + ss, se - ss, 1);
	parse_params(c, v, n, i, &part->params, &part->nparams);
	return 0;
}

/* A single token (Content-Transfer-Encoding, disposition type). */
static const char *
parse_token_value(struct pctx *c, const char *v, size_t n, size_t *end)
{
	size_t i = 0, s;

	mime_lex_cfws(v, n, &i, NULL, NULL);
	s = i;
	i = lex_token(v, n, i);
	*end = i;
	return i > s ? pstr(c, v + s, i - s, 1) : NULL;
}

static void
parse_languages(struct pctx *c, struct mime_part *part, const char *v,
    size_t n)
{
	const char *tags[MIME_MAX_LANGUAGES];
	unsigned int k = 0;
	size_t i = 0, s;

	while (i < n && k < MIME_MAX_LANGUAGES) {
		mime_lex_cfws(v, n, &i, NULL, NULL);
		if (i < n && v[i] == ',') {
			i++;
			continue;
		}
		for (s = i; i < n && (unsigned char)v[i] > 0x20 &&
		    v[i] != ',' && v[i] != '(' && v[i] != ';'; i++)
			;
		if (i == s) {
			if (i < n)
				i++;	/* stray ';' or control */
			continue;
		}
		if ((tags[k] = pstr(c, v + s, i - s, 0)) != NULL)
			k++;
	}
	if (k == 0)
		return;
	part->languages = arena_alloc(c->a, k * sizeof(*tags));
	if (part->languages == NULL) {
		c->nomem = 1;
		return;
	}
	memcpy(part->languages, tags, k * sizeof(*tags));
	part->nlanguages = k;
}

/* The unfolded value as sent (trailing blanks kept, like Dovecot). */
static const char *
raw_value(struct pctx *c, const char *v, size_t n)
{
	buf_reset(&c->tmp);
	if (mime_header_unfold(v, n, &c->tmp) < 0) {
		c->nomem = 1;
		return NULL;
	}
	return pstr(c, buf_cstr(&c->tmp), c->tmp.len, 0);
}

/* ------------------------------------------------------------------ */
/* Structure.                                                         */

struct mpos {
	size_t off;	/* offset in the stored bytes */
	size_t lf;	/* LFs before off */
	size_t bare;	/* LFs without CR before off */
};

/* A part while it is being parsed; pub must stay first. */
struct ipart {
	struct mime_part pub;
	struct ipart *last_child;
	struct mpos start, bodypos;
	const char *boundary;
	size_t blen;
};

struct bnd {
	const char *s;
	size_t len;
	struct ipart *owner;
};

struct parser {
	struct pctx c;
	struct bnd stack[MIME_MAX_DEPTH];
	unsigned int nb;
	struct ipart *cur;
	int in_header;
	int no_boundaries;	/* MIME_MAX_PARTS reached */
};

enum field_id {
	F_TYPE, F_CTE, F_ID, F_DESC, F_DISP, F_LANG, F_LOC, F_MD5, F_MIMEVER,
	F_COUNT
};

static const char *const field_names[F_COUNT] = {
	"Content-Type", "Content-Transfer-Encoding", "Content-ID",
	"Content-Description", "Content-Disposition", "Content-Language",
	"Content-Location", "Content-MD5", "MIME-Version",
};

static struct ipart *
new_part(struct parser *ps, struct ipart *parent, const struct mpos *at)
{
	struct ipart *ip = arena_zalloc(ps->c.a, sizeof(*ip));

	if (ip == NULL) {
		ps->c.nomem = 1;
		return NULL;
	}
	ip->start = *at;
	ip->pub.type = "text";
	ip->pub.subtype = "plain";
	ps->c.m->nparts++;
	if (parent != NULL) {
		ip->pub.parent = &parent->pub;
		ip->pub.depth = parent->pub.depth + 1;
		if (parent->last_child != NULL)
			parent->last_child->pub.next = &ip->pub;
		else
			parent->pub.children = &ip->pub;
		parent->last_child = ip;
		parent->pub.nchildren++;
	}
	return ip;
}

static void
set_default_type(struct mime_part *part)
{
	const struct mime_part *pa = part->parent;

	part->flags |= MIME_PART_DEFAULT_TYPE;
	part->params = NULL;
	part->nparams = 0;
	if (pa != NULL && (pa->flags & MIME_PART_MULTIPART) &&
	    strcmp(pa->subtype, "digest") == 0) {
		part->type = "message";
		part->subtype = "rfc822";
	} else {
		part->type = "text";
		part->subtype = "plain";
	}
}

/* Read the Content-* fields of a finished header into the part. */
static void
parse_fields(struct parser *ps, struct ipart *ip)
{
	struct pctx *c = &ps->c;
	struct mime_part *part = &ip->pub;
	const char *val[F_COUNT] = { NULL };
	size_t vlen[F_COUNT] = { 0 }, pos = ip->start.off, end;
	struct mime_header h;
	unsigned int f;
	const char *v;
	size_t n;

	while (mime_header_next(c->p, ip->bodypos.off, &pos, &h) > 0) {
		if (h.name_len < 10)
			continue;	/* shorter than any name below */
		for (f = 0; f < F_COUNT; f++) {
			if (val[f] == NULL && mime_header_is(&h, field_names[f])) {
				val[f] = h.value;
				vlen[f] = h.value_len;
				break;
			}
		}
	}
	if (val[F_TYPE] != NULL || val[F_MIMEVER] != NULL ||
	    (part->parent != NULL && (part->parent->flags & MIME_PART_MULTIPART)))
		part->flags |= MIME_PART_IS_MIME;
	if (!(part->flags & MIME_PART_IS_MIME)) {
		set_default_type(part);
		return;
	}
	buf_reset(&c->tmp);
	if (val[F_TYPE] == NULL ||
	    mime_header_unfold(val[F_TYPE], vlen[F_TYPE], &c->tmp) < 0 ||
	    parse_content_type(c, part, buf_cstr(&c->tmp), c->tmp.len) < 0 ||
	    part->type == NULL || part->subtype == NULL)
		set_default_type(part);
	for (f = F_CTE; f < F_MIMEVER; f++) {
		if (val[f] == NULL)
			continue;
		buf_reset(&c->tmp);
		if (mime_header_unfold(val[f], vlen[f], &c->tmp) < 0) {
			c->nomem = 1;
			return;
		}
		v = buf_cstr(&c->tmp);
		n = c->tmp.len;
		switch (f) {
		case F_CTE:
			part->encoding = parse_token_value(c, v, n, &end);
			break;
		case F_DISP:
			part->disposition = parse_token_value(c, v, n, &end);
			if (part->disposition != NULL)
				parse_params(c, v, n, end, &part->disp_params,
				    &part->ndisp_params);
			break;
		case F_LANG:
			parse_languages(c, part, v, n);
			break;
		case F_ID:
			part->id = raw_value(c, val[f], vlen[f]);
			break;
		case F_DESC:
			part->description = raw_value(c, val[f], vlen[f]);
			break;
		case F_LOC:
			part->location = raw_value(c, val[f], vlen[f]);
			break;
		case F_MD5:
			part->md5 = raw_value(c, val[f], vlen[f]);
			break;
		}
	}
}

static void
make_opaque(struct parser *ps, struct mime_part *part, unsigned int why)
{
	part->flags |= MIME_PART_OPAQUE;
	part->flags &= ~(unsigned int)(MIME_PART_TEXT | MIME_PART_MESSAGE |
	    MIME_PART_MULTIPART | MIME_PART_GLOBAL);
	part->type = "application";
	part->subtype = "octet-stream";
	ps->c.m->flags |= why;
}

/*
 * The header of ps->cur ends at at (the body starts there).  Decide what
 * the body is.  closing: the part ends right here (a boundary or EOF cut
 * its header), so a multipart gets no boundary pushed.
 */
static void
header_done(struct parser *ps, const struct mpos *at, int closing)
{
	struct ipart *ip = ps->cur, *child;
	struct mime_part *part = &ip->pub;
	const char *b;
	int container;

	ip->bodypos = *at;
	parse_fields(ps, ip);
	ps->in_header = 0;
	if (strcmp(part->type, "text") == 0)
		part->flags |= MIME_PART_TEXT;
	if (strcmp(part->type, "multipart") == 0) {
		b = mime_param_get(part->params, part->nparams, "boundary");
		if (b == NULL || b[0] == '\0' || strlen(b) > MIME_MAX_BOUNDARY) {
			set_default_type(part);
			part->flags |= MIME_PART_TEXT;
			return;
		}
		part->flags |= MIME_PART_MULTIPART;
		ip->boundary = b;
		ip->blen = strlen(b);
	} else if (strcmp(part->type, "message") == 0 &&
	    (strcmp(part->subtype, "rfc822") == 0 ||
	    strcmp(part->subtype, "global") == 0)) {
		part->flags |= MIME_PART_MESSAGE;
		if (part->subtype[0] == 'g')
			part->flags |= MIME_PART_GLOBAL;
	}
	container = part->flags & (MIME_PART_MULTIPART | MIME_PART_MESSAGE);
	if (!container)
		return;
	if (part->depth + 1 >= MIME_MAX_DEPTH) {
		make_opaque(ps, part, MIME_MSG_DEPTH_LIMIT);
		return;
	}
	if (part->flags & MIME_PART_MULTIPART) {
		if (!closing && !ps->no_boundaries) {
			ps->stack[ps->nb].s = ip->boundary;
			ps->stack[ps->nb].len = ip->blen;
			ps->stack[ps->nb].owner = ip;
			ps->nb++;
		}
		return;
	}
	if (ps->c.m->nparts >= MIME_MAX_PARTS) {
		make_opaque(ps, part, MIME_MSG_PARTS_LIMIT);
		return;
	}
	child = new_part(ps, ip, at);
	if (child == NULL)
		return;
	ps->cur = child;
	ps->in_header = 1;
}

static void
span_set(struct mime_span *s, const struct mpos *a, const struct mpos *b)
{
	s->off = a->off;
	s->len = b->off - a->off;
	s->size = s->len + (b->bare - a->bare);
	s->lines = b->lf - a->lf;
}

/* ps->cur (header done) ends at at; step to its parent. */
static void
finish_part(struct parser *ps, const struct mpos *at)
{
	struct ipart *ip = ps->cur;
	struct mime_part *part = &ip->pub;
	const struct mpos *end = at->off < ip->bodypos.off ? &ip->bodypos : at;

	span_set(&part->hdr, &ip->start, &ip->bodypos);
	span_set(&part->body, &ip->bodypos, end);
	if ((part->flags & MIME_PART_MULTIPART) && part->nchildren == 0) {
		/* no body part at all: show the body as text */
		part->flags &= ~(unsigned int)MIME_PART_MULTIPART;
		set_default_type(part);
		part->type = "text";
		part->subtype = "plain";
		part->flags |= MIME_PART_TEXT;
	}
	ps->cur = (struct ipart *)part->parent;
}

/* Close every open part below owner (NULL: all of them) at at. */
static void
close_to(struct parser *ps, const struct ipart *owner, const struct mpos *at)
{
	struct mpos cut;

	while (ps->cur != NULL && ps->cur != owner && !ps->c.nomem) {
		if (ps->in_header) {
			cut = at->off < ps->cur->start.off ? ps->cur->start : *at;
			header_done(ps, &cut, 1);
			continue;	/* may have opened an encapsulated message */
		}
		finish_part(ps, at);
	}
}

/* Index of the longest enclosing boundary matching the line, or -1. */
static int
match_boundary(const struct parser *ps, const char *line, size_t n)
{
	int best = -1, k;

	if (n < 2 || line[0] != '-' || line[1] != '-')
		return -1;
	for (k = (int)ps->nb - 1; k >= 0; k--) {
		const struct bnd *b = &ps->stack[k];

		/* only a longer match can win: skip the compare otherwise */
		if (b->len <= n - 2 && (best < 0 || ps->stack[best].len < b->len) &&
		    memcmp(line + 2, b->s, b->len) == 0)
			best = k;
	}
	return best;
}

static void
on_boundary(struct parser *ps, int k, const char *line, size_t n,
    const struct mpos *at, const struct mpos *next)
{
	const struct bnd *b = &ps->stack[k];
	struct ipart *owner = b->owner, *child;
	const char *p = ps->c.p;
	const struct mpos *first;
	struct mpos end = *at;
	int is_close = n >= b->len + 4 && line[b->len + 2] == '-' &&
	    line[b->len + 3] == '-';

	if (!is_close && ps->c.m->nparts >= MIME_MAX_PARTS) {
		/* no more parts: the rest stays in the part that is open */
		ps->c.m->flags |= MIME_MSG_PARTS_LIMIT;
		ps->no_boundaries = 1;
		ps->nb = 0;
		return;
	}
	/* the line break before the boundary line belongs to it, unless it
	 * ended the open part's header (the boundary is its first line) */
	if (end.off > 0 && p[end.off - 1] == '\n') {
		end.off--;
		end.lf--;
		if (end.off > 0 && p[end.off - 1] == '\r')
			end.off--;
		else
			end.bare--;
	}
	first = ps->in_header ? &ps->cur->start : &ps->cur->bodypos;
	if (end.off < first->off)
		end = *first;
	close_to(ps, owner, &end);
	if (ps->c.nomem)
		return;
	ps->nb = (unsigned int)k + (is_close ? 0 : 1);
	ps->cur = owner;
	ps->in_header = 0;
	if (is_close)
		return;		/* epilogue follows */
	child = new_part(ps, owner, next);
	if (child != NULL) {
		ps->cur = child;
		ps->in_header = 1;
	}
}

struct mime_message *
mime_parse(const char *p, size_t len)
{
	struct parser ps;
	struct mime_message *m;
	struct mime_arena *a;
	struct mpos pos = { 0, 0, 0 }, next;
	size_t e;
	int k;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	m = arena_zalloc(a, sizeof(*m));
	if (m == NULL) {
		free(a);
		return NULL;
	}
	m->arena = a;
	memset(&ps, 0, sizeof(ps));
	ps.c.p = p;
	ps.c.len = len;
	ps.c.m = m;
	ps.c.a = a;
	buf_init(&ps.c.tmp, BUF_UNLIMITED);
	buf_init(&ps.c.val, BUF_UNLIMITED);
	buf_init(&ps.c.name, BUF_UNLIMITED);
	ps.cur = new_part(&ps, NULL, &pos);
	m->root = ps.cur != NULL ? &ps.cur->pub : NULL;
	ps.in_header = 1;

	while (pos.off < len && ps.cur != NULL && !ps.c.nomem) {
		e = line_end(p, len, pos.off);
		next.off = e;
		next.lf = pos.lf;
		next.bare = pos.bare;
		if (p[e - 1] == '\n') {
			next.lf++;
			if (e < 2 || p[e - 2] != '\r')
				next.bare++;
		}
		if (ps.nb > 0 &&
		    (k = match_boundary(&ps, p + pos.off, e - pos.off)) >= 0)
			on_boundary(&ps, k, p + pos.off, e - pos.off, &pos, &next);
		else if (ps.in_header && is_blank_line(p, len, pos.off))
			header_done(&ps, &next, 0);
		pos = next;
	}
	if (!ps.c.nomem)
		close_to(&ps, NULL, &pos);
	buf_free(&ps.c.tmp);
	buf_free(&ps.c.val);
	buf_free(&ps.c.name);
	if (ps.c.nomem || m->root == NULL) {
		mime_free(m);
		return NULL;
	}
	m->size = m->root->hdr.size + m->root->body.size;
	return m;
}

void
mime_free(struct mime_message *m)
{
	struct mime_arena *a;
	struct arena_chunk *c, *n;

	if (m == NULL)
		return;
	a = m->arena;
	for (c = a->head; c != NULL; c = n) {
		n = c->next;
		free(c);
	}
	free(a);
}

const char *
mime_param_get(const struct mime_param *v, unsigned int n, const char *name)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return v[i].value;
	return NULL;
}

const struct mime_part *
mime_part_message(const struct mime_part *part)
{
	return (part->flags & MIME_PART_MESSAGE) ? part->children : NULL;
}
