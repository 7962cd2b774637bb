"""mailadm check DOMAIN against live DNS: our own DNS server in a private
network namespace (netns.py, outbound.py's `net` and `fresh_zones`)
serves check.test (tests/dns/check.test.zone), published the way a
server mail.check.test on 127.0.0.20 needs it, and each test breaks one
thing in the served copy.

What is asserted is what the admin sees: the exit code (0 when nothing
fails, 1 otherwise), one item per line with ok/warn/fail, and with
--json the array of {"check","status","detail","fix"} — every warn and
fail has a fix.  The SPF items go through libspf2 (policy_spf_check), so
the SPF result names (pass, fail, softfail, neutral, none, permerror,
temperror) show in the details.  No daemon runs: mailadm alone.
"""

import json

import pytest

import buzon
from buzon import t
from netns import DNS_DIR
from outbound import fresh_zones, net  # noqa: F401 (fixtures)

pytestmark = pytest.mark.usefixtures("net", "fresh_zones")

DOMAIN = "check.test"
HOST = "mail.check.test"
IP = "127.0.0.20"
REVERSE = "0.0.127.in-addr.arpa"
BL = "bl.test"
ALL_CHECKS = {"mx", "a", "ptr", "spf", "spf-ip", "spf-all", "spf-lookups", "dkim",
              "dmarc", "dnsbl"}


# ---------------------------------------------------------------- helpers


def txt_strings(value):
    """A TXT value as zone-file character-strings of at most 255 octets."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


def dkim_value(inst, selector):
    cp = inst.mailadm("dns", DOMAIN, json=True, check=True)
    for rr in json.loads(cp.stdout):
        if rr["name"] == f"{selector}._domainkey.{DOMAIN}":
            return rr["value"]
    raise AssertionError(f"`mailadm dns {DOMAIN}` lists no key {selector}: {cp.stdout}")


@pytest.fixture(scope="module")
def inst(net, tmp_path_factory):
    """mail.check.test: public_ip 127.0.0.20, [policy] dnsbl = bl.test,
    hosting check.test with DKIM key s1 (signing) and a retired key
    "old", whose record serves as "another key"."""
    i = buzon.Instance(tmp_path_factory.mktemp("check"), host=IP, hostname=HOST,
                       domain=DOMAIN, passwords={},
                       overrides={"top": {"public_ip": IP}, "policy": {"dnsbl": BL}})
    i.overrides = {"top": {"public_ip": IP}, "policy": {"dnsbl": BL}}
    i.setup_accounts()
    i.mailadm("dkim", "keygen", DOMAIN, "--selector", "s1", check=True)
    i.mailadm("dkim", "keygen", DOMAIN, "--selector", "old", check=True)
    i.s1 = dkim_value(i, "s1")
    i.old = dkim_value(i, "old")
    i.mailadm("dkim", "retire", DOMAIN, "old", check=True)
    assert i.s1 != i.old
    return i


@pytest.fixture
def zone(net, inst):
    """The correct zone: tests/dns/check.test.zone plus s1's key."""
    net.append_zone(DOMAIN, f"s1._domainkey IN TXT {txt_strings(inst.s1)}")
    return net


def rewrite(net, zone_name, drop=(), add=()):
    """Serve zone_name without the lines whose (owner, type) is in drop,
    and with the lines of add."""
    drop = {(o, ty.upper()) for o, ty in drop}
    out, dropped = [], set()
    for line in net.zone_file(zone_name).read_text().splitlines():
        tok = line.split(";", 1)[0].split()
        if len(tok) >= 3 and tok[1].upper() == "IN" and (tok[0], tok[2].upper()) in drop:
            dropped.add((tok[0], tok[2].upper()))
            continue
        out.append(line)
    assert dropped == drop, f"{zone_name} has no line for {drop - dropped}"
    net.write_zone(zone_name, "\n".join(out + list(add)) + "\n")


def set_spf(net, *records, extra=()):
    rewrite(net, DOMAIN, drop=[("@", "TXT")],
            add=[f'@ IN TXT "{r}"' for r in records] + list(extra))


