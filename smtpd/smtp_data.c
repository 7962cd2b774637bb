/*
 * smtp_data.c - the DATA scanner (see smtp_parse.h).  The only end of
 * data is CR LF "." CR LF: after a bare LF the scanner is not at the
 * start of a line, so "\n.\n", "\n.\r\n" and "\r.\r" can never end a
 * message (no SMTP smuggling), and any bare CR or LF marks it bad.
 */
#include "smtp_parse.h"

enum {
	S_BOL,		/* after CRLF (or at the start) */
	S_BOL_DOT,	/* "." at the start of a line */
	S_BOL_DOT_CR,	/* ".\r" at the start of a line */
	S_MID,		/* inside a line */
	S_CR,		/* "\r" inside a line */
};

void
smtp_data_init(struct smtp_data_scanner *sc)
{
	sc->state = S_BOL;
	sc->done = 0;
	sc->bare_newline = 0;
	sc->size = 0;
	sc->nlines = 0;
}

struct outbuf {
	char b[4096];
	size_t n;
	int (*out)(void *, const char *, size_t);
	void *arg;
	int *overflow;
	struct smtp_data_scanner *sc;
};

static void
ob_flush(struct outbuf *o)
{
	if (o->n > 0 && !*o->overflow && !o->sc->bare_newline &&
	    o->out(o->arg, o->b, o->n) < 0)
		*o->overflow = 1;
	o->n = 0;
}

static void
ob_put(struct outbuf *o, char c)
{
	o->sc->size++;
	if (c == '\n')
		o->sc->nlines++;
	if (*o->overflow || o->sc->bare_newline)
		return;		/* counted, but not kept: it will be refused */
	o->b[o->n++] = c;
	if (o->n == sizeof(o->b))
		ob_flush(o);
}

size_t
smtp_data_feed(struct smtp_data_scanner *sc, const char *p, size_t len,
    int (*out)(void *arg, const char *p, size_t n), void *arg, int *overflow)
{
	struct outbuf o;
	size_t i;

	o.n = 0;
	o.out = out;
	o.arg = arg;
	o.overflow = overflow;
	o.sc = sc;
	for (i = 0; i < len && !sc->done; i++) {
		char c = p[i];

		switch (sc->state) {
		case S_BOL:
			if (c == '.') {
				sc->state = S_BOL_DOT;
				break;
			}
			/* FALLTHROUGH */
		case S_MID:
mid:
			if (c == '\r') {
				sc->state = S_CR;
			} else {
				if (c == '\n')
					sc->bare_newline = 1;
				ob_put(&o, c);
				sc->state = S_MID;
			}
			break;
		case S_BOL_DOT:
			/* a stuffed dot: drop it, the rest is ordinary */
			if (c == '\r') {
				sc->state = S_BOL_DOT_CR;
				break;
			}
			goto mid;
		case S_BOL_DOT_CR:
			if (c == '\n') {
				sc->done = 1;
				break;
			}
			sc->bare_newline = 1;
			goto mid;
		case S_CR:
			if (c == '\n') {
				ob_put(&o, '\n');
				sc->state = S_BOL;
			} else {
				sc->bare_newline = 1;
				if (c != '\r') {
					ob_put(&o, c);
					sc->state = S_MID;
				}
			}
			break;
		}
	}
	ob_flush(&o);
	return i;
}
