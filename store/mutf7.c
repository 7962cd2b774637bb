/*
 * mutf7.c - modified UTF-7 <-> UTF-8 (see mutf7.h).  Pure functions;
 * they never read past len, never write past the buffer's maximum, and
 * never leave a half-converted name in the output.
 */
#include "mutf7.h"

#include <stdint.h>

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

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
	if (c == ',')
		return 63;
	return -1;
}

static int
is_direct(unsigned char c)
{
	return c >= 0x20 && c <= 0x7e;
}

size_t
utf8_decode_char(const char *p, size_t len, unsigned long *cp)
{
	unsigned char c;
	unsigned long v, min;
	size_t need, k;

	if (len == 0)
		return 0;
	c = (unsigned char)p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c < 0xc2)		/* continuation byte, or overlong C0/C1 lead */
		return 0;
	if (c < 0xe0) {
		need = 1;
		min = 0x80;
		v = c & 0x1f;
	} else if (c < 0xf0) {
		need = 2;
		min = 0x800;
		v = c & 0x0f;
	} else if (c < 0xf5) {
		need = 3;
		min = 0x10000;
		v = c & 0x07;
	} else
		return 0;
	if (len < need + 1)
		return 0;
	for (k = 1; k <= need; k++) {
		unsigned char b = (unsigned char)p[k];

		if ((b & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (b & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return need + 1;
}

int
utf8_valid(const char *p, size_t len)
{
	size_t i = 0, n;
	unsigned long cp;

	while (i < len) {
		n = utf8_decode_char(p + i, len - i, &cp);
		if (n == 0 || cp == 0)
			return 0;
		i += n;
	}
	return 1;
}

/* Append the UTF-8 encoding of cp (a valid scalar value). */
static int
put_utf8(struct buf *out, unsigned long cp)
{
	char s[4];
	size_t n;

	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | (cp >> 6));
		s[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | (cp >> 12));
		s[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | (cp >> 18));
		s[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return buf_append(out, s, n);
}

/* Put the buffer back the way it was before a failed conversion. */
static void
restore(struct buf *out, size_t len)
{
	out->len = len;
	if (out->data != NULL)
		out->data[len] = '\0';
}

/*
 * Decode one base64 run starting after "&" at p[*ip]; stops after the
 * closing "-".  out may be NULL (validate only).
 */
static int
decode_run(const char *p, size_t len, size_t *ip, struct buf *out)
{
	size_t i = *ip;
	uint32_t acc = 0;
	unsigned nbits = 0;
	unsigned long high = 0, cp;
	int v;

	while (i < len && p[i] != '-') {
		v = b64val((unsigned char)p[i]);
		if (v < 0)
			return MUTF7_INVALID;
		acc = (acc << 6) | (uint32_t)v;
		nbits += 6;
		i++;
		if (nbits < 16)
			continue;
		nbits -= 16;
		cp = (acc >> nbits) & 0xffff;
		acc &= ((uint32_t)1 << nbits) - 1;
		if (high != 0) {
			if (cp < 0xdc00 || cp > 0xdfff)
				return MUTF7_INVALID;
			cp = 0x10000 + ((high - 0xd800) << 10) + (cp - 0xdc00);
			high = 0;
		} else if (cp >= 0xd800 && cp <= 0xdbff) {
			high = cp;
			continue;
		} else if (cp >= 0xdc00 && cp <= 0xdfff) {
			return MUTF7_INVALID;
		} else if (cp == 0 || (cp < 0x80 && is_direct((unsigned char)cp))) {
			return MUTF7_INVALID;
		}
		if (out != NULL && put_utf8(out, cp) < 0)
			return MUTF7_NOSPACE;
	}
	/* Unterminated, a dangling high surrogate, a whole spare base64
	 * character, or pad bits that are not zero: all non-canonical. */
	if (i >= len || high != 0 || nbits >= 6 || acc != 0)
		return MUTF7_INVALID;
	*ip = i + 1;
	return MUTF7_OK;
}

static int
decode(const char *p, size_t len, struct buf *out)
{
	size_t i = 0;
	int after_run = 0, r;
	unsigned char c;

	while (i < len) {
		c = (unsigned char)p[i];
		if (c == '&') {
			if (i + 1 < len && p[i + 1] == '-') {
				if (out != NULL && buf_putc(out, '&') < 0)
					return MUTF7_NOSPACE;
				i += 2;
				after_run = 0;
				continue;
			}
			if (after_run)		/* "-&": a null shift */
				return MUTF7_INVALID;
			i++;
			if (i >= len)
				return MUTF7_INVALID;
			r = decode_run(p, len, &i, out);
			if (r != MUTF7_OK)
				return r;
			after_run = 1;
			continue;
		}
		if (!is_direct(c))
			return MUTF7_INVALID;
		if (out != NULL && buf_putc(out, (char)c) < 0)
			return MUTF7_NOSPACE;
		after_run = 0;
		i++;
	}
	return MUTF7_OK;
}

int
mutf7_to_utf8(const char *p, size_t len, struct buf *out)
{
	size_t old = out->len;
	int r;

	r = decode(p, len, out);
	if (r != MUTF7_OK)
		restore(out, old);
	return r;
}

int
mutf7_valid(const char *p, size_t len)
{
	return decode(p, len, NULL) == MUTF7_OK;
}

/* Emit the base64 digits for one UTF-16 code unit. */
static int
put_unit(struct buf *out, unsigned long unit, uint32_t *acc, unsigned *nbits)
{
	*acc = (*acc << 16) | (uint32_t)unit;
	*nbits += 16;
	while (*nbits >= 6) {
		*nbits -= 6;
		if (buf_putc(out, b64chars[(*acc >> *nbits) & 0x3f]) < 0)
			return -1;
	}
	*acc &= ((uint32_t)1 << *nbits) - 1;
	return 0;
}

static int
encode(const char *p, size_t len, struct buf *out)
{
	size_t i = 0, n;
	unsigned long cp;
	uint32_t acc;
	unsigned nbits;
	unsigned char c;

	while (i < len) {
		c = (unsigned char)p[i];
		if (is_direct(c)) {
			if (c == '&') {
				if (buf_append(out, "&-", 2) < 0)
					return MUTF7_NOSPACE;
			} else if (buf_putc(out, (char)c) < 0)
				return MUTF7_NOSPACE;
			i++;
			continue;
		}
		if (buf_putc(out, '&') < 0)
			return MUTF7_NOSPACE;
		acc = 0;
		nbits = 0;
		while (i < len && !is_direct((unsigned char)p[i])) {
			n = utf8_decode_char(p + i, len - i, &cp);
			if (n == 0 || cp == 0)
				return MUTF7_INVALID;
			i += n;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				if (put_unit(out, 0xd800 + (cp >> 10), &acc,
				    &nbits) < 0 ||
				    put_unit(out, 0xdc00 + (cp & 0x3ff), &acc,
				    &nbits) < 0)
					return MUTF7_NOSPACE;
			} else if (put_unit(out, cp, &acc, &nbits) < 0)
				return MUTF7_NOSPACE;
		}
		if (nbits > 0 &&
		    buf_putc(out, b64chars[(acc << (6 - nbits)) & 0x3f]) < 0)
			return MUTF7_NOSPACE;
		if (buf_putc(out, '-') < 0)
			return MUTF7_NOSPACE;
	}
	return MUTF7_OK;
}

int
utf8_to_mutf7(const char *p, size_t len, struct buf *out)
{
	size_t old = out->len;
	int r;

	r = encode(p, len, out);
	if (r != MUTF7_OK)
		restore(out, old);
	return r;
}
