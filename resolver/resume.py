"""Resuming a run: which (line, type) rows an output already holds, after repairing it, and
whether the input is the one they came from.

A run killed in the middle of a write (SIGKILL, power cut of the process) leaves a JSONL or
CSV output whose last row may be torn: `done_keys` cuts the file back to the end of its last
complete row and returns the keys of the rows that stay, so a resumed run can append
exactly the rows that are missing. An SQLite output needs no repair: a transaction that was
not committed is rolled back by SQLite itself.

What is cut away, and nothing else: the bytes after the last line end (a row without its
newline is torn even if the text before the cut happens to be whole), and the last complete
row when it is not a row at all (not JSON; a CSV row that does not parse, has the wrong
number of columns or a line number that is not one). Anything else that is not ours
raises `ResolverError` and changes nothing: a damaged row before the last one, JSON objects
without our fields, a CSV with another header, an SQLite file without our table.

Rows hold their input line (`query`, exactly as read) and its number: `check_input` refuses
a resumed run whose input has another line where the output has rows, so one output never
mixes two inputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from collections.abc import Set as AbstractSet
from typing import IO, BinaryIO

from resolver.model import FIELDS, SQLITE_COLUMNS, RecordType, ResolverError
from resolver.sources import close_inputs, lines_of, query_batches
from resolver.writers import BOM, format_for

__all__ = ["DoneSet", "QueryMismatch", "check_input", "done_keys", "fingerprint"]

#: One (line, type) key per row.
Key = tuple[int, str]
_TYPE_BITS = {t.name: 1 << i for i, t in enumerate(RecordType)}
_MAX_LINE = 1 << 32


class QueryMismatch(ResolverError, ValueError):
    """Two rows of one line hold different queries: they come from two inputs."""

    def __init__(self, line: int, query: str) -> None:
        super().__init__(f"line {line} has rows of two different queries")
        self.line, self.query = line, query


def fingerprint(query: str) -> int:
    """A row's `query` as a 32-bit CRC of the UTF-8 the writers write it in (a lone
    surrogate as `\\udXXX`): what `DoneSet` keeps of it."""
    return zlib.crc32(query.encode("utf-8", "backslashreplace"))


class DoneSet(AbstractSet[Key]):
    """A set of (line, type) keys kept as one bit per type for each line, with the CRC of
    each line's query: 6 bytes a line instead of a tuple in a hash set (~165 bytes a row),
    for outputs of tens of millions, and enough to tell a resumed run's input from another
    (see `check_input`). Built from (line, type name, query) rows."""

    def __init__(self, rows: Iterable[tuple[int, str, str]] = ()) -> None:
        self._bits = array("H")
        self._crcs = array("I")
        self._count = 0
        self._last = 0
        for line, name, query in rows:
            self.add((line, name), query)

    def add(self, key: Key, query: str) -> None:
        """Record one (line, type) pair and the line's query; raises `QueryMismatch` when
        the line is there with another query (line 0, no line of an input, is not kept)."""
        line, name = key
        bit = _TYPE_BITS.get(name)
        if bit is None or not 0 <= line < _MAX_LINE:
            raise ValueError(f"not a row key of ours: {key!r}")
        bits = self._bits
        if line >= len(bits):
            grow = max(line + 1 - len(bits), len(bits))  # doubling
            bits.frombytes(bytes(bits.itemsize * grow))
            self._crcs.frombytes(bytes(self._crcs.itemsize * grow))
        crc = fingerprint(query) if line else 0
        if not bits[line]:
            self._crcs[line] = crc
        elif self._crcs[line] != crc:
            raise QueryMismatch(line, query)
        if not bits[line] & bit:
            bits[line] |= bit
            self._count += 1
            self._last = max(self._last, line)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, tuple) or len(key) != 2:
            return False
        line, name = key
        bit = _TYPE_BITS.get(name, 0) if isinstance(name, str) else 0
        return (
            isinstance(line, int) and 0 <= line < len(self._bits) and bool(self._bits[line] & bit)
        )

    def __iter__(self) -> Iterator[Key]:
        names = list(_TYPE_BITS.items())
        for line, bits in enumerate(self._bits):
            if bits:
                yield from ((line, name) for name, bit in names if bits & bit)

    def __len__(self) -> int:
        return self._count

    def last_line(self) -> int:
        """The highest line number with rows (0: none)."""
        return self._last

    def first_line(self, start: int, stop: int) -> int | None:
        """The first line from `start` up to (without) `stop` that has rows, if any."""
        start, stop = max(start, 1), min(stop, len(self._bits))
        raw = self._bits[start:stop].tobytes() if start < stop else b""
        rest = len(raw.lstrip(b"\0"))  # the bytes from the first line with rows on
        return start + (len(raw) - rest) // self._bits.itemsize if rest else None


_CHUNK = 1 << 22
#: How our JSONL writer starts every row.
_JSONL_START = b'{"query": "'
#: The CSV header row, as our writer writes it.
_CSV_HEADER = (",".join(FIELDS) + "\r\n").encode()
_QUERY_COLUMN = FIELDS.index("query")
_LINE_COLUMN = FIELDS.index("line")
_TYPE_COLUMN = FIELDS.index("type")

# A whole JSONL row exactly as our writer writes it, in the grammar of JSON: a line this
# matches is valid JSON with these keys in this order, and its groups are the JSON string of
# "query" and what `json.loads` would give for "type" and "line". Rows it does not match are
# parsed by `json.loads`.
_STR = r'"[^"\\\x00-\x1f]*+(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*+)*+"'
_INT = r"-?(?:0|[1-9][0-9]*)"
_NUM = _INT + r"(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?"
_LIST = rf"\[(?:{_STR}(?:, {_STR})*+)?\]"
_JSONL_ROW = re.compile(
    rf'^\{{"query": ({_STR}), "name": {_STR}, "type": "([A-Za-z0-9]+)", "status": {_STR}, '
    rf'"answers": {_LIST}, "ttl": (?:null|{_INT}), "cnames": {_LIST}, "source": {_STR}, '
    rf'"server": (?:null|{_STR}), "error": (?:null|{_STR}), "line": ({_INT}), '
    rf'"elapsed_ms": {_NUM}\}}\n',
    re.MULTILINE,
)


def done_keys(path: str, format: str | None = None) -> DoneSet:
    """The (line, type) pairs of the rows already in the output `path`, in `format`
    (`jsonl`, `csv` or `sqlite`; None: from the file's extension).

    A torn JSONL or CSV tail is cut away first (the file is truncated in place to the end of
    its last complete row), so the file ends with whole rows and the keys returned are
    exactly those of the rows it holds. No file (or an empty one, or a CSV with only its
    header) means nothing done: an empty set. A file that is not resolver output, or is
    damaged before its last row, raises `ResolverError` and is left as it was.
    """
    kind = format_for(path, format)
    try:
        if kind == "sqlite":
            return _sqlite_keys(path)
        with open(path, "rb") as f:
            keys, end = (_csv_keys if kind == "csv" else _jsonl_keys)(f, path)
            size = f.seek(0, os.SEEK_END)
        if end < size:
            with open(path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
    except FileNotFoundError:
        return DoneSet()
    except QueryMismatch as exc:
        raise ResolverError(
            f"cannot resume {path}: its rows for line {exc.line} are of two different queries "
            f"(one is {_show(exc.query)}), from runs on two inputs; resume into another file"
        ) from exc
    except ValueError as exc:  # a row whose line or type no output of ours has
        raise _foreign(path, str(exc)) from exc
    except OSError as exc:
        raise ResolverError(f"cannot resume {path}: {exc.strerror or exc}") from exc
    return keys


async def check_input(
    done: DoneSet,
    output: str,
    inputs: Sequence[BinaryIO],
    names: Sequence[str],
    format: str | None = None,
) -> list[BinaryIO]:
    """Check that a resumed run reads the input whose rows `done` holds (`done_keys` of
    `output`): each line with rows must be, as read now, the `query` of its rows (the line
    exactly, without its newline and a trailing CR; the query of an INVALID row too). Raises
    `ResolverError` naming the first line that is not: another text, blank or a comment, or
    past the end of the input. Lines after the last with rows are not read.

    `inputs` are the run's open inputs, named `names` (`-`: stdin). Returns what the run is
    to read, each rewound to its start: an input that cannot seek (a pipe) is copied to an
    anonymous temporary file first, which is read instead (and closed, and gone, with it).
    """
    if not done:
        return list(inputs)
    runs: list[BinaryIO] = []
    copies: list[BinaryIO] = []
    try:
        for f in inputs:
            if not f.seekable():
                copy = tempfile.TemporaryFile()  # noqa: SIM115 - closed as an input is
                copies.append(copy)
                await asyncio.to_thread(shutil.copyfileobj, f, copy, 1 << 20)
                f = copy
            f.seek(0)
            runs.append(f)
        found = await _first_disagreement(done, runs)
        if found is not None:
            raise _disagreement(output, format_for(output, format), *found, runs, names)
        for f in runs:
            f.seek(0)
    except BaseException:
        close_inputs(copies)
        raise
    close_inputs([f for f in inputs if f not in runs])  # read through their copies
    return runs


async def _first_disagreement(
    done: DoneSet, files: Sequence[BinaryIO]
) -> tuple[int, str | None] | None:
    """The first line with rows in `done` that `files` disagree with, and its text there
    (None: blank, a comment or past the end); None when every such line agrees."""
    last = done.last_line()
    bits, crcs = done._bits, done._crcs  # the loop below is per line: no calls it can spare
    seen = 0  # the last line looked at
    batches = query_batches(lines_of(files, close=False), (RecordType.A,))
    async with contextlib.aclosing(batches) as items:
        async for batch in items:
            for item in batch:
                line = item.line
                if line == seen:
                    continue  # the same line, asked another type
                if line != seen + 1 and (gap := done.first_line(seen + 1, line)) is not None:
                    return gap, None  # a line with rows is blank or a comment now
                if line > last:
                    return None
                if bits[line] and crcs[line] != fingerprint(item.text):
                    return line, item.text
                seen = line
    gap = done.first_line(seen + 1, last + 1)
    return None if gap is None else (gap, None)


def _disagreement(
    output: str,
    kind: str,
    line: int,
    text: str | None,
    files: Sequence[BinaryIO],
    names: Sequence[str],
) -> ResolverError:
    row = _row_query(output, kind, line)
    rows = f"are of {_show(row)}" if row is not None else "are of another query"
    where, total = _where(files, names, line)
    if where is None:
        now = f"the input ends at line {total:,}"
    elif text is None:
        now = f"line {line} of the input ({where}) is blank or a comment"
    else:
        now = f"line {line} of the input ({where}) is {_show(text)}"
    return ResolverError(
        f"cannot resume {output}: its rows for line {line} {rows}, but {now}: not the "
        "input of that run; resume with that input (the same lines in the same order, "
        "more may follow) or write to another file"
    )


def _where(files: Sequence[BinaryIO], names: Sequence[str], line: int) -> tuple[str | None, int]:
    """`file:line` of the input's `line` (numbered across `files`), None past the end; and
    how many lines the input has (as far as it was counted)."""
    before = 0
    for f, name in zip(files, names, strict=True):
        f.seek(0)
        count, last = 0, b"\n"
        while chunk := f.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
        count += last != b"\n"  # a last line without its newline
        if line <= before + count:
            return f"{'stdin' if name == '-' else name}:{line - before}", before + count
        before += count
    return None, before


def _row_query(path: str, kind: str, line: int) -> str | None:
    """The query of a row for `line` in the output `path` (for a message: None if unsure)."""
    try:
        if kind == "sqlite":
            with contextlib.closing(sqlite3.connect(path)) as db:
                found = db.execute(
                    "SELECT query FROM results WHERE line = ? LIMIT 1", (line,)
                ).fetchone()
                return None if found is None else str(found[0])
        with open(path, encoding="utf-8-sig", newline="", errors="replace") as f:
            if kind == "csv":
                csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))
                for row in csv.reader(f):
                    if len(row) == len(FIELDS) and row[_LINE_COLUMN] == str(line):
                        return row[_QUERY_COLUMN]
                return None
            number = str(line)
            for text in f:
                if number in text:
                    with contextlib.suppress(ValueError):
                        row = json.loads(text)
                        if isinstance(row, dict) and row.get("line") == line:
                            return str(row.get("query"))
    except (OSError, sqlite3.Error, csv.Error):
        pass
    return None


def _show(text: str) -> str:
    """`text` quoted for a message, cut to about 60 characters."""
    return repr(text if len(text) <= 60 else text[:59] + "…")


def _foreign(path: str, why: str) -> ResolverError:
    return ResolverError(f"{path} does not look like resolver output: {why}")


class _Damage:
    """The one damaged row a file may have: its last complete row (the rest of a write that
    went wrong). Any other damage raises: a whole row after it, or a second damaged row."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset: int | None = None
        self.number = 0
        self.why = ""

    def found(self, offset: int, number: int, why: str, rows: int) -> None:
        """Row `number` at `offset` is damaged; `rows` good rows came before it."""
        if self.offset is not None:
            self.raise_(rows)
        self.offset, self.number, self.why = offset, number, why

    def good_row(self, rows: int) -> None:
        """A good row follows (the `rows`-th)."""
        if self.offset is not None:
            self.raise_(rows)

    def raise_(self, rows: int) -> None:
        if not rows:  # nothing of ours yet: not ours at all
            raise _foreign(self.path, f"row {self.number} {self.why}")
        raise ResolverError(
            f"{self.path} is damaged before its last row: row {self.number} "
            f"(byte {self.offset}) {self.why}; repair or remove it by hand"
        )


def _jsonl_keys(f: IO[bytes], path: str) -> tuple[DoneSet, int]:
    """Keys of the whole rows of a JSONL file, and the offset where they end."""
    keys = DoneSet()
    end = 0  # the end of the last good row
    offset = 0  # the file offset of `block`
    number = 0  # complete lines before `block`
    good = 0  # good rows so far
    damage = _Damage(path)
    pending = head = b""
    intern = sys.intern
    while chunk := f.read(_CHUNK):
        head = head or chunk[: len(_JSONL_START)]
        data = pending + chunk if pending else chunk
        cut = data.rfind(b"\n") + 1
        if not cut:
            pending = data
            continue
        block, pending = data[:cut], data[cut:]
        matched: list[tuple[str, str, str]] = []
        with contextlib.suppress(UnicodeDecodeError):
            matched = _JSONL_ROW.findall(block.decode("utf-8"))
        lines = block.count(b"\n")
        if len(matched) == lines:  # every line is one whole row: the usual case
            damage.good_row(good)
            add = keys.add
            for query, rtype, line_no in matched:
                add((int(line_no), intern(rtype)), _json_text(query))
            good += lines
            end = offset + cut
        else:
            start = offset
            for n, line in enumerate(block[:-1].split(b"\n"), number + 1):
                row = _jsonl_row(line, path, n)
                if isinstance(row, str):
                    damage.found(start, n, row, good)
                else:
                    damage.good_row(good)
                    keys.add(*row)
                    good += 1
                    end = start + len(line) + 1
                start += len(line) + 1
        number += lines
        offset += cut
    if not good and head and not _JSONL_START.startswith(head[: len(_JSONL_START)]):
        # Only a file cut inside its first row is cut back to nothing: it starts as ours do.
        raise _foreign(path, "it does not start with a JSON row of ours")
    return keys, end


def _json_text(literal: str) -> str:
    """The text of a JSON string literal (most have no escape to decode)."""
    return literal[1:-1] if "\\" not in literal else str(json.loads(literal))


def _jsonl_row(line: bytes, path: str, number: int) -> tuple[Key, str] | str:
    """The key and query of one complete line (without its newline); why it is no row (a
    str) when it is not a JSON object; raises when it is one, but not one of our rows."""
    try:
        text = line.decode("utf-8") + "\n"
    except UnicodeDecodeError:
        return "is not UTF-8"
    m = _JSONL_ROW.fullmatch(text)
    if m is not None:
        return (int(m[3]), sys.intern(m[2])), _json_text(m[1])
    try:
        row = json.loads(text)
    except ValueError:
        return "is not JSON"
    if not isinstance(row, dict):
        return "is not a JSON object"
    line_no, rtype, query = row.get("line"), row.get("type"), row.get("query")
    if type(line_no) is not int or not isinstance(rtype, str) or not isinstance(query, str):
        raise _foreign(path, f'row {number} has no "line" number, "type" and "query"')
    return (line_no, sys.intern(rtype)), query


class _Lines:
    """The complete lines of a binary file as text, for `csv.reader`, counting the bytes
    handed out (so a row's end is known) and whether the reader asked past the last one."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.consumed = 0
        self.exhausted = False
        self.bad_utf8 = False  # a line handed out was not UTF-8 (the reader resets it)

    def __iter__(self) -> Iterator[str]:
        for line in self._f:
            if not line.endswith(b"\n"):
                break  # a torn tail: never parsed
            if not self.consumed and line.startswith(BOM):  # written by --csv-bom
                self.consumed, line = len(BOM), line[len(BOM) :]
            self.consumed += len(line)
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError:
                self.bad_utf8 = True
                yield line.decode("utf-8", "replace")
        self.exhausted = True


def _csv_keys(f: IO[bytes], path: str) -> tuple[DoneSet, int]:
    """Keys of the whole rows of a CSV file with our header, and the offset where they end."""
    keys = DoneSet()
    lines = _Lines(f)
    reader = csv.reader(lines, strict=True)
    columns = len(FIELDS)
    intern = sys.intern
    end = 0
    number = 0  # rows, the header included
    good = 0
    damage = _Damage(path)
    not_header = _foreign(path, "its first row is not the header " + ",".join(FIELDS))
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, 1 << 30))  # TXT answers can be long; restored below
    try:
        while True:
            start = lines.consumed
            lines.bad_utf8 = False
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if lines.exhausted:
                    break  # the end of the file inside a quoted cell: torn
                row, why = [], f"does not parse as CSV ({exc})"
            else:
                if lines.exhausted:
                    break  # ended by the end of the file, not by a line end: torn
                why = ""
                if lines.bad_utf8:
                    why = "is not UTF-8"
                elif len(row) != columns:
                    why = f"has {len(row)} columns, not {columns}"
                elif number and not (row[_LINE_COLUMN].isascii() and row[_LINE_COLUMN].isdigit()):
                    why = f"has no line number ({row[_LINE_COLUMN][:20]!r})"
            number += 1
            if number == 1:  # the header
                if why or tuple(row) != FIELDS:
                    raise not_header
                end = lines.consumed
            elif why:
                damage.found(start, number, why, good)
            else:
                damage.good_row(good)
                keys.add((int(row[_LINE_COLUMN]), intern(row[_TYPE_COLUMN])), row[_QUERY_COLUMN])
                good += 1
                end = lines.consumed
    finally:
        csv.field_size_limit(limit)
    if number == 0:
        # No whole header: only a file cut inside it is ours.
        f.seek(0)
        head = f.read(len(BOM) + len(_CSV_HEADER) + 1)
        if not (_CSV_HEADER.startswith(head) or (BOM + _CSV_HEADER).startswith(head)):
            raise not_header
    return keys, end


def _sqlite_keys(path: str) -> DoneSet:
    """Keys of the rows of an SQLite output (its table `results`)."""
    if os.path.getsize(path) == 0:  # raises FileNotFoundError when there is no file
        return DoneSet()
    try:
        with contextlib.closing(sqlite3.connect(path)) as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
            if not columns:
                raise _foreign(path, "it has no table results")
            if missing := [c for c in SQLITE_COLUMNS if c not in columns]:
                raise _foreign(path, f"its table results has no {', '.join(missing)}")
            return DoneSet(db.execute("SELECT line, type, query FROM results"))
    except sqlite3.DatabaseError as exc:
        raise _foreign(path, f"not an SQLite database of ours ({exc})") from exc
