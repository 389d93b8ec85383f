"""Bulk-resolution throughput: `resolver` against a private Knot DNS, next to its peers.

    .venv/bin/python benchmarks/throughput.py [--names N] [--rounds R] [--clients a,b] [--quick]

(`scripts/bench` installs what this needs and then runs it.) It generates a zone of unique
names in a fixed mix (benchlib.KINDS), starts knotd with one UDP worker pinned to CPU 0 on
127.0.0.1 (plus 127.0.0.1:53 for adnshost), and runs every client as its own process pinned
to CPU 1, interleaved over R rounds. Each client's wall time and CPU time are taken from
`wait4()`, its peak RSS from GNU time; every answer is checked against the zone. It prints
a Markdown table of medians and same-run ratios and writes it, with the machine and date,
to benchmarks/results.md. See benchmarks/README.md for what each client is.

This file parses the arguments and runs the rounds; the clients are in clients.py, the
process runner in runner.py, the /proc probes in probes.py and the tables in report.py.

Every DNS packet goes to 127.0.0.1, to the knotd started here; nothing else is asked.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchlib import FORWARD_ORIGIN, MAX_NAMES, REVERSE_ORIGIN, build_workload
from clients import (
    Adnshost,
    AiodnsClient,
    Client,
    Dnsperf,
    DnspythonClient,
    FloorClient,
    LibraryClient,
    Measurement,
    ResolveCli,
    Setup,
    engine_choices,
    select_clients,
)
from probes import (
    default_rcvbuf,
    machine,
    machine_busy,
    ours,
    port_53_free,
    process_cpu,
    settle,
    udp_drops,
    udp_rcvbuf,
)
from report import NOTES, html_page, report
from runner import HERE, KNOT_START_TIMEOUT, SERVER, kill_all, log, snapshot_package

import resolver.testing.knot
from resolver.testing.knot import KnotServer

DNSPYTHON_NAMES = 40_000
SERVER_RCVBUF = 4 << 20


def ports(port: int, have_53: bool) -> list[int]:
    return [port, 53] if have_53 else [port]


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
    if resolver.testing.knot.find_knotd() is None:
        parser.error("knotd not found: run scripts/bench (or scripts/install --with-server)")
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="resolver-bench-"))
    try:
        with contextlib.ExitStack() as stack:
            text, runs = benchmark(args, tmp, stack)
    except resolver.testing.knot.KnotError as exc:
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
    resolver.testing.knot.START_TIMEOUT = KNOT_START_TIMEOUT
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
