"""Embedding resolver in an asyncio program.

Runs with no network: it starts the project's own loopback DNS server with the demo
zone and points the Resolver at it. Against your own server, pass its address instead
(`Resolver(nameservers=["192.0.2.53"])`), or nothing to use the system's nameservers.

    python examples/embed.py
"""

from __future__ import annotations

import asyncio

from resolver import Resolver, Status
from resolver.testing import EXAMPLE_ZONE, LoopbackDNSServer


async def main() -> None:
    async with (
        LoopbackDNSServer(EXAMPLE_ZONE) as server,
        Resolver(nameservers=[server.nameserver], timeout=1.0, tries=2) as r,
    ):
        # One lookup: never raises for a DNS outcome; the status says what happened.
        result = await r.lookup("dual.example.test", "AAAA")
        print(result.status.value, [a.compressed for a in result.addresses])

        # Many lookups, results as they complete: one per (line, type).
        names = ["example.test", "alias.example.test", "missing.example.test"]
        async for result in r.resolve_many(names, types=["A", "MX"]):
            if result.status is Status.NOERROR:
                print(result.line, result.name, result.type.name, *map(str, result.answers))
            else:
                print(result.line, result.name, result.type.name, result.status.value)

        # A queue in, results out: a producer can feed names while lookups run.
        queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        for name in ["192.0.2.1", "dual.example.test", None]:  # None ends the stream
            await queue.put(name)
        async for result in r.resolve_many(queue):
            print(result.query, "->", result.status.value, *map(str, result.answers))


if __name__ == "__main__":
    asyncio.run(main())
