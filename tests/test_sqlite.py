"""The SQLite writer: every column round-trips, batches are transactions, a killed run keeps
what was committed; `open_writer`'s format choice and append mode."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import (
    CAA,
    MX,
    SOA,
    SRV,
    InvalidInput,
    RecordType,
    ResolverError,
    Result,
    Source,
    Status,
)
from resolver.model import FIELDS, SQLITE_COLUMNS, record
from resolver.writers import (
    CsvWriter,
    JsonlWriter,
    SqliteWriter,
    format_for,
    open_writer,
)

HOSTILE = [
    '=HYPERLINK("http://x")',
    'comma, "quote"',
    "new\nline",
    "cr\r\nlf",
    "tab\there",
    "bell\x07 nul\x00",
    "unicode ü ☃ 𝄞",
    "back\\slash",
]


def sample() -> list[Result]:
    """Results of every shape: addresses of both families, structured answers, hostile
    text, INVALID and failure rows, two types on one line."""
    return [
        Result(
            query="www.example.test",
            name="www.example.test",
            type=RecordType.A,
            status=Status.NOERROR,
            answers=(ip_address("192.0.2.1"), ip_address("198.51.100.255")),
            ttl=60,
            cnames=("alias.example.test", "cdn.example.net"),
            line=1,
            elapsed=0.0012345,
        ),
        Result(
            query="www.example.test",
            name="www.example.test",
            type=RecordType.AAAA,
            status=Status.NOERROR,
            answers=(ip_address("2001:db8::1"), ip_address("::ffff:192.0.2.1")),
            ttl=0,
            line=1,
            elapsed=2.5,
        ),
        Result(
            query="mx.example.test",
            name="mx.example.test",
            type=RecordType.MX,
            status=Status.NOERROR,
            answers=(MX(10, "mail.example.test"), MX(20, "backup.example.test")),
            ttl=300,
            line=2,
        ),
        Result(
            query="txt.example.test",
            name="txt.example.test",
            type=RecordType.TXT,
            status=Status.NOERROR,
            answers=tuple(HOSTILE),
            ttl=2**31 - 1,
            line=3,
        ),
        Result(
            query="example.test",
            name="example.test",
            type=RecordType.SOA,
            status=Status.NOERROR,
            answers=(SOA("ns.example.test", "admin.example.test", 1, 2, 3, 4, 5),),
            line=4,
        ),
        Result(
            query="_sip._tcp.example.test",
            name="_sip._tcp.example.test",
            type=RecordType.SRV,
            status=Status.NOERROR,
            answers=(SRV(1, 2, 5060, "sip.example.test"),),
            line=5,
        ),
        Result(
            query="example.test",
            name="example.test",
            type=RecordType.CAA,
            status=Status.NOERROR,
            answers=(CAA(0, "issue", 'ca.example; x="y"'),),
            line=6,
        ),
        Result(
            query="192.0.2.1",
            name="1.2.0.192.in-addr.arpa",
            type=RecordType.PTR,
            status=Status.NOERROR,
            answers=("www.example.test",),
            source=Source.SYSTEM,
            line=7,
        ),
        Result.for_invalid(InvalidInput('=bad name,"x"', RecordType.A, "invalid character", 8)),
        Result(
            query="gone.test",
            name="gone.test",
            type=RecordType.AAAA,
            status=Status.TIMEOUT,
            error="no answer after 3 tries",
            line=9,
            elapsed=6.0,
        ),
        Result(
            query="nx.test",
            name="nx.test",
            type=RecordType.A,
            status=Status.NXDOMAIN,
            ttl=900,
            line=10,
        ),
    ]


def rows(path: Path | str, order: str = "rowid") -> list[dict[str, Any]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT * FROM results ORDER BY {order}")]


def count(path: Path | str) -> int:
    with contextlib.closing(sqlite3.connect(path)) as db:
        (n,) = db.execute("SELECT count(*) FROM results").fetchone()
        return int(n)


def write_all(path: Path | str, results: Sequence[Result], **options: Any) -> None:
    writer = SqliteWriter(str(path), **options)
    for result in results:
        writer.write(result)
    writer.close()


def expected_row(result: Result) -> dict[str, Any]:
    """The row the writer must store for `result`: the record, lists as JSON text, and
    the packed addresses."""
    row = record(result)
    row["answers"] = json.dumps(row["answers"], ensure_ascii=False)
    row["cnames"] = json.dumps(row["cnames"], ensure_ascii=False)
    packed = b"".join(
        ip_address(str(a)).packed
        for a in result.answers
        if isinstance(a, IPv4Address | IPv6Address)
    )
    row["addresses"] = packed or None
    return row


def test_every_column_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    results = sample()
    write_all(path, results)
    stored = rows(path)
    assert [tuple(row) for row in stored] == [SQLITE_COLUMNS] * len(results)
    for row, result in zip(stored, results, strict=True):
        assert row == expected_row(result)
        # what a reader of the database gets back
        assert json.loads(row["answers"]) == [str(a) for a in result.answers]
        assert json.loads(row["cnames"]) == list(result.cnames)
    assert stored[0]["addresses"] == (
        ip_address("192.0.2.1").packed + ip_address("198.51.100.255").packed
    )
    assert len(stored[0]["addresses"]) == 8
    assert stored[1]["addresses"] == (
        ip_address("2001:db8::1").packed + ip_address("::ffff:192.0.2.1").packed
    )
    assert len(stored[1]["addresses"]) == 32
    assert stored[3]["answers"] == json.dumps(HOSTILE, ensure_ascii=False)
    assert stored[8]["query"] == '=bad name,"x"'  # no CSV formula guard in a database
    assert stored[8]["name"] == ""
    assert stored[8]["source"] == "none"
    assert stored[9]["error"] == "no answer after 3 tries"
    assert stored[9]["ttl"] is None
    assert stored[10]["addresses"] is None
    assert stored[0]["elapsed_ms"] == 1.234
    assert isinstance(stored[1]["elapsed_ms"], float)


def test_addresses_unpack_by_the_rows_type(tmp_path: Path) -> None:
    """The documented layout: an A row's blob in 4-byte pieces, an AAAA row's in 16."""
    path = tmp_path / "out.db"
    write_all(path, sample())
    for row in rows(path):
        if row["addresses"] is None:
            continue
        width = {"A": 4, "AAAA": 16}[row["type"]]
        blob = row["addresses"]
        unpacked = [str(ip_address(blob[i : i + width])) for i in range(0, len(blob), width)]
        assert unpacked == json.loads(row["answers"])


def test_schema_and_indexes(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    write_all(path, sample()[:1])
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert tables == ["results"]
        types = {r[1]: r[2] for r in db.execute("PRAGMA table_info(results)")}
        assert types == {
            "query": "TEXT",
            "name": "TEXT",
            "type": "TEXT",
            "status": "TEXT",
            "answers": "TEXT",
            "ttl": "INTEGER",
            "cnames": "TEXT",
            "source": "TEXT",
            "server": "TEXT",
            "error": "TEXT",
            "line": "INTEGER",
            "elapsed_ms": "REAL",
            "addresses": "BLOB",
        }
        indexes = {r[1]: r for r in db.execute("PRAGMA index_list(results)")}
        assert set(indexes) == {"results_name", "results_line_type"}
        assert indexes["results_name"][2] == 0  # not unique
        assert indexes["results_line_type"][2] == 1  # unique
        columns = {
            name: [r[2] for r in db.execute(f"PRAGMA index_info({name})")] for name in indexes
        }
        assert columns == {"results_name": ["name"], "results_line_type": ["line", "type"]}
        plan = " ".join(
            str(r[3])
            for r in db.execute("EXPLAIN QUERY PLAN SELECT * FROM results WHERE name = 'x'")
        )
        assert "results_name" in plan
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
        assert mode == "wal"


def test_rows_are_inserted_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    results = sample()
    writer = SqliteWriter(str(path), batch=4)
    for result in results[:7]:
        writer.write(result)
    assert count(path) == 4  # one batch committed, three rows pending
    writer.flush()
    assert count(path) == 7
    writer.flush()  # nothing pending: nothing happens
    assert count(path) == 7
    for result in results[7:]:
        writer.write(result)
    writer.close()
    assert count(path) == len(results)
    writer.close()  # a second close does no harm


def test_default_batch_is_a_thousand_rows(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    writer = open_writer(str(path))
    assert isinstance(writer, SqliteWriter)
    base = sample()[0]
    for line in range(1, 1000):
        writer.write(Result(base.query, base.name, base.type, base.status, line=line))
    assert count(path) == 0
    writer.write(Result(base.query, base.name, base.type, base.status, line=1000))
    assert count(path) == 1000
    writer.close()


KILLED_RUN = """
import os, signal, sys
from resolver import RecordType, Result, Status
from resolver.writers import SqliteWriter

