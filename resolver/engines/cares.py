"""The c-ares engine: long-lived pycares channels driven by the event loop itself.

The channels' sockets are watched with `loop.add_reader` (c-ares' socket-state callback),
so replies are processed on the loop thread: no event thread, no `call_soon_threadsafe`
hand-off and no Future per query, just one callback per answer.

Each channel knows one nameserver and makes one attempt; the engine makes the tries
itself, as the wire engine does: it spreads queries over the servers, sends each retry
to the next server, sets aside a server that keeps failing, counts what each server did and
knows which server answered.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address
from typing import Any, NamedTuple

import pycares
from pycares.utils import parse_name

from resolver.codec import render_text
from resolver.engines import (
    CLOSED,
    CONNECTION_REFUSED,
    REFUSED,
    SERVFAIL,
    TIMEOUT,
    Done,
    ServerHealth,
    ServerStats,
    healthy,
)
from resolver.model import CAA, MX, SOA, SRV, Answer, Query, RecordType, Result, Source, Status
from resolver.protocol import MAX_CNAME_CHAIN

__all__ = ["CaresEngine", "outcome_of", "parse_answer"]

_E = pycares.errno
log = logging.getLogger(__name__)
#: An attempt c-ares times out with more than this (and a tenth of its timeout) left was
#: ended early by c-ares' adaptive timeout, not by the configured one.
_EARLY = 0.05


class _Outcome(NamedTuple):
    """What a c-ares error code means for the attempt that got it."""

    status: Status
    error: str | None
    retry: bool = False  #: asked again (the next server) while tries remain
    failure: bool = False  #: counts against the server (it may be set aside)
    replied: bool = False  #: the server's reply (counted as answered)


#: c-ares error code -> its outcome. Timeouts, SERVFAIL, REFUSED and refused connections
#: are the server's failures. A malformed response is a fault of one exchange, not an
#: answer (a garbage datagram fails every query in flight on its socket); NOTIMP is
#: retried as c-ares itself does.
_ERRORS: dict[int, _Outcome] = {
    _E.ARES_ENODATA: _Outcome(Status.NODATA, None, replied=True),
    _E.ARES_ENOTFOUND: _Outcome(Status.NXDOMAIN, None, replied=True),
    _E.ARES_ESERVFAIL: _Outcome(Status.SERVFAIL, SERVFAIL, True, True, True),
    _E.ARES_EREFUSED: _Outcome(Status.REFUSED, REFUSED, True, True, True),
    _E.ARES_ETIMEOUT: _Outcome(Status.TIMEOUT, TIMEOUT, True, True),
    _E.ARES_EFORMERR: _Outcome(
        Status.ERROR, "server says the query is malformed (FORMERR)", replied=True
    ),
    _E.ARES_ENOTIMP: _Outcome(
        Status.ERROR, "server does not implement this query (NOTIMP)", True, replied=True
    ),
    _E.ARES_EBADRESP: _Outcome(Status.ERROR, "malformed response", True),
    _E.ARES_ECONNREFUSED: _Outcome(Status.ERROR, CONNECTION_REFUSED, True, True),
    _E.ARES_EBADNAME: _Outcome(Status.INVALID, "name rejected by c-ares"),
    _E.ARES_ECANCELLED: _Outcome(Status.ERROR, CLOSED),
    _E.ARES_EDESTRUCTION: _Outcome(Status.ERROR, CLOSED),
}

#: A send that failed (c-ares says ECONNREFUSED): a lost datagram, asked again.
_SEND_FAILED = _Outcome(Status.ERROR, "send failed (c-ares: connection refused)", True)
#: Errors c-ares gives every query in flight on a socket, whichever query caused them.
_SPOILS_SOCKET = frozenset({_E.ARES_EBADRESP, _E.ARES_ECONNREFUSED})


def outcome_of(errno: int) -> _Outcome:
    """What c-ares error code `errno` means for the attempt that got it."""
    found = _ERRORS.get(errno)
    if found is None:
        return _Outcome(Status.ERROR, f"c-ares error: {pycares.errno.strerror(errno)!s}")
    return found


_NO_TIMER_NEEDED = 0.0
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


def _follow(query: Query, records: Sequence[Any]) -> tuple[str, list[str], str | None]:
    """The CNAME chain of the answer section from the asked name: its end, the names on
    the way, and why it was cut short (a loop, too many steps) or None."""
    owner, chain = query.name.lower(), list[str]()
    if query.type is RecordType.CNAME:
        return owner, chain, None
    cname_of = {
        r.name.lower(): str(r.data.cname).lower()
        for r in records
        if r.type == RecordType.CNAME.value
    }
    seen = {owner}
    while owner in cname_of:
        owner = cname_of[owner]
        if owner in seen or len(chain) == MAX_CNAME_CHAIN:
            return (
                owner,
                chain,
                "CNAME loop" if owner in seen else f"CNAME chain over {MAX_CNAME_CHAIN} steps",
            )
        seen.add(owner)
        chain.append(owner)
    return owner, chain, None


def parse_answer(query: Query, records: Sequence[Any]) -> tuple[Status, dict[str, Any]]:
    """Status and result fields from the answer section: follow the CNAME chain from the
    asked name, then take the records of the asked type owned by the chain's end."""
    qtype = query.type.value
    owner, chain, cut = _follow(query, records)
    if cut is not None:
        return Status.ERROR, {"cnames": tuple(chain), "error": cut}
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


