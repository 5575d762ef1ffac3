#!/usr/bin/python3
"""
test_bridge.py - bytes through the bridge with real TCP upstreams and a raw
client: client -> upstream payload streaming (fragments, masks, byte at a
time, data held while connecting; many frames in one read, gathered into one
send, with pings, a bad frame, a split header, or an upstream that does not
read between them), upstream -> client framing (max_frame,
binary/text frame types, UTF-8 held across reads, one message per upstream
read even to a client slow to read), flush-then-close in both
directions, a client that vanishes (FIN / RST), unix upstreams, latency
(TCP_NODELAY), and the access log.
"""

import hashlib
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    at_cleanup, once,
    OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_TEXT, T, Close, EchoUpstream,
    Gateway, RawWS,
    SinkUpstream, SourceUpstream, TestFailure, UnixEchoUpstream, build_frame,
    expect, expect_eq, grace, pattern_bytes, run_tests)

MAX_FRAME = 16384
SOURCE = pattern_bytes(1 << 20, 42)
BIG = pattern_bytes(12 << 20, 43)
# Valid UTF-8 sent in pieces that split code points (the gateway must hold
# a partial code point back at a read boundary).
TEXT = ("añ€𝄞 " * 3000).encode()
TEXT_PIECES = [TEXT[i:i + 7] for i in range(0, 700, 7)] + [TEXT[700:]]

UP = {}
# [gateway] keys and the admin endpoint of the gateway under test
# (test_splice.py runs these tests again with splice = on).
GATEWAY = {}
ADMIN = False


class LateSink(SinkUpstream):
    """A sink with a small receive buffer that starts reading only after
    DELAY s: the gateway's sends to it stop part way."""

    rcvbuf = 16384

    def __init__(self, delay):
        self.delay = delay
        super().__init__(keep_data=False)

    def handle(self, c, rec):
        time.sleep(self.delay)
        self.read_to_end(c, rec)


def _start_gw():
    UP["echo"] = EchoUpstream()
    UP["sink"] = SinkUpstream(keep_data=True)
    UP["sink2"] = SinkUpstream(keep_data=True)
    UP["batch"] = SinkUpstream(keep_data=True)
    UP["late"] = LateSink(delay=0.5)
    UP["vanish"] = SinkUpstream()
    UP["source"] = SourceUpstream(SOURCE, chunk=65536)
    UP["big"] = SourceUpstream(BIG, chunk=1 << 20)
    UP["text"] = SourceUpstream(TEXT_PIECES, pause=0.002)
    UP["textbad"] = SourceUpstream(b"fine so far \xff\xfe bad", chunk=8,
                                   pause=0.05)
    UP["dir"] = tempfile.mkdtemp(prefix="wsgate-unix-")
    at_cleanup(lambda: shutil.rmtree(UP["dir"], ignore_errors=True))
    UP["unix"] = UnixEchoUpstream(os.path.join(UP["dir"], "echo.sock"))
    return Gateway(
        gateway=dict(GATEWAY), admin=ADMIN,
        limits={"max_frame": "16k", "close_timeout": "1s"},
        routes={
            "/echo": {"upstream": UP["echo"].addr},
            "/proto": {"upstream": UP["echo"].addr,
                       "subprotocols": "binary"},
            "/sink": {"upstream": UP["sink"].addr},
            "/byname": {"upstream": "localhost:%d" % UP["sink2"].port},
            "/batch": {"upstream": UP["batch"].addr},
            "/late": {"upstream": UP["late"].addr},
            "/vanish": {"upstream": UP["vanish"].addr},
            "/source": {"upstream": UP["source"].addr},
            "/big": {"upstream": UP["big"].addr},
            "/text": {"upstream": UP["text"].addr, "frame_type": "text"},
            "/textbad": {"upstream": UP["textbad"].addr,
                         "frame_type": "text"},
            "/unix": {"upstream": UP["unix"].addr},
        },
        name="gateway").start()


