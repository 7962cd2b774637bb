"""imapd as IMAP4rev2 (RFC 9051) next to IMAP4rev1: both advertised in
every capability list; ENABLE IMAP4rev2; once enabled no \\Recent flag
and no RECENT response, SEARCH answered by ESEARCH, UTF-8 mailbox names,
OK [CLOSED] on a second SELECT; SEARCHRES (RFC 5182) RETURN (SAVE) and
"$" in FETCH, STORE, COPY, MOVE, SEARCH and the UID forms; STATUS
DELETED; UID FETCH / UID STORE answers that carry the UID; LIST of a
hierarchy level that is not a mailbox.  A session that did not enable
IMAP4rev2 keeps the IMAP4rev1 answers.

The client is a raw one and the assertions are on the exact lines the
server sends."""

import re
import socket
import ssl

import pytest

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


class Raw:
    """A raw IMAP client over TLS: cmd() sends "tag text" and returns
    (tagged line, every byte before it); literals are read by size."""

    def __init__(self, inst, login=True, rev2=False):
        sock = socket.create_connection(("127.0.0.1", inst.imaps_port),
                                        timeout=buzon.t(10))
        self.s = ctx().wrap_socket(sock)
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()
        self.n = 0
        self.tag = b""
        if login:
            self.ok(f'LOGIN "{ALICE}" "{ALICE_PW}"')
        if rev2:
            assert self.ok("ENABLE IMAP4rev2") == b"* ENABLED IMAP4rev2\r\n"

    def _line(self):
        out = b""
        while True:
            line = self.f.readline()
            assert line, f"connection closed; got so far: {out!r}"
            out += line
            m = re.search(rb"~?\{(\d+)\+?\}\r\n$", line)
            if not m:
                return out
            out += self.f.read(int(m.group(1)))

    def cmd(self, text, literal=None):
        self.n += 1
        self.tag = b"r%d" % self.n
        data = self.tag + b" " + (text.encode() if isinstance(text, str) else text)
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.s.sendall(data + b"\r\n")
        before = b""
        while True:
            line = self._line()
            if line.startswith(self.tag + b" "):
                return line, before
            before += line

    def ok(self, text, literal=None):
        tagged, before = self.cmd(text, literal)
        assert tagged.startswith(self.tag + b" OK"), (text, tagged, before)
        return before

    def esearch(self, rest=b""):
        """The ESEARCH line the last command must have answered."""
        return b'* ESEARCH (TAG "%s")%s\r\n' % (self.tag, rest)

    def close(self):
        try:
            self.cmd("LOGOUT")
        finally:
            self.s.close()


def message(i):
    return b"From: x@y.test\r\nSubject: msg %d\r\n\r\nbody %d\r\n" % (i, i)


def fill(inst, n, claim=True):
    """n messages in INBOX; with claim, a rev1 session selects INBOX once
    so that they are no longer \\Recent for the sessions of the test."""
    c = Raw(inst)
    for i in range(1, n + 1):
        c.ok("APPEND INBOX", message(i))
    if claim:
        c.ok("SELECT INBOX")
    c.close()


def lines(data):
    return [l + b"\r\n" for l in data.split(b"\r\n") if l]


def test_capabilities_list_both_revisions(imap):
    s = socket.create_connection(("127.0.0.1", imap.imap_port), timeout=buzon.t(10))
    greeting = s.makefile("rb").readline()
    s.close()
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), greeting
    assert b" STARTTLS LOGINDISABLED]" in greeting, greeting
    c = Raw(imap, login=False)
    assert c.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 "), c.greeting
    assert c.ok("CAPABILITY").startswith(b"* CAPABILITY IMAP4rev1 IMAP4rev2 ")
    # ENABLE is for logged-in sessions
    tagged, _ = c.cmd("ENABLE IMAP4rev2")
    assert tagged.startswith(c.tag + b" BAD"), tagged
    c.ok(f'LOGIN "{ALICE}" "{ALICE_PW}"')
    caps = c.ok("CAPABILITY")
    assert caps.startswith(b"* CAPABILITY IMAP4rev1 IMAP4rev2 "), caps
    words = caps.split()
    for w in (b"BINARY", b"SEARCHRES", b"ESEARCH", b"ENABLE", b"LITERAL+",
              b"LIST-EXTENDED", b"LIST-STATUS", b"STATUS=SIZE", b"UIDPLUS",
              b"MOVE", b"UNSELECT", b"NAMESPACE", b"IDLE", b"SPECIAL-USE"):
        assert w in words, (w, caps)
    c.close()


