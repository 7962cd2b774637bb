/*
 * mime_decode.h - decoding for SEARCH (and IMAP BINARY): RFC 2047
 * encoded words, Content-Transfer-Encoding, charsets to UTF-8 (iconv),
 * RFC 2231 parameter values, and a case-insensitive UTF-8 substring
 * search.
 *
 * Pure functions over (p, len) appending to a struct buf; no I/O, never
 * NUL-terminated input assumed.  Every function returns 0, or -1 when
 * out is full (or, where stated, when a charset is unknown).  Broken
 * input is never an error: what cannot be decoded is kept as it was
 * (encoded words) or replaced by U+FFFD (bytes invalid in their charset).
 */
#ifndef BUZON_MIME_DECODE_H
#define BUZON_MIME_DECODE_H

#include <stddef.h>

#include "../common/buf.h"
#include "mime.h"

/*
 * RFC 2047: decode =?charset[*lang]?Q|B?text?= words in an unfolded
 * header value into UTF-8.  Whitespace between two encoded words is
 * dropped; adjacent words in the same charset are joined before charset
 * conversion (so a character split across words survives).  Words are
 * found anywhere, not only between blanks.  A word that is malformed or
 * names a charset iconv does not know is kept as it was.  Text outside
 * words is copied; invalid UTF-8 in it becomes U+FFFD.
 */
int mime_decode_header(const char *p, size_t len, struct buf *out);

enum mime_cte {
	MIME_CTE_IDENTITY,	/* 7bit, 8bit, binary or absent */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN,	/* anything else (x-uuencode, typos...) */
};

/*
 * The encoding named by a Content-Transfer-Encoding token (any case).
 * SEARCH reads an UNKNOWN body as it is; BINARY refuses it (RFC 3516
 * UNKNOWN-CTE).
 */
enum mime_cte mime_cte_from_name(const char *encoding);

/* Base64: characters outside the alphabet are skipped, '=' ends a quantum
 * (concatenated blocks decode), a trailing partial quantum is dropped. */
int mime_decode_base64(const char *p, size_t len, struct buf *out);

/* Quoted-printable: =XX, soft line breaks removed, trailing blanks on a
 * line removed, hard line breaks written as CRLF, bad '=' kept. */
int mime_decode_qp(const char *p, size_t len, struct buf *out);

/*
 * The decoded body of a part (stored bytes msg): base64 or QP decoded,
 * identity bodies (and UNKNOWN ones) in CRLF form.  For a leaf part with
 * a known encoding this is what IMAP BINARY[section] returns (see
 * mime_binary_fetch() in mime_section.h).
 */
int mime_decode_body(const char *msg, const struct mime_part *part,
    struct buf *out);

/*
 * Convert from charset to UTF-8.  "us-ascii" (and "ascii") is read as
 * UTF-8, its superset, since mislabelled mail is common.  Invalid or
 * incomplete sequences become U+FFFD.  Returns -1 with out unchanged
 * when iconv does not know the charset, or when out is full.
 */
int mime_charset_to_utf8(const char *charset, const char *p, size_t len,
    struct buf *out);

/*
 * The text of a text/ part as UTF-8, for SEARCH BODY/TEXT: transfer
 * decoded, then converted from its charset parameter (default us-ascii;
 * an unknown charset is read as UTF-8).  Non-text parts append nothing.
 */
int mime_decode_text(const char *msg, const struct mime_part *part,
    struct buf *out);

/*
 * RFC 2231 extended value "charset'lang'%XX..." (as mime.h keeps it for
 * a "name*" parameter) to UTF-8.  A value without the two quotes is
 * taken as percent-encoded UTF-8.
 */
int mime_decode_2231(const char *value, size_t len, struct buf *out);

/*
 * 1 if needle occurs in haystack, ignoring case, else 0 (-1: no memory).
 * Both are UTF-8.  Folding is simple one-to-one lower-casing of ASCII,
 * Latin-1 (U+00C0-U+00DE), Latin Extended-A (U+0100-U+017F), Greek
 * (U+0391-U+03AB) and Cyrillic (U+0400-U+042F); it keeps every
 * character's UTF-8 length, so no other normalisation (no ß/ss, no
 * Turkish dotless i, no accents stripped) is done.  An empty needle
 * always matches.
 */
int mime_search_utf8(const char *haystack, size_t hlen, const char *needle,
    size_t nlen);

/* Append the folded form used by mime_search_utf8() (for callers that
 * search one text for several keys). */
int mime_fold_utf8(const char *p, size_t len, struct buf *out);
/* The same fold in place (it never changes a length). */
void mime_fold_utf8_inplace(char *p, size_t len);

#endif
