/*
 * test_config.c - cmocka tests for common/config.c (buzon.conf parser).
 *
 * Covers: DESIGN.md defaults; every key type (string, size, duration,
 * on/off, whole number, listen, spf_reject, host:port); error messages
 * that name "FILE:LINE" and the key; the first listen line of a section
 * replacing that section's defaults; IPv6 listeners; listener kinds in the
 * wrong section; comments, blank lines, CRLF line ends; over-long values;
 * input that is not NUL-terminated; config_load() on a real file.
 * Must never depend on the machine's /etc/buzon.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/config.h"

#define KB 1024ULL
#define MB (1024ULL * 1024)
#define GB (1024ULL * 1024 * 1024)

static struct config cfg;
static char err[1024];

/* Parse a C string on top of the defaults; returns config_parse's result. */
static int
parse(const char *text)
{
	config_defaults(&cfg);
	err[0] = '\0';
	return config_parse(&cfg, text, strlen(text), "test.conf", err,
	    sizeof(err));
}

/* Expect success; on failure show the error text. */
static void
parse_ok(const char *text)
{
	int r = parse(text);

	if (r != 0)
		fail_msg("config_parse(\"%s\") failed: %s", text, err);
}

/* Expect failure with an error naming "test.conf:LINE" and containing want. */
static void
parse_fails(const char *text, unsigned line, const char *want)
{
	char prefix[64];
	int r = parse(text);

	if (r != -1)
		fail_msg("config_parse(\"%s\") returned %d, expected -1", text, r);
	snprintf(prefix, sizeof(prefix), "test.conf:%u:", line);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error for \"%s\" is \"%s\", expected it to start with \"%s\"",
		    text, err, prefix);
	if (want != NULL && strstr(err, want) == NULL)
		fail_msg("error for \"%s\" is \"%s\", expected it to contain \"%s\"",
		    text, err, want);
}

/* ---- defaults ---- */

static void
test_defaults(void **state)
{
	(void)state;
	config_defaults(&cfg);
	assert_true(cfg.hostname[0] != '\0');
	assert_string_equal(cfg.state_dir, "/var/lib/buzon");
	assert_string_equal(cfg.database, "/var/lib/buzon/buzon.db");
	assert_string_equal(cfg.mail_dir, "/var/lib/buzon/mail");
	assert_string_equal(cfg.queue_dir, "/var/spool/buzon/queue");
	assert_string_equal(cfg.user, "vmail");
	assert_string_equal(cfg.tls_cert, "/etc/buzon/tls/fullchain.pem");
	assert_string_equal(cfg.tls_key, "/etc/buzon/tls/privkey.pem");
	assert_string_equal(cfg.public_ip, "");
	assert_string_equal(cfg.public_ip6, "");

	assert_int_equal(cfg.smtpd_listen.n, 3);
	assert_int_equal(cfg.smtpd_listen.l[0].port, 25);
	assert_int_equal(cfg.smtpd_listen.l[0].kind, LISTEN_SMTP);
	assert_string_equal(cfg.smtpd_listen.l[0].host, "0.0.0.0");
	assert_int_equal(cfg.smtpd_listen.l[1].port, 587);
	assert_int_equal(cfg.smtpd_listen.l[1].kind, LISTEN_SUBMISSION);
	assert_int_equal(cfg.smtpd_listen.l[2].port, 465);
	assert_int_equal(cfg.smtpd_listen.l[2].kind, LISTEN_SUBMISSIONS);
	assert_true(cfg.max_message_size == 50 * MB);
	assert_string_equal(cfg.relayhost, "");
	assert_string_equal(cfg.relayhost_user, "");
	assert_true(cfg.queue_lifetime == 5 * 86400);
	assert_int_equal(cfg.max_recipients, 100);
	assert_true(cfg.max_connections_per_ip > 0);

	assert_int_equal(cfg.imapd_listen.n, 2);
	assert_int_equal(cfg.imapd_listen.l[0].port, 143);
	assert_int_equal(cfg.imapd_listen.l[0].kind, LISTEN_IMAP);
	assert_int_equal(cfg.imapd_listen.l[1].port, 993);
	assert_int_equal(cfg.imapd_listen.l[1].kind, LISTEN_IMAPS);
	assert_int_equal(cfg.pop3d_listen.n, 2);
	assert_int_equal(cfg.pop3d_listen.l[0].port, 110);
	assert_int_equal(cfg.pop3d_listen.l[0].kind, LISTEN_POP3);
	assert_int_equal(cfg.pop3d_listen.l[1].port, 995);
	assert_int_equal(cfg.pop3d_listen.l[1].kind, LISTEN_POP3S);

	assert_int_equal(cfg.spf, 1);
	assert_int_equal(cfg.dkim_verify, 1);
	assert_int_equal(cfg.dmarc, 1);
	assert_int_equal(cfg.spf_reject_fail, 1);
	assert_string_equal(cfg.dnsbl, "zen.spamhaus.org");
	assert_string_equal(cfg.dnsbl_allow, "");
	assert_int_equal(cfg.dmarc_reports, 0);
}

