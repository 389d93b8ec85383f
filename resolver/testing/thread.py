"""Run a `LoopbackDNSServer` on its own event loop in a thread, for synchronous tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from resolver.testing.server import LoopbackDNSServer
from resolver.testing.zone import Zone

__all__ = ["serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(
    zone: Zone,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    ttl: int = 300,
    origin: str | None = None,
) -> Iterator[LoopbackDNSServer]:
    """Run a started `LoopbackDNSServer` on its own event loop in a daemon thread."""
    server = LoopbackDNSServer(zone, host=host, port=port, ttl=ttl, origin=origin)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="LoopbackDNSServer", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        try:
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
