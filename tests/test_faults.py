"""The fault matrix: what the resolver does with every fault and hostile reply a server can
give, on both engines (and, through tests/conftest.py, on asyncio's loop and on uvloop).

Every test states the status AND the answers it expects and checks them. docs/FAULTS.md
lists each row of the matrix with the test that checks it. Every packet goes to a
`LoopbackDNSServer` the test started on 127.0.0.1.

Outcomes that look wrong but are what both engines do today are asserted as they are and
flagged in docs/FAULTS.md; an engine bug would be `xfail(strict=True)` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from ipaddress import IPv4Address
from typing import Any

import pytest

from resolver import Query, RecordType, Resolver, Result, Status
from resolver.engines import wire as wire_engine
from resolver.testing import (
    Fault,
    LoopbackDNSServer,
    Zone,
    decode_message,
    encode_query,
)
from resolver.testing.pytest_plugin import ServerFactory
from tests._env import require_sandbox, skip_or_fail

ORIGIN = "faults.test"
WWW = ("192.0.2.1", "192.0.2.2")
BIG = tuple(str(IPv4Address(0x0A000000 + i)) for i in range(300))  # ~4.8 kB of answers
CHAIN_END = "192.0.2.20"


def chain(prefix: str, steps: int, address: str) -> dict[str, dict[str, list[str]]]:
    """`{prefix}0 -> {prefix}1 -> ... -> {prefix}{steps}`, which has the A record."""
    links = {
        f"{prefix}{i}.{ORIGIN}": {"CNAME": [f"{prefix}{i + 1}.{ORIGIN}"]} for i in range(steps)
    }
    return links | {f"{prefix}{steps}.{ORIGIN}": {"A": [address]}}


def chain_names(prefix: str, steps: int) -> tuple[str, ...]:
    """The `cnames` of a lookup of `{prefix}0`: every target, in order."""
    return tuple(f"{prefix}{i}.{ORIGIN}" for i in range(1, steps + 1))


ZONE: Zone = {
    ORIGIN: {"SOA": [f"ns1.{ORIGIN} hostmaster.{ORIGIN} 1 3600 600 86400 60"]},
    f"www.{ORIGIN}": {"A": list(WWW), "AAAA": ["2001:db8::1"]},
    f"other.{ORIGIN}": {"A": ["192.0.2.3"]},
    f"v6.{ORIGIN}": {"AAAA": ["2001:db8::6"]},
    f"alias.{ORIGIN}": {"CNAME": [f"www.{ORIGIN}"]},
    f"big.{ORIGIN}": {"A": list(BIG)},
    f"loop-a.{ORIGIN}": {"CNAME": [f"loop-b.{ORIGIN}"]},
    f"loop-b.{ORIGIN}": {"CNAME": [f"loop-a.{ORIGIN}"]},
    f"self.{ORIGIN}": {"CNAME": [f"self.{ORIGIN}"]},
    **chain("c", 20, CHAIN_END),
    **chain("m", 32, "192.0.2.32"),
    **chain("l", 40, "192.0.2.40"),
    f"*.wild.{ORIGIN}": {"A": ["192.0.2.50"], "TXT": ["wildcard"]},
    f"sub.wild.{ORIGIN}": {"A": ["192.0.2.51"]},
    f"*.walias.{ORIGIN}": {"CNAME": [f"www.{ORIGIN}"]},
}

#: (name, type, status, answers as text, cnames): a mix every engine must get exactly right.
Case = tuple[str, str, Status, tuple[str, ...], tuple[str, ...]]
MIX: list[Case] = [
    (f"www.{ORIGIN}", "A", Status.NOERROR, WWW, ()),
    (f"www.{ORIGIN}", "AAAA", Status.NOERROR, ("2001:db8::1",), ()),
    (f"other.{ORIGIN}", "A", Status.NOERROR, ("192.0.2.3",), ()),
    (f"alias.{ORIGIN}", "A", Status.NOERROR, WWW, (f"www.{ORIGIN}",)),
    (f"v6.{ORIGIN}", "A", Status.NODATA, (), ()),
    (f"nope.{ORIGIN}", "A", Status.NXDOMAIN, (), ()),
    (f"x.wild.{ORIGIN}", "A", Status.NOERROR, ("192.0.2.50",), ()),
    (f"x.wild.{ORIGIN}", "TXT", Status.NOERROR, ("wildcard",), ()),
    (f"c0.{ORIGIN}", "A", Status.NOERROR, (CHAIN_END,), chain_names("c", 20)),
]

TIMEOUT_ERROR = "no answer within the timeout"
MakeResolver = Callable[..., Resolver]


@pytest.fixture(params=["wire", "cares", "aiodns"])
def engine(request: pytest.FixtureRequest) -> str:
    """Every engine runs every test (a test may parametrize `engine` itself to mark one).
    The aiodns engine leaves tries, server choice and timing to c-ares and names no
    server when it asks several: the tests say where that shows."""
    return str(request.param)


@pytest.fixture
def resolver_for(engine: str) -> MakeResolver:
    """`resolver_for(*servers, **kwargs)`: a Resolver on this test's engine, DNS only."""

    def make(*servers: LoopbackDNSServer, **kwargs: Any) -> Resolver:
        kwargs.setdefault("timeout", 0.2)
        kwargs.setdefault("tries", 2)
        kwargs.setdefault("fallback", "never")  # the test servers' answers, nothing else
        return Resolver([s.nameserver for s in servers], engine=engine, **kwargs)

    return make


@pytest.fixture
async def server(dns_server_factory: ServerFactory) -> LoopbackDNSServer:
    """ZONE on 127.0.0.1, following CNAME chains far enough for the 40-step one."""
    return await dns_server_factory(ZONE, max_chain=64)


async def lookup(r: Resolver, name: str, rtype: str = "A") -> Result:
    """`r.lookup`, bounded: a hang fails the test instead of stalling the suite."""
    return await asyncio.wait_for(r.lookup(name, rtype), 30)


