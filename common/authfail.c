/*
 * authfail.c - the per-network failed-authentication table (authfail.h).
 *
 * A fixed array of entries, a chained hash index over them (SipHash-2-4
 * with a random key, so that a client cannot pick addresses that pile up
 * in one chain) and a doubly linked LRU list ordered by last failure.
 * Links are array indices; nothing is allocated after authfail_new().
 *
 * Must never: grow, do I/O, or touch anything but its own table.
 */
#include "authfail.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <openssl/rand.h>

#define NIL UINT32_MAX
#define ENTRIES_MAX (1u << 24)

struct af_entry {
	uint8_t key[17];		/* family (4 or 6), then the address */
	uint8_t counts[AUTHFAIL_BUCKETS];	/* failures per time bucket */
	uint16_t total;			/* sum of counts */
	uint16_t streak;		/* failures since the last success */
	uint32_t epoch;			/* bucket number of counts[epoch % N] */
	uint32_t last_fail;		/* table time (s) */
	uint32_t locked_until;		/* table time (s); 0: never locked */
	uint32_t chain;			/* next entry in the hash chain */
	uint32_t newer, older;		/* LRU neighbours */
};

struct authfail {
	struct authfail_limits lim;
	authfail_clock_fn *clock;
	void *clock_arg;
	uint64_t t0;			/* clock at creation: table time 0 */
	uint32_t width;			/* seconds per bucket */
	uint64_t hkey[2];		/* SipHash key */
	uint32_t *heads;		/* hash index, mask + 1 chains */
	uint32_t mask;
	struct af_entry *e;
	uint32_t used;			/* entries ever handed out */
	uint32_t newest, oldest;	/* LRU ends */
};

static uint64_t
monotonic_seconds(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec;
}

/* ---- SipHash-2-4 of a 24-byte message ---- */

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do { \
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
} while (0)

static uint64_t
siphash24(const uint64_t k[2], const uint8_t msg[24])
{
	uint64_t v0 = k[0] ^ 0x736f6d6570736575ULL;
	uint64_t v1 = k[1] ^ 0x646f72616e646f6dULL;
	uint64_t v2 = k[0] ^ 0x6c7967656e657261ULL;
	uint64_t v3 = k[1] ^ 0x7465646279746573ULL;
	uint64_t m;
	int i, j;

	for (i = 0; i < 24; i += 8) {
		for (m = 0, j = 7; j >= 0; j--)
			m = m << 8 | msg[i + j];
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	m = (uint64_t)24 << 56;
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- keys ---- */

/* The network of sa: 0, or -1 when it is not an IP address. */
static int
network_key(const struct sockaddr *sa, uint8_t key[17])
{
	memset(key, 0, 17);
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		key[0] = 4;
		memcpy(key + 1, &s4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, s6->sin6_addr.s6_addr, 8);	/* /64 */
		}
		return 0;
	}
	return -1;
}

static uint32_t
chain_of(const struct authfail *t, const uint8_t key[17])
{
	uint8_t msg[24] = { 0 };

	memcpy(msg, key, 17);
	return (uint32_t)siphash24(t->hkey, msg) & t->mask;
}

static uint32_t
lookup(const struct authfail *t, const uint8_t key[17])
{
	uint32_t i;

	for (i = t->heads[chain_of(t, key)]; i != NIL; i = t->e[i].chain)
		if (memcmp(t->e[i].key, key, 17) == 0)
			return i;
	return NIL;
}

/* ---- LRU list ---- */

static void
lru_unlink(struct authfail *t, uint32_t i)
{
	struct af_entry *x = &t->e[i];

	if (x->newer != NIL)
		t->e[x->newer].older = x->older;
	else
		t->newest = x->older;
	if (x->older != NIL)
		t->e[x->older].newer = x->newer;
	else
		t->oldest = x->newer;
	x->newer = x->older = NIL;
}

static void
lru_push_newest(struct authfail *t, uint32_t i)
{
	struct af_entry *x = &t->e[i];

	x->older = t->newest;
	x->newer = NIL;
	if (t->newest != NIL)
		t->e[t->newest].newer = i;
	t->newest = i;
	if (t->oldest == NIL)
		t->oldest = i;
}

static void
chain_unlink(struct authfail *t, uint32_t i)
{
	uint32_t *p = &t->heads[chain_of(t, t->e[i].key)];

	while (*p != NIL && *p != i)
		p = &t->e[*p].chain;
	if (*p == i)
		*p = t->e[i].chain;
}

/* The entry of key, made (evicting the oldest when full) if needed. */
static uint32_t
lookup_or_add(struct authfail *t, const uint8_t key[17])
{
	uint32_t i = lookup(t, key), c;

	if (i != NIL)
		return i;
	if (t->used < t->lim.entries) {
		i = t->used++;
	} else {
		i = t->oldest;
		lru_unlink(t, i);
		chain_unlink(t, i);
	}
	memset(&t->e[i], 0, sizeof(t->e[i]));
	memcpy(t->e[i].key, key, 17);
	c = chain_of(t, key);
	t->e[i].chain = t->heads[c];
	t->heads[c] = i;
	t->e[i].newer = t->e[i].older = NIL;
	lru_push_newest(t, i);
	return i;
}

/* ---- time ---- */

static uint32_t
table_now(const struct authfail *t)
{
	uint64_t now = t->clock(t->clock_arg);

	if (now <= t->t0)
		return 0;
	if (now - t->t0 >= UINT32_MAX / 2)
		return UINT32_MAX / 2;
	return (uint32_t)(now - t->t0);
}

