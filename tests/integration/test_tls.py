#!/usr/bin/python3
"""
test_tls.py - TLS: wss:// termination (python websockets against a test CA,
echo and TCP routes, close codes), protocol versions, ALPN and SNI seen by
`openssl s_client`, failed handshakes (plain HTTP, garbage, a stalled
client) that leave a concurrent client alone, client certificates (mTLS),
certificate rotation on SIGHUP (and a bad file on SIGHUP), tls:// upstreams
(verification, SNI, wrong CA, code_tls, client certificate), `wsgate -t`
on broken certificate files, and the RSS an idle TLS connection costs.

Every certificate is made at test time with the openssl command.
"""

import asyncio
import hashlib
import os
import random
import shutil
import socket
import subprocess
import ssl
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    CLOCK_SLACK, HOST, RSS_SKIP, SANITIZED, T, EchoUpstream, FloodUpstream, Gateway,
    ResetUpstream,
    Skip, TestCA, TestFailure, TlsEchoUpstream, arun, at_cleanup, diag,
    expect, expect_eq, grace, need_websockets, once, peer_serial, run_cli,
    build_frame, http_request, run_tests, s_client, tls_client_context)

websockets = need_websockets()

TMP = tempfile.mkdtemp(prefix="wsgate-tls-")
at_cleanup(lambda: shutil.rmtree(TMP, ignore_errors=True))

CA = {}
UP = {}
# handshake_timeout (s), scaled: a TLS handshake under valgrind on a busy
# machine can take longer than the bare 1.5 s.
HS_TIMEOUT = 1.5


def ca():
    """The test CAs and certificates (made once)."""
    if not CA:
        CA["main"] = TestCA("wsgate test CA")
        CA["other"] = TestCA("some other CA")
        m = CA["main"]
        CA["srv"] = m.issue("localhost", dns=["localhost"], ips=["127.0.0.1"],
                            serial=1001)
        CA["sni"] = m.issue("other.test", dns=["other.test", "*.wild.test"],
                            serial=2002)
        CA["client"] = m.issue("client one", serial=3003, client=True,
                               org="wsgate tests")
        CA["bad_client"] = CA["other"].issue("intruder", serial=4004,
                                             client=True)
        CA["up"] = m.issue("localhost", dns=["localhost"], ips=["127.0.0.1"],
                           serial=5005, stem="upstream")
        CA["up_other"] = CA["other"].issue("localhost", dns=["localhost"],
                                           ips=["127.0.0.1"], serial=6006)
        CA["upclient"] = m.issue("gateway", serial=7007, client=True)
    return CA


def tls_section(extra=None):
    c = ca()
    sec = {"certificate": c["srv"][0], "key": c["srv"][1]}
    sec.update(extra or {})
    return sec


def _start_main():
    c = ca()
    UP["echo"] = EchoUpstream()
    UP["reset"] = ResetUpstream(prefix=b"partial", delay=0.3)
    UP["flood"] = FloodUpstream(duration=30)
    UP["tls"] = TlsEchoUpstream(*c["up"])
    UP["tls_other"] = TlsEchoUpstream(*c["up_other"])
    UP["tls_mtls"] = TlsEchoUpstream(*c["up"], client_ca=c["main"].cert)
    up_ca = c["main"].cert
    return Gateway(
        limits={"handshake_timeout": "%dms" % int(T(HS_TIMEOUT) * 1000),
                "close_timeout": "1s"},
        listen_flags="tls",
        sections=[("tls", tls_section()),
                  ("tls other", {"server_names": "other.test, *.wild.test",
                                 "certificate": c["sni"][0],
                                 "key": c["sni"][1]})],
        routes={
            "/echo": {"upstream": "echo"},
            "/tcp": {"upstream": UP["echo"].addr},
            "/reset": {"upstream": UP["reset"].addr},
            "/flood": {"upstream": UP["flood"].addr},
            "/up": {"upstream": "tls://localhost:%d" % UP["tls"].port,
                    "upstream_ca": up_ca},
            "/up_ip": {"upstream": "tls://127.0.0.1:%d" % UP["tls"].port,
                       "upstream_ca": up_ca},
            "/up_wrong_ca": {"upstream": "tls://localhost:%d"
                             % UP["tls_other"].port, "upstream_ca": up_ca},
            "/up_code": {"upstream": "tls://localhost:%d"
                         % UP["tls_other"].port, "upstream_ca": up_ca,
                         "code_tls": "1014"},
            "/up_noverify": {"upstream": "tls://localhost:%d"
                             % UP["tls_other"].port,
                             "upstream_verify": "off"},
            "/up_badname": {"upstream": "tls://127.0.0.1:%d" % UP["tls"].port,
                            "upstream_ca": up_ca,
                            "upstream_sni": "not-the-name.test"},
            "/up_plain": {"upstream": "tls://127.0.0.1:%d" % UP["echo"].port,
                          "upstream_ca": up_ca},
            "/up_mtls": {"upstream": "tls://localhost:%d"
                         % UP["tls_mtls"].port, "upstream_ca": up_ca,
                         "upstream_certificate": c["upclient"][0],
                         "upstream_key": c["upclient"][1]},
        },
        name="tls gateway").start()


gw = once(_start_main)


def wss(port, path):
    return "wss://localhost:%d%s" % (port, path)


async def echo_roundtrip(uri, ctx, msgs):
    """Send each message, expect its bytes back (a TCP route may return
    them in several messages); return the close code."""
    async with websockets.connect(uri, ssl=ctx, open_timeout=T(5),
                                  close_timeout=T(5)) as ws:
        for m in msgs:
            await ws.send(m)
            want = m.encode() if isinstance(m, str) else m
            got = b""
            while len(got) < len(want):
                r = await asyncio.wait_for(ws.recv(), T(5))
                got += r.encode() if isinstance(r, str) else r
            expect(got == want, "echoed bytes differ (%d bytes, want %d)"
                   % (len(got), len(want)))
    return ws.close_code


