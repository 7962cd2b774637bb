"""mailadm: the command-line contract of DESIGN.md.

Exit 0 on success, 1 on a user error with one line on stderr, 2 on a
usage error.  Checks what the admin sees (exit code, stdout/--json,
stderr) and what lands on disk (dirs, modes, Maildirs, the DB).
"""

import json
import sqlite3
import stat
import subprocess

import pytest

from buzon import DOMAIN, t


def run(adm, *args, **kw):
    return adm.mailadm(*args, **kw)


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


def usage_error(cp, what):
    assert cp.returncode == 2, \
        f"{what}: exit code {cp.returncode}, expected 2 (usage error); " \
        f"stderr: {cp.stderr.strip()!r}"
    assert cp.stderr.strip(), f"{what}: exit 2 but nothing on stderr"


def jlist(adm, *args):
    cp = ok(adm, *args, json=True)
    try:
        data = json.loads(cp.stdout)
    except ValueError as e:
        raise AssertionError(f"`mailadm --json {' '.join(args)}` printed invalid JSON "
                             f"({e}): {cp.stdout[:500]!r}")
    assert isinstance(data, list), \
        f"`mailadm --json {' '.join(args)}` printed {type(data).__name__}, expected a JSON array"
    return data


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def inited(adm):
    ok(adm, "init")
    return adm


@pytest.fixture
def dom(inited):
    ok(inited, "domain", "add", DOMAIN)
    return inited


def add_user(adm, address, password="a-good-password", quota=None):
    args = ["user", "add", address, "--password-stdin"]
    if quota is not None:
        args += ["--quota", quota]
    return run(adm, *args, input=password + "\n")


def users_by_address(adm):
    return {u["address"].lower(): u for u in jlist(adm, "user", "list")}


def db_rows(adm, sql, params=()):
    con = sqlite3.connect(f"file:{adm.database}?mode=ro", uri=True, timeout=t(5))
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


# ------------------------------------------------------------------ init


def test_init_creates_dirs_db_and_cert(adm):
    adm.tls_cert.parent.rmdir()  # init must create the cert's directory too
    ok(adm, "init")
    for d in (adm.state_dir, adm.mail_dir, adm.queue_dir, adm.tls_cert.parent):
        assert d.is_dir(), f"after init, {d} is not a directory"
    assert adm.database.is_file(), f"after init, no database file at {adm.database}"
    assert adm.tls_cert.is_file(), f"after init, no certificate at {adm.tls_cert}"
    assert adm.tls_key.is_file(), f"after init, no key at {adm.tls_key}"


def test_init_db_and_key_are_0600(adm):
    ok(adm, "init")
    assert mode(adm.database) == 0o600, \
        f"database mode is {oct(mode(adm.database))}, expected 0o600"
    assert mode(adm.tls_key) == 0o600, \
        f"TLS key mode is {oct(mode(adm.tls_key))}, expected 0o600"
    for side in ("-wal", "-shm"):
        p = adm.database.with_name(adm.database.name + side)
        if p.exists():
            assert mode(p) & 0o077 == 0, f"{p.name} mode is {oct(mode(p))}: readable by others"


