/*
 * buf.h - the one bounded byte buffer / string builder used everywhere.
 *
 * A buf owns a heap block that grows on demand up to a hard maximum set at
 * init time.  Every append either fits under the maximum or fails with -1
 * and leaves the buffer unchanged, so network input can never grow memory
 * without bound.  The data is kept NUL-terminated (one byte past len) so it
 * can be handed to APIs that want C strings, but parsers must use len: data
 * from the network may contain NULs.
 */
#ifndef BUZON_BUF_H
#define BUZON_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;	/* NULL until the first append */
	size_t len;	/* bytes in use, not counting the trailing NUL */
	size_t cap;	/* bytes allocated */
	size_t max;	/* hard limit on len */
};

#define BUF_UNLIMITED ((size_t)-1 / 2)

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);			/* len = 0, keeps memory */
void buf_shrink(struct buf *b);			/* len must be 0; frees memory */

/* All return 0 on success, -1 when the result would exceed max (or on
 * allocation failure); on -1 the buffer is unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
int buf_set(struct buf *b, const void *p, size_t n);	/* replace contents */

/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);

/* Always a valid C string ("" when empty). */
const char *buf_cstr(const struct buf *b);

/*
 * Bounded copy of a C string into a fixed array; always NUL-terminates.
 * Returns 0, or -1 when src did not fit (dst then holds a truncated copy).
 */
int strlcpy_checked(char *dst, const char *src, size_t dstsize);

/* snprintf that reports truncation: 0 ok, -1 truncated or error. */
int snprintf_checked(char *dst, size_t dstsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
