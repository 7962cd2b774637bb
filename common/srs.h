/*
 * srs.h - Sender Rewriting Scheme (Shevek's scheme, the address layout
 * of libsrs2 and postsrsd), so that mail we forward to an outside
 * address passes SPF at the destination and its bounces find their way
 * back to the original sender.
 *
 *   user@host               -> SRS0=HHHH=TT=host=user@srs_domain
 *   SRS0=rest@fwd           -> SRS1=HHHH=fwd==rest@srs_domain
 *   SRS1=xxxx=fwd==rest@any -> SRS1=HHHH=fwd==rest@srs_domain
 *
 * TT is the day number (days since the epoch mod 1024) in two base32
 * characters; HHHH the first four base64 characters of HMAC-SHA1(key,
 * lower-case(TT host user)) for SRS0, of HMAC-SHA1(key, lower-case(fwd
 * rest)) for SRS1, rest beginning with the separator that followed
 * "SRS0".  Hashes are compared case-insensitively and in constant time,
 * as libsrs2 does, because relays may fold the case of a local part.
 *
 * srs_forward and srs_reverse are pure and keep no state: any thread may
 * call them at once.  The key is loaded once with srs_secret_load.
 */
#ifndef BUZON_SRS_H
#define BUZON_SRS_H

#include <stddef.h>
#include <time.h>

#define SRS_KEY_LEN 32
#define SRS_KEY_FILE "srs.key"		/* in state_dir, mode 0600 */
#define SRS_ADDR_MAX 256		/* out buffer: 254 octets + NUL, rounded */
#define SRS_MAX_AGE_DAYS 21		/* libsrs2's default maxage */

enum srs_result {
	SRS_OK = 0,
	SRS_NOT_SRS,		/* local part is not SRS0/SRS1 + separator */
	SRS_BAD_HASH,		/* forged, or signed with another key */
	SRS_EXPIRED,		/* SRS0 older than SRS_MAX_AGE_DAYS */
	SRS_MALFORMED,		/* tagged SRS but not our syntax, or too long */
};

/*
 * Load STATE_DIR/srs.key (exactly SRS_KEY_LEN bytes, no permission for
 * group or other) into key.  When it is missing and create != 0, make
 * one from getrandom(2): written to a temp name, fsynced, then link(2)ed
 * into place, so processes starting at once all end up with the one key
 * that won.  Returns 0, or -1 with a reason in err.
 */
int srs_secret_load(const char *state_dir, int create,
    unsigned char key[SRS_KEY_LEN], char *err, size_t errlen);

/*
 * Rewrite the envelope sender "local@domain" (local part unquoted, as
 * addr_format() writes it) for forwarding, into out.  A sender already
 * in srs_domain is copied unchanged (libsrs2 does the same).  Returns 0,
 * or -1 and out untouched, the caller then keeps the original sender:
 * errno EINVAL for the null sender, no '@', a local part that could not
 * stand unquoted in the new address (space, '"', control or 8-bit
 * bytes), a domain that is not a host name, a broken SRS1 address;
 * ERANGE when the result would exceed 254 octets, its local part 64
 * (RFC 5321 4.5.3.1), or outsz.
 */
int srs_forward(const unsigned char key[SRS_KEY_LEN], const char *sender,
    const char *srs_domain, time_t now, char *out, size_t outsz);

/*
 * Undo one hop of rewriting for a recipient address (the domain is not
 * looked at: the caller routes on it).  On SRS_OK out holds the address
 * to send the bounce on to: "user@host" for SRS0, "SRS0...@fwd" for
 * SRS1.  out is written only on SRS_OK; outsz >= SRS_ADDR_MAX always
 * suffices (too small gives SRS_MALFORMED).
 */
int srs_reverse(const unsigned char key[SRS_KEY_LEN], const char *addr,
    time_t now, char *out, size_t outsz);

/* A name for logs. */
const char *srs_result_str(int r);

#endif
