/*
 * auth.h - client authentication for smtpd, imapd and pop3d: the SASL
 * mechanisms PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login) run
 * by libsasl2, plain logins (IMAP LOGIN, POP3 USER/PASS), and one
 * password check against the account database for all of them.
 *
 * Never offers or accepts a mechanism on a connection that is not
 * TLS-protected, never consults libsasl2's own password stores (sasldb,
 * saslauthd, auxprop), never tells a client whether a user exists, and
 * never logs or keeps a password longer than one verification.
 *
 * Why the check is split from the exchange: a password check costs a
 * yescrypt hash (~50 ms) and a database read that can wait behind a
 * writer, too long for an event loop.  libsasl2 wants the answer from a
 * synchronous callback in the middle of sasl_server_start/step, and its
 * library state (plugin lists, default no-op mutexes) is not meant to be
 * driven from several threads.  So the SASL exchange runs on the loop
 * thread, in microseconds: our checkpass callback only takes a copy of the
 * credentials, and when the mechanism (and the authzid policy) is
 * satisfied the exchange answers AUTH_VERIFY.  The caller then runs the
 * real check on the thread pool (auth_verify_submit), which touches no
 * SASL state, only the credentials and a database handle of its own.
 * libsasl2 never sees a verdict it could act on: its connection is
 * disposed of before the check starts, and no security layer is
 * negotiated (PLAIN and LOGIN have none; TLS protects the session).
 *
 * Use from an event loop (loop thread only, except where marked):
 *
 *	s = auth_session_new(ctx, "imap", conn_is_tls);	// one per exchange
 *	st = auth_start(s, mech, mechlen, ir, irlen);	// ir NULL: none
 *	while (st == AUTH_CONTINUE) {
 *		// IMAP/POP3: "+ " auth_challenge(s) CRLF; SMTP: "334 " ...
 *		// read one line (without CRLF), then:
 *		st = auth_step(s, line, len);
 *	}
 *	if (st == AUTH_VERIFY) {
 *		auth_verify_submit(s, pool, on_auth_done, conn);
 *		// read no further command until on_auth_done runs
 *	} else {
 *		// terminal status: answer, then auth_session_free(&s)
 *	}
 *
 *	on_auth_done(s, st, conn):	// on the loop thread
 *		AUTH_OK: the session user is auth_user(s) (the stored address)
 *		AUTH_FAIL: authfail_failure() (authfail.h), answer after its delay
 *		AUTH_TEMPFAIL: answer "try later" (IMAP NO [UNAVAILABLE],
 *		    SMTP 454 4.7.0, POP3 -ERR [SYS/TEMP])
 *		then auth_session_free(&s).
 *
 * IMAP LOGIN and POP3 USER/PASS call auth_login() instead of auth_start();
 * it answers AUTH_VERIFY (or AUTH_ENCRYPT / AUTH_FAIL at once) and goes on
 * the same way.  auth_session_free() may be called at any time, also while
 * a check is in flight (the session then frees itself when the check ends,
 * without calling the done function).
 */
#ifndef BUZON_AUTH_H
#define BUZON_AUTH_H

#include <stddef.h>

#include "addr.h"

struct pool;
struct auth_ctx;
struct auth_session;

/* The mechanisms offered, in order, once TLS protects the connection. */
#define AUTH_MECHANISMS "PLAIN LOGIN"

/*
 * Limits on what a client sends.  AUTH_LINE_MAX is the longest base64
 * line (initial response or continuation, without CRLF) that is decoded;
 * a caller's line reader must accept at least that much in an exchange,
 * and a longer line is AUTH_BAD_INPUT.  The decoded response is at most
 * AUTH_RESPONSE_MAX bytes, the user name AUTH_USER_MAX and the password
 * AUTH_PASSWORD_MAX (longer ones simply fail).
 */
#define AUTH_RESPONSE_MAX 2048
#define AUTH_LINE_MAX (((AUTH_RESPONSE_MAX + 2) / 3) * 4)
#define AUTH_USER_MAX 512
/* libxcrypt's CRYPT_MAX_PASSPHRASE_SIZE: longer ones cannot be hashed */
#define AUTH_PASSWORD_MAX 512

enum auth_status {
	AUTH_CONTINUE,	/* send auth_challenge(s) as a continuation */
	AUTH_VERIFY,	/* credentials complete: auth_verify_submit() */
	AUTH_OK,	/* authenticated as auth_user(s) */
	AUTH_FAIL,	/* refused: wrong password, unknown or disabled user,
			 * authzid refused, malformed mechanism data */
	AUTH_TEMPFAIL,	/* database (or memory) error: try again later */
	AUTH_CANCEL,	/* the client sent "*" */
	AUTH_BAD_INPUT,	/* not base64, or longer than AUTH_LINE_MAX */
	AUTH_NOMECH,	/* mechanism unknown or not offered here */
	AUTH_ENCRYPT,	/* the connection is not TLS-protected */
};

