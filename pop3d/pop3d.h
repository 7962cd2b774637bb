/*
 * pop3d.h - the POP3 daemon's own types: the daemon context, a session
 * (one connection), the maildrop (the snapshot of INBOX a session works
 * on) and the jobs a session sends to the thread pool.  Private to
 * pop3d/.
 */
#ifndef BUZON_POP3D_H
#define BUZON_POP3D_H

#include <stdint.h>

#include "../common/addr.h"
#include "../common/auth.h"
#include "../common/authfail.h"
#include "../common/buf.h"
#include "../common/config.h"
#include "../common/conn.h"
#include "../common/pool.h"
#include "../common/server.h"
#include "../store/mbox_index.h"
#include "pop3_parse.h"

/*
 * RFC 2449 section 4: a command is at most 255 octets.  AUTH lines (an
 * initial response, RFC 5034) and SASL continuation lines may be as long
 * as common/auth decodes.
 */
#define POP3_LINE_MAX 255
#define POP3_AUTH_LINE_MAX (AUTH_LINE_MAX + 16)
#ifndef POP3_PREAUTH_TIMEOUT		/* -D for a quick manual check */
#define POP3_PREAUTH_TIMEOUT 180.	/* before login */
#endif
#define POP3_MAX_BAD 20			/* -ERR answers in a row, then bye */
#define POP3_MAX_PREAUTH_CMDS 50	/* commands before login, then bye */
#define POP3_OUT_MAX (4u * 1024 * 1024)	/* a connection's output buffer */
#define POP3_STREAM_CHUNK 65536		/* file bytes read per step */
#define POP3_STREAM_HIGH (192u * 1024)	/* refill RETR output up to this */
#define POP3_LOCK_FILE "pop3.lock"	/* in the user's mail directory */

struct pop3_session;

struct pop3d {
	struct config cfg;
	SSL_CTX *tls;
	struct pool *pool;
	struct server srv;
	struct ev_loop *loop;
	struct auth_ctx *auth;
	struct authfail *authfail;
	struct pop3_session *sessions;
	unsigned nsessions;
	int stopping;
	ev_timer stop_timer;
};

enum pop3_state {
	POP3_ST_AUTHORIZATION,
	POP3_ST_TRANSACTION,
	POP3_ST_UPDATE,		/* QUIT given: applying deletions, then bye */
};

enum pop3_mode {
	POP3_MODE_COMMAND,	/* reading commands */
	POP3_MODE_SASL,		/* reading AUTH continuation lines */
	POP3_MODE_WAIT,		/* a pool job or a failure delay runs */
	POP3_MODE_STREAM,	/* RETR/TOP output is being produced */
};

/* One message of the maildrop, numbered by its position + 1. */
struct pop3_msg {
	uint32_t uid;
	int deleted;		/* DELE'd in this session */
	int seen;		/* \Seen at login or set by our RETR */
	uint64_t size;		/* RFC822.SIZE: what RETR sends, unstuffed */
	char *fname;		/* file name in cur/ at login (may move) */
};

/*
 * The maildrop: INBOX as it was when the session logged in (RFC 1939:
 * message numbers and sizes do not change during a session), the open
 * index, and the lock that keeps a second POP3 session out.
 */
struct pop3_maildrop {
	struct mbox_index *idx;
	int64_t box;
	uint32_t uidvalidity;
	char *dir;		/* the INBOX Maildir (cur/ is below it) */
	struct pop3_msg *msgs;
	size_t count;
	size_t ndeleted;
	uint64_t size;		/* of the messages not deleted */
	int lock_fd;
};

/* pop3_maildrop.c: blocking, called on the pool (or by tests) */
enum pop3_open_result { POP3_OPEN_OK, POP3_OPEN_IN_USE, POP3_OPEN_ERROR };
enum pop3_open_result pop3_maildrop_open(const char *userdir,
    struct pop3_maildrop **drop_r, char *err, size_t errlen);
void pop3_maildrop_free(struct pop3_maildrop **dropp);
/* Mark message i (0-based) \Seen; its new file name is remembered. */
int pop3_maildrop_seen(struct pop3_maildrop *drop, size_t i, char *err,
    size_t errlen);
/* UPDATE: remove exactly the DELE'd messages.  *removed_r: how many. */
int pop3_maildrop_update(struct pop3_maildrop *drop, size_t *removed_r,
    char *err, size_t errlen);
