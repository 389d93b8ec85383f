"""pytest fixtures for in-process DNS servers (`resolver.testing.LoopbackDNSServer`).

`dns_server` serves `EXAMPLE_ZONE` on 127.0.0.1; `dns_server_factory` starts servers for
the test's own zones. Every server is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

import pytest_asyncio

from resolver.testing import EXAMPLE_ZONE, LoopbackDNSServer, Zone

__all__ = ["ServerFactory", "dns_server", "dns_server_factory"]


class ServerFactory(Protocol):
    """`await make(zone, **kwargs)`: a started `LoopbackDNSServer(zone, **kwargs)`."""

    async def __call__(self, zone: Zone, **kwargs: Any) -> LoopbackDNSServer: ...


@pytest_asyncio.fixture
async def dns_server() -> AsyncIterator[LoopbackDNSServer]:
    """A started server for `EXAMPLE_ZONE` on 127.0.0.1 (ephemeral port)."""
    async with LoopbackDNSServer(EXAMPLE_ZONE) as server:
        yield server


@pytest_asyncio.fixture
async def dns_server_factory() -> AsyncIterator[ServerFactory]:
    """Start servers with the test's own zones; all are stopped after the test."""
    servers: list[LoopbackDNSServer] = []

    async def make(zone: Zone, **kwargs: Any) -> LoopbackDNSServer:
        server = LoopbackDNSServer(zone, **kwargs)
        await server.start()
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(servers):
            await server.stop()
