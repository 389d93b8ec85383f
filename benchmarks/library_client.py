"""Benchmark client: the resolver as a library, without writing anything.

    python benchmarks/library_client.py --nameserver 127.0.0.1:PORT --hosts HOSTS \
        --expect EXPECT [--concurrency 1000] [--engine wire|cares|aiodns]

Runs `Resolver([ns], concurrency=N).resolve_many(lines)` over every line of HOSTS (names, and
IPv4 literals the resolver asks as PTR), checks each result against EXPECT (see benchlib) and
prints one JSON `ClientReport` line. Started by benchmarks/throughput.py, which measures its
CPU time and peak RSS from outside.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from benchlib import ClientReport, canon, digest, percentiles, raise_fd_limit, read_expectations

from resolver import Resolver


async def run(args: argparse.Namespace) -> ClientReport:
    expected = read_expectations(args.expect)
    lines = args.hosts.read_text().splitlines()
    options: dict[str, Any] = {"concurrency": args.concurrency, "fallback": "never"}
    if args.engine:
        options["engine"] = args.engine
    report = ClientReport(names=len(lines))
    statuses: Counter[str] = Counter()
    elapsed: list[float] = []
    correct = 0
    started = time.perf_counter()
    async with cast(Any, Resolver)([args.nameserver], **options) as resolver:
        async for result in resolver.resolve_many(lines):
            status = result.status.value
            statuses[status] += 1
            elapsed.append(result.elapsed)
            got = canon(status, (str(a) for a in result.answers), result.cnames)
            if 0 < result.line <= len(expected) and digest(got) == expected[result.line - 1]:
                correct += 1
    report.elapsed = time.perf_counter() - started
    report.correct = correct
    report.statuses = dict(statuses)
    report.latency_ms = [v * 1000 for v in percentiles(elapsed)]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nameserver", required=True, help="127.0.0.1:PORT")
    parser.add_argument("--hosts", type=Path, required=True)
    parser.add_argument("--expect", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--engine", default=None, help="Resolver(engine=...), when it has one")
    args = parser.parse_args()
    if not args.nameserver.startswith(("127.", "[::1]")):
        parser.error("benchmark clients only ask a loopback server")
    raise_fd_limit()
    try:
        import uvloop
    except ImportError:
        report = asyncio.run(run(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            report = runner.run(run(args))
    report.emit()


if __name__ == "__main__":
    main()
