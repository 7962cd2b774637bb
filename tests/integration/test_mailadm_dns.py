"""mailadm dns DOMAIN: every record of a complete server (issue 6 item 3).

With public_ip / public_ip6 in the config the output is fully
determined, and each record is checked for its exact value: A/AAAA of
`hostname`, MX, SPF with the explicit addresses, the DKIM key (keygen's
own line), DMARC, the SRV records of RFC 6186 as the listen lines say,
the PTR for the provider and the recipe for domains that send no mail.
Every line is a ';' comment or a record that python3-dnslib parses (as
the DNS test server does), and a commented-out record parses too once
its ';' prefix is removed, so that it can be pasted where it belongs.
Without public_ip the addresses come from this machine's interfaces,
which a test cannot know: the output must then hold either global
addresses or the placeholder that says to set public_ip.  No daemon is
run.
"""

import ipaddress
import json
import re

import pytest
from dnslib import QTYPE, RR

import buzon
from buzon import DOMAIN, HOSTNAME

IP4 = "203.0.113.7"
IP6 = "2001:db8::7"
IP6_CONF = "2001:DB8:0::7"         # written unusually: printed in normal form
PTR4 = "7.113.0.203.in-addr.arpa"
PTR6 = "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
DMARC = f"v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:postmaster@{DOMAIN}"
FIELDS = {"name", "type", "value", "comment", "publish"}

# every service on its standard port, on all addresses
STANDARD = {
    "smtpd": ["0.0.0.0:25 smtp", "0.0.0.0:587 submission", "[::]:465 submissions"],
    "imapd": ["0.0.0.0:143 imap", "[::]:993 imaps"],
    "pop3d": ["0.0.0.0:110 pop3", "0.0.0.0:995 pop3s"],
}
SRV_NAMES = ["_submission", "_submissions", "_imap", "_imaps", "_pop3", "_pop3s"]


# ---------------------------------------------------------------- helpers


def ok(inst, *args, **kw):
    cp = inst.mailadm(*args, **kw)
    assert cp.returncode == 0, \
        f"`mailadm {' '.join(map(str, args))}` exited {cp.returncode}, expected 0; " \
        f"stderr: {cp.stderr.strip()!r}"
    return cp


def set_listens(inst, listens):
    """Replace every listen line of the given sections ({"imapd": [...]})."""
    out, sec = [], None
    for ln in inst.conf_text.splitlines():
        m = re.fullmatch(r"\[(\w+)\]", ln)
        if m:
            sec = m.group(1)
            out.append(ln)
            out += [f"listen = {v}" for v in listens.get(sec, [])]
            continue
        if sec in listens and ln.startswith("listen ="):
            continue
        out.append(ln)
    inst.conf_text = "\n".join(out) + "\n"
    inst.conf.write_text(inst.conf_text)


def make(tmp_path, top=None, listens=None, hostname=HOSTNAME, smtpd=None):
    inst = buzon.Instance(tmp_path / "b", {"top": top or {}, "smtpd": smtpd or {}},
                          hostname=hostname)
    (inst.root / "tls").mkdir(mode=0o700)
    if listens:
        set_listens(inst, listens)
    ok(inst, "init")
    ok(inst, "domain", "add", DOMAIN)
    return inst


PUBLIC = {"public_ip": IP4, "public_ip6": IP6_CONF}


def check_lines(stdout):
    """Every line a ';' comment or a record; returns the record lines."""
    recs = []
    for ln in stdout.splitlines():
        assert ln.strip(), f"empty line in {stdout!r}"
        if ln.startswith(";"):
            continue
        assert " IN " in ln, f"{ln!r} is neither a ';' comment nor a record"
        recs.append(ln)
    return recs


def parse(line):
    """One zone line with dnslib: (name without final dot, type, rdata)."""
    rrs = RR.fromZone(line)
    assert len(rrs) == 1, f"{line!r} parsed as {len(rrs)} records, expected 1"
    rr = rrs[0]
    return str(rr.rname).rstrip("."), QTYPE[rr.rtype], rr.rdata


def records(stdout):
    """{(name, type): [rdata...]} of the lines to publish; all must parse,
    and the whole output loads as one zone fragment."""
    recs = check_lines(stdout)
    got = {}
    for ln in recs:
        name, rtype, rdata = parse(ln)
        got.setdefault((name, rtype), []).append(rdata)
    assert len(RR.fromZone(stdout)) == len(recs), \
        "dnslib does not load the whole output as the records it shows"
    return got


COMMENTED_RR = re.compile(r"^; (PTR: )?\S+\. IN [A-Z]+ ")


