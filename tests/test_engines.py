"""Engine details that the Resolver tests cannot see from outside."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiodns
import pytest

from resolver import ConfigError, Query, RecordType, Resolver, Result, Status
from resolver.core import EngineName
from resolver.engines import CLOSED
from resolver.engines.aiodns import AiodnsEngine
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


async def test_a_handed_over_aiodns_resolver_is_asked_and_left_open(
    dns_server_factory: MakeServer,
) -> None:
    """`Resolver(aiodns_resolver=...)`: the application's resolver (its nameservers, its
    settings) answers every query; closing the Resolver answers what is still in flight
    and leaves the application's resolver open and working."""
    server = await dns_server_factory(ZONE)
    server.set_fault("slow.zone.test", Fault.DROP)
    app = aiodns.DNSResolver([server.nameserver], timeout=5, tries=1)
    try:
        r = Resolver(aiodns_resolver=app)
        assert r.engine is EngineName.AIODNS
        async with r:
            www, nope = await asyncio.gather(r.lookup("www.zone.test"), r.lookup("nope.zone.test"))
            pending = asyncio.ensure_future(r.lookup("slow.zone.test"))
            await asyncio.sleep(0.05)
        assert (www.status, nope.status) == (Status.NOERROR, Status.NXDOMAIN)
        assert sorted(map(str, www.answers)) == ["192.0.2.1", "192.0.2.2"]
        assert www.server is None  # a handed-over resolver does not say its servers' ports
        closed = await asyncio.wait_for(pending, 1)
        assert (closed.status, closed.error) == (Status.ERROR, CLOSED)
        assert server.count("www.zone.test") == 1
        still = await asyncio.wait_for(app.query_dns("v4.zone.test", "A"), 5)
        assert [str(getattr(record.data, "addr", "")) for record in still.answer] == ["192.0.2.4"]
    finally:
        await app.close()


def test_an_aiodns_resolver_goes_with_the_aiodns_engine_alone() -> None:
    async def check() -> None:
        app = aiodns.DNSResolver(["127.0.0.1"])
        try:
            with pytest.raises(ConfigError, match="aiodns engine"):
                Resolver(aiodns_resolver=app, engine="wire")
            with pytest.raises(ConfigError, match="not to both"):
                Resolver(["127.0.0.1"], aiodns_resolver=app)
        finally:
            await app.close()

    asyncio.run(check())


async def test_an_aiodns_resolver_of_another_loop_is_refused() -> None:
    other = asyncio.new_event_loop()
    app = aiodns.DNSResolver(["127.0.0.1"], loop=other)
    try:
        with pytest.raises(ConfigError, match="another event loop"):
            async with Resolver(aiodns_resolver=app):
                pass
    finally:
        app.cancel()
        await app.close()
        other.close()


async def test_aiodns_engine_replaces_its_resolver_without_losing_queries(
    dns_server_factory: MakeServer,
) -> None:
    """Every `recycle_after` queries a fresh aiodns resolver (c-ares' cache cannot be
    turned off): each asks the server again, and no query is lost on the way."""
    server = await dns_server_factory(ZONE)
    engine = AiodnsEngine([server.nameserver], timeout=1, tries=2, recycle_after=7)
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
                await asyncio.sleep(0)
        await asyncio.wait_for(finished.wait(), 10)
    finally:
        await engine.aclose()
    assert sorted(r.line for r in results) == list(range(1, 61))
    assert {r.name: (r.status, r.server) for r in results} == {
        "www.zone.test": (Status.NOERROR, server.nameserver),
        "v4.zone.test": (Status.NOERROR, server.nameserver),
        "nothing.zone.test": (Status.NXDOMAIN, server.nameserver),
    }
    assert server.count("www.zone.test") >= 60 // 7 // 3
