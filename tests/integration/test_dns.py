#!/usr/bin/python3
"""
test_dns.py - upstreams named by host name, resolved through the test's own
DNS responder (fake_dns.py, on 127.0.0.1, reached through resolv_conf): a
name that resolves, one that does not exist, and the ways a session can end
while its lookup is still pending (the client leaves, connect_timeout fires,
SIGTERM), each of which once let the lookup's callback write into a freed
connection.  A churn of thousands of short-lived sessions on a host-name
route must leave the gateway alive and serving.
"""

import os
import random
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_dns import FakeDns  # noqa: E402
from wsgate_harness import (  # noqa: E402
    CLOCK_SLACK, OP_BINARY, SCALE, T, WRAPPER, EchoUpstream, Gateway, RawWS,
    TestFailure, at_cleanup, expect, expect_eq, once, run_cli, run_tests)

LATE = 0.6          # seconds before the late name is answered
SLOW_CONNECT = 0.3  # connect_timeout of the route whose name never answers


def _dns():
    d = FakeDns()
    at_cleanup(d.stop)
    d.answer("good.wsgate.test", "127.0.0.1")
    d.answer("late.wsgate.test", "127.0.0.1", delay=LATE)
    d.answer("churn.wsgate.test", "127.0.0.1", jitter=0.03)
    d.never("slow.wsgate.test")
    d.nxdomain("nx.wsgate.test")
    return d


dns = once(_dns)
echo = once(lambda: EchoUpstream())
_dir = tempfile.mkdtemp(prefix="wsgate-dns-")


def _routes():
    port = echo().port
    return {
        "/good": {"upstream": "good.wsgate.test:%d" % port},
        "/late": {"upstream": "late.wsgate.test:%d" % port},
        "/churn": {"upstream": "churn.wsgate.test:%d" % port},
        "/slow": {"upstream": "slow.wsgate.test:%d" % port,
                  "connect_timeout": "%dms" % int(SLOW_CONNECT * 1000)},
        "/nx": {"upstream": "nx.wsgate.test:%d" % port,
                "code_dns": "1014"},
    }


def _start_gw():
    return Gateway(gateway={"resolv_conf": dns().resolv_conf(_dir),
                            "workers": "2"},
                   limits={"ping_interval": "0", "close_timeout": "2s"},
                   routes=_routes(), name="dns gateway").start()


gw = once(_start_gw)


def _serving(g):
    """One echo round trip through the host-name route /good."""
    expect(g.alive(), "the gateway died; log tail:\n%s"
           % "\n".join(g.log_text().splitlines()[-30:]))
    c = RawWS(g.port, "/good", timeout=T(5))
    c.send_binary(b"still here")
    m = c.recv_message()
    expect_eq(m, (OP_BINARY, b"still here"), "echo through /good")
    c.send_close(1000)
    c.expect_close()
    c.close()


