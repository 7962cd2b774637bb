/*
 * cmd_compress.c - COMPRESS (RFC 4978): DEFLATE for the rest of the
 * connection.  The tagged OK goes out uncompressed; everything after it,
 * both ways, is raw deflate, done by common/conn.  Never answer after
 * conn_compress_start() with something the client would read as
 * plaintext.
 */
#include "imap_commands.h"
#include "../common/log.h"

void
cmd_compress(struct imap_session *s, const struct imap_command *cmd)
{
	if (cmd->count != 1) {
		imap_tagged(s, "BAD", "Syntax: COMPRESS DEFLATE");
		return;
	}
	if (!imap_arg_is_atom(&cmd->args[0], "DEFLATE")) {
		imap_tagged(s, "BAD", "Unknown compression mechanism");
		return;
	}
	if (conn_compressing(s->c)) {
		/* RFC 4978 3: a second COMPRESS is refused with this code */
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is already "
		    "active");
		return;
	}
	imap_tagged(s, "OK", "DEFLATE active");
	if (conn_compress_start(s->c) < 0) {
		/*
		 * The client compresses from now on and we cannot read it:
		 * send the OK and end the connection.
		 */
		log_error("sid=%s ip=%s cannot start compression", s->c->sid,
		    s->c->ip);
		imap_set_state(s, IMAP_ST_LOGOUT);
		conn_close(s->c);
		return;
	}
	log_info("sid=%s ip=%s compress deflate", s->c->sid, s->c->ip);
}
