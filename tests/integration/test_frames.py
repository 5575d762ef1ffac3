#!/usr/bin/python3
"""
test_frames.py - RFC 6455 framing through the built-in echo route, with a raw
client writing exact bytes: lengths at the encoding boundaries, fragments,
byte-at-a-time writes, ping/pong, the close handshake, and every client
protocol error with its close code (1002 / 1007 / 1009).
"""

import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    once,
    OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, T, Close,
    Gateway, RawWS, build_frame, expect, expect_eq, grace, pattern_bytes,
    run_tests)

MAX_MESSAGE = 65536
CLOSE_TIMEOUT = 1.0


def _start_gw():
    return Gateway(
        limits={"max_message": "64k",
                "close_timeout": "%dms" % int(T(CLOSE_TIMEOUT) * 1000)},
        routes={"/echo": {"upstream": "echo"}},
        name="gateway").start()


gw = once(_start_gw)


def ws():
    return RawWS(gw().port, "/echo", timeout=T(5))


def roundtrip(c, op, payload, **kw):
    c.send_frame(op, payload, **kw)
    got = c.recv_message(T(5))
    expect(not isinstance(got, Close), "got %r instead of the echo" % (got,))
    expect_eq(got[0], op, "echoed opcode")
    expect(got[1] == payload, "echoed payload differs (len %d vs %d)"
           % (len(got[1]), len(payload)))


# --- data ------------------------------------------------------------------

def t_text_binary_empty():
    c = ws()
    roundtrip(c, OP_TEXT, "héllo wörld ✓ 🎉".encode())
    roundtrip(c, OP_BINARY, bytes(range(256)))
    roundtrip(c, OP_TEXT, b"")
    roundtrip(c, OP_BINARY, b"")
    c.close()


def t_length_boundaries():
    c = ws()
    for n in (0, 1, 125, 126, 127, 65535, 65536):
        roundtrip(c, OP_BINARY, pattern_bytes(n, n))
    c.close()


def t_non_minimal_length_accepted():
    # RFC 6455 5.2 says "minimal number of bytes MUST be used" for the
    # sender; receivers commonly accept longer forms.  Either echo or 1002.
    c = ws()
    c.send_frame(OP_BINARY, b"abc", len_form=64)
    m = c.recv_message(T(3))
    if isinstance(m, Close):
        expect_eq(m.code, 1002, "close code for a non-minimal length")
    else:
        expect_eq(m, (OP_BINARY, b"abc"), "echo")
    c.close()


def t_fragmented_message():
    c = ws()
    c.send_frame(OP_TEXT, b"frag", fin=False)
    c.send_frame(OP_CONT, b"men", fin=False)
    c.send_frame(OP_CONT, b"", fin=False)
    c.send_frame(OP_CONT, b"ted")
    expect_eq(c.recv_message(T(3)), (OP_TEXT, b"fragmented"),
              "fragmented text echoed as one message")
    c.send_frame(OP_BINARY, b"\x01", fin=False)
    c.send_frame(OP_CONT, b"\x02")
    expect_eq(c.recv_message(T(3)), (OP_BINARY, b"\x01\x02"),
              "fragmented binary")
    c.close()


def t_message_boundaries_kept():
    c = ws()
    data = b"".join(build_frame(OP_TEXT, ("m%d" % i).encode())
                    for i in range(50))
    c.send(data)  # pipelined in one write
    for i in range(50):
        expect_eq(c.recv_message(T(3)), (OP_TEXT, ("m%d" % i).encode()),
                  "message %d" % i)
    c.close()


def t_byte_at_a_time():
    c = ws()
    data = (build_frame(OP_TEXT, b"slow", fin=False) +
            build_frame(OP_PING, b"p1") +
            build_frame(OP_CONT, b" bytes") +
            build_frame(OP_BINARY, pattern_bytes(300)))
    c.send(data, chunk=1)
    expect_eq(c.recv_message(T(5)), (OP_TEXT, b"slow bytes"), "text")
    expect_eq(c.recv_message(T(5)), (OP_BINARY, pattern_bytes(300)), "binary")
    expect((OP_PONG, b"p1") in c.controls, "pong for p1: %r" % c.controls)
    c.close()


