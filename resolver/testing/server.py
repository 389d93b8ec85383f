"""An authoritative DNS server on loopback that answers from a `Zone`, with faults.

`LoopbackDNSServer` serves UDP and TCP on one port of 127.0.0.1 or ::1 only; `set_fault`
makes it drop, delay, truncate, garble or refuse chosen queries (`Fault`), and `queries`
records every query it parsed (`ReceivedQuery`).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

from resolver.protocol import EDNS_PAYLOAD, FLAG_AA, FLAG_QR, FLAG_TC, Rcode, Type
from resolver.testing.message import (
    Labels,
    MessageError,
    folded,
    name_text,
    parse_name,
    read_question,
    read_rr,
    wire_name,
)
from resolver.testing.zone import RR, Zone, compile_zone, default_soa, soa_minimum

__all__ = ["Fault", "LoopbackDNSServer", "ReceivedQuery", "Transport"]

Transport = Literal["udp", "tcp"]

_CNAME, _OPT, _ANY = int(Type.CNAME), int(Type.OPT), int(Type.ANY)
_NOERROR, _FORMERR, _SERVFAIL, _NXDOMAIN, _NOTIMP, _REFUSED = (int(r) for r in Rcode)
_QR, _AA, _TC = FLAG_QR, FLAG_AA, FLAG_TC
#: The server's own default limit on the CNAME steps it follows for an answer (less than
#: a resolver's `MAX_CNAME_CHAIN`, so tests can make chains the server cuts).
_MAX_CHAIN = 16
_EDNS_SIZE = EDNS_PAYLOAD  # the payload size the server advertises


class Fault(enum.Enum):
    """What to do instead of (or on top of) a normal answer.

    Every fault takes `set_fault`'s `delay`, `jitter`, `times`, `rate` and `transport`.
    A TCP-only server is `set_fault(None, Fault.TRUNCATE)`. Zone data, not faults, make
    oversized answers (many records: TC=1 on UDP beyond the client's EDNS size or 512),
    CNAME chains and loops (see `max_chain`) and wildcards (`*.` owners, RFC 4592).
    """

    DROP = "drop"  #: no reply at all
    DELAY = "delay"  #: the normal reply, after `delay` seconds (plus `jitter`)
    SERVFAIL = "servfail"  #: RCODE 2
    REFUSED = "refused"  #: RCODE 5
    FORMERR = "formerr"  #: RCODE 1
    NOTIMP = "notimp"  #: RCODE 4
    TRUNCATE = "truncate"  #: TC=1 and no answers on UDP; TCP is answered in full
    WRONG_ID = "wrong_id"  #: the reply with another message id (and no correct one)
    GARBAGE = "garbage"  #: a few random bytes that are not a DNS message
    WRONG_QUESTION = "wrong_question"  #: the right id with another question name
    #: no reply, for each query independently with probability `rate` (required); the
    #: query is still recorded, so from the client's side it is a lost query or reply
    LOSS = "loss"
    #: the normal reply (after `jitter` only), then the same bytes again `delay` later
    LATE_DUPLICATE = "late_duplicate"
    #: UDP only: the whole answer in one datagram however large, without TC, as from a
    #: server that ignores the client's EDNS size
    OVERSIZED = "oversized"
    #: TCP only: the 2-octet length and the first half of the reply, then the server
    #: closes the connection
    TCP_CLOSE = "tcp_close"


#: Faults that only make sense on one transport: the other skips the rule.
_ONLY_OVER: dict[Fault, Transport] = {
    Fault.TRUNCATE: "udp",
    Fault.OVERSIZED: "udp",
    Fault.TCP_CLOSE: "tcp",
}

_FAULT_RCODES = {
    Fault.SERVFAIL: _SERVFAIL,
    Fault.REFUSED: _REFUSED,
    Fault.FORMERR: _FORMERR,
    Fault.NOTIMP: _NOTIMP,
}


@dataclass(frozen=True, slots=True)
class ReceivedQuery:
    """One query the server received (`name` as sent, without trailing dot)."""

    transport: Transport
    name: str
    type: int
    id: int
    client: tuple[str, int]


@dataclass(slots=True)
class _FaultRule:
    name: Labels | None
    fault: Fault
    delay: float
    remaining: int | None
    transport: Transport | None
    rate: float | None = None  # the probability that a matching query gets the fault
    jitter: float = 0.0  # a random extra delay, uniform in [0, jitter]


@dataclass(frozen=True, slots=True)
class _Plan:
    """What to send for one query: `reply` after `delay` seconds (None: nothing)."""

    reply: bytes | None
    delay: float
    duplicate: float | None = None  # LATE_DUPLICATE: the same reply again this much later
    cut: bool = False  # TCP_CLOSE: part of the reply, then close the connection


@dataclass(frozen=True, slots=True)
class _Query:
    id: int
    flags: int
    labels: Labels
    type: int
    cls: int
    edns: int | None


def _name_key(name: str | None) -> Labels | None:
    return None if name is None else folded(parse_name(name))


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: LoopbackDNSServer) -> None:
        self.server = server
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        def send(reply: bytes) -> None:
            if self.transport is not None and not self.transport.is_closing():
                self.transport.sendto(reply, addr)

        self.server._dispatch(data, "udp", (str(addr[0]), int(addr[1])), send)

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP port unreachable from a client that went away

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _TCPProtocol(asyncio.Protocol):
    def __init__(self, server: LoopbackDNSServer) -> None:
        self.server = server
        self.closed = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.peer = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1]))
        self.server._connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 2:
            size = int.from_bytes(self.buffer[:2])
            if len(self.buffer) < 2 + size:
                break
            message = bytes(self.buffer[2 : 2 + size])
            del self.buffer[: 2 + size]
            self.server._dispatch(message, "tcp", self.peer, self.send, self.cut)

    def send(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(len(reply).to_bytes(2) + reply)

    def cut(self, reply: bytes) -> None:
        """TCP_CLOSE: the length and the first half of `reply`, then close."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(len(reply).to_bytes(2) + reply[: len(reply) // 2])
            self.transport.close()  # after the buffered bytes are written

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)


