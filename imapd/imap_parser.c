/*
 * imap_parser.c - incremental IMAP command parser (see imap_parser.h).
 *
 * A byte-at-a-time state machine (literal data is copied in blocks).
 * Everything it keeps lives in bounded storage owned by the parser:
 * the text of all tokens in one struct buf (each token NUL-terminated),
 * argument nodes in an array linked by index, a stack of open lists and
 * sections.  When a command is complete the nodes are laid out
 * breadth-first into one struct imap_arg array, so that every list's
 * elements are contiguous.
 *
 * Must never: touch a socket, trust a length the client sent beyond the
 * caller's limits, or start parsing a new command anywhere but after the
 * true end of the previous one (see "Errors and resynchronisation").
 */
#include "imap_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define R_CONT		(-1)	/* no result yet: go on */
#define R_FAIL		(-2)	/* fail() was called: skip this byte too */
#define SHRINK_ABOVE	(64 * 1024)	/* free bigger buffers between commands */
#define NODES_KEEP	256

enum pstate {
	ST_START,	/* before a tag; empty lines are skipped */
	ST_START_CR,
	ST_TAG,
	ST_AFTER_TAG,	/* SP seen after the tag */
	ST_NAME,
	ST_ARGS,	/* between arguments */
	ST_AFTER_TOKEN,	/* after a quoted string, a literal or a ")" */
	ST_ATOM,
	ST_SUFFIX,	/* after the "]" of a section atom: "<0.100>" */
	ST_QUOTED,
	ST_QUOTED_ESC,
	ST_LIT_DIGITS,	/* after "{" */
	ST_LIT_PLUS,	/* after "{n+" */
	ST_LIT_CR,	/* after "}" */
	ST_LIT_LF,	/* after "}" CR */
	ST_LIT_DATA,
	ST_CR,		/* CR at the end of the command line */
	ST_SKIP_LINE,	/* after an error: up to the end of the line */
	ST_SKIP_LIT,	/* skipping the bytes of a {n+} literal */
	ST_LINE,	/* imap_parser_feed_line() */
	ST_LINE_CR,
	ST_LINE_SKIP,
	ST_FINISHED,	/* result returned; the next call starts afresh */
};

/* What the bytes since the last line start (or literal) end with. */
enum tail_state {
	T_NONE, T_BRACE, T_DIGITS, T_PLUS,
	T_SYNC, T_NONSYNC,		/* "{n}" / "{n+}" */
	T_SYNC_CR, T_NONSYNC_CR,	/* the same followed by CR */
};

struct node {
	enum imap_arg_type type;
	unsigned flags;
	size_t off, len;	/* text in strs */
	uint64_t num;
	size_t name_len, suffix_len;
	uint32_t first, next;	/* node numbers; 0 = none */
	uint32_t nchild;
};

struct frame {
	uint32_t node;		/* 0 = the command itself */
	uint32_t last;		/* its last child so far */
	int section;		/* closed by "]" rather than ")" */
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum pstate state;
	enum imap_parse_result skip_result;
	const char *error;

	struct buf strs;	/* text of every token, each NUL-terminated */
	struct buf raw;		/* a section atom's token text, as sent */
	int capture;		/* append each line byte to raw */

	struct node root;	/* node 0: the command's argument list */
	struct node *nodes;	/* node i is nodes[i - 1] */
	size_t nnodes, nodes_cap;
	struct frame *frames;	/* frames[0] is the root */
	unsigned depth;
	int in_section;
	uint32_t cur;		/* node of the token being read */
	uint32_t sect;		/* node of the section atom being read */
	size_t tok_off;		/* where cur's text starts in strs */
	size_t suffix_start;	/* raw.len just after the "]" */

	size_t line_bytes;
	uint64_t lit_total;	/* literal bytes accepted in this command */
	uint64_t lit_size;	/* the literal being announced */
	int lit_nonsync;
	int lit_digits;
	uint64_t lit_left;	/* literal bytes still to read or skip */

	enum tail_state tail;
	uint64_t tail_n;

	int tag_ok;
	size_t tag_len;
	int have_name;
	size_t name_off, name_len;

	struct imap_arg *out;
	uint32_t *order;
	size_t out_cap;
	struct imap_command cmd;
	int cmd_ready;
};

