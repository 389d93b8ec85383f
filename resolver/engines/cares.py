"""The c-ares engine: one long-lived pycares channel driven by the event loop itself.

The channel's sockets are watched with `loop.add_reader` (c-ares' socket-state callback),
so replies are processed on the loop thread: no event thread, no `call_soon_threadsafe`
hand-off and no Future per query, just one callback per answer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import pycares

from resolver.engines import CLOSED, REFUSED, SERVFAIL, TIMEOUT, Done
from resolver.model import CAA, MX, SOA, SRV, Answer, Query, RecordType, Result, Source, Status
from resolver.wire import render_text

__all__ = ["CaresEngine"]

_E = pycares.errno

#: c-ares error code -> (status, message, retry?). Retried codes are faults of one
#: exchange, not answers: a garbage datagram fails every query in flight on its socket.
_ERRORS: dict[int, tuple[Status, str | None, bool]] = {
    _E.ARES_ENODATA: (Status.NODATA, None, False),
    _E.ARES_ENOTFOUND: (Status.NXDOMAIN, None, False),
    _E.ARES_ESERVFAIL: (Status.SERVFAIL, SERVFAIL, False),
    _E.ARES_EREFUSED: (Status.REFUSED, REFUSED, False),
    _E.ARES_ETIMEOUT: (Status.TIMEOUT, TIMEOUT, False),
    _E.ARES_EFORMERR: (Status.ERROR, "server says the query is malformed (FORMERR)", False),
    _E.ARES_ENOTIMP: (Status.ERROR, "server does not implement this query (NOTIMP)", False),
    _E.ARES_EBADRESP: (Status.ERROR, "malformed response", True),
    _E.ARES_ECONNREFUSED: (Status.ERROR, "connection refused by the nameserver", True),
    _E.ARES_EBADNAME: (Status.INVALID, "name rejected by c-ares", False),
    _E.ARES_ECANCELLED: (Status.ERROR, CLOSED, False),
    _E.ARES_EDESTRUCTION: (Status.ERROR, CLOSED, False),
}

_NO_TIMER_NEEDED = 0.0
#: CNAME steps followed within one answer; a longer chain or a loop is an ERROR.
MAX_CHAIN = 64
#: Queries per c-ares channel before a fresh one replaces it (bounds the query cache).
RECYCLE_AFTER = 10_000


def _answer(qtype: int, data: Any) -> Answer | None:
    """Convert one pycares record of type `qtype` to the model's answer."""
    match qtype:
        case RecordType.A.value:
            return IPv4Address(data.addr)
        case RecordType.AAAA.value:
            return IPv6Address(data.addr)
        case RecordType.CNAME.value:
            return str(data.cname)
        case RecordType.PTR.value:
            return str(data.dname)
        case RecordType.NS.value:
            return str(data.nsdname)
        case RecordType.MX.value:
            return MX(data.priority, data.exchange)
        case RecordType.TXT.value:
            return render_text(data.data)
        case RecordType.SRV.value:
            return SRV(data.priority, data.weight, data.port, data.target)
        case RecordType.SOA.value:
            return SOA(
                data.mname,
                data.rname,
                data.serial,
                data.refresh,
                data.retry,
                data.expire,
                data.minimum,
            )
        case RecordType.CAA.value:
            return CAA(data.critical, data.tag, render_text(str(data.value).encode()))
    return None


