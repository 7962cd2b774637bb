"""smtpd on an `smtp` (port 25) listener: greeting, EHLO, command
sequencing and replies (RFC 5321), basic delivery and what lands in the
Maildir, pipelining, limits on command lines and connections, SIGTERM."""

import smtplib
import socket
import subprocess
import time

import pytest

from buzon import (HOSTNAME, SMTPClient, Delivered, expect, make_message, dot_stuff,
                   t, wait_until)

ALICE = "alice@example.test"
BOB = "bob@example.test"


# ------------------------------------------------------------ greeting / EHLO


def test_greeting(smtp):
    with SMTPClient(smtp.smtp_port) as c:
        g = c.greeting()
        expect(g, 220, after="connect")
        assert g.texts[0].startswith(f"{HOSTNAME} ESMTP"), \
            f"greeting is '{g}', expected '220 {HOSTNAME} ESMTP ...'"


def test_ehlo_capabilities(smtp):
    with smtp.connect(ehlo=False) as c:
        r = c.cmd("EHLO client.example.test")
        expect(r, 250, after="EHLO")
        assert len(r.lines) > 1 and r.lines[0].startswith("250-"), \
            f"EHLO reply '{r}' is not a multi-line 250"
        assert r.texts[0].split()[0] == HOSTNAME, \
            f"EHLO reply first line is {r.texts[0]!r}, expected it to start with {HOSTNAME}"
        kw = r.keywords()
        for k in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "STARTTLS"):
            assert k in kw, f"EHLO reply '{r}' lacks {k}"
        assert kw["SIZE"] == [str(1024 * 1024)], \
            f"EHLO advertises SIZE {kw['SIZE']}, expected 1048576 (max_message_size = 1M)"
        assert "AUTH" not in kw, f"EHLO on port 25 before TLS offers AUTH: '{r}'"


@pytest.mark.buzon_conf(smtpd={"max_message_size": "10K"})
def test_ehlo_size_follows_config(instance):
    with instance.connect(ehlo=False) as c:
        kw = c.ehlo().keywords()
        assert kw.get("SIZE") == ["10240"], f"SIZE is {kw.get('SIZE')}, expected ['10240']"


def test_helo(smtp):
    with smtp.connect(ehlo=False) as c:
        r = c.cmd("HELO client.example.test")
        expect(r, 250, after="HELO client.example.test")
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL after HELO")


def test_ehlo_twice_resets_transaction(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        c.ehlo()
        expect(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1",
               "RCPT after a second EHLO (transaction must be reset)")


# ------------------------------------------------------------ MAIL


def test_mail_before_helo(smtp):
    with smtp.connect(ehlo=False) as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 503, "5.5.1", "MAIL FROM before EHLO")
        c.ehlo()
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM after EHLO")


@pytest.mark.parametrize("line", [
    "MAIL FROM:<x@y.test",
    "MAIL FROM:",
    "MAIL",
    "MAIL FROM:<x y@y.test>",
    "MAIL FROM:<x@>",
    "MAIL FROM:<x@y..test>",
    "MAIL TO:<x@y.test>",
])
def test_mail_syntax_error(smtp, line):
    with smtp.connect() as c:
        r = c.cmd(line)
        expect(r, 501, after=line)
        assert r.enhanced and r.enhanced.startswith("5."), \
            f"after {line!r} the client saw '{r}', expected an enhanced status code 5.x.x"
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "a good MAIL after a bad one")


def test_mail_size_too_big(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test> SIZE=2000000"), 552, "5.3.4",
               "MAIL FROM with SIZE=2000000 over a 1M limit")
        expect(c.cmd("MAIL FROM:<x@y.test> SIZE=1000"), 250, "2.1.0", "MAIL FROM with SIZE=1000")