static struct node *
N(struct imap_parser *p, uint32_t i)
{
	return i == 0 ? &p->root : &p->nodes[i - 1];
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* --- character classes -------------------------------------------------- */

static int
is_ctl_or_8bit(unsigned char c)
{
	return c <= 0x20 || c >= 0x7f;
}

/* Bytes an atom may hold as input (see imap_parser.h). */
static int
is_atom_input(unsigned char c)
{
	return !is_ctl_or_8bit(c) && c != '(' && c != ')' && c != '{' &&
	    c != '"';
}

/* tag = 1*<any ASTRING-CHAR except "+"> */
static int
is_tag_char(unsigned char c)
{
	return is_atom_input(c) && c != '%' && c != '*' && c != '\\' &&
	    c != '+';
}

/* Command names: ATOM-CHAR. */
static int
is_name_char(unsigned char c)
{
	return is_atom_input(c) && c != '%' && c != '*' && c != '\\' &&
	    c != ']';
}

static int
is_astring_char(unsigned char c)
{
	return is_atom_input(c) && c != '%' && c != '*' && c != '\\';
}

/* --- the tail matcher: does the line end in "{n+}" ? ------------------- */

static void
tail_feed(struct imap_parser *p, unsigned char c)
{
	uint64_t d;

	if (c == '{') {
		p->tail = T_BRACE;
		p->tail_n = 0;
		return;
	}
	switch (p->tail) {
	case T_BRACE:
	case T_DIGITS:
		if (c >= '0' && c <= '9') {
			d = (uint64_t)(c - '0');
			if (p->tail_n > ((uint64_t)INT64_MAX - d) / 10)
				break;		/* not a literal we could read */
			p->tail_n = p->tail_n * 10 + d;
			p->tail = T_DIGITS;
			return;
		}
		if (p->tail == T_DIGITS && c == '+') {
			p->tail = T_PLUS;
			return;
		}
		if (p->tail == T_DIGITS && c == '}') {
			p->tail = T_SYNC;
			return;
		}
		break;
	case T_PLUS:
		if (c == '}') {
			p->tail = T_NONSYNC;
			return;
		}
		break;
	case T_SYNC:
	case T_NONSYNC:
		if (c == '\r') {
			p->tail = p->tail == T_SYNC ? T_SYNC_CR : T_NONSYNC_CR;
			return;
		}
		break;
	default:
		break;
	}
	p->tail = T_NONE;
}

/* --- per-command state -------------------------------------------------- */

static void
begin_command(struct imap_parser *p)
{
	if (p->strs.cap > SHRINK_ABOVE)
		buf_free(&p->strs);
	else
		buf_reset(&p->strs);
	if (p->raw.cap > SHRINK_ABOVE)
		buf_free(&p->raw);
	else
		buf_reset(&p->raw);
	if (p->nodes_cap > NODES_KEEP) {
		free(p->nodes);
		p->nodes = NULL;
		p->nodes_cap = 0;
	}
	if (p->out_cap > NODES_KEEP) {
		free(p->out);
		free(p->order);
		p->out = NULL;
		p->order = NULL;
		p->out_cap = 0;
	}
	p->nnodes = 0;
	memset(&p->root, 0, sizeof(p->root));
	p->root.type = IMAP_ARG_LIST;
	p->depth = 0;
	p->frames[0].node = 0;
	p->frames[0].last = 0;
	p->frames[0].section = 0;
	p->in_section = 0;
	p->capture = 0;
	p->cur = p->sect = 0;
	p->tok_off = p->suffix_start = 0;
	p->state = ST_START;
	p->skip_result = IMAP_PARSE_ERROR;
	p->error = NULL;
	p->line_bytes = 0;
	p->lit_total = p->lit_size = p->lit_left = 0;
	p->lit_nonsync = p->lit_digits = 0;
	p->tail = T_NONE;
	p->tail_n = 0;
	p->tag_ok = 0;
	p->tag_len = 0;
	p->have_name = 0;
	p->name_off = p->name_len = 0;
	p->cmd_ready = 0;
}

/* Record an error and start skipping the rest of the command. */
static int
fail(struct imap_parser *p, const char *why)
{
	p->error = why;
	p->skip_result = IMAP_PARSE_ERROR;
	p->state = ST_SKIP_LINE;
	p->capture = 0;
	return R_FAIL;
}

static int
put(struct imap_parser *p, unsigned char c)
{
	if (buf_putc(&p->strs, (char)c) < 0)
		return fail(p, "Out of memory");
	return R_CONT;
}

/* Terminate cur's text; sets its len. */
static int
end_text(struct imap_parser *p)
{
	struct node *n = N(p, p->cur);

	n->len = p->strs.len - p->tok_off;
	return put(p, '\0');
}

/* A new argument of type t in the innermost open list or section. */
static int
new_node(struct imap_parser *p, enum imap_arg_type t)
{
	struct frame *fr = &p->frames[p->depth];
	struct node *n;
	uint32_t idx;

	if (p->nnodes >= p->lim.max_args)
		return fail(p, "Too many arguments");
	if (p->nnodes == p->nodes_cap) {
		size_t ncap = p->nodes_cap ? p->nodes_cap * 2 : 16;

		if (ncap > p->lim.max_args)
			ncap = p->lim.max_args;
		n = realloc(p->nodes, ncap * sizeof(*n));
		if (n == NULL)
			return fail(p, "Out of memory");
		p->nodes = n;
		p->nodes_cap = ncap;
	}
	idx = (uint32_t)++p->nnodes;
	n = N(p, idx);
	memset(n, 0, sizeof(*n));
	n->type = t;
	n->off = p->strs.len;
	if (fr->last == 0)
		N(p, fr->node)->first = idx;
	else
		N(p, fr->last)->next = idx;
	fr->last = idx;
	N(p, fr->node)->nchild++;
	p->cur = idx;
	p->tok_off = p->strs.len;
	return R_CONT;
}

static int
push(struct imap_parser *p, uint32_t node, int section)
{
	if (p->depth >= p->lim.max_depth)
		return fail(p, "Too deeply nested");
	p->depth++;
	p->frames[p->depth].node = node;
	p->frames[p->depth].last = 0;
	p->frames[p->depth].section = section;
	return R_CONT;
}

/* --- building the result ------------------------------------------------ */

static void
fill_arg(struct imap_parser *p, struct imap_arg *a, uint32_t idx)
{
	const struct node *n = N(p, idx);

	a->type = n->type;
	a->flags = n->flags;
	a->str = n->type == IMAP_ARG_LIST ? "" : p->strs.data + n->off;
	a->len = n->type == IMAP_ARG_LIST ? 0 : n->len;
	a->num = n->num;
	a->args = NULL;
	a->count = 0;
	a->name_len = n->name_len;
	a->suffix_len = n->suffix_len;
}

static int
build(struct imap_parser *p)
{
	size_t k = 0, i;
	uint32_t c;

	if (p->nnodes > p->out_cap) {
		struct imap_arg *na;
		uint32_t *no;

		na = realloc(p->out, p->nnodes * sizeof(*na));
		if (na == NULL)
			return -1;
		p->out = na;
		no = realloc(p->order, p->nnodes * sizeof(*no));
		if (no == NULL)
			return -1;
		p->order = no;
		p->out_cap = p->nnodes;
	}
	/* Breadth-first, so each node's children land side by side. */
	for (c = p->root.first; c != 0; c = N(p, c)->next) {
		p->order[k] = c;
		fill_arg(p, &p->out[k++], c);
	}
	for (i = 0; i < k; i++) {
		const struct node *n = N(p, p->order[i]);

		if (n->nchild == 0)
			continue;
		p->out[i].args = &p->out[k];
		p->out[i].count = n->nchild;
		for (c = n->first; c != 0; c = N(p, c)->next) {
			p->order[k] = c;
			fill_arg(p, &p->out[k++], c);
		}
	}
	p->cmd.tag = p->strs.data;
	p->cmd.tag_len = p->tag_len;
	p->cmd.name = p->strs.data + p->name_off;
	p->cmd.name_len = p->name_len;
	p->cmd.args = p->root.nchild > 0 ? p->out : NULL;
	p->cmd.count = p->root.nchild;
	p->cmd_ready = 1;
	return 0;
}

/* --- the end of the command line ---------------------------------------- */

static int
line_end(struct imap_parser *p)
{
	if (!p->have_name)
		return fail(p, p->tag_ok ? "Missing command name" :
		    "Invalid tag");
	if (p->depth > 0)
		return fail(p, p->frames[p->depth].section ? "Missing ']'" :
		    "Missing ')'");
	if (build(p) < 0)
		return fail(p, "Out of memory");
	p->state = ST_FINISHED;
	p->tail = T_NONE;
	return IMAP_PARSE_DONE;
}

/* CR or LF where the line may end. */
static int
eol(struct imap_parser *p, unsigned char c)
{
	if (c == '\r') {
		p->state = ST_CR;
		return R_CONT;
	}
	return line_end(p);
}

/* --- lists, atoms and sections ------------------------------------------ */

static int
close_list(struct imap_parser *p)
{
	if (p->depth == 0)
		return fail(p, "Unexpected ')'");
	if (p->frames[p->depth].section)
		return fail(p, "Missing ']'");
	p->depth--;
	p->state = ST_AFTER_TOKEN;
	return R_CONT;
}

static int
close_section(struct imap_parser *p)
{
	p->depth--;
	p->in_section = 0;
	p->suffix_start = p->raw.len;
	p->state = ST_SUFFIX;
	return R_CONT;
}

static int
top_is_section(const struct imap_parser *p)
{
	return p->depth > 0 && p->frames[p->depth].section;
}

/* The atom being read contains "[": its text so far is the name. */
static int
open_section(struct imap_parser *p)
{
	struct node *n = N(p, p->cur);
	size_t namelen = p->strs.len - p->tok_off;

	if (push(p, p->cur, 1) != R_CONT)
		return R_FAIL;
	n->flags |= IMAP_ARG_F_SECTION;
	n->name_len = namelen;
	buf_reset(&p->raw);
	if (buf_append(&p->raw, p->strs.data + p->tok_off, namelen) < 0 ||
	    buf_putc(&p->raw, '[') < 0)
		return fail(p, "Out of memory");
	/* the final text is stored from raw when the atom ends */
	p->strs.len = p->tok_off;
	p->strs.data[p->strs.len] = '\0';
	p->sect = p->cur;
	p->in_section = 1;
	p->capture = 1;
	p->state = ST_ARGS;
	return R_CONT;
}

/* The section atom ends; raw holds its text plus the terminating byte. */
static int
end_section_atom(struct imap_parser *p)
{
	struct node *n = N(p, p->sect);
	size_t tlen = p->raw.len - 1;

	p->capture = 0;
	n->off = p->strs.len;
	n->len = tlen;
	n->suffix_len = tlen - p->suffix_start;
	if (buf_append(&p->strs, p->raw.data, tlen) < 0 ||
	    buf_putc(&p->strs, '\0') < 0)
		return fail(p, "Out of memory");
	return R_CONT;
}

static int
end_atom(struct imap_parser *p)
{
	size_t len = p->strs.len - p->tok_off, i;
	uint64_t v = 0, d;
	struct node *n;
	const char *s;

	if (end_text(p) != R_CONT)
		return R_FAIL;
	n = N(p, p->cur);
	s = p->strs.data + p->tok_off;
	if (len == 3 && strncasecmp(s, "NIL", 3) == 0) {
		n->type = IMAP_ARG_NIL;
		return R_CONT;
	}
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return R_CONT;
		d = (uint64_t)(s[i] - '0');
		if (v > ((uint64_t)INT64_MAX - d) / 10)
			return R_CONT;	/* too big: stays an atom */
		v = v * 10 + d;
	}
	n->type = IMAP_ARG_NUMBER;
	n->num = v;
	return R_CONT;
}

