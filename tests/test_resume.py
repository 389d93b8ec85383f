"""`done_keys`: the rows an output already holds, after cutting away a torn tail; foreign or
damaged files are refused untouched; a resumed output holds every row exactly once."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from ipaddress import ip_address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import RecordType, ResolverError, Result, Status, resume
from resolver.resume import _JSONL_ROW, DoneSet, done_keys
from resolver.writers import FIELDS, CsvWriter, JsonlWriter, open_writer, record
from tests.test_sqlite import any_result, sample

Key = tuple[int, str]


def keys_of(results: Sequence[Result]) -> set[Key]:
    return {(r.line, r.type.name) for r in results}


def encoded(fmt: str, results: Sequence[Result]) -> tuple[bytes, list[int]]:
    """The bytes our writer writes for `results` (CSV with its header) and where each
    row ends."""
    out = io.BytesIO()
    writer = CsvWriter(out, bom=fmt == "csv-bom") if fmt.startswith("csv") else JsonlWriter(out)
    writer.flush()
    ends = []
    for result in results:
        writer.write(result)
        writer.flush()
        ends.append(len(out.getvalue()))
    return out.getvalue(), ends


def hostile() -> list[Result]:
    """Sample rows, then a last row whose cells hold raw newlines, quotes and commas (a CSV
    row of several physical lines)."""
    return [
        *sample(),
        Result(
            query='raw\nnew "line", here',
            name="raw.test",
            type=RecordType.TXT,
            status=Status.NOERROR,
            answers=("a\r\nb", 'c,"d"\n', "\r"),
            error="x\ny",
            line=11,
        ),
    ]


def write_file(path: Path, results: Sequence[Result], fmt: str | None = None) -> None:
    writer = open_writer(str(path), fmt)
    for result in results:
        writer.write(result)
    writer.close()


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
def test_done_keys_of_whole_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    results = hostile()
    write_file(path, results)
    before = path.read_bytes()
    assert done_keys(str(path)) == keys_of(results)
    assert {(1, "A"), (1, "AAAA")} <= done_keys(str(path))
    assert path.read_bytes() == before  # nothing to repair


@pytest.mark.parametrize(("name", "fmt"), [("out.txt", "jsonl"), ("out.dat", "csv")])
def test_format_is_given_or_taken_from_the_extension(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / name
    write_file(path, sample(), fmt)
    assert done_keys(str(path), fmt) == keys_of(sample())


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "csv-bom"])
def test_every_cut_inside_the_last_row(tmp_path: Path, fmt: str) -> None:
    results = hostile()
    data, ends = encoded(fmt, results)
    start = ends[-2]  # where the last row starts
    path = tmp_path / f"out.{fmt.removesuffix('-bom')}"
    for cut in range(start, len(data)):
        path.write_bytes(data[:cut])
        assert done_keys(str(path)) == keys_of(results[:-1]), cut
        assert path.read_bytes() == data[:start], cut
    path.write_bytes(data)
    assert done_keys(str(path)) == keys_of(results)
    assert path.read_bytes() == data


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "csv-bom"])
def test_every_cut_inside_the_first_row(tmp_path: Path, fmt: str) -> None:
    data, ends = encoded(fmt, hostile())
    header = data.index(b"\r\n") + 2 if fmt != "jsonl" else 0
    path = tmp_path / f"out.{fmt.removesuffix('-bom')}"
    for cut in range(ends[0]):
        path.write_bytes(data[:cut])
        assert done_keys(str(path)) == set(), cut
        assert path.read_bytes() == data[: header if cut >= header else 0], cut


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage\n",
        b'{"query": "x", "name": "x", "ty\n',
        b"\x00\x00\x00\x00\n",
        b"\xff\xfe not utf-8\n",
        b"\n",
        b"[1, 2, 3]\n",
        b'{"query": "x"}{"query": "y"}\n',
        b"garbage\n" + b'{"query": "torn',  # a garbage line, then a torn one
    ],
)
def test_a_garbage_last_jsonl_line_is_cut(tmp_path: Path, garbage: bytes) -> None:
    results = sample()
    data, _ = encoded("jsonl", results)
    path = tmp_path / "out.jsonl"
    path.write_bytes(data + garbage)
    assert done_keys(str(path)) == keys_of(results)
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "garbage",
    [
        b"garbage\r\n",
        b"a,b,c\r\n",
        b'x,"bad"quote,y\r\n',
        b"q,n,A,NOERROR,,,,dns,,not-a-number,1.0\r\n",
        b"q,n,A,NOERROR,,,,dns,,\xd9\xa3,1.0\r\n",  # an Arabic-Indic digit: not a line number
        b"q,\xff,A,NOERROR,,,,dns,,12,1.0\r\n",
        b"\r\n",
        b"a,b,c\r\n" + b'x,"torn\r\ninside quotes\r\n',  # a garbage row, then a torn one
    ],
)
def test_a_garbage_last_csv_row_is_cut(tmp_path: Path, garbage: bytes) -> None:
    results = sample()
    data, _ = encoded("csv", results)
    path = tmp_path / "out.csv"
    path.write_bytes(data + garbage)
    assert done_keys(str(path)) == keys_of(results)
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    ("fmt", "garbage"),
    [
        ("jsonl", b"garbage\n"),
        ("jsonl", b"garbage\nmore garbage\n"),
        ("csv", b"a,b,c\r\n"),
        ("csv", b"a,b,c\r\nd,e\r\n"),
    ],
)
def test_damage_before_the_last_row_is_refused(tmp_path: Path, fmt: str, garbage: bytes) -> None:
    results = sample()
    head, _ = encoded(fmt, results[:3])
    tail, _ = encoded("jsonl", results[3:])
    if fmt == "csv":
        tail = encoded("csv", results[3:])[0].split(b"\r\n", 1)[1]  # without its header
    path = tmp_path / f"out.{fmt}"
    data = head + garbage + (tail if garbage.count(b"\n") == 1 else b"")
    path.write_bytes(data)
    with pytest.raises(ResolverError, match=r"damaged before its last row: row \d+ \(byte"):
        done_keys(str(path))
    assert path.read_bytes() == data  # left as it was


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
def test_a_missing_file_is_nothing_done(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert done_keys(str(path)) == set()
    assert not path.exists()  # the writer creates it


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
def test_an_empty_file_is_nothing_done(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert done_keys(str(path)) == set()
    assert path.read_bytes() == b""


def test_a_csv_with_only_its_header_is_nothing_done(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_file(path, [])
    data = path.read_bytes()
    assert data == (",".join(FIELDS) + "\r\n").encode()
    assert done_keys(str(path)) == set()
    assert path.read_bytes() == data


def test_an_sqlite_output_of_a_killed_run(tmp_path: Path) -> None:
    from tests.test_sqlite import KILLED_RUN

    path = tmp_path / "out.db"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], check=False)
    assert done_keys(str(path)) == {(line, "A") for line in range(1, 201)}


def test_jsonl_rows_written_by_others_are_read_too(tmp_path: Path) -> None:
    """Our rows in another key order (not the writer's layout): read with json.loads."""
    results = sample()
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(record(r), sort_keys=True) + "\n" for r in results))
    assert done_keys(str(path)) == keys_of(results)


