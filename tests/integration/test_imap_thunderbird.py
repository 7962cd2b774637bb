"""A Thunderbird session replayed byte for byte against imapd, once over
implicit TLS (993) and once over 143 + STARTTLS: CAPABILITY, ID,
AUTHENTICATE PLAIN, NAMESPACE, LIST (SUBSCRIBED) ... RETURN (SPECIAL-USE),
SELECT (CONDSTORE), the flag sync, the header fetch, the chunked body
download, STORE \\Seen, MOVE to Trash, APPEND to Sent, GETQUOTAROOT, IDLE
woken by an smtpd delivery, LOGOUT.  Each answer is checked line by line
against RFC 3501 and the extensions it uses, and against what is on disk."""

import re
import time

import pytest

import buzon
import imap_helpers as H

QUOTA_MB = 100
HEADER_FIELDS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority "
                 "References Newsgroups In-Reply-To Content-Type Reply-To")
CHUNK = 10240
SPECIAL = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash",
           "Junk": "\\Junk", "Archive": "\\Archive"}


def expected_header_fields(stored, names):
    """RFC 3501 6.4.5 HEADER.FIELDS: the named fields in message order,
    continuation lines included, CRLF line ends, then the blank line."""
    head = stored.split(b"\n\n", 1)[0]
    fields = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\n" + line
        else:
            fields.append(line)
    want = {n.lower() for n in names.split()}
    out = b""
    for f in fields:
        if f.split(b":", 1)[0].strip().lower().decode("latin-1") in want:
            out += H.crlf(f + b"\n")
    return out + b"\r\n"


def caps_of(resp_or_line):
    if isinstance(resp_or_line, H.Response):
        lines = resp_or_line.starting("* CAPABILITY ")
        assert len(lines) == 1, f"expected one CAPABILITY line:\n{resp_or_line}"
        line = lines[0][len(b"* CAPABILITY "):]
    else:
        line = resp_or_line
    toks = line.decode().split()
    assert len(toks) == len(set(t.upper() for t in toks)), f"duplicate capability: {toks}"
    return {t.upper() for t in toks}


def one(resp, pattern, what):
    """The single untagged line matching the regex; returns the match."""
    rx = re.compile(pattern)
    hits = [rx.fullmatch(u) for u in resp.untagged]
    hits = [h for h in hits if h]
    assert len(hits) == 1, f"expected exactly one {what} line ({pattern!r}), got {len(hits)}:\n{resp}"
    return hits[0]


def stored_total(inst):
    """Bytes of every message file in every folder of alice's Maildir."""
    root = inst.maildir(H.ALICE)
    total = 0
    for folder in [root] + [p for p in root.iterdir() if p.is_dir() and p.name.startswith(".")]:
        total += sum(p.stat().st_size for p in H.files(folder))
    return total


@pytest.fixture
def tb_mail(imap):
    """alice with a 100 MB quota and three delivered messages (one with all
    the headers Thunderbird asks for, one of ~30 KB, one small)."""
    imap.mailadm("user", "quota", H.ALICE, f"{QUOTA_MB}M", check=True)
    first = H.message("Thunderbird replay one", extra=[
        "Cc: Carol <carol@example.test>",
        "Reply-To: replies@y.test",
        "In-Reply-To: <parent@y.test>",
        "References: <grandparent@y.test>\n\t<parent@y.test>",
        "X-Priority: 1 (Highest)",
        "X-Other: not asked for",
        "Content-Type: text/plain; charset=us-ascii"])
    big = H.message("Thunderbird replay big", size=3 * CHUNK + 1234)
    small = H.message("Thunderbird replay small")
    for m in (first, big, small):
        H.deliver(imap, m)
    assert len(imap.messages(H.ALICE)) == 3
    return imap


