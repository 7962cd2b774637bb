/*
 * test_imap_search.c - SEARCH programs (imapd/imap_search.h): every key
 * parses, NOT / OR / ( ) nesting, RETURN and CHARSET, bad syntax and the
 * limits; the evaluator on synthetic metadata and on small messages
 * (RFC 2047 subjects, base64 and quoted-printable bodies, case folding,
 * INTERNALDATE in the server's zone and Date: in its own zone).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "imapd/imap_parser.h"
#include "imapd/imap_search.h"
#include "store/mbox_index.h"

static const struct imap_parser_limits lim = {
	65536, 1 << 20, 0, 20, 10000
};

struct parsed {
	struct imap_parser *ip;
	struct search_program prog;
	const char *why;
	int rc;
};

/* Parse "t SEARCH <args>" and build a program from it. */
static int
parse(struct parsed *p, const char *args)
{
	struct buf line;
	const struct imap_command *cmd;
	size_t used;

	memset(p, 0, sizeof(*p));
	p->ip = imap_parser_new(&lim);
	assert_non_null(p->ip);
	buf_init(&line, BUF_UNLIMITED);
	buf_printf(&line, "t SEARCH %s\r\n", args);
	if (imap_parser_feed(p->ip, line.data, line.len, &used) !=
	    IMAP_PARSE_DONE)
		fail_msg("imap_parser refused \"%s\": %s", args,
		    imap_parser_error(p->ip));
	buf_free(&line);
	cmd = imap_parser_command(p->ip);
	p->rc = search_parse(&p->prog, cmd->args, cmd->count, &p->why);
	return p->rc;
}

static void
done(struct parsed *p)
{
	search_program_free(&p->prog);
	imap_parser_free(p->ip);
}

static void
parse_ok(struct parsed *p, const char *args)
{
	if (parse(p, args) != 0)
		fail_msg("search_parse refused \"%s\" (%d): %s", args, p->rc,
		    p->why);
}

static void
parse_bad(const char *args, int want)
{
	struct parsed p;

	if (parse(&p, args) != want)
		fail_msg("\"%s\": got %d, want %d", args, p.rc, want);
	done(&p);
}

static struct search_msg
msg(uint32_t seq, uint32_t uid, unsigned flags, const char *kw)
{
	struct search_msg m;

	memset(&m, 0, sizeof(m));
	m.seq = seq;
	m.uid = uid;
	m.flags = flags;
	m.keywords = kw;
	m.size = 1000;
	m.modseq = 5;
	m.internaldate = 1700000000;	/* 2023-11-14 22:13:20 UTC */
	return m;
}

/* Metadata answer for args on m (resolved against 10 messages, UID 50). */
static int
meta(const char *args, const struct search_msg *m)
{
	struct parsed p;
	int r;

	parse_ok(&p, args);
	search_program_resolve(&p.prog, 10, 50);
	r = search_eval_meta(&p.prog, m);
	done(&p);
	return r;
}

/* Full answer: metadata first, content when asked for. */
static int
full(const char *args, const char *message)
{
	struct search_msg m = msg(1, 1, 0, "");
	struct parsed p;
	int r;

	parse_ok(&p, args);
	search_program_resolve(&p.prog, 1, 1);
	r = search_eval_meta(&p.prog, &m);
	if (r < 0)
		r = search_eval_content(&p.prog, &m, message, strlen(message));
	done(&p);
	return r;
}

