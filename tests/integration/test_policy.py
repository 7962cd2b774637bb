"""Inbound policy (issue 6): DNSBL, SPF, DKIM, DMARC and the
Authentication-Results header, as ONE receiving instance judges mail from
outside: B = mx.b.test (127.0.0.3:25) with [policy] spf, dkim_verify and
dmarc on and dnsbl = bl.test, inside the private network namespace of
outbound.py, whose DNS server serves tests/dns/*.zone (spf.test,
dmarc.test, dkim.test, bl.test, timeout.test ...: tests/dns/README.md).

Clients speak from distinct loopback addresses (the socket is bound
before connect):
    127.0.0.9    the host SPF allows for pass.spf.test and all of dmarc.test
    127.0.0.10   a host no SPF record allows
    127.0.0.2    instance A's address, allowed by a.test's SPF (nothing runs
                 there in this module: it is only a client address)
    127.0.0.66   listed on bl.test with a TXT reason; 127.0.0.67 listed
                 without one
    ::1          listed on bl.test; SPF-allowed for pass6.spf.test (B gets an
                 extra [::1]:25 listener in those tests)
DKIM signatures are made by python3-dkim (an independent signer) with
keys (RSA-2048, Ed25519) that openssl makes for this module, published
with net.append_zone.

Assertions are on what the client sees (reply codes, enhanced codes) and
what lands on disk (INBOX or .Junk, the Authentication-Results and
Received-SPF headers B added), never on log text.  B is a new instance
for every test (no cache survives from one test to the next), and the
zones are reset after each test (fresh_zones)."""

import base64
import email
import email.policy
import email.utils
import os
import re
import smtplib
import socket
import subprocess
from collections import namedtuple

import dkim
import pytest

import buzon
from buzon import SMTPClient, dot_stuff, t, wait_until
from outbound import fresh_zones, net  # noqa: F401 (fixtures)
from outbound import (B_HOST, B_NAME, BOB, BOB_PW, CAROL, finish, make_b, new_msgid,
                      reconfigure)

pytestmark = pytest.mark.usefixtures("net", "fresh_zones")

GOOD_IP = "127.0.0.9"           # allowed by the SPF of pass.spf.test and dmarc.test
BAD_IP = "127.0.0.10"           # allowed by no SPF record
A_IP = "127.0.0.2"              # allowed by a.test's SPF
LISTED_IP = "127.0.0.66"        # bl.test: listed, with a TXT reason
LISTED_NOTXT_IP = "127.0.0.67"  # bl.test: listed, no TXT
LISTED_TXT = "127.0.0.66 is listed: https://bl.test/query?ip=127.0.0.66"
HELO = "client.spf.test"        # resolves to 127.0.0.9
PASS_SENDER = "u@pass.spf.test"

POLICY = {"spf": "on", "dkim_verify": "on", "dmarc": "on", "spf_reject": "fail",
          "dnsbl": "bl.test", "dnsbl_reject": "rcpt"}

BODY = ("Line one.\n"
        ".a line that starts with a dot\n"
        "..and one with two\n"
        "trailing blanks   \n"
        "\ttab\tseparated\t\n"
        "\n"
        "last line\n")


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def b_nostart(net, tmp_path):
    """B with the module's [policy], not started (reconfigure() first)."""
    inst = make_b(tmp_path / "b", policy=dict(POLICY))
    yield inst
    finish(inst)


@pytest.fixture
def b(b_nostart):
    b_nostart.start_smtpd()
    return b_nostart


def start(inst, listen=None, **policy):
    """Merge policy into inst's [policy] (and add one more `listen = LISTEN`
    line to [smtpd]), then start smtpd."""
    reconfigure(inst, policy=policy)
    if listen:
        line = f"listen = {listen}\n"
        inst.conf_text = inst.conf_text.replace("[smtpd]\n", "[smtpd]\n" + line, 1)
        inst.conf.write_text(inst.conf_text)
    inst.start_smtpd(timeout=t(30))     # a DNSBL zone that times out delays the probe
    return inst


def ipv6_loopback():
    """::1 usable inside the namespace (lo is up; IPv6 may be disabled)."""
    def bindable():
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as so:
                so.bind(("::1", 0))
            return True
        except OSError:
            return False
    if not bindable():
        knob = "/proc/sys/net/ipv6/conf/lo/disable_ipv6"
        assert os.path.exists(knob), "the kernel has no IPv6: the IPv6 DNSBL test needs ::1"
        with open(knob, "w") as f:
            f.write("0\n")
        wait_until(bindable, t(5), what="::1 to be usable on lo")


Key = namedtuple("Key", "private public")


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    """An RSA-2048 key made by openssl: (PEM private key, base64 DER public key)."""
    d = tmp_path_factory.mktemp("dkimkey")
    pem = d / "key.pem"
    cp = subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(pem), "2048"],
                        capture_output=True, timeout=t(60))
    assert cp.returncode == 0, f"openssl genrsa failed: {cp.stderr!r}"
    cp = subprocess.run(["openssl", "rsa", "-in", str(pem), "-pubout", "-outform", "DER"],
                        capture_output=True, timeout=t(60))
    assert cp.returncode == 0 and cp.stdout, f"openssl rsa -pubout failed: {cp.stderr!r}"
    return Key(pem.read_bytes(), base64.b64encode(cp.stdout).decode())


@pytest.fixture(scope="module")
def ed25519_key(tmp_path_factory):
    """An Ed25519 key (RFC 8463) made by openssl: (base64 32-byte seed, as
    python3-dkim wants it; base64 32-byte public key, as the record holds it)."""
    d = tmp_path_factory.mktemp("ed25519key")
    pem = d / "key.pem"
    cp = subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(pem)],
                        capture_output=True, timeout=t(60))
    assert cp.returncode == 0, f"openssl genpkey ed25519 failed: {cp.stderr!r}"
    priv = subprocess.run(["openssl", "pkey", "-in", str(pem), "-outform", "DER"],
                          capture_output=True, timeout=t(60)).stdout
    pub = subprocess.run(["openssl", "pkey", "-in", str(pem), "-pubout", "-outform", "DER"],
                         capture_output=True, timeout=t(60)).stdout
    assert len(priv) >= 32 and len(pub) >= 32, (priv, pub)
    return Key(base64.b64encode(priv[-32:]), base64.b64encode(pub[-32:]).decode())


def publish_key(net, zone, name, key, k="rsa"):
    """name's TXT = the DKIM key record, in strings of at most 250 chars."""
    rec = f"v=DKIM1; k={k}; p={key.public}"
    strings = " ".join(f'"{rec[i:i + 250]}"' for i in range(0, len(rec), 250))
    net.append_zone(zone, f"{name}. IN TXT {strings}")
    r = net.dns_query(name, "TXT")
    assert r.rr and b"".join(r.rr[0].rdata.data).decode() == rec, \
        f"the DNS server does not serve the key published at {name}: {r}"


