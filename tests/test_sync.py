"""The synchronous face (`resolver.resolve`, `resolver.iter_resolve`) and `Result.to_dict`,
against the loopback test server in a thread of its own."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator

import pytest
import uvloop

import resolver
from resolver import ConfigError, RecordType, Resolver, Status
from resolver.model import FIELDS, record
from resolver.testing import LoopbackDNSServer, serve_in_thread
from tests.zones import ZONE

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackDNSServer]:
    with serve_in_thread(ZONE) as running:
        yield running


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_factory(request: pytest.FixtureRequest) -> LoopFactory:
    return asyncio.new_event_loop if request.param == "asyncio" else uvloop.new_event_loop


def sync_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "resolver-sync"]


def test_resolve_gives_every_result_in_input_order(
    server: LoopbackDNSServer, loop_factory: LoopFactory
) -> None:
    names = ["www.zone.test", "bad..name", "192.0.2.1", "# comment", "nope.zone.test"]
    results = resolver.resolve(names, ["AAAA", "A"], [server.nameserver], loop_factory=loop_factory)
    assert [(r.line, r.type.name, r.status) for r in results] == [
        (1, "AAAA", Status.NOERROR),
        (1, "A", Status.NOERROR),
        (2, "AAAA", Status.INVALID),
        (2, "A", Status.INVALID),
        (3, "PTR", Status.NOERROR),
        (5, "AAAA", Status.NXDOMAIN),
        (5, "A", Status.NXDOMAIN),
    ]
    assert sorted(map(str, results[1].answers)) == ["192.0.2.1", "192.0.2.2"]
    assert not sync_threads()


def test_a_string_is_one_name_and_one_type(server: LoopbackDNSServer) -> None:
    (result,) = resolver.resolve("www.zone.test", "AAAA", [server.nameserver])
    assert (result.type, [str(a) for a in result.answers]) == (RecordType.AAAA, ["2001:db8::1"])


def test_iter_resolve_streams_a_long_input_lazily(
    server: LoopbackDNSServer, loop_factory: LoopFactory
) -> None:
    """Results come while the input is still being read (memory bounded by the window);
    leaving early stops the lookups and the thread that runs them."""
    read = 0

    def names() -> Iterator[str]:
        nonlocal read
        for i in range(100_000):
            read += 1
            yield f"n{i}.zone.test"

    stream = resolver.iter_resolve(
        names(), nameservers=[server.nameserver], concurrency=20, loop_factory=loop_factory
    )
    assert read == 0  # nothing starts before the first next()
    first = [next(stream) for _ in range(50)]
    assert {r.status for r in first} == {Status.NXDOMAIN}
    assert read < 10_000
    stream.close()
    assert not sync_threads()
    assert read < 10_000


def test_settings_and_types_are_checked_at_the_call(server: LoopbackDNSServer) -> None:
    with pytest.raises(ConfigError):
        resolver.iter_resolve(["www.zone.test"], nameservers=["not-an-ip"])
    with pytest.raises(ValueError, match="unknown record type"):
        resolver.resolve(["www.zone.test"], ["BOGUS"], [server.nameserver])
    with pytest.raises(ConfigError, match="no record type"):
        resolver.resolve(["www.zone.test"], [], [server.nameserver])  # not silently nothing
    both = resolver.resolve("www.zone.test", "A,AAAA", [server.nameserver])  # as -t takes it
    assert [r.type.name for r in both] == ["A", "AAAA"]
    with pytest.raises(ConfigError):
        resolver.resolve(["www.zone.test"], nameservers=[server.nameserver], timeout=0)


def test_a_failing_input_raises_in_the_caller(server: LoopbackDNSServer) -> None:
    def names() -> Iterator[str]:
        yield "www.zone.test"
        raise OSError("the input broke")

    with pytest.raises(OSError, match="the input broke"):
        resolver.resolve(names(), nameservers=[server.nameserver])
    assert not sync_threads()


async def test_inside_a_running_loop_is_a_clear_error(server: LoopbackDNSServer) -> None:
    """Not a hang: a notebook (which runs a loop) is told to await the async API."""
    with pytest.raises(RuntimeError, match=r"running event loop.*await"):
        resolver.resolve(["www.zone.test"], nameservers=[server.nameserver])
    with pytest.raises(RuntimeError, match="running event loop"):
        resolver.iter_resolve(["www.zone.test"], nameservers=[server.nameserver])
    async with Resolver([server.nameserver]) as r:  # the way the message gives
        assert [x.status async for x in r.resolve_many(["www.zone.test"])] == [Status.NOERROR]


def test_to_dict_is_the_writers_record_in_plain_types(server: LoopbackDNSServer) -> None:
    results = resolver.resolve(
        ["www.zone.test", "zone.test", "alias2.zone.test", "bad..name"],
        ["A", "MX"],
        [server.nameserver],
    )
    rows = [r.to_dict() for r in results]
    assert rows == [record(r) for r in results]
    assert all(tuple(row) == FIELDS for row in rows)
    assert json.loads(json.dumps(rows)) == rows  # nothing but JSON's types
    by_key = {(row["line"], row["type"]): row for row in rows}
    assert sorted(by_key[1, "A"]["answers"]) == ["192.0.2.1", "192.0.2.2"]
    assert by_key[2, "MX"]["answers"] == ["10 mx1.zone.test", "20 mx2.zone.test"]
    assert by_key[3, "A"]["cnames"] == ["alias.zone.test", "www.zone.test"]
    assert (by_key[4, "A"]["status"], by_key[4, "A"]["source"]) == ("INVALID", "none")
