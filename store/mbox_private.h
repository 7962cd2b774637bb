/*
 * mbox_private.h - what the store/mbox_*.c files share about the mailbox
 * index: the handle, the statement cache, transactions, a mailbox row in
 * memory, file-name info parsing and the dovecot-keywords map.  Nothing
 * outside store/mbox_*.c includes this; callers see mbox_index.h only.
 */
#ifndef BUZON_MBOX_PRIVATE_H
#define BUZON_MBOX_PRIVATE_H

#include <limits.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "mbox_index.h"

#define MI_SCHEMA_VERSION 2
#define MI_STMT_SLOTS 64
#define MI_BUSY_TIMEOUT_MS 5000
#define MI_KEYWORDS_FILE "dovecot-keywords"
#define MI_SUBSCRIPTIONS_FILE "subscriptions"
#define MI_KW_LETTERS 26		/* Dovecot letters a..z */
#define MI_KWLIST_MAX (MBOX_MSG_KEYWORDS_MAX * (MBOX_KEYWORD_MAX + 1))

struct mbox_index {
	sqlite3 *db;
	char userdir[PATH_MAX];
	char dbpath[PATH_MAX];
	uint64_t quota_bytes;
	int rebuilt;
	int corrupt;		/* a statement saw SQLITE_CORRUPT/NOTADB */
	int in_tx;
	mbox_observer_fn *obs_fn;	/* mbox_index_set_observer() */
	void *obs_arg;
	struct {
		const char *sql;	/* static text: the cache key */
		sqlite3_stmt *st;
	} stmts[MI_STMT_SLOTS];
	char err[512];
};

/* A mailboxes row plus its Maildir path. */
struct mi_box {
	int64_t id;
	char name[MBOX_NAME_MAX + 1];
	char dir[PATH_MAX];
	uint32_t uidvalidity, uidnext, recent_uid;
	uint64_t highestmodseq;
	int special;
	int64_t new_mtime, cur_mtime, synced_at;	/* ns; sync stamps */
};

/* ---- mbox_index.c: handle, statements, transactions ---- */

/* Tell the observer (if any) of a change just made to path. */
void mi_observe(struct mbox_index *idx, const char *path, int came);

