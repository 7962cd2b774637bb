/*
 * test_resolve.c - cmocka tests for recipient resolution (common/db_resolve.c)
 * and the lookups around it (common/db.c, common/db_admin.c), against a
 * throw-away database in a mkdtemp directory filled through db_admin.
 *
 * Covers: a user; an alias to a user; an alias chain; a diamond delivered
 * once; a loop a->b->a (RESOLVE_LOOP) and a loop that still has a real
 * target; chain depth at and past RESOLVE_MAX_DEPTH; the catch-all used
 * only when no user or alias matches; +tag subaddresses; case-insensitive
 * local parts; redirections outside, deduplicated caselessly; keep-a-copy
 * forwarding; inactive users and domains; unknown addresses and domains;
 * expansion past RESOLVE_MAX_TARGETS; db_user_maildir path rules;
 * db_open on a missing file.  Never touches anything outside its tmp dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/db.h"
#include "common/db_admin.h"

static char tmpdir[] = "/tmp/buzon-test-resolve.XXXXXX";
static char dbpath[256];
static struct db *db;

static void
must(int r, const char *error, const char *what)
{
	if (r != 0)
		fail_msg("%s: %s", what, error ? error : "?");
}

static void
add_domain(const char *d)
{
	const char *e = NULL;

	must(db_admin_domain_add(db, d, &e), e, d);
}

static void
add_user(const char *a)
{
	const char *e = NULL;

	must(db_admin_user_add(db, a, "$y$j9T$notarealhash", 1024, &e), e, a);
}

static void
add_alias(const char *s, const char *t)
{
	const char *e = NULL;

	must(db_admin_alias_add(db, s, t, &e), e, s);
}

static int
setup(void **state)
{
	char err[512], s[ADDR_MAX], t[ADDR_MAX];
	const char *e = NULL;
	int i;

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/test.db", tmpdir);
	if (db_open(dbpath, 1, &db, err, sizeof(err)) < 0) {
		fprintf(stderr, "db_open: %s\n", err);
		return -1;
	}
	add_domain("a.test");
	add_domain("c.test");		/* has a catch-all */
	add_domain("loop.test");	/* catch-all pointing into itself */
	add_domain("off.test");		/* inactive */

	add_user("bob@a.test");
	add_user("carol@a.test");
	add_user("dave@a.test");
	add_user("eve@a.test");
	must(db_admin_user_set_active(db, "eve@a.test", 0, &e), e, "eve");
	add_user("keep@a.test");

	add_alias("postmaster@a.test", "bob@a.test");
	add_alias("chain1@a.test", "chain2@a.test");
	add_alias("chain2@a.test", "chain3@a.test");
	add_alias("chain3@a.test", "carol@a.test");
	add_alias("diamond@a.test", "d1@a.test");
	add_alias("diamond@a.test", "d2@a.test");
	add_alias("d1@a.test", "dave@a.test");
	add_alias("d2@a.test", "DAVE@a.test");
	add_alias("loopa@a.test", "loopb@a.test");
	add_alias("loopb@a.test", "loopa@a.test");
	add_alias("loopmix@a.test", "loopa@a.test");
	add_alias("loopmix@a.test", "bob@a.test");
	add_alias("fwd@a.test", "someone@outside.test");
	add_alias("multi@a.test", "ext1@out.test");
	add_alias("multi@a.test", "alias2@a.test");
	add_alias("alias2@a.test", "EXT1@Out.test");
	add_alias("keep@a.test", "keep@a.test");
	add_alias("keep@a.test", "keep@out.test");
	add_alias("todisabled@a.test", "eve@a.test");
	add_alias("nowhere@a.test", "ghost@a.test");

	/* ok0 -> ... -> ok9 -> carol: carol at depth 10 (the limit). */
	for (i = 0; i < RESOLVE_MAX_DEPTH; i++) {
		snprintf(s, sizeof(s), "ok%d@a.test", i);
		if (i + 1 < RESOLVE_MAX_DEPTH)
			snprintf(t, sizeof(t), "ok%d@a.test", i + 1);
		else
			snprintf(t, sizeof(t), "carol@a.test");
		add_alias(s, t);
	}
	/* deep0 -> ... -> deep10 -> carol: carol at depth 11. */
	for (i = 0; i <= RESOLVE_MAX_DEPTH; i++) {
		snprintf(s, sizeof(s), "deep%d@a.test", i);
		if (i < RESOLVE_MAX_DEPTH)
			snprintf(t, sizeof(t), "deep%d@a.test", i + 1);
		else
			snprintf(t, sizeof(t), "carol@a.test");
		add_alias(s, t);
	}
	for (i = 0; i <= RESOLVE_MAX_TARGETS; i++) {
		snprintf(t, sizeof(t), "r%d@far.test", i);
		add_alias("big@a.test", t);
	}

	add_user("real@c.test");
	add_alias("@c.test", "bob@a.test");
	add_alias("@loop.test", "nobody@loop.test");

	add_user("u@off.test");
	must(db_admin_domain_set_active(db, "off.test", 0, &e), e, "off.test");
	(void)state;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	db_close(&db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	(void)!system(cmd);
	(void)state;
	return 0;
}

