/*
 * tls.h - the server TLS context every daemon uses: TLS 1.2 minimum,
 * no compression or renegotiation, buffers released when idle.
 */
#ifndef BUZON_TLS_H
#define BUZON_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

/* NULL with err set when the certificate or key cannot be used. */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, char *err,
    size_t errlen);

#endif
