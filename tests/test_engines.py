"""Engine details that the Resolver tests cannot see from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from resolver import Query, RecordType, Result, Status
from resolver.engines.cares import CaresEngine
from resolver.testing import LoopbackDNSServer
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
