"""The system resolver: the hosts file, read directly, then `getaddrinfo` / `getnameinfo`
through the event loop's executor.

`getaddrinfo` sees what the C library sees: nsswitch sources (mDNS, myhostname, LDAP, ...)
and the system's DNS servers. It is asked for the name made absolute (a trailing dot), so
the stub resolver appends no search domain from resolv.conf; glibc then no longer matches
hosts-file entries, which is why the file is read here first. A, AAAA and PTR only, no TTLs.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import time
from ipaddress import IPv4Address, IPv6Address, ip_address

from resolver.engines import CLOSED, Done
from resolver.model import Answer, Query, RecordType, Result, Source, Status

__all__ = ["HOSTS_PATH", "HOSTS_RECHECK", "SYSTEM_TYPES", "HostsFile", "SystemEngine"]

#: The hosts file the system resolver's `files` source reads.
HOSTS_PATH = "/etc/hosts"
#: Seconds between checks whether the hosts file changed.
HOSTS_RECHECK = 0.5

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


IPAddress = IPv4Address | IPv6Address

_UNREAD = (-1,)  # the stamp before the first read: differs from every stat (and None)


class HostsFile:
    """The hosts file, parsed as glibc's `files` source reads it: `ADDRESS NAME [ALIAS...]`
    lines, `#` comments, names compared without case or a trailing dot.

    Parsed on first use and again when the file has changed (its inode, size, mtime or
    ctime), checked at most every `recheck` seconds (a `stat` costs more than the lookup);
    a missing or unreadable file has no entries.
    """

    def __init__(
        self, path: str | os.PathLike[str] = HOSTS_PATH, *, recheck: float = HOSTS_RECHECK
    ) -> None:
        self.path = path
        self.recheck = recheck
        self._next_check = -math.inf
        self._stamp: tuple[int, ...] | None = _UNREAD
        self._forward: dict[tuple[str, int], tuple[IPAddress, ...]] = {}
        self._reverse: dict[IPAddress, str] = {}

    def lookup(self, query: Query) -> tuple[Answer, ...]:
        """The file's answers: A/AAAA the name's addresses of that family (file order),
        PTR the first name of the address's first line; () when it has none."""
        self._refresh()
        if query.type is RecordType.PTR:
            name = None if query.address is None else self._reverse.get(query.address)
            return () if name is None else (name,)
        version = _VERSION.get(query.type)
        if version is None:
            return ()
        return self._forward.get((_key(query.name), version), ())

    def _refresh(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self.recheck
        try:
            st = os.stat(self.path)
            stamp: tuple[int, ...] | None = (
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
            )
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        text = ""
        if stamp is not None:
            try:
                with open(self.path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError:
                stamp = None
        self._stamp = stamp
        self._parse(text)

    def _parse(self, text: str) -> None:
        forward: dict[tuple[str, int], dict[IPAddress, None]] = {}
        reverse: dict[IPAddress, str] = {}
        for line in text.splitlines():
            fields = line.partition("#")[0].split()
            if len(fields) < 2:
                continue
            try:
                address = ip_address(fields[0].partition("%")[0])
            except ValueError:
                continue
            names = [_key(name) for name in fields[1:]]
            reverse.setdefault(address, names[0])
            for name in names:
                forward.setdefault((name, address.version), {})[address] = None
        self._forward = {key: tuple(addresses) for key, addresses in forward.items()}
        self._reverse = reverse


_VERSION = {RecordType.A: 4, RecordType.AAAA: 6}


def _key(name: str) -> str:
    """A name as the hosts file compares it: no case, no trailing dot."""
    return name.lower().removesuffix(".")


class SystemEngine:
    """Resolve A, AAAA and PTR queries with the system resolver: the hosts file first,
    then `getaddrinfo` / `getnameinfo` for the absolute name."""

    def __init__(self, hosts: HostsFile | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        #: The hosts file, read directly (no DNS query, no search domain).
        self.hosts = hosts if hosts is not None else HostsFile()

    def from_hosts(self, query: Query) -> Result | None:
        """The hosts file's answer for `query` (`source: system`), or None: synchronous,
        never a DNS query."""
        started = time.perf_counter()
        answers = self.hosts.lookup(query)
        if not answers:
            return None
        return Result.for_query(
            query,
            Status.NOERROR,
            answers=answers,
            source=Source.SYSTEM,
            elapsed=time.perf_counter() - started,
        )

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
        local = self.hosts.lookup(query)
        if local:
            return Status.NOERROR, local, None
        try:
            if query.type is RecordType.PTR:
                return Status.NOERROR, (await self._reverse(query),), None
            # Absolute: the stub resolver appends no search domain to a trailing-dot name.
            infos = await self._loop.getaddrinfo(
                f"{query.name.removesuffix('.')}.",
                None,
                family=_FAMILY[query.type],
                type=socket.SOCK_STREAM,
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
