"""`resolver resolve --dask`: one run on a Dask cluster, its part files, manifest and resume.

The inputs are split into byte ranges on newlines (`resolver.dask.split_inputs`), their
lines counted (one task per range) so that each knows the global number of its first line,
then each range is resolved by one task into its own part file (`resolve_to_parts`), which
appears only when whole. The manifest (`manifest.json` beside the parts) records the plan
and each finished part; `--resume` redoes only the partitions without one. With `-o FILE`
the parts are kept in `FILE.parts/` and merged into FILE at the end.

Dask is an optional dependency: nothing here imports it before a `--dask` run starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from resolver.cli.options import RunOptions
from resolver.cli.progress import PLAIN_EVERY
from resolver.cli.run import Summary
from resolver.model import (
    SQLITE_COLUMNS,
    ConfigError,
    InputError,
    ResolverError,
    Status,
)
from resolver.writers import SqliteWriter, format_for, open_writer

__all__ = [
    "add_options",
    "dask_setup",
    "merge_parts",
    "parse_size",
    "partition_size",
    "resolve_on_dask",
]

MANIFEST = "manifest.json"
#: Times a partition that raised is tried again (a worker's death is Dask's own count:
#: `distributed.scheduler.allowed-failures`, 3 by default).
RETRIES = 2
_MANIFEST_EVERY = 1.0  # seconds between rewrites of the manifest while parts finish
_WORKERS_WAIT = 60  # seconds to wait for a first worker
_CONNECT_WAIT = 10  # seconds to wait for the scheduler to answer
_PROGRESS_EVERY = 0.2  # seconds between the scheduler's progress reports
_SMALLEST = 64 << 10  # bytes: the smallest partition chosen by default
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"(\xb5/\xfd": "zstd"}
_SIZE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`"4M"`, `"512k"`, `"1GiB"`, `"65536"` -> bytes."""
    m = _SIZE.fullmatch(text.strip())
    if not m or int(m[1]) == 0:
        raise argparse.ArgumentTypeError(f"expected a size such as 4M or 65536: {text!r}")
    return int(m[1]) << {"": 0, "k": 10, "m": 20, "g": 30}[m[2].lower()]


def add_options(p: argparse.ArgumentParser) -> None:
    """The `--dask` options of `resolver resolve`."""
    p.add_argument(
        "--dask",
        metavar="SCHEDULER",
        help="resolve on a Dask cluster: a scheduler address (tcp://HOST:8786), or local:N "
        "for N worker processes on this machine. Output goes to part files (-o DIR/) or is "
        "merged into -o FILE at the end; --qps is a budget for the whole cluster, -c is per "
        "worker thread; --resume redoes only the partitions not finished. Needs "
        "`pip install resolver[dask]`",
    )
    p.add_argument(
        "--partition-size",
        type=parse_size,
        metavar="SIZE",
        help="--dask: bytes of input per partition, e.g. 4M (default: at least 4 "
        "partitions per worker thread, each 64k to 4M: about 3,000 to 200,000 names)",
    )


@dataclass
class _Layout:
    """Where a run's parts go and where they end up."""

    parts: str  # the directory of part files and the manifest
    merged: str | None  # the file they are merged into ("-": stdout), or None: kept as parts
    format: str
    temporary: bool = False  # parts is a temporary directory of ours
    bom: bool = False  # a merged CSV starts with a byte order mark
    #: parts did not exist before this run
    fresh: bool = field(init=False)

    def __post_init__(self) -> None:
        self.fresh = self.temporary or not os.path.exists(self.parts)

    @property
    def manifest(self) -> str:
        return os.path.join(self.parts, MANIFEST)

    def tidy(self) -> None:
        """Remove the parts directory if this run made it and it holds no run to resume
        (the run stopped before its plan was written; a temporary one, always)."""
        if self.fresh and (self.temporary or not os.path.exists(self.manifest)):
            shutil.rmtree(self.parts, ignore_errors=True)


