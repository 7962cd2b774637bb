"""Two Buzón instances that send mail to each other through DNS, inside a
private network namespace (netns.py) whose resolver is our DNS server
serving tests/dns/*.zone.

    A = mail.a.test on 127.0.0.2   domain a.test, users alice@a.test, x@a.test
        smtp on 127.0.0.2:25, submission/submissions on free ports,
        [smtpd] outbound_ip = 127.0.0.2
    B = mx.b.test on 127.0.0.3     domains b.test, c.test, d.test, e.test;
        users bob@b.test, carol@c.test, dave@d.test, erin@e.test
        smtp on 127.0.0.3:25 (MX delivery has no port), submission and
        submissions on free ports, [smtpd] outbound_ip = 127.0.0.3

    DNS (tests/dns): a.test MX mail.a.test (127.0.0.2); b.test MX mx.b.test
    (127.0.0.3); c.test MX 10 mx1 (127.0.0.4, nothing listens) and MX 20
    mx2 (127.0.0.3); d.test no MX, A 127.0.0.3; nullmx.test MX 0 .;
    e.test is in no zone (REFUSED: only a relayhost can reach it).

Fixtures (import them into the test module; the module must use `net`):

    net        module scope: the PrivateNet (enter on first use, leave at
               the end of the module).  net.append_zone("a.test", LINE),
               net.dns_query(name, "MX"), net.zone_dir, net.reset_zones().
    fresh_zones  function scope: resets the zones after the test (use it
               in pytestmark next to net, so tests stay independent).
    a_nostart  A with accounts, not started;  a  the same, started
    b_nostart  B likewise;                    b  the same, started
               Teardown: SIGTERM, exit code 0 (like conftest's instance).

    reconfigure(inst, smtpd={...}, top={...})  rewrite inst's config with
               more overrides (keeps the submission listeners); before
               start_smtpd, or stop/start around it.

Helpers: submit() (smtplib, STARTTLS or implicit TLS, AUTH PLAIN),
queue_list() (mailadm --json queue list), flush(), wait_for() and the
DSN readers.
"""

import email
import email.policy
import json
import smtplib
import uuid

import pytest

import buzon
from buzon import t, wait_until
from netns import PrivateNet

A_HOST, B_HOST = "127.0.0.2", "127.0.0.3"
A_NAME, B_NAME = "mail.a.test", "mx.b.test"
ALICE, ALICE_PW = "alice@a.test", "alice-a-secret-pw"
X_A, X_A_PW = "x@a.test", "x-a-secret-pw"
BOB, BOB_PW = "bob@b.test", "bob-b-secret-pw"
CAROL, DAVE, ERIN = "carol@c.test", "dave@d.test", "erin@e.test"
A_USERS = {ALICE: ALICE_PW, X_A: X_A_PW}
B_USERS = {BOB: BOB_PW}
B_EXTRA = {"c.test": {CAROL: "carol-c-secret-pw"}, "d.test": {DAVE: "dave-d-secret-pw"},
           "e.test": {ERIN: "erin-e-secret-pw"}}


# ---------------------------------------------------------------- namespace


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    before = _resolver_files()
    n = PrivateNet(tmp_path_factory.mktemp("netns"))
    n.enter()
    try:
        yield n
    finally:
        n.leave()
        after = _resolver_files()
        assert after == before, \
            "after leaving the private namespace /etc/resolv.conf or /etc/nsswitch.conf " \
            f"differ from before: {before!r} -> {after!r}"


@pytest.fixture
def fresh_zones(net):
    """The test may append to the served zones: they are reset after it."""
    yield net
    net.reset_zones()


def _resolver_files():
    out = []
    for p in ("/etc/resolv.conf", "/etc/nsswitch.conf"):
        try:
            with open(p) as f:
                out.append(f.read())
        except OSError as e:
            out.append(repr(e))
    return out


# ---------------------------------------------------------------- instances


def make_instance(root, host, hostname, domain, users, extra_domains=None, overrides=None):
    """An Instance on `host` (smtp on port 25) with submission listeners,
    `mailadm init`, its domains and users; not started."""
    inst = buzon.Instance(root, host=host, hostname=hostname, domain=domain,
                          passwords=users, smtp_port=25)
    inst.base_overrides = {}
    reconfigure(inst, **(overrides or {}))
    inst.setup_accounts()
    for dom, dusers in (extra_domains or {}).items():
        inst.mailadm("domain", "add", dom, check=True)
        for addr, pw in dusers.items():
            inst.add_user(addr, pw)
    return inst


