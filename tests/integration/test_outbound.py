"""Sending mail (the outbound queue runner of smtpd): two Buzón instances,
A = mail.a.test (127.0.0.2) and B = mx.b.test (127.0.0.3), in a private
network namespace with our own DNS server (see outbound.py, netns.py,
tests/dns/).  Mail for remote domains submitted at A is queued in
queue_dir and delivered by MX lookup through the system resolver (or via
[smtpd] relayhost), DKIM-signed; failures come back as DSNs to the
sender; `mailadm queue list|flush|del` see and steer the queue.

Everything is asserted on what a client sees and what lands on disk."""

import base64
import re
import socket
import time

import dkim
import pytest

import buzon
from buzon import SMTPClient, expect, t, dot_stuff
from outbound import a, a_nostart, b, b_nostart, fresh_zones, net  # noqa: F401 (fixtures)
from outbound import (A_HOST, A_NAME, B_HOST, B_NAME, ALICE, ALICE_PW, X_A, BOB,
                      CAROL, DAVE, ERIN, flush, message, new_msgid, parse, queue_list, reconfigure, send_25,
                      submit, wait_dsn, wait_for, wait_queue_empty)

pytestmark = pytest.mark.usefixtures("net", "fresh_zones")


def header(d, name):
    """An unfolded header of a Delivered message (the original part)."""
    m = parse(d.data)
    v = m.get(name)
    return None if v is None else re.sub(r"\s+", " ", str(v)).strip()


def b_received(d):
    """B's own Received header (the first one, right after Delivered-To)."""
    return d.received or ""


# ---------------------------------------------------------------- (a) infrastructure


def test_dns_server_answers_inside_namespace(net):
    ai = socket.getaddrinfo("mail.a.test", 25, socket.AF_INET, socket.SOCK_STREAM)
    assert {x[4][0] for x in ai} == {A_HOST}, f"mail.a.test resolves to {ai}"
    ai = socket.getaddrinfo("mx.b.test", 25, socket.AF_INET, socket.SOCK_STREAM)
    assert {x[4][0] for x in ai} == {B_HOST}, f"mx.b.test resolves to {ai}"
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("nothere.a.test", 25, socket.AF_INET)

    r = net.dns_query("a.test", "MX")
    assert r.header.aa == 1 and r.header.rcode == 0, r
    assert [(x.rdata.preference, str(x.rdata.label)) for x in r.rr] == [(10, "mail.a.test.")], r
    r = net.dns_query("c.test", "MX")
    assert sorted((x.rdata.preference, str(x.rdata.label)) for x in r.rr) == \
        [(10, "mx1.c.test."), (20, "mx2.c.test.")], r
    r = net.dns_query("nullmx.test", "MX")
    assert [(x.rdata.preference, str(x.rdata.label)) for x in r.rr] == [(0, ".")], r
    r = net.dns_query("d.test", "MX")
    assert r.header.rcode == 0 and r.rr == [], f"d.test MX should be NODATA: {r}"
    r = net.dns_query("b.test", "TXT")
    assert [b"".join(x.rdata.data) for x in r.rr] == [b"v=spf1 ip4:127.0.0.3 -all"], r
    r = net.dns_query("nothere.b.test", "A")
    assert r.header.rcode == 3 and r.header.aa == 1, f"expected NXDOMAIN: {r}"
    r = net.dns_query("example.com", "A")
    assert r.header.rcode == 5, f"expected REFUSED outside our zones: {r}"
    r = net.dns_query("3.0.0.127.in-addr.arpa", "PTR")
    assert [str(x.rdata) for x in r.rr] == ["mx.b.test."], r
    # zone-driven failures for temperror tests
    r = net.dns_query("servfail.test", "TXT")
    assert r.header.rcode == 2, f"expected SERVFAIL: {r}"
    with pytest.raises(socket.timeout):
        net.dns_query("x.timeout.test", "TXT", timeout=1)