def test_init_db_stays_0600_after_writes(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    assert mode(dom.database) == 0o600, \
        f"database mode after user add is {oct(mode(dom.database))}, expected 0o600"


def test_init_cert_is_self_signed_and_matches_key(adm, tool):
    ok(adm, "init")
    openssl = tool("openssl")
    x = subprocess.run([openssl, "x509", "-in", str(adm.tls_cert), "-noout",
                        "-subject", "-issuer", "-pubkey"],
                       capture_output=True, text=True, timeout=t(30))
    assert x.returncode == 0, f"openssl cannot read the certificate: {x.stderr.strip()}"
    lines = x.stdout.splitlines()
    subject = next(ln for ln in lines if ln.startswith("subject"))
    issuer = next(ln for ln in lines if ln.startswith("issuer"))
    assert subject.split("=", 1)[1].strip() == issuer.split("=", 1)[1].strip(), \
        f"certificate is not self-signed: {subject!r} vs {issuer!r}"
    cert_pub = x.stdout[x.stdout.index("-----BEGIN PUBLIC KEY"):]
    k = subprocess.run([openssl, "pkey", "-in", str(adm.tls_key), "-pubout"],
                       capture_output=True, text=True, timeout=t(30))
    assert k.returncode == 0, f"openssl cannot read the key: {k.stderr.strip()}"
    assert k.stdout.strip() == cert_pub.strip(), "the key does not belong to the certificate"


def test_init_twice_is_safe(adm):
    ok(adm, "init")
    ok(adm, "domain", "add", DOMAIN)
    assert add_user(adm, "alice@example.test").returncode == 0
    cert = adm.tls_cert.read_bytes()
    key = adm.tls_key.read_bytes()
    ok(adm, "init")
    assert adm.tls_cert.read_bytes() == cert, "second init replaced the existing certificate"
    assert adm.tls_key.read_bytes() == key, "second init replaced the existing key"
    assert "alice@example.test" in users_by_address(adm), \
        "second init lost the user added before it"
    assert [d["name"] for d in jlist(adm, "domain", "list")] == [DOMAIN]


def test_init_recreates_missing_cert(adm):
    ok(adm, "init")  # makes a cert
    cert = adm.tls_cert.read_bytes()
    adm.tls_cert.unlink()
    adm.tls_key.unlink()
    ok(adm, "init")  # missing again: a new one is made
    assert adm.tls_cert.is_file() and adm.tls_key.is_file(), \
        "init did not recreate a missing certificate/key"
    assert adm.tls_cert.read_bytes() != cert, "recreated certificate is identical to the old one"


def test_missing_config_is_user_error(adm):
    adm.conf.unlink()
    cp = run(adm, "domain", "list")
    user_error(cp, "mailadm with a missing config file", contains=str(adm.conf))


def test_bad_config_names_file_and_line(adm):
    adm.conf.write_text(adm.conf_text + "bogus_key = 1\n")
    cp = run(adm, "init")
    n = len(adm.conf_text.splitlines()) + 1
    user_error(cp, "mailadm with an unknown config key", contains=f"{adm.conf}:{n}")
    assert "bogus_key" in cp.stderr, f"stderr {cp.stderr!r} does not name the key"


def test_command_before_init_is_user_error(adm):
    cp = run(adm, "domain", "list")
    user_error(cp, "domain list before init")


# ------------------------------------------------------------------ usage


@pytest.mark.parametrize("args", [
    ("frobnicate",),
    (),
    ("domain",),
    ("domain", "frob"),
    ("domain", "add"),
    ("domain", "add", "a.test", "b.test"),
    ("user", "add"),
    ("user", "add", "x@example.test", "--no-such-option"),
    ("alias", "add", "list@example.test"),
    ("user", "quota", "alice@example.test"),
])
def test_usage_errors_exit_2(inited, args):
    usage_error(run(inited, *args), f"mailadm {' '.join(args)}")


# ------------------------------------------------------------------ domains


def test_domain_add_list(inited):
    ok(inited, "domain", "add", DOMAIN)
    ok(inited, "domain", "add", "other.test")
    cp = ok(inited, "domain", "list")
    assert DOMAIN in cp.stdout and "other.test" in cp.stdout, \
        f"domain list shows {cp.stdout!r}, expected both domains"
    doms = {d["name"]: d for d in jlist(inited, "domain", "list")}
    assert set(doms) == {DOMAIN, "other.test"}, f"--json domain list names: {sorted(doms)}"
    for d in doms.values():
        for k in ("name", "active", "created_at", "users", "aliases"):
            assert k in d, f"--json domain list entry {d} lacks {k!r}"
        assert d["active"] is True or d["active"] == 1, f"new domain not active: {d}"
        assert d["users"] == 0 and d["aliases"] == 0, f"new domain counts: {d}"


def test_domain_lower_cased(inited):
    ok(inited, "domain", "add", "MiXeD.Example.TEST")
    names = [d["name"] for d in jlist(inited, "domain", "list")]
    assert names == ["mixed.example.test"], f"domain stored as {names}, expected lower case"


def test_domain_add_duplicate_is_error(dom):
    user_error(run(dom, "domain", "add", DOMAIN), "domain add of an existing domain")
    user_error(run(dom, "domain", "add", DOMAIN.upper()), "domain add of an existing domain (upper case)")


@pytest.mark.parametrize("bad", ["not a domain", "-bad.test", "a..test", "a/b.test", "x" * 300 + ".test", ""])
def test_domain_add_invalid(inited, bad):
    cp = run(inited, "domain", "add", bad)
    assert cp.returncode in (1, 2), \
        f"domain add {bad!r}: exit {cp.returncode}, expected 1 (or 2); stderr {cp.stderr!r}"
    assert jlist(inited, "domain", "list") == [], f"invalid domain {bad!r} was stored"


def test_domain_json_counts(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    assert add_user(dom, "bob@example.test").returncode == 0
    ok(dom, "alias", "add", "list@example.test", "alice@example.test")
    ok(dom, "alias", "add", "list@example.test", "bob@example.test")
    d = jlist(dom, "domain", "list")[0]
    assert d["users"] == 2, f"domain users count {d['users']}, expected 2"
    # one alias source with two targets: 2 rows, 1 address; either reading is fine
    assert d["aliases"] in (1, 2), f"domain aliases count {d['aliases']}, expected 2 (or 1)"


def test_domain_del_empty(dom):
    ok(dom, "domain", "del", DOMAIN)
    assert jlist(dom, "domain", "list") == []


def test_domain_del_unknown(inited):
    user_error(run(inited, "domain", "del", "nope.test"), "domain del of an unknown domain")


def test_domain_del_with_users_needs_force(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    user_error(run(dom, "domain", "del", DOMAIN), "domain del with users, no --force")
    assert [d["name"] for d in jlist(dom, "domain", "list")] == [DOMAIN], \
        "domain was deleted without --force"
    ok(dom, "domain", "del", DOMAIN, "--force")
    assert jlist(dom, "domain", "list") == []
    assert jlist(dom, "user", "list") == [], "users of a force-deleted domain remain"


# ------------------------------------------------------------------ users


def test_user_add_and_json_list(dom):
    cp = add_user(dom, "alice@example.test", quota="2G")
    assert cp.returncode == 0, f"user add exited {cp.returncode}: {cp.stderr!r}"
    users = jlist(dom, "user", "list")
    assert len(users) == 1, f"user list: {users}"
    u = users[0]
    for k in ("address", "domain", "quota_bytes", "active", "created_at"):
        assert k in u, f"--json user list entry {u} lacks {k!r}"
    assert u["address"] == "alice@example.test"
    assert u["domain"] == DOMAIN
    assert u["quota_bytes"] == 2 * 1024 ** 3, f"quota_bytes {u['quota_bytes']}, expected 2G"
    assert u["active"] is True or u["active"] == 1, f"new user not active: {u}"
    assert isinstance(u["created_at"], (int, str)) and u["created_at"], \
        f"created_at is {u['created_at']!r}"
    cp = ok(dom, "user", "list")
    assert "alice@example.test" in cp.stdout, f"user list printed {cp.stdout!r}"


def test_user_password_is_hashed(dom):
    assert add_user(dom, "alice@example.test", password="s3cret-pass").returncode == 0
    rows = db_rows(dom, "SELECT password_hash FROM users WHERE address = ?",
                   ("alice@example.test",))
    assert rows, "no users row for alice@example.test"
    h = rows[0][0]
    assert h.startswith("$y$"), f"password_hash {h[:10]!r}..., expected a yescrypt $y$ hash"
    assert "s3cret-pass" not in h


def test_user_maildir_created(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    md = dom.maildir("alice@example.test")
    assert md == dom.mail_dir / "example.test" / "alice"
    for sub in ("cur", "new", "tmp"):
        assert (md / sub).is_dir(), f"{md / sub} missing after user add"
    for folder in (".Sent", ".Drafts", ".Trash", ".Junk", ".Archive"):
        for sub in ("cur", "new", "tmp"):
            assert (md / folder / sub).is_dir(), f"{md / folder / sub} missing after user add"
    assert mode(md) & 0o077 == 0, f"Maildir {md} mode {oct(mode(md))} is open to others"


def test_user_maildir_local_part_lower_cased(dom):
    assert add_user(dom, "Dave.Smith@Example.TEST").returncode == 0
    users = jlist(dom, "user", "list")
    assert len(users) == 1
    assert users[0]["domain"] == DOMAIN, f"domain stored as {users[0]['domain']!r}"
    assert users[0]["address"].lower() == "dave.smith@example.test"
    assert users[0]["address"].endswith("@example.test"), \
        f"address stored as {users[0]['address']!r}: domain part must be lower-cased"
    md = dom.mail_dir / "example.test" / "dave.smith"
    assert (md / "new").is_dir(), f"Maildir not at {md} (local part lower-cased)"


def test_user_add_unknown_domain(inited):
    cp = add_user(inited, "alice@nowhere.test")
    user_error(cp, "user add in an unknown domain", contains="mailadm domain add")
    assert jlist(inited, "user", "list") == []


@pytest.mark.parametrize("bad", ["not-an-address", "alice@", "@example.test", "a b@example.test",
                                 "alice@@example.test", "al/ice@example.test", "..@example.test",
                                 "x" * 65 + "@example.test"])
def test_user_add_invalid_address(dom, bad):
    cp = add_user(dom, bad)
    user_error(cp, f"user add {bad!r}")
    assert jlist(dom, "user", "list") == [], f"invalid address {bad!r} was stored"


def test_user_add_duplicate(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    user_error(add_user(dom, "alice@example.test"), "user add of an existing user")
    user_error(add_user(dom, "ALICE@example.test"), "user add of an existing user (other case)")
    assert len(jlist(dom, "user", "list")) == 1


def test_user_add_without_password_stdin_not_tty(dom):
    cp = dom.mailadm("user", "add", "alice@example.test", input="pw\npw\n")
    user_error(cp, "user add without --password-stdin and stdin not a TTY")
    assert jlist(dom, "user", "list") == []


def test_user_add_bad_quota(dom):
    cp = add_user(dom, "alice@example.test", quota="lots")
    assert cp.returncode in (1, 2), f"--quota lots: exit {cp.returncode}, expected 1 or 2"
    assert jlist(dom, "user", "list") == []


def test_user_del(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    assert add_user(dom, "bob@example.test").returncode == 0
    ok(dom, "user", "del", "alice@example.test")
    assert set(users_by_address(dom)) == {"bob@example.test"}
    user_error(run(dom, "user", "del", "alice@example.test"), "user del of a deleted user")


def test_user_passwd_changes_hash(dom):
    assert add_user(dom, "alice@example.test", password="first-password").returncode == 0
    q = "SELECT password_hash FROM users WHERE address = ?"
    before = db_rows(dom, q, ("alice@example.test",))[0][0]
    ok(dom, "user", "passwd", "alice@example.test", "--password-stdin",
       input="second-password\n")
    after = db_rows(dom, q, ("alice@example.test",))[0][0]
    assert after != before and after.startswith("$y$"), \
        f"password_hash before {before[:12]!r} after {after[:12]!r}: expected a new $y$ hash"
    user_error(run(dom, "user", "passwd", "nobody@example.test", "--password-stdin",
                   input="x-password\n"), "passwd of an unknown user")


def test_user_quota(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    ok(dom, "user", "quota", "alice@example.test", "5M")
    assert users_by_address(dom)["alice@example.test"]["quota_bytes"] == 5 * 1024 ** 2
    ok(dom, "user", "quota", "alice@example.test", "0")
    assert users_by_address(dom)["alice@example.test"]["quota_bytes"] == 0
    user_error(run(dom, "user", "quota", "nobody@example.test", "1M"), "quota of an unknown user")


def test_user_disable_enable(dom):
    assert add_user(dom, "alice@example.test").returncode == 0
    ok(dom, "user", "disable", "alice@example.test")
    u = users_by_address(dom)["alice@example.test"]
    assert u["active"] is False or u["active"] == 0, f"after disable: {u}"
    ok(dom, "user", "enable", "alice@example.test")
    u = users_by_address(dom)["alice@example.test"]
    assert u["active"] is True or u["active"] == 1, f"after enable: {u}"
    user_error(run(dom, "user", "disable", "nobody@example.test"), "disable of an unknown user")


def test_user_list_empty_json(dom):
    assert jlist(dom, "user", "list") == []


# ------------------------------------------------------------------ aliases


@pytest.fixture
def users(dom):
    for a in ("alice@example.test", "bob@example.test"):
        assert add_user(dom, a).returncode == 0
    return dom


def aliases(adm):
    return sorted((a["source"], a["target"], a["kind"]) for a in jlist(adm, "alias", "list"))


def test_alias_add_list_kinds(users):
    ok(users, "alias", "add", "list@example.test", "alice@example.test")
    ok(users, "alias", "add", "list@example.test", "bob@example.test")
    ok(users, "alias", "add", "fwd@example.test", "someone@outside.test")
    ok(users, "alias", "add", "@example.test", "alice@example.test")
    got = aliases(users)
    assert got == sorted([
        ("list@example.test", "alice@example.test", "alias"),
        ("list@example.test", "bob@example.test", "alias"),
        ("fwd@example.test", "someone@outside.test", "redirect"),
        ("@example.test", "alice@example.test", "alias"),
    ]), f"--json alias list gave {got}"
    cp = ok(users, "alias", "list")
    for s in ("list@example.test", "fwd@example.test", "someone@outside.test"):
        assert s in cp.stdout, f"alias list output lacks {s!r}: {cp.stdout!r}"


def test_alias_empty_json(users):
    assert jlist(users, "alias", "list") == []


def test_alias_source_outside_our_domains(users):
    cp = run(users, "alias", "add", "x@other.test", "alice@example.test")
    user_error(cp, "alias add with a SOURCE outside our domains")
    cp = run(users, "alias", "add", "@other.test", "alice@example.test")
    user_error(cp, "alias add with a catch-all outside our domains")
    assert jlist(users, "alias", "list") == []


@pytest.mark.parametrize("src,dst", [("not-an-address", "alice@example.test"),
                                     ("list@example.test", "not an address"),
                                     ("list@example.test", "")])
def test_alias_invalid(users, src, dst):
    cp = run(users, "alias", "add", src, dst)
    assert cp.returncode in (1, 2), f"alias add {src!r} {dst!r}: exit {cp.returncode}"
    assert jlist(users, "alias", "list") == []


def test_alias_duplicate(users):
    ok(users, "alias", "add", "list@example.test", "alice@example.test")
    user_error(run(users, "alias", "add", "list@example.test", "alice@example.test"),
               "alias add of an existing pair")


def test_alias_del_pair_and_all(users):
    ok(users, "alias", "add", "list@example.test", "alice@example.test")
    ok(users, "alias", "add", "list@example.test", "bob@example.test")
    ok(users, "alias", "add", "other@example.test", "bob@example.test")
    ok(users, "alias", "del", "list@example.test", "alice@example.test")
    assert aliases(users) == sorted([("list@example.test", "bob@example.test", "alias"),
                                     ("other@example.test", "bob@example.test", "alias")])
    ok(users, "alias", "add", "list@example.test", "alice@example.test")
    ok(users, "alias", "del", "list@example.test")
    assert aliases(users) == [("other@example.test", "bob@example.test", "alias")]
    user_error(run(users, "alias", "del", "list@example.test"), "alias del of a missing alias")
    user_error(run(users, "alias", "del", "other@example.test", "alice@example.test"),
               "alias del of a missing pair")
