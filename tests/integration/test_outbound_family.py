"""IPv4 or IPv6 out: `[smtpd] outbound_ip_family = any | ipv4 | ipv6`
chooses which addresses of an MX host the queue runner connects to, and
`outbound_ip` / `outbound_ip6` the source address it binds for an IPv4 /
IPv6 connection (README "IPv4 or IPv6 out").

Inside the private network namespace of netns.py (fixtures of
outbound.py): A = mail.a.test (127.0.0.2, outbound_ip = 127.0.0.2) sends
to B = mx.b.test, which here also listens on [::1]:25.  In the namespace,
lo carries ::1 and, added by this module, fd00:a::2 (a second IPv6 source
address, so that outbound_ip6 is observable: the kernel would pick ::1 on
its own).  Zones (tests/dns):

    f.test        MX mx.f.test: A 127.0.0.3 and AAAA ::1 (B both ways)
    mixed.f.test  MX 10 mx4.f.test (A 127.0.0.3 only), MX 20 mx.f.test
    g.test        MX mx.g.test: A 127.0.0.3 only
    h.test        MX mx.h.test: AAAA ::1 only

Which way a message went is read from B's Received header
("from mail.a.test ([127.0.0.2])" or "([IPv6:...])"); a message that has
no route stays in A's queue (`mailadm --json queue list`)."""

import errno
import os
import socket
import struct
import time

import pytest

import buzon
from buzon import SMTPClient, expect, t
from outbound import a_nostart, fresh_zones, net  # noqa: F401 (fixtures)
from outbound import (A_HOST, A_NAME, ALICE, B_NAME, finish, flush, make_b, message, queue_list,
                      reconfigure, submit, wait_for, wait_queue_empty)

pytestmark = pytest.mark.usefixtures("net", "fresh_zones")

B_HOST6 = "::1"
A_SRC6 = "fd00:a::2"        # added to lo inside the namespace (ipv6_lo)
FAY, GUS, HAL, MAX = "fay@f.test", "gus@g.test", "hal@h.test", "max@mixed.f.test"
B_FAMILY_USERS = {"f.test": {FAY: "fay-f-secret-pw"}, "mixed.f.test": {MAX: "max-m-secret-pw"},
                  "g.test": {GUS: "gus-g-secret-pw"}, "h.test": {HAL: "hal-h-secret-pw"}}

V4_FROM = f"from {A_NAME} ([{A_HOST}])"


def v6_from(addr):
    return f"from {A_NAME} ([IPv6:{addr}])"


# ---------------------------------------------------------------- IPv6 on lo


def _bindable6(addr):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.bind((addr, 0))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _add_lo_address6(addr):
    """`ip -6 addr add ADDR/128 dev lo nodad`, by rtnetlink (RTM_NEWADDR),
    in the network namespace of this process.  An address already there
    is fine."""
    RTM_NEWADDR, NLMSG_ERROR = 20, 2
    NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
    IFA_ADDRESS, IFA_LOCAL, IFA_F_NODAD = 1, 2, 0x02
    raw = socket.inet_pton(socket.AF_INET6, addr)
    body = struct.pack("=BBBBI", socket.AF_INET6, 128, IFA_F_NODAD, 0,
                       socket.if_nametoindex("lo"))
    for typ in (IFA_LOCAL, IFA_ADDRESS):
        body += struct.pack("=HH", 4 + len(raw), typ) + raw
    seq = 1
    hdr = struct.pack("=IHHII", 16 + len(body), RTM_NEWADDR,
                      NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE, seq, 0)
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        s.settimeout(t(5))
        s.bind((0, 0))
        s.send(hdr + body)
        resp = s.recv(65536)
    finally:
        s.close()
    _, typ, _, rseq, _ = struct.unpack_from("=IHHII", resp)
    assert typ == NLMSG_ERROR and rseq == seq, f"odd rtnetlink answer to RTM_NEWADDR: {resp!r}"
    err = -struct.unpack_from("=i", resp, 16)[0]
    if err not in (0, errno.EEXIST):
        raise AssertionError(f"cannot add {addr}/128 to lo in the private namespace: "
                             f"{os.strerror(err)}")