def dns_txt(net):
    """A dnsfunc for python3-dkim that asks our DNS server."""
    def txt(name, timeout=5):
        if isinstance(name, bytes):
            name = name.decode()
        rr = net.dns_query(name.rstrip("."), "TXT").rr
        return b"".join(rr[0].rdata.data) if rr else None
    return txt


SIGNED = [b"From", b"To", b"Subject", b"Date", b"Message-ID"]


def sign(msg, domain, selector, key, canon=(b"relaxed", b"relaxed"), algo=b"rsa-sha256"):
    """msg (CRLF bytes) with a DKIM-Signature of python3-dkim on top."""
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key.private,
                    canonicalize=canon, include_headers=SIGNED, signature_algorithm=algo)
    assert sig.startswith(b"DKIM-Signature:"), f"python3-dkim made {sig[:80]!r}"
    return sig + msg


# ---------------------------------------------------------------- messages


def make_msg(froms, subject, body=BODY, pre=(), to=BOB):
    """(msgid, CRLF bytes): header lines `pre` first, then one From: line
    per element of froms (none at all for []), To, Subject, ..."""
    msgid = new_msgid("pol")
    lines = list(pre) + [f"From: {f}" for f in froms] + [
        f"To: {to}", f"Subject: {subject}", f"Message-ID: {msgid}",
        f"Date: {email.utils.formatdate()}"]
    text = "\n".join(lines) + "\n\n" + body
    return msgid, text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


# ---------------------------------------------------------------- the client


class Tx:
    """The replies of one transaction (None: that step was not reached)."""

    def __init__(self, source):
        self.source = source
        self.greeting = self.ehlo = self.mail = self.data = self.final = None
        self.rcpt = []
        self.closed = None

    def __str__(self):
        parts = [f"from {self.source}"]
        for name in ("greeting", "ehlo", "mail"):
            r = getattr(self, name)
            if r is not None:
                parts.append(f"{name}: '{r.lines[0] if name == 'ehlo' else r}'")
        parts += [f"rcpt: '{r}'" for r in self.rcpt]
        for name in ("data", "final"):
            r = getattr(self, name)
            if r is not None:
                parts.append(f"{name}: '{r}'")
        return "; ".join(parts)


def session(source, helo=HELO):
    """A client on B's port 25 speaking from source; (client, Tx with the
    greeting and EHLO replies).  The caller closes the client."""
    c = SMTPClient(25, host=B_HOST, source=source, timeout=t(20))
    tx = Tx(source)
    tx.greeting = c.greeting()
    if tx.greeting.code == 220:
        tx.ehlo = c.ehlo(helo)
    else:
        tx.closed = c.closed_by_server(t(5))
    return c, tx


def mail_on(c, tx, sender, rcpts, message, final_timeout=None):
    """MAIL, each RCPT, and DATA when a recipient was accepted; fills tx."""
    tx.mail = c.cmd(f"MAIL FROM:<{sender}>")
    if tx.mail.code != 250:
        return tx
    for r in rcpts:
        tx.rcpt.append(c.cmd(f"RCPT TO:<{r}>"))
    if any(r.code == 250 for r in tx.rcpt):
        tx.data = c.cmd("DATA")
        if tx.data.code == 354:
            c.send(dot_stuff(message))
            tx.final = c.read_reply(timeout=final_timeout, after="end of data")
    else:
        reply = c.cmd("RSET")
        assert reply.code == 250, f"RSET after refused recipients: '{reply}' ({tx})"
    return tx


def transact(source, sender, rcpts, message, helo=HELO, final_timeout=None):
    """One whole session: connect from source, EHLO helo, one transaction, QUIT."""
    c, tx = session(source, helo)
    try:
        if tx.greeting.code == 220:
            mail_on(c, tx, sender, rcpts, message, final_timeout)
            c.quit()
    finally:
        c.close()
    return tx


def code_is(reply, code, enhanced):
    return reply is not None and reply.code == code and reply.enhanced == enhanced


def assert_accepted(tx, what=""):
    ok = (tx.greeting.code == 220 and code_is(tx.mail, 250, "2.1.0")
          and tx.rcpt and all(code_is(r, 250, "2.1.5") for r in tx.rcpt)
          and tx.data is not None and tx.data.code == 354
          and tx.final is not None and tx.final.code == 250)
    assert ok, f"{what}: expected the message to be accepted (220, 250 2.1.0, 250 2.1.5, " \
               f"354, 250), the client saw {tx}"


def assert_refused_after_data(tx, what=""):
    ok = (tx.greeting.code == 220 and code_is(tx.mail, 250, "2.1.0")
          and tx.rcpt and all(code_is(r, 250, "2.1.5") for r in tx.rcpt)
          and tx.data is not None and tx.data.code == 354
          and code_is(tx.final, 550, "5.7.1"))
    assert ok, f"{what}: expected RCPT accepted and '550 5.7.1' after the data, " \
               f"the client saw {tx}"


def assert_rcpts_refused(tx, rcpts, code, enhanced, what=""):
    ok = (tx.greeting.code == 220 and code_is(tx.mail, 250, "2.1.0")
          and len(tx.rcpt) == len(rcpts)
          and all(code_is(r, code, enhanced) for r in tx.rcpt) and tx.data is None)
    assert ok, f"{what}: expected every RCPT refused with {code} {enhanced}, " \
               f"the client saw {tx}"
    for rcpt, r in zip(rcpts, tx.rcpt):
        assert f"<{rcpt}>" in r.text, \
            f"{what}: the reply to RCPT TO:<{rcpt}> does not name the recipient: '{r}'"


# ---------------------------------------------------------------- the store


def unfold(v):
    return re.sub(r"\s+", " ", str(v)).strip()


def strip_comments(s):
    """s without RFC 5322 comments (nested parentheses, quoted pairs)."""
    out, depth, i = [], 0, 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s):
            if depth == 0:
                out.append(s[i:i + 2])
            i += 2
            continue
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return "".join(out)


Result = namedtuple("Result", "method result props")


class AuthResults:
    """One Authentication-Results field (RFC 8601), comments removed."""

    def __init__(self, value):
        self.raw = unfold(value)
        v = re.sub(r"\s*=\s*", "=", unfold(strip_comments(self.raw)))
        parts = [p.strip() for p in v.split(";")]
        head = parts[0].split()
        self.authserv_id = head[0].lower() if head else ""
        self.results = []
        for p in parts[1:]:
            toks = p.split()
            if not toks or "=" not in toks[0]:
                continue        # "none" (no result) or an empty part
            method, result = toks[0].split("=", 1)
            props = {}
            for tok in toks[1:]:
                if "=" in tok:
                    k, val = tok.split("=", 1)
                    props[k.lower()] = val.strip('"')
            self.results.append(Result(method.lower(), result.lower(), props))

    def all(self, method):
        return [r for r in self.results if r.method == method]

    def one(self, method):
        got = self.all(method)
        assert len(got) == 1, \
            f"expected one {method}= result in 'Authentication-Results: {self.raw}', " \
            f"found {len(got)}"
        return got[0]


