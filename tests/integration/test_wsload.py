#!/usr/bin/python3
"""
test_wsload.py - tools/wsload, the load generator, run briefly in each mode
against the real daemon and its own --serve upstreams: the summary line and
its figures, the exit status when the target refuses or the handshake is
wrong, content verification catching corrupted data (upstreams that send
the wrong bytes), the loopback-only rule, and wss:// against a real TLS
WebSocket server (python-websockets) with and without the right CA; tls://
(a raw TLS stream, the baseline for wss://) and handshake mode (full TLS
handshakes, each followed by one echo) against a Python ssl echo server
that counts the handshakes and checks that none resumed a session.
"""

import asyncio
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    BIN, HOST, T, Gateway, RefusedPort, SinkUpstream, Skip, SourceUpstream,
    TestFailure, Upstream, asan_env, at_cleanup, diag, expect, expect_eq,
    need_websockets, once, run_tests)

websockets = need_websockets()

WSLOAD = os.environ.get("WSLOAD_BIN") or os.path.join(
    os.path.dirname(os.path.dirname(BIN)), "tools", "wsload")


def serve(mode):
    """A wsload --serve MODE upstream on a free port; returns its port."""
    p = subprocess.Popen([WSLOAD, "--serve", mode, "0", "--duration", "300"],
                         stdout=subprocess.PIPE, text=True)
    at_cleanup(lambda: (p.terminate(), p.wait(10)))
    line = p.stdout.readline()
    m = re.match(r"wsload: serving %s on 127\.0\.0\.1:(\d+)$" % mode,
                 line.strip())
    if not m:
        raise TestFailure("wsload --serve %s printed %r" % (mode, line))
    return int(m.group(1))


class CorruptEchoUpstream(Upstream):
    """Echoes, but flips one bit of the 1000th byte of the stream."""

    def handle(self, c, rec):
        seen = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not self.stopping:
            data = self.read_some(c, rec, timeout=0.5)
            if data is None:
                continue
            if not data:
                return
            if seen <= 999 < seen + len(data):
                b = bytearray(data)
                b[999 - seen] ^= 0x01
                data = bytes(b)
            seen += len(data)
            self.send_all(c, rec, data)


UP = {}


def _start_gw():
    UP["echo"] = serve("echo")
    UP["sink"] = serve("sink")
    UP["source"] = serve("source")
    UP["pysink"] = SinkUpstream()
    UP["badsource"] = SourceUpstream(b"\x00" * 200000)
    UP["corrupt"] = CorruptEchoUpstream()
    return Gateway(
        gateway={"access_log": "off", "log_level": "warn",
                 "max_connections": "500"},
        routes={"/tcp": {"upstream": "127.0.0.1:%d" % UP["echo"]},
                "/echo": {"upstream": "echo"},
                "/sink": {"upstream": "127.0.0.1:%d" % UP["sink"]},
                "/source": {"upstream": "127.0.0.1:%d" % UP["source"]},
                "/pysink": {"upstream": UP["pysink"].addr},
                "/badsource": {"upstream": UP["badsource"].addr},
                "/corrupt": {"upstream": UP["corrupt"].addr}},
        name="gateway", env=asan_env()).start()


gw = once(_start_gw)


def wsload(*args, timeout=60):
    """Run wsload; returns (exit status, summary dict or None, all output)."""
    if not os.path.exists(WSLOAD):
        raise TestFailure("wsload not built at %s" % WSLOAD)
    r = subprocess.run([WSLOAD] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=T(timeout))
    out = r.stdout + r.stderr
    summary = None
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("wsload: mode=")]
    if lines:
        expect_eq(lines[-1], r.stdout.splitlines()[-1],
                  "the machine-readable line comes last")
        summary = dict(kv.split("=", 1) for kv in lines[-1][8:].split())
    return r.returncode, summary, out


def url(path):
    return "ws://%s:%d%s" % (HOST, gw().port, path)