static void
test_empty_input_keeps_defaults(void **state)
{
	(void)state;
	parse_ok("");
	assert_int_equal(cfg.smtpd_listen.n, 3);
	assert_true(cfg.max_message_size == 50 * MB);
	parse_ok("\n\n   \n\t\n");
	assert_int_equal(cfg.imapd_listen.n, 2);
}

/* ---- string keys ---- */

static void
test_string_keys(void **state)
{
	(void)state;
	parse_ok("hostname = mail.example.test\n"
	    "state_dir = /tmp/s\n"
	    "database = /tmp/s/buzon.db\n"
	    "mail_dir = /tmp/m\n"
	    "queue_dir = /tmp/q\n"
	    "user =\n"
	    "tls_cert = /tmp/c.pem\n"
	    "tls_key=/tmp/k.pem\n"
	    "public_ip = 192.0.2.1\n"
	    "public_ip6 = 2001:db8::1\n");
	assert_string_equal(cfg.hostname, "mail.example.test");
	assert_string_equal(cfg.state_dir, "/tmp/s");
	assert_string_equal(cfg.database, "/tmp/s/buzon.db");
	assert_string_equal(cfg.mail_dir, "/tmp/m");
	assert_string_equal(cfg.queue_dir, "/tmp/q");
	assert_string_equal(cfg.user, "");
	assert_string_equal(cfg.tls_cert, "/tmp/c.pem");
	assert_string_equal(cfg.tls_key, "/tmp/k.pem");
	assert_string_equal(cfg.public_ip, "192.0.2.1");
	assert_string_equal(cfg.public_ip6, "2001:db8::1");
}

static void
test_string_inner_spaces_kept_outer_trimmed(void **state)
{
	(void)state;
	parse_ok("[policy]\n  dnsbl   =   zen.spamhaus.org   bl.example.test \t\n");
	assert_string_equal(cfg.dnsbl, "zen.spamhaus.org   bl.example.test");
	parse_ok("[policy]\ndnsbl =\n");
	assert_string_equal(cfg.dnsbl, "");
}

static void
test_later_value_wins(void **state)
{
	(void)state;
	parse_ok("hostname = a.test\nhostname = b.test\n");
	assert_string_equal(cfg.hostname, "b.test");
}

/* ---- sizes ---- */

static void
test_size_values(void **state)
{
	(void)state;
	parse_ok("[smtpd]\nmax_message_size = 1M\n");
	assert_true(cfg.max_message_size == MB);
	parse_ok("[smtpd]\nmax_message_size = 512K\n");
	assert_true(cfg.max_message_size == 512 * KB);
	parse_ok("[smtpd]\nmax_message_size = 512k\n");
	assert_true(cfg.max_message_size == 512 * KB);
	parse_ok("[smtpd]\nmax_message_size = 2G\n");
	assert_true(cfg.max_message_size == 2 * GB);
	parse_ok("[smtpd]\nmax_message_size = 12345\n");
	assert_true(cfg.max_message_size == 12345);
}

static void
test_size_bad(void **state)
{
	(void)state;
	parse_fails("[smtpd]\nmax_message_size = lots\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size = 10X\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size = 10MB\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size = -1\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size =\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size = M\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size = 99999999999999999999\n", 2, "size");
	parse_fails("[smtpd]\nmax_message_size = 99999999999G\n", 2, "size");
}

