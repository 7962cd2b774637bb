/*
 * test_srs.c - Sender Rewriting Scheme: the addresses must be the ones
 * libsrs2/postsrsd make (known answers), reverse one hop exactly, refuse
 * anything altered or old, and the key file must be private and single.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/buf.h"
#include "common/srs.h"

/* The secret file "0123456789abcdefghijklmnopqrstuv" given to postsrsd */
static const unsigned char key[SRS_KEY_LEN] =
    "0123456789abcdefghijklmnopqrstuv";
static const unsigned char key2[SRS_KEY_LEN] =
    "vutsrqponmlkjihgfedcba9876543210";

#define NOW ((time_t)1795435200)	/* 2026-11-23 12:00 UTC, day slot 300 */
#define DAY ((time_t)86400)

static void
fwd_ok(const char *sender, const char *want)
{
	char out[SRS_ADDR_MAX];

	assert_int_equal(srs_forward(key, sender, "fwd.example", NOW, out,
	    sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void
test_known_answers(void **state)
{
	(void)state;
	/* every expected address below was produced by postsrsd 1.10 */
	fwd_ok("alice@a.test", "SRS0=VEno=JM=a.test=alice@fwd.example");
	fwd_ok("John.Doe@Example.COM",
	    "SRS0=jiVM=JM=Example.COM=John.Doe@fwd.example");
	fwd_ok("SRS0=abcd=XY=orig.test=bob@other.test",
	    "SRS1=YszA=other.test==abcd=XY=orig.test=bob@fwd.example");
	fwd_ok("SRS1=zzzz=first.test==abcd=XY=orig.test=bob@other.test",
	    "SRS1=TLXK=first.test==abcd=XY=orig.test=bob@fwd.example");
	fwd_ok("srs0+abcd=XY=orig.test=bob@other.test",
	    "SRS1=6sQk=other.test=+abcd=XY=orig.test=bob@fwd.example");
}

static int
rev(const char *addr, time_t now, char *out)
{
	return srs_reverse(key, addr, now, out, SRS_ADDR_MAX);
}

static void
test_round_trips(void **state)
{
	char a[SRS_ADDR_MAX], b[SRS_ADDR_MAX], c[SRS_ADDR_MAX];

	(void)state;
	/* SRS0 */
	assert_int_equal(srs_forward(key, "o'neil+tag@orig.test",
	    "fwd.example", NOW, a, sizeof(a)), 0);
	assert_int_equal(rev(a, NOW, b), SRS_OK);
	assert_string_equal(b, "o'neil+tag@orig.test");

	/* SRS1 from an SRS0 made elsewhere: back to that SRS0 */
	assert_int_equal(srs_forward(key2, "bob@orig.test", "hop1.test",
	    NOW, a, sizeof(a)), 0);
	assert_int_equal(srs_forward(key, a, "fwd.example", NOW, b,
	    sizeof(b)), 0);
	assert_memory_equal(b, "SRS1=", 5);
	assert_int_equal(rev(b, NOW, c), SRS_OK);
	assert_string_equal(c, a);
	/* and the first hop undoes its own */
	assert_int_equal(srs_reverse(key2, c, NOW, b, sizeof(b)), SRS_OK);
	assert_string_equal(b, "bob@orig.test");

	/* SRS1 from an SRS1: the first hop is kept, only the hash is ours */
	assert_int_equal(srs_forward(key,
	    "SRS1=QQQQ=hop1.test==Hh3x=JM=orig.test=bob@hop2.test",
	    "fwd.example", NOW, a, sizeof(a)), 0);
	assert_memory_equal(a, "SRS1=", 5);
	assert_non_null(strstr(a, "=hop1.test==Hh3x=JM=orig.test=bob@"
	    "fwd.example"));
	assert_int_equal(rev(a, NOW, b), SRS_OK);
	assert_string_equal(b, "SRS0=Hh3x=JM=orig.test=bob@hop1.test");

	/* the SRS1 is not time-limited: only its SRS0 is, at the first hop */
	assert_int_equal(rev(a, NOW + 400 * DAY, b), SRS_OK);
}

/* Replace the n-th '=' separated field of the local part. */
static void
swap_field(const char *in, int field, const char *with, char *out)
{
	const char *p = in, *e;
	int i;

	for (i = 0; i < field; i++)
		p = strchr(p, '=') + 1;
	e = strpbrk(p, "=@");
	assert_int_equal(snprintf_checked(out, SRS_ADDR_MAX, "%.*s%s%s",
	    (int)(p - in), in, with, e), 0);
}

static void
test_tampering(void **state)
{
	char a[SRS_ADDR_MAX], t[SRS_ADDR_MAX], o[SRS_ADDR_MAX];

	(void)state;
	assert_int_equal(srs_forward(key, "alice@a.test", "fwd.example", NOW,
	    a, sizeof(a)), 0);
	assert_string_equal(a, "SRS0=VEno=JM=a.test=alice@fwd.example");

	swap_field(a, 1, "VEnq", t);
	assert_int_equal(rev(t, NOW, o), SRS_BAD_HASH);
	swap_field(a, 2, "JL", t);	/* yesterday: fresh, not signed */
	assert_int_equal(rev(t, NOW, o), SRS_BAD_HASH);
	swap_field(a, 3, "b.test", t);
	assert_int_equal(rev(t, NOW, o), SRS_BAD_HASH);
	swap_field(a, 4, "mallory", t);
	assert_int_equal(rev(t, NOW, o), SRS_BAD_HASH);
	assert_string_equal(t, "SRS0=VEno=JM=a.test=mallory@fwd.example");
	/* another key */
	assert_int_equal(srs_reverse(key2, a, NOW, o, sizeof(o)),
	    SRS_BAD_HASH);

	/* SRS1 */
	assert_int_equal(rev("SRS1=YszA=other.test==abcd=XY=orig.test="
	    "bob@fwd.example", NOW, o), SRS_OK);
	assert_int_equal(rev("SRS1=YszA=other.test==abcd=XY=orig.test="
	    "eve@fwd.example", NOW, o), SRS_BAD_HASH);
	assert_int_equal(rev("SRS1=YszA=evil.test==abcd=XY=orig.test="
	    "bob@fwd.example", NOW, o), SRS_BAD_HASH);
	assert_int_equal(rev("SRS1=YszB=other.test==abcd=XY=orig.test="
	    "bob@fwd.example", NOW, o), SRS_BAD_HASH);
	/* out is left alone on failure */
	strlcpy_checked(o, "untouched", sizeof(o));
	assert_int_equal(rev("SRS1=YszB=other.test==abcd=XY=orig.test="
	    "bob@fwd.example", NOW, o), SRS_BAD_HASH);
	assert_string_equal(o, "untouched");
}

static void
test_expiry(void **state)
{
	char a[SRS_ADDR_MAX], o[SRS_ADDR_MAX];
	time_t t;

	(void)state;
	assert_int_equal(srs_forward(key, "alice@a.test", "fwd.example", NOW,
	    a, sizeof(a)), 0);
	assert_int_equal(rev(a, NOW + 21 * DAY, o), SRS_OK);
	assert_int_equal(rev(a, NOW + 22 * DAY, o), SRS_EXPIRED);
	assert_int_equal(rev(a, NOW + 500 * DAY, o), SRS_EXPIRED);
	/* a stamp from "tomorrow" is 1023 days old, as libsrs2 sees it */
	assert_int_equal(rev(a, NOW - DAY, o), SRS_EXPIRED);
	/* one full cycle later the stamp is valid again (inherent to SRS) */
	assert_int_equal(rev(a, NOW + 1024 * DAY, o), SRS_OK);

	/* across the wrap: signed on day slot 1020, read on slot 4 */
	t = (NOW / DAY - 300 + 1020) * DAY;
	assert_int_equal(srs_forward(key, "alice@a.test", "fwd.example", t,
	    a, sizeof(a)), 0);
	assert_non_null(strstr(a, "=74="));	/* 1020 = 31 * 32 + 28 */
	assert_int_equal(rev(a, t + 8 * DAY, o), SRS_OK);
	assert_int_equal(rev(a, t + 21 * DAY, o), SRS_OK);
	assert_int_equal(rev(a, t + 22 * DAY, o), SRS_EXPIRED);
}

static void
test_case_folded(void **state)
{
	char a[SRS_ADDR_MAX], o[SRS_ADDR_MAX];
	size_t i;

	(void)state;
	assert_int_equal(srs_forward(key, "Alice@A.test", "fwd.example", NOW,
	    a, sizeof(a)), 0);
	for (i = 0; a[i] != '\0'; i++)
		a[i] = (char)tolower((unsigned char)a[i]);
	assert_int_equal(rev(a, NOW, o), SRS_OK);
	assert_string_equal(o, "alice@a.test");
	for (i = 0; a[i] != '\0'; i++)
		a[i] = (char)toupper((unsigned char)a[i]);
	assert_int_equal(rev(a, NOW, o), SRS_OK);
	assert_string_equal(o, "ALICE@A.TEST");
	assert_int_equal(rev("sRs1=YSZA=OTHER.test==ABCD=xy=orig.test="
	    "BOB@fwd.example", NOW, o), SRS_OK);
	assert_string_equal(o, "SRS0=ABCD=xy=orig.test=BOB@OTHER.test");
}

static void
test_not_srs_and_malformed(void **state)
{
	static const char *not_srs[] = {
		"", "alice@fwd.example", "SRS0@fwd.example", "SRS", "SRS0",
		"SRS2=VEno=JM=a.test=alice@x", "SRS0x=VEno=JM=a.test=alice@x",
		"SRS0.VEno=JM=a.test=alice@x", "XSRS0=VEno=JM=a.test=alice@x",
		"SRSO=VEno=JM=a.test=alice@x", "alice@SRS0=x",
	};
	static const char *malformed[] = {
		"SRS0=@x", "SRS0=VEno@x", "SRS0=VEn=JM=a.test=alice@x",
		"SRS0=VEnoo=JM=a.test=alice@x", "SRS0=VEno=J=a.test=alice@x",
		"SRS0=VEno=J1=a.test=alice@x", "SRS0=VEno=JMM=a.test=alice@x",
		"SRS0=VEno=JM=a.test@x", "SRS0=VEno=JM==alice@x",
		"SRS0=VEno=JM=a.test=@x", "SRS0=VEno=JM=a_b.test=alice@x",
		"SRS0=VEno=JM=[1.2.3.4]=alice@x",
		"SRS0=VEno=JM=a.test=al..ice@x",
		"SRS0=VEno=JM=a.test=alice.@x", "SRS0=VEno=JM=a.test=a\"b@x",
		"SRS0=VEno=JM=a.test=a b@x", "SRS0=VEno=JM=a.test=a\tb@x",
		"SRS1=@x", "SRS1=YszA@x", "SRS1=YszA=other.test@x",
		"SRS1=YszA=other.test=@x",
		"SRS1=YszA=other.test=abcd=XY=orig.test=bob@x",
		"SRS1=YszA==abcd=XY=orig.test=bob@x",
		"SRS1=Ysz=other.test==abcd=XY=orig.test=bob@x",
	};
	char o[SRS_ADDR_MAX], big[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(not_srs) / sizeof(not_srs[0]); i++)
		if (rev(not_srs[i], NOW, o) != SRS_NOT_SRS)
			fail_msg("%s: %s, want not SRS", not_srs[i],
			    srs_result_str(rev(not_srs[i], NOW, o)));
	assert_int_equal(srs_reverse(key, NULL, NOW, o, sizeof(o)),
	    SRS_NOT_SRS);
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		if (rev(malformed[i], NOW, o) != SRS_MALFORMED)
			fail_msg("%s: %s, want malformed", malformed[i],
			    srs_result_str(rev(malformed[i], NOW, o)));
	/* a bare separator is what follows "SRS0" in "SRS0=@host" */
	assert_int_equal(rev("SRS1=YszA=other.test==@x", NOW, o),
	    SRS_BAD_HASH);
	/* separators after the tag as libsrs2 accepts them */
	assert_int_equal(rev("SRS0-VEno=JM=a.test=alice@x", NOW, o), SRS_OK);
	assert_int_equal(rev("SRS0+VEno=JM=a.test=alice@x", NOW, o), SRS_OK);
	/* no domain at all: the whole string is the local part */
	assert_int_equal(rev("SRS0=VEno=JM=a.test=alice", NOW, o), SRS_OK);
	assert_string_equal(o, "alice@a.test");

	/* longer than any address we make */
	memset(big, 'a', sizeof(big));
	memcpy(big, "SRS0=VEno=JM=a.test=", 20);
	strlcpy_checked(big + 300, "@fwd.example", sizeof(big) - 300);
	assert_int_equal(rev(big, NOW, o), SRS_MALFORMED);

	/* an out buffer too small */
	assert_int_equal(srs_reverse(key, "SRS0=VEno=JM=a.test=alice@x", NOW,
	    o, 5), SRS_MALFORMED);
}

static void
test_forward_refusals(void **state)
{
	static const char *bad[] = {
		"", "alice", "@a.test", "alice@", "a b@a.test", "a\"b@a.test",
		"al..ice@a.test", "alice.@a.test", "a\r\nb@a.test",
		"alice@[192.0.2.1]", "alice@a_b.test", "alice@a..test",
		"al\xc3\xa9@a.test", "alice@b\xc3\xa9.test",
		"SRS1=abc@a.test", "SRS1=abcd=host.test@a.test",
		"SRS1=abcd=host.test=@a.test", "SRS1==host.test==x@a.test",
		"SRS1=abcd=host.test=bob@a.test",
	};
	char out[SRS_ADDR_MAX], user[80], dom[200];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strlcpy_checked(out, "untouched", sizeof(out));
		errno = 0;
		if (srs_forward(key, bad[i], "fwd.example", NOW, out,
		    sizeof(out)) != -1 || errno != EINVAL)
			fail_msg("%s: accepted or errno %d", bad[i], errno);
		assert_string_equal(out, "untouched");
	}
	assert_int_equal(srs_forward(key, NULL, "fwd.example", NOW, out,
	    sizeof(out)), -1);
	assert_int_equal(srs_forward(key, "a@b.test", "[1.2.3.4]", NOW, out,
	    sizeof(out)), -1);
	assert_int_equal(errno, EINVAL);

	/* the local part: "SRS0=HHHH=TT=a.test=" is 20, so 44 fit in 64 */
	memset(user, 'u', 44);
	strlcpy_checked(user + 44, "@a.test", sizeof(user) - 44);
	assert_int_equal(srs_forward(key, user, "fwd.example", NOW, out,
	    sizeof(out)), 0);
	assert_int_equal(strchr(out, '@') - out, 64);
	memset(user, 'u', 45);
	strlcpy_checked(user + 45, "@a.test", sizeof(user) - 45);
	assert_int_equal(srs_forward(key, user, "fwd.example", NOW, out,
	    sizeof(out)), -1);
	assert_int_equal(errno, ERANGE);

	/* the whole address: 64 + '@' + 189 = 254 */
	memset(user, 'u', 44);
	strlcpy_checked(user + 44, "@a.test", sizeof(user) - 44);
	for (i = 0; i < 189; i++)
		dom[i] = (i % 50 == 49) ? '.' : 'd';
	dom[189] = '\0';
	assert_int_equal(srs_forward(key, user, dom, NOW, out, sizeof(out)),
	    0);
	assert_int_equal(strlen(out), 254);
	dom[189] = 'd';
	dom[190] = '\0';
	assert_int_equal(srs_forward(key, user, dom, NOW, out, sizeof(out)),
	    -1);
	assert_int_equal(errno, ERANGE);

	/* the caller's buffer */
	assert_int_equal(srs_forward(key, "alice@a.test", "fwd.example", NOW,
	    out, 37), -1);		/* 37 octets and the NUL */
	assert_int_equal(errno, ERANGE);
	assert_int_equal(srs_forward(key, "alice@a.test", "fwd.example", NOW,
	    out, 38), 0);

	/* a sender of our own domain needs no rewriting */
	assert_int_equal(srs_forward(key, "bob@FWD.example", "fwd.example",
	    NOW, out, sizeof(out)), 0);
	assert_string_equal(out, "bob@FWD.example");
	assert_int_equal(srs_forward(key, "SRS0=VEno=JM=a.test=alice@"
	    "fwd.example", "fwd.example", NOW, out, sizeof(out)), 0);
	assert_string_equal(out, "SRS0=VEno=JM=a.test=alice@fwd.example");
}

/* Many threads at once with one key give the same answers. */
static void *
thread_main(void *arg)
{
	char a[SRS_ADDR_MAX], b[SRS_ADDR_MAX];
	int i;

	(void)arg;
	for (i = 0; i < 2000; i++) {
		if (srs_forward(key, "alice@a.test", "fwd.example", NOW, a,
		    sizeof(a)) != 0 ||
		    strcmp(a, "SRS0=VEno=JM=a.test=alice@fwd.example") != 0 ||
		    srs_reverse(key, a, NOW, b, sizeof(b)) != SRS_OK ||
		    strcmp(b, "alice@a.test") != 0)
			return (void *)1;
	}
	return NULL;
}

static void
test_threads(void **state)
{
	pthread_t t[8];
	void *r;
	int i;

	(void)state;
	for (i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main,
		    NULL), 0);
	for (i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(t[i], &r), 0);
		assert_null(r);
	}
}

