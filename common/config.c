/*
 * config.c - parser for buzon.conf (see config.h).  Line oriented:
 * "key = value", "# comment", "[section]".  Dispatch is a table of
 * (section, key, type, offset); nothing here touches the network.
 */
#include "config.h"
#include "buf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum section { SEC_TOP, SEC_SMTPD, SEC_IMAPD, SEC_POP3D, SEC_POLICY, SEC_NONE };

enum keytype {
	KT_STR,		/* char[] of size .size */
	KT_SIZE,	/* uint64_t bytes */
	KT_DURATION,	/* uint64_t seconds */
	KT_ONOFF,	/* int */
	KT_UINT,	/* unsigned, 1..1000000 or 1..keydef.max */
	KT_LISTEN,	/* struct listen_set */
	KT_SPFREJECT,	/* int */
	KT_HOSTPORT,	/* char[], empty or host:port */
	KT_IPFAMILY,	/* int: enum ip_family */
	KT_IP4,		/* char[], empty or an IPv4 address */
	KT_IP6,		/* char[], empty or an IPv6 address */
	KT_DNSBLAT,	/* int: 1 greeting, 0 rcpt */
};

struct keydef {
	enum section sec;
	const char *name;
	enum keytype type;
	size_t off;
	size_t size;
	unsigned max;	/* KT_UINT: upper bound when not 0 */
};

#define F(field) FMAX(field, 0)
#define FMAX(field, max) offsetof(struct config, field), \
	sizeof(((struct config *)0)->field), (max)

static const struct keydef keys[] = {
	{ SEC_TOP, "hostname", KT_STR, F(hostname) },
	{ SEC_TOP, "state_dir", KT_STR, F(state_dir) },
	{ SEC_TOP, "database", KT_STR, F(database) },
	{ SEC_TOP, "mail_dir", KT_STR, F(mail_dir) },
	{ SEC_TOP, "queue_dir", KT_STR, F(queue_dir) },
	{ SEC_TOP, "user", KT_STR, F(user) },
	{ SEC_TOP, "tls_cert", KT_STR, F(tls_cert) },
	{ SEC_TOP, "tls_key", KT_STR, F(tls_key) },
	{ SEC_TOP, "public_ip", KT_STR, F(public_ip) },
	{ SEC_TOP, "public_ip6", KT_STR, F(public_ip6) },
	{ SEC_TOP, "max_connections_per_ip", KT_UINT, F(max_connections_per_ip) },

	{ SEC_SMTPD, "listen", KT_LISTEN, F(smtpd_listen) },
	{ SEC_SMTPD, "max_message_size", KT_SIZE, F(max_message_size) },
	{ SEC_SMTPD, "relayhost", KT_HOSTPORT, F(relayhost) },
	{ SEC_SMTPD, "relayhost_user", KT_STR, F(relayhost_user) },
	{ SEC_SMTPD, "relayhost_password", KT_STR, F(relayhost_password) },
	{ SEC_SMTPD, "relayhost_password_file", KT_STR, F(relayhost_password_file) },
	{ SEC_SMTPD, "relayhost_tls_verify", KT_ONOFF, F(relayhost_tls_verify) },
	{ SEC_SMTPD, "outbound_ip_family", KT_IPFAMILY, F(outbound_ip_family) },
	{ SEC_SMTPD, "outbound_ip", KT_IP4, F(outbound_ip) },
	{ SEC_SMTPD, "outbound_ip6", KT_IP6, F(outbound_ip6) },
	{ SEC_SMTPD, "outbound_connections", KT_UINT,
	    FMAX(outbound_connections, CONFIG_MAX_OUTBOUND) },
	{ SEC_SMTPD, "queue_lifetime", KT_DURATION, F(queue_lifetime) },
	{ SEC_SMTPD, "max_recipients", KT_UINT, F(max_recipients) },
	{ SEC_SMTPD, "delivery_threads", KT_UINT, F(delivery_threads) },

	{ SEC_IMAPD, "listen", KT_LISTEN, F(imapd_listen) },
	{ SEC_IMAPD, "autologout", KT_DURATION, F(imapd_autologout) },
	{ SEC_IMAPD, "max_connections_per_user_ip", KT_UINT, F(imapd_max_user_ip) },
	{ SEC_IMAPD, "workers", KT_UINT, FMAX(imapd_workers, CONFIG_MAX_WORKERS) },

	{ SEC_POP3D, "listen", KT_LISTEN, F(pop3d_listen) },
	{ SEC_POP3D, "idle_timeout", KT_DURATION, F(pop3d_idle_timeout) },

	{ SEC_POLICY, "spf", KT_ONOFF, F(spf) },
	{ SEC_POLICY, "dkim_verify", KT_ONOFF, F(dkim_verify) },
	{ SEC_POLICY, "dmarc", KT_ONOFF, F(dmarc) },
	{ SEC_POLICY, "spf_reject", KT_SPFREJECT, F(spf_reject_fail) },
	{ SEC_POLICY, "dnsbl", KT_STR, F(dnsbl) },
	{ SEC_POLICY, "dnsbl_allow", KT_STR, F(dnsbl_allow) },
	{ SEC_POLICY, "dnsbl_reject", KT_DNSBLAT, F(dnsbl_at_greeting) },
	{ SEC_POLICY, "dmarc_reports", KT_ONOFF, F(dmarc_reports) },
};