@pytest.fixture(scope="module")
def ipv6_lo(net):
    """::1 usable on lo inside the namespace (lo is up: the kernel gives it
    ::1 unless IPv6 is disabled there), plus A_SRC6.  Only this module's
    namespace is touched: /proc/sys/net and rtnetlink act on the network
    namespace of the process, which is the private one."""
    if not _bindable6(B_HOST6):
        knob = "/proc/sys/net/ipv6/conf/lo/disable_ipv6"
        if not os.path.exists(knob):
            raise AssertionError("the kernel has no IPv6 (no /proc/sys/net/ipv6): "
                                 "the outbound_ip_family tests need ::1 on lo")
        with open(knob, "w") as f:
            f.write("0\n")
        buzon.wait_until(lambda: _bindable6(B_HOST6), t(5),
                         what="::1 to be usable on lo after disable_ipv6 = 0")
    _add_lo_address6(A_SRC6)
    buzon.wait_until(lambda: _bindable6(A_SRC6), t(5),
                     what=f"{A_SRC6} to be usable on lo")
    return net


# ---------------------------------------------------------------- instances


def add_smtp_listener(inst, spec):
    """One more `listen = SPEC` line in inst's [smtpd] section (the
    Instance config allows several).  reconfigure() rewrites the file and
    drops it: call this after the last reconfigure, before start_smtpd."""
    line = f"listen = {spec}\n"
    if line not in inst.conf_text:
        inst.conf_text = inst.conf_text.replace("[smtpd]\n", "[smtpd]\n" + line, 1)
        inst.conf.write_text(inst.conf_text)


@pytest.fixture
def b6(ipv6_lo, tmp_path):
    """B (outbound.py's make_b) with the domains of this module and an
    extra smtp listener on [::1]:25; started."""
    inst = make_b(tmp_path / "b")
    for dom, users in B_FAMILY_USERS.items():
        inst.mailadm("domain", "add", dom, check=True)
        for addr, pw in users.items():
            inst.add_user(addr, pw)
    add_smtp_listener(inst, f"[{B_HOST6}]:25 smtp")
    inst.start_smtpd()
    try:
        with SMTPClient(25, host=B_HOST6) as c:
            g = expect(c.greeting(), 220, after=f"connect to [{B_HOST6}]:25")
            assert B_NAME in g.text, f"[{B_HOST6}]:25 greets '{g}', expected {B_NAME}"
            c.quit()
    except BaseException:
        finish(inst)
        raise
    yield inst
    finish(inst)


def start_a(a, family, outbound_ip6=None):
    """A with outbound_ip_family = family (and outbound_ip6 when given;
    outbound_ip stays 127.0.0.2), started."""
    reconfigure(a, smtpd={"outbound_ip_family": family, "outbound_ip6": outbound_ip6})
    a.start_smtpd()
    return a


def received_from(d):
    """The 'from HELO ([address])' part of B's own Received header."""
    rec = d.received or ""
    assert rec.startswith("Received: from "), \
        f"B's Received header does not name the client: {rec!r}\n{d.data[:600]!r}"
    return rec[len("Received: "):rec.index(")") + 1]


def send_and_receive(a, b, rcpt, subject):
    msgid, msg = message(ALICE, rcpt, subject)
    assert submit(a, [rcpt], msg) == {}
    d = wait_for(b, rcpt, msgid=msgid)[0]
    d.check_trace(ALICE, rcpt, hostname=B_NAME)
    wait_queue_empty(a)
    return d


