/*
 * fuzz_imap_search.c - libFuzzer target for imapd/imap_search.h: the
 * input is split at the first NUL byte into a SEARCH argument line (run
 * through imapd/imap_parser.h as "t SEARCH <line>") and a message.  A
 * program that parses is resolved and evaluated on a few synthetic
 * messages with that message text.
 *
 * Checked: search_parse() never crashes or leaks, whatever the tree;
 * a program never holds more than SEARCH_MAX_KEYS keys; whenever the
 * metadata step decides (1 / 0), the content step agrees with it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imapd/imap_parser.h"
#include "imapd/imap_search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct imap_parser_limits lim = {
	8192, 4096, 0, 20, 2000
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *nul, *msgp = "";
	size_t linelen = size, msglen = 0, used, i;
	struct imap_parser *p;
	const struct imap_command *cmd;
	struct search_program prog;
	struct buf line;
	const char *why;
	int r;

	nul = memchr(in, '\0', size);
	if (nul != NULL) {
		linelen = (size_t)(nul - in);
		msgp = nul + 1;
		msglen = size - linelen - 1;
	}
	p = imap_parser_new(&lim);
	if (p == NULL)
		abort();
	buf_init(&line, BUF_UNLIMITED);
	buf_puts(&line, "t SEARCH ");
	buf_append(&line, in, linelen);
	buf_puts(&line, "\r\n");
	if (imap_parser_feed(p, line.data, line.len, &used) ==
	    IMAP_PARSE_DONE && (cmd = imap_parser_command(p)) != NULL) {
		r = search_parse(&prog, cmd->args, cmd->count, &why);
		if (prog.n > SEARCH_MAX_KEYS)
			abort();
		if (r == 0) {
			search_program_resolve(&prog, (uint32_t)(size % 7),
			    (uint32_t)(size % 50));
			for (i = 0; i < 6; i++) {
				struct search_msg m;
				int a, b;

				memset(&m, 0, sizeof(m));
				m.seq = (uint32_t)i + 1;
				m.uid = (uint32_t)(i * 9 + 1);
				m.flags = (unsigned)(i * 7) & 0x1f;
				m.keywords = i & 1 ? "$Junk Work" : "";
				m.recent = (int)(i & 2);
				m.size = (uint64_t)i * 300;
				m.modseq = i + 1;
				m.internaldate = (int64_t)i * 40000000;
				a = search_eval_meta(&prog, &m);
				b = search_eval_content(&prog, &m, msgp, msglen);
				if (a < -1 || a > 1 || b < -1 || b > 1)
					abort();
				if (a >= 0 && b >= 0 && a != b)
					abort();
			}
		}
		search_program_free(&prog);
	}
	buf_free(&line);
	imap_parser_free(p);
	return 0;
}
