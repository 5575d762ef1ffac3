#!/usr/bin/python3
"""
test_stall.py - sessions that nobody else would end.

- A client fills the queue toward an upstream that never reads, then leaves
  (FIN or RST) while the gateway has stopped reading it: with keepalive,
  idle and stall limits all off, the gateway must still notice and give
  back both descriptors.
- stall_timeout: an upstream that takes nothing ends the session (Close 1011
  "upstream stalled"); a client that takes nothing ends it too (Close 1011
  "client stalled", upstream closed); both logged and counted per route;
  a slow but steady reader is never cut.
"""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    CLOCK_SLACK, OP_BINARY, T, FloodUpstream, Gateway, RawWS,
    SilentUpstream, SourceUpstream, TestFailure, build_frame, diag, expect,
    expect_eq, once, run_tests)

STALL = 1.0       # stall_timeout of the stall gateway, before scaling
CLOSE = 1.0       # close_timeout of the watch gateway

class TinySilentUpstream(SilentUpstream):
    """Never reads, and its window is small: little of a client's data
    disappears into the kernel on the way to it."""
    rcvbuf = 4096


tiny_silent = once(lambda: TinySilentUpstream())
flood = once(lambda: FloodUpstream(duration=120))
# 4 MiB in 64 KiB pieces, 20 ms apart: a steady trickle slower than a
# socket, so the queue toward a slow reader never empties for long.
steady = once(lambda: SourceUpstream(os.urandom(4 << 20), chunk=65536,
                                     pause=0.02))


def ms(s):
    return "%dms" % int(s * 1000)


def _gw_watch():
    return Gateway(limits={"ping_interval": "0", "idle_timeout": "0",
                           "stall_timeout": "0",
                           "close_timeout": ms(T(CLOSE)),
                           "buffer_limit": "1k"},
                   routes={"/silent": {"upstream": tiny_silent().addr}},
                   name="watch gateway").start()


def _gw_stall():
    return Gateway(limits={"stall_timeout": ms(T(STALL)),
                           "ping_interval": "0",
                           "close_timeout": ms(T(3)),
                           "buffer_limit": "64k"},
                   routes={"/silent": {"upstream": tiny_silent().addr},
                           "/flood": {"upstream": flood().addr},
                           "/steady": {"upstream": steady().addr}},
                   admin=True, name="stall gateway").start()


gw_watch = once(_gw_watch)
gw_stall = once(_gw_stall)


def _fill(c, limit_s):
    """Send binary frames until the gateway stops taking them (a send
    blocked for a while) or LIMIT_S pass; returns the bytes sent."""
    frame = build_frame(OP_BINARY, b"x" * 65536)
    c.sock.settimeout(T(0.5))
    sent = 0
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        try:
            c.sock.sendall(frame)
        except socket.timeout:
            return sent
        sent += len(frame)
    raise TestFailure("the gateway kept taking data for %.0f s (%d bytes) "
                      "toward an upstream that reads nothing" % (limit_s,
                                                                 sent))


def _small_client(g, path):
    c = RawWS(g.port, path, timeout=T(5), rcvbuf=4096)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    return c


def _wait_fds(g, want, timeout):
    end = time.monotonic() + timeout
    n = g.fd_count()
    while n is not None and n > want and time.monotonic() < end:
        time.sleep(0.1)
        n = g.fd_count()
    return n


def _tcp_rows(port):
    """{peer port: (state, rx_queue)} of 127.0.0.1:PORT's connections, from
    /proc/net/tcp (the gateway's side)."""
    rows = {}
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            p = line.split()
            lport = int(p[1].split(":")[1], 16)
            if lport != port:
                continue
            rport = int(p[2].split(":")[1], 16)
            rows[rport] = (int(p[3], 16), int(p[4].split(":")[1], 16))
    return rows


TCP_CLOSE_WAIT = 8


def _not_read(g, c):
    """Send until the gateway stops reading C (data waits in its socket)
    while C's FIN can still reach it (C's own send queue is empty)."""
    port = c.sock.getsockname()[1]
    frame = build_frame(OP_BINARY, b"y" * 16384)
    end = time.monotonic() + T(20)
    while time.monotonic() < end:
        c.sock.sendall(frame)
        time.sleep(0.02)
        _, rx = _tcp_rows(g.port).get(port, (0, 0))
        if rx > 0:
            time.sleep(0.2)
            if _tcp_rows(g.port).get(port, (0, 0))[1] > 0:
                return
    raise TestFailure("the gateway kept reading a client whose upstream "
                      "reads nothing")


