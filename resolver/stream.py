"""The bulk path: source -> bounded window of queries in flight -> results, in completion order.

One feeder coroutine reads the source in batches and submits each query through the
resolver's callback path; results land in a deque that the consumer drains. Two windows
bound it: a query holds a place in the resolver's `window` (shared by every stream and
`lookup()`) only while it is in flight, and a place in its stream's own window from
submission until its result is consumed. So memory stays bounded however long the input
and however slow the consumer, and a stream whose consumer pauses, or leaves without
closing it, never keeps other users of the resolver waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import weakref
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Container, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import Protocol

from resolver.engines import Done, ServerStats
from resolver.model import InvalidInput, Query, RecordType, Result, Status
from resolver.sources import Input, query_batches

__all__ = ["Counters", "RateLimit", "ResultStream", "Route", "Window"]


class RateLimit:
    """A token bucket: on average `rate` acquisitions per second, bursts of at most `burst`.

    Waiting sleeps for a whole batch of tokens at once (at least a millisecond), so a high
    rate costs a sleep per batch, not per query.
    """

    def __init__(self, rate: float, burst: int | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = burst if burst is not None else max(1, int(rate / 100))  # 10 ms worth
        self._tokens = float(self.burst)
        self._last = time.monotonic()

    async def acquire(self) -> None:
        """Wait for one token."""
        while True:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1 - 1e-9:  # a sleep of exactly (1 - tokens) / rate suffices
                self._tokens -= 1
                return
            await asyncio.sleep(max((1 - self._tokens) / self.rate, 0.001))


class Window:
    """Room for at most `size` queries at once, taken and given back in any number.

    Like a semaphore, but a bulk feeder takes every free place in one call and a consumer
    gives back a whole batch in one call. Waiters are woken in order.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        #: Places free now.
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def take(self, most: int = 1) -> int:
        """Wait until a place is free, then take up to `most` places; how many were taken."""
        while self.free <= 0:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: pass the turn on
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                raise
        taken = min(self.free, most)
        self.free -= taken
        if self.free > 0:
            self._wake()
        return taken

    def give(self, count: int = 1) -> None:
        """Give back `count` places."""
        self.free += count
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


