"""Where queries come from: files, stdin, iterables, async iterables and asyncio queues.

Every line is numbered (from 1, across all inputs of one run) and becomes queries or
INVALID items; nothing is dropped but blank lines and comments.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Container,
    Iterable,
    Sequence,
)
from contextlib import aclosing
from itertools import islice
from typing import Any, BinaryIO

from resolver.model import InputError, InvalidInput, Query, RecordType
from resolver.names import parse_line, parse_lines

__all__ = [
    "MAX_LINE",
    "Input",
    "InputLines",
    "close_inputs",
    "lines_of",
    "open_inputs",
    "parse_item",
    "query_batches",
]

#: Lines longer than this many bytes are cut here and reported INVALID.
MAX_LINE = 64 * 1024
_CHUNK = 256 * 1024
_ITEMS = 512  # items of an iterable or queue taken in one batch
_QueueShutDown: type[BaseException] | None = getattr(asyncio, "QueueShutDown", None)

Item = str | bytes | bytearray | Query
#: Lines (str or bytes) or queries; a queue ends at `None`. Typed `Any` for the queue
#: because `Queue` is invariant: a `Queue[str | None]` must be accepted too.
Input = Iterable[Item] | AsyncIterable[Item] | asyncio.Queue[Any]


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
                raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except BaseException:
        close_inputs(files)
        raise
    return files


def close_inputs(files: Sequence[BinaryIO]) -> None:
    """Close what `open_inputs` opened (stdin stays open)."""
    for f in files:
        if f is not sys.stdin.buffer:
            f.close()


class InputLines:
    """The lines of open files, one after another, without line endings (see `lines_of`).

    Iterating gives one line at a time; `batches()` gives the lines of each chunk read,
    which is how the pipeline takes them (a list per read, not an await per line).
    """

    def __init__(self, files: Sequence[BinaryIO], *, close: bool = True) -> None:
        self._files = files
        self._close = close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._each()

    async def _each(self) -> AsyncGenerator[bytes, None]:
        async with aclosing(self.batches()) as batches:
            async for batch in batches:
                for line in batch:
                    yield line

    async def batches(self) -> AsyncGenerator[list[bytes], None]:
        """Lists of lines, read in a worker thread so a slow pipe never blocks the loop;
        over-long lines are cut at MAX_LINE + 1. The files are closed at the end (unless
        made with `close=False`)."""
        loop = asyncio.get_running_loop()
        try:
            for f in self._files:
                pending = b""
                skipping = False  # inside the tail of an over-long line
                read = getattr(f, "read1", f.read)  # read1: what a pipe has, without waiting
                while chunk := await loop.run_in_executor(None, read, _CHUNK):
                    lines = chunk.split(b"\n")
                    tail = lines.pop()  # after the last newline: the start of the next line
                    if lines:
                        if skipping:
                            del lines[0]  # the end of an over-long line, already given
                        elif pending:
                            lines[0] = pending + lines[0]
                        pending, skipping = b"", False
                        if lines and max(map(len, lines)) > MAX_LINE:
                            lines = [line[: MAX_LINE + 1] for line in lines]
                    if not skipping:
                        pending += tail
                        if len(pending) > MAX_LINE:
                            lines.append(pending[: MAX_LINE + 1])
                            pending, skipping = b"", True
                    if lines:
                        yield lines
                if pending and not skipping:
                    yield [pending]
        finally:
            if self._close:
                close_inputs(self._files)


def lines_of(files: Sequence[BinaryIO], *, close: bool = True) -> InputLines:
    """The lines of `files`, one after another, without line endings: an async iterable
    of lines that also gives them in batches. Over-long lines are cut at MAX_LINE + 1.
    The files are closed once read (`close=False`: left open, where the reading stopped)."""
    return InputLines(files, close=close)


def decode(raw: bytes) -> tuple[str, str | None]:
    """A raw line as text, and why it cannot be asked if its bytes already tell (then
    without a trailing CR, as `parse_line` takes a line that can be asked)."""
    if len(raw) > MAX_LINE:
        text = raw[:200].decode("utf-8", "backslashreplace")
        return f"{text}...", f"line longer than {MAX_LINE} bytes"
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        text = raw.removesuffix(b"\r").decode("utf-8", "backslashreplace")
        return text, f"not UTF-8 (byte {exc.start + 1})"


def parse_item(item: object, line: int, types: Sequence[RecordType]) -> list[Query | InvalidInput]:
    """What one item of a source gives: a `Query` as it is; a line of text (a trailing
    newline dropped) or of bytes (UTF-8, else INVALID) parsed by `parse_line`; anything
    else one INVALID item per type (a stream never fails on one bad item)."""
    if isinstance(item, Query):
        return [item]
    if isinstance(item, str):
        return parse_line(item[:-1] if item.endswith("\n") else item, line, types)
    if isinstance(item, bytes | bytearray):
        text, error = decode(bytes(item))
        if error is None:
            return parse_line(text, line, types)
    else:
        text, error = repr(item)[:200], f"not a line of text but {type(item).__name__}"
    return [InvalidInput(text, t, error, line) for t in types]


def _decode_all(items: Sequence[Item]) -> list[str] | None:
    """Lines as text (bytes decoded in one go, a trailing newline dropped); None if any is
    not plain good input (mixed kinds, not UTF-8, too long): those are looked at line by
    line."""
    if not items:
        return None
    if type(items[0]) is str:  # a list of names handed to the library
        texts = [item for item in items if isinstance(item, str)]
        if len(texts) != len(items):
            return None
        return [text[:-1] if text.endswith("\n") else text for text in texts]
    if type(items[0]) is not bytes:
        return None
    try:
        joined = b"\n".join(items)  # type: ignore[arg-type]  # TypeError: not all bytes
        if max(map(len, items)) > MAX_LINE:
            return None
        return joined.decode("utf-8").split("\n")
    except (TypeError, UnicodeDecodeError):
        return None


async def _batches(source: Input) -> AsyncGenerator[Sequence[Item], None]:
    """The items of `source` in lists, as many as are at hand without waiting."""
    if isinstance(source, asyncio.Queue):
        while True:
            try:
                item = await source.get()
            except BaseException as exc:
                if _QueueShutDown is not None and isinstance(exc, _QueueShutDown):
                    return
                raise
            batch: list[Item] = []
            while item is not None:
                batch.append(item)
                if len(batch) == _ITEMS or source.empty():
                    break
                item = source.get_nowait()
            if batch:
                yield batch
            if item is None:
                return
    elif isinstance(source, InputLines):
        async with aclosing(source.batches()) as batches:
            async for lines in batches:
                yield lines
    elif isinstance(source, AsyncIterable):
        async for item in source:
            yield (item,)
    else:
        items = iter(source)
        while batch := list(islice(items, _ITEMS)):
            yield batch


async def query_batches(
    source: Input,
    types: Sequence[RecordType],
    share: tuple[int, int] = (0, 1),
    skip: Container[tuple[int, str]] = (),
) -> AsyncGenerator[list[Query | InvalidInput], None]:
    """Queries (or INVALID items) for every line of `source`, each line numbered, in
    lists (one per batch of lines read).

    `share=(k, n)` takes only every n-th line, starting with line k + 1: n processes
    with k = 0 .. n-1 split one input between them, numbering lines alike. Items whose
    (line, type name) is in `skip` are left out (a resumed run's finished rows).
    """
    line = 0
    offset, step = share
    async with aclosing(_batches(source)) as batches:
        async for items in batches:
            out: list[Query | InvalidInput] = []
            if step == 1 and (texts := _decode_all(items)) is not None:
                out = parse_lines(texts, line + 1, types)  # lines of a file, all good UTF-8
                line += len(texts)
                items = ()
            for item in items:
                line += 1
                if step > 1 and (line - 1) % step != offset:
                    continue
                out += parse_item(item, line, types)
            if skip:
                out = [q for q in out if (q.line, q.type.name) not in skip]
            if out:
                yield out
