#!/usr/bin/python3
"""
test_docker.py - the container image, the compose file and the systemd unit,
checked without a Docker engine (none runs on the build machines).

What a Docker build or run would catch is checked on the parts instead:
docker/Dockerfile is parsed (stages, runtime packages, entry point, health
check) and linted (hadolint when installed, else structural rules that are
themselves tested on bad input); every library the built binary loads must
come from a package the runtime stage installs (ldd + dpkg -S); the configs
the image and compose ship pass wsgate -t; the entry point runs the way the
image runs it and drains on SIGTERM, also as PID 1 of its own pid and network
namespaces; the compose topology runs with busybox's nc as the legacy
service; .dockerignore keeps the sources and drops build leftovers; the
systemd unit verifies with systemd-analyze.

Checks that need the admin listener ([admin], --healthcheck) run only when
"wsgate -h" mentions --healthcheck, and report SKIP otherwise.
"""

import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsgate_harness import (  # noqa: E402
    BIN, HOST, OP_BINARY, OP_TEXT, REPO, SANITIZED, WRAPPER, RawWS, Skip, T,
    TestFailure, at_cleanup, diag, expect, expect_eq, free_port, run_cli,
    run_tests, wait_port)

DOCKERFILE = os.path.join(REPO, "docker", "Dockerfile")
COMPOSE = os.path.join(REPO, "docker", "compose.yaml")
IMAGE_INI = os.path.join(REPO, "docker", "wsgate.ini")
DOCKERIGNORE = os.path.join(REPO, ".dockerignore")
UNIT_IN = os.path.join(REPO, "etc", "wsgate.service.in")
SHIPPED_INI = os.path.join(REPO, "etc", "wsgate.ini")
QUICKSTART = os.path.join(REPO, "tools", "quickstart")
BASE_IMAGE = re.compile(r"^debian:bookworm-slim(@sha256:[0-9a-f]{64})?$")

TMP = tempfile.mkdtemp(prefix="wsgate-docker-")
at_cleanup(lambda: shutil.rmtree(TMP, ignore_errors=True))


# --------------------------------------------------------------------------
# Dockerfile parsing
# --------------------------------------------------------------------------

class Stage:
    """One FROM ... stage: image, alias, [(lineno, INSTRUCTION, args)]."""

    def __init__(self, image, alias, lineno):
        self.image, self.alias, self.lineno = image, alias, lineno
        self.instrs = []

    def all(self, name):
        return [(n, a) for n, i, a in self.instrs if i == name]

    def last(self, name):
        found = self.all(name)
        return found[-1][1] if found else None


def parse_dockerfile(text):
    """Stages of a Dockerfile (continuations joined, comments dropped)."""
    stages = []
    logical = []
    cur, start = "", 0
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not cur and (not line or line.startswith("#")):
            continue
        if cur and line.startswith("#"):
            continue  # a comment inside a continuation is dropped
        if not cur:
            start = n
        if line.endswith("\\"):
            cur += line[:-1] + " "
            continue
        logical.append((start, cur + line))
        cur = ""
    if cur:
        raise TestFailure("Dockerfile ends inside a line continuation")
    for n, line in logical:
        word, _, args = line.partition(" ")
        instr, args = word.upper(), args.strip()
        if instr == "FROM":
            toks = args.split()
            toks = [t for t in toks if not t.startswith("--")]
            alias = toks[2] if len(toks) == 3 and toks[1].upper() == "AS" \
                else None
            expect(len(toks) in (1, 3), "line %d: bad FROM %r" % (n, args))
            stages.append(Stage(toks[0], alias, n))
            continue
        if not stages:
            if instr != "ARG":
                raise TestFailure("line %d: %s before FROM" % (n, instr))
            continue
        stages[-1].instrs.append((n, instr, args))
    return stages


def exec_form(args, what):
    """The argv of a JSON (exec) form, or a TestFailure."""
    try:
        argv = json.loads(args)
    except ValueError:
        raise TestFailure("%s is not in exec (JSON) form: %r; a shell form "
                          "runs /bin/sh as PID 1, which does not pass "
                          "SIGTERM on" % (what, args))
    expect(isinstance(argv, list) and argv and
           all(isinstance(a, str) for a in argv),
           "%s: not a list of strings: %r" % (what, args))
    return argv


def healthcheck_argv(args):
    """(options, argv) of a HEALTHCHECK instruction."""
    toks = args.split(None, 1)
    opts = {}
    while toks and toks[0].startswith("--"):
        k, _, v = toks[0][2:].partition("=")
        opts[k] = v
        toks = toks[1].split(None, 1) if len(toks) > 1 else []
    expect(toks and toks[0].upper() == "CMD" and len(toks) == 2,
           "HEALTHCHECK without CMD: %r" % args)
    return opts, exec_form(toks[1], "HEALTHCHECK CMD")


def shell_commands(run_args):
    """The simple commands of a RUN line, each as a token list."""
    cmds = []
    for seg in re.split(r"&&|\|\||;|\|", run_args):
        try:
            toks = shlex.split(seg)
        except ValueError as e:
            raise TestFailure("RUN does not parse as shell: %s: %r"
                              % (e, run_args))
        while toks and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", toks[0]):
            toks = toks[1:]  # VAR=value prefixes
        if toks:
            cmds.append(toks)
    return cmds


def apt_installs(stage):
    """[(lineno, [packages], [options])] of apt-get install in STAGE's RUNs."""
    out = []
    for n, args in stage.all("RUN"):
        for toks in shell_commands(args):
            if toks[0] in ("apt-get", "apt") and "install" in toks:
                rest = toks[toks.index("install") + 1:]
                pkgs = [t.split("=")[0] for t in rest if not t.startswith("-")]
                opts = [t for t in rest if t.startswith("-")] + \
                    [t for t in toks[1:toks.index("install")]
                     if t.startswith("-")]
                out.append((n, pkgs, opts))
    return out


