"""The per-user index.db is a cache of the Maildir: deleted or corrupted
while imapd is stopped it is rebuilt at the next login with the flags the
file names carry; UIDs are never reused (RFC 3501 2.3.1.1: same
UIDVALIDITY means same UIDs, else a greater UIDVALIDITY); UIDVALIDITY
survives restarts; RENAME (children included, and INBOX's special case)
and DELETE follow RFC 3501 6.3.4 / 6.3.5."""

import os
import re

import pytest

import imap_helpers as H


def select_info(conn, box="INBOX"):
    r = conn.select(box)
    text = b"\n".join(r.untagged)
    exists = re.search(rb"^\* (\d+) EXISTS$", text, re.M)
    uv = re.search(rb"\[UIDVALIDITY (\d+)\]", text)
    un = re.search(rb"\[UIDNEXT (\d+)\]", text)
    assert exists and uv and un, f"SELECT {box} lacks EXISTS/UIDVALIDITY/UIDNEXT:\n{r}"
    return {"exists": int(exists.group(1)), "uidvalidity": int(uv.group(1)),
            "uidnext": int(un.group(1))}


def contents(conn):
    """{Message-ID or Subject: (uid, flags without \\Recent, body bytes)} of the
    selected mailbox."""
    r = conn.ok("FETCH 1:* (UID FLAGS BODY.PEEK[])")
    out = {}
    for s, it in r.fetches():
        if "BODY[]" not in it:
            continue            # an unsolicited FLAGS update riding along
        body = it["BODY[]"].v
        m = re.search(rb"^Subject: (.*)\r$", body, re.M)
        key = m.group(1).decode() if m else body[:40].decode("utf-8", "replace")
        assert key not in out, f"two messages with subject {key}"
        out[key] = (H.uid_of(it), frozenset(H.flags_of(it["FLAGS"])) - {"\\Recent"}, body)
    return out


def status(conn, box, items="MESSAGES UIDNEXT UIDVALIDITY"):
    r = conn.ok(f"STATUS {H.quote(box)} ({items})")
    (line,) = r.starting("* STATUS ")
    m = re.search(rb"\(([^)]*)\)$", line)
    t = m.group(1).decode().split()
    return dict(zip(t[::2], map(int, t[1::2])))


def restart(inst):
    inst.imapd.stop()
    inst.imapd.start()


def index_files(inst, user=H.ALICE):
    d = inst.maildir(user)
    return [d / "index.db", d / "index.db-wal", d / "index.db-shm"]


def check_uid_rule(before, after, what):
    """RFC 3501 2.3.1.1 across a rebuild/restart: same UIDVALIDITY => every
    message keeps its UID; otherwise the new UIDVALIDITY is greater."""
    uv0, msgs0 = before
    uv1, msgs1 = after
    assert set(msgs0) == set(msgs1), f"{what}: messages differ: {set(msgs0) ^ set(msgs1)}"
    if uv1 == uv0:
        moved = {k: (msgs0[k][0], msgs1[k][0]) for k in msgs0 if msgs0[k][0] != msgs1[k][0]}
        assert not moved, \
            f"{what}: UIDVALIDITY stayed {uv0} but UIDs changed (old, new): {moved}"
    else:
        assert uv1 > uv0, f"{what}: UIDVALIDITY went from {uv0} to {uv1} (must grow)"


def populate(inst):
    """INBOX: four messages, one expunged, flags set by STORE; Projects (subscribed)
    with one message and a keyword; Sent with one message."""
    for i in range(1, 5):
        H.deliver(inst, H.message(f"idx m{i}"))
    c = H.session(inst, select="INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Flagged \\Seen)")
    c.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
    c.ok("STORE 3 +FLAGS.SILENT (\\Deleted)")
    c.ok("EXPUNGE")
    c.ok("CREATE Projects")
    c.ok("SUBSCRIBE Projects")
    r = c.send_literal_command("APPEND Projects (\\Draft $Work)",
                               b"Subject: idx project\r\n\r\nplan\r\n")
    assert r.status == "OK", r
    r = c.send_literal_command("APPEND Sent (\\Seen)", b"Subject: idx sent\r\n\r\nsent\r\n")
    assert r.status == "OK", r
    return c


def snapshot(c):
    out = {}
    for box in ("INBOX", "Projects", "Sent"):
        info = select_info(c, box)
        out[box] = (info["uidvalidity"], contents(c))
    return out