class Stored:
    """A message file as B stored it."""

    def __init__(self, path):
        self.path = path
        self.data = path.read_bytes()
        self.msg = email.message_from_bytes(self.data, policy=email.policy.compat32)

    def headers(self, name):
        return [unfold(v) for v in self.msg.get_all(name, [])]

    def ours(self):
        """The Authentication-Results fields with our authserv-id."""
        return [a for a in map(AuthResults, self.headers("Authentication-Results"))
                if a.authserv_id == B_NAME]

    def ar(self):
        ours = self.ours()
        assert len(ours) == 1, \
            f"{self.path.name}: expected exactly one Authentication-Results with " \
            f"authserv-id {B_NAME}, found {len(ours)}: {self.headers('Authentication-Results')}" \
            f"\n{self.head()}"
        return ours[0]

    def received_spf(self):
        got = self.headers("Received-SPF")
        assert len(got) == 1, \
            f"{self.path.name}: expected one Received-SPF header, found {got}\n{self.head()}"
        return got[0]

    def head(self):
        return self.data.split(b"\n\n", 1)[0].decode("utf-8", "replace")


def folder_files(inst, address, folder):
    return inst.messages(address, folder=None if folder == "INBOX" else folder)


def stored(inst, address, msgid, folder="INBOX"):
    """The one copy of msgid in address's folder (INBOX or Junk), waiting a
    bounded time; asserts that the other folder has no copy."""
    needle = f"Message-ID: {msgid}".encode()

    def find(f):
        return [p for p in folder_files(inst, address, f) if needle in p.read_bytes()]
    got = wait_until(lambda: find(folder), t(10), interval=0.05,
                     what=f"{msgid} in {address}'s {folder} at {B_NAME}")
    assert len(got) == 1, f"{len(got)} copies of {msgid} in {address}'s {folder}: {got}"
    other = "Junk" if folder == "INBOX" else "INBOX"
    assert not find(other), f"{msgid} is also in {address}'s {other}: {find(other)}"
    if folder == "Junk":
        assert got[0].parent == inst.maildir(address) / ".Junk" / "new", \
            f"the quarantined copy is at {got[0]}, expected in the Maildir's .Junk/new"
    return Stored(got[0])


def assert_nothing_stored(inst, *addresses):
    for a in addresses:
        files = folder_files(inst, a, "INBOX") + folder_files(inst, a, "Junk")
        assert files == [], f"{a} at {B_NAME} holds messages that were refused: " \
                            f"{[str(p) for p in files]}"


def check_spf(s, result, sender, source):
    """Authentication-Results spf=result smtp.mailfrom=..., and the
    Received-SPF header with the result and the client address."""
    spf = s.ar().one("spf")
    assert spf.result == result, \
        f"Authentication-Results says spf={spf.result}, expected {result}: {s.ar().raw}"
    mf = spf.props.get("smtp.mailfrom", "").lower()
    assert mf in (sender.lower(), sender.split("@")[1].lower()), \
        f"spf smtp.mailfrom is {mf!r}, expected {sender!r} or its domain: {s.ar().raw}"
    rs = s.received_spf()
    assert rs.split()[0].lower() == result, \
        f"Received-SPF: {rs!r} does not start with the result {result!r}"
    assert f"client-ip={source}" in rs, f"Received-SPF: {rs!r} lacks client-ip={source}"
    assert sender in rs, f"Received-SPF: {rs!r} does not name the sender {sender}"


def check_dkim(s, expected):
    """expected: [(result or set of results, d, s)] in any order."""
    got = [(r.result, r.props.get("header.d", "").lower(), r.props.get("header.s", ""))
           for r in s.ar().all("dkim")]
    remaining = list(got)
    for res, d, sel in expected:
        ok = {res} if isinstance(res, str) else set(res)
        match = [g for g in remaining if g[0] in ok and g[1] == d and g[2] == sel]
        assert match, f"no dkim={'|'.join(sorted(ok))} header.d={d} header.s={sel} " \
                      f"in 'Authentication-Results: {s.ar().raw}'"
        remaining.remove(match[0])
    assert not remaining, f"unexpected dkim results {remaining} in {s.ar().raw}"


def check_dmarc(s, result, from_domain):
    d = s.ar().one("dmarc")
    assert d.result == result, \
        f"Authentication-Results says dmarc={d.result}, expected {result}: {s.ar().raw}"
    hf = d.props.get("header.from", "").lower()
    assert hf == from_domain, f"dmarc header.from={hf!r}, expected {from_domain!r}: {s.ar().raw}"


# ---------------------------------------------------------------- zones


def test_policy_zones_served(net):
    """The records the tests below rely on (a failure here is not smtpd's)."""
    def txt(name):
        return sorted(b"".join(x.rdata.data).decode() for x in net.dns_query(name, "TXT").rr)
    assert txt("pass.spf.test") == ["v=spf1 ip4:127.0.0.9 -all"]
    assert len(txt("permerror.spf.test")) == 2
    assert txt("_dmarc.reject.dmarc.test") == ["v=DMARC1; p=reject"]
    assert txt("_dmarc.dmarc.test") == ["v=DMARC1; p=none; sp=reject"]
    assert net.dns_query("_dmarc.sub.dmarc.test", "TXT").header.rcode == 3
    r = net.dns_query("66.0.0.127.bl.test", "A")
    assert [str(x.rdata) for x in r.rr] == ["127.0.0.2"], r
    assert txt("66.0.0.127.bl.test") == [LISTED_TXT]
    assert net.dns_query("9.0.0.127.bl.test", "A").header.rcode == 3


# ---------------------------------------------------------------- DNSBL


@pytest.mark.parametrize("source,reason", [(LISTED_IP, LISTED_TXT), (LISTED_NOTXT_IP, None)],
                         ids=["listed-with-txt", "listed-without-txt"])
def test_dnsbl_listed_refused_at_each_rcpt(b, source, reason):
    """dnsbl_reject = rcpt (the default): greeted, every RCPT gets 554 5.7.1
    naming the client, the zone and its TXT reason."""
    msgid, m = make_msg(["x@none.spf.test"], "listed")
    tx = transact(source, "x@none.spf.test", [BOB, CAROL], m)
    assert_rcpts_refused(tx, [BOB, CAROL], 554, "5.7.1", "a client listed on bl.test")
    for rcpt, r in zip([BOB, CAROL], tx.rcpt):
        want = f"5.7.1 <{rcpt}>: Service unavailable; client [{source}] blocked using bl.test"
        assert r.text.startswith(want), f"RCPT reply '{r}', expected it to start with '{want}'"
        if reason:
            assert reason in r.text, f"RCPT reply '{r}' lacks the zone's TXT {reason!r}"
    assert_nothing_stored(b, BOB, CAROL)