def dockerfile():
    with open(DOCKERFILE) as f:
        return parse_dockerfile(f.read())


def lint_dockerfile(stages):
    """Structural lint findings (a subset of hadolint's rules), as strings."""
    bad = []
    names = set()
    for si, st in enumerate(stages):
        final = si == len(stages) - 1
        if not BASE_IMAGE.match(st.image):
            bad.append("line %d: FROM %s is not debian:bookworm-slim"
                       % (st.lineno, st.image))
        has_pipefail = False
        for n, instr, args in st.instrs:
            if instr == "SHELL" and "pipefail" in args:
                has_pipefail = True
            if instr == "ADD":
                bad.append("line %d: ADD (use COPY; never fetch URLs at "
                           "build time)%s" % (n, " of a URL" if re.search(
                               r"\w+://", args) else ""))
            if instr == "MAINTAINER":
                bad.append("line %d: MAINTAINER is deprecated" % n)
            if instr == "WORKDIR" and not args.startswith("/"):
                bad.append("line %d: WORKDIR %s is not absolute" % (n, args))
            if instr in ("ENTRYPOINT", "CMD"):
                try:
                    exec_form(args, instr)
                except TestFailure as e:
                    bad.append("line %d: %s" % (n, e))
            if instr == "HEALTHCHECK" and args.upper() != "NONE":
                try:
                    healthcheck_argv(args)
                except TestFailure as e:
                    bad.append("line %d: %s" % (n, e))
            if instr == "COPY":
                m = re.search(r"--from=(\S+)", args)
                if m and m.group(1) not in names:
                    bad.append("line %d: COPY --from=%s names no earlier "
                               "stage" % (n, m.group(1)))
            if instr != "RUN":
                continue
            cmds = shell_commands(args)
            if re.search(r"(?<!\|)\|(?!\|)", args) and not has_pipefail:
                bad.append("line %d: a pipe in RUN without SHELL "
                           "[... -o pipefail ...]" % n)
            for c in cmds:
                if c[0] == "cd":
                    bad.append("line %d: cd in RUN (use WORKDIR)" % n)
                if c[0] == "sudo":
                    bad.append("line %d: sudo in RUN" % n)
                if c[0] in ("apt-get", "apt") and \
                        ("upgrade" in c or "dist-upgrade" in c):
                    bad.append("line %d: apt-get upgrade in RUN (rebuild on "
                               "a newer base image instead)" % n)
                if c[0] == "apt":
                    bad.append("line %d: apt in RUN (use apt-get)" % n)
                if c[0] in ("curl", "wget"):
                    bad.append("line %d: %s in RUN (fetches from the network "
                               "outside the package manager)" % (n, c[0]))
            for toks in cmds:
                if toks[0] != "apt-get" or "install" not in toks:
                    continue
                if not ({"-y", "--yes", "-qy", "-yq"} & set(toks)):
                    bad.append("line %d: apt-get install without -y" % n)
                if "--no-install-recommends" not in toks:
                    bad.append("line %d: apt-get install without "
                               "--no-install-recommends" % n)
                if not any(c[:2] == ["apt-get", "update"] for c in cmds):
                    bad.append("line %d: apt-get install without apt-get "
                               "update in the same RUN (stale cached lists)"
                               % n)
                if not re.search(r"rm -rf /var/lib/apt/lists/\*", args):
                    bad.append("line %d: apt lists not removed in the same "
                               "RUN (rm -rf /var/lib/apt/lists/*)" % n)
        for instr in ("ENTRYPOINT", "CMD", "HEALTHCHECK"):
            if len(st.all(instr)) > 1:
                bad.append("stage at line %d: more than one %s"
                           % (st.lineno, instr))
        if final:
            user = st.last("USER")
            if user is None:
                bad.append("final stage has no USER (runs as root)")
            elif user.split(":")[0] in ("root", "0"):
                bad.append("final stage USER is %s" % user)
        if st.alias:
            names.add(st.alias)
    return bad


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def usage_text():
    rc, out, err = run_cli(["-h"])
    expect_eq(rc, 0, "exit status of wsgate -h")
    return out + err


_admin = []


def has_admin():
    """True when this wsgate has the admin listener and --healthcheck."""
    if not _admin:
        _admin.append("--healthcheck" in usage_text())
    return _admin[0]


NO_ADMIN = ("this wsgate has no admin listener yet (wsgate -h does not "
            "mention --healthcheck)")


def ini_sections(text):
    """{section: {key: value}} of an INI text (last value wins)."""
    out, sec = {}, None
    for line in text.splitlines():
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("["):
            sec = s[1:s.index("]")]
            out.setdefault(sec, {})
            continue
        k, _, v = s.partition("=")
        v = re.split(r"\s[#;]", v, 1)[0]
        out.setdefault(sec, {})[k.strip()] = v.strip()
    return out


def strip_section(text, name):
    """TEXT without section [NAME] (header to the next header)."""
    out, skip = [], False
    for line in text.splitlines(True):
        s = line.strip()
        if s.startswith("["):
            skip = s.startswith("[%s]" % name)
        if not skip:
            out.append(line)
    return "".join(out)


def for_this_binary(text):
    """TEXT as this binary can load it (no [admin] without the feature)."""
    return text if has_admin() else strip_section(text, "admin")


