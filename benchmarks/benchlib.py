"""What the benchmark's parent and its client processes share: the generated workload, the
canonical form of one answer, and the small report each client prints.

The workload is `count` unique query lines in a fixed mix (see `KINDS`). Every line has:

- `literal`: what `resolver` is given (a host name, or an IPv4 literal for a PTR lookup);
- `qname` / `qtype`: the question that goes on the wire (`A`, or `PTR` for the literal's
  `in-addr.arpa` name), which is what the other clients are given;
- `expect`: the canonical outcome (`canon()`): status, sorted answers, CNAME chain.

A client checks an answer by comparing `crc32(canon(...))` with the line's entry in the
expectation file (an array of 32-bit CRCs, one per line), so a client process does not need
a dict of 200,000 strings in memory to check its answers.
"""

from __future__ import annotations

import array
import asyncio
import json
import math
import resource
import sys
import time
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

FORWARD_ORIGIN = "bench.test"
REVERSE_ORIGIN = "198.in-addr.arpa"
#: Addresses (A answers and PTR literals) come from 198.18.0.0/15, the range RFC 2544 sets
#: aside for benchmarks; they are only data in the zone, no packet is ever sent to them.
NET = IPv4Address("198.18.0.0")
NET_SIZE = 1 << 17
#: AAAA data (for the NODATA names) from the documentation prefix 2001:db8::/32.
V6_NET = IPv6Address("2001:db8::")

#: The mix, by line index modulo 20: 40% answered A (a tenth of all with two addresses),
#: 20% A behind a CNAME, 15% AAAA-only asked for A (NODATA), 10% NXDOMAIN, 15% PTR.
KINDS = (
    *("A2", "A2"),
    *("A",) * 6,
    *("CNAME",) * 4,
    *("NODATA",) * 3,
    *("NXDOMAIN",) * 2,
    *("PTR",) * 3,
)
MAX_NAMES = NET_SIZE * len(KINDS) // KINDS.count("PTR")

STATUSES = ("NOERROR", "NODATA", "NXDOMAIN", "SERVFAIL", "REFUSED", "TIMEOUT", "ERROR")


def canon(status: str, answers: Iterable[str] = (), cnames: Iterable[str] = ()) -> str:
    """One outcome as text: `STATUS|sorted answers|CNAME chain`, names lowercase, no dots."""
    ans = " ".join(sorted(a.rstrip(".").lower() for a in answers))
    chain = " ".join(c.rstrip(".").lower() for c in cnames)
    return f"{status}|{ans}|{chain}"


def digest(text: str) -> int:
    """The 32-bit check value of one canonical outcome."""
    return zlib.crc32(text.encode())


@dataclass(frozen=True, slots=True)
class Line:
    """One query of the workload."""

    literal: str
    qname: str
    qtype: str
    expect: str

    @property
    def rcode(self) -> str:
        """The DNS RCODE the server sends (NODATA is NOERROR without answers)."""
        return "NXDOMAIN" if self.expect.startswith("NXDOMAIN") else "NOERROR"


@dataclass
class Workload:
    """The zones to serve and the lines to ask."""

    forward_zone: str
    reverse_zone: str
    lines: list[Line]


def _addr(i: int) -> IPv4Address:
    return NET + (i % NET_SIZE)


