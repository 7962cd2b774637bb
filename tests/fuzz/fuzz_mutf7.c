/*
 * fuzz_mutf7.c - libFuzzer target for store/mutf7.h.
 *
 * The input is tried both ways.  As modified UTF-7: when it decodes, the
 * result must be valid UTF-8 and encode back to exactly the input (only
 * canonical names are accepted).  As UTF-8: it must encode exactly when
 * utf8_valid() says so, the result must be valid modified UTF-7 and
 * decode back to the input.  A too-small output buffer (size taken from
 * the input) must fail with MUTF7_NOSPACE and leave it untouched.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
same(const struct buf *b, const char *p, size_t len)
{
	return b->len == len && (len == 0 || memcmp(b->data, p, len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct buf a, b, small;
	int r;

	buf_init(&a, BUF_UNLIMITED);
	buf_init(&b, BUF_UNLIMITED);

	/* modified UTF-7 -> UTF-8 -> modified UTF-7 */
	r = mutf7_to_utf8(in, size, &a);
	if (r == MUTF7_OK) {
		if (!mutf7_valid(in, size) || !utf8_valid(a.data ? a.data : "",
		    a.len))
			abort();
		if (utf8_to_mutf7(a.data ? a.data : "", a.len, &b) != MUTF7_OK ||
		    !same(&b, in, size))
			abort();
		/* every shorter buffer must refuse cleanly */
		if (a.len > 0) {
			buf_init(&small, (size_t)data[0] % a.len);
			if (mutf7_to_utf8(in, size, &small) != MUTF7_NOSPACE ||
			    small.len != 0)
				abort();
			buf_free(&small);
		}
	} else if (r != MUTF7_INVALID || a.len != 0 || mutf7_valid(in, size)) {
		abort();
	}

	/* UTF-8 -> modified UTF-7 -> UTF-8 */
	buf_reset(&a);
	buf_reset(&b);
	r = utf8_to_mutf7(in, size, &a);
	if (r != (utf8_valid(in, size) ? MUTF7_OK : MUTF7_INVALID))
		abort();
	if (r == MUTF7_OK) {
		if (!mutf7_valid(a.data ? a.data : "", a.len) ||
		    mutf7_to_utf8(a.data ? a.data : "", a.len, &b) != MUTF7_OK ||
		    !same(&b, in, size))
			abort();
		if (a.len > 0) {
			buf_init(&small, (size_t)data[0] % a.len);
			if (utf8_to_mutf7(in, size, &small) != MUTF7_NOSPACE ||
			    small.len != 0)
				abort();
			buf_free(&small);
		}
	} else if (a.len != 0) {
		abort();
	}
	buf_free(&a);
	buf_free(&b);
	return 0;
}
