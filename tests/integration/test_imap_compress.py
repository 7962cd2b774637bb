"""imapd COMPRESS=DEFLATE (RFC 4978): raw deflate both ways after the
tagged OK, over imaps (993) and over imap (143) after STARTTLS.

The client here is a raw socket with Python's zlib, so the tests see
exactly what the server sends: every answer must arrive complete without
the client sending anything more (the server flushes every reply), a
client's partial flush must be answered at once, a 2 MB message must come
through byte-exact both ways, a second COMPRESS is refused with
[COMPRESSIONACTIVE], and a corrupt stream ends only its own connection."""

import random
import smtplib
import socket
import ssl
import threading
import time
import zlib

import pytest

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class ZClient:
    """An IMAP client over a socket that can switch to raw deflate.

    raw holds bytes received and not yet decompressed (or, before
    COMPRESS, not yet read as plaintext); text holds plaintext."""

    def __init__(self, sock):
        self.sock = sock
        self.raw = b""
        self.text = b""
        self.co = None          # compressor, after COMPRESS OK
        self.de = None          # decompressor
        self.n = 0

    # -- sending
    def send(self, data, flush=zlib.Z_SYNC_FLUSH):
        if self.co is not None:
            data = self.co.compress(data) + self.co.flush(flush)
        self.sock.sendall(data)

    def tag(self):
        self.n += 1
        return b"z%d" % self.n

    # -- receiving
    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError from None
        if not chunk:
            raise EOFError
        if self.de is not None:
            self.text += self.de.decompress(chunk)
        else:
            self.raw += chunk
            self.text += self.raw
            self.raw = b""
        return chunk

    def readline(self, timeout=5):
        deadline = time.monotonic() + buzon.t(timeout)
        while b"\r\n" not in self.text:
            self._recv(deadline)
        line, self.text = self.text.split(b"\r\n", 1)
        return line + b"\r\n"

    def read_tagged(self, tag, timeout=5):
        """Everything up to and including the tagged line of tag.  Fails
        (TimeoutError) when the server does not send it all by itself."""
        deadline = time.monotonic() + buzon.t(timeout)
        want = tag + b" "
        scanned = 0             # text before this holds no tagged line
        while True:
            start = 0 if self.text.startswith(want) else None
            if start is None:
                i = self.text.find(b"\r\n" + want, scanned)
                start = i + 2 if i >= 0 else None
                if i < 0:
                    scanned = max(0, len(self.text) - len(want) - 2)
            if start is not None:
                end = self.text.find(b"\r\n", start)
                if end >= 0:
                    out, self.text = self.text[:end + 2], self.text[end + 2:]
                    return out
            try:
                self._recv(deadline)
            except TimeoutError:
                raise AssertionError(
                    f"no complete answer to {tag!r} within {timeout}s without "
                    f"sending more; got {self.text[-300:]!r}") from None

    def cmd(self, line, flush=zlib.Z_SYNC_FLUSH, timeout=5):
        t = self.tag()
        self.send(t + b" " + line + b"\r\n", flush)
        out = self.read_tagged(t, timeout)
        return t, out

    def status(self, out, tag):
        return out[out.rindex(tag + b" "):].split(b" ", 2)[1]

    def compress(self, pipelined=b""):
        """COMPRESS DEFLATE; pipelined is sent compressed right behind the
        command, in the same write (as a hasty client might)."""
        t = self.tag()
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = t + b" COMPRESS DEFLATE\r\n"
        if pipelined:
            data += co.compress(pipelined) + co.flush(zlib.Z_SYNC_FLUSH)
        self.sock.sendall(data)
        # The OK is the last plaintext: read it byte by byte from text so
        # that what follows it can go to the decompressor.
        deadline = time.monotonic() + buzon.t(5)
        while b"\r\n" not in self.text:
            self._recv(deadline)
        line, rest = self.text.split(b"\r\n", 1)
        assert line.startswith(t + b" OK"), f"COMPRESS answered {line!r}"
        self.co = co
        self.de = zlib.decompressobj(-15)
        self.text = self.de.decompress(rest)
        return line

    def closed_by_server(self, timeout=5):
        deadline = time.monotonic() + buzon.t(timeout)
        try:
            while True:
                self._recv(deadline)
        except EOFError:
            return True
        except (ConnectionResetError, ssl.SSLError, zlib.error):
            return True
        except TimeoutError:
            return False


def connect_imaps(inst):
    s = socket.create_connection(("127.0.0.1", inst.imaps_port), timeout=buzon.t(5))
    s = ctx().wrap_socket(s)
    c = ZClient(s)
    assert c.readline().startswith(b"* OK")
    return c


