/*
 * mime.h - MIME structure of a stored message (RFC 2045/2046/2231).
 *
 * mime_parse() turns a whole message buffer (LF or CRLF line ends, NULs
 * allowed, no trailing newline needed) into a tree of parts.  For every
 * part it records where its header and body are in the stored bytes and
 * what they measure in the CRLF form IMAP clients see, plus the parsed
 * Content-* fields.  It is a pure function over (p, len): no I/O, never
 * reads past len, never assumes NUL termination, never recurses, and
 * runs in time linear in len times the nesting depth (bounded).
 *
 * The tree follows Dovecot's model, which is also RFC 3501's:
 *  - the root part is the message: its header is the message header;
 *  - a multipart part has one child per body part;
 *  - a message/rfc822 part (and message/global) has exactly one child,
 *    the encapsulated message, spanning the whole of the part's body.
 *
 * Broken input never fails; it is given a structure:
 *  - no or unparseable Content-Type: text/plain; charset=us-ascii (RFC
 *    2045 5.2), or message/rfc822 directly inside multipart/digest;
 *  - Content-* fields of a message (root or encapsulated) without
 *    MIME-Version and without Content-Type are ignored (not MIME);
 *  - a multipart that yields no body part (boundary parameter missing
 *    or empty, boundary never found) is reported as text/plain;
 *  - a missing close delimiter ends the part at the end of its parent;
 *  - containers nested deeper than MIME_MAX_DEPTH are opaque leaves
 *    reported as application/octet-stream (as Dovecot does); once
 *    MIME_MAX_PARTS parts exist no boundary is recognised any more, so the
 *    rest of the message stays in the part that was open.
 * Boundary lines match per RFC 2046 5.1.1: "--" boundary at the start of
 * a line, anything may follow; the longest boundary among the enclosing
 * multiparts wins (so "b" and "b-inner" can nest); after a close
 * delimiter that boundary is no longer looked for.  The line break before
 * a boundary line belongs to the boundary (RFC 2046: delimiter := CRLF
 * dash-boundary), also when it follows a close delimiter or ends an
 * encapsulated header that has no blank line; Dovecot keeps it in the
 * enclosing part in those two cases, 2 octets more.  It is not taken
 * when it ended the open part's header: the boundary is then the first
 * line of that part's body.
 *
 * Sizes in CRLF form: every LF not preceded by CR counts as two octets.
 * Line counts are the number of LFs (Dovecot's body-fld-lines: a part's
 * last line, whose line break belongs to the next boundary, is not
 * counted).
 */
#ifndef BUZON_MIME_H
#define BUZON_MIME_H

#include <stddef.h>

#include "../common/buf.h"

#define MIME_MAX_DEPTH 100	/* parts are at depth 0..MIME_MAX_DEPTH-1 */
#define MIME_MAX_PARTS 10000	/* parts in one message, root included */
#define MIME_MAX_BOUNDARY 200	/* longer boundary parameters are invalid */
#define MIME_MAX_PARAMS 64	/* parameters kept per header field */
#define MIME_MAX_LANGUAGES 32	/* Content-Language tags kept */

enum mime_part_flags {
	MIME_PART_MULTIPART = 1 << 0,	/* children are its body parts */
	MIME_PART_MESSAGE = 1 << 1,	/* one child: encapsulated message */
	MIME_PART_TEXT = 1 << 2,	/* type "text": has a line count */
	MIME_PART_GLOBAL = 1 << 3,	/* message/global (with MESSAGE) */
	MIME_PART_DEFAULT_TYPE = 1 << 4, /* Content-Type absent or invalid */
	MIME_PART_OPAQUE = 1 << 5,	/* container not parsed (limits) */
	MIME_PART_IS_MIME = 1 << 6,	/* Content-* fields apply */
};

enum mime_message_flags {
	MIME_MSG_DEPTH_LIMIT = 1 << 0,	/* some container was too deep */
	MIME_MSG_PARTS_LIMIT = 1 << 1,	/* MIME_MAX_PARTS reached */
};

/* A byte range of the stored message and its CRLF-form measures. */
struct mime_span {
	size_t off, len;	/* in the stored bytes */
	size_t size;		/* octets in CRLF form */
	size_t lines;		/* LF count */
};

