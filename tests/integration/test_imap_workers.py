"""imapd with pre-forked workers ([imapd] workers = 2): a master that binds
and supervises, two workers that serve.  The kernel sends every
connection of one client address to the same worker (SO_REUSEPORT with a
BPF program on the source address), so the per-address tables of a worker
see all of that client; mailbox changes made in one worker reach IDLE
sessions in the other; SIGTERM to the master stops everything cleanly; a
killed worker is replaced; a worker that cannot start stops the master.

127.0.0.1 and 127.0.0.2 hash to different workers with 2 of them (the
address modulo 2), which is how the tests reach both."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

import buzon
import imap_helpers as H

pytestmark = pytest.mark.buzon_conf(imapd={"workers": "2"})

CONNECT_RE = re.compile(rb"^imapd\[(\d+)\]: info: sid=(\S+) ip=(\S+) connect ", re.M)
OTHER = "127.0.0.2"


def children(pid):
    """Pids of the direct children of pid."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
        except FileNotFoundError:
            pass
    return sorted(out)


def age(pid):
    """Seconds since pid started."""
    with open(f"/proc/{pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return up - start / os.sysconf("SC_CLK_TCK")


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


class Client(H.Conn):
    """H.Conn from a chosen source address (imaplib cannot bind)."""

    def __init__(self, port, src="127.0.0.1", tls=False, timeout=None):
        self.timeout = timeout if timeout is not None else buzon.t(10)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=self.timeout,
                                             source_address=(src, 0))
        if tls:
            self.sock = H.tls_ctx().wrap_socket(self.sock, server_hostname=buzon.HOSTNAME)
        self.buf = b""
        self.n = 0
        self.greeting = self.read_line()
        assert self.greeting.startswith(b"* OK"), \
            f"connecting from {src} the client got {self.greeting!r}, expected '* OK'"


class Log:
    """imapd's stderr, read from where the last look stopped."""

    def __init__(self, inst):
        self.path = inst.imapd.stderr_path
        self.off = self.path.stat().st_size

    def new(self):
        data = self.path.read_bytes()
        out, self.off = data[self.off:], len(data)
        return out

    def connects(self):
        return [(int(m.group(1)), m.group(3).decode()) for m in CONNECT_RE.finditer(self.new())]


def connect(inst, log, src="127.0.0.1", tls=True, port=None):
    """A connection and the pid of the worker that logged its connect."""
    port = port or (inst.imaps_port if tls else inst.imap_port)
    c = Client(port, src=src, tls=tls)
    got = log.connects()
    assert len(got) == 1 and got[0][1] == src, \
        f"one connect from {src} expected in imapd's log, found {got}"
    return c, got[0][0]


def login_select(c):
    c.login()
    r = c.select("INBOX")
    assert any(u.endswith(b" EXISTS") for u in r.untagged), r


def test_master_and_two_workers_serve_imaps_and_starttls(imap):
    master = imap.imapd.proc.pid
    kids = children(master)
    assert len(kids) == 2, f"imapd (pid {master}) has children {kids}, expected 2 workers"
    for k in kids:
        assert alive(k), f"worker {k} is not running"
        assert not children(k), f"worker {k} has children of its own: {children(k)}"
    log = Log(imap)
    seen = set()
    for src in ("127.0.0.1", OTHER):
        c, pid = connect(imap, log, src=src, tls=True)
        login_select(c)
        c.ok("LOGOUT")
        c.close()
        c, pid2 = connect(imap, log, src=src, tls=False)
        c.starttls()
        login_select(c)
        c.ok("LOGOUT")
        c.close()
        assert pid == pid2, \
            f"from {src}: imaps went to worker {pid}, imap to {pid2} (same address, same worker)"
        seen.add(pid)
    assert seen == set(kids), f"connections were served by {seen}, workers are {kids}"


def test_one_client_address_one_worker(imap):
    master = imap.imapd.proc.pid
    log = Log(imap)
    by_src = {}
    for src in ("127.0.0.1", OTHER):
        pids = []
        conns = []
        for _ in range(6):
            c, pid = connect(imap, log, src=src)
            conns.append(c)             # held open: each is a new 4-tuple
            pids.append(pid)
        for c in conns:
            c.close()
        assert len(set(pids)) == 1, \
            f"6 connections from {src} went to workers {pids}, expected one worker"
        by_src[src] = pids[0]
    assert by_src["127.0.0.1"] != by_src[OTHER], \
        f"127.0.0.1 and {OTHER} both went to worker {by_src[OTHER]}"
    assert set(by_src.values()) == set(children(master)), (by_src, children(master))
    # the worker is the address modulo 2: 0x7f000001 -> 1, 0x7f000002 -> 0
    index = worker_indexes(imap)
    assert index[by_src["127.0.0.1"]] == 1 and index[by_src[OTHER]] == 0, (by_src, index)


