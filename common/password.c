/*
 * password.c - crypt(3) password hashes (libxcrypt): checking a password
 * against a stored hash, and making new yescrypt hashes (db.h).
 *
 * Accepted: $y$ (yescrypt), $gy$, $7$ (scrypt), $6$ / $5$ (SHA-crypt) and
 * $2b$ / $2y$ / $2a$ (bcrypt), bare or behind Dovecot's {SHA512-CRYPT},
 * {SHA256-CRYPT}, {BLF-CRYPT} and {CRYPT} prefixes.  Weak schemes (DES,
 * MD5-crypt) never match.  A hash starting with '*' or '!' is a locked
 * account and never matches.  Never logs or keeps a password.
 */
#include "db.h"
#include "buf.h"
#include "log.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

static const char *const dovecot_prefixes[] = {
	"{SHA512-CRYPT}", "{SHA256-CRYPT}", "{BLF-CRYPT}", "{CRYPT}",
};

static const char *const accepted_methods[] = {
	"$y$", "$gy$", "$7$", "$6$", "$5$", "$2b$", "$2y$", "$2a$",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int
has_prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

/* crypt_r into a heap crypt_data (it is 32K: too big for a thread stack). */
static int
run_crypt(const char *password, const char *setting, char *out, size_t outsz)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;
	int r = -1;

	if (cd == NULL)
		return -1;
	h = crypt_r(password, setting, cd);
	if (h != NULL && h[0] != '*' && strlcpy_checked(out, h, outsz) == 0)
		r = 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return r;
}

int
password_verify(const char *hash, const char *password)
{
	char computed[DB_HASH_MAX];
	size_t i, hl;
	int r;

	if (hash == NULL || password == NULL)
		return -1;
	if (hash[0] == '\0' || hash[0] == '*' || hash[0] == '!')
		return 0;
	if (hash[0] == '{') {
		for (i = 0; i < NELEM(dovecot_prefixes); i++)
			if (has_prefix(hash, dovecot_prefixes[i]))
				break;
		if (i == NELEM(dovecot_prefixes)) {
			log_warn("password hash with an unsupported {SCHEME}: "
			    "never matches");
			return 0;
		}
		hash += strlen(dovecot_prefixes[i]);
		if (hash[0] == '*' || hash[0] == '!')
			return 0;
	}
	for (i = 0; i < NELEM(accepted_methods); i++)
		if (has_prefix(hash, accepted_methods[i]))
			break;
	if (i == NELEM(accepted_methods)) {
		log_warn("password hash of an unsupported method: never matches");
		return 0;
	}
	if (run_crypt(password, hash, computed, sizeof(computed)) < 0)
		return -1;	/* malformed hash */
	hl = strlen(hash);
	r = strlen(computed) == hl && CRYPTO_memcmp(computed, hash, hl) == 0;
	explicit_bzero(computed, sizeof(computed));
	return r;
}

int
password_hash(const char *password, char *out, size_t outsz)
{
	char *salt = crypt_gensalt_ra("$y$", 0, NULL, 0);
	int r;

	if (salt == NULL)
		return -1;
	r = run_crypt(password, salt, out, outsz);
	free(salt);
	return r;
}
