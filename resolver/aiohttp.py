"""aiohttp resolving through `resolver` (the `resolver[aiohttp]` extra).

```python
from resolver import Resolver
from resolver.aiohttp import Connector

async with aiohttp.ClientSession(connector=Connector(Resolver())) as session:
    ...  # names resolved by the Resolver; it is closed with the connector
```

`AiohttpResolver` is an `aiohttp.abc.AbstractResolver`, for
`aiohttp.TCPConnector(resolver=...)`; its `close()` closes the `Resolver` in it. aiohttp
closes only a resolver it made itself, so a `TCPConnector` given one leaves it open (a
`Resolver` the application shares stays usable; close it yourself); `Connector` is that
TCPConnector closing it when it closes.

As aiohttp's own resolvers do (getaddrinfo, c-ares' `ares_getaddrinfo`), the hosts file
is read first: a name it lists gets its addresses there, with no DNS query. Otherwise
the `Resolver` asks for A and AAAA records per the requested family, with its system
fallback per its `Fallback` policy. A name that does not resolve raises `socket.gaierror`
(an `OSError`, which aiohttp turns into `ClientConnectorDNSError`).
"""

from __future__ import annotations

import asyncio
import os
import socket
from ipaddress import IPv4Address, IPv6Address, ip_address
from types import TracebackType
from typing import Any

try:
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ImportError("resolver.aiohttp needs aiohttp: pip install 'resolver[aiohttp]'") from exc

from resolver.core import Resolver
from resolver.engines.system import HOSTS_PATH, HostsFile
from resolver.model import InvalidInput, Query, RecordType, Result, Status
from resolver.names import parse_line

__all__ = ["AiohttpResolver", "Connector"]

_FLAGS = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
#: The record types asked per family, in the order their addresses are returned.
_TYPES = {
    socket.AF_INET: (RecordType.A,),
    socket.AF_INET6: (RecordType.AAAA,),
    socket.AF_UNSPEC: (RecordType.A, RecordType.AAAA),
}
_NODATA = getattr(socket, "EAI_NODATA", socket.EAI_NONAME)

#: A failed lookup's status -> the getaddrinfo error it is raised as (the worst wins).
_ERRORS: dict[Status, tuple[int, str]] = {
    Status.TIMEOUT: (socket.EAI_AGAIN, "Temporary failure in name resolution"),
    Status.SERVFAIL: (socket.EAI_AGAIN, "Temporary failure in name resolution"),
    Status.REFUSED: (socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
    Status.ERROR: (socket.EAI_FAIL, "Non-recoverable failure in name resolution"),
    Status.NXDOMAIN: (socket.EAI_NONAME, "Name or service not known"),
    Status.INVALID: (socket.EAI_NONAME, "Name or service not known"),
    Status.NODATA: (_NODATA, "No address associated with hostname"),
}


class AiohttpResolver(AbstractResolver):
    """Resolve aiohttp's host names with `resolver` (default: `Resolver()`, the system's
    nameservers), which `close()` closes. `hosts`: the hosts file read first (None: none)."""

    def __init__(
        self,
        resolver: Resolver | None = None,
        *,
        hosts: str | os.PathLike[str] | None = HOSTS_PATH,
    ) -> None:
        self.resolver = resolver if resolver is not None else Resolver()
        self._hosts = HostsFile(hosts) if hosts is not None else None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """`host`'s addresses of `family` (AF_INET, AF_INET6 or AF_UNSPEC: IPv4 first);
        raises `socket.gaierror` when there are none."""
        types = _TYPES.get(family)
        if types is None:
            raise socket.gaierror(socket.EAI_FAMILY, f"address family {family!r} not supported")
        literal = _literal(host)
        if literal is not None:
            addresses: list[IPv4Address | IPv6Address] = [literal]
            if family not in (socket.AF_UNSPEC, _family(literal)):
                raise _error(host, [Status.NODATA])
        else:
            addresses = await self._addresses(host, types)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=_family(address),
                proto=0,
                flags=_FLAGS,
            )
            for address in addresses
        ]

    async def _addresses(
        self, host: str, types: tuple[RecordType, ...]
    ) -> list[IPv4Address | IPv6Address]:
        items = parse_line(host, 0, list(types))
        if not items or isinstance(items[0], InvalidInput):
            raise _error(host, [Status.INVALID])
        queries = [item for item in items if isinstance(item, Query)]
        if self._hosts is not None:
            listed = [a for q in queries for a in self._hosts.lookup(q)]
            if listed:
                return [a for a in listed if isinstance(a, IPv4Address | IPv6Address)]
        results: list[Result] = await asyncio.gather(*map(self.resolver.lookup, queries))
        addresses = [address for result in results for address in result.addresses]
        if not addresses:
            raise _error(host, [result.status for result in results])
        return addresses

    async def close(self) -> None:
        """Close the `Resolver` (idempotent)."""
        await self.resolver.aclose()

    async def __aenter__(self) -> AiohttpResolver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Connector(aiohttp.TCPConnector):
    """An `aiohttp.TCPConnector` resolving through `resolver` (an `AiohttpResolver`, or a
    `Resolver` to wrap in one; default: a `Resolver()`), closed when the connector
    closes. Other keyword arguments are TCPConnector's."""

    def __init__(self, resolver: Resolver | AiohttpResolver | None = None, **kwargs: Any) -> None:
        if not isinstance(resolver, AiohttpResolver):
            resolver = AiohttpResolver(resolver)
        self.dns = resolver
        super().__init__(resolver=resolver, **kwargs)

    async def close(self, *args: Any, **kwargs: Any) -> None:
        """Close the connections, then the resolver."""
        try:
            await super().close(*args, **kwargs)
        finally:
            await self.dns.close()


def _literal(host: str) -> IPv4Address | IPv6Address | None:
    try:
        return ip_address(host.strip("[]"))
    except ValueError:
        return None


def _family(address: IPv4Address | IPv6Address) -> socket.AddressFamily:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def _error(host: str, statuses: list[Status]) -> socket.gaierror:
    """The getaddrinfo error for a name whose lookups ended with `statuses`."""
    order = list(_ERRORS)
    worst = min((s for s in statuses if s in _ERRORS), key=order.index, default=Status.ERROR)
    code, text = _ERRORS[worst]
    return socket.gaierror(code, f"{text}: {host} ({worst.value})")
