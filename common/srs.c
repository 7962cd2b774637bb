/*
 * srs.c - Sender Rewriting Scheme (see srs.h).
 *
 * The layout, hash input and time stamps follow libsrs2 (srs2.c) so that
 * addresses look like every other SRS forwarder's, with three deliberate
 * differences: the key is 32 random bytes rather than a text secret, the
 * hash is checked before the time stamp (a forged address reads as
 * forged, not as old), and every field is checked for syntax (exactly
 * four hash and two stamp characters, a host name, a local part that
 * needs no quoting) because the result becomes an envelope address.
 *
 * Never keeps state between calls: the queue runner's threads sign and
 * smtpd verifies concurrently with one key.
 */
#include "srs.h"
#include "addr.h"
#include "buf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SRS_HASH_LEN 4
#define SRS_STAMP_LEN 2
#define SRS_DAY (60 * 60 * 24)
#define SRS_STAMP_SLOTS 1024		/* two base32 characters */
#define SRS_PATH_MAX 254		/* RFC 5321 4.5.3.1.3, without <> */
#define SRS_SEPARATORS "=-+"		/* after SRS0/SRS1, as libsrs2 */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct span {
	const char *p;
	size_t n;
};

static unsigned char
lower(unsigned char c)
{
	/* no branch on the byte: also used on hash characters */
	return (unsigned char)(c + ((unsigned)(c - 'A') < 26u) * 32u);
}

/*
 * Text that can stand in a local part without quotes once it follows a
 * '=': a Dot-string, which may start with a dot since the '=' before it
 * is atext.
 */
static int
local_ok(const char *p, size_t n)
{
	if (n > 0 && p[0] == '.') {
		p++;
		n--;
	}
	return addr_is_dot_string(p, n, 0);
}

/* A host name (no address literal: '[' cannot stand in a local part). */
static int
host_ok(const char *p, size_t n)
{
	return n > 0 && p[0] != '[' && addr_domain_valid(p, n, 0);
}

/* 1 if local (n bytes) starts with SRS<digit> and a separator. */
static int
is_tag(const char *local, size_t n, char digit)
{
	return n >= 5 && strncasecmp(local, "SRS", 3) == 0 &&
	    local[3] == digit && strchr(SRS_SEPARATORS, local[4]) != NULL;
}

/* HHHH: base64 of the first three octets of HMAC-SHA1 over lower(parts). */
static int
srs_hash(const unsigned char *key, const struct span *parts, size_t nparts,
    char hash[SRS_HASH_LEN])
{
	unsigned char data[2 * SRS_ADDR_MAX], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	size_t i, j, len = 0;

	for (i = 0; i < nparts; i++) {
		if (parts[i].n > sizeof(data) - len)
			return -1;
		for (j = 0; j < parts[i].n; j++)
			data[len++] = lower((unsigned char)parts[i].p[j]);
	}
	if (HMAC(EVP_sha1(), key, SRS_KEY_LEN, data, len, md, &mdlen) ==
	    NULL || mdlen < 3)
		return -1;
	hash[0] = b64[md[0] >> 2];
	hash[1] = b64[((md[0] & 0x03) << 4) | (md[1] >> 4)];
	hash[2] = b64[((md[1] & 0x0f) << 2) | (md[2] >> 6)];
	hash[3] = b64[md[2] & 0x3f];
	return 0;
}

/* Constant time and case-insensitive, as libsrs2's strncasecmp. */
static int
srs_hash_check(const unsigned char *key, const struct span *parts,
    size_t nparts, const char *given)
{
	char want[SRS_HASH_LEN];
	unsigned char a[SRS_HASH_LEN], b[SRS_HASH_LEN];
	size_t i;

	if (srs_hash(key, parts, nparts, want) < 0)
		return -1;
	for (i = 0; i < SRS_HASH_LEN; i++) {
		a[i] = lower((unsigned char)want[i]);
		b[i] = lower((unsigned char)given[i]);
	}
	return CRYPTO_memcmp(a, b, SRS_HASH_LEN) == 0 ? 0 : -1;
}

static unsigned long
srs_day(time_t now)
{
	return now < 0 ? 0 : (unsigned long)(now / SRS_DAY);
}

static void
srs_stamp(time_t now, char tt[SRS_STAMP_LEN])
{
	unsigned long d = srs_day(now);

	tt[0] = b32[(d >> 5) & 31];
	tt[1] = b32[d & 31];
}

