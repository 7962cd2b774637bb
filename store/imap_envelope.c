/*
 * imap_envelope.c - IMAP ENVELOPE and IMAP string quoting.  See
 * imap_envelope.h for the choices made on broken input.
 *
 * Must never write an unquoted byte that IMAP does not allow in a quoted
 * string, read outside the given header, or loop without consuming
 * input: every parse step either advances or hands over to a skip that
 * does.
 */
#include "imap_envelope.h"

#include <string.h>

#include "mime.h"

/* ------------------------------------------------------------------ */
/* IMAP strings.                                                      */

int
imap_append_string(struct buf *out, const char *s, size_t n)
{
	size_t i, nul = 0, run;
	int literal = 0;
	size_t start = out->len;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0')
			nul++;
		if (c == '\r' || c == '\n' || c == '"' || c == '\\' ||
		    c >= 0x80 || c == '\0')
			literal = 1;
	}
	if (literal && buf_printf(out, "{%zu}\r\n", n + 2 * nul) < 0)
		return -1;
	if (!literal && buf_putc(out, '"') < 0)
		return -1;
	for (run = 0, i = 0; i <= n; i++) {
		if (i < n && s[i] != '\0')
			continue;
		if (buf_append(out, s + run, i - run) < 0 ||
		    (i < n && buf_append(out, "\xef\xbf\xbd", 3) < 0))
			goto full;
		run = i + 1;
	}
	if (!literal && buf_putc(out, '"') < 0)
		goto full;
	return 0;
full:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}

int
imap_append_nstring(struct buf *out, const char *s)
{
	if (s == NULL)
		return buf_puts(out, "NIL");
	return imap_append_string(out, s, strlen(s));
}

/* ------------------------------------------------------------------ */
/* Address lists (RFC 5322 3.4 with the obsolete forms of 4.4).       */

struct aparse {
	const char *v;
	size_t n, i;
	struct buf *out;	/* entries, without the enclosing parens */
	unsigned int count;
	struct buf phrase, local, domain, comment;
	int had_comment;
	int err;
};

static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static void
skip_cfws(struct aparse *ap, int capture)
{
	mime_lex_cfws(ap->v, ap->n, &ap->i, capture ? &ap->comment : NULL,
	    capture ? &ap->had_comment : NULL);
}

static int
at_delim(const struct aparse *ap)
{
	return ap->i >= ap->n || ap->v[ap->i] == ',' || ap->v[ap->i] == ';';
}

/* One atom (dots allowed when dots) or quoted-string; 1 if one was read. */
static int
read_word(struct aparse *ap, struct buf *dst, int dots)
{
	size_t s = ap->i;

	if (ap->i < ap->n && ap->v[ap->i] == '"') {
		(void)mime_lex_quoted(ap->v, ap->n, &ap->i, dst);
		return 1;
	}
	while (ap->i < ap->n && (is_atext((unsigned char)ap->v[ap->i]) ||
	    (dots && ap->v[ap->i] == '.')))
		ap->i++;
	if (ap->i == s)
		return 0;
	(void)buf_append(dst, ap->v + s, ap->i - s);
	return 1;
}

/* phrase = 1*word (obs-phrase: dots too); words joined by one space. */
static unsigned int
parse_phrase(struct aparse *ap, struct buf *dst)
{
	unsigned int words = 0;
	size_t mark;

	for (;;) {
		skip_cfws(ap, 0);
		mark = dst->len;
		if (words > 0)
			(void)buf_putc(dst, ' ');
		if (!read_word(ap, dst, 1)) {
			dst->len = mark;
			if (dst->data != NULL)
				dst->data[mark] = '\0';
			return words;
		}
		words++;
	}
}

/* local-part = word *("." word), comments captured. */
static void
parse_local(struct aparse *ap)
{
	skip_cfws(ap, 1);
	(void)read_word(ap, &ap->local, 0);
	for (;;) {
		skip_cfws(ap, 1);
		if (ap->i >= ap->n || ap->v[ap->i] != '.')
			return;
		ap->i++;
		(void)buf_putc(&ap->local, '.');
		skip_cfws(ap, 1);
		(void)read_word(ap, &ap->local, 0);
	}
}

