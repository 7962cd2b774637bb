"""imapd SEARCH / UID SEARCH with imaplib: flags, headers with RFC 2047
encoded words, base64 and quoted-printable bodies, sizes, dates, OR / NOT
/ sequence sets, CHARSET UTF-8 with a literal, ESEARCH RETURN options,
CONDSTORE MODSEQ, and the error answers (BAD syntax, NO [BADCHARSET])."""

import imaplib
import re
import smtplib
import ssl
import time

import pytest

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]

MESSAGES = [
    # 1: plain ASCII
    ("From: x@y.test\r\nTo: {to}\r\nSubject: hello plain\r\n"
     "Date: Tue, 1 Jul 2003 23:52:37 -0700\r\n\r\n"
     "The quick brown fox.\r\n"),
    # 2: encoded-word subject ("Grüße aus Köln"), base64 UTF-8 body ("Äpfel und Birnen")
    ("From: =?ISO-8859-1?Q?Andr=E9?= <andre@y.test>\r\nTo: {to}\r\n"
     "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?=\r\n"
     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
     "Content-Transfer-Encoding: base64\r\n\r\n"
     "w4RwZmVsIHVuZCBCaXJuZW4K\r\n"),
    # 3: large
    ("From: x@y.test\r\nTo: {to}\r\nSubject: big one\r\n\r\n"
     + "lorem ipsum dolor sit amet\r\n" * 800),
    # 4: from bob, quoted-printable latin-1 body ("Straße")
    ("From: Bob <bob@example.test>\r\nTo: {to}\r\nSubject: from bob\r\n"
     "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
     "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
     "Die Stra=DFe ist lang=\r\n und breit.\r\n"),
]


def login(inst):
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    m = imaplib.IMAP4_SSL("127.0.0.1", inst.imaps_port, ssl_context=c)
    assert m.login(ALICE, ALICE_PW)[0] == "OK"
    return m


def deliver_all(inst):
    for i, text in enumerate(MESSAGES):
        s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
        s.sendmail("x@y.test", [ALICE], text.replace("{to}", ALICE).encode())
        s.quit()
        deadline = time.time() + buzon.t(10)
        while len(inst.messages(ALICE)) < i + 1:
            assert time.time() < deadline, f"message {i + 1} was not delivered"
            time.sleep(0.05)


def search(m, *keys, charset=None):
    typ, data = m.search(charset, *keys)
    assert typ == "OK", (keys, typ, data)
    return [int(x) for x in data[0].split()] if data[0] else []


def uid_search(m, *keys):
    typ, data = m.uid("SEARCH", *keys)
    assert typ == "OK", (keys, typ, data)
    return [int(x) for x in data[0].split()] if data[0] else []


def esearch(m, *args, uid=False):
    """Send (UID) SEARCH args; return the ESEARCH response text."""
    m.untagged_responses.pop("ESEARCH", None)
    if uid:
        typ, data = m._simple_command("UID", "SEARCH", *args)
    else:
        typ, data = m._simple_command("SEARCH", *args)
    assert typ == "OK", (args, typ, data)
    got = m.untagged_responses.pop("ESEARCH", [None])
    assert got[-1] is not None, f"no ESEARCH response to {args}: {data}"
    return got[-1].decode()


@pytest.fixture
def mbox(imap):
    deliver_all(imap)
    m = login(imap)
    typ, data = m.select("INBOX")
    assert typ == "OK" and data == [b"4"], data
    yield m
    m.logout()


