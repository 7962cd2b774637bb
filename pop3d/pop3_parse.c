/*
 * pop3_parse.c - POP3 command lines, numbers, and the RETR/TOP body
 * converter (see pop3_parse.h).  Pure: no sockets, no session, no store.
 * Must never read past len or assume NUL-terminated input.
 */
#include "pop3_parse.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum pop3_verb verb;
} verbs[] = {
	{ "CAPA", POP3_CAPA }, { "QUIT", POP3_QUIT }, { "STLS", POP3_STLS },
	{ "USER", POP3_USER }, { "PASS", POP3_PASS }, { "AUTH", POP3_AUTH },
	{ "STAT", POP3_STAT }, { "LIST", POP3_LIST }, { "RETR", POP3_RETR },
	{ "DELE", POP3_DELE }, { "NOOP", POP3_NOOP }, { "RSET", POP3_RSET },
	{ "TOP", POP3_TOP }, { "UIDL", POP3_UIDL },
};

const char *
pop3_verb_name(enum pop3_verb v)
{
	size_t i;

	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (verbs[i].verb == v)
			return verbs[i].name;
	return "?";
}

enum pop3_parse_result
pop3_parse_command(const char *line, size_t len, struct pop3_cmd *cmd)
{
	size_t i, vlen, start;

	memset(cmd, 0, sizeof(*cmd));
	cmd->verb = POP3_UNKNOWN;
	cmd->rest = line + len;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch < 0x20 || ch == 0x7f)
			return POP3_PARSE_BAD_CHAR;
	}
	/* Leading spaces are tolerated (some clients pad), trailing too. */
	start = 0;
	while (start < len && line[start] == ' ')
		start++;
	if (start == len)
		return POP3_PARSE_EMPTY;
	vlen = 0;
	while (start + vlen < len && line[start + vlen] != ' ')
		vlen++;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(verbs[i].name, line + start, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	if (cmd->verb == POP3_UNKNOWN)
		return POP3_PARSE_UNKNOWN;
	i = start + vlen;
	if (i < len)
		i++;		/* the one separating space */
	cmd->rest = line + i;
	cmd->restlen = len - i;
	while (i < len) {
		size_t wlen = 0;

		while (i < len && line[i] == ' ')
			i++;
		if (i == len)
			break;
		while (i + wlen < len && line[i + wlen] != ' ')
			wlen++;
		if (cmd->nargs == POP3_MAX_ARGS) {
			cmd->too_many_args = 1;
			break;
		}
		cmd->args[cmd->nargs].p = line + i;
		cmd->args[cmd->nargs].len = wlen;
		cmd->nargs++;
		i += wlen;
	}
	return POP3_PARSE_OK;
}

int
pop3_parse_number(const char *p, size_t len, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 10)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* ---- RETR / TOP body ---- */

void
pop3_stuff_init(struct pop3_stuff *st, int top, uint64_t body_lines)
{
	memset(st, 0, sizeof(*st));
	st->top = top;
	st->body_lines = body_lines;
	st->bol = 1;
	st->line_blank = 1;
	/* TOP n 0 on a message that is nothing but a blank line. */
}

/*
 * A line end was just produced.  Returns 1 when TOP has sent all it
 * must (the caller stops consuming input).
 */
static int
stuff_line_end(struct pop3_stuff *st)
{
	int was_blank = st->line_blank;

	st->bol = 1;
	st->line_blank = 1;
	if (!st->top)
		return 0;
	if (!st->in_body) {
		if (was_blank) {
			st->in_body = 1;
			if (st->body_lines == 0)
				st->done = 1;
		}
	} else if (st->body_lines > 0 && --st->body_lines == 0) {
		st->done = 1;
	}
	return st->done;
}

ssize_t
pop3_stuff_feed(struct pop3_stuff *st, const char *in, size_t len,
    struct buf *out)
{
	size_t i = 0;

	if (st->done)
		return 0;
	while (i < len) {
		const char *nl;
		size_t seg;

		if (st->bol && in[i] == '.') {
			if (buf_putc(out, '.') < 0)
				return -1;
			st->out_bytes++;
		}
		/* The rest of this line (up to and without its LF). */
		nl = memchr(in + i, '\n', len - i);
		seg = nl != NULL ? (size_t)(nl - (in + i)) : len - i;
		if (seg > 0) {
			if (buf_append(out, in + i, seg) < 0)
				return -1;
			st->out_bytes += seg;
			/* a line of just "\r" is still blank (CRLF storage) */
			if (st->line_blank && !(seg == 1 && in[i] == '\r' &&
			    st->bol))
				st->line_blank = 0;
			st->prev_cr = in[i + seg - 1] == '\r';
			st->bol = 0;
			i += seg;
			st->in_bytes += seg;
		}
		if (nl == NULL)
			break;
		/* The LF: CRLF unless the file already had the CR. */
		if (st->prev_cr) {
			if (buf_putc(out, '\n') < 0)
				return -1;
			st->out_bytes++;
		} else {
			if (buf_append(out, "\r\n", 2) < 0)
				return -1;
			st->out_bytes += 2;
		}
		st->prev_cr = 0;
		i++;
		st->in_bytes++;
		if (stuff_line_end(st))
			break;
	}
	return (ssize_t)i;
}

int
pop3_stuff_finish(struct pop3_stuff *st, struct buf *out)
{
	if (!st->bol) {
		/* A file without a final line end: the terminator needs its
		 * own line.  A trailing lone CR gets its LF. */
		if (st->prev_cr ? buf_putc(out, '\n') < 0 :
		    buf_append(out, "\r\n", 2) < 0)
			return -1;
		st->out_bytes += st->prev_cr ? 1 : 2;
		st->bol = 1;
		st->prev_cr = 0;
	}
	if (buf_append(out, ".\r\n", 3) < 0)
		return -1;
	return 0;
}
