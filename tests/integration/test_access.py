#!/usr/bin/python3
"""
test_access.py - access control and client identity with the real daemon:
Origin allow-lists (look-alikes refused with 403 and no upstream
connection), tokens from each carrier (query, cookie, bearer, subprotocol
offer) in both failure modes (401/403, or 101 then Close 1008 as
python3-websockets sees it), token-file targets edited while the gateway
runs, target_allow, per-IP limits with 127.0.0.2 / 127.0.0.3 as distinct
clients, X-Forwarded-For / Forwarded from trusted and untrusted peers, and
the token strings absent from every log line at log_level = debug.

(PROXY protocol, both ways and behind HAProxy: test_proxy.py.)
"""

import asyncio
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    OP_BINARY, T, Close, EchoUpstream, Gateway, RawWS, at_cleanup, arun,
    expect, expect_eq, http_exchange, http_request, need_websockets, once,
    run_tests, ws_uri)

websockets = need_websockets()

TOKEN_PLAIN = "plain-Tok3n-7c1f9a"
TOKEN_HASHED = "hashed-Tok3n-52be0d"
TOKEN_BAD = "wrong-Tok3n-0d9e44"
VNC_A, VNC_B, VNC_GONE = "vncTokA-81c2", "vncTokB-3f7e", "vncTokOut-a9d1"
SECRETS = [TOKEN_PLAIN, TOKEN_HASHED, TOKEN_BAD, VNC_A, VNC_B, VNC_GONE]

ORIGIN = "https://app.example.com"
LOOKALIKES = [
    "https://app.example.com.evil.net",
    "https://evilapp.example.com",
    "http://app.example.com",
    "https://app.example.com:8443",
    "null",
    "https://app.example.com@evil.net",
    "https://app.example.com/",
]

TMP = tempfile.mkdtemp(prefix="wsgate-access-")
at_cleanup(lambda: shutil.rmtree(TMP, ignore_errors=True))
AUTH_FILE = os.path.join(TMP, "tokens")
TARGET_FILE = os.path.join(TMP, "targets")
UP = {}


def write_file(path, text, atomic=True):
    """Write TEXT to PATH (via a rename when ATOMIC, else in place)."""
    if atomic:
        tmp = path + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)
    else:
        with open(path, "w") as f:
            f.write(text)


def _start_gw():
    UP["echo"] = EchoUpstream()
    UP["a"] = EchoUpstream()
    UP["b"] = EchoUpstream()
    write_file(AUTH_FILE, "# test tokens\n%s\n\nsha256:%s\n" % (
        TOKEN_PLAIN, hashlib.sha256(TOKEN_HASHED.encode()).hexdigest()))
    write_file(TARGET_FILE, "# websockify format\n%s: 127.0.0.1:%d\n"
               % (VNC_A, UP["a"].port))
    echo = UP["echo"].addr
    return Gateway(
        gateway={"log_level": "debug",
                 "origins": "https://gw-default.example.com",
                 "trusted_proxies": "127.0.0.1/32"},
        routes={
            "/origin": {"upstream": echo,
                        "origins": "%s, HTTP://LocalHost:3000" % ORIGIN},
            "/origin-deny": {"upstream": echo, "origins": ORIGIN,
                             "origin_missing": "deny"},
            "/gwdefault": {"upstream": echo},
            "/any": {"upstream": echo, "origins": "*"},
            "/auth": {"upstream": echo, "auth_tokens": AUTH_FILE,
                      "subprotocols": "binary", "origins": "*"},
            "/auth-bearer-only": {"upstream": echo,
                                  "auth_tokens": AUTH_FILE,
                                  "auth_from": "bearer", "origins": "*"},
            "/authclose": {"upstream": echo, "auth_tokens": AUTH_FILE,
                           "auth_failure": "close", "origins": "*"},
            "/vnc/*": {"upstream": "tokenfile:" + TARGET_FILE,
                       "target_allow": "127.0.0.1/32:1024-65535",
                       "origins": "*"},
        },
        name="gateway").start()


gw = once(_start_gw)


def no_new_conn(up, before, what):
    """The upstream saw no connection beyond BEFORE (after a short wait)."""
    time.sleep(T(0.3))
    expect_eq(up.count(), before, "upstream connections after %s" % what)


