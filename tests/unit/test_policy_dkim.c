/*
 * test_policy_dkim.c - common/policy_dkim.c: every signature of a
 * message judged on its own, keys from a libopendkim query file instead
 * of DNS.  Signed by us (common/dkim_sign) and by python3-dkim, an
 * independent signer: pass; changed body or signed header: fail; no
 * signature: none; key not published: permerror; a malformed
 * signature: neutral; two signatures judged apart; at most
 * POLICY_DKIM_MAX_SIGS judged; several threads at once.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "common/dkim_sign.h"
#include "common/policy.h"
#include "store_testutil.h"

static const char MSG[] =
    "Received: from x by y; Mon, 23 Nov 2026 10:00:00 +0000\n"
    "From: Alice <alice@a.test>\n"
    "To: bob@b.test\n"
    "Subject: hello\n"
    "  folded subject\n"
    "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
    "Message-ID: <1@a.test>\n"
    "MIME-Version: 1.0\n"
    "Content-Type: text/plain; charset=utf-8\n"
    "\n"
    "Hello Bob,\n"
    "\n"
    "a line with trailing space \n"
    ".a dot line\n"
    "\n"
    "\n";

/* Two keys for the whole file: RSA generation is the slow part. */
static struct {
	char dir[256];
	char keyfile[512];
	struct buf pem_a, pem_b;
} g;

static void
add_key(FILE *f, const struct buf *pem, const char *sel, const char *dom)
{
	struct buf p, v;

	buf_init(&p, 4096);
	buf_init(&v, 4096);
	assert_int_equal(dkim_txt_record(pem->data, pem->len, &p), 0);
	assert_int_equal(dkim_txt_value(buf_cstr(&p), &v), 0);
	fprintf(f, "%s._domainkey.%s %s\n", sel, dom, buf_cstr(&v));
	buf_free(&p);
	buf_free(&v);
}

static int
group_setup(void **state)
{
	char err[256];
	FILE *f;

	tu_mkdtemp(g.dir, sizeof(g.dir));
	buf_init(&g.pem_a, DKIM_KEY_FILE_MAX);
	buf_init(&g.pem_b, DKIM_KEY_FILE_MAX);
	if (dkim_keygen(DKIM_BITS_DEFAULT, &g.pem_a, err, sizeof(err)) < 0 ||
	    dkim_keygen(DKIM_BITS_MIN, &g.pem_b, err, sizeof(err)) < 0)
		return -1;
	snprintf_checked(g.keyfile, sizeof(g.keyfile), "%s/keys", g.dir);
	if ((f = fopen(g.keyfile, "w")) == NULL)
		return -1;
	add_key(f, &g.pem_a, "s1", "a.test");
	add_key(f, &g.pem_b, "s2", "b.test");
	/* the python3-dkim signer below uses key a under another name */
	add_key(f, &g.pem_a, "py", "a.test");
	if (fclose(f) != 0)
		return -1;
	return policy_dkim_set_query_file(g.keyfile);
}

static int
group_teardown(void **state)
{
	policy_dkim_set_query_file(NULL);
	dkim_buf_wipe(&g.pem_a);
	dkim_buf_wipe(&g.pem_b);
	tu_rmrf(g.dir);
	return 0;
}

/* out = DKIM-Signature by (pem, domain, selector) over msg, then msg */
static void
signed_msg(const struct buf *pem, const char *domain, const char *sel,
    const char *msg, struct buf *out)
{
	char err[512] = "";
	struct buf sig;

	buf_init(&sig, 65536);
	if (dkim_sign_message(pem->data, pem->len, domain, sel, msg,
	    strlen(msg), &sig, err, sizeof(err)) != 0)
		fail_msg("dkim_sign_message: %s", err);
	buf_reset(out);
	assert_int_equal(buf_append(out, sig.data, sig.len), 0);
	assert_int_equal(buf_puts(out, msg), 0);
	buf_free(&sig);
}

static void
verify(const struct buf *m, struct dkim_outcome *o)
{
	assert_int_equal(policy_dkim_verify(m->data, m->len, o), 0);
}