static void
test_parse_size_direct(void **state)
{
	uint64_t v = 7;

	(void)state;
	assert_int_equal(config_parse_size("50M", 3, &v), 0);
	assert_true(v == 50 * MB);
	/* len is honoured: "50Mxyz" with len 3 is "50M" */
	assert_int_equal(config_parse_size("50Mxyz", 3, &v), 0);
	assert_true(v == 50 * MB);
	assert_int_equal(config_parse_size("0", 1, &v), 0);
	assert_true(v == 0);
	v = 7;
	assert_int_equal(config_parse_size("", 0, &v), -1);
	assert_int_equal(config_parse_size("1.5M", 4, &v), -1);
	assert_int_equal(config_parse_size(" 1M", 3, &v), -1);
	assert_int_equal(config_parse_size("1000000000000000000", 19, &v), 0);
	assert_true(v == 1000000000000000000ULL);
	assert_int_equal(config_parse_size("18446744073709551616", 20, &v), -1);
	assert_int_equal(config_parse_size("17179869184G", 12, &v), -1);
}

/* ---- durations ---- */

static void
test_duration_values(void **state)
{
	uint64_t v;

	(void)state;
	parse_ok("[smtpd]\nqueue_lifetime = 5d\n");
	assert_true(cfg.queue_lifetime == 5 * 86400);
	parse_ok("[smtpd]\nqueue_lifetime = 2h\n");
	assert_true(cfg.queue_lifetime == 7200);
	parse_ok("[smtpd]\nqueue_lifetime = 10m\n");
	assert_true(cfg.queue_lifetime == 600);
	parse_ok("[smtpd]\nqueue_lifetime = 30s\n");
	assert_true(cfg.queue_lifetime == 30);
	parse_ok("[smtpd]\nqueue_lifetime = 45\n");
	assert_true(cfg.queue_lifetime == 45);
	parse_fails("[smtpd]\nqueue_lifetime = 5w\n", 2, "time");
	parse_fails("[smtpd]\nqueue_lifetime = soon\n", 2, "time");
	assert_int_equal(config_parse_duration("3d", 2, &v), 0);
	assert_true(v == 3 * 86400);
	assert_int_equal(config_parse_duration("3D", 2, &v), -1);
}

/* ---- on/off ---- */

static void
test_onoff_values(void **state)
{
	(void)state;
	parse_ok("[policy]\nspf = off\ndkim_verify = off\ndmarc = off\n"
	    "dmarc_reports = on\n");
	assert_int_equal(cfg.spf, 0);
	assert_int_equal(cfg.dkim_verify, 0);
	assert_int_equal(cfg.dmarc, 0);
	assert_int_equal(cfg.dmarc_reports, 1);
	parse_ok("[policy]\nspf = OFF\ndmarc = On\n");
	assert_int_equal(cfg.spf, 0);
	assert_int_equal(cfg.dmarc, 1);
	parse_fails("[policy]\nspf = yes\n", 2, "on or off");
	parse_fails("[policy]\nspf = 1\n", 2, "on or off");
	parse_fails("[policy]\nspf = offf\n", 2, "on or off");
	parse_fails("[policy]\nspf =\n", 2, "on or off");
}

/* ---- whole numbers ---- */

static void
test_uint_values(void **state)
{
	(void)state;
	parse_ok("max_connections_per_ip = 3\n[smtpd]\nmax_recipients = 7\n"
	    "delivery_threads = 4\n");
	assert_int_equal(cfg.max_connections_per_ip, 3);
	assert_int_equal(cfg.max_recipients, 7);
	assert_int_equal(cfg.delivery_threads, 4);
	parse_ok("[smtpd]\nmax_recipients = 1000000\n");
	assert_int_equal(cfg.max_recipients, 1000000);
	parse_ok("[smtpd]\nmax_recipients = 1\n");
	assert_int_equal(cfg.max_recipients, 1);
	parse_fails("[smtpd]\nmax_recipients = 0\n", 2, "whole number");
	parse_fails("[smtpd]\nmax_recipients = 1000001\n", 2, "whole number");
	parse_fails("[smtpd]\nmax_recipients = 10s\n", 2, "whole number");
	parse_fails("[smtpd]\nmax_recipients = -5\n", 2, "whole number");
	parse_fails("[smtpd]\nmax_recipients = many\n", 2, "whole number");
	parse_fails("max_connections_per_ip = 3x\n", 1, "whole number");
}

/* ---- spf_reject ---- */

