#!/usr/bin/python3
"""
test_handshake.py - the HTTP side of wsgate: the upgrade, each handshake
error status (404/426/400/405/431/505) with its short body and
Connection: close, subprotocol selection, and the slowloris timeout.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    CLOCK_SLACK, grace, once,
    FIXED_ACCEPT, FIXED_KEY, HOST, OP_BINARY, OP_TEXT, T, EchoUpstream,
    Gateway, RawWS, accept_for, build_frame, expect, expect_eq,
    http_exchange, http_request, parse_head, run_tests)

HS_TIMEOUT = 1.0  # seconds (handshake_timeout)


def _start_gw():
    up = EchoUpstream()
    return Gateway(
        limits={"handshake_timeout": "%dms" % int(T(HS_TIMEOUT) * 1000),
                "max_request_line": "1k", "max_header_bytes": "2k"},
        routes={"/echo": {"upstream": "echo", "subprotocols": "binary"},
                "/proto": {"upstream": "echo",
                           "subprotocols": "chat, binary"},
                "/tcp": {"upstream": up.addr}},
        name="gateway").start()


gw = once(_start_gw)


def check_error(resp, status):
    """Common shape of every handshake error response."""
    expect_eq(resp.status, status, "status (response %r)" % resp.raw[:200])
    conn = [t.strip().lower() for t in (resp.header("connection") or "").split(",")]
    expect("close" in conn, "Connection: close missing (headers %r)" % resp.headers)
    cl = resp.header("content-length")
    expect(cl is not None and cl.isdigit(), "Content-Length missing/bad: %r" % cl)
    expect_eq(int(cl), len(resp.body), "Content-Length vs body length")
    expect(0 < len(resp.body) <= 512, "body should be short text, got %r" % resp.body)
    try:
        resp.body.decode("utf-8")
    except UnicodeDecodeError:
        expect(False, "body is not text: %r" % resp.body)
    ct = resp.header("content-type") or ""
    expect(ct.startswith("text/"), "Content-Type should be text/*, got %r" % ct)
    expect(resp.closed, "server did not close the connection after %d" % status)
    expect(resp.header("sec-websocket-accept") is None,
           "error response must not carry Sec-WebSocket-Accept")


def err(request, status, **kw):
    resp = http_exchange(gw().port, request, timeout=T(5), **kw)
    check_error(resp, status)
    return resp


# --- successful upgrades -------------------------------------------------

def t_upgrade_ok():
    ws = RawWS(gw().port, "/echo")
    expect_eq(ws.headers.get("sec-websocket-accept"), FIXED_ACCEPT,
              "accept for the RFC 6455 sample key")
    expect(ws.headers.get("sec-websocket-protocol") is None,
           "no subprotocol offered -> no Sec-WebSocket-Protocol header, got %r"
           % ws.headers.get("sec-websocket-protocol"))
    ws.send_text("hello")
    expect_eq(ws.recv_message(T(3)), (OP_TEXT, b"hello"), "echo")
    ws.send_close(1000)
    ws.expect_close_then_eof(1000, T(3), reply=False)
    ws.close()


def t_upgrade_byte_at_a_time():
    ws = RawWS(gw().port, "/echo", key="AQIDBAUGBwgJCgsMDQ4PEA==",
               connect_only=True)
    ws.send(ws.request, chunk=1)
    head = ws.read_head(T(5))
    status, _, headers = parse_head(head)
    expect_eq(status, 101, "status")
    expect_eq(headers.get("sec-websocket-accept"),
              accept_for("AQIDBAUGBwgJCgsMDQ4PEA=="), "accept")
    ws.send_binary(b"\x00\x01\x02", chunk=1)
    expect_eq(ws.recv_message(T(3)), (OP_BINARY, b"\x00\x01\x02"), "echo")
    ws.close()


def t_frame_in_same_write_as_request():
    ws = RawWS(gw().port, "/echo", connect_only=True)
    ws.handshake(extra=build_frame(OP_TEXT, b"early bird"))
    expect_eq(ws.recv_message(T(3)), (OP_TEXT, b"early bird"),
              "bytes after the request head are kept, not dropped")
    ws.close()


def t_query_string_routes_by_path():
    ws = RawWS(gw().port, "/echo?token=abc&x=1")
    ws.send_text("q")
    expect_eq(ws.recv_message(T(3)), (OP_TEXT, b"q"), "echo")
    ws.close()


def t_upgrade_tcp_route():
    ws = RawWS(gw().port, "/tcp")
    ws.send_binary(b"via tcp")
    got = b""
    deadline = time.monotonic() + T(3)
    while len(got) < 7 and time.monotonic() < deadline:
        op, data = ws.recv_message(T(3))
        expect_eq(op, OP_BINARY, "frame type toward the browser (default binary)")
        got += data
    expect_eq(got, b"via tcp", "bytes through the TCP echo upstream")
    ws.close()


# --- subprotocols --------------------------------------------------------

def proto_of(path, offer):
    ws = RawWS(gw().port, path, protocols=offer)
    p = ws.headers.get("sec-websocket-protocol")
    ws.close()
    return p


def t_subprotocol_selected():
    expect_eq(proto_of("/echo", "foo, binary"), "binary",
              "route accepts binary; client offers foo, binary")


def t_subprotocol_client_order():
    expect_eq(proto_of("/proto", "binary, chat"), "binary",
              "first of the client's offers that the route accepts")
    expect_eq(proto_of("/proto", "chat, binary"), "chat",
              "first of the client's offers that the route accepts")
    expect_eq(proto_of("/proto", "x, y,  chat"), "chat", "offer list parsing")


def t_subprotocol_none_acceptable():
    # Not pinned by the spec: either 101 without the header (RFC 6455 4.2.2
    # allows selecting none) or a handshake error; never a header the
    # client did not offer.
    req = http_request("/echo", protocols="foo, bar")
    resp = http_exchange(gw().port, req, timeout=T(2))
    if resp.status == 101:
        expect(resp.header("sec-websocket-protocol") is None,
               "selected a protocol the client did not offer: %r"
               % resp.header("sec-websocket-protocol"))
    else:
        check_error(resp, resp.status)
        expect(400 <= resp.status < 500, "status %d" % resp.status)


def t_subprotocol_multiple_headers():
    req = http_request("/proto", extra_headers=("Sec-WebSocket-Protocol: foo",
                                               "Sec-WebSocket-Protocol: chat"))
    resp = http_exchange(gw().port, req, timeout=T(2))
    expect_eq(resp.status, 101, "status")
    expect_eq(resp.header("sec-websocket-protocol"), "chat",
              "offers split over two header fields")


# --- errors ----------------------------------------------------------------

def t_404_unrouted():
    err(http_request("/nope"), 404)


def t_404_unrouted_plain_get():
    err(http_request("/nope", upgrade=False), 404)


def t_426_plain_get():
    r = err(http_request("/echo", upgrade=False), 426)
    expect_eq(r.header("sec-websocket-version"), "13",
              "426 carries Sec-WebSocket-Version: 13")


def t_426_bad_version():
    r = err(http_request("/echo", version="8"), 426)
    expect_eq(r.header("sec-websocket-version"), "13",
              "426 carries Sec-WebSocket-Version: 13")


def t_426_missing_version():
    r = err(http_request("/echo", version=None), 426)
    expect_eq(r.header("sec-websocket-version"), "13",
              "426 carries Sec-WebSocket-Version: 13")


def t_400_bad_key():
    err(http_request("/echo", key="c2hvcnQ="), 400)  # 5 bytes, not 16


def t_400_key_not_base64():
    err(http_request("/echo", key="!!!!!!!!!!!!!!!!!!!!!!=="), 400)


def t_400_missing_key():
    err(http_request("/echo", key=None), 400)


def t_400_missing_host():
    err(http_request("/echo", host=None), 400)


def t_400_empty_host():
    # RFC 9112 3.2, RFC 6455 4.1: a Host with no value (or only
    # whitespace) is as bad as none
    for host in ("", " ", " \t "):
        req = http_request("/echo", host=None).replace(
            b"\r\n", ("\r\nHost:%s\r\n" % host).encode(), 1)
        resp = err(req, 400)
        expect(b"empty Host" in resp.body,
               "Host:%r: body names the rule: %r" % (host, resp.body))


def t_400_connection_without_upgrade():
    req = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           b"Connection: keep-alive\r\nSec-WebSocket-Key: " + FIXED_KEY.encode() +
           b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    err(req, 400)


def t_400_garbage_request_line():
    err(b"HELLO\r\n\r\n", 400)


def t_405_post():
    err(http_request("/echo", method="POST"), 405)


def t_431_headers_too_large():
    big = ("X-Filler: " + "a" * 4000,)
    err(http_request("/echo", extra_headers=big), 431)


def t_431_many_headers_over_bytes():
    many = tuple("X-H%d: %s" % (i, "v" * 40) for i in range(100))
    err(http_request("/echo", extra_headers=many), 431)


def t_505_http10():
    err(http_request("/echo", http="HTTP/1.0"), 505)


def t_error_split_writes():
    err(http_request("/echo", method="POST"), 405, chunk=3)


# --- handshake timeout (slowloris) ------------------------------------------

def t_slowloris_partial_head():
    t0 = time.monotonic()  # the timer starts at the accept
    s = socket.create_connection((HOST, gw().port), timeout=T(5))
    s.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n")
    how = None
    s.settimeout(T(HS_TIMEOUT) + T(3))
    try:
        while True:
            d = s.recv(4096)
            if not d:
                how = "eof"
                break
    except socket.timeout:
        how = "timeout"
    except ConnectionResetError:
        how = "rst"
    took = time.monotonic() - t0
    s.close()
    expect(how in ("eof", "rst"), "incomplete handshake not closed within "
           "%.1f s (handshake_timeout %.1f s)" % (T(HS_TIMEOUT) + T(3), T(HS_TIMEOUT)))
    expect(took >= T(HS_TIMEOUT) - CLOCK_SLACK, "closed after %.2f s, "
           "before the handshake timeout %.2f s" % (took, T(HS_TIMEOUT)))


def t_slowloris_dribble():
    # One byte every 100 ms: the timeout covers the whole handshake, so
    # trickling bytes must not keep the connection alive.
    s = socket.create_connection((HOST, gw().port), timeout=T(5))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = http_request("/echo", extra_headers=("X-Pad: " + "p" * 100,))
    t0 = time.monotonic()
    closed_at = None
    for i in range(len(req) - 1):
        try:
            s.sendall(req[i:i + 1])
        except OSError:
            closed_at = time.monotonic() - t0
            break
        time.sleep(0.1)
        if time.monotonic() - t0 > T(HS_TIMEOUT) + T(3):
            break
        # was it closed?
        s.setblocking(False)
        try:
            d = s.recv(4096)
            if d == b"" or d:
                closed_at = time.monotonic() - t0
                break
        except BlockingIOError:
            pass
        except ConnectionResetError:
            closed_at = time.monotonic() - t0
            break
        finally:
            s.setblocking(True)
            s.settimeout(T(5))
    s.close()
    expect(closed_at is not None, "a client trickling its handshake one "
           "byte per 100 ms was not closed within %.1f s"
           % (T(HS_TIMEOUT) + T(3)))
    expect(closed_at <= T(HS_TIMEOUT) + grace(), "closed only after %.2f s"
           % closed_at)


def t_silent_connection_closed():
    s = socket.create_connection((HOST, gw().port), timeout=T(5))
    t0 = time.monotonic()
    s.settimeout(T(HS_TIMEOUT) + T(3))
    try:
        d = s.recv(4096)
        how = "data" if d else "eof"
        while d:
            d = s.recv(4096)
            how = "eof"
    except socket.timeout:
        how = "timeout"
    except ConnectionResetError:
        how = "rst"
    s.close()
    expect(how in ("eof", "rst"), "silent connection not closed (%s after "
           "%.1f s)" % (how, time.monotonic() - t0))


def t_max_connections():
    g = Gateway(gateway={"max_connections": "3"},
                routes={"/echo": {"upstream": "echo"}},
                name="max_connections gateway").start()
    held = []
    try:
        held = [RawWS(g.port, "/echo", timeout=T(5)) for _ in range(3)]
        resp = http_exchange(g.port, http_request("/echo"), timeout=T(5))
        expect(resp.status != 101, "a 4th session was upgraded with "
               "max_connections = 3")
        check_error(resp, resp.status)
        expect(500 <= resp.status < 600, "status %d for an over-limit "
               "connection (want 5xx, e.g. 503)" % resp.status)
        held.pop().close()
        ok = False
        deadline = time.monotonic() + T(3)
        while not ok and time.monotonic() < deadline:
            r = http_exchange(g.port, http_request("/echo"), timeout=T(1))
            ok = r.status == 101
            if not ok:
                time.sleep(0.1)
        expect(ok, "no new session after one of the 3 closed")
        g.check_stop()
    finally:
        for c in held:
            c.close()
        g.kill()


def t_still_serving():
    # After all of the above, the gateway still works.
    t_upgrade_ok()


TESTS = [
    ("101 upgrade: RFC sample key accept, no protocol header, echo", t_upgrade_ok),
    ("101 upgrade with the request written byte by byte", t_upgrade_byte_at_a_time),
    ("frame sent in the same write as the request is not lost", t_frame_in_same_write_as_request),
    ("route matched by path, query string ignored", t_query_string_routes_by_path),
    ("101 on a TCP route; upstream bytes arrive as binary frames", t_upgrade_tcp_route),
    ("subprotocol: the accepted offer is echoed", t_subprotocol_selected),
    ("subprotocol: the client's order decides", t_subprotocol_client_order),
    ("subprotocol: no acceptable offer -> no header (or an error)", t_subprotocol_none_acceptable),
    ("subprotocol: offers in two header fields", t_subprotocol_multiple_headers),
    ("404 for a path with no route", t_404_unrouted),
    ("404 for a plain GET with no route", t_404_unrouted_plain_get),
    ("426 + Sec-WebSocket-Version: 13 for a plain GET on a route", t_426_plain_get),
    ("426 + Sec-WebSocket-Version: 13 for version 8", t_426_bad_version),
    ("426 + Sec-WebSocket-Version: 13 for a missing version", t_426_missing_version),
    ("400 for a key that is not 16 bytes", t_400_bad_key),
    ("400 for a key that is not base64", t_400_key_not_base64),
    ("400 for a missing key", t_400_missing_key),
    ("400 for a missing Host", t_400_missing_host),
    ("400 for an empty or whitespace-only Host", t_400_empty_host),
    ("400 for Connection without upgrade", t_400_connection_without_upgrade),
    ("400 for a garbage request line", t_400_garbage_request_line),
    ("405 for POST", t_405_post),
    ("431 for one header over max_header_bytes", t_431_headers_too_large),
    ("431 for many headers over max_header_bytes", t_431_many_headers_over_bytes),
    ("505 for HTTP/1.0", t_505_http10),
    ("error response also when the request arrives in 3-byte pieces", t_error_split_writes),
    ("handshake timeout closes a partial request (slowloris)", t_slowloris_partial_head),
    ("handshake timeout closes a client trickling bytes", t_slowloris_dribble),
    ("handshake timeout closes a connection that sends nothing", t_silent_connection_closed),
    ("max_connections: the next client gets a 5xx, room frees on close", t_max_connections),
    ("still serving after the error cases", t_still_serving),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=90,
              finish=[("gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: gw().check_stop())])