def check(
    result: Result,
    status: Status,
    answers: Iterable[str] = (),
    cnames: Sequence[str] = (),
    error: str | None = None,
) -> None:
    """`result` has exactly this status, these answers (any order) and this CNAME chain."""
    assert result.status is status, result
    assert sorted(map(str, result.answers)) == sorted(answers), result
    assert result.cnames == tuple(cnames), result
    if error is not None:
        assert result.error == error, result
    elif status in (Status.NOERROR, Status.NODATA, Status.NXDOMAIN):
        assert result.error is None, result


def check_case(result: Result, case: Case) -> None:
    name, rtype, status, answers, cnames = case
    assert (result.name, result.type.name) == (name, rtype), result
    check(result, status, answers, cnames)


def mix(count: int) -> tuple[Zone, list[Case]]:
    """A zone of `count` names, each with its own answer, and the case for each: A, AAAA,
    A through a CNAME, NXDOMAIN, NODATA, wildcard A, TXT and MX, in turn. Every name is
    asked once, so no answer comes from c-ares' cache and no answer can pass for another's.
    """
    zone: dict[str, dict[str, list[str]]] = {
        "mix.test": {"SOA": ["ns1.mix.test hostmaster.mix.test 1 3600 600 86400 60"]},
        "*.wild.mix.test": {"A": ["192.0.2.50"]},
    }
    cases: list[Case] = []
    for i in range(count):
        name, v4, v6 = f"n{i}.mix.test", str(IPv4Address(0x0A010000 + i)), f"2001:db8:1::{i:x}"
        kind = i % 8
        if kind == 0:
            zone[name] = {"A": [v4]}
            cases.append((name, "A", Status.NOERROR, (v4,), ()))
        elif kind == 1:
            zone[name] = {"AAAA": [v6]}
            cases.append((name, "AAAA", Status.NOERROR, (v6,), ()))
        elif kind == 2:
            target = f"t{i}.mix.test"
            zone[name], zone[target] = {"CNAME": [target]}, {"A": [v4]}
            cases.append((name, "A", Status.NOERROR, (v4,), (target,)))
        elif kind == 3:
            cases.append((name, "A", Status.NXDOMAIN, (), ()))
        elif kind == 4:
            zone[name] = {"AAAA": [v6]}
            cases.append((name, "A", Status.NODATA, (), ()))
        elif kind == 5:
            cases.append((f"n{i}.wild.mix.test", "A", Status.NOERROR, ("192.0.2.50",), ()))
        elif kind == 6:
            zone[name] = {"TXT": [f"text {i}"]}
            cases.append((name, "TXT", Status.NOERROR, (f"text {i}",), ()))
        else:
            zone[name] = {"MX": [f"{i} mx{i}.mix.test"]}
            cases.append((name, "MX", Status.NOERROR, (f"{i} mx{i}.mix.test",), ()))
    return zone, cases


def queries(cases: Sequence[Case]) -> list[Query]:
    """One query per case, its line the case's index."""
    return [Query(c[0], RecordType[c[1]], c[0], line=i) for i, c in enumerate(cases)]


def check_all(results: Sequence[Result], cases: Sequence[Case], *, timeouts: bool) -> int:
    """Exactly one result per case, each right (or, if `timeouts`, a TIMEOUT); -> TIMEOUTs."""
    assert sorted(res.line for res in results) == list(range(len(cases)))
    timed_out = 0
    for result in results:
        if timeouts and result.status is Status.TIMEOUT:
            timed_out += 1
            check(result, Status.TIMEOUT, (), error=TIMEOUT_ERROR)
        else:
            check_case(result, cases[result.line])
    return timed_out


async def collect(r: Resolver, source: Any, **kwargs: Any) -> list[Result]:
    async def run() -> list[Result]:
        return [res async for res in r.resolve_many(source, **kwargs)]

    return await asyncio.wait_for(run(), 60)


# The server's new faults, on the wire (the engine-free checks of the test fixture itself)


