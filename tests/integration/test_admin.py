#!/usr/bin/python3
"""
test_admin.py - the admin endpoint (/healthz, /metrics in the Prometheus
text format), `wsgate --healthcheck`, SIGHUP reload with live sessions,
SIGTERM draining as /healthz sees it, and worker threads.
"""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    BIN, HOST, WRAPPER, EchoUpstream, Gateway, RawWS, RefusedPort, Skip, T,
    TestFailure, diag, expect, expect_eq, free_port, http_request, once,
    run_tests)

echo_up = once(lambda: EchoUpstream())
refused = once(lambda: RefusedPort())


def _start():
    return Gateway(gateway={"workers": "2"},
                   limits={"ping_interval": "0", "close_timeout": "1s"},
                   routes={"/echo": {"upstream": "echo"},
                           "/tcp": {"upstream": "%s:%d" % (HOST, echo_up().port)},
                           "/refused": {"upstream": "%s:%d"
                                        % (HOST, refused().port)}},
                   admin=True, name="admin gateway").start()


gw = once(_start)

# One sample line of the text exposition format 0.0.4:
# name{label="value",...} value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)'
                    r'(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*"'
                    r'(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*")*)?\})?'
                    r' (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$')
HELP = re.compile(r'^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+$')
TYPE = re.compile(r'^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) '
                  r'(counter|gauge|histogram|summary|untyped)$')


def parse_metrics(text):
    """Check every line of TEXT; return {(name, labels): value}."""
    types = {}
    samples = {}
    expect(text.endswith("\n"), "exposition does not end with a newline")
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if line.startswith("# HELP"):
            expect(HELP.match(line), "line %d: bad HELP: %r" % (n, line))
            continue
        if line.startswith("# TYPE"):
            m = TYPE.match(line)
            expect(m, "line %d: bad TYPE: %r" % (n, line))
            expect(m.group(1) not in types,
                   "line %d: second TYPE for %s" % (n, m.group(1)))
            types[m.group(1)] = m.group(2)
            continue
        m = SAMPLE.match(line)
        expect(m, "line %d: not a valid sample: %r" % (n, line))
        name = m.group(1)
        base = re.sub(r'_(bucket|sum|count)$', "", name)
        expect(name in types or base in types,
               "line %d: sample %s before its TYPE" % (n, name))
        key = (name, m.group(3) or "")
        expect(key not in samples, "line %d: duplicate sample %r" % (n, key))
        samples[key] = float(m.group(7))
    return samples


def metrics():
    st, hdr, body = gw().admin_get("/metrics")
    expect_eq(st, 200, "/metrics status")
    expect(hdr.get("content-type", "").startswith("text/plain; version=0.0.4"),
           "content type %r" % hdr.get("content-type"))
    return parse_metrics(body)


def value(m, name, labels=""):
    if (name, labels) not in m:
        raise TestFailure("no sample %s{%s}; have: %s"
                          % (name, labels,
                             sorted(k for k in m if k[0] == name)))
    return m[(name, labels)]