def _layout(args: RunOptions) -> _Layout:
    layout = _where(args)
    layout.bom = args.csv_bom
    if layout.bom and layout.format != "csv":
        raise ConfigError(f"a byte order mark is for CSV output, not {layout.format}")
    return layout


def _where(args: RunOptions) -> _Layout:
    out = args.output
    if out is None or out == "-":
        kind = format_for(None, args.format)
        if kind == "sqlite":
            raise ResolverError(
                "SQLite output needs a file (-o results.db): it cannot go to standard output"
            )
        if args.resume:
            raise ResolverError("--resume needs the output to continue: -o FILE or -o DIR/")
        return _Layout(tempfile.mkdtemp(prefix="resolver-parts-"), "-", kind, temporary=True)
    if out.endswith(os.sep) or os.path.isdir(out):
        return _Layout(out.rstrip(os.sep) or os.sep, None, format_for(None, args.format))
    return _Layout(out + ".parts", out, format_for(out, args.format))


def _check_inputs(files: Sequence[str]) -> None:
    """Every input is a readable regular file that can be split into byte ranges."""
    for path in files:
        try:
            with open(path, "rb") as f:
                head = f.read(8)
                regular = os.path.isfile(path)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not regular:
            raise InputError(
                f"{path} is not a regular file: --dask splits its inputs into byte ranges; "
                "save it to a file first"
            )
        for magic, kind in _COMPRESSED.items():
            if head.startswith(magic):
                raise InputError(
                    f"{path} is compressed ({kind}): --dask splits its inputs into byte "
                    "ranges, which a compressed file cannot be; decompress it first"
                )


def _inputs_of(files: Sequence[str]) -> list[dict[str, Any]]:
    found = []
    for path in files:
        st = os.stat(path)
        found.append(
            {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        )
    return found


def _write_manifest(path: str, manifest: dict[str, Any]) -> None:
    temp = f"{path}.{os.getpid()}.tmp"
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)


def _read_manifest(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            manifest: dict[str, Any] = json.load(f)
    except FileNotFoundError:
        raise ResolverError(
            f"nothing to resume: {path} does not exist (a --dask run that finished merging "
            "removes its parts directory)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ResolverError(f"cannot resume from {path}: {exc}") from exc
    if manifest.get("version") != 1:
        raise ResolverError(f"cannot resume from {path}: not a manifest of this version")
    return manifest


def _same_run(manifest: dict[str, Any], plan: dict[str, Any], path: str) -> None:
    """Refuse to resume with other inputs or settings than the run had."""
    for key in ("inputs", "format", "types", "partition_size"):
        if key in plan and manifest.get(key) != plan[key]:
            what = "input files (or their sizes or times)" if key == "inputs" else key
            raise ResolverError(
                f"cannot resume from {path}: the {what} differ from that run's; give the "
                "same inputs and options, or start afresh in another place"
            )


def _finished(manifest: dict[str, Any], directory: str) -> dict[int, dict[str, Any]]:
    """The partitions with a part that is whole: recorded in the manifest, and there."""
    done = {}
    for entry in manifest["partitions"]:
        part = entry.get("part")
        if part and os.path.exists(os.path.join(directory, part)):
            done[entry["number"]] = entry
    return done


def _remove_temporaries(directory: str) -> None:
    from resolver.dask import is_temporary

    with contextlib.suppress(FileNotFoundError):
        for name in os.listdir(directory):
            if is_temporary(name):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(directory, name))


def merge_parts(parts: Sequence[str], target: str, format: str, *, bom: bool = False) -> None:
    """The part files `parts` (of `format`), in order, into `target` ("-": stdout): a
    JSONL or CSV file replaced whole (CSV: one header, with a byte order mark if `bom`),
    or the rows added to an SQLite database's results."""
    if format == "sqlite":
        _merge_sqlite(target, parts)
        return
    temp = None if target == "-" else f"{target}.{os.getpid()}.tmp"
    writer = open_writer(temp, "csv" if format == "csv" else "jsonl", bom=bom)
    try:
        for path in parts:
            with open(path, "rb") as f:
                if format == "csv":
                    f.readline()  # each part's own header row
                while data := f.read(1 << 20):
                    writer.write_rows(data)
    except BaseException:
        writer.close()
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)
        raise
    writer.close()
    if temp is not None:
        os.replace(temp, target)


