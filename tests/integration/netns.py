"""A private network + mount namespace for the pytest process, with a DNS
server of our own (tests/dns/dnsserver.py) that the system resolver uses.

    with PrivateNet(tmp_dir) as net:      # or the `net` fixture of outbound.py
        ...   # everything started here (smtpd, mailadm, the DNS server)
        ...   # lives in the namespace; the test talks to 127.0.0.2/3...
    # back in the original namespaces: other test modules see nothing

On enter (root only: unshare needs CAP_SYS_ADMIN):
  1. the pytest process must be single-threaded (see below); fds of
     /proc/self/ns/net and /proc/self/ns/mnt and the cwd are saved;
  2. unshare(CLONE_NEWNET | CLONE_NEWNS) (ctypes: Python 3.11 has no
     os.unshare), then / is made recursively private so that nothing
     mounted here propagates back to the host;
  3. lo is brought up (SIOCSIFFLAGS): all of 127.0.0.0/8 is then local, so
     instances can listen on 127.0.0.2, 127.0.0.3 ... and on port 25;
  4. a resolv.conf ("nameserver 127.0.0.53", short timeouts) and an
     nsswitch.conf whose hosts line is "files dns" are bind-mounted over
     the ones in /etc;
  5. the zone files (tests/dns/*.zone) are copied to a temp dir, and
     dnsserver.py serving it is started on 127.0.0.53:53 (a child process:
     it inherits the namespaces); enter returns once it printed "ready".

On exit: the DNS server is stopped (SIGTERM, bounded), then setns() goes
back to the saved network and mount namespaces and the cwd is restored.

THREADS: setns() into a mount namespace fails (EINVAL) when the process
shares its filesystem attributes with another thread, and namespaces are
per thread anyway (a thread started before unshare would stay outside).
So enter and exit require the pytest process to have exactly one thread:
helper threads (e.g. buzon.TempfailServer) must be joined before the
namespace is left.  Exit waits a bounded time for stray threads to end,
and fails loudly (staying inside) if they do not.

Processes started while inside (the daemons, mailadm) stay in the
namespace for their whole life: stop them before leaving (the fixtures of
outbound.py do).  Leaving ends any process still in the private network
namespace (only the tests can have started one: SIGTERM, then SIGKILL, by
pid) and then fails naming them; it checks that /proc/self/ns/{net,mnt}
are the ones saved on enter.

Use: the module-scoped `net` fixture of outbound.py, or directly
    net = PrivateNet(tmp_dir); net.enter(); ...; net.leave()
"""

import ctypes
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import buzon

DNS_DIR = buzon.REPO / "tests" / "dns"
DNS_SERVER = DNS_DIR / "dnsserver.py"
DNS_ADDR = "127.0.0.53"
PYTHON = "/usr/bin/python3"      # python3-dnslib is a Debian package

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                        ctypes.c_ulong, ctypes.c_void_p]


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _mount(src, target, fstype, flags):
    _check(_libc.mount(src.encode() if src else None, target.encode(),
                       fstype.encode() if fstype else None, flags, None),
           f"mount({src}, {target}, flags={flags:#x})")


def thread_count():
    """Threads of this process as the kernel sees them (not only Python's)."""
    return len(os.listdir("/proc/self/task"))


def _threads_described():
    return ", ".join(f"{th.name}{' (daemon)' if th.daemon else ''}"
                     for th in threading.enumerate()
                     if th is not threading.main_thread()) or "(none known to Python)"


def _wait_single_threaded(timeout):
    deadline = time.monotonic() + timeout
    while thread_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    return thread_count() == 1