static void
assert_sig(const struct dkim_outcome *o, size_t i, enum dkim_result r,
    const char *d, const char *s)
{
	assert_true(i < o->nsigs);
	if (o->sig[i].result != r)
		fail_msg("signature %zu: got %s (%s), expected %s", i,
		    dkim_result_name(o->sig[i].result), o->sig[i].reason,
		    dkim_result_name(r));
	assert_string_equal(o->sig[i].domain, d);
	assert_string_equal(o->sig[i].selector, s);
}

static void
test_pass(void **state)
{
	struct dkim_outcome o;
	struct buf m;

	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_PASS, "a.test", "s1");
	buf_free(&m);
}

/* The same message with CRLF line ends, as some callers may hold it. */
static void
test_pass_crlf(void **state)
{
	struct dkim_outcome o;
	struct buf m, crlf;
	size_t i;

	buf_init(&m, BUF_UNLIMITED);
	buf_init(&crlf, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	for (i = 0; i < m.len; i++) {
		if (m.data[i] == '\n')
			buf_putc(&crlf, '\r');
		buf_putc(&crlf, m.data[i]);
	}
	verify(&crlf, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_PASS, "a.test", "s1");
	buf_free(&m);
	buf_free(&crlf);
}

static void
test_body_changed_fails(void **state)
{
	struct dkim_outcome o;
	struct buf m;

	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	*strstr(m.data, "Hello Bob") = 'J';
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_FAIL, "a.test", "s1");
	assert_string_equal(o.sig[0].reason, "body hash mismatch");
	buf_free(&m);
}

static void
test_signed_header_changed_fails(void **state)
{
	struct dkim_outcome o;
	struct buf m;

	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	memcpy(strstr(m.data, "Subject: hello"), "Subject: HELLO", 14);
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_FAIL, "a.test", "s1");
	assert_string_equal(o.sig[0].reason, "signature mismatch");
	/* an unsigned header may change: Received is not signed */
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	memcpy(strstr(m.data, "from x by y"), "from z by y", 11);
	verify(&m, &o);
	assert_sig(&o, 0, DKIM_RES_PASS, "a.test", "s1");
	buf_free(&m);
}

static void
test_unsigned_is_none(void **state)
{
	struct dkim_outcome o;

	o.nsigs = 99;
	assert_int_equal(policy_dkim_verify(MSG, strlen(MSG), &o), 0);
	assert_int_equal(o.nsigs, 0);
	/* header only, no body */
	assert_int_equal(policy_dkim_verify("From: a@a.test\n", 15, &o), 0);
	assert_int_equal(o.nsigs, 0);
	assert_int_equal(policy_dkim_verify("", 0, &o), 0);
	assert_int_equal(o.nsigs, 0);
}

static void
test_unknown_key_permerror(void **state)
{
	struct dkim_outcome o;
	struct buf m;

	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "nokey", MSG, &m);
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_PERMERROR, "a.test", "nokey");
	assert_string_equal(o.sig[0].reason, "no key");
	/* published, but the key of another domain: fails */
	signed_msg(&g.pem_b, "a.test", "s1", MSG, &m);
	verify(&m, &o);
	assert_sig(&o, 0, DKIM_RES_FAIL, "a.test", "s1");
	buf_free(&m);
}

/*
 * b.test signed another version of the message (its signature breaks),
 * a.test signed this one: each keeps its own verdict, in header order.
 */
static void
test_two_signatures(void **state)
{
	static const char other[] = "From: Alice <alice@a.test>\n"
	    "Subject: not this one\n\nother body\n";
	struct dkim_outcome o;
	struct buf m, bsig;
	const char *body;

	buf_init(&m, BUF_UNLIMITED);
	buf_init(&bsig, BUF_UNLIMITED);
	signed_msg(&g.pem_b, "b.test", "s2", other, &bsig);
	body = strstr(bsig.data, "From: Alice");
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	/* b's signature on top of a's message */
	assert_int_equal(buf_set(&bsig, bsig.data, (size_t)(body -
	    bsig.data)), 0);
	assert_int_equal(buf_append(&bsig, m.data, m.len), 0);
	verify(&bsig, &o);
	assert_int_equal(o.nsigs, 2);
	assert_sig(&o, 0, DKIM_RES_FAIL, "b.test", "s2");
	assert_sig(&o, 1, DKIM_RES_PASS, "a.test", "s1");
	buf_free(&m);
	buf_free(&bsig);
}

