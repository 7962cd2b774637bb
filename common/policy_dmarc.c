/*
 * policy_dmarc.c - DMARC (RFC 7489) on the header From domain of mail
 * from outside: find the record, check that SPF or DKIM passed for an
 * aligned domain, and turn the published policy into a disposition.
 *
 * libopendmarc 1.4 parses the record (tags, defaults, rua).  The rest is
 * here, because the library gets it wrong: its organisational domain
 * lookup is case-sensitive, empty for a TLD the list does not name and
 * off by one label under wildcard rules, and its alignment check finds
 * a.co.uk aligned with b.co.uk and x.example.com strictly aligned with
 * y.example.com; it does not apply pct; its DNS lookup takes the first
 * TXT record that merely contains "v=DMARC".  So the public suffix list
 * (Debian's publicsuffix package) is read here once, the TXT records
 * are fetched here with a per-call resolver state, and alignment, sp
 * and pct are decided here.  Thread-safe: one-time set-up under
 * pthread_once, then read only.  Never logs, never touches the database.
 */
#include "policy.h"

#include <arpa/nameser.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opendmarc/dmarc.h>

#define PSL_PATH "/usr/share/publicsuffix/public_suffix_list.dat"
#define PSL_FILE_MAX (8 * 1024 * 1024)
#define DNS_ANSWER_MAX 65536
/* A longer record is not one anybody publishes: permerror. */
#define RECORD_MAX 2048
#define DOMAIN_MAX 253

/* ---- the public suffix list ---------------------------------------- */

#define PSL_RULE 1		/* "co.uk" */
#define PSL_WILD 2		/* "*.ck": stored as "ck" */
#define PSL_EXC 4		/* "!www.ck": stored as "www.ck" */

struct psl_slot {
	const char *name;	/* NULL: empty */
	unsigned flags;
};

static pthread_once_t psl_once = PTHREAD_ONCE_INIT;
static struct {
	char *text;		/* the file; rule names end in NULs */
	struct psl_slot *slot;
	size_t mask;		/* slots - 1, a power of two minus one */
	int ok;
} psl;

static uint32_t
name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* The slot of name (n bytes), or the empty slot where it would go. */
static struct psl_slot *
psl_find(const char *name, size_t n)
{
	size_t i = name_hash(name, n) & psl.mask;

	while (psl.slot[i].name != NULL) {
		if (strlen(psl.slot[i].name) == n &&
		    memcmp(psl.slot[i].name, name, n) == 0)
			break;
		i = (i + 1) & psl.mask;
	}
	return &psl.slot[i];
}

static unsigned
psl_flags(const char *name, size_t n)
{
	struct psl_slot *s = psl_find(name, n);

	return s->name != NULL ? s->flags : 0;
}

static char *
read_file(const char *path, size_t max, size_t *len)
{
	struct stat st;
	char *p = NULL;
	size_t got = 0;
	ssize_t r;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > max ||
	    (p = malloc((size_t)st.st_size + 1)) == NULL)
		goto fail;
	while (got < (size_t)st.st_size) {
		r = read(fd, p + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	p[got] = '\0';
	close(fd);
	*len = got;
	return p;
fail:
	free(p);
	close(fd);
	return NULL;
}

/*
 * Read the list: one rule per line up to the first white space, "//"
 * comments.  Rules in Unicode are skipped: the domains we judge come
 * from mail in A-label form, which they would never match.
 */
static void
psl_load(void)
{
	size_t len, nrules = 0, nslots, i;
	char *line, *next, *name;

	if ((psl.text = read_file(PSL_PATH, PSL_FILE_MAX, &len)) == NULL)
		return;
	for (i = 0; i < len; i++)
		nrules += psl.text[i] == '\n';
	for (nslots = 1024; nslots < 2 * (nrules + 1); nslots *= 2)
		;
	if ((psl.slot = calloc(nslots, sizeof(*psl.slot))) == NULL)
		return;
	psl.mask = nslots - 1;
	for (line = psl.text; line < psl.text + len; line = next) {
		unsigned flag = PSL_RULE;
		struct psl_slot *s;
		size_t n;

		next = line + strcspn(line, "\n");
		if (*next == '\n')
			*next++ = '\0';
		line[strcspn(line, " \t\r")] = '\0';
		if (line[0] == '\0' || strncmp(line, "//", 2) == 0)
			continue;
		name = line;
		if (name[0] == '!') {
			flag = PSL_EXC;
			name++;
		} else if (strncmp(name, "*.", 2) == 0) {
			flag = PSL_WILD;
			name += 2;
		}
		for (n = 0; name[n] != '\0'; n++) {
			if ((unsigned char)name[n] >= 0x80)
				break;
			name[n] = (char)tolower((unsigned char)name[n]);
		}
		if (name[n] != '\0' || n == 0)
			continue;
		s = psl_find(name, n);
		s->name = name;
		s->flags |= flag;
	}
	psl.ok = 1;
}

/*
 * A domain as DMARC compares it: lower case, no trailing dot, letters,
 * digits, '-' and '_' in labels of 1 to 63 octets.  0 or -1.
 */
static int
normalize(const char *in, char *out, size_t outsz)
{
	size_t n = strlen(in), i, label = 0;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > DOMAIN_MAX || n >= outsz)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if (isalnum(c) || c == '-' || c == '_') {
			if (++label > 63)
				return -1;
		} else
			return -1;
		out[i] = (char)tolower(c);
	}
	if (label == 0)
		return -1;
	out[n] = '\0';
	return 0;
}

