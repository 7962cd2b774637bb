/*
 * test_bounce_dsn.c - the bounce message: read back the way a mail
 * client would (header, multipart/report boundary, three parts, the
 * per-recipient blocks of the delivery-status part), with hostile
 * remote replies and headers that must not become header lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <cmocka.h>

#include "smtpd/bounce_dsn.h"

#define NOW ((time_t)1795435200)	/* Mon, 23 Nov 2026 12:00:00 UTC */

static const char orig_msg[] =
    "Return-Path: <alice@a.test>\n"
    "Received: from x.a.test by mx.ours.test;\n"
    "\tMon, 23 Nov 2026 11:00:00 +0000\n"
    "From: Alice <alice@a.test>\n"
    "To: bob@b.test\n"
    "Subject: hello\n"
    "Message-ID: <1@a.test>\n"
    "\n"
    "SECRET BODY LINE\n"
    "--not-a-boundary\n";

static struct dsn_info
info_default(void)
{
	struct dsn_info info = {
		.reporting_mta = "mx.ours.test",
		.queue_id = "1795431600.AbC_12-x",
		.sender = "alice@a.test",
		.arrival = NOW - 3600,
		.now = NOW,
		.msgid_seed = "1795431600.AbC_12-x.7f3a",
	};

	return info;
}

/* A message split as a reader would: header fields unfolded, body. */
struct part {
	char *head;		/* unfolded header, one field per line */
	const char *body;
	size_t body_len;
};

static char *
unfold(const char *p, size_t len)
{
	char *out = malloc(len + 2), *o = out;
	size_t i;

	assert_non_null(out);
	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && i + 1 < len && (p[i + 1] == ' ' ||
		    p[i + 1] == '\t'))
			continue;	/* a fold: keep the white space */
		*o++ = p[i];
	}
	if (o == out || o[-1] != '\n')
		*o++ = '\n';
	*o = '\0';
	return out;
}

static void
split(const char *p, size_t len, struct part *pt)
{
	const char *e = memmem(p, len, "\n\n", 2);

	if (len > 0 && p[0] == '\n') {
		pt->head = unfold("", 0);
		pt->body = p + 1;
		pt->body_len = len - 1;
		return;
	}
	assert_non_null(e);
	pt->head = unfold(p, (size_t)(e - p) + 1);
	pt->body = e + 2;
	pt->body_len = len - (size_t)(e + 2 - p);
}

/* The value of the first field called name in an unfolded header. */
static const char *
field(const char *head, const char *name, char *val, size_t valsz)
{
	size_t n = strlen(name);
	const char *p = head, *e;

	for (; *p != '\0'; p = e + 1) {
		e = strchr(p, '\n');
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			assert_true((size_t)(e - p) < valsz);
			memcpy(val, p, (size_t)(e - p));
			val[e - p] = '\0';
			return val;
		}
	}
	return NULL;
}

static int
has(const struct part *pt, const char *s)
{
	return memmem(pt->body, pt->body_len, s, strlen(s)) != NULL;
}

static int
count_lines_starting(const char *p, size_t len, const char *prefix)
{
	size_t i, n = strlen(prefix);
	int c = 0;

	for (i = 0; i < len; i++)
		if ((i == 0 || p[i - 1] == '\n') && len - i >= n &&
		    strncmp(p + i, prefix, n) == 0)
			c++;
	return c;
}

/* Every line 7-bit printable (or tab), at most 998 octets, LF ends. */
static void
check_lines(const char *p, size_t len, size_t soft_max_hint)
{
	size_t i, col = 0;

	(void)soft_max_hint;
	assert_true(len > 0 && p[len - 1] == '\n');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\n') {
			col = 0;
			continue;
		}
		if (!((c >= 0x20 && c < 0x7f) || c == '\t'))
			fail_msg("byte 0x%02x at offset %zu", c, i);
		if (++col > 998)
			fail_msg("line over 998 octets at offset %zu", i);
	}
}

struct dsn {
	struct buf out;
	struct part top;
	char boundary[100];
	struct part parts[3];
	int nparts;
	char *report[16];	/* unfolded blocks of the delivery-status */
	int nreport;
};

