"""CSV and JSONL writers: one whole, well-formed row per result, whatever the data holds."""

from __future__ import annotations

import csv
import io
import json
import re
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import MX, InvalidInput, RecordType, ResolverError, Result, Source, Status
from resolver.model import FIELDS, record
from resolver.writers import CsvWriter, JsonlWriter, format_for, open_writer

HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    'comma, "quote"',
    "new\nline",
    "tab\there",
    "bell\x07",
    "unicode ü ☃",
]


def results() -> list[Result]:
    return [
        Result(
            query="www.example.test",
            name="www.example.test",
            type=RecordType.A,
            status=Status.NOERROR,
            answers=(ip_address("192.0.2.1"), ip_address("192.0.2.2")),
            ttl=60,
            line=1,
            elapsed=0.0012345,
        ),
        Result(
            query="mx.example.test",
            name="mx.example.test",
            type=RecordType.MX,
            status=Status.NOERROR,
            answers=(MX(10, "mail.example.test"),),
            ttl=300,
            cnames=("a.example.test",),
            line=2,
        ),
        Result(
            query="txt.example.test",
            name="txt.example.test",
            type=RecordType.TXT,
            status=Status.NOERROR,
            answers=tuple(HOSTILE),
            line=3,
        ),
        Result.for_invalid(InvalidInput("=bad name", RecordType.A, "invalid character", 4)),
        Result(
            query="gone.test",
            name="gone.test",
            type=RecordType.AAAA,
            status=Status.TIMEOUT,
            source=Source.DNS,
            error="no answer",
            line=5,
        ),
        Result(
            query="-Lead.example.test",
            name="-lead.example.test",
            type=RecordType.A,
            status=Status.ERROR,
            error="=2+3 said the server",
            line=6,
        ),
    ]


def test_jsonl_one_object_per_line_with_every_field() -> None:
    out = io.BytesIO()
    writer = JsonlWriter(out)
    for result in results():
        writer.write(result)
    writer.flush()
    lines = out.getvalue().decode().splitlines()
    assert len(lines) == 6
    rows = [json.loads(line) for line in lines]
    assert all(tuple(row) == FIELDS for row in rows)
    assert rows[0]["answers"] == ["192.0.2.1", "192.0.2.2"]
    assert rows[0]["ttl"] == 60
    assert rows[0]["elapsed_ms"] == 1.234
    assert rows[1]["answers"] == ["10 mail.example.test"]
    assert rows[1]["cnames"] == ["a.example.test"]
    assert rows[2]["answers"] == HOSTILE  # JSON carries any text exactly
    assert rows[3]["status"] == "INVALID"
    assert rows[3]["source"] == "none"
    assert rows[4]["error"] == "no answer"
    assert rows[4]["ttl"] is None


def test_csv_is_well_formed_and_formula_safe() -> None:
    out = io.BytesIO()
    writer = CsvWriter(out)
    for result in results():
        writer.write(result)
    writer.flush()
    rows = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    assert tuple(rows[0]) == FIELDS
    assert len(rows) == 7
    assert all(len(row) == len(FIELDS) for row in rows)
    assert rows[1][4] == '["192.0.2.1", "192.0.2.2"]'
    assert json.loads(rows[3][4]) == HOSTILE  # a JSON array: never a formula
    assert rows[4][0] == "=bad name"  # the key columns are exact
    assert rows[6][:2] == ["-Lead.example.test", "-lead.example.test"]
    assert rows[6][FIELDS.index("error")] == "'=2+3 said the server"  # neutralized
    for row in rows[1:]:
        for cell in row[2:]:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


@settings(max_examples=300)
@given(
    st.lists(st.lists(st.text(), max_size=4), min_size=2, max_size=2, unique_by=tuple),
    st.sampled_from([RecordType.TXT, RecordType.MX, RecordType.CAA]),
)
def test_csv_list_cells_keep_every_boundary(lists: list[list[str]], rtype: RecordType) -> None:
    """Different answer lists never give the same cell, and each cell gives its list back
    (`v=spf1 mx -all` is not `v=spf1`, `mx`, `-all`)."""
    cells = []
    for answers in lists:
        out = io.BytesIO()
        writer = CsvWriter(out, header=False)
        writer.write(Result("q", "q", rtype, Status.NOERROR, tuple(answers), cnames=("c d",)))
        writer.flush()
        (row,) = csv.reader(io.StringIO(out.getvalue().decode(), newline=""))
        assert json.loads(row[FIELDS.index("answers")]) == answers
        assert json.loads(row[FIELDS.index("cnames")]) == ["c d"]
        cells.append(row[FIELDS.index("answers")])
    assert cells[0] != cells[1]


def test_csv_lists_that_one_space_could_not_tell_apart() -> None:
    out = io.BytesIO()
    writer = CsvWriter(out, header=False)
    for answers in (
        ("v=spf1 mx -all",),
        ("v=spf1", "mx", "-all"),
        ('say "hello", world',),
        ("say", '"hello",', "world"),
        (MX(10, "a.test"), MX(20, "b.test")),
        (MX(10, "a.test 20 b.test"),),
    ):
        writer.write(Result("q", "q", RecordType.TXT, Status.NOERROR, answers))
    writer.flush()
    cells = [row[4] for row in csv.reader(io.StringIO(out.getvalue().decode(), newline=""))]
    assert len(set(cells)) == 6
    assert cells[0] == '["v=spf1 mx -all"]'
    assert json.loads(cells[3]) == ["say", '"hello",', "world"]
    assert cells[4] == '["10 a.test", "20 b.test"]'


