/*
 * addr.c - RFC 5321 path parsing (see addr.h).  Never trusts the input
 * to be NUL-terminated; every copy is bounded by the struct sizes.
 */
#include "addr.h"
#include "buf.h"

#include <string.h>
#include <strings.h>

int
addr_is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL && c != '\0';
}

int
addr_is_dot_string(const char *p, size_t n, int utf8)
{
	size_t i;

	if (n == 0 || p[0] == '.' || p[n - 1] == '.')
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '.' ? p[i - 1] == '.' :
		    !addr_is_atext(c) && !(utf8 && c >= 0x80))
			return 0;
	}
	return 1;
}

void
addr_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

int
addr_is_8bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return 1;
	return 0;
}

int
addr_domain_valid(const char *d, size_t len, int utf8)
{
	size_t i, lab = 0;

	if (len == 0 || len > ADDR_DOMAIN_MAX)
		return 0;
	/* address literal [1.2.3.4] / [IPv6:...] (RFC 5321 4.1.3) */
	if (d[0] == '[') {
		size_t start = 1;

		if (len < 3 || d[len - 1] != ']')
			return 0;
		if (len > 6 && strncasecmp(d + 1, "IPv6:", 5) == 0)
			start = 6;
		for (i = start; i < len - 1; i++) {
			unsigned char c = (unsigned char)d[i];

			if (!((c >= '0' && c <= '9') || c == '.' ||
			    (start == 6 && (c == ':' || (c >= 'a' && c <= 'f') ||
			    (c >= 'A' && c <= 'F')))))
				return 0;
		}
		return i > start;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.') {
			if (lab == 0 || d[i - 1] == '-')
				return 0;
			lab = 0;
			continue;
		}
		if (c == '-') {
			if (lab == 0)
				return 0;
		} else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || (utf8 && c >= 0x80)))
			return 0;
		if (++lab > 63)
			return 0;
	}
	if (lab == 0 || d[len - 1] == '-')
		return 0;
	return 1;
}

/* Parse a local part (dot-string or quoted-string) into out. */
static int
parse_local(const char *p, size_t len, int utf8, char *out, size_t *used,
    const char **why)
{
	size_t i = 0, o = 0;

	if (len == 0) {
		*why = "empty local part";
		return -1;
	}
	if (p[0] == '"') {
		i = 1;
		for (;;) {
			unsigned char c;

			if (i >= len) {
				*why = "unterminated quoted local part";
				return -1;
			}
			c = (unsigned char)p[i];
			if (c == '"') {
				i++;
				if (o == 0) {
					*why = "empty local part";
					return -1;
				}
				break;
			}
			if (c == '\\') {
				if (++i >= len) {
					*why = "bad quoted pair";
					return -1;
				}
				c = (unsigned char)p[i];
			}
			if (c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
				*why = "invalid character in local part";
				return -1;
			}
			if (o >= ADDR_LOCAL_MAX) {
				*why = "local part longer than 64 octets";
				return -1;
			}
			out[o++] = (char)c;
			i++;
		}
	} else {
		while (i < len) {
			unsigned char c = (unsigned char)p[i];

			if (c == '.') {
				if (o == 0 || out[o - 1] == '.') {
					*why = "empty label in local part";
					return -1;
				}
			} else if (!addr_is_atext(c) && !(utf8 && c >= 0x80)) {
				break;
			}
			if (o >= ADDR_LOCAL_MAX) {
				*why = "local part longer than 64 octets";
				return -1;
			}
			out[o++] = (char)c;
			i++;
		}
		if (o == 0 || out[o - 1] == '.') {
			*why = "invalid local part";
			return -1;
		}
	}
	out[o] = '\0';
	*used = i;
	return 0;
}

