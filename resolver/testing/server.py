"""Test helpers: an in-process authoritative DNS server on loopback, with fault injection.

`LoopbackDNSServer` answers from a `Zone` (a plain mapping, see below) over UDP and TCP on
127.0.0.1 or ::1 only; `serve_in_thread` runs one for synchronous or subprocess tests;
`to_zone_file` renders the same data for Knot DNS; `encode_query` / `decode_message` are a
small wire codec for tests. `EXAMPLE_ZONE` is the demo zone of `resolver demo`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import random
import socket
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, cast

from resolver.model import RecordType
from resolver.protocol import EDNS_PAYLOAD, FLAG_AA, FLAG_QR, FLAG_RD, FLAG_TC, Rcode, Type

__all__ = [
    "EXAMPLE_ORIGIN",
    "EXAMPLE_ZONE",
    "Fault",
    "LoopbackDNSServer",
    "Message",
    "MessageError",
    "Question",
    "ReceivedQuery",
    "Record",
    "Transport",
    "Zone",
    "decode_message",
    "encode_query",
    "serve_in_thread",
    "to_zone_file",
]

#: owner name -> type name ("A", "MX", ...) -> rdata in presentation form (TXT: str or bytes).
Zone = Mapping[str, Mapping[str, Sequence[str | bytes]]]
Transport = Literal["udp", "tcp"]
_Labels = tuple[bytes, ...]

_A, _NS, _CNAME, _SOA, _PTR, _MX, _TXT, _AAAA, _SRV, _OPT, _ANY, _CAA = (
    int(t) for t in (Type.A, Type.NS, Type.CNAME, Type.SOA, Type.PTR, Type.MX, Type.TXT,
                     Type.AAAA, Type.SRV, Type.OPT, Type.ANY, Type.CAA)
)  # fmt: skip
#: The types a zone may hold: those a query may ask.
_TYPES = {t.name: t.value for t in RecordType}
_TYPE_NAMES = {int(t): t.name for t in Type}
_NOERROR, _FORMERR, _SERVFAIL, _NXDOMAIN, _NOTIMP, _REFUSED = (int(r) for r in Rcode)
_QR, _AA, _TC, _RD = FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD
#: The server's own default limit on the CNAME steps it follows for an answer (less than
#: a resolver's `MAX_CNAME_CHAIN`, so tests can make chains the server cuts).
_MAX_CHAIN = 16
_EDNS_SIZE = EDNS_PAYLOAD  # the payload size the server advertises
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*/")


class MessageError(ValueError):
    """A DNS message or name that cannot be parsed or encoded."""


# names


def _parse_name(name: str) -> _Labels:
    """Presentation name (`\\.` and `\\DDD` escapes allowed, trailing dot optional) -> labels."""
    text = name.strip()
    labels: list[bytes] = []
    label = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and all(c in "0123456789" for c in digits):
                if int(digits) > 255:
                    raise MessageError(f"bad escape in {name!r}")
                label.append(int(digits))
                i += 4
                continue
            if i + 1 == len(text):
                raise MessageError(f"dangling backslash in {name!r}")
            label += text[i + 1].encode()
            i += 2
            continue
        if ch == ".":
            if not label and not (i == 0 and len(text) == 1):
                raise MessageError(f"empty label in {name!r}")
            if label:
                labels.append(bytes(label))
            label = bytearray()
        else:
            label += ch.encode()
        i += 1
    if label:
        labels.append(bytes(label))
    if any(len(lb) > 63 for lb in labels):
        raise MessageError(f"label longer than 63 bytes in {name!r}")
    if sum(len(lb) + 1 for lb in labels) + 1 > 255:
        raise MessageError(f"name longer than 255 bytes: {name!r}")
    return tuple(labels)


def _name_text(labels: _Labels, *, absolute: bool = False) -> str:
    """Labels -> presentation text, escaping specials; `absolute` adds the trailing dot."""
    if not labels:
        return "."
    out = ".".join(
        "".join(
            chr(b) if b in _SAFE else f"\\{chr(b)}" if 0x20 < b < 0x7F else f"\\{b:03d}"
            for b in label
        )
        for label in labels
    )
    return out + "." if absolute else out


def _wire_name(labels: _Labels) -> bytes:
    return b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\0"


def _key(labels: _Labels) -> _Labels:
    return tuple(lb.lower() for lb in labels)


def _read_name(msg: bytes, off: int) -> tuple[_Labels, int]:
    """Read a possibly compressed name at `off`; returns it and the offset after it."""
    labels: list[bytes] = []
    end = -1
    jumps = 0
    while True:
        if off >= len(msg):
            raise MessageError("name runs past the end of the message")
        n = msg[off]
        if n & 0xC0 == 0xC0:
            if off + 1 >= len(msg) or jumps > 64:
                raise MessageError("bad compression pointer")
            target = ((n & 0x3F) << 8) | msg[off + 1]
            if target >= off:
                raise MessageError("forward compression pointer")
            if end < 0:
                end = off + 2
            off, jumps = target, jumps + 1
        elif n & 0xC0:
            raise MessageError("unknown label type")
        elif n == 0:
            return tuple(labels), end if end >= 0 else off + 1
        else:
            if off + 1 + n > len(msg):
                raise MessageError("label runs past the end of the message")
            labels.append(msg[off + 1 : off + 1 + n])
            off += 1 + n


# rdata


def _int(text: str, bits: int) -> int:
    value = int(text)
    if not 0 <= value < 1 << bits:
        raise MessageError(f"{text} does not fit in {bits} bits")
    return value


def _quote(data: bytes) -> str:
    """A character-string in zone-file form: quoted, with `\\"`, `\\\\` and `\\DDD` escapes."""
    body = "".join(
        "\\" + chr(b) if b in b'"\\' else chr(b) if 0x20 <= b < 0x7F else f"\\{b:03d}" for b in data
    )
    return f'"{body}"'


def _unquote(text: str) -> bytes:
    """Inverse of `_quote` (quotes optional)."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and digits.isascii() and digits.isdigit():
                out.append(_int(digits, 8))
                i += 4
            else:
                out += text[i + 1].encode()
                i += 2
        else:
            out += text[i].encode()
            i += 1
    return bytes(out)


