/*
 * imap_search.c - SEARCH programs: the key table, the parser from the
 * argument tree, and the two-step evaluator (metadata, then decoded
 * message text).  See imap_search.h for the semantics chosen.
 *
 * Must never: touch a socket, a session or a mailbox; recurse without
 * the depth limit; grow past SEARCH_MAX_KEYS keys; read outside the
 * (data, len) of a message.
 */
#include "imap_search.h"
#include "../store/mbox_index.h"
#include "../store/mime.h"
#include "../store/mime_decode.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ---- the key table ------------------------------------------------ */

enum key_arg {
	KA_NONE,
	KA_STRING,		/* astring */
	KA_HEADER,		/* field-name astring, then astring */
	KA_NUMBER,
	KA_DATE,
	KA_KEYWORD,		/* flag-keyword atom */
	KA_SEQSET,		/* UID sequence-set */
	KA_MODSEQ,		/* [entry-name entry-type] mod-sequence-valzer */
	KA_NOT,
	KA_OR,
};

struct key_def {
	const char *name;
	enum search_key_type type;
	enum key_arg arg;
	unsigned flags;
	const char *field;
};

static const struct key_def key_defs[] = {
	{ "ALL", SK_ALL, KA_NONE, 0, NULL },
	{ "ANSWERED", SK_FLAGS_SET, KA_NONE, MBOX_F_ANSWERED, NULL },
	{ "BCC", SK_HEADER, KA_STRING, 0, "Bcc" },
	{ "BEFORE", SK_BEFORE, KA_DATE, 0, NULL },
	{ "BODY", SK_BODY, KA_STRING, 0, NULL },
	{ "CC", SK_HEADER, KA_STRING, 0, "Cc" },
	{ "DELETED", SK_FLAGS_SET, KA_NONE, MBOX_F_DELETED, NULL },
	{ "DRAFT", SK_FLAGS_SET, KA_NONE, MBOX_F_DRAFT, NULL },
	{ "FLAGGED", SK_FLAGS_SET, KA_NONE, MBOX_F_FLAGGED, NULL },
	{ "FROM", SK_HEADER, KA_STRING, 0, "From" },
	{ "HEADER", SK_HEADER, KA_HEADER, 0, NULL },
	{ "KEYWORD", SK_KEYWORD, KA_KEYWORD, 0, NULL },
	{ "LARGER", SK_LARGER, KA_NUMBER, 0, NULL },
	{ "MODSEQ", SK_MODSEQ, KA_MODSEQ, 0, NULL },
	{ "NEW", SK_NEW, KA_NONE, 0, NULL },
	{ "NOT", SK_NOT, KA_NOT, 0, NULL },
	{ "OLD", SK_OLD, KA_NONE, 0, NULL },
	{ "ON", SK_ON, KA_DATE, 0, NULL },
	{ "OR", SK_OR, KA_OR, 0, NULL },
	{ "RECENT", SK_RECENT, KA_NONE, 0, NULL },
	{ "SEEN", SK_FLAGS_SET, KA_NONE, MBOX_F_SEEN, NULL },
	{ "SENTBEFORE", SK_SENTBEFORE, KA_DATE, 0, NULL },
	{ "SENTON", SK_SENTON, KA_DATE, 0, NULL },
	{ "SENTSINCE", SK_SENTSINCE, KA_DATE, 0, NULL },
	{ "SINCE", SK_SINCE, KA_DATE, 0, NULL },
	{ "SMALLER", SK_SMALLER, KA_NUMBER, 0, NULL },
	{ "SUBJECT", SK_HEADER, KA_STRING, 0, "Subject" },
	{ "TEXT", SK_TEXT, KA_STRING, 0, NULL },
	{ "TO", SK_HEADER, KA_STRING, 0, "To" },
	{ "UID", SK_UIDSET, KA_SEQSET, 0, NULL },
	{ "UNANSWERED", SK_FLAGS_UNSET, KA_NONE, MBOX_F_ANSWERED, NULL },
	{ "UNDELETED", SK_FLAGS_UNSET, KA_NONE, MBOX_F_DELETED, NULL },
	{ "UNDRAFT", SK_FLAGS_UNSET, KA_NONE, MBOX_F_DRAFT, NULL },
	{ "UNFLAGGED", SK_FLAGS_UNSET, KA_NONE, MBOX_F_FLAGGED, NULL },
	{ "UNKEYWORD", SK_UNKEYWORD, KA_KEYWORD, 0, NULL },
	{ "UNSEEN", SK_FLAGS_UNSET, KA_NONE, MBOX_F_SEEN, NULL },
};

