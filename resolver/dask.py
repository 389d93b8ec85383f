"""Resolving on a Dask cluster: a bag of input lines in, a bag of results or part files out.

```python
from resolver.dask import read_lines, resolve_bag, resolve_to_parts

lines = read_lines(["hosts.txt"], blocksize=4 << 20)  # byte ranges split on newlines
results = resolve_bag(lines, types=["A", "AAAA"], nameservers=["127.0.0.1:5300"])
results.filter(lambda r: r.status is Status.NOERROR).count().compute()
parts = resolve_to_parts(lines, "out/", format="jsonl").compute()  # one file a partition
```

Every partition runs the single-machine path unchanged: a `Resolver` of its own on an
event loop of its own (`asyncio.run` in the worker thread), closed when the partition ends,
and a `ResultStream` whose lines are numbered from the global number of the partition's
first line, so each row is keyed (line, type) exactly as a one-process run keys it. The
lines of each partition are counted first (one pass over the input) to know those numbers.

A part file is written under a temporary name and renamed into place only when whole: a
partition that fails (and is retried) or whose worker dies (and is rescheduled) writes it
again, never half of it and never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, Any, NamedTuple, TypeVar

import dask
import dask.bag as db
import dask.system

from resolver.core import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TIMEOUT,
    EngineName,
    Fallback,
    Resolver,
)
from resolver.model import ConfigError, RecordType, Result
from resolver.stream import ResultStream
from resolver.writers import FORMATS, Writer, open_writer

__all__ = [
    "DEFAULT_BLOCKSIZE",
    "Part",
    "Settings",
    "read_lines",
    "resolve_bag",
    "resolve_to_parts",
    "write_parts",
]

#: Bytes of input per partition unless told otherwise (about 200,000 host names).
DEFAULT_BLOCKSIZE = 4 << 20
_SCAN = 1 << 16
T = TypeVar("T")
#: Record types as `Resolver.resolve_many` takes them (`"A,AAAA"`, `["MX", 28]`, ...).
Types = str | int | RecordType | Iterable[str | int | RecordType]
#: The file extension of each output format's parts.
_PART_EXTENSION = {"jsonl": "jsonl", "csv": "csv", "sqlite": "db"}


class Range(NamedTuple):
    """The lines of `path` that start in the bytes [start, stop): one partition."""

    path: str
    start: int
    stop: int


def split_inputs(paths: Sequence[str], blocksize: int = DEFAULT_BLOCKSIZE) -> list[Range]:
    """The partitions of the files `paths`, in input order: `blocksize` bytes each (the
    last of a file shorter), lines whole. An empty file has none."""
    if blocksize < 1:
        raise ConfigError("blocksize must be at least 1 byte")
    ranges = []
    for path in paths:
        size = os.path.getsize(path)
        ranges += [
            Range(path, start, min(start + blocksize, size)) for start in range(0, size, blocksize)
        ]
    return ranges


def _line_start(f: IO[bytes], offset: int) -> int:
    """The offset of the first line that starts at or after `offset` (the end of the file
    if none does)."""
    if offset == 0:
        return 0
    f.seek(offset - 1)
    position = offset - 1
    while chunk := f.read(_SCAN):
        found = chunk.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(chunk)
    return position


def range_lines(part: Range) -> list[bytes]:
    """The lines of one partition, without line ends, cut where the one-process reader
    cuts them (`b"\\n"` only; a last line without one is a line)."""
    with open(part.path, "rb") as f:
        begin = _line_start(f, part.start)
        end = _line_start(f, part.stop) if part.stop < os.fstat(f.fileno()).st_size else part.stop
        if end <= begin:
            return []
        f.seek(begin)
        data = f.read(end - begin)
    lines = data.split(b"\n")
    if not lines[-1]:
        lines.pop()
    return lines


def bag_of(ranges: Sequence[Range]) -> db.Bag:
    """A bag with one partition of lines (bytes) per range."""
    if not ranges:
        return db.from_sequence([], npartitions=1)
    # The files' times too: a file changed since is another input, not a result to reuse.
    times = sorted({(r.path, os.stat(r.path).st_mtime_ns) for r in ranges})
    name = f"read-lines-{dask.base.tokenize(*ranges, *times)}"
    graph = {(name, k): (range_lines, part) for k, part in enumerate(ranges)}
    return db.Bag(graph, name, len(ranges))


def read_lines(paths: Sequence[str], blocksize: int = DEFAULT_BLOCKSIZE) -> db.Bag:
    """The lines of the files `paths` as a bag of bytes (no line ends), split into
    partitions of about `blocksize` bytes, lines cut as the one-process reader cuts them.

    Every worker opens the files itself: on a cluster of several machines they must be at
    the same path on each (a shared filesystem). `dask.bag.read_text` gives the same lines
    with `linedelimiter="\\n", errors="surrogateescape"` (its default splits on `\\r` too,
    and a line that is not UTF-8 fails the partition)."""
    return bag_of(split_inputs(paths, blocksize))


@dataclass(frozen=True)
class Settings:
    """What each partition's `Resolver` and stream are made with (see `Resolver`); one
    copy goes to the cluster, shared by every partition's task.

    `rate` is the queries per second of one partition; `slots`, when set, names a
    `distributed.Semaphore` of `leases` leases that every partition holds while it runs,
    so at most `leases` partitions (and `leases * rate` queries a second) run at once
    anywhere on the cluster, whatever workers join."""

    types: tuple[RecordType, ...] = (RecordType.A,)
    nameservers: tuple[str, ...] | None = None
    timeout: float = DEFAULT_TIMEOUT
    tries: int | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    fallback: str = Fallback.AUTO.value
    engine: str = EngineName.WIRE.value
    rate: float | None = None
    deadline: float | None = None
    ordered: bool = False
    unique: bool = False
    uvloop: bool = True
    slots: str | None = None
    leases: int = 1

    def __post_init__(self) -> None:
        self.resolver()  # every check a Resolver makes: now, not later on each worker
        if not self.types:
            raise ConfigError("no record type to ask")

    def resolver(self) -> Resolver:
        """A new `Resolver` with these settings (not yet open)."""
        return Resolver(
            self.nameservers,
            timeout=self.timeout,
            tries=self.tries,
            concurrency=self.concurrency,
            fallback=self.fallback,
            engine=self.engine,
            rate=self.rate,
            deadline=self.deadline,
        )


def budget(
    settings: Settings, rate: float | None, leases: int | None, *, client: Any = None
) -> Settings:
    """`settings` with a budget of `rate` queries per second for the whole run: each
    partition gets `rate / leases`, and with a distributed `client` a semaphore of `leases`
    (default: the client's worker threads now) holds the number running at once to that.
    Without one, `leases` defaults to the local schedulers' thread count (the CPUs)."""
    if rate is None:
        return replace(settings, rate=None, slots=None)
    if client is None:
        count = leases or dask.system.CPU_COUNT
        return replace(settings, rate=rate / count, slots=None, leases=count)
    count = leases or sum(client.nthreads().values()) or 1
    name = f"resolver-rate-{secrets.token_hex(8)}"  # the workers register it on first use
    return replace(settings, rate=rate / count, slots=name, leases=count)


def _settings(types: Types, **options: Any) -> Settings:
    nameservers = options.pop("nameservers", None)
    if isinstance(nameservers, str):
        raise ConfigError("nameservers must be a list of addresses, not one string")
    asked = tuple(RecordType.parse_many(types))
    for key in ("fallback", "engine"):
        if isinstance(options.get(key), Fallback | EngineName):
            options[key] = options[key].value
    return Settings(asked, tuple(nameservers) if nameservers else None, **options)


def _raw(lines: Iterable[str | bytes], seen: list[int]) -> Iterator[bytes]:
    """`lines` as the bytes the one-process reader gives (str back through
    surrogateescape, one line end dropped), counting them in `seen[0]`."""
    for line in lines:
        raw = line if isinstance(line, bytes) else line.encode("utf-8", "surrogateescape")
        seen[0] += 1
        yield raw[:-1] if raw.endswith(b"\n") else raw


@dataclass
class Part:
    """One partition's part file: its `number`, where it is, what went in and out."""

    number: int
    path: str
    first_line: int
    lines: int = 0
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    #: Replies of any rcode the nameservers gave (none at all: is a server there?).
    replies: int = 0


def _resolve_into(
    lines: Iterable[str | bytes], first_line: int, settings: Settings, writer: Writer
) -> Part:
    """Resolve `lines` (numbered from `first_line`) into `writer` on an event loop of this
    thread; the resolver is closed before this returns, whatever happens."""

    async def resolve() -> Part:
        seen = [0]
        async with settings.resolver() as resolver:
            stream = ResultStream(
                resolver,
                _raw(lines, seen),
                settings.types,
                ordered=settings.ordered,
                unique=settings.unique,
                first_line=first_line,
            )
            started = time.perf_counter()
            counts: Counter[str] = Counter()
            async with stream:
                async for batch in stream.batches():
                    writer.write_many(batch)
                    counts.update([result.status._value_ for result in batch])
            writer.flush()
            replies = sum(server.answered for server in resolver.server_stats())
        elapsed = time.perf_counter() - started
        rows = counts.total()
        return Part(-1, "", first_line, seen[0], rows, dict(counts), elapsed, replies)

    with _slot(settings), asyncio.Runner(loop_factory=_loop_factory(settings.uvloop)) as runner:
        return runner.run(resolve())


@contextlib.contextmanager
def _slot(settings: Settings) -> Iterator[None]:
    """Hold one of the run's leases (see `Settings`) while a partition resolves."""
    if settings.slots is None:
        yield
        return
    semaphore = _SEMAPHORES.get(settings.slots)
    if semaphore is None:
        from distributed import Semaphore

        semaphore = _SEMAPHORES[settings.slots] = Semaphore(settings.leases, settings.slots)
    with semaphore:
        yield


#: One client of each run's semaphore per worker process (each keeps its leases alive).
_SEMAPHORES: dict[str, Any] = {}


def _loop_factory(uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not uvloop:
        return None
    try:
        import uvloop as module
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = module.new_event_loop
    return factory


class _Collect:
    """A writer that keeps the results (a partition of `resolve_bag`)."""

    def __init__(self) -> None:
        self.results: list[Result] = []

    def write(self, result: Result) -> None:
        self.results.append(result)

    def write_many(self, results: Iterable[Result]) -> None:
        self.results += results

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def count_partition(lines: Iterable[object]) -> list[int]:
    """`[number of lines]` of one partition (`bag.map_partitions(count_partition)`)."""
    return [sum(1 for _ in lines)]


def _first_lines(lines: db.Bag, first_lines: Sequence[int] | None) -> list[int]:
    """The global line number of each partition's first line: counted (a computation on
    the current scheduler) unless given."""
    if first_lines is None:
        counts = lines.map_partitions(count_partition).compute()
        first_lines = list(itertools.accumulate(counts[:-1], initial=1))
    if len(first_lines) != lines.npartitions:
        raise ConfigError(
            f"first_lines has {len(first_lines)} numbers for {lines.npartitions} partitions"
        )
    return list(first_lines)


def _whole(items: Iterable[T]) -> list[T]:
    """A partition as a list: what a task of a distributed scheduler hands to another
    (possibly on another worker, or spilled to disk) must be data, not a generator."""
    return items if isinstance(items, list) else list(items)


def _one_each(values: Sequence[Any]) -> db.Bag:
    """A bag whose partition k holds values[k] alone (to pair with another bag's)."""
    return db.from_sequence(values, npartitions=max(1, len(values)))


def _resolve_partition(
    lines: Iterable[str | bytes], first: Sequence[int], settings: Settings
) -> list[Result]:
    collect = _Collect()
    _resolve_into(lines, first[0], settings, collect)
    return collect.results


def resolve_bag(
    lines: db.Bag,
    types: Types = (RecordType.A,),
    *,
    first_lines: Sequence[int] | None = None,
    rate: float | None = None,
    leases: int | None = None,
    **options: Any,
) -> db.Bag:
    """A bag of `Result`s, one per (line, type) of the bag `lines` (str or bytes; blank
    lines and comments give none), partition by partition; `resolver.model.record`
    turns one into the record the writers write.

    `options` are `Resolver`'s (`nameservers`, `timeout`, `tries`, `concurrency` per
    partition, `fallback`, `engine`, `deadline`) and `ResultStream`'s (`ordered`, `unique`:
    within a partition). `rate` is a budget of queries per second for the whole bag (see
    `budget`: split between `leases` partitions at once). The lines of each partition are
    counted first, now, on the current scheduler, unless `first_lines` gives the global
    number of each partition's first line."""
    settings = _settings(types, **options)
    settings = budget(settings, rate, leases, client=_client())
    firsts = _first_lines(lines, first_lines)
    return lines.map_partitions(_whole).map_partitions(
        _resolve_partition, _one_each(firsts), dask.delayed(settings)
    )


def _client() -> Any:
    """The distributed client in use, if any."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def part_name(number: int, format: str) -> str:
    """The file name of part `number`."""
    return f"part-{number:05d}.{_PART_EXTENSION[format]}"


def is_temporary(name: str) -> bool:
    """Whether `name` is a part still being written (or left by a killed attempt), or
    SQLite's journal of one."""
    return _TEMPORARY.fullmatch(name) is not None


_TEMPORARY = re.compile(r"\.part-\d+\.\w+\.\d+-[0-9a-f]+\.tmp(?:-wal|-shm|-journal)?")


def _write_atomically(
    directory: str, number: int, format: str, fill: Callable[[Writer], Part]
) -> Part:
    """Part `number` of `directory`: `fill` writes it under a temporary name (this
    process's own), which is synced and renamed into place only when whole."""
    final = os.path.join(directory, part_name(number, format))
    temp = os.path.join(
        directory, f".{part_name(number, format)}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    )
    try:
        writer = open_writer(temp, format)
        try:
            part = fill(writer)
        finally:
            writer.close()
        with open(temp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(temp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _sync_directory(directory)
    return replace(part, number=number, path=final)


def _sync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise ConfigError(f"unknown format {format!r} (choose: {', '.join(FORMATS)})")
    return format


def _resolve_part(
    lines: Iterable[str | bytes],
    where: Sequence[tuple[int, int]],
    settings: Settings,
    directory: str,
    format: str,
) -> list[Part]:
    ((number, first),) = where
    return [
        _write_atomically(
            directory, number, format, lambda w: _resolve_into(lines, first, settings, w)
        )
    ]


def resolve_to_parts(
    lines: db.Bag,
    directory: str,
    types: Types = (RecordType.A,),
    *,
    format: str = "jsonl",
    numbers: Sequence[int] | None = None,
    first_lines: Sequence[int] | None = None,
    rate: float | None = None,
    leases: int | None = None,
    **options: Any,
) -> db.Bag:
    """`resolve_bag`, each partition's rows written straight into its own part file in
    `directory` (JSONL, CSV with a header, or an SQLite database: `format`) as they come:
    a bag of one `Part` per partition. Part k is `part-NNNNN.EXT` with NNNNN =
    `numbers[k]` (default k); it appears only when whole."""
    _check_format(format)
    settings = budget(_settings(types, **options), rate, leases, client=_client())
    firsts = _first_lines(lines, first_lines)
    numbers = list(numbers) if numbers is not None else list(range(len(firsts)))
    if len(numbers) != len(firsts):
        raise ConfigError(f"numbers has {len(numbers)} entries for {len(firsts)} partitions")
    os.makedirs(directory, exist_ok=True)
    where = _one_each(list(zip(numbers, firsts, strict=True)))
    return lines.map_partitions(_whole).map_partitions(
        _resolve_part, where, dask.delayed(settings), os.path.abspath(directory), format
    )


def _write_partition(
    results: Iterable[Result], number: Sequence[int], directory: str, format: str
) -> list[Part]:
    def fill(writer: Writer) -> Part:
        counts: Counter[str] = Counter()
        first = 0
        for result in results:
            writer.write(result)
            counts[result.status.value] += 1
            first = min(first, result.line) if first else result.line
        return Part(-1, "", first, rows=counts.total(), counts=dict(counts))

    return [_write_atomically(directory, number[0], format, fill)]


def write_parts(results: db.Bag, directory: str, format: str = "jsonl") -> db.Bag:
    """Each partition of a bag of `Result`s into its own part file in `directory` (see
    `resolve_to_parts`): a bag of one `Part` per partition (`lines` is not known here:
    0; `first_line` is the lowest line number written)."""
    _check_format(format)
    os.makedirs(directory, exist_ok=True)
    numbers = _one_each(list(range(results.npartitions)))
    return results.map_partitions(_whole).map_partitions(
        _write_partition, numbers, os.path.abspath(directory), format
    )