static int
start_literal(struct imap_parser *p)
{
	p->lit_size = 0;
	p->lit_digits = 0;
	p->lit_nonsync = 0;
	p->state = ST_LIT_DIGITS;
	return R_CONT;
}

/* A space, line end or ")" ends the token being read: finish it with end. */
static int
token_end(struct imap_parser *p, unsigned char c,
    int (*end)(struct imap_parser *))
{
	if (end(p) != R_CONT)
		return R_FAIL;
	if (c == ' ') {
		p->state = ST_ARGS;
		return R_CONT;
	}
	if (c == ')')
		return close_list(p);
	return eol(p, c);
}

static int
atom_byte(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
	case '\r':
	case '\n':
	case ')':
		return token_end(p, c, end_atom);
	case ']':
		if (!top_is_section(p))
			return put(p, c);
		if (end_atom(p) != R_CONT)
			return R_FAIL;
		return close_section(p);
	case '[':
		if (p->in_section)
			return put(p, c);
		return open_section(p);
	case '{':
		/* "~{" starts a literal8 */
		if (p->strs.len - p->tok_off == 1 &&
		    p->strs.data[p->tok_off] == '~') {
			struct node *n = N(p, p->cur);

			n->type = IMAP_ARG_LITERAL;
			n->flags |= IMAP_ARG_F_LITERAL8;
			p->strs.len = p->tok_off;
			p->strs.data[p->strs.len] = '\0';
			return start_literal(p);
		}
		return fail(p, "Invalid character in atom");
	default:
		if (!is_atom_input(c))
			return fail(p, (c & 0x80) ? "8-bit data in atom" :
			    "Invalid character in atom");
		return put(p, c);
	}
}