/* Forget the buckets that left the window. */
static void
advance(const struct authfail *t, struct af_entry *x, uint32_t now)
{
	uint32_t cur = now / t->width, b;

	if (cur <= x->epoch)
		return;
	if (cur - x->epoch >= AUTHFAIL_BUCKETS) {
		memset(x->counts, 0, sizeof(x->counts));
		x->total = 0;
	} else {
		for (b = x->epoch + 1; b <= cur; b++) {
			x->total -= x->counts[b % AUTHFAIL_BUCKETS];
			x->counts[b % AUTHFAIL_BUCKETS] = 0;
		}
	}
	x->epoch = cur;
}

static unsigned
streak_delay(const struct authfail *t, const struct af_entry *x,
    uint32_t now)
{
	unsigned n = x->streak;
	uint64_t d;

	if (n <= 1 || now - x->last_fail > t->lim.lockout_window)
		return 0;
	if (n - 2 >= 32)
		return t->lim.delay_max_ms;
	d = (uint64_t)t->lim.delay_first_ms << (n - 2);
	return d > t->lim.delay_max_ms ? t->lim.delay_max_ms : (unsigned)d;
}

/* ---- API ---- */

struct authfail *
authfail_new(const struct authfail_limits *lim, authfail_clock_fn *clock,
    void *clock_arg)
{
	static const struct authfail_limits defaults = AUTHFAIL_LIMITS_DEFAULT;
	struct authfail *t;
	uint32_t nheads = 1, i;

	if (lim == NULL)
		lim = &defaults;
	if (lim->entries == 0 || lim->entries > ENTRIES_MAX ||
	    lim->lockout_window == 0 ||
	    (lim->lockout_failures > 0 && lim->lockout_time == 0) ||
	    lim->lockout_failures > UINT16_MAX ||
	    lim->delay_first_ms > lim->delay_max_ms)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->lim = *lim;
	t->clock = clock != NULL ? clock : monotonic_seconds;
	t->clock_arg = clock_arg;
	t->t0 = t->clock(t->clock_arg);
	/* AUTHFAIL_BUCKETS - 1 full buckets span the window. */
	t->width = (lim->lockout_window + AUTHFAIL_BUCKETS - 2) /
	    (AUTHFAIL_BUCKETS - 1);
	while (nheads < lim->entries)
		nheads <<= 1;
	t->mask = nheads - 1;
	t->heads = malloc((size_t)nheads * sizeof(*t->heads));
	t->e = calloc(lim->entries, sizeof(*t->e));
	if (t->heads == NULL || t->e == NULL ||
	    RAND_bytes((unsigned char *)t->hkey, sizeof(t->hkey)) != 1) {
		authfail_free(&t);
		return NULL;
	}
	for (i = 0; i < nheads; i++)
		t->heads[i] = NIL;
	t->newest = t->oldest = NIL;
	return t;
}

void
authfail_free(struct authfail **tp)
{
	struct authfail *t = *tp;

	if (t == NULL)
		return;
	free(t->heads);
	free(t->e);
	free(t);
	*tp = NULL;
}

unsigned
authfail_locked(struct authfail *t, const struct sockaddr *sa)
{
	uint8_t key[17];
	uint32_t i, now;

	if (network_key(sa, key) < 0 || (i = lookup(t, key)) == NIL)
		return 0;
	now = table_now(t);
	return now < t->e[i].locked_until ? t->e[i].locked_until - now : 0;
}

unsigned
authfail_failure(struct authfail *t, const struct sockaddr *sa)
{
	uint8_t key[17];
	struct af_entry *x;
	uint32_t i, now = table_now(t);

	if (network_key(sa, key) < 0)
		return 0;
	i = lookup_or_add(t, key);
	x = &t->e[i];
	if (i != t->newest) {
		lru_unlink(t, i);
		lru_push_newest(t, i);
	}
	if (x->streak > 0 && now - x->last_fail > t->lim.lockout_window)
		x->streak = 0;
	if (x->streak < UINT16_MAX)
		x->streak++;
	x->last_fail = now;
	if (t->lim.lockout_failures > 0 && now >= x->locked_until) {
		advance(t, x, now);
		if (x->counts[x->epoch % AUTHFAIL_BUCKETS] < UINT8_MAX) {
			x->counts[x->epoch % AUTHFAIL_BUCKETS]++;
			x->total++;
		}
		if (x->total >= t->lim.lockout_failures) {
			/* The lockout uses these failures up. */
			x->locked_until = now + t->lim.lockout_time;
			memset(x->counts, 0, sizeof(x->counts));
			x->total = 0;
		}
	}
	return streak_delay(t, x, now);
}

void
authfail_success(struct authfail *t, const struct sockaddr *sa)
{
	uint8_t key[17];
	uint32_t i;

	if (network_key(sa, key) == 0 && (i = lookup(t, key)) != NIL)
		t->e[i].streak = 0;
}

unsigned
authfail_delay(struct authfail *t, const struct sockaddr *sa)
{
	uint8_t key[17];
	uint32_t i;

	if (network_key(sa, key) < 0 || (i = lookup(t, key)) == NIL)
		return 0;
	return streak_delay(t, &t->e[i], table_now(t));
}

size_t
authfail_count(const struct authfail *t)
{
	return t->used;
}