static const struct key_def *
key_def_find(const struct imap_arg *a)
{
	size_t i;

	if (a->type != IMAP_ARG_ATOM || (a->flags & IMAP_ARG_F_SECTION))
		return NULL;
	for (i = 0; i < sizeof(key_defs) / sizeof(key_defs[0]); i++)
		if (strlen(key_defs[i].name) == a->len &&
		    strncasecmp(key_defs[i].name, a->str, a->len) == 0)
			return &key_defs[i];
	return NULL;
}

/* ---- dates ---------------------------------------------------------- */

static const char months[12][4] = { "jan", "feb", "mar", "apr", "may",
    "jun", "jul", "aug", "sep", "oct", "nov", "dec" };

int32_t
search_ymd(int year, int mon, int day)
{
	return (int32_t)year * 512 + mon * 32 + day;
}

static int
month_of(const char *s, size_t len)
{
	int i;

	if (len != 3)
		return 0;
	for (i = 0; i < 12; i++)
		if (strncasecmp(s, months[i], 3) == 0)
			return i + 1;
	return 0;
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Digits at *pos (at most max of them, at least 1): value, or -1. */
static int
read_num(const char *s, size_t len, size_t *pos, size_t max, size_t *ndig)
{
	int v = 0;
	size_t n = 0;

	while (*pos < len && n < max && is_digit(s[*pos])) {
		v = v * 10 + (s[*pos] - '0');
		(*pos)++;
		n++;
	}
	if (ndig != NULL)
		*ndig = n;
	return n == 0 ? -1 : v;
}

int32_t
search_parse_date(const char *s, size_t len)
{
	size_t pos = 0, nd;
	int day, mon, year;

	day = read_num(s, len, &pos, 2, NULL);
	if (day < 1 || day > 31 || pos >= len || s[pos] != '-')
		return -1;
	pos++;
	if (len - pos < 4 || (mon = month_of(s + pos, 3)) == 0 ||
	    s[pos + 3] != '-')
		return -1;
	pos += 4;
	year = read_num(s, len, &pos, 4, &nd);
	if (nd != 4 || pos != len)
		return -1;
	return search_ymd(year, mon, day);
}

static void
skip_blanks(const char *s, size_t len, size_t *pos)
{
	while (*pos < len && (s[*pos] == ' ' || s[*pos] == '\t' ||
	    s[*pos] == '\r' || s[*pos] == '\n'))
		(*pos)++;
}

int32_t
search_parse_sent_date(const char *s, size_t len)
{
	size_t pos = 0, start, nd;
	int day, mon, year;

	skip_blanks(s, len, &pos);
	/* optional day-of-week "," */
	start = pos;
	while (pos < len && ((s[pos] >= 'a' && s[pos] <= 'z') ||
	    (s[pos] >= 'A' && s[pos] <= 'Z')))
		pos++;
	if (pos > start) {
		skip_blanks(s, len, &pos);
		if (pos >= len || s[pos] != ',')
			return -1;
		pos++;
		skip_blanks(s, len, &pos);
	}
	day = read_num(s, len, &pos, 2, NULL);
	if (day < 1 || day > 31)
		return -1;
	skip_blanks(s, len, &pos);
	if (len - pos < 3 || (mon = month_of(s + pos, 3)) == 0)
		return -1;
	pos += 3;
	skip_blanks(s, len, &pos);
	year = read_num(s, len, &pos, 4, &nd);
	if (year < 0 || (pos < len && is_digit(s[pos])))
		return -1;
	if (nd == 2)
		year += year < 50 ? 2000 : 1900;	/* RFC 5322 4.3 */
	else if (nd == 3)
		year += 1900;
	return search_ymd(year, mon, day);
}

/* ---- the parser ----------------------------------------------------- */

static int
new_key(struct search_program *p, enum search_key_type type, int *idx_r)
{
	struct search_key *k;

	if (p->n >= SEARCH_MAX_KEYS)
		return SEARCH_ERR_SYNTAX;
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;

		k = realloc(p->keys, ncap * sizeof(*k));
		if (k == NULL)
			return SEARCH_ERR_NOMEM;
		p->keys = k;
		p->cap = ncap;
	}
	k = &p->keys[p->n];
	memset(k, 0, sizeof(*k));
	k->type = type;
	k->child = k->next = -1;
	k->date = -1;
	imap_seqset_init(&k->set, SEARCH_MAX_RANGES);
	*idx_r = (int)p->n++;
	return 0;
}