static void
test_spf_reject(void **state)
{
	(void)state;
	parse_ok("[policy]\nspf_reject = never\n");
	assert_int_equal(cfg.spf_reject_fail, 0);
	parse_ok("[policy]\nspf_reject = fail\n");
	assert_int_equal(cfg.spf_reject_fail, 1);
	parse_fails("[policy]\nspf_reject = softfail\n", 2, "fail or never");
}

/* ---- host:port ---- */

static void
test_relayhost(void **state)
{
	(void)state;
	parse_ok("[smtpd]\nrelayhost = smtp.example.test:587\n"
	    "relayhost_user = u\nrelayhost_password = p w\n");
	assert_string_equal(cfg.relayhost, "smtp.example.test:587");
	assert_string_equal(cfg.relayhost_user, "u");
	assert_string_equal(cfg.relayhost_password, "p w");
	parse_ok("[smtpd]\nrelayhost = [2001:db8::1]:25\n");
	assert_string_equal(cfg.relayhost, "[2001:db8::1]:25");
	parse_ok("[smtpd]\nrelayhost =\n");
	assert_string_equal(cfg.relayhost, "");
	parse_fails("[smtpd]\nrelayhost = smtp.example.test\n", 2, "host:port");
	parse_fails("[smtpd]\nrelayhost = smtp.example.test:0\n", 2, "host:port");
	parse_fails("[smtpd]\nrelayhost = smtp.example.test:65536\n", 2, "host:port");
	parse_fails("[smtpd]\nrelayhost = :25\n", 2, "host:port");
	parse_fails("[smtpd]\nrelayhost = h:25s\n", 2, "host:port");
}

/* ---- listen ---- */

static void
test_listen_replaces_defaults_per_section(void **state)
{
	(void)state;
	parse_ok("[smtpd]\nlisten = 127.0.0.1:2525 smtp\n");
	assert_int_equal(cfg.smtpd_listen.n, 1);
	assert_string_equal(cfg.smtpd_listen.l[0].host, "127.0.0.1");
	assert_int_equal(cfg.smtpd_listen.l[0].port, 2525);
	assert_int_equal(cfg.smtpd_listen.l[0].kind, LISTEN_SMTP);
	/* the other sections keep their defaults */
	assert_int_equal(cfg.imapd_listen.n, 2);
	assert_int_equal(cfg.imapd_listen.l[0].port, 143);
	assert_int_equal(cfg.pop3d_listen.n, 2);
	assert_int_equal(cfg.pop3d_listen.l[1].port, 995);
}

static void
test_listen_repeats_accumulate(void **state)
{
	(void)state;
	parse_ok("[smtpd]\n"
	    "listen = 127.0.0.1:2525 smtp\n"
	    "listen = 127.0.0.1:2587 submission\n"
	    "listen = 127.0.0.1:2465 submissions\n"
	    "[imapd]\n"
	    "listen = 127.0.0.1:1143 imap\n"
	    "[pop3d]\n"
	    "listen = 127.0.0.1:1110 pop3\n"
	    "listen = 127.0.0.1:1995 pop3s\n");
	assert_int_equal(cfg.smtpd_listen.n, 3);
	assert_int_equal(cfg.smtpd_listen.l[1].port, 2587);
	assert_int_equal(cfg.smtpd_listen.l[1].kind, LISTEN_SUBMISSION);
	assert_int_equal(cfg.smtpd_listen.l[2].kind, LISTEN_SUBMISSIONS);
	assert_int_equal(cfg.imapd_listen.n, 1);
	assert_int_equal(cfg.imapd_listen.l[0].port, 1143);
	assert_int_equal(cfg.pop3d_listen.n, 2);
	assert_int_equal(cfg.pop3d_listen.l[0].kind, LISTEN_POP3);
	assert_int_equal(cfg.pop3d_listen.l[1].kind, LISTEN_POP3S);
}

static void
test_listen_section_reopened_appends(void **state)
{
	(void)state;
	/* replacing happens once per parse: a second [smtpd] block adds */
	parse_ok("[smtpd]\nlisten = 127.0.0.1:1 smtp\n[policy]\nspf = off\n"
	    "[smtpd]\nlisten = 127.0.0.1:2 smtp\n");
	assert_int_equal(cfg.smtpd_listen.n, 2);
	assert_int_equal(cfg.smtpd_listen.l[0].port, 1);
	assert_int_equal(cfg.smtpd_listen.l[1].port, 2);
}

