/*
 * cmd_list.c - LIST (RFC 3501, RFC 9051 6.3.9, LIST-EXTENDED RFC 5258,
 * SPECIAL-USE RFC 6154, LIST-STATUS RFC 5819) and LSUB.  "." is the
 * hierarchy separator.  Special-use attributes and \HasChildren /
 * \HasNoChildren are always sent (CHILDREN, RFC 3348).  A hierarchy
 * level that is not a mailbox (Maildir++ can hold "a.b" without "a") is
 * listed for a pattern ending in "%", as \NonExistent to an IMAP4rev2
 * client and as \Noselect to an IMAP4rev1 one.  Names are UTF-8 for
 * UTF8=ACCEPT and IMAP4rev2 clients, else modified UTF-7.
 */
#include "imap_commands.h"
#include "../common/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIST_MAX_PATTERNS 32

struct list_opts {
	int sel_subscribed;
	int sel_recursive;
	int ret_subscribed;
	int ret_status;
	const struct imap_arg *status_items;
	const char *patterns[LIST_MAX_PATTERNS];
	char pattern_buf[LIST_MAX_PATTERNS][MBOX_NAME_MAX * 2 + 2];
	size_t npatterns;
};

/* cmd_mailbox.c */
int imap_status_line(struct imap_session *s, const char *name,
    const struct imap_arg *items, struct buf *out, const char **why);

static int
is_subscribed(char **subs, size_t nsubs, const char *name)
{
	size_t i;

	for (i = 0; i < nsubs; i++)
		if (strcmp(subs[i], name) == 0)
			return 1;
	return 0;
}

static int
matches_any(const struct list_opts *o, const char *name)
{
	size_t i;

	for (i = 0; i < o->npatterns; i++)
		if (imap_list_match(o->patterns[i], name))
			return 1;
	return 0;
}

/* reference + pattern, both client-encoded; -1 when not a valid name. */
static int
add_pattern(struct imap_session *s, struct list_opts *o, const char *ref,
    size_t reflen, const char *pat, size_t patlen)
{
	char joined[MBOX_NAME_MAX * 2 + 2];
	size_t n = o->npatterns;

	if (n >= LIST_MAX_PATTERNS || reflen + patlen >= sizeof(joined))
		return -1;
	memcpy(joined, ref, reflen);
	memcpy(joined + reflen, pat, patlen);
	joined[reflen + patlen] = '\0';
	if (imap_mailbox_from_client(s, joined, reflen + patlen,
	    o->pattern_buf[n], sizeof(o->pattern_buf[n])) < 0)
		return -1;
	o->patterns[n] = o->pattern_buf[n];
	o->npatterns++;
	return 0;
}

static int
parse_list_args(struct imap_session *s, const struct imap_command *cmd,
    struct list_opts *o, int *empty_pattern)
{
	const struct imap_arg *a = cmd->args;
	size_t n = cmd->count, i = 0, j;
	const char *ref, *pat;
	size_t reflen, patlen;

	memset(o, 0, offsetof(struct list_opts, patterns));
	o->npatterns = 0;
	*empty_pattern = 0;
	if (n > 0 && a[0].type == IMAP_ARG_LIST) {	/* selection options */
		for (j = 0; j < a[0].count; j++) {
			const struct imap_arg *e = &a[0].args[j];

			if (imap_arg_is_atom(e, "SUBSCRIBED"))
				o->sel_subscribed = 1;
			else if (imap_arg_is_atom(e, "RECURSIVEMATCH"))
				o->sel_recursive = 1;
			else if (imap_arg_is_atom(e, "REMOTE"))
				;	/* no remote mailboxes here */
			else
				return -1;
		}
		if (o->sel_recursive && !o->sel_subscribed)
			return -1;	/* RFC 5258 3.1 */
		i = 1;
	}
	if (n < i + 2 || !imap_arg_astring(&a[i], &ref, &reflen))
		return -1;
	if (a[i + 1].type == IMAP_ARG_LIST) {
		for (j = 0; j < a[i + 1].count; j++) {
			if (!imap_arg_list_mailbox(&a[i + 1].args[j], &pat, &patlen) ||
			    add_pattern(s, o, ref, reflen, pat, patlen) < 0)
				return -1;
		}
	} else {
		if (!imap_arg_list_mailbox(&a[i + 1], &pat, &patlen))
			return -1;
		if (patlen == 0)
			*empty_pattern = 1;
		else if (add_pattern(s, o, ref, reflen, pat, patlen) < 0)
			return -1;
	}
	i += 2;
	if (i < n) {			/* RETURN (...) */
		if (n != i + 2 || !imap_arg_is_atom(&a[i], "RETURN") ||
		    a[i + 1].type != IMAP_ARG_LIST)
			return -1;
		for (j = 0; j < a[i + 1].count; j++) {
			const struct imap_arg *e = &a[i + 1].args[j];

			if (imap_arg_is_atom(e, "SUBSCRIBED"))
				o->ret_subscribed = 1;
			else if (imap_arg_is_atom(e, "CHILDREN") ||
			    imap_arg_is_atom(e, "SPECIAL-USE"))
				;	/* always sent */
			else if (imap_arg_is_atom(e, "STATUS") &&
			    j + 1 < a[i + 1].count &&
			    a[i + 1].args[j + 1].type == IMAP_ARG_LIST) {
				o->ret_status = 1;
				o->status_items = &a[i + 1].args[++j];
			} else
				return -1;
		}
	}
	return 0;
}

