#!/usr/bin/python3
"""
test_close_codes.py - every row of the close-code mapping table (issue 3),
seen byte-exactly by a raw client:

  upstream FIN                 -> data flushed, then Close 1000
  upstream RST                 -> Close 1011 "upstream reset" (code_reset
                                  overrides); on_reset=abort -> TCP RST
  refused / unreachable / connect timeout / DNS failure
                               -> Close 1011 with a reason naming which,
                                  or the route's override code
  client protocol error / invalid UTF-8 -> 1002 / 1007 (TCP route; the echo
                                  route and 1009 are in test_frames.py)
  gateway shutting down        -> 1001 to every client, exit 0
  client vanishes              -> test_bridge.py
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    CLOCK_SLACK, once,
    OP_TEXT, T, BlackholeUpstream, Close, EchoUpstream, Gateway,
    RawWS, RefusedPort, ResetUpstream, SinkUpstream, Skip, SourceUpstream,
    TestFailure, build_frame, expect, expect_eq, grace, pattern_bytes, run_tests)

FIN_DATA = pattern_bytes(200000, 8)
UP = {}


def _start_gw():
    UP["fin"] = SourceUpstream(FIN_DATA, chunk=50000, pause=0.01)
    UP["reset"] = ResetUpstream(prefix=b"partial data", delay=0.3)
    UP["refused"] = RefusedPort()
    UP["black"] = BlackholeUpstream()
    UP["sink"] = SinkUpstream()
    return Gateway(
        limits={"close_timeout": "1s"},
        routes={
            "/fin": {"upstream": UP["fin"].addr},
            "/reset": {"upstream": UP["reset"].addr},
            "/reset-1014": {"upstream": UP["reset"].addr,
                            "code_reset": "1014"},
            "/abort": {"upstream": UP["reset"].addr, "on_reset": "abort"},
            "/refused": {"upstream": UP["refused"].addr},
            "/refused-1013": {"upstream": UP["refused"].addr,
                              "code_refused": "1013"},
            # Limited broadcast: the kernel fails a TCP connect to it
            # with ENETUNREACH without sending anything.
            "/unreach": {"upstream": "255.255.255.255:9"},
            "/unreach-1014": {"upstream": "255.255.255.255:9",
                              "code_unreachable": "1014"},
            "/timeout": {"upstream": UP["black"].addr,
                         "connect_timeout": "%dms" % int(T(0.5) * 1000)},
            "/timeout-1013": {"upstream": UP["black"].addr,
                              "connect_timeout": "%dms" % int(T(0.5) * 1000),
                              "code_timeout": "1013"},
            # RFC 2606: .invalid never resolves.
            "/dns": {"upstream": "no-such-host.invalid:80"},
            "/dns-1014": {"upstream": "no-such-host.invalid:80",
                          "code_dns": "1014"},
            "/unix-missing": {"upstream": "unix:/nonexistent/wsgate-test.sock"},
            "/sink": {"upstream": UP["sink"].addr},
        },
        name="gateway").start()


gw = once(_start_gw)


def close_of(path, timeout=5, collect=None):
    """The Close on PATH, and the RawWS (sent_at, open_at, closed_at)."""
    c = RawWS(gw().port, path, timeout=T(timeout))
    cl = c.expect_close(T(timeout) + grace(c.rtt), collect=collect)
    c.closed_at = time.monotonic()
    try:
        c.send_close(cl.code)
    except OSError:
        pass
    how = c.wait_eof(T(3))
    c.close()
    expect(how in ("eof", "rst"), "TCP not closed after the Close (%s)" % how)
    return cl, c


def has(reason, *words):
    r = reason.lower()
    return any(w in r for w in words)


def t_fin_1000():
    got = []
    cl, _ = close_of("/fin", collect=got)
    data = b"".join(d for op, d in got)
    expect_eq(len(data), len(FIN_DATA), "bytes flushed before the Close")
    expect(data == FIN_DATA, "data differs")
    expect_eq(cl.code, 1000, "upstream FIN -> Close code")


def t_reset_1011():
    got = []
    cl, _ = close_of("/reset", collect=got)
    expect_eq(cl.code, 1011, "upstream RST -> Close code")
    expect(has(cl.reason, "reset"), "reason should mention the reset: %r" % cl.reason)
    data = b"".join(d for op, d in got)
    expect_eq(data, b"partial data", "data read before the reset is delivered")


def t_reset_override():
    got = []
    cl, _ = close_of("/reset-1014", collect=got)
    expect_eq(cl.code, 1014, "code_reset = 1014")


def t_reset_abort():
    c = RawWS(gw().port, "/abort", timeout=T(5))
    outcome = None
    got = bytearray()
    deadline = time.monotonic() + T(5)
    while time.monotonic() < deadline:
        try:
            m = c.recv_message(max(0.01, deadline - time.monotonic()))
        except ConnectionResetError:
            outcome = "rst"
            break
        except EOFError:
            outcome = "eof"
            break
        except socket.timeout:
            outcome = "timeout"
            break
        if isinstance(m, Close):
            outcome = "close %r" % (m,)
            break
        got += m[1]
    c.close()
    expect_eq(outcome, "rst", "on_reset=abort: the client should see a TCP RST")


def t_refused_1011():
    cl, _ = close_of("/refused")
    expect_eq(cl.code, 1011, "refused -> Close code")
    expect(has(cl.reason, "refus"), "reason should name the refusal: %r" % cl.reason)


def t_refused_override():
    cl, _ = close_of("/refused-1013")
    expect_eq(cl.code, 1013, "code_refused = 1013")


def t_unreachable_1011():
    cl, _ = close_of("/unreach")
    expect_eq(cl.code, 1011, "unreachable -> Close code")
    expect(has(cl.reason, "unreach"), "reason should say unreachable: %r" % cl.reason)


def t_unreachable_override():
    cl, _ = close_of("/unreach-1014")
    expect_eq(cl.code, 1014, "code_unreachable = 1014")


def blackhole_or_skip():
    if not UP["black"].works():
        raise Skip("a full-backlog listener does not stall connects here, "
                   "so a connect timeout cannot be produced on loopback")


def t_timeout_1011():
    blackhole_or_skip()
    # The connect starts at the upgrade: the Close comes no sooner than
    # connect_timeout after the request, not long after it after the 101.
    cl, c = close_of("/timeout", timeout=8)
    expect_eq(cl.code, 1011, "connect timeout -> Close code")
    expect(has(cl.reason, "timeout", "timed out"),
           "reason should name the timeout: %r" % cl.reason)
    took = c.closed_at - c.sent_at
    expect(took >= T(0.5) - CLOCK_SLACK, "Close %.2f s after the request, "
           "before connect_timeout %.2f s" % (took, T(0.5)))
    late = c.closed_at - c.open_at
    expect(late <= T(0.5) + grace(c.rtt), "Close only %.2f s after the 101 "
           "(connect_timeout %.2f s)" % (late, T(0.5)))


def t_timeout_override():
    blackhole_or_skip()
    cl, _ = close_of("/timeout-1013", timeout=8)
    expect_eq(cl.code, 1013, "code_timeout = 1013")


def t_dns_1011():
    cl, _ = close_of("/dns")
    expect_eq(cl.code, 1011, "DNS failure -> Close code")
    expect(has(cl.reason, "dns", "resol", "name"),
           "reason should name the DNS failure: %r" % cl.reason)


def t_dns_override():
    cl, _ = close_of("/dns-1014")
    expect_eq(cl.code, 1014, "code_dns = 1014")


def t_unix_missing():
    cl, _ = close_of("/unix-missing")
    expect_eq(cl.code, 1011, "missing unix socket -> Close code")
    expect(cl.reason != "", "reason should say why")


def t_client_errors_on_tcp_route():
    for frame, code in ((build_frame(OP_TEXT, b"x", mask=False), 1002),
                        (build_frame(0x3, b"x"), 1002),
                        (build_frame(OP_TEXT, b"bad \xc3\x28"), 1007)):
        c = RawWS(gw().port, "/sink", timeout=T(5))
        c.send(frame)
        cl = c.expect_close(T(5))
        expect_eq(cl.code, code, "close code for %r" % frame[:12])
        c.send_close(code)
        expect(c.wait_eof(T(3)) in ("eof", "rst"), "TCP not closed")
        c.close()


def t_log_has_codes():
    # "logged as": the access log (or log) names the codes sent.
    # A session's access line is written once it is freed, a moment after
    # the client saw its close: wait for each (bounded) before judging.
    missing = []
    for code in ("1000", "1011", "1013", "1014", "1002", "1007"):
        if not gw().wait_log(r"\b%s\b" % code, T(3)):
            missing.append(code)
    expect(not missing, "codes %s never appear in the log" % missing)


def t_still_serving():
    c = RawWS(gw().port, "/sink")
    c.send_binary(b"x")
    c.send_close(1000)
    expect_eq(c.expect_close(T(3)).code, 1000, "close")
    c.close()


# --- shutdown: 1001 -------------------------------------------------------------

def t_sigterm_1001():
    echo = EchoUpstream()
    sink = SinkUpstream()
    g = Gateway(limits={"drain_timeout": "%dms" % int(T(3) * 1000),
                        "close_timeout": "1s"},
                routes={"/echo": {"upstream": "echo"},
                        "/tcp": {"upstream": echo.addr},
                        "/sink": {"upstream": sink.addr}},
                name="shutdown gateway").start()
    clients = []
    try:
        for i in range(12):
            path = ("/echo", "/tcp", "/sink")[i % 3]
            c = RawWS(g.port, path, timeout=T(5))
            clients.append(c)
        # one mid-stream: data in flight toward the client
        clients[1].send_binary(pattern_bytes(100000))
        # a client still in its handshake
        half = socket.create_connection(("127.0.0.1", g.port), timeout=T(5))
        half.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
        time.sleep(0.2)
        t0 = time.monotonic()
        g.signal(15)
        codes = []
        for c in clients:
            got = []
            try:
                cl = c.expect_close(T(5), collect=got)
                codes.append(cl.code)
                c.send_close(cl.code)
            except (TestFailure, OSError) as e:
                codes.append("error: %s" % e)
        expect(all(code == 1001 for code in codes),
               "close codes on SIGTERM: %r" % codes)
        # no new sessions while draining
        try:
            late = RawWS(g.port, "/echo", timeout=T(2), connect_only=True)
            late.handshake(check=False)
            st = late.status
            late.close()
        except (OSError, EOFError):
            st = "refused/closed"
        expect(st != 101, "a new client was upgraded after SIGTERM")
        half.settimeout(T(5))
        try:
            while half.recv(4096):
                pass
        except OSError:
            pass
        half.close()
        # SIGTERM went out at t0: the exit is due by drain_timeout after it.
        limit = T(3) + grace(*(c.rtt for c in clients))
        try:
            rc = g.proc.wait(timeout=max(0.01, t0 + limit - time.monotonic()))
        except Exception:
            raise TestFailure("gateway did not exit within the drain timeout "
                              "after SIGTERM")
        took = time.monotonic() - t0
        expect_eq(rc, 0, "exit status after SIGTERM (log tail:\n%s)"
                  % "\n".join(g.log_text().splitlines()[-20:]))
        expect(took <= limit, "exit took %.2f s (drain_timeout %.2f s)"
               % (took, T(3)))
    finally:
        for c in clients:
            c.close()
        g.kill()
        echo.stop()
        sink.stop()


def t_sigterm_drain_timeout():
    # Clients that never answer the 1001 Close: the gateway still exits 0
    # once the drain timeout passes.
    g = Gateway(limits={"drain_timeout": "%dms" % int(T(1) * 1000),
                        "close_timeout": "30s"},
                routes={"/echo": {"upstream": "echo"}},
                name="drain gateway").start()
    clients = [RawWS(g.port, "/echo", timeout=T(5)) for _ in range(3)]
    try:
        t0 = time.monotonic()
        g.signal(15)
        limit = T(1) + grace(*(c.rtt for c in clients))
        try:
            rc = g.proc.wait(timeout=limit)
        except Exception:
            raise TestFailure("gateway still running %.1f s after SIGTERM "
                              "(drain_timeout %.1f s)" % (limit, T(1)))
        took = time.monotonic() - t0
        expect_eq(rc, 0, "exit status")
        expect(took >= T(1) - CLOCK_SLACK, "exit %.2f s after SIGTERM, "
               "before drain_timeout %.2f s although no client answered "
               "its Close" % (took, T(1)))
        expect(took <= limit, "exit took %.2f s (drain_timeout %.2f s)"
               % (took, T(1)))
        for c in clients:
            cl = c.expect_close(T(2))
            expect_eq(cl.code, 1001, "close code")
    finally:
        for c in clients:
            c.close()
        g.kill()


TESTS = [
    ("upstream FIN: all data flushed, then Close 1000", t_fin_1000),
    ("upstream RST: Close 1011, reason mentions reset", t_reset_1011),
    ("upstream RST with code_reset = 1014", t_reset_override),
    ("upstream RST with on_reset = abort: client sees TCP RST", t_reset_abort),
    ("refused: Close 1011, reason names it", t_refused_1011),
    ("refused with code_refused = 1013", t_refused_override),
    ("unreachable: Close 1011, reason names it", t_unreachable_1011),
    ("unreachable with code_unreachable = 1014", t_unreachable_override),
    ("connect timeout: Close 1011 after connect_timeout, reason names it", t_timeout_1011),
    ("connect timeout with code_timeout = 1013", t_timeout_override),
    ("DNS failure (.invalid): Close 1011, reason names it", t_dns_1011),
    ("DNS failure with code_dns = 1014", t_dns_override),
    ("missing unix socket: Close 1011", t_unix_missing),
    ("client protocol error / invalid UTF-8 on a TCP route: 1002 / 1007", t_client_errors_on_tcp_route),
    ("close codes appear in the log", t_log_has_codes),
    ("still serving", t_still_serving),
    ("SIGTERM with live sessions: every client gets 1001, exit 0", t_sigterm_1001),
    ("SIGTERM with clients that never answer: exit 0 at drain_timeout", t_sigterm_drain_timeout),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=100,
              finish=[("gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: gw().check_stop())])
