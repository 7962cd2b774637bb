/*
 * mbox_index.h - the per-user mailbox index (DESIGN.md "Data": Mailbox
 * index): one SQLite file USERDIR/index.db caching, for every mailbox of a
 * Maildir++ user directory, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and the
 * messages' UIDs, flags, keywords, modseqs, sizes and internal dates.
 * imapd and pop3d read mail only through this API.
 *
 * The Maildir is the truth.  mbox_sync() brings a mailbox's rows in line
 * with its directory (new files get the next UIDs, vanished files become
 * expunged, flag changes made by other programs get a new modseq); every
 * change made through this API changes the files first (rename, link,
 * unlink) and the rows second, in one SQLite write transaction, which is
 * also what serialises several processes working on one user.  A missing
 * or corrupt index.db is rebuilt from the Maildir (flags from the file
 * names, keywords from the Dovecot letters a-z and "dovecot-keywords");
 * UIDVALIDITY then changes, as it must.
 *
 * Conventions: 0 / -1 (errno set, mbox_index_error() says more), or 1 / 0
 * / -1 where "found" matters.  errno values callers act on: ENOENT (no
 * such mailbox, or it was deleted meanwhile), EEXIST, EINVAL (bad name or
 * keyword), EPERM (INBOX cannot be deleted), EDQUOT (over quota), EIO
 * (the index is corrupt: close it and reopen with MBOX_OPEN_CHECK).
 *
 * One struct mbox_index is used by one thread at a time; several handles
 * (threads, sessions, processes) may use one user's index at once.  All
 * functions block on disk: daemons call them from the thread pool.
 *
 * \Recent: a message is recent for the first session that claims it
 * (mbox_claim_recent(), which a read-write SELECT calls after each sync);
 * STATUS RECENT counts the messages nobody has claimed yet.
 */
#ifndef BUZON_MBOX_INDEX_H
#define BUZON_MBOX_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/buf.h"

#define MBOX_INDEX_FILE	"index.db"
#define MBOX_NAME_MAX	200	/* bytes of a UTF-8 mailbox name */
#define MBOX_KEYWORD_MAX 64	/* bytes of one keyword */
#define MBOX_MSG_KEYWORDS_MAX 64 /* keywords on one message */

struct mbox_index;

/* System flags (IMAP) as bits; file name letters S R F T D. */
enum mbox_flag {
	MBOX_F_SEEN	= 1 << 0,	/* S */
	MBOX_F_ANSWERED	= 1 << 1,	/* R */
	MBOX_F_FLAGGED	= 1 << 2,	/* F */
	MBOX_F_DELETED	= 1 << 3,	/* T */
	MBOX_F_DRAFT	= 1 << 4,	/* D */
};
#define MBOX_F_ALL 0x1fu

/* SPECIAL-USE attributes (RFC 6154) of the default folders. */
enum mbox_special {
	MBOX_SPECIAL_NONE, MBOX_SPECIAL_SENT, MBOX_SPECIAL_DRAFTS,
	MBOX_SPECIAL_TRASH, MBOX_SPECIAL_JUNK, MBOX_SPECIAL_ARCHIVE,
};
/* "\\Sent" ... or NULL for MBOX_SPECIAL_NONE. */
const char *mbox_special_attr(enum mbox_special s);

/* An inclusive UID range; a UID set is an array of them (any order). */
struct mbox_range {
	uint32_t lo, hi;
};

/* A growable UID list (results). */
struct mbox_uids {
	uint32_t *uids;
	size_t count, cap;
};
void mbox_uids_free(struct mbox_uids *u);

/* ---- open / close ---------------------------------------------------- */

#define MBOX_OPEN_CHECK 0x1	/* run PRAGMA quick_check; rebuild if bad */

/*
 * Open USERDIR/index.db, creating USERDIR's Maildir, INBOX and the
 * special-use folders (Sent Drafts Trash Junk Archive) on first open.  A
 * missing index is built from the Maildir; an unreadable or corrupt one
 * (or one failing the check) is moved aside to index.db.corrupt and
 * rebuilt.  0, or -1 with err set.
 */
int mbox_index_open(const char *userdir, unsigned flags,
    struct mbox_index **idx_r, char *err, size_t errlen);
void mbox_index_close(struct mbox_index **idxp);
/* 1 when the last open built the index from the Maildir. */
int mbox_index_was_rebuilt(const struct mbox_index *idx);
/* Quota in bytes for append/copy (0 = none; then maildirsize is left alone). */
void mbox_index_set_quota(struct mbox_index *idx, uint64_t quota_bytes);
/* The last error, for a log line (never client data unescaped). */
const char *mbox_index_error(const struct mbox_index *idx);
const char *mbox_index_userdir(const struct mbox_index *idx);