static void
test_listen_ipv6(void **state)
{
	(void)state;
	parse_ok("[imapd]\nlisten = [::]:993 imaps\n");
	assert_int_equal(cfg.imapd_listen.n, 1);
	assert_string_equal(cfg.imapd_listen.l[0].host, "::");
	assert_int_equal(cfg.imapd_listen.l[0].port, 993);
	assert_int_equal(cfg.imapd_listen.l[0].kind, LISTEN_IMAPS);
	parse_ok("[smtpd]\nlisten = [::1]:25 smtp\n");
	assert_string_equal(cfg.smtpd_listen.l[0].host, "::1");
	/* an unbracketed v6 address is ambiguous and refused */
	parse_fails("[imapd]\nlisten = :::993 imaps\n", 2, NULL);
	parse_fails("[imapd]\nlisten = [::]993 imaps\n", 2, NULL);
	parse_fails("[imapd]\nlisten = []:993 imaps\n", 2, NULL);
	parse_fails("[imapd]\nlisten = [:::993 imaps\n", 2, NULL);
}

static void
test_listen_tabs_between_fields(void **state)
{
	(void)state;
	parse_ok("[pop3d]\nlisten\t=\t127.0.0.1:110\t\tpop3\n");
	assert_int_equal(cfg.pop3d_listen.n, 1);
	assert_int_equal(cfg.pop3d_listen.l[0].kind, LISTEN_POP3);
}

static void
test_listen_kind_in_wrong_section(void **state)
{
	(void)state;
	parse_fails("[smtpd]\nlisten = 0.0.0.0:143 imap\n", 2, "smtp");
	parse_fails("[imapd]\nlisten = 0.0.0.0:25 smtp\n", 2, "imap");
	parse_fails("[pop3d]\nlisten = 0.0.0.0:993 imaps\n", 2, "pop3");
	parse_fails("[smtpd]\nlisten = 0.0.0.0:25 bogus\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0:25 SMTP\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0:25\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0:25 smtp extra\n", 2, NULL);
}

static void
test_listen_at_top_level_is_unknown(void **state)
{
	(void)state;
	parse_fails("listen = 0.0.0.0:25 smtp\n", 1, "listen");
	parse_fails("[policy]\nlisten = 0.0.0.0:25 smtp\n", 2, "listen");
}

static void
test_listen_bad_ports(void **state)
{
	(void)state;
	parse_fails("[smtpd]\nlisten = 0.0.0.0:0 smtp\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0:65536 smtp\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0:25s smtp\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0: smtp\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = 0.0.0.0 smtp\n", 2, NULL);
	parse_fails("[smtpd]\nlisten = :25 smtp\n", 2, NULL);
	parse_ok("[smtpd]\nlisten = 0.0.0.0:65535 smtp\n");
	assert_int_equal(cfg.smtpd_listen.l[0].port, 65535);
}

static void
test_listen_too_many(void **state)
{
	char text[4096];
	size_t pos = 0;
	int i;

	(void)state;
	pos += (size_t)snprintf(text + pos, sizeof(text) - pos, "[smtpd]\n");
	for (i = 0; i < CONFIG_MAX_LISTEN; i++)
		pos += (size_t)snprintf(text + pos, sizeof(text) - pos,
		    "listen = 127.0.0.1:%d smtp\n", 1000 + i);
	parse_ok(text);
	assert_int_equal(cfg.smtpd_listen.n, CONFIG_MAX_LISTEN);
	snprintf(text + pos, sizeof(text) - pos, "listen = 127.0.0.1:2000 smtp\n");
	parse_fails(text, CONFIG_MAX_LISTEN + 2, "too many");
}

