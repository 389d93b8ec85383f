"""The output record: one table of columns, from which every format is derived.

A `Result` becomes one record (`record()`: plain JSON types, answers as text). The JSONL
row, the CSV header and cells, the SQLite table (`sqlite_schema()`, `SQLITE_COLUMNS`) and
the readers of `--resume` all take their columns from `COLUMNS`; the writers' fast JSONL
row is held equal to `json.dumps(record(result))` by a property test. Addresses become
text here (and packed bytes in the SQLite writer) and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from socket import AF_INET as _AF_INET
from socket import inet_ntop as _ntop
from typing import Any

from resolver.model import Answer, Result

__all__ = [
    "COLUMNS",
    "FIELDS",
    "SQLITE_COLUMNS",
    "Column",
    "answer_text",
    "record",
    "sqlite_schema",
]


def answer_text(answer: Answer) -> str:
    """An answer in presentation form (IPv4 through inet_ntop: twice as fast as str())."""
    if type(answer) is IPv4Address:
        return _ntop(_AF_INET, answer.packed)
    return str(answer)


@dataclass(frozen=True, slots=True)
class Column:
    """One field of the record: its name, its SQLite type, and its value for a result."""

    name: str
    sql: str
    value: Callable[[Result], Any]


#: The record's fields, in order.
COLUMNS: tuple[Column, ...] = (
    Column("query", "TEXT NOT NULL", lambda r: r.query),
    Column("name", "TEXT NOT NULL", lambda r: r.name),
    Column("type", "TEXT NOT NULL", lambda r: r.type.name),
    Column("status", "TEXT NOT NULL", lambda r: r.status.value),
    Column("answers", "TEXT NOT NULL", lambda r: [answer_text(a) for a in r.answers]),
    Column("ttl", "INTEGER", lambda r: r.ttl),
    Column("cnames", "TEXT NOT NULL", lambda r: list(r.cnames)),
    Column("source", "TEXT NOT NULL", lambda r: r.source.value),
    Column("server", "TEXT", lambda r: r.server),
    Column("error", "TEXT", lambda r: r.error),
    Column("line", "INTEGER NOT NULL", lambda r: r.line),
    Column("elapsed_ms", "REAL NOT NULL", lambda r: round(r.elapsed * 1000, 3)),
)
FIELDS = tuple(column.name for column in COLUMNS)
#: The columns of the SQLite table `results`: the record's, then the packed `addresses`.
SQLITE_COLUMNS = (*FIELDS, "addresses")


def record(result: Result) -> dict[str, Any]:
    """The output record of `result`: plain JSON types, answers as text."""
    return {column.name: column.value(result) for column in COLUMNS}


def sqlite_schema() -> str:
    """The SQL that makes the table `results` and its indexes (see `SqliteWriter`)."""
    columns = ",\n".join(f"    {c.name} {c.sql}" for c in COLUMNS)
    return (
        f"CREATE TABLE IF NOT EXISTS results (\n{columns},\n    addresses BLOB\n);\n"
        "CREATE INDEX IF NOT EXISTS results_name ON results (name);\n"
        "CREATE UNIQUE INDEX IF NOT EXISTS results_line_type ON results (line, type)"
        " WHERE line > 0;\n"
    )
