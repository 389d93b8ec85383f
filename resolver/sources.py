"""Where queries come from: files, stdin, iterables, async iterables and asyncio queues.

Every line is numbered (from 1, across all inputs of one run) and becomes queries or
INVALID items; nothing is dropped but blank lines and comments.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, AsyncIterable, Container, Iterable, Sequence
from contextlib import aclosing
from typing import Any, BinaryIO

from resolver.model import InvalidInput, Query, RecordType, ResolverError
from resolver.names import parse_line

__all__ = ["MAX_LINE", "Source", "close_inputs", "lines_of", "open_inputs", "queries_from"]

#: Lines longer than this many bytes are cut here and reported INVALID.
MAX_LINE = 64 * 1024
_CHUNK = 256 * 1024
_QueueShutDown: type[BaseException] | None = getattr(asyncio, "QueueShutDown", None)

Item = str | bytes | Query
#: Lines (str or bytes) or queries; a queue ends at `None`. Typed `Any` for the queue
#: because `Queue` is invariant: a `Queue[str | None]` must be accepted too.
Source = Iterable[Item] | AsyncIterable[Item] | asyncio.Queue[Any]


def open_inputs(paths: Sequence[str]) -> list[BinaryIO]:
    """Open every input (`-` is stdin) now, so an unreadable one fails before any work."""
    files: list[BinaryIO] = []
    try:
        for path in paths:
            if path == "-":
                files.append(sys.stdin.buffer)
                continue
            try:
                files.append(open(path, "rb"))  # noqa: SIM115 - closed by lines_of()
            except OSError as exc:
                raise ResolverError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except BaseException:
        close_inputs(files)
        raise
    return files


def close_inputs(files: Sequence[BinaryIO]) -> None:
    """Close what `open_inputs` opened (stdin stays open)."""
    for f in files:
        if f is not sys.stdin.buffer:
            f.close()


async def lines_of(files: Sequence[BinaryIO]) -> AsyncGenerator[bytes, None]:
    """The lines of `files`, one after another, without line endings; read in a worker
    thread so a slow pipe never blocks the loop. Over-long lines are cut at MAX_LINE + 1."""
    loop = asyncio.get_running_loop()
    try:
        for f in files:
            pending = b""
            skipping = False  # inside the tail of an over-long line
            read = getattr(f, "read1", f.read)  # read1: what a pipe has now, without waiting
            while chunk := await loop.run_in_executor(None, read, _CHUNK):
                start = 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    if not skipping:
                        yield (pending + chunk[start:end])[: MAX_LINE + 1]
                    pending, skipping, start = b"", False, end + 1
                if not skipping:
                    pending += chunk[start:]
                    if len(pending) > MAX_LINE:
                        yield pending[: MAX_LINE + 1]
                        pending, skipping = b"", True
            if pending and not skipping:
                yield pending
    finally:
        close_inputs(files)


def decode(raw: bytes) -> tuple[str, str | None]:
    """A raw line as text, and why it cannot be asked if its bytes already tell."""
    if len(raw) > MAX_LINE:
        text = raw[:200].decode("utf-8", "backslashreplace")
        return f"{text}...", f"line longer than {MAX_LINE} bytes"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", "backslashreplace"), f"not UTF-8 (byte {exc.start + 1})"


async def _items(source: Source) -> AsyncGenerator[Item, None]:
    if isinstance(source, asyncio.Queue):
        while True:
            try:
                item = await source.get()
            except BaseException as exc:
                if _QueueShutDown is not None and isinstance(exc, _QueueShutDown):
                    return
                raise
            if item is None:
                return
            yield item
    elif isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


async def queries_from(
    source: Source,
    types: Sequence[RecordType],
    share: tuple[int, int] = (0, 1),
    skip: Container[tuple[int, str]] = (),
) -> AsyncGenerator[Query | InvalidInput, None]:
    """Queries (or INVALID items) for every line of `source`, each line numbered.

    `share=(k, n)` takes only every n-th line, starting with line k + 1: n processes
    with k = 0 .. n-1 split one input between them, numbering lines alike. Items whose
    (line, type name) is in `skip` are left out (a resumed run's finished rows).
    """
    line = 0
    offset, step = share
    async with aclosing(_items(source)) as items:
        async for item in items:
            line += 1
            if step > 1 and (line - 1) % step != offset:
                continue
            batch: list[Query | InvalidInput]
            if isinstance(item, Query):
                batch = [item]
            else:
                if isinstance(item, bytes):
                    text, error = decode(item)
                else:
                    text, error = (item[:-1] if item.endswith("\n") else item), None
                if error is None:
                    batch = parse_line(text, line, types)
                else:
                    batch = [InvalidInput(text, t, error, line) for t in types]
            for query in batch:
                if not skip or (query.line, query.type.name) not in skip:
                    yield query
