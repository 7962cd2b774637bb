"""Two sessions on one mailbox, and a Maildir changed behind imapd's back.

RFC 3501 7.4.1: an EXPUNGE is never sent while no command is in progress,
nor during FETCH, STORE or SEARCH, so a session's sequence numbers stay
what it was last told until it is told otherwise; EXISTS and FETCH FLAGS
updates come at NOOP (and at once during IDLE, RFC 2177).  With QRESYNC
enabled, VANISHED replaces EXPUNGE (RFC 7162 3.2.10).  mutt working on
the same Maildir (a file renamed to add :2,S, a file deleted, a file
dropped into new/) is noticed at the next NOOP and by a new session."""

import os
import re

import pytest

import buzon
import imap_helpers as H

EXPUNGE_RE = re.compile(rb"\* (\d+) EXPUNGE")
EXISTS_RE = re.compile(rb"\* (\d+) EXISTS")


class View:
    """What a client knows: sequence number i+1 -> UID (None = not fetched
    yet), updated from untagged responses the way a client must."""

    def __init__(self, uids):
        self.uids = list(uids)

    def apply(self, lines, qresync=False):
        for u in lines:
            m = EXPUNGE_RE.fullmatch(u)
            if m:
                assert not qresync, f"EXPUNGE sent with QRESYNC enabled: {u!r}"
                n = int(m.group(1))
                assert 1 <= n <= len(self.uids), f"{u!r} but the client knows {len(self.uids)}"
                del self.uids[n - 1]
                continue
            m = EXISTS_RE.fullmatch(u)
            if m:
                n = int(m.group(1))
                assert n >= len(self.uids), \
                    f"{u!r} shrinks the mailbox from {len(self.uids)} (RFC 3501 7.3.1)"
                self.uids += [None] * (n - len(self.uids))
                continue
            if u.startswith(b"* VANISHED "):
                assert qresync, f"VANISHED without QRESYNC: {u!r}"
                rest = u[len(b"* VANISHED "):]
                assert not rest.startswith(b"(EARLIER)"), u
                gone = set(expand(rest.decode()))
                self.uids = [x for x in self.uids if x not in gone]
                continue
            if H.FETCH_RE.match(u):
                seq, it = H.parse_fetch(u)
                assert 1 <= seq <= len(self.uids), f"{u!r} but the client knows {len(self.uids)}"
                if "UID" in it:
                    known = self.uids[seq - 1]
                    assert known in (None, H.uid_of(it)), \
                        f"{u[:120]!r}: the client's message {seq} is UID {known}"
                    self.uids[seq - 1] = H.uid_of(it)

    def check(self, conn):
        """The client's view agrees with FETCH 1:* (UID)."""
        r = conn.ok("FETCH 1:* (UID)") if self.uids else conn.ok("NOOP")
        self.apply([u for u in r.untagged if not H.FETCH_RE.match(u)])
        got = {s: H.uid_of(it) for s, it in r.fetches()}
        for i, uid in enumerate(self.uids):
            assert i + 1 in got, f"no FETCH for message {i + 1}:\n{r}"
            if uid is not None:
                assert got[i + 1] == uid, f"message {i + 1} is UID {got[i + 1]}, client knew {uid}"
            self.uids[i] = got[i + 1]
        assert max(got, default=0) <= len(self.uids), f"FETCH beyond EXISTS:\n{r}"


def expand(seqset):
    out = []
    for part in seqset.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out += range(min(a, b), max(a, b) + 1)
        else:
            out.append(int(part))
    return out


def setup3(inst):
    for i in (1, 2, 3):
        H.deliver(inst, H.message(f"conc m{i}"))
    assert len(inst.messages(H.ALICE)) == 3


def uids_by_subject(conn):
    r = conn.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    out = {}
    for s, it in r.fetches():
        subj = it["BODY[HEADER.FIELDS (SUBJECT)]"].v.strip().decode()
        out[subj.split(": ", 1)[1]] = (s, H.uid_of(it))
    return out


