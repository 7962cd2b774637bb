"""bench/dovecot/dovecot.py - Debian's Dovecot as a private, throw-away
IMAP server for side-by-side benchmarks.  Nothing is installed: the
packages are fetched with `apt-get download` (as any user), unpacked with
`dpkg -x` under build/bench/dovecot/, and `dovecot -F -c <conf>` runs
from there as the current user on unprivileged loopback ports.

Three things Debian's build has compiled in are redirected:
- the service binaries (/usr/lib/dovecot): `libexec_dir`;
- /usr/bin/doveconf, which the master runs to read its configuration:
  we run the extracted doveconf ourselves with `-e dovecot ...`, which
  puts the parsed settings in the environment and execs the master;
- the module directory (/usr/lib/dovecot/modules: the SSL module every
  imap-login loads, auth modules): an LD_PRELOAD shim
  (dovecot_paths.c) that rewrites opendir()/dlopen() of that path.

Run as root, Dovecot refuses root for login processes and for mail
access, so those run as `nobody` and the Maildirs are chowned to it; run
as an ordinary user everything is that user.
"""
import os
import pwd
import grp
import shutil
import signal
import subprocess
import sys

PACKAGES = ["dovecot-core", "dovecot-imapd"]
MULTIARCH = "x86_64-linux-gnu"


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def _installed(pkg):
    r = _run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and "install ok installed" in r.stdout


def _download(pkgs, dest):
    os.makedirs(dest, exist_ok=True)
    r = _run(["apt-get", "download"] + pkgs, cwd=dest)
    if r.returncode != 0:
        sys.exit("bench: cannot fetch %s with 'apt-get download' (needs "
                 "Debian apt sources; as root run 'apt-get update' first):\n%s"
                 % (" ".join(pkgs), (r.stderr or r.stdout).strip()[-1500:]))


def _debs(dest):
    return sorted(os.path.join(dest, f) for f in os.listdir(dest) if f.endswith(".deb"))


def _lib_path(root):
    return ":".join([os.path.join(root, "usr/lib/dovecot"),
                     os.path.join(root, "usr/lib/dovecot/modules/old-stats"),
                     os.path.join(root, "usr/lib", MULTIARCH),
                     os.path.join(root, "lib", MULTIARCH)])


def _missing_libs(root):
    env = dict(os.environ, LD_LIBRARY_PATH=_lib_path(root))
    missing = set()
    for b in ("usr/sbin/dovecot", "usr/bin/doveconf", "usr/lib/dovecot/imap",
              "usr/lib/dovecot/imap-login", "usr/lib/dovecot/auth",
              "usr/lib/dovecot/config", "usr/lib/dovecot/log",
              "usr/lib/dovecot/anvil", "usr/lib/dovecot/stats",
              "usr/lib/dovecot/modules/libssl_iostream_openssl.so"):
        r = _run(["ldd", os.path.join(root, b)], env=env)
        for line in r.stdout.splitlines():
            if "not found" in line:
                missing.add(line.split()[0])
    return missing


def prepare(build_dir):
    """Fetches and unpacks Dovecot (once); returns the extracted root."""
    debdir = os.path.join(build_dir, "debs")
    root = os.path.join(build_dir, "root")
    if not os.path.exists(os.path.join(root, "usr/sbin/dovecot")):
        if not shutil.which("apt-get") or not shutil.which("dpkg"):
            sys.exit("bench: the Dovecot comparison needs apt-get and dpkg (Debian)")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(debdir, ignore_errors=True)
        _download(PACKAGES, debdir)
        for deb in _debs(debdir):
            subprocess.run(["dpkg", "-x", deb, root], check=True)
    missing = _missing_libs(root)
    if missing:
        # Fetch the library packages dovecot-core depends on that are not
        # installed here, and unpack them beside it.
        core = [d for d in _debs(debdir) if "dovecot-core" in d]
        deps = _run(["dpkg-deb", "-f", core[0], "Depends"]).stdout if core else ""
        want = []
        for alt in deps.split(","):
            name = alt.split("|")[0].strip().split(" ")[0]
            if (name.startswith("lib") or name == "zlib1g") and not _installed(name):
                want.append(name)
        if want:
            libdir = os.path.join(build_dir, "libdebs")
            _download(want, libdir)
            for deb in _debs(libdir):
                subprocess.run(["dpkg", "-x", deb, root], check=True)
        missing = _missing_libs(root)
        if missing:
            sys.exit("bench: Dovecot's binaries still miss libraries: %s"
                     % ", ".join(sorted(missing)))
    shim_src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dovecot_paths.c")
    shim = os.path.join(build_dir, "dovecot_paths.so")
    if (not os.path.exists(shim) or
            os.path.getmtime(shim) < os.path.getmtime(shim_src)):
        subprocess.run(["cc", "-O2", "-shared", "-fPIC",
                        '-DDOVECOT_PREFIX="%s"' % root, "-o", shim, shim_src, "-ldl"],
                       check=True)
    return root


