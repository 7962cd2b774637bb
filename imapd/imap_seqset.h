/*
 * imap_seqset.h - IMAP sequence sets ("1:4,7,9:*", RFC 9051 section 9
 * sequence-set) for message numbers and UIDs: parse, resolve "*" against
 * the mailbox, test membership, iterate, and format back to text for
 * COPYUID / APPENDUID / VANISHED / ESEARCH responses ("1:3,5").
 *
 * A set is an array of ranges.  As parsed it is exactly what the client
 * wrote (any order, overlaps, "*" kept as IMAP_SEQ_STAR); after
 * imap_seqset_resolve() or imap_seqset_add() it is normalised: sorted,
 * non-overlapping, non-adjacent ranges of values 1..2^32-1.  Pure code:
 * no mailbox access, no I/O.
 *
 * Must never: grow past the caller's max_ranges, accept 0 or a number
 * above 4294967295, or loop forever on a range ending at 4294967295.
 */
#ifndef BUZON_IMAP_SEQSET_H
#define BUZON_IMAP_SEQSET_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

/* "*" in a parsed, unresolved set (0 is never a valid seq-number). */
#define IMAP_SEQ_STAR	0u

struct imap_seq_range {
	uint32_t lo, hi;	/* lo <= hi once normalised */
};

struct imap_seqset {
	struct imap_seq_range *r;
	size_t n;		/* ranges in use */
	size_t cap;		/* ranges allocated */
	size_t max;		/* hard limit on n */
	int has_star;		/* parsed set mentions "*" */
};

void imap_seqset_init(struct imap_seqset *s, size_t max_ranges);
void imap_seqset_free(struct imap_seqset *s);
void imap_seqset_clear(struct imap_seqset *s);	/* n = 0, keeps memory */

#define IMAP_SEQSET_SAVED	1	/* imap_seqset_parse: the text was "$" */

/*
 * Parse a sequence-set from (p, len) into s (cleared first), as written.
 * Numbers are nz-number: 1..4294967295, no leading zero.  With
 * allow_saved, the text "$" alone (RFC 5182 SEARCHRES) returns
 * IMAP_SEQSET_SAVED and leaves s empty.  Returns 0, or -1 with *why_r
 * set ("Invalid sequence set", "Too many ranges in sequence set", ...).
 */
int imap_seqset_parse(struct imap_seqset *s, const char *p, size_t len,
    int allow_saved, const char **why_r);

/*
 * Resolve a parsed set against a mailbox in place: "*" becomes max (the
 * message count, or the highest UID in use), each range is ordered, then
 * ranges are clipped to 1..max, sorted and merged.  "n:*" with n > max
 * keeps max, as RFC 9051 requires for UIDs ("559:*" always includes the
 * last message).
 *
 * strict (message sequence numbers): a number above max, or "*" in an
 * empty mailbox, is an error (-1, *why_r "Invalid message sequence
 * number"): RFC 9051 wants a tagged BAD.  Not strict (UIDs): values
 * outside 1..max are dropped silently; the result may be empty.
 */
int imap_seqset_resolve(struct imap_seqset *s, uint32_t max, int strict,
    const char **why_r);

/*
 * Add lo..hi (1 <= lo <= hi) to a normalised set, keeping it normalised.
 * Returns 0, or -1 when the set would need more than max ranges (or on
 * allocation failure); s is then unchanged.
 */
int imap_seqset_add(struct imap_seqset *s, uint32_t lo, uint32_t hi);

/* Membership in a normalised set (binary search). */
int imap_seqset_contains(const struct imap_seqset *s, uint32_t v);

/* Number of values in a normalised set. */
uint64_t imap_seqset_count(const struct imap_seqset *s);

/* Smallest / largest value of a normalised set; 0 when empty. */
uint32_t imap_seqset_min(const struct imap_seqset *s);
uint32_t imap_seqset_max(const struct imap_seqset *s);

/*
 * Ascending iteration over a normalised set:
 *	struct imap_seqset_iter it;
 *	uint32_t v;
 *	imap_seqset_iter_init(&it, s);
 *	while (imap_seqset_iter_next(&it, &v)) ...
 */
struct imap_seqset_iter {
	const struct imap_seqset *s;
	size_t i;		/* current range */
	uint64_t next;		/* next value to return (64-bit: no wrap) */
};

void imap_seqset_iter_init(struct imap_seqset_iter *it,
    const struct imap_seqset *s);
int imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *v);

/*
 * Append the text form to out: "1:3,5" ("*" for IMAP_SEQ_STAR in a
 * parsed set).  Nothing is appended for an empty set.  Returns 0, or -1
 * when out is full (out then unchanged).
 */
int imap_seqset_format(const struct imap_seqset *s, struct buf *out);

#endif
