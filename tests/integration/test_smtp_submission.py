"""Submission (issue 5, items 1, 2 and 8): port 587 (STARTTLS then AUTH)
and 465 (implicit TLS) with SASL PLAIN/LOGIN, sender ownership for MAIL
FROM and the header From:, and the hygiene of submitted mail (Message-ID
and Date added, Bcc removed, a Received header without the client's
address).  Port 25 keeps refusing AUTH."""

import base64
import re
import smtplib
import socket
import time

import pytest

import buzon
from buzon import expect, dot_stuff, client_tls_context, SMTPClient, t

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]
BOB = "bob@example.test"


@pytest.fixture
def sub(instance_nostart):
    """smtpd with smtp, submission and submissions listeners; aliases
    sales@ -> alice, team@ -> alice and bob, fwd@ -> outside."""
    inst = instance_nostart
    inst.add_submission_listeners()
    inst.mailadm("alias", "add", "sales@example.test", ALICE, check=True)
    inst.mailadm("alias", "add", "team@example.test", ALICE, check=True)
    inst.mailadm("alias", "add", "team@example.test", BOB, check=True)
    inst.start_smtpd()
    return inst


def plain(user, pw):
    return base64.b64encode(f"\0{user}\0{pw}".encode()).decode()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def c587(inst, tls=True):
    """A raw client on the submission port, greeted, EHLO'd (after
    STARTTLS when tls)."""
    c = SMTPClient(inst.submission_port)
    expect(c.greeting(), 220, after="connect")
    c.ehlo("[192.168.77.5]")
    if tls:
        c.starttls()
        c.ehlo("[192.168.77.5]")
    return c


def c465(inst):
    c = SMTPClient(inst.submissions_port, connect=False)
    raw = socket.create_connection(("127.0.0.1", inst.submissions_port), timeout=c.timeout)
    c.sock = client_tls_context().wrap_socket(raw, server_hostname=buzon.HOSTNAME)
    c.tls = True
    expect(c.greeting(), 220, after="TLS connect")
    c.ehlo("[192.168.77.5]")
    return c


def logged_in(inst, user=ALICE, pw=ALICE_PW):
    c = c587(inst)
    expect(c.cmd(f"AUTH PLAIN {plain(user, pw)}"), 235, "2.7.0", "AUTH PLAIN")
    return c


def message(sender, to, subject="hello", extra=(), msgid=True, date=True,
            body="Body line one.\n.leading dot\nlast line\n"):
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}"]
    if msgid:
        lines.append("Message-ID: <given.1@client.test>")
    if date:
        lines.append("Date: Mon, 2 Jun 2025 10:00:00 +0200")
    lines += list(extra)
    text = "\n".join(lines) + "\n\n" + body
    return text.encode().replace(b"\n", b"\r\n")


def send(c, mail_from, rcpts, msg):
    expect(c.cmd(f"MAIL FROM:<{mail_from}>"), 250, "2.1.0", f"MAIL FROM:<{mail_from}>")
    for r in rcpts:
        expect(c.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5", f"RCPT TO:<{r}>")
    expect(c.cmd("DATA"), 354, after="DATA")
    c.send(dot_stuff(msg))
    return c.read_reply(after="end of data")


def header_of(data):
    return data.split(b"\n\n", 1)[0].decode("utf-8", "replace")


# ---------------------------------------------------------------- EHLO / TLS


def test_587_offers_auth_only_after_starttls(sub):
    c = SMTPClient(sub.submission_port)
    expect(c.greeting(), 220, after="connect")
    kw = c.ehlo().keywords()
    assert "STARTTLS" in kw, f"EHLO on 587 before TLS lacks STARTTLS: {kw}"
    assert "AUTH" not in kw, f"EHLO on 587 before TLS offers AUTH: {kw}"
    c.starttls()
    kw = c.ehlo().keywords()
    assert kw.get("AUTH") == ["PLAIN", "LOGIN"], f"EHLO after STARTTLS: AUTH is {kw.get('AUTH')}"
    assert "STARTTLS" not in kw, f"EHLO after STARTTLS still offers STARTTLS: {kw}"
    c.quit()


def test_465_offers_auth_at_once(sub):
    c = c465(sub)
    kw = c.ehlo().keywords()
    assert kw.get("AUTH") == ["PLAIN", "LOGIN"], f"EHLO on 465: AUTH is {kw.get('AUTH')}"
    assert "STARTTLS" not in kw
    c.quit()


def test_auth_and_mail_before_tls_refused(sub):
    c = c587(sub, tls=False)
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}"), 530, "5.7.0", "AUTH before STARTTLS")
    expect(c.cmd("AUTH LOGIN"), 530, "5.7.0", "AUTH LOGIN before STARTTLS")
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0", "MAIL before STARTTLS")
    expect(c.cmd("NOOP"), 250, after="NOOP before STARTTLS")
    c.starttls()            # the session is still usable
    c.ehlo()
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}"), 235, "2.7.0", "AUTH after STARTTLS")
    c.quit()


