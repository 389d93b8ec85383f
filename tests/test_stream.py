"""Pipeline pieces with a virtual clock: no real waiting, no wall-clock assertions."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from resolver import Resolver, Status
from resolver.stream import RateLimit, Window
from resolver.testing import Zone
from resolver.testing.pytest_plugin import ServerFactory


class Clock:
    """Stands in for time.monotonic and asyncio.sleep: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake.monotonic)
    monkeypatch.setattr(asyncio, "sleep", fake.sleep)
    return fake


@pytest.mark.parametrize("rate", [5.0, 100.0, 20_000.0])
async def test_rate_limit_keeps_the_average_rate(clock: Clock, rate: float) -> None:
    limit = RateLimit(rate)
    start = clock.now
    count = int(rate * 10)
    for _ in range(count):
        await limit.acquire()
    elapsed = clock.now - start
    # After the first burst, every token costs 1/rate: the average is the rate.
    assert (count - limit.burst) / rate <= elapsed <= count / rate + 0.01


async def test_rate_limit_bursts_are_bounded(clock: Clock) -> None:
    limit = RateLimit(1000.0, burst=10)
    clock.now += 3600  # a long pause does not bank more than one burst
    start = clock.now
    for _ in range(10):
        await limit.acquire()
    assert clock.now == start  # the burst is free
    await limit.acquire()
    assert clock.now > start  # the next one waits


def test_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimit(0)


async def test_window_takes_what_is_free_in_one_go() -> None:
    window = Window(10)
    assert await window.take(4) == 4
    assert await window.take(100) == 6
    assert window.free == 0
    window.give(6)
    assert (window.free, await window.take(1)) == (6, 1)


async def test_window_waiters_are_woken_in_order() -> None:
    window = Window(2)
    await window.take(2)
    order: list[str] = []

    async def taker(name: str, most: int) -> None:
        order.append(f"{name} took {await window.take(most)}")

    first = asyncio.create_task(taker("first", 5))
    await asyncio.sleep(0)
    second = asyncio.create_task(taker("second", 1))
    await asyncio.sleep(0)
    assert order == []  # both wait: nothing is free
    window.give(1)
    await first
    assert order == ["first took 1"]
    window.give(1)
    await second
    assert order == ["first took 1", "second took 1"]


async def test_a_waiter_cancelled_after_its_wake_up_passes_the_turn_on() -> None:
    window = Window(1)
    await window.take()
    first = asyncio.create_task(window.take())
    second = asyncio.create_task(window.take())
    await asyncio.sleep(0)
    window.give()  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    assert await second == 1
    assert first.cancelled()
    assert window.free == 0


async def test_batches_give_every_result_once_within_the_window(
    dns_server_factory: ServerFactory,
) -> None:
    zone: Zone = {
        "zone.test": {"SOA": ["ns.zone.test h.zone.test 1 3600 600 86400 60"]},
        **{f"h{i}.zone.test": {"A": [f"192.0.2.{i}"]} for i in range(20)},
    }
    server = await dns_server_factory(zone)
    lines = [f"h{i}.zone.test" for i in range(25)] + ["bad name!"]
    async with Resolver([server.nameserver], concurrency=3, fallback="never") as r:
        async with r.resolve_many(lines) as stream:
            batches = [batch async for batch in stream.batches()]
        assert r.window.free == 3  # every place given back
    results = [result for batch in batches for result in batch]
    assert sorted(result.line for result in results) == list(range(1, 27))
    assert all(1 <= len(batch) <= 3 for batch in batches)  # never more than the window
    statuses = Counter(result.status for result in results)
    assert statuses == {Status.NOERROR: 20, Status.NXDOMAIN: 5, Status.INVALID: 1}


async def test_idle_batches_come_while_the_input_is_slow(
    dns_server_factory: ServerFactory,
) -> None:
    """`batches(idle=S)`: an empty list after each S seconds without a result, so a writer
    can flush while the input stalls; without `idle`, only results."""
    zone: Zone = {
        "zone.test": {"SOA": ["ns.zone.test h.zone.test 1 3600 600 86400 60"]},
        "a.zone.test": {"A": ["192.0.2.1"]},
        "b.zone.test": {"A": ["192.0.2.2"]},
    }
    server = await dns_server_factory(zone)

    async def slow_lines() -> AsyncIterator[str]:
        yield "a.zone.test"
        await asyncio.sleep(0.5)
        yield "b.zone.test"

    async with Resolver([server.nameserver], fallback="never") as r:
        async with r.resolve_many(slow_lines()) as stream:
            idle = [[result.line for result in batch] async for batch in stream.batches(idle=0.1)]
        async with r.resolve_many(slow_lines()) as stream:
            plain = [[result.line for result in batch] async for batch in stream.batches()]
    assert [batch for batch in idle if batch] == [[1], [2]]
    assert idle.index([1]) < idle.index([]) < idle.index([2])
    assert 1 <= idle.count([]) <= 6  # about one per 0.1 s of the 0.5 s stall
    assert plain == [[1], [2]]