FOREIGN = [
    ("out.jsonl", b'{"id": 1, "name": "x"}\n{"id": 2, "name": "y"}\n'),
    ("out.jsonl", b'{"line": "1", "type": "A"}\n'),
    ("out.jsonl", b"just some text\nand more\n"),
    ("out.jsonl", b"just some text without a newline"),
    ("out.jsonl", b"[1]\n[2]\n"),
    ("out.csv", b"id,name\r\n1,x\r\n"),
    ("out.csv", b"just some text without a newline"),
    ("out.csv", b"1,2,3,4,5,6,7,8,9,10,11\r\n"),
    ("out.db", b"SQLite format 3\x00 but then nothing of the kind" * 100),
    ("out.db", b"a text file named .db\n"),
]


@pytest.mark.parametrize(("name", "data"), FOREIGN)
def test_foreign_files_are_refused_untouched(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ResolverError, match="does not look like resolver output: "):
        done_keys(str(path))
    assert path.read_bytes() == data


def test_an_sqlite_database_without_our_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (text TEXT)")
        db.commit()
    with pytest.raises(ResolverError, match=r"does not look like resolver output: .*no table"):
        done_keys(str(path))
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE results (line INTEGER, type TEXT)")
        db.commit()
    with pytest.raises(ResolverError, match=r"does not look like resolver output: .*has no"):
        done_keys(str(path))


def test_the_message_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(FOREIGN[0][1])
    with pytest.raises(ResolverError) as caught:
        done_keys(str(path))
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_an_unreadable_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverError, match="cannot resume"):
        done_keys(str(tmp_path), "jsonl")  # a directory


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
@pytest.mark.parametrize("chunk", [1, 97, 1000, 4096])
def test_files_span_many_read_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, chunk: int
) -> None:
    """Rows cross the reads' boundaries: blocks are stitched exactly, a torn tail or a
    garbage last row in a later block is cut at the right byte, damage is found."""
    monkeypatch.setattr(resume, "_CHUNK", chunk)
    results = [
        Result(r.query, r.name, r.type, r.status, r.answers, r.ttl, line=i + 1)
        for i, r in enumerate(hostile() * 8)
    ]
    data, ends = encoded(fmt, results)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(data[:-5])
    assert done_keys(str(path)) == keys_of(results[:-1])
    assert path.read_bytes() == data[: ends[-2]]
    path.write_bytes(data + b"garbage\n")
    assert done_keys(str(path)) == keys_of(results)
    assert path.read_bytes() == data
    damaged = data[: ends[40]] + b"garbage\n" + data[ends[40] :]
    path.write_bytes(damaged)
    number = 43 if fmt == "csv" else 42  # CSV rows count the header
    with pytest.raises(ResolverError, match=rf"row {number} \(byte {ends[40]}\)"):
        done_keys(str(path))
    assert path.read_bytes() == damaged


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_fast_jsonl_path_reads_every_row_of_our_writer(data: st.DataObject) -> None:
    """Every row our writer makes is taken by the exact pattern (not the slow json.loads
    path), and the pattern gives what json.loads gives."""
    result = data.draw(any_result(data.draw(st.integers(0, 10**12))))
    row = encoded("jsonl", [result])[0].decode()
    m = _JSONL_ROW.fullmatch(row)
    assert m is not None
    parsed = json.loads(row)
    assert (int(m[2]), m[1]) == (parsed["line"], parsed["type"])


