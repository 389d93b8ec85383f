"""Reading host lists: every line numbered, nothing dropped but blanks and comments."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from resolver import InvalidInput, Query, RecordType, ResolverError
from resolver.sources import MAX_LINE, lines_of, open_inputs, queries_from


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
    return [q async for q in queries_from(source, [RecordType.A])]  # type: ignore[arg-type]


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
