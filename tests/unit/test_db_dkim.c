/*
 * test_db_dkim.c - common/db_dkim.c: selector syntax, the oldest active
 * key signs, rotation by retiring, the refusals (unknown domain, same
 * selector twice, retiring twice).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/db_admin.h"
#include "common/db_dkim.h"
#include "store_testutil.h"

struct fixture {
	char dir[256];
	struct db *db;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[512], err[512];
	const char *error;

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf_checked(path, sizeof(path), "%s/buzon.db", f->dir);
	if (db_open(path, 1, &f->db, err, sizeof(err)) < 0 ||
	    db_admin_domain_add(f->db, "a.test", &error) < 0 ||
	    db_admin_domain_add(f->db, "b.test", &error) < 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	db_close(&f->db);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void
test_selector_syntax(void **state)
{
	static const char *const good[] = { "s1", "s202611", "mail-2026",
	    "a.b", "x", "0" };
	static const char *const bad[] = { "", ".", "a..b", ".a", "a.", "-a",
	    "a-", "a.-b", "a_b", "a b", "a/b", "../x", "a\nb", "é" };
	char out[DKIM_SELECTOR_MAX + 1], longl[80];
	const char *error;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(db_dkim_check_selector(good[i], out,
		    sizeof(out), &error), 0);
		assert_string_equal(out, good[i]);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (db_dkim_check_selector(bad[i], out, sizeof(out),
		    &error) == 0)
			fail_msg("selector \"%s\" accepted", bad[i]);
	assert_int_equal(db_dkim_check_selector("S1", out, sizeof(out),
	    &error), 0);
	assert_string_equal(out, "s1");
	memset(longl, 'a', 63);
	longl[63] = '\0';
	assert_int_equal(db_dkim_check_selector(longl, out, sizeof(out),
	    &error), 0);
	longl[63] = 'a';
	longl[64] = '\0';
	assert_int_equal(db_dkim_check_selector(longl, out, sizeof(out),
	    &error), -1);
}

static void
test_oldest_active_signs(void **state)
{
	struct fixture *f = *state;
	struct db_dkim_key k, *l;
	char sel[64], path[256];
	const char *error;
	size_t n;

	assert_int_equal(db_dkim_signer(f->db, "a.test", &k), 0);
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "s1",
	    "/k/a.test.s1.key", &error), 0);
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "s2",
	    "/k/a.test.s2.key", &error), 0);
	assert_int_equal(db_dkim_key_add(f->db, "b.test", "s0",
	    "/k/b.test.s0.key", &error), 0);
	assert_int_equal(db_dkim_signer(f->db, "a.test", &k), 1);
	assert_string_equal(k.selector, "s1");
	assert_string_equal(k.key_path, "/k/a.test.s1.key");
	assert_int_equal(db_dkim_signing_key(f->db, "A.TEST", sel, sizeof(sel),
	    path, sizeof(path)), 1);
	assert_string_equal(sel, "s1");
	assert_int_equal(db_dkim_signing_key(f->db, "a.test", sel, 2, path,
	    sizeof(path)), -1);		/* does not fit */

	assert_int_equal(db_dkim_key_list(f->db, "a.test", &l, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(l[0].selector, "s1");
	assert_true(l[0].active && l[0].signing);
	assert_string_equal(l[1].selector, "s2");
	assert_true(l[1].active && !l[1].signing);
	free(l);
	assert_int_equal(db_dkim_key_list(f->db, NULL, &l, &n, &error), 0);
	assert_int_equal(n, 3);
	assert_string_equal(l[2].domain, "b.test");
	assert_true(l[2].signing);
	free(l);

	/* rotation: s1 retired, s2 signs; s1 stays listed, inactive */
	assert_int_equal(db_dkim_key_retire(f->db, "a.test", "s1", &error), 0);
	assert_int_equal(db_dkim_signer(f->db, "a.test", &k), 1);
	assert_string_equal(k.selector, "s2");
	assert_int_equal(db_dkim_key_list(f->db, "a.test", &l, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_true(!l[0].active && !l[0].signing);
	assert_true(l[1].active && l[1].signing);
	free(l);
	/* a newer key never takes over from an older active one */
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "s3",
	    "/k/a.test.s3.key", &error), 0);
	assert_int_equal(db_dkim_signer(f->db, "a.test", &k), 1);
	assert_string_equal(k.selector, "s2");
	assert_int_equal(db_dkim_key_retire(f->db, "a.test", "s2", &error), 0);
	assert_int_equal(db_dkim_key_retire(f->db, "a.test", "s3", &error), 0);
	assert_int_equal(db_dkim_signer(f->db, "a.test", &k), 0);
}

static void
test_refusals(void **state)
{
	struct fixture *f = *state;
	struct db_dkim_key *l;
	const char *error;
	size_t n;

	assert_int_equal(db_dkim_key_add(f->db, "c.test", "s1",
	    "/k/c.test.s1.key", &error), -1);
	assert_non_null(strstr(error, "mailadm domain add"));
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "bad_sel",
	    "/k/x.key", &error), -1);
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "s1", "relative.key",
	    &error), -1);
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "s1", "/k/1.key",
	    &error), 0);
	assert_int_equal(db_dkim_key_exists(f->db, "a.test", "s1", &error), 1);
	assert_int_equal(db_dkim_key_exists(f->db, "a.test", "s9", &error), 0);
	assert_int_equal(db_dkim_key_add(f->db, "a.test", "S1", "/k/2.key",
	    &error), -1);
	assert_non_null(strstr(error, "already has"));
	assert_int_equal(db_dkim_key_retire(f->db, "a.test", "s9", &error), -1);
	assert_non_null(strstr(error, "no DKIM key"));
	assert_int_equal(db_dkim_key_retire(f->db, "a.test", "s1", &error), 0);
	assert_int_equal(db_dkim_key_retire(f->db, "a.test", "s1", &error), -1);
	assert_non_null(strstr(error, "already retired"));
	assert_int_equal(db_dkim_key_list(f->db, "c.test", &l, &n, &error), -1);
}

/* Deleting a domain with --force takes its keys' rows with it. */
static void
test_domain_del(void **state)
{
	struct fixture *f = *state;
	struct db_dkim_key *l;
	const char *error;
	unsigned u, a;
	size_t n;

	assert_int_equal(db_dkim_key_add(f->db, "b.test", "s1", "/k/b.key",
	    &error), 0);
	assert_int_equal(db_admin_domain_del(f->db, "b.test", 1, &u, &a,
	    &error), 0);
	assert_int_equal(db_dkim_key_list(f->db, NULL, &l, &n, &error), 0);
	assert_int_equal(n, 0);
	free(l);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_selector_syntax),
		T(test_oldest_active_signs),
		T(test_refusals),
		T(test_domain_del),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
