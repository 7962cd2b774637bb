/*
 * dirwatch.c - see dirwatch.h.  Never blocks: the inotify fd is
 * non-blocking and read only when libev says it is readable.  A watch
 * removed while its events are being dispatched is only marked; it is
 * freed after the dispatch loop, so a callback may unsubscribe itself or
 * others.
 */
#include "dirwatch.h"
#include "buf.h"
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/*
 * Own changes announced and not yet seen, per watch: open addressing,
 * grown from DW_EXPECT_MIN slots and freed when empty, so that a watch
 * nobody writes through costs nothing.
 */
#define DW_EXPECT_MIN	64
#define DW_EXPECT_MAX	16384

struct dw_expect {
	uint64_t key;			/* name hash, low bit: came; 0 empty */
	uint32_t count;
};

#define DW_MASK (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
    IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct dirwatch_sub {
	struct dw_watch *w;
	dirwatch_cb cb;
	void *arg;
	int dead;
	int pending;		/* fire on this dispatch */
	int foreign;		/* ... and not only for our own changes */
	struct dirwatch_sub *prev, *next;
};

struct dw_watch {
	int wd;
	char *dir;
	struct dirwatch *dw;
	struct dirwatch_sub *subs;
	unsigned nsubs;
	struct dw_expect *exp;		/* cap slots, or NULL */
	unsigned cap;
	unsigned nused;			/* slots with a key (spent ones too) */
	unsigned nlive;			/* slots with count > 0 */
	struct dw_watch *next;
};

struct dirwatch {
	struct ev_loop *loop;
	int fd;
	ev_io io;
	struct dw_watch *watches;
	unsigned nwatches;
	int dispatching;
	int garbage;		/* dead subs to collect after dispatch */
	struct dw_watch *last_expect;	/* where the last expect went */
};

static void dw_on_read(struct ev_loop *loop, ev_io *w, int revents);

struct dirwatch *
dirwatch_new(struct ev_loop *loop)
{
	struct dirwatch *dw = calloc(1, sizeof(*dw));

	if (dw == NULL)
		return NULL;
	dw->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (dw->fd < 0) {
		int e = errno;

		free(dw);
		errno = e;
		return NULL;
	}
	dw->loop = loop;
	ev_io_init(&dw->io, dw_on_read, dw->fd, EV_READ);
	dw->io.data = dw;
	ev_io_start(loop, &dw->io);
	ev_unref(loop);		/* watching alone does not keep a daemon up */
	return dw;
}

