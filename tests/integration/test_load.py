#!/usr/bin/python3
"""
test_load.py - 1000 concurrent connections each echoing through a TCP echo;
bounded memory under backpressure (a client that stops reading while the
upstream floods, an upstream that never reads while the client floods, a
1 GiB message streamed) measured as the daemon's VmRSS; and EMFILE: out of
file descriptors the gateway neither spins nor crashes, and resumes.
"""

import asyncio
import logging
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    need_websockets, once,
    OP_BINARY, RSS_SKIP, T, WRAPPER, Close, FloodUpstream, Gateway, RawWS,
    SelectEchoUpstream, SilentUpstream, SinkUpstream, Skip, TestFailure,
    arun, asan_env, diag, expect, expect_eq, raise_nofile, run_tests, ws_uri)

websockets = need_websockets()

logging.getLogger("websockets").setLevel(logging.CRITICAL)

MIB = 1 << 20
RSS_BOUND_KIB = 64 * 1024
N_CONN = int(os.environ.get("WSGATE_LOAD_CONNECTIONS", "1000"))

NOFILE = raise_nofile()
UP = {}


def _start_gw():
    UP["echo"] = SelectEchoUpstream()
    UP["flood"] = FloodUpstream(duration=60)
    UP["silent"] = SilentUpstream()
    UP["sink"] = SinkUpstream()
    return Gateway(
        gateway={"max_connections": str(N_CONN * 2 + 100),
                 "access_log": "off", "log_level": "warn"},
        limits={"buffer_limit": "256k", "max_frame": "16k",
                "handshake_timeout": "30s"},
        routes={"/tcp": {"upstream": UP["echo"].addr},
                "/echo": {"upstream": "echo"},
                "/flood": {"upstream": UP["flood"].addr},
                "/silent": {"upstream": UP["silent"].addr},
                "/sink": {"upstream": UP["sink"].addr}},
        name="gateway", env=asan_env()).start()


gw = once(_start_gw)


def t_1000_concurrent():
    need = 3 * N_CONN + 200
    if NOFILE < need:
        raise Skip("RLIMIT_NOFILE hard limit %d < %d needed" % (NOFILE, need))
    port = gw().port

    async def main():
        opened = []
        go = asyncio.Event()
        sem = asyncio.Semaphore(100)  # pace the connects, not the sessions

        async def one(i):
            async with sem:
                ws = await websockets.connect(
                    ws_uri(port, "/tcp"), ping_interval=None,
                    compression=None, open_timeout=T(30),
                    close_timeout=T(10))
            try:
                opened.append(i)
                await asyncio.wait_for(go.wait(), T(60))
                msg = b"conn-%04d-" % i + bytes(100)
                await ws.send(msg)
                got = b""
                while len(got) < len(msg):
                    got += await asyncio.wait_for(ws.recv(), T(20))
                if got != msg:
                    raise TestFailure("connection %d: echo %r" % (i, got[:20]))
            finally:
                await ws.close()
            return ws.close_code == 1000 or ("close code %r" % ws.close_code)

        tasks = [asyncio.ensure_future(one(i)) for i in range(N_CONN)]
        deadline = time.monotonic() + T(40)
        while len(opened) < N_CONN and time.monotonic() < deadline:
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        peak = len(opened)
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if r is not True]
        return peak, errors

    t0 = time.monotonic()
    peak, errors = arun(main(), 90)
    took = time.monotonic() - t0
    expect_eq(peak, N_CONN, "connections open at the same time")
    expect(not errors, "%d of %d failed, first: %r"
           % (len(errors), N_CONN, errors[:3]))
    expect(gw().alive(), "gateway died")
    expect(UP["echo"].accepted >= N_CONN, "the upstream saw only %d "
           "connections" % UP["echo"].accepted)
    diag("%d connections opened, echoed and closed in %.1f s" % (N_CONN, took))


def sample_rss(seconds, every=0.1):
    """Max VmRSS (KiB) over SECONDS."""
    peak = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        r = gw().rss_kib() or 0
        peak = max(peak, r)
        time.sleep(every)
    return peak


