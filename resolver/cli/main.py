"""The command line: a thin shell over the library (`resolver resolve`, `resolver demo`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator, Sequence
from ipaddress import ip_address
from pathlib import Path
from typing import Any

from resolver.cli import bench as bench_command
from resolver.cli.arguments import positive
from resolver.cli.cluster import add_options as add_dask_options
from resolver.cli.cluster import resolve_on_dask
from resolver.cli.options import RunOptions
from resolver.cli.progress import Progress, same_terminal
from resolver.cli.run import Summary, run
from resolver.cli.workers import run_workers, worker_summary
from resolver.core import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    DEFAULT_TRIES,
    EngineName,
    Fallback,
    Resolver,
    parse_nameserver,
)
from resolver.engines.wire import MAX_TRIES
from resolver.model import OutputError, RecordType, ResolverError
from resolver.resume import DoneSet, check_input, done_keys
from resolver.sources import close_inputs, lines_of, open_inputs
from resolver.stream import ResultStream
from resolver.writers import FORMATS, format_for, open_writer

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Names were asked and no nameserver ever replied (as dig's "no reply from server").
EXIT_NO_ANSWER = 9
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
DEMO_HOSTS = Path(__file__).parent.parent / "data" / "hosts.txt"


def _types(text: str) -> list[RecordType]:
    try:
        return RecordType.parse_many(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> tuple[int, int]:
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit() and int(k) < int(n)):
        raise argparse.ArgumentTypeError(f"expected K/N with 0 <= K < N: {text!r}")
    return int(k), int(n)


def _add_query_options(p: argparse.ArgumentParser, *, default_types: str) -> None:
    p.add_argument(
        "-t",
        "--type",
        dest="types",
        action="append",
        type=_types,
        metavar="TYPE",
        help=f"record type(s) to ask, repeatable or comma-separated (default: {default_types}); "
        f"one of {', '.join(t.name for t in RecordType)}. IP addresses are always asked PTR",
    )
    p.add_argument(
        "-c",
        "--concurrency",
        type=positive(int),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"queries in flight at most (default: {DEFAULT_CONCURRENCY})",
    )
    p.add_argument(
        "--timeout",
        type=positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"the most seconds an attempt waits; sooner retransmissions once a server's "
        f"round-trip time is known (default: {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--tries",
        type=positive(int),
        default=None,
        metavar="N",
        help=f"attempts per query, over all the servers (default: {DEFAULT_TRIES}, and up to "
        f"{MAX_TRIES} for lost attempts while the wire engine measures heavy loss)",
    )
    p.add_argument(
        "--deadline",
        type=positive(float),
        metavar="S",
        help="end a query as TIMEOUT after S seconds, whatever tries remain (default: none; "
        "timeout and tries bound it)",
    )
    p.add_argument(
        "--qps",
        type=positive(float),
        metavar="N",
        help="send at most N queries per second (default: no limit)",
    )
    p.add_argument(
        "--engine",
        choices=[e.value for e in EngineName],
        default=EngineName.WIRE.value,
        help="wire: DNS over UDP on the event loop, handing anything unusual to c-ares; "
        "cares: c-ares for everything; aiodns: aiodns' query_dns for everything, c-ares "
        "choosing servers and tries (default: wire)",
    )
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's own event loop")


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="output file (default: stdout); an existing SQLite database keeps its other "
        "tables, and an input file is never taken as the output",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from OUT's extension .jsonl/.csv, else jsonl)",
    )
    p.add_argument(
        "--csv-bom",
        action="store_true",
        help="start CSV output with a UTF-8 byte order mark, so Excel reads it as UTF-8",
    )
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress line (the summary at the end is always printed)",
    )
    p.add_argument(
        "--progress",
        action="store_true",
        help="show the progress line even when stderr is not a terminal "
        "(default: shown on a terminal)",
    )


def _add_inputs(
    p: argparse.ArgumentParser, *, nameserver_help: str, resolvers_help: str | None = None
) -> None:
    p.add_argument(
        "files", nargs="*", metavar="FILE", help="host lists; '-' or none: standard input"
    )
    p.add_argument(
        "-n",
        "--nameserver",
        dest="nameservers",
        action="append",
        metavar="HOST[:PORT]",
        help=nameserver_help,
    )
    p.add_argument(
        "--resolvers",
        metavar="FILE",
        help=resolvers_help
        or "nameservers from a file, one HOST[:PORT] a line (IPv4 or IPv6; # comments), "
        "added to -n; queries are spread over them and a failing one is set aside a while",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `resolver` command."""
    parser = argparse.ArgumentParser(
        prog="resolver",
        description="Resolve many DNS names at once: one CSV or JSONL record per input line.",
        epilog="Exit codes: 0 done (whatever the DNS answers), 1 the run failed, "
        "2 bad usage or unreadable input, 9 no nameserver ever replied, "
        "130/143 interrupted by SIGINT/SIGTERM.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    resolve = commands.add_parser(
        "resolve",
        help="resolve names and IP addresses from files or stdin",
        description="Resolve every line of FILEs (or stdin): a host name, or an IPv4/IPv6 "
        "address for a reverse (PTR) lookup. Blank lines and # comments are skipped; bad "
        "lines become INVALID rows. Results stream out in completion order.",
    )
    _add_inputs(
        resolve,
        nameserver_help="DNS server IP address, repeatable "
        "(default: the system's, from /etc/resolv.conf)",
    )
    resolve.add_argument(
        "--fallback",
        choices=[f.value for f in Fallback],
        default=Fallback.AUTO.value,
        help="when to consult the system resolver for A/AAAA/PTR: auto (only with the "
        "system's nameservers: the hosts file after NXDOMAIN/SERVFAIL, also getaddrinfo "
        "after TIMEOUT/ERROR), always, never, only (default: auto)",
    )
    _add_query_options(resolve, default_types="A")
    _add_output_options(resolve)
    resolve.add_argument(
        "--workers",
        type=positive(int),
        default=1,
        metavar="N",
        help="N processes, each with its own event loop and sockets and every N-th line "
        "of the input, merged into one output (default: 1; at most the CPUs here). Stdin "
        "is read into a temporary file first",
    )
    resolve.add_argument("--worker", type=_share, help=argparse.SUPPRESS)  # K/N: a worker
    resolve.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run: keep the rows already in -o OUT (a torn last "
        "row is cut off), resolve only the (line, type) pairs missing, and append them; "
        "an input whose lines are not those rows' queries is refused",
    )
    add_dask_options(resolve)
    resolve.add_argument(
        "--ordered",
        action="store_true",
        help="write results in input order (a result waits for the ones before it, within "
        "the -c window; a slow query holds up the rest)",
    )
    resolve.add_argument(
        "--unique",
        action="store_true",
        help="ask each (name, type) once; lines that repeat it get a row from that answer",
    )

    demo = commands.add_parser(
        "demo",
        help="resolve the bundled example host list against a built-in loopback server",
        description="Start the project's own DNS server on 127.0.0.1 with an example zone "
        "and resolve the bundled host list through the whole pipeline. Needs no network.",
    )
    _add_query_options(demo, default_types="A,AAAA")
    _add_output_options(demo)

    bench = commands.add_parser(
        "bench",
        help="measure a DNS server: saturation, open-loop latency, capacity, answers checked",
    )
    _add_inputs(
        bench,
        nameserver_help="the DNS server to measure, repeatable (required); queries go round "
        "them in turn",
        resolvers_help="servers to measure from a file, one HOST[:PORT] a line, added to -n",
    )
    bench_command.add_arguments(bench)
    return parser