def test_enable_imap4rev2(imap):
    c = Raw(imap)
    assert c.ok("ENABLE IMAP4rev2") == b"* ENABLED IMAP4rev2\r\n"
    assert c.ok("ENABLE IMAP4rev2") == b"* ENABLED\r\n"        # once only
    assert c.ok("ENABLE imap4REV2 CONDSTORE X-UNKNOWN") == b"* ENABLED CONDSTORE\r\n"
    c.close()


def test_no_recent_after_enable(imap):
    fill(imap, 3, claim=False)
    c = Raw(imap, rev2=True)
    before = c.ok("SELECT INBOX")
    assert not re.search(rb"^\* \d+ RECENT", before, re.M), before
    assert b"* 3 EXISTS\r\n" in lines(before), before
    assert b'* LIST () "." INBOX\r\n' in lines(before), before
    assert c.ok("FETCH 1:* (FLAGS)") == (b"* 1 FETCH (FLAGS ())\r\n"
                                         b"* 2 FETCH (FLAGS ())\r\n"
                                         b"* 3 FETCH (FLAGS ())\r\n")
    assert c.ok("SEARCH RECENT") == c.esearch()
    # a rev1 session still gets them as recent: the rev2 one claimed none
    old = Raw(imap)
    before = old.ok("SELECT INBOX")
    assert b"* 3 RECENT\r\n" in lines(before), before
    assert old.ok("FETCH 1 (FLAGS)") == b"* 1 FETCH (FLAGS (\\Recent))\r\n"
    assert old.ok("SEARCH ALL") == b"* SEARCH 1 2 3\r\n"
    # new mail reaches the rev2 session as EXISTS alone
    old.ok("APPEND INBOX", message(4))
    assert c.ok("NOOP") == b"* 4 EXISTS\r\n"
    assert c.ok("FETCH 4 (FLAGS)") == b"* 4 FETCH (FLAGS ())\r\n"
    old.close()
    c.close()


def test_search_answers_esearch(imap):
    fill(imap, 3)
    c = Raw(imap, rev2=True)
    c.ok("SELECT INBOX")
    assert c.ok("SEARCH ALL") == c.esearch(b" ALL 1:3")
    assert c.ok("UID SEARCH ALL") == c.esearch(b" UID ALL 1:3")
    assert c.ok("SEARCH SUBJECT nothing") == c.esearch()
    assert c.ok("UID SEARCH SUBJECT nothing") == c.esearch(b" UID")
    assert c.ok("SEARCH NOT 2") == c.esearch(b" ALL 1,3")
    assert c.ok("SEARCH RETURN (COUNT) ALL") == c.esearch(b" COUNT 3")
    old = Raw(imap)
    old.ok("SELECT INBOX")
    assert old.ok("SEARCH NOT 2") == b"* SEARCH 1 3\r\n"
    assert old.ok("UID SEARCH SUBJECT nothing") == b"* SEARCH\r\n"
    old.close()
    c.close()