static void
parse(struct dsn *d)
{
	char ct[512], delim[110];
	const char *p, *b, *e, *end;
	size_t dl;
	char *q;

	check_lines(d->out.data, d->out.len, 78);
	split(d->out.data, d->out.len, &d->top);
	assert_non_null(field(d->top.head, "Content-Type", ct, sizeof(ct)));
	assert_non_null(strstr(ct, "multipart/report;"));
	assert_non_null(strstr(ct, "report-type=delivery-status"));
	assert_non_null(p = strstr(ct, "boundary=\""));
	p += 10;
	assert_non_null(e = strchr(p, '"'));
	memcpy(d->boundary, p, (size_t)(e - p));
	d->boundary[e - p] = '\0';

	/* parts: "--b\n" ... "\n--b\n" ... "\n--b--\n" */
	snprintf_checked(delim, sizeof(delim), "\n--%s", d->boundary);
	dl = strlen(delim);
	end = d->top.body + d->top.body_len;
	b = memmem(d->top.body - 1, (size_t)(end - d->top.body) + 1, delim,
	    dl);
	assert_non_null(b);
	d->nparts = 0;
	for (;;) {
		p = b + dl;
		if (strncmp(p, "--\n", 3) == 0) {
			assert_ptr_equal(p + 3, end);	/* nothing after */
			break;
		}
		assert_int_equal(*p, '\n');
		p++;
		b = memmem(p, (size_t)(end - p), delim, dl);
		assert_non_null(b);
		assert_true(d->nparts < 3);
		split(p, (size_t)(b - p), &d->parts[d->nparts++]);
	}
	assert_int_equal(d->nparts, 3);

	/* the delivery-status blocks, separated by blank lines */
	d->nreport = 0;
	p = d->parts[1].body;
	end = p + d->parts[1].body_len;
	while (p < end) {
		e = memmem(p, (size_t)(end - p), "\n\n", 2);
		e = e != NULL ? e + 1 : end;
		assert_true(d->nreport < 16);
		q = unfold(p, (size_t)(e - p));
		d->report[d->nreport++] = q;
		p = e < end ? e + 1 : end;
	}
}

static void
dsn_free(struct dsn *d)
{
	int i;

	free(d->top.head);
	for (i = 0; i < d->nparts; i++)
		free(d->parts[i].head);
	for (i = 0; i < d->nreport; i++)
		free(d->report[i]);
	buf_free(&d->out);
}

static void
build(struct dsn *d, const struct dsn_info *info, const struct dsn_rcpt *r,
    size_t n, const char *orig, size_t orig_len)
{
	memset(d, 0, sizeof(*d));
	buf_init(&d->out, BUF_UNLIMITED);
	assert_int_equal(bounce_dsn_build(info, r, n, orig, orig_len,
	    &d->out), 0);
	parse(d);
}

static void
assert_field(const char *head, const char *name, const char *want)
{
	char v[2048];

	if (field(head, name, v, sizeof(v)) == NULL)
		fail_msg("no %s field in:\n%s", name, head);
	if (strcmp(v, want) != 0)
		fail_msg("%s: \"%s\", want \"%s\"", name, v, want);
}

/* Optional: Python's email package reads it as a delivery report. */
static void
python_check(const struct dsn *d, int nrcpt, const char *first_action)
{
	char path[] = "/tmp/test_bounce_dsn.XXXXXX", cmd[2048];
	FILE *f;
	int fd, st;

	if (access("/usr/bin/python3", X_OK) != 0)
		return;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	assert_int_equal(fwrite(d->out.data, 1, d->out.len, f), d->out.len);
	fclose(f);
	snprintf_checked(cmd, sizeof(cmd), "/usr/bin/python3 -c '"
	    "import email, sys\n"
	    "from email import policy\n"
	    "m = email.message_from_binary_file(open(sys.argv[1], \"rb\"),"
	    " policy=policy.default)\n"
	    "assert m.get_content_type() == \"multipart/report\", 1\n"
	    "assert m.get_param(\"report-type\") == \"delivery-status\", 2\n"
	    "p = m.get_payload()\n"
	    "assert [x.get_content_type() for x in p] == [\"text/plain\","
	    " \"message/delivery-status\", \"text/rfc822-headers\"], 3\n"
	    "ds = p[1].get_payload()\n"
	    "assert len(ds) == 1 + int(sys.argv[2]), len(ds)\n"
	    "assert ds[1][\"Action\"] == sys.argv[3], ds[1][\"Action\"]\n"
	    "assert all(not x.defects for x in m.walk()), "
	    "[x.defects for x in m.walk()]\n"
	    "' %s %d %s", path, nrcpt, first_action);
	st = system(cmd);
	unlink(path);
	assert_int_equal(st, 0);
}

