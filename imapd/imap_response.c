/*
 * imap_response.c - IMAP string encoding and capability lists (see
 * imap_response.h).  Every capability listed here must be implemented:
 * clients believe them.
 */
#include "imap_response.h"

#include <string.h>
#include <strings.h>

/* RFC 3501 ATOM-CHAR: any CHAR except atom-specials. */
static int
is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return 0;
	return strchr("(){%*\"\\]", c) == NULL;
}

static int
quotable(const char *s, size_t len, int utf8)
{
	size_t i;

	if (len > 1024)
		return 0;	/* long values read better as literals */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\0' || c == '\r' || c == '\n')
			return 0;
		if (c >= 0x80 && !utf8)
			return 0;
	}
	return 1;
}

int
imap_put_string(struct buf *b, const char *s, size_t len, int utf8)
{
	size_t i, run;

	if (!quotable(s, len, utf8)) {
		if (buf_printf(b, "{%zu}\r\n", len) < 0)
			return -1;
		return buf_append(b, s, len);
	}
	if (buf_putc(b, '"') < 0)
		return -1;
	for (i = 0; i < len; i += run) {
		run = 0;
		while (i + run < len && s[i + run] != '"' && s[i + run] != '\\')
			run++;
		if (run > 0 && buf_append(b, s + i, run) < 0)
			return -1;
		if (i + run < len) {
			char esc[2] = { '\\', s[i + run] };

			if (buf_append(b, esc, 2) < 0)
				return -1;
			run++;
		}
	}
	return buf_putc(b, '"');
}

int
imap_put_nstring(struct buf *b, const char *s, size_t len, int utf8)
{
	if (s == NULL)
		return buf_append(b, "NIL", 3);
	return imap_put_string(b, s, len, utf8);
}

int
imap_put_astring(struct buf *b, const char *s, size_t len, int utf8)
{
	size_t i;

	/* "NIL" as an atom would read as NIL: quote it. */
	if (len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return imap_put_string(b, s, len, utf8);
	for (i = 0; i < len; i++)
		if (!is_atom_char((unsigned char)s[i]))
			return imap_put_string(b, s, len, utf8);
	return buf_append(b, s, len);
}

const char *
imap_capabilities(enum imap_cap_state st)
{
	switch (st) {
	case IMAP_CAP_PLAIN_NO_TLS:
		return "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE "
		    "STARTTLS LOGINDISABLED";
	case IMAP_CAP_PREAUTH_TLS:
		return "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE "
		    "AUTH=PLAIN AUTH=LOGIN";
	case IMAP_CAP_AUTH:
	default:
		/*
		 * Only what is implemented.  IMAP4rev2 behaviour (RFC 9051)
		 * starts at ENABLE IMAP4rev2; until then it is IMAP4rev1.
		 */
		return "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE "
		    "BINARY SEARCHRES "
		    "NAMESPACE UNSELECT CHILDREN SPECIAL-USE CREATE-SPECIAL-USE "
		    "LIST-EXTENDED LIST-STATUS UIDPLUS MOVE CONDSTORE QRESYNC ESEARCH "
		    "STATUS=SIZE QUOTA QUOTA=RES-STORAGE APPENDLIMIT=67108864 "
		    "UTF8=ACCEPT COMPRESS=DEFLATE";
	}
}
