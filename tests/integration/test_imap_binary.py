"""imapd BINARY (RFC 3516, RFC 9051 6.4.5): FETCH BINARY[part]<partial>,
BINARY.PEEK and BINARY.SIZE on base64, quoted-printable, 8bit and nested
parts, byte for byte against Python's own MIME decoding; partial ranges
at the edges; NUL data as literal8 ~{n}; NO [UNKNOWN-CTE]; container
parts refused; \\Seen set by BINARY and not by BINARY.PEEK; APPEND with
literal8 data.

Messages go in by APPEND, so the bytes the server holds are known
exactly.  The client here is a raw one: the tests check the server's
exact output, literal headers included."""

import base64
import email
import email.policy
import re
import socket
import ssl

import pytest

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]

PNG = bytes(range(256)) + b"\x00\x00IEND\xaeB`\x82"     # has NULs
BLOB = bytes((i * 7 + 3) % 256 for i in range(1, 300) if (i * 7 + 3) % 256)

def b64_lines(data):
    enc = base64.b64encode(data)
    return b"".join(enc[i:i + 76] + b"\r\n" for i in range(0, len(enc), 76))


# 1 text/plain QP, 2 application/octet-stream base64 (no NUL),
# 3 text/plain 8bit, 4 message/rfc822 > multipart/alternative
# (4.1 text/plain base64, 4.2 text/html QP), 5 x-uuencode,
# 6 image/png base64 (NULs)
MULTI = (
    b"From: Sender <sender@example.test>\r\n"
    b"To: alice@example.test\r\n"
    b"Subject: binary parts\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    b"\r\n"
    b"This is a MIME message.\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, a long line that is soft=\r\n"
    b"-broken here, and 1+1=3D2.\r\n"
    b"Second line.\r\n"
    b"--outer\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b64_lines(BLOB) +
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    + "Ünïcödé 8bit text\r\nzweite Zeile".encode() + b"\r\n"
    b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.test\r\n"
    b"Subject: inner\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b64_lines("Innen: Äpfel und Birnen\r\n".encode()) +
    b"--inner\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>=C3=84pfel</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b"Content-Type: application/x-foo\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 foo\r\n"
    b"#86)C\r\n"
    b"end\r\n"
    b"--outer\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b64_lines(PNG) +
    b"--outer--\r\n"
)

SINGLE = (
    b"From: x@example.test\r\n"
    b"Subject: single part\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    + b64_lines("Hallo Welt, ganz ohne Teile.\r\n".encode())
)


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Raw:
    """A raw IMAP client over TLS: sends a command, reads every line up
    to its tagged reply (literals read by their announced size) and
    returns (tagged line, bytes before it)."""

    def __init__(self, inst, login=True):
        sock = socket.create_connection(("127.0.0.1", inst.imaps_port),
                                        timeout=buzon.t(10))
        self.s = ctx().wrap_socket(sock)
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()
        self.n = 0
        if login:
            tagged, _ = self.cmd(f'LOGIN "{ALICE}" "{ALICE_PW}"')
            assert b" OK " in tagged, tagged

    def read_response_line(self):
        """One response line, with the literals it announces inline."""
        out = b""
        while True:
            line = self.f.readline()
            assert line, f"connection closed; got so far: {out!r}"
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}\r\n$", line)
            if not m:
                return out
            out += self.f.read(int(m.group(1)))

    def cmd(self, text, literal=None, sync=False):
        """Send "tag text"; a literal (bytes) goes after text and a space
        as {n+} (or {n}, waiting for "+", when sync); text ending in "~"
        makes it a literal8.  Returns (tagged, untagged bytes)."""
        self.n += 1
        tag = f"b{self.n}".encode()
        data = tag + b" " + (text.encode() if isinstance(text, str) else text)
        if literal is not None:
            if not data.endswith(b"~"):
                data += b" "
            data += b"{%d%s}\r\n" % (len(literal), b"" if sync else b"+")
            if sync:
                self.s.sendall(data)
                cont = self.f.readline()
                assert cont.startswith(b"+ "), cont
                data = b""
            data += literal
        self.s.sendall(data + b"\r\n")
        before = b""
        while True:
            line = self.read_response_line()
            if line.startswith(tag + b" "):
                return line, before
            before += line

    def ok(self, text, literal=None):
        tagged, before = self.cmd(text, literal)
        assert re.match(rb"b\d+ OK", tagged), (text, tagged, before)
        return before

    def close(self):
        try:
            self.cmd("LOGOUT")
        finally:
            self.s.close()


