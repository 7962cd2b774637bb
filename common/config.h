/*
 * config.h - buzon.conf: the keys of DESIGN.md, parsed by a table.
 *
 * config_parse() is a pure function from bytes to struct config (no I/O),
 * so it can be unit-tested and fuzzed; config_load() reads the file.
 * Any unknown key, bad value or misplaced line is an error that names the
 * file and line.
 */
#ifndef BUZON_CONFIG_H
#define BUZON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_PATH_DEFAULT "/etc/buzon/buzon.conf"
#define CONFIG_MAX_LISTEN 16
#define CONFIG_STR_MAX 1024
#define CONFIG_MAX_WORKERS 64
#define CONFIG_MAX_OUTBOUND 500

/* outbound_ip_family: which address family the queue runner connects over. */
enum ip_family { IP_FAMILY_ANY, IP_FAMILY_IPV4, IP_FAMILY_IPV6 };

enum listen_kind {
	LISTEN_SMTP,		/* port 25: MX, STARTTLS optional, no AUTH */
	LISTEN_SUBMISSION,	/* 587: STARTTLS then AUTH */
	LISTEN_SUBMISSIONS,	/* 465: implicit TLS */
	LISTEN_IMAP,		/* 143: STARTTLS */
	LISTEN_IMAPS,		/* 993: implicit TLS */
	LISTEN_POP3,		/* 110: STLS */
	LISTEN_POP3S,		/* 995: implicit TLS */
};

struct listen_spec {
	char host[256];		/* "0.0.0.0", "::", "127.0.0.1" */
	uint16_t port;
	enum listen_kind kind;
};

struct listen_set {
	struct listen_spec l[CONFIG_MAX_LISTEN];
	int n;
};

struct config {
	char path[CONFIG_STR_MAX];	/* file it came from */

	/* top level */
	char hostname[256];
	char state_dir[CONFIG_STR_MAX];
	char database[CONFIG_STR_MAX];
	char mail_dir[CONFIG_STR_MAX];
	char queue_dir[CONFIG_STR_MAX];
	char user[64];
	char tls_cert[CONFIG_STR_MAX];
	char tls_key[CONFIG_STR_MAX];
	char public_ip[64];
	char public_ip6[64];

	/* [smtpd] */
	struct listen_set smtpd_listen;
	uint64_t max_message_size;
	char relayhost[256];
	char relayhost_user[256];
	char relayhost_password[256];
	char relayhost_password_file[CONFIG_STR_MAX];	/* first line */
	int relayhost_tls_verify;	/* with a relayhost_user: check its certificate */
	int outbound_ip_family;		/* enum ip_family */
	char outbound_ip[64];		/* source address, "" = kernel's */
	char outbound_ip6[64];
	unsigned outbound_connections;	/* simultaneous outbound deliveries */
	uint64_t queue_lifetime;	/* seconds */
	unsigned max_recipients;	/* per message */
	unsigned max_connections_per_ip;	/* all daemons */
	unsigned delivery_threads;	/* fsync-ed delivery workers */

	/* [imapd] */
	struct listen_set imapd_listen;
	uint64_t imapd_autologout;	/* seconds idle after login */
	unsigned imapd_max_user_ip;	/* sessions per user and address */
	unsigned imapd_workers;		/* processes; 0: one per online CPU */

	/* [pop3d] */
	struct listen_set pop3d_listen;
	uint64_t pop3d_idle_timeout;	/* seconds idle after login */

	/* [policy] */
	int spf;
	int dkim_verify;
	int dmarc;
	int spf_reject_fail;		/* spf_reject = fail (1) | never (0) */
	char dnsbl[CONFIG_STR_MAX];
	char dnsbl_allow[CONFIG_STR_MAX];
	int dnsbl_at_greeting;		/* dnsbl_reject = greeting (1) | rcpt (0) */
	int dmarc_reports;
};

/* Fill with DESIGN.md defaults (no listeners). */
void config_defaults(struct config *cfg);

/*
 * Parse text (len bytes, need not be NUL-terminated) on top of whatever
 * cfg holds.  fname is used in messages only.  The first "listen" line of
 * a section replaces that section's defaults.  Returns 0, or -1 with
 * "FILE:LINE: what is wrong" in err.
 */
int config_parse(struct config *cfg, const char *text, size_t len,
    const char *fname, char *err, size_t errlen);

/*
 * Defaults, then the file at path (NULL: $BUZON_CONF, else
 * CONFIG_PATH_DEFAULT).  Returns 0 or -1 with err set.
 */
int config_load(struct config *cfg, const char *path, char *err,
    size_t errlen);

/* "50M" -> 52428800.  0 ok, -1 bad. */
int config_parse_size(const char *s, size_t len, uint64_t *out);
/* "5d" -> 432000 (seconds).  0 ok, -1 bad. */
int config_parse_duration(const char *s, size_t len, uint64_t *out);

const char *listen_kind_name(enum listen_kind k);
int listen_kind_is_tls(enum listen_kind k);	/* implicit TLS */

#endif