writer = SqliteWriter(sys.argv[1], batch=100)
for line in range(1, 251):
    writer.write(Result("x.test", "x.test", RecordType.A, Status.NXDOMAIN, line=line))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_keeps_every_committed_batch(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    proc = subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert os.path.exists(f"{path}-wal")  # not checkpointed: the rows are in the WAL
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        lines = [r[0] for r in db.execute("SELECT line FROM results ORDER BY line")]
    assert lines == list(range(1, 201))  # two whole batches, the third never committed


def test_append_adds_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "out.sqlite"
    results = sample()
    write_all(path, results[:3])
    writer = open_writer(str(path), append=True)
    assert isinstance(writer, SqliteWriter)
    for result in results[3:]:
        writer.write(result)
    writer.close()
    assert rows(path) == [expected_row(r) for r in results]
    # without append (a new run), a database that holds results is refused, untouched
    with pytest.raises(ResolverError, match=r"already holds 11 rows .* append=True"):
        open_writer(str(path))
    assert rows(path) == [expected_row(r) for r in results]


def test_a_new_writer_keeps_the_other_tables(tmp_path: Path) -> None:
    path = tmp_path / "mine.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('kept')")
        db.commit()
    write_all(path, sample()[:2])
    assert count(path) == 2
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]


def test_append_creates_a_missing_database_or_table(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    write_all(path, sample()[:2], append=True)
    assert count(path) == 2
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.execute("INSERT INTO notes VALUES ('kept')")
        db.commit()
    write_all(other, sample()[:2], append=True)
    assert count(other) == 2
    with contextlib.closing(sqlite3.connect(other)) as db:
        assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]


