/*
 * smtp_header.h - what a submission does to the header its user wrote:
 * drop the fields that must not travel (Bcc), note what is missing
 * (Message-ID, Date), and read the one author address of From: so that
 * it can be checked against what the user owns.
 *
 * Pure functions over (pointer, length) of LF-ended header bytes; no I/O,
 * no session state.  They never decide ownership themselves.
 */
#ifndef BUZON_SMTP_HEADER_H
#define BUZON_SMTP_HEADER_H

#include <stddef.h>

#include "../common/addr.h"
#include "../common/buf.h"

struct smtp_header_info {
	int has_message_id;
	int has_date;
	unsigned nfrom;			/* From: fields seen */
	const char *from;		/* value of the first, inside hdr */
	size_t from_len;
	unsigned removed;		/* Bcc/Resent-Bcc fields dropped */
};

/*
 * Copy the header block [hdr, hdr+len) to out without its Bcc and
 * Resent-Bcc fields (continuation lines included); whatever follows the
 * block (the blank line, or nothing) is copied too.  Fills info.
 * Returns 0, or -1 when out is full.
 */
int smtp_header_filter(const char *hdr, size_t len, struct buf *out,
    struct smtp_header_info *info);

enum smtp_from_status {
	SMTP_FROM_OK,
	SMTP_FROM_NONE,		/* no address in it */
	SMTP_FROM_MANY,		/* more than one mailbox */
	SMTP_FROM_GROUP,	/* group syntax "name: ...;" */
	SMTP_FROM_SYNTAX,	/* anything else we cannot read with certainty */
};

/*
 * The author address of a From: value (RFC 5322 3.4 mailbox, folding,
 * comments, display names and quoted local parts allowed; no groups, no
 * lists, no source routes, no domain literals).  On SMTP_FROM_OK, out
 * holds the address in addr.h's normal form (quotes removed, domain
 * lower-cased).  Strict on purpose: an address we read differently from
 * the recipient's mail client could let a user pass as someone else.
 */
enum smtp_from_status smtp_header_from_parse(const char *v, size_t len,
    struct mailaddr *out);

#endif