gw = once(_start_gw)


def read_bytes(c, n, timeout, op=OP_BINARY):
    """Read data messages of opcode OP until N bytes; returns (data, frames)."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while len(data) < n:
        m = c.recv_message(max(0.01, deadline - time.monotonic()))
        if isinstance(m, Close):
            raise TestFailure("Close %r after %d of %d bytes" % (m, len(data), n))
        expect_eq(m[0], op, "message opcode")
        data += m[1]
    return bytes(data)


# --- client -> upstream ---------------------------------------------------------

def t_client_payload_streamed():
    c = RawWS(gw().port, "/sink")
    up = UP["sink"]
    rec = up.wait_conn(1, T(3))
    want = bytearray()
    c.send_text("plain text ✓")
    want += "plain text ✓".encode()
    c.send_binary(bytes(range(256)), mask_key=b"\x00\x00\x00\x00")
    want += bytes(range(256))
    c.send_frame(OP_BINARY, b"frag-", fin=False, mask_key=b"\xff\xff\xff\xff")
    c.send_frame(OP_CONT, b"ment", fin=False)
    c.send_frame(OP_CONT, b"-end")
    want += b"frag-ment-end"
    big = pattern_bytes(200000, 5)
    c.send_frame(OP_BINARY, big, chunk=1000)
    want += big
    c.send_frame(OP_TEXT, b"byte by byte", chunk=1)
    want += b"byte by byte"
    c.send_close(1000)
    cl = c.expect_close(T(5))
    expect_eq(cl.code, 1000, "close code")
    expect(rec.done.wait(T(3)), "upstream not closed after the client's Close")
    expect_eq(rec.end, "eof", "upstream end")
    expect_eq(rec.bytes_in, len(want), "bytes at the upstream")
    expect(bytes(rec.data_in) == bytes(want), "payload bytes differ")
    c.close()


def t_data_held_while_connecting():
    # Handshake and frames in one write to a route resolved by name: the
    # frames arrive before the upstream is connected and must be held.
    c = RawWS(gw().port, "/byname", connect_only=True)
    frames = b"".join(build_frame(OP_BINARY, b"early-%d;" % i) for i in range(20))
    c.handshake(extra=frames)
    rec = UP["sink2"].wait_conn(1, T(5))
    want = b"".join(b"early-%d;" % i for i in range(20))
    deadline = time.monotonic() + T(3)
    while rec.bytes_in < len(want) and time.monotonic() < deadline:
        time.sleep(0.02)
    expect(bytes(rec.data_in) == want, "upstream got %r" % bytes(rec.data_in[:80]))
    c.send_close(1000)
    c.expect_close(T(3))
    c.close()


def t_flush_before_upstream_close():
    c = RawWS(gw().port, "/sink")
    rec = UP["sink"].wait_conn(2, T(3))
    data = pattern_bytes(4 << 20, 9)
    for i in range(0, len(data), 256 * 1024):
        c.send_binary(data[i:i + 256 * 1024])
    c.send_close(1000)
    cl = c.expect_close(T(10))
    expect_eq(cl.code, 1000, "close code")
    expect(rec.done.wait(T(5)), "upstream never closed")
    expect_eq(rec.end, "eof", "upstream saw")
    expect_eq(rec.bytes_in, len(data), "bytes flushed before the upstream FIN")
    expect_eq(rec.sha_in.hexdigest(), hashlib.sha256(data).hexdigest(), "sha256")
    c.close()


def _mixed_frames():
    """Frames for one send, and the payload the upstream must get: data
    chunks of every kind with pings between them, more chunks than one
    gathered send takes (the gateway sends up to 16 at once)."""
    frames, want, pongs = [], bytearray(), []

    def data(op, payload, fin=True):
        frames.append(build_frame(op, payload, fin=fin))
        want.extend(payload)

    data(OP_BINARY, pattern_bytes(1000, 1))
    data(OP_TEXT, "héllo ✓".encode())
    frames.append(build_frame(OP_PING, b"p1"))
    pongs.append(b"p1")
    data(OP_BINARY, pattern_bytes(30000, 2), fin=False)
    data(OP_CONT, b"", fin=False)
    data(OP_CONT, pattern_bytes(40000, 3))
    data(OP_BINARY, b"")
    for i in range(40):
        data(OP_BINARY, pattern_bytes(100 + i, 10 + i))
    frames.append(build_frame(OP_PING, b"p2"))
    pongs.append(b"p2")
    data(OP_BINARY, pattern_bytes(5000, 4))
    return b"".join(frames), bytes(want), pongs


def _mixed_to_batch(n, extra=b""):
    """Connection N to /batch; send _mixed_frames() and EXTRA in one send
    and read the pongs.  Returns (client, upstream record, payload)."""
    c = RawWS(gw().port, "/batch")
    rec = UP["batch"].wait_conn(n, T(3))
    blob, want, pongs = _mixed_frames()
    c.send(blob + extra)
    for p in pongs:
        f = c.recv_frame(T(3))
        expect_eq(f.opcode, OP_PONG, "reply opcode")
        expect_eq(f.payload, p, "pong payload")
    return c, rec, want


def _upstream_got(rec, want):
    """The upstream connection REC got exactly WANT, then a FIN."""
    expect(rec.done.wait(T(5)), "upstream not closed")
    expect_eq(rec.end, "eof", "upstream end")
    expect_eq(rec.bytes_in, len(want), "bytes at the upstream")
    expect(bytes(rec.data_in) == want, "payload bytes differ")


def t_frames_in_one_send_in_order():
    # Many frames in one TCP send reach the gateway in one read: their
    # payload goes to the upstream gathered, in order, with the pings
    # between them answered.
    c, rec, want = _mixed_to_batch(1)
    c.send_close(1000)
    expect_eq(c.expect_close(T(5)).code, 1000, "close code")
    _upstream_got(rec, want)
    c.close()


def t_bad_frame_after_gathered_frames():
    # A protocol error in the same read as good frames: the good frames'
    # payload still reaches the upstream, then its FIN; the client gets 1002.
    c, rec, want = _mixed_to_batch(
        2, build_frame(OP_BINARY, b"naked", mask=False))
    expect_eq(c.expect_close(T(5)).code, 1002, "close code")
    _upstream_got(rec, want)
    c.close()


def t_header_split_after_gathered_data():
    # A read that ends inside a frame header, after data chunks: the header
    # bytes taken so far are not payload, and the frame completes with the
    # next read.
    c = RawWS(gw().port, "/batch")
    rec = UP["batch"].wait_conn(3, T(3))
    a, b2, d = pattern_bytes(3000, 21), pattern_bytes(70000, 22), b"tail"
    fa = build_frame(OP_BINARY, a) + build_frame(OP_TEXT, b"mid")
    fb = build_frame(OP_BINARY, b2)
    for cut in (1, 3, 9):
        c.send(fa + fb[:cut])
        time.sleep(0.1)
        c.send(fb[cut:] + build_frame(OP_BINARY, d))
    want = (a + b"mid" + b2 + d) * 3
    c.send_close(1000)
    expect_eq(c.expect_close(T(5)).code, 1000, "close code")
    _upstream_got(rec, want)
    c.close()


def t_gathered_send_cut_short():
    # An upstream that does not read for a while: the gateway's gathered
    # sends stop part way and the rest waits, in order, in its output.
    c = RawWS(gw().port, "/late", timeout=T(20))
    rec = UP["late"].wait_conn(1, T(3))
    h = hashlib.sha256()
    total = 0
    for k in range(12):
        sizes = [1 + (k * 7919 + i * 104729) % 70000 for i in range(24)]
        msgs = [pattern_bytes(n, k * 24 + i) for i, n in enumerate(sizes)]
        c.send(b"".join(build_frame(OP_BINARY, m) for m in msgs))
        for m in msgs:
            h.update(m)
            total += len(m)
    c.send_close(1000)
    expect_eq(c.expect_close(T(20)).code, 1000, "close code")
    expect(rec.done.wait(T(10)), "upstream not closed after the client's Close")
    expect_eq(rec.end, "eof", "upstream end")
    expect_eq(rec.bytes_in, total, "bytes at the upstream")
    expect_eq(rec.sha_in.hexdigest(), h.hexdigest(), "sha256 at the upstream")
    c.close()


# --- upstream -> client ---------------------------------------------------------

def _frames_to_close(c, timeout, pause_every=0):
    """C's data frames up to the server's Close, within TIMEOUT s, pausing
    10 ms every PAUSE_EVERY frames; returns (frames, Close)."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        f = c.recv_frame(max(0.01, deadline - time.monotonic()))
        if f.opcode == 0x8:
            return frames, c._close_of(f)
        frames.append(f)
        if pause_every and len(frames) % pause_every == 0:
            time.sleep(0.01)