@pytest.mark.parametrize("source,reason", [(LISTED_IP, LISTED_TXT), (LISTED_NOTXT_IP, None)],
                         ids=["listed-with-txt", "listed-without-txt"])
def test_dnsbl_listed_refused_at_greeting(b_nostart, source, reason):
    start(b_nostart, dnsbl_reject="greeting")
    with SMTPClient(25, host=B_HOST, source=source, timeout=t(20)) as c:
        g = c.greeting()
        want = f"5.7.1 Service unavailable; client [{source}] blocked using bl.test"
        assert g.code == 554 and g.enhanced == "5.7.1" and g.text.startswith(want), \
            f"a client on {source} was greeted with '{g}', expected '554 {want}...'"
        if reason:
            assert f"; {reason}" in g.text, f"greeting '{g}' lacks the TXT {reason!r}"
        assert c.closed_by_server(t(5)), "the server did not close the connection after 554"
    assert_nothing_stored(b_nostart, BOB)


@pytest.mark.parametrize("mode", ["rcpt", "greeting"])
def test_dnsbl_unlisted_client_delivers(b_nostart, mode):
    start(b_nostart, dnsbl_reject=mode)
    msgid, m = make_msg([PASS_SENDER], "not listed")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, f"an unlisted client (dnsbl_reject = {mode})")
    stored(b_nostart, BOB, msgid)


def test_dnsbl_allowlisted_network_not_checked(b_nostart):
    start(b_nostart, dnsbl_reject="greeting",
          dnsbl_allow="192.0.2.0/24 2001:db8::/32 127.0.0.66/32")
    msgid, m = make_msg(["x@none.spf.test"], "allowlisted")
    tx = transact(LISTED_IP, "x@none.spf.test", [BOB], m)
    assert_accepted(tx, f"{LISTED_IP} is listed on bl.test but in dnsbl_allow")
    stored(b_nostart, BOB, msgid)
    # the allowlist is that network only: the neighbour is still refused
    with SMTPClient(25, host=B_HOST, source=LISTED_NOTXT_IP, timeout=t(20)) as c:
        g = c.greeting()
        assert g.code == 554 and g.enhanced == "5.7.1", \
            f"{LISTED_NOTXT_IP} (listed, not in dnsbl_allow) was greeted with '{g}'"


def test_dnsbl_zone_timing_out_does_not_block(b_nostart):
    """A DNSBL zone that never answers (timeout.test): the greeting comes
    (bounded) and the mail is delivered, even from a listed address."""
    start(b_nostart, dnsbl="timeout.test", dnsbl_reject="greeting")
    msgid, m = make_msg(["x@none.spf.test"], "dnsbl times out")
    tx = transact(LISTED_IP, "x@none.spf.test", [BOB], m)
    assert_accepted(tx, "the only DNSBL zone times out")
    stored(b_nostart, BOB, msgid)


def test_dnsbl_zone_timing_out_does_not_hide_other_zone(b_nostart):
    start(b_nostart, dnsbl="timeout.test bl.test", dnsbl_reject="greeting")
    with SMTPClient(25, host=B_HOST, source=LISTED_IP, timeout=t(30)) as c:
        g = c.greeting()
        assert g.code == 554 and g.enhanced == "5.7.1" and "blocked using bl.test" in g.text, \
            f"{LISTED_IP} (listed on bl.test, after timeout.test timed out) was greeted " \
            f"with '{g}', expected 554 5.7.1 ... blocked using bl.test"


def test_dnsbl_listed_ipv6_client(b_nostart):
    """An IPv6 client is looked up by its 32 reversed nibbles (RFC 5782 2.4)."""
    ipv6_loopback()
    start(b_nostart, listen="[::1]:25 smtp", dnsbl_reject="greeting")
    with SMTPClient(25, host="::1", timeout=t(20)) as c:
        g = c.greeting()
        want = "5.7.1 Service unavailable; client [::1] blocked using bl.test; ::1 is listed"
        assert g.code == 554 and g.enhanced == "5.7.1" and g.text.startswith(want), \
            f"a client on ::1 (listed on bl.test) was greeted with '{g}', expected '554 {want}'"


def test_dnsbl_alone_refused_at_rcpt(b_nostart):
    """dnsbl on its own (spf, dkim_verify, dmarc off), dnsbl_reject = rcpt:
    the listing is still enforced at RCPT."""
    start(b_nostart, spf="off", dkim_verify="off", dmarc="off")
    msgid, m = make_msg(["x@none.spf.test"], "listed, dnsbl only")
    tx = transact(LISTED_IP, "x@none.spf.test", [BOB], m)
    assert_rcpts_refused(tx, [BOB], 554, "5.7.1",
                         "a listed client, [policy] with only dnsbl on")
    assert_nothing_stored(b_nostart, BOB)


def test_dnsbl_authenticated_submission_exempt(b_nostart):
    """Submission (587, AUTH) from a listed address: no DNSBL, no policy headers."""
    start(b_nostart, dnsbl_reject="greeting")
    msgid, m = make_msg([BOB], "submitted from a listed address")
    s = smtplib.SMTP(B_HOST, b_nostart.submission_port, timeout=t(20),
                     source_address=(LISTED_IP, 0))
    try:
        s.ehlo("client.b.test")
        s.starttls(context=buzon.client_tls_context())
        s.ehlo("client.b.test")
        s.login(BOB, BOB_PW)
        assert s.sendmail(BOB, [BOB], m) == {}
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()
    st = stored(b_nostart, BOB, msgid)
    assert st.ours() == [] and st.headers("Received-SPF") == [], \
        f"an authenticated submission got policy headers:\n{st.head()}"


# ---------------------------------------------------------------- SPF


SPF_DELIVERED = [
    # id, client address, MAIL FROM, EHLO name, SPF result
    ("pass", GOOD_IP, PASS_SENDER, HELO, "pass"),
    ("pass-a.test-from-A", A_IP, "alice@a.test", "mail.a.test", "pass"),
    ("pass-helo-not-used", GOOD_IP, PASS_SENDER, "badhelo.spf.test", "pass"),
    ("softfail", GOOD_IP, "u@softfail.spf.test", HELO, "softfail"),
    ("neutral", GOOD_IP, "u@neutral.spf.test", HELO, "neutral"),
    ("none", GOOD_IP, "u@none.spf.test", HELO, "none"),
    ("permerror", GOOD_IP, "u@permerror.spf.test", HELO, "permerror"),
]


@pytest.mark.parametrize("source,sender,helo,result", [c[1:] for c in SPF_DELIVERED],
                         ids=[c[0] for c in SPF_DELIVERED])
