"""imapd against hostile or broken clients, and the MIME corpus over the
wire.

  - malformed commands get BAD (tagged, or untagged when the tag itself is
    bad) and the session stays in sync;
  - over-long lines, too-big literals (NO [TOOBIG] before a synchronizing
    literal is sent; a LITERAL+ one is swallowed), deep nesting;
  - clients that vanish mid-APPEND or mid-FETCH of a 5 MB message leave no
    descriptor behind;
  - too many commands before login, or too many bad ones: BYE;
  - SIGTERM: every client gets BYE, exit code 0;
  - tests/data/mime/*.eml dropped into a Maildir: RFC822.SIZE, ENVELOPE,
    BODY and BODYSTRUCTURE equal NAME.expected (the values the unit tests
    hold the store to), BODY[] is the file with CRLF, and part sections
    (BODY[1.2.MIME], BODY[2.HEADER], ...) are cut right."""

import re
import select
import smtplib
import socket
import ssl
import threading
import time

import pytest

import buzon
import imap_helpers as H
from daemon import Daemon

CORPUS = buzon.REPO / "tests" / "data" / "mime"
NAMES = sorted(p.stem for p in CORPUS.glob("*.eml"))


def bad_then_ok(conn, raw, tag=None, untagged=False):
    """Send raw (one or more lines), then NOOP: the raw command gets BAD
    (tagged with tag, or '* BAD') and the NOOP right after gets OK."""
    conn.send(raw)
    probe = conn.next_tag()
    conn.send(f"{probe} NOOP\r\n")
    r = conn.read_response(probe)
    shown = raw[:80]
    if untagged:
        bads = [u for u in r.untagged if u.startswith(b"* BAD")]
        assert len(bads) == 1, f"{shown!r}: expected one '* BAD', got:\n{r}"
        assert not [u for u in r.untagged if re.match(rb"^\S+ (OK|NO|BAD)", u)
                    and not u.startswith(b"* ")], f"{shown!r}: a tagged answer:\n{r}"
    else:
        mine = [u for u in r.untagged if u.startswith(tag.encode() + b" ")]
        assert len(mine) == 1 and mine[0].startswith(tag.encode() + b" BAD"), \
            f"{shown!r}: expected '{tag} BAD', got:\n{r}"
    assert r.status == "OK", f"{shown!r}: the NOOP after it got {r.tagged!r} (out of sync)"
    return r


MALFORMED = [
    # (bytes, tag or None for an invalid tag)
    (b"t1 FROBNICATE\r\n", "t1"),
    (b"t2 NOOP )\r\n", "t2"),
    (b't3 LIST "" ("*"\r\n', "t3"),
    (b"t4 LOGIN {abc}\r\n", "t4"),
    (b"t5 LOGIN {5\r\n", "t5"),
    (b"t6 LOGIN {}\r\n", "t6"),
    (b"t7 LOGIN {-1}\r\n", "t7"),
    (b'"t8 NOOP\r\n', None),
    (b"t+9 NOOP\r\n", None),
    (b"t{10 NOOP\r\n", None),
    (b"t*11 NOOP\r\n", None),
    (b"t%12 NOOP\r\n", None),
    (b"t(13 NOOP\r\n", None),
    (b"\x01t14 NOOP\r\n", None),
    (b"t15\r\n", "t15"),
    (b"t16 NOOP\rX\r\n", "t16"),
    (b't17 LOGIN "unterminated\r\n', "t17"),
    (b"t18 LOGIN a\r\n", "t18"),
]

MALFORMED_SELECTED = [
    (b"s1 FETCH 1 (FLAGS\r\n", "s1"),
    (b"s2 FETCH 1:* (FLAGS))\r\n", "s2"),
    (b"s3 FETCH 1 BODY[HEADER.FIELDS (From)\r\n", "s3"),
    (b"s4 FETCH 0 FLAGS\r\n", "s4"),
    (b"s5 FETCH 1 (FLAGS NOSUCHITEM)\r\n", "s5"),
    (b"s6 UID FROB 1\r\n", "s6"),
    (b"s7 STORE 1 FLAGS\r\n", "s7"),
    (b"s8 SEARCH (ALL\r\n", "s8"),
    (b"s9 FETCH 1 BODY[1.]\r\n", "s9"),
    (b"s10 FETCH 1 BODY[]<5>\r\n", "s10"),
    (b"s11 SELECT\r\n", "s11"),
    (b"s12 COPY 1:x Trash\r\n", "s12"),
]