def wait_value(name, labels, want, timeout=5):
    deadline = time.monotonic() + T(timeout)
    while True:
        v = value(metrics(), name, labels)
        if v == want or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def healthcheck(url):
    p = subprocess.run(WRAPPER + [BIN, "--healthcheck", url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=T(20))
    return p.returncode, p.stderr.decode()


def t_healthz():
    st, hdr, body = gw().admin_get("/healthz")
    expect_eq((st, body), (200, "ok\n"), "/healthz")
    expect_eq(hdr.get("connection"), "close", "Connection header")
    st, _, _ = gw().admin_get("/nope")
    expect_eq(st, 404, "unknown admin path")


def t_healthcheck_cli():
    base = "http://%s:%d" % (HOST, gw().admin_port)
    rc, err = healthcheck(base + "/healthz")
    expect_eq(rc, 0, "--healthcheck on /healthz (stderr %r)" % err)
    rc, err = healthcheck(base + "/nope")
    expect_eq(rc, 1, "--healthcheck on a 404")
    expect("404" in err, "the 404 is named: %r" % err)
    rc, err = healthcheck("http://%s:%d/healthz" % (HOST, refused().port))
    expect_eq(rc, 1, "--healthcheck on a refused port")
    rc, err = healthcheck("https://example.invalid/")
    expect_eq(rc, 2, "--healthcheck with a URL it cannot use")


def t_metrics_format_and_counters():
    m0 = metrics()
    expect_eq(value(m0, "wsgate_workers"), 2.0, "wsgate_workers")
    for name in ("wsgate_buffered_bytes", "wsgate_open_connections",
                 "wsgate_tls_handshake_failures_total",
                 "wsgate_abnormal_closures_total"):
        value(m0, name)
    msgs = '{route="/tcp",direction="client_to_upstream"}'[1:-1]
    before = m0.get(("wsgate_messages_total", msgs), 0.0)
    # a session on /tcp: 5 messages through a TCP echo upstream
    c = RawWS(gw().port, "/tcp")
    for i in range(5):
        c.send_text("hello %d" % i)
        got = c.recv_message()
        expect_eq(got[1], ("hello %d" % i).encode(), "echo through /tcp")
    expect_eq(wait_value("wsgate_sessions_open", 'route="/tcp"', 1.0), 1.0,
              "sessions open on /tcp")
    m1 = metrics()
    expect_eq(value(m1, "wsgate_messages_total", msgs), before + 5,
              "client->upstream messages on /tcp")
    expect(value(m1, "wsgate_upstream_connect_seconds_count",
                 'route="/tcp"') >= 1, "connect latency observed")
    expect_eq(value(m1, "wsgate_upstream_connect_seconds_bucket",
                    'route="/tcp",le="+Inf"'),
              value(m1, "wsgate_upstream_connect_seconds_count",
                    'route="/tcp"'), "+Inf bucket equals the count")
    sent0 = value(m1, "wsgate_close_codes_total",
                  'code="1000",direction="sent"')
    c.send_close(1000)
    c.expect_close_then_eof(1000, reply=False)
    expect_eq(wait_value("wsgate_sessions_open", 'route="/tcp"', 0.0), 0.0,
              "sessions open after close")
    m2 = metrics()
    expect_eq(value(m2, "wsgate_close_codes_total",
                    'code="1000",direction="sent"'), sent0 + 1,
              "close 1000 sent")
    expect(value(m2, "wsgate_sessions_total", 'route="/tcp"') >= 1,
           "sessions total")
    # a 404 and a refused upstream
    f404 = value(m2, "wsgate_handshake_failures_total", 'status="404"')
    s = socket.create_connection((HOST, gw().port), timeout=T(5))
    s.sendall(http_request("/no-such-route"))
    s.recv(4096)
    s.close()
    RawWS(gw().port, "/refused").expect_close()
    m3 = metrics()
    expect_eq(value(m3, "wsgate_handshake_failures_total", 'status="404"'),
              f404 + 1, "404 counted")
    expect(value(m3, "wsgate_upstream_failures_total",
                 'route="/refused",reason="refused"') >= 1,
           "refused upstream counted")


def t_workers_share_the_load():
    before = value(metrics(), "wsgate_accepted_connections_total")
    conns = [RawWS(gw().port, "/echo") for _ in range(20)]
    for i, c in enumerate(conns):
        c.send_binary(b"x%d" % i)
        expect_eq(c.recv_message()[1], b"x%d" % i, "echo %d" % i)
    expect_eq(value(metrics(), "wsgate_accepted_connections_total"),
              before + 20, "accepted, summed over the workers")
    for c in conns:
        c.close()


def t_workers_balanced():
    # The kernel's SO_REUSEPORT hash alone puts 100 of 200 connections on
    # each of two workers about one time in 18; the hand-off to the worker
    # holding fewer keeps them within one of each other.
    expect_eq(wait_value("wsgate_open_connections", "", 0.0), 0.0,
              "connections left by earlier tests")
    conns = []
    try:
        for i in range(200):
            conns.append(RawWS(gw().port, "/echo"))
        per = gw().worker_connections(2)
        expect_eq(sum(per), 200.0, "connections over both workers")
        expect(abs(per[0] - per[1]) <= 1, "split between workers: %s" % per)
        # the sessions a worker took over serve like the others
        for i, c in enumerate(conns):
            c.send_binary(b"b%d" % i)
        for i, c in enumerate(conns):
            expect_eq(c.recv_message()[1], b"b%d" % i, "echo %d" % i)
    finally:
        for c in conns:
            c.close()


def start_with_cpus(cpus, **kw):
    """A gateway started while this process may run only on CPUS (the
    gateway inherits the mask, as from taskset or a cpuset)."""
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        return Gateway(**kw).start()
    finally:
        os.sched_setaffinity(0, allowed)


def worker_cpus(g):
    """{thread name: set of CPUs it may run on} for the worker threads."""
    out = {}
    task = "/proc/%d/task" % g.proc.pid
    for tid in os.listdir(task):
        try:
            with open(os.path.join(task, tid, "comm")) as f:
                comm = f.read().strip()
            with open(os.path.join(task, tid, "status")) as f:
                status = f.read()
        except OSError:
            continue
        if not comm.startswith("wsgate-w"):
            continue
        cpus = set()
        allowed = re.search(r"Cpus_allowed_list:\s*(\S+)", status).group(1)
        for part in allowed.split(","):
            lo, _, hi = part.partition("-")
            cpus.update(range(int(lo), int(hi or lo) + 1))
        out[comm] = cpus
    return out


def t_cpu_affinity():
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        raise Skip("needs 2 CPUs, has %d" % len(allowed))
    two = allowed[:2]
    cases = [
        # workers, cpu_affinity, what each worker may run on
        ("2", "auto", {"wsgate-w0": {two[0]}, "wsgate-w1": {two[1]}}),
        ("2", None, {"wsgate-w0": set(two), "wsgate-w1": set(two)}),
        ("2", "off", {"wsgate-w0": set(two), "wsgate-w1": set(two)}),
        # fewer workers than CPUs: left to the scheduler
        ("1", "auto", {"wsgate-w0": set(two)}),
    ]
    for workers, affinity, want in cases:
        opts = {"workers": workers}
        if affinity:
            opts["cpu_affinity"] = affinity
        g = start_with_cpus(two, gateway=opts,
                            routes={"/echo": {"upstream": "echo"}},
                            name="affinity gateway")
        try:
            c = RawWS(g.port, "/echo")  # every worker is up and serving
            c.send_binary(b"x")
            expect_eq(c.recv_message()[1], b"x", "echo")
            c.close()
            expect_eq(worker_cpus(g), want,
                      "workers = %s, cpu_affinity = %s, mask %s"
                      % (workers, affinity or "off (default)", two))
        finally:
            expect_eq(g.stop(timeout=T(10)), 0, "exit status")


def t_reload_with_live_session():
    g = gw()
    live = RawWS(g.port, "/echo")
    live.send_text("before")
    expect_eq(live.recv_message()[1], b"before", "echo before reload")
    g.routes = {"/echo2": {"upstream": "echo"},
                "/tcp": {"upstream": "%s:%d" % (HOST, echo_up().port)}}
    g.write_config()
    g.signal(signal.SIGHUP)
    expect(g.wait_log(r"reloaded .*: 2 route", T(5)), "no reload line in log")
    # no [tls], no tls:// route: nothing TLS was read, so nothing is said
    # (logged before the line above, so it would be there by now)
    expect("TLS certificates and keys reloaded" not in g.log_text(),
           "TLS reload logged without TLS")
    # new connections: /echo is gone, /echo2 is there
    s = socket.create_connection((HOST, g.port), timeout=T(5))
    s.sendall(http_request("/echo"))
    head = s.recv(4096)
    s.close()
    expect(head.startswith(b"HTTP/1.1 404"), "removed route: %r" % head[:40])
    c = RawWS(g.port, "/echo2")
    c.send_text("new")
    expect_eq(c.recv_message()[1], b"new", "echo on the added route")
    c.close()
    # the live session continues on its old config
    live.send_text("after")
    expect_eq(live.recv_message()[1], b"after", "live session after reload")
    live.close()
    m = metrics()
    expect_eq(value(m, "wsgate_config_reloads_total", 'result="success"'),
              1.0, "successful reloads")
    expect_eq(value(m, "wsgate_config_last_reload_successful"), 1.0,
              "last reload ok")


def t_bad_reload_keeps_config():
    g = gw()
    good = open(g.conf).read()
    g.write_config(good + "\n[route /broken]\nupstream = nowhere\n")
    g.signal(signal.SIGHUP)
    line = g.wait_log(r"reload refused", T(5))
    expect(line, "no 'reload refused' line")
    expect(re.search(r"wsgate\.ini:\d+: upstream: ", line),
           "the error names file, line and key: %r" % line)
    c = RawWS(g.port, "/echo2")
    c.send_text("still")
    expect_eq(c.recv_message()[1], b"still", "old config still serves")
    c.close()
    m = metrics()
    expect_eq(value(m, "wsgate_config_reloads_total", 'result="failure"'),
              1.0, "failed reloads")
    expect_eq(value(m, "wsgate_config_last_reload_successful"), 0.0,
              "last reload failed")
    g.write_config(good)


def t_workers_auto_follows_affinity():
    # auto = the CPUs the process may run on: under a one-CPU affinity
    # mask (taskset, a container's cpuset) one worker, else one per CPU
    allowed = sorted(os.sched_getaffinity(0))
    for cpus in ([allowed[0]], allowed):
        g = start_with_cpus(cpus, gateway={"workers": "auto"},
                            routes={"/echo": {"upstream": "echo"}},
                            admin=True, name="auto workers gateway")
        try:
            st, _, body = g.admin_get("/metrics")
            expect_eq(st, 200, "/metrics status")
            m = parse_metrics(body)
            expect_eq(value(m, "wsgate_workers"), float(len(cpus)),
                      "wsgate_workers with affinity %s" % cpus)
        finally:
            expect_eq(g.stop(timeout=T(10)), 0, "exit status")


def t_sigterm_healthz_503():
    g = Gateway(gateway={"workers": "1"},
                limits={"ping_interval": "0", "drain_timeout": "3s",
                        "close_timeout": "2s"},
                routes={"/echo": {"upstream": "echo"}},
                admin=True, name="drain gateway").start()
    c = RawWS(g.port, "/echo")  # never answers the 1001: keeps it draining
    st, _, _ = g.admin_get("/healthz")
    expect_eq(st, 200, "/healthz before SIGTERM")
    g.signal(signal.SIGTERM)
    deadline = time.monotonic() + T(2)
    st = None
    while time.monotonic() < deadline:
        try:
            st, _, body = g.admin_get("/healthz", timeout=2)
        except OSError:
            break
        if st == 503:
            break
        time.sleep(0.05)
    expect_eq(st, 503, "/healthz while draining")
    f = c.recv_frame(T(3))
    expect_eq((f.opcode, int.from_bytes(f.payload[:2], "big")), (8, 1001),
              "client gets Close 1001")
    rc = g.stop(timeout=T(10))
    expect_eq(rc, 0, "exit status after the drain")
    c.close()


# src/admin.c: connections at once, and the time from accept to a whole
# request (both in the README's "Health and metrics").
ADMIN_MAX_CONNS = 64
ADMIN_REQUEST_TIMEOUT = 5.0


def is_open(s):
    """True if S has neither data, EOF nor an error waiting."""
    s.setblocking(False)
    try:
        s.recv(1)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        s.setblocking(True)


def admin_status(path):
    """(status, body) of GET PATH, or (None, why) for a reply that is not
    HTTP (a refused or silently closed connection)."""
    try:
        st, _, body = gw().admin_get(path, timeout=T(5))
        return st, body
    except (OSError, IndexError, ValueError) as e:
        return None, "no HTTP reply (%s: %s)" % (type(e).__name__, e)


def t_idle_connections_do_not_lock_out_probes():
    # more silent connections than the cap, as a port scanner or a stuck
    # client pool would leave; the oldest make room, the probes answer
    n = ADMIN_MAX_CONNS + 8
    idle = []
    try:
        for _ in range(n):
            idle.append(socket.create_connection((HOST, gw().admin_port),
                                                 timeout=T(5)))
        last_opened = time.monotonic()
        for path in ("/healthz", "/metrics"):
            st, body = admin_status(path)
            expect_eq(st, 200, "%s with %d idle admin connections (%s)"
                      % (path, n, body[:80]))
        # promptly: answered while the newest idle connection is still
        # open, so no request timeout had to free a slot first
        took = time.monotonic() - last_opened
        expect(took < ADMIN_REQUEST_TIMEOUT,
               "the probes took %.2f s, past the %.0f s request timeout"
               % (took, ADMIN_REQUEST_TIMEOUT))
        expect(is_open(idle[-1]), "the newest idle connection was closed "
               "%.2f s after it opened" % (time.monotonic() - last_opened))
        # the ones closed to make room are the oldest
        for i, s in enumerate(idle[:n - ADMIN_MAX_CONNS]):
            s.settimeout(T(5))
            try:
                d = s.recv(1)
            except ConnectionResetError:
                d = b""
            expect_eq(d, b"", "idle connection %d of %d (among the oldest)"
                      % (i + 1, n))
    finally:
        for s in idle:
            s.close()
    st, _ = admin_status("/healthz")
    expect_eq(st, 200, "/healthz after the idle connections left")


def t_idle_connection_closed_after_limit():
    # one silent connection and one trickling a request that never ends:
    # both are closed at the request timeout after their accept, the
    # trickle (which resets a plain read timeout) no later than the silent
    # one's observed close time again
    stop = threading.Event()
    t0 = time.monotonic()
    silent = socket.create_connection((HOST, gw().admin_port), timeout=T(5))
    trickle = socket.create_connection((HOST, gw().admin_port), timeout=T(5))
    trickle.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    req = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"p" * 900

    def dribble():
        for i in range(len(req)):
            if stop.wait(0.25):
                return
            try:
                trickle.send(req[i:i + 1])
            except OSError:
                return

    th = threading.Thread(target=dribble, daemon=True)
    th.start()
    closed = {}
    socks = {silent: "silent", trickle: "trickling"}
    deadline = t0 + ADMIN_REQUEST_TIMEOUT + T(5)
    try:
        while len(closed) < 2 and time.monotonic() < deadline:
            left = [s for s in socks if socks[s] not in closed]
            r, _, _ = select.select(left, [], [],
                                    max(0, deadline - time.monotonic()))
            for s in r:
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                expect_eq(d, b"", "%s connection got a reply" % socks[s])
                closed[socks[s]] = time.monotonic() - t0
            if "silent" in closed and "trickling" not in closed:
                # the margin for the other: the silent one's observed close
                deadline = min(deadline, t0 + 2 * closed["silent"])
    finally:
        stop.set()
        th.join(T(5))
        silent.close()
        trickle.close()
    diag("closed after: %s" % closed)
    expect("silent" in closed, "a silent admin connection still open after "
           "%.1f s" % (ADMIN_REQUEST_TIMEOUT + T(5)))
    expect("trickling" in closed, "a trickling admin connection still open "
           "%.2f s after connecting (the silent one closed at %.2f s)"
           % (time.monotonic() - t0, closed["silent"]))
    # t0 is before the connect, so this can only be longer, but for
    # libevent's clock (CLOCK_MONOTONIC_COARSE) lagging ours by a tick
    tick = time.clock_getres(getattr(time, "CLOCK_MONOTONIC_COARSE",
                                     6))  # its Linux id
    for what, took in closed.items():
        expect(took >= ADMIN_REQUEST_TIMEOUT - tick,
               "%s connection closed after %.2f s, before the %.0f s limit"
               % (what, took, ADMIN_REQUEST_TIMEOUT))


def t_admin_rejects_bad_requests():
    s = socket.create_connection((HOST, gw().admin_port), timeout=T(5))
    s.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    head = s.recv(4096)
    s.close()
    expect(head.startswith(b"HTTP/1.1 405"), "POST: %r" % head[:40])
    s = socket.create_connection((HOST, gw().admin_port), timeout=T(5))
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    head = s.recv(4096)
    s.close()
    expect(head.startswith(b"HTTP/1.1 505"), "HTTP/1.0: %r" % head[:40])


TESTS = [
    ("admin /healthz answers 200 ok, unknown paths 404", t_healthz),
    ("wsgate --healthcheck: 0 on 200, 1 on 404 or refused, 2 on a bad URL",
     t_healthcheck_cli),
    ("/metrics is valid exposition format and its counters move",
     t_metrics_format_and_counters),
    ("two workers: connections served and counted across both",
     t_workers_share_the_load),
    ("two workers: 200 connections split within one, handed-over ones serve",
     t_workers_balanced),
    ("workers = auto: one per CPU of the affinity mask",
     t_workers_auto_follows_affinity),
    ("cpu_affinity: auto pins a worker per CPU when they match; off (the "
     "default) and fewer workers pin nothing",
     t_cpu_affinity),
    ("SIGHUP reload: new routes for new connections, live session continues, "
     "no TLS reload line without TLS",
     t_reload_with_live_session),
    ("SIGHUP with a bad file: refused with file:line:key, old config kept",
     t_bad_reload_keeps_config),
    ("admin endpoint answers bad requests with 405/505",
     t_admin_rejects_bad_requests),
    ("more idle admin connections than the cap: /healthz and /metrics "
     "still answer 200 at once, the oldest idle ones make room",
     t_idle_connections_do_not_lock_out_probes),
    ("an admin connection without a whole request is closed at the request "
     "timeout, also when it trickles bytes",
     t_idle_connection_closed_after_limit),
    ("SIGTERM: /healthz turns 503 while draining, clients get 1001, exit 0",
     t_sigterm_healthz_503),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=120,
              finish=[("gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
                       lambda: gw().check_stop())])
