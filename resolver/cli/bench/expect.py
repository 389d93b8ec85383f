"""Answers checked: the outcome a reply gives, and the outcome a zone file says it should.

An outcome is one line of text, `STATUS|answers|CNAME chain`: the status from the rcode
(NOERROR with answers of the asked type, else NODATA; NXDOMAIN, SERVFAIL, REFUSED, or
`RCODEn`), the answers in presentation form, sorted (names lowercase, TTLs ignored), and
the CNAME chain followed. Workers compare the CRC-32 of a reply's outcome with the one
expected for its question, so a worker holds four bytes per question, not the zone.

Zone files are read as master files (RFC 1035): `$ORIGIN`, `$TTL`, `@`, relative names,
blank owners, TTLs with units, classes, parentheses, `;` comments, quoted strings. The
expected outcome follows CNAMEs inside the loaded zones and wildcards at the closest
encloser (RFC 4592), as an authoritative server answers. A question is left unchecked
(-1) where the zones cannot say: a name outside them, at or below a delegation or a DNAME,
a CNAME leaving them (a recursive resolver would follow it), a type the codec does not
decode.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address

from resolver.codec import render_text
from resolver.model import Answer, RecordType, ResolverError

__all__ = ["Zones", "digest", "expectations", "outcome", "read_zones"]

_CNAME, _NS, _DNAME = "CNAME", "NS", "DNAME"
#: Types whose answers are names or hold names: compared in lowercase.
_NAMED = frozenset({2, 5, 6, 12, 15, 33})
_CHECKED = frozenset(t.value for t in RecordType)
_STATUS = {2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
_MAX_CHAIN = 16
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[()]|[^\s()";]+')
_TTL = re.compile(r"(?:\d+[smhdwSMHDW]?)+")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_CLASSES = frozenset({"IN", "CH", "CS", "HS"})


def outcome(rcode: int, answers: Iterable[Answer | str], cnames: Iterable[str], qtype: int) -> str:
    """The outcome of a reply (see the module docstring)."""
    texts = [str(a) for a in answers]
    if qtype in _NAMED:
        texts = [t.lower() for t in texts]
    status = _STATUS.get(rcode) or (
        ("NOERROR" if texts else "NODATA") if rcode == 0 else f"RCODE{rcode}"
    )
    return f"{status}|{' '.join(sorted(texts))}|{' '.join(c.lower() for c in cnames)}"


def digest(text: str) -> int:
    """The 32-bit check value of an outcome, as workers compare it."""
    return zlib.crc32(text.encode())


@dataclass
class Zones:
    """The records of some zones: owner -> type name -> answers in presentation form."""

    origins: list[str] = field(default_factory=list)
    nodes: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: Names that exist only as parents of others (empty non-terminals).
    parents: set[str] = field(default_factory=set)

    def add(self, owner: str, rtype: str, answer: str) -> None:
        self.nodes.setdefault(owner, {}).setdefault(rtype, []).append(answer)

    def expected(self, name: str, qtype: int) -> str | None:
        """The outcome the zones give for (name, type), or None where they cannot say."""
        if qtype not in _CHECKED:
            return None
        type_name = RecordType(qtype).name
        chain: list[str] = []
        asked = name
        for _ in range(_MAX_CHAIN):
            zone = self._zone_of(name)
            if zone is None or self._delegated(name, zone):
                return None
            node = self._node(name, zone)
            if node is None:
                return outcome(3, (), chain, qtype)
            if type_name in node:
                return outcome(0, node[type_name], chain, qtype)
            if _CNAME not in node:
                return outcome(0, (), chain, qtype)
            name = node[_CNAME][0]
            if name == asked or name in chain:
                return None  # a loop: servers differ in what they say
            chain.append(name)
        return None  # a chain too long or a loop: servers differ

    def _zone_of(self, name: str) -> str | None:
        best = None
        for origin in self.origins:
            if (name == origin or name.endswith("." + origin) or not origin) and (
                best is None or len(origin) > len(best)
            ):
                best = origin
        return best

    def _delegated(self, name: str, zone: str) -> bool:
        """Whether `name` is at or below a delegation (NS not at the apex) or a DNAME."""
        labels = name.split(".")
        for i in range(len(labels)):
            above = ".".join(labels[i:])
            if above == zone:
                return False
            node = self.nodes.get(above, {})
            if _NS in node or (_DNAME in node and i > 0):
                return True
        return False

    def _node(self, name: str, zone: str) -> dict[str, list[str]] | None:
        node = self.nodes.get(name)
        if node is not None:
            return node
        if name in self.parents:
            return {}
        labels = name.split(".")
        for i in range(1, len(labels)):  # the wildcard at the closest encloser
            encloser = ".".join(labels[i:])
            if encloser in self.nodes or encloser in self.parents or encloser == zone:
                wildcard = self.nodes.get("*." + encloser if encloser else "*")
                if wildcard is None:
                    return None
                return {t: v for t, v in wildcard.items()}
        return None


def read_zones(paths: Sequence[str]) -> Zones:
    """The records of the zone files `paths`; raises ResolverError naming the file and line."""
    zones = Zones()
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as exc:
            raise ResolverError(f"cannot read {path}: {exc.strerror or exc}") from exc
        origin = _read_zone(text, path, zones)
        if origin is None:
            raise ResolverError(f"{path}: no SOA record: a zone file starts with its SOA")
        zones.origins.append(origin)
    for owner in zones.nodes:
        labels = owner.split(".")
        for i in range(1, len(labels)):
            parent = ".".join(labels[i:])
            if parent not in zones.nodes:
                zones.parents.add(parent)
    return zones


def expectations(
    zones: Zones, questions: Sequence[tuple[str, int]]
) -> tuple[array[int], dict[int, str]]:
    """Per question the expected outcome's digest (-1: unchecked), and the outcomes."""
    values = array("q")
    texts: dict[int, str] = {}
    for i, (name, qtype) in enumerate(questions):
        text = zones.expected(name, qtype)
        if text is None:
            values.append(-1)
        else:
            values.append(digest(text))
            texts[i] = text
    return values, texts


