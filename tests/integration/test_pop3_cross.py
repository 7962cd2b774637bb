"""imapd and pop3d on the same store: what one does, the other sees.
RETR sets \\Seen for IMAP (TOP does not), a POP3 DELE+QUIT reaches an
IMAP session on INBOX as EXPUNGE (at NOOP and in IDLE), an IMAP EXPUNGE
before a POP3 login hides the message, UIDL values are derived from the
index (UIDVALIDITY + UID) and do not change when IMAP touches a message,
\\Deleted set by IMAP is not POP3's to expunge, and a POP3 login leaves
\\Recent to IMAP."""

import imaplib
import re
import socket
import time

import pytest

import buzon
from pop3_helpers import (ALICE, ALICE_PW, deliver, files, index_uids,
                          session, tls_ctx)


@pytest.fixture
def both(pop3):
    """The pop3 instance with imapd running too."""
    from daemon import Daemon
    pop3.imapd = Daemon(pop3, "imapd", pop3.imap_port, b"* OK")
    pop3.imapd.start()
    try:
        yield pop3
    finally:
        pop3.imapd.stop()


def imap_login(inst):
    m = imaplib.IMAP4_SSL("127.0.0.1", inst.imaps_port, ssl_context=tls_ctx(),
                          timeout=buzon.t(10))
    assert m.login(ALICE, ALICE_PW)[0] == "OK"
    return m


def imap_flags(inst):
    """{uid: set of flags} of INBOX, from a fresh IMAP session."""
    m = imap_login(inst)
    try:
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK", data
        out = {}
        if int(data[0]) == 0:
            return out
        typ, data = m.fetch("1:*", "(UID FLAGS)")
        for d in data:
            uid = int(re.search(rb"UID (\d+)", d).group(1))
            flags = re.search(rb"FLAGS \(([^)]*)\)", d).group(1).split()
            out[uid] = set(flags)
        return out
    finally:
        m.logout()


def test_retr_sets_seen_for_imap_and_top_does_not(both):
    deliver(both, "one")
    deliver(both, "two")
    m = imap_login(both)
    assert m.select("INBOX")[0] == "OK"
    assert all(b"\\Seen" not in f for f in imap_flags(both).values())
    with session(both) as p:
        assert p.cmd("RETR 1").startswith(b"+OK")
        p.raw_until_terminator()
        assert p.cmd("TOP 2 5").startswith(b"+OK")
        p.raw_until_terminator()
        # visible at once, before QUIT
        flags = imap_flags(both)
        assert b"\\Seen" in flags[1] and b"\\Seen" not in flags[2], flags
        # an IMAP session already on INBOX hears of it at its next NOOP
        assert m.noop()[0] == "OK"
        fetches = m.untagged_responses.get("FETCH", [])
        assert any(b"\\Seen" in f for f in fetches), (fetches, m.untagged_responses)
        assert p.cmd("QUIT").startswith(b"+OK")
    m.logout()


def test_dele_quit_gives_expunge_at_noop(both):
    for s in ("one", "two", "three"):
        deliver(both, s)
    m = imap_login(both)
    typ, data = m.select("INBOX")
    assert data == [b"3"]
    with session(both) as p:
        assert p.cmd("DELE 2").startswith(b"+OK")
        assert m.noop()[0] == "OK"
        assert "EXPUNGE" not in m.untagged_responses, "EXPUNGE before QUIT"
        assert p.cmd("QUIT") == b"+OK Bye (2 messages left)"
    assert m.noop()[0] == "OK"
    assert m.untagged_responses.get("EXPUNGE") == [b"2"], m.untagged_responses
    typ, data = m.fetch("1:*", "(UID)")
    assert [int(re.search(rb"UID (\d+)", d).group(1)) for d in data] == [1, 3]
    m.logout()
    assert index_uids(both) == [1, 3]