def parse_answer(query: Query, records: Sequence[Any]) -> tuple[Status, dict[str, Any]]:
    """Status and result fields from the answer section: follow the CNAME chain from the
    asked name, then take the records of the asked type owned by the chain's end."""
    qtype = query.type.value
    cname_of = {
        r.name.lower(): str(r.data.cname).lower()
        for r in records
        if r.type == RecordType.CNAME.value
    }
    owner, chain = query.name.lower(), list[str]()
    if qtype != RecordType.CNAME.value:
        seen = {owner}
        while owner in cname_of:
            owner = cname_of[owner]
            if owner in seen or len(chain) == MAX_CHAIN:
                error = "CNAME loop" if owner in seen else f"CNAME chain over {MAX_CHAIN} steps"
                return Status.ERROR, {"cnames": tuple(chain), "error": error}
            seen.add(owner)
            chain.append(owner)
    answers: list[Answer] = []
    ttls: list[int] = []
    for r in records:
        if r.type == qtype and r.name.lower() == owner:
            answer = _answer(qtype, r.data)
            if answer is not None:
                answers.append(answer)
                ttls.append(r.ttl)
    fields: dict[str, Any] = {"cnames": tuple(chain)}
    if not answers:
        return Status.NODATA, fields
    fields["answers"] = tuple(answers)
    fields["ttl"] = min(ttls)
    return Status.NOERROR, fields


