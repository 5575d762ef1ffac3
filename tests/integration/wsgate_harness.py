"""
wsgate_harness.py - shared code for the wsgate integration tests (not a test).

A facade: it holds no code of its own and re-exports every public name of
the parts, so a test file imports all it needs from here.  Each part owns
one concern and imports only what it uses from the others (harness_env,
then tap, then the rest; no cycles):

  harness_env.py   REPO, BIN, WRAPPER (WSGATE_SRCDIR, WSGATE_BIN,
                   WSGATE_WRAPPER) and HOST
  tap.py           the TAP runner and its watchdog, expect/TestFailure/
                   Skip/at_cleanup/once/diag, timing (SCALE, T, grace,
                   CLOCK_SLACK)
  gateway_proc.py  the real daemon with a temporary config on 127.0.0.1
                   and an ephemeral port (Gateway, make_config, run_cli,
                   ports, RLIMIT_NOFILE, RSS under ASan/valgrind)
  upstreams.py     fake TCP upstreams: echo, sink, source, reset, silent,
                   flood, unix-socket and TLS echo, refused port, full
                   backlog, selector echo
  ws_client.py     the raw WebSocket client (RawWS), frame and HTTP
                   helpers, asyncio helpers for python-websockets
  tls_helpers.py   a throwaway CA (TestCA), TLS client contexts,
                   `openssl s_client` runs
  fake_dns.py      a DNS responder (imported directly by test_dns.py)

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


# What the facade exports: every public name of the parts (the test files
# import by name from here).
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