def refused(path, status, headers=(), up=None, source=None):
    """The request to PATH gets STATUS and the upstream sees nothing."""
    up = up or UP["echo"]
    before = up.count()
    r = http_exchange(gw().port, http_request(path, extra_headers=headers),
                      source=source)
    expect_eq(r.status, status, "status for %s %r (body %r)"
              % (path, headers, r.body))
    expect(r.closed, "connection not closed after %d" % status)
    no_new_conn(up, before, "a %d" % status)
    return r


def echo_ok(c, up=None, payload=b"ping-through"):
    """Data goes through C to the upstream and back."""
    c.send_binary(payload)
    m = c.recv_message(T(5))
    expect_eq(m, (OP_BINARY, payload), "echo through the gateway")
    c.send_close(1000)
    c.expect_close(T(5))
    c.close()


# --- Origin -----------------------------------------------------------------

def t_origin_allowed():
    gw()
    up = UP["echo"]
    for origin in (ORIGIN, "HTTPS://App.Example.COM:443",
                   "http://localhost:3000"):
        before = up.count()
        c = RawWS(gw().port, "/origin",
                  extra_headers=("Origin: %s" % origin,))
        echo_ok(c)
        expect_eq(up.count(), before + 1, "upstream connections (%s)"
                  % origin)


def t_origin_lookalikes_refused():
    gw()
    for origin in LOOKALIKES:
        r = refused("/origin", 403, ("Origin: %s" % origin,))
        expect(b"origin not allowed" in r.body, "body %r" % r.body)
    # two Origin headers are refused too
    refused("/origin", 403, ("Origin: %s" % ORIGIN, "Origin: %s" % ORIGIN))


def t_origin_missing_policies():
    gw()
    up = UP["echo"]
    before = up.count()
    echo_ok(RawWS(gw().port, "/origin"))  # default: allow
    expect_eq(up.count(), before + 1, "upstream connections")
    r = refused("/origin-deny", 403)
    expect(b"Origin header required" in r.body, "body %r" % r.body)
    echo_ok(RawWS(gw().port, "/origin-deny",
                  extra_headers=("Origin: %s" % ORIGIN,)))


def t_origin_gateway_default_and_star():
    gw()
    echo_ok(RawWS(gw().port, "/gwdefault",
                  extra_headers=("Origin: https://gw-default.example.com",)))
    refused("/gwdefault", 403, ("Origin: %s" % ORIGIN,))
    echo_ok(RawWS(gw().port, "/any",
                  extra_headers=("Origin: https://anything.example",)))


# --- auth -------------------------------------------------------------------

def t_auth_each_carrier():
    gw()
    up = UP["echo"]
    carriers = [
        ("/auth?token=%s" % TOKEN_PLAIN, ()),
        ("/auth?x=1&token=%s" % TOKEN_HASHED.replace("-", "%2D"), ()),
        ("/auth", ("Cookie: theme=dark; wsgate_token=%s" % TOKEN_PLAIN,)),
        ("/auth", ("Authorization: Bearer %s" % TOKEN_HASHED,)),
        ("/auth-bearer-only", ("Authorization: bearer %s" % TOKEN_PLAIN,)),
    ]
    for path, headers in carriers:
        before = up.count()
        echo_ok(RawWS(gw().port, path, extra_headers=headers))
        expect_eq(up.count(), before + 1, "upstream connections (%s %r)"
                  % (path, headers))
    # the subprotocol offer: the token offer is never the chosen protocol
    c = RawWS(gw().port, "/auth",
              protocols="token.%s, binary" % TOKEN_PLAIN)
    expect_eq(c.headers.get("sec-websocket-protocol"), "binary",
              "chosen protocol")
    echo_ok(c)
    c = RawWS(gw().port, "/auth", protocols="token.%s" % TOKEN_HASHED)
    expect(c.headers.get("sec-websocket-protocol") is None,
           "the token offer was echoed: %r"
           % c.headers.get("sec-websocket-protocol"))
    echo_ok(c)

    # python3-websockets, as a browser page would use it
    async def run():
        async with websockets.connect(
                ws_uri(gw().port, "/auth"),
                subprotocols=["token." + TOKEN_PLAIN, "binary"]) as ws:
            expect_eq(ws.subprotocol, "binary", "websockets subprotocol")
            await ws.send(b"via websockets")
            expect_eq(await ws.recv(), b"via websockets", "echo")
    arun(run(), 20)