def test_dns_server_serves_appended_multistring_txt(net):
    assert net.dns_query("sel._domainkey.b.test", "TXT").header.rcode == 3, \
        "a record appended by another test is still served (fresh_zones)"
    p1, p2 = "A" * 200, "B" * 150
    net.append_zone("b.test", f'sel._domainkey.b.test. IN TXT "v=DKIM1; k=rsa; p={p1}" "{p2}"')
    r = net.dns_query("sel._domainkey.b.test", "TXT")
    assert len(r.rr) == 1, f"expected one TXT RR: {r}"
    assert r.rr[0].rdata.data == [f"v=DKIM1; k=rsa; p={p1}".encode(), p2.encode()], r
    # an empty non-terminal exists (NODATA), a name below it does not
    r = net.dns_query("_domainkey.b.test", "TXT")
    assert r.header.rcode == 0 and r.rr == [], r
    r = net.dns_query("other._domainkey.b.test", "TXT")
    assert r.header.rcode == 3, r


def test_two_instances_start_and_deliver_locally(a, b):
    for inst, name in ((a, A_NAME), (b, B_NAME)):
        with SMTPClient(25, host=inst.host) as c:
            g = expect(c.greeting(), 220, after=f"connect to {inst.host}:25")
            assert name in g.text, f"{inst.host}:25 greets '{g}', expected {name}"
            c.quit()
    msgid, msg = message(ALICE, ALICE, "local at A")
    assert submit(a, [ALICE], msg) == {}
    d = wait_for(a, ALICE, msgid=msgid)[0]
    assert d.return_path == f"<{ALICE}>" and f"by {A_NAME}" in (d.received or ""), \
        f"trace headers at A: {d.data[:400]!r}"


# ---------------------------------------------------------------- (b) MX delivery


@pytest.mark.parametrize("implicit_tls", [False, True], ids=["587-starttls", "465-tls"])
def test_submitted_mail_reaches_remote_mx(a, b, implicit_tls):
    msgid, msg = message(ALICE, BOB, "to B via MX")
    assert submit(a, [BOB], msg, implicit_tls=implicit_tls) == {}
    d = wait_for(b, BOB, msgid=msgid)[0]
    d.check_trace(ALICE, BOB, hostname=B_NAME)
    rec = b_received(d)
    assert f"from {A_NAME}" in rec, f"B's Received header {rec!r}: A did not EHLO as {A_NAME}"
    assert f"[{A_HOST}]" in rec, \
        f"B's Received header {rec!r}: A did not connect from outbound_ip {A_HOST}"
    assert b"Subject: to B via MX" in d.data
    wait_queue_empty(a)
    assert queue_list(a) == []


def test_outbound_uses_starttls(a, b):
    msgid, msg = message(ALICE, BOB, "over TLS")
    submit(a, [BOB], msg)
    rec = b_received(wait_for(b, BOB, msgid=msgid)[0])
    assert "with ESMTPS" in rec and "using TLS" in rec, \
        f"B's Received header {rec!r}: A did not use STARTTLS offered by B"


def test_mx_preference_and_fallback(a, b):
    """c.test: MX 10 -> 127.0.0.4 (nothing listens), MX 20 -> B."""
    msgid, msg = message(ALICE, CAROL, "fallback")
    submit(a, [CAROL], msg)
    wait_for(b, CAROL, msgid=msgid)
    wait_queue_empty(a)


def test_no_mx_falls_back_to_address(a, b):
    """d.test has no MX, only A 127.0.0.3 (RFC 5321 5.1 implicit MX)."""
    msgid, msg = message(ALICE, DAVE, "implicit mx")
    submit(a, [DAVE], msg)
    wait_for(b, DAVE, msgid=msgid)
    wait_queue_empty(a)


