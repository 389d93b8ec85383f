"""The wire engine: DNS over UDP spoken directly on the event loop.

Each nameserver gets two connected UDP sockets (random source ports chosen by the kernel;
a connected socket only receives datagrams from its server), each replaced by a fresh one
every ROTATE_AFTER queries, so the ports in use keep changing. A query is a packet
built from its wire name, sent with an unpredictable id (os.urandom) unused on its socket;
a reply is accepted only if its id, question (case-insensitively) and type match, otherwise
it is ignored as stale or spoofed. Attempts that time out are sent again (to the next
server, timeout doubled per round, as c-ares does) until `tries` are spent.

Whatever it cannot finish properly (a truncated reply, an rcode it does not handle, a
malformed reply) it hands to the c-ares engine, so results never depend on the fast path.
A server that refuses datagrams (ICMP port unreachable) fails the attempts waiting on the
socket, as a timeout would, only sooner.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from array import array
from collections.abc import Sequence
from ipaddress import ip_address

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
from resolver.engines.cares import CaresEngine
from resolver.model import Query, Result, Source, Status
from resolver.wire import Mismatch, WireError, build_query, decode_reply, encode_name

__all__ = ["ServerStats", "WireEngine"]

SOCKETS_PER_SERVER = 2
#: Queries a socket sends before a fresh one (a new random source port) takes its place, so
#: that a port learnt by a spoofer is soon useless (as c-ares' udp_max_queries does).
ROTATE_AFTER = 2000
RECEIVE_BUFFER = 4 << 20
_MAX_REPLY = 65535
_BATCH = 512  # datagrams read per wake-up before yielding to the loop
_BURST = 256  # datagrams sent per loop turn
#: Past the system's rmem_max cap (root only; Python's socket module lacks the name).
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform == "linux" else None)
_NOERROR, _SERVFAIL, _NXDOMAIN, _REFUSED = 0, 2, 3, 5
_clock = time.perf_counter
_new = tuple.__new__
_ANSWERED, _NODATA, _DNS = Status.NOERROR, Status.NODATA, Source.DNS


class _Pending:
    """One query in flight."""

    __slots__ = (
        "attempt",
        "deadline",
        "done",
        "qid",
        "qname",
        "qtype",
        "query",
        "sent_at",
        "server",
        "sock",
        "started",
    )

    def __init__(self, query: Query, done: Done, qname: bytes, server: int) -> None:
        self.query = query
        self.done = done
        self.qname = qname
        self.qtype: int = query.type._value_  # `.value` is a slower property
        self.server = server  # index of the first server asked
        self.started = 0.0  # perf_counter() at the first attempt
        self.attempt = 0  # attempts sent so far
        self.qid = 0
        self.deadline = 0.0
        self.sent_at = 0.0
        self.sock: _Socket | None = None  # where the current attempt waits; None when ended


class _Server(ServerHealth):
    """One nameserver: its sockets, and (from `ServerHealth`) its health and counters."""

    __slots__ = ("address", "family", "retired", "sockets")

    def __init__(self, nameserver: str, count: int) -> None:
        super().__init__(nameserver)
        self.family, self.address = _address(nameserver)
        self.sockets = [_Socket(self) for _ in range(count)]
        #: Sockets replaced by fresh ones, still waiting for the replies to what they sent.
        self.retired: list[_Socket] = []


class _Socket:
    """A connected UDP socket to one server, with the queries waiting on it by id."""

    __slots__ = ("pending", "sent", "server", "sock")

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.sent = 0  # queries sent from it (it is replaced after ROTATE_AFTER)
        self.sock = socket.socket(server.family, socket.SOCK_DGRAM)
        for option in (_SO_RCVBUFFORCE, socket.SO_RCVBUF):
            if option is not None:
                try:
                    self.sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER)
                    break
                except OSError:
                    continue
        self.sock.setblocking(False)
        self.sock.connect(server.address)
        self.pending: dict[int, _Pending] = {}


def _address(nameserver: str) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """`"127.0.0.1:53"` / `"[::1]:53"` -> (family, (host, port))."""
    host, _, port = nameserver.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    return family, (host, int(port))


class WireEngine:
    """Resolve queries over UDP directly, handing what it cannot finish to `fallback`."""

    def __init__(
        self,
        nameservers: Sequence[str],
        *,
        timeout: float,
        tries: int,
        fallback: CaresEngine,
        sockets_per_server: int = SOCKETS_PER_SERVER,
    ) -> None:
        if not nameservers:
            raise ValueError("the wire engine needs at least one nameserver")
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._tries = tries
        self._fallback = fallback
        self._closed = False
        self._next_server = 0
        self._servers: list[_Server] = []
        for nameserver in nameservers:
            server = _Server(nameserver, sockets_per_server)
            for s in server.sockets:
                self._loop.add_reader(s.sock.fileno(), self._on_readable, s)
            self._servers.append(server)
        # Timeouts: a periodic sweep over what is in flight (at most the window), so an
        # answered query leaves nothing behind. Expiry is late by at most one tick.
        self._timer: asyncio.TimerHandle | None = None
        self._tick = min(0.05, timeout / 4)
        self._outbox: list[tuple[_Pending, bytes]] = []  # sent together by _flush
        self._ids = array("I")
        self._flush_soon = False

    # sending

    def submit(self, query: Query, done: Done) -> None:
        """Send `query`; `done` gets its `Result` later, from the loop."""
        if self._closed:
            result = self._result(query, time.perf_counter(), Status.ERROR, error=CLOSED)
            self._loop.call_soon(done, result)
            return
        try:
            qname = encode_name(query.name)
        except WireError:
            self._loop.call_soon(self._fallback.submit, query, done)
            return
        self._next_server = (self._next_server + 1) % len(self._servers)
        self._send(_Pending(query, done, qname, self._next_server))

    def _send(self, entry: _Pending) -> None:
        servers = self._servers
        count = len(servers)
        attempt = entry.attempt
        server = servers[(entry.server + attempt) % count]  # the next server per try
        if server.benched_until and count > 1:
            server = self._healthy(servers.index(server))
        server.stats.sent += 1
        ids = self._ids
        draw = ids.pop() if ids else self._new_id()  # the socket from the high half, id low
        sockets = server.sockets
        index = (draw >> 16) % len(sockets)
        sock = sockets[index]
        sock.sent += 1
        if sock.sent >= ROTATE_AFTER:
            self._rotate(server, index)
        pending = sock.pending
        qid = draw & 0xFFFF
        while qid in pending:
            qid = self._new_id() & 0xFFFF
        entry.attempt = attempt + 1
        entry.qid = qid
        entry.sock = sock
        pending[qid] = entry
        self._outbox.append((entry, build_query(qid, entry.qname, entry.qtype)))
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)
        now = _clock()
        if not attempt:
            entry.started = now
        entry.sent_at = now
        entry.deadline = now + self._timeout * (1 << (attempt // count))  # doubled per round
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._on_timer)

    def _rotate(self, server: _Server, index: int) -> None:
        """Give `server` a fresh socket (a new random source port) in place of the one at
        `index`, which stays open until the replies to what it sent are in."""
        fresh = _Socket(server)
        self._loop.add_reader(fresh.sock.fileno(), self._on_readable, fresh)
        server.retired.append(server.sockets[index])
        server.sockets[index] = fresh

    def _new_id(self) -> int:
        """32 unpredictable bits (from os.urandom, drawn in batches: this is per query)."""
        if not self._ids:
            self._ids = array("I", os.urandom(16384))
        return self._ids.pop()

    def _healthy(self, first: int) -> _Server:
        """The first server from `first` on that is not benched (all benched: `first`)."""
        return healthy(self._servers, first, self._loop.time())

    def stats(self) -> list[ServerStats]:
        """Per-nameserver counters so far."""
        return [server.stats for server in self._servers]

    def _flush(self) -> None:
        """Send what this loop iteration queued, in one burst.

        Sending each packet the moment it is ready wakes the server once per packet (on
        loopback that costs several times the send itself); a burst wakes it once. Bursts
        are capped, so a full window is not thrown at the server's receive buffer at once.
        """
        outbox = self._outbox
        if len(outbox) > _BURST:  # the rest on the next turn, after replies are read
            self._outbox = outbox[_BURST:]
            outbox = outbox[:_BURST]
            self._loop.call_soon(self._flush)
        else:
            self._outbox = []
            self._flush_soon = False
        for entry, packet in outbox:
            s = entry.sock
            if s is None:
                continue  # answered or ended meanwhile (e.g. by aclose)
            try:
                s.sock.send(packet)
            except (BlockingIOError, InterruptedError):
                pass  # a full send buffer is a lost datagram: the timeout retries it
            except OSError:
                # An ICMP error (port unreachable & co) for a datagram sent earlier on this
                # socket, reported on this send: the server is not answering there.
                self._refused(s)

    # receiving

    def _on_readable(self, s: _Socket) -> None:
        # recv(65535) measured faster than recv_into a buffer and copying out the datagram:
        # the 64 KiB allocation is shrunk in place.
        recv, pending = s.sock.recv, s.pending
        for _ in range(_BATCH):
            try:
                packet = recv(_MAX_REPLY)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP port unreachable & co: the server is not answering on this socket.
                self._refused(s)
                continue
            if len(packet) < 12:
                continue
            entry = pending.get((packet[0] << 8) | packet[1])
            if entry is not None:
                self._on_reply(packet, entry)

    def _on_reply(self, packet: bytes, entry: _Pending) -> None:
        try:
            rcode, truncated, answers, ttl, cnames = decode_reply(packet, entry.qname, entry.qtype)
        except Mismatch:
            return  # not an answer to this query: keep waiting for the real one
        except WireError:
            truncated = True  # malformed: left to c-ares, as a truncated reply is
        sock = entry.sock
        assert sock is not None
        del sock.pending[entry.qid]
        entry.sock = None
        if truncated:
            self._hand_over(entry)
            return
        now = _clock()
        server = sock.server
        stats = server.stats
        stats.answered += 1
        stats.latency += now - entry.sent_at
        if rcode == _NOERROR:  # the hot path
            server.streak = 0
            status, error = _ANSWERED if answers else _NODATA, None
        elif rcode == _NXDOMAIN:
            server.streak = 0
            status, error = Status.NXDOMAIN, None
        elif rcode in (_SERVFAIL, _REFUSED):
            server.failed(self._loop.time())
            if entry.attempt < self._tries:
                self._send(entry)  # like c-ares: another try, on the next server
                return
            status, error = (
                (Status.SERVFAIL, SERVFAIL) if rcode == _SERVFAIL else (Status.REFUSED, REFUSED)
            )
        else:
            server.streak = 0
            self._hand_over(entry)
            return
        query = entry.query
        entry.done(
            _new(  # Result(...) without the Python-level __new__ of a NamedTuple
                Result,
                (
                    query.text,
                    query.name,
                    query.type,
                    status,
                    answers,
                    ttl,
                    cnames,
                    _DNS,
                    error,
                    query.line,
                    now - entry.started,
                    stats.nameserver,
                ),
            )
        )

    # timeouts

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = time.perf_counter()
        expired = [
            entry
            for server in self._servers
            for s in (*server.sockets, *server.retired)
            for entry in s.pending.values()
            if entry.deadline <= now
        ]
        for entry in expired:
            self._expire(entry)
        for server in self._servers:
            if server.retired:
                for s in [s for s in server.retired if not s.pending]:
                    server.retired.remove(s)
                    self._loop.remove_reader(s.sock.fileno())
                    s.sock.close()
        if any(s.pending or server.retired for server in self._servers for s in server.sockets):
            self._timer = self._loop.call_later(self._tick, self._on_timer)

    def _expire(self, entry: _Pending) -> None:
        self._failed_attempt(entry, Status.TIMEOUT, TIMEOUT)

    def _failed_attempt(self, entry: _Pending, status: Status, error: str) -> None:
        """`entry`'s attempt failed at its server: another on the next server while tries
        remain, else the result `status` with `error`."""
        sock = entry.sock
        assert sock is not None
        del sock.pending[entry.qid]
        entry.sock = None
        sock.server.failed(self._loop.time())
        if entry.attempt < self._tries:
            self._send(entry)
        else:
            entry.done(self._result(entry.query, entry.started, status, error=error))

    # endings

    def _hand_over(self, entry: _Pending) -> None:
        """Let c-ares answer what this engine cannot."""
        self._fallback.submit(entry.query, entry.done)

    def _refused(self, s: _Socket) -> None:
        """`s`'s server refuses datagrams (an ICMP error, for any of those sent on `s`):
        each query waiting there has failed an attempt at it, and is tried again (on the
        next server) while tries remain."""
        for entry in list(s.pending.values()):
            self._failed_attempt(entry, Status.ERROR, CONNECTION_REFUSED)

    @staticmethod
    def _result(query: Query, started: float, status: Status, **fields: object) -> Result:
        elapsed = time.perf_counter() - started
        return Result.for_query(query, status, source=Source.DNS, elapsed=elapsed, **fields)

    async def aclose(self) -> None:
        """Answer everything in flight with an ERROR result and close the sockets."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for server in self._servers:
            for s in (*server.sockets, *server.retired):
                self._loop.remove_reader(s.sock.fileno())
                for entry in s.pending.values():
                    entry.sock = None
                    entry.done(self._result(entry.query, entry.started, Status.ERROR, error=CLOSED))
                s.pending.clear()
                s.sock.close()
