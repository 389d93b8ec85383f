"""Measuring a run: names/s over time, latency percentiles, the status mix."""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field

from resolver.model import Status
from resolver.pipeline import ResultStream, Summary

__all__ = ["BenchReport", "measure"]


@dataclass
class BenchReport(Summary):
    """What a benchmark run measured: a run's summary, plus latencies and a timeline."""

    #: Seconds from sending to result, for every name that was asked (not INVALID).
    latencies: array[float] = field(default_factory=lambda: array("d"))
    #: Results completed in each interval of the run, in order.
    timeline: list[int] = field(default_factory=list)
    interval: float = 1.0

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

        lines = [
            f"results      {self.total:,} in {self.elapsed:.2f} s"
            + (" (interrupted)" if self.interrupted else ""),
            f"rate         {self.rate:,.0f} names/s",
            f"latency      p50 {ms(self.percentile(50))}, p95 {ms(self.percentile(95))}, "
            f"p99 {ms(self.percentile(99))}, max {ms(max(self.latencies, default=None))}",
        ]
        for status in Status:
            if self.counts[status.value]:
                share = 100 * self.counts[status.value] / self.total
                lines.append(f"{status.value:<12} {self.counts[status.value]:,} ({share:.1f}%)")
        if self.timeline:
            rates = ", ".join(f"{n / self.interval:,.0f}" for n in self.timeline)
            lines.append(f"names/s per {self.interval:g} s: {rates}")
        return "\n".join(lines)


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
                if result.status is not Status.INVALID:
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