# --- wss:// with python websockets ------------------------------------------

def t_wss_echo_route():
    g = gw()
    msgs = ["hello", "ünïcødé ✓", b"\x00\x01\x02\xff", os.urandom(70000)]
    code = arun(echo_roundtrip(wss(g.port, "/echo"),
                               tls_client_context(ca()["main"]), msgs))
    expect_eq(code, 1000, "close code")
    line = g.wait_log(r"access .*route=/echo .*tls=TLSv1\.[23]", T(3))
    expect(line is not None, "no access line with tls=")
    expect("code=1000" in line and "in_msgs=4" in line, line)


def t_wss_workers_balanced():
    # wss:// connections a worker hands to the other (it holds fewer) go
    # through their TLS handshake and upgrade there
    g = Gateway(gateway={"workers": "2"}, listen_flags="tls",
                sections=[("tls", tls_section())],
                routes={"/echo": {"upstream": "echo"}}, admin=True,
                name="two-worker TLS gateway").start()
    try:
        ctx = tls_client_context(ca()["main"])

        async def go():
            conns = []
            try:
                for _ in range(40):
                    conns.append(await websockets.connect(
                        wss(g.port, "/echo"), ssl=ctx, open_timeout=T(5),
                        close_timeout=T(5)))
                per = g.worker_connections(2)
                expect_eq(sum(per), 40.0, "connections over both workers")
                expect(abs(per[0] - per[1]) <= 1, "split: %s" % per)
                for i, ws in enumerate(conns):
                    await ws.send(b"m%d" % i)
                for i, ws in enumerate(conns):
                    expect_eq(await asyncio.wait_for(ws.recv(), T(5)),
                              b"m%d" % i, "echo %d" % i)
            finally:
                for ws in conns:
                    await ws.close()
        arun(go())
    finally:
        expect_eq(g.stop(timeout=T(10)), 0, "exit status")


def t_wss_tcp_route():
    g = gw()
    msgs = [b"binary \x00\xff" * 100, "text line\n", os.urandom(200000)]

    async def go():
        ctx = tls_client_context(ca()["main"])
        async with websockets.connect(wss(g.port, "/tcp"), ssl=ctx,
                                      open_timeout=T(5)) as ws:
            for m in msgs:
                await ws.send(m)
                want = m.encode() if isinstance(m, str) else m
                got = b""
                while len(got) < len(want):
                    r = await asyncio.wait_for(ws.recv(), T(5))
                    expect(isinstance(r, bytes), "binary frames expected")
                    got += r
                expect(got == want, "bytes through the TCP route differ")
            await ws.close(4001, "bye")
            return ws.close_code, ws.close_reason
    code, _ = arun(go())
    expect_eq(code, 4001, "close code echoed through TLS")
    expect(g.wait_log(r"access .*route=/tcp .*code=4001", T(3)) is not None,
           "access line with code=4001")


def bulk_through(uri, total, chunk=65536, stall=0.0):
    """Send TOTAL random bytes in CHUNK-byte messages while reading what
    comes back (re-framed by the gateway); return (sent, got) SHA-256.
    STALL: seconds the reader waits first, and again briefly after every
    MiB, with one message queued at most (the gateway's writes block)."""
    data = os.urandom(total)

    async def go():
        ctx = tls_client_context(ca()["main"])
        async with websockets.connect(uri, ssl=ctx, open_timeout=T(5),
                                      max_size=None,
                                      max_queue=1 if stall else 16) as ws:
            async def send():
                for i in range(0, total, chunk):
                    await ws.send(data[i:i + chunk])
            sender = asyncio.ensure_future(send())
            got = hashlib.sha256()
            n = 0
            if stall:
                await asyncio.sleep(stall)
            while n < total:
                if stall and n % (1 << 20) < chunk:
                    await asyncio.sleep(stall / 10)
                r = await asyncio.wait_for(ws.recv(), T(10))
                got.update(r)
                n += len(r)
            await sender
            expect_eq(n, total, "bytes back")
            return got.hexdigest()
    return hashlib.sha256(data).hexdigest(), arun(go())


def t_wss_bulk_tcp_route():
    # TLS records arrive back to back: the gateway reads several per wakeup
    sent, got = bulk_through(wss(gw().port, "/tcp"), 8 << 20)
    expect_eq(got, sent, "SHA-256 of 8 MiB through wss:// and back")


def t_wss_bulk_slow_reader():
    # The reader stalls: the gateway's own SSL_write of packed frames stops
    # part way, and libevent must finish that write from the output
    sent, got = bulk_through(wss(gw().port, "/tcp"), 24 << 20, stall=1.0)
    expect_eq(got, sent, "SHA-256 of 24 MiB through wss:// and back, "
              "reader stalling")