def t_source_then_fin_1000():
    c = RawWS(gw().port, "/source", timeout=T(10))
    frames, cl = _frames_to_close(c, T(10))
    for f in frames:
        expect(f.opcode in (OP_BINARY, OP_CONT), "frame %r" % f)
    data = b"".join(f.payload for f in frames)
    biggest = max(len(f.payload) for f in frames)
    expect_eq(len(data), len(SOURCE), "bytes before the Close")
    expect(data == SOURCE, "bytes differ")
    expect_eq(cl.code, 1000, "upstream FIN -> Close 1000")
    expect(biggest <= MAX_FRAME, "frame of %d bytes > max_frame %d"
           % (biggest, MAX_FRAME))
    expect(len(frames) >= len(SOURCE) // MAX_FRAME,
           "only %d frames" % len(frames))
    c.send_close(1000)
    expect(c.wait_eof(T(3)) in ("eof", "rst"), "TCP not closed")
    c.close()


def t_download_frames_to_slow_reader():
    # Upstream reads of up to 256 KiB, cut at max_frame (16k here), go out
    # in one send per read while the client keeps up; a client that does
    # not read has those sends stop inside a frame, whose rest waits in the
    # output.  Either way every upstream read is one message: a Binary
    # frame, Continuations, FIN on the last.
    c = RawWS(gw().port, "/big", timeout=T(20), rcvbuf=16384)
    time.sleep(0.5)
    frames, cl = _frames_to_close(c, T(30), pause_every=64)
    in_message = False
    for i, f in enumerate(frames):
        expect_eq(f.opcode, OP_CONT if in_message else OP_BINARY,
                  "opcode of frame %d" % (i + 1))
        expect(len(f.payload) <= MAX_FRAME, "frame of %d bytes > max_frame"
               % len(f.payload))
        in_message = not f.fin
    messages = sum(f.fin for f in frames)
    data = b"".join(f.payload for f in frames)
    expect(not in_message, "Close inside a message")
    expect_eq(len(data), len(BIG), "bytes before the Close")
    expect(data == BIG, "bytes differ")
    expect_eq(cl.code, 1000, "upstream FIN -> Close 1000")
    expect(len(frames) > messages, "no message of several frames (%d frames)"
           % len(frames))
    c.send_close(1000)
    expect(c.wait_eof(T(3)) in ("eof", "rst"), "TCP not closed")
    c.close()


