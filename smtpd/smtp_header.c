/*
 * smtp_header.c - header work for submitted mail (smtp_header.h): the
 * Bcc filter and the strict From: reader.  Pure; uses store/mime's
 * field splitter and RFC 822 lexical helpers so that a field is cut
 * where the rest of Buzón (and IMAP clients) cut it.
 */
#include "smtp_header.h"
#include "../store/mime.h"

#include <string.h>

int
smtp_header_filter(const char *hdr, size_t len, struct buf *out,
    struct smtp_header_info *info)
{
	struct mime_header h;
	size_t pos = 0;

	memset(info, 0, sizeof(*info));
	while (mime_header_next(hdr, len, &pos, &h)) {
		/* Bcc recipients must stay unknown to the others (RFC 5322 3.6.3). */
		if (mime_header_is(&h, "Bcc") || mime_header_is(&h, "Resent-Bcc")) {
			info->removed++;
			continue;
		}
		if (mime_header_is(&h, "Message-ID"))
			info->has_message_id = 1;
		else if (mime_header_is(&h, "Date"))
			info->has_date = 1;
		else if (mime_header_is(&h, "From") && info->nfrom++ == 0) {
			info->from = h.value;
			info->from_len = h.value_len;
		}
		if (buf_append(out, h.line, h.line_len) < 0)
			return -1;
	}
	return buf_append(out, hdr + pos, len - pos);
}

/* ---- From: ---- */

struct fparse {
	const char *v;
	size_t n, i;
};

static int
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c >= 0x80 ||
	    (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static void
cfws(struct fparse *f)
{
	mime_lex_cfws(f->v, f->n, &f->i, NULL, NULL);
}

static int
at(const struct fparse *f, char c)
{
	return f->i < f->n && f->v[f->i] == c;
}

/* An atom (with dots when dots) or quoted-string: 1 read, 0 none, -1 bad. */
static int
read_word(struct fparse *f, struct buf *dst, int dots)
{
	size_t s = f->i;

	if (at(f, '"'))
		return mime_lex_quoted(f->v, f->n, &f->i, dst) < 0 ? -1 : 1;
	while (f->i < f->n && (is_atext((unsigned char)f->v[f->i]) ||
	    (dots && f->v[f->i] == '.')))
		f->i++;
	if (f->i == s)
		return 0;
	if (dst != NULL && buf_append(dst, f->v + s, f->i - s) < 0)
		return -1;
	return 1;
}

/* A display name (obs-phrase: dots allowed); the number of words. */
static int
skip_phrase(struct fparse *f)
{
	int words = 0, r;

	for (;;) {
		cfws(f);
		r = read_word(f, NULL, 1);
		if (r < 0)
			return -1;
		if (r == 0)
			return words;
		words++;
	}
}

static enum smtp_from_status
read_addr_spec(struct fparse *f, struct mailaddr *out)
{
	struct buf local, domain;
	enum smtp_from_status st = SMTP_FROM_SYNTAX;
	size_t i;

	buf_init(&local, ADDR_LOCAL_MAX);
	buf_init(&domain, ADDR_DOMAIN_MAX);
	cfws(f);
	if (read_word(f, &local, 0) <= 0)
		goto out;
	for (;;) {
		cfws(f);
		if (!at(f, '.'))
			break;
		f->i++;
		cfws(f);
		if (buf_putc(&local, '.') < 0 || read_word(f, &local, 0) <= 0)
			goto out;
	}
	if (!at(f, '@'))
		goto out;
	f->i++;
	for (;;) {
		size_t s;

		cfws(f);
		s = f->i;
		while (f->i < f->n && is_atext((unsigned char)f->v[f->i]))
			f->i++;
		if (f->i == s || buf_append(&domain, f->v + s, f->i - s) < 0)
			goto out;	/* also refuses a [domain literal] */
		cfws(f);
		if (!at(f, '.'))
			break;
		f->i++;
		if (buf_putc(&domain, '.') < 0)
			goto out;
	}
	if (local.len == 0 || domain.len == 0 ||
	    !addr_domain_valid(domain.data, domain.len, 1))
		goto out;
	for (i = 0; i < local.len; i++)
		if ((unsigned char)local.data[i] < 0x20 || local.data[i] == 0x7f)
			goto out;
	memcpy(out->local, local.data, local.len + 1);
	memcpy(out->domain, domain.data, domain.len + 1);
	addr_lower(out->domain);
	st = SMTP_FROM_OK;
out:
	buf_free(&local);
	buf_free(&domain);
	return st;
}

enum smtp_from_status
smtp_header_from_parse(const char *v, size_t len, struct mailaddr *out)
{
	struct fparse f = { v, len, 0 };
	enum smtp_from_status st;
	size_t start;
	int words;

	memset(out, 0, sizeof(*out));
	cfws(&f);
	if (f.i >= f.n)
		return SMTP_FROM_NONE;
	start = f.i;
	words = skip_phrase(&f);
	if (words < 0)
		return SMTP_FROM_SYNTAX;
	cfws(&f);
	if (words > 0 && at(&f, ':'))
		return SMTP_FROM_GROUP;
	if (at(&f, '<')) {
		f.i++;
		cfws(&f);
		if (at(&f, '@') || at(&f, '>'))
			return SMTP_FROM_SYNTAX;	/* route, or <> */
		st = read_addr_spec(&f, out);
		if (st != SMTP_FROM_OK)
			return st;
		cfws(&f);
		if (!at(&f, '>'))
			return SMTP_FROM_SYNTAX;
		f.i++;
	} else {
		f.i = start;
		st = read_addr_spec(&f, out);
		if (st != SMTP_FROM_OK)
			return st;
	}
	/* RFC 5322 4.4 tolerates empty list elements: "a@b.c ," is one. */
	for (;;) {
		cfws(&f);
		if (f.i >= f.n)
			return SMTP_FROM_OK;
		if (!at(&f, ','))
			return SMTP_FROM_SYNTAX;
		while (at(&f, ',')) {
			f.i++;
			cfws(&f);
		}
		if (f.i < f.n) {
			memset(out, 0, sizeof(*out));
			return SMTP_FROM_MANY;
		}
	}
}