def no_expunge(r, what):
    bad = [u for u in r.untagged if EXPUNGE_RE.fullmatch(u) or u.startswith(b"* VANISHED")]
    assert not bad, f"{what}: expunge reported during the command (RFC 3501 7.4.1):\n{r}"


def test_expunge_waits_for_noop(imap):
    setup3(imap)
    a = H.session(imap, select="INBOX")
    b = H.session(imap, select="INBOX")
    ids = uids_by_subject(b)
    u1, u2, u3 = ids["conc m1"][1], ids["conc m2"][1], ids["conc m3"][1]
    view = View([u1, u2, u3])

    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("EXPUNGE")
    assert [u for u in r.untagged if EXPUNGE_RE.fullmatch(u)] == [b"* 2 EXPUNGE"], r
    inbox = imap.maildir(H.ALICE)
    assert not [p for p in H.files(inbox) if b"conc m2" in p.read_bytes()], "m2 still on disk"

    # B has not been told: its numbers are still 1 2 3
    r = b.command("FETCH 1:3 (UID FLAGS)")
    no_expunge(r, "FETCH")
    got = {s: H.uid_of(it) for s, it in r.fetches()}
    assert got.get(1) == u1 and got.get(3) == u3, \
        f"B's FETCH 1:3 must still use B's numbering (3 = UID {u3}):\n{r}"
    assert got.get(2, u2) == u2, f"message 2 answered with another message:\n{r}"
    assert r.status in ("OK", "NO"), r

    r = b.ok("STORE 3 +FLAGS (\\Flagged)")
    no_expunge(r, "STORE")
    f = r.fetches()
    assert [s for s, _ in f] == [3] and "\\Flagged" in H.flags_of(f[0][1]["FLAGS"]), r
    m3 = H.find_file(inbox, b"Subject: conc m3")
    m1 = H.find_file(inbox, b"Subject: conc m1")
    assert "F" in H.file_flags(m3) and "F" not in H.file_flags(m1), \
        f"STORE 3 hit the wrong file: {m1.name} {m3.name}"

    r = b.ok("SEARCH FLAGGED")
    no_expunge(r, "SEARCH")
    assert r.starting("* SEARCH") == [b"* SEARCH 3"], r

    r = b.ok("UID SEARCH FLAGGED")
    assert r.starting("* SEARCH") == [f"* SEARCH {u3}".encode()], r
    view.apply(r.untagged)            # (an EXPUNGE is allowed during a UID command)

    r = b.ok("NOOP")
    view.apply(r.untagged)
    assert view.uids[:2] == [u1, u3] and len(view.uids) == 2, \
        f"after NOOP B should know {[u1, u3]}, knows {view.uids}:\n{r}"
    view.check(b)
    r = b.ok("FETCH 2 (UID)")
    (s, it), = r.fetches()
    assert s == 2 and H.uid_of(it) == u3, r
    for c in (a, b):
        c.ok("LOGOUT")
        c.close()


def test_expunged_body_fetch_by_other_session(imap):
    """B fetches the body of a message A expunged (its file is gone): no
    data of another message, no crash, the session goes on."""
    setup3(imap)
    a = H.session(imap, select="INBOX")
    b = H.session(imap, select="INBOX")
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = b.command("FETCH 2 (BODY.PEEK[])")
    no_expunge(r, "FETCH")
    assert r.status in ("OK", "NO"), r
    for s, it in r.fetches():
        assert s == 2, r
        assert b"conc m2" in it["BODY[]"].v, f"message 2 answered with another body:\n{r}"
    r = b.ok("NOOP")
    assert [u for u in r.untagged if EXPUNGE_RE.fullmatch(u)] == [b"* 2 EXPUNGE"], r
    b.ok("LOGOUT")
    a.ok("LOGOUT")


