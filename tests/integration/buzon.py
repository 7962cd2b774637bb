"""Helpers for Buzón integration tests: a throw-away instance (config,
account DB, Maildirs, a running smtpd on free loopback ports), a raw SMTP
client that shows exactly what the server said, and readers for what
landed on disk.

Everything here talks to 127.0.0.1 only (unless an Instance is given another
loopback host, see netns.py/outbound.py), and every wait is bounded.
Failures say what the client saw and what it expected, never what the
daemon logged (the daemon's stderr is only attached to failure reports).
"""

import email.utils
import os
import random
import re
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("BUZON_BIN") or (REPO / "bin")).resolve()

HOSTNAME = "mail.example.test"
DOMAIN = "example.test"
PASSWORDS = {
    "alice@example.test": "alice-secret-pw",
    "bob@example.test": "bob-secret-pw",
}


def _timeout_factor():
    f = os.environ.get("BUZON_TIMEOUT_FACTOR")
    if f:
        return float(f)
    # an ASan/UBSan build is several times slower
    return 4.0 if "asan" in str(BIN) else 1.0


FACTOR = _timeout_factor()


def t(seconds):
    """A timeout scaled for slow (sanitizer) builds."""
    return seconds * FACTOR


# ---------------------------------------------------------------- generic


_ports_given = set()


def free_port(host="127.0.0.1"):
    """A loopback TCP port that was free a moment ago (on `host`), below
    the kernel's ephemeral range (ip_local_port_range starts at 32768): a
    port from that range can be taken as the source port of some client
    connection before the daemon binds it ("Address already in use")."""
    rnd = random.Random()
    for _ in range(1000):
        port = rnd.randrange(20000, 32768)
        if port in _ports_given:
            continue
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind((host, port))
        except OSError:
            continue
        finally:
            s.close()
        _ports_given.add(port)
        return port
    raise RuntimeError("no free loopback port in 20000-32767")


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Poll pred() until it returns something truthy; return that value.
    Raises AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def tail(path, nbytes=6000):
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    if len(data) > nbytes:
        data = b"...\n" + data[-nbytes:]
    return data.decode("utf-8", "replace")


def need_binary(name):
    p = BIN / name
    if not (p.is_file() and os.access(p, os.X_OK)):
        raise AssertionError(
            f"{p} does not exist or is not executable: build it with `make` "
            f"(BUZON_BIN={BIN})")
    return p


# ---------------------------------------------------------------- messages


def make_message(subject="test", body="Hello.\n", msgid=None, sender="x@y.test",
                 to="alice@example.test", extra_headers=()):
    """An RFC 5322 message as CRLF bytes. Returns (msgid, bytes)."""
    if msgid is None:
        msgid = f"<{uuid.uuid4().hex}@client.test>"
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Message-ID: {msgid}",
        f"Date: {email.utils.formatdate()}",
    ]
    lines += list(extra_headers)
    text = "\n".join(lines) + "\n\n" + body
    if not text.endswith("\n"):
        text += "\n"
    data = text.encode("utf-8") if isinstance(text, str) else text
    return msgid, data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def to_lf(msg):
    """What the store must hold for a message sent as CRLF (smtplib adds a
    final CRLF when missing)."""
    lf = msg.replace(b"\r\n", b"\n")
    if not lf.endswith(b"\n"):
        lf += b"\n"
    return lf


def dot_stuff(crlf_msg):
    """Dot-stuff CRLF message bytes and append the end-of-data marker."""
    if not crlf_msg.endswith(b"\r\n"):
        crlf_msg += b"\r\n"
    out = []
    for line in crlf_msg.split(b"\r\n")[:-1]:
        if line.startswith(b"."):
            line = b"." + line
        out.append(line + b"\r\n")
    return b"".join(out) + b".\r\n"


# ---------------------------------------------------------------- the store

NAME_RE = re.compile(r"^\d+\.M\d+P\d+Q\d+\.[^,]+,S=(\d+),W=(\d+)$")
ADDED_HEADERS = ("authentication-results", "received-spf")


def _header_block(lines, i):
    """Return (header text unfolded, next index) for the header at lines[i]."""
    h = lines[i]
    i += 1
    while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
        h += b" " + lines[i].strip()
        i += 1
    return h, i


