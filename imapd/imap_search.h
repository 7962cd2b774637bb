/*
 * imap_search.h - IMAP SEARCH programs (RFC 3501 / RFC 9051 6.4.4, ESEARCH
 * return options RFC 4731, SEARCHRES's SAVE and "$" RFC 5182, the MODSEQ
 * key of CONDSTORE RFC 7162 3.1.5):
 * a pure parser from the command's argument tree to a search program,
 * and an evaluator that decides one message at a time.
 *
 * Evaluation runs in two steps so that most messages are decided from
 * index metadata alone: search_eval_meta() answers 1 / 0, or -1 when
 * the answer depends on a key that needs the message text (headers,
 * body, Date:); only then does the caller read the file and ask
 * search_eval_content().  Both are pure: no I/O, no session, no mailbox.
 *
 * Must never: recurse deeper than SEARCH_MAX_DEPTH, hold more than
 * SEARCH_MAX_KEYS keys, read past the bytes it is given, or keep
 * pointers into the argument tree past search_program_free() (it does
 * keep them until then: the tree must outlive the program).
 *
 * Semantics chosen where the RFCs leave room (documented here, tested in
 * tests/unit/test_imap_search.c):
 *  - strings match as case-insensitive substrings of the RFC 2047-decoded
 *    UTF-8 header value / the transfer-decoded, charset-converted text
 *    parts (mime_decode.h folding); an empty string matches everything
 *    (HEADER f "": every message that has field f);
 *  - BEFORE/ON/SINCE compare the date part of INTERNALDATE in the
 *    server's local zone; SENTBEFORE/SENTON/SENTSINCE the date part of
 *    the Date: field as written (its own zone).  A message without a
 *    parseable Date: matches no SENT* key;
 *  - a message sequence set is resolved against the session's count and
 *    numbers beyond it simply match nothing (no BAD);
 *  - "$" (as a sequence set, or after UID) stands alone, never inside a
 *    set ("$,1" is BAD), and matches the messages the caller marks as
 *    saved (struct search_msg);
 *  - BODY searches the text/ parts (and encapsulated messages' text
 *    parts); TEXT searches those plus the headers of the message and of
 *    encapsulated messages.
 */
#ifndef BUZON_IMAP_SEARCH_H
#define BUZON_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "imap_parser.h"
#include "imap_seqset.h"

#define SEARCH_MAX_KEYS		1000	/* keys and groups in one program */
#define SEARCH_MAX_DEPTH	32	/* NOT / OR / ( ) nesting */
#define SEARCH_MAX_RANGES	100000	/* ranges in one sequence set */

enum search_key_type {
	SK_AND,			/* children: the keys of a list or ( ) group */
	SK_OR,			/* exactly two children */
	SK_NOT,			/* exactly one child */
	SK_ALL,
	SK_FLAGS_SET,		/* all of flags set (ANSWERED, SEEN, ...) */
	SK_FLAGS_UNSET,		/* all of flags unset (UNSEEN, ...) */
	SK_RECENT,
	SK_NEW,			/* RECENT UNSEEN */
	SK_OLD,			/* NOT RECENT */
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE,
	SK_ON,
	SK_SINCE,
	SK_MODSEQ,		/* modseq >= num */
	SK_SEQSET,
	SK_UIDSET,
	SK_SAVED,		/* "$": the saved result (RFC 5182) */
	/* keys below need the message text */
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,		/* FROM TO CC BCC SUBJECT HEADER */
	SK_BODY,
	SK_TEXT,
};

struct search_key {
	enum search_key_type type;
	int child, next;		/* indexes in keys[], -1 none */
	unsigned flags;			/* SK_FLAGS_*: enum mbox_flag bits */
	uint64_t num;			/* LARGER SMALLER MODSEQ */
	int32_t date;			/* dates as search_ymd() */
	const char *field;		/* SK_HEADER field name (tree) */
	size_t field_len;
	const char *str;		/* KEYWORD, or the string (tree) */
	size_t len;
	char *folded;			/* string folded for matching (owned) */
	size_t folded_len;
	struct imap_seqset set;		/* SK_SEQSET / SK_UIDSET */
};

/* ESEARCH RETURN options (RFC 4731) */
#define SEARCH_RET_MIN		0x01
#define SEARCH_RET_MAX		0x02
#define SEARCH_RET_ALL		0x04
#define SEARCH_RET_COUNT	0x08
#define SEARCH_RET_SAVE		0x10	/* RFC 5182: keep the result as "$" */

struct search_program {
	struct search_key *keys;
	size_t n, cap;
	int root;			/* an SK_AND of the top-level keys */
	int esearch;			/* RETURN (...) was given */
	unsigned ret;			/* SEARCH_RET_*; RETURN () = ALL;
					   RETURN (SAVE) is SAVE alone */
	int has_modseq;			/* some MODSEQ key: report MODSEQ */
	int needs_content;		/* some key reads the message */
	int needs_body;			/* ... past its header (BODY, TEXT) */
	int uses_saved;			/* some "$" key */
};

/* Parse results besides 0. */
#define SEARCH_ERR_SYNTAX	(-1)	/* tagged BAD *why_r */
#define SEARCH_ERR_CHARSET	(-2)	/* NO [BADCHARSET (UTF-8 US-ASCII)] */
#define SEARCH_ERR_NOMEM	(-3)

/*
 * Parse SEARCH arguments: [RETURN (opts)] [CHARSET name] key... into p.
 * Returns 0, or SEARCH_ERR_* with *why_r a short reason for the client.
 * p must be freed with search_program_free() whatever the result.
 */
int search_parse(struct search_program *p, const struct imap_arg *args,
    size_t count, const char **why_r);
void search_program_free(struct search_program *p);

/*
 * Resolve "*" and clip the sequence and UID sets: count is the number of
 * messages in the session's view, max_uid the highest UID in it.
 * Call once, after search_parse() and before evaluating.
 */
void search_program_resolve(struct search_program *p, uint32_t count,
    uint32_t max_uid);

/* One message's metadata, as the index and the session's view know it. */
struct search_msg {
	uint32_t seq, uid;
	unsigned flags;			/* enum mbox_flag bits */
	const char *keywords;		/* space-separated, may be NULL */
	int recent;
	int saved;			/* in the saved result ("$") */
	uint64_t size;			/* RFC822.SIZE */
	uint64_t modseq;
	int64_t internaldate;		/* unix time */
};

/* 1 match, 0 no match, -1 the message text is needed to decide. */
int search_eval_meta(const struct search_program *p,
    const struct search_msg *m);

/*
 * 1 match, 0 no match, with the whole stored message (data, len).  Text
 * is decoded lazily, only as far as the keys need it.  -1 only when
 * memory runs out.
 */
int search_eval_content(const struct search_program *p,
    const struct search_msg *m, const char *data, size_t len);

/*
 * An IMAP date ("1-Feb-1994", day 1 or 2 digits, month any case) as a
 * comparable day number; -1 when it is not one.  search_ymd() makes the
 * same number from a calendar date (mon 1..12).
 */
int32_t search_parse_date(const char *s, size_t len);
int32_t search_ymd(int year, int mon, int day);

/*
 * The date part of an RFC 5322 Date: value ("Tue, 1 Jul 2003 10:52:37
 * +0200", obsolete 2- and 3-digit years included), in its own zone, as
 * search_ymd(); -1 when unparseable.
 */
int32_t search_parse_sent_date(const char *s, size_t len);

#endif