def test_dele_quit_gives_expunge_in_idle(both):
    for s in ("one", "two"):
        deliver(both, s)
    s = socket.create_connection(("127.0.0.1", both.imaps_port), timeout=buzon.t(10))
    s = tls_ctx().wrap_socket(s)
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN {ALICE} {ALICE_PW}\r\na SELECT INBOX\r\n".encode())
    seen = b""
    while b"a OK" not in seen or seen.count(b"a OK") < 2:
        seen += f.readline()
    s.sendall(b"b IDLE\r\n")
    assert f.readline().startswith(b"+ ")
    with session(both) as p:
        assert p.cmd("DELE 1").startswith(b"+OK")
        assert p.cmd("QUIT").startswith(b"+OK")
    t0 = time.monotonic()
    line = f.readline()
    assert line == b"* 1 EXPUNGE\r\n", line
    assert time.monotonic() - t0 < buzon.t(3)
    s.sendall(b"DONE\r\n")
    assert f.readline().startswith(b"b OK")
    s.close()


def test_imap_expunge_before_login_is_not_listed(both):
    deliver(both, "stays")
    deliver(both, "expunged by imap")
    m = imap_login(both)
    m.select("INBOX")
    assert m.store("2", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    m.logout()
    with session(both) as p:
        first, lines = p.multi("LIST")
        assert len(lines) == 1 and first.startswith(b"+OK 1 messages")
        assert p.cmd("RETR 1").startswith(b"+OK")
        assert b"Subject: stays" in p.raw_until_terminator()


def test_uidl_from_index_and_unchanged_by_imap(both):
    deliver(both, "one")
    deliver(both, "two")
    m = imap_login(both)
    typ, data = m.status("INBOX", "(UIDVALIDITY)")
    uidvalidity = int(re.search(rb"UIDVALIDITY (\d+)", data[0]).group(1))
    with session(both) as p:
        first, lines = p.multi("UIDL")
        assert first.startswith(b"+OK")
        before = [ln.split()[1] for ln in lines]
    assert before == [f"{uidvalidity:08x}{uid:08x}".encode() for uid in (1, 2)]
    # IMAP reads (sets \Seen), flags and keywords: files are renamed
    m.select("INBOX")
    m.fetch("1:*", "(BODY[])")
    assert m.store("2", "+FLAGS", "(\\Flagged \\Answered $Label1)")[0] == "OK"
    m.logout()
    assert all(":2,S" in f.name or ":2,F" in f.name or ":2,R" in f.name
               for f in files(both)), [f.name for f in files(both)]
    with session(both) as p:
        first, lines = p.multi("UIDL")
        assert [ln.split()[1] for ln in lines] == before


def test_imap_deleted_flag_is_not_expunged_by_pop3(both):
    for s in ("one", "two", "three"):
        deliver(both, s)
    m = imap_login(both)
    m.select("INBOX")
    assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    m.logout()
    with session(both) as p:
        # POP3 still lists a message IMAP only marked \Deleted
        assert p.cmd("STAT").startswith(b"+OK 3 ")
        assert p.cmd("DELE 3").startswith(b"+OK")
        assert p.cmd("QUIT") == b"+OK Bye (2 messages left)"
    assert index_uids(both) == [1, 2]
    flags = imap_flags(both)
    assert b"\\Deleted" in flags[1] and b"\\Deleted" not in flags[2], flags


def test_pop3_login_leaves_recent_to_imap(both):
    deliver(both, "one")
    deliver(both, "two")
    with session(both) as p:
        assert p.cmd("STAT").startswith(b"+OK 2 ")
        assert p.cmd("QUIT").startswith(b"+OK")
    assert len(list((both.maildir(ALICE) / "new").iterdir())) == 0, \
        "POP3 login should have moved new/ to cur/"
    m = imap_login(both)
    typ, data = m.select("INBOX")
    assert m.untagged_responses.get("RECENT") == [b"2"], m.untagged_responses
    m.logout()