def test_spf_result_delivered_and_recorded(b, source, sender, helo, result):
    msgid, m = make_msg([sender], f"spf {result}")
    tx = transact(source, sender, [BOB], m, helo=helo)
    assert_accepted(tx, f"SPF {result} for {sender} from {source}")
    s = stored(b, BOB, msgid)
    check_spf(s, result, sender, source)


SPF_FAIL = [
    ("fail-record", GOOD_IP, "u@fail.spf.test"),
    ("a.test-from-elsewhere", GOOD_IP, "alice@a.test"),
    ("pass-domain-from-other-host", BAD_IP, PASS_SENDER),
]


@pytest.mark.parametrize("source,sender", [c[1:] for c in SPF_FAIL], ids=[c[0] for c in SPF_FAIL])
def test_spf_fail_refused_at_each_rcpt(b, source, sender):
    """spf_reject = fail, and no DMARC record for the domain: 550 5.7.23."""
    msgid, m = make_msg([sender], "spf fail")
    tx = transact(source, sender, [BOB, CAROL], m)
    assert_rcpts_refused(tx, [BOB, CAROL], 550, "5.7.23", f"SPF fail for {sender} from {source}")
    assert_nothing_stored(b, BOB, CAROL)


def test_spf_ipv6_client(b_nostart):
    """A client on ::1 (allowlisted for the DNSBL, where ::1 is listed):
    ip6 mechanisms pass it, ip4-only records fail it."""
    ipv6_loopback()
    start(b_nostart, listen="[::1]:25 smtp", dnsbl_reject="greeting", dnsbl_allow="::1/128")

    def send(sender, rcpt):
        msgid, m = make_msg([sender], "over IPv6")
        c = SMTPClient(25, host="::1", timeout=t(20))
        tx = Tx("::1")
        try:
            tx.greeting = c.greeting()
            assert tx.greeting.code == 220, f"::1 (in dnsbl_allow) was greeted with '{tx.greeting}'"
            tx.ehlo = c.ehlo(HELO)
            mail_on(c, tx, sender, [rcpt], m)
            c.quit()
        finally:
            c.close()
        return msgid, tx
    msgid, tx = send("u@pass6.spf.test", BOB)
    assert_accepted(tx, "SPF ip6:::1 from ::1")
    check_spf(stored(b_nostart, BOB, msgid), "pass", "u@pass6.spf.test", "::1")
    _, tx = send(PASS_SENDER, CAROL)
    assert_rcpts_refused(tx, [CAROL], 550, "5.7.23", "an ip4-only SPF record, client ::1")


def test_spf_fail_delivered_when_spf_reject_never(b_nostart):
    start(b_nostart, spf_reject="never")
    msgid, m = make_msg(["u@fail.spf.test"], "spf fail, never rejected")
    tx = transact(GOOD_IP, "u@fail.spf.test", [BOB], m)
    assert_accepted(tx, "SPF fail with spf_reject = never")
    check_spf(stored(b_nostart, BOB, msgid), "fail", "u@fail.spf.test", GOOD_IP)


@pytest.mark.parametrize("sender", ["u@nowhere.timeout.test", "u@servfail.test"],
                         ids=["dns-timeout", "servfail"])
def test_spf_temperror_deferred_at_each_rcpt(b, sender):
    """The sender's domain is in timeout.test, whose server never answers
    (or in servfail.test: SERVFAIL)."""
    msgid, m = make_msg([sender], "spf temperror")
    tx = transact(GOOD_IP, sender, [BOB, CAROL], m)
    assert_rcpts_refused(tx, [BOB, CAROL], 451, "4.4.3", "SPF temperror (DNS timeout)")
    assert_nothing_stored(b, BOB, CAROL)


def test_spf_judged_per_transaction(b):
    """In one session: a failing sender is refused, then after RSET a
    passing one is accepted and recorded as pass."""
    c, tx = session(GOOD_IP)
    try:
        msgid, m = make_msg(["u@fail.spf.test"], "first")
        mail_on(c, tx, "u@fail.spf.test", [BOB], m)
        assert_rcpts_refused(tx, [BOB], 550, "5.7.23", "the first transaction (SPF fail)")
        msgid2, m2 = make_msg([PASS_SENDER], "second")
        tx2 = Tx(GOOD_IP)
        tx2.greeting = tx.greeting
        mail_on(c, tx2, PASS_SENDER, [BOB], m2)
        assert_accepted(tx2, "the second transaction (SPF pass) in the same session")
        c.quit()
    finally:
        c.close()
    check_spf(stored(b, BOB, msgid2), "pass", PASS_SENDER, GOOD_IP)


def test_spf_helo_identity_for_null_sender_pass(b):
    msgid, m = make_msg([f"MAILER-DAEMON@{HELO}"], "a bounce")
    tx = transact(GOOD_IP, "", [BOB], m, helo=HELO)
    assert_accepted(tx, "MAIL FROM:<> with a HELO name that SPF allows")
    s = stored(b, BOB, msgid)
    spf = s.ar().one("spf")
    assert spf.result == "pass", f"spf={spf.result} for the HELO identity: {s.ar().raw}"
    ident = spf.props.get("smtp.helo") or spf.props.get("smtp.mailfrom") or ""
    assert HELO in ident.lower(), \
        f"the spf result names neither smtp.helo={HELO} nor postmaster@{HELO}: {s.ar().raw}"
    rs = s.received_spf()
    assert rs.split()[0].lower() == "pass" and HELO in rs and f"client-ip={GOOD_IP}" in rs, \
        f"Received-SPF: {rs!r}"


def test_spf_helo_identity_for_null_sender_fail(b):
    msgid, m = make_msg(["MAILER-DAEMON@badhelo.spf.test"], "a bounce")
    tx = transact(GOOD_IP, "", [BOB], m, helo="badhelo.spf.test")
    assert_rcpts_refused(tx, [BOB], 550, "5.7.23", "MAIL FROM:<> with a HELO name SPF fails")
    assert_nothing_stored(b, BOB)


# ---------------------------------------------------------------- DKIM


CANONS = [(b"relaxed", b"relaxed"), (b"simple", b"simple"), (b"relaxed", b"simple")]


@pytest.mark.parametrize("canon", CANONS, ids=[f"{h.decode()}-{b_.decode()}" for h, b_ in CANONS])
def test_dkim_pass(net, b, dkim_key, canon):
    publish_key(net, "dkim.test", "sel1._domainkey.dkim.test", dkim_key)
    msgid, m = make_msg(["Dee <dee@dkim.test>"], "dkim pass")
    signed = sign(m, "dkim.test", "sel1", dkim_key, canon)
    assert dkim.verify(signed, dnsfunc=dns_txt(net)), \
        "python3-dkim does not verify its own signature against our DNS server"
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed)
    assert_accepted(tx, "a message signed by python3-dkim")
    s = stored(b, BOB, msgid)
    check_dkim(s, [("pass", "dkim.test", "sel1")])
    check_dmarc(s, "none", "dkim.test")     # dkim.test publishes no DMARC record
    check_spf(s, "pass", PASS_SENDER, GOOD_IP)