class Delivered:
    """A message file from a Maildir, split into the trace headers smtpd
    must add and the original message."""

    def __init__(self, path):
        self.path = Path(path)
        self.data = self.path.read_bytes()
        self.name = self.path.name
        lines = self.data.split(b"\n")
        self.problems = []
        self.return_path = self.delivered_to = self.received = None
        self.added = []
        i = 0
        if lines and lines[0].startswith(b"Return-Path:"):
            self.return_path = lines[0][len(b"Return-Path:"):].strip().decode("utf-8", "replace")
            i = 1
        else:
            self.problems.append(f"first line is {lines[0][:80]!r}, expected Return-Path:")
        if i < len(lines) and lines[i].startswith(b"Delivered-To:"):
            self.delivered_to = lines[i][len(b"Delivered-To:"):].strip().decode("utf-8", "replace")
            i += 1
        else:
            self.problems.append(
                f"line {i + 1} is {lines[i][:80] if i < len(lines) else b''!r}, expected Delivered-To:")
        if i < len(lines) and lines[i].startswith(b"Received:"):
            h, i = _header_block(lines, i)
            self.received = h.decode("utf-8", "replace")
        else:
            self.problems.append(
                f"line {i + 1} is {lines[i][:80] if i < len(lines) else b''!r}, expected Received:")
        while i < len(lines) and b":" in lines[i] and \
                lines[i].split(b":", 1)[0].strip().lower().decode("latin-1") in ADDED_HEADERS:
            h, i = _header_block(lines, i)
            self.added.append(h.decode("utf-8", "replace"))
        self.original = b"\n".join(lines[i:])

    def check_name(self):
        """File name pattern, S= (file size) and W= (size + LFs)."""
        m = NAME_RE.match(self.name)
        assert m, f"file name {self.name!r} does not match {NAME_RE.pattern}"
        size = len(self.data)
        w = size + self.data.count(b"\n")
        assert int(m.group(1)) == size, \
            f"{self.name}: S={m.group(1)} but the file holds {size} bytes"
        assert int(m.group(2)) == w, \
            f"{self.name}: W={m.group(2)} but size + LFs = {w}"

    def check_trace(self, sender, rcpt, hostname=HOSTNAME):
        assert not self.problems, \
            f"{self.name}: trace headers wrong: {'; '.join(self.problems)}\n" \
            f"file starts with:\n{self.data[:400].decode('utf-8', 'replace')}"
        assert self.return_path == f"<{sender}>", \
            f"{self.name}: Return-Path is {self.return_path!r}, expected '<{sender}>'"
        dt = (self.delivered_to or "").strip("<>").lower()
        assert dt == rcpt.lower(), \
            f"{self.name}: Delivered-To is {self.delivered_to!r}, expected {rcpt!r}"
        assert f"by {hostname}" in self.received, \
            f"{self.name}: Received header {self.received!r} lacks 'by {hostname}'"
        assert re.search(r"\bfrom\b", self.received), \
            f"{self.name}: Received header {self.received!r} lacks 'from'"

    def check_original(self, sent_crlf):
        want = to_lf(sent_crlf)
        assert b"\r" not in self.data, \
            f"{self.name}: stored message contains CR bytes (must be LF only): " \
            f"{self.data[:300]!r}"
        assert self.original == want, \
            f"{self.name}: stored message differs from what was sent.\n" \
            f"sent (LF form) {len(want)} bytes: {want[:300]!r}...\n" \
            f"stored after trace headers {len(self.original)} bytes: {self.original[:300]!r}..."


# ---------------------------------------------------------------- raw SMTP client

ENH_RE = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")


class ServerClosed(AssertionError):
    pass


class Reply:
    def __init__(self, lines):
        self.lines = lines            # ["250-mail.example.test", "250 SIZE 1"]
        self.code = int(lines[-1][:3])
        self.texts = [ln[4:] for ln in lines]
        m = ENH_RE.match(self.texts[0])
        self.enhanced = m.group(0) if m else None

    @property
    def text(self):
        return "\n".join(self.texts)

    def keywords(self):
        """EHLO keywords (upper-cased first word of each line but the first)."""
        out = {}
        for tx in self.texts[1:]:
            parts = tx.split()
            if parts:
                out[parts[0].upper()] = parts[1:]
        return out

    def __str__(self):
        return " | ".join(self.lines)

    __repr__ = __str__


def expect(reply, code, enhanced=None, after=""):
    """Assert on a reply: code is an int (exact) or a str like '5' (class)."""
    ok = str(reply.code).startswith(code) if isinstance(code, str) else reply.code == code
    if ok and enhanced is not None:
        ok = reply.enhanced == enhanced
    want = f"{code}{'xx' if isinstance(code, str) else ''}" + (f" {enhanced}" if enhanced else "")
    assert ok, f"after {after!r} the client saw '{reply}', expected {want}"
    return reply


