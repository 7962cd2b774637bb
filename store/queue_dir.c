/*
 * queue_dir.c - looking at the queue directory as a whole: the ids of the
 * committed entries, and the flush request that mailadm leaves for the
 * running queue runner.
 *
 * A flush is a file, not a signal: mailadm runs as the mail user (or
 * root) and may not be allowed to signal smtpd, but it can always write
 * into queue_dir, which the runner watches with inotify.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
queue_scan(const char *queue_dir, char ***ids_r, size_t *n_r)
{
	char **ids = NULL, **grown, id[QUEUE_ID_MAX];
	size_t n = 0, cap = 0, len;
	struct dirent *de;
	DIR *d;

	*ids_r = NULL;
	*n_r = 0;
	if ((d = opendir(queue_dir)) == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		/* ".ID.env.tmp" and ".flush" start with '.': never entries. */
		if (de->d_name[0] == '.' || len <= 4 || len - 4 >= sizeof(id) ||
		    strcmp(de->d_name + len - 4, ".env") != 0)
			continue;
		memcpy(id, de->d_name, len - 4);
		id[len - 4] = '\0';
		if (!queue_id_valid(id))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((grown = reallocarray(ids, cap, sizeof(*ids))) == NULL)
				goto fail;
			ids = grown;
		}
		if ((ids[n] = strdup(id)) == NULL)
			goto fail;
		n++;
	}
	closedir(d);
	if (n > 1)
		qsort(ids, n, sizeof(*ids), cmp_str);
	*ids_r = ids;
	*n_r = n;
	return 0;
fail:
	closedir(d);
	queue_scan_free(ids, n);
	errno = ENOMEM;
	return -1;
}

void
queue_scan_free(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int
queue_request_flush(const char *queue_dir)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf_checked(path, sizeof(path), "%s/%s", queue_dir,
	    QUEUE_FLUSH_NAME) < 0)
		return -1;
	/* Opening and closing for writing is the event the runner waits for. */
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	return close(fd);
}
