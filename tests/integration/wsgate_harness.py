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
from tls_helpers import (TestCA, openssl_cmd, peer_serial, s_client,
                         tls_client_context)


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