def parts_by_number(msg):
    """{"1": Message, "4.1": Message, ...} for the leaves and containers,
    numbered as IMAP does (message/rfc822 parts' children go inside)."""
    out = {}

    def walk(m, prefix):
        if m.is_multipart() and m.get_content_maintype() == "multipart":
            for i, p in enumerate(m.get_payload(), 1):
                num = f"{prefix}.{i}" if prefix else str(i)
                out[num] = p
                if p.get_content_type() == "message/rfc822":
                    walk(p.get_payload(0), num)
                elif p.is_multipart():
                    walk(p, num)
    walk(msg, "")
    return out


def python_decoded(raw, num):
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    return parts_by_number(m)[num].get_payload(decode=True)


def binary_data(untagged, label):
    """The data of `label` (e.g. b"BINARY[2]<3>") in a FETCH response,
    and whether it came as a literal8."""
    i = untagged.index(label + b" ")
    m = re.compile(rb"(~?)\{(\d+)\}\r\n").match(untagged, i + len(label) + 1)
    assert m, f"{label} not followed by a literal: {untagged[i:i + 80]!r}"
    n = int(m.group(2))
    return untagged[m.end():m.end() + n], m.group(1) == b"~"


@pytest.fixture
def box(imap):
    c = Raw(imap)
    c.ok("APPEND INBOX", MULTI)
    c.ok("APPEND INBOX", SINGLE)
    c.ok("SELECT INBOX")
    yield c
    c.close()


def test_leaf_parts_match_python_decoding(box):
    for num in ("1", "2", "3", "4.1", "4.2", "6"):
        want = python_decoded(MULTI, num)
        before = box.ok(f"FETCH 1 (BINARY.PEEK[{num}] BINARY.SIZE[{num}])")
        got, lit8 = binary_data(before, f"BINARY[{num}]".encode())
        assert got == want, f"BINARY[{num}]: got {got[:60]!r}..., want {want[:60]!r}..."
        has_nul = b"\0" in want
        assert lit8 == has_nul, \
            f"BINARY[{num}]: literal8 is {lit8}, but NUL in the data is {has_nul}"
        m = re.search(rb"BINARY\.SIZE\[" + num.encode() + rb"\] (\d+)", before)
        assert m and int(m.group(1)) == len(want), (num, before[-80:])
    # the exact framing for a NUL-free and a NUL part
    before = box.ok("FETCH 1 (BINARY.PEEK[2])")
    assert before == b"* 1 FETCH (BINARY[2] {%d}\r\n%s)\r\n" % (len(BLOB), BLOB), before[:80]
    before = box.ok("FETCH 1 (BINARY.PEEK[6])")
    assert before == b"* 1 FETCH (BINARY[6] ~{%d}\r\n%s)\r\n" % (len(PNG), PNG), before[:80]


def test_whole_message_and_single_part(box):
    before = box.ok("FETCH 1 (BINARY.PEEK[])")
    assert before == b"* 1 FETCH (BINARY[] {%d}\r\n%s)\r\n" % (len(MULTI), MULTI)
    before = box.ok("FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[2])")
    want = "Hallo Welt, ganz ohne Teile.\r\n".encode()
    assert before == (b"* 2 FETCH (BINARY[1] {%d}\r\n%s BINARY.SIZE[1] %d "
                      b"BINARY[2] {0}\r\n)\r\n" % (len(want), want, len(want))), before
    # UID FETCH leads with the UID
    before = box.ok("UID FETCH 2 (BINARY.SIZE[1])")
    assert before == b"* 2 FETCH (UID 2 BINARY.SIZE[1] %d)\r\n" % len(want), before


