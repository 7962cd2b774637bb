/*
 * mutf7.h - modified UTF-7 (RFC 3501 section 5.1.3) <-> UTF-8, strict.
 *
 * IMAP4rev1 clients name mailboxes in modified UTF-7, and Maildir++
 * folders are stored under that name on disk; IMAP4rev2 / UTF8=ACCEPT
 * clients use UTF-8.  These are pure functions from bytes to bytes: no
 * I/O, no allocation other than the caller's struct buf, and they never
 * assume NUL termination of their input.
 *
 * Only the one canonical encoding of a name is accepted, so decoding and
 * re-encoding always gives back the input byte for byte.  Rejected:
 * in mUTF-7: raw bytes outside 0x20-0x7e, "&" not followed by "-" or a
 * modified-base64 run, a run not closed by "-", base64 for a character
 * that can represent itself (printable US-ASCII, including "&"), a run
 * directly after another run ("-&", a null shift), leftover bits that are
 * not zero or a partial extra base64 character, unpaired UTF-16
 * surrogates, U+0000;  in UTF-8: truncated or overlong sequences,
 * surrogates (U+D800-U+DFFF), code points above U+10FFFF, U+0000.
 *
 * Must never: write past the caller's buffer, accept two spellings of one
 * name, or produce a NUL byte.
 */
#ifndef BUZON_MUTF7_H
#define BUZON_MUTF7_H

#include <stddef.h>

#include "../common/buf.h"

#define MUTF7_OK	0
#define MUTF7_INVALID	(-1)	/* the input is not valid (see above) */
#define MUTF7_NOSPACE	(-2)	/* out would exceed its maximum */

/*
 * Append the UTF-8 form of the modified UTF-7 name (p, len) to out.
 * On any error out is left as it was.
 */
int mutf7_to_utf8(const char *p, size_t len, struct buf *out);

/*
 * Append the modified UTF-7 form of the UTF-8 name (p, len) to out.
 * On any error out is left as it was.
 */
int utf8_to_mutf7(const char *p, size_t len, struct buf *out);

/* 1 when (p, len) is valid, canonical modified UTF-7, else 0. */
int mutf7_valid(const char *p, size_t len);

/* 1 when (p, len) is strict UTF-8 without U+0000, else 0. */
int utf8_valid(const char *p, size_t len);

/*
 * Decode one UTF-8 character at p (at most len bytes).  Returns its
 * length (1-4) and stores the code point in *cp, or 0 when the bytes are
 * not strict UTF-8 (or len is 0).  U+0000 is returned as a character of
 * length 1; callers that forbid it check *cp.
 */
size_t utf8_decode_char(const char *p, size_t len, unsigned long *cp);

#endif
