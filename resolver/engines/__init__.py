"""Engines turn queries into results. They are stream-shaped: `submit()` a query with a
callback and the engine calls it back, on the event loop, with exactly one `Result`.

No asyncio Task or Future is made per query on the DNS path, so a bulk run costs one
callback per name; `Resolver.lookup()` wraps the same path in one Future.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from resolver.model import Query, Result

__all__ = ["CLOSED", "REFUSED", "SERVFAIL", "TIMEOUT", "Done", "Engine"]

# The `error` texts every engine gives for the same outcome, so results do not depend on
# the engine that produced them.
SERVFAIL = "server failure"
REFUSED = "query refused"
TIMEOUT = "no answer within the timeout"
CLOSED = "cancelled: the resolver was closed"

#: Called exactly once per submitted query, on the event loop thread.
Done = Callable[[Result], None]


class Engine(Protocol):
    """What the `Resolver` needs from a way of resolving names."""

    def submit(self, query: Query, done: Done) -> None:
        """Start resolving `query`; `done(result)` is called later, never from inside submit."""

    async def aclose(self) -> None:
        """Stop the engine; queries still in flight are answered with an ERROR result."""
