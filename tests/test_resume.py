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
import threading
from collections.abc import Iterator, Sequence
from ipaddress import ip_address
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import InvalidInput, RecordType, ResolverError, Result, Status, resume
from resolver.model import FIELDS, record
from resolver.resume import _JSONL_ROW, DoneSet, done_keys
from resolver.testing import LoopbackDNSServer, serve_in_thread
from resolver.writers import CsvWriter, JsonlWriter, open_writer
from tests.test_cli import cli
from tests.test_sqlite import any_result, sample
from tests.zones import ZONE

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
    assert set(done_keys(str(path))) == keys_of(results)
    assert {(1, "A"), (1, "AAAA")} <= set(done_keys(str(path)))
    assert path.read_bytes() == before  # nothing to repair


@pytest.mark.parametrize(("name", "fmt"), [("out.txt", "jsonl"), ("out.dat", "csv")])
def test_format_is_given_or_taken_from_the_extension(tmp_path: Path, name: str, fmt: str) -> None:
    path = tmp_path / name
    write_file(path, sample(), fmt)
    assert set(done_keys(str(path), fmt)) == keys_of(sample())


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "csv-bom"])
def test_every_cut_inside_the_last_row(tmp_path: Path, fmt: str) -> None:
    results = hostile()
    data, ends = encoded(fmt, results)
    start = ends[-2]  # where the last row starts
    path = tmp_path / f"out.{fmt.removesuffix('-bom')}"
    for cut in range(start, len(data)):
        path.write_bytes(data[:cut])
        assert set(done_keys(str(path))) == keys_of(results[:-1]), cut
        assert path.read_bytes() == data[:start], cut
    path.write_bytes(data)
    assert set(done_keys(str(path))) == keys_of(results)
    assert path.read_bytes() == data


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "csv-bom"])
def test_every_cut_inside_the_first_row(tmp_path: Path, fmt: str) -> None:
    data, ends = encoded(fmt, hostile())
    header = data.index(b"\r\n") + 2 if fmt != "jsonl" else 0
    path = tmp_path / f"out.{fmt.removesuffix('-bom')}"
    for cut in range(ends[0]):
        path.write_bytes(data[:cut])
        assert set(done_keys(str(path))) == set(), cut
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
    assert set(done_keys(str(path))) == keys_of(results)
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
    assert set(done_keys(str(path))) == keys_of(results)
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
    assert set(done_keys(str(path))) == set()
    assert not path.exists()  # the writer creates it


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
def test_an_empty_file_is_nothing_done(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"")
    assert set(done_keys(str(path))) == set()
    assert path.read_bytes() == b""


def test_a_csv_with_only_its_header_is_nothing_done(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    write_file(path, [])
    data = path.read_bytes()
    assert data == (",".join(FIELDS) + "\r\n").encode()
    assert set(done_keys(str(path))) == set()
    assert path.read_bytes() == data


def test_an_sqlite_output_of_a_killed_run(tmp_path: Path) -> None:
    from tests.test_sqlite import KILLED_RUN

    path = tmp_path / "out.db"
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", KILLED_RUN, str(path)], check=False)
    assert set(done_keys(str(path))) == {(line, "A") for line in range(1, 201)}


def test_jsonl_rows_written_by_others_are_read_too(tmp_path: Path) -> None:
    """Our rows in another key order (not the writer's layout): read with json.loads."""
    results = sample()
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(record(r), sort_keys=True) + "\n" for r in results))
    assert set(done_keys(str(path))) == keys_of(results)


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
    assert set(done_keys(str(path))) == keys_of(results[:-1])
    assert path.read_bytes() == data[: ends[-2]]
    path.write_bytes(data + b"garbage\n")
    assert set(done_keys(str(path))) == keys_of(results)
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
    assert (int(m[3]), m[2]) == (parsed["line"], parsed["type"])
    assert resume._json_text(m[1]) == parsed["query"]


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


@settings(max_examples=100, deadline=None)
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
        assert set(done_keys(path)) == keys_of(whole)
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
    done = DoneSet([(1, "A", "a"), (1, "AAAA", "a"), (10_000_000, "PTR", "b"), (1, "A", "a")])
    assert len(done) == 3
    assert (1, "A") in done
    assert (1, "MX") not in done
    assert (2, "A") not in done
    assert (10_000_000, "PTR") in done
    assert set(done) == {(1, "A"), (1, "AAAA"), (10_000_000, "PTR")}
    assert done.last_line() == 10_000_000
    assert done.first_line(2, 10_000_000) is None
    assert done.first_line(2, 10_000_001) == 10_000_000
    size = len(done._bits) * done._bits.itemsize + len(done._crcs) * done._crcs.itemsize
    assert size < 6 * 2 * 10_000_001  # 6 bytes a line (arrays grow by doubling)
    with pytest.raises(ValueError, match="not a row key"):
        done.add((3, "BOGUS"), "c")
    with pytest.raises(resume.QueryMismatch):
        done.add((1, "MX"), "not a")


# A resumed run reads the input the rows came from, or is refused