int
policy_org_domain(const char *domain, char *out, size_t outsz)
{
	char d[DOMAIN_MAX + 1];
	size_t lab[DOMAIN_MAX / 2 + 1], n = 0, i, len, ps;
	const char *s;

	pthread_once(&psl_once, psl_load);
	if (!psl.ok || normalize(domain, d, sizeof(d)) < 0)
		return -1;
	len = strlen(d);
	/* lab[i]: where the suffix of the last n - i labels starts */
	for (s = d; s != NULL; s = strchr(s, '.')) {
		if (*s == '.')
			s++;
		lab[n++] = (size_t)(s - d);
	}
	/* an exception rule prevails over every other rule */
	for (i = 0; i < n; i++)
		if (psl_flags(d + lab[i], len - lab[i]) & PSL_EXC) {
			ps = i + 1;
			goto found;
		}
	/* else the longest matching rule; none: "*" (the last label) */
	ps = n - 1;
	for (i = 0; i < n; i++)
		if ((psl_flags(d + lab[i], len - lab[i]) & PSL_RULE) ||
		    (i + 1 < n &&
		    (psl_flags(d + lab[i + 1], len - lab[i + 1]) & PSL_WILD))) {
			ps = i;
			break;
		}
found:
	/* the registrable domain: one label more than the suffix */
	return strlcpy_checked(out, d + lab[ps > 0 ? ps - 1 : 0], outsz);
}

/* strict: the same domain; relaxed: the same organisational domain */
static int
aligned(const char *a, const char *b, int strict)
{
	char na[DOMAIN_MAX + 1], nb[DOMAIN_MAX + 1];
	char oa[DOMAIN_MAX + 1], ob[DOMAIN_MAX + 1];

	if (normalize(a, na, sizeof(na)) < 0 ||
	    normalize(b, nb, sizeof(nb)) < 0)
		return 0;
	if (strcmp(na, nb) == 0)
		return 1;
	if (strict || policy_org_domain(na, oa, sizeof(oa)) < 0 ||
	    policy_org_domain(nb, ob, sizeof(ob)) < 0)
		return 0;
	return strcmp(oa, ob) == 0;
}

/* ---- the record in DNS --------------------------------------------- */

/* MULTI: more than one DMARC record, which ends discovery (6.6.3 5) */
enum lookup { LOOKUP_FOUND, LOOKUP_NONE, LOOKUP_MULTI, LOOKUP_TEMP };

/*
 * RFC 7489 6.6.3: only records that start with "v=DMARC1" count (the
 * "v" case-insensitive, the value exactly, white space around "=").
 */
static int
is_dmarc1(const char *r, size_t len)
{
	size_t i = 0;

	if (len < 1 || (r[0] != 'v' && r[0] != 'V'))
		return 0;
	for (i = 1; i < len && (r[i] == ' ' || r[i] == '\t'); i++)
		;
	if (i >= len || r[i++] != '=')
		return 0;
	for (; i < len && (r[i] == ' ' || r[i] == '\t'); i++)
		;
	if (len - i < 6 || memcmp(r + i, "DMARC1", 6) != 0)
		return 0;
	for (i += 6; i < len && (r[i] == ' ' || r[i] == '\t'); i++)
		;
	return i == len || r[i] == ';';
}

/*
 * The one DMARC record of name in a DNS answer.  Its character-strings
 * joined; NULs become ^A so that the record reads as malformed.
 */
