/*
 * smtp_sender.c - which sender addresses an authenticated user owns
 * (DESIGN.md, Security rules): its own address, an alias whose
 * resolution reaches it, and a "+tag" variant of either.  Used for MAIL
 * FROM and for the header From: of submitted mail.
 *
 * Ownership follows db_resolve(), the same resolution that delivers mail,
 * so "owns" means "receives the replies", with one exception: a catch-all
 * ("@domain") never makes its target the owner of every unclaimed address
 * of the domain; only an alias row naming the address itself does.
 *
 * The account DB has no "aliases that reach user X" query in db.h, and
 * only smtpd/ may change here, so the alias rows are read with the
 * read-only db_admin_alias_list(): for the domain of one address when
 * checking, for every domain only to list the allowed addresses in a
 * refusal.  Both are bounded (SENDER_MAX_ALIASES).
 */
#include "smtpd.h"
#include "../common/db_admin.h"
#include "../common/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* db_resolve() has the delimiter fixed; there is no config key for it. */
#define SENDER_DELIM '+'
/* Alias rows looked at when listing what a user may send as. */
#define SENDER_MAX_ALIASES 500

/* addr without its "+tag" into base; 0 if it had none. */
static int
sender_base(const char *addr, char *base, size_t basesz)
{
	const char *at = strrchr(addr, '@');
	const char *plus = at ? memchr(addr, SENDER_DELIM, (size_t)(at - addr))
	    : NULL;

	if (plus == NULL || plus == addr)
		return 0;
	return snprintf_checked(base, basesz, "%.*s%s", (int)(plus - addr),
	    addr, at) == 0;
}

/* 1 if resolving a delivers to user, 0 if not, -1 on a lookup error. */
static int
resolves_to(struct db *db, const struct mailaddr *a, const char *user)
{
	struct resolve_result res;
	enum resolve_status st;
	size_t i;
	int r = 0;

	st = db_resolve(db, a, &res);
	if (st == RESOLVE_ERROR)
		return -1;
	if (st != RESOLVE_OK)
		return 0;
	for (i = 0; i < res.nlocal && !r; i++)
		r = strcasecmp(res.local[i].address, user) == 0;
	resolve_result_free(&res);
	return r;
}

/* 1 if an alias row has source addr (or its base), 0 if not, -1 error. */
static int
is_alias_source(struct db *db, const char *domain, const char *addr,
    const char *base)
{
	struct db_alias_info *list;
	const char *err;
	size_t n, i;
	int r = 0;

	if (db_admin_alias_list(db, domain, &list, &n, &err) < 0)
		return -1;
	for (i = 0; i < n && !r; i++)
		r = strcasecmp(list[i].source, addr) == 0 ||
		    (base[0] && strcasecmp(list[i].source, base) == 0);
	free(list);
	return r;
}

int
smtp_sender_owned(struct smtp_session *s, const struct mailaddr *a)
{
	struct smtpd *d = s->d;
	char addr[ADDR_MAX], base[ADDR_MAX] = "";
	int r;

	if (a->local[0] == '\0' || a->domain[0] == '\0' ||
	    addr_format(a, addr, sizeof(addr)) < 0)
		return 0;
	if (!sender_base(addr, base, sizeof(base)))
		base[0] = '\0';
	if (strcasecmp(addr, s->user) == 0 ||
	    (base[0] && strcasecmp(base, s->user) == 0))
		return 1;
	r = db_domain_is_local(d->db, a->domain);
	if (r <= 0)
		return r;
	r = resolves_to(d->db, a, s->user);
	if (r <= 0)
		return r;
	return is_alias_source(d->db, a->domain, addr, base);
}

/*
 * "a@x, b@x" for a refusal: the user, then each alias that reaches it,
 * cut with ", ..." when it does not fit.  Best effort: a lookup error
 * just ends the list.
 */
void
smtp_sender_allowed(struct smtp_session *s, char *out, size_t outsz)
{
	struct db_alias_info *list;
	const char *err;
	size_t n, i, len;
	const char *last = "";

	if (strlcpy_checked(out, s->user, outsz) < 0 ||
	    db_admin_alias_list(s->d->db, NULL, &list, &n, &err) < 0)
		return;
	for (i = 0; i < n && i < SENDER_MAX_ALIASES; i++) {
		const char *src = list[i].source, *why;
		struct mailaddr a;

		if (src[0] == '@' || !list[i].local_target ||
		    strcasecmp(src, last) == 0)
			continue;
		last = src;
		if (strcasecmp(src, s->user) == 0 ||
		    addr_parse_plain(src, &a, &why) < 0 ||
		    resolves_to(s->d->db, &a, s->user) != 1)
			continue;
		len = strlen(out);
		/* room for ", " src and a final ", ..." */
		if (len + 2 + strlen(src) + 5 >= outsz) {
			(void)snprintf_checked(out + len, outsz - len, ", ...");
			break;
		}
		(void)snprintf_checked(out + len, outsz - len, ", %s", src);
	}
	free(list);
}