def _make_rdata(rtype: int, value: str | bytes) -> tuple[bytes, str]:
    """Presentation rdata -> (wire rdata, zone-file text)."""
    if rtype == _TXT:
        raw = value if isinstance(value, bytes) else value.encode()
        chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
        return b"".join(bytes([len(c)]) + c for c in chunks), " ".join(map(_quote, chunks))
    if isinstance(value, bytes):
        raise MessageError(f"only TXT rdata may be bytes, got {value!r}")
    f = value.split()
    try:
        if rtype in (_A, _AAAA):
            ip = (ipaddress.IPv4Address if rtype == _A else ipaddress.IPv6Address)(value.strip())
            return ip.packed, str(ip)
        if rtype == _CAA:
            flags, tag, rest = value.strip().split(None, 2)
            data = _unquote(rest)
            wire = bytes([_int(flags, 8), len(tag)]) + tag.encode() + data
            return wire, f"{int(flags)} {tag} {_quote(data)}"
        shapes = {_CNAME: "n", _NS: "n", _PTR: "n", _MX: "hn", _SRV: "hhhn", _SOA: "nniiiii"}
        shape = shapes[rtype]
        if len(f) != len(shape):
            raise MessageError(f"expected {len(shape)} fields")
        wire = b""
        for kind, part in zip(shape, f, strict=True):
            if kind == "n":
                wire += _wire_name(_parse_name(part))
            else:
                wire += _int(part, 16 if kind == "h" else 32).to_bytes(2 if kind == "h" else 4)
        text = " ".join(
            _name_text(_parse_name(p), absolute=True) if k == "n" else str(int(p))
            for k, p in zip(shape, f, strict=True)
        )
        return wire, text
    except (ValueError, KeyError) as exc:
        name = _TYPE_NAMES.get(rtype, str(rtype))
        raise MessageError(f"bad {name} rdata {value!r}: {exc}") from None


