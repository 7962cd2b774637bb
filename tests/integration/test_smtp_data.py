"""DATA: end of data only on CRLF.CRLF, dot-unstuffing, CRLF -> LF in the
store, message size limit, bare LF / bare CR refusal, SMTP smuggling,
8-bit and UTF-8 content.  Raw sockets so that the exact bytes are sent."""

import os
import socket
import time

import pytest

from buzon import Delivered, dot_stuff, expect, make_message, t

ALICE = "alice@example.test"
BOB = "bob@example.test"


def start_data(c, sender="x@y.test", rcpts=(ALICE,), mail_params=""):
    expect(c.cmd(f"MAIL FROM:<{sender}>{mail_params}"), 250, "2.1.0", "MAIL FROM")
    for r in rcpts:
        expect(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5", f"RCPT TO:<{r}>")
    expect(c.cmd("DATA"), 354, after="DATA")


def all_stored(instance):
    """Every message file anywhere under mail_dir (any user, any folder)."""
    out = []
    for root, dirs, files in os.walk(instance.mail_dir):
        if os.path.basename(root) in ("new", "cur"):
            out += [os.path.join(root, f) for f in files]
    return out


def assert_session_goes_on(instance, c, what):
    """A full transaction on the same connection still works."""
    msgid, msg = make_message(subject="after " + what)
    r = c.mail_tx("x@y.test", [ALICE], msg)
    expect(r, 250, "2.0.0", f"a normal message after {what}")
    found = instance.find(ALICE, msgid)
    assert len(found) == 1, f"the message sent after {what} landed {len(found)} times"
    found[0].check_original(msg)


# ------------------------------------------------------------ dots and line ends


def test_dot_unstuffing_and_lf_storage(instance):
    body = (".x starts with a dot\n"
            ".\n"
            "..two dots\n"
            "...\n"
            "middle . dot\n"
            " .space-dot\n"
            "last line\n")
    msgid, msg = make_message(body=body)
    with instance.connect() as c:
        r = c.mail_tx("x@y.test", [ALICE], msg)
        expect(r, 250, "2.0.0", "end of data")
    files = instance.messages(ALICE)
    assert len(files) == 1, f"alice has {len(files)} messages, expected 1"
    d = Delivered(files[0])
    d.check_name()
    d.check_original(msg)
    assert b"\n.x starts with a dot\n.\n..two dots\n...\n" in d.data, \
        f"dot-unstuffing wrong: stored body {d.original[-200:]!r}"


def test_raw_dot_stuffed_line(instance):
    with instance.connect() as c:
        start_data(c)
        c.send(b"Subject: dots\r\n\r\n..x\r\n..\r\n.\r\n")
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of data")
    d = instance.one(ALICE)
    assert d.original == b"Subject: dots\n\n.x\n.\n", \
        f"stored {d.original!r}, expected b'Subject: dots\\n\\n.x\\n.\\n'"


def test_dot_not_at_line_start_does_not_end(instance):
    with instance.connect() as c:
        start_data(c)
        c.send(b"Subject: x\r\n\r\nabc.\r\n x.\r\n.x\r\n")
        # not the end yet: no reply may come
        early = c.replies_until_quiet(quiet=t(1))
        assert early == [], f"the server replied {[str(r) for r in early]} before the real end of data"
        c.send(b".\r\n")
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of data")
    d = instance.one(ALICE)
    assert d.original == b"Subject: x\n\nabc.\n x.\nx\n", f"stored {d.original!r}"


def test_end_of_data_split_across_packets(instance):
    msgid, msg = make_message(body="line one\n.dot line\nline three\n")
    data = dot_stuff(msg)
    with instance.connect() as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start_data(c)
        for i in range(len(data)):
            c.send(data[i:i + 1])
            if data[i:i + 1] in (b"\r", b"\n", b"."):
                time.sleep(0.002)
        expect(c.read_reply(after="end of data sent one byte at a time"), 250, "2.0.0",
               "end of data sent one byte at a time")
    d = instance.one(ALICE)
    d.check_original(msg)


# ------------------------------------------------------------ size


def big_body(nbytes):
    line = "x" * 76 + "\n"
    return line * (nbytes // len(line) + 1)


def test_message_over_max_size_refused(instance):
    msgid, msg = make_message(body=big_body(1200 * 1024))
    with instance.connect() as c:
        start_data(c)
        c.send(dot_stuff(msg))
        r = c.read_reply(timeout=t(60), after="end of a 1.2M message (limit 1M)")
        expect(r, 552, "5.3.4", "end of a 1.2M message with max_message_size = 1M")
        assert instance.messages(ALICE) == [], "an over-size message was delivered"
        assert_session_goes_on(instance, c, "an over-size message")
    assert len(instance.messages(ALICE)) == 1, "after one refused and one good message alice should have 1"


def test_message_under_max_size_accepted(instance):
    msgid, msg = make_message(body=big_body(900 * 1024))
    with instance.connect() as c:
        start_data(c)
        c.send(dot_stuff(msg))
        r = c.read_reply(timeout=t(60), after="end of a 900K message (limit 1M)")
        expect(r, 250, "2.0.0", "end of a 900K message with max_message_size = 1M")
    files = instance.messages(ALICE)
    assert len(files) == 1, f"alice has {len(files)} messages after a 900K message, expected 1"
    d = Delivered(files[0])
    d.check_name()
    d.check_original(msg)


def test_size_declared_ok_but_body_too_big(instance):
    msgid, msg = make_message(body=big_body(1100 * 1024))
    with instance.connect() as c:
        start_data(c, mail_params=" SIZE=1000")
        c.send(dot_stuff(msg))
        r = c.read_reply(timeout=t(60), after="end of data")
        expect(r, 552, "5.3.4", "a 1.1M body after MAIL ... SIZE=1000 (limit 1M)")
    assert instance.messages(ALICE) == [], "an over-size message was delivered"


# ------------------------------------------------------------ bare LF / bare CR

BARE = {
    "lf-in-body": b"Subject: x\r\n\r\nline1\nline2\r\n",
    "lf-in-header": b"Subject: x\nX-Other: y\r\n\r\nbody\r\n",
    "lf-at-end-of-line": b"Subject: x\r\n\r\nbody\n\r\n",
    "cr-in-body": b"Subject: x\r\n\r\nline1\rline2\r\n",
    "cr-before-crlf": b"Subject: x\r\n\r\nline1\r\r\n",
    "lfcr": b"Subject: x\r\n\r\nline1\n\rline2\r\n",
}


@pytest.mark.parametrize("name", sorted(BARE))
def test_bare_newline_refused(instance, name):
    with instance.connect() as c:
        start_data(c)
        c.send(BARE[name] + b".\r\n")
        r = c.read_reply(after=f"end of a message with a bare newline ({name})")
        expect(r, 550, "5.6.0", f"end of a message with a bare newline ({name})")
        extra = c.replies_until_quiet(quiet=t(0.5))
        assert extra == [], f"more replies after the refusal: {[str(x) for x in extra]}"
        assert all_stored(instance) == [], f"a message with a bare newline was stored: {all_stored(instance)}"
        assert_session_goes_on(instance, c, f"a bare-newline refusal ({name})")


# ------------------------------------------------------------ SMTP smuggling

SMUGGLE_ENDS = {
    "lf.lf": b"\n.\n",
    "cr.cr": b"\r.\r",
    "lf.crlf": b"\n.\r\n",
    "crlf.lf": b"\r\n.\n",
    "crlf.cr": b"\r\n.\r",
    "cr.crlf": b"\r.\r\n",
    "lf.cr": b"\n.\r",
}


@pytest.mark.parametrize("name", sorted(SMUGGLE_ENDS))
def test_smuggling_not_an_end(instance, name):
    end = SMUGGLE_ENDS[name]
    payload = (b"Subject: x\r\n\r\nbody" + end +
               b"MAIL FROM:<evil@x.test>\r\n"
               b"RCPT TO:<bob@example.test>\r\n"
               b"DATA\r\n"
               b"Subject: smuggled\r\n\r\nsmuggled\r\n"
               b".\r\n")
    with instance.connect() as c:
        start_data(c)
        c.send(payload)
        replies = c.replies_until_quiet(quiet=t(1.5))
        assert len(replies) == 1 and replies[0].code // 100 == 5, \
            f"smuggling with {name} {end!r}: after the real end of data the client saw " \
            f"{[str(r) for r in replies]}, expected exactly one 5xx reply"
        expect(c.cmd("QUIT"), 221, after="QUIT")
    time.sleep(0.3)
    assert instance.messages(BOB) == [], f"smuggling with {name}: a message reached bob"
    stored = all_stored(instance)
    assert stored == [], f"smuggling with {name}: messages were stored: {stored}"
    assert instance.queue_entries() == [], f"smuggling with {name}: queue entries {instance.queue_entries()}"


def test_smuggling_with_dot_stuffed_fake_end(instance):
    """'\\r\\n..\\r\\n' is a stuffed dot line, not an end; the command after
    it is message text."""
    with instance.connect() as c:
        start_data(c)
        c.send(b"Subject: x\r\n\r\nbody\r\n..\r\nRCPT TO:<bob@example.test>\r\n.\r\n")
        replies = c.replies_until_quiet(quiet=t(1))
        assert len(replies) == 1, f"client saw {[str(r) for r in replies]}, expected one 250"
        expect(replies[0], 250, "2.0.0", "end of data")
    d = instance.one(ALICE)
    assert d.original == b"Subject: x\n\nbody\n.\nRCPT TO:<bob@example.test>\n", f"stored {d.original!r}"
    assert instance.messages(BOB) == [], "the text after a stuffed dot line reached bob"


# ------------------------------------------------------------ 8-bit / UTF-8


def test_8bit_body_stored_intact(instance):
    body = "caf\u00e9 \u00fcber \u65e5\u672c\n".encode("utf-8") + b"raw \xff\xfe bytes\n"
    msg = b"Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n" \
          b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body.replace(b"\n", b"\r\n")
    with instance.connect() as c:
        start_data(c, mail_params=" BODY=8BITMIME")
        c.send(dot_stuff(msg))
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of 8BITMIME data")
    d = instance.one(ALICE)
    d.check_name()
    d.check_original(msg)


def test_smtputf8_sender(instance):
    sender = "jos\u00e9@\u00f1and\u00fa.test"
    msg = ("From: " + sender + "\r\nSubject: \u00a1hola!\r\n\r\nbody\r\n").encode("utf-8")
    with instance.connect() as c:
        r = c.cmd(f"MAIL FROM:<{sender}> SMTPUTF8")
        expect(r, 250, "2.1.0", "MAIL FROM with a UTF-8 address and SMTPUTF8")
        expect(c.cmd(f"RCPT TO:<{ALICE}>"), 250, "2.1.5", "RCPT TO")
        expect(c.cmd("DATA"), 354, after="DATA")
        c.send(dot_stuff(msg))
        expect(c.read_reply(after="end of data"), 250, "2.0.0", "end of SMTPUTF8 data")
    d = instance.one(ALICE)
    assert d.return_path == f"<{sender}>", f"Return-Path is {d.return_path!r}, expected <{sender}>"
    d.check_original(msg)


def test_utf8_sender_without_smtputf8_refused(smtp):
    with smtp.connect() as c:
        r = c.cmd("MAIL FROM:<jos\u00e9@y.test>")
        assert r.code in (553, 501, 550, 555), \
            f"after a UTF-8 MAIL FROM without SMTPUTF8 the client saw '{r}', expected 553 5.6.7"


def test_long_body_lines_kept(instance):
    line = "y" * 990
    msgid, msg = make_message(body=(line + "\n") * 20)
    with instance.connect() as c:
        expect(c.mail_tx("x@y.test", [ALICE], msg), 250, "2.0.0", "end of data with 990-octet lines")
    instance.one(ALICE).check_original(msg)
