"""Engine details that the Resolver tests cannot see from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from resolver import Query, RecordType, Result, Status
from resolver.engines import CLOSED
from resolver.engines.cares import CaresEngine
from resolver.testing import Fault, LoopbackDNSServer
from tests._env import require_sandbox
from tests.zones import ZONE

MakeServer = Callable[..., Awaitable[LoopbackDNSServer]]


async def test_cares_channel_is_recycled_without_losing_queries(
    dns_server_factory: MakeServer,
) -> None:
    server = await dns_server_factory(ZONE)
    engine = CaresEngine([server.nameserver], timeout=1, tries=2, recycle_after=7)
    results: list[Result] = []
    finished = asyncio.Event()
    names = ["www.zone.test", "v4.zone.test", "nothing.zone.test"] * 20

    def done(result: Result) -> None:
        results.append(result)
        if len(results) == len(names):
            finished.set()

    try:
        for i, name in enumerate(names):
            engine.submit(Query(name, RecordType.A, name, line=i + 1), done)
            if i % 5 == 0:
                await asyncio.sleep(0)  # let some finish while others are in flight
        await asyncio.wait_for(finished.wait(), 10)
    finally:
        await engine.aclose()
    assert sorted(r.line for r in results) == list(range(1, 61))
    by_name = {r.name: r.status for r in results}
    assert by_name == {
        "www.zone.test": Status.NOERROR,
        "v4.zone.test": Status.NOERROR,
        "nothing.zone.test": Status.NXDOMAIN,
    }
    # Each recycled channel asked again: the cache did not follow across channels.
    assert server.count("www.zone.test") >= 60 // 7 // 3


async def test_cares_engine_takes_the_system_nameservers() -> None:
    """Without nameservers, the c-ares engine asks c-ares for the system's list (in the
    sandbox, /etc/resolv.conf says 127.0.0.1) and keeps a channel and counters for each;
    nothing is sent here."""
    require_sandbox()
    engine = CaresEngine(None, timeout=1, tries=2)
    try:
        assert engine.servers == ["127.0.0.1:53"]
        assert [s.nameserver for s in engine.stats()] == ["127.0.0.1:53"]
        assert engine.stats()[0].sent == 0
    finally:
        await engine.aclose()


async def test_cares_engine_answers_what_is_in_flight_when_closed(
    dns_server_factory: MakeServer,
) -> None:
    """aclose() answers every query in flight, on every server's channel, as ERROR."""
    servers = [await dns_server_factory(ZONE) for _ in range(2)]
    for server in servers:
        server.set_fault(None, Fault.DROP)
    engine = CaresEngine([s.nameserver for s in servers], timeout=5, tries=2)
    results: list[Result] = []
    for i in range(10):
        engine.submit(Query("www.zone.test", RecordType.A, "www.zone.test", line=i), results.append)
    await asyncio.sleep(0.05)
    await engine.aclose()
    await asyncio.sleep(0)
    assert len(results) == 10
    assert {(r.status, r.error) for r in results} == {(Status.ERROR, CLOSED)}
    assert {r.server for r in results} == {s.nameserver for s in servers}  # the ones asked
    assert [s.count() for s in servers] == [5, 5]  # spread over both
