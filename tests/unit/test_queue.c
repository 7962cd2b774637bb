/*
 * test_queue.c - store/queue.c and store/queue_env.c: a written entry
 * reads back exactly, envelope rewrites, the parser's refusals, removal.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "store/queue.h"
#include "store_testutil.h"

struct fixture {
	char dir[256];
	char q[512];		/* dir/spool/queue: does not exist yet */
	struct spool body;
};

static const char *const BODY = "Subject: test\n\nhello\n.dot\n";
static const char *const PREFIX = "Received: from x\n";

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf_checked(f->q, sizeof(f->q), "%s/spool/queue", f->dir);
	spool_init(&f->body, f->dir, 1024);
	if (spool_append(&f->body, BODY, strlen(BODY)) < 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	spool_free(&f->body);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void
set_rcpt(struct queue_rcpt *r, const char *addr, const char *orcpt)
{
	memset(r, 0, sizeof(*r));
	strlcpy_checked(r->address, addr, sizeof(r->address));
	strlcpy_checked(r->orcpt, orcpt, sizeof(r->orcpt));
	r->status = QRCPT_BOUNCED;	/* queue_write must say pending */
}

static void
write_entry(struct fixture *f, const char *sender, char *id, size_t idsz)
{
	struct queue_rcpt r[2];

	set_rcpt(&r[0], "bob@example.net", "");
	set_rcpt(&r[1], "carol x@example.com", "list@example.org");
	assert_int_equal(queue_write(f->q, sender, r, 2, PREFIX,
	    strlen(PREFIX), &f->body, id, idsz), 0);
}

static void
test_write_then_read(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], path[1024], want[256];
	struct queue_env env;
	struct stat st;
	time_t now = time(NULL);
	size_t len;
	char *p;

	write_entry(f, "alice@example.org", id, sizeof(id));
	assert_true(queue_id_valid(id));
	assert_int_equal(stat(f->q, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	/* Exactly ID.msg and ID.env, no temp files. */
	assert_int_equal(tu_count_entries(f->q), 2);
	snprintf_checked(path, sizeof(path), "%s/%s.msg", f->q, id);
	p = tu_slurp(path, &len);
	assert_non_null(p);
	snprintf_checked(want, sizeof(want), "%s%s", PREFIX, BODY);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(p, want, len);
	free(p);

	assert_int_equal(queue_env_read(f->q, id, &env), 0);
	assert_string_equal(env.id, id);
	assert_string_equal(env.sender, "alice@example.org");
	assert_true(env.created >= now && env.created <= now + 5);
	assert_int_equal(env.next_try, env.created);
	assert_int_equal(env.attempts, 0);
	assert_string_equal(env.last_error, "");
	assert_int_equal(env.nrcpts, 2);
	assert_string_equal(env.rcpts[0].address, "bob@example.net");
	assert_string_equal(env.rcpts[0].orcpt, "");
	assert_int_equal(env.rcpts[0].status, QRCPT_PENDING);
	assert_string_equal(env.rcpts[1].address, "carol x@example.com");
	assert_string_equal(env.rcpts[1].orcpt, "list@example.org");
	assert_int_equal(env.rcpts[1].status, QRCPT_PENDING);
	queue_env_free(&env);
	assert_null(env.rcpts);
	assert_int_equal(env.nrcpts, 0);
}

static void
test_env_file_text(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], path[1024], want[512];
	struct queue_env env;
	char *p;

	write_entry(f, "", id, sizeof(id));
	assert_int_equal(queue_env_read(f->q, id, &env), 0);
	assert_string_equal(env.sender, "");
	snprintf_checked(want, sizeof(want), "version 1\nid %s\ncreated %lld\n"
	    "sender\nattempts 0\nnext_try %lld\nrcpt pending bob@example.net\n"
	    "rcpt pending carol x@example.com\norcpt list@example.org\n", id,
	    (long long)env.created, (long long)env.created);
	snprintf_checked(path, sizeof(path), "%s/%s.env", f->q, id);
	p = tu_slurp(path, NULL);
	assert_non_null(p);
	assert_string_equal(p, want);
	free(p);
	queue_env_free(&env);
}

static void
test_env_rewrite(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], err[600];
	struct queue_env env, back;
	size_t i;

	write_entry(f, "alice@example.org", id, sizeof(id));
	assert_int_equal(queue_env_read(f->q, id, &env), 0);
	env.rcpts[0].status = QRCPT_SENT;
	env.rcpts[1].status = QRCPT_BOUNCED;
	env.attempts = 3;
	env.next_try = 1700000000;
	strlcpy_checked(env.last_error, "451 4.7.1 try\r\nlater", 512);
	assert_int_equal(queue_env_write(f->q, &env), 0);
	assert_int_equal(tu_count_entries(f->q), 2);	/* no temp left */
	assert_int_equal(queue_env_read(f->q, id, &back), 0);
	assert_int_equal(back.rcpts[0].status, QRCPT_SENT);
	assert_int_equal(back.rcpts[1].status, QRCPT_BOUNCED);
	assert_string_equal(back.rcpts[1].orcpt, "list@example.org");
	assert_int_equal(back.attempts, 3);
	assert_int_equal(back.next_try, 1700000000);
	assert_string_equal(back.last_error, "451 4.7.1 try  later");
	queue_env_free(&back);

	/* A 600-byte error of 2-byte UTF-8 chars: cut to fit, not mid-char. */
	for (i = 0; i + 1 < sizeof(err); i += 2) {
		err[i] = (char)0xc3;
		err[i + 1] = (char)0xa9;
	}
	memcpy(env.last_error, err, sizeof(env.last_error));	/* no NUL */
	assert_int_equal(queue_env_write(f->q, &env), 0);
	assert_int_equal(queue_env_read(f->q, id, &back), 0);
	assert_int_equal(strlen(back.last_error), 510);
	assert_memory_equal(back.last_error, err, 510);
	queue_env_free(&back);
	/* Unterminated ASCII: the first 511 bytes. */
	memset(env.last_error, 'x', sizeof(env.last_error));
	memset(err, 'x', 511);
	err[511] = '\0';
	assert_int_equal(queue_env_write(f->q, &env), 0);
	assert_int_equal(queue_env_read(f->q, id, &back), 0);
	assert_string_equal(back.last_error, err);
	queue_env_free(&back);
	queue_env_free(&env);
}