/* After the "]" of a section atom. */
static int
suffix_byte(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
	case '\r':
	case '\n':
	case ')':
		return token_end(p, c, end_section_atom);
	case '[':
		return fail(p, "Unexpected '['");
	default:
		if (!is_atom_input(c))
			return fail(p, (c & 0x80) ? "8-bit data in atom" :
			    "Invalid character in atom");
		return R_CONT;		/* already captured into raw */
	}
}

/* The first byte of an argument. */
static int
arg_start(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
		return R_CONT;
	case '\r':
	case '\n':
		return eol(p, c);
	case '(':
		if (new_node(p, IMAP_ARG_LIST) != R_CONT ||
		    push(p, p->cur, 0) != R_CONT)
			return R_FAIL;
		p->state = ST_ARGS;
		return R_CONT;
	case ')':
		return close_list(p);
	case '"':
		if (new_node(p, IMAP_ARG_QUOTED) != R_CONT)
			return R_FAIL;
		p->state = ST_QUOTED;
		return R_CONT;
	case '{':
		if (new_node(p, IMAP_ARG_LITERAL) != R_CONT)
			return R_FAIL;
		return start_literal(p);
	case ']':
		if (top_is_section(p))
			return close_section(p);
		break;
	default:
		break;
	}
	if (!is_atom_input(c))
		return fail(p, (c & 0x80) ? "8-bit data in atom" :
		    "Invalid character in argument");
	if (new_node(p, IMAP_ARG_ATOM) != R_CONT)
		return R_FAIL;
	p->state = ST_ATOM;
	return atom_byte(p, c);
}