@pytest.mark.parametrize("rev2", [False, True], ids=["rev1", "rev2"])
def test_searchres_save_and_dollar(imap, rev2):
    fill(imap, 5)
    c = Raw(imap, rev2=rev2)
    c.ok("SELECT INBOX")

    def uid_search(rest):
        return c.esearch(b" UID ALL " + rest) if rev2 else b"* SEARCH %s\r\n" % rest.replace(b",", b" ")

    assert c.ok("STORE 2,4 +FLAGS.SILENT (\\Flagged)") == b""
    # "$" before any SAVE is empty: no messages, no error
    assert c.ok("FETCH $ (UID)") == b""
    # SAVE alone answers nothing but the tagged OK
    assert c.ok("SEARCH RETURN (SAVE) FLAGGED") == b""
    assert c.ok("FETCH $ (UID)") == b"* 2 FETCH (UID 2)\r\n* 4 FETCH (UID 4)\r\n"
    assert c.ok("UID FETCH $ (FLAGS)") == (b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n"
                                           b"* 4 FETCH (UID 4 FLAGS (\\Flagged))\r\n")
    assert c.ok("UID SEARCH UID $") == uid_search(b"2,4")
    assert c.ok("UID SEARCH $ SUBJECT \"msg 4\"") == uid_search(b"4")
    assert c.ok("STORE $ +FLAGS (\\Seen)") == (b"* 2 FETCH (FLAGS (\\Flagged \\Seen))\r\n"
                                               b"* 4 FETCH (FLAGS (\\Flagged \\Seen))\r\n")
    assert c.ok("UID STORE $ -FLAGS (\\Seen)") == (b"* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n"
                                                   b"* 4 FETCH (UID 4 FLAGS (\\Flagged))\r\n")
    tagged, before = c.cmd("COPY $ Archive")
    assert re.fullmatch(rb"r\d+ OK \[COPYUID \d+ 2,4 1:2\] COPY completed\r\n", tagged), tagged
    # SAVE with MIN / MAX only keeps those; with COUNT or ALL every match
    assert c.ok("SEARCH RETURN (SAVE MIN) FLAGGED") == c.esearch(b" MIN 2")
    assert c.ok("FETCH $ (UID)") == b"* 2 FETCH (UID 2)\r\n"
    assert c.ok("SEARCH RETURN (MAX SAVE MIN) FLAGGED") == c.esearch(b" MIN 2 MAX 4")
    assert c.ok("FETCH $ (UID)") == b"* 2 FETCH (UID 2)\r\n* 4 FETCH (UID 4)\r\n"
    assert c.ok("SEARCH RETURN (SAVE COUNT) OR 1 FLAGGED") == c.esearch(b" COUNT 3")
    assert c.ok("FETCH $ (UID)") == (b"* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\n"
                                     b"* 4 FETCH (UID 4)\r\n")
    # "$" inside the saving SEARCH is the previous result
    assert c.ok("SEARCH RETURN (SAVE) $ FLAGGED") == b""
    assert c.ok("FETCH $ (UID)") == b"* 2 FETCH (UID 2)\r\n* 4 FETCH (UID 4)\r\n"
    # expunged messages leave the result; the rest renumber
    assert c.ok("STORE 2 +FLAGS.SILENT (\\Deleted)") == b""
    assert c.ok("EXPUNGE") == b"* 2 EXPUNGE\r\n"
    assert c.ok("FETCH $ (UID)") == b"* 3 FETCH (UID 4)\r\n"
    assert c.ok("SEARCH $") == (c.esearch(b" ALL 3") if rev2 else b"* SEARCH 3\r\n")
    before = c.ok("MOVE $ Trash")
    assert re.fullmatch(rb"\* OK \[COPYUID \d+ 4 1\] Moved\r\n\* 3 EXPUNGE\r\n", before), before
    assert c.ok("FETCH $ (UID)") == b""
    # a BAD SEARCH leaves "$" alone, a NO one empties it
    assert c.ok("SEARCH RETURN (SAVE) ALL") == b""
    tagged, _ = c.cmd("SEARCH RETURN (SAVE) FOO")
    assert tagged.startswith(c.tag + b" BAD"), tagged
    assert c.ok("FETCH $ (UID)") == b"* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 3)\r\n* 3 FETCH (UID 5)\r\n"
    tagged, _ = c.cmd("SEARCH RETURN (SAVE) CHARSET KOI8-R ALL")
    assert tagged.startswith(c.tag + b" NO [BADCHARSET"), tagged
    assert c.ok("FETCH $ (UID)") == b""
    # "$" stands alone
    for bad in ("FETCH $,1 (UID)", "FETCH 1:$ (UID)", "SEARCH $,2", "UID SEARCH UID 1,$"):
        tagged, before = c.cmd(bad)
        assert tagged.startswith(c.tag + b" BAD") and before == b"", (bad, tagged, before)
    # a new SELECT starts with an empty result
    assert c.ok("SEARCH RETURN (SAVE) ALL") == b""
    c.ok("SELECT INBOX")
    assert c.ok("FETCH $ (UID)") == b""
    c.close()


def test_status_deleted(imap):
    fill(imap, 3)
    c = Raw(imap, rev2=True)
    c.ok("SELECT INBOX")
    assert c.ok("STORE 1,3 +FLAGS.SILENT (\\Deleted)") == b""
    size = sum(len(message(i)) for i in (1, 2, 3))
    assert c.ok("STATUS INBOX (MESSAGES DELETED SIZE)") == \
        b"* STATUS INBOX (MESSAGES 3 DELETED 2 SIZE %d)\r\n" % size
    assert c.ok("STATUS Trash (DELETED)") == b"* STATUS Trash (DELETED 0)\r\n"
    before = c.ok('LIST "" "INBOX" RETURN (STATUS (DELETED))')
    assert before == (b'* LIST (\\HasNoChildren) "." INBOX\r\n'
                      b"* STATUS INBOX (DELETED 2)\r\n"), before
    c.close()


def test_uid_commands_answer_with_uid(imap):
    fill(imap, 2)
    c = Raw(imap, rev2=True)
    c.ok("SELECT INBOX")
    assert c.ok("UID FETCH 1:* (FLAGS)") == (b"* 1 FETCH (UID 1 FLAGS ())\r\n"
                                             b"* 2 FETCH (UID 2 FLAGS ())\r\n")
    assert c.ok("UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject)])") == \
        b"* 2 FETCH (UID 2 BODY[HEADER.FIELDS (Subject)] {18}\r\nSubject: msg 2\r\n\r\n)\r\n"
    assert c.ok("UID STORE 1 +FLAGS (\\Answered)") == \
        b"* 1 FETCH (UID 1 FLAGS (\\Answered))\r\n"
    # a body fetch that sets \Seen is answered once, not again after it
    assert c.ok("UID FETCH 2 (BODY[TEXT])") == \
        b"* 2 FETCH (UID 2 BODY[TEXT] {8}\r\nbody 2\r\n FLAGS (\\Seen))\r\n"
    assert c.ok("NOOP") == b""
    c.close()


