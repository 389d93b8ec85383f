"""Bulk-resolution throughput: `resolver` against a private Knot DNS, next to its peers.

    .venv/bin/python benchmarks/throughput.py [--names N] [--rounds R] [--clients a,b] [--quick]

(`scripts/bench` installs what this needs and then runs it.) It generates a zone of unique
names in a fixed mix (benchlib.KINDS), starts knotd with one UDP worker pinned to CPU 0 on
127.0.0.1 (plus 127.0.0.1:53 for adnshost), and runs every client as its own process pinned
to CPU 1, interleaved over R rounds. Each client's wall time and CPU time are taken from
`wait4()`, its peak RSS from GNU time; every answer is checked against the zone. It prints
a Markdown table of medians and same-run ratios and writes it, with the machine and date,
to benchmarks/results.md. See benchmarks/README.md for what each client is.

Every DNS packet goes to 127.0.0.1, to the knotd started here; nothing else is asked.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import resource
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    FORWARD_ORIGIN,
    KINDS,
    MAX_NAMES,
    REVERSE_ORIGIN,
    ClientReport,
    Line,
    build_workload,
    canon,
    percentiles,
    write_expectations,
)

import resolver.knot
from resolver.knot import KnotServer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER = "127.0.0.1"
#: knotd's startup check (resolver.knot.START_TIMEOUT) is sized for the tests' small
#: zones; loading a few hundred thousand records takes longer.
KNOT_START_TIMEOUT = 120.0
CONCURRENCY = 1000
ADNS_CHUNK = 200
ADNS_PARALLEL = 5
DNSPYTHON_NAMES = 40_000

#: Child processes still running, killed on the way out whatever happens.
_LIVE: set[subprocess.Popen[bytes]] = set()


class _Child:
    """How clients are started: PYTHONPATH puts the snapshot of resolver/ first, and the
    working directory is not the checkout (whose resolver/ `python -c`/`-m` would find)."""

    env: dict[str, str] | None = None
    cwd: Path = ROOT


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- processes -----------------------------------------------------------------------------


#: GNU time, when installed, reports a client's peak RSS (see `launcher`).
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


@dataclass
class Usage:
    """What one finished process (or a group of them) cost."""

    wall: float = 0.0
    cpu: float = 0.0
    maxrss_kb: int = 0
    returncode: int = 0
    timed_out: bool = False


def launcher(pin: Sequence[str], rss: Path | None) -> list[str]:
    """What goes before a client's argv: the CPU pinning, and GNU time writing the peak RSS
    (`%M`, KiB) to `rss`.

    A client's own `ru_maxrss` from wait4() is useless here: a process started by fork or
    vfork from this (large) Python process and then exec'd keeps, in ru_maxrss, the high-water
    mark of the memory it had before exec, i.e. this process's. GNU time is a small program
    that forks the client itself, so the client starts from time's few hundred KiB.
    """
    if rss is None or GNU_TIME is None:
        return list(pin)
    return [*pin, GNU_TIME, "-f", "%M", "-o", str(rss)]


def read_rss(rss: Path | None) -> int | None:
    """The peak RSS (KiB) GNU time wrote to `rss`, if it did."""
    if rss is None:
        return None
    try:
        last = rss.read_text().strip().splitlines()[-1]
        return int(last)
    except (FileNotFoundError, IndexError, ValueError):
        return None


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _spawn(
    argv: Sequence[str], stdin: Path | None, stdout: Path, stderr: Path
) -> subprocess.Popen[bytes]:
    with contextlib.ExitStack() as files:
        inp = files.enter_context(stdin.open("rb")) if stdin else subprocess.DEVNULL
        out = files.enter_context(stdout.open("wb"))
        err = files.enter_context(stderr.open("ab"))
        proc = subprocess.Popen(
            list(argv),
            stdin=inp,
            stdout=out,
            stderr=err,
            cwd=_Child.cwd,
            env=_Child.env,
            start_new_session=True,
        )
    _LIVE.add(proc)
    return proc


def _reap(proc: subprocess.Popen[bytes], usage: Usage) -> None:
    """wait4() the exited `proc` and add its CPU time (and ru_maxrss) to `usage`."""
    _, status, rusage = os.wait4(proc.pid, 0)
    _LIVE.discard(proc)
    proc.returncode = os.waitstatus_to_exitcode(status)
    usage.cpu += rusage.ru_utime + rusage.ru_stime
    usage.maxrss_kb = max(usage.maxrss_kb, rusage.ru_maxrss)
    if proc.returncode != 0 and usage.returncode == 0:
        usage.returncode = proc.returncode


def _exit_watch(proc: subprocess.Popen[bytes]) -> int:
    """A descriptor that becomes readable when `proc` exits."""
    return os.pidfd_open(proc.pid)


def run_process(
    argv: Sequence[str],
    *,
    pin: Sequence[str],
    stdout: Path,
    stderr: Path,
    timeout: float,
    stdin: Path | None = None,
) -> Usage:
    """Run one client process to its end (killed after `timeout` s) and measure it."""
    usage = Usage()
    rss = stdout.with_suffix(".rss")
    rss.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = _spawn([*launcher(pin, rss), *argv], stdin, stdout, stderr)
    fd = _exit_watch(proc)
    try:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            usage.timed_out = True
            _kill(proc)
        _reap(proc, usage)
    finally:
        os.close(fd)
    usage.wall = time.perf_counter() - started
    usage.maxrss_kb = read_rss(rss) or usage.maxrss_kb
    return usage


def run_pool(
    jobs: Sequence[tuple[Path, Path]],
    argv: Sequence[str],
    *,
    pin: Sequence[str],
    stderr: Path,
    parallel: int,
    timeout: float,
) -> Usage:
    """Run `argv` once per (stdin, stdout) job, `parallel` at a time, until all have exited.

    CPU time is the sum over the processes plus what this process spent starting and
    reaping them. Peak RSS is the first process's, taken through GNU time (wrapping every
    process would add time's own CPU to each); the others run without it.
    """
    usage = Usage()
    pending = list(reversed(jobs))
    running: dict[int, subprocess.Popen[bytes]] = {}
    rss = stderr.with_suffix(".rss")
    rss.unlink(missing_ok=True)
    first = True
    self_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    deadline = started + timeout
    try:
        while pending or running:
            while pending and len(running) < parallel:
                stdin, stdout = pending.pop()
                prefix = launcher(pin, rss if first else None)
                first = False
                proc = _spawn([*prefix, *argv], stdin, stdout, stderr)
                running[_exit_watch(proc)] = proc
            left = deadline - time.perf_counter()
            ready, _, _ = select.select(list(running), [], [], max(0.0, left))
            if not ready and left <= 0:
                usage.timed_out = True
                for proc in running.values():
                    _kill(proc)
                ready = list(running)
                pending.clear()
            for fd in ready:
                _reap(running.pop(fd), usage)
                os.close(fd)
    finally:
        for fd, proc in running.items():
            _kill(proc)
            _reap(proc, usage)
            os.close(fd)
    usage.wall = time.perf_counter() - started
    self_after = resource.getrusage(resource.RUSAGE_SELF)
    usage.cpu += (self_after.ru_utime - self_before.ru_utime) + (
        self_after.ru_stime - self_before.ru_stime
    )
    usage.maxrss_kb = read_rss(rss) or usage.maxrss_kb
    return usage


def kill_all() -> None:
    for proc in list(_LIVE):
        _kill(proc)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(proc.pid, 0)
        _LIVE.discard(proc)


# --- the run's setting ----------------------------------------------------------------------


@dataclass
class Setup:
    """Everything the clients share in one benchmark run."""

    tmp: Path
    lines: list[Line]
    port: int
    pin: list[str]
    timeout: float
    dnspython_names: int
    hosts: Path = field(init=False)
    queries: Path = field(init=False)
    expect: Path = field(init=False)
    rcodes: Path = field(init=False)

    def __post_init__(self) -> None:
        self.hosts = self.tmp / "hosts.txt"
        self.queries = self.tmp / "queries.txt"
        self.expect = self.tmp / "expect.bin"
        self.rcodes = self.tmp / "rcodes.txt"
        self.hosts.write_text("".join(f"{line.literal}\n" for line in self.lines))
        self.queries.write_text("".join(f"{line.qname} {line.qtype}\n" for line in self.lines))
        self.rcodes.write_text("".join(f"{line.rcode}\n" for line in self.lines))
        write_expectations(self.lines, self.expect)

    @property
    def nameserver(self) -> str:
        return f"{SERVER}:{self.port}"

    def files(self, client: str) -> tuple[Path, Path]:
        """Fresh stdout and stderr files for one run of `client`."""
        out, err = self.tmp / f"{client}.out", self.tmp / f"{client}.err"
        for path in (out, err):
            path.unlink(missing_ok=True)
        return out, err


@dataclass
class Measurement:
    """One client's figures in one round."""

    client: str
    round: int
    names: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    maxrss_kb: int = 0
    latency_ms: list[float] = field(default_factory=list)
    correct: int = 0
    error: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    #: CPU seconds used by anything else on the machine while this ran.
    other_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.names / self.wall if self.wall else 0.0

    @property
    def cpu_us_per_name(self) -> float:
        return self.cpu / self.names * 1e6 if self.names else 0.0

    @property
    def other_load(self) -> float:
        """How many CPUs' worth others used meanwhile (0: a quiet machine)."""
        return self.other_cpu / self.wall if self.wall else 0.0


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(text[-lines:])


