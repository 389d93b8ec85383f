"""Where results go: JSONL and CSV, streamed.

Rows are encoded whole and written in whole-row batches with unbuffered writes, so a run
that is killed leaves only complete rows behind (at worst a batch is missing, never half
a row). Addresses become text here and nowhere else.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any, Protocol

from resolver.model import ResolverError, Result

__all__ = [
    "FIELDS",
    "FORMATS",
    "CsvWriter",
    "JsonlWriter",
    "RowWriter",
    "Writer",
    "open_writer",
    "record",
]

#: The columns of every record, in order.
FIELDS = (
    "query",
    "name",
    "type",
    "status",
    "answers",
    "ttl",
    "cnames",
    "source",
    "error",
    "line",
    "elapsed_ms",
)
FORMATS = ("jsonl", "csv")
_BATCH = 64 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: One encoder for every row: `json.dumps` with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False).encode
#: A JSON string literal, as json writes it when ensure_ascii is off (C-accelerated).
_STR: Callable[[str], str] = json.encoder.encode_basestring


def record(result: Result) -> dict[str, Any]:
    """The output record of `result`: plain JSON types, answers as text."""
    return {
        "query": result.query,
        "name": result.name,
        "type": result.type.name,
        "status": result.status.value,
        "answers": [str(a) for a in result.answers],
        "ttl": result.ttl,
        "cnames": list(result.cnames),
        "source": result.source.value,
        "error": result.error,
        "line": result.line,
        "elapsed_ms": round(result.elapsed * 1000, 3),
    }


class Writer(Protocol):
    """A sink for results."""

    def write(self, result: Result) -> None:
        """Add one row (it reaches the file at the next batch or `flush`)."""

    def flush(self) -> None:
        """Write every pending row, whole."""

    def close(self) -> None:
        """Flush and release the file (stdout is flushed, not closed)."""


class RowWriter(Protocol):
    """A sink for rows already encoded (by a worker process)."""

    def write_rows(self, data: bytes) -> None:
        """Add whole rows, each ending in a newline."""

    def flush(self) -> None:
        """Write every pending row, whole."""


class _BatchWriter:
    """Keeps encoded rows until a batch is full, then writes them in one go."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._rows: list[bytes] = []
        self._size = 0

    def _add(self, row: bytes) -> None:
        self._rows.append(row)
        self._size += len(row)
        if self._size >= _BATCH:
            self.flush()

    def write_rows(self, data: bytes) -> None:
        """Add whole rows already encoded in this writer's format."""
        self._add(data)

    def flush(self) -> None:
        if not self._rows:
            return
        data = b"".join(self._rows)
        self._rows.clear()
        self._size = 0
        view = memoryview(data)
        while view:  # an unbuffered write may take only part
            written = self._out.write(view)
            if not written:
                raise OSError("the output took no bytes")
            view = view[written:]
        self._out.flush()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._out is not sys.stdout.buffer:
                self._out.close()


class JsonlWriter(_BatchWriter):
    """One JSON object per line (UTF-8; control characters escaped by JSON)."""

    def write(self, result: Result) -> None:
        """Add one row: the same text as `json.dumps(record(result), ensure_ascii=False)`,
        built directly (this is per result, and twice as fast as going through a dict)."""
        s = _STR
        ttl = "null" if result.ttl is None else str(result.ttl)
        error = "null" if result.error is None else s(result.error)
        row = (
            f'{{"query": {s(result.query)}, "name": {s(result.name)}, '
            f'"type": "{result.type.name}", "status": "{result.status.value}", '
            f'"answers": [{", ".join([s(str(a)) for a in result.answers])}], '
            f'"ttl": {ttl}, "cnames": [{", ".join([s(c) for c in result.cnames])}], '
            f'"source": "{result.source.value}", "error": {error}, "line": {result.line}, '
            f'"elapsed_ms": {_JSON(round(result.elapsed * 1000, 3))}}}\n'
        )
        self._add(row.encode("utf-8", "backslashreplace"))  # lone surrogates as \\udXXX


def _cell(value: Any) -> Any:
    """A CSV cell: lists joined by one space; text that a spreadsheet would take for a
    formula gets a leading apostrophe."""
    if isinstance(value, list):
        value = " ".join(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


class CsvWriter(_BatchWriter):
    """RFC 4180 CSV with a header row; every cell quoted where needed."""

    def __init__(self, out: IO[bytes], *, header: bool = True) -> None:
        super().__init__(out)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        if header:
            self._add(self._encode(FIELDS))

    def _encode(self, row: Any) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(row)
        return self._buffer.getvalue().encode("utf-8", "backslashreplace")

    def write(self, result: Result) -> None:
        """Add one row."""
        self._add(self._encode([_cell(v) for v in record(result).values()]))


def format_for(path: str | None, format: str | None) -> str:
    """The output format: `format` if given, else from the file extension, else JSONL."""
    if format is not None:
        if format not in FORMATS:
            raise ResolverError(f"unknown format {format!r} (choose: {', '.join(FORMATS)})")
        return format
    if path and path != "-":
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext in ("json", "ndjson"):
            return "jsonl"
        if ext in FORMATS:
            return ext
        raise ResolverError(
            f"cannot tell the format of {path!r} from its extension: "
            "use .jsonl or .csv, or --format"
        )
    return "jsonl"


def open_writer(
    path: str | None, format: str | None = None, *, header: bool = True
) -> JsonlWriter | CsvWriter:
    """A writer for `path` (None or `-`: stdout), in `format` or the one its name implies;
    `header=False` leaves out the CSV header row."""
    kind = format_for(path, format)
    if path is None or path == "-":
        out: IO[bytes] = sys.stdout.buffer
    else:
        try:
            out = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by the writer
        except OSError as exc:
            raise ResolverError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return CsvWriter(out, header=header) if kind == "csv" else JsonlWriter(out)
