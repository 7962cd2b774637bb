/*
 * auth.c - SASL PLAIN/LOGIN over libsasl2 and plain logins, checked
 * against the account database (auth.h explains the split between the
 * exchange, on the loop thread, and the check, on the thread pool).
 *
 * libsasl2 is fenced in three ways: its plugin loader may only load the
 * PLAIN and LOGIN plugins and may not read a configuration file
 * (SASL_CB_VERIFYFILE); every option it asks for is answered here
 * (SASL_CB_GETOPT: mech_list, no auxprop store, no pwcheck method, no
 * auto_transition); and the only password verifier it ever calls is our
 * checkpass callback, which always answers, so libsasl2 never falls back
 * to sasldb, saslauthd or an auxprop plugin.
 *
 * Must never: log a password or a decoded response, tell a client apart
 * an unknown user from a wrong password (same answer, same yescrypt
 * cost), or let libsasl2 decide that a user is authenticated.
 */
#include "auth.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sasl/sasl.h>
#include <openssl/rand.h>

/* libsasl2 wants an external SSF above 1 to waive "no plaintext". */
#define AUTH_TLS_SSF 128
/* Idle database handles kept for pool threads (one in use per check). */
#define AUTH_DB_IDLE_MAX 8
/* PLAIN and LOGIN challenges are "", "Username:" and "Password:". */
#define AUTH_CHALLENGE_MAX 64
#define AUTH_MECH_NAME_MAX 20	/* RFC 4422 3.1 */

#define SASL_CB_PROC(fn) ((int (*)(void))(void (*)(void))(fn))

struct auth_ctx {
	char *db_path;
	char *hostname;			/* NULL: libsasl2 asks the system */
	char dummy_hash[DB_HASH_MAX];	/* checked for unknown users */
	pthread_mutex_t mu;		/* guards idle[] and nidle */
	struct db *idle[AUTH_DB_IDLE_MAX];
	unsigned nidle;
};

enum session_state {
	SS_NEW,		/* nothing started */
	SS_EXCHANGE,	/* SASL exchange waiting for a client line */
	SS_PENDING,	/* credentials taken, waiting for a check */
	SS_VERIFYING,	/* check running on the pool: hands off */
	SS_DONE,	/* result final */
};

struct auth_session {
	struct pool_job job;
	struct auth_ctx *ctx;
	sasl_conn_t *conn;
	sasl_callback_t callbacks[4];
	char service[16];
	int tls;
	enum session_state state;
	int orphaned;			/* freed by the caller while verifying */
	auth_done_fn *done;
	void *done_arg;
	enum auth_status result;
	const char *reason;		/* static string, for logs */
	char mech[AUTH_MECH_NAME_MAX + 1];
	int have_creds;
	const char *creds_bad;		/* set when they can never match */
	char user[AUTH_USER_MAX + 1];
	char pass[AUTH_PASSWORD_MAX + 1];
	char canon[ADDR_MAX];
	char challenge[AUTH_CHALLENGE_MAX + 1];
	unsigned char resp[AUTH_RESPONSE_MAX];
};

/* ---- base64 (RFC 4648, strict: padded, no whitespace) ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	size_t i, o = 0;

	if (outsz == 0 || n > (outsz - 1) / 4 * 3)
		return -1;
	for (i = 0; i + 2 < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 |
		    in[i + 2];

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < n) {
		unsigned v = (unsigned)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return 0;
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decoded length, or -1 if in is not padded base64 or out is too small. */
static long
b64_decode(const char *in, size_t n, unsigned char *out, size_t outsz)
{
	size_t i, o = 0;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int last = i + 4 == n;
		int v0 = b64_value(in[i]), v1 = b64_value(in[i + 1]);
		int v2 = b64_value(in[i + 2]), v3 = b64_value(in[i + 3]);
		size_t emit = 3;

		if (v0 < 0 || v1 < 0)
			return -1;
		if (last && in[i + 2] == '=' && in[i + 3] == '=')
			emit = 1;
		else if (last && in[i + 3] == '=' && v2 >= 0)
			emit = 2;
		else if (v2 < 0 || v3 < 0)
			return -1;
		if (o + emit > outsz)
			return -1;
		out[o++] = (unsigned char)(v0 << 2 | v1 >> 4);
		if (emit > 1)
			out[o++] = (unsigned char)((v1 & 15) << 4 | v2 >> 2);
		if (emit > 2)
			out[o++] = (unsigned char)((v2 & 3) << 6 | v3);
	}
	return (long)o;
}

