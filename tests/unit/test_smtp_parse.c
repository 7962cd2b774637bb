/*
 * test_smtp_parse.c - the SMTP command parser and the DATA scanner,
 * including every smuggling variant: only CRLF.CRLF ends the data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "smtpd/smtp_parse.h"

static void
test_command_verbs(void **state)
{
	struct smtp_cmd c;

	(void)state;
	assert_int_equal(smtp_parse_command("ehlo example.org", 16, &c), 0);
	assert_int_equal(c.verb, SMTP_EHLO);
	assert_int_equal(c.arglen, 11);
	assert_memory_equal(c.arg, "example.org", 11);

	assert_int_equal(smtp_parse_command("QUIT", 4, &c), 0);
	assert_int_equal(c.verb, SMTP_QUIT);
	assert_int_equal(c.arglen, 0);

	assert_int_equal(smtp_parse_command("MAIL FROM:<a@b.c>  ", 19, &c), 0);
	assert_int_equal(c.verb, SMTP_MAIL);
	assert_int_equal(c.arglen, 12);

	assert_int_equal(smtp_parse_command("StartTLS", 8, &c), 0);
	assert_int_equal(c.verb, SMTP_STARTTLS);

	assert_int_equal(smtp_parse_command("XYZZY", 5, &c), -1);
	assert_int_equal(c.verb, SMTP_UNKNOWN);
	assert_int_equal(smtp_parse_command("QUITX", 5, &c), -1);
	assert_int_equal(smtp_parse_command("", 0, &c), -1);
	assert_int_equal(smtp_parse_command("NOOP\0x", 6, &c), -1);
}

static void
test_mail_args(void **state)
{
	struct smtp_mail_args m;
	const char *why;
	int code;
	const char *a;

	(void)state;
	a = "FROM:<Alice@Example.ORG> SIZE=1000 BODY=8BITMIME";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), 0);
	assert_string_equal(m.from.local, "Alice");
	assert_string_equal(m.from.domain, "example.org");
	assert_int_equal(m.has_size, 1);
	assert_int_equal(m.size, 1000);
	assert_int_equal(m.body, SMTP_BODY_8BITMIME);

	a = "FROM:<>";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), 0);
	assert_string_equal(m.from.local, "");

	a = "from: <a@b.c>";	/* a common client habit */
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), 0);

	a = "FROM:<a@b.c> FOO=bar";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), -1);
	assert_int_equal(code, 555);

	a = "FROM:<a@b.c> SIZE=12x";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), -1);
	assert_int_equal(code, 501);

	a = "FROM:a@b.c";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), -1);
	assert_int_equal(code, 501);

	a = "TO:<a@b.c>";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), -1);
	assert_int_equal(code, 501);

	a = "FROM:<j\xc3\xb6rg@b.c>";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), -1);
	assert_int_equal(code, 553);
	a = "FROM:<j\xc3\xb6rg@b.c> SMTPUTF8";
	assert_int_equal(smtp_parse_mail(a, strlen(a), &m, &code, &why), 0);
	assert_int_equal(m.smtputf8, 1);
}

static void
test_rcpt_args(void **state)
{
	struct smtp_rcpt_args r;
	const char *why;
	int code;
	const char *a;

	(void)state;
	a = "TO:<bob@example.test>";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), 0);
	assert_string_equal(r.to.local, "bob");

	a = "TO:<Postmaster>";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), 0);
	assert_string_equal(r.to.local, "postmaster");
	assert_string_equal(r.to.domain, "");

	a = "TO:<@relay.test:bob@other.test>";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), 0);
	assert_string_equal(r.to.domain, "other.test");

	a = "TO:<\"bob@other.test\"@example.test>";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), 0);
	assert_true(addr_has_routing(&r.to));
	assert_string_equal(r.to.domain, "example.test");

	a = "TO:<bob@other.test@example.test>";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), 0);
	assert_true(addr_has_routing(&r.to));
	assert_string_equal(r.to.domain, "example.test");

	a = "TO:<>";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), -1);
	assert_int_equal(code, 501);

	a = "TO:<bob@example.test> NOTIFY=NEVER";
	assert_int_equal(smtp_parse_rcpt(a, strlen(a), 0, &r, &code, &why), -1);
	assert_int_equal(code, 555);
}

struct sink {
	char data[4096];
	size_t len;
	size_t limit;
};

static int
sink_out(void *arg, const char *p, size_t n)
{
	struct sink *s = arg;

	if (s->len + n > s->limit)
		return -1;
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return 0;
}