def test_mail_before_auth_refused(sub):
    for c in (c587(sub), c465(sub)):
        r = expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 530, "5.7.0", "MAIL before AUTH")
        assert "Authentication required" in r.text, r
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 503, after="RCPT without MAIL")
        c.quit()


def test_port_25_still_refuses_auth(sub):
    c = sub.connect()
    assert "AUTH" not in c.ehlo().keywords()
    c.starttls()
    assert "AUTH" not in c.ehlo().keywords(), "port 25 offers AUTH after STARTTLS"
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}"), 503, "5.5.1", "AUTH on port 25")
    c.quit()


# ---------------------------------------------------------------- AUTH


def test_auth_plain_initial_response_and_challenge(sub):
    c = c587(sub)
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}"), 235, "2.7.0", "AUTH PLAIN with IR")
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}"), 503, "5.5.1", "a second AUTH")
    c.quit()
    c = c465(sub)
    r = c.cmd("AUTH PLAIN")
    assert r.code == 334, f"after AUTH PLAIN without IR the client saw '{r}', expected 334"
    expect(c.cmd(plain(ALICE, ALICE_PW)), 235, "2.7.0", "PLAIN response")
    c.quit()


def test_auth_login(sub):
    c = c587(sub)
    r = c.cmd("AUTH LOGIN")
    assert r.code == 334 and base64.b64decode(r.texts[0]).lower().startswith(b"user"), r
    r = c.cmd(b64(ALICE))
    assert r.code == 334 and base64.b64decode(r.texts[0]).lower().startswith(b"pass"), r
    expect(c.cmd(b64(ALICE_PW)), 235, "2.7.0", "LOGIN password")
    c.quit()


def test_smtplib_587_and_465(sub):
    with smtplib.SMTP("127.0.0.1", sub.submission_port, timeout=t(15)) as s:
        s.starttls(context=client_tls_context())
        s.login(ALICE, ALICE_PW)
        s.sendmail(ALICE, [BOB], message(ALICE, BOB, "via 587"))
    with smtplib.SMTP_SSL("127.0.0.1", sub.submissions_port, timeout=t(15),
                          context=client_tls_context()) as s:
        s.user, s.password = ALICE, ALICE_PW
        s.ehlo()
        s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        s.sendmail(ALICE, [BOB], message(ALICE, BOB, "via 465"))
    subjects = sorted(re.search(rb"Subject: (.*)", p.read_bytes()).group(1)
                      for p in sub.messages(BOB))
    assert subjects == [b"via 465", b"via 587"], subjects


def test_bad_credentials_cancel_and_bad_base64(sub):
    c = c587(sub)
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, 'wrong')}"), 535, "5.7.8", "wrong password")
    expect(c.cmd(f"AUTH PLAIN {plain('nobody@example.test', 'x')}"), 535, "5.7.8", "unknown user")
    r = c.cmd("AUTH PLAIN")
    assert r.code == 334, r
    expect(c.cmd("*"), 501, after="* to cancel")
    r = c.cmd("AUTH LOGIN")
    assert r.code == 334, r
    expect(c.cmd("!!!not base64!!!"), 501, after="bad base64")
    expect(c.cmd("AUTH PLAIN ***"), 501, after="bad base64 initial response")
    expect(c.cmd("AUTH CRAM-MD5"), 504, after="AUTH CRAM-MD5")
    # the session goes on and a good login works
    expect(c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}"), 235, "2.7.0", "AUTH PLAIN after failures")
    c.quit()


def test_failures_are_delayed_more_each_time(sub):
    c = c465(sub)
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        expect(c.cmd(f"AUTH PLAIN {plain(ALICE, 'wrong')}", timeout=t(30)), 535, "5.7.8", "wrong password")
        times.append(time.monotonic() - t0)
    assert times[1] >= 0.9 and times[2] >= 1.9, f"delays {times}"
    c.quit()


def test_lockout_after_many_failures(sub):
    """20 failures from one network in 15 minutes lock it out (the
    authfail defaults imapd and pop3d use): then even the right password
    is refused without a check."""
    clients = []
    try:
        for _ in range(20):
            c = c465(sub)
            c.send(f"AUTH PLAIN {plain(ALICE, 'wrong')}\r\n")
            clients.append(c)
        deadline = time.monotonic() + t(20)
        while True:
            c = c465(sub)
            r = c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", timeout=t(30))
            c.close()
            if r.code == 454 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        expect(r, 454, "4.7.0", "AUTH from a locked-out network")
    finally:
        for c in clients:
            c.close()


# ---------------------------------------------------------------- ownership


