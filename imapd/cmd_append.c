/*
 * cmd_append.c - APPEND (with APPENDUID, UIDPLUS; literal8 data, RFC
 * 3516 4.4) and the QUOTA commands in the RFC 2087 form Thunderbird
 * speaks (GETQUOTAROOT, GETQUOTA; STORAGE in KiB).  The message arrives
 * as a literal that the parser has already bounded by IMAP_LITERAL_MAX
 * (APPENDLIMIT).
 */
#include "imap_commands.h"
#include "../common/log.h"
#include "../store/quota.h"

#include <errno.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int imap_parse_flags(const struct imap_arg *a, unsigned *flags,
    const char **kw, size_t *nkw, size_t maxkw);

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 3501 date-time).  0 or -1. */
static int
parse_date_time(const char *p, size_t len, time_t *out)
{
	static const char *mons[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char mon[4], sign;
	int d, y, hh, mm, ss, zone, m, n = 0;
	struct tm tm;
	char tmp[40];

	if (len >= sizeof(tmp))
		return -1;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	if (sscanf(tmp, "%2d-%3s-%4d %2d:%2d:%2d %c%4d%n", &d, mon, &y, &hh,
	    &mm, &ss, &sign, &zone, &n) != 8 || (size_t)n != len ||
	    (sign != '+' && sign != '-'))
		return -1;
	for (m = 0; m < 12; m++)
		if (strcasecmp(mon, mons[m]) == 0)
			break;
	if (m == 12 || d < 1 || d > 31 || y < 1970 || hh > 23 || mm > 59 ||
	    ss > 60 || zone % 100 > 59)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = d;
	tm.tm_mon = m;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	*out = timegm(&tm) - (sign == '-' ? -1 : 1) *
	    ((zone / 100) * 3600 + (zone % 100) * 60);
	return 0;
}

/*
 * The store keeps messages with LF line ends and gives them back with
 * CRLF, so bytes survive it exactly when every LF follows a CR and no CR
 * comes right before a CRLF.  Text always does; binary data (literal8)
 * may not, and RFC 3516 4.4 forbids changing it: such data is refused.
 */
static int
survives_store(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] != '\n')
			continue;
		if (i == 0 || p[i - 1] != '\r' || (i >= 2 && p[i - 2] == '\r'))
			return 0;
	}
	return 1;
}

void
cmd_append(struct imap_session *s, const struct imap_command *cmd)
{
	const char *kw[MBOX_MSG_KEYWORDS_MAX], *mname, *data;
	struct mbox_append_req req;
	char name[MBOX_NAME_MAX + 2];
	struct mbox_info info;
	size_t i = 1, mlen, dlen, nkw = 0;
	uint32_t uid = 0, uv = 0;

	memset(&req, 0, sizeof(req));
	if (cmd->count < 2 || cmd->count > 4 ||
	    !imap_arg_astring(&cmd->args[0], &mname, &mlen)) {
		imap_tagged(s, "BAD", "Syntax: APPEND mailbox [(flags)] "
		    "[date-time] message");
		return;
	}
	if (i < cmd->count - 1 && cmd->args[i].type == IMAP_ARG_LIST) {
		if (imap_parse_flags(&cmd->args[i], &req.flags, kw, &nkw,
		    MBOX_MSG_KEYWORDS_MAX) < 0) {
			imap_tagged(s, "BAD", "Invalid flag");
			return;
		}
		req.keywords = kw;
		req.nkeywords = nkw;
		i++;
	}
	if (i < cmd->count - 1) {
		if (cmd->args[i].type != IMAP_ARG_QUOTED ||
		    parse_date_time(cmd->args[i].str, cmd->args[i].len,
		    &req.internaldate) < 0) {
			imap_tagged(s, "BAD", "Invalid date-time");
			return;
		}
		i++;
	}
	if (i != cmd->count - 1 || cmd->args[i].type != IMAP_ARG_LITERAL) {
		imap_tagged(s, "BAD", "Syntax: APPEND mailbox [(flags)] "
		    "[date-time] {size}");
		return;
	}
	data = cmd->args[i].str;
	dlen = cmd->args[i].len;
	if (dlen == 0) {
		imap_tagged(s, "NO", "Empty message");
		return;
	}
	if ((cmd->args[i].flags & IMAP_ARG_F_LITERAL8) &&
	    !survives_store(data, dlen)) {
		imap_tagged(s, "NO", "[UNKNOWN-CTE] Binary data with bare line "
		    "feeds cannot be stored unchanged; send it encoded");
		return;
	}
	if (imap_mailbox_from_client(s, mname, mlen, name, sizeof(name)) < 0 ||
	    mbox_find(s->idx, name, &info) != 1) {
		imap_tagged(s, "NO", "[TRYCREATE] No such mailbox");
		return;
	}
	if (mbox_append(s->idx, info.id, data, dlen, &req, &uid, &uv) < 0) {
		int over = errno == EDQUOT;

		log_info("sid=%s ip=%s APPEND to %s failed: %s", s->c->sid,
		    s->c->ip, name, mbox_index_error(s->idx));
		imap_tagged(s, "NO", "%s", over ? "[OVERQUOTA] Quota exceeded" :
		    "[SERVERBUG] APPEND failed");
		return;
	}
	if (s->sel != NULL && s->sel->id == info.id)
		imap_update(s, 0);
	imap_tagged(s, "OK", "[APPENDUID %u %u] APPEND completed", uv, uid);
}

static void
quota_reply(struct imap_session *s)
{
	struct db_user u;
	uint64_t used = 0, count = 0;

	if (db_user_get(s->d->db, s->user, &u) != 1 || u.quota_bytes == 0) {
		imap_reply(s, "* QUOTA \"\" ()");
		return;
	}
	(void)quota_usage(mbox_index_userdir(s->idx), u.quota_bytes, &used,
	    &count);
	imap_reply(s, "* QUOTA \"\" (STORAGE %llu %llu)",
	    (unsigned long long)(used / 1024),
	    (unsigned long long)(u.quota_bytes / 1024));
}

void
cmd_getquotaroot(struct imap_session *s, const struct imap_command *cmd)
{
	const char *mname;
	size_t mlen;

	if (cmd->count != 1 || !imap_arg_astring(&cmd->args[0], &mname, &mlen)) {
		imap_tagged(s, "BAD", "Syntax: GETQUOTAROOT mailbox");
		return;
	}
	/* One quota root, "", for all of the user's mailboxes. */
	buf_puts(&s->c->out, "* QUOTAROOT ");
	imap_put_astring(&s->c->out, mname, mlen, s->enabled_utf8);
	imap_reply(s, " \"\"");
	quota_reply(s);
	imap_tagged(s, "OK", "GETQUOTAROOT completed");
}

void
cmd_getquota(struct imap_session *s, const struct imap_command *cmd)
{
	const char *root;
	size_t len;

	if (cmd->count != 1 || !imap_arg_astring(&cmd->args[0], &root, &len)) {
		imap_tagged(s, "BAD", "Syntax: GETQUOTA root");
		return;
	}
	if (len != 0) {
		imap_tagged(s, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	quota_reply(s);
	imap_tagged(s, "OK", "GETQUOTA completed");
}
