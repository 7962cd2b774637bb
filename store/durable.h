/*
 * durable.h - the small file-system steps that make a write survive a
 * crash: write everything, mkdir -p, rename without replacing, fsync a
 * directory.  Shared by the Maildir, quota and queue code in store/.
 *
 * Never hides an error: every function returns 0 or -1 with errno set,
 * and none of them logs or retries beyond EINTR / short writes.
 */
#ifndef BUZON_DURABLE_H
#define BUZON_DURABLE_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) until n bytes are out; loops on EINTR and short writes. */
int durable_write_all(int fd, const void *p, size_t n);

/* mkdir one directory: 1 created, 0 was already a directory, -1 error
 * (ENOTDIR when something else is in the way). */
int durable_mkdir_one(const char *path, mode_t mode);
/* mkdir -p path with mode for every directory it creates. */
int durable_mkdir_p(const char *path, mode_t mode);

/* Open path as a directory and fsync it. */
int durable_fsync_dir(const char *path);

/*
 * rename(from, to) that fails with EEXIST instead of replacing an
 * existing "to" (renameat2 RENAME_NOREPLACE; plain rename on file
 * systems that do not support the flag).
 */
int durable_rename_noreplace(const char *from, const char *to);

/* unlink(path) keeping errno as it was (cleanup on an error path). */
void durable_unlink_quiet(const char *path);

#endif
