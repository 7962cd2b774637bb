/*
 * imap_index_cache.c - one open index.db per user per process, shared by
 * that user's sessions (Thunderbird keeps several connections; a phone
 * adds more), and kept open a few seconds after the last session lets go,
 * so that a delivery waking 1,000 IDLE sessions opens the index once, not
 * 1,000 times.  Single-threaded: only the loop touches it.
 */
#include "imapd.h"
#include "../common/log.h"

#include <stdlib.h>
#include <string.h>

#define INDEX_GRACE 5.		/* seconds an unused index stays open */

struct imap_index_entry {
	char *dir;
	struct mbox_index *idx;
	unsigned refs;
	ev_tstamp unused_since;
	struct imap_index_entry *next;
};

/*
 * Our own changes to a Maildir are in the index already: announce them,
 * so that the inotify events they cause do not send every session on
 * that mailbox to rescan it.
 */
static void
own_change(void *arg, const char *path, int came)
{
	struct imapd *d = arg;

	dirwatch_expect(d->dirwatch, path, came);
}

struct mbox_index *
imap_index_acquire(struct imapd *d, const char *dir, char *err, size_t errlen)
{
	struct imap_index_entry *e;

	for (e = d->indexes; e != NULL; e = e->next)
		if (strcmp(e->dir, dir) == 0) {
			e->refs++;
			return e->idx;
		}
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->dir = strdup(dir)) == NULL) {
		free(e);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (mbox_index_open(dir, 0, &e->idx, err, errlen) < 0) {
		free(e->dir);
		free(e);
		return NULL;
	}
	mbox_index_set_observer(e->idx, own_change, d);
	e->refs = 1;
	e->next = d->indexes;
	d->indexes = e;
	return e->idx;
}

void
imap_index_put(struct imapd *d, struct mbox_index **idxp)
{
	struct imap_index_entry *e;

	if (*idxp == NULL)
		return;
	for (e = d->indexes; e != NULL; e = e->next)
		if (e->idx == *idxp) {
			if (e->refs > 0 && --e->refs == 0)
				e->unused_since = ev_now(d->loop);
			break;
		}
	*idxp = NULL;
}

/* Close indexes nobody used for INDEX_GRACE seconds (all: force). */
void
imap_index_sweep(struct imapd *d, int force)
{
	struct imap_index_entry **pp = &d->indexes;
	ev_tstamp now = ev_now(d->loop);

	while (*pp != NULL) {
		struct imap_index_entry *e = *pp;

		if (e->refs == 0 && (force || now - e->unused_since >= INDEX_GRACE)) {
			*pp = e->next;
			mbox_index_close(&e->idx);
			free(e->dir);
			free(e);
			continue;
		}
		pp = &e->next;
	}
}