def test_malformed_commands_before_login(imap):
    c = H.Conn(imap.imap_port)
    for raw, tag in MALFORMED:
        bad_then_ok(c, raw, tag, untagged=tag is None)
    # and the session still logs in after STARTTLS
    c.starttls()
    c.login()
    c.close()


def test_malformed_commands_when_selected(imap):
    H.deliver(imap, H.message("robust one"))
    c = H.session(imap, select="INBOX")
    for raw, tag in MALFORMED + MALFORMED_SELECTED:
        bad_then_ok(c, raw, tag, untagged=tag is None)
    r = c.ok("FETCH 1 (FLAGS)")
    (_, it), = r.fetches()
    assert "\\Seen" not in H.flags_of(it["FLAGS"]), "a malformed command changed flags"
    c.ok("LOGOUT")


def test_overlong_lines_stay_in_sync(imap):
    c = H.session(imap, select="INBOX")
    # a command line far over any sane limit, in an atom and in a quoted string
    for raw in (b"l1 NOOP " + b"x" * 200000 + b"\r\n",
                b'l2 LOGIN "' + b"y" * 200000 + b'" pw\r\n',
                b"l3 FETCH 1 (" + b"FLAGS " * 40000 + b")\r\n"):
        c.send(raw)
        probe = c.next_tag()
        c.send(f"{probe} NOOP\r\n")
        r = c.read_response(probe, timeout=buzon.t(15))
        tag = raw.split(b" ", 1)[0]
        bads = [u for u in r.untagged if u.startswith(b"* BAD") or u.startswith(tag + b" BAD")]
        assert len(bads) == 1, f"{raw[:40]!r}...: expected one BAD, got:\n{r}"
        assert not [u for u in r.untagged if u.startswith(tag + b" OK")], r
        assert r.status == "OK", r
    # literal bytes do not count as line length: a long literal is fine
    big = b"z" * 150000
    r = c.send_literal_command("SEARCH CHARSET UTF-8 TEXT", big)
    assert r.status == "OK" and r.starting("* SEARCH"), r
    c.ok("LOGOUT")


def appendlimit(conn):
    r = conn.ok("CAPABILITY")
    m = re.search(rb"APPENDLIMIT=(\d+)", r.untagged[0])
    return int(m.group(1)) if m else None


def test_literal_too_big_refused_before_it_is_sent(imap):
    c = H.session(imap)
    limit = appendlimit(c)
    assert limit, "no APPENDLIMIT=n advertised (RFC 7889)"
    inbox = imap.maildir(H.ALICE)
    for size in (limit + 1, 10 ** 12, 2 ** 63 - 1):
        tag = c.next_tag()
        c.send(f"{tag} APPEND INBOX {{{size}}}\r\n".encode())
        line = c.read_line(timeout=buzon.t(5))
        assert not line.startswith(b"+"), \
            f"{{{size}}}: the server asked for a literal over its limit ({line!r})"
        assert line.startswith(f"{tag} NO [TOOBIG]".encode()) or \
            (size > limit * 1000 and line.startswith(f"{tag} BAD".encode())), line
        c.ok("NOOP")                   # nothing of the literal was expected
    # at the limit itself: a continuation (then we give up on it: BAD, in sync)
    tag = c.next_tag()
    c.send(f"{tag} APPEND INBOX {{{limit}}}\r\n".encode())
    assert c.read_line().startswith(b"+"), f"{{{limit}}} (= APPENDLIMIT) refused"
    c.close()
    assert H.files(inbox) == []


