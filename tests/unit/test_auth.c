/*
 * test_auth.c - cmocka tests for common/auth.c: SASL PLAIN and LOGIN
 * through libsasl2 and plain logins, checked against a throw-away account
 * database in a mkdtemp directory filled through db_admin.
 *
 * Covers: the mechanism list with and without TLS; PLAIN with an initial
 * response, without one (empty challenge), with an authzid equal to the
 * user, with a mixed-case domain (canonical address back), lower-case
 * mechanism names; wrong password, unknown user (and that it costs about
 * as long as a wrong password), disabled user, disabled domain, locked
 * hash, a name that is not an address; authzid mismatch; LOGIN in two
 * steps and with an initial response; "=" as an empty response; "*"
 * cancelling at the start and mid-exchange; bad base64; an over-long
 * line, password and user name; a NUL in LOGIN; mechanisms refused
 * without TLS and unknown mechanisms; plain logins; misuse of the state
 * machine; the check on a real thread pool, also with the session freed
 * while the check runs; a database error giving AUTH_TEMPFAIL; a missing
 * database refused at start.  Never touches anything outside its tmp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <ev.h>
#include <sqlite3.h>
#include <openssl/evp.h>

#include "common/auth.h"
#include "common/buf.h"
#include "common/db.h"
#include "common/db_admin.h"
#include "common/pool.h"

static char tmpdir[] = "/tmp/buzon-test-auth.XXXXXX";
static char dbpath[256];
static struct auth_ctx *ctx;

#define BOB_PW "correct horse battery"

/* ---- helpers ---- */

static void
must(int r, const char *error, const char *what)
{
	if (r != 0)
		fail_msg("%s: %s", what, error ? error : "?");
}

static void
add_user(struct db *db, const char *address, const char *pw,
    const char *hash_prefix)
{
	char hash[DB_HASH_MAX], full[DB_HASH_MAX + 1];
	const char *e = NULL;

	assert_int_equal(password_hash(pw, hash, sizeof(hash)), 0);
	snprintf(full, sizeof(full), "%s%s", hash_prefix, hash);
	must(db_admin_user_add(db, address, full, 0, &e), e, address);
}

/* Base64 of len bytes of p, into a static buffer. */
static const char *
b64(const char *p, size_t len)
{
	static char out[4][8192];
	static unsigned next;
	char *o = out[next++ % 4];

	assert_true((len + 2) / 3 * 4 < sizeof(out[0]));
	EVP_EncodeBlock((unsigned char *)o, (const unsigned char *)p, (int)len);
	return o;
}

#define B64(lit) b64(lit, sizeof(lit) - 1)

static struct auth_session *
session(int tls)
{
	struct auth_session *s = auth_session_new(ctx, "imap", tls);

	assert_non_null(s);
	return s;
}

static enum auth_status
start(struct auth_session *s, const char *mech, const char *ir)
{
	return auth_start(s, mech, strlen(mech), ir, ir != NULL ? strlen(ir) : 0);
}

static enum auth_status
step(struct auth_session *s, const char *line)
{
	return auth_step(s, line, strlen(line));
}

/* PLAIN with an initial response, checked at once; the final status. */
static enum auth_status
plain(const char *msg, size_t len, char *user_r, size_t usz)
{
	struct auth_session *s = session(1);
	enum auth_status st = start(s, "PLAIN", b64(msg, len));

	if (st == AUTH_VERIFY)
		st = auth_verify_now(s);
	if (user_r != NULL)
		snprintf(user_r, usz, "%s", auth_user(s) ? auth_user(s) : "");
	if (st != AUTH_OK)
		assert_null(auth_user(s));
	auth_session_free(&s);
	assert_null(s);
	return st;
}

#define PLAIN(lit, u, usz) plain(lit, sizeof(lit) - 1, u, usz)

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- fixtures ---- */

static int
setup(void **state)
{
	char err[512];
	const char *e = NULL;
	struct db *db;

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/accounts.db", tmpdir);
	if (db_open(dbpath, 1, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "db_open: %s\n", err);
		return -1;
	}
	must(db_admin_domain_add(db, "a.test", &e), e, "a.test");
	must(db_admin_domain_add(db, "off.test", &e), e, "off.test");
	add_user(db, "bob@a.test", BOB_PW, "");
	add_user(db, "eve@a.test", "eve pw", "");
	must(db_admin_user_set_active(db, "eve@a.test", 0, &e), e, "eve");
	add_user(db, "carol@off.test", "carol pw", "");
	must(db_admin_domain_set_active(db, "off.test", 0, &e), e, "off");
	add_user(db, "locked@a.test", "locked pw", "!");
	db_close(&db);
	ctx = auth_ctx_new(dbpath, "mail.a.test", err, sizeof(err));
	if (ctx == NULL) {
		fprintf(stderr, "auth_ctx_new: %s\n", err);
		return -1;
	}
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	auth_ctx_free(&ctx);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		return -1;
	(void)state;
	return 0;
}

