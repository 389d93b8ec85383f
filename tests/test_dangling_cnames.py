"""Dangling CNAMEs: a name whose CNAME chain ends at a name that does not exist is NXDOMAIN
(RFC 6604: the rcode is the chain's end's) with the chain in the answer section; the result
keeps that chain, on the wire and c-ares engines and in every output format. So does a
SERVFAIL that comes with the chain it followed (a recursive resolver whose later zone is
broken), and NODATA after a CNAME. Checked against the project's test server and against
Knot DNS. aiodns hands over no reply with NXDOMAIN or SERVFAIL, so the aiodns engine
gives those statuses without their chain (its README limits): the tests say so."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from resolver import Resolver, Status
from resolver.testing import LoopbackDNSServer, Transport, Zone
from resolver.testing.knot import KnotServer
from tests._env import require_knot

ORIGIN = "dangle.test"
ZONE: Zone = {
    ORIGIN: {"SOA": [f"ns1.{ORIGIN} hostmaster.{ORIGIN} 1 3600 600 86400 60"]},
    f"www.{ORIGIN}": {"A": ["192.0.2.1"], "MX": [f"10 mx.{ORIGIN}"]},
    f"v6.{ORIGIN}": {"AAAA": ["2001:db8::6"]},
    f"dangling.{ORIGIN}": {"CNAME": [f"missing.{ORIGIN}"]},
    f"dangling2.{ORIGIN}": {"CNAME": [f"dangling.{ORIGIN}"]},
    f"to-v6.{ORIGIN}": {"CNAME": [f"v6.{ORIGIN}"]},
    f"alias.{ORIGIN}": {"CNAME": [f"www.{ORIGIN}"]},
    # answered SERVFAIL (with the chain so far) by ServfailAfterCname
    f"broken.{ORIGIN}": {"CNAME": [f"lame.{ORIGIN}"]},
    f"broken2.{ORIGIN}": {"CNAME": [f"broken.{ORIGIN}"]},
}
MISSING = f"missing.{ORIGIN}"
DANGLING = f"dangling.{ORIGIN}"

#: (name, type) -> (status, answers, cnames) on the test server
EXPECTED: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {
    (f"dangling.{ORIGIN}", "A"): ("NXDOMAIN", [], [MISSING]),
    (f"dangling.{ORIGIN}", "AAAA"): ("NXDOMAIN", [], [MISSING]),
    (f"dangling.{ORIGIN}", "MX"): ("NXDOMAIN", [], [MISSING]),
    (f"dangling.{ORIGIN}", "TXT"): ("NXDOMAIN", [], [MISSING]),
    (f"dangling2.{ORIGIN}", "A"): ("NXDOMAIN", [], [DANGLING, MISSING]),
    (f"to-v6.{ORIGIN}", "A"): ("NODATA", [], [f"v6.{ORIGIN}"]),
    (f"alias.{ORIGIN}", "A"): ("NOERROR", ["192.0.2.1"], [f"www.{ORIGIN}"]),
    (f"broken.{ORIGIN}", "A"): ("SERVFAIL", [], [f"lame.{ORIGIN}"]),
    (f"broken2.{ORIGIN}", "A"): ("SERVFAIL", [], [f"broken.{ORIGIN}", f"lame.{ORIGIN}"]),
    (f"nothing.{ORIGIN}", "A"): ("NXDOMAIN", [], []),
    # asked for the CNAME itself: it is the answer, no chain is followed
    (f"dangling.{ORIGIN}", "CNAME"): ("NOERROR", [MISSING], []),
}


class ServfailAfterCname(LoopbackDNSServer):
    """The zone's answers, but a question for a `broken*` name gets SERVFAIL with the
    answer section it would have had (the CNAME chain followed so far)."""

    def _handle(
        self, data: bytes, transport: Transport, client: tuple[str, int]
    ) -> tuple[bytes | None, float]:
        plan = self._plan(data, transport, client)
        reply = plan.reply
        if reply is not None and reply[13:19].lower() == b"broken":
            reply = reply[:3] + bytes([reply[3] & 0xF0 | 2]) + reply[4:]
        return reply, plan.delay


@pytest.fixture
async def server() -> Any:
    async with ServfailAfterCname(ZONE) as running:
        yield running


@pytest.fixture(params=["wire", "cares", "aiodns"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Cases = dict[tuple[str, str], tuple[str, list[str], list[str]]]


def expected_for(engine: str, cases: Cases) -> Cases:
    """`cases` as `engine` answers them: aiodns keeps no chain for NXDOMAIN or SERVFAIL."""
    if engine != "aiodns":
        return cases
    lost = ("NXDOMAIN", "SERVFAIL")
    return {key: (s, a, [] if s in lost else c) for key, (s, a, c) in cases.items()}


def fields(status: Status, answers: Any, cnames: Any) -> tuple[str, list[str], list[str]]:
    return status.value, sorted(map(str, answers)), list(cnames)


async def test_the_chain_is_kept_whatever_the_rcode(server: LoopbackDNSServer, engine: str) -> None:
    async with Resolver([server.nameserver], engine=engine, timeout=1, tries=2) as r:
        for (name, rtype), expected in expected_for(engine, EXPECTED).items():
            result = await asyncio.wait_for(r.lookup(name, rtype), 30)
            assert fields(result.status, result.answers, result.cnames) == expected, result
            assert result.server == server.nameserver, result
            assert result.ttl is None or result.status is Status.NOERROR, result


async def test_a_bulk_run_keeps_every_chain(server: LoopbackDNSServer, engine: str) -> None:
    """Many dangling names at once (the shape of a takeover hunt): each its own chain."""
    zone = dict(ZONE)
    zone.update({f"d{i}.{ORIGIN}": {"CNAME": [f"gone{i}.{ORIGIN}"]} for i in range(300)})
    async with (
        LoopbackDNSServer(zone) as bulk,
        Resolver([bulk.nameserver], engine=engine, timeout=2) as r,
    ):
        results = [x async for x in r.resolve_many(f"d{i}.{ORIGIN}" for i in range(300))]
    assert len(results) == 300
    for result in results:
        number = result.name.split(".")[0][1:]
        assert result.status is Status.NXDOMAIN, result
        chain = () if engine == "aiodns" else (f"gone{number}.{ORIGIN}",)
        assert result.cnames == chain, result


# end to end through the command line, every format


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of any output format, with `answers` and `cnames` as lists."""
    if path.suffix == ".csv":
        with path.open(newline="") as f:
            rows: list[dict[str, Any]] = list(csv.DictReader(f))
        for row in rows:
            row["answers"] = json.loads(row["answers"])
            row["cnames"] = json.loads(row["cnames"])
        return rows
    if path.suffix == ".db":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.row_factory = sqlite3.Row
            rows = [dict(row) for row in db.execute("SELECT * FROM results")]
        for row in rows:
            row["answers"] = json.loads(row["answers"])
            row["cnames"] = json.loads(row["cnames"])
        return rows
    return [json.loads(line) for line in path.read_text().splitlines()]


