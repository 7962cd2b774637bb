/*
 * log.c - stderr logging.  One write(2) per line so that lines from
 * several threads or forked workers never interleave.
 */
#include "log.h"
#include "buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

static const char *log_prog = "buzon";
static int log_dbg;

void
log_init(const char *progname, int debug)
{
	log_prog = progname;
	log_dbg = debug;
}

int
log_debug_enabled(void)
{
	return log_dbg;
}

static void
log_vmsg(enum log_level lvl, const char *fmt, va_list ap)
{
	static const char *names[] = { "debug", "info", "warning", "error" };
	char line[2048];
	int off, n;

	if (lvl == LOG_LVL_DEBUG && !log_dbg)
		return;
	off = snprintf(line, sizeof(line), "%s[%ld]: %s: ", log_prog,
	    (long)getpid(), names[lvl]);
	if (off < 0 || (size_t)off >= sizeof(line))
		off = 0;
	n = vsnprintf(line + off, sizeof(line) - (size_t)off - 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)off + (size_t)n > sizeof(line) - 2)
		n = (int)(sizeof(line) - 2 - (size_t)off);
	line[off + n] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)off + (size_t)n + 1);
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_vmsg(lvl, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}

char *
log_escape(char *dst, size_t dstsize, const char *src, size_t srclen)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, o = 0;

	if (dstsize == 0)
		return dst;
	for (i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c >= 0x20 && c < 0x7f && c != '\\') {
			if (o + 1 >= dstsize)
				break;
			dst[o++] = (char)c;
		} else {
			if (o + 4 >= dstsize)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[c >> 4];
			dst[o++] = hex[c & 15];
		}
	}
	dst[o] = '\0';
	return dst;
}

void
log_new_session_id(char out[13])
{
	static const char b32[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	unsigned char r[12];
	int i;

	if (RAND_bytes(r, sizeof(r)) != 1) {
		/* Not a secret: uniqueness is all we need here. */
		static unsigned long ctr;
		unsigned long v = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16) ^ ++ctr;
		for (i = 0; i < 12; i++, v = v * 6364136223846793005UL + 1)
			r[i] = (unsigned char)(v >> 33);
	}
	for (i = 0; i < 12; i++)
		out[i] = b32[r[i] & 31];
	out[12] = '\0';
}
