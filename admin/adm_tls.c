/*
 * adm_tls.c - the self-signed certificate mailadm init makes when the
 * configured tls_cert / tls_key do not exist, so the daemons can offer
 * TLS from the first start (replace it with a real one, e.g. from Let's
 * Encrypt, by overwriting the two files).
 *
 * In process with the OpenSSL API: an EC P-256 key, an X509v3
 * certificate with CN and subjectAltName DNS:hostname, valid 10 years.
 * The key file is created 0600 (and given to the daemons' user), the
 * certificate 0644; neither ever overwrites an existing file.
 */
#include "adm.h"
#include "../common/addr.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define CERT_DAYS 3653		/* 10 years */

static int
ssl_fail(char *err, size_t errlen, const char *what)
{
	char e[256];

	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf_checked(err, errlen, "%s: %s", what, e);
	ERR_clear_error();
	return -1;
}

/* Extensions whose values are our constants (never user text). */
static int
add_const_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* subjectAltName DNS:host, built as a structure (no config-string parsing). */
static int
add_san(X509 *x, const char *host)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gen = GENERAL_NAME_new();
	ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
	int ok = 0;

	if (gens == NULL || gen == NULL || ia5 == NULL ||
	    !ASN1_STRING_set(ia5, host, (int)strlen(host)))
		goto out;
	GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
	ia5 = NULL;
	if (!sk_GENERAL_NAME_push(gens, gen))
		goto out;
	gen = NULL;
	ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0,
	    X509V3_ADD_DEFAULT) == 1;
out:
	ASN1_IA5STRING_free(ia5);
	GENERAL_NAME_free(gen);
	GENERAL_NAMES_free(gens);
	return ok ? 0 : -1;
}

static int
random_serial(X509 *x)
{
	BIGNUM *bn = BN_new();
	int ok = 0;

	if (bn != NULL && BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) &&
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		ok = 1;
	BN_free(bn);
	return ok ? 0 : -1;
}

static X509 *
make_cert(EVP_PKEY *key, const char *host)
{
	X509 *x = X509_new();
	X509_NAME *name;

	if (x == NULL)
		return NULL;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || random_serial(x) < 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL ||
	    !X509_set_pubkey(x, key) ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)host, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) ||
	    add_const_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_const_ext(x, NID_key_usage, "critical,digitalSignature") < 0 ||
	    add_const_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_const_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    add_const_ext(x, NID_authority_key_identifier, "keyid:always") < 0 ||
	    add_san(x, host) < 0 ||
	    X509_sign(x, key, EVP_sha256()) == 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* PEM text of the key or the certificate, written to a new file. */
static int
write_pem(const char *path, EVP_PKEY *key, X509 *cert, mode_t mode,
    char *err, size_t errlen)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int r = -1;

	if (mem == NULL)
		return ssl_fail(err, errlen, "BIO_new");
	if (key != NULL ? !PEM_write_bio_PrivateKey(mem, key, NULL, NULL, 0,
	    NULL, NULL) : !PEM_write_bio_X509(mem, cert)) {
		ssl_fail(err, errlen, "PEM encoding");
	} else {
		len = BIO_get_mem_data(mem, &data);
		if (len > 0)
			r = adm_write_new_file(path, data, (size_t)len, mode,
			    err, errlen);
	}
	BIO_free(mem);	/* BUF_MEM_free clears the bytes it frees */
	return r;
}

int
adm_tls_selfsigned(const char *hostname, const char *cert_path,
    const char *key_path, const struct adm_owner *o, char *err,
    size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int changed, r = -1;

	if (!addr_domain_valid(hostname, strlen(hostname), 0) ||
	    hostname[0] == '[') {
		snprintf_checked(err, errlen, "hostname \"%s\" is not a valid DNS "
		    "name; set hostname = mail.example.org in the config",
		    hostname);
		return -1;
	}
	key = EVP_EC_gen("P-256");
	if (key == NULL)
		return ssl_fail(err, errlen, "generating the EC P-256 key");
	cert = make_cert(key, hostname);
	if (cert == NULL) {
		ssl_fail(err, errlen, "making the certificate");
		goto out;
	}
	if (write_pem(key_path, key, NULL, 0600, err, errlen) < 0)
		goto out;
	if (adm_chown(key_path, o, &changed, err, errlen) < 0 ||
	    write_pem(cert_path, NULL, cert, 0644, err, errlen) < 0) {
		unlink(key_path);
		goto out;
	}
	r = 0;
out:
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}