class LoopbackDNSServer:
    """An authoritative DNS server for `zone` on loopback, UDP and TCP on one port.

    Names absent from the zone get NXDOMAIN, names without the asked type NODATA, both
    with the closest enclosing SOA (or a default one at `origin`, which defaults to the
    longest common suffix of the zone's names) in the authority section. CNAMEs in the
    zone are followed for at most `max_chain` steps (and never twice to the same name:
    a loop ends at the repeat). `seed` seeds the faults' random choices.
    """

    def __init__(
        self,
        zone: Zone,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ttl: int = 300,
        origin: str | None = None,
        max_chain: int = _MAX_CHAIN,
        seed: int | None = 0,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"LoopbackDNSServer only listens on loopback, not {host!r}")
        if max_chain < 1:
            raise ValueError("max_chain must be at least 1")
        self._host, self._port, self.ttl = host, port, ttl
        self._max_chain = max_chain
        # Every random choice of the faults (LOSS, jitter, GARBAGE): the same `seed` and
        # the same queries in the same order give the same faults.
        self._random = random.Random(seed)
        self._data = compile_zone(zone)
        if origin is None:
            keys = list(self._data.nodes)
            common: Labels = keys[0] if keys else ()
            for key in keys[1:]:
                while common and key[len(key) - len(common) :] != common:
                    common = common[1:]
            apex = common
        else:
            apex = parse_name(origin)
        self._default_soa = default_soa(apex, ttl)
        self.queries: list[ReceivedQuery] = []
        self._faults: list[_FaultRule] = []
        self._lock = threading.Lock()
        self._udp: _UDPProtocol | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_TCPProtocol] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def host(self) -> str:
        """The listening address."""
        return self._host

    @property
    def port(self) -> int:
        """The listening port (UDP and TCP); the ephemeral one once started with port 0."""
        return self._port

    @property
    def nameserver(self) -> str:
        """`"127.0.0.1:PORT"` or `"[::1]:PORT"`, as c-ares and the CLI take it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._port}"

    async def __aenter__(self) -> LoopbackDNSServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        for _ in range(50 if self._port == 0 else 1):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            tcp = socket.socket(family, socket.SOCK_STREAM)
            try:
                # A client's whole window can arrive before this server's turn on the loop.
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
                udp.bind((self._host, self._port))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((self._host, udp.getsockname()[1]))
                return udp, tcp
            except OSError:
                udp.close()
                tcp.close()
                if self._port != 0:
                    raise
        raise OSError(f"no port free for both UDP and TCP on {self._host}")

    async def start(self) -> None:
        """Bind and start serving (the port is known afterwards); stop() allows a restart."""
        if self._loop is not None:
            raise RuntimeError("server already started")
        self._loop = loop = asyncio.get_running_loop()
        udp, tcp = self._bind()
        try:
            _, protocol = await loop.create_datagram_endpoint(lambda: _UDPProtocol(self), sock=udp)
            self._udp = protocol
            self._tcp = await loop.create_server(lambda: _TCPProtocol(self), sock=tcp)
        except BaseException:
            udp.close()
            tcp.close()
            await self.stop()
            raise
        self._port = udp.getsockname()[1]

    async def stop(self) -> None:
        """Stop serving: pending delayed replies are dropped, sockets closed."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        waits = []
        if self._udp is not None and self._udp.transport is not None:
            self._udp.transport.close()
            waits.append(self._udp.closed)
        if self._tcp is not None:
            self._tcp.close()
            for conn in list(self._connections):
                if conn.transport is not None:
                    conn.transport.close()
                waits.append(conn.closed)
            await self._tcp.wait_closed()
        await asyncio.gather(*waits)
        self._udp, self._tcp, self._loop = None, None, None

    # faults and bookkeeping (thread-safe)

    def set_fault(
        self,
        name: str | None,
        fault: Fault,
        *,
        delay: float = 0.0,
        times: int | None = None,
        transport: Transport | None = None,
        rate: float | None = None,
        jitter: float = 0.0,
    ) -> None:
        """Apply `fault` to queries for `name` (None: every name) on `transport` (None: both).

        `delay` postpones whatever is sent (LATE_DUPLICATE: the copy) and `jitter` adds a
        random delay, uniform in [0, jitter], drawn per query; delayed replies never hold
        up others. `rate` makes the fault hit each matching query with that probability
        (LOSS requires it); a query it spares is answered normally. `times` limits the
        fault to the first N queries it hits. A rule for the same name and transport
        replaces the previous one; rules for a name take precedence over name-less ones.
        """
        if times is not None and times < 1:
            raise ValueError("times must be at least 1")
        if delay < 0 or jitter < 0:
            raise ValueError("delay and jitter must not be negative")
        if rate is not None and not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be a probability, from 0 to 1")
        if fault is Fault.LOSS and rate is None:
            raise ValueError("Fault.LOSS needs rate=, the probability of losing a query")
        rule = _FaultRule(_name_key(name), fault, delay, times, transport, rate, jitter)
        with self._lock:
            self._faults = [
                r for r in self._faults if (r.name, r.transport) != (rule.name, rule.transport)
            ]
            self._faults.append(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        with self._lock:
            self._faults.clear()

    def count(self, name: str | None = None, transport: Transport | None = None) -> int:
        """How many queries were received for `name` (any case) over `transport`."""
        key = _name_key(name)
        return sum(
            1
            for q in list(self.queries)
            if (key is None or folded(parse_name(q.name)) == key)
            and (transport is None or q.transport == transport)
        )

    def _take_fault(self, key: Labels, transport: Transport) -> _FaultRule | None:
        with self._lock:
            rules = self._faults[::-1]
            for rule in [r for r in rules if r.name is not None] + [r for r in rules if not r.name]:
                if rule.name not in (None, key) or rule.transport not in (None, transport):
                    continue
                if rule.fault in _ONLY_OVER and _ONLY_OVER[rule.fault] != transport:
                    continue  # passed over: the next rule may apply
                if rule.rate is not None and self._random.random() >= rule.rate:
                    return None  # spared this time: a normal answer
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._faults.remove(rule)
                return rule
        return None

    # answering

    def _dispatch(
        self,
        data: bytes,
        transport: Transport,
        client: tuple[str, int],
        send: Callable[[bytes], None],
        cut: Callable[[bytes], None] | None = None,
    ) -> None:
        if type(self)._handle is LoopbackDNSServer._handle:
            plan = self._plan(data, transport, client)
        else:  # a subclass that answers its own way (tests/test_codec.py has one)
            plan = _Plan(*self._handle(data, transport, client))
        reply = plan.reply
        if reply is None:
            return
        self._send_later(plan.delay, cut if plan.cut and cut is not None else send, reply)
        if plan.duplicate is not None:
            self._send_later(plan.delay + plan.duplicate, send, reply)

    def _send_later(self, delay: float, send: Callable[[bytes], None], reply: bytes) -> None:
        if delay <= 0 or self._loop is None:
            send(reply)
            return

        def fire() -> None:
            self._timers.discard(timer)
            send(reply)

        timer = self._loop.call_later(delay, fire)
        self._timers.add(timer)

    def _handle(
        self, data: bytes, transport: Transport, client: tuple[str, int]
    ) -> tuple[bytes | None, float]:
        """The reply to `data` and its delay (what a subclass may override instead)."""
        plan = self._plan(data, transport, client)
        return plan.reply, plan.delay

    def _plan(self, data: bytes, transport: Transport, client: tuple[str, int]) -> _Plan:
        if len(data) < 12:
            return _Plan(None, 0.0)
        qid, flags = struct.unpack_from("!HH", data)
        if flags & _QR:
            return _Plan(None, 0.0)  # a response, not a query
        try:
            query = self._parse(data)
        except (MessageError, struct.error):
            formerr = struct.pack("!6H", qid, _QR | (flags & 0x7900) | _FORMERR, 0, 0, 0, 0)
            return _Plan(formerr, 0.0)
        name = name_text(query.labels)
        self.queries.append(ReceivedQuery(transport, name, query.type, qid, client))
        rule = self._take_fault(folded(query.labels), transport)
        if rule is None:
            fault, delay = None, 0.0
        else:
            fault, delay = rule.fault, rule.delay
            if rule.jitter:
                delay += self._random.uniform(0.0, rule.jitter)
        if fault in (Fault.DROP, Fault.LOSS):
            return _Plan(None, 0.0)
        if fault is Fault.GARBAGE:
            return _Plan(self._random.randbytes(self._random.randint(4, 11)), delay)
        if fault in _FAULT_RCODES:
            return _Plan(self._reply(query, _FAULT_RCODES[fault], [], []), delay)
        if query.flags & 0x7800:
            return _Plan(self._reply(query, _NOTIMP, [], []), delay)
        if query.cls != 1:
            return _Plan(self._reply(query, _REFUSED, [], []), delay)
        rcode, answers, authority = self._resolve(query.labels, query.type)
        question = (b"wrong-question", b"invalid") if fault is Fault.WRONG_QUESTION else None
        reply = self._reply(query, rcode, answers, authority, question=question)
        limit = max(512, query.edns or 0) if transport == "udp" else 65535
        if fault is Fault.OVERSIZED:
            limit = 65535
        if len(reply) > limit or fault is Fault.TRUNCATE:
            reply = self._reply(query, rcode, [], [], tc=True)
        if fault is Fault.WRONG_ID:
            reply = ((qid + 1) & 0xFFFF).to_bytes(2) + reply[2:]
        if fault is Fault.LATE_DUPLICATE and rule is not None:
            return _Plan(reply, delay - rule.delay, duplicate=rule.delay)  # jitter, then delay
        return _Plan(reply, delay, cut=fault is Fault.TCP_CLOSE)

    @staticmethod
    def _parse(data: bytes) -> _Query:
        qid, flags, qd, an, ns, ar = struct.unpack_from("!6H", data)
        if qd != 1:
            raise MessageError("a query must have exactly one question")
        labels, qtype, qclass, off = read_question(data, 12)
        edns = None
        for i in range(an + ns + ar):
            owner, rtype, rclass, _, _, off = read_rr(data, off)
            if rtype == _OPT:
                if i < an + ns or owner or edns is not None:
                    raise MessageError("misplaced or repeated OPT record")
                edns = rclass
        return _Query(qid, flags, labels, qtype, qclass, edns)

    def _reply(
        self,
        query: _Query,
        rcode: int,
        answers: list[bytes],
        authority: list[bytes],
        *,
        tc: bool = False,
        question: Labels | None = None,
    ) -> bytes:
        flags = _QR | _AA | (query.flags & 0x7900) | (_TC if tc else 0) | rcode
        edns = query.edns is not None
        header = struct.pack("!6H", query.id, flags, 1, len(answers), len(authority), int(edns))
        qname = wire_name(query.labels if question is None else question)
        opt = b"\0" + struct.pack("!HHIH", _OPT, _EDNS_SIZE, 0, 0) if edns else b""
        return b"".join([header, qname, struct.pack("!HH", query.type, query.cls)]) + b"".join(
            [*answers, *authority, opt]
        )

    def _rr(self, owner: bytes, rr: RR, ttl: int | None = None) -> bytes:
        ttl = self.ttl if ttl is None else ttl
        return owner + struct.pack("!HHIH", rr.type, 1, ttl, len(rr.rdata)) + rr.rdata

    def _soa_for(self, key: Labels) -> bytes:
        soa = next(
            (self._data.soas[key[i:]] for i in range(len(key) + 1) if key[i:] in self._data.soas),
            self._default_soa,
        )
        return self._rr(wire_name(soa.owner), soa, min(self.ttl, soa_minimum(soa)))

    def _node(self, key: Labels) -> dict[int, list[RR]] | None:
        """The records at `key`: its own, {} for an empty non-terminal, a wildcard's, or None."""
        node = self._data.nodes.get(key)
        if node is not None:
            return node
        if key in self._data.ents:
            return {}
        for i in range(1, len(key) + 1):  # RFC 4592: the wildcard at the closest encloser
            if key[i:] in self._data.nodes or key[i:] in self._data.ents:
                return self._data.nodes.get((b"*", *key[i:]))
        return None

    def _resolve(self, labels: Labels, qtype: int) -> tuple[int, list[bytes], list[bytes]]:
        """-> rcode, answer records, authority records (wire), chasing CNAMEs in the zone."""
        answers: list[bytes] = []
        owner, seen = b"\xc0\x0c", set()  # the first owner points at the question
        for _ in range(self._max_chain):
            key = folded(labels)
            seen.add(key)
            node = self._node(key)
            if node is None:
                return _NXDOMAIN, answers, [self._soa_for(key)]
            rrs = [rr for s in node.values() for rr in s] if qtype == _ANY else node.get(qtype)
            if rrs:
                return _NOERROR, answers + [self._rr(owner, rr) for rr in rrs], []
            if _CNAME not in node:
                return _NOERROR, answers, [self._soa_for(key)]
            cname = node[_CNAME][0]
            answers.append(self._rr(owner, cname))
            labels, owner = cname.target, cname.rdata
            if folded(labels) in seen:
                break
        return _NOERROR, answers, []