INPUT = [
    b"www.zone.test",
    b"  Mixed.Zone.Test.  # a note",  # the row's query is the line, not the name asked
    b"# a comment",
    b"",
    b"bad name",  # INVALID rows keep the line too
    b"caf\xe9.zone.test",  # not UTF-8
    b"192.0.2.1",  # one PTR row
    b"=HYPERLINK(1)",  # a formula to a spreadsheet: the CSV keeps it exact all the same
    b"-lead.zone.test",
    b"x" * 70_000,  # over-long: INVALID, its start kept
    b"last.zone.test",
]


async def rows_for(lines: Sequence[bytes], types: Sequence[RecordType]) -> list[Result]:
    """The rows a run would write for `lines` (the answers do not matter here)."""
    from resolver.sources import query_batches

    rows = []
    async for batch in query_batches(lines, types):
        for item in batch:
            if isinstance(item, InvalidInput):
                rows.append(Result.for_invalid(item))
            else:
                rows.append(Result.for_query(item, Status.NXDOMAIN))
    return rows


def files_of(tmp_path: Path, *contents: bytes) -> tuple[list[BinaryIO], list[str]]:
    """The inputs, open, and their names as a user in `tmp_path` would give them."""
    paths = [tmp_path / f"in{n}.txt" for n in range(len(contents))]
    for path, data in zip(paths, contents, strict=True):
        path.write_bytes(data)
    return [path.open("rb") for path in paths], [path.name for path in paths]


async def checked(out: Path, *contents: bytes) -> bytes:
    """What the resumed run would read, after `check_input` (raises like it)."""
    done = done_keys(str(out))
    inputs, names = files_of(out.parent, *contents)
    try:
        runs = await resume.check_input(done, str(out), inputs, names)
    except BaseException:
        for f in inputs:
            f.close()
        raise
    data = b"".join(f.read() for f in runs)
    for f in runs:
        f.close()
    return data


def text(lines: Sequence[bytes], end: bytes = b"\n") -> bytes:
    return b"".join(line + end for line in lines)


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
async def test_the_input_of_the_rows_is_resumed(tmp_path: Path, name: str) -> None:
    out = tmp_path / name
    results = await rows_for(INPUT[:7], [RecordType.A, RecordType.AAAA])  # a run cut short
    write_file(out, results)
    same = text(INPUT)
    assert await checked(out, same) == same  # rewound: the run reads it all
    assert await checked(out, text(INPUT, b"\r\n")) == text(INPUT, b"\r\n")  # CRLF: same lines
    assert await checked(out, text(INPUT[:4]), text(INPUT[4:])) == same  # split: numbered on
    assert await checked(out, text(INPUT[:7])) == text(INPUT[:7])  # no line past the rows
    changed_after = text([*INPUT[:7], b"other.zone.test"])  # lines after the rows: new
    assert await checked(out, changed_after) == changed_after
    full = await rows_for(INPUT, [RecordType.A])
    out.unlink()
    write_file(out, full)
    assert await checked(out, same) == same


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            [INPUT[0], b"Mixed.Zone.Test.  # a note", *INPUT[2:]],  # the same name asked
            "rows for line 2 are of '  Mixed.Zone.Test.  # a note', but line 2 of the input "
            "(in0.txt:2) is 'Mixed.Zone.Test.  # a note'",
        ),
        ([*INPUT[:4], b"bad  name", *INPUT[5:]], "line 5 of the input (in0.txt:5) is 'bad  name'"),
        ([*INPUT[:5], b"caf\xe8.zone.test", *INPUT[6:]], "its rows for line 6 are of 'caf\\\\xe9"),
        ([*INPUT[:6], b"192.0.2.2", *INPUT[7:]], "is '192.0.2.2'"),
        ([*INPUT[:7], b"=HYPERLINK(2)", *INPUT[8:]], "line 8 of the input (in0.txt:8)"),
        ([*INPUT[:8], b"lead.zone.test", *INPUT[9:]], "are of '-lead.zone.test'"),
        ([*INPUT[:10], b"first.zone.test"], "rows for line 11 are of 'last.zone.test'"),
        (
            [INPUT[0], b"# gone", *INPUT[2:]],
            "line 2 of the input (in0.txt:2) is blank or a comment",
        ),
        ([b"", *INPUT[1:]], "line 1 of the input (in0.txt:1) is blank or a comment"),
        (INPUT[:9], "rows for line 10 are of 'xxxx"),
        (INPUT[:6], "but the input ends at line 6"),
        ([], "but the input ends at line 0"),
        (INPUT[1:], "rows for line 1 are of 'www.zone.test', but line 1 of the input"),
    ],
)
async def test_another_input_is_refused_naming_the_line(
    tmp_path: Path, name: str, lines: list[bytes], message: str
) -> None:
    out = tmp_path / name
    write_file(out, await rows_for(INPUT, [RecordType.A, RecordType.TXT]))
    before = out.read_bytes()
    with pytest.raises(ResolverError) as caught:
        await checked(out, text(lines))
    assert message in str(caught.value)
    assert f"cannot resume {out}" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert out.read_bytes() == before


