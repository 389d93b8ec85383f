"""Generated zones, and what any correct resolver must answer for each name in them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ipaddress import IPv4Address, ip_address

from resolver.names import normalize_name
from resolver.testing import Zone

BULK_ORIGIN = "bulk.test"
REVERSE_ORIGIN = "2.0.10.in-addr.arpa"


def bulk_zones(count: int) -> dict[str, dict[str, dict[str, list[str | bytes]]]]:
    """Two zones (forward and reverse) with `count` forward names of every kind: answered
    A, dual-stack, AAAA-only (NODATA for A), CNAME and two-step chains, MX, TXT and SRV, and
    PTR records for half the addresses. Names `missingN` are not in it (NXDOMAIN)."""
    soa = "ns.bulk.test hostmaster.bulk.test 1 3600 600 86400 60"
    forward: dict[str, dict[str, list[str | bytes]]] = {
        BULK_ORIGIN: {"SOA": [soa], "NS": ["ns.bulk.test"]},
        f"ns.{BULK_ORIGIN}": {"A": ["10.0.2.250"]},
    }
    reverse: dict[str, dict[str, list[str | bytes]]] = {
        REVERSE_ORIGIN: {"SOA": [soa], "NS": ["ns.bulk.test"]},
    }
    for i in range(count):
        name = f"h{i}.{BULK_ORIGIN}"
        v4 = IPv4Address("10.0.0.0") + i
        match i % 8:
            case 0:
                forward[name] = {"A": [str(v4)]}
            case 1:
                forward[name] = {"A": [str(v4), str(v4 + 1)], "AAAA": [f"2001:db8::{i:x}"]}
            case 2:
                forward[name] = {"AAAA": [f"2001:db8::{i:x}"]}
            case 3:
                forward[name] = {"CNAME": [f"h{i - 3}.{BULK_ORIGIN}"]}
            case 4:
                forward[name] = {"CNAME": [f"h{i - 1}.{BULK_ORIGIN}"]}  # chain of two
            case 5:
                forward[name] = {"MX": [f"10 mx{i}.{BULK_ORIGIN}"], "A": [str(v4)]}
            case 6:
                forward[name] = {"TXT": [f"v=spf1 ip4:{v4} -all", f'say "hi", #{i}']}
            case _:
                forward[f"_svc{i}._tcp.{BULK_ORIGIN}"] = {"SRV": [f"0 5 {i % 65535} {name}"]}
                forward[name] = {"A": [str(v4)]}
    for last in range(0, 256, 2):
        reverse[f"{last}.{REVERSE_ORIGIN}"] = {"PTR": [f"h{last}.{BULK_ORIGIN}"]}
    return {BULK_ORIGIN: forward, REVERSE_ORIGIN: reverse}


def _text(rtype: str, rdata: str | bytes) -> str:
    """Zone rdata as the writers render that answer."""
    if isinstance(rdata, bytes):
        raise ValueError("the oracle handles text TXT data only")
    if rtype in ("A", "AAAA"):
        return str(ip_address(rdata))
    if rtype in ("CNAME", "NS", "PTR"):
        return normalize_name(rdata)
    if rtype == "MX":
        pref, host = rdata.split()
        return f"{int(pref)} {normalize_name(host)}"
    if rtype == "SRV":
        *numbers, target = rdata.split()
        return " ".join([*(str(int(n)) for n in numbers), normalize_name(target)])
    return rdata


class Oracle:
    """What the zones say about any (name, type)."""

    def __init__(self, zones: Mapping[str, Zone]) -> None:
        self.records: dict[str, Mapping[str, Sequence[str | bytes]]] = {}
        for zone in zones.values():
            self.records.update({normalize_name(owner): rr for owner, rr in zone.items()})
        # Names that exist only because something below them does (empty non-terminals).
        self.parents = {
            owner.split(".", i)[-1] for owner in self.records for i in range(owner.count("."))
        }

    def expect(self, name: str, rtype: str) -> tuple[str, list[str], list[str]]:
        """(status, sorted answers, CNAME chain) for `name`/`rtype`."""
        owner, chain = normalize_name(name), []
        while rtype != "CNAME" and "CNAME" in self.records.get(owner, {}):
            target = self.records[owner]["CNAME"][0]
            assert isinstance(target, str)
            owner = normalize_name(target)
            chain.append(owner)
        if owner not in self.records and owner not in self.parents:
            return "NXDOMAIN", [], chain
        rdatas = self.records.get(owner, {}).get(rtype, [])
        if not rdatas:
            return "NODATA", [], chain
        return "NOERROR", sorted(_text(rtype, r) for r in rdatas), chain


def host_list(count: int) -> list[str]:
    """Input lines for `bulk_zones(count)`: every kind of name, NXDOMAINs, IP literals with
    and without PTR records, case and trailing-dot variants, and bad lines."""
    lines: list[str] = []
    for i in range(count):
        lines.append(f"h{i}.{BULK_ORIGIN}" if i % 5 else f"H{i}.Bulk.Test.")
        if i % 8 == 7:
            lines.append(f"_svc{i}._tcp.{BULK_ORIGIN}")
        if i % 10 == 0:
            lines.append(f"missing{i}.{BULK_ORIGIN}")
        if i % 50 == 0:
            lines.append(f"10.0.2.{i % 256}")
            lines.append(f"10.0.2.{(i + 1) % 256}")
        if i % 97 == 0:
            lines.append(f"bad name {i}")
    return lines
