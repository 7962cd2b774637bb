/*
 * iplimit.c - open-addressing hash of IP string -> open connections.
 * Entries are removed when their count drops to zero, so the table
 * stays as small as the set of currently connected clients.
 */
#include "iplimit.h"
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct ipent {
	char ip[46];
	unsigned count;
};

struct iplimit {
	unsigned max;
	size_t cap, used;
	struct ipent *t;
};

static uint64_t
hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

struct iplimit *
iplimit_new(unsigned max_per_ip)
{
	struct iplimit *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->max = max_per_ip;
	l->cap = 256;
	l->t = calloc(l->cap, sizeof(*l->t));
	if (l->t == NULL) {
		free(l);
		return NULL;
	}
	return l;
}

void
iplimit_free(struct iplimit **lp)
{
	if (*lp == NULL)
		return;
	free((*lp)->t);
	free(*lp);
	*lp = NULL;
}

static struct ipent *
find(struct iplimit *l, const char *ip, int insert)
{
	size_t i = hash(ip) & (l->cap - 1);

	for (;;) {
		struct ipent *e = &l->t[i];

		if (e->ip[0] == '\0')
			return insert ? e : NULL;
		if (strcmp(e->ip, ip) == 0)
			return e;
		i = (i + 1) & (l->cap - 1);
	}
}

static int
grow(struct iplimit *l)
{
	struct ipent *old = l->t;
	size_t oldcap = l->cap, i;

	l->t = calloc(oldcap * 2, sizeof(*l->t));
	if (l->t == NULL) {
		l->t = old;
		return -1;
	}
	l->cap = oldcap * 2;
	for (i = 0; i < oldcap; i++)
		if (old[i].ip[0] != '\0')
			*find(l, old[i].ip, 1) = old[i];
	free(old);
	return 0;
}

int
iplimit_acquire(struct iplimit *l, const char *ip)
{
	struct ipent *e;

	if ((l->used + 1) * 2 > l->cap && grow(l) < 0)
		return 0;
	e = find(l, ip, 1);
	if (e->ip[0] == '\0') {
		strlcpy_checked(e->ip, ip, sizeof(e->ip));
		e->count = 0;
		l->used++;
	}
	if (e->count >= l->max)
		return 0;
	e->count++;
	return 1;
}

/* Remove slot i and re-place the rest of its cluster (linear probing). */
static void
erase(struct iplimit *l, struct ipent *e)
{
	size_t i = (size_t)(e - l->t), j = i;

	e->ip[0] = '\0';
	l->used--;
	for (;;) {
		struct ipent tmp;

		j = (j + 1) & (l->cap - 1);
		if (l->t[j].ip[0] == '\0')
			break;
		tmp = l->t[j];
		l->t[j].ip[0] = '\0';
		*find(l, tmp.ip, 1) = tmp;
	}
	(void)i;
}

void
iplimit_release(struct iplimit *l, const char *ip)
{
	struct ipent *e = find(l, ip, 0);

	if (e == NULL)
		return;
	if (e->count > 0)
		e->count--;
	if (e->count == 0)
		erase(l, e);
}