def check_ok(rc, s, out, mode, conns):
    if rc != 0 or s is None:
        raise TestFailure("wsload failed (%d):\n%s" % (rc, out))
    expect_eq(s["mode"], mode, "mode")
    expect_eq(int(s["conns"]), conns, "conns")
    expect_eq(int(s["ok"]), conns, "connections established")
    expect_eq(s["errors"], "0", "errors")
    expect_eq(s["mismatches"], "0", "mismatches")
    expect(float(s["secs"]) > 0.5, "measured for the duration: %s" % s["secs"])


def t_echo_through_tcp_upstream():
    rc, s, out = wsload("-m", "echo", "-c", 4, "-s", 200, "-d", 1, url("/tcp"))
    check_ok(rc, s, out, "echo", 4)
    expect(int(s["msgs"]) > 100, "round trips: %s" % s["msgs"])
    expect_eq(int(s["bytes"]), int(s["msgs"]) * 200, "bytes = msgs * size")
    p50, p99, p999 = int(s["p50_us"]), int(s["p99_us"]), int(s["p999_us"])
    expect(0 < p50 <= p99 <= p999, "quantiles ordered: %d %d %d" % (p50, p99, p999))
    rate = float(s["rate"])
    expect(abs(rate - int(s["msgs"]) / float(s["secs"])) <= rate * 0.01 + 1,
           "rate = msgs / secs")


def t_echo_pipelined_builtin():
    rc, s, out = wsload("-m", "echo", "-c", 3, "-p", 8, "-s", 3000, "-n", 600,
                        url("/echo"))
    if rc != 0 or s is None:
        raise TestFailure("wsload failed (%d):\n%s" % (rc, out))
    expect_eq(s["ok"], "3", "connections established")
    expect_eq(s["errors"], "0", "errors")
    expect(int(s["msgs"]) >= 600, "--count reached: %s" % s["msgs"])
    expect(int(s["msgs"]) <= 600 + 3 * 8, "--count bounds the run: %s" % s["msgs"])


def t_upload_reaches_sink():
    rc, s, out = wsload("-m", "upload", "-c", 2, "-s", 16384, "-d", 1,
                        url("/pysink"))
    check_ok(rc, s, out, "upload", 2)
    sent = int(s["bytes"])
    expect(sent > 0, "bytes uploaded")
    # Every message counted was delivered: the clean close flushed them.
    deadline = time.monotonic() + T(10)
    got = 0
    while time.monotonic() < deadline:
        got = sum(r.bytes_in for r in UP["pysink"].conns)
        if got >= sent and all(r.end for r in UP["pysink"].conns):
            break
        time.sleep(0.1)
    expect_eq(got, sent, "bytes the sink received")


def t_upload_count_stops():
    # --count ends an upload as it ends an echo run, long before --duration
    duration = 60
    t0 = time.monotonic()
    rc, s, out = wsload("-m", "upload", "-c", 1, "-s", 4096, "-n", 50,
                        "-d", duration, url("/pysink"), timeout=2 * duration)
    if rc != 0 or s is None:
        raise TestFailure("wsload failed (%d):\n%s" % (rc, out))
    expect_eq((s["ok"], s["errors"]), ("1", "0"), "connections ok, errors")
    expect_eq(s["msgs"], "50", "messages uploaded")
    expect_eq(s["bytes"], str(50 * 4096), "bytes uploaded")
    took = time.monotonic() - t0
    expect(took < duration, "upload -n 50 ran to --duration (%.1f s)" % took)


def t_download_verified():
    rc, s, out = wsload("-m", "download", "-c", 3, "-d", 1, url("/source"))
    check_ok(rc, s, out, "download", 3)
    expect(int(s["bytes"]) > 1000000, "downloaded: %s" % s["bytes"])


def t_hold_with_pings():
    rc, s, out = wsload("-m", "hold", "-c", 50, "-d", 2, "-i", 0.3, url("/tcp"))
    check_ok(rc, s, out, "hold", 50)
    expect_eq(int(s["held"]), 50, "connections held")
    m = re.search(r"(\d+) pings, (\d+) answered", out)
    expect(m is not None, "ping counts in the summary:\n" + out)
    expect(int(m.group(1)) >= 100, "pings sent: %s" % m.group(1))
    expect(int(m.group(2)) >= int(m.group(1)) - 50, "pings answered")


