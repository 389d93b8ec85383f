"""`resolver bench`: its options, and the run from parsed arguments to an exit status.

The only interface with `resolver.cli`: `add_arguments(parser)` adds the options (after
the inputs and `-n`, which the CLI shares with `resolve`), `main(args, files)` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from resolver.cli.arguments import positive
from resolver.cli.bench.report import interval_line, render, step_line, write_json
from resolver.cli.bench.run import Bench, BenchConfig, BenchFailed, BenchResult
from resolver.cli.bench.workload import parse_mix, type_code
from resolver.model import ResolverError

__all__ = ["add_arguments", "main"]

# The exit statuses of `resolver` (see its --help) that a benchmark can end with.
EXIT_OK, EXIT_FAILED, EXIT_NO_ANSWER = 0, 1, 9
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}

DEFAULT_WINDOW = 100
DEFAULT_TIMEOUT = 2.0

DESCRIPTION = """\
Measure a DNS server you run. Each line of FILEs (or stdin) is a query: NAME (asked for
the -t types, or one of --mix), NAME TYPE (dnsperf's format), TIME NAME [TYPE], or a BIND
or Unbound query log line. The bench's own sender keeps -c queries outstanding (closed
loop, as dnsperf), or sends --qps per second on a fixed schedule whatever the replies do
(open loop: latency counts from each query's scheduled time, so a slow server shows as
latency, not as fewer queries), or ramps the rate step by step (--ramp, as resperf) and
reports the highest rate that kept loss and p99 within bounds. No retries unless --tries
says so (retries hide loss). Reports sent, answered, lost and late per interval,
latency p50/p90/p99/p99.9/max, rcodes, wrong answers (--check-zone, --calibrate), and
whether the client itself was the limit. This is a load test: point it only at servers
you run. Exit status 9: nothing answered; 1: wrong answers were found."""


def _types(text: str) -> list[int]:
    try:
        return [type_code(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _mix(text: str) -> list[tuple[int, int]]:
    try:
        return parse_mix(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ramp(text: str) -> tuple[float, float, float]:
    parts = text.split(":")
    try:
        low, high, step = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FROM:TO:STEP in queries/s: {text!r}") from None
    if not (0 < low <= high and step > 0):
        raise argparse.ArgumentTypeError(f"expected 0 < FROM <= TO and STEP > 0: {text!r}")
    if (high - low) / step > 1000:
        raise argparse.ArgumentTypeError(f"more than 1,000 steps: {text!r}")
    return low, high, step


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a share from 0 up to 1: {text!r}")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench options (the inputs and -n/--resolvers are the CLI's)."""
    p.description = DESCRIPTION
    load = p.add_argument_group("load")
    load.add_argument(
        "-c",
        "--concurrency",
        type=positive(int),
        metavar="N",
        help=f"closed loop: queries outstanding, over all workers (default: {DEFAULT_WINDOW})",
    )
    load.add_argument(
        "--qps",
        type=positive(float),
        metavar="N",
        help="open loop: N queries per second on a fixed schedule, whatever the replies do",
    )
    load.add_argument(
        "--ramp",
        type=_ramp,
        metavar="FROM:TO:STEP",
        help="capacity search: open loop at FROM queries/s, then FROM+STEP... up to TO, "
        "--step-duration each; stops at the first step over --max-loss or --max-p99",
    )
    load.add_argument(
        "--step-duration",
        type=positive(float),
        default=5.0,
        metavar="S",
        help="seconds per ramp step (default: 5)",
    )
    load.add_argument(
        "--max-loss",
        type=float,
        default=1.0,
        metavar="PCT",
        help="ramp: the most queries lost in a step that passes, in percent (default: 1)",
    )
    load.add_argument(
        "--max-p99",
        type=positive(float),
        default=100.0,
        metavar="MS",
        help="ramp: the highest p99 latency of a step that passes, in ms (default: 100)",
    )
    load.add_argument(
        "--duration",
        type=positive(float),
        metavar="S",
        help="send for S seconds, asking the list again from the top as often as needed "
        "(default: one pass of the list)",
    )
    load.add_argument(
        "--workers",
        type=positive(int),
        metavar="N",
        help="sending processes (default: the CPUs here, half of them when the server is on "
        "this machine; for --qps/--ramp only as many as the rate needs, one per 80,000 q/s)",
    )
    load.add_argument(
        "--sockets",
        type=positive(int),
        metavar="N",
        help="UDP sockets (source ports) per server and worker that queries go round "
        "(default: 1; servers with several UDP threads balance by port); more are opened, "
        "used only when these have no free message id (65,536 each)",
    )
    load.add_argument(
        "--timeout",
        type=positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds an attempt waits for its reply; a reply after it is late "
        f"(default: {DEFAULT_TIMEOUT:g})",
    )
    load.add_argument(
        "--tries",
        type=positive(int),
        default=1,
        metavar="N",
        help="attempts per query (default: 1: no retries, which would hide loss)",
    )
    work = p.add_argument_group("workload")
    work.add_argument(
        "-t",
        "--type",
        dest="types",
        action="append",
        type=_types,
        metavar="TYPE",
        help="record type(s) for lines that name none, each asked, repeatable or "
        "comma-separated (default: A)",
    )
    work.add_argument(
        "--mix",
        type=_mix,
        metavar="TYPE=W,...",
        help="one type per line that names none, by weight (A=70,AAAA=20,MX=10)",
    )
    work.add_argument(
        "--repeat-share",
        type=_share,
        default=0.0,
        metavar="P",
        help="repeats of names asked before making up share P of the queries (0.5: half; "
        "a recursive resolver's cache hits); the list is still asked whole",
    )
    work.add_argument(
        "--replay-timing",
        action="store_true",
        help="send each line at its own time (TIME NAME [TYPE] lines, or a query log)",
    )
    work.add_argument(
        "--speed",
        type=positive(float),
        default=1.0,
        metavar="X",
        help="with --replay-timing: X times as fast as the log (default: 1)",
    )
    work.add_argument("--seed", type=int, default=0, help="seed of --repeat-share's choices")
    check = p.add_argument_group("answers")
    check.add_argument(
        "--check-zone",
        dest="zones",
        action="append",
        metavar="ZONEFILE",
        help="compare every answer with this zone file's (repeatable): wrong answers are "
        "counted apart from lost ones",
    )
    check.add_argument(
        "--calibrate",
        action="store_true",
        help="first ask every distinct question once at --calibrate-qps (3 tries), then "
        "compare the loaded run's answers with those",
    )
    check.add_argument(
        "--calibrate-qps",
        type=positive(float),
        default=2000.0,
        metavar="N",
        help="the calibration pass's rate (default: 2000)",
    )
    out = p.add_argument_group("output")
    out.add_argument(
        "--interval",
        type=positive(float),
        default=1.0,
        metavar="S",
        help="seconds per reported interval (default: 1)",
    )
    out.add_argument(
        "--json",
        metavar="FILE",
        help="every interval, ramp step and the summary as JSON lines ('-': stdout)",
    )
    out.add_argument(
        "--report", metavar="FILE.html", help="a self-contained HTML report with plots"
    )
    out.add_argument("-q", "--quiet", action="store_true", help="no per-interval lines")
    p.add_argument(
        "--yes",
        action="store_true",
        help="confirm sending load to a nameserver that is not on this machine",
    )
    p.add_argument("--no-uvloop", action="store_true", help=argparse.SUPPRESS)