/* ---- libsasl2 callbacks ---- */

/* Every option libsasl2 or a plugin asks for; anything else: default. */
static int
cb_getopt(void *context, const char *plugin, const char *option,
    const char **result, unsigned *len)
{
	static const struct {
		const char *name, *value;
	} opts[] = {
		{ "mech_list", AUTH_MECHANISMS },
		/* No verifier of that name exists: never sasldb/saslauthd. */
		{ "pwcheck_method", "buzon_userdb" },
		/* No auxprop plugin of that name: no password store lookups. */
		{ "auxprop_plugin", "buzon_none" },
		{ "auto_transition", "no" },
	};
	size_t i;

	(void)context;
	(void)plugin;
	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		if (strcmp(option, opts[i].name) == 0) {
			*result = opts[i].value;
			if (len != NULL)
				*len = (unsigned)strlen(opts[i].value);
			return SASL_OK;
		}
	}
	return SASL_FAIL;
}

static int
cb_log(void *context, int level, const char *message)
{
	char esc[512];

	(void)context;
	/* TRACE and PASS levels may carry protocol data and passwords. */
	if (message == NULL || level >= SASL_LOG_TRACE)
		return SASL_OK;
	/* What auxprop_plugin=buzon_none is for: not worth a line per login. */
	if (strncmp(message, "could not find auxprop plugin", 29) == 0)
		return SASL_OK;
	log_escape(esc, sizeof(esc), message, strlen(message));
	if (level == SASL_LOG_ERR)
		log_error("sasl: %s", esc);
	else if (level == SASL_LOG_WARN)
		log_warn("sasl: %s", esc);
	else
		log_debug("sasl: %s", esc);
	return SASL_OK;
}

/* Load the PLAIN and LOGIN plugins only; read no configuration file. */
static int
cb_verifyfile(void *context, const char *file, sasl_verify_type_t type)
{
	const char *base = strrchr(file, '/');

	(void)context;
	base = base != NULL ? base + 1 : file;
	if (type == SASL_VRFY_PLUGIN &&
	    (strncmp(base, "libplain.so", 11) == 0 ||
	    strncmp(base, "liblogin.so", 11) == 0))
		return SASL_OK;
	return type == SASL_VRFY_PASSWD ? SASL_FAIL : SASL_CONTINUE;
}

/* Keep the credentials for the real check; they may be unusable. */
static void
take_credentials(struct auth_session *s, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	size_t keep = ulen < AUTH_USER_MAX ? ulen : AUTH_USER_MAX;

	s->have_creds = 1;
	s->creds_bad = NULL;
	memcpy(s->user, user, keep);
	s->user[keep] = '\0';
	if (ulen == 0 || ulen > AUTH_USER_MAX || memchr(user, '\0', ulen))
		s->creds_bad = "user name empty, too long or with a NUL";
	else if (plen > AUTH_PASSWORD_MAX || memchr(pass, '\0', plen))
		s->creds_bad = "password too long or with a NUL";
	else {
		memcpy(s->pass, pass, plen);
		s->pass[plen] = '\0';
	}
}

/*
 * The only password verifier libsasl2 can reach.  It answers SASL_OK to
 * let the mechanism finish (a failure would make libsasl2 try its own
 * pwcheck methods); the exchange then ends in AUTH_VERIFY and the
 * password is checked by verify_run(), never by libsasl2.
 */
static int
cb_checkpass(sasl_conn_t *conn, void *context, const char *user,
    const char *pass, unsigned passlen, struct propctx *propctx)
{
	(void)conn;
	(void)propctx;
	take_credentials(context, user, strlen(user), pass, passlen);
	return SASL_OK;
}