static void
test_listen_kind_helpers(void **state)
{
	(void)state;
	assert_string_equal(listen_kind_name(LISTEN_SMTP), "smtp");
	assert_string_equal(listen_kind_name(LISTEN_SUBMISSION), "submission");
	assert_string_equal(listen_kind_name(LISTEN_SUBMISSIONS), "submissions");
	assert_string_equal(listen_kind_name(LISTEN_IMAP), "imap");
	assert_string_equal(listen_kind_name(LISTEN_IMAPS), "imaps");
	assert_string_equal(listen_kind_name(LISTEN_POP3), "pop3");
	assert_string_equal(listen_kind_name(LISTEN_POP3S), "pop3s");
	assert_false(listen_kind_is_tls(LISTEN_SMTP));
	assert_false(listen_kind_is_tls(LISTEN_SUBMISSION));
	assert_true(listen_kind_is_tls(LISTEN_SUBMISSIONS));
	assert_false(listen_kind_is_tls(LISTEN_IMAP));
	assert_true(listen_kind_is_tls(LISTEN_IMAPS));
	assert_false(listen_kind_is_tls(LISTEN_POP3));
	assert_true(listen_kind_is_tls(LISTEN_POP3S));
}

/* ---- errors name file, line and key ---- */

static void
test_unknown_key_names_file_line_key(void **state)
{
	(void)state;
	parse_fails("hostname = a\n\n# c\nbogus_key = 1\n", 4, "bogus_key");
	parse_fails("[smtpd]\nmax_message_size = 1M\nspf = on\n", 3, "spf");
	/* a key of another section is unknown here, and the section is named */
	parse_fails("[smtpd]\nspf = on\n", 2, "smtpd");
	/* keys are case-sensitive */
	parse_fails("Hostname = a\n", 1, "Hostname");
}

static void
test_unknown_key_control_bytes_escaped(void **state)
{
	(void)state;
	parse_fails("bad\x01key = 1\n", 1, NULL);
	assert_null(strchr(err, '\x01'));
}

static void
test_unknown_section(void **state)
{
	(void)state;
	parse_fails("[smtp]\nlisten = 0.0.0.0:25 smtp\n", 1, "section");
	parse_fails("[smtpd\n", 1, NULL);
	parse_fails("[]\n", 1, NULL);
	parse_fails("[\n", 1, NULL);
}

static void
test_line_without_equals(void **state)
{
	(void)state;
	parse_fails("hostname a.test\n", 1, NULL);
	parse_fails("= value\n", 1, NULL);
}

static void
test_nul_in_value(void **state)
{
	static const char text[] = "hostname = a\0b\n";
	int r;

	(void)state;
	config_defaults(&cfg);
	r = config_parse(&cfg, text, sizeof(text) - 1, "test.conf", err,
	    sizeof(err));
	assert_int_equal(r, -1);
	assert_non_null(strstr(err, "test.conf:1:"));
}

static void
test_error_message_truncated_safely(void **state)
{
	char small[8];
	int r;

	(void)state;
	memset(small, 'Z', sizeof(small));
	config_defaults(&cfg);
	r = config_parse(&cfg, "nope = 1\n", 9, "a-long-file-name.conf", small,
	    sizeof(small));
	assert_int_equal(r, -1);
	assert_int_equal(small[sizeof(small) - 1], '\0');
}

/* ---- layout: comments, blanks, CRLF ---- */

static void
test_comments_and_blank_lines(void **state)
{
	(void)state;
	parse_ok("# a comment\n"
	    "\n"
	    "   # indented comment\n"
	    "\t\n"
	    "hostname = mail.example.test   # trailing comment\n"
	    "[smtpd]   \n"
	    "  max_message_size = 2M#no space\n"
	    "#listen = 0.0.0.0:1 smtp\n");
	assert_string_equal(cfg.hostname, "mail.example.test");
	assert_true(cfg.max_message_size == 2 * MB);
	assert_int_equal(cfg.smtpd_listen.n, 3);
}

static void
test_crlf_line_ends(void **state)
{
	(void)state;
	parse_ok("hostname = mail.example.test\r\n"
	    "\r\n"
	    "# c\r\n"
	    "[smtpd]\r\n"
	    "listen = 127.0.0.1:2525 smtp\r\n"
	    "max_message_size = 3M\r\n"
	    "[policy]\r\n"
	    "spf = off\r\n");
	assert_string_equal(cfg.hostname, "mail.example.test");
	assert_int_equal(cfg.smtpd_listen.n, 1);
	assert_int_equal(cfg.smtpd_listen.l[0].port, 2525);
	assert_true(cfg.max_message_size == 3 * MB);
	assert_int_equal(cfg.spf, 0);
	/* line numbers still count CRLF lines */
	parse_fails("hostname = a\r\n\r\nbogus = 1\r\n", 3, "bogus");
}