def test_search_keys(mbox):
    m = mbox
    assert search(m, "ALL") == [1, 2, 3, 4]
    assert search(m, "UNSEEN") == [1, 2, 3, 4]
    assert m.store("1", "+FLAGS", "(\\Seen)")[0] == "OK"
    assert m.store("3", "+FLAGS", "(\\Flagged $Work)")[0] == "OK"
    assert search(m, "UNSEEN") == [2, 3, 4]
    assert search(m, "SEEN") == [1]
    assert search(m, "FLAGGED", "KEYWORD", "$work") == [3]
    assert search(m, "UNKEYWORD", "$Work") == [1, 2, 4]
    assert search(m, "FROM", "bob") == [4]
    assert search(m, "FROM", '"andré"'.encode()) == [2]       # quoted 8-bit (UTF8=ACCEPT style)
    assert search(m, "TO", "alice@EXAMPLE.test") == [1, 2, 3, 4]
    assert search(m, "SUBJECT", "HELLO") == [1]
    assert search(m, "HEADER", "Content-Transfer-Encoding", '""') == [2, 4]
    assert search(m, "BODY", '"quick BROWN"') == [1]
    assert search(m, "BODY", "Subject") == []                 # body only
    assert search(m, "TEXT", '"hello plain"') == [1]          # header too
    assert search(m, "LARGER", "10000") == [3]
    assert search(m, "SMALLER", "10000") == [1, 2, 4]
    assert search(m, "SENTON", "1-Jul-2003") == [1]           # Date:'s own zone
    assert search(m, "SENTBEFORE", "2-Jul-2003") == [1]
    today = time.strftime("%d-%b-%Y", time.localtime())
    assert search(m, "ON", today) == [1, 2, 3, 4]
    assert search(m, "SINCE", today) == [1, 2, 3, 4]
    assert search(m, "BEFORE", today) == []
    assert search(m, "SINCE", "1-Jan-2100") == []
    assert search(m, "OR", "FROM", "bob", "SUBJECT", "hello") == [1, 4]
    assert search(m, "NOT", "SUBJECT", "hello") == [2, 3, 4]
    assert search(m, "NOT", "(", "SEEN", ")", "OR", "2", "4") == [2, 4]
    assert search(m, "2:3") == [2, 3]
    assert search(m, "2:*", "UNSEEN") == [2, 3, 4]
    assert search(m, "1,4", "(OR SEEN FROM bob)") == [1, 4]
    assert search(m, "NEW") == [2, 3, 4]                      # recent and unseen
    assert search(m, "OLD") == []
    assert search(m, "DELETED") == []


def test_encoded_and_transfer_encoded_text(mbox):
    m = mbox
    # CHARSET UTF-8 with a literal (imaplib sends m.literal as {n})
    m.literal = "köln".encode()
    assert search(m, "SUBJECT", charset="UTF-8") == [2]
    m.literal = "GRÜSSE".encode()
    assert search(m, "SUBJECT", charset="UTF-8") == []        # no ß/ss folding
    m.literal = "GRÜßE".encode()
    assert search(m, "SUBJECT", charset="UTF-8") == [2]
    m.literal = "äpfel".encode()
    assert search(m, "BODY", charset="UTF-8") == [2]          # base64 part
    m.literal = "straße ist lang und".encode()
    assert search(m, "BODY", charset="UTF-8") == [4]          # QP, soft break
    assert search(m, "BODY", "w4RwZmVs") == []                # not the raw base64
    assert search(m, "CHARSET", "US-ASCII", "SUBJECT", "big") == [3]


def test_uid_search_and_errors(mbox):
    m = mbox
    typ, data = m.fetch("1:*", "(UID)")
    uids = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data]
    assert uid_search(m, "ALL") == uids
    assert uid_search(m, "UID", f"{uids[1]}:*") == uids[1:]
    assert uid_search(m, "FROM", "bob") == [uids[3]]
    assert uid_search(m, "2") == [uids[1]]                    # seq set in UID SEARCH
    assert uid_search(m, "UID", "999999") == []               # no such UID
    assert uid_search(m, "UID", "999999:*") == [uids[-1]]     # "n:*" always has the last
    typ, data = m.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0], data
    for bad in (("FOO",), ("BEFORE", "tomorrow"), ("OR", "SEEN"), ("NOT",),
                ("RETURN", "(SAVE FOO)", "ALL")):
        with pytest.raises(imaplib.IMAP4.error):
            m.search(None, *bad)
    typ, data = m.capability()
    assert b" ESEARCH" in data[0], data


def test_esearch_and_modseq(mbox):
    m = mbox
    typ, data = m.fetch("1:*", "(UID)")
    uids = [int(re.search(rb"UID (\d+)", d).group(1)) for d in data]
    r = esearch(m, "RETURN", "(MIN MAX COUNT)", "ALL")
    assert re.fullmatch(r'\(TAG "[^"]+"\) MIN 1 MAX 4 COUNT 4', r), r
    r = esearch(m, "RETURN", "()", "NOT", "3")
    assert re.fullmatch(r'\(TAG "[^"]+"\) ALL 1:2,4', r), r
    r = esearch(m, "RETURN", "(COUNT MIN)", "SUBJECT", "nothing-matches")
    assert re.fullmatch(r'\(TAG "[^"]+"\) COUNT 0', r), r
    r = esearch(m, "RETURN", "(ALL)", "FROM", "bob", uid=True)
    assert re.fullmatch(rf'\(TAG "[^"]+"\) UID ALL {uids[3]}', r), r
    # CONDSTORE: MODSEQ key, (MODSEQ n) with the highest modseq of the matches
    assert m.store("2", "+FLAGS", "(\\Flagged)")[0] == "OK"
    m.untagged_responses.pop("FETCH", None)     # STORE's own FETCH answer
    typ, data = m.fetch("1:*", "(MODSEQ)")
    # (an unsolicited FLAGS update may ride along: keep the MODSEQ answers)
    modseqs = [int(re.search(rb"MODSEQ \((\d+)\)", d).group(1)) for d in data
               if b"MODSEQ" in d]
    assert len(modseqs) == 4, data
    typ, data = m.search(None, "MODSEQ", str(modseqs[1]))
    assert typ == "OK"
    nums = data[0].split(b" (MODSEQ ")
    want = [i + 1 for i, ms in enumerate(modseqs) if ms >= modseqs[1]]
    assert [int(x) for x in nums[0].split()] == want, data
    assert int(nums[1].rstrip(b")")) == max(modseqs[i - 1] for i in want), data
    r = esearch(m, "RETURN", "(COUNT)", "MODSEQ", "1")
    assert re.fullmatch(rf'\(TAG "[^"]+"\) COUNT 4 MODSEQ {max(modseqs)}', r), r
    typ, data = m.search(None, "MODSEQ", str(max(modseqs) + 1))
    assert typ == "OK" and data == [b""], data          # no matches: no MODSEQ