def t_tcp_modes_direct():
    for mode, port in (("echo", UP["echo"]), ("upload", UP["sink"]),
                       ("download", UP["source"]), ("hold", UP["echo"])):
        rc, s, out = wsload("-m", mode, "-c", 2, "-d", 0.8, "-i", 0.2,
                            "tcp://127.0.0.1:%d" % port)
        check_ok(rc, s, out, mode, 2)
        if mode == "hold":
            expect_eq(int(s["held"]), 2, "held")
        else:
            expect(int(s["bytes"]) > 0, "tcp:// %s moved bytes" % mode)


def t_refused_target_fails():
    port = RefusedPort().port
    rc, s, out = wsload("-c", 3, "-d", 1, "ws://127.0.0.1:%d/" % port)
    expect_eq(rc, 1, "exit status")
    expect(s is not None, "summary printed:\n" + out)
    expect_eq(s["ok"], "0", "established")
    expect_eq(s["errors"], "3", "errors")
    expect("refused" in out, "the reason is named:\n" + out)


def t_no_route_handshake_fails():
    rc, s, out = wsload("-c", 1, "-d", 1, url("/nowhere"))
    expect_eq(rc, 1, "exit status")
    expect("handshake refused" in out and "404" in out,
           "the 404 is reported:\n" + out)


def t_wrong_accept_key_fails():
    """A server answering 101 with a wrong Sec-WebSocket-Accept."""
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(4)
    lsock.settimeout(T(10))
    at_cleanup(lsock.close)

    def fake():
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        with c:
            c.settimeout(T(10))
            buf = b""
            while b"\r\n\r\n" not in buf and len(buf) < 8192:
                d = c.recv(4096)
                if not d:
                    return
                buf += d
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                      b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
            time.sleep(T(2))
    th = threading.Thread(target=fake, daemon=True)
    th.start()
    rc, s, out = wsload("-c", 1, "-d", 1, "-t", 5,
                        "ws://127.0.0.1:%d/" % lsock.getsockname()[1])
    expect_eq(rc, 1, "exit status")
    expect("Sec-WebSocket-Accept" in out, "accept key rejected:\n" + out)


def t_download_corruption_caught():
    rc, s, out = wsload("-m", "download", "-c", 1, "-d", 2, url("/badsource"))
    expect_eq(rc, 1, "exit status")
    expect(s is not None and s["mismatches"] == "1",
           "one mismatch counted:\n" + out)
    expect("content mismatch at stream offset 0" in out, "where:\n" + out)


def t_echo_corruption_caught():
    rc, s, out = wsload("-m", "echo", "-c", 1, "-s", 100, "-d", 2,
                        url("/corrupt"))
    expect_eq(rc, 1, "exit status")
    expect(s is not None and s["mismatches"] == "1",
           "one mismatch counted:\n" + out)
    expect("content mismatch at stream offset 999" in out,
           "the flipped byte is found:\n" + out)


def t_remote_target_refused():
    # A connect to these (RFC 5737/3849 documentation addresses) hangs
    # until -t: refused before connecting means well before it.
    limit = 30
    for target in ("ws://192.0.2.1:80/", "tcp://[2001:db8::1]:80"):
        t0 = time.monotonic()
        rc, s, out = wsload("-c", 1, "-d", limit, "-t", limit, target,
                            timeout=2 * limit)
        took = time.monotonic() - t0
        expect_eq(rc, 2, "exit status for %s" % target)
        expect("--allow-remote" in out, "the reason names --allow-remote:\n" + out)
        expect(took < limit, "refused after %.1f s: not before connecting "
               "(-t %d)" % (took, limit))
    rc, s, out = wsload("-c", 1, "-d", 1, "ws://127.0.0.2:1/")
    expect("--allow-remote" not in out, "127.0.0.0/8 is loopback:\n" + out)