def _wait_answers_sent(timeout):
    """Wait until the responder has sent every reply it scheduled."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with dns().lock:
            if not dns().pending:
                return
        time.sleep(0.02)
    raise TestFailure("the DNS responder still holds replies after %.1f s"
                      % timeout)


def t_name_resolves():
    before = dns().count("good.wsgate.test")
    _serving(gw())
    expect(dns().count("good.wsgate.test") > before,
           "the gateway did not ask the test's responder for "
           "good.wsgate.test (queries: %r)" % dns().queries[-5:])


def t_only_our_responder():
    # Every query the gateway made reached the responder named by
    # resolv_conf, and was for a name this test serves.
    names = {n for n, _ in dns().queries}
    expect(names, "no queries at all")
    stray = [n for n in names if not n.endswith("wsgate.test")]
    expect(not stray, "queries for names this test does not serve: %r"
           % stray)


def t_nxdomain_closes_with_code_dns():
    c = RawWS(gw().port, "/nx", timeout=T(5))
    cl = c.expect_close_then_eof(1014, timeout=T(10))
    expect_eq(cl.reason, "upstream name resolution failed", "close reason")
    c.close()


def t_client_leaves_during_lookup():
    # The 101 goes out before the upstream is reached; the client leaves
    # at once, with the lookup of late.wsgate.test still pending.
    for i in range(6):
        c = RawWS(gw().port, "/late", timeout=T(5))
        c.close(rst=(i % 2 == 1))
    # The answers arrive after the sessions are gone.
    _wait_answers_sent(T(LATE * 4 + 2))
    time.sleep(T(0.3))
    _serving(gw())


def t_connect_timeout_during_lookup():
    # slow.wsgate.test is never answered: connect_timeout ends the session
    # while its lookup is pending (no client action needed).
    t0 = time.monotonic()
    c = RawWS(gw().port, "/slow", timeout=T(5))
    cl = c.expect_close_then_eof(1011, timeout=T(10))
    expect_eq(cl.reason, "upstream connect timeout", "close reason")
    # t0 is before the request: the connect timer cannot start earlier.
    expect(time.monotonic() - t0 >= SLOW_CONNECT - CLOCK_SLACK,
           "closed %.2f s after the request, before connect_timeout (%.1f s)"
           % (time.monotonic() - t0, SLOW_CONNECT))
    c.close()
    # evdns gives up on the query itself later (timeout:1 attempts:1).
    time.sleep(T(1.5))
    _serving(gw())


def _churn_client(port, deadline, counts, lock):
    while time.monotonic() < deadline:
        with lock:
            if counts["left"] <= 0:
                return
            counts["left"] -= 1
        try:
            c = RawWS(port, "/churn", timeout=T(5))
        except (OSError, TestFailure) as e:
            with lock:
                counts["errors"].append(repr(e))
            continue
        time.sleep(random.uniform(0, 0.02))
        c.close(rst=random.random() < 0.3)
        with lock:
            counts["done"] += 1


def t_churn_on_a_host_name_route():
    # Thousands of upgrades on a host-name route, each client leaving 0-20 ms
    # after the 101, while answers arrive 0-30 ms after each query.
    n = 2000 if not WRAPPER else int(2000 / SCALE)
    g = gw()
    fds0 = g.fd_count()
    counts = {"left": n, "done": 0, "errors": []}
    lock = threading.Lock()
    deadline = time.monotonic() + T(120)
    threads = [threading.Thread(target=_churn_client,
                                args=(g.port, deadline, counts, lock),
                                daemon=True) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.1, deadline - time.monotonic() + 10))
    expect(g.alive(), "the gateway died during the churn after %d sessions; "
           "log tail:\n%s" % (counts["done"],
                              "\n".join(g.log_text().splitlines()[-30:])))
    expect(not counts["errors"][:1], "%d upgrades failed, first: %s"
           % (len(counts["errors"]), counts["errors"][:1]))
    expect(counts["done"] >= n * 0.9 or time.monotonic() < deadline,
           "only %d of %d sessions within the time bound" % (counts["done"], n))
    _wait_answers_sent(T(5))
    # Every session ended: the descriptors come back.
    end = time.monotonic() + T(15)
    fds = g.fd_count()
    while fds is not None and fds0 is not None and fds > fds0 + 2 \
            and time.monotonic() < end:
        time.sleep(0.1)
        fds = g.fd_count()
    expect(fds is None or fds0 is None or fds <= fds0 + 2,
           "%d descriptors open after the churn, %d before" % (fds, fds0))
    _serving(g)


def t_sigterm_during_lookup():
    # A gateway of its own: SIGTERM while three lookups are pending, the
    # route's connect_timeout far away.  It must exit 0 (the finish step of
    # sanitizer and valgrind runs reads its log for errors and leaks).
    # evdns must not give up on the query first: a long timeout.
    conf = dns().resolv_conf(_dir, timeout_s=60, name="resolv-slow.conf")
    g = Gateway(gateway={"resolv_conf": conf},
                limits={"ping_interval": "0", "drain_timeout": "2s"},
                routes={"/slow": {"upstream": "slow.wsgate.test:%d"
                                  % echo().port,
                                  "connect_timeout": "30s"}},
                name="sigterm gateway").start()
    clients = [RawWS(g.port, "/slow", timeout=T(5)) for _ in range(3)]
    time.sleep(T(0.2))
    g.signal(signal.SIGTERM)
    for c in clients:
        cl = c.expect_close(timeout=T(10))
        expect_eq(cl.code, 1001, "close code on SIGTERM")
        try:
            c.send_close(1001)
        except OSError:
            pass
        c.close()
    g.check_stop()


def t_resolv_conf_must_be_readable():
    # A resolv_conf that cannot be read is a config error naming the key.
    conf = os.path.join(_dir, "bad.ini")
    with open(conf, "w") as f:
        f.write("[gateway]\nlisten = 127.0.0.1:1\nresolv_conf = %s\n"
                "[route /x]\nupstream = echo\n" % _dir)
    rc, out, err = run_cli(["-t", "-c", conf])
    expect(rc != 0, "-t accepted a directory as resolv_conf: %r" % out)
    expect("resolv_conf" in err and "bad.ini:3" in err,
           "error does not name file, line and key: %r" % err)


if __name__ == "__main__":
    run_tests([
        ("a host name is resolved through resolv_conf's server",
         t_name_resolves),
        ("NXDOMAIN closes with the route's code_dns",
         t_nxdomain_closes_with_code_dns),
        ("a client leaving during the lookup: the late answer is harmless",
         t_client_leaves_during_lookup),
        ("connect_timeout during a lookup that is never answered",
         t_connect_timeout_during_lookup),
        ("churn: thousands of sessions leaving during lookups",
         t_churn_on_a_host_name_route),
        ("SIGTERM during lookups: exit 0, nothing leaked",
         t_sigterm_during_lookup),
        ("every lookup went to the test's responder", t_only_our_responder),
        ("resolv_conf that is not a readable file: config error",
         t_resolv_conf_must_be_readable),
    ], limit=300, finish=[
        ("dns gateway exits 0 on SIGTERM (no sanitizer/valgrind errors)",
         lambda: gw().check_stop())])
