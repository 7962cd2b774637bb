/*
 * mime_section.h - BODY[section]<partial> data (RFC 3501 6.4.5, RFC 9051
 * 6.4.5): which bytes of a stored message a section names, and those
 * bytes in the CRLF form the client gets.
 *
 * Pure: no I/O.  Semantics (part paths resolved as Dovecot does):
 *  - ""            the whole message;
 *  - HEADER, TEXT, HEADER.FIELDS (..), HEADER.FIELDS.NOT (..): of the
 *    message, or after a part number of the message/rfc822 (or global)
 *    part it names; after any other part they are empty;
 *  - N[.N...]      a part's body; in a non-multipart message or part only
 *    1 exists and is that part itself; numbers after a message/rfc822
 *    part go into the encapsulated message ("3.1", "3.2.1");
 *  - N.MIME        the part's MIME header (for a non-multipart message's
 *    part 1, the message header);
 *  - a part that does not exist gives empty data (as Dovecot does).
 * HEADER.FIELDS keeps the matching fields (case-insensitive names, whole
 * folded fields, message order), each ending in CRLF, then the blank line
 * if the header had one (RFC 3501: none when the message has no body
 * and no blank line; Dovecot always adds one).  .NOT keeps the others,
 * lines without a colon included.
 * Partial <origin.count> applies to the CRLF form: data from origin, at
 * most count octets, empty when origin is past the end.
 */
#ifndef BUZON_MIME_SECTION_H
#define BUZON_MIME_SECTION_H

#include <stddef.h>

#include "../common/buf.h"
#include "mime.h"

#define MIME_SECTION_MAX_FIELDS 256	/* names in a HEADER.FIELDS list */
#define MIME_SECTION_MAX_FIELD_LEN 998	/* longest name accepted */

enum mime_section_text {
	MIME_SECTION_BODY,		/* "" or a part number alone */
	MIME_SECTION_HEADER,
	MIME_SECTION_HEADER_FIELDS,
	MIME_SECTION_HEADER_FIELDS_NOT,
	MIME_SECTION_TEXT,
	MIME_SECTION_MIME,
};

struct mime_section {
	unsigned int part[MIME_MAX_DEPTH];	/* 1-based part numbers */
	unsigned int nparts;
	enum mime_section_text text;
	struct buf names;	/* field names, each NUL-terminated */
	unsigned int nnames;
};

/* An empty section (BODY[]); mime_section_free() releases it. */
void mime_section_init(struct mime_section *s);
void mime_section_free(struct mime_section *s);

/*
 * Parse the text between the brackets, e.g. `1.2.HEADER.FIELDS (DATE
 * "X-Y")`.  Field names are atoms or quoted strings (an IMAP parser that
 * met a literal adds it with mime_section_add_field()).  Keywords are
 * case-insensitive.  s must be initialised; returns 0, or -1 with
 * *error_r a short reason.
 */
int mime_section_parse(struct mime_section *s, const char *p, size_t len,
    const char **error_r);

/* Add one HEADER.FIELDS name.  0, or -1 (too many, too long, empty). */
int mime_section_add_field(struct mime_section *s, const char *name,
    size_t len);

/*
 * Where the section's data is.  When filtered is 0 the data is the CRLF
 * form of the stored range [off, off+len) and can be streamed with
 * mime_crlf_append(); when 1 (HEADER.FIELDS[.NOT]) it is built from the
 * header range [off, off+len) and only mime_section_fetch() makes it.
 * size is the CRLF size of the whole section either way.
 */
struct mime_section_data {
	size_t off, len;
	size_t size;
	int filtered;
};

void mime_section_locate(const char *msg, const struct mime_message *m,
    const struct mime_section *s, struct mime_section_data *d);

/*
 * Append the section's data from octet origin, at most count octets
 * (SIZE_MAX: all).  Returns 0, or -1 when out is full.
 */
int mime_section_fetch(const char *msg, const struct mime_message *m,
    const struct mime_section *s, size_t origin, size_t count,
    struct buf *out);

/* The part a path names, or NULL (exposed for BINARY and tests). */
const struct mime_part *mime_section_part(const struct mime_message *m,
    const unsigned int *part, unsigned int nparts);

/*
 * BINARY[part]<origin.count> and BINARY.SIZE[part] (RFC 3516, RFC 9051
 * 6.4.5): a section named by part numbers only, with its
 * Content-Transfer-Encoding removed.
 *  - no part numbers (BINARY[]): the whole message as BODY[] gives it;
 *  - a leaf part: its body, base64 or quoted-printable decoded; 7bit,
 *    8bit, binary or no encoding: the body in CRLF form, as BODY[n];
 *  - a multipart, message/rfc822 or message/global part:
 *    MIME_BINARY_NOT_LEAF (RFC 9051: BINARY is only for leaf parts);
 *  - any other encoding: MIME_BINARY_UNKNOWN_CTE;
 *  - a part that does not exist: empty, as for BODY[n].
 * Partial ranges count decoded octets.
 */
#define MIME_BINARY_NOT_LEAF	(-2)
#define MIME_BINARY_UNKNOWN_CTE	(-3)

/* 0 when BINARY[part] can be answered, else one of the codes above. */
int mime_binary_check(const struct mime_message *m, const unsigned int *part,
    unsigned int nparts);

/*
 * Append the decoded octets [origin, origin+count) (count SIZE_MAX: to
 * the end) to out, unless out is NULL, and set *size_r (may be NULL) to
 * the whole decoded size: BINARY.SIZE, and the data BINARY[] returns.
 * Returns 0, -1 when out is full (or memory runs out), or a code above.
 */
int mime_binary_fetch(const char *msg, const struct mime_message *m,
    const unsigned int *part, unsigned int nparts, size_t origin,
    size_t count, struct buf *out, size_t *size_r);

#endif
