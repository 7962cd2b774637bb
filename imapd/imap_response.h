/*
 * imap_response.h - building IMAP responses into a struct buf: strings as
 * quoted or literal as their bytes require, NIL, and the capability list
 * each connection state advertises.  Pure: no sockets.
 */
#ifndef BUZON_IMAP_RESPONSE_H
#define BUZON_IMAP_RESPONSE_H

#include <stddef.h>

#include "../common/buf.h"

/*
 * Append s (len bytes) as an IMAP string: a quoted string when it is
 * short 7-bit text without CR, LF or NUL (quotes and backslashes
 * escaped), else a literal {n}\r\n... (8-bit text is allowed in quoted
 * strings only when utf8 is set: RFC 9051 / UTF8=ACCEPT).
 * 0 or -1 (buffer full).
 */
int imap_put_string(struct buf *b, const char *s, size_t len, int utf8);

/* Like imap_put_string, but NIL for a NULL pointer. */
int imap_put_nstring(struct buf *b, const char *s, size_t len, int utf8);

/*
 * An astring: an atom when every byte is an ATOM-CHAR (plus ']'), else a
 * string as above.  Mailbox names in LIST/STATUS responses use this.
 */
int imap_put_astring(struct buf *b, const char *s, size_t len, int utf8);

enum imap_cap_state {
	IMAP_CAP_PLAIN_NO_TLS,	/* port 143 before STARTTLS */
	IMAP_CAP_PREAUTH_TLS,	/* TLS on, not logged in */
	IMAP_CAP_AUTH,		/* logged in */
};

/* The capability list (without "* CAPABILITY ") for a state. */
const char *imap_capabilities(enum imap_cap_state st);

#endif