def t_usage_errors():
    for args in (["-m", "nonsense", url("/")], ["-c", "0", url("/")],
                 ["http://127.0.0.1:1/"], ["-m", "hold", "-n", "5", url("/")],
                 ["--serve", "bogus", "0"]):
        rc, s, out = wsload(*args)
        expect_eq(rc, 2, "exit status for %s" % args)


def _tls_cert(tmp):
    """A fresh self-signed EC certificate for 127.0.0.1: (cert, key)."""
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                        "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       capture_output=True, timeout=T(30))
    if r.returncode != 0:
        raise Skip("openssl cannot make a certificate: %s" % r.stderr[-200:])
    return cert, key


def _tls_server(tmp):
    """A python-websockets echo server over TLS with a fresh self-signed
    certificate for 127.0.0.1; returns (port, cert path)."""
    cert, key = _tls_cert(tmp)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ready = threading.Event()
    box = {}

    async def echo(ws, path=None):
        async for m in ws:
            await ws.send(m)

    async def main():
        async with websockets.serve(echo, HOST, 0, ssl=ctx,
                                    compression=None) as srv:
            box["port"] = srv.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.sleep(T(60))

    th = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    th.start()
    if not ready.wait(T(10)):
        raise TestFailure("TLS server did not start")
    return box["port"], cert


def t_wss_verifies_the_server():
    import tempfile
    tmp = tempfile.mkdtemp(prefix="wsload-tls-")
    port, cert = _tls_server(tmp)
    target = "wss://127.0.0.1:%d/" % port
    rc, s, out = wsload("-c", 2, "-d", 1, "-s", 100, "--ca", cert, target)
    check_ok(rc, s, out, "echo", 2)
    expect(int(s["msgs"]) > 10, "round trips over TLS: %s" % s["msgs"])
    rc, s, out = wsload("-c", 1, "-d", 1, target)
    expect_eq(rc, 1, "exit status without the CA")
    expect("certificate" in out, "verification failure named:\n" + out)
    rc, s, out = wsload("-c", 1, "-d", 1, "--insecure", target)
    expect_eq(rc, 0, "--insecure accepts it:\n" + out)


class RawTlsEcho:
    """A plain TLS echo server (no WebSocket): counts completed handshakes
    and those that resumed a session."""

    def __init__(self, cert, key):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lsock = socket.socket()
        self.lsock.bind((HOST, 0))
        self.lsock.listen(128)
        self.lsock.settimeout(0.5)
        self.port = self.lsock.getsockname()[1]
        self.handshakes = self.resumed = 0
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self.accept_loop, daemon=True).start()
        at_cleanup(self.stop)

    def stop(self):
        self.stopping = True
        self.lsock.close()

    def accept_loop(self):
        deadline = time.monotonic() + T(120)
        while not self.stopping and time.monotonic() < deadline:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, raw):
        raw.settimeout(T(10))
        try:
            c = self.ctx.wrap_socket(raw, server_side=True)
        except OSError:
            raw.close()
            return
        with self.lock:
            self.handshakes += 1
            self.resumed += 1 if c.session_reused else 0
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        finally:
            c.close()


def t_tls_raw_stream():
    import tempfile
    cert, key = _tls_cert(tempfile.mkdtemp(prefix="wsload-rawtls-"))
    srv = RawTlsEcho(cert, key)
    target = "tls://127.0.0.1:%d" % srv.port
    rc, s, out = wsload("-c", 2, "-d", 1, "-s", 300, "-p", 4, "--ca", cert,
                        target)
    check_ok(rc, s, out, "echo", 2)
    expect(int(s["msgs"]) > 10, "round trips over raw TLS: %s" % s["msgs"])
    expect_eq(int(s["bytes"]), int(s["msgs"]) * 300, "bytes = msgs * size")
    rc, s, out = wsload("-m", "hold", "-c", 3, "-d", 1, "-i", "0.2",
                        "--ca", cert, target)
    check_ok(rc, s, out, "hold", 3)
    expect_eq(int(s["held"]), 3, "held over raw TLS")
    rc, s, out = wsload("-c", 1, "-d", 1, target)
    expect_eq(rc, 1, "exit status without the CA")
    expect("certificate" in out, "verification failure named:\n" + out)
    rc, s, out = wsload("-c", 1, "-d", 1, "--ca", cert, target + "/path")
    expect_eq(rc, 2, "a tls:// target with a path is a usage error")