#: Errors whose reply's CNAME chain the result keeps: NXDOMAIN (a dangling CNAME) and
#: SERVFAIL (a resolver that followed the chain, then failed), as the wire engine does.
_CHAINED = frozenset({_E.ARES_ENOTFOUND, _E.ARES_ESERVFAIL})

Callback = Callable[[Any, int | None], None]

# pycares 5 hands a query's callback the parsed reply only on success: for NXDOMAIN it
# gives ARES_ENOTFOUND and None, though c-ares passes the reply along (and its answer
# section holds a dangling CNAME). So queries are started as `Channel.query` starts them
# (`ares_query_dnsrec`, under the channel's lock), but with a callback of ours that parses
# the reply (`pycares.parse_dnsrec`, as pycares does on success) for these errors too.
# This reaches into pycares' internals (`_ffi`, `_lib`, `Channel._capture_channel`):
# without them (another pycares), `Channel.query` is used and such chains are lost.
_ffi: Any = getattr(pycares, "_ffi", None)
_lib: Any = getattr(pycares, "_lib", None)
_WAITING: dict[Any, tuple[Callback, Any]] = {}  # handle -> (callback, its pycares channel)


def _on_dnsrec(arg: Any, status: int, timeouts: int, dnsrec: Any) -> None:
    """c-ares' callback for a query started by `_query`."""
    waiting = _WAITING.pop(arg, None)
    if waiting is None:  # called twice: the first call alone counts (as in pycares)
        return
    result = None
    if status == _E.ARES_SUCCESS or (status in _CHAINED and dnsrec != _ffi.NULL):
        try:
            result, error = pycares.parse_dnsrec(dnsrec)  # type: ignore[no-untyped-call]
        except Exception:  # the query must end all the same: an exception here is lost
            result, error = None, _E.ARES_EBADRESP
        if status == _E.ARES_SUCCESS:
            status = error or _E.ARES_SUCCESS
    waiting[0](result, None if status == _E.ARES_SUCCESS else status)


try:
    _ON_DNSREC: Any = _ffi.callback("ares_callback_dnsrec", _on_dnsrec)
    _query_dnsrec: Any = _lib.ares_query_dnsrec
    _CLASS_IN: int = _lib.ARES_CLASS_IN
    if not callable(getattr(pycares.Channel, "_capture_channel", None)):
        raise AttributeError("pycares.Channel._capture_channel")
except (AttributeError, TypeError, MemoryError):  # pragma: no cover - another pycares
    _ON_DNSREC = None


def _query(channel: pycares.Channel, name: str, qtype: int, callback: Callback) -> None:
    """`channel.query(name, qtype, callback=callback)`, but `callback` also gets the reply
    for NXDOMAIN and SERVFAIL (see `_CHAINED`); raises `AresError` as `query` does."""
    if _ON_DNSREC is None:  # pragma: no cover - another pycares
        channel.query(name, qtype, callback=callback)
        return
    handle = _ffi.new_handle(callback)
    _WAITING[handle] = (callback, channel)  # both kept alive until c-ares calls back
    try:
        with channel._capture_channel() as ares:
            status = _query_dnsrec(
                ares, parse_name(name), _CLASS_IN, qtype, _ON_DNSREC, handle, _ffi.NULL
            )
    except BaseException:
        _WAITING.pop(handle, None)
        raise
    if status != _E.ARES_SUCCESS:
        _WAITING.pop(handle, None)  # c-ares may have called back already: that call counts
        raise pycares.AresError(status, pycares.errno.strerror(status))