def test_literal_plus_too_big_is_swallowed(imap):
    """{n+} over the limit: the client sends the bytes at once (RFC 7888);
    the server answers [TOOBIG] and never reads them as commands."""
    c = H.session(imap, select="INBOX")
    limit = appendlimit(c)
    n = limit + 1
    tag = c.next_tag()
    c.send(f"{tag} APPEND INBOX {{{n}+}}\r\n".encode())
    evil = b"e9 LOGOUT\r\n"
    chunk = evil * ((1 << 20) // len(evil))
    sent = 0
    early = None
    c.sock.settimeout(buzon.t(30))
    while sent < n:
        piece = chunk[:min(len(chunk), n - sent)]
        try:
            c.sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            break                      # the server may close instead
        sent += len(piece)
        if early is None and select.select([c.sock], [], [], 0)[0]:
            early = sent
    closed_early = sent < n
    if not closed_early:
        c.send(b"\r\n")
    got = []
    try:
        while True:
            line = c.read_line(timeout=buzon.t(30))
            got.append(line)
            if line.startswith(tag.encode() + b" "):
                break
    except H.Closed:
        pass
    tagged = [l for l in got if l.startswith(tag.encode() + b" ")]
    assert tagged and re.match(rb"^\S+ (NO|BAD) \[TOOBIG\]", tagged[0]), \
        f"no [TOOBIG] answer to a {n}-byte LITERAL+ APPEND: {got[:5]}"
    assert not [l for l in got if l.startswith(b"e9 ")], "literal bytes were run as commands"
    if not closed_early and not any(l.startswith(b"* BYE") for l in got):
        r = c.ok("NOOP")                  # still in sync
        assert not [u for u in r.untagged if u.startswith(b"* BYE")], r
        c.ok("LOGOUT")
    assert H.files(imap.maildir(H.ALICE)) == []


@pytest.mark.parametrize("where", ["preauth", "selected"])
def test_deep_nesting_bad(imap, where):
    if where == "preauth":
        c = H.Conn(imap.imap_port)
        lines = [b"n1 ID " + b"(" * 1000 + b")" * 1000 + b"\r\n",
                 b"n2 ID " + b"(" * 100000 + b"\r\n",
                 b"n3 LOGIN " + b"(" * 64 + b"a" + b")" * 64 + b" b\r\n"]
    else:
        H.deliver(imap, H.message("robust nest"))
        c = H.session(imap, select="INBOX")
        lines = [b"n1 SEARCH " + b"(" * 1000 + b"ALL" + b")" * 1000 + b"\r\n",
                 b"n2 FETCH 1 " + b"(" * 200 + b"FLAGS" + b")" * 200 + b"\r\n",
                 b"n3 SEARCH " + b"NOT " * 5000 + b"ALL\r\n",
                 b"n4 SEARCH " + b"OR ALL " * 5000 + b"ALL\r\n",
                 b"n5 STORE 1 +FLAGS " + b"(" * 500 + b")" * 500 + b"\r\n"]
    for raw in lines:
        tag = raw.split(b" ", 1)[0].decode()
        bad_then_ok(c, raw, tag)
    if where == "selected":
        c.ok("FETCH 1 (FLAGS)")
    c.close()
    assert imap.imapd.proc.poll() is None


def test_too_many_commands_before_login_bye(imap):
    c = H.Conn(imap.imap_port)
    answers = 0
    bye = False
    for i in range(1, 301):
        try:
            c.send(f"p{i} NOOP\r\n")
        except OSError:
            break
        try:
            line = c.read_line()
        except H.Closed:
            break
        if line.startswith(b"* BYE"):
            bye = True
            break
        assert line.startswith(f"p{i} OK".encode()), line
        answers += 1
    assert bye, f"{answers} commands before login and no BYE"
    assert c.closed_by_server(timeout=buzon.t(5)), "connection open after BYE"
    # after login there is no such limit
    c = H.session(imap)
    for i in range(300):
        c.ok("NOOP")
    c.ok("LOGOUT")


def test_too_many_bad_commands_bye(imap):
    c = H.session(imap)
    bye = False
    for i in range(1, 301):
        try:
            c.send(f"q{i} FETCH 1 (FLAGS\r\n")
            line = c.read_line()
        except (H.Closed, OSError):
            break
        if line.startswith(b"* BYE"):
            bye = True
            break
        assert line.startswith(f"q{i} BAD".encode()), line
    assert bye, "300 malformed commands in a row and no BYE"
    assert c.closed_by_server(timeout=buzon.t(5))


def index_fds(pid):
    return [t for t in H.fd_targets(pid) if "/index.db" in t]


def account_db_fds(pid):
    """The account database: opened once per pool thread that has checked
    a password (at most one connection per thread, so bounded), which
    depends on scheduling, not on leaks."""
    return [t for t in H.fd_targets(pid) if "/state/buzon.db" in t]


def counted_fds(pid):
    return H.fd_count(pid) - len(index_fds(pid)) - len(account_db_fds(pid))


def settle(pid, baseline, what, index_too=True):
    """Wait for imapd to close every socket of the vanished clients and
    (index_too) the shared index, which stays open 5 s after its last
    user (plus up to 5 s until the sweep)."""
    def ok():
        idx = index_fds(pid)
        if index_too and idx:
            return False
        return counted_fds(pid) <= baseline and len(account_db_fds(pid)) <= 5 * 4
    try:
        buzon.wait_until(ok, buzon.t(20), interval=0.25, what=what)
    except AssertionError:
        raise AssertionError(
            f"{what}: imapd holds {H.fd_count(pid)} descriptors, baseline {baseline}: "
            f"{H.fd_targets(pid)}") from None


# one imapd process, so that the pid measured is the one serving
@pytest.mark.buzon_conf(top={"max_connections_per_ip": "400"}, imapd={"workers": "1"})
def test_vanishing_clients_leak_no_descriptors(imap):
    inbox = imap.maildir(H.ALICE)
    big = H.message("robust five MB", size=5 * 1024 * 1024).replace(b"\r\n", b"\n")
    H.drop(inbox, big)
    pid = imap.imapd.proc.pid
    # warm up (SASL, account DB, the index)
    c = H.session(imap, select="INBOX")
    r = c.ok("FETCH 1 (RFC822.SIZE)")
    size = int(r.fetches()[0][1]["RFC822.SIZE"].v)
    assert size == len(H.crlf(big))
    c.ok("LOGOUT")
    c.close()
    # (the shared index may still be open for its grace period: not counted)
    baseline = counted_fds(pid)

    def vanish_fetch(k):
        c = H.session(imap, select="INBOX")
        c.send(f"{c.next_tag()} FETCH 1 BODY.PEEK[]\r\n")
        c.sock.settimeout(buzon.t(10))
        c.sock.recv(1 << 16)               # the first bytes of 5 MB
        (c.abort if k % 2 else c.close)()

    def vanish_append(k):
        c = H.session(imap)
        n = 3 * 1024 * 1024
        if k % 2:
            c.send(f"{c.next_tag()} APPEND INBOX {{{n}+}}\r\n")
        else:
            c.send(f"{c.next_tag()} APPEND INBOX {{{n}}}\r\n")
            assert c.read_line().startswith(b"+")
        c.send(b"x" * (1024 * 1024))
        (c.abort if k % 3 else c.close)()

    def vanish_handshake(k):
        s = socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=buzon.t(5))
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 20)
        s.close()

    errors = []

    def worker(fn, ks):
        for k in ks:
            try:
                fn(k)
            except Exception as e:          # reported below
                errors.append(f"{fn.__name__}({k}): {e!r}")

    for fn in (vanish_fetch, vanish_append, vanish_handshake):
        threads = [threading.Thread(target=worker, args=(fn, range(j, 50, 4)))
                   for j in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=buzon.t(120))
        assert not errors, errors[:5]
        assert imap.imapd.proc.poll() is None, "imapd died"
        settle(pid, baseline + 2, f"50 clients that vanished ({fn.__name__})",
               index_too=False)
    settle(pid, baseline + 2, "all the vanished clients")

    # still serving, and nothing half-appended landed
    c = H.session(imap, select="INBOX")
    r = c.ok("FETCH 1 (BODY.PEEK[])", timeout=buzon.t(30))
    (_, it), = r.fetches()
    assert it["BODY[]"].v == H.crlf(big)
    c.ok("LOGOUT")
    assert len(H.files(inbox)) == 1, [p.name for p in H.files(inbox)]
    assert [p.name for p in (inbox / "tmp").iterdir()] == []