static void
rm_dir(const char *dir)
{
	char cmd[512];

	assert_int_equal(snprintf_checked(cmd, sizeof(cmd), "rm -rf '%s'",
	    dir), 0);
	assert_int_equal(system(cmd), 0);
}

static int
dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_key_file(void **state)
{
	char dir[] = "/tmp/test_srs.XXXXXX", path[300], err[256];
	unsigned char k1[SRS_KEY_LEN], k2[SRS_KEY_LEN];
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(snprintf_checked(path, sizeof(path), "%s/srs.key",
	    dir), 0);

	/* missing and not asked to create */
	assert_int_equal(srs_secret_load(dir, 0, k1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "missing"));
	assert_int_equal(dir_entries(dir), 0);

	umask(022);
	assert_int_equal(srs_secret_load(dir, 1, k1, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, SRS_KEY_LEN);
	assert_int_equal(dir_entries(dir), 1);	/* no temp file left */
	assert_int_equal(srs_secret_load(dir, 1, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, SRS_KEY_LEN);
	assert_int_equal(srs_secret_load(dir, 0, k2, err, sizeof(err)), 0);
	assert_memory_equal(k1, k2, SRS_KEY_LEN);

	/* readable by the group */
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(srs_secret_load(dir, 1, k2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0604), 0);
	assert_int_equal(srs_secret_load(dir, 1, k2, err, sizeof(err)), -1);
	assert_int_equal(chmod(path, 0600), 0);

	/* wrong sizes are refused, never replaced */
	assert_int_equal(truncate(path, SRS_KEY_LEN - 1), 0);
	assert_int_equal(srs_secret_load(dir, 1, k2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "31 bytes"));
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(fwrite("0123456789abcdefghijklmnopqrstuvw", 1, 33, f),
	    33);
	fclose(f);
	assert_int_equal(srs_secret_load(dir, 1, k2, err, sizeof(err)), -1);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 33);

	/* a symbolic link is not followed */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink("/etc/hostname", path), 0);
	assert_int_equal(srs_secret_load(dir, 1, k2, err, sizeof(err)), -1);
	assert_int_equal(unlink(path), 0);

	/* a directory that does not exist */
	assert_int_equal(snprintf_checked(path, sizeof(path), "%s/none",
	    dir), 0);
	assert_int_equal(srs_secret_load(path, 1, k2, err, sizeof(err)), -1);
	rm_dir(dir);
}