async def exchange_udp(
    server: LoopbackDNSServer, *queries: bytes, wait: float = 0.5, expect: int | None = None
) -> list[tuple[float, bytes]]:
    """Send `queries` from one socket; every (arrival time, datagram) within `wait` seconds
    (or until `expect` datagrams came)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)  # a burst of replies
    sock.setblocking(False)
    sock.connect((server.host, server.port))
    got: list[tuple[float, bytes]] = []
    try:
        start = loop.time()
        for q in queries:
            sock.send(q)
        while (left := start + wait - loop.time()) > 0 and len(got) != expect:
            with contextlib.suppress(TimeoutError):
                data = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
                got.append((loop.time() - start, data))
    finally:
        sock.close()
    return got


async def test_server_loss_is_seeded_and_near_its_rate(dns_server_factory: ServerFactory) -> None:
    wires = [encode_query(f"www.{ORIGIN}", qid=i) for i in range(200)]
    answered = []
    for seed in (7, 7, 8):
        server = await dns_server_factory(ZONE, seed=seed)
        server.set_fault(None, Fault.LOSS, rate=0.2)
        replies = await exchange_udp(server, *wires, wait=0.15)
        answered.append({decode_message(data).id for _, data in replies})
        assert server.count() == 200  # lost queries are still recorded, as with DROP
    assert answered[0] == answered[1] != answered[2]  # the same seed, the same losses
    assert 200 * 0.7 < len(answered[0]) < 200 * 0.9
    with pytest.raises(ValueError, match="rate"):
        server.set_fault(None, Fault.LOSS)  # LOSS without a rate
    with pytest.raises(ValueError, match="probability"):
        server.set_fault(None, Fault.DROP, rate=1.5)
    with pytest.raises(ValueError, match="negative"):
        server.set_fault(None, Fault.DELAY, jitter=-1)


async def test_server_jitter_spreads_replies_without_blocking(server: LoopbackDNSServer) -> None:
    server.set_fault(f"www.{ORIGIN}", Fault.DELAY, delay=0.1, jitter=0.2)
    wires = [encode_query(f"www.{ORIGIN}", qid=i) for i in range(40)]
    replies = await exchange_udp(server, *wires, encode_query(f"other.{ORIGIN}", qid=99), expect=41)
    times = {decode_message(data).id: at for at, data in replies}
    assert len(times) == 41
    assert times[99] < 0.1  # the undelayed name is not held up
    slow = [times[i] for i in range(40)]
    assert min(slow) >= 0.1
    assert max(slow) <= 0.35
    assert max(slow) - min(slow) > 0.05  # spread out, not one burst


async def test_server_late_duplicate_sends_the_answer_twice(server: LoopbackDNSServer) -> None:
    server.set_fault(f"www.{ORIGIN}", Fault.LATE_DUPLICATE, delay=0.15)
    replies = await exchange_udp(server, encode_query(f"www.{ORIGIN}", qid=5), expect=2)
    assert len(replies) == 2
    (first, one), (second, two) = replies
    assert one == two
    assert first < 0.1
    assert 0.14 <= second - first < 0.5
    assert sorted(r.text for r in decode_message(one).answers) == list(WWW)


async def test_server_oversized_ignores_the_udp_size(server: LoopbackDNSServer) -> None:
    query = encode_query(f"big.{ORIGIN}", qid=1, edns_size=1232)
    ((_, plain),) = await exchange_udp(server, query, expect=1)
    assert decode_message(plain).tc
    server.set_fault(f"big.{ORIGIN}", Fault.OVERSIZED)
    ((_, big),) = await exchange_udp(server, query, expect=1)
    msg = decode_message(big)
    assert len(big) > 3 * 1232
    assert (msg.tc, len(msg.answers)) == (False, 300)


async def test_server_tcp_close_cuts_the_answer(server: LoopbackDNSServer) -> None:
    server.set_fault(f"www.{ORIGIN}", Fault.TCP_CLOSE)
    ((_, udp_reply),) = await exchange_udp(server, encode_query(f"www.{ORIGIN}"), expect=1)
    assert len(decode_message(udp_reply).answers) == 2  # UDP is not affected
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        query = encode_query(f"www.{ORIGIN}")
        writer.write(len(query).to_bytes(2) + query)
        data = await asyncio.wait_for(reader.read(), 2)  # until the server closes
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    size = int.from_bytes(data[:2])
    assert size > 12
    assert len(data) - 2 == size // 2  # half of the message, then end of stream


async def test_server_max_chain(dns_server_factory: ServerFactory) -> None:
    short = await dns_server_factory(ZONE)  # the default: 16 steps
    full = await dns_server_factory(ZONE, max_chain=64)
    for server, cnames, has_a in ((short, 16, False), (full, 20, True)):
        query = encode_query(f"c0.{ORIGIN}", edns_size=4096)
        ((_, data),) = await exchange_udp(server, query, expect=1)
        types = [r.type for r in decode_message(data).answers]
        assert types.count(5) == cnames
        assert (1 in types) is has_a


# Server errors (RCODEs) and silence


@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        (Fault.SERVFAIL, Status.SERVFAIL, "server failure"),
        (Fault.REFUSED, Status.REFUSED, "query refused"),
        (Fault.FORMERR, Status.ERROR, "server says the query is malformed (FORMERR)"),
        (Fault.NOTIMP, Status.ERROR, "server does not implement this query (NOTIMP)"),
        (Fault.DROP, Status.TIMEOUT, TIMEOUT_ERROR),
    ],
    ids=["SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", "DROP"],
)
async def test_server_fault_is_a_status(
    server: LoopbackDNSServer,
    resolver_for: MakeResolver,
    fault: Fault,
    status: Status,
    error: str,
) -> None:
    server.set_fault(f"www.{ORIGIN}", fault)
    tries = 1 if fault is Fault.DROP else 2  # (each silent try costs a timeout)
    async with resolver_for(server, timeout=0.1, tries=tries) as r:
        result = await lookup(r, f"www.{ORIGIN}")
        other = await lookup(r, f"other.{ORIGIN}")
    check(result, status, (), error=error)
    check(other, Status.NOERROR, ["192.0.2.3"])  # the fault stays with its name
    assert 1 <= server.count(f"www.{ORIGIN}") <= 4  # retried, but boundedly


#: The outcome after one bad exchange (then normal answers): (wire, cares) status.
ONCE = [
    (Fault.DROP, Status.NOERROR, Status.NOERROR),
    (Fault.SERVFAIL, Status.NOERROR, Status.NOERROR),
    (Fault.REFUSED, Status.NOERROR, Status.NOERROR),
    (Fault.NOTIMP, Status.NOERROR, Status.NOERROR),
    # The wire engine hands a FORMERR to c-ares, which asks again (without EDNS); c-ares
    # itself takes FORMERR as final. Both are honest; they differ.
    (Fault.FORMERR, Status.NOERROR, Status.ERROR),
    (Fault.TRUNCATE, Status.NOERROR, Status.NOERROR),
    (Fault.WRONG_ID, Status.NOERROR, Status.NOERROR),
    (Fault.WRONG_QUESTION, Status.NOERROR, Status.NOERROR),
    (Fault.GARBAGE, Status.NOERROR, Status.NOERROR),
]


@pytest.mark.parametrize(("fault", "wire", "cares"), ONCE, ids=[f.name for f, _, _ in ONCE])
async def test_one_bad_exchange_then_the_right_answer(
    server: LoopbackDNSServer,
    resolver_for: MakeResolver,
    engine: str,
    fault: Fault,
    wire: Status,
    cares: Status,
) -> None:
    server.set_fault(f"www.{ORIGIN}", fault, times=1)
    async with resolver_for(server, timeout=0.1, tries=3) as r:
        result = await lookup(r, f"www.{ORIGIN}")
    expected = wire if engine == "wire" else cares
    if expected is Status.NOERROR:
        check(result, Status.NOERROR, WWW)
    else:
        check(result, expected, (), error="server says the query is malformed (FORMERR)")


@pytest.mark.parametrize("fault", [Fault.SERVFAIL, Fault.REFUSED, Fault.DROP], ids=lambda f: f.name)
async def test_failing_server_is_set_aside_and_the_healthy_one_answers(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver, fault: Fault, engine: str
) -> None:
    """Two servers, one failing every query: every query gets its answer from the healthy
    one (the result says which), and the failing one is set aside after 3 failures in a row,
    so it gets little of the traffic; the per-server counters say so."""
    bad = await dns_server_factory(ZONE)
    good = await dns_server_factory(ZONE)
    bad.set_fault(None, fault)
    names = [f"h{i}.x.wild.{ORIGIN}" for i in range(200)]
    async with resolver_for(bad, good, timeout=0.1, tries=3, concurrency=10) as r:
        results = await collect(r, names)
        stats = {s.nameserver: s for s in r.server_stats()}
    assert len(results) == len(names)
    for result in results:
        check(result, Status.NOERROR, ["192.0.2.50"])
    if engine == "aiodns":  # c-ares sets aside the server itself, and says nothing about it
        assert {result.server for result in results} == {None}
        assert good.count() >= len(names)
        return
    assert {result.server for result in results} == {good.nameserver}
    assert set(stats) == {bad.nameserver, good.nameserver}
    failing, healthy = stats[bad.nameserver], stats[good.nameserver]
    assert failing.set_aside >= 1, failing
    # Every attempt is either answered (a SERVFAIL or REFUSED reply) or failed (no reply).
    replied = fault is not Fault.DROP
    assert failing.sent == bad.count(), failing
    assert failing.answered == failing.rejected == (failing.sent if replied else 0), failing
    assert failing.failed == (0 if replied else failing.sent), failing
    assert failing.sent < 20, failing  # about half the first window, then set aside
    assert healthy.answered == healthy.sent == good.count() == len(names), healthy
    assert healthy.failed == healthy.set_aside == 0, healthy


def closed_port() -> str:
    """`127.0.0.1:PORT` where nothing listens: datagrams sent there come back as ICMP port
    unreachable, which a connected UDP socket reports as ECONNREFUSED."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.mark.parametrize("tries", [1, 3])