/* ---- mailboxes ------------------------------------------------------- */

struct mbox_info {
	int64_t id;			/* stable across renames, never reused */
	char name[MBOX_NAME_MAX + 1];	/* UTF-8, '.'-separated; "INBOX" */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint64_t highestmodseq;
	enum mbox_special special;
	int subscribed;
	int has_children;		/* some mailbox is named NAME.xxx */
};

/*
 * 1 when name is acceptable for CREATE/RENAME: 1..MBOX_NAME_MAX bytes of
 * valid UTF-8, no '/', no control bytes, no '*' or '%', no empty
 * '.'-component (so no "..", no leading or trailing '.').  Pure.
 */
int mbox_name_valid(const char *name);

/*
 * Every mailbox, INBOX first then by name (malloc'd array, free()).
 * Folders created or removed on disk by other programs are picked up.
 */
int mbox_list(struct mbox_index *idx, struct mbox_info **list_r,
    size_t *count_r);
/* 1 found (info filled; "inbox" in any case is INBOX), 0 none, -1 error. */
int mbox_find(struct mbox_index *idx, const char *name,
    struct mbox_info *info_r);
/* Same by id. */
int mbox_get(struct mbox_index *idx, int64_t id, struct mbox_info *info_r);

/* CREATE: a new UIDVALIDITY, never one used before in this index. */
int mbox_create(struct mbox_index *idx, const char *name,
    enum mbox_special special);
/* DELETE: removes the Maildir folder and its messages.  EPERM for INBOX. */
int mbox_delete(struct mbox_index *idx, const char *name);
/*
 * RENAME, children included (A.x follows A).  Renaming INBOX creates
 * `to` with INBOX's messages and leaves INBOX empty (RFC 3501 6.3.5).
 */
int mbox_rename(struct mbox_index *idx, const char *from, const char *to);
/* SUBSCRIBE/UNSUBSCRIBE; the name need not exist (RFC 3501 6.3.6). */
int mbox_subscribe(struct mbox_index *idx, const char *name, int on);
/* Subscribed names (LSUB), malloc'd array of malloc'd strings. */
int mbox_subscriptions(struct mbox_index *idx, char ***names_r,
    size_t *count_r);
void mbox_strings_free(char **names, size_t count);

/*
 * The keywords mailbox id knows (its dovecot-keywords letters and every
 * keyword on a message), for the FLAGS / PERMANENTFLAGS responses.
 * Free with mbox_strings_free().
 */
int mbox_keywords(struct mbox_index *idx, int64_t id, char ***names_r,
    size_t *count_r);

struct mbox_status {
	uint32_t messages, recent, unseen, uidnext, uidvalidity;
	uint64_t size;			/* sum of RFC822.SIZE */
	uint64_t highestmodseq;
};
/* From the index as it is: call mbox_sync() first for fresh numbers. */
int mbox_status(struct mbox_index *idx, int64_t id, struct mbox_status *st);
/* Just HIGHESTMODSEQ, without counting the messages (after each command). */
int mbox_highestmodseq(struct mbox_index *idx, int64_t id, uint64_t *out);

/*
 * \Recent: returns [*first_r, *next_r): the UIDs recent for the caller,
 * now claimed so that no other session sees them as recent.
 */
int mbox_claim_recent(struct mbox_index *idx, int64_t id, uint32_t *first_r,
    uint32_t *next_r);

/* ---- sync ------------------------------------------------------------ */

struct mbox_sync_result {
	uint32_t added;			/* new messages (UIDs assigned) */
	uint32_t flag_changes;		/* flags changed by another program */
	struct mbox_uids expunged;	/* vanished, ascending UIDs */
	uint32_t *expunged_seqs;	/* their 1-based positions in the
					   index before this sync (send
					   EXPUNGEs from the last one) */
	int full_scan;			/* 0: directory stamps said nothing
					   changed */
};
void mbox_sync_result_free(struct mbox_sync_result *res);

/*
 * Bring the index in line with the Maildir: files in new/ move to cur/
 * with ":2," and get the next UIDs in delivery order; files gone from
 * cur/ become expunged; renamed files' flags are read back.  Cheap when
 * the new/ and cur/ directory stamps have not changed.  res may be NULL.
 * Another session may already have recorded an expunge; sessions learn
 * of those with mbox_expunged_since().
 */
int mbox_sync(struct mbox_index *idx, int64_t id,
    struct mbox_sync_result *res);

/* ---- messages -------------------------------------------------------- */

