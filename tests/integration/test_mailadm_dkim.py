"""mailadm dkim keygen|list|retire and mailadm dns.

What the admin sees (exit codes, the zone-file lines on stdout, --json)
and what lands on disk (the private key, 0600, under state_dir/dkim; the
dkim_keys rows).  The zone lines are parsed with python3-dnslib, as the
DNS test server does, and the published key is checked against the
private key file with python3-dkim: a message signed with the file
verifies with the record mailadm printed.
"""

import base64
import json
import os
import shutil
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

import dkim
import pytest
from dnslib import QTYPE, RR

import buzon
from buzon import DOMAIN, HOSTNAME, t


# ---------------------------------------------------------------- helpers


def ok(adm, *args, **kw):
    cp = adm.mailadm(*args, **kw)
    assert cp.returncode == 0, \
        f"`mailadm {' '.join(map(str, args))}` exited {cp.returncode}, expected 0; " \
        f"stderr: {cp.stderr.strip()!r}"
    return cp


def user_error(cp, what, contains=None):
    """Exit 1 with exactly one non-empty line on stderr."""
    assert cp.returncode == 1, \
        f"{what}: exit code {cp.returncode}, expected 1 (user error); " \
        f"stderr: {cp.stderr.strip()!r} stdout: {cp.stdout.strip()!r}"
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, \
        f"{what}: stderr has {len(lines)} lines, expected exactly one: {cp.stderr!r}"
    if contains:
        assert contains in cp.stderr, \
            f"{what}: stderr {cp.stderr.strip()!r} does not mention {contains!r}"


def jdata(adm, *args):
    cp = ok(adm, *args, json=True)
    try:
        return json.loads(cp.stdout)
    except ValueError as e:
        raise AssertionError(f"`mailadm --json {' '.join(args)}` printed invalid JSON "
                             f"({e}): {cp.stdout[:500]!r}")


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def db_rows(adm, sql, params=()):
    con = sqlite3.connect(f"file:{adm.database}?mode=ro", uri=True, timeout=t(5))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def key_path(adm, selector, domain=DOMAIN):
    return adm.state_dir / "dkim" / f"{domain}.{selector}.key"


def txt_name(selector, domain=DOMAIN):
    return f"{selector}._domainkey.{domain}"


def record_lines(stdout):
    """The zone-file lines of an output: everything not a ';' comment."""
    return [ln for ln in stdout.splitlines() if ln.strip() and not ln.startswith(";")]


def check_comments(stdout, what):
    for ln in stdout.splitlines():
        assert ln.strip(), f"{what}: empty line in {stdout!r}"
        assert ln.startswith(";") or " IN " in ln, \
            f"{what}: {ln!r} is neither a ';' comment nor a record"


def parse_zone_line(line):
    """One record with dnslib: (name without final dot, type, rdata)."""
    rrs = RR.fromZone(line)
    assert len(rrs) == 1, f"{line!r} parsed as {len(rrs)} records, expected 1"
    rr = rrs[0]
    return str(rr.rname).rstrip("."), QTYPE[rr.rtype], rr.rdata


def txt_strings(line):
    name, rtype, rdata = parse_zone_line(line)
    assert rtype == "TXT", f"{line!r} is a {rtype} record, expected TXT"
    return name, [bytes(s) for s in rdata.data]


def keygen(adm, selector=None, domain=DOMAIN, bits=None):
    args = ["dkim", "keygen", domain]
    if selector is not None:
        args += ["--selector", selector]
    if bits is not None:
        args += ["--bits", str(bits)]
    cp = ok(adm, *args)
    check_comments(cp.stdout, "keygen")
    recs = record_lines(cp.stdout)
    assert len(recs) == 1, f"keygen printed {len(recs)} record lines, expected 1: {cp.stdout!r}"
    return recs[0]


def dkim_lines(stdout):
    return [ln for ln in record_lines(stdout) if "._domainkey." in ln.split()[0]]


