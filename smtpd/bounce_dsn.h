/*
 * bounce_dsn.h - the delivery status notification we send back to a
 * sender (RFC 3464 message/delivery-status inside an RFC 6522
 * multipart/report): a human explanation, the machine-readable report,
 * and the header section of the original message, never its body.
 *
 * Pure: builds bytes in memory from its arguments, no clock, no I/O.
 * The output has LF line ends (the store format), is 7-bit US-ASCII, and
 * no line exceeds 998 octets: everything that came from outside (remote
 * replies, addresses, the original header) is reduced to printable
 * ASCII, so a CR or LF in it can never start a header line of its own.
 */
#ifndef BUZON_BOUNCE_DSN_H
#define BUZON_BOUNCE_DSN_H

#include <stddef.h>
#include <time.h>

#include "../common/buf.h"

/* The original header copied into part 3 is cut (at a line) past this. */
#define DSN_HEADERS_MAX (100 * 1024)

struct dsn_rcpt {
	const char *address;	/* the recipient that failed */
	const char *orcpt;	/* NULL, or the original recipient */
	const char *status;	/* "5.1.1"; NULL or bad: 5.0.0 / 4.0.0 */
	const char *remote_mta;	/* NULL, or the host that answered */
	const char *diagnostic;	/* NULL, or the remote reply as received */
	int delayed;		/* 0: Action: failed, 1: Action: delayed */
};

struct dsn_info {
	const char *reporting_mta;	/* our host name */
	const char *queue_id;
	const char *sender;	/* the original envelope sender: To: */
	time_t arrival;		/* when the original was queued */
	time_t now;		/* Date:, Last-Attempt-Date: */
	const char *msgid_seed;	/* unique: left part of the Message-ID */
};

/*
 * Append the whole bounce message (header and body, LF ends) for the n
 * recipients to out.  orig is the original message (LF ends); only its
 * header section is copied.  Dates are written in UTC.  The Subject is
 * "Delayed Mail (still being retried)" when every recipient is delayed,
 * else "Undelivered Mail Returned to Sender".  Returns 0, or -1 with
 * out unchanged and errno EINVAL (no recipient, no sender: a bounce
 * never goes to the null sender, no reporting_mta or address) or
 * ENOBUFS (out's maximum reached).
 */
int bounce_dsn_build(const struct dsn_info *info, const struct dsn_rcpt *rcpts,
    size_t n, const char *orig, size_t orig_len, struct buf *out);

/*
 * The length of orig's header section: up to and including the LF of
 * its last header line, without the blank line (all of orig when there
 * is no blank line).  Pure, for part 3 and its tests.
 */
size_t bounce_dsn_header_len(const char *orig, size_t orig_len);

#endif