/* Day slot of a stamp, or -1 if it is not two base32 characters. */
static int
srs_stamp_decode(const char *tt)
{
	const char *c;
	char ch;
	int i, v = 0;

	for (i = 0; i < SRS_STAMP_LEN; i++) {
		ch = tt[i];
		if (ch >= 'a' && ch <= 'z')
			ch = (char)(ch - 'a' + 'A');
		if (ch == '\0' || (c = strchr(b32, ch)) == NULL)
			return -1;
		v = (v << 5) | (int)(c - b32);
	}
	return v;
}

/* libsrs2's check: the stamp is a past day modulo the 1024-day wrap. */
static int
srs_stamp_fresh(int then, time_t now)
{
	unsigned long today = srs_day(now) % SRS_STAMP_SLOTS;

	while (today < (unsigned long)then)
		today += SRS_STAMP_SLOTS;
	return today - (unsigned long)then <= SRS_MAX_AGE_DAYS;
}

static int
forward_fail(int e)
{
	errno = e;
	return -1;
}

int
srs_forward(const unsigned char key[SRS_KEY_LEN], const char *sender,
    const char *srs_domain, time_t now, char *out, size_t outsz)
{
	const char *at, *dom, *e1, *e2, *tag;
	struct span parts[3];
	size_t i, ulen, llen, nparts;
	char hash[SRS_HASH_LEN], tt[SRS_STAMP_LEN];
	int r;

	if (sender == NULL || srs_domain == NULL ||
	    (at = strrchr(sender, '@')) == NULL)
		return forward_fail(EINVAL);
	ulen = (size_t)(at - sender);
	dom = at + 1;
	if (!host_ok(srs_domain, strlen(srs_domain)))
		return forward_fail(EINVAL);
	if (strcasecmp(dom, srs_domain) == 0) {
		/* ours already: SPF passes as it is */
		if (strlen(sender) > SRS_PATH_MAX || strlen(sender) >= outsz)
			return forward_fail(ERANGE);
		memcpy(out, sender, strlen(sender) + 1);
		return 0;
	}
	if (!local_ok(sender, ulen) || !host_ok(dom, strlen(dom)))
		return forward_fail(EINVAL);

	if (is_tag(sender, ulen, '1')) {
		/*
		 * SRS1<sep>HHHH=host=rest: keep the first hop, sign anew.
		 * rest is what followed "SRS0" there, so it starts with a
		 * separator ("host==..."); reverse insists on it too.
		 */
		if ((e1 = memchr(sender + 5, '=', ulen - 5)) == NULL ||
		    e1 == sender + 5 ||
		    (e2 = memchr(e1 + 1, '=', (size_t)(at - e1 - 1))) == NULL ||
		    e2 == e1 + 1 || at - e2 < 2 ||
		    strchr(SRS_SEPARATORS, e2[1]) == NULL ||
		    !host_ok(e1 + 1, (size_t)(e2 - e1 - 1)))
			return forward_fail(EINVAL);
		parts[0] = (struct span){ e1 + 1, (size_t)(e2 - e1 - 1) };
		parts[1] = (struct span){ e2 + 1, (size_t)(at - e2 - 1) };
		nparts = 2;
		tag = "SRS1";
	} else if (is_tag(sender, ulen, '0')) {
		/* someone else's SRS0: we are the second hop */
		parts[0] = (struct span){ dom, strlen(dom) };
		parts[1] = (struct span){ sender + 4, ulen - 4 };
		nparts = 2;
		tag = "SRS1";
	} else {
		srs_stamp(now, tt);
		parts[0] = (struct span){ tt, SRS_STAMP_LEN };
		parts[1] = (struct span){ dom, strlen(dom) };
		parts[2] = (struct span){ sender, ulen };
		nparts = 3;
		tag = "SRS0";
	}

	/* tag '=' HHHH ('=' part)... */
	llen = 4 + 1 + SRS_HASH_LEN;
	for (i = 0; i < nparts; i++)
		llen += 1 + parts[i].n;
	if (llen > ADDR_LOCAL_MAX || llen + 1 + strlen(srs_domain) >
	    SRS_PATH_MAX || llen + 1 + strlen(srs_domain) >= outsz)
		return forward_fail(ERANGE);
	if (srs_hash(key, parts, nparts, hash) < 0)
		return forward_fail(EINVAL);
	if (nparts == 3)
		r = snprintf_checked(out, outsz, "%s=%.4s=%.2s=%.*s=%.*s@%s",
		    tag, hash, tt, (int)parts[1].n, parts[1].p,
		    (int)parts[2].n, parts[2].p, srs_domain);
	else
		r = snprintf_checked(out, outsz, "%s=%.4s=%.*s=%.*s@%s",
		    tag, hash, (int)parts[0].n, parts[0].p,
		    (int)parts[1].n, parts[1].p, srs_domain);
	if (r < 0)
		return forward_fail(ERANGE);
	return 0;
}

