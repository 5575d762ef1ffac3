#!/usr/bin/python3
"""
test_config_cli.py - the command line (-t, -c, -V, -h) and config errors
reported as "FILE:LINE: key: message" with a non-zero exit; good files
(units, IPv6, unix upstreams, every key) accepted with exit 0.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    BIN, REPO, T, WRAPPER, Skip, at_cleanup, expect, expect_eq, free_port, run_cli,
    run_tests)

TMP = tempfile.mkdtemp(prefix="wsgate-cfg-")
at_cleanup(lambda: shutil.rmtree(TMP, ignore_errors=True))

GOOD = """\
# a comment
; another comment
[gateway]
listen = 127.0.0.1:{port}
listen = [::1]:{port2}
max_connections = 100
log_level = debug
access_log = on

[limits]
handshake_timeout = 500ms
max_header_bytes = 8k
buffer_limit = 1m
max_message = 1m
max_frame = 16k
idle_timeout = 5m
ping_interval = 30s
pong_timeout = 10s
close_timeout = 2s
drain_timeout = 1h

[route /echo]
upstream = echo

[route /vnc]
upstream = 127.0.0.1:5900
subprotocols = binary
frame_type = binary
connect_timeout = 1s
on_reset = abort
code_refused = 1013
code_unreachable = 1014
code_timeout = 1014
code_dns = 1014
code_reset = 1011

[route /v6]
upstream = [::1]:22

[route /name]
upstream = example.invalid:80
frame_type = text
on_reset = close

[route /unix]
upstream = unix:/run/app.sock
"""

BASE = """\
[gateway]
listen = 127.0.0.1:8080