struct mime_param {
	const char *name;	/* lower-cased; "name*" for an RFC 2231
				   extended value (charset'lang'%XX kept) */
	const char *value;	/* RFC 2231 continuations joined */
};

struct mime_part {
	struct mime_part *parent, *children, *next;
	unsigned int nchildren;
	unsigned int depth;		/* 0 for the message itself */
	unsigned int flags;		/* enum mime_part_flags */

	struct mime_span hdr;		/* header incl. the blank line */
	struct mime_span body;

	/* Parsed fields.  Strings are NUL-terminated; a NUL byte of the
	 * input is stored as U+FFFD.  NULL when the field is absent. */
	const char *type, *subtype;	/* lower-cased, never NULL */
	struct mime_param *params;
	unsigned int nparams;
	const char *id, *description, *md5, *location;
	const char *encoding;		/* lower-cased token, NULL = 7bit */
	const char *disposition;	/* lower-cased token */
	struct mime_param *disp_params;
	unsigned int ndisp_params;
	const char **languages;
	unsigned int nlanguages;
};

struct mime_arena;

struct mime_message {
	struct mime_part *root;
	unsigned int nparts;
	unsigned int flags;		/* enum mime_message_flags */
	size_t size;			/* whole message in CRLF form */
	struct mime_arena *arena;	/* owns the parts and strings */
};

/* Parse.  Returns NULL only when memory runs out. */
struct mime_message *mime_parse(const char *p, size_t len);
void mime_free(struct mime_message *m);

/* Value of a parameter by (lower-case) name, or NULL. */
const char *mime_param_get(const struct mime_param *v, unsigned int n,
    const char *name);

/* The part a message/rfc822 part encapsulates, else NULL. */
const struct mime_part *mime_part_message(const struct mime_part *part);

/*
 * Header fields of a header block.  mime_header_next() reads the field
 * that starts at *pos in [p, p+len) and advances *pos past it (and its
 * continuation lines).  It returns 1 with *h filled, or 0 at the end of
 * the block (the blank line or len).  A line without a colon is a
 * field with name_len 0.  value is what follows the colon, leading
 * blanks skipped, folding line breaks included, the final line break
 * excluded; line is the whole field with its final line break.
 */
struct mime_header {
	const char *name;
	size_t name_len;	/* trailing blanks trimmed */
	const char *value;
	size_t value_len;
	const char *line;
	size_t line_len;
};
int mime_header_next(const char *p, size_t len, size_t *pos,
    struct mime_header *h);

/* 1 if the field's name equals name (ASCII case-insensitive). */
int mime_header_is(const struct mime_header *h, const char *name);

/* Append the value unfolded (CR and LF removed, NUL as U+FFFD).
 * Returns 0 or -1 when out is full. */
int mime_header_unfold(const char *v, size_t n, struct buf *out);

/*
 * CRLF form of the stored bytes [off, off+len) of msg (whose first
 * byte is msg[0]): an LF not preceded by CR (looking at msg[off-1] for
 * the first byte) becomes CRLF.  mime_crlf_measure() gives the size and
 * LF count; mime_crlf_append() appends the converted bytes, skipping the
 * first skip output octets and stopping after max (partial fetches).
 * Returns 0, or -1 when out is full.
 */
void mime_crlf_measure(const char *msg, size_t off, size_t len,
    size_t *size, size_t *lines);
int mime_crlf_append(struct buf *out, const char *msg, size_t off,
    size_t len, size_t skip, size_t max);

/*
 * RFC 822 lexical helpers over an unfolded value, shared with the
 * address parser.  mime_lex_cfws() skips blanks and (nested) comments
 * from *pos; when comment is not NULL it receives the text of the last
 * comment (outer parentheses removed, quoted-pairs unescaped) and
 * *had_comment is set.  mime_lex_quoted() reads the quoted-string at
 * *pos (p[*pos] == '"') into out (NULL: skip it), unescaped, and always
 * moves *pos past it; 0, or -1 when it is unterminated (then everything
 * up to len was read) or out is full.
 */
void mime_lex_cfws(const char *p, size_t len, size_t *pos,
    struct buf *comment, int *had_comment);
int mime_lex_quoted(const char *p, size_t len, size_t *pos, struct buf *out);

#endif
