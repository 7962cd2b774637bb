/*
 * db_resolve.c - recipient resolution: an address in one of our domains
 * to the final local mailboxes and outside redirections (db.h,
 * db_resolve()).
 *
 * For each address, in order: aliases whose source is the address; else
 * the user; else, with a "+tag" removed, those two again; else the
 * "@domain" catch-all.  Alias targets in our domains are resolved again,
 * each address at most once (a visited set), so a diamond delivers once
 * and a loop ends; the chain depth is bounded by RESOLVE_MAX_DEPTH and
 * the result size by RESOLVE_MAX_TARGETS.  This file only reads the
 * database and never trusts what it reads to be small.
 */
#include "db_private.h"
#include "buf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SUBADDR_DELIM '+'
/* Distinct addresses one resolution may look at before giving up. */
#define RESOLVE_MAX_VISITED (4 * RESOLVE_MAX_TARGETS)

/* ---- a small set of lower-cased addresses (open addressing) ---- */

enum { SLOT_EMPTY, SLOT_BUSY, SLOT_DONE };

struct addrset {
	char (*key)[ADDR_MAX];
	unsigned char *state;
	size_t cap;		/* power of two, or 0 */
	size_t n;
};

static uint64_t
key_hash(const char *k)
{
	uint64_t h = 1469598103934665603ULL;	/* FNV-1a */

	for (; *k; k++) {
		h ^= (unsigned char)*k;
		h *= 1099511628211ULL;
	}
	return h;
}