def uncomment(line):
    return re.sub(r"^; (PTR: )?", "", line)


def commented_records(stdout):
    """The records printed commented out, prefix removed: {(name, type): [rdata]}."""
    got = {}
    for ln in stdout.splitlines():
        if COMMENTED_RR.match(ln):
            name, rtype, rdata = parse(uncomment(ln))
            got.setdefault((name, rtype), []).append(rdata)
    return got


def txt(rdata):
    return b"".join(bytes(s) for s in rdata.data).decode()


def srv(rdata):
    return (rdata.priority, rdata.weight, rdata.port, str(rdata.target))


def jdata(inst, *args):
    cp = ok(inst, *args, json=True)
    try:
        return json.loads(cp.stdout)
    except ValueError as e:
        raise AssertionError(f"--json output is not JSON ({e}): {cp.stdout[:400]!r}")


def keygen_line(inst, selector="s1"):
    cp = ok(inst, "dkim", "keygen", DOMAIN, "--selector", selector)
    recs = check_lines(cp.stdout)
    assert len(recs) == 1, f"keygen printed {recs!r}"
    return recs[0]


# ---------------------------------------------------------------- the full set


def test_every_record_with_public_ip(tmp_path):
    inst = make(tmp_path, top=PUBLIC, listens=STANDARD)
    dkim_line = keygen_line(inst)
    out = ok(inst, "dns", DOMAIN).stdout
    got = records(out)

    assert [str(r) for r in got[(HOSTNAME, "A")]] == [IP4]
    assert [str(r) for r in got[(HOSTNAME, "AAAA")]] == [IP6]
    mx = got[(DOMAIN, "MX")]
    assert len(mx) == 1 and mx[0].preference == 10 and str(mx[0].label) == HOSTNAME + "."
    assert [txt(r) for r in got[(DOMAIN, "TXT")]] == [f"v=spf1 ip4:{IP4} ip6:{IP6} -all"]
    assert "public_ip and public_ip6 are set" in out, \
        "the SPF comment does not say why the addresses are written out"
    assert [txt(r) for r in got[(f"_dmarc.{DOMAIN}", "TXT")]] == [DMARC]
    assert "p=none" in out, "no comment suggesting to start at p=none"
    assert dkim_line in out.splitlines(), "the DKIM line differs from keygen's"
    assert len(got[(f"s1._domainkey.{DOMAIN}", "TXT")]) == 1

    want_srv = {"_submission": 587, "_submissions": 465, "_imap": 143, "_imaps": 993,
                "_pop3": 110, "_pop3s": 995}
    for label, port in want_srv.items():
        assert [srv(r) for r in got[(f"{label}._tcp.{DOMAIN}", "SRV")]] == \
            [(0, 1, port, HOSTNAME + ".")], f"SRV {label}"
    assert f"_imaps._tcp.{DOMAIN}. IN SRV 0 1 993 {HOSTNAME}." in out.splitlines()

    # nothing else is published in the zone
    assert set(got) == {(HOSTNAME, "A"), (HOSTNAME, "AAAA"), (DOMAIN, "MX"),
                        (DOMAIN, "TXT"), (f"_dmarc.{DOMAIN}", "TXT"),
                        (f"s1._domainkey.{DOMAIN}", "TXT")} | \
        {(f"{s}._tcp.{DOMAIN}", "SRV") for s in SRV_NAMES}

    # the PTR, for the provider, in the exact form asked for
    lines = out.splitlines()
    assert f"; PTR: {PTR4}. IN PTR {HOSTNAME}." in lines
    assert f"; PTR: {PTR6}. IN PTR {HOSTNAME}." in lines
    assert "provider" in out and f"not in the zone of {DOMAIN}" in out

    # the recipe for domains that send no mail, commented out
    c = commented_records(out)
    assert [txt(r) for r in c[("nomail.example", "TXT")]] == ["v=spf1 -all"]
    assert [txt(r) for r in c[("_dmarc.nomail.example", "TXT")]] == ["v=DMARC1; p=reject"]
    nmx = c[("nomail.example", "MX")]
    assert len(nmx) == 1 and nmx[0].preference == 0 and str(nmx[0].label) == "."
    assert "; nomail.example. IN MX 0 ." in lines
    assert "RFC 7505" in out and "sends no mail" in out
    assert [str(r.label) for r in c[(PTR4, "PTR")]] == [HOSTNAME + "."]


def test_commented_records_parse(tmp_path):
    """Each commented-out record is a valid zone line once uncommented."""
    inst = make(tmp_path, top=PUBLIC, hostname="mx.provider.test")
    out = ok(inst, "dns", DOMAIN).stdout
    n = 0
    for ln in out.splitlines():
        if COMMENTED_RR.match(ln):
            parse(uncomment(ln))
            n += 1
    # A, AAAA, 2 PTR, 3 of the no-mail recipe
    assert n == 7, f"{n} commented records in {out}"


