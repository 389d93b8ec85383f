"""A live progress line on stderr: how far into the input, rate, ETA, status counts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TextIO

from resolver.model import Status
from resolver.pipeline import Summary

__all__ = ["Progress", "count_lines"]


def count_lines(paths: Sequence[str]) -> int:
    """Lines in the files `paths` (a last line without a newline counts too)."""
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            last = b"\n"
            while chunk := f.read(1 << 20):
                total += chunk.count(b"\n")
                last = chunk[-1:]
            total += last != b"\n"
    return total


class Progress:
    """Redraws one line of `out` (a terminal) with each `update`; `close()` clears it.

    The total is counted in a worker thread for regular files, so a huge input starts at
    once; until it is known (and for stdin) the line shows no percentage or ETA.
    """

    def __init__(self, out: TextIO, files: Sequence[str]) -> None:
        self._out = out
        self._total: asyncio.Future[int] | None = None
        if files and "-" not in files:
            self._total = asyncio.ensure_future(asyncio.to_thread(count_lines, files))

    def update(self, summary: Summary) -> None:
        """Show where `summary` says the run is."""
        total = None
        if self._total is not None and self._total.done() and not self._total.exception():
            total = self._total.result()
        line = f"line {summary.last_line:,}"
        if total:
            share = min(summary.last_line / total, 1.0)
            line += f" of {total:,} ({share:.0%})"
            lines_per_second = summary.last_line / summary.elapsed if summary.elapsed else 0
            if lines_per_second and total > summary.last_line:
                eta = int((total - summary.last_line) / lines_per_second)
                line += f", ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
        statuses = " ".join(
            f"{s.value} {summary.counts[s.value]:,}" for s in Status if summary.counts[s.value]
        )
        self._out.write(f"\r\x1b[K{line}  {summary.rate:,.0f}/s  {statuses}")
        self._out.flush()

    def close(self) -> None:
        """Clear the line (the summary is printed after) and stop counting."""
        if self._total is not None:
            self._total.cancel()
        self._out.write("\r\x1b[K")
        self._out.flush()