def test_send_as_self_lands_with_hygiene(sub):
    c = logged_in(sub)
    msg = message(ALICE, BOB, msgid=False, date=False,
                  extra=["Bcc: secret@example.test,", " other@example.test", "X-Keep: yes"])
    expect(send(c, ALICE, [BOB], msg), 250, "2.0.0", "end of data")
    c.quit()
    files = sub.messages(BOB)
    assert len(files) == 1, files
    data = files[0].read_bytes()
    hdr = header_of(data)
    assert re.search(r"^Message-ID: <[^<>@\s]+@mail\.example\.test>$", hdr, re.M), hdr
    assert re.search(r"^Date: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}$", hdr, re.M), hdr
    assert "Bcc" not in hdr and "secret@" not in hdr and "other@example" not in hdr, hdr
    assert "X-Keep: yes" in hdr
    received = re.search(r"^Received:.*?(?=^\S)", hdr, re.M | re.S).group(0)
    assert "Authenticated sender: alice@example.test" in received, received
    assert "127.0.0.1" not in received and "192.168.77.5" not in received, received
    assert "ESMTPSA" in received, received
    # the body is untouched
    assert data.endswith(b"\n\nBody line one.\n.leading dot\nlast line\n"), data[-80:]


def test_existing_message_id_and_date_kept(sub):
    c = logged_in(sub)
    expect(send(c, ALICE, [BOB], message(ALICE, BOB)), 250, after="end of data")
    c.quit()
    hdr = header_of(sub.messages(BOB)[0].read_bytes())
    assert hdr.count("Message-ID:") == 1 and "<given.1@client.test>" in hdr, hdr
    assert hdr.count("Date:") == 1 and "Mon, 2 Jun 2025" in hdr, hdr


@pytest.mark.parametrize("sender,hfrom", [
    ("sales@example.test", "Sales <sales@example.test>"),
    ("alice+news@example.test", '"Alice (news)" <alice+news@example.test>'),
    ("ALICE@example.test", "alice@EXAMPLE.test (Alice)"),
    ("team@example.test", '"bob@example.test" <team@example.test>'),
    ("sales+x@example.test", "sales+x@example.test"),
])
def test_send_as_owned_addresses(sub, sender, hfrom):
    c = logged_in(sub)
    expect(send(c, sender, [BOB], message(hfrom, BOB)), 250, after=f"message from {sender}")
    c.quit()
    files = sub.messages(BOB)
    assert len(files) == 1
    assert f"Return-Path: <{sender}>".encode() in files[0].read_bytes()


@pytest.mark.parametrize("sender", ["bob@example.test", "bob+x@example.test", "someone@other.test",
                                    "nobody@example.test"])
def test_forged_mail_from_refused_with_allowed_list(sub, sender):
    c = logged_in(sub)
    r = expect(c.cmd(f"MAIL FROM:<{sender}>"), 553, "5.7.1", f"MAIL FROM:<{sender}>")
    for a in (ALICE, "sales@example.test", "team@example.test"):
        assert a in r.text, f"refusal '{r}' does not list {a}"
    # the session goes on
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, after="MAIL FROM own address")
    c.quit()


def test_null_sender_refused(sub):
    c = logged_in(sub)
    expect(c.cmd("MAIL FROM:<>"), 553, "5.7.1", "MAIL FROM:<>")
    c.quit()


@pytest.mark.parametrize("hfrom", [
    "bob@example.test",
    "Alice <bob@example.test>",
    "alice@example.test <bob@example.test>",
    "alice@example.test, bob@example.test",
    "alice@example.test, sales@example.test",
    "friends: alice@example.test;",
    "",
])
def test_forged_header_from_refused_nothing_stored(sub, hfrom):
    c = logged_in(sub)
    msg = message(hfrom, BOB) if hfrom else message(ALICE, BOB).replace(b"From: alice@example.test\r\n", b"")
    r = send(c, ALICE, [BOB, "someone@remote.test"], msg)
    expect(r, 553, "5.7.1", f"end of data with From: {hfrom!r}")
    c.quit()
    assert sub.messages(BOB) == [], "a refused message was delivered"
    assert sub.queue_entries() == [], "a refused message was queued"


def test_two_from_fields_refused(sub):
    c = logged_in(sub)
    msg = message(ALICE, BOB, extra=["From: alice@example.test"])
    expect(send(c, ALICE, [BOB], msg), 553, "5.7.1", "two From: fields")
    c.quit()
    assert sub.messages(BOB) == []


def test_remote_recipient_queued(sub):
    c = logged_in(sub)
    r = send(c, ALICE, ["someone@remote.test", BOB], message(ALICE, "someone@remote.test",
                                                            extra=["Bcc: hidden@remote.test"]))
    expect(r, 250, after="end of data")
    c.quit()
    envs = sub.queue_entries()
    assert len(envs) == 1, envs
    env = envs[0].read_text()
    assert re.search(r"^sender alice@example\.test$", env, re.M), env
    assert re.search(r"^rcpt pending someone@remote\.test$", env, re.M), env
    assert "bob@" not in env, f"a local recipient was queued: {env}"
    msg = envs[0].with_suffix(".msg").read_bytes()
    assert b"Authenticated sender: alice@example.test" in msg and b"Bcc" not in msg, msg[:600]
    assert len(sub.messages(BOB)) == 1


def test_remote_recipient_still_refused_on_port_25(sub):
    c = sub.connect()
    expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, after="MAIL FROM")
    expect(c.cmd("RCPT TO:<someone@remote.test>"), 554, "5.7.1", "relay on port 25")
    c.quit()
