/*
 * pop3_parse.h - POP3 command lines and message bodies as pure functions
 * from bytes to structs: the command splitter (RFC 1939 section 3, RFC
 * 2449 lengths), message-number arguments, and the converter that turns
 * a stored message (LF line ends) into what RETR and TOP send (CRLF line
 * ends, byte-stuffed, cut after N body lines for TOP).  No sockets, no
 * session, no store: unit-tested and fuzzed on their own.
 */
#ifndef BUZON_POP3_PARSE_H
#define BUZON_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/buf.h"

enum pop3_verb {
	POP3_CAPA, POP3_QUIT, POP3_STLS, POP3_USER, POP3_PASS, POP3_AUTH,
	POP3_STAT, POP3_LIST, POP3_RETR, POP3_DELE, POP3_NOOP, POP3_RSET,
	POP3_TOP, POP3_UIDL,
	POP3_UNKNOWN,
	POP3_NVERBS = POP3_UNKNOWN
};

#define POP3_MAX_ARGS 2		/* TOP msg n; more is a syntax error */

struct pop3_arg {
	const char *p;		/* points into the line */
	size_t len;
};

struct pop3_cmd {
	enum pop3_verb verb;
	/* Everything after the verb and one space, verbatim (PASS takes a
	 * password that may contain spaces, RFC 1939 section 7). */
	const char *rest;
	size_t restlen;
	/* The same split on spaces (runs of spaces count as one). */
	struct pop3_arg args[POP3_MAX_ARGS];
	size_t nargs;
	int too_many_args;	/* more than POP3_MAX_ARGS words */
};

enum pop3_parse_result {
	POP3_PARSE_OK,
	POP3_PARSE_EMPTY,	/* nothing but spaces */
	POP3_PARSE_UNKNOWN,	/* a verb we do not implement */
	POP3_PARSE_BAD_CHAR,	/* NUL or another control byte in the line */
};

/*
 * Split a command line (CRLF already removed).  Verbs are matched
 * case-insensitively from a table.  Bytes >= 0x80 are allowed (UTF-8
 * user names and passwords); control bytes are not.  cmd->verb is
 * POP3_UNKNOWN unless the result is POP3_PARSE_OK.
 */
enum pop3_parse_result pop3_parse_command(const char *line, size_t len,
    struct pop3_cmd *cmd);

/* The verb's name in upper case ("?" for POP3_UNKNOWN). */
const char *pop3_verb_name(enum pop3_verb v);

/*
 * A message number or line count: 1 to 10 ASCII digits, value at most
 * UINT32_MAX.  0 ok (zero allowed; callers decide), -1 bad.
 */
int pop3_parse_number(const char *p, size_t len, uint32_t *out);

/*
 * RETR/TOP body conversion.  Input is the message file as stored (LF
 * line ends; a CRLF already there is kept, so the output size before
 * stuffing equals the index's RFC822.SIZE).  Output: CRLF line ends, a
 * '.' doubled at the start of every line (RFC 1939 section 3).  With
 * top set, output stops after the header, the blank line and body_lines
 * lines of the body (RFC 1939 TOP); done is then set and the rest of
 * the input is not consumed.
 */
struct pop3_stuff {
	int top;
	uint64_t body_lines;	/* TOP: body lines still to send */
	int in_body;		/* the blank line after the header was seen */
	int bol;		/* at the beginning of an output line */
	int prev_cr;		/* last input byte was CR */
	int line_blank;		/* current input line holds at most a CR */
	int done;		/* TOP limit reached: feed nothing more */
	uint64_t in_bytes;	/* consumed so far */
	uint64_t out_bytes;	/* produced so far */
};

void pop3_stuff_init(struct pop3_stuff *st, int top, uint64_t body_lines);

/*
 * Convert in[0..len) and append to out.  Returns the input bytes
 * consumed (fewer than len only once done is set), or -1 when out
 * refused an append (out then holds a prefix of the output: the
 * caller must give up on this message).  Output is at most 2 * len + 1
 * bytes.
 */
ssize_t pop3_stuff_feed(struct pop3_stuff *st, const char *in, size_t len,
    struct buf *out);

/*
 * End the multi-line response: a CRLF when the message did not end with
 * a line end, then ".\r\n".  0, or -1 when out is full.
 */
int pop3_stuff_finish(struct pop3_stuff *st, struct buf *out);

#endif