static int
fold_string(struct search_key *k)
{
	struct buf b;

	buf_init(&b, k->len + 1);
	if (mime_fold_utf8(k->str, k->len, &b) < 0) {
		buf_free(&b);
		return SEARCH_ERR_NOMEM;
	}
	k->folded = malloc(b.len + 1);
	if (k->folded == NULL) {
		buf_free(&b);
		return SEARCH_ERR_NOMEM;
	}
	memcpy(k->folded, buf_cstr(&b), b.len + 1);
	k->folded_len = b.len;
	buf_free(&b);
	return 0;
}

static int parse_key(struct search_program *p, const struct imap_arg *a,
    size_t n, size_t *i, unsigned depth, int *idx_r, const char **why_r);

/* Keys a[*i..n) until the end, chained under parent (an SK_AND). */
static int
parse_keys(struct search_program *p, const struct imap_arg *a, size_t n,
    unsigned depth, int parent, const char **why_r)
{
	size_t i = 0;
	int last = -1, idx, r;

	if (n == 0) {
		*why_r = "Missing search key";
		return SEARCH_ERR_SYNTAX;
	}
	while (i < n) {
		if ((r = parse_key(p, a, n, &i, depth, &idx, why_r)) < 0)
			return r;
		if (last < 0)
			p->keys[parent].child = idx;
		else
			p->keys[last].next = idx;
		last = idx;
	}
	return 0;
}

static int
syntax(const char **why_r, const char *why)
{
	*why_r = why;
	return SEARCH_ERR_SYNTAX;
}

/*
 * A sequence set into key; "$" (RFC 5182 SEARCHRES) alone makes it the
 * saved-result key instead.
 */
static int
parse_set(struct search_program *p, struct search_key *key,
    const struct imap_arg *a, const char **why_r)
{
	int r = imap_seqset_parse(&key->set, a->str, a->len, 1, why_r);

	if (r < 0)
		return SEARCH_ERR_SYNTAX;
	if (r == IMAP_SEQSET_SAVED) {
		key->type = SK_SAVED;
		p->uses_saved = 1;
	}
	return 0;
}