def reconfigure(inst, **sections):
    """Merge overrides ({section: {key: value}}; None removes a key) into
    the instance's config and write it again, with the submission
    listeners.  Takes effect at the next start_smtpd."""
    for sec, kv in sections.items():
        inst.base_overrides.setdefault(sec, {}).update(kv)
    inst.write_conf(inst.base_overrides)
    inst.add_submission_listeners()


def make_a(root, **overrides):
    # relayhost = "": route by MX (buzon.py's base config sends nowhere)
    ov = {"smtpd": {"outbound_ip": A_HOST, "relayhost": None}}
    for sec, kv in overrides.items():
        ov.setdefault(sec, {}).update(kv)
    return make_instance(root, A_HOST, A_NAME, "a.test", A_USERS, overrides=ov)


def make_b(root, **overrides):
    ov = {"smtpd": {"outbound_ip": B_HOST, "relayhost": None}}
    for sec, kv in overrides.items():
        ov.setdefault(sec, {}).update(kv)
    return make_instance(root, B_HOST, B_NAME, "b.test", B_USERS, B_EXTRA, overrides=ov)


def finish(inst):
    rc = inst.stop_smtpd()
    assert rc == 0, (f"smtpd of {inst.hostname} exited with code {rc} after SIGTERM, "
                     f"expected 0; stderr:\n{buzon.tail(inst.stderr_path)}")


@pytest.fixture
def a_nostart(net, tmp_path):
    inst = make_a(tmp_path / "a")
    yield inst
    finish(inst)


@pytest.fixture
def b_nostart(net, tmp_path):
    inst = make_b(tmp_path / "b")
    yield inst
    finish(inst)


@pytest.fixture
def a(a_nostart):
    a_nostart.start_smtpd()
    return a_nostart


@pytest.fixture
def b(b_nostart):
    b_nostart.start_smtpd()
    return b_nostart


# ---------------------------------------------------------------- sending


def message(sender, to, subject="hello", body="Hello from the test.\n", msgid=None,
            extra=()):
    """(msgid, CRLF bytes) of a small message."""
    return buzon.make_message(subject=subject, body=body, msgid=msgid, sender=sender,
                              to=to, extra_headers=extra)


def submit(inst, rcpts, msg, sender=ALICE, password=ALICE_PW, implicit_tls=False):
    """Send msg as `sender` through inst's submission port (STARTTLS) or
    submissions port (implicit TLS) with AUTH PLAIN.  Returns smtplib's
    refused-recipients dict (empty when all were accepted)."""
    ctx = buzon.client_tls_context()
    if implicit_tls:
        s = smtplib.SMTP_SSL(inst.host, inst.submissions_port, timeout=t(15), context=ctx)
    else:
        s = smtplib.SMTP(inst.host, inst.submission_port, timeout=t(15))
    try:
        s.ehlo("client.a.test")
        if not implicit_tls:
            s.starttls(context=ctx)
            s.ehlo("client.a.test")
        s.login(sender, password)
        return s.sendmail(sender, list(rcpts), msg)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def send_25(inst, sender, rcpts, msg):
    """A plain port-25 transaction on inst (as another MTA would); returns
    the final reply (asserts MAIL/RCPT/DATA were accepted)."""
    with inst.connect() as c:
        r = c.mail_tx(sender, rcpts, msg)
        c.quit()
    return r


# ---------------------------------------------------------------- queue


def queue_list(inst):
    cp = inst.mailadm("queue", "list", json=True)
    assert cp.returncode == 0, \
        f"`mailadm --json queue list` exited {cp.returncode}; stderr: {cp.stderr.strip()!r}"
    try:
        data = json.loads(cp.stdout)
    except ValueError as e:
        raise AssertionError(f"`mailadm --json queue list` printed no JSON ({e}): "
                             f"{cp.stdout[:500]!r}") from None
    assert isinstance(data, list), f"queue list is not a JSON array: {data!r}"
    return data


def flush(inst):
    inst.mailadm("queue", "flush", check=True)


