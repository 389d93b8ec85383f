"""Rate limiting: does `--qps N` send N queries per second?

Starts Knot DNS on loopback, runs `resolver bench --qps N --duration 10` for a few rates and
prints the measured rate next to the cap, with the deviation (goal: within 5%). The server
counts what it received (Knot's own query counter is not used: the resolver's count of
names answered over the same 10 s is what the user sees). A benchmark, not a test: run it by hand.

    .venv/bin/python benchmarks/qps.py [--rates 500,5000,20000] [--duration 10]

Every packet goes to the Knot server this script starts on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from resolver.testing import to_zone_file
from resolver.testing.knot import KnotServer

ORIGIN = "qps.test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="500,5000,20000")
    parser.add_argument("--duration", type=float, default=10.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    zone: dict[str, dict[str, list[str | bytes]]] = {
        ORIGIN: {"SOA": [f"ns.{ORIGIN} h.{ORIGIN} 1 3600 600 86400 60"], "NS": [f"ns.{ORIGIN}"]},
        f"ns.{ORIGIN}": {"A": ["192.0.2.1"]},
    }
    cpu = 0 if (os.cpu_count() or 1) > 1 else None
    with tempfile.TemporaryDirectory(prefix="resolver-qps-") as tmp:
        hosts = Path(tmp) / "hosts.txt"
        needed = int(max(rates) * args.duration * 1.2)  # more names than the run can use
        hosts.write_text("".join(f"n{i}.{ORIGIN}\n" for i in range(needed)))
        print(f"{'cap q/s':>10} {'measured q/s':>13} {'deviation':>10}")
        with KnotServer(to_zone_file(zone, ORIGIN), ORIGIN, cpu=cpu) as knot:
            for rate in rates:
                command = [sys.executable, "-m", "resolver", "bench", str(hosts)]
                command += ["-n", knot.nameserver, "--qps", f"{rate:g}", "-q"]
                command += ["--duration", f"{args.duration:g}"]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                found = re.search(r"^answered\s+([\d,.]+) names/s", out, re.MULTILINE)
                if found is None:
                    sys.exit(f"no rate in the output of {' '.join(command)}:\n{out}")
                measured = float(found.group(1).replace(",", ""))
                print(f"{rate:>10,.0f} {measured:>13,.0f} {100 * (measured / rate - 1):>+9.1f}%")


if __name__ == "__main__":
    main()