def _failure(usage: Usage, err: Path) -> str | None:
    if usage.timed_out:
        return "killed after the time limit"
    if usage.returncode != 0:
        return f"exit status {usage.returncode}: {_tail(err)}"
    return None


# --- the clients ----------------------------------------------------------------------------


class Client:
    """One way of resolving the workload; `run` measures it once."""

    name: str = ""
    #: True for the resolver's own command line: the peers are compared with these.
    is_reference = False

    def command(self, setup: Setup) -> list[str]:
        raise NotImplementedError

    def run(self, setup: Setup, round_: int) -> Measurement:
        raise NotImplementedError


def _resolver_command() -> list[str]:
    script = Path(sys.executable).parent / "resolver"
    return [str(script)] if script.exists() else [sys.executable, "-m", "resolver"]


class ResolveCli(Client):
    """`resolver resolve HOSTS -o OUT.jsonl`: end to end, file in, file out."""

    is_reference = True

    def __init__(self, engine: str | None) -> None:
        self.engine = engine
        self.name = f"resolve-cli-{engine}" if engine else "resolve-cli"

    def command(self, setup: Setup) -> list[str]:
        out = setup.tmp / f"{self.name}.jsonl"
        argv = [
            *_resolver_command(),
            "resolve",
            str(setup.hosts),
            "-n",
            setup.nameserver,
            "-o",
            str(out),
            "-c",
            str(CONCURRENCY),
            "--fallback",
            "never",
        ]
        return [*argv, *(["--engine", self.engine] if self.engine else [])]

    def run(self, setup: Setup, round_: int) -> Measurement:
        stdout, stderr = setup.files(self.name)
        result = setup.tmp / f"{self.name}.jsonl"
        result.unlink(missing_ok=True)
        usage = run_process(
            self.command(setup), pin=setup.pin, stdout=stdout, stderr=stderr, timeout=setup.timeout
        )
        m = Measurement(self.name, round_, len(setup.lines), usage.wall, usage.cpu)
        m.maxrss_kb, m.error = usage.maxrss_kb, _failure(usage, stderr)
        m.extra["summary"] = _tail(stderr, 1)
        if result.exists():
            m.correct, m.latency_ms = check_jsonl(result, setup.lines)
            result.unlink()
        return m


