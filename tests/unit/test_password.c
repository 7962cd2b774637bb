/*
 * test_password.c - cmocka tests for common/password.c: password_hash()
 * and password_verify() over libxcrypt.
 *
 * Covers: yescrypt round trip and a fresh salt per hash; wrong, empty and
 * near-miss passwords; $6$, $5$ and $2b$ hashes made with crypt_gensalt_ra
 * at test time; Dovecot {SHA512-CRYPT}, {SHA256-CRYPT}, {BLF-CRYPT} and
 * {CRYPT} prefixes; locked hashes ('!' and '*', also behind a prefix);
 * unsupported schemes (MD5-crypt, DES, unknown {SCHEME}) never matching;
 * a malformed hash; an output buffer too small.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <crypt.h>

#include "common/buf.h"
#include "common/db.h"
#include "common/log.h"

/* A hash of pw made by libxcrypt directly, with the given method prefix. */
static void
make_hash(const char *prefix, unsigned long rounds, const char *pw,
    char *out, size_t outsz)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	char *salt = crypt_gensalt_ra(prefix, rounds, NULL, 0);
	const char *h;

	assert_non_null(cd);
	if (salt == NULL)
		fail_msg("crypt_gensalt_ra(%s) failed", prefix);
	h = crypt_r(pw, salt, cd);
	assert_non_null(h);
	assert_true(h[0] != '*');
	assert_int_equal(strlcpy_checked(out, h, outsz), 0);
	free(salt);
	free(cd);
}

static void
test_yescrypt_round_trip(void **state)
{
	char h1[DB_HASH_MAX], h2[DB_HASH_MAX];

	assert_int_equal(password_hash("correct horse", h1, sizeof(h1)), 0);
	assert_memory_equal(h1, "$y$", 3);
	assert_int_equal(password_verify(h1, "correct horse"), 1);
	assert_int_equal(password_hash("correct horse", h2, sizeof(h2)), 0);
	assert_string_not_equal(h1, h2);	/* a new salt each time */
	assert_int_equal(password_verify(h2, "correct horse"), 1);
	(void)state;
}

static void
test_wrong_password(void **state)
{
	char h[DB_HASH_MAX];

	assert_int_equal(password_hash("s3cret", h, sizeof(h)), 0);
	assert_int_equal(password_verify(h, "s3cret "), 0);
	assert_int_equal(password_verify(h, "S3cret"), 0);
	assert_int_equal(password_verify(h, "s3cre"), 0);
	assert_int_equal(password_verify(h, ""), 0);
	(void)state;
}

static void
check_method(const char *prefix, unsigned long rounds)
{
	char h[DB_HASH_MAX];

	make_hash(prefix, rounds, "imported pw", h, sizeof(h));
	assert_memory_equal(h, prefix, strlen(prefix));
	if (password_verify(h, "imported pw") != 1)
		fail_msg("%s hash %s did not verify", prefix, h);
	assert_int_equal(password_verify(h, "imported pX"), 0);
}

static void
test_sha512_crypt(void **state)
{
	check_method("$6$", 5000);
	(void)state;
}

static void
test_sha256_crypt(void **state)
{
	check_method("$5$", 5000);
	(void)state;
}

static void
test_bcrypt(void **state)
{
	check_method("$2b$", 5);
	(void)state;
}

static void
test_dovecot_prefixes(void **state)
{
	char h[DB_HASH_MAX], pref[DB_HASH_MAX + 32];

	make_hash("$6$", 5000, "dovecot", h, sizeof(h));
	snprintf(pref, sizeof(pref), "{SHA512-CRYPT}%s", h);
	assert_int_equal(password_verify(pref, "dovecot"), 1);
	assert_int_equal(password_verify(pref, "Dovecot"), 0);
	snprintf(pref, sizeof(pref), "{CRYPT}%s", h);
	assert_int_equal(password_verify(pref, "dovecot"), 1);
	snprintf(pref, sizeof(pref), "{MD5}%s", h);	/* unknown scheme */
	assert_int_equal(password_verify(pref, "dovecot"), 0);

	make_hash("$5$", 5000, "dovecot", h, sizeof(h));
	snprintf(pref, sizeof(pref), "{SHA256-CRYPT}%s", h);
	assert_int_equal(password_verify(pref, "dovecot"), 1);

	make_hash("$2b$", 5, "dovecot", h, sizeof(h));
	snprintf(pref, sizeof(pref), "{BLF-CRYPT}%s", h);
	assert_int_equal(password_verify(pref, "dovecot"), 1);
	(void)state;
}

static void
test_locked(void **state)
{
	char h[DB_HASH_MAX], locked[DB_HASH_MAX + 32];

	assert_int_equal(password_hash("pw", h, sizeof(h)), 0);
	snprintf(locked, sizeof(locked), "!%s", h);
	assert_int_equal(password_verify(locked, "pw"), 0);
	snprintf(locked, sizeof(locked), "*%s", h);
	assert_int_equal(password_verify(locked, "pw"), 0);
	snprintf(locked, sizeof(locked), "{CRYPT}!%s", h);
	assert_int_equal(password_verify(locked, "pw"), 0);
	assert_int_equal(password_verify("!", ""), 0);
	assert_int_equal(password_verify("*", ""), 0);
	assert_int_equal(password_verify("", ""), 0);
	(void)state;
}

static void
test_weak_or_bad_hashes(void **state)
{
	char h[DB_HASH_MAX];

	make_hash("$1$", 0, "md5", h, sizeof(h));	/* MD5-crypt: refused */
	assert_int_equal(password_verify(h, "md5"), 0);
	assert_int_equal(password_verify("abJnggxhB/yWI", "test"), 0);	/* DES */
	/* Accepted method, but not a valid hash: an error, never a match. */
	assert_int_equal(password_verify("$2b$99$abcdefghijklmnopqrstuu", "x"),
	    -1);
	assert_int_equal(password_verify("$y$!!!", "x"), -1);
	/* A bare setting computes to something longer: no match. */
	assert_int_equal(password_verify("$6$", "x"), 0);
	assert_int_equal(password_verify(NULL, "x"), -1);
	(void)state;
}

static void
test_hash_buffer_too_small(void **state)
{
	char h[10];

	assert_int_equal(password_hash("pw", h, sizeof(h)), -1);
	(void)state;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yescrypt_round_trip),
		cmocka_unit_test(test_wrong_password),
		cmocka_unit_test(test_sha512_crypt),
		cmocka_unit_test(test_sha256_crypt),
		cmocka_unit_test(test_bcrypt),
		cmocka_unit_test(test_dovecot_prefixes),
		cmocka_unit_test(test_locked),
		cmocka_unit_test(test_weak_or_bad_hashes),
		cmocka_unit_test(test_hash_buffer_too_small),
	};

	log_init("test_password", 0);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