def open_session(inst, how):
    """Connect the way Thunderbird does and authenticate; returns Conn."""
    if how == "imaps":
        c = H.Conn(inst.imaps_port, tls=True)
        assert c.greeting.startswith(b"* OK"), c.greeting
        caps = caps_of(c.ok("CAPABILITY"))
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
    else:
        c = H.Conn(inst.imap_port, tls=False)
        assert c.greeting.startswith(b"* OK"), c.greeting
        caps = caps_of(c.ok("CAPABILITY"))
        assert {"IMAP4REV1", "STARTTLS", "LOGINDISABLED"} <= caps, caps
        assert not any(x.startswith("AUTH=") for x in caps), \
            f"AUTH= mechanisms offered in plaintext: {caps}"
        r = c.starttls()
        assert r.untagged == [], f"untagged data with the STARTTLS OK:\n{r}"
        caps = caps_of(c.ok("CAPABILITY"))
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
    assert {"IMAP4REV1", "AUTH=PLAIN", "SASL-IR"} <= caps, caps
    r = c.authenticate_plain()
    m = re.match(rb"^\S+ OK \[CAPABILITY ([^\]]*)\]", r.tagged)
    after = caps_of(c.ok("CAPABILITY"))
    if m:      # Thunderbird trusts this list and skips its own CAPABILITY
        assert caps_of(m.group(1)) == after, (m.group(1), after)
    need = {"IMAP4REV1", "IDLE", "NAMESPACE", "UIDPLUS", "MOVE", "CONDSTORE",
            "SPECIAL-USE", "QUOTA", "ID", "LITERAL+", "ENABLE", "LIST-EXTENDED"}
    assert need <= after, f"missing after login: {need - after}"
    assert not any(x.startswith("AUTH=") or x in ("STARTTLS", "LOGINDISABLED")
                   for x in after), f"pre-login capabilities after login: {after}"
    return c