static void
test_structure(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r = {
		.address = "bob@b.test",
		.orcpt = "robert@b.test",
		.status = "5.1.1",
		.remote_mta = "mx.b.test",
		.diagnostic = "550 5.1.1 <bob@b.test>: no such user",
	};
	struct dsn d;
	char v[512];
	size_t hlen = strstr(orig_msg, "\n\n") - orig_msg + 1;

	(void)state;
	build(&d, &info, &r, 1, orig_msg, sizeof(orig_msg) - 1);

	assert_field(d.top.head, "From",
	    "Mail Delivery System <MAILER-DAEMON@mx.ours.test>");
	assert_field(d.top.head, "To", "<alice@a.test>");
	assert_field(d.top.head, "Subject",
	    "Undelivered Mail Returned to Sender");
	assert_field(d.top.head, "Date", "Mon, 23 Nov 2026 12:00:00 +0000");
	assert_field(d.top.head, "Message-ID",
	    "<1795431600.AbC_12-x.7f3a@mx.ours.test>");
	assert_field(d.top.head, "MIME-Version", "1.0");
	assert_field(d.top.head, "Auto-Submitted", "auto-replied");
	assert_null(memmem(orig_msg, sizeof(orig_msg) - 1, d.boundary,
	    strlen(d.boundary)));

	/* 1: for a person */
	assert_field(d.parts[0].head, "Content-Type",
	    "text/plain; charset=us-ascii");
	assert_true(has(&d.parts[0],
	    "<bob@b.test>: the server mx.b.test answered:\n"
	    "    550 5.1.1 <bob@b.test>: no such user\n"));

	/* 2: for a program */
	assert_field(d.parts[1].head, "Content-Type",
	    "message/delivery-status");
	assert_int_equal(d.nreport, 2);
	assert_field(d.report[0], "Reporting-MTA", "dns; mx.ours.test");
	assert_field(d.report[0], "X-Buzon-Queue-ID", "1795431600.AbC_12-x");
	assert_field(d.report[0], "Arrival-Date",
	    "Mon, 23 Nov 2026 11:00:00 +0000");
	assert_field(d.report[1], "Final-Recipient", "rfc822; bob@b.test");
	assert_field(d.report[1], "Original-Recipient",
	    "rfc822; robert@b.test");
	assert_field(d.report[1], "Action", "failed");
	assert_field(d.report[1], "Status", "5.1.1");
	assert_field(d.report[1], "Remote-MTA", "dns; mx.b.test");
	assert_field(d.report[1], "Diagnostic-Code",
	    "smtp; 550 5.1.1 <bob@b.test>: no such user");
	assert_field(d.report[1], "Last-Attempt-Date",
	    "Mon, 23 Nov 2026 12:00:00 +0000");

	/* 3: the header section exactly, never the body */
	assert_field(d.parts[2].head, "Content-Type", "text/rfc822-headers");
	assert_int_equal(d.parts[2].body_len, hlen);
	assert_memory_equal(d.parts[2].body, orig_msg, hlen);
	assert_null(memmem(d.out.data, d.out.len, "SECRET BODY", 11));
	assert_null(memmem(d.out.data, d.out.len, "not-a-boundary", 14));
	assert_null(field(d.parts[2].body, "Nothing", v, sizeof(v)));

	python_check(&d, 1, "failed");
	dsn_free(&d);
}

static void
test_injection(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r = {
		.address = "bob@b.test\r\nBcc: victim@c.test",
		.status = "5.7.1\r\nX-Status: 2.0.0",
		.remote_mta = "mx.b.test\r\nX-Mta: evil",
		.diagnostic = "550-5.7.1 first line\r\n550-X-Injected: yes\r\n"
		    "\r\nX-Injected: yes\nFrom: evil@e.test\n\n--fake--\n"
		    "\x01\x7f\xc3\xa9 end",
	};
	struct dsn d;
	char v[1024];

	(void)state;
	info.sender = "alice@a.test>\nBcc: x@y.test";
	build(&d, &info, &r, 1, orig_msg, sizeof(orig_msg) - 1);
	assert_int_equal(count_lines_starting(d.out.data, d.out.len,
	    "X-Injected"), 0);
	assert_int_equal(count_lines_starting(d.out.data, d.out.len,
	    "From: evil"), 0);
	assert_int_equal(count_lines_starting(d.out.data, d.out.len, "Bcc"),
	    0);
	assert_int_equal(count_lines_starting(d.out.data, d.out.len,
	    "X-Mta"), 0);
	assert_int_equal(count_lines_starting(d.out.data, d.out.len,
	    "X-Status"), 0);
	assert_int_equal(count_lines_starting(d.out.data, d.out.len, "--fake"),
	    0);
	assert_null(field(d.top.head, "Bcc", v, sizeof(v)));
	/* one To: with one address in it, quoted as RFC 5322 needs */
	assert_field(d.top.head, "To",
	    "<\"alice@a.test> Bcc: x\"@y.test>");
	assert_int_equal(d.nreport, 2);
	assert_field(d.report[1], "Diagnostic-Code",
	    "smtp; 550-5.7.1 first line 550-X-Injected: yes X-Injected: yes "
	    "From: evil@e.test --fake-- ???? end");
	assert_field(d.report[1], "Status", "5.0.0");
	assert_field(d.report[1], "Remote-MTA", "dns; mx.b.test??X-Mta:?evil");
	assert_null(field(d.report[1], "X-Mta", v, sizeof(v)));
	python_check(&d, 1, "failed");
	dsn_free(&d);
}