[route /echo]
upstream = echo
"""


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def check_bad(name, text, line, key):
    path = write(name + ".ini", text)
    rc, out, err = run_cli(["-t", "-c", path])
    both = out + err
    expect(rc != 0, "exit status 0 for a bad config (%s)" % name)
    prefix = "%s:%d:" % (path, line)
    hits = [l for l in both.splitlines() if prefix in l]
    expect(hits, "no '%s' in the output: %r" % (prefix, both.strip()))
    if key is not None:
        expect(any(("%s %s:" % (prefix, key)) in l or
                   ("%s %s" % (prefix, key)) in l or key in l.split(prefix, 1)[1]
                   for l in hits),
               "the message does not name %r: %r" % (key, hits))
    return hits


# Each bad case: (name, text, line of the error, key named in the message).
BAD = [
    ("unknown key", BASE.replace("listen = 127.0.0.1:8080",
                                  "listen = 127.0.0.1:8080\nbogus = 1"), 3, "bogus"),
    ("unknown key in a route", BASE + "colour = blue\n", 6, "colour"),
    ("unknown section", BASE + "\n[nonsense]\nx = 1\n", 7, "nonsense"),
    ("bad size", BASE + "[limits]\nbuffer_limit = 12q\n", 7, "buffer_limit"),
    ("negative size", BASE + "[limits]\nmax_message = -5\n", 7, "max_message"),
    ("bad duration", BASE + "[limits]\nidle_timeout = soon\n", 7, "idle_timeout"),
    ("bad duration unit", BASE + "[limits]\nping_interval = 5y\n", 7, "ping_interval"),
    ("bad listen port", BASE.replace("127.0.0.1:8080", "127.0.0.1:99999"), 2, "listen"),
    ("bad listen address", BASE.replace("127.0.0.1:8080", "300.1.2.3:80"), 2, "listen"),
    ("listen without port", BASE.replace("127.0.0.1:8080", "127.0.0.1"), 2, "listen"),
    ("duplicate route", BASE + "\n[route /echo]\nupstream = echo\n", 7, "/echo"),
    ("close code 1006", BASE + "code_refused = 1006\n", 6, "code_refused"),
    ("close code 1005", BASE + "code_reset = 1005\n", 6, "code_reset"),
    ("close code 999", BASE + "code_dns = 999\n", 6, "code_dns"),
    ("bad frame_type", BASE + "frame_type = jpeg\n", 6, "frame_type"),
    ("bad on_reset", BASE + "on_reset = maybe\n", 6, "on_reset"),
    ("bad log_level", BASE.replace("listen = 127.0.0.1:8080",
                                    "listen = 127.0.0.1:8080\nlog_level = loud"), 3, "log_level"),
    ("bad access_log", BASE.replace("listen = 127.0.0.1:8080",
                                     "listen = 127.0.0.1:8080\naccess_log = perhaps"), 3, "access_log"),
    ("bad max_connections", BASE.replace("listen = 127.0.0.1:8080",
                                          "listen = 127.0.0.1:8080\nmax_connections = lots"), 3, "max_connections"),
    ("upstream without port", BASE.replace("upstream = echo", "upstream = somehost"), 5, "upstream"),
    ("upstream bad port", BASE.replace("upstream = echo", "upstream = 127.0.0.1:0"), 5, "upstream"),
    ("bad subprotocol token", BASE + "subprotocols = bin ary\n", 6, "subprotocols"),
    ("bad connect_timeout", BASE + "connect_timeout = never\n", 6, "connect_timeout"),
]


def make_bad_test(name, text, line, key):
    def t():
        check_bad(name.replace(" ", "_"), text, line, key)
    return ("-t rejects %s at line %d naming %s" % (name, line, key), t)


def t_good_file():
    path = write("good.ini", GOOD.format(port=free_port(), port2=free_port()))
    rc, out, err = run_cli(["-t", "-c", path])
    expect_eq(rc, 0, "exit status of -t on a good file (output %r)"
              % (out + err).strip())


def t_minimal_file():
    path = write("minimal.ini", BASE)
    rc, out, err = run_cli(["-t", "-c", path])
    expect_eq(rc, 0, "exit status (output %r)" % (out + err).strip())


def t_route_without_upstream():
    path = write("noupstream.ini", BASE + "\n[route /empty]\n")
    rc, out, err = run_cli(["-t", "-c", path])
    expect(rc != 0, "a route without an upstream was accepted")
    expect(path in out + err, "message does not name the file: %r" % (out + err))


def t_route_path_without_slash():
    path = write("noslash.ini", BASE + "\n[route echo2]\nupstream = echo\n")
    rc, out, err = run_cli(["-t", "-c", path])
    expect(rc != 0, "route path without a leading / was accepted")
    expect("%s:7:" % path in out + err, "no FILE:7: in %r" % (out + err))


def t_missing_file():
    path = os.path.join(TMP, "does-not-exist.ini")
    rc, out, err = run_cli(["-t", "-c", path])
    expect(rc != 0, "exit 0 for a missing file")
    expect(path in out + err, "message does not name the file: %r" % (out + err))


def t_shipped_config():
    path = os.path.join(REPO, "etc", "wsgate.ini")
    if not os.path.exists(path):
        raise Skip("etc/wsgate.ini not present yet")
    rc, out, err = run_cli(["-t", "-c", path])
    expect_eq(rc, 0, "etc/wsgate.ini passes -t (output %r)" % (out + err).strip())


def t_version():
    rc, out, err = run_cli(["-V"])
    expect_eq(rc, 0, "exit status of -V")
    expect(any(ch.isdigit() for ch in out + err), "no version number in %r"
           % (out + err))


def t_help():
    rc, out, err = run_cli(["-h"])
    expect_eq(rc, 0, "exit status of -h")
    expect("-c" in out + err and "-t" in out + err, "usage does not list -c "
           "and -t: %r" % (out + err))


def t_bad_option():
    rc, out, err = run_cli(["-Z"])
    expect(rc != 0, "exit 0 for an unknown option")


def t_daemon_rejects_bad_config():
    # Without -t: the same message and a non-zero exit, promptly, no listen.
    port = free_port()
    text = BASE.replace("127.0.0.1:8080", "127.0.0.1:%d" % port) + "colour = red\n"
    path = write("daemon-bad.ini", text)
    try:
        p = subprocess.run(WRAPPER + [BIN, "-c", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=T(10))
    except subprocess.TimeoutExpired:
        expect(False, "daemon kept running with a bad config")
    both = (p.stdout + p.stderr).decode("utf-8", "replace")
    expect(p.returncode != 0, "exit 0 with a bad config")
    expect("%s:6:" % path in both and "colour" in both,
           "no FILE:6: colour in %r" % both)


def t_daemon_port_in_use():
    # A listen address that cannot be bound: exit non-zero with a message.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    port = blocker.getsockname()[1]
    path = write("inuse.ini", BASE.replace("127.0.0.1:8080", "127.0.0.1:%d" % port))
    try:
        # Start-up cost on this machine now: the same file, checked only.
        t0 = time.monotonic()
        run_cli(["-t", "-c", path])
        base = time.monotonic() - t0
        t0 = time.monotonic()
        p = subprocess.run(WRAPPER + [BIN, "-c", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=max(T(10), 20 * base))
        both = (p.stdout + p.stderr).decode("utf-8", "replace")
        expect(p.returncode != 0, "exit 0 although the port is taken")
        expect(both.strip() != "", "no message")
        took = time.monotonic() - t0
        expect(took < max(T(5), 10 * base), "slow exit: %.2f s (-t took "
               "%.2f s)" % (took, base))
    except subprocess.TimeoutExpired:
        expect(False, "daemon kept running although it cannot listen")
    finally:
        blocker.close()


TESTS = [
    ("-t accepts a file using every key, units, IPv6, unix upstream", t_good_file),
    ("-t accepts a minimal file", t_minimal_file),
] + [make_bad_test(*b) for b in BAD] + [
    ("-t rejects a route without an upstream", t_route_without_upstream),
    ("-t rejects a route path without a leading /", t_route_path_without_slash),
    ("-t on a missing file: non-zero, names the file", t_missing_file),
    ("etc/wsgate.ini passes -t", t_shipped_config),
    ("-V prints a version, exit 0", t_version),
    ("-h prints usage, exit 0", t_help),
    ("unknown option: non-zero", t_bad_option),
    ("daemon with a bad config: FILE:LINE: key, non-zero", t_daemon_rejects_bad_config),
    ("daemon whose port is taken: non-zero with a message", t_daemon_port_in_use),
]

if __name__ == "__main__":
    run_tests(TESTS, limit=90)
