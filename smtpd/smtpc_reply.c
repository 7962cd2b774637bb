/*
 * smtpc_reply.c - the SMTP client's reply and EHLO parsers and its DATA
 * encoder (see smtpc_reply.h).  Pure: bytes in, replies or bytes out.  Whatever a server sends
 * is bounded here (line, line count, reply size) before the client keeps
 * any of it, and everything copied into a reply's text is made printable
 * so it can go into logs and bounces as it is.
 */
#include "smtpc_reply.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void
smtpc_rparser_init(struct smtpc_rparser *p)
{
	memset(p, 0, sizeof(*p));
	/* the size limit of a reply bounds the texts kept from it too */
	buf_init(&p->lines, SMTPC_REPLY_BYTES_MAX);
}

void
smtpc_rparser_free(struct smtpc_rparser *p)
{
	buf_free(&p->lines);
}

static void
start_reply(struct smtpc_rparser *p)
{
	p->code = 0;
	p->nlines = 0;
	p->nbytes = 0;
	p->done = 0;
	buf_reset(&p->lines);
}

void
smtpc_rparser_reset(struct smtpc_rparser *p)
{
	start_reply(p);
	p->linelen = 0;
	p->failed = 0;
}

static void
local_reply(struct smtpc_reply *r, const char *enhanced, const char *text)
{
	r->code = 0;
	r->local = 1;
	strlcpy_checked(r->enhanced, enhanced, sizeof(r->enhanced));
	strlcpy_checked(r->text, text, sizeof(r->text));
}

static enum smtpc_feed
fail(struct smtpc_rparser *p, struct smtpc_reply *r, const char *why)
{
	p->failed = 1;
	local_reply(r, "4.5.0", why);
	return SMTPC_FEED_ERROR;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

size_t
smtpc_enhanced_code(const char *text, size_t len, int code, char out[16])
{
	size_t i = 0, part, n;

	out[0] = '\0';
	if (len < 5 || text[0] < '2' || text[0] > '5' || text[0] == '3' ||
	    text[0] - '0' != code / 100 || text[1] != '.')
		return 0;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; i < len && is_digit(text[i]) && n < 4; n++)
			i++;
		if (n == 0 || n > 3)
			return 0;
		if (part == 0) {
			if (i >= len || text[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && text[i] != ' ' && text[i] != '\t')
		return 0;
	/* at most 1 + 1 + 3 + 1 + 3 = 9 characters: fits in 16 */
	memcpy(out, text, i);
	out[i] = '\0';
	return i;
}

/* Append src as printable ASCII; returns -1 once text is full. */
static int
text_append(char *dst, size_t *dlen, size_t dsize, const char *src,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)src[i];

		if (*dlen + 1 >= dsize)
			return -1;
		if (ch == '\t')
			ch = ' ';
		else if (ch < 0x20 || ch > 0x7e)
			ch = '?';
		dst[(*dlen)++] = (char)ch;
	}
	dst[*dlen] = '\0';
	return 0;
}

/* The finished reply: code, enhanced code of the first line, texts. */
static void
make_reply(const struct smtpc_rparser *p, struct smtpc_reply *r)
{
	const char *s = p->lines.data, *end = s + p->lines.len, *nl;
	size_t tl = 0, first = 1;
	int full = 0;

	memset(r, 0, sizeof(*r));
	r->code = p->code;
	snprintf_checked(r->text, sizeof(r->text), "%d", p->code);
	tl = strlen(r->text);
	for (; s < end && !full; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (first)
			smtpc_enhanced_code(s, (size_t)(nl - s), p->code,
			    r->enhanced);
		if (nl > s || !first)
			full = text_append(r->text, &tl, sizeof(r->text),
			    first ? " " : " / ", first ? 1 : 3) < 0 ||
			    text_append(r->text, &tl, sizeof(r->text), s,
			    (size_t)(nl - s)) < 0;
		first = 0;
	}
	if (full)
		memcpy(r->text + sizeof(r->text) - 4, "...", 4);
}

/* One complete line, LF and CR gone: 1 last line, 0 more to come, -1. */
static int
take_line(struct smtpc_rparser *p, const char *l, size_t len,
    struct smtpc_reply *r)
{
	int code, last;

	if (len < 3 || l[0] < '2' || l[0] > '5' || !is_digit(l[1]) ||
	    !is_digit(l[2])) {
		fail(p, r, "malformed reply line (no reply code)");
		return -1;
	}
	if (len > 3 && l[3] != ' ' && l[3] != '-') {
		fail(p, r, "malformed reply line (no space or hyphen after "
		    "the code)");
		return -1;
	}
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (p->nlines > 0 && code != p->code) {
		fail(p, r, "reply code changed within a multiline reply");
		return -1;
	}
	last = len == 3 || l[3] == ' ';
	p->code = code;
	if (++p->nlines > SMTPC_REPLY_LINES_MAX) {
		fail(p, r, "multiline reply has too many lines");
		return -1;
	}
	if ((len > 4 && buf_append(&p->lines, l + 4, len - 4) < 0) ||
	    buf_putc(&p->lines, '\n') < 0) {
		fail(p, r, "multiline reply too long");
		return -1;
	}
	return last;
}

