"""The command line's write loop: a result stream into a writer, and the run's summary."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from resolver.model import Status
from resolver.stream import ResultStream
from resolver.writers import Writer

__all__ = ["REPLIED", "Summary", "run"]


#: The statuses only a nameserver's reply gives (TIMEOUT, ERROR and INVALID are not).
REPLIED = (Status.NOERROR, Status.NODATA, Status.NXDOMAIN, Status.SERVFAIL, Status.REFUSED)


@dataclass
class Summary:
    """What a run did: rows per status, time taken, rate."""

    counts: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    interrupted: bool = False
    #: The highest input line number written so far (how far into the input the run is).
    last_line: int = 0
    #: Replies the nameservers gave, of any rcode (their `ServerStats.answered`, summed).
    replies: int = 0

    @property
    def total(self) -> int:
        """Rows written."""
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Rows per second."""
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def asked(self) -> int:
        """Rows of names that were asked (all but INVALID)."""
        return self.total - self.counts[Status.INVALID.value]

    @property
    def answered(self) -> int:
        """Rows whose status is a nameserver's reply (see REPLIED)."""
        return sum(self.counts[status.value] for status in REPLIED)

    @property
    def unanswered(self) -> bool:
        """True when names were asked and no nameserver ever replied: every row but the
        INVALID ones is TIMEOUT or ERROR, and no server's counters hold a reply (a SERVFAIL
        that was retried into a TIMEOUT is a reply). Not for an empty or all-INVALID input."""
        return self.asked > 0 and self.answered == 0 and self.replies == 0

    def __str__(self) -> str:
        statuses = ", ".join(
            f"{s.value} {self.counts[s.value]:,}" for s in Status if self.counts[s.value]
        )
        head = "interrupted: " if self.interrupted else ""
        total = self.total
        return (
            f"{head}{total:,} result{'' if total == 1 else 's'} in {self.elapsed:.2f}s "
            f"({self.rate:,.0f}/s): {statuses or 'nothing to do'}"
        )


async def run(
    stream: ResultStream,
    writer: Writer,
    *,
    flush_every: float = 0.5,
    on_flush: Callable[[Summary], None] | None = None,
) -> Summary:
    """Write every result of `stream` to `writer`, flushing whole rows at least every
    `flush_every` seconds, also while no result comes (a slow input: each row is out
    within about `flush_every` of its result), then calling `on_flush(summary so far)`,
    e.g. a progress display; the summary counts what was written."""
    loop = asyncio.get_running_loop()
    summary = Summary()
    counts = summary.counts
    started = last_flush = loop.time()
    async with stream:
        async for batch in stream.batches(idle=flush_every):
            if batch:
                writer.write_many(batch)
                counts.update([result.status._value_ for result in batch])
                lines = [result.line for result in batch]
                summary.last_line = max(summary.last_line, max(lines))
            now = loop.time()
            if now - last_flush >= flush_every:
                writer.flush()
                last_flush = now
                if on_flush is not None:
                    summary.elapsed = now - started
                    on_flush(summary)
    writer.flush()
    summary.elapsed = loop.time() - started
    summary.interrupted = stream.stopped
    return summary
