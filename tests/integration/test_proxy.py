#!/usr/bin/python3
"""
test_proxy.py - the PROXY protocol both ways, with real sockets:

  - send_proxy = v1 / v2: an upstream written here parses the header the
    gateway sends and checks the client's address and port (from a client
    bound to 127.0.0.2, and from X-Forwarded-For via a trusted peer), and
    that the client's bytes follow the header intact;
  - a proxy_protocol listener: v1 (whole and byte by byte), v2 with IPv6
    and TLVs, v2 LOCAL, an untrusted peer and a header-less request refused;
  - HAProxy (Debian's haproxy, started here with its own config, mode tcp,
    send-proxy-v2 and send-proxy) in front of the gateway: the access log
    and the upstream's PROXY header both show the real client.
"""

import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    HOST, OP_BINARY, T, Gateway, RawWS, TestFailure, Upstream, at_cleanup,
    build_frame, expect, expect_eq, free_port, once, run_tests, wait_port)

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


class ProxyUpstream(Upstream):
    """Reads a PROXY v1/v2 header, records it in rec.proxy, then echoes."""

    def __init__(self):
        self.events = {}
        self.events_lock = threading.Lock()
        super().__init__()

    def event(self, rec):
        """Set once REC's header has been parsed."""
        with self.events_lock:
            return self.events.setdefault(id(rec), threading.Event())

    def handle(self, c, rec):
        rec.proxy = None
        c.settimeout(10)
        buf = b""
        while len(buf) < 16:
            d = c.recv(16 - len(buf))
            if not d:
                rec.proxy = "eof"
                return
            buf += d
        if buf.startswith(b"PROXY "):
            while not buf.endswith(b"\r\n"):
                d = c.recv(1)
                if not d or len(buf) > 107:
                    rec.proxy = "bad v1"
                    return
                buf += d
            f = buf[:-2].decode().split(" ")
            rec.proxy = (1, f[2], int(f[4]), f[3], int(f[5])) \
                if f[1] in ("TCP4", "TCP6") else (1, f[1])
        elif buf.startswith(V2_SIG):
            n = struct.unpack("!H", buf[14:16])[0]
            body = b""
            while len(body) < n:
                d = c.recv(n - len(body))
                if not d:
                    rec.proxy = "short v2"
                    return
                body += d
            fam = buf[13]
            if fam == 0x11:
                rec.proxy = (2, socket.inet_ntop(socket.AF_INET, body[0:4]),
                             struct.unpack("!H", body[8:10])[0],
                             socket.inet_ntop(socket.AF_INET, body[4:8]),
                             struct.unpack("!H", body[10:12])[0])
            elif fam == 0x21:
                rec.proxy = (2, socket.inet_ntop(socket.AF_INET6, body[0:16]),
                             struct.unpack("!H", body[32:34])[0],
                             socket.inet_ntop(socket.AF_INET6, body[16:32]),
                             struct.unpack("!H", body[34:36])[0])
            else:
                rec.proxy = (2, "family %#x" % fam)
        else:
            rec.proxy = ("no header", buf)
            return
        self.event(rec).set()
        self.echo(c, rec, 60)


def proxy_rec(up, n):
    """The Nth connection's record, once its PROXY header is parsed."""
    rec = up.wait_conn(n, T(5))
    expect(up.event(rec).wait(T(5)), "no PROXY header parsed: %r"
           % (getattr(rec, "proxy", None),))
    return rec


UP = {}


def _start_gw():
    UP["proxy"] = ProxyUpstream()
    return Gateway(
        gateway={"trusted_proxies": "127.0.0.1/32"},
        routes={"/pv1": {"upstream": UP["proxy"].addr, "send_proxy": "v1"},
                "/pv2": {"upstream": UP["proxy"].addr, "send_proxy": "v2"}},
        name="gateway").start()


def _start_pp_gw():
    UP["proxy2"] = ProxyUpstream()
    return Gateway(
        gateway={"trusted_proxies": "127.0.0.1/32", "log_level": "debug"},
        routes={"/e": {"upstream": UP["proxy2"].addr, "send_proxy": "v2"}},
        listen_flags="proxy_protocol", name="pp-gateway").start()


gw = once(_start_gw)
ppgw = once(_start_pp_gw)