/* PLAIN's authzid: empty (libsasl2 then passes the authcid) or equal. */
static int
cb_authorize(sasl_conn_t *conn, void *context, const char *requested,
    unsigned rlen, const char *authid, unsigned alen, const char *realm,
    unsigned urlen, struct propctx *propctx)
{
	struct auth_session *s = context;

	(void)realm;
	(void)urlen;
	(void)propctx;
	if (rlen == alen && memcmp(requested, authid, alen) == 0)
		return SASL_OK;
	s->reason = "authorization identity differs from the user name";
	sasl_seterror(conn, SASL_NOLOG, "authorization identity refused");
	return SASL_NOAUTHZ;
}

static const sasl_callback_t sasl_global_cbs[] = {
	{ SASL_CB_GETOPT, SASL_CB_PROC(cb_getopt), NULL },
	{ SASL_CB_LOG, SASL_CB_PROC(cb_log), NULL },
	{ SASL_CB_VERIFYFILE, SASL_CB_PROC(cb_verifyfile), NULL },
	{ SASL_CB_LIST_END, NULL, NULL },
};

static unsigned sasl_users;	/* contexts alive; main thread only */

static int
sasl_acquire(char *err, size_t errlen)
{
	int r;

	if (sasl_users > 0) {
		sasl_users++;
		return 0;
	}
	r = sasl_server_init(sasl_global_cbs, "buzon");
	if (r != SASL_OK) {
		snprintf_checked(err, errlen, "cannot initialise libsasl2: %s",
		    sasl_errstring(r, NULL, NULL));
		return -1;
	}
	sasl_users = 1;
	return 0;
}

static void
sasl_release(void)
{
	if (sasl_users > 0 && --sasl_users == 0)
		sasl_server_done();
}

/* A server connection for service with our security policy. */
static int
sasl_conn_new(const struct auth_ctx *ctx, const char *service, int tls,
    const sasl_callback_t *callbacks, sasl_conn_t **out)
{
	sasl_security_properties_t sp;
	sasl_ssf_t ssf = AUTH_TLS_SSF;
	int r;

	r = sasl_server_new(service, ctx->hostname, NULL, NULL, NULL, callbacks,
	    SASL_SUCCESS_DATA, out);
	if (r != SASL_OK) {
		*out = NULL;
		return r;
	}
	memset(&sp, 0, sizeof(sp));
	sp.security_flags = SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS;
	r = sasl_setprop(*out, SASL_SEC_PROPS, &sp);
	if (r == SASL_OK && tls)
		r = sasl_setprop(*out, SASL_SSF_EXTERNAL, &ssf);
	if (r != SASL_OK)
		sasl_dispose(out);
	return r;
}

/* Ask libsasl2 itself what it offers with and without TLS. */
static int
check_mechanisms(struct auth_ctx *ctx, char *err, size_t errlen)
{
	static const sasl_callback_t cbs[] = {
		{ SASL_CB_GETOPT, SASL_CB_PROC(cb_getopt), NULL },
		{ SASL_CB_LIST_END, NULL, NULL },
	};
	sasl_conn_t *conn;
	const char *list;
	unsigned len;
	int tls, r, count, ok;

	for (tls = 0; tls <= 1; tls++) {
		if ((r = sasl_conn_new(ctx, "imap", tls, cbs, &conn)) != SASL_OK) {
			snprintf_checked(err, errlen, "libsasl2: %s",
			    sasl_errstring(r, NULL, NULL));
			return -1;
		}
		count = 0;
		list = "";
		r = sasl_listmech(conn, NULL, "", " ", "", &list, &len, &count);
		if (tls)
			ok = r == SASL_OK && strcmp(list, AUTH_MECHANISMS) == 0;
		else
			ok = r == SASL_NOMECH || (r == SASL_OK && count == 0);
		if (!ok) {
			if (tls)
				snprintf_checked(err, errlen, "libsasl2 offers "
				    "\"%s\" instead of \"%s\" (is libsasl2-modules "
				    "installed?)", r == SASL_OK ? list : "",
				    AUTH_MECHANISMS);
			else
				snprintf_checked(err, errlen, "libsasl2 would "
				    "offer \"%s\" without TLS",
				    r == SASL_OK ? list : "?");
		}
		sasl_dispose(&conn);
		if (!ok)
			return -1;
	}
	return 0;
}

/* ---- the context ---- */

