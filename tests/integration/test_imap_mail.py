"""imapd over the store: LIST/CREATE/RENAME/DELETE, SELECT, FETCH,
STORE, COPY/MOVE, EXPUNGE, APPEND, QUOTA, IDLE push from an smtpd
delivery, and two sessions seeing each other's changes."""

import imaplib
import smtplib
import ssl
import threading
import time

import buzon

for _c in ("ID", "ENABLE", "NAMESPACE", "IDLE", "MOVE", "UNSELECT", "GETQUOTAROOT"):
    imaplib.Commands.setdefault(_c, ("NONAUTH", "AUTH", "SELECTED"))

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]


def login(inst):
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", inst.imaps_port, ssl_context=c)
    assert m.login(ALICE, ALICE_PW)[0] == "OK"
    return m


def deliver(inst, subject, body="Hello.\r\n"):
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
    s.sendmail("x@y.test", [ALICE],
               f"From: x@y.test\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject.replace(' ', '.')}@y.test>\r\n\r\n{body}")
    s.quit()


def test_special_folders_and_mailbox_management(imap):
    m = login(imap)
    typ, boxes = m.list()
    text = b"\n".join(boxes)
    for name, attr in ((b"Sent", b"\\Sent"), (b"Drafts", b"\\Drafts"), (b"Trash", b"\\Trash"),
                       (b"Junk", b"\\Junk"), (b"Archive", b"\\Archive")):
        assert any(name in b and attr in b for b in boxes), text
    assert m.create("Projects")[0] == "OK"
    assert m.create("Projects.2026")[0] == "OK"
    assert (imap.maildir(ALICE) / ".Projects.2026" / "cur").is_dir()
    assert m.create("../escape")[0] == "NO"
    assert m.create("a..b")[0] == "NO"
    assert not any(p.name.startswith(".a") or "escape" in p.name
                   for p in imap.maildir(ALICE).parent.iterdir())
    assert m.rename("Projects", "Work")[0] == "OK"
    assert (imap.maildir(ALICE) / ".Work.2026").is_dir()
    # RFC 3501 6.3.4: the parent goes, its child stays, and the name
    # lives on as a \Noselect level
    assert m.delete("Work")[0] == "OK"
    assert not (imap.maildir(ALICE) / ".Work").exists()
    assert (imap.maildir(ALICE) / ".Work.2026" / "cur").is_dir()
    typ, lst = m.list('""', "%")
    assert typ == "OK" and any(b"\\Noselect" in l and l.endswith(b" Work") for l in lst if l), lst
    assert m.delete("Work")[0] == "NO"            # \Noselect with children
    assert m.delete("Work.2026")[0] == "OK"
    assert m.delete("INBOX")[0] == "NO"
    m.logout()


def test_select_fetch_store_expunge(imap):
    deliver(imap, "first")
    deliver(imap, "second")
    m = login(imap)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"2"], data
    typ, data = m.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    files = imap.messages(ALICE)
    sizes = sorted(len(p.read_bytes()) + p.read_bytes().count(b"\n") for p in files)
    got = sorted(int(d.split(b"RFC822.SIZE ")[1].split(b")")[0]) for d in data)
    assert got == sizes, f"RFC822.SIZE {got} != stored CRLF sizes {sizes}"
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (Subject)])")
    assert data[0][1] == b"Subject: first\r\n\r\n", data
    typ, data = m.fetch("2", "(BODY[TEXT])")
    assert data[0][1] == b"Hello.\r\n", data
    assert b"\\Seen" in m.fetch("2", "(FLAGS)")[1][0]          # set by BODY[]
    assert b"\\Seen" not in m.fetch("1", "(FLAGS)")[1][0]      # PEEK left it
    # flags land in the file name (mutt sees them)
    assert m.store("1", "+FLAGS", "(\\Flagged $Junk)")[0] == "OK"
    assert any(p.name.split(":2,")[1].startswith("F") for p in imap.messages(ALICE)), \
        [p.name for p in imap.messages(ALICE)]
    assert m.store("1", "+FLAGS.SILENT", "(\\Deleted)")[0] == "OK"
    typ, data = m.expunge()
    assert data == [b"1"], data
    assert len(imap.messages(ALICE)) == 1
    m.logout()


def test_copy_move_append_quota(imap):
    deliver(imap, "tomove")
    m = login(imap)
    m.select("INBOX")
    typ, data = m.uid("COPY", "1", "Archive")
    # imaplib files the tagged response code [COPYUID v src dst] here:
    copyuid = m.untagged_responses.pop("COPYUID", [b""])[0].split()
    assert typ == "OK" and len(copyuid) == 3 and copyuid[1] == b"1", (typ, copyuid)
    typ, data = m.uid("MOVE", "1", "Trash")
    assert typ == "OK", data
    assert m.untagged_responses.get("EXPUNGE") == [b"1"], m.untagged_responses
    assert len(imap.messages(ALICE, "Trash")) == 1 and len(imap.messages(ALICE)) == 0
    msg = b"From: alice@example.test\r\nSubject: sent copy\r\n\r\nbody\r\n"
    typ, data = m.append("Sent", "(\\Seen)", None, msg)
    appenduid = m.untagged_responses.pop("APPENDUID", [b""])[0].split()
    assert typ == "OK" and len(appenduid) == 2 and appenduid[1] == b"1", (typ, appenduid)
    sent = imap.messages(ALICE, "Sent")
    assert len(sent) == 1 and sent[0].read_bytes() == msg.replace(b"\r\n", b"\n")
    assert sent[0].name.endswith(":2,S"), sent[0].name
    assert m.append("NoSuchBox", None, None, msg)[0] == "NO"
    typ, data = m._simple_command("GETQUOTAROOT", "INBOX")
    assert typ == "OK" and m.untagged_responses.get("QUOTAROOT"), m.untagged_responses
    m.logout()


def test_idle_sees_delivery_within_a_second(imap):
    m = login(imap)
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+")
    t0 = time.monotonic()
    threading.Thread(target=deliver, args=(imap, "pushed")).start()
    m.sock.settimeout(buzon.t(5))
    line = m.readline()
    dt = time.monotonic() - t0
    assert line == b"* 1 EXISTS\r\n", line
    assert dt < buzon.t(1.0), f"EXISTS after {dt:.3f}s"
    m.send(b"DONE\r\n")
    assert m.readline().startswith(tag + b" OK")
    m.logout()


def test_two_sessions_see_each_other(imap):
    deliver(imap, "one")
    deliver(imap, "two")
    a, b = login(imap), login(imap)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", "(\\Flagged)")
    typ, _ = b.noop()
    fetches = b.untagged_responses.pop("FETCH", [])
    assert any(b"\\Flagged" in f for f in fetches), fetches
    a.store("2", "+FLAGS.SILENT", "(\\Deleted)")
    a.expunge()
    b.noop()
    assert b.untagged_responses.get("EXPUNGE") == [b"2"], b.untagged_responses
    a.logout()
    b.logout()