def check(inst, *, expect_rc=None, conf=None, domain=DOMAIN):
    """`mailadm --json check check.test`: (exit code, items)."""
    saved = inst.conf
    try:
        inst.conf = conf or saved
        cp = inst.mailadm("check", domain, json=True, timeout=t(120))
    finally:
        inst.conf = saved
    try:
        items = json.loads(cp.stdout)
    except ValueError as e:
        raise AssertionError(f"`mailadm --json check` printed no JSON ({e}); exit "
                             f"{cp.returncode}, stdout {cp.stdout[:800]!r}, stderr "
                             f"{cp.stderr.strip()!r}") from None
    assert isinstance(items, list) and items, f"not a non-empty JSON array: {items!r}"
    for it in items:
        assert set(it) == {"check", "status", "detail", "fix"}, f"item fields: {it!r}"
        assert it["status"] in ("ok", "warn", "fail"), f"status: {it!r}"
        assert it["detail"], f"an item without a detail: {it!r}"
        if it["status"] == "ok":
            assert it["fix"] == "", f"an ok item with a fix: {it!r}"
        else:
            assert it["fix"], f"a {it['status']} item without a fix: {it!r}"
    fails = [it for it in items if it["status"] == "fail"]
    want = 1 if fails else 0
    assert cp.returncode == want, \
        f"exit code {cp.returncode}, expected {want} ({len(fails)} failed items); " \
        f"stderr {cp.stderr.strip()!r}; items {items!r}"
    if fails:
        lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, f"stderr should be one line when items fail: {cp.stderr!r}"
    if expect_rc is not None:
        assert cp.returncode == expect_rc, f"exit {cp.returncode}, expected {expect_rc}: " \
                                           f"{items!r}"
    return cp.returncode, items


def one(items, name):
    got = [it for it in items if it["check"] == name]
    assert len(got) == 1, f"expected one {name!r} item, got {got!r} in {items!r}"
    return got[0]


def status_of(items, name):
    return one(items, name)["status"]


def expect(items, name, status, *words):
    it = one(items, name)
    assert it["status"] == status, f"{name}: status {it['status']!r}, expected {status!r}: {it!r}"
    text = it["detail"] + " " + it["fix"]
    for w in words:
        assert w in text, f"{name}: {w!r} not in {it!r}"
    return it


def only_failing(items, *names):
    bad = {it["check"] for it in items if it["status"] == "fail"}
    assert bad == set(names), f"failing items {sorted(bad)}, expected {sorted(names)}: {items!r}"


# ---------------------------------------------------------------- correct zone


def test_correct_zone_all_ok(inst, zone):
    rc, items = check(inst, expect_rc=0)
    assert {it["check"] for it in items} == ALL_CHECKS, items
    assert all(it["status"] == "ok" for it in items), items
    expect(items, "mx", "ok", HOST)
    expect(items, "a", "ok", IP)
    expect(items, "ptr", "ok", f"{IP} -> {HOST} -> {IP}")
    expect(items, "spf", "ok", "v=spf1 mx -all")
    expect(items, "spf-ip", "ok", "pass")
    expect(items, "spf-lookups", "ok", "needs 1 DNS lookup (limit 10)")
    expect(items, "dkim", "ok", "s1._domainkey.check.test")
    expect(items, "dmarc", "ok", "p=quarantine")
    expect(items, "dnsbl", "ok", f"not listed on {BL}")


def test_text_output(inst, zone):
    cp = inst.mailadm("check", DOMAIN, timeout=t(120))
    assert cp.returncode == 0, f"exit {cp.returncode}: {cp.stdout} {cp.stderr}"
    assert cp.stderr == "", cp.stderr
    lines = cp.stdout.splitlines()
    assert lines[-1] == f"{DOMAIN}: {len(lines) - 1} ok, 0 warn, 0 fail", lines
    for ln in lines[:-1]:
        assert ln.startswith("ok    "), ln
    rewrite(zone, DOMAIN, drop=[("@", "MX")])
    cp = inst.mailadm("check", DOMAIN, timeout=t(120))
    assert cp.returncode == 1, cp.stdout
    mx = [ln for ln in cp.stdout.splitlines() if ln.split()[:2] == ["fail", "mx"]]
    assert len(mx) == 1 and f"Fix: publish: {DOMAIN}. IN MX 10 {HOST}." in mx[0], cp.stdout
    assert cp.stdout.splitlines()[-1].endswith(" fail"), cp.stdout
    assert "failed" in cp.stderr and len(cp.stderr.splitlines()) == 1, cp.stderr