/* The next '=' in [p, end), or NULL. */
static const char *
next_sep(const char *p, const char *end)
{
	return p < end ? memchr(p, '=', (size_t)(end - p)) : NULL;
}

static int
reverse_srs0(const unsigned char *key, const char *l, const char *end,
    time_t now, char *out, size_t outsz)
{
	const char *hash = l + 5, *e1, *e2, *e3;
	struct span parts[3];
	int then;

	if ((e1 = next_sep(hash, end)) == NULL || e1 - hash != SRS_HASH_LEN ||
	    (e2 = next_sep(e1 + 1, end)) == NULL ||
	    e2 - (e1 + 1) != SRS_STAMP_LEN ||
	    (e3 = next_sep(e2 + 1, end)) == NULL)
		return SRS_MALFORMED;
	parts[0] = (struct span){ e1 + 1, SRS_STAMP_LEN };
	parts[1] = (struct span){ e2 + 1, (size_t)(e3 - e2 - 1) };
	parts[2] = (struct span){ e3 + 1, (size_t)(end - e3 - 1) };
	if ((then = srs_stamp_decode(parts[0].p)) < 0 ||
	    !host_ok(parts[1].p, parts[1].n) ||
	    !local_ok(parts[2].p, parts[2].n))
		return SRS_MALFORMED;
	if (srs_hash_check(key, parts, 3, hash) < 0)
		return SRS_BAD_HASH;
	if (!srs_stamp_fresh(then, now))
		return SRS_EXPIRED;
	if (snprintf_checked(out, outsz, "%.*s@%.*s", (int)parts[2].n,
	    parts[2].p, (int)parts[1].n, parts[1].p) < 0)
		return SRS_MALFORMED;
	return SRS_OK;
}

static int
reverse_srs1(const unsigned char *key, const char *l, const char *end,
    char *out, size_t outsz)
{
	const char *hash = l + 5, *e1, *e2;
	struct span parts[2];

	if ((e1 = next_sep(hash, end)) == NULL || e1 - hash != SRS_HASH_LEN ||
	    (e2 = next_sep(e1 + 1, end)) == NULL)
		return SRS_MALFORMED;
	parts[0] = (struct span){ e1 + 1, (size_t)(e2 - e1 - 1) };
	parts[1] = (struct span){ e2 + 1, (size_t)(end - e2 - 1) };
	/* rest is what followed "SRS0" one hop back: a separator first */
	if (!host_ok(parts[0].p, parts[0].n) || parts[1].n < 1 ||
	    strchr(SRS_SEPARATORS, parts[1].p[0]) == NULL ||
	    !local_ok(parts[1].p, parts[1].n))
		return SRS_MALFORMED;
	if (srs_hash_check(key, parts, 2, hash) < 0)
		return SRS_BAD_HASH;
	if (snprintf_checked(out, outsz, "SRS0%.*s@%.*s", (int)parts[1].n,
	    parts[1].p, (int)parts[0].n, parts[0].p) < 0)
		return SRS_MALFORMED;
	return SRS_OK;
}

int
srs_reverse(const unsigned char key[SRS_KEY_LEN], const char *addr,
    time_t now, char *out, size_t outsz)
{
	const char *at, *end;
	size_t len;

	if (addr == NULL)
		return SRS_NOT_SRS;
	len = strlen(addr);
	/* as libsrs2: the local part ends at the first '@' */
	at = memchr(addr, '@', len);
	end = at != NULL ? at : addr + len;
	if (!is_tag(addr, (size_t)(end - addr), '0') &&
	    !is_tag(addr, (size_t)(end - addr), '1'))
		return SRS_NOT_SRS;
	/* we never make one longer; the bound also keeps hashing small */
	if (len > SRS_PATH_MAX)
		return SRS_MALFORMED;
	if (addr[3] == '0')
		return reverse_srs0(key, addr, end, now, out, outsz);
	return reverse_srs1(key, addr, end, out, outsz);
}

