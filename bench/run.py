#!/usr/bin/python3
"""
bench/run.py - wsgate side by side with the limit and with other relays, in
one run on this machine, with tools/wsload driving every one of them.

Targets (each in front of the same wsload --serve upstreams):
  direct       tcp:// straight to the upstream: the limit
  haproxy      HAProxy "mode tcp", default buffers (Debian package haproxy)
  haproxy-64k  the same with tune.bufsize 65536
  websockify   Debian's websockify (Python; a process per connection)
  wsgate       this gateway

Workloads: echo of 64-byte messages at 1 and 100 connections; bulk upload
and download of 64 KiB messages at 1 and 8 connections; 9,900 idle
connections held with pings, with the relay's VmRSS growth per connection.

TLS (wss://): wsgate on a `tls` listener, and HAProxy terminating TLS in
"mode tcp" (`bind ... ssl crt`, both buffer sizes) in front of the same
plain upstreams; wsload drives wsgate with wss:// and HAProxy with tls://
(a raw TLS stream: HAProxy does no WebSocket work).  The test CA and the
server certificate (EC P-256) are made with `openssl` in the run's temp
dir.  Workloads: full TLS handshakes per second (wsload --mode handshake:
connect, handshake with no session resumption, upgrade for wss, one echo,
close, again), bulk upload and download of 64 KiB messages at 1
connection, and idle TLS connections held, with RSS per connection.

Every relay of a run is started first; each workload then runs --rounds
times over all targets (their order rotated each round), --duration seconds
each, so that the shared machine's slow minutes fall on every target alike.
Cells are the median round; goal ratios are the median of per-round ratios.

Run 1 ("pinned"): each relay pinned to CPU 0 with one worker/thread, load
generator and upstreams on CPU 1.  Run 2 ("workers2"): relays unpinned with
two workers (wsgate's `workers` key, only if `wsgate -t` accepts it) or two
threads (HAProxy nbthread 2), each with its default thread placement.
Run 3 ("threads-pinned"): the same, but each relay pins its threads one per
CPU itself (wsgate `cpu_affinity = auto`, HAProxy `cpu-map`); the plain
workloads only, no holds, no TLS.  In the pinned run, the downloads also
run with splice(2) (wsgate `splice = on`, HAProxy `option
splice-response`) beside the same relays copying, with wsload's own CPU per
MB (the client's cost of receiving what was spliced).  Every workload is bounded in time; the
script exits 1 if any workload reported an error.

  bench/run.py --build-dir BUILD [--out docs/PERFORMANCE.md] [--duration 4]
               [--rounds 3]
               [--runs pinned,workers2,threads-pinned] [--skip-hold]
               [--skip-tls] [--skip-splice]
"""

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOLD_CONNS = 9900
KIB = 1024
PROC_TIMEOUT_PAD = 60
NOTES_MARK = "<!-- Notes below this line are kept"  # seconds beyond a workload's own bounds

WORKLOADS = [
    # name, wsload mode, connections, size, upstream kind
    ("echo 64 B, 1 conn", "echo", 1, 64, "echo"),
    ("echo 64 B, 100 conns", "echo", 100, 64, "echo"),
    ("upload 64 KiB, 1 conn", "upload", 1, 65536, "sink"),
    ("upload 64 KiB, 8 conns", "upload", 8, 65536, "sink"),
    ("download 64 KiB, 1 conn", "download", 1, 65536, "source"),
    ("download 64 KiB, 8 conns", "download", 8, 65536, "source"),
]
TARGETS = ["direct", "wsgate", "haproxy", "haproxy-64k", "websockify"]

HANDSHAKE_CONNS = 8
HOLD_TLS_CONNS = 2000
TLS_WORKLOADS = [
    ("TLS handshakes, %d conns" % HANDSHAKE_CONNS, "handshake",
     HANDSHAKE_CONNS, 64, "echo"),
    ("TLS upload 64 KiB, 1 conn", "upload", 1, 65536, "sink"),
    ("TLS download 64 KiB, 1 conn", "download", 1, 65536, "source"),
]
TLS_TARGETS = ["wsgate", "haproxy", "haproxy-64k"]

# splice = on (wsgate) and option splice-response (HAProxy) against the
# same relays copying, downloads only (the direction splice serves)
SPLICE_WORKLOADS = [w for w in WORKLOADS if w[1] == "download"]
SPLICE_TARGETS = ["wsgate", "wsgate-splice", "haproxy", "haproxy-splice"]


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise BenchError("nothing listening on port %d after %.0f s" % (port, timeout))


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid):
    total = 0
    # a relay may fork (websockify): count the process only, as documented
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                total = int(line.split()[1])
    return total


