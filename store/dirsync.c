/*
 * dirsync.c - see dirsync.h.  A small fixed table of slots, each serving
 * one directory at a time: a thread takes a ticket after its rename, and
 * either starts an fsync that covers every ticket issued so far or waits
 * for the one in flight to cover it.  A slot busy with another directory
 * is never shared: the caller then simply fsyncs on its own.
 */
#include "dirsync.h"
#include "durable.h"
#include "../common/buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define DIRSYNC_SLOTS 64
#define DIRSYNC_PATH 1024

struct dirsync_slot {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	char dir[DIRSYNC_PATH];
	unsigned users;		/* threads holding a ticket here */
	uint64_t issued;	/* tickets handed out */
	uint64_t synced;	/* every ticket <= this is durable */
	int syncing;
};

static struct dirsync_slot slots[DIRSYNC_SLOTS];
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;

static void
slots_init(void)
{
	size_t i;

	for (i = 0; i < DIRSYNC_SLOTS; i++) {
		pthread_mutex_init(&slots[i].mu, NULL);
		pthread_cond_init(&slots[i].cv, NULL);
	}
}

static size_t
slot_of(const char *dir)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *dir; dir++)
		h = (h ^ (unsigned char)*dir) * 1099511628211ULL;
	return (size_t)(h % DIRSYNC_SLOTS);
}

int
dirsync_fsync(const char *dir)
{
	struct dirsync_slot *s;
	uint64_t ticket, target;
	int r = 0;

	if (strlen(dir) >= DIRSYNC_PATH)
		return durable_fsync_dir(dir);
	pthread_once(&slots_once, slots_init);
	s = &slots[slot_of(dir)];
	pthread_mutex_lock(&s->mu);
	if (s->users > 0 && strcmp(s->dir, dir) != 0) {
		pthread_mutex_unlock(&s->mu);
		return durable_fsync_dir(dir);	/* slot serves another dir */
	}
	if (s->users == 0 && strcmp(s->dir, dir) != 0) {
		strlcpy_checked(s->dir, dir, sizeof(s->dir));
		s->issued = s->synced = 0;
	}
	s->users++;
	ticket = ++s->issued;
	for (;;) {
		int saved;

		if (s->synced >= ticket) {
			r = 0;
			break;
		}
		if (s->syncing) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		/* Our fsync starts after every rename that holds a ticket. */
		s->syncing = 1;
		target = s->issued;
		pthread_mutex_unlock(&s->mu);
		r = durable_fsync_dir(dir);
		saved = errno;
		pthread_mutex_lock(&s->mu);
		s->syncing = 0;
		/* A failed fsync covers nobody: the waiters try their own. */
		if (r == 0 && target > s->synced)
			s->synced = target;
		pthread_cond_broadcast(&s->cv);
		if (r < 0) {
			errno = saved;
			break;
		}
	}
	s->users--;
	pthread_mutex_unlock(&s->mu);
	return r;
}