def wait_failed_attempts(a, b, rcpt, n=1):
    """A's single queue entry once it shows at least n failed attempts
    (fails at once if the message reached rcpt at B instead)."""
    def failed():
        if b.messages(rcpt):
            raise AssertionError(f"the message was delivered to {rcpt} at B; A's queue: "
                                 f"{queue_list(a)}; B's Received header: "
                                 f"{b.delivered(rcpt)[0].received!r}")
        q = queue_list(a)
        return q if len(q) == 1 and q[0].get("attempts", 0) >= n and q[0].get("last_error") \
            else None
    try:
        return buzon.wait_until(failed, t(20), interval=0.2,
                                what=f"one queue entry at A with {n} failed attempt(s)")[0]
    except AssertionError as e:
        raise AssertionError(f"{e}; queue: {queue_list(a)}") from None


# ---------------------------------------------------------------- infrastructure


def test_ipv6_loopback_and_zones_inside_namespace(net, b6):
    def addrs(host, fam):
        try:
            return {x[4][0] for x in socket.getaddrinfo(host, 25, fam, socket.SOCK_STREAM)}
        except socket.gaierror:
            return set()
    assert addrs("mx.f.test", socket.AF_INET) == {"127.0.0.3"}
    assert addrs("mx.f.test", socket.AF_INET6) == {B_HOST6}
    assert addrs("mx.g.test", socket.AF_INET) == {"127.0.0.3"}
    assert addrs("mx.g.test", socket.AF_INET6) == set(), "mx.g.test must have no AAAA"
    assert addrs("mx.h.test", socket.AF_INET6) == {B_HOST6}
    assert addrs("mx.h.test", socket.AF_INET) == set(), "mx.h.test must have no A"
    r = net.dns_query("mixed.f.test", "MX")
    assert sorted((x.rdata.preference, str(x.rdata.label)) for x in r.rr) == \
        [(10, "mx4.f.test."), (20, "mx.f.test.")], r
    # B answers on both families; A_SRC6 is a local address
    for host in ("127.0.0.3", B_HOST6):
        with SMTPClient(25, host=host) as c:
            expect(c.greeting(), 220, after=f"connect to {host}:25")
            c.quit()
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        s.settimeout(t(5))
        s.bind((A_SRC6, 0))
        s.connect((B_HOST6, 25))
        assert s.recv(512).startswith(b"220"), f"no greeting from [{B_HOST6}]:25 via {A_SRC6}"
    finally:
        s.close()


# ---------------------------------------------------------------- dual-stack MX host


@pytest.mark.parametrize("family, outbound_ip6, want", [
    ("ipv4", None, V4_FROM),
    ("ipv4", A_SRC6, V4_FROM),
    ("ipv6", B_HOST6, v6_from(B_HOST6)),
    ("ipv6", A_SRC6, v6_from(A_SRC6)),
    ("ipv6", None, v6_from(B_HOST6)),     # no outbound_ip6: the kernel's choice
], ids=["ipv4", "ipv4-ip6-set", "ipv6-src-::1", "ipv6-src-fd00:a::2", "ipv6-no-ip6"])
def test_family_picks_the_address_of_a_dual_stack_mx(a_nostart, b6, family, outbound_ip6,
                                                      want):
    """f.test's MX host has A 127.0.0.3 and AAAA ::1: ipv4 connects over
    IPv4 from outbound_ip, ipv6 over IPv6 from outbound_ip6 (outbound_ip,
    an IPv4 address, never applies to an IPv6 connection)."""
    a = start_a(a_nostart, family, outbound_ip6)
    d = send_and_receive(a, b6, FAY, f"dual stack, {family}")
    assert received_from(d) == want, \
        f"outbound_ip_family = {family}, outbound_ip6 = {outbound_ip6}: B's Received " \
        f"header is {d.received!r}, expected it to start with {want!r}"


