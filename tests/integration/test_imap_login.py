"""imapd: greeting, capabilities per state, STARTTLS, LOGIN/AUTHENTICATE,
failure delays, and the commands that need no mailbox."""

import base64
import imaplib
import socket
import ssl
import time

import pytest

import buzon

for _c in ("ID", "ENABLE", "NAMESPACE"):
    imaplib.Commands.setdefault(_c, ("NONAUTH", "AUTH", "SELECTED"))

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def caps(m):
    return set(c.upper() for c in m.capabilities)


def test_plain_port_offers_starttls_and_no_login(imap):
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port)
    c = caps(m)
    assert {"STARTTLS", "LOGINDISABLED", "IMAP4REV1"} <= c, c
    assert not any(x.startswith("AUTH=") for x in c), f"AUTH offered before TLS: {c}"
    with pytest.raises(imaplib.IMAP4.error) as e:
        m.login(ALICE, ALICE_PW)
    assert b"PRIVACYREQUIRED" in str(e.value).encode() or "PRIVACYREQUIRED" in str(e.value)
    typ, dat = m._simple_command("AUTHENTICATE", "PLAIN " + base64.b64encode(
        f"\0{ALICE}\0{ALICE_PW}".encode()).decode())
    assert typ == "NO", (typ, dat)
    m.logout()


def test_starttls_then_login(imap):
    m = imaplib.IMAP4("127.0.0.1", imap.imap_port)
    m.starttls(ssl_context=ctx())
    c = caps(m)
    assert "STARTTLS" not in c and "LOGINDISABLED" not in c, c
    assert {"AUTH=PLAIN", "AUTH=LOGIN", "SASL-IR"} <= c, c
    typ, dat = m.login(ALICE, ALICE_PW)
    assert typ == "OK", dat
    assert b"[CAPABILITY" in dat[0] and b"IDLE" in dat[0], dat
    m.logout()


def test_imaps_authenticate_plain_sasl_ir(imap):
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=ctx())
    ir = base64.b64encode(f"\0{ALICE}\0{ALICE_PW}".encode()).decode()
    typ, dat = m._simple_command("AUTHENTICATE", "PLAIN " + ir)
    assert typ == "OK", dat
    assert m._simple_command("NOOP")[0] == "OK"
    m.logout()


def test_authenticate_login_mechanism_with_continuations(imap):
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=ctx())
    answers = iter([ALICE.encode(), ALICE_PW.encode()])
    typ, dat = m.authenticate("LOGIN", lambda challenge: next(answers))
    assert typ == "OK", dat
    m.logout()


def test_wrong_password_disabled_and_unknown_look_alike(imap):
    imap.mailadm("user", "disable", "bob@example.test", check=True)
    replies = []
    for user, pw in ((ALICE, "wrong"), ("bob@example.test", buzon.PASSWORDS["bob@example.test"]),
                     ("nobody@example.test", "whatever")):
        m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=ctx())
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login(user, pw)
        replies.append(str(e.value))
        m.logout()
    assert all("[AUTHENTICATIONFAILED]" in r for r in replies), replies
    assert len(set(replies)) == 1, f"replies differ, so they reveal accounts: {replies}"


def test_failures_are_delayed_more_each_time(imap):
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=ctx())
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        with pytest.raises(imaplib.IMAP4.error):
            m.login(ALICE, "wrong")
        times.append(time.monotonic() - t0)
    assert times[1] >= 0.9 and times[2] >= 1.9, f"delays {times}"
    # a correct login still works afterwards (the delay is not a lockout)
    assert m.login(ALICE, ALICE_PW)[0] == "OK"
    m.logout()


def test_id_enable_namespace(imap):
    m = imaplib.IMAP4_SSL("127.0.0.1", imap.imaps_port, ssl_context=ctx())
    typ, _ = m._simple_command("ID", '("name" "pytest" "version" "1")')
    assert typ == "OK"
    assert m.untagged_responses.pop("ID")[0].startswith(b'("name" "Buzon"')
    m.login(ALICE, ALICE_PW)
    typ, _ = m._simple_command("ENABLE", "QRESYNC")
    assert typ == "OK"
    assert m.untagged_responses.pop("ENABLED")[0].split() == [b"CONDSTORE", b"QRESYNC"]
    typ, _ = m._simple_command("NAMESPACE")
    assert typ == "OK"
    assert m.untagged_responses.pop("NAMESPACE")[0] == b'(("" ".")) NIL NIL'
    m.logout()


def raw(port, data, read_until=b"", timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    f = s.makefile("rb")
    f.readline()                                 # greeting
    s.sendall(data)
    out = b""
    deadline = time.monotonic() + buzon.t(timeout)
    while read_until not in out and time.monotonic() < deadline:
        line = f.readline()
        if not line:
            break
        out += line
    s.close()
    return out


def test_bad_commands_get_bad_and_session_goes_on(imap):
    out = raw(imap.imap_port,
              b"a1 FROBNICATE\r\n"
              b"a2 LOGIN\r\n"
              b"a3 NOOP \"unterminated\r\n"
              b"(garbage\r\n"
              b"a4 SELECT INBOX\r\n"
              b"a5 CAPABILITY\r\n",
              read_until=b"a5 OK")
    lines = out.split(b"\r\n")
    assert any(l.startswith(b"a1 BAD") for l in lines), out
    assert any(l.startswith(b"a2 BAD") for l in lines), out
    assert any(l.startswith(b"a3 BAD") for l in lines), out
    assert any(l.startswith(b"* BAD") for l in lines), out      # no valid tag
    assert any(l.startswith(b"a4 BAD") for l in lines), out     # not before login
    assert b"a5 OK" in out, out


def test_sync_literal_gets_continuation_and_nonsync_does_not(imap):
    s = socket.create_connection(("127.0.0.1", imap.imap_port),
                                 timeout=buzon.t(5))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a1 ID (\"name\" {6}\r\n")
    assert f.readline().startswith(b"+ "), "no continuation for a synchronizing literal"
    s.sendall(b"pytest)\r\na2 ID (\"name\" {3+}\r\nabc)\r\n")
    got = b""
    while b"a2 " not in got:
        got += f.readline()
    assert b"a1 OK" in got and b"a2 OK" in got and b"+ " not in got, got
    s.close()


def test_literal_too_big_refused_without_reading(imap):
    s = socket.create_connection(("127.0.0.1", imap.imap_port), timeout=buzon.t(5))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a1 ID (\"name\" {999999999999}\r\n")
    line = f.readline()
    assert line.startswith(b"a1 NO [TOOBIG]") or line.startswith(b"a1 BAD"), line
    s.sendall(b"a2 NOOP\r\n")
    assert f.readline().startswith(b"a2 OK")
    s.close()


def test_logout_says_bye(imap):
    out = raw(imap.imap_port, b"a1 LOGOUT\r\n", read_until=b"a1 OK")
    assert out.startswith(b"* BYE") and b"a1 OK" in out, out