def test_usage_and_unknown_domain(inst, zone):
    cp = inst.mailadm("check", timeout=t(60))
    assert cp.returncode == 2, cp
    cp = inst.mailadm("check", "nothosted.test", timeout=t(60))
    assert cp.returncode == 1 and cp.stdout == "", cp
    assert len([ln for ln in cp.stderr.splitlines() if ln.strip()]) == 1, cp.stderr


# ---------------------------------------------------------------- MX


def test_no_mx(inst, zone):
    rewrite(zone, DOMAIN, drop=[("@", "MX")])
    _, items = check(inst, expect_rc=1)
    expect(items, "mx", "fail", f"{DOMAIN}. IN MX 10 {HOST}.")
    # the SPF record is "mx -all": without an MX nothing passes
    expect(items, "spf-ip", "fail", "fail")
    only_failing(items, "mx", "spf-ip")


def test_mx_to_another_host(inst, zone):
    rewrite(zone, DOMAIN, drop=[("@", "MX")],
            add=["@ IN MX 10 mx.elsewhere.check.test.", "mx.elsewhere IN A 127.0.0.30"])
    _, items = check(inst, expect_rc=1)
    expect(items, "mx", "fail", "mx.elsewhere.check.test", f"MX 10 {HOST}.")


def test_null_mx(inst, zone):
    rewrite(zone, DOMAIN, drop=[("@", "MX")], add=["@ IN MX 0 ."])
    _, items = check(inst, expect_rc=1)
    expect(items, "mx", "fail", "null MX")


def test_mx_among_several_is_ok(inst, zone):
    zone.append_zone(DOMAIN, "@ IN MX 20 backup.check.test.")
    _, items = check(inst, expect_rc=0)
    expect(items, "mx", "ok", HOST, "backup.check.test")


# ---------------------------------------------------------------- A, PTR


def test_a_mismatch(inst, zone):
    rewrite(zone, DOMAIN, drop=[("mail", "A")], add=["mail IN A 127.0.0.21"])
    _, items = check(inst, expect_rc=1)
    expect(items, "a", "fail", "127.0.0.21", f"{HOST}. IN A {IP}")
    # the PTR is right but does not come back
    expect(items, "ptr", "fail", "does not resolve back")
    expect(items, "spf-ip", "fail", "fail")


def test_no_a(inst, zone):
    rewrite(zone, DOMAIN, drop=[("mail", "A")])
    _, items = check(inst, expect_rc=1)
    expect(items, "a", "fail", f"publish: {HOST}. IN A {IP}")


def test_no_ptr(inst, zone):
    rewrite(zone, REVERSE, drop=[("20", "PTR")])
    _, items = check(inst, expect_rc=1)
    expect(items, "ptr", "fail", "no PTR", f"reverse DNS (PTR) of {IP} to {HOST}")
    only_failing(items, "ptr")


def test_ptr_mismatch(inst, zone):
    rewrite(zone, REVERSE, drop=[("20", "PTR")], add=["20 IN PTR mail.other.test."])
    _, items = check(inst, expect_rc=1)
    expect(items, "ptr", "fail", "mail.other.test", f"of {IP} to {HOST}")
    only_failing(items, "ptr")


# ---------------------------------------------------------------- SPF


def test_no_spf(inst, zone):
    rewrite(zone, DOMAIN, drop=[("@", "TXT")])
    _, items = check(inst, expect_rc=1)
    expect(items, "spf", "fail", "no SPF record", '"v=spf1 mx -all"')
    expect(items, "spf-ip", "fail", ": none (")
    only_failing(items, "spf", "spf-ip")