def _rdata_text(msg: bytes, rtype: int, off: int, end: int) -> str:
    """Wire rdata (inside `msg`, for compressed names) -> presentation text."""
    rdata = msg[off:end]
    if rtype == _A and len(rdata) == 4:
        return str(ipaddress.IPv4Address(rdata))
    if rtype == _AAAA and len(rdata) == 16:
        return str(ipaddress.IPv6Address(rdata))
    if rtype == _TXT:
        parts, i = [], 0
        while i < len(rdata):
            parts.append(_quote(rdata[i + 1 : i + 1 + rdata[i]]))
            i += 1 + rdata[i]
        return " ".join(parts)
    if rtype == _CAA and len(rdata) >= 2:
        tag = rdata[2 : 2 + rdata[1]].decode("ascii", "replace")
        return f"{rdata[0]} {tag} {_quote(rdata[2 + rdata[1] :])}"
    shape = {_CNAME: "n", _NS: "n", _PTR: "n", _MX: "hn", _SRV: "hhhn", _SOA: "nniiiii"}.get(rtype)
    if shape is None:
        return f"\\# {len(rdata)} {rdata.hex()}".rstrip()
    fields = []
    for kind in shape:
        if kind == "n":
            labels, off = _read_name(msg, off)
            fields.append(_name_text(labels, absolute=True))
        else:
            size = 2 if kind == "h" else 4
            fields.append(str(int.from_bytes(msg[off : off + size])))
            off += size
    return " ".join(fields)


def _type_code(rtype: RecordType | int | str) -> int:
    if isinstance(rtype, int):
        return rtype
    if isinstance(rtype, RecordType):
        return rtype.value
    try:
        return _TYPES[rtype.strip().upper()]
    except KeyError:
        raise MessageError(f"unsupported record type {rtype!r}") from None


# the wire codec for tests


@dataclass(frozen=True, slots=True)
class Question:
    """A question: `name` in presentation form (case as sent, no trailing dot)."""

    name: str
    type: int
    cls: int = 1