def test_new_mail_and_flag_changes_at_noop(imap):
    setup3(imap)
    a = H.session(imap, select="INBOX")
    b = H.session(imap, select="INBOX")
    ids = uids_by_subject(b)
    view = View([ids[f"conc m{i}"][1] for i in (1, 2, 3)])

    r = b.ok("NOOP")
    assert r.untagged == [], f"NOOP with nothing new:\n{r}"

    H.deliver(imap, H.message("conc m4"))
    r = b.ok("NOOP")
    assert r.starting("* ") and [u for u in r.untagged if EXISTS_RE.fullmatch(u)] == [b"* 4 EXISTS"], r
    view.apply(r.untagged)
    view.check(b)
    assert view.uids[3] > view.uids[2]

    a.ok("STORE 1 +FLAGS.SILENT (\\Flagged $Important)")
    r = b.ok("NOOP")
    f = r.fetches()
    assert f, f"B was not told about A's flag change:\n{r}"
    for s, it in f:
        assert s == 1, r
        fl = H.flags_of(it["FLAGS"])
        assert "\\Flagged" in fl and "$Important" in fl, r
    view.apply(r.untagged)

    a.ok("STORE 1 -FLAGS.SILENT (\\Flagged)")
    r = b.ok("NOOP")
    f = r.fetches()
    assert f and all("\\Flagged" not in H.flags_of(it["FLAGS"]) for _, it in f), r

    # APPEND by A into the selected mailbox
    r = a.send_literal_command("APPEND INBOX", b"Subject: conc appended\r\n\r\nx\r\n")
    assert r.status == "OK", r
    r = b.ok("NOOP")
    assert [u for u in r.untagged if EXISTS_RE.fullmatch(u)] == [b"* 5 EXISTS"], r
    view.apply(r.untagged)
    view.check(b)
    for c in (a, b):
        c.ok("LOGOUT")


def test_idle_sees_flags_expunge_and_new_mail(imap):
    setup3(imap)
    a = H.session(imap, select="INBOX")
    b = H.session(imap, select="INBOX")
    ids = uids_by_subject(b)
    view = View([ids[f"conc m{i}"][1] for i in (1, 2, 3)])
    tag = b.idle()

    a.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    got = H.read_until(b, lambda l: H.FETCH_RE.match(l) is not None, buzon.t(2), "FETCH during IDLE")
    seq, it = H.parse_fetch(got[-1])
    assert seq == 1 and "\\Seen" in H.flags_of(it["FLAGS"]), got
    view.apply(got)

    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    got = H.read_until(b, lambda l: EXPUNGE_RE.fullmatch(l) is not None, buzon.t(2),
                     "EXPUNGE during IDLE")
    assert got[-1] == b"* 2 EXPUNGE", got
    view.apply(got)

    H.deliver(imap, H.message("conc idle new"))
    got = H.read_until(b, lambda l: EXISTS_RE.fullmatch(l) is not None, buzon.t(2),
                     "EXISTS during IDLE")
    view.apply(got)
    assert got[-1] == b"* 3 EXISTS", got

    r = b.done(tag)
    assert r.status == "OK", r
    view.apply(r.untagged)
    view.check(b)
    assert len(view.uids) == 3
    for c in (a, b):
        c.ok("LOGOUT")


