/*
 * imap_envelope.h - the IMAP ENVELOPE of a message (RFC 3501 7.4.2,
 * RFC 9051 7.5.2) and the IMAP string quoting shared with BODYSTRUCTURE.
 *
 * Pure functions from header bytes to response text; no I/O.  Header
 * values are given raw (never RFC 2047-decoded), unfolded (CR and LF
 * removed), with leading blanks skipped and trailing ones kept.
 *
 * Choices, mostly Dovecot's so that clients moving from it see the same
 * envelopes:
 *  - Date, Subject, In-Reply-To, Message-ID: the last such field wins;
 *    address fields that repeat are concatenated;
 *  - Sender and Reply-To default to From when absent or empty;
 *  - an address without a local part or domain gets "MISSING_MAILBOX" /
 *    "MISSING_DOMAIN" (a NIL host would mean a group marker);
 *  - a display name that is empty is NIL; an addr-spec with a trailing
 *    comment uses the last comment as its name;
 *  - groups are (NIL NIL "name" NIL) ... (NIL NIL NIL NIL);
 *  - the obsolete source route is parsed and dropped: adl is always NIL
 *    (RFC 5322 4.4 says to ignore it);
 *  - unlike Dovecot, empty list elements (",,") are skipped, ';' between
 *    addresses outside a group separates like ',', and after a syntax
 *    error parsing resumes at the next ',' instead of giving up;
 *  - at most IMAP_ENVELOPE_MAX_ADDRS addresses per field are listed.
 */
#ifndef BUZON_IMAP_ENVELOPE_H
#define BUZON_IMAP_ENVELOPE_H

#include <stddef.h>

#include "../common/buf.h"

#define IMAP_ENVELOPE_MAX_ADDRS 10000

/*
 * Append n bytes as an IMAP string: a quoted string, or a literal
 * {n}CRLF... when the bytes hold CR, LF, '"', '\' or 8-bit octets (as
 * Dovecot 2.3 does).  A NUL byte is written as U+FFFD.  0 or -1 (full).
 */
int imap_append_string(struct buf *out, const char *s, size_t n);

/* The same for a C string, or NIL when s is NULL. */
int imap_append_nstring(struct buf *out, const char *s);

/*
 * Append "(date subject from sender reply-to to cc bcc in-reply-to
 * message-id)" for the header block [hdr, hdr+len) (a message header as
 * mime.h's hdr span gives it; parsing stops at the blank line).
 * Returns 0, or -1 when out is full (out is then left partly written).
 */
int imap_envelope_write(const char *hdr, size_t len, struct buf *out);

/*
 * Append the address list of one unfolded field value as the envelope
 * shows it: "((name adl mailbox host)...)" or NIL when it holds no
 * address.  Exposed for tests and for callers that show one field.
 */
int imap_envelope_addresses(const char *v, size_t n, struct buf *out);

#endif