def t_utf8_split_across_fragments():
    c = ws()
    text = "€𝄞".encode()  # e2 82 ac f0 9d 84 9e
    c.send_frame(OP_TEXT, text[:1], fin=False)
    c.send_frame(OP_CONT, text[1:5], fin=False)
    c.send_frame(OP_CONT, text[5:])
    expect_eq(c.recv_message(T(3)), (OP_TEXT, text), "code points split")
    c.close()


def t_ping_pong():
    c = ws()
    for payload in (b"", b"x", pattern_bytes(125, 7)):
        c.send_frame(OP_PING, payload)
        f = c.recv_frame(T(3))
        expect_eq(f.opcode, OP_PONG, "reply opcode")
        expect(f.payload == payload, "pong payload %r != ping payload %r"
               % (f.payload[:20], payload[:20]))
    c.close()


def t_ping_inside_fragmented_message():
    c = ws()
    c.send_frame(OP_BINARY, b"ab", fin=False)
    c.send_frame(OP_PING, b"mid")
    f = c.recv_frame(T(3))
    while f.opcode != OP_PONG:  # a streaming echo may send the first piece
        expect(f.opcode in (OP_BINARY, OP_CONT), "unexpected %r" % f)
        f = c.recv_frame(T(3))
    expect_eq(f.payload, b"mid", "pong payload")
    c.send_frame(OP_CONT, b"cd")
    c.close()


def t_unsolicited_pong_ignored():
    c = ws()
    c.send_frame(OP_PONG, b"unasked")
    roundtrip(c, OP_TEXT, b"still fine")
    c.close()


# --- close handshake ---------------------------------------------------------

def t_close_echoes_code():
    for code, reason in ((1000, b"bye"), (1001, b""), (4321, b"custom"),
                         (3000, b"\xc3\xa9")):
        c = ws()
        c.send_close(code, reason)
        cl = c.expect_close(T(3))
        expect_eq(cl.code, code, "echoed close code")
        how = c.wait_eof(T(3))
        expect(how in ("eof", "rst"), "server kept TCP open after the close "
               "handshake (%s)" % how)
        c.close()


def t_close_empty_gets_1000():
    c = ws()
    c.send_close()
    cl = c.expect_close(T(3))
    expect_eq(cl.code, 1000, "close code answering an empty Close")
    expect_eq(c.wait_eof(T(3)) in ("eof", "rst"), True, "TCP closed")
    c.close()


def t_close_after_data_flushes_echo():
    c = ws()
    c.send(build_frame(OP_TEXT, b"last words") + build_frame(OP_CLOSE, struct.pack("!H", 1000)))
    got = []
    cl = c.expect_close(T(3), collect=got)
    expect_eq(cl.code, 1000, "close code")
    expect_eq(got, [(OP_TEXT, b"last words")],
              "data before the Close is echoed before the server's Close")
    c.close()


def t_frames_after_close_ignored():
    c = ws()
    c.send(build_frame(OP_CLOSE, struct.pack("!H", 1000)) +
           build_frame(OP_TEXT, b"ignored"))
    cl = c.expect_close(T(3))
    expect_eq(cl.code, 1000, "close code")
    c.close()


# --- protocol errors -----------------------------------------------------------

def error_case(frames, code, reply=True, prefix=()):
    c = ws()
    for op, payload in prefix:
        roundtrip(c, op, payload)
    c.send(frames)
    got = []
    cl = c.expect_close(T(3), collect=got)
    expect_eq(cl.code, code, "close code (reason %r)" % cl.reason)
    if reply:
        try:
            c.send_close(code)
        except OSError:
            pass
    how = c.wait_eof(T(CLOSE_TIMEOUT) + grace(c.rtt))
    expect(how in ("eof", "rst"), "TCP not closed after the error Close (%s)" % how)
    c.close()
    return cl


def t_unmasked_frame():
    error_case(build_frame(OP_TEXT, b"naked", mask=False), 1002)


def t_unmasked_after_good():
    error_case(build_frame(OP_BINARY, b"x", mask=False), 1002,
               prefix=[(OP_TEXT, b"good")])


def t_reserved_opcode_data():
    error_case(build_frame(0x3, b"r"), 1002)


def t_reserved_opcode_control():
    error_case(build_frame(0xB, b"r"), 1002)