static void
test_no_final_newline(void **state)
{
	(void)state;
	parse_ok("hostname = a.test\n[smtpd]\nmax_message_size = 4M");
	assert_true(cfg.max_message_size == 4 * MB);
	parse_fails("hostname = a.test\nbogus = 1", 2, "bogus");
}

static void
test_not_nul_terminated(void **state)
{
	/* the parser must honour len: only "hostname = abc" is in range */
	static const char text[] = "hostname = abcGARBAGE\nbogus = 1\n";
	char *copy;
	int r;

	(void)state;
	copy = malloc(14);
	assert_non_null(copy);
	memcpy(copy, text, 14);		/* "hostname = abc", no NUL */
	config_defaults(&cfg);
	r = config_parse(&cfg, copy, 14, "test.conf", err, sizeof(err));
	free(copy);
	if (r != 0)
		fail_msg("parse of a non-terminated buffer failed: %s", err);
	assert_string_equal(cfg.hostname, "abc");
}

static void
test_value_too_long(void **state)
{
	char text[2 * CONFIG_STR_MAX + 64];
	char want[CONFIG_STR_MAX];
	size_t n;

	(void)state;
	/* hostname holds 255 octets plus the NUL */
	n = (size_t)snprintf(text, sizeof(text), "hostname = ");
	memset(text + n, 'h', 255);
	text[n + 255] = '\n';
	text[n + 256] = '\0';
	parse_ok(text);
	assert_int_equal(strlen(cfg.hostname), 255);
	memset(text + n, 'h', 256);
	text[n + 256] = '\n';
	text[n + 257] = '\0';
	parse_fails(text, 1, "too long");

	/* path fields: CONFIG_STR_MAX - 1 fits, CONFIG_STR_MAX does not */
	n = (size_t)snprintf(text, sizeof(text), "\nmail_dir = /");
	memset(text + n, 'm', CONFIG_STR_MAX - 2);
	text[n + CONFIG_STR_MAX - 2] = '\0';
	parse_ok(text);
	memset(want, 'm', sizeof(want));
	want[0] = '/';
	want[CONFIG_STR_MAX - 1] = '\0';
	assert_string_equal(cfg.mail_dir, want);
	memset(text + n, 'm', CONFIG_STR_MAX - 1);
	text[n + CONFIG_STR_MAX - 1] = '\0';
	parse_fails(text, 2, "too long");

	/* an over-long unknown key is reported without overflowing */
	n = (size_t)snprintf(text, sizeof(text), "[policy]\n");
	memset(text + n, 'k', 500);
	snprintf(text + n + 500, sizeof(text) - n - 500, " = 1\n");
	parse_fails(text, 2, "kkkkkkkk");
}

static void
test_failed_parse_reports_first_error(void **state)
{
	(void)state;
	parse_fails("[smtpd]\nmax_message_size = x\nbogus = 1\n", 2, "size");
}

/* ---- the integration-test config parses as the tests expect ---- */

static void
test_integration_style_config(void **state)
{
	(void)state;
	parse_ok("hostname = mail.example.test\n"
	    "state_dir = /t/state\n"
	    "database = /t/state/buzon.db\n"
	    "mail_dir = /t/mail\n"
	    "queue_dir = /t/queue\n"
	    "user =\n"
	    "tls_cert = /t/tls/cert.pem\n"
	    "tls_key = /t/tls/key.pem\n"
	    "max_connections_per_ip = 3\n"
	    "[smtpd]\n"
	    "listen = 127.0.0.1:40025 smtp\n"
	    "max_message_size = 1M\n"
	    "max_recipients = 100\n"
	    "[imapd]\n"
	    "listen = 127.0.0.1:40143 imap\n"
	    "[pop3d]\n"
	    "listen = 127.0.0.1:40110 pop3\n"
	    "[policy]\n"
	    "spf = off\n"
	    "dkim_verify = off\n"
	    "dmarc = off\n"
	    "dnsbl =\n");
	assert_int_equal(cfg.smtpd_listen.n, 1);
	assert_int_equal(cfg.smtpd_listen.l[0].port, 40025);
	assert_int_equal(cfg.imapd_listen.n, 1);
	assert_int_equal(cfg.pop3d_listen.n, 1);
	assert_true(cfg.max_message_size == MB);
	assert_int_equal(cfg.max_connections_per_ip, 3);
	assert_string_equal(cfg.dnsbl, "");
	assert_string_equal(cfg.user, "");
}

