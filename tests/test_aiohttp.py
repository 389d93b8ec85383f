"""resolver.aiohttp: a real aiohttp client fetching from a real aiohttp server on loopback,
the server's name answered by the loopback DNS server through `resolver`."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from resolver import RecordType, Resolver
from resolver.aiohttp import AiohttpResolver, Connector
from resolver.testing import Fault, LoopbackDNSServer, Zone
from resolver.testing.pytest_plugin import ServerFactory

ZONE: Zone = {
    "web.test": {"SOA": ["ns1.web.test hostmaster.web.test 1 3600 600 86400 60"]},
    "app.web.test": {"A": ["127.0.0.1"], "AAAA": ["::1"]},
    "v4.web.test": {"A": ["127.0.0.1"]},
    "v6.web.test": {"AAAA": ["::1"]},
    "alias.web.test": {"CNAME": ["v4.web.test"]},
    "broken.web.test": {"A": ["127.0.0.1"]},
}


@pytest.fixture
async def dns(dns_server_factory: ServerFactory) -> LoopbackDNSServer:
    server = await dns_server_factory(ZONE)
    server.set_fault("broken.web.test", Fault.SERVFAIL)
    return server


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"hello {request.host}")


@pytest_asyncio.fixture
async def site() -> AsyncIterator[dict[int, int]]:
    """An aiohttp server on 127.0.0.1 and on ::1 (each its own port): family -> port."""
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    ports: dict[int, int] = {}
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        await web.TCPSite(runner, host, 0).start()
        ports[family] = next(a[1] for a in runner.addresses if a[0] == host)
    try:
        yield ports
    finally:
        await runner.cleanup()


async def fetch(connector: aiohttp.BaseConnector, url: str) -> str:
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(url) as response,
    ):
        assert response.status == 200
        return await response.text()


async def test_a_client_fetches_from_a_server_named_in_dns(
    dns: LoopbackDNSServer, site: dict[int, int]
) -> None:
    port = site[socket.AF_INET]
    resolver = Resolver([dns.nameserver], fallback="never")
    text = await fetch(Connector(resolver, family=socket.AF_INET), f"http://v4.web.test:{port}/")
    assert text == f"hello v4.web.test:{port}"
    assert dns.count("v4.web.test") == 1
    with pytest.raises(RuntimeError, match="closed"):  # closed with the connector
        await resolver.lookup("v4.web.test")


@pytest.mark.parametrize(
    ("family", "name", "listening"),
    [
        (socket.AF_INET6, "app.web.test", socket.AF_INET6),
        (socket.AF_INET6, "v6.web.test", socket.AF_INET6),
        (socket.AF_UNSPEC, "app.web.test", socket.AF_INET),  # IPv4 first
        (socket.AF_UNSPEC, "v6.web.test", socket.AF_INET6),
        (socket.AF_INET, "alias.web.test", socket.AF_INET),
    ],
)
async def test_the_family_decides_what_is_asked(
    dns: LoopbackDNSServer,
    site: dict[int, int],
    family: socket.AddressFamily,
    name: str,
    listening: int,
) -> None:
    port = site[listening]
    async with AiohttpResolver(Resolver([dns.nameserver], fallback="never")) as ours:
        results = await ours.resolve(name, port, family=family)
        text = await fetch(
            aiohttp.TCPConnector(resolver=ours, family=family), f"http://{name}:{port}/"
        )
    assert text == f"hello {name}:{port}"
    assert all(r["hostname"] == name and r["port"] == port for r in results)
    hosts = [r["host"] for r in results]
    wanted = {
        socket.AF_INET: {RecordType.A.value},
        socket.AF_INET6: {RecordType.AAAA.value},
        socket.AF_UNSPEC: {RecordType.A.value, RecordType.AAAA.value},
    }[family]
    asked = {q.type for q in dns.queries if q.name == name}
    assert asked == wanted
    if name == "app.web.test":
        assert hosts == (["::1"] if family == socket.AF_INET6 else ["127.0.0.1", "::1"])


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("nope.web.test", socket.EAI_NONAME),
        ("broken.web.test", socket.EAI_AGAIN),
        ("bad..name", socket.EAI_NONAME),
    ],
)
async def test_a_name_that_does_not_resolve_is_an_oserror(
    dns: LoopbackDNSServer, site: dict[int, int], name: str, code: int
) -> None:
    resolver = Resolver([dns.nameserver], fallback="never", timeout=0.2, tries=1)
    async with AiohttpResolver(resolver) as ours:
        with pytest.raises(socket.gaierror) as raised:
            await ours.resolve(name, 80)
        assert raised.value.errno == code
        with pytest.raises(aiohttp.ClientConnectorDNSError) as failed:
            await fetch(
                aiohttp.TCPConnector(resolver=ours), f"http://{name}:{site[socket.AF_INET]}/"
            )
    assert isinstance(failed.value, OSError)
    assert isinstance(failed.value.os_error, socket.gaierror)
    assert failed.value.os_error.errno == code


async def test_the_hosts_file_is_read_first(
    dns: LoopbackDNSServer, site: dict[int, int], tmp_path: Path
) -> None:
    """A name in the hosts file gets its address there, with no DNS query, as with
    aiohttp's own resolvers; the others go to DNS."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 local.test\n::1 v6.web.test\n")
    port = site[socket.AF_INET]
    resolver = Resolver([dns.nameserver], fallback="never")
    ours = AiohttpResolver(resolver, hosts=hosts)
    text = await fetch(Connector(ours), f"http://local.test:{port}/")
    assert text == f"hello local.test:{port}"
    assert dns.count("local.test") == 0
    # closed with the connector
    with pytest.raises(RuntimeError, match="closed"):
        await resolver.lookup("v4.web.test")
    async with AiohttpResolver(Resolver([dns.nameserver]), hosts=hosts) as again:
        v6 = await again.resolve("v6.web.test", 0, family=socket.AF_INET6)
        with pytest.raises(socket.gaierror) as v4:  # not in the file: DNS has no A
            await again.resolve("v6.web.test", 0, family=socket.AF_INET)
        with pytest.raises(socket.gaierror):  # in the file for IPv4 only, unknown in DNS
            await again.resolve("local.test", 0, family=socket.AF_INET6)
    assert [r["host"] for r in v6] == ["::1"]
    assert v4.value.errno == socket.EAI_NODATA
    assert [q.type for q in dns.queries if q.name == "v6.web.test"] == [RecordType.A.value]


