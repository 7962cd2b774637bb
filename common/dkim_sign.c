/*
 * dkim_sign.c - DKIM signatures on mail our users send (libopendkim) and
 * the keys behind them (OpenSSL): keygen, the public TXT record, the
 * zone-file line the admin publishes.
 *
 * The queue keeps messages with LF line ends; DKIM hashes the CRLF form
 * that goes on the wire, so every line is given to libopendkim with CRLF
 * and the signature comes back with LF.  One DKIM_LIB is shared by all
 * threads (libopendkim allows that once its options are set, which
 * pthread_once does before anyone signs); a DKIM handle is per message.
 * Nothing here may log key material or read the database.
 */
#include "dkim_sign.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dkim.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/*
 * What we sign when present (RFC 6376 5.4.1 recommends these).  From is
 * also oversigned: the signature then covers one more From than the
 * message has, so a From prepended later breaks it.
 */
static const char *signed_headers[] = {
	"from", "to", "cc", "subject", "date", "message-id", "mime-version",
	"content-type", "content-transfer-encoding", "reply-to",
	"in-reply-to", "references", NULL
};
static const char *oversigned_headers[] = { "from", NULL };

/* libopendkim copies the CRLF form of this many bytes at a time. */
#define CHUNK_SIZE (64 * 1024)

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static DKIM_LIB *lib;
static char lib_err[256];

/*
 * libopendkim 2.11 never frees the key structure dkim_privkey_load()
 * allocates for a signing handle: 64 bytes lost per message, for ever,
 * in a daemon.  So every allocation a signing handle makes is noted in a
 * per-message registry (its memory closure), and whatever dkim_free()
 * leaves behind is freed after it.  The library's own allocations come
 * with a NULL closure and are plain malloc/free.  policy_dkim.c gives
 * its verifying handles the same registry.
 */
void *
dkim_arena_malloc(void *closure, size_t n)
{
	struct dkim_arena *a = closure;
	void **np, *p;

	if (a == NULL)
		return malloc(n);
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 64;

		if ((np = reallocarray(a->p, ncap, sizeof(*np))) == NULL)
			return NULL;
		a->p = np;
		a->cap = ncap;
	}
	if ((p = malloc(n)) != NULL)
		a->p[a->n++] = p;
	return p;
}

void
dkim_arena_free(void *closure, void *p)
{
	struct dkim_arena *a = closure;
	size_t i;

	/* Frees come mostly in reverse order of allocation: search back. */
	if (a != NULL && p != NULL) {
		for (i = a->n; i-- > 0;)
			if (a->p[i] == p) {
				a->p[i] = a->p[--a->n];
				break;
			}
	}
	free(p);
}

void
dkim_arena_release(struct dkim_arena *a)
{
	while (a->n > 0)
		free(a->p[--a->n]);
	free(a->p);
	a->p = NULL;
	a->cap = 0;
}

static void
lib_create(void)
{
	DKIM_LIB *l;

	if ((l = dkim_init(dkim_arena_malloc, dkim_arena_free)) == NULL) {
		snprintf_checked(lib_err, sizeof(lib_err), "libopendkim: "
		    "dkim_init failed");
		return;
	}
	if (dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
	    signed_headers, sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
	    oversigned_headers, sizeof(char **)) != DKIM_STAT_OK) {
		snprintf_checked(lib_err, sizeof(lib_err), "libopendkim: "
		    "cannot set the signed header list");
		dkim_close(l);
		return;
	}
	lib = l;
}

int
dkim_sign_init(char *err, size_t errlen)
{
	pthread_once(&lib_once, lib_create);
	if (lib == NULL) {
		snprintf_checked(err, errlen, "%s", lib_err);
		return -1;
	}
	return 0;
}

static int
sign_fail(DKIM *d, const char *what, DKIM_STAT st, char *err, size_t errlen)
{
	const char *detail = d != NULL ? dkim_geterror(d) : NULL;

	snprintf_checked(err, errlen, "DKIM %s: %s%s%s", what,
	    dkim_getresultstr(st), detail != NULL && *detail ? ": " : "",
	    detail != NULL ? detail : "");
	return -1;
}

/*
 * Give msg to libopendkim with every bare LF made CRLF, CHUNK_SIZE bytes
 * of output at a time.
 */