def t_text_frames_hold_partial_code_points():
    c = RawWS(gw().port, "/text", timeout=T(10))
    got = []
    cl = c.expect_close(T(15), collect=got)  # recv_message checks UTF-8
    ops = set(op for op, _ in got)
    expect_eq(ops, {OP_TEXT}, "opcodes toward the browser with frame_type=text")
    data = b"".join(d for _, d in got)
    expect_eq(len(data), len(TEXT), "bytes")
    expect(data == TEXT, "text differs")
    expect_eq(cl.code, 1000, "close after the upstream FIN")
    c.close()


def t_text_invalid_utf8_1011():
    c = RawWS(gw().port, "/textbad", timeout=T(5))
    got = []
    cl = c.expect_close(T(5), collect=got)
    expect_eq(cl.code, 1011, "invalid UTF-8 from the upstream on a text route")
    data = b"".join(d for _, d in got)
    expect(b"\xff" not in data, "invalid bytes reached the browser")
    c.close()


# --- client vanishes ------------------------------------------------------------

def vanish(rst):
    up = UP["vanish"]
    n = up.count() + 1
    c = RawWS(gw().port, "/vanish")
    rec = up.wait_conn(n, T(3))
    c.send_binary(b"before vanishing")
    deadline = time.monotonic() + T(2)
    while rec.bytes_in < 16 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    c.close(rst=rst)
    ok = rec.done.wait(grace(c.rtt))
    took = time.monotonic() - t0
    expect(ok, "upstream still open %.2f s after the client %s"
           % (took, "reset" if rst else "closed TCP"))
    expect_eq(rec.bytes_in, 16, "bytes delivered before the close")
    return rec