def worker_indexes(inst):
    """{pid: worker index} from the master's "worker N started: pid P"."""
    text = inst.imapd.stderr_path.read_text(errors="replace")
    return {int(p): int(i) for i, p in re.findall(r"worker (\d+) started: pid (\d+)", text)}


def test_ipv6_listener_routes_by_64_prefix(instance):
    """The /64 of ::1 is all zero: every connection goes to worker 0 (a
    hash of the whole address would pick worker 1)."""
    from daemon import Daemon
    inst = instance
    port = buzon.free_port()
    inst.conf_text = inst.conf_text.replace(
        "[imapd]\n", f"[imapd]\nlisten = [::1]:{port} imaps\n", 1)
    inst.conf.write_text(inst.conf_text)
    inst.imapd = Daemon(inst, "imapd", inst.imap_port, b"* OK")
    inst.imapd.start()
    try:
        log = Log(inst)
        pids = []
        for _ in range(4):
            raw = socket.create_connection(("::1", port), timeout=buzon.t(10))
            c = H.Conn.__new__(H.Conn)
            c.timeout, c.buf, c.n = buzon.t(10), b"", 0
            c.sock = H.tls_ctx().wrap_socket(raw, server_hostname=buzon.HOSTNAME)
            assert c.read_line().startswith(b"* OK")
            got = log.connects()
            assert len(got) == 1 and got[0][1] == "::1", got
            pids.append(got[0][0])
            login_select(c)
            c.ok("LOGOUT")
            c.close()
        index = worker_indexes(inst)
        assert [index.get(p) for p in pids] == [0] * 4, (pids, index)
    finally:
        inst.imapd.stop()


def test_idle_sees_append_and_store_from_the_other_worker(imap):
    log = Log(imap)
    a, pa = connect(imap, log, src="127.0.0.1")
    b, pb = connect(imap, log, src=OTHER)
    assert pa != pb, f"both sessions in worker {pa}: the test needs two workers"
    a.login()
    a.select("INBOX")
    tag = a.idle()

    b.login()
    r = b.send_literal_command("APPEND INBOX", H.message("cross-worker append"))
    assert r.status == "OK", r
    got = H.read_until(a, lambda l: l == b"* 1 EXISTS", buzon.t(3),
                     "'* 1 EXISTS' after an APPEND in the other worker")

    b.select("INBOX")
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    got = H.read_until(a, lambda l: H.FETCH_RE.match(l) is not None, buzon.t(3),
                     "'* 1 FETCH (FLAGS ...)' after a STORE in the other worker")
    seq, it = H.parse_fetch(got[-1])
    assert seq == 1 and "\\Flagged" in H.flags_of(it["FLAGS"]), got

    r = a.done(tag)
    assert r.status == "OK", r
    for c in (a, b):
        c.ok("LOGOUT")
        c.close()


def test_sigterm_to_master_stops_everything(imap):
    H.deliver(imap, H.message("workers sigterm"))
    proc = imap.imapd.proc
    kids = children(proc.pid)
    assert len(kids) == 2, kids
    log = Log(imap)
    clients = []
    for src in ("127.0.0.1", OTHER):
        pre, _ = connect(imap, log, src=src, tls=False)
        sel, _ = connect(imap, log, src=src)
        login_select(sel)
        idle, _ = connect(imap, log, src=src)
        login_select(idle)
        idle.idle()
        clients += [(f"pre-auth from {src}", pre), (f"selected from {src}", sel),
                    (f"idle from {src}", idle)]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=buzon.t(15))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"imapd's master did not exit within {buzon.t(15):.0f}s "
                             f"of SIGTERM; stderr:\n{buzon.tail(imap.imapd.stderr_path)}")
    finally:
        imap.imapd.proc = None          # stopped here, not by the fixture
        imap.imapd._err.close()
    elapsed = time.monotonic() - t0
    assert rc == 0, f"imapd's master exited {rc} after SIGTERM, expected 0; " \
        f"stderr:\n{buzon.tail(imap.imapd.stderr_path)}"
    assert elapsed < buzon.t(15), elapsed
    for k in kids:
        assert not alive(k), f"worker {k} still runs after its master exited"
    for name, c in clients:
        got = H.lines_until_closed(c, buzon.t(2))
        assert any(l.startswith(b"* BYE") for l in got), f"{name}: no BYE, got {got}"
        c.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", imap.imaps_port), timeout=2).close()