def test_mail_unknown_parameter(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test> FOO=bar"), 555, "5.5.4", "MAIL FROM with FOO=bar")


def test_mail_known_parameters(smtp):
    with smtp.connect() as c:
        line = "MAIL FROM:<x@y.test> BODY=8BITMIME SIZE=100"
        expect(c.cmd(line), 250, "2.1.0", line)
        expect(c.cmd("RSET"), 250, after="RSET")
        line = "MAIL FROM:<x@y.test> SMTPUTF8"
        expect(c.cmd(line), 250, "2.1.0", line)
        expect(c.cmd("RSET"), 250, after="RSET")
        line = "mail from:<x@y.test> body=7bit"
        expect(c.cmd(line), 250, "2.1.0", line)


def test_mail_null_sender(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<>"), 250, "2.1.0", "MAIL FROM:<>")


def test_second_mail_in_transaction(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        r = c.cmd("MAIL FROM:<z@y.test>")
        expect(r, 503, after="a second MAIL FROM in the same transaction")


# ------------------------------------------------------------ RCPT


def test_rcpt_before_mail(smtp):
    with smtp.connect() as c:
        expect(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1", "RCPT before MAIL")


def test_rcpt_unknown_user(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1", "RCPT TO:<nobody@example.test>")
        expect(c.cmd("RCPT TO:<alice@example.test>"), 250, "2.1.5", "RCPT TO:<alice@example.test>")


@pytest.mark.parametrize("rcpt", ["alice@example.test", "ALICE@EXAMPLE.TEST", "Alice@Example.Test",
                                  "alice+tag@example.test"])
def test_rcpt_ok(smtp, rcpt):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd(f"RCPT TO:<{rcpt}>"), 250, "2.1.5", f"RCPT TO:<{rcpt}>")


def test_rcpt_syntax_error(smtp):
    with smtp.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        for line in ("RCPT TO:<alice@example.test", "RCPT TO:", "RCPT FROM:<alice@example.test>",
                     "RCPT TO:<>"):
            r = c.cmd(line)
            expect(r, "5", after=line)
            assert r.code in (501, 553, 550), f"after {line!r} the client saw '{r}', expected 501"


def test_rcpt_disabled_user(instance):
    instance.mailadm("user", "disable", BOB, check=True)
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 550, "5.2.1", "RCPT to a disabled user")
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250, "2.1.5", "RCPT to an active user")
    instance.mailadm("user", "enable", BOB, check=True)
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250, "2.1.5", "RCPT to a re-enabled user")


def test_rcpt_user_added_while_running(instance):
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<carol@example.test>"), 550, "5.1.1", "RCPT before user add")
    instance.add_user("carol@example.test")
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<carol@example.test>"), 250, "2.1.5",
               "RCPT to a user added with mailadm while smtpd runs")


@pytest.mark.buzon_conf(smtpd={"max_recipients": "3"})
def test_too_many_recipients(instance):
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        for i in range(3):
            expect(c.cmd(f"RCPT TO:<alice+{i}@example.test>"), 250, "2.1.5", f"RCPT number {i + 1}")
        expect(c.cmd("RCPT TO:<bob@example.test>"), 452, "4.5.3", "RCPT number 4 with max_recipients = 3")
        expect(c.cmd("DATA"), 354, after="DATA with 3 accepted recipients")
        _, msg = make_message()
        c.send(dot_stuff(msg))
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of data")
    assert len(instance.messages(ALICE)) == 1, \
        f"alice has {len(instance.messages(ALICE))} messages, expected 1 (three RCPTs to the same mailbox)"
    assert instance.messages(BOB) == [], "bob got a copy although his RCPT was refused"


# ------------------------------------------------------------ DATA sequencing


def test_data_without_rcpt(smtp):
    with smtp.connect() as c:
        r = c.cmd("DATA")
        assert r.code in (503, 554), f"after DATA with no MAIL the client saw '{r}', expected 503 5.5.1"
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RCPT TO:<nobody@example.test>"), 550, "5.1.1", "RCPT to an unknown user")
        r = c.cmd("DATA")
        assert r.code in (503, 554), \
            f"after DATA with no valid RCPT the client saw '{r}', expected 503 5.5.1 (or 554)"
        assert r.enhanced is None or r.enhanced.startswith("5."), f"DATA reply '{r}'"
        # the session is still usable
        expect(c.cmd("NOOP"), 250, after="NOOP after a refused DATA")


# ------------------------------------------------------------ delivery


