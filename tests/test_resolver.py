"""The Resolver against the loopback test server: real DNS over real UDP/TCP sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from ipaddress import ip_address
from typing import Any

import pytest

from resolver import (
    CAA,
    MX,
    SOA,
    SRV,
    ConfigError,
    Query,
    RecordType,
    Resolver,
    Result,
    Source,
    Status,
)
from resolver.core import parse_nameserver
from resolver.testing import Fault, LoopbackDNSServer, Zone
from tests.zones import ZONE

MakeServer = Callable[..., Awaitable[LoopbackDNSServer]]


@pytest.fixture
async def server(dns_server_factory: MakeServer) -> LoopbackDNSServer:
    return await dns_server_factory(ZONE)


MakeResolver = Callable[..., Resolver]


@pytest.fixture(params=["wire", "cares", "aiodns"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def resolver_for(engine: str) -> MakeResolver:
    """Resolvers on each engine: every engine must pass every test here (the aiodns
    engine's limits, stated in the README, are asserted where a test meets them)."""

    def make(*servers: LoopbackDNSServer, **kwargs: Any) -> Resolver:
        kwargs.setdefault("timeout", 0.5)
        kwargs.setdefault("tries", 2)
        return Resolver([s.nameserver for s in servers], engine=engine, **kwargs)

    return make


@pytest.mark.parametrize(
    ("name", "rtype", "answers"),
    [
        ("www.zone.test", "A", {ip_address("192.0.2.1"), ip_address("192.0.2.2")}),
        ("www.zone.test", "AAAA", {ip_address("2001:db8::1")}),
        ("zone.test", "NS", {"ns1.zone.test", "ns2.zone.test"}),
        ("zone.test", "MX", {MX(10, "mx1.zone.test"), MX(20, "mx2.zone.test")}),
        ("zone.test", "CAA", {CAA(0, "issue", "ca.example.net")}),
        ("zone.test", "TXT", {"v=spf1 -all"}),
        (
            "zone.test",
            "SOA",
            {SOA("ns1.zone.test", "hostmaster.zone.test", 2024010101, 3600, 600, 86400, 60)},
        ),
        ("_sip._tcp.zone.test", "SRV", {SRV(10, 60, 5060, "sip.zone.test")}),
        ("alias.zone.test", "CNAME", {"www.zone.test"}),
        ("1.2.0.192.in-addr.arpa", "PTR", {"www.zone.test"}),
    ],
)
async def test_every_record_type(
    server: LoopbackDNSServer,
    name: str,
    rtype: str,
    answers: set[object],
    resolver_for: MakeResolver,
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup(name, rtype)
    assert result.status is Status.NOERROR, result
    assert set(result.answers) == answers
    assert result.source is Source.DNS
    assert result.server == server.nameserver
    assert result.ttl == 300
    assert result.type is RecordType[rtype]
    assert result.error is None


async def test_addresses_are_packed_ipaddress_objects(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup("www.zone.test", "A")
    assert sorted(a.packed for a in result.addresses) == [bytes([192, 0, 2, n]) for n in (1, 2)]


async def test_results_are_immutable_records(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup("www.zone.test", "A")
    with pytest.raises(AttributeError):
        result.status = Status.NXDOMAIN  # type: ignore[misc]
    changed = result._replace(line=9)
    assert (changed.line, result.line) == (9, 0)
    assert changed.answers == result.answers
    assert len({result, changed, result._replace()}) == 2  # hashable, compared by value


async def test_cname_chain_is_followed_and_reported(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup("alias2.zone.test", "A")
        dangling = await r.lookup("dangling.zone.test", "A")
    assert result.status is Status.NOERROR
    assert result.cnames == ("alias.zone.test", "www.zone.test")
    assert set(result.answers) == {ip_address("192.0.2.1"), ip_address("192.0.2.2")}
    assert dangling.status is Status.NXDOMAIN


async def test_txt_keeps_hostile_text_as_data(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup("text.zone.test", "TXT")
    assert set(result.answers) == {'=cmd|" /C calc"!A0, "quoted", and\\009tab', "second"}


@pytest.mark.parametrize(
    ("name", "rtype", "status"),
    [
        ("v6.zone.test", "A", Status.NODATA),
        ("v4.zone.test", "AAAA", Status.NODATA),
        ("nothing-here.zone.test", "A", Status.NXDOMAIN),
        ("192.0.2.99", "A", Status.NXDOMAIN),  # an IP without a PTR record
    ],
)
async def test_negative_answers_are_results(
    server: LoopbackDNSServer, name: str, rtype: str, status: Status, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup(name, rtype)
    assert result.status is status
    assert result.answers == ()
    assert result.error is None


async def test_names_are_normalized_before_asking(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        upper = await r.lookup("  WWW.Zone.TEST.  ", "A")
        idn = await r.lookup("bücher.zone.test", "A")
    assert upper.name == "www.zone.test"
    assert upper.query == "  WWW.Zone.TEST.  "
    assert upper.status is Status.NOERROR
    assert idn.name == "xn--bcher-kva.zone.test"
    assert idn.answers == (ip_address("192.0.2.20"),)


@pytest.mark.parametrize(
    ("literal", "reverse"),
    [
        ("192.0.2.1", "1.2.0.192.in-addr.arpa"),
        ("2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"),
    ],
)
async def test_ip_literals_are_reverse_lookups(
    server: LoopbackDNSServer, literal: str, reverse: str, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup(literal, "A")
    assert result.type is RecordType.PTR
    assert result.name == reverse
    assert result.answers == ("www.zone.test",)


@pytest.mark.parametrize("bad", ["a..b", "bad name", "x" * 64 + ".test", "nul\0byte.test", ""])
async def test_bad_input_is_an_invalid_result(
    server: LoopbackDNSServer, bad: str, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup(bad, "A")
    assert result.status is Status.INVALID
    assert result.error
    assert result.source is Source.NONE
    assert server.count() == 0


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.SERVFAIL, Status.SERVFAIL),
        (Fault.REFUSED, Status.REFUSED),
        (Fault.DROP, Status.TIMEOUT),
        (Fault.NOTIMP, Status.ERROR),
        (Fault.FORMERR, Status.ERROR),
    ],
)
async def test_server_faults_become_statuses(
    server: LoopbackDNSServer, fault: Fault, status: Status, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", fault)
    async with resolver_for(server, timeout=0.2, tries=1) as r:
        result = await r.lookup("www.zone.test", "A")
        other = await r.lookup("v4.zone.test", "A")
    assert result.status is status
    assert result.answers == ()
    assert (result.error is not None) == (status is not Status.NXDOMAIN)
    assert other.status is Status.NOERROR  # one name's fault stays with that name


async def test_truncated_answer_is_asked_again_over_tcp(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", Fault.TRUNCATE)
    async with resolver_for(server) as r:
        result = await r.lookup("www.zone.test", "A")
    assert result.status is Status.NOERROR
    assert len(result.answers) == 2
    assert server.count("www.zone.test", transport="tcp") >= 1


@pytest.mark.parametrize(
    "fault", [Fault.GARBAGE, Fault.WRONG_ID, Fault.WRONG_QUESTION, Fault.DROP, Fault.SERVFAIL]
)
async def test_one_bad_exchange_is_retried_not_recorded(
    server: LoopbackDNSServer, fault: Fault, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", fault, times=1)
    async with resolver_for(server, timeout=0.3, tries=3) as r:
        result = await r.lookup("www.zone.test", "A")
    assert result.status is Status.NOERROR, result
    assert len(result.answers) == 2


async def test_garbage_fails_no_other_name_for_good(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", Fault.GARBAGE, times=1)
    names = ["www.zone.test", "v4.zone.test", "alias.zone.test", "alias2.zone.test"]
    async with resolver_for(server, timeout=0.3, tries=3) as r:
        results = await asyncio.gather(*(r.lookup(n, "A") for n in names))
    assert [res.status for res in results] == [Status.NOERROR] * 4


async def test_slow_answer_within_timeout(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", Fault.DELAY, delay=0.2)
    async with resolver_for(server, timeout=1.0, tries=1) as r:
        result = await r.lookup("www.zone.test", "A")
    assert result.status is Status.NOERROR
    assert result.elapsed > 0.1  # it includes the wait (the server and we use other clocks)


async def test_lookup_accepts_a_query_object(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        result = await r.lookup(Query("www.zone.test", RecordType.AAAA, "mine", line=7))
    assert result.query == "mine"
    assert result.line == 7
    assert result.answers == (ip_address("2001:db8::1"),)


async def test_lookup_takes_bytes_and_type_numbers(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server) as r:
        text = await r.lookup("www.zone.test", "AAAA")
        raw = await r.lookup(b"WWW.zone.test", 28)  # bytes decoded as a line of a file is
        idna = await r.lookup("bücher.zone.test".encode(), RecordType.A)
        asked = server.count()
        undecodable = await r.lookup(b"caf\xe9.zone.test")
        not_text = await r.lookup(12345)  # type: ignore[arg-type]
        blank = await r.lookup(b"  ")
        for bad_type in (99, True, 1.0, "M"):
            with pytest.raises(ConfigError, match="record type"):
                await r.lookup("www.zone.test", bad_type)  # type: ignore[arg-type]
    assert raw.type is RecordType.AAAA
    assert (raw.status, raw.answers, raw.name) == (text.status, text.answers, text.name)
    assert raw.query == "WWW.zone.test"
    assert idna.status is Status.NOERROR
    assert idna.name == "xn--bcher-kva.zone.test"
    assert undecodable.status is Status.INVALID
    assert undecodable.query == "caf\\xe9.zone.test"
    assert "not UTF-8" in (undecodable.error or "")
    assert not_text.status is Status.INVALID
    assert blank.status is Status.INVALID
    assert server.count() == asked  # nothing bad was asked


async def test_types_as_one_string_numbers_or_none(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async def asked(types: Any) -> list[tuple[str, Status]]:
        stream = r.resolve_many(["zone.test"], types=types)
        return sorted((res.type.name, res.status) for res in [res async for res in stream])

    async with resolver_for(server) as r:
        assert await asked("MX") == [("MX", Status.NOERROR)]  # one type, not M and X
        assert await asked(" mx ") == [("MX", Status.NOERROR)]
        assert await asked("A,AAAA") == [("A", Status.NODATA), ("AAAA", Status.NODATA)]
        assert await asked(15) == [("MX", Status.NOERROR)]
        assert await asked([RecordType.MX, 15, "mx", "NS"]) == [  # each asked once
            ("MX", Status.NOERROR),
            ("NS", Status.NOERROR),
        ]
        for bad in ([], "", " , ", (), [99], ["M", "X"], [None], None, 2.5):
            with pytest.raises(ConfigError):
                r.resolve_many(["zone.test"], types=bad)  # type: ignore[arg-type]


async def test_odd_items_of_a_source_become_rows(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    source: list[Any] = [b"\xff\xfe", 42, bytearray(b"www.zone.test"), None, b"", "v4.zone.test"]
    async with resolver_for(server) as r:
        results = [res async for res in r.resolve_many(source)]
    got = {res.line: (res.status, res.query) for res in results}
    assert got == {
        1: (Status.INVALID, "\\xff\\xfe"),
        2: (Status.INVALID, "42"),
        3: (Status.NOERROR, "www.zone.test"),
        4: (Status.INVALID, "None"),
        6: (Status.NOERROR, "v4.zone.test"),
    }


async def lines(*items: str) -> AsyncIterator[str]:
    for item in items:
        await asyncio.sleep(0)
        yield item


async def test_resolve_many_one_result_per_line_and_type(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    source = ["www.zone.test", "# comment", "", "v6.zone.test", "bad name", "192.0.2.1"]
    async with resolver_for(server) as r:
        results = [res async for res in r.resolve_many(source, types=["A", "AAAA"])]
    got = {(res.line, res.type.name): res.status for res in results}
    assert got == {
        (1, "A"): Status.NOERROR,
        (1, "AAAA"): Status.NOERROR,
        (4, "A"): Status.NODATA,
        (4, "AAAA"): Status.NOERROR,
        (5, "A"): Status.INVALID,
        (5, "AAAA"): Status.INVALID,
        (6, "PTR"): Status.NOERROR,
    }
    assert len(results) == len(got)


async def test_resolve_many_from_async_iterable_and_queue(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    queue: asyncio.Queue[str | bytes | Query | None] = asyncio.Queue()
    for name in ["www.zone.test", b"v4.zone.test", "nope.zone.test", None]:
        queue.put_nowait(name)
    async with resolver_for(server) as r:
        from_queue = [res async for res in r.resolve_many(queue)]
        from_async = [res async for res in r.resolve_many(lines("v4.zone.test", "x..y"))]
    assert sorted((res.line, res.status.value) for res in from_queue) == [
        (1, "NOERROR"),
        (2, "NOERROR"),
        (3, "NXDOMAIN"),
    ]
    assert sorted(res.status.value for res in from_async) == ["INVALID", "NOERROR"]


async def test_window_bounds_what_is_in_flight(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(None, Fault.DELAY, delay=0.05)
    names = [f"host{i}.zone.test" for i in range(60)]
    async with resolver_for(server, concurrency=7) as r:
        stream = r.resolve_many(names)
        seen = 0
        async for result in stream:
            assert stream.submitted - stream.yielded <= 7
            assert result.status is Status.NXDOMAIN
            seen += 1
    assert seen == 60


async def test_breaking_out_gives_the_slots_back(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server, concurrency=3) as r:
        async with r.resolve_many([f"n{i}.zone.test" for i in range(50)]) as stream:
            async for _ in stream:
                break
        # All three slots are free again: three lookups at once finish.
        results = await asyncio.wait_for(
            asyncio.gather(*(r.lookup("www.zone.test") for _ in range(3))), 5
        )
    assert [res.status for res in results] == [Status.NOERROR] * 3


async def _leave_by_break(stream: AsyncIterator[Result]) -> None:
    async for _ in stream:
        break


async def _leave_by_exception(stream: AsyncIterator[Result]) -> None:
    async def consume() -> None:
        async for _ in stream:
            raise LookupError("the loop body failed")

    with pytest.raises(LookupError):
        await consume()


async def _leave_by_timeout(stream: AsyncIterator[Result]) -> None:
    async def consume() -> None:
        async with asyncio.timeout(0.05):
            async for _ in stream:
                await asyncio.sleep(1)

    with pytest.raises(TimeoutError):
        await consume()


async def _leave_by_cancel(stream: AsyncIterator[Result]) -> None:
    async def consume() -> None:
        async for _ in stream:
            await asyncio.sleep(1)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize(
    "leave", [_leave_by_break, _leave_by_exception, _leave_by_timeout, _leave_by_cancel]
)
async def test_a_stream_left_early_without_closing_gives_its_places_back(
    server: LoopbackDNSServer,
    resolver_for: MakeResolver,
    leave: Callable[[AsyncIterator[Result]], Awaitable[None]],
) -> None:
    async with resolver_for(server, concurrency=20) as r:
        # A bare `async for` (no `async with`, no aclose()): the stream is only dropped.
        await leave(r.resolve_many(f"n{i}.zone.test" for i in range(3000)))
        results = await asyncio.wait_for(
            asyncio.gather(*(r.lookup("www.zone.test") for _ in range(25))), 5
        )
        again = [res async for res in r.resolve_many(["v4.zone.test", "nope.zone.test"])]
    assert [res.status for res in results] == [Status.NOERROR] * 25
    assert sorted(res.status.value for res in again) == ["NOERROR", "NXDOMAIN"]


async def test_a_stream_paused_by_its_consumer_starves_no_one(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server, concurrency=10) as r:
        paused = r.resolve_many(f"n{i}.zone.test" for i in range(3000))
        first = await anext(paused)  # then left unread, but still referenced
        await asyncio.sleep(0.1)  # its feeder has filled its share of places
        looked_up = await asyncio.wait_for(r.lookup("www.zone.test"), 5)
        other = await asyncio.wait_for(
            _collect(r.resolve_many([f"host{i}.zone.test" for i in range(30)])), 5
        )
        rest = await asyncio.wait_for(_collect(paused), 30)
    assert looked_up.status is Status.NOERROR
    assert len(other) == 30
    assert len(rest) + 1 == 3000
    assert {res.line for res in [first, *rest]} == set(range(1, 3001))


async def _collect(stream: AsyncIterator[Result]) -> list[Result]:
    return [res async for res in stream]


async def test_stop_finishes_what_is_in_flight(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(None, Fault.DELAY, delay=0.1)
    async with resolver_for(server, concurrency=10) as r:
        stream = r.resolve_many(f"n{i}.zone.test" for i in range(1000))
        results: list[Result] = []
        async for result in stream:
            results.append(result)
            if len(results) == 5:
                stream.stop()
    assert 5 <= len(results) <= 15
    assert stream.submitted == len(results)
    assert all(res.status is Status.NXDOMAIN for res in results)


async def test_many_concurrent_lookups(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server, concurrency=50) as r:
        results = await asyncio.gather(*(r.lookup("www.zone.test", "A") for _ in range(300)))
    assert {res.status for res in results} == {Status.NOERROR}


async def test_close_is_idempotent_and_final(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    r = resolver_for(server)
    async with r:
        assert (await r.lookup("www.zone.test")).ok
    await r.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await r.lookup("www.zone.test")


async def test_close_answers_what_is_in_flight(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault(None, Fault.DROP)
    r = resolver_for(server, timeout=5, tries=1)
    async with r:
        pending = asyncio.ensure_future(r.lookup("www.zone.test"))
        await asyncio.sleep(0.05)
    result = await asyncio.wait_for(pending, 1)
    assert result.status is Status.ERROR
    assert result.error is not None
    assert "closed" in result.error


async def test_cancelled_lookup_leaves_the_resolver_usable(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", Fault.DELAY, delay=0.3)
    async with resolver_for(server, concurrency=1) as r:
        task = asyncio.ensure_future(r.lookup("www.zone.test"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (await r.lookup("v4.zone.test")).status is Status.NOERROR


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("127.0.0.1", "127.0.0.1:53"),
        ("127.0.0.1:5300", "127.0.0.1:5300"),
        ("::1", "[::1]:53"),
        ("[::1]:5300", "[::1]:5300"),
        ("[::1]", "[::1]:53"),
    ],
)
def test_nameserver_forms(text: str, canonical: str) -> None:
    assert parse_nameserver(text) == canonical


@pytest.mark.parametrize("text", ["localhost", "127.0.0.1:0", "127.0.0.1:99999", "[::1", "1.2.3"])
def test_bad_nameservers_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_nameserver(text)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("::1:5310", "[::1]:5310"),  # ::1 on port 5310, not ::0.1.83.16 on port 53
        ("::1:53", "[::1]:53"),
        ("2001:db8::1:53", "[2001:db8::1:53] for the address"),
        ("fe80::2:8053", "[fe80::2]:8053"),
        ("[::1:5310]", "[::1]:5310"),  # bracketed, but in ::/96
        ("[::1:5310]:53", "[::1]:5310"),
        ("::127.0.0.1", "IPv4 address as it is (127.0.0.1)"),
        ("::53", "::/96"),
    ],
)
def test_an_ipv6_nameserver_that_may_hide_a_port_is_refused(text: str, hint: str) -> None:
    with pytest.raises(ConfigError, match="bad nameserver") as caught:
        parse_nameserver(text)
    assert hint in str(caught.value)
    with pytest.raises(ConfigError, match="bad nameserver"):
        Resolver([text])


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("[2001:db8::1:53]", "[2001:db8::1:53]:53"),  # brackets: the whole is the address
        ("2001:db8::53", "[2001:db8::53]:53"),  # 2001:db8: is no address: no port in it
        ("1:2:3:4:5:6:7:53", "[1:2:3:4:5:6:7:53]:53"),  # eight groups: nothing left over
        ("::ffff:127.0.0.1", "[::ffff:7f00:1]:53"),  # IPv4-mapped is not ::/96
        ("::", "[::]:53"),
    ],
)
def test_unambiguous_ipv6_nameservers_are_kept(text: str, canonical: str) -> None:
    assert parse_nameserver(text) == canonical


def test_bad_settings_are_config_errors() -> None:
    for kwargs in ({"timeout": 0}, {"tries": 0}, {"concurrency": 0}, {"fallback": "sometimes"}):
        with pytest.raises(ConfigError):
            Resolver(["127.0.0.1"], **kwargs)


async def test_ipv6_loopback_server(
    dns_server_factory: MakeServer, resolver_for: MakeResolver
) -> None:
    zone: Zone = {"v6only.test": {"A": ["192.0.2.9"]}}
    server = await dns_server_factory(zone, host="::1")
    async with resolver_for(server) as r:
        result = await r.lookup("v6only.test")
    assert result.answers == (ip_address("192.0.2.9"),)


async def test_ordered_results_follow_the_input(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", Fault.DELAY, delay=0.2)  # the first line is the slowest
    names = ["www.zone.test", *(f"n{i}.zone.test" for i in range(40)), "bad name", "v4.zone.test"]
    async with resolver_for(server, concurrency=8) as r:
        stream = r.resolve_many(names, types=["A", "AAAA"], ordered=True)
        results = []
        async for result in stream:
            assert stream.submitted - stream.yielded <= 8  # the window still bounds memory
            results.append(result)
    assert [(res.line, res.type.name) for res in results] == [
        (line, t) for line in range(1, len(names) + 1) for t in ("A", "AAAA")
    ]
    assert results[0].status is Status.NOERROR


async def test_unique_asks_each_name_once_and_answers_every_line(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    names = ["www.zone.test", "WWW.zone.test.", "v4.zone.test", "www.zone.test", "nope.zone.test"]
    async with resolver_for(server) as r:
        results = [res async for res in r.resolve_many(names * 3, unique=True)]
    assert sorted(res.line for res in results) == list(range(1, 16))
    by_line = {res.line: res for res in results}
    assert by_line[2].query == "WWW.zone.test."
    assert by_line[2].answers == by_line[1].answers
    assert by_line[15].status is Status.NXDOMAIN
    assert server.count("www.zone.test") == 1
    assert server.count("nope.zone.test") == 1


async def test_queries_spread_over_servers_and_a_dead_one_is_set_aside(
    dns_server_factory: MakeServer, resolver_for: MakeResolver, engine: str
) -> None:
    good = await dns_server_factory(ZONE)
    dead = await dns_server_factory(ZONE)
    dead.set_fault(None, Fault.DROP)
    names = [f"n{i}.zone.test" for i in range(300)] + ["www.zone.test"]
    async with resolver_for(dead, good, timeout=0.1, tries=4, concurrency=20) as r:
        results = [res async for res in r.resolve_many(names)]
        stats = {s.nameserver: s for s in r.server_stats()}
    assert len(results) == len(names)
    assert {res.status for res in results if res.name != "www.zone.test"} == {Status.NXDOMAIN}
    assert next(res for res in results if res.name == "www.zone.test").status is Status.NOERROR
    assert good.count() >= len(names)
    if engine == "aiodns":  # c-ares picks the servers, names none and counts nothing
        assert {res.server for res in results} == {None}
        assert stats == {}
        return
    assert {res.server for res in results} == {good.nameserver}  # which server answered
    # The dead server was set aside, so it got little.
    assert stats[dead.nameserver].set_aside >= 1
    assert stats[dead.nameserver].answered == 0
    assert stats[dead.nameserver].failed >= 3
    # Half of the first window went to it; after that, only what was already queued.
    assert stats[dead.nameserver].sent < 40
    assert stats[good.nameserver].answered == len(names)
    assert stats[good.nameserver].sent == good.count(transport="udp")


async def test_queries_spread_over_healthy_servers_and_each_result_names_its_server(
    dns_server_factory: MakeServer, resolver_for: MakeResolver, engine: str
) -> None:
    if engine == "aiodns":
        pytest.skip("aiodns: c-ares asks the first healthy server and names no server")
    servers = [await dns_server_factory(ZONE) for _ in range(3)]
    by_address = {s.nameserver: s for s in servers}
    names = [f"n{i}.zone.test" for i in range(300)]
    async with resolver_for(
        *servers,
        timeout=1.0,
        tries=2,
        concurrency=30,
    ) as r:
        results = [res async for res in r.resolve_many(names)]
        stats = {s.nameserver: s for s in r.server_stats()}
    assert len(results) == len(names)
    assert {res.status for res in results} == {Status.NXDOMAIN}
    for result in results:  # the server named is one that was asked that name
        assert by_address[result.server or ""].count(result.name) >= 1, result
    assert sum(s.count() for s in servers) == len(names)  # no retries needed
    for server in servers:
        share = server.count()
        assert share >= len(names) // 6, [s.count() for s in servers]  # even: 100 each
        assert stats[server.nameserver].sent == share
        assert stats[server.nameserver].answered == share
        assert stats[server.nameserver].failed == stats[server.nameserver].set_aside == 0
        assert stats[server.nameserver].latency > 0
        assert sum(res.server == server.nameserver for res in results) == share


@pytest.mark.parametrize("fault", [Fault.SERVFAIL, Fault.DROP], ids=lambda f: f.name)
async def test_tries_are_attempts_in_all_over_the_servers(
    dns_server_factory: MakeServer, resolver_for: MakeResolver, fault: Fault, engine: str
) -> None:
    """`tries` counts attempts over all the servers, each to the next (on the wire and
    c-ares engines: c-ares itself would make `tries` attempts per server). The aiodns
    engine leaves the tries to c-ares, `tries` rounded up to a whole number per server."""
    servers = [await dns_server_factory(ZONE) for _ in range(2)]
    for server in servers:
        server.set_fault("www.zone.test", fault)
    async with resolver_for(
        *servers,
        timeout=0.1,
        tries=3,
        fallback="never",
    ) as r:
        result = await r.lookup("www.zone.test")
    assert result.status is (Status.SERVFAIL if fault is Fault.SERVFAIL else Status.TIMEOUT)
    asked = sorted(s.count("www.zone.test") for s in servers)
    assert asked == ([2, 2] if engine == "aiodns" else [1, 2])


async def test_stop_while_waiting_for_the_rate_limit_ends_the_stream(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    async with resolver_for(server, rate=200, concurrency=50) as r:
        stream = r.resolve_many(f"n{i}.zone.test" for i in range(10_000))
        results = []

        async def consume() -> None:
            async for result in stream:
                results.append(result)
                if len(results) == 5:
                    stream.stop()  # the feeder is waiting for a token now

        await asyncio.wait_for(consume(), 10)
    assert len(results) == stream.submitted == stream.yielded
    assert 5 <= len(results) < 100


async def test_deadline_ends_a_query_whatever_tries_remain(
    server: LoopbackDNSServer, resolver_for: MakeResolver
) -> None:
    server.set_fault("www.zone.test", Fault.DROP)
    async with resolver_for(server, timeout=0.2, tries=50, deadline=0.6) as r:
        dropped, answered = await asyncio.gather(
            r.lookup("www.zone.test"), r.lookup("v4.zone.test")
        )
    assert dropped.status is Status.TIMEOUT
    assert dropped.error == "no answer within the 0.6 s deadline"
    assert server.count("www.zone.test") < 50  # the tries were not all spent
    assert answered.status is Status.NOERROR


@pytest.mark.parametrize(
    ("fault", "status", "asked"),
    [
        (None, Status.NXDOMAIN, 1),  # final: never asked again
        (Fault.SERVFAIL, Status.SERVFAIL, 3),  # retried while tries remain
        (Fault.REFUSED, Status.REFUSED, 3),
        (Fault.DROP, Status.TIMEOUT, 3),
    ],
)
async def test_which_outcomes_are_retried(
    dns_server_factory: MakeServer,
    resolver_for: MakeResolver,
    fault: Fault | None,
    status: Status,
    asked: int,
) -> None:
    server = await dns_server_factory(ZONE)
    if fault is not None:
        server.set_fault("nope.zone.test", fault)
    async with resolver_for(server, timeout=0.1, tries=3) as r:
        result = await r.lookup("nope.zone.test")
    assert result.status is status
    assert server.count("nope.zone.test", transport="udp") == asked


async def test_an_attempt_waits_at_most_the_timeout(
    dns_server_factory: MakeServer, resolver_for: MakeResolver, engine: str
) -> None:
    servers = [await dns_server_factory(ZONE) for _ in range(2)]
    for server in servers:
        server.set_fault("www.zone.test", Fault.DROP)
    async with resolver_for(*servers, timeout=0.3, tries=4, fallback="never") as r:
        result = await r.lookup("www.zone.test")
    assert result.status is Status.TIMEOUT
    assert [s.count("www.zone.test") for s in servers] == [2, 2]
    # No RTT known (nothing ever answered): each attempt waits the timeout, never more;
    # c-ares' own tries (the aiodns engine's) double it per round: 0.3, 0.3, 0.6, 0.6 s.
    assert 1.15 < result.elapsed < (2.2 if engine == "aiodns" else 1.6)
