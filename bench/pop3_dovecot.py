"""bench/pop3_dovecot.py - Debian's Dovecot POP3 server for side-by-side
benchmarks, run unprivileged from extracted packages: never installed,
never a system service.

`apt-get download dovecot-core dovecot-pop3d` into a cache directory and
`dpkg -x` them.  Dovecot finds its helpers at compiled-in paths
(/usr/bin/doveconf, /usr/lib/dovecot/...), so it runs in a private mount
namespace where the extracted usr/ is overlaid on /usr: the real /usr is
never written.  The master runs as the unprivileged user `nobody` (with
every Dovecot service user set to it, which is Dovecot's documented way
to run without root), on loopback ports, with its own base_dir, a
passwd-file and its own copy of the Maildirs.  Settings are Dovecot's
defaults except what a like-for-like comparison needs: implicit TLS
with the same certificate, the same password hashes ({CRYPT} on the
yescrypt strings from Buzón's database), Maildir in the same layout,
UIDL in the %08Xv%08Xu style, and Dovecot's high-performance login mode
(one pop3-login process per CPU serving many connections,
service_count = 0) rather than one process per connection.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

PACKAGES = ("dovecot-core", "dovecot-pop3d")


def fetch(cache):
    """The extracted tree of the Debian packages (download once)."""
    root = os.path.join(cache, "root")
    if os.path.exists(os.path.join(root, "usr/lib/dovecot/pop3")):
        return root
    os.makedirs(cache, exist_ok=True)
    subprocess.run(["apt-get", "download"] + list(PACKAGES), cwd=cache,
                   check=True, stdout=subprocess.DEVNULL)
    for f in sorted(os.listdir(cache)):
        if f.endswith(".deb"):
            subprocess.run(["dpkg", "-x", os.path.join(cache, f), root], check=True)
    return root


def version(root):
    cp = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh",
                         "-c", f"mount -t overlay overlay -o lowerdir={root}/usr:/usr"
                         f" /usr && exec /usr/sbin/dovecot --version"],
                        capture_output=True, text=True)
    return cp.stdout.strip() or cp.stderr.strip()


class Dovecot:
    def __init__(self, root, workdir, port, cert, key, users, mail_src):
        """users: [(address, crypt hash)]; mail_src: Buzón's mail_dir
        (copied, so the two servers never share files)."""
        self.root = root
        self.dir = workdir
        self.port = port
        self.user = "nobody"
        pw = pwd.getpwnam(self.user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.makedirs(workdir, exist_ok=True)
        self.mail = os.path.join(workdir, "mail")
        if os.path.exists(self.mail):
            shutil.rmtree(self.mail)
        shutil.copytree(mail_src, self.mail, symlinks=True,
                        ignore=shutil.ignore_patterns("index.db*", "pop3.lock",
                                                      "maildirsize"))
        for sub in ("run", "state", "tls"):
            os.makedirs(os.path.join(workdir, sub), exist_ok=True)
        shutil.copy(cert, os.path.join(workdir, "tls/cert.pem"))
        shutil.copy(key, os.path.join(workdir, "tls/key.pem"))
        with open(os.path.join(workdir, "passwd"), "w") as f:
            for addr, h in users:
                f.write(f"{addr}:{{CRYPT}}{h}::::::\n")
        self.conf = os.path.join(workdir, "dovecot.conf")
        self._write_conf()
        for d, _, fs in os.walk(workdir):
            os.chown(d, self.uid, self.gid)
            for f in fs:
                os.chown(os.path.join(d, f), self.uid, self.gid)
        self.proc = None

    def _write_conf(self):
        lib = "/usr/lib/dovecot"        # inside the overlay
        w = self.dir
        u = self.user
        svc = lambda n: f"  executable = {lib}/{n}\n"
        text = f"""# written by bench/pop3_dovecot.py
base_dir = {w}/run
state_dir = {w}/state
instance_name = bench-pop3
protocols = pop3
listen = 127.0.0.1
log_path = {w}/dovecot.log
info_log_path = {w}/dovecot.log
default_internal_user = {u}
default_internal_group = nogroup
default_login_user = {u}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = {self.gid}
mail_uid = {self.uid}
mail_gid = {self.gid}
mail_plugin_dir = {lib}/modules
auth_mechanisms = plain login
disable_plaintext_auth = yes
ssl = required
ssl_cert = <{w}/tls/cert.pem
ssl_key = <{w}/tls/key.pem
ssl_min_protocol = TLSv1.2
mail_location = maildir:{w}/mail/%d/%n
pop3_uidl_format = %08Xv%08Xu
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {w}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={w}/mail/%d/%n
}}
service pop3-login {{
{svc("pop3-login")}  chroot =
  service_count = 0
  process_min_avail = {os.cpu_count() or 1}
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = {self.port}
    ssl = yes
  }}
}}
service pop3 {{
{svc("pop3")}}}
service auth {{
{svc("auth")}}}
service auth-worker {{
{svc("auth")}  user = {u}
}}
service config {{
{svc("config")}}}
service anvil {{
{svc("anvil")}  chroot =
}}
service log {{
{svc("log")}}}
service stats {{
{svc("stats")}}}
service dns-client {{
{svc("dns-client")}}}
service imap-urlauth-login {{
  inet_listener imap-urlauth {{
    port = 0
  }}
}}
"""
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        env = {"PATH": "/usr/bin:/bin"}
        inner = (f"mount -t overlay overlay -o lowerdir={self.root}/usr:/usr /usr"
                 f" && exec setpriv --reuid={self.uid} --regid={self.gid}"
                 f" --clear-groups /usr/sbin/dovecot -F -c {self.conf}")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner],
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "dovecot.stderr"), "w"))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("dovecot exited: " + self.log_tail())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("dovecot did not listen: " + self.log_tail())

    def pids(self):
        """The master and all its children (for CPU and memory figures)."""
        out = [self.proc.pid]
        try:
            cp = subprocess.run(["pgrep", "-P", str(self.proc.pid)],
                                capture_output=True, text=True)
            out += [int(x) for x in cp.stdout.split()]
        except OSError:
            pass
        return out

    def log_tail(self):
        text = ""
        for name in ("dovecot.stderr", "dovecot.log"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                text += open(p).read()[-3000:]
        return text

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