@pytest.mark.parametrize(("fallback", "found"), [("always", True), ("never", False)])
async def test_the_system_fallback_follows_the_policy(
    dns: LoopbackDNSServer, fallback: str, found: bool
) -> None:
    """DNS says NXDOMAIN for `localhost`; the fallback reads /etc/hosts (which has it)."""
    resolver = Resolver([dns.nameserver], fallback=fallback)
    async with AiohttpResolver(resolver, hosts=None) as ours:
        if found:
            results = await ours.resolve("localhost", 80)
            assert [r["host"] for r in results] == ["127.0.0.1"]
        else:
            with pytest.raises(socket.gaierror):
                await ours.resolve("localhost", 80)
    assert dns.count("localhost") == 1


async def test_ip_literals_are_their_own_address(dns: LoopbackDNSServer) -> None:
    async with AiohttpResolver(Resolver([dns.nameserver])) as ours:
        v4: list[Any] = await ours.resolve("127.0.0.1", 8080)
        v6 = await ours.resolve("::1", 8080, family=socket.AF_UNSPEC)
        with pytest.raises(socket.gaierror):
            await ours.resolve("::1", 8080, family=socket.AF_INET)
    assert [(r["host"], r["port"], r["family"]) for r in v4] == [
        ("127.0.0.1", 8080, socket.AF_INET)
    ]
    assert [r["host"] for r in v6] == ["::1"]
    assert dns.count() == 0


async def test_a_plain_tcp_connector_leaves_a_shared_resolver_open(
    dns: LoopbackDNSServer, site: dict[int, int]
) -> None:
    """aiohttp closes only resolvers it made: the application's Resolver stays usable."""
    async with Resolver([dns.nameserver], fallback="never") as shared:
        port = site[socket.AF_INET]
        connector = aiohttp.TCPConnector(resolver=AiohttpResolver(shared))
        assert await fetch(connector, f"http://v4.web.test:{port}/") == f"hello v4.web.test:{port}"
        assert connector.closed
        assert (await shared.lookup("v4.web.test")).ok