/* ---- tests ---- */

static void
test_mechanisms(void **state)
{
	assert_string_equal(auth_mechanisms(ctx, 1), "PLAIN LOGIN");
	assert_string_equal(auth_mechanisms(ctx, 0), "");
	assert_string_equal(auth_status_name(AUTH_TEMPFAIL), "tempfail");
	(void)state;
}

static void
test_plain_success(void **state)
{
	char user[ADDR_MAX];
	struct auth_session *s;

	assert_int_equal(PLAIN("\0bob@a.test\0" BOB_PW, user, sizeof(user)),
	    AUTH_OK);
	assert_string_equal(user, "bob@a.test");
	/* authzid equal to the user; domain in any case; canonical back. */
	assert_int_equal(PLAIN("bob@a.test\0bob@a.test\0" BOB_PW, user,
	    sizeof(user)), AUTH_OK);
	assert_int_equal(PLAIN("\0bob@A.Test\0" BOB_PW, user, sizeof(user)),
	    AUTH_OK);
	assert_string_equal(user, "bob@a.test");

	/* No initial response: an empty challenge, then the response. */
	s = session(1);
	assert_int_equal(start(s, "plain", NULL), AUTH_CONTINUE);
	assert_string_equal(auth_challenge(s), "");
	assert_string_equal(auth_mech(s), "PLAIN");
	assert_int_equal(step(s, B64("\0bob@a.test\0" BOB_PW)), AUTH_VERIFY);
	assert_string_equal(auth_attempted_user(s), "bob@a.test");
	assert_int_equal(auth_verify_now(s), AUTH_OK);
	assert_string_equal(auth_user(s), "bob@a.test");
	assert_string_equal(auth_reason(s), "");
	auth_session_free(&s);
	(void)state;
}

static void
test_plain_refusals(void **state)
{
	struct auth_session *s;
	double t0, t_wrong, t_unknown;

	t0 = now_ms();
	assert_int_equal(PLAIN("\0bob@a.test\0wrong", NULL, 0), AUTH_FAIL);
	t_wrong = now_ms() - t0;
	t0 = now_ms();
	assert_int_equal(PLAIN("\0nobody@a.test\0" BOB_PW, NULL, 0), AUTH_FAIL);
	t_unknown = now_ms() - t0;
	/* An unknown user costs a yescrypt hash too. */
	if (t_unknown < t_wrong / 3 || t_unknown > t_wrong * 3)
		fail_msg("unknown user took %.1f ms, wrong password %.1f ms",
		    t_unknown, t_wrong);
	assert_int_equal(PLAIN("\0nobody@nowhere.test\0x", NULL, 0), AUTH_FAIL);
	assert_int_equal(PLAIN("\0eve@a.test\0eve pw", NULL, 0), AUTH_FAIL);
	assert_int_equal(PLAIN("\0carol@off.test\0carol pw", NULL, 0), AUTH_FAIL);
	assert_int_equal(PLAIN("\0locked@a.test\0locked pw", NULL, 0), AUTH_FAIL);
	assert_int_equal(PLAIN("\0bob\0" BOB_PW, NULL, 0), AUTH_FAIL);
	assert_int_equal(PLAIN("\0\0" BOB_PW, NULL, 0), AUTH_FAIL);
	/* Malformed PLAIN messages. */
	assert_int_equal(PLAIN("bob@a.test", NULL, 0), AUTH_FAIL);
	assert_int_equal(PLAIN("\0bob@a.test\0" BOB_PW "\0x", NULL, 0), AUTH_FAIL);

	/* The reasons, for logs, tell the cases apart; the status does not. */
	s = session(1);
	assert_int_equal(start(s, "PLAIN", B64("\0eve@a.test\0eve pw")),
	    AUTH_VERIFY);
	assert_int_equal(auth_verify_now(s), AUTH_FAIL);
	assert_string_equal(auth_reason(s), "user or domain disabled");
	assert_null(auth_user(s));
	auth_session_free(&s);
	(void)state;
}

