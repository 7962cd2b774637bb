/*
 * maildir.h - Maildir++ delivery (DESIGN.md "Mail store").
 *
 * A delivery writes tmp/NAME, fsyncs the file, renames it into new/ and
 * fsyncs new/ before returning 0: only then may the caller acknowledge.
 * Names are "SEC.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<crlf size>" (the
 * ",W=" part is Dovecot's: the size a client sees with CRLF line ends).
 * Functions here block on disk; daemons call them from the thread pool.
 */
#ifndef BUZON_MAILDIR_H
#define BUZON_MAILDIR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "spool.h"

/* The folders every user gets, besides INBOX (Maildir++ ".Name"). */
extern const char *const maildir_default_folders[];	/* NULL-terminated */

/* Build a unique file name (pure; for tests and for delivery). */
int maildir_make_name(char *out, size_t outsz, time_t sec, long usec,
    pid_t pid, unsigned long seq, const char *host, uint64_t size,
    uint64_t vsize);

/* mkdir -p userdir, then cur/ new/ tmp/ (mode 0700).  0 or -1 errno. */
int maildir_ensure(const char *userdir);

/*
 * Create Maildir++ folder ".NAME" under userdir (NAME already in modified
 * UTF-7, '.' separated) with cur/new/tmp and a maildirfolder file.
 * Refuses (EINVAL) names with '/', empty components (so "..", a leading
 * or trailing '.'), or control bytes.  Creates userdir's own Maildir if
 * missing.  Like mkdir -p, an existing folder is not an error.  0 or -1.
 */
int maildir_create_folder(const char *userdir, const char *name);

/*
 * Deliver prefix (header lines, LF ends) followed by body into the Maildir
 * whose cur/new/tmp live in dir (INBOX: the user dir; a folder:
 * userdir/.Junk).  Creates the Maildir if missing.  On success writes the
 * new file's base name to name_out and its size to *size_out; returns 0.
 * On failure returns -1 with errno set and nothing left in new/ or tmp/.
 * body may be NULL (prefix only); name_out and size_out may be NULL.  A
 * name_out too small for the name fails (ENAMETOOLONG) before writing.
 * Thread-safe.
 */
int maildir_deliver(const char *dir, const char *prefix, size_t prefix_len,
    const struct spool *body, char *name_out, size_t name_outsz,
    uint64_t *size_out);

#endif