def t_auth_failures_http():
    gw()
    r = refused("/auth", 401)
    expect("bearer" in (r.header("www-authenticate") or "").lower(),
           "WWW-Authenticate %r" % r.header("www-authenticate"))
    refused("/auth?token=%s" % TOKEN_BAD, 403)
    refused("/auth", 403, ("Authorization: Bearer %s" % TOKEN_BAD,))
    refused("/auth", 403, ("Cookie: wsgate_token=%s" % TOKEN_BAD,))
    refused("/auth", 403,
            ("Sec-WebSocket-Protocol: token.%s" % TOKEN_BAD,))
    # the stored digest itself is not a token
    digest = hashlib.sha256(TOKEN_HASHED.encode()).hexdigest()
    refused("/auth?token=%s" % digest, 403)
    # a carrier the route does not accept counts as no token
    refused("/auth-bearer-only?token=%s" % TOKEN_PLAIN, 401)


def t_auth_failures_close_1008():
    gw()
    up = UP["echo"]

    async def attempt(path):
        async with websockets.connect(ws_uri(gw().port, path)) as ws:
            try:
                await asyncio.wait_for(ws.recv(), T(5))
            except websockets.exceptions.ConnectionClosed as e:
                return e.code, e.reason
            raise AssertionError("no close")
    for path, why in (("/authclose", "missing token"),
                      ("/authclose?token=%s" % TOKEN_BAD, "bad token")):
        before = up.count()
        code, reason = arun(attempt(path), 20)
        expect_eq(code, 1008, "close code for %s" % why)
        expect(reason.startswith("policy violation") and why in reason,
               "close reason %r" % reason)
        no_new_conn(up, before, "a 1008")
    # a good token still works on that route
    echo_ok(RawWS(gw().port, "/authclose?token=%s" % TOKEN_PLAIN))
    line = gw().wait_log(r"access .*route=/authclose .*code=1008", T(3))
    expect(line is not None and "status=101" in line,
           "access line for the 1008: %r" % line)


def t_auth_file_reloaded():
    gw()
    refused("/auth?token=%s" % TOKEN_BAD, 403)
    with open(AUTH_FILE, "a") as f:
        f.write("%s\n" % TOKEN_BAD)
    echo_ok(RawWS(gw().port, "/auth?token=%s" % TOKEN_BAD))
    write_file(AUTH_FILE, "sha256:%s\n"
               % hashlib.sha256(TOKEN_HASHED.encode()).hexdigest())
    refused("/auth?token=%s" % TOKEN_BAD, 403)
    refused("/auth?token=%s" % TOKEN_PLAIN, 403)
    echo_ok(RawWS(gw().port, "/auth?token=%s" % TOKEN_HASHED))


# --- token-file targets -----------------------------------------------------

def t_tokenfile_targets_follow_the_file():
    gw()
    a, b = UP["a"], UP["b"]
    n_a = a.count()
    echo_ok(RawWS(gw().port, "/vnc/%s" % VNC_A))
    expect_eq(a.count(), n_a + 1, "connections to A")
    line = gw().wait_log(r"access .*route=/vnc/\* upstream=127\.0\.0\.1:%d "
                         % a.port, T(3))
    expect(line is not None, "access line naming target A")
    # add a line (in place), while the gateway runs
    with open(TARGET_FILE, "a") as f:
        f.write("%s: 127.0.0.1:%d\n" % (VNC_B, b.port))
    n_b = b.count()
    echo_ok(RawWS(gw().port, "/vnc/x?token=%s" % VNC_B))
    expect_eq(b.count(), n_b + 1, "connections to B")
    # change A's line to point at B, remove B's line
    write_file(TARGET_FILE, "%s: 127.0.0.1:%d\n" % (VNC_A, b.port))
    n_a, n_b = a.count(), b.count()
    echo_ok(RawWS(gw().port, "/vnc/%s" % VNC_A))
    expect_eq((a.count(), b.count()), (n_a, n_b + 1), "A now leads to B")
    r = refused("/vnc/%s" % VNC_B, 403, up=b)
    expect(b"unknown token" in r.body, "body %r" % r.body)
    refused("/vnc/", 401, up=b)


