/*
 * smtpd.h - the SMTP daemon's own types: the daemon context, a session
 * (one connection), and a transaction (one MAIL ... end of DATA, freed by
 * RSET, HELO/EHLO or the end of DATA).  Private to smtpd/.
 */
#ifndef BUZON_SMTPD_H
#define BUZON_SMTPD_H

#include <stdint.h>
#include <time.h>

#include "../common/addr.h"
#include "../common/auth.h"
#include "../common/authfail.h"
#include "../common/buf.h"
#include "../common/config.h"
#include "../common/conn.h"
#include "../common/db.h"
#include "../common/policy.h"
#include "../common/pool.h"
#include "../common/server.h"
#include "../store/spool.h"
#include "smtp_header.h"
#include "smtp_parse.h"

#define SMTP_LINE_MAX 2048		/* command line, without CRLF */
/* RFC 4954 4: AUTH lines (with an initial response) up to 12288 octets */
#define SMTP_AUTH_LINE_MAX 12288
/* Postfix's header_size_limit: a submitted header must fit to be checked */
#define SMTP_SUBMIT_HEADER_MAX (100 * 1024)
#define SMTP_MAX_ERRORS 20		/* then 421 and close */
#define SMTP_TIMEOUT 300.		/* RFC 5321 4.5.3.2: 5 minutes */
#define SMTP_DATA_TIMEOUT 600.		/* 10 minutes between data blocks */
#define SMTP_SPOOL_MEM (256 * 1024)	/* bigger bodies go to a temp file */

struct smtp_session;

struct smtpd {
	struct config cfg;
	struct db *db;
	SSL_CTX *tls;
	struct pool *pool;
	struct auth_ctx *auth;		/* NULL without submission listeners */
	struct authfail *authfail;
	struct server srv;
	struct ev_loop *loop;
	struct smtp_session *sessions;	/* all live sessions */
	unsigned nsessions;
	int stopping;
	ev_timer stop_timer;
	unsigned long msg_seq;
	char spool_dir[CONFIG_STR_MAX + 16];
	unsigned char srs_key[32];	/* verifies SRS addresses at RCPT */
	/* the queue runner child (queue_runner.c) */
	pid_t runner_pid;
	ev_child runner_w;
	ev_timer runner_restart;
	time_t runner_started;
	double runner_backoff;
};

enum smtp_state {
	SMTP_ST_INIT,		/* before HELO/EHLO */
	SMTP_ST_HELO,		/* greeted, no transaction */
	SMTP_ST_MAIL,		/* MAIL accepted */
	SMTP_ST_RCPT,		/* at least one RCPT accepted */
	SMTP_ST_DATA,		/* reading message data */
	SMTP_ST_BUSY,		/* delivering or checking a password: paused */
	SMTP_ST_AUTH,		/* reading SASL responses after a 334 */
	SMTP_ST_QUIT,		/* closing */
};

struct smtp_mailbox {
	char address[ADDR_MAX];
	char dir[CONFIG_STR_MAX + ADDR_MAX];
	uint64_t quota_bytes;
	/* result, set by the delivery job */
	int over_quota;
	int failed;
	char file[256];
};

struct smtp_external {
	char address[ADDR_MAX];
	char orcpt[ADDR_MAX];
};

struct smtp_tx {
	char id[16];
	struct smtp_mail_args mail;
	char sender[ADDR_MAX];
	char first_rcpt[ADDR_MAX];	/* for "Received: ... for <x>" */
	unsigned nrcpt;			/* accepted RCPT commands */
	struct smtp_mailbox *mbox;
	size_t nmbox, mbox_cap;
	struct smtp_external *ext;
	size_t n_ext, ext_cap;
	struct spool body;
	struct smtp_data_scanner sc;
	int overflow;			/* body over max_message_size */
	int spool_error;		/* could not store the body */
	struct buf received;		/* our Received: header (and, for a
					 * submission, Message-ID/Date added) */
	/* submissions: the header is held back until it is complete */
	struct buf header;
	int header_done;
	int header_too_big;
	struct smtp_header_info hinfo;	/* points into header */
	/* mail from outside (smtp_policy.c) */
	size_t body_off;		/* where the body starts in the spool */
	int spf_checked;
	int spf_dmarc;			/* the sender domain publishes DMARC */
	struct spf_outcome spf;
	struct dkim_outcome dkim;
	struct dmarc_outcome dmarc;
	int policy_reject;		/* DMARC p=reject, or zero/many From */
	int quarantine;			/* deliver to Junk */
	/* delivery job result */
	int queue_failed;
	char queue_id[64];
};