def test_partials(box):
    blob = python_decoded(MULTI, "2")
    n = len(blob)
    cases = [(0, 10), (10, 5), (n - 3, 3), (n - 3, 100), (n - 1, 1),
             (n, 5), (n + 100, 5), (0, n), (0, n + 1)]
    for origin, count in cases:
        before = box.ok(f"FETCH 1 (BINARY.PEEK[2]<{origin}.{count}>)")
        want = blob[origin:origin + count]
        assert before == b"* 1 FETCH (BINARY[2]<%d> {%d}\r\n%s)\r\n" % (
            origin, len(want), want), (origin, count, before[:80])
    # decoded octets, not encoded ones: QP part around the "ü"
    qp = python_decoded(MULTI, "1")
    before = box.ok("FETCH 1 (BINARY.PEEK[1]<2.2>)")
    assert qp[2:4] == "ü".encode() and before == \
        b"* 1 FETCH (BINARY[1]<2> {2}\r\n\xc3\xbc)\r\n", before
    # a NUL in the slice decides the literal form, not the whole part
    i = PNG.index(b"\x00", 1)
    before = box.ok(f"FETCH 1 (BINARY.PEEK[6]<1.{i - 1}>)")
    assert before == b"* 1 FETCH (BINARY[6]<1> {%d}\r\n%s)\r\n" % (i - 1, PNG[1:i])
    before = box.ok(f"FETCH 1 (BINARY.PEEK[6]<1.{i}>)")
    assert before == b"* 1 FETCH (BINARY[6]<1> ~{%d}\r\n%s)\r\n" % (i, PNG[1:i + 1])
    # syntax: count 0, no count, SIZE with a partial, non-part sections
    for bad in ("BINARY.PEEK[2]<0.0>", "BINARY.PEEK[2]<5>", "BINARY.SIZE[2]<0.5>",
                "BINARY[1.MIME]", "BINARY.PEEK[HEADER]", "BINARY[TEXT]",
                "BINARY.SIZE[1.HEADER.FIELDS (From)]", "BINARY.PEEK[0]"):
        tagged, before = box.cmd(f"FETCH 1 ({bad})")
        assert re.match(rb"b\d+ BAD ", tagged) and before == b"", (bad, tagged, before)


def test_unknown_cte_and_containers(box):
    tagged, before = box.cmd("FETCH 1 (BINARY.PEEK[5])")
    assert re.match(rb"b\d+ NO \[UNKNOWN-CTE\] ", tagged) and before == b"", (tagged, before)
    tagged, before = box.cmd("FETCH 1 (BINARY.SIZE[5])")
    assert re.match(rb"b\d+ NO \[UNKNOWN-CTE\] ", tagged) and before == b"", (tagged, before)
    # BODY[5] is still fine: nothing to decode there
    before = box.ok("FETCH 1 (BODY.PEEK[5])")
    assert before == b"* 1 FETCH (BODY[5] {25}\r\nbegin 644 foo\r\n#86)C\r\nend)\r\n", before
    # message/rfc822 and multipart parts are not leaves (RFC 9051 6.4.5)
    for item in ("BINARY.PEEK[4]", "BINARY[4]", "BINARY.SIZE[4]"):
        tagged, before = box.cmd(f"FETCH 1 ({item})")
        assert re.match(rb"b\d+ NO ", tagged) and b"leaf" in tagged and before == b"", tagged
    c2 = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n" \
         "--o\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n" \
         "--i\r\n\r\nplain\r\n--i--\r\n--o--\r\n"
    box.ok("APPEND INBOX", c2.encode())
    box.ok("NOOP")
    tagged, before = box.cmd("FETCH 3 (BINARY.SIZE[1])")
    assert re.match(rb"b\d+ NO ", tagged) and before == b"", tagged
    before = box.ok("FETCH 3 (BINARY.PEEK[1.1])")
    assert before == b"* 3 FETCH (BINARY[1.1] {5}\r\nplain)\r\n", before
    # a failing BINARY fails the whole FETCH: no message is reported...
    tagged, before = box.cmd("FETCH 1:3 (BINARY.PEEK[5])")
    assert re.match(rb"b\d+ NO \[UNKNOWN-CTE\]", tagged) and before == b"", (tagged, before)
    # ... and a non-PEEK one sets no \Seen anywhere
    tagged, before = box.cmd("FETCH 1:2 (BINARY[5])")
    assert re.match(rb"b\d+ NO \[UNKNOWN-CTE\]", tagged), tagged
    before = box.ok("FETCH 1:2 (FLAGS)")
    assert b"\\Seen" not in before, before