def test_two_spf_records(inst, zone):
    set_spf(zone, "v=spf1 mx -all", f"v=spf1 ip4:{IP} -all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf", "fail", "2 SPF records", "merge")
    expect(items, "spf-ip", "fail", ": permerror (")
    only_failing(items, "spf", "spf-ip")


def test_spf_other_txt_is_not_spf(inst, zone):
    zone.append_zone(DOMAIN, '@ IN TXT "google-site-verification=abc"')
    zone.append_zone(DOMAIN, '@ IN TXT "v=spf10 nonsense"')
    _, items = check(inst, expect_rc=0)
    expect(items, "spf", "ok", "v=spf1 mx -all")


def test_spf_not_authorizing_fail(inst, zone):
    set_spf(zone, "v=spf1 ip4:192.0.2.1 -all")
    _, items = check(inst, expect_rc=1)
    it = expect(items, "spf-ip", "fail", ": fail (", f"ip4:{IP}")
    assert "does not designate 127.0.0.20" in it["detail"], it
    expect(items, "spf-all", "ok", "-all")
    only_failing(items, "spf-ip")


def test_spf_exp_is_not_used(inst, zone):
    """The explanation is ours, not text from the domain's DNS (exp=);
    an exp= that never answers costs nothing."""
    set_spf(zone, "v=spf1 ip4:192.0.2.1 -all exp=why.timeout.test")
    _, items = check(inst, expect_rc=1)
    it = expect(items, "spf-ip", "fail", ": fail (")
    assert "check.test does not designate 127.0.0.20 as permitted sender" in it["detail"], it


def test_spf_softfail(inst, zone):
    set_spf(zone, "v=spf1 ip4:192.0.2.1 ~all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-ip", "fail", ": softfail (")
    expect(items, "spf-all", "ok", "~all")
    only_failing(items, "spf-ip")


def test_spf_neutral_question_all(inst, zone):
    set_spf(zone, "v=spf1 ?all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-ip", "fail", ": neutral (")
    expect(items, "spf-all", "warn", "?all", "-all")
    only_failing(items, "spf-ip")


def test_spf_plus_all(inst, zone):
    set_spf(zone, "v=spf1 +all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-ip", "ok", "pass")
    expect(items, "spf-all", "fail", "+all", "-all")
    only_failing(items, "spf-all")


def test_spf_without_all(inst, zone):
    set_spf(zone, f"v=spf1 ip4:{IP}")
    _, items = check(inst, expect_rc=0)
    expect(items, "spf-ip", "ok", "pass")
    expect(items, "spf-all", "warn", "no all")


def test_spf_redirect(inst, zone):
    # mx in the redirected record is _spf.check.test's: it must name the domain
    set_spf(zone, "v=spf1 redirect=_spf.check.test",
            extra=['_spf IN TXT "v=spf1 mx:check.test -all"'])
    _, items = check(inst, expect_rc=0)
    expect(items, "spf-ip", "ok", "pass")
    expect(items, "spf-all", "ok", "redirect=_spf.check.test")
    expect(items, "spf-lookups", "ok", "2 DNS lookups")


def test_spf_syntax_error_permerror(inst, zone):
    set_spf(zone, "v=spf1 ip4:127.0.0.300 -all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-ip", "fail", ": permerror (")
    set_spf(zone, "v=spf1 frobnicate:x.test -all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-ip", "fail", ": permerror (")