def test_default_config(tmp_path):
    """The test config: smtp, imap, imaps and pop3 on 127.0.0.1 only,
    relayhost set, no public_ip."""
    inst = make(tmp_path)
    out = ok(inst, "dns", DOMAIN).stdout
    got = records(out)
    assert [txt(r) for r in got[(DOMAIN, "TXT")]] == ["v=spf1 mx -all"]
    assert "relayhost is set" in out and "include:" in out
    assert "port 25" in out, "no warning that smtpd listens on no public port 25"
    for s in SRV_NAMES:
        assert [srv(r) for r in got[(f"{s}._tcp.{DOMAIN}", "SRV")]] == [(0, 0, 0, ".")], \
            f"{s}: a loopback listener is not a service for the Internet"
    assert f"_pop3s._tcp.{DOMAIN}. IN SRV 0 0 0 ." in out.splitlines()


# ---------------------------------------------------------------- SRV


def test_srv_follows_listen_lines(tmp_path):
    inst = make(tmp_path, top=PUBLIC, listens={
        "smtpd": ["0.0.0.0:25 smtp", "203.0.113.7:2587 submission",
                  "127.0.0.1:465 submissions"],
        "imapd": ["127.0.0.1:143 imap", "[::]:993 imaps", "0.0.0.0:993 imaps",
                  "0.0.0.0:1993 imaps"],
        "pop3d": ["[::1]:110 pop3", "[::1]:995 pop3s"],
    })
    out = ok(inst, "dns", DOMAIN).stdout
    got = records(out)
    want = {
        "_submission": [(0, 1, 2587, HOSTNAME + ".")],
        "_submissions": [(0, 0, 0, ".")],          # loopback only
        "_imap": [(0, 0, 0, ".")],
        "_imaps": [(0, 1, 993, HOSTNAME + "."), (0, 1, 1993, HOSTNAME + ".")],
        "_pop3": [(0, 0, 0, ".")],
        "_pop3s": [(0, 0, 0, ".")],
    }
    for s, w in want.items():
        assert [srv(r) for r in got[(f"{s}._tcp.{DOMAIN}", "SRV")]] == w, f"SRV {s}"
    assert "not provided" in out and "port 2587" in out
    assert "port 25" not in out.replace("port 2587", ""), \
        "a warning about port 25 although smtp listens on 0.0.0.0:25"


# ---------------------------------------------------------------- A/AAAA


@pytest.mark.parametrize("hostname", ["mx.provider.test", "mailexample.test"])
def test_hostname_in_another_zone(tmp_path, hostname):
    inst = make(tmp_path, top=PUBLIC, hostname=hostname)
    out = ok(inst, "dns", DOMAIN).stdout
    got = records(out)
    assert not [k for k in got if k[1] in ("A", "AAAA")], \
        f"A/AAAA of {hostname} published in the zone of {DOMAIN}"
    lines = out.splitlines()
    assert f"; {hostname}. IN A {IP4}" in lines
    assert f"; {hostname}. IN AAAA {IP6}" in lines
    assert f"publish in the zone of {hostname}" in out
    assert str(got[(DOMAIN, "MX")][0].label) == hostname + "."
    for r in jdata(inst, "dns", DOMAIN):
        if r["type"] in ("A", "AAAA"):
            assert r["publish"] is False and r["name"] == hostname


@pytest.mark.parametrize("hostname", [DOMAIN, "a.b." + DOMAIN, "MAIL.Example.TEST"])
def test_hostname_inside_the_zone(tmp_path, hostname):
    inst = make(tmp_path, top=PUBLIC, hostname=hostname)
    got = records(ok(inst, "dns", DOMAIN).stdout)
    a = [k for k in got if k[1] == "A"]
    assert len(a) == 1 and a[0][0].lower() == hostname.lower()