def echo_ok(c, payload=b"after the header"):
    c.send_binary(payload)
    m = c.recv_message(T(5))
    expect_eq(m, (OP_BINARY, payload), "echo through the gateway")
    c.send_close(1000)
    c.expect_close(T(5))
    c.close()


# --- send_proxy toward the upstream --------------------------------------------

def check_send_proxy(path, version):
    g = gw()
    up = UP["proxy"]
    n = up.count() + 1
    c = RawWS(g.port, path, source="127.0.0.2", connect_only=True)
    sport = c.sock.getsockname()[1]
    # frames right behind the request: they must follow the header
    c.handshake(extra=build_frame(OP_BINARY, b"early bytes"))
    rec = proxy_rec(up, n)
    expect_eq(rec.proxy, (version, "127.0.0.2", sport, "127.0.0.1", g.port),
              "PROXY header seen by the upstream")
    m = c.recv_message(T(5))
    expect_eq(m, (OP_BINARY, b"early bytes"), "early bytes echoed")
    echo_ok(c)


def t_send_proxy_v1():
    check_send_proxy("/pv1", 1)


def t_send_proxy_v2():
    check_send_proxy("/pv2", 2)


def t_send_proxy_uses_xff_client():
    g = gw()
    up = UP["proxy"]
    n = up.count() + 1
    c = RawWS(g.port, "/pv1",
              extra_headers=("X-Forwarded-For: 198.51.100.23",))
    rec = proxy_rec(up, n)
    expect_eq(rec.proxy[:3], (1, "198.51.100.23", 0),
              "PROXY source from X-Forwarded-For")
    echo_ok(c)


# --- a proxy_protocol listener -------------------------------------------------

def pp_session(header, chunk=None, source=None):
    g = ppgw()
    c = RawWS(g.port, "/e", connect_only=True, source=source)
    c.send(header, chunk=chunk)
    c.handshake()
    return c


def v2_header(src, sport, dst, dport, tlvs=b"", local=False):
    fam = socket.AF_INET6 if ":" in src else socket.AF_INET
    body = (socket.inet_pton(fam, src) + socket.inet_pton(fam, dst) +
            struct.pack("!HH", sport, dport) + tlvs)
    return (V2_SIG + bytes([0x20 if local else 0x21,
                            0x21 if fam == socket.AF_INET6 else 0x11]) +
            struct.pack("!H", len(body)) + body)


def t_listener_v1_whole_and_bytewise():
    g = ppgw()
    for i, chunk in enumerate((None, 1)):
        sport = 5555 + i
        n = UP["proxy2"].count() + 1
        c = pp_session(b"PROXY TCP4 203.0.113.9 127.0.0.1 %d %d\r\n"
                       % (sport, g.port), chunk=chunk)
        lport = c.sock.getsockname()[1]
        echo_ok(c)
        line = g.wait_log(r"access client=203\.0\.113\.9:%d via=127\.0\.0\.1:"
                          r"%d " % (sport, lport), T(3))
        expect(line is not None, "access line with the PROXY client "
               "(chunk %r):\n%s" % (chunk, g.log_text()[-2000:]))
        rec = proxy_rec(UP["proxy2"], n)
        expect_eq(rec.proxy, (2, "203.0.113.9", sport, "127.0.0.1", g.port),
                  "PROXY header passed on upstream")


def t_listener_v2_ipv6_tlvs_and_local():
    g = ppgw()
    tlvs = b"\x04\x00\x03abc" + b"\x20\x00\x05\x01\x00\x00\x00\x00"
    c = pp_session(v2_header("2001:db8::5", 6000, "2001:db8::1", 443, tlvs),
                   chunk=7)
    echo_ok(c)
    expect(g.wait_log(r"access client=\[2001:db8::5\]:6000 via=", T(3)),
           "v2 IPv6 client not logged")
    c = pp_session(v2_header("192.0.2.1", 1, "192.0.2.2", 2, local=True))
    lport = c.sock.getsockname()[1]
    echo_ok(c)
    line = g.wait_log(r"access client=127\.0\.0\.1:%d route=/e" % lport,
                      T(3))
    expect(line is not None, "LOCAL: the connection's own address is used")