static const struct {
	const char *name;
	enum listen_kind kind;
	enum section sec;
} kinds[] = {
	{ "smtp", LISTEN_SMTP, SEC_SMTPD },
	{ "submission", LISTEN_SUBMISSION, SEC_SMTPD },
	{ "submissions", LISTEN_SUBMISSIONS, SEC_SMTPD },
	{ "imap", LISTEN_IMAP, SEC_IMAPD },
	{ "imaps", LISTEN_IMAPS, SEC_IMAPD },
	{ "pop3", LISTEN_POP3, SEC_POP3D },
	{ "pop3s", LISTEN_POP3S, SEC_POP3D },
};

static const char *section_names[] = { "", "smtpd", "imapd", "pop3d", "policy" };

const char *
listen_kind_name(enum listen_kind k)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == k)
			return kinds[i].name;
	return "?";
}

int
listen_kind_is_tls(enum listen_kind k)
{
	return k == LISTEN_SUBMISSIONS || k == LISTEN_IMAPS || k == LISTEN_POP3S;
}

static void
add_default_listen(struct listen_set *ls, const char *host, uint16_t port,
    enum listen_kind kind)
{
	struct listen_spec *l = &ls->l[ls->n++];

	strlcpy_checked(l->host, host, sizeof(l->host));
	l->port = port;
	l->kind = kind;
}

void
config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	strlcpy_checked(cfg->hostname, "localhost", sizeof(cfg->hostname));
	{
		char h[256];

		if (gethostname(h, sizeof(h)) == 0) {
			h[sizeof(h) - 1] = '\0';
			strlcpy_checked(cfg->hostname, h, sizeof(cfg->hostname));
		}
	}
	strlcpy_checked(cfg->state_dir, "/var/lib/buzon", sizeof(cfg->state_dir));
	strlcpy_checked(cfg->database, "/var/lib/buzon/buzon.db", sizeof(cfg->database));
	strlcpy_checked(cfg->mail_dir, "/var/lib/buzon/mail", sizeof(cfg->mail_dir));
	strlcpy_checked(cfg->queue_dir, "/var/spool/buzon/queue", sizeof(cfg->queue_dir));
	strlcpy_checked(cfg->user, "vmail", sizeof(cfg->user));
	strlcpy_checked(cfg->tls_cert, "/etc/buzon/tls/fullchain.pem", sizeof(cfg->tls_cert));
	strlcpy_checked(cfg->tls_key, "/etc/buzon/tls/privkey.pem", sizeof(cfg->tls_key));
	cfg->max_connections_per_ip = 50;

	add_default_listen(&cfg->smtpd_listen, "0.0.0.0", 25, LISTEN_SMTP);
	add_default_listen(&cfg->smtpd_listen, "0.0.0.0", 587, LISTEN_SUBMISSION);
	add_default_listen(&cfg->smtpd_listen, "0.0.0.0", 465, LISTEN_SUBMISSIONS);
	cfg->max_message_size = 50ULL * 1024 * 1024;
	cfg->queue_lifetime = 5 * 86400;
	cfg->max_recipients = 100;
	cfg->delivery_threads = 32;
	cfg->outbound_connections = 20;
	cfg->relayhost_tls_verify = 1;

	add_default_listen(&cfg->imapd_listen, "0.0.0.0", 143, LISTEN_IMAP);
	add_default_listen(&cfg->imapd_listen, "0.0.0.0", 993, LISTEN_IMAPS);
	cfg->imapd_autologout = 1800;	/* RFC 3501 5.4: at least 30 min */
	/* Thunderbird plus phones behind one NAT: Dovecot's 10 is too few. */
	cfg->imapd_max_user_ip = 50;
	add_default_listen(&cfg->pop3d_listen, "0.0.0.0", 110, LISTEN_POP3);
	add_default_listen(&cfg->pop3d_listen, "0.0.0.0", 995, LISTEN_POP3S);
	cfg->pop3d_idle_timeout = 600;	/* RFC 1939 3: at least 10 minutes */

	cfg->spf = 1;
	cfg->dkim_verify = 1;
	cfg->dmarc = 1;
	cfg->spf_reject_fail = 1;
	strlcpy_checked(cfg->dnsbl, "zen.spamhaus.org", sizeof(cfg->dnsbl));
}