def test_delivery_lands_before_250(instance):
    msgid, msg = make_message(subject="first", body="Hello Alice.\nSecond line.\n")
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
        s.ehlo("client.example.test")
        refused = s.sendmail("x@y.test", [ALICE], msg)
        # no waiting: the file must be in new/ before the 250 was sent
        files = instance.messages(ALICE)
        assert refused == {}, f"recipients refused: {refused}"
    assert len(files) == 1, \
        f"right after the 250, alice's Maildir holds {len(files)} messages, expected 1 " \
        f"(delivery must be complete before 250)"
    assert files[0].parent.name == "new", f"message delivered to {files[0].parent.name}/, expected new/"
    d = Delivered(files[0])
    d.check_name()
    d.check_trace("x@y.test", ALICE)
    assert "with ESMTP" in d.received and "ESMTPS" not in d.received, \
        f"Received header {d.received!r}: expected 'with ESMTP' on a plaintext session"
    d.check_original(msg)
    tmp = list((instance.maildir(ALICE) / "tmp").iterdir())
    assert tmp == [], f"files left in tmp/ after delivery: {tmp}"
    assert instance.messages(BOB) == [], "bob got a copy of alice's mail"


def test_250_reply_has_queue_id(smtp):
    _, msg = make_message()
    with smtp.connect() as c:
        r = c.mail_tx("x@y.test", [ALICE], msg)
        expect(r, 250, "2.0.0", "end of data")
        words = r.texts[0].split()
        assert len(words) >= 2, f"250 after DATA is '{r}', expected a queue id after 2.0.0"


def test_two_recipients_two_mailboxes(instance):
    msgid, msg = make_message(to="alice, bob")
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
        assert s.sendmail("x@y.test", [ALICE, BOB], msg) == {}
        a, b = instance.messages(ALICE), instance.messages(BOB)
    assert len(a) == 1 and len(b) == 1, f"alice has {len(a)}, bob has {len(b)}; expected 1 each"
    Delivered(a[0]).check_trace("x@y.test", ALICE)
    Delivered(b[0]).check_trace("x@y.test", BOB)
    Delivered(b[0]).check_original(msg)


@pytest.mark.parametrize("rcpt", ["ALICE@EXAMPLE.TEST", "alice+tag@example.test", "Alice+Other.Tag@Example.Test"])
def test_delivery_case_and_subaddress_reach_alice(instance, rcpt):
    msgid, msg = make_message()
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=t(30)) as s:
        assert s.sendmail("x@y.test", [rcpt], msg) == {}
    files = instance.messages(ALICE)
    assert len(files) == 1, f"mail to {rcpt}: alice has {len(files)} messages, expected 1"
    d = Delivered(files[0])
    assert (d.delivered_to or "").strip("<>").lower() in (ALICE, rcpt.lower()), \
        f"Delivered-To is {d.delivered_to!r}"
    d.check_original(msg)
    others = [p for p in instance.mail_dir.joinpath("example.test").iterdir()
              if p.name not in ("alice", "bob")]
    assert others == [], f"extra Maildirs created: {others}"


def test_null_sender_delivery(instance):
    _, msg = make_message(subject="bounce")
    with instance.connect() as c:
        expect(c.mail_tx("", [ALICE], msg), 250, "2.0.0", "end of data (null sender)")
    files = instance.messages(ALICE)
    assert len(files) == 1, f"alice has {len(files)} messages after a null-sender message, expected 1"
    d = Delivered(files[0])
    assert d.return_path == "<>", f"Return-Path for the null sender is {d.return_path!r}, expected '<>'"


def test_several_transactions_one_session(instance):
    sent = []
    with instance.connect() as c:
        for i in range(5):
            msgid, msg = make_message(subject=f"n{i}")
            expect(c.mail_tx(f"s{i}@y.test", [ALICE], msg), 250, "2.0.0", f"end of data #{i + 1}")
            sent.append((msgid, msg, f"s{i}@y.test"))
        c.quit()
    for msgid, msg, sender in sent:
        found = instance.find(ALICE, msgid)
        assert len(found) == 1, f"{msgid}: {len(found)} copies, expected 1"
        found[0].check_trace(sender, ALICE)
        found[0].check_original(msg)