/* domain = dot-atom / domain-literal, comments captured. */
static void
parse_domain(struct aparse *ap)
{
	size_t s;

	skip_cfws(ap, 1);
	if (ap->i < ap->n && ap->v[ap->i] == '[') {
		s = ap->i;
		while (ap->i < ap->n && ap->v[ap->i] != ']')
			ap->i += ap->v[ap->i] == '\\' && ap->i + 1 < ap->n ? 2 : 1;
		if (ap->i < ap->n)
			ap->i++;
		(void)buf_append(&ap->domain, ap->v + s, ap->i - s);
	} else {
		for (;;) {
			s = ap->i;
			while (ap->i < ap->n &&
			    is_atext((unsigned char)ap->v[ap->i]))
				ap->i++;
			(void)buf_append(&ap->domain, ap->v + s, ap->i - s);
			skip_cfws(ap, 1);
			if (ap->i >= ap->n || ap->v[ap->i] != '.')
				break;
			ap->i++;
			(void)buf_putc(&ap->domain, '.');
			skip_cfws(ap, 1);
		}
	}
	skip_cfws(ap, 1);
}

/* Skip garbage up to the next ',' or ';' (quotes, comments, <> whole). */
static void
skip_to_delim(struct aparse *ap)
{
	while (!at_delim(ap)) {
		char c = ap->v[ap->i];

		if (c == '"')
			(void)mime_lex_quoted(ap->v, ap->n, &ap->i, NULL);
		else if (c == '(')
			mime_lex_cfws(ap->v, ap->n, &ap->i, NULL, NULL);
		else if (c == '<') {
			while (ap->i < ap->n && ap->v[ap->i] != '>')
				ap->i++;
		} else
			ap->i++;
	}
}

static void
emit(struct aparse *ap, const struct buf *name, const char *mailbox,
    const char *host)
{
	struct buf *o = ap->out;

	if (ap->count >= IMAP_ENVELOPE_MAX_ADDRS)
		return;
	ap->count++;
	if (buf_puts(o, "(") < 0 ||
	    (name != NULL && name->len > 0 ?
	    imap_append_string(o, name->data, name->len) :
	    buf_puts(o, "NIL")) < 0 ||
	    buf_puts(o, " NIL ") < 0 ||
	    imap_append_nstring(o, mailbox) < 0 ||
	    buf_puts(o, " ") < 0 ||
	    imap_append_nstring(o, host) < 0 ||
	    buf_puts(o, ")") < 0)
		ap->err = 1;
}

static const char *
or_missing(const struct buf *b, const char *missing)
{
	return b->len > 0 ? b->data : missing;
}

/* mailbox = name-addr / addr-spec; leaves ap->i at what follows. */
static void
parse_mailbox(struct aparse *ap)
{
	size_t start = ap->i, phrase_end;
	unsigned int words;
	int phrase_ok;

	buf_reset(&ap->phrase);
	buf_reset(&ap->local);
	buf_reset(&ap->domain);
	words = parse_phrase(ap, &ap->phrase);
	skip_cfws(ap, 0);
	if (ap->i < ap->n && ap->v[ap->i] == '<') {
		/* angle-addr = "<" [obs-route] addr-spec ">" */
		ap->i++;
		skip_cfws(ap, 0);
		if (ap->i < ap->n && ap->v[ap->i] == '@') {
			while (ap->i < ap->n && ap->v[ap->i] != ':' &&
			    ap->v[ap->i] != '>') {
				if (ap->v[ap->i] == '[')
					while (ap->i < ap->n && ap->v[ap->i] != ']')
						ap->i++;
				else
					ap->i++;
			}
			if (ap->i < ap->n && ap->v[ap->i] == ':')
				ap->i++;
		}
		parse_local(ap);
		if (ap->i < ap->n && ap->v[ap->i] == '@') {
			ap->i++;
			parse_domain(ap);
		}
		while (ap->i < ap->n && ap->v[ap->i] != '>' && !at_delim(ap))
			ap->i++;
		if (ap->i < ap->n && ap->v[ap->i] == '>')
			ap->i++;
		emit(ap, &ap->phrase, or_missing(&ap->local, "MISSING_MAILBOX"),
		    or_missing(&ap->domain, "MISSING_DOMAIN"));
		skip_cfws(ap, 0);
		return;
	}
	phrase_end = ap->i;
	phrase_ok = at_delim(ap);

	/* addr-spec, its last comment being the name */
	ap->i = start;
	ap->had_comment = 0;
	buf_reset(&ap->comment);
	parse_local(ap);
	if (ap->i < ap->n && ap->v[ap->i] == '@') {
		ap->i++;
		parse_domain(ap);
	}
	skip_cfws(ap, 1);
	if (!at_delim(ap) && words > 0 && phrase_ok) {
		/* "A B C": a display name without an address */
		ap->i = phrase_end;
		emit(ap, &ap->phrase, "MISSING_MAILBOX", "MISSING_DOMAIN");
		return;
	}
	emit(ap, ap->had_comment ? &ap->comment : NULL,
	    or_missing(&ap->local, "MISSING_MAILBOX"),
	    or_missing(&ap->domain, "MISSING_DOMAIN"));
}

