"""Helpers for the pop3d integration tests (test_pop3*.py): a line-exact
POP3 client on a raw socket (so tests see every byte the server sends,
dot-stuffing included), deliveries, what the Maildir and index.db hold,
and restarting pop3d."""

import os
import re
import signal
import smtplib
import socket
import sqlite3
import ssl
import time
import uuid

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]
BOB, BOB_PW = "bob@example.test", buzon.PASSWORDS["bob@example.test"]


def tls_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


# ---------------------------------------------------------------- mail in


def deliver(inst, subject, body="Hello.\r\n", to=ALICE):
    """Through smtpd.  Returns the message as sent (CRLF)."""
    msg = (f"From: x@y.test\r\nTo: {to}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{uuid.uuid4().hex}@y.test>\r\n\r\n{body}").encode()
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
    s.sendmail("x@y.test", [to], msg)
    s.quit()
    return msg


_seq = [0]


def drop_file(inst, data, to=ALICE):
    """Put a message file (bytes as stored, LF ends) into new/ the way a
    delivery does (tmp/ then rename, ,S= and ,W= in the name).  Returns
    the path in new/."""
    d = inst.maildir(to)
    for sub in ("tmp", "new", "cur"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    _seq[0] += 1
    now = time.time()
    w = len(data) + crlf_extra(data)
    name = (f"{int(now)}.M{int((now % 1) * 1e6)}P{os.getpid()}Q{_seq[0]}."
            f"pytest,S={len(data)},W={w}")
    tmp = d / "tmp" / name
    tmp.write_bytes(data)
    os.rename(tmp, d / "new" / name)
    return d / "new" / name


def crlf_extra(data):
    """Bare LFs: what converting to CRLF adds."""
    return data.count(b"\n") - data.count(b"\r\n")


def to_crlf(data):
    """A stored message as a POP3 client must receive it (unstuffed)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def stuffed(data):
    """The exact bytes of a RETR response body for stored data,
    terminator included."""
    crlf = to_crlf(data)
    if crlf and not crlf.endswith(b"\r\n"):
        crlf += b"\r\n"
    out = b"".join((b"." + ln if ln.startswith(b".") else ln) + b"\r\n"
                   for ln in crlf.split(b"\r\n")[:-1])
    return out + b".\r\n"


# ---------------------------------------------------------------- the store


def files(inst, who=ALICE):
    """Message files of INBOX (new/ and cur/), sorted by name."""
    return inst.messages(who)


def delivery_key(path):
    """Delivery order, as the index numbers new mail: SEC, then usec."""
    m = re.match(r"^(\d+)\.M(\d+)", path.name)
    return (int(m.group(1)), int(m.group(2)), path.name) if m else (0, 0, path.name)


def stored_messages(inst, who=ALICE):
    """The bytes of INBOX's files in delivery (= UID) order."""
    return [f.read_bytes() for f in sorted(files(inst, who), key=delivery_key)]


def index_uids(inst, who=ALICE):
    """UIDs of INBOX's rows in index.db."""
    db = sqlite3.connect(f"file:{inst.maildir(who) / 'index.db'}?mode=ro",
                         uri=True, timeout=10)
    try:
        return [r[0] for r in db.execute(
            "SELECT m.uid FROM messages m JOIN mailboxes b ON m.mailbox = b.id"
            " WHERE b.name = 'INBOX' ORDER BY m.uid")]
    finally:
        db.close()


# ---------------------------------------------------------------- raw client


class ServerClosed(AssertionError):
    pass


class Pop:
    """A line-exact POP3 client.  tls=True: implicit TLS (pop3s)."""

    def __init__(self, port, tls=False, timeout=None, greet=True):
        self.timeout = timeout if timeout is not None else buzon.t(15)
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=self.timeout)
        if tls:
            self.sock = tls_ctx().wrap_socket(self.sock)
        self.buf = b""
        self.greeting = self.line() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _recv(self):
        try:
            chunk = self.sock.recv(1 << 20)
        except (ConnectionResetError, ssl.SSLError) as e:
            raise ServerClosed(f"connection error: {e!r} (unparsed {self.buf[:200]!r})")
        if not chunk:
            raise ServerClosed(f"server closed the connection (unparsed {self.buf[:200]!r})")
        return chunk

    def _fill(self):
        self.buf += self._recv()

    def line(self):
        """One line without CRLF, as bytes."""
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def raw_until_terminator(self):
        """Bytes of a multi-line body up to and including CRLF.CRLF (or
        a first line "." CRLF)."""
        data = bytearray(self.buf)
        self.buf = b""
        searched = 0
        while True:
            if data.startswith(b".\r\n"):
                end = 3
                break
            i = data.find(b"\r\n.\r\n", max(0, searched - 4))
            if i >= 0:
                end = i + 5
                break
            searched = len(data)
            data += self._recv()
        self.buf = bytes(data[end:])
        return bytes(data[:end])

    def cmd(self, line):
        self.send((line if isinstance(line, bytes) else line.encode()) + b"\r\n")
        return self.line()

    def multi(self, line):
        """A command with a multi-line answer: (first line, [lines])."""
        first = self.cmd(line)
        if not first.startswith(b"+OK"):
            return first, None
        lines = []
        while True:
            ln = self.line()
            if ln == b".":
                return first, lines
            lines.append(ln)

    def stls(self):
        r = self.cmd("STLS")
        assert r.startswith(b"+OK"), f"STLS answered {r!r}"
        assert self.buf == b"", f"plaintext after the +OK to STLS: {self.buf!r}"
        self.sock = tls_ctx().wrap_socket(self.sock)
        return r

    def login(self, user=ALICE, pw=ALICE_PW):
        r = self.cmd(f"USER {user}")
        assert r.startswith(b"+OK"), f"USER {user} answered {r!r}"
        return self.cmd(f"PASS {pw}")

    def closed_by_server(self, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(4096)
            except socket.timeout:
                return False
            except (OSError, ssl.SSLError):
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def session(inst, user=ALICE, pw=ALICE_PW, wait_lock=True):
    """A logged-in raw session over pop3s.  wait_lock: retry while the
    maildrop is still locked by a session whose client just went away
    (the server notices the close a moment later)."""
    deadline = time.monotonic() + buzon.t(5)
    while True:
        p = Pop(inst.pop3s_port, tls=True)
        r = p.login(user, pw)
        if r.startswith(b"+OK"):
            return p
        p.close()
        if not (wait_lock and r.startswith(b"-ERR [IN-USE]")) or \
                time.monotonic() > deadline:
            raise AssertionError(f"login as {user} answered {r!r}")
        time.sleep(0.05)


# ---------------------------------------------------------------- pop3d


def kill9_pop3d(inst):
    d = inst.pop3d
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait(timeout=buzon.t(10))
    d.proc = None
    d._err.close()


def restart_pop3d(inst, kill=False):
    if kill:
        kill9_pop3d(inst)
    else:
        inst.pop3d.stop()
    inst.pop3d.start()
