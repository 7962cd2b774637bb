/*
 * imap_parser.h - incremental IMAP command parser (RFC 3501 / RFC 9051
 * section 9 syntax, LITERAL+ / LITERAL- non-synchronizing literals,
 * literal8 for BINARY): bytes in, a tag, a command name and an argument
 * tree out.  Pure: no sockets, no session, no mailbox; the caller feeds
 * whatever bytes it has and sends whatever the result asks for.
 *
 * Must never: read past the bytes it is given, assume NUL termination,
 * use memory beyond the caller's limits, or lose sync with the client -
 * after any result other than NEED_MORE / NEED_CONTINUATION the next
 * byte is the first byte of the next command.
 *
 * Feeding.  imap_parser_feed() eats bytes from the caller's buffer and
 * copies what it keeps, so the caller drops *consumed_r bytes after every
 * call, whatever the result:
 *
 *	for (;;) {
 *		r = imap_parser_feed(p, in->data, in->len, &used);
 *		buf_consume(in, used);
 *		switch (r) {
 *		case IMAP_PARSE_DONE:   run imap_parser_command(p); continue;
 *		case IMAP_PARSE_ERROR:  "TAG BAD <imap_parser_error(p)>"
 *		                        ("* BAD ..." when imap_parser_tag() is
 *		                        NULL); continue;
 *		case IMAP_PARSE_LITERAL_TOO_BIG:  "TAG NO [TOOBIG] ..."; continue;
 *		case IMAP_PARSE_NEED_CONTINUATION: send "+ Ready", then wait;
 *		case IMAP_PARSE_NEED_MORE: wait for input;
 *		}
 *	}
 *
 * DONE, ERROR and LITERAL_TOO_BIG all mean "this command is over".  The
 * parsed command (and the tag, and the error text) stay valid until the
 * next imap_parser_feed(), imap_parser_feed_line() or imap_parser_reset().
 *
 * Literals.  "{n}" CRLF: when n fits the limits the parser returns
 * NEED_CONTINUATION with the CRLF consumed; the caller sends "+ ..." and
 * feeds on (the literal bytes, then the rest of the command).  To refuse
 * it instead (quota, mailbox checks), the caller answers the tag with NO
 * or BAD and calls imap_parser_reset(): a client that sent "{n}" waits
 * for "+" and so has sent nothing after the CRLF.  "{n+}" (LITERAL+) is
 * read without a continuation.  "~{n}" / "~{n+}" are literal8 (flagged).
 * A literal over max_literal, or over what is left of max_literal_total,
 * gives LITERAL_TOO_BIG: for "{n}" at once, the bytes never read (the
 * client is waiting for "+"); for "{n+}" only after its n bytes and the
 * rest of the command line have been read and thrown away.
 *
 * Errors and resynchronisation.  On a syntax error or an exceeded limit
 * the parser remembers the reason and skips the rest of the command
 * without storing it, then returns ERROR with the rest consumed.  "The
 * rest" is up to the LF that ends the command line, except that a line
 * ending in a non-synchronizing literal announcement "{n+}" CRLF (or
 * "~{n+}") continues after its n literal bytes - the client sends those
 * without waiting, so they are skipped and the line continues after them
 * (repeatedly).  A line ending in "{n}" CRLF ends the command: the client
 * waits for a "+" that never comes and reads our BAD instead.  The skip
 * recognises "{n+}" wherever the error happened, even when the error was
 * in the middle of the announcement; a size that overflows 2^63-1 is not
 * a literal.  Bytes skipped cost no memory.
 *
 * Line endings are CRLF or a bare LF; a CR not followed by LF is an error.
 * Empty lines between commands are ignored.  Runs of spaces between
 * arguments and before the line end are accepted.
 *
 * Not handled here: IDLE's "DONE" and AUTHENTICATE's client responses
 * are plain lines - read them with imap_parser_feed_line().
 */
#ifndef BUZON_IMAP_PARSER_H
#define BUZON_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

enum imap_parse_result {
	IMAP_PARSE_DONE,		/* one whole command parsed */
	IMAP_PARSE_NEED_MORE,		/* all input consumed, command unfinished */
	IMAP_PARSE_NEED_CONTINUATION,	/* "{n}" announced: send "+ ..." */
	IMAP_PARSE_ERROR,		/* bad command, fully skipped */
	IMAP_PARSE_LITERAL_TOO_BIG,	/* literal over the limit (see above) */
};

struct imap_parser_limits {
	size_t max_line;	/* bytes of a command outside literal data */
	uint64_t max_literal;	/* one literal */
	uint64_t max_literal_total; /* all literals of one command; 0 = max_literal */
	unsigned max_depth;	/* nesting of lists and [sections] */
	unsigned max_args;	/* arguments in total, at every level */
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_NUMBER,	/* an atom of digits only, <= 2^63-1 */
	IMAP_ARG_QUOTED,	/* unescaped */
	IMAP_ARG_LITERAL,
	IMAP_ARG_NIL,		/* the atom NIL, any case */
	IMAP_ARG_LIST,
};

#define IMAP_ARG_F_LITERAL8	0x01	/* LITERAL sent as ~{n} */
#define IMAP_ARG_F_NONSYNC	0x02	/* LITERAL sent as {n+} */
#define IMAP_ARG_F_NUL		0x04	/* LITERAL contains NUL bytes */
#define IMAP_ARG_F_8BIT		0x08	/* QUOTED / LITERAL has bytes >= 0x80 */
#define IMAP_ARG_F_SECTION	0x10	/* ATOM with a [section] */