def test_local_and_remote_recipients_in_one_message(a, b):
    msgid, msg = message(ALICE, f"{BOB}, {X_A}, {CAROL}", "mixed")
    assert submit(a, [BOB, X_A, CAROL], msg) == {}
    wait_for(a, X_A, msgid=msgid)
    wait_for(b, BOB, msgid=msgid)
    wait_for(b, CAROL, msgid=msgid)
    wait_queue_empty(a)
    time.sleep(0.5)
    assert len(b.find(BOB, msgid)) == 1 and len(b.find(CAROL, msgid)) == 1 \
        and len(a.find(X_A, msgid)) == 1, "a recipient got more than one copy"


# ---------------------------------------------------------------- (c) DKIM


def dkim_record(stdout, name):
    """The zone-file record for `name` in mailadm's output: its line, and
    the following lines up to the closing parenthesis when it opens one."""
    lines = stdout.splitlines()
    for i, ln in enumerate(lines):
        if ln.startswith(name):
            out = [ln]
            depth = ln.count("(") - ln.count(")")
            j = i + 1
            while depth > 0 and j < len(lines):
                out.append(lines[j])
                depth += lines[j].count("(") - lines[j].count(")")
                j += 1
            return "\n".join(out)
    return None


def keygen(inst, domain="a.test", selector="s1"):
    cp = inst.mailadm("dkim", "keygen", domain, "--selector", selector, check=True)
    rec = dkim_record(cp.stdout, f"{selector}._domainkey.{domain}.")
    assert rec, (f"`mailadm dkim keygen {domain} --selector {selector}` printed no line "
                 f"starting with '{selector}._domainkey.{domain}.': {cp.stdout!r}")
    assert "TXT" in rec and "v=DKIM1" in rec and "p=" in rec, f"odd DKIM record: {rec!r}"
    return rec


def test_dkim_keygen_and_dns_print_the_record(a_nostart):
    rec = keygen(a_nostart)
    cp = a_nostart.mailadm("dns", "a.test", check=True)
    again = dkim_record(cp.stdout, "s1._domainkey.a.test.")
    assert again == rec, f"`mailadm dns a.test` prints {again!r}, keygen printed {rec!r}"


def test_dkim_signed_and_verifiable_at_b(net, a_nostart, b_nostart):
    a = a_nostart
    b = b_nostart
    # B judges mail from outside: its own DKIM verification must pass too
    reconfigure(b, policy={"spf": "on", "dkim_verify": "on", "dmarc": "on"})
    b.start_smtpd()
    net.append_zone("a.test", keygen(a))
    r = net.dns_query("s1._domainkey.a.test", "TXT")
    assert r.rr and b"".join(r.rr[0].rdata.data).startswith(b"v=DKIM1"), \
        f"the DNS server does not serve the appended key: {r}"
    a.start_smtpd()
    msgid, msg = message(ALICE, BOB, "signed", body="Line one.\n\nLine three.  \n")
    submit(a, [BOB], msg)
    d = wait_for(b, BOB, msgid=msgid)[0]
    sig = header(d, "DKIM-Signature")
    assert sig, f"the message at B has no DKIM-Signature:\n{d.data[:1500].decode()}"
    tags = dict(kv.strip().split("=", 1) for kv in sig.split(";") if "=" in kv)
    assert tags.get("d") == "a.test" and tags.get("s") == "s1", f"DKIM-Signature: {sig}"

    def txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        rr = net.dns_query(name.rstrip("."), "TXT").rr
        return b"".join(rr[0].rdata.data) if rr else None

    crlf = d.data.replace(b"\n", b"\r\n")
    assert dkim.verify(crlf, dnsfunc=txt), \
        f"python3-dkim does not verify the message as B stored it:\n{d.data[:2000].decode()}"
    ar = " ".join(header(d, "Authentication-Results").split())
    assert ar.startswith("mx.b.test;"), f"B's Authentication-Results: {ar!r}"
    assert "dkim=pass header.d=a.test header.s=s1" in ar, \
        f"B did not verify A's signature: Authentication-Results: {ar!r}"
    assert "spf=pass" in ar, f"Authentication-Results: {ar!r}"


