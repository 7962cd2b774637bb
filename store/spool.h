/*
 * spool.h - a message body being received: kept in memory up to a limit,
 * then moved to an unlinked temporary file, so that a 50M message does
 * not cost 50M of RAM per connection.
 *
 * Content is stored as received after SMTP dot-unstuffing, with LF line
 * ends (Maildir convention).  nlines counts LFs so that the CRLF size
 * (what IMAP/POP3 report) is size + nlines.  spool_write_to() only reads
 * the spool (pread), so several threads may copy one spool at once once
 * appending is over.
 */
#ifndef BUZON_SPOOL_H
#define BUZON_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

struct spool {
	struct buf mem;
	int fd;			/* -1 while in memory */
	uint64_t size;		/* bytes appended */
	uint64_t nlines;	/* LF count */
	size_t mem_limit;
	char tmpdir[1024];	/* where the file goes when mem_limit is passed */
};

void spool_init(struct spool *s, const char *tmpdir, size_t mem_limit);
int spool_append(struct spool *s, const void *p, size_t n);	/* 0 / -1 errno */
/* Write the whole spool to fd (blocking, loops on short writes). 0 / -1. */
int spool_write_to(const struct spool *s, int fd);
void spool_reset(struct spool *s);	/* empty it for the next message */
void spool_free(struct spool *s);

#endif