/* ---- config_load ---- */

static void
test_load_file(void **state)
{
	char path[] = "/tmp/buzon-test-config-XXXXXX";
	const char *text = "hostname = loaded.example.test\n[smtpd]\n"
	    "listen = 127.0.0.1:2525 smtp\n";
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	/* config_load starts from defaults, whatever cfg held */
	memset(&cfg, 0x5a, sizeof(cfg));
	if (config_load(&cfg, path, err, sizeof(err)) != 0) {
		unlink(path);
		fail_msg("config_load(%s) failed: %s", path, err);
	}
	assert_string_equal(cfg.hostname, "loaded.example.test");
	assert_string_equal(cfg.path, path);
	assert_int_equal(cfg.smtpd_listen.n, 1);
	assert_int_equal(cfg.imapd_listen.n, 2);
	assert_true(cfg.max_message_size == 50 * MB);

	/* errors from a file name that file */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\nnope = 1\n", 10), 10);
	close(fd);
	assert_int_equal(config_load(&cfg, path, err, sizeof(err)), -1);
	{
		char want[128];

		snprintf(want, sizeof(want), "%s:2:", path);
		if (strstr(err, want) == NULL || strstr(err, "nope") == NULL)
			fail_msg("error is \"%s\", expected \"%s\" and \"nope\"", err, want);
	}
	unlink(path);
}

static void
test_load_missing_file(void **state)
{
	(void)state;
	assert_int_equal(config_load(&cfg, "/nonexistent/buzon-test.conf", err,
	    sizeof(err)), -1);
	if (strstr(err, "/nonexistent/buzon-test.conf") == NULL)
		fail_msg("error is \"%s\", expected it to name the path", err);
}

static void
test_load_env_var(void **state)
{
	char path[] = "/tmp/buzon-test-config-XXXXXX";
	const char *text = "hostname = env.example.test\n";
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	setenv("BUZON_CONF", path, 1);
	if (config_load(&cfg, NULL, err, sizeof(err)) != 0) {
		unsetenv("BUZON_CONF");
		unlink(path);
		fail_msg("config_load(NULL) with BUZON_CONF=%s failed: %s", path, err);
	}
	unsetenv("BUZON_CONF");
	unlink(path);
	assert_string_equal(cfg.hostname, "env.example.test");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_empty_input_keeps_defaults),
		cmocka_unit_test(test_string_keys),
		cmocka_unit_test(test_string_inner_spaces_kept_outer_trimmed),
		cmocka_unit_test(test_later_value_wins),
		cmocka_unit_test(test_size_values),
		cmocka_unit_test(test_size_bad),
		cmocka_unit_test(test_parse_size_direct),
		cmocka_unit_test(test_duration_values),
		cmocka_unit_test(test_onoff_values),
		cmocka_unit_test(test_uint_values),
		cmocka_unit_test(test_spf_reject),
		cmocka_unit_test(test_relayhost),
		cmocka_unit_test(test_listen_replaces_defaults_per_section),
		cmocka_unit_test(test_listen_repeats_accumulate),
		cmocka_unit_test(test_listen_section_reopened_appends),
		cmocka_unit_test(test_listen_ipv6),
		cmocka_unit_test(test_listen_tabs_between_fields),
		cmocka_unit_test(test_listen_kind_in_wrong_section),
		cmocka_unit_test(test_listen_at_top_level_is_unknown),
		cmocka_unit_test(test_listen_bad_ports),
		cmocka_unit_test(test_listen_too_many),
		cmocka_unit_test(test_listen_kind_helpers),
		cmocka_unit_test(test_unknown_key_names_file_line_key),
		cmocka_unit_test(test_unknown_key_control_bytes_escaped),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_line_without_equals),
		cmocka_unit_test(test_nul_in_value),
		cmocka_unit_test(test_error_message_truncated_safely),
		cmocka_unit_test(test_comments_and_blank_lines),
		cmocka_unit_test(test_crlf_line_ends),
		cmocka_unit_test(test_no_final_newline),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_value_too_long),
		cmocka_unit_test(test_failed_parse_reports_first_error),
		cmocka_unit_test(test_integration_style_config),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_load_env_var),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
