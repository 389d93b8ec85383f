"""What an embedding application sees besides results: progress counters while a stream
runs, and stdlib logging under the `resolver` logger (silent unless configured)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys

import pytest

from resolver import ConfigError, Counters, Resolver, Status
from resolver.engines.cares import CaresEngine
from resolver.model import Query, RecordType, Result
from resolver.testing import Fault
from resolver.testing.pytest_plugin import ServerFactory
from tests.zones import ZONE


async def test_progress_counts_what_is_done_in_flight_and_per_status(
    dns_server_factory: ServerFactory,
) -> None:
    server = await dns_server_factory(ZONE)
    server.set_fault(None, Fault.DELAY, delay=0.02)
    names = ["www.zone.test", "bad..name", *(f"n{i}.zone.test" for i in range(60))]
    seen: list[Counters] = []
    async with Resolver([server.nameserver], concurrency=10, fallback="never") as r:
        stream = r.resolve_many(names, on_progress=seen.append, progress_every=0.03)
        results = []
        async for result in stream:
            results.append(result)
            now = stream.counters()
            assert now.done == len(results)
            assert 0 <= now.in_flight <= 10
    assert len(results) == 62
    *during, last = seen
    assert during, "no progress while the stream ran"
    assert [c.done for c in seen] == sorted(c.done for c in seen)
    assert any(0 < c.in_flight <= 10 for c in during)
    assert (last.done, last.in_flight) == (62, 0)
    assert last.statuses == {Status.NOERROR: 1, Status.INVALID: 1, Status.NXDOMAIN: 60}
    (stats,) = last.servers
    assert (stats.nameserver, stats.answered) == (server.nameserver, 61)
    assert last.elapsed > 0
    assert last.rate == last.done / last.elapsed


async def test_progress_counts_batches_and_stops_with_the_stream(
    dns_server_factory: ServerFactory,
) -> None:
    server = await dns_server_factory(ZONE)
    seen: list[Counters] = []
    async with Resolver([server.nameserver], fallback="never") as r:
        stream = r.resolve_many(["www.zone.test"] * 5, on_progress=seen.append)
        async for _ in stream.batches():
            pass
        await asyncio.sleep(0)
    assert [(c.done, c.statuses) for c in seen] == [(5, {Status.NOERROR: 5})]


def test_progress_every_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="progress_every"):
        Resolver(["127.0.0.1"]).resolve_many([], progress_every=0)


@pytest.mark.parametrize("engine", ["wire", "cares"])
async def test_setting_a_server_aside_is_logged(
    dns_server_factory: ServerFactory, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead, good = await dns_server_factory(ZONE), await dns_server_factory(ZONE)
    dead.set_fault(None, Fault.DROP)
    names = [f"n{i}.zone.test" for i in range(20)]
    async with Resolver(
        [dead.nameserver, good.nameserver], engine=engine, timeout=0.1, tries=4, concurrency=10
    ) as r:
        with caplog.at_level(logging.WARNING, logger="resolver"):
            results = [x async for x in r.resolve_many(names)]
    assert {x.status for x in results} == {Status.NXDOMAIN}
    aside = [rec for rec in caplog.records if "set aside" in rec.getMessage()]
    assert aside
    assert all(rec.name == "resolver.engines" for rec in aside)
    assert all(rec.levelno == logging.WARNING for rec in aside)
    assert {dead.nameserver} == {rec.args[0] for rec in aside if isinstance(rec.args, tuple)}


async def test_falling_back_is_logged(
    dns_server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await dns_server_factory(ZONE)
    async with Resolver([server.nameserver], fallback="always") as r:
        with caplog.at_level(logging.DEBUG, logger="resolver"):
            result = await r.lookup("nope.zone.test")
    assert result.status is Status.NXDOMAIN
    assert [(rec.name, rec.getMessage()) for rec in caplog.records] == [
        ("resolver.core", "nope.zone.test A: NXDOMAIN from DNS, the hosts file has nothing")
    ]


async def test_recycling_a_channel_is_logged(
    dns_server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = await dns_server_factory(ZONE)
    engine = CaresEngine([server.nameserver], timeout=1, tries=1, recycle_after=2)
    loop = asyncio.get_running_loop()
    answers = [loop.create_future() for _ in range(3)]
    try:
        with caplog.at_level(logging.DEBUG, logger="resolver"):
            for i, answer in enumerate(answers):
                query = Query("www.zone.test", RecordType.A, "www.zone.test", i)
                engine.submit(query, answer.set_result)
            results: list[Result] = await asyncio.wait_for(asyncio.gather(*answers), 5)
    finally:
        await engine.aclose()
    assert {x.status for x in results} == {Status.NOERROR}
    assert [rec.getMessage() for rec in caplog.records] == [
        f"c-ares channel to {server.nameserver} replaced after 2 queries (bounds its cache)"
    ]


def test_the_logger_is_silent_unless_configured() -> None:
    """No handler of the application's: nothing reaches stderr (not even warnings)."""
    code = (
        "import logging, resolver;"
        " logging.getLogger('resolver.engines').warning('nameserver set aside');"
        " logging.getLogger('other').warning('shown')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stderr == "shown\n"
