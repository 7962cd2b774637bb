/*
 * imap_bodystructure.h - the IMAP BODY and BODYSTRUCTURE of a parsed
 * message (RFC 3501 7.4.2, RFC 9051 7.5.2).
 *
 * Pure: from a mime.h tree and the stored bytes to response text; no I/O.
 * Sizes are CRLF octets, line counts are mime.h's.  Types, subtypes,
 * parameter names, encodings and disposition types are written
 * lower-cased (mime.h normalises them); values as they were sent, IMAP
 * quoted or as literals (imap_envelope.h).  Text parts without a charset
 * parameter get ("charset" "us-ascii"), like Dovecot.  BODYSTRUCTURE
 * always carries all extension fields (md5, disposition, language,
 * location; for multipart: params, disposition, language, location).
 *
 * message/global is written as an encapsulated message (envelope, body,
 * lines) only with IMAP_BS_GLOBAL, which an IMAP4rev2 or UTF8=ACCEPT
 * session asks for; IMAP4rev1's grammar has only message/rfc822 there,
 * so by default it is a basic body.
 */
#ifndef BUZON_IMAP_BODYSTRUCTURE_H
#define BUZON_IMAP_BODYSTRUCTURE_H

#include <stddef.h>

#include "../common/buf.h"
#include "mime.h"

enum imap_bs_flags {
	IMAP_BS_EXTENDED = 1 << 0,	/* BODYSTRUCTURE; without it BODY */
	IMAP_BS_GLOBAL = 1 << 1,	/* message/global encapsulates */
};

/*
 * Append the structure of part (usually m->root) of the message whose
 * stored bytes are msg[0..len).  Returns 0, or -1 when out is full.
 */
int imap_bodystructure_write(const char *msg, size_t len,
    const struct mime_part *part, unsigned int flags, struct buf *out);

#endif