class SMTPClient:
    """A line-exact SMTP client on a raw socket."""

    def __init__(self, port, timeout=None, connect=True, host="127.0.0.1", source=None):
        self.port = port
        self.host = host
        self.source = source          # a local address to speak from (bind before connect)
        self.timeout = timeout if timeout is not None else t(15)
        self.buf = b""
        self.sock = None
        self.tls = False
        if connect:
            self.sock = socket.create_connection(
                (host, port), timeout=self.timeout,
                source_address=(source, 0) if source else None)

    # -- low level
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise
        except (ConnectionResetError, ssl.SSLError, OSError) as e:
            raise ServerClosed(f"connection error while waiting for a reply: {e!r} "
                               f"(unparsed: {self.buf[:200]!r})")
        if not chunk:
            raise ServerClosed(f"server closed the connection (unparsed: {self.buf[:200]!r})")
        self.buf += chunk

    def read_line(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if len(self.buf) > 100000:
                raise AssertionError(f"reply line without CRLF: {self.buf[:200]!r}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout(f"no complete reply line within {timeout:.1f}s "
                                     f"(have {self.buf[:200]!r})")
            self._fill(left)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def read_reply(self, timeout=None, after=""):
        lines = []
        try:
            while True:
                ln = self.read_line(timeout)
                assert re.match(r"^\d{3}([ -]|$)", ln), \
                    f"after {after!r} the server sent a malformed reply line {ln!r}"
                lines.append(ln)
                if len(ln) == 3 or ln[3] == " ":
                    break
                assert len(lines) < 1000, "endless multi-line reply"
        except socket.timeout as e:
            raise AssertionError(f"after {after!r} no reply from the server: {e}") from None
        except ServerClosed as e:
            raise ServerClosed(f"after {after!r}: {e}") from None
        return Reply(lines)

    def replies_until_quiet(self, quiet=1.0, limit=50):
        """Every reply that arrives until `quiet` seconds pass with none."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.read_reply(timeout=quiet))
            except AssertionError as e:
                if isinstance(e, ServerClosed) or "no reply" in str(e):
                    break
                raise
        return out

    def cmd(self, line, timeout=None):
        data = line if isinstance(line, bytes) else line.encode("utf-8")
        self.send(data + b"\r\n")
        shown = data if len(data) < 120 else data[:100] + b"..."
        return self.read_reply(timeout, after=shown.decode("utf-8", "replace"))

    def greeting(self):
        return self.read_reply(after="connect")

    def ehlo(self, name="client.example.test"):
        return expect(self.cmd(f"EHLO {name}"), 250, after=f"EHLO {name}")

    def starttls(self, ctx=None, after_220=None):
        """STARTTLS, expect 220, then handshake on the same socket."""
        r = self.cmd("STARTTLS")
        expect(r, 220, after="STARTTLS")
        assert self.buf == b"", \
            f"the server sent more after its 220 to STARTTLS, in plaintext: {self.buf!r}"
        ctx = ctx or client_tls_context()
        self.sock.settimeout(self.timeout)
        self.sock = ctx.wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.tls = True
        return r

    def mail_tx(self, sender, rcpts, msg_crlf, raw=False):
        """MAIL/RCPT/DATA one by one; returns the final reply (asserts the
        intermediate ones)."""
        expect(self.cmd(f"MAIL FROM:<{sender}>"), 250, "2.1.0", f"MAIL FROM:<{sender}>")
        for r in rcpts:
            expect(self.cmd(f"RCPT TO:<{r}>"), 250, "2.1.5", f"RCPT TO:<{r}>")
        expect(self.cmd("DATA"), 354, after="DATA")
        self.send(msg_crlf if raw else dot_stuff(msg_crlf))
        return self.read_reply(after="end of data")

    def quit(self):
        try:
            r = self.cmd("QUIT")
            expect(r, 221, after="QUIT")
        finally:
            self.close()

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def closed_by_server(self, timeout=None):
        """True when the server closes the connection within timeout."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def client_tls_context(minimum=ssl.TLSVersion.TLSv1_2, maximum=None):
    """An unverified client context (the test cert is self-signed)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = minimum
    if maximum is not None:
        ctx.maximum_version = maximum
    return ctx


# ---------------------------------------------------------------- instance

BASE_TOP = [
    ("hostname", "{HOSTNAME}"),
    ("state_dir", "{T}/state"),
    ("database", "{T}/state/buzon.db"),
    ("mail_dir", "{T}/mail"),
    ("queue_dir", "{T}/queue"),
    ("user", ""),
    ("tls_cert", "{T}/tls/cert.pem"),
    ("tls_key", "{T}/tls/key.pem"),
]
BASE_SECTIONS = {
    # Outbound mail goes to the discard port, where nothing listens: the
    # queue runner never looks up an MX (no DNS query, no connection
    # beyond loopback) unless a test routes it somewhere on purpose.
    "smtpd": [("listen", "{HOST}:{SMTP} smtp"), ("max_message_size", "1M"),
              ("max_recipients", "100"), ("relayhost", "127.0.0.1:9")],
    "imapd": [("listen", "{HOST}:{IMAP} imap"), ("listen", "{HOST}:{IMAPS} imaps")],
    "pop3d": [("listen", "{HOST}:{POP3} pop3")],
    "policy": [("spf", "off"), ("dkim_verify", "off"), ("dmarc", "off"), ("dnsbl", "")],
}


class Instance:
    """A throw-away Buzón: directory, config, account DB, smtpd.

    By default it is mail.example.test on 127.0.0.1 with the users of
    PASSWORDS in example.test.  Another loopback address (host), hostname,
    domain and users (passwords: {address: password}) and a fixed smtp
    port (e.g. 25 inside a private network namespace, see netns.py) make
    a second instance that other instances reach by MX."""

    def __init__(self, root, overrides=None, host="127.0.0.1", hostname=HOSTNAME,
                 domain=DOMAIN, passwords=None, smtp_port=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.hostname = hostname
        self.domain = domain
        self.passwords = dict(PASSWORDS if passwords is None else passwords)
        self.smtp_port = smtp_port or free_port(host)
        self.imap_port = free_port(host)
        self.imaps_port = free_port(host)
        self.pop3_port = free_port(host)
        self.submission_port = free_port(host)     # used by add_submission_listeners
        self.submissions_port = free_port(host)
        self.state_dir = self.root / "state"
        self.database = self.state_dir / "buzon.db"
        self.mail_dir = self.root / "mail"
        self.queue_dir = self.root / "queue"
        self.tls_cert = self.root / "tls" / "cert.pem"
        self.tls_key = self.root / "tls" / "key.pem"
        self.conf = self.root / "buzon.conf"
        self.stderr_path = self.root / "smtpd.stderr"
        self.proc = None
        self.killed = False
        self.write_conf(overrides or {})

    # -- config
    def write_conf(self, overrides):
        """overrides: {"top": {key: value}, "smtpd": {...}, ...}; a value
        replaces the base line with that key, or is added; None removes."""
        subst = {"T": str(self.root), "HOST": self.host, "HOSTNAME": self.hostname,
                 "SMTP": self.smtp_port,
                 "IMAP": self.imap_port, "IMAPS": self.imaps_port,
                 "POP3": self.pop3_port, "SUBMISSION": self.submission_port,
                 "SUBMISSIONS": self.submissions_port}

        def merge(base, extra):
            out = []
            extra = dict(extra or {})
            for k, v in base:
                if k in extra:
                    if extra[k] is not None:
                        out.append((k, extra[k]))
                    del extra[k]
                else:
                    out.append((k, v))
            out += [(k, v) for k, v in extra.items() if v is not None]
            return out

        lines = [f"{k} = {str(v).format(**subst)}".rstrip()
                 for k, v in merge(BASE_TOP, overrides.get("top"))]
        for sec, base in BASE_SECTIONS.items():
            lines.append(f"[{sec}]")
            lines += [f"{k} = {str(v).format(**subst)}".rstrip()
                      for k, v in merge(base, overrides.get(sec))]
        self.conf_text = "\n".join(lines) + "\n"
        self.conf.write_text(self.conf_text)

    def add_submission_listeners(self):
        """Give [smtpd] a submission (STARTTLS) and a submissions
        (implicit TLS) listener next to the smtp one, on
        self.submission_port / self.submissions_port.  Before start_smtpd."""
        extra = (f"listen = {self.host}:{self.submission_port} submission\n"
                 f"listen = {self.host}:{self.submissions_port} submissions\n")
        if extra not in self.conf_text:
            self.conf_text = self.conf_text.replace("[smtpd]\n", "[smtpd]\n" + extra, 1)
            self.conf.write_text(self.conf_text)

    # -- mailadm
    def mailadm(self, *args, input=None, json=False, check=False, timeout=None):
        exe = need_binary("mailadm")
        argv = [str(exe), "-c", str(self.conf)] + (["--json"] if json else []) + \
            [str(a) for a in args]
        env = dict(os.environ)
        env.pop("BUZON_CONF", None)
        cp = subprocess.run(argv, input=input if input is not None else "",
                            capture_output=True, text=True, env=env,
                            timeout=timeout or t(60))
        if check and cp.returncode != 0:
            raise AssertionError(
                f"`mailadm {' '.join(argv[3:])}` exited {cp.returncode}, expected 0; "
                f"stderr: {cp.stderr.strip()!r} stdout: {cp.stdout.strip()!r}")
        return cp

    def setup_accounts(self):
        (self.root / "tls").mkdir(mode=0o700, exist_ok=True)
        self.mailadm("init", check=True)
        self.mailadm("domain", "add", self.domain, check=True)
        for addr, pw in self.passwords.items():
            self.mailadm("user", "add", addr, "--password-stdin", input=pw + "\n",
                         check=True)

    def add_user(self, address, password="pw-" + "x" * 12, quota=None):
        args = ["user", "add", address, "--password-stdin"]
        if quota:
            args += ["--quota", quota]
        return self.mailadm(*args, input=password + "\n", check=True)

    # -- smtpd
    def start_smtpd(self, timeout=None):
        exe = need_binary("smtpd")
        env = dict(os.environ)
        env.pop("BUZON_CONF", None)
        self.killed = False
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([str(exe), "-c", str(self.conf)],
                                     stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=env)
        timeout = timeout or t(15)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"smtpd exited with code {self.proc.returncode} during start-up; "
                    f"stderr:\n{tail(self.stderr_path)}")
            try:
                with SMTPClient(self.smtp_port, timeout=max(0.5, deadline - time.monotonic()),
                                host=self.host) as c:
                    g = c.greeting()
                    if g.code == 220:
                        try:
                            c.cmd("QUIT", timeout=t(5))
                        except AssertionError:
                            pass
                        return
                    last = f"greeting was '{g}'"
            except (ConnectionRefusedError, socket.timeout) as e:
                last = repr(e)
            except (AssertionError, OSError) as e:
                last = repr(e)
            time.sleep(0.05)
        self.proc.kill()
        self.proc.wait(timeout=t(10))
        raise AssertionError(
            f"smtpd did not greet with 220 on {self.host}:{self.smtp_port} within "
            f"{timeout:.0f}s (last: {last}); stderr:\n{tail(self.stderr_path)}")

    def stop_smtpd(self):
        """SIGTERM; returns the exit code (kills with SIGKILL after 10 s and
        raises)."""
        if self.proc is None:
            return 0
        proc, self.proc = self.proc, None
        try:
            if self.killed:
                proc.wait(timeout=t(10))
                return 0
            if proc.poll() is not None:
                raise AssertionError(
                    f"smtpd had already exited with code {proc.returncode} before "
                    f"the test ended; stderr:\n{tail(self.stderr_path)}")
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=t(10))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=t(10))
                raise AssertionError(
                    f"smtpd did not exit within {t(10):.0f}s of SIGTERM (killed with -9); "
                    f"stderr:\n{tail(self.stderr_path)}")
            return rc
        finally:
            self._stderr.close()

    def kill9(self):
        self.killed = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=t(10))
        self.proc = None
        self._stderr.close()

    # -- store
    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return self.mail_dir / domain.lower() / local.lower()

    def messages(self, address, folder=None):
        d = self.maildir(address)
        if folder:
            d = d / f".{folder}"
        out = []
        for sub in ("new", "cur"):
            p = d / sub
            if p.is_dir():
                out += sorted(x for x in p.iterdir() if x.is_file())
        return out

    def read(self, path):
        return Path(path).read_bytes()

    def delivered(self, address):
        return [Delivered(p) for p in self.messages(address)]

    def one(self, address):
        """The single message in address's INBOX (asserts there is exactly one)."""
        files = self.messages(address)
        assert len(files) == 1, \
            f"{address} has {len(files)} messages, expected exactly 1: {[p.name for p in files]}"
        return Delivered(files[0])

    def find(self, address, msgid):
        """Delivered copies in address's INBOX that carry Message-ID msgid."""
        needle = f"Message-ID: {msgid}".encode()
        return [Delivered(p) for p in self.messages(address)
                if needle in p.read_bytes()]

    def queue_entries(self):
        if not self.queue_dir.is_dir():
            return []
        return sorted(p for p in self.queue_dir.iterdir() if p.suffix == ".env")

    def connect(self, greet=True, ehlo=True):
        c = SMTPClient(self.smtp_port, host=self.host)
        if greet:
            expect(c.greeting(), 220, after="connect")
            if ehlo:
                c.ehlo()
        return c


class TempfailServer:
    """A loopback SMTP server that answers every connection with 421, so
    that queued mail stays queued (used as relayhost: nothing leaves the
    machine)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.connections = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            r, _, _ = select.select([self.sock], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                c.settimeout(2)
                c.sendall(b"421 4.3.2 test relay says try again later\r\n")
            except OSError:
                pass
            finally:
                c.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()