/* Resolve a printable address. */
static enum resolve_status
resolve(const char *addr, struct resolve_result *res)
{
	struct mailaddr m;
	const char *why;

	if (addr_parse_plain(addr, &m, &why) < 0)
		fail_msg("bad test address %s: %s", addr, why);
	return db_resolve(db, &m, res);
}

static int
has_local(const struct resolve_result *r, const char *a)
{
	size_t i;

	for (i = 0; i < r->nlocal; i++)
		if (strcasecmp(r->local[i].address, a) == 0)
			return 1;
	return 0;
}

static int
has_external(const struct resolve_result *r, const char *a)
{
	size_t i;

	for (i = 0; i < r->nexternal; i++)
		if (strcasecmp(r->external[i], a) == 0)
			return 1;
	return 0;
}

/* Expect exactly one local mailbox and no outside target. */
static void
expect_one_local(const char *rcpt, const char *mailbox)
{
	struct resolve_result r;
	enum resolve_status st = resolve(rcpt, &r);

	if (st != RESOLVE_OK)
		fail_msg("%s: status %d, expected RESOLVE_OK", rcpt, st);
	if (r.nlocal != 1 || r.nexternal != 0 || !has_local(&r, mailbox))
		fail_msg("%s: got %zu local (first %s), %zu external; expected "
		    "only %s", rcpt, r.nlocal, r.nlocal ? r.local[0].address :
		    "-", r.nexternal, mailbox);
	resolve_result_free(&r);
}

static void
expect_status(const char *rcpt, enum resolve_status want)
{
	struct resolve_result r;
	enum resolve_status st = resolve(rcpt, &r);

	if (st != want)
		fail_msg("%s: status %d, expected %d", rcpt, st, want);
	if (st != RESOLVE_OK) {
		assert_null(r.local);
		assert_null(r.external);
		assert_int_equal(r.nlocal + r.nexternal, 0);
	}
	resolve_result_free(&r);
}

static void
test_user(void **state)
{
	struct resolve_result r;

	assert_int_equal(resolve("bob@a.test", &r), RESOLVE_OK);
	assert_int_equal(r.nlocal, 1);
	assert_string_equal(r.local[0].address, "bob@a.test");
	assert_int_equal(r.local[0].quota_bytes, 1024);
	resolve_result_free(&r);
	(void)state;
}

static void
test_alias_to_user(void **state)
{
	expect_one_local("postmaster@a.test", "bob@a.test");
	(void)state;
}

static void
test_alias_chain(void **state)
{
	expect_one_local("chain1@a.test", "carol@a.test");
	(void)state;
}

static void
test_diamond_dedupe(void **state)
{
	expect_one_local("diamond@a.test", "dave@a.test");
	(void)state;
}

