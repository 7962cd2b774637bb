/*
 * fuzz_mime_binary.c - libFuzzer target for BINARY[part]<partial> and
 * BINARY.SIZE (store/mime_section.h mime_binary_check/fetch).
 *
 * The input is a stored message.  Its first two bytes also pick a part
 * path (besides a fixed list) and a partial range.  Checked for every
 * path: fetch and check agree on refusing; a refused fetch writes
 * nothing; the whole data is as long as the size reported; a partial
 * range is exactly that slice of the whole; nothing crashes, hangs or
 * reads outside the message.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "store/mime.h"
#include "store/mime_section.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_MAX (64u << 20)

static const unsigned int paths[][4] = {
	{ 0 }, { 1 }, { 2 }, { 3 }, { 1, 1 }, { 2, 1 }, { 2, 2 }, { 3, 1 },
	{ 1, 2, 1 }, { 2, 1, 1, 1 },
};

static void
check_path(const char *msg, const struct mime_message *m,
    const unsigned int *part, unsigned int n, size_t origin, size_t count,
    struct buf *all, struct buf *slice)
{
	size_t size = 0, size2 = 0, end;
	int c, r;

	buf_reset(all);
	buf_reset(slice);
	c = mime_binary_check(m, part, n);
	r = mime_binary_fetch(msg, m, part, n, 0, SIZE_MAX, all, &size);
	if (r == -1)
		return;			/* too big for OUT_MAX */
	if (r != c || (r != 0 && (all->len != 0 || size != 0)))
		abort();
	if (r != 0)
		return;
	if (all->len != size)
		abort();
	if (mime_binary_fetch(msg, m, part, n, 0, 0, NULL, &size2) != 0 ||
	    size2 != size)
		abort();
	if (mime_binary_fetch(msg, m, part, n, origin, count, slice,
	    NULL) != 0)
		abort();
	end = origin >= size ? origin : (size - origin < count ? size :
	    origin + count);
	if (slice->len != (origin >= size ? 0 : end - origin) ||
	    (slice->len > 0 && memcmp(slice->data, all->data + origin,
	    slice->len) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mime_message *m;
	struct buf all, slice;
	unsigned int part[3];
	size_t i, origin, count;
	char *msg;

	msg = malloc(size ? size : 1);	/* exact size: ASan sees overreads */
	if (msg == NULL)
		return 0;
	memcpy(msg, data, size);
	m = mime_parse(msg, size);
	if (m == NULL) {
		free(msg);
		return 0;
	}
	origin = size > 0 ? (unsigned char)msg[0] : 0;
	count = size > 1 ? (unsigned char)msg[1] + 0u : SIZE_MAX;
	buf_init(&all, OUT_MAX);
	buf_init(&slice, OUT_MAX);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		unsigned int n = 0;

		while (n < 4 && paths[i][n] != 0)
			n++;
		check_path(msg, m, paths[i], n, origin, count, &all, &slice);
	}
	/* a path from the input: 1..3 levels of 1..8 */
	if (size > 2) {
		part[0] = 1u + ((unsigned char)msg[2] & 7u);
		part[1] = 1u + (((unsigned char)msg[2] >> 3) & 3u);
		part[2] = 1u + (((unsigned char)msg[2] >> 5) & 1u);
		check_path(msg, m, part, 1u + ((unsigned char)msg[2] & 1u) +
		    ((unsigned char)msg[2] >> 7), origin, count, &all, &slice);
	}
	buf_free(&all);
	buf_free(&slice);
	mime_free(m);
	free(msg);
	return 0;
}