static void
test_write_refuses_bad_addresses(void **state)
{
	struct fixture *f = *state;
	struct queue_rcpt r;
	char id[QUEUE_ID_MAX];

	set_rcpt(&r, "bob@example.net", "");
	errno = 0;
	assert_int_equal(queue_write(f->q, "a\n@b", &r, 1, "", 0, &f->body,
	    id, sizeof(id)), -1);
	assert_int_equal(errno, EINVAL);
	set_rcpt(&r, "bob@example.net\nrcpt pending evil@x", "");
	assert_int_equal(queue_write(f->q, "", &r, 1, "", 0, &f->body, id,
	    sizeof(id)), -1);
	set_rcpt(&r, "bob@example.net", "o\r@x");
	assert_int_equal(queue_write(f->q, "", &r, 1, "", 0, &f->body, id,
	    sizeof(id)), -1);
	set_rcpt(&r, "", "");
	assert_int_equal(queue_write(f->q, "", &r, 1, "", 0, &f->body, id,
	    sizeof(id)), -1);
	assert_int_equal(queue_write(f->q, "", &r, 0, "", 0, &f->body, id,
	    sizeof(id)), -1);
	/* id_out too small. */
	set_rcpt(&r, "bob@example.net", "");
	errno = 0;
	assert_int_equal(queue_write(f->q, "", &r, 1, "", 0, &f->body, id, 4),
	    -1);
	assert_int_equal(errno, ERANGE);
	/* No file was ever left behind. */
	assert_true(tu_count_entries(f->q) <= 0);
}