def test_spf_temperror(inst, zone):
    """An include whose zone never answers: libspf2's temperror; the
    lookup count cannot follow it."""
    set_spf(zone, "v=spf1 include:timeout.test mx -all")
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-ip", "fail", ": temperror (")
    expect(items, "spf-lookups", "warn")


def hosts(n, start=1):
    return [f"h{i} IN A 192.0.2.{i}" for i in range(start, start + n)]


def test_spf_over_ten_lookups_in_one_record(inst, zone):
    terms = " ".join(f"a:h{i}.check.test" for i in range(1, 12))
    set_spf(zone, f"v=spf1 {terms} ip4:{IP} -all", extra=hosts(11))
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-lookups", "fail", "more than 10")
    expect(items, "spf-ip", "fail", ": permerror (")


def test_spf_over_ten_lookups_through_includes(inst, zone):
    """1 + 5 + 1 + 5 = 12 lookups over three records: libspf2 alone counts
    per record and would not notice."""
    i1 = " ".join(f"a:h{i}.check.test" for i in range(1, 6))
    i2 = " ".join(f"a:h{i}.check.test" for i in range(6, 11))
    set_spf(zone, f"v=spf1 include:i1.check.test ip4:{IP} -all",
            extra=hosts(10) + [f'i1 IN TXT "v=spf1 {i1} include:i2.check.test ?all"',
                               f'i2 IN TXT "v=spf1 {i2} ?all"'])
    _, items = check(inst, expect_rc=1)
    expect(items, "spf-lookups", "fail", "more than 10")
    expect(items, "spf-ip", "fail", ": permerror (", "10 DNS lookups")


def test_spf_exactly_ten_lookups(inst, zone):
    i1 = " ".join(f"a:h{i}.check.test" for i in range(1, 6))
    i2 = " ".join(f"a:h{i}.check.test" for i in range(6, 9))
    set_spf(zone, f"v=spf1 include:i1.check.test ip4:{IP} -all",
            extra=hosts(8) + [f'i1 IN TXT "v=spf1 {i1} include:i2.check.test ?all"',
                              f'i2 IN TXT "v=spf1 {i2} ?all"'])
    _, items = check(inst, expect_rc=0)
    expect(items, "spf-lookups", "ok", "10 DNS lookups")
    expect(items, "spf-ip", "ok", "pass")


def test_spf_mx_hosts_are_not_extra_lookups(inst, zone):
    """The A lookups of an mx term's hosts belong to that term."""
    extra = [f"@ IN MX {20 + i} mx{i}.check.test." for i in range(5)] + \
        [f"mx{i} IN A 192.0.2.{50 + i}" for i in range(5)]
    terms = " ".join(f"a:h{i}.check.test" for i in range(1, 9))
    set_spf(zone, f"v=spf1 {terms} mx ip4:{IP} -all", extra=hosts(8) + extra)
    _, items = check(inst, expect_rc=0)
    expect(items, "spf-lookups", "ok", "9 DNS lookups")
    expect(items, "spf-ip", "ok", "pass")


# ---------------------------------------------------------------- DKIM


def test_dkim_key_missing(inst, zone):
    rewrite(zone, DOMAIN, drop=[("s1._domainkey", "TXT")])
    _, items = check(inst, expect_rc=1)
    it = expect(items, "dkim", "fail", "s1._domainkey.check.test", "publish: ")
    assert inst.s1.split("p=")[1][:40] in it["fix"].replace('" "', ""), it
    only_failing(items, "dkim")


def test_dkim_key_different(inst, zone):
    rewrite(zone, DOMAIN, drop=[("s1._domainkey", "TXT")],
            add=[f"s1._domainkey IN TXT {txt_strings(inst.old)}"])
    _, items = check(inst, expect_rc=1)
    expect(items, "dkim", "fail", "not the key", "replace it with: ")
    only_failing(items, "dkim")


def test_dkim_key_published_with_spaces(inst, zone):
    """Whitespace inside p= (a long key split by hand) is the same key."""
    v = inst.s1.replace("p=", "p= ", 1)
    p = v.index("p= ") + 3
    v = v[:p + 60] + " " + v[p + 60:]
    rewrite(zone, DOMAIN, drop=[("s1._domainkey", "TXT")],
            add=[f"s1._domainkey IN TXT {txt_strings(v)}"])
    _, items = check(inst, expect_rc=0)
    expect(items, "dkim", "ok")


def test_dkim_key_file_unreadable(inst, zone):
    key = inst.state_dir / "dkim" / f"{DOMAIN}.s1.key"
    moved = key.with_name("moved.key")
    key.rename(moved)
    try:
        _, items = check(inst, expect_rc=1)
    finally:
        moved.rename(key)
    expect(items, "dkim", "fail", "cannot be read", f"mailadm dkim retire {DOMAIN} s1")


def test_domain_without_dkim_key(inst, zone):
    """A hosted domain without a key: a warning (its mail goes out
    unsigned).  nokey.check.test publishes nothing else either."""
    inst.mailadm("domain", "add", "nokey.check.test", check=True)
    _, items = check(inst, expect_rc=1, domain="nokey.check.test")
    expect(items, "dkim", "warn", "no DKIM key", "mailadm dkim keygen nokey.check.test")
    expect(items, "mx", "fail", "no MX record")
    expect(items, "spf", "fail", "no SPF record")
    expect(items, "spf-ip", "fail", ": none (")
    expect(items, "dmarc", "fail", "no DMARC record")


# ---------------------------------------------------------------- DMARC


def set_dmarc(net, *records):
    rewrite(net, DOMAIN, drop=[("_dmarc", "TXT")],
            add=[f'_dmarc IN TXT "{r}"' for r in records])


def test_no_dmarc(inst, zone):
    rewrite(zone, DOMAIN, drop=[("_dmarc", "TXT")])
    _, items = check(inst, expect_rc=1)
    expect(items, "dmarc", "fail", "no DMARC record", "_dmarc.check.test. IN TXT",
           "v=DMARC1; p=quarantine")
    only_failing(items, "dmarc")


def test_dmarc_p_none_warns(inst, zone):
    set_dmarc(zone, "v=DMARC1; p=none; rua=mailto:postmaster@check.test")
    _, items = check(inst, expect_rc=0)
    expect(items, "dmarc", "warn", "p=none", "p=quarantine")


@pytest.mark.parametrize("record,why", [
    ("v=DMARC1; p=bogus", "p=bogus"),
    ("v=DMARC1; rua=mailto:postmaster@check.test", "no p="),
    ("v=DMARC1; p=reject; pct=150", "pct=150"),
    ("v=DMARC1; p=reject; adkim=x", "adkim=x"),
    ("v=DMARC1 p=reject", "v=DMARC1"),
])
def test_dmarc_unparseable(inst, zone, record, why):
    set_dmarc(zone, record)
    _, items = check(inst, expect_rc=1)
    expect(items, "dmarc", "fail", "does not parse", why)


def test_dmarc_record_must_start_with_version(inst, zone):
    """RFC 7489 6.6.3: a TXT record not starting with v=DMARC1 is not one."""
    set_dmarc(zone, "p=reject; v=DMARC1")
    _, items = check(inst, expect_rc=1)
    expect(items, "dmarc", "fail", "no DMARC record")


def test_two_dmarc_records(inst, zone):
    set_dmarc(zone, "v=DMARC1; p=reject", "v=DMARC1; p=none")
    _, items = check(inst, expect_rc=1)
    expect(items, "dmarc", "fail", "2 DMARC records")


def test_dmarc_reject_ok(inst, zone):
    set_dmarc(zone, "v=DMARC1;p=Reject;sp=quarantine")
    _, items = check(inst, expect_rc=0)
    expect(items, "dmarc", "ok", "p=reject", "sp=quarantine")


# ---------------------------------------------------------------- DNSBL


def test_public_ip_listed(inst, zone):
    zone.append_zone(BL, f'20.0.0.127 IN A 127.0.0.2\n'
                         f'20.0.0.127 IN TXT "{IP} is listed: see https://bl.test/{IP}"')
    _, items = check(inst, expect_rc=1)
    expect(items, "dnsbl", "fail", f"{IP} is listed on {BL}",
           f"see https://bl.test/{IP}", "delisting")
    only_failing(items, "dnsbl")


def with_conf(inst, tmp_path, **sections):
    """A copy of inst's config with overrides ({section: {key: value}})."""
    ov = {k: dict(v) for k, v in inst.overrides.items()}
    for sec, kv in sections.items():
        ov.setdefault(sec, {}).update(kv)
    saved = inst.conf
    try:
        inst.conf = tmp_path / "buzon.conf"
        inst.write_conf(ov)
        return inst.conf
    finally:
        inst.conf = saved
        inst.write_conf(inst.overrides)


def test_dnsbl_zone_timing_out_is_a_warning(inst, zone, tmp_path):
    conf = with_conf(inst, tmp_path, policy={"dnsbl": f"timeout.test {BL}"})
    _, items = check(inst, conf=conf, expect_rc=0)
    got = [it for it in items if it["check"] == "dnsbl"]
    assert [it["status"] for it in got] == ["warn", "ok"], got
    assert "timeout.test did not answer" in got[0]["detail"], got


def test_listed_on_second_zone(inst, zone, tmp_path):
    zone.append_zone(BL, "20.0.0.127 IN A 127.0.0.2")
    conf = with_conf(inst, tmp_path, policy={"dnsbl": f"d.test {BL}"})
    _, items = check(inst, conf=conf, expect_rc=1)
    got = [(it["status"], it["detail"]) for it in items if it["check"] == "dnsbl"]
    assert got == [("ok", f"{IP} is not listed on d.test"),
                   ("fail", f"{IP} is listed on {BL}")], got


def test_no_dnsbl_configured(inst, zone, tmp_path):
    conf = with_conf(inst, tmp_path, policy={"dnsbl": ""})
    _, items = check(inst, conf=conf, expect_rc=0)
    expect(items, "dnsbl", "ok", "no DNSBL zones")


# ---------------------------------------------------------------- config


def test_public_ip_missing(inst, zone, tmp_path):
    conf = with_conf(inst, tmp_path, top={"public_ip": None})
    _, items = check(inst, conf=conf, expect_rc=1)
    for name in ("a", "ptr", "spf-ip"):
        expect(items, name, "fail", "public_ip is not set", "set public_ip in buzon.conf")
    expect(items, "dnsbl", "warn", "set public_ip in buzon.conf")
    expect(items, "mx", "ok")


def test_public_ip_not_an_address(inst, zone, tmp_path):
    conf = with_conf(inst, tmp_path, top={"public_ip": "mail.check.test"})
    _, items = check(inst, conf=conf, expect_rc=1)
    expect(items, "a", "fail", "not an IPv4 address", "public_ip")


def test_ipv6(inst, zone, tmp_path):
    """public_ip6: AAAA, the ip6.arpa PTR, SPF for the IPv6 address
    (the mx term's AAAA) and the DNSBL query in nibbles."""
    ip6 = "fd00::20"
    nibbles = "0.2.0.0." + "0." * 26 + "d.f.ip6.arpa"
    zone.append_zone(DOMAIN, f"mail IN AAAA {ip6}")
    zone.write_zone("d.f.ip6.arpa", "$ORIGIN d.f.ip6.arpa.\n$TTL 300\n"
                    "@ IN SOA ns.check.test. hostmaster.check.test. ( 1 3600 600 86400 60 )\n"
                    f"{nibbles}. IN PTR {HOST}.\n")
    conf = with_conf(inst, tmp_path, top={"public_ip6": ip6})
    _, items = check(inst, conf=conf, expect_rc=0)
    expect(items, "aaaa", "ok", ip6)
    expect(items, "ptr6", "ok", f"{ip6} -> {HOST} -> {ip6}")
    expect(items, "spf-ip6", "ok", "pass")
    got = [it["detail"] for it in items if it["check"] == "dnsbl"]
    assert got == [f"{IP} is not listed on {BL}", f"{ip6} is not listed on {BL}"], got

    rewrite(zone, DOMAIN, drop=[("mail", "AAAA")], add=["mail IN AAAA fd00::21"])
    _, items = check(inst, conf=conf, expect_rc=1)
    expect(items, "aaaa", "fail", "fd00::21", f"IN AAAA {ip6}")
    expect(items, "spf-ip6", "fail", ": fail (")
    expect(items, "spf-ip", "ok", "pass")


def test_zone_files_unchanged(net):
    """The served copy is reset after each test (fresh_zones)."""
    assert net.zone_file(DOMAIN).read_text() == (DNS_DIR / f"{DOMAIN}.zone").read_text()
