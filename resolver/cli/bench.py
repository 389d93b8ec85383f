"""Measuring a run: answered names/s over time, latency percentiles, the status mix, and
the queries lost on the way."""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass, field

from resolver.cli.run import REPLIED, Summary
from resolver.engines import ServerStats
from resolver.model import Status
from resolver.sources import InputLines
from resolver.stream import ResultStream

__all__ = ["BenchReport", "Looped", "measure"]

_REPLIED = frozenset(REPLIED)


@dataclass
class BenchReport(Summary):
    """What a benchmark run measured: a run's summary, plus latencies, a timeline and the
    nameservers' counters."""

    #: Seconds from sending to result, for every name that got a reply (see REPLIED).
    latencies: array[float] = field(default_factory=lambda: array("d"))
    #: Names answered in each interval of the run, in order.
    timeline: list[int] = field(default_factory=list)
    interval: float = 1.0
    #: Per-nameserver counters at the end (attempts sent, answered, lost); set by the caller.
    servers: list[ServerStats] = field(default_factory=list)

    def percentile(self, p: float) -> float | None:
        """The `p`-th percentile latency in seconds (nearest rank), or None with no data."""
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1]

    def render(self) -> str:
        """The report as text for a terminal."""

        def ms(seconds: float | None) -> str:
            return "-" if seconds is None else f"{seconds * 1000:.2f} ms"

        asked = self.asked
        lines = [
            f"results      {self.total:,} in {self.elapsed:.2f} s"
            + (" (interrupted)" if self.interrupted else ""),
        ]
        if self.answered:
            per_second = self.answered / self.elapsed if self.elapsed > 0 else 0.0
            lines.append(
                f"answered     {per_second:,.0f} names/s: {self.answered:,} of {asked:,} names "
                f"({100 * self.answered / asked:.1f}%)"
            )
        elif asked:
            lines.append(f"answered     none: no nameserver replied to any of {asked:,} names")
        if self.servers:
            sent = sum(s.sent for s in self.servers)
            replies = sum(s.answered for s in self.servers)
            lost = sum(s.failed for s in self.servers)
            of_sent = f" ({100 * lost / sent:.2f}%)" if sent else ""
            lines.append(
                f"queries      {sent:,} sent, {replies:,} answered, {lost:,} lost{of_sent}"
            )
        lines.append(
            f"latency      p50 {ms(self.percentile(50))}, p95 {ms(self.percentile(95))}, "
            f"p99 {ms(self.percentile(99))}, max {ms(max(self.latencies, default=None))}"
            + (" (answered names)" if self.latencies else "")
        )
        for status in Status:
            if self.counts[status.value]:
                share = 100 * self.counts[status.value] / self.total
                lines.append(f"{status.value:<12} {self.counts[status.value]:,} ({share:.1f}%)")
        if self.timeline:
            rates = ", ".join(f"{n / self.interval:,.0f}" for n in self.timeline)
            lines.append(f"answered names/s per {self.interval:g} s: {rates}")
        return "\n".join(lines)


class Looped(InputLines):
    """The lines of files, then the same lines again and again until the stream stops:
    `bench --duration` keeps the load on however short the list. The lines are kept in
    memory after the first pass (stdin cannot be read twice); an input without a line
    ends at once."""

    async def batches(self) -> AsyncGenerator[list[bytes], None]:
        kept: list[list[bytes]] = []
        async with aclosing(super().batches()) as first:
            async for lines in first:
                kept.append(lines)
                yield lines
        if not kept:
            return
        while True:
            for lines in kept:
                yield lines
            await asyncio.sleep(0)  # a list of comments only: the loop still runs


async def measure(
    stream: ResultStream,
    *,
    interval: float = 1.0,
    duration: float | None = None,
    on_tick: Callable[[BenchReport], None] | None = None,
) -> BenchReport:
    """Consume `stream`, recording every result; `on_tick` is called after each interval.
    After `duration` seconds the stream is stopped (what is in flight still counts)."""
    report = BenchReport(interval=interval)
    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    stopper = loop.call_later(duration, stream.stop) if duration is not None else None
    tick_end = started + interval
    in_tick = 0
    try:
        async with stream:
            async for result in stream:
                report.counts[result.status.value] += 1
                if result.status in _REPLIED:
                    report.latencies.append(result.elapsed)
                    in_tick += 1
                now = time.perf_counter()
                if now >= tick_end:
                    while now >= tick_end:  # quiet intervals count as zeros
                        report.timeline.append(in_tick)
                        in_tick = 0
                        tick_end += interval
                    report.elapsed = now - started
                    if on_tick is not None:
                        on_tick(report)
    finally:
        if stopper is not None:
            stopper.cancel()
    report.elapsed = time.perf_counter() - started
    report.interrupted = stream.stopped and duration is None
    return report
