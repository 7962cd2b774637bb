/*
 * policy_header.c - the Authentication-Results header (RFC 8601) that
 * reports our SPF, DKIM and DMARC results, and the filter that removes
 * the ones a sender forged in our name.  Pure: bytes in, bytes out.
 *
 * Most values printed come from outside (a signature's d= and s=, the
 * envelope sender, DNS): a value is printed only when every byte of it
 * is one a domain, a selector or a dot-atom address can hold, so that
 * nothing read from a message can end the header, start a new result
 * (";") or hide inside a comment.  A value that fails is left out.
 */
#include "policy.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#define AR_NAME "Authentication-Results"
#define LINE_MAX_SOFT 78	/* RFC 5322 2.1.1: SHOULD fold before this */

/* ---- building ------------------------------------------------------ */

/* letters, digits, '.', '-', '_': domains and selectors */
static int
safe_name(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' || strlen(s) > 255)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '.' &&
		    s[i] != '-' && s[i] != '_')
			return 0;
	return 1;
}

/* dot-atom@safe-domain (RFC 5322 atext): the pvalue form of RFC 8601 */
static int
safe_address(const char *s)
{
	const char *at;
	size_t i;

	if (s == NULL || (at = strrchr(s, '@')) == NULL || at == s ||
	    (size_t)(at - s) > 64 || !safe_name(at + 1))
		return 0;
	for (i = 0; s + i < at; i++)
		if (!isalnum((unsigned char)s[i]) &&
		    strchr(".!#$%&'*+-/=?^_`{|}~", s[i]) == NULL)
			return 0;
	return s[0] != '.' && at[-1] != '.';
}

struct writer {
	struct buf *b;
	size_t line;		/* characters on the current line */
	int err;
};

static void
w_raw(struct writer *w, const char *s)
{
	const char *nl;

	if (w->err || buf_puts(w->b, s) < 0) {
		w->err = 1;
		return;
	}
	if ((nl = strrchr(s, '\n')) != NULL)
		w->line = strlen(nl + 1);
	else
		w->line += strlen(s);
}

/* A space-separated token, folded onto a new line when it would pass 78. */
static void
w_token(struct writer *w, const char *tok)
{
	if (w->line + 1 + strlen(tok) > LINE_MAX_SOFT && w->line > 1)
		w_raw(w, "\n\t");
	else
		w_raw(w, " ");
	w_raw(w, tok);
}

/* "name=value" as one token, when value is safe */
static void
w_prop(struct writer *w, const char *name, const char *value)
{
	char tok[320];

	if (snprintf_checked(tok, sizeof(tok), "%s=%s", name, value) == 0)
		w_token(w, tok);
}

/*
 * "(text)": our own reasons and libopendkim's, kept to characters that
 * cannot end the comment or the header whatever they say.
 */
static void
w_comment(struct writer *w, const char *text)
{
	char tok[POLICY_REASON_MAX + 3];
	size_t i, n = 0;

	if (text == NULL || text[0] == '\0')
		return;
	tok[n++] = '(';
	for (i = 0; text[i] != '\0' && n < sizeof(tok) - 2; i++) {
		unsigned char c = (unsigned char)text[i];

		if (isalnum(c) || strchr(" .,:=/'-_", c) != NULL)
			tok[n++] = (char)c;
	}
	while (n > 1 && tok[n - 1] == ' ')
		n--;
	if (n == 1)
		return;
	tok[n++] = ')';
	tok[n] = '\0';
	w_token(w, tok);
}

/* ";" and the next result on its own line */
static void
w_method(struct writer *w, const char *method, const char *result)
{
	w_raw(w, ";\n\t");
	w_raw(w, method);
	w_raw(w, "=");
	w_raw(w, result);
}

static void
write_spf(struct writer *w, const struct spf_outcome *spf,
    const char *mailfrom)
{
	w_method(w, "spf", spf_result_name(spf->result));
	if (spf->helo_identity) {
		if (safe_name(spf->domain))
			w_prop(w, "smtp.helo", spf->domain);
	} else if (safe_address(mailfrom))
		w_prop(w, "smtp.mailfrom", mailfrom);
	else if (safe_name(spf->domain))
		w_prop(w, "smtp.mailfrom", spf->domain);
}

static void
write_dkim(struct writer *w, const struct dkim_outcome *dkim)
{
	const struct dkim_sig_outcome *s;
	size_t i;

	if (dkim->nsigs == 0) {
		w_method(w, "dkim", "none");
		return;
	}
	for (i = 0; i < dkim->nsigs && i < POLICY_DKIM_MAX_SIGS; i++) {
		s = &dkim->sig[i];
		w_method(w, "dkim", dkim_result_name(s->result));
		if (s->result != DKIM_RES_PASS)
			w_comment(w, s->reason);
		if (safe_name(s->domain))
			w_prop(w, "header.d", s->domain);
		if (safe_name(s->selector))
			w_prop(w, "header.s", s->selector);
	}
}

static const char *
disposition_name(enum dmarc_disposition d)
{
	switch (d) {
	case DMARC_DISP_REJECT:
		return "reject";
	case DMARC_DISP_QUARANTINE:
		return "quarantine";
	default:
		return "none";
	}
}