struct auth_ctx *
auth_ctx_new(const char *db_path, const char *hostname, char *err,
    size_t errlen)
{
	struct auth_ctx *ctx = calloc(1, sizeof(*ctx));
	unsigned char rnd[24];
	char secret[sizeof(rnd) * 2 + 1];
	struct db *db = NULL;
	size_t i;

	if (ctx == NULL) {
		snprintf_checked(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&ctx->mu, NULL);
	ctx->db_path = strdup(db_path);
	ctx->hostname = hostname != NULL ? strdup(hostname) : NULL;
	if (ctx->db_path == NULL || (hostname != NULL && ctx->hostname == NULL)) {
		snprintf_checked(err, errlen, "out of memory");
		goto fail_nosasl;
	}
	/* A hash of a random secret: unknown users cost one yescrypt too. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		snprintf_checked(err, errlen, "no random bytes for the dummy hash");
		goto fail_nosasl;
	}
	for (i = 0; i < sizeof(rnd); i++)
		snprintf_checked(secret + 2 * i, 3, "%02x", rnd[i]);
	if (password_hash(secret, ctx->dummy_hash, sizeof(ctx->dummy_hash)) < 0) {
		snprintf_checked(err, errlen, "cannot make a yescrypt hash");
		goto fail_nosasl;
	}
	explicit_bzero(secret, sizeof(secret));
	if (db_open(db_path, 0, &db, err, errlen) < 0)
		goto fail_nosasl;
	ctx->idle[ctx->nidle++] = db;
	if (sasl_acquire(err, errlen) < 0)
		goto fail_nosasl;
	if (check_mechanisms(ctx, err, errlen) < 0) {
		auth_ctx_free(&ctx);
		return NULL;
	}
	return ctx;
fail_nosasl:
	explicit_bzero(secret, sizeof(secret));
	for (i = 0; i < ctx->nidle; i++)
		db_close(&ctx->idle[i]);
	pthread_mutex_destroy(&ctx->mu);
	free(ctx->db_path);
	free(ctx->hostname);
	free(ctx);
	return NULL;
}

void
auth_ctx_free(struct auth_ctx **ctxp)
{
	struct auth_ctx *ctx = *ctxp;
	unsigned i;

	if (ctx == NULL)
		return;
	*ctxp = NULL;
	for (i = 0; i < ctx->nidle; i++)
		db_close(&ctx->idle[i]);
	pthread_mutex_destroy(&ctx->mu);
	free(ctx->db_path);
	free(ctx->hostname);
	free(ctx);
	sasl_release();
}

const char *
auth_mechanisms(const struct auth_ctx *ctx, int tls)
{
	(void)ctx;
	return tls ? AUTH_MECHANISMS : "";
}

/* A database handle for this thread's check (any thread). */
static struct db *
db_take(struct auth_ctx *ctx)
{
	struct db *db = NULL;
	char err[512];

	pthread_mutex_lock(&ctx->mu);
	if (ctx->nidle > 0)
		db = ctx->idle[--ctx->nidle];
	pthread_mutex_unlock(&ctx->mu);
	if (db == NULL && db_open(ctx->db_path, 0, &db, err, sizeof(err)) < 0) {
		log_error("auth: %s", err);
		return NULL;
	}
	return db;
}

/* Give a handle back; one that just failed a query is closed. */
static void
db_give(struct auth_ctx *ctx, struct db *db, int failed)
{
	if (!failed) {
		pthread_mutex_lock(&ctx->mu);
		if (ctx->nidle < AUTH_DB_IDLE_MAX) {
			ctx->idle[ctx->nidle++] = db;
			db = NULL;
		}
		pthread_mutex_unlock(&ctx->mu);
	}
	db_close(&db);
}

/* ---- sessions ---- */

const char *
auth_status_name(enum auth_status st)
{
	static const char *const names[] = {
		[AUTH_CONTINUE] = "continue", [AUTH_VERIFY] = "verify",
		[AUTH_OK] = "ok", [AUTH_FAIL] = "fail",
		[AUTH_TEMPFAIL] = "tempfail", [AUTH_CANCEL] = "cancel",
		[AUTH_BAD_INPUT] = "bad-input", [AUTH_NOMECH] = "nomech",
		[AUTH_ENCRYPT] = "encrypt",
	};

	if ((unsigned)st < sizeof(names) / sizeof(names[0]))
		return names[st];
	return "?";
}

struct auth_session *
auth_session_new(struct auth_ctx *ctx, const char *service, int tls)
{
	struct auth_session *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->ctx = ctx;
	s->tls = tls != 0;
	s->state = SS_NEW;
	s->reason = "";
	if (strlcpy_checked(s->service, service, sizeof(s->service)) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void
wipe_secrets(struct auth_session *s)
{
	explicit_bzero(s->pass, sizeof(s->pass));
	explicit_bzero(s->resp, sizeof(s->resp));
}

static void
session_destroy(struct auth_session *s)
{
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	wipe_secrets(s);
	free(s);
}

void
auth_session_free(struct auth_session **sp)
{
	struct auth_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	if (s->state == SS_VERIFYING) {
		s->orphaned = 1;	/* verify_done() frees it */
		return;
	}
	session_destroy(s);
}

/* A final status: drop the SASL state and the secrets. */
static enum auth_status
finish(struct auth_session *s, enum auth_status st, const char *reason)
{
	if (s->conn != NULL)
		sasl_dispose(&s->conn);
	wipe_secrets(s);
	s->state = SS_DONE;
	s->result = st;
	if (reason != NULL)
		s->reason = reason;
	return st;
}

static enum auth_status
misuse(struct auth_session *s, const char *what)
{
	log_error("auth: %s called in the wrong state (a bug)", what);
	if (s->state == SS_VERIFYING)
		return AUTH_TEMPFAIL;	/* the check still owns the session */
	return finish(s, AUTH_TEMPFAIL, "internal error");
}

/* What libsasl2 answered, as our status. */
static enum auth_status
after_sasl(struct auth_session *s, int r, const char *out, unsigned outlen)
{
	explicit_bzero(s->resp, sizeof(s->resp));
	if (r == SASL_CONTINUE) {
		if (b64_encode((const unsigned char *)out, out != NULL ? outlen : 0,
		    s->challenge, sizeof(s->challenge)) < 0)
			return finish(s, AUTH_TEMPFAIL, "challenge too long");
		s->state = SS_EXCHANGE;
		return AUTH_CONTINUE;
	}
	if (r == SASL_OK) {
		if (!s->have_creds)
			return finish(s, AUTH_FAIL, "mechanism gave no password");
		if (s->creds_bad != NULL)
			return finish(s, AUTH_FAIL, s->creds_bad);
		sasl_dispose(&s->conn);
		s->state = SS_PENDING;
		return AUTH_VERIFY;
	}
	if (r == SASL_NOMEM || r == SASL_TRYAGAIN || r == SASL_UNAVAIL)
		return finish(s, AUTH_TEMPFAIL, sasl_errstring(r, NULL, NULL));
	if (s->reason[0] != '\0')		/* set by cb_authorize */
		return finish(s, AUTH_FAIL, NULL);
	/*
	 * After the password, PLAIN only canonicalises the authzid: a
	 * different one fails there (libsasl2 finds no auxprop entry for
	 * it) or in cb_authorize.
	 */
	if (s->have_creds && (r == SASL_NOMECH || r == SASL_NOAUTHZ))
		return finish(s, AUTH_FAIL,
		    "authorization identity differs from the user name");
	if (r == SASL_BADPROT)
		return finish(s, AUTH_FAIL, "malformed mechanism response");
	return finish(s, AUTH_FAIL, sasl_errstring(r, NULL, NULL));
}

/* Decode one client response into s->resp; "=" and "" are empty. */
static enum auth_status
decode_response(struct auth_session *s, const char *in, size_t len,
    size_t *outlen)
{
	long n;

	if (len > AUTH_LINE_MAX)
		return finish(s, AUTH_BAD_INPUT, "response too long");
	if (len == 1 && in[0] == '*')
		return finish(s, AUTH_CANCEL, "cancelled by the client");
	if (len == 0 || (len == 1 && in[0] == '=')) {
		*outlen = 0;
		return AUTH_CONTINUE;
	}
	n = b64_decode(in, len, s->resp, sizeof(s->resp));
	if (n < 0)
		return finish(s, AUTH_BAD_INPUT, "response is not base64");
	/* LOGIN's user name and password are text: a NUL would cut them. */
	if (strcmp(s->mech, "LOGIN") == 0 && memchr(s->resp, '\0', (size_t)n))
		return finish(s, AUTH_FAIL, "NUL in a LOGIN response");
	*outlen = (size_t)n;
	return AUTH_CONTINUE;
}

/* The mechanism as offered (upper case), or NULL. */
static const char *
offered_mechanism(const char *mech, size_t len)
{
	static const char *const mechs[] = { "PLAIN", "LOGIN" };
	size_t i;

	for (i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (len == strlen(mechs[i]) && strncasecmp(mech, mechs[i], len) == 0)
			return mechs[i];
	return NULL;
}

enum auth_status
auth_start(struct auth_session *s, const char *mech, size_t mechlen,
    const char *ir, size_t irlen)
{
	const char *name, *out = NULL;
	unsigned outlen = 0;
	size_t n = 0;
	enum auth_status st;
	int r;

	if (s->state != SS_NEW)
		return misuse(s, "auth_start");
	if (!s->tls)
		return finish(s, AUTH_ENCRYPT, "no TLS");
	if ((name = offered_mechanism(mech, mechlen)) == NULL)
		return finish(s, AUTH_NOMECH, "mechanism not offered");
	strlcpy_checked(s->mech, name, sizeof(s->mech));
	if (ir != NULL && irlen > 0) {
		st = decode_response(s, ir, irlen, &n);
		if (st != AUTH_CONTINUE)
			return st;
	}
	s->callbacks[0] = (sasl_callback_t){ SASL_CB_GETOPT,
	    SASL_CB_PROC(cb_getopt), NULL };
	s->callbacks[1] = (sasl_callback_t){ SASL_CB_SERVER_USERDB_CHECKPASS,
	    SASL_CB_PROC(cb_checkpass), s };
	s->callbacks[2] = (sasl_callback_t){ SASL_CB_PROXY_POLICY,
	    SASL_CB_PROC(cb_authorize), s };
	s->callbacks[3] = (sasl_callback_t){ SASL_CB_LIST_END, NULL, NULL };
	r = sasl_conn_new(s->ctx, s->service, s->tls, s->callbacks, &s->conn);
	if (r != SASL_OK) {
		explicit_bzero(s->resp, sizeof(s->resp));
		log_error("auth: libsasl2 connection: %s",
		    sasl_errstring(r, NULL, NULL));
		return finish(s, AUTH_TEMPFAIL, "libsasl2 connection failed");
	}
	r = sasl_server_start(s->conn, s->mech,
	    ir != NULL && irlen > 0 ? (const char *)s->resp : NULL,
	    (unsigned)n, &out, &outlen);
	return after_sasl(s, r, out, outlen);
}

enum auth_status
auth_step(struct auth_session *s, const char *line, size_t len)
{
	const char *out = NULL;
	unsigned outlen = 0;
	enum auth_status st;
	size_t n = 0;
	int r;

	if (s->state != SS_EXCHANGE)
		return misuse(s, "auth_step");
	st = decode_response(s, line, len, &n);
	if (st != AUTH_CONTINUE)
		return st;
	r = sasl_server_step(s->conn, (const char *)s->resp, (unsigned)n, &out,
	    &outlen);
	return after_sasl(s, r, out, outlen);
}

const char *
auth_challenge(const struct auth_session *s)
{
	return s->challenge;
}

enum auth_status
auth_login(struct auth_session *s, const char *user, size_t ulen,
    const char *pass, size_t plen)
{
	if (s->state != SS_NEW)
		return misuse(s, "auth_login");
	strlcpy_checked(s->mech, "login", sizeof(s->mech));
	if (!s->tls)
		return finish(s, AUTH_ENCRYPT, "no TLS");
	take_credentials(s, user, ulen, pass, plen);
	if (s->creds_bad != NULL)
		return finish(s, AUTH_FAIL, s->creds_bad);
	s->state = SS_PENDING;
	return AUTH_VERIFY;
}

/* ---- the check (any thread) ---- */

/*
 * Look the user up and check the password.  An unknown user, and one
 * whose hash is locked ('*', '!'), is checked against the dummy yescrypt
 * hash so that every answer costs one hash; a disabled user or domain is
 * refused only after its hash was checked.  Sets result, reason, canon.
 */
static void
verify_run(struct auth_session *s)
{
	struct auth_ctx *ctx = s->ctx;
	struct mailaddr a;
	struct db_user u;
	const char *why, *hash;
	char key[ADDR_MAX], esc[128];
	struct db *db;
	int found, match;

	s->result = AUTH_FAIL;
	memset(&u, 0, sizeof(u));
	if (addr_parse_plain(s->user, &a, &why) < 0 ||
	    addr_format(&a, key, sizeof(key)) < 0) {
		s->reason = "user name is not an address";
		goto out;
	}
	if ((db = db_take(ctx)) == NULL) {
		s->result = AUTH_TEMPFAIL;
		s->reason = "cannot open the account database";
		goto out;
	}
	found = db_user_get(db, key, &u);
	db_give(ctx, db, found < 0);
	if (found < 0) {
		log_error("auth: account database lookup failed");
		s->result = AUTH_TEMPFAIL;
		s->reason = "account database error";
		goto out;
	}
	hash = found == 1 && u.password_hash[0] != '*' &&
	    u.password_hash[0] != '!' ? u.password_hash : ctx->dummy_hash;
	match = password_verify(hash, s->pass);
	if (found == 0)
		s->reason = "unknown user";
	else if (hash == ctx->dummy_hash)
		s->reason = "password locked";
	else if (match < 0) {
		log_warn("auth: the password hash of %s cannot be checked",
		    log_escape(esc, sizeof(esc), u.address, strlen(u.address)));
		s->reason = "stored password hash unusable";
	} else if (match == 0)
		s->reason = "wrong password";
	else if (!u.active)
		s->reason = "user or domain disabled";
	else if (strlcpy_checked(s->canon, u.address, sizeof(s->canon)) == 0) {
		s->result = AUTH_OK;
		s->reason = "";
	}
out:
	explicit_bzero(u.password_hash, sizeof(u.password_hash));
	explicit_bzero(s->pass, sizeof(s->pass));
}

static struct auth_session *
job_session(struct pool_job *job)
{
	return (struct auth_session *)((char *)job -
	    offsetof(struct auth_session, job));
}

static void
verify_work(struct pool_job *job)
{
	verify_run(job_session(job));
}

static void
verify_done(struct pool_job *job)
{
	struct auth_session *s = job_session(job);

	if (s->orphaned) {
		session_destroy(s);
		return;
	}
	s->state = SS_DONE;
	s->done(s, s->result, s->done_arg);	/* may free s */
}

int
auth_verify_submit(struct auth_session *s, struct pool *pool,
    auth_done_fn *done, void *arg)
{
	if (s->state != SS_PENDING || done == NULL)
		return -1;
	s->state = SS_VERIFYING;
	s->done = done;
	s->done_arg = arg;
	s->job.work = verify_work;
	s->job.done = verify_done;
	pool_submit(pool, &s->job);
	return 0;
}

enum auth_status
auth_verify_now(struct auth_session *s)
{
	if (s->state != SS_PENDING)
		return misuse(s, "auth_verify_now");
	verify_run(s);
	s->state = SS_DONE;
	return s->result;
}

/* ---- results ---- */

const char *
auth_user(const struct auth_session *s)
{
	return s->state == SS_DONE && s->result == AUTH_OK ? s->canon : NULL;
}

const char *
auth_mech(const struct auth_session *s)
{
	return s->mech;
}

const char *
auth_attempted_user(const struct auth_session *s)
{
	return s->user;
}

const char *
auth_reason(const struct auth_session *s)
{
	return s->state == SS_VERIFYING ? "" : s->reason;
}

void
auth_log_result(const struct auth_session *s, const char *sid,
    const char *ip, const char *result, const char *extra)
{
	char user[128];
	const char *u = auth_attempted_user(s);

	log_info("sid=%s ip=%s login %s mech=%s user=%s%s%s%s", sid, ip,
	    result, auth_mech(s), log_escape(user, sizeof(user), u, strlen(u)),
	    extra, auth_reason(s)[0] ? " reason=" : "", auth_reason(s));
}