def _logical_lines(text: str, path: str) -> Iterator[tuple[int, bool, list[str]]]:
    """(line number, starts with blank, tokens) of each record, parentheses joined."""
    tokens: list[str] = []
    depth = 0
    start, blank = 0, False
    for number, raw in enumerate(text.splitlines(), 1):
        found = _TOKEN.findall(_strip_comment(raw))
        if not depth:
            if not found:
                continue
            start, blank, tokens = number, raw[:1] in (" ", "\t"), []
        for token in found:
            if token == "(":  # noqa: S105 - zone file syntax
                depth += 1
            elif token == ")":  # noqa: S105
                depth -= 1
                if depth < 0:
                    raise ResolverError(f"{path}:{number}: ')' without '('")
            else:
                tokens.append(token)
        if not depth and tokens:
            yield start, blank, tokens
    if depth:
        raise ResolverError(f"{path}:{start}: '(' without ')'")


def _strip_comment(line: str) -> str:
    quoted = escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            return line[:i]
    return line


def _read_zone(text: str, path: str, zones: Zones) -> str | None:
    """Add the records of one zone file to `zones`; its origin (the SOA's owner)."""
    origin: str | None = None
    apex: str | None = None
    owner: str | None = None
    for number, blank, tokens in _logical_lines(text, path):
        where = f"{path}:{number}"
        head = tokens[0].upper()
        if head == "$ORIGIN":
            if len(tokens) != 2 or not tokens[1].endswith("."):
                raise ResolverError(f"{where}: $ORIGIN takes one absolute name (ending in '.')")
            origin = _absolute(tokens[1], None, where)
            continue
        if head == "$TTL":
            continue
        if head.startswith("$"):
            raise ResolverError(f"{where}: {tokens[0]} is not supported here")
        if not blank:
            owner = _absolute(tokens[0], origin, where)
            tokens = tokens[1:]
        if owner is None:
            raise ResolverError(f"{where}: a record without an owner name")
        while tokens and (tokens[0].upper() in _CLASSES or _TTL.fullmatch(tokens[0])):
            tokens = tokens[1:]
        if not tokens:
            raise ResolverError(f"{where}: a record without a type")
        rtype, rdata = tokens[0].upper(), tokens[1:]
        try:
            answer = _answer(rtype, rdata, origin, where)
        except (ValueError, IndexError) as exc:
            raise ResolverError(f"{where}: bad {rtype} record: {exc}") from None
        if rtype == "SOA" and apex is None:
            apex = owner
        zones.add(owner, rtype, answer)
    return apex


def _absolute(name: str, origin: str | None, where: str) -> str:
    """A name of the file as the outcome writes it: lowercase, no trailing dot."""
    if name == "@":
        if origin is None:
            raise ResolverError(f"{where}: '@' before any $ORIGIN")
        return origin
    if name.endswith("."):
        return name[:-1].lower()
    if origin is None:
        raise ResolverError(f"{where}: relative name {name!r} before any $ORIGIN")
    return f"{name}.{origin}".lower() if origin else name.lower()


def _seconds(text: str) -> int:
    if text.isdigit():
        return int(text)
    if not _TTL.fullmatch(text):
        raise ValueError(f"not a time: {text!r}")
    return sum(int(n) * _UNITS[u.lower()] for n, u in re.findall(r"(\d+)([smhdwSMHDW])", text))


def _answer(rtype: str, rdata: list[str], origin: str | None, where: str) -> str:
    """A record's data as `outcome` writes an answer (the type's `str()`)."""

    def name(token: str) -> str:
        return _absolute(token, origin, where)

    if rtype == "A":
        return str(IPv4Address(rdata[0]))
    if rtype == "AAAA":
        return str(IPv6Address(rdata[0]))
    if rtype in ("CNAME", "PTR", "NS", "DNAME"):
        return name(rdata[0])
    if rtype == "MX":
        return f"{int(rdata[0])} {name(rdata[1])}"
    if rtype == "SRV":
        return f"{int(rdata[0])} {int(rdata[1])} {int(rdata[2])} {name(rdata[3])}"
    if rtype == "SOA":
        numbers = " ".join(str(_seconds(t)) for t in rdata[2:7])
        return f"{name(rdata[0])} {name(rdata[1])} {numbers}"
    if rtype == "TXT":
        return render_text(b"".join(_string(t) for t in rdata))
    if rtype == "CAA":
        value = render_text(_string(" ".join(rdata[2:])))
        return f'{int(rdata[0])} {rdata[1]} "{value}"'
    return " ".join(rdata)  # kept for the name's existence; its answers are not checked


def _string(token: str) -> bytes:
    """A character-string of a zone file: quotes dropped, `\\X` and `\\DDD` escapes read."""
    if len(token) >= 2 and token[0] == token[-1] == '"':
        token = token[1:-1]
    out = bytearray()
    i = 0
    raw = token.encode("utf-8", "surrogateescape")
    while i < len(raw):
        if raw[i] == 0x5C and i + 1 < len(raw):
            digits = raw[i + 1 : i + 4]
            if len(digits) == 3 and digits.isdigit():
                out.append(int(digits) & 0xFF)
                i += 4
                continue
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return bytes(out)
