"""Scaling out: the same names through `resolver resolve --dask local:2`, `--workers 2` and
one process, in the same run, against one private Knot DNS on loopback.

    .venv/bin/python benchmarks/dask_scale.py [--names 1000000] [--partition-size SIZE]
        [--small-partitions 256k] [--rounds 1]

The workload is benchlib's (unique names in a fixed mix of A, CNAME, NODATA, NXDOMAIN and
PTR); knotd (one UDP worker) is pinned to CPU 0 when there are two CPUs, the clients are not
pinned (two workers need both cores: they share CPU 0 with knotd). For each client it prints
names/s over the whole run (the Dask run includes starting its LocalCluster and counting the
lines), the peak RSS of the main process and of the largest of its child processes (the
workers; sampled every 0.1 s with psutil), and how many rows match the zone. A second Dask
run with small partitions gives the cost of one partition: the extra seconds over the extra
partitions. A benchmark, not a test: run it by hand (see benchmarks/README.md).

Every packet goes to the knotd this script starts on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil  # comes with distributed
from benchlib import FORWARD_ORIGIN, REVERSE_ORIGIN, Line, build_workload
from clients import check_jsonl
from runner import KNOT_START_TIMEOUT

import resolver.testing.knot
from resolver.cli.cluster import parse_size, partition_size
from resolver.testing.knot import KnotServer


@dataclass
class Run:
    """One client run."""

    name: str
    seconds: float
    main_mb: float
    worker_mb: float
    workers: int
    correct: int
    summary: str


def measure(name: str, command: list[str], out: Path, lines: Sequence[Line]) -> Run:
    """Run `command`, sampling the RSS of it and its descendants until it exits."""
    out.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    main = psutil.Process(proc.pid)
    while proc.poll() is None:
        with_children = [main]
        with contextlib.suppress(psutil.Error):
            with_children += main.children(recursive=True)
        for p in with_children:
            with contextlib.suppress(psutil.Error):
                peaks[p.pid] = max(peaks.get(p.pid, 0), p.memory_info().rss)
        time.sleep(0.1)
    seconds = time.perf_counter() - started
    assert proc.stderr is not None
    summary = [line for line in proc.stderr.read().splitlines() if " results in " in line]
    summary = summary[-1:] or [""]
    if proc.returncode != 0:
        sys.exit(f"{name} failed ({proc.returncode}): {summary[0]}")
    others = [rss for pid, rss in peaks.items() if pid != proc.pid]
    correct, _ = check_jsonl(out, lines)
    return Run(
        name,
        seconds,
        peaks.get(proc.pid, 0) / 2**20,
        max(others, default=0) / 2**20,
        len(others),
        correct,
        summary[0],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--partition-size", help="the first Dask run's (default: the CLI's)")
    parser.add_argument("--small-partitions", default="256k")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    workload = build_workload(args.names)
    resolver.testing.knot.START_TIMEOUT = KNOT_START_TIMEOUT
    cpu = 0 if (os.cpu_count() or 1) > 1 else None
    with tempfile.TemporaryDirectory(prefix="resolver-dask-") as tmp:
        work = Path(tmp)
        hosts = work / "hosts.txt"
        hosts.write_text("".join(f"{line.literal}\n" for line in workload.lines))
        out = work / "out.jsonl"
        extra = {REVERSE_ORIGIN: workload.reverse_zone}
        with KnotServer(workload.forward_zone, FORWARD_ORIGIN, extra_zones=extra, cpu=cpu) as knot:
            base = [sys.executable, "-m", "resolver", "resolve", str(hosts), "-n", knot.nameserver,
                    "-c", "1000", "--fallback", "never", "-q", "-o", str(out)]  # fmt: skip
            clients = {
                "one process": base,
                "--workers 2": [*base, "--workers", "2"],
                f"--dask local:2 ({args.partition_size or 'default'} partitions)": [
                    *base, "--dask", "local:2",
                    *(["--partition-size", args.partition_size] if args.partition_size else []),
                ],
                f"--dask local:2 ({args.small_partitions} partitions)": [
                    *base, "--dask", "local:2", "--partition-size", args.small_partitions,
                ],
            }  # fmt: skip
            runs = [
                measure(name, command, out, workload.lines)
                for _ in range(args.rounds)
                for name, command in clients.items()
            ]
    size = sum(len(line.literal) + 1 for line in workload.lines)
    print(f"{args.names:,} names ({size / 2**20:.1f} MiB), {os.cpu_count()} CPUs")
    print(
        "| client | seconds | names/s | main RSS MB | largest child RSS MB (children) | correct |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        print(
            f"| {run.name} | {run.seconds:.2f} | {args.names / run.seconds:,.0f} | "
            f"{run.main_mb:.1f} | {run.worker_mb:.1f} ({run.workers}) | {run.correct:,} |"
        )
    big, small = runs[2], runs[3]
    first = parse_size(args.partition_size) if args.partition_size else partition_size(size, 2)
    parts = [-(-size // first), -(-size // parse_size(args.small_partitions))]
    if parts[1] > parts[0]:
        each = (small.seconds - big.seconds) / (parts[1] - parts[0])
        cost = f"{each * 1000:.0f} ms" if each > 0 else "lost in the noise (no slower)"
        print(f"partitions: {parts[0]} and {parts[1]}; cost of one partition: {cost}")
    for run in runs:
        print(f"{run.name}: {run.summary}")


if __name__ == "__main__":
    main()
