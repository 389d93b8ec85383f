"""The synchronous face, for scripts without an event loop: `resolve()` and `iter_resolve()`.

```python
import resolver

for result in resolver.resolve(["example.com", "192.0.2.1"], types=["A", "AAAA"]):
    print(result.to_dict())
```

Both run a `Resolver` on an event loop of their own, in a thread, so a long input streams
through `iter_resolve()` with memory bounded by `concurrency`. Neither can be called while
an event loop runs in the calling thread (an async function, a Jupyter notebook): there,
the async API is the way (`async with Resolver() as r: ...`).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any

from resolver.core import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, Fallback, Resolver
from resolver.model import Query, RecordType, Result

__all__ = ["iter_resolve", "resolve"]

Names = str | bytes | Iterable[str | bytes | Query]
Types = str | int | RecordType | Sequence[str | int | RecordType]
LoopFactory = Callable[[], asyncio.AbstractEventLoop]

#: Batches of results handed over and not yet taken by the caller, at most.
_HANDOFF = 2


def resolve(
    names: Names,
    types: Types = ("A",),
    nameservers: Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    fallback: Fallback | str = Fallback.AUTO,
    engine: str | None = None,
    rate: float | None = None,
    deadline: float | None = None,
    loop_factory: LoopFactory | None = None,
) -> list[Result]:
    """Resolve every name (a string is one name) for every type and return the results
    in input order: by line, then in the order of `types` (an IP's PTR first).

    The settings are `Resolver`'s; `loop_factory` makes the event loop (default uvloop
    when installed). Raises RuntimeError when called while an event loop is running in
    this thread (use the async API there).
    """
    asked = RecordType.parse_many(types)
    order = {t: i for i, t in enumerate(asked)}
    results = list(
        iter_resolve(
            names,
            asked,
            nameservers,
            timeout=timeout,
            tries=tries,
            concurrency=concurrency,
            fallback=fallback,
            engine=engine,
            rate=rate,
            deadline=deadline,
            loop_factory=loop_factory,
        )
    )
    results.sort(key=lambda r: (r.line, order.get(r.type, -1)))
    return results


def iter_resolve(
    names: Names,
    types: Types = ("A",),
    nameservers: Sequence[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    tries: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    fallback: Fallback | str = Fallback.AUTO,
    engine: str | None = None,
    rate: float | None = None,
    deadline: float | None = None,
    ordered: bool = False,
    unique: bool = False,
    loop_factory: LoopFactory | None = None,
) -> Generator[Result, None, None]:
    """Resolve every name of `names` (any iterable of lines, e.g. an open file, read
    lazily; a string is one name) and yield the results as they come (`ordered=True`:
    in input order; `unique`: as in `Resolver.resolve_many`).

    Settings are checked now (`ConfigError`, `ValueError` for a type); the lookups start
    with the first `next()`. Leaving the loop early stops them. Raises RuntimeError when
    called while an event loop is running in this thread (use the async API there).
    """
    _refuse_running_loop()
    resolver = Resolver(
        nameservers,
        timeout=timeout,
        tries=tries,
        concurrency=concurrency,
        fallback=fallback,
        engine=engine,
        rate=rate,
        deadline=deadline,
    )
    source: Iterable[str | bytes | Query]
    source = [names] if isinstance(names, str | bytes) else names
    return _results(resolver, source, RecordType.parse_many(types), ordered, unique, loop_factory)


def _refuse_running_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "resolver.resolve() and iter_resolve() cannot run inside a running event loop "
        "(an async function, a Jupyter notebook): there, await the async API: "
        "`async with resolver.Resolver() as r: results = [x async for x in "
        "r.resolve_many(names)]`"
    )


def _default_loop_factory() -> LoopFactory:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed where it can be
        return asyncio.new_event_loop
    factory: LoopFactory = uvloop.new_event_loop
    return factory


class _Handoff:
    """Batches from the loop's thread to the caller's, at most `_HANDOFF` not yet taken."""

    def __init__(self) -> None:
        self.items: queue.SimpleQueue[list[Result] | BaseException | None] = queue.SimpleQueue()
        self.ready = threading.Event()  # set once `loop`, `task` and `room` are
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[Any] | None = None
        self.room: asyncio.Semaphore | None = None

    def took(self) -> None:
        """The caller took a batch: room for another."""
        if self.loop is not None and self.room is not None:
            with contextlib.suppress(RuntimeError):  # the run is over: its loop is closed
                self.loop.call_soon_threadsafe(self.room.release)

    def stop(self) -> None:
        """The caller is gone: cancel the run (it closes the resolver)."""
        self.ready.wait()
        if self.loop is not None and self.task is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: the run is over
                self.loop.call_soon_threadsafe(self.task.cancel)


def _results(
    resolver: Resolver,
    source: Iterable[str | bytes | Query],
    types: list[RecordType],
    ordered: bool,
    unique: bool,
    loop_factory: LoopFactory | None,
) -> Generator[Result, None, None]:
    handoff = _Handoff()

    async def run() -> None:
        handoff.loop = asyncio.get_running_loop()
        handoff.task = asyncio.current_task()
        room = handoff.room = asyncio.Semaphore(_HANDOFF)
        handoff.ready.set()
        async with (
            resolver,
            resolver.resolve_many(source, types, ordered=ordered, unique=unique) as stream,
        ):
            async for batch in stream.batches():
                await room.acquire()
                handoff.items.put(batch)

    def thread() -> None:
        try:
            with asyncio.Runner(loop_factory=loop_factory or _default_loop_factory()) as runner:
                runner.run(run())
        except asyncio.CancelledError:
            pass  # the caller left: nobody waits for the rest
        except BaseException as exc:  # handed to the caller, raised there
            handoff.items.put(exc)
        else:
            handoff.items.put(None)
        finally:
            handoff.ready.set()

    worker = threading.Thread(target=thread, name="resolver-sync", daemon=True)
    worker.start()
    try:
        while (item := handoff.items.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            handoff.took()
            yield from item
    finally:
        handoff.stop()
        worker.join()