def test_sigterm_says_bye_to_everyone_and_exits_0(imap):
    H.deliver(imap, H.message("robust sigterm"))
    pre = H.Conn(imap.imap_port)
    sel = H.session(imap, select="INBOX")
    idle = H.session(imap, select="INBOX")
    idle.idle()
    app = H.session(imap)
    app.send(f"{app.next_tag()} APPEND INBOX {{100000}}\r\n")
    assert app.read_line().startswith(b"+")
    app.send(b"partial" * 100)
    time.sleep(0.2)                     # let imapd read the partial literal
    t0 = time.monotonic()
    imap.imapd.stop()                   # SIGTERM; asserts exit code 0
    elapsed = time.monotonic() - t0
    for name, c in (("pre-auth", pre), ("selected", sel), ("idle", idle), ("mid-APPEND", app)):
        got = H.lines_until_closed(c, buzon.t(2))
        assert any(l.startswith(b"* BYE") for l in got), f"{name} client got no BYE: {got}"
        c.close()
    assert elapsed < buzon.t(5), f"imapd took {elapsed:.1f}s to stop with idle clients"
    assert len(H.files(imap.maildir(H.ALICE))) == 1, "the interrupted APPEND landed"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=2).close()


# ---------------------------------------------------------------- MIME corpus