static void
test_several_recipients(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r[3] = {
		{ .address = "bob@b.test", .status = "5.1.1",
		  .remote_mta = "mx.b.test",
		  .diagnostic = "550 5.1.1 no such user" },
		{ .address = "carol@c.test", .status = "4.4.1",
		  .diagnostic = "connection timed out", .delayed = 1 },
		{ .address = "dave@d.test", .status = "5.1" /* bad */ },
	};
	struct dsn d;
	char v[512];

	(void)state;
	build(&d, &info, r, 3, orig_msg, sizeof(orig_msg) - 1);
	assert_field(d.top.head, "Subject",
	    "Undelivered Mail Returned to Sender");
	assert_int_equal(d.nreport, 4);
	assert_field(d.report[1], "Final-Recipient", "rfc822; bob@b.test");
	assert_field(d.report[1], "Action", "failed");
	assert_field(d.report[2], "Final-Recipient", "rfc822; carol@c.test");
	assert_field(d.report[2], "Action", "delayed");
	assert_field(d.report[2], "Status", "4.4.1");
	assert_null(field(d.report[2], "Remote-MTA", v, sizeof(v)));
	assert_null(field(d.report[2], "Original-Recipient", v, sizeof(v)));
	/* our own words are not an SMTP reply */
	assert_field(d.report[2], "Diagnostic-Code",
	    "X-Buzon; connection timed out");
	assert_field(d.report[3], "Final-Recipient", "rfc822; dave@d.test");
	assert_field(d.report[3], "Action", "failed");
	assert_field(d.report[3], "Status", "5.0.0");
	assert_null(field(d.report[3], "Diagnostic-Code", v, sizeof(v)));
	assert_non_null(field(d.report[3], "Last-Attempt-Date", v,
	    sizeof(v)));
	/* the person reads the failed ones, then the delayed one */
	assert_true(has(&d.parts[0],
	    "<dave@d.test>:\n    delivery failed, status 5.0.0\n"));
	assert_true((char *)memmem(d.parts[0].body, d.parts[0].body_len,
	    "<dave@d.test>", 13) < (char *)memmem(d.parts[0].body,
	    d.parts[0].body_len, "<carol@c.test>", 14));
	assert_non_null(memmem(d.parts[0].body, d.parts[0].body_len,
	    "will keep", 9));
	python_check(&d, 3, "failed");
	dsn_free(&d);
}

static void
test_all_delayed(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r[2] = {
		{ .address = "bob@b.test", .status = "4.2.2",
		  .remote_mta = "mx.b.test",
		  .diagnostic = "452 4.2.2 mailbox full", .delayed = 1 },
		{ .address = "carol@c.test", .delayed = 1 },
	};
	struct dsn d;

	(void)state;
	build(&d, &info, r, 2, orig_msg, sizeof(orig_msg) - 1);
	assert_field(d.top.head, "Subject",
	    "Delayed Mail (still being retried)");
	assert_field(d.report[1], "Action", "delayed");
	assert_field(d.report[2], "Action", "delayed");
	assert_field(d.report[2], "Status", "4.0.0");
	assert_null(memmem(d.parts[0].body, d.parts[0].body_len,
	    "could not be delivered", 22));
	python_check(&d, 2, "delayed");
	dsn_free(&d);
}

