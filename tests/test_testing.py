"""Tests for resolver.testing: the loopback DNS server, its faults, the codec, the zone file.

Replies are checked field by field with `struct`, with the module's own decoder, with
pycares (c-ares) and, for the zone file, against Knot DNS. Every packet goes to loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pycares
import pytest

from resolver.testing import (
    EXAMPLE_ORIGIN,
    EXAMPLE_ZONE,
    Fault,
    LoopbackDNSServer,
    Message,
    MessageError,
    ReceivedQuery,
    decode_message,
    encode_query,
    serve_in_thread,
    to_zone_file,
)
from resolver.testing.knot import KnotServer
from resolver.testing.pytest_plugin import ServerFactory
from tests._env import require_knot

A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, OPT, CAA = 1, 2, 5, 6, 12, 15, 16, 28, 33, 41, 257
BIG_ZONE = {"big.test": {"A": [f"192.0.2.{i}" for i in range(1, 101)]}}  # 1.6 kB of answers
SOA_TEXT = "ns1.example.test. hostmaster.example.test. 2024010101 3600 600 604800 300"


class _Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.replies.put_nowait(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set_result(None)


async def udp(
    server: LoopbackDNSServer, wire: bytes, *, wait: float = 2.0, linger: float = 0.0
) -> list[bytes]:
    """Send one datagram; every datagram received until `wait` (then `linger` more)."""
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        _Collector, remote_addr=(server.host, server.port)
    )
    replies = []
    try:
        transport.sendto(wire)
        with contextlib.suppress(TimeoutError):
            replies.append(await asyncio.wait_for(proto.replies.get(), wait))
            await asyncio.sleep(linger)
        while not proto.replies.empty():
            replies.append(proto.replies.get_nowait())
    finally:
        transport.close()
        await proto.closed
    return replies


async def ask(server: LoopbackDNSServer, name: str, rtype: str = "A", **kw: Any) -> Message:
    """One UDP exchange that must get exactly one reply."""
    replies = await udp(server, encode_query(name, rtype, qid=0x1234, **kw))
    assert len(replies) == 1
    return decode_message(replies[0])


async def tcp(server: LoopbackDNSServer, *wires: bytes) -> list[bytes]:
    """Send `wires` pipelined on one TCP connection and read as many replies."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(b"".join(len(w).to_bytes(2, "big") + w for w in wires))
        await writer.drain()
        replies = []
        for _ in wires:
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 2), "big")
            replies.append(await reader.readexactly(size))
        return replies
    finally:
        writer.close()
        await writer.wait_closed()


def answers(msg: Message) -> list[tuple[str, int, str]]:
    return [(r.name, r.type, r.text) for r in msg.answers]


# answers