def test_dkim_pass_ed25519(net, b, ed25519_key):
    """RFC 8463 Ed25519-SHA256 signatures verify too."""
    publish_key(net, "dkim.test", "ed._domainkey.dkim.test", ed25519_key, k="ed25519")
    msgid, m = make_msg(["dee@dkim.test"], "ed25519")
    signed = sign(m, "dkim.test", "ed", ed25519_key, algo=b"ed25519-sha256")
    assert dkim.verify(signed, dnsfunc=dns_txt(net)), \
        "python3-dkim does not verify its own ed25519 signature against our DNS server"
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed)
    assert_accepted(tx, "a message with an ed25519 signature")
    check_dkim(stored(b, BOB, msgid), [("pass", "dkim.test", "ed")])


def test_dkim_pass_large_message(net, b, dkim_key):
    """A body larger than smtpd keeps in memory (it goes to a temp file)."""
    publish_key(net, "dkim.test", "sel1._domainkey.dkim.test", dkim_key)
    body = "".join(f"{i:06d} " + "x" * 70 + ("  \n" if i % 7 else "\n") for i in range(8000))
    msgid, m = make_msg(["dee@dkim.test"], "large and signed", body=body)
    assert len(m) > 600 * 1024
    signed = sign(m, "dkim.test", "sel1", dkim_key, (b"simple", b"simple"))
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed)
    assert_accepted(tx, f"a signed message of {len(signed)} bytes")
    check_dkim(stored(b, BOB, msgid), [("pass", "dkim.test", "sel1")])


@pytest.mark.parametrize("what", ["body", "header"])
def test_dkim_fail_tampered(net, b, dkim_key, what):
    publish_key(net, "dkim.test", "sel1._domainkey.dkim.test", dkim_key)
    msgid, m = make_msg(["dee@dkim.test"], "dkim tamper")
    signed = sign(m, "dkim.test", "sel1", dkim_key)
    if what == "body":
        bad = signed.replace(b"Line one.", b"Line 1ne.")
    else:       # Subject is a signed header field
        bad = signed.replace(b"Subject: dkim tamper", b"Subject: dkim tampered")
    assert bad != signed
    assert not dkim.verify(bad, dnsfunc=dns_txt(net)), "python3-dkim verifies the tampered copy"
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], bad)
    assert_accepted(tx, f"a signed message with a tampered {what}")
    check_dkim(stored(b, BOB, msgid), [("fail", "dkim.test", "sel1")])


def test_dkim_none_unsigned(b):
    msgid, m = make_msg(["dee@dkim.test"], "unsigned")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, "an unsigned message")
    s = stored(b, BOB, msgid)
    got = [r.result for r in s.ar().all("dkim")]
    assert got == ["none"], f"expected dkim=none for an unsigned message: {s.ar().raw}"


# RFC 6376 6.1.2: no key record -> PERMFAIL (no key for signature); RFC 8601
# calls that permerror (some verifiers write neutral).  Never pass or fail.
NO_KEY = {"permerror", "neutral"}


def test_dkim_unknown_key(net, b, dkim_key):
    publish_key(net, "dkim.test", "sel1._domainkey.dkim.test", dkim_key)
    msgid, m = make_msg(["dee@dkim.test"], "signed with an unpublished selector")
    signed = sign(m, "dkim.test", "gone", dkim_key)
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed)
    assert_accepted(tx, "a signature whose key is not in DNS")
    check_dkim(stored(b, BOB, msgid), [(NO_KEY, "dkim.test", "gone")])


def test_dkim_every_signature_judged(net, b, dkim_key):
    publish_key(net, "dkim.test", "sel1._domainkey.dkim.test", dkim_key)
    msgid, m = make_msg(["dee@dkim.test"], "two signatures")
    signed = sign(sign(m, "dkim.test", "sel1", dkim_key), "dkim.test", "gone", dkim_key)
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed)
    assert_accepted(tx, "a message with two signatures")
    check_dkim(stored(b, BOB, msgid), [("pass", "dkim.test", "sel1"),
                                       (NO_KEY, "dkim.test", "gone")])


def test_dkim_key_lookup_timeout_temperror(b, dkim_key):
    """d=timeout.test: the key query is never answered -> temperror, delivered."""
    msgid, m = make_msg(["dee@dkim.test"], "key lookup times out")
    signed = sign(m, "timeout.test", "sel1", dkim_key)
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed, final_timeout=t(60))
    assert_accepted(tx, "a signature whose key lookup times out")
    check_dkim(stored(b, BOB, msgid), [("temperror", "timeout.test", "sel1")])


# ---------------------------------------------------------------- DMARC


@pytest.mark.parametrize("sender", ["u@reject.dmarc.test", "bounce@dmarc.test"],
                         ids=["strict-alignment", "relaxed-alignment"])
def test_dmarc_pass_via_spf_only(b, sender):
    """From reject.dmarc.test (p=reject), unsigned, SPF pass for an aligned
    MAIL FROM (the same domain, or its organisational domain)."""
    msgid, m = make_msg(["u@reject.dmarc.test"], "dmarc pass by spf")
    tx = transact(GOOD_IP, sender, [BOB], m)
    assert_accepted(tx, f"DMARC pass through SPF ({sender})")
    s = stored(b, BOB, msgid)
    check_spf(s, "pass", sender, GOOD_IP)
    assert [r.result for r in s.ar().all("dkim")] == ["none"], s.ar().raw
    check_dmarc(s, "pass", "reject.dmarc.test")


@pytest.mark.parametrize("from_domain,d", [("reject.dmarc.test", "reject.dmarc.test"),
                                           ("sub.dmarc.test", "dmarc.test")],
                         ids=["strict-alignment", "relaxed-alignment"])
def test_dmarc_pass_via_dkim_only(net, b, dkim_key, from_domain, d):
    """SPF passes for an unaligned MAIL FROM; the aligned DKIM signature
    passes (d= the From domain, or its organisational domain)."""
    publish_key(net, "dmarc.test", f"sel1._domainkey.{d}", dkim_key)
    msgid, m = make_msg([f"u@{from_domain}"], "dmarc pass by dkim")
    signed = sign(m, d, "sel1", dkim_key)
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], signed)
    assert_accepted(tx, f"DMARC pass through DKIM only (d={d}, From {from_domain})")
    s = stored(b, BOB, msgid)
    check_spf(s, "pass", PASS_SENDER, GOOD_IP)
    check_dkim(s, [("pass", d, "sel1")])
    check_dmarc(s, "pass", from_domain)


