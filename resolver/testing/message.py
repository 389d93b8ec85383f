"""A small DNS wire codec for tests: presentation names and rdata to wire form and back.

`encode_query` builds a query, `decode_message` parses any message into `Message`; both
raise `MessageError` on what is not DNS. The name and rdata helpers without a leading
underscore are shared by the zone compiler and the server (not part of `__all__`).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from resolver.model import RecordType
from resolver.protocol import FLAG_AA, FLAG_QR, FLAG_RD, FLAG_TC, Type

__all__ = ["Message", "MessageError", "Question", "Record", "decode_message", "encode_query"]

Labels = tuple[bytes, ...]

_A, _NS, _CNAME, _SOA, _PTR, _MX, _TXT, _AAAA, _SRV, _OPT, _CAA = (
    int(t) for t in (Type.A, Type.NS, Type.CNAME, Type.SOA, Type.PTR, Type.MX, Type.TXT,
                     Type.AAAA, Type.SRV, Type.OPT, Type.CAA)
)  # fmt: skip
#: The types a zone may hold: those a query may ask.
_TYPES = {t.name: t.value for t in RecordType}
TYPE_NAMES = {int(t): t.name for t in Type}
_QR, _AA, _TC, _RD = FLAG_QR, FLAG_AA, FLAG_TC, FLAG_RD
_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_*/")


class MessageError(ValueError):
    """A DNS message or name that cannot be parsed or encoded."""


# names


def parse_name(name: str) -> Labels:
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


def name_text(labels: Labels, *, absolute: bool = False) -> str:
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


def wire_name(labels: Labels) -> bytes:
    """Labels -> the uncompressed wire form."""

    return b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\0"


def folded(labels: Labels) -> Labels:
    """The case-insensitive key of a name: its labels lower-cased."""

    return tuple(lb.lower() for lb in labels)


def read_name(msg: bytes, off: int) -> tuple[Labels, int]:
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


def make_rdata(rtype: int, value: str | bytes) -> tuple[bytes, str]:
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
                wire += wire_name(parse_name(part))
            else:
                wire += _int(part, 16 if kind == "h" else 32).to_bytes(2 if kind == "h" else 4)
        text = " ".join(
            name_text(parse_name(p), absolute=True) if k == "n" else str(int(p))
            for k, p in zip(shape, f, strict=True)
        )
        return wire, text
    except (ValueError, KeyError) as exc:
        name = TYPE_NAMES.get(rtype, str(rtype))
        raise MessageError(f"bad {name} rdata {value!r}: {exc}") from None


def rdata_text(msg: bytes, rtype: int, off: int, end: int) -> str:
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
            labels, off = read_name(msg, off)
            fields.append(name_text(labels, absolute=True))
        else:
            size = 2 if kind == "h" else 4
            fields.append(str(int.from_bytes(msg[off : off + size])))
            off += size
    return " ".join(fields)


def type_code(rtype: RecordType | int | str) -> int:
    """A type code from a `RecordType`, a number or a name ("MX")."""
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
    body = wire_name(parse_name(name)) + struct.pack("!HH", type_code(rtype), 1)
    if edns_size is not None:
        body += b"\0" + struct.pack("!HHIH", _OPT, edns_size, 0, 0)
    return header + body


def read_question(msg: bytes, off: int) -> tuple[Labels, int, int, int]:
    """-> name, type, class, offset after the question."""
    labels, off = read_name(msg, off)
    if off + 4 > len(msg):
        raise MessageError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    return labels, qtype, qclass, off + 4


def read_rr(msg: bytes, off: int) -> tuple[Labels, int, int, int, int, int]:
    """-> owner, type, class, ttl, rdata offset, offset after the record."""
    labels, off = read_name(msg, off)
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
        labels, qtype, qclass, off = read_question(data, off)
        questions.append(Question(name_text(labels), qtype, qclass))
    sections: list[list[Record]] = [[], [], []]
    for section, count in zip(sections, (an, ns, ar), strict=True):
        for _ in range(count):
            labels, rtype, rclass, ttl, start, off = read_rr(data, off)
            try:
                text = rdata_text(data, rtype, start, off)
            except (MessageError, IndexError):
                text = f"\\# {off - start} {data[start:off].hex()}"
            section.append(Record(name_text(labels), rtype, rclass, ttl, data[start:off], text))
    return Message(qid, flags, tuple(questions), *map(tuple, sections))