enum smtpc_feed
smtpc_reply_feed(struct smtpc_rparser *p, const char *data, size_t len,
    size_t *used, struct smtpc_reply *r)
{
	size_t i;

	*used = 0;
	if (p->failed)
		return fail(p, r, "reply parser already failed");
	if (p->done)
		start_reply(p);
	for (i = 0; i < len; i++) {
		char ch = data[i];
		size_t ll;
		int last;

		if (ch != '\n') {
			/* SMTPC_LINE_MAX counts the LF still to come */
			if (p->linelen + 1 >= SMTPC_LINE_MAX) {
				*used = i + 1;
				return fail(p, r, "reply line too long");
			}
			p->line[p->linelen++] = ch;
			continue;
		}
		ll = p->linelen;
		p->linelen = 0;
		p->nbytes += ll + 1;
		if (p->nbytes > SMTPC_REPLY_BYTES_MAX) {
			*used = i + 1;
			return fail(p, r, "multiline reply too long");
		}
		if (ll > 0 && p->line[ll - 1] == '\r')
			ll--;
		last = take_line(p, p->line, ll, r);
		if (last != 0) {
			*used = i + 1;
			if (last < 0)
				return SMTPC_FEED_ERROR;
			make_reply(p, r);
			p->done = 1;
			return SMTPC_FEED_DONE;
		}
	}
	*used = len;
	return SMTPC_FEED_MORE;
}

const char *
smtpc_reply_lines(const struct smtpc_rparser *p, size_t *len)
{
	*len = p->lines.len;
	return buf_cstr(&p->lines);
}

/* The EHLO keywords we act on: a table, not a chain of compares. */
static const struct {
	const char *name;
	unsigned flag;
} ehlo_keywords[] = {
	{ "PIPELINING", SMTPC_EXT_PIPELINING },
	{ "SIZE", SMTPC_EXT_SIZE },
	{ "STARTTLS", SMTPC_EXT_STARTTLS },
	{ "AUTH", SMTPC_EXT_AUTH },
	{ "8BITMIME", SMTPC_EXT_8BITMIME },
	{ "SMTPUTF8", SMTPC_EXT_SMTPUTF8 },
	{ "ENHANCEDSTATUSCODES", SMTPC_EXT_ENHANCEDSTATUSCODES },
	{ "CHUNKING", SMTPC_EXT_CHUNKING },
	{ "DSN", SMTPC_EXT_DSN },
};

static const struct {
	const char *name;
	unsigned mech;
} auth_mechs[] = {
	{ "PLAIN", SMTPC_AUTH_PLAIN },
	{ "LOGIN", SMTPC_AUTH_LOGIN },
};

static int
word_is(const char *w, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp(w, name, n) == 0;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* SIZE's parameter: a decimal number; anything else means no limit. */
static unsigned long long
parse_size(const char *p, size_t n)
{
	unsigned long long v = 0;
	size_t i;

	while (n > 0 && is_space(*p)) {
		p++;
		n--;
	}
	while (n > 0 && is_space(p[n - 1]))
		n--;
	if (n == 0 || n > 19)
		return 0;
	for (i = 0; i < n; i++) {
		if (!is_digit(p[i]))
			return 0;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	return v;
}

static unsigned
parse_auth(const char *p, size_t n)
{
	unsigned mechs = 0;
	size_t i = 0, j, k;

	while (i < n) {
		while (i < n && is_space(p[i]))
			i++;
		for (j = i; j < n && !is_space(p[j]); j++)
			;
		for (k = 0; k < sizeof(auth_mechs) / sizeof(auth_mechs[0]);
		    k++)
			if (j > i && word_is(p + i, j - i, auth_mechs[k].name))
				mechs |= auth_mechs[k].mech;
		i = j;
	}
	return mechs;
}

static void
parse_keyword_line(const char *l, size_t n, struct smtpc_ext *ext)
{
	size_t kw, k;
	const char *arg;
	size_t arglen;

	for (kw = 0; kw < n && !is_space(l[kw]) && l[kw] != '='; kw++)
		;
	arg = l + kw + (kw < n ? 1 : 0);
	arglen = kw < n ? n - kw - 1 : 0;
	for (k = 0; k < sizeof(ehlo_keywords) / sizeof(ehlo_keywords[0]);
	    k++) {
		if (!word_is(l, kw, ehlo_keywords[k].name))
			continue;
		ext->flags |= ehlo_keywords[k].flag;
		if (ehlo_keywords[k].flag == SMTPC_EXT_SIZE)
			ext->size = parse_size(arg, arglen);
		else if (ehlo_keywords[k].flag == SMTPC_EXT_AUTH)
			ext->auth |= parse_auth(arg, arglen);
		return;
	}
}

void
smtpc_ehlo_parse(const char *lines, size_t len, struct smtpc_ext *ext)
{
	const char *s = lines, *end = lines + len, *nl;

	memset(ext, 0, sizeof(*ext));
	/* the first line is the server's name and greeting, not a keyword */
	nl = memchr(s, '\n', len);
	if (nl == NULL)
		return;
	for (s = nl + 1; s < end; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (nl == NULL)
			nl = end;
		parse_keyword_line(s, (size_t)(nl - s), ext);
	}
}

void
smtpc_enc_init(struct smtpc_enc *e, int stuff)
{
	e->bol = 1;
	e->cr = 0;
	e->stuff = stuff;
}

size_t
smtpc_enc_bytes(struct smtpc_enc *e, const char *p, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		char ch = p[i];

		if (e->cr) {
			e->cr = 0;
			out[o++] = '\r';
			if (ch == '\n') {
				out[o++] = '\n';
				e->bol = 1;
				continue;
			}
			e->bol = 0;
		}
		if (ch == '\r') {
			e->cr = 1;
			continue;
		}
		if (ch == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			e->bol = 1;
			continue;
		}
		if (e->bol && ch == '.' && e->stuff)
			out[o++] = '.';
		e->bol = 0;
		out[o++] = ch;
	}
	return o;
}

size_t
smtpc_enc_end(struct smtpc_enc *e, char *out)
{
	size_t o = 0;

	/* a CR held at the very end ends the line with it */
	if (e->cr || !e->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	e->cr = 0;
	e->bol = 1;
	return o;
}