/* What one LIST command works with. */
struct list_ctx {
	struct imap_session *s;
	const struct list_opts *o;
	const struct mbox_info *boxes;
	size_t nboxes;
	char **subs;
	size_t nsubs;
	struct buf seen;	/* names listed so far, NUL-separated */
	struct buf out;
};

/*
 * One LIST/LSUB line; o (NULL: none) asks for its STATUS too, childinfo
 * adds RFC 5258's ("CHILDINFO" ("SUBSCRIBED")).
 */
static void
list_one(struct imap_session *s, const char *verb, const char *name,
    const char *attrs, const struct list_opts *o, int childinfo,
    struct buf *out)
{
	const char *why;
	size_t mark;

	buf_printf(out, "* %s (%s) \".\" ", verb, attrs);
	imap_append_mailbox(s, out, name);
	if (childinfo)
		buf_puts(out, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	buf_append(out, "\r\n", 2);
	if (o != NULL && o->ret_status) {
		mark = out->len;
		if (imap_status_line(s, name, o->status_items, out, &why) < 0) {
			out->len = mark;	/* no half STATUS line */
			if (out->data != NULL)
				out->data[mark] = '\0';
		}
	}
}

static int
box_exists(const struct list_ctx *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nboxes; i++)
		if (strcmp(c->boxes[i].name, name) == 0)
			return 1;
	return 0;
}

/* RFC 3501 6.3.8: a "%" at the end also returns matching levels. */
static int
matches_level(const struct list_opts *o, const char *level)
{
	size_t i, n;

	for (i = 0; i < o->npatterns; i++) {
		n = strlen(o->patterns[i]);
		if (n > 0 && o->patterns[i][n - 1] == '%' &&
		    imap_list_match(o->patterns[i], level))
			return 1;
	}
	return 0;
}

/* Remember name as listed; 1 if it was already (or cannot be kept). */
static int
seen_before(struct buf *seen, const char *name)
{
	size_t off = 0;

	while (off < seen->len) {
		if (strcmp(seen->data + off, name) == 0)
			return 1;
		off += strlen(seen->data + off) + 1;
	}
	return buf_append(seen, name, strlen(name) + 1) < 0;
}

/*
 * RECURSIVEMATCH (RFC 5258 3.5, RFC 9051 6.3.9): name has a subscribed
 * descendant that the patterns do not return themselves.
 */
static int
has_childinfo(const struct list_ctx *c, const char *name)
{
	size_t i, n = strlen(name);

	if (!c->o->sel_recursive)
		return 0;
	for (i = 0; i < c->nsubs; i++)
		if (strncmp(c->subs[i], name, n) == 0 && c->subs[i][n] == '.' &&
		    !matches_any(c->o, c->subs[i]))
			return 1;
	return 0;
}

/*
 * The levels above name ("a" and "a.b" for "a.b.c") that are not
 * mailboxes: with a pattern ending in "%" they are listed (RFC 3501
 * 6.3.8), and with RECURSIVEMATCH when they hold a subscribed name the
 * patterns skip; each once.
 */
static void
list_missing_levels(struct list_ctx *c, const char *name)
{
	char level[MBOX_NAME_MAX + 1];
	const char *dot, *attrs;
	size_t len;
	int ci;

	for (dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
		len = (size_t)(dot - name);
		if (len >= sizeof(level))
			break;
		memcpy(level, name, len);
		level[len] = '\0';
		if (box_exists(c, level))
			continue;
		if (c->o->sel_subscribed) {
			if (is_subscribed(c->subs, c->nsubs, level) ||
			    !matches_any(c->o, level) ||
			    !(ci = has_childinfo(c, level)))
				continue;
			attrs = "\\NonExistent";
		} else {
			if (!matches_level(c->o, level))
				continue;
			ci = 0;
			attrs = c->s->enabled_rev2 ?
			    "\\NonExistent \\HasChildren" :
			    "\\Noselect \\HasChildren";
		}
		if (!seen_before(&c->seen, level))
			list_one(c->s, "LIST", level, attrs, NULL, ci, &c->out);
	}
}