def write_tmp(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def duration_s(v):
    """Seconds of an INI duration (500ms, 30s, 5m, 1h, bare seconds)."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", v.strip())
    expect(m is not None, "bad duration %r" % v)
    mult = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600}[m.group(2)]
    return int(m.group(1)) * mult


def default_drain_timeout():
    """drain_timeout's default, as etc/wsgate.ini documents it."""
    with open(SHIPPED_INI) as f:
        m = re.search(r"^#\s*drain_timeout\s*=\s*(\S+)", f.read(), re.M)
    expect(m is not None, "etc/wsgate.ini does not document drain_timeout")
    return duration_s(m.group(1))


def drain_timeout_of(text):
    v = ini_sections(text).get("limits", {}).get("drain_timeout")
    return duration_s(v) if v else default_drain_timeout()


def image_parts():
    """(runtime stage, ENTRYPOINT argv, CMD argv) of docker/Dockerfile."""
    stages = dockerfile()
    rt = stages[-1]
    ep = exec_form(rt.last("ENTRYPOINT") or "null", "ENTRYPOINT")
    cmd = exec_form(rt.last("CMD") or "null", "CMD")
    return rt, ep, cmd


def config_arg(argv):
    """The path after -c in ARGV."""
    expect("-c" in argv and argv.index("-c") + 1 < len(argv),
           "no -c FILE in %r" % argv)
    return argv[argv.index("-c") + 1]


def with_config(argv, path):
    """ARGV with its -c argument replaced by PATH."""
    i = argv.index("-c")
    return argv[:i + 1] + [path] + argv[i + 2:]


def local_argv(ep, cmd):
    """ENTRYPOINT + CMD for this build: the image's binary path -> BIN."""
    return WRAPPER + [BIN] + ep[1:] + cmd


def wait_exit(proc, timeout):
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def healthcheck(url):
    """Exit status of wsgate --healthcheck URL."""
    rc, _, _ = run_cli(["--healthcheck", url], timeout=T(10))
    return rc


# --------------------------------------------------------------------------
# Dockerfile tests
# --------------------------------------------------------------------------

def t_stages():
    stages = dockerfile()
    expect(len(stages) >= 2, "want a build stage and a runtime stage, got %d"
           % len(stages))
    for st in stages:
        expect(BASE_IMAGE.match(st.image), "line %d: FROM %s (want "
               "debian:bookworm-slim)" % (st.lineno, st.image))
    rt = stages[-1]
    expect(any(re.search(r"--from=%s\b" % re.escape(stages[0].alias or "0"),
                         a) for _, a in rt.all("COPY")),
           "runtime stage copies nothing from the build stage")
    expect_eq(rt.last("STOPSIGNAL"), "SIGTERM", "STOPSIGNAL")
    expect_eq(rt.last("EXPOSE"), "8080", "EXPOSE")


def t_lint():
    stages = dockerfile()
    if shutil.which("hadolint"):
        p = subprocess.run(["hadolint", DOCKERFILE], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=T(60))
        expect(p.returncode == 0, "hadolint:\n%s"
               % p.stdout.decode("utf-8", "replace"))
        diag("hadolint: clean")
    else:
        diag("hadolint is not installed (not packaged in Debian 12): "
             "structural checks only")
    bad = lint_dockerfile(stages)
    expect(not bad, "docker/Dockerfile:\n" + "\n".join(bad))


# Each snippet breaks one rule of lint_dockerfile and must be flagged.
LINT_BAD = [
    ("FROM ubuntu:22.04\nUSER 1000\n", "not debian:bookworm-slim"),
    ("FROM debian:bookworm-slim\nADD https://example.org/x.tgz /x\n"
     "USER 1000\n", "of a URL"),
    ("FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y "
     "--no-install-recommends curl\nUSER 1000\n", "apt lists not removed"),
    ("FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y "
     "curl && rm -rf /var/lib/apt/lists/*\nUSER 1000\n",
     "--no-install-recommends"),
    ("FROM debian:bookworm-slim\nRUN apt-get install -y "
     "--no-install-recommends x && rm -rf /var/lib/apt/lists/*\nUSER 1000\n",
     "without apt-get update"),
    ("FROM debian:bookworm-slim\nCMD wsgate -c /etc/w.ini\nUSER 1000\n",
     "exec (JSON) form"),
    ("FROM debian:bookworm-slim\nENTRYPOINT [\"/usr/bin/wsgate\"]\n",
     "no USER"),
    ("FROM debian:bookworm-slim\nUSER root\n", "USER is root"),
    ("FROM debian:bookworm-slim\nUSER 0:0\n", "USER is 0:0"),
    ("FROM debian:bookworm-slim\nWORKDIR src\nUSER 1000\n", "not absolute"),
    ("FROM debian:bookworm-slim\nRUN cd /tmp && make\nUSER 1000\n",
     "cd in RUN"),
    ("FROM debian:bookworm-slim\nRUN ls | wc -l\nUSER 1000\n", "pipefail"),
    ("FROM debian:bookworm-slim\nCOPY --from=builder /a /a\nUSER 1000\n",
     "names no earlier stage"),
    ("FROM debian:bookworm-slim\nHEALTHCHECK CMD wsgate --healthcheck x\n"
     "USER 1000\n", "HEALTHCHECK CMD is not in exec"),
]


def t_lint_flags_bad_input():
    good = "FROM debian:bookworm-slim AS b\nRUN true\n" \
        "FROM debian:bookworm-slim\nCOPY --from=b /a /a\nUSER 10001:10001\n" \
        "ENTRYPOINT [\"/usr/bin/wsgate\"]\n"
    expect_eq(lint_dockerfile(parse_dockerfile(good)), [], "findings on a "
              "good Dockerfile")
    for text, want in LINT_BAD:
        found = lint_dockerfile(parse_dockerfile(text))
        expect(any(want in f for f in found),
               "lint missed %r in:\n%s(findings: %r)" % (want, text, found))


def ldd_paths(binary):
    """{soname: resolved path} of BINARY's shared libraries (ldd)."""
    p = subprocess.run(["ldd", binary], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=T(30))
    out = p.stdout.decode()
    expect(p.returncode == 0, "ldd %s failed: %s" % (binary, p.stderr))
    libs = {}
    for line in out.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (\S+) \(0x", line)
        if m:
            libs[m.group(1)] = m.group(2)
        elif re.match(r"/\S+ \(0x", line):
            path = line.split()[0]
            libs[os.path.basename(path)] = path
        elif "=> not found" in line:
            raise TestFailure("ldd: %s" % line)
    return libs


def dpkg_owner(path):
    """The package that owns PATH (trying the usrmerge aliases), or None."""
    cands = [path, os.path.realpath(path)]
    for c in list(cands):
        if c.startswith("/usr/lib/"):
            cands.append(c[len("/usr"):])
        elif c.startswith("/lib"):
            cands.append("/usr" + c)
    for c in cands:
        p = subprocess.run(["dpkg-query", "-S", c], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, timeout=T(30))
        if p.returncode == 0:
            first = p.stdout.decode().splitlines()[0]
            return first.split(":", 1)[0].split(",")[0].strip()
    return None


def installed_closure(roots):
    """
    ROOTS plus every installed package they (Pre-)Depend on, transitively:
    what apt-get install ROOTS puts in the image.  None among ROOTS means
    the base image: the Essential and Priority: required packages that
    every debian:*-slim image holds.
    """
    p = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Essential}\t"
                        "${Priority}\t${Pre-Depends}, ${Depends}\n"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       timeout=T(60))
    deps, base = {}, set()
    for line in p.stdout.decode().splitlines():
        name, ess, prio, dep = (line.split("\t") + ["", "", ""])[:4]
        # "a (>= 1) | b, c:any" -> every alternative counts (either may
        # be what the base image has)
        deps[name] = set(re.findall(r"(?:^|[,|]\s*)([a-z0-9][a-z0-9+.-]+)",
                                    dep))
        if ess == "yes" or prio == "required":
            base.add(name)
    pending = [r for r in roots if r is not None]
    if None in roots:
        pending += sorted(base)
    seen = set()
    while pending:
        pkg = pending.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        pending.extend(deps.get(pkg, ()))
    return seen