def config_from(args: argparse.Namespace, files: list[str]) -> BenchConfig:
    """The run's settings from the command line; raises ResolverError for ones that
    cannot go together."""
    paced = [flag for flag, on in (("--qps", args.qps), ("--ramp", args.ramp),
                                   ("--replay-timing", args.replay_timing)) if on]  # fmt: skip
    if len(paced) > 1:
        raise ResolverError(f"{' and '.join(paced)} each set the pace: give one")
    if paced and args.concurrency:
        raise ResolverError(f"-c is the closed loop's; {paced[0]} sends on a schedule")
    if args.ramp and args.duration:
        raise ResolverError("--ramp's length is its steps times --step-duration: no --duration")
    if args.mix and args.types:
        raise ResolverError("--mix gives the types: leave out -t")
    if args.repeat_share and args.replay_timing:
        raise ResolverError("--repeat-share changes the log's order: not with --replay-timing")
    if args.speed != 1.0 and not args.replay_timing:
        raise ResolverError("--speed goes with --replay-timing")
    if args.zones and args.calibrate:
        raise ResolverError("check against --check-zone or --calibrate, not both")
    if not 0 <= args.max_loss <= 100:
        raise ResolverError("--max-loss is a percentage, from 0 to 100")
    types = [t for group in args.types for t in group] if args.types else [1]
    return BenchConfig(
        servers=list(dict.fromkeys(args.nameservers)),
        files=files,
        types=list(dict.fromkeys(types)),
        mix=args.mix,
        repeat_share=args.repeat_share,
        replay=args.replay_timing,
        speed=args.speed,
        seed=args.seed,
        window=args.concurrency or DEFAULT_WINDOW,
        rate=args.qps,
        ramp=args.ramp,
        step_seconds=args.step_duration,
        max_loss=args.max_loss / 100,
        max_p99=args.max_p99 / 1000,
        duration=args.duration,
        timeout=args.timeout,
        tries=args.tries,
        workers=args.workers,
        sockets=args.sockets,
        interval=args.interval,
        zones=args.zones or [],
        calibrate=args.calibrate,
        calibrate_rate=args.calibrate_qps,
    )