/* Slot index holding k, or the empty slot where it would go. */
static size_t
set_slot(const struct addrset *s, const char *k)
{
	size_t i = (size_t)key_hash(k) & (s->cap - 1);

	while (s->state[i] != SLOT_EMPTY && strcmp(s->key[i], k) != 0)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static int
set_grow(struct addrset *s)
{
	struct addrset n;
	size_t i;

	n.cap = s->cap ? s->cap * 2 : 64;
	n.n = s->n;
	n.key = calloc(n.cap, sizeof(*n.key));
	n.state = calloc(n.cap, 1);
	if (n.key == NULL || n.state == NULL) {
		free(n.key);
		free(n.state);
		return -1;
	}
	for (i = 0; i < s->cap; i++) {
		if (s->state[i] != SLOT_EMPTY) {
			size_t j = set_slot(&n, s->key[i]);

			memcpy(n.key[j], s->key[i], ADDR_MAX);
			n.state[j] = s->state[i];
		}
	}
	free(s->key);
	free(s->state);
	*s = n;
	return 0;
}

/* State of k (SLOT_EMPTY if absent). */
static int
set_get(const struct addrset *s, const char *k)
{
	return s->cap == 0 ? SLOT_EMPTY : s->state[set_slot(s, k)];
}

/* Insert or update k.  0, or -1 out of memory. */
static int
set_put(struct addrset *s, const char *k, int state)
{
	size_t i;

	if ((s->n + 1) * 2 > s->cap && set_grow(s) < 0)
		return -1;
	i = set_slot(s, k);
	if (s->state[i] == SLOT_EMPTY) {
		strlcpy_checked(s->key[i], k, ADDR_MAX);
		s->n++;
	}
	s->state[i] = (unsigned char)state;
	return 0;
}

static void
set_free(struct addrset *s)
{
	free(s->key);
	free(s->state);
	memset(s, 0, sizeof(*s));
}

/* ---- resolution ---- */

struct rctx {
	struct db *db;
	struct resolve_result *res;
	size_t cap_local, cap_external;
	struct addrset visited;	/* BUSY while being expanded, then DONE */
	struct addrset seen;	/* final targets already in res */
	enum resolve_status fatal;	/* RESOLVE_OK, or ERROR / TOO_MANY */
	int loop_hit, disabled_hit;
};

/* A list of alias targets, copied out so no statement is held while recursing. */
struct targets {
	char (*t)[ADDR_MAX];
	size_t n;
};

static int expand(struct rctx *c, const char *addr, int depth);

static void
fail(struct rctx *c, enum resolve_status st)
{
	if (c->fatal == RESOLVE_OK)
		c->fatal = st;
}

/* Lower-cased copy used as a set key; -1 if it does not fit. */
static int
make_key(char key[ADDR_MAX], const char *prefix, const char *addr)
{
	if (snprintf_checked(key, ADDR_MAX, "%s%s", prefix, addr) < 0)
		return -1;
	addr_lower(key);
	return 0;
}

static int
room_for_one_more(struct rctx *c)
{
	if (c->res->nlocal + c->res->nexternal >= RESOLVE_MAX_TARGETS) {
		fail(c, RESOLVE_TOO_MANY);
		return 0;
	}
	return 1;
}

static void
add_local(struct rctx *c, const struct db_user *u)
{
	struct resolve_result *r = c->res;
	char key[ADDR_MAX];

	if (make_key(key, "L:", u->address) < 0) {
		fail(c, RESOLVE_ERROR);
		return;
	}
	if (set_get(&c->seen, key) != SLOT_EMPTY || !room_for_one_more(c))
		return;
	if (r->nlocal == c->cap_local) {
		size_t ncap = c->cap_local ? c->cap_local * 2 : 4;
		struct resolve_mailbox *p = reallocarray(r->local, ncap, sizeof(*p));

		if (p == NULL) {
			fail(c, RESOLVE_ERROR);
			return;
		}
		r->local = p;
		c->cap_local = ncap;
	}
	if (set_put(&c->seen, key, SLOT_DONE) < 0) {
		fail(c, RESOLVE_ERROR);
		return;
	}
	strlcpy_checked(r->local[r->nlocal].address, u->address, ADDR_MAX);
	r->local[r->nlocal].quota_bytes = u->quota_bytes;
	r->nlocal++;
}

static void
add_external(struct rctx *c, const char *addr)
{
	struct resolve_result *r = c->res;
	char key[ADDR_MAX];

	if (make_key(key, "X:", addr) < 0) {
		fail(c, RESOLVE_ERROR);
		return;
	}
	if (set_get(&c->seen, key) != SLOT_EMPTY || !room_for_one_more(c))
		return;
	if (r->nexternal == c->cap_external) {
		size_t ncap = c->cap_external ? c->cap_external * 2 : 4;
		char (*p)[ADDR_MAX] = reallocarray(r->external, ncap, sizeof(*p));

		if (p == NULL) {
			fail(c, RESOLVE_ERROR);
			return;
		}
		r->external = p;
		c->cap_external = ncap;
	}
	if (set_put(&c->seen, key, SLOT_DONE) < 0) {
		fail(c, RESOLVE_ERROR);
		return;
	}
	strlcpy_checked(r->external[r->nexternal], addr, ADDR_MAX);
	r->nexternal++;
}

/* The user addr, delivered to if active.  1 a user exists, 0 none, -1 error. */
static int
deliver_user(struct rctx *c, const char *addr)
{
	struct db_user u;
	int r = db_user_get(c->db, addr, &u);

	if (r < 0) {
		fail(c, RESOLVE_ERROR);
		return -1;
	}
	if (r == 0)
		return 0;
	if (u.active)
		add_local(c, &u);
	else
		c->disabled_hit = 1;
	explicit_bzero(u.password_hash, sizeof(u.password_hash));
	return 1;
}

/* Targets of source into t (caller frees t->t).  0, or -1 (c->fatal set). */
static int
alias_targets(struct rctx *c, const char *source, struct targets *t)
{
	sqlite3_stmt *st = db_stmt(c->db, DBS_ALIAS_TARGETS);
	size_t cap = 0;
	int rc;

	t->t = NULL;
	t->n = 0;
	if (st == NULL ||
	    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC) != SQLITE_OK) {
		fail(c, RESOLVE_ERROR);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);

		if (v == NULL || strlen(v) >= ADDR_MAX)
			continue;	/* cannot be a valid address */
		if (t->n >= RESOLVE_MAX_TARGETS) {
			fail(c, RESOLVE_TOO_MANY);
			break;
		}
		if (t->n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			char (*p)[ADDR_MAX] = reallocarray(t->t, ncap, sizeof(*p));

			if (p == NULL) {
				fail(c, RESOLVE_ERROR);
				break;
			}
			t->t = p;
			cap = ncap;
		}
		strlcpy_checked(t->t[t->n++], v, ADDR_MAX);
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		fail(c, RESOLVE_ERROR);
	sqlite3_reset(st);
	if (c->fatal != RESOLVE_OK) {
		free(t->t);
		t->t = NULL;
		t->n = 0;
		return -1;
	}
	return 0;
}

/* An alias target: outside redirection, or one of ours resolved again. */
static void
route_target(struct rctx *c, const char *target, int depth)
{
	char addr[ADDR_MAX];
	char *at;
	int st;

	if (strlcpy_checked(addr, target, sizeof(addr)) < 0 ||
	    (at = strrchr(addr, '@')) == NULL || at == addr || at[1] == '\0')
		return;		/* not an address: nothing to deliver to */
	addr_lower(at + 1);
	st = db_domain_state(c->db, at + 1);
	if (st < 0)
		fail(c, RESOLVE_ERROR);
	else if (st == 0)
		add_external(c, addr);
	else
		expand(c, addr, depth);
}

/*
 * Aliases of self, else the user self.  1 if either matched, 0 if
 * neither, -1 on a fatal error.  A target equal to self is the user self
 * keeping a copy of its forwarded mail.
 */