/* After a quoted string, literal or list: a separator must follow. */
static int
after_token(struct imap_parser *p, unsigned char c)
{
	switch (c) {
	case ' ':
		p->state = ST_ARGS;
		return R_CONT;
	case '\r':
	case '\n':
		return eol(p, c);
	case ')':
		return close_list(p);
	case ']':
		if (top_is_section(p))
			return close_section(p);
		break;
	default:
		break;
	}
	return fail(p, "Missing space after argument");
}

static int
quoted_byte(struct imap_parser *p, unsigned char c)
{
	if (p->state == ST_QUOTED_ESC) {
		if (c != '"' && c != '\\')
			return fail(p, "Invalid escape in quoted string");
		p->state = ST_QUOTED;
		return put(p, c);
	}
	switch (c) {
	case '"':
		if (end_text(p) != R_CONT)
			return R_FAIL;
		p->state = ST_AFTER_TOKEN;
		return R_CONT;
	case '\\':
		p->state = ST_QUOTED_ESC;
		return R_CONT;
	case '\r':
	case '\n':
		return fail(p, "Missing '\"'");
	case '\0':
		return fail(p, "NUL in quoted string");
	default:
		if (c & 0x80)
			N(p, p->cur)->flags |= IMAP_ARG_F_8BIT;
		return put(p, c);
	}
}

/* "{n}" CRLF / "{n+}" CRLF has been read. */
static int
literal_announced(struct imap_parser *p)
{
	struct node *n = N(p, p->cur);
	uint64_t total = p->lim.max_literal_total;

	p->tail = T_NONE;
	if (p->lit_size > p->lim.max_literal ||
	    p->lit_size > total - p->lit_total) {
		p->error = "Literal too big";
		p->skip_result = IMAP_PARSE_LITERAL_TOO_BIG;
		p->capture = 0;
		if (!p->lit_nonsync) {
			/* the client waits for "+": the command ends here */
			p->state = ST_FINISHED;
			return IMAP_PARSE_LITERAL_TOO_BIG;
		}
		p->lit_left = p->lit_size;
		p->state = ST_SKIP_LIT;
		return R_CONT;
	}
	p->lit_total += p->lit_size;
	p->lit_left = p->lit_size;
	if (p->lit_nonsync)
		n->flags |= IMAP_ARG_F_NONSYNC;
	n->off = p->strs.len;
	p->tok_off = p->strs.len;
	p->state = ST_LIT_DATA;
	return p->lit_nonsync ? R_CONT : IMAP_PARSE_NEED_CONTINUATION;
}

static int
literal_spec_byte(struct imap_parser *p, unsigned char c)
{
	uint64_t d;

	switch (p->state) {
	case ST_LIT_DIGITS:
		if (c >= '0' && c <= '9') {
			d = (uint64_t)(c - '0');
			if (p->lit_size > ((uint64_t)INT64_MAX - d) / 10)
				return fail(p, "Literal size out of range");
			p->lit_size = p->lit_size * 10 + d;
			p->lit_digits++;
			return R_CONT;
		}
		if (p->lit_digits == 0 || (c != '+' && c != '}'))
			return fail(p, "Invalid literal size");
		p->state = c == '+' ? ST_LIT_PLUS : ST_LIT_CR;
		return R_CONT;
	case ST_LIT_PLUS:
		if (c != '}')
			return fail(p, "Invalid literal size");
		p->lit_nonsync = 1;
		p->state = ST_LIT_CR;
		return R_CONT;
	case ST_LIT_CR:
		if (c == '\r') {
			p->state = ST_LIT_LF;
			return R_CONT;
		}
		if (c == '\n')
			return literal_announced(p);
		return fail(p, "Missing CRLF after literal size");
	default:	/* ST_LIT_LF */
		if (c == '\n')
			return literal_announced(p);
		return fail(p, "CR without LF");
	}
}