static int
parse_key(struct search_program *p, const struct imap_arg *a, size_t n,
    size_t *i, unsigned depth, int *idx_r, const char **why_r)
{
	const struct imap_arg *k = &a[(*i)++];
	const struct key_def *def;
	struct search_key *key;
	const char *s;
	size_t len;
	int idx, c1, c2, r;

	if (depth >= SEARCH_MAX_DEPTH)
		return syntax(why_r, "Search keys nested too deeply");
	if (p->n >= SEARCH_MAX_KEYS)
		return syntax(why_r, "Too many search keys");
	if (k->type == IMAP_ARG_LIST) {
		if ((r = new_key(p, SK_AND, &idx)) < 0)
			return r;
		if ((r = parse_keys(p, k->args, k->count, depth + 1, idx,
		    why_r)) < 0)
			return r;
		*idx_r = idx;
		return 0;
	}
	def = key_def_find(k);
	if (def == NULL) {
		/* a sequence set of message numbers */
		if ((k->type == IMAP_ARG_ATOM || k->type == IMAP_ARG_NUMBER) &&
		    !(k->flags & IMAP_ARG_F_SECTION)) {
			if ((r = new_key(p, SK_SEQSET, &idx)) < 0)
				return r;
			if ((r = parse_set(p, &p->keys[idx], k, why_r)) < 0)
				return r;
			*idx_r = idx;
			return 0;
		}
		return syntax(why_r, "Unknown search key");
	}
	if ((r = new_key(p, def->type, &idx)) < 0)
		return r;
	key = &p->keys[idx];
	key->flags = def->flags;
	switch (def->arg) {
	case KA_NONE:
		break;
	case KA_HEADER:
		if (*i >= n || !imap_arg_astring(&a[*i], &key->field,
		    &key->field_len) || key->field_len == 0)
			return syntax(why_r, "HEADER needs a field name");
		(*i)++;
		/* FALLTHROUGH */
	case KA_STRING:
		if (def->field != NULL) {
			key->field = def->field;
			key->field_len = strlen(def->field);
		}
		if (*i >= n || !imap_arg_astring(&a[*i], &key->str, &key->len))
			return syntax(why_r, "Search key needs a string");
		(*i)++;
		if ((r = fold_string(key)) < 0)
			return r;
		p->needs_content = 1;
		if (def->type == SK_BODY || def->type == SK_TEXT)
			p->needs_body = 1;
		break;
	case KA_NUMBER:
		if (*i >= n || !imap_arg_number(&a[*i], &key->num))
			return syntax(why_r, "Search key needs a number");
		(*i)++;
		break;
	case KA_DATE:
		if (*i >= n || !imap_arg_astring(&a[*i], &s, &len) ||
		    (key->date = search_parse_date(s, len)) < 0)
			return syntax(why_r, "Invalid search date");
		(*i)++;
		if (def->type >= SK_SENTBEFORE)
			p->needs_content = 1;
		break;
	case KA_KEYWORD:
		if (*i >= n || a[*i].type == IMAP_ARG_LIST ||
		    a[*i].type == IMAP_ARG_QUOTED ||
		    a[*i].type == IMAP_ARG_LITERAL ||
		    (a[*i].flags & IMAP_ARG_F_SECTION) || a[*i].len == 0 ||
		    a[*i].len > MBOX_KEYWORD_MAX)
			return syntax(why_r, "Search key needs a keyword");
		key->str = a[*i].str;
		key->len = a[*i].len;
		(*i)++;
		break;
	case KA_SEQSET:
		if (*i >= n || (a[*i].type != IMAP_ARG_ATOM &&
		    a[*i].type != IMAP_ARG_NUMBER) ||
		    (a[*i].flags & IMAP_ARG_F_SECTION))
			return syntax(why_r, "UID needs a sequence set");
		/* UID $ and $ are the same messages */
		if ((r = parse_set(p, key, &a[*i], why_r)) < 0)
			return r;
		(*i)++;
		break;
	case KA_MODSEQ:
		/* [entry-name entry-type-req]: per-message modseqs only */
		if (*i + 1 < n && imap_arg_string(&a[*i], &s, &len)) {
			if (!imap_arg_is_atom(&a[*i + 1], "priv") &&
			    !imap_arg_is_atom(&a[*i + 1], "shared") &&
			    !imap_arg_is_atom(&a[*i + 1], "all"))
				return syntax(why_r, "Invalid MODSEQ entry type");
			*i += 2;
		}
		if (*i >= n || !imap_arg_number(&a[*i], &key->num))
			return syntax(why_r, "MODSEQ needs a number");
		(*i)++;
		p->has_modseq = 1;
		break;
	case KA_NOT:
		if (*i >= n)
			return syntax(why_r, "NOT needs a search key");
		if ((r = parse_key(p, a, n, i, depth + 1, &c1, why_r)) < 0)
			return r;
		p->keys[idx].child = c1;
		break;
	case KA_OR:
		if (*i + 1 >= n)
			return syntax(why_r, "OR needs two search keys");
		if ((r = parse_key(p, a, n, i, depth + 1, &c1, why_r)) < 0)
			return r;
		if (*i >= n)
			return syntax(why_r, "OR needs two search keys");
		if ((r = parse_key(p, a, n, i, depth + 1, &c2, why_r)) < 0)
			return r;
		p->keys[idx].child = c1;
		p->keys[c1].next = c2;
		break;
	}
	*idx_r = idx;
	return 0;
}

