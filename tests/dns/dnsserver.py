#!/usr/bin/python3
"""A small authoritative DNS server for Buzón's DNS-dependent tests.

    dnsserver.py ZONE_DIR ADDRESS:PORT

Serves every `*.zone` file in ZONE_DIR (standard zone-file syntax as
dnslib's RR.fromZone parses it: $ORIGIN, $TTL, @, relative names,
parentheses, multi-string TXT), over UDP and TCP, and prints "ready" on
stdout once both listen.  Nothing else is ever written to stdout
(diagnostics go to stderr).

A file NAME.zone holds the zone NAME (the default $ORIGIN); the zone's
apex is the owner of its SOA record when it has one.  The files are read
again whenever one of them changes (mtime or size), appears or goes away,
so a test may append records while the server runs.  A file that does
not parse keeps its last good contents (and the error goes to stderr).

Answers:
  - names inside a zone: authoritative (AA), the records of the asked type;
    CNAMEs are followed inside the served zones; MX/NS/SRV targets that the
    zones know get their A/AAAA in the additional section;
  - a name that exists without the asked type (or an empty non-terminal,
    e.g. _domainkey.a.test when s1._domainkey.a.test exists): NOERROR with
    no answer (NODATA) and the zone's SOA in the authority section;
  - a name that does not exist: NXDOMAIN (SOA in authority); a `*` label
    (wildcard, RFC 4592, simplified: `*.zone` matches any name below the
    wildcard's parent that does not exist itself);
  - names outside every zone: REFUSED.
  - UDP answers larger than 512 bytes (or the EDNS size the query offers)
    are truncated (TC) so the client retries over TCP.

Special behaviour, driven by zone data (for SPF/DKIM temperror tests): a
TXT record at the zone apex whose text is
  "x-dnsserver: drop"      - no query for any name in the zone is answered
                             (the client times out);
  "x-dnsserver: servfail"  - every query in the zone gets SERVFAIL.
(See timeout.test.zone and servfail.test.zone.)
"""

import os
import signal
import sys
import threading

from dnslib import QTYPE, RCODE, RR, SOA, DNSError, DNSLabel, DNSRecord
from dnslib.server import DNSHandler, DNSServer

DEFAULT_TTL = 300


def err(msg):
    sys.stderr.write(f"dnsserver: {msg}\n")
    sys.stderr.flush()


def lname(label):
    """A DNSLabel or str as a lower-case absolute name 'a.test.'."""
    s = str(label).lower()
    return s if s.endswith(".") else s + "."


def under(name, apex):
    return name == apex or name.endswith("." + apex) or apex == "."


class Zone:
    def __init__(self, path, text):
        origin = os.path.basename(path)[:-len(".zone")].rstrip(".") + "."
        rrs = RR.fromZone(text, origin=origin, ttl=DEFAULT_TTL)
        self.path = path
        self.apex = lname(origin)
        soa = [rr for rr in rrs if rr.rtype == QTYPE.SOA]
        if soa:
            self.apex = lname(soa[0].rname)
            self.soa = soa[0]
        else:
            self.soa = RR(self.apex, QTYPE.SOA, ttl=DEFAULT_TTL,
                          rdata=SOA(f"ns.{self.apex}", f"hostmaster.{self.apex}",
                                    (1, 3600, 600, 86400, 60)))
        self.names = {}
        for rr in rrs:
            n = lname(rr.rname)
            if not under(n, self.apex):
                raise ValueError(f"{path}: {n} is outside the zone {self.apex}")
            self.names.setdefault(n, []).append(rr)
        self.mode = None
        for rr in self.names.get(self.apex, []):
            if rr.rtype == QTYPE.TXT:
                txt = b"".join(rr.rdata.data).decode("utf-8", "replace").strip().lower()
                if txt.startswith("x-dnsserver:"):
                    self.mode = txt.split(":", 1)[1].strip()

    def exists(self, name):
        """The name owns records or is an empty non-terminal."""
        if name in self.names:
            return True
        suffix = "." + name
        return any(n.endswith(suffix) for n in self.names)

    def wildcard(self, name):
        """Records of the wildcard that covers name (which does not exist)."""
        labels = name.split(".")
        for i in range(1, len(labels)):
            parent = ".".join(labels[i:])
            if not under(parent, self.apex):
                break
            wild = "*." + parent
            if wild in self.names:
                return self.names[wild]
            if self.exists(parent):
                break       # the closest encloser exists and has no wildcard
        return None