@dataclass(frozen=True, slots=True)
class Record:
    """A resource record; `text` is the rdata in presentation form (names absolute)."""

    name: str
    type: int
    cls: int
    ttl: int
    rdata: bytes
    text: str


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded DNS message."""

    id: int
    flags: int
    questions: tuple[Question, ...]
    answers: tuple[Record, ...]
    authority: tuple[Record, ...]
    additional: tuple[Record, ...]

    @property
    def rcode(self) -> int:
        """The (non-extended) RCODE."""
        return self.flags & 0xF

    @property
    def opcode(self) -> int:
        """The OPCODE."""
        return (self.flags >> 11) & 0xF

    @property
    def qr(self) -> bool:
        """The message is a response."""
        return bool(self.flags & _QR)

    @property
    def aa(self) -> bool:
        """Authoritative answer."""
        return bool(self.flags & _AA)

    @property
    def tc(self) -> bool:
        """Truncated."""
        return bool(self.flags & _TC)

    @property
    def rd(self) -> bool:
        """Recursion desired."""
        return bool(self.flags & _RD)

    @property
    def edns_size(self) -> int | None:
        """The UDP payload size of the OPT record, None without EDNS."""
        return next((r.cls for r in self.additional if r.type == _OPT), None)


def encode_query(
    name: str,
    rtype: RecordType | int | str = "A",
    *,
    qid: int = 0,
    rd: bool = True,
    edns_size: int | None = None,
) -> bytes:
    """A query message for `name` (case kept) and `rtype`, with an OPT record if `edns_size`."""
    header = struct.pack("!6H", qid, _RD if rd else 0, 1, 0, 0, 0 if edns_size is None else 1)
    body = _wire_name(_parse_name(name)) + struct.pack("!HH", _type_code(rtype), 1)
    if edns_size is not None:
        body += b"\0" + struct.pack("!HHIH", _OPT, edns_size, 0, 0)
    return header + body


def _read_question(msg: bytes, off: int) -> tuple[_Labels, int, int, int]:
    labels, off = _read_name(msg, off)
    if off + 4 > len(msg):
        raise MessageError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    return labels, qtype, qclass, off + 4


def _read_rr(msg: bytes, off: int) -> tuple[_Labels, int, int, int, int, int]:
    """-> owner, type, class, ttl, rdata offset, offset after the record."""
    labels, off = _read_name(msg, off)
    if off + 10 > len(msg):
        raise MessageError("truncated record")
    rtype, rclass, ttl, rdlen = struct.unpack_from("!HHIH", msg, off)
    if off + 10 + rdlen > len(msg):
        raise MessageError("rdata runs past the end of the message")
    return labels, rtype, rclass, ttl, off + 10, off + 10 + rdlen


def decode_message(data: bytes) -> Message:
    """Parse a DNS message; raises `MessageError` if it is not one."""
    if len(data) < 12:
        raise MessageError(f"message of {len(data)} bytes is shorter than a header")
    qid, flags, qd, an, ns, ar = struct.unpack_from("!6H", data)
    off = 12
    questions = []
    for _ in range(qd):
        labels, qtype, qclass, off = _read_question(data, off)
        questions.append(Question(_name_text(labels), qtype, qclass))
    sections: list[list[Record]] = [[], [], []]
    for section, count in zip(sections, (an, ns, ar), strict=True):
        for _ in range(count):
            labels, rtype, rclass, ttl, start, off = _read_rr(data, off)
            try:
                text = _rdata_text(data, rtype, start, off)
            except (MessageError, IndexError):
                text = f"\\# {off - start} {data[start:off].hex()}"
            section.append(Record(_name_text(labels), rtype, rclass, ttl, data[start:off], text))
    return Message(qid, flags, tuple(questions), *map(tuple, sections))


# zone data


@dataclass(frozen=True, slots=True)
class _RR:
    owner: _Labels
    type: int
    rdata: bytes
    text: str
    target: _Labels = ()  # a CNAME's target


@dataclass
class _ZoneData:
    nodes: dict[_Labels, dict[int, list[_RR]]] = field(default_factory=dict)
    ents: set[_Labels] = field(default_factory=set)  # every proper ancestor of an owner
    soas: dict[_Labels, _RR] = field(default_factory=dict)


def _compile(zone: Zone) -> _ZoneData:
    data = _ZoneData()
    spellings: dict[_Labels, _Labels] = {}
    for owner_text, rrsets in zone.items():
        owner = _parse_name(owner_text)
        owner = spellings.setdefault(_key(owner), owner)  # the first spelling wins
        node = data.nodes.setdefault(_key(owner), {})
        for type_name, values in rrsets.items():
            rtype = _type_code(type_name)
            rrset = node.setdefault(rtype, [])
            for value in [values] if isinstance(values, str | bytes) else values:
                wire, text = _make_rdata(rtype, value)
                target = _read_name(wire, 0)[0] if rtype == _CNAME else ()
                rr = _RR(owner, rtype, wire, text, target)
                if rr not in rrset:
                    rrset.append(rr)
            if not rrset:
                del node[rtype]
    for key, node in data.nodes.items():
        data.ents.update(key[i:] for i in range(1, len(key) + 1))
        if _SOA in node:
            data.soas[key] = node[_SOA][0]
    return data


def _default_soa(origin: _Labels, ttl: int) -> _RR:
    mname, rname = _wire_name((b"ns", *origin)), _wire_name((b"hostmaster", *origin))
    wire = mname + rname + struct.pack("!5I", 1, 3600, 600, 86400, ttl)
    return _RR(origin, _SOA, wire, _rdata_text(wire, _SOA, 0, len(wire)))


def _soa_minimum(rr: _RR) -> int:
    return int.from_bytes(rr.rdata[-4:])


def to_zone_file(zone: Zone, origin: str, ttl: int = 300) -> str:
    """Render the records of `zone` at or below `origin` as an RFC 1035 master file.

    Names are absolute; an SOA is added at the origin when the zone has none there.
    """
    data = _compile(zone)
    apex = _parse_name(origin)
    okey = _key(apex)
    lines = [f"$TTL {ttl}"]
    if _SOA not in data.nodes.get(okey, {}):
        soa = _default_soa(apex, ttl)
        lines.append(f"{_name_text(apex, absolute=True)} {ttl} IN SOA {soa.text}")
    for key in sorted(data.nodes, key=lambda k: k[::-1]):
        if key[len(key) - len(okey) :] != okey:
            continue
        for rtype in sorted(data.nodes[key], key=lambda t: (t != _SOA, t)):
            for rr in data.nodes[key][rtype]:
                owner = _name_text(rr.owner, absolute=True)
                lines.append(f"{owner} {ttl} IN {_TYPE_NAMES[rtype]} {rr.text}")
    return "\n".join(lines) + "\n"


# the server


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
    name: _Labels | None
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
    labels: _Labels
    type: int
    cls: int
    edns: int | None


def _name_key(name: str | None) -> _Labels | None:
    return None if name is None else _key(_parse_name(name))


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
        self._data = _compile(zone)
        if origin is None:
            keys = list(self._data.nodes)
            common: _Labels = keys[0] if keys else ()
            for key in keys[1:]:
                while common and key[len(key) - len(common) :] != common:
                    common = common[1:]
            apex = common
        else:
            apex = _parse_name(origin)
        self._default_soa = _default_soa(apex, ttl)
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
            if (key is None or _key(_parse_name(q.name)) == key)
            and (transport is None or q.transport == transport)
        )

    def _take_fault(self, key: _Labels, transport: Transport) -> _FaultRule | None:
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
        else:  # a subclass that answers its own way (tests/test_wire.py has one)
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
        name = _name_text(query.labels)
        self.queries.append(ReceivedQuery(transport, name, query.type, qid, client))
        rule = self._take_fault(_key(query.labels), transport)
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
        labels, qtype, qclass, off = _read_question(data, 12)
        edns = None
        for i in range(an + ns + ar):
            owner, rtype, rclass, _, _, off = _read_rr(data, off)
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
        question: _Labels | None = None,
    ) -> bytes:
        flags = _QR | _AA | (query.flags & 0x7900) | (_TC if tc else 0) | rcode
        edns = query.edns is not None
        header = struct.pack("!6H", query.id, flags, 1, len(answers), len(authority), int(edns))
        qname = _wire_name(query.labels if question is None else question)
        opt = b"\0" + struct.pack("!HHIH", _OPT, _EDNS_SIZE, 0, 0) if edns else b""
        return b"".join([header, qname, struct.pack("!HH", query.type, query.cls)]) + b"".join(
            [*answers, *authority, opt]
        )

    def _rr(self, owner: bytes, rr: _RR, ttl: int | None = None) -> bytes:
        ttl = self.ttl if ttl is None else ttl
        return owner + struct.pack("!HHIH", rr.type, 1, ttl, len(rr.rdata)) + rr.rdata

    def _soa_for(self, key: _Labels) -> bytes:
        soa = next(
            (self._data.soas[key[i:]] for i in range(len(key) + 1) if key[i:] in self._data.soas),
            self._default_soa,
        )
        return self._rr(_wire_name(soa.owner), soa, min(self.ttl, _soa_minimum(soa)))

    def _node(self, key: _Labels) -> dict[int, list[_RR]] | None:
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

    def _resolve(self, labels: _Labels, qtype: int) -> tuple[int, list[bytes], list[bytes]]:
        """-> rcode, answer records, authority records (wire), chasing CNAMEs in the zone."""
        answers: list[bytes] = []
        owner, seen = b"\xc0\x0c", set()  # the first owner points at the question
        for _ in range(self._max_chain):
            key = _key(labels)
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
            if _key(labels) in seen:
                break
        return _NOERROR, answers, []


@contextlib.contextmanager
def serve_in_thread(
    zone: Zone,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ttl: int = 300,
    origin: str | None = None,
) -> Iterator[LoopbackDNSServer]:
    """Run a started `LoopbackDNSServer` on its own event loop in a daemon thread."""
    server = LoopbackDNSServer(zone, host=host, port=port, ttl=ttl, origin=origin)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="LoopbackDNSServer", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


# the demo zone

EXAMPLE_ORIGIN = "example.test"
_V6 = ipaddress.IPv6Address("2001:db8::1").reverse_pointer
#: The zone of `resolver demo` (and the `dns_server` fixture): see examples/hosts.txt.
EXAMPLE_ZONE: dict[str, dict[str, list[str | bytes]]] = {
    "example.test": {
        "SOA": ["ns1.example.test hostmaster.example.test 2024010101 3600 600 604800 300"],
        "NS": ["ns1.example.test", "ns2.example.test"],
        "A": ["192.0.2.1"],
        "AAAA": ["2001:db8::1"],
        "MX": ["10 mail.example.test", "20 mail2.example.test"],
        "TXT": ["v=spf1 mx -all", 'say "hello", world'],
        "CAA": ['0 issue "ca.example.net"', '0 iodef "mailto:security@example.test"'],
    },
    "ns1.example.test": {"A": ["192.0.2.53"]},
    "ns2.example.test": {"AAAA": ["2001:db8::53"]},
    "www.example.test": {"A": ["192.0.2.10", "192.0.2.11"]},
    "v6only.example.test": {"AAAA": ["2001:db8::6"]},
    "dual.example.test": {"A": ["192.0.2.20"], "AAAA": ["2001:db8::20"]},
    "mail.example.test": {"A": ["192.0.2.25"], "AAAA": ["2001:db8::25"]},
    "mail2.example.test": {"A": ["192.0.2.26"]},
    "alias.example.test": {"CNAME": ["alias2.example.test"]},  # -> alias2 -> dual
    "alias2.example.test": {"CNAME": ["dual.example.test"]},
    "dangling.example.test": {"CNAME": ["missing.example.test"]},  # -> NXDOMAIN
    "text.example.test": {"TXT": ["héllo wörld", b'\x00\xff"raw\\', "x" * 300]},
    "_sip._tcp.example.test": {"SRV": ["10 60 5060 sip.example.test"]},
    "sip.example.test": {"A": ["192.0.2.30"]},
    "xn--bcher-kva.example.test": {"A": ["192.0.2.40"]},  # bücher.example.test
    "*.wild.example.test": {"A": ["192.0.2.50"], "TXT": ["wildcard"]},
    "2.0.192.in-addr.arpa": {
        "SOA": ["ns1.example.test hostmaster.example.test 1 3600 600 604800 300"],
        "NS": ["ns1.example.test"],
    },
    "1.2.0.192.in-addr.arpa": {"PTR": ["example.test"]},
    "10.2.0.192.in-addr.arpa": {"PTR": ["www.example.test"]},
    "8.b.d.0.1.0.0.2.ip6.arpa": {
        "SOA": ["ns1.example.test hostmaster.example.test 1 3600 600 604800 300"],
        "NS": ["ns1.example.test"],
    },
    _V6: {"PTR": ["example.test"]},
}