def t_client_vanishes_fin():
    rec = vanish(False)
    expect_eq(rec.end, "eof", "upstream sees FIN when the client closed TCP")


def t_client_vanishes_rst():
    rec = vanish(True)
    expect(rec.end in ("eof", "rst"), "end %r" % rec.end)


def t_client_vanishes_rst_is_rst():
    rec = vanish(True)
    expect_eq(rec.end, "rst", "spec: RST toward the upstream if the client reset")


def t_client_half_close_data_flushed():
    # Client sends data then shuts down its write side without a Close.
    up = UP["vanish"]
    n = up.count() + 1
    c = RawWS(gw().port, "/vanish")
    rec = up.wait_conn(n, T(3))
    payload = pattern_bytes(300000, 11)
    c.send_binary(payload)
    c.sock.shutdown(socket.SHUT_WR)
    expect(rec.done.wait(T(3)), "upstream not closed")
    expect_eq(rec.end, "eof", "upstream end")
    expect_eq(rec.bytes_in, len(payload), "bytes delivered before FIN")
    c.close()


# --- misc ----------------------------------------------------------------------

def t_unix_upstream():
    c = RawWS(gw().port, "/unix")
    c.send_binary(b"over a unix socket")
    got = read_bytes(c, 18, T(3))
    expect_eq(got, b"over a unix socket", "echo through unix:")
    c.close()


def t_subprotocol_tcp_route():
    c = RawWS(gw().port, "/proto", protocols="binary")
    expect_eq(c.headers.get("sec-websocket-protocol"), "binary", "protocol")
    c.send_binary(b"novnc")
    expect_eq(read_bytes(c, 5, T(3)), b"novnc", "echo")
    c.close()


def t_latency_nodelay():
    # Small messages through a TCP echo: with Nagle or added delays a
    # round trip on loopback takes 40+ ms; without, well under 10 ms.  The
    # baseline is the same echo without the gateway, measured in turn with
    # it so that both see the same load: the gateway path has twice its
    # hops, and may add 20 ms (scaled) to that, not Nagle's 40.
    c = RawWS(gw().port, "/echo")
    d = socket.create_connection(("127.0.0.1", UP["echo"].port), timeout=T(3))
    d.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    direct = []
    for i in range(30):
        msg = b"ping-%02d" % i
        t0 = time.monotonic()
        d.sendall(msg)
        got = b""
        while len(got) < len(msg):
            piece = d.recv(len(msg) - len(got))
            expect(piece, "the echo upstream closed")
            got += piece
        direct.append(time.monotonic() - t0)
        t0 = time.monotonic()
        c.send_binary(msg)
        got = read_bytes(c, len(msg), T(3))
        times.append(time.monotonic() - t0)
        expect_eq(got, msg, "echo")
    d.close()
    med = statistics.median(times)
    base = statistics.median(direct)
    bound = 2 * base + T(0.02)
    expect(med < bound, "median round trip %.1f ms (want < %.1f ms: twice "
           "the %.1f ms without the gateway + %.0f ms); max %.1f ms"
           % (med * 1000, bound * 1000, base * 1000, T(0.02) * 1000,
              max(times) * 1000))
    c.close()