static DKIM_STAT
feed_crlf(DKIM *d, const char *msg, size_t len, unsigned char *chunk)
{
	size_t i, n = 0;
	DKIM_STAT st;

	for (i = 0; i < len; i++) {
		if (n + 2 > CHUNK_SIZE) {
			if ((st = dkim_chunk(d, chunk, n)) != DKIM_STAT_OK)
				return st;
			n = 0;
		}
		if (msg[i] == '\n' && (i == 0 || msg[i - 1] != '\r'))
			chunk[n++] = '\r';
		chunk[n++] = (unsigned char)msg[i];
	}
	if (n > 0 && (st = dkim_chunk(d, chunk, n)) != DKIM_STAT_OK)
		return st;
	return dkim_chunk(d, NULL, 0);
}

/* out = "DKIM-Signature: " value "\n", the value's CRLFs made LF. */
static int
put_header(struct buf *out, const unsigned char *v, size_t vlen)
{
	size_t i;

	buf_reset(out);
	if (buf_puts(out, DKIM_SIGNHEADER ": ") < 0)
		return -1;
	for (i = 0; i < vlen; i++) {
		if (v[i] == '\r')
			continue;
		if (buf_putc(out, (char)v[i]) < 0)
			return -1;
	}
	return buf_putc(out, '\n');
}

int
dkim_sign_message(const char *key_pem, size_t key_len, const char *domain,
    const char *selector, const char *msg, size_t msg_len, struct buf *out,
    char *err, size_t errlen)
{
	unsigned char *key = NULL, *chunk = NULL, *hdr = NULL;
	struct dkim_arena arena = { NULL, 0, 0 };
	DKIM *d = NULL;
	DKIM_STAT st;
	size_t hlen;
	int r = -1;

	if (dkim_sign_init(err, errlen) < 0)
		return -1;
	/* libopendkim wants the key as a C string. */
	if ((key = malloc(key_len + 1)) == NULL ||
	    (chunk = malloc(CHUNK_SIZE)) == NULL) {
		snprintf_checked(err, errlen, "DKIM: out of memory");
		goto done;
	}
	memcpy(key, key_pem, key_len);
	key[key_len] = '\0';
	d = dkim_sign(lib, (const unsigned char *)"buzon", &arena, key,
	    (const unsigned char *)selector, (const unsigned char *)domain,
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1,
	    &st);
	if (d == NULL) {
		sign_fail(NULL, "signing setup", st, err, errlen);
		goto done;
	}
	if ((st = feed_crlf(d, msg, msg_len, chunk)) != DKIM_STAT_OK) {
		sign_fail(d, "message", st, err, errlen);
		goto done;
	}
	if ((st = dkim_eom(d, NULL)) != DKIM_STAT_OK) {
		sign_fail(d, "signing", st, err, errlen);
		goto done;
	}
	st = dkim_getsighdr_d(d, strlen(DKIM_SIGNHEADER ": "), &hdr, &hlen);
	if (st != DKIM_STAT_OK) {
		sign_fail(d, "signature header", st, err, errlen);
		goto done;
	}
	if (put_header(out, hdr, hlen) < 0) {
		snprintf_checked(err, errlen, "DKIM: signature header too long");
		goto done;
	}
	r = 0;
done:
	if (d != NULL)
		dkim_free(d);	/* also frees hdr */
	dkim_arena_release(&arena);
	if (key != NULL) {
		explicit_bzero(key, key_len);
		free(key);
	}
	free(chunk);
	return r;
}

static void
ssl_err(const char *what, char *err, size_t errlen)
{
	unsigned long e = ERR_get_error();
	char s[256];

	ERR_error_string_n(e, s, sizeof(s));
	ERR_clear_error();
	snprintf_checked(err, errlen, "%s: %s", what, e ? s : "failed");
}

int
dkim_keygen(unsigned bits, struct buf *pem_out, char *err, size_t errlen)
{
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	char *p;
	long n;
	int r = -1;

	if (bits < DKIM_BITS_MIN || bits > DKIM_BITS_MAX) {
		snprintf_checked(err, errlen, "RSA key size %u: use %u to %u bits",
		    bits, DKIM_BITS_MIN, DKIM_BITS_MAX);
		return -1;
	}
	if ((pk = EVP_RSA_gen(bits)) == NULL) {
		ssl_err("RSA key generation", err, errlen);
		goto done;
	}
	/* secmem: the PEM text is wiped when the BIO is freed. */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL)) {
		ssl_err("writing the key", err, errlen);
		goto done;
	}
	n = BIO_get_mem_data(bio, &p);
	if (n <= 0 || buf_set(pem_out, p, (size_t)n) < 0) {
		snprintf_checked(err, errlen, "writing the key: out of memory");
		goto done;
	}
	r = 0;