def wait_for(inst, address, n=1, msgid=None, timeout=None, what=None):
    """Wait until address's INBOX on inst holds at least n messages (with
    Message-ID msgid when given); returns the Delivered list."""
    def got():
        d = inst.find(address, msgid) if msgid else inst.delivered(address)
        return d if len(d) >= n else None
    try:
        return wait_until(got, timeout or t(20), interval=0.1,
                          what=what or f"{n} message(s) in {address}'s INBOX at "
                                       f"{inst.hostname}" + (f" with {msgid}" if msgid else ""))
    except AssertionError as e:
        raise AssertionError(f"{e}; {inst.hostname}'s queue: {_queue_text(inst)}") from None


def wait_queue_empty(inst, timeout=None):
    try:
        wait_until(lambda: inst.queue_entries() == [], timeout or t(20), interval=0.1,
                   what=f"{inst.hostname}'s queue to be empty")
    except AssertionError as e:
        raise AssertionError(f"{e}; queue: {_queue_text(inst)}") from None


def _queue_text(inst):
    try:
        cp = inst.mailadm("queue", "list", json=True, timeout=t(10))
        return (cp.stdout.strip() or cp.stderr.strip())[:2000]
    except Exception as e:       # only for a failure message
        return repr(e)


def new_msgid(tag="t"):
    return f"<{tag}.{uuid.uuid4().hex}@client.a.test>"


# ---------------------------------------------------------------- DSNs


def parse(data):
    return email.message_from_bytes(data, policy=email.policy.compat32)


class DSN:
    """A delivery status notification as stored: the top-level message,
    its per-message and per-recipient delivery-status fields."""

    def __init__(self, delivered):
        self.delivered = delivered
        self.msg = parse(delivered.data)
        self.per_message = {}
        self.per_recipient = []
        self.returned = None
        self.problems = []
        m = self.msg
        if m.get_content_type() != "multipart/report":
            self.problems.append(f"Content-Type is {m.get_content_type()}, "
                                 "expected multipart/report")
        elif (m.get_param("report-type") or "").lower() != "delivery-status":
            self.problems.append(f"report-type is {m.get_param('report-type')!r}, "
                                 "expected delivery-status")
        for part in m.walk():
            ct = part.get_content_type()
            if ct == "message/delivery-status":
                self._read_status(part)
            elif ct in ("message/rfc822", "text/rfc822-headers") and self.returned is None:
                p = part.get_payload()
                self.returned = p[0].as_bytes() if isinstance(p, list) else \
                    (p.encode() if isinstance(p, str) else p)
        if not self.per_recipient:
            self.problems.append("no message/delivery-status part with a recipient block")

    def _read_status(self, part):
        payload = part.get_payload()
        if isinstance(payload, list):       # parsed as a list of header blocks
            blocks = [dict((k.lower(), v) for k, v in p.items()) for p in payload]
        else:
            text = payload if isinstance(payload, str) else payload.decode("utf-8", "replace")
            blocks = []
            for chunk in text.replace("\r\n", "\n").split("\n\n"):
                if chunk.strip():
                    hm = email.message_from_string(chunk + "\n\n")
                    blocks.append(dict((k.lower(), v) for k, v in hm.items()))
        if blocks:
            self.per_message = blocks[0]
            self.per_recipient = blocks[1:]

    def recipient(self, address):
        """The per-recipient block whose Final-Recipient is address."""
        for b in self.per_recipient:
            fr = b.get("final-recipient", "")
            if fr.split(";", 1)[-1].strip().lower() == address.lower():
                return b
        return None

    def check(self):
        assert not self.problems, \
            f"{self.delivered.name} is not a DSN: {'; '.join(self.problems)}\n" \
            f"{self.delivered.data[:1500].decode('utf-8', 'replace')}"


def wait_dsn(inst, address, timeout=None):
    """The first DSN (Return-Path <>) in address's INBOX at inst."""
    def got():
        for d in inst.delivered(address):
            if d.return_path == "<>":
                return d
        return None
    try:
        d = wait_until(got, timeout or t(20), interval=0.1,
                       what=f"a DSN (Return-Path: <>) in {address}'s INBOX at {inst.hostname}")
    except AssertionError as e:
        raise AssertionError(f"{e}; {inst.hostname}'s queue: {_queue_text(inst)}; "
                             f"INBOX: {[p.name for p in inst.messages(address)]}") from None
    return DSN(d)