static void
test_loop(void **state)
{
	expect_status("loopa@a.test", RESOLVE_LOOP);
	expect_status("loopb@a.test", RESOLVE_LOOP);
	(void)state;
}

static void
test_loop_with_real_target(void **state)
{
	expect_one_local("loopmix@a.test", "bob@a.test");
	(void)state;
}

static void
test_depth_limit(void **state)
{
	expect_one_local("ok0@a.test", "carol@a.test");
	expect_status("deep0@a.test", RESOLVE_LOOP);
	/* Entering the same chain lower down is short enough. */
	expect_one_local("deep1@a.test", "carol@a.test");
	(void)state;
}

static void
test_catchall_used_when_nothing_matches(void **state)
{
	expect_one_local("whoever@c.test", "bob@a.test");
	(void)state;
}

static void
test_catchall_not_used_for_user(void **state)
{
	expect_one_local("real@c.test", "real@c.test");
	expect_one_local("REAL@c.test", "real@c.test");
	expect_one_local("real+tag@c.test", "real@c.test");
	(void)state;
}

static void
test_catchall_loop(void **state)
{
	expect_status("x@loop.test", RESOLVE_LOOP);
	(void)state;
}

static void
test_no_catchall_unknown(void **state)
{
	expect_status("nobody@a.test", RESOLVE_UNKNOWN);
	expect_status("nobody+tag@a.test", RESOLVE_UNKNOWN);
	expect_status("+tag@a.test", RESOLVE_UNKNOWN);
	expect_status("nowhere@a.test", RESOLVE_UNKNOWN);	/* alias to no one */
	(void)state;
}

static void
test_unknown_domain(void **state)
{
	expect_status("bob@elsewhere.test", RESOLVE_UNKNOWN);
	(void)state;
}

static void
test_subaddress(void **state)
{
	expect_one_local("bob+news@a.test", "bob@a.test");
	expect_one_local("bob+a+b@a.test", "bob@a.test");
	expect_one_local("postmaster+x@a.test", "bob@a.test");
	(void)state;
}

static void
test_case_insensitive(void **state)
{
	expect_one_local("BOB@a.test", "bob@a.test");
	expect_one_local("PostMaster@A.TEST", "bob@a.test");
	expect_one_local("Chain1@a.test", "carol@a.test");
	(void)state;
}

static void
test_redirect_outside(void **state)
{
	struct resolve_result r;

	assert_int_equal(resolve("fwd@a.test", &r), RESOLVE_OK);
	assert_int_equal(r.nlocal, 0);
	assert_int_equal(r.nexternal, 1);
	assert_string_equal(r.external[0], "someone@outside.test");
	resolve_result_free(&r);

	/* The same outside address twice, in different case: once. */
	assert_int_equal(resolve("multi@a.test", &r), RESOLVE_OK);
	assert_int_equal(r.nlocal, 0);
	assert_int_equal(r.nexternal, 1);
	assert_true(has_external(&r, "ext1@out.test"));
	resolve_result_free(&r);
	(void)state;
}

static void
test_keep_a_copy(void **state)
{
	struct resolve_result r;

	assert_int_equal(resolve("keep@a.test", &r), RESOLVE_OK);
	assert_int_equal(r.nlocal, 1);
	assert_int_equal(r.nexternal, 1);
	assert_true(has_local(&r, "keep@a.test"));
	assert_true(has_external(&r, "keep@out.test"));
	resolve_result_free(&r);
	(void)state;
}

static void
test_disabled(void **state)
{
	struct db_user u;

	expect_status("eve@a.test", RESOLVE_DISABLED);
	expect_status("eve+tag@a.test", RESOLVE_DISABLED);
	expect_status("todisabled@a.test", RESOLVE_DISABLED);
	expect_status("u@off.test", RESOLVE_DISABLED);
	expect_status("anyone@off.test", RESOLVE_DISABLED);
	assert_int_equal(db_user_get(db, "u@off.test", &u), 1);
	assert_int_equal(u.active, 0);	/* user active, domain not */
	assert_int_equal(db_domain_is_local(db, "off.test"), 0);
	assert_int_equal(db_domain_is_local(db, "a.test"), 1);
	assert_int_equal(db_domain_is_local(db, "A.TEST"), 1);
	assert_int_equal(db_domain_is_local(db, "nope.test"), 0);
	(void)state;
}