static void
parse_group_rest(struct aparse *ap)
{
	for (;;) {
		skip_cfws(ap, 0);
		if (ap->i >= ap->n)
			break;
		if (ap->v[ap->i] == ';') {
			ap->i++;
			break;
		}
		if (ap->v[ap->i] == ',') {
			ap->i++;
			continue;
		}
		parse_mailbox(ap);
		skip_cfws(ap, 0);
		skip_to_delim(ap);
	}
}

static void
parse_list(struct aparse *ap)
{
	size_t start;
	unsigned int words;

	while (ap->i < ap->n && !ap->err &&
	    ap->count < IMAP_ENVELOPE_MAX_ADDRS) {
		skip_cfws(ap, 0);
		if (ap->i >= ap->n)
			break;
		if (ap->v[ap->i] == ',' || ap->v[ap->i] == ';') {
			ap->i++;
			continue;
		}
		start = ap->i;
		buf_reset(&ap->phrase);
		words = parse_phrase(ap, &ap->phrase);
		skip_cfws(ap, 0);
		if (words > 0 && ap->i < ap->n && ap->v[ap->i] == ':') {
			/* group: (NIL NIL name NIL) members (NIL NIL NIL NIL) */
			ap->i++;
			if (ap->count + 2 > IMAP_ENVELOPE_MAX_ADDRS)
				break;
			if (buf_puts(ap->out, "(NIL NIL ") < 0 ||
			    imap_append_string(ap->out, ap->phrase.data,
			    ap->phrase.len) < 0 ||
			    buf_puts(ap->out, " NIL)") < 0) {
				ap->err = 1;
				break;
			}
			ap->count++;
			parse_group_rest(ap);
			ap->count++;
			if (buf_puts(ap->out, "(NIL NIL NIL NIL)") < 0)
				ap->err = 1;
			continue;
		}
		ap->i = start;
		parse_mailbox(ap);
		skip_to_delim(ap);
	}
}

/* Append the entries of one unfolded value to list. */
static int
addresses_append(const char *v, size_t n, struct buf *list)
{
	struct aparse ap;
	int err;

	memset(&ap, 0, sizeof(ap));
	ap.v = v;
	ap.n = n;
	ap.out = list;
	buf_init(&ap.phrase, n + 1);
	buf_init(&ap.local, n + 1);
	buf_init(&ap.domain, n + 1);
	buf_init(&ap.comment, n + 1);
	parse_list(&ap);
	err = ap.err;
	buf_free(&ap.phrase);
	buf_free(&ap.local);
	buf_free(&ap.domain);
	buf_free(&ap.comment);
	return err ? -1 : 0;
}

static int
write_list(struct buf *out, const struct buf *list)
{
	if (list->len == 0)
		return buf_puts(out, "NIL");
	if (buf_putc(out, '(') < 0 || buf_append(out, list->data, list->len) < 0)
		return -1;
	return buf_putc(out, ')');
}