@contextlib.contextmanager
def _stopping_on_signals(stream: ResultStream) -> Iterator[list[int]]:
    """SIGINT/SIGTERM stop the stream (in-flight queries finish); yields the signals caught."""
    loop = asyncio.get_running_loop()
    caught: list[int] = []

    def interrupt(signum: int) -> None:
        caught.append(signum)
        stream.stop()

    for signum in EXIT_SIGNAL:
        loop.add_signal_handler(signum, interrupt, signum)
    try:
        yield caught
    finally:
        for signum in EXIT_SIGNAL:
            loop.remove_signal_handler(signum)


def _exit_code(caught: list[int]) -> int:
    return EXIT_SIGNAL[signal.Signals(caught[0])] if caught else EXIT_OK


async def _resolve(args: RunOptions) -> int:
    # Every setting and file is checked before the output file is created.
    files = args.files
    _check_output_is_no_input(args.output, files, args.resolvers)
    resolver = args.resolver()
    share, ordered, unique, resume = args.worker, args.ordered, args.unique, args.resume
    if args.dask:
        code, summary = await resolve_on_dask(args, files)
        return code or _no_answer(summary, args.nameservers)
    if args.workers > 1 and share is None:
        if ordered:
            raise ResolverError("--ordered cannot keep input order across --workers")
        if resume:
            raise ResolverError("--resume works with one process: leave out --workers")
        args = _cap_workers(args)
        if args.workers > 1:
            return await _resolve_in_workers(args, files)
    done = DoneSet()
    continued = args.output if resume and args.output != "-" else None  # the file resumed
    if resume:
        if continued is None:
            raise ResolverError("--resume needs the output to continue: -o FILE")
        done = done_keys(continued, format_for(continued, args.format))
    inputs = open_inputs(files)
    live = sys.stderr.isatty()
    show = share is None and not args.quiet and (args.progress or live)
    progress = Progress(sys.stderr, files, live=live) if show else None
    try:
        if continued is not None:  # the rows already there must be of this input
            inputs = await check_input(done, continued, inputs, files, args.format)
        rows = None  # where rows for stdout go: the terminal of the progress line, maybe
        terminal = live and same_terminal(sys.stdout, sys.stderr)
        if progress is not None and terminal and args.output in (None, "-"):
            rows = progress.beneath(sys.stdout.buffer)
        writer = open_writer(
            args.output,
            args.format,
            header=share is None,
            append=resume,
            stdout=rows,
            bom=args.csv_bom,
        )
    except BaseException:
        close_inputs(inputs)
        if progress is not None:
            progress.close()
        raise
    async with resolver:
        stream = resolver.resolve_many(
            lines_of(inputs),
            args.types,
            share=share or (0, 1),
            ordered=ordered,
            unique=unique,
            skip=done,
        )
        try:
            with _stopping_on_signals(stream) as caught:
                summary = await run(stream, writer, on_flush=progress.update if progress else None)
        finally:
            if progress is not None:
                progress.close()
            writer.close()
    summary.replies = sum(server.answered for server in resolver.server_stats())
    if share is not None:
        print(worker_summary(summary), file=sys.stderr)
        return _exit_code(caught)  # the parent judges the replies of all workers
    kept = f" ({len(done):,} rows were already there)" if resume else ""
    print(f"resolver: {summary}{kept}", file=sys.stderr)
    _print_servers(resolver)
    asked = [server.nameserver for server in resolver.server_stats()]
    return _exit_code(caught) or _no_answer(summary, asked or resolver.nameservers)


