/*
 * smtpc_reply.h - the SMTP client's pure parts: server replies (RFC 5321
 * 4.2) fed as bytes and handed back whole, the enhanced status code (RFC
 * 3463) of a reply, the EHLO keywords, and the DATA encoder.
 *
 * No I/O and no allocation beyond a bounded buffer, so they can be fed
 * anything (tests/fuzz/fuzz_smtpc_reply.c).  A reply breaking the limits
 * below is a protocol error: the parser never grows past them.
 */
#ifndef BUZON_SMTPC_REPLY_H
#define BUZON_SMTPC_REPLY_H

#include <stddef.h>

#include "../common/buf.h"

#define SMTPC_LINE_MAX		2048	/* one reply line, its CRLF counted */
#define SMTPC_REPLY_LINES_MAX	100	/* lines of one multiline reply */
#define SMTPC_REPLY_BYTES_MAX	65536	/* octets of one reply */
#define SMTPC_TEXT_MAX		1024

struct smtpc_reply {
	int code;		/* 200..599; 0: no reply (see local) */
	char enhanced[16];	/* "5.1.1", or "" */
	/*
	 * The whole reply, printable ASCII only: "550 5.1.1 no such user",
	 * continuation lines joined with " / ", "..." when cut short.
	 * For a reply made up by the client: what happened.
	 */
	char text[SMTPC_TEXT_MAX];
	int local;		/* 1: made up here, never said by the server */
};

enum smtpc_feed {
	SMTPC_FEED_ERROR = -1,	/* protocol error: reply->text says which */
	SMTPC_FEED_MORE = 0,	/* every byte taken, reply not complete */
	SMTPC_FEED_DONE = 1,	/* a reply is complete */
};

struct smtpc_rparser {
	char line[SMTPC_LINE_MAX];	/* the line being received */
	size_t linelen;
	int code;		/* of the reply being read; 0 before its first line */
	unsigned nlines;
	size_t nbytes;		/* octets of this reply so far */
	struct buf lines;	/* text of each line (after "250-"), LF after each */
	int done;		/* last feed completed a reply */
	int failed;		/* sticky after a protocol error */
};

void smtpc_rparser_init(struct smtpc_rparser *p);
void smtpc_rparser_free(struct smtpc_rparser *p);
/* Forget any partial input (after STARTTLS): the next byte starts a reply. */
void smtpc_rparser_reset(struct smtpc_rparser *p);

/*
 * Take bytes from data[0..len).  *used says how many were taken: all of
 * them for MORE, up to and including the LF of the reply's last line for
 * DONE (the rest belongs to the next reply: pipelining).  A line ends at
 * LF, a CR before it is dropped.  After ERROR every call fails again.
 */
enum smtpc_feed smtpc_reply_feed(struct smtpc_rparser *p, const char *data,
    size_t len, size_t *used, struct smtpc_reply *reply);

/*
 * The text of every line of the reply DONE last returned (the EHLO
 * keywords), each followed by LF; valid until the next feed.
 */
const char *smtpc_reply_lines(const struct smtpc_rparser *p, size_t *len);

/*
 * The enhanced status code at the start of text ("5.1.1 ..."): class
 * 2, 4 or 5 matching the reply code's first digit, then 1-3 digit subject
 * and detail, then a space or the end.  Copies it into out (16 bytes) and
 * returns its length, or 0 (out = "") when there is none.
 */
size_t smtpc_enhanced_code(const char *text, size_t len, int code,
    char out[16]);

/* EHLO keywords (RFC 5321 4.1.1.1 and the extensions' RFCs). */
#define SMTPC_EXT_PIPELINING		0x001	/* RFC 2920 */
#define SMTPC_EXT_SIZE			0x002	/* RFC 1870 */
#define SMTPC_EXT_STARTTLS		0x004	/* RFC 3207 */
#define SMTPC_EXT_AUTH			0x008	/* RFC 4954 */
#define SMTPC_EXT_8BITMIME		0x010	/* RFC 6152 */
#define SMTPC_EXT_SMTPUTF8		0x020	/* RFC 6531 */
#define SMTPC_EXT_ENHANCEDSTATUSCODES	0x040	/* RFC 2034 */
#define SMTPC_EXT_CHUNKING		0x080	/* RFC 3030 */
#define SMTPC_EXT_DSN			0x100	/* RFC 3461 */

#define SMTPC_AUTH_PLAIN	0x1
#define SMTPC_AUTH_LOGIN	0x2

struct smtpc_ext {
	unsigned flags;			/* SMTPC_EXT_* */
	unsigned long long size;	/* SIZE limit; 0: none announced */
	unsigned auth;			/* SMTPC_AUTH_* mechanisms offered */
};

/*
 * Read the keywords from the lines of an EHLO reply (as returned by
 * smtpc_reply_lines; the first line, the server's name, is skipped).
 * Keywords are case-insensitive; "AUTH=..." (pre-RFC 4954 servers) counts
 * as AUTH; a SIZE whose value is missing, zero or not a number sets the
 * flag with no limit.  Unknown keywords are ignored.
 */
void smtpc_ehlo_parse(const char *lines, size_t len, struct smtpc_ext *ext);

/*
 * The message on the wire (RFC 5321 4.5.2): LF becomes CRLF (a CRLF
 * stays one), a dot starting a line is doubled when stuff is set (not
 * when counting for SIZE, RFC 1870).  A bare CR is passed on as it is.
 */
struct smtpc_enc {
	int bol;		/* the next byte starts a line */
	int cr;			/* a CR is held back: an LF may follow */
	int stuff;
};

void smtpc_enc_init(struct smtpc_enc *e, int stuff);
/* Encode n bytes into out, which has room for 2 * n + 1: bytes written. */
size_t smtpc_enc_bytes(struct smtpc_enc *e, const char *p, size_t n,
    char *out);
/* The last line's CRLF when the input did not end with one (<= 2 bytes). */
size_t smtpc_enc_end(struct smtpc_enc *e, char *out);

#endif