def check_jsonl(path: Path, lines: Sequence[Line]) -> tuple[int, list[float]]:
    """(rows that match the zone, at most one per input line; latency p50/p95/p99 in ms)."""
    seen: set[int] = set()
    correct = 0
    elapsed: list[float] = []
    with path.open() as f:
        for text in f:
            row = json.loads(text)
            number = row.get("line", 0)
            if row.get("elapsed_ms") is not None:
                elapsed.append(float(row["elapsed_ms"]))
            if not 0 < number <= len(lines) or number in seen:
                continue
            seen.add(number)
            got = canon(row["status"], row.get("answers") or [], row.get("cnames") or [])
            if got == lines[number - 1].expect:
                correct += 1
    return correct, percentiles(elapsed)


class PythonClient(Client):
    """A client script in benchmarks/ that prints a `ClientReport`."""

    script = ""

    def arguments(self, setup: Setup) -> list[str]:
        raise NotImplementedError

    def command(self, setup: Setup) -> list[str]:
        return [sys.executable, str(HERE / self.script), *self.arguments(setup)]

    def run(self, setup: Setup, round_: int) -> Measurement:
        stdout, stderr = setup.files(self.name)
        usage = run_process(
            self.command(setup), pin=setup.pin, stdout=stdout, stderr=stderr, timeout=setup.timeout
        )
        m = Measurement(self.name, round_, wall=usage.wall, cpu=usage.cpu)
        m.maxrss_kb, m.error = usage.maxrss_kb, _failure(usage, stderr)
        if m.error is None:
            try:
                report = ClientReport.parse(stdout.read_text())
            except ValueError as exc:
                m.error = f"{exc}: {_tail(stderr)}"
            else:
                m.names, m.correct, m.latency_ms = report.names, report.correct, report.latency_ms
                m.extra["inner_s"] = f"{report.elapsed:.2f}"
                m.extra["statuses"] = json.dumps(report.statuses, sort_keys=True)
        return m


class LibraryClient(PythonClient):
    """`Resolver([ns], concurrency=1000).resolve_many(lines)`, results counted in memory."""

    script = "library_client.py"

    def __init__(self, engine: str | None) -> None:
        self.engine = engine
        self.name = f"library-{engine}" if engine else "library"

    def arguments(self, setup: Setup) -> list[str]:
        engine = ["--engine", self.engine] if self.engine else []
        return [
            "--nameserver",
            setup.nameserver,
            "--hosts",
            str(setup.hosts),
            "--expect",
            str(setup.expect),
            "--concurrency",
            str(CONCURRENCY),
            *engine,
        ]


class AiodnsClient(PythonClient):
    """N workers awaiting `aiodns.DNSResolver.query_dns()`, on uvloop."""

    name = "aiodns"
    script = "aiodns_client.py"

    def arguments(self, setup: Setup) -> list[str]:
        return [
            "--nameserver",
            setup.nameserver,
            "--queries",
            str(setup.queries),
            "--expect",
            str(setup.expect),
            "--workers",
            str(CONCURRENCY),
        ]


class DnspythonClient(PythonClient):
    """N workers awaiting `dns.asyncresolver.Resolver.resolve()`, on a prefix of the list."""

    name = "dnspython"
    script = "dnspython_client.py"

    def arguments(self, setup: Setup) -> list[str]:
        return [
            "--server",
            SERVER,
            "--port",
            str(setup.port),
            "--queries",
            str(setup.queries),
            "--expect",
            str(setup.expect),
            "--limit",
            str(setup.dnspython_names),
            "--workers",
            str(CONCURRENCY),
        ]


class FloorClient(PythonClient):
    """A bare Python send/recv loop (no event loop, no decoding, no output): what the
    system calls alone cost per name, for reference."""

    name = "python-floor"
    script = "floor_client.py"

    def arguments(self, setup: Setup) -> list[str]:
        return [
            "--nameserver",
            setup.nameserver,
            "--queries",
            str(setup.queries),
            "--rcodes",
            str(setup.rcodes),
            "--window",
            str(CONCURRENCY),
        ]


