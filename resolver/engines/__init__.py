"""Engines turn queries into results. They are stream-shaped: `submit()` a query with a
callback and the engine calls it back, on the event loop, with exactly one `Result`.

No asyncio Task or Future is made per query on the DNS path, so a bulk run costs one
callback per name; `Resolver.lookup()` wraps the same path in one Future.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from resolver.model import Query, Result

__all__ = [
    "CLOSED",
    "CONNECTION_REFUSED",
    "REFUSED",
    "SERVFAIL",
    "SET_ASIDE_AFTER",
    "SET_ASIDE_FOR",
    "TIMEOUT",
    "Done",
    "Engine",
    "ServerHealth",
    "ServerStats",
    "healthy",
]

# The `error` texts every engine gives for the same outcome, so results do not depend on
# the engine that produced them.
SERVFAIL = "server failure"
REFUSED = "query refused"
TIMEOUT = "no answer within the timeout"
CLOSED = "cancelled: the resolver was closed"
CONNECTION_REFUSED = "connection refused by the nameserver"  # ICMP port unreachable

log = logging.getLogger(__name__)

#: Called exactly once per submitted query, on the event loop thread.
Done = Callable[[Result], None]


class Engine(Protocol):
    """What the `Resolver` needs from a way of resolving names."""

    def submit(self, query: Query, done: Done) -> None:
        """Start resolving `query`; `done(result)` is called later, never from inside submit."""

    async def aclose(self) -> None:
        """Stop the engine; queries still in flight are answered with an ERROR result."""


# Server health, the same for every engine that asks several nameservers.

#: Failures in a row (timeouts, SERVFAIL, REFUSED, ICMP errors) that set a server aside.
SET_ASIDE_AFTER = 3
SET_ASIDE_FOR = 5.0  # seconds a server set aside is skipped while others are healthy


@dataclass(slots=True)
class ServerStats:
    """What one nameserver did in a run. Each attempt sent ends as answered or failed, or
    neither (its datagram never left, or its query ended first on another attempt), so
    `answered + failed <= sent`."""

    nameserver: str
    sent: int = 0  #: attempts sent to it
    #: attempts it replied to, with any rcode (a reply that came after its attempt had
    #: timed out, while the query still waited, too)
    answered: int = 0
    #: of those replies, SERVFAIL or REFUSED (failures for its health, see ServerHealth)
    rejected: int = 0
    failed: int = 0  #: attempts it never replied to: timed out, or refused by ICMP
    set_aside: int = 0  #: times it was set aside after failing repeatedly
    latency: float = 0.0  #: seconds summed over the replies
    #: attempts whose datagram never left (EPERM, ENOBUFS, EAGAIN: a local firewall, a full
    #: conntrack table or send buffer); asked again, not held against the server
    send_errors: int = 0

    def __str__(self) -> str:
        mean = f"{self.latency / self.answered * 1000:.2f} ms" if self.answered else "-"
        rejected = f" ({self.rejected:,} SERVFAIL/REFUSED)" if self.rejected else ""
        errors = f", {self.send_errors:,} send errors" if self.send_errors else ""
        return (
            f"{self.nameserver}: {self.sent:,} sent, {self.answered:,} answered{rejected}, "
            f"{self.failed:,} failed (no reply){errors}, set aside {self.set_aside}x, "
            f"mean latency {mean}"
        )


class ServerHealth:
    """One nameserver's counters and health: SET_ASIDE_AFTER failures in a row (timeouts,
    SERVFAIL, REFUSED, ICMP errors) set it aside (it is skipped, see `healthy`) for SET_ASIDE_FOR
    seconds. An engine resets `streak` to 0 when the server answers, and counts `stats`."""

    __slots__ = ("aside_until", "stats", "streak")

    def __init__(self, nameserver: str) -> None:
        self.stats = ServerStats(nameserver)
        self.streak = 0  # failures in a row
        self.aside_until = 0.0  # loop time; 0.0: not set aside

    def failed(self, now: float) -> None:
        """A failed attempt (at loop time `now`): set the server aside after too many."""
        if self.aside_until > now:
            return  # already set aside: its queries sent before count, not again
        self.streak += 1
        if self.streak >= SET_ASIDE_AFTER:
            self.streak = 0
            self.aside_until = now + SET_ASIDE_FOR
            self.stats.set_aside += 1
            log.warning(
                "nameserver %s set aside for %g s after %d failures in a row",
                self.stats.nameserver,
                SET_ASIDE_FOR,
                SET_ASIDE_AFTER,
            )


_Health = TypeVar("_Health", bound=ServerHealth)


def healthy(servers: Sequence[_Health], first: int, now: float) -> _Health:
    """The first server from index `first` on that is not set aside at loop time `now`
    (a server whose time is up is taken back); all set aside: `servers[first]`."""
    count = len(servers)
    for step in range(count):
        server = servers[(first + step) % count]
        if server.aside_until <= now:
            server.aside_until = 0.0
            return server
    return servers[first]
