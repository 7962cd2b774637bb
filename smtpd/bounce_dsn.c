/*
 * bounce_dsn.c - build a bounce: RFC 6522 multipart/report with an RFC
 * 3464 delivery-status part (see bounce_dsn.h).
 *
 * Everything that reaches this file from outside - the remote server's
 * reply, addresses, the original header - goes through one sanitizer
 * before it is written, and every line is built by code that knows its
 * column, so neither a CR/LF in a reply nor an overlong token can start
 * a header field of its own or break the 998-octet line limit.  The
 * body of the original message is never copied: the sender has it, and
 * a bounce must not carry a message to someone who may not be its
 * author (backscatter) in full.
 */
#include "bounce_dsn.h"
#include "../common/addr.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

#define FOLD_SOFT 78		/* RFC 5322 2.1.1 SHOULD */
#define FOLD_HARD 998		/* RFC 5322 2.1.1 MUST */
#define HOST_MAX 255		/* host names, domains, ids: cut there */
#define LOCAL_MAX 128		/* local parts: cut there (64 is the limit) */

static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri",
    "Sat" };
static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Printable US-ASCII; white space becomes a space, the rest '?'. */
static char
san(unsigned char c)
{
	if (c >= 0x20 && c < 0x7f)
		return (char)c;
	if (c == '\t' || c == '\r' || c == '\n')
		return ' ';
	return '?';
}

/* A host name or address literal as it may appear after "dns;". */
static int
put_host(struct buf *b, const char *s)
{
	size_t i;
	int r = 0;

	for (i = 0; s[i] != '\0' && i < HOST_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-.[]:_", c) != NULL))
			c = '?';
		r |= buf_putc(b, (char)c);
	}
	return r;
}

/*
 * local@domain as RFC 5322 wants it: the local part quoted when it is
 * not a dot-atom (our addresses are kept unquoted), every byte
 * printable, the whole bounded.
 */
static int
put_addr(struct buf *b, const char *s)
{
	const char *at = strrchr(s, '@');
	size_t i, llen = at != NULL ? (size_t)(at - s) : strlen(s);
	int r = 0, dotatom;

	if (llen > LOCAL_MAX)
		llen = LOCAL_MAX;
	dotatom = addr_is_dot_string(s, llen, 0);
	if (!dotatom)
		r |= buf_putc(b, '"');
	for (i = 0; i < llen; i++) {
		char c = san((unsigned char)s[i]);

		if (!dotatom && (c == '"' || c == '\\'))
			r |= buf_putc(b, '\\');
		r |= buf_putc(b, c);
	}
	if (!dotatom)
		r |= buf_putc(b, '"');
	if (at != NULL) {
		r |= buf_putc(b, '@');
		r |= put_host(b, at + 1);
	}
	return r;
}

/*
 * Append len bytes of text, already col columns into the line: white
 * space runs become one space, a line breaks at a space before
 * FOLD_SOFT, and inside a word only at FOLD_HARD; each new line starts
 * with indent (white space, so in a header it is a continuation).
 */
static int
put_words(struct buf *b, size_t col, const char *s, size_t len,
    const char *indent)
{
	size_t i = 0, w, k, ilen = strlen(indent);
	int r = 0, first = 1;

	while (i < len) {
		while (i < len && san((unsigned char)s[i]) == ' ')
			i++;
		if (i == len)
			break;
		for (w = 0; i + w < len && san((unsigned char)s[i + w]) != ' ';
		    w++)
			;
		if (!first) {
			if (col + 1 + w > FOLD_SOFT) {
				r |= buf_putc(b, '\n');
				r |= buf_puts(b, indent);
				col = ilen;
			} else {
				r |= buf_putc(b, ' ');
				col++;
			}
		}
		first = 0;
		while (w > 0) {
			k = w < FOLD_HARD - col ? w : FOLD_HARD - col;
			for (; k > 0; k--, w--, col++)
				r |= buf_putc(b, san((unsigned char)s[i++]));
			if (w > 0) {
				r |= buf_putc(b, '\n');
				r |= buf_puts(b, indent);
				col = ilen;
			}
		}
	}
	return r;
}

