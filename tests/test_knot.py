"""Start Knot DNS through resolver.testing.knot.KnotServer and query it with raw UDP.

The queries and the answer parsing are hand-written with ``struct`` so this
test checks the server harness independently of the resolver under test.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from resolver.testing.knot import KnotError, KnotServer
from tests._env import require_knot

pytestmark = pytest.mark.knot

ORIGIN = "knot.test"
ZONE = """\
$TTL 300
@       IN SOA   ns1 hostmaster 2024010101 3600 600 86400 300
@       IN NS    ns1
@       IN MX    10 mail
@       IN MX    20 mail2.example.
@       IN TXT   "v=spf1 -all"
@       IN TXT   "two" "strings"
ns1     IN A     127.0.0.1
www     IN A     192.0.2.10
www     IN A     192.0.2.11
www     IN AAAA  2001:db8::10
alias   IN CNAME www
mail    IN A     192.0.2.25
"""

A, NS, CNAME, SOA, MX, TXT, AAAA = 1, 2, 5, 6, 15, 16, 28
NOERROR, NXDOMAIN = 0, 3


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    ttl: int
    value: object


@dataclass(frozen=True)
class Reply:
    rcode: int
    authoritative: bool
    answers: list[Record]


def _build_query(name: str, qtype: int, qid: int) -> bytes:
    header = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return header + qname + struct.pack("!HH", qtype, 1)


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    """Decode a possibly compressed name; return it and the offset after it."""
    labels: list[str] = []
    end: int | None = None
    for _ in range(128):
        length = packet[offset]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = struct.unpack_from("!H", packet, offset)[0] & 0x3FFF
            continue
        offset += 1
        if length == 0:
            return ".".join(labels), (end if end is not None else offset)
        labels.append(packet[offset : offset + length].decode("ascii"))
        offset += length
    raise ValueError("name compression loop")


def _rdata(packet: bytes, rtype: int, start: int, length: int) -> object:
    data = packet[start : start + length]
    if rtype == A:
        return socket.inet_ntop(socket.AF_INET, data)
    if rtype == AAAA:
        return socket.inet_ntop(socket.AF_INET6, data)
    if rtype in (CNAME, NS):
        return _read_name(packet, start)[0]
    if rtype == MX:
        return (struct.unpack_from("!H", packet, start)[0], _read_name(packet, start + 2)[0])
    if rtype == TXT:
        strings: list[str] = []
        i = 0
        while i < len(data):
            strings.append(data[i + 1 : i + 1 + data[i]].decode())
            i += 1 + data[i]
        return tuple(strings)
    return data


def _parse(packet: bytes, qid: int) -> Reply:
    rid, flags, qdcount, ancount, _ns, _ar = struct.unpack_from("!HHHHHH", packet)
    assert rid == qid
    assert flags & 0x8000, "not a response"
    offset = 12
    for _ in range(qdcount):
        offset = _read_name(packet, offset)[1] + 4
    answers = []
    for _ in range(ancount):
        name, offset = _read_name(packet, offset)
        rtype, _rclass, ttl, rdlength = struct.unpack_from("!HHIH", packet, offset)
        offset += 10
        answers.append(Record(name, rtype, ttl, _rdata(packet, rtype, offset, rdlength)))
        offset += rdlength
    return Reply(flags & 0xF, bool(flags & 0x0400), answers)


def query(server: KnotServer, name: str, qtype: int) -> Reply:
    """Send one UDP query to the server (always a loopback address)."""
    assert server.host == "127.0.0.1"
    qid = secrets.randbelow(0x10000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect(("127.0.0.1", server.port))
        sock.send(_build_query(name, qtype, qid))
        return _parse(sock.recv(4096), qid)


def values(reply: Reply, rtype: int) -> set[object]:
    return {r.value for r in reply.answers if r.rtype == rtype}


@pytest.fixture(scope="module")
def knot() -> Iterator[KnotServer]:
    require_knot()
    with KnotServer(ZONE, ORIGIN) as server:
        yield server


def test_attributes(knot: KnotServer) -> None:
    assert knot.nameserver == f"127.0.0.1:{knot.port}"
    assert 0 < knot.port < 65536
    assert knot.pid is not None


def test_a(knot: KnotServer) -> None:
    reply = query(knot, "www.knot.test", A)
    assert reply.rcode == NOERROR
    assert reply.authoritative
    assert values(reply, A) == {"192.0.2.10", "192.0.2.11"}
    assert {r.ttl for r in reply.answers} == {300}


def test_aaaa(knot: KnotServer) -> None:
    reply = query(knot, "www.knot.test", AAAA)
    assert reply.rcode == NOERROR
    assert values(reply, AAAA) == {"2001:db8::10"}


def test_cname_is_followed_inside_the_zone(knot: KnotServer) -> None:
    reply = query(knot, "alias.knot.test", A)
    assert reply.rcode == NOERROR
    assert values(reply, CNAME) == {"www.knot.test"}
    assert values(reply, A) == {"192.0.2.10", "192.0.2.11"}
    assert reply.answers[0].rtype == CNAME


def test_mx(knot: KnotServer) -> None:
    reply = query(knot, "knot.test", MX)
    assert values(reply, MX) == {(10, "mail.knot.test"), (20, "mail2.example")}


def test_txt(knot: KnotServer) -> None:
    reply = query(knot, "knot.test", TXT)
    assert values(reply, TXT) == {("v=spf1 -all",), ("two", "strings")}


def test_nxdomain_and_nodata(knot: KnotServer) -> None:
    missing = query(knot, "nope.knot.test", A)
    assert missing.rcode == NXDOMAIN
    assert missing.answers == []
    nodata = query(knot, "mail.knot.test", AAAA)
    assert nodata.rcode == NOERROR
    assert nodata.answers == []


def test_stop_removes_everything() -> None:
    require_knot()
    server = KnotServer(ZONE, ORIGIN, udp_workers=2, cpu=0)
    with server:
        pid = server.pid
        workdir = server.workdir
        assert pid is not None
        assert workdir is not None
        assert query(server, "ns1.knot.test", A).rcode == NOERROR
    assert server.pid is None
    assert not workdir.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_bad_zone_raises_with_knotd_output() -> None:
    require_knot()
    bad = ZONE + "broken  IN A  not-an-address\n"
    server = KnotServer(bad, ORIGIN)
    with pytest.raises(KnotError, match=r"could not load zone(.|\n)*error in zone"):
        server.__enter__()
    assert server.pid is None
    assert server.workdir is None


def test_workdir_is_private() -> None:
    require_knot()
    with KnotServer(ZONE, ORIGIN) as one, KnotServer(ZONE, ORIGIN) as two:
        assert one.port != two.port
        assert one.workdir != two.workdir
        assert query(one, "www.knot.test", AAAA).rcode == NOERROR
        assert query(two, "www.knot.test", AAAA).rcode == NOERROR