static int
parse_return(struct search_program *p, const struct imap_arg *l,
    const char **why_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{ "MIN", SEARCH_RET_MIN }, { "MAX", SEARCH_RET_MAX },
		{ "ALL", SEARCH_RET_ALL }, { "COUNT", SEARCH_RET_COUNT },
		{ "SAVE", SEARCH_RET_SAVE },
	};
	size_t i, j;

	if (l->type != IMAP_ARG_LIST)
		return syntax(why_r, "RETURN needs a list of options");
	p->esearch = 1;
	for (i = 0; i < l->count; i++) {
		for (j = 0; j < sizeof(opts) / sizeof(opts[0]); j++)
			if (imap_arg_is_atom(&l->args[i], opts[j].name))
				break;
		if (j == sizeof(opts) / sizeof(opts[0]))
			return syntax(why_r, "Unknown RETURN option");
		p->ret |= opts[j].bit;
	}
	if (p->ret == 0)
		p->ret = SEARCH_RET_ALL;	/* RFC 4731 3.1 */
	return 0;
}

int
search_parse(struct search_program *p, const struct imap_arg *args,
    size_t count, const char **why_r)
{
	size_t i = 0;
	const char *cs;
	size_t cslen;
	int r;

	memset(p, 0, sizeof(*p));
	p->root = -1;
	*why_r = "Invalid SEARCH";
	if (i + 1 < count && imap_arg_is_atom(&args[i], "RETURN")) {
		if ((r = parse_return(p, &args[i + 1], why_r)) < 0)
			return r;
		i += 2;
	}
	if (i + 1 < count && imap_arg_is_atom(&args[i], "CHARSET")) {
		if (!imap_arg_astring(&args[i + 1], &cs, &cslen))
			return syntax(why_r, "CHARSET needs a name");
		if (!(cslen == 5 && strncasecmp(cs, "UTF-8", 5) == 0) &&
		    !(cslen == 8 && strncasecmp(cs, "US-ASCII", 8) == 0)) {
			*why_r = "[BADCHARSET (UTF-8 US-ASCII)] "
			    "Unsupported charset";
			return SEARCH_ERR_CHARSET;
		}
		i += 2;
	}
	if ((r = new_key(p, SK_AND, &p->root)) < 0)
		return r;
	return parse_keys(p, args + i, count - i, 0, p->root, why_r);
}

void
search_program_free(struct search_program *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->keys[i].folded);
		imap_seqset_free(&p->keys[i].set);
	}
	free(p->keys);
	memset(p, 0, sizeof(*p));
	p->root = -1;
}

