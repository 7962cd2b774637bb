/*
 * queue.c - the outbound queue's files: write a new entry durably, read
 * and rewrite its envelope, remove it.  See queue.h and DESIGN.md "Queue".
 *
 * Must never make an entry visible before its message is durable: the
 * .msg is written, fsynced and renamed first, the .env rename commits,
 * and the directory fsync comes before 0 is returned.  Must never build
 * a path from an id that queue_id_valid() refused.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "durable.h"

#define QUEUE_ID_TRIES 20
#define QUEUE_ENV_FILE_MAX ((size_t)QUEUE_RCPTS_MAX * 2 * \
	(QUEUE_ENV_LINE_MAX + 1) + 4096)

static unsigned long id_seq;	/* __atomic only: fallback id entropy */

/* time (hex seconds, hex microseconds) + 64 random bits, all hex. */
static void
make_id(char *out, size_t outsz)
{
	unsigned char rnd[8];
	unsigned long long r = 0;
	struct timeval tv;
	size_t i;

	gettimeofday(&tv, NULL);
	if (RAND_bytes(rnd, sizeof(rnd)) == 1) {
		for (i = 0; i < sizeof(rnd); i++)
			r = (r << 8) | rnd[i];
	} else {	/* no CSPRNG: pid + counter are still unique here */
		r = ((unsigned long long)getpid() << 32) ^
		    __atomic_fetch_add(&id_seq, 1, __ATOMIC_RELAXED);
	}
	/* At most 9 + 5 + 16 hex digits: always fits QUEUE_ID_MAX. */
	(void)snprintf_checked(out, outsz, "%09llx%05lx%016llx",
	    (unsigned long long)tv.tv_sec, (long)tv.tv_usec, r);
}