static void
test_too_many(void **state)
{
	expect_status("big@a.test", RESOLVE_TOO_MANY);
	(void)state;
}

static void
test_user_get(void **state)
{
	struct db_user u;

	assert_int_equal(db_user_get(db, "Carol@A.test", &u), 1);
	assert_string_equal(u.address, "carol@a.test");
	assert_string_equal(u.domain, "a.test");
	assert_string_equal(u.password_hash, "$y$j9T$notarealhash");
	assert_int_equal(u.active, 1);
	assert_true(u.created_at > 0);
	assert_int_equal(db_user_get(db, "nobody@a.test", &u), 0);
	(void)state;
}

static void
test_user_maildir(void **state)
{
	char out[256];

	assert_int_equal(db_user_maildir("/m", "Bob.X@Example.ORG", out,
	    sizeof(out)), 0);
	assert_string_equal(out, "/m/example.org/bob.x");
	assert_int_equal(db_user_maildir("/m", "../x@d", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", ".x@d", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "..@d", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "a/b@d", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "x@..", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "x@a/b", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "@d", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "x@", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "x", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "a\nb@d", out, sizeof(out)), -1);
	assert_int_equal(db_user_maildir("/m", "bob@d", out, 8), -1);
	(void)state;
}

static void
test_open_missing(void **state)
{
	char path[300], err[512];
	struct db *d = NULL;

	snprintf(path, sizeof(path), "%s/missing.db", tmpdir);
	assert_int_equal(db_open(path, 0, &d, err, sizeof(err)), -1);
	assert_null(d);
	assert_non_null(strstr(err, "mailadm init"));
	assert_int_equal(access(path, F_OK), -1);
	(void)state;
}

static void
test_admin_refusals(void **state)
{
	const char *e = NULL;

	assert_int_equal(db_admin_domain_add(db, "A.test", &e), -1);
	assert_non_null(strstr(e, "already exists"));
	assert_int_equal(db_admin_user_add(db, "BOB@a.test", "$y$x", 0, &e), -1);
	assert_non_null(strstr(e, "already exists"));
	assert_int_equal(db_admin_user_add(db, "x@nothere.test", "$y$x", 0, &e),
	    -1);
	assert_non_null(strstr(e, "mailadm domain add nothere.test"));
	assert_int_equal(db_admin_user_add(db, "a+b@a.test", "$y$x", 0, &e), -1);
	assert_int_equal(db_admin_alias_add(db, "fwd@a.test",
	    "someone@outside.test", &e), -1);
	assert_non_null(strstr(e, "already exists"));
	assert_int_equal(db_admin_alias_add(db, "ghost@a.test", "ghost@a.test",
	    &e), -1);
	assert_int_equal(db_admin_alias_add(db, "@nothere.test", "bob@a.test",
	    &e), -1);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_user),
		cmocka_unit_test(test_alias_to_user),
		cmocka_unit_test(test_alias_chain),
		cmocka_unit_test(test_diamond_dedupe),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_loop_with_real_target),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_catchall_used_when_nothing_matches),
		cmocka_unit_test(test_catchall_not_used_for_user),
		cmocka_unit_test(test_catchall_loop),
		cmocka_unit_test(test_no_catchall_unknown),
		cmocka_unit_test(test_unknown_domain),
		cmocka_unit_test(test_subaddress),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_redirect_outside),
		cmocka_unit_test(test_keep_a_copy),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_user_get),
		cmocka_unit_test(test_user_maildir),
		cmocka_unit_test(test_open_missing),
		cmocka_unit_test(test_admin_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