/* Processes starting at once all end up with one key. */
static void
test_key_race(void **state)
{
	char dir[] = "/tmp/test_srs.XXXXXX", err[256];
	unsigned char k[8][SRS_KEY_LEN];
	int fds[8][2], i, st;
	pid_t pid[8];

	(void)state;
	assert_non_null(mkdtemp(dir));
	for (i = 0; i < 8; i++) {
		assert_int_equal(pipe(fds[i]), 0);
		if ((pid[i] = fork()) == 0) {
			unsigned char mine[SRS_KEY_LEN];

			if (srs_secret_load(dir, 1, mine, err,
			    sizeof(err)) < 0)
				_exit(1);
			_exit(write(fds[i][1], mine, sizeof(mine)) ==
			    (ssize_t)sizeof(mine) ? 0 : 1);
		}
		assert_true(pid[i] > 0);
	}
	for (i = 0; i < 8; i++) {
		assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(read(fds[i][0], k[i], SRS_KEY_LEN),
		    SRS_KEY_LEN);
		close(fds[i][0]);
		close(fds[i][1]);
		assert_memory_equal(k[i], k[0], SRS_KEY_LEN);
	}
	assert_int_equal(dir_entries(dir), 1);
	rm_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_case_folded),
		cmocka_unit_test(test_not_srs_and_malformed),
		cmocka_unit_test(test_forward_refusals),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_key_file),
		cmocka_unit_test(test_key_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