struct mbox_msg {
	uint32_t uid;
	unsigned flags;			/* enum mbox_flag bits */
	char *keywords;			/* space-separated, "" when none;
					   in fname's allocation */
	uint64_t modseq;
	uint64_t size;			/* RFC822.SIZE (CRLF line ends) */
	uint64_t fsize;			/* bytes on disk (LF line ends) */
	int64_t internaldate;		/* unix time */
	char *fname;			/* file name in DIR/cur/; one malloc
					   with keywords: taking it takes both */
};

struct mbox_msglist {
	char *dir;			/* the mailbox's Maildir */
	struct mbox_msg *msgs;		/* ascending UIDs */
	size_t count;
};
void mbox_msglist_free(struct mbox_msglist *l);
/* DIR/cur/FNAME of l->msgs[i].  0 or -1 (ENAMETOOLONG). */
int mbox_msglist_path(const struct mbox_msglist *l, size_t i, char *out,
    size_t outsz);
/*
 * Open l->msgs[i] read-only by the name the list holds, without an index
 * transaction; when that name is gone (flags changed elsewhere since the
 * listing) look it up again as mbox_msg_open() does.  1 / 0 (gone) / -1.
 */
int mbox_msglist_open(struct mbox_index *idx, int64_t id,
    const struct mbox_msglist *l, size_t i, int *fd_r);
/*
 * Read l->msgs[i] into b (reset first; b's max bounds it), or with
 * header_only at least its header: up to and with the blank line, or
 * all of a message that has none.  1 / 0 (gone) / -1 (unreadable or too
 * big for b).
 */
int mbox_msglist_read(struct mbox_index *idx, int64_t id,
    const struct mbox_msglist *l, size_t i, int header_only, struct buf *b);
/*
 * Read all of l->msgs[i] by the name the list holds, touching no index,
 * so any thread may: 1, 0 when no file has that name any more (the
 * caller looks again with mbox_msglist_read()), -1 with errno.
 */
int mbox_msglist_read_file(const struct mbox_msglist *l, size_t i,
    struct buf *b);

/*
 * Messages in set (NULL: all) whose modseq > changedsince (0: any), in
 * UID order.  A file may be renamed or removed behind the caller's back:
 * on ENOENT use mbox_msg_open() or sync and fetch again.
 */
int mbox_messages(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset, uint64_t changedsince,
    struct mbox_msglist *out);

/*
 * Open message uid read-only.  1 with *fd_r, 0 when it is expunged, -1
 * error.  A file renamed behind our back (ENOENT) triggers one sync and
 * a second try.
 */
int mbox_msg_open(struct mbox_index *idx, int64_t id, uint32_t uid,
    int *fd_r);

enum mbox_store_mode { MBOX_STORE_SET, MBOX_STORE_ADD, MBOX_STORE_REMOVE };

struct mbox_store_req {
	enum mbox_store_mode mode;
	unsigned flags;			/* enum mbox_flag bits */
	const char *const *keywords;	/* IMAP atoms, case-insensitive */
	size_t nkeywords;
	uint64_t unchangedsince;	/* CONDSTORE; 0: none */
};

/*
 * STORE on the UIDs in set: renames each file so its info part matches
 * and gives changed messages one new modseq.  changed_r gets the UIDs
 * whose flags changed, failed_r those whose modseq was above
 * unchangedsince (left alone).  Either list pointer may be NULL.
 */
int mbox_store(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset,
    const struct mbox_store_req *req, struct mbox_uids *changed_r,
    struct mbox_uids *failed_r);

struct mbox_append_req {
	unsigned flags;
	const char *const *keywords;
	size_t nkeywords;
	time_t internaldate;		/* 0: now */
};

/*
 * APPEND a message (CRLF or LF line ends; stored with LF like every
 * delivery) through tmp/ + fsync + rename into cur/ + dir fsync.  *uid_r
 * and *uidvalidity_r (may be NULL) are for APPENDUID.  EDQUOT when the
 * quota set with mbox_index_set_quota() would be exceeded.
 */
int mbox_append(struct mbox_index *idx, int64_t id, const void *data,
    size_t len, const struct mbox_append_req *req, uint32_t *uid_r,
    uint32_t *uidvalidity_r);
/* The same, reading the message from fd until EOF. */
int mbox_append_fd(struct mbox_index *idx, int64_t id, int fd,
    const struct mbox_append_req *req, uint32_t *uid_r,
    uint32_t *uidvalidity_r);

/*
 * COPY / MOVE the UIDs in set to mailbox dst (hard links when possible,
 * else a copy; MOVE renames).  src_uids_r and dst_uids_r receive the
 * pairs in order (COPYUID); a message gone from disk is skipped.  MOVE
 * expunges the sources.  Flags and keywords travel along.
 */