@pytest.mark.parametrize("append", [False, True])
def test_a_foreign_results_table_is_refused(tmp_path: Path, append: bool) -> None:
    path = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE results (score INTEGER)")
        db.commit()
    before = path.read_bytes()
    with pytest.raises(ResolverError, match="not resolver output"):
        open_writer(str(path), append=append)
    assert path.read_bytes() == before


@pytest.mark.parametrize("append", [False, True])
def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, append: bool) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just text\n" * 100)
    with pytest.raises(ResolverError, match="cannot write"):
        open_writer(str(path), append=append)
    assert path.read_text() == "not a database, just text\n" * 100


def test_a_killed_runs_database_is_no_new_output(tmp_path: Path) -> None:
    """Its committed rows (still in the WAL) count: a new run is refused, --resume goes on."""
    path = tmp_path / "out.db"
    subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], check=False)
    assert os.path.exists(f"{path}-wal")
    with pytest.raises(ResolverError, match="already holds 200 rows"):
        open_writer(str(path))
    assert count(path) == 200
    write_all(
        path, [Result("x.test", "x.test", RecordType.A, Status.NXDOMAIN, line=201)], append=True
    )
    assert count(path) == 201


def test_the_unique_index_rejects_a_duplicate_row(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    results = sample()
    write_all(path, results[:2])
    writer = SqliteWriter(str(path), append=True)
    writer.write(results[2])
    writer.write(results[1])  # (1, AAAA) again
    with pytest.raises(OSError, match=r"UNIQUE constraint failed: results\.line, results\.type"):
        writer.flush()
    writer.close()
    assert count(path) == 2  # the whole batch was rolled back
    # the same line with another type is no duplicate
    write_all(path, [Result("a", "a", RecordType.TXT, Status.NODATA, line=1)], append=True)
    assert count(path) == 3


def test_rows_without_a_line_number_may_repeat(tmp_path: Path) -> None:
    """`lookup()` results carry line 0: the unique index covers numbered rows only."""
    path = tmp_path / "out.db"
    result = Result("a.test", "a.test", RecordType.A, Status.NXDOMAIN)
    write_all(path, [result, result, result])
    assert count(path) == 3


def test_lone_surrogates_are_stored_escaped(tmp_path: Path) -> None:
    path = tmp_path / "out.db"
    bad = "caf\udce9"  # from a surrogateescape'd input line
    write_all(
        path,
        [
            Result(
                bad,
                bad,
                RecordType.TXT,
                Status.ERROR,
                answers=(bad,),
                cnames=(bad,),
                error=bad,
                line=1,
            )
        ],
    )
    (row,) = rows(path)
    assert row["query"] == row["name"] == row["error"] == "caf\\udce9"
    assert json.loads(row["answers"]) == [bad]  # as JSONL gives it back
    assert json.loads(row["cnames"]) == [bad]


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        ("out.db", None, "sqlite"),
        ("OUT.SQLITE", None, "sqlite"),
        ("out.sqlite3", None, "sqlite"),
        ("out.txt", "sqlite", "sqlite"),
        ("out.db", "jsonl", "jsonl"),
        ("out.csv", None, "csv"),
        ("out.ndjson", None, "jsonl"),
    ],
)
def test_format_choice(path: str, fmt: str | None, expected: str) -> None:
    assert format_for(path, fmt) == expected