def test_index_deleted_rebuilt_from_file_names(imap):
    c = populate(imap)
    before = snapshot(c)
    inbox = before["INBOX"][1]
    assert inbox["idx m1"][1] == {"\\Flagged", "\\Seen"} and inbox["idx m2"][1] == {"\\Answered"}
    c.ok("LOGOUT")
    imap.imapd.stop()
    uvfile = imap.maildir(H.ALICE) / "index.uidvalidity"
    assert uvfile.is_file(), "no index.uidvalidity beside index.db"
    for p in index_files(imap):
        if p.exists():
            p.unlink()
    imap.imapd.start()

    c = H.session(imap)
    after = snapshot(c)
    for box in before:
        check_uid_rule(before[box], after[box], f"{box} after index.db was deleted")
        for k, (uid, flags, body) in before[box][1].items():
            assert after[box][1][k][1] == flags, \
                f"{box} {k}: flags {set(after[box][1][k][1])} after rebuild, were {set(flags)}"
            assert after[box][1][k][2] == body
    assert (imap.maildir(H.ALICE) / "index.db").is_file()
    # the subscription and the special-use folders survive
    r = c.ok('LIST (SUBSCRIBED) "" "*"')
    names = {H.parse_value(re.search(rb'"\." (.*)$', u).group(1)).v.decode() for u in r.untagged}
    assert "Projects" in names, r
    r = c.ok('LIST "" "Sent" RETURN (SPECIAL-USE)')
    assert b"\\Sent" in r.untagged[0], r
    # new mail after the rebuild never takes an old UID under an old UIDVALIDITY
    H.deliver(imap, H.message("idx after rebuild"))
    info = select_info(c)
    got = contents(c)
    new_uid = got["idx after rebuild"][0]
    assert all(new_uid > uid for k, (uid, _, _) in got.items() if k != "idx after rebuild")
    if info["uidvalidity"] == before["INBOX"][0]:
        assert new_uid > 4, f"UID {new_uid} given again under UIDVALIDITY {info['uidvalidity']}"
    c.ok("LOGOUT")