def _merge_sqlite(target: str, parts: Sequence[str]) -> None:
    """Rows of each part database into `target`'s results, one transaction a part; a
    merge done again (resumed) adds none twice: (line, type) is unique there."""
    SqliteWriter(target, append=True).close()  # the table, if it is not there yet
    columns = ", ".join(SQLITE_COLUMNS)
    db = sqlite3.connect(target, isolation_level=None)
    try:
        for path in parts:
            db.execute("ATTACH DATABASE ? AS part", (path,))
            try:
                db.execute("BEGIN")
                db.execute(
                    f"INSERT OR IGNORE INTO results ({columns}) "  # noqa: S608 - our names
                    f"SELECT {columns} FROM part.results"
                )
                db.execute("COMMIT")
            finally:
                db.execute("DETACH DATABASE part")
    except sqlite3.Error as exc:
        raise OSError(f"cannot write {target}: {exc}") from exc
    finally:
        db.close()


async def resolve_on_dask(args: RunOptions, files: Sequence[str]) -> tuple[int, Summary]:
    """Run `resolver resolve --dask`; the exit code and the summary of the rows written."""
    if args.workers > 1:
        raise ResolverError("--dask spreads the work over its workers: leave out --workers")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ResolverError("--dask needs Dask: pip install 'resolver[dask]'") from None
    if "-" in files and args.resume:
        raise ResolverError("--resume with --dask needs input FILEs: stdin cannot be read again")
    layout = _layout(args)
    try:
        return await _run(args, files, layout)
    finally:
        layout.tidy()