/*
 * One argument.  str is never NULL and str[len] is always NUL:
 *   ATOM, NUMBER, NIL: the atom's text as sent (so a mailbox named "2024"
 *     or "nil" is still readable as an astring);
 *   QUOTED: the string without quotes and backslashes;
 *   LITERAL: the literal bytes (may contain NUL: see IMAP_ARG_F_NUL);
 *   LIST: "" - the elements are args[0..count-1].
 * num: the value of a NUMBER.
 *
 * Sections.  An atom containing "[" ("BODY.PEEK[HEADER.FIELDS (From
 * To)]<0.100>", "BINARY[1.2]", "BODY[]", or a mailbox "foo[bar]") is an
 * ATOM with IMAP_ARG_F_SECTION:
 *   str/len      the whole token as sent (a literal inside the brackets
 *                appears as its "{n}" announcement),
 *   name_len     bytes before "[" ("BODY.PEEK"),
 *   args/count   what was inside the brackets, parsed like arguments
 *                (ATOM "HEADER.FIELDS", LIST (ATOM "From", ATOM "To")),
 *   suffix_len   bytes after "]" at the end of str ("<0.100>": see
 *                imap_parse_partial()).
 * Inside brackets "[" is an ordinary atom character; "]" closes the
 * section unless it is inside a list there.  A "[" never closed by "]" is
 * an error, so a mailbox name with an unbalanced "[" must be quoted.
 * Outside sections "]" is an ordinary atom character (ASTRING-CHAR).
 *
 * Atoms accept the RFC's ATOM-CHARs plus "%", "*", "\", "]" (LIST
 * patterns, sequence sets, flags, astrings); never 8-bit bytes, CTLs,
 * "(", ")", "{" or DQUOTE.  Sequence sets stay atoms (imap_seqset.h).
 */
struct imap_arg {
	enum imap_arg_type type;
	unsigned flags;			/* IMAP_ARG_F_* */
	const char *str;
	size_t len;
	uint64_t num;
	const struct imap_arg *args;	/* LIST elements / section contents */
	size_t count;
	size_t name_len;		/* F_SECTION only */
	size_t suffix_len;		/* F_SECTION only */
};

struct imap_command {
	const char *tag;		/* NUL-terminated, never empty */
	size_t tag_len;
	const char *name;		/* as sent: compare case-insensitively */
	size_t name_len;
	const struct imap_arg *args;	/* everything after the name */
	size_t count;
};

struct imap_parser;

/*
 * A parser with these limits (copied).  max_line, max_depth and max_args
 * must be at least 1 and max_args below 2^31.  NULL on bad limits or
 * out of memory.
 */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *lim);
void imap_parser_free(struct imap_parser *p);

/*
 * Forget everything: any partial command, any skip in progress.  For
 * refusing a "{n}" literal after NEED_CONTINUATION (see above) and after
 * STARTTLS; never in the middle of a skip (that would lose sync).
 */
void imap_parser_reset(struct imap_parser *p);

/* Parse from (data, len); see the loop above.  *consumed_r <= len. */
enum imap_parse_result imap_parser_feed(struct imap_parser *p,
    const char *data, size_t len, size_t *consumed_r);

/* After DONE: the command.  NULL at any other time. */
const struct imap_command *imap_parser_command(const struct imap_parser *p);

/* After ERROR / LITERAL_TOO_BIG: a short reason for "TAG BAD reason". */
const char *imap_parser_error(const struct imap_parser *p);

/*
 * The tag of the current or just-finished command, once it has been read
 * whole and found valid; NULL otherwise (answer "* BAD").
 */
const char *imap_parser_tag(const struct imap_parser *p, size_t *len_r);

/*
 * After NEED_CONTINUATION or LITERAL_TOO_BIG: the announced size, and
 * whether it was "{n+}" (*nonsync_r) - callers that advertise LITERAL-
 * may refuse a large one.
 */
uint64_t imap_parser_literal_size(const struct imap_parser *p, int *nonsync_r);

/*
 * Plain line mode for IDLE's "DONE" and AUTHENTICATE responses: one line
 * (CRLF or LF, not included) of at most max_line bytes, without NUL or
 * bare CR.  Returns DONE with *line_r / *len_r (NUL-terminated, valid as
 * for commands), NEED_MORE, or ERROR ("Line too long", ...) once the
 * whole offending line has been consumed.  Call it only between
 * commands; it discards any command in progress.
 */
enum imap_parse_result imap_parser_feed_line(struct imap_parser *p,
    const char *data, size_t len, size_t *consumed_r,
    const char **line_r, size_t *len_r);

/* --- reading arguments -------------------------------------------------- */

/* ATOM / NUMBER / NIL without a section whose text equals word (any case). */
int imap_arg_is_atom(const struct imap_arg *a, const char *word);

/*
 * astring (RFC 9051): an atom of ASTRING-CHARs (which also covers
 * NUMBER, NIL and "foo[bar]"), a quoted string, or a literal without NUL.
 * 1 with *s / *len set, else 0.
 */
int imap_arg_astring(const struct imap_arg *a, const char **s, size_t *len);

/* list-mailbox: astring, or an atom that may also hold "%" and "*". */
int imap_arg_list_mailbox(const struct imap_arg *a, const char **s,
    size_t *len);

/* string: a quoted string or a literal (any bytes).  1 or 0. */
int imap_arg_string(const struct imap_arg *a, const char **s, size_t *len);

/* NUMBER: 1 with *v set, else 0. */
int imap_arg_number(const struct imap_arg *a, uint64_t *v);

/*
 * A FETCH partial "<offset.count>" (RFC 9051: "<" number64 "."
 * nz-number64 ">"), e.g. a section atom's suffix.  0, or -1 on bad
 * syntax or a value over 2^63-1.
 */
int imap_parse_partial(const char *p, size_t len, uint64_t *offset,
    uint64_t *count);

#endif
