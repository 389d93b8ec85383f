"""The DNS codec of the wire engine: queries built, replies decoded; pure functions, no I/O.

`decode_reply` gives exactly what the c-ares engine (`resolver.engines.cares`) gives for the
same reply, or raises: `Mismatch` for a packet that is not an answer to the query (the
engine ignores it and keeps waiting), `BadReply` for a reply it cannot use as an answer
(the engine hands the query to c-ares). Every record of every section is checked at least
as strictly as c-ares 1.34 checks it, so a reply c-ares calls malformed is never decoded
here; the few things c-ares lets pass and this codec does not (an A record of 5 octets, a
name over 255 octets, HINFO or HTTPS records...) are left to c-ares.

Names as text follow c-ares (`ares_fetch_dnsname_into_buf`; checked against pycares 5.2 /
c-ares 1.34 by serving such names from `LoopbackDNSServer`): labels joined by `.`, no
trailing dot, the root is `""`, case kept as received; bytes 0x20-0x7E (the space too) are
kept, but `" . ; \\ ( ) @ $` get a backslash; bytes below 0x20 and from 0x7F up are `\\DDD`
(three decimal digits). Comparisons (question, CNAME chain) are ASCII-case-insensitive,
like c-ares' strcasecmp and the c-ares engine's `str.lower()`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import NamedTuple

from resolver.model import CAA, MX, SOA, SRV, Answer
from resolver.protocol import (
    EDNS_PAYLOAD,
    FLAG_QR,
    FLAG_TC,
    MASK_OPCODE,
    MASK_RCODE,
    MAX_CNAME_CHAIN,
    Rcode,
    Type,
)

__all__ = [
    "BadReply",
    "Decoded",
    "Mismatch",
    "build_query",
    "decode_reply",
    "encode_name",
    "render_text",
    "reply_id",
]

# Plain ints for the hot paths (an IntEnum compares slower).
_A, _NS, _CNAME, _SOA, _PTR, _MX, _TXT, _AAAA, _SRV, _OPT, _CAA = (
    int(t) for t in (Type.A, Type.NS, Type.CNAME, Type.SOA, Type.PTR, Type.MX, Type.TXT,
                     Type.AAAA, Type.SRV, Type.OPT, Type.CAA)
)  # fmt: skip
#: Types c-ares 1.34 parses strictly that this codec does not. A reply holding one is left
#: to c-ares.
_UNSUPPORTED = frozenset(
    int(t)
    for t in (
        Type.HINFO,
        Type.SIG,
        Type.NAPTR,
        Type.TLSA,
        Type.SVCB,
        Type.HTTPS,
        Type.ANY,
        Type.URI,
    )
)
_MAX_CHAIN = MAX_CNAME_CHAIN
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_PTR_RR = struct.Struct("!HHHIH")  # a compression pointer, then the fixed fields
_ROOT_RR = struct.Struct("!xHHIH")  # the root, then the fixed fields
_U16 = struct.Struct("!H")
_new = tuple.__new__  # NamedTuple(...) without its Python-level __new__, for per-reply tuples
_SOA_TAIL = struct.Struct("!IIIII")
_SRV_HEAD = struct.Struct("!HHH")
_QR, _QR_OPCODE, _TC, _RCODE = FLAG_QR, FLAG_QR | MASK_OPCODE, FLAG_TC, MASK_RCODE
_NOERROR, _SERVFAIL, _NXDOMAIN = int(Rcode.NOERROR), int(Rcode.SERVFAIL), int(Rcode.NXDOMAIN)
#: The rcodes whose reply's CNAME chain is kept (see `Decoded`).
_CHAINED = frozenset({_NOERROR, _SERVFAIL, _NXDOMAIN})

# c-ares' rendering of a name's bytes: printable ASCII but `".;\()@$` as is, those with a
# backslash, the rest as \DDD.
_RESERVED = b'".;\\()@$'
_PLAIN = bytes(b for b in range(0x20, 0x7F) if b not in _RESERVED)
_ESCAPED = tuple(
    chr(b) if b in _PLAIN else f"\\{chr(b)}" if 0x20 <= b < 0x7F else f"\\{b:03d}"
    for b in range(256)
)


class BadReply(ValueError):
    """The reply cannot be used as an answer (malformed, truncated, unsupported)."""


class Mismatch(BadReply):
    """The packet is not an answer to this query (spoofed or stale): ignore it."""


class Decoded(NamedTuple):
    """A reply to the query: RCODE, TC, the answers and their smallest TTL, the CNAME chain.

    `answers` and `ttl` are empty / None unless rcode is 0 and TC is clear; `cnames` is
    also kept for NXDOMAIN (a dangling CNAME: the chain's end does not exist) and SERVFAIL
    (a resolver that followed the chain, then failed), and empty for other rcodes.
    `rcode` includes the extended bits of any OPT record, as c-ares reads them (a truncated
    reply is not read past its question: its rcode is the header's).
    """

    rcode: int
    truncated: bool
    answers: tuple[Answer, ...]
    ttl: int | None
    cnames: tuple[str, ...]


def render_text(data: bytes) -> str:
    """TXT data as one line of text: UTF-8 kept, control and undecodable bytes as `\\DDD`."""
    if not data.translate(None, _TEXT_PLAIN):  # printable ASCII without a backslash
        return data.decode("ascii")
    return _TEXT_ESCAPED.sub(_escape, data.decode("utf-8", "surrogateescape"))


_TEXT_PLAIN = bytes(b for b in range(0x20, 0x7F) if b != 0x5C)
# C0 and C1 controls, DEL, the backslash, and the undecodable bytes (from surrogateescape)
_TEXT_ESCAPED = re.compile("[\x00-\x1f\x7f-\x9f\\\\\udc80-\udcff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x5C:
        return "\\\\"
    return f"\\{code - 0xDC00 if code > 0xFF else code:03d}"


# queries


def encode_name(name: str) -> bytes:
    """A normalized name (letters, digits, `-`, `_`; no trailing dot) -> wire labels + root."""
    head, _, rest = name.partition(".")
    tail = _TAILS.get(rest)  # names in bulk share their parent: its wire form is kept
    if tail is not None and len(name) <= 253 and _LABEL.fullmatch(head):
        return _LENGTH[len(head)] + head.encode() + tail
    wire = _encode_name(name)
    if rest:
        if len(_TAILS) >= 1024:
            _TAILS.clear()
        _TAILS[rest] = wire[len(head) + 1 :]
    return wire


_TAILS: dict[str, bytes] = {}
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")


def _encode_name(name: str) -> bytes:
    if not name.isascii():
        raise BadReply(f"not an ASCII name: {name!r}")
    raw = name.encode("ascii")
    if len(raw) > 253 or not _WIRE_NAME.fullmatch(raw):
        if len(raw) > 253 and _WIRE_NAME.fullmatch(raw):
            raise BadReply(f"name over 255 octets: {name!r}")
        if any(len(label) > 63 for label in raw.split(b".")):
            raise BadReply(f"label over 63 octets in {name!r}")
        if raw.translate(None, _NAME_BYTES):
            raise BadReply(f"not only letters, digits, '-' and '_' in {name!r}")
        raise BadReply(f"empty label in {name!r}")
    return b"".join([_LENGTH[len(label)] + label for label in raw.split(b".")]) + b"\0"


#: What `encode_name` takes: labels of 1 to 63 letters, digits, `-` or `_`.
_WIRE_NAME = re.compile(rb"(?:[A-Za-z0-9_-]{1,63}\.)*[A-Za-z0-9_-]{1,63}")
_LENGTH = tuple(bytes((size,)) for size in range(64))
_NAME_BYTES = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."

_SUFFIXES: dict[tuple[int, int | None], bytes] = {}


def build_query(
    qid: int, qname: bytes, qtype: int, *, edns_payload: int | None = EDNS_PAYLOAD
) -> bytes:
    """A query (RD set, one question of class IN, an OPT record unless `edns_payload` is None)."""
    suffix = _SUFFIXES.get((qtype, edns_payload))
    if suffix is None:
        suffix = struct.pack("!HH", qtype, 1)
        if edns_payload is not None:
            suffix += b"\0" + _RR.pack(_OPT, edns_payload, 0, 0)
        if len(_SUFFIXES) < 1024:
            _SUFFIXES[qtype, edns_payload] = suffix
    return _HEADER.pack(qid, 0x0100, 1, 0, 0, edns_payload is not None) + qname + suffix


def reply_id(packet: bytes) -> int | None:
    """The message id of a packet that is at least a header long, else None."""
    return (packet[0] << 8 | packet[1]) if len(packet) >= 12 else None


# names


def _name(packet: bytes, off: int, seen: dict[int, bytes]) -> tuple[bytes, int]:
    """The name at `off`, uncompressed (case kept), and the offset after it.

    Pointers must go strictly back, before every label read so far (c-ares' rule, which
    also ends loops). `seen` maps offsets to the names read from there, pointer targets
    included, so that a long chain of pointers is walked once per message, not per name.
    """
    start = low = seg = off
    end = -1
    limit = off + 254  # where the octets read so far (the root's excepted) must end
    chunks: list[bytes] = []
    jumps: list[tuple[int, int]] = []  # (target, index of its first chunk)
    try:
        while True:
            c = packet[off]
            if c == 0:
                chunks.append(packet[seg : off + 1])
                if end < 0:
                    end = off + 1
                break
            if c < 0x40:
                off += c + 1
                if off > limit:
                    raise BadReply("name longer than 255 octets")
                continue
            if c < 0xC0:
                raise BadReply("unknown label type")
            ptr = (c & 0x3F) << 8 | packet[off + 1]
            if ptr >= low:
                raise BadReply("compression pointer does not point back")
            chunks.append(packet[seg:off])
            if end < 0:
                end = off + 2
            limit += ptr - off
            known = seen.get(ptr)
            if known is not None:
                if ptr + len(known) - 1 > limit:
                    raise BadReply("name longer than 255 octets")
                chunks.append(known)
                break
            jumps.append((ptr, len(chunks)))
            off = low = seg = ptr
    except IndexError:
        raise BadReply("name runs past the end of the message") from None
    # The name from each jump's target on, built from the end (linear in the chunks).
    i = len(chunks) - 1
    wire = chunks[i]
    for target, first in reversed(jumps):
        while i > first:
            i -= 1
            wire = chunks[i] + wire
        seen[target] = wire
    while i:
        i -= 1
        wire = chunks[i] + wire
    seen[start] = wire
    return wire, end


_TEXTS: dict[bytes, str] = {}  # a memo of _text: the same targets come back in bulk runs


def _text(wire: bytes) -> str:
    """An uncompressed wire name as c-ares renders it (see the module docstring)."""
    text = _TEXTS.get(wire)
    if text is not None:
        return text
    labels: list[bytes] = []
    i = 0
    c = wire[0]
    while c:
        labels.append(wire[i + 1 : i + 1 + c])
        i += c + 1
        c = wire[i]
    dotted = b".".join(labels)
    if not dotted.translate(None, _PLAIN_DOT) and dotted.count(b".") == len(labels) - 1:
        text = dotted.decode("ascii")
    else:
        text = ".".join(["".join([_ESCAPED[b] for b in label]) for label in labels])
    if len(_TEXTS) >= 4096:
        _TEXTS.clear()
    _TEXTS[wire] = text
    return text


_PLAIN_DOT = _PLAIN + b"."


# rdata: each reader takes (packet, start, end, seen), checks the rdata fills exactly
# start..end, and returns the answer (or None for the types only checked)


def _rd_a(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    if end - start != 4:
        raise BadReply("A rdata is not 4 octets")
    return IPv4Address(packet[start:end])


def _rd_aaaa(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    if end - start != 16:
        raise BadReply("AAAA rdata is not 16 octets")
    return IPv6Address(packet[start:end])


def _rd_name(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> bytes:
    wire, after = _name(packet, start, seen)
    if after != end:
        raise BadReply("name does not fill the rdata")
    return wire


def _rd_host(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    return _text(_rd_name(packet, start, end, seen))


def _rd_mx(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    if end - start < 3:
        raise BadReply("MX rdata too short")
    exchange = _rd_name(packet, start + 2, end, seen)
    return MX(_U16.unpack_from(packet, start)[0], _text(exchange))


def _rd_srv(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    if end - start < 7:
        raise BadReply("SRV rdata too short")
    target = _rd_name(packet, start + 6, end, seen)
    priority, weight, port = _SRV_HEAD.unpack_from(packet, start)
    return SRV(priority, weight, port, _text(target))


def _rd_soa(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    mname, off = _name(packet, start, seen)
    rname, off = _name(packet, off, seen)
    if end - off != 20:
        raise BadReply("SOA rdata does not end with 5 numbers")
    serial, refresh, retry, expire, minimum = _SOA_TAIL.unpack_from(packet, off)
    return SOA(_text(mname), _text(rname), serial, refresh, retry, expire, minimum)


def _strings(packet: bytes, start: int, end: int) -> list[bytes]:
    if start == end:
        raise BadReply("TXT rdata without a character-string")
    parts: list[bytes] = []
    while start < end:
        nxt = start + 1 + packet[start]
        if nxt > end:
            raise BadReply("character-string runs past the rdata")
        parts.append(packet[start + 1 : nxt])
        start = nxt
    return parts


def _rd_txt(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    return render_text(b"".join(_strings(packet, start, end)))


def _rd_caa(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> Answer:
    if end - start < 2:
        raise BadReply("CAA rdata too short")
    value_at = start + 2 + packet[start + 1]
    tag = packet[start + 2 : value_at]
    if not tag or value_at >= end or tag.translate(None, _PRINTABLE):
        raise BadReply("CAA tag empty or not printable, or value empty")
    # pycares hands the value over as a C string (cut at the first NUL) and as `bytes`
    # when it is not ASCII, which the c-ares engine renders through str().
    value = packet[value_at:end].partition(b"\0")[0]
    text = value.decode("ascii") if value.isascii() else str(value)
    return CAA(packet[start], tag.decode("ascii"), render_text(text.encode()))


_PRINTABLE = bytes(range(0x20, 0x7F))


def _rd_opt(packet: bytes, start: int, end: int) -> None:
    while start < end:
        if end - start < 4:
            raise BadReply("truncated EDNS option")
        start += 4 + _U16.unpack_from(packet, start + 2)[0]
        if start > end:
            raise BadReply("EDNS option runs past the rdata")


def _rd_check_name(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> None:
    _rd_name(packet, start, end, seen)


def _rd_check_mx(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> None:
    if end - start < 3:
        raise BadReply("MX rdata too short")
    _rd_name(packet, start + 2, end, seen)


def _rd_check_srv(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> None:
    if end - start < 7:
        raise BadReply("SRV rdata too short")
    _rd_name(packet, start + 6, end, seen)


def _rd_check_soa(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> None:
    off = _name(packet, _name(packet, start, seen)[1], seen)[1]
    if end - off != 20:
        raise BadReply("SOA rdata does not end with 5 numbers")


def _rd_check_txt(packet: bytes, start: int, end: int, seen: dict[int, bytes]) -> None:
    _strings(packet, start, end)


_Reader = Callable[[bytes, int, int, dict[int, bytes]], object]

#: Answers of the asked type.
_DECODE: dict[int, Callable[[bytes, int, int, dict[int, bytes]], Answer]] = {
    _A: _rd_a,
    _AAAA: _rd_aaaa,
    _CNAME: _rd_host,
    _PTR: _rd_host,
    _NS: _rd_host,
    _MX: _rd_mx,
    _SRV: _rd_srv,
    _SOA: _rd_soa,
    _TXT: _rd_txt,
    _CAA: _rd_caa,
}
#: Records c-ares parses (OPT aside) that are not decoded: checked as strictly as answers.
_CHECK: dict[int, _Reader] = {
    _A: _rd_a,
    _AAAA: _rd_aaaa,
    _CNAME: _rd_check_name,
    _PTR: _rd_check_name,
    _NS: _rd_check_name,
    _MX: _rd_check_mx,
    _SRV: _rd_check_srv,
    _SOA: _rd_check_soa,
    _TXT: _rd_check_txt,
    _CAA: _rd_caa,
}
_QUESTION_TAIL = {qtype: struct.pack("!HH", qtype, 1) for qtype in _DECODE}
#: The classes c-ares accepts on the records of the types above: IN, CHAOS, HESIOD, NONE.
_CLASSES = frozenset({1, 3, 4, 254})


# replies

_EMPTY: dict[tuple[int, bool], Decoded] = {}
_NODATA = Decoded(0, False, (), None, ())


def _empty(rcode: int, truncated: bool) -> Decoded:
    """A shared result without answers (they are immutable)."""
    decoded = _EMPTY.get((rcode, truncated))
    if decoded is None:
        decoded = _EMPTY[rcode, truncated] = Decoded(rcode, truncated, (), None, ())
    return decoded


#: Types whose answers have a fixed size: (rdata length, how an answer is made).
_FIXED: dict[int, tuple[int, Callable[[bytes], Answer]]] = {
    _A: (4, IPv4Address),
    _AAAA: (16, IPv6Address),
}
#: An answer owned by the question's name (a pointer to offset 12), of the type, class IN.
_OWN_HEAD = {qtype: struct.pack("!HHH", 0xC00C, qtype, 1) for qtype in (_A, _AAAA, _CNAME, _PTR)}
_CNAME_HEAD, _PTR_HEAD = _OWN_HEAD[_CNAME], _OWN_HEAD[_PTR]
_TTL_LENGTH = struct.Struct("!IH")
#: An OPT record: the root, type 41; its extended RCODE byte follows the class.
_OPT_HEAD = b"\0\0\x29"


def _fixed_answers(packet: bytes, off: int, ancount: int, qtype: int) -> Decoded | None:
    """The commonest reply, read without the general loop: `ancount` A or AAAA answers
    owned by the question's name, then an empty OPT record without an extended RCODE,
    ending the message. None for anything else (the general loop decides)."""
    size, make = _FIXED[qtype]
    head = _OWN_HEAD[qtype]
    step = 12 + size
    end = off + ancount * step
    if end + 11 != len(packet) or not _empty_opt(packet, end):
        return None
    if ancount == 1:  # most often: no loop, no list
        if not packet.startswith(head, off):
            return None
        ttl, length = _TTL_LENGTH.unpack_from(packet, off + 6)
        if length != size:
            return None
        return _new(Decoded, (0, False, (make(packet[off + 12 : end]),), ttl, ()))
    answers: list[Answer] = []
    least = -1
    for at in range(off, end, step):
        if not packet.startswith(head, at):
            return None
        ttl, length = _TTL_LENGTH.unpack_from(packet, at + 6)
        if length != size:
            return None
        answers.append(make(packet[at + 12 : at + step]))
        if least < 0 or ttl < least:
            least = ttl
    return _new(Decoded, (0, False, tuple(answers), least, ()))


def _one_cname(packet: bytes, off: int, qname: bytes, qtype: int) -> Decoded | None:
    """A CNAME owned by the question's name, one A or AAAA answer owned by its target,
    then an empty OPT ending the message; None for anything else."""
    n = len(packet)
    if off + 12 > n or not packet.startswith(_CNAME_HEAD, off):
        return None
    start = off + 12
    end = start + _U16.unpack_from(packet, off + 10)[0]
    size, make = _FIXED[qtype]
    if end + 12 + size + 11 != n or (target := _target(packet, start, end, qname)) is None:
        return None
    lower = target.lower()
    if lower == qname.lower():
        return None  # a loop: the general loop says what
    if not packet.startswith(_U16.pack(0xC000 | start), end):
        return None
    rtype, rclass, ttl, length = _RR.unpack_from(packet, end + 2)
    if rtype != qtype or rclass != 1 or length != size or not _empty_opt(packet, n - 11):
        return None
    answer = make(packet[end + 12 : end + 12 + size])
    return _new(Decoded, (0, False, (answer,), ttl, (_text(lower),)))


def _one_ptr(packet: bytes, off: int, qname: bytes) -> Decoded | None:
    """A PTR answer owned by the question's name, then an empty OPT ending the message;
    None for anything else."""
    n = len(packet)
    if off + 12 > n or not packet.startswith(_PTR_HEAD, off):
        return None
    ttl, length = _TTL_LENGTH.unpack_from(packet, off + 6)
    start = off + 12
    end = start + length
    if end + 11 != n or not _empty_opt(packet, end):
        return None
    target = _target(packet, start, end, qname)
    return None if target is None else _new(Decoded, (0, False, (_text(target),), ttl, ()))


def _target(packet: bytes, start: int, end: int, qname: bytes) -> bytes | None:
    """The name filling the rdata `start`..`end`, uncompressed, if `_name_end` reads it."""
    if _name_end(packet, start, end, qname) != end:
        return None
    if packet[end - 1] == 0:
        return packet[start:end]
    ptr = (packet[end - 2] & 0x3F) << 8 | packet[end - 1]  # into the question
    return packet[start : end - 2] + packet[ptr : 12 + len(qname)]


def _soa_only(packet: bytes, off: int, qname: bytes) -> bool:
    """Whether what follows the question is exactly an SOA record (class IN) owned by a
    name of the question, whose names end at one, then an empty OPT ending the message:
    a negative answer that every check of the general loop would pass."""
    if off + 12 > len(packet) or packet[off] < 0xC0:
        return False
    word, rtype, rclass, _, length = _PTR_RR.unpack_from(packet, off)
    if rtype != _SOA or rclass != 1 or not _in_question(qname, word & 0x3FFF):
        return False
    start = off + 12
    end = start + length
    if end + 11 != len(packet) or not _empty_opt(packet, end):
        return False
    at = _name_end(packet, _name_end(packet, start, end, qname), end, qname)
    return at > 0 and end - at == 20


def _in_question(qname: bytes, ptr: int) -> bool:
    """Whether `ptr` is where a label (or the root) of the question's name starts."""
    target = ptr - 12
    if not 0 <= target < len(qname):
        return False
    at = 0
    while at < target:
        at += qname[at] + 1
    return at == target


def _name_end(packet: bytes, at: int, end: int, qname: bytes) -> int:
    """Where a name at `at` ends, if it is plain labels up to the root or to a pointer
    to a name of the question, within 255 octets and before `end`; else -1."""
    if at < 0:
        return -1
    start = at
    while at < end:
        c = packet[at]
        if c == 0:
            return at + 1 if at + 1 - start <= 255 else -1
        if c < 0x40:
            at += c + 1
        elif c >= 0xC0 and at + 2 <= end:
            ptr = (c & 0x3F) << 8 | packet[at + 1]
            if _in_question(qname, ptr) and at - start + len(qname) - (ptr - 12) <= 255:
                return at + 2
            return -1
        else:
            return -1
    return -1


def _empty_opt(packet: bytes, at: int) -> bool:
    """Whether an OPT record without options or an extended RCODE starts at `at`."""
    return (
        packet.startswith(_OPT_HEAD, at)
        and not packet[at + 5]
        and not packet[at + 9]
        and not packet[at + 10]
    )


def decode_reply(packet: bytes, qname: bytes, qtype: int) -> Decoded:
    """Decode a reply to the query for `qname` (wire form, from `encode_name`) and `qtype`.

    Raises `Mismatch` when the packet is not an answer to that query, `BadReply` when it
    is malformed or holds a record type left to c-ares.
    """
    n = len(packet)
    if n < 12:
        raise BadReply("message shorter than a header")
    if n > 65535:
        raise BadReply("message longer than 65535 octets")
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(packet)
    if flags & _QR_OPCODE != _QR or qdcount != 1:
        raise Mismatch("not a reply to a standard query with one question")
    # The question: the name as sent (in any case), then the type and class.
    off = 12 + len(qname)
    if packet.startswith(qname, 12):
        asked = qname
    else:
        lower = qname.lower()
        asked = packet[12:off]
        if asked.lower() != lower:
            asked, off = _name(packet, 12, {})
            if asked.lower() != lower:
                raise Mismatch("question name differs")
    if off + 4 > n:
        raise BadReply("truncated question")
    tail = _QUESTION_TAIL.get(qtype)
    if tail is None:
        raise BadReply(f"unsupported query type {qtype}")
    if not packet.startswith(tail, off):
        raise Mismatch("question type or class differs")
    off += 4
    rcode = flags & _RCODE
    if flags & _TC:
        return _empty(rcode, True)

    # The shapes most replies have, read without the general loop (which they would pass).
    if arcount == 1 and asked is qname:
        if not ancount and nscount == 1 and rcode in (_NOERROR, _NXDOMAIN):
            if _soa_only(packet, off, qname):
                return _empty(rcode, False)
        elif not rcode and ancount == 1 and not nscount and qtype == _PTR:
            decoded = _one_ptr(packet, off, qname)
            if decoded is not None:
                return decoded
        elif not rcode and ancount and not nscount and qtype in _FIXED:
            if ancount == 2 and packet.startswith(_CNAME_HEAD, off):
                decoded = _one_cname(packet, off, qname, qtype)
            else:
                decoded = _fixed_answers(packet, off, ancount, qtype)
            if decoded is not None:
                return decoded

    # Every record is read and checked as c-ares would (it calls the whole reply malformed
    # for one bad record anywhere); only the answers of a NOERROR reply are decoded, and
    # the CNAMEs of the answer section of the replies whose chain is kept.
    lower = qname.lower()
    seen = {12: asked}
    decode = _DECODE[qtype]
    found: list[tuple[bytes, int, Answer]] = []
    cname_of: dict[bytes, bytes] = {}
    answering = 0 if rcode else ancount
    chaining = ancount if rcode in _CHAINED else 0
    for i in range(ancount + nscount + arcount):
        # The owner, read with the fixed fields in one go when it is a pointer to a name
        # already read (the question, a target) or the root (OPT).
        c = packet[off] if off < n else -1
        if c >= 0xC0 and off + 12 <= n:
            word, rtype, rclass, ttl, rdlength = _PTR_RR.unpack_from(packet, off)
            owner = seen.get(word & 0x3FFF) if word & 0x3FFF < off else None
            if owner is None:
                owner = _name(packet, off, seen)[0]
            off += 12
        elif c == 0 and off + 11 <= n:
            rtype, rclass, ttl, rdlength = _ROOT_RR.unpack_from(packet, off)
            owner = b"\0"
            off += 11
        else:
            owner, off = _name(packet, off, seen)
            if off + 10 > n:
                raise BadReply("truncated record")
            rtype, rclass, ttl, rdlength = _RR.unpack_from(packet, off)
            off += 10
        end = off + rdlength
        if end > n:
            raise BadReply("rdata runs past the end of the message")
        if rtype == qtype and i < answering:
            if rclass not in _CLASSES:
                raise BadReply(f"record of class {rclass}")
            found.append((owner, ttl, decode(packet, off, end, seen)))
        elif rtype in _CHECK:
            if rclass not in _CLASSES:
                raise BadReply(f"record of class {rclass}")
            if rtype == _CNAME and i < chaining:
                target, after = _name(packet, off, seen)
                if after != end:
                    raise BadReply("name does not fill the rdata")
                cname_of[owner.lower()] = target.lower()
            else:
                _CHECK[rtype](packet, off, end, seen)
        elif rtype == _OPT:
            _rd_opt(packet, off, end)
            rcode |= (ttl >> 20) & 0xFF0  # the extended RCODE, from any OPT (as c-ares)
        elif rtype in _UNSUPPORTED:
            raise BadReply(f"record of type {rtype} left to c-ares")
        off = end
    if rcode and not cname_of:
        return _empty(rcode, False)

    # The CNAME chain from the asked name, then the answers owned by its end.
    owner = lower
    chain: list[bytes] = []
    if cname_of and qtype != _CNAME:
        while owner in cname_of:
            owner = cname_of[owner]
            if owner == lower or owner in chain or len(chain) == _MAX_CHAIN:
                raise BadReply("CNAME loop or chain too long: left to c-ares")
            chain.append(owner)
    if rcode:
        return (
            Decoded(rcode, False, (), None, tuple(map(_text, chain)))
            if chain
            else _empty(rcode, False)
        )
    answers: list[Answer] = []
    least: int | None = None
    if not found and not chain:
        return _NODATA
    same = None if chain else asked  # the asked name, as it appears in the reply
    for name, ttl, value in found:
        if name is same or name.lower() == owner:
            answers.append(value)
            if least is None or ttl < least:
                least = ttl
    return Decoded(0, False, tuple(answers), least, tuple(map(_text, chain)) if chain else ())