def public_key_of(adm, path):
    """base64 DER SubjectPublicKeyInfo of a private key file (openssl)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is not installed: run `sudo make deps`"
    import subprocess
    der = subprocess.run([openssl, "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True, timeout=t(10)).stdout
    return base64.b64encode(der).decode()


def verify_with_record(key_file, selector, txt_value, domain=DOMAIN):
    """Sign with the private key file, verify against txt_value (python3-dkim)."""
    msg = (f"From: a@{domain}\r\nTo: b@other.test\r\nSubject: dkim\r\n"
           f"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMessage-ID: <1@{domain}>\r\n"
           f"\r\nbody\r\n").encode()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), Path(key_file).read_bytes(),
                    include_headers=[b"from", b"to", b"subject"])
    want = f"{selector}._domainkey.{domain}"

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return txt_value.encode() if name.rstrip(".") == want else None
    return dkim.verify(sig + msg, dnsfunc=dnsfunc)


@pytest.fixture
def dom(adm):
    ok(adm, "init")
    ok(adm, "domain", "add", DOMAIN)
    return adm


# ---------------------------------------------------------------- keygen


def test_keygen_prints_one_zone_line_and_writes_0600_key(dom):
    line = keygen(dom, "s1")
    assert line.startswith(f"s1._domainkey.{DOMAIN}. IN TXT \""), \
        f"keygen's record line {line!r} does not start with the record name"
    name, strings = txt_strings(line)
    assert name == txt_name("s1")
    for s in strings:
        assert len(s) <= 255, f"a TXT string of {len(s)} octets in {line!r}"
    value = b"".join(strings).decode()
    assert len(strings) == 2, f"a 2048-bit key's record should need 2 strings: {line!r}"
    assert value.startswith("v=DKIM1; k=rsa; p="), f"TXT value {value!r}"

    path = key_path(dom, "s1")
    assert path.is_file(), f"no private key at {path}"
    assert mode(path) == 0o600, f"key {path} mode {oct(mode(path))}, expected 0o600"
    assert mode(path.parent) == 0o700, \
        f"{path.parent} mode {oct(mode(path.parent))}, expected 0o700"
    assert "PRIVATE KEY-----" in path.read_text()
    assert value.split("p=", 1)[1] == public_key_of(dom, path), \
        "the published p= is not the public half of the key file"
    assert verify_with_record(path, "s1", value), \
        "python3-dkim: a message signed with the key file does not verify with the printed record"
    assert db_rows(dom, "SELECT domain, selector, private_key_path, active FROM dkim_keys") == \
        [(DOMAIN, "s1", str(path), 1)]


def test_keygen_json(dom):
    k = jdata(dom, "dkim", "keygen", DOMAIN, "--selector", "s1")
    assert isinstance(k, dict), f"keygen --json printed {k!r}, expected an object"
    for field in ("domain", "selector", "key_path", "txt_name", "txt_value", "zone_line",
                  "signing"):
        assert field in k, f"keygen --json has no {field!r}: {k}"
    assert k["domain"] == DOMAIN and k["selector"] == "s1"
    assert k["key_path"] == str(key_path(dom, "s1"))
    assert k["txt_name"] == txt_name("s1")
    assert k["signing"] is True
    _, strings = txt_strings(k["zone_line"])
    assert b"".join(strings).decode() == k["txt_value"]
    k2 = jdata(dom, "dkim", "keygen", DOMAIN, "--selector", "s2")
    assert k2["signing"] is False, "a second key must not sign while the first is active"


def test_keygen_default_selector_is_month(dom):
    before = time.strftime("s%Y%m", time.gmtime())
    k = jdata(dom, "dkim", "keygen", DOMAIN)
    after = time.strftime("s%Y%m", time.gmtime())
    assert k["selector"] in (before, after), \
        f"default selector {k['selector']!r}, expected {before!r}"
    user_error(dom.mailadm("dkim", "keygen", DOMAIN), "second keygen with the default selector",
               "already")


def test_keygen_bits(dom):
    line = keygen(dom, "small", bits=1024)
    _, strings = txt_strings(line)
    assert len(strings) == 1, "a 1024-bit key's record fits in one string"
    for bad in ("512", "1023", "4097", "abc", "-2048", ""):
        user_error(dom.mailadm("dkim", "keygen", DOMAIN, "--selector", "x", "--bits", bad),
                   f"--bits {bad!r}", "--bits")
    assert not key_path(dom, "x").exists()


@pytest.mark.parametrize("bad", ["bad_sel", "a..b", ".a", "a.", "a b", "x/y", "../k",
                                 "a" * 64, "s-", "é"])
def test_keygen_bad_selector(dom, bad):
    user_error(dom.mailadm("dkim", "keygen", DOMAIN, "--selector", bad),
               f"selector {bad!r}", "selector")
    assert db_rows(dom, "SELECT count(*) FROM dkim_keys") == [(0,)]
    d = dom.state_dir / "dkim"
    assert not d.exists() or not any(d.iterdir()), f"a key file was written: {list(d.iterdir())}"


def test_keygen_existing_selector_refused(dom):
    keygen(dom, "s1")
    before = key_path(dom, "s1").read_bytes()
    user_error(dom.mailadm("dkim", "keygen", DOMAIN, "--selector", "s1"),
               "keygen of an existing selector", "s1")
    user_error(dom.mailadm("dkim", "keygen", DOMAIN, "--selector", "S1"),
               "keygen of an existing selector in upper case", "s1")
    assert key_path(dom, "s1").read_bytes() == before, "the existing key file was changed"
    assert db_rows(dom, "SELECT count(*) FROM dkim_keys") == [(1,)]


def test_keygen_never_overwrites_a_leftover_file(dom):
    path = key_path(dom, "s1")
    path.parent.mkdir(mode=0o700)
    path.write_text("left over\n")
    user_error(dom.mailadm("dkim", "keygen", DOMAIN, "--selector", "s1"),
               "keygen over a leftover key file", str(path))
    assert path.read_text() == "left over\n"
    assert db_rows(dom, "SELECT count(*) FROM dkim_keys") == [(0,)]


def test_unknown_domain(dom):
    for args in (("dkim", "keygen", "other.test", "--selector", "s1"),
                 ("dkim", "list", "other.test"),
                 ("dkim", "retire", "other.test", "s1"),
                 ("dns", "other.test")):
        user_error(dom.mailadm(*args), " ".join(args), "other.test")
    user_error(dom.mailadm("dns", "bad..domain"), "dns of an invalid name")
    assert not (dom.state_dir / "dkim").exists() or \
        not any((dom.state_dir / "dkim").iterdir())


def test_usage_errors(dom):
    for args in (("dkim", "keygen"), ("dkim", "retire", DOMAIN), ("dns",),
                 ("dkim", "keygen", DOMAIN, "--nope"), ("dkim", "list", DOMAIN, "x")):
        cp = dom.mailadm(*args)
        assert cp.returncode == 2, \
            f"`mailadm {' '.join(args)}` exited {cp.returncode}, expected 2 (usage)"


# ---------------------------------------------------------------- list, retire


def keys(adm, *domain):
    return {(k["domain"], k["selector"]): k for k in jdata(adm, "dkim", "list", *domain)}


def test_rotation(dom):
    line1 = keygen(dom, "s1")
    cp = ok(dom, "dkim", "keygen", DOMAIN, "--selector", "s2")
    line2 = record_lines(cp.stdout)[0]
    assert f"mailadm dkim retire {DOMAIN} s1" in cp.stdout, \
        f"keygen of a second key does not say how to retire the first: {cp.stdout!r}"

    k = keys(dom)
    assert k[(DOMAIN, "s1")]["signing"] is True and k[(DOMAIN, "s1")]["active"] is True
    assert k[(DOMAIN, "s2")]["signing"] is False and k[(DOMAIN, "s2")]["active"] is True
    assert k[(DOMAIN, "s2")]["key_path"] == str(key_path(dom, "s2"))
    table = ok(dom, "dkim", "list").stdout.splitlines()
    assert table[0].split() == ["DOMAIN", "SELECTOR", "ACTIVE", "SIGNING", "KEY"]
    assert table[1].split() == [DOMAIN, "s1", "yes", "yes", str(key_path(dom, "s1"))]
    assert table[2].split() == [DOMAIN, "s2", "yes", "no", str(key_path(dom, "s2"))]

    # both published
    out = ok(dom, "dns", DOMAIN).stdout
    assert dkim_lines(out) == [line1, line2]

    ok(dom, "dkim", "retire", DOMAIN, "s1")
    k = keys(dom, DOMAIN)
    assert k[(DOMAIN, "s1")]["active"] is False and k[(DOMAIN, "s1")]["signing"] is False
    assert k[(DOMAIN, "s2")]["signing"] is True
    assert key_path(dom, "s1").is_file(), "retire must keep the key file"
    out = ok(dom, "dns", DOMAIN).stdout
    assert dkim_lines(out) == [line2], "a retired key is still printed by mailadm dns"

    user_error(dom.mailadm("dkim", "retire", DOMAIN, "s1"), "retire twice", "already")
    user_error(dom.mailadm("dkim", "retire", DOMAIN, "s9"), "retire of an unknown selector",
               "s9")

    # retiring the last key leaves mail unsigned, and says so
    cp = ok(dom, "dkim", "retire", DOMAIN, "s2")
    assert "unsigned" in cp.stdout
    out = ok(dom, "dns", DOMAIN).stdout
    assert dkim_lines(out) == []
    assert any("mailadm dkim keygen" in ln for ln in out.splitlines() if ln.startswith(";"))


def test_list_empty_and_per_domain(dom):
    assert jdata(dom, "dkim", "list") == []
    ok(dom, "domain", "add", "second.test")
    keygen(dom, "s1")
    keygen(dom, "s1", domain="second.test")
    assert set(keys(dom)) == {(DOMAIN, "s1"), ("second.test", "s1")}
    assert set(keys(dom, "second.test")) == {("second.test", "s1")}


# ---------------------------------------------------------------- dns


def test_dns_records(dom):
    line = keygen(dom, "s1")
    cp = ok(dom, "dns", DOMAIN)
    check_comments(cp.stdout, "dns")
    recs = record_lines(cp.stdout)
    parsed = [parse_zone_line(ln) for ln in recs]
    by_type = {}
    for name, rtype, rdata in parsed:
        by_type.setdefault((name, rtype), []).append(rdata)

    mx = by_type[(DOMAIN, "MX")]
    assert len(mx) == 1 and mx[0].preference == 10 and str(mx[0].label) == HOSTNAME + "."
    txt = {b"".join(bytes(s) for s in r.data).decode() for r in by_type[(DOMAIN, "TXT")]}
    assert txt == {"v=spf1 mx -all"}
    dmarc = b"".join(bytes(s) for s in by_type[(f"_dmarc.{DOMAIN}", "TXT")][0].data).decode()
    assert dmarc == (f"v=DMARC1; p=quarantine; adkim=s; aspf=s; "
                     f"rua=mailto:postmaster@{DOMAIN}")
    assert "p=none" in cp.stdout, "no comment suggesting p=none first"
    assert dkim_lines(cp.stdout) == [line], "mailadm dns does not print keygen's exact line"

    # the whole output is one zone fragment dnslib can load
    assert len(RR.fromZone(cp.stdout)) == len(recs)


def test_dns_json(dom):
    keygen(dom, "s1")
    text = ok(dom, "dns", DOMAIN).stdout
    data = jdata(dom, "dns", DOMAIN)
    assert isinstance(data, list)
    for r in data:
        assert set(r) == {"name", "type", "value", "comment", "publish"}, \
            f"record fields {r}"
        assert not r["name"].endswith(".")
    got = {(r["name"], r["type"]): r["value"] for r in data if r["publish"]}
    assert got[(DOMAIN, "MX")] == f"10 {HOSTNAME}"
    assert got[(DOMAIN, "TXT")] == "v=spf1 mx -all"
    assert got[(f"_dmarc.{DOMAIN}", "TXT")].startswith("v=DMARC1; p=quarantine")
    dk = got[(txt_name("s1"), "TXT")]
    _, strings = txt_strings(dkim_lines(text)[0])
    assert dk == b"".join(strings).decode()
    assert verify_with_record(key_path(dom, "s1"), "s1", dk)


def test_dns_without_key(dom):
    cp = ok(dom, "dns", DOMAIN)
    assert dkim_lines(cp.stdout) == []
    assert f"mailadm dkim keygen {DOMAIN}" in cp.stdout
    assert not [r for r in jdata(dom, "dns", DOMAIN) if "._domainkey." in r["name"]]


def test_dns_unreadable_key_is_an_error(dom):
    keygen(dom, "s1")
    key_path(dom, "s1").unlink()
    cp = dom.mailadm("dns", DOMAIN)
    user_error(cp, "dns with a missing key file", str(key_path(dom, "s1")))
    assert cp.stdout == "", "half a record list printed before the error"


# ---------------------------------------------------------------- ownership


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_key_owned_by_config_user_when_root():
    """As root with `user = nobody`, the key belongs to nobody."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    # tmp_path's parents are 0700 root: nobody could not reach the state dir
    root = Path(tempfile.mkdtemp(prefix="buzon-dkim-", dir="/tmp"))
    try:
        root.chmod(0o755)
        inst = buzon.Instance(root / "b", {"top": {"user": "nobody"}})
        inst.root.chmod(0o755)
        (inst.root / "tls").mkdir(mode=0o700)
        ok(inst, "init")
        ok(inst, "domain", "add", DOMAIN)
        keygen(inst, "s1")
        path = key_path(inst, "s1")
        for p in (path, path.parent):
            st = p.stat()
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid), \
                f"{p} belongs to {st.st_uid}:{st.st_gid}, expected nobody"
        assert mode(path) == 0o600
        assert len(dkim_lines(ok(inst, "dns", DOMAIN).stdout)) == 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