static void
test_authzid_mismatch(void **state)
{
	struct auth_session *s;

	assert_int_equal(PLAIN("alice@a.test\0bob@a.test\0" BOB_PW, NULL, 0),
	    AUTH_FAIL);
	assert_int_equal(PLAIN("BOB@a.test\0bob@a.test\0" BOB_PW, NULL, 0),
	    AUTH_FAIL);
	/* Refused before any password check, for that reason. */
	s = session(1);
	assert_int_equal(start(s, "PLAIN",
	    B64("postmaster@a.test\0bob@a.test\0" BOB_PW)), AUTH_FAIL);
	assert_string_equal(auth_reason(s),
	    "authorization identity differs from the user name");
	auth_session_free(&s);
	(void)state;
}

static void
test_login_two_steps(void **state)
{
	struct auth_session *s = session(1);

	assert_int_equal(start(s, "LOGIN", NULL), AUTH_CONTINUE);
	assert_string_equal(auth_challenge(s), B64("Username:"));
	assert_int_equal(step(s, B64("bob@a.test")), AUTH_CONTINUE);
	assert_string_equal(auth_challenge(s), B64("Password:"));
	assert_int_equal(step(s, B64(BOB_PW)), AUTH_VERIFY);
	assert_int_equal(auth_verify_now(s), AUTH_OK);
	assert_string_equal(auth_user(s), "bob@a.test");
	auth_session_free(&s);

	/* SMTP "AUTH LOGIN <user>" (initial response), wrong password. */
	s = session(1);
	assert_int_equal(start(s, "login", B64("bob@a.test")), AUTH_CONTINUE);
	assert_string_equal(auth_challenge(s), B64("Password:"));
	assert_int_equal(step(s, B64("nope")), AUTH_VERIFY);
	assert_int_equal(auth_verify_now(s), AUTH_FAIL);
	auth_session_free(&s);

	/* A NUL would cut the user name short: refused. */
	s = session(1);
	assert_int_equal(start(s, "LOGIN", NULL), AUTH_CONTINUE);
	assert_int_equal(step(s, B64("bob@a.test\0junk")), AUTH_FAIL);
	auth_session_free(&s);
	(void)state;
}

static void
test_empty_initial_response(void **state)
{
	struct auth_session *s = session(1);

	/* "=" is a zero-length response: not a PLAIN message. */
	assert_int_equal(start(s, "PLAIN", "="), AUTH_FAIL);
	auth_session_free(&s);
	/* An empty continuation line likewise. */
	s = session(1);
	assert_int_equal(start(s, "PLAIN", NULL), AUTH_CONTINUE);
	assert_int_equal(step(s, ""), AUTH_FAIL);
	auth_session_free(&s);
	/* LOGIN takes an empty initial response as none and asks. */
	s = session(1);
	assert_int_equal(start(s, "LOGIN", "="), AUTH_CONTINUE);
	assert_string_equal(auth_challenge(s), B64("Username:"));
	auth_session_free(&s);
	(void)state;
}

static void
test_cancel(void **state)
{
	struct auth_session *s = session(1);

	assert_int_equal(start(s, "PLAIN", NULL), AUTH_CONTINUE);
	assert_int_equal(step(s, "*"), AUTH_CANCEL);
	assert_null(auth_user(s));
	auth_session_free(&s);
	s = session(1);
	assert_int_equal(start(s, "LOGIN", NULL), AUTH_CONTINUE);
	assert_int_equal(step(s, B64("bob@a.test")), AUTH_CONTINUE);
	assert_int_equal(step(s, "*"), AUTH_CANCEL);
	auth_session_free(&s);
	s = session(1);
	assert_int_equal(start(s, "PLAIN", "*"), AUTH_CANCEL);
	auth_session_free(&s);
	(void)state;
}

static void
test_bad_base64(void **state)
{
	static const char *const bad[] = {
		"not base64!", "abc", "ab=c", "a===", "YWJj\r", " YWJj",
		"YW Jj", "YWJjZA", "=YWJ",
	};
	struct auth_session *s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = session(1);
		assert_int_equal(start(s, "PLAIN", NULL), AUTH_CONTINUE);
		if (step(s, bad[i]) != AUTH_BAD_INPUT)
			fail_msg("\"%s\" was accepted as base64", bad[i]);
		auth_session_free(&s);
	}
	s = session(1);
	assert_int_equal(start(s, "PLAIN", "%%%%"), AUTH_BAD_INPUT);
	auth_session_free(&s);
	(void)state;
}