/* Open message i for reading: 1 with *fd_r, 0 gone, -1 error. */
int pop3_maildrop_msg_open(struct pop3_maildrop *drop, size_t i, int *fd_r);
/* The UIDL of message i: 16 hex digits (UIDVALIDITY, UID). */
void pop3_maildrop_uidl(const struct pop3_maildrop *drop, size_t i,
    char out[17]);

/* A job on the thread pool; one at a time per session. */
enum pop3_job_kind { POP3_JOB_OPEN, POP3_JOB_SEEN, POP3_JOB_UPDATE };

struct pop3_job {
	struct pool_job pj;
	struct pop3_session *s;
	enum pop3_job_kind kind;
	char userdir[CONFIG_STR_MAX + ADDR_MAX];	/* OPEN */
	struct pop3_maildrop *drop;	/* OPEN: result; others: the session's */
	size_t msg;			/* SEEN */
	int result;			/* enum pop3_open_result, or 0 / -1 */
	size_t removed;			/* UPDATE */
	char err[512];
};

/* A multi-line response produced as output drains. */
enum pop3_stream_kind {
	POP3_STREAM_RETR,	/* the message; \Seen at the end */
	POP3_STREAM_TOP,	/* header + N body lines */
	POP3_STREAM_LIST,	/* "n size" for every message not deleted */
	POP3_STREAM_UIDL,	/* "n uidl" likewise */
};

struct pop3_stream {
	enum pop3_stream_kind kind;
	ev_timer timer;		/* no progress for idle_timeout: drop */
	int fd;			/* RETR/TOP: the message file */
	size_t msg;		/* RETR/TOP: 0-based message; LIST: next one */
	struct pop3_stuff st;
};

struct pop3_session {
	struct pop3d *d;
	struct conn *c;
	enum listen_kind kind;
	enum pop3_state state;
	enum pop3_mode mode;
	struct buf line;		/* the command line being handled */
	char user[AUTH_USER_MAX + 2];	/* from USER, for PASS */
	size_t userlen;
	int have_user;
	struct auth_session *auth;
	ev_timer delay;			/* answer to a failed login */
	int delayed_fail;
	char account[ADDR_MAX];		/* logged in as */
	struct pop3_maildrop *drop;	/* in TRANSACTION */
	struct pop3_job job;
	int job_running;
	int orphaned;			/* connection gone while a job ran */
	struct pop3_stream stream;
	unsigned bad_in_row;
	unsigned preauth_cmds;
	unsigned nretr;			/* for the disconnect log line */
	uint64_t retr_bytes;
	struct pop3_session *prev, *next;
};

/* pop3_session.c */
void pop3_session_accept(struct pop3d *d, struct listener *l, int fd,
    const struct sockaddr *peer, socklen_t peerlen);
void pop3_session_shutdown_all(struct pop3d *d);
void pop3_ok(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3_err(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A raw line (CRLF added) of a multi-line response. */
void pop3_line(struct pop3_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void pop3_set_state(struct pop3_session *s, enum pop3_state st);
void pop3_wait(struct pop3_session *s);
void pop3_resume(struct pop3_session *s);
int pop3_session_tls(const struct pop3_session *s);
void pop3_bye(struct pop3_session *s);
void pop3_job_submit(struct pop3_session *s, enum pop3_job_kind kind);
/* A command failed: counts toward POP3_MAX_BAD. */
void pop3_session_error(struct pop3_session *s);

/* pop3_commands.c */
void pop3_dispatch(struct pop3_session *s, const char *line, size_t len);

/* pop3_auth.c */
void pop3_sasl_line(struct pop3_session *s, const char *line, size_t len,
    int too_long);
void pop3_open_done(struct pop3_session *s);

/* pop3_retr.c */
void pop3_stream_start(struct pop3_session *s, size_t msg, int retr,
    uint64_t body_lines);
void pop3_listing_start(struct pop3_session *s, int uidl);
void pop3_stream_pump(struct pop3_session *s);
void pop3_stream_abort(struct pop3_session *s);
void pop3_seen_done(struct pop3_session *s);

/* pop3_commands.c, for the other files */
typedef void pop3_cmd_fn(struct pop3_session *s, const struct pop3_cmd *cmd);
pop3_cmd_fn pop3_cmd_user, pop3_cmd_pass, pop3_cmd_auth, pop3_cmd_stls;
void pop3_update_done(struct pop3_session *s);

#endif