class Dnsperf(Client):
    """dnsperf sending every (name, type) once, 100 in flight; -v for per-query rcodes."""

    name = "dnsperf"

    def command(self, setup: Setup) -> list[str]:
        return [
            "dnsperf",
            "-s",
            SERVER,
            "-p",
            str(setup.port),
            "-d",
            str(setup.queries),
            "-q",
            "100",
            "-n",
            "1",
            "-l",
            str(int(setup.timeout)),
            "-t",
            "5",
            "-v",
        ]

    def run(self, setup: Setup, round_: int) -> Measurement:
        stdout, stderr = setup.files(self.name)
        usage = run_process(
            self.command(setup),
            pin=setup.pin,
            stdout=stdout,
            stderr=stderr,
            timeout=setup.timeout + 30,
        )
        m = Measurement(self.name, round_, len(setup.lines), usage.wall, usage.cpu)
        m.maxrss_kb, m.error = usage.maxrss_kb, _failure(usage, stderr)
        want = {line.qname: line.rcode for line in setup.lines}
        latency: list[float] = []
        with stdout.open(errors="replace") as f:
            for text in f:
                if text.startswith("> "):
                    parts = text.split()
                    if len(parts) == 5:
                        rcode, qname, _qtype, seconds = parts[1:]
                        latency.append(float(seconds) * 1000)
                        if want.pop(qname.rstrip(".").lower(), None) == rcode:
                            m.correct += 1
                elif "Queries per second:" in text:
                    m.extra["dnsperf_qps"] = text.split(":", 1)[1].strip()
                elif "Queries lost:" in text:
                    m.extra["lost"] = text.split(":", 1)[1].strip()
                elif text.startswith("Version "):
                    m.extra["version"] = text.split()[1]
        m.latency_ms = percentiles(latency)
        stdout.unlink()
        return m


class Adnshost(Client):
    """adnshost reading chunks of ~200 names on stdin, a few processes at a time."""

    name = "adnshost"

    def __init__(self) -> None:
        self.chunks: list[Path] = []

    def command(self, setup: Setup) -> list[str]:
        return [
            "adnshost",
            "+e",
            "--config",
            f"nameserver {SERVER}",
            "-a",
            "-f",
            "-Fi",
            "-t",
            "a",
        ]

    def prepare(self, setup: Setup) -> None:
        """Write the chunks: A names, then `-t ptr-` (PTR, unchecked) and the PTR names."""
        folder = setup.tmp / "adns"
        folder.mkdir(exist_ok=True)
        self.chunks = []
        for start in range(0, len(setup.lines), ADNS_CHUNK):
            part = setup.lines[start : start + ADNS_CHUNK]
            a = [f"{line.qname}\n" for line in part if line.qtype == "A"]
            ptr = [f"{line.qname}\n" for line in part if line.qtype == "PTR"]
            path = folder / f"chunk{len(self.chunks)}.in"
            path.write_text("".join([*a, *(["-t ptr-\n", *ptr] if ptr else [])]))
            self.chunks.append(path)

    def run(self, setup: Setup, round_: int) -> Measurement:
        if not self.chunks:
            self.prepare(setup)
        _, stderr = setup.files(self.name)
        jobs = [(chunk, chunk.with_suffix(".out")) for chunk in self.chunks]
        usage = run_pool(
            jobs,
            self.command(setup),
            pin=setup.pin,
            stderr=stderr,
            parallel=ADNS_PARALLEL,
            timeout=setup.timeout,
        )
        m = Measurement(self.name, round_, len(setup.lines), usage.wall, usage.cpu)
        m.maxrss_kb = usage.maxrss_kb
        # Exit statuses 1-6 mean "some query failed" (NXDOMAIN, NODATA): normal here.
        if usage.timed_out:
            m.error = "killed after the time limit"
        elif usage.returncode not in range(7):
            m.error = f"exit status {usage.returncode}: {_tail(stderr)}"
        m.extra["processes"] = f"{len(jobs)} x {ADNS_CHUNK} names, {ADNS_PARALLEL} at a time"
        m.correct = check_adns((out for _, out in jobs), setup.lines)
        return m


def check_adns(outputs: Iterator[Path], lines: Sequence[Line]) -> int:
    """How many lines adnshost's `-Fi` output answers as the zone says."""
    records: dict[tuple[str, str], list[str]] = {}
    cname_of: dict[str, str] = {}
    failed: dict[str, str] = {}
    for path in outputs:
        with contextlib.suppress(FileNotFoundError), path.open(errors="replace") as f:
            for text in f:
                parts = text.split()
                if text.startswith("; failed") and len(parts) >= 6:
                    # ; failed <statustype> <statusnum> <statusabbrev> <owner> <cname|$> "..."
                    abbrev, owner = parts[4], parts[5].lower()
                    failed[owner] = {"nodata": "NODATA", "nxdomain": "NXDOMAIN"}.get(
                        abbrev, abbrev.upper()
                    )
                elif len(parts) == 3:
                    owner, rtype, data = parts[0].lower(), parts[1], parts[2].lower()
                    if rtype == "CNAME":
                        cname_of[owner] = data
                    else:
                        records.setdefault((owner, rtype), []).append(data)
        path.unlink(missing_ok=True)
    correct = 0
    for line in lines:
        owner, chain = line.qname, list[str]()
        while owner in cname_of and len(chain) < 16:
            owner = cname_of[owner]
            chain.append(owner)
        if line.qname in failed:
            got = canon(failed[line.qname])
        else:
            got = canon("NOERROR", records.get((owner, line.qtype), []), chain)
        correct += got == line.expect
    return correct


# --- running and reporting ------------------------------------------------------------------


SERVER_RCVBUF = 4 << 20
RMEM_DEFAULT = Path("/proc/sys/net/core/rmem_default")