static void
dw_watch_free(struct dirwatch *dw, struct dw_watch *w, int rm_kernel)
{
	struct dw_watch **pp;

	for (pp = &dw->watches; *pp != NULL; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	if (rm_kernel && w->wd >= 0)
		inotify_rm_watch(dw->fd, w->wd);
	dw->nwatches--;
	if (dw->last_expect == w)
		dw->last_expect = NULL;
	free(w->exp);
	free(w->dir);
	free(w);
}

void
dirwatch_free(struct dirwatch **dwp)
{
	struct dirwatch *dw = *dwp;

	if (dw == NULL)
		return;
	while (dw->watches != NULL) {
		struct dw_watch *w = dw->watches;

		while (w->subs != NULL) {
			struct dirwatch_sub *s = w->subs;

			w->subs = s->next;
			free(s);
		}
		dw_watch_free(dw, w, 1);
	}
	ev_ref(dw->loop);
	ev_io_stop(dw->loop, &dw->io);
	close(dw->fd);
	free(dw);
	*dwp = NULL;
}

struct dirwatch_sub *
dirwatch_add(struct dirwatch *dw, const char *dir, dirwatch_cb cb, void *arg)
{
	struct dirwatch_sub *s;
	struct dw_watch *w;
	int wd;

	wd = inotify_add_watch(dw->fd, dir, DW_MASK);
	if (wd < 0)
		return NULL;
	/* The kernel returns the same wd for the same inode. */
	for (w = dw->watches; w != NULL; w = w->next)
		if (w->wd == wd)
			break;
	if (w == NULL) {
		w = calloc(1, sizeof(*w));
		if (w == NULL || (w->dir = strdup(dir)) == NULL) {
			free(w);
			inotify_rm_watch(dw->fd, wd);
			errno = ENOMEM;
			return NULL;
		}
		w->wd = wd;
		w->dw = dw;
		w->next = dw->watches;
		dw->watches = w;
		dw->nwatches++;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		if (w->nsubs == 0)
			dw_watch_free(dw, w, 1);
		errno = ENOMEM;
		return NULL;
	}
	s->w = w;
	s->cb = cb;
	s->arg = arg;
	s->next = w->subs;
	if (w->subs != NULL)
		w->subs->prev = s;
	w->subs = s;
	w->nsubs++;
	return s;
}

static void
dw_unlink(struct dw_watch *w, struct dirwatch_sub *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		w->subs = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	free(s);
}

/* Free dead subscriptions, and watches nobody uses any more. */
static void
dw_collect(struct dirwatch *dw)
{
	struct dw_watch *w, *wnext;

	for (w = dw->watches; w != NULL; w = wnext) {
		struct dirwatch_sub *s, *snext;

		wnext = w->next;
		for (s = w->subs; s != NULL; s = snext) {
			snext = s->next;
			if (s->dead)
				dw_unlink(w, s);
		}
		if (w->nsubs == 0)
			dw_watch_free(dw, w, w->wd >= 0);
	}
	dw->garbage = 0;
}

void
dirwatch_remove(struct dirwatch_sub **subp)
{
	struct dirwatch_sub *s = *subp;
	struct dw_watch *w;
	struct dirwatch *dw;

	if (s == NULL)
		return;
	*subp = NULL;
	w = s->w;
	dw = w->dw;
	w->nsubs--;
	if (dw->dispatching) {
		/* the dispatch loop may be standing on it: free it after */
		s->dead = 1;
		dw->garbage = 1;
		return;
	}
	/*
	 * O(1): ten thousand sessions IDLEing on one mailbox share this
	 * watch, and walking every subscription on each removal made
	 * closing them all quadratic (11 s with the loop blocked).
	 */
	dw_unlink(w, s);
	if (w->nsubs == 0)
		dw_watch_free(dw, w, w->wd >= 0);
}

unsigned
dirwatch_nwatches(const struct dirwatch *dw)
{
	return dw->nwatches;
}

/* FNV-1a of the name, never 0, the low bit free for "came". */
static uint64_t
dw_key(const char *name, size_t len, int came)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < len && name[i] != '\0'; i++)
		h = (h ^ (unsigned char)name[i]) * 1099511628211ULL;
	h = (h << 1) | (came ? 1 : 0);
	return h < 2 ? h + 2 : h;
}

/* The slot of key, or of the first free slot on its probe path. */
static struct dw_expect *
dw_slot(struct dw_watch *w, uint64_t key)
{
	size_t i = (size_t)(key >> 1) & (w->cap - 1), n;

	for (n = 0; n < w->cap; n++) {
		struct dw_expect *e = &w->exp[i];

		if (e->key == key || e->key == 0)
			return e;
		i = (i + 1) & (w->cap - 1);
	}
	return NULL;
}

/* Room for one more key: a table, or a bigger one without the spent
 * slots.  0, or -1 (at the limit, or out of memory). */
static int
dw_room(struct dw_watch *w)
{
	struct dw_expect *old = w->exp;
	unsigned oldcap = w->cap, cap, i;

	if (old != NULL && w->nused + 1 <= w->cap / 4 * 3)
		return 0;
	cap = old == NULL ? DW_EXPECT_MIN :
	    w->nlive + 1 <= oldcap / 2 ? oldcap : oldcap * 2;
	if (cap > DW_EXPECT_MAX)
		return -1;
	if ((w->exp = calloc(cap, sizeof(*w->exp))) == NULL) {
		w->exp = old;
		return -1;
	}
	w->cap = cap;
	w->nused = 0;
	for (i = 0; i < oldcap; i++)
		if (old[i].count > 0) {
			*dw_slot(w, old[i].key) = old[i];
			w->nused++;
		}
	free(old);
	return 0;
}

static struct dw_watch *
dw_find_dir(struct dirwatch *dw, const char *dir, size_t len)
{
	struct dw_watch *w = dw->last_expect;

	if (w != NULL && strncmp(w->dir, dir, len) == 0 && w->dir[len] == '\0')
		return w;
	for (w = dw->watches; w != NULL; w = w->next)
		if (strncmp(w->dir, dir, len) == 0 && w->dir[len] == '\0')
			return dw->last_expect = w;
	return NULL;
}