def unescape(s):
    out = bytearray()
    b = s.encode("utf-8")
    i = 0
    while i < len(b):
        if b[i:i + 1] == b"\\" and i + 1 < len(b):
            nxt = b[i + 1:i + 2]
            out += {b"r": b"\r", b"n": b"\n"}.get(nxt, nxt)
            i += 2
        else:
            out += b[i:i + 1]
            i += 1
    return bytes(out)


def expected(name):
    want = {}
    for line in (CORPUS / f"{name}.expected").read_text("utf-8").split("\n"):
        if not line or line.startswith("#") or " " not in line:
            continue
        k, v = line.split(" ", 1)
        want[k] = unescape(v)
    assert set(want) == {"SIZE", "ENVELOPE", "BODY", "BODYSTRUCTURE"}, name
    return want


@pytest.fixture(scope="module")
def corpus(request, tmp_path_factory):
    """One imapd with every corpus message dropped into alice's new/ as it
    is on disk (so SIZE is exact), plus a second copy of some delivered
    through smtpd.  Yields (inst, {name: uid})."""
    inst = buzon.Instance(tmp_path_factory.mktemp("corpus"))
    inst.setup_accounts()
    inst.start_smtpd()
    inst.imapd = Daemon(inst, "imapd", inst.imap_port, b"* OK")
    inst.imapd.start()
    try:
        inbox = inst.maildir(H.ALICE)
        base = time.time() - 1000
        for k, name in enumerate(NAMES):
            H.drop(inbox, (CORPUS / f"{name}.eml").read_bytes(), stamp=base + k)
        c = H.session(inst, select="INBOX")
        r = c.ok("FETCH 1:* (UID BODY.PEEK[])")
        uids = {}
        for _, it in r.fetches():
            body = it["BODY[]"].v
            hit = [n for n in NAMES if H.crlf((CORPUS / f"{n}.eml").read_bytes()) == body]
            assert len(hit) == 1, f"BODY[] of UID {H.uid_of(it)} matches {hit}: {body[:200]!r}"
            uids[hit[0]] = H.uid_of(it)
        assert set(uids) == set(NAMES), set(NAMES) - set(uids)
        c.ok("LOGOUT")
        yield inst, uids
    finally:
        try:
            inst.imapd.stop()
        finally:
            assert inst.stop_smtpd() == 0