@pytest.mark.parametrize(
    ("name", "fmt", "kind"),
    [
        ("out.db", None, SqliteWriter),
        ("out.sqlite", None, SqliteWriter),
        ("out.Sqlite3", None, SqliteWriter),
        ("out.bin", "sqlite", SqliteWriter),
        ("out.db", "csv", CsvWriter),
        ("out.jsonl", None, JsonlWriter),
    ],
)
def test_open_writer_picks_the_writer(
    tmp_path: Path, name: str, fmt: str | None, kind: type
) -> None:
    writer = open_writer(str(tmp_path / name), fmt)
    try:
        assert type(writer) is kind
    finally:
        writer.close()


@pytest.mark.parametrize("path", [None, "-"])
def test_stdout_cannot_be_sqlite(path: str | None) -> None:
    with pytest.raises(ResolverError, match="SQLite output needs a file"):
        open_writer(path, "sqlite")


def test_unknown_format_names_sqlite() -> None:
    with pytest.raises(ResolverError, match="sqlite"):
        format_for("out.x", "xml")
    with pytest.raises(ResolverError, match=r"\.db"):
        format_for("out.x", None)


def test_unwritable_database_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverError, match="cannot write"):
        open_writer(str(tmp_path / "no" / "such" / "dir.db"))


def test_jsonl_append_adds_rows(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    results = sample()
    for part in (results[:4], results[4:]):
        writer = open_writer(str(path), append=True)
        for result in part:
            writer.write(result)
        writer.close()
    lines = path.read_bytes().decode().splitlines()
    assert [json.loads(line) for line in lines] == [record(r) for r in results]
    writer = open_writer(str(path))  # without append: replaced
    writer.close()
    assert path.read_bytes() == b""


def test_csv_append_writes_the_header_only_into_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    path.write_bytes(b"")
    results = sample()
    for part in (results[:4], results[4:]):
        writer = open_writer(str(path), append=True)
        for result in part:
            writer.write(result)
        writer.close()
    parsed = list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))
    assert tuple(parsed[0]) == FIELDS
    assert len(parsed) == 1 + len(results)
    assert [int(row[FIELDS.index("line")]) for row in parsed[1:]] == [r.line for r in results]
    writer = open_writer(str(path), append=True, header=False)
    writer.close()
    assert len(list(csv.reader(io.StringIO(path.read_text(), newline="")))) == 1 + len(results)


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv"])
def test_append_refuses_a_torn_last_row(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    writer = open_writer(str(path))
    writer.write(sample()[0])
    writer.close()
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ResolverError, match="torn"):
        open_writer(str(path), append=True)


texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)


@st.composite
def any_result(draw: st.DrawFn, line: int) -> Result:
    rtype = draw(st.sampled_from(RecordType))
    answers: list[Any]
    if rtype is RecordType.A:
        answers = draw(st.lists(st.ip_addresses(v=4), max_size=4))
    elif rtype is RecordType.AAAA:
        answers = draw(st.lists(st.ip_addresses(v=6), max_size=4))
    else:
        answers = draw(st.lists(texts, max_size=3))
    return Result(
        query=draw(texts),
        name=draw(texts),
        type=rtype,
        status=draw(st.sampled_from(Status)),
        answers=tuple(answers),
        ttl=draw(st.none() | st.integers(0, 2**31)),
        cnames=tuple(draw(st.lists(texts, max_size=2))),
        source=draw(st.sampled_from(Source)),
        error=draw(st.none() | texts),
        line=line,
        elapsed=draw(st.floats(0, 1000, allow_nan=False)),
    )


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_random_results_round_trip(data: st.DataObject) -> None:
    results = [data.draw(any_result(line)) for line in range(1, data.draw(st.integers(1, 8)))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "out.db")
        write_all(path, results, batch=3)
        assert rows(path) == [expected_row(r) for r in results]
