#!/bin/sh
# make run: a throw-away demo instance in ./run/ on unprivileged loopback
# ports, with a demo domain and user.  Ctrl-C stops it.  Delete ./run/
# to start over.
set -eu

ROOT=$(pwd)
BIN="${BUZON_BIN:-$ROOT/bin}"
RUN="${BUZON_DEMO_DIR:-$ROOT/run}"
SMTP_PORT=${BUZON_DEMO_SMTP_PORT:-2525}
SUB_PORT=${BUZON_DEMO_SUBMISSION_PORT:-2587}
IMAP_PORT=${BUZON_DEMO_IMAP_PORT:-1143}
IMAPS_PORT=${BUZON_DEMO_IMAPS_PORT:-1993}
POP3_PORT=${BUZON_DEMO_POP3_PORT:-1110}
POP3S_PORT=${BUZON_DEMO_POP3S_PORT:-1995}
DOMAIN=example.test
USER=demo@$DOMAIN
PASSWORD=demo-password
CONF="$RUN/buzon.conf"
MAILADM="$BIN/mailadm -c $CONF"

mkdir -p "$RUN"
if [ ! -f "$CONF" ]; then
	cat > "$CONF" <<CONF
# Demo configuration written by 'make run'.  See conf/buzon.conf for a
# real server's configuration.
hostname  = mail.$DOMAIN
state_dir = $RUN/state
database  = $RUN/state/buzon.db
mail_dir  = $RUN/mail
queue_dir = $RUN/queue
user      =
tls_cert  = $RUN/tls/fullchain.pem
tls_key   = $RUN/tls/privkey.pem

[smtpd]
listen = 127.0.0.1:$SMTP_PORT smtp
listen = 127.0.0.1:$SUB_PORT submission
max_message_size = 50M

[imapd]
listen = 127.0.0.1:$IMAP_PORT imap
listen = 127.0.0.1:$IMAPS_PORT imaps

[pop3d]
listen = 127.0.0.1:$POP3_PORT pop3
listen = 127.0.0.1:$POP3S_PORT pop3s

[policy]
spf = off
dkim_verify = off
dmarc = off
dnsbl =
CONF
fi

$MAILADM init >/dev/null
$MAILADM domain list | grep -q "^$DOMAIN " || $MAILADM domain add $DOMAIN
$MAILADM user list | grep -q "^$USER " || \
	printf '%s\n' "$PASSWORD" | $MAILADM user add $USER --password-stdin

PIDS=""
cleanup() {
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

for d in imapd pop3d; do
	if [ -x "$BIN/$d" ]; then
		"$BIN/$d" -c "$CONF" 2>>"$RUN/$d.log" &
		PIDS="$PIDS $!"
	fi
done

cat <<MSG

Buzón demo is running in $RUN (logs: $RUN/*.log, mail: $RUN/mail/$DOMAIN/demo/).

  Domain $DOMAIN, user $USER, password $PASSWORD

  Send a message to it:
    swaks --to $USER --server 127.0.0.1:$SMTP_PORT
    swaks --to $USER --server 127.0.0.1:$SMTP_PORT --tls    (STARTTLS, self-signed cert)
    openssl s_client -starttls smtp -connect 127.0.0.1:$SMTP_PORT -crlf -quiet

  Send as the user (submission: STARTTLS, then AUTH; the From must be theirs):
    swaks --to $USER --from $USER --server 127.0.0.1:$SUB_PORT --tls --auth-user $USER --auth-password $PASSWORD
  Thunderbird outgoing server: 127.0.0.1 port $SUB_PORT, STARTTLS, user name $USER,
  normal password.  Mail to other domains goes out by their MX records from this
  machine, DKIM-signed once you make a key; set relayhost in $CONF if port 25
  out is blocked.  What waits, and the DNS records to publish:
    $MAILADM queue list
    $MAILADM dkim keygen $DOMAIN --selector s1
    $MAILADM dns $DOMAIN

  Read it with mutt (the Maildir is the mailbox):
    mutt -f $RUN/mail/$DOMAIN/demo/

MSG
if [ -x "$BIN/imapd" ]; then
	cat <<MSG
  Thunderbird: IMAP server 127.0.0.1 port $IMAPS_PORT (SSL/TLS) or $IMAP_PORT (STARTTLS),
  user name $USER, normal password; accept the self-signed certificate.
    openssl s_client -connect 127.0.0.1:$IMAPS_PORT -crlf -quiet

MSG
fi
if [ -x "$BIN/pop3d" ]; then
	cat <<MSG
  POP3 client (Thunderbird, Outlook, fetchmail, a phone): POP3 server 127.0.0.1
  port $POP3S_PORT (SSL/TLS) or $POP3_PORT (STARTTLS), user name $USER, normal password.
    curl -k --user $USER:$PASSWORD pop3s://127.0.0.1:$POP3S_PORT/      (list)
    curl -k --user $USER:$PASSWORD pop3s://127.0.0.1:$POP3S_PORT/1     (message 1)
    openssl s_client -connect 127.0.0.1:$POP3S_PORT -crlf -quiet

MSG
fi
echo "  Ctrl-C stops the demo."
echo
"$BIN/smtpd" -c "$CONF" 2>>"$RUN/smtpd.log" &
PIDS="$PIDS $!"
wait
