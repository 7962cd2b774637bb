/*
 * dirsync.h - group commit for directory fsyncs.  When several threads
 * have renamed files into the same directory, one fsync of the directory
 * started after all those renames makes every one of them durable; the
 * others wait for it instead of issuing their own.  Safe to call from
 * any thread.
 */
#ifndef BUZON_DIRSYNC_H
#define BUZON_DIRSYNC_H

/*
 * Make every rename into dir that completed before this call durable.
 * 0, or -1 with errno set (the caller must treat its rename as not done).
 */
int dirsync_fsync(const char *dir);

#endif