static void
test_every_key_parses(void **state)
{
	static const char *const ok[] = {
		"ALL", "ANSWERED", "BCC x", "BEFORE 1-Feb-1994", "BODY x",
		"CC x", "DELETED", "DRAFT", "FLAGGED", "FROM \"a b\"",
		"HEADER X-Foo bar", "HEADER \"X-Foo\" \"\"", "KEYWORD $Junk",
		"LARGER 100", "MODSEQ 0", "MODSEQ \"/flags/\\\\draft\" all 7",
		"NEW", "NOT SEEN", "OLD", "ON 01-feb-1994", "OR SEEN DRAFT",
		"RECENT", "SEEN", "SENTBEFORE \"1-Feb-1994\"",
		"SENTON 1-Feb-1994", "SENTSINCE 1-Feb-1994",
		"SINCE 31-Dec-2023", "SMALLER 5", "SUBJECT {3+}\r\nabc",
		"TEXT x", "TO x", "UID 1:*", "UNANSWERED", "UNDELETED",
		"UNDRAFT", "UNFLAGGED", "UNKEYWORD foo", "UNSEEN", "1,3:*",
		"*", "(SEEN)", "all unseen", "CHARSET UTF-8 BODY x",
		"CHARSET us-ascii ALL", "RETURN (MIN MAX) ALL",
		"RETURN () CHARSET UTF-8 SEEN",
	};
	struct parsed p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		parse_ok(&p, ok[i]);
		done(&p);
	}
	parse_ok(&p, "RETURN () ALL");
	assert_true(p.prog.esearch);
	assert_int_equal(p.prog.ret, SEARCH_RET_ALL);
	done(&p);
	parse_ok(&p, "RETURN (MIN COUNT) MODSEQ 3");
	assert_int_equal(p.prog.ret, SEARCH_RET_MIN | SEARCH_RET_COUNT);
	assert_true(p.prog.has_modseq);
	assert_false(p.prog.needs_content);
	done(&p);
	parse_ok(&p, "SEEN SUBJECT x");
	assert_false(p.prog.esearch);
	assert_true(p.prog.needs_content);
	done(&p);
}

static void
test_bad_syntax(void **state)
{
	static const char *const bad[] = {
		"", "FOO", "BEFORE", "BEFORE 1-Feb-94", "BEFORE 32-Feb-1994",
		"BEFORE 1-Fob-1994", "BEFORE 1-Feb-1994x", "LARGER x",
		"LARGER", "NOT", "OR SEEN", "OR", "()", "UID x",
		"UID", "0", "1:0x", "$,1", "HEADER", "HEADER X", "HEADER \"\" x",
		"KEYWORD", "KEYWORD \"q\"", "KEYWORD (a)", "SUBJECT",
		"SUBJECT (a)", "MODSEQ", "MODSEQ x", "MODSEQ \"/f\" bogus 1",
		"RETURN (SAVE FOO) ALL", "RETURN (FOO) ALL", "RETURN ALL ALL",
		"CHARSET", "CHARSET (x) ALL", "BODY[] x", "RETURN () ",
		"CHARSET UTF-8",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i], SEARCH_ERR_SYNTAX);
	parse_bad("CHARSET KOI8-R ALL", SEARCH_ERR_CHARSET);
	parse_bad("RETURN (ALL) CHARSET ISO-8859-1 SEEN", SEARCH_ERR_CHARSET);
}

static void
test_limits(void **state)
{
	struct buf b;
	struct parsed p;
	size_t i;

	(void)state;
	/* NOT nests without lists: the program's own depth limit */
	buf_init(&b, BUF_UNLIMITED);
	for (i = 0; i < SEARCH_MAX_DEPTH - 1; i++)
		buf_puts(&b, "NOT ");
	buf_puts(&b, "SEEN");
	parse_ok(&p, buf_cstr(&b));
	done(&p);
	buf_reset(&b);
	for (i = 0; i < SEARCH_MAX_DEPTH; i++)
		buf_puts(&b, "NOT ");
	buf_puts(&b, "SEEN");
	parse_bad(buf_cstr(&b), SEARCH_ERR_SYNTAX);
	/* OR chains likewise */
	buf_reset(&b);
	for (i = 0; i < 200; i++)
		buf_puts(&b, "OR SEEN ");
	buf_puts(&b, "DRAFT");
	parse_bad(buf_cstr(&b), SEARCH_ERR_SYNTAX);
	/* number of keys (the top group counts as one) */
	buf_reset(&b);
	for (i = 0; i < SEARCH_MAX_KEYS - 1; i++)
		buf_puts(&b, i ? " SEEN" : "SEEN");
	parse_ok(&p, buf_cstr(&b));
	assert_int_equal(p.prog.n, SEARCH_MAX_KEYS);
	done(&p);
	buf_puts(&b, " SEEN");
	parse_bad(buf_cstr(&b), SEARCH_ERR_SYNTAX);
	buf_free(&b);
}

