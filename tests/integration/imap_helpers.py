"""Shared helpers for the raw-socket imapd tests (test_imap_thunderbird,
test_imap_concurrency, test_imap_index, test_imap_robust).

  Conn            a line-exact IMAP client on a raw socket (plain, implicit
                  TLS or STARTTLS): commands with generated tags, every
                  untagged line kept as sent (literals inline), bounded
                  waits everywhere.
  parse_fetch()   "* n FETCH (...)" -> {ITEM: Value} with the raw text of
                  each value (for exact comparisons).
  deliver(), drop()     a message into a Maildir through smtpd, or straight
                  into new/ or cur/ the way mutt or a delivery agent would.

Everything talks to 127.0.0.1 only; every socket has a timeout.
"""

import base64
import os
import re
import smtplib
import socket
import ssl
import struct
import time
from pathlib import Path

import buzon

ALICE = "alice@example.test"
ALICE_PW = buzon.PASSWORDS[ALICE]
BOB = "bob@example.test"
BOB_PW = buzon.PASSWORDS[BOB]

LITERAL_RE = re.compile(rb"\{(\d+)\}\r\n$")


class Closed(AssertionError):
    """The server closed the connection."""


def tls_ctx():
    return buzon.client_tls_context()


def crlf(data):
    """LF line ends -> CRLF (a CR already before LF is kept)."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


class Response:
    """One command's answer: untagged lines (literals inline, CRLF of the
    last line removed), continuation lines, and the tagged line."""

    def __init__(self, tag, untagged, tagged, conts=()):
        self.tag = tag
        self.untagged = untagged
        self.tagged = tagged
        self.conts = list(conts)
        parts = tagged.split(b" ", 2)
        self.status = parts[1].decode("ascii", "replace") if len(parts) > 1 else ""

    def starting(self, prefix):
        if isinstance(prefix, str):
            prefix = prefix.encode()
        return [u for u in self.untagged if u.startswith(prefix)]

    def fetches(self):
        """[(seq, {ITEM: Value})] of the untagged FETCH responses."""
        return [parse_fetch(u) for u in self.untagged if FETCH_RE.match(u)]

    def code(self):
        """The response code of the tagged line ("APPENDUID 1 2"), or None."""
        m = re.match(rb"^\S+ \S+ \[([^\]]*)\]", self.tagged)
        return m.group(1).decode() if m else None

    def __str__(self):
        shown = [u[:300] for u in self.untagged] + [self.tagged[:300]]
        return "\n".join(s.decode("utf-8", "replace") for s in shown)

    __repr__ = __str__


class Conn:
    """An IMAP client that shows exactly what the server said."""

    def __init__(self, port, tls=False, timeout=None, greet=True):
        self.timeout = timeout if timeout is not None else buzon.t(10)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=self.timeout)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=buzon.HOSTNAME)
        self.buf = b""
        self.n = 0
        self.greeting = self.read_line() if greet else None

    # -- bytes
    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"nothing from the server in time (have {self.buf[:300]!r})")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            raise socket.timeout(f"nothing from the server in time (have {self.buf[:300]!r})")
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError) as e:
            raise Closed(f"connection error {e!r} (unparsed: {self.buf[:300]!r})")
        if not chunk:
            raise Closed(f"server closed the connection (unparsed: {self.buf[:300]!r})")
        self.buf += chunk

    def _raw_line(self, deadline):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 2], self.buf[i + 2:]
                return line
            if len(self.buf) > 64 << 20:
                raise AssertionError(f"line without CRLF: {self.buf[:200]!r}")
            self._fill(deadline)

    def _exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self, timeout=None):
        """One response line with any literals inline, without the final CRLF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = b""
        while True:
            line = self._raw_line(deadline)
            out += line
            m = LITERAL_RE.search(line)
            if not m:
                return out[:-2]
            out += self._exact(int(m.group(1)), deadline)

    def lines_until_quiet(self, quiet=0.5, limit=1000):
        """Every line that arrives until `quiet` seconds pass with none."""
        out = []
        while len(out) < limit:
            try:
                out.append(self.read_line(timeout=quiet))
            except socket.timeout:
                break
        return out

    # -- commands
    def next_tag(self):
        self.n += 1
        return f"a{self.n}"

    def read_response(self, tag, timeout=None):
        if isinstance(tag, str):
            tag = tag.encode()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        untagged, conts = [], []
        while True:
            left = max(0.01, deadline - time.monotonic())
            try:
                line = self.read_line(timeout=left)
            except socket.timeout as e:
                raise AssertionError(
                    f"no tagged answer to {tag.decode()} (untagged so far: "
                    f"{[u[:200] for u in untagged]}): {e}") from None
            if line.startswith(tag + b" "):
                return Response(tag, untagged, line, conts)
            if line.startswith(b"+"):
                conts.append(line)
                raise AssertionError(f"unexpected continuation {line!r} while waiting "
                                     f"for {tag.decode()}")
            untagged.append(line)

    def command(self, text, timeout=None):
        tag = self.next_tag()
        data = text if isinstance(text, bytes) else text.encode("utf-8")
        self.send(tag.encode() + b" " + data + b"\r\n")
        return self.read_response(tag, timeout)

    def ok(self, text, timeout=None):
        r = self.command(text, timeout)
        shown = text if isinstance(text, str) else text[:120].decode("utf-8", "replace")
        assert r.status == "OK", f"{shown!r} got:\n{r}"
        return r

    def send_literal_command(self, head, literal, tail=b"", nonsync=False, timeout=None):
        """TAG head {n} CRLF, wait for '+' (unless nonsync), literal, tail CRLF."""
        tag = self.next_tag()
        if isinstance(head, str):
            head = head.encode()
        n = len(literal)
        ann = f"{{{n}+}}" if nonsync else f"{{{n}}}"
        self.send(tag.encode() + b" " + head + b" " + ann.encode() + b"\r\n")
        if not nonsync:
            line = self.read_line(timeout)
            assert line.startswith(b"+"), \
                f"expected a continuation for the literal of {head!r}, got {line!r}"
        self.send(literal + tail + b"\r\n")
        return self.read_response(tag, timeout)

    def login(self, user=ALICE, pw=ALICE_PW):
        return self.ok(f'LOGIN "{user}" "{pw}"')

    def authenticate_plain(self, user=ALICE, pw=ALICE_PW):
        ir = base64.b64encode(f"\0{user}\0{pw}".encode()).decode()
        return self.ok(f"AUTHENTICATE PLAIN {ir}")

    def starttls(self):
        r = self.ok("STARTTLS")
        assert self.buf == b"", f"plaintext after the STARTTLS OK: {self.buf!r}"
        self.sock.settimeout(self.timeout)
        self.sock = tls_ctx().wrap_socket(self.sock, server_hostname=buzon.HOSTNAME)
        return r

    def select(self, box="INBOX", extra=""):
        return self.ok(f"SELECT {quote(box)}{extra}")

    def idle(self):
        """Start IDLE; returns the tag (the '+' has been read)."""
        tag = self.next_tag()
        self.send(f"{tag} IDLE\r\n")
        line = self.read_line()
        assert line.startswith(b"+"), f"IDLE: expected '+', got {line!r}"
        return tag

    def done(self, tag, timeout=None):
        self.send(b"DONE\r\n")
        return self.read_response(tag, timeout)

    def closed_by_server(self, timeout=None):
        """True when the server closes within timeout (data read is kept)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while time.monotonic() < deadline:
            try:
                self._fill(deadline)
            except Closed:
                return True
            except socket.timeout:
                return False
            except OSError:
                return True
        return False

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None

    def abort(self):
        """Vanish: RST instead of FIN."""
        if self.sock is not None:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def session(inst, user=ALICE, pw=ALICE_PW, select=None, **kw):
    """A logged-in implicit-TLS session (optionally with a mailbox selected)."""
    c = Conn(inst.imaps_port, tls=True, **kw)
    assert c.greeting.startswith(b"* OK"), c.greeting
    c.login(user, pw)
    if select:
        c.select(select)
    return c


# ---------------------------------------------------------------- parsing

FETCH_RE = re.compile(rb"^\* (\d+) FETCH \(")


class Value:
    """A parsed IMAP value: .kind in atom/nil/string/list, .v (bytes, None
    or a list of Value), .raw (the bytes exactly as sent)."""

    def __init__(self, kind, v, raw):
        self.kind, self.v, self.raw = kind, v, raw

    def text(self):
        return self.v.decode("utf-8", "replace") if isinstance(self.v, bytes) else None

    def __repr__(self):
        return f"Value({self.kind}, {self.raw[:80]!r})"


def _parse(data, i):
    """Parse one value at data[i:]; returns (Value, next index)."""
    while i < len(data) and data[i:i + 1] == b" ":
        i += 1
    if i >= len(data):
        raise ValueError(f"value expected at end of {data[:200]!r}")
    c = data[i:i + 1]
    start = i
    if c == b"(":
        i += 1
        items = []
        while True:
            while data[i:i + 1] == b" ":
                i += 1
            if data[i:i + 1] == b")":
                i += 1
                break
            if i >= len(data):
                raise ValueError(f"unclosed list in {data[:200]!r}")
            v, i = _parse(data, i)
            items.append(v)
        return Value("list", items, data[start:i]), i
    if c == b'"':
        i += 1
        out = b""
        while True:
            ch = data[i:i + 1]
            if ch == b"":
                raise ValueError(f"unterminated quoted string in {data[:200]!r}")
            if ch == b"\\":
                out += data[i + 1:i + 2]
                i += 2
                continue
            if ch == b'"':
                i += 1
                break
            out += ch
            i += 1
        return Value("string", out, data[start:i]), i
    if c == b"{":
        m = re.compile(rb"\{(\d+)\}\r\n").match(data, i)
        if not m:
            raise ValueError(f"bad literal at {data[i:i + 20]!r}")
        n = int(m.group(1))
        j = m.end()
        return Value("string", data[j:j + n], data[start:j + n]), j + n
    # atom, possibly with [section] (which may hold spaces) and <partial>
    while i < len(data):
        ch = data[i:i + 1]
        if ch in (b" ", b"(", b")"):
            break
        if ch == b"[":
            depth = 0
            while i < len(data):
                ch = data[i:i + 1]
                if ch == b"[":
                    depth += 1
                elif ch == b"]":
                    depth -= 1
                    if depth == 0:
                        break
                i += 1
        i += 1
    tok = data[start:i]
    if tok.upper() == b"NIL":
        return Value("nil", None, tok), i
    return Value("atom", tok, tok), i


def parse_value(data):
    v, i = _parse(data, 0)
    return v


def parse_fetch(line):
    """'* 3 FETCH (UID 7 FLAGS (\\Seen))' -> (3, {'UID': Value, 'FLAGS': Value})."""
    m = FETCH_RE.match(line)
    assert m, f"not a FETCH response: {line[:200]!r}"
    seq = int(m.group(1))
    v, end = _parse(line, m.end() - 1)
    assert v.kind == "list", line[:200]
    assert line[end:].strip() == b"", f"bytes after the FETCH list: {line[end:end + 100]!r}"
    items = v.v
    assert len(items) % 2 == 0, f"odd FETCH item list: {line[:300]!r}"
    out = {}
    for k in range(0, len(items), 2):
        name = items[k].raw.decode("utf-8", "replace").upper()
        assert name not in out, f"{name} twice in {line[:300]!r}"
        out[name] = items[k + 1]
    return seq, out


def flags_of(value):
    return sorted(x.raw.decode() for x in value.v)


def uid_of(items):
    return int(items["UID"].v)


# ---------------------------------------------------------------- mail

def deliver(inst, data, rcpt=ALICE, sender="x@y.test"):
    """Through smtpd (returns after the 250, when the file is in new/)."""
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
    try:
        s.sendmail(sender, [rcpt], data)
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass


def message(subject, body="Hello.\n", extra=(), size=None, to=ALICE):
    """A CRLF message; with size, the body is padded to about that many bytes."""
    _, data = buzon.make_message(subject=subject, body=body, to=to, extra_headers=extra)
    if size is not None and len(data) < size:
        line = b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
        data += line * ((size - len(data)) // len(line)) + b"end\r\n"
    return data


_drop_seq = [0]


def drop(folder_dir, data, sub="new", info=None, stamp=None):
    """Write a message into a Maildir the way a delivery agent (sub='new')
    or mutt (sub='cur', info '2,S') does: tmp/ then rename.  Returns the
    final path.  Names are 'SEC.M<usec>P<pid>Q<n>.host' so they sort in
    the order they were dropped."""
    folder_dir = Path(folder_dir)
    _drop_seq[0] += 1
    now = time.time() if stamp is None else stamp
    sec = int(now)
    usec = int((now - sec) * 1e6)
    base = f"{sec}.M{usec}P{os.getpid()}Q{_drop_seq[0]}.testhost"
    tmp = folder_dir / "tmp" / base
    tmp.write_bytes(data)
    name = base if info is None else f"{base}:{info}"
    final = folder_dir / sub / name
    os.rename(tmp, final)
    return final


def files(folder_dir):
    """Message files in new/ and cur/ of a Maildir folder."""
    out = []
    for sub in ("new", "cur"):
        p = Path(folder_dir) / sub
        if p.is_dir():
            out += sorted(x for x in p.iterdir() if x.is_file())
    return out


def file_flags(path):
    name = Path(path).name
    return name.split(":2,", 1)[1] if ":2," in name else ""


def find_file(folder_dir, needle):
    """The one message file in folder_dir holding the bytes needle."""
    hits = [p for p in files(folder_dir) if needle in p.read_bytes()]
    assert len(hits) == 1, f"{len(hits)} files in {folder_dir} hold {needle!r}: {hits}"
    return hits[0]


def wait_for(pred, timeout, what):
    return buzon.wait_until(pred, timeout, what=what)


# ---------------------------------------------------------------- process

def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid):
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return sorted(out)


def read_until(conn, pred, timeout, what):
    """Lines until pred(line) is true; returns all lines read."""
    deadline = time.monotonic() + timeout
    got = []
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {what} within {timeout:.1f}s; got {got}"
        try:
            line = conn.read_line(timeout=left)
        except socket.timeout:
            continue
        except Exception as e:
            raise AssertionError(f"no {what} within {timeout:.1f}s; got {got} ({e})")
        got.append(line)
        if pred(line):
            return got


def lines_until_closed(conn, timeout):
    """Every line the server still sends until it closes (or is silent
    for timeout seconds)."""
    got = []
    try:
        while True:
            got.append(conn.read_line(timeout=timeout))
    except (Closed, socket.timeout, OSError):
        pass
    return got