def test_without_public_ip(tmp_path):
    """The machine's global addresses, or the placeholder: either way
    correct, whatever the interfaces of the test machine are."""
    inst = make(tmp_path)
    out = ok(inst, "dns", DOMAIN).stdout
    got = records(out)
    for rtype, key in (("A", "public_ip"), ("AAAA", "public_ip6")):
        addrs = [str(r) for r in got.get((HOSTNAME, rtype), [])]
        if addrs:
            for a in addrs:
                assert ipaddress.ip_address(a).is_global, \
                    f"{rtype} {a} is not a global address"
            assert "found on this machine's interfaces" in out
        else:
            placeholder = [ln for ln in out.splitlines()
                           if ln.startswith(f"; {rtype}: no ") and f"{key} is not set" in ln]
            assert placeholder, f"neither an {rtype} record nor the placeholder in {out}"
            assert f"set {key} = ADDRESS" in out
    # PTR lines for exactly the addresses found
    found = [str(r) for k in ((HOSTNAME, "A"), (HOSTNAME, "AAAA")) for r in got.get(k, [])]
    ptrs = [ln for ln in out.splitlines() if ln.startswith("; PTR: ")]
    assert len(ptrs) == len(found)
    for a in found:
        rev = ipaddress.ip_address(a).reverse_pointer
        assert f"; PTR: {rev}. IN PTR {HOSTNAME}." in ptrs
    if not found:
        assert "once public_ip is set" in out
    assert [txt(r) for r in got[(DOMAIN, "TXT")]] == ["v=spf1 mx -all"]


def test_only_public_ip_and_outbound_ip(tmp_path):
    inst = make(tmp_path, top={"public_ip": IP4},
                smtpd={"outbound_ip": "198.51.100.9", "relayhost": None})
    out = ok(inst, "dns", DOMAIN).stdout
    got = records(out)
    assert [str(r) for r in got[(HOSTNAME, "A")]] == [IP4]
    spf = txt(got[(DOMAIN, "TXT")][0]).split()
    assert spf[:2] == ["v=spf1", f"ip4:{IP4}"] and spf[-1] == "-all", spf
    assert "ip4:198.51.100.9" in spf, "outbound_ip is not authorized"
    for m in spf[2:-1]:
        kind, _, addr = m.partition(":")
        assert kind in ("ip4", "ip6"), f"mechanism {m} in {spf}"
        if addr != "198.51.100.9":
            assert kind == "ip6" and ipaddress.ip_address(addr).is_global
    assert "public_ip is set" in out and "relayhost is set" not in out

    # outbound_ip equal to public_ip is not listed twice
    inst2 = make(tmp_path / "2", top={"public_ip": IP4}, smtpd={"outbound_ip": IP4})
    spf = txt(records(ok(inst2, "dns", DOMAIN).stdout)[(DOMAIN, "TXT")][0]).split()
    assert spf.count(f"ip4:{IP4}") == 1, spf


@pytest.mark.parametrize("key,value", [("public_ip", "not-an-ip"),
                                       ("public_ip", "2001:db8::1"),
                                       ("public_ip6", "203.0.113.7"),
                                       ("public_ip", "203.0.113.256")])
def test_bad_public_ip(tmp_path, key, value):
    inst = make(tmp_path, top={key: value})
    cp = inst.mailadm("dns", DOMAIN)
    assert cp.returncode == 1, f"exit {cp.returncode} for {key} = {value}"
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and key in lines[0] and value in lines[0], cp.stderr
    assert cp.stdout == ""


# ---------------------------------------------------------------- --json


def test_json(tmp_path):
    inst = make(tmp_path, top=PUBLIC, listens=STANDARD)
    keygen_line(inst)
    text = ok(inst, "dns", DOMAIN).stdout
    data = jdata(inst, "dns", DOMAIN)
    assert isinstance(data, list) and data
    for r in data:
        assert set(r) == FIELDS, f"record fields {r}"
        assert isinstance(r["publish"], bool)
        assert all(isinstance(r[f], str) for f in FIELDS - {"publish"})
        assert r["name"] and not r["name"].endswith("."), r
        assert r["comment"], f"a record without a comment: {r}"

    pub = {(r["name"], r["type"], r["value"]) for r in data if r["publish"]}
    assert pub == {
        (HOSTNAME, "A", IP4), (HOSTNAME, "AAAA", IP6), (DOMAIN, "MX", f"10 {HOSTNAME}"),
        (DOMAIN, "TXT", f"v=spf1 ip4:{IP4} ip6:{IP6} -all"),
        (f"_dmarc.{DOMAIN}", "TXT", DMARC),
        (f"s1._domainkey.{DOMAIN}", "TXT",
         txt(records(text)[(f"s1._domainkey.{DOMAIN}", "TXT")][0])),
        (f"_submission._tcp.{DOMAIN}", "SRV", f"0 1 587 {HOSTNAME}"),
        (f"_submissions._tcp.{DOMAIN}", "SRV", f"0 1 465 {HOSTNAME}"),
        (f"_imap._tcp.{DOMAIN}", "SRV", f"0 1 143 {HOSTNAME}"),
        (f"_imaps._tcp.{DOMAIN}", "SRV", f"0 1 993 {HOSTNAME}"),
        (f"_pop3._tcp.{DOMAIN}", "SRV", f"0 1 110 {HOSTNAME}"),
        (f"_pop3s._tcp.{DOMAIN}", "SRV", f"0 1 995 {HOSTNAME}"),
    }
    assert len(pub) == len(check_lines(text)), "JSON and text disagree on what to publish"
    unpub = {(r["name"], r["type"], r["value"]) for r in data if not r["publish"]}
    assert unpub == {
        (PTR4, "PTR", HOSTNAME), (PTR6, "PTR", HOSTNAME),
        ("nomail.example", "TXT", "v=spf1 -all"),
        ("_dmarc.nomail.example", "TXT", "v=DMARC1; p=reject"),
        ("nomail.example", "MX", "0 ."),
    }
    ptr = [r for r in data if r["type"] == "PTR"]
    assert all("provider" in r["comment"] for r in ptr), \
        "each PTR object carries its own comment"