static void
test_oversized(void **state)
{
	static char line[AUTH_LINE_MAX + 8], msg[AUTH_RESPONSE_MAX];
	struct auth_session *s;
	size_t n;

	/* A line over the limit is refused before decoding. */
	memset(line, 'A', AUTH_LINE_MAX + 4);
	line[AUTH_LINE_MAX + 4] = '\0';
	s = session(1);
	assert_int_equal(start(s, "PLAIN", NULL), AUTH_CONTINUE);
	assert_int_equal(step(s, line), AUTH_BAD_INPUT);
	auth_session_free(&s);
	s = session(1);
	assert_int_equal(start(s, "PLAIN", line), AUTH_BAD_INPUT);
	auth_session_free(&s);

	/* Inside the line limit, but the password is over its own. */
	memcpy(msg, "\0bob@a.test\0", 12);
	n = 12 + AUTH_PASSWORD_MAX + 1;
	memset(msg + 12, 'p', n - 12);
	assert_int_equal(plain(msg, n, NULL, 0), AUTH_FAIL);
	/* And a user name over AUTH_USER_MAX. */
	msg[0] = '\0';
	memset(msg + 1, 'u', AUTH_USER_MAX + 10);
	memcpy(msg + 1 + AUTH_USER_MAX + 10, "@a.test\0pw", 10);
	assert_int_equal(plain(msg, AUTH_USER_MAX + 21, NULL, 0), AUTH_FAIL);
	(void)state;
}

static void
test_no_tls(void **state)
{
	struct auth_session *s = session(0);

	assert_int_equal(start(s, "PLAIN", B64("\0bob@a.test\0" BOB_PW)),
	    AUTH_ENCRYPT);
	assert_null(auth_user(s));
	auth_session_free(&s);
	s = session(0);
	assert_int_equal(start(s, "LOGIN", NULL), AUTH_ENCRYPT);
	auth_session_free(&s);
	s = session(0);
	assert_int_equal(auth_login(s, "bob@a.test", 10, BOB_PW,
	    strlen(BOB_PW)), AUTH_ENCRYPT);
	auth_session_free(&s);
	(void)state;
}

static void
test_unknown_mechanism(void **state)
{
	static const char *const mechs[] = {
		"CRAM-MD5", "DIGEST-MD5", "SCRAM-SHA-256", "EXTERNAL",
		"ANONYMOUS", "PLAINX", "PLAI", "",
	};
	struct auth_session *s;
	size_t i;

	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
		s = session(1);
		assert_int_equal(start(s, mechs[i], NULL), AUTH_NOMECH);
		auth_session_free(&s);
	}
	(void)state;
}

static enum auth_status
login(const char *user, size_t ulen, const char *pw, size_t plen,
    char *user_r, size_t usz)
{
	struct auth_session *s = session(1);
	enum auth_status st = auth_login(s, user, ulen, pw, plen);

	if (st == AUTH_VERIFY)
		st = auth_verify_now(s);
	if (user_r != NULL)
		snprintf(user_r, usz, "%s", auth_user(s) ? auth_user(s) : "");
	assert_string_equal(auth_mech(s), "login");
	auth_session_free(&s);
	return st;
}

static void
test_plain_login(void **state)
{
	char user[ADDR_MAX];

	assert_int_equal(login("Bob@A.TEST", 10, BOB_PW, strlen(BOB_PW), user,
	    sizeof(user)), AUTH_OK);
	assert_string_equal(user, "bob@a.test");
	assert_int_equal(login("bob@a.test", 10, "wrong", 5, NULL, 0), AUTH_FAIL);
	assert_int_equal(login("nobody@a.test", 13, "x", 1, NULL, 0), AUTH_FAIL);
	assert_int_equal(login("eve@a.test", 10, "eve pw", 6, NULL, 0), AUTH_FAIL);
	assert_int_equal(login("", 0, "x", 1, NULL, 0), AUTH_FAIL);
	/* A NUL in the name or password never matches. */
	assert_int_equal(login("bob@a.test\0x", 12, BOB_PW, strlen(BOB_PW),
	    NULL, 0), AUTH_FAIL);
	assert_int_equal(login("bob@a.test", 10, BOB_PW "\0", strlen(BOB_PW) + 1,
	    NULL, 0), AUTH_FAIL);
	(void)state;
}