/* Feed in one go and byte by byte; both must agree. */
static void
scan(const char *in, size_t len, struct smtp_data_scanner *out_sc,
    struct sink *out, size_t *consumed)
{
	struct smtp_data_scanner sc2;
	struct sink s2;
	size_t i, used = 0;
	int of = 0, of2 = 0;

	memset(out, 0, sizeof(*out));
	out->limit = sizeof(out->data);
	smtp_data_init(out_sc);
	*consumed = smtp_data_feed(out_sc, in, len, sink_out, out, &of);

	memset(&s2, 0, sizeof(s2));
	s2.limit = sizeof(s2.data);
	smtp_data_init(&sc2);
	for (i = 0; i < len && !sc2.done; i++)
		used += smtp_data_feed(&sc2, in + i, 1, sink_out, &s2, &of2);
	assert_int_equal(used, *consumed);
	assert_int_equal(sc2.done, out_sc->done);
	assert_int_equal(sc2.bare_newline, out_sc->bare_newline);
	/* A refused message's bytes are dropped; only good output must agree. */
	if (!out_sc->bare_newline) {
		assert_int_equal(s2.len, out->len);
		assert_memory_equal(s2.data, out->data, out->len);
	}
}

static void
test_data_plain(void **state)
{
	static const char in[] = "Subject: hi\r\n\r\n..dot\r\nline\r\n.\r\nQUIT\r\n";
	struct smtp_data_scanner sc;
	struct sink o;
	size_t used;

	(void)state;
	scan(in, sizeof(in) - 1, &sc, &o, &used);
	assert_true(sc.done);
	assert_false(sc.bare_newline);
	assert_int_equal(used, sizeof(in) - 1 - 6);	/* QUIT\r\n left */
	assert_int_equal(o.len, strlen("Subject: hi\n\n.dot\nline\n"));
	assert_memory_equal(o.data, "Subject: hi\n\n.dot\nline\n", o.len);
	assert_int_equal(sc.nlines, 4);
	assert_int_equal(sc.size, o.len);
}

static void
test_data_empty(void **state)
{
	struct smtp_data_scanner sc;
	struct sink o;
	size_t used;

	(void)state;
	scan(".\r\n", 3, &sc, &o, &used);
	assert_true(sc.done);
	assert_int_equal(o.len, 0);
	assert_int_equal(used, 3);
}

/* None of these may end the data; each marks it bad. */
static void
test_data_smuggling(void **state)
{
	static const char *const tricks[] = {
		"a\n.\nMAIL FROM:<x@y>\r\n",
		"a\r.\rMAIL FROM:<x@y>\r\n",
		"a\n.\r\nMAIL FROM:<x@y>\r\n",
		"a\r\n.\nMAIL FROM:<x@y>\r\n",
		"a\r\n.\rMAIL FROM:<x@y>\r\n",
		"a\r\r\n.\r\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(tricks) / sizeof(tricks[0]); i++) {
		struct smtp_data_scanner sc;
		struct sink o;
		size_t used;

		scan(tricks[i], strlen(tricks[i]), &sc, &o, &used);
		if (sc.done)
			fail_msg("trick %zu ended the data", i);
		assert_true(sc.bare_newline);
		assert_int_equal(used, strlen(tricks[i]));
	}
}

static void
test_data_bad_then_end(void **state)
{
	static const char in[] = "a\nb\r\n.\r\nNEXT";
	struct smtp_data_scanner sc;
	struct sink o;
	size_t used;

	(void)state;
	scan(in, sizeof(in) - 1, &sc, &o, &used);
	assert_true(sc.done);
	assert_true(sc.bare_newline);
	assert_int_equal(used, sizeof(in) - 1 - 4);
}

static void
test_data_overflow(void **state)
{
	static const char in[] = "0123456789\r\n0123456789\r\n.\r\n";
	struct smtp_data_scanner sc;
	struct sink o;
	size_t used;
	int of = 0;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.limit = 5;
	smtp_data_init(&sc);
	used = smtp_data_feed(&sc, in, sizeof(in) - 1, sink_out, &o, &of);
	assert_true(of);
	assert_true(sc.done);
	assert_int_equal(used, sizeof(in) - 1);
	assert_int_equal(sc.size, 22);	/* counted even when not kept */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command_verbs),
		cmocka_unit_test(test_mail_args),
		cmocka_unit_test(test_rcpt_args),
		cmocka_unit_test(test_data_plain),
		cmocka_unit_test(test_data_empty),
		cmocka_unit_test(test_data_smuggling),
		cmocka_unit_test(test_data_bad_then_end),
		cmocka_unit_test(test_data_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