static void
test_meta(void **state)
{
	struct search_msg m = msg(3, 30, MBOX_F_SEEN | MBOX_F_FLAGGED,
	    "$Junk Work");
	struct search_msg r = msg(10, 50, 0, NULL);

	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	assert_int_equal(meta("ALL", &m), 1);
	assert_int_equal(meta("SEEN FLAGGED", &m), 1);
	assert_int_equal(meta("SEEN ANSWERED", &m), 0);
	assert_int_equal(meta("UNSEEN", &m), 0);
	assert_int_equal(meta("UNANSWERED UNDELETED UNDRAFT", &m), 1);
	assert_int_equal(meta("UNFLAGGED", &m), 0);
	assert_int_equal(meta("DELETED", &m), 0);
	assert_int_equal(meta("KEYWORD $junk", &m), 1);
	assert_int_equal(meta("KEYWORD work", &m), 1);
	assert_int_equal(meta("KEYWORD Wor", &m), 0);
	assert_int_equal(meta("UNKEYWORD $Junk", &m), 0);
	assert_int_equal(meta("UNKEYWORD Other", &m), 1);
	assert_int_equal(meta("KEYWORD x", &r), 0);
	assert_int_equal(meta("LARGER 999 SMALLER 1001", &m), 1);
	assert_int_equal(meta("LARGER 1000", &m), 0);
	assert_int_equal(meta("SMALLER 1000", &m), 0);
	assert_int_equal(meta("MODSEQ 5", &m), 1);
	assert_int_equal(meta("MODSEQ 6", &m), 0);
	/* recent / new / old */
	r.recent = 1;
	assert_int_equal(meta("RECENT", &r), 1);
	assert_int_equal(meta("NEW", &r), 1);
	assert_int_equal(meta("OLD", &r), 0);
	r.flags = MBOX_F_SEEN;
	assert_int_equal(meta("NEW", &r), 0);
	assert_int_equal(meta("OLD", &m), 1);
	assert_int_equal(meta("RECENT", &m), 0);
	/* sequence sets and UIDs, "*" = 10 / 50 */
	assert_int_equal(meta("3", &m), 1);
	assert_int_equal(meta("1,4:*", &m), 0);
	assert_int_equal(meta("*", &r), 1);
	assert_int_equal(meta("11:*", &r), 1);	/* = 10:11, clipped */
	assert_int_equal(meta("2:4", &m), 1);
	assert_int_equal(meta("UID 30", &m), 1);
	assert_int_equal(meta("UID 31:*", &m), 0);
	assert_int_equal(meta("UID *", &r), 1);
	assert_int_equal(meta("99", &m), 0);	/* beyond: no match, no BAD */
	/* NOT / OR / groups */
	assert_int_equal(meta("NOT SEEN", &m), 0);
	assert_int_equal(meta("NOT NOT SEEN", &m), 1);
	assert_int_equal(meta("OR ANSWERED DRAFT", &m), 0);
	assert_int_equal(meta("OR ANSWERED FLAGGED", &m), 1);
	assert_int_equal(meta("OR (ANSWERED) (SEEN NOT DELETED)", &m), 1);
	assert_int_equal(meta("NOT (SEEN FLAGGED)", &m), 0);
	assert_int_equal(meta("NOT (SEEN DRAFT)", &m), 1);
	assert_int_equal(meta("OR OR DRAFT DELETED OR ANSWERED 3", &m), 1);
	/* INTERNALDATE 2023-11-14 in the server's zone (UTC here) */
	assert_int_equal(meta("ON 14-Nov-2023", &m), 1);
	assert_int_equal(meta("SINCE 14-Nov-2023", &m), 1);
	assert_int_equal(meta("SINCE 15-Nov-2023", &m), 0);
	assert_int_equal(meta("BEFORE 14-Nov-2023", &m), 0);
	assert_int_equal(meta("BEFORE 15-Nov-2023", &m), 1);
	setenv("TZ", "JST-9", 1);	/* 07:13 on the 15th there */
	tzset();
	assert_int_equal(meta("ON 15-Nov-2023", &m), 1);
	assert_int_equal(meta("ON 14-Nov-2023", &m), 0);
	setenv("TZ", "UTC", 1);
	tzset();
	/* content keys: undecided on metadata, unless metadata suffices */
	assert_int_equal(meta("SUBJECT x", &m), -1);
	assert_int_equal(meta("SUBJECT x DRAFT", &m), 0);
	assert_int_equal(meta("OR SUBJECT x SEEN", &m), 1);
	assert_int_equal(meta("NOT BODY x", &m), -1);
	assert_int_equal(meta("SENTON 1-Jan-2000", &m), -1);
}