static void
write_dmarc(struct writer *w, const struct dmarc_outcome *dmarc)
{
	char c[64];

	w_method(w, "dmarc", dmarc_result_name(dmarc->result));
	if (safe_name(dmarc->policy) &&
	    snprintf_checked(c, sizeof(c), "p=%s dis=%s", dmarc->policy,
	    disposition_name(dmarc->disposition)) == 0)
		w_comment(w, c);
	if (safe_name(dmarc->from_domain))
		w_prop(w, "header.from", dmarc->from_domain);
}

int
policy_auth_results(const char *authserv_id, const struct spf_outcome *spf,
    const char *mailfrom, const struct dkim_outcome *dkim,
    const struct dmarc_outcome *dmarc, struct buf *out)
{
	struct writer w;
	struct buf b;
	int r;

	if (!safe_name(authserv_id))
		return -1;
	/* built aside: out is unchanged when it does not fit */
	buf_init(&b, out->max);
	w.b = &b;
	w.line = 0;
	w.err = 0;
	w_raw(&w, AR_NAME ": ");
	w_raw(&w, authserv_id);
	if (spf != NULL)
		write_spf(&w, spf, mailfrom);
	if (dkim != NULL)
		write_dkim(&w, dkim);
	if (dmarc != NULL)
		write_dmarc(&w, dmarc);
	if (spf == NULL && dkim == NULL && dmarc == NULL)
		w_raw(&w, "; none");	/* RFC 8601 2.2: no-result */
	w_raw(&w, "\n");
	r = w.err ? -1 : buf_append(out, b.data, b.len);
	buf_free(&b);
	return r;
}

/* ---- filtering ----------------------------------------------------- */

/*
 * Skip white space, line ends and (nested, escaped) comments from *p.
 * 0, or -1 when a comment never ends.
 */
static int
skip_cfws(const char **p, const char *end)
{
	const char *s = *p;
	int depth = 0;

	while (s < end) {
		if (depth > 0 && *s == '\\' && s + 1 < end)
			s += 2;
		else if (*s == '(') {
			depth++;
			s++;
		} else if (depth > 0 && *s == ')') {
			depth--;
			s++;
		} else if (depth > 0 || *s == ' ' || *s == '\t' ||
		    *s == '\r' || *s == '\n')
			s++;
		else
			break;
	}
	*p = s;
	return depth == 0 ? 0 : -1;
}

/*
 * Whether the Authentication-Results field value [p, end) names id as
 * its authserv-id: a token or a quoted-string after optional CFWS,
 * compared without regard to case.  A value whose authserv-id cannot
 * be read counts as ours: it is malformed, and a reader more lenient
 * than we are might take it for ours.
 */
static int
claims_id(const char *p, const char *end, const char *id)
{
	char got[256];
	size_t n = 0;

	if (skip_cfws(&p, end) < 0 || p >= end)
		return 1;
	if (*p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (*p == '\r' || *p == '\n')
				continue;	/* folded inside the quotes */
			if (n + 1 >= sizeof(got))
				return 0;	/* longer than ours */
			got[n++] = *p;
		}
		if (p >= end)
			return 1;
	} else {
		/* a token (RFC 2045): no space, control or tspecial */
		for (; p < end && (unsigned char)*p > ' ' && *p != 0x7f &&
		    strchr("()<>@,;:\\\"/[]?=", *p) == NULL; p++) {
			if (n + 1 >= sizeof(got))
				return 0;
			got[n++] = *p;
		}
		if (n == 0)
			return 1;
	}
	got[n] = '\0';
	return strcasecmp(got, id) == 0;
}

/* Whether the field starting at p (len bytes) is called name. */
static int
field_is(const char *p, size_t len, const char *name)
{
	size_t n = strlen(name), i;

	if (len <= n || strncasecmp(p, name, n) != 0)
		return 0;
	for (i = n; i < len && (p[i] == ' ' || p[i] == '\t'); i++)
		;
	return i < len && p[i] == ':';
}

/* length of the line at p, its line end included */
static size_t
line_len(const char *p, const char *end)
{
	const char *nl = memchr(p, '\n', (size_t)(end - p));

	return nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static int
is_empty_line(const char *p, const char *end)
{
	return (p < end && *p == '\n') ||
	    (end - p >= 2 && p[0] == '\r' && p[1] == '\n');
}

int
policy_header_filter(const char *hdr, size_t len, const char *authserv_id,
    struct buf *out, unsigned *nfrom)
{
	const char *p = hdr, *end = hdr + len, *f;
	size_t fl;

	*nfrom = 0;
	while (p < end && !is_empty_line(p, end)) {
		/* the field: its first line and the lines that continue it */
		f = p;
		p += line_len(p, end);
		while (p < end && (*p == ' ' || *p == '\t'))
			p += line_len(p, end);
		fl = (size_t)(p - f);
		if (field_is(f, fl, "From"))
			(*nfrom)++;
		if (field_is(f, fl, AR_NAME) &&
		    claims_id(memchr(f, ':', fl) + 1, f + fl, authserv_id))
			continue;
		if (buf_append(out, f, fl) < 0)
			return -1;
	}
	/* the empty line and whatever follows, as they were */
	if (p < end && buf_append(out, p, (size_t)(end - p)) < 0)
		return -1;
	return 0;
}