int mbox_copy(struct mbox_index *idx, int64_t src,
    const struct mbox_range *set, size_t nset, int64_t dst,
    struct mbox_uids *src_uids_r, struct mbox_uids *dst_uids_r,
    uint32_t *dst_uidvalidity_r);
int mbox_move(struct mbox_index *idx, int64_t src,
    const struct mbox_range *set, size_t nset, int64_t dst,
    struct mbox_uids *src_uids_r, struct mbox_uids *dst_uids_r,
    uint32_t *dst_uidvalidity_r);

/*
 * EXPUNGE the \Deleted messages (in set, for UID EXPUNGE; NULL: all).
 * expunged_r (may be NULL) gets their UIDs, ascending.
 */
int mbox_expunge(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset, struct mbox_uids *expunged_r);

/*
 * Expunge exactly the messages in set, \Deleted or not, in one
 * transaction: POP3's UPDATE, where other sessions must see the
 * messages go without an intermediate \Deleted flag change.
 */
int mbox_expunge_uids(struct mbox_index *idx, int64_t id,
    const struct mbox_range *set, size_t nset, struct mbox_uids *expunged_r);

/*
 * UIDs expunged with a modseq > modseq (in set, or all), ascending: for
 * QRESYNC VANISHED (EARLIER) and for a session catching up with expunges
 * another session or a sync recorded.
 */
int mbox_expunged_since(struct mbox_index *idx, int64_t id, uint64_t modseq,
    const struct mbox_range *set, size_t nset, struct mbox_uids *out);

/* ---- cached FETCH items ---------------------------------------------- */

enum mbox_cache_field { MBOX_CACHE_ENVELOPE, MBOX_CACHE_BODYSTRUCTURE };

/* 1 with a malloc'd NUL-terminated *text_r, 0 not cached / no message, -1. */
int mbox_cache_get(struct mbox_index *idx, int64_t id, uint32_t uid,
    enum mbox_cache_field field, char **text_r);
/* 1 stored, 0 no such message, -1 error. */
int mbox_cache_set(struct mbox_index *idx, int64_t id, uint32_t uid,
    enum mbox_cache_field field, const char *text, size_t len);

/* ---- own changes to the Maildir, for inotify users ------------------- */

/*
 * fn hears of every entry this handle puts into (came = 1) or takes out
 * of (came = 0) a Maildir's new/ or cur/, right after the system call
 * succeeded.  imapd tells its own changes from other processes' with it
 * (dirwatch_expect()): its own are in the index already, others' need a
 * Maildir scan.
 */
typedef void mbox_observer_fn(void *arg, const char *path, int came);
void mbox_index_set_observer(struct mbox_index *idx, mbox_observer_fn *fn,
    void *arg);

/* ---- the header cache (mbox_headers.c) --------------------------------- */

#define MBOX_HEADER_CACHE_MAX	32768	/* longer headers: from the file */
#define MBOX_HDR_CHUNK		256	/* lookups per read transaction */

/*
 * Hands out the top-level headers (the bytes up to and with the blank
 * line) of a message list's entries in ascending order: from the cache
 * in index.db, looked up a chunk at a time, or read from the file and
 * queued for the cache.  The queue is written every MBOX_HDR_CHUNK
 * entries and at mbox_hdr_cursor_done().  No transaction stays open
 * between calls, so a cursor may live across event-loop turns; the list
 * must outlive it.
 */
struct mbox_hdr_cursor {
	struct mbox_index *idx;
	int64_t id;
	const struct mbox_msglist *l;
	size_t lo, hi;			/* list entries looked up: [lo, hi) */
	size_t *off, *len;		/* per entry in [lo, hi); len 0: miss */
	struct buf chunk;		/* their cached bytes */
	size_t nq;			/* queued for the cache */
	uint32_t *quid;
	size_t *qoff, *qlen;
	struct buf queue;
	struct buf file;		/* a message's first bytes */
};

void mbox_hdr_cursor_init(struct mbox_hdr_cursor *c, struct mbox_index *idx,
    int64_t id, const struct mbox_msglist *l);
/*
 * The header of l->msgs[i] into out (reset first); i never smaller than
 * in the call before.  1 / 0 (message gone) / -1 (index or read error).
 */
int mbox_hdr_cursor_get(struct mbox_hdr_cursor *c, size_t i, struct buf *out);
/* Write what is queued and free the cursor.  0, or -1 when the cache
 * could not be written (nothing else is lost). */
int mbox_hdr_cursor_done(struct mbox_hdr_cursor *c);

/* Length of the header block at the start of [p, p+n), blank line
 * included; n when it has no end in there. */
size_t mbox_header_len(const char *p, size_t n);

#endif
