"""
ws_client.py - the integration tests' WebSocket and HTTP clients (not a test).

Owns talking to the gateway as a client:

  - RawWS, a raw WebSocket client that writes exact bytes and parses
    server frames byte-exactly (server frames must be unmasked, RSV 0,
    minimal lengths; a breach raises ServerViolation), with Frame and
    Close for what it reads;
  - frame and handshake bytes: build_frame, mask_bytes, close_payload,
    http_request, accept_for, the RFC 6455 constants (OP_*, FIXED_KEY);
  - HTTP for handshake error responses: http_exchange, parse_head,
    HttpResponse;
  - helpers for the python websockets client under asyncio
    (need_websockets, arun, ws_uri) and pattern_bytes for test data.
"""

import asyncio
import base64
import hashlib
import os
import random
import re
import socket
import struct
import sys
import time

from harness_env import HOST
from tap import T, TestFailure, expect, expect_eq


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
FIXED_KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3 sample key
FIXED_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 1.3

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
NEVER_ON_WIRE = (1005, 1006, 1015)


# --------------------------------------------------------------------------
# Raw WebSocket client
# --------------------------------------------------------------------------

class ServerViolation(TestFailure):
    """The server broke RFC 6455 on the wire."""


class Frame:
    def __init__(self, fin, rsv, opcode, payload):
        self.fin, self.rsv, self.opcode, self.payload = fin, rsv, opcode, payload

    def __repr__(self):
        p = bytes(self.payload[:40])
        return "Frame(fin=%d op=%#x len=%d %r%s)" % (
            self.fin, self.opcode, len(self.payload), p,
            "..." if len(self.payload) > 40 else "")


class Close:
    """A received close frame."""

    def __init__(self, code, reason):
        self.code, self.reason = code, reason

    def __repr__(self):
        return "Close(%r, %r)" % (self.code, self.reason)


def accept_for(key):
    """RFC 6455 4.2.2 Sec-WebSocket-Accept for KEY."""
    return base64.b64encode(
        hashlib.sha1((key + GUID).encode()).digest()).decode()


def mask_bytes(data, key):
    """XOR DATA with the 4-byte KEY (RFC 6455 5.3)."""
    if not data:
        return b""
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def build_frame(opcode, payload=b"", fin=True, rsv=0, mask=True,
                mask_key=None, len_form=None):
    """
    The bytes of one frame.  MASK True masks with MASK_KEY (random if None);
    LEN_FORM forces 7/16/64-bit length encoding (for non-minimal tests).
    """
    payload = bytes(payload)
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0xF)
    n = len(payload)
    form = len_form or (7 if n < 126 else 16 if n < 65536 else 64)
    mbit = 0x80 if mask else 0
    if form == 7:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif form == 16:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = mask_key if mask_key is not None else os.urandom(4)
        return hdr + key + mask_bytes(payload, key)
    return hdr + payload


