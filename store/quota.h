/*
 * quota.h - per-user storage quota, Maildir++ style: a "maildirsize" file
 * in the user dir whose first line is the limit ("<bytes>S") and whose
 * other lines are "<bytes> <count>" deltas.  Deliveries and expunges
 * append a line (O_APPEND, one write); the file is recalculated from the
 * S= sizes in the file names when missing, when its limit line differs,
 * when it passes 5120 bytes, or when it is older than 15 minutes.
 */
#ifndef BUZON_QUOTA_H
#define BUZON_QUOTA_H

#include <stdint.h>

/*
 * Current usage of userdir (INBOX and every ".Folder"; tmp/ is not
 * counted).  0 or -1.  A maildirsize that cannot be rewritten after a
 * recalculation is logged, not an error: the totals are still right.
 */
int quota_usage(const char *userdir, uint64_t quota_bytes,
    uint64_t *bytes_r, uint64_t *count_r);

/*
 * Record a change (a delivery: +size +1; an expunge: -size -1). 0 or -1.
 * Call it after the change is on disk.  Without a maildirsize file it
 * does nothing: the next quota_usage() recalculates from the file names,
 * which already show the change.
 */
int quota_add(const char *userdir, int64_t bytes, int64_t count);

#endif