def t_continuation_without_start():
    error_case(build_frame(OP_CONT, b"orphan"), 1002)


def t_new_message_inside_fragmented():
    error_case(build_frame(OP_TEXT, b"a", fin=False) +
               build_frame(OP_TEXT, b"b"), 1002)


def t_rsv_bits():
    error_case(build_frame(OP_TEXT, b"r", rsv=4), 1002)  # RSV1
    error_case(build_frame(OP_BINARY, b"r", rsv=1), 1002)  # RSV3


def t_control_too_long():
    error_case(build_frame(OP_PING, b"p" * 126), 1002)


def t_control_fragmented():
    error_case(build_frame(OP_PING, b"p", fin=False), 1002)


def t_close_one_byte():
    error_case(build_frame(OP_CLOSE, b"\x03"), 1002)


def t_close_bad_codes():
    for code in (999, 1005, 1006, 1015, 1016, 2999, 5000):
        error_case(build_frame(OP_CLOSE, struct.pack("!H", code)), 1002)


def t_close_bad_reason_utf8():
    error_case(build_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff"), 1007)


def t_invalid_utf8_text():
    error_case(build_frame(OP_TEXT, b"ok \xff bad"), 1007)


def t_invalid_utf8_overlong_and_surrogate():
    error_case(build_frame(OP_TEXT, b"\xc0\xaf"), 1007)         # overlong '/'
    error_case(build_frame(OP_TEXT, b"\xed\xa0\x80"), 1007)     # U+D800
    error_case(build_frame(OP_TEXT, b"\xf4\x90\x80\x80"), 1007)  # > U+10FFFF


def t_invalid_utf8_across_fragments():
    error_case(build_frame(OP_TEXT, b"\xe2\x82", fin=False) +
               build_frame(OP_CONT, b"\x28"), 1007)


def t_truncated_utf8_at_end():
    error_case(build_frame(OP_TEXT, b"abc\xe2\x82"), 1007)


def t_too_big_single():
    error_case(build_frame(OP_BINARY, pattern_bytes(MAX_MESSAGE + 1)), 1009)


def t_too_big_fragmented():
    part = pattern_bytes(MAX_MESSAGE // 2)
    error_case(build_frame(OP_BINARY, part, fin=False) +
               build_frame(OP_CONT, part, fin=False) +
               build_frame(OP_CONT, b"!"), 1009)


def t_max_message_exact_ok():
    c = ws()
    roundtrip(c, OP_BINARY, pattern_bytes(MAX_MESSAGE, 3))
    c.close()


def t_64bit_length_msb():
    c = ws()
    c.send(b"\x82\xff" + b"\x80" + b"\x00" * 7 + b"\x00\x00\x00\x00")
    cl = c.expect_close(T(3))
    expect(cl.code in (1002, 1009), "close code %r for a 2^63 length" % cl.code)
    c.close()


def t_error_close_timeout():
    # The client never answers the server's Close: the server closes TCP
    # after close_timeout.
    c = ws()
    c.send(build_frame(OP_TEXT, b"x", mask=False))
    t0 = time.monotonic()
    cl = c.expect_close(T(3))
    expect_eq(cl.code, 1002, "close code")
    how = c.wait_eof(T(CLOSE_TIMEOUT) + grace(c.rtt))
    took = time.monotonic() - t0
    expect(how in ("eof", "rst"), "TCP still open %.1f s after an unanswered "
           "Close (close_timeout %.1f s)" % (took, T(CLOSE_TIMEOUT)))
    c.close()


def t_still_serving():
    c = ws()
    roundtrip(c, OP_TEXT, b"alive")
    c.close()


def _start_small_frames():
    return Gateway(limits={"max_frame": "1k", "max_message": "1m"},
                   routes={"/echo": {"upstream": "echo"}},
                   name="max_frame gateway").start()


gw_small = once(_start_small_frames)


def t_echo_obeys_max_frame():
    # wsgate.ini(5): what goes to the browser is cut into frames of at most
    # max_frame bytes; the echo route too, with its message boundaries.
    c = RawWS(gw_small().port, "/echo", timeout=T(5))
    payload = pattern_bytes(10000, seed=7)
    for op, pieces in ((OP_BINARY, [payload]),
                       (OP_TEXT, [b"a" * 3000, b"b" * 3000, b"c" * 10])):
        for i, p in enumerate(pieces):
            c.send_frame(op if i == 0 else OP_CONT, p,
                         fin=(i == len(pieces) - 1))
        want = b"".join(pieces)
        got, frames = b"", []
        while True:
            f = c.recv_frame(T(5))
            frames.append(f)
            expect(len(f.payload) <= 1024, "a %d-byte frame with max_frame "
                   "1k" % len(f.payload))
            got += f.payload
            if f.fin:
                break
        expect_eq(frames[0].opcode, op, "first frame's opcode")
        expect(all(f.opcode == OP_CONT for f in frames[1:]),
               "later frames are continuations")
        expect(got == want, "echoed message differs (%d vs %d bytes)"
               % (len(got), len(want)))
        expect(len(frames) >= (len(want) + 1023) // 1024,
               "%d frames for %d bytes" % (len(frames), len(want)))
    c.close()


TESTS = [
    ("text, binary and empty messages echoed", t_text_binary_empty),
    ("payload lengths 0..65536 around the 7/16/64-bit boundaries", t_length_boundaries),
    ("non-minimal length: echoed or 1002", t_non_minimal_length_accepted),
    ("fragmented messages echoed whole", t_fragmented_message),
    ("50 pipelined messages keep their boundaries and order", t_message_boundaries_kept),
    ("frames written one byte at a time", t_byte_at_a_time),
    ("UTF-8 code points split across fragments", t_utf8_split_across_fragments),
    ("ping -> pong with the same payload (0, 1, 125 bytes)", t_ping_pong),
    ("ping between fragments is answered", t_ping_inside_fragmented_message),
    ("unsolicited pong ignored", t_unsolicited_pong_ignored),
    ("client Close code echoed (1000, 1001, 4321, 3000) then TCP closed", t_close_echoes_code),
    ("empty client Close answered with 1000", t_close_empty_gets_1000),
    ("data before a Close is flushed first", t_close_after_data_flushes_echo),
    ("frames after the client's Close are ignored", t_frames_after_close_ignored),
    ("unmasked client frame -> 1002", t_unmasked_frame),
    ("unmasked frame after a good one -> 1002", t_unmasked_after_good),
    ("reserved data opcode 0x3 -> 1002", t_reserved_opcode_data),
    ("reserved control opcode 0xB -> 1002", t_reserved_opcode_control),
    ("continuation without a start -> 1002", t_continuation_without_start),
    ("new data frame inside a fragmented message -> 1002", t_new_message_inside_fragmented),
    ("RSV bits without an extension -> 1002", t_rsv_bits),
    ("control frame over 125 bytes -> 1002", t_control_too_long),
    ("fragmented control frame -> 1002", t_control_fragmented),
    ("close payload of 1 byte -> 1002", t_close_one_byte),
    ("close with an invalid code (999, 1005, 1006, 1015, 1016, 2999, 5000) -> 1002", t_close_bad_codes),
    ("close reason that is not UTF-8 -> 1007", t_close_bad_reason_utf8),
    ("invalid UTF-8 text -> 1007", t_invalid_utf8_text),
    ("overlong, surrogate and >U+10FFFF sequences -> 1007", t_invalid_utf8_overlong_and_surrogate),
    ("invalid UTF-8 across fragments -> 1007", t_invalid_utf8_across_fragments),
    ("text message ending inside a code point -> 1007", t_truncated_utf8_at_end),
    ("message above max_message -> 1009", t_too_big_single),
    ("fragmented message above max_message -> 1009", t_too_big_fragmented),
    ("message of exactly max_message is echoed", t_max_message_exact_ok),
    ("64-bit length with the top bit set -> 1002 (or 1009)", t_64bit_length_msb),
    ("unanswered error Close: TCP closed after close_timeout", t_error_close_timeout),
    ("still serving after the error cases", t_still_serving),
    ("echo route cuts its replies at max_frame", t_echo_obeys_max_frame),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=100,
              finish=[("gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: gw().check_stop()),
                      ("max_frame gateway exits 0 on SIGTERM",
                       lambda: gw_small().check_stop())])