int
imap_envelope_addresses(const char *v, size_t n, struct buf *out)
{
	struct buf list;
	int r;

	buf_init(&list, out->max);
	r = addresses_append(v, n, &list);
	if (r == 0)
		r = write_list(out, &list);
	buf_free(&list);
	return r;
}

/* ------------------------------------------------------------------ */
/* ENVELOPE.                                                          */

enum { E_DATE, E_SUBJECT, E_INREPLYTO, E_MSGID, E_NSTRINGS };
enum { A_FROM, A_SENDER, A_REPLYTO, A_TO, A_CC, A_BCC, A_LISTS };

static const char *const string_fields[E_NSTRINGS] = {
	"Date", "Subject", "In-Reply-To", "Message-ID",
};
static const char *const address_fields[A_LISTS] = {
	"From", "Sender", "Reply-To", "To", "Cc", "Bcc",
};

/*
 * Dovecot shows the subject "for humans": runs of blanks become one
 * space and leading and trailing blanks go.  Clients compare subjects
 * with what Dovecot gave them, so do the same.
 */
static void
subject_for_humans(struct buf *v)
{
	size_t i, o = 0;
	int blank = 1;

	for (i = 0; i < v->len; i++) {
		char c = v->data[i];

		if (c == ' ' || c == '\t') {
			if (!blank)
				v->data[o++] = ' ';
			blank = 1;
			continue;
		}
		v->data[o++] = c;
		blank = 0;
	}
	if (o > 0 && v->data[o - 1] == ' ')
		o--;
	v->len = o;
}

int
imap_envelope_write(const char *hdr, size_t len, struct buf *out)
{
	struct mime_header h, last[E_NSTRINGS];
	int have[E_NSTRINGS] = { 0 };
	struct buf lists[A_LISTS], val;
	size_t pos = 0;
	int i, r = -1;

	buf_init(&val, BUF_UNLIMITED);
	for (i = 0; i < A_LISTS; i++)
		buf_init(&lists[i], out->max);
	while (mime_header_next(hdr, len, &pos, &h) > 0) {
		for (i = 0; i < E_NSTRINGS; i++) {
			if (mime_header_is(&h, string_fields[i])) {
				last[i] = h;
				have[i] = 1;
			}
		}
		for (i = 0; i < A_LISTS; i++) {
			if (!mime_header_is(&h, address_fields[i]))
				continue;
			buf_reset(&val);
			if (mime_header_unfold(h.value, h.value_len, &val) < 0 ||
			    addresses_append(buf_cstr(&val), val.len,
			    &lists[i]) < 0)
				goto out;
		}
	}
	if (buf_putc(out, '(') < 0)
		goto out;
	for (i = 0; i < 2; i++) {
		buf_reset(&val);
		if (have[i] &&
		    mime_header_unfold(last[i].value, last[i].value_len, &val) < 0)
			goto out;
		if (i == E_SUBJECT)
			subject_for_humans(&val);
		if ((!have[i] ? buf_puts(out, "NIL") :
		    imap_append_string(out, buf_cstr(&val), val.len)) < 0 ||
		    buf_putc(out, ' ') < 0)
			goto out;
	}
	for (i = 0; i < A_LISTS; i++) {
		const struct buf *l = &lists[i];

		if ((i == A_SENDER || i == A_REPLYTO) && l->len == 0)
			l = &lists[A_FROM];
		if (write_list(out, l) < 0 || buf_putc(out, ' ') < 0)
			goto out;
	}
	for (i = 2; i < E_NSTRINGS; i++) {
		buf_reset(&val);
		if (!have[i] ? buf_puts(out, "NIL") < 0 :
		    mime_header_unfold(last[i].value, last[i].value_len, &val) < 0 ||
		    imap_append_string(out, buf_cstr(&val), val.len) < 0)
			goto out;
		if (buf_putc(out, i + 1 < E_NSTRINGS ? ' ' : ')') < 0)
			goto out;
	}
	r = 0;
out:
	buf_free(&val);
	for (i = 0; i < A_LISTS; i++)
		buf_free(&lists[i]);
	return r;
}