static enum lookup
pick_record(const unsigned char *ans, int alen, char *rec, size_t recsz)
{
	char txt[RECORD_MAX + 2];
	ns_msg msg;
	ns_rr rr;
	int i, n, found = 0;

	if (ns_initparse(ans, alen, &msg) < 0)
		return LOOKUP_TEMP;
	n = ns_msg_count(msg, ns_s_an);
	for (i = 0; i < n; i++) {
		const unsigned char *p, *end;
		size_t tl = 0;

		if (ns_parserr(&msg, ns_s_an, i, &rr) < 0)
			return LOOKUP_TEMP;
		if (ns_rr_type(rr) != ns_t_txt || ns_rr_class(rr) != ns_c_in)
			continue;
		p = ns_rr_rdata(rr);
		end = p + ns_rr_rdlen(rr);
		while (p < end && tl < sizeof(txt) - 1) {
			size_t l = *p++, k;

			if (l > (size_t)(end - p))
				l = (size_t)(end - p);
			for (k = 0; k < l && tl < sizeof(txt) - 1; k++)
				txt[tl++] = p[k] != '\0' ? (char)p[k] : '\001';
			p += l;
		}
		txt[tl] = '\0';
		if (!is_dmarc1(txt, tl))
			continue;
		if (found++ > 0)
			return LOOKUP_MULTI;
		if (strlcpy_checked(rec, txt, recsz) < 0)
			rec[0] = '\001';	/* too long: malformed */
	}
	return found ? LOOKUP_FOUND : LOOKUP_NONE;
}

static enum lookup
lookup(const char *domain, char *rec, size_t recsz)
{
	char name[DOMAIN_MAX + 16];
	struct __res_state rs;
	unsigned char *ans;
	enum lookup r;
	int n, herr;

	if (snprintf_checked(name, sizeof(name), "_dmarc.%s.", domain) < 0)
		return LOOKUP_NONE;
	if ((ans = malloc(DNS_ANSWER_MAX)) == NULL)
		return LOOKUP_TEMP;
	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0) {
		res_nclose(&rs);
		free(ans);
		return LOOKUP_TEMP;
	}
	n = res_nquery(&rs, name, ns_c_in, ns_t_txt, ans, DNS_ANSWER_MAX);
	herr = rs.res_h_errno;
	res_nclose(&rs);
	if (n < 0) {
		free(ans);
		/* NXDOMAIN or no TXT: no record; the rest is temporary */
		return herr == HOST_NOT_FOUND || herr == NO_DATA ?
		    LOOKUP_NONE : LOOKUP_TEMP;
	}
	r = pick_record(ans, n > DNS_ANSWER_MAX ? DNS_ANSWER_MAX : n, rec,
	    recsz);
	free(ans);
	return r;
}

/* ---- evaluation ---------------------------------------------------- */

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_ok;

static void
lib_init(void)
{
	OPENDMARC_LIB_T l;

	/* no suffix list for the library: it does no alignment for us */
	memset(&l, 0, sizeof(l));
	l.tld_type = OPENDMARC_TLD_TYPE_NONE;
	lib_ok = opendmarc_policy_library_init(&l) == DMARC_PARSE_OKAY;
}

const char *
dmarc_result_name(enum dmarc_result r)
{
	switch (r) {
	case DMARC_RES_NONE:
		return "none";
	case DMARC_RES_PASS:
		return "pass";
	case DMARC_RES_FAIL:
		return "fail";
	case DMARC_RES_TEMPERROR:
		return "temperror";
	case DMARC_RES_PERMERROR:
		return "permerror";
	}
	return "temperror";
}

static const char *
policy_name(int p)
{
	switch (p) {
	case DMARC_RECORD_P_REJECT:
		return "reject";
	case DMARC_RECORD_P_QUARANTINE:
		return "quarantine";
	default:
		return "none";
	}
}

static void
outcome_init(struct dmarc_outcome *out, const char *from_domain)
{
	memset(out, 0, sizeof(*out));
	out->result = DMARC_RES_NONE;
	out->disposition = DMARC_DISP_NONE;
	if (normalize(from_domain, out->from_domain,
	    sizeof(out->from_domain)) < 0)
		(void)strlcpy_checked(out->from_domain, from_domain,
		    sizeof(out->from_domain));
}

/*
 * The report addresses, comma-separated; an address with bytes that
 * could end a header or a list (controls, space, ',' ';') is dropped,
 * and so is one that does not fit.
 */
