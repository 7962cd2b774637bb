/*
 * imap_seqset.c - parse, resolve, query and format IMAP sequence sets
 * (see imap_seqset.h).  Pure: no mailbox, no I/O.  Never grows a set
 * past its maximum and never wraps at 4294967295.
 */
#include "imap_seqset.h"

#include <stdlib.h>
#include <string.h>

void
imap_seqset_init(struct imap_seqset *s, size_t max_ranges)
{
	s->r = NULL;
	s->n = 0;
	s->cap = 0;
	s->max = max_ranges;
	s->has_star = 0;
}

void
imap_seqset_free(struct imap_seqset *s)
{
	free(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
	s->has_star = 0;
}

void
imap_seqset_clear(struct imap_seqset *s)
{
	s->n = 0;
	s->has_star = 0;
}

/* Room for one more range; -1 past max or on allocation failure. */
static int
reserve_one(struct imap_seqset *s)
{
	struct imap_seq_range *nr;
	size_t ncap;

	if (s->n >= s->max)
		return -1;
	if (s->n < s->cap)
		return 0;
	ncap = s->cap ? s->cap * 2 : 8;
	if (ncap > s->max)
		ncap = s->max;
	if (ncap > (size_t)-1 / sizeof(*nr))
		return -1;
	nr = realloc(s->r, ncap * sizeof(*nr));
	if (nr == NULL)
		return -1;
	s->r = nr;
	s->cap = ncap;
	return 0;
}

/* One seq-number at p[*i]: nz-number or "*".  0 ok, -1 syntax. */
static int
parse_number(const char *p, size_t len, size_t *i, uint32_t *v)
{
	uint64_t n = 0;
	size_t start = *i;

	if (*i < len && p[*i] == '*') {
		(*i)++;
		*v = IMAP_SEQ_STAR;
		return 0;
	}
	if (*i >= len || p[*i] < '1' || p[*i] > '9')
		return -1;		/* empty, leading zero, or junk */
	while (*i < len && p[*i] >= '0' && p[*i] <= '9') {
		n = n * 10 + (uint64_t)(p[*i] - '0');
		if (n > UINT32_MAX || *i - start >= 10)
			return -1;
		(*i)++;
	}
	*v = (uint32_t)n;
	return 0;
}

int
imap_seqset_parse(struct imap_seqset *s, const char *p, size_t len,
    int allow_saved, const char **why_r)
{
	size_t i = 0;
	uint32_t lo, hi;

	imap_seqset_clear(s);
	if (allow_saved && len == 1 && p[0] == '$')
		return IMAP_SEQSET_SAVED;
	for (;;) {
		if (parse_number(p, len, &i, &lo) < 0)
			goto bad;
		hi = lo;
		if (i < len && p[i] == ':') {
			i++;
			if (parse_number(p, len, &i, &hi) < 0)
				goto bad;
		}
		if (lo == IMAP_SEQ_STAR || hi == IMAP_SEQ_STAR)
			s->has_star = 1;
		if (reserve_one(s) < 0) {
			*why_r = "Too many ranges in sequence set";
			imap_seqset_clear(s);
			return -1;
		}
		s->r[s->n].lo = lo;
		s->r[s->n].hi = hi;
		s->n++;
		if (i == len)
			return 0;
		if (p[i] != ',')
			goto bad;
		i++;
	}
bad:
	*why_r = "Invalid sequence set";
	imap_seqset_clear(s);
	return -1;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

/* Sort and merge overlapping or adjacent ranges (all lo <= hi). */
static void
normalise(struct imap_seqset *s)
{
	size_t i, o = 0;

	if (s->n == 0)
		return;
	qsort(s->r, s->n, sizeof(s->r[0]), cmp_range);
	for (i = 1; i < s->n; i++) {
		if ((uint64_t)s->r[i].lo <= (uint64_t)s->r[o].hi + 1) {
			if (s->r[i].hi > s->r[o].hi)
				s->r[o].hi = s->r[i].hi;
		} else
			s->r[++o] = s->r[i];
	}
	s->n = o + 1;
}

int
imap_seqset_resolve(struct imap_seqset *s, uint32_t max, int strict,
    const char **why_r)
{
	size_t i, o = 0;
	uint32_t lo, hi, t;

	for (i = 0; i < s->n; i++) {
		lo = s->r[i].lo == IMAP_SEQ_STAR ? max : s->r[i].lo;
		hi = s->r[i].hi == IMAP_SEQ_STAR ? max : s->r[i].hi;
		if (strict && (lo > max || hi > max || lo == 0 || hi == 0)) {
			*why_r = "Invalid message sequence number";
			imap_seqset_clear(s);
			return -1;
		}
		if (lo > hi) {
			t = lo;
			lo = hi;
			hi = t;
		}
		if (lo == 0)		/* "*" in an empty mailbox */
			lo = 1;
		if (hi > max)
			hi = max;
		if (lo > hi)		/* wholly outside 1..max */
			continue;
		s->r[o].lo = lo;
		s->r[o].hi = hi;
		o++;
	}
	s->n = o;
	s->has_star = 0;
	normalise(s);
	return 0;
}

/* Index of the first range with hi + 1 >= v (where v could join). */
static size_t
lower_bound(const struct imap_seqset *s, uint32_t v)
{
	size_t a = 0, b = s->n, m;

	while (a < b) {
		m = a + (b - a) / 2;
		if ((uint64_t)s->r[m].hi + 1 < v)
			a = m + 1;
		else
			b = m;
	}
	return a;
}

int
imap_seqset_add(struct imap_seqset *s, uint32_t lo, uint32_t hi)
{
	size_t i, j;

	if (lo == 0 || lo > hi)
		return -1;
	i = lower_bound(s, lo);
	/* ranges i..j-1 touch or overlap lo..hi */
	j = i;
	while (j < s->n && (uint64_t)s->r[j].lo <= (uint64_t)hi + 1)
		j++;
	if (j == i) {
		if (reserve_one(s) < 0)
			return -1;
		memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(s->r[0]));
		s->r[i].lo = lo;
		s->r[i].hi = hi;
		s->n++;
		return 0;
	}
	if (s->r[i].lo < lo)
		lo = s->r[i].lo;
	if (s->r[j - 1].hi > hi)
		hi = s->r[j - 1].hi;
	s->r[i].lo = lo;
	s->r[i].hi = hi;
	memmove(&s->r[i + 1], &s->r[j], (s->n - j) * sizeof(s->r[0]));
	s->n -= j - i - 1;
	return 0;
}

int
imap_seqset_contains(const struct imap_seqset *s, uint32_t v)
{
	size_t a = 0, b = s->n, m;

	while (a < b) {
		m = a + (b - a) / 2;
		if (v < s->r[m].lo)
			b = m;
		else if (v > s->r[m].hi)
			a = m + 1;
		else
			return 1;
	}
	return 0;
}

uint64_t
imap_seqset_count(const struct imap_seqset *s)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < s->n; i++)
		total += (uint64_t)s->r[i].hi - s->r[i].lo + 1;
	return total;
}