def test_json_not_provided_srv(tmp_path):
    inst = make(tmp_path)
    srvs = {r["name"]: r for r in jdata(inst, "dns", DOMAIN) if r["type"] == "SRV"}
    assert set(srvs) == {f"{s}._tcp.{DOMAIN}" for s in SRV_NAMES}
    for r in srvs.values():
        assert r["value"] == "0 0 0 ." and r["publish"] is True


# ---------------------------------------------------------------- interfaces


# A private network namespace whose interfaces hold one global address of
# each family among addresses that must all be skipped: private, CGNAT,
# link-local, ULA, documentation, and a global one on an interface that
# is down.
NETNS_SETUP = """
set -e
ip link add v0 type veth peer name v1
ip link add v2 type veth peer name v3
for a in 10.1.1.1/8 172.16.5.5/12 192.168.1.1/24 100.64.1.1/10 169.254.1.1/16 \\
         192.0.2.9/24 198.51.99.5/24; do ip addr add $a dev v0; done
for a in fd00::9/64 2001:db8::9/64 2a01:4f8::5/64; do ip -6 addr add $a dev v0 nodad; done
ip addr add 198.51.99.77/24 dev v2
ip -6 addr add 2a01:4f8::77/64 dev v2 nodad
ip link set lo up
ip link set v1 up
ip link set v0 up
"""


def dns_in_netns(inst, tool, *args):
    import subprocess
    exe = buzon.need_binary("mailadm")
    script = NETNS_SETUP + f'exec "{exe}" -c "{inst.conf}" ' + \
        " ".join(f'"{a}"' for a in args) + " dns " + DOMAIN + "\n"
    cp = subprocess.run([tool("unshare"), "-n", "sh", "-c", script], capture_output=True,
                        text=True, timeout=buzon.t(30))
    assert cp.returncode == 0, f"mailadm dns in a network namespace: {cp.stderr!r}"
    return cp.stdout


@pytest.mark.skipif(__import__("os").geteuid() != 0,
                    reason="needs root to make a network namespace with interfaces")
def test_global_addresses_of_the_interfaces(tmp_path, tool):
    tool("ip")
    inst = make(tmp_path, listens=STANDARD)
    out = dns_in_netns(inst, tool)
    got = records(out)
    assert [str(r) for r in got[(HOSTNAME, "A")]] == ["198.51.99.5"]
    assert [str(r) for r in got[(HOSTNAME, "AAAA")]] == ["2a01:4f8::5"]
    assert "found on this machine's interfaces" in out
    assert [txt(r) for r in got[(DOMAIN, "TXT")]] == ["v=spf1 mx -all"]
    lines = out.splitlines()
    assert f"; PTR: 5.99.51.198.in-addr.arpa. IN PTR {HOSTNAME}." in lines
    assert f"; PTR: {ipaddress.ip_address('2a01:4f8::5').reverse_pointer}. IN PTR " \
           f"{HOSTNAME}." in lines
    assert len([ln for ln in lines if ln.startswith("; PTR: ")]) == 2

    # public_ip set, public_ip6 not: IPv4 from the config, IPv6 found,
    # both in the SPF record
    inst = make(tmp_path / "2", top={"public_ip": IP4})
    data = json.loads(dns_in_netns(inst, tool, "--json"))
    a = {(r["type"], r["value"]) for r in data if r["name"] == HOSTNAME}
    assert a == {("A", IP4), ("AAAA", "2a01:4f8::5")}
    spf = [r["value"] for r in data if r["name"] == DOMAIN and r["type"] == "TXT"]
    assert spf == [f"v=spf1 ip4:{IP4} ip6:2a01:4f8::5 -all"]