static int
parse_number_suffix(const char *s, size_t len, uint64_t *out,
    const char *suffixes, const uint64_t *mult)
{
	uint64_t v = 0, m = 1;
	size_t i = 0;
	const char *p;

	if (len == 0)
		return -1;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i == 0)
		return -1;
	if (i < len) {
		if (i + 1 != len)
			return -1;
		p = memchr(suffixes, s[i], strlen(suffixes));
		if (p == NULL)
			return -1;
		m = mult[p - suffixes];
	}
	if (m != 1 && v > UINT64_MAX / m)
		return -1;
	*out = v * m;
	return 0;
}

int
config_parse_size(const char *s, size_t len, uint64_t *out)
{
	static const uint64_t mult[] = { 1024, 1024, 1048576, 1048576,
	    1073741824, 1073741824, 1 , 1 };

	return parse_number_suffix(s, len, out, "kKmMgGbB", mult);
}

int
config_parse_duration(const char *s, size_t len, uint64_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };

	return parse_number_suffix(s, len, out, "smhd", mult);
}

/* "host:port", "[v6]:port"; port 1..65535. */
static int
parse_hostport(const char *s, size_t len, char *host, size_t hostsz,
    uint16_t *port)
{
	const char *colon;
	size_t hlen;
	uint64_t p;

	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);

		if (rb == NULL || rb + 1 >= s + len || rb[1] != ':')
			return -1;
		hlen = (size_t)(rb - s - 1);
		if (hlen == 0 || hlen >= hostsz)
			return -1;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		colon = rb + 1;
	} else {
		colon = NULL;
		for (const char *q = s; q < s + len; q++)
			if (*q == ':')
				colon = q;
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
		if (hlen == 0 || hlen >= hostsz || memchr(s, ':', hlen) != NULL)
			return -1;
		memcpy(host, s, hlen);
		host[hlen] = '\0';
	}
	if (config_parse_duration(colon + 1, (size_t)(s + len - colon - 1), &p) < 0)
		return -1;
	for (const char *q = colon + 1; q < s + len; q++)
		if (*q < '0' || *q > '9')
			return -1;
	if (p == 0 || p > 65535)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Room for a "why" that names the key and its bound. */
#define WHYBUF_SIZE 128

