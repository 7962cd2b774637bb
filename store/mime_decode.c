/*
 * mime_decode.c - RFC 2047 words, transfer encodings, charsets, RFC 2231
 * values and case-insensitive search.  See mime_decode.h.
 *
 * Must never read past len, write invalid UTF-8 where UTF-8 is promised,
 * or leak an iconv descriptor; every loop consumes at least one byte.
 */
#include "mime_decode.h"

#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#define REPLACEMENT "\xef\xbf\xbd"	/* U+FFFD */
#define CHARSET_MAX 64

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The byte of the hex pair after p[i] ("=XX", "%XX") within len, or -1. */
static int
hexpair(const char *p, size_t len, size_t i)
{
	int hi, lo;

	if (i + 2 >= len)
		return -1;
	hi = hexval((unsigned char)p[i + 1]);
	lo = hexval((unsigned char)p[i + 2]);
	return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

/* Length of the valid UTF-8 sequence at p, or 0 if it is invalid. */
static size_t
utf8_len(const unsigned char *p, size_t len)
{
	unsigned char c = p[0];
	size_t n, i;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* Bytes from u[i] that are ASCII, eight at a time: the common case. */
static size_t
skip_ascii(const unsigned char *u, size_t i, size_t len)
{
	uint64_t w;

	while (i + 8 <= len) {
		memcpy(&w, u + i, 8);
		if (w & 0x8080808080808080ULL)
			break;
		i += 8;
	}
	while (i < len && u[i] < 0x80)
		i++;
	return i;
}

/* Copy UTF-8, each invalid byte replaced by U+FFFD. */
static int
append_clean_utf8(struct buf *out, const char *p, size_t len)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t i = 0, run = 0, n;

	while ((i = skip_ascii(u, i, len)) < len) {
		n = utf8_len(u + i, len - i);
		if (n > 0) {
			i += n;
			continue;
		}
		if (buf_append(out, p + run, i - run) < 0 ||
		    buf_append(out, REPLACEMENT, 3) < 0)
			return -1;
		run = ++i;
	}
	return buf_append(out, p + run, len - run);
}

/* ------------------------------------------------------------------ */
/* Charsets.                                                          */

/* Lower-case charset name without an RFC 2231 "*lang"; 0 or -1. */
static int
charset_name(const char *cs, size_t n, char *dst)
{
	size_t i;

	for (i = 0; i < n && cs[i] != '*'; i++) {
		if (i >= CHARSET_MAX - 1 || cs[i] == '\0')
			return -1;
		dst[i] = (cs[i] >= 'A' && cs[i] <= 'Z') ? (char)(cs[i] + 32) :
		    cs[i];
	}
	dst[i] = '\0';
	return 0;
}

static int
is_utf8_name(const char *cs)
{
	return cs[0] == '\0' || strcmp(cs, "utf-8") == 0 ||
	    strcmp(cs, "utf8") == 0 || strcmp(cs, "us-ascii") == 0 ||
	    strcmp(cs, "ascii") == 0;
}

/* iconv descriptor to UTF-8, or (iconv_t)-1.  Latin-1 is read as
 * windows-1252, its superset in practice (as browsers do). */
static iconv_t
open_charset(const char *cs)
{
	if (strcmp(cs, "iso-8859-1") == 0 || strcmp(cs, "latin1") == 0 ||
	    strcmp(cs, "iso_8859-1") == 0)
		cs = "WINDOWS-1252";
	return iconv_open("UTF-8", cs);
}

static int
convert(iconv_t cd, const char *p, size_t len, struct buf *out)
{
	char chunk[4096], *in = (char *)p, *o;
	size_t inleft = len, oleft, r;
	int flushing = 0;

	for (;;) {
		o = chunk;
		oleft = sizeof(chunk);
		if (flushing)
			r = iconv(cd, NULL, NULL, &o, &oleft);
		else
			r = iconv(cd, &in, &inleft, &o, &oleft);
		if (buf_append(out, chunk, sizeof(chunk) - oleft) < 0)
			return -1;
		if (r != (size_t)-1) {
			if (flushing)
				return 0;
			flushing = 1;	/* shift back to the initial state */
			continue;
		}
		if (errno == E2BIG)
			continue;
		if (buf_append(out, REPLACEMENT, 3) < 0)
			return -1;
		if (errno != EILSEQ || inleft == 0) {
			flushing = 1;	/* EINVAL: incomplete at the end */
			inleft = 0;
			continue;
		}
		in++;
		inleft--;
	}
}

static int
charset_to_utf8(const char *cs, size_t cslen, const char *p, size_t len,
    struct buf *out)
{
	char name[CHARSET_MAX];
	size_t mark = out->len;
	iconv_t cd;
	int r;

	if (charset_name(cs, cslen, name) < 0)
		return -2;
	if (is_utf8_name(name)) {
		r = append_clean_utf8(out, p, len);
	} else {
		cd = open_charset(name);
		if (cd == (iconv_t)-1)
			return -2;
		r = convert(cd, p, len, out);
		iconv_close(cd);
	}
	if (r < 0) {
		out->len = mark;
		if (out->data != NULL)
			out->data[mark] = '\0';
	}
	return r;
}

int
mime_charset_to_utf8(const char *charset, const char *p, size_t len,
    struct buf *out)
{
	return charset_to_utf8(charset, strlen(charset), p, len, out) < 0 ?
	    -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Transfer encodings.                                                */

enum mime_cte
mime_cte_from_name(const char *encoding)
{
	if (encoding == NULL || strcasecmp(encoding, "7bit") == 0 ||
	    strcasecmp(encoding, "8bit") == 0 ||
	    strcasecmp(encoding, "binary") == 0)
		return MIME_CTE_IDENTITY;
	if (strcasecmp(encoding, "base64") == 0)
		return MIME_CTE_BASE64;
	if (strcasecmp(encoding, "quoted-printable") == 0)
		return MIME_CTE_QP;
	return MIME_CTE_UNKNOWN;
}

static int
b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
mime_decode_base64(const char *p, size_t len, struct buf *out)
{
	unsigned char chunk[3 * 1024];
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0, v;

	for (i = 0; i < len; i++) {
		if (p[i] == '=') {
			acc = 0;
			bits = 0;	/* end of a quantum */
			continue;
		}
		if ((v = b64val((unsigned char)p[i])) < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			chunk[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
			if (o == sizeof(chunk)) {
				if (buf_append(out, chunk, o) < 0)
					return -1;
				o = 0;
			}
		}
	}
	return buf_append(out, chunk, o);
}

int
mime_decode_qp(const char *p, size_t len, struct buf *out)
{
	size_t i = 0, e, end, j;
	int v, soft;

	while (i < len) {
		const char *nl = memchr(p + i, '\n', len - i);

		e = nl != NULL ? (size_t)(nl - p) : len;	/* line end */
		end = e;
		if (end > i && p[end - 1] == '\r')
			end--;
		while (end > i && (p[end - 1] == ' ' || p[end - 1] == '\t'))
			end--;		/* transport padding */
		soft = 0;
		for (j = i; j < end; j++) {
			if (p[j] != '=') {
				if (buf_putc(out, p[j]) < 0)
					return -1;
			} else if (j + 1 == end) {
				soft = 1;	/* soft line break */
			} else if ((v = hexpair(p, end, j)) >= 0) {
				if (buf_putc(out, (char)v) < 0)
					return -1;
				j += 2;
			} else if (buf_putc(out, '=') < 0)
				return -1;
		}
		if (nl == NULL)
			break;
		if (!soft && buf_append(out, "\r\n", 2) < 0)
			return -1;
		i = e + 1;
	}
	return 0;
}

int
mime_decode_body(const char *msg, const struct mime_part *part,
    struct buf *out)
{
	const char *b = msg + part->body.off;

	switch (mime_cte_from_name(part->encoding)) {
	case MIME_CTE_BASE64:
		return mime_decode_base64(b, part->body.len, out);
	case MIME_CTE_QP:
		return mime_decode_qp(b, part->body.len, out);
	default:
		return mime_crlf_append(out, msg, part->body.off,
		    part->body.len, 0, SIZE_MAX);
	}
}

int
mime_decode_text(const char *msg, const struct mime_part *part,
    struct buf *out)
{
	const char *cs;
	struct buf raw;
	int r;

	if (!(part->flags & MIME_PART_TEXT))
		return 0;
	buf_init(&raw, out->max);
	r = mime_decode_body(msg, part, &raw);
	if (r == 0) {
		cs = mime_param_get(part->params, part->nparams, "charset");
		if (cs == NULL)
			cs = "us-ascii";
		r = charset_to_utf8(cs, strlen(cs), buf_cstr(&raw), raw.len, out);
		if (r == -2)	/* unknown charset: read it as UTF-8 */
			r = append_clean_utf8(out, buf_cstr(&raw), raw.len);
	}
	buf_free(&raw);
	return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* RFC 2047 and RFC 2231.                                             */

struct eword {
	const char *cs;		/* charset as written */
	size_t cslen;
	char enc;		/* 'Q' or 'B' */
	const char *text;
	size_t textlen;
	size_t end;		/* offset after "?=" */
};

/* An encoded word at p[i] ("=?"), or 0. */
static int
parse_eword(const char *p, size_t len, size_t i, struct eword *w)
{
	size_t j;

	if (i + 1 >= len || p[i] != '=' || p[i + 1] != '?')
		return 0;
	w->cs = p + i + 2;
	for (j = i + 2; j < len && p[j] != '?'; j++)
		if ((unsigned char)p[j] <= ' ' || p[j] == '=')
			return 0;
	if (j >= len || j == i + 2 || j - (i + 2) >= CHARSET_MAX)
		return 0;
	w->cslen = j - (i + 2);
	if (j + 2 >= len || p[j + 2] != '?')
		return 0;
	w->enc = (char)(p[j + 1] & ~0x20);
	if (w->enc != 'Q' && w->enc != 'B')
		return 0;
	w->text = p + j + 3;
	for (j += 3; j + 1 < len && !(p[j] == '?' && p[j + 1] == '='); j++)
		if ((unsigned char)p[j] <= ' ')
			return 0;
	if (j + 1 >= len)
		return 0;
	w->textlen = (size_t)(p + j - w->text);
	w->end = j + 2;
	return 1;
}

static int
decode_eword_text(const struct eword *w, struct buf *out)
{
	size_t i;
	int v;

	if (w->enc == 'B')
		return mime_decode_base64(w->text, w->textlen, out);
	for (i = 0; i < w->textlen; i++) {
		unsigned char c = (unsigned char)w->text[i];

		if (c == '_')
			c = ' ';
		else if (c == '=' && (v = hexpair(w->text, w->textlen, i)) >= 0) {
			c = (unsigned char)v;
			i += 2;
		}
		if (buf_putc(out, (char)c) < 0)
			return -1;
	}
	return 0;
}

/* 1 if iconv can read the charset. */
static int
charset_known(const char *cs, size_t n)
{
	char name[CHARSET_MAX];
	iconv_t cd;

	if (charset_name(cs, n, name) < 0)
		return 0;
	if (is_utf8_name(name))
		return 1;
	cd = open_charset(name);
	if (cd == (iconv_t)-1)
		return 0;
	iconv_close(cd);
	return 1;
}

static int
all_blank(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

int
mime_decode_header(const char *p, size_t len, struct buf *out)
{
	struct buf pend;	/* decoded bytes of adjacent words */
	const char *pcs = NULL;	/* their charset */
	size_t pcslen = 0, i = 0, text = 0, last_end = SIZE_MAX;
	const char *okcs = NULL;	/* last charset found usable */
	size_t okcslen = 0;
	struct eword w;
	int r = 0;

	buf_init(&pend, out->max);
	while (i < len && r == 0) {
		const char *q = memchr(p + i, '=', len - i);

		if (q == NULL)
			break;
		i = (size_t)(q - p);
		if (!parse_eword(p, len, i, &w)) {
			i++;
			continue;
		}
		if (okcs == NULL || w.cslen != okcslen ||
		    strncasecmp(w.cs, okcs, okcslen) != 0) {
			if (!charset_known(w.cs, w.cslen)) {
				i++;
				continue;
			}
			okcs = w.cs;
			okcslen = w.cslen;
		}
		if (last_end != text || !all_blank(p + text, i - text) ||
		    pcs == NULL || w.cslen != pcslen ||
		    strncasecmp(w.cs, pcs, pcslen) != 0) {
			/* not a continuation of the pending words: flush */
			if (pcs != NULL && charset_to_utf8(pcs, pcslen,
			    buf_cstr(&pend), pend.len, out) < 0)
				r = -1;
			buf_reset(&pend);
			pcs = NULL;
			if (r == 0 && (last_end != text ||
			    !all_blank(p + text, i - text)) &&
			    append_clean_utf8(out, p + text, i - text) < 0)
				r = -1;
		}
		if (r == 0 && decode_eword_text(&w, &pend) < 0)
			r = -1;
		pcs = w.cs;
		pcslen = w.cslen;
		i = text = last_end = w.end;
	}
	if (r == 0 && pcs != NULL &&
	    charset_to_utf8(pcs, pcslen, buf_cstr(&pend), pend.len, out) < 0)
		r = -1;
	if (r == 0 && append_clean_utf8(out, p + text, len - text) < 0)
		r = -1;
	buf_free(&pend);
	return r;
}

int
mime_decode_2231(const char *value, size_t len, struct buf *out)
{
	const char *q1 = memchr(value, '\'', len), *q2 = NULL, *v = value;
	const char *cs = "utf-8";
	size_t cslen = 5, i;
	struct buf raw;
	int b, r;

	if (q1 != NULL)
		q2 = memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - value));
	if (q2 != NULL) {
		if (q1 > value) {
			cs = value;
			cslen = (size_t)(q1 - value);
		}
		v = q2 + 1;
	}
	len -= (size_t)(v - value);
	buf_init(&raw, out->max);
	for (i = 0, r = 0; i < len && r == 0; i++) {
		if (v[i] == '%' && (b = hexpair(v, len, i)) >= 0) {
			r = buf_putc(&raw, (char)b);
			i += 2;
		} else
			r = buf_putc(&raw, v[i]);
	}
	if (r == 0) {
		r = charset_to_utf8(cs, cslen, buf_cstr(&raw), raw.len, out);
		if (r == -2)
			r = append_clean_utf8(out, buf_cstr(&raw), raw.len);
	}
	buf_free(&raw);
	return r < 0 ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* Case-insensitive search.                                           */

static uint32_t
fold_cp(uint32_t c)
{
	if ((c >= 0xc0 && c <= 0xde && c != 0xd7) ||
	    (c >= 0x391 && c <= 0x3ab && c != 0x3a2) ||
	    (c >= 0x410 && c <= 0x42f))
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40f)
		return c + 0x50;
	if (((c >= 0x100 && c <= 0x12f) || (c >= 0x132 && c <= 0x137) ||
	    (c >= 0x14a && c <= 0x177)) && (c & 1) == 0)
		return c + 1;
	if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) &&
	    (c & 1) == 1)
		return c + 1;
	switch (c) {
	case 0x178: return 0xff;
	case 0x386: return 0x3ac;
	case 0x388: case 0x389: case 0x38a: return c + 0x25;
	case 0x38c: return 0x3cc;
	case 0x38e: case 0x38f: return c + 0x3f;
	case 0x3c2: return 0x3c3;	/* final sigma */
	}
	return c;
}

void
mime_fold_utf8_inplace(char *p, size_t len)
{
	unsigned char *d = (unsigned char *)p;
	size_t i;
	uint32_t cp;

	/* ASCII A-Z first, eight bytes at a time (SEARCH BODY folds every
	 * byte of every text part, and they are mostly ASCII): a byte's
	 * 0x80 bit in ge_a / gt_z says >= 'A' / > 'Z' for its low 7 bits;
	 * bytes with 0x80 set are left alone. */
	for (i = 0; i + 8 <= len; i += 8) {
		uint64_t w, low, ge_a, gt_z, upper;

		memcpy(&w, d + i, 8);
		low = w & 0x7f7f7f7f7f7f7f7fULL;
		ge_a = low + 0x3f3f3f3f3f3f3f3fULL;	/* 0x80 - 'A' */
		gt_z = low + 0x2525252525252525ULL;	/* 0x7f - 'Z' */
		upper = ~w & (ge_a ^ gt_z) & 0x8080808080808080ULL;
		w |= upper >> 2;
		memcpy(d + i, &w, 8);
	}
	for (; i < len; i++)
		if (d[i] >= 'A' && d[i] <= 'Z')
			d[i] = (unsigned char)(d[i] + 32);
	i = 0;
	while ((i = skip_ascii(d, i, len)) < len) {
		if (d[i] >= 0xc2 && d[i] <= 0xdf && utf8_len(d + i, len - i) == 2) {
			cp = ((uint32_t)(d[i] & 0x1f) << 6) | (d[i + 1] & 0x3f);
			cp = fold_cp(cp);
			d[i] = (unsigned char)(0xc0 | (cp >> 6));
			d[i + 1] = (unsigned char)(0x80 | (cp & 0x3f));
			i += 2;
			continue;
		}
		i++;
	}
}

int
mime_fold_utf8(const char *p, size_t len, struct buf *out)
{
	if (buf_append(out, p, len) < 0)
		return -1;
	mime_fold_utf8_inplace(out->data + out->len - len, len);
	return 0;
}

int
mime_search_utf8(const char *haystack, size_t hlen, const char *needle,
    size_t nlen)
{
	struct buf h, n;
	int r = -1;

	if (nlen == 0)
		return 1;
	if (nlen > hlen)
		return 0;
	buf_init(&h, BUF_UNLIMITED);
	buf_init(&n, BUF_UNLIMITED);
	if (mime_fold_utf8(haystack, hlen, &h) == 0 &&
	    mime_fold_utf8(needle, nlen, &n) == 0)
		r = memmem(h.data, h.len, n.data, n.len) != NULL;
	buf_free(&h);
	buf_free(&n);
	return r;
}
