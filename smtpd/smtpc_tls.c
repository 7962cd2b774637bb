/*
 * smtpc_tls.c - the SSL_CTX of the SMTP client (see smtpc.h).
 *
 * Opportunistic STARTTLS between MTAs (RFC 3207, RFC 7435): anything
 * encrypted beats plaintext, so the peer's certificate is checked and the
 * result recorded, never enforced here; the policy (MTA-STS, DANE, a
 * smarthost that must verify) belongs to the caller.  Protocol floor TLS
 * 1.2 as for our servers.
 */
#include "smtpc.h"

#include <stdio.h>
#include <openssl/err.h>

SSL_CTX *
smtpc_tls_ctx(char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char e[256];

	if (ctx == NULL) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "cannot create the client TLS context: "
		    "%s", e);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot set TLS 1.2 as the minimum");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION |
	    /*
	     * Servers close after "221" without close_notify; the SMTP
	     * dialogue frames its own data, so that is no error for us.
	     */
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* a write interrupted by WANT_WRITE is simply retried with its buffer */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
	/*
	 * Verify, but let the handshake go on whatever the result:
	 * SSL_get_verify_result() still tells (smtpc_tls_verified).
	 */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "cannot load the system CA store: %s",
		    e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	ERR_clear_error();
	return ctx;
}