# ---------------------------------------------------------------- (d) queue, retry, flush


def test_remote_down_stays_queued_then_flush_delivers(a, b):
    b.stop_smtpd()
    msgid, msg = message(ALICE, BOB, "while B is down")
    submit(a, [BOB], msg)

    def failed_once():
        q = queue_list(a)
        return q if q and q[0].get("attempts", 0) >= 1 and q[0].get("last_error") else None
    q = buzon.wait_until(failed_once, t(20), interval=0.2,
                         what="the queue entry to show a failed attempt with last_error")
    assert len(q) == 1, q
    e = q[0]
    for k in ("id", "created", "age", "sender", "recipients", "attempts", "next_try",
              "last_error"):
        assert k in e, f"queue list entry lacks {k!r}: {e}"
    assert e["sender"] == ALICE, e
    assert [(r["address"], r["status"]) for r in e["recipients"]] == [(BOB, "pending")], e
    assert e["next_try"] > time.time() - 5, e
    assert (a.queue_dir / f"{e['id']}.msg").is_file() and \
        (a.queue_dir / f"{e['id']}.env").is_file(), f"queue files of {e['id']} are missing"
    assert b.messages(BOB) == []

    b.start_smtpd()
    flush(a)
    wait_for(b, BOB, msgid=msgid, timeout=t(15))
    wait_queue_empty(a, t(10))
    assert queue_list(a) == []


def test_flush_requested_before_start_is_honoured(a, b):
    """A flush asked for while smtpd is stopped (or starting, before its
    runner watches queue_dir: `systemctl restart; mailadm queue flush`) is
    not lost: the runner retries the entry when it starts, not at its
    next_try."""
    b.stop_smtpd()
    msgid, msg = message(ALICE, BOB, "flush after restart")
    submit(a, [BOB], msg)
    buzon.wait_until(lambda: [e for e in queue_list(a) if e["attempts"] >= 1], t(15),
                     what="a first failed attempt")
    assert queue_list(a)[0]["next_try"] > time.time() + 10, \
        f"the retry is due too soon for this test to tell: {queue_list(a)}"
    assert a.stop_smtpd() == 0
    b.start_smtpd()
    flush(a)
    a.start_smtpd()
    wait_for(b, BOB, msgid=msgid, timeout=t(10))
    wait_queue_empty(a, t(10))


def test_queue_del_drops_the_message(a, b):
    b.stop_smtpd()
    msgid, msg = message(ALICE, BOB, "to be deleted")
    submit(a, [BOB], msg)
    q = buzon.wait_until(lambda: queue_list(a), t(10), what="a queue entry")
    qid = q[0]["id"]
    cp = a.mailadm("queue", "del", qid, check=True)
    assert queue_list(a) == [], f"after `mailadm queue del {qid}` ({cp.stdout.strip()})"
    assert not (a.queue_dir / f"{qid}.msg").exists() and \
        not (a.queue_dir / f"{qid}.env").exists()
    cp = a.mailadm("queue", "del", qid)
    assert cp.returncode == 1 and cp.stderr.strip(), \
        f"deleting {qid} twice: exit {cp.returncode}, stderr {cp.stderr!r}"
    b.start_smtpd()
    flush(a)
    time.sleep(t(2))
    assert b.find(BOB, msgid) == [], "a deleted queue entry was delivered"


def test_queue_lifetime_bounces(a_nostart, b):
    a = a_nostart
    b.stop_smtpd()
    reconfigure(a, smtpd={"queue_lifetime": "3s"})
    a.start_smtpd()
    msgid, msg = message(ALICE, BOB, "expires")
    submit(a, [BOB], msg)
    buzon.wait_until(lambda: [e for e in queue_list(a) if e["attempts"] >= 1], t(15),
                     what="a first failed attempt")
    time.sleep(3.5)
    flush(a)
    dsn = wait_dsn(a, ALICE)
    dsn.check()
    rb = dsn.recipient(BOB)
    assert rb is not None, f"the DSN has no Final-Recipient {BOB}: {dsn.per_recipient}"
    assert rb.get("action", "").lower() == "failed", rb
    assert re.match(r"^[45]\.\d+\.\d+", rb.get("status", "")), rb
    wait_queue_empty(a)