@pytest.mark.parametrize("name", NAMES)
def test_corpus_structure(corpus, name):
    inst, uids = corpus
    want = expected(name)
    c = H.session(inst, select="INBOX")
    uid = uids[name]
    r = c.ok(f"UID FETCH {uid} (RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE)")
    f = [it for _, it in r.fetches() if H.uid_of(it) == uid]
    assert len(f) == 1, r
    it = f[0]
    problems = []
    if it["RFC822.SIZE"].raw != want["SIZE"]:
        problems.append(f"RFC822.SIZE {it['RFC822.SIZE'].raw!r}, expected {want['SIZE']!r}")
    for item in ("ENVELOPE", "BODY", "BODYSTRUCTURE"):
        if item not in it:
            problems.append(f"no {item}")
        elif it[item].raw != want[item]:
            problems.append(f"{item} is\n  {it[item].raw!r}\nexpected\n  {want[item]!r}")
    # a second time comes from the index's cache: the same bytes
    r2 = c.ok(f"UID FETCH {uid} (ENVELOPE BODYSTRUCTURE)")
    it2 = [x for _, x in r2.fetches() if H.uid_of(x) == uid][0]
    for item in ("ENVELOPE", "BODYSTRUCTURE"):
        if item in it and it2[item].raw != it[item].raw:
            problems.append(f"cached {item} differs: {it2[item].raw!r}")
    r = c.ok(f"UID FETCH {uid} (BODY.PEEK[] FLAGS)")
    it = [x for _, x in r.fetches() if H.uid_of(x) == uid][0]
    raw = (CORPUS / f"{name}.eml").read_bytes()
    if it["BODY[]"].v != H.crlf(raw):
        problems.append("BODY[] is not the file with CRLF line ends")
    if "\\Seen" in H.flags_of(it["FLAGS"]):
        problems.append("\\Seen set by a PEEK")
    c.ok("LOGOUT")
    assert not problems, f"{name}.eml:\n" + "\n".join(problems)