def test_list_levels_that_are_not_mailboxes(imap):
    c = Raw(imap, rev2=True)
    c.ok("CREATE p.q")
    c.ok("CREATE p.r.s")
    before = c.ok('LIST "" "%"')
    assert lines(before).count(b'* LIST (\\NonExistent \\HasChildren) "." p\r\n') == 1, before
    assert not re.search(rb'\* LIST \([^)]*\) "\." p\.', before), before
    assert c.ok('LIST "" "p.%"') == (b'* LIST (\\HasNoChildren) "." p.q\r\n'
                                     b'* LIST (\\NonExistent \\HasChildren) "." p.r\r\n')
    before = c.ok('LIST "" "*"')
    assert b'"." p\r\n' not in before and b'"." p.r\r\n' not in before, before
    assert b'* LIST (\\HasNoChildren) "." p.r.s\r\n' in lines(before), before
    # no STATUS for a name that is not a mailbox
    before = c.ok('LIST "" "p%" RETURN (STATUS (MESSAGES))')
    assert before == b'* LIST (\\NonExistent \\HasChildren) "." p\r\n', before
    tagged, _ = c.cmd("SELECT p")
    assert tagged.startswith(c.tag + b" NO [NONEXISTENT]"), tagged
    old = Raw(imap)
    assert old.ok('LIST "" "p%"') == b'* LIST (\\Noselect \\HasChildren) "." p\r\n'
    old.close()
    c.close()


def test_utf8_mailbox_names(imap):
    c = Raw(imap, rev2=True)
    c.ok('CREATE "Grüße"'.encode())
    assert c.ok('LIST "" "Gr*"') == '* LIST (\\HasNoChildren) "." "Grüße"\r\n'.encode()
    before = c.ok('SELECT "Grüße"'.encode())
    assert '* LIST () "." "Grüße"\r\n'.encode() in lines(before), before
    assert c.ok('STATUS "Grüße" (MESSAGES)'.encode()) == \
        '* STATUS "Grüße" (MESSAGES 0)\r\n'.encode()
    old = Raw(imap)
    assert old.ok('LIST "" "Gr*"') == b'* LIST (\\HasNoChildren) "." Gr&APwA3w-e\r\n'
    old.close()
    c.close()


def test_second_select_says_closed(imap):
    c = Raw(imap, rev2=True)
    c.ok("SELECT INBOX")
    before = c.ok("SELECT Archive")
    assert before.startswith(b"* OK [CLOSED] Previous mailbox closed\r\n"), before
    old = Raw(imap)
    old.ok("SELECT INBOX")
    before = old.ok("EXAMINE Archive")
    assert b"[CLOSED]" not in before and b"* 0 RECENT\r\n" in lines(before), before
    old.close()
    c.close()


def test_list_recursivematch_childinfo(imap):
    c = Raw(imap, rev2=True)
    for box in ("t", "t.u", "t.v"):
        c.ok(f"CREATE {box}")
    c.ok("SUBSCRIBE t.u")
    c.ok("SUBSCRIBE w.x")          # w.x and w do not exist
    subs = [l for l in lines(c.ok('LIST (SUBSCRIBED) "" "*"'))
            if not re.search(rb'"\." (INBOX|Sent|Drafts|Trash|Junk|Archive)\r\n', l)]
    assert subs == [b'* LIST (\\HasNoChildren \\Subscribed) "." t.u\r\n',
                    b'* LIST (\\NonExistent \\Subscribed) "." w.x\r\n'], subs
    # without RECURSIVEMATCH the parents are not subscribed: not listed
    before = c.ok('LIST (SUBSCRIBED) "" "%"')
    assert b'"." t\r\n' not in before and b'"." w' not in before, before
    before = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert b'* LIST (\\HasChildren) "." t ("CHILDINFO" ("SUBSCRIBED"))\r\n' in lines(before), before
    assert b'* LIST (\\NonExistent) "." w ("CHILDINFO" ("SUBSCRIBED"))\r\n' in lines(before), before
    assert not re.search(rb'"\." (t\.|w\.)', before), before
    # when the pattern returns the child itself, no CHILDINFO
    before = c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" "t*"')
    assert before == b'* LIST (\\HasNoChildren \\Subscribed) "." t.u\r\n', before
    tagged, _ = c.cmd('LIST (RECURSIVEMATCH) "" "%"')      # needs SUBSCRIBED
    assert tagged.startswith(c.tag + b" BAD"), tagged
    c.close()