/* Tags missing or empty: the signature cannot even be checked. */
static void
test_malformed_signature_neutral(void **state)
{
	static const char bad[] =
	    "DKIM-Signature: v=1; a=rsa-sha256; d=a.test; s=s1; c=relaxed;\n"
	    "\th=from:subject; bh=; b=\n";
	static const char noversion[] =
	    "DKIM-Signature: a=rsa-sha256; d=a.test; s=s1; h=from;\n"
	    "\tbh=AAAA; b=AAAA\n";
	struct dkim_outcome o;
	struct buf m;

	buf_init(&m, BUF_UNLIMITED);
	buf_puts(&m, bad);
	buf_puts(&m, MSG);
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_NEUTRAL, "a.test", "s1");
	buf_set(&m, noversion, strlen(noversion));
	buf_puts(&m, MSG);
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_int_equal(o.sig[0].result, DKIM_RES_NEUTRAL);
	buf_free(&m);
}

/* Ten signatures: only the first POLICY_DKIM_MAX_SIGS are judged. */
static void
test_signature_limit(void **state)
{
	struct dkim_outcome o;
	struct buf one, m;
	size_t i, siglen;

	buf_init(&one, BUF_UNLIMITED);
	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &one);
	siglen = one.len - strlen(MSG);
	for (i = 0; i < POLICY_DKIM_MAX_SIGS + 2; i++)
		buf_append(&m, one.data, siglen);
	buf_puts(&m, MSG);
	verify(&m, &o);
	assert_int_equal(o.nsigs, POLICY_DKIM_MAX_SIGS);
	for (i = 0; i < o.nsigs; i++)
		assert_sig(&o, i, DKIM_RES_PASS, "a.test", "s1");
	buf_free(&one);
	buf_free(&m);
}

/* A header of thousands of fields is not verified: "policy". */
static void
test_huge_header_policy(void **state)
{
	struct dkim_outcome o;
	struct buf one, m;
	int i;

	buf_init(&one, BUF_UNLIMITED);
	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &one);
	buf_append(&m, one.data, one.len - strlen(MSG));
	for (i = 0; i < 2000; i++)
		buf_printf(&m, "X-Filler-%d: x\n", i);
	buf_puts(&m, MSG);
	verify(&m, &o);
	assert_int_equal(o.nsigs, 1);
	assert_sig(&o, 0, DKIM_RES_POLICY, "a.test", "s1");
	/* 900 of them are fine */
	buf_set(&m, one.data, one.len - strlen(MSG));
	for (i = 0; i < 900; i++)
		buf_printf(&m, "X-Filler-%d: x\n", i);
	buf_puts(&m, MSG);
	verify(&m, &o);
	assert_sig(&o, 0, DKIM_RES_PASS, "a.test", "s1");
	buf_free(&one);
	buf_free(&m);
}

/* python3-dkim signs with key a (selector "py"); argv: dir canon */
static const char SIGN_PY[] =
    "import sys, dkim\n"
    "d, canon = sys.argv[1], sys.argv[2].encode()\n"
    "key = open(d + '/key.pem', 'rb').read()\n"
    "msg = open(d + '/msg.eml', 'rb').read()\n"
    "sig = dkim.sign(msg, b'py', b'a.test', key,\n"
    "    canonicalize=(canon, canon),\n"
    "    include_headers=[b'from', b'to', b'subject', b'date'])\n"
    "sys.stdout.buffer.write(sig.replace(b'\\r\\n', b'\\n'))\n";