class TlsRecords:
    """A TLS client over a socket through ssl.MemoryBIO: what write()
    encrypts (one or more records per call) goes out only on flush(), so
    several records can leave in one send."""

    def __init__(self, port, ctx, server_name="localhost"):
        self.sock = socket.create_connection((HOST, port), timeout=T(5))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_hostname=server_name)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self._recv()
        self.flush()

    def _recv(self):
        data = self.sock.recv(65536)
        if not data:
            raise TestFailure("the gateway closed the connection")
        self.inc.write(data)

    def write(self, data):
        self.obj.write(data)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _pull(self, deadline):
        """What OpenSSL has decrypted, else one read from the socket (then
        b""); None once DEADLINE (time.monotonic) has passed."""
        try:
            return self.obj.read(65536)
        except ssl.SSLWantReadError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            self._recv()
        except socket.timeout:
            return None
        return b""

    def read_until(self, want, limit):
        """Decrypted bytes until WANT is among them, within LIMIT s."""
        got = b""
        deadline = time.monotonic() + limit
        while want not in got:
            more = self._pull(deadline)
            if more is None:
                raise TestFailure("no %r within %.1f s; got %r" % (
                    want, limit, got[-200:]))
            got += more
        return got

    def read_payload(self, total, limit, head=b""):
        """The payload of the server's data frames (unmasked, cut in any
        way) until TOTAL bytes, within LIMIT s; HEAD: bytes already read."""
        buf, payload = head, b""
        deadline = time.monotonic() + limit
        while True:
            while len(buf) >= 2:
                n, off = buf[1] & 0x7F, 2
                if n == 126:
                    if len(buf) < 4:
                        break
                    n, off = struct.unpack("!H", buf[2:4])[0], 4
                elif n == 127:
                    if len(buf) < 10:
                        break
                    n, off = struct.unpack("!Q", buf[2:10])[0], 10
                if len(buf) < off + n:
                    break
                expect(buf[0] & 0x0F in (0x0, 0x1, 0x2),
                       "data frames only, got opcode %d" % (buf[0] & 0x0F))
                payload += buf[off:off + n]
                buf = buf[off + n:]
            if len(payload) >= total:
                return payload
            more = self._pull(deadline)
            if more is None:
                raise TestFailure("%d of %d payload bytes within %.1f s" % (
                    len(payload), total, limit))
            buf += more

    def close(self):
        self.sock.close()


def t_records_behind_the_upgrade():
    # The upgrade request and a message behind it, each its own TLS
    # record, in one TCP send: OpenSSL's read-ahead takes both from the
    # socket at once, and the message's record must still be read
    # although the socket has nothing more to say.
    c = TlsRecords(gw().port, tls_client_context(ca()["main"]))
    try:
        c.write(http_request("/echo", host="localhost"))
        c.write(build_frame(0x1, b"right behind the upgrade"))
        c.flush()
        got = c.read_until(b"right behind the upgrade", T(3))
        expect(got.startswith(b"HTTP/1.1 101"), "101 first: %r" % got[:40])
        # Many small messages in one send: far less than the read limit,
        # all behind one wakeup.
        for i in range(200):
            c.write(build_frame(0x1, b"message %03d" % i))
        c.flush()
        c.read_until(b"message 199", T(3))
    finally:
        c.close()


def t_client_reset_mid_download():
    # The client resets while the gateway writes a flood to it through its
    # own SSL_write: the failed write is finished (and reported) by
    # libevent, the session ends, and the gateway serves the next client.
    g = gw()
    for i in range(5):
        c = TlsRecords(g.port, tls_client_context(ca()["main"]))
        c.write(http_request("/flood", host="localhost"))
        c.flush()
        head = c.read_until(b"\r\n\r\n", T(3))
        expect(head.startswith(b"HTTP/1.1 101"), "101: %r" % head[:40])
        c.read_payload(1 << 20, T(10), head[head.index(b"\r\n\r\n") + 4:])
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        c.close()
    expect(g.wait_log(r"access .*route=/flood .*code=1006", T(5)) is not None,
           "an access line with code=1006 for a reset client")
    expect(g.alive(), "the gateway is still running")
    code = arun(echo_roundtrip(wss(g.port, "/echo"),
                               tls_client_context(ca()["main"]), [b"next"]))
    expect(code is not None, "the next client is served")


def _start_small_buffer():
    return Gateway(limits={"buffer_limit": "1k"}, listen_flags="tls",
                   sections=[("tls", tls_section())],
                   routes={"/echo": {"upstream": "echo"}},
                   name="tls gateway, buffer_limit 1k").start()


gw_small = once(_start_small_buffer)


def t_records_held_while_paused():
    # 1 MiB of messages in one send to an echo route that pauses after
    # 1 KiB queued toward a client not reading yet: the gateway stops
    # reading with records in OpenSSL's read-ahead buffer, and the socket
    # may have nothing more by the time it resumes.  Every message must
    # still come back.
    c = TlsRecords(gw_small().port, tls_client_context(ca()["main"]))
    try:
        c.write(http_request("/echo", host="localhost"))
        c.flush()
        head = c.read_until(b"\r\n\r\n", T(3))
        expect(head.startswith(b"HTTP/1.1 101"), "101: %r" % head[:40])
        msgs = [(b"%06d" % i) * 2730 for i in range(64)]
        for m in msgs:
            c.write(build_frame(0x2, m))
        c.flush()
        sent = b"".join(msgs)
        got = c.read_payload(len(sent), T(10),
                             head[head.index(b"\r\n\r\n") + 4:])
        expect(got == sent, "the echoed bytes differ")
    finally:
        c.close()


def t_wss_bulk_tls_upstream():
    sent, got = bulk_through(wss(gw().port, "/up"), 4 << 20)
    expect_eq(got, sent, "SHA-256 of 4 MiB through wss:// and a tls:// "
              "upstream and back")


def t_wss_upstream_reset_code():
    g = gw()

    async def go():
        ctx = tls_client_context(ca()["main"])
        async with websockets.connect(wss(g.port, "/reset"), ssl=ctx,
                                      open_timeout=T(5)) as ws:
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), T(5))
            except websockets.exceptions.ConnectionClosed:
                pass
            return ws.close_code, ws.close_reason
    code, reason = arun(go())
    expect_eq((code, reason), (1011, "upstream reset"), "close")


# --- openssl s_client: versions, ALPN, SNI ----------------------------------

def t_s_client_defaults():
    rc, out = s_client(gw().port, ["-CAfile", ca()["main"].cert,
                                   "-servername", "localhost",
                                   "-alpn", "http/1.1"])
    expect(rc == 0, "s_client failed:\n%s" % out)
    expect("Verify return code: 0 (ok)" in out, out)
    # s_client prints this line right after the handshake (its session
    # block only once a ticket arrived, which may be after stdin's EOF).
    expect("New, TLSv1.3, Cipher is " in out,
           "TLS 1.3 not negotiated:\n" + out)
    expect("ALPN protocol: http/1.1" in out, "ALPN not agreed:\n" + out)