void
dirwatch_expect(struct dirwatch *dw, const char *path, int came)
{
	const char *slash = strrchr(path, '/');
	struct dw_watch *w;
	struct dw_expect *e;
	uint64_t key;

	if (dw == NULL || slash == NULL || slash == path || slash[1] == '\0')
		return;
	if ((w = dw_find_dir(dw, path, (size_t)(slash - path))) == NULL ||
	    w->wd < 0)
		return;
	key = dw_key(slash + 1, strlen(slash + 1), came);
	/* a quarter stays free: probes stay short and always end */
	if (dw_room(w) < 0 || (e = dw_slot(w, key)) == NULL)
		return;
	if (e->key == 0) {
		e->key = key;
		w->nused++;
	}
	if (e->count++ == 0)
		w->nlive++;
}

static void
dw_forget(struct dw_watch *w)
{
	free(w->exp);
	w->exp = NULL;
	w->cap = w->nused = w->nlive = 0;
}

/* 1 if the event was announced (and now is no longer). */
static int
dw_consume(struct dw_watch *w, const struct inotify_event *ev)
{
	struct dw_expect *e;
	int came;

	if (w->exp == NULL || w->nlive == 0 || ev->len == 0)
		return 0;
	if (ev->mask & (IN_MOVED_TO | IN_CREATE))
		came = 1;
	else if (ev->mask & (IN_MOVED_FROM | IN_DELETE))
		came = 0;
	else
		return 0;
	e = dw_slot(w, dw_key(ev->name, ev->len, came));
	if (e == NULL || e->key == 0 || e->count == 0)
		return 0;
	/* a spent slot keeps its key so that probes for keys placed
	 * after it still find them; the table is emptied when nothing is
	 * expected any more */
	if (--e->count == 0 && --w->nlive == 0)
		dw_forget(w);
	return 1;
}

static void
dw_mark(struct dirwatch *dw, struct dw_watch *w, const struct inotify_event *ev)
{
	struct dirwatch_sub *s;
	int foreign = ev == NULL || !dw_consume(w, ev);

	(void)dw;
	for (s = w->subs; s != NULL; s = s->next) {
		s->pending = 1;
		s->foreign |= foreign;
	}
	if (ev != NULL && (ev->mask & IN_IGNORED))
		w->wd = -1;	/* directory gone; the kernel dropped the watch */
}

static void
dw_read_dispatch(struct dirwatch *dw)
{
	char evbuf[16 * (sizeof(struct inotify_event) + NAME_MAX + 1)]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	struct dw_watch *w;
	int rounds;

	/* Bounded: a flood of events cannot keep us here forever. */
	for (rounds = 0; rounds < 64; rounds++) {
		ssize_t n = read(dw->fd, evbuf, sizeof(evbuf));
		char *p;

		if (n <= 0) {
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				log_error("inotify read: %s", strerror(errno));
			break;
		}
		for (p = evbuf; p < evbuf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->mask & IN_Q_OVERFLOW) {
				/* Lost events: tell everybody to rescan, and
				 * forget what we waited for (it may be lost) */
				for (w = dw->watches; w != NULL; w = w->next) {
					dw_forget(w);
					dw_mark(dw, w, NULL);
				}
			} else {
				for (w = dw->watches; w != NULL; w = w->next)
					if (w->wd == ev->wd)
						break;
				if (w != NULL)
					dw_mark(dw, w, ev);
			}
			p += sizeof(struct inotify_event) + ev->len;
		}
	}
	dw->dispatching = 1;
	for (w = dw->watches; w != NULL; w = w->next) {
		struct dirwatch_sub *s;

		for (s = w->subs; s != NULL; s = s->next) {
			int foreign = s->foreign;

			if (!s->pending || s->dead)
				continue;
			s->pending = s->foreign = 0;
			s->cb(s, s->arg, foreign);
		}
	}
	dw->dispatching = 0;
	if (dw->garbage)
		dw_collect(dw);
}

static void
dw_on_read(struct ev_loop *loop, ev_io *iow, int revents)
{
	(void)loop;
	(void)revents;
	dw_read_dispatch(iow->data);
}

void
dirwatch_poll(struct dirwatch *dw)
{
	if (dw != NULL && !dw->dispatching)
		dw_read_dispatch(dw);
}
