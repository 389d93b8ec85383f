"""Integration against Knot DNS, a production authoritative server, on loopback: a generated
zone, the CLI end to end and the library, every row checked against the zone."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resolver import Query, RecordType, Resolver, Status
from resolver.names import parse_line
from resolver.testing import LoopbackDNSServer, Zone, to_zone_file
from resolver.testing.knot import KnotServer
from tests._env import require_knot
from tests.oracle import BULK_ORIGIN, Oracle, bulk_zones, host_list

COUNT = 3000
TYPES = ["A", "AAAA", "MX", "TXT", "SRV"]
ENGINES = ["wire", "cares", "aiodns"]


@pytest.fixture(scope="module")
def zones() -> dict[str, Zone]:
    return dict(bulk_zones(COUNT))


@pytest.fixture(scope="module")
def knot(zones: dict[str, Zone]) -> Iterator[KnotServer]:
    require_knot()
    texts = {origin: to_zone_file(zone, origin) for origin, zone in zones.items()}
    main = texts.pop(BULK_ORIGIN)
    with KnotServer(main, BULK_ORIGIN, extra_zones=texts) as server:
        yield server


def check_rows(rows: list[dict[str, Any]], lines: list[str], zones: dict[str, Zone]) -> None:
    """Exactly one row per (line, type) and each one what the zone says."""
    oracle = Oracle(zones)
    expected: dict[tuple[int, str], tuple[str, list[str], list[str]]] = {}
    for number, text in enumerate(lines, start=1):
        for item in parse_line(text, number, [RecordType[t] for t in TYPES]):
            key = (number, item.type.name)
            if isinstance(item, Query):
                expected[key] = oracle.expect(item.name, item.type.name)
            else:
                expected[key] = ("INVALID", [], [])
    got = {(r["line"], r["type"]): r for r in rows}
    assert len(got) == len(rows), "a (line, type) was written twice"
    assert got.keys() == expected.keys()
    wrong = [
        (key, expected[key], (row["status"], sorted(row["answers"]), row["cnames"]))
        for key, row in got.items()
        if (row["status"], sorted(row["answers"]), row["cnames"]) != expected[key]
    ]
    assert not wrong, wrong[:5]


@pytest.mark.parametrize("engine", ENGINES)
def test_cli_against_knot(
    knot: KnotServer, zones: dict[str, Zone], tmp_path: Path, engine: str
) -> None:
    lines = host_list(COUNT)
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "resolver", "resolve", str(hosts), "-n", knot.nameserver,
         "-t", ",".join(TYPES), "--timeout", "2", "-o", str(out), "--engine", engine],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    check_rows(rows, lines, zones)
    assert {r["status"] for r in rows} == {"NOERROR", "NODATA", "NXDOMAIN", "INVALID"}


async def test_library_agrees_with_knot_and_the_test_server(
    knot: KnotServer, zones: dict[str, Zone]
) -> None:
    """The same questions to Knot and to the in-process server, through either engine,
    give the same answers."""
    lines = host_list(400)
    merged: dict[str, Any] = {}
    for zone in zones.values():
        merged.update(zone)
    async with LoopbackDNSServer(merged) as ours:
        results = {}
        for server, engine in itertools.product((knot.nameserver, ours.nameserver), ENGINES):
            async with Resolver([server], timeout=2, engine=engine) as r:
                rows = [
                    (res.line, res.type, res.status, sorted(map(str, res.answers)), res.cnames)
                    async for res in r.resolve_many(lines, types=TYPES)
                ]
                results[server, engine] = sorted(rows, key=lambda row: (row[0], row[1].value))
    reference = results[knot.nameserver, "cares"]
    for key, rows in results.items():
        assert rows == reference, key
    statuses = {row[2] for row in reference}
    assert {Status.NOERROR, Status.NODATA, Status.NXDOMAIN, Status.INVALID} <= statuses