@contextlib.contextmanager
def default_rcvbuf(size: int) -> Iterator[str]:
    """Raise net.core.rmem_default to `size` while the block runs, then restore it.

    knotd leaves its UDP sockets at the default receive buffer (about 200 KiB, a few hundred
    queries): a client with 1000 queries in flight overflows it, and a dropped query costs
    that client a 2 s retry. Sockets keep the size they were created with, so raising the
    default only while knotd starts is enough. Yields a note for the report.
    """
    try:
        old = int(RMEM_DEFAULT.read_text())
    except (OSError, ValueError):
        yield "server receive buffer: net.core.rmem_default unreadable, left alone"
        return
    if old >= size:
        yield f"server receive buffer: net.core.rmem_default is {old}"
        return
    try:
        RMEM_DEFAULT.write_text(str(size))
    except OSError:
        yield f"server receive buffer: net.core.rmem_default {old} (could not raise it)"
        return
    try:
        yield (
            f"server receive buffer: net.core.rmem_default raised from {old} to {size}"
            " while knotd started, then restored"
        )
    finally:
        RMEM_DEFAULT.write_text(str(old))


def ports(port: int, have_53: bool) -> list[int]:
    return [port, 53] if have_53 else [port]


def udp_rcvbuf(port: int) -> int | None:
    """The receive buffer of the UDP socket bound to 127.0.0.1:`port` (from `ss`)."""
    text = _output(["ss", "-uanmH", "sport", "=", f":{port}", "src", SERVER])
    found = re.search(r"rb(\d+)", text)
    return int(found.group(1)) if found else None


def udp_drops(ports: Sequence[int]) -> int:
    """Datagrams the kernel dropped so far on the UDP sockets bound to 127.0.0.1:`ports`."""
    wanted = {f"0100007F:{port:04X}" for port in ports}
    total = 0
    with contextlib.suppress(OSError), open("/proc/net/udp") as f:
        for text in f:
            fields = text.split()
            if len(fields) > 12 and fields[1] in wanted:
                total += int(fields[-1])
    return total


_TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds spent so far by everything on the machine (all CPUs, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def process_cpu(pid: int | None) -> float:
    """CPU seconds spent so far by process `pid` (all its threads)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def ours() -> float:
    """CPU seconds of this process and of its children reaped so far."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def settle(knot_pid: int | None, budget: float, quiet: float = 0.1) -> float:
    """Wait (at most `budget` s) until nothing else on the machine has used more than `quiet`
    CPUs for a second; returns the seconds waited. Others' benchmarks and test runs on a
    shared machine come in bursts: starting a client in a quiet moment keeps its figures
    clean more often than not.
    """
    started = time.perf_counter()
    calm = 0
    while calm < 2 and time.perf_counter() - started < budget:
        busy, knot, mine = machine_busy(), process_cpu(knot_pid), ours()
        time.sleep(0.5)
        other = machine_busy() - busy - (process_cpu(knot_pid) - knot) - (ours() - mine)
        calm = calm + 1 if other < quiet * 0.5 else 0
    return time.perf_counter() - started


def engine_choices() -> tuple[list[str | None], list[str | None]]:
    """The engines `resolver resolve --engine` and `Resolver(engine=)` offer ([None]: none)."""
    help_text = subprocess.run(
        [*_resolver_command(), "resolve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=_Child.cwd,
        env=_Child.env,
    ).stdout
    found = re.search(r"--engine \{([^}]+)\}", help_text)
    cli: list[str | None] = list(found.group(1).split(",")) if found else [None]
    probe = (
        "import inspect, resolver;"
        " print('engine' in inspect.signature(resolver.Resolver).parameters)"
    )
    has_engine = _output([sys.executable, "-c", probe], child=True) == "True"
    return cli, (cli if has_engine and found else [None])


def snapshot_package(dest: Path, attempts: int = 6) -> str:
    """Copy the working tree's resolver/ package to `dest`/resolver and point every client at
    it (PYTHONPATH), so that one benchmark run measures one version of the code even while
    the tree is being edited; returns a digest of what was copied.

    A copy taken in the middle of someone's edit may not import: then wait and copy again.
    """
    target = dest / "resolver"
    error = ""
    for attempt in range(attempts):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(
            ROOT / "resolver", target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
        path = os.pathsep.join(p for p in (str(dest), os.environ.get("PYTHONPATH")) if p)
        _Child.env = {**os.environ, "PYTHONPATH": path}
        _Child.cwd = dest
        check = subprocess.run(
            [sys.executable, "-c", "import resolver.cli, resolver; print(resolver.__file__)"],
            capture_output=True,
            text=True,
            cwd=_Child.cwd,
            env=_Child.env,
        )
        if check.returncode == 0 and check.stdout.strip().startswith(str(target)):
            digest = hashlib.sha256()
            for file in sorted(target.rglob("*")):
                if file.is_file():
                    digest.update(str(file.relative_to(dest)).encode() + b"\0")
                    digest.update(file.read_bytes())
            return digest.hexdigest()[:12]
        error = (check.stderr.strip().splitlines() or [check.stdout.strip()])[-1]
        if attempt + 1 < attempts:
            log(f"the copy of resolver/ does not import ({error}); trying again in 5 s")
            time.sleep(5)
    raise SystemExit(f"throughput.py: resolver/ does not import: {error}")


def port_53_free() -> bool:
    """Whether 127.0.0.1:53 can be bound (UDP and TCP), for knotd's second listener."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((SERVER, 53))
            except OSError:
                return False
    return True


def select_clients(all_clients: list[Client], wanted: str | None) -> list[Client]:
    if not wanted:
        return all_clients
    chosen: list[Client] = []
    for token in (t.strip() for t in wanted.split(",") if t.strip()):
        hits = [c for c in all_clients if c.name == token or c.name.startswith(token + "-")]
        if not hits:
            names = ", ".join(c.name for c in all_clients)
            raise SystemExit(f"throughput.py: unknown client {token!r} (available: {names})")
        chosen += [c for c in hits if c not in chosen]
    return [c for c in all_clients if c in chosen]


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _fmt_latency(values: list[list[float]], index: int) -> str:
    picked = [v[index] for v in values if len(v) > index]
    return f"{_median(picked):.2f}" if picked else "-"


def medians_table(clients: list[Client], runs: list[Measurement]) -> list[str]:
    rows = [
        "| client | names | names/s | CPU s | CPU µs/name | peak RSS MB "
        "| p50 ms | p95 ms | p99 ms | correct | others' load |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for client in clients:
        ok = [m for m in runs if m.client == client.name and m.error is None and m.names]
        failed = [m for m in runs if m.client == client.name and m.error is not None]
        if not ok:
            reason = failed[0].error if failed else "not run"
            rows.append(f"| {client.name} | failed: {reason} |" + " |" * 9)
            continue
        lat = [m.latency_ms for m in ok]
        name = client.name + (f" ({len(failed)} failed)" if failed else "")
        correct = _median([m.correct / m.names * 100 for m in ok])
        rows.append(
            f"| {name} | {ok[0].names:,} | {_median([m.rate for m in ok]):,.0f} "
            f"| {_median([m.cpu for m in ok]):.2f} "
            f"| {_median([m.cpu_us_per_name for m in ok]):.1f} "
            f"| {_median([m.maxrss_kb / 1024 for m in ok]):.1f} "
            f"| {_fmt_latency(lat, 0)} | {_fmt_latency(lat, 1)} | {_fmt_latency(lat, 2)} "
            f"| {correct:.2f}% | {_median([m.other_load for m in ok]):.2f} |"
        )
    return rows


def ratios_table(clients: list[Client], runs: list[Measurement]) -> list[str]:
    """Per round, resolve-cli's rate / the peer's, and the peer's CPU per name / resolve-cli's."""
    refs = [c for c in clients if c.is_reference]
    peers = [c for c in clients if c not in refs[:1]]
    if not refs or not peers:
        return []
    by = {(m.client, m.round): m for m in runs if m.error is None and m.names}
    head = "| peer |" + "".join(f" {r.name} speed x | {r.name} CPU/name x |" for r in refs)
    rows = [head, "| --- |" + " ---: | ---: |" * len(refs)]
    for peer in peers:
        cells = ""
        for ref in refs:
            speed, cpu = [], []
            for (name, round_), m in by.items():
                own = by.get((ref.name, round_))
                if name == peer.name and own is not None and peer is not ref:
                    speed.append(own.rate / m.rate)
                    if own.cpu_us_per_name:
                        cpu.append(m.cpu_us_per_name / own.cpu_us_per_name)
            cells += f" {_median(speed):.2f} |" if speed else " - |"
            cells += f" {_median(cpu):.2f} |" if cpu else " - |"
        rows.append(f"| {peer.name} |{cells}")
    return rows


def rounds_table(runs: list[Measurement]) -> list[str]:
    rows = [
        "| round | client | wall s | names/s | CPU s | RSS MB | correct | notes |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in runs:
        notes = "; ".join(f"{k}: {v}" for k, v in m.extra.items() if v)
        if m.error:
            notes = f"FAILED: {m.error}; {notes}"
        pct = f"{m.correct / m.names * 100:.2f}%" if m.names else "-"
        rows.append(
            f"| {m.round} | {m.client} | {m.wall:.2f} | {m.rate:,.0f} | {m.cpu:.2f} "
            f"| {m.maxrss_kb / 1024:.1f} | {pct} | {notes.replace('|', '/')} |"
        )
    return rows


def _output(argv: Sequence[str], *, child: bool = False) -> str:
    """The stripped stdout of `argv` ("" if it cannot run); `child`: as clients are run."""
    try:
        return subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            cwd=_Child.cwd if child else ROOT,
            env=_Child.env if child else None,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, str]:
    lscpu = _output(["lscpu"])
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lscpu.splitlines())
    )
    versions = []
    for package in ("pycares", "uvloop", "aiodns", "dnspython"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    dirty = _output(["git", "status", "--porcelain", "--", "resolver", "pyproject.toml"])
    commit = _output(["git", "rev-parse", "--short", "HEAD"]) or "?"
    return {
        "cpu": fields.get("Model name", platform.processor() or "?"),
        "cpus": fields.get("CPU(s)", str(os.cpu_count())),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "knot": _output(["/usr/sbin/knotd", "--version"]) or _output(["knotd", "--version"]),
        "adns": (_output(["adnshost", "--version"]).splitlines() or ["-"])[0],
        "packages": ", ".join(versions),
        "resolver": commit + (" + uncommitted changes in resolver/" if dirty else ""),
    }


def report(
    args: argparse.Namespace,
    clients: list[Client],
    runs: list[Measurement],
    setup: Setup,
    notes: list[str],
    info: dict[str, str],
) -> str:
    counts = {kind: KINDS.count(kind) * 100 // len(KINDS) for kind in dict.fromkeys(KINDS)}
    mix = ", ".join(f"{kind} {pct}%" for kind, pct in counts.items())
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    medians = medians_table(clients, runs)
    pinning = (
        "pinned to CPU 0 (`taskset -c 0`); clients pinned to CPU 1 (`taskset -c 1`)"
        if setup.pin
        else "not pinned (fewer than 2 CPUs)"
    )
    ratios = ratios_table(clients, runs)
    lines = [
        "# Throughput benchmark results",
        "",
        f"- Date: {date}; command: `{' '.join(['benchmarks/throughput.py', *sys.argv[1:]])}`",
        f"- Machine: {info['cpu']}, {info['cpus']} CPUs, Linux {info['kernel']}, "
        f"Python {info['python']}",
        f"- Server: {info['knot']}, 1 UDP worker, {pinning}",
        f"- Software: resolver {info['resolver']}; {info['packages']}; {info['adns']}",
        f"- Workload: {len(setup.lines):,} unique names ({mix}; the A2 kind has two addresses),"
        f" {FORWARD_ORIGIN} and {REVERSE_ORIGIN}; every client asks each once; "
        f"dnspython asks the first {setup.dnspython_names:,}",
        f"- {args.rounds} round(s), clients interleaved; figures are medians over the rounds",
        "",
        *medians,
        "",
    ]
    if ratios:
        lines += [
            "Same-run ratios, median over rounds (above 1: `resolver resolve` is faster /"
            " spends less CPU per name than the peer):",
            "",
            *ratios,
            "",
        ]
    lines += ["Notes:", "", *(f"- {n}" for n in notes), "", "## Every run", "", *rounds_table(runs)]
    lines += ["", "## Commands", ""]
    for client in clients:
        command = shlex.join([*setup.pin, *client.command(setup)])
        lines.append(f"- {client.name}: `{command.replace(str(setup.tmp), '$TMP')}`")
    return "\n".join(lines) + "\n"


NOTES = [
    "names/s: names ÷ the client process's wall time, start-up included (Python imports,"
    " reading the list); CPU s: user+sys of the client process(es) from wait4(); peak RSS:"
    " GNU time's %M (the client forked from a small process, see `launcher`)",
    "Latency: resolver's `elapsed_ms` (resolve-cli), `Result.elapsed` (library), time"
    " around each awaited query (aiodns, dnspython), dnsperf's per-query latency (-v);"
    " adnshost reports none",
    "correct: answers equal to the zone's (status, sorted addresses or PTR names, CNAME"
    " chain); dnsperf sees rcodes only, so for it correct means the right rcode. resolve-cli"
    " is checked by this script after it exits (not in its CPU); library, aiodns and"
    " dnspython check in-process (a CRC per answer, in their CPU)",
    "PTR: the resolver clients get IPv4 literals and build the in-addr.arpa names"
    " themselves; the peers get the in-addr.arpa names; the same questions go on the wire",
    f"adnshost: {ADNS_CHUNK} names per process, {ADNS_PARALLEL} processes at a time; its CPU"
    " includes this script starting and reaping them; its peak RSS is one process's",
    "dnsperf keeps 100 queries in flight (the others 1000); it is the server's ceiling,"
    " not a resolver",
    "python-floor is not a resolver either: a bare Python loop that sends the prebuilt"
    " queries and reads only each reply's id and rcode (no event loop, no decoding, no"
    " output), so correct means the right rcode; about the least a Python client can"
    " spend per name",
    "aiodns's RSS grows with the list: c-ares keeps every answer in its query cache for"
    " its TTL (3600 s in this zone), and pycares 5 offers no switch to turn that cache off",
    "others' load: CPUs' worth of time that anything else on the machine (not this script,"
    " its clients or knotd) used while the client ran, from /proc/stat; near 0 on a quiet"
    " machine, and a run where it is high is suspect (wall time and CPU per name both"
    " suffer). Per run (below): other_cpu_s is the same in seconds, server_cpu_s knotd's"
    " CPU, server_drops the queries the kernel dropped at knotd's sockets",
]


def html_page(text: str, runs: list[Measurement]) -> str:
    """The report as a self-contained page: names/s and CPU per name per client (medians
    over the rounds), the same-run speed ratios of the first resolver row, and the text."""
    from resolver.bench.html import document, hbars, preformatted

    ok = [m for m in runs if m.error is None and m.names]
    names = list(dict.fromkeys(m.client for m in ok))
    rates = [(n, _median([m.rate for m in ok if m.client == n])) for n in names]
    cpu = [(n, _median([m.cpu_us_per_name for m in ok if m.client == n])) for n in names]
    parts = [
        hbars("Names per second, per client (median over rounds)", rates, "names/s"),
        hbars("CPU per name, per client (median over rounds)", cpu, "µs"),
    ]
    ref = next((n for n in names if n.startswith("resolve-cli")), None)
    if ref is not None:
        by = {(m.client, m.round): m for m in ok}
        ratios = []
        for peer in names:
            speeds = [
                own.rate / m.rate
                for (name, round_), m in by.items()
                if name == peer and (own := by.get((ref, round_))) is not None and m.rate
            ]
            if peer != ref and speeds:
                ratios.append((peer, _median(speeds)))
        parts.append(
            hbars(f"{ref}: same-run speed ratio to each peer (above 1: faster)", ratios, "x", 1.0)
        )
    parts.append(preformatted("Report", text))
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return document("Throughput benchmark", parts, date)


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Bulk DNS throughput of resolver and its peers against a private Knot DNS."
    )
    parser.add_argument("--names", type=int, help="unique names (default 200,000; --quick 20,000)")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; --quick 1)")
    parser.add_argument(
        "--clients", help="comma list of clients or prefixes (e.g. resolve-cli,dnsperf)"
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20,000 names, 1 round")
    parser.add_argument(
        "--client-timeout", type=float, help="seconds before a client is killed (default: scaled)"
    )
    parser.add_argument(
        "--output", type=Path, default=HERE / "results.md", help="where the report goes"
    )
    parser.add_argument(
        "--html",
        type=Path,
        help="where the page of plots goes (default: OUTPUT with the suffix .html)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=15.0,
        help="before each client, wait up to S seconds for the rest of the machine to be"
        " quiet (default 15; at most 120 s in all; 0: never wait)",
    )
    args = parser.parse_args(argv)
    args.names = args.names or (20_000 if args.quick else 200_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if not 1 <= args.names <= MAX_NAMES:
        parser.error(f"--names must be between 1 and {MAX_NAMES}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    # SIGTERM and SIGHUP unwind like Ctrl-C, so that knotd, the clients, the temporary files
    # and net.core.rmem_default are all cleaned up (see the `finally` below).
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _exit_on_signal)
    if resolver.knot.find_knotd() is None:
        parser.error("knotd not found: run scripts/bench (or scripts/install --with-server)")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="resolver-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            text, runs = benchmark(args, tmp, stack)
    except resolver.knot.KnotError as exc:
        lines = str(exc).splitlines()
        if len(lines) > 30:
            lines = [*lines[:15], f"... ({len(lines) - 30} lines left out)", *lines[-15:]]
        log("knotd did not start: " + "\n".join(lines))
        return 1
    except KeyboardInterrupt:
        log("interrupted: no report written")
        return 130
    finally:
        kill_all()
        shutil.rmtree(tmp, ignore_errors=True)
    page = args.html or args.output.with_suffix(".html")
    log(f"done in {time.perf_counter() - started:.0f}s; report in {args.output} and {page}")
    args.output.write_text(text)
    page.write_text(html_page(text, runs))
    print(text)
    return 1 if any(m.error for m in runs) else 0


def benchmark(
    args: argparse.Namespace, tmp: Path, stack: contextlib.ExitStack
) -> tuple[str, list[Measurement]]:
    """Run every selected client `args.rounds` times; the report and every measurement."""
    timeout = args.client_timeout or max(60.0, args.names / 1000)
    digest = snapshot_package(tmp / "src")
    cli_engines, lib_engines = engine_choices()
    have_53 = port_53_free()
    all_clients: list[Client] = [
        *(ResolveCli(e) for e in cli_engines),
        *(LibraryClient(e) for e in lib_engines),
    ]
    notes = list(NOTES)
    tools: list[Client] = [Dnsperf(), Adnshost()]
    for tool in tools:
        if shutil.which(tool.name) is None:
            notes.append(f"{tool.name} is not installed: left out")
        elif tool.name == "adnshost" and not have_53:
            notes.append("127.0.0.1:53 is taken: adnshost (port 53 only) left out")
        else:
            all_clients.append(tool)
    all_clients += [AiodnsClient(), DnspythonClient(), FloorClient()]
    clients = select_clients(all_clients, args.clients)

    cores = os.cpu_count() or 1
    pinned = cores >= 2 and shutil.which("taskset") is not None
    log(f"building {args.names:,} names")
    workload = build_workload(args.names)
    resolver.knot.START_TIMEOUT = KNOT_START_TIMEOUT
    info = machine()
    info["resolver"] += f", copied at the start (digest {digest}) and used by every client"
    runs: list[Measurement] = []
    log("starting knotd")
    with default_rcvbuf(SERVER_RCVBUF) as rcvbuf_note:
        server = stack.enter_context(
            KnotServer(
                workload.forward_zone,
                FORWARD_ORIGIN,
                host=SERVER,
                extra_listen=[f"{SERVER}@53"] if have_53 else [],
                udp_workers=1,
                cpu=0 if pinned else None,
                extra_zones={REVERSE_ORIGIN: workload.reverse_zone},
            )
        )
    sizes = sorted({b for p in ports(server.port, have_53) if (b := udp_rcvbuf(p))})
    notes.append(f"{rcvbuf_note}; knotd's UDP sockets: {sizes or '?'} bytes")
    if pinned:
        # This script only starts and waits for the clients: keep it off knotd's CPU.
        os.sched_setaffinity(0, {1})
    setup = Setup(
        tmp,
        workload.lines,
        server.port,
        ["taskset", "-c", "1"] if pinned else [],
        timeout,
        min(DNSPYTHON_NAMES, len(workload.lines)),
    )
    log(
        f"knotd on {server.nameserver} (pid {server.pid}); resolver {digest}; clients: "
        + ", ".join(c.name for c in clients)
    )
    settle_budget = 0.0 if args.settle <= 0 else 120.0
    for round_ in range(1, args.rounds + 1):
        for client in clients:
            waited = settle(server.pid, min(args.settle, settle_budget))
            settle_budget -= waited
            drops = udp_drops(ports(server.port, have_53))
            busy, knot, mine = machine_busy(), process_cpu(server.pid), ours()
            m = client.run(setup, round_)
            runs.append(m)
            knot = process_cpu(server.pid) - knot
            other = machine_busy() - busy - knot - (ours() - mine)
            m.extra["server_cpu_s"] = f"{knot:.2f}"
            m.other_cpu = max(0.0, other)
            m.extra["other_cpu_s"] = f"{m.other_cpu:.2f}"
            m.extra["server_drops"] = str(udp_drops(ports(server.port, have_53)) - drops)
            m.extra["settle_s"] = f"{waited:.1f}"
            status = m.error or f"{m.correct / max(m.names, 1):.2%} correct"
            log(
                f"round {round_}/{args.rounds} {client.name}: {m.names:,} names in "
                f"{m.wall:.2f}s ({m.rate:,.0f}/s, CPU {m.cpu:.2f}s, "
                f"RSS {m.maxrss_kb / 1024:.0f} MB), {status}"
            )
    return report(args, clients, runs, setup, notes, info), runs


if __name__ == "__main__":
    sys.exit(main())
