"""Tests for resolver.codec, the DNS message codec of the wire engine.

Hand-built packets for each rule; the same replies decoded by c-ares (the c-ares engine) and
by `decode_reply` must give the same results, for a zone served by `LoopbackDNSServer` and
for crafted replies; hypothesis for arbitrary and mutated packets. Every packet goes to a
server on loopback started by the test.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import codec
from resolver.codec import (
    BadReply,
    Decoded,
    Mismatch,
    build_query,
    decode_reply,
    encode_name,
    render_text,
    reply_id,
)
from resolver.engines import cares
from resolver.model import CAA, MX, SOA, SRV, Answer, Query, RecordType, Result, Status
from resolver.testing import LoopbackDNSServer, Transport, Zone, decode_message
from resolver.testing.pytest_plugin import ServerFactory

A, NS, CNAME, PTR, TXT, AAAA, OPT = 1, 2, 5, 12, 16, 28, 41
SOA_T, MX_T, SRV_T, CAA_T, HINFO, RRSIG, DNAME = 6, 15, 33, 257, 13, 46, 39
TYPES = [t.value for t in RecordType]
QNAME = encode_name("a.test")  # at offset 12 of every reply built here; "test" is at 14
HERE = b"\xc0\x0c"  # a pointer to the question's name
PROPERTY = settings(max_examples=300, deadline=None)


def name(text: str) -> bytes:
    """Wire form of a dotted name (labels hold no dot; characters are latin-1 bytes)."""
    if not text:
        return b"\0"
    labels = text.encode("latin-1").split(b".")
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\0"


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300, rclass: int = 1) -> bytes:
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def reply(
    *answers: bytes,
    qname: bytes = QNAME,
    qtype: int = A,
    flags: int = 0x8580,
    authority: tuple[bytes, ...] = (),
    additional: tuple[bytes, ...] = (),
    qdcount: int = 1,
    qclass: int = 1,
) -> bytes:
    """A reply (QR AA RD RA, NOERROR unless `flags` says otherwise) to `qname`/`qtype`."""
    counts = (qdcount, len(answers), len(authority), len(additional))
    return b"".join(
        [
            struct.pack("!6H", 0x1234, flags, *counts),
            qname + struct.pack("!HH", qtype, qclass),
            *answers,
            *authority,
            *additional,
        ]
    )


def opt(ttl: int = 0, options: bytes = b"") -> bytes:
    return rr(b"\0", OPT, options, ttl=ttl, rclass=1232)


def decode(packet: bytes, qtype: int = A) -> Decoded:
    return decode_reply(packet, QNAME, qtype)


def answered(*answers: Answer, ttl: int = 300, cnames: tuple[str, ...] = ()) -> Decoded:
    return Decoded(0, False, answers, ttl if answers else None, cnames)


# queries


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("a.test", b"\x01a\x04test\0"),
        ("Www.Example.TEST", b"\x03Www\x07Example\x04TEST\0"),
        ("_sip._tcp.x-y.test", b"\x04_sip\x04_tcp\x03x-y\x04test\0"),
        ("x" * 63, b"\x3f" + b"x" * 63 + b"\0"),
        ("localhost", b"\x09localhost\0"),
    ],
)
def test_encode_name(text: str, wire: bytes) -> None:
    assert encode_name(text) == wire


REFUSED = ["", ".", "a.", ".a", "a..b", "x" * 64 + ".test", ".".join(["x" * 63] * 4)]
REFUSED += ["é.test", "a b.test", "a\\.b.test", "a*.test", "a/b", "a\0b"]


@pytest.mark.parametrize("text", REFUSED)
def test_encode_name_refuses(text: str) -> None:
    with pytest.raises(BadReply):
        encode_name(text)


LONG_PARENT = ".".join(["y" * 63] * 3)  # 191 characters


@pytest.mark.parametrize(
    ("known", "bad"),
    [
        *[("ok.bench.test", f"{label}.bench.test") for label in ["", "é", "a b", "a*", "a\0b"]],
        ("ok.bench.test", "x" * 64 + ".bench.test"),
        (f"ok.{LONG_PARENT}", "x" * 62 + f".{LONG_PARENT}"),  # 254 characters
    ],
)
def test_encode_name_refuses_beside_a_known_parent(known: str, bad: str) -> None:
    """The wire form of a parent is kept for its children; a bad first label still fails."""
    assert encode_name(known)
    with pytest.raises(BadReply):
        encode_name(bad)


def test_encode_name_longest() -> None:
    longest = ".".join(["x" * 63, "y" * 63, "z" * 63, "w" * 61])  # 253 characters
    assert len(encode_name(longest)) == 255


def test_build_query() -> None:
    packet = build_query(0xBEEF, encode_name("Www.Example.test"), AAAA)
    assert packet == (
        b"\xbe\xef\x01\x00\0\x01\0\0\0\0\0\x01"
        + b"\x03Www\x07Example\x04test\0\0\x1c\0\x01"
        + b"\0\0\x29\x04\xd0\0\0\0\0\0\0"
    )
    message = decode_message(packet)
    assert (message.id, message.rd, message.qr, message.opcode) == (0xBEEF, True, False, 0)
    assert [(q.name, q.type, q.cls) for q in message.questions] == [("Www.Example.test", 28, 1)]
    assert message.edns_size == 1232
    assert decode_message(build_query(1, QNAME, MX_T, edns_payload=4096)).edns_size == 4096
    plain = decode_message(build_query(2, QNAME, CAA_T, edns_payload=None))
    assert (plain.edns_size, plain.additional, plain.questions[0].type) == (None, (), CAA_T)


def test_reply_id() -> None:
    assert reply_id(reply()) == 0x1234
    assert reply_id(b"\xab\xcd" + bytes(10)) == 0xABCD
    assert reply_id(b"\xab\xcd" + bytes(9)) is None
    assert reply_id(b"") is None


# answers of every type


@pytest.mark.parametrize(
    ("qtype", "rdata", "answer"),
    [
        (A, b"\xc0\x00\x02\x01", IPv4Address("192.0.2.1")),
        (AAAA, IPv6Address("2001:db8::1").packed, IPv6Address("2001:db8::1")),
        (AAAA, IPv6Address("::ffff:192.0.2.1").packed, IPv6Address("::ffff:192.0.2.1")),
        (CNAME, name("Target.Test"), "Target.Test"),
        (PTR, name("host.test"), "host.test"),
        (NS, b"\x03ns1" + b"\xc0\x0e", "ns1.test"),  # compressed: "test" of the question
        (MX_T, b"\x00\x0a" + name("mx.test"), MX(10, "mx.test")),
        (MX_T, b"\x00\x00\x00", MX(0, "")),  # a null MX: the root is ""
        (SRV_T, b"\x00\x01\x00\x02\x13\xc4" + name("sip.test"), SRV(1, 2, 5060, "sip.test")),
        (
            SOA_T,
            name("ns.test") + name("h.test") + struct.pack("!5I", 1, 2, 3, 4, 2**32 - 1),
            SOA("ns.test", "h.test", 1, 2, 3, 4, 2**32 - 1),
        ),
        (TXT, b"\x05hello\x00\x06 world", "hello world"),
        (TXT, b"\x07\x00\x1f\x7f\xff\\\xc3\xa9", "\\000\\031\\127\\255\\\\é"),
        (CAA_T, b"\x00\x05issueca.test", CAA(0, "issue", "ca.test")),
        (CAA_T, b"\x80\x05iodefmailto:x@test", CAA(128, "iodef", "mailto:x@test")),
        (CAA_T, b"\x00\x03a bv", CAA(0, "a b", "v")),
        (CAA_T, b"\x00\x01tX\x00Y", CAA(0, "t", "X")),  # pycares cuts the value at a NUL
        (CAA_T, b"\x00\x01t\x01\\", CAA(0, "t", "\\001\\\\")),
        # pycares gives a value that is not ASCII as bytes, which the c-ares engine renders
        # through str(): the same text comes out here.
        (CAA_T, b"\x00\x01t\xc3\xa9", CAA(0, "t", "b'\\\\xc3\\\\xa9'")),
    ],
)
def test_each_type(qtype: int, rdata: bytes, answer: Answer) -> None:
    assert decode(reply(rr(HERE, qtype, rdata), qtype=qtype), qtype) == answered(answer)


@pytest.mark.parametrize(
    ("label", "text"),
    [
        (b"MiXeD", "MiXeD"),
        (b"a.b", "a\\.b"),
        (b'\\";()@$', '\\\\\\"\\;\\(\\)\\@\\$'),
        (b"sp ace", "sp ace"),
        (b"*-_/+,:<=>?[]^`{|}~!#%&'", "*-_/+,:<=>?[]^`{|}~!#%&'"),
        (b"\x00\x01\x1f\x7f\x80\xe9\xff", "\\000\\001\\031\\127\\128\\233\\255"),
    ],
)
def test_names_are_rendered_like_c_ares(label: bytes, text: str) -> None:
    target = bytes((len(label),)) + label + b"\x04test\0"
    assert decode(reply(rr(HERE, PTR, target), qtype=PTR), PTR).answers == (f"{text}.test",)


def test_ttl_is_the_smallest_of_the_answers() -> None:
    packet = reply(
        *(rr(HERE, A, bytes((192, 0, 2, i)), ttl=t) for i, t in enumerate([9, 2, 2**32 - 1]))
    )
    assert decode(packet).ttl == 2


def test_other_types_and_owners_are_skipped() -> None:
    packet = reply(
        rr(HERE, RRSIG, b"\x01\x02\x03"),
        rr(HERE, DNAME, name("elsewhere.test")),
        rr(HERE, AAAA, bytes(16)),
        rr(name("other.test"), A, b"\x01\x02\x03\x04"),
        rr(HERE, A, b"\x05\x06\x07\x08"),
        rr(HERE, 65280, b""),  # a private type, empty
        additional=(opt(),),
    )
    assert decode(packet) == answered(IPv4Address("5.6.7.8"))


def test_other_classes_are_taken_like_c_ares() -> None:
    for rclass in (3, 4, 254):  # CHAOS, HESIOD, NONE: c-ares keeps them, the class unread
        assert decode(reply(rr(HERE, A, b"\1\2\3\4", rclass=rclass))).answers == (
            IPv4Address("1.2.3.4"),
        )


# CNAME chains


CHAIN = [
    rr(HERE, CNAME, name("B.test")),  # at 24 in the reply; its target at 36
    rr(b"\xc0\x24", CNAME, b"\x01c\xc0\x0e"),  # b.test -> c.test, both compressed
    rr(name("C.TEST"), A, b"\xc0\x00\x02\x07", ttl=60),
    rr(name("c.test"), A, b"\xc0\x00\x02\x08", ttl=70),
]


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]])
def test_cname_chain(order: list[int]) -> None:
    records = [CHAIN[i] for i in order]
    if order[0] != 0:  # the second record points at the first one's target: spell it out
        records = [
            rr(name("b.test"), CNAME, name("c.test")) if r is CHAIN[1] else r for r in records
        ]
    addresses = [IPv4Address(f"192.0.2.{7 + (i == 3)}") for i in order if i > 1]  # in order
    assert decode(reply(*records)) == answered(*addresses, ttl=60, cnames=("b.test", "c.test"))


def test_chain_ending_in_nothing() -> None:
    packet = reply(rr(HERE, CNAME, name("b.test")), rr(name("b.test"), CNAME, name("C.test")))
    assert decode(packet) == Decoded(0, False, (), None, ("b.test", "c.test"))
    # answers owned by a name of the chain but not its end do not count
    packet = reply(rr(HERE, CNAME, name("b.test")), rr(HERE, A, b"\1\2\3\4"))
    assert decode(packet) == Decoded(0, False, (), None, ("b.test",))


def test_cname_query_is_not_followed() -> None:
    packet = reply(
        rr(HERE, CNAME, name("B.test")), rr(name("b.test"), CNAME, name("c.test")), qtype=CNAME
    )
    assert decode(packet, CNAME) == answered("B.test")


def test_cname_loop_is_left_to_cares() -> None:  # which reports it as an ERROR
    packet = reply(rr(HERE, CNAME, name("b.test")), rr(name("b.test"), CNAME, name("A.test")))
    with pytest.raises(BadReply, match="CNAME loop"):
        decode(packet)


def test_last_cname_of_an_owner_wins() -> None:  # as in the c-ares engine
    packet = reply(
        rr(HERE, CNAME, name("x.test")),
        rr(HERE, CNAME, name("y.test")),
        rr(name("x.test"), A, b"\1\1\1\1"),
        rr(name("y.test"), A, b"\2\2\2\2"),
    )
    assert decode(packet) == answered(IPv4Address("2.2.2.2"), cnames=("y.test",))


# header, question, rcodes


def test_question_in_any_case() -> None:
    packet = reply(rr(HERE, A, b"\1\2\3\4"), qname=b"\x01A\x04TeSt\0")
    assert decode(packet).answers == (IPv4Address("1.2.3.4"),)


def test_truncated_reply() -> None:
    packet = reply(rr(HERE, A, b"\1\2\3\4"), b"garbage", flags=0x8780)
    assert decode(packet) == Decoded(0, True, (), None, ())


@pytest.mark.parametrize("rcode", [1, 2, 3, 4, 5, 9, 12])
def test_rcodes(rcode: int) -> None:
    """No answers but for NOERROR; the CNAME chain kept for SERVFAIL and NXDOMAIN (a
    dangling CNAME), as the c-ares engine keeps it."""
    soa = name("test") + name("h.test") + bytes(20)
    packet = reply(
        rr(HERE, CNAME, name("b.test")),
        rr(name("b.test"), A, b"\1\2\3\4"),
        flags=0x8580 | rcode,
        authority=(rr(b"\xc0\x0e", SOA_T, soa),),
    )
    chain = ("b.test",) if rcode in (2, 3) else ()
    assert decode(packet) == Decoded(rcode, False, (), None, chain)


@pytest.mark.parametrize("rcode", [2, 3])
def test_rcodes_keep_a_chain_of_several_steps_in_any_order(rcode: int) -> None:
    packet = reply(
        rr(name("C.test"), CNAME, name("d.test")),
        rr(HERE, CNAME, name("B.Test")),
        rr(name("b.test"), CNAME, name("c.TEST")),
        rr(name("unrelated.test"), CNAME, name("e.test")),
        flags=0x8580 | rcode,
    )
    assert decode(packet) == Decoded(rcode, False, (), None, ("b.test", "c.test", "d.test"))


@pytest.mark.parametrize("rcode", [2, 3])
def test_rcodes_leave_a_cname_loop_to_cares(rcode: int) -> None:
    packet = reply(
        rr(HERE, CNAME, name("b.test")), rr(name("b.test"), CNAME, HERE), flags=0x8580 | rcode
    )
    with pytest.raises(BadReply, match="CNAME loop"):
        decode(packet)


def test_an_nxdomain_for_a_cname_question_has_no_chain() -> None:
    packet = reply(rr(HERE, CNAME, name("b.test")), qtype=CNAME, flags=0x8583)
    assert decode(packet, qtype=CNAME) == Decoded(3, False, (), None, ())


def test_extended_rcode() -> None:  # BADVERS: 16 = the OPT's 1 << 4 | the header's 0
    packet = reply(rr(HERE, A, b"\1\2\3\4"), additional=(opt(ttl=1 << 24),))
    assert decode(packet) == Decoded(16, False, (), None, ())


@pytest.mark.parametrize(
    "packet",
    [
        reply(flags=0x0580),  # not a response
        reply(flags=0x8D80),  # opcode 1
        reply(flags=0xA580),  # opcode 4 (NOTIFY)
        reply(qdcount=0),
        reply(qdcount=2),
        reply(qname=name("b.test")),
        reply(qname=name("a.test.x")),
        reply(qtype=AAAA),
        reply(qclass=3),
    ],
)
def test_mismatch(packet: bytes) -> None:
    with pytest.raises(Mismatch):
        decode(packet)


# malformed replies

ANSWER = rr(HERE, A, b"\1\2\3\4")
L63 = b"\x3f" + b"x" * 63


@pytest.mark.parametrize(
    ("packet", "qtype"),
    [
        pytest.param(reply()[:11], A, id="header"),
        pytest.param(reply()[:16], A, id="question name"),
        pytest.param(reply()[:21], A, id="question type"),
        pytest.param(reply(ANSWER)[:-2], A, id="rdata"),
        pytest.param(reply(ANSWER)[: len(reply()) + 8], A, id="record header"),
        pytest.param(reply(ANSWER, ANSWER)[: len(reply(ANSWER))], A, id="missing record"),
        pytest.param(reply(ANSWER)[: len(reply()) + 1], A, id="pointer cut"),
        pytest.param(reply(rr(b"\xc0\x18", A, b"\1\2\3\4")), A, id="pointer to itself"),
        pytest.param(reply(rr(b"\xc0\x1a", A, b"\1\2\3\4")), A, id="forward pointer"),
        pytest.param(reply(rr(b"\xff\xff", A, b"\1\2\3\4")), A, id="pointer past the end"),
        pytest.param(
            # the first record's rdata points at the second's owner, which points back
            reply(rr(HERE, RRSIG, b"\xc0\x26"), rr(b"\xc0\x24", A, b"\1\2\3\4")),
            A,
            id="pointer loop",
        ),
        pytest.param(
            reply(rr(HERE, CNAME, b"\x01b\xc0\x30"), rr(HERE, A, b"\1\2\3\4")),
            A,
            id="forward pointer in rdata",
        ),
        pytest.param(reply(rr(b"\x40\x01", A, b"\1\2\3\4")), A, id="label type 01"),
        pytest.param(reply(rr(b"\x81\x01", A, b"\1\2\3\4")), A, id="label type 10"),
        pytest.param(reply(rr(L63 * 4 + b"\0", A, b"\1\2\3\4")), A, id="name of 257 octets"),
        pytest.param(
            reply(
                rr(HERE, RRSIG, L63 * 3 + b"\0"), rr(b"\x3e" + b"y" * 62 + b"\xc0\x24", A, b"1234")
            ),
            A,
            id="name of 256 octets, compressed",
        ),
        pytest.param(reply(rr(HERE, A, b"\1\2\3")), A, id="A of 3"),
        pytest.param(reply(rr(HERE, A, b"\1\2\3\4\5")), A, id="A of 5"),
        pytest.param(reply(rr(HERE, AAAA, bytes(15)), qtype=AAAA), AAAA, id="AAAA of 15"),
        pytest.param(reply(rr(HERE, AAAA, bytes(4)), ANSWER), A, id="AAAA of 4, not asked"),
        pytest.param(reply(rr(HERE, CNAME, name("b.test") + b"x")), A, id="CNAME with junk"),
        pytest.param(reply(rr(HERE, MX_T, b"\0\1"), qtype=MX_T), MX_T, id="MX without name"),
        pytest.param(reply(rr(HERE, SRV_T, bytes(6) + b"\x01"), qtype=SRV_T), SRV_T, id="SRV"),
        pytest.param(
            reply(rr(HERE, SOA_T, name("a") + name("b") + bytes(19)), qtype=SOA_T),
            SOA_T,
            id="SOA of 19",
        ),
        pytest.param(reply(rr(HERE, TXT, b""), qtype=TXT), TXT, id="TXT empty"),
        pytest.param(reply(rr(HERE, TXT, b"\x05abc"), qtype=TXT), TXT, id="TXT past rdata"),
        pytest.param(reply(rr(HERE, CAA_T, b"\x00\x00v"), qtype=CAA_T), CAA_T, id="CAA no tag"),
        pytest.param(reply(rr(HERE, CAA_T, b"\x00\x01t"), qtype=CAA_T), CAA_T, id="CAA no value"),
        pytest.param(reply(rr(HERE, CAA_T, b"\x00\x02t\x01v"), qtype=CAA_T), CAA_T, id="CAA tag"),
        pytest.param(reply(rr(HERE, A, b"\1\2\3\4", rclass=2)), A, id="class CS"),
        pytest.param(reply(rr(HERE, A, b"\1\2\3\4", rclass=255)), A, id="class ANY"),
        pytest.param(reply(rr(HERE, HINFO, b"\1a\1b"), ANSWER), A, id="HINFO"),
        pytest.param(reply(ANSWER, additional=(rr(HERE, 64, bytes(3)),)), A, id="SVCB"),
        pytest.param(reply(ANSWER, additional=(opt(options=b"\0\x0a\0\x09abc"),)), A, id="OPT"),
        pytest.param(
            reply(ANSWER, authority=(rr(b"\xc0\x0e", SOA_T, name("t") + bytes(20)),)),
            A,
            id="authority",
        ),
        pytest.param(
            reply(flags=0x8583, authority=(rr(b"\xc0\x0e", SOA_T, bytes(3)),)),
            A,
            id="NXDOMAIN with a bad SOA",
        ),
        pytest.param(reply(ANSWER) + bytes(65536), A, id="over 64 KiB"),
        pytest.param(reply(ANSWER, qtype=99), 99, id="type not supported"),
    ],
)
def test_malformed(packet: bytes, qtype: int) -> None:
    with pytest.raises(BadReply) as caught:
        decode(packet, qtype)
    assert type(caught.value) is BadReply


def test_pointer_chains_take_linear_time() -> None:
    # An unknown record's rdata holds 8000 pointers, each to the one before it (the first
    # to the question); then some 4000 records own the last one. Walking the chain again
    # for each owner would take minutes.
    jumps, first = 8000, 36
    chain = b"".join(
        struct.pack("!H", 0xC000 | (first + 2 * (k - 1) if k else 12)) for k in range(jumps)
    )
    owner = struct.pack("!H", 0xC000 | (first + 2 * (jumps - 1)))
    records = [rr(HERE, 65280, chain)]
    size = len(reply(*records))
    records += [rr(owner, 65280, b"")] * ((65535 - size) // 12)
    started = time.perf_counter()
    assert decode(reply(*records)) == Decoded(0, False, (), None, ())
    assert time.perf_counter() - started < 5


def reference_render_text(data: bytes) -> str:
    """render_text as the c-ares engine first had it: one character at a time."""
    out: list[str] = []
    for ch in data.decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte
            out.append(f"\\{code - 0xDC00:03d}")
        elif code < 0x20 or 0x7F <= code < 0xA0:
            out.append(f"\\{code:03d}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


TEXTS = [b"", b"plain", b"\x00\x1f\x7f\x9f\xa0", "é€😀\u0085".encode(), b"\\\xff\xc3", b'"q"']


@pytest.mark.parametrize("data", TEXTS)
def test_render_text(data: bytes) -> None:
    assert render_text(data) == reference_render_text(data)


@PROPERTY
@given(st.binary() | st.text().map(str.encode))
def test_render_text_any(data: bytes) -> None:
    assert render_text(data) == reference_render_text(data)


# the same as c-ares


async def exchange(server: LoopbackDNSServer, packet: bytes) -> bytes:
    """Send one datagram to `server`, return the first datagram that comes back."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[bytes] = loop.create_future()

    class Receiver(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            if not received.done():
                received.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(
        Receiver, remote_addr=(server.host, server.port)
    )
    try:
        transport.sendto(packet)
        return await asyncio.wait_for(received, 5)
    finally:
        transport.close()


async def c_ares(server: LoopbackDNSServer, queries: list[Query]) -> list[Result]:
    """The c-ares engine's results for `queries`, asked of `server`."""
    engine = cares.CaresEngine([server.nameserver], timeout=2.0, tries=1)
    loop = asyncio.get_running_loop()
    try:
        futures = [loop.create_future() for _ in queries]
        for query, future in zip(queries, futures, strict=True):
            engine.submit(query, future.set_result)
        return list(await asyncio.gather(*futures))
    finally:
        await engine.aclose()


def outcome(decoded: Decoded) -> tuple[Status, tuple[Answer, ...], int | None, tuple[str, ...]]:
    """What the c-ares engine makes of a reply, from its decoding here."""
    if decoded.rcode == 0:
        status = Status.NOERROR if decoded.answers else Status.NODATA
    else:
        status = {2: Status.SERVFAIL, 3: Status.NXDOMAIN, 5: Status.REFUSED}[decoded.rcode]
    return status, decoded.answers, decoded.ttl, decoded.cnames


def fields(result: Result) -> tuple[Status, tuple[Answer, ...], int | None, tuple[str, ...]]:
    return result.status, result.answers, result.ttl, result.cnames


ODD = r"MiXeD.o\.d\032d\"\\\;\(\)\@\$\200\255\001\127x.test"
ZONE: Zone = {
    "all.test": {
        "A": ["192.0.2.1", "192.0.2.2"],
        "AAAA": ["2001:db8::1", "::ffff:192.0.2.1"],
        "NS": ["ns1.all.test", ODD],
        "MX": ["10 mx.all.test", f"20 {ODD}", "0 ."],
        "TXT": ["plain", b'\x00\x01\x7f\x80\xff\\"', "héllo wörld", "x" * 600, ""],
        "SRV": [f"1 2 3 {ODD}", "0 0 0 ."],
        "SOA": [f"ns1.all.test {ODD} 2024010101 3600 600 604800 300"],
        "PTR": ["Ptr.All.test"],
        "CAA": [
            '0 issue "ca.test"',
            '128 iodef "mailto:x@all.test"',
            '0 issuewild "\\195\\169"',
            '0 tag "a\\000b"',
            '0 tag2 "\\001\\\\"',
        ],
    },
    "c1.test": {"CNAME": ["C2.Test"]},
    "c2.test": {"CNAME": ["all.test"]},
    "odd.test": {"CNAME": [ODD]},
    ODD: {"A": ["192.0.2.9"], "TXT": ["odd"], "MX": [f"1 {ODD}"]},
    "dangling.test": {"CNAME": ["missing.test"]},
    "loop1.test": {"CNAME": ["loop2.test"]},
    "loop2.test": {"CNAME": ["loop1.test"]},
    "*.wild.test": {"A": ["192.0.2.50"], "TXT": ["wildcard"]},
    "MiXeD.test": {"A": ["192.0.2.60"]},
}
ZONE_NAMES = ["all.test", "c1.test", "odd.test", "dangling.test", "loop1.test"]
ZONE_NAMES += ["x.wild.test", "MiXeD.test", "mixed.test", "nx.test", "wild.test"]


async def test_same_as_c_ares_for_a_zone(dns_server_factory: ServerFactory) -> None:
    server = await dns_server_factory(ZONE)
    queries = [Query(n, RecordType(t), n) for n in ZONE_NAMES for t in TYPES]
    results = await c_ares(server, queries)
    for k, (query, result) in enumerate(zip(queries, results, strict=True)):
        qname, qtype = encode_name(query.name), query.type.value
        packet = await exchange(server, build_query(k, qname, qtype))
        assert wire_outcome(packet, qname, qtype, result) == fields(result), query
    statuses = {Status.NOERROR, Status.NODATA, Status.NXDOMAIN, Status.ERROR}  # ERROR: loop
    assert {r.status for r in results} == statuses


def wire_outcome(
    packet: bytes, qname: bytes, qtype: int, cares: Result
) -> tuple[Status, tuple[Answer, ...], int | None, tuple[str, ...]]:
    """What the wire engine makes of `packet`. Where it leaves the reply to c-ares (a CNAME
    loop), c-ares must have found it an ERROR, and that is then the result of both."""
    try:
        return outcome(decode_reply(packet, qname, qtype))
    except BadReply:
        assert cares.status is Status.ERROR, cares
        assert cares.error is not None
        assert "CNAME" in cares.error
        return fields(cares)


class CannedServer(LoopbackDNSServer):
    """Answers a query for `k<N>.test` with `replies[N]` (made for the question as sent)."""

    def __init__(self, replies: list[Callable[[bytes], bytes]]) -> None:
        super().__init__({"canned.test": {"A": ["192.0.2.1"]}})
        self.replies = replies

    def _handle(
        self, data: bytes, transport: Transport, client: tuple[str, int]
    ) -> tuple[bytes | None, float]:
        message = decode_message(data)
        label = message.questions[0].name.split(".")[0]
        packet = self.replies[int(label[1:])](data[12 : data.index(b"\0", 12) + 1])
        return data[:2] + packet[2:], 0.0


def ptr(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def suffix(q: bytes) -> bytes:
    """A pointer to the "test" that ends the question name `q`."""
    return ptr(12 + len(q) - 6)


def rdata_at(q: bytes, *sizes: int) -> int:
    """Where the rdata of an answer starts, after answers of rdata `sizes` (owners: pointers)."""
    return 12 + len(q) + 4 + 12 * (len(sizes) + 1) + sum(sizes)


def chain_out_of_order(q: bytes, qtype: int = A) -> bytes:
    return reply(
        rr(name("c.test"), A, b"\xc0\x00\x02\x07", ttl=60),
        rr(name("B.test"), CNAME, name("C.Test")),
        rr(HERE, CNAME, name("b.TEST")),
        qname=q,
        qtype=qtype,
    )


def compressed(q: bytes) -> bytes:
    target = rdata_at(q)  # zz.test, its "test" the question's; then owners pointing at it
    return reply(
        rr(HERE, CNAME, b"\x02Zz" + suffix(q)),
        rr(ptr(target), A, b"\1\2\3\4", ttl=5),
        rr(b"\x01x" + ptr(target), A, b"\5\6\7\x08"),
        rr(ptr(target), A, b"\1\2\3\5", ttl=2**32 - 1),
        qname=q,
    )


ODD_NAME = b'\x0b\x00\x01 .\\"\x7f\x80\xffAz\x04test\0'


def odd_targets(qtype: int) -> Callable[[bytes], bytes]:
    head = {PTR: b"", NS: b"", MX_T: b"\0\1", SRV_T: b"\0\1\0\2\0\3"}[qtype]

    def make(q: bytes) -> bytes:
        return reply(
            rr(HERE, qtype, head + ODD_NAME),
            rr(HERE, qtype, head + b"\x02Az" + suffix(q)),
            qname=q,
            qtype=qtype,
        )

    return make


def caa_values(q: bytes) -> bytes:
    values = [
        b"\x00\x05issueca",
        b"\x80\x01ta\x00b",
        b"\x00\x01t\xc3\xa9\x01",
        b"\x00\x03a bv\\\x1f",
    ]
    return reply(*(rr(HERE, CAA_T, v) for v in values), qname=q, qtype=CAA_T)


def txt_strings(q: bytes) -> bytes:
    strings = b"\0\x03a\\b\0\x02\xc3\xa9\x03\xff\x00\n"
    return reply(rr(HERE, TXT, strings), rr(HERE, TXT, b"\0"), qname=q, qtype=TXT)


def extras(q: bytes) -> bytes:
    return reply(
        rr(HERE, RRSIG, b"\1\2\3"),
        rr(HERE, A, b"\1\2\3\4", rclass=3),
        rr(HERE, MX_T, b"\0\1\xc0\x04"),  # a pointer into the header, at a 0: the root
        opt(options=b"\0\x0a\0\x02ab"),
        rr(HERE, A, b"\1\2\3\5", rclass=254),
        qname=q,
        authority=(rr(suffix(q), NS, name("ns.test")),),
        additional=(rr(name("ns.test"), AAAA, bytes(16)), opt()),
    )


def cname_loop(q: bytes) -> bytes:
    return reply(rr(HERE, CNAME, b"\x01b" + suffix(q)), rr(ptr(rdata_at(q)), CNAME, HERE), qname=q)


def two_cnames(q: bytes) -> bytes:
    return reply(
        rr(HERE, CNAME, name("x.test")),
        rr(HERE, CNAME, b"\x01Y" + suffix(q)),
        rr(ptr(rdata_at(q, 8)), A, b"\2\2\2\2"),
        qname=q,
    )


def with_rcode(packet: bytes, rcode: int) -> bytes:
    return packet[:3] + bytes([packet[3] & 0xF0 | rcode]) + packet[4:]


def bad_soa(rcode: int) -> Callable[[bytes], bytes]:
    answers = () if rcode else (ANSWER,)
    return lambda q: reply(
        *answers, qname=q, flags=0x8580 | rcode, authority=(rr(suffix(q), SOA_T, bytes(5)),)
    )


CANNED: list[tuple[int, Callable[[bytes], bytes]]] = [
    (A, chain_out_of_order),
    (AAAA, lambda q: chain_out_of_order(q, AAAA)),  # NODATA at the end of the chain
    (A, compressed),
    (PTR, odd_targets(PTR)),
    (NS, odd_targets(NS)),
    (MX_T, odd_targets(MX_T)),
    (SRV_T, odd_targets(SRV_T)),
    (CAA_T, caa_values),
    (TXT, txt_strings),
    (A, extras),
    (A, cname_loop),
    (A, two_cnames),
    (A, lambda q: reply(rr(HERE, A, b"\1\2\3\4"), qname=q.upper())),
    # a dangling chain: NXDOMAIN (and SERVFAIL) with the CNAMEs, out of order, mixed case
    (A, lambda q: with_rcode(chain_out_of_order(q), 3)),
    (AAAA, lambda q: with_rcode(chain_out_of_order(q, AAAA), 3)),
    (MX_T, lambda q: with_rcode(chain_out_of_order(q, MX_T), 3)),
    (A, lambda q: with_rcode(chain_out_of_order(q), 2)),
    (A, lambda q: with_rcode(two_cnames(q), 3)),
    (A, lambda q: with_rcode(cname_loop(q), 3)),
    (CNAME, lambda q: with_rcode(reply(rr(HERE, CNAME, name("b.test")), qname=q, qtype=CNAME), 3)),
]
MALFORMED: list[tuple[int, Callable[[bytes], bytes]]] = [
    (A, lambda q: reply(rr(HERE, A, b"\1\2\3"), qname=q)),
    (TXT, lambda q: reply(rr(HERE, TXT, b""), qname=q, qtype=TXT)),
    (CAA_T, lambda q: reply(rr(HERE, CAA_T, b"\x00\x01t"), qname=q, qtype=CAA_T)),
    (CAA_T, lambda q: reply(rr(HERE, CAA_T, b"\x00\x02t\x80v"), qname=q, qtype=CAA_T)),
    (A, lambda q: reply(rr(HERE, CNAME, b"\x01b" + ptr(rdata_at(q) + 4)), ANSWER, qname=q)),
    (A, lambda q: reply(rr(HERE, A, b"\1\2\3\4", rclass=2), qname=q)),
    (A, bad_soa(0)),
    (A, bad_soa(3)),
    (A, lambda q: reply(ANSWER, ANSWER, qname=q)[:-3]),
    (A, lambda q: reply(ANSWER, qname=q, additional=(rr(HERE, 24, bytes(3)),))),
]


async def test_same_as_c_ares_for_crafted_replies() -> None:
    cases = CANNED + MALFORMED
    async with CannedServer([make for _, make in cases]) as server:
        queries = [
            Query(f"k{n}.test", RecordType(t), f"k{n}.test") for n, (t, _) in enumerate(cases)
        ]
        results = await c_ares(server, queries)
        for k, (query, result) in enumerate(zip(queries, results, strict=True)):
            qname, qtype = encode_name(query.name), query.type.value
            packet = await exchange(server, build_query(k, qname, qtype))
            if k < len(CANNED):
                assert wire_outcome(packet, qname, qtype, result) == fields(result), query
            else:  # what c-ares calls malformed is never decoded
                assert (result.status, result.error) == (Status.ERROR, "malformed response")
                with pytest.raises(BadReply):
                    decode_reply(packet, qname, qtype)


# properties: any input gives a result or BadReply (every loop is bounded by the input)


BASES: list[tuple[bytes, int]] = [
    (reply(*CHAIN, additional=(opt(),)), A),
    (compressed(QNAME), A),
    (odd_targets(MX_T)(QNAME), MX_T),
    (odd_targets(SRV_T)(QNAME), SRV_T),
    (caa_values(QNAME), CAA_T),
    (txt_strings(QNAME), TXT),
    (extras(QNAME), A),
    (reply(rr(HERE, SOA_T, name("ns.test") + b"\x01h\xc0\x0e" + bytes(20)), qtype=SOA_T), SOA_T),
    (reply(rr(HERE, AAAA, bytes(16)), qtype=AAAA, authority=(rr(HERE, NS, b"\xc0\x0e"),)), AAAA),
    (
        reply(flags=0x8583, authority=(rr(b"\xc0\x0e", SOA_T, name("x") + name("y") + bytes(20)),)),
        A,
    ),
]


def decodes_or_fails(packet: bytes, qtype: int) -> None:
    try:
        result = decode(packet, qtype)
    except BadReply:
        return
    assert isinstance(result, Decoded)
    assert all(isinstance(c, str) for c in result.cnames)
    assert (result.ttl is None) == (not result.answers)
    assert (result.rcode == 0 and not result.truncated) or not result.answers
    # the chain is kept for NOERROR, SERVFAIL and NXDOMAIN only
    assert (result.rcode in (0, 2, 3) and not result.truncated) or not result.cnames


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from(TYPES))
def test_any_bytes(packet: bytes, qtype: int) -> None:
    decodes_or_fails(packet, qtype)


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from(TYPES), st.tuples(*[st.integers(0, 3)] * 3))
def test_any_records(body: bytes, qtype: int, counts: tuple[int, int, int]) -> None:
    head = reply(qtype=qtype)
    decodes_or_fails(head[:6] + struct.pack("!3H", *counts) + head[12:] + body, qtype)


