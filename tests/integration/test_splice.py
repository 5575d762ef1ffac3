#!/usr/bin/python3
"""
test_splice.py - `splice = on`: upstream bytes moved to plain clients with
splice(2).  Every test of test_bridge.py runs again on a gateway with
splice on (downloads to fast and slow readers, max_frame, FIN and Close,
text routes, unix upstreams, vanishing clients, echo both ways), then:
the spliced-bytes counter moves for a binary download and not for a text
route or a gateway with splice off; an upstream reset in the middle of a
spliced download still gives Close 1011 (on_reset = close) or a TCP RST
(on_reset = abort), and the gateway keeps serving.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_bridge as B  # noqa: E402
from wsgate_harness import (  # noqa: E402
    Close, Gateway, RawWS, ResetUpstream, SourceUpstream, T, expect,
    expect_eq, once, pattern_bytes, run_tests)

B.GATEWAY["splice"] = "on"
B.ADMIN = True

DATA = pattern_bytes(3 << 20, 61)
PREFIX = pattern_bytes(600000, 62)
UP = {}


def spliced(g):
    """wsgate_spliced_bytes_total of gateway G."""
    st, _, body = g.admin_get("/metrics")
    expect_eq(st, 200, "/metrics status")
    m = re.search(r"^wsgate_spliced_bytes_total (\d+)$", body, re.M)
    expect(m is not None, "no wsgate_spliced_bytes_total in /metrics")
    return int(m.group(1))


def _start_routes():
    UP["data"] = SourceUpstream(DATA, chunk=256 * 1024)
    UP["reset"] = ResetUpstream(prefix=PREFIX, delay=0.3)
    UP["text"] = SourceUpstream(b"text route " * 20000, chunk=65536)
    return UP


routes = once(_start_routes)


def _gateway(splice):
    r = routes()
    return Gateway(
        gateway={"splice": splice}, admin=True,
        limits={"close_timeout": "1s"},
        routes={
            "/data": {"upstream": r["data"].addr},
            "/reset": {"upstream": r["reset"].addr},
            "/abort": {"upstream": r["reset"].addr, "on_reset": "abort"},
            "/text": {"upstream": r["text"].addr, "frame_type": "text"},
        },
        name="splice-" + splice).start()


gw_on = once(lambda: _gateway("on"))
gw_off = once(lambda: _gateway("off"))


def download(g, path, op=0x2):
    """All data messages of PATH up to the Close: (bytes, Close)."""
    c = RawWS(g.port, path, timeout=T(10))
    data = bytearray()
    deadline = time.monotonic() + T(20)
    while True:
        m = c.recv_message(max(0.01, deadline - time.monotonic()))
        if isinstance(m, Close):
            break
        expect_eq(m[0], op, "message opcode")
        data += m[1]
    try:
        c.send_close(1000)
    except OSError:
        pass
    c.close()
    return bytes(data), m


def t_counter_moves_for_binary():
    g = gw_on()
    before = spliced(g)
    data, cl = download(g, "/data")
    expect_eq(len(data), len(DATA), "bytes before the Close")
    expect(data == DATA, "bytes differ")
    expect_eq(cl.code, 1000, "upstream FIN -> Close 1000")
    moved = spliced(g) - before
    expect(0 < moved <= len(DATA), "spliced %d of %d bytes" % (moved, len(DATA)))


def t_text_route_not_spliced():
    g = gw_on()
    before = spliced(g)
    data, cl = download(g, "/text", op=0x1)
    expect_eq(data, b"text route " * 20000, "text payload")
    expect_eq(cl.code, 1000, "close code")
    expect_eq(spliced(g) - before, 0, "bytes spliced on a text route")


def t_off_not_spliced():
    g = gw_off()
    data, cl = download(g, "/data")
    expect(data == DATA, "bytes differ")
    expect_eq(cl.code, 1000, "close code")
    expect_eq(spliced(g), 0, "bytes spliced with splice = off")


def t_reset_mid_download_1011():
    got, cl = download(gw_on(), "/reset")
    expect_eq(cl.code, 1011, "close code after the upstream reset")
    expect("reset" in cl.reason, "reason %r does not mention the reset"
           % cl.reason)
    expect(PREFIX.startswith(got), "bytes before the reset differ")


def t_reset_mid_download_abort():
    c = RawWS(gw_on().port, "/abort", timeout=T(10))
    deadline = time.monotonic() + T(10)
    end = None
    try:
        while time.monotonic() < deadline:
            m = c.recv_message(max(0.01, deadline - time.monotonic()))
            if isinstance(m, Close):
                end = "close %r" % (m,)
                break
    except ConnectionResetError:
        end = "rst"
    except (OSError, EOFError) as e:
        end = "error %r" % (e,)
    expect_eq(end, "rst", "on_reset = abort: what the client saw")
    c.close()


def t_still_serving():
    data, cl = download(gw_on(), "/data")
    expect(data == DATA, "bytes differ after the error cases")


TESTS = [("[splice = on] " + name, fn) for name, fn in B.TESTS] + [
    ("binary download: spliced-bytes counter moves, bytes whole", t_counter_moves_for_binary),
    ("frame_type = text: nothing spliced", t_text_route_not_spliced),
    ("splice = off: nothing spliced", t_off_not_spliced),
    ("upstream reset mid-download: Close 1011 naming the reset", t_reset_mid_download_1011),
    ("upstream reset mid-download, on_reset = abort: client sees RST", t_reset_mid_download_abort),
    ("still serving after the resets", t_still_serving),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=160,
              finish=[("gateways exit 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: [g().check_stop() for g in (B.gw, gw_on, gw_off)])])
