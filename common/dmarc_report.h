/*
 * dmarc_report.h - RFC 7489 aggregate reports, the pure half: the XML
 * of one report (appendix C), the rua= address list, and the mail that
 * carries the report as a gzip attachment (section 7.2.1.1).
 *
 * No I/O here: the day's reports are gathered from the database and
 * their destinations checked in DNS by dmarc_daily.c.  Everything that
 * came from outside (domains, selectors, addresses in the evaluations)
 * is escaped for XML; what goes into mail headers must already have been
 * validated by the caller (domains and addresses are checked there).
 */
#ifndef BUZON_DMARC_REPORT_H
#define BUZON_DMARC_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "addr.h"
#include "buf.h"
#include "db_dmarc.h"

#define DMARC_RUA_MAX 4		/* mailto: destinations used per report */
#define DMARC_REPORT_ID_MAX 320

struct dmarc_report_meta {
	const char *org_name;		/* our hostname */
	const char *email;		/* the reporting address */
	const char *report_id;
	time_t begin, end;		/* the period [begin, end) */
};

/*
 * The feedback document for rep, appended to out.  The date range says
 * begin and end - 1 (the last second in the period).  0 or -1 (full).
 */
int dmarc_report_xml(const struct dmarc_report_meta *m,
    const struct dmarc_agg_report *rep, struct buf *out);

/*
 * s as XML character data / attribute text: & < > " ' as entities;
 * bytes XML 1.0 does not allow (controls other than TAB LF CR, invalid
 * UTF-8, U+FFFE/U+FFFF) as '?'.  0 or -1.
 */
int dmarc_xml_escape(struct buf *out, const char *s);

struct dmarc_rua {
	struct mailaddr addr[DMARC_RUA_MAX];
	uint64_t limit[DMARC_RUA_MAX];	/* "!10m" in bytes, 0 none */
	size_t n;
	unsigned ignored;		/* other schemes, bad or surplus URIs */
};

/*
 * The mailto: destinations of a rua= value (RFC 7489 6.4: URIs joined by
 * ',', each with an optional "!SIZE[kmgt]" limit; %-escapes decoded, any
 * "?hfields" dropped).  Addresses must be plain ASCII local@domain;
 * duplicates count once.  Fills out (never fails).
 */
void dmarc_rua_parse(const char *rua, struct dmarc_rua *out);

/*
 * "YYYYMMDD.HHHHHHHHHHHHHHHH@hostname": the day of begin (UTC) and a
 * hash of (domain, rua), so that building a day's report twice gives
 * the same id and two rua of one domain do not share it.  0 or -1.
 */
int dmarc_report_id(const char *hostname, const char *domain,
    const char *rua, time_t begin, char *out, size_t outsz);

/* "submitter!domain!begin!end.xml.gz" (end: the last second).  0 / -1. */
int dmarc_report_filename(const char *submitter, const char *domain,
    time_t begin, time_t end, char *out, size_t outsz);

/* gzip (RFC 1952) of [in, in+len) appended to out.  0 or -1. */
int dmarc_gzip(const void *in, size_t len, struct buf *out);

struct dmarc_mail_info {
	const char *from;		/* the reporting address */
	const struct mailaddr *to;
	size_t nto;
	const char *submitter;		/* our hostname */
	const char *domain;		/* the policy domain */
	const char *report_id;
	time_t begin, end;		/* the period [begin, end) */
	time_t now;			/* Date: */
	const char *msgid_left;		/* Message-ID: <msgid_left@submitter> */
};

/*
 * The whole message, LF line ends, ready for queue_write: From, To,
 * Subject "Report Domain: D Submitter: S Report-ID: <ID>", Date,
 * Message-ID, Auto-Submitted, a multipart/mixed body with a short text
 * and the gzip'd XML as application/gzip (base64), named by
 * dmarc_report_filename.  Every header argument must be 7-bit with no
 * control bytes (-1 otherwise).  0 or -1.
 */
int dmarc_report_mail(const struct dmarc_mail_info *mi, const char *xml,
    size_t xmllen, struct buf *out);

#endif