def t_runtime_libraries():
    if not shutil.which("dpkg-query"):
        raise Skip("no dpkg-query (not a Debian system)")
    rt, _, _ = image_parts()
    installs = apt_installs(rt)
    expect(len(installs) == 1, "want one apt-get install in the runtime "
           "stage, got %d" % len(installs))
    runtime_pkgs = set(installs[0][1])
    libs = ldd_paths(BIN)
    base = installed_closure([None])
    pulled = installed_closure(sorted(runtime_pkgs)) - runtime_pkgs
    missing = []
    used = set()
    for soname, path in sorted(libs.items()):
        if soname.startswith("linux-vdso") or soname.startswith("linux-gate"):
            continue
        if SANITIZED and re.match(r"lib(asan|ubsan|clang_rt)", soname):
            continue  # not in a release build
        pkg = dpkg_owner(path)
        if pkg is None:
            missing.append("%s (%s): no Debian package owns it" % (soname,
                                                                    path))
            continue
        how = "listed"
        if pkg in runtime_pkgs:
            used.add(pkg)
        elif pkg in base:
            how = "in the base image"
        elif pkg in pulled:
            how = "a dependency of a listed package"
        else:
            missing.append("%s (%s) comes from %s, which the runtime stage "
                           "does not install" % (soname, path, pkg))
        diag("%-20s %-42s %s (%s)" % (soname, path, pkg, how))
    expect(not missing, "\n".join(missing))
    expect(used, "no library came from the runtime packages %r"
           % sorted(runtime_pkgs))
    unused = sorted(runtime_pkgs - used - {"ca-certificates"})
    if unused:
        diag("installed for features this build does not link yet: %s"
             % " ".join(unused))
    # Each package named must exist in Debian 12 (dpkg or the apt cache).
    for pkg in sorted(runtime_pkgs):
        known = subprocess.run(["dpkg-query", "-W", pkg],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode == 0
        if not known and shutil.which("apt-cache"):
            p = subprocess.run(["apt-cache", "show", "--no-all-versions", pkg],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=T(30))
            known = p.returncode == 0 and b"Package:" in p.stdout
        expect(known, "runtime package %s is unknown to dpkg and apt" % pkg)


def t_build_packages():
    stages = dockerfile()
    expect(stages[0].alias, "the build stage has no name (FROM ... AS build)")
    installs = apt_installs(stages[0])
    have = set(p for _, pkgs, _ in installs for p in pkgs)
    with open(QUICKSTART) as f:
        m = re.search(r'^BUILD_PKGS="([^"]*)"', f.read(), re.M)
    expect(m is not None, "no BUILD_PKGS in tools/quickstart")
    want = set(m.group(1).split()) | {"check"}
    expect(want <= have, "the build stage lacks %s (tools/quickstart "
           "BUILD_PKGS + check for the unit tests)" % sorted(want - have))
    runs = " ".join(a for _, a in stages[0].all("RUN"))
    for piece in ("autoreconf -fi", "./configure", "--enable-werror",
                  "--prefix=/usr", "--sysconfdir=/etc", "make install "
                  "DESTDIR=/out", " check"):
        expect(piece in runs, "build stage RUN lacks %r" % piece)


def t_entrypoint():
    rt, ep, cmd = image_parts()
    expect_eq(ep, ["/usr/bin/wsgate"], "ENTRYPOINT (prefix /usr)")
    path = config_arg(cmd)
    expect_eq(path, "/etc/wsgate/wsgate.ini", "CMD's config")
    copied = [a.split() for _, a in rt.all("COPY")]
    expect(["docker/wsgate.ini", path] in copied,
           "the runtime stage does not COPY docker/wsgate.ini to %s" % path)
    usage = usage_text()
    for opt in cmd:
        if opt.startswith("-"):
            expect(re.search(r"(^|\s|\[)%s\b" % re.escape(opt), usage),
                   "CMD option %s is not in wsgate -h:\n%s" % (opt, usage))
    # The image's command with -t, on the config the image ships.
    conf = write_tmp("image-t.ini", for_this_binary(open(IMAGE_INI).read()))
    argv = local_argv(ep, with_config(cmd, conf))
    p = subprocess.run(argv[:len(WRAPPER) + 1] + ["-t"] +
                       argv[len(WRAPPER) + 1:], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=T(20))
    expect_eq(p.returncode, 0, "ENTRYPOINT CMD -t (%s)"
              % p.stdout.decode().strip())


def t_healthcheck_instruction():
    rt, ep, _ = image_parts()
    opts, argv = healthcheck_argv(rt.last("HEALTHCHECK") or "")
    expect_eq(argv[0], ep[0], "HEALTHCHECK runs the entry point's binary")
    expect_eq(len(argv), 3, "HEALTHCHECK argv length")
    expect_eq(argv[1], "--healthcheck", "HEALTHCHECK option")
    url = urllib.parse.urlsplit(argv[2])
    admin = ini_sections(open(IMAGE_INI).read()).get("admin", {})
    expect_eq("%s://%s%s" % (url.scheme, url.netloc, url.path),
              "http://%s/healthz" % admin.get("listen"),
              "HEALTHCHECK URL vs docker/wsgate.ini [admin] listen")
    expect(duration_s(opts.get("timeout", "30s")) <=
           duration_s(opts.get("interval", "30s")),
           "HEALTHCHECK timeout above its interval")
    if not has_admin():
        raise Skip(NO_ADMIN)
    # Nothing listens on a fresh port: the check must say "unhealthy".
    expect_eq(healthcheck("http://%s:%d/healthz" % (HOST, free_port())), 1,
              "--healthcheck against a closed port")
    rc, _, _ = run_cli(["--healthcheck"])
    expect_eq(rc, 2, "--healthcheck without a URL (bad usage)")


def t_image_config_base():
    text = open(IMAGE_INI).read()
    sec = ini_sections(text)
    expect_eq(sec.get("gateway", {}).get("listen"), "*:8080",
              "docker/wsgate.ini listen (all addresses, the EXPOSEd port)")
    expect_eq(sec.get("admin", {}).get("listen"), "127.0.0.1:9090",
              "docker/wsgate.ini [admin] listen")
    path = write_tmp("image-noadmin.ini", strip_section(text, "admin"))
    rc, out, err = run_cli(["-t", "-c", path])
    expect_eq(rc, 0, "docker/wsgate.ini without [admin] passes -t (%s)"
              % (out + err).strip())


def t_image_config_full():
    if not has_admin():
        raise Skip(NO_ADMIN)
    for path in (IMAGE_INI, compose_config_path()):
        rc, out, err = run_cli(["-t", "-c", path])
        expect_eq(rc, 0, "%s passes -t (%s)" % (path, (out + err).strip()))


# --------------------------------------------------------------------------
# The entry point, run the way the image runs it
# --------------------------------------------------------------------------

def echo_roundtrip(port, path="/echo", data=b"through the entry point"):
    ws = RawWS(port, path, timeout=T(5))
    ws.send_binary(data)
    got = b""
    deadline = time.monotonic() + T(5)
    while len(got) < len(data) and time.monotonic() < deadline:
        op, chunk = ws.recv_message(timeout=T(5))
        expect(op in (OP_BINARY, OP_TEXT), "data message expected, got %r"
               % op)
        got += chunk
    expect_eq(got, data, "echo through %s" % path)
    return ws


def drain_and_check(ws, stop, wait, drain):
    """STOP() sends SIGTERM; WS gets 1001; WAIT(timeout) gives the status."""
    t0 = time.monotonic()
    stop()
    ws.expect_close_then_eof(1001, timeout=T(5))
    ws.close()
    rc = wait(T(drain + 5))
    took = time.monotonic() - t0
    expect(rc is not None, "no exit within drain_timeout (%.0f s) + 5 s"
           % drain)
    expect_eq(rc, 0, "exit status after SIGTERM")
    expect(took <= T(drain), "exit took %.2f s, above drain_timeout %.0f s"
           % (took, drain))
    return took


def start_entrypoint():
    """
    The image's ENTRYPOINT + CMD on its config with the ports moved to free
    ones on 127.0.0.1: (process, port, admin URL, drain_timeout).
    """
    _, ep, cmd = image_parts()
    text = for_this_binary(open(IMAGE_INI).read())
    for _ in range(5):
        port, aport = free_port(), free_port()
        conf = write_tmp("entry.ini", text.replace(
            "*:8080", "%s:%d" % (HOST, port)).replace(
            "127.0.0.1:9090", "%s:%d" % (HOST, aport)))
        proc = subprocess.Popen(local_argv(ep, with_config(cmd, conf)),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        at_cleanup(lambda p=proc: p.poll() is None and p.kill())
        if wait_port(port, T(10)):
            return (proc, port, "http://%s:%d/healthz" % (HOST, aport),
                    drain_timeout_of(text))
        proc.kill()
        err = proc.communicate(timeout=T(10))[1].decode()
        if "in use" not in err.lower():
            raise TestFailure("entry point did not start:\n%s" % err)
    raise TestFailure("no free port after 5 tries")


def t_entrypoint_sigterm():
    proc, port, _, drain = start_entrypoint()
    ws = echo_roundtrip(port)
    took = drain_and_check(ws, lambda: proc.send_signal(signal.SIGTERM),
                           lambda t: wait_exit(proc, t), drain)
    err = proc.stderr.read().decode("utf-8", "replace")
    expect("AddressSanitizer" not in err and "runtime error:" not in err,
           "sanitizer report:\n%s" % err)
    diag("SIGTERM to exit: %.3f s (drain_timeout %.0f s)" % (took, drain))


def t_entrypoint_healthcheck():
    if not has_admin():
        raise Skip(NO_ADMIN)
    proc, port, url, drain = start_entrypoint()
    expect_eq(healthcheck(url), 0, "--healthcheck while serving")
    proc.send_signal(signal.SIGTERM)
    expect_eq(wait_exit(proc, T(drain + 5)), 0, "exit status after SIGTERM")
    expect_eq(healthcheck(url), 1, "--healthcheck after exit")


# --------------------------------------------------------------------------
# Namespaces: PID 1 like in a container, and the compose topology
# --------------------------------------------------------------------------

IFF_UP, SIOCGIFFLAGS, SIOCSIFFLAGS = 0x1, 0x8913, 0x8914


def loopback_up():
    """Bring lo up in a fresh network namespace."""
    import fcntl
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS,
                                                     req))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo",
                                                 flags | IFF_UP))
    finally:
        s.close()