static void
list_box(struct list_ctx *c, const struct mbox_info *b)
{
	const struct list_opts *o = c->o;
	int sub = is_subscribed(c->subs, c->nsubs, b->name);
	int ci = o->sel_subscribed && has_childinfo(c, b->name);
	const char *su = mbox_special_attr(b->special);
	char attrs[128];

	if (!matches_any(o, b->name) || (o->sel_subscribed && !sub && !ci))
		return;
	snprintf_checked(attrs, sizeof(attrs), "%s%s%s%s",
	    b->has_children ? "\\HasChildren" : "\\HasNoChildren",
	    su ? " " : "", su ? su : "",
	    (sub && (o->ret_subscribed || o->sel_subscribed)) ?
	    " \\Subscribed" : "");
	list_one(c->s, "LIST", b->name, attrs, o, ci, &c->out);
}

void
cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	struct list_opts o;
	struct mbox_info *boxes = NULL;
	struct list_ctx c;
	size_t i;
	int empty;

	if (parse_list_args(s, cmd, &o, &empty) < 0) {
		imap_tagged(s, "BAD", "Syntax: LIST [(options)] reference "
		    "pattern [RETURN (options)]");
		return;
	}
	if (empty) {		/* RFC 3501 6.3.8: the hierarchy delimiter */
		imap_reply(s, "* LIST (\\Noselect) \".\" \"\"");
		imap_tagged(s, "OK", "LIST completed");
		return;
	}
	memset(&c, 0, sizeof(c));
	c.s = s;
	c.o = &o;
	if (mbox_list(s->idx, &boxes, &c.nboxes) < 0 ||
	    mbox_subscriptions(s->idx, &c.subs, &c.nsubs) < 0) {
		log_error("sid=%s ip=%s LIST: %s", s->c->sid, s->c->ip,
		    mbox_index_error(s->idx));
		free(boxes);
		imap_tagged(s, "NO", "[SERVERBUG] Cannot list mailboxes");
		return;
	}
	c.boxes = boxes;
	buf_init(&c.out, 64 * 1024 * 1024);
	buf_init(&c.seen, (c.nboxes + c.nsubs + 1) * (MBOX_NAME_MAX + 1));
	/* names sort before their children: each level precedes its boxes */
	for (i = 0; i < c.nboxes; i++) {
		list_missing_levels(&c, boxes[i].name);
		list_box(&c, &boxes[i]);
	}
	/* Subscribed names that no longer exist (RFC 5258 3.1). */
	for (i = 0; o.sel_subscribed && i < c.nsubs; i++) {
		if (box_exists(&c, c.subs[i]))
			continue;
		list_missing_levels(&c, c.subs[i]);
		if (matches_any(&o, c.subs[i]) &&
		    !seen_before(&c.seen, c.subs[i]))
			list_one(s, "LIST", c.subs[i],
			    "\\NonExistent \\Subscribed", NULL,
			    has_childinfo(&c, c.subs[i]), &c.out);
	}
	if (conn_write(s->c, c.out.data, c.out.len) < 0)
		conn_abort(s->c);
	buf_free(&c.out);
	buf_free(&c.seen);
	free(boxes);
	mbox_strings_free(c.subs, c.nsubs);
	imap_tagged(s, "OK", "LIST completed");
}

void
cmd_lsub(struct imap_session *s, const struct imap_command *cmd)
{
	struct list_opts o;
	char **subs = NULL;
	size_t nsubs = 0, i;
	struct buf out;
	int empty;

	if (cmd->count != 2 || cmd->args[0].type == IMAP_ARG_LIST ||
	    parse_list_args(s, cmd, &o, &empty) < 0) {
		imap_tagged(s, "BAD", "Syntax: LSUB reference pattern");
		return;
	}
	if (empty) {
		imap_reply(s, "* LSUB (\\Noselect) \".\" \"\"");
		imap_tagged(s, "OK", "LSUB completed");
		return;
	}
	if (mbox_subscriptions(s->idx, &subs, &nsubs) < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot list subscriptions");
		return;
	}
	buf_init(&out, 16 * 1024 * 1024);
	for (i = 0; i < nsubs; i++) {
		struct mbox_info info;
		int r = mbox_find(s->idx, subs[i], &info);

		if (!matches_any(&o, subs[i]))
			continue;
		list_one(s, "LSUB", subs[i], r == 1 ? "" : "\\Noselect", NULL,
		    0, &out);
	}
	if (conn_write(s->c, out.data, out.len) < 0)
		conn_abort(s->c);
	buf_free(&out);
	mbox_strings_free(subs, nsubs);
	imap_tagged(s, "OK", "LSUB completed");
}