def test_csv_byte_order_mark_only_with_the_header(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    writer = open_writer(str(path), bom=True)
    writer.write(results()[0])
    writer.close()
    data = path.read_bytes()
    assert data.startswith("\ufeffquery,name,".encode())
    assert data.decode("utf-8-sig").count("query,name,") == 1
    again = open_writer(str(path), append=True, bom=True)  # a resumed run: no second BOM
    again.write(results()[1])
    again.close()
    assert path.read_bytes().count(b"\xef\xbb\xbf") == 1
    assert len(list(csv.reader(io.StringIO(path.read_text("utf-8-sig"), newline="")))) == 3
    plain = io.BytesIO()
    CsvWriter(plain).flush()
    assert plain.getvalue().startswith(b"query,")  # no BOM unless asked
    with pytest.raises(ResolverError, match="byte order mark"):
        open_writer(str(tmp_path / "out.jsonl"), bom=True)


def test_rows_reach_the_file_only_whole(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    writer = open_writer(str(path))
    writer.write(results()[0])
    assert path.read_bytes() == b""  # still in the batch
    writer.flush()
    assert path.read_bytes().endswith(b"\n")
    for _ in range(2000):  # more than one batch
        writer.write(results()[2])
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert all(json.loads(line) for line in data.splitlines())
    writer.close()
    assert len(path.read_bytes().splitlines()) == 2001


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        ("out.csv", None, "csv"),
        ("OUT.JSONL", None, "jsonl"),
        ("out.json", None, "jsonl"),
        (None, None, "jsonl"),
        ("-", "csv", "csv"),
        ("out.txt", "csv", "csv"),
    ],
)
def test_format_choice(path: str | None, fmt: str | None, expected: str) -> None:
    assert format_for(path, fmt) == expected


def test_unknown_extension_is_an_error() -> None:
    with pytest.raises(ResolverError, match="extension"):
        format_for("out.txt", None)


def test_unwritable_output_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ResolverError, match="cannot write"):
        open_writer(str(tmp_path / "no" / "such" / "dir.csv"))


@given(
    text=st.text(st.characters()),  # lone surrogates too (from surrogateescape'd input)
    answers=st.lists(st.text() | st.ip_addresses() | st.ip_addresses().map(str), max_size=4),
    ttl=st.none() | st.integers(0, 2**31),
    elapsed=st.floats(0, 100, allow_nan=False),
    error=st.none() | st.text(),
)
def test_jsonl_rows_equal_json_dumps(
    text: str,
    answers: list[str | IPv4Address | IPv6Address],
    ttl: int | None,
    elapsed: float,
    error: str | None,
) -> None:
    result = Result(
        query=text,
        name=text.lower(),
        type=RecordType.TXT,
        status=Status.NOERROR,
        answers=tuple(answers),
        ttl=ttl,
        cnames=(text,),
        error=error,
        line=7,
        elapsed=elapsed,
    )
    out = io.BytesIO()
    writer = JsonlWriter(out)
    writer.write(result)
    writer.flush()
    expected = record(result)
    expected_text = json.dumps({**expected, "elapsed_ms": 0}, ensure_ascii=False)
    text = re.sub(r'"elapsed_ms": [0-9]+\.[0-9]{3}}$', '"elapsed_ms": 0}', out.getvalue().decode())
    assert text.encode() == (expected_text + "\n").encode("utf-8", "backslashreplace")
    row = json.loads(out.getvalue())
    assert row == expected
    assert list(row) == list(expected)
    assert row["line"] == 7
    assert row["answers"] == [str(a) for a in answers]  # addresses as ipaddress shows them


@pytest.mark.parametrize("writer_type", [JsonlWriter, CsvWriter])
def test_a_batch_is_written_as_its_rows_one_by_one(writer_type: type[JsonlWriter]) -> None:
    one_by_one, batched = io.BytesIO(), io.BytesIO()
    writer = writer_type(one_by_one)
    for result in results():
        writer.write(result)
    writer.flush()
    writer = writer_type(batched)
    writer.write_many(results())
    writer.flush()
    assert batched.getvalue() == one_by_one.getvalue()
    assert len(batched.getvalue().splitlines()) >= len(results())


def test_elapsed_ms_is_the_same_text_in_csv_and_jsonl() -> None:
    """Three decimals (microseconds) in both formats: `0.000`, never `0.0` in one."""
    times = (0.0, 0.0012345, 2.5, 0.0004, 1e-7)
    timed = [r._replace(elapsed=e) for r, e in zip(results()[: len(times)], times, strict=True)]
    jsonl_out, csv_out = io.BytesIO(), io.BytesIO()
    for writer in (JsonlWriter(jsonl_out), CsvWriter(csv_out, header=False)):
        writer.write_many(timed)
        writer.flush()
    in_jsonl = re.findall(r'"elapsed_ms": ([^}]*)}', jsonl_out.getvalue().decode())
    in_csv = [row[-1] for row in csv.reader(io.StringIO(csv_out.getvalue().decode()))]
    assert in_jsonl == in_csv == ["0.000", "1.234", "2500.000", "0.400", "0.000"]