def _left_while_not_read(rst):
    g = gw_watch()
    base = g.fd_count()
    clients = []
    for _ in range(10):
        c = RawWS(g.port, "/silent", timeout=T(5))
        if rst:
            _fill(c, T(20))
        else:
            _not_read(g, c)
        clients.append(c)
    held = g.fd_count()
    expect(held >= base + 20, "10 sessions hold %s descriptors, %s before"
           % (held, base))
    ports = [c.sock.getsockname()[1] for c in clients]
    t0 = time.monotonic()
    for c in clients:
        c.close(rst=rst)
    if not rst:
        # The FINs reached the gateway's sockets, behind unread bytes.
        time.sleep(0.2)
        rows = _tcp_rows(g.port)
        waiting = [p for p in ports if rows.get(p, (0, 0))[0] ==
                   TCP_CLOSE_WAIT and rows[p][1] > 0]
        diag("%d of 10 gateway sockets in CLOSE-WAIT with unread bytes"
             % len(waiting))
        expect(waiting, "no FIN reached the gateway behind unread bytes: "
               "the test did not set up what it checks")
    # A FIN waits close_timeout for the data before it; a reset does not.
    # The watch looks once a second.
    n = _wait_fds(g, base + 1, T(1 + CLOSE + 10))
    diag("descriptors: %s before, %s held, %s %.1f s after the clients "
         "left" % (base, held, n, time.monotonic() - t0))
    expect(n is not None and n <= base + 1,
           "%s descriptors %.0f s after 10 clients left (%s before): the "
           "sessions were kept" % (n, T(1 + CLOSE + 10), base))
    want = "client reset" if rst else "client vanished"
    expect(g.wait_log(re.escape(want), T(2)) is not None,
           "no access-log line with %r:\n%s" % (want, g.log_text()[-2000:]))


def t_fin_while_not_read():
    _left_while_not_read(rst=False)


def t_rst_while_not_read():
    _left_while_not_read(rst=True)


def _metric(g, route, side, missing=None):
    """wsgate_stalls_total of ROUTE and SIDE; MISSING if the route has no
    samples yet (none before its first session)."""
    st, _, body = g.admin_get("/metrics")
    expect_eq(st, 200, "/metrics status")
    m = re.search(r'^wsgate_stalls_total\{route="%s",side="%s"\} (\S+)$'
                  % (re.escape(route), side), body, re.M)
    if m is None and missing is not None:
        return missing
    expect(m is not None, "no wsgate_stalls_total for %s %s" % (route, side))
    return float(m.group(1))


def t_upstream_stall():
    g = gw_stall()
    before = _metric(g, "/silent", "upstream", missing=0)
    t0 = time.monotonic()
    c = RawWS(g.port, "/silent", timeout=T(5))
    _not_read(g, c)
    cl = c.expect_close(timeout=T(STALL + 10))
    waited = time.monotonic() - t0
    expect_eq((cl.code, cl.reason), (1011, "upstream stalled"),
              "close toward the client")
    # t0 is before the first byte: no write to the upstream (which restarts
    # the stall timer) can come earlier.
    expect(waited >= T(STALL) - CLOCK_SLACK, "closed %.2f s after the first byte, before "
           "stall_timeout (%.1f s)" % (waited, T(STALL)))
    c.close()
    expect(g.wait_log(r"upstream \S+ stalled: \d+ bytes queued", T(2)),
           "no log line for the stall")
    expect_eq(_metric(g, "/silent", "upstream"), before + 1,
              "wsgate_stalls_total upstream")


def t_client_stall():
    g = gw_stall()
    before = _metric(g, "/flood", "client", missing=0)
    c = _small_client(g, "/flood")
    t0 = time.monotonic()
    line = g.wait_log(r"client stalled: \d+ bytes queued", T(STALL + 15))
    expect(line is not None, "no stall logged for a client that reads "
           "nothing")
    diag("stall logged %.1f s after the upgrade" % (time.monotonic() - t0))
    # It had close_timeout to take what was queued and the Close.
    got = []
    cl = c.expect_close(timeout=T(10), collect=got)
    expect_eq((cl.code, cl.reason), (1011, "client stalled"),
              "close after %d messages" % len(got))
    how = c.wait_eof(T(5))
    expect(how in ("eof", "rst"), "connection not closed (%s)" % how)
    c.close()
    expect_eq(_metric(g, "/flood", "client"), before + 1,
              "wsgate_stalls_total client")


def t_slow_reader_is_not_cut():
    # 4 MiB trickling in, read at about 1 MiB/s (the queue is full most of
    # the time, but the client takes bytes every few ms): never a stall.
    g = gw_stall()
    c = _small_client(g, "/steady")
    got = 0
    end = time.monotonic() + T(60)
    while got < (4 << 20) and time.monotonic() < end:
        m = c.recv_message(timeout=T(STALL + 5), answer_pings=True)
        expect(m[0] == OP_BINARY, "message %r before the end" % (m,))
        got += len(m[1])
        time.sleep(0.05 * len(m[1]) / 65536)
    expect_eq(got, 4 << 20, "bytes read by the slow reader")
    c.close()


if __name__ == "__main__":
    run_tests([
        ("client FIN while not read: both descriptors come back",
         t_fin_while_not_read),
        ("client RST while not read: both descriptors come back",
         t_rst_while_not_read),
        ("stall_timeout: an upstream that reads nothing -> 1011",
         t_upstream_stall),
        ("stall_timeout: a client that reads nothing -> 1011, closed",
         t_client_stall),
        ("stall_timeout: a slow but steady reader is not cut",
         t_slow_reader_is_not_cut),
    ], limit=240, finish=[gw_watch().stop_test(), gw_stall().stop_test()])