def t_tokenfile_target_allow():
    gw()
    b = UP["b"]
    write_file(TARGET_FILE,
               "%s: 127.0.0.1:%d\n%s: 169.254.169.254:80\n"
               "lowport: 127.0.0.1:80\nbyname: localhost:80\n"
               "other: 127.0.0.2:%d\n"
               % (VNC_A, b.port, VNC_GONE, b.port))
    for tok in (VNC_GONE, "lowport", "other"):
        r = refused("/vnc/%s" % tok, 403, up=b)
        expect(b"target not allowed" in r.body, "body %r" % r.body)
    line = gw().wait_log(r"169\.254\.169\.254:80 is outside target_allow",
                         T(3))
    expect(line is not None, "refusal of 169.254.169.254 not logged")
    # a name is checked once resolved (after the upgrade): Close 1008
    c = RawWS(gw().port, "/vnc/byname")
    cl = c.expect_close(T(5))
    expect_eq(cl.code, 1008, "close code for a resolved target outside")
    c.close()
    line = gw().wait_log(r"upstream address .*:80 is outside target_allow",
                         T(3))
    expect(line is not None, "refused resolved address not logged")


# --- real client address ------------------------------------------------------

def access_line_for(pattern):
    line = gw().wait_log(pattern, T(3))
    expect(line is not None, "no access line matching %r; log tail:\n%s"
           % (pattern, "\n".join(gw().log_text().splitlines()[-10:])))
    return line


def t_xff_trusted_and_untrusted():
    gw()
    # from 127.0.0.1 (trusted): the right-most untrusted address
    c = RawWS(gw().port, "/any", extra_headers=(
        "X-Forwarded-For: 6.6.6.6, 198.51.100.7", "X-Forwarded-For: 127.0.0.1"))
    port = c.sock.getsockname()[1]
    echo_ok(c)
    access_line_for(r"access client=198\.51\.100\.7 via=127\.0\.0\.1:%d "
                    r"route=/any " % port)
    # from 127.0.0.2 (not trusted): the header is ignored
    c = RawWS(gw().port, "/any", source="127.0.0.2",
              extra_headers=("X-Forwarded-For: 198.51.100.8",))
    port = c.sock.getsockname()[1]
    echo_ok(c)
    line = access_line_for(r"access client=127\.0\.0\.2:%d route=/any "
                           % port)
    expect("198.51.100.8" not in gw().log_text(), "untrusted XFF used")
    expect("via=" not in line, "via= for a direct client: %r" % line)
    # garbage in the header: the trusted hop that added it is the client
    c = RawWS(gw().port, "/any", extra_headers=(
        "X-Forwarded-For: 198.51.100.9, not-an-address",))
    port = c.sock.getsockname()[1]
    echo_ok(c)
    access_line_for(r"access client=127\.0\.0\.1:%d route=/any " % port)


def t_forwarded_header():
    up = UP["echo"] if "echo" in UP else EchoUpstream()
    g = Gateway(gateway={"trusted_proxies": "127.0.0.1/32, 10.0.0.0/8",
                         "real_ip_header": "forwarded"},
                routes={"/e": {"upstream": up.addr}}, name="fwd").start()
    c = RawWS(g.port, "/e", extra_headers=(
        'Forwarded: for="[2001:db8::1]:4711";proto=https, for=10.1.2.3',))
    echo_ok(c)
    line = g.wait_log(r"access client=\[2001:db8::1\]:4711 via=127\.0\.0\.1:",
                      T(3))
    expect(line is not None, "Forwarded client not logged:\n%s"
           % g.log_text())
    c = RawWS(g.port, "/e", source="127.0.0.3",
              extra_headers=("Forwarded: for=192.0.2.60",))
    port = c.sock.getsockname()[1]
    echo_ok(c)
    expect(g.wait_log(r"access client=127\.0\.0\.3:%d route=/e" % port,
                      T(3)) is not None, "untrusted Forwarded was used")
    g.check_stop()


# --- per-IP limits ----------------------------------------------------------------