/* RFC 5322 date-time in UTC: the same bytes wherever it is built. */
static int
put_date(struct buf *b, time_t t)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	return buf_printf(b, "%s, %d %s %d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, mons[tm.tm_mon], tm.tm_year + 1900,
	    tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* RFC 3463: class.subject.detail, class 2, 4 or 5, 1-3 digits each. */
static int
status_ok(const char *s)
{
	int part, digits;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return 0;
	s += 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; *s >= '0' && *s <= '9'; s++)
			if (++digits > 3)
				return 0;
		if (digits == 0 || *s != (part == 0 ? '.' : '\0'))
			return 0;
		s++;
	}
	return 1;
}

/* "550 ..." or "550-...": a reply code opens an SMTP reply. */
static int
is_smtp_reply(const char *s)
{
	return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9' &&
	    (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

static const char *
rcpt_status(const struct dsn_rcpt *r)
{
	if (status_ok(r->status))
		return r->status;
	return r->delayed ? "4.0.0" : "5.0.0";
}

size_t
bounce_dsn_header_len(const char *orig, size_t orig_len)
{
	const char *p;

	if (orig_len == 0 || orig[0] == '\n')
		return 0;
	p = memmem(orig, orig_len, "\n\n", 2);
	return p != NULL ? (size_t)(p - orig) + 1 : orig_len;
}

/*
 * A boundary that does not occur in the original.  It hashes the
 * original itself, so a sender cannot plant it in his header; the
 * counter only guards against the impossible.
 */
static int
make_boundary(const struct dsn_info *info, const char *orig, size_t orig_len,
    char *out, size_t outsz)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i, n;
	EVP_MD_CTX *ctx;
	const char *seed = info->msgid_seed ? info->msgid_seed : "";
	const char *qid = info->queue_id ? info->queue_id : "";
	char hex[33];
	int ok;

	if ((ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(ctx, seed, strlen(seed) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, qid, strlen(qid) + 1) == 1 &&
	    EVP_DigestUpdate(ctx, &info->now, sizeof(info->now)) == 1 &&
	    EVP_DigestUpdate(ctx, orig, orig_len) == 1 &&
	    EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen >= 16;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	for (i = 0; i < 16; i++)
		snprintf_checked(hex + 2 * i, 3, "%02x", md[i]);
	for (n = 0; ; n++) {
		if (snprintf_checked(out, outsz, "=_buzon-dsn-%s-%u", hex,
		    n) < 0)
			return -1;
		if (orig_len == 0 ||
		    memmem(orig, orig_len, out, strlen(out)) == NULL)
			return 0;
	}
}

/* The seed's characters that may stand in a Message-ID's left side. */
static int
put_msgid(struct buf *b, const struct dsn_info *info)
{
	const char *s = info->msgid_seed;
	size_t i, n = 0;
	int r = 0;

	r |= buf_putc(b, '<');
	for (i = 0; s != NULL && s[i] != '\0' && n < 200; i++)
		if (addr_is_atext((unsigned char)s[i]) || (s[i] == '.' &&
		    n > 0 && s[i + 1] != '\0' && s[i + 1] != '.')) {
			r |= buf_putc(b, s[i]);
			n++;
		}
	if (n == 0)
		r |= buf_printf(b, "dsn.%lld", (long long)info->now);
	r |= buf_puts(b, "@");
	r |= put_host(b, info->reporting_mta);
	r |= buf_putc(b, '>');
	return r;
}

static int
put_header(struct buf *b, const struct dsn_info *info, int all_delayed,
    const char *boundary)
{
	int r = 0;

	r |= buf_puts(b, "From: Mail Delivery System <MAILER-DAEMON@");
	r |= put_host(b, info->reporting_mta);
	r |= buf_puts(b, ">\nTo: <");
	r |= put_addr(b, info->sender);
	r |= buf_printf(b, ">\nSubject: %s\nDate: ", all_delayed ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	r |= put_date(b, info->now);
	r |= buf_puts(b, "\nMessage-ID: ");
	r |= put_msgid(b, info);
	r |= buf_puts(b, "\nMIME-Version: 1.0\n"
	    "Auto-Submitted: auto-replied\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\n");
	r |= buf_printf(b, "\tboundary=\"%s\"\n\n"
	    "This is a MIME-encapsulated message.\n\n", boundary);
	return r;
}

/* Part 1 lines for one recipient. */
static int
put_human_rcpt(struct buf *b, const struct dsn_rcpt *rc)
{
	size_t col;
	int r = 0;

	r |= buf_puts(b, "\n<");
	r |= put_addr(b, rc->address);
	r |= buf_puts(b, ">:");
	if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0') {
		r |= buf_puts(b, " the server ");
		r |= put_host(b, rc->remote_mta);
		r |= buf_puts(b, " answered:");
	}
	r |= buf_puts(b, "\n    ");
	col = 4;
	if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0')
		r |= put_words(b, col, rc->diagnostic, strlen(rc->diagnostic),
		    "    ");
	else
		r |= buf_printf(b, "delivery %s, status %s",
		    rc->delayed ? "delayed" : "failed", rcpt_status(rc));
	r |= buf_putc(b, '\n');
	return r;
}

/* What part 1 says before the failed [0] and the delayed [1] recipients. */
static const char *const human_intro[2] = {
	"\nYour message could not be delivered to the recipients below, and "
	"the mail\nsystem has given up on them. The reasons follow; a report "
	"and the\nheader of your message are attached.\n",
	"\nYour message has not been delivered yet to the recipients below. "
	"The\nmail system will keep trying; you do not need to send it "
	"again.\n",
};

static int
put_human(struct buf *b, const struct dsn_info *info,
    const struct dsn_rcpt *rcpts, size_t n, size_t nfailed, size_t ndelayed)
{
	size_t i;
	int r = 0, delayed;

	r |= buf_puts(b, "Content-Description: Notification\n"
	    "Content-Type: text/plain; charset=us-ascii\n\n"
	    "This is the mail system at ");
	r |= put_host(b, info->reporting_mta);
	r |= buf_puts(b, ".\n");
	for (delayed = 0; delayed < 2; delayed++) {
		if ((delayed ? ndelayed : nfailed) == 0)
			continue;
		r |= buf_puts(b, human_intro[delayed]);
		for (i = 0; i < n; i++)
			if (!rcpts[i].delayed == !delayed)
				r |= put_human_rcpt(b, &rcpts[i]);
	}
	return r;
}

static int
put_report(struct buf *b, const struct dsn_info *info,
    const struct dsn_rcpt *rcpts, size_t n)
{
	const struct dsn_rcpt *rc;
	size_t i;
	int r = 0;

	r |= buf_puts(b, "Content-Description: Delivery report\n"
	    "Content-Type: message/delivery-status\n\n"
	    "Reporting-MTA: dns; ");
	r |= put_host(b, info->reporting_mta);
	if (info->queue_id != NULL && info->queue_id[0] != '\0') {
		r |= buf_puts(b, "\nX-Buzon-Queue-ID: ");
		r |= put_host(b, info->queue_id);
	}
	r |= buf_puts(b, "\nArrival-Date: ");
	r |= put_date(b, info->arrival);
	r |= buf_putc(b, '\n');
	for (i = 0; i < n; i++) {
		rc = &rcpts[i];
		r |= buf_puts(b, "\nFinal-Recipient: rfc822; ");
		r |= put_addr(b, rc->address);
		if (rc->orcpt != NULL && rc->orcpt[0] != '\0') {
			r |= buf_puts(b, "\nOriginal-Recipient: rfc822; ");
			r |= put_addr(b, rc->orcpt);
		}
		r |= buf_printf(b, "\nAction: %s\nStatus: %s\n",
		    rc->delayed ? "delayed" : "failed", rcpt_status(rc));
		if (rc->remote_mta != NULL && rc->remote_mta[0] != '\0') {
			r |= buf_puts(b, "Remote-MTA: dns; ");
			r |= put_host(b, rc->remote_mta);
			r |= buf_putc(b, '\n');
		}
		if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0') {
			/* RFC 3464 2.3.6: "smtp" only for an SMTP reply */
			r |= buf_printf(b, "Diagnostic-Code: %s; ",
			    is_smtp_reply(rc->diagnostic) ? "smtp" :
			    "X-Buzon");
			r |= put_words(b, is_smtp_reply(rc->diagnostic) ?
			    23 : 26, rc->diagnostic, strlen(rc->diagnostic),
			    " ");
			r |= buf_putc(b, '\n');
		}
		r |= buf_puts(b, "Last-Attempt-Date: ");
		r |= put_date(b, info->now);
		r |= buf_putc(b, '\n');
	}
	return r;
}

/*
 * Part 3: the original header, line by line, made 7-bit and cut at
 * lines of FOLD_HARD (the rest continues on a tab-indented line) and at
 * DSN_HEADERS_MAX.  A CR is dropped only before LF: dropping others
 * could join text into the boundary.
 */
static int
put_orig_header(struct buf *b, const char *orig, size_t len)
{
	size_t i, col = 0, total = 0, eol;
	int r = 0;

	r |= buf_puts(b, "Content-Description: Undelivered Message Headers\n"
	    "Content-Type: text/rfc822-headers\n\n");
	for (i = 0; i < len; i = eol + 1) {
		const char *nl = memchr(orig + i, '\n', len - i);

		eol = nl != NULL ? (size_t)(nl - orig) : len;
		if (total + (eol - i) + 1 > DSN_HEADERS_MAX)
			break;
		total += eol - i + 1;
		for (col = 0; i < eol; i++) {
			unsigned char c = (unsigned char)orig[i];

			if (c == '\r' && i + 1 == eol)
				continue;
			if (col == FOLD_HARD) {
				r |= buf_puts(b, "\n\t");
				col = 1;
			}
			r |= buf_putc(b, c == '\t' ? '\t' : san(c));
			col++;
		}
		r |= buf_putc(b, '\n');
	}
	return r;
}

int
bounce_dsn_build(const struct dsn_info *info, const struct dsn_rcpt *rcpts,
    size_t n, const char *orig, size_t orig_len, struct buf *out)
{
	struct buf b;
	char boundary[80];
	size_t i, nfailed = 0, ndelayed = 0, hlen;
	int r = 0;

	if (info == NULL || info->sender == NULL || info->sender[0] == '\0' ||
	    info->reporting_mta == NULL || info->reporting_mta[0] == '\0' ||
	    rcpts == NULL || n == 0 || (orig == NULL && orig_len > 0)) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (rcpts[i].address == NULL) {
			errno = EINVAL;
			return -1;
		}
		if (rcpts[i].delayed)
			ndelayed++;
		else
			nfailed++;
	}
	if (orig == NULL)
		orig = "";
	if (make_boundary(info, orig, orig_len, boundary,
	    sizeof(boundary)) < 0) {
		errno = ENOMEM;
		return -1;
	}
	hlen = bounce_dsn_header_len(orig, orig_len);

	/* built aside, so that a failure leaves out as it was */
	buf_init(&b, out->max - out->len);
	r |= put_header(&b, info, nfailed == 0, boundary);
	r |= buf_printf(&b, "--%s\n", boundary);
	r |= put_human(&b, info, rcpts, n, nfailed, ndelayed);
	r |= buf_printf(&b, "\n--%s\n", boundary);
	r |= put_report(&b, info, rcpts, n);
	r |= buf_printf(&b, "\n--%s\n", boundary);
	r |= put_orig_header(&b, orig, hlen);
	r |= buf_printf(&b, "\n--%s--\n", boundary);
	if (r != 0 || buf_append(out, b.data, b.len) < 0) {
		buf_free(&b);
		errno = ENOBUFS;
		return -1;
	}
	buf_free(&b);
	return 0;
}
