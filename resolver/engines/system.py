"""The system resolver: `getaddrinfo` / `getnameinfo` through the event loop's executor.

It sees what the C library sees: /etc/hosts, nsswitch, mDNS and the system's DNS
servers. It answers A, AAAA and PTR only, without TTLs.
"""

from __future__ import annotations

import asyncio
import socket
import time
from ipaddress import IPv4Address, IPv6Address, ip_address

from resolver.engines import CLOSED, Done
from resolver.model import Answer, Query, RecordType, Result, Source, Status

__all__ = ["SYSTEM_TYPES", "SystemEngine"]

#: Record types the system resolver can answer.
SYSTEM_TYPES = frozenset({RecordType.A, RecordType.AAAA, RecordType.PTR})

_FAMILY = {RecordType.A: socket.AF_INET, RecordType.AAAA: socket.AF_INET6}

#: getaddrinfo error -> status. EAI_NODATA/EAI_ADDRFAMILY: the name exists without
#: addresses of that family.
_GAI_STATUS: dict[int, Status] = {
    socket.EAI_NONAME: Status.NXDOMAIN,
    socket.EAI_AGAIN: Status.TIMEOUT,
    socket.EAI_FAIL: Status.SERVFAIL,
}
for _name in ("EAI_NODATA", "EAI_ADDRFAMILY"):
    if hasattr(socket, _name):
        _GAI_STATUS[getattr(socket, _name)] = Status.NODATA


class SystemEngine:
    """Resolve A, AAAA and PTR queries with the system resolver."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, query: Query, done: Done) -> None:
        """Ask the system; `done` gets the result (one Task per query: this is a slow path)."""
        task = self._loop.create_task(self._resolve(query, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resolve(self, query: Query, done: Done) -> None:
        started = time.perf_counter()
        try:
            status, answers, error = await self._ask(query)
        except asyncio.CancelledError:
            status, answers, error = Status.ERROR, (), CLOSED
        done(
            Result.for_query(
                query,
                status,
                answers=answers,
                source=Source.SYSTEM,
                error=error,
                elapsed=time.perf_counter() - started,
            )
        )

    async def _ask(self, query: Query) -> tuple[Status, tuple[Answer, ...], str | None]:
        if query.type not in SYSTEM_TYPES:
            return Status.ERROR, (), f"the system resolver cannot ask {query.type.name} records"
        try:
            if query.type is RecordType.PTR:
                return Status.NOERROR, (await self._reverse(query),), None
            infos = await self._loop.getaddrinfo(
                query.name, None, family=_FAMILY[query.type], type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            status = _GAI_STATUS.get(exc.errno or 0, Status.ERROR)
            quiet = status in (Status.NXDOMAIN, Status.NODATA)
            return status, (), None if quiet else exc.strerror
        except OSError as exc:
            return Status.ERROR, (), str(exc)
        addresses: dict[IPv4Address | IPv6Address, None] = {}
        for *_, sockaddr in infos:
            addresses[ip_address(str(sockaddr[0]).partition("%")[0])] = None
        if not addresses:
            return Status.NODATA, (), None
        return Status.NOERROR, tuple(addresses), None

    async def _reverse(self, query: Query) -> str:
        if query.address is None:
            raise socket.gaierror(
                socket.EAI_NONAME, "the system resolver needs an IP address for PTR"
            )
        host, _ = await self._loop.getnameinfo((str(query.address), 0), socket.NI_NAMEREQD)
        return host.lower().rstrip(".")

    async def aclose(self) -> None:
        """Cancel lookups still running; each still reports a result."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
