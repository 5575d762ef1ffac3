"""
wsgate_harness.py - shared code for the wsgate integration tests (not a test).

Starts the real daemon (WSGATE_BIN, default <repo>/src/wsgate; optional
WSGATE_WRAPPER prefix such as "valgrind --error-exitcode=99 --leak-check=full")
with a temporary config on 127.0.0.1 and an ephemeral port, and provides:

  - a TAP runner with a watchdog (every test file ends by itself);
  - real TCP upstreams: echo, sink, source, reset, refused port, silent
    (never reads), flood, a listener whose backlog is full (connect timeout),
    a selector-based echo for many connections, a unix-socket echo;
  - a raw WebSocket client that writes exact bytes and parses server frames
    byte-exactly (server frames must be unmasked, RSV 0, minimal lengths);
  - an HTTP helper for handshake error responses;
  - TLS: a throwaway CA that issues certificates with the openssl command
    (TestCA), client contexts, `openssl s_client` runs, and a TLS echo
    upstream (TlsEchoUpstream).

All traffic goes to 127.0.0.1 only.  Every socket operation has a timeout and
every loop is bounded in count and time.
"""

import os
import re
import shutil
import socket
import subprocess
import tempfile

from harness_env import BIN, HERE, HOST, REPO, WRAPPER
from tap import (CLOCK_SLACK, SCALE, Skip, T, TestFailure, at_cleanup, diag,
                 expect, expect_eq, grace, once, run_tests)
from gateway_proc import (RSS_SKIP, SANITIZED, Gateway, asan_env, free_port,
                          make_config, raise_nofile, run_cli, wait_port)
from upstreams import (BlackholeUpstream, ConnRecord, EchoUpstream,
                       FloodUpstream, RefusedPort, ResetUpstream,
                       SelectEchoUpstream, SilentUpstream, SinkUpstream,
                       SourceUpstream, TlsEchoUpstream, UnixEchoUpstream,
                       Upstream)
from ws_client import (FIXED_ACCEPT, FIXED_KEY, GUID, NEVER_ON_WIRE,
                       OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG,
                       OP_TEXT, Close, Frame, HttpResponse, RawWS,
                       ServerViolation, accept_for, arun, build_frame,
                       close_payload, http_exchange, http_request,
                       mask_bytes, need_websockets, parse_head,
                       pattern_bytes, ws_uri)


# The names the test files import.  The parts of this file are moving to
# their own modules; this list is what the facade keeps exporting.
__all__ = [
    # environment
    "HERE", "REPO", "BIN", "WRAPPER", "HOST",
    # timing
    "SCALE", "T", "CLOCK_SLACK", "grace",
    # TAP runner
    "TestFailure", "Skip", "expect", "expect_eq", "at_cleanup", "once",
    "diag", "run_tests",
    # the gateway process
    "SANITIZED", "RSS_SKIP", "asan_env", "raise_nofile", "free_port",
    "wait_port", "make_config", "Gateway", "run_cli",
    # TCP upstreams
    "ConnRecord", "Upstream", "EchoUpstream", "SinkUpstream",
    "SourceUpstream", "ResetUpstream", "SilentUpstream", "FloodUpstream",
    "RefusedPort", "BlackholeUpstream", "SelectEchoUpstream",
    "UnixEchoUpstream", "TlsEchoUpstream",
    # raw WebSocket client, HTTP helpers
    "GUID", "FIXED_KEY", "FIXED_ACCEPT", "OP_CONT", "OP_TEXT", "OP_BINARY",
    "OP_CLOSE", "OP_PING", "OP_PONG", "NEVER_ON_WIRE", "ServerViolation",
    "Frame", "Close", "accept_for", "mask_bytes", "build_frame",
    "close_payload", "http_request", "HttpResponse", "parse_head",
    "http_exchange", "RawWS",
    # asyncio helpers
    "need_websockets", "arun", "ws_uri", "pattern_bytes",
    # TLS
    "openssl_cmd", "TestCA", "tls_client_context", "s_client", "peer_serial",
]

# --------------------------------------------------------------------------
# TLS: certificates made at test time, clients, a TLS echo upstream
# --------------------------------------------------------------------------

def openssl_cmd(args, timeout=30, input_data=None):
    """Run the openssl command; (rc, stdout+stderr text)."""
    p = subprocess.run(["openssl"] + list(args), input=input_data,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


class TestCA:
    """
    A throwaway certificate authority in a temporary directory, made with
    the openssl command (EC P-256 keys: fast).  issue() makes leaf
    certificates signed by it.
    """

    def __init__(self, name="wsgate test CA"):
        self.dir = tempfile.mkdtemp(prefix="wsgate-ca-")
        at_cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.name = name
        self.cert = os.path.join(self.dir, "ca.pem")
        self.key = os.path.join(self.dir, "ca.key")
        self._run(["req", "-x509", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
                   self.key, "-out", self.cert, "-days", "30", "-subj",
                   "/CN=%s" % name, "-addext",
                   "basicConstraints=critical,CA:TRUE", "-addext",
                   "keyUsage=critical,keyCertSign,cRLSign"])

    def _run(self, args):
        rc, out = openssl_cmd(args)
        if rc != 0:
            raise TestFailure("openssl %s failed:\n%s" % (args[0], out))

    def issue(self, cn, dns=(), ips=(), serial=1, days=30, client=False,
              stem=None, org=None):
        """A leaf certificate and key; returns (cert_path, key_path).
        DAYS=0 makes one that expires within the second."""
        stem = os.path.join(self.dir, stem or "%s-%d" % (
            re.sub(r"[^A-Za-z0-9]+", "_", cn), serial))
        key, csr, crt, ext = (stem + ".key", stem + ".csr", stem + ".pem",
                              stem + ".ext")
        subj = "/CN=%s" % cn + ("/O=%s" % org if org else "")
        self._run(["req", "-new", "-newkey", "ec", "-pkeyopt",
                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                   "-out", csr, "-subj", subj])
        sans = ["DNS:%s" % d for d in dns] + ["IP:%s" % i for i in ips]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            f.write("extendedKeyUsage=%s\n"
                    % ("clientAuth" if client else "serverAuth"))
            if sans:
                f.write("subjectAltName=%s\n" % ",".join(sans))
        self._run(["x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey",
                   self.key, "-set_serial", str(serial), "-days", str(days),
                   "-extfile", ext, "-out", crt])
        return crt, key


def tls_client_context(ca=None, cert=None, key=None, verify=True):
    """A client SSLContext trusting CA (a TestCA or a file), with an
    optional client certificate."""
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if verify:
        ctx.load_verify_locations(ca.cert if isinstance(ca, TestCA) else ca)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def s_client(port, args=(), timeout=10, send=b""):
    """Run `openssl s_client` against 127.0.0.1:PORT with ARGS, sending
    SEND then closing stdin; (rc, output)."""
    return openssl_cmd(["s_client", "-connect", "%s:%d" % (HOST, port)]
                       + list(args), timeout=timeout,
                       input_data=send or b"")


def peer_serial(port, ca, server_name="localhost", timeout=5):
    """The serial number (int) of the certificate the TLS server on PORT
    presents for SERVER_NAME, verified against CA."""
    import ssl
    ctx = tls_client_context(ca)
    ctx.check_hostname = False
    with socket.create_connection((HOST, port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            return int(s.getpeercert()["serialNumber"], 16)
