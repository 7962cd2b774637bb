/*
 * queue.h - the outbound queue's files (DESIGN.md "Queue").
 *
 * Each queued message is QUEUE_DIR/ID.msg (the message, LF line ends) and
 * QUEUE_DIR/ID.env (the envelope, text).  Both are written to a temp name,
 * fsynced and renamed, the .msg first; the .env rename commits the
 * message, then the directory is fsynced.  Only then may the caller
 * acknowledge.  A .msg without .env is an aborted write, never mail.
 *
 * Envelope format, one item per line:
 *   version 1
 *   id ID
 *   created UNIXTIME
 *   sender ADDRESS             (empty for the null sender)
 *   attempts N
 *   next_try UNIXTIME
 *   rcpt STATUS ADDRESS        (STATUS: pending | sent | bounced)
 *   orcpt ADDRESS              (optional, the original recipient before
 *                               alias expansion, after the rcpt it belongs to)
 *   last_error TEXT            (optional)
 *
 * The lines version, id, created, sender, attempts, next_try and at least
 * one rcpt are required, each singleton once; unknown keys, control bytes
 * and lines over QUEUE_ENV_LINE_MAX are errors.  IDs are [A-Za-z0-9_-].
 * Temp files are ".ID.msg.tmp" and ".ID.env.tmp": a queue scanner skips
 * names starting with '.'.
 */
#ifndef BUZON_QUEUE_H
#define BUZON_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "../common/addr.h"
#include "spool.h"

#define QUEUE_ID_MAX 64
#define QUEUE_RCPTS_MAX 10000		/* recipients in one envelope */
#define QUEUE_ENV_LINE_MAX 1024		/* bytes in one envelope line */

enum queue_rcpt_status { QRCPT_PENDING, QRCPT_SENT, QRCPT_BOUNCED };

struct queue_rcpt {
	char address[ADDR_MAX];
	char orcpt[ADDR_MAX];		/* "" when none */
	enum queue_rcpt_status status;
};

struct queue_env {
	char id[QUEUE_ID_MAX];
	time_t created;
	char sender[ADDR_MAX];
	unsigned attempts;
	time_t next_try;
	char last_error[512];
	struct queue_rcpt *rcpts;
	size_t nrcpts;
};

/*
 * Write a new queue entry: prefix (header lines) + body, and an envelope
 * with the given sender and recipients (status pending).  Creates
 * queue_dir if needed.  Writes the new id to id_out.  0 or -1 errno
 * (EINVAL: an address with a control byte, no or too many recipients;
 * ERANGE: id_out too small; nothing is left on disk after a failure).
 * body may be NULL.
 */
int queue_write(const char *queue_dir, const char *sender,
    const struct queue_rcpt *rcpts, size_t nrcpts, const char *prefix,
    size_t prefix_len, const struct spool *body, char *id_out,
    size_t id_outsz);

/*
 * Parse envelope text (pure, fuzzable).  0, or -1 with errno EINVAL (bad
 * text) or ENOMEM; env is then empty.  Free with queue_env_free.
 */
int queue_env_parse(const char *text, size_t len, struct queue_env *env);
void queue_env_free(struct queue_env *env);

/*
 * Append the envelope text for env to out (pure).  Addresses are written
 * verbatim and refused (-1, EINVAL) if they hold a control byte or are
 * not NUL-terminated in their arrays; so are a bad id and an empty or too
 * long recipient list.  last_error has control bytes replaced by spaces.
 */
int queue_env_format(const struct queue_env *env, struct buf *out);

/* 1 if id is a well-formed queue id ([A-Za-z0-9_-], 1..QUEUE_ID_MAX-1). */
int queue_id_valid(const char *id);

/* Read ID.env from queue_dir.  0, or -1 (errno ENOENT when absent). */
int queue_env_read(const char *queue_dir, const char *id,
    struct queue_env *env);

/*
 * Rewrite ID.env durably (temp + fsync + rename + dir fsync).  0 or -1.
 * One writer per id at a time (the queue runner that owns the entry).
 */
int queue_env_write(const char *queue_dir, const struct queue_env *env);

/* Remove an entry (.env first, then .msg, then dir fsync).  0, or -1
 * (ENOENT when neither file existed). */
int queue_remove(const char *queue_dir, const char *id);

/*
 * The ids of the committed entries (those with an .env), sorted (ids
 * start with the creation time, so this is oldest first).  A missing
 * queue_dir is an empty queue.  0 or -1 errno.  Free with
 * queue_scan_free.
 */
int queue_scan(const char *queue_dir, char ***ids_r, size_t *n_r);
void queue_scan_free(char **ids, size_t n);

/* The file whose creation asks the running queue runner to retry now. */
#define QUEUE_FLUSH_NAME ".flush"
int queue_request_flush(const char *queue_dir);

#endif