/* A short fixed name of a status, for logs ("ok", "fail", ...). */
const char *auth_status_name(enum auth_status st);

/*
 * Once per process, on the loop thread, before any session: after the
 * privilege drop (the database must not get root-owned -wal/-shm files)
 * and, with workers, in each worker after the fork (an SQLite handle
 * must not cross a fork).  Initialises libsasl2 restricted to
 * the PLAIN and LOGIN plugins, opens the account database at db_path
 * (never creating it) and makes the dummy hash that unknown users are
 * checked against.  hostname may be NULL.  Returns NULL with a message in
 * err (e.g. libsasl2-modules missing, database missing).  Free after
 * every session is freed and the pool is destroyed.
 */
struct auth_ctx *auth_ctx_new(const char *db_path, const char *hostname,
    char *err, size_t errlen);
void auth_ctx_free(struct auth_ctx **ctxp);

/*
 * The mechanism list to advertise: AUTH_MECHANISMS when tls is set, ""
 * without TLS (nothing may be offered; IMAP then says LOGINDISABLED).
 * Space-separated; IMAP prefixes each with "AUTH=".
 */
const char *auth_mechanisms(const struct auth_ctx *ctx, int tls);

/*
 * One authentication exchange.  service is the SASL service name
 * ("imap", "pop", "smtp"); tls says whether TLS protects the connection
 * now.  NULL only when out of memory.
 */
struct auth_session *auth_session_new(struct auth_ctx *ctx,
    const char *service, int tls);
void auth_session_free(struct auth_session **sp);

/*
 * Start a SASL exchange.  mech is the mechanism name as the client sent
 * it (any case).  ir is the initial response exactly as sent (SASL-IR,
 * "AUTH PLAIN xxx", RFC 5034): base64, "=" for an empty response, "*" to
 * cancel; NULL (or irlen 0) when there is none.
 * Returns AUTH_CONTINUE, AUTH_VERIFY, AUTH_FAIL, AUTH_CANCEL,
 * AUTH_BAD_INPUT, AUTH_NOMECH, AUTH_ENCRYPT or AUTH_TEMPFAIL.
 */
enum auth_status auth_start(struct auth_session *s, const char *mech,
    size_t mechlen, const char *ir, size_t irlen);

/*
 * Feed one client line (without CRLF) after AUTH_CONTINUE: base64, "*"
 * cancels, an empty line (or "=") is an empty response.  Same results as
 * auth_start() except AUTH_NOMECH and AUTH_ENCRYPT.
 */
enum auth_status auth_step(struct auth_session *s, const char *line,
    size_t len);

/* The base64 challenge (NUL-terminated, possibly "") after AUTH_CONTINUE. */
const char *auth_challenge(const struct auth_session *s);

/*
 * A plain login (IMAP LOGIN, POP3 USER/PASS): AUTH_VERIFY, or AUTH_ENCRYPT
 * without TLS, or AUTH_FAIL at once for a name or password that can never
 * match (empty name, too long, NUL bytes).
 */
enum auth_status auth_login(struct auth_session *s, const char *user,
    size_t ulen, const char *pass, size_t plen);

/*
 * After AUTH_VERIFY: run the check on the pool; done() runs afterwards on
 * the loop thread with AUTH_OK, AUTH_FAIL or AUTH_TEMPFAIL, and may free
 * the session.  Returns -1 (and submits nothing) when the session is not
 * waiting for a check.
 */
typedef void auth_done_fn(struct auth_session *s, enum auth_status st,
    void *arg);
int auth_verify_submit(struct auth_session *s, struct pool *pool,
    auth_done_fn *done, void *arg);

/*
 * The same check, synchronously, on the calling thread (tests, tools):
 * blocks for the hash.  AUTH_OK, AUTH_FAIL, AUTH_TEMPFAIL.
 */
enum auth_status auth_verify_now(struct auth_session *s);

/* After AUTH_OK: the user's address as stored (domain lower-case). */
const char *auth_user(const struct auth_session *s);

/*
 * For log lines only, never for a client: the mechanism ("PLAIN",
 * "LOGIN", "login" for auth_login, "" before a start), the user name as
 * the client gave it ("" if none yet; escape it with log_escape()), and
 * why the exchange failed ("" if it did not).
 */
const char *auth_mech(const struct auth_session *s);
const char *auth_attempted_user(const struct auth_session *s);
const char *auth_reason(const struct auth_session *s);

/*
 * The one log line of a login decision, the same in every daemon:
 * "sid=.. ip=.. login RESULT mech=.. user=..[EXTRA][ reason=..]".
 * extra ("" for none) is daemon detail, e.g. POP3's maildrop size.
 */
void auth_log_result(const struct auth_session *s, const char *sid,
    const char *ip, const char *result, const char *extra);

#endif