async def test_a_record_field_by_field(dns_server: LoopbackDNSServer) -> None:
    qname = b"\x03www\x07example\x04test\x00"
    query = struct.pack("!6H", 0xBEEF, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", A, 1)
    (reply,) = await udp(dns_server, query)
    assert struct.unpack_from("!6H", reply) == (0xBEEF, 0x8000 | 0x0400 | 0x0100, 1, 2, 0, 0)
    assert reply[12 : 12 + len(qname) + 4] == qname + struct.pack("!HH", A, 1)
    off = 12 + len(qname) + 4
    for address in ("192.0.2.10", "192.0.2.11"):
        assert reply[off : off + 2] == b"\xc0\x0c"  # the owner points at the question
        assert struct.unpack_from("!HHIH", reply, off + 2) == (A, 1, 300, 4)
        assert reply[off + 12 : off + 16] == socket.inet_aton(address)
        off += 16
    assert off == len(reply)


async def test_aaaa_and_rd_clear(dns_server: LoopbackDNSServer) -> None:
    msg = await ask(dns_server, "dual.example.test", "AAAA", rd=False)
    flags = (msg.qr, msg.aa, msg.rd, msg.tc, msg.rcode, msg.id)
    assert flags == (True, True, False, False, 0, 0x1234)
    assert answers(msg) == [("dual.example.test", AAAA, "2001:db8::20")]
    assert msg.answers[0].rdata == socket.inet_pton(socket.AF_INET6, "2001:db8::20")


async def test_cname_chain(dns_server: LoopbackDNSServer) -> None:
    msg = await ask(dns_server, "alias.example.test")
    assert msg.rcode == 0
    assert answers(msg) == [
        ("alias.example.test", CNAME, "alias2.example.test."),
        ("alias2.example.test", CNAME, "dual.example.test."),
        ("dual.example.test", A, "192.0.2.20"),
    ]
    direct = await ask(dns_server, "alias.example.test", "CNAME")
    assert answers(direct) == [("alias.example.test", CNAME, "alias2.example.test.")]


async def test_cname_loop_stops(dns_server_factory: ServerFactory) -> None:
    loop = {"a.test": {"CNAME": ["b.test"]}, "b.test": {"CNAME": ["a.test"]}}
    server = await dns_server_factory(loop)
    msg = await ask(server, "a.test")
    assert msg.rcode == 0
    assert [r.text for r in msg.answers] == ["b.test.", "a.test."]


async def test_nxdomain_has_soa(dns_server: LoopbackDNSServer) -> None:
    msg = await ask(dns_server, "nope.example.test")
    assert (msg.rcode, msg.aa, msg.answers) == (3, True, ())
    assert [(r.name, r.type, r.text) for r in msg.authority] == [("example.test", SOA, SOA_TEXT)]
    dangling = await ask(dns_server, "dangling.example.test")  # RFC 6604: rcode of the target
    assert dangling.rcode == 3
    assert answers(dangling) == [("dangling.example.test", CNAME, "missing.example.test.")]
    assert [r.type for r in dangling.authority] == [SOA]


@pytest.mark.parametrize(
    ("name", "rtype"),
    [("www.example.test", "AAAA"), ("_tcp.example.test", "SRV"), ("wild.example.test", "A")],
)
async def test_nodata_has_soa(dns_server: LoopbackDNSServer, name: str, rtype: str) -> None:
    msg = await ask(dns_server, name, rtype)  # an RRset missing, or an empty non-terminal
    assert (msg.rcode, msg.answers) == (0, ())
    assert [(r.name, r.type, r.ttl) for r in msg.authority] == [("example.test", SOA, 300)]


async def test_default_soa_and_ttl(dns_server_factory: ServerFactory) -> None:
    server = await dns_server_factory({"a.zone.test": {"A": ["192.0.2.1"]}}, ttl=60)
    msg = await ask(server, "a.zone.test")
    assert [(r.name, r.ttl) for r in msg.answers] == [("a.zone.test", 60)]
    msg = await ask(server, "b.zone.test")
    assert msg.rcode == 3
    assert [(r.name, r.text) for r in msg.authority] == [
        ("a.zone.test", "ns.a.zone.test. hostmaster.a.zone.test. 1 3600 600 86400 60")
    ]


async def test_reverse_and_other_types(dns_server: LoopbackDNSServer) -> None:
    ptr = await ask(dns_server, "1.2.0.192.in-addr.arpa", "PTR")
    assert answers(ptr) == [("1.2.0.192.in-addr.arpa", PTR, "example.test.")]
    v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    assert [r.text for r in (await ask(dns_server, v6, "PTR")).answers] == ["example.test."]
    none = await ask(dns_server, "99.2.0.192.in-addr.arpa", "PTR")
    assert none.rcode == 3
    assert [r.name for r in none.authority] == ["2.0.192.in-addr.arpa"]
    texts = {
        t: sorted(r.text for r in (await ask(dns_server, "example.test", t)).answers)
        for t in ("MX", "NS", "CAA", "SOA")
    }
    assert texts == {
        "MX": ["10 mail.example.test.", "20 mail2.example.test."],
        "NS": ["ns1.example.test.", "ns2.example.test."],
        "CAA": ['0 iodef "mailto:security@example.test"', '0 issue "ca.example.net"'],
        "SOA": [SOA_TEXT],
    }
    srv = await ask(dns_server, "_SIP._tcp.example.test", "SRV")
    assert answers(srv) == [("_SIP._tcp.example.test", SRV, "10 60 5060 sip.example.test.")]
    idn = await ask(dns_server, "xn--bcher-kva.example.test")
    assert [r.text for r in idn.answers] == ["192.0.2.40"]


async def test_wildcard(dns_server: LoopbackDNSServer) -> None:
    msg = await ask(dns_server, "Deep.Below.wild.example.test")
    assert answers(msg) == [("Deep.Below.wild.example.test", A, "192.0.2.50")]
    assert (await ask(dns_server, "x.wild.example.test", "AAAA")).rcode == 0  # NODATA
    literal = await ask(dns_server, "*.wild.example.test", "TXT")
    assert [r.text for r in literal.answers] == ['"wildcard"']


async def test_wildcard_needs_closest_encloser(dns_server_factory: ServerFactory) -> None:
    zone = {"*.w.test": {"A": ["192.0.2.1"]}, "host.sub.w.test": {"A": ["192.0.2.2"]}}
    server = await dns_server_factory(zone)
    assert [r.text for r in (await ask(server, "other.w.test")).answers] == ["192.0.2.1"]
    assert (await ask(server, "x.sub.w.test")).rcode == 3  # sub.w.test exists (ENT)


async def test_txt_chunking(dns_server: LoopbackDNSServer) -> None:
    msg = await ask(dns_server, "text.example.test", "TXT", edns_size=4096)
    rdatas = [r.rdata for r in msg.answers]
    utf8 = "héllo wörld".encode()
    assert rdatas[0] == bytes([len(utf8)]) + utf8
    assert rdatas[1] == b'\x07\x00\xff"raw\\'
    assert rdatas[2] == b"\xff" + b"x" * 255 + b"\x2d" + b"x" * 45
    assert msg.answers[1].text == '"\\000\\255\\"raw\\\\"'
    apex = await ask(dns_server, "example.test", "TXT")
    assert b'\x12say "hello", world' in [r.rdata for r in apex.answers]


async def test_case_preserved_and_matched(dns_server: LoopbackDNSServer) -> None:
    query = encode_query("wWw.ExAmPlE.TeSt.", "A", qid=7)
    (reply,) = await udp(dns_server, query)
    assert reply[12 : len(query)] == query[12:]  # the question, byte for byte
    assert b"wWw\x07ExAmPlE\x04TeSt" in reply
    assert len(decode_message(reply).answers) == 2
    assert dns_server.queries[-1].name == "wWw.ExAmPlE.TeSt"
    assert dns_server.count("WWW.example.test.") == 1


# EDNS, truncation and TCP


async def test_edns_size_and_truncation(dns_server_factory: ServerFactory) -> None:
    server = await dns_server_factory(BIG_ZONE)
    plain = await ask(server, "big.test")
    assert (plain.tc, plain.answers, plain.additional, plain.rcode) == (True, (), (), 0)
    small = await ask(server, "big.test", edns_size=100)  # below 512 counts as 512
    assert (small.tc, small.answers, small.edns_size) == (True, (), 1232)
    big = await ask(server, "big.test", edns_size=4096)
    assert (big.tc, len(big.answers), big.edns_size) == (False, 100, 1232)
    (full,) = await tcp(server, encode_query("big.test", qid=9))
    msg = decode_message(full)
    assert (msg.tc, msg.id, len(msg.answers), msg.additional) == (False, 9, 100, ())
    edns_small = await ask(server, "x.big.test", edns_size=1232)
    assert edns_small.edns_size == 1232
    assert [r.type for r in edns_small.additional] == [OPT]


async def test_tcp_several_queries_per_connection(dns_server: LoopbackDNSServer) -> None:
    names = ["www.example.test", "dual.example.test", "nope.example.test"]
    replies = await tcp(dns_server, *(encode_query(n, qid=i) for i, n in enumerate(names)))
    msgs = [decode_message(r) for r in replies]
    assert [(m.id, m.rcode, len(m.answers)) for m in msgs] == [(0, 0, 2), (1, 0, 1), (2, 3, 0)]
    assert dns_server.count(transport="tcp") == 3
    assert dns_server.count(transport="udp") == 0


# faults


@pytest.mark.parametrize(
    ("fault", "rcode"),
    [(Fault.SERVFAIL, 2), (Fault.REFUSED, 5), (Fault.FORMERR, 1), (Fault.NOTIMP, 4)],
)
async def test_rcode_faults(dns_server: LoopbackDNSServer, fault: Fault, rcode: int) -> None:
    dns_server.set_fault("www.example.test", fault)
    msg = await ask(dns_server, "WWW.example.test")
    assert (msg.rcode, msg.id, msg.answers, msg.questions[0].name) == (
        rcode,
        0x1234,
        (),
        "WWW.example.test",
    )
    assert (await ask(dns_server, "dual.example.test")).rcode == 0  # other names unaffected
    (over_tcp,) = await tcp(dns_server, encode_query("www.example.test"))
    assert decode_message(over_tcp).rcode == rcode


async def test_drop_and_times(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault("www.example.test", Fault.DROP, times=2)
    query = encode_query("www.example.test")
    assert await udp(dns_server, query, wait=0.2) == []
    assert await udp(dns_server, query, wait=0.2) == []
    assert len(await udp(dns_server, query)) == 1  # the third try is answered
    assert dns_server.count("www.example.test") == 3


async def test_times_then_normal(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault(None, Fault.SERVFAIL, times=2)
    rcodes = [(await ask(dns_server, n)).rcode for n in ("www.example.test", "x.test", "x.test")]
    assert rcodes == [2, 2, 3]


async def test_delay_does_not_block(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault("www.example.test", Fault.DELAY, delay=0.4)
    loop = asyncio.get_running_loop()
    start = loop.time()
    slow = asyncio.ensure_future(ask(dns_server, "www.example.test"))
    await asyncio.sleep(0.05)
    fast = await ask(dns_server, "dual.example.test")
    fast_done = loop.time() - start
    assert fast.rcode == 0
    assert fast_done < 0.35
    assert len((await slow).answers) == 2
    assert loop.time() - start >= 0.39


async def test_delay_over_tcp(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault("www.example.test", Fault.DELAY, delay=0.2, transport="tcp")
    started = time.monotonic()
    (reply,) = await tcp(dns_server, encode_query("www.example.test"))
    assert time.monotonic() - started >= 0.19
    assert len(decode_message(reply).answers) == 2


async def test_truncate_then_tcp(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault("www.example.test", Fault.TRUNCATE)
    msg = await ask(dns_server, "www.example.test", edns_size=4096)
    assert (msg.tc, msg.answers, msg.rcode) == (True, (), 0)
    (full,) = await tcp(dns_server, encode_query("www.example.test"))
    assert len(decode_message(full).answers) == 2


async def test_wrong_id(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault(None, Fault.WRONG_ID)
    replies = await udp(dns_server, encode_query("www.example.test", qid=0x4242), linger=0.3)
    assert len(replies) == 1  # and nothing correct after it
    assert decode_message(replies[0]).id != 0x4242
    assert len(decode_message(replies[0]).answers) == 2


async def test_garbage(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault("www.example.test", Fault.GARBAGE, transport="udp")
    (reply,) = await udp(dns_server, encode_query("www.example.test"), linger=0.2)
    with pytest.raises(MessageError):
        decode_message(reply)
    (tcp_reply,) = await tcp(dns_server, encode_query("www.example.test"))  # udp only
    assert len(decode_message(tcp_reply).answers) == 2


async def test_wrong_question(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault("www.example.test", Fault.WRONG_QUESTION)
    msg = await ask(dns_server, "www.example.test")
    assert msg.id == 0x1234
    assert msg.questions[0].name.lower() != "www.example.test"


async def test_transport_filter_and_precedence(dns_server: LoopbackDNSServer) -> None:
    dns_server.set_fault(None, Fault.DROP, transport="udp")
    dns_server.set_fault("dual.example.test", Fault.REFUSED)
    assert await udp(dns_server, encode_query("www.example.test"), wait=0.2) == []
    assert (await ask(dns_server, "dual.example.test")).rcode == 5  # the named rule wins
    (reply,) = await tcp(dns_server, encode_query("www.example.test"))
    assert decode_message(reply).rcode == 0
    dns_server.clear_faults()
    assert (await ask(dns_server, "dual.example.test")).rcode == 0


# malformed input and bookkeeping


async def test_malformed_queries(dns_server: LoopbackDNSServer) -> None:
    header = struct.pack("!6H", 0x7777, 0x0100, 1, 0, 0, 0)
    (reply,) = await udp(dns_server, header + b"\x05ab")  # a cut-off question
    assert struct.unpack("!6H", reply) == (0x7777, 0x8100 | 1, 0, 0, 0, 0)
    (reply,) = await udp(dns_server, struct.pack("!6H", 1, 0, 0, 0, 0, 0))  # no question
    assert decode_message(reply).rcode == 1
    status = struct.pack("!6H", 2, 2 << 11, 1, 0, 0, 0) + encode_query("www.example.test")[12:]
    assert decode_message((await udp(dns_server, status))[0]).rcode == 4  # opcode STATUS
    assert await udp(dns_server, b"\x12\x34\x01", wait=0.2) == []  # no header: ignored
    response = bytearray(encode_query("www.example.test"))
    response[2] |= 0x80
    assert await udp(dns_server, bytes(response), wait=0.2) == []  # a response: ignored
    assert [q.name for q in dns_server.queries] == ["www.example.test"]


async def test_queries_recorded(dns_server: LoopbackDNSServer) -> None:
    await ask(dns_server, "Www.example.test", "AAAA")
    await tcp(dns_server, encode_query("nope.example.test", "MX", qid=5))
    q0, q1 = dns_server.queries
    assert q0 == ReceivedQuery("udp", "Www.example.test", AAAA, 0x1234, q0.client)
    assert q0.client[0] == "127.0.0.1"
    assert (q1.transport, q1.name, q1.type, q1.id) == ("tcp", "nope.example.test", MX, 5)
    assert dns_server.count() == 2
    assert dns_server.count("www.EXAMPLE.test", "tcp") == 0
    assert dns_server.nameserver == f"127.0.0.1:{dns_server.port}"


async def test_ipv6_loopback() -> None:
    try:
        server = LoopbackDNSServer(EXAMPLE_ZONE, host="::1")
        await server.start()
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    try:
        assert server.nameserver == f"[::1]:{server.port}"
        assert answers(await ask(server, "v6only.example.test", "AAAA"))[0][2] == "2001:db8::6"
        (reply,) = await tcp(server, encode_query("www.example.test"))
        assert len(decode_message(reply).answers) == 2
    finally:
        await server.stop()


def test_only_loopback_and_valid_zones() -> None:
    with pytest.raises(ValueError, match="loopback"):
        LoopbackDNSServer(EXAMPLE_ZONE, host="192.0.2.1")
    for bad in (
        {"x.test": {"A": ["2001:db8::1"]}},
        {"x.test": {"NAPTR": ["1 1 u sip x."]}},
        {"a..b": {"A": ["192.0.2.1"]}},
        {"x.test": {"MX": ["mail.test"]}},
        {"x.test": {"A": [b"\xc0\x00\x02\x01"]}},
        {"x" * 64 + ".test": {"A": ["192.0.2.1"]}},
    ):
        with pytest.raises(MessageError):
            LoopbackDNSServer(bad)


# threads and an independent client


def _blocking_udp(server: LoopbackDNSServer, wire: bytes) -> Message:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(wire, (server.host, server.port))
        return decode_message(sock.recv(65535))


def test_serve_in_thread() -> None:
    with serve_in_thread(EXAMPLE_ZONE, ttl=42) as server:
        assert server.port != 0
        msg = _blocking_udp(server, encode_query("www.example.test"))
        assert [(r.text, r.ttl) for r in msg.answers] == [("192.0.2.10", 42), ("192.0.2.11", 42)]
        server.set_fault("www.example.test", Fault.SERVFAIL, times=1)
        assert _blocking_udp(server, encode_query("www.example.test")).rcode == 2
        assert _blocking_udp(server, encode_query("www.example.test")).rcode == 0
        assert server.count("www.example.test") == 3
    assert not [t for t in threading.enumerate() if t.name == "LoopbackDNSServer"]


def _cares(server: LoopbackDNSServer, name: str, rtype: int) -> tuple[Any, int | None]:
    channel = pycares.Channel(
        servers=[server.nameserver], timeout=2.0, tries=1, flags=pycares.ARES_FLAG_NOSEARCH
    )
    done = threading.Event()
    out: list[tuple[Any, int | None]] = []

    def callback(result: Any, error: int | None) -> None:
        out.append((result, error))
        done.set()

    try:
        channel.query(name, rtype, callback=callback)
        assert done.wait(5)
    finally:
        channel.close()
    return out[0]


def test_pycares_agrees() -> None:
    with serve_in_thread(EXAMPLE_ZONE) as server:
        result, error = _cares(server, "alias.example.test", pycares.QUERY_TYPE_A)
        assert error is None
        assert [(r.type, r.name) for r in result.answer] == [
            (CNAME, "alias.example.test"),
            (CNAME, "alias2.example.test"),
            (A, "dual.example.test"),
        ]
        assert result.answer[-1].data.addr == "192.0.2.20"
        result, error = _cares(server, "text.example.test", pycares.QUERY_TYPE_TXT)
        assert sorted(r.data.data for r in result.answer) == sorted(
            [b'\x00\xff"raw\\', "héllo wörld".encode(), b"x" * 300]
        )
        assert _cares(server, "nope.example.test", pycares.QUERY_TYPE_A)[1] == (
            pycares.errno.ARES_ENOTFOUND
        )
        assert _cares(server, "www.example.test", pycares.QUERY_TYPE_AAAA)[1] == (
            pycares.errno.ARES_ENODATA
        )
    with serve_in_thread(BIG_ZONE) as server:  # too big for UDP: c-ares retries over TCP
        result, error = _cares(server, "big.test", pycares.QUERY_TYPE_A)
        assert (error, len(result.answer)) == (None, 100)
        assert server.count("big.test", "udp") == 1
        assert server.count("big.test", "tcp") == 1


# the zone file and Knot DNS


def test_to_zone_file() -> None:
    zone: dict[str, dict[str, list[str | bytes]]] = {
        "a.zone.test": {"TXT": [b'q"\\\x80', "ü"], "CNAME": []},
        "Mail.zone.test": {"MX": ["10 A.zone.test"]},
        "other.test": {"A": ["192.0.2.1"]},
    }
    text = to_zone_file(zone, "zone.test.", ttl=60)
    assert text.splitlines() == [
        "$TTL 60",
        "zone.test. 60 IN SOA ns.zone.test. hostmaster.zone.test. 1 3600 600 86400 60",
        'a.zone.test. 60 IN TXT "q\\"\\\\\\128"',
        'a.zone.test. 60 IN TXT "\\195\\188"',
        "Mail.zone.test. 60 IN MX 10 A.zone.test.",
    ]
    assert to_zone_file(EXAMPLE_ZONE, EXAMPLE_ORIGIN).count(" SOA ") == 1


def _exchange(host: str, port: int, name: str, rtype: int) -> Message:
    query = encode_query(name, rtype, qid=0x5151, edns_size=4096, rd=False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(query, (host, port))
        return decode_message(sock.recv(65535))


def _essence(msg: Message) -> tuple[int, bool, list[tuple[str, int, str]], list[str]]:
    """What must agree between two servers: rcode, AA, answer records, authority SOAs."""

    def norm(rtype: int, text: str) -> str:
        return text if rtype in (TXT, CAA) else text.lower()

    rrs = sorted((r.name.lower(), r.type, norm(r.type, r.text)) for r in msg.answers)
    return msg.rcode, msg.aa, rrs, sorted(r.text.lower() for r in msg.authority if r.type == SOA)


@contextlib.contextmanager
def _knot(origin: str) -> Iterator[KnotServer]:
    with KnotServer(to_zone_file(EXAMPLE_ZONE, origin), origin) as knot:
        yield knot


@pytest.mark.knot
@pytest.mark.parametrize(
    "origin", [EXAMPLE_ORIGIN, "2.0.192.in-addr.arpa", "8.b.d.0.1.0.0.2.ip6.arpa"]
)
def test_zone_file_round_trips_through_knot(origin: str) -> None:
    require_knot()
    types = {"A": A, "NS": NS, "CNAME": CNAME, "SOA": SOA, "PTR": PTR, "MX": MX}
    types |= {"TXT": TXT, "AAAA": AAAA, "SRV": SRV, "CAA": CAA}
    questions = [
        (owner, types[t])
        for owner, rrsets in EXAMPLE_ZONE.items()
        if owner == origin or owner.endswith("." + origin)
        for t in rrsets
    ]
    questions += [
        (f"nope.{origin}", A),  # NXDOMAIN
        (origin, 99),  # NODATA
    ]
    if origin == EXAMPLE_ORIGIN:
        questions += [
            ("Alias.example.test", A),
            ("dangling.example.test", A),
            ("x.y.wild.example.test", TXT),
            ("wild.example.test", A),
            ("www.example.test", AAAA),
        ]
    with serve_in_thread(EXAMPLE_ZONE) as ours, _knot(origin) as knot:
        for name, rtype in questions:
            theirs = _exchange("127.0.0.1", knot.port, name, rtype)
            mine = _exchange(ours.host, ours.port, name, rtype)
            assert _essence(mine) == _essence(theirs), (name, rtype)
        if origin == EXAMPLE_ORIGIN and shutil.which("kdig"):  # kdig spells TXT like we do
            kdig = ["kdig", "@127.0.0.1", "-p", str(knot.port), "+short"]
            out = subprocess.run(
                [*kdig, "text.example.test", "TXT"], capture_output=True, text=True, timeout=10
            )
            mine = _exchange(ours.host, ours.port, "text.example.test", TXT)
            assert sorted(out.stdout.splitlines()) == sorted(r.text for r in mine.answers)
