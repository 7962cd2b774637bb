/*
 * imap_mailbox_name.c - mailbox names between the client and the index:
 * modified UTF-7 on the wire (UTF-8 once the client enabled
 * UTF8=ACCEPT), UTF-8 in the index, "INBOX" in any case is INBOX; LIST
 * pattern matching; opening the user's index at login.
 */
#include "imapd.h"
#include "../common/log.h"
#include "../store/mutf7.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
imap_mailbox_from_client(const struct imap_session *s, const char *name,
    size_t len, char *out, size_t outsz)
{
	struct buf b;
	int r = -1;

	buf_init(&b, MBOX_NAME_MAX + 1);
	if (memchr(name, '\0', len) != NULL)
		goto out;
	if (s->enabled_utf8) {
		if (!utf8_valid(name, len) || buf_append(&b, name, len) < 0)
			goto out;
	} else if (mutf7_to_utf8(name, len, &b) < 0) {
		goto out;
	}
	if (b.len == 5 && strncasecmp(buf_cstr(&b), "INBOX", 5) == 0)
		r = strlcpy_checked(out, "INBOX", outsz);
	else if (b.len > 6 && strncasecmp(buf_cstr(&b), "INBOX.", 6) == 0) {
		/* children of INBOX keep the canonical spelling of INBOX */
		memcpy(b.data, "INBOX", 5);
		r = strlcpy_checked(out, buf_cstr(&b), outsz);
	} else
		r = strlcpy_checked(out, buf_cstr(&b), outsz);
out:
	buf_free(&b);
	return r;
}

int
imap_append_mailbox(const struct imap_session *s, struct buf *b,
    const char *utf8name)
{
	struct buf enc;
	int r;

	if (s->enabled_utf8)
		return imap_put_astring(b, utf8name, strlen(utf8name), 1);
	buf_init(&enc, 4 * MBOX_NAME_MAX);
	r = utf8_to_mutf7(utf8name, strlen(utf8name), &enc);
	if (r == 0)
		r = imap_put_astring(b, buf_cstr(&enc), enc.len, 0);
	buf_free(&enc);
	return r;
}

/*
 * RFC 3501 6.3.8: '*' matches anything, '%' anything but the hierarchy
 * separator.  Dynamic programming over (pattern, name) positions, so no
 * pattern can make it exponential.  Names and patterns are bounded by
 * the caller (MBOX_NAME_MAX and the command line limit).
 */
int
imap_list_match(const char *pattern, const char *name)
{
	size_t pl = strlen(pattern), nl = strlen(name), i, j;
	unsigned char *prev, *cur, *tmp;
	int r;

	if (pl > 4096 || nl > 4096)
		return 0;
	prev = calloc(nl + 1, 1);
	cur = calloc(nl + 1, 1);
	if (prev == NULL || cur == NULL) {
		free(prev);
		free(cur);
		return 0;
	}
	prev[0] = 1;	/* empty pattern matches empty name */
	for (i = 1; i <= pl; i++) {
		char pc = pattern[i - 1];

		cur[0] = (pc == '*' || pc == '%') && prev[0];
		for (j = 1; j <= nl; j++) {
			if (pc == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (pc == '%')
				cur[j] = prev[j] || (cur[j - 1] && name[j - 1] != '.');
			else
				cur[j] = prev[j - 1] && pc == name[j - 1];
		}
		tmp = prev;
		prev = cur;
		cur = tmp;
	}
	r = prev[nl];
	free(prev);
	free(cur);
	return r;
}

int
imap_user_open(struct imap_session *s)
{
	char dir[CONFIG_STR_MAX + ADDR_MAX], err[512];
	struct db_user u;

	if (db_user_maildir(s->d->cfg.mail_dir, s->user, dir, sizeof(dir)) < 0) {
		log_error("sid=%s ip=%s user %s has no valid mail directory",
		    s->c->sid, s->c->ip, s->user);
		return -1;
	}
	if ((s->idx = imap_index_acquire(s->d, dir, err, sizeof(err))) == NULL) {
		log_error("sid=%s ip=%s user %s: cannot open mailbox index: %s",
		    s->c->sid, s->c->ip, s->user, err);
		return -1;
	}
	if (db_user_get(s->d->db, s->user, &u) == 1)
		mbox_index_set_quota(s->idx, u.quota_bytes);
	return 0;
}