@pytest.mark.parametrize("how", ["imaps", "starttls"])
def test_thunderbird_session(tb_mail, how):
    inst = tb_mail
    inbox = inst.maildir(H.ALICE)
    c = open_session(inst, how)

    # -- ID (RFC 2971): one ID response, NIL or a list of string pairs
    r = c.ok('ID ("name" "Thunderbird" "version" "115.3.1")')
    ids = r.starting("* ID ")
    assert len(ids) == 1, r
    v = H.parse_value(ids[0][len(b"* ID "):])
    assert v.kind == "nil" or (v.kind == "list" and len(v.v) % 2 == 0 and
                               all(x.kind in ("string", "nil") for x in v.v)), ids[0]

    # -- NAMESPACE (RFC 2342): personal "" with "." only
    r = c.ok("NAMESPACE")
    assert r.untagged == [b'* NAMESPACE (("" ".")) NIL NIL'], r

    # -- LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE) (RFC 5258, 6154)
    r = c.ok('LIST (SUBSCRIBED) "" "*" RETURN (SPECIAL-USE)')
    seen = {}
    for u in r.untagged:
        m = re.fullmatch(rb'\* LIST \(([^)]*)\) "\." (.+)', u)
        assert m, f"malformed LIST line {u!r}"
        name = H.parse_value(m.group(2))
        assert name.kind in ("atom", "string"), u
        n = name.v.decode()
        assert n not in seen, f"{n} listed twice:\n{r}"
        seen[n] = set(m.group(1).decode().split())
    assert set(seen) == {"INBOX", *SPECIAL}, f"subscribed mailboxes:\n{r}"
    for n, attrs in seen.items():
        assert "\\Subscribed" in attrs, f"{n}: {attrs} lacks \\Subscribed (RFC 5258 3.1)"
        uses = attrs & set(SPECIAL.values())
        assert uses == ({SPECIAL[n]} if n in SPECIAL else set()), \
            f"{n}: special-use attributes {uses}"
        assert not attrs & {"\\Noselect", "\\NonExistent"}, f"{n}: {attrs}"

    # -- SELECT "INBOX" (CONDSTORE) (RFC 3501 6.3.1, RFC 7162 3.1.2)
    r = c.ok('SELECT "INBOX" (CONDSTORE)')
    assert re.match(rb"^\S+ OK \[READ-WRITE\]", r.tagged), r
    m = one(r, rb"\* FLAGS \(([^)]*)\)", "FLAGS")
    flags = set(m.group(1).decode().split())
    sysflags = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"}
    assert sysflags <= flags, flags
    m = one(r, rb"\* OK \[PERMANENTFLAGS \(([^)]*)\)\].*", "PERMANENTFLAGS")
    assert sysflags | {"\\*"} <= set(m.group(1).decode().split()), m.group(0)
    exists = int(one(r, rb"\* (\d+) EXISTS", "EXISTS").group(1))
    assert exists == 3, r
    one(r, rb"\* (\d+) RECENT", "RECENT")            # required by RFC 3501 6.3.1
    uidvalidity = int(one(r, rb"\* OK \[UIDVALIDITY (\d+)\].*", "UIDVALIDITY").group(1))
    uidnext = int(one(r, rb"\* OK \[UIDNEXT (\d+)\].*", "UIDNEXT").group(1))
    hms = int(one(r, rb"\* OK \[HIGHESTMODSEQ (\d+)\].*", "HIGHESTMODSEQ").group(1))
    assert uidvalidity > 0 and hms > 0, r

    # -- UID FETCH 1:* (FLAGS): the flag sync
    r = c.ok("UID FETCH 1:* (FLAGS)")
    f = r.fetches()
    assert [s for s, _ in f] == [1, 2, 3], r
    uids = [H.uid_of(it) for _, it in f]
    assert uids == sorted(uids) and len(set(uids)) == 3, uids
    assert uidnext == uids[-1] + 1, f"UIDNEXT {uidnext} but UIDs {uids}"
    for _, it in f:
        assert set(it) == {"UID", "FLAGS", "MODSEQ"}, \
            f"items {set(it)}: CONDSTORE is on, so MODSEQ must come with FLAGS (RFC 7162 3.1.4)"
        assert set(H.flags_of(it["FLAGS"])) <= {"\\Recent"}, it["FLAGS"]
        ms = it["MODSEQ"].v
        assert len(ms) == 1 and 0 < int(ms[0].v) <= hms, it["MODSEQ"]
    u1, u2, u3 = uids

    f1 = H.find_file(inbox, b"Subject: Thunderbird replay one")
    f2 = H.find_file(inbox, b"Subject: Thunderbird replay big")
    data1, data2 = f1.read_bytes(), f2.read_bytes()

    # -- the header fetch for the message list
    r = c.ok(f"UID FETCH {u1} (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])")
    f = r.fetches()
    assert len(f) == 1 and f[0][0] == 1, r
    it = f[0][1]
    assert H.uid_of(it) == u1
    assert int(it["RFC822.SIZE"].v) == len(H.crlf(data1)), \
        f"RFC822.SIZE {it['RFC822.SIZE'].v} != {len(H.crlf(data1))} (stored message with CRLF)"
    key = f"BODY[HEADER.FIELDS ({HEADER_FIELDS.upper()})]"
    assert key in it, f"no {key} in {list(it)}"
    got = it[key].v
    want = expected_header_fields(data1, HEADER_FIELDS)
    assert got == want, f"HEADER.FIELDS data\n{got!r}\nexpected\n{want!r}"
    assert b"X-Other" not in got and b"Received:" not in got

    # -- the chunked download of the big one: BODY.PEEK[]<off.10240>
    whole = b""
    size = None
    for k in range(20):
        r = c.ok(f"UID FETCH {u2} (UID RFC822.SIZE BODY.PEEK[]<{k * CHUNK}.{CHUNK}>)")
        f = r.fetches()
        assert len(f) == 1 and f[0][0] == 2, r
        it = f[0][1]
        assert H.uid_of(it) == u2
        size = int(it["RFC822.SIZE"].v)
        key = f"BODY[]<{k * CHUNK}>"
        assert key in it, f"no {key} in {list(it)}"
        chunk = it[key].v
        assert chunk is not None and len(chunk) <= CHUNK, (key, len(chunk or b""))
        whole += chunk
        if len(chunk) < CHUNK:
            break
    assert whole == H.crlf(data2), \
        f"assembled chunks ({len(whole)} bytes) differ from the stored file with CRLF " \
        f"({len(H.crlf(data2))} bytes)"
    assert size == len(whole), f"RFC822.SIZE {size} but the message is {len(whole)} bytes"
    # past the end: an empty string (RFC 3501 6.4.5)
    r = c.ok(f"UID FETCH {u2} (BODY.PEEK[]<{len(whole) + 5}.{CHUNK}>)")
    (_, it), = r.fetches()
    assert it[f"BODY[]<{len(whole) + 5}>"].v == b"", it
    r = c.ok(f"UID FETCH {u2} (FLAGS)")
    (_, it), = r.fetches()
    assert "\\Seen" not in H.flags_of(it["FLAGS"]), "BODY.PEEK set \\Seen"
    before_ms = int(it["MODSEQ"].v[0].v)

    # -- mark read
    r = c.ok(f"UID STORE {u2} +FLAGS (\\Seen)")
    f = r.fetches()
    assert f and all(s == 2 for s, _ in f), r
    for _, it in f:
        assert H.uid_of(it) == u2, it
        assert "\\Seen" in H.flags_of(it["FLAGS"]), it["FLAGS"]
        assert int(it["MODSEQ"].v[0].v) > before_ms, (before_ms, it["MODSEQ"])
    f2now = H.find_file(inbox, b"Subject: Thunderbird replay big")
    assert "S" in H.file_flags(f2now), f"flag not in the file name: {f2now.name}"
    assert f2now.parent.name == "cur", f2now

    # -- delete = move to Trash (RFC 6851, COPYUID of RFC 4315)
    r = c.ok(f'UID MOVE {u1} "Trash"')
    m = one(r, rb"\* OK \[COPYUID (\d+) (\d+) (\d+)\].*", "COPYUID")
    trash_uv, src, dst = (int(x) for x in m.groups())
    assert src == u1, m.group(0)
    exp = [u for u in r.untagged if re.fullmatch(rb"\* \d+ EXPUNGE", u)]
    assert exp == [b"* 1 EXPUNGE"], r
    assert r.untagged.index(m.group(0)) < r.untagged.index(exp[0]), \
        "COPYUID must come before the EXPUNGE (RFC 6851 4.3)"
    trash = inbox / ".Trash"
    moved = H.files(trash)
    assert len(moved) == 1 and moved[0].read_bytes() == data1, moved
    assert not [p for p in H.files(inbox) if b"Thunderbird replay one" in p.read_bytes()]
    r = c.ok('STATUS "Trash" (MESSAGES UIDNEXT UIDVALIDITY)')
    m = one(r, rb'\* STATUS "?Trash"? \((.*)\)', "STATUS")
    st = dict(zip(m.group(1).decode().split()[::2], map(int, m.group(1).decode().split()[1::2])))
    assert st == {"MESSAGES": 1, "UIDNEXT": dst + 1, "UIDVALIDITY": trash_uv}, st

    # -- save a sent message (APPEND with a synchronizing literal)
    sent_msg = (b"From: Alice <alice@example.test>\r\nTo: bob@example.test\r\n"
                b"Subject: Thunderbird sent copy\r\nMessage-ID: <tb-sent@example.test>\r\n"
                b"\r\nSee you.\r\n")
    r = c.send_literal_command('APPEND "Sent" (\\Seen)', sent_msg)
    assert r.status == "OK", r
    m = re.match(rb"^\S+ OK \[APPENDUID (\d+) (\d+)\]", r.tagged)
    assert m, f"no APPENDUID (RFC 4315): {r.tagged!r}"
    sent_uv, sent_uid = int(m.group(1)), int(m.group(2))
    sent = inbox / ".Sent"
    got = H.files(sent)
    assert len(got) == 1, got
    assert got[0].parent.name == "cur", f"a \\Seen message belongs in cur/: {got[0]}"
    assert H.file_flags(got[0]) == "S", got[0].name
    assert got[0].read_bytes() == sent_msg.replace(b"\r\n", b"\n")
    r = c.ok('STATUS "Sent" (MESSAGES UIDVALIDITY UIDNEXT)')
    m = one(r, rb'\* STATUS "?Sent"? \((.*)\)', "STATUS")
    st = dict(zip(m.group(1).decode().split()[::2], map(int, m.group(1).decode().split()[1::2])))
    assert st == {"MESSAGES": 1, "UIDVALIDITY": sent_uv, "UIDNEXT": sent_uid + 1}, st

    # -- quota (RFC 2087 form: STORAGE in units of 1024 octets)
    r = c.ok('GETQUOTAROOT "INBOX"')
    m = one(r, rb'\* QUOTAROOT (INBOX|"INBOX") (.+)', "QUOTAROOT")
    root = H.parse_value(m.group(2)).v
    q = one(r, rb"\* QUOTA (.+) \(STORAGE (\d+) (\d+)\)", "QUOTA")
    assert H.parse_value(q.group(1)).v == root, r
    used, limit = int(q.group(2)), int(q.group(3))
    assert limit == QUOTA_MB * 1024, f"limit {limit} KiB, expected {QUOTA_MB * 1024}"
    total = stored_total(inst)
    assert used in (total // 1024, (total + 1023) // 1024), \
        f"STORAGE usage {used} KiB, but the Maildir holds {total} bytes"

    # -- IDLE, and a delivery through smtpd
    tag = c.idle()
    t0 = time.monotonic()
    H.deliver(inst, H.message("Thunderbird replay pushed"))
    delivered = time.monotonic()
    got = []
    while True:
        left = delivered + buzon.t(1.0) - time.monotonic()
        assert left > 0, f"no EXISTS within 1 s of the delivery; got {got}"
        line = c.read_line(timeout=left)
        got.append(line)
        if re.fullmatch(rb"\* \d+ EXISTS", line):
            break
        assert re.fullmatch(rb"\* \d+ (RECENT|FETCH .*)", line), \
            f"unexpected line during IDLE: {line!r}"
    assert line == b"* 3 EXISTS", f"{got} (2 left after the MOVE, + 1 new)"
    assert time.monotonic() - t0 < buzon.t(3)
    r = c.done(tag)
    assert r.status == "OK", r
    assert not [u for u in r.untagged if re.search(rb"EXPUNGE|EXISTS", u)], r

    # the new message is there to fetch
    r = c.ok("FETCH 3 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    (s, it), = r.fetches()
    assert s == 3 and H.uid_of(it) == uidnext, it          # UIDNEXT predicted it
    assert it["BODY[HEADER.FIELDS (SUBJECT)]"].v == b"Subject: Thunderbird replay pushed\r\n\r\n"

    # -- LOGOUT: BYE, tagged OK, then the server closes
    r = c.command("LOGOUT")
    assert r.status == "OK", r
    assert len(r.untagged) == 1 and r.untagged[0].startswith(b"* BYE"), r
    assert c.closed_by_server(timeout=buzon.t(5)), "connection still open after LOGOUT"
    c.close()


def test_thunderbird_second_connection_and_condstore_resync(tb_mail):
    """Thunderbird keeps a second connection and re-syncs with CHANGEDSINCE."""
    inst = tb_mail
    a = open_session(inst, "imaps")
    r = a.ok('SELECT "INBOX" (CONDSTORE)')
    hms = int(one(r, rb"\* OK \[HIGHESTMODSEQ (\d+)\].*", "HIGHESTMODSEQ").group(1))
    b = open_session(inst, "imaps")
    b.ok('SELECT "INBOX" (CONDSTORE)')
    r = b.ok("UID STORE 3 +FLAGS.SILENT (\\Flagged)")
    # a's resync: only the changed message, with its new modseq
    r = a.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    f = [(s, it) for s, it in r.fetches() if H.uid_of(it) == 3]
    assert f, r
    assert all("\\Flagged" in H.flags_of(it["FLAGS"]) and int(it["MODSEQ"].v[0].v) > hms
               for _, it in f), r
    assert not [1 for _, it in r.fetches() if H.uid_of(it) != 3], \
        f"CHANGEDSINCE returned unchanged messages:\n{r}"
    for c in (a, b):
        c.ok("LOGOUT")
        c.close()


def test_thunderbird_saves_draft_with_date_and_keywords(imap):
    """APPEND "Drafts" (\\Draft $Forwarded) "date-time" {n}: the flags and
    keywords stick (file name letters), INTERNALDATE is the given instant
    (RFC 3501 6.3.11), and the FLAGS response of the next SELECT lists the
    keyword."""
    import calendar
    c = open_session(imap, "imaps")
    draft = b"From: alice@example.test\r\nSubject: Thunderbird draft\r\n\r\nunfinished\r\n"
    r = c.send_literal_command('APPEND "Drafts" (\\Draft $Forwarded) "05-Mar-2024 14:30:00 +0100"',
                               draft)
    assert r.status == "OK" and r.code() and r.code().startswith("APPENDUID "), r
    uid = int(r.code().split()[2])
    got = H.files(imap.maildir(H.ALICE) / ".Drafts")
    assert len(got) == 1 and got[0].read_bytes() == draft.replace(b"\r\n", b"\n"), got
    assert "D" in H.file_flags(got[0]) and "S" not in H.file_flags(got[0]), got[0].name
    r = c.ok('SELECT "Drafts"')
    m = one(r, rb"\* FLAGS \(([^)]*)\)", "FLAGS")
    assert "$Forwarded" in m.group(1).decode().split(), m.group(0)
    r = c.ok(f"UID FETCH {uid} (FLAGS INTERNALDATE RFC822.SIZE)")
    (_, it), = r.fetches()
    assert set(H.flags_of(it["FLAGS"])) - {"\\Recent"} == {"\\Draft", "$Forwarded"}, it["FLAGS"]
    assert int(it["RFC822.SIZE"].v) == len(draft)
    d = re.fullmatch(r"\s?(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)",
                     it["INTERNALDATE"].text())
    assert d, it["INTERNALDATE"].raw
    mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec"].index(d.group(2)) + 1
    t = calendar.timegm((int(d.group(3)), mon, int(d.group(1)), int(d.group(4)),
                         int(d.group(5)), int(d.group(6))))
    off = (int(d.group(8)) * 3600 + int(d.group(9)) * 60) * (1 if d.group(7) == "+" else -1)
    assert t - off == calendar.timegm((2024, 3, 5, 13, 30, 0)), \
        f"INTERNALDATE {it['INTERNALDATE'].text()} is not 05-Mar-2024 14:30:00 +0100"
    c.ok("LOGOUT")