const char *
srs_result_str(int r)
{
	switch (r) {
	case SRS_OK:
		return "ok";
	case SRS_NOT_SRS:
		return "not an SRS address";
	case SRS_BAD_HASH:
		return "bad SRS hash";
	case SRS_EXPIRED:
		return "SRS address expired";
	case SRS_MALFORMED:
		return "malformed SRS address";
	}
	return "unknown";
}

/* 0 loaded, 1 absent, -1 error (err set). */
static int
srs_key_read(const char *path, unsigned char key[SRS_KEY_LEN], char *err,
    size_t errlen)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return 1;
		snprintf_checked(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf_checked(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf_checked(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	if ((st.st_mode & 077) != 0) {
		snprintf_checked(err, errlen, "%s: mode %03o gives group or "
		    "other access to the secret; chmod 600 it", path,
		    (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	if (st.st_size != SRS_KEY_LEN) {
		snprintf_checked(err, errlen, "%s: %lld bytes, a key has %d",
		    path, (long long)st.st_size, SRS_KEY_LEN);
		goto fail;
	}
	while (got < SRS_KEY_LEN) {
		n = read(fd, key + got, SRS_KEY_LEN - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf_checked(err, errlen, "%s: %s", path,
			    n < 0 ? strerror(errno) : "short read");
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static int
srs_write_all(int fd, const unsigned char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Create the key file if nobody else does first.  The new key is
 * complete on disk under a private name before link(2) publishes it,
 * and link never replaces: of two processes racing, one links, the
 * other gets EEXIST and both then read the winner's file.
 */
static int
srs_key_create(const char *dir, const char *path, char *err, size_t errlen)
{
	unsigned char key[SRS_KEY_LEN];
	char tmp[PATH_MAX];
	unsigned int salt;
	size_t got = 0;
	ssize_t n;
	int fd, r, e;

	while (got < sizeof(key)) {
		if ((n = getrandom(key + got, sizeof(key) - got, 0)) < 0) {
			if (errno == EINTR)
				continue;
			snprintf_checked(err, errlen, "getrandom: %s",
			    strerror(errno));
			return -1;
		}
		got += (size_t)n;
	}
	salt = (unsigned)key[0] << 8 | key[1];
	if (snprintf_checked(tmp, sizeof(tmp), "%s/.%s.%ld.%04x.tmp", dir,
	    SRS_KEY_FILE, (long)getpid(), salt) < 0) {
		snprintf_checked(err, errlen, "%s: path too long", dir);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		snprintf_checked(err, errlen, "%s: %s", tmp, strerror(errno));
		explicit_bzero(key, sizeof(key));
		return -1;
	}
	r = fchmod(fd, 0600) < 0 || srs_write_all(fd, key, sizeof(key)) < 0 ||
	    fsync(fd) < 0 ? -1 : 0;
	e = errno;
	explicit_bzero(key, sizeof(key));
	if (close(fd) < 0 && r == 0) {
		r = -1;
		e = errno;
	}
	if (r == 0 && link(tmp, path) < 0 && errno != EEXIST) {
		r = -1;
		e = errno;
	}
	unlink(tmp);
	if (r < 0) {
		snprintf_checked(err, errlen, "%s: %s", path, strerror(e));
		return -1;
	}
	/* the new name must survive a crash like the data */
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(fd) < 0) {
		snprintf_checked(err, errlen, "%s: %s", dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
srs_secret_load(const char *state_dir, int create,
    unsigned char key[SRS_KEY_LEN], char *err, size_t errlen)
{
	char path[PATH_MAX];
	int r;

	if (snprintf_checked(path, sizeof(path), "%s/%s", state_dir,
	    SRS_KEY_FILE) < 0) {
		snprintf_checked(err, errlen, "%s: path too long", state_dir);
		return -1;
	}
	if ((r = srs_key_read(path, key, err, errlen)) <= 0)
		return r;
	if (!create) {
		snprintf_checked(err, errlen, "%s: missing", path);
		return -1;
	}
	if (srs_key_create(state_dir, path, err, errlen) < 0)
		return -1;
	if ((r = srs_key_read(path, key, err, errlen)) == 1)
		snprintf_checked(err, errlen, "%s: vanished after creation",
		    path);
	return r == 0 ? 0 : -1;
}