def cpu_seconds(pid):
    """User + system CPU time of PID (all its threads), in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def machine():
    model = cores = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True,
                             timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "Model name":
                model = v.strip()
            elif k.strip() == "CPU(s)":
                cores = v.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "%s, %s CPUs, Linux %s" % (model, cores, platform.release())


class Procs:
    """Processes this script started; stopped in reverse order."""

    def __init__(self):
        self.procs = []

    def start(self, name, argv, cpu=None, **kw):
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, **kw)
        self.procs.append((name, p))
        return p

    def stop(self, p, timeout=10):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self):
        for _, p in reversed(list(self.procs)):
            self.stop(p)


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build_dir)
        self.wsload = os.path.join(self.build, "tools", "wsload")
        self.wsgate = args.wsgate or os.path.join(self.build, "src", "wsgate")
        for b in (self.wsload, self.wsgate):
            if not os.access(b, os.X_OK):
                raise BenchError("%s not built (run make first)" % b)
        for tool in ("haproxy", "websockify", "taskset", "openssl"):
            if shutil.which(tool) is None:
                raise BenchError("%s not found: apt-get install -y %s" % (
                    tool, {"taskset": "util-linux"}.get(tool, tool)))
        self.dir = tempfile.mkdtemp(prefix="wsgate-bench-")
        self.procs = Procs()
        self.errors = []
        self.nofile = raise_nofile()
        self.tls = None if args.skip_tls else self.make_certs()
        self.pin_threads = 0  # > 0: relays pin that many threads, one per CPU

    def make_certs(self):
        """A test CA and a server certificate for 127.0.0.1, EC P-256, in
        the run's temp dir; returns their paths."""
        d = self.dir
        f = {k: os.path.join(d, n) for k, n in (
            ("ca_key", "ca.key"), ("ca", "ca.pem"), ("key", "server.key"),
            ("csr", "server.csr"), ("cert", "server.pem"),
            ("ext", "server.ext"), ("both", "server-and-key.pem"))}
        with open(f["ext"], "w") as e:
            e.write("subjectAltName = IP:127.0.0.1\n"
                    "basicConstraints = CA:FALSE\n"
                    "extendedKeyUsage = serverAuth\n")
        steps = [
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey",
             "-noout", "-out", f["ca_key"]],
            ["openssl", "req", "-x509", "-new", "-key", f["ca_key"],
             "-subj", "/CN=wsgate bench CA", "-days", "2", "-out", f["ca"],
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign"],
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey",
             "-noout", "-out", f["key"]],
            ["openssl", "req", "-new", "-key", f["key"], "-subj",
             "/CN=127.0.0.1", "-out", f["csr"]],
            ["openssl", "x509", "-req", "-in", f["csr"], "-CA", f["ca"],
             "-CAkey", f["ca_key"], "-CAcreateserial", "-days", "2",
             "-extfile", f["ext"], "-out", f["cert"]],
        ]
        for argv in steps:
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=30, cwd=d)
            if r.returncode != 0:
                raise BenchError("%s: %s" % (" ".join(argv[:2]),
                                             r.stderr.strip()[-300:]))
        # HAProxy's `crt` takes the certificate and its key in one file
        with open(f["both"], "w") as out:
            for k in ("cert", "key"):
                with open(f[k]) as src:
                    out.write(src.read())
        return f

    # ---- upstreams and relays
    def start_upstreams(self, cpu):
        self.up = {}
        for kind in ("echo", "sink", "source"):
            p = self.procs.start(
                "up-" + kind,
                [self.wsload, "--serve", kind, "0", "--duration", "7200"],
                cpu=cpu, stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline()
            m = re.search(r":(\d+)$", line.strip())
            if not m:
                raise BenchError("wsload --serve %s said %r" % (kind, line))
            self.up[kind] = int(m.group(1))

    def workers_supported(self):
        conf = os.path.join(self.dir, "probe.ini")
        with open(conf, "w") as f:
            f.write("[gateway]\nlisten = 127.0.0.1:1\nworkers = 2\n\n"
                    "[route /echo]\nupstream = echo\n")
        r = subprocess.run([self.wsgate, "-t", "-c", conf],
                           capture_output=True, timeout=30)
        return r.returncode == 0

    def start_wsgate(self, cpu, workers, tls=False, splice=False,
                     binary=None, name="wsgate"):
        port = free_port()
        conf = os.path.join(self.dir, "%s%s%s.ini" % (
            name, "-tls" if tls else "", "-splice" if splice else ""))
        lines = ["[gateway]", "listen = 127.0.0.1:%d%s" % (
                     port, " tls" if tls else ""),
                 "max_connections = 19000", "access_log = off",
                 "log_level = warn"]
        if workers:
            lines.append("workers = %d" % workers)
        if self.pin_threads:
            lines.append("cpu_affinity = auto")
        if splice:
            lines.append("splice = on")
        lines += ["", "[limits]", "handshake_timeout = 60s", ""]
        if tls:
            lines += ["[tls]", "certificate = %s" % self.tls["cert"],
                      "key = %s" % self.tls["key"], ""]
        for kind in ("echo", "sink", "source"):
            lines += ["[route /%s]" % kind,
                      "upstream = 127.0.0.1:%d" % self.up[kind], ""]
        with open(conf, "w") as f:
            f.write("\n".join(lines))
        p = self.procs.start(name, [binary or self.wsgate, "-c", conf],
                             cpu=cpu,
                             stderr=open(conf + ".log", "w"))
        wait_port(port)
        urls = {k: "%s://127.0.0.1:%d/%s" % ("wss" if tls else "ws", port, k)
                for k in self.up}
        return p, urls

    def start_haproxy(self, cpu, threads, bufsize, tls=False, splice=False):
        ports = {k: free_port() for k in self.up}
        conf = os.path.join(self.dir, "haproxy-%s%s%s.cfg" % (
            bufsize or "default", "-tls" if tls else "",
            "-splice" if splice else ""))
        # with splicing HAProxy also reserves fds for pipes (maxconn / 4):
        # 9950 connections would pass the hard fd limit here (20,000)
        maxconn = 1000 if splice else 9950
        lines = ["global", "    maxconn %d" % maxconn,
                 "    nbthread %d" % threads]
        if bufsize:
            lines.append("    tune.bufsize %d" % bufsize)
        if self.pin_threads:
            # thread i on CPU i, as wsgate's cpu_affinity = auto does
            lines.append("    cpu-map auto:1/1-%d 0-%d" % (
                self.pin_threads, self.pin_threads - 1))
        lines += ["defaults", "    mode tcp", "    timeout connect 5s",
                  "    timeout client 120s", "    timeout server 120s",
                  "    maxconn %d" % maxconn]
        if splice:
            # server -> client with splice(2), as wsgate's splice = on
            lines.append("    option splice-response")
        lines.append("")
        for k, port in ports.items():
            bind = "    bind 127.0.0.1:%d" % port
            if tls:
                bind += " ssl crt %s" % self.tls["both"]
            lines += ["listen %s" % k, bind,
                      "    server up 127.0.0.1:%d" % self.up[k], ""]
        with open(conf, "w") as f:
            f.write("\n".join(lines))
        p = self.procs.start("haproxy", ["haproxy", "-db", "-f", conf],
                             cpu=cpu, stdout=subprocess.DEVNULL,
                             stderr=open(conf + ".log", "w"))
        for port in ports.values():
            wait_port(port)
        urls = {k: "%s://127.0.0.1:%d" % ("tls" if tls else "tcp", port)
                for k, port in ports.items()}
        return p, urls

    def start_websockify(self, cpu):
        procs, urls = [], {}
        for k in self.up:
            port = free_port()
            p = self.procs.start(
                "websockify-" + k,
                ["websockify", "127.0.0.1:%d" % port,
                 "127.0.0.1:%d" % self.up[k]],
                cpu=cpu, stdout=subprocess.DEVNULL,
                stderr=open(os.path.join(self.dir, "websockify-%s.log" % k), "w"))
            procs.append(p)
            urls[k] = "ws://127.0.0.1:%d/" % port
        for u in urls.values():
            wait_port(int(re.search(r":(\d+)/", u).group(1)))
        return procs, urls

    # ---- running wsload
    def wsload_run(self, url, mode, conns, size, cpu, duration, extra=(),
                   background=False):
        # without -q in the background: the hold waits for wsload's
        # "N of M connections up" line on stderr
        argv = [self.wsload] + ([] if background else ["-q"]) + ["-m", mode, "-c", str(conns), "-s",
                str(size), "-d", str(duration), "-t", "30"] + list(extra) + [url]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu)] + argv
        if background:
            return subprocess.Popen(argv, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        try:
            r = subprocess.run(argv, capture_output=True, text=True,
                               timeout=duration + PROC_TIMEOUT_PAD)
        except subprocess.TimeoutExpired:
            return None, "timed out"
        return self.parse(r.stdout), r.stderr.strip() if r.returncode else ""

    @staticmethod
    def parse(out):
        for line in out.splitlines():
            if line.startswith("wsload: mode="):
                return dict(kv.split("=", 1) for kv in line[8:].split())
        return None

    def tls_args(self, mode):
        # handshake: the chain check is the load generator's own cost, not
        # the relay's, and this CPU is the one that limits the rate; the
        # other workloads verify the certificate against the test CA
        if mode == "handshake":
            return ["--insecure"]
        return ["--ca", self.tls["ca"]]

    def workload(self, target, url_of, name, mode, conns, size, kind, cpu,
                 pid=None, tls=False):
        cpu0 = cpu_seconds(pid) if pid else None
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res, err = self.wsload_run(url_of[kind], mode, conns, size, cpu,
                                   self.args.duration,
                                   extra=self.tls_args(mode) if tls else ())
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu1 = cpu_seconds(pid) if pid else None
        if res is None or err or res.get("errors") != "0":
            self.errors.append("%s / %s: %s" % (target, name,
                                                err or "no summary line"))
            log("  %-12s %-26s ERROR %s" % (target, name, err))
            return None
        # The relay's CPU time per unit of work: robust when the machine is
        # shared, where throughput alone is not.
        cost = ""
        if cpu0 is not None and cpu1 is not None:
            if mode in ("echo", "handshake") and int(res["msgs"]):
                res["cpu_cost"] = (cpu1 - cpu0) * 1e6 / int(res["msgs"])
                cost = "  relay CPU %.2f us/msg" % res["cpu_cost"]
            elif int(res["bytes"]):
                res["cpu_cost"] = (cpu1 - cpu0) * 1e9 / int(res["bytes"])
                cost = "  relay CPU %.3f ms/MB" % res["cpu_cost"]  # ns/B
        if mode in ("upload", "download") and int(res["bytes"]):
            # wsload's own CPU (it has exited and been waited for)
            load = (ru1.ru_utime + ru1.ru_stime -
                    ru0.ru_utime - ru0.ru_stime)
            res["load_cost"] = load * 1e9 / int(res["bytes"])
        if mode == "echo":
            log("  %-12s %-26s %10.0f msg/s  p99 %s us%s" % (
                target, name, float(res["rate"]), res["p99_us"], cost))
        elif mode == "handshake":
            log("  %-12s %-26s %10.0f handshakes/s  p99 %s us%s" % (
                target, name, float(res["rate"]), res["p99_us"],
                cost.replace("/msg", "/handshake")))
        else:
            log("  %-12s %-26s %10.1f MB/s%s" % (
                target, name, float(res["bps"]) / 1e6, cost))
        return res

    def hold(self, target, pid, url, cpu, conns=HOLD_CONNS, extra=()):
        """Hold CONNS connections; VmRSS growth of PID per connection."""
        before = rss_kib(pid)
        dur = self.args.hold_duration
        p = self.wsload_run(url, "hold", conns, 8, cpu, dur,
                            extra=["-i", "5", "-w", "200"] + list(extra),
                            background=True)
        # wsload says "N of M connections up" on stderr when the hold starts
        deadline = time.monotonic() + 180
        up_line = ""
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            if "connections up" in line:
                up_line = line.strip()
                break
        rss = None
        if up_line:
            time.sleep(min(3.0, dur / 2))
            rss = rss_kib(pid)
        try:
            out, errout = p.communicate(timeout=dur + PROC_TIMEOUT_PAD)
        except subprocess.TimeoutExpired:
            p.kill()
            out, errout = p.communicate()
        res = self.parse(out)
        if res is None or p.returncode != 0 or rss is None:
            self.errors.append("%s / hold: %s" % (
                target, (errout or "no summary").strip().splitlines()[-1:]))
            log("  %-12s hold %d: ERROR %s" % (target, conns, errout.strip()[-300:]))
            return None
        res["rss_per_conn"] = (rss - before) * KIB / conns
        log("  %-12s hold %d: held %s, %.0f bytes RSS per connection" % (
            target, conns, res["held"], res["rss_per_conn"]))
        time.sleep(2)  # let the sockets go before the next target
        return res

    # ---- one run: every relay started, then the workloads in rounds
    def start_target(self, target, label, relay_cpu, workers, tls=False):
        """Start TARGET; returns (processes, pid to measure, urls)."""
        if target == "direct":
            return [], None, {k: "tcp://127.0.0.1:%d" % p
                              for k, p in self.up.items()}
        if target.startswith("wsgate"):
            # pinned: workers = 1 said explicitly (issue 4: one worker on
            # the one CPU)
            p, urls = self.start_wsgate(
                relay_cpu, workers, tls=tls, splice=target == "wsgate-splice",
                binary=self.args.baseline if target == "wsgate-base" else None,
                name=target)
            return [p], p.pid, urls
        if target.startswith("haproxy"):
            p, urls = self.start_haproxy(
                relay_cpu, 1 if label == "pinned" else workers,
                65536 if target == "haproxy-64k" else None, tls=tls,
                splice=target == "haproxy-splice")
            return [p], p.pid, urls
        # a process per connection (forks): no one pid to measure
        procs, urls = self.start_websockify(relay_cpu)
        return procs, None, urls

    def rounds(self, started, workloads, load_cpu, tls=False):
        """Each workload ROUNDS times over all targets, the targets' order
        rotated each round, so that every target sees the same stretch of
        this shared machine's load: a slow minute lowers one round of each,
        not every round of one.  Returns {target: {workload: result}} where
        a result is the round with the median figure, with every round's
        figure under "rounds" (the ratios pair rounds up)."""
        ts = list(started)
        results = {t: {} for t in ts}
        for name, mode, conns, size, kind in workloads:
            key = "rate" if mode in ("echo", "handshake") else "bps"
            per = {t: [] for t in ts}
            for r in range(self.args.rounds):
                k = r % len(ts)
                for t in ts[k:] + ts[:k]:
                    _, pid, urls = started[t]
                    per[t].append(self.workload(
                        t, urls, name, mode, conns, size, kind, load_cpu,
                        pid, tls=tls))
            for t in ts:
                rs = per[t]
                if any(x is None for x in rs):
                    results[t][name] = None
                    continue
                order = sorted(rs, key=lambda x: float(x[key]))
                med = dict(order[(len(order) - 1) // 2])
                med["rounds"] = [float(x[key]) for x in rs]
                med["p99_rounds"] = [int(x.get("p99_us", 0)) for x in rs]
                costs = [x["cpu_cost"] for x in rs if "cpu_cost" in x]
                if costs:
                    med["cpu_cost"] = sorted(costs)[(len(costs) - 1) // 2]
                results[t][name] = med
        return results

    def run(self, label, relay_cpu, load_cpu, workers):
        log("== run %s: relay CPU %s, load CPU %s, workers %s, %d rounds" % (
            label, relay_cpu if relay_cpu is not None else "any",
            load_cpu if load_cpu is not None else "any", workers,
            self.args.rounds))
        self.start_upstreams(load_cpu)
        try:
            started = {t: self.start_target(t, label, relay_cpu, workers)
                       for t in TARGETS}
            results = self.rounds(started, WORKLOADS, load_cpu)
            if not self.args.skip_hold:
                # one target at a time, the others stopped: RSS and fds
                held = ("wsgate", "wsgate-base", "haproxy", "haproxy-64k")
                for t in held:
                    for p in started.get(t, ([],))[0]:
                        self.procs.stop(p)
                for t in held:
                    if t not in started:
                        continue
                    procs, pid, urls = self.start_target(
                        t, label, relay_cpu, workers)
                    try:
                        results[t]["hold"] = self.hold(
                            t, pid, urls["echo"], load_cpu)
                    finally:
                        for p in procs:
                            self.procs.stop(p)
            for t in started:
                for p in started[t][0]:
                    self.procs.stop(p)
            if self.tls:
                results["tls"] = self.run_tls(label, relay_cpu, load_cpu,
                                              workers)
            if label == "pinned" and not self.args.skip_splice:
                results["splice"] = self.run_splice(label, relay_cpu,
                                                    load_cpu, workers)
        finally:
            self.procs.stop_all()
        return results

    def run_splice(self, label, relay_cpu, load_cpu, workers):
        """Downloads with and without splice(2), wsgate and HAProxy, the
        upstreams of the current run."""
        started = {t: self.start_target(t, label, relay_cpu, workers)
                   for t in SPLICE_TARGETS}
        try:
            return self.rounds(started, SPLICE_WORKLOADS, load_cpu)
        finally:
            for t in started:
                for p in started[t][0]:
                    self.procs.stop(p)

    def run_tls(self, label, relay_cpu, load_cpu, workers):
        """The wss:// workloads: wsgate on a tls listener, HAProxy
        terminating TLS; the upstreams of the current run."""
        ts = [t for t in TLS_TARGETS if t in TARGETS]
        started = {t: self.start_target(t, label, relay_cpu, workers,
                                        tls=True) for t in ts}
        try:
            results = self.rounds(started, TLS_WORKLOADS, load_cpu, tls=True)
        finally:
            for t in started:
                for p in started[t][0]:
                    self.procs.stop(p)
        if not self.args.skip_hold:
            for t in ts:
                procs, pid, urls = self.start_target(t, label, relay_cpu,
                                                     workers, tls=True)
                try:
                    results[t]["hold"] = self.hold(
                        t, pid, urls["echo"], load_cpu,
                        conns=HOLD_TLS_CONNS, extra=self.tls_args("hold"))
                finally:
                    for p in procs:
                        self.procs.stop(p)
        return results


def fmt_cell(res, name):
    if res is None:
        return "error"
    if name == "hold":
        return "%s held, %.0f B/conn" % (res["held"], res["rss_per_conn"])
    if res["mode"] == "handshake":
        return "%.0f/s, p99 %s us" % (float(res["rate"]), res["p99_us"])
    if res["mode"] == "echo":
        return "%.0f/s, p99 %s us" % (float(res["rate"]), res["p99_us"])
    return "%.0f MB/s" % (float(res["bps"]) / 1e6)


def table(results, with_hold):
    names = [w[0] for w in WORKLOADS] + (["hold"] if with_hold else [])
    out = ["| workload | " + " | ".join(TARGETS) + " |",
           "|---" * (len(TARGETS) + 1) + "|"]
    for n in names:
        row = []
        for t in TARGETS:
            if n not in results[t]:
                row.append("n/a")
            else:
                row.append(fmt_cell(results[t][n], n))
        label = ("hold %d idle conns (pings), relay RSS" % HOLD_CONNS
                 if n == "hold" else n)
        out.append("| %s | %s |" % (label, " | ".join(row)))
    return out


def tls_table(results, with_hold):
    """The wss:// rows: wsgate (wss://) and HAProxy terminating TLS (tls://),
    relay CPU per handshake or per MB alongside."""
    ts = list(results)
    names = [w[0] for w in TLS_WORKLOADS] + (["hold"] if with_hold else [])
    out = ["| TLS workload | " + " | ".join(
               "%s (%s)" % (t, "wss://" if t == "wsgate" else "TLS, mode tcp")
               for t in ts) + " |",
           "|---" * (len(ts) + 1) + "|"]
    for n in names:
        row = []
        for t in ts:
            r = results[t].get(n)
            cell = fmt_cell(r, n) if n in results[t] else "n/a"
            if r and "cpu_cost" in r:
                cell += ("; relay CPU %.0f us/handshake" % r["cpu_cost"]
                         if r["mode"] == "handshake"
                         else "; relay CPU %.3f ms/MB" % r["cpu_cost"])
            row.append(cell)
        label = ("hold %d idle TLS conns (pings), relay RSS" % HOLD_TLS_CONNS
                 if n == "hold" else n)
        out.append("| %s | %s |" % (label, " | ".join(row)))
    return out


def tls_goals(results):
    """Issue 5's goals: wsgate at least 90% of HAProxy's handshake rate and
    throughput; idle TLS connections under 40 KiB each."""
    lines = []
    for w in TLS_WORKLOADS:
        name, key = w[0], "rate" if w[1] == "handshake" else "bps"
        for h in ("haproxy", "haproxy-64k"):
            v = ratio(results, "wsgate", h, name, key)
            if v is None:
                lines.append("- %s: wsgate / %s TLS: not measured" % (name, h))
                continue
            lines.append("- %s: wsgate / %s TLS: %.2fx (goal >= 0.90x) %s%s" % (
                name, h, v, "met" if v >= 0.9 else "MISSED",
                ratio_span(results, "wsgate", h, name, key)))
        if w[1] == "handshake":
            g = results.get("wsgate", {}).get(name)
            h = results.get("haproxy", {}).get(name)
            if g and h and "cpu_cost" in g and "cpu_cost" in h:
                lines.append("- %s: relay CPU per handshake, wsgate %.0f us "
                             "vs haproxy %.0f us (%.2fx)" % (
                                 name, g["cpu_cost"], h["cpu_cost"],
                                 g["cpu_cost"] / h["cpu_cost"]))
    hold = results.get("wsgate", {}).get("hold")
    if hold:
        ok = (int(hold["held"]) == HOLD_TLS_CONNS and
              hold["rss_per_conn"] < 40 * KIB)
        lines.append("- TLS hold: %s of %d held, %.1f KiB RSS per connection "
                     "(goal: all, < 40 KiB) %s" % (
                         hold["held"], HOLD_TLS_CONNS,
                         hold["rss_per_conn"] / KIB, "met" if ok else "MISSED"))
    return lines


def splice_table(results):
    """Downloads with and without splice: MB/s, relay and wsload CPU per
    MB, and the splicing relay against its copying self."""
    ts = [t for t in SPLICE_TARGETS if t in results]
    out = ["| download | " + " | ".join(ts) + " |",
           "|---" * (len(ts) + 1) + "|"]
    for w in SPLICE_WORKLOADS:
        row = []
        for t in ts:
            r = results[t].get(w[0])
            if not r:
                row.append("error")
                continue
            row.append("%s; relay CPU %.3f, wsload CPU %.3f ms/MB" % (
                fmt_cell(r, w[0]), r.get("cpu_cost", 0),
                r.get("load_cost", 0)))
        out.append("| %s | %s |" % (w[0], " | ".join(row)))
    out.append("")
    for w in SPLICE_WORKLOADS:
        for a, b in (("wsgate-splice", "wsgate"),
                     ("haproxy-splice", "haproxy"),
                     ("wsgate-splice", "haproxy-splice")):
            v = ratio(results, a, b, w[0], "bps")
            ra, rb = results.get(a, {}).get(w[0]), results.get(b, {}).get(w[0])
            if v is None or not ra or not rb:
                continue
            out.append("- %s: %s / %s: %.2fx MB/s%s; relay CPU per MB "
                       "%.2fx, wsload CPU per MB %.2fx" % (
                           w[0], a, b, v, ratio_span(results, a, b, w[0], "bps"),
                           ra.get("cpu_cost", 0) / max(rb.get("cpu_cost", 0), 1e-9),
                           ra.get("load_cost", 0) / max(rb.get("load_cost", 0), 1e-9)))
    return out


def cost_table(results):
    """Relay CPU time per message (echo) or per MB (bulk)."""
    ts = [t for t in TARGETS if t not in ("direct", "websockify")]
    out = ["| workload (relay CPU) | " + " | ".join(ts) + " |",
           "|---" * (len(ts) + 1) + "|"]
    for w in WORKLOADS:
        row = []
        for t in ts:
            r = results[t].get(w[0])
            if not r or "cpu_cost" not in r:
                row.append("n/a")
            elif w[1] == "echo":
                row.append("%.1f us/msg" % r["cpu_cost"])
            else:
                row.append("%.3f ms/MB" % r["cpu_cost"])
        out.append("| %s | %s |" % (w[0], " | ".join(row)))
    return out


def round_ratios(results, a, b, name, key):
    """A / B for each round (the two measured minutes apart at most, in
    the same round), or None."""
    ra, rb = results.get(a, {}).get(name), results.get(b, {}).get(name)
    if not ra or not rb:
        return None
    xa, xb = ra.get("rounds", [float(ra[key])]), rb.get("rounds", [float(rb[key])])
    if len(xa) != len(xb) or any(v == 0 for v in xb):
        return None
    return [x / y for x, y in zip(xa, xb)]


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def ratio(results, a, b, name, key):
    """The median of the per-round ratios."""
    rs = round_ratios(results, a, b, name, key)
    return median(rs) if rs else None


def ratio_span(results, a, b, name, key):
    rs = round_ratios(results, a, b, name, key)
    if not rs or len(rs) < 2:
        return ""
    return " [rounds %s]" % " ".join("%.2f" % r for r in rs)


def goals(results):
    """The issue's goals as lines "goal: measured -> met/missed"."""
    lines = []

    def check(text, value, want, fmt="%.2fx", span=""):
        if value is None:
            lines.append("- %s: not measured" % text)
            return
        ok = value >= want
        lines.append("- %s: %s (goal >= %s) %s%s" % (
            text, fmt % value, fmt % want, "met" if ok else "MISSED", span))

    for w in WORKLOADS:
        name, mode = w[0], w[1]
        if mode in ("upload", "download"):
            for other, want in (("haproxy-64k", 1.0), ("haproxy", 1.5),
                                ("websockify", 4.0)):
                check("%s: wsgate / %s" % (name, other if other != "haproxy"
                                           else "haproxy default"),
                      ratio(results, "wsgate", other, name, "bps"), want,
                      span=ratio_span(results, "wsgate", other, name, "bps"))
    n = "echo 64 B, 100 conns"
    check("%s: wsgate / haproxy msgs/s" % n,
          ratio(results, "wsgate", "haproxy", n, "rate"), 1.0,
          span=ratio_span(results, "wsgate", "haproxy", n, "rate"))
    g, h = results.get("wsgate", {}).get(n), results.get("haproxy", {}).get(n)
    if g and h:
        gp = median(g.get("p99_rounds", [int(g["p99_us"])]))
        hp = median(h.get("p99_rounds", [int(h["p99_us"])]))
        ok = gp <= hp
        lines.append("- %s: p99 (median of the rounds) wsgate %.0f us vs "
                     "haproxy %.0f us %s" % (n, gp, hp,
                                             "met" if ok else "MISSED"))
    for n in ("echo 64 B, 1 conn", "echo 64 B, 100 conns"):
        check("%s: wsgate / websockify msgs/s" % n,
              ratio(results, "wsgate", "websockify", n, "rate"), 4.0,
              span=ratio_span(results, "wsgate", "websockify", n, "rate"))
    hold = results.get("wsgate", {}).get("hold")
    if hold:
        ok = int(hold["held"]) == HOLD_CONNS and hold["rss_per_conn"] < 3 * KIB
        lines.append("- hold: %s of %d held, %.0f bytes RSS per connection "
                     "(goal: all, < 3072) %s" % (
                         hold["held"], HOLD_CONNS, hold["rss_per_conn"],
                         "met" if ok else "MISSED"))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--build-dir", default=".")
    ap.add_argument("--out", default=None,
                    help="write the report here (e.g. docs/PERFORMANCE.md)")
    ap.add_argument("--duration", type=float, default=4.0,
                    help="seconds per workload, per target, per round")
    ap.add_argument("--rounds", type=int, default=3,
                    help="times each workload runs over all targets")
    ap.add_argument("--hold-duration", type=float, default=12.0)
    ap.add_argument("--runs", default="pinned,workers2,threads-pinned")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-hold", action="store_true")
    ap.add_argument("--skip-tls", action="store_true",
                    help="leave out the wss:// / TLS workloads")
    ap.add_argument("--skip-splice", action="store_true",
                    help="leave out the splice(2) download comparison")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help="a subset of " + ",".join(TARGETS))
    ap.add_argument("--wsgate", default=None,
                    help="the wsgate binary (default BUILD/src/wsgate)")
    ap.add_argument("--baseline", default=None,
                    help="another wsgate binary, run beside it as target "
                    "wsgate-base (a before/after comparison in one run)")
    args = ap.parse_args()
    if args.baseline:
        TARGETS.insert(TARGETS.index("wsgate") + 1, "wsgate-base")

    bad = [t for t in args.targets.split(",") if t not in TARGETS]
    if bad:
        print("bench: unknown target(s): %s" % ", ".join(bad), file=sys.stderr)
        return 2
    TARGETS[:] = [t for t in TARGETS if t in args.targets.split(",")]
    try:
        b = Bench(args)
    except BenchError as e:
        print("bench: %s" % e, file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("bench: needs 2 CPUs (relay on one, load on the other)",
              file=sys.stderr)
        return 2
    report = ["# wsgate performance", "",
              "Measured by `bench/run.py` (`make bench-full`) on %s, %s." % (
                  machine(), datetime.date.today().isoformat()),
              "Every figure in a table comes from the same run; compare "
              "within a table, not across machines.  All relays of a run are "
              "started together; each workload then runs %d rounds of %.0f s "
              "per target, the targets' order rotated each round, so a busy "
              "stretch of this shared machine falls on one round of every "
              "target rather than on every round of one.  A table cell is "
              "the median round; a goal's ratio is the median of the "
              "per-round ratios (each round's ratio in brackets)."
              % (args.rounds, args.duration), ""]
    try:
        for run in [r for r in args.runs.split(",") if r]:
            if run == "pinned":
                res = b.run("pinned", 0, 1, 1)
                title = ("Relay pinned to CPU 0, one worker (HAProxy nbthread 1); "
                         "wsload and the upstreams on CPU 1")
            elif run == "workers2":
                if not b.workers_supported():
                    log("== run workers2 skipped: wsgate -t does not accept "
                        "`workers` yet")
                    report += ["## workers = %d, unpinned" % args.workers, "",
                               "Not run: this wsgate does not have the "
                               "`workers` key yet.", ""]
                    continue
                res = b.run("workers2", None, None, args.workers)
                title = ("workers = %d (HAProxy nbthread %d), nothing pinned" % (
                    args.workers, args.workers))
            elif run == "threads-pinned":
                if not b.workers_supported():
                    continue
                # holds and TLS as in workers2: RSS and handshakes do not
                # depend on where threads run
                skip = (b.args.skip_hold, b.tls)
                b.args.skip_hold, b.tls = True, None
                b.pin_threads = args.workers
                try:
                    res = b.run("threads-pinned", None, None, args.workers)
                finally:
                    b.args.skip_hold, b.tls = skip
                    b.pin_threads = 0
                title = ("workers = %d, each relay pinning its own threads one "
                         "per CPU (wsgate `cpu_affinity = auto`, HAProxy "
                         "`cpu-map auto:1/1-%d 0-%d`); nothing else pinned"
                         % (args.workers, args.workers, args.workers - 1))
            else:
                print("bench: unknown run %s" % run, file=sys.stderr)
                return 2
            tls_res = res.pop("tls", None)
            splice_res = res.pop("splice", None)
            tab = table(res, not args.skip_hold and run != "threads-pinned")
            tab += [""] + cost_table(res)
            gl = goals(res)
            if tls_res:
                tab += ["", "wss:// (TLS 1.3, EC P-256 certificate, full "
                        "handshakes without resumption):", ""]
                tab += tls_table(tls_res, not args.skip_hold)
                gl += tls_goals(tls_res)
            if splice_res:
                tab += ["", "Downloads with splice(2) (wsgate `splice = on`, "
                        "HAProxy `option splice-response`) and without, "
                        "relays started together; wsload's CPU is the "
                        "client's receiving cost:", ""]
                tab += splice_table(splice_res)
            log("\n".join([""] + tab + [""] + gl + [""]))
            report += ["## " + title, ""] + tab + ["", "Goals (ratios from "
                                                   "this run):", ""] + gl + [""]
    finally:
        b.procs.stop_all()
        shutil.rmtree(b.dir, ignore_errors=True)
    report += ["Echo: round trips per second over all connections, one message "
               "in flight per connection, p99 latency from wsload's histogram. "
               "Upload/download: payload bytes per second (MB = 10^6 bytes); "
               "every byte received is checked against the test pattern. "
               "Hold: relay VmRSS growth divided by the connections, measured "
               "while all are up (websockify forks a process per connection: "
               "not held).  TLS handshakes: connections set up per second "
               "(connect, full TLS handshake, for wsgate the WebSocket "
               "upgrade, one 64-byte echo, close), p99 from connect to the "
               "echo; wsload verifies the certificate chain in the bulk and "
               "hold workloads, not in the handshake one (its CPU is the "
               "limit there).", ""]
    if args.out:
        # hand-written notes after the marker survive a new run
        notes = ""
        try:
            with open(args.out) as f:
                old = f.read()
            if NOTES_MARK in old:
                notes = "\n" + old[old.index(NOTES_MARK):]
        except OSError:
            pass
        with open(args.out, "w") as f:
            f.write("\n".join(report) + notes)
        log("bench: wrote %s" % args.out)
    if b.errors:
        print("bench: %d workload(s) failed:\n  %s" % (
            len(b.errors), "\n  ".join(b.errors)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
