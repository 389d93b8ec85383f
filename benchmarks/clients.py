"""The clients the throughput benchmark compares, and what they share in one run.

A `Client` turns the run's `Setup` (the workload's files, the server's port, the pinning)
into one `Measurement`: `ResolveCli` and `LibraryClient` are resolver itself, the others
its peers (aiodns, dnspython, dnsperf, adnshost) and a bare Python floor. Every answer is
checked against the zone (`check_jsonl`, `check_adns`, or in the client process itself).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import ClientReport, Line, canon, percentiles, write_expectations
from runner import (
    HERE,
    SERVER,
    Child,
    failure,
    output,
    resolver_command,
    run_pool,
    run_process,
    tail,
)

CONCURRENCY = 1000
ADNS_CHUNK = 200
ADNS_PARALLEL = 5


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


class Client:
    """One way of resolving the workload; `run` measures it once."""

    name: str = ""
    #: True for the resolver's own command line: the peers are compared with these.
    is_reference = False

    def command(self, setup: Setup) -> list[str]:
        raise NotImplementedError

    def run(self, setup: Setup, round_: int) -> Measurement:
        raise NotImplementedError


class ResolveCli(Client):
    """`resolver resolve HOSTS -o OUT.jsonl`: end to end, file in, file out."""

    is_reference = True

    def __init__(self, engine: str | None) -> None:
        self.engine = engine
        self.name = f"resolve-cli-{engine}" if engine else "resolve-cli"

    def command(self, setup: Setup) -> list[str]:
        out = setup.tmp / f"{self.name}.jsonl"
        argv = [
            *resolver_command(),
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
        m.maxrss_kb, m.error = usage.maxrss_kb, failure(usage, stderr)
        m.extra["summary"] = tail(stderr, 1)
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
        m.maxrss_kb, m.error = usage.maxrss_kb, failure(usage, stderr)
        if m.error is None:
            try:
                report = ClientReport.parse(stdout.read_text())
            except ValueError as exc:
                m.error = f"{exc}: {tail(stderr)}"
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
        m.maxrss_kb, m.error = usage.maxrss_kb, failure(usage, stderr)
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
        m, outputs = self.run_chunks(setup, round_, self.name)
        m.extra["processes"] = f"{len(outputs)} x {ADNS_CHUNK} names, {ADNS_PARALLEL} at a time"
        m.correct = check_adns(iter(outputs), setup.lines)
        return m

    def run_chunks(self, setup: Setup, round_: int, slug: str) -> tuple[Measurement, list[Path]]:
        """Run adnshost over every chunk (stderr in `slug`'s file); -> the figures and
        the output files, one per chunk (checked by the caller)."""
        if not self.chunks:
            self.prepare(setup)
        _, stderr = setup.files(slug)
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
            m.error = f"exit status {usage.returncode}: {tail(stderr)}"
        return m, [out for _, out in jobs]


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


def engine_choices() -> tuple[list[str | None], list[str | None]]:
    """The engines `resolver resolve --engine` and `Resolver(engine=)` offer ([None]: none)."""
    help_text = subprocess.run(
        [*resolver_command(), "resolve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Child.cwd,
        env=Child.env,
    ).stdout
    found = re.search(r"--engine \{([^}]+)\}", help_text)
    cli: list[str | None] = list(found.group(1).split(",")) if found else [None]
    probe = (
        "import inspect, resolver;"
        " print('engine' in inspect.signature(resolver.Resolver).parameters)"
    )
    has_engine = output([sys.executable, "-c", probe], child=True) == "True"
    return cli, (cli if has_engine and found else [None])


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