/* Copy literal bytes; returns how many were taken. */
static size_t
literal_data(struct imap_parser *p, const char *data, size_t len)
{
	size_t take = len;
	struct node *n;
	size_t i;

	if (take > p->lit_left)
		take = (size_t)p->lit_left;
	if (take > 0 && buf_append(&p->strs, data, take) < 0) {
		/* keep in sync: the bytes must still be read */
		fail(p, "Out of memory");
		p->state = ST_SKIP_LIT;
		return 0;
	}
	n = N(p, p->cur);
	if (take > 0 && memchr(data, '\0', take) != NULL)
		n->flags |= IMAP_ARG_F_NUL;
	if (!(n->flags & IMAP_ARG_F_8BIT)) {
		for (i = 0; i < take; i++) {
			if (data[i] & 0x80) {
				n->flags |= IMAP_ARG_F_8BIT;
				break;
			}
		}
	}
	p->lit_left -= take;
	if (p->lit_left == 0) {
		p->tail = T_NONE;
		if (end_text(p) != R_CONT)
			p->state = ST_SKIP_LINE;
		else
			p->state = ST_AFTER_TOKEN;
	}
	return take;
}

static size_t
skip_literal(struct imap_parser *p, size_t len)
{
	size_t take = len;

	if (take > p->lit_left)
		take = (size_t)p->lit_left;
	p->lit_left -= take;
	if (p->lit_left == 0) {
		p->tail = T_NONE;
		p->state = ST_SKIP_LINE;
	}
	return take;
}

/* --- the skip after an error -------------------------------------------- */

static int
skip_byte(struct imap_parser *p, unsigned char c, int tail_fed)
{
	if (c == '\n') {
		if (p->tail == T_NONSYNC || p->tail == T_NONSYNC_CR) {
			p->lit_left = p->tail_n;
			p->tail = T_NONE;
			p->state = ST_SKIP_LIT;
			return R_CONT;
		}
		p->tail = T_NONE;
		p->state = ST_FINISHED;
		return p->skip_result;
	}
	if (!tail_fed)
		tail_feed(p, c);
	return R_CONT;
}

/* --- one byte ------------------------------------------------------------ */

static int
dispatch(struct imap_parser *p, unsigned char c)
{
	switch (p->state) {
	case ST_START:
		if (c == '\r') {
			p->state = ST_START_CR;
			return R_CONT;
		}
		if (c == '\n') {	/* empty line: ignored */
			p->line_bytes = 0;
			p->tail = T_NONE;
			return R_CONT;
		}
		if (!is_tag_char(c))
			return fail(p, "Invalid tag");
		p->state = ST_TAG;
		return put(p, c);
	case ST_START_CR:
		if (c != '\n')
			return fail(p, "CR without LF");
		p->line_bytes = 0;
		p->tail = T_NONE;
		p->state = ST_START;
		return R_CONT;
	case ST_TAG:
		if (is_tag_char(c))
			return put(p, c);
		if (c != ' ' && c != '\r' && c != '\n')
			return fail(p, "Invalid tag");
		p->tag_len = p->strs.len;
		if (put(p, '\0') != R_CONT)
			return R_FAIL;
		p->tag_ok = 1;
		if (c != ' ')
			return eol(p, c);
		p->state = ST_AFTER_TAG;
		return R_CONT;
	case ST_AFTER_TAG:
		if (c == ' ')
			return R_CONT;
		if (c == '\r' || c == '\n')
			return eol(p, c);
		if (!is_name_char(c))
			return fail(p, "Invalid command name");
		p->name_off = p->strs.len;
		p->state = ST_NAME;
		return put(p, c);
	case ST_NAME:
		if (is_name_char(c))
			return put(p, c);
		if (c != ' ' && c != '\r' && c != '\n')
			return fail(p, "Invalid command name");
		p->name_len = p->strs.len - p->name_off;
		if (put(p, '\0') != R_CONT)
			return R_FAIL;
		p->have_name = 1;
		if (c != ' ')
			return eol(p, c);
		p->state = ST_ARGS;
		return R_CONT;
	case ST_ARGS:
		return arg_start(p, c);
	case ST_AFTER_TOKEN:
		return after_token(p, c);
	case ST_ATOM:
		return atom_byte(p, c);
	case ST_SUFFIX:
		return suffix_byte(p, c);
	case ST_QUOTED:
	case ST_QUOTED_ESC:
		return quoted_byte(p, c);
	case ST_LIT_DIGITS:
	case ST_LIT_PLUS:
	case ST_LIT_CR:
	case ST_LIT_LF:
		return literal_spec_byte(p, c);
	case ST_CR:
		if (c != '\n')
			return fail(p, "CR without LF");
		return line_end(p);
	default:
		return fail(p, "Internal parser error");
	}
}