int
addr_parse_path(const char *p, size_t len, int flags, struct mailaddr *out,
    size_t *consumed, const char **why)
{
	int utf8 = (flags & ADDR_UTF8) != 0;
	size_t i = 0, used, dstart, close;

	out->local[0] = out->domain[0] = '\0';
	if (len == 0 || p[0] != '<') {
		*why = "address must be enclosed in <>";
		return -1;
	}
	i = 1;
	if (i < len && p[i] == '>') {
		if (!(flags & ADDR_ALLOW_EMPTY)) {
			*why = "empty address not allowed here";
			return -1;
		}
		*consumed = 2;
		return 0;
	}
	/* source route: @a,@b: -- skipped (RFC 5321 appendix C) */
	if (i < len && p[i] == '@') {
		const char *colon = memchr(p + i, ':', len - i);
		const char *gt = memchr(p + i, '>', len - i);

		const char *hop;

		if (colon == NULL || (gt != NULL && gt < colon)) {
			*why = "bad source route";
			return -1;
		}
		/* "@dom1,@dom2:" -- every hop a valid domain */
		for (hop = p + i; hop < colon;) {
			const char *comma = memchr(hop, ',', (size_t)(colon - hop));
			const char *he = comma ? comma : colon;

			if (*hop != '@' || !addr_domain_valid(hop + 1,
			    (size_t)(he - hop - 1), utf8)) {
				*why = "bad source route";
				return -1;
			}
			hop = comma ? comma + 1 : colon;
		}
		i = (size_t)(colon - p) + 1;
	}
	if (parse_local(p + i, len - i, utf8, out->local, &used, why) < 0)
		return -1;
	i += used;
	/*
	 * A bare '@' inside the local part (user@other@ours) is not valid
	 * syntax, but parse it the way a lax MTA would, so that the relay
	 * check sees the routing attempt and denies it.
	 */
	while (i < len && p[i] == '@') {
		const char *gt = memchr(p + i, '>', len - i);
		const char *next = gt ? memchr(p + i + 1, '@', (size_t)(gt - p - i - 1)) : NULL;
		size_t ol = strlen(out->local), seg;

		if (next == NULL)
			break;
		seg = (size_t)(next - (p + i));
		if (ol + seg > ADDR_LOCAL_MAX) {
			*why = "local part longer than 64 octets";
			return -1;
		}
		if (seg < 2) {
			*why = "empty label in local part";
			return -1;
		}
		for (size_t j = 1; j < seg; j++) {
			unsigned char c = (unsigned char)p[i + j];

			if (!addr_is_atext(c) && c != '.' &&
			    !(utf8 && c >= 0x80)) {
				*why = "invalid character in local part";
				return -1;
			}
		}
		memcpy(out->local + ol, p + i, seg);
		out->local[ol + seg] = '\0';
		i += seg;
	}
	if (i >= len || p[i] != '@') {
		*why = "address must be local@domain";
		return -1;
	}
	i++;
	dstart = i;
	while (i < len && p[i] != '>')
		i++;
	if (i >= len) {
		*why = "missing closing >";
		return -1;
	}
	close = i;
	if (!addr_domain_valid(p + dstart, close - dstart, utf8)) {
		*why = "invalid domain";
		return -1;
	}
	memcpy(out->domain, p + dstart, close - dstart);
	out->domain[close - dstart] = '\0';
	addr_lower(out->domain);
	*consumed = close + 1;
	return 0;
}

int
addr_parse_plain(const char *s, struct mailaddr *out, const char **why)
{
	const char *at = strrchr(s, '@');
	size_t ll, used;

	out->local[0] = out->domain[0] = '\0';
	if (at == NULL || at == s) {
		*why = "expected an address like user@example.com";
		return -1;
	}
	ll = (size_t)(at - s);
	if (s[0] == '"' || parse_local(s, ll, 0, out->local, &used, why) < 0 ||
	    used != ll) {
		*why = "invalid local part (use letters, digits and . _ - +)";
		return -1;
	}
	if (!addr_domain_valid(at + 1, strlen(at + 1), 0) || at[1] == '[') {
		*why = "invalid domain name";
		return -1;
	}
	if (strlcpy_checked(out->domain, at + 1, sizeof(out->domain)) < 0) {
		*why = "domain too long";
		return -1;
	}
	addr_lower(out->domain);
	return 0;
}

int
addr_format(const struct mailaddr *a, char *out, size_t outsz)
{
	if (a->local[0] == '\0' && a->domain[0] == '\0') {
		if (outsz == 0)
			return -1;
		out[0] = '\0';
		return 0;
	}
	return snprintf_checked(out, outsz, "%s@%s", a->local, a->domain);
}

int
addr_has_routing(const struct mailaddr *a)
{
	return strpbrk(a->local, "@%!") != NULL;
}
