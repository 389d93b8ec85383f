"""The wire engine: DNS over UDP spoken directly on the event loop.

Each nameserver gets two connected UDP sockets (random source ports chosen by the kernel;
a connected socket only receives datagrams from its server), each replaced by a fresh one
every ROTATE_AFTER queries, so the ports in use keep changing. An attempt is a packet built
from its wire name, sent with an unpredictable id (os.urandom) unused on its socket; a
reply is accepted only if its id, question (case-insensitively) and type match, otherwise
it is ignored as stale or spoofed.

The transport, per nameserver (see the README's "Retries, timeouts and deadlines"):

- Retransmission: every attempt has its own id, so each reply is an unambiguous sample of
  the server's round-trip time. A smoothed RTT and its variance (RFC 6298) give the
  retransmission timeout (RTO), at least MIN_RTO and at most `timeout`; the n-th attempt
  of a query waits RTO x 2**(n-1) (never more than `timeout`), stretched by up to a
  quarter at random, so retries do not leave in lockstep; the last try waits the whole
  `timeout`. The ids of earlier attempts stay live until the query ends: a late reply to
  any of them answers it.
- Congestion control: a window of attempts in flight, which starts at INITIAL_WINDOW,
  grows by one per answer up to the first sign of congestion (then by one per window's
  worth of answers) and is cut to 70% when losses come faster than the server's usual
  share (random loss is not congestion: a short-term loss rate is compared with a
  long-term one, so a steadily lossy path keeps its window while a server whose receive
  buffer overflows, whose losses come in bursts, gets less). The `Resolver`'s
  concurrency is the cap; queries beyond the window wait their turn (retries first), and
  a loop turn sends at most _BURST of them.
- Send errors (EPERM from a local firewall or a full conntrack table, ENOBUFS, EAGAIN) are
  a lost datagram for that one attempt, retried after a tick; only a refusal from the
  server (ECONNREFUSED: an ICMP port unreachable for a datagram sent on that socket)
  fails the attempts waiting on that server's socket, and sets that server aside at once
  (it is not listening); those attempts go to the next server without using up a try
  while another server may answer.

Whatever it cannot finish properly (a truncated reply, an rcode it does not handle, a
malformed reply) it hands to the c-ares engine, so results never depend on the fast path.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import random
import socket
import sys
import time
from array import array
from collections import deque
from collections.abc import Sequence
from ipaddress import ip_address

from resolver.codec import BadReply, Mismatch, build_query, decode_reply, encode_name
from resolver.engines import (
    CLOSED,
    CONNECTION_REFUSED,
    REFUSED,
    SERVFAIL,
    SET_ASIDE_FOR,
    TIMEOUT,
    Done,
    ServerHealth,
    ServerStats,
)
from resolver.engines.cares import CaresEngine
from resolver.model import Query, Result, Source, Status
from resolver.protocol import Rcode

__all__ = ["MIN_RTO", "ServerStats", "WireEngine"]

SOCKETS_PER_SERVER = 2
#: Queries a socket sends before a fresh one (a new random source port) takes its place, so
#: that a port learnt by a spoofer is soon useless (as c-ares' udp_max_queries does).
ROTATE_AFTER = 2000
RECEIVE_BUFFER = 4 << 20
#: The least an attempt waits once the server's RTT is known: below this, a server that
#: pauses for a moment (a recursive resolver asking upstream, a scheduler hiccup) would
#: have every query in flight sent again.
MIN_RTO = 0.05
#: The RTO before any reply was timed (RFC 6298 says 1 s), unless `timeout` is shorter.
INITIAL_RTO = 1.0
#: Attempts in flight per server at the start; the window grows from there.
INITIAL_WINDOW = 32
MIN_WINDOW = 4
_DECREASE = 0.7  # the window after a congestion signal, as a share of what it was
_JITTER = 0.25  # an attempt waits up to this share longer than its RTO, at random
#: Congestion is told from random loss by bursts: losses are counted per run of _RUN
#: consecutive attempts to a server (in send order), and a run that loses more than the
#: server's long-term loss rate (averaged over about 1/_AVERAGE attempts) predicts, by
#: _SIGMAS standard deviations plus _SLACK attempts, is a burst; it is congestion while
#: replies are queueing too (the smoothed RTT above twice the least RTT seen).
_RUN, _RUNS_KEPT, _AVERAGE, _SIGMAS, _SLACK = 64, 64, 1 / 1024, 4.0, 3.0
#: With adaptive tries (the default `tries`), a query may make more attempts, up to
#: MAX_TRIES, while its server's long-term loss rate p leaves a chance over _ALL_LOST that
#: every one of `tries` attempts is lost (p**tries); not when p is 0.5 or more: that is a
#: dead server, not a lossy path, and more tries would only make its queries wait longer.
MAX_TRIES = 12
_ALL_LOST = 1e-6
_MAX_REPLY = 65535
_BATCH = 512  # datagrams read per wake-up before yielding to the loop
_BURST = 128  # attempts sent per loop turn
#: Past the system's rmem_max cap (root only; Python's socket module lacks the name).
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33 if sys.platform == "linux" else None)
#: recv()/send() errors that are the server's ICMP refusal, not a local failure.
_REFUSALS = frozenset({errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH})
_NOERROR, _SERVFAIL, _NXDOMAIN, _REFUSED = (
    int(r) for r in (Rcode.NOERROR, Rcode.SERVFAIL, Rcode.NXDOMAIN, Rcode.REFUSED)
)
_INF = float("inf")
_clock = time.perf_counter
_random = random.random
_new = tuple.__new__
#: The field order of the positional `_new(Result, ...)` in `_on_reply`: a change of
#: `Result`'s fields fails here, at import, instead of shuffling every row silently.
_RESULT_FIELDS = (
    "query", "name", "type", "status", "answers", "ttl", "cnames", "source", "error", "line",
    "elapsed", "server",
)  # fmt: skip
if Result._fields != _RESULT_FIELDS:
    raise ImportError(
        f"Result's fields are {Result._fields}, the wire engine builds {_RESULT_FIELDS}"
    )
_ANSWERED, _NODATA, _DNS = Status.NOERROR, Status.NODATA, Source.DNS


class _Pending:
    """One query, from its submission to its result."""

    __slots__ = (
        "attempt",
        "deadline",
        "done",
        "earlier",
        "ended",
        "error",
        "first",
        "last",
        "qid",
        "qname",
        "qtype",
        "query",
        "refusals",
        "sent_at",
        "serial",
        "sock",
        "started",
    )

    def __init__(self, query: Query, done: Done, qname: bytes, first: int) -> None:
        self.query = query
        self.done = done
        self.qname = qname
        self.qtype: int = query.type._value_  # `.value` is a slower property
        self.first = first  # index of the server for the first attempt
        self.last = -1  # index of the server of the latest attempt
        self.started = 0.0  # perf_counter() at the first attempt
        self.attempt = 0  # attempts counted against the tries
        self.refusals = 0  # attempts refused by a server (ICMP), not counted as tries
        #: The latest attempt: its socket (None while not in flight), id, send time and
        #: the time it is given up (inf while not in flight).
        self.sock: _Socket | None = None
        self.qid = 0
        self.sent_at = 0.0
        self.serial = 0  # its server's count of attempts sent, when it was sent
        self.deadline = _INF
        #: Earlier attempts whose replies still count: (socket, id, send time).
        self.earlier: list[tuple[_Socket, int, float]] | None = None
        self.error = TIMEOUT  # what the query ends with if its last attempt fails
        #: It has its result (it may still be queued for a retry: skipped then).
        self.ended = False


class _Server(ServerHealth):
    """One nameserver: its sockets, its RTT estimate and window, and (from `ServerHealth`)
    its health and counters."""

    __slots__ = (
        "adapt_tries",
        "address",
        "cap",
        "family",
        "grow",
        "index",
        "inflight",
        "loss_rate",
        "min_rtt",
        "recover",
        "refused_until",
        "retired",
        "rto",
        "rttvar",
        "run_losses",
        "run_of",
        "sent",
        "sockets",
        "srtt",
        "tries",
        "tries_given",
        "window",
    )

    def __init__(
        self, nameserver: str, index: int, count: int, cap: int, rto: float, tries: int, adapt: bool
    ) -> None:
        super().__init__(nameserver)
        self.index = index  # its place in the engine's list
        self.family, self.address = _address(nameserver)
        self.sockets = [_Socket(self) for _ in range(count)]
        #: Sockets replaced by fresh ones, still waiting for the replies to what they sent.
        self.retired: list[_Socket] = []
        self.srtt = 0.0  # 0.0: no sample yet
        self.min_rtt = 0.0
        self.rttvar = 0.0
        self.rto = rto
        self.cap = cap
        self.window = float(min(cap, INITIAL_WINDOW))
        self.grow = 1.0  # window growth per answer: 1 until congestion, then 1/window
        self.inflight = 0  # attempts sent and neither answered nor given up
        self.sent = 0  # attempts sent to it, ever (their serial numbers)
        self.loss_rate = 0.0  # the long-term share of attempts lost
        #: Attempts a query whose latest attempt went here may make (see MAX_TRIES).
        self.tries = self.tries_given = tries
        self.adapt_tries = adapt
        #: Losses per run of _RUN attempts (by serial // _RUN), for the last _RUNS_KEPT runs.
        self.run_of = [-1] * _RUNS_KEPT
        self.run_losses = [0] * _RUNS_KEPT
        #: Losses of attempts sent before this serial do not cut the window again.
        self.recover = 0
        #: Loop time until which it counts as refusing datagrams (its last ICMP refusal).
        self.refused_until = 0.0

    def sample(self, rtt: float, floor: float, ceiling: float) -> None:
        """Update the RTT estimate and the RTO (RFC 6298, 2.2-2.4) with one sample."""
        # The least RTT seen, creeping up 1% a sample so that it follows a slower path.
        least = self.min_rtt * 1.01
        self.min_rtt = rtt if rtt < least or not least else least
        if self.srtt == 0.0:
            self.srtt, self.rttvar = rtt, rtt / 2
        else:
            self.rttvar += (abs(self.srtt - rtt) - self.rttvar) / 4
            self.srtt += (rtt - self.srtt) / 8
        self.rto = min(max(self.srtt + 4 * self.rttvar, floor), ceiling)

    def answered(self, count: int) -> None:
        """`count` attempts in flight were answered: the window grows (by one an answer
        until the first congestion, then by one a window's worth), the loss rate ages."""
        window = self.window + self.grow * count
        if self.grow < 1.0:
            self.grow = 1.0 / window
        self.window = window if window < self.cap else float(self.cap)
        if self.loss_rate:
            self.loss_rate *= (1.0 - _AVERAGE) ** count
            if self.tries != self.tries_given:
                self.tries = _tries_for(self.loss_rate, self.tries_given)

    def lost(self, serial: int) -> None:
        """The attempt with this serial number was lost: maybe a sign of congestion."""
        rate = self.loss_rate = self.loss_rate + (1.0 - self.loss_rate) * _AVERAGE
        if self.adapt_tries:
            self.tries = _tries_for(rate, self.tries_given)
        run = serial // _RUN
        slot = run % _RUNS_KEPT
        if self.run_of[slot] != run:
            self.run_of[slot], self.run_losses[slot] = run, 0
        losses = self.run_losses[slot] = self.run_losses[slot] + 1
        expected = _RUN * rate
        if losses <= expected + _SIGMAS * (expected * (1.0 - rate)) ** 0.5 + _SLACK:
            return  # as many as random loss at the usual rate gives
        if self.srtt < 2 * self.min_rtt or serial < self.recover:
            return  # no queue building up, or cut already for the attempts of its time
        self.window = max(MIN_WINDOW, self.window * _DECREASE)
        self.grow = 1.0 / self.window
        self.recover = self.sent  # once per window's worth of attempts

    def refused(self, now: float, floor: float) -> None:
        """The server refused a datagram (ICMP): it is not listening; set it aside now.
        Attempts still sent to it wait only `floor`: the kernel may rate-limit the ICMP
        errors, so silence from a refusing server is one more refusal, not a slow reply."""
        self.refused_until = now + SET_ASIDE_FOR
        self.rto = floor
        if self.aside_until <= now:
            self.streak = 0
            self.aside_until = now + SET_ASIDE_FOR
            self.stats.set_aside += 1


class _Socket:
    """A connected UDP socket to one server, with the attempts waiting on it by id."""

    __slots__ = ("pending", "sent", "server", "sock")

    def __init__(self, server: _Server) -> None:
        self.server = server
        self.sent = 0  # attempts sent from it (it is replaced after ROTATE_AFTER)
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


def _sent_at(entry: _Pending, s: _Socket, qid: int) -> float:
    """When `entry`'s earlier attempt `qid` on `s` was sent."""
    assert entry.earlier is not None
    return next(sent_at for sock, i, sent_at in entry.earlier if sock is s and i == qid)


def _address(nameserver: str) -> tuple[socket.AddressFamily, tuple[str, int]]:
    """`"127.0.0.1:53"` / `"[::1]:53"` -> (family, (host, port))."""
    host, _, port = nameserver.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ip_address(host).version == 6 else socket.AF_INET
    return family, (host, int(port))


class WireEngine:
    """Resolve queries over UDP directly, handing what it cannot finish to `fallback`.

    `window` caps the attempts in flight per server (the `Resolver`'s concurrency).
    """

    def __init__(
        self,
        nameservers: Sequence[str],
        *,
        timeout: float,
        tries: int,
        fallback: CaresEngine,
        adapt_tries: bool = False,
        window: int = 250,
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
        self._floor = min(MIN_RTO, timeout)
        rto = min(INITIAL_RTO, timeout)
        self._servers: list[_Server] = []
        for index, nameserver in enumerate(nameservers):
            server = _Server(
                nameserver, index, sockets_per_server, max(1, window), rto, tries, adapt_tries
            )
            for s in server.sockets:
                self._loop.add_reader(s.sock.fileno(), self._on_readable, s)
            self._servers.append(server)
        #: Queries waiting for room in a window (retries at the front).
        self._backlog: deque[_Pending] = deque()
        self._flush_soon = False
        #: Attempts whose send failed, tried again on the next tick.
        self._resend: list[_Pending] = []
        # Timeouts: a periodic sweep over what is in flight (at most the windows), so an
        # answered query leaves nothing behind. Expiry is late by at most one tick.
        self._timer: asyncio.TimerHandle | None = None
        self._tick = self._floor / 4
        self._ids = array("I")

    # sending

    def submit(self, query: Query, done: Done) -> None:
        """Send `query`; `done` gets its `Result` later, from the loop."""
        if self._closed:
            result = self._result(query, time.perf_counter(), Status.ERROR, error=CLOSED)
            self._loop.call_soon(done, result)
            return
        try:
            qname = encode_name(query.name)
        except BadReply:
            self._loop.call_soon(self._fallback.submit, query, done)
            return
        self._next_server = (self._next_server + 1) % len(self._servers)
        self._backlog.append(_Pending(query, done, qname, self._next_server))
        if not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _wake(self) -> None:
        """Room may have opened in a window: send what waits, on the next loop turn."""
        if self._backlog and not self._flush_soon:
            self._flush_soon = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Send what waits, while the windows have room, at most _BURST this turn.

        Sending each packet the moment it is ready wakes the server once per packet (on
        loopback that costs several times the send itself); a burst wakes it once. Bursts
        are capped, so a full window is not thrown at the server's receive buffer at once.
        """
        self._flush_soon = False
        if self._closed:
            return
        backlog = self._backlog
        servers = self._servers
        single = servers[0] if len(servers) == 1 else None
        for _ in range(_BURST):
            if not backlog:
                return
            if backlog[0].ended:  # answered (an earlier attempt's reply) while queued
                backlog.popleft()
                continue
            server = single or self._pick(backlog[0])
            if server is None or server.inflight >= server.window:
                return  # an answer or a timeout reopens a window
            self._transmit(backlog.popleft(), server)
        self._wake()  # more than a burst waits: the rest after the replies are read

    def _pick(self, entry: _Pending) -> _Server | None:
        """The server for `entry`'s next attempt: the next one (after its last attempt's,
        or its first) that is not set aside and has room in its window; None when every
        such window is full. When all are set aside, the next with room."""
        servers = self._servers
        count = len(servers)
        start = entry.first if entry.last < 0 else entry.last + 1
        now = 0.0
        aside: _Server | None = None
        some_healthy = False
        for step in range(count):
            server = servers[(start + step) % count]
            if server.aside_until:
                now = now or self._loop.time()
                if server.aside_until > now:
                    if aside is None and server.inflight < server.window:
                        aside = server
                    continue
                server.aside_until = 0.0
            some_healthy = True
            if server.inflight < server.window:
                return server
        return None if some_healthy else aside

    def _transmit(self, entry: _Pending, server: _Server) -> None:
        """Send `entry`'s next attempt to `server`."""
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
        attempt = entry.attempt = entry.attempt + 1
        entry.qid = qid
        entry.sock = sock
        entry.last = server.index
        pending[qid] = entry
        server.inflight += 1
        entry.serial = server.sent = server.sent + 1
        now = _clock()
        if not entry.started:
            entry.started = now
        entry.sent_at = now
        refusing = server.refused_until and server.refused_until > self._loop.time()
        if attempt < server.tries or refusing:
            wait = server.rto * (1 << (attempt - 1)) if attempt < 16 else _INF
            wait *= 1.0 + _JITTER * _random()
            entry.deadline = now + (wait if wait < self._timeout else self._timeout)
        else:  # the last try: the query's last chance, it waits the whole timeout
            entry.deadline = now + self._timeout
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._on_timer)
        try:
            sock.sock.send(build_query(qid, entry.qname, entry.qtype))
        except OSError as exc:
            if exc.errno in _REFUSALS:
                # An ICMP error for a datagram sent earlier on this socket, reported on
                # this send: the server is not answering there (this attempt included).
                self._refused(sock)
            else:
                self._send_failed(entry, exc)

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

    def stats(self) -> list[ServerStats]:
        """Per-nameserver counters so far."""
        return [server.stats for server in self._servers]

    # receiving

    def _on_readable(self, s: _Socket) -> None:
        # recv(65535) measured faster than recv_into a buffer and copying out the datagram:
        # the 64 KiB allocation is shrunk in place.
        recv, pending = s.sock.recv, s.pending
        server = s.server
        answered = 0
        oldest = _INF
        for _ in range(_BATCH):
            try:
                packet = recv(_MAX_REPLY)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                # ICMP port unreachable & co: the server is not answering on this socket.
                self._refused(s)
                continue
            if len(packet) < 12:
                continue
            qid = (packet[0] << 8) | packet[1]
            entry = pending.get(qid)
            if entry is None:
                continue
            if entry.sock is s and entry.qid == qid:  # the reply to the latest attempt
                sent_at = entry.sent_at
                if self._on_reply(packet, entry, sent_at, server, qid, True):
                    answered += 1
                    if sent_at < oldest:
                        oldest = sent_at
            else:  # to an earlier attempt, which has timed out
                sent_at = _sent_at(entry, s, qid)
                if self._on_reply(packet, entry, sent_at, server, qid, False):
                    server.sample(_clock() - sent_at, self._floor, self._timeout)
                    server.streak = 0
        if answered:
            # One RTT sample per wake-up is plenty and costs little: the longest (the
            # oldest attempt's), as the RTO must cover the slow replies, not the typical.
            server.sample(_clock() - oldest, self._floor, self._timeout)
            server.answered(answered)
            server.streak = 0
            server.refused_until = 0.0
        self._wake()

    def _on_reply(
        self,
        packet: bytes,
        entry: _Pending,
        sent_at: float,
        server: _Server,
        qid: int,
        latest: bool,
    ) -> bool:
        """Use a reply from `server` to the attempt `qid` of `entry`, sent at `sent_at`
        (`latest`: its latest attempt, still in flight). True when the reply ended the
        query with a usable answer (a sample of the server's RTT)."""
        try:
            rcode, truncated, answers, ttl, cnames = decode_reply(packet, entry.qname, entry.qtype)
        except Mismatch:
            return False  # not an answer to this query: keep waiting for the real one
        except BadReply:
            truncated = True  # malformed: left to c-ares, as a truncated reply is
            rcode = _NOERROR
        now = _clock()
        stats = server.stats
        stats.answered += 1
        stats.latency += now - sent_at
        if not latest:
            stats.failed -= 1  # counted when it timed out: it was answered after all
        if truncated:
            self._end(entry)
            self._fallback.submit(entry.query, entry.done)
            return True
        if rcode == _NOERROR:  # the hot path
            status, error = _ANSWERED if answers else _NODATA, None
        elif rcode == _NXDOMAIN:
            status, error = Status.NXDOMAIN, None
        elif rcode in (_SERVFAIL, _REFUSED):
            stats.rejected += 1
            server.failed(self._loop.time())
            error = SERVFAIL if rcode == _SERVFAIL else REFUSED
            if not latest:  # an earlier attempt's: the latest one, still in flight, decides
                self._forget_earlier(entry, server, qid)
                return False
            self._forget_current(entry)
            entry.error = error
            if entry.attempt < self._tries and not self._closed:
                self._retry(entry)  # like c-ares: another try, on the next server
                return False
            status = Status.SERVFAIL if rcode == _SERVFAIL else Status.REFUSED
            self._end(entry)
            fields = {"error": error, "server": stats.nameserver, "cnames": cnames}
            entry.done(self._result(entry.query, entry.started, status, **fields))
            return False
        else:
            self._end(entry)
            self._fallback.submit(entry.query, entry.done)
            return True
        self._end(entry)
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
        return True

    # timeouts and failures

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = _clock()
        expired = [
            entry
            for server in self._servers
            for s in (*server.sockets, *server.retired)
            for entry in s.pending.values()
            if entry.deadline <= now
        ]
        for entry in expired:
            if entry.deadline <= now:  # (an entry may be listed under several ids)
                self._expire(entry)
        if self._resend:
            resend, self._resend = self._resend, []
            for entry in resend:
                if not entry.ended:
                    self._failed(entry)
        busy = False
        for server in self._servers:
            if server.retired:
                for s in [s for s in server.retired if not s.pending]:
                    server.retired.remove(s)
                    self._loop.remove_reader(s.sock.fileno())
                    s.sock.close()
            busy = busy or bool(server.retired) or any(s.pending for s in server.sockets)
        if busy or self._resend:
            self._timer = self._loop.call_later(self._tick, self._on_timer)

    def _expire(self, entry: _Pending) -> None:
        """`entry`'s latest attempt was not answered in time: lost. Its id stays live."""
        sock = entry.sock
        assert sock is not None
        server = sock.server
        if entry.earlier is None:
            entry.earlier = []
        entry.earlier.append((sock, entry.qid, entry.sent_at))
        entry.sock = None
        entry.deadline = _INF
        server.inflight -= 1
        now = self._loop.time()
        if server.refused_until > now:
            entry.error = CONNECTION_REFUSED  # (its ICMP error was not reported)
        else:
            entry.error = TIMEOUT
            server.lost(entry.serial)
        server.stats.failed += 1
        server.failed(now)
        self._failed(entry)

    def _send_failed(self, entry: _Pending, exc: OSError) -> None:
        """The latest attempt's datagram never left (EPERM, ENOBUFS, EAGAIN...): lost,
        through no fault of the server; tried again on the next tick."""
        sock = entry.sock
        assert sock is not None
        server = sock.server
        del sock.pending[entry.qid]
        entry.sock = None
        entry.deadline = _INF
        server.inflight -= 1
        server.stats.send_errors += 1
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        entry.error = f"send failed: {reason}"
        self._resend.append(entry)
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._on_timer)

    def _failed(self, entry: _Pending) -> None:
        """`entry`'s latest attempt failed (it is no longer in flight): another while tries
        remain, else the result for `entry.error`, naming the server asked last."""
        limit = self._servers[entry.last].tries if entry.last >= 0 else self._tries
        if entry.attempt < limit and not self._closed:
            self._retry(entry)
            return
        status = Status.TIMEOUT if entry.error == TIMEOUT else Status.ERROR
        self._end(entry)
        fields = {"error": entry.error, "server": self._asked(entry)}
        entry.done(self._result(entry.query, entry.started, status, **fields))

    def _asked(self, entry: _Pending) -> str | None:
        """The nameserver of `entry`'s latest attempt (None before the first)."""
        return self._servers[entry.last].stats.nameserver if entry.last >= 0 else None

    def _retry(self, entry: _Pending) -> None:
        """Queue `entry`'s next attempt ahead of the queries not yet asked."""
        self._backlog.appendleft(entry)
        self._wake()

    def _refused(self, s: _Socket) -> None:
        """`s`'s server refuses datagrams (an ICMP error, for any of those sent on `s`):
        it is set aside, and each query whose latest attempt waits there is asked again,
        on the next server, without using up a try while another server may answer."""
        server = s.server
        server.refused(self._loop.time(), self._floor)
        others = len(self._servers) - 1
        for qid, entry in list(s.pending.items()):
            if entry.sock is not s or entry.qid != qid:
                continue  # only an earlier attempt was there: the later one still counts
            server.stats.failed += 1
            self._forget_current(entry)
            entry.error = CONNECTION_REFUSED
            if entry.refusals < others:
                entry.refusals += 1
                entry.attempt -= 1
            self._failed(entry)

    def _forget_current(self, entry: _Pending) -> None:
        """Drop `entry`'s latest attempt, in flight: its place in the window is free and
        its id no longer counts."""
        sock = entry.sock
        assert sock is not None
        del sock.pending[entry.qid]
        sock.server.inflight -= 1
        entry.sock = None
        entry.deadline = _INF

    @staticmethod
    def _forget_earlier(entry: _Pending, server: _Server, qid: int) -> None:
        """Drop the earlier attempt `qid` of `entry` at `server` (it has had its reply)."""
        assert entry.earlier is not None
        entry.earlier = [a for a in entry.earlier if not (a[0].server is server and a[1] == qid)]
        for s in (*server.sockets, *server.retired):
            if s.pending.get(qid) is entry:
                del s.pending[qid]

    def _end(self, entry: _Pending) -> None:
        """`entry` has its result: free its place in the window, forget all its ids."""
        entry.ended = True
        if entry.sock is not None:
            self._forget_current(entry)
        if entry.earlier is not None:
            for s, qid, _ in entry.earlier:
                if s.pending.get(qid) is entry:
                    del s.pending[qid]
            entry.earlier = None

    @staticmethod
    def _result(query: Query, started: float, status: Status, **fields: object) -> Result:
        elapsed = time.perf_counter() - started if started else 0.0
        return Result.for_query(query, status, source=Source.DNS, elapsed=elapsed, **fields)

    async def aclose(self) -> None:
        """Answer everything in flight or waiting with an ERROR result; close the sockets."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ended: dict[int, _Pending] = {}
        for server in self._servers:
            for s in (*server.sockets, *server.retired):
                self._loop.remove_reader(s.sock.fileno())
                for entry in s.pending.values():
                    ended[id(entry)] = entry
                s.pending.clear()
                s.sock.close()
        for entry in (*self._backlog, *self._resend):
            ended[id(entry)] = entry
        self._backlog.clear()
        self._resend.clear()
        for entry in ended.values():
            entry.sock = None
            entry.earlier = None
            fields = {"error": CLOSED, "server": self._asked(entry)}
            entry.done(self._result(entry.query, entry.started, Status.ERROR, **fields))


def _tries_for(loss: float, tries: int) -> int:
    """The attempts a query may make at a server that loses this share of them: `tries`,
    or more (up to MAX_TRIES) while losing all of them is likelier than _ALL_LOST."""
    if loss <= 0.0 or loss >= 0.5 or loss**tries <= _ALL_LOST:
        return tries
    return min(MAX_TRIES, math.ceil(math.log(_ALL_LOST) / math.log(loss)))