def connect_starttls(inst):
    s = socket.create_connection(("127.0.0.1", inst.imap_port), timeout=buzon.t(5))
    c = ZClient(s)
    assert c.readline().startswith(b"* OK")
    t, out = c.cmd(b"STARTTLS")
    assert c.status(out, t) == b"OK", out
    assert c.text == b"", c.text
    c.sock = ctx().wrap_socket(s)
    return c


def login(c):
    t, out = c.cmd(b'LOGIN "%s" "%s"' % (ALICE.encode(), ALICE_PW.encode()))
    assert c.status(out, t) == b"OK", out
    return out


def deliver(inst, subject, body="Hello.\r\n"):
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
    s.sendmail("x@y.test", [ALICE],
               f"From: x@y.test\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject.replace(' ', '.')}@y.test>\r\n\r\n{body}")
    s.quit()


def big_message(size):
    """CRLF lines, part incompressible (base64 of random bytes), part very
    compressible (so one compressed read inflates past the server's input
    buffer), with no line that could look like an IMAP tag."""
    rnd = random.Random(4978)
    head = (b"From: alice@example.test\r\nTo: alice@example.test\r\n"
            b"Subject: big compressed\r\nMessage-ID: <big@example.test>\r\n\r\n")
    lines = []
    total = len(head)
    i = 0
    while total < size:
        if (i // 2000) % 2 == 0:
            line = rnd.randbytes(57).hex().encode()[:76] + b"\r\n"
        else:
            line = b"> the same quoted line over and over again, %06d\r\n" % (i % 7)
        lines.append(line)
        total += len(line)
        i += 1
    return head + b"".join(lines)


def fetch_literal(out):
    """The literal of the (one) FETCH response in out."""
    i = out.index(b"{")
    j = out.index(b"}\r\n", i)
    n = int(out[i + 1:j])
    return out[j + 3:j + 3 + n]


# ---------------------------------------------------------------- tests


def test_capability_only_after_login(imap):
    c = connect_imaps(imap)
    t, out = c.cmd(b"CAPABILITY")
    assert b"COMPRESS=DEFLATE" not in out, out
    t, out = c.cmd(b"COMPRESS DEFLATE")
    assert c.status(out, t) == b"BAD", f"COMPRESS before login: {out!r}"
    login(c)
    t, out = c.cmd(b"CAPABILITY")
    assert b" COMPRESS=DEFLATE" in out, out
    c.sock.close()


def test_compressed_session_imaps(imap):
    deliver(imap, "first")
    deliver(imap, "second")
    c = connect_imaps(imap)
    login(c)
    c.compress()
    t, out = c.cmd(b"NOOP")
    assert out == t + b" OK NOOP completed\r\n", out
    t, out = c.cmd(b'LIST "" "*"')
    assert c.status(out, t) == b"OK" and b"Sent" in out and b"INBOX" in out, out
    t, out = c.cmd(b"SELECT INBOX")
    assert c.status(out, t) == b"OK" and b"* 2 EXISTS" in out, out
    t, out = c.cmd(b"FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert c.status(out, t) == b"OK", out
    assert b"Subject: first" in out and b"Subject: second" in out, out
    # A second COMPRESS is refused; the session goes on compressed.
    t, out = c.cmd(b"COMPRESS DEFLATE")
    assert out.startswith(t + b" NO [COMPRESSIONACTIVE]"), out
    t, out = c.cmd(b"NOOP")
    assert c.status(out, t) == b"OK", out
    t, out = c.cmd(b"LOGOUT")
    assert b"* BYE" in out and c.status(out, t) == b"OK", out
    assert c.closed_by_server()


def test_compressed_session_after_starttls(imap):
    deliver(imap, "plain port")
    c = connect_starttls(imap)
    login(c)
    c.compress()
    t, out = c.cmd(b"SELECT INBOX")
    assert c.status(out, t) == b"OK" and b"* 1 EXISTS" in out, out
    t, out = c.cmd(b"FETCH 1 (BODY[TEXT])")
    assert c.status(out, t) == b"OK" and b"Hello.\r\n" in out, out
    t, out = c.cmd(b"LOGOUT")
    assert c.status(out, t) == b"OK", out


def test_unknown_mechanism_is_bad_and_nothing_changes(imap):
    c = connect_imaps(imap)
    login(c)
    t, out = c.cmd(b"COMPRESS LZ4")
    assert c.status(out, t) == b"BAD", out
    t, out = c.cmd(b"COMPRESS")
    assert c.status(out, t) == b"BAD", out
    t, out = c.cmd(b"NOOP")          # still plaintext both ways
    assert out == t + b" OK NOOP completed\r\n", out
    c.compress()                     # and compression can still start
    t, out = c.cmd(b"NOOP")
    assert c.status(out, t) == b"OK", out


def test_partial_flush_and_split_commands_are_answered(imap):
    c = connect_imaps(imap)
    login(c)
    c.compress()
    # Z_PARTIAL_FLUSH: the data ends in an empty fixed block; a reader
    # that waits for a sync marker or more input would stall here.
    t, out = c.cmd(b"NOOP", flush=zlib.Z_PARTIAL_FLUSH)
    assert c.status(out, t) == b"OK", out
    t, out = c.cmd(b"SELECT INBOX", flush=zlib.Z_PARTIAL_FLUSH)
    assert c.status(out, t) == b"OK", out
    # One command in three flushes of both kinds, with pauses.
    t = c.tag()
    c.send(t + b' LIST "', zlib.Z_SYNC_FLUSH)
    time.sleep(0.2)
    c.send(b'" "I', zlib.Z_PARTIAL_FLUSH)
    time.sleep(0.2)
    c.send(b'NBOX"\r\n', zlib.Z_PARTIAL_FLUSH)
    out = c.read_tagged(t)
    assert c.status(out, t) == b"OK" and b"INBOX" in out, out
    # Byte by byte, each flushed.
    t = c.tag()
    for b in t + b" NOOP\r\n":
        c.send(bytes([b]), zlib.Z_SYNC_FLUSH)
    out = c.read_tagged(t)
    assert c.status(out, t) == b"OK", out


def test_synchronizing_literal_continuation_is_flushed(imap):
    c = connect_imaps(imap)
    login(c)
    c.compress()
    msg = b"From: a@example.test\r\nSubject: sync literal\r\n\r\nhi\r\n"
    t = c.tag()
    c.send(t + b" APPEND INBOX {%d}\r\n" % len(msg))
    line = c.readline()
    assert line.startswith(b"+"), f"no continuation for a literal: {line!r}"
    c.send(msg + b"\r\n")
    out = c.read_tagged(t)
    assert c.status(out, t) == b"OK", out
    assert [p.read_bytes() for p in imap.messages(ALICE)] == [msg.replace(b"\r\n", b"\n")]


def test_input_pipelined_behind_compress_is_read_compressed(imap):
    c = connect_imaps(imap)
    login(c)
    c.compress(pipelined=b"p1 NOOP\r\np2 SELECT INBOX\r\n")
    out = c.read_tagged(b"p2")
    assert b"p1 OK" in out and b"p2 OK" in out, out
    t, out = c.cmd(b"NOOP")
    assert c.status(out, t) == b"OK", out


def test_many_pipelined_commands_inflating_past_the_input_buffer(imap):
    """~850 KB of commands in ~32 KB of deflate: one read of the server
    inflates past its 64 KiB input buffer, and the replies pass the
    256 KiB output mark, so the server holds input back many times;
    every command must still be answered without more input."""
    c = connect_imaps(imap)
    login(c)
    c.compress()
    n = 12000
    pre = b"n" * 60
    cmds = b"".join(pre + b"%d NOOP\r\n" % i for i in range(n))
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert len(co.compress(cmds) + co.flush()) * 16 < len(cmds)
    c.send(cmds, zlib.Z_SYNC_FLUSH)
    out = c.read_tagged(pre + b"%d" % (n - 1), timeout=30)
    assert out.count(b" OK NOOP completed\r\n") == n, out[-200:]
    t, out = c.cmd(b"NOOP")
    assert c.status(out, t) == b"OK", out


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# one imapd process, so that the pid measured is the one serving
@pytest.mark.buzon_conf(imapd={"workers": "1"})
def test_client_that_does_not_read_cannot_grow_server_memory(imap):
    """30,000 FETCHes of 1000 hardly compressible bytes each, sent as
    ~100 KB of deflate by a client that does not read its replies: the
    server must stop taking commands once replies pile up (as it does for
    plaintext input), not inflate and answer them all into memory
    (30 MB).  When the client reads, every one is answered."""
    rnd = random.Random(7)
    body = "\r\n".join(rnd.randbytes(57).hex()[:76] for _ in range(30)) + "\r\n"
    deliver(imap, "random", body)
    c = connect_imaps(imap)
    login(c)
    c.compress()
    t, out = c.cmd(b"SELECT INBOX")
    assert b"* 1 EXISTS" in out, out
    pid = imap.imapd.proc.pid
    before = rss_kib(pid)
    n = 30000
    cmds = b"".join(b"f%d FETCH 1 BODY.PEEK[TEXT]<0.1000>\r\n" % i for i in range(n))
    sender = threading.Thread(target=c.send, args=(cmds,))
    sender.start()
    time.sleep(buzon.t(2))
    grown = rss_kib(pid) - before
    out = c.read_tagged(b"f%d" % (n - 1), timeout=60)
    sender.join()
    assert out.count(b"OK FETCH completed\r\n") == n, out[-300:]
    if "asan" in str(buzon.BIN):
        return      # ASan's quarantine keeps every freed reply: RSS says nothing
    assert grown < 8 * 1024, \
        f"imapd grew by {grown} KiB while a client did not read its replies"


def test_big_message_both_ways_byte_exact(imap):
    msg = big_message(2 * 1024 * 1024)
    c = connect_imaps(imap)
    login(c)
    c.compress()
    t = c.tag()
    # LITERAL+ so the whole APPEND is one compressed stream write
    c.send(t + b" APPEND INBOX {%d+}\r\n" % len(msg) + msg + b"\r\n")
    out = c.read_tagged(t, timeout=30)
    assert c.status(out, t) == b"OK", out
    t, out = c.cmd(b"SELECT INBOX")
    assert b"* 1 EXISTS" in out, out
    t, out = c.cmd(b"FETCH 1 BODY[]", timeout=30)
    assert c.status(out, t) == b"OK", out[:200] + out[-200:]
    body = fetch_literal(out)
    assert len(body) == len(msg), (len(body), len(msg))
    assert body == msg, "FETCH BODY[] differs from the APPENDed message"
    # and the stored copy is the message with LF line ends
    files = imap.messages(ALICE)
    assert len(files) == 1 and files[0].read_bytes() == msg.replace(b"\r\n", b"\n")


def test_wire_is_compressed(imap):
    """What the server sends after OK is raw deflate, not plaintext, and
    it is smaller than the plaintext for repetitive replies."""
    c = connect_imaps(imap)
    login(c)
    c.compress()
    t = c.tag()
    c.send(b"".join(b"%s%d NOOP\r\n" % (t, i) for i in range(2000)))
    wire = b""
    deadline = time.monotonic() + buzon.t(10)
    while (t + b"1999 OK") not in c.text:
        wire += c._recv(deadline)
    assert b"NOOP completed" not in wire, "replies went out uncompressed"
    assert len(wire) * 5 < len(c.text), (len(wire), len(c.text))


def test_idle_push_is_flushed(imap):
    c = connect_imaps(imap)
    login(c)
    c.compress()
    t, out = c.cmd(b"SELECT INBOX")
    assert c.status(out, t) == b"OK", out
    t = c.tag()
    c.send(t + b" IDLE\r\n")
    assert c.readline().startswith(b"+")
    threading.Thread(target=deliver, args=(imap, "pushed")).start()
    line = c.readline(timeout=5)
    assert line == b"* 1 EXISTS\r\n", line
    c.send(b"DONE\r\n")
    out = c.read_tagged(t)
    assert c.status(out, t) == b"OK", out


@pytest.mark.parametrize("garbage", [
    b"\xff" * 64,                              # reserved block type
    random.Random(1).randbytes(4096),
    zlib.compress(b"a1 NOOP\r\n"),             # zlib header, not raw deflate
], ids=["reserved-block", "random", "zlib-header"])
def test_corrupt_stream_closes_only_that_connection(imap, garbage):
    c = connect_imaps(imap)
    login(c)
    c.compress()
    t, out = c.cmd(b"NOOP")
    assert c.status(out, t) == b"OK", out
    other = connect_imaps(imap)          # a second client, already connected
    login(other)
    c.sock.sendall(garbage)
    assert c.closed_by_server(), "server kept a connection with a corrupt stream"
    t, out = other.cmd(b"NOOP")
    assert other.status(out, t) == b"OK", out
    fresh = connect_imaps(imap)
    login(fresh)
    fresh.compress()
    t, out = fresh.cmd(b"NOOP")
    assert fresh.status(out, t) == b"OK", out


def test_client_ending_its_stream_then_sending_more_is_closed(imap):
    c = connect_imaps(imap)
    login(c)
    c.compress()
    # A final block (Z_FINISH) carrying a command: the command is still
    # answered; anything after the end of the stream is an error.
    c.sock.sendall(c.co.compress(b"f1 NOOP\r\n") + c.co.flush(zlib.Z_FINISH))
    out = c.read_tagged(b"f1")
    assert b"f1 OK" in out, out
    c.sock.sendall(b"\x00\x01\x02")
    assert c.closed_by_server()