class Zones:
    """The zone files of one directory, re-read when they change."""

    def __init__(self, directory):
        self.dir = directory
        self.lock = threading.Lock()
        self.sig = None
        self.files = {}         # path -> (sig, Zone or None)
        self.zones = []
        self.reload()

    def _signature(self):
        sig = []
        for fn in sorted(os.listdir(self.dir)):
            if not fn.endswith(".zone"):
                continue
            p = os.path.join(self.dir, fn)
            try:
                st = os.stat(p)
            except OSError:
                continue
            sig.append((p, st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(sig)

    def reload(self):
        with self.lock:
            sig = self._signature()
            if sig == self.sig:
                return
            files = {}
            for p, mt, size, ino in sig:
                old = self.files.get(p)
                if old and old[0] == (mt, size, ino):
                    files[p] = old
                    continue
                try:
                    with open(p, encoding="utf-8") as f:
                        text = f.read()
                    zone = Zone(p, text)
                except Exception as e:      # a half-written file: keep the old one
                    err(f"cannot load {p}: {e!r}")
                    zone = old[1] if old else None
                files[p] = ((mt, size, ino), zone)
            self.files = files
            self.sig = sig
            # longest apex first: the most specific zone wins
            self.zones = sorted((z for _, z in files.values() if z is not None),
                                key=lambda z: -len(z.apex))

    def find(self, name):
        for z in self.zones:
            if under(name, z.apex):
                return z
        return None


class Drop(DNSError):
    pass


class Resolver:
    def __init__(self, zones):
        self.zones = zones

    def lookup(self, name, qtype):
        """(zone, rrs of name/qtype or None if the name does not exist)."""
        zone = self.zones.find(name)
        if zone is None:
            return None, None
        rrs = zone.names.get(name)
        if rrs is None:
            if zone.exists(name):
                return zone, []
            w = zone.wildcard(name)
            if w is None:
                return zone, None
            rrs = [RR(name, rr.rtype, rr.rclass, rr.ttl, rr.rdata) for rr in w]
        return zone, rrs

    def resolve(self, request, handler):
        self.zones.reload()
        reply = request.reply(ra=1, aa=1)
        q = request.q
        qname = lname(q.qname)
        qtype = q.qtype
        zone = self.zones.find(qname)
        if zone is None or q.qclass not in (1, 255):
            reply.header.aa = 0
            reply.header.rcode = RCODE.REFUSED
            return reply
        if zone.mode == "drop":
            raise Drop(f"dropped query for {qname} {QTYPE.get(qtype)}")
        if zone.mode == "servfail":
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name = qname
        seen = set()
        answered = False
        while True:
            zone, rrs = self.lookup(name, qtype)
            if zone is None:        # a CNAME pointing outside our zones
                break
            if rrs is None:
                reply.header.rcode = RCODE.NXDOMAIN
                reply.add_auth(zone.soa)
                break
            match = [rr for rr in rrs if rr.rtype == qtype or qtype == QTYPE.ANY]
            cname = [rr for rr in rrs if rr.rtype == QTYPE.CNAME]
            if match:
                for rr in match:
                    reply.add_answer(rr)
                answered = True
                break
            if cname and qtype != QTYPE.CNAME and name not in seen and len(seen) < 8:
                seen.add(name)
                reply.add_answer(cname[0])
                name = lname(cname[0].rdata.label)
                continue
            reply.add_auth(zone.soa)    # NODATA
            break
        if answered:
            self.additional(reply)
        return reply

    def additional(self, reply):
        targets = []
        for rr in reply.rr:
            if rr.rtype == QTYPE.MX:
                targets.append(lname(rr.rdata.label))
            elif rr.rtype == QTYPE.NS:
                targets.append(lname(rr.rdata.label))
            elif rr.rtype == QTYPE.SRV:
                targets.append(lname(rr.rdata.target))
        for t in targets:
            zone = self.zones.find(t)
            if zone is None:
                continue
            for rr in zone.names.get(t, []):
                if rr.rtype in (QTYPE.A, QTYPE.AAAA):
                    reply.add_ar(rr)


class Handler(DNSHandler):
    """UDP answers are truncated to 512 bytes or the query's EDNS size."""

    def get_reply(self, data):
        request = DNSRecord.parse(data)
        reply = self.server.resolver.resolve(request, self)
        rdata = reply.pack()
        if self.protocol == "udp":
            limit = 512
            for rr in request.ar:
                if rr.rtype == QTYPE.OPT:
                    limit = max(512, rr.rclass)
            if len(rdata) > limit:
                rdata = reply.truncate().pack()
        return rdata


class Logger:
    def log_pass(self, *a):
        pass

    log_recv = log_send = log_request = log_reply = log_truncated = log_data = log_pass

    def log_error(self, handler, e):
        if not isinstance(e, Drop):
            err(f"error: {e}")


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(f"usage: {argv[0]} ZONE_DIR ADDRESS:PORT\n")
        return 2
    directory = argv[1]
    addr, _, port = argv[2].rpartition(":")
    addr = addr.strip("[]")
    if not os.path.isdir(directory):
        err(f"{directory} is not a directory")
        return 1
    zones = Zones(directory)
    if not zones.zones:
        err(f"no zone could be loaded from {directory}")
        return 1
    resolver = Resolver(zones)
    logger = Logger()
    servers = [DNSServer(resolver, port=int(port), address=addr, logger=logger,
                         handler=Handler, tcp=tcp) for tcp in (False, True)]
    for s in servers:
        s.start_thread()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while not stop.is_set():
        stop.wait(0.5)
    for s in servers:
        s.server.shutdown()
        s.server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