static void
test_remove(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], other[QUEUE_ID_MAX];
	struct queue_env env;

	write_entry(f, "alice@example.org", id, sizeof(id));
	write_entry(f, "alice@example.org", other, sizeof(other));
	assert_string_not_equal(id, other);
	assert_int_equal(tu_count_entries(f->q), 4);
	assert_int_equal(queue_remove(f->q, id), 0);
	assert_int_equal(tu_count_entries(f->q), 2);
	errno = 0;
	assert_int_equal(queue_env_read(f->q, id, &env), -1);
	assert_int_equal(errno, ENOENT);
	errno = 0;
	assert_int_equal(queue_remove(f->q, id), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(queue_env_read(f->q, other, &env), 0);	/* untouched */
	queue_env_free(&env);
	errno = 0;
	assert_int_equal(queue_remove(f->q, "../spool"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(queue_env_read(f->q, "a/b", &env), -1);
	assert_int_equal(errno, EINVAL);
}

static void
test_read_checks_id_matches_name(void **state)
{
	struct fixture *f = *state;
	char id[QUEUE_ID_MAX], src[1024], dst[1024];
	struct queue_env env;

	write_entry(f, "a@b", id, sizeof(id));
	snprintf_checked(src, sizeof(src), "%s/%s.env", f->q, id);
	snprintf_checked(dst, sizeof(dst), "%s/other.env", f->q);
	assert_int_equal(rename(src, dst), 0);
	errno = 0;
	assert_int_equal(queue_env_read(f->q, "other", &env), -1);
	assert_int_equal(errno, EINVAL);
	assert_null(env.rcpts);
}

#define GOOD "version 1\nid abc-1_Z\ncreated 10\nsender s@x\nattempts 2\n" \
	"next_try 20\nrcpt pending r@x\n"

static void
test_parse_good(void **state)
{
	const char *t = GOOD "rcpt sent two words@x\norcpt o@y\n"
	    "rcpt bounced b@x\nlast_error 550 no such user\n";
	struct queue_env env;

	assert_int_equal(queue_env_parse(t, strlen(t), &env), 0);
	assert_string_equal(env.id, "abc-1_Z");
	assert_int_equal(env.created, 10);
	assert_string_equal(env.sender, "s@x");
	assert_int_equal(env.attempts, 2);
	assert_int_equal(env.next_try, 20);
	assert_int_equal(env.nrcpts, 3);
	assert_int_equal(env.rcpts[0].status, QRCPT_PENDING);
	assert_string_equal(env.rcpts[0].orcpt, "");
	assert_int_equal(env.rcpts[1].status, QRCPT_SENT);
	assert_string_equal(env.rcpts[1].address, "two words@x");
	assert_string_equal(env.rcpts[1].orcpt, "o@y");
	assert_int_equal(env.rcpts[2].status, QRCPT_BOUNCED);
	assert_string_equal(env.last_error, "550 no such user");
	queue_env_free(&env);
}

static void
test_parse_many_rcpts_round_trip(void **state)
{
	struct queue_env env, back;
	struct buf b;
	size_t i;

	memset(&env, 0, sizeof(env));
	strlcpy_checked(env.id, "many", sizeof(env.id));
	env.nrcpts = 1000;
	env.rcpts = calloc(env.nrcpts, sizeof(*env.rcpts));
	assert_non_null(env.rcpts);
	for (i = 0; i < env.nrcpts; i++) {
		snprintf_checked(env.rcpts[i].address, ADDR_MAX, "u%zu@x", i);
		env.rcpts[i].status = (enum queue_rcpt_status)(i % 3);
	}
	buf_init(&b, BUF_UNLIMITED);
	assert_int_equal(queue_env_format(&env, &b), 0);
	assert_int_equal(queue_env_parse(b.data, b.len, &back), 0);
	assert_int_equal(back.nrcpts, 1000);
	for (i = 0; i < env.nrcpts; i++) {
		assert_string_equal(back.rcpts[i].address, env.rcpts[i].address);
		assert_int_equal(back.rcpts[i].status, env.rcpts[i].status);
	}
	queue_env_free(&back);
	queue_env_free(&env);
	buf_free(&b);
}

/* GOOD, then key followed by n 'v' bytes and LF: parse gives want. */
static void
expect_long_value(const char *key, size_t n, int want)
{
	struct queue_env env;
	struct buf b;
	size_t i;

	buf_init(&b, BUF_UNLIMITED);
	assert_int_equal(buf_puts(&b, GOOD), 0);
	assert_int_equal(buf_puts(&b, key), 0);
	for (i = 0; i < n; i++)
		assert_int_equal(buf_putc(&b, 'v'), 0);
	assert_int_equal(buf_putc(&b, '\n'), 0);
	assert_int_equal(queue_env_parse(b.data, b.len, &env), want);
	queue_env_free(&env);
	buf_free(&b);
}

static void
test_parse_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		GOOD "x",					/* no final LF */
		"version 2\nid a\ncreated 1\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",
		"id a\nversion 1\ncreated 1\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",		/* order */
		"version 1\ncreated 1\nsender\nattempts 0\nnext_try 1\n"
		    "rcpt pending r@x\n",			/* no id */
		"version 1\nid a\ncreated 1\nattempts 0\nnext_try 1\n"
		    "rcpt pending r@x\n",			/* no sender */
		"version 1\nid a\ncreated 1\nsender\nnext_try 1\n"
		    "rcpt pending r@x\n",			/* no attempts */
		"version 1\nid a\ncreated 1\nsender\nattempts 0\n"
		    "next_try 1\n",				/* no rcpt */
		GOOD "color blue\n",				/* unknown key */
		GOOD "rcpt deferred r@x\n",			/* bad status */
		GOOD "rcpt pending\n",
		GOOD "rcpt pending \n",
		GOOD "id again\n",				/* duplicate */
		GOOD "version 1\n",
		GOOD "orcpt a@b\norcpt c@d\n",
		"version 1\nid a\ncreated 1\nsender\nattempts 0\n"
		    "next_try 1\norcpt o@x\nrcpt pending r@x\n",
		"version 1\nid ../etc\ncreated 1\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",
		"version 1\nid a\ncreated -1\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",
		"version 1\nid a\ncreated 1x\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",
		"version 1\nid a\ncreated 99999999999999999999\nsender\n"
		    "attempts 0\nnext_try 1\nrcpt pending r@x\n",
		"version 1\nid a\ncreated 1\nsender\nattempts 4294967296\n"
		    "next_try 1\nrcpt pending r@x\n",
		"version 1\nid a\ncreated\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",
		GOOD "last_error a\r\n",			/* control byte */
		"version 1\r\nid a\ncreated 1\nsender\nattempts 0\n"
		    "next_try 1\nrcpt pending r@x\n",
		GOOD "\n",					/* empty line */
	};
	struct queue_env env;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		if (queue_env_parse(bad[i], strlen(bad[i]), &env) == 0)
			fail_msg("accepted bad envelope #%zu: %s", i, bad[i]);
		assert_int_equal(errno, EINVAL);
		assert_null(env.rcpts);
		assert_int_equal(env.nrcpts, 0);
	}

	/* An embedded NUL. */
	assert_int_equal(queue_env_parse(GOOD "last_error a\0b\n",
	    sizeof(GOOD "last_error a\0b\n") - 1, &env), -1);

	/* Field limits, at the boundary: the longest value fits, one more
	 * byte does not; a line over QUEUE_ENV_LINE_MAX never parses. */
	expect_long_value("last_error ", sizeof(env.last_error) - 1, 0);
	expect_long_value("last_error ", sizeof(env.last_error), -1);
	expect_long_value("rcpt pending ", ADDR_MAX - 1, 0);
	expect_long_value("rcpt pending ", ADDR_MAX, -1);
	expect_long_value("orcpt ", ADDR_MAX - 1, 0);
	expect_long_value("orcpt ", ADDR_MAX, -1);
	expect_long_value("last_error ", QUEUE_ENV_LINE_MAX + 1, -1);
}

static void
test_parse_rcpt_limit(void **state)
{
	struct buf b;
	struct queue_env env;
	size_t i;

	buf_init(&b, BUF_UNLIMITED);
	assert_int_equal(buf_puts(&b, "version 1\nid a\ncreated 1\nsender\n"
	    "attempts 0\nnext_try 1\n"), 0);
	for (i = 0; i < QUEUE_RCPTS_MAX; i++)
		assert_int_equal(buf_puts(&b, "rcpt pending r@x\n"), 0);
	assert_int_equal(queue_env_parse(b.data, b.len, &env), 0);
	assert_int_equal(env.nrcpts, QUEUE_RCPTS_MAX);
	queue_env_free(&env);
	assert_int_equal(buf_puts(&b, "rcpt pending r@x\n"), 0);
	assert_int_equal(queue_env_parse(b.data, b.len, &env), -1);
	buf_free(&b);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_write_then_read),
		T(test_env_file_text),
		T(test_env_rewrite),
		T(test_write_refuses_bad_addresses),
		T(test_remove),
		T(test_read_checks_id_matches_name),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_many_rcpts_round_trip),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_parse_rcpt_limit),
	};
#undef T

	return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