static const char plain[] =
    "Date: Tue, 1 Jul 2003 23:52:37 -0700\n"
    "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <pirard@example.org>\n"
    "To: Bob <bob@example.test>, carol@example.test\n"
    "Cc: dave@example.test\n"
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?iso-8859-1?q?K=F6ln?=\n"
    "X-Folded: first line\n"
    "  continued HERE\n"
    "\n"
    "Hello World, this is the body.\n";

static const char multipart[] =
    "From: x@example.test\n"
    "Subject: parts\n"
    "Date: 5 Mar 98 10:00 GMT\n"
    "MIME-Version: 1.0\n"
    "Content-Type: multipart/mixed; boundary=b\n"
    "\n"
    "preamble secret\n"
    "--b\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "w4RwZmVsIHVuZCBCaXJuZW4K\n"		/* "Äpfel und Birnen\n" */
    "--b\n"
    "Content-Type: text/html; charset=iso-8859-1\n"
    "Content-Transfer-Encoding: quoted-printable\n"
    "\n"
    "<p>Stra=DFe und Gr=FC=\n"
    "n</p>\n"
    "--b\n"
    "Content-Type: application/octet-stream\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "aGlkZGVuIHRleHQK\n"			/* "hidden text" */
    "--b\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: inner subject\n"
    "\n"
    "inner body words\n"
    "--b--\n";