static int
expand_as(struct rctx *c, const char *self, int depth)
{
	struct targets t;
	size_t i;
	int r;

	if (alias_targets(c, self, &t) < 0)
		return -1;
	if (t.n > 0) {
		for (i = 0; i < t.n && c->fatal == RESOLVE_OK; i++) {
			if (strcasecmp(t.t[i], self) == 0) {
				if (deliver_user(c, self) == 0)
					c->loop_hit = 1;  /* alias to itself, no user */
			} else {
				route_target(c, t.t[i], depth + 1);
			}
		}
		free(t.t);
		return c->fatal == RESOLVE_OK ? 1 : -1;
	}
	r = deliver_user(c, self);
	return r;
}

/* The catch-all of domain.  1 if there is one, 0 if not, -1 fatal. */
static int
expand_catchall(struct rctx *c, const char *domain, int depth)
{
	char source[ADDR_MAX];
	struct targets t;
	size_t i;

	if (snprintf_checked(source, sizeof(source), "@%s", domain) < 0)
		return 0;
	if (alias_targets(c, source, &t) < 0)
		return -1;
	if (t.n == 0)
		return 0;
	for (i = 0; i < t.n && c->fatal == RESOLVE_OK; i++)
		route_target(c, t.t[i], depth + 1);
	free(t.t);
	return c->fatal == RESOLVE_OK ? 1 : -1;
}

/* addr is "local@domain" with the domain lower-cased and ours. */
static int
expand(struct rctx *c, const char *addr, int depth)
{
	char key[ADDR_MAX], base[ADDR_MAX];
	const char *at = strrchr(addr, '@'), *plus;
	int r, st;

	if (c->fatal != RESOLVE_OK)
		return -1;
	if (depth > RESOLVE_MAX_DEPTH) {
		c->loop_hit = 1;
		return 0;
	}
	if (at == NULL || at == addr || make_key(key, "", addr) < 0)
		return 0;
	switch (set_get(&c->visited, key)) {
	case SLOT_BUSY:
		c->loop_hit = 1;	/* we are inside its own expansion */
		return 0;
	case SLOT_DONE:
		return 0;		/* a diamond: already delivered */
	}
	if (c->visited.n >= RESOLVE_MAX_VISITED) {
		fail(c, RESOLVE_TOO_MANY);
		return -1;
	}
	if (set_put(&c->visited, key, SLOT_BUSY) < 0) {
		fail(c, RESOLVE_ERROR);
		return -1;
	}

	st = db_domain_state(c->db, at + 1);
	if (st < 0) {
		fail(c, RESOLVE_ERROR);
		return -1;
	}
	if (st == 2) {
		c->disabled_hit = 1;
		r = 1;
	} else {
		r = expand_as(c, addr, depth);
	}
	plus = memchr(addr, SUBADDR_DELIM, (size_t)(at - addr));
	if (r == 0 && plus != NULL && plus != addr) {
		if (snprintf_checked(base, sizeof(base), "%.*s%s",
		    (int)(plus - addr), addr, at) == 0)
			r = expand_as(c, base, depth);
	}
	if (r == 0)
		r = expand_catchall(c, at + 1, depth);
	set_put(&c->visited, key, SLOT_DONE);	/* present: cannot fail */
	return r;
}

enum resolve_status
db_resolve(struct db *db, const struct mailaddr *rcpt,
    struct resolve_result *res)
{
	struct rctx c;
	char addr[ADDR_MAX];
	enum resolve_status st;

	memset(res, 0, sizeof(*res));
	if (rcpt->local[0] == '\0' || rcpt->domain[0] == '\0' ||
	    addr_format(rcpt, addr, sizeof(addr)) < 0)
		return RESOLVE_UNKNOWN;
	addr_lower(strrchr(addr, '@') + 1);

	switch (db_domain_state(db, strrchr(addr, '@') + 1)) {
	case -1:
		return RESOLVE_ERROR;
	case 0:
		return RESOLVE_UNKNOWN;
	case 2:
		return RESOLVE_DISABLED;
	}

	memset(&c, 0, sizeof(c));
	c.db = db;
	c.res = res;
	c.fatal = RESOLVE_OK;
	expand(&c, addr, 0);
	set_free(&c.visited);
	set_free(&c.seen);

	if (c.fatal != RESOLVE_OK)
		st = c.fatal;
	else if (res->nlocal + res->nexternal > 0)
		return RESOLVE_OK;
	else if (c.loop_hit)
		st = RESOLVE_LOOP;
	else if (c.disabled_hit)
		st = RESOLVE_DISABLED;
	else
		st = RESOLVE_UNKNOWN;
	resolve_result_free(res);
	return st;
}

void
resolve_result_free(struct resolve_result *res)
{
	free(res->local);
	free(res->external);
	memset(res, 0, sizeof(*res));
}
