"""imapd: the per-user+address session limit, the autologout timer
(and IDLE re-arming it), and no repeated FETCH for a session's own STORE."""

import imaplib
import smtplib
import socket
import ssl
import time

import pytest

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]
BOB, BOB_PW = "bob@example.test", buzon.PASSWORDS["bob@example.test"]


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def login(inst, user=ALICE, pw=ALICE_PW):
    m = imaplib.IMAP4_SSL("127.0.0.1", inst.imaps_port, ssl_context=ctx())
    m.login(user, pw)
    return m


@pytest.mark.buzon_conf(imapd={"max_connections_per_user_ip": "3"})
def test_user_ip_limit_refuses_with_limit_code_and_frees_on_logout(imap):
    held = [login(imap) for _ in range(3)]
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=ctx())
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(ALICE, ALICE_PW)
    assert "[LIMIT]" in str(e.value), e.value
    # another user from the same address is not affected
    b = login(imap, BOB, BOB_PW)
    b.logout()
    # one session leaves: the next login fits again, on the same connection
    held.pop().logout()
    deadline = time.monotonic() + buzon.t(5)
    while True:
        try:
            assert m.login(ALICE, ALICE_PW)[0] == "OK"
            break
        except imaplib.IMAP4.error:
            assert time.monotonic() < deadline, "slot not freed after LOGOUT"
            time.sleep(0.1)
    m.logout()
    for h in held:
        h.logout()


def test_default_user_ip_limit_is_generous(imap):
    # Thunderbird (5 connections) plus two phones behind one NAT
    held = [login(imap) for _ in range(12)]
    for h in held:
        assert h.noop()[0] == "OK"
        h.logout()