static int
step(struct imap_parser *p, unsigned char c)
{
	int r;

	if (p->state == ST_SKIP_LINE)
		return skip_byte(p, c, 0);
	if (c != '\n')
		tail_feed(p, c);
	if (++p->line_bytes > p->lim.max_line) {
		fail(p, "Command line too long");
		return skip_byte(p, c, 1);
	}
	if (p->capture && p->state != ST_LIT_CR && p->state != ST_LIT_LF &&
	    buf_putc(&p->raw, (char)c) < 0) {
		fail(p, "Out of memory");
		return skip_byte(p, c, 1);
	}
	r = dispatch(p, c);
	if (r == R_FAIL)
		return skip_byte(p, c, 1);
	return r;
}

/* --- public ---------------------------------------------------------------- */

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *lim)
{
	struct imap_parser *p;
	uint64_t smax;

	if (lim->max_line == 0 || lim->max_depth == 0 || lim->max_args == 0 ||
	    lim->max_args >= 0x80000000u || lim->max_depth > 0xffffu)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->lim = *lim;
	if (p->lim.max_literal_total == 0)
		p->lim.max_literal_total = p->lim.max_literal;
	p->frames = calloc((size_t)lim->max_depth + 1, sizeof(*p->frames));
	if (p->frames == NULL) {
		free(p);
		return NULL;
	}
	/* every byte stored comes from the line (at most twice: a section
	 * atom's parts and its whole text) or a literal, plus one NUL per
	 * token */
	smax = sat_add(sat_add(lim->max_line, lim->max_line),
	    sat_add(p->lim.max_literal_total, (uint64_t)lim->max_args * 2 + 64));
	if (smax > BUF_UNLIMITED)
		smax = BUF_UNLIMITED;
	buf_init(&p->strs, (size_t)smax);
	buf_init(&p->raw, lim->max_line + 1);
	begin_command(p);
	return p;
}

void
imap_parser_free(struct imap_parser *p)
{
	if (p == NULL)
		return;
	buf_free(&p->strs);
	buf_free(&p->raw);
	free(p->nodes);
	free(p->frames);
	free(p->out);
	free(p->order);
	free(p);
}

void
imap_parser_reset(struct imap_parser *p)
{
	begin_command(p);
}

static int
is_line_state(enum pstate s)
{
	return s == ST_LINE || s == ST_LINE_CR || s == ST_LINE_SKIP;
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
    size_t *consumed_r)
{
	size_t i = 0;
	int r;

	if (p->state == ST_FINISHED || is_line_state(p->state))
		begin_command(p);
	for (;;) {
		if (p->state == ST_LIT_DATA) {
			i += literal_data(p, data + i, len - i);
			if (p->state == ST_LIT_DATA)
				break;
			continue;
		}
		if (p->state == ST_SKIP_LIT) {
			i += skip_literal(p, len - i);
			if (p->state == ST_SKIP_LIT)
				break;
			continue;
		}
		if (i >= len)
			break;
		r = step(p, (unsigned char)data[i++]);
		if (r != R_CONT) {
			*consumed_r = i;
			return (enum imap_parse_result)r;
		}
	}
	*consumed_r = i;
	return IMAP_PARSE_NEED_MORE;
}