def test_dmarc_unaligned_dkim_pass_does_not_count(net, b, dkim_key):
    """A passing signature of another domain (d=dkim.test) and an SPF pass
    for another domain: DMARC fails for reject.dmarc.test."""
    publish_key(net, "dkim.test", "sel1._domainkey.dkim.test", dkim_key)
    msgid, m = make_msg(["ceo@reject.dmarc.test"], "unaligned signature")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], sign(m, "dkim.test", "sel1", dkim_key))
    assert_refused_after_data(tx, "p=reject, DKIM pass for d=dkim.test only")
    assert_nothing_stored(b, BOB)


def test_spf_fail_left_to_dmarc_dkim_pass_delivers(net, b, dkim_key):
    """SPF fails, but the domain publishes DMARC: RCPT is accepted and the
    passing aligned signature carries the message."""
    publish_key(net, "dmarc.test", "sel1._domainkey.reject.dmarc.test", dkim_key)
    sender = "u@reject.dmarc.test"
    msgid, m = make_msg([sender], "spf fail, dkim pass")
    tx = transact(BAD_IP, sender, [BOB], sign(m, "reject.dmarc.test", "sel1", dkim_key))
    assert_accepted(tx, "SPF fail, DMARC published, DKIM pass")
    s = stored(b, BOB, msgid)
    check_spf(s, "fail", sender, BAD_IP)
    check_dkim(s, [("pass", "reject.dmarc.test", "sel1")])
    check_dmarc(s, "pass", "reject.dmarc.test")


def test_spf_fail_left_to_dmarc_reject(b):
    """SPF fails, the domain publishes p=reject, nothing else passes: RCPT
    is accepted, DMARC refuses after DATA."""
    sender = "u@reject.dmarc.test"
    msgid, m = make_msg([sender], "spf fail, no dkim")
    tx = transact(BAD_IP, sender, [BOB], m)
    assert_refused_after_data(tx, "SPF fail under p=reject without DKIM")
    assert_nothing_stored(b, BOB)


@pytest.mark.parametrize("from_domain", ["reject.dmarc.test", "sub.dmarc.test"],
                         ids=["p=reject", "sp=reject"])
def test_dmarc_fail_reject(b, from_domain):
    """SPF passes for an unaligned MAIL FROM, no signature: DMARC fails;
    reject (sub.dmarc.test has no record: its organisational domain's sp=)."""
    msgid, m = make_msg([f"ceo@{from_domain}"], "dmarc reject")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB, CAROL], m)
    assert_refused_after_data(tx, f"DMARC fail for {from_domain}")
    assert_nothing_stored(b, BOB, CAROL)


def test_dmarc_fail_quarantine_goes_to_junk(b):
    msgid, m = make_msg(["ceo@quarantine.dmarc.test"], "dmarc quarantine")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB, CAROL], m)
    assert_accepted(tx, "DMARC fail under p=quarantine")
    for rcpt in (BOB, CAROL):
        s = stored(b, rcpt, msgid, folder="Junk")
        check_dmarc(s, "fail", "quarantine.dmarc.test")


FROM_FORMS = [
    ("quoted-comma", '"Doe, John" <ceo@quarantine.dmarc.test>'),
    ("comment", "ceo@quarantine.dmarc.test (The CEO)"),
    ("encoded-word", "=?utf-8?q?Jos=C3=A9?= <ceo@quarantine.dmarc.test>"),
    ("upper-case", "CEO <CEO@QUARANTINE.DMARC.TEST>"),
    ("folded", "The CEO\r\n <ceo@quarantine.dmarc.test>"),
]


@pytest.mark.parametrize("author", [f[1] for f in FROM_FORMS], ids=[f[0] for f in FROM_FORMS])
def test_dmarc_from_forms(b, author):
    """One author in the usual RFC 5322 forms: judged (quarantine -> Junk),
    not refused as zero or several authors."""
    msgid, m = make_msg([author], "from forms")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, f"From: {author!r} (p=quarantine)")
    check_dmarc(stored(b, BOB, msgid, folder="Junk"), "fail", "quarantine.dmarc.test")


@pytest.mark.parametrize("from_domain", ["none.dmarc.test", "dmarc.test", "pct0.dmarc.test"],
                         ids=["p=none", "org-domain-p=none-not-sp", "p=quarantine-pct=0"])
def test_dmarc_fail_delivered_to_inbox(b, from_domain):
    msgid, m = make_msg([f"ceo@{from_domain}"], "dmarc fail, delivered")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, f"DMARC fail for {from_domain}, nothing to enforce")
    check_dmarc(stored(b, BOB, msgid), "fail", from_domain)


def test_dmarc_fail_reject_pct0_quarantined(b):
    """p=reject; pct=0: the reject is never applied; RFC 7489 6.6.4: the
    next policy down, quarantine, applies instead (Junk)."""
    msgid, m = make_msg(["ceo@pct0r.dmarc.test"], "dmarc reject pct=0")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, "DMARC fail under p=reject; pct=0")
    check_dmarc(stored(b, BOB, msgid, folder="Junk"), "fail", "pct0r.dmarc.test")


# ---------------------------------------------------------------- From count


FROMS = [
    ("zero", []),
    ("two", ["a@dkim.test", "b@dkim.test"]),
    ("two-identical", ["a@dkim.test", "a@dkim.test"]),
    ("one-field-two-addresses", ["a@dkim.test, b@dkim.test"]),
]


@pytest.mark.parametrize("froms", [f[1] for f in FROMS], ids=[f[0] for f in FROMS])
def test_from_count_refused(b, froms):
    """DMARC cannot judge a message without exactly one author: 550 5.7.1
    after DATA, nothing stored; the session goes on (a good message next)."""
    msgid, m = make_msg(froms, "from count")
    c, tx = session(GOOD_IP)
    try:
        mail_on(c, tx, PASS_SENDER, [BOB], m)
        assert_refused_after_data(tx, f"From fields {froms}")
        msgid2, m2 = make_msg(["dee@dkim.test"], "one From, same session")
        tx2 = Tx(GOOD_IP)
        tx2.greeting = tx.greeting
        mail_on(c, tx2, PASS_SENDER, [BOB], m2)
        assert_accepted(tx2, "a good message after a refused one in the same session")
        c.quit()
    finally:
        c.close()
    s = stored(b, BOB, msgid2)
    check_spf(s, "pass", PASS_SENDER, GOOD_IP)
    assert len(folder_files(b, BOB, "INBOX") + folder_files(b, BOB, "Junk")) == 1, \
        "the refused message was stored too"


# ---------------------------------------------------------------- Authentication-Results


FORGED = [
    f"Authentication-Results: {B_NAME}; spf=pass smtp.mailfrom=ceo@bank.test;"
    " dkim=pass header.d=bank.test header.s=s1; dmarc=pass header.from=bank.test",
    "Authentication-Results: MX.B.TEST;\r\n\tdkim=pass (good signature)\r\n"
    "\theader.d=bank.test header.s=s2",
    f"Authentication-Results:{B_NAME}; dmarc=pass header.from=bank.test",
    f"Authentication-Results: {B_NAME} 1; spf=pass smtp.mailfrom=bank.test",
]
FOREIGN = [
    "Authentication-Results: mx.other.test; spf=pass smtp.mailfrom=someone@other.test",
    f"Authentication-Results: {B_NAME}.other.test; dkim=pass header.d=other.test",
]