# ------------------------------------------------------------ other commands


def test_rset_noop_quit(smtp):
    with smtp.connect() as c:
        expect(c.cmd("NOOP"), 250, after="NOOP")
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd("RSET"), 250, after="RSET")
        expect(c.cmd("RCPT TO:<alice@example.test>"), 503, "5.5.1", "RCPT after RSET")
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM after RSET")
        expect(c.cmd("QUIT"), 221, after="QUIT")
        assert c.closed_by_server(t(5)), "the server did not close the connection after 221"


def test_commands_case_insensitive(smtp):
    with smtp.connect(ehlo=False) as c:
        expect(c.cmd("ehlo client.example.test"), 250, after="ehlo")
        expect(c.cmd("mail from:<x@y.test>"), 250, "2.1.0", "mail from:")
        expect(c.cmd("rcpt to:<alice@example.test>"), 250, "2.1.5", "rcpt to:")
        expect(c.cmd("rset"), 250, after="rset")
        expect(c.cmd("noop"), 250, after="noop")


def test_unknown_command(smtp):
    with smtp.connect() as c:
        expect(c.cmd("FROB something"), 500, "5.5.2", "FROB something")
        expect(c.cmd("NOOP"), 250, after="NOOP after an unknown command")


def test_long_command_line(smtp):
    with smtp.connect() as c:
        line = "NOOP " + "a" * 3000
        expect(c.cmd(line), 500, "5.5.2", "a 3005-octet command line")
        expect(c.cmd("NOOP"), 250, after="NOOP after an over-long line")
        line = "MAIL FROM:<" + "b" * 5000 + "@y.test>"
        expect(c.cmd(line), 500, "5.5.2", "a 5019-octet MAIL line")
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL after an over-long line")


def test_very_long_line_without_crlf_does_not_hang(smtp):
    with smtp.connect() as c:
        c.send(b"X" * 200000 + b"\r\n")
        r = c.read_reply(after="a 200000-octet line")
        expect(r, 500, "5.5.2", "a 200000-octet line")
        expect(c.cmd("NOOP"), 250, after="NOOP after a 200000-octet line")


def test_nul_in_command(smtp):
    with smtp.connect() as c:
        r = c.cmd(b"NOOP\x00hidden")
        expect(r, 500, after="NOOP\\0hidden")
        r = c.cmd(b"MAIL FROM:<x@y.test>\x00 SIZE=1")
        assert r.code in (500, 501), f"after MAIL with a NUL the client saw '{r}', expected 500"
        expect(c.cmd("NOOP"), 250, after="NOOP after a NUL line")


def test_pipelining(instance):
    msgs = [make_message(subject=f"p{i}") for i in range(3)]
    rcpts = [[ALICE], [BOB, ALICE], [BOB]]
    blob = b"EHLO client.example.test\r\n"
    for (msgid, msg), rc in zip(msgs, rcpts):
        blob += b"MAIL FROM:<p@y.test>\r\n"
        blob += b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rc)
        blob += b"RCPT TO:<nobody@example.test>\r\n"
        blob += b"DATA\r\n" + dot_stuff(msg)
    blob += b"NOOP\r\nQUIT\r\n"
    expected = [(250, None)]
    for rc in rcpts:
        expected += [(250, "2.1.0")] + [(250, "2.1.5")] * len(rc) + [(550, "5.1.1"), (354, None), (250, "2.0.0")]
    expected += [(250, None), (221, None)]
    with SMTPClient(instance.smtp_port) as c:
        expect(c.greeting(), 220, after="connect")
        c.send(blob)
        got = []
        for i, (code, enh) in enumerate(expected):
            r = c.read_reply(after=f"pipelined command #{i + 1}")
            got.append(r)
            assert r.code == code and (enh is None or r.enhanced == enh), \
                f"pipelined reply #{i + 1} is '{r}', expected {code} {enh or ''}; " \
                f"replies so far: {[str(x) for x in got]}"
    a = instance.messages(ALICE)
    b = instance.messages(BOB)
    assert len(a) == 2 and len(b) == 2, f"alice has {len(a)}, bob {len(b)}; expected 2 and 2"
    for msgid, msg in msgs:
        copies = instance.find(ALICE, msgid) + instance.find(BOB, msgid)
        assert copies, f"{msgid} never landed"
        for d in copies:
            d.check_original(msg)


