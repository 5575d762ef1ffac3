"""
tap.py - the TAP runner of the integration tests (not a test).

Owns running a test file: run_tests() prints TAP and exits, a watchdog
bails out of a file that runs past its time limit (so every file ends by
itself), and the cleanups registered with at_cleanup() run at the end
either way.  Also the vocabulary of a test body (expect, expect_eq,
TestFailure, Skip, once, diag) and of its timing (SCALE, T, grace,
CLOCK_SLACK): durations scaled for slow runs such as valgrind.
"""

import os
import sys
import threading
import time
import traceback

from harness_env import BIN, WRAPPER


# Timing slack factor: valgrind is ~20x slower, so give it room.
SCALE = float(os.environ.get("WSGATE_TIME_SCALE") or (6 if WRAPPER else 1))


def T(seconds):
    """A duration scaled for slow runs (valgrind)."""
    return seconds * SCALE


# Timing assertions on a busy machine.  A gateway timer runs from a moment
# the client cannot see, so a test brackets it: a lower bound ("not before
# the timeout") counts from a time taken BEFORE the action that arms the
# timer (RawWS.sent_at for timers armed by the upgrade), an upper bound
# ("not long after") from a time taken AFTER it (RawWS.open_at), plus grace().
# libevent may read the coarse monotonic clock, up to a tick (10 ms at
# HZ=100) behind ours: the only tolerance a lower bound needs.
CLOCK_SLACK = 0.02


def grace(*observed):
    """
    How late past a timeout an upper bound lets the close come: T(3), or
    ten times the slowest round trip the test observed (its handshake, say)
    when the machine is that slow.
    """
    return max([T(3)] + [10 * o for o in observed])


class TestFailure(Exception):
    """A failed expectation."""


class Skip(Exception):
    """Skip this test, with a reason (reported as '# SKIP reason')."""


def expect(cond, msg):
    """Fail the current test with MSG unless COND."""
    if not cond:
        raise TestFailure(msg)


def expect_eq(got, want, what):
    """Fail unless GOT == WANT."""
    if got != want:
        raise TestFailure("%s: expected %r, got %r" % (what, want, got))


_cleanups = []
_out_lock = threading.Lock()


def at_cleanup(fn):
    """Run FN when the test file ends (also from the watchdog)."""
    _cleanups.append(fn)


def _run_cleanups():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception:
            pass


def once(factory):
    """
    A function that calls FACTORY the first time and returns its result
    ever after; if FACTORY failed, it raises that failure again at once
    (so one gateway that cannot start does not cost every test a retry).
    """
    state = {}

    def get():
        if "value" in state:
            return state["value"]
        if "error" in state:
            raise TestFailure("(setup failed earlier) %s" % state["error"])
        try:
            state["value"] = factory()
        except Exception as e:  # noqa: BLE001
            state["error"] = str(e).splitlines()[0] if str(e) else repr(e)
            raise
        return state["value"]
    return get


def diag(msg):
    """Print a TAP diagnostic line (or several)."""
    with _out_lock:
        for line in str(msg).splitlines() or [""]:
            sys.stdout.write("# %s\n" % line)
        sys.stdout.flush()


def _watchdog(limit):
    def fire():
        with _out_lock:
            sys.stdout.write("Bail out! watchdog: test file exceeded %.0f s\n"
                             % limit)
            sys.stdout.flush()
        _run_cleanups()
        os._exit(2)
    t = threading.Timer(limit, fire)
    t.daemon = True
    t.start()
    return t


def run_tests(tests, limit=120, finish=None):
    """
    Run TESTS, a list of (name, fn), printing TAP.  FINISH, if given, is a
    list of (name, fn) run after them (e.g. the gateway stop checks).  The
    whole file is bounded by LIMIT seconds (scaled).  Exits the process.
    """
    if not os.path.exists(BIN) and not WRAPPER:
        print("Bail out! wsgate binary not found at %s (build it with make, "
              "or set WSGATE_BIN)" % BIN)
        sys.stdout.flush()
        sys.exit(1)
    all_tests = list(tests) + list(finish or [])
    wd = _watchdog(T(limit))
    print("1..%d" % len(all_tests))
    sys.stdout.flush()
    failed = 0
    for i, (name, fn) in enumerate(all_tests, 1):
        t0 = time.monotonic()
        try:
            fn()
            line = "ok %d - %s" % (i, name)
        except Skip as s:
            line = "ok %d - %s # SKIP %s" % (i, name, s)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            line = "not ok %d - %s" % (i, name)
            with _out_lock:
                print(line)
                sys.stdout.flush()
            if isinstance(e, TestFailure):
                diag("%s" % e)
            else:
                diag(traceback.format_exc())
            diag("(%.2f s)" % (time.monotonic() - t0))
            continue
        with _out_lock:
            print(line)
            sys.stdout.flush()
    wd.cancel()
    _run_cleanups()
    sys.stdout.flush()
    sys.exit(1 if failed else 0)
