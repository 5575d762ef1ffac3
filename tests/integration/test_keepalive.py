#!/usr/bin/python3
"""
test_keepalive.py - server pings at ping_interval; a client that answers
stays, one that never answers is dropped after pong_timeout (logged 1006,
never written on the wire); the idle timeout.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    CLOCK_SLACK, need_websockets, once,
    OP_PING, OP_PONG, OP_TEXT, T, Close, Gateway, RawWS, ServerViolation,
    TestFailure, arun, expect, expect_eq, grace, run_tests, ws_uri)

# The pong window is what a busy machine gets to read a ping and answer it.
# Kept below PING: a ping is checked for its pong only at pong_timeout, so a
# longer one would space the pings by it instead.
PING = 0.6
PONG = 0.5
IDLE = 1.0


def ms(s):
    return "%dms" % int(s * 1000)


def _start_gw():
    return Gateway(limits={"ping_interval": ms(T(PING)),
                           "pong_timeout": ms(T(PONG)),
                           "close_timeout": "1s"},
                   routes={"/echo": {"upstream": "echo"}},
                   name="ping gateway").start()


gw = once(_start_gw)


def _start_gw_idle():
    return Gateway(limits={"idle_timeout": ms(T(IDLE)),
                           "ping_interval": "0",
                           "close_timeout": "1s"},
                   routes={"/echo": {"upstream": "echo"}},
                   name="idle gateway").start()


gw_idle = once(_start_gw_idle)


def t_server_pings():
    # A ping goes out ping_interval after the last frame from the client
    # (the request, then each pong): the third one no sooner than three
    # intervals after the request went out, and not long after three
    # intervals from the 101.
    c = RawWS(gw().port, "/echo", timeout=T(5))
    pings = []
    deadline = c.open_at + T(PING) * 3 + grace(c.rtt)
    while len(pings) < 3 and time.monotonic() < deadline:
        try:
            f = c.recv_frame(max(0.01, deadline - time.monotonic()))
        except socket.timeout:
            break
        except (EOFError, ConnectionResetError):
            raise TestFailure("the server closed the connection %.2f s in, "
                              "after %d pings each answered at once"
                              % (time.monotonic() - c.open_at, len(pings)))
        expect_eq(f.opcode, OP_PING, "frame from an idle session")
        pings.append(time.monotonic())
        c.send_frame(OP_PONG, f.payload)
    c.close()
    expect(len(pings) == 3, "%d pings in %.1f s with ping_interval %.1f s"
           % (len(pings), deadline - c.open_at, T(PING)))
    third = pings[2] - c.sent_at
    expect(third >= T(PING) * 3 - CLOCK_SLACK, "three pings %.2f s after "
           "the request, with ping_interval %.1f s" % (third, T(PING)))


def t_answering_client_survives():
    c = RawWS(gw().port, "/echo", timeout=T(5))
    end = time.monotonic() + T(PING + PONG) * 3
    n = 0
    while time.monotonic() < end:
        try:
            f = c.recv_frame(max(0.01, end - time.monotonic()))
        except socket.timeout:
            break
        except (EOFError, ConnectionResetError):
            raise TestFailure("the server closed the connection after %d "
                              "pings each answered at once" % n)
        if f.opcode == OP_PING:
            c.send_frame(OP_PONG, f.payload)
            n += 1
        else:
            raise ServerViolation("unexpected frame %r (closed?)" % f)
    c.send_text("still here")
    m = c.recv_message(T(3), answer_pings=True)
    expect_eq(m, (OP_TEXT, b"still here"), "echo after %d ping rounds" % n)
    c.close()


def t_silent_client_dropped():
    # Reads everything but never answers a ping.
    # The drop comes ping_interval + pong_timeout after the upgrade: no
    # sooner than that after the request, not long after that after the 101.
    c = RawWS(gw().port, "/echo", timeout=T(5))
    deadline = c.open_at + T(PING + PONG) + grace(c.rtt)
    how = None
    frames = []
    while time.monotonic() < deadline:
        try:
            f = c.recv_frame(max(0.01, deadline - time.monotonic()))
        except EOFError:
            how = "eof"
            break
        except ConnectionResetError:
            how = "rst"
            break
        except socket.timeout:
            break
        frames.append(f)
        if f.opcode == 0x8:
            c._close_of(f)  # checks 1005/1006/1015 are not on the wire
    took = time.monotonic() - c.sent_at
    c.close()
    expect(how is not None, "a client that never answers pings is still "
           "connected after %.1f s (ping %.1f s + pong timeout %.1f s)"
           % (took, T(PING), T(PONG)))
    expect(took >= T(PING + PONG) - CLOCK_SLACK, "dropped %.2f s after the "
           "request, before ping_interval + pong_timeout %.2f s"
           % (took, T(PING + PONG)))
    expect(gw().wait_log(r"1006", T(2)) is not None,
           "the dropped session is not logged as 1006")


def t_ping_while_data_flows():
    c = RawWS(gw().port, "/echo", timeout=T(5))
    for i in range(10):
        c.send_text("m%d" % i)
        m = c.recv_message(T(3), answer_pings=True)
        expect_eq(m, (OP_TEXT, b"m%d" % i), "echo")
        time.sleep(T(PING) / 2)
    c.close()


def t_idle_timeout_closes():
    # The idle timer starts at the upgrade: the close comes no sooner than
    # idle_timeout after the request went out (on a busy machine the 101
    # itself can take seconds), and not long after idle_timeout after the 101.
    c = RawWS(gw_idle().port, "/echo", timeout=T(5))
    deadline = c.open_at + T(IDLE) + grace(c.rtt)
    how = None
    while time.monotonic() < deadline:
        try:
            f = c.recv_frame(max(0.01, deadline - time.monotonic()))
        except (EOFError, ConnectionResetError):
            how = "closed"
            break
        except socket.timeout:
            break
        if f.opcode == 0x8:
            cl = c._close_of(f)
            how = "close %r" % (cl,)
            c.send_close(cl.code)
            break
    took = time.monotonic() - c.sent_at
    c.close()
    expect(how is not None, "idle session still open after %.1f s "
           "(idle_timeout %.1f s)" % (took, T(IDLE)))
    expect(took >= T(IDLE) - CLOCK_SLACK, "closed %.2f s after the request "
           "(101 after %.2f s), before idle_timeout %.2f s"
           % (took, c.rtt, T(IDLE)))


def t_idle_timeout_reset_by_traffic():
    # A message every idle_timeout / 4, counted from the previous send (not
    # from its echo, which a busy machine can delay).
    c = RawWS(gw_idle().port, "/echo", timeout=T(5))
    end = c.open_at + T(IDLE) * 2.5
    n = 0
    prev = c.sent_at
    while time.monotonic() < end:
        now = time.monotonic()
        c.send_text("t%d" % n)
        m = c.recv_message(T(3))
        expect(not isinstance(m, Close), "closed while active: %r (message "
               "sent %.2f s after the previous one; idle_timeout %.2f s)"
               % (m, now - prev, T(IDLE)))
        n += 1
        prev = now
        time.sleep(max(0.0, now + T(IDLE) / 4 - time.monotonic()))
    c.close()


def t_websockets_client_survives():
    # python-websockets answers pings by itself.
    import asyncio
    websockets = need_websockets()

    async def go():
        async with websockets.connect(
                ws_uri(gw().port, "/echo"), ping_interval=None,
                open_timeout=T(5), close_timeout=T(3)) as ws:
            await asyncio.sleep(T(PING + PONG) * 3)
            await ws.send("after the pings")
            return await asyncio.wait_for(ws.recv(), T(3))
    try:
        got = arun(go(), 20)
    except websockets.exceptions.ConnectionClosed as e:
        raise TestFailure("python-websockets client (auto-pong) was dropped: "
                          "%s" % e)
    expect_eq(got, "after the pings", "echo")


TESTS = [
    ("server pings every ping_interval", t_server_pings),
    ("a client answering pings stays connected", t_answering_client_survives),
    ("a client that never answers is dropped after pong_timeout, logged 1006", t_silent_client_dropped),
    ("pings interleave with data", t_ping_while_data_flows),
    ("python-websockets client (auto-pong) stays connected", t_websockets_client_survives),
    ("idle_timeout closes a silent session", t_idle_timeout_closes),
    ("traffic keeps a session past idle_timeout", t_idle_timeout_reset_by_traffic),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=60,
              finish=[("ping gateway exits 0 on SIGTERM", lambda: gw().check_stop()),
                      ("idle gateway exits 0 on SIGTERM", lambda: gw_idle().check_stop())])