async def test_several_inputs_are_named_file_and_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    write_file(out, await rows_for(INPUT, [RecordType.A]))
    with pytest.raises(ResolverError, match=r"line 5 of the input \(in1\.txt:1\) is 'x"):
        await checked(out, text(INPUT[:4]), text(INPUT[9:]), text(INPUT[4:9]))


def feed(fd: int, data: bytes) -> None:
    """Write `data` into the pipe `fd` and close it (in a thread: the pipe holds less)."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)


async def test_an_input_that_cannot_seek_is_read_from_a_copy(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    write_file(out, await rows_for(INPUT, [RecordType.A]))
    done = done_keys(str(out))
    for data, ok in ((text(INPUT), True), (text(INPUT[1:]), False)):
        read, write = os.pipe()
        writer = threading.Thread(target=feed, args=(write, data))
        writer.start()
        pipe = os.fdopen(read, "rb")
        if ok:
            (run,) = await resume.check_input(done, str(out), [pipe], ["-"])
            assert pipe.closed
            assert run.read() == data
            run.close()
        else:
            with pytest.raises(ResolverError, match=r"line 1 of the input \(stdin:1\)"):
                await resume.check_input(done, str(out), [pipe], ["-"])
            pipe.close()
        writer.join()


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.db"])
async def test_an_output_that_mixes_two_inputs_is_refused(tmp_path: Path, name: str) -> None:
    """What a resume with another input left before it was refused: one line, two queries."""
    out = tmp_path / name
    old = await rows_for(INPUT[:3], [RecordType.A])
    new = await rows_for([INPUT[0], b"other.zone.test"], [RecordType.AAAA])
    write_file(out, old + new)
    with pytest.raises(ResolverError, match="rows for line 2 are of two different queries"):
        done_keys(str(out))


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDNSServer]:
    with serve_in_thread(ZONE) as running:
        yield running


def rows_of(path: Path) -> list[tuple[int, str, str]]:
    """(line, type, query) of every row of an output, in file order."""
    if path.suffix == ".db":
        with contextlib.closing(sqlite3.connect(path)) as db:
            return list(db.execute("SELECT line, type, query FROM results"))
    if path.suffix == ".csv":
        parsed = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")))
        return [(int(r[10]), r[2], r[0]) for r in parsed[1:]]
    return [
        (r["line"], r["type"], r["query"])
        for r in map(json.loads, path.read_text().split("\n")[:-1])
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".db"])
def test_the_command_refuses_a_resume_with_another_input(
    tmp_path: Path, server: LoopbackDNSServer, suffix: str
) -> None:
    first = tmp_path / "first.txt"
    first.write_text("www.zone.test\nv4.zone.test\nnope.zone.test\n")
    other = tmp_path / "other.txt"
    other.write_text("www.zone.test\nv6.zone.test\nnope.zone.test\nmore.zone.test\n")
    out = tmp_path / f"out{suffix}"
    args = ["-n", server.nameserver, "-o", str(out), "-t", "A,AAAA"]
    assert cli("resolve", str(first), *args).returncode == 0
    before = rows_of(out)
    for refused in (
        cli("resolve", str(other), *args, "--resume"),
        cli("resolve", "-", *args, "--resume", stdin=other.read_text()),
    ):
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr
        (message,) = refused.stderr.splitlines()
        assert "its rows for line 2 are of 'v4.zone.test'" in message
        assert ":2) is 'v6.zone.test'" in message
        assert rows_of(out) == before  # nothing added
    grown = first.read_text() + "more.zone.test\n"  # the same input, and more: resumed
    resumed = cli("resolve", "-", *args, "--resume", stdin=grown)
    assert resumed.returncode == 0, resumed.stderr
    after = rows_of(out)
    assert after[: len(before)] == before
    assert sorted(after[len(before) :]) == [
        (4, "A", "more.zone.test"),
        (4, "AAAA", "more.zone.test"),
    ]


def test_a_csv_bom_is_written_once_and_read_back(tmp_path: Path, server: LoopbackDNSServer) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("www.zone.test\n-lead.zone.test\n")
    out = tmp_path / "out.csv"
    args = ["-n", server.nameserver, "-o", str(out), "--csv-bom"]
    assert cli("resolve", str(hosts), *args).returncode == 0
    assert out.read_bytes().startswith(b"\xef\xbb\xbfquery,name,")
    hosts.write_text("www.zone.test\n-lead.zone.test\nv4.zone.test\n")
    resumed = cli("resolve", str(hosts), *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes().count(b"\xef\xbb\xbf") == 1
    queries = sorted(query for _, _, query in rows_of(out))
    assert queries == ["-lead.zone.test", "v4.zone.test", "www.zone.test"]  # exact: no guard
    jsonl = cli(
        "resolve", str(hosts), "-n", server.nameserver, "-o", str(tmp_path / "o.jsonl"), "--csv-bom"
    )
    assert jsonl.returncode == 2
    assert "byte order mark is for CSV" in jsonl.stderr