void
search_program_resolve(struct search_program *p, uint32_t count,
    uint32_t max_uid)
{
	const char *why;
	size_t i;

	for (i = 0; i < p->n; i++) {
		struct search_key *k = &p->keys[i];

		/* not strict: out-of-range numbers match nothing */
		if (k->type == SK_SEQSET)
			(void)imap_seqset_resolve(&k->set, count, 0, &why);
		else if (k->type == SK_UIDSET)
			(void)imap_seqset_resolve(&k->set, max_uid, 0, &why);
	}
}

/* ---- evaluation on metadata ---------------------------------------- */

static int
has_keyword(const char *list, const char *kw, size_t len)
{
	const char *p = list;

	if (p == NULL)
		return 0;
	while (*p != '\0') {
		const char *e = strchr(p, ' ');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == len && strncasecmp(p, kw, len) == 0)
			return 1;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return 0;
}

static int32_t
internal_ymd(int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL)
		return -1;
	return search_ymd(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* A leaf that metadata decides: 1 / 0. */
static int
leaf_meta(const struct search_key *k, const struct search_msg *m)
{
	switch (k->type) {
	case SK_ALL:
		return 1;
	case SK_FLAGS_SET:
		return (m->flags & k->flags) == k->flags;
	case SK_FLAGS_UNSET:
		return (m->flags & k->flags) == 0;
	case SK_RECENT:
		return m->recent != 0;
	case SK_NEW:
		return m->recent && !(m->flags & MBOX_F_SEEN);
	case SK_OLD:
		return !m->recent;
	case SK_KEYWORD:
		return has_keyword(m->keywords, k->str, k->len);
	case SK_UNKEYWORD:
		return !has_keyword(m->keywords, k->str, k->len);
	case SK_LARGER:
		return m->size > k->num;
	case SK_SMALLER:
		return m->size < k->num;
	case SK_BEFORE:
		return internal_ymd(m->internaldate) < k->date;
	case SK_ON:
		return internal_ymd(m->internaldate) == k->date;
	case SK_SINCE:
		return internal_ymd(m->internaldate) >= k->date;
	case SK_MODSEQ:
		return m->modseq >= k->num;
	case SK_SEQSET:
		return imap_seqset_contains(&k->set, m->seq);
	case SK_UIDSET:
		return imap_seqset_contains(&k->set, m->uid);
	case SK_SAVED:
		return m->saved != 0;
	default:
		return 0;
	}
}

static int
eval_meta(const struct search_program *p, int idx,
    const struct search_msg *m)
{
	const struct search_key *k = &p->keys[idx];
	int c, r, res;

	switch (k->type) {
	case SK_AND:
		res = 1;
		for (c = k->child; c >= 0; c = p->keys[c].next) {
			r = eval_meta(p, c, m);
			if (r == 0)
				return 0;
			if (r < 0)
				res = -1;
		}
		return res;
	case SK_OR:
		res = 0;
		for (c = k->child; c >= 0; c = p->keys[c].next) {
			r = eval_meta(p, c, m);
			if (r == 1)
				return 1;
			if (r < 0)
				res = -1;
		}
		return res;
	case SK_NOT:
		r = eval_meta(p, k->child, m);
		return r < 0 ? -1 : !r;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
	case SK_HEADER:
	case SK_BODY:
	case SK_TEXT:
		return -1;
	default:
		return leaf_meta(k, m);
	}
}

int
search_eval_meta(const struct search_program *p, const struct search_msg *m)
{
	if (p->root < 0)
		return 0;
	return eval_meta(p, p->root, m);
}

/* ---- evaluation on content ----------------------------------------- */

struct content {
	const char *data;
	size_t len;
	size_t max;			/* bound for decoded text */
	struct mime_message *mm;
	int hdr_done, body_done, sent_done, nomem;
	struct buf hdr;			/* "name: value\n" decoded, folded */
	int32_t sent;			/* Date: as search_ymd(), or -1 */
	struct buf body;		/* text parts, decoded, folded */
	struct buf inner;		/* encapsulated headers, folded */
};

static int
ensure_mime(struct content *c)
{
	if (c->mm == NULL)
		c->mm = mime_parse(c->len ? c->data : "", c->len);
	if (c->mm == NULL)
		c->nomem = 1;
	return c->mm != NULL ? 0 : -1;
}

/*
 * Decode a header block [off, off+len) into out ("name: value\n",
 * folded).  Over-long text is cut (out's max).
 */
static void
decode_header_block(struct content *c, size_t off, size_t len,
    struct buf *out)
{
	struct mime_header h;
	struct buf unf, dec;
	size_t pos = 0;

	buf_init(&unf, c->max);
	buf_init(&dec, c->max);
	while (mime_header_next(c->data + off, len, &pos, &h) == 1) {
		if (h.name_len == 0)
			continue;
		buf_reset(&unf);
		buf_reset(&dec);
		(void)mime_header_unfold(h.value, h.value_len, &unf);
		(void)mime_decode_header(buf_cstr(&unf), unf.len, &dec);
		if (mime_fold_utf8(h.name, h.name_len, out) < 0 ||
		    buf_append(out, ": ", 2) < 0)
			break;
		if (mime_fold_utf8(buf_cstr(&dec), dec.len, out) < 0 ||
		    buf_putc(out, '\n') < 0)
			break;
	}
	buf_free(&unf);
	buf_free(&dec);
}

static int
need_header(struct content *c)
{
	if (c->hdr_done)
		return 0;
	c->hdr_done = 1;
	if (ensure_mime(c) < 0)
		return -1;
	decode_header_block(c, c->mm->root->hdr.off, c->mm->root->hdr.len,
	    &c->hdr);
	return c->nomem ? -1 : 0;
}

static int
contains(const char *hay, size_t hlen, const struct search_key *k)
{
	if (k->folded_len == 0)
		return 1;
	if (hay == NULL || hlen < k->folded_len)
		return 0;
	return memmem(hay, hlen, k->folded, k->folded_len) != NULL;
}

/*
 * 1 if a top-level field named k->field holds k's string.  Only the
 * fields of that name are unfolded, decoded and folded: a header key
 * looks at one or two fields of twenty, and decoding them all
 * (need_header) was most of the cost of SEARCH FROM.  No MIME parse
 * either: the top-level header is simply where the message starts.
 */
static int
header_has(struct content *c, const struct search_key *k)
{
	struct mime_header h;
	struct buf unf, dec, fold;
	size_t pos = 0;
	int any = 0;

	buf_init(&unf, c->max);
	buf_init(&dec, c->max);
	buf_init(&fold, c->max);
	while (!any && mime_header_next(c->data, c->len, &pos, &h) == 1) {
		if (h.name_len != k->field_len ||
		    strncasecmp(h.name, k->field, k->field_len) != 0)
			continue;
		buf_reset(&unf);
		buf_reset(&dec);
		buf_reset(&fold);
		(void)mime_header_unfold(h.value, h.value_len, &unf);
		(void)mime_decode_header(buf_cstr(&unf), unf.len, &dec);
		(void)mime_fold_utf8(buf_cstr(&dec), dec.len, &fold);
		any = contains(fold.data, fold.len, k);
	}
	buf_free(&unf);
	buf_free(&dec);
	buf_free(&fold);
	return any;
}

/* The first top-level Date: as search_ymd(), or -1. */
static int32_t
sent_date(struct content *c)
{
	struct mime_header h;
	struct buf unf;
	size_t pos = 0;

	if (c->sent_done)
		return c->sent;
	c->sent_done = 1;
	buf_init(&unf, c->max);
	while (mime_header_next(c->data, c->len, &pos, &h) == 1)
		if (mime_header_is(&h, "Date")) {
			(void)mime_header_unfold(h.value, h.value_len, &unf);
			c->sent = search_parse_sent_date(buf_cstr(&unf),
			    unf.len);
			break;
		}
	buf_free(&unf);
	return c->sent;
}

/* Every text/ part (and every encapsulated message's header), pre-order. */
static int
need_body(struct content *c)
{
	const struct mime_part *part;

	if (c->body_done)
		return 0;
	c->body_done = 1;
	if (ensure_mime(c) < 0)
		return -1;
	part = c->mm->root;
	while (part != NULL) {
		if (part->parent != NULL &&
		    (part->parent->flags & MIME_PART_MESSAGE))
			decode_header_block(c, part->hdr.off, part->hdr.len,
			    &c->inner);
		if (part->children == NULL && (part->flags & MIME_PART_TEXT)) {
			size_t mark = c->body.len;

			/* decoded straight into body and folded there: no
			 * copy of every text part on the way */
			(void)mime_decode_text(c->data, part, &c->body);
			if (c->body.len > mark)
				mime_fold_utf8_inplace(c->body.data + mark,
				    c->body.len - mark);
			(void)buf_putc(&c->body, '\n');
		}
		/* next in pre-order, without recursion */
		if (part->children != NULL) {
			part = part->children;
			continue;
		}
		while (part != NULL && part->next == NULL)
			part = part->parent;
		if (part != NULL)
			part = part->next;
	}
	return c->nomem ? -1 : 0;
}

static int
leaf_content(struct content *c, const struct search_key *k)
{
	switch (k->type) {
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (sent_date(c) < 0)
			return 0;
		return k->type == SK_SENTBEFORE ? c->sent < k->date :
		    k->type == SK_SENTON ? c->sent == k->date :
		    c->sent >= k->date;
	case SK_HEADER:
		return header_has(c, k);
	case SK_BODY:
		if (need_body(c) < 0)
			return -1;
		return contains(c->body.data, c->body.len, k);
	case SK_TEXT:
		if (need_header(c) < 0)
			return -1;
		if (contains(c->hdr.data, c->hdr.len, k))
			return 1;
		if (need_body(c) < 0)
			return -1;
		return contains(c->body.data, c->body.len, k) ||
		    contains(c->inner.data, c->inner.len, k);
	default:
		return -1;	/* not reached: metadata keys go elsewhere */
	}
}

static int
eval_content(const struct search_program *p, int idx,
    const struct search_msg *m, struct content *c)
{
	const struct search_key *k = &p->keys[idx];
	int ch, r;

	switch (k->type) {
	case SK_AND:
		for (ch = k->child; ch >= 0; ch = p->keys[ch].next)
			if ((r = eval_content(p, ch, m, c)) != 1)
				return r;
		return 1;
	case SK_OR:
		for (ch = k->child; ch >= 0; ch = p->keys[ch].next)
			if ((r = eval_content(p, ch, m, c)) != 0)
				return r;
		return 0;
	case SK_NOT:
		r = eval_content(p, k->child, m, c);
		return r < 0 ? -1 : !r;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
	case SK_HEADER:
	case SK_BODY:
	case SK_TEXT:
		return leaf_content(c, k);
	default:
		return leaf_meta(k, m);
	}
}

int
search_eval_content(const struct search_program *p,
    const struct search_msg *m, const char *data, size_t len)
{
	struct content c;
	int r;

	if (p->root < 0)
		return 0;
	memset(&c, 0, sizeof(c));
	c.data = data;
	c.len = len;
	c.sent = -1;
	/* decoded UTF-8 is at most ~3x a 1-byte charset; stay bounded */
	c.max = len < BUF_UNLIMITED / 4 - 65536 ? 4 * len + 65536 :
	    BUF_UNLIMITED;
	buf_init(&c.hdr, c.max);
	buf_init(&c.body, c.max);
	buf_init(&c.inner, c.max);
	r = eval_content(p, p->root, m, &c);
	buf_free(&c.hdr);
	buf_free(&c.body);
	buf_free(&c.inner);
	if (c.mm != NULL)
		mime_free(c.mm);
	return r;
}