def test_family_any_reaches_a_dual_stack_mx(a_nostart, b6):
    a = start_a(a_nostart, "any", A_SRC6)
    d = send_and_receive(a, b6, FAY, "dual stack, any")
    assert received_from(d) in (V4_FROM, v6_from(A_SRC6)), \
        f"with family any, B's Received header {d.received!r} shows neither " \
        f"{V4_FROM!r} nor {v6_from(A_SRC6)!r}"


def test_ipv6_skips_an_mx_without_ipv6_and_takes_the_next(a_nostart, b6):
    """mixed.f.test: MX 10 has no AAAA; with ipv6 the runner moves on to
    MX 20 (address of the wanted family) instead of giving up."""
    a = start_a(a_nostart, "ipv6", A_SRC6)
    d = send_and_receive(a, b6, MAX, "mixed MX, ipv6")
    assert received_from(d) == v6_from(A_SRC6), d.received


def test_ipv4_uses_the_preferred_mx_of_mixed(a_nostart, b6):
    a = start_a(a_nostart, "ipv4", A_SRC6)
    d = send_and_receive(a, b6, MAX, "mixed MX, ipv4")
    assert received_from(d) == V4_FROM, d.received


# ---------------------------------------------------------------- no address of the family


@pytest.mark.parametrize("family, rcpt, mx_host, then_from", [
    ("ipv6", GUS, "mx.g.test", V4_FROM),
    ("ipv4", HAL, "mx.h.test", v6_from(A_SRC6)),
], ids=["ipv6-to-ipv4-only-mx", "ipv4-to-ipv6-only-mx"])
def test_mx_without_an_address_of_the_family_stays_queued(a_nostart, b6, family, rcpt,
                                                           mx_host, then_from):
    """The only MX host has no address of the wanted family: a temporary
    failure (the message waits in A's queue, naming the host that has no
    address, no bounce); with `any` after a restart and a flush it goes
    out over the other family."""
    a = start_a(a_nostart, family, A_SRC6)
    msgid, msg = message(ALICE, rcpt, f"no {family} route")
    assert submit(a, [rcpt], msg) == {}

    e = wait_failed_attempts(a, b6, rcpt, 1)
    assert e["sender"] == ALICE, e
    assert [(r["address"], r["status"]) for r in e["recipients"]] == [(rcpt, "pending")], e
    err = e["last_error"]
    assert mx_host in err, \
        f"last_error {err!r} does not name the MX host {mx_host} that has no " \
        f"{family} address"
    # mx_lookup.c mx_addresses: getaddrinfo's error, or no address left
    assert err.startswith(f"cannot find the address of {mx_host}: ") or \
        err == f"{mx_host} has no usable address", \
        f"last_error {err!r} does not say that {mx_host} has no {family} address"
    assert (a.queue_dir / f"{e['id']}.msg").is_file(), f"queue file of {e['id']} is missing"

    # a retry fails the same way: not a transient state
    flush(a)
    e2 = wait_failed_attempts(a, b6, rcpt, e["attempts"] + 1)
    assert e2["id"] == e["id"] and mx_host in e2["last_error"], e2
    assert [(r["address"], r["status"]) for r in e2["recipients"]] == [(rcpt, "pending")], e2
    assert b6.messages(rcpt) == [], f"{rcpt} got mail although A may only use {family}"
    dsns = [d.name for d in a.delivered(ALICE) if d.return_path == "<>"]
    assert dsns == [], f"a temporary failure produced a DSN to {ALICE}: {dsns}"

    assert a.stop_smtpd() == 0
    reconfigure(a, smtpd={"outbound_ip_family": "any"})
    a.start_smtpd()
    flush(a)
    d = wait_for(b6, rcpt, msgid=msgid, timeout=t(15))[0]
    assert received_from(d) == then_from, d.received
    wait_queue_empty(a, t(10))
    assert queue_list(a) == []
    time.sleep(0.3)
    assert len(b6.find(rcpt, msgid)) == 1, f"{rcpt} got more than one copy"
