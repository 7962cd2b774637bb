/*
 * imapd.h - the IMAP daemon's own types: the daemon context and a
 * session (one connection).  Private to imapd/.
 */
#ifndef BUZON_IMAPD_H
#define BUZON_IMAPD_H

#include <stdint.h>

#include "../common/addr.h"
#include "../common/auth.h"
#include "../common/authfail.h"
#include "../common/buf.h"
#include "../common/config.h"
#include "../common/conn.h"
#include "../common/db.h"
#include "../common/dirwatch.h"
#include "../common/pool.h"
#include "../common/server.h"
#include "imap_parser.h"
#include "imap_response.h"
#include "../store/mbox_index.h"

#define IMAP_LINE_MAX 65536		/* a command outside literals */
#define IMAP_LITERAL_MAX (64ULL * 1024 * 1024)	/* APPEND limit default */
#define IMAP_MAX_DEPTH 20
#define IMAP_MAX_ARGS 10000
#define IMAP_PREAUTH_TIMEOUT 180.	/* before login */
#define IMAP_MAX_PREAUTH_CMDS 50	/* then BYE */
#define IMAP_MAX_BAD 50			/* BAD answers in a row, then BYE */

struct imap_session;
struct imap_index_entry;
struct fetch_job;

struct imapd {
	struct config cfg;
	SSL_CTX *tls;
	struct pool *pool;
	struct server srv;
	struct ev_loop *loop;
	struct auth_ctx *auth;
	struct authfail *authfail;
	struct db *db;			/* quota lookups at login */
	struct dirwatch *dirwatch;
	struct imap_session *sessions;
	unsigned nsessions;
	int stopping;
	ev_timer stop_timer;
	struct imap_index_entry *indexes;	/* imap_index_cache.c */
	/* the last mailbox synced, so sessions woken together sync once */
	const struct mbox_index *synced_idx;
	int64_t synced_mbox;
	ev_tstamp synced_at;
	ev_timer index_sweep;
};

enum imap_state {
	IMAP_ST_NOTAUTH,
	IMAP_ST_AUTH,
	IMAP_ST_SELECTED,
	IMAP_ST_LOGOUT,
};

enum imap_mode {
	IMAP_MODE_COMMAND,	/* reading commands */
	IMAP_MODE_AUTHENTICATE,	/* reading SASL responses */
	IMAP_MODE_IDLE,		/* waiting for DONE */
	IMAP_MODE_WAIT,		/* a job or a delay runs; input paused */
};

/* The selected mailbox as this session sees it (RFC 3501 2.3.1.2). */
struct imap_selected {
	int64_t id;
	char name[MBOX_NAME_MAX + 1];
	char dir[CONFIG_STR_MAX + ADDR_MAX + MBOX_NAME_MAX * 4];
	int readonly;
	uint32_t *uids;			/* sequence number i+1 -> uids[i] */
	size_t count, cap;
	uint32_t uidvalidity;
	uint32_t uidnext;		/* first UID not yet announced */
	uint64_t modseq;		/* changes reported up to here */
	uint64_t expunge_modseq;	/* expunges reported up to here */
	uint32_t recent_lo, recent_hi;	/* [lo, hi): \Recent for us */
	struct dirwatch_sub *w_new, *w_cur;
	int changed;			/* inotify said something moved */
	/* SEARCHRES "$" (RFC 5182): UIDs, ascending; emptied by
	 * SELECT/EXAMINE/CLOSE/UNSELECT because it lives and dies here */
	uint32_t *saved;
	size_t nsaved;
};

struct imap_session {
	struct imapd *d;
	struct conn *c;
	enum listen_kind kind;
	enum imap_state state;
	enum imap_mode mode;
	struct imap_parser *parser;
	char tag[128];			/* of the command in progress */
	struct auth_session *auth;
	ev_timer delay;			/* answer to a failed login */
	int delayed_fail;
	char user[ADDR_MAX];
	struct mbox_index *idx;		/* the user's mailboxes, after login */
	struct imap_selected *sel;	/* in IMAP_ST_SELECTED */
	struct fetch_job *fetch;	/* a FETCH sending its answer */
	unsigned preauth_cmds;
	unsigned bad_in_row;
	int enabled_utf8;
	int enabled_condstore;
	int enabled_qresync;
	int enabled_rev2;
	struct imap_session *prev, *next;
};

/* imap_session.c */
void imap_session_accept(struct imapd *d, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen);
void imap_session_shutdown_all(struct imapd *d);
void imap_reply(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void imap_tagged(struct imap_session *s, const char *status,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void imap_set_state(struct imap_session *s, enum imap_state st);
void imap_wait(struct imap_session *s);
void imap_resume(struct imap_session *s);
int imap_session_tls(const struct imap_session *s);
enum imap_cap_state imap_cap_state(const struct imap_session *s);
void imap_logout(struct imap_session *s, const char *why);

/* imap_commands.c */
void imap_dispatch(struct imap_session *s, const struct imap_command *cmd);

/* imap_mailbox_name.c: client names <-> UTF-8 index names */
int imap_mailbox_from_client(const struct imap_session *s,
    const char *name, size_t len, char *out, size_t outsz);
int imap_append_mailbox(const struct imap_session *s, struct buf *b,
    const char *utf8name);
int imap_list_match(const char *pattern, const char *name);
int imap_user_open(struct imap_session *s);

/* imap_index_cache.c */
struct mbox_index *imap_index_acquire(struct imapd *d, const char *dir,
    char *err, size_t errlen);
void imap_index_put(struct imapd *d, struct mbox_index **idxp);
void imap_index_sweep(struct imapd *d, int force);

/* imap_selected.c */
int imap_select_open(struct imap_session *s, const char *name, int readonly,
    struct buf *out, const char **why);
void imap_select_close(struct imap_session *s);
int imap_update(struct imap_session *s, int allow_expunge);
size_t imap_seq_of_uid(const struct imap_selected *sel, uint32_t uid);
int imap_append_flags(struct buf *b, const struct imap_selected *sel,
    uint32_t uid, unsigned flags, const char *keywords);
void imap_idle_line(struct imap_session *s, const char *line, size_t len);
void imap_index_release(struct imap_session *s);
int imap_index_reopen(struct imap_session *s);

/* cmd_fetch.c: a FETCH answers in slices as the output drains */
void imap_fetch_continue(struct imap_session *s);
void imap_fetch_abort(struct imap_session *s);

/*
 * imap_search_par.c: evaluate prog on the text of list entries cand[k]
 * (metadata sm[k]), k < n, on up to nthreads threads (the caller's one
 * among them).  res[k]: 1 / 0, -2 when no file has that name any more
 * (the caller looks again), -1 on error.
 */
#define IMAP_SEARCH_THREADS_MAX	8
struct search_program;
struct search_msg;
void imap_search_content_par(const struct search_program *prog,
    const struct mbox_msglist *list, const size_t *cand,
    const struct search_msg *sm, size_t n, signed char *res,
    unsigned nthreads);

/* cmd_auth.c */
void imap_authenticate_line(struct imap_session *s, const char *line,
    size_t len);

#endif