def t_handshake_mode():
    import tempfile
    cert, key = _tls_cert(tempfile.mkdtemp(prefix="wsload-hs-"))
    srv = RawTlsEcho(cert, key)
    rc, s, out = wsload("-m", "handshake", "-c", 3, "-d", 1, "-s", 100,
                        "--ca", cert, "tls://127.0.0.1:%d" % srv.port)
    if rc != 0 or s is None:
        raise TestFailure("wsload failed (%d):\n%s" % (rc, out))
    expect_eq(s["mode"], "handshake", "mode")
    expect_eq(s["errors"], "0", "errors")
    n = int(s["msgs"])
    expect(n > 10, "handshakes completed: %d" % n)
    expect_eq(int(s["bytes"]), n * 100, "one echo per connection")
    expect(int(s["ok"]) >= n, "each one a connection of its own: %s" % s["ok"])
    expect(abs(float(s["rate"]) - n / float(s["secs"])) < 1 + n * 0.01,
           "rate = handshakes / secs")
    deadline = time.monotonic() + T(5)
    while srv.handshakes < int(s["ok"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    expect(srv.handshakes >= n, "server saw %d handshakes for %d" % (
        srv.handshakes, n))
    expect_eq(srv.resumed, 0, "no session resumed: every handshake is full")
    # wss:// through a real WebSocket server: the upgrade is part of it
    port, wcert = _tls_server(tempfile.mkdtemp(prefix="wsload-hs-ws-"))
    rc, s, out = wsload("-m", "handshake", "-c", 2, "-d", 1, "--ca", wcert,
                        "wss://127.0.0.1:%d/" % port)
    if rc != 0 or s is None:
        raise TestFailure("wsload wss handshake failed (%d):\n%s" % (rc, out))
    expect(int(s["msgs"]) > 5, "wss handshakes completed: %s" % s["msgs"])
    # ws:// and the gateway: setups without TLS are counted the same way
    rc, s, out = wsload("-m", "handshake", "-c", 2, "-d", 1, url("/tcp"))
    if rc != 0 or s is None:
        raise TestFailure("wsload ws handshake failed (%d):\n%s" % (rc, out))
    expect(int(s["msgs"]) > 20, "ws setups completed: %s" % s["msgs"])


TESTS = [
    ("echo through a TCP echo upstream: summary line and latency", t_echo_through_tcp_upstream),
    ("echo on the built-in route, pipelined, bounded by --count", t_echo_pipelined_builtin),
    ("upload: every byte counted reaches the sink", t_upload_reaches_sink),
    ("upload: --count stops it before --duration", t_upload_count_stops),
    ("download: bytes verified against the pattern", t_download_verified),
    ("hold: connections held, pings answered", t_hold_with_pings),
    ("tcp:// baselines in every mode", t_tcp_modes_direct),
    ("refused target: exit 1, errors counted", t_refused_target_fails),
    ("404 on the handshake: exit 1", t_no_route_handshake_fails),
    ("wrong Sec-WebSocket-Accept: exit 1", t_wrong_accept_key_fails),
    ("download from a wrong upstream: mismatch caught", t_download_corruption_caught),
    ("echo with one flipped bit: mismatch caught at its offset", t_echo_corruption_caught),
    ("non-loopback targets refused without --allow-remote", t_remote_target_refused),
    ("usage errors exit 2", t_usage_errors),
    ("wss:// verifies the server certificate", t_wss_verifies_the_server),
    ("tls:// raw TLS stream: echo, hold, verification", t_tls_raw_stream),
    ("handshake mode: full handshakes, one echo each", t_handshake_mode),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=120,
              finish=[("gateway exits 0 on SIGTERM", lambda: gw().check_stop())])