static void
write_file(const char *name, const void *p, size_t len)
{
	char path[512];
	FILE *f;

	snprintf_checked(path, sizeof(path), "%s/%s", g.dir, name);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite(p, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void
python_signed(const char *canon, struct buf *out)
{
	char cmd[1024], tmp[4096];
	FILE *p;
	size_t n;

	write_file("key.pem", g.pem_a.data, g.pem_a.len);
	write_file("msg.eml", MSG, strlen(MSG));
	write_file("sign.py", SIGN_PY, strlen(SIGN_PY));
	snprintf_checked(cmd, sizeof(cmd), "/usr/bin/python3 %s/sign.py %s %s",
	    g.dir, g.dir, canon);
	assert_non_null(p = popen(cmd, "r"));
	buf_reset(out);
	while ((n = fread(tmp, 1, sizeof(tmp), p)) > 0)
		assert_int_equal(buf_append(out, tmp, n), 0);
	assert_int_equal(pclose(p), 0);
	assert_true(out->len > 0);
	assert_true(strncmp(out->data, "DKIM-Signature:", 15) == 0);
	assert_int_equal(buf_puts(out, MSG), 0);
}

static void
test_python_dkim_signature(void **state)
{
	static const char *canons[] = { "relaxed", "simple" };
	struct dkim_outcome o;
	struct buf m;
	size_t i;

	buf_init(&m, BUF_UNLIMITED);
	for (i = 0; i < 2; i++) {
		python_signed(canons[i], &m);
		verify(&m, &o);
		assert_int_equal(o.nsigs, 1);
		assert_sig(&o, 0, DKIM_RES_PASS, "a.test", "py");
		*strstr(m.data, "Hello Bob") = 'J';
		verify(&m, &o);
		assert_sig(&o, 0, DKIM_RES_FAIL, "a.test", "py");
	}
	buf_free(&m);
}

struct thread_arg {
	const struct buf *m;
	int passes;
};

static void *
verify_thread(void *p)
{
	struct thread_arg *a = p;
	struct dkim_outcome o;
	int i;

	for (i = 0; i < 20; i++)
		if (policy_dkim_verify(a->m->data, a->m->len, &o) == 0 &&
		    o.nsigs == 1 && o.sig[0].result == DKIM_RES_PASS)
			a->passes++;
	return NULL;
}

static void
test_threads(void **state)
{
	struct thread_arg a[4];
	pthread_t t[4];
	struct buf m;
	int i;

	buf_init(&m, BUF_UNLIMITED);
	signed_msg(&g.pem_a, "a.test", "s1", MSG, &m);
	for (i = 0; i < 4; i++) {
		a[i].m = &m;
		a[i].passes = 0;
		assert_int_equal(pthread_create(&t[i], NULL, verify_thread,
		    &a[i]), 0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].passes, 20);
	}
	buf_free(&m);
}

static void
test_result_names(void **state)
{
	assert_string_equal(dkim_result_name(DKIM_RES_NONE), "none");
	assert_string_equal(dkim_result_name(DKIM_RES_PASS), "pass");
	assert_string_equal(dkim_result_name(DKIM_RES_FAIL), "fail");
	assert_string_equal(dkim_result_name(DKIM_RES_NEUTRAL), "neutral");
	assert_string_equal(dkim_result_name(DKIM_RES_TEMPERROR), "temperror");
	assert_string_equal(dkim_result_name(DKIM_RES_PERMERROR), "permerror");
	assert_string_equal(dkim_result_name(DKIM_RES_POLICY), "policy");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_pass_crlf),
		cmocka_unit_test(test_body_changed_fails),
		cmocka_unit_test(test_signed_header_changed_fails),
		cmocka_unit_test(test_unsigned_is_none),
		cmocka_unit_test(test_unknown_key_permerror),
		cmocka_unit_test(test_two_signatures),
		cmocka_unit_test(test_malformed_signature_neutral),
		cmocka_unit_test(test_signature_limit),
		cmocka_unit_test(test_huge_header_policy),
		cmocka_unit_test(test_python_dkim_signature),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_result_names),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
