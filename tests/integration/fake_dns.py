"""
fake_dns.py - a DNS responder for the integration tests (not a test).

It listens on UDP 127.0.0.1 (an ephemeral port) and answers A queries for
the names it is told about, each in its own way: at once, after a delay,
never, or with NXDOMAIN; AAAA queries get an empty NOERROR answer (or the
same treatment, for names that never answer).  Names it was not told about
get REFUSED.  resolv_conf() writes a resolv.conf for wsgate's resolv_conf
key that sends every query here, so a test's name lookups never reach the
machine's resolver or leave 127.0.0.0/8.

    dns = FakeDns()
    dns.answer("up.wsgate.test", "127.0.0.1", delay=0.5)
    dns.never("slow.wsgate.test")
    dns.nxdomain("nx.wsgate.test")
    gateway={"resolv_conf": dns.resolv_conf(dirname)}
"""

import os
import random
import select
import socket
import struct
import threading
import time

TYPE_A, TYPE_AAAA = 1, 28
RCODE_NXDOMAIN, RCODE_REFUSED = 3, 5


def _parse_query(data):
    """(id, flags, name, qtype, end of question) or None."""
    if len(data) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    if qd != 1 or flags & 0x8000:
        return None
    labels, i = [], 12
    while i < len(data):
        n = data[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0 or i + n > len(data):
            return None
        labels.append(data[i:i + n].decode("ascii", "replace"))
        i += n
    if i + 4 > len(data):
        return None
    qtype, _ = struct.unpack("!HH", data[i:i + 4])
    return qid, flags, ".".join(labels).lower(), qtype, i + 4


def _reply(query, qend, qid, flags, rcode, addrs=()):
    """A response to QUERY (question up to QEND) with A records ADDRS."""
    head = struct.pack("!HHHHHH", qid, 0x8000 | (flags & 0x0100) | 0x0080
                       | rcode, 1, len(addrs), 0, 0)
    body = query[12:qend]
    for a in addrs:
        body += struct.pack("!HHHIH", 0xC00C, TYPE_A, 1, 5, 4)
        body += socket.inet_aton(a)
    return head + body


class FakeDns:
    """The responder; every query it saw is in .queries as (name, qtype)."""

    def __init__(self, host="127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()
        self.rules = {}
        self.queries = []
        self.lock = threading.Lock()
        self.pending = []      # (when, reply bytes, address)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def answer(self, name, addr="127.0.0.1", delay=0.0, jitter=0.0):
        """A records for NAME: ADDR, after DELAY (+ up to JITTER) s."""
        with self.lock:
            self.rules[name.lower()] = ("answer", addr, delay, jitter)

    def never(self, name):
        """Queries for NAME are read and never answered."""
        with self.lock:
            self.rules[name.lower()] = ("never",)

    def nxdomain(self, name):
        """NAME does not exist."""
        with self.lock:
            self.rules[name.lower()] = ("nxdomain",)

    def count(self, name=None):
        """Queries seen (for NAME, or in all)."""
        with self.lock:
            return sum(1 for n, _ in self.queries
                       if name is None or n == name.lower())

    def resolv_conf(self, directory, timeout_s=1, attempts=1,
                    name="resolv.conf"):
        """Write DIRECTORY/NAME pointing at us; return its path."""
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write("# written by fake_dns.py: every lookup goes to the "
                    "test's own responder\n")
            f.write("nameserver %s:%d\n" % (self.host, self.port))
            f.write("search wsgate.test\n")
            f.write("options timeout:%d attempts:%d ndots:1\n"
                    % (timeout_s, attempts))
        return path

    def _handle(self, data, addr):
        q = _parse_query(data)
        if q is None:
            return
        qid, flags, name, qtype, qend = q
        with self.lock:
            self.queries.append((name, qtype))
            rule = self.rules.get(name)
        if rule is None:
            self._send_at(0, _reply(data, qend, qid, flags, RCODE_REFUSED),
                          addr)
            return
        kind = rule[0]
        if kind == "never":
            return
        if kind == "nxdomain":
            self._send_at(0, _reply(data, qend, qid, flags, RCODE_NXDOMAIN),
                          addr)
            return
        _, a, delay, jitter = rule
        addrs = (a,) if qtype == TYPE_A else ()
        wait = delay + (random.uniform(0, jitter) if jitter else 0.0)
        self._send_at(wait, _reply(data, qend, qid, flags, 0, addrs), addr)

    def _send_at(self, wait, reply, addr):
        with self.lock:
            self.pending.append((time.monotonic() + wait, reply, addr))

    def _flush_due(self):
        now = time.monotonic()
        with self.lock:
            due = [p for p in self.pending if p[0] <= now]
            self.pending = [p for p in self.pending if p[0] > now]
        for _, reply, addr in due:
            try:
                self.sock.sendto(reply, addr)
            except OSError:
                pass

    def _loop(self):
        while not self.stopping:
            try:
                r, _, _ = select.select([self.sock], [], [], 0.005)
            except (OSError, ValueError):
                return
            if r:
                try:
                    data, addr = self.sock.recvfrom(4096)
                except OSError:
                    return
                self._handle(data, addr)
            self._flush_due()

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.sock.close()