def t_s_client_tls12():
    rc, out = s_client(gw().port, ["-CAfile", ca()["main"].cert,
                                   "-tls1_2"])
    expect(rc == 0 and "New, TLSv1.2, Cipher is " in out, out)
    expect("Verify return code: 0 (ok)" in out, out)


def t_old_versions_refused():
    g = gw()
    for flag in ("-tls1", "-tls1_1"):
        # SECLEVEL=0 so that the client really offers the old version
        rc, out = s_client(g.port, [flag, "-cipher", "DEFAULT@SECLEVEL=0"])
        expect(rc != 0, "%s accepted:\n%s" % (flag, out))
        expect("Cipher is (NONE)" in out and "New, TLSv1" not in out,
               "%s negotiated:\n%s" % (flag, out))
    expect(g.wait_log(r"TLS handshake failed: unsupported protocol", T(3))
           is not None, "refusal not logged")


def t_alpn_other_protocol():
    rc, out = s_client(gw().port, ["-CAfile", ca()["main"].cert,
                                   "-alpn", "h2"])
    expect(rc == 0, out)
    expect("No ALPN negotiated" in out, "h2 was agreed:\n" + out)


def t_min_version_13():
    g = Gateway(listen_flags="tls",
                sections=[("tls", tls_section({"min_version": "1.3"}))],
                routes={"/echo": {"upstream": "echo"}},
                name="TLS 1.3-only gateway").start()
    try:
        rc, out = s_client(g.port, ["-CAfile", ca()["main"].cert, "-tls1_2"])
        expect(rc != 0 and "Cipher is (NONE)" in out,
               "TLS 1.2 accepted with min_version = 1.3:\n" + out)
        rc, out = s_client(g.port, ["-CAfile", ca()["main"].cert, "-tls1_3"])
        expect(rc == 0 and "New, TLSv1.3, Cipher is " in out, out)
    finally:
        g.check_stop()


def t_ciphers_and_tickets():
    # TLS 1.2 tickets are in the handshake: s_client shows the lifetime
    # hint in its session block when one was issued.
    rc, out = s_client(gw().port, ["-CAfile", ca()["main"].cert, "-tls1_2"])
    expect("TLS session ticket lifetime hint" in out,
           "no ticket with session_tickets on:\n" + out)
    g = Gateway(listen_flags="tls",
                sections=[("tls", tls_section({
                    "ciphers": "ECDHE-ECDSA-AES128-GCM-SHA256",
                    "session_tickets": "off"}))],
                routes={"/echo": {"upstream": "echo"}},
                name="ciphers gateway").start()
    try:
        rc, out = s_client(g.port, ["-CAfile", ca()["main"].cert, "-tls1_2"])
        expect(rc == 0 and "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in out,
               out)
        expect("TLS session ticket lifetime hint" not in out,
               "ticket issued with session_tickets = off:\n" + out)
        rc, out = s_client(g.port, ["-tls1_2", "-cipher",
                                    "ECDHE-ECDSA-AES256-GCM-SHA384"])
        expect(rc != 0 and "Cipher is (NONE)" in out,
               "a cipher outside the list was agreed:\n" + out)
        expect(g.wait_log(r"TLS handshake failed: no shared cipher", T(3))
               is not None, "no shared cipher not logged")
    finally:
        g.check_stop()


def serial_for(name):
    return peer_serial(gw().port, ca()["main"], server_name=name)


def t_sni_selects_certificate():
    expect_eq(serial_for("localhost"), 1001, "default certificate")
    expect_eq(serial_for("other.test"), 2002, "exact server name")
    expect_eq(serial_for("OTHER.test"), 2002, "name in another case")
    expect_eq(serial_for("x.wild.test"), 2002, "wildcard name")
    expect_eq(serial_for("a.b.wild.test"), 1001, "two labels under *.")
    expect_eq(serial_for("unknown.test"), 1001, "unknown name")
    rc, out = s_client(gw().port, ["-CAfile", ca()["main"].cert,
                                   "-servername", "x.wild.test"])
    expect("CN = other.test" in out, "subject for x.wild.test:\n" + out)
    rc, out = s_client(gw().port, ["-CAfile", ca()["main"].cert,
                                   "-noservername"])
    expect("CN = localhost" in out, "subject without SNI:\n" + out)


def t_sni_certificate_over_wss():
    # A full session on the SNI certificate: the switched context keeps
    # ALPN and the rest working.
    async def go():
        ctx = tls_client_context(ca()["main"])
        ctx.check_hostname = False
        uri = "wss://%s:%d/echo" % (HOST, gw().port)
        async with websockets.connect(uri, ssl=ctx,
                                      server_hostname="x.wild.test") as ws:
            await ws.send("via SNI")
            return await asyncio.wait_for(ws.recv(), T(5))
    expect_eq(arun(go()), "via SNI", "echo")


# --- failed handshakes never disturb others ----------------------------------

class GoodClient:
    """A wss client kept open across a disruption; check() echoes."""

    def __init__(self, port):
        ctx = tls_client_context(ca()["main"])
        raw = socket.create_connection((HOST, port), timeout=T(5))
        self.sock = ctx.wrap_socket(raw, server_hostname="localhost")
        self.sock.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n"
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            d = self.sock.recv(4096)
            expect(d, "EOF during the upgrade")
            head += d
        expect(head.startswith(b"HTTP/1.1 101"), head)
        self.n = 0

    def check(self):
        self.n += 1
        payload = b"still here %d" % self.n
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(bytes([0x82, 0x80 | len(payload)]) + mask + masked)
        got = b""
        while len(got) < 2 + len(payload):
            d = self.sock.recv(4096)
            expect(d, "good client lost its connection")
            got += d
        expect_eq(got, bytes([0x82, len(payload)]) + payload, "echo")

    def close(self):
        self.sock.close()