@st.composite
def mutated(draw: st.DrawFn, bases: list[tuple[bytes, int]] = BASES) -> tuple[bytes, int]:
    packet, qtype = draw(st.sampled_from(bases))
    data = bytearray(packet)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        match draw(st.sampled_from(["set", "flip", "insert", "delete", "cut"])):
            case "set" if at < len(data):
                data[at] = draw(st.integers(0, 255))
            case "flip" if at < len(data):
                data[at] ^= 1 << draw(st.integers(0, 7))
            case "insert":
                data[at:at] = draw(st.binary(min_size=1, max_size=4))
            case "delete":
                del data[at : at + draw(st.integers(1, 4))]
            case _:
                del data[at:]
    return bytes(data), qtype


@PROPERTY
@given(mutated())
def test_mutated_replies(case: tuple[bytes, int]) -> None:
    decodes_or_fails(*case)


def test_bases_decode() -> None:
    for packet, qtype in BASES:
        assert isinstance(decode(packet, qtype), Decoded)


LABEL = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=63
)


@PROPERTY
@given(st.lists(LABEL, min_size=1, max_size=8).map(".".join).filter(lambda n: len(n) <= 253))
def test_encode_name_round_trip(text: str) -> None:
    wire = encode_name(text)
    assert decode_message(build_query(7, wire, A)).questions[0].name == text
    assert decode(reply(rr(HERE, PTR, wire), qtype=PTR), PTR).answers == (text,)
    assert decode_reply(reply(rr(HERE, A, b"\1\2\3\4"), qname=wire.upper()), wire, A).answers