def deliver(inst, subject):
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
        s.sendmail("x@y.test", [ALICE],
                   f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def read_until(f, pred, timeout):
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = f.readline()
        if not line:
            break
        out.append(line)
        if pred(line):
            break
    return out


def raw_login(inst, then):
    """A raw TLS session after LOGIN and the commands in then (bytes)."""
    s = ctx().wrap_socket(socket.create_connection(("127.0.0.1", inst.imaps_port)))
    s.settimeout(buzon.t(10))
    f = s.makefile("rb")
    f.readline()
    s.sendall(f"a LOGIN {ALICE} {ALICE_PW}\r\n".encode() + then)
    last = b"b " if then else b"a "
    got = read_until(f, lambda l: l.startswith(last), 5)
    assert got[-1].startswith(last + b"OK"), got
    return s, f


@pytest.mark.buzon_conf(imapd={"autologout": "2s"})
def test_autologout_says_bye_and_idle_is_activity(imap):
    # idle session in AUTH state: BYE after ~2 s, then the connection closes
    s, f = raw_login(imap, b"")
    t0 = time.monotonic()
    lines = read_until(f, lambda l: l.startswith(b"* BYE"), buzon.t(10))
    took = time.monotonic() - t0
    assert lines and lines[-1].startswith(b"* BYE"), lines
    assert 1.5 <= took <= buzon.t(6), took
    assert f.readline() == b"", "connection stays open after autologout BYE"
    s.close()

    # a client that re-issues IDLE within the timeout is never logged out
    s, f = raw_login(imap, b"b SELECT INBOX\r\n")
    for i in range(4):             # 4 x 1.2 s > the 2 s timeout
        s.sendall(f"i{i} IDLE\r\n".encode())
        assert f.readline().startswith(b"+ ")
        time.sleep(1.2)
        s.sendall(b"DONE\r\n")
        got = read_until(f, lambda l: l.startswith(f"i{i} ".encode()), 5)
        assert got[-1].startswith(f"i{i} OK".encode()), got
    s.sendall(b"z LOGOUT\r\n")
    assert read_until(f, lambda l: l.startswith(b"z "), 5)[-1].startswith(b"z OK")
    s.close()


def test_own_store_is_not_repeated_at_noop(imap):
    deliver(imap, "one")
    m = login(imap)
    m.select("INBOX")
    typ, dat = m.uid("STORE", "1", "+FLAGS", r"(\Flagged)")
    assert typ == "OK"
    fetches = [d for d in dat if d]
    assert len(fetches) == 1, dat        # the answer, and no unsolicited copy
    m.untagged_responses.clear()
    typ, _ = m.noop()
    assert "FETCH" not in m.untagged_responses, m.untagged_responses
    # a change by another session is still reported at NOOP
    o = login(imap)
    o.select("INBOX")
    o.store("1", "+FLAGS", r"(\Answered)")
    o.logout()
    m.untagged_responses.clear()
    m.noop()
    got = m.untagged_responses.get("FETCH", [])
    assert any(b"\\Answered" in g for g in got), got
    m.logout()


def test_unknown_commands_in_a_row_end_the_session(imap):
    # after login, so the limit on commands before login plays no part
    s, f = raw_login(imap, b"")
    s.sendall(b"".join(b"x%d FROBNICATE\r\n" % i for i in range(60)))
    lines = read_until(f, lambda l: l.startswith(b"* BYE"), buzon.t(10))
    bad = [l for l in lines if b" BAD " in l]
    assert lines[-1].startswith(b"* BYE"), lines[-3:]
    assert len(bad) == 50, len(bad)
    assert f.readline() == b""
    s.close()
    # a good command in between resets the count
    s, f = raw_login(imap, b"")
    cmds = [b"x%d FROBNICATE\r\n" % i for i in range(40)] + [b"n NOOP\r\n"] + \
        [b"y%d FROBNICATE\r\n" % i for i in range(40)] + [b"z LOGOUT\r\n"]
    s.sendall(b"".join(cmds))
    lines = read_until(f, lambda l: l.startswith(b"z "), buzon.t(10))
    assert lines[-1].startswith(b"z OK"), lines[-3:]
    s.close()


def test_session_on_a_mailbox_deleted_elsewhere_gets_bye(imap):
    a = login(imap)
    assert a.create("Projects")[0] == "OK"
    s, f = raw_login(imap, b"b SELECT Projects\r\n")
    assert a.delete("Projects")[0] == "OK"
    a.logout()
    s.sendall(b"c NOOP\r\n")
    lines = read_until(f, lambda l: l.startswith(b"* BYE") or l.startswith(b"c "),
                       buzon.t(10))
    assert lines[-1].startswith(b"* BYE"), lines
    assert f.readline() in (b"", b"c OK NOOP completed\r\n")
    s.close()
    # the daemon is fine and the other mailboxes too
    m = login(imap)
    assert m.select("INBOX")[0] == "OK"
    m.logout()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


# one imapd process, so that the pid measured is the one serving
@pytest.mark.buzon_conf(imapd={"workers": "1"})
def test_fetch_of_a_mailbox_larger_than_any_buffer_streams(imap):
    """FETCH 1:* BODY.PEEK[] over 96 MB of mail: every message arrives
    whole and in order, a pipelined command is answered after it, and
    imapd never holds the answer in memory."""
    inbox = imap.maildir(ALICE)
    n, size = 24, 4 * 1024 * 1024
    line = b"x" * 75 + b"\n"
    for i in range(n):
        body = (b"Subject: big %d\n\n" % i) + line * (size // len(line))
        p = inbox / "new" / f"17000000{i:02d}.big{i}.host"
        p.write_bytes(body)
    pid = imap.imapd.proc.pid
    s, f = raw_login(imap, b"b SELECT INBOX\r\n")
    base = rss_kib(pid)
    s.sendall(b"c FETCH 1:* (BODY.PEEK[])\r\nd NOOP\r\n")
    peak, got = base, 0
    while True:
        l = f.readline()
        assert l, "connection closed mid-FETCH"
        if l.startswith(b"c "):
            assert l.startswith(b"c OK"), l
            break
        assert l.startswith(b"* ") and l.rstrip().endswith(b"}"), l[:80]
        lit = int(l[l.rindex(b"{") + 1:-3])
        data = f.read(lit)
        assert data.startswith(b"Subject: big %d\r\n" % got), data[:30]
        assert len(data) == lit and f.readline() == b")\r\n"
        got += 1
        if got % 4 == 0:
            time.sleep(0.2)            # a slow reader
            peak = max(peak, rss_kib(pid))
    assert got == n
    assert f.readline().startswith(b"d OK")
    # ASan's quarantine keeps every freed buffer, so RSS says nothing there;
    # the answer arriving whole (above) is what that build checks
    if "asan" not in str(buzon.BIN):
        assert peak - base < 40 * 1024, f"imapd grew {peak - base} KiB during the FETCH"
    s.close()
