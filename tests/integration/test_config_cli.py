#!/usr/bin/python3
"""
test_config_cli.py - the command line (-t, -c, -V, -h) and config errors
reported as "FILE:LINE: key: message" with a non-zero exit; good files
(units, IPv6, unix upstreams, every key) accepted with exit 0; for every
key that names a file, -t and a real start accept exactly the same files.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    BIN, REPO, T, WRAPPER, Skip, TestCA, at_cleanup, expect, expect_eq,
    free_port, run_cli, run_tests)

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


# --- -t and a start accept exactly the same files ----------------------------
#
# For every key naming a file, a good file and each way it can be bad:
# wsgate -t and a real start must both refuse it, with a message naming
# the config file, the key and the file, or both accept it.  wsgate
# itself creates no file (it logs to stderr and writes no pid file), so
# the files it reads are all there is to check.

FILES = {}


def files():
    """Good files of every kind in a directory anyone may read (the start
    runs as nobody when we are root, so that mode 000 means unreadable)."""
    if not FILES:
        d = tempfile.mkdtemp(prefix="wsgate-files-")
        at_cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
        os.chmod(d, 0o755)
        ca = TestCA()
        srv = ca.issue("localhost", dns=["localhost"], serial=11)
        sni = ca.issue("other.test", dns=["other.test"], serial=12)
        cli = ca.issue("gateway", serial=13, client=True)
        for name, src in (("ca.pem", ca.cert), ("srv.pem", srv[0]),
                          ("srv.key", srv[1]), ("sni.pem", sni[0]),
                          ("sni.key", sni[1]), ("cli.pem", cli[0]),
                          ("cli.key", cli[1])):
            shutil.copy(src, os.path.join(d, name))
        with open(os.path.join(d, "tokens"), "w") as f:
            f.write("# auth tokens\nsecret-one\n")
        with open(os.path.join(d, "targets"), "w") as f:
            f.write("vnc1: 127.0.0.1:5900\n")
        for name in os.listdir(d):
            os.chmod(os.path.join(d, name), 0o644)
        FILES["dir"] = d
    return FILES


def good(name):
    return os.path.join(files()["dir"], name)


# (what, the key the message names, whether a malformed file starts, the
#  good file, config text with {f} for the file under test)
TLS_LISTEN = "[gateway]\nlisten = 127.0.0.1:{port} tls\nworkers = 1\n"
PLAIN_LISTEN = "[gateway]\nlisten = 127.0.0.1:{port}\nworkers = 1\n"
ROUTE = "\n[route /echo]\nupstream = echo\n"
FILE_KEYS = [
    ("[tls] certificate", "certificate", False, "srv.pem", TLS_LISTEN +
     "[tls]\ncertificate = {f}\nkey = {srv_key}\n" + ROUTE),
    ("[tls] key", "key", False, "srv.key", TLS_LISTEN +
     "[tls]\ncertificate = {srv_pem}\nkey = {f}\n" + ROUTE),
    ("[tls] client_ca", "client_ca", False, "ca.pem", TLS_LISTEN +
     "[tls]\ncertificate = {srv_pem}\nkey = {srv_key}\nclient_ca = {f}\n"
     "client_verify = optional\n" + ROUTE),
    ("[tls NAME] certificate", "certificate", False, "sni.pem", TLS_LISTEN +
     "[tls]\ncertificate = {srv_pem}\nkey = {srv_key}\n"
     "[tls other]\nserver_names = other.test\ncertificate = {f}\n"
     "key = {sni_key}\n" + ROUTE),
    ("[tls NAME] key", "key", False, "sni.key", TLS_LISTEN +
     "[tls]\ncertificate = {srv_pem}\nkey = {srv_key}\n"
     "[tls other]\nserver_names = other.test\ncertificate = {sni_pem}\n"
     "key = {f}\n" + ROUTE),
    ("[route] upstream_ca", "upstream_ca", False, "ca.pem", PLAIN_LISTEN +
     "\n[route /up]\nupstream = tls://localhost:1\nupstream_ca = {f}\n"),
    ("[route] upstream_certificate", "upstream_certificate", False, "cli.pem",
     PLAIN_LISTEN + "\n[route /up]\nupstream = tls://localhost:1\n"
     "upstream_ca = {ca_pem}\nupstream_certificate = {f}\n"
     "upstream_key = {cli_key}\n"),
    ("[route] upstream_key", "upstream_key", False, "cli.key", PLAIN_LISTEN +
     "\n[route /up]\nupstream = tls://localhost:1\nupstream_ca = {ca_pem}\n"
     "upstream_certificate = {cli_pem}\nupstream_key = {f}\n"),
    # token files: lines that cannot be read are skipped with a warning
    # (so that an edit at run time cannot lock everybody out); a file
    # that cannot be read at all is an error
    ("[route] auth_tokens", "auth_tokens", True, "tokens", PLAIN_LISTEN +
     "\n[route /echo]\nupstream = echo\nauth_tokens = {f}\n"),
    ("[route] upstream = tokenfile:", "upstream", True, "targets", PLAIN_LISTEN +
     "\n[route /vnc]\nupstream = tokenfile:{f}\n"
     "target_allow = 127.0.0.0/8:5900-5999\n"),
    # a unix socket is connected per session, never at a start
    ("[route] upstream = unix:", None, True, "app.sock", PLAIN_LISTEN +
     "\n[route /unix]\nupstream = unix:{f}\n"),
]


def as_nobody():
    """preexec_fn dropping to nobody when we are root, else None."""
    if os.geteuid() != 0:
        return None

    def drop():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)
    return drop


def bad_file(kind, name):
    """A file for case KIND ("missing", "directory", "unreadable",
    "malformed") in its own directory."""
    d = tempfile.mkdtemp(prefix="bad-", dir=files()["dir"])
    os.chmod(d, 0o755)
    path = os.path.join(d, name)
    if kind == "directory":
        os.mkdir(path)
        os.chmod(path, 0o755)
    elif kind in ("unreadable", "malformed"):
        with open(path, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 !\n"
                    if kind == "malformed" else "secret-two\n")
        os.chmod(path, 0o000 if kind == "unreadable" else 0o644)
    return path


def run_check(conf):
    p = subprocess.run(WRAPPER + [BIN, "-t", "-c", conf],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=T(20),
                       preexec_fn=as_nobody())
    return p.returncode == 0, (p.stdout + p.stderr).decode("utf-8", "replace")


def run_start(conf):
    """Start the daemon on CONF: (True, log) once it logs that it is ready
    (then it is stopped), (False, log) if it exits first."""
    log = conf + ".log"
    with open(log, "w") as out:
        p = subprocess.Popen(WRAPPER + [BIN, "-c", conf],
                             stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT,
                             preexec_fn=as_nobody())
    deadline = time.monotonic() + T(20)
    started = False
    try:
        while time.monotonic() < deadline:
            with open(log) as f:
                text = f.read()
            if " ready (" in text:
                started = True
                break
            if p.poll() is not None:
                break
            time.sleep(0.02)
        else:
            expect(False, "neither ready nor exited within %.0f s: %r"
                   % (T(20), text))
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=T(20))
    with open(log) as f:
        text = f.read()
    if not started:
        expect(rc != 0, "exited 0 before it was ready: %r" % text)
    return started, text


def check_file_key(what, key, malformed_starts, good_name, template):
    def test():
        cases = [("good", None), ("missing", False), ("directory", False),
                 ("unreadable", False), ("malformed", malformed_starts)]
        if key is None:  # not read at a start: every case starts
            cases = [(k, True) for k, _ in cases]
        port = free_port()
        fs = {n.replace(".", "_"): good(n) for n in
              ("ca.pem", "srv.pem", "srv.key", "sni.pem", "sni.key",
               "cli.pem", "cli.key")}
        for kind, want in cases:
            if kind == "good":
                path = good(good_name)
                want = True
            else:
                path = bad_file(kind, "file.pem")
            conf = os.path.join(os.path.dirname(path) if kind != "good"
                                else files()["dir"],
                                "%s.ini" % kind)
            with open(conf, "w") as f:
                f.write(template.format(f=path, port=port, **fs))
            os.chmod(conf, 0o644)
            ok_t, out_t = run_check(conf)
            ok_s, out_s = run_start(conf)
            label = "%s, %s file" % (what, kind)
            expect(ok_t == ok_s, "%s: wsgate -t %s but a start %s\n"
                   "-t: %s\nstart: %s"
                   % (label, "accepts it" if ok_t else "refuses it",
                      "works" if ok_s else "fails", out_t.strip(),
                      out_s.strip()))
            expect(ok_t == want, "%s: %s, want %s: %s"
                   % (label, "accepted" if ok_t else "refused",
                      "accepted" if want else "refused", out_t.strip()))
            if ok_t and kind == "malformed" and key is not None:
                for who, out in (("-t", out_t), ("start", out_s)):
                    expect(re.search(re.escape(path) + r":\d+: unreadable",
                                     out),
                           "%s: %s does not warn about the skipped line: %r"
                           % (label, who, out.strip()))
            if ok_t:
                continue
            for who, out in (("-t", out_t), ("start", out_s)):
                named = [l for l in out.splitlines() if conf + ":" in l
                         and key + ":" in l and path in l]
                expect(named, "%s: %s does not name %s:LINE, %s and %s: %r"
                       % (label, who, conf, key, path, out.strip()))
    return ("wsgate -t and a start agree on every %s file: good, missing, "
            "a directory, unreadable, malformed" % what, test)


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
] + [check_file_key(*k) for k in FILE_KEYS]

if __name__ == "__main__":
    run_tests(TESTS, limit=240)
