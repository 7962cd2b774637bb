"""`make run`: conf/demo.sh brings up a working demo instance.

Runs the script the README tells a new user to run, on free ports in a
temporary directory, then does what the script prints: swaks to the demo
user, and the message is in the demo user's Maildir.  Ctrl-C (SIGINT to
the process group) stops everything.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import buzon

ROOT = Path(__file__).resolve().parents[2]


def test_demo_script_runs_and_delivers(tmp_path):
    ports = {name: buzon.free_port() for name in
             ("SMTP", "SUBMISSION", "IMAP", "IMAPS", "POP3", "POP3S")}
    env = dict(os.environ, BUZON_DEMO_DIR=str(tmp_path / "run"),
               BUZON_BIN=str(buzon.BIN))
    for name, port in ports.items():
        env[f"BUZON_DEMO_{name}_PORT"] = str(port)
    out = open(tmp_path / "demo.out", "w+")
    proc = subprocess.Popen(["sh", str(ROOT / "conf" / "demo.sh")], cwd=ROOT,
                            env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        buzon.wait_until(lambda: "Ctrl-C stops" in Path(out.name).read_text(),
                         buzon.t(30), what="the demo's instructions")
        text = Path(out.name).read_text()
        assert "demo@example.test" in text and "demo-password" in text, text
        assert f"swaks --to demo@example.test --server 127.0.0.1:{ports['SMTP']}" in text, text

        def greeted():
            try:
                c = buzon.SMTPClient(ports["SMTP"], timeout=2)
                c.close()
                return True
            except OSError:
                return False
        buzon.wait_until(greeted, buzon.t(15), what="smtpd greeting")
        r = subprocess.run(["swaks", "--to", "demo@example.test", "--server",
                            f"127.0.0.1:{ports['SMTP']}", "--header",
                            "Subject: demo check"],
                           capture_output=True, text=True, timeout=buzon.t(30))
        assert r.returncode == 0, r.stdout + r.stderr
        # the submission listener: STARTTLS, AUTH as the demo user
        sub = subprocess.run(["swaks", "--to", "demo@example.test", "--from",
                              "demo@example.test", "--server",
                              f"127.0.0.1:{ports['SUBMISSION']}", "--tls",
                              "--auth-user", "demo@example.test",
                              "--auth-password", "demo-password",
                              "--header", "Subject: demo submission"],
                             capture_output=True, text=True, timeout=buzon.t(30))
        assert sub.returncode == 0, sub.stdout + sub.stderr
        new = tmp_path / "run" / "mail" / "example.test" / "demo" / "new"
        files = sorted(new.iterdir())
        assert len(files) == 2, f"expected two messages in {new}, saw {files}"
        texts = [f.read_bytes() for f in files]
        assert any(b"Subject: demo check" in t for t in texts), texts
        sub_text = [t for t in texts if b"Subject: demo submission" in t]
        assert sub_text and b"Authenticated sender: demo@example.test" in sub_text[0], texts
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=buzon.t(15))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        out.close()
    # nothing left running (a daemon's own children may take a moment
    # after the script itself has exited)
    def leftovers():
        return subprocess.run(["pgrep", "-a", "-f", str(tmp_path)],
                              capture_output=True, text=True).stdout.strip()
    deadline = time.monotonic() + buzon.t(5)
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = leftovers()
    assert left == "", f"demo processes still running {buzon.t(5):.0f}s after Ctrl-C: {left}"