# ---------------------------------------------------------------- (e) (f) bounces


def test_unknown_remote_user_bounces_with_dsn(a, b):
    msgid, msg = message(ALICE, "nobody@b.test", "to nobody")
    submit(a, ["nobody@b.test"], msg)
    dsn = wait_dsn(a, ALICE)
    dsn.check()
    rb = dsn.recipient("nobody@b.test")
    assert rb is not None, f"no Final-Recipient nobody@b.test in {dsn.per_recipient}"
    assert rb.get("action", "").lower() == "failed", rb
    assert re.match(r"^5\.\d+\.\d+$", rb.get("status", "").strip()), rb
    diag = rb.get("diagnostic-code", "")
    assert diag.lower().startswith("smtp;") and "550" in diag, \
        f"Diagnostic-Code {diag!r} does not carry B's 550 answer"
    mta = rb.get("remote-mta", "")
    assert B_NAME in mta or B_HOST in mta, f"Remote-MTA {mta!r} does not name B"
    assert dsn.returned and msgid.encode() in dsn.returned, \
        "the DSN does not return the original message (or its headers)"
    assert msgid.encode() in dsn.delivered.data
    d = dsn.delivered
    assert d.delivered_to and d.delivered_to.strip("<>").lower() == ALICE, d.delivered_to
    wait_queue_empty(a)
    assert b.messages(BOB) == []


def test_null_mx_bounces_at_once(a, b):
    msgid, msg = message(ALICE, "x@nullmx.test", "to a null MX")
    t0 = time.monotonic()
    submit(a, ["x@nullmx.test"], msg)
    dsn = wait_dsn(a, ALICE, timeout=t(10))
    dsn.check()
    rb = dsn.recipient("x@nullmx.test")
    assert rb is not None, f"no Final-Recipient x@nullmx.test in {dsn.per_recipient}"
    assert rb.get("action", "").lower() == "failed", rb
    assert rb.get("status", "").strip() == "5.1.10", \
        f"Status {rb.get('status')!r}, expected 5.1.10 (RFC 7505 null MX)"
    assert time.monotonic() - t0 < t(10)
    wait_queue_empty(a)
    # nullmx.test also has an A record (B): it must not have been used
    assert not (b.mail_dir / "nullmx.test").exists()


# ---------------------------------------------------------------- (g) relayhost


@pytest.mark.parametrize("how", ["password", "password_file"])
def test_relayhost_with_auth(tmp_path, a_nostart, b_nostart, how):
    """A relays everything through B's submission port, authenticated as a
    B account that owns the sender address (alice@a.test on B too).
    erin@e.test is in no DNS zone: only the relayhost can reach it."""
    a, b = a_nostart, b_nostart
    b.mailadm("domain", "add", "a.test", check=True)
    b.add_user(ALICE, "alice-at-b-pw")
    b.start_smtpd()
    # B's certificate is self-signed: the admin has to say so
    sm = {"relayhost": f"{B_HOST}:{b.submission_port}", "relayhost_user": ALICE,
          "relayhost_tls_verify": "off"}
    if how == "password":
        sm["relayhost_password"] = "alice-at-b-pw"
    else:
        pf = tmp_path / "relay.pw"
        pf.write_text("alice-at-b-pw\n")
        pf.chmod(0o600)
        sm["relayhost_password_file"] = str(pf)
    reconfigure(a, smtpd=sm)
    a.start_smtpd()
    msgid, msg = message(ALICE, ERIN, "via the smarthost")
    submit(a, [ERIN], msg)
    d = wait_for(b, ERIN, msgid=msgid)[0]
    rec = b_received(d)
    assert f"Authenticated sender: {ALICE}" in rec and "ESMTPSA" in rec, \
        f"B's Received header {rec!r}: A did not authenticate to the relayhost"
    wait_queue_empty(a)