done:
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return r;
}

int
dkim_txt_record(const char *key_pem, size_t len, struct buf *p_b64_out)
{
	EVP_PKEY *pk = NULL;
	BIO *bio;
	unsigned char *der = NULL, *b64 = NULL;
	int dlen, r = -1;

	if (len > DKIM_KEY_FILE_MAX ||
	    (bio = BIO_new_mem_buf(key_pem, (int)len)) == NULL)
		return -1;
	pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pk == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_RSA)
		goto done;
	if ((dlen = i2d_PUBKEY(pk, &der)) <= 0)
		goto done;
	/* 4 output bytes per 3 input bytes, plus the NUL. */
	if ((b64 = malloc(((size_t)dlen + 2) / 3 * 4 + 1)) == NULL)
		goto done;
	EVP_EncodeBlock(b64, der, dlen);
	if (buf_set(p_b64_out, b64, strlen((char *)b64)) < 0)
		goto done;
	r = 0;
done:
	ERR_clear_error();
	free(b64);
	OPENSSL_free(der);
	EVP_PKEY_free(pk);
	return r;
}

static int
is_b64(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '+' && *s != '/' &&
		    *s != '=')
			return 0;
	return 1;
}

int
dkim_txt_value(const char *p_b64, struct buf *out)
{
	if (!is_b64(p_b64))
		return -1;
	buf_reset(out);
	return buf_printf(out, "v=DKIM1; k=rsa; p=%s", p_b64);
}

int
dkim_txt_quote(const char *value, struct buf *out)
{
	struct buf q;
	size_t i, len = strlen(value);
	int r = 0;

	if (len == 0)
		return buf_puts(out, "\"\"");
	/* Built aside so that out is unchanged on error. */
	buf_init(&q, out->max);
	for (i = 0; i < len && r == 0; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c < 0x20 || c >= 0x7f) {
			r = -1;
			break;
		}
		if (i % DKIM_TXT_CHUNK == 0)
			r |= buf_puts(&q, i == 0 ? "\"" : "\" \"");
		if (c == '"' || c == '\\')
			r |= buf_putc(&q, '\\');
		r |= buf_putc(&q, (char)c);
	}
	if (r == 0)
		r = buf_putc(&q, '"');
	if (r == 0)
		r = buf_append(out, q.data, q.len);
	buf_free(&q);
	return r;
}

int
dkim_zone_line(const char *selector, const char *domain, const char *p_b64,
    struct buf *out)
{
	struct buf v;
	int r;

	buf_init(&v, 4096);
	buf_reset(out);
	r = dkim_txt_value(p_b64, &v);
	if (r == 0)
		r = buf_printf(out, "%s._domainkey.%s. IN TXT ", selector,
		    domain);
	if (r == 0)
		r = dkim_txt_quote(buf_cstr(&v), out);
	buf_free(&v);
	return r;
}

int
dkim_key_read(const char *path, struct buf *pem_out, char *err,
    size_t errlen)
{
	char tmp[4096];
	struct stat st;
	ssize_t n;
	int fd;

	buf_reset(pem_out);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		snprintf_checked(err, errlen, "DKIM key %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > DKIM_KEY_FILE_MAX) {
		snprintf_checked(err, errlen, "DKIM key %s: not a key file",
		    path);
		close(fd);
		return -1;
	}
	for (;;) {
		n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (pem_out->len + (size_t)n > DKIM_KEY_FILE_MAX ||
		    buf_append(pem_out, tmp, (size_t)n) < 0) {
			n = -1;
			errno = EFBIG;
			break;
		}
	}
	explicit_bzero(tmp, sizeof(tmp));
	if (n < 0) {
		snprintf_checked(err, errlen, "DKIM key %s: %s", path,
		    strerror(errno));
		close(fd);
		dkim_buf_wipe(pem_out);
		return -1;
	}
	close(fd);
	return 0;
}

void
dkim_buf_wipe(struct buf *b)
{
	if (b->data != NULL)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}