def build_workload(count: int) -> Workload:
    """`count` unique query lines and two zones (forward and reverse) that answer them."""
    if not 1 <= count <= MAX_NAMES:
        raise ValueError(f"the workload holds 1 to {MAX_NAMES} names")
    fwd = [
        f"$ORIGIN {FORWARD_ORIGIN}.",
        "$TTL 3600",
        "@ SOA ns hostmaster 1 3600 600 86400 3600",
        "@ NS ns",
        "ns A 198.19.255.254",
    ]
    rev = [
        f"$ORIGIN {REVERSE_ORIGIN}.",
        "$TTL 3600",
        f"@ SOA ns.{FORWARD_ORIGIN}. hostmaster.{FORWARD_ORIGIN}. 1 3600 600 86400 3600",
        f"@ NS ns.{FORWARD_ORIGIN}.",
    ]
    lines: list[Line] = []
    ptrs = 0
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        name = f"h{i}.{FORWARD_ORIGIN}"
        label = f"h{i}"
        if kind == "PTR":
            ip = NET + ptrs
            ptrs += 1
            target = f"ptr{i}.{FORWARD_ORIGIN}"
            rev.append(f"{ip.reverse_pointer}. PTR {target}.")
            lines.append(Line(str(ip), ip.reverse_pointer, "PTR", canon("NOERROR", [target])))
            continue
        if kind == "A":
            fwd.append(f"{label} A {_addr(i)}")
            expect = canon("NOERROR", [str(_addr(i))])
        elif kind == "A2":
            first, second = _addr(i), _addr(i + NET_SIZE // 2)
            fwd.append(f"{label} A {first}")
            fwd.append(f"{label} A {second}")
            expect = canon("NOERROR", [str(first), str(second)])
        elif kind == "CNAME":
            target = f"t{i}.{FORWARD_ORIGIN}"
            fwd.append(f"{label} CNAME t{i}")
            fwd.append(f"t{i} A {_addr(i)}")
            expect = canon("NOERROR", [str(_addr(i))], [target])
        elif kind == "NODATA":
            fwd.append(f"{label} AAAA {V6_NET + i}")
            expect = canon("NODATA")
        else:
            expect = canon("NXDOMAIN")
        lines.append(Line(name, name, "A", expect))
    return Workload("\n".join(fwd) + "\n", "\n".join(rev) + "\n", lines)


def write_expectations(lines: Sequence[Line], path: Path) -> None:
    """The check values of `lines`, in order, as native 32-bit integers."""
    values = array.array("I", (digest(line.expect) for line in lines))
    with path.open("wb") as f:
        values.tofile(f)


def read_expectations(path: Path) -> array.array[int]:
    """What `write_expectations` wrote."""
    values = array.array("I")
    values.frombytes(path.read_bytes())
    return values


def read_queries(path: Path, limit: int | None = None) -> list[tuple[str, str]]:
    """`(qname, qtype)` pairs from a dnsperf-style data file (`name TYPE` per line)."""
    pairs: list[tuple[str, str]] = []
    with path.open() as f:
        for text in f:
            if limit is not None and len(pairs) >= limit:
                break
            qname, qtype = text.split()
            pairs.append((qname, qtype))
    return pairs


def percentiles(
    values: Sequence[float], points: Sequence[float] = (0.5, 0.95, 0.99)
) -> list[float]:
    """Nearest-rank percentiles of `values` (which need not be sorted); [] when empty."""
    if not values:
        return []
    ordered = sorted(values)
    n = len(ordered)
    return [ordered[min(n - 1, max(0, math.ceil(p * n) - 1))] for p in points]


def raise_fd_limit() -> None:
    """Allow as many open files as the hard limit does (one socket per query for some)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class ClientReport:
    """What a client process prints as one JSON line on stdout when it is done."""

    names: int = 0
    correct: int = 0
    #: p50, p95, p99 in milliseconds, or empty when the client measures none.
    latency_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    #: seconds from the first query sent to the last answer (setup excluded).
    elapsed: float = 0.0

    def emit(self) -> None:
        """Print the report for the parent."""
        sys.stdout.write(json.dumps(asdict(self)) + "\n")
        sys.stdout.flush()

    @classmethod
    def parse(cls, text: str) -> ClientReport:
        """The last JSON line of a client's output."""
        for line in reversed(text.strip().splitlines()):
            if line.startswith("{"):
                data = json.loads(line)
                return cls(**data)
        raise ValueError("the client printed no report")


async def ask_all(
    queries: Sequence[tuple[str, str]],
    expected: array.array[int],
    workers: int,
    ask: Callable[[str, str], Awaitable[str]],
) -> ClientReport:
    """Ask every (name, type) of `queries` through `workers` coroutines pulling from one
    queue; `ask` returns the canonical outcome, checked against `expected` by digest."""
    queue: asyncio.Queue[tuple[int, str, str] | None] = asyncio.Queue(maxsize=2 * workers)
    statuses: Counter[str] = Counter()
    latency: list[float] = []
    correct = 0

    async def produce() -> None:
        for index, (qname, qtype) in enumerate(queries):
            await queue.put((index, qname, qtype))
        for _ in range(workers):
            await queue.put(None)

    async def work() -> None:
        nonlocal correct
        while (item := await queue.get()) is not None:
            index, qname, qtype = item
            sent = time.perf_counter()
            got = await ask(qname, qtype)
            latency.append(time.perf_counter() - sent)
            statuses[got.split("|", 1)[0]] += 1
            if digest(got) == expected[index]:
                correct += 1

    started = time.perf_counter()
    await asyncio.gather(produce(), *(work() for _ in range(workers)))
    return ClientReport(
        names=len(queries),
        correct=correct,
        latency_ms=[v * 1000 for v in percentiles(latency)],
        statuses=dict(statuses),
        elapsed=time.perf_counter() - started,
    )


def run_client(work: Coroutine[Any, Any, ClientReport]) -> None:
    """Run a client's work on uvloop with a raised file limit and print its report."""
    raise_fd_limit()
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        report = runner.run(work)
    report.emit()