async def run_cli(*args: str) -> tuple[int, str]:
    """`resolver` in a subprocess (the test's loop keeps serving meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "resolver",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


async def resolve_through_cli(
    tmp_path: Path,
    nameserver: str,
    engine: str,
    suffix: str,
    cases: Cases,
) -> None:
    """Each (name, type) of `cases` on a line of its own, through `resolver resolve -o`."""
    keys = list(cases)
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("".join(f"{name}\n" for name, _ in keys))
    out = tmp_path / f"out{suffix}"
    types = ",".join(sorted({rtype for _, rtype in keys}))
    code, err = await run_cli(
        "resolve", str(hosts), "-n", nameserver, "--engine", engine, "-t", types,
        "--tries", "2", "--fallback", "never", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    got = {
        (row["name"], row["type"]): (row["status"], sorted(row["answers"]), row["cnames"])
        for row in read_rows(out)
        if (keys[int(row["line"]) - 1][1]) == row["type"]
    }
    assert got == expected_for(engine, cases)


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".db"])
async def test_every_format_keeps_the_chain(
    tmp_path: Path, server: LoopbackDNSServer, engine: str, suffix: str
) -> None:
    await resolve_through_cli(tmp_path, server.nameserver, engine, suffix, EXPECTED)


# against Knot DNS, a production authoritative server

KNOT_ORIGIN = "knot-dangle.test"
KNOT_ZONE = """\
$TTL 300
@          IN SOA   ns1 hostmaster 2024010101 3600 600 86400 300
@          IN NS    ns1
ns1        IN A     127.0.0.1
www        IN A     192.0.2.10
v6         IN AAAA  2001:db8::6
dangling   IN CNAME missing
dangling2  IN CNAME dangling
to-v6      IN CNAME v6
alias      IN CNAME www
outside    IN CNAME www.elsewhere.example.
"""
K = KNOT_ORIGIN
KNOT_EXPECTED: dict[tuple[str, str], tuple[str, list[str], list[str]]] = {
    (f"dangling.{K}", "A"): ("NXDOMAIN", [], [f"missing.{K}"]),
    (f"dangling.{K}", "AAAA"): ("NXDOMAIN", [], [f"missing.{K}"]),
    (f"dangling2.{K}", "A"): ("NXDOMAIN", [], [f"dangling.{K}", f"missing.{K}"]),
    (f"to-v6.{K}", "A"): ("NODATA", [], [f"v6.{K}"]),
    (f"alias.{K}", "A"): ("NOERROR", ["192.0.2.10"], [f"www.{K}"]),
    # out of the zone: an authoritative server answers with the CNAME alone
    (f"outside.{K}", "A"): ("NODATA", [], ["www.elsewhere.example"]),
    (f"nothing.{K}", "A"): ("NXDOMAIN", [], []),
}


@pytest.fixture(scope="module")
def knot() -> Iterator[KnotServer]:
    require_knot()
    with KnotServer(KNOT_ZONE, KNOT_ORIGIN) as running:
        yield running


@pytest.mark.knot
async def test_knot_the_chain_is_kept(knot: KnotServer, engine: str) -> None:
    async with Resolver([knot.nameserver], engine=engine, timeout=2) as r:
        for (name, rtype), expected in expected_for(engine, KNOT_EXPECTED).items():
            result = await asyncio.wait_for(r.lookup(name, rtype), 30)
            assert fields(result.status, result.answers, result.cnames) == expected, result


@pytest.mark.knot
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".db"])
async def test_knot_every_format_keeps_the_chain(
    tmp_path: Path, knot: KnotServer, engine: str, suffix: str
) -> None:
    await resolve_through_cli(tmp_path, knot.nameserver, engine, suffix, KNOT_EXPECTED)