def version(root):
    env = dict(os.environ, LD_LIBRARY_PATH=_lib_path(root))
    r = _run([os.path.join(root, "usr/sbin/dovecot"), "--version"], env=env)
    return r.stdout.strip()


class Dovecot:
    """One instance: config, passwd-file, Maildirs under `top`."""

    def __init__(self, root, build_dir, top, imap_port, imaps_port, cert, key):
        self.root, self.top = root, top
        self.imap_port, self.imaps_port = imap_port, imaps_port
        self.conf = os.path.join(top, "dovecot.conf")
        self.passwd = os.path.join(top, "passwd")
        self.mail = os.path.join(top, "mail")
        self.log = os.path.join(top, "dovecot.log")
        self.shim = os.path.join(build_dir, "dovecot_paths.so")
        self.proc = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("nobody")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            self.login_user, self.internal_user = "nobody", "root"
            self.internal_group = "root"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            self.login_user = self.internal_user = pwd.getpwuid(self.uid).pw_name
            self.internal_group = grp.getgrgid(self.gid).gr_name
        for d in ("run", "state", "mail"):
            os.makedirs(os.path.join(top, d), exist_ok=True)
        if os.geteuid() == 0:
            # nobody must reach the Maildirs: o+x on the way down
            # (mkdtemp makes 0700 directories).
            for d in (os.path.dirname(top), top):
                st = os.stat(d)
                if st.st_uid == 0 and (st.st_mode & 0o011) != 0o011:
                    os.chmod(d, (st.st_mode & 0o7777) | 0o011)
        self.cert, self.key = cert, key

    def maildir(self, user, domain):
        return os.path.join(self.mail, domain, user, "Maildir")

    def write_config(self, users):
        """users: list of (address, crypt hash)."""
        with open(self.passwd, "w") as f:
            for addr, h in users:
                f.write("%s:{CRYPT}%s::::::\n" % (addr, h))
        lib = os.path.join(self.root, "usr/lib/dovecot")
        ncpu = os.cpu_count() or 1
        with open(self.conf, "w") as f:
            f.write(f"""# written by bench/dovecot/dovecot.py
protocols = imap
listen = 127.0.0.1
base_dir = {self.top}/run
state_dir = {self.top}/state
log_path = {self.log}
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
default_login_user = {self.login_user}
libexec_dir = {lib}
login_plugin_dir = {lib}/modules/login
mail_plugin_dir = {lib}/modules
import_environment = TZ LD_LIBRARY_PATH={_lib_path(self.root)} LD_PRELOAD={self.shim}
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.key}
disable_plaintext_auth = no
auth_mechanisms = plain login
passdb {{
  driver = passwd-file
  args = scheme=CRYPT username_format=%u {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.passwd}
  default_fields = uid={self.uid} gid={self.gid} home={self.mail}/%d/%n
}}
mail_location = maildir:~/Maildir
protocol imap {{
  mail_max_userip_connections = 20000
}}
# The high-performance login mode: one imap-login process per core,
# each serving many connections; imap processes reused.
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
  service_count = 0
  process_min_avail = {ncpu}
  chroot =
}}
service imap {{
  service_count = 0
  process_limit = 20000
}}
service auth {{
  client_limit = 30000
}}
service anvil {{
  client_limit = 30000
}}
default_client_limit = 30000
default_vsz_limit = 1G
""")

    def chown_mail(self):
        if os.geteuid() != 0:
            return
        for dirpath, dirnames, filenames in os.walk(self.mail):
            os.chown(dirpath, self.uid, self.gid)
            for n in filenames:
                os.chown(os.path.join(dirpath, n), self.uid, self.gid)

    def start(self):
        root = self.root
        env = dict(os.environ, LD_LIBRARY_PATH=_lib_path(root), LD_PRELOAD=self.shim)
        shutil.rmtree(os.path.join(self.top, "run"), ignore_errors=True)
        os.makedirs(os.path.join(self.top, "run"))
        # doveconf parses the config and execs the master with it in the
        # environment (the master would run /usr/bin/doveconf otherwise).
        self.proc = subprocess.Popen(
            [os.path.join(root, "usr/bin/doveconf"), "-c", self.conf, "-m", "master",
             "-p", "-e", os.path.join(root, "usr/sbin/dovecot"), "-F", "-c", self.conf],
            env=env, stdout=subprocess.DEVNULL, stderr=open(self.log + ".stderr", "w"))

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def pids(self):
        """The master and all its descendants."""
        if self.proc is None:
            return []
        children = {}
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(p))
        out, todo = [], [self.proc.pid]
        while todo:
            p = todo.pop()
            out.append(p)
            todo.extend(children.get(p, []))
        return out
