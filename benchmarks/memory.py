"""Flat memory: peak RSS of `resolver resolve` over a short and a very long host list.

Starts Knot DNS on loopback (a small zone: most names are NXDOMAIN, a share answered), runs
`resolver resolve` on a 10,000-line list and on a 5,000,000-line list (each name unique, so
no cache hides anything), for each engine, and prints the peak RSS of each run (GNU time's
maximum resident set size of the resolver process alone) and their ratio. The goal: the long
run's peak within 2x of the short one's. A benchmark, not a test: run it by hand.

    .venv/bin/python benchmarks/memory.py [--long 5000000] [--short 10000] [--engines wire,cares]

Every packet goes to the Knot server this script starts on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from resolver.testing import to_zone_file
from resolver.testing.knot import KnotServer

ORIGIN = "mem.test"
ANSWERED = 50_000  # names h0..h49999 have an A record; the rest are NXDOMAIN


def zone_text() -> str:
    """A zone where the first ANSWERED names exist."""
    zone: dict[str, dict[str, list[str | bytes]]] = {
        ORIGIN: {"SOA": [f"ns.{ORIGIN} h.{ORIGIN} 1 3600 600 86400 60"], "NS": [f"ns.{ORIGIN}"]},
        f"ns.{ORIGIN}": {"A": ["192.0.2.1"]},
    }
    for i in range(ANSWERED):
        zone[f"h{i}.{ORIGIN}"] = {"A": [f"198.18.{i // 256 % 256}.{i % 256}"]}
    return to_zone_file(zone, ORIGIN)


def write_hosts(path: Path, count: int) -> None:
    """`count` unique names: every tenth one answered, the rest NXDOMAIN."""
    with path.open("w") as f:
        for i in range(count):
            f.write(
                f"h{i // 10}.{ORIGIN}\n"
                if i % 10 == 0 and i // 10 < ANSWERED
                else f"n{i}.{ORIGIN}\n"
            )


def run(hosts: Path, nameserver: str, engine: str, out: Path) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, rows written) of one `resolver resolve` run."""
    time_bin = shutil.which("time") or "/usr/bin/time"
    if not os.path.exists(time_bin):
        sys.exit("GNU time is needed (apt-get install time)")
    rss_file = out.with_suffix(".rss")
    pin = ["taskset", "-c", "1"] if (os.cpu_count() or 1) > 1 and shutil.which("taskset") else []
    command = [*pin, time_bin, "-f", "%M", "-o", str(rss_file), sys.executable, "-m", "resolver"]
    command += ["resolve", str(hosts), "-n", nameserver, "--engine", engine, "-o", str(out), "-q"]
    started = time.perf_counter()
    subprocess.run(command, check=True)
    elapsed = time.perf_counter() - started
    peak_kb = int(rss_file.read_text().split()[-1])
    with out.open("rb") as f:
        rows = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    return elapsed, peak_kb / 1024, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", type=int, default=10_000)
    parser.add_argument("--long", type=int, default=5_000_000)
    parser.add_argument("--engines", default="wire,cares")
    args = parser.parse_args()
    cpu = 0 if (os.cpu_count() or 1) > 1 else None
    with tempfile.TemporaryDirectory(prefix="resolver-mem-") as tmp:
        work = Path(tmp)
        lists = {n: work / f"hosts-{n}.txt" for n in (args.short, args.long)}
        for count, path in lists.items():
            write_hosts(path, count)
        print(f"{'engine':<8} {'lines':>10} {'seconds':>8} {'rows':>10} {'peak RSS MB':>12}")
        with KnotServer(zone_text(), ORIGIN, cpu=cpu) as knot:
            for engine in args.engines.split(","):
                peaks = []
                for count, path in lists.items():
                    seconds, peak, rows = run(path, knot.nameserver, engine, work / "out.jsonl")
                    peaks.append(peak)
                    print(f"{engine:<8} {count:>10,} {seconds:>8.1f} {rows:>10,} {peak:>12.1f}")
                    if rows != count:
                        print(f"  expected {count:,} rows, got {rows:,}")
                print(f"{engine:<8} long/short peak RSS: {peaks[1] / peaks[0]:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
