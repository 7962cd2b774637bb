"""Real IMAP clients against imapd: curl (imaps://) and mbsync (isync)
syncing down and back up, repeatedly, with no error and no duplicate."""

import subprocess
import smtplib
import time

import buzon

ALICE, ALICE_PW = "alice@example.test", buzon.PASSWORDS["alice@example.test"]


def deliver(inst, subject):
    s = smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=buzon.t(10))
    s.sendmail("x@y.test", [ALICE], f"From: x@y.test\r\nSubject: {subject}\r\n"
               f"Message-ID: <{subject}@y.test>\r\n\r\nbody of {subject}\r\n")
    s.quit()


def test_curl_lists_and_fetches(imap, tool):
    tool("curl")
    deliver(imap, "curlmsg")
    url = f"imaps://127.0.0.1:{imap.imaps_port}/"
    r = subprocess.run(["curl", "-sk", "--user", f"{ALICE}:{ALICE_PW}", url],
                       capture_output=True, text=True, timeout=buzon.t(30))
    assert r.returncode == 0, r.stderr
    assert '"." INBOX' in r.stdout and "\\Sent" in r.stdout, r.stdout
    r = subprocess.run(["curl", "-sk", "--user", f"{ALICE}:{ALICE_PW}",
                        url + "INBOX;UID=1"], capture_output=True, text=True,
                       timeout=buzon.t(30))
    assert r.returncode == 0, r.stderr
    assert "Subject: curlmsg" in r.stdout and "body of curlmsg" in r.stdout, r.stdout


def test_mbsync_down_and_up_twice(imap, tool, tmp_path):
    tool("mbsync")
    for i in range(3):
        deliver(imap, f"m{i}")
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(f"""IMAPAccount buzon
Host 127.0.0.1
Port {imap.imaps_port}
User {ALICE}
Pass {ALICE_PW}
SSLType IMAPS
CertificateFile {imap.tls_cert}
SystemCertificates no

IMAPStore remote
Account buzon

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Both
SyncState *
""")

    def sync():
        r = subprocess.run(["mbsync", "-c", str(rc), "-a"], capture_output=True,
                           text=True, timeout=buzon.t(60))
        assert r.returncode == 0, f"mbsync exit {r.returncode}: {r.stdout}{r.stderr}"
        assert "error" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr

    sync()
    down = [p for d in ("cur", "new") for p in (local / "INBOX" / d).iterdir()]
    assert len(down) == 3, down
    # a message written locally goes up, once
    (local / "INBOX" / "cur" / f"{int(time.time())}.up1.host:2,S").write_bytes(
        b"From: me@x.test\nSubject: up\nMessage-ID: <up1@x.test>\n\nup\n")
    sync()
    sync()
    server = imap.messages(ALICE)
    assert len(server) == 4, [p.name for p in server]
    assert sum(b"<up1@x.test>" in p.read_bytes() for p in server) == 1
    local_files = [p for d in ("cur", "new") for p in (local / "INBOX" / d).iterdir()]
    assert len(local_files) == 4, local_files
    assert (local / "Sent").is_dir() and (local / "Trash").is_dir()
