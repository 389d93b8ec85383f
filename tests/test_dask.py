"""`resolver.dask` on Dask's synchronous scheduler (fast, in this process) against the
in-process DNS server, and the `--dask` command line's refusals before any cluster starts.

The same code on a real cluster of worker processes, with workers killed: test_dask_cluster.
"""

from __future__ import annotations

import asyncio
import bisect
import gzip
import io
import itertools
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import dask.bag as db
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import Resolver
from resolver.cli import main
from resolver.cli.cluster import merge_parts, partition_size
from resolver.dask import (
    Part,
    Settings,
    budget,
    count_partition,
    is_temporary,
    read_lines,
    resolve_bag,
    resolve_to_parts,
    split_inputs,
    write_parts,
)
from resolver.model import record
from resolver.sources import MAX_LINE, lines_of
from resolver.testing import LoopbackDNSServer, serve_in_thread
from tests.oracle import bulk_zones, host_list

TYPES = ["A", "AAAA", "TXT"]
#: Lines a host list may hold besides names: what the one-process reader must number alike.
TRICKY = [
    b"",
    b"# a comment",
    b"  h3.bulk.test  # inline comment",
    b"H1.BULK.TEST.",
    b"h2.bulk.test\r",  # a CRLF line
    b"h4\rbulk.test",  # a lone CR inside a line: not a line end
    b"\xff\xfeh5.bulk.test",  # not UTF-8
    b"x" * (MAX_LINE + 10),  # over-long
    b"10.0.2.4",
    b"[2001:db8::1]",
    b"bad name here",
    "b\u00fccher.bulk.test".encode(),
]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDNSServer]:
    merged: dict[str, Any] = {}
    for zone in bulk_zones(200).values():
        merged.update(zone)
    with serve_in_thread(merged) as running:
        yield running


@pytest.fixture(autouse=True)
def synchronous() -> Iterator[None]:
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture
def hosts(tmp_path: Path) -> Path:
    lines = [line.encode() for line in host_list(200)]
    for k, tricky in enumerate(TRICKY):
        lines.insert(k * 23, tricky)
    path = tmp_path / "hosts.txt"
    path.write_bytes(b"\n".join(lines))  # the last line without its newline
    return path


def reference_lines(data: bytes) -> list[bytes]:
    """The lines the one-process reader gives for a file of `data`."""

    async def read() -> list[bytes]:
        return [line async for line in lines_of([io.BytesIO(data)])]

    return asyncio.run(read())


def one_process_rows(path: Path, nameserver: str, types: list[str]) -> dict[Any, dict[str, Any]]:
    """(line, type) -> record, as one process resolves `path`."""

    async def resolve() -> list[dict[str, Any]]:
        async with Resolver([nameserver], fallback="never") as resolver:
            stream = resolver.resolve_many(lines_of([path.open("rb")]), types)
            return [record(result) async for result in stream]

    return keyed(asyncio.run(resolve()))