def t_client_stops_reading_upstream_floods():
    base = gw().rss_kib()
    n = UP["flood"].count() + 1
    c = RawWS(gw().port, "/flood", timeout=T(5), rcvbuf=16384)
    rec = UP["flood"].wait_conn(n, T(3))
    time.sleep(0.5)
    peak = sample_rss(T(3))
    sent_a = rec.bytes_out
    time.sleep(1.0)
    sent_b = rec.bytes_out
    # Resume reading: the session still works.
    got = 0
    deadline = time.monotonic() + T(2)
    while got < 4 * MIB and time.monotonic() < deadline:
        m = c.recv_message(T(2))
        expect(not isinstance(m, Close), "closed: %r" % (m,))
        got += len(m[1])
    c.close()
    expect(got >= 4 * MIB, "reading resumed but only %d bytes came" % got)
    diag("upstream pushed %.1f MiB while the client read nothing; +%d bytes "
         "in the last second" % (sent_b / MIB, sent_b - sent_a))
    expect(sent_b < 64 * MIB, "the upstream could push %d MiB while the "
           "client read nothing: no backpressure" % (sent_b // MIB))
    expect(sent_b - sent_a < 4 * MIB, "the upstream kept writing (%d bytes "
           "in 1 s) while the client read nothing" % (sent_b - sent_a))
    diag("gateway VmRSS peak %s KiB" % peak)
    if RSS_SKIP:
        raise Skip("RSS bound not asserted: %s (peak %s KiB)" % (RSS_SKIP, peak))
    expect(peak < RSS_BOUND_KIB, "gateway VmRSS peaked at %d KiB (baseline %s "
           "KiB), bound %d KiB" % (peak, base, RSS_BOUND_KIB))


def nonblocking_flood(sock, seconds, frame):
    """Write FRAME repeatedly for SECONDS; returns bytes the kernel took."""
    sock.setblocking(False)
    sent = 0
    pending = memoryview(frame)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _, w, _ = select.select([], [sock], [], 0.05)
        if not w:
            continue
        try:
            n = sock.send(pending)
        except BlockingIOError:
            continue
        sent += n
        pending = pending[n:]
        if not pending:
            pending = memoryview(frame)
    sock.setblocking(True)
    return sent


def t_upstream_stops_reading_client_floods():
    c = RawWS(gw().port, "/silent", timeout=T(5))
    # one 64 KiB frame, masked with key 0 (a valid mask): no masking work
    hdr = struct.pack("!BBH", 0x82, 0x80 | 126, 65535) + b"\0\0\0\0"
    frame = hdr + bytes(65535)
    sent_total = 0
    peak = 0
    end = time.monotonic() + T(3)
    while time.monotonic() < end:
        sent_total += nonblocking_flood(c.sock, 0.25, frame)
        peak = max(peak, gw().rss_kib() or 0)
    sent_late = nonblocking_flood(c.sock, 1.0, frame)
    c.close()
    diag("client pushed %.1f MiB toward a silent upstream; %d bytes in the "
         "last second" % (sent_total / MIB, sent_late))
    expect(sent_total < 64 * MIB, "the client could push %d MiB toward an "
           "upstream that reads nothing" % (sent_total // MIB))
    expect(sent_late < 2 * MIB, "the client kept writing (%d bytes in 1 s)"
           % sent_late)
    diag("gateway VmRSS peak %s KiB" % peak)
    if RSS_SKIP:
        raise Skip("RSS bound not asserted: %s (peak %s KiB)" % (RSS_SKIP, peak))
    expect(peak < RSS_BOUND_KIB, "gateway VmRSS peaked at %d KiB" % peak)


def t_huge_message_streamed():
    # A frame announcing 1 GiB; 128 MiB of it streamed to a fast sink must
    # not be buffered.
    n = UP["sink"].count() + 1
    c = RawWS(gw().port, "/sink", timeout=T(10))
    rec = UP["sink"].wait_conn(n, T(3))
    c.send(struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 30) + b"\0\0\0\0")
    block = bytes(MIB)
    peak = 0
    total = 128 if not WRAPPER else 16
    t_end = time.monotonic() + T(30)
    for i in range(total):
        c.sock.sendall(block)
        if i % 8 == 0:
            peak = max(peak, gw().rss_kib() or 0)
        if time.monotonic() > t_end:
            break
    deadline = time.monotonic() + T(5)
    while rec.bytes_in < total * MIB and time.monotonic() < deadline:
        time.sleep(0.05)
    c.close()
    expect_eq(rec.bytes_in, total * MIB, "bytes streamed to the upstream "
              "before the message ended")
    diag("gateway VmRSS peak %s KiB" % peak)
    if RSS_SKIP:
        raise Skip("RSS bound not asserted: %s (peak %s KiB)" % (RSS_SKIP, peak))
    expect(peak < RSS_BOUND_KIB, "gateway VmRSS peaked at %d KiB while "
           "streaming" % peak)


def t_emfile():
    limit = 64
    g = Gateway(gateway={"max_connections": "1000", "log_level": "warn",
                         "access_log": "off"},
                limits={"handshake_timeout": "60s"},
                routes={"/echo": {"upstream": "echo"}},
                nofile=limit, name="emfile gateway").start()
    socks = []
    try:
        for _ in range(limit + 40):
            try:
                s = socket.create_connection(("127.0.0.1", g.port), timeout=T(2))
                socks.append(s)
            except OSError:
                break
        time.sleep(T(1))
        expect(g.alive(), "gateway died out of file descriptors: %s"
               % g.log_text()[-2000:])
        fds = g.fd_count()
        diag("daemon holds %s descriptors (limit %d) with %d client "
             "connections open" % (fds, limit, len(socks)))
        if not WRAPPER:
            expect(fds is not None and fds >= limit - 2, "the daemon never "
                   "ran out of descriptors (%s of %d): test setup broken"
                   % (fds, limit))
        cpu0 = g.cpu_seconds()
        time.sleep(2.0)
        cpu = g.cpu_seconds() - cpu0
        lines = len(g.log_text().splitlines())
        expect(cpu < 0.5 * (SCALE_CPU), "gateway used %.2f s CPU in 2 s while "
               "out of descriptors (spinning)" % cpu)
        expect(lines < 500, "%d log lines while out of descriptors" % lines)
        diag("%d connections held; gateway log lines about descriptors: %s"
             % (len(socks), [l for l in g.log_text().splitlines()
                             if "descriptor" in l.lower() or "emfile" in l.lower()
                             or "too many" in l.lower()][:3]))
        for s in socks:
            s.close()
        socks = []
        # accepting resumes
        ok = False
        last = None
        deadline = time.monotonic() + T(10)
        while time.monotonic() < deadline and not ok:
            try:
                c = RawWS(g.port, "/echo", timeout=T(3))
                c.send_binary(b"back")
                m = c.recv_message(T(3))
                c.close()
                ok = m == (OP_BINARY, b"back")
            except Exception as e:  # noqa: BLE001
                last = e
                time.sleep(0.2)
        expect(ok, "no service after descriptors were freed (%r)" % last)
        rc = g.stop()
        expect_eq(rc, 0, "exit status")
    finally:
        for s in socks:
            s.close()
        g.kill()


SCALE_CPU = 4 if WRAPPER else 1

TESTS = [
    ("%d concurrent connections each echoing through a TCP echo" % N_CONN, t_1000_concurrent),
    ("client stops reading, upstream floods: bounded RSS, upstream paused", t_client_stops_reading_upstream_floods),
    ("upstream stops reading, client floods: client paused, bounded RSS", t_upstream_stops_reading_client_floods),
    ("128 MiB of a 1 GiB message streamed with bounded RSS", t_huge_message_streamed),
    ("EMFILE: no spinning, no crash, accepting resumes", t_emfile),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=150,
              finish=[("gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: gw().check_stop())])