static void
copy_rua(DMARC_POLICY_T *pctx, char *out, size_t outsz)
{
	u_char **list, **u;
	size_t n = 0, l, i;

	out[0] = '\0';
	list = opendmarc_policy_fetch_rua(pctx, NULL, 0, 1);
	for (u = list; u != NULL && *u != NULL; u++) {
		const char *s = (const char *)*u;

		l = strlen(s);
		if (l == 0 || strcspn(s, ",; \t") != l)
			continue;
		for (i = 0; i < l; i++)
			if ((unsigned char)s[i] <= 0x20 ||
			    (unsigned char)s[i] >= 0x7f)
				l = 0;
		if (l == 0 || n + (n > 0) + l + 1 > outsz)
			continue;
		if (n > 0)
			out[n++] = ',';
		memcpy(out + n, s, l);
		n += l;
		out[n] = '\0';
	}
}

static int
dkim_aligned(const struct dkim_outcome *dkim, const char *from, int strict)
{
	size_t i;

	for (i = 0; dkim != NULL && i < dkim->nsigs &&
	    i < POLICY_DKIM_MAX_SIGS; i++)
		if (dkim->sig[i].result == DKIM_RES_PASS &&
		    aligned(dkim->sig[i].domain, from, strict))
			return 1;
	return 0;
}

/* RFC 7489 6.6.4: a message not sampled by pct gets the next policy down */
static enum dmarc_disposition
sampled(enum dmarc_disposition d, int pct)
{
	if (pct >= 100 || (pct > 0 && (int)arc4random_uniform(100) < pct))
		return d;
	return d == DMARC_DISP_REJECT ? DMARC_DISP_QUARANTINE : DMARC_DISP_NONE;
}

int
policy_dmarc_eval_record(const char *record, const char *record_domain,
    const char *from_domain, const struct spf_outcome *spf,
    const struct dkim_outcome *dkim, struct dmarc_outcome *out)
{
	char from[DOMAIN_MAX + 1], rdom[DOMAIN_MAX + 1];
	DMARC_POLICY_T *pctx;
	int st, p = 0, sp = 0, pct = 100, adkim = 0, aspf = 0;
	size_t i, len = strlen(record);

	outcome_init(out, from_domain);
	if (normalize(from_domain, from, sizeof(from)) < 0 ||
	    normalize(record_domain, rdom, sizeof(rdom)) < 0) {
		out->result = DMARC_RES_PERMERROR;
		return 0;
	}
	if (!is_dmarc1(record, len))
		return 0;		/* not a DMARC record: none */
	out->result = DMARC_RES_PERMERROR;
	/* where it was found, for aggregate reports (db_dmarc.c) */
	(void)strlcpy_checked(out->record_domain, rdom,
	    sizeof(out->record_domain));
	(void)policy_org_domain(from, out->org_domain, sizeof(out->org_domain));
	if (len > RECORD_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)record[i] < 0x20 && record[i] != '\t')
			return 0;
	pthread_once(&lib_once, lib_init);
	if (!lib_ok || (pctx = opendmarc_policy_connect_init(
	    (u_char *)"0.0.0.0", 0)) == NULL) {
		out->result = DMARC_RES_TEMPERROR;
		return -1;
	}
	st = opendmarc_policy_store_dmarc(pctx, (u_char *)record,
	    (u_char *)rdom, NULL);
	if (st == DMARC_PARSE_OKAY) {
		(void)opendmarc_policy_fetch_p(pctx, &p);
		(void)opendmarc_policy_fetch_sp(pctx, &sp);
		(void)opendmarc_policy_fetch_pct(pctx, &pct);
	}
	if (st == DMARC_PARSE_OKAY || st == DMARC_PARSE_ERROR_NO_REQUIRED_P) {
		(void)opendmarc_policy_fetch_adkim(pctx, &adkim);
		(void)opendmarc_policy_fetch_aspf(pctx, &aspf);
		copy_rua(pctx, out->rua, sizeof(out->rua));
	}
	opendmarc_policy_connect_shutdown(pctx);
	/*
	 * RFC 7489 6.6.3: no valid p= but a report address: as p=none;
	 * otherwise no DMARC processing (reported as permerror).
	 */
	if (st == DMARC_PARSE_ERROR_NO_REQUIRED_P && out->rua[0] != '\0') {
		p = DMARC_RECORD_P_NONE;
		sp = 0;
	} else if (st != DMARC_PARSE_OKAY)
		return 0;
	/* the record as published, for aggregate reports (db_dmarc.c) */
	(void)strlcpy_checked(out->p, policy_name(p), sizeof(out->p));
	(void)strlcpy_checked(out->sp, policy_name(sp != 0 ? sp : p),
	    sizeof(out->sp));
	out->adkim = adkim == DMARC_RECORD_A_STRICT ? 's' : 'r';
	out->aspf = aspf == DMARC_RECORD_A_STRICT ? 's' : 'r';
	out->pct = pct;
	/* sp= only for a subdomain judged by its organisation's record */
	if (strcmp(rdom, from) != 0 && sp != 0)
		p = sp;
	(void)strlcpy_checked(out->policy, policy_name(p), sizeof(out->policy));

	out->spf_aligned = spf != NULL && spf->result == SPF_RES_PASS &&
	    aligned(spf->domain, from, aspf == DMARC_RECORD_A_STRICT);
	out->dkim_aligned = dkim_aligned(dkim, from,
	    adkim == DMARC_RECORD_A_STRICT);
	if (out->spf_aligned || out->dkim_aligned) {
		out->result = DMARC_RES_PASS;
		return 0;
	}
	out->result = DMARC_RES_FAIL;
	if (p == DMARC_RECORD_P_REJECT)
		out->disposition = sampled(DMARC_DISP_REJECT, pct);
	else if (p == DMARC_RECORD_P_QUARANTINE)
		out->disposition = sampled(DMARC_DISP_QUARANTINE, pct);
	/* pct let a lighter disposition apply: reports say sampled_out */
	out->sampled_out = (p == DMARC_RECORD_P_REJECT &&
	    out->disposition != DMARC_DISP_REJECT) ||
	    (p == DMARC_RECORD_P_QUARANTINE &&
	    out->disposition != DMARC_DISP_QUARANTINE);
	return 0;
}

