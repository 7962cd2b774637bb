/*
 * smtp_parse.c - SMTP command line, MAIL/RCPT argument parsing (see
 * smtp_parse.h).  Pure: no sockets, no session, no database.
 */
#include "smtp_parse.h"

#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "HELO", SMTP_HELO }, { "EHLO", SMTP_EHLO }, { "MAIL", SMTP_MAIL },
	{ "RCPT", SMTP_RCPT }, { "DATA", SMTP_DATA }, { "BDAT", SMTP_BDAT },
	{ "RSET", SMTP_RSET }, { "NOOP", SMTP_NOOP }, { "QUIT", SMTP_QUIT },
	{ "VRFY", SMTP_VRFY }, { "EXPN", SMTP_EXPN }, { "HELP", SMTP_HELP },
	{ "STARTTLS", SMTP_STARTTLS }, { "AUTH", SMTP_AUTH },
};

int
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t vlen = 0, i;

	cmd->verb = SMTP_UNKNOWN;
	cmd->arg = line + len;
	cmd->arglen = 0;
	if (memchr(line, '\0', len) != NULL)
		return -1;
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    strncasecmp(verbs[i].name, line, vlen) == 0) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	if (cmd->verb == SMTP_UNKNOWN)
		return -1;
	i = vlen;
	while (i < len && line[i] == ' ')
		i++;
	cmd->arg = line + i;
	cmd->arglen = len - i;
	while (cmd->arglen > 0 && (cmd->arg[cmd->arglen - 1] == ' ' ||
	    cmd->arg[cmd->arglen - 1] == '\t'))
		cmd->arglen--;
	return 0;
}

/* Skip "FROM:" / "TO:" (case-insensitive) and blanks after it. */
static int
skip_keyword(const char **p, size_t *len, const char *kw)
{
	size_t kl = strlen(kw);

	if (*len < kl || strncasecmp(*p, kw, kl) != 0)
		return -1;
	*p += kl;
	*len -= kl;
	while (*len > 0 && **p == ' ') {
		(*p)++;
		(*len)--;
	}
	return 0;
}

/* Next "KEY[=VALUE]" parameter; 0 found, 1 none left. */
static int
next_param(const char **p, size_t *len, const char **k, size_t *klen,
    const char **v, size_t *vlen)
{
	const char *s, *e, *eq;

	while (*len > 0 && **p == ' ') {
		(*p)++;
		(*len)--;
	}
	if (*len == 0)
		return 1;
	s = *p;
	e = memchr(s, ' ', *len);
	if (e == NULL)
		e = s + *len;
	eq = memchr(s, '=', (size_t)(e - s));
	*k = s;
	if (eq != NULL) {
		*klen = (size_t)(eq - s);
		*v = eq + 1;
		*vlen = (size_t)(e - eq - 1);
	} else {
		*klen = (size_t)(e - s);
		*v = NULL;
		*vlen = 0;
	}
	*len -= (size_t)(e - s);
	*p = e;
	return 0;
}

static int
keyis(const char *k, size_t klen, const char *name)
{
	return strlen(name) == klen && strncasecmp(k, name, klen) == 0;
}

static int
valis(const char *v, size_t vlen, const char *name)
{
	return v != NULL && strlen(name) == vlen && strncasecmp(v, name, vlen) == 0;
}

int
smtp_parse_mail(const char *arg, size_t len, struct smtp_mail_args *out,
    int *code, const char **why)
{
	const char *p = arg, *k, *v, *awhy;
	size_t n = len, used, klen, vlen;

	memset(out, 0, sizeof(*out));
	if (skip_keyword(&p, &n, "FROM:") < 0) {
		*code = 501;
		*why = "5.5.4 Syntax: MAIL FROM:<address>";
		return -1;
	}
	if (addr_parse_path(p, n, ADDR_ALLOW_EMPTY | ADDR_UTF8, &out->from,
	    &used, &awhy) < 0) {
		*code = 501;
		*why = "5.1.7 Bad sender address syntax";
		return -1;
	}
	p += used;
	n -= used;
	if (n > 0 && *p != ' ') {
		*code = 501;
		*why = "5.1.7 Bad sender address syntax";
		return -1;
	}
	while (next_param(&p, &n, &k, &klen, &v, &vlen) == 0) {
		if (keyis(k, klen, "SIZE")) {
			uint64_t sz = 0;
			size_t i;

			if (v == NULL || vlen == 0 || vlen > 19)
				goto badvalue;
			for (i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9')
					goto badvalue;
				sz = sz * 10 + (uint64_t)(v[i] - '0');
			}
			out->has_size = 1;
			out->size = sz;
		} else if (keyis(k, klen, "BODY")) {
			if (valis(v, vlen, "7BIT"))
				out->body = SMTP_BODY_7BIT;
			else if (valis(v, vlen, "8BITMIME"))
				out->body = SMTP_BODY_8BITMIME;
			else
				goto badvalue;
		} else if (keyis(k, klen, "SMTPUTF8")) {
			if (v != NULL)
				goto badvalue;
			out->smtputf8 = 1;
		} else if (keyis(k, klen, "AUTH")) {
			/* RFC 4954 5: accepted and not trusted. */
		} else {
			*code = 555;
			*why = "5.5.4 Unsupported MAIL parameter";
			return -1;
		}
	}
	if (!out->smtputf8 && (addr_is_8bit(out->from.local) ||
	    addr_is_8bit(out->from.domain))) {
		*code = 553;
		*why = "5.6.7 Non-ASCII sender address requires SMTPUTF8";
		return -1;
	}
	return 0;
badvalue:
	*code = 501;
	*why = "5.5.4 Invalid MAIL parameter value";
	return -1;
}

int
smtp_parse_rcpt(const char *arg, size_t len, int smtputf8,
    struct smtp_rcpt_args *out, int *code, const char **why)
{
	const char *p = arg, *k, *v, *awhy;
	size_t n = len, used, klen, vlen;

	memset(out, 0, sizeof(*out));
	if (skip_keyword(&p, &n, "TO:") < 0) {
		*code = 501;
		*why = "5.5.4 Syntax: RCPT TO:<address>";
		return -1;
	}
	/* RFC 5321 4.5.1: <Postmaster> without a domain must be accepted. */
	if (n >= 12 && strncasecmp(p, "<postmaster>", 12) == 0 &&
	    (n == 12 || p[12] == ' ')) {
		memcpy(out->to.local, "postmaster", 11);
		out->to.domain[0] = '\0';
		used = 12;
	} else if (addr_parse_path(p, n, ADDR_UTF8, &out->to, &used,
	    &awhy) < 0) {
		*code = 501;
		*why = "5.1.3 Bad recipient address syntax";
		return -1;
	}
	p += used;
	n -= used;
	if (n > 0 && *p != ' ') {
		*code = 501;
		*why = "5.1.3 Bad recipient address syntax";
		return -1;
	}
	if (next_param(&p, &n, &k, &klen, &v, &vlen) == 0) {
		*code = 555;
		*why = "5.5.4 Unsupported RCPT parameter";
		return -1;
	}
	if (!smtputf8 && (addr_is_8bit(out->to.local) ||
	    addr_is_8bit(out->to.domain))) {
		*code = 553;
		*why = "5.6.7 Non-ASCII recipient address requires SMTPUTF8";
		return -1;
	}
	return 0;
}
