/*
 * addr.h - mail address parsing and normalisation (RFC 5321 paths).
 *
 * Pure functions over (pointer, length); no I/O.  The normal form used as
 * a lookup key everywhere is "local@domain" with the domain lower-cased
 * and the local part as sent (compare it case-insensitively).  Quoted
 * local parts are unquoted: "a b"@x becomes a b@x, so that routing tricks
 * such as "user@other"@ours show up as an '@' in the local part.
 */
#ifndef BUZON_ADDR_H
#define BUZON_ADDR_H

#include <stddef.h>

#define ADDR_LOCAL_MAX 64	/* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255	/* RFC 5321 4.5.3.1.2 */
#define ADDR_MAX (ADDR_LOCAL_MAX + 1 + ADDR_DOMAIN_MAX + 1)

struct mailaddr {
	char local[ADDR_LOCAL_MAX + 1];
	char domain[ADDR_DOMAIN_MAX + 1];	/* lower-cased */
};

enum addr_flags {
	ADDR_ALLOW_EMPTY = 1,	/* "<>" is valid (reverse-path) */
	ADDR_UTF8 = 2,		/* SMTPUTF8: UTF-8 allowed in local and domain */
};

/*
 * Parse an SMTP path "<...>" (source route "@a,@b:" is accepted and
 * dropped, RFC 5321 4.1.2/C).  *consumed receives the bytes used, so the
 * caller can parse ESMTP parameters after it.  An empty path gives
 * local = domain = "".  Returns 0, or -1 with *why a short reason.
 */
int addr_parse_path(const char *p, size_t len, int flags,
    struct mailaddr *out, size_t *consumed, const char **why);

/*
 * Parse a bare address "local@domain" as typed by an admin.  Stricter
 * than the SMTP parser: no quotes, no routes.  Returns 0 or -1 with *why.
 */
int addr_parse_plain(const char *s, struct mailaddr *out, const char **why);

/* Domain syntax check: LDH labels, dots, 1..255 octets.  1 valid, 0 not. */
int addr_domain_valid(const char *d, size_t len, int utf8);

/* Write "local@domain" (or "" for the null path).  -1 if it does not fit. */
int addr_format(const struct mailaddr *a, char *out, size_t outsz);

/*
 * 1 if the local part carries sender-specified routing that we never
 * honour for relay decisions: '@', '%' or '!' (RFC 5321 3.6, Postfix
 * allow_untrusted_routing=no).
 */
int addr_has_routing(const struct mailaddr *a);

/* 1 if c is atext (RFC 5322 3.2.3): may stand in an atom unquoted. */
int addr_is_atext(unsigned char c);

/*
 * 1 if the n bytes at p are a Dot-string (RFC 5321 4.1.2): atoms of atext
 * joined by single dots, with utf8 also bytes >= 0x80 (RFC 6531).  A local
 * part that is not one must be quoted wherever it is written.
 */
int addr_is_dot_string(const char *p, size_t n, int utf8);

/* 1 if any byte is >= 0x80. */
int addr_is_8bit(const char *s);

/* ASCII-lower-case a string in place. */
void addr_lower(char *s);

#endif