static int
set_value(struct config *cfg, const struct keydef *k, enum section sec,
    const char *v, size_t vlen, int *listen_seen, const char **why,
    char *whybuf)
{
	char *field = (char *)cfg + k->off;
	uint64_t n;
	size_t i;

	switch (k->type) {
	case KT_STR:
		if (vlen >= k->size) {
			*why = "value too long";
			return -1;
		}
		if (memchr(v, '\0', vlen) != NULL) {
			*why = "NUL byte in value";
			return -1;
		}
		memcpy(field, v, vlen);
		field[vlen] = '\0';
		return 0;
	case KT_HOSTPORT:
		if (vlen > 0) {
			char host[256];
			uint16_t port;

			if (parse_hostport(v, vlen, host, sizeof(host), &port) < 0) {
				*why = "expected host:port";
				return -1;
			}
		}
		if (vlen >= k->size) {
			*why = "value too long";
			return -1;
		}
		memcpy(field, v, vlen);
		field[vlen] = '\0';
		return 0;
	case KT_SIZE:
		if (config_parse_size(v, vlen, &n) < 0) {
			*why = "expected a size such as 512K, 50M or 2G";
			return -1;
		}
		memcpy(field, &n, sizeof(n));
		return 0;
	case KT_DURATION:
		if (config_parse_duration(v, vlen, &n) < 0) {
			*why = "expected a time such as 30s, 10m, 2h or 5d";
			return -1;
		}
		memcpy(field, &n, sizeof(n));
		return 0;
	case KT_UINT: {
		unsigned u, max = k->max != 0 ? k->max : 1000000;
		int bad = config_parse_duration(v, vlen, &n) < 0 || n == 0 ||
		    n > max;

		for (i = 0; i < vlen; i++)
			if (v[i] < '0' || v[i] > '9')
				bad = 1;
		if (bad) {
			snprintf(whybuf, WHYBUF_SIZE,
			    "%s: expected a whole number from 1 to %u", k->name,
			    max);
			*why = whybuf;
			return -1;
		}
		u = (unsigned)n;
		memcpy(field, &u, sizeof(u));
		return 0;
	}
	case KT_ONOFF: {
		int b;

		if (vlen == 2 && strncasecmp(v, "on", 2) == 0)
			b = 1;
		else if (vlen == 3 && strncasecmp(v, "off", 3) == 0)
			b = 0;
		else {
			*why = "expected on or off";
			return -1;
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	}
	case KT_DNSBLAT: {
		int g;

		if (vlen == 4 && strncmp(v, "rcpt", 4) == 0)
			g = 0;
		else if (vlen == 8 && strncmp(v, "greeting", 8) == 0)
			g = 1;
		else {
			*why = "expected rcpt or greeting";
			return -1;
		}
		memcpy(field, &g, sizeof(g));
		return 0;
	}
	case KT_IPFAMILY: {
		int fam;

		if (vlen == 3 && strncmp(v, "any", 3) == 0)
			fam = IP_FAMILY_ANY;
		else if (vlen == 4 && strncmp(v, "ipv4", 4) == 0)
			fam = IP_FAMILY_IPV4;
		else if (vlen == 4 && strncmp(v, "ipv6", 4) == 0)
			fam = IP_FAMILY_IPV6;
		else {
			*why = "expected any, ipv4 or ipv6";
			return -1;
		}
		memcpy(field, &fam, sizeof(fam));
		return 0;
	}
	case KT_IP4:
	case KT_IP6: {
		unsigned char a[16];
		char tmp[64];

		if (vlen >= sizeof(tmp) || vlen >= k->size) {
			*why = "value too long";
			return -1;
		}
		memcpy(tmp, v, vlen);
		tmp[vlen] = '\0';
		if (vlen > 0 && inet_pton(k->type == KT_IP4 ? AF_INET : AF_INET6,
		    tmp, a) != 1) {
			*why = k->type == KT_IP4 ? "expected an IPv4 address" :
			    "expected an IPv6 address";
			return -1;
		}
		memcpy(field, tmp, vlen + 1);
		return 0;
	}
	case KT_SPFREJECT: {
		int b;

		if (vlen == 4 && strncmp(v, "fail", 4) == 0)
			b = 1;
		else if (vlen == 5 && strncmp(v, "never", 5) == 0)
			b = 0;
		else {
			*why = "expected fail or never";
			return -1;
		}
		memcpy(field, &b, sizeof(b));
		return 0;
	}
	case KT_LISTEN: {
		struct listen_set *ls = (struct listen_set *)field;
		struct listen_spec spec;
		const char *sp = v, *end = v + vlen;
		size_t kl;

		while (sp < end && !is_space(*sp))
			sp++;
		if (parse_hostport(v, (size_t)(sp - v), spec.host,
		    sizeof(spec.host), &spec.port) < 0) {
			*why = "expected ADDRESS:PORT KIND, e.g. 0.0.0.0:25 smtp or [::]:993 imaps";
			return -1;
		}
		while (sp < end && is_space(*sp))
			sp++;
		kl = (size_t)(end - sp);
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strlen(kinds[i].name) == kl &&
			    strncmp(kinds[i].name, sp, kl) == 0)
				break;
		if (i == sizeof(kinds) / sizeof(kinds[0]) ||
		    kinds[i].sec != sec) {
			*why = sec == SEC_SMTPD ? "listener kind must be smtp, submission or submissions" :
			    sec == SEC_IMAPD ? "listener kind must be imap or imaps" :
			    "listener kind must be pop3 or pop3s";
			return -1;
		}
		spec.kind = kinds[i].kind;
		if (!*listen_seen) {
			ls->n = 0;
			*listen_seen = 1;
		}
		if (ls->n >= CONFIG_MAX_LISTEN) {
			*why = "too many listen lines in this section";
			return -1;
		}
		ls->l[ls->n++] = spec;
		return 0;
	}
	}
	*why = "internal error";
	return -1;
}