def test_qresync_vanished(imap):
    setup3(imap)
    for i in (4, 5):
        H.deliver(imap, H.message(f"conc m{i}"))
    a = H.session(imap)
    r = a.ok("ENABLE QRESYNC")
    assert r.starting("* ENABLED") and b"QRESYNC" in r.starting("* ENABLED")[0], r
    r = a.select("INBOX")
    uv = int(re.search(rb"UIDVALIDITY (\d+)", b"\n".join(r.untagged)).group(1))
    hms0 = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"\n".join(r.untagged)).group(1))
    b = H.session(imap)
    b.ok("ENABLE QRESYNC")
    b.select("INBOX")
    plain = H.session(imap, select="INBOX")     # no QRESYNC: EXPUNGE as usual
    ids = uids_by_subject(b)
    u = {k: v[1] for k, v in ids.items()}
    vb = View([u[f"conc m{i}"] for i in range(1, 6)])
    vp = View(list(vb.uids))

    a.ok("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    r = a.ok("EXPUNGE")
    assert not [x for x in r.untagged if EXPUNGE_RE.fullmatch(x)], \
        f"EXPUNGE responses to a QRESYNC session (RFC 7162 3.2.10):\n{r}"
    van = r.starting("* VANISHED ")
    assert len(van) == 1 and not van[0].startswith(b"* VANISHED (EARLIER)"), r
    assert sorted(expand(van[0][len(b"* VANISHED "):].decode())) == \
        sorted([u["conc m2"], u["conc m4"]]), r

    r = b.ok("NOOP")
    assert not [x for x in r.untagged if EXPUNGE_RE.fullmatch(x)], r
    van = r.starting("* VANISHED ")
    assert len(van) == 1, r
    assert sorted(expand(van[0][len(b"* VANISHED "):].decode())) == \
        sorted([u["conc m2"], u["conc m4"]]), r
    vb.apply(r.untagged, qresync=True)
    vb.check(b)
    assert vb.uids == [u["conc m1"], u["conc m3"], u["conc m5"]]

    r = plain.ok("NOOP")
    exp = [x for x in r.untagged if EXPUNGE_RE.fullmatch(x)]
    assert len(exp) == 2 and not r.starting("* VANISHED"), r
    vp.apply(r.untagged)
    vp.check(plain)
    assert vp.uids == vb.uids

    # a client coming back with (UIDVALIDITY MODSEQ) learns what went away
    c = H.session(imap)
    c.ok("ENABLE QRESYNC")
    r = c.ok(f"SELECT INBOX (QRESYNC ({uv} {hms0}))")
    van = r.starting("* VANISHED (EARLIER) ")
    assert len(van) == 1, r
    assert sorted(expand(van[0][len(b"* VANISHED (EARLIER) "):].decode())) == \
        sorted([u["conc m2"], u["conc m4"]]), r
    assert re.search(rb"\* 3 EXISTS", b"\n".join(r.untagged)), r
    for x in (a, b, c, plain):
        x.ok("LOGOUT")


def rename_flags(path, letters):
    base = path.name.split(":2,", 1)[0]
    new = path.parent / f"{base}:2,{letters}"
    os.rename(path, new)
    return new


def test_mutt_changes_behind_our_back(imap):
    setup3(imap)
    b = H.session(imap, select="INBOX")
    ids = uids_by_subject(b)
    view = View([ids[f"conc m{i}"][1] for i in (1, 2, 3)])
    inbox = imap.maildir(H.ALICE)
    # imapd took them from new/ into cur/ when it gave them UIDs
    for p in H.files(inbox):
        assert p.parent.name == "cur", f"{p} still in new/ after SELECT"

    # mutt reads m1: renames the file to add S
    rename_flags(H.find_file(inbox, b"Subject: conc m1"), "S")
    r = b.ok("NOOP")
    f = r.fetches()
    assert f and all(s == 1 and "\\Seen" in H.flags_of(it["FLAGS"]) for s, it in f), \
        f"mutt's :2,S not reported as \\Seen at NOOP:\n{r}"
    view.apply(r.untagged)

    # mutt deletes m2 for good
    H.find_file(inbox, b"Subject: conc m2").unlink()
    r = b.ok("NOOP")
    assert [x for x in r.untagged if EXPUNGE_RE.fullmatch(x)] == [b"* 2 EXPUNGE"], r
    view.apply(r.untagged)

    # a delivery agent drops one into new/, mutt files one straight into cur/
    H.drop(inbox, b"From: mda@y.test\nSubject: conc dropped\n\nnew one\n")
    H.drop(inbox, b"From: mutt@y.test\nSubject: conc filed\n\nfiled\n", sub="cur", info="2,FS")
    r = b.ok("NOOP")
    assert [x for x in r.untagged if EXISTS_RE.fullmatch(x)] == [b"* 4 EXISTS"], r
    view.apply(r.untagged)
    view.check(b)
    ids = uids_by_subject(b)
    assert list(ids) == ["conc m1", "conc m3", "conc dropped", "conc filed"], ids
    r = b.ok("FETCH 1:4 (FLAGS)")
    fl = {s: set(H.flags_of(it["FLAGS"])) - {"\\Recent"} for s, it in r.fetches()}
    assert fl == {1: {"\\Seen"}, 2: set(), 3: set(), 4: {"\\Flagged", "\\Seen"}}, fl

    # and mutt unflags the one it filed
    rename_flags(H.find_file(inbox, b"Subject: conc filed"), "S")
    r = b.ok("NOOP")
    f = r.fetches()
    assert f and all(s == 4 and "\\Flagged" not in H.flags_of(it["FLAGS"]) for s, it in f), r

    # a new session sees the same mailbox
    c = H.session(imap)
    r = c.select("INBOX")
    assert re.search(rb"\* 4 EXISTS", b"\n".join(r.untagged)), r
    r = c.ok("FETCH 1:* (UID FLAGS)")
    got = {s: (H.uid_of(it), set(H.flags_of(it["FLAGS"])) - {"\\Recent"}) for s, it in r.fetches()}
    assert [got[s][0] for s in (1, 2, 3, 4)] == view.uids, (got, view.uids)
    assert [got[s][1] for s in (1, 2, 3, 4)] == [{"\\Seen"}, set(), set(), {"\\Seen"}], got
    for x in (b, c):
        x.ok("LOGOUT")


def test_conditional_store_across_sessions(imap):
    """CONDSTORE: B's STORE (UNCHANGEDSINCE m) after A changed the message
    fails with [MODIFIED] and leaves the flags alone (RFC 7162 3.1.3)."""
    setup3(imap)
    a = H.session(imap)
    b = H.session(imap)
    a.select("INBOX", " (CONDSTORE)")
    b.select("INBOX", " (CONDSTORE)")
    r = b.ok("FETCH 1 (MODSEQ)")
    (_, it), = r.fetches()
    ms = int(it["MODSEQ"].v[0].v)
    a.ok("STORE 1 +FLAGS.SILENT (\\Answered)")
    r = b.ok(f"STORE 1 (UNCHANGEDSINCE {ms}) +FLAGS (\\Deleted)")
    assert re.match(rb"^\S+ OK \[MODIFIED 1\]", r.tagged), r
    m1 = H.find_file(imap.maildir(H.ALICE), b"Subject: conc m1")
    assert H.file_flags(m1) == "R", m1.name
    for x in (a, b):
        x.ok("LOGOUT")


@pytest.mark.parametrize("verb", ["COPY", "MOVE"])
def test_copy_of_message_expunged_elsewhere(imap, verb):
    """B copies (moves) its message 2 after A expunged it.  RFC 3501 6.4.7:
    OK means the message was copied; a server that cannot copy it (its file
    is gone) must say NO (RFC 2180 4.4.1), never OK with nothing copied."""
    setup3(imap)
    a = H.session(imap, select="INBOX")
    b = H.session(imap, select="INBOX")
    a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.ok("EXPUNGE")
    r = b.command(f"{verb} 2 Archive")
    if verb == "COPY":
        no_expunge(r, "COPY")
    archive = H.files(imap.maildir(H.ALICE) / ".Archive")
    if r.status == "OK":
        assert len(archive) == 1 and b"conc m2" in archive[0].read_bytes(), \
            f"{verb} 2 answered OK but Archive holds {len(archive)} messages:\n{r}"
    else:
        assert r.status == "NO" and archive == [], r
    # B's other messages copy fine and B learns about the expunge later
    r = b.ok(f"{verb} 3 Archive")
    assert re.search(rb"COPYUID \d+ \d+ \d+", b"\n".join(r.untagged + [r.tagged])), r
    for x in (a, b):
        x.ok("LOGOUT")