class _Channel:
    """One pycares channel whose sockets the event loop watches."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        self._loop = loop
        self._fds: dict[int, tuple[bool, bool]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.in_flight = 0
        self.sent = 0
        self.pycares = pycares.Channel(sock_state_cb=self._on_socket_state, **options)

    def query(self, name: str, qtype: int, callback: Any) -> None:
        """Start a query (raises `AresError` if c-ares refuses it at once)."""
        self.pycares.query(name, qtype, callback=callback)
        self.in_flight += 1
        self.sent += 1
        self._arm_timer()

    def _on_socket_state(self, fd: int, readable: bool, writable: bool) -> None:
        if self._closed:
            return
        was_readable, was_writable = self._fds.pop(fd, (False, False))
        if readable != was_readable:
            if readable:
                self._loop.add_reader(fd, self.pycares.process_read_fd, fd)
            else:
                self._loop.remove_reader(fd)
        if writable != was_writable:
            if writable:
                self._loop.add_writer(fd, self.pycares.process_write_fd, fd)
            else:
                self._loop.remove_writer(fd)
        if readable or writable:
            self._fds[fd] = (readable, writable)

    def _arm_timer(self) -> None:
        if self._timer is None and not self._closed:
            delay: float = self.pycares.timeout()  # type: ignore[no-untyped-call]
            self._timer = self._loop.call_later(
                delay if delay > _NO_TIMER_NEEDED else 0.05, self._on_timer
            )

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        # Lets c-ares expire timed-out attempts and send the next try.
        self.pycares.process_fd(pycares.ARES_SOCKET_BAD, pycares.ARES_SOCKET_BAD)
        if self.in_flight:
            self._arm_timer()

    def close(self) -> None:
        """Cancel what is in flight (callbacks run now, with ARES_ECANCELLED) and release
        the sockets; idempotent."""
        if self._closed:
            return
        self.pycares.cancel()
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for fd, (readable, writable) in self._fds.items():
            if readable:
                self._loop.remove_reader(fd)
            if writable:
                self._loop.remove_writer(fd)
        self._fds.clear()
        self.pycares.close()


class CaresEngine:
    """Resolve queries through pycares, on the running event loop.

    c-ares caches every answer for its TTL and pycares cannot turn that off, so memory
    would grow with every name of a long run: after `recycle_after` queries the engine
    starts a fresh channel and closes the old one once its queries are answered.

    A datagram c-ares cannot parse makes it close the UDP socket it came on and fail
    every query in flight there with "malformed response", not only the one the garbage
    was meant for. So a query that fails that way is retried (while tries remain) on a
    channel of its own, closed when it ends: the retry has its own socket and only its
    own garbage can spoil it. (c-ares' `udp_max_queries=1` would do the same on one
    channel, but pycares 5 does not expose that option.)
    """

    def __init__(
        self,
        nameservers: Sequence[str] | None,
        *,
        timeout: float,
        tries: int,
        receive_buffer: int = 4 << 20,
        recycle_after: int = RECYCLE_AFTER,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._tries = tries
        self._recycle_after = recycle_after
        self._closed = False
        self._options: dict[str, Any] = {
            "timeout": timeout,
            "tries": tries,
            "flags": pycares.ARES_FLAG_NOSEARCH,
            "socket_receive_buffer_size": receive_buffer,
            "servers": list(nameservers) if nameservers else None,
        }
        self._channel = _Channel(self._loop, **self._options)
        # Replaced channels and one-attempt channels, closed when their queries end.
        self._retired: set[_Channel] = set()
        # c-ares does not say which server answered; with only one, it is that one.
        servers = self.servers
        self._server = servers[0] if len(servers) == 1 else None

    @property
    def servers(self) -> list[str]:
        """The nameservers in use, as `host:port` (from /etc/resolv.conf when not given)."""
        return list(self._channel.pycares.servers)

    def submit(self, query: Query, done: Done) -> None:
        """Send `query`; `done` gets its `Result` from the loop."""
        self._send(query, done, time.perf_counter(), 1)

    def _send(
        self, query: Query, done: Done, started: float, attempt: int, alone: bool = False
    ) -> None:
        """Send one attempt: on the shared channel, or (`alone`) on a new channel of its
        own that is closed once the attempt ends."""
        if self._closed:
            result = _result(query, started, Status.ERROR, {"error": CLOSED})
            self._loop.call_soon(done, result)
            return
        if alone:
            channel = _Channel(self._loop, **self._options)
        else:
            channel = self._channel
            if channel.sent >= self._recycle_after:
                self._retire(channel)
                channel = self._channel = _Channel(self._loop, **self._options)
        callback = functools.partial(self._on_reply, channel, query, done, started, attempt)
        try:
            channel.query(query.name, query.type.value, callback)
        except (pycares.AresError, ValueError, TypeError) as exc:
            # c-ares may refuse synchronously (bad name); answer on the next loop turn so
            # `done` is never called from inside `submit`.
            code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
            status, message, _ = _ERRORS.get(code or -1, (Status.ERROR, str(exc), False))
            result = _result(query, started, status, {"error": message or str(exc)})
            self._loop.call_soon(done, result)
        finally:
            if alone:
                self._retire(channel)  # closed now, or when its one query ends

    def _retire(self, channel: _Channel) -> None:
        if channel.in_flight:
            self._retired.add(channel)
        else:
            channel.close()

    def _on_reply(
        self,
        channel: _Channel,
        query: Query,
        done: Done,
        started: float,
        attempt: int,
        result: Any,
        errno: int | None,
    ) -> None:
        channel.in_flight -= 1
        if channel in self._retired and not channel.in_flight:
            self._retired.discard(channel)
            self._loop.call_soon(channel.close)  # not from inside its own callback
        if errno is None:
            status, fields = parse_answer(query, result.answer)
            done(_result(query, started, status, fields | {"server": self._server}))
            return
        status, message, retry = _ERRORS.get(
            errno, (Status.ERROR, f"c-ares error: {pycares.errno.strerror(errno)!s}", False)
        )
        if retry and attempt < self._tries and not self._closed:
            # Not from the query's own callback stack: c-ares is mid-processing. A
            # malformed response may have been another name's garbage that failed this
            # query with it: the next attempt gets a socket of its own.
            alone = errno == _E.ARES_EBADRESP
            self._loop.call_soon(self._send, query, done, started, attempt + 1, alone)
            return
        answered = status in (Status.NODATA, Status.NXDOMAIN, Status.SERVFAIL, Status.REFUSED)
        server = self._server if answered else None
        done(_result(query, started, status, {"error": message, "server": server}))

    async def aclose(self) -> None:
        """Cancel what is in flight (each gets an ERROR result) and release the sockets."""
        if self._closed:
            return
        self._closed = True
        for channel in (*self._retired, self._channel):
            channel.close()
        self._retired.clear()


def _result(query: Query, started: float, status: Status, fields: dict[str, Any]) -> Result:
    elapsed = time.perf_counter() - started
    return Result.for_query(query, status, source=Source.DNS, elapsed=elapsed, **fields)