def partition_size(total: int, threads: int) -> int:
    """The default partition size for `total` bytes of input on `threads` worker threads:
    at least 4 partitions a thread (so the work spreads, and a lost worker costs little),
    each from 64 KiB to `resolver.dask.DEFAULT_BLOCKSIZE` (4 MiB: 1% overhead)."""
    from resolver.dask import DEFAULT_BLOCKSIZE

    return max(_SMALLEST, min(DEFAULT_BLOCKSIZE, -(-total // (4 * max(1, threads)))))


def _prepare(
    args: RunOptions, files: Sequence[str], layout: _Layout
) -> tuple[list[str], str | None, dict[str, Any], dict[str, Any] | None]:
    """Everything checked (and stdin saved) before a cluster is asked for: the input files,
    the saved stdin, the run's plan, and the manifest of the run to resume."""
    _check_inputs([f for f in files if f != "-"])
    manifest = None
    if args.resume:
        manifest = _read_manifest(layout.manifest)
    elif os.path.isdir(layout.parts) and os.listdir(layout.parts) and not layout.temporary:
        raise ResolverError(
            f"{layout.parts} is not empty: --resume continues the run whose parts it holds; "
            "to start afresh, choose another place (or remove it)"
        )
    os.makedirs(layout.parts, exist_ok=True)
    if layout.merged not in (None, "-") and layout.format == "sqlite":
        SqliteWriter(layout.merged, append=args.resume).close()  # refused now, not at the end
    spooled = None
    inputs = list(files)
    if "-" in files:
        spooled = os.path.join(layout.parts, "stdin.txt")
        with open(spooled, "wb") as out:
            shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
        inputs = [spooled if f == "-" else f for f in files]
    plan: dict[str, Any] = {
        "version": 1,
        "inputs": _inputs_of(inputs),
        "format": layout.format,
        "types": [t.name for t in args.types],
    }
    if args.partition_size:
        plan["partition_size"] = args.partition_size
    if manifest is not None:
        _same_run(manifest, plan, layout.manifest)
        _remove_temporaries(layout.parts)
    return inputs, spooled, plan, manifest


class _Stop:
    """SIGINT and SIGTERM while a run lasts: `future` gets the exit code of the first.
    Until the partitions are submitted (`early`), a signal also cancels the run's task
    (starting the cluster, counting lines): there is nothing to finish yet."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.future: asyncio.Future[int] = self._loop.create_future()
        self.early = True

    def __enter__(self) -> _Stop:
        for signum, code in _SIGNAL_EXIT.items():
            self._loop.add_signal_handler(signum, self._interrupt, code)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum in _SIGNAL_EXIT:
            self._loop.remove_signal_handler(signum)

    def _interrupt(self, code: int) -> None:
        if not self.future.done():
            self.future.set_result(code)
            if self.early and self._task is not None:
                self._task.cancel()


async def _run(args: RunOptions, files: Sequence[str], layout: _Layout) -> tuple[int, Summary]:
    if args.dask is None:  # resolve_on_dask is for --dask runs only
        raise ResolverError("--dask needs a scheduler address or local:N")
    address = args.dask
    inputs, spooled, plan, resumed = _prepare(args, files, layout)
    with _Stop() as stop:
        try:
            async with _cluster(address) as client:
                manifest, threads = await _plan(client, args, layout, inputs, plan, resumed)
                entries = manifest["partitions"]
                done = _finished(manifest, layout.parts)
                kept = sum(entry["rows"] for entry in done.values())
                run = _Run(args, layout, manifest, client, threads)
                todo = [e for e in entries if e["number"] not in done]
                stop.early = False
                code = await run.resolve(todo, stop.future)
        except asyncio.CancelledError:
            if not (stop.early and stop.future.done()):
                raise  # not ours
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            print("resolver: interrupted before any partition was resolved", file=sys.stderr)
            return stop.future.result(), Summary(interrupted=True)
    if code == 0:
        _finish(layout, entries, spooled)
    print(f"resolver: {run.summary}{run.tail(kept, len(entries))}", file=sys.stderr)
    return code, run.summary


async def _plan(
    client: Any,
    args: RunOptions,
    layout: _Layout,
    inputs: Sequence[str],
    plan: dict[str, Any],
    manifest: dict[str, Any] | None,
) -> tuple[dict[str, Any], int]:
    """The manifest of the run (the resumed one's, or a new one with the lines of every
    partition counted on the cluster) and the cluster's worker threads."""
    from resolver.dask import split_inputs

    try:
        await client.wait_for_workers(1, timeout=_WORKERS_WAIT)
    except TimeoutError:
        raise ResolverError(
            f"the Dask cluster at {args.dask} has no worker (waited {_WORKERS_WAIT} s)"
        ) from None
    threads = sum((await client.nthreads()).values())
    if manifest is None:
        total = sum(entry["size"] for entry in plan["inputs"])
        plan.setdefault("partition_size", partition_size(total, threads))
        ranges = split_inputs(inputs, plan["partition_size"])
        counts = await _count(client, ranges)
        firsts = itertools.accumulate(counts[:-1], initial=1)
        entries = [
            {"number": k, "path": r.path, "start": r.start, "stop": r.stop,
             "first_line": first, "lines": n, "part": None}
            for k, (r, first, n) in enumerate(zip(ranges, firsts, counts, strict=True))
        ]  # fmt: skip
        manifest = {**plan, "status": "running", "partitions": entries}
        _write_manifest(layout.manifest, manifest)
    return manifest, threads


def _finish(layout: _Layout, entries: Sequence[dict[str, Any]], spooled: str | None) -> None:
    """Every part is done: merge them (and remove them then), or leave them tidy."""
    _remove_temporaries(layout.parts)
    if spooled is not None:
        os.unlink(spooled)
    if layout.merged is not None:
        parts = [os.path.join(layout.parts, entry["part"]) for entry in entries]
        merge_parts(parts, layout.merged, layout.format, bom=layout.bom)
        if not layout.temporary:
            shutil.rmtree(layout.parts)


@contextlib.asynccontextmanager
async def _cluster(address: str) -> Any:
    """A client of the scheduler at `address`, or of a new LocalCluster for `local:N`."""
    from distributed import Client, LocalCluster

    kind, _, count = address.partition(":")
    if kind == "local":
        if not count.isdigit() or int(count) < 1:
            raise ResolverError(f"--dask local:N needs a number of workers: {address!r}")
        cluster = LocalCluster(
            n_workers=int(count),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.CRITICAL,  # what goes wrong, this run reports itself
            preload=[__name__],  # dask_setup: the workers leave Ctrl-C to this process
            asynchronous=True,
        )
        # Workers spawned while SIGINT is blocked keep it blocked: a terminal's Ctrl-C
        # (sent to the whole process group) is this process's to handle, not theirs.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            await cluster
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        async with cluster, Client(cluster, asynchronous=True) as client:
            yield client
        return
    try:
        client = await Client(address, asynchronous=True, timeout=_CONNECT_WAIT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ResolverError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        yield client
    finally:
        await client.close()


def dask_setup(worker: Any) -> None:
    """Run by each worker process of a `local:N` cluster as it starts (a Dask preload):
    SIGINT (a terminal's Ctrl-C reaches the whole process group) is left to the run,
    which stops the cluster itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _count(client: Any, ranges: Sequence[Any]) -> list[int]:
    """The number of lines of each range, counted on the cluster."""
    from resolver.dask import bag_of, count_partition

    if not ranges:
        return []
    counts: list[int] = await client.compute(bag_of(ranges).map_partitions(count_partition))
    return counts


class _Run:
    """The resolving phase: submit the partitions to do, follow them to the end."""

    def __init__(
        self,
        args: RunOptions,
        layout: _Layout,
        manifest: dict[str, Any],
        client: Any,
        threads: int,
    ) -> None:
        self.args = args
        self.layout = layout
        self.manifest = manifest
        self.client = client
        self.threads = threads
        self.summary = Summary()
        self.resolved = 0  # partitions finished in this run
        self.partitions = 0  # partitions to do in this run
        self._written = 0.0

    def tail(self, kept: int, partitions: int) -> str:
        already = f"; {kept:,} rows were already there" if kept else ""
        return f" ({partitions} partitions, {self.threads} worker threads{already})"

    async def resolve(self, todo: Sequence[dict[str, Any]], stop: asyncio.Future[int]) -> int:
        """Resolve the partitions `todo` (until a signal sets `stop`); the exit code."""
        from resolver.dask import Range, bag_of, resolve_to_parts

        args = self.args
        started = time.perf_counter()
        entries = {entry["number"]: entry for entry in self.manifest["partitions"]}
        code = 0
        self.partitions = len(todo)
        if todo:
            lines = bag_of([Range(e["path"], e["start"], e["stop"]) for e in todo])
            parts = resolve_to_parts(
                lines,
                self.layout.parts,
                list(args.types),
                format=self.layout.format,
                numbers=[e["number"] for e in todo],
                first_lines=[e["first_line"] for e in todo],
                rate=args.qps,
                leases=self.threads,
                nameservers=args.nameservers,
                timeout=args.timeout,
                tries=args.tries,
                concurrency=args.concurrency,
                fallback=args.fallback,
                engine=args.engine,
                deadline=args.deadline,
                ordered=args.ordered,
                unique=args.unique,
                uvloop=not args.no_uvloop,
            )
            futures = self.client.compute(parts.to_delayed(), retries=RETRIES)
            numbers = {f.key: e["number"] for f, e in zip(futures, todo, strict=True)}
            code = await self._follow(futures, numbers, entries, started, stop)
        self.summary.elapsed = time.perf_counter() - started
        status = {0: "complete", 1: "failed"}.get(code, "interrupted")
        self.summary.interrupted = status == "interrupted"
        self.manifest["status"] = status
        self.manifest["rows"] = sum(e.get("rows", 0) for e in entries.values())
        self.manifest["counts"] = dict(
            sum((Counter(e.get("counts", {})) for e in entries.values()), Counter())
        )
        _write_manifest(self.layout.manifest, self.manifest)
        return code

    async def _follow(
        self,
        futures: Sequence[Any],
        numbers: dict[Any, int],
        entries: dict[int, dict[str, Any]],
        started: float,
        stop: asyncio.Future[int],
    ) -> int:
        """Wait for every part (or a signal, or a failure); record each as it comes."""
        from distributed import as_completed

        args = self.args
        show = not args.quiet and (args.progress or sys.stderr.isatty())
        bar = _progress_line(futures, self, sys.stderr, started) if show else None
        drawing = asyncio.ensure_future(bar.listen()) if bar is not None else None

        async def collect() -> int:
            async for future in as_completed(futures):
                try:
                    ((part,),) = [await future]
                except Exception as exc:
                    print(
                        f"resolver: error: partition {numbers[future.key]} failed "
                        f"({RETRIES + 1} tries): {type(exc).__name__}: {exc}; "
                        "--resume redoes only the partitions not finished",
                        file=sys.stderr,
                    )
                    return 1
                self._record(part, entries)
            return 0

        collecting = asyncio.ensure_future(collect())
        try:
            await asyncio.wait({collecting, stop}, return_when=asyncio.FIRST_COMPLETED)
            code = collecting.result() if collecting.done() else stop.result()
        finally:
            if not collecting.done():
                collecting.cancel()
            await self.client.cancel(futures)
            if bar is not None and drawing is not None:
                drawing.cancel()
                with contextlib.suppress(BaseException):
                    await drawing
                await bar.stop()
        return code

    def _record(self, part: Any, entries: dict[int, dict[str, Any]]) -> None:
        if not os.path.exists(part.path):
            raise ResolverError(
                f"part {part.number} was written on a worker as {part.path}, which this "
                "machine cannot see: give -o a path on a filesystem that the workers and this "
                "machine share"
            )
        entry = entries[part.number]
        entry.update(
            part=os.path.basename(part.path),
            rows=part.rows,
            counts=part.counts,
            elapsed=round(part.elapsed, 3),
        )
        self.summary.counts.update(part.counts)
        self.summary.replies += part.replies
        self.resolved += 1
        now = time.perf_counter()
        if now - self._written >= _MANIFEST_EVERY:
            _write_manifest(self.layout.manifest, self.manifest)
            self._written = now


def _progress_line(futures: Sequence[Any], run: _Run, out: TextIO, started: float) -> Any:
    """The progress line of a `--dask` run, drawn from Dask's own progress reports (the
    scheduler's count of the tasks left, pushed to us), with the rows and statuses of the
    parts done so far: redrawn in place on a terminal, else a plain line every few seconds
    (as the one-process progress does)."""
    from distributed.diagnostics.progressbar import ProgressBar

    live = out.isatty()
    printed = [-PLAIN_EVERY]

    class Line(ProgressBar):  # type: ignore[misc]
        def _draw_bar(self, remaining: int, all: int, **kwargs: Any) -> None:
            summary = run.summary
            elapsed = time.perf_counter() - started
            if not live and elapsed - printed[0] < PLAIN_EVERY:
                return
            printed[0] = elapsed
            rate = summary.total / elapsed if elapsed > 0 else 0.0
            statuses = " ".join(
                f"{s.value} {summary.counts[s.value]:,}" for s in Status if summary.counts[s.value]
            )
            tasks = f" ({1 - remaining / all:.0%} of tasks)" if all else ""
            text = (
                f"{run.resolved:,} of {run.partitions:,} partitions{tasks}  "
                f"{summary.total:,} rows  {rate:,.0f}/s  {statuses}"
            )
            out.write(f"\r\x1b[K{text}" if live else f"resolver: progress: {text}\n")
            out.flush()

        async def stop(self) -> None:
            """Clear the line and hang up; the scheduler notices at its next report."""
            if live:
                out.write("\r\x1b[K")
                out.flush()
            comm = getattr(self, "comm", None)
            if comm is not None and not comm.closed():
                await comm.close()
                await asyncio.sleep(2 * _PROGRESS_EVERY)  # before a cluster of ours closes

    return Line(futures, scheduler=run.client.scheduler.address, interval=_PROGRESS_EVERY)