static int
entry_path(char *out, size_t outsz, const char *dir, const char *id,
    const char *fmt_suffix, int temp)
{
	if (snprintf_checked(out, outsz, "%s/%s%s%s%s", dir, temp ? "." : "",
	    id, fmt_suffix, temp ? ".tmp" : "") < 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* Write data to path (new file, or truncate), fsync, close. */
static int
write_file(const char *path, int excl, const char *prefix, size_t prefix_len,
    const struct spool *body)
{
	int fd, saved, flags = O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW;

	flags |= excl ? O_EXCL : O_TRUNC;
	fd = open(path, flags, 0600);
	if (fd < 0)
		return -1;
	if ((prefix_len > 0 && durable_write_all(fd, prefix, prefix_len) < 0) ||
	    (body != NULL && spool_write_to(body, fd) < 0) || fsync(fd) < 0) {
		saved = errno;
		close(fd);
		durable_unlink_quiet(path);
		errno = saved;
		return -1;
	}
	if (close(fd) < 0) {
		durable_unlink_quiet(path);
		return -1;
	}
	return 0;
}

/* Format env, write it to .ID.env.tmp and rename it to ID.env. */
static int
env_store(const char *dir, const struct queue_env *env, int excl)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	struct buf b;
	int r, saved;

	if (entry_path(tmp, sizeof(tmp), dir, env->id, ".env", 1) < 0 ||
	    entry_path(path, sizeof(path), dir, env->id, ".env", 0) < 0)
		return -1;
	buf_init(&b, QUEUE_ENV_FILE_MAX);
	if (queue_env_format(env, &b) < 0) {
		saved = errno;
		buf_free(&b);
		errno = saved;
		return -1;
	}
	r = write_file(tmp, excl, b.data, b.len, NULL);
	saved = errno;
	buf_free(&b);
	errno = saved;
	if (r < 0)
		return -1;
	if (rename(tmp, path) < 0) {
		durable_unlink_quiet(tmp);
		return -1;
	}
	return 0;
}

/* 1 if queue_env_format() accepts env; 0 with errno set if not. */
static int
env_writable(const struct queue_env *env)
{
	struct buf probe;
	int r, saved;

	buf_init(&probe, QUEUE_ENV_FILE_MAX);
	r = queue_env_format(env, &probe);
	saved = errno;
	buf_free(&probe);
	errno = saved;
	return r == 0;
}

int
queue_write(const char *queue_dir, const char *sender,
    const struct queue_rcpt *rcpts, size_t nrcpts, const char *prefix,
    size_t prefix_len, const struct spool *body, char *id_out,
    size_t id_outsz)
{
	char msgtmp[PATH_MAX], msgpath[PATH_MAX], envpath[PATH_MAX];
	struct queue_env env;
	size_t i;
	int tries, saved;

	if (queue_dir == NULL || sender == NULL || rcpts == NULL ||
	    nrcpts == 0 || nrcpts > QUEUE_RCPTS_MAX ||
	    (prefix == NULL && prefix_len > 0) || id_out == NULL) {
		errno = EINVAL;
		return -1;
	}
	memset(&env, 0, sizeof(env));
	if (strlcpy_checked(env.sender, sender, sizeof(env.sender)) < 0) {
		errno = EINVAL;
		return -1;
	}
	env.created = time(NULL);
	env.next_try = env.created;
	env.nrcpts = nrcpts;
	env.rcpts = calloc(nrcpts, sizeof(*env.rcpts));
	if (env.rcpts == NULL)
		return -1;
	for (i = 0; i < nrcpts; i++) {
		env.rcpts[i] = rcpts[i];
		env.rcpts[i].status = QRCPT_PENDING;
	}
	make_id(env.id, sizeof(env.id));
	if (!env_writable(&env)) {	/* refused before any file exists */
		saved = errno;
		goto fail_errno;
	}
	if (strlen(env.id) >= id_outsz) {
		saved = ERANGE;
		goto fail_errno;
	}
	if (durable_mkdir_p(queue_dir, 0700) < 0)
		goto fail;

	for (tries = 0;; tries++) {
		if (entry_path(msgtmp, sizeof(msgtmp), queue_dir, env.id, ".msg",
		    1) < 0)
			goto fail;
		if (write_file(msgtmp, 1, prefix, prefix_len, body) == 0)
			break;
		if (errno != EEXIST || tries >= QUEUE_ID_TRIES)
			goto fail;
		make_id(env.id, sizeof(env.id));
	}
	/* An id already taken (crash leftovers, clash): take another one. */
	for (tries = 0;; tries++) {
		if (entry_path(msgpath, sizeof(msgpath), queue_dir, env.id,
		    ".msg", 0) < 0 ||
		    entry_path(envpath, sizeof(envpath), queue_dir, env.id,
		    ".env", 0) < 0)
			goto fail_tmp;
		if (access(envpath, F_OK) == 0) {
			errno = EEXIST;		/* a stale .env owns this id */
		} else if (errno != ENOENT) {
			goto fail_tmp;
		} else if (durable_rename_noreplace(msgtmp, msgpath) == 0) {
			break;
		} else if (errno != EEXIST) {
			goto fail_tmp;
		}
		if (tries >= QUEUE_ID_TRIES)
			goto fail_tmp;
		make_id(env.id, sizeof(env.id));
	}
	if (env_store(queue_dir, &env, 1) < 0)
		goto fail_msg;
	if (durable_fsync_dir(queue_dir) < 0) {
		/* Not durable, so not queued: the caller will not say 250. */
		durable_unlink_quiet(envpath);
		goto fail_msg;
	}
	(void)strlcpy_checked(id_out, env.id, id_outsz);
	free(env.rcpts);
	return 0;

fail_msg:
	durable_unlink_quiet(msgpath);
	goto fail;
fail_tmp:
	durable_unlink_quiet(msgtmp);
fail:
	saved = errno;
fail_errno:
	free(env.rcpts);
	errno = saved;
	return -1;
}

int
queue_env_read(const char *queue_dir, const char *id, struct queue_env *env)
{
	char path[PATH_MAX], *text;
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd, saved;

	memset(env, 0, sizeof(*env));
	if (queue_dir == NULL || !queue_id_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	if (entry_path(path, sizeof(path), queue_dir, id, ".env", 0) < 0)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > QUEUE_ENV_FILE_MAX) {
		close(fd);
		errno = st.st_size <= 0 ? EINVAL : EFBIG;
		return -1;
	}
	text = malloc((size_t)st.st_size);
	if (text == NULL) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	saved = EIO;		/* a file shorter than fstat said */
	while (got < (size_t)st.st_size) {
		r = read(fd, text + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			saved = errno;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got < (size_t)st.st_size) {
		free(text);
		errno = saved;
		return -1;
	}
	r = queue_env_parse(text, got, env);
	saved = errno;
	free(text);
	if (r < 0) {
		errno = saved;
		return -1;
	}
	if (strcmp(env->id, id) != 0) {	/* a file under the wrong name */
		queue_env_free(env);
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int
queue_env_write(const char *queue_dir, const struct queue_env *env)
{
	if (queue_dir == NULL || env == NULL || !queue_id_valid(env->id)) {
		errno = EINVAL;
		return -1;
	}
	if (env_store(queue_dir, env, 0) < 0)
		return -1;
	return durable_fsync_dir(queue_dir);
}

int
queue_remove(const char *queue_dir, const char *id)
{
	char envpath[PATH_MAX], msgpath[PATH_MAX];
	int found = 0;

	if (queue_dir == NULL || !queue_id_valid(id)) {
		errno = EINVAL;
		return -1;
	}
	if (entry_path(envpath, sizeof(envpath), queue_dir, id, ".env", 0) < 0 ||
	    entry_path(msgpath, sizeof(msgpath), queue_dir, id, ".msg", 0) < 0)
		return -1;
	/* .env first: without it the .msg is never mail again. */
	if (unlink(envpath) == 0)
		found = 1;
	else if (errno != ENOENT)
		return -1;
	if (unlink(msgpath) == 0)
		found = 1;
	else if (errno != ENOENT)
		return -1;
	if (!found) {
		errno = ENOENT;
		return -1;
	}
	return durable_fsync_dir(queue_dir);
}
