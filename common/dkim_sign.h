/*
 * dkim_sign.h - DKIM keys and signatures for our outgoing mail: sign a
 * queued message (libopendkim, rsa-sha256, relaxed/relaxed), make an RSA
 * key, and turn a key into the TXT record to publish.
 *
 * Safe to call from several threads at once: one libopendkim library
 * handle is made on first use and shared, each message gets its own
 * signing handle.  Nothing here touches the database or the network.
 */
#ifndef BUZON_DKIM_SIGN_H
#define BUZON_DKIM_SIGN_H

#include <stddef.h>

#include "buf.h"

#define DKIM_BITS_MIN 1024
#define DKIM_BITS_MAX 4096
#define DKIM_BITS_DEFAULT 2048
/* One character-string of a TXT record (RFC 1035 3.3). */
#define DKIM_TXT_CHUNK 255
/* A private key file larger than this is not a key we wrote. */
#define DKIM_KEY_FILE_MAX (64 * 1024)

/*
 * Create the shared library handle now (it is otherwise made by the
 * first dkim_sign_message()), so that a daemon can fail at start.
 * 0, or -1 with err.
 */
int dkim_sign_init(char *err, size_t errlen);

/*
 * Sign msg as it lies in our queue: LF line ends, the header, an empty
 * line, the body.  (An LF already preceded by CR is taken as one line
 * end, not doubled.)  key_pem is the private key in PEM, key_len bytes,
 * not necessarily NUL-terminated.  On success out is replaced by
 * exactly one header field, "DKIM-Signature: ...\n", folded with LF and
 * tab, to put in front of the message unchanged.  Signed: those of
 * From, To, Cc, Subject, Date, Message-ID, MIME-Version, Content-Type,
 * Content-Transfer-Encoding, Reply-To, In-Reply-To, References that are
 * present, and From once more (oversigned) so that no From can be added
 * later.  0, or -1 with err.
 */
int dkim_sign_message(const char *key_pem, size_t key_len,
    const char *domain, const char *selector, const char *msg,
    size_t msg_len, struct buf *out, char *err, size_t errlen);

/* A new RSA key of bits (DKIM_BITS_MIN..MAX), PKCS#8 PEM into pem_out
 * (replaced).  The caller wipes pem_out.  0, or -1 with err. */
int dkim_keygen(unsigned bits, struct buf *pem_out, char *err,
    size_t errlen);

/* The p= value of a private RSA key: base64 of the public key's DER
 * SubjectPublicKeyInfo, into p_b64_out (replaced).  0 or -1. */
int dkim_txt_record(const char *key_pem, size_t len, struct buf *p_b64_out);

/* "v=DKIM1; k=rsa; p=P_B64" into out (replaced).  0 or -1. */
int dkim_txt_value(const char *p_b64, struct buf *out);

/*
 * Append the data of a TXT record as a zone file writes it: quoted
 * character-strings of at most DKIM_TXT_CHUNK octets each, separated by
 * one space, '"' and '\\' escaped.  Printable ASCII only.  0 or -1.
 */
int dkim_txt_quote(const char *value, struct buf *out);

/*
 * The zone-file line to publish (out replaced, no line end):
 *   SELECTOR._domainkey.DOMAIN. IN TXT "v=DKIM1; k=rsa; p=..." "..."
 * 0 or -1.
 */
int dkim_zone_line(const char *selector, const char *domain,
    const char *p_b64, struct buf *out);

/* Read a private key file (at most DKIM_KEY_FILE_MAX) into pem_out
 * (replaced).  The caller wipes it.  0, or -1 with err. */
int dkim_key_read(const char *path, struct buf *pem_out, char *err,
    size_t errlen);

/* Zero a buffer that held a private key, then free it. */
void dkim_buf_wipe(struct buf *b);

/*
 * The allocations of one libopendkim message handle, noted so that what
 * dkim_free() forgets is freed too: give dkim_arena_malloc and
 * dkim_arena_free to dkim_init(), a zeroed arena as the memory closure
 * of dkim_sign()/dkim_verify(), and call dkim_arena_release() after
 * dkim_free().  One arena per handle; the library's own allocations
 * (NULL closure) are plain malloc/free.
 */
struct dkim_arena {
	void **p;
	size_t n, cap;
};
void *dkim_arena_malloc(void *closure, size_t n);
void dkim_arena_free(void *closure, void *p);
void dkim_arena_release(struct dkim_arena *a);

#endif