def close_payload(code=None, reason=b""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason


def http_request(path="/echo", key=FIXED_KEY, version="13", protocols=None,
                 method="GET", http="HTTP/1.1", host="127.0.0.1",
                 upgrade=True, extra_headers=()):
    """A WebSocket upgrade request (or a variation) as bytes."""
    lines = ["%s %s %s" % (method, path, http)]
    if host is not None:
        lines.append("Host: %s" % host)
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade"]
        if key is not None:
            lines.append("Sec-WebSocket-Key: %s" % key)
        if version is not None:
            lines.append("Sec-WebSocket-Version: %s" % version)
    if protocols:
        lines.append("Sec-WebSocket-Protocol: %s" % protocols)
    lines += list(extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class HttpResponse:
    def __init__(self, status, reason, headers, body, raw, closed):
        self.status, self.reason, self.headers = status, reason, headers
        self.body, self.raw, self.closed = body, raw, closed

    def header(self, name):
        return self.headers.get(name.lower())


def parse_head(head):
    """(status, reason, {lower name: value joined by ', '}) from a response head."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3})(?: (.*))?$", lines[0])
    if not m:
        raise TestFailure("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        if ":" not in line:
            raise TestFailure("bad header line %r" % line)
        k, v = line.split(":", 1)
        k = k.strip().lower()
        v = v.strip()
        headers[k] = headers[k] + ", " + v if k in headers else v
    return int(m.group(1)), m.group(2) or "", headers


def http_exchange(port, request, timeout=5, chunk=None, delay=0.0,
                  source=None):
    """
    Send REQUEST (optionally in CHUNK-byte pieces DELAY s apart), read until
    the server closes (or TIMEOUT); parse the response.
    """
    s = socket.create_connection((HOST, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if chunk:
            for i in range(0, len(request), chunk):
                s.sendall(request[i:i + chunk])
                if delay:
                    time.sleep(delay)
        else:
            s.sendall(request)
        buf = bytearray()
        closed = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not d:
                closed = True
                break
            buf += d
            if len(buf) > 1 << 20:
                break
    finally:
        s.close()
    raw = bytes(buf)
    i = raw.find(b"\r\n\r\n")
    if i < 0:
        raise TestFailure("no complete response head (got %r, closed=%s)"
                          % (raw[:300], closed))
    status, reason, headers = parse_head(raw[:i])
    body = raw[i + 4:]
    return HttpResponse(status, reason, headers, body, raw, closed)


class RawWS:
    """A WebSocket client that writes exact bytes and checks exact bytes back."""

    def __init__(self, port, path="/echo", key=FIXED_KEY, protocols=None,
                 timeout=5, connect_only=False, rcvbuf=None,
                 extra_headers=(), source=None):
        """SOURCE: the local address to connect from (127.0.0.2, ...)."""
        self.port = port
        self.path = path
        self.key = key
        self.timeout = timeout
        self.buf = bytearray()
        self.controls = []  # (opcode, payload) of pings/pongs received
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        if source:
            self.sock.bind((source, 0))
        self.sock.connect((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.status = None
        self.sent_at = self.open_at = None
        self.headers = {}
        self.closed_by_peer = False
        self.request = http_request(path, key=key, protocols=protocols,
                                    extra_headers=extra_headers)
        if not connect_only:
            self.handshake()

    # -- handshake
    def read_head(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise TestFailure("response head too long")
            self._fill(deadline)
        i = self.buf.find(b"\r\n\r\n")
        head = bytes(self.buf[:i])
        del self.buf[:i + 4]
        return head

    def handshake(self, extra=b"", check=True):
        """
        Send the request (+EXTRA bytes in the same write), read the 101.
        sent_at is taken before the request is sent, open_at once the
        response head is in: timers the upgrade arms start between the two.
        """
        self.sent_at = time.monotonic()
        self.sock.sendall(self.request + extra)
        head = self.read_head()
        self.open_at = time.monotonic()
        self.status, _, self.headers = parse_head(head)
        if check:
            expect_eq(self.status, 101, "handshake status (head %r)" % head)
            expect_eq(self.headers.get("sec-websocket-accept"),
                      accept_for(self.key), "Sec-WebSocket-Accept")
            expect(self.headers.get("upgrade", "").lower() == "websocket",
                   "Upgrade header %r" % self.headers.get("upgrade"))
            expect("upgrade" in [t.strip().lower() for t in
                                 self.headers.get("connection", "").split(",")],
                   "Connection header %r" % self.headers.get("connection"))
        return self

    @property
    def rtt(self):
        """Seconds from sending the request to reading the response head."""
        return self.open_at - self.sent_at

    # -- raw I/O
    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for data (have %d bytes)"
                                 % len(self.buf))
        self.sock.settimeout(left)
        d = self.sock.recv(262144)
        if not d:
            self.closed_by_peer = True
            raise EOFError("connection closed by the server (have %d bytes)"
                           % len(self.buf))
        self.buf += d

    def send(self, data, chunk=None, delay=0.0):
        """Write DATA, optionally in CHUNK-byte writes DELAY s apart."""
        self.sock.settimeout(self.timeout)
        if not chunk:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])
            if delay:
                time.sleep(delay)

    def send_frame(self, opcode, payload=b"", **kw):
        chunk = kw.pop("chunk", None)
        delay = kw.pop("delay", 0.0)
        self.send(build_frame(opcode, payload, **kw), chunk=chunk, delay=delay)

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text.encode() if isinstance(text, str) else text, **kw)

    def send_binary(self, data, **kw):
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code=None, reason=b"", **kw):
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    # -- frames
    def recv_frame(self, timeout=None):
        """One server frame, checked: unmasked, RSV 0, minimal length, ..."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while len(self.buf) < 2:
            self._fill(deadline)
        b0, b1 = self.buf[0], self.buf[1]
        fin, rsv, op = b0 >> 7, (b0 >> 4) & 7, b0 & 0xF
        masked, n = b1 >> 7, b1 & 0x7F
        if masked:
            raise ServerViolation("server frame is masked (RFC 6455 5.1): %r"
                                  % bytes(self.buf[:16]))
        if rsv:
            raise ServerViolation("server frame has RSV bits %d" % rsv)
        if op not in (0, 1, 2, 8, 9, 10):
            raise ServerViolation("server frame has reserved opcode %#x" % op)
        hl = 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill(deadline)
            n = struct.unpack("!H", self.buf[2:4])[0]
            hl = 4
            if n < 126:
                raise ServerViolation("non-minimal 16-bit length %d" % n)
        elif n == 127:
            while len(self.buf) < 10:
                self._fill(deadline)
            n = struct.unpack("!Q", self.buf[2:10])[0]
            hl = 10
            if n < 65536 or n >> 63:
                raise ServerViolation("bad 64-bit length %d" % n)
        if op >= 8 and (n > 125 or not fin):
            raise ServerViolation("bad control frame op=%#x len=%d fin=%d"
                                  % (op, n, fin))
        while len(self.buf) < hl + n:
            self._fill(deadline)
        payload = bytes(self.buf[hl:hl + n])
        del self.buf[:hl + n]
        return Frame(fin, rsv, op, payload)

    def recv_message(self, timeout=None, answer_pings=False):
        """
        The next data message as (opcode, bytes), or a Close.  Pings and
        pongs are recorded in self.controls (and answered if ANSWER_PINGS).
        Checks continuation rules on the server's frames.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        op = None
        data = bytearray()
        for _ in range(10_000_000):
            f = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if f.opcode in (OP_PING, OP_PONG):
                self.controls.append((f.opcode, f.payload))
                if answer_pings and f.opcode == OP_PING:
                    self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_CLOSE:
                # (RFC 6455 5.4: a Close may come between fragments)
                return self._close_of(f)
            if op is None:
                if f.opcode == OP_CONT:
                    raise ServerViolation("server continuation without start")
                op = f.opcode
            elif f.opcode != OP_CONT:
                raise ServerViolation("server started a new message inside "
                                      "a fragmented one")
            data += f.payload
            if f.fin:
                if op == OP_TEXT:
                    try:
                        bytes(data).decode("utf-8")
                    except UnicodeDecodeError:
                        raise ServerViolation("server sent invalid UTF-8 text")
                return (op, bytes(data))
        raise TestFailure("too many frames")

    def _close_of(self, f):
        p = f.payload
        if len(p) == 0:
            return Close(None, "")
        if len(p) == 1:
            raise ServerViolation("server close payload of 1 byte")
        code = struct.unpack("!H", p[:2])[0]
        if code in NEVER_ON_WIRE or not (1000 <= code <= 4999):
            raise ServerViolation("server sent close code %d on the wire" % code)
        try:
            reason = p[2:].decode("utf-8")
        except UnicodeDecodeError:
            raise ServerViolation("server close reason is not UTF-8: %r" % p[2:])
        return Close(code, reason)

    def expect_close(self, timeout=None, collect=None):
        """
        Read until the server's Close; returns it.  Data messages before it
        go to COLLECT (a list) if given, else fail the test.
        """
        deadline = time.monotonic() + (timeout or self.timeout)
        for _ in range(10_000_000):
            try:
                m = self.recv_message(max(0.01, deadline - time.monotonic()))
            except EOFError:
                raise TestFailure("connection closed without a Close frame")
            except ConnectionResetError:
                raise TestFailure("connection reset without a Close frame")
            except socket.timeout:
                raise TestFailure("no Close frame within %.1f s" %
                                  (timeout or self.timeout))
            if isinstance(m, Close):
                return m
            if collect is None:
                raise TestFailure("unexpected message before Close: op %#x %r"
                                  % (m[0], m[1][:60]))
            collect.append(m)
        raise TestFailure("too many messages")

    def wait_eof(self, timeout=None):
        """Read (discarding) until EOF; returns 'eof', 'rst' or 'timeout'."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "rst"
            if not d:
                return "eof"
        return "timeout"

    def expect_close_then_eof(self, code, timeout=None, reply=True,
                              collect=None):
        """Expect a Close with CODE, answer it (if REPLY), then the TCP close."""
        c = self.expect_close(timeout, collect=collect)
        expect_eq(c.code, code, "close code (reason %r)" % c.reason)
        if reply:
            try:
                self.send_close(c.code if c.code else None)
            except OSError:
                pass
        how = self.wait_eof(timeout or self.timeout)
        expect(how in ("eof", "rst"), "server did not close TCP after Close "
               "(%s)" % how)
        return c

    def close(self, rst=False):
        try:
            if rst:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     struct.pack("ii", 1, 0))
            self.sock.close()
        except OSError:
            pass


# --------------------------------------------------------------------------
# asyncio helpers (python websockets client)
# --------------------------------------------------------------------------

def need_websockets():
    """Import python-websockets or bail out with how to get it."""
    try:
        import websockets  # noqa: F401
        import websockets.exceptions  # noqa: F401
        return websockets
    except ImportError:
        print("Bail out! python3-websockets is not importable by %s "
              "(use Debian's /usr/bin/python3 with python3-websockets)"
              % sys.executable)
        sys.stdout.flush()
        sys.exit(1)


def arun(coro, timeout=60):
    """Run CORO in a fresh event loop, bounded by TIMEOUT (scaled) seconds."""
    async def bounded():
        return await asyncio.wait_for(coro, T(timeout))
    return asyncio.run(bounded())


def ws_uri(port, path):
    return "ws://%s:%d%s" % (HOST, port, path)


def pattern_bytes(n, seed=1):
    """N deterministic pseudo-random bytes."""
    rnd = random.Random(seed)
    return rnd.randbytes(n)