uint32_t
imap_seqset_min(const struct imap_seqset *s)
{
	return s->n > 0 ? s->r[0].lo : 0;
}

uint32_t
imap_seqset_max(const struct imap_seqset *s)
{
	return s->n > 0 ? s->r[s->n - 1].hi : 0;
}

void
imap_seqset_iter_init(struct imap_seqset_iter *it, const struct imap_seqset *s)
{
	it->s = s;
	it->i = 0;
	it->next = s->n > 0 ? s->r[0].lo : 0;
}

int
imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *v)
{
	const struct imap_seqset *s = it->s;

	while (it->i < s->n) {
		if (it->next <= s->r[it->i].hi) {
			*v = (uint32_t)it->next++;
			return 1;
		}
		it->i++;
		if (it->i < s->n)
			it->next = s->r[it->i].lo;
	}
	return 0;
}

static int
put_value(struct buf *out, uint32_t v)
{
	if (v == IMAP_SEQ_STAR)
		return buf_putc(out, '*');
	return buf_printf(out, "%lu", (unsigned long)v);
}

int
imap_seqset_format(const struct imap_seqset *s, struct buf *out)
{
	size_t old = out->len, i;

	for (i = 0; i < s->n; i++) {
		if ((i > 0 && buf_putc(out, ',') < 0) ||
		    put_value(out, s->r[i].lo) < 0 ||
		    (s->r[i].hi != s->r[i].lo &&
		    (buf_putc(out, ':') < 0 || put_value(out, s->r[i].hi) < 0))) {
			out->len = old;
			if (out->data != NULL)
				out->data[old] = '\0';
			return -1;
		}
	}
	return 0;
}