def _zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def lo_up():
    """ip link set lo up, by ioctl."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, SIOCGIFFLAGS, ifr))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
    finally:
        s.close()


class PrivateNet:
    """The context manager.  .zone_dir is the directory the DNS server
    serves (a copy of tests/dns/*.zone); append_zone() adds a line at run
    time (the server re-reads changed files before each answer)."""

    def __init__(self, work_dir, zones=DNS_DIR, dns_addr=DNS_ADDR):
        self.work = Path(work_dir)
        self.work.mkdir(parents=True, exist_ok=True)
        self.zone_src = Path(zones)
        self.zone_dir = self.work / "zones"
        self.dns_addr = dns_addr
        self.dns_stderr = self.work / "dnsserver.stderr"
        self.dns = None
        self._fds = None
        self._cwd = None
        self.inside = False

    # -- zones
    def zone_file(self, zone):
        return self.zone_dir / f"{zone.rstrip('.')}.zone"

    def reset_zones(self):
        """The served zones become the pristine copies of tests/dns/*.zone
        again (appended lines and added files go away)."""
        self.zone_dir.mkdir(parents=True, exist_ok=True)
        want = {z.name: z for z in self.zone_src.glob("*.zone")}
        for p in self.zone_dir.iterdir():
            if p.name not in want:
                p.unlink()
        for name, src in want.items():
            tmp = self.zone_dir / f".{name}.tmp"
            shutil.copy(src, tmp)
            os.replace(tmp, self.zone_dir / name)

    def append_zone(self, zone, line):
        """Append one or more zone-file lines to ZONE's file (created with
        a default SOA when missing).  Bumps the mtime so the server sees it."""
        from dnslib import RR
        try:
            RR.fromZone(line, origin=zone.rstrip(".") + ".", ttl=300)
        except Exception as e:
            raise AssertionError(f"the DNS server could not serve {line!r}: {e!r}") from None
        p = self.zone_file(zone)
        text = p.read_text() if p.exists() else \
            f"$ORIGIN {zone.rstrip('.')}.\n$TTL 300\n"
        if text and not text.endswith("\n"):
            text += "\n"
        text += line.rstrip("\n") + "\n"
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, p)      # atomic: the server never reads half a file

    def write_zone(self, zone, text):
        """Serve text, a whole zone file, as ZONE (replacing the served
        copy, or adding a zone).  Like append_zone, undone by
        reset_zones(): a file not in tests/dns goes away, one that is
        there comes back as it was."""
        from dnslib import RR
        try:
            RR.fromZone(text, origin=zone.rstrip(".") + ".", ttl=300)
        except Exception as e:
            raise AssertionError(f"the DNS server could not serve zone {zone}: {e!r}\n"
                                 f"{text}") from None
        p = self.zone_file(zone)
        tmp = p.with_name(f".{p.name}.tmp")
        tmp.write_text(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, p)      # atomic: the server never reads half a file

    def dns_query(self, name, qtype="A", tcp=False, timeout=None):
        """A raw query to our DNS server (dnslib); returns the DNSRecord."""
        from dnslib import DNSRecord
        q = DNSRecord.question(name, qtype)
        data = q.send(self.dns_addr, 53, tcp=tcp, timeout=timeout or buzon.t(5))
        r = DNSRecord.parse(data)
        if r.header.tc and not tcp:
            return self.dns_query(name, qtype, tcp=True, timeout=timeout)
        return r

    # -- enter / leave
    def __enter__(self):
        self.enter()
        return self

    def __exit__(self, *exc):
        self.leave()

    def enter(self):
        if os.geteuid() != 0:
            raise AssertionError(
                "the outbound/DNS tests need root: they unshare a private network and "
                "mount namespace (CAP_SYS_ADMIN) and listen on 127.0.0.x:25 and :53 - "
                "run pytest as root")
        if not _wait_single_threaded(buzon.t(5)):
            raise AssertionError(
                f"cannot enter a private namespace: the pytest process has {thread_count()} "
                f"threads (Python knows of: {_threads_described()}); namespaces are per "
                "thread and setns(mount) needs a single-threaded process")
        if not DNS_SERVER.is_file():
            raise AssertionError(f"{DNS_SERVER} is missing")
        self.reset_zones()
        resolv = self.work / "resolv.conf"
        resolv.write_text(f"nameserver {self.dns_addr}\noptions timeout:1 attempts:2\n")
        nss = self.work / "nsswitch.conf"
        try:
            lines = Path("/etc/nsswitch.conf").read_text().splitlines()
        except OSError:
            lines = []
        lines = [ln for ln in lines if not ln.split(":")[0].strip() == "hosts"]
        nss.write_text("\n".join(lines + ["hosts: files dns"]) + "\n")

        self._cwd = os.getcwd()
        self._orig = (os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/mnt"))
        self._fds = (os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC),
                     os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC))
        try:
            _check(_libc.unshare(CLONE_NEWNET | CLONE_NEWNS),
                   "unshare(CLONE_NEWNET|CLONE_NEWNS)")
        except OSError as e:
            self._close_fds()
            raise AssertionError(f"cannot make a private namespace: {e}") from None
        self.inside = True
        self._private = os.readlink("/proc/self/ns/net")
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            lo_up()
            _mount(str(resolv), "/etc/resolv.conf", None, MS_BIND)
            if os.path.exists("/etc/nsswitch.conf"):
                _mount(str(nss), "/etc/nsswitch.conf", None, MS_BIND)
            self._start_dns()
        except BaseException:
            self.leave()
            raise

    def _start_dns(self):
        err = open(self.dns_stderr, "ab")
        try:
            self.dns = subprocess.Popen(
                [PYTHON, str(DNS_SERVER), str(self.zone_dir), f"{self.dns_addr}:53"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err)
        finally:
            err.close()
        deadline = time.monotonic() + buzon.t(15)
        line = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.dns.stdout], [], [], 0.1)
            if r:
                line = self.dns.stdout.readline()
                break
            if self.dns.poll() is not None:
                break
        if line.strip() != b"ready":
            self._stop_dns()
            raise AssertionError(
                f"dnsserver.py did not print 'ready' on {self.dns_addr}:53 within "
                f"{buzon.t(15):.0f}s (got {line!r}); stderr:\n{buzon.tail(self.dns_stderr)}")
        self.dns.stdout.close()     # it prints nothing after "ready"

    def _stop_dns(self):
        if self.dns is None:
            return
        p, self.dns = self.dns, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=buzon.t(5))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=buzon.t(5))
        if p.stdout and not p.stdout.closed:
            p.stdout.close()

    def _close_fds(self):
        if self._fds:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    def leave(self):
        if not self.inside:
            return
        leaked = []
        try:
            self._stop_dns()
            leaked = self._end_leftovers()
        finally:
            if not _wait_single_threaded(buzon.t(10)):
                raise AssertionError(
                    f"cannot leave the private namespace: the pytest process still has "
                    f"{thread_count()} threads (Python knows of: {_threads_described()}); "
                    "join helper threads before the namespace fixture ends")
            net, mnt = self._fds
            _check(_libc.setns(net, CLONE_NEWNET), "setns(net)")
            _check(_libc.setns(mnt, CLONE_NEWNS), "setns(mnt)")
            self.inside = False
            self._close_fds()
            os.chdir(self._cwd)
            now = (os.readlink("/proc/self/ns/net"), os.readlink("/proc/self/ns/mnt"))
            assert now == self._orig, \
                f"after leaving the private namespace the process is in {now}, not {self._orig}"
        assert not leaked, \
            f"processes were still running in the private namespace when it was left " \
            f"(ended with SIGTERM/SIGKILL): {leaked}"

    def _end_leftovers(self):
        """Processes other than this one still in the private network
        namespace: only the tests can have started them (daemons a test
        did not stop).  End them, by pid, and return their command lines."""
        me = os.getpid()
        found = {}
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                if os.readlink(f"/proc/{d}/ns/net") != self._private:
                    continue
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    found[int(d)] = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
        for pid in found:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + buzon.t(5)
        for pid in found:
            while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}") and \
                    not _zombie(pid):
                time.sleep(0.05)
            if os.path.exists(f"/proc/{pid}") and not _zombie(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(pid, os.WNOHANG)     # reap our own children
            except ChildProcessError:
                pass
        return [f"{pid}: {cmd}" for pid, cmd in found.items()]

    def dns_stderr_tail(self):
        return buzon.tail(self.dns_stderr)