def test_relayhost_password_never_goes_to_an_unverified_server(a_nostart, b_nostart):
    """relayhost_tls_verify is on by default: B's self-signed certificate
    does not verify, so A sends neither the password nor the mail."""
    a, b = a_nostart, b_nostart
    b.mailadm("domain", "add", "a.test", check=True)
    b.add_user(ALICE, "alice-at-b-pw")
    b.start_smtpd()
    reconfigure(a, smtpd={"relayhost": f"{B_HOST}:{b.submission_port}",
                          "relayhost_user": ALICE,
                          "relayhost_password": "alice-at-b-pw"})
    a.start_smtpd()
    msgid, msg = message(ALICE, ERIN, "must wait")

    submit(a, [ERIN], msg)

    def failed_once():
        q = queue_list(a)
        return q if q and q[0].get("attempts", 0) >= 1 else None
    q = buzon.wait_until(failed_once, t(20), interval=0.2,
                         what="a failed attempt in A's queue")
    assert "certificate" in q[0]["last_error"], q[0]
    assert [r["status"] for r in q[0]["recipients"]] == ["pending"], q[0]
    assert b.messages(ERIN) == [], "B got the mail from an unverified TLS session"


def test_relayhost_without_auth_to_port_25(a_nostart, b):
    a = a_nostart
    reconfigure(a, smtpd={"relayhost": f"{B_HOST}:25"})
    a.start_smtpd()
    msgid, msg = message(ALICE, ERIN, "via B port 25")
    submit(a, [ERIN], msg)
    d = wait_for(b, ERIN, msgid=msgid)[0]
    assert f"[{A_HOST}]" in b_received(d), b_received(d)
    wait_queue_empty(a)


# ---------------------------------------------------------------- (h) SRS


def test_redirection_rewrites_sender_with_srs_and_bounce_comes_back(a, b):
    """B redirects fwd@b.test to alice@a.test; a message from x@a.test that
    reaches B on port 25 leaves B with an SRS0 envelope sender in b.test.
    A bounce to that address at B is reversed to x@a.test; a forged SRS
    address is refused at RCPT."""
    b.mailadm("alias", "add", "fwd@b.test", ALICE, check=True)
    msgid, msg = message(X_A, "fwd@b.test", "to be forwarded")
    expect(send_25(b, X_A, ["fwd@b.test"], msg), 250, after="end of data at B")
    d = wait_for(a, ALICE, msgid=msgid)[0]
    rp = (d.return_path or "").strip("<>")
    assert re.match(r"(?i)^SRS0[=+-].+@b\.test$", rp), \
        f"the redirected message arrived at A with Return-Path {d.return_path!r}, " \
        "expected <SRS0=...@b.test>"
    assert "a.test" in rp.lower() and "=x@" in rp.lower(), \
        f"SRS address {rp!r} does not carry the original sender x@a.test"
    wait_queue_empty(b)

    # a bounce to the SRS address goes back to the original sender
    bid, bounce = message("MAILER-DAEMON@a.test", rp, "Undelivered Mail Returned to Sender",
                          body="Your message could not be delivered.\n")
    with b.connect() as c:
        expect(c.cmd("MAIL FROM:<>"), 250, after="MAIL FROM:<>")
        expect(c.cmd(f"RCPT TO:<{rp}>"), 250, after=f"RCPT TO:<{rp}>")
        expect(c.cmd("DATA"), 354, after="DATA")
        c.send(dot_stuff(bounce))
        expect(c.read_reply(after="end of data"), 250, after="end of data")
        c.quit()
    back = wait_for(a, X_A, msgid=bid)[0]
    assert back.return_path == "<>", f"the reversed bounce has Return-Path {back.return_path!r}"

    # a forged SRS address (one hash character changed) is refused
    m = re.match(r"(?i)^(SRS0[=+-])([^=]+)(=.*)$", rp)
    assert m, rp
    h = m.group(2)
    forged_hash = ("B" if h[0].upper() != "B" else "C") + h[1:]
    forged = m.group(1) + forged_hash + m.group(3)
    with b.connect() as c:
        expect(c.cmd("MAIL FROM:<>"), 250, after="MAIL FROM:<>")
        r = c.cmd(f"RCPT TO:<{forged}>")
        assert 500 <= r.code < 600, f"RCPT TO:<{forged}> (forged SRS hash) got '{r}', expected 5xx"
        c.quit()