async def main(args: argparse.Namespace, files: list[str]) -> int:
    """Run `resolver bench` with parsed arguments; the exit status."""
    from resolver.core import parse_nameserver

    args.nameservers = [parse_nameserver(n) for n in args.nameservers]
    config = config_from(args, files)
    bench = Bench(config)
    if not args.quiet:
        bench.on_interval = lambda result: print(interval_line(result), file=sys.stderr)
        bench.on_step = lambda step: print(step_line(step), file=sys.stderr)
        bench.on_start = _announce
    loop = asyncio.get_running_loop()
    caught: list[int] = []

    def interrupt(signum: int) -> None:
        caught.append(signum)
        bench.stop()

    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, interrupt, signum)
    try:
        result = await bench.run()
    except BenchFailed as exc:
        print(f"resolver bench: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        for signum in EXIT_SIGNAL:
            loop.remove_signal_handler(signum)
    for note in result.notes:
        print(f"resolver bench: warning: {note}", file=sys.stderr)
    print(render(result), file=sys.stderr if args.json == "-" else sys.stdout)
    _write_outputs(args, result)
    if caught:
        return EXIT_SIGNAL[signal.Signals(caught[0])]
    return _status(result)


def _write_outputs(args: argparse.Namespace, result: BenchResult) -> None:
    """--json and --report."""
    if args.json == "-":
        write_json(result, sys.stdout)
    elif args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            write_json(result, f)
    if args.report:
        from resolver.cli.bench.html import page

        with open(args.report, "w", encoding="utf-8") as f:
            f.write(page(result))


def _announce(result: BenchResult) -> None:
    s = result.settings
    print(
        f"bench: {s['pass_queries']:,} queries a pass ({s['questions']:,} distinct) to "
        f"{', '.join(s['servers'])}; {s['workers']} worker{'s' if s['workers'] != 1 else ''}",
        file=sys.stderr,
    )


def _status(result: BenchResult) -> int:
    c = result.total.counts
    if (c["sent"] or c["send_errors"]) and not c["answered"]:
        print(
            "resolver: error: no nameserver answered: not one reply to "
            f"{c['sent']:,} queries sent; is a server listening there?",
            file=sys.stderr,
        )
        return EXIT_NO_ANSWER
    if c["wrong"]:
        print(f"resolver bench: error: {c['wrong']:,} wrong answers", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