def test_seen_by_binary_not_by_peek(box):
    box.ok("FETCH 1 (BINARY.PEEK[1])")
    box.ok("FETCH 1 (BINARY.SIZE[1])")
    assert box.ok("FETCH 1 (FLAGS)") == b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    want = python_decoded(MULTI, "3")
    before = box.ok("FETCH 1 (BINARY[3])")
    assert before == b"* 1 FETCH (BINARY[3] {%d}\r\n%s FLAGS (\\Seen \\Recent))\r\n" % (
        len(want), want), before
    assert box.ok("FETCH 2 (FLAGS)") == b"* 2 FETCH (FLAGS (\\Recent))\r\n"
    # in a read-only mailbox nothing is set
    box.ok("EXAMINE INBOX")
    before = box.ok("FETCH 2 (BINARY[1])")
    assert b"\\Seen" not in before, before
    assert box.ok("FETCH 2 (FLAGS)") == b"* 2 FETCH (FLAGS ())\r\n"


def test_append_literal8(imap):
    c = Raw(imap)
    # "binary" data with NULs and CRLF line ends survives the store
    data = (b"From: x@example.test\r\nSubject: nul\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n"
            b"\x00\x01zero\x00 \xff\r\nmore\x00\r\n")
    body = data.split(b"\r\n\r\n", 1)[1]
    tagged, before = c.cmd("APPEND INBOX ~", data)
    assert re.match(rb"b\d+ OK \[APPENDUID \d+ 1\]", tagged), tagged
    tagged, before = c.cmd("APPEND INBOX ~", data, sync=True)   # ~{n} waits for "+"
    assert re.match(rb"b\d+ OK \[APPENDUID \d+ 2\]", tagged), tagged
    c.ok("SELECT INBOX")
    before = c.ok("FETCH 1:2 (BINARY.PEEK[1] BINARY.PEEK[])")
    for seq in (1, 2):
        assert (b"* %d FETCH (BINARY[1] ~{%d}\r\n%s BINARY[] ~{%d}\r\n%s)\r\n"
                % (seq, len(body), body, len(data), data)) in before, before
    # binary data the store would change (bare LF, CR before CRLF) is refused
    for bad in (b"Subject: x\r\n\r\na\nb\r\n", b"Subject: x\r\n\r\na\r\r\nb\r\n"):
        tagged, before = c.cmd("APPEND INBOX ~", bad)
        assert re.match(rb"b\d+ NO \[UNKNOWN-CTE\]", tagged), (bad, tagged)
    # the same bytes in a normal literal are plain text: accepted as before
    tagged, before = c.cmd("APPEND INBOX", b"Subject: x\r\n\r\na\nb\r\n")
    assert re.match(rb"b\d+ OK", tagged), tagged
    c.close()


def test_capability_lists_binary(imap):
    c = Raw(imap)
    before = c.ok("CAPABILITY")
    caps = before.split()
    assert b"BINARY" in caps and b"IMAP4rev2" in caps and b"IMAP4rev1" in caps, before
    c.close()