async def test_closed_port_gives_one_error_row_per_line(engine: str, tries: int) -> None:
    """A nameserver whose port is closed: every line of a batch gets exactly one ERROR
    row, without waiting for timeouts. (c-ares reports a refusal noticed while sending
    through the query's callback and by raising as well: once, not twice, is what must
    reach the line. The ICMP error of one datagram may be reported on another's send: all
    the queries waiting on that socket are refused alike.)"""
    names = [f"h{i}.{ORIGIN}" for i in range(50)]
    dead = closed_port()
    resolver = Resolver([dead], engine=engine, timeout=5, tries=tries, fallback="never")
    async with resolver as r:
        results = await collect(r, names)
    assert sorted(result.line for result in results) == list(range(1, len(names) + 1))
    for result in results:
        check(result, Status.ERROR, (), error="connection refused by the nameserver")
        assert result.server == dead, result  # the server asked last, though it replied not


@pytest.mark.parametrize("engine", ["wire", "cares"])  # aiodns keeps no per-server counters
@pytest.mark.parametrize("fault", [Fault.SERVFAIL, Fault.REFUSED, Fault.DROP], ids=lambda f: f.name)
async def test_server_counters_partition_the_attempts(
    server: LoopbackDNSServer, resolver_for: MakeResolver, fault: Fault
) -> None:
    """Each attempt counts once: answered (any reply, SERVFAIL and REFUSED among them) or
    failed (no reply), never both; the row of a failed name names the server asked."""
    names = [f"h{i}.x.wild.{ORIGIN}" for i in range(20)]
    server.set_fault(None, fault)
    async with resolver_for(server, timeout=0.05, tries=2, concurrency=5) as r:
        results = await collect(r, names)
        (stats,) = r.server_stats()
    assert stats.sent == server.count() == 2 * len(names), stats
    if fault is Fault.DROP:
        assert (stats.answered, stats.rejected, stats.failed) == (0, 0, stats.sent), stats
    else:
        assert stats.answered == stats.rejected == stats.sent, stats
        assert stats.failed == 0, stats
    assert {result.server for result in results} == {server.nameserver}


async def test_a_late_reply_is_answered_not_failed(server: LoopbackDNSServer) -> None:
    """A reply that comes after its attempt timed out, while the query still waits, ends
    it: that attempt counts as answered, not as failed too. (The wire engine: c-ares
    forgets an attempt that timed out, and drops its late reply.)"""
    server.set_fault(f"www.{ORIGIN}", Fault.DELAY, delay=0.15)  # every attempt
    resolver = Resolver([server.nameserver], engine="wire", timeout=0.1, tries=3, fallback="never")
    async with resolver as r:
        result = await lookup(r, f"www.{ORIGIN}")
        (stats,) = r.server_stats()
    check(result, Status.NOERROR, WWW)
    assert stats.answered + stats.failed <= stats.sent, stats
    assert (stats.answered, stats.failed) == (1, 0), stats


async def test_closed_port_beside_a_healthy_server(server: LoopbackDNSServer, engine: str) -> None:
    """One of two nameservers refuses every datagram: each line is answered once, by the
    other, the next try going there; the refusing one is set aside like a failing one, so
    it soon gets no more traffic (a dead entry in a resolvers file must not halve the
    rate)."""
    names = [f"h{i}.x.wild.{ORIGIN}" for i in range(200)]
    dead = closed_port()
    resolver = Resolver(
        [dead, server.nameserver], engine=engine, timeout=0.2, tries=3, concurrency=10
    )
    async with resolver as r:
        results = await collect(r, names)
        stats = {s.nameserver: s for s in r.server_stats()}
    assert sorted(result.line for result in results) == list(range(1, len(names) + 1))
    for result in results:
        check(result, Status.NOERROR, ["192.0.2.50"])
    if engine == "aiodns":  # c-ares sets the refusing server aside itself
        assert {result.server for result in results} == {None}
        return
    assert {result.server for result in results} == {server.nameserver}
    refusing = stats[dead]
    assert refusing.answered == 0, refusing
    # Every failure is a refusal (c-ares: a refusal on a shared socket is sent again on a
    # socket of its own before it is charged, as it may be another query's failed send).
    assert 0 < refusing.failed <= refusing.sent, refusing
    assert refusing.set_aside >= 1, refusing
    assert refusing.sent < 20, refusing
    assert stats[server.nameserver].answered == len(names)


# Truncation and TCP


