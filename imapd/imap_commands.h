/*
 * imap_commands.h - the handlers behind imap_commands.c's table.  Each
 * gets the session and the parsed command (tag already in s->tag) and
 * answers with imap_tagged(), now or from a completion.
 */
#ifndef BUZON_IMAP_COMMANDS_H
#define BUZON_IMAP_COMMANDS_H

#include "imapd.h"

typedef void imap_cmd_fn(struct imap_session *s,
    const struct imap_command *cmd);

/* cmd_any.c */
imap_cmd_fn cmd_capability, cmd_noop, cmd_logout, cmd_id, cmd_enable,
    cmd_namespace;
/* cmd_list.c, cmd_mailbox.c */
imap_cmd_fn cmd_list, cmd_lsub, cmd_create, cmd_delete, cmd_rename,
    cmd_subscribe, cmd_unsubscribe, cmd_status;
/* cmd_select.c */
imap_cmd_fn cmd_select, cmd_examine, cmd_close, cmd_unselect, cmd_check,
    cmd_idle, cmd_expunge, cmd_uid, cmd_fetch, cmd_store, cmd_copy, cmd_move;
/* cmd_search.c */
imap_cmd_fn cmd_search;
/* cmd_append.c */
imap_cmd_fn cmd_append, cmd_getquotaroot, cmd_getquota;
/* cmd_auth.c */
imap_cmd_fn cmd_starttls, cmd_login, cmd_authenticate;
/* cmd_compress.c */
imap_cmd_fn cmd_compress;

#endif
