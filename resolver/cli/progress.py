"""The progress of a run on stderr: how far into the input, results, rate, ETA, statuses.

On a terminal it is one line, redrawn in place; when the rows go to that same terminal,
the line is erased before each write of rows and drawn again below them. Anywhere else
(`--progress` into a log file or a pipe) it is a plain line now and then, with no control
sequences.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import os
from collections import deque
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, BinaryIO, TextIO

from resolver.cli.run import Summary
from resolver.model import Status

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["Progress", "count_lines", "same_terminal"]

#: Seconds between two plain progress lines (not on a terminal).
PLAIN_EVERY = 5.0
#: The ETA follows the lines reached over this many seconds: a stall shows as no ETA.
RATE_OVER = 3.0
_ERASE = "\r\x1b[K"


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


def same_terminal(a: IO[Any], b: IO[Any]) -> bool:
    """True when the streams `a` and `b` write to one terminal."""
    try:
        fa, fb = a.fileno(), b.fileno()
        return os.isatty(fa) and os.isatty(fb) and os.path.samestat(os.fstat(fa), os.fstat(fb))
    except (OSError, ValueError):  # no file descriptor (io.UnsupportedOperation), closed
        return False


class Progress:
    """Shows with each `update` where the run is, on `out`.

    `live`: `out` is a terminal, the line is redrawn in place (and `close()` erases it);
    else a plain line every PLAIN_EVERY seconds. `total` is the input's line count, if
    known; else it is counted in a worker thread for regular `files` (a huge input starts
    at once), and until it is known (and for stdin) the line shows no percentage or ETA.
    """

    def __init__(
        self,
        out: TextIO,
        files: Sequence[str] = (),
        *,
        live: bool,
        total: int | None = None,
    ) -> None:
        self._out = out
        self._live = live
        self._known = total
        self._total: asyncio.Future[int] | None = None
        if total is None and files and "-" not in files:
            self._total = asyncio.ensure_future(asyncio.to_thread(count_lines, files))
        self._line = ""  # the text drawn (live), "" when none is on the screen
        self._printed_at: float | None = None  # plain: when the last line was printed
        self._reached: deque[tuple[float, int]] = deque([(0.0, 0)])  # (elapsed, line)

    def _lines(self) -> int | None:
        counted = self._total
        if self._known is None and counted is not None and counted.done():
            self._known = None if counted.cancelled() or counted.exception() else counted.result()
        return self._known

    def _text(self, summary: Summary) -> str:
        """Where `summary` says the run is, as one line of text."""
        reached, now = summary.last_line, summary.elapsed
        self._reached.append((now, reached))
        while len(self._reached) > 2 and self._reached[1][0] <= now - RATE_OVER:
            self._reached.popleft()
        total = self._lines()
        line = f"line {reached:,}"
        if total:
            line += f" of {total:,} ({min(100 * reached // total, 100)}%)"  # 100%: all
        results = summary.total
        line += f", {results:,} result{'' if results == 1 else 's'}, {summary.rate:,.0f}/s"
        since, then = self._reached[0]
        lines_per_second = (reached - then) / (now - since) if now > since else 0.0
        if total and total > reached and lines_per_second > 0:
            # Unknown (not shown) while no line is reached: the run may be waiting for
            # the queries in flight to answer or time out, however few lines are left.
            eta = math.ceil((total - reached) / lines_per_second)
            line += f", ETA {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d}"
        statuses = " ".join(
            f"{s.value} {summary.counts[s.value]:,}" for s in Status if summary.counts[s.value]
        )
        return f"{line}  {statuses}" if statuses else line

    def update(self, summary: Summary) -> None:
        """Show where `summary` says the run is."""
        text = self._text(summary)
        if self._live:
            # Cut to the terminal's width: a line that wraps could not be erased whole.
            with contextlib.suppress(OSError, ValueError):
                width = os.get_terminal_size(self._out.fileno()).columns
                if width > 1:
                    text = text[: width - 1]
            self._line = text
            self._out.write(_ERASE + text)
        elif self._printed_at is None or summary.elapsed - self._printed_at >= PLAIN_EVERY:
            self._printed_at = summary.elapsed
            self._out.write(f"resolver: progress: {text}\n")
        else:
            return
        self._out.flush()

    def hide(self) -> None:
        """Erase the line (live), for something else to be written to the terminal."""
        if self._line:
            self._out.write(_ERASE)
            self._out.flush()

    def show(self) -> None:
        """Draw the line again (live) after `hide()`."""
        if self._line:
            self._out.write(self._line)
            self._out.flush()

    def beneath(self, rows: BinaryIO) -> BinaryIO:
        """`rows` (the same terminal as the line) wrapped so that each write erases the
        line first and draws it again after: the rows never run into it."""
        return io.BufferedWriter(_Beneath(rows, self))

    def close(self) -> None:
        """Erase the line (the summary is printed after) and stop counting."""
        if self._total is not None:
            self._total.cancel()
        self.hide()
        self._line = ""


class _Beneath(io.RawIOBase):
    """Writes to `rows` with the progress line out of the way (see `Progress.beneath`);
    closing it leaves `rows` open."""

    def __init__(self, rows: BinaryIO, progress: Progress) -> None:
        self._rows = rows
        self._progress = progress

    def writable(self) -> bool:
        return True

    def write(self, data: Buffer, /) -> int:
        self._progress.hide()
        try:
            written = self._rows.write(data)
            self._rows.flush()
        finally:
            self._progress.show()
        return written
