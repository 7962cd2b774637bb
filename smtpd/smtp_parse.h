/*
 * smtp_parse.h - SMTP command-line and DATA parsing: pure functions from
 * bytes to structs (no I/O, no session state), unit-tested and fuzzed.
 */
#ifndef BUZON_SMTP_PARSE_H
#define BUZON_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/addr.h"
#include "../common/buf.h"

enum smtp_verb {
	SMTP_HELO, SMTP_EHLO, SMTP_MAIL, SMTP_RCPT, SMTP_DATA, SMTP_BDAT,
	SMTP_RSET, SMTP_NOOP, SMTP_QUIT, SMTP_VRFY, SMTP_EXPN, SMTP_HELP,
	SMTP_STARTTLS, SMTP_AUTH,
	SMTP_UNKNOWN,
	SMTP_NVERBS = SMTP_UNKNOWN
};

struct smtp_cmd {
	enum smtp_verb verb;
	const char *arg;	/* points into the line; after the verb and one space */
	size_t arglen;		/* trailing blanks removed */
};

/*
 * Split a command line (CRLF already removed) into verb and argument.
 * Verbs are matched case-insensitively from a table.  Returns 0, or -1
 * for an unknown verb (cmd->verb = SMTP_UNKNOWN) or a NUL byte in the line.
 */
int smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd);

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };

struct smtp_mail_args {
	struct mailaddr from;	/* empty local/domain for <> */
	int has_size;
	uint64_t size;
	enum smtp_body body;
	int smtputf8;
};

struct smtp_rcpt_args {
	struct mailaddr to;
};

/*
 * Parse "FROM:<path> [params]" / "TO:<path> [params]".  On error returns
 * -1 with *code the SMTP reply code and *why "X.Y.Z text" to send
 * (501 5.5.4 syntax, 501 5.1.7 bad sender, 501 5.1.3 bad recipient,
 * 555 5.5.4 unknown parameter, 553 5.6.7 non-ASCII without SMTPUTF8).
 */
int smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out,
    int *code, const char **why);
int smtp_parse_rcpt(const char *arg, size_t len, int smtputf8,
    struct smtp_rcpt_args *out, int *code, const char **why);

/*
 * DATA scanner.  Feed it the raw bytes after "354"; it dot-unstuffs,
 * turns CRLF into LF, and stops right after the CRLF "." CRLF that ends
 * the data.  A bare CR or bare LF anywhere marks the message bad
 * (bare_newline) but scanning goes on to the real end, so nothing the
 * client sent after a bare "\n.\n" is ever read as a command.
 */
struct smtp_data_scanner {
	int state;
	int done;		/* end of data seen */
	int bare_newline;	/* bare CR or LF seen: refuse the message */
	uint64_t size;		/* unstuffed octets produced (LF form) */
	uint64_t nlines;	/* LFs produced */
};

void smtp_data_init(struct smtp_data_scanner *sc);

/*
 * Consume up to len bytes; append the unstuffed output to out (which may
 * refuse with -1 when full: the scanner then keeps counting but stops
 * appending, and sets *overflow).  Returns the number of bytes consumed,
 * which is less than len only when the end of data was reached.
 */
size_t smtp_data_feed(struct smtp_data_scanner *sc, const char *p, size_t len,
    int (*out)(void *arg, const char *p, size_t n), void *arg, int *overflow);

#endif