def unshare_works():
    """None when unshare can make pid+net namespaces, else why not."""
    if not shutil.which("unshare"):
        return "no unshare (util-linux)"
    p = subprocess.run(["unshare", "--net", "--pid", "--fork", "true"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=T(10))
    if p.returncode != 0:
        return "unshare --net --pid is not permitted here: %s" \
            % p.stdout.decode().strip()
    return None


def child_pid(pid, timeout):
    """The first child of PID (unshare --fork's child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except OSError:
            pass
        time.sleep(0.02)
    raise TestFailure("unshare started no child")


def nspid(pid):
    """The NSpid line of PID: its pid in each nested pid namespace."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("NSpid:"):
                return [int(x) for x in line.split()[1:]]
    return []


def netns_child(scenario):
    """
    Runs inside "unshare --net": only a loopback exists, so the configs
    run with their real ports (8080, 9090, 7000).  Exit 0 on success; else
    the failure on stdout.
    """
    loopback_up()
    _, ep, cmd = image_parts()
    admin = has_admin()
    procs = []

    def cleanup():
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    try:
        if scenario == "compose":
            import yaml
            with open(COMPOSE) as f:
                legacy = yaml.safe_load(f)["services"]["legacy"]["command"]
            procs.append(subprocess.Popen(["busybox"] + legacy,
                                          stdin=subprocess.DEVNULL))
            text = open(compose_config_path()).read()
            text = re.sub(r"(upstream\s*=\s*)legacy:", r"\g<1>127.0.0.1:",
                          text)
            conf = write_tmp("compose-ns.ini", for_this_binary(text))
            expect(wait_port(7000, T(5)), "busybox nc did not listen on "
                   "7000")
        else:
            conf = IMAGE_INI if admin else \
                write_tmp("image-ns.ini", for_this_binary(open(
                    IMAGE_INI).read()))
        drain = drain_timeout_of(open(conf).read())
        # PID 1 of its own pid namespace, as in a container; SIGTERM comes
        # from outside that namespace, as from docker stop.
        outer = subprocess.Popen(["unshare", "--pid", "--fork",
                                  "--kill-child"] +
                                 local_argv(ep, with_config(cmd, conf)),
                                 stdin=subprocess.DEVNULL)
        procs.append(outer)
        gw = child_pid(outer.pid, T(5))
        if not WRAPPER:
            ids = nspid(gw)
            expect(ids[-1:] == [1], "wsgate is not PID 1 of its namespace "
                   "(NSpid %r)" % ids)
        expect(wait_port(8080, T(10)), "nothing listens on 127.0.0.1:8080")
        if admin:
            expect_eq(healthcheck("http://127.0.0.1:9090/healthz"), 0,
                      "HEALTHCHECK command while serving")
        else:
            print("# HEALTHCHECK command not run: " + NO_ADMIN)
        ws = echo_roundtrip(8080)
        if scenario == "compose":
            ws2 = echo_roundtrip(8080, "/legacy", b"hello legacy\n")
            ws2.send_close(1000)
            ws2.expect_close(timeout=T(5))
            ws2.close()
        took = drain_and_check(ws, lambda: os.kill(gw, signal.SIGTERM),
                               lambda t: wait_exit(outer, t), drain)
        print("# %s: SIGTERM to exit as PID 1: %.3f s" % (scenario, took))
        return 0
    except TestFailure as e:
        print(str(e))
        return 1
    finally:
        cleanup()


def run_in_netns(scenario):
    why = unshare_works()
    if why:
        raise Skip(why)
    p = subprocess.run(["unshare", "--net", "--fork", "--kill-child",
                        sys.executable, os.path.abspath(__file__),
                        "--netns-child", scenario],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=T(60))
    out = p.stdout.decode("utf-8", "replace").strip()
    if p.returncode != 0:
        raise TestFailure("in the namespace (status %d):\n%s"
                          % (p.returncode, out))
    for line in out.splitlines():
        if line.startswith("# "):
            diag(line[2:])


def t_pid1():
    run_in_netns("pid1")


def t_compose_topology():
    if not shutil.which("busybox"):
        raise Skip("busybox is not installed (Debian package busybox)")
    run_in_netns("compose")


# --------------------------------------------------------------------------
# compose.yaml
# --------------------------------------------------------------------------

def compose_doc():
    try:
        import yaml
    except ImportError:
        raise TestFailure("python3-yaml is not installed")
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def compose_config_path():
    """The host file compose mounts as /etc/wsgate/wsgate.ini."""
    for v in compose_doc()["services"]["wsgate"].get("volumes", []):
        if isinstance(v, dict) and v.get("target") == "/etc/wsgate/wsgate.ini":
            return os.path.join(os.path.dirname(COMPOSE), v["source"])
        if isinstance(v, str) and v.split(":")[1:2] == ["/etc/wsgate/wsgate.ini"]:
            return os.path.join(os.path.dirname(COMPOSE), v.split(":")[0])
    raise TestFailure("compose.yaml mounts no /etc/wsgate/wsgate.ini")


def t_compose():
    doc = compose_doc()
    expect(isinstance(doc, dict) and "services" in doc, "no services")
    svcs = doc["services"]
    expect({"wsgate", "legacy"} <= set(svcs), "services: %r" % list(svcs))
    gw = svcs["wsgate"]
    ro = False
    for v in gw.get("volumes", []):
        if isinstance(v, dict) and v.get("target") == "/etc/wsgate/wsgate.ini":
            ro = v.get("read_only") is True
        elif isinstance(v, str) and ":/etc/wsgate/wsgate.ini" in v:
            ro = v.endswith(":ro")
    expect(ro, "the config is not mounted read-only")
    conf = compose_config_path()
    expect(os.path.isfile(conf), "mounted config %s does not exist" % conf)
    text = for_this_binary(open(conf).read())
    rc, out, err = run_cli(["-t", "-c", write_tmp("compose-t.ini", text)])
    expect_eq(rc, 0, "%s passes -t (%s)" % (conf, (out + err).strip()))
    build = gw.get("build", {})
    ctx = os.path.normpath(os.path.join(os.path.dirname(COMPOSE),
                                        build.get("context", ".")))
    expect(os.path.isfile(os.path.join(ctx, build.get("dockerfile", ""))),
           "build.dockerfile %r not found under the context %s"
           % (build.get("dockerfile"), ctx))
    expect("8080:8080" in [str(p) for p in gw.get("ports", [])],
           "wsgate does not publish 8080")
    # the route's upstream names the legacy service and its port
    legacy = svcs["legacy"]
    cmd = legacy.get("command")
    expect(isinstance(cmd, list) and cmd[0] == "nc" and "-p" in cmd,
           "legacy command %r" % cmd)
    lport = cmd[cmd.index("-p") + 1]
    ups = [v.get("upstream") for s, v in ini_sections(text).items()
           if s.startswith("route ")]
    expect("legacy:%s" % lport in ups, "no route to legacy:%s in %s (%r)"
           % (lport, conf, ups))
    expect(str(legacy.get("image", "")).startswith("busybox:"),
           "legacy image %r" % legacy.get("image"))
    grace = duration_s(str(gw.get("stop_grace_period", "10s")))
    expect(grace > drain_timeout_of(text), "stop_grace_period %ss is not "
           "above drain_timeout" % grace)


# --------------------------------------------------------------------------
# .dockerignore
# --------------------------------------------------------------------------

def ignore_regex(pattern):
    """A regex for one .dockerignore pattern (Go filepath.Match plus **)."""
    pattern = pattern.strip("/")
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
            continue
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            j = pattern.index("]", i)
            out += pattern[i:j + 1]
            i = j
        else:
            out += re.escape(c)
        i += 1
    return re.compile("^" + out + "(?:/.*)?$")


def dockerignore_rules():
    rules = []
    with open(DOCKERIGNORE) as f:
        for line in f:
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            neg = s.startswith("!")
            rules.append((neg, ignore_regex(s[1:] if neg else s)))
    return rules


def ignored(rules, path):
    out = False
    for neg, rx in rules:
        if rx.match(path):
            out = not neg
    return out


KEEP = ["configure.ac", "Makefile.am", "m4/.keep", "src/main.c",
        "src/config.h", "tests/unit/test_config.c", "tests/fuzz/fuzz_utf8.c",
        "tests/integration/wsgate_harness.py", "docs/wsgate.8",
        "etc/wsgate.ini", "etc/wsgate.service.in", "docker/wsgate.ini",
        "README.md", "tools/quickstart", "bench/bench_core.c"]
DROP = [".git/HEAD", "build/Makefile", "build-asan/src/wsgate", "configure",
        "Makefile.in", "Makefile", "aclocal.m4", "autom4te.cache/output.0",
        "build-aux/compile", "config.status", "config.log", "src/main.o",
        "src/libwsgate.a", "src/wsgate", "tests/unit/test_utf8",
        "tests/fuzz/fuzz_utf8", "test-suite.log",
        "tests/integration/__pycache__/x.pyc", "m4/libtool.m4",
        "src/.deps/main.Po", "wsgate-0.1.0.tar.gz", "wsgate-0.1.0/configure"]


def t_dockerignore():
    rules = dockerignore_rules()
    keep = list(KEEP)
    if os.path.exists(os.path.join(REPO, ".git")) and shutil.which("git"):
        p = subprocess.run(["git", "-C", REPO, "ls-files"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           timeout=T(30))
        if p.returncode == 0:
            keep += [f for f in p.stdout.decode().splitlines()
                     if f not in (".gitignore", ".dockerignore")]
    lost = [f for f in keep if ignored(rules, f)]
    kept = [f for f in DROP if not ignored(rules, f)]
    expect(not lost, ".dockerignore drops sources: %s" % lost[:20])
    expect(not kept, ".dockerignore keeps build leftovers: %s" % kept)
    diag("%d source files kept, %d leftovers dropped" % (len(keep),
                                                         len(DROP)))


# --------------------------------------------------------------------------
# systemd unit
# --------------------------------------------------------------------------

def unit_for_here():
    """etc/wsgate.service.in with this build's binary and a temp etc/."""
    etc = os.path.join(TMP, "etc")
    os.makedirs(os.path.join(etc, "wsgate"), exist_ok=True)
    shutil.copy(SHIPPED_INI, os.path.join(etc, "wsgate", "wsgate.ini"))
    with open(UNIT_IN) as f:
        text = f.read()
    text = text.replace("@bindir@", os.path.dirname(os.path.abspath(BIN)))
    text = text.replace("@sysconfdir@", etc)
    left = re.findall(r"@[a-z_]+@", text)
    expect(not left, "unsubstituted %s left in the unit" % left)
    return write_tmp("wsgate.service", text), text


def unit_keys(text):
    keys = {}
    for line in text.splitlines():
        s = line.strip()
        if s and s[0] not in "#;[" and "=" in s:
            k, _, v = s.partition("=")
            keys.setdefault(k.strip(), []).append(v.strip())
    return keys


def t_unit_keys():
    path, text = unit_for_here()
    keys = unit_keys(text)
    for k, v in (("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                 ("ProtectHome", "yes"), ("NoNewPrivileges", "yes"),
                 ("PrivateTmp", "yes"), ("KillSignal", "SIGTERM"),
                 ("ExecReload", "/bin/kill -HUP $MAINPID")):
        expect_eq(keys.get(k, [None])[-1], v, k)
    expect_eq(sorted(keys.get("RestrictAddressFamilies", [""])[-1].split()),
              ["AF_INET", "AF_INET6", "AF_UNIX"], "RestrictAddressFamilies")
    expect("AmbientCapabilities" not in keys,
           "AmbientCapabilities is on (only for ports below 1024)")
    expect(re.search(r"(?m)^#AmbientCapabilities=CAP_NET_BIND_SERVICE$",
                     text), "no commented AmbientCapabilities hint")
    nofile = int(keys.get("LimitNOFILE", ["0"])[-1])
    expect(nofile >= 2 * 10000 + 32, "LimitNOFILE %d is below what the "
           "default max_connections (10000) needs" % nofile)
    stop = duration_s(keys.get("TimeoutStopSec", ["90s"])[-1])
    drain = default_drain_timeout()
    expect(drain < stop <= drain + 30, "TimeoutStopSec %ss should be a bit "
           "above drain_timeout %ss" % (stop, drain))
    # ExecStart, with -t added, accepts the config it names.
    argv = shlex.split(keys["ExecStart"][-1])
    expect_eq(os.path.realpath(argv[0]), os.path.realpath(BIN), "ExecStart")
    p = subprocess.run(WRAPPER + argv[:1] + ["-t"] + argv[1:],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=T(20))
    expect_eq(p.returncode, 0, "ExecStart -t (%s)" % p.stdout.decode())


def t_unit_verify():
    if not shutil.which("systemd-analyze"):
        raise Skip("systemd-analyze not installed (Debian package systemd)")
    path, _ = unit_for_here()
    cmd = ["systemd-analyze", "verify"]
    env = dict(os.environ)
    if shutil.which("man"):
        # Documentation=man:... must resolve: point man at our pages.
        man = os.path.join(TMP, "man")
        for sec, page in (("8", "wsgate.8"), ("5", "wsgate.ini.5")):
            os.makedirs(os.path.join(man, "man" + sec), exist_ok=True)
            shutil.copy(os.path.join(REPO, "docs", page),
                        os.path.join(man, "man" + sec))
        env["MANPATH"] = man
    else:
        cmd.append("--man=no")
    p = subprocess.run(cmd + [path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=T(60))
    out = p.stdout.decode("utf-8", "replace").strip()
    expect(p.returncode == 0 and not out,
           "systemd-analyze verify (status %d):\n%s" % (p.returncode, out))
    p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                        path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=T(60))
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)",
                  p.stdout.decode("utf-8", "replace"))
    if m:
        diag("systemd-analyze security exposure: %s (0 best, 10 worst)"
             % m.group(1))
        expect(float(m.group(1)) <= 2.0, "exposure %s above 2.0"
               % m.group(1))


TESTS = [
    ("Dockerfile: stages FROM debian:bookworm-slim, STOPSIGNAL, EXPOSE",
     t_stages),
    ("Dockerfile: lint-clean (hadolint or structural rules)", t_lint),
    ("structural lint flags each rule on bad Dockerfiles",
     t_lint_flags_bad_input),
    ("build stage installs BUILD_PKGS + check, builds with -Werror, tests",
     t_build_packages),
    ("every library ldd finds for wsgate is in the runtime stage's packages",
     t_runtime_libraries),
    ("docker/wsgate.ini listens on *:8080 and passes -t (minus [admin])",
     t_image_config_base),
    ("docker/wsgate.ini and compose.ini pass -t as shipped (with [admin])",
     t_image_config_full),
    ("ENTRYPOINT + CMD: exec form, known options, -t on the image config",
     t_entrypoint),
    ("HEALTHCHECK: wsgate --healthcheck on the [admin] URL",
     t_healthcheck_instruction),
    ("entry point on ephemeral ports: echo, SIGTERM -> 1001, exit 0 in time",
     t_entrypoint_sigterm),
    ("HEALTHCHECK command on the running entry point: 0, then 1 once stopped",
     t_entrypoint_healthcheck),
    ("entry point as PID 1 (own pid+net namespaces), shipped config as is",
     t_pid1),
    ("compose.yaml: YAML, read-only config mount, ports, legacy route",
     t_compose),
    ("compose topology in a net namespace: busybox nc legacy via /legacy",
     t_compose_topology),
    (".dockerignore keeps the sources and drops build leftovers",
     t_dockerignore),
    ("systemd unit: sandboxing, limits, stop timeout, ExecStart -t",
     t_unit_keys),
    ("systemd unit: systemd-analyze verify and security", t_unit_verify),
]

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--netns-child":
        try:
            status = netns_child(sys.argv[2])
        finally:
            shutil.rmtree(TMP, ignore_errors=True)
        sys.exit(status)
    run_tests(TESTS, limit=150)