static void
test_long_lines(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r = { .address = "bob@b.test", .status = "5.0.0" };
	struct buf diag, orig;
	struct dsn d;
	const char *p, *e;
	size_t i;

	(void)state;
	buf_init(&diag, BUF_UNLIMITED);
	buf_init(&orig, BUF_UNLIMITED);
	/* words that fold, then one 3000-octet word that must be cut */
	for (i = 0; i < 60; i++)
		assert_int_equal(buf_puts(&diag, "550 word "), 0);
	for (i = 0; i < 3000; i++)
		assert_int_equal(buf_putc(&diag, 'x'), 0);
	r.diagnostic = diag.data;
	assert_int_equal(buf_puts(&orig, "Subject: "), 0);
	for (i = 0; i < 2500; i++)
		assert_int_equal(buf_putc(&orig, (char)('a' + i % 26)), 0);
	assert_int_equal(buf_puts(&orig, "\nX-8bit: caf\xc3\xa9\r\n\nbody\n"),
	    0);

	build(&d, &info, &r, 1, orig.data, orig.len);	/* checks <= 998 */
	/* the folded reply in the report keeps lines under 78 while it can */
	p = memmem(d.parts[1].body, d.parts[1].body_len, "Diagnostic-Code", 15);
	assert_non_null(p);
	for (i = 0; i < 5; i++) {
		e = strchr(p, '\n');
		assert_true(e - p <= 78);
		p = e + 1;
		assert_int_equal(*p, ' ');
	}
	/* the human text too */
	p = memmem(d.parts[0].body, d.parts[0].body_len, "    550 word", 12);
	assert_non_null(p);
	e = strchr(p, '\n');
	assert_true(e - p <= 78);
	/* the long header line continues on a tab-indented line */
	assert_int_equal(count_lines_starting(d.parts[2].body,
	    d.parts[2].body_len, "\t"), 2);
	assert_int_equal(count_lines_starting(d.parts[2].body,
	    d.parts[2].body_len, "X-8bit: caf??\n"), 1);
	assert_null(memmem(d.out.data, d.out.len, "body", 4));
	python_check(&d, 1, "failed");
	dsn_free(&d);
	buf_free(&diag);
	buf_free(&orig);
}

static void
test_header_len(void **state)
{
	(void)state;
	assert_int_equal(bounce_dsn_header_len("", 0), 0);
	assert_int_equal(bounce_dsn_header_len("\nbody\n", 6), 0);
	assert_int_equal(bounce_dsn_header_len("A: b\n\nc\n", 8), 5);
	assert_int_equal(bounce_dsn_header_len("A: b\nC: d\n", 10), 10);
	assert_int_equal(bounce_dsn_header_len("A: b", 4), 4);
}

static void
test_odd_originals(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r = { .address = "bob@b.test", .status = "5.1.1" };
	struct dsn d;

	(void)state;
	/* no header at all, and no message at all */
	build(&d, &info, &r, 1, "\nonly body\n", 11);
	assert_int_equal(d.parts[2].body_len, 0);
	assert_null(memmem(d.out.data, d.out.len, "only body", 9));
	dsn_free(&d);
	build(&d, &info, &r, 1, NULL, 0);
	assert_int_equal(d.parts[2].body_len, 0);
	dsn_free(&d);
	/* header only, no final LF */
	build(&d, &info, &r, 1, "Subject: x", 10);
	assert_int_equal(d.parts[2].body_len, 11);
	assert_memory_equal(d.parts[2].body, "Subject: x\n", 11);
	dsn_free(&d);
}

static void
test_refusals(void **state)
{
	struct dsn_info info = info_default();
	struct dsn_rcpt r = { .address = "bob@b.test", .status = "5.1.1" };
	struct dsn_rcpt nor = { .address = NULL };
	struct buf out;

	(void)state;
	buf_init(&out, 600);
	assert_int_equal(buf_puts(&out, "keep"), 0);
	errno = 0;
	assert_int_equal(bounce_dsn_build(&info, &r, 0, "", 0, &out), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(bounce_dsn_build(&info, &nor, 1, "", 0, &out), -1);
	info.sender = "";		/* never bounce a bounce */
	assert_int_equal(bounce_dsn_build(&info, &r, 1, "", 0, &out), -1);
	assert_int_equal(errno, EINVAL);
	info = info_default();
	info.reporting_mta = NULL;
	assert_int_equal(bounce_dsn_build(&info, &r, 1, "", 0, &out), -1);
	info = info_default();
	/* does not fit: out keeps what it had */
	assert_int_equal(bounce_dsn_build(&info, &r, 1, orig_msg,
	    sizeof(orig_msg) - 1, &out), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_string_equal(buf_cstr(&out), "keep");
	buf_free(&out);
	/* and it appends after what out had */
	buf_init(&out, BUF_UNLIMITED);
	assert_int_equal(buf_puts(&out, "X: y\n"), 0);
	assert_int_equal(bounce_dsn_build(&info, &r, 1, orig_msg,
	    sizeof(orig_msg) - 1, &out), 0);
	assert_memory_equal(out.data, "X: y\nFrom: Mail", 15);
	buf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_injection),
		cmocka_unit_test(test_several_recipients),
		cmocka_unit_test(test_all_delayed),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_header_len),
		cmocka_unit_test(test_odd_originals),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