# ---------------------------------------------------------------- (i) crash safety


def test_kill9_during_deliveries_loses_nothing(a_nostart, b):
    a = a_nostart
    reconfigure(a, smtpd={"outbound_connections": "2"})
    a.start_smtpd()
    b.stop_smtpd()
    n = 20
    ids = []
    for i in range(n):
        msgid = new_msgid(f"crash{i}")
        _, msg = message(ALICE, BOB, f"crash test {i}", msgid=msgid,
                         body="x" * 60 + "\n" * 1 + ("filler line\n" * 2000))
        submit(a, [BOB], msg)
        ids.append(msgid)
    buzon.wait_until(lambda: len(queue_list(a)) == n, t(20), what=f"{n} queue entries")
    b.start_smtpd()
    flush(a)
    wait_for(b, BOB, n=1, timeout=t(20), what="the first message at B after the flush")
    a.kill9()
    arrived_at_kill = len(b.messages(BOB))
    a.start_smtpd()
    # a flush the new runner may not watch for yet is the business of
    # test_flush_requested_before_start_is_honoured: here, ask until empty
    deadline = time.monotonic() + t(60)
    while a.queue_entries() and time.monotonic() < deadline:
        flush(a)
        time.sleep(1)
    wait_queue_empty(a, t(1))
    counts = {m: len(b.find(BOB, m)) for m in ids}
    lost = [m for m, c in counts.items() if c == 0]
    assert not lost, f"{len(lost)} messages lost after kill -9 of A " \
        f"({arrived_at_kill} had arrived at the kill): {lost}"
    dups = {m: c for m, c in counts.items() if c > 1}
    # at most the deliveries in flight at the kill (outbound_connections = 2)
    # may arrive twice; exactly once is the goal
    assert sum(c - 1 for c in dups.values()) <= 2, f"duplicates at B: {dups}"


# ---------------------------------------------------------------- (j) submission rules


def test_forged_sender_refused_at_submission(a):
    with SMTPClient(a.submission_port, host=a.host) as c:
        expect(c.greeting(), 220, after="connect")
        kw = c.ehlo().keywords()
        if "AUTH" in kw:
            raise AssertionError(f"submission port offers AUTH before STARTTLS: {kw}")
        r = c.cmd("AUTH PLAIN " + _plain(ALICE, ALICE_PW))
        assert r.code in (530, 503, 538), f"AUTH before TLS got '{r}', expected 530"
        c.starttls()
        c.ehlo()
        expect(c.cmd("AUTH PLAIN " + _plain(ALICE, ALICE_PW)), 235, after="AUTH PLAIN")
        expect(c.cmd(f"MAIL FROM:<{BOB}>"), 553, "5.7.1", f"MAIL FROM:<{BOB}>")
        expect(c.cmd(f"MAIL FROM:<{ALICE}>"), 250, after="MAIL FROM own address")
        expect(c.cmd(f"RCPT TO:<{BOB}>"), 250, after="RCPT TO remote")
        expect(c.cmd("DATA"), 354, after="DATA")
        _, msg = message(BOB, BOB, "forged header From")
        c.send(dot_stuff(msg))
        expect(c.read_reply(after="end of data"), 553, "5.7.1", "end of data, From: bob@b.test")
        c.quit()
    assert a.queue_entries() == [], "a refused message was queued"


def _plain(user, pw):
    return base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