def t_echo_sha_both_ways():
    n = UP["echo"].count() + 1
    c = RawWS(gw().port, "/echo", timeout=T(10))
    data = pattern_bytes(2 << 20, 77)
    got = bytearray()
    deadline = time.monotonic() + T(20)
    for i in range(0, len(data), 128 * 1024):
        c.send_binary(data[i:i + 128 * 1024])
        # read what is there so neither side blocks for long
        while len(got) < i and time.monotonic() < deadline:
            m = c.recv_message(T(5))
            expect(not isinstance(m, Close), "Close %r" % (m,))
            got += m[1]
    while len(got) < len(data) and time.monotonic() < deadline:
        m = c.recv_message(T(5))
        expect(not isinstance(m, Close), "Close %r" % (m,))
        got += m[1]
    expect_eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(data).hexdigest(),
              "sha256 after the round trip")
    rec = UP["echo"].wait_conn(n, 1)
    expect_eq(rec.sha_in.hexdigest(), hashlib.sha256(data).hexdigest(),
              "sha256 at the upstream")
    c.send_close(1000)
    c.expect_close(T(5))
    c.close()


def t_access_log():
    line = gw().wait_log(r"access.*(/sink|/source)", T(3))
    expect(line is not None, "no access-log line naming a route; log tail:\n%s"
           % "\n".join(gw().log_text().splitlines()[-15:]))


TESTS = [
    ("client payload streamed to the upstream byte-exact (masks, fragments, splits)", t_client_payload_streamed),
    ("client data sent with the handshake is held while connecting (name route)", t_data_held_while_connecting),
    ("4 MiB then Close: all flushed to the upstream before its FIN", t_flush_before_upstream_close),
    ("frames and pings in one send: payload gathered in order, pongs", t_frames_in_one_send_in_order),
    ("bad frame after good ones in one send: their payload, FIN, 1002", t_bad_frame_after_gathered_frames),
    ("read ends inside a frame header after gathered data", t_header_split_after_gathered_data),
    ("upstream not reading: gathered sends cut short, rest kept in order", t_gathered_send_cut_short),
    ("upstream 1 MiB then FIN: all data, frames <= max_frame, then Close 1000", t_source_then_fin_1000),
    ("12 MiB to a client slow to read: frames cut short finish, messages whole", t_download_frames_to_slow_reader),
    ("frame_type=text: valid UTF-8 messages though reads split code points", t_text_frames_hold_partial_code_points),
    ("frame_type=text: invalid UTF-8 from the upstream -> 1011", t_text_invalid_utf8_1011),
    ("client closes TCP without Close: upstream sees FIN within 1 s", t_client_vanishes_fin),
    ("client resets: upstream closed within 1 s", t_client_vanishes_rst),
    ("client resets: upstream sees RST", t_client_vanishes_rst_is_rst),
    ("client half-closes after data: data flushed, then upstream FIN", t_client_half_close_data_flushed),
    ("unix:/path upstream", t_unix_upstream),
    ("subprotocol on a TCP route", t_subprotocol_tcp_route),
    ("no added delay: median round trip of small messages", t_latency_nodelay),
    ("2 MiB round trip through a TCP echo: SHA-256 equal", t_echo_sha_both_ways),
    ("access log line per finished session", t_access_log),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=100,
              finish=[("gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: gw().check_stop())])