/* The cached statement for this static SQL text, reset; NULL on error. */
sqlite3_stmt *mi_stmt(struct mbox_index *idx, const char *sql);
/* Record a SQLite failure: error text, errno (EIO), corruption flag. -1. */
int mi_sqlerr(struct mbox_index *idx, const char *what);
/* Record another failure (errno kept). -1. */
int mi_fail(struct mbox_index *idx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Run a statement that returns no rows.  0 / -1. */
int mi_exec(struct mbox_index *idx, const char *sql);
int mi_begin(struct mbox_index *idx, int immediate);
int mi_commit(struct mbox_index *idx);
void mi_rollback(struct mbox_index *idx);
/* A new UIDVALIDITY: max(now, last + 1), remembered. Inside a write tx. */
int mi_uidvalidity_next(struct mbox_index *idx, uint32_t *v_r);
/* Rewrite USERDIR/subscriptions from the table (best effort). */
void mi_subscriptions_save(struct mbox_index *idx);
int mi_uids_push(struct mbox_uids *u, uint32_t uid);
int mi_in_set(const struct mbox_range *set, size_t nset, uint32_t uid);

/* ---- mbox_name.c: names and directories ---- */

/* Canonical form: "INBOX" (any case) and "INBOX.x" get an upper INBOX. */
int mi_name_canon(const char *name, char *out, size_t outsz);
int mi_name_is_inbox(const char *name);
/* UTF-8 name -> on-disk Maildir++ folder name (modified UTF-7). 0/-1. */
int mi_name_encode(const char *name, char *out, size_t outsz);
/* On-disk folder name -> UTF-8 name.  0, or -1 when not representable. */
int mi_name_decode(const char *dirname, char *out, size_t outsz);
/* The Maildir of a mailbox: userdir for INBOX, else userdir/.ENCODED. */
int mi_name_dir(const struct mbox_index *idx, const char *name, char *out,
    size_t outsz);
/* Default special-use for a name (Sent, Drafts...), or NONE. */
enum mbox_special mi_name_special(const char *name);
/* rm -r of a directory tree we own (no symlink following). 0 / -1. */
int mi_rmtree(const char *path);

/* ---- mbox_list.c ---- */

/* Load a mailbox row (and dir).  1 found, 0 not, -1 error. */
int mi_box_load(struct mbox_index *idx, int64_t id, struct mi_box *b);
int mi_box_find(struct mbox_index *idx, const char *canon_name,
    struct mi_box *b);
/* Write uidnext, highestmodseq, recent_uid of b back. */
int mi_box_save_counters(struct mbox_index *idx, const struct mi_box *b);
/* Insert a mailbox row (new UIDVALIDITY). Inside a write tx. */
int mi_box_insert(struct mbox_index *idx, const char *canon_name,
    enum mbox_special special, int64_t *id_r);
/* Make the mailbox rows match the ".Folder" dirs on disk. Write tx. */
int mi_list_sync(struct mbox_index *idx);
/* Add (on) or remove a subscription row.  0 / -1. */
int mi_subscribe_row(struct mbox_index *idx, const char *canon, int on);
/* Create INBOX + default folders and subscribe them (first open). */
int mi_defaults_create(struct mbox_index *idx, int subscribe);

/* ---- mbox_flags.c: file names, flags, keywords ---- */

/* Length of the base name (up to the ':' that starts the info). */
size_t mi_base_len(const char *fname);
/*
 * Parse ":2,<flags>" of fname: system flags into *flags_r, keyword
 * letters into letters_r (bit i = letter 'a'+i).  Unknown flags ignored.
 */
void mi_info_parse(const char *fname, unsigned *flags_r, uint32_t *letters_r);
/*
 * The file name for base with flags and keyword letters, keeping flags
 * we do not own (e.g. 'P') and any ",..." after the flags of old.
 */
int mi_fname_build(const char *old, size_t baselen, unsigned flags,
    uint32_t letters, char *out, size_t outsz);
/* Sizes from the base name: ",S=" and ",W="; -1 when absent. */
int mi_name_sizes(const char *fname, uint64_t *s_r, uint64_t *w_r);
/* Sort key (seconds, microseconds) from "SEC.M<usec>..."; 0 if none. */
int mi_name_time(const char *fname, int64_t *sec_r, int64_t *usec_r);

/* 1 when kw is a valid IMAP flag-keyword atom (not a system flag). */
int mi_keyword_valid(const char *kw);
/* Is kw (caselessly) in the space-separated list? */
int mi_kwlist_has(const char *list, const char *kw);
/* Add / remove kw in a list buffer of size MI_KWLIST_MAX.  0 / -1. */
int mi_kwlist_add(char *list, size_t listsz, const char *kw);
void mi_kwlist_remove(char *list, const char *kw);

struct mi_kwmap {
	char *names[MI_KW_LETTERS];	/* NULL: letter unused */
	int dirty;
};
/* Read DIR/dovecot-keywords (missing: empty map).  0 / -1. */
int mi_kwmap_load(const char *dir, struct mi_kwmap *m);
void mi_kwmap_free(struct mi_kwmap *m);
/* Letter index for kw, assigning a free one when create; -1 none/full. */
int mi_kwmap_letter(struct mi_kwmap *m, const char *kw, int create);
/* Write the map if dirty: DIR/tmp/... then rename over the file. 0/-1. */
int mi_kwmap_save(const char *dir, struct mi_kwmap *m);
/* letters -> keyword list (unknown letters get "unknown-N" names). */
int mi_kwmap_to_list(struct mi_kwmap *m, uint32_t letters, char *list,
    size_t listsz);
/* keyword list -> letters, assigning letters as needed (lost if full). */
uint32_t mi_kwmap_from_list(struct mi_kwmap *m, const char *list);

/* ---- mbox_sync.c ---- */

/* Sync inside the caller's write transaction. */
int mi_sync_locked(struct mbox_index *idx, struct mi_box *b,
    struct mbox_sync_result *res);

/* ---- mbox_msg.c ---- */

/*
 * Insert a message row with uid b->uidnext++ and modseq (b's counters
 * are saved by the caller).  0 / -1.
 */
int mi_msg_insert(struct mbox_index *idx, struct mi_box *b, const char *base,
    size_t baselen, const char *fname, unsigned flags, const char *keywords,
    uint64_t size, uint64_t fsize, int64_t idate, uint64_t modseq,
    uint32_t *uid_r);
/* Delete a message row and remember (uid, modseq) as expunged. */
int mi_msg_expunged(struct mbox_index *idx, int64_t box, uint32_t uid,
    uint64_t modseq);
/* A fresh unique base name "SEC.M<usec>P<pid>Q<n>.<host>,S=..,W=..". */
int mi_new_base(char *out, size_t outsz, uint64_t size, uint64_t vsize);
/* fsize and CRLF size of a file by reading it.  0 / -1. */
int mi_file_sizes(int fd, uint64_t *fsize_r, uint64_t *vsize_r);

/* ---- mbox_copy.c ---- */

/*
 * Copy (move = 0) or move the messages of src in set (NULL: all) to dst
 * inside the caller's write transaction; saves both boxes' counters.
 */
int mi_transfer(struct mbox_index *idx, struct mi_box *src,
    const struct mbox_range *set, size_t nset, struct mi_box *dst, int move,
    struct mbox_uids *src_uids_r, struct mbox_uids *dst_uids_r,
    int64_t *bytes_r, int64_t *count_r);

/* A message row as mbox_msg.c and mbox_copy.c work on it. */
struct mi_row {
	uint32_t uid;
	unsigned flags;
	uint64_t modseq, size, fsize;
	int64_t idate;
	char *fname, *keywords;		/* one malloc, at fname */
};
/*
 * Rows of box in set (NULL: all), ascending UIDs; only \Deleted ones
 * when deleted_only.  Free with mi_rows_free().  0 / -1.
 */
int mi_rows_load(struct mbox_index *idx, int64_t box,
    const struct mbox_range *set, size_t nset, int deleted_only,
    struct mi_row **rows_r, size_t *n_r);
void mi_rows_free(struct mi_row *rows, size_t n);
/* Load a mailbox row inside a transaction; ENOENT when gone.  0 / -1. */
int mi_box_need(struct mbox_index *idx, int64_t id, struct mi_box *b);
/* Join dir/cur/fname.  0 / -1. */
int mi_cur_path(char *out, size_t outsz, const char *dir, const char *fname);

#endif
