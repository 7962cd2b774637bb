/*
 * test_imap_searchres.c - SEARCHRES (RFC 5182) in SEARCH programs
 * (imapd/imap_search.h): RETURN (SAVE) alone and with other options,
 * "$" as a key and after UID, "$" in NOT / OR / groups, what is still
 * refused ("$" inside a set, unknown options), and evaluation against
 * the caller's saved mark.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "imapd/imap_parser.h"
#include "imapd/imap_search.h"
#include "store/mbox_index.h"

static const struct imap_parser_limits lim = {
	65536, 1 << 20, 0, 20, 10000
};

struct parsed {
	struct imap_parser *ip;
	struct search_program prog;
	const char *why;
	int rc;
};

/* "t SEARCH <args>" through the real command parser, then search_parse. */
static int
parse(struct parsed *p, const char *args)
{
	const struct imap_command *cmd;
	struct buf line;
	size_t used;

	memset(p, 0, sizeof(*p));
	p->ip = imap_parser_new(&lim);
	assert_non_null(p->ip);
	buf_init(&line, BUF_UNLIMITED);
	buf_printf(&line, "t SEARCH %s\r\n", args);
	if (imap_parser_feed(p->ip, line.data, line.len, &used) !=
	    IMAP_PARSE_DONE)
		fail_msg("imap_parser refused \"%s\": %s", args,
		    imap_parser_error(p->ip));
	buf_free(&line);
	cmd = imap_parser_command(p->ip);
	p->rc = search_parse(&p->prog, cmd->args, cmd->count, &p->why);
	return p->rc;
}

static void
done(struct parsed *p)
{
	search_program_free(&p->prog);
	imap_parser_free(p->ip);
}

static void
parse_ok(struct parsed *p, const char *args)
{
	if (parse(p, args) != 0)
		fail_msg("search_parse refused \"%s\" (%d): %s", args, p->rc,
		    p->why);
}

/* The metadata answer for a message with the given flags and mark. */
static int
eval(const char *args, unsigned flags, int saved)
{
	struct search_msg m;
	struct parsed p;
	int r;

	memset(&m, 0, sizeof(m));
	m.seq = 2;
	m.uid = 20;
	m.flags = flags;
	m.saved = saved;
	parse_ok(&p, args);
	search_program_resolve(&p.prog, 5, 50);
	r = search_eval_meta(&p.prog, &m);
	done(&p);
	return r;
}

static void
test_return_save(void **state)
{
	struct parsed p;

	(void)state;
	/* SAVE alone: only saved, no result options (no ESEARCH answer) */
	parse_ok(&p, "RETURN (SAVE) ALL");
	assert_true(p.prog.esearch);
	assert_int_equal(p.prog.ret, SEARCH_RET_SAVE);
	assert_false(p.prog.uses_saved);
	done(&p);
	parse_ok(&p, "RETURN (save MIN max) SEEN");
	assert_int_equal(p.prog.ret,
	    SEARCH_RET_SAVE | SEARCH_RET_MIN | SEARCH_RET_MAX);
	done(&p);
	parse_ok(&p, "RETURN (COUNT SAVE) CHARSET UTF-8 SEEN");
	assert_int_equal(p.prog.ret, SEARCH_RET_SAVE | SEARCH_RET_COUNT);
	done(&p);
	/* RETURN () is still ALL, without SAVE */
	parse_ok(&p, "RETURN () SEEN");
	assert_int_equal(p.prog.ret, SEARCH_RET_ALL);
	done(&p);
}

static void
test_dollar_keys(void **state)
{
	struct parsed p;

	(void)state;
	parse_ok(&p, "$");
	assert_true(p.prog.uses_saved);
	assert_false(p.prog.needs_content);
	done(&p);
	parse_ok(&p, "UID $");
	assert_true(p.prog.uses_saved);
	done(&p);
	parse_ok(&p, "RETURN (SAVE) $ SEEN");
	assert_true(p.prog.uses_saved);
	done(&p);
	parse_ok(&p, "SEEN");
	assert_false(p.prog.uses_saved);
	done(&p);
	/* "$" stands alone: never inside a set */
	assert_int_equal(parse(&p, "$,1"), SEARCH_ERR_SYNTAX);
	done(&p);
	assert_int_equal(parse(&p, "UID 1:$"), SEARCH_ERR_SYNTAX);
	done(&p);
	assert_int_equal(parse(&p, "UID"), SEARCH_ERR_SYNTAX);
	done(&p);
	assert_int_equal(parse(&p, "RETURN (SAVE ALL FOO) $"),
	    SEARCH_ERR_SYNTAX);
	done(&p);
	assert_int_equal(parse(&p, "RETURN (SAVE)"), SEARCH_ERR_SYNTAX);
	done(&p);
}

static void
test_eval(void **state)
{
	(void)state;
	assert_int_equal(eval("$", 0, 1), 1);
	assert_int_equal(eval("$", 0, 0), 0);
	assert_int_equal(eval("UID $", 0, 1), 1);
	assert_int_equal(eval("UID $", 0, 0), 0);
	assert_int_equal(eval("NOT $", 0, 0), 1);
	assert_int_equal(eval("$ SEEN", MBOX_F_SEEN, 1), 1);
	assert_int_equal(eval("$ SEEN", 0, 1), 0);
	assert_int_equal(eval("OR $ SEEN", MBOX_F_SEEN, 0), 1);
	assert_int_equal(eval("OR $ SEEN", 0, 0), 0);
	assert_int_equal(eval("($ 1:3)", 0, 1), 1);	/* seq 2 */
	assert_int_equal(eval("($ 3:5)", 0, 1), 0);
	/* the content step agrees where metadata decided */
	{
		static const char msg[] = "Subject: hello\r\n\r\nx\r\n";
		struct search_msg m;
		struct parsed p;

		memset(&m, 0, sizeof(m));
		m.seq = 1;
		m.uid = 1;
		m.saved = 1;
		parse_ok(&p, "$ SUBJECT hello");
		search_program_resolve(&p.prog, 1, 1);
		assert_int_equal(search_eval_meta(&p.prog, &m), -1);
		assert_int_equal(search_eval_content(&p.prog, &m, msg,
		    strlen(msg)), 1);
		m.saved = 0;
		assert_int_equal(search_eval_meta(&p.prog, &m), 0);
		done(&p);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_return_save),
		cmocka_unit_test(test_dollar_keys),
		cmocka_unit_test(test_eval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