SECTIONS = [
    # (file, section, expected bytes)
    ("rfc822_attach", "1", b"Forwarding the notes below."),
    ("rfc822_attach", "1.MIME", b"Content-Type: text/plain\r\n\r\n"),
    ("rfc822_attach", "2.MIME", b"Content-Type: message/rfc822\r\n"
     b"Content-Disposition: attachment; filename=\"notes.eml\"\r\n\r\n"),
    ("rfc822_attach", "2.HEADER",
     b"From: Ivan <ivan@example.net>\r\nTo: Grace <grace@example.org>\r\n"
     b"Subject: meeting notes\r\nDate: Fri, 19 Jan 2024 16:00:00 +0000\r\n"
     b"Message-ID: <notes-42@example.net>\r\nMIME-Version: 1.0\r\n"
     b"Content-Type: multipart/mixed; boundary=\"outer-inner\"\r\n\r\n"),
    ("rfc822_attach", "2.HEADER.FIELDS (subject FROM)",
     b"From: Ivan <ivan@example.net>\r\nSubject: meeting notes\r\n\r\n"),
    ("rfc822_attach", "2.1", b"1. budget\r\n2. hiring"),
    ("rfc822_attach", "2.2.MIME",
     b"Content-Type: text/x-diff; name=plan.diff\r\nContent-Disposition: attachment\r\n\r\n"),
    ("rfc822_attach", "2.TEXT",
     b"--outer-inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
     b"1. budget\r\n2. hiring\r\n--outer-inner\r\nContent-Type: "
     b"text/x-diff; name=plan.diff\r\nContent-Disposition: attachment\r\n"
     b"\r\n--- a/plan\r\n+++ b/plan\r\n-old\r\n+new\r\n--outer-inner--\r\n"),
    ("nested", "1.1", b"See the picture."),
    ("nested", "1.2.MIME",
     b"Content-Type: multipart/related; boundary=\"rel-3\"; type=\"text/html\"\r\n\r\n"),
    ("nested", "1.2.2", b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"),
    ("nested", "1.2.2.MIME",
     b"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
     b"Content-ID: <img1@example.org>\r\nContent-Disposition: inline\r\n\r\n"),
    ("nested", "2", b"a,b,c\r\n1,2,3"),
    ("no_trailing_newline", "TEXT", b"last line without a newline"),
    ("no_trailing_newline", "1", b"last line without a newline"),
    ("no_trailing_newline", "HEADER", b"From: nonl@example.org\r\nTo: rcpt@example.com\r\n"
     b"Subject: no newline at the end\r\n\r\n"),
    ("rfc2231", "2", b"x"),
]


@pytest.mark.parametrize("name,section,want", SECTIONS,
                         ids=[f"{n}-{s.split()[0]}" for n, s, _ in SECTIONS])
def test_corpus_sections(corpus, name, section, want):
    inst, uids = corpus
    c = H.session(inst, select="INBOX")
    uid = uids[name]
    r = c.ok(f"UID FETCH {uid} (BODY.PEEK[{section}])")
    it = [x for _, x in r.fetches() if H.uid_of(x) == uid]
    assert len(it) == 1, r
    key = f"BODY[{section}]".upper()
    assert key in it[0], f"no {key} in {list(it[0])}"
    got = it[0][key].v
    assert got == want, f"{name} BODY[{section}] is\n{got!r}\nexpected\n{want!r}"
    # and a partial of it
    r = c.ok(f"UID FETCH {uid} (BODY.PEEK[{section}]<2.5>)")
    it = [x for _, x in r.fetches() if H.uid_of(x) == uid][0]
    assert it[f"BODY[{section}]<2>".upper()].v == want[2:7], it
    c.ok("LOGOUT")


SMTP_NAMES = [n for n in NAMES
              if (CORPUS / f"{n}.eml").read_bytes().endswith(b"\n")
              and b"\n\n" in (CORPUS / f"{n}.eml").read_bytes().replace(b"\r\n", b"\n")]


def test_corpus_delivered_through_smtpd(corpus):
    """The same messages delivered by smtpd (trace headers prepended):
    ENVELOPE and BODYSTRUCTURE do not change."""
    inst, _ = corpus
    bob_inbox = inst.maildir(H.BOB)
    for name in SMTP_NAMES:
        data = H.crlf((CORPUS / f"{name}.eml").read_bytes())
        s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
        try:
            s.sendmail("x@y.test", [H.BOB], data, mail_options=["BODY=8BITMIME"])
        finally:
            s.quit()
    c = H.session(inst, H.BOB, H.BOB_PW, select="INBOX")
    r = c.ok("FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (Subject Date)])")
    problems = []
    seen = set()
    for _, it in r.fetches():
        hdr = it["BODY[HEADER.FIELDS (SUBJECT DATE)]"].v
        match = [n for n in SMTP_NAMES if n not in seen and
                 expected(n)["ENVELOPE"] == it["ENVELOPE"].raw]
        if not match:
            problems.append(f"ENVELOPE {it['ENVELOPE'].raw[:200]!r} matches no corpus file "
                            f"(headers {hdr!r})")
            continue
        n = match[0]
        seen.add(n)
        if it["BODYSTRUCTURE"].raw != expected(n)["BODYSTRUCTURE"]:
            problems.append(f"{n}: BODYSTRUCTURE after smtpd\n  {it['BODYSTRUCTURE'].raw!r}\n"
                            f"expected\n  {expected(n)['BODYSTRUCTURE']!r}")
    assert seen == set(SMTP_NAMES) or problems, set(SMTP_NAMES) - seen
    assert not problems, "\n".join(problems)
    assert len(H.files(bob_inbox)) == len(SMTP_NAMES)
    c.ok("LOGOUT")
