"""The progress line: what it says as a run goes on (fed summaries, written to a buffer)."""

from __future__ import annotations

import io
from collections import Counter

from resolver.cli.progress import RATE_OVER, Progress
from resolver.cli.run import Summary


def drawn(progress: Progress, out: io.StringIO, elapsed: float, line: int, rows: int) -> str:
    """The line `progress` draws for a run `elapsed` seconds in, at `line`, `rows` written."""
    out.seek(0)
    out.truncate()
    summary = Summary(Counter({"NOERROR": rows}), elapsed=elapsed, last_line=line)
    progress.update(summary)
    text = out.getvalue()
    assert text.startswith("\r\x1b[K")
    return text[len("\r\x1b[K") :]


def test_eta_follows_recent_progress_and_is_gone_while_the_run_stalls() -> None:
    """The lines left at the recent pace; while no line is reached (the last queries wait
    for their answers or timeouts) there is no ETA, never a 0:00:00 that stays."""
    out = io.StringIO()
    progress = Progress(out, live=True, total=10_000)
    assert drawn(progress, out, 0.5, 2_000, 2_400) == (
        "line 2,000 of 10,000 (20%), 2,400 results, 4,800/s, ETA 0:00:02  NOERROR 2,400"
    )
    assert "ETA 0:00:01" in drawn(progress, out, 1.0, 6_000, 7_200)
    assert "ETA 0:00:01" in drawn(progress, out, 1.5, 9_990, 11_988)  # 10 lines: still 1 s
    stalled = [
        drawn(progress, out, 1.5 + t / 2, 9_990, 11_988) for t in range(1, 2 * int(RATE_OVER) + 3)
    ]
    assert not any("ETA 0:00:00" in text for text in stalled), stalled
    assert "ETA" not in stalled[-1], stalled
    assert stalled[-1].startswith("line 9,990 of 10,000 (99%), 11,988 results")
    assert "ETA" not in drawn(progress, out, 5.0, 10_000, 12_000)  # every line reached
    progress.close()
    assert out.getvalue().endswith("\r\x1b[K")  # erased for the summary


def test_plain_lines_away_from_a_terminal() -> None:
    """Not a terminal: a plain line every few seconds, no control characters."""
    out = io.StringIO()
    progress = Progress(out, live=False, total=100)
    for tenth in range(1, 120):
        progress.update(Summary(Counter({"NXDOMAIN": tenth}), elapsed=tenth / 10, last_line=tenth))
    progress.close()
    lines = out.getvalue().splitlines(keepends=True)
    assert 2 <= len(lines) <= 3  # at 0.1 s, then every 5 s
    assert all(line.startswith("resolver: progress: line ") for line in lines)
    assert all(line.endswith("\n") and "\r" not in line and "\x1b" not in line for line in lines)
