"""The command line: a thin shell over the library (`resolver resolve`, `resolver demo`)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from resolver.core import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, DEFAULT_TRIES, Fallback, Resolver
from resolver.model import RecordType, ResolverError
from resolver.pipeline import Summary, run
from resolver.sources import close_inputs, lines_of, open_inputs
from resolver.writers import FORMATS, open_writer

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
DEMO_HOSTS = Path(__file__).parent / "data" / "hosts.txt"


def _types(text: str) -> list[RecordType]:
    try:
        return [RecordType.parse(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return parse


def _add_run_options(p: argparse.ArgumentParser, *, default_types: str) -> None:
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
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: stdout)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="output format (default: from OUT's extension .jsonl/.csv, else jsonl)",
    )
    p.add_argument(
        "-c",
        "--concurrency",
        type=_positive(int),
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"queries in flight at most (default: {DEFAULT_CONCURRENCY})",
    )
    p.add_argument(
        "--timeout",
        type=_positive(float),
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for each attempt (default: {DEFAULT_TIMEOUT:g})",
    )
    p.add_argument(
        "--tries",
        type=_positive(int),
        default=DEFAULT_TRIES,
        metavar="N",
        help=f"attempts per query (default: {DEFAULT_TRIES})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    p.add_argument("--no-uvloop", action="store_true", help="use asyncio's own event loop")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `resolver` command."""
    parser = argparse.ArgumentParser(
        prog="resolver",
        description="Resolve many DNS names at once: one CSV or JSONL record per input line.",
        epilog="Exit codes: 0 done (whatever the DNS answers), 1 the run failed, "
        "2 bad usage or unreadable input, 130/143 interrupted by SIGINT/SIGTERM.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    resolve = commands.add_parser(
        "resolve",
        help="resolve names and IP addresses from files or stdin",
        description="Resolve every line of FILEs (or stdin): a host name, or an IPv4/IPv6 "
        "address for a reverse (PTR) lookup. Blank lines and # comments are skipped; bad "
        "lines become INVALID rows. Results stream out in completion order.",
    )
    resolve.add_argument(
        "files", nargs="*", metavar="FILE", help="host lists; '-' or none: standard input"
    )
    resolve.add_argument(
        "-n",
        "--nameserver",
        dest="nameservers",
        action="append",
        metavar="HOST[:PORT]",
        help="DNS server IP address, repeatable (default: the system's, from /etc/resolv.conf)",
    )
    resolve.add_argument(
        "--fallback",
        choices=[f.value for f in Fallback],
        default=Fallback.AUTO.value,
        help="when to ask the system resolver (getaddrinfo) for A/AAAA/PTR: auto (after "
        "NXDOMAIN or a failure, only with the system's nameservers), always, never, "
        "only (default: auto)",
    )
    _add_run_options(resolve, default_types="A")

    demo = commands.add_parser(
        "demo",
        help="resolve the bundled example host list against a built-in loopback server",
        description="Start the project's own DNS server on 127.0.0.1 with an example zone "
        "and resolve the bundled host list through the whole pipeline. Needs no network.",
    )
    _add_run_options(demo, default_types="A,AAAA")
    return parser


async def _resolve(
    args: argparse.Namespace,
    nameservers: Sequence[str] | None,
    files: Sequence[str],
    fallback: str,
) -> tuple[Summary, int]:
    types = [t for group in args.types for t in group] if args.types else [RecordType.A]
    # Every setting and file is checked before the output file is created.
    resolver = Resolver(
        nameservers,
        timeout=args.timeout,
        tries=args.tries,
        concurrency=args.concurrency,
        fallback=fallback,
    )
    inputs = open_inputs(files)
    try:
        writer = open_writer(args.output, args.format)
    except BaseException:
        close_inputs(inputs)
        raise
    loop = asyncio.get_running_loop()
    caught: list[int] = []
    async with resolver:
        stream = resolver.resolve_many(lines_of(inputs), types=list(dict.fromkeys(types)))

        def interrupt(signum: int) -> None:
            caught.append(signum)
            stream.stop()

        for signum in EXIT_SIGNAL:
            loop.add_signal_handler(signum, interrupt, signum)
        try:
            summary = await run(stream, writer)
        finally:
            for signum in EXIT_SIGNAL:
                loop.remove_signal_handler(signum)
            writer.close()
    return summary, EXIT_SIGNAL[signal.Signals(caught[0])] if caught else EXIT_OK


async def _demo(args: argparse.Namespace) -> tuple[Summary, int]:
    from resolver.testing import EXAMPLE_ZONE, LoopbackDNSServer

    if not args.types:
        args.types = [[RecordType.A, RecordType.AAAA]]
    async with LoopbackDNSServer(EXAMPLE_ZONE) as server:
        if not args.quiet:
            print(f"demo: example zone served on {server.nameserver}", file=sys.stderr)
        return await _resolve(args, [server.nameserver], [str(DEMO_HOSTS)], Fallback.NEVER.value)


def _runner(
    args: argparse.Namespace,
) -> Callable[[], Coroutine[Any, Any, tuple[Summary, int]]]:
    if args.command == "demo":
        return lambda: _demo(args)
    files = args.files or ["-"]
    if files == ["-"] and sys.stdin.isatty():
        raise ResolverError("no input: give host-list FILEs, or pipe names on standard input")
    return lambda: _resolve(args, args.nameservers, files, args.fallback)


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
    args = build_parser().parse_args(argv)
    try:
        job = _runner(args)
        with asyncio.Runner(loop_factory=_loop_factory(args.no_uvloop)) as runner:
            summary, code = runner.run(job())
    except BrokenPipeError:
        # The reader went away (`| head`): what it wanted was written; end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except ResolverError as exc:  # bad settings or unreadable input: before any work
        print(f"resolver: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"resolver: error: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_FAILED
    if not args.quiet:
        print(f"resolver: {summary}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
