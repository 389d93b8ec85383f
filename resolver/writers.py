"""Where results go: JSONL and CSV, streamed; or an SQLite database.

Rows are encoded whole and written in whole-row batches with unbuffered writes, so a run
that is killed leaves only complete rows behind (at worst a batch is missing, never half
a row; `resolver.resume.done_keys` cuts away the torn tail a kill in the middle of a write
can leave). SQLite rows go in one transaction per batch, in WAL mode: a killed run keeps
every committed batch. Addresses become text (or packed bytes) here and nowhere else.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv6Address
from socket import AF_INET as _AF_INET
from socket import inet_ntop as _ntop
from typing import IO, Any, BinaryIO, Literal, Protocol, overload

from resolver.model import (
    FIELDS,
    SQLITE_COLUMNS,
    ConfigError,
    OutputError,
    Result,
    answer_text,
    record,
    sqlite_schema,
)

__all__ = [
    "BOM",
    "EXTENSIONS",
    "FORMATS",
    "SQLITE_SCHEMA",
    "CsvWriter",
    "JsonlWriter",
    "RowWriter",
    "SqliteWriter",
    "Writer",
    "open_writer",
]

FORMATS = ("jsonl", "csv", "sqlite")
#: File extensions (lowercase, without the dot) and the format they imply.
EXTENSIONS = {
    "jsonl": "jsonl",
    "json": "jsonl",
    "ndjson": "jsonl",
    "csv": "csv",
    "db": "sqlite",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
}
_BATCH = 64 * 1024
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: One encoder for every row: `json.dumps` with options builds a new one per call.
_JSON = json.JSONEncoder(ensure_ascii=False).encode
#: A JSON string literal, as json writes it when ensure_ascii is off (C-accelerated).
_STR: Callable[[str], str] = json.encoder.encode_basestring


class Writer(Protocol):
    """A sink for results."""

    def write(self, result: Result) -> None:
        """Add one row (it reaches the file at the next batch or `flush`)."""

    def write_many(self, results: Iterable[Result]) -> None:
        """Add one row per result, in order."""

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

    def write(self, result: Result) -> None:
        """Add one row."""
        raise NotImplementedError

    def write_many(self, results: Iterable[Result]) -> None:
        """Add one row per result, in order."""
        for result in results:
            self.write(result)

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
                raise OutputError("the output took no bytes")
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
        """Add one row."""
        self._add(_jsonl_row(result).encode("utf-8", "backslashreplace"))

    def write_many(self, results: Iterable[Result]) -> None:
        """Add one row per result (encoded together: cheaper than one by one)."""
        rows = "".join([_jsonl_row(result) for result in results])
        self._add(rows.encode("utf-8", "backslashreplace"))  # lone surrogates as \\udXXX


def _jsonl_row(result: Result) -> str:
    """`json.dumps(record(result), ensure_ascii=False)` and a newline, built directly (this
    is per result, and twice as fast as going through a dict), but for `elapsed_ms`,
    written with three decimals (the same number as the record's)."""
    s = _STR
    query = s(result.query)
    name = query if result.name == result.query else s(result.name)
    ttl = "null" if result.ttl is None else result.ttl
    server = _SERVERS.get(result.server) or _server_json(result.server)
    error = "null" if result.error is None else s(result.error)
    answers = result.answers
    if not answers:
        listed = ""
    elif len(answers) == 1 and type(answers[0]) is IPv4Address:  # the commonest by far
        listed = f'"{_ntop(_AF_INET, answers[0].packed)}"'
    else:
        listed = ", ".join(
            [
                f'"{_ntop(_AF_INET, a.packed)}"' if type(a) is IPv4Address else s(answer_text(a))
                for a in answers
            ]
        )
    cnames = ", ".join([s(c) for c in result.cnames]) if result.cnames else ""
    # `_name_`/`_value_`: the members' own attributes (`.name` is a slower property).
    return (
        f'{{"query": {query}, "name": {name}, '
        f'"type": "{result.type._name_}", "status": "{result.status._value_}", '
        f'"answers": [{listed}], "ttl": {ttl}, "cnames": [{cnames}], '
        f'"source": "{result.source._value_}", "server": {server}, "error": {error}, '
        f'"line": {result.line}, "elapsed_ms": {result.elapsed * 1000:.3f}}}\n'
    )


#: The `server` field's JSON, per nameserver (a run has few): escaped once, not per row.
_SERVERS: dict[str | None, str] = {None: "null"}


def _server_json(server: str | None) -> str:
    text = _STR(server) if server is not None else "null"
    if len(_SERVERS) < 256:
        _SERVERS[server] = text
    return text


def _cell(value: Any) -> Any:
    """A CSV cell other than a key's: a list as a JSON array (`["a", "b"]`, `[]`), as in
    SQLite; text that a spreadsheet would take for a formula gets a leading apostrophe."""
    if isinstance(value, float):  # elapsed_ms: three decimals, as in JSONL
        return f"{value:.3f}"
    if isinstance(value, list):
        return _JSON(value) if value else "[]"  # "[": never a formula
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return "" if value is None else value


#: The UTF-8 byte order mark, which tells Excel a CSV file is UTF-8.
BOM = "\ufeff".encode()


class CsvWriter(_BatchWriter):
    """RFC 4180 CSV with a header row; every cell quoted where needed.

    `answers` and `cnames` are JSON arrays of strings. The key columns `query` and `name`
    are written exactly; any other cell a spreadsheet would evaluate as a formula (starting
    with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`. `bom=True` starts the output
    (with its header) with a UTF-8 byte order mark, for Excel.
    """

    def __init__(self, out: IO[bytes], *, header: bool = True, bom: bool = False) -> None:
        super().__init__(out)
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        if header:
            self._add((BOM if bom else b"") + self._encode(FIELDS))

    def _encode(self, row: Any) -> bytes:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._csv.writerow(row)
        return self._buffer.getvalue().encode("utf-8", "backslashreplace")

    def write(self, result: Result) -> None:
        """Add one row."""
        query, name, *rest = record(result).values()
        self._add(self._encode([query, name, *map(_cell, rest)]))


#: The table of an SQLite output; see `SqliteWriter`.
SQLITE_SCHEMA = sqlite_schema()
_INSERT = (  # the column names are the package's own constants, never input
    f"INSERT INTO results ({', '.join(SQLITE_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' * len(SQLITE_COLUMNS))})"
)
_SQLITE_BATCH = 1000


def _sql_text(text: str) -> str:
    """`text` as SQLite can store it: lone surrogates (from surrogateescape'd input) become
    `\\udXXX`, as in the JSONL and CSV outputs."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class SqliteWriter:
    """Rows in the table `results` of an SQLite database (stdlib `sqlite3`).

    The columns are the record's (`FIELDS`, see `record`) with SQL types: `query`, `name`,
    `type`, `status`, `source`, `error` TEXT; `answers` and `cnames` TEXT holding a JSON
    array of strings (`'["192.0.2.1", "192.0.2.2"]'`; the answers' text form as in JSONL);
    `ttl` and `line` INTEGER; `elapsed_ms` REAL; NULL where the record has null. Text is
    stored exactly, without the CSV output's formula guard.

    One more column, `addresses` BLOB, holds the A/AAAA answers packed: for each answer
    that is an IP address, in answer order, its `inet_pton` bytes (`ip_address(a).packed`:
    4 bytes for IPv4, 16 for IPv6), concatenated; NULL when the row has no address. The
    engines answer an A query with IPv4 addresses only and an AAAA query with IPv6 only,
    so the row's `type` gives the width: split an A row's blob every 4 bytes, an AAAA
    row's every 16 (`len(addresses) // 4` or `// 16` addresses).

    Indexes: `results_name` on `name`; `results_line_type`, UNIQUE on (`line`, `type`)
    for numbered rows (`line > 0`): a resumed run that wrote a row twice fails with an
    error instead of doubling it (rows not from a numbered source, line 0, may repeat).

    Rows are kept until `batch` of them are pending (or `flush()`), then inserted with
    `executemany` in one transaction. The database is in WAL mode with
    `synchronous=NORMAL`: every committed batch survives the process being killed (not
    necessarily a power loss), and a kill never leaves a damaged file: the next connection
    rolls back an unfinished transaction. A failed insert raises `OSError` (like a failed
    write of the other writers), with SQLite's message.

    An existing database is never replaced: the table `results` is created in it (its
    other tables, views and indexes are left alone), or an empty `results` table of ours
    is used. Refused with `ResolverError`, before anything in the file changes: a file
    that is not an SQLite database, a `results` that is not ours (another shape, a view,
    or a column of its own that a row cannot leave out), and, unless `append=True` (a
    resumed run adds to the rows already there), a `results` table that holds rows.
    """

    def __init__(self, path: str, *, append: bool = False, batch: int = _SQLITE_BATCH) -> None:
        self.path = path
        self._batch = max(1, batch)
        self._rows: list[tuple[Any, ...]] = []
        try:
            self._db = sqlite3.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            raise OutputError(f"cannot write {path}: {exc}") from exc
        try:
            _check_results_table(self._db, path, append=append)  # before changing anything
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(f"BEGIN;\n{SQLITE_SCHEMA}COMMIT;")
        except sqlite3.Error as exc:
            self._db.close()
            raise OutputError(f"cannot write {path}: {exc}") from exc
        except BaseException:
            self._db.close()
            raise

    def write_many(self, results: Iterable[Result]) -> None:
        """Add one row per result, in order."""
        for result in results:
            self.write(result)

    def write(self, result: Result) -> None:
        """Add one row (it reaches the database at the next batch or `flush`)."""
        answers = [str(a) for a in result.answers]
        packed = b"".join(
            [a.packed for a in result.answers if isinstance(a, IPv4Address | IPv6Address)]
        )
        self._rows.append(
            (
                _sql_text(result.query),
                _sql_text(result.name),
                result.type.name,
                result.status.value,
                _sql_text(_JSON(answers)) if answers else "[]",
                result.ttl,
                _sql_text(_JSON(list(result.cnames))) if result.cnames else "[]",
                result.source.value,
                result.server,
                None if result.error is None else _sql_text(result.error),
                result.line,
                round(result.elapsed * 1000, 3),
                packed or None,
            )
        )
        if len(self._rows) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Insert every pending row, in one transaction."""
        if not self._rows:
            return
        rows, self._rows = self._rows, []
        db = self._db
        try:
            db.execute("BEGIN")
            try:
                db.executemany(_INSERT, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutputError(f"cannot write {self.path}: {exc}") from exc

    def close(self) -> None:
        """Insert what is pending and close the database."""
        try:
            self.flush()
        finally:
            self._db.close()


def _check_results_table(db: sqlite3.Connection, path: str, *, append: bool) -> None:
    """Raise `ResolverError` unless rows of ours can go into `db`'s `results` (or the table
    can be created): see `SqliteWriter`. Reads only."""
    kinds = [
        kind for (kind,) in db.execute("SELECT type FROM sqlite_master WHERE name = 'results'")
    ]
    if not kinds:
        return
    if kinds != ["table"]:
        raise OutputError(
            f"cannot write {path}: its results is a {kinds[0]}, not resolver output; "
            "choose another file"
        )
    # (cid, name, type, notnull, default, pk) for each column
    columns = {row[1]: row for row in db.execute("PRAGMA table_info(results)")}
    missing = [c for c in SQLITE_COLUMNS if c not in columns]
    required = [
        name
        for name, (_, _, _, notnull, default, pk) in columns.items()
        if name not in SQLITE_COLUMNS and notnull and default is None and not pk
    ]
    if missing or required:
        why = (
            f"it has no {', '.join(missing)}"
            if missing
            else (f"its column {', '.join(required)} is NOT NULL without a default")
        )
        raise OutputError(
            f"cannot write {path}: its table results is not resolver output ({why}; "
            f"columns: {', '.join(columns)}); choose another file"
        )
    if not append:
        (rows,) = db.execute("SELECT count(*) FROM results").fetchone()
        if rows:
            raise OutputError(
                f"{path} already holds {rows:,} rows in its table results: {{option}} continues "
                "that run; to start afresh, choose another file (or DROP TABLE results)",
                "append",
            )


def format_for(path: str | None, format: str | None) -> str:
    """The output format: `format` if given, else from the file extension, else JSONL."""
    if format is not None:
        if format not in FORMATS:
            raise ConfigError(f"unknown format {format!r} (choose: {', '.join(FORMATS)})")
        return format
    if path and path != "-":
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext in EXTENSIONS:
            return EXTENSIONS[ext]
        raise OutputError(
            f"cannot tell the format of {path!r} from its extension: "
            "use .jsonl, .csv or .db (SQLite), or {option}",
            "format",
        )
    return "jsonl"


@overload
def open_writer(
    path: str | None,
    format: Literal["jsonl", "csv"],
    *,
    header: bool = True,
    append: bool = False,
    bom: bool = False,
    stdout: BinaryIO | None = None,
) -> JsonlWriter | CsvWriter: ...


@overload
def open_writer(
    path: str | None,
    format: str | None = None,
    *,
    header: bool = True,
    append: bool = False,
    bom: bool = False,
    stdout: BinaryIO | None = None,
) -> JsonlWriter | CsvWriter | SqliteWriter: ...


def open_writer(
    path: str | None,
    format: str | None = None,
    *,
    header: bool = True,
    append: bool = False,
    bom: bool = False,
    stdout: BinaryIO | None = None,
) -> JsonlWriter | CsvWriter | SqliteWriter:
    """A writer for `path` (None or `-`: stdout), in `format` or the one its name implies;
    `header=False` leaves out the CSV header row, `bom=True` starts a CSV header with a
    UTF-8 byte order mark (any other format refuses it).

    `append=True` adds to an existing file instead of replacing it (creating it if there
    is none): a CSV header is written only into an empty file, and a JSONL/CSV file whose
    last row is torn is refused (`resolver.resume.done_keys` repairs it). SQLite needs a
    file: stdout cannot take a database. `stdout` stands in for `sys.stdout.buffer`."""
    kind = format_for(path, format)
    if bom and kind != "csv":
        raise ConfigError(f"a byte order mark is for CSV output, not {kind}")
    if path is None or path == "-":
        if kind == "sqlite":
            raise OutputError(
                "SQLite output needs {option}: it cannot go to standard output", "path"
            )
        out: IO[bytes] = stdout or sys.stdout.buffer
    elif kind == "sqlite":
        return SqliteWriter(path, append=append)
    else:
        if append:
            _check_whole_rows(path)
        try:
            mode = "ab" if append else "wb"
            out = open(path, mode, buffering=0)  # noqa: SIM115 - closed by the writer
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        if append and header and kind == "csv":
            header = os.fstat(out.fileno()).st_size == 0
    return CsvWriter(out, header=header, bom=bom) if kind == "csv" else JsonlWriter(out)


def _check_whole_rows(path: str) -> None:
    """Refuse to append to a file whose last row has no line end: the next row would be
    glued to it."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(size - 1)
            last = f.read(1)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    if last != b"\n":
        raise OutputError(
            f"cannot append to {path}: its last row is torn (no line end); "
            "resolver.resume.done_keys repairs it"
        )
