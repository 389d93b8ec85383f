"""The aiodns engine: every query through `aiodns.DNSResolver.query_dns`, aiodns' public API.

It exists so an application that already has an `aiodns.DNSResolver` (aiohttp's
`AsyncResolver` is one) can hand it over and have one DNS configuration for both. aiodns
gives a Future per query and, from a c-ares error code, no rcode and no answering server:

- statuses come from c-ares' error codes, as in the c-ares engine: `ENOTFOUND` is
  NXDOMAIN, `ENODATA` NODATA, `ESERVFAIL` SERVFAIL, `EREFUSED` REFUSED, `ETIMEOUT`
  TIMEOUT, the rest ERROR; an NXDOMAIN or SERVFAIL comes without its CNAME chain;
- `server` is the nameserver when the engine made the aiodns resolver for exactly one;
  None otherwise (c-ares does not say which of several answered; a handed-over resolver
  does not say its ports);
- c-ares makes the tries and picks the servers itself (`tries` attempts per server) and
  times attempts its own way (its adaptive timeout); there are no per-server counters.

c-ares caches answers for their TTL and pycares cannot turn that off: the engine starts a
fresh aiodns resolver of its own every `recycle_after` queries (a handed-over one keeps
its cache: it is the application's). Cancelling an aiodns Future does not stop the
c-ares query, so none is cancelled: `aclose()` answers what is in flight itself and
closes only the resolvers it made.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import aiodns
import pycares

from resolver.engines import CLOSED, Done, ServerStats
from resolver.engines.cares import RECYCLE_AFTER, outcome_of, parse_answer
from resolver.model import ConfigError, Query, Result, Source, Status

__all__ = ["AiodnsEngine"]

log = logging.getLogger(__name__)


#: An attempt c-ares times out with more than this (and a tenth of the timeout) left was
#: ended early by c-ares' adaptive timeout (as in the c-ares engine).
_EARLY = 0.05


class _Channel:
    """One aiodns resolver and the queries it has in flight."""

    __slots__ = ("in_flight", "resolver", "sent")

    def __init__(self, resolver: aiodns.DNSResolver) -> None:
        self.resolver = resolver
        self.in_flight = 0
        self.sent = 0


class _Pending:
    """A query waiting for its aiodns Future."""

    __slots__ = ("again", "done", "ended", "query", "started")

    def __init__(self, query: Query, done: Done, started: float) -> None:
        self.query = query
        self.done = done
        self.started = started
        self.ended = False  # its result was given (by a Future or by aclose)
        self.again = False  # asked once more (an early timeout, a malformed response)


class AiodnsEngine:
    """Resolve queries with aiodns: the caller's `resolver`, or resolvers of its own for
    `nameservers` (None: the system's), `timeout` (c-ares' first-attempt timeout) and
    `tries` (attempts in all, rounded up to a whole number per server)."""

    def __init__(
        self,
        nameservers: Sequence[str] | None,
        *,
        timeout: float,
        tries: int,
        resolver: aiodns.DNSResolver | None = None,
        recycle_after: int = RECYCLE_AFTER,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        if resolver is not None and resolver.loop is not self._loop:
            raise ConfigError("the aiodns resolver belongs to another event loop")
        self._own = resolver is None
        self._recycle_after = recycle_after
        self._timeout = timeout
        self._nameservers = list(nameservers) if nameservers else None
        self._tries = math.ceil(tries / len(self._nameservers or [None]))
        #: The nameserver every reply comes from, when the engine knows exactly one.
        self._server = nameservers[0] if nameservers and len(nameservers) == 1 else None
        self._channel = _Channel(resolver or self._new_resolver(timeout, self._tries))
        self._retired: set[_Channel] = set()  # closed once their queries have ended
        self._pending: set[_Pending] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    def _new_resolver(self, timeout: float, tries: int) -> aiodns.DNSResolver:
        return aiodns.DNSResolver(
            self._nameservers,
            loop=self._loop,
            timeout=timeout,
            tries=tries,
            flags=pycares.ARES_FLAG_NOSEARCH,
        )

    def stats(self) -> list[ServerStats]:
        """No per-server counters: c-ares keeps them to itself."""
        return []

    def submit(self, query: Query, done: Done) -> None:
        """Send `query`; `done` gets its `Result` from the loop."""
        pending = _Pending(query, done, time.perf_counter())
        if self._closed:
            self._loop.call_soon(done, _result(pending, Status.ERROR, error=CLOSED))
            return
        channel = self._channel
        if self._own and channel.sent >= self._recycle_after:
            log.debug("aiodns resolver replaced after %d queries (bounds its cache)", channel.sent)
            self._retire(channel)
            channel = self._channel = _Channel(self._new_resolver(self._timeout, self._tries))
        self._ask(channel, pending)

    def _ask(self, channel: _Channel, pending: _Pending) -> None:
        query = pending.query
        try:
            future = channel.resolver.query_dns(query.name, query.type.name)
        except Exception as exc:  # a handed-over resolver that was closed, say
            self._loop.call_soon(pending.done, _result(pending, Status.ERROR, error=str(exc)))
            return
        channel.sent += 1
        channel.in_flight += 1
        self._pending.add(pending)
        future.add_done_callback(functools.partial(self._on_done, channel, pending))

    def _retire(self, channel: _Channel) -> None:
        """Close one of our resolvers now, or once its queries have ended."""
        if channel.in_flight:
            self._retired.add(channel)
            return
        self._retired.discard(channel)
        task = self._loop.create_task(channel.resolver.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _on_done(self, channel: _Channel, pending: _Pending, future: asyncio.Future[Any]) -> None:
        channel.in_flight -= 1
        if channel in self._retired:
            self._retire(channel)
        error = None if future.cancelled() else future.exception()  # always retrieved
        if pending.ended:
            return
        self._pending.discard(pending)
        try:
            result = self._result_of(pending, future, error)
        except Exception as exc:  # a reply that cannot be read: the query still ends
            result = _result(pending, Status.ERROR, error=f"unreadable reply: {exc}")
        if result is not None:
            pending.ended = True
            pending.done(result)

    def _result_of(
        self, pending: _Pending, future: asyncio.Future[Any], error: BaseException | None
    ) -> Result | None:
        """The result of `pending`'s Future, or None when it was asked again."""
        if future.cancelled():
            return _result(pending, Status.ERROR, error=CLOSED)
        if error is None:
            status, fields = parse_answer(pending.query, future.result().answer)
            return _result(pending, status, server=self._server, **fields)
        if not isinstance(error, aiodns.error.DNSError) or not error.args:
            return _result(pending, Status.ERROR, error=str(error) or repr(error))
        errno = error.args[0]
        if self._own and not pending.again and not self._closed:
            again = self._again(pending, errno)
            if again is not None:
                # Once more, on a resolver (so a socket) of its own: a garbage datagram or
                # a failed send fails every query on the socket, and c-ares' adaptive timeout
                # may give up before `timeout` (a new resolver has no latency history).
                pending.again = True
                lone = _Channel(self._new_resolver(*again))
                self._ask(lone, pending)
                self._retire(lone)
                return None
        outcome = outcome_of(errno)  # the server: replied, or was asked last
        return _result(pending, outcome.status, error=outcome.error, server=self._server)

    def _again(self, pending: _Pending, errno: int) -> tuple[float, int] | None:
        """(timeout, tries) to ask `pending` again with after c-ares error `errno`, or
        None: the rest of the timeout after an early timeout, all of it after a malformed
        response or a refused connection (maybe another name's garbage, or a send that
        failed: c-ares reports EPERM and ENOBUFS so, for every query on the socket)."""
        if errno in (pycares.errno.ARES_EBADRESP, pycares.errno.ARES_ECONNREFUSED):
            return self._timeout, self._tries
        left = self._timeout - (time.perf_counter() - pending.started)
        if errno == pycares.errno.ARES_ETIMEOUT and left > max(_EARLY, self._timeout / 10):
            return left, 1
        return None

    async def aclose(self) -> None:
        """Answer what is in flight with an ERROR result and close the resolvers made here
        (a handed-over resolver stays open: its queries end as c-ares ends them)."""
        if self._closed:
            return
        self._closed = True
        pending, self._pending = self._pending, set()
        for waiting in pending:
            if not waiting.ended:
                waiting.ended = True
                waiting.done(_result(waiting, Status.ERROR, error=CLOSED))
        if self._own:
            for channel in (*self._retired, self._channel):
                await channel.resolver.close()
            self._retired.clear()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _result(pending: _Pending, status: Status, **fields: Any) -> Result:
    elapsed = time.perf_counter() - pending.started
    return Result.for_query(pending.query, status, source=Source.DNS, elapsed=elapsed, **fields)