static void
test_content(void **state)
{
	(void)state;
	/* RFC 2047 in headers, decoded then folded */
	assert_int_equal(full("SUBJECT \"grüße\"", plain), 1);
	assert_int_equal(full("SUBJECT {7+}\r\nGRÜßE", plain), 1);
	assert_int_equal(full("SUBJECT \"köln\"", plain), 1);
	assert_int_equal(full("SUBJECT \"GRÜSSE\"", plain), 0);
	assert_int_equal(full("SUBJECT R3LDvMOfZQ", plain), 0);
	assert_int_equal(full("FROM \"andré\"", plain), 1);
	assert_int_equal(full("FROM PIRARD@EXAMPLE", plain), 1);
	assert_int_equal(full("TO carol", plain), 1);
	assert_int_equal(full("CC dave", plain), 1);
	assert_int_equal(full("CC bob", plain), 0);
	assert_int_equal(full("BCC x", plain), 0);
	assert_int_equal(full("BCC \"\"", plain), 0);	/* no Bcc field */
	assert_int_equal(full("HEADER cc \"\"", plain), 1);
	assert_int_equal(full("HEADER X-FOLDED \"line  continued here\"",
	    plain), 1);
	assert_int_equal(full("HEADER X-Missing \"\"", plain), 0);
	/* BODY is the body only; TEXT includes the header */
	assert_int_equal(full("BODY \"hello world\"", plain), 1);
	assert_int_equal(full("BODY Pirard", plain), 0);
	assert_int_equal(full("TEXT Pirard", plain), 1);
	assert_int_equal(full("TEXT \"subject: grüße\"", plain), 1);
	assert_int_equal(full("TEXT \"the body\"", plain), 1);
	assert_int_equal(full("NOT BODY hello", plain), 0);
	assert_int_equal(full("OR BODY nothing SUBJECT \"köln\"", plain), 1);
	/* SENT*: the date as written, in its own zone (the 1st, not the 2nd) */
	assert_int_equal(full("SENTON 1-Jul-2003", plain), 1);
	assert_int_equal(full("SENTBEFORE 2-Jul-2003", plain), 1);
	assert_int_equal(full("SENTBEFORE 1-Jul-2003", plain), 0);
	assert_int_equal(full("SENTSINCE 1-Jul-2003", plain), 1);
	assert_int_equal(full("SENTSINCE 2-Jul-2003", plain), 0);
	assert_int_equal(full("SENTON 5-Mar-1998", multipart), 1);
	assert_int_equal(full("SENTON 1-Jan-2000", "Subject: x\n\nb\n"), 0);
	assert_int_equal(full("NOT SENTON 1-Jan-2000", "Subject: x\n\nb\n"), 1);
	/* base64 and quoted-printable parts, charsets, case folding */
	assert_int_equal(full("BODY {6+}\r\näpfel", multipart), 1);
	assert_int_equal(full("BODY \"UND BIRNEN\"", multipart), 1);
	assert_int_equal(full("BODY w4RwZmVs", multipart), 0);
	assert_int_equal(full("BODY {7+}\r\nSTRAßE", multipart), 1);
	assert_int_equal(full("BODY {5+}\r\ngrün", multipart), 1);	/* soft break */
	assert_int_equal(full("BODY \"hidden text\"", multipart), 0);
	assert_int_equal(full("BODY secret", multipart), 0);	/* preamble */
	assert_int_equal(full("BODY \"inner body\"", multipart), 1);
	assert_int_equal(full("BODY \"inner subject\"", multipart), 0);
	assert_int_equal(full("TEXT \"inner subject\"", multipart), 1);
	assert_int_equal(full("SUBJECT inner", multipart), 0);
	/* an empty message and an empty needle */
	assert_int_equal(full("BODY \"\"", ""), 1);
	assert_int_equal(full("SUBJECT x", ""), 0);
	assert_int_equal(full("TEXT x", ""), 0);
}

static void
test_dates(void **state)
{
	(void)state;
	assert_int_equal(search_parse_date("1-Feb-1994", 10),
	    search_ymd(1994, 2, 1));
	assert_int_equal(search_parse_date("01-FEB-1994", 11),
	    search_ymd(1994, 2, 1));
	assert_int_equal(search_parse_date("1-Feb-19940", 11), -1);
	assert_int_equal(search_parse_date("1-Feb-1994", 9), -1);
	assert_int_equal(search_parse_date("0-Feb-1994", 10), -1);
	assert_int_equal(search_parse_date("", 0), -1);
	assert_true(search_ymd(1994, 2, 1) < search_ymd(1994, 2, 2));
	assert_true(search_ymd(1994, 2, 28) < search_ymd(1994, 3, 1));
	assert_true(search_ymd(1994, 12, 31) < search_ymd(1995, 1, 1));
	assert_int_equal(search_parse_sent_date("Tue, 1 Jul 2003 10:52:37 "
	    "+0200", 31), search_ymd(2003, 7, 1));
	assert_int_equal(search_parse_sent_date(" 5 Mar 98 10:00 GMT", 19),
	    search_ymd(1998, 3, 5));
	assert_int_equal(search_parse_sent_date("5 Mar 49", 8),
	    search_ymd(2049, 3, 5));
	assert_int_equal(search_parse_sent_date("5 Mar 103", 9),
	    search_ymd(2003, 3, 5));
	assert_int_equal(search_parse_sent_date("Tue 1 Jul 2003", 14), -1);
	assert_int_equal(search_parse_sent_date("yesterday", 9), -1);
	assert_int_equal(search_parse_sent_date("1 Jul 20031", 11), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_key_parses),
		cmocka_unit_test(test_bad_syntax),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_content),
		cmocka_unit_test(test_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
