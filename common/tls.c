/*
 * tls.c - server-side SSL_CTX (see tls.h).  Cipher choice follows the
 * Mozilla "intermediate" profile: forward secrecy and AEAD only.
 */
#include "tls.h"
#include "buf.h"

#include <stdio.h>
#include <openssl/err.h>

SSL_CTX *
tls_server_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	char e[256];

	if (ctx == NULL) {
		snprintf(err, errlen, "cannot create TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	    SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION |
	    /*
	     * Many clients close TCP without close_notify after their last
	     * command; OpenSSL 3 would make that fatal and drop our replies.
	     * Our protocols frame their own data, so truncation is harmless.
	     */
	    SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
	    SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_cipher_list(ctx,
	    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
	    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"buzon", 5);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "%s: cannot load TLS certificate: %s "
		    "(run mailadm init for a self-signed one)", cert, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_error_string_n(ERR_get_error(), e, sizeof(e));
		snprintf(err, errlen, "%s: cannot load TLS key: %s", key, e);
		SSL_CTX_free(ctx);
		return NULL;
	}
	ERR_clear_error();
	return ctx;
}
