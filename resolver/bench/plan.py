"""What the parent hands every worker: the questions, the schedule and the settings.

Queries are numbered in one global order; worker `k` of `n` sends numbers `k`, `k + n`,
`k + 2n`, ... so the workers together keep the whole schedule. Query `j` asks question
`sequence[j % len(sequence)]` (the list asked again and again) and is due at
`Schedule.time_of(j)` seconds after the start (None: as soon as the window has room).
"""

from __future__ import annotations

import bisect
import enum
import pickle
from array import array
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Mode", "Plan", "Schedule"]


class Mode(enum.Enum):
    """How queries are paced."""

    CLOSED = "closed"  #: a fixed number outstanding: the next goes when one ends
    RATE = "rate"  #: open loop, `rate` per second on a fixed schedule
    RAMP = "ramp"  #: open loop, rising step by step
    REPLAY = "replay"  #: open loop, at the times of the query log


@dataclass
class Schedule:
    """When each query is due, and when sending ends."""

    mode: Mode
    window: int = 100  #: CLOSED: queries outstanding, over all workers
    rate: float = 0.0  #: RATE: queries per second
    #: RAMP: the rate of each step; each lasts `step_seconds`.
    steps: list[float] = field(default_factory=list)
    step_seconds: float = 0.0
    #: No query is due at or after this many seconds (None: one pass of the list).
    duration: float | None = None
    #: REPLAY: seconds from a pass's start per query, and a pass's length.
    offsets: array[float] | None = None
    period: float = 0.0
    #: RAMP: the first query number of each step, and the total at the end.
    firsts: list[int] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        firsts = [0]
        for rate in self.steps:
            firsts.append(firsts[-1] + max(1, round(rate * self.step_seconds)))
        self.firsts = firsts

    @property
    def open_loop(self) -> bool:
        """Whether queries go on a schedule, whatever the replies do."""
        return self.mode is not Mode.CLOSED

    def queries(self, pass_length: int) -> int | None:
        """How many queries the run sends, if known in advance (None: until the time is up)."""
        if self.mode is Mode.RAMP:
            return self.firsts[-1]
        if self.duration is not None:
            if self.mode is Mode.RATE:
                return max(0, _ceil(self.duration * self.rate))
            return None
        return pass_length

    def time_of(self, j: int, pass_length: int) -> float | None:
        """Seconds after the start at which query `j` is due (None: closed loop)."""
        mode = self.mode
        if mode is Mode.RATE:
            return j / self.rate
        if mode is Mode.RAMP:
            step = bisect.bisect_right(self.firsts, j) - 1
            return step * self.step_seconds + (j - self.firsts[step]) / self.steps[step]
        if mode is Mode.REPLAY:
            assert self.offsets is not None
            lap, i = divmod(j, pass_length)
            return lap * self.period + self.offsets[i]
        return None

    def step_of(self, j: int) -> int:
        """RAMP: the step query `j` belongs to."""
        return bisect.bisect_right(self.firsts, j) - 1

    def step_queries(self, step: int) -> int:
        """RAMP: how many queries step `step` sends."""
        return self.firsts[step + 1] - self.firsts[step]


def _ceil(x: float) -> int:
    return int(-(-x // 1))


@dataclass
class Plan:
    """Everything a worker needs, written by the parent to a file the worker reads."""

    servers: list[tuple[str, int]]
    #: Distinct questions: the name in wire form and the type code.
    questions: list[tuple[bytes, int]]
    sequence: array[int]
    schedule: Schedule
    workers: int = 1
    #: Sockets per server and worker (each its own source port and 65,536 message ids).
    sockets: int = 1
    timeout: float = 2.0
    tries: int = 1
    interval: float = 1.0
    #: How long an attempt's message id stays reserved after its timeout, so that a late
    #: reply is counted as late (and not taken for the answer to a later query).
    late: float = 2.0
    edns: int | None = 1232
    #: Per question, the CRC-32 of the expected outcome (see `expect.outcome`), or -1
    #: where it is unknown; None: answers are not checked.
    expected: array[int] | None = None
    #: Calibration: record every question's outcome instead of checking it.
    calibrate: bool = False

    def save(self, path: Path) -> None:
        """Write the plan for the workers."""
        with path.open("wb") as f:
            pickle.dump(self, f, protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def load(cls, path: Path) -> Plan:
        """What `save` wrote (a file of this run's parent only)."""
        with path.open("rb") as f:
            plan = pickle.load(f)  # noqa: S301 - written by our own parent process
        if not isinstance(plan, cls):
            raise TypeError(f"{path} holds no bench plan")
        return plan