class _Channel:
    """One pycares channel whose sockets the event loop watches."""

    def __init__(self, loop: asyncio.AbstractEventLoop, **options: Any) -> None:
        self._loop = loop
        self._fds: dict[int, tuple[bool, bool]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self.in_flight = 0
        self.sent = 0
        #: Seconds an attempt may wait, as configured (c-ares may wait less: see CaresEngine).
        self.timeout: float = options["timeout"]
        #: Made for one query (its garbage can spoil no other).
        self.alone = False
        self.pycares = pycares.Channel(sock_state_cb=self._on_socket_state, **options)

    def query(self, name: str, qtype: int, callback: Any) -> None:
        """Start a query, counted in flight until its callback is handled.

        Raises `AresError` if c-ares refuses it at once, in which case `callback` may or
        may not have been called already (see `CaresEngine._on_reply`)."""
        self.in_flight += 1
        self.sent += 1
        try:
            _query(self.pycares, name, qtype, callback)
        finally:
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


class _Attempt:
    """One attempt at a query, on one channel: what its c-ares callback needs."""

    __slots__ = (
        "channel",
        "done",
        "ended",
        "first",
        "in_send",
        "number",
        "query",
        "sent_at",
        "server",
        "started",
    )

    def __init__(
        self,
        channel: _Channel,
        server: _Server,
        query: Query,
        done: Done,
        started: float,
        first: int,
        number: int,
    ) -> None:
        self.channel = channel
        self.server = server
        self.query = query
        self.done = done
        self.started = started  # perf_counter() at the query's first attempt
        self.first = first  # the server its first attempt went to
        self.number = number  # attempts made so far, this one included
        self.sent_at = time.perf_counter()
        #: Its callback has been handled (c-ares may call it twice: see `_on_reply`).
        self.ended = False
        #: It ended inside its own `Channel.query` call: its datagram was never sent.
        self.in_send = False


class _Server(ServerHealth):
    """One nameserver: its shared channel and, from `ServerHealth`, its health."""

    __slots__ = ("channel",)

    def __init__(self, nameserver: str) -> None:
        super().__init__(nameserver)
        self.channel: _Channel | None = None


class CaresEngine:
    """Resolve queries through pycares, on the running event loop.

    Every channel asks one nameserver and makes one attempt (`tries=1`): the engine makes
    the tries, as the wire engine does. Queries are spread over the servers: attempt k
    of a query whose first went to server f goes to server (f + k) mod n, or to the next
    one not set aside (see `ServerHealth`); each attempt waits at most `timeout` (no
    doubling: c-ares' own adaptive timeout shortens it, see below). A timeout, SERVFAIL,
    REFUSED, NOTIMP, a malformed response or a refused connection is asked again while
    tries remain; `tries` is the number of attempts in all.

    c-ares caches every answer for its TTL and pycares cannot turn that off, so memory
    would grow with every name of a long run: after `recycle_after` queries the engine
    starts a fresh channel and closes the old one once its queries are answered.

    A datagram c-ares cannot parse makes it close the UDP socket it came on and fail
    every query in flight there with "malformed response", not only the one the garbage
    was meant for. So a query that fails that way on a shared channel is asked again on a
    channel of its own, closed when it ends, without counting the spoilt attempt as a
    try: there only its own garbage can spoil it, and that counts. (c-ares'
    `udp_max_queries=1` would do the same on one channel; pycares 5 does not expose it.)
    A send that fails (EPERM from a firewall or a full conntrack table, ENOBUFS) does the
    same, reported as a refused connection: a refusal on a shared channel is asked again
    on a channel of its own as well, without counting; there a refusal from inside the
    send is a failed send (a lost datagram: a try, a send error, not the server's fault),
    and one that comes later (ICMP port unreachable) is the server's.

    Once c-ares has measured a server it times attempts at 5 x its average latency (at
    least 250 ms), whatever `timeout` says, and nothing turns that off. An attempt c-ares
    ends with more than a tenth of its timeout left is asked again, on a channel of its
    own (no latency history), for the rest of its time.
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
        self._timeout = timeout
        self._tries = tries
        self._recycle_after = recycle_after
        self._closed = False
        self._options: dict[str, Any] = {
            "tries": 1,
            "flags": pycares.ARES_FLAG_NOSEARCH,
            "socket_receive_buffer_size": receive_buffer,
        }
        if not nameservers:  # the system's, as c-ares reads them (/etc/resolv.conf)
            probe = pycares.Channel(**self._options)
            try:
                nameservers = list(probe.servers)
            finally:
                probe.close()
        self._servers = [_Server(nameserver) for nameserver in nameservers]
        if not self._servers:
            raise ValueError("c-ares found no nameserver")
        for server in self._servers:
            self._channel(server)  # now: a bad server fails here
        self._next_server = 0
        # Replaced channels and one-attempt channels, closed when their queries end.
        self._retired: set[_Channel] = set()
        self._querying = False  # inside `Channel.query` (see `_on_reply`)
        self._sending: _Attempt | None = None  # the attempt that `Channel.query` sends

    @property
    def servers(self) -> list[str]:
        """The nameservers in use, as `host:port` (from /etc/resolv.conf when not given)."""
        return [server.stats.nameserver for server in self._servers]

    def stats(self) -> list[ServerStats]:
        """Per-nameserver counters so far."""
        return [server.stats for server in self._servers]

    def submit(self, query: Query, done: Done) -> None:
        """Send `query`; `done` gets its `Result` from the loop."""
        self._next_server = (self._next_server + 1) % len(self._servers)
        self._send(query, done, time.perf_counter(), self._next_server, 0)

    def _channel(self, server: _Server) -> _Channel:
        """`server`'s shared channel, a fresh one after `recycle_after` queries."""
        channel = server.channel
        if channel is None or channel.sent >= self._recycle_after:
            if channel is not None:
                log.debug(
                    "c-ares channel to %s replaced after %d queries (bounds its cache)",
                    server.stats.nameserver,
                    channel.sent,
                )
                self._retire(channel)
            channel = server.channel = self._new_channel(server)
        return channel

    def _new_channel(self, server: _Server, timeout: float | None = None) -> _Channel:
        """A channel to `server` whose attempts wait `timeout` (default: the engine's)."""
        if timeout is None:
            timeout = self._timeout
        return _Channel(
            self._loop, servers=[server.stats.nameserver], timeout=timeout, **self._options
        )

    def _send(
        self,
        query: Query,
        done: Done,
        started: float,
        first: int,
        attempt: int,
        alone: bool = False,
        timeout: float | None = None,
    ) -> None:
        """Send attempt number `attempt` (from 0) of a query whose first attempt went to
        server `first`: on that server's shared channel, or (`alone`) on a new channel of
        its own that is closed once the attempt ends (and whose attempt waits `timeout`,
        when given, instead of the engine's)."""
        if self._closed:
            result = _result(query, started, Status.ERROR, {"error": CLOSED})
            self._loop.call_soon(done, result)
            return
        servers = self._servers
        count = len(servers)
        index = (first + attempt) % count  # the next server per try
        server = servers[index]
        if server.aside_until and count > 1:
            server = healthy(servers, index, self._loop.time())
        if alone:
            channel = self._new_channel(server, timeout)
            channel.alone = True
        else:
            channel = self._channel(server)
        outgoing = _Attempt(channel, server, query, done, started, first, attempt + 1)
        self._querying, self._sending = True, outgoing
        try:
            channel.query(query.name, query.type.value, functools.partial(self._on_reply, outgoing))
        except (pycares.AresError, ValueError, TypeError) as exc:
            if outgoing.ended:  # sent, and failed at once: its callback says how
                server.stats.sent += 1
            else:  # refused without a callback (a bad name, say)
                outgoing.ended = True
                channel.in_flight -= 1
                code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
                outcome = _ERRORS.get(code or -1, _Outcome(Status.ERROR, str(exc)))
                fields = {"error": outcome.error or str(exc)}
                self._loop.call_soon(done, _result(query, started, outcome.status, fields))
        else:
            server.stats.sent += 1
        finally:
            self._querying, self._sending = False, None
            if alone:
                self._retire(channel)  # closed now, or when its one query ends

    def _retire(self, channel: _Channel) -> None:
        if channel.in_flight:
            self._retired.add(channel)
        else:
            channel.close()

    def _on_reply(self, attempt: _Attempt, result: Any, errno: int | None) -> None:
        """c-ares' callback for `attempt`.

        c-ares may call it from inside `Channel.query` (a send that fails at once, such as
        ECONNREFUSED from an earlier datagram's ICMP error, ends that query and maybe others
        on the socket), and pycares then raises from `query` as well; a callback may even
        come twice. So the first call alone counts, and one made during a `query` call is
        handled on the next loop turn: `done` is never called from inside `submit`."""
        if attempt.ended:
            return
        attempt.ended = True
        attempt.in_send = attempt is self._sending
        if self._querying:
            self._loop.call_soon(self._settle, attempt, result, errno)
        else:
            self._settle(attempt, result, errno)

    def _settle(self, attempt: _Attempt, result: Any, errno: int | None) -> None:
        """What an attempt's answer or error means: a result, or the next attempt."""
        channel, server, query, done = attempt.channel, attempt.server, attempt.query, attempt.done
        started, first, attempts = attempt.started, attempt.first, attempt.number
        sent_at = attempt.sent_at
        channel.in_flight -= 1
        if channel in self._retired and not channel.in_flight:
            self._retired.discard(channel)
            self._loop.call_soon(channel.close)  # not from inside its own callback
        stats = server.stats
        if errno == _E.ARES_ETIMEOUT and not self._closed:
            left = channel.timeout - (time.perf_counter() - sent_at)
            if left > max(_EARLY, channel.timeout / 10):
                # c-ares' adaptive timeout gave up before `timeout`: the attempt waits out
                # the rest on a channel of its own, which has no latency history.
                self._loop.call_soon(
                    self._send, query, done, started, first, attempts - 1, True, left
                )
                return
        if errno is None:
            server.streak = 0
            stats.answered += 1
            stats.latency += time.perf_counter() - sent_at
            status, fields = parse_answer(query, result.answer)
            done(_result(query, started, status, fields | {"server": stats.nameserver}))
            return
        outcome = outcome_of(errno)
        if outcome.replied:
            stats.answered += 1
            stats.latency += time.perf_counter() - sent_at
            stats.rejected += outcome.failure  # SERVFAIL, REFUSED
        if errno in _SPOILS_SOCKET and not channel.alone and not self._closed:
            # Maybe another query's garbage or failed send, either of which fails every
            # query in flight on the socket: this attempt neither counts nor is charged
            # to the server, and is made again on a socket of its own, where only its own
            # reply, garbage or refusal can end it.
            # (Not from the query's own callback stack: c-ares is mid-processing.)
            self._loop.call_soon(self._send, query, done, started, first, attempts - 1, True)
            return
        if errno == _E.ARES_ECONNREFUSED and attempt.in_send:
            # On a socket of its own, a refusal before anything came back is its send
            # failing (EPERM, ENOBUFS: c-ares reports every send error as a refused
            # connection): a lost datagram, not the server's fault.
            stats.send_errors += 1
            outcome = _SEND_FAILED
        elif outcome.failure:
            if not outcome.replied:
                stats.failed += 1  # no reply: timed out, refused by ICMP
            server.failed(self._loop.time())
        elif outcome.replied:
            server.streak = 0
        if outcome.retry and attempts < self._tries and not self._closed:
            # Garbage or a failed send, once more: the next attempt on a socket of its own.
            alone = errno in _SPOILS_SOCKET
            self._loop.call_soon(self._send, query, done, started, first, attempts, alone)
            return
        status = outcome.status
        asked = stats.nameserver if outcome.status is not Status.INVALID else None
        fields = {"error": outcome.error, "server": asked}  # replied, or asked last
        if result is not None and errno in _CHAINED:
            _, chain, cut = _follow(query, result.answer)
            fields["cnames"] = tuple(chain)
            if cut is not None:
                status, fields["error"] = Status.ERROR, cut
        done(_result(query, started, status, fields))

    async def aclose(self) -> None:
        """Cancel what is in flight (each gets an ERROR result) and release the sockets."""
        if self._closed:
            return
        self._closed = True
        channels = [server.channel for server in self._servers if server.channel is not None]
        for channel in (*self._retired, *channels):
            channel.close()
        self._retired.clear()


def _result(query: Query, started: float, status: Status, fields: dict[str, Any]) -> Result:
    elapsed = time.perf_counter() - started
    return Result.for_query(query, status, source=Source.DNS, elapsed=elapsed, **fields)