TEST = b"\xc0\x0e"  # a pointer to "test" in the question
TARGET = 12 + len(QNAME) + 4 + 12  # where the first answer's rdata starts


def soa(*names: bytes, numbers: bytes = bytes(20), owner: bytes = TEST, rclass: int = 1) -> bytes:
    return rr(owner, SOA_T, b"".join(names) + numbers, rclass=rclass)


def cname_then(target: bytes, rtype: int, rdata: bytes, owner: bytes | None = None) -> bytes:
    owner = owner or b"\xc0" + bytes([TARGET])
    return reply(rr(HERE, CNAME, target), rr(owner, rtype, rdata), qtype=rtype, additional=(opt(),))


#: Replies of the shapes `decode_reply` reads without its general loop (A/AAAA answers
#: owned by the question; one CNAME and its answer; a negative answer with the zone's
#: SOA; each then an empty OPT), and near misses of them.
FAST_SHAPES: list[tuple[bytes, int]] = [
    (reply(rr(HERE, A, b"\1\2\3\4"), additional=(opt(),)), A),
    (reply(rr(HERE, A, b"\1\2\3\4"), rr(HERE, A, b"\5\6\7\x08", ttl=9), additional=(opt(),)), A),
    (
        reply(*[rr(HERE, AAAA, bytes(range(i, i + 16))) for i in range(3)], additional=(opt(),)),
        AAAA,
    ),
    (reply(rr(HERE, A, b"\1\2\3\4"), additional=(opt(ttl=1 << 24),)), A),  # BADVERS
    (reply(rr(HERE, A, b"\1\2\3\4"), additional=(opt(options=b"\0\x0a\0\0"),)), A),
    (reply(rr(HERE, A, b"\1\2\3\4", rclass=3), additional=(opt(),)), A),
    (reply(rr(b"\xc0\x0e", A, b"\1\2\3\4"), additional=(opt(),)), A),
    *[
        (reply(flags=flags, authority=(authority,), additional=(opt(),)), A)
        for flags in (0x8583, 0x8580, 0x8582)
        for authority in [
            soa(b"\x02ns" + TEST, b"\x0ahostmaster" + TEST),
            soa(name("ns.test"), b"\0", owner=HERE),
            soa(b"\x02ns\xc0\x0f", b"\x0ahostmaster" + TEST),  # into a label
            soa(b"\x02ns" + TEST, b"\x0ahostmaster" + TEST, numbers=bytes(21)),
            soa(b"\x02ns" + TEST, b"\x0ahostmaster" + TEST, rclass=3),
            soa(b"\x3f" + b"x" * 63 + b"\x3f" + b"y" * 63 + b"\x3f" + b"z" * 63 + b"\x3ew" + TEST),
            soa(b"\x3f" + b"x" * 63 + b"\x3f" + b"y" * 63 + b"\x3f" + b"z" * 63 + b"\x3fw" + TEST),
            soa((b"\x3f" + b"x" * 63) * 3 + b"\x3e" + b"w" * 62 + b"\0", b"\0"),  # 255 octets
            soa((b"\x3f" + b"x" * 63) * 4 + b"\0", b"\0"),  # 257 octets
        ]
    ],
    (cname_then(b"\x01t" + TEST, A, b"\1\2\3\4"), A),
    (cname_then(name("Other.example"), AAAA, bytes(16)), AAAA),
    (cname_then(QNAME, A, b"\1\2\3\4"), A),  # a loop
    (cname_then(b"\x01A" + TEST, A, b"\1\2\3\4", owner=HERE), A),
    (cname_then(b"\x01t" + TEST, A, b"\1\2\3"), A),
    *[
        (reply(*answers, qtype=PTR, additional=(opt(),)), PTR)
        for answers in [
            (rr(HERE, PTR, name("Ptr1.example")),),
            (rr(HERE, PTR, b"\x03ptr" + TEST, ttl=7),),
            (rr(HERE, PTR, name("a.example")), rr(HERE, PTR, name("b.example"))),
            (rr(HERE, PTR, b"\x41" + name("x")),),
            (rr(HERE, PTR, name("a.example") + b"junk"),),
            (rr(HERE, PTR, (b"\x3f" + b"x" * 63) * 4 + b"\0"),),
        ]
    ],
]


def decoded_or_error(packet: bytes, qtype: int) -> object:
    try:
        return decode(packet, qtype)
    except BadReply as exc:
        return type(exc)


@PROPERTY
@given(mutated(FAST_SHAPES) | st.sampled_from(FAST_SHAPES))
def test_common_shapes_read_quickly_as_the_general_loop_reads_them(
    case: tuple[bytes, int],
) -> None:
    fast = decoded_or_error(*case)
    with mock.patch.object(codec, "_empty_opt", return_value=False):  # the general loop only
        general = decoded_or_error(*case)
    assert fast == general