# ------------------------------------------------------------ swaks


def test_swaks(instance, tool):
    swaks = tool("swaks")
    cp = subprocess.run([swaks, "--to", ALICE, "--from", "x@y.test",
                         "--server", f"127.0.0.1:{instance.smtp_port}",
                         "--header", "Subject: via swaks", "--body", "swaks body line"],
                        capture_output=True, text=True, timeout=t(60))
    assert cp.returncode == 0, f"swaks exited {cp.returncode}; its transcript:\n{cp.stdout[-3000:]}"
    files = instance.messages(ALICE)
    assert len(files) == 1, f"after swaks, alice has {len(files)} messages, expected 1"
    d = Delivered(files[0])
    d.check_name()
    d.check_trace("x@y.test", ALICE)
    assert b"Subject: via swaks" in d.original and b"swaks body line" in d.original, \
        f"stored message lacks swaks' subject/body: {d.original[:300]!r}"


# ------------------------------------------------------------ connections


@pytest.mark.buzon_conf(top={"max_connections_per_ip": "3"})
def test_per_ip_connection_limit(instance):
    # the start-up probe's connection may take a moment to be forgotten:
    # retry a few times, but three must always fit and the fourth never
    last = None
    for attempt in range(10):
        conns = []
        try:
            greets = []
            for i in range(3):
                c = SMTPClient(instance.smtp_port)
                conns.append(c)
                greets.append(c.greeting())
            if any(g.code != 220 for g in greets):
                last = f"one of the first three connections got {[str(g) for g in greets]}"
                time.sleep(0.3)
                continue
            fourth = SMTPClient(instance.smtp_port)
            conns.append(fourth)
            g = fourth.greeting()
            expect(g, 421, after="a 4th simultaneous connection with max_connections_per_ip = 3")
            assert fourth.closed_by_server(t(5)), "the server did not close the 4th connection after 421"
            # the first three still work
            for c in conns[:3]:
                expect(c.cmd("NOOP"), 250, after="NOOP on one of the first three connections")
            break
        finally:
            for c in conns:
                c.close()
    else:
        raise AssertionError(f"three connections never fit under the limit of 3: {last}")

    # once they are closed, new connections are accepted again
    def fits():
        with SMTPClient(instance.smtp_port) as c:
            return c.greeting().code == 220
    wait_until(fits, t(10), interval=0.2, what="a new connection to be accepted after closing the others")


def test_idle_client_does_not_block_others(smtp):
    with SMTPClient(smtp.smtp_port) as idle:
        idle.send(b"EHLO half")  # no CRLF: an incomplete line
        with smtp.connect() as c:
            expect(c.cmd("NOOP"), 250, after="NOOP while another client is half-way through a line")


def test_client_disconnect_mid_data_delivers_nothing(instance):
    with instance.connect() as c:
        expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250, "2.1.5", "RCPT TO")
        expect(c.cmd("DATA"), 354, after="DATA")
        c.send(b"Subject: cut\r\n\r\nhalf a message\r\n")
    time.sleep(0.5)
    with instance.connect() as c:  # the daemon is still fine
        expect(c.cmd("NOOP"), 250, after="NOOP after another client vanished mid-DATA")
    assert instance.messages(ALICE) == [], "a message cut off before the final dot was delivered"


# ------------------------------------------------------------ SIGTERM


def test_sigterm_exit_0_with_open_session(instance_nostart):
    inst = instance_nostart
    inst.start_smtpd()
    c = inst.connect()
    expect(c.cmd("MAIL FROM:<x@y.test>"), 250, "2.1.0", "MAIL FROM")
    try:
        rc = inst.stop_smtpd()
    finally:
        c.close()
    assert rc == 0, f"smtpd exited with {rc} after SIGTERM with a session open, expected 0"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", inst.smtp_port), timeout=t(2)).close()
