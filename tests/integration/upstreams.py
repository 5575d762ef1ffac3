"""
upstreams.py - fake TCP upstreams for the gateway to connect to (not a test).

Owns the servers on the far side of the gateway, each on 127.0.0.1 and an
ephemeral port (or a unix socket), each stopped at cleanup: Upstream, a
threaded listener recording what every connection saw (ConnRecord: bytes
and SHA-256 each way, how it ended), and its kinds: echo, sink, source,
reset, silent (never reads), flood, a unix-socket echo and a TLS echo
(TlsEchoUpstream, recording SNI names); besides them a refused port, a
listener whose backlog is full (connect timeout) and a selector-based
echo for many connections.
"""

import hashlib
import os
import selectors
import socket
import struct
import threading
import time

from harness_env import HOST
from tap import TestFailure, at_cleanup


class ConnRecord:
    """What one upstream connection saw."""

    def __init__(self, sock):
        self.sock = sock
        self.accepted = time.monotonic()
        self.bytes_in = 0
        self.sha_in = hashlib.sha256()
        self.data_in = bytearray()   # kept only when keep_data
        self.bytes_out = 0
        self.sha_out = hashlib.sha256()
        self.end = None              # 'eof', 'rst', 'error:...', 'closed'
        self.end_time = None
        self.done = threading.Event()

    def finish(self, how):
        if self.end is None:
            self.end = how
            self.end_time = time.monotonic()
        self.done.set()