static void
test_misuse(void **state)
{
	struct auth_session *s = session(1);

	assert_int_equal(step(s, "AAAA"), AUTH_TEMPFAIL);
	auth_session_free(&s);
	s = session(1);
	assert_int_equal(auth_verify_now(s), AUTH_TEMPFAIL);
	auth_session_free(&s);
	s = session(1);
	assert_int_equal(start(s, "PLAIN", NULL), AUTH_CONTINUE);
	assert_int_equal(start(s, "PLAIN", NULL), AUTH_TEMPFAIL);
	assert_int_equal(auth_verify_submit(s, NULL, NULL, NULL), -1);
	auth_session_free(&s);
	auth_session_free(&s);		/* NULL: nothing */
	(void)state;
}

struct done_rec {
	int calls;
	enum auth_status st;
	char user[ADDR_MAX];
};

static void
on_done(struct auth_session *s, enum auth_status st, void *arg)
{
	struct done_rec *d = arg;

	d->calls++;
	d->st = st;
	snprintf(d->user, sizeof(d->user), "%s", auth_user(s) ? auth_user(s) : "");
	auth_session_free(&s);		/* allowed from the done function */
}

static void
test_pool(void **state)
{
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct pool *pool;
	struct auth_session *ok, *bad, *gone;
	struct done_rec d_ok = { 0 }, d_bad = { 0 }, d_gone = { 0 };

	assert_non_null(loop);
	pool = pool_new(loop, 2);
	assert_non_null(pool);
	ok = session(1);
	assert_int_equal(start(ok, "PLAIN", B64("\0bob@a.test\0" BOB_PW)),
	    AUTH_VERIFY);
	assert_int_equal(auth_verify_submit(ok, pool, on_done, &d_ok), 0);
	bad = session(1);
	assert_int_equal(auth_login(bad, "nobody@a.test", 13, "x", 1),
	    AUTH_VERIFY);
	assert_int_equal(auth_verify_submit(bad, pool, on_done, &d_bad), 0);
	/* The client went away during the check: free at once. */
	gone = session(1);
	assert_int_equal(auth_login(gone, "bob@a.test", 10, BOB_PW,
	    strlen(BOB_PW)), AUTH_VERIFY);
	assert_int_equal(auth_verify_submit(gone, pool, on_done, &d_gone), 0);
	assert_string_equal(auth_reason(gone), "");
	auth_session_free(&gone);
	assert_null(gone);

	ev_run(loop, 0);
	assert_int_equal(d_ok.calls, 1);
	assert_int_equal(d_ok.st, AUTH_OK);
	assert_string_equal(d_ok.user, "bob@a.test");
	assert_int_equal(d_bad.calls, 1);
	assert_int_equal(d_bad.st, AUTH_FAIL);
	assert_int_equal(d_gone.calls, 0);
	pool_destroy(&pool);
	ev_loop_destroy(loop);
	(void)state;
}

static void
test_tempfail(void **state)
{
	char path[300], err[512];
	const char *e = NULL;
	struct db *db;
	struct auth_ctx *c2;
	struct auth_session *s;
	sqlite3 *h;

	snprintf(path, sizeof(path), "%s/broken.db", tmpdir);
	assert_int_equal(db_open(path, 1, &db, err, sizeof(err)), 0);
	must(db_admin_domain_add(db, "b.test", &e), e, "b.test");
	add_user(db, "bob@b.test", "pw", "");
	db_close(&db);
	c2 = auth_ctx_new(path, NULL, err, sizeof(err));
	assert_non_null(c2);
	/* Another writer breaks the schema under the daemon. */
	assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "ALTER TABLE users RENAME TO gone",
	    NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	s = auth_session_new(c2, "smtp", 1);
	assert_non_null(s);
	assert_int_equal(auth_login(s, "bob@b.test", 10, "pw", 2), AUTH_VERIFY);
	assert_int_equal(auth_verify_now(s), AUTH_TEMPFAIL);
	assert_null(auth_user(s));
	auth_session_free(&s);
	auth_ctx_free(&c2);
	assert_null(c2);

	/* A missing database is refused at start, naming the fix. */
	snprintf(path, sizeof(path), "%s/missing.db", tmpdir);
	assert_null(auth_ctx_new(path, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "mailadm init"));
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechanisms),
		cmocka_unit_test(test_plain_success),
		cmocka_unit_test(test_plain_refusals),
		cmocka_unit_test(test_authzid_mismatch),
		cmocka_unit_test(test_login_two_steps),
		cmocka_unit_test(test_empty_initial_response),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_no_tls),
		cmocka_unit_test(test_unknown_mechanism),
		cmocka_unit_test(test_plain_login),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_tempfail),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