def test_forged_auth_results_removed_foreign_kept(b):
    msgid, m = make_msg(["dee@dkim.test"], "forged AR", pre=FORGED[:2] + FOREIGN + FORGED[2:])
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, "a message carrying Authentication-Results fields")
    s = stored(b, BOB, msgid)
    ar = s.ar()                                   # exactly one is ours: B's own
    assert b"bank.test" not in s.data, \
        f"a forged Authentication-Results claiming {B_NAME} survived:\n{s.head()}"
    assert ar.one("spf").result == "pass" and \
        [r.result for r in ar.all("dkim")] == ["none"] and ar.one("dmarc").result == "none", \
        f"B's Authentication-Results does not report the real results: {ar.raw}"
    have = s.headers("Authentication-Results")
    for f in FOREIGN:
        want = unfold(f.split(":", 1)[1])
        assert have.count(want) == 1, \
            f"the foreign field {want!r} was not kept (once, as sent): {have}"
    assert len(have) == 1 + len(FOREIGN), f"Authentication-Results fields stored: {have}"


FORGED_ODD = [
    ("comment-before-id", f"Authentication-Results: (checked) {B_NAME}; dkim=pass header.d=bank.test"),
    ("id-on-continuation-line", f"Authentication-Results:\r\n\t{B_NAME};\r\n\tdkim=pass header.d=bank.test"),
    ("lower-case-field-name", f"authentication-results: {B_NAME}; dkim=pass header.d=bank.test"),
]


@pytest.mark.parametrize("forged", [f[1] for f in FORGED_ODD], ids=[f[0] for f in FORGED_ODD])
def test_forged_auth_results_odd_forms_removed(b, forged):
    """RFC 8601 2.2 / RFC 5322: CFWS may precede the authserv-id, a field
    may be folded anywhere whitespace is, field names are case-insensitive."""
    msgid, m = make_msg(["dee@dkim.test"], "forged AR, odd form", pre=[forged])
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, "a message carrying a forged Authentication-Results")
    s = stored(b, BOB, msgid)
    assert b"bank.test" not in s.data, \
        f"a forged Authentication-Results claiming {B_NAME} survived:\n{s.head()}"
    s.ar()


# ---------------------------------------------------------------- the session around the checks


PIPELINED = [
    # id, MAIL FROM, expected RCPT code and enhanced code
    ("pass", PASS_SENDER, 250, "2.1.5"),
    ("fail", "u@fail.spf.test", 550, "5.7.23"),
    ("temperror", "u@nowhere.timeout.test", 451, "4.4.3"),
]


@pytest.mark.parametrize("sender,code,enhanced", [p[1:] for p in PIPELINED],
                         ids=[p[0] for p in PIPELINED])
def test_pipelined_commands_wait_for_spf(b, sender, code, enhanced):
    """PIPELINING (RFC 2920): MAIL, RCPT, RCPT, DATA in one write while the
    SPF check runs; the replies come in order and RCPT sees the verdict."""
    c, tx = session(GOOD_IP)
    try:
        assert "PIPELINING" in tx.ehlo.keywords(), f"EHLO reply: {tx.ehlo}"
        c.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{BOB}>\r\nRCPT TO:<{CAROL}>\r\nDATA\r\n")
        replies = [c.read_reply(after=f"pipelined MAIL/RCPT/RCPT/DATA ({sender})")
                   for _ in range(4)]
        shown = " / ".join(map(str, replies))
        assert code_is(replies[0], 250, "2.1.0"), f"MAIL got '{replies[0]}' ({shown})"
        for r in replies[1:3]:
            assert code_is(r, code, enhanced), \
                f"a pipelined RCPT got '{r}', expected {code} {enhanced} ({shown})"
        if code == 250:
            assert replies[3].code == 354, f"DATA got '{replies[3]}' ({shown})"
            msgid, m = make_msg([sender], "pipelined")
            c.send(dot_stuff(m) + b"QUIT\r\n")
            end = c.read_reply(after="end of data, QUIT pipelined")
            assert end.code == 250, f"end of data got '{end}'"
            assert c.read_reply(after="QUIT").code == 221
            for rcpt in (BOB, CAROL):
                check_spf(stored(b, rcpt, msgid), "pass", sender, GOOD_IP)
        else:
            assert str(replies[3].code)[0] in "45", \
                f"DATA after every RCPT was refused got '{replies[3]}' ({shown})"
            c.quit()
            assert_nothing_stored(b, BOB, CAROL)
    finally:
        c.close()


def test_header_only_message(b):
    """A message without a blank line (all header) is judged like any other."""
    msgid = new_msgid("hdr")
    m = (f"From: dee@dkim.test\r\nTo: {BOB}\r\nSubject: header only\r\n"
         f"Message-ID: {msgid}\r\n").encode()
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m)
    assert_accepted(tx, "a message that is all header")
    s = stored(b, BOB, msgid)
    check_spf(s, "pass", PASS_SENDER, GOOD_IP)
    check_dmarc(s, "none", "dkim.test")


def test_clients_leaving_while_checks_run(b_nostart, dkim_key):
    """Clients that go away while a DNSBL, SPF or DKIM lookup is pending
    (timeout.test never answers): smtpd carries on and serves the next
    client (and exits 0 at the end, checked by the fixture)."""
    start(b_nostart, dnsbl="timeout.test bl.test")
    # 1. gone before the greeting (the DNSBL lookup of timeout.test)
    c = SMTPClient(25, host=B_HOST, source=LISTED_NOTXT_IP, timeout=t(20))
    c.close()
    # 2. gone during the SPF check of MAIL FROM
    c, tx = session(GOOD_IP)
    c.send("MAIL FROM:<u@nowhere.timeout.test>\r\n")
    c.close()
    # 3. gone during the DKIM key lookup at the end of DATA
    c, tx = session(GOOD_IP)
    _, m = make_msg(["dee@dkim.test"], "gone")
    for cmd in (f"MAIL FROM:<{PASS_SENDER}>", f"RCPT TO:<{BOB}>", "DATA"):
        assert c.cmd(cmd).code in (250, 354)
    c.send(dot_stuff(sign(m, "timeout.test", "sel1", dkim_key)))
    c.close()
    # the next client is served as usual
    msgid, m = make_msg([PASS_SENDER], "after the leavers")
    tx = transact(GOOD_IP, PASS_SENDER, [BOB], m, final_timeout=t(60))
    assert_accepted(tx, "a client after others left during the checks")
    assert b_nostart.proc.poll() is None, "smtpd exited"
    check_spf(stored(b_nostart, BOB, msgid), "pass", PASS_SENDER, GOOD_IP)