def expect_dropped(g, data, source=None):
    """The gateway closes without answering."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(T(5))
    if source:
        s.bind((source, 0))
    s.connect((HOST, g.port))
    try:
        s.sendall(data)
    except OSError:
        pass
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise TestFailure("connection not closed")
    finally:
        s.close()
    expect_eq(got, b"", "bytes answered to a refused PROXY connection")


def t_listener_refuses_untrusted_and_headerless():
    g = ppgw()
    n = UP["proxy2"].count()
    expect_dropped(g, b"PROXY TCP4 203.0.113.50 127.0.0.1 1 2\r\n",
                   source="127.0.0.2")
    expect(g.wait_log(r"127\.0\.0\.2:\d+: peer is not in trusted_proxies",
                      T(3)), "untrusted peer not logged")
    req = b"GET /e HTTP/1.1\r\nHost: x\r\n\r\n"
    expect_dropped(g, req)
    expect(g.wait_log(r"not a PROXY protocol header: closed", T(3)),
           "missing header not logged")
    expect_dropped(g, b"PROXY TCP4 999.1.1.1 127.0.0.1 1 2\r\n")
    expect(g.wait_log(r"bad address in PROXY v1 line", T(3)),
           "bad v1 address not logged")
    time.sleep(T(0.2))
    expect_eq(UP["proxy2"].count(), n, "upstream connections")
    expect("203.0.113.50" not in g.log_text(), "untrusted header was used")


# --- HAProxy in front ------------------------------------------------------------

def start_haproxy(backend_port):
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(exe):
        raise TestFailure("haproxy not found: install the Debian package "
                          "haproxy (tools/quickstart test does)")
    d = tempfile.mkdtemp(prefix="wsgate-haproxy-")
    at_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    ports = (free_port(), free_port())
    conf = os.path.join(d, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write("""global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe_v2
    bind %(h)s:%(p2)d
    default_backend be_v2
frontend fe_v1
    bind %(h)s:%(p1)d
    default_backend be_v1
backend be_v2
    server gw %(h)s:%(b)d send-proxy-v2
backend be_v1
    server gw %(h)s:%(b)d send-proxy
""" % {"h": HOST, "p2": ports[0], "p1": ports[1], "b": backend_port})
    proc = subprocess.Popen([exe, "-db", "-f", conf],
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    at_cleanup(stop)
    for p in ports:
        if not wait_port(p, T(10)):
            stop()
            out = proc.stdout.read().decode(errors="replace")
            raise TestFailure("haproxy did not listen on %d:\n%s" % (p, out))
    return ports, stop


def t_haproxy_in_front():
    g = ppgw()
    (p2, p1), stop = start_haproxy(g.port)
    try:
        for port, label in ((p2, "send-proxy-v2"), (p1, "send-proxy")):
            up = UP["proxy2"]
            n = up.count() + 1
            c = RawWS(port, "/e", source="127.0.0.2")
            cport = c.sock.getsockname()[1]
            rec = proxy_rec(up, n)
            echo_ok(c, payload=b"through haproxy")
            line = g.wait_log(r"access client=127\.0\.0\.2:%d via=127\.0\.0\.1:"
                              r"\d+ route=/e .*status=101" % cport, T(3))
            expect(line is not None, "%s: access line with the real client:"
                   "\n%s" % (label, g.log_text()[-2000:]))
            expect_eq(rec.proxy[:3], (2, "127.0.0.2", cport),
                      "%s: PROXY header the upstream got" % label)
    finally:
        stop()


run_tests([
    ("send_proxy = v1: the upstream sees the client's address and port",
     t_send_proxy_v1),
    ("send_proxy = v2: the upstream sees the client's address and port",
     t_send_proxy_v2),
    ("send_proxy carries the X-Forwarded-For client of a trusted peer",
     t_send_proxy_uses_xff_client),
    ("proxy_protocol listener: v1 whole and byte by byte",
     t_listener_v1_whole_and_bytewise),
    ("proxy_protocol listener: v2 IPv6 with TLVs, and LOCAL",
     t_listener_v2_ipv6_tlvs_and_local),
    ("proxy_protocol listener: untrusted peer, no header, bad header dropped",
     t_listener_refuses_untrusted_and_headerless),
    ("HAProxy (send-proxy-v2, send-proxy) in front: the real client logged",
     t_haproxy_in_front),
], limit=120, finish=[("gateways exit 0 on SIGTERM",
                       lambda: (gw().check_stop(), ppgw().check_stop()))])