def wait_closed(sock, timeout):
    """True if the peer closes SOCK (EOF or reset) within TIMEOUT; what it
    sent before is discarded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = sock.recv(4096)
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        if not d:
            return True
    return False


def t_plain_http_to_tls_port():
    g = gw()
    good = GoodClient(g.port)
    good.check()
    s = socket.create_connection((HOST, g.port), timeout=T(5))
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: localhost\r\n\r\n")
    s.settimeout(T(3))
    first = b""
    try:
        first = s.recv(4096)
    except (ConnectionResetError, socket.timeout):
        pass
    expect(not first.startswith(b"HTTP/"), "got HTTP back: %r" % first[:40])
    expect(first == b"" or wait_closed(s, T(3)), "not closed")
    s.close()
    expect(g.wait_log(r"TLS handshake failed: http request", T(3))
           is not None, "plain HTTP not logged")
    good.check()
    good.close()


def t_random_bytes_to_tls_port():
    g = gw()
    good = GoodClient(g.port)
    rnd = random.Random(7)
    for i in range(5):
        s = socket.create_connection((HOST, g.port), timeout=T(5))
        s.sendall(bytes([0x16, 0x03, 0x01]) + rnd.randbytes(300) if i == 0
                  else rnd.randbytes(200 + i))
        expect(wait_closed(s, T(3)), "garbage #%d: connection not closed" % i)
        s.close()
        good.check()
    good.close()


def t_stalled_handshake():
    g = gw()
    good = GoodClient(g.port)
    # The first bytes of a ClientHello, then nothing.  The timer starts at
    # the accept: the lower bound counts from before the connect.
    t0 = time.monotonic()
    s = socket.create_connection((HOST, g.port), timeout=T(5))
    s.sendall(bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01]))
    t1 = time.monotonic()
    good.check()
    rtt = time.monotonic() - t1
    expect(wait_closed(s, T(HS_TIMEOUT) + grace(rtt)),
           "stalled client not dropped")
    waited = time.monotonic() - t0
    expect(waited >= T(HS_TIMEOUT) - CLOCK_SLACK, "dropped after %.2f s, "
           "before handshake_timeout %.2f s" % (waited, T(HS_TIMEOUT)))
    s.close()
    expect(g.wait_log(r"TLS handshake failed: timeout", T(3)) is not None,
           "timeout not logged")
    good.check()
    good.close()


def t_failures_counted():
    g = gw()
    expect(g.wait_log(r"access .*reason=\"TLS handshake failed", T(3))
           is not None, "no access line for a failed handshake")


# --- client certificates -----------------------------------------------------

def _start_mtls():
    c = ca()
    return Gateway(
        listen_flags="tls",
        sections=[("tls", tls_section({"client_ca": c["main"].cert,
                                       "client_verify": "required"}))],
        routes={"/echo": {"upstream": "echo"}},
        name="mTLS gateway").start()


gw_mtls = once(_start_mtls)


async def one_echo(port, ctx, text="x"):
    async with websockets.connect(wss(port, "/echo"), ssl=ctx,
                                  open_timeout=T(5)) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), T(5))


def refused(port, ctx):
    try:
        arun(one_echo(port, ctx), timeout=20)
    except (ssl.SSLError, OSError, EOFError,
            websockets.exceptions.InvalidHandshake,
            websockets.exceptions.ConnectionClosed):
        return True
    return False


def t_mtls_without_certificate_refused():
    g = gw_mtls()
    expect(refused(g.port, tls_client_context(ca()["main"])),
           "accepted without a client certificate")
    expect(g.wait_log(r"TLS handshake failed: peer did not return a "
                      r"certificate", T(3)) is not None,
           "missing certificate not logged")


def t_mtls_foreign_certificate_refused():
    g = gw_mtls()
    c = ca()
    ctx = tls_client_context(c["main"], *c["bad_client"])
    expect(refused(g.port, ctx), "accepted a certificate of another CA")
    expect(g.wait_log(r"TLS handshake failed: certificate verify failed",
                      T(3)) is not None, "bad certificate not logged")


def t_mtls_valid_certificate_logged():
    g = gw_mtls()
    c = ca()
    ctx = tls_client_context(c["main"], *c["client"])
    expect_eq(arun(one_echo(g.port, ctx, "mtls")), "mtls", "echo")
    line = g.wait_log(r"access .*tls_subject=", T(3))
    expect(line is not None, "no tls_subject in the access log")
    expect('tls_subject="O=wsgate tests,CN=client one"' in line
           or 'tls_subject="CN=client one,O=wsgate tests"' in line, line)


def t_mtls_optional():
    c = ca()
    g = Gateway(listen_flags="tls",
                sections=[("tls", tls_section({"client_ca": c["main"].cert,
                                               "client_verify":
                                               "optional"}))],
                routes={"/echo": {"upstream": "echo"}},
                name="optional mTLS gateway").start()
    try:
        expect_eq(arun(one_echo(g.port, tls_client_context(c["main"]))),
                  "x", "echo without a certificate")
        line = g.wait_log(r"access .*route=/echo", T(3))
        expect(line is not None and "tls_subject" not in line, line)
        ctx = tls_client_context(c["main"], *c["bad_client"])
        expect(refused(g.port, ctx), "accepted a certificate of another CA")
    finally:
        g.check_stop()


async def path_echo(port, path, ctx, text="x"):
    async with websockets.connect(wss(port, path), ssl=ctx,
                                  open_timeout=T(5)) as ws:
        await ws.send(text)
        return await asyncio.wait_for(ws.recv(), T(5))


def path_status(port, path, ctx):
    """101 (as "ok" after an echo) or the HTTP status that refused it."""
    try:
        arun(path_echo(port, path, ctx), timeout=20)
        return "ok"
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code


def cert_fingerprint(cert_path):
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def cert_subject(cert_path):
    out = subprocess.run(["openssl", "x509", "-in", cert_path, "-noout",
                          "-subject", "-nameopt", "RFC2253"],
                         stdout=subprocess.PIPE, check=True, timeout=30)
    return out.stdout.decode().strip().split("=", 1)[1]


def t_route_requires_client_certificate():
    c = ca()
    other = c["main"].issue("client two", serial=3004, client=True)
    g = Gateway(listen_flags="tls",
                sections=[("tls", tls_section({"client_ca": c["main"].cert,
                                               "client_verify":
                                               "optional"}))],
                routes={"/open": {"upstream": "echo"},
                        "/by-fp": {"upstream": "echo",
                                   "client_fingerprint":
                                   cert_fingerprint(c["client"][0])},
                        "/by-subject": {"upstream": "echo",
                                        "client_subject":
                                        cert_subject(c["client"][0])}},
                name="per-route client certificate gateway").start()
    try:
        none = tls_client_context(c["main"])
        one = tls_client_context(c["main"], *c["client"])
        two = tls_client_context(c["main"], *other)
        expect_eq(path_status(g.port, "/open", none), "ok", "/open, no cert")
        for path in ("/by-fp", "/by-subject"):
            expect_eq(path_status(g.port, path, none), 403,
                      "%s without a certificate" % path)
            expect_eq(path_status(g.port, path, one), "ok",
                      "%s with the named certificate" % path)
            expect_eq(path_status(g.port, path, two), 403,
                      "%s with another valid certificate" % path)
        expect(g.wait_log(r"refused: client certificate required", T(3)),
               "no log line for a missing certificate")
        expect(g.wait_log(r"refused: client certificate not allowed", T(3)),
               "no log line for another certificate")
    finally:
        g.check_stop()


# --- SIGHUP: certificate rotation --------------------------------------------

def t_sighup_rotation():
    c = ca()
    d = tempfile.mkdtemp(dir=TMP)
    cert, key = os.path.join(d, "gw.pem"), os.path.join(d, "gw.key")
    shutil.copy(c["srv"][0], cert)
    shutil.copy(c["srv"][1], key)
    g = Gateway(listen_flags="tls",
                sections=[("tls", {"certificate": cert, "key": key})],
                routes={"/echo": {"upstream": "echo"}},
                name="rotating gateway").start()
    try:
        expect_eq(peer_serial(g.port, c["main"]), 1001, "serial before")
        before = GoodClient(g.port)
        before.check()
        new_cert, new_key = c["main"].issue("localhost", dns=["localhost"],
                                            serial=1002, stem="rotated")
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        g.signal(__import__("signal").SIGHUP)
        expect(g.wait_log(r"TLS certificates and keys reloaded", T(5))
               is not None, "reload not logged")
        before.check()
        expect_eq(peer_serial(g.port, c["main"]), 1002, "serial after")
        before.check()
        # A bad new file: the current certificate stays.
        with open(cert, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64\n")
        g.signal(__import__("signal").SIGHUP)
        line = g.wait_log(r"TLS reload failed, keeping the current", T(5))
        expect(line is not None, "failed reload not logged")
        expect(("%s:" % g.conf) in line and "certificate:" in line
               and cert in line, "reload error names no file:line:key: "
               + line)
        expect_eq(peer_serial(g.port, c["main"]), 1002, "serial kept")
        # A key that does not match: kept as well.
        shutil.copy(new_cert, cert)
        shutil.copy(c["srv"][1], key)
        g.signal(__import__("signal").SIGHUP)
        expect(g.wait_log(r"does not match the certificate", T(5))
               is not None, "mismatch not logged")
        expect_eq(peer_serial(g.port, c["main"]), 1002, "serial kept")
        before.check()
        before.close()
    finally:
        g.check_stop()


def t_sighup_upstream_tls_only():
    # no [tls]: the one tls:// route's context is what a reload rebuilds
    g = Gateway(routes={"/up": {"upstream": "tls://localhost:%d"
                                % UP["tls"].port,
                                "upstream_ca": ca()["main"].cert}},
                name="tls:// only gateway").start()
    try:
        g.signal(__import__("signal").SIGHUP)
        expect(g.wait_log(r"reloaded .*: 1 route", T(5)) is not None,
               "no reload line")
        expect(g.wait_log(r"TLS certificates and keys reloaded "
                          r"\(1 context\)", 0) is not None,
               "TLS reload not logged: %s" % g.log_text())
    finally:
        g.check_stop()


# --- tls:// upstreams ---------------------------------------------------------

async def close_of(port, path):
    """Connect to PATH and return the (code, reason) the gateway closes
    with after one message."""
    ctx = tls_client_context(ca()["main"])
    async with websockets.connect(wss(port, path), ssl=ctx,
                                  open_timeout=T(5)) as ws:
        try:
            await ws.send("probe")
            while True:
                await asyncio.wait_for(ws.recv(), T(10))
        except websockets.exceptions.ConnectionClosed:
            pass
        return ws.close_code, ws.close_reason


def t_upstream_tls_verified():
    g = gw()
    n = len(UP["tls"].sni)
    code = arun(echo_roundtrip(wss(g.port, "/up"),
                               tls_client_context(ca()["main"]),
                               [b"over tls", b"\x00" * 100000]))
    expect_eq(code, 1000, "close")
    expect_eq(UP["tls"].sni[n:], ["localhost"], "SNI sent to the upstream")


def t_upstream_tls_ip_literal():
    g = gw()
    n = len(UP["tls"].sni)
    arun(echo_roundtrip(wss(g.port, "/up_ip"),
                        tls_client_context(ca()["main"]), [b"by address"]))
    expect_eq(UP["tls"].sni[n:], [None], "no SNI for an IP literal")


def t_upstream_wrong_ca():
    code, reason = arun(close_of(gw().port, "/up_wrong_ca"))
    expect_eq((code, reason), (1011, "upstream TLS verification failed"),
              "close")
    expect(gw().wait_log(r"/up_wrong_ca .*upstream TLS verification "
                         r"failed: unable to get local issuer", T(3))
           is not None, "verification failure not logged with details")


def t_upstream_code_tls_override():
    code, reason = arun(close_of(gw().port, "/up_code"))
    expect_eq((code, reason), (1014, "upstream TLS verification failed"),
              "close")


def t_upstream_name_mismatch():
    code, reason = arun(close_of(gw().port, "/up_badname"))
    expect_eq((code, reason), (1011, "upstream TLS verification failed"),
              "close")
    expect(gw().wait_log(r"/up_badname .*hostname mismatch", T(3))
           is not None, "hostname mismatch not logged")


def t_upstream_verify_off():
    arun(echo_roundtrip(wss(gw().port, "/up_noverify"),
                        tls_client_context(ca()["main"]), [b"unverified"]))


def t_upstream_not_tls():
    code, reason = arun(close_of(gw().port, "/up_plain"))
    expect_eq((code, reason), (1011, "upstream TLS handshake failed"),
              "close")


def t_upstream_client_certificate():
    arun(echo_roundtrip(wss(gw().port, "/up_mtls"),
                        tls_client_context(ca()["main"]), [b"with cert"]))
    expect_eq(UP["tls_mtls"].handshake_errors, [], "upstream handshake")


def t_upstream_data_before_handshake():
    # Frames right behind the upgrade request reach a tls:// upstream
    # intact (they wait for its handshake).
    g = gw()
    ctx = tls_client_context(ca()["main"])
    raw = socket.create_connection((HOST, g.port), timeout=T(5))
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    frames = b""
    for i in range(10):
        p = b"early-%d;" % i
        frames += bytes([0x82, 0x80 | len(p)]) + b"\0\0\0\0" + p
    s.sendall(b"GET /up HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n\r\n" + frames)
    want = b"".join(b"early-%d;" % i for i in range(10))
    buf = b""
    deadline = time.monotonic() + T(5)
    while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
        buf += s.recv(65536)
    buf = buf.split(b"\r\n\r\n", 1)[1]
    got = b""
    while len(got) < len(want) and time.monotonic() < deadline:
        while len(buf) >= 2 and len(buf) >= 2 + (buf[1] & 0x7f):
            n = buf[1] & 0x7f
            got += buf[2:2 + n]
            buf = buf[2 + n:]
        if len(got) < len(want):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            buf += s.recv(65536)
    expect_eq(got, want, "bytes echoed by the TLS upstream")
    s.close()


# --- wsgate -t ------------------------------------------------------------------

def write_conf(name, tls_lines, route_lines=""):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write("[gateway]\nlisten = 127.0.0.1:1 tls\n\n[tls]\n%s\n"
                "[route /echo]\nupstream = echo\n%s" % (tls_lines,
                                                         route_lines))
    return path


def t_check_good():
    c = ca()
    conf = write_conf("good.ini", "certificate = %s\nkey = %s\n" % c["srv"],
                      "[route /up]\nupstream = tls://localhost:1\n"
                      "upstream_ca = %s\n" % c["main"].cert)
    rc, out, err = run_cli(["-t", "-c", conf])
    expect_eq(rc, 0, "exit status (stderr %r)" % err)


def t_check_mismatched_key():
    c = ca()
    conf = write_conf("mismatch.ini", "certificate = %s\nkey = %s\n"
                      % (c["srv"][0], c["sni"][1]))
    rc, out, err = run_cli(["-t", "-c", conf])
    expect(rc != 0, "mismatched key accepted")
    expect(("%s:6: key: the key in %s does not match the certificate in %s "
            "(line 5)" % (conf, c["sni"][1], c["srv"][0])) in err, err)


def t_check_expired():
    c = ca()
    cert, key = c["main"].issue("localhost", serial=9009, days=0,
                                stem="expired")
    time.sleep(1.1)
    conf = write_conf("expired.ini", "certificate = %s\nkey = %s\n"
                      % (cert, key))
    rc, out, err = run_cli(["-t", "-c", conf])
    expect(rc != 0, "expired certificate accepted")
    expect(("%s:5: certificate: the certificate in %s expired on "
            % (conf, cert)) in err, err)


def t_check_unreadable():
    c = ca()
    missing = os.path.join(TMP, "missing.pem")
    conf = write_conf("missing.ini", "certificate = %s\nkey = %s\n"
                      % (missing, c["srv"][1]))
    rc, out, err = run_cli(["-t", "-c", conf])
    expect(rc != 0, "missing certificate accepted")
    expect(("%s:5: certificate: cannot read %s: No such file or directory"
            % (conf, missing)) in err, err)
    # the SNI and upstream files are checked too
    conf = write_conf("missing2.ini", "certificate = %s\nkey = %s\n"
                      % c["srv"], "[route /up]\nupstream = tls://a.test:1\n"
                      "upstream_ca = %s\n" % missing)
    rc, out, err = run_cli(["-t", "-c", conf])
    expect(rc != 0 and ("%s:12: upstream_ca: cannot read" % conf) in err, err)
    garbage = os.path.join(TMP, "garbage.pem")
    with open(garbage, "w") as f:
        f.write("this is not PEM\n")
    conf = write_conf("garbage.ini", "certificate = %s\nkey = %s\n"
                      % (garbage, c["srv"][1]))
    rc, out, err = run_cli(["-t", "-c", conf])
    expect(rc != 0 and ("%s:5: certificate: cannot load a PEM certificate "
                        "chain from %s" % (conf, garbage)) in err, err)
    # and the daemon refuses to start with the same message
    conf = write_conf("missing3.ini", "certificate = %s\nkey = %s\n"
                      % (missing, c["srv"][1]))
    rc, out, err = run_cli(["-c", conf])
    expect(rc != 0 and ("%s:5: certificate: cannot read" % conf) in err, err)


# --- what an idle TLS connection costs ------------------------------------

IDLE_CONNS = 500


def t_idle_tls_connection_rss():
    g = gw()
    if RSS_SKIP:
        raise Skip("RSS not measured: %s" % RSS_SKIP)
    if SANITIZED:
        raise Skip("RSS not measured under ASan")
    ctx = tls_client_context(ca()["main"])

    async def go():
        base = g.rss_kib()
        conns = []
        for _ in range(IDLE_CONNS):
            conns.append(await websockets.connect(
                wss(g.port, "/echo"), ssl=ctx, open_timeout=T(10),
                ping_interval=None, max_queue=1))
        await asyncio.sleep(0.5)
        full = g.rss_kib()
        for ws in conns:
            await ws.close()
        return base, full
    base, full = arun(go(), timeout=120)
    per = (full - base) * 1024 / IDLE_CONNS
    diag("gateway VmRSS %d KiB -> %d KiB with %d idle wss connections: "
         "%.1f KiB each" % (base, full, IDLE_CONNS, per / 1024))
    expect(per < 64 * 1024, "an idle TLS connection costs %.1f KiB"
           % (per / 1024))


TESTS = [
    ("wss:// echo route, text and binary, access log tls=", t_wss_echo_route),
    ("wss:// with two workers: connections split within one, all served",
     t_wss_workers_balanced),
    ("wss:// TCP route both ways, client close code 4001 preserved",
     t_wss_tcp_route),
    ("wss:// bulk: 8 MiB each way through a TCP route, SHA-256 equal",
     t_wss_bulk_tcp_route),
    ("wss:// bulk: 24 MiB each way, reader stalling (blocked TLS writes "
     "finished by libevent), SHA-256 equal", t_wss_bulk_slow_reader),
    ("TLS records behind the upgrade request in one send are read (read-ahead)",
     t_records_behind_the_upgrade),
    ("client reset in the middle of a wss download: session ends, gateway "
     "serves the next", t_client_reset_mid_download),
    ("TLS records held while the client is paused are read on resuming",
     t_records_held_while_paused),
    ("wss:// bulk: 4 MiB each way through a tls:// upstream, SHA-256 equal",
     t_wss_bulk_tls_upstream),
    ("wss:// upstream reset -> 1011 'upstream reset'",
     t_wss_upstream_reset_code),
    ("s_client: verified, TLS 1.3, ALPN http/1.1", t_s_client_defaults),
    ("s_client: TLS 1.2 accepted", t_s_client_tls12),
    ("s_client: TLS 1.0 and 1.1 refused", t_old_versions_refused),
    ("s_client: ALPN h2 only -> none agreed, still served",
     t_alpn_other_protocol),
    ("min_version = 1.3: TLS 1.2 refused", t_min_version_13),
    ("ciphers restrict TLS 1.2; session_tickets on/off", t_ciphers_and_tickets),
    ("SNI: exact, wildcard and unknown names pick the right certificate",
     t_sni_selects_certificate),
    ("SNI: a whole wss session on the SNI certificate",
     t_sni_certificate_over_wss),
    ("plain HTTP to the TLS port closed, another client unaffected",
     t_plain_http_to_tls_port),
    ("random bytes to the TLS port closed, another client unaffected",
     t_random_bytes_to_tls_port),
    ("stalled handshake dropped at handshake_timeout, another client "
     "unaffected", t_stalled_handshake),
    ("failed handshakes get an access line", t_failures_counted),
    ("mTLS required: no client certificate -> refused",
     t_mtls_without_certificate_refused),
    ("mTLS required: certificate of another CA -> refused",
     t_mtls_foreign_certificate_refused),
    ("mTLS required: valid certificate accepted, subject logged",
     t_mtls_valid_certificate_logged),
    ("mTLS optional: none accepted, a bad one refused", t_mtls_optional),
    ("per route: client_fingerprint / client_subject required, 403 otherwise",
     t_route_requires_client_certificate),
    ("SIGHUP: live connection kept, new serial served; bad files keep the "
     "old one", t_sighup_rotation),
    ("SIGHUP without [tls], one tls:// route: its reload is logged",
     t_sighup_upstream_tls_only),
    ("tls:// upstream verified by name, SNI sent", t_upstream_tls_verified),
    ("tls:// upstream by IP literal: verified, no SNI",
     t_upstream_tls_ip_literal),
    ("tls:// upstream with an unknown CA -> 1011 verification failed",
     t_upstream_wrong_ca),
    ("tls:// code_tls = 1014 override", t_upstream_code_tls_override),
    ("tls:// upstream_sni that does not match -> verification failed",
     t_upstream_name_mismatch),
    ("tls:// upstream_verify = off works with an unknown CA",
     t_upstream_verify_off),
    ("tls:// to a plain TCP service -> 1011 handshake failed",
     t_upstream_not_tls),
    ("tls:// upstream requiring a client certificate", t_upstream_client_certificate),
    ("tls:// frames sent before the upstream handshake arrive intact",
     t_upstream_data_before_handshake),
    ("wsgate -t: good TLS config passes", t_check_good),
    ("wsgate -t: mismatched key -> file:line:key", t_check_mismatched_key),
    ("wsgate -t: expired certificate -> file:line:key", t_check_expired),
    ("wsgate -t: unreadable/garbage files -> file:line:key; start refused",
     t_check_unreadable),
    ("RSS of an idle TLS connection", t_idle_tls_connection_rss),
]


def _finish():
    return [(n, f) for n, f in [
        ("TLS gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
         lambda: gw().check_stop()),
        ("mTLS gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
         lambda: gw_mtls().check_stop()),
    ]]


if __name__ == "__main__":
    run_tests(TESTS, limit=300, finish=_finish())
