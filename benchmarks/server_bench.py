"""`resolver bench` as a server benchmark, beside dnsperf and resperf, same servers, same run.

    .venv/bin/python benchmarks/server_bench.py [--names 50000] [--duration 5] [--rounds 3]
        [--servers knot,unbound] [--steps 10] [--resperf-ramp 10] [--output PATH]

Starts one knotd (`resolver.testing.knot.KnotServer`, 1 UDP worker) serving benchlib's workload on
127.0.0.1 and, for `unbound`, a private Unbound in front of it (`loss.py`'s, one thread; its
cache is warmed with one full pass first, so every client measures cache hits). The servers
run on CPU 0, every client on CPU 1 (`taskset`). Per round and server, interleaved:

- saturation, closed loop, 100 queries outstanding, for `--duration` s: `dnsperf -q 100 -l D`
  and `resolver bench -c 100 --duration D` (its defaults otherwise: 1 worker on this
  2-CPU machine, no retries); their queries/s and the same-run ratio;
- capacity: `resperf -m MAX -r RAMP` (a continuous ramp from 0 to MAX over RAMP s) and
  `resolver bench --ramp STEP:MAX:STEP --step-duration 1` (`--steps` steps; the highest
  within 1% loss and p99 100 ms, and the peak answered/s), MAX twice the saturation rate
  just measured, compared.

Every packet goes to 127.0.0.1. Others' load (CPU seconds of everything else on the machine
during each client run, from /proc/stat) is reported with every figure: on a shared machine
a ratio is only as good as the quiet it was measured in. The report goes to
benchmarks/server-results.md (or `--output`) and is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import FORWARD_ORIGIN, REVERSE_ORIGIN, build_workload
from loss import Unbound
from probes import default_rcvbuf, machine, machine_busy, ours, process_cpu, settle
from runner import SERVER
from throughput import SERVER_RCVBUF

from resolver.testing.knot import KnotServer

HERE = Path(__file__).resolve().parent


@dataclass
class Run:
    server: str
    client: str
    round: int
    qps: float = 0.0
    lost: str = ""
    others: float = 0.0  # CPUs' worth of others' load during the run
    extra: dict[str, str] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"server_bench: {message}", file=sys.stderr, flush=True)


def cpu_marks(server_pids: list[int | None]) -> tuple[float, float]:
    """CPU seconds so far: of everything on the machine, and of the servers and us."""
    return machine_busy(), sum(process_cpu(p) for p in server_pids) + ours()


SETTLE = [10.0]  # seconds to wait for a quiet machine before each client (--settle)


def timed(command: list[str], pids: list[int | None], timeout: float) -> tuple[str, float]:
    """Run `command` on CPU 1 (once the machine is quiet, or `SETTLE` s have passed); its
    stdout and the others' load (CPUs) while it ran."""
    settle(pids[-1] if pids else None, SETTLE[0])
    all0, ours0 = cpu_marks(pids)
    started = time.perf_counter()
    proc = subprocess.run(
        ["taskset", "-c", "1", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    all1, ours1 = cpu_marks(pids)
    if proc.returncode not in (0, 9):
        raise RuntimeError(f"{command[0]} failed ({proc.returncode}): {proc.stderr[-400:]}")
    return proc.stdout + proc.stderr, max(0.0, (all1 - all0) - (ours1 - ours0)) / wall


def dnsperf(port: int, data: Path, duration: float, pids: list[int | None]) -> Run:
    command = ["dnsperf", "-s", SERVER, "-p", str(port), "-d", str(data), "-q", "100"]
    out, others = timed([*command, "-l", f"{duration:g}", "-t", "2"], pids, duration + 60)
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+ \([\d.]+%\))", out)
    return Run("", "dnsperf -q 100", 0, float(qps.group(1)) if qps else 0.0,
               lost.group(1) if lost else "?", others)  # fmt: skip


def bench(nameserver: str, data: Path, args: list[str], pids: list[int | None], tmp: Path) -> Run:
    out_json = tmp / "bench.jsonl"
    command = [sys.executable, "-m", "resolver", "bench", str(data), "-n", nameserver, "-q"]
    _, others = timed([*command, *args, "--json", str(out_json)], pids, 600)
    records = [json.loads(line) for line in out_json.read_text().splitlines()]
    summary = records[-1]
    run = Run("", "resolver bench " + " ".join(args), 0, float(summary["answered_per_s"]))
    sent = summary["sent"]
    run.lost = f"{summary['lost']} ({100 * summary['lost'] / max(sent, 1):.2f}%)"
    run.others = others
    run.extra["client"] = next((n for n in summary["notes"] if n.startswith("client")), "")
    if "capacity" in summary:
        steps = [r for r in records if r["type"] == "step"]
        peak = max(steps, key=lambda s: s["answered_per_s"])
        run.extra["capacity"] = f"{summary['capacity'] or 0:,.0f}"
        run.extra["peak"] = f"{peak['answered_per_s']:,.0f} (step at {peak['rate']:,.0f})"
        run.qps = float(summary["capacity"] or 0)
    return run


def resperf(port: int, data: Path, top: float, ramp: float, pids: list[int | None]) -> Run:
    with tempfile.NamedTemporaryFile(suffix=".gnuplot") as plot:
        command = ["resperf", "-s", SERVER, "-p", str(port), "-d", str(data), "-R"]
        command += ["-m", f"{top:.0f}", "-r", f"{ramp:g}", "-t", "2", "-P", plot.name]
        out, others = timed(command, pids, ramp + 120)
    peak = re.search(r"Maximum throughput:\s+([\d.]+)", out)
    lost = re.search(r"Lost at that point:\s+(\d+)", out)
    run = Run("", f"resperf -m {top:.0f} -r {ramp:g}", 0, float(peak.group(1)) if peak else 0.0)
    run.lost = f"{lost.group(1)} at the peak" if lost else "?"
    run.others = others
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=50_000)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default="knot,unbound")
    parser.add_argument("--steps", type=int, default=10, help="resolver bench --ramp steps")
    parser.add_argument("--resperf-ramp", type=float, default=10.0, help="resperf -r seconds")
    parser.add_argument(
        "--settle",
        type=float,
        default=10.0,
        help="before each client, wait up to S s for the rest of the machine to be quiet",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    SETTLE[0] = args.settle
    for tool in ("dnsperf", "resperf", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install dnsperf util-linux")
    servers = args.servers.split(",")
    os.sched_setaffinity(0, {1})
    workload = build_workload(args.names)
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="server-bench-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "queries.txt"
        data.write_text("".join(f"{line.qname} {line.qtype}\n" for line in workload.lines))
        with default_rcvbuf(SERVER_RCVBUF) as rcvbuf_note:
            knot = KnotServer(
                workload.forward_zone,
                FORWARD_ORIGIN,
                host=SERVER,
                udp_workers=1,
                cpu=0,
                extra_zones={REVERSE_ORIGIN: workload.reverse_zone},
            ).__enter__()
        unbound = Unbound(knot.port, 0) if "unbound" in servers else None
        try:
            if unbound is not None:
                unbound.start()
                log("warming Unbound's cache: one pass of the list")
                bench(f"{SERVER}:{unbound.port}", data, ["-c", "100"], [], tmp)
            targets = {"knot": (knot.port, [knot.pid])}
            if unbound is not None:
                targets["unbound"] = (unbound.port, [knot.pid, unbound.pid])
            for round_ in range(1, args.rounds + 1):
                for server in servers:
                    port, pids = targets[server]
                    ns = f"{SERVER}:{port}"
                    d = f"{args.duration:g}"
                    perf = dnsperf(port, data, args.duration, pids)
                    closed = bench(ns, data, ["-c", "100", "--duration", d], pids, tmp)
                    # The ramps reach twice the saturation rate just measured.
                    top = 2 * max(perf.qps, closed.qps, 1000.0)
                    step = round(top / args.steps, -2) or 100
                    ramp = f"{step:.0f}:{step * args.steps:.0f}:{step:.0f}"
                    for run in (
                        perf,
                        closed,
                        resperf(port, data, top, args.resperf_ramp, pids),
                        bench(ns, data, ["--ramp", ramp, "--step-duration", "1"], pids, tmp),
                    ):
                        run.server, run.round = server, round_
                        runs.append(run)
                        log(
                            f"round {round_} {server}: {run.client}: {run.qps:,.0f} (lost "
                            f"{run.lost}, others' load {run.others:.2f}) {run.extra}"
                        )
        finally:
            if unbound is not None:
                unbound.stop()
            knot.__exit__(None, None, None)
    text = report(args, runs, rcvbuf_note)
    output = args.output or HERE / "server-results.md"
    output.write_text(text)
    print(text)
    return 0


def report(args: argparse.Namespace, runs: list[Run], note: str) -> str:
    info = machine()
    lines = [
        "# resolver bench beside dnsperf and resperf",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; command: "
        f"`benchmarks/server_bench.py --names {args.names} --duration {args.duration:g} "
        f"--rounds {args.rounds} --servers {args.servers} --steps {args.steps}`",
        f"- Machine: {info['cpu']}, {info['cpus']} CPUs, Linux {info['kernel']}, Python "
        f"{info['python']}; {info['knot']}; resolver {info['resolver']}",
        "- Servers on CPU 0 (knotd: 1 UDP worker; Unbound: 1 thread, in front of knotd, its "
        "cache warmed first); every client on CPU 1 (`taskset -c 1`): one core each side",
        f"- Workload: benchlib's {args.names:,} names (A, A2, CNAME, NODATA, NXDOMAIN, PTR), "
        f"asked again and again for the duration; {note}",
        "",
        "## Saturation: closed loop, 100 outstanding",
        "",
        "| server | round | dnsperf q/s | resolver bench q/s | ratio | bench lost | others' load |",
        "| --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    ratios: dict[str, list[float]] = {}
    for server in args.servers.split(","):
        for round_ in range(1, args.rounds + 1):
            mine = [r for r in runs if r.server == server and r.round == round_]
            perf = next(r for r in mine if r.client.startswith("dnsperf"))
            ours = next(r for r in mine if r.client.startswith("resolver bench -c"))
            ratio = ours.qps / perf.qps if perf.qps else 0.0
            ratios.setdefault(server, []).append(ratio)
            lines.append(
                f"| {server} | {round_} | {perf.qps:,.0f} | {ours.qps:,.0f} | {ratio:.2f} | "
                f"{ours.lost} | {max(perf.others, ours.others):.2f} |"
            )
    lines += ["", "Median ratio (resolver bench / dnsperf): " + ", ".join(
        f"{s} {statistics.median(v):.2f}" for s, v in ratios.items())]  # fmt: skip
    lines += [
        "",
        "## Capacity: resperf's ramp and resolver bench --ramp",
        "",
        "| server | round | resperf max throughput | resolver bench capacity | bench peak "
        "answered/s | others' load |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for server in args.servers.split(","):
        for round_ in range(1, args.rounds + 1):
            mine = [r for r in runs if r.server == server and r.round == round_]
            res = next(r for r in mine if r.client.startswith("resperf"))
            ramp = next(r for r in mine if "--ramp" in r.client)
            lines.append(
                f"| {server} | {round_} | {res.qps:,.0f} ({res.lost}) | "
                f"{ramp.extra.get('capacity', '-')} | {ramp.extra.get('peak', '-')} | "
                f"{max(res.others, ramp.others):.2f} |"
            )
    lines += ["", "## Every run", "", "| server | round | client | q/s | lost | notes |"]
    lines.append("| --- | ---: | --- | ---: | --- | --- |")
    for r in runs:
        notes = "; ".join(f"{k}: {v}" for k, v in r.extra.items())
        lines.append(
            f"| {r.server} | {r.round} | `{r.client}` | {r.qps:,.0f} | {r.lost} | {notes} |"
        )
    lines += [
        "",
        "Notes: resolver bench's q/s is answered queries ÷ seconds from its start to its "
        "last reply; dnsperf's is its `Queries per second`; resperf's `Maximum throughput` "
        "is the highest answered rate of its ramp; resolver bench's capacity is the highest "
        "step whose loss stayed at most 1% and p99 at most 100 ms. Others' load: CPUs' worth "
        "of everything else on the machine while the client ran (0 on a quiet machine).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
