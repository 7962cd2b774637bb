/*
 * dirwatch.h - inotify on the event loop: "tell me when something in
 * this directory changes".  One inotify descriptor per process; sessions
 * watching the same directory share one kernel watch (reference counted),
 * so 10,000 IDLE sessions on 10,000 mailboxes cost 10,000 watches, and
 * 50 sessions on one mailbox cost one.  Events are coalesced: a burst of
 * changes in one loop turn gives each subscriber one callback.
 */
#ifndef BUZON_DIRWATCH_H
#define BUZON_DIRWATCH_H

#include <ev.h>

struct dirwatch;
struct dirwatch_sub;

/*
 * foreign: some of the changes were not announced with dirwatch_expect(),
 * i.e. another process (or something this one did not announce) made
 * them.  0 when every change was this process's own.
 */
typedef void (*dirwatch_cb)(struct dirwatch_sub *sub, void *arg, int foreign);

/* NULL with errno when inotify is not available. */
struct dirwatch *dirwatch_new(struct ev_loop *loop);
void dirwatch_free(struct dirwatch **dwp);

/*
 * Subscribe to changes (create, delete, rename in or out, attribute
 * change) of the entries of dir.  NULL with errno on failure (e.g. the
 * directory does not exist, or the inotify watch limit is reached).
 */
struct dirwatch_sub *dirwatch_add(struct dirwatch *dw, const char *dir,
    dirwatch_cb cb, void *arg);
/* Safe to call from inside the subscriber's own callback. */
void dirwatch_remove(struct dirwatch_sub **subp);

/*
 * Read and dispatch what inotify has queued now, without waiting for
 * the loop: a caller about to trust "nothing changed" asks first.
 * Does nothing inside a dispatch.
 */
void dirwatch_poll(struct dirwatch *dw);

/*
 * Announce a change this process just made to the entry path (a file in
 * a watched directory): came = 1 for a create, link or rename into it,
 * 0 for an unlink or rename out of it.  The matching inotify event then
 * counts as our own (see dirwatch_cb).  Call after the system call
 * succeeded: its event is queued by then but not yet read.  Without a
 * watch on the directory, or with the table full, it does nothing, and
 * the event counts as foreign: slower, never wrong.
 */
void dirwatch_expect(struct dirwatch *dw, const char *path, int came);

/* Number of kernel watches in use (for tests and the benchmark). */
unsigned dirwatch_nwatches(const struct dirwatch *dw);

#endif
