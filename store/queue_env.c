/*
 * queue_env.c - the outbound queue's envelope text: parse and format.
 * See queue.h for the format.
 *
 * Pure functions over (pointer, length): no I/O, no logging.  The parser
 * reads hostile or corrupt bytes safely (bounded lines, bounded recipient
 * count, strict numbers, no unknown keys) and must never accept something
 * the formatter would not have written.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Bits for keys that must appear exactly once. */
enum {
	K_VERSION = 1 << 0,
	K_ID = 1 << 1,
	K_CREATED = 1 << 2,
	K_SENDER = 1 << 3,
	K_ATTEMPTS = 1 << 4,
	K_NEXT_TRY = 1 << 5,
	K_LAST_ERROR = 1 << 6,
	K_REQUIRED = K_VERSION | K_ID | K_CREATED | K_SENDER | K_ATTEMPTS |
	    K_NEXT_TRY,
};

static const char *const status_names[] = {
	[QRCPT_PENDING] = "pending",
	[QRCPT_SENT] = "sent",
	[QRCPT_BOUNCED] = "bounced",
};

static int
id_valid(const char *p, size_t n)
{
	size_t i;
	unsigned char c;

	if (n == 0 || n >= QUEUE_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
queue_id_valid(const char *id)
{
	return id != NULL && id_valid(id, strnlen(id, QUEUE_ID_MAX));
}

/* Copy a value of n bytes into a char[sz] field; -1 if it does not fit. */
static int
copy_field(char *dst, size_t sz, const char *v, size_t n)
{
	if (n >= sz)
		return -1;
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

/* Unsigned decimal, digits only, at most max. */
static int
parse_u64(const char *v, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t acc = 0;
	size_t i;
	unsigned d;

	if (n == 0 || n > 20)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		d = (unsigned)(v[i] - '0');
		if (acc > (max - d) / 10)
			return -1;
		acc = acc * 10 + d;
	}
	*out = acc;
	return 0;
}

static int
parse_time(const char *v, size_t n, time_t *out)
{
	uint64_t u;

	if (parse_u64(v, n, INT64_MAX, &u) < 0 || (time_t)u < 0 ||
	    (uint64_t)(time_t)u != u)
		return -1;
	*out = (time_t)u;
	return 0;
}

static int
kv_version(struct queue_env *e, const char *v, size_t n)
{
	return n == 1 && v[0] == '1' ? 0 : -1;
}

static int
kv_id(struct queue_env *e, const char *v, size_t n)
{
	if (!id_valid(v, n))
		return -1;
	return copy_field(e->id, sizeof(e->id), v, n);
}

static int
kv_created(struct queue_env *e, const char *v, size_t n)
{
	return parse_time(v, n, &e->created);
}

static int
kv_sender(struct queue_env *e, const char *v, size_t n)
{
	return copy_field(e->sender, sizeof(e->sender), v, n);
}

static int
kv_attempts(struct queue_env *e, const char *v, size_t n)
{
	uint64_t u;

	if (parse_u64(v, n, (unsigned)-1, &u) < 0)
		return -1;
	e->attempts = (unsigned)u;
	return 0;
}

static int
kv_next_try(struct queue_env *e, const char *v, size_t n)
{
	return parse_time(v, n, &e->next_try);
}

static int
kv_last_error(struct queue_env *e, const char *v, size_t n)
{
	return copy_field(e->last_error, sizeof(e->last_error), v, n);
}

static int
kv_rcpt(struct queue_env *e, const char *v, size_t n)
{
	const char *sp = memchr(v, ' ', n);
	struct queue_rcpt *r, *nr;
	size_t slen, i, ncap;

	if (sp == NULL || e->nrcpts >= QUEUE_RCPTS_MAX)
		return -1;
	slen = (size_t)(sp - v);
	for (i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strlen(status_names[i]) == slen &&
		    memcmp(status_names[i], v, slen) == 0)
			break;
	if (i == sizeof(status_names) / sizeof(status_names[0]))
		return -1;
	v = sp + 1;
	n -= slen + 1;
	if (n == 0 || n >= ADDR_MAX)
		return -1;
	/* Grow by doubling: nrcpts is a power of two when the array is full. */
	if ((e->nrcpts & (e->nrcpts - 1)) == 0) {
		ncap = e->nrcpts == 0 ? 1 : e->nrcpts * 2;
		nr = realloc(e->rcpts, ncap * sizeof(*nr));
		if (nr == NULL) {
			errno = ENOMEM;
			return -1;
		}
		e->rcpts = nr;
	}
	r = &e->rcpts[e->nrcpts];
	memset(r, 0, sizeof(*r));
	r->status = (enum queue_rcpt_status)i;
	(void)copy_field(r->address, sizeof(r->address), v, n);
	e->nrcpts++;
	return 0;
}

static int
kv_orcpt(struct queue_env *e, const char *v, size_t n)
{
	struct queue_rcpt *r;

	if (e->nrcpts == 0 || n == 0)
		return -1;
	r = &e->rcpts[e->nrcpts - 1];
	if (r->orcpt[0] != '\0')
		return -1;
	return copy_field(r->orcpt, sizeof(r->orcpt), v, n);
}

static const struct env_key {
	const char *name;
	unsigned once;		/* K_* bit, 0 for repeatable keys */
	int (*parse)(struct queue_env *, const char *, size_t);
} env_keys[] = {
	{ "version", K_VERSION, kv_version },
	{ "id", K_ID, kv_id },
	{ "created", K_CREATED, kv_created },
	{ "sender", K_SENDER, kv_sender },
	{ "attempts", K_ATTEMPTS, kv_attempts },
	{ "next_try", K_NEXT_TRY, kv_next_try },
	{ "rcpt", 0, kv_rcpt },
	{ "orcpt", 0, kv_orcpt },
	{ "last_error", K_LAST_ERROR, kv_last_error },
};

static const struct env_key *
env_key_find(const char *k, size_t n)
{
	size_t i;

	for (i = 0; i < sizeof(env_keys) / sizeof(env_keys[0]); i++)
		if (strlen(env_keys[i].name) == n &&
		    memcmp(env_keys[i].name, k, n) == 0)
			return &env_keys[i];
	return NULL;
}

static int
line_clean(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

int
queue_env_parse(const char *text, size_t len, struct queue_env *env)
{
	const char *p = text, *end = text + len, *eol, *sp, *v;
	const struct env_key *k;
	unsigned seen = 0;
	size_t n, klen, vlen;

	memset(env, 0, sizeof(*env));
	errno = EINVAL;
	if (text == NULL || len == 0 || text[len - 1] != '\n')
		return -1;
	while (p < end) {
		eol = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)(eol - p);
		if (n > QUEUE_ENV_LINE_MAX || !line_clean(p, n))
			goto bad;
		sp = memchr(p, ' ', n);
		klen = sp != NULL ? (size_t)(sp - p) : n;
		v = sp != NULL ? sp + 1 : eol;
		vlen = (size_t)(eol - v);
		k = env_key_find(p, klen);
		if (k == NULL || (seen & k->once) != 0)
			goto bad;
		/* "version" first, so a future format is never misread. */
		if ((seen == 0) != (k->once == K_VERSION))
			goto bad;
		errno = EINVAL;
		if (k->parse(env, v, vlen) < 0)
			goto bad;
		seen |= k->once;
		p = eol + 1;
	}
	if ((seen & K_REQUIRED) != K_REQUIRED || env->nrcpts == 0)
		goto bad;
	return 0;
bad:
	if (errno != ENOMEM)
		errno = EINVAL;
	queue_env_free(env);
	return -1;
}

void
queue_env_free(struct queue_env *env)
{
	if (env == NULL)
		return;
	free(env->rcpts);
	memset(env, 0, sizeof(*env));
}

/* An address we can write verbatim: terminated, no control byte. */
static int
addr_writable(const char *a, int allow_empty)
{
	size_t n = strnlen(a, ADDR_MAX);

	if (n == ADDR_MAX || (n == 0 && !allow_empty))
		return 0;
	return line_clean(a, n);
}

/* last_error, control bytes as spaces, never cut inside a UTF-8 char. */
static int
put_last_error(struct buf *out, const char *s, size_t max)
{
	size_t n = strnlen(s, max), i;
	char c;

	if (n == max) {
		n = max - 1;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if (n == 0)
		return 0;
	if (buf_puts(out, "last_error ") < 0)
		return -1;
	for (i = 0; i < n; i++) {
		c = s[i];
		if ((unsigned char)c < 0x20 || c == 0x7f)
			c = ' ';
		if (buf_putc(out, c) < 0)
			return -1;
	}
	return buf_putc(out, '\n');
}

int
queue_env_format(const struct queue_env *env, struct buf *out)
{
	const struct queue_rcpt *r;
	size_t i, start = out->len;

	if (!queue_id_valid(env->id) || env->nrcpts == 0 ||
	    env->nrcpts > QUEUE_RCPTS_MAX || env->rcpts == NULL ||
	    env->created < 0 || env->next_try < 0 ||
	    !addr_writable(env->sender, 1))
		goto inval;
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		if (!addr_writable(r->address, 0) ||
		    !addr_writable(r->orcpt, 1) ||
		    (unsigned)r->status >= sizeof(status_names) /
		    sizeof(status_names[0]))
			goto inval;
	}
	if (buf_printf(out, "version 1\nid %s\ncreated %lld\nsender%s%s\n"
	    "attempts %u\nnext_try %lld\n", env->id, (long long)env->created,
	    env->sender[0] != '\0' ? " " : "", env->sender, env->attempts,
	    (long long)env->next_try) < 0)
		goto nomem;
	for (i = 0; i < env->nrcpts; i++) {
		r = &env->rcpts[i];
		if (buf_printf(out, "rcpt %s %s\n", status_names[r->status],
		    r->address) < 0)
			goto nomem;
		if (r->orcpt[0] != '\0' &&
		    buf_printf(out, "orcpt %s\n", r->orcpt) < 0)
			goto nomem;
	}
	if (put_last_error(out, env->last_error, sizeof(env->last_error)) < 0)
		goto nomem;
	return 0;
inval:
	errno = EINVAL;
	return -1;
nomem:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	errno = ENOMEM;
	return -1;
}