class Upstream:
    """A threaded TCP listener on 127.0.0.1; one thread per connection."""

    keep_data = False
    backlog = 128
    # SO_RCVBUF of the accepted connections, set on the listener before
    # listen(): tcp(7) says a buffer size takes effect on a connection only
    # if set before listen or connect.  Shrunk after accept instead, the
    # window already advertised (with its scale) exceeds the buffer, and
    # the sender can stall in zero-window probes for many seconds (seen on
    # loopback: 3 MB unsent, rwnd-limited 98% of 29 s).
    rcvbuf = None

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listen((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (HOST, self.port)
        self._start()

    def _listen(self, where):
        """Bind self.sock (rcvbuf first: see above) and listen."""
        if self.rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF,
                                 self.rcvbuf)
        self.sock.bind(where)
        self.sock.listen(self.backlog)
        self.sock.settimeout(0.2)

    def _start(self):
        """Start accepting on the listening self.sock."""
        self.conns = []
        self.lock = threading.Lock()
        self.new_conn = threading.Condition(self.lock)
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()
        at_cleanup(self.stop)

    def _accept_loop(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            rec = ConnRecord(c)
            with self.lock:
                self.conns.append(rec)
                self.new_conn.notify_all()
            threading.Thread(target=self._serve, args=(c, rec),
                             daemon=True).start()

    def _serve(self, c, rec):
        try:
            self.handle(c, rec)
        except ConnectionResetError:
            rec.finish("rst")
        except OSError as e:
            rec.finish("error:%s" % e)
        finally:
            rec.finish("closed")
            try:
                c.close()
            except OSError:
                pass

    def handle(self, c, rec):
        raise NotImplementedError

    def read_some(self, c, rec, n=65536, timeout=30):
        """recv with a timeout; updates REC; returns b'' at EOF, None on timeout."""
        c.settimeout(timeout)
        try:
            data = c.recv(n)
        except socket.timeout:
            return None
        if data:
            rec.bytes_in += len(data)
            rec.sha_in.update(data)
            if self.keep_data:
                rec.data_in += data
        return data

    def send_all(self, c, rec, data, timeout=30):
        c.settimeout(timeout)
        c.sendall(data)
        rec.bytes_out += len(data)
        rec.sha_out.update(data)

    def read_to_end(self, c, rec, limit_s=60, echo=False):
        """Read and count until EOF/RST; bounded by LIMIT_S seconds; with
        ECHO, send back every byte read."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline and not self.stopping:
            data = self.read_some(c, rec, timeout=0.5)
            if data is None:
                continue
            if not data:
                rec.finish("eof")
                return
            if echo:
                self.send_all(c, rec, data)
        rec.finish("timeout")

    def echo(self, c, rec, limit_s):
        """Send back every byte read on C until EOF or LIMIT_S seconds."""
        self.read_to_end(c, rec, limit_s, echo=True)

    def wait_conn(self, n=1, timeout=5):
        """The Nth connection's record (1-based), waiting up to TIMEOUT."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.conns) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TestFailure("upstream %s: connection #%d never came"
                                      % (type(self).__name__, n))
                self.new_conn.wait(left)
            return self.conns[n - 1]

    def count(self):
        with self.lock:
            return len(self.conns)

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass
        with self.lock:
            conns = list(self.conns)
        for r in conns:
            try:
                r.sock.close()
            except OSError:
                pass


class EchoUpstream(Upstream):
    """Echoes every byte; records SHA-256 of what it got and sent."""

    def handle(self, c, rec):
        self.echo(c, rec, 120)


class SinkUpstream(Upstream):
    """Reads and discards, counting bytes and SHA-256; records how it ended."""

    def __init__(self, keep_data=False):
        self.keep_data = keep_data
        super().__init__()

    def handle(self, c, rec):
        self.read_to_end(c, rec)


class SourceUpstream(Upstream):
    """
    Sends DATA (bytes cut in pieces of CHUNK, or a list of pieces), PAUSE s
    apart, then FIN; then drains.
    """

    def __init__(self, data, chunk=65536, pause=0.0, first_delay=0.0):
        self.data = data
        self.chunk = chunk
        self.pause = pause
        self.first_delay = first_delay
        super().__init__()

    def pieces(self):
        if isinstance(self.data, list):
            return self.data
        return [self.data[i:i + self.chunk]
                for i in range(0, len(self.data), self.chunk)]

    def handle(self, c, rec):
        time.sleep(self.first_delay)
        for piece in self.pieces():
            self.send_all(c, rec, piece)
            if self.pause:
                time.sleep(self.pause)
        c.shutdown(socket.SHUT_WR)
        self.read_to_end(c, rec)


class ResetUpstream(Upstream):
    """Sends PREFIX, reads a little for DELAY s, then resets (SO_LINGER 0)."""

    def __init__(self, prefix=b"", delay=0.3):
        self.prefix = prefix
        self.delay = delay
        super().__init__()

    def handle(self, c, rec):
        if self.prefix:
            self.send_all(c, rec, self.prefix)
        deadline = time.monotonic() + self.delay
        while time.monotonic() < deadline:
            data = self.read_some(c, rec, timeout=max(0.01, deadline - time.monotonic()))
            if data == b"":
                break
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        c.close()
        rec.finish("reset-sent")


class SilentUpstream(Upstream):
    """Accepts and never reads (holds the socket until stopped)."""

    def handle(self, c, rec):
        deadline = time.monotonic() + 120
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(0.1)


class FloodUpstream(Upstream):
    """Writes as fast as the socket takes it, until stopped; counts bytes."""

    def __init__(self, duration=60):
        self.duration = duration
        self.block = os.urandom(65536)
        super().__init__()

    def handle(self, c, rec):
        deadline = time.monotonic() + self.duration
        c.settimeout(0.2)
        while not self.stopping and time.monotonic() < deadline:
            try:
                n = c.send(self.block)
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                rec.finish("rst")
                return
            rec.bytes_out += n


class RefusedPort:
    """A port bound but not listening: connecting gets RST (ECONNREFUSED)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (HOST, self.port)
        at_cleanup(self.sock.close)


class BlackholeUpstream:
    """
    A listener with backlog 0 that never accepts, its queue filled by our own
    connections: further SYNs are dropped, so a connect to it times out.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (HOST, self.port)
        self.fillers = []
        for _ in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect((HOST, self.port))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pass
            self.fillers.append(s)
        time.sleep(0.1)
        at_cleanup(self.stop)

    def works(self, timeout=0.7):
        """True if a fresh connect really hangs (the trick works here)."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect((HOST, self.port))
            return False
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        for s in self.fillers + [self.sock]:
            try:
                s.close()
            except OSError:
                pass


class SelectEchoUpstream:
    """A single-threaded selector echo server for many connections."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.addr = "%s:%d" % (HOST, self.port)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self.accepted = 0
        self.bytes = 0
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        at_cleanup(self.stop)

    def _loop(self):
        out = {}
        deadline = time.monotonic() + 600
        while not self.stopping and time.monotonic() < deadline:
            try:
                events = self.sel.select(timeout=0.2)
            except (OSError, ValueError):
                return
            for key, mask in events:
                if key.data is None:
                    for _ in range(256):
                        try:
                            c, _ = self.sock.accept()
                        except (BlockingIOError, OSError):
                            break
                        c.setblocking(False)
                        self.accepted += 1
                        out[c] = bytearray()
                        self.sel.register(c, selectors.EVENT_READ, "c")
                    continue
                c = key.fileobj
                try:
                    if mask & selectors.EVENT_READ:
                        data = c.recv(65536)
                        if not data:
                            raise ConnectionResetError
                        self.bytes += len(data)
                        out[c] += data
                    if out[c]:
                        n = c.send(out[c])
                        del out[c][:n]
                    self.sel.modify(c, selectors.EVENT_READ |
                                    (selectors.EVENT_WRITE if out[c] else 0),
                                    "c")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self.sel.unregister(c)
                    out.pop(c, None)
                    c.close()

    def stop(self):
        self.stopping = True
        time.sleep(0.25)
        try:
            self.sock.close()
        except OSError:
            pass


class UnixEchoUpstream(Upstream):
    """An echo server on a unix socket (path in self.path)."""

    backlog = 16

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listen(path)
        self.port = None
        self.addr = "unix:" + path
        self._start()

    handle = EchoUpstream.handle


class TlsEchoUpstream(Upstream):
    """An echo upstream behind TLS (python's ssl module).  Records the SNI
    name each client sent (None: none) and the failed handshakes.
    CLIENT_CA: require a client certificate signed by it."""

    def __init__(self, cert, key, client_ca=None):
        import ssl
        self.ssl = ssl
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if client_ca:
            self.ctx.load_verify_locations(client_ca)
            self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.sni = []
        self.handshake_errors = []
        self.ctx.sni_callback = self._sni
        super().__init__()

    def _sni(self, sslobj, name, ctx):
        self.sni.append(name)
        return None

    def handle(self, c, rec):
        c.settimeout(10)
        try:
            t = self.ctx.wrap_socket(c, server_side=True)
        except (self.ssl.SSLError, OSError) as e:
            self.handshake_errors.append(str(e))
            rec.finish("tls-failed")
            return
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and not self.stopping:
                try:
                    data = self.read_some(t, rec, timeout=0.5)
                except self.ssl.SSLError as e:
                    rec.finish("ssl-error:%s" % e)
                    return
                if data is None:
                    continue
                if not data:
                    rec.finish("eof")
                    return
                self.send_all(t, rec, data)
        finally:
            try:
                t.close()
            except OSError:
                pass