def _no_answer(summary: Summary, nameservers: Sequence[str] | None) -> int:
    """EXIT_NO_ANSWER, said on stderr, when names were asked and no nameserver replied."""
    if not summary.unanswered:
        return EXIT_OK
    asked = "the system's nameservers"
    if nameservers:
        asked = ", ".join(nameservers[:3]) + (", ..." if len(nameservers) > 3 else "")
    print(
        f"resolver: error: no nameserver answered ({asked}): every name ended TIMEOUT or "
        "ERROR without a single reply; is a server listening there?",
        file=sys.stderr,
    )
    return EXIT_NO_ANSWER


def _check_output_is_no_input(
    output: str | None, files: Sequence[str], resolvers: str | None
) -> None:
    """Refuse an output that is one of the inputs (the same file by device and inode:
    through a symlink or hard link too, or standard input redirected from it): writing it
    would destroy what is still to be read."""
    if output in (None, "-"):
        return
    try:
        out = os.stat(output)
    except OSError:
        return  # not there yet (or unreachable: opening it says why)
    named = [(f, f"the input file {f}") for f in files if f != "-"]
    if resolvers:
        named.append((resolvers, f"the --resolvers file {resolvers}"))
    for path, what in named:
        with contextlib.suppress(OSError):
            if os.path.samestat(out, os.stat(path)):
                raise ResolverError(f"-o {output} is {what}: write the results to another file")
    if "-" in files:
        with contextlib.suppress(OSError, ValueError):
            if os.path.samestat(out, os.fstat(sys.stdin.fileno())):
                raise ResolverError(
                    f"-o {output} is the standard input (redirected from it): "
                    "write the results to another file"
                )


def _print_servers(resolver: Resolver) -> None:
    stats = resolver.server_stats()
    if len(stats) > 1 or any(s.failed for s in stats):
        for server in stats:
            print(f"resolver: server {server}", file=sys.stderr)


async def _resolve_in_workers(args: RunOptions, files: Sequence[str]) -> int:
    kind = format_for(args.output, args.format)
    if kind not in ("jsonl", "csv"):
        raise ResolverError("--workers writes JSONL or CSV; SQLite needs one process")
    close_inputs(open_inputs([f for f in files if f != "-"]))  # unreadable: fail once, now
    with tempfile.TemporaryDirectory(prefix="resolver-") as tmp:
        if "-" in files:  # every worker reads the input: keep stdin in a file
            spooled = os.path.join(tmp, "stdin")
            await asyncio.to_thread(_spool_stdin, spooled)
            files = [spooled if f == "-" else f for f in files]
        writer = open_writer(args.output, "csv" if kind == "csv" else "jsonl", bom=args.csv_bom)
        try:
            commands = [args.worker_command(files, k) for k in range(args.workers)]
            summary, codes = await run_workers(commands, writer)
        finally:
            writer.close()
    print(f"resolver: {summary} ({args.workers} workers)", file=sys.stderr)
    if failed := [code for code in codes if code not in (EXIT_OK, *EXIT_SIGNAL.values())]:
        return failed[0]
    return max(codes) or _no_answer(summary, args.nameservers)  # 130/143 when interrupted


def _spool_stdin(path: str) -> None:
    with open(path, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)