int
config_parse(struct config *cfg, const char *text, size_t len,
    const char *fname, char *err, size_t errlen)
{
	enum section sec = SEC_TOP;
	int listen_seen[SEC_NONE] = { 0 };
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	const char *why = NULL;
	char whybuf[WHYBUF_SIZE];

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl != NULL ? nl : end;
		const char *ks, *ke, *vs, *ve, *hash;
		size_t i;

		lineno++;
		ks = p;
		p = nl != NULL ? nl + 1 : end;

		/* strip comment, CR and surrounding blanks */
		hash = memchr(ks, '#', (size_t)(le - ks));
		if (hash != NULL)
			le = hash;
		while (ks < le && is_space(*ks))
			ks++;
		while (le > ks && (is_space(le[-1]) || le[-1] == '\r'))
			le--;
		if (ks == le)
			continue;

		if (*ks == '[') {
			if (le[-1] != ']') {
				why = "section header must end with ]";
				goto fail;
			}
			for (i = 1; i < SEC_NONE; i++)
				if (strlen(section_names[i]) == (size_t)(le - ks - 2) &&
				    strncmp(section_names[i], ks + 1, (size_t)(le - ks - 2)) == 0)
					break;
			if (i == SEC_NONE) {
				why = "unknown section (known: [smtpd] [imapd] [pop3d] [policy])";
				goto fail;
			}
			sec = (enum section)i;
			continue;
		}

		ke = memchr(ks, '=', (size_t)(le - ks));
		if (ke == NULL) {
			why = "expected key = value";
			goto fail;
		}
		vs = ke + 1;
		while (ke > ks && is_space(ke[-1]))
			ke--;
		while (vs < le && is_space(*vs))
			vs++;
		ve = le;
		if (ke == ks) {
			why = "missing key before =";
			goto fail;
		}
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (keys[i].sec == sec && strlen(keys[i].name) == (size_t)(ke - ks) &&
			    strncmp(keys[i].name, ks, (size_t)(ke - ks)) == 0)
				break;
		if (i == sizeof(keys) / sizeof(keys[0])) {
			char kbuf[64];
			size_t kl = (size_t)(ke - ks) < sizeof(kbuf) - 1 ? (size_t)(ke - ks) : sizeof(kbuf) - 1;

			memcpy(kbuf, ks, kl);
			kbuf[kl] = '\0';
			for (size_t j = 0; j < kl; j++)
				if ((unsigned char)kbuf[j] < 0x20 || (unsigned char)kbuf[j] >= 0x7f)
					kbuf[j] = '?';
			snprintf(err, errlen, "%s:%u: unknown key \"%s\"%s%s%s", fname,
			    lineno, kbuf, sec == SEC_TOP ? "" : " in [",
			    sec == SEC_TOP ? "" : section_names[sec],
			    sec == SEC_TOP ? "" : "]");
			return -1;
		}
		if (set_value(cfg, &keys[i], sec, vs, (size_t)(ve - vs),
		    &listen_seen[sec], &why, whybuf) < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s:%u: %s", fname, lineno, why);
	return -1;
}

int
config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
	struct buf text;
	char chunk[8192];
	ssize_t n;
	int fd, r;

	if (path == NULL)
		path = getenv("BUZON_CONF");
	if (path == NULL || *path == '\0')
		path = CONFIG_PATH_DEFAULT;
	config_defaults(cfg);
	if (strlcpy_checked(cfg->path, path, sizeof(cfg->path)) < 0) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open config file: %s", path,
		    strerror(errno));
		return -1;
	}
	buf_init(&text, 1024 * 1024);
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_append(&text, chunk, (size_t)n) < 0) {
			snprintf(err, errlen, "%s: config file larger than 1M", path);
			close(fd);
			buf_free(&text);
			return -1;
		}
	}
	if (n < 0) {
		snprintf(err, errlen, "%s: read: %s", path, strerror(errno));
		close(fd);
		buf_free(&text);
		return -1;
	}
	close(fd);
	r = config_parse(cfg, buf_cstr(&text), text.len, path, err, errlen);
	buf_free(&text);
	return r;
}
