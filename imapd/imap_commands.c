/*
 * imap_commands.c - the IMAP command table: name -> states in which it
 * is allowed -> handler.  The state rule is data in the table and is
 * checked in one place, imap_dispatch(); handlers do their own command's
 * work only.  Adding a command is adding a row (and a cmd_*.c handler).
 */
#include "imapd.h"
#include "imap_commands.h"
#include "../common/log.h"

#include <strings.h>

enum {
	ST_NOTAUTH = 1 << IMAP_ST_NOTAUTH,
	ST_AUTH = 1 << IMAP_ST_AUTH,
	ST_SELECTED = 1 << IMAP_ST_SELECTED,
	ST_ANY = ST_NOTAUTH | ST_AUTH | ST_SELECTED,
	ST_LOGGED_IN = ST_AUTH | ST_SELECTED,
};

struct imap_command_def {
	const char *name;
	unsigned states;
	imap_cmd_fn *handler;
};

static const struct imap_command_def commands[] = {
	{ "CAPABILITY", ST_ANY, cmd_capability },
	{ "NOOP", ST_ANY, cmd_noop },
	{ "LOGOUT", ST_ANY, cmd_logout },
	{ "ID", ST_ANY, cmd_id },
	{ "STARTTLS", ST_NOTAUTH, cmd_starttls },
	{ "LOGIN", ST_NOTAUTH, cmd_login },
	{ "AUTHENTICATE", ST_NOTAUTH, cmd_authenticate },
	{ "ENABLE", ST_LOGGED_IN, cmd_enable },
	{ "COMPRESS", ST_LOGGED_IN, cmd_compress },
	{ "NAMESPACE", ST_LOGGED_IN, cmd_namespace },
	{ "LIST", ST_LOGGED_IN, cmd_list },
	{ "LSUB", ST_LOGGED_IN, cmd_lsub },
	{ "CREATE", ST_LOGGED_IN, cmd_create },
	{ "DELETE", ST_LOGGED_IN, cmd_delete },
	{ "RENAME", ST_LOGGED_IN, cmd_rename },
	{ "SUBSCRIBE", ST_LOGGED_IN, cmd_subscribe },
	{ "UNSUBSCRIBE", ST_LOGGED_IN, cmd_unsubscribe },
	{ "STATUS", ST_LOGGED_IN, cmd_status },
	{ "APPEND", ST_LOGGED_IN, cmd_append },
	{ "GETQUOTAROOT", ST_LOGGED_IN, cmd_getquotaroot },
	{ "GETQUOTA", ST_LOGGED_IN, cmd_getquota },
	{ "SELECT", ST_LOGGED_IN, cmd_select },
	{ "EXAMINE", ST_LOGGED_IN, cmd_examine },
	{ "IDLE", ST_LOGGED_IN, cmd_idle },
	{ "CLOSE", ST_SELECTED, cmd_close },
	{ "UNSELECT", ST_SELECTED, cmd_unselect },
	{ "CHECK", ST_SELECTED, cmd_check },
	{ "EXPUNGE", ST_SELECTED, cmd_expunge },
	{ "FETCH", ST_SELECTED, cmd_fetch },
	{ "STORE", ST_SELECTED, cmd_store },
	{ "COPY", ST_SELECTED, cmd_copy },
	{ "MOVE", ST_SELECTED, cmd_move },
	{ "SEARCH", ST_SELECTED, cmd_search },
	{ "UID", ST_SELECTED, cmd_uid },
};

void
imap_dispatch(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_command_def *def = NULL;
	size_t i;

	if (s->state == IMAP_ST_NOTAUTH &&
	    ++s->preauth_cmds > IMAP_MAX_PREAUTH_CMDS) {
		imap_logout(s, "Too many commands before login");
		return;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strlen(commands[i].name) == cmd->name_len &&
		    strncasecmp(commands[i].name, cmd->name, cmd->name_len) == 0) {
			def = &commands[i];
			break;
		}
	}
	if (def == NULL) {
		imap_tagged(s, "BAD", "Unknown command");
		return;
	}
	if (!(def->states & (1u << s->state))) {
		imap_tagged(s, "BAD", "%s not allowed %s", def->name,
		    s->state == IMAP_ST_NOTAUTH ? "before login" :
		    s->state == IMAP_ST_AUTH ? "without a selected mailbox" :
		    "after login");
		return;
	}
	def->handler(s, cmd);
}