struct smtp_session {
	struct smtpd *d;
	struct conn *c;
	enum listen_kind kind;
	enum smtp_state state;
	char helo[256];
	int esmtp;
	struct smtp_tx *tx;
	struct buf line;
	unsigned errors;
	unsigned ntx;
	char user[ADDR_MAX];		/* after AUTH: the stored address */
	struct auth_session *auth;	/* an AUTH exchange in progress */
	ev_timer delay;			/* answer to a failed AUTH, delayed */
	int delayed_fail;
	struct pool_job job;
	int job_running;
	int gone;			/* conn closed while the job ran */
	struct dnsbl_outcome dnsbl;	/* at connect (smtp_policy.c) */
	struct smtp_session *prev, *next;
};

/* smtp_session.c */
void smtp_session_accept(struct smtpd *d, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen);
void smtp_reply(struct smtp_session *s, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void smtp_enter_state(struct smtp_session *s, enum smtp_state st);
/* Back to commands after work off the loop (a delivery, a password
 * check): 421 and close when the daemon is stopping, else read on. */
void smtp_resume(struct smtp_session *s);
/* The same, back in state st (after a check made before a reply). */
void smtp_resume_in(struct smtp_session *s, enum smtp_state st);
/* Free a session whose connection went away while its job ran. */
void smtp_session_release(struct smtp_session *s);
void smtp_tx_free(struct smtp_tx **txp);
struct smtp_tx *smtp_tx_new(struct smtp_session *s);
void smtp_session_shutdown_all(struct smtpd *d);
void smtp_session_error(struct smtp_session *s);

/* smtp_commands.c */
void smtp_dispatch(struct smtp_session *s, const char *line, size_t len);

/* smtp_rcpt.c */
void smtp_cmd_rcpt_resolve(struct smtp_session *s, const struct mailaddr *to,
    const char *shown);

/* smtp_auth.c */
void smtp_cmd_auth(struct smtp_session *s, const struct smtp_cmd *cmd);
void smtp_auth_line(struct smtp_session *s, const char *line, size_t len);
void smtp_auth_session_end(struct smtp_session *s);

/* smtp_sender.c */
int smtp_sender_owned(struct smtp_session *s, const struct mailaddr *a);
void smtp_sender_allowed(struct smtp_session *s, char *out, size_t outsz);

/* smtp_submit.c */
int smtp_listener_submits(const struct smtp_session *s);
int smtp_submit_spool(struct smtp_session *s, const char *p, size_t n);
int smtp_submit_finish(struct smtp_session *s);

/* smtp_policy.c */
int smtp_policy_applies(const struct smtp_session *s);
int smtp_policy_connect(struct smtp_session *s);
void smtp_policy_mail(struct smtp_session *s);
int smtp_policy_rcpt(struct smtp_session *s, const char *shown);
int smtp_policy_header_end(struct smtp_session *s);
void smtp_policy_data_end(struct smtp_session *s);

/* smtp_dmarc.c: record tx's DMARC evaluation (pool thread only) */
void smtp_dmarc_record(struct smtp_session *s);

/* smtp_deliver.c */
void smtp_deliver_start(struct smtp_session *s);
/* The transaction is over without delivery (after a refusal). */
void smtp_tx_done(struct smtp_session *s);
int rfc5322_date(char *out, size_t outsz, time_t t);
void smtp_data_finished(struct smtp_session *s);
int smtp_build_received(struct smtp_session *s, struct buf *out);

#endif
