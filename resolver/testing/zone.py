"""Zones for the test server and for Knot DNS: a plain mapping, compiled once.

A `Zone` maps owner names to type names to rdata in presentation form; `compile_zone`
checks and encodes it for `LoopbackDNSServer`, `to_zone_file` renders it as a master file.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from resolver.protocol import Type
from resolver.testing.message import (
    TYPE_NAMES,
    Labels,
    folded,
    make_rdata,
    name_text,
    parse_name,
    rdata_text,
    read_name,
    type_code,
    wire_name,
)

__all__ = ["Zone", "to_zone_file"]

#: owner name -> type name ("A", "MX", ...) -> rdata in presentation form (TXT: str or bytes).
Zone = Mapping[str, Mapping[str, Sequence[str | bytes]]]
_CNAME, _SOA = int(Type.CNAME), int(Type.SOA)


@dataclass(frozen=True, slots=True)
class RR:
    """One record of a compiled zone: its wire rdata and zone-file text."""

    owner: Labels
    type: int
    rdata: bytes
    text: str
    target: Labels = ()  # a CNAME's target


@dataclass
class CompiledZone:
    """A `Zone` checked and encoded: nodes by folded owner, empty non-terminals, SOAs."""

    nodes: dict[Labels, dict[int, list[RR]]] = field(default_factory=dict)
    ents: set[Labels] = field(default_factory=set)  # every proper ancestor of an owner
    soas: dict[Labels, RR] = field(default_factory=dict)


def compile_zone(zone: Zone) -> CompiledZone:
    """Check and encode `zone`; a bad name or rdata raises `MessageError`."""

    data = CompiledZone()
    spellings: dict[Labels, Labels] = {}
    for owner_text, rrsets in zone.items():
        owner = parse_name(owner_text)
        owner = spellings.setdefault(folded(owner), owner)  # the first spelling wins
        node = data.nodes.setdefault(folded(owner), {})
        for type_name, values in rrsets.items():
            rtype = type_code(type_name)
            rrset = node.setdefault(rtype, [])
            for value in [values] if isinstance(values, str | bytes) else values:
                wire, text = make_rdata(rtype, value)
                target = read_name(wire, 0)[0] if rtype == _CNAME else ()
                rr = RR(owner, rtype, wire, text, target)
                if rr not in rrset:
                    rrset.append(rr)
            if not rrset:
                del node[rtype]
    for key, node in data.nodes.items():
        data.ents.update(key[i:] for i in range(1, len(key) + 1))
        if _SOA in node:
            data.soas[key] = node[_SOA][0]
    return data


def default_soa(origin: Labels, ttl: int) -> RR:
    """The SOA the server (and `to_zone_file`) adds at `origin` when the zone has none."""

    mname, rname = wire_name((b"ns", *origin)), wire_name((b"hostmaster", *origin))
    wire = mname + rname + struct.pack("!5I", 1, 3600, 600, 86400, ttl)
    return RR(origin, _SOA, wire, rdata_text(wire, _SOA, 0, len(wire)))


def soa_minimum(rr: RR) -> int:
    """The SOA's MINIMUM field, which caps the TTL of negative answers."""

    return int.from_bytes(rr.rdata[-4:])


def to_zone_file(zone: Zone, origin: str, ttl: int = 300) -> str:
    """Render the records of `zone` at or below `origin` as an RFC 1035 master file.

    Names are absolute; an SOA is added at the origin when the zone has none there.
    """
    data = compile_zone(zone)
    apex = parse_name(origin)
    okey = folded(apex)
    lines = [f"$TTL {ttl}"]
    if _SOA not in data.nodes.get(okey, {}):
        soa = default_soa(apex, ttl)
        lines.append(f"{name_text(apex, absolute=True)} {ttl} IN SOA {soa.text}")
    for key in sorted(data.nodes, key=lambda k: k[::-1]):
        if key[len(key) - len(okey) :] != okey:
            continue
        for rtype in sorted(data.nodes[key], key=lambda t: (t != _SOA, t)):
            for rr in data.nodes[key][rtype]:
                owner = name_text(rr.owner, absolute=True)
                lines.append(f"{owner} {ttl} IN {TYPE_NAMES[rtype]} {rr.text}")
    return "\n".join(lines) + "\n"