enum imap_parse_result
imap_parser_feed_line(struct imap_parser *p, const char *data, size_t len,
    size_t *consumed_r, const char **line_r, size_t *len_r)
{
	size_t i = 0;
	unsigned char c;

	*line_r = NULL;
	*len_r = 0;
	if (!is_line_state(p->state)) {
		begin_command(p);
		p->state = ST_LINE;
	}
	while (i < len) {
		c = (unsigned char)data[i++];
		if (p->state == ST_LINE_SKIP) {
			if (c == '\n') {
				p->state = ST_FINISHED;
				*consumed_r = i;
				return IMAP_PARSE_ERROR;
			}
			continue;
		}
		if (c == '\n') {
			p->state = ST_FINISHED;
			*line_r = buf_cstr(&p->strs);
			*len_r = p->strs.len;
			*consumed_r = i;
			return IMAP_PARSE_DONE;
		}
		if (p->state == ST_LINE_CR) {
			p->error = "CR without LF";
			p->state = ST_LINE_SKIP;
		} else if (c == '\r') {
			p->state = ST_LINE_CR;
		} else if (c == '\0') {
			p->error = "NUL in line";
			p->state = ST_LINE_SKIP;
		} else if (p->strs.len >= p->lim.max_line) {
			p->error = "Line too long";
			p->state = ST_LINE_SKIP;
		} else if (buf_putc(&p->strs, (char)c) < 0) {
			p->error = "Out of memory";
			p->state = ST_LINE_SKIP;
		}
	}
	*consumed_r = i;
	return IMAP_PARSE_NEED_MORE;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return p->cmd_ready ? &p->cmd : NULL;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error;
}

const char *
imap_parser_tag(const struct imap_parser *p, size_t *len_r)
{
	if (!p->tag_ok) {
		if (len_r != NULL)
			*len_r = 0;
		return NULL;
	}
	if (len_r != NULL)
		*len_r = p->tag_len;
	return p->strs.data;
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p, int *nonsync_r)
{
	if (nonsync_r != NULL)
		*nonsync_r = p->lit_nonsync;
	return p->lit_size;
}

/* --- reading arguments -------------------------------------------------- */

static int
is_atomish(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NUMBER ||
	    a->type == IMAP_ARG_NIL;
}

int
imap_arg_is_atom(const struct imap_arg *a, const char *word)
{
	size_t wl = strlen(word);

	return is_atomish(a) && !(a->flags & IMAP_ARG_F_SECTION) &&
	    a->len == wl && strncasecmp(a->str, word, wl) == 0;
}

static int
atom_text(const struct imap_arg *a, const char **s, size_t *len,
    int wildcards)
{
	size_t i;
	unsigned char c;

	if (a->type == IMAP_ARG_QUOTED ||
	    (a->type == IMAP_ARG_LITERAL && !(a->flags & IMAP_ARG_F_NUL))) {
		*s = a->str;
		*len = a->len;
		return 1;
	}
	if (!is_atomish(a) || a->len == 0)
		return 0;
	for (i = 0; i < a->len; i++) {
		c = (unsigned char)a->str[i];
		if (!is_astring_char(c) && !(wildcards && (c == '%' || c == '*')))
			return 0;
	}
	*s = a->str;
	*len = a->len;
	return 1;
}

int
imap_arg_astring(const struct imap_arg *a, const char **s, size_t *len)
{
	return atom_text(a, s, len, 0);
}

int
imap_arg_list_mailbox(const struct imap_arg *a, const char **s, size_t *len)
{
	return atom_text(a, s, len, 1);
}

int
imap_arg_string(const struct imap_arg *a, const char **s, size_t *len)
{
	if (a->type != IMAP_ARG_QUOTED && a->type != IMAP_ARG_LITERAL)
		return 0;
	*s = a->str;
	*len = a->len;
	return 1;
}

int
imap_arg_number(const struct imap_arg *a, uint64_t *v)
{
	if (a->type != IMAP_ARG_NUMBER)
		return 0;
	*v = a->num;
	return 1;
}

/* Digits at p[*i] up to 2^63-1; at least one. */
static int
parse_u63(const char *p, size_t len, size_t *i, uint64_t *v)
{
	uint64_t d;
	size_t start = *i;

	*v = 0;
	while (*i < len && p[*i] >= '0' && p[*i] <= '9') {
		d = (uint64_t)(p[*i] - '0');
		if (*v > ((uint64_t)INT64_MAX - d) / 10)
			return -1;
		*v = *v * 10 + d;
		(*i)++;
	}
	return *i > start ? 0 : -1;
}

int
imap_parse_partial(const char *p, size_t len, uint64_t *offset,
    uint64_t *count)
{
	size_t i = 1;

	if (len < 5 || p[0] != '<' || p[len - 1] != '>')
		return -1;
	if (parse_u63(p, len - 1, &i, offset) < 0 || i >= len - 1 ||
	    p[i] != '.')
		return -1;
	i++;
	if (parse_u63(p, len - 1, &i, count) < 0 || i != len - 1 ||
	    *count == 0)
		return -1;
	return 0;
}