@pytest.mark.parametrize("damage", ["garbage", "header-kept", "truncated"])
def test_index_corrupt_rebuilt(imap, damage):
    c = populate(imap)
    before = snapshot(c)
    c.ok("LOGOUT")
    imap.imapd.stop()
    db = imap.maildir(H.ALICE) / "index.db"
    for p in index_files(imap)[1:]:
        if p.exists():
            p.unlink()
    data = db.read_bytes()
    noise = os.urandom(max(len(data), 65536))
    if damage == "garbage":
        db.write_bytes(noise)
    elif damage == "header-kept":
        db.write_bytes(data[:100] + noise[100:len(data)])
    else:
        db.write_bytes(data[:len(data) // 2 + 7])
    imap.imapd.start()

    c = H.session(imap)
    after = snapshot(c)
    for box in before:
        check_uid_rule(before[box], after[box], f"{box} after index.db was damaged ({damage})")
        for k, (uid, flags, body) in before[box][1].items():
            assert after[box][1][k][1:] == (flags, body), f"{box} {k} after rebuild"
    # the session works: STORE, APPEND, EXPUNGE
    c.select("INBOX")
    c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
    r = c.ok("EXPUNGE")
    assert r.starting("* 1 EXPUNGE"), r
    r = c.send_literal_command("APPEND INBOX", b"Subject: idx after damage\r\n\r\nx\r\n")
    assert r.status == "OK", r
    assert imap.imapd.proc.poll() is None, "imapd died"
    c.ok("LOGOUT")
    # and a restart finds a good index
    restart(imap)
    c = H.session(imap)
    assert select_info(c)["exists"] == 3
    c.ok("LOGOUT")


def test_uids_never_reused_after_expunge_and_restart(imap):
    for i in range(1, 4):
        H.deliver(imap, H.message(f"reuse m{i}"))
    c = H.session(imap)
    info = select_info(c)
    uv = info["uidvalidity"]
    uids = [u for u, _, _ in contents(c).values()]
    assert sorted(uids) == uids and len(uids) == 3
    c.ok(f"UID STORE {uids[2]} +FLAGS.SILENT (\\Deleted)")
    r = c.ok(f"UID EXPUNGE {uids[2]}")
    assert r.starting("* 3 EXPUNGE"), r
    c.ok("LOGOUT")
    restart(imap)

    H.deliver(imap, H.message("reuse m4"))
    c = H.session(imap)
    info = select_info(c)
    assert info["uidvalidity"] == uv, f"UIDVALIDITY {uv} -> {info['uidvalidity']} over a restart"
    got = contents(c)
    assert got["reuse m4"][0] > uids[2], \
        f"UID {got['reuse m4'][0]} given after UID {uids[2]} was expunged (RFC 3501 2.3.1.1)"
    top = got["reuse m4"][0]
    c.ok("LOGOUT")

    # the highest one deleted behind imapd's back while it is stopped
    imap.imapd.stop()
    H.find_file(imap.maildir(H.ALICE), b"Subject: reuse m4").unlink()
    imap.imapd.start()
    c = H.session(imap)
    info = select_info(c)
    assert info["exists"] == 2
    H.deliver(imap, H.message("reuse m5"))
    c.ok("NOOP")
    got = contents(c)
    assert info["uidvalidity"] != uv or got["reuse m5"][0] > top, \
        f"UID {got['reuse m5'][0]} reuses UID {top} of a message deleted while imapd was down"
    assert info["uidnext"] > top or info["uidvalidity"] != uv, info
    c.ok("LOGOUT")


def test_uidvalidity_survives_restart(imap):
    H.deliver(imap, H.message("uv m1"))
    c = H.session(imap)
    c.ok("CREATE Lists")
    c.ok("CREATE Lists.2026")
    boxes = ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive", "Lists", "Lists.2026"]
    before = {b: status(c, b) for b in boxes}
    assert len({v["UIDVALIDITY"] for v in before.values()}) == len(boxes), \
        f"two mailboxes share a UIDVALIDITY: {before}"
    c.ok("LOGOUT")
    for _ in range(2):
        restart(imap)
        c = H.session(imap)
        after = {b: status(c, b) for b in boxes}
        assert after == before, f"STATUS changed over a restart:\n{before}\n{after}"
        c.ok("LOGOUT")


def test_rename_with_children_keeps_messages_and_uids(imap):
    c = H.session(imap)
    c.ok("CREATE Projects")
    c.ok("CREATE Projects.2026")
    c.ok("CREATE ProjectsOther")       # shares a prefix, is not a child
    for box, n in (("Projects", 2), ("Projects.2026", 3), ("ProjectsOther", 1)):
        for i in range(n):
            r = c.send_literal_command(f"APPEND {box} (\\Seen)" if i == 0 else f"APPEND {box}",
                                       f"Subject: {box} {i}\r\n\r\nbody {i}\r\n".encode())
            assert r.status == "OK", r
    c.ok("SUBSCRIBE Projects")
    c.ok("SUBSCRIBE Projects.2026")
    before = {}
    for box in ("Projects", "Projects.2026", "ProjectsOther"):
        before[box] = (select_info(c, box)["uidvalidity"], contents(c))
    c.ok("UNSELECT")

    r = c.ok("RENAME Projects Work")
    r = c.ok('LIST "" "*"')
    names = {H.parse_value(re.search(rb'"\." (.*)$', u).group(1)).v.decode() for u in r.untagged}
    assert {"Work", "Work.2026", "ProjectsOther"} <= names, names
    assert not {"Projects", "Projects.2026", "WorkOther"} & names, names
    for old, new in (("Projects", "Work"), ("Projects.2026", "Work.2026"),
                     ("ProjectsOther", "ProjectsOther")):
        uv = select_info(c, new)["uidvalidity"]
        got = contents(c)
        assert uv == before[old][0], f"{new}: UIDVALIDITY {uv}, was {before[old][0]} as {old}"
        assert got == before[old][1], f"{new} after RENAME differs from {old}"
    r = c.ok('LSUB "" "*"')
    subs = {H.parse_value(re.search(rb'"\." (.*)$', u).group(1)).v.decode() for u in r.untagged}
    assert {"Work", "Work.2026"} <= subs and not {"Projects", "Projects.2026"} & subs, subs
    root = imap.maildir(H.ALICE)
    assert len(H.files(root / ".Work")) == 2 and len(H.files(root / ".Work.2026")) == 3
    assert not (root / ".Projects").exists() and not (root / ".Projects.2026").exists()
    assert len(H.files(root / ".ProjectsOther")) == 1
    assert c.command("SELECT Projects").status == "NO"
    c.ok("LOGOUT")

    # the renamed tree is what the next imapd finds, with the same UIDs
    restart(imap)
    c = H.session(imap)
    for old, new in (("Projects", "Work"), ("Projects.2026", "Work.2026")):
        uv = select_info(c, new)["uidvalidity"]
        assert (uv, contents(c)) == before[old], f"{new} after RENAME and a restart"
    c.ok("LOGOUT")


def test_rename_inbox_moves_messages_and_leaves_inbox_empty(imap):
    for i in range(1, 4):
        H.deliver(imap, H.message(f"rin m{i}"))
    c = H.session(imap)
    inbox0 = select_info(c)
    c.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
    before = contents(c)
    child_ok = c.command("CREATE INBOX.child").status == "OK"
    if child_ok:
        r = c.send_literal_command("APPEND INBOX.child", b"Subject: rin child\r\n\r\nc\r\n")
        assert r.status == "OK", r
    c.ok("UNSELECT")
    r = c.ok("RENAME INBOX Old")

    info = select_info(c, "Old")
    assert info["exists"] == 3, info
    got = contents(c)
    assert {k: v[1:] for k, v in got.items()} == {k: v[1:] for k, v in before.items()}, \
        "messages or flags changed moving from INBOX to Old"
    info = select_info(c, "INBOX")
    assert info["exists"] == 0, f"INBOX not empty after RENAME INBOX (RFC 3501 6.3.5): {info}"
    root = imap.maildir(H.ALICE)
    assert H.files(root) == [], [p.name for p in H.files(root)]
    assert len(H.files(root / ".Old")) == 3
    if child_ok:          # inferiors of INBOX are unaffected (RFC 3501 6.3.5)
        assert status(c, "INBOX.child")["MESSAGES"] == 1
    # new mail lands in INBOX with a UID the old INBOX never used
    H.deliver(imap, H.message("rin after"))
    r = c.ok("NOOP")
    assert r.starting("* 1 EXISTS"), r
    got = contents(c)
    assert list(got) == ["rin after"], got
    if info["uidvalidity"] == inbox0["uidvalidity"]:
        assert got["rin after"][0] > max(u for u, _, _ in before.values()), \
            f"INBOX kept UIDVALIDITY {info['uidvalidity']} but reused UID {got['rin after'][0]}"
    c.ok("LOGOUT")


def test_delete_with_children_rfc3501(imap):
    """RFC 3501 6.3.4: DELETE foo removes foo and its messages but MUST NOT
    remove foo.bar; it is an error only for a \\Noselect name with
    inferiors.  DELETE INBOX and DELETE of a missing name fail."""
    c = H.session(imap)
    c.ok("CREATE foo")
    c.ok("CREATE foo.bar")
    for box in ("foo", "foo.bar"):
        r = c.send_literal_command(f"APPEND {box}", f"Subject: del {box}\r\n\r\nx\r\n".encode())
        assert r.status == "OK", r
    uv_foo = status(c, "foo")["UIDVALIDITY"]
    root = imap.maildir(H.ALICE)

    r = c.command("DELETE foo")
    assert r.status == "OK", \
        f"DELETE of a selectable mailbox with an inferior must succeed (RFC 3501 6.3.4):\n{r}"
    assert not H.files(root / ".foo"), "foo's messages are still on disk"
    assert len(H.files(root / ".foo.bar")) == 1, "DELETE foo removed foo.bar (RFC 3501 6.3.4)"
    assert status(c, "foo.bar")["MESSAGES"] == 1
    assert c.command("SELECT foo").status == "NO"
    r = c.ok('LIST "" "*"')
    listed = {}
    for u in r.untagged:
        m = re.fullmatch(rb'\* LIST \(([^)]*)\) "\." (.*)', u)
        listed[H.parse_value(m.group(2)).v.decode()] = m.group(1).decode().split()
    assert "foo.bar" in listed, r
    if "foo" in listed:                 # may stay as a \Noselect placeholder
        assert "\\Noselect" in listed["foo"] or "\\NonExistent" in listed["foo"], listed["foo"]

    # foo created again is a new mailbox: a new UIDVALIDITY, no old messages
    c.ok("CREATE foo")
    st = status(c, "foo")
    assert st["MESSAGES"] == 0 and st["UIDVALIDITY"] != uv_foo, \
        f"re-created foo reuses UIDVALIDITY {uv_foo} (RFC 3501 2.3.1.1): {st}"
    c.ok("DELETE foo.bar")
    assert not (root / ".foo.bar").exists()
    c.ok("DELETE foo")
    r = c.ok('LIST "" "foo*"')
    assert r.untagged == [], r
    assert c.command("DELETE INBOX").status == "NO"
    assert c.command("DELETE nosuchbox").status == "NO"
    assert c.command("DELETE foo").status == "NO"
    c.ok("LOGOUT")


def test_list_shows_missing_parent_as_noselect(imap):
    """RFC 3501 6.3.8: with a% at the end of the pattern, levels of
    hierarchy that are not mailboxes themselves are returned \\Noselect
    (RFC 5258: \\NonExistent, which implies it)."""
    c = H.session(imap)
    c.ok("CREATE a.b")
    r = c.ok('LIST "" "%"')
    attrs = {}
    for u in r.untagged:
        m = re.fullmatch(rb'\* LIST \(([^)]*)\) "\." (.*)', u)
        attrs[H.parse_value(m.group(2)).v.decode()] = m.group(1).decode().split()
    assert "a.b" not in attrs, r
    assert "a" in attrs, f'LIST "" "%" omits the parent of a.b:\n{r}'
    assert {"\\Noselect", "\\NonExistent"} & set(attrs["a"]), attrs["a"]
    assert "\\HasChildren" in attrs["a"], attrs["a"]
    assert c.command("SELECT a").status == "NO"
    c.ok("LOGOUT")
