/*
 * fuzz_srs.c - libFuzzer target for srs_reverse() and srs_forward()
 * with a fixed key: any bytes must be refused or rewritten, never crash
 * or overrun out.  Whatever forward rewrites, reverse must undo: the
 * original sender for a plain address, the same SRS0 for a foreign one.
 *
 * Input: one byte choosing the clock and the out size, then the address.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* also when CFLAGS is overridden on the make line */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/srs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[SRS_KEY_LEN] =
    "0123456789abcdefghijklmnopqrstuv";

#define NOW ((time_t)1795435200)
#define DAY ((time_t)86400)

static void
check_out(const char *out)
{
	size_t i, n = strlen(out);

	if (n >= SRS_ADDR_MAX)
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] <= 0x20 ||
		    (unsigned char)out[i] >= 0x7f)
			abort();
}

/* SRS0 or SRS1 and a separator, as srs.c reads them */
static int
is_tag(const char *s, char digit)
{
	return strncasecmp(s, "SRS", 3) == 0 && s[3] == digit &&
	    s[4] != '\0' && strchr("=-+", s[4]) != NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[1024], fwd[SRS_ADDR_MAX], back[SRS_ADDR_MAX];
	const char *at;
	size_t n, outsz;
	time_t later;
	int r;

	if (size < 1)
		return 0;
	later = NOW + (time_t)(data[0] & 0x3f) * DAY;
	outsz = (data[0] & 0x40) ? 1 + data[0] % 40 : sizeof(fwd);
	n = size - 1 < sizeof(in) - 1 ? size - 1 : sizeof(in) - 1;
	memcpy(in, data + 1, n);
	in[n] = '\0';

	r = srs_reverse(key, in, later, back, sizeof(back));
	if (r < SRS_OK || r > SRS_MALFORMED)
		abort();
	if (r == SRS_OK)
		check_out(back);

	if (srs_forward(key, in, "fwd.example", NOW, fwd, outsz) < 0)
		return 0;
	if (strlen(fwd) >= outsz || strlen(fwd) > 254)
		abort();
	at = strrchr(in, '@');
	if (at != NULL && strcasecmp(at + 1, "fwd.example") == 0) {
		if (strcmp(fwd, in) != 0)	/* ours: copied as it was */
			abort();
		return 0;
	}
	check_out(fwd);
	if (strchr(fwd, '@') - fwd > 64)
		abort();
	r = srs_reverse(key, fwd, later, back, sizeof(back));
	if ((data[0] & 0x3f) > SRS_MAX_AGE_DAYS && strncasecmp(fwd, "SRS0", 4)
	    == 0) {
		if (r != SRS_EXPIRED)
			abort();
		return 0;
	}
	if (r != SRS_OK)
		abort();
	if (is_tag(in, '1')) {
		if (strncmp(back, "SRS0", 4) != 0)
			abort();
	} else if (is_tag(in, '0')) {
		/* the tag comes back upper-case, the rest as it was */
		if (strcmp(back + 4, in + 4) != 0)
			abort();
	} else if (strcmp(back, in) != 0)
		abort();
	return 0;
}
