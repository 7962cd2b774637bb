/*
 * mbox_status.c - per-user and per-mailbox facts kept in the index:
 * SUBSCRIBE/UNSUBSCRIBE and the subscription list (mirrored to
 * USERDIR/subscriptions so a rebuilt index keeps them), STATUS counts,
 * and \Recent claims (a message is recent for the first session that
 * claims it), and the keywords a mailbox knows (for FLAGS).
 *
 * Must never touch a message file (dovecot-keywords is only read), and
 * never accept a name that mbox_name_valid() refuses (a subscription may
 * name a mailbox that does not exist, as RFC 3501 allows, but never an
 * invalid one).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include "mbox_private.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
mbox_subscribe(struct mbox_index *idx, const char *name, int on)
{
	char canon[MBOX_NAME_MAX + 1];

	if (mi_name_canon(name, canon, sizeof(canon)) < 0)
		return mi_fail(idx, "invalid mailbox name");
	if (mi_begin(idx, 1) < 0)
		return -1;
	if (mi_subscribe_row(idx, canon, on) < 0) {
		mi_rollback(idx);
		return -1;
	}
	mi_subscriptions_save(idx);	/* under the lock: writers in order */
	return mi_commit(idx);
}

void
mbox_strings_free(char **names, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int
mbox_subscriptions(struct mbox_index *idx, char ***names_r, size_t *count_r)
{
	static const char sql[] = "SELECT name FROM subscriptions ORDER BY name";
	sqlite3_stmt *st = mi_stmt(idx, sql);
	char **names = NULL, **p;
	size_t n = 0, cap = 0;
	int rc;

	*names_r = NULL;
	*count_r = 0;
	if (st == NULL)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *s = (const char *)sqlite3_column_text(st, 0);

		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			p = reallocarray(names, cap, sizeof(*names));
			if (p == NULL)
				break;
			names = p;
		}
		if (s == NULL || (names[n] = strdup(s)) == NULL)
			break;
		n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		mbox_strings_free(names, n);
		if (rc == SQLITE_ROW) {
			errno = ENOMEM;
			return mi_fail(idx, "out of memory");
		}
		return mi_sqlerr(idx, "subscriptions");
	}
	*names_r = names;
	*count_r = n;
	return 0;
}

int
mbox_highestmodseq(struct mbox_index *idx, int64_t id, uint64_t *out)
{
	struct mi_box b;

	*out = 0;
	if (mi_begin(idx, 0) < 0)
		return -1;
	if (mi_box_need(idx, id, &b) < 0) {
		mi_rollback(idx);
		return -1;
	}
	*out = b.highestmodseq;
	return mi_commit(idx);
}

int
mbox_status(struct mbox_index *idx, int64_t id, struct mbox_status *stp)
{
	static const char sql[] = "SELECT count(*), total(flags & 1 = 0),"
	    " total(size), total(uid >= ?2) FROM messages WHERE mailbox = ?1";
	sqlite3_stmt *st;
	struct mi_box b;
	int r;

	memset(stp, 0, sizeof(*stp));
	if (mi_begin(idx, 0) < 0)
		return -1;
	if ((r = mi_box_load(idx, id, &b)) <= 0) {
		if (r == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		goto fail;
	}
	st = mi_stmt(idx, sql);
	if (st == NULL || sqlite3_bind_int64(st, 1, id) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, b.recent_uid) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_reset(st);
		mi_sqlerr(idx, "status");
		goto fail;
	}
	stp->messages = (uint32_t)sqlite3_column_int64(st, 0);
	stp->unseen = (uint32_t)sqlite3_column_double(st, 1);
	stp->size = (uint64_t)sqlite3_column_double(st, 2);
	stp->recent = (uint32_t)sqlite3_column_double(st, 3);
	sqlite3_reset(st);
	stp->uidnext = b.uidnext;
	stp->uidvalidity = b.uidvalidity;
	stp->highestmodseq = b.highestmodseq;
	return mi_commit(idx);
fail:
	mi_rollback(idx);
	return -1;
}

int
mbox_claim_recent(struct mbox_index *idx, int64_t id, uint32_t *first_r,
    uint32_t *next_r)
{
	struct mi_box b;
	int r;

	if (mi_begin(idx, 1) < 0)
		return -1;
	if ((r = mi_box_load(idx, id, &b)) <= 0) {
		if (r == 0) {
			errno = ENOENT;
			mi_fail(idx, "no such mailbox");
		}
		mi_rollback(idx);
		return -1;
	}
	*first_r = b.recent_uid < b.uidnext ? b.recent_uid : b.uidnext;
	*next_r = b.uidnext;
	if (b.recent_uid < b.uidnext) {
		b.recent_uid = b.uidnext;
		if (mi_box_save_counters(idx, &b) < 0) {
			mi_rollback(idx);
			return -1;
		}
	}
	return mi_commit(idx);
}

/* Add kw to names unless it is there (caselessly). */
static int
names_add(char ***names, size_t *n, const char *kw)
{
	char **p;
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcasecmp((*names)[i], kw) == 0)
			return 0;
	p = reallocarray(*names, *n + 1, sizeof(**names));
	if (p == NULL)
		return -1;
	*names = p;
	if ((p[*n] = strdup(kw)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

int
mbox_keywords(struct mbox_index *idx, int64_t id, char ***names_r,
    size_t *count_r)
{
	static const char sql[] = "SELECT DISTINCT keywords FROM messages"
	    " WHERE mailbox = ?1 AND keywords <> ''";
	char kw[MBOX_KEYWORD_MAX + 1], **names = NULL;
	struct mi_kwmap map;
	struct mi_box b;
	sqlite3_stmt *st;
	const char *p;
	size_t n = 0, tl, i;
	int rc = SQLITE_DONE;

	*names_r = NULL;
	*count_r = 0;
	if (mi_begin(idx, 0) < 0)
		return -1;
	if (mi_box_need(idx, id, &b) < 0 || (st = mi_stmt(idx, sql)) == NULL ||
	    sqlite3_bind_int64(st, 1, id) != SQLITE_OK) {
		mi_rollback(idx);
		return -1;
	}
	if (mi_kwmap_load(b.dir, &map) == 0) {
		for (i = 0; i < MI_KW_LETTERS; i++)
			if (map.names[i] != NULL &&
			    names_add(&names, &n, map.names[i]) < 0)
				rc = SQLITE_NOMEM;
		mi_kwmap_free(&map);
	}
	while (rc == SQLITE_DONE && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		p = (const char *)sqlite3_column_text(st, 0);
		for (rc = SQLITE_DONE; p != NULL && *p != '\0'; p += tl) {
			while (*p == ' ')
				p++;
			tl = strcspn(p, " ");
			if (tl == 0 || tl >= sizeof(kw))
				continue;
			memcpy(kw, p, tl);
			kw[tl] = '\0';
			if (names_add(&names, &n, kw) < 0)
				rc = SQLITE_NOMEM;
		}
	}
	sqlite3_reset(st);
	mi_rollback(idx);	/* read-only: nothing to keep */
	if (rc != SQLITE_DONE) {
		mbox_strings_free(names, n);
		if (rc == SQLITE_NOMEM) {
			errno = ENOMEM;
			return mi_fail(idx, "out of memory");
		}
		return mi_sqlerr(idx, "keywords");
	}
	*names_r = names;
	*count_r = n;
	return 0;
}