/*
 * RFC 7489 6.6.3: the record of the From domain, else (none there, not
 * even two) of its organisational domain.  *where is set to the domain
 * that had it.  Never LOOKUP_MULTI: two records are no DMARC at all.
 */
static enum lookup
discover(const char *from, char *rec, size_t recsz, char *where,
    size_t wheresz)
{
	char org[DOMAIN_MAX + 1];
	enum lookup r;

	(void)strlcpy_checked(where, from, wheresz);
	if ((r = lookup(from, rec, recsz)) == LOOKUP_MULTI)
		return LOOKUP_NONE;
	if (r != LOOKUP_NONE)
		return r;
	if (policy_org_domain(from, org, sizeof(org)) < 0)
		return LOOKUP_TEMP;
	if (strcmp(org, from) == 0)
		return LOOKUP_NONE;
	(void)strlcpy_checked(where, org, wheresz);
	r = lookup(org, rec, recsz);
	return r == LOOKUP_MULTI ? LOOKUP_NONE : r;
}

int
policy_dmarc_eval(const char *from_domain, const char *ip,
    const struct spf_outcome *spf, const struct dkim_outcome *dkim,
    struct dmarc_outcome *out)
{
	char from[DOMAIN_MAX + 1], where[DOMAIN_MAX + 1], org[DOMAIN_MAX + 1];
	char rec[RECORD_MAX + 2];

	outcome_init(out, from_domain);
	if (normalize(from_domain, from, sizeof(from)) < 0) {
		out->result = DMARC_RES_PERMERROR;
		return 0;
	}
	/* without the suffix list no alignment can be judged */
	if (policy_org_domain(from, org, sizeof(org)) < 0) {
		out->result = DMARC_RES_TEMPERROR;
		return -1;
	}
	switch (discover(from, rec, sizeof(rec), where, sizeof(where))) {
	case LOOKUP_NONE:
	case LOOKUP_MULTI:
		return 0;
	case LOOKUP_TEMP:
		out->result = DMARC_RES_TEMPERROR;
		return 0;
	case LOOKUP_FOUND:
		break;
	}
	return policy_dmarc_eval_record(rec, where, from, spf, dkim, out);
}

int
policy_dmarc_published(const char *domain)
{
	char d[DOMAIN_MAX + 1], where[DOMAIN_MAX + 1], rec[RECORD_MAX + 2];

	if (normalize(domain, d, sizeof(d)) < 0)
		return 0;
	switch (discover(d, rec, sizeof(rec), where, sizeof(where))) {
	case LOOKUP_FOUND:
		return 1;
	case LOOKUP_NONE:
		return 0;
	default:
		return -1;
	}
}