def test_search_needs_selected_mailbox(imap):
    m = login(imap)
    with pytest.raises(imaplib.IMAP4.error):
        m.search(None, "ALL")
    m.logout()


def test_header_keys_from_the_header_cache(mbox, imap):
    """The first header search reads the files and fills index.db's header
    cache; later ones (in this and in a new session) answer from it the
    same, and UID FETCH of header fields answers from it byte for byte."""
    import sqlite3
    m = mbox
    db = imap.maildir(ALICE) / "index.db"

    def cached():
        con = sqlite3.connect(str(db))
        try:
            return con.execute("SELECT count(*) FROM headers").fetchone()[0]
        finally:
            con.close()

    first = m.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
    assert first[0] == "OK"
    assert search(m, "FROM", '"andré"'.encode()) == [2]
    assert cached() == 4
    for mm in (m, login(imap)):
        if mm is not m:
            assert mm.select("INBOX")[0] == "OK"
        assert search(mm, "FROM", '"andré"'.encode()) == [2]
        assert search(mm, "SUBJECT", "HELLO") == [1]
        assert search(mm, "HEADER", "Content-Transfer-Encoding", '""') == [2, 4]
        assert search(mm, "SENTON", "1-Jul-2003") == [1]
        mm.literal = "köln".encode()
        assert search(mm, "SUBJECT", charset="UTF-8") == [2]
        again = mm.uid("FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
        assert again == first
    # an expunged message leaves the cache with its index row
    assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    assert m.expunge()[0] == "OK"
    assert cached() == 3
    assert search(m, "SUBJECT", "HELLO") == []



def test_body_search_over_many_messages(imap):
    """SEARCH BODY over enough messages to be spread over threads: the
    right answer, also when files were renamed (flags set by mutt) or
    deleted behind imapd's back after it listed them."""
    import base64
    import os
    import imap_helpers as H
    inbox = imap.maildir(ALICE)
    want = []
    for i in range(1, 201):
        text = f"message {i} has " + ("the zebrafish word" if i % 3 == 0 else "nothing")
        if i % 3 == 0:
            want.append(i)
        if i % 2 == 0:      # half of them base64-encoded
            body = base64.b64encode(text.encode()).decode() + "\r\n"
            extra = ("Content-Type: text/plain; charset=utf-8",
                     "Content-Transfer-Encoding: base64")
        else:
            body, extra = text + "\r\n", ()
        H.drop(inbox, H.message(f"many {i}", body=body, extra=extra))
    c = H.session(imap, select="INBOX")

    def body_search():
        r = c.ok("SEARCH BODY zebrafish")
        return [int(x) for line in r.untagged if line.startswith(b"* SEARCH")
                for x in line.split()[2:]]

    assert body_search() == want
    cur = inbox / "cur"
    by_subject = {}
    for n in os.listdir(cur):
        head = (cur / n).read_bytes().split(b"\n\n", 1)[0]
        subj = [line for line in head.split(b"\n") if line.startswith(b"Subject: ")][0]
        by_subject[int(subj.split()[-1])] = n
    for i in range(1, 61):              # mutt sets \Seen on 60 of them
        n = by_subject[i]
        os.rename(cur / n, cur / (n + "S"))
    for i in (3, 6):                    # and deletes two that match
        os.unlink(cur / (by_subject[i] + "S"))
    assert body_search() == [i for i in want if i not in (3, 6)]
    c.ok("LOGOUT")
