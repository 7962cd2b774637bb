/*
 * log.h - logging to stderr, systemd style: one line per event, a level,
 * the program, and (for session events) "sid=... ip=..." fields.
 * Client-supplied bytes must pass through log_escape() before they reach
 * a log line, so a client can never forge or break log lines.
 */
#ifndef BUZON_LOG_H
#define BUZON_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_init(const char *progname, int debug);
int log_debug_enabled(void);

void log_msg(enum log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* Print and exit(1): for start-up failures only (Postfix msg_fatal). */
void log_fatal(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

/*
 * Copy at most srclen bytes of untrusted data into dst as printable ASCII
 * (non-printables become \xNN), truncating to dstsize.  Returns dst.
 */
char *log_escape(char *dst, size_t dstsize, const char *src, size_t srclen);

/* A short random session id (12 base32 chars + NUL), unique per process. */
void log_new_session_id(char out[13]);

#endif