def test_killed_worker_is_replaced(imap):
    master = imap.imapd.proc.pid
    log = Log(imap)
    other, p_other = connect(imap, log, src=OTHER)
    other.login()
    c, victim = connect(imap, log, src="127.0.0.1")
    c.close()
    assert victim != p_other
    # a worker dying in its first 2 s failed to start: that stops imapd
    time.sleep(max(0.0, 2.5 - age(victim)))
    os.kill(victim, signal.SIGKILL)
    H.wait_for(lambda: not alive(victim) and len(children(master)) == 2 and
               victim not in children(master),
               buzon.t(5), f"a new worker in place of {victim}")
    text = log.new().decode("utf-8", "replace")
    assert re.search(rf"worker \d \(pid {victim}\) killed by signal 9", text), \
        f"the master did not log the death of worker {victim}; log:\n{text}"
    assert "imapd[" + str(master) + "]" in text
    (new,) = set(children(master)) - {p_other}

    c, pid = connect(imap, log, src="127.0.0.1")
    assert pid == new, f"127.0.0.1 now reaches worker {pid}, the replacement is {new}"
    login_select(c)
    c.ok("LOGOUT")
    c.close()
    # the other worker's session never noticed
    other.ok("NOOP")
    other.ok("LOGOUT")
    other.close()
    assert alive(master)


def start_imapd(inst):
    """imapd run by hand (no readiness wait): (Popen, stderr path)."""
    err_path = inst.root / "imapd.stderr"
    err = open(err_path, "ab")
    try:
        p = subprocess.Popen([str(buzon.need_binary("imapd")), "-c", str(inst.conf)],
                             stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    finally:
        err.close()
    return p, err_path


def test_worker_start_failure_stops_the_master(instance_nostart):
    inst = instance_nostart
    os.rename(inst.database, inst.root / "buzon.db.away")   # db_open fails
    t0 = time.monotonic()
    p, err_path = start_imapd(inst)
    try:
        rc = p.wait(timeout=buzon.t(10))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError(f"imapd still runs {buzon.t(10):.0f}s after its workers failed; "
                             f"stderr:\n{buzon.tail(err_path)}")
    elapsed = time.monotonic() - t0
    text = err_path.read_text(errors="replace")
    assert rc == 1, f"imapd exited {rc}, expected 1; stderr:\n{text}"
    assert elapsed < buzon.t(5), f"imapd took {elapsed:.1f}s to give up"
    assert "does not exist" in text, text
    assert "start-up failed" in text, text
    starts = re.findall(r"worker \d started", text)
    assert len(starts) <= 2, f"workers were restarted ({len(starts)} starts):\n{text}"
    assert not children(p.pid)


def test_second_imapd_on_the_same_ports_fails(imap):
    """SO_REUSEPORT must not let a second imapd join the first one's
    sockets: it fails as it would with one process."""
    p, err_path = start_imapd(imap)
    try:
        rc = p.wait(timeout=buzon.t(10))
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("a second imapd on the same ports kept running")
    text = err_path.read_text(errors="replace")
    assert rc == 1, f"the second imapd exited {rc}, expected 1; stderr:\n{text}"
    assert "Address already in use" in text, text
    c = H.session(imap, select="INBOX")       # the first one still serves
    c.ok("LOGOUT")


@pytest.mark.buzon_conf(imapd={"workers": "65"})
def test_too_many_workers_is_a_config_error(adm):
    p, err_path = start_imapd(adm)
    rc = p.wait(timeout=buzon.t(10))
    text = err_path.read_text(errors="replace")
    assert rc == 1, f"imapd exited {rc} with workers = 65, expected 1; stderr:\n{text}"
    assert "workers: expected a whole number from 1 to 64" in text, text


@pytest.mark.buzon_conf(imapd={"workers": "1"})
def test_one_worker_is_one_process(imap):
    assert children(imap.imapd.proc.pid) == [], \
        f"workers = 1 but imapd has children {children(imap.imapd.proc.pid)}"
    c = H.session(imap, select="INBOX")
    c.ok("LOGOUT")


@pytest.mark.buzon_conf(imapd={"workers": None})
def test_default_is_one_worker_per_cpu(imap):
    n = min(os.cpu_count() or 1, 64)
    kids = children(imap.imapd.proc.pid)
    assert len(kids) == (n if n > 1 else 0), \
        f"{os.cpu_count()} CPUs online and no workers line: imapd has children {kids}"