@dataclass(frozen=True, slots=True)
class Counters:
    """Where a stream is (`ResultStream.counters()`, or `on_progress` of `resolve_many`)."""

    done: int  #: results yielded so far
    in_flight: int  #: queries sent and not answered yet
    statuses: dict[Status, int]  #: results yielded, per status
    #: per nameserver, a copy of the resolver's counters (`Resolver.server_stats()`)
    servers: tuple[ServerStats, ...]
    elapsed: float  #: seconds since the stream started

    @property
    def rate(self) -> float:
        """Results per second since the stream started."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


Progress = Callable[[Counters], None]


class Route(Protocol):
    """What a stream needs of the resolver that answers it (`resolver.Resolver` is one)."""

    concurrency: int
    #: Places for queries in flight, shared by every stream and lookup of the resolver.
    window: Window
    rate_limit: RateLimit | None

    def route(self) -> Callable[[Query, Done], None]:
        """The function each query of a batch is submitted through."""
        ...

    def server_stats(self) -> list[ServerStats]:
        """Per-nameserver counters so far."""
        ...


class ResultStream(AsyncIterator[Result]):
    """An async iterator of results for every line of a source (see `Resolver.resolve_many`).

    `stop()` ends the stream early but cleanly: no more input is read, the queries in
    flight still complete and are yielded, then iteration ends. `aclose()` (or leaving an
    `async with`) abandons what is left; so does dropping the stream (a bare `async for`
    left by `break`, an exception or a cancellation): once it is garbage, its feeder stops.
    """

    def __init__(
        self,
        resolver: Route,
        source: Input,
        types: Sequence[RecordType],
        share: tuple[int, int] = (0, 1),
        *,
        ordered: bool = False,
        unique: bool = False,
        skip: Container[tuple[int, str]] = (),
        on_progress: Progress | None = None,
        progress_every: float = 1.0,
    ) -> None:
        self._resolver = resolver
        self._source = source
        self._types = types
        self._share = share
        self._ordered = ordered
        self._skip = skip
        self._early: dict[int, Result] = {}  # ordered: finished before their turn
        #: unique: (name, type) -> its result, or the queries waiting for the first one.
        self._seen: dict[tuple[str, RecordType], Result | list[tuple[Query, Done]]] | None
        self._seen = {} if unique else None
        self._ready: deque[Result] = deque()
        self._wake = asyncio.Event()
        #: Results submitted and not yet consumed (the resolver's window: only in flight).
        self._window = Window(resolver.concurrency)
        self._landed = 0  # results in since the last _release
        self._release_soon = False
        self._feeder: asyncio.Task[None] | None = None
        self._stopped = False
        self._closed = False
        #: Queries (and invalid lines) submitted so far.
        self.submitted = 0
        #: Results yielded so far.
        self.yielded = 0
        self._next_in_order = 0  # ordered: the sequence number of the next to deliver
        self._statuses: Counter[Status] = Counter()  # results yielded, per status
        self._answered = 0  # queries whose result is in
        self._unasked = 0  # items that needed no query (invalid lines, repeats)
        self._started: float | None = None  # loop time of the first wait
        self._on_progress = on_progress
        self._progress_every = progress_every

    def __aiter__(self) -> ResultStream:
        return self

    async def __aenter__(self) -> ResultStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __del__(self) -> None:
        feeder = getattr(self, "_feeder", None)
        if feeder is not None and not feeder.done():
            # Garbage collection may run on any thread; a closed loop raises RuntimeError
            # (and its feeder is gone with it).
            with contextlib.suppress(RuntimeError):
                feeder.get_loop().call_soon_threadsafe(feeder.cancel)

    def _deliver(self, result: Result) -> None:
        if not self._closed:
            self._ready.append(result)
            self._wake.set()

    def _landed_here(self, result: Result) -> None:
        """A query's result is in: its place in the resolver's window is free (given back
        once per loop turn, for all the results in by then), and the result is ready."""
        self._landed += 1
        if not self._release_soon:
            self._release_soon = True
            asyncio.get_running_loop().call_soon(self._release)
        self._deliver(result)

    def _landed_then(self, deliver: Done, result: Result) -> None:
        """`_landed_here` for results that `deliver` holds back (ordered, unique)."""
        self._landed += 1
        if not self._release_soon:
            self._release_soon = True
            asyncio.get_running_loop().call_soon(self._release)
        deliver(result)

    def _release(self) -> None:
        self._release_soon = False
        landed, self._landed = self._landed, 0
        self._answered += landed
        self._resolver.window.give(landed)

    def _deliver_in_order(self, seq: int, result: Result) -> None:
        """Hold `result` until every result submitted before it has been delivered."""
        early = self._early
        early[seq] = result
        while self._next_in_order in early:
            self._deliver(early.pop(self._next_in_order))
            self._next_in_order += 1

    def _deliver_shared(self, key: tuple[str, RecordType], deliver: Done, result: Result) -> None:
        """The first lookup of a (name, type) is done: answer it and every copy waiting."""
        assert self._seen is not None
        waiting = self._seen.get(key)
        self._seen[key] = result
        deliver(result)
        if isinstance(waiting, list):
            for query, then in waiting:
                then(_answer_for(result, query))

    def _submit(self, items: Sequence[Query | InvalidInput]) -> None:
        """Submit `items`, each holding a place in both windows: a result that needs no
        query (an invalid line, a repeat under `unique`) gives the resolver's back at once."""
        # The route `Resolver.submit` takes, looked up once per batch rather than per query.
        submit, seen = self._resolver.route(), self._seen
        plain = not self._ordered and seen is None
        unasked = 0
        for item in items:
            seq = self.submitted
            self.submitted += 1
            if plain and not isinstance(item, InvalidInput):
                submit(item, self._landed_here)  # the bulk path
                continue
            deliver: Done = self._deliver
            if self._ordered:
                deliver = functools.partial(self._deliver_in_order, seq)
            if isinstance(item, InvalidInput):
                unasked += 1
                deliver(Result.for_invalid(item))
                continue
            if seen is not None:
                key = (item.name, item.type)
                known = seen.get(key)
                if isinstance(known, Result):
                    unasked += 1
                    deliver(_answer_for(known, item))
                    continue
                if known is not None:
                    unasked += 1
                    known.append((item, deliver))  # asked already: wait for that answer
                    continue
                seen[key] = []
                deliver = functools.partial(self._deliver_shared, key, deliver)
            submit(item, functools.partial(self._landed_then, deliver))
        if unasked:
            self._unasked += unasked
            self._resolver.window.give(unasked)

    async def _wait(self, idle: float | None = None) -> bool:
        """Wait until a result is ready; False when none will come any more. With `idle`,
        also True (with none ready) after `idle` seconds without a result."""
        if self._closed:
            return False
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
            if self._on_progress is not None:
                loop.call_later(self._progress_every, _tick, weakref.ref(self))
        if self._feeder is None and not self._stopped:
            self._feeder = loop.create_task(_feed(weakref.ref(self)))
            wake = self._wake  # not self: the task must not keep the stream alive
            self._feeder.add_done_callback(lambda _: wake.set())
        while not self._ready:
            feeder = self._feeder
            if (feeder is None or feeder.done()) and self.yielded == self.submitted:
                if feeder is not None and not feeder.cancelled():
                    feeder.result()  # a failure of the source itself surfaces here
                self._finish()
                return False
            self._wake.clear()
            if idle is None:
                await self._wake.wait()
                continue
            timer = loop.call_later(idle, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            if not self._ready:
                return True  # idle: nothing new for `idle` seconds
        return True

    async def __anext__(self) -> Result:
        if not self._ready and not await self._wait():
            raise StopAsyncIteration
        self._window.give(1)
        self.yielded += 1
        result = self._ready.popleft()
        self._statuses[result.status] += 1
        return result

    async def batches(self, idle: float | None = None) -> AsyncIterator[list[Result]]:
        """The results in lists of all those ready at once (cheaper than one at a time
        for a consumer that writes them out). Not to be mixed with iterating the stream
        itself. With `idle`, an empty list after each `idle` seconds without a result (a
        writer's cue to flush what it holds while the input is slow)."""
        ready = self._ready
        while ready or await self._wait(idle):
            batch = list(ready)
            ready.clear()
            self._window.give(len(batch))
            self.yielded += len(batch)
            statuses = self._statuses
            for result in batch:
                statuses[result.status] += 1
            yield batch

    def counters(self) -> Counters:
        """How far the stream is: results done, queries in flight, per status and server."""
        started = self._started
        elapsed = 0.0 if started is None else asyncio.get_running_loop().time() - started
        return Counters(
            done=self.yielded,
            in_flight=self.submitted - self._unasked - self._answered - self._landed,
            statuses=dict(self._statuses),
            servers=tuple(replace(s) for s in self._resolver.server_stats()),
            elapsed=elapsed,
        )

    def _finish(self) -> None:
        """The last `on_progress` call, once the stream has ended."""
        on_progress, self._on_progress = self._on_progress, None
        if on_progress is not None:
            on_progress(self.counters())

    @property
    def stopped(self) -> bool:
        """True once `stop()` was called (the input may not have been read to its end)."""
        return self._stopped

    def stop(self) -> None:
        """Read no more input; what is in flight still completes and is yielded."""
        self._stopped = True
        if self._feeder is not None:
            self._feeder.cancel()
        self._wake.set()

    async def aclose(self) -> None:
        """Stop reading; results still to come are dropped (their queries still give back
        their places in the resolver's window as they end)."""
        if self._closed:
            return
        self._closed = True
        if self._feeder is not None:
            self._feeder.cancel()
            await asyncio.wait({self._feeder})
        self._ready.clear()


def _tick(ref: weakref.ref[ResultStream]) -> None:
    """Call the stream's `on_progress` and again after `progress_every`, until it ends."""
    stream = ref()
    if stream is None or stream._on_progress is None or stream._closed:
        return
    stream._on_progress(stream.counters())
    asyncio.get_running_loop().call_later(stream._progress_every, _tick, ref)


async def _feed(ref: weakref.ref[ResultStream]) -> None:
    """Read the source of the stream `ref` points at and submit its queries while places
    are free. It holds the stream only between waits, so a dropped stream is collected
    (and its `__del__` cancels this) even while this waits for places."""
    stream = ref()
    assert stream is not None
    own, shared = stream._window, stream._resolver.window
    limit = stream._resolver.rate_limit
    batches = query_batches(stream._source, stream._types, stream._share, stream._skip)
    del stream
    async with aclosing(batches) as items:
        async for batch in items:
            start, end = 0, len(batch)
            while start < end:
                # Places in the stream's window are held until the results are consumed,
                # places in the resolver's while the queries are in flight.
                most = 1 if limit is not None else end - start
                held = await own.take(most)
                try:
                    taken = await shared.take(held)
                except BaseException:
                    own.give(held)
                    raise
                if taken < held:
                    own.give(held - taken)
                if limit is not None and not isinstance(batch[start], InvalidInput):
                    try:
                        await limit.acquire()
                    except BaseException:  # stopped while waiting: not taken
                        own.give(1)
                        shared.give(1)
                        raise
                stream = ref()
                if stream is None:
                    own.give(taken)
                    shared.give(taken)
                    return
                stream._submit(batch[start : start + taken])
                del stream
                start += taken


def _answer_for(result: Result, query: Query) -> Result:
    """`result` (of the same name and type) as the answer to another input line."""
    return result._replace(query=query.text, line=query.line)
