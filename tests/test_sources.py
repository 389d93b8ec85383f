"""Reading host lists: every line numbered, nothing dropped but blanks and comments."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import InvalidInput, Query, RecordType, ResolverError, sources
from resolver.sources import MAX_LINE, lines_of, open_inputs, query_batches


async def read(*paths: Path) -> list[bytes]:
    return [line async for line in lines_of(open_inputs([str(p) for p in paths]))]


async def test_lines_without_endings(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_bytes(b"a.test\r\nb.test\n\nc.test")  # CRLF, blank, no final newline
    assert await read(path) == [b"a.test\r", b"b.test", b"", b"c.test"]


async def test_several_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "1").write_bytes(b"a\nb\n")
    (tmp_path / "2").write_bytes(b"c\n")
    assert await read(tmp_path / "1", tmp_path / "2") == [b"a", b"b", b"c"]


async def test_overlong_line_is_cut_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"a.test\n" + b"x" * (3 * MAX_LINE) + b"\nb.test\n")
    lines = await read(path)
    assert lines[0] == b"a.test"
    assert len(lines[1]) == MAX_LINE + 1
    assert lines[2:] == [b"b.test"]


def test_unreadable_input_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ResolverError, match="cannot read"):
        open_inputs([str(tmp_path / "missing.txt")])


async def collect(source: object) -> list[Query | InvalidInput]:
    return [q async for batch in query_batches(source, [RecordType.A]) for q in batch]  # type: ignore[arg-type]


async def test_bad_bytes_become_invalid_rows_with_their_line() -> None:
    items = await collect(
        [b"ok.test", b"caf\xe9.test", b"nul\x00.test", b"x" * (MAX_LINE + 1), b"# c"]
    )
    assert isinstance(items[0], Query)
    assert items[0].line == 1
    bad = items[1:]
    assert [type(i) for i in bad] == [InvalidInput] * 3
    assert [i.line for i in bad] == [2, 3, 4]
    assert isinstance(bad[0], InvalidInput)
    assert "UTF-8" in bad[0].error
    assert bad[0].text == "caf\\xe9.test"
    assert isinstance(bad[2], InvalidInput)
    assert "longer than" in bad[2].error


async def test_text_lines_as_read_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("a.test\nb.test\n")
    with path.open() as f:
        items = await collect(f)
    assert [(i.text, i.line) for i in items] == [("a.test", 1), ("b.test", 2)]


async def test_queue_ends_at_the_sentinel() -> None:
    queue: asyncio.Queue[str | bytes | Query | None] = asyncio.Queue()
    for item in ["a.test", "b.test", None, "never.test"]:
        queue.put_nowait(item)
    items = await collect(queue)
    assert [i.text for i in items] == ["a.test", "b.test"]


def split_lines(data: bytes, max_line: int) -> list[bytes]:
    """What reading `data` must give: its lines, the last one only if not empty, each
    cut at max_line + 1 bytes."""
    *lines, last = data.split(b"\n")
    return [line[: max_line + 1] for line in [*lines, *([last] if last else [])]]


@settings(max_examples=300, deadline=None)
@given(
    files=st.lists(st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"\n")), max_size=3),
    chunk=st.integers(1, 17),
    max_line=st.integers(1, 12),
)
def test_lines_are_the_same_however_the_input_is_chunked(
    files: list[bytes], chunk: int, max_line: int
) -> None:
    async def read_all() -> tuple[list[bytes], list[list[bytes]]]:
        each = [line async for line in lines_of([io.BytesIO(f) for f in files])]
        batches = [b async for b in lines_of([io.BytesIO(f) for f in files]).batches()]
        return each, batches

    with (
        mock.patch.object(sources, "_CHUNK", chunk),
        mock.patch.object(sources, "MAX_LINE", max_line),
    ):
        each, batches = asyncio.run(read_all())
    expected = [line for f in files for line in split_lines(f, max_line)]
    assert each == expected
    assert [line for batch in batches for line in batch] == expected
    assert all(batches)  # no empty batch


async def test_a_queue_is_taken_in_batches_up_to_the_sentinel() -> None:
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    for i in range(1000):
        queue.put_nowait(f"h{i}.test")
    queue.put_nowait(None)
    batches = [b async for b in query_batches(queue, [RecordType.A])]
    assert [len(b) for b in batches] == [512, 488]  # what was waiting, 512 at most
    assert [q.line for b in batches for q in b] == list(range(1, 1001))


NAMES = [b"a.test", "caf\u00e9.test".encode(), b"1.2.3.4", b"x" * 11, b"# c", b"\xff"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")) | st.sampled_from(NAMES),
        max_size=8,
    )
)
def test_lines_decoded_together_give_the_rows_of_lines_decoded_one_by_one(
    lines: list[bytes],
) -> None:
    async def rows() -> list[Query | InvalidInput]:
        return [q async for batch in query_batches(lines, [RecordType.A]) for q in batch]

    with mock.patch.object(sources, "MAX_LINE", 10):  # so that b"x" * 11 is too long
        together = asyncio.run(rows())
        with mock.patch.object(sources, "_decode_all", return_value=None):
            one_by_one = asyncio.run(rows())
    assert together == one_by_one


TEXTS = ["a.test", "B.Test.\n", "caf\u00e9.test", "1.2.3.4\n", "::1", "# c", "", "\n", "a\nb"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(max_size=12) | st.sampled_from(TEXTS),
        max_size=8,
    ),
    st.sampled_from([[RecordType.A], [RecordType.A, RecordType.AAAA]]),
)
def test_text_lines_taken_together_give_the_rows_of_lines_taken_one_by_one(
    lines: list[str], types: list[RecordType]
) -> None:
    async def rows() -> list[Query | InvalidInput]:
        return [q async for batch in query_batches(lines, types) for q in batch]

    together = asyncio.run(rows())
    with mock.patch.object(sources, "_decode_all", return_value=None):
        one_by_one = asyncio.run(rows())
    assert together == one_by_one


async def test_a_query_among_text_lines_is_passed_on_as_it_is() -> None:
    query = Query("given.test", RecordType.MX, "given.test", 0)
    rows = [q async for batch in query_batches(["a.test", query], [RecordType.A]) for q in batch]
    assert rows == [Query("a.test", RecordType.A, "a.test", 1), query]