async def test_truncated_answer_is_asked_again_over_tcp(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(f"www.{ORIGIN}", Fault.TRUNCATE)
    async with resolver_for(server) as r:
        result = await lookup(r, f"www.{ORIGIN}")
    check(result, Status.NOERROR, WWW)
    assert server.count(f"www.{ORIGIN}", transport="tcp") == 1


async def test_tcp_only_server(server: LoopbackDNSServer, resolver_for: MakeResolver) -> None:
    server.set_fault(None, Fault.TRUNCATE)  # every UDP reply: TC=1, no answers
    async with resolver_for(server) as r:
        results = [await lookup(r, name, rtype) for name, rtype, *_ in MIX]
    for result, case in zip(results, MIX, strict=True):
        check_case(result, case)
    assert server.count(transport="tcp") == len(MIX)  # each answer came over TCP


async def test_oversized_answer_comes_over_tcp(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await lookup(r, f"big.{ORIGIN}")
    check(result, Status.NOERROR, BIG)
    assert server.count(f"big.{ORIGIN}", transport="tcp") == 1


async def test_oversized_udp_datagram_is_used(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(f"big.{ORIGIN}", Fault.OVERSIZED)  # 4.8 kB in one datagram, no TC
    async with resolver_for(server) as r:
        result = await lookup(r, f"big.{ORIGIN}")
    check(result, Status.NOERROR, BIG)
    assert server.count(transport="tcp") == 0


async def test_tcp_closed_mid_answer(
    server: LoopbackDNSServer, resolver_for: MakeResolver, engine: str
) -> None:
    """A TCP answer cut off halfway is an honest ERROR, or the full answer after a retry."""
    name = f"big.{ORIGIN}"  # too big for UDP: TC=1, then TCP
    server.set_fault(name, Fault.TCP_CLOSE, transport="tcp")
    async with resolver_for(server, timeout=0.1, tries=1) as r:
        always = await lookup(r, name)
    server.set_fault(name, Fault.TCP_CLOSE, transport="tcp", times=1)
    async with resolver_for(server, timeout=0.1, tries=2) as r:
        once = await lookup(r, name)
    # c-ares (both engines use it for TCP) notices the cut only when the attempt times
    # out; the next try is made on another channel, so over a new connection: a cut
    # costs one try. After more tries the last one decides between TIMEOUT and ERROR,
    # whose message is then ECONNREFUSED's "connection refused by the nameserver".
    assert always.status in (Status.ERROR, Status.TIMEOUT), always
    assert always.answers == ()
    assert always.error in (TIMEOUT_ERROR, "connection refused by the nameserver")
    if engine == "aiodns" and once.status is Status.TIMEOUT:
        # c-ares' own tries go over the same connection: the cut costs them all
        check(once, Status.TIMEOUT, (), error=TIMEOUT_ERROR)
    else:
        check(once, Status.NOERROR, BIG)


# Replies that are not the answer


@pytest.mark.parametrize("fault", [Fault.WRONG_ID, Fault.WRONG_QUESTION], ids=lambda f: f.name)
async def test_reply_to_another_query_is_ignored(
    server: LoopbackDNSServer, resolver_for: MakeResolver, fault: Fault
) -> None:
    server.set_fault(f"www.{ORIGIN}", fault)  # every reply: the right data, the wrong match
    async with resolver_for(server, timeout=0.1, tries=1) as r:
        result = await lookup(r, f"www.{ORIGIN}")
        other = await lookup(r, f"other.{ORIGIN}")
    check(result, Status.TIMEOUT, (), error=TIMEOUT_ERROR)
    check(other, Status.NOERROR, ["192.0.2.3"])


async def test_garbage_is_never_an_answer(
    server: LoopbackDNSServer, resolver_for: MakeResolver, engine: str
) -> None:
    """Only garbage for a name: the wire engine ignores it (too short for a header) and
    times out; c-ares calls it a malformed response. The engines differ, both honest."""
    server.set_fault(f"www.{ORIGIN}", Fault.GARBAGE)
    async with resolver_for(server, timeout=0.1, tries=2) as r:
        result = await lookup(r, f"www.{ORIGIN}")
    if engine == "wire":
        check(result, Status.TIMEOUT, (), error=TIMEOUT_ERROR)
    else:
        check(result, Status.ERROR, (), error="malformed response")


@pytest.mark.parametrize(
    ("engine", "tries"),
    [
        pytest.param("wire", 2, id="wire-tries2"),
        pytest.param("cares", 2, id="cares-tries2"),
        pytest.param("wire", 1, id="wire-tries1"),
        pytest.param("cares", 1, id="cares-tries1"),
        pytest.param("aiodns", 2, id="aiodns-tries2"),
        pytest.param("aiodns", 1, id="aiodns-tries1"),
    ],
)
async def test_garbage_for_one_name_spares_the_others(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver, tries: int
) -> None:
    """A server that answers garbage for one name: that name fails, the 20 other names
    asked at the same time get their answers, even with one try. (c-ares drops the whole
    UDP socket on the garbage and fails every query in flight on it as a malformed
    response; the c-ares engine asks each of them again on a channel, and so a socket, of
    its own, and only counts a malformed response met there as a try.)"""
    server = await dns_server_factory(ZONE)
    server.set_fault(None, Fault.DELAY, delay=0.05)  # the good names are still in flight
    server.set_fault(f"www.{ORIGIN}", Fault.GARBAGE)  # when the garbage arrives
    async with resolver_for(server, timeout=0.15, tries=tries) as r:
        good = [lookup(r, f"h{i}.x.wild.{ORIGIN}") for i in range(20)]
        bad, *results = await asyncio.gather(lookup(r, f"www.{ORIGIN}"), *good)
    assert bad.status in (Status.TIMEOUT, Status.ERROR)
    assert bad.answers == ()
    for result in results:
        check(result, Status.NOERROR, ["192.0.2.50"])


async def test_late_duplicate_is_not_recorded_twice(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(f"www.{ORIGIN}", Fault.LATE_DUPLICATE, delay=0.05)
    async with resolver_for(server, timeout=0.5) as r:
        first = await lookup(r, f"www.{ORIGIN}")
        await asyncio.sleep(0.15)  # the copy arrives now, for a query already answered
        other = await lookup(r, f"other.{ORIGIN}")
        again = await lookup(r, f"www.{ORIGIN}", "AAAA")
    check(first, Status.NOERROR, WWW)
    check(other, Status.NOERROR, ["192.0.2.3"])
    check(again, Status.NOERROR, ["2001:db8::1"])
    assert server.count(f"www.{ORIGIN}") == 2  # A once and AAAA once: no retry


async def test_late_duplicates_in_bulk(
    dns_server_factory: ServerFactory,
    resolver_for: MakeResolver,
    monkeypatch: pytest.MonkeyPatch,
    engine: str,
) -> None:
    """Every reply comes twice, the copy while other queries (maybe with its id) wait:
    2,000 queries, exactly one result each, each right."""
    # This server shares the client's loop, so its replies are late at times: no early
    # retransmission here, every query must be asked exactly once.
    monkeypatch.setattr(wire_engine, "MIN_RTO", 1.0)
    zone, cases = mix(2000)
    server = await dns_server_factory(zone)
    server.set_fault(None, Fault.LATE_DUPLICATE, delay=0.01, jitter=0.01)
    async with resolver_for(server, timeout=1.0, concurrency=200) as r:
        results = await collect(r, queries(cases))
    check_all(results, cases, timeouts=False)
    if engine == "wire":
        assert server.count() == len(cases)  # nothing was asked twice
    else:
        # c-ares times attempts at 5x the latency it measured (at least 250 ms), and this
        # server shares the loop: on a loaded machine a few attempts expire and are asked
        # again (seen: 2,107 of 2,000). The copies themselves must cause none.
        assert len(cases) <= server.count() <= len(cases) * 1.15


async def test_wire_engine_moves_to_fresh_source_ports(
    dns_server_factory: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each socket is replaced after ROTATE_AFTER queries (a spoofer who learnt a port
    gains little); the old one stays open for the replies still due, then closes. Late
    duplicates go to old sockets too: every query still gets exactly its one answer."""
    monkeypatch.setattr(wire_engine, "ROTATE_AFTER", 50)
    # This server shares the client's loop, so its replies are late at times: no early
    # retransmission here, every query must be asked exactly once.
    monkeypatch.setattr(wire_engine, "MIN_RTO", 1.0)
    zone, cases = mix(2000)
    server = await dns_server_factory(zone)
    server.set_fault(None, Fault.LATE_DUPLICATE, delay=0.01, jitter=0.01)
    fds_before = len(os.listdir("/proc/self/fd"))
    r = Resolver([server.nameserver], engine="wire", timeout=1.0, concurrency=200, fallback="never")
    async with r:
        results = await collect(r, queries(cases))
        await asyncio.sleep(0.3)  # a few timer ticks: the drained old sockets close
        fds_open = len(os.listdir("/proc/self/fd")) - fds_before
    check_all(results, cases, timeouts=False)
    assert server.count() == len(cases)
    ports = {q.client[1] for q in server.queries}
    assert len(ports) >= len(cases) // 50  # a fresh port every 50 queries a socket
    assert fds_open < 10  # two sockets and c-ares' own, not one per port used


# Zone data: CNAME loops and chains, wildcards


@pytest.mark.parametrize(
    ("name", "cnames"),
    [
        (f"loop-a.{ORIGIN}", (f"loop-b.{ORIGIN}",)),
        (f"self.{ORIGIN}", ()),
    ],
    ids=["loop", "self"],
)
async def test_cname_loop_ends_and_both_engines_agree(
    server: LoopbackDNSServer,
    resolver_for: MakeResolver,
    engine: str,
    name: str,
    cnames: tuple[str, ...],
) -> None:
    """The server sends the loop once (a -> b, b -> a): both engines stop where the chain
    comes back to a name it has passed and report an ERROR with the chain up to there."""
    async with resolver_for(server) as r:
        result = await lookup(r, name)
    other_engine = "cares" if engine == "wire" else "wire"
    async with Resolver([server.nameserver], engine=other_engine, fallback="never") as r:
        other = await lookup(r, name)
    check(result, Status.ERROR, (), cnames, error="CNAME loop")
    assert (other.status, other.answers, other.cnames) == (
        result.status,
        result.answers,
        result.cnames,
    )


@pytest.mark.parametrize(("prefix", "steps"), [("c", 20), ("m", 32)])
async def test_long_cname_chain(
    server: LoopbackDNSServer, resolver_for: MakeResolver, prefix: str, steps: int
) -> None:
    async with resolver_for(server) as r:
        result = await lookup(r, f"{prefix}0.{ORIGIN}")
    address = CHAIN_END if steps == 20 else "192.0.2.32"
    check(result, Status.NOERROR, [address], chain_names(prefix, steps))


async def test_cname_chain_longer_than_32_steps(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    """Chains are followed up to 64 steps (a longer one is an ERROR, like a loop)."""
    async with resolver_for(server) as r:
        result = await lookup(r, f"l0.{ORIGIN}")
    check(result, Status.NOERROR, ["192.0.2.40"], chain_names("l", 40))


async def test_chain_cut_short_by_the_server(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver
) -> None:
    """A server that stops a chain after 16 steps (as this one does by default): the
    resolver reports what it was given, NODATA and the 16 names; it does not ask again
    for the rest (a stub resolver relies on the server to finish chains)."""
    server = await dns_server_factory(ZONE)
    async with resolver_for(server) as r:
        result = await lookup(r, f"c0.{ORIGIN}")
    check(result, Status.NODATA, (), chain_names("c", 16))


@pytest.mark.parametrize(
    "case",
    [
        (f"x.wild.{ORIGIN}", "A", Status.NOERROR, ("192.0.2.50",), ()),
        (f"a.b.c.wild.{ORIGIN}", "A", Status.NOERROR, ("192.0.2.50",), ()),
        (f"x.wild.{ORIGIN}", "TXT", Status.NOERROR, ("wildcard",), ()),
        (f"x.wild.{ORIGIN}", "AAAA", Status.NODATA, (), ()),
        (f"wild.{ORIGIN}", "A", Status.NODATA, (), ()),  # only the wildcard below it
        (f"sub.wild.{ORIGIN}", "A", Status.NOERROR, ("192.0.2.51",), ()),  # its own
        (f"x.sub.wild.{ORIGIN}", "A", Status.NXDOMAIN, (), ()),  # no wildcard there
        (f"x.walias.{ORIGIN}", "A", Status.NOERROR, WWW, (f"www.{ORIGIN}",)),
    ],
    ids=lambda case: f"{case[0].split('.' + ORIGIN)[0]}/{case[1]}",
)
async def test_wildcard_names(
    server: LoopbackDNSServer, resolver_for: MakeResolver, case: Case
) -> None:
    async with resolver_for(server) as r:
        result = await lookup(r, case[0], case[1])
    check_case(result, case)


# Loss, delay and jitter in bulk

LOSS_QUERIES = 10_000


def loss_zone(count: int) -> Zone:
    """`h{i}.loss.test` has the A record 10.0.0.0 + i, except every tenth (NXDOMAIN)."""
    zone: dict[str, dict[str, list[str]]] = {
        "loss.test": {"SOA": ["ns1.loss.test hostmaster.loss.test 1 3600 600 86400 60"]}
    }
    for i in range(count):
        if i % 10:
            zone[f"h{i}.loss.test"] = {"A": [str(IPv4Address(0x0A000000 + i))]}
    return zone


async def test_loss_20_percent_every_query_right_or_timeout(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver, engine: str
) -> None:
    """10,000 queries on the wire engine (~2 s here; 2,500 on the c-ares engines, whose
    CPU per query is several times more), 20% of the queries lost (each independently, seeded),
    concurrency 200, timeout 0.2 s, 6 tries: exactly one result per query, each the
    correct answer or a TIMEOUT.

    Two servers with the same zone (and their own loss), so the tries alternate between
    them.
    """
    # The c-ares engines cost several times the wire engine's CPU per query: a quarter of
    # the queries keeps the suite's time (the same faults, the same checks).
    count = LOSS_QUERIES if engine == "wire" else LOSS_QUERIES // 4
    zone = loss_zone(count)
    servers = [await dns_server_factory(zone, seed=seed) for seed in (1, 2)]
    for s in servers:
        s.set_fault(None, Fault.LOSS, rate=0.2)
    names = [f"h{i}.loss.test" for i in range(count)]
    started = time.perf_counter()
    async with resolver_for(*servers, timeout=0.2, tries=6, concurrency=200) as r:
        results = await collect(r, names)
    elapsed = time.perf_counter() - started
    assert sorted(res.line for res in results) == list(range(1, count + 1))
    statuses: Counter[Status] = Counter()
    for result in results:
        i = result.line - 1
        assert result.name == names[i]
        statuses[result.status] += 1
        if result.status is Status.TIMEOUT:
            check(result, Status.TIMEOUT, (), error=TIMEOUT_ERROR)
        elif i % 10:
            check(result, Status.NOERROR, [str(IPv4Address(0x0A000000 + i))])
        else:
            check(result, Status.NXDOMAIN, ())
    asked = sum(s.count() for s in servers)
    assert asked > count * 1.2  # the loss happened (expected: 25% more queries)
    assert statuses[Status.TIMEOUT] <= 10  # expected ~0.6 (0.2**6 of 10,000)
    assert statuses[Status.NXDOMAIN] + statuses[Status.TIMEOUT] >= count // 10
    assert elapsed < 60, elapsed


async def test_jitter_mix_all_answered_exactly(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver
) -> None:
    """Random delays of 0-150 ms on every reply (so they come back out of order), the
    timeout longer than any: 1,000 queries of every kind, each gets exactly its answer."""
    zone, cases = mix(1000)
    server = await dns_server_factory(zone)
    server.set_fault(None, Fault.DELAY, jitter=0.15)
    async with resolver_for(server, timeout=1.0, concurrency=200) as r:
        results = await collect(r, queries(cases))
    check_all(results, cases, timeouts=False)
    assert max(res.elapsed for res in results) < 1.0  # no attempt timed out


async def test_slow_name_holds_up_nobody(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(f"other.{ORIGIN}", Fault.DELAY, delay=0.4)
    async with resolver_for(server, timeout=2.0) as r:
        slow = asyncio.ensure_future(lookup(r, f"other.{ORIGIN}"))
        await asyncio.sleep(0.05)
        fast = [await lookup(r, name, rtype) for name, rtype, *_ in MIX if "other" not in name]
        assert not slow.done()
        check(await slow, Status.NOERROR, ["192.0.2.3"])
    for result, case in zip(fast, [c for c in MIX if "other" not in c[0]], strict=True):
        check_case(result, case)
        assert result.elapsed < 0.3


async def test_slow_names_among_fast_ones_within_the_timeout(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver, engine: str
) -> None:
    """Ten names answer after 0.5 s, 390 at once; the timeout is 1.5 s, one try: every
    name gets its answer. (c-ares 1.34 times attempts from the server's measured latency,
    5 x its average and at least 250 ms, so it gives up on the slow names early; the c-ares
    and aiodns engines then ask each once more, on a channel of its own, for the rest of
    the 1.5 s.)"""
    zone, cases = mix(400)
    server = await dns_server_factory(zone)
    slow = [i for i in range(0, len(cases), 20) if cases[i][2] is Status.NOERROR]
    for i in slow:
        server.set_fault(cases[i][0], Fault.DELAY, delay=0.5)
    async with resolver_for(server, timeout=1.5, tries=1, concurrency=100) as r:
        results = await collect(r, queries(cases))
    check_all(results, cases, timeouts=False)
    asked = sum(server.count(cases[i][0]) for i in slow)
    assert len(slow) <= asked <= len(slow) * (1 if engine == "wire" else 2)
    assert all(r.elapsed < 1.5 for r in results)


async def test_jitter_beyond_the_timeout_is_never_wrong(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver
) -> None:
    """Replies late by up to 0.3 s against a 0.1 s timeout: attempts time out and are
    sent again while the late replies still arrive. Each query: its answer or TIMEOUT."""
    zone, cases = mix(200)
    server = await dns_server_factory(zone)
    server.set_fault(None, Fault.DELAY, jitter=0.3)
    async with resolver_for(server, timeout=0.1, tries=3, concurrency=150) as r:
        results = await collect(r, queries(cases))
    timed_out = check_all(results, cases, timeouts=True)
    assert timed_out < len(cases) // 10
    assert server.count() > len(cases)  # attempts were sent again


# Retransmission, loss and send errors


async def warm_up(r: Resolver, count: int = 10) -> None:
    """A few answered lookups: the engine has measured the server's round trip."""
    for _ in range(count):
        check(await lookup(r, f"other.{ORIGIN}"), Status.NOERROR, ["192.0.2.3"])


@pytest.mark.parametrize("engine", ["wire"])
async def test_a_lost_datagram_is_asked_again_long_before_the_timeout(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    """Once the round trip is known, a lost datagram is asked again after the
    retransmission timeout derived from it (tens of ms here), not after `timeout`."""
    async with resolver_for(server, timeout=4.0, tries=2) as r:
        await warm_up(r)
        server.set_fault(f"www.{ORIGIN}", Fault.DROP, times=1)
        result = await lookup(r, f"www.{ORIGIN}")
    check(result, Status.NOERROR, WWW)
    assert server.count(f"www.{ORIGIN}") == 2  # the lost one, and the one answered
    assert result.elapsed < 1.0, result  # far below the 4 s that `timeout` allows


@pytest.mark.parametrize("engine", ["wire"])
async def test_a_reply_to_an_earlier_attempt_still_counts(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    """The first attempt's reply comes after its retransmissions, which are all lost: the
    query ends with that reply (the first id stays live), not with a TIMEOUT."""
    name = f"www.{ORIGIN}"
    server.set_fault(name, Fault.DROP)  # every attempt but the first: lost
    async with resolver_for(server, timeout=2.0, tries=3) as r:
        await warm_up(r)
        server.set_fault(name, Fault.DELAY, delay=0.5, times=1, transport="udp")  # the first
        result = await lookup(r, name)
    check(result, Status.NOERROR, WWW)
    assert server.count(name) >= 2  # asked again before the first reply came


async def test_loss_no_timeout_where_a_later_attempt_was_answered(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver
) -> None:
    """10% of queries lost, 6 tries: every query is answered by some attempt (all six
    lost: 1 in a million), and each gets exactly its own answer, never a TIMEOUT."""
    zone, cases = mix(600)
    server = await dns_server_factory(zone, seed=3)
    server.set_fault(None, Fault.LOSS, rate=0.1)
    async with resolver_for(server, timeout=0.5, tries=6, concurrency=100) as r:
        results = await collect(r, queries(cases))
    assert check_all(results, cases, timeouts=False) == 0
    assert server.count() > len(cases)  # the loss happened


@contextlib.contextmanager
def failing_sends(port: int, every: int) -> Iterator[None]:
    """Every `every`-th datagram sent to UDP `port` is dropped on the output hook, so
    `send()` fails with EPERM, as a local firewall or a full conntrack table makes it
    (nftables, in the private network namespace of scripts/test)."""
    require_sandbox()
    nft = shutil.which("nft") or ("/usr/sbin/nft" if os.path.exists("/usr/sbin/nft") else None)
    if nft is None:
        skip_or_fail("nftables (nft) is not installed: run scripts/install --with-server")
    table = f"resolver_test_{port}"
    rules = (
        f"table inet {table} {{\n chain out {{\n  type filter hook output priority 0;\n"
        f"  udp dport {port} numgen inc mod {every} == 0 drop\n }}\n}}\n"
    )
    subprocess.run([nft, "-f", "-"], input=rules, text=True, check=True)
    try:
        yield
    finally:
        subprocess.run([nft, "delete", "table", "inet", table], check=True)


async def test_failed_sends_cost_no_row(
    dns_server_factory: ServerFactory, resolver_for: MakeResolver, engine: str
) -> None:
    """One datagram in ten fails to leave (EPERM): each is a lost datagram for its own
    query, asked again, counted as a send error and never charged to the server; no
    query fails, on either engine (c-ares reports a failed send as a refused connection
    of every query on that socket)."""
    zone, cases = mix(400)
    server = await dns_server_factory(zone)
    with failing_sends(server.port, every=10):
        async with resolver_for(server, timeout=1.0, tries=5, concurrency=50) as r:
            results = await collect(r, queries(cases))
            counters = r.server_stats()
    check_all(results, cases, timeouts=False)
    if engine == "aiodns":  # no per-server counters: c-ares makes its own tries
        return
    (stats,) = counters
    assert stats.send_errors > 0, stats
    assert stats.failed == 0, stats
    assert stats.set_aside == 0, stats


@pytest.mark.parametrize(
    ("loss", "tries", "expected"),
    [(0.0, 5, 5), (0.02, 5, 5), (0.0975, 5, 6), (0.19, 5, 9), (0.4, 5, 12), (0.6, 5, 5)],
)
def test_tries_grow_with_the_loss_measured(loss: float, tries: int, expected: int) -> None:
    """At 5% loss each way (an attempt lost 9.75% of the time) 6 tries, at 10% (19%) 9, at
    most MAX_TRIES; none beyond `tries` for a dead server (half its attempts or more lost)."""
    assert wire_engine._tries_for(loss, tries) == expected


@pytest.mark.parametrize("given", [None, 5])
async def test_default_tries_outlast_heavy_loss(
    dns_server_factory: ServerFactory, given: int | None
) -> None:
    """With the default tries, the wire engine asks a lost query again beyond 5 attempts
    once it has measured heavy loss: a name whose first 6 attempts are lost is answered
    (7 tries or more are allowed above a loss rate of 0.1; the warm-up measures ~0.15);
    with `tries=5` given it is a TIMEOUT, as asked."""
    zone, cases = mix(300)
    zone = {**zone, f"www.{ORIGIN}": {"A": list(WWW)}}
    server = await dns_server_factory(zone)
    server.set_fault(None, Fault.LOSS, rate=0.4)  # ~500 attempts: a loss rate of ~0.15
    resolver = Resolver(
        [server.nameserver], engine="wire", tries=given, timeout=0.1, fallback="never"
    )
    async with resolver as r:
        await collect(r, queries(cases))  # the engine measures the loss
        server.clear_faults()
        server.set_fault(f"www.{ORIGIN}", Fault.DROP, times=6)
        result = await lookup(r, f"www.{ORIGIN}")
    if given is None:
        check(result, Status.NOERROR, WWW)
        assert server.count(f"www.{ORIGIN}") == 7
    else:
        check(result, Status.TIMEOUT, ())
        assert server.count(f"www.{ORIGIN}") == 5