hostile_text = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from('\n\r",\\\x00='), max_size=20
)


@st.composite
def raw_result(draw: st.DrawFn, line: int) -> Result:
    """Results with raw newlines, quotes and commas in every text field (the engines escape
    TXT text, but the writers must not depend on it)."""
    result = draw(any_result(line))
    return Result(
        query=draw(hostile_text),
        name=result.name,
        type=result.type,
        status=result.status,
        answers=result.answers
        if result.type in (RecordType.A, RecordType.AAAA)
        else tuple(draw(st.lists(hostile_text, max_size=3))),
        ttl=result.ttl,
        cnames=tuple(draw(st.lists(hostile_text, max_size=2))),
        source=result.source,
        error=draw(st.none() | hostile_text),
        line=line,
        elapsed=result.elapsed,
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_random_cut_leaves_exactly_the_rows_before_it(data: st.DataObject) -> None:
    fmt = data.draw(st.sampled_from(["jsonl", "csv"]))
    n = data.draw(st.integers(0, 12))
    results = [data.draw(raw_result(line)) for line in range(1, n + 1)]
    full, ends = encoded(fmt, results)
    cut = data.draw(st.integers(0, len(full)))
    whole = [r for r, end in zip(results, ends, strict=True) if end <= cut]
    header = full.index(b"\n") + 1 if fmt == "csv" else 0
    kept = ends[len(whole) - 1] if whole else (header if cut >= header else 0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"out.{fmt}")
        with open(path, "wb") as f:
            f.write(full[:cut])
        assert done_keys(path) == keys_of(whole)
        with open(path, "rb") as f:
            assert f.read() == full[:kept]


def all_keys(path: Path, fmt: str) -> list[Key]:
    """Every row's key, duplicates kept."""
    if fmt == "sqlite":
        with contextlib.closing(sqlite3.connect(path)) as db:
            return [(int(a), str(b)) for a, b in db.execute("SELECT line, type FROM results")]
    if fmt == "csv":
        parsed = list(csv.reader(io.StringIO(path.read_bytes().decode(), newline="")))
        assert tuple(parsed[0]) == FIELDS
        return [(int(row[FIELDS.index("line")]), row[FIELDS.index("type")]) for row in parsed[1:]]
    return [(row["line"], row["type"]) for row in map(json.loads, path.read_bytes().splitlines())]


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "sqlite"])
def test_a_resumed_output_holds_every_row_exactly_once(tmp_path: Path, fmt: str) -> None:
    results = [
        Result(f"h{line}.test", f"h{line}.test", t, Status.NOERROR, (ip_address(a),), line=line)
        for line in range(1, 301)
        for t, a in ((RecordType.A, "192.0.2.1"), (RecordType.AAAA, "2001:db8::1"))
    ]
    path = tmp_path / f"out.{fmt}"
    if fmt == "sqlite":
        write_file(path, results[:250])  # a run that got this far
    else:
        data, ends = encoded(fmt, results)
        path.write_bytes(data[: ends[249] - 7])  # killed in the middle of row 250
    done = done_keys(str(path), fmt)
    writer = open_writer(str(path), fmt, append=True)
    for result in results:
        if (result.line, result.type.name) not in done:
            writer.write(result)
    writer.close()
    found = all_keys(path, fmt)
    assert sorted(found) == sorted(keys_of(results))
    assert len(found) == len(results)


def test_done_set_is_compact_and_exact() -> None:
    done = DoneSet([(1, "A"), (1, "AAAA"), (10_000_000, "PTR"), (1, "A")])
    assert len(done) == 3
    assert (1, "A") in done
    assert (1, "MX") not in done
    assert (2, "A") not in done
    assert (10_000_000, "PTR") in done
    assert set(done) == {(1, "A"), (1, "AAAA"), (10_000_000, "PTR")}
    assert len(done._bits) * done._bits.itemsize < 64 * 1024 * 1024  # 2 bytes a line
    with pytest.raises(ValueError, match="not a row key"):
        done.add((3, "BOGUS"))