def keyed(rows: list[dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Rows by (line, type), without their timing; each key must be there once."""
    found = {(row["line"], row["type"]): row | {"elapsed_ms": 0} for row in rows}
    assert len(found) == len(rows), "a (line, type) twice"
    return found


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=12).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    last_newline=st.booleans(),
    blocksize=st.integers(min_value=1, max_value=64),
)
def test_read_lines_cuts_lines_as_the_one_process_reader(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], last_newline: bool, blocksize: int
) -> None:
    data = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    path = tmp_path_factory.mktemp("lines") / "in.txt"
    path.write_bytes(data)
    bag = read_lines([str(path), str(path)], blocksize=blocksize)
    assert bag.compute() == reference_lines(data) * 2  # two inputs: one after the other


def test_split_inputs_tiles_each_file(tmp_path: Path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"a\n" * 10)
    (tmp_path / "empty.txt").write_bytes(b"")
    ranges = split_inputs([str(path), str(tmp_path / "empty.txt")], blocksize=6)
    assert [(r.start, r.stop) for r in ranges] == [(0, 6), (6, 12), (12, 18), (18, 20)]


def test_resolve_bag_rows_are_those_of_one_process(server: LoopbackDNSServer, hosts: Path) -> None:
    """Many small partitions (lines numbered from each one's global first line), non-UTF-8
    and over-long lines, comments, blanks: every record as a one-process run writes it."""
    lines = read_lines([str(hosts)], blocksize=512)
    assert lines.npartitions > 20
    bag = resolve_bag(lines, TYPES, nameservers=[server.nameserver], fallback="never")
    got = keyed([record(result) for result in bag.compute()])
    assert got == one_process_rows(hosts, server.nameserver, TYPES)
    errors = {row["error"] for row in got.values()}
    assert {"not UTF-8 (byte 1)", f"line longer than {MAX_LINE} bytes"} <= errors


def test_resolve_bag_of_read_text(server: LoopbackDNSServer, hosts: Path) -> None:
    """A bag from dask's own read_text, told to split on newlines only and keep bytes that
    are not UTF-8, gives the same rows."""
    lines = db.read_text(str(hosts), blocksize=700, linedelimiter="\n", errors="surrogateescape")
    bag = resolve_bag(lines, TYPES, nameservers=[server.nameserver], fallback="never")
    got = keyed([record(result) for result in bag.compute()])
    assert got == one_process_rows(hosts, server.nameserver, TYPES)


@pytest.mark.parametrize("format", ["jsonl", "csv", "sqlite"])
def test_resolve_to_parts_one_whole_part_per_partition(
    server: LoopbackDNSServer, hosts: Path, tmp_path: Path, format: str
) -> None:
    lines = read_lines([str(hosts)], blocksize=2048)
    out = tmp_path / "parts"
    parts: list[Part] = resolve_to_parts(
        lines, str(out), ["A"], format=format, nameservers=[server.nameserver], fallback="never"
    ).compute()
    assert [p.number for p in parts] == list(range(lines.npartitions))
    names = sorted(os.listdir(out))
    assert names == sorted(os.path.basename(p.path) for p in parts)  # no temporary left
    rows = [row for p in parts for row in read_part(p.path, format)]
    assert keyed(rows).keys() == one_process_rows(hosts, server.nameserver, ["A"]).keys()
    assert sum(p.rows for p in parts) == len(rows)
    assert sum(p.lines for p in parts) == len(reference_lines(hosts.read_bytes()))


def read_part(path: str, format: str) -> list[dict[str, Any]]:
    if format == "jsonl":
        return [json.loads(line) for line in Path(path).read_text().splitlines()]
    if format == "csv":
        import csv

        with open(path, newline="") as f:
            return [row | {"line": int(row["line"])} for row in csv.DictReader(f)]
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM results")]


def test_write_parts_of_a_filtered_bag(
    server: LoopbackDNSServer, hosts: Path, tmp_path: Path
) -> None:
    results = resolve_bag(
        read_lines([str(hosts)], blocksize=4096), ["A"], nameservers=[server.nameserver]
    )
    noerror = results.filter(lambda r: r.status.value == "NOERROR")
    parts = write_parts(noerror, str(tmp_path / "ok"), "csv").compute()
    rows = [row for p in parts for row in read_part(p.path, "csv")]
    assert rows
    assert {row["status"] for row in rows} == {"NOERROR"}
    assert sum(p.counts.get("NOERROR", 0) for p in parts) == len(rows)


@pytest.mark.parametrize("format", ["jsonl", "csv", "sqlite"])
def test_parts_merge_into_one_output(
    server: LoopbackDNSServer, hosts: Path, tmp_path: Path, format: str
) -> None:
    """`-o FILE` with --dask: the parts in order, CSV with one header (and one byte order
    mark when asked), SQLite rows in the database's results; a merge done again (a resumed
    run) adds no row twice."""
    parts = resolve_to_parts(
        read_lines([str(hosts)], blocksize=2048), str(tmp_path / "parts"), ["A"],
        format=format, nameservers=[server.nameserver], fallback="never",
    ).compute()  # fmt: skip
    target = tmp_path / f"out.{'db' if format == 'sqlite' else format}"
    paths = [p.path for p in parts]
    merge_parts(paths, str(target), format, bom=format == "csv")
    if format == "sqlite":
        merge_parts(paths, str(target), format)  # again: nothing doubled
    rows = read_part(str(target), format)
    expected = one_process_rows(hosts, server.nameserver, ["A"])
    assert keyed(rows).keys() == expected.keys()
    if format == "csv":
        text = target.read_bytes().decode("utf-8")
        assert text.startswith("\ufeffquery,name,type")
        assert text.count("query,name,type") == 1
        assert text.count("\ufeff") == 1
    if format == "jsonl":  # the parts in their order (the rows of each in completion order)
        firsts = [p.first_line for p in parts]
        order = [bisect.bisect_right(firsts, row["line"]) - 1 for row in rows]
        assert order == sorted(order)


class FailingOnce:
    """Lines of a partition, failing once (a marker file says it did) after half of them."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __call__(self, lines: list[bytes]) -> Iterator[bytes]:
        for k, line in enumerate(lines):
            if k == len(lines) // 2 and not self.marker.exists():
                self.marker.touch()
                raise OSError("the input went away")
            yield line


def test_a_partition_failing_midway_leaves_no_part(
    server: LoopbackDNSServer, hosts: Path, tmp_path: Path
) -> None:
    """The rows written before the failure stay in a temporary file, never in a part; the
    run again writes every part whole."""
    lines = read_lines([str(hosts)], blocksize=4096)
    counts = lines.map_partitions(count_partition).compute()
    counted = list(itertools.accumulate(counts[:-1], initial=1))  # failing can't be counted
    failing = lines.map_partitions(FailingOnce(tmp_path / "failed"))
    out = tmp_path / "parts"
    parts = resolve_to_parts(
        failing, str(out), ["A"], first_lines=counted, nameservers=[server.nameserver]
    )
    with pytest.raises(OSError, match="the input went away"):
        parts.compute()
    left = os.listdir(out)  # the parts done before the failure (some are empty)
    assert all(re.fullmatch(r"part-\d{5}\.jsonl", name) for name in left)  # no temporary
    assert len(left) < lines.npartitions
    expected = one_process_rows(hosts, server.nameserver, ["A"]).keys()
    bounds = [*counted, counted[-1] + counts[-1]]
    for name in left:  # each one whole: every row of its lines
        k = int(name[5:10])
        rows = read_part(str(out / name), "jsonl")
        assert keyed(rows).keys() == {
            key for key in expected if bounds[k] <= key[0] < bounds[k + 1]
        }
    done = parts.compute()
    rows = [row for p in done for row in read_part(p.path, "jsonl")]
    assert keyed(rows).keys() == expected


def test_temporary_names_are_told_from_parts() -> None:
    assert is_temporary(".part-00003.jsonl.4242-0a1b2c3d.tmp")
    assert is_temporary(".part-00003.db.4242-0a1b2c3d.tmp-wal")  # SQLite's journal of one
    assert not is_temporary("part-00003.jsonl")
    assert not is_temporary("manifest.json")


def test_default_partition_size_spreads_the_work_within_bounds() -> None:
    assert partition_size(100 << 20, 2) == 4 << 20  # large: the most, 4 MiB
    assert partition_size(8 << 20, 2) == 1 << 20  # 4 partitions a thread
    assert partition_size(1000, 2) == 64 << 10  # small: the least, 64 KiB


def test_budget_splits_the_rate_between_partitions_at_once() -> None:
    plain = Settings()
    assert budget(plain, 1000.0, 4).rate == 250.0
    assert budget(plain, 1000.0, 4).slots is None  # no cluster: nothing to hold
    assert budget(plain, 1000.0, None).rate == 1000.0 / dask.system.CPU_COUNT
    assert budget(plain, None, 4).rate is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "2"], "leave out --workers"),
        (["--resume", "-o", "{tmp}/out.jsonl"], "nothing to resume"),
        (["-o", "{tmp}/busy/"], "is not empty"),
        (["--dask", "local:x", "-o", "{tmp}/out.jsonl"], "needs a number of workers"),
        (["--format", "sqlite"], "SQLite output needs a file"),
    ],
)
def test_cli_refuses_before_any_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("a.test\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("not a part\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if "--dask" not in argv:
        argv += ["--dask", "local:1"]
    assert main(["resolve", str(hosts), "-n", "127.0.0.1:1", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_compressed_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hosts = tmp_path / "hosts.txt.gz"
    hosts.write_bytes(gzip.compress(b"a.test\n"))
    code = main(["resolve", str(hosts), "--dask", "local:1", "-o", str(tmp_path / "o.jsonl")])
    assert code == 2
    assert "is compressed (gzip)" in capsys.readouterr().err