async def _demo(args: argparse.Namespace) -> int:
    from resolver.testing import EXAMPLE_ZONE, LoopbackDNSServer

    async with LoopbackDNSServer(EXAMPLE_ZONE) as server:
        if not args.quiet:
            print(f"demo: example zone served on {server.nameserver}", file=sys.stderr)
        options = RunOptions.parse(
            args,
            files=[str(DEMO_HOSTS)],
            nameservers=[server.nameserver],
            default_types=(RecordType.A, RecordType.AAAA),
            fallback=Fallback.NEVER.value,
        )
        return await _resolve(options)


def _check_bench_targets(args: argparse.Namespace) -> None:
    if not args.nameservers:
        raise ResolverError("bench needs the nameserver to measure: -n HOST[:PORT]")
    remote = [n for n in map(parse_nameserver, args.nameservers) if not _is_loopback(n)]
    if remote and not args.yes:
        raise ResolverError(
            f"{', '.join(remote)} is not on this machine: bench sends load as fast as it "
            "can. Measure only servers you run; pass --yes to confirm (and --qps to cap it)"
        )
    if remote:
        print(
            f"resolver bench: warning: sending load to {', '.join(remote)}"
            + (f" at up to {args.qps:g} queries/s" if args.qps else " without a rate cap"),
            file=sys.stderr,
        )


def _is_loopback(nameserver: str) -> bool:
    host = nameserver.rpartition(":")[0].strip("[]")
    return ip_address(host).is_loopback


#: Bad lines of a --resolvers file that are each named in a warning; the rest are counted.
_NAMED_BAD_LINES = 5


#: The command line's name for each option an `OutputError` may name.
_FLAGS = {"append": "--resume", "format": "--format", "path": "a file (-o results.db)"}


def _read_resolvers(path: str) -> list[str]:
    """The nameservers listed in `path`. A line that is not one is skipped with a warning
    (file:line: why), as massdns does: public resolver lists hold the odd stray line. A
    file without a single usable nameserver is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ResolverError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    found, bad = [], 0
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            found.append(parse_nameserver(text))
        except ResolverError as exc:
            bad += 1
            if bad <= _NAMED_BAD_LINES:
                print(f"resolver: warning: {path}:{number}: {exc} (skipped)", file=sys.stderr)
    if bad > _NAMED_BAD_LINES:
        more = bad - _NAMED_BAD_LINES
        print(f"resolver: warning: {path}: {more:,} more bad lines skipped", file=sys.stderr)
    if not found:
        skipped = f" ({bad:,} bad line{'' if bad == 1 else 's'} skipped)" if bad else ""
        raise ResolverError(f"{path} lists no usable nameserver{skipped}")
    return found


def _runner(args: argparse.Namespace) -> Callable[[], Coroutine[Any, Any, int]]:
    if args.command == "demo":
        return lambda: _demo(args)
    if args.resolvers:
        args.nameservers = [*(args.nameservers or ()), *_read_resolvers(args.resolvers)]
    files = args.files or ["-"]
    if files == ["-"] and sys.stdin.isatty():
        raise ResolverError("no input: give host-list FILEs, or pipe names on standard input")
    if args.command == "bench":
        _check_bench_targets(args)
        return lambda: bench_command.main(args, files)
    options = RunOptions.parse(args, files=files, nameservers=args.nameservers)
    return lambda: _resolve(options)


def _cap_workers(args: RunOptions) -> RunOptions:
    """More workers than CPUs only compete for them (each is a busy event loop): cap
    --workers at the CPUs this process may run on, saying so."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    if args.workers > cpus:
        print(
            f"resolver: warning: --workers {args.workers} is more than the {cpus} CPU"
            f"{'' if cpus == 1 else 's'} here: running {cpus} (more only compete for them)",
            file=sys.stderr,
        )
        return args.replace(workers=cpus)
    return args


def _loop_factory(no_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if no_uvloop:
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `resolver` command; returns the exit code."""
    # A bulk run allocates a few short-lived objects per name, nearly all freed by their
    # reference counts: the cyclic collector is asked less often, and not to walk what
    # start-up loaded (measured: 81,000 -> 82,500 names/s).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    args = build_parser().parse_args(argv)
    try:
        job = _runner(args)
        with asyncio.Runner(loop_factory=_loop_factory(args.no_uvloop)) as runner:
            return runner.run(job())
    except BrokenPipeError:
        # The reader went away (`| head`): what it wanted was written; end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OutputError as exc:  # the library names its options; say the flags instead
        text = exc.said_as(_FLAGS[exc.option]) if exc.option else str(exc)
        print(f"resolver: error: {text}", file=sys.stderr)
        return EXIT_USAGE
    except ResolverError as exc:  # bad settings or unreadable input: before any work
        print(f"resolver: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"resolver: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
