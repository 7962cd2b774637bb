"""pop3d with real clients: fetchmail (fetch all into an mbox through its
--mda, with and without --keep, over pop3s and over pop3+STLS; with
--keep --uidl a second run fetches nothing and a third only the new
message) and curl (pop3s:// and pop3:// --ssl-reqd: listing, UIDL and
retrieving a message byte for byte)."""

import os
import subprocess

import buzon
from pop3_helpers import (ALICE, ALICE_PW, deliver, drop_file, files,
                          index_uids, stored_messages, to_crlf)

MDA = """import fcntl, sys
data = sys.stdin.buffer.read()
with open(sys.argv[1], "ab") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    f.write(b"From fetchmail-mda\\n" + data + b"\\n")
"""
SEP = b"From fetchmail-mda\n"


class Fetchmail:
    """fetchmail run as a user would: an rcfile, its own home, an MDA
    script appending to an mbox file."""

    def __init__(self, inst, tool, tls, keep=False, uidl=False, tag=""):
        self.exe = tool("fetchmail")
        self.inst = inst
        self.home = inst.root / f"fetchmail-{tls}{tag}"
        self.home.mkdir(mode=0o700, exist_ok=True)
        self.mbox = inst.root / f"mbox-{tls}{tag}"
        mda = inst.root / "mda.py"
        mda.write_text(MDA)
        port, opts = ((inst.pop3s_port, "ssl no sslcertck") if tls == "pop3s"
                      else (inst.pop3_port, "sslproto 'tls1.2+' no sslcertck"))
        self.rc = self.home / "fetchmailrc"
        self.rc.write_text(
            "set no bouncemail\nset invisible\n"
            f"poll 127.0.0.1 with proto POP3 port {port} auth password\n"
            f'  user "{ALICE}" there with password "{ALICE_PW}" is root here\n'
            f"  options {opts}\n"
            f'  mda "/usr/bin/python3 {mda} {self.mbox}"\n')
        os.chmod(self.rc, 0o600)
        self.args = (["--keep"] if keep else []) + (["--uidl"] if uidl else [])

    def run(self):
        env = dict(os.environ, FETCHMAILHOME=str(self.home), HOME=str(self.home),
                   FETCHMAILUSER="root")
        cp = subprocess.run([self.exe, "-f", str(self.rc), "--nodetach", "-v"]
                            + self.args, env=env, capture_output=True, text=True,
                            timeout=buzon.t(60))
        self.last = cp
        return cp.returncode

    def messages(self):
        """What the MDA received, message by message (bytes)."""
        if not self.mbox.exists():
            return []
        data = self.mbox.read_bytes()
        assert data.startswith(SEP), data[:200]
        assert data.endswith(b"\n"), data[-200:]
        # SEP msg1 "\n" SEP msg2 "\n" ...
        return data[len(SEP):-1].split(b"\n" + SEP)

    def log(self):
        return f"stdout:\n{self.last.stdout[-3000:]}\nstderr:\n{self.last.stderr[-2000:]}"


def test_fetchmail_fetch_all_pop3s(pop3, tool):
    deliver(pop3, "one", "first\r\n")
    deliver(pop3, "two", ".leading dot\r\n..two dots\r\n.\r\nend\r\n")
    deliver(pop3, "three", "third\r\n")
    want = stored_messages(pop3)
    fm = Fetchmail(pop3, tool, "pop3s")
    assert fm.run() == 0, fm.log()
    got = fm.messages()
    assert got == want, f"mbox holds {got!r}, expected the stored files {want!r}"
    # fetched and deleted: the Maildir and the index are empty
    assert files(pop3) == [] and index_uids(pop3) == []
    assert fm.run() == 1, fm.log()          # 1: no mail
    assert len(fm.messages()) == 3


def test_fetchmail_keep_and_uidl_over_stls(pop3, tool):
    deliver(pop3, "one")
    deliver(pop3, "two")
    want = stored_messages(pop3)
    # --keep: RETR, nothing deleted, the messages are \Seen afterwards
    fm = Fetchmail(pop3, tool, "stls", keep=True, tag="keep")
    assert fm.run() == 0, fm.log()
    assert "STLS" in fm.last.stdout, "fetchmail did not use STLS: " + fm.log()
    assert "RETR 1" in fm.last.stdout, fm.log()
    assert fm.messages() == want
    names = [f.name for f in files(pop3)]
    assert len(names) == 2 and all(n.endswith(":2,S") for n in names), names
    assert index_uids(pop3) == [1, 2]
    # --keep --uidl: fetchmail remembers UIDLs (and reads with TOP, so it
    # changes no flag); the UIDLs are stable, so a second run finds
    # nothing new and a third only the message delivered in between
    fu = Fetchmail(pop3, tool, "stls", keep=True, uidl=True, tag="uidl")
    assert fu.run() == 0, fu.log()
    assert fu.messages() == want
    assert fu.run() == 1, fu.log()              # 1: no new mail
    assert len(fu.messages()) == 2
    deliver(pop3, "three")
    assert fu.run() == 0, fu.log()
    got = fu.messages()
    assert len(got) == 3 and b"Subject: three" in got[2], got
    assert got[2] == stored_messages(pop3)[2]
    assert len(files(pop3)) == 3
    # without --keep: everything fetched (again) and removed
    fm2 = Fetchmail(pop3, tool, "pop3s")
    assert fm2.run() == 0, fm2.log()
    assert len(fm2.messages()) == 3 and files(pop3) == []
    assert index_uids(pop3) == []


def curl(tool, url, *extra):
    cp = subprocess.run([tool("curl"), "-sS", "-k", "--max-time", "30", "--user",
                         f"{ALICE}:{ALICE_PW}", url] + list(extra),
                        capture_output=True, timeout=buzon.t(60))
    return cp.returncode, cp.stdout, cp.stderr


def test_curl_list_uidl_and_retrieve(pop3, tool):
    data = (b"From: a@b.test\nSubject: curl\n\n.one dot\n..two\n.\nlast line\n")
    drop_file(pop3, data)
    deliver(pop3, "second")
    sizes = [len(to_crlf(d)) for d in stored_messages(pop3)]
    base = f"pop3s://127.0.0.1:{pop3.pop3s_port}/"
    rc, out, err = curl(tool, base)
    assert rc == 0, err
    assert out == b"".join(f"{i + 1} {s}\r\n".encode() for i, s in enumerate(sizes)), out
    rc, out, err = curl(tool, base, "-X", "UIDL")
    assert rc == 0, err
    lines = out.split(b"\r\n")
    assert [ln.split()[0] for ln in lines if ln] == [b"1", b"2"], out
    rc, out, err = curl(tool, base + "1")
    assert rc == 0, err
    assert out == to_crlf(data), f"curl got {out!r}"
    # over pop3 + STLS
    rc, out, err = curl(tool, f"pop3://127.0.0.1:{pop3.pop3_port}/1", "--ssl-reqd")
    assert rc == 0, err
    assert out == to_crlf(data)
    # and never in plaintext
    rc, out, err = curl(tool, f"pop3://127.0.0.1:{pop3.pop3_port}/1")
    assert rc != 0 and out == b"", (rc, out)
    # curl's RETR set \Seen; nothing was deleted
    assert len(files(pop3)) == 2
    assert sum(f.name.endswith(":2,S") for f in files(pop3)) == 1