def t_per_ip_concurrent_limit():
    up = UP["echo"] if "echo" in UP else EchoUpstream()
    g = Gateway(limits={"max_connections_per_ip": 2},
                routes={"/e": {"upstream": up.addr}}, name="perip").start()
    start = up.count()
    held = [RawWS(g.port, "/e", source="127.0.0.2") for _ in range(2)]
    up.wait_conn(start + 2, T(5))
    before = up.count()
    r = http_exchange(g.port, http_request("/e"), source="127.0.0.2")
    expect_eq(r.status, 503, "third connection from 127.0.0.2")
    no_new_conn(up, before, "a per-IP 503")
    # another client is not limited
    other = RawWS(g.port, "/e", source="127.0.0.3")
    echo_ok(other)
    # a slot freed by .2 can be used again
    echo_ok(held.pop())
    # (the slot is released when the session is freed, a moment after)
    deadline = time.monotonic() + T(3)
    while True:
        try:
            c = RawWS(g.port, "/e", source="127.0.0.2")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    echo_ok(c)
    echo_ok(held.pop())
    line = g.wait_log(r"access client=127\.0\.0\.2:\d+ route=/e .*status=503 "
                      r".*too many connections from this address", T(3))
    expect(line is not None, "503 not in the access log")
    g.check_stop()


def t_per_ip_rate_limit():
    up = UP["echo"] if "echo" in UP else EchoUpstream()
    g = Gateway(limits={"new_connections_per_ip": "3/m",
                        "new_connections_burst": 3},
                routes={"/e": {"upstream": up.addr}}, name="rate").start()
    for i in range(3):
        echo_ok(RawWS(g.port, "/e", source="127.0.0.2"), payload=b"%d" % i)
    before = up.count()
    r = http_exchange(g.port, http_request("/e"), source="127.0.0.2")
    expect_eq(r.status, 429, "fourth new connection within a minute")
    no_new_conn(up, before, "a 429")
    echo_ok(RawWS(g.port, "/e", source="127.0.0.3"))
    line = g.wait_log(r"access client=127\.0\.0\.2:\d+ route=/e .*status=429",
                      T(3))
    expect(line is not None, "429 not in the access log")
    g.check_stop()


# --- secrets never logged -------------------------------------------------------

def t_no_token_in_any_log_line():
    gw()
    log = gw().log_text()
    expect(" debug " in log or "DEBUG" in log.upper(),
           "the gateway did not log at debug")
    expect(re.search(r"GET /auth\?token=REDACTED", log) is not None,
           "the redacted target was not logged at debug")
    expect("/vnc/REDACTED" in log, "token-file path not redacted in the log")
    for secret in SECRETS:
        bad = [l for l in log.splitlines() if secret in l]
        expect(not bad, "token %r in the log: %r" % (secret, bad[:3]))


run_tests([
    ("Origin: allowed origins (normalised) reach the upstream",
     t_origin_allowed),
    ("Origin: look-alikes, null, other scheme/port -> 403, no upstream",
     t_origin_lookalikes_refused),
    ("Origin: missing Origin with allow and deny", t_origin_missing_policies),
    ("Origin: gateway-wide default list, and '*'",
     t_origin_gateway_default_and_star),
    ("auth: query, cookie, bearer and subprotocol offer each work",
     t_auth_each_carrier),
    ("auth: missing -> 401, bad -> 403 before the upgrade",
     t_auth_failures_http),
    ("auth: auth_failure = close -> 101 then Close 1008 (websockets)",
     t_auth_failures_close_1008),
    ("auth: the token file is re-read when it changes", t_auth_file_reloaded),
    ("token-file targets: add, change, remove lines while running",
     t_tokenfile_targets_follow_the_file),
    ("token-file targets: target_allow refuses literals (403) and resolved "
     "names (1008)", t_tokenfile_target_allow),
    ("X-Forwarded-For from trusted and untrusted peers",
     t_xff_trusted_and_untrusted),
    ("Forwarded (RFC 7239) with real_ip_header = forwarded",
     t_forwarded_header),
    ("per-IP concurrent limit: 127.0.0.2 limited, 127.0.0.3 not",
     t_per_ip_concurrent_limit),
    ("per-IP new-connection rate: 429 for 127.0.0.2, 127.0.0.3 fine",
     t_per_ip_rate_limit),
    ("no token in any log line at log_level = debug",
     t_no_token_in_any_log_line),
], limit=150, finish=[("gateway exits 0 on SIGTERM",
                       lambda: gw().check_stop())])
